// Tests calibrate() (rotation learning in a worker_threads worker) against the native CLI:
// with the same settings the rotation file and the exported .spq file must be byte-identical
// to what `spinquant calibrate` and `spinquant quantize --rotation` write. Also checks
// progress events, cancelling and the error for a .spq source.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Blob } from 'node:buffer';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { buildDir, repositoryRoot, run } from './helpers.mjs';
import { ErrorCode, SpinquantError, calibrate, loadModel } from '../../js/node.js';

const cli = process.env.SQ_CLI ?? path.join(buildDir('native'), 'spinquant');
const storiesBin = path.join(repositoryRoot, 'models/stories260K/stories260K.bin');
const storiesTokenizer = path.join(repositoryRoot, 'models/stories260K/tok512.bin');
const calibrationPath = path.join(repositoryRoot, 'models/data/tinystories-calib.txt');
const calibrationText = readFileSync(calibrationPath, 'utf8');
const evalText = readFileSync(path.resolve(repositoryRoot, '../shared/reference/tinystories-40k.txt'), 'utf8');

const temporary = mkdtempSync(path.join(os.tmpdir(), 'spinquant-js-calibrate-'));
process.on('exit', () => rmSync(temporary, { recursive: true, force: true }));

// Small enough for a few seconds: 3 iterations on 4 windows of 128 tokens.
const settings = { iterations: 3, samples: 4, window: 128, seed: 5 };

function runCli(args) {
  const result = run(cli, args);
  assert.equal(result.status, 0, `${cli} ${args.join(' ')} failed:\n${result.stderr}`);
  return result.stdout;
}

async function assertRejectsWith(promise, code) {
  await assert.rejects(promise, (error) => {
    assert.ok(error instanceof SpinquantError, `expected a SpinquantError, got ${error?.stack ?? error}`);
    assert.equal(error.code, code, `code of: ${error.message}`);
    return true;
  });
}

test('calibrate matches the native rotation file and .spq export byte for byte', async () => {
  const events = [];
  const result = await calibrate(storiesBin, calibrationText, {
    ...settings,
    tokenizer: storiesTokenizer,
    onProgress: (event) => events.push(event),
  });

  const rotationPath = path.join(temporary, 'rotation.bin');
  const spqPath = path.join(temporary, 'model.spq');
  runCli(['calibrate', storiesBin, '--tokenizer', storiesTokenizer, '--text', calibrationPath, '--out', rotationPath,
    '--iters', '3', '--samples', '4', '--window', '128', '--seed', '5']);
  runCli(['quantize', storiesBin, '--tokenizer', storiesTokenizer, '--rotation', rotationPath, '--mode', 'had', '--seed', '5',
    '--w-bits', '4', '--a-bits', '8', '--kv-bits', '8', '--embed-bits', '8', '--out', spqPath]);
  assert.ok(Buffer.from(result.rotation).equals(readFileSync(rotationPath)), 'the rotation file differs from the native one');
  assert.ok(Buffer.from(result.spq).equals(readFileSync(spqPath)), 'the .spq file differs from the native one');

  const steps = events.filter((event) => event.phase === 'calibrate');
  assert.deepEqual(steps.map((event) => event.iteration), [1, 2, 3]);
  for (const step of steps) {
    assert.ok(Number.isFinite(step.loss), `loss ${step.loss}`);
    assert.ok(step.loss > 0, `loss ${step.loss}`);
    assert.ok(step.secondsLeft >= 0);
    assert.equal(step.iterations, 3);
  }
  assert.equal(steps.at(-1).secondsLeft, 0);
  assert.ok(events.some((event) => event.phase === 'read'));
  assert.ok(events.some((event) => event.phase === 'export'));
  assert.equal(result.summary.iterations, 3);
  assert.equal(result.summary.finalLoss.toPrecision(6), steps.at(-1).loss.toPrecision(6));
  assert.equal(result.summary.spq.fileBytes, result.spq.length);

  const model = await loadModel(result.spq);
  try {
    assert.equal(model.info.quantization.rotation, 'file');
    const { perplexity } = await model.perplexity(evalText, { window: 256, maxWindows: 2 });
    assert.ok(perplexity > 1, `perplexity ${perplexity} of the exported model`);
    assert.ok(perplexity < 20, `perplexity ${perplexity} of the exported model`);
  } finally {
    await model.dispose();
  }
});

test('calibrate takes a Blob and skips the export with spq: false', async () => {
  const result = await calibrate(new Blob([readFileSync(storiesBin)]), calibrationText, {
    ...settings,
    iterations: 1,
    tokenizer: new Blob([readFileSync(storiesTokenizer)]),
    spq: false,
  });
  assert.equal(result.spq, null);
  assert.equal(result.summary.spq, null);
  assert.equal(result.summary.iterations, 1);
  assert.ok(result.rotation.length > 40);
});

test('calibrate is cancelled by its AbortSignal', async () => {
  const controller = new AbortController();
  let steps = 0;
  const started = Date.now();
  await assertRejectsWith(calibrate(storiesBin, calibrationText, {
    ...settings,
    iterations: 500,
    tokenizer: storiesTokenizer,
    signal: controller.signal,
    onProgress: (event) => {
      if (event.phase !== 'calibrate') return;
      steps += 1;
      controller.abort();
    },
  }), ErrorCode.ABORTED);
  assert.equal(steps, 1);
  assert.ok(Date.now() - started < 60_000);
});

test('calibrate rejects invalid options and a .spq model', async () => {
  await assertRejectsWith(calibrate(storiesBin, calibrationText, { mode: 'full' }), ErrorCode.INVALID_ARG);
  await assertRejectsWith(calibrate(storiesBin, '', {}), ErrorCode.INVALID_ARG);
  await assertRejectsWith(calibrate(storiesBin, calibrationText, { spq: { wBits: 8 } }), ErrorCode.INVALID_ARG);
  // A window longer than the model's context of 512 tokens.
  await assertRejectsWith(calibrate(storiesBin, calibrationText, { ...settings, window: 4096, tokenizer: storiesTokenizer }), ErrorCode.INVALID_ARG);
  const spqPath = path.join(temporary, 'plain.spq');
  runCli(['quantize', storiesBin, '--tokenizer', storiesTokenizer, '--out', spqPath]);
  await assertRejectsWith(calibrate(spqPath, calibrationText, settings), ErrorCode.UNSUPPORTED);
});
