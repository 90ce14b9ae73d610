// Runs the C unit tests and the CLI error tests under AddressSanitizer and
// UndefinedBehaviorSanitizer. The sanitizer build lives in build/asan (or the folder named by
// SQ_ASAN_BUILD_DIR); tools/build.sh creates it when it is missing and rebuilds what is stale.
// Any sanitizer report fails the run: undefined behavior aborts (-fno-sanitize-recover), and
// AddressSanitizer exits non-zero on a memory error or, at exit, on a leak.
// Set SQ_SKIP_SANITIZERS=1 to skip this file (the build takes a few minutes when cold).
import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { repositoryRoot, run } from './helpers.mjs';

const buildDir = path.resolve(repositoryRoot, process.env.SQ_ASAN_BUILD_DIR ?? 'build/asan');
const cli = path.join(buildDir, 'spinquant');

const asanOptions = 'detect_leaks=1:strict_string_checks=1';
const ubsanOptions = 'print_stacktrace=1:halt_on_error=1';

// For CTest, reports go to stderr and fail the test through its exit code.
const sanitizerEnv = { ...process.env, ASAN_OPTIONS: asanOptions, UBSAN_OPTIONS: ubsanOptions };

// For the CLI, reports go to files in reportDir (log_path), because the JavaScript tests accept
// some non-zero exit codes and do not read every line of stderr: a report file is a failure.
// NODE_TEST_CONTEXT is removed because node --test skips the files of a nested run that
// inherits it.
function reportingEnv(reportDir) {
  const env = {
    ...process.env,
    ASAN_OPTIONS: `${asanOptions}:log_path=${path.join(reportDir, 'asan')}`,
    UBSAN_OPTIONS: `${ubsanOptions}:log_path=${path.join(reportDir, 'ubsan')}`,
  };
  delete env.NODE_TEST_CONTEXT;
  return env;
}

function findSkipReason() {
  if (process.env.SQ_SKIP_SANITIZERS === '1') return 'SQ_SKIP_SANITIZERS=1';
  const probe = run('cmake', ['--version'], { timeout: 30_000 });
  if (probe.status !== 0) return 'cmake is not installed';
  return false;
}

const skip = findSkipReason();

// Shows the end of a long output in an assertion message.
function tail(text, lines = 60) {
  return text.split('\n').slice(-lines).join('\n');
}

describe('sanitizer build', { skip }, () => {
  before(() => {
    const build = run('bash', ['tools/build.sh'], {
      env: { ...process.env, SQ_SANITIZE: 'only', SQ_ASAN_BUILD_DIR: buildDir },
      timeout: 1_200_000,
    });
    assert.equal(build.status, 0, `building ${buildDir} failed:\n${tail(build.stdout + build.stderr)}`);
    assert.ok(existsSync(cli), `the build did not produce ${cli}`);
  });

  test('every C unit test passes under ASan and UBSan', () => {
    const result = run('ctest', ['--test-dir', buildDir, '--output-on-failure', '-j', '2', '--timeout', '300'], {
      env: sanitizerEnv,
      timeout: 900_000,
    });
    assert.equal(result.status, 0, `ctest failed under the sanitizers:\n${tail(result.stdout + result.stderr, 120)}`);
    assert.match(result.stdout, /100% tests passed/);
  });

  // The JavaScript test files that drive the CLI, run again against the sanitizer build.
  for (const file of ['cli-errors.test.mjs', 'bad-input.test.mjs']) {
    test(`${file} passes with the sanitizer CLI`, () => {
      const reportDir = mkdtempSync(path.join(os.tmpdir(), 'sq-sanitizer-reports-'));
      try {
        const result = run(process.execPath, ['--test', '--test-reporter=tap', path.join('tests/js', file)], {
          env: { ...reportingEnv(reportDir), SQ_CLI: cli },
          timeout: 900_000,
        });
        const output = result.stdout + result.stderr;
        const reports = readdirSync(reportDir).map((name) => readFileSync(path.join(reportDir, name), 'utf8'));
        assert.deepEqual(reports, [], `sanitizer reports while running ${file}:\n${reports.join('\n')}`);
        assert.equal(result.status, 0, `${file} failed with ${cli}:\n${tail(output, 120)}`);
        // A skipped file would pass without running anything.
        assert.match(output, /# pass [1-9]/, `${file} ran no test:\n${tail(output)}`);
        assert.match(output, /# skipped 0/, `${file} skipped tests:\n${tail(output)}`);
      } finally {
        rmSync(reportDir, { recursive: true, force: true });
      }
    });
  }
});
