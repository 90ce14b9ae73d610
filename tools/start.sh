#!/usr/bin/env bash
# `npm start`: set up and build, then run the default model: a chat reply from
# SmolLM2-135M-Instruct and its WikiText-2 perplexity on the first window of the test split.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
bash tools/setup.sh

cli=build/native/spinquant
model=models/smollm2/SmolLM2-135M-Instruct.Q4_1.gguf
text=../shared/data/wikitext-2-raw/wiki.test.raw
threads=$(nproc)

printf '\n== %s: chat answer (greedy) ==\n' "$model"
printf 'Q: What are three tips for staying healthy?\nA: '
"$cli" generate "$model" --chat --prompt "What are three tips for staying healthy?" \
  --temperature 0 --max-tokens 128 --threads "$threads"

if [[ -f "$text" ]]; then
  printf '\n== WikiText-2 test perplexity, first 2048-token window ==\n'
  "$cli" eval "$model" --text "$text" --window 2048 --max-windows 1 --threads "$threads"
  printf '\n== the same at W4A4KV4 with random Hadamard rotations (fake quantization) ==\n'
  "$cli" eval "$model" --text "$text" --window 2048 --max-windows 1 --threads "$threads" \
    --w-bits 4 --a-bits 4 --kv-bits 4 --rotation hadamard --seed 0 2>/dev/null
fi
