# CMake platform module for CMAKE_SYSTEM_NAME WASI, found through CMAKE_MODULE_PATH set in
# wasm/wasi.cmake. CMake 3.25 ships none, so this names the output format and nothing else.
set(WASI 1)
set(CMAKE_EXECUTABLE_SUFFIX ".wasm")
set(CMAKE_STATIC_LIBRARY_PREFIX "lib")
set(CMAKE_STATIC_LIBRARY_SUFFIX ".a")
