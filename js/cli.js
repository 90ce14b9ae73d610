#!/usr/bin/env node
// The `spinquant` command of the npm package: the native command-line program compiled to WASI
// (dist/spinquant.wasm), run with Node.js's node:wasi. It takes the same commands and flags as
// the native build. A WASI program opens only files under the directories it is given, so the
// current directory is given, and --dir DIR (before the command, repeatable) gives more.
//   spinquant [--dir DIR]... COMMAND [ARGS...]
// NOTE: node:wasi is experimental in Node.js 20 and is no security sandbox.
import { existsSync, statSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';

const USAGE = 'usage: spinquant [--dir DIR]... COMMAND [ARGS...]   (spinquant --help lists the commands)';

function fail(message) {
  process.stderr.write(`spinquant: error: ${message}\n`);
  process.exit(2);
}

function isDirectory(candidate) {
  try {
    return statSync(candidate).isDirectory();
  } catch {
    return false;
  }
}

// Splits the leading --dir options from the guest's arguments.
function parseArguments(argv) {
  const directories = [process.cwd()];
  let index = 0;
  while (index < argv.length) {
    const match = /^--dir(?:=(.*))?$/.exec(argv[index]);
    if (!match) break;
    const value = match[1] ?? argv[index + 1];
    if (value === undefined) fail(`--dir needs a directory\n${USAGE}`);
    if (!isDirectory(value)) fail(`--dir ${JSON.stringify(value)} is not a directory`);
    directories.push(path.resolve(value));
    index += match[1] === undefined ? 2 : 1;
  }
  return { directories, guestArguments: argv.slice(index) };
}

function isInside(directory, candidate) {
  const relative = path.relative(directory, candidate);
  return relative === '' || (!relative.startsWith('..') && !path.isAbsolute(relative));
}

// Returns the path an argument (or the value of --option=value) names: an existing file or
// folder, or a new file in an existing folder (an output). Returns null for other arguments.
function pathOf(argument) {
  const value = argument.startsWith('--') && argument.includes('=') ? argument.slice(argument.indexOf('=') + 1) : argument;
  if (value.startsWith('-') || value.length === 0) return null;
  const resolved = path.resolve(value);
  const named = path.isAbsolute(value) || value.includes('/') || value.includes(path.sep);
  return existsSync(resolved) || (named && existsSync(path.dirname(resolved))) ? { value, resolved } : null;
}

// Options whose value is text, never a path.
const TEXT_OPTIONS = new Set(['--prompt', '--system']);

// Fails on a path outside every preopened directory, which the program could not open, and
// replaces relative paths with ".." (which WASI cannot follow) by absolute ones.
function mapPaths(guestArguments, directories) {
  return guestArguments.map((argument, index) => {
    const option = argument.split('=', 1)[0];
    if (TEXT_OPTIONS.has(guestArguments[index - 1]) || (TEXT_OPTIONS.has(option) && argument.includes('='))) return argument;
    const found = pathOf(argument);
    if (found === null) return argument;
    if (!directories.some((directory) => isInside(directory, found.resolved))) {
      fail(`${JSON.stringify(found.value)} is outside the current directory, and the WebAssembly program can open only files under the current directory and the --dir directories; run spinquant from a folder that contains it, or add --dir ${JSON.stringify(path.dirname(found.resolved))} before the command`);
    }
    if (path.isAbsolute(found.value) || !found.value.split(/[\\/]/).includes('..')) return argument;
    return argument.slice(0, argument.length - found.value.length) + found.resolved;
  });
}

const parsed = parseArguments(process.argv.slice(2));
const { directories } = parsed;
const guestArguments = mapPaths(parsed.guestArguments, directories);

// Relative paths resolve against the preopen ".", absolute ones against the preopen named by
// the same absolute path.
const preopens = { '.': process.cwd() };
for (const directory of directories) preopens[directory] = directory;

// Node.js 20 prints an ExperimentalWarning when node:wasi loads; keep every other warning.
const defaultWarningListeners = process.listeners('warning');
process.removeAllListeners('warning');
process.on('warning', (warning) => {
  if (warning.name === 'ExperimentalWarning' && /WASI/.test(warning.message)) return;
  for (const listener of defaultWarningListeners) listener(warning);
});
const { WASI } = await import('node:wasi');

const wasmUrl = new URL('../dist/spinquant.wasm', import.meta.url);
let bytes;
try {
  bytes = await readFile(wasmUrl);
} catch (error) {
  fail(`cannot read ${wasmUrl.pathname}: ${error.message}; reinstall the package`);
}
const wasi = new WASI({
  version: 'preview1',
  args: ['spinquant', ...guestArguments],
  env: {},
  preopens,
  returnOnExit: true,
});
const instance = await WebAssembly.instantiate(await WebAssembly.compile(bytes), wasi.getImportObject());
process.exitCode = wasi.start(instance);
