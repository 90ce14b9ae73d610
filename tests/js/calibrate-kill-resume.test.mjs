// Kills `spinquant calibrate` with SIGKILL at random points and continues each time with
// --resume: the rotation file of the interrupted run must be byte-identical to that of an
// uninterrupted run with the same seed and thread count. A kill can land anywhere: while the
// model loads, inside an iteration, or while a checkpoint is written (the CLI writes it to
// "<checkpoint>.tmp" and renames it). Each kill waits for a randomly chosen iteration line on
// stderr plus a random fraction of an iteration, so every run makes progress on slow and fast
// machines alike. SQ_KILL_SEED fixes the random points (the test prints the seed it used).
// Uses build/native/spinquant (or SQ_CLI) and models/stories260K.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { repositoryRoot } from './helpers.mjs';

const cli = path.resolve(repositoryRoot, process.env.SQ_CLI ?? 'build/native/spinquant');
const modelPath = path.join(repositoryRoot, 'models/stories260K/stories260K.bin');
const tokenizerPath = path.join(repositoryRoot, 'models/stories260K/tok512.bin');
const textSource = path.resolve(repositoryRoot, '../shared/data/tinystories/tinystories-valid-part.txt');

const ITERATIONS = 40;
const CHECKPOINT_EVERY = 2;
const KILLS = 4;
// Kills happen at iteration lines up to this one, so even a kill delayed by 1.5 iterations
// leaves iterations for the run after it.
const LAST_KILL_ITERATION = ITERATIONS - 6;

function findSkipReason() {
  if (!existsSync(cli)) return `native CLI not found at ${cli}; build it (npm run build) or set SQ_CLI`;
  for (const file of [modelPath, tokenizerPath, textSource]) {
    if (!existsSync(file)) return `${file} not found (npm run setup copies the models)`;
  }
  return false;
}

const skip = findSkipReason();

let scratch;
const at = (name) => path.join(scratch, name);

before(() => {
  if (skip) return;
  scratch = mkdtempSync(path.join(os.tmpdir(), 'spinquant-kill-resume-'));
  // 20,000 characters of TinyStories text. Slicing the decoded string keeps the file valid UTF-8.
  const text = readFileSync(textSource, 'utf8').slice(40_000, 60_000);
  writeFileSync(at('calibration.txt'), text);
});

after(() => {
  if (scratch) rmSync(scratch, { recursive: true, force: true });
});

// A small deterministic generator (mulberry32), so a failing seed can be replayed.
function randomGenerator(seed) {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// Arguments of a run; checkpoint null runs without checkpoints.
function calibrateArgs(out, checkpoint, resume) {
  const args = [
    'calibrate', modelPath, '--tokenizer', tokenizerPath, '--text', at('calibration.txt'), '--out', out,
    '--iters', String(ITERATIONS), '--window', '128', '--samples', '4', '--seed', '7', '--threads', '1',
  ];
  if (checkpoint !== null) args.push('--checkpoint', checkpoint, '--checkpoint-every', String(CHECKPOINT_EVERY));
  if (resume) args.push('--resume');
  return args;
}

/**
 * Starts the CLI. With killAt = { iteration, delayMs }, sends SIGKILL delayMs after stderr shows
 * the line of that iteration or of a later one (a resumed run may start past it). Resolves to
 * { status, signal, stderr, seconds }.
 */
function runCalibrate(args, killAt = null) {
  return new Promise((resolve, reject) => {
    const started = process.hrtime.bigint();
    const child = spawn(cli, args, { cwd: repositoryRoot, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    let killTimer = null;
    // Stops a hung run; the whole test should take well under a minute.
    const watchdog = setTimeout(() => child.kill('SIGKILL'), 120_000);
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (chunk) => {
      stderr += chunk;
      const reached = Math.max(0, ...[...stderr.matchAll(/iteration (\d+)\//g)].map((match) => Number(match[1])));
      if (killAt && killTimer === null && reached >= killAt.iteration) {
        killTimer = setTimeout(() => child.kill('SIGKILL'), killAt.delayMs);
      }
    });
    child.on('error', reject);
    child.on('close', (status, signal) => {
      clearTimeout(watchdog);
      clearTimeout(killTimer);
      resolve({ status, signal, stderr, seconds: Number(process.hrtime.bigint() - started) / 1e9 });
    });
  });
}

test('calibrate resumed after 4 SIGKILLs is byte-identical', { skip, timeout: 180_000 }, async (t) => {
  const seed = process.env.SQ_KILL_SEED !== undefined ? Number(process.env.SQ_KILL_SEED) : Math.floor(Math.random() * 2 ** 31);
  assert.ok(Number.isInteger(seed), `invalid SQ_KILL_SEED ${JSON.stringify(process.env.SQ_KILL_SEED)}, expected an integer`);
  t.diagnostic(`random kill points from SQ_KILL_SEED=${seed}`);
  const random = randomGenerator(seed);

  const reference = await runCalibrate(calibrateArgs(at('reference.rot'), null, false));
  assert.equal(reference.status, 0, `the uninterrupted run failed:\n${reference.stderr}`);
  const expected = readFileSync(at('reference.rot'));
  const millisecondsPerIteration = (reference.seconds * 1000) / ITERATIONS;

  // Kill iterations: sorted and distinct, from 0 (the first line on stderr, before the first
  // iteration) to LAST_KILL_ITERATION.
  const killIterations = new Set();
  while (killIterations.size < KILLS) killIterations.add(Math.floor(random() * (LAST_KILL_ITERATION + 1)));
  const kills = [...killIterations].sort((a, b) => a - b).map((iteration) => ({
    iteration,
    delayMs: Math.round(random() * 1.5 * millisecondsPerIteration),
  }));
  t.diagnostic(`kills (first iteration line at or after, then delay): ${kills.map((kill) => `${kill.iteration}+${kill.delayMs} ms`).join(', ')}`);

  const out = at('interrupted.rot');
  const checkpoint = at('interrupted.ckpt');
  for (const [index, kill] of kills.entries()) {
    // A run killed before its first checkpoint leaves nothing to resume, so the next starts over.
    const resume = existsSync(checkpoint);
    const killed = await runCalibrate(calibrateArgs(out, checkpoint, resume), kill);
    assert.equal(killed.signal, 'SIGKILL', `run ${index + 1} ended with status ${killed.status} before its kill at iteration ${kill.iteration}:\n${killed.stderr}`);
    if (resume) assert.match(killed.stderr, /resuming from/, `run ${index + 1} did not resume:\n${killed.stderr}`);
    assert.equal(existsSync(out), false, `a killed run left ${out}`);
  }

  assert.ok(existsSync(checkpoint), `no checkpoint after ${KILLS} kills, the last at iteration ${kills.at(-1).iteration}`);
  const final = await runCalibrate(calibrateArgs(out, checkpoint, true));
  assert.equal(final.status, 0, `the final resumed run failed:\n${final.stderr}`);
  assert.match(final.stderr, /resuming from/);
  const actual = readFileSync(out);
  assert.equal(actual.length, expected.length, 'rotation file sizes differ');
  assert.ok(actual.equals(expected), 'the rotation file of the interrupted run differs from the uninterrupted one');
});
