// Tests the two WASI runners (tools/wasmtime-run.py and tools/wasi-run.mjs) with a small probe
// module, then checks that dist/spinquant.wasm behaves like the native CLI under both runners.
// Needs build/native, build/wasi and dist/spinquant.wasm from tools/build.sh, and clang-19;
// SQ_BUILD_ROOT and SQ_DIST_DIR point at other build folders (tests/js/fixtures/targets.mjs).
// tests/js/wasi-parity.test.mjs compares the two on the commands that compute.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { repositoryRoot, run, wasiRunners } from './helpers.mjs';
import { emscriptenVariants, nativeCli, wasiBuildDir, wasiModule } from './fixtures/targets.mjs';

const fixturesDir = path.join(repositoryRoot, 'tests/js/fixtures');
const probeSource = path.join(fixturesDir, 'wasi_probe.c');
let probeDir;
let probeModule;
let sysroot;

before(() => {
  probeDir = mkdtempSync(path.join(os.tmpdir(), 'spinquant-wasi-probe-'));
  probeModule = path.join(probeDir, 'wasi_probe.wasm');
  // The WASI build folder contains the private sysroot that wasm/wasi.cmake assembles.
  sysroot = path.join(wasiBuildDir, 'wasi-sysroot');
  const compile = run('clang-19', [
    '--target=wasm32-wasi', `--sysroot=${sysroot}`, '-O1', '-fuse-ld=lld',
    probeSource, '-o', probeModule,
  ]);
  assert.equal(compile.status, 0, `compiling the WASI probe failed:\n${compile.stderr}`);
});

after(() => {
  if (probeDir) rmSync(probeDir, { recursive: true, force: true });
});

function runWasi(runner, args) {
  return run(runner.command, [...runner.prefix, ...args]);
}

for (const runner of wasiRunners) {
  test(`${runner.name} passes argv, env and exit code`, () => {
    const result = runWasi(runner, ['--env', 'PROBE_VALUE=hello world', probeModule, '3', '--flag']);
    assert.equal(result.status, 3);
    // The runner must hand "--flag" to the guest instead of parsing it.
    assert.match(result.stdout, /^argc=3\nargv\[1\]=3\nargv\[2\]=--flag\nPROBE_VALUE=hello world\n/);
    assert.match(result.stdout, /^open --flag: .+$/m);
    assert.equal(result.stderr, 'probe stderr\n');
  });

  test(`${runner.name} returns exit code 0`, () => {
    const result = runWasi(runner, [probeModule, '0']);
    assert.equal(result.status, 0);
    assert.equal(result.stdout, 'argc=2\nargv[1]=0\nPROBE_VALUE=(unset)\n');
  });

  test(`${runner.name} maps HOST::GUEST preopens`, () => {
    const expectedSize = statSync(probeSource).size;
    const result = runWasi(runner, [
      '--dir', `${fixturesDir}::/data`, probeModule, '0', '/data/wasi_probe.c', '/etc/hostname',
    ]);
    assert.equal(result.status, 0);
    assert.match(result.stdout, new RegExp(`^size /data/wasi_probe.c=${expectedSize}$`, 'm'));
    // Only preopened directories are visible to the guest.
    assert.match(result.stdout, /^open \/etc\/hostname: .+$/m);
  });

  test(`${runner.name} resolves paths under --dir .`, () => {
    const expectedSize = statSync(probeSource).size;
    const result = runWasi(runner, ['--dir', '.', probeModule, '0', 'tests/js/fixtures/wasi_probe.c']);
    assert.equal(result.status, 0);
    assert.match(result.stdout, new RegExp(`^size tests/js/fixtures/wasi_probe.c=${expectedSize}$`, 'm'));
  });

  test(`${runner.name} rejects a missing --dir`, () => {
    const result = runWasi(runner, ['--dir', path.join(probeDir, 'missing'), probeModule, '0']);
    assert.equal(result.status, 2);
    assert.match(result.stderr, /is not a directory/);
  });
}

// Argument lists given to both the native CLI and dist/spinquant.wasm; paths are relative to the
// repository root, which the WASI runs preopen as ".".
const cliCases = [
  [],
  ['info', 'models/stories260K/stories260K.bin'],
];

for (const args of cliCases) {
  const label = args.length === 0 ? '(no arguments)' : args.join(' ');
  const native = () => run(nativeCli, args);

  for (const runner of wasiRunners) {
    test(`spinquant.wasm under ${runner.name} matches native: ${label}`, () => {
      const expected = native();
      assert.equal(expected.signal, null, `native CLI was killed by ${expected.signal}`);
      const actual = runWasi(runner, ['--dir', '.', wasiModule, ...args]);
      assert.equal(actual.status, expected.status);
      assert.equal(actual.stdout, expected.stdout);
      assert.equal(actual.stderr, expected.stderr);
    });
  }
}

// The relaxed Emscripten variant runs under Node.js with the flags of tests/js/fixtures/targets.mjs.
// This checks that V8 computes relaxed int8 dot products exactly with them, using a WASI probe
// because node:wasi runs it without Emscripten's glue code.
test('node with the relaxed-variant flags computes relaxed dot products exactly', (t) => {
  const source = path.join(fixturesDir, 'relaxed_dot_probe.c');
  const object = path.join(probeDir, 'relaxed_dot_probe.o');
  const module = path.join(probeDir, 'relaxed_dot_probe.wasm');
  // Compiled and linked in two steps: given -O2 at link time, clang-19 would run binaryen's
  // wasm-opt, which cannot parse relaxed SIMD (binaryen 108).
  const compile = run('clang-19', ['--target=wasm32-wasi', `--sysroot=${sysroot}`, '-O2', '-msimd128', '-mrelaxed-simd',
    '-c', source, '-o', object]);
  assert.equal(compile.status, 0, `compiling the relaxed SIMD probe failed:\n${compile.stderr}`);
  const link = run('clang-19', ['--target=wasm32-wasi', `--sysroot=${sysroot}`, '-fuse-ld=lld', object, '-o', module]);
  assert.equal(link.status, 0, `linking the relaxed SIMD probe failed:\n${link.stderr}`);

  const runner = path.join(repositoryRoot, 'tools/wasi-run.mjs');
  const relaxedFlags = emscriptenVariants.find((variant) => variant.name === 'relaxed').nodeFlags;
  const result = run(process.execPath, [...relaxedFlags, runner, module]);
  assert.equal(result.status, 0, result.stderr);
  assert.equal(result.stdout, 'mismatches 0\n');

  // For the record: the same probe through the baseline compiler alone.
  const liftoff = run(process.execPath, [...relaxedFlags.filter((flag) => flag !== '--no-liftoff'), '--liftoff-only',
    runner, module]);
  t.diagnostic(`Node.js ${process.version} with --liftoff-only: ${liftoff.stdout.trim() || liftoff.stderr.trim()}`);
});
