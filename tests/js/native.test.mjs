// Runs the C unit tests of the native build through CTest, one Node subtest per CTest test,
// so that a failing C test fails `npm test` and its output appears in the report.
// Needs build/native, which tools/build.sh (run by `npm test`) creates.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { buildDir, repositoryRoot } from './helpers.mjs';

const nativeBuild = buildDir('native');
// Upper bound for one C test; each is meant to finish in about 20 s.
const CTEST_TIMEOUT_SECONDS = 300;

function runCtest(args) {
  return spawnSync('ctest', ['--test-dir', nativeBuild, ...args], {
    cwd: repositoryRoot,
    encoding: 'utf8',
    maxBuffer: 64 * 1024 * 1024,
  });
}

// `ctest -N` prints one line per test: "  Test  #3: test_tokenizer".
function listCtestNames() {
  if (!existsSync(nativeBuild)) return { error: `${nativeBuild} not found; run npm run build`, names: [] };
  const listing = runCtest(['-N']);
  if (listing.status !== 0) return { error: `ctest -N failed:\n${listing.stdout}${listing.stderr}`, names: [] };
  const names = [...listing.stdout.matchAll(/^\s*Test\s+#\d+: (\S+)\s*$/gm)].map((match) => match[1]);
  return { error: null, names };
}

function escapeRegExp(text) {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

const { error: listError, names } = listCtestNames();

test('ctest lists the C tests', () => {
  assert.equal(listError, null);
  assert.ok(names.length > 0, 'ctest -N found no tests; expected one per tests/c/test_*.c');
});

for (const name of names) {
  test(`C test ${name}`, () => {
    const result = runCtest([
      '--output-on-failure',
      '--timeout', String(CTEST_TIMEOUT_SECONDS),
      '-R', `^${escapeRegExp(name)}$`,
    ]);
    assert.equal(result.status, 0, `ctest failed for ${name}:\n${result.stdout}${result.stderr}`);
    assert.match(result.stdout, /100% tests passed, 0 tests failed out of 1/);
  });
}
