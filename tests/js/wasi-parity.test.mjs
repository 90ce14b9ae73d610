// Parity of the WASI command-line module with the native CLI on stories260K. dist/spinquant.wasm
// runs under both runners, tools/wasmtime-run.py (the PyPI wasmtime engine) and
// tools/wasi-run.mjs (node:wasi), from the repository root with the repository preopened as "."
// and ../shared as "../shared", so every path is the same relative path in both worlds.
// The perplexities (fp32, W4A4KV4 with Hadamard rotations, and the integer runtime on a .spq
// file) must agree to 1e-5 relative. Token ids, greedy generations, and the bytes of rotation,
// calibration and .spq files must be identical, and so must the exit code and messages of error
// cases. A path outside the preopened directories must give a message that names --dir.
// Needs build/native/spinquant and dist/spinquant.wasm (tools/build.sh); SQ_BUILD_ROOT and
// SQ_DIST_DIR point at other build folders (see tests/js/fixtures/targets.mjs).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { run, wasiRunners } from './helpers.mjs';
import { nativeCli, relativeDifference, stories, wasiModule, wasiPreopens } from './fixtures/targets.mjs';

const PPL_TOLERANCE = 1e-5;
const model = [stories.model, '--tokenizer', stories.tokenizer];

let outputDir;
let availableCommands = '';

before(() => {
  for (const file of [nativeCli, wasiModule]) {
    assert.ok(existsSync(file), `${file} not found; run npm run build`);
  }
  outputDir = mkdtempSync(path.join(os.tmpdir(), 'spinquant-wasi-parity-'));
  // `spinquant --help` lists the commands on stderr; calibrate and quantize are checked when listed.
  availableCommands = run(nativeCli, ['--help']).stderr;
});

after(() => {
  if (outputDir) rmSync(outputDir, { recursive: true, force: true });
});

function runNative(args) {
  const result = run(nativeCli, args);
  assert.equal(result.signal, null, `native CLI was killed by ${result.signal}`);
  return result;
}

// Runs the module under a runner with the standard preopens, plus outputDir as /out when given.
function runWasi(runner, args, { preopens = wasiPreopens, withOutput = false } = {}) {
  const extra = withOutput ? ['--dir', `${outputDir}::/out`] : [];
  return run(runner.command, [...runner.prefix, ...preopens, ...extra, wasiModule, ...args], { timeout: 240_000 });
}

// Native results are computed once and shared by both runners' tests.
const nativeCache = new Map();
function nativeOnce(key, args) {
  if (!nativeCache.has(key)) nativeCache.set(key, runNative(args));
  return nativeCache.get(key);
}

function parseJson(result, label) {
  assert.equal(result.status, 0, `${label} exited with ${result.status}:\n${result.stderr}`);
  return JSON.parse(result.stdout);
}

// Compares two perplexity JSON objects: ppl and mean_nll to PPL_TOLERANCE relative, every other
// field exactly except those listed in ignored. Returns whether ppl and mean_nll print identically.
function assertSamePerplexity(t, expectedResult, actualResult, ignored = []) {
  const expected = parseJson(expectedResult, 'native eval');
  const actual = parseJson(actualResult, 'WASI eval');
  for (const field of ['ppl', 'mean_nll']) {
    const difference = relativeDifference(actual[field], expected[field]);
    assert.ok(difference <= PPL_TOLERANCE,
      `${field}: WASI ${actual[field]}, native ${expected[field]}, relative difference ${difference}`);
  }
  const strip = (object) => Object.fromEntries(Object.entries(object)
    .filter(([key]) => !['ppl', 'mean_nll', ...ignored].includes(key)));
  assert.deepEqual(strip(actual), strip(expected));
  const identical = actual.ppl === expected.ppl && actual.mean_nll === expected.mean_nll;
  t.diagnostic(`ppl native ${expected.ppl}, WASI ${actual.ppl}: ${identical ? 'identical in all printed digits' : 'different'}`);
  return identical;
}

const evalFp32 = ['eval', ...model, '--text', stories.text, '--window', '512', '--json'];
const evalW4A4 = [...evalFp32, '--w-bits', '4', '--a-bits', '4', '--kv-bits', '4', '--rotation', 'hadamard',
  '--seed', '1'];

for (const runner of wasiRunners) {
  const label = `spinquant.wasm under ${runner.name}`;

  test(`${label}: fp32 eval perplexity matches native`, (t) => {
    assertSamePerplexity(t, nativeOnce('eval-fp32', evalFp32), runWasi(runner, evalFp32));
  });

  test(`${label}: W4A4KV4 Hadamard eval perplexity matches native`, (t) => {
    assertSamePerplexity(t, nativeOnce('eval-w4a4', evalW4A4), runWasi(runner, evalW4A4));
  });

  test(`${label}: tokenize --json gives the same ids`, () => {
    const args = ['tokenize', ...model, '--text', stories.text, '--json'];
    const expected = nativeOnce('tokenize', args);
    const actual = runWasi(runner, args);
    assert.equal(actual.status, 0, actual.stderr);
    assert.equal(JSON.parse(actual.stdout).count, JSON.parse(expected.stdout).count);
    assert.equal(actual.stdout, expected.stdout);
  });

  test(`${label}: greedy generate gives the same tokens and text`, () => {
    const args = ['generate', ...model, '--prompt', 'Once upon a time', '--temperature', '0', '--max-tokens', '64',
      '--json'];
    const expected = parseJson(nativeOnce('generate', args), 'native generate');
    const actual = parseJson(runWasi(runner, args), 'WASI generate');
    assert.equal(actual.tokens.length, 64);
    assert.deepEqual(actual.prompt_tokens, expected.prompt_tokens);
    assert.deepEqual(actual.tokens, expected.tokens);
    assert.equal(actual.text, expected.text);
  });

  for (const rotation of ['hadamard', 'random']) {
    test(`${label}: rotate --rotation ${rotation} --seed 3 writes the same bytes`, () => {
      const name = `rotate-${rotation}`;
      const args = (out) => ['rotate', ...model, '--rotation', rotation, '--seed', '3', '--out', out];
      const nativeFile = path.join(outputDir, `${name}-native.rot`);
      if (!nativeCache.has(name)) nativeCache.set(name, runNative(args(nativeFile)));
      assert.equal(nativeCache.get(name).status, 0, nativeCache.get(name).stderr);
      const wasiName = `${name}-${runner.name.replace(':', '-')}.rot`;
      const actual = runWasi(runner, args(`/out/${wasiName}`), { withOutput: true });
      assert.equal(actual.status, 0, actual.stderr);
      assert.equal(actual.stderr, nativeCache.get(name).stderr);
      assert.ok(readFileSync(path.join(outputDir, wasiName)).equals(readFileSync(nativeFile)),
        `${wasiName} differs from the native rotation file`);
    });
  }

  test(`${label}: calibrate writes the same rotation file`, (t) => {
    if (!/^\s+calibrate\s/m.test(availableCommands)) {
      t.skip('the native CLI has no calibrate command');
      return;
    }
    // A short run: 3 iterations over windows of 64 tokens, one thread.
    const args = (out) => ['calibrate', ...model, '--text', stories.text, '--out', out, '--iters', '3', '--window', '64',
      '--samples', '8', '--windows-per-step', '2', '--seed', '5', '--threads', '1', '--json'];
    const nativeFile = path.join(outputDir, 'calibrate-native.rot');
    if (!nativeCache.has('calibrate')) nativeCache.set('calibrate', runNative(args(nativeFile)));
    const expected = parseJson(nativeCache.get('calibrate'), 'native calibrate');
    const wasiName = `calibrate-${runner.name.replace(':', '-')}.rot`;
    const actual = parseJson(runWasi(runner, args(`/out/${wasiName}`), { withOutput: true }), 'WASI calibrate');
    for (const summary of [expected, actual]) {
      delete summary.out;
      delete summary.seconds;
    }
    assert.deepEqual(actual, expected);
    assert.ok(readFileSync(path.join(outputDir, wasiName)).equals(readFileSync(nativeFile)),
      `${wasiName} differs from the native calibration result`);
  });

  test(`${label}: quantize writes the same .spq bytes, which evaluate alike`, (t) => {
    if (!/^\s+quantize\s/m.test(availableCommands)) {
      t.skip('the native CLI has no quantize command');
      return;
    }
    const args = (out) => ['quantize', ...model, '--out', out, '--rotation', 'hadamard', '--seed', '1', '--json'];
    const nativeFile = path.join(outputDir, 'quantize-native.spq');
    if (!nativeCache.has('quantize')) nativeCache.set('quantize', runNative(args(nativeFile)));
    const expected = parseJson(nativeCache.get('quantize'), 'native quantize');
    const wasiName = `quantize-${runner.name.replace(':', '-')}.spq`;
    const actual = parseJson(runWasi(runner, args(`/out/${wasiName}`), { withOutput: true }), 'WASI quantize');
    for (const summary of [expected, actual]) {
      delete summary.out;
      delete summary.seconds;
    }
    assert.deepEqual(actual, expected);
    assert.ok(readFileSync(path.join(outputDir, wasiName)).equals(readFileSync(nativeFile)),
      `${wasiName} differs from the native .spq file`);

    // The integer runtime runs other kernels per platform; the "kernels" field names them.
    const evalSpq = (file) => ['eval', file, '--text', stories.text, '--window', '512', '--max-windows', '8', '--json'];
    if (!nativeCache.has('eval-spq')) nativeCache.set('eval-spq', runNative(evalSpq(nativeFile)));
    assertSamePerplexity(t, nativeCache.get('eval-spq'), runWasi(runner, evalSpq(`/out/${wasiName}`), { withOutput: true }),
      ['kernels']);
  });

  test(`${label}: bench reports the same work as native`, (t) => {
    if (!/^\s+bench\s/m.test(availableCommands)) {
      t.skip('the native CLI has no bench command');
      return;
    }
    const args = ['bench', ...model, '--prompt-tokens', '32', '--decode-tokens', '8', '--json'];
    const expected = parseJson(nativeOnce('bench', args), 'native bench');
    const actual = parseJson(runWasi(runner, args), 'WASI bench');
    // Timings and memory use differ by nature; the work done and the sizes must not.
    const work = (report) => ({
      threads: report.threads,
      batch: report.batch,
      results: report.results.map((entry) => ({
        engine: entry.engine,
        model: entry.model,
        prompt_tokens: entry.prompt_tokens,
        decode_tokens: entry.decode_tokens,
        model_bytes: entry.model_bytes,
        session_bytes: entry.session_bytes,
      })),
    });
    assert.deepEqual(work(actual), work(expected));
    for (const entry of actual.results) {
      assert.ok(entry.prefill_tokens_per_second > 0, `prefill speed ${entry.prefill_tokens_per_second}`);
      assert.ok(entry.decode_tokens_per_second > 0, `decode speed ${entry.decode_tokens_per_second}`);
    }
  });
}

// Error cases: the exit code, stdout and stderr must equal the native CLI's.
const errorCases = [
  { name: 'missing model file', args: ['info', 'models/stories260K/missing.bin'] },
  { name: 'missing tokenizer file', args: ['info', stories.model, '--tokenizer', 'models/stories260K/missing.bin'] },
  { name: 'missing text file', args: ['eval', ...model, '--text', 'missing-text.txt'] },
  { name: 'unknown flag', args: ['eval', ...model, '--text', stories.text, '--bogus'] },
  { name: 'malformed number', args: ['eval', ...model, '--text', stories.text, '--window', '12x'] },
  { name: 'unknown command', args: ['frobnicate', stories.model] },
  { name: 'invalid rotation name', args: ['rotate', ...model, '--rotation', 'diagonal', '--out', 'unused.rot'] },
];

for (const errorCase of errorCases) {
  for (const runner of wasiRunners) {
    test(`spinquant.wasm under ${runner.name} fails like native: ${errorCase.name}`, () => {
      const expected = nativeOnce(`error-${errorCase.name}`, errorCase.args);
      assert.notEqual(expected.status, 0, 'the native CLI accepted the error case');
      assert.notEqual(expected.stderr, '', 'the native CLI printed no message');
      const actual = runWasi(runner, errorCase.args);
      assert.equal(actual.status, expected.status);
      assert.equal(actual.stdout, expected.stdout);
      assert.equal(actual.stderr, expected.stderr);
    });
  }
}

// Paths outside the preopened directories: the message names the path and the --dir to add.
const HINT = 'under WASI only preopened directories are visible: add --dir';

for (const runner of wasiRunners) {
  test(`spinquant.wasm under ${runner.name} names --dir for an absolute path outside the preopens`, () => {
    const outsideDir = mkdtempSync(path.join(os.tmpdir(), 'spinquant-outside-'));
    try {
      const textFile = path.join(outsideDir, 'story.txt');
      writeFileSync(textFile, 'Once upon a time');
      const args = ['tokenize', ...model, '--text', textFile];
      const actual = runWasi(runner, args);
      assert.equal(actual.status, 1);
      assert.equal(actual.stdout, '');
      assert.ok(actual.stderr.startsWith(`spinquant: error: cannot open '${textFile}': `), actual.stderr);
      assert.ok(actual.stderr.includes(`(${HINT} ${outsideDir} to the runtime command)`), actual.stderr);

      // The same file is readable when its folder is preopened, and the native CLI reads it.
      const preopened = runWasi(runner, args, { preopens: [...wasiPreopens, '--dir', outsideDir] });
      assert.equal(preopened.status, 0, preopened.stderr);
      assert.equal(preopened.stdout, runNative(args).stdout);
    } finally {
      rmSync(outsideDir, { recursive: true, force: true });
    }
  });

  test(`spinquant.wasm under ${runner.name} names --dir for a relative path that leaves the preopens`, () => {
    const args = ['tokenize', ...model, '--text', stories.text];
    const actual = runWasi(runner, args, { preopens: ['--dir', '.'] });
    assert.equal(actual.status, 1);
    assert.ok(actual.stderr.startsWith(`spinquant: error: cannot open '${stories.text}': `), actual.stderr);
    assert.ok(actual.stderr.includes(`(${HINT} ${path.dirname(stories.text)} to the runtime command)`), actual.stderr);
  });

  test(`spinquant.wasm under ${runner.name} names --dir for an output outside the preopens`, () => {
    const outsideDir = mkdtempSync(path.join(os.tmpdir(), 'spinquant-outside-'));
    try {
      const out = path.join(outsideDir, 'r.rot');
      const actual = runWasi(runner, ['rotate', ...model, '--seed', '3', '--out', out]);
      assert.equal(actual.status, 1);
      assert.ok(actual.stderr.startsWith(`spinquant: error: cannot create '${out}.tmp': `), actual.stderr);
      assert.ok(actual.stderr.includes(`(${HINT} ${outsideDir} to the runtime command)`), actual.stderr);
    } finally {
      rmSync(outsideDir, { recursive: true, force: true });
    }
  });
}

test('the native CLI gives no --dir hint for a missing file', () => {
  const missing = path.join(os.tmpdir(), 'spinquant-no-such-folder', 'story.txt');
  const result = runNative(['tokenize', ...model, '--text', missing]);
  assert.equal(result.status, 1);
  assert.equal(result.stderr, `spinquant: error: cannot open '${missing}': No such file or directory\n`);
});
