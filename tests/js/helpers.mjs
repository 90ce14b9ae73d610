// Shared helpers for the Node test files: repository paths and a synchronous process runner.
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const repositoryRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

export function buildDir(name) {
  return path.join(repositoryRoot, 'build', name);
}

export function distPath(name) {
  return path.join(repositoryRoot, 'dist', name);
}

// Runs a command from the repository root with stdin closed and returns
// { status, signal, stdout, stderr } with both outputs as UTF-8 text.
export function run(command, args, options = {}) {
  const result = spawnSync(command, args, {
    cwd: repositoryRoot,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
    maxBuffer: 64 * 1024 * 1024,
    timeout: 120_000,
    ...options,
  });
  if (result.error) throw result.error;
  return { status: result.status, signal: result.signal, stdout: result.stdout, stderr: result.stderr };
}

// The two WASI runners, called with the same `wasmtime run`-style flags.
export const wasiRunners = [
  { name: 'wasmtime', command: 'python3', prefix: [path.join(repositoryRoot, 'tools/wasmtime-run.py')] },
  { name: 'node:wasi', command: process.execPath, prefix: [path.join(repositoryRoot, 'tools/wasi-run.mjs')] },
];
