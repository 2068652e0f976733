# REEL_GIT_COMMIT: the commit the build was made from ("unknown" outside a git checkout).
execute_process(COMMAND git rev-parse --short=12 HEAD
  WORKING_DIRECTORY ${CMAKE_CURRENT_SOURCE_DIR}
  OUTPUT_VARIABLE REEL_GIT_COMMIT OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET)
if(NOT REEL_GIT_COMMIT)
  set(REEL_GIT_COMMIT unknown)
endif()
