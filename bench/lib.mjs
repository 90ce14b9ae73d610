// Shared pieces of the perplexity benchmarks: the two models with their texts, one `spinquant
// eval` call with a result cache, and the summary of a list of perplexities.
//
// The cache (models/bench-cache.json, ignored by git) keys each printed result by the eval
// command line and the size and modification time of the CLI binary, the model and any
// rotation file. The quantization and learned-rotation tables then share their common rows,
// and a stopped run continues where it ended. Delete the file to measure everything again.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const shared = path.resolve(root, '../shared');
const cachePath = path.join(root, 'models/bench-cache.json');

export const models = {
  smollm2: {
    file: path.join(root, 'models/smollm2/SmolLM2-135M-Instruct.Q4_1.gguf'),
    args: [path.join(root, 'models/smollm2/SmolLM2-135M-Instruct.Q4_1.gguf')],
    text: path.join(shared, 'data/wikitext-2-raw/wiki.test.raw'),
    calib: path.join(shared, 'data/wikitext-2-raw/wiki.valid.raw'),
    window: 2048,
    calibWindow: 512,
    calibSamples: 8,
  },
  stories260K: {
    file: path.join(root, 'models/stories260K/stories260K.bin'),
    args: [path.join(root, 'models/stories260K/stories260K.bin'), '--tokenizer', path.join(root, 'models/stories260K/tok512.bin')],
    text: path.join(shared, 'reference/tinystories-40k.txt'),
    calib: path.join(root, 'models/data/tinystories-calib.txt'),
    window: 512,
    calibWindow: 256,
    calibSamples: 64,
  },
};

// The TinyStories evaluation text is the first 40,000 bytes of the validation part, so the
// calibration text is everything after them.
export function prepareTinyStoriesCalibration() {
  const target = models.stories260K.calib;
  if (existsSync(target)) return;
  const full = readFileSync(path.join(shared, 'data/tinystories/tinystories-valid-part.txt'));
  mkdirSync(path.dirname(target), { recursive: true });
  writeFileSync(target, full.subarray(40000));
}

// Returns the named model's settings, or exits with a message naming the valid choices.
export function modelNamed(name) {
  const model = models[name];
  if (!model) {
    console.error(`unknown --model '${name}', expected ${Object.keys(models).join(' or ')}`);
    process.exit(2);
  }
  return model;
}

function fileStamp(file) {
  const stat = statSync(file);
  return `${stat.size}:${stat.mtimeMs}`;
}

function readCache() {
  return existsSync(cachePath) ? JSON.parse(readFileSync(cachePath, 'utf8')) : {};
}

// Runs `spinquant eval` on the model's evaluation text with the extra recipe arguments and
// returns its JSON result, from the cache when the same command already ran on the same files.
// With cachedOnly it runs nothing and returns null for a result that is not cached.
export function evaluate(cli, model, extra, { maxWindows = 0, threads = 2, cachedOnly = false } = {}) {
  // Results do not depend on the thread count, so it stays out of the key.
  const recipe = ['eval', ...model.args, '--text', model.text, '--window', String(model.window),
    '--max-windows', String(maxWindows), '--json', ...extra];
  const args = [...recipe, '--threads', String(threads)];
  const stamps = [cli, model.file, ...extra.filter((arg) => arg.endsWith('.rot'))].map(fileStamp);
  const key = [...stamps, ...recipe].join(' ');
  const cache = readCache();
  let out = cache[key];
  if (out === undefined && cachedOnly) return null;
  if (out === undefined) {
    out = JSON.parse(execFileSync(cli, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }));
    const latest = readCache();
    latest[key] = out;
    mkdirSync(path.dirname(cachePath), { recursive: true });
    writeFileSync(cachePath, JSON.stringify(latest, null, 1));
  }
  process.stderr.write(`${extra.join(' ') || 'fp32'} -> ${out.ppl.toFixed(3)}\n`);
  return out;
}

// The eval arguments that quantize weights with GPTQ on the model's calibration text.
export function gptqArgs(model) {
  return ['--gptq', '--calib', model.calib, '--calib-window', String(model.calibWindow),
    '--calib-samples', String(model.calibSamples)];
}

export function mean(values) {
  return values.reduce((a, b) => a + b, 0) / values.length;
}

// Formats perplexities as "mean (min–max)", or the single value; "not run" when any is missing.
export function summarize(ppls) {
  if (ppls.some((ppl) => ppl === null)) return 'not run';
  if (ppls.length === 1) return ppls[0].toFixed(2);
  return `${mean(ppls).toFixed(2)} (${Math.min(...ppls).toFixed(2)}–${Math.max(...ppls).toFixed(2)})`;
}
