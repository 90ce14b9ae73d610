// Perplexity under simulated quantization for every bit setting, rotation and weight quantizer,
// printed as a Markdown table for docs/BENCHMARKS.md.
//
//   node bench/quant-table.mjs --model smollm2 [--max-windows N] [--seeds 5] [--threads 2]
//   node bench/quant-table.mjs --model stories260K
//
// --cached-only prints the table from cached results alone, with "not run" for the rest.
//
// Rotation "none" is the RTN baseline; "hadamard" is a random Hadamard R1/R2 (with R3/R4),
// reported as the mean and the min–max spread over the seeds. GPTQ calibrates on a different
// text than the evaluation text. Results are cached in models/bench-cache.json (bench/lib.mjs).
import path from 'node:path';
import { parseArgs } from 'node:util';
import { evaluate, gptqArgs, modelNamed, prepareTinyStoriesCalibration, root, summarize } from './lib.mjs';

const settings = [
  ['W16A16KV16', 16, 16, 16],
  ['W4A16KV16', 4, 16, 16],
  ['W4A8KV8', 4, 8, 8],
  ['W4A4KV16', 4, 4, 16],
  ['W4A4KV4', 4, 4, 4],
];

prepareTinyStoriesCalibration();

const { values } = parseArgs({
  options: {
    model: { type: 'string', default: 'stories260K' },
    'max-windows': { type: 'string', default: '0' },
    seeds: { type: 'string', default: '5' },
    threads: { type: 'string', default: '2' },
    cli: { type: 'string', default: path.join(root, 'build/native/spinquant') },
    'cached-only': { type: 'boolean', default: false },
  },
});
const model = modelNamed(values.model);
const seeds = Number(values.seeds);
const options = { maxWindows: values['max-windows'], threads: values.threads, cachedOnly: values['cached-only'] };
const run = (extra) => evaluate(values.cli, model, extra, options);

const rows = [];
let tokens = 0;
for (const [name, w, a, kv] of settings) {
  const bits = ['--w-bits', String(w), '--a-bits', String(a), '--kv-bits', String(kv)];
  const row = [name];
  for (const gptq of [false, true]) {
    if (gptq && w === 16) {
      row.push('—', '—');
      continue;
    }
    const weightArgs = gptq ? gptqArgs(model) : [];
    const rtn = run([...bits, ...weightArgs, '--rotation', 'none']);
    tokens = rtn?.n_predicted ?? tokens;
    const hadamard = [];
    for (let seed = 0; seed < seeds; seed++) {
      hadamard.push(run([...bits, ...weightArgs, '--rotation', 'hadamard', '--seed', String(seed)])?.ppl ?? null);
    }
    row.push(rtn ? rtn.ppl.toFixed(2) : 'not run', summarize(hadamard));
  }
  rows.push(row);
}

console.log(`Model ${values.model}, ${tokens} predicted tokens, window ${model.window}, ${seeds} Hadamard seeds.\n`);
console.log('| setting | RTN, no rotation | RTN, random Hadamard | GPTQ, no rotation | GPTQ, random Hadamard |');
console.log('|---|---|---|---|---|');
for (const row of rows) console.log(`| ${row.join(' | ')} |`);
