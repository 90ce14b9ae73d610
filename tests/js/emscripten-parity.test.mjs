// Parity of each Emscripten variant (dist/spinquant-VARIANT.mjs) with the native CLI under Node.js,
// through the C API of wasm/api*.c (sq_api_model_load, sq_api_perplexity_*, sq_api_tokenize,
// sq_api_generate_*), with the model files read from the host through NODEFS:
//   - stories260K (fp32 runtime): the perplexity of the TinyStories reference text to 1e-5
//     relative, the same token ids, and the same greedy continuation;
//   - a W4A8KV8 .spq file of stories260K made by the native quantize command (integer runtime,
//     whose int8 kernels differ per platform): the perplexity over 8 windows to 1e-5 relative;
//   - a short rotation learning run (sq_api_calibrate): the same rotation file bytes as the
//     native calibrate command with the same options (the pthread variant with two threads).
// The simd variant must exist; pthread and relaxed are checked when built. The relaxed variant
// runs with --no-liftoff (see tests/js/fixtures/targets.mjs); without it, Node.js 20 gets the
// .spq perplexity wrong.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { run } from './helpers.mjs';
import { makeStoriesSpq, SPQ_FILE_NAME, SPQ_MAX_WINDOWS, SPQ_WINDOW } from './fixtures/spq-reference.mjs';
import {
  describeAgreement, distDir, emscriptenVariants, nativeCli, relativeDifference, repositoryRoot, stories,
} from './fixtures/targets.mjs';

const PPL_TOLERANCE = 1e-5;
const runner = path.join(repositoryRoot, 'tests/js/fixtures/emscripten-run.mjs');
const model = [stories.model, '--tokenizer', stories.tokenizer];
const textFile = path.resolve(repositoryRoot, stories.text);
const prompt = 'Once upon a time';
const MAX_TOKENS = 64;

// A short calibration: 3 iterations of 2 windows of 64 tokens, from the initial rotations of seed 5.
const CALIBRATION = { iterations: 3, window: 64, samples: 8, windowsPerStep: 2, seed: 5 };

let spqDir;
let spq;
let nativeRotation;

before(() => {
  spqDir = mkdtempSync(path.join(os.tmpdir(), 'spinquant-emscripten-parity-'));
});

after(() => {
  if (spqDir) rmSync(spqDir, { recursive: true, force: true });
});

let nativeResults;
function native() {
  if (nativeResults) return nativeResults;
  const runNative = (args) => {
    const result = run(nativeCli, args);
    assert.equal(result.status, 0, `native ${args[0]} failed:\n${result.stderr}`);
    return JSON.parse(result.stdout);
  };
  nativeResults = {
    eval: runNative(['eval', ...model, '--text', stories.text, '--window', '512', '--json']),
    tokenize: runNative(['tokenize', ...model, '--text', stories.text, '--json']),
    generate: runNative(['generate', ...model, '--prompt', prompt, '--temperature', '0', '--max-tokens',
      String(MAX_TOKENS), '--json']),
  };
  return nativeResults;
}

// Runs a job of tests/js/fixtures/emscripten-run.mjs in a new Node.js process.
function runJob(variant, job) {
  const fullJob = { distDir, variant: variant.name, threads: variant.threads, ...job };
  const result = run(process.execPath, [...variant.nodeFlags, runner, JSON.stringify(fullJob)], { timeout: 280_000 });
  const output = JSON.parse(result.stdout || '{}');
  assert.equal(result.status, 0, `${variant.name} failed: ${output.error ?? ''}\n${result.stderr}`);
  return output;
}

function assertSamePerplexity(t, label, actual, expected) {
  for (const field of ['ppl', 'mean_nll']) {
    const difference = relativeDifference(actual[field], expected[field]);
    assert.ok(difference <= PPL_TOLERANCE,
      `${field}: ${label} ${actual[field]}, native ${expected[field]}, relative difference ${difference}`);
  }
  for (const field of ['n_windows', 'n_predicted', 'window']) {
    assert.equal(actual[field], expected[field], field);
  }
  t.diagnostic(`ppl native ${expected.ppl}, ${label} ${actual.ppl}: ${describeAgreement(actual, expected)}; ` +
    `${actual.seconds.toFixed(2)} s`);
}

for (const variant of emscriptenVariants) {
  const modulePath = path.join(distDir, `spinquant-${variant.name}.mjs`);
  const built = existsSync(modulePath);
  const skip = !built && variant.name !== 'simd' ? `${modulePath} was not built` : false;

  test(`emscripten ${variant.name} in Node.js matches native on stories260K`, { skip, timeout: 300_000 }, (t) => {
    assert.ok(built, `${modulePath} not found; run npm run build`);
    const expected = native();
    const output = runJob(variant, {
      mounts: { '/repo': repositoryRoot },
      model: `/repo/${stories.model}`,
      tokenizer: `/repo/${stories.tokenizer}`,
      tasks: [
        { kind: 'perplexity', textFile, window: 512 },
        // `spinquant tokenize` parses special-token text.
        { kind: 'tokenize', textFile, parseSpecial: 1 },
        { kind: 'generate', prompt, maxTokens: MAX_TOKENS },
      ],
    });
    const [perplexity, tokenized, generated] = output.results;

    assertSamePerplexity(t, variant.name, perplexity, expected.eval);
    assert.equal(perplexity.n_tokens, expected.eval.n_tokens);
    assert.equal(tokenized.ids.length, expected.tokenize.count);
    assert.deepEqual(tokenized.ids, expected.tokenize.ids);
    assert.deepEqual(generated.promptTokens, expected.generate.prompt_tokens);
    assert.deepEqual(generated.tokens, expected.generate.tokens);
  });

  test(`emscripten ${variant.name} in Node.js matches native on a .spq model`, { skip, timeout: 300_000 }, (t) => {
    assert.ok(built, `${modulePath} not found; run npm run build`);
    spq ??= makeStoriesSpq(spqDir);
    const output = runJob(variant, {
      mounts: { '/spq': spqDir },
      model: `/spq/${SPQ_FILE_NAME}`,
      tasks: [{ kind: 'perplexity', textFile, window: SPQ_WINDOW, maxWindows: SPQ_MAX_WINDOWS }],
    });
    assert.equal(output.info.runtime, 'integer');
    t.diagnostic(`kernels: native ${spq.nativeEval.kernels}, ${variant.name} ${output.info.kernels}`);
    assertSamePerplexity(t, variant.name, output.results[0], spq.nativeEval);
  });
}

for (const variant of emscriptenVariants) {
  const modulePath = path.join(distDir, `spinquant-${variant.name}.mjs`);
  const built = existsSync(modulePath);
  const skip = !built && variant.name !== 'simd' ? `${modulePath} was not built` : false;

  test(`emscripten ${variant.name} in Node.js calibrates like native`, { skip, timeout: 300_000 }, () => {
    assert.ok(built, `${modulePath} not found; run npm run build`);
    if (!nativeRotation) {
      const file = path.join(spqDir, 'calibrate-native.rot');
      const result = run(nativeCli, ['calibrate', ...model, '--text', stories.text, '--out', file,
        '--iters', String(CALIBRATION.iterations), '--window', String(CALIBRATION.window),
        '--samples', String(CALIBRATION.samples), '--windows-per-step', String(CALIBRATION.windowsPerStep),
        '--seed', String(CALIBRATION.seed), '--threads', '1', '--json']);
      assert.equal(result.status, 0, `native calibrate failed:\n${result.stderr}`);
      nativeRotation = { bytes: readFileSync(file), summary: JSON.parse(result.stdout) };
    }
    const name = `calibrate-${variant.name}.rot`;
    const output = runJob(variant, {
      mounts: { '/repo': repositoryRoot, '/out': spqDir },
      model: `/repo/${stories.model}`,
      tokenizer: `/repo/${stories.tokenizer}`,
      tasks: [{ kind: 'calibrate', textFile, out: `/out/${name}`, options: CALIBRATION }],
    });
    const [summary] = output.results;
    assert.equal(summary.iterations, nativeRotation.summary.iterations);
    assert.equal(summary.first_loss, nativeRotation.summary.first_loss);
    assert.equal(summary.final_loss, nativeRotation.summary.final_loss);
    assert.ok(readFileSync(path.join(spqDir, name)).equals(nativeRotation.bytes),
      `${name} differs from the native calibration result`);
  });
}
