#!/usr/bin/env bash
# Builds the libFuzzer harnesses (build-fuzz/), writes the seed corpus and runs every harness
# for FUZZ_SECONDS seconds. `npm run fuzz`, tools/setup.sh (build only) and
# tests/js/fuzz-smoke.test.mjs (5 s per harness) call this script.
#   FUZZ_SECONDS     seconds per harness (default 60)
#   FUZZ_TARGETS     harnesses to run, separated by spaces (default: all of them)
#   FUZZ_PARALLEL    harnesses that run at the same time (default 1)
#   FUZZ_NO_BUILD    1 to run the harnesses already in build-fuzz/ without rebuilding them
#   FUZZ_BUILD_ONLY  1 to build the harnesses and run none
#   FUZZ_OUT_DIR     folder for seeds, corpus, crash inputs and logs (default build-fuzz)
#   SQ_BUILD_JOBS    parallel compile jobs (default: the number of processors)
# The corpus of each harness grows in <out>/corpus/<harness>/, crash inputs go to
# <out>/artifacts/<harness>/ and logs to <out>/logs/<harness>.log. Inputs under
# tests/regressions/<harness>/ are replayed as part of the corpus. The script ends with a table
# of executions per second, corpus size and crashes, and exits with 1 when a harness found a
# crash or exited with a non-zero status. Needs clang-19 and libclang-rt-19-dev (the libFuzzer
# runtime).
# Everything runs from main(), so bash has read the whole file before it starts.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
seconds="${FUZZ_SECONDS:-60}"
parallel="${FUZZ_PARALLEL:-1}"
all_targets="llama2c tokenizer_bin gguf safetensors hf json rotation spm_encode bpe_encode spq spq_metadata spq_tokenizer chat_template"
targets="${FUZZ_TARGETS:-$all_targets}"
build_dir="$root/build-fuzz"
out_dir="${FUZZ_OUT_DIR:-$build_dir}"
jobs="${SQ_BUILD_JOBS:-$(nproc)}"

log() {
  printf 'fuzz: %s\n' "$*"
}

check_tools() {
  if ! command -v clang-19 >/dev/null 2>&1; then
    log "error: clang-19 is missing; install the Debian packages clang-19 and libclang-rt-19-dev" >&2
    exit 2
  fi
  if ! ls /usr/lib/llvm-19/lib/clang/19/lib/linux/libclang_rt.fuzzer-*.a >/dev/null 2>&1; then
    log "error: the libFuzzer runtime is missing; install the Debian package libclang-rt-19-dev" >&2
    exit 2
  fi
  # Stack traces name functions and lines only through llvm-symbolizer.
  local symbolizer
  if [[ -z "${ASAN_SYMBOLIZER_PATH:-}" ]]; then
    for symbolizer in llvm-symbolizer-19 llvm-symbolizer; do
      if command -v "$symbolizer" >/dev/null 2>&1; then
        ASAN_SYMBOLIZER_PATH="$(command -v "$symbolizer")"
        export ASAN_SYMBOLIZER_PATH
        break
      fi
    done
  fi
}

build_harnesses() {
  local generator=()
  if command -v ninja >/dev/null 2>&1; then
    generator=(-G Ninja)
  fi
  if [[ ! -f "$build_dir/CMakeCache.txt" ]]; then
    log "configuring $build_dir"
    cmake -S "$root/tests/fuzz" -B "$build_dir" "${generator[@]}" -DCMAKE_C_COMPILER=clang-19 >/dev/null
  fi
  log "building $build_dir"
  mkdir -p "$build_dir/logs"
  if ! cmake --build "$build_dir" --parallel "$jobs" >"$build_dir/logs/build.log" 2>&1; then
    log "error: the build failed; the end of $build_dir/logs/build.log:" >&2
    tail -n 30 "$build_dir/logs/build.log" >&2
    exit 2
  fi
}

write_seeds() {
  local tokenizer="$root/models/stories260K/tok512.bin"
  rm -rf "$out_dir/seeds"
  mkdir -p "$out_dir"
  if [[ -f "$tokenizer" ]]; then
    "$build_dir/make_seeds" "$out_dir/seeds" "$tokenizer"
  else
    log "note: $tokenizer is missing (run npm run setup); fuzz_spm_encode needs it"
    "$build_dir/make_seeds" "$out_dir/seeds"
  fi
}

# Per-harness options: a dictionary and, for text inputs, a larger maximum length than the
# short seeds would give.
harness_options() {
  case "$1" in
    gguf) echo "-dict=$root/tests/fuzz/dict/gguf.dict" ;;
    json | hf | safetensors | spq | spq_metadata) echo "-dict=$root/tests/fuzz/dict/json.dict" ;;
    spm_encode | bpe_encode | chat_template) echo "-dict=$root/tests/fuzz/dict/text.dict -max_len=4096" ;;
    *) echo "" ;;
  esac
}

# Allocations above 1 GiB count as crashes: every seed is below 64 KiB, so a parser that
# requests that much for a mutated seed does not bound its memory by its input. The exit
# status goes to <out>/logs/<harness>.status, because libFuzzer leaves no crash file for some
# failures (a harness that cannot start, or a sanitizer report while it reads the corpus).
run_one() {
  local harness="$1"
  local corpus="$out_dir/corpus/$harness"
  local artifacts="$out_dir/artifacts/$harness"
  local regressions="$root/tests/regressions/$harness"
  local inputs=("$corpus" "$out_dir/seeds/$harness")
  mkdir -p "$corpus" "$artifacts" "$out_dir/logs"
  if [[ -d "$regressions" ]]; then
    inputs+=("$regressions")
  fi
  local status=0
  # shellcheck disable=SC2046
  "$build_dir/fuzz_$harness" -max_total_time="$seconds" -rss_limit_mb=2048 -malloc_limit_mb=1024 \
    -timeout=10 -print_final_stats=1 -artifact_prefix="$artifacts/" $(harness_options "$harness") \
    "${inputs[@]}" >"$out_dir/logs/$harness.log" 2>&1 || status=$?
  echo "$status" >"$out_dir/logs/$harness.status"
}

summarize() {
  local harness="$1"
  local log_file="$out_dir/logs/$harness.log"
  local runs rate corpus_files corpus_bytes crashes status
  runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log_file" | grep -o '[0-9]*$' || echo "?")
  rate=$(grep -o 'stat::average_exec_per_sec: *[0-9]*' "$log_file" | grep -o '[0-9]*$' || echo "?")
  corpus_files=$(find "$out_dir/corpus/$harness" -type f | wc -l)
  corpus_bytes=$(du -sb "$out_dir/corpus/$harness" | cut -f1)
  crashes=$(find "$out_dir/artifacts/$harness" -type f \( -name 'crash-*' -o -name 'leak-*' -o -name 'oom-*' -o -name 'timeout-*' \) | wc -l)
  status=$(cat "$out_dir/logs/$harness.status")
  printf '%-14s %12s %10s %8s %12s %8s %6s\n' "$harness" "$runs" "$rate" "$corpus_files" "$corpus_bytes" "$crashes" "$status"
  [[ "$crashes" -eq 0 && "$status" -eq 0 ]]
}

main() {
  cd "$root"
  check_tools
  local harness
  for harness in $targets; do
    if [[ " $all_targets " != *" $harness "* ]]; then
      log "error: unknown harness '$harness'; expected one of: $all_targets" >&2
      exit 2
    fi
  done
  if [[ "${FUZZ_NO_BUILD:-0}" != "1" ]]; then
    build_harnesses
  fi
  if [[ "${FUZZ_BUILD_ONLY:-0}" == "1" ]]; then
    return
  fi
  write_seeds

  log "running $(wc -w <<<"$targets") harnesses for $seconds s each, $parallel at a time"
  local running=0
  for harness in $targets; do
    run_one "$harness" &
    running=$((running + 1))
    if [[ $running -ge $parallel ]]; then
      wait -n
      running=$((running - 1))
    fi
  done
  wait

  printf '%-14s %12s %10s %8s %12s %8s %6s\n' harness executions exec/s files corpus_bytes crashes status
  local failed=0
  for harness in $targets; do
    summarize "$harness" || failed=1
  done
  if [[ $failed -ne 0 ]]; then
    log "crash inputs are in $out_dir/artifacts/; the logs in $out_dir/logs/ show the stack traces" >&2
    exit 1
  fi
}

main "$@"
