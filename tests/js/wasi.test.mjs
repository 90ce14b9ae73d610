// Tests the two WASI runners (tools/wasmtime-run.py and tools/wasi-run.mjs) with a small probe
// module, then checks that dist/spinquant.wasm behaves like the native CLI under both runners.
// Needs build/native, build/wasi and dist/spinquant.wasm from tools/build.sh, and clang-19.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { buildDir, distPath, repositoryRoot, run, wasiRunners } from './helpers.mjs';

const fixturesDir = path.join(repositoryRoot, 'tests/js/fixtures');
const probeSource = path.join(fixturesDir, 'wasi_probe.c');
let probeDir;
let probeModule;

before(() => {
  probeDir = mkdtempSync(path.join(os.tmpdir(), 'spinquant-wasi-probe-'));
  probeModule = path.join(probeDir, 'wasi_probe.wasm');
  // The WASI build folder contains the private sysroot that wasm/wasi.cmake assembles.
  const sysroot = path.join(buildDir('wasi'), 'wasi-sysroot');
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
  const native = () => run(path.join(buildDir('native'), 'spinquant'), args);

  for (const runner of wasiRunners) {
    test(`spinquant.wasm under ${runner.name} matches native: ${label}`, () => {
      const expected = native();
      assert.equal(expected.signal, null, `native CLI was killed by ${expected.signal}`);
      const actual = runWasi(runner, ['--dir', '.', distPath('spinquant.wasm'), ...args]);
      assert.equal(actual.status, expected.status);
      assert.equal(actual.stdout, expected.stdout);
      assert.equal(actual.stderr, expected.stderr);
    });
  }
}
