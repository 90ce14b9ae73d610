#!/usr/bin/env bash
# Builds every target of the project incrementally. With nothing to do it takes a few seconds.
#   build/native              native Release build: CLI build/native/spinquant, library, C tests
#   build/wasi                WASI command-line module, written by CMake to dist/spinquant.wasm
#   build/emscripten/VARIANT  ES module dist/spinquant-VARIANT.mjs and its .wasm
#   build/asan                native build with AddressSanitizer and UBSan, only with SQ_SANITIZE=1
#                             (SQ_SANITIZE=only builds just this one)
# SQ_EMSCRIPTEN_VARIANTS picks the Emscripten variants (default: "simd pthread relaxed").
# SQ_BUILD_JOBS sets the parallel job count (default: the number of processors).
# Needs the Debian packages that tools/setup.sh installs.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

jobs="${SQ_BUILD_JOBS:-$(nproc)}"
variants="${SQ_EMSCRIPTEN_VARIANTS:-simd pthread relaxed}"

# Debian's Emscripten 3.1.6 loads acorn and other Node.js modules from /usr/share/nodejs.
export NODE_PATH="/usr/share/nodejs${NODE_PATH:+:$NODE_PATH}"

generator=()
if command -v ninja >/dev/null 2>&1; then
  generator=(-G Ninja)
fi

log() {
  printf 'build: %s\n' "$*"
}

# Configures a build folder once. Later builds let CMake re-run itself when CMakeLists.txt,
# the toolchain file or the globbed source list changes.
configure_once() {
  local build_dir="$1"
  shift
  if [[ -f "$build_dir/CMakeCache.txt" && ( -f "$build_dir/build.ninja" || -f "$build_dir/Makefile" ) ]]; then
    return
  fi
  log "configuring $build_dir"
  "$@" -S "$root" -B "$build_dir" "${generator[@]}" -DCMAKE_BUILD_TYPE=Release >/dev/null
}

build_native() {
  configure_once build/native cmake
  log "building build/native"
  cmake --build build/native --parallel "$jobs"
}

build_wasi() {
  configure_once build/wasi cmake -DCMAKE_TOOLCHAIN_FILE="$root/wasm/wasi.cmake" -DSQ_WASM_TARGET=wasi
  log "building build/wasi"
  cmake --build build/wasi --parallel "$jobs" --target spinquant
}

build_emscripten() {
  local variant="$1"
  local build_dir="build/emscripten/$variant"
  configure_once "$build_dir" emcmake cmake -DSQ_WASM_TARGET=emscripten -DSQ_EMSCRIPTEN_VARIANT="$variant"
  log "building $build_dir"
  cmake --build "$build_dir" --parallel "$jobs" --target spinquant_web
}

# build/asan: the native build with AddressSanitizer and UndefinedBehaviorSanitizer
# (-DSQ_SANITIZE=ON) that tests/js/sanitizers.test.mjs runs the C tests and the CLI error tests
# with. SQ_SANITIZE=1 builds it after the other targets, SQ_SANITIZE=only builds nothing else.
# SQ_ASAN_BUILD_DIR names another folder for it.
build_asan() {
  local build_dir="${SQ_ASAN_BUILD_DIR:-build/asan}"
  configure_once "$build_dir" cmake -DSQ_SANITIZE=ON
  log "building $build_dir"
  cmake --build "$build_dir" --parallel "$jobs"
}

print_sizes() {
  local file
  log "output sizes in bytes:"
  for file in build/native/spinquant dist/*.wasm dist/*.mjs; do
    if [[ -f "$file" ]]; then
      printf '  %10d  %s\n' "$(stat -c %s "$file")" "$file"
    fi
  done
}

main() {
  local variant
  if [[ "${SQ_SANITIZE:-0}" == "only" ]]; then
    build_asan
    return
  fi
  build_native
  build_wasi
  for variant in $variants; do
    build_emscripten "$variant"
  done
  if [[ "${SQ_SANITIZE:-0}" == "1" ]]; then
    build_asan
  fi
  print_sizes
}

main "$@"
