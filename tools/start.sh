#!/usr/bin/env bash
# `npm start`: set up and build, prepare the demo models, then serve the browser demo.
#   1. tools/setup.sh (packages, models, build)
#   2. models/smollm2-w4a8kv8.spq: SmolLM2-135M-Instruct at W4A8KV8 with the learned rotations
#      of models/smollm2-learned.rot when that file exists, else with random Hadamard rotations
#   3. models/stories260K-w4a8kv8.spq: stories260K at W4A8KV8, the quick demo model
#   4. web/server.mjs on 127.0.0.1 (PORT, default 8080)
# A model is quantized again only when an input is newer than it or its recipe changed.
# Options: --no-serve prepares the models and exits (for CI and scripts); --skip-setup skips
# step 1 and uses the build that exists.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

readonly CLI=build/native/spinquant
readonly SMOLLM2_GGUF=models/smollm2/SmolLM2-135M-Instruct.Q4_1.gguf
readonly SMOLLM2_SPQ=models/smollm2-w4a8kv8.spq
readonly SMOLLM2_ROTATION=models/smollm2-learned.rot
readonly STORIES_BIN=models/stories260K/stories260K.bin
readonly STORIES_TOKENIZER=models/stories260K/tok512.bin
readonly STORIES_SPQ=models/stories260K-w4a8kv8.spq
readonly STORIES_ROTATION=models/stories260K-learned.rot
readonly BITS=(--w-bits 4 --a-bits 8 --kv-bits 8 --embed-bits 8)
# SmolLM2 gets one weight scale per 32 input columns. With one scale per output channel,
# SmolLM2-135M at W4A8KV8 with Hadamard rotations measured a WikiText-2 perplexity of 147 on the
# first 512-token window (fp32: 27), and with groups of 32 it measured 42. stories260K keeps one
# scale per channel, because 32 does not divide its hidden size of 172.
readonly SMOLLM2_GROUP=(--w-group 32)

log() {
  printf 'start: %s\n' "$*"
}

serve=1
setup=1
for option in "$@"; do
  case "$option" in
    --no-serve) serve=0 ;;
    --skip-setup) setup=0 ;;
    *)
      printf 'start: error: unknown option %s; expected --no-serve or --skip-setup\n' "$option" >&2
      exit 2
      ;;
  esac
done

if [[ $setup -eq 1 ]]; then
  bash tools/setup.sh
fi

# Succeeds when the native program has the quantize command; older builds lack it.
has_quantize() {
  "$CLI" quantize --help >/dev/null 2>&1
}

# Quantizes unless OUT is newer than every input and was made by the same command.
# The command line is stored beside the model in OUT.recipe.
# Usage: quantize_cached OUT INPUT... -- QUANTIZE_ARGS...
quantize_cached() {
  local out="$1"
  shift
  local inputs=()
  while [[ "$1" != "--" ]]; do
    inputs+=("$1")
    shift
  done
  shift
  local recipe="$out.recipe"
  local command_line="$CLI quantize $* --out $out"
  local fresh=1
  if [[ ! -f "$out" || ! -f "$recipe" || "$(cat "$recipe")" != "$command_line" ]]; then
    fresh=0
  else
    local input
    for input in "${inputs[@]}"; do
      [[ "$input" -nt "$out" ]] && fresh=0
    done
  fi
  if [[ $fresh -eq 1 ]]; then
    log "$out is up to date"
    return
  fi
  log "quantizing: $command_line"
  "$CLI" quantize "$@" --out "$out" --threads "$(nproc)"
  printf '%s\n' "$command_line" >"$recipe"
}

prepare_models() {
  local rotation=(--rotation hadamard)
  local inputs=("$SMOLLM2_GGUF")
  if [[ -f "$SMOLLM2_ROTATION" ]]; then
    rotation=(--rotation "$SMOLLM2_ROTATION")
    inputs+=("$SMOLLM2_ROTATION")
    log "SmolLM2: using the learned rotations in $SMOLLM2_ROTATION"
  else
    cat <<EOF
start: SmolLM2 uses random Hadamard rotations, because $SMOLLM2_ROTATION does not exist.
start: To learn rotations, run from $root (add --resume to continue an interrupted run):
         $CLI calibrate $SMOLLM2_GGUF --text ../shared/data/wikitext-2-raw/wiki.valid.raw --out $SMOLLM2_ROTATION --w-bits 4 ${SMOLLM2_GROUP[*]} --a-bits 8 --kv-bits 8 --window 256 --samples 64 --iters 100 --threads $(nproc) --checkpoint models/smollm2-learned.ckpt
       then run npm start again; it quantizes the model again with the learned rotations.
       One iteration takes about 20 s on two idle cores (about 35 minutes for 100), longer on busy ones.
EOF
  fi
  quantize_cached "$SMOLLM2_SPQ" "${inputs[@]}" -- "$SMOLLM2_GGUF" "${rotation[@]}" "${BITS[@]}" "${SMOLLM2_GROUP[@]}"

  rotation=(--rotation hadamard)
  inputs=("$STORIES_BIN" "$STORIES_TOKENIZER")
  if [[ -f "$STORIES_ROTATION" ]]; then
    rotation=(--rotation "$STORIES_ROTATION")
    inputs+=("$STORIES_ROTATION")
  fi
  quantize_cached "$STORIES_SPQ" "${inputs[@]}" -- \
    "$STORIES_BIN" --tokenizer "$STORIES_TOKENIZER" "${rotation[@]}" "${BITS[@]}"
}

if has_quantize; then
  prepare_models
else
  log "notice: $CLI has no quantize command yet, so the demo serves the GGUF and llama2.c models"
  log "        (run in fp32) instead of the .spq models"
fi

if [[ $serve -eq 0 ]]; then
  exit 0
fi
log "starting the demo server (web/server.mjs)"
exec node web/server.mjs
