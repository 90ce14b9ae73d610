// Runs every libFuzzer harness of tests/fuzz for a few seconds (SQ_FUZZ_SMOKE_SECONDS, default
// 5) on its seed corpus and its inputs under tests/regressions/, through tests/fuzz/run.sh. Any
// crash, leak, timeout, allocation above 1 GiB or sanitizer report fails the harness's test.
// The harnesses live in build-fuzz/, which tools/setup.sh builds; the before hook rebuilds what
// is stale, so the test never runs harnesses older than the sources. Each run gets a fresh
// corpus in a temporary folder, so runs do not depend on each other.
// Set SQ_SKIP_FUZZ=1 to skip this file.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { repositoryRoot, run } from './helpers.mjs';

const fuzzDir = path.join(repositoryRoot, 'tests/fuzz');
const buildDir = path.join(repositoryRoot, 'build-fuzz');
const seconds = Number(process.env.SQ_FUZZ_SMOKE_SECONDS ?? 5);

// One harness per tests/fuzz/fuzz_<name>.c file.
const harnesses = readdirSync(fuzzDir)
  .filter((name) => /^fuzz_.*\.c$/.test(name))
  .map((name) => name.slice('fuzz_'.length, -'.c'.length))
  .sort();

// Lines that AddressSanitizer, LeakSanitizer, UndefinedBehaviorSanitizer and libFuzzer print
// when they report a failure.
const REPORT_PATTERNS = [
  /ERROR: AddressSanitizer/,
  /ERROR: LeakSanitizer/,
  /runtime error:/,
  /ERROR: libFuzzer/,
  /fuzz check failed/,
  /==\d+== ?ERROR/,
];

function findSkipReason() {
  if (process.env.SQ_SKIP_FUZZ === '1') return 'SQ_SKIP_FUZZ=1';
  if (process.platform !== 'linux') return 'the fuzz harnesses build only on Linux (clang-19 with libFuzzer)';
  return false;
}

const skip = findSkipReason();

// Shows the end of a long output in an assertion message.
function tail(text, lines = 40) {
  return text.split('\n').slice(-lines).join('\n');
}

describe('fuzz harness smoke runs', { skip }, () => {
  let scratch;

  before(() => {
    const setting = `invalid SQ_FUZZ_SMOKE_SECONDS ${JSON.stringify(process.env.SQ_FUZZ_SMOKE_SECONDS)}, expected a number of seconds >= 1`;
    assert.ok(Number.isFinite(seconds), setting);
    assert.ok(seconds >= 1, setting);
    const build = run('bash', ['tests/fuzz/run.sh'], {
      env: { ...process.env, FUZZ_BUILD_ONLY: '1' },
      timeout: 1_200_000,
    });
    assert.equal(build.status, 0, `building the fuzz harnesses in ${buildDir} failed (tools/setup.sh installs clang-19 and libclang-rt-19-dev):\n${tail(build.stdout + build.stderr)}`);
    scratch = mkdtempSync(path.join(os.tmpdir(), 'spinquant-fuzz-smoke-'));
  });

  after(() => {
    if (scratch) rmSync(scratch, { recursive: true, force: true });
  });

  test('tests/fuzz has the 13 harnesses', () => {
    assert.equal(harnesses.length, 13, `harnesses found: ${harnesses.join(', ')}`);
  });

  for (const harness of harnesses) {
    test(`fuzz_${harness} runs ${seconds} s without a finding`, () => {
      assert.ok(existsSync(path.join(buildDir, `fuzz_${harness}`)), `the build did not produce ${buildDir}/fuzz_${harness}`);
      const outDir = path.join(scratch, harness);
      const result = run('bash', ['tests/fuzz/run.sh'], {
        env: { ...process.env, FUZZ_TARGETS: harness, FUZZ_SECONDS: String(seconds), FUZZ_NO_BUILD: '1', FUZZ_OUT_DIR: outDir },
        timeout: (seconds + 120) * 1000,
      });
      const logPath = path.join(outDir, 'logs', `${harness}.log`);
      const log = existsSync(logPath) ? readFileSync(logPath, 'utf8') : '';
      const summary = result.stdout + result.stderr;

      assert.equal(result.status, 0, `tests/fuzz/run.sh failed for ${harness}:\n${summary}\nend of ${logPath}:\n${tail(log)}`);
      for (const pattern of REPORT_PATTERNS) {
        assert.doesNotMatch(log, pattern, `fuzz_${harness} printed a failure report:\n${tail(log, 80)}`);
      }
      const artifacts = readdirSync(path.join(outDir, 'artifacts', harness));
      assert.deepEqual(artifacts, [], `fuzz_${harness} saved failing inputs in ${outDir}/artifacts/${harness}`);

      // The run must have read the seeds and then mutated them: a harness that stopped early
      // or found no seeds would pass the checks above without testing anything.
      const seedFiles = Number(log.match(/seed corpus: files: (\d+)/)?.[1] ?? 0);
      assert.ok(seedFiles > 0, `fuzz_${harness} read no seed corpus:\n${tail(log)}`);
      const executions = Number(log.match(/stat::number_of_executed_units: *(\d+)/)?.[1] ?? 0);
      assert.ok(executions > seedFiles, `fuzz_${harness} ran ${executions} inputs, expected more than its ${seedFiles} seeds:\n${tail(log)}`);
    });
  }
});
