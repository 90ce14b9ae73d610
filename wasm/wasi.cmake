# CMake toolchain file for the WASI command-line build (wasm32-wasi, WASI preview1).
#
# Uses Debian 12's clang-19 and lld-19 with Debian's wasi-libc (0.0~git20220510), which installs
# its headers in /usr/include/wasm32-wasi and its libraries in /usr/lib/wasm32-wasi rather than in
# a sysroot of its own. Pointing clang at "/" would also put the host's /usr/include on the search
# path, so this file assembles a private sysroot of two symbolic links in the build folder.
# The result is single-threaded because this wasi-libc has no pthread.h. With SQ_WASM_TARGET=wasi,
# CMakeLists.txt skips Threads and defines SQ_NO_THREADS.
#
#   cmake -S . -B build/wasi -DCMAKE_TOOLCHAIN_FILE=wasm/wasi.cmake -DSQ_WASM_TARGET=wasi

# Platform/WASI.cmake beside this file tells CMake the executable suffix.
list(APPEND CMAKE_MODULE_PATH ${CMAKE_CURRENT_LIST_DIR})
set(CMAKE_SYSTEM_NAME WASI)
set(CMAKE_SYSTEM_VERSION 1)
set(CMAKE_SYSTEM_PROCESSOR wasm32)

set(SQ_WASI_TRIPLE wasm32-wasi)
set(SQ_WASI_LIBC_INCLUDE /usr/include/wasm32-wasi)
set(SQ_WASI_LIBC_LIB /usr/lib/wasm32-wasi)
if(NOT EXISTS ${SQ_WASI_LIBC_INCLUDE}/stdio.h OR NOT EXISTS ${SQ_WASI_LIBC_LIB}/libc.a)
  message(FATAL_ERROR "wasi-libc not found in ${SQ_WASI_LIBC_INCLUDE} and ${SQ_WASI_LIBC_LIB}: "
                      "install the Debian package wasi-libc (tools/setup.sh does this)")
endif()

# clang looks for <sysroot>/include/wasm32-wasi and <sysroot>/lib/wasm32-wasi.
set(SQ_WASI_SYSROOT ${CMAKE_BINARY_DIR}/wasi-sysroot)
file(MAKE_DIRECTORY ${SQ_WASI_SYSROOT}/include ${SQ_WASI_SYSROOT}/lib)
file(CREATE_LINK ${SQ_WASI_LIBC_INCLUDE} ${SQ_WASI_SYSROOT}/include/${SQ_WASI_TRIPLE} SYMBOLIC)
file(CREATE_LINK ${SQ_WASI_LIBC_LIB} ${SQ_WASI_SYSROOT}/lib/${SQ_WASI_TRIPLE} SYMBOLIC)

find_program(SQ_WASI_CLANG NAMES clang-19 REQUIRED)
find_program(SQ_WASI_AR NAMES llvm-ar-19 ar REQUIRED)
find_program(SQ_WASI_RANLIB NAMES llvm-ranlib-19 ranlib REQUIRED)
set(CMAKE_C_COMPILER ${SQ_WASI_CLANG})
set(CMAKE_C_COMPILER_TARGET ${SQ_WASI_TRIPLE})
set(CMAKE_AR ${SQ_WASI_AR} CACHE FILEPATH "archiver")
set(CMAKE_RANLIB ${SQ_WASI_RANLIB} CACHE FILEPATH "archive indexer")
set(CMAKE_SYSROOT ${SQ_WASI_SYSROOT})

set(CMAKE_C_FLAGS_INIT "-msimd128")
# A cache entry, because CMake would otherwise append its Clang default -O3 to an _INIT value.
set(CMAKE_C_FLAGS_RELEASE "-O2 -DNDEBUG" CACHE STRING "C compiler flags for Release builds")
# wasm-ld-19 comes with lld-19. --strip-all drops the name section and debug info from the output.
# Given -O2 at link time, clang-19 also runs binaryen's wasm-opt -O2 on the module when wasm-opt
# is on PATH, which binaryen 108 can do for 128-bit SIMD (it cannot parse relaxed SIMD).
set(CMAKE_EXE_LINKER_FLAGS_INIT "-fuse-ld=lld")
set(CMAKE_EXE_LINKER_FLAGS_RELEASE_INIT "-Wl,--strip-all")

set(CMAKE_FIND_ROOT_PATH ${SQ_WASI_SYSROOT})
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)
