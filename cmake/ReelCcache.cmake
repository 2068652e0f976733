# Use ccache when present; the sloppiness settings let it cache translation units built with a PCH.
find_program(REEL_CCACHE ccache)
if(REEL_CCACHE)
  set(launcher env CCACHE_SLOPPINESS=pch_defines,time_macros,include_file_mtime,include_file_ctime ${REEL_CCACHE})
  set(CMAKE_C_COMPILER_LAUNCHER ${launcher})
  set(CMAKE_CXX_COMPILER_LAUNCHER ${launcher})
endif()
