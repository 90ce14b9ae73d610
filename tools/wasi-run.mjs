#!/usr/bin/env node
// Run a WASI preview1 command module with Node's built-in node:wasi.
//
//   node tools/wasi-run.mjs [--dir HOST[::GUEST]]... [--env NAME[=VALUE]]... MODULE.wasm [ARGS...]
//
// The flags follow `wasmtime run`. The guest can open files only under the preopened directories.
// It shares this process's stdin, stdout and stderr, gets MODULE.wasm as argv[0], and its exit
// status becomes this process's exit status. NOTE: node:wasi is marked experimental in Node 20 and is not a
// security sandbox; use it to run trusted modules only.
import { readFile } from 'node:fs/promises';
import { statSync } from 'node:fs';

const USAGE = 'usage: wasi-run.mjs [--dir HOST[::GUEST]]... [--env NAME[=VALUE]]... MODULE.wasm [ARGS...]';

function fail(message) {
  process.stderr.write(`wasi-run.mjs: ${message}\n${USAGE}\n`);
  process.exit(2);
}

// Split the command line into preopens, environment, module path and guest arguments.
function parseArguments(argv) {
  const preopens = {};
  const env = {};
  let index = 0;
  while (index < argv.length) {
    const argument = argv[index];
    if (argument === '-h' || argument === '--help') {
      process.stdout.write(`${USAGE}\n`);
      process.exit(0);
    }
    const match = /^--(dir|env)(?:=(.*))?$/.exec(argument);
    if (!match) break;
    let value = match[2];
    if (value === undefined) {
      index += 1;
      value = argv[index];
      if (value === undefined) fail(`--${match[1]} needs a value`);
    }
    if (match[1] === 'dir') {
      const [host, guest] = value.includes('::') ? value.split('::', 2) : [value, value];
      let isDirectory = false;
      try {
        isDirectory = statSync(host).isDirectory();
      } catch {
        isDirectory = false;
      }
      if (!isDirectory) fail(`--dir ${JSON.stringify(host)} is not a directory`);
      preopens[guest] = host;
    } else {
      const separator = value.indexOf('=');
      if (separator === 0) fail(`invalid --env ${JSON.stringify(value)}: expected NAME=VALUE or NAME`);
      if (separator < 0) env[value] = process.env[value] ?? '';
      else env[value.slice(0, separator)] = value.slice(separator + 1);
    }
    index += 1;
  }
  if (argv[index] === '--') index += 1;
  const modulePath = argv[index];
  if (modulePath === undefined) fail('missing MODULE.wasm');
  return { preopens, env, modulePath, args: [modulePath, ...argv.slice(index + 1)] };
}

const options = parseArguments(process.argv.slice(2));

// Node 20 prints an ExperimentalWarning when node:wasi loads. Drop that one warning so the
// guest's stderr stays byte-identical to a native run, and keep all other warnings.
const defaultWarningListeners = process.listeners('warning');
process.removeAllListeners('warning');
process.on('warning', (warning) => {
  if (warning.name === 'ExperimentalWarning' && /WASI/.test(warning.message)) return;
  for (const listener of defaultWarningListeners) listener(warning);
});
const { WASI } = await import('node:wasi');

let bytes;
try {
  bytes = await readFile(options.modulePath);
} catch (error) {
  fail(`cannot read module ${JSON.stringify(options.modulePath)}: ${error.message}`);
}

const wasi = new WASI({
  version: 'preview1',
  args: options.args,
  env: options.env,
  preopens: options.preopens,
  returnOnExit: true,
});
const module = await WebAssembly.compile(bytes);
const instance = await WebAssembly.instantiate(module, wasi.getImportObject());
process.exitCode = wasi.start(instance);
