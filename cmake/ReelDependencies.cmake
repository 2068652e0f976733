# Finds every required dependency and gathers them in one interface target, reel_deps.
find_package(Torch REQUIRED)
if(Torch_VERSION VERSION_GREATER_EQUAL 2.14)
  set(CMAKE_CXX_STANDARD 20)  # LibTorch 2.14 and later refuse to compile as C++17
endif()
find_package(MPI REQUIRED COMPONENTS C)
set(HDF5_PREFER_PARALLEL TRUE)
find_package(HDF5 REQUIRED COMPONENTS C)
find_package(yaml-cpp REQUIRED)
find_package(nlohmann_json 3 REQUIRED)
find_package(Threads REQUIRED)
find_package(PkgConfig REQUIRED)
pkg_check_modules(FFMPEG REQUIRED IMPORTED_TARGET libavformat libavcodec libswscale libswresample libavutil)

add_library(reel_deps INTERFACE)
# libstdc++ ahead of LibTorch in every binary's needed libraries: PyTorch's pip builds (2.5 and
# later) export a statically linked copy of std::filesystem from libtorch.so that crashes (a call
# through a null pointer in std::filesystem::remove_all, seen on an H200 with 2.11); listed first,
# the system libstdc++ is the one every std::filesystem call binds to (pytorch/pytorch#133437).
target_link_libraries(reel_deps INTERFACE
  stdc++ ${TORCH_LIBRARIES} MPI::MPI_C ${HDF5_C_LIBRARIES} yaml-cpp nlohmann_json::nlohmann_json
  PkgConfig::FFMPEG Threads::Threads)
target_include_directories(reel_deps SYSTEM INTERFACE ${HDF5_C_INCLUDE_DIRS})
target_compile_definitions(reel_deps INTERFACE ${HDF5_C_DEFINITIONS} OMPI_SKIP_MPICXX=1)
if(NOT HDF5_IS_PARALLEL)
  message(FATAL_ERROR "Reel needs parallel (MPI-IO) HDF5: install libhdf5-openmpi-dev (tools/setup.sh does)")
endif()

# Which BLAS LibTorch will run on: Debian's libtorch uses the system libblas alternative.
set(REEL_BLAS "unknown")
if(EXISTS /etc/alternatives/libblas.so.3-x86_64-linux-gnu)
  file(READ_SYMLINK /etc/alternatives/libblas.so.3-x86_64-linux-gnu REEL_BLAS)
endif()
