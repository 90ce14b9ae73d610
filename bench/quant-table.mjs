// Perplexity under simulated quantization for every bit setting, rotation and weight quantizer,
// printed as a Markdown table for docs/BENCHMARKS.md.
//
//   node bench/quant-table.mjs --model smollm2 [--max-windows N] [--seeds 5] [--threads 2]
//   node bench/quant-table.mjs --model stories260K
//
// Rotation "none" is the RTN baseline; "hadamard" is a random Hadamard R1/R2 (with R3/R4),
// reported as the mean and the min–max spread over the seeds. GPTQ calibrates on a different
// text than the evaluation text.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const shared = path.resolve(root, '../shared');

const models = {
  smollm2: {
    args: [path.join(root, 'models/smollm2/SmolLM2-135M-Instruct.Q4_1.gguf')],
    text: path.join(shared, 'data/wikitext-2-raw/wiki.test.raw'),
    calib: path.join(shared, 'data/wikitext-2-raw/wiki.valid.raw'),
    window: 2048,
    calibWindow: 512,
    calibSamples: 8,
  },
  stories260K: {
    args: [path.join(root, 'models/stories260K/stories260K.bin'), '--tokenizer', path.join(root, 'models/stories260K/tok512.bin')],
    text: path.join(shared, 'reference/tinystories-40k.txt'),
    calib: path.join(root, 'models/data/tinystories-calib.txt'),
    window: 512,
    calibWindow: 256,
    calibSamples: 64,
  },
};

const settings = [
  ['W16A16KV16', 16, 16, 16],
  ['W4A16KV16', 4, 16, 16],
  ['W4A8KV8', 4, 8, 8],
  ['W4A4KV16', 4, 4, 16],
  ['W4A4KV4', 4, 4, 4],
];

// The TinyStories evaluation text is the first 40,000 bytes of the validation part, so the
// calibration text is everything after them.
function prepareTinyStoriesCalibration(target) {
  if (existsSync(target)) return;
  const full = readFileSync(path.join(shared, 'data/tinystories/tinystories-valid-part.txt'));
  mkdirSync(path.dirname(target), { recursive: true });
  writeFileSync(target, full.subarray(40000));
}
prepareTinyStoriesCalibration(models.stories260K.calib);

const { values } = parseArgs({
  options: {
    model: { type: 'string', default: 'stories260K' },
    'max-windows': { type: 'string', default: '0' },
    seeds: { type: 'string', default: '5' },
    threads: { type: 'string', default: '2' },
    cli: { type: 'string', default: path.join(root, 'build/native/spinquant') },
  },
});
const model = models[values.model];
if (!model) {
  console.error(`unknown --model '${values.model}', expected ${Object.keys(models).join(' or ')}`);
  process.exit(2);
}
const seeds = Number(values.seeds);

function evaluate(extra) {
  const args = ['eval', ...model.args, '--text', model.text, '--window', String(model.window),
    '--max-windows', values['max-windows'], '--threads', values.threads, '--json', ...extra];
  const out = JSON.parse(execFileSync(values.cli, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }));
  process.stderr.write(`${extra.join(' ') || 'fp32'} -> ${out.ppl.toFixed(3)}\n`);
  return out;
}

function summarize(ppls) {
  const mean = ppls.reduce((a, b) => a + b, 0) / ppls.length;
  if (ppls.length === 1) return mean.toFixed(2);
  return `${mean.toFixed(2)} (${Math.min(...ppls).toFixed(2)}–${Math.max(...ppls).toFixed(2)})`;
}

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
    const weightArgs = gptq ? ['--gptq', '--calib', model.calib, '--calib-window', String(model.calibWindow),
      '--calib-samples', String(model.calibSamples)] : [];
    const rtn = evaluate([...bits, ...weightArgs, '--rotation', 'none']);
    tokens = rtn.n_predicted;
    const hadamard = [];
    for (let seed = 0; seed < seeds; seed++) {
      hadamard.push(evaluate([...bits, ...weightArgs, '--rotation', 'hadamard', '--seed', String(seed)]).ppl);
    }
    row.push(rtn.ppl.toFixed(2), summarize(hadamard));
  }
  rows.push(row);
}

console.log(`Model ${values.model}, ${tokens} predicted tokens, window ${model.window}, ${seeds} Hadamard seeds.\n`);
console.log('| setting | RTN, no rotation | RTN, random Hadamard | GPTQ, no rotation | GPTQ, random Hadamard |');
console.log('|---|---|---|---|---|');
for (const row of rows) console.log(`| ${row.join(' | ')} |`);
