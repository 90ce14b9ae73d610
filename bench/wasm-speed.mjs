#!/usr/bin/env node
// Speed of the WebAssembly builds next to the native CLI, measured in one run, printed as a
// Markdown table with each value relative to native (1 thread) and the exact commands.
//
//   node bench/wasm-speed.mjs [--models stories260K,smollm2] [--runtimes LIST] [--repeat N]
//                             [--threads N] [--no-calibrate]
//
// Runtimes: native (1 thread), native-threads (--threads N, default 2), wasmtime
// (tools/wasmtime-run.py), node-wasi (tools/wasi-run.mjs), and the Emscripten variants simd,
// pthread (N threads) and relaxed, called through the C API in Node.js
// (tests/js/fixtures/emscripten-run.mjs). For each model:
//   decode tok/s   `generate --temperature 0 --max-tokens 64 --json`: its tokens_per_second, which
//                  times the sampling and one-token forward passes after the prompt. Through the C
//                  API: the 64 sq_api_generate_next calls over their wall time, which do the same
//                  work (the last call samples without a forward pass, as the CLI does).
//   eval tok/s     tokens run through the model (n_predicted + n_windows) by
//                  `eval --window W [--max-windows M]`, over the wall time of eval minus the wall
//                  time of `tokenize --text` on the same file, which covers start-up, model loading
//                  and tokenization. Through the C API: the sq_api_perplexity_* calls minus one
//                  sq_api_tokenize call on the same text.
//   calibrate s/it `calibrate --json`: seconds / iterations; through the C API, sq_api_calibrate's
//                  seconds / iterations with the same options.
// Each value is the best of --repeat runs (default 1). Uses build/native/spinquant and dist/
// (SQ_BUILD_ROOT and SQ_DIST_DIR as in tests/js/fixtures/targets.mjs), run from the repository root.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  distDir, emscriptenVariants, nativeCli, repositoryRoot, smollm2, stories, wasiModule, wasiPreopens,
} from '../tests/js/fixtures/targets.mjs';

const MODELS = {
  stories260K: {
    modelArgs: [stories.model, '--tokenizer', stories.tokenizer],
    text: stories.text,
    window: 512,
    maxWindows: 0,
    calibrate: ['--iters', '5', '--window', '256', '--samples', '8'],
  },
  smollm2: {
    modelArgs: [smollm2.model],
    text: stories.text,
    window: 512,
    maxWindows: 1,
    calibrate: ['--iters', '2', '--window', '64', '--samples', '2'],
  },
};
// The calibrate flags above as sq_api_calibrate options.
const CALIBRATE_OPTIONS = {
  stories260K: { iterations: 5, window: 256, samples: 8, seed: 0 },
  smollm2: { iterations: 2, window: 64, samples: 2, seed: 0 },
};
const PROMPT = 'Once upon a time';
const MAX_TOKENS = 64;

function parseOptions(argv) {
  const options = {
    models: Object.keys(MODELS),
    runtimes: ['native', 'native-threads', 'wasmtime', 'node-wasi', 'simd', 'pthread', 'relaxed'],
    repeat: 1,
    threads: 2,
    calibrate: true,
  };
  for (let i = 0; i < argv.length; i++) {
    const value = () => {
      if (i + 1 >= argv.length) throw new Error(`missing value for ${argv[i]}`);
      return argv[++i];
    };
    if (argv[i] === '--models') options.models = value().split(',');
    else if (argv[i] === '--runtimes') options.runtimes = value().split(',');
    else if (argv[i] === '--repeat') options.repeat = Number(value());
    else if (argv[i] === '--threads') options.threads = Number(value());
    else if (argv[i] === '--no-calibrate') options.calibrate = false;
    else throw new Error(`invalid option ${argv[i]}; see the usage at the top of bench/wasm-speed.mjs`);
  }
  for (const name of options.models) {
    if (!MODELS[name]) throw new Error(`unknown model '${name}', expected one of ${Object.keys(MODELS).join(', ')}`);
  }
  if (!(options.repeat >= 1) || !(options.threads >= 1)) throw new Error('--repeat and --threads must be at least 1');
  return options;
}

// Runs a command from the repository root; returns { stdout, stderr, seconds } or throws.
function timed(command, args) {
  const begin = process.hrtime.bigint();
  const result = spawnSync(command, args, {
    cwd: repositoryRoot, encoding: 'utf8', maxBuffer: 256 * 1024 * 1024, stdio: ['ignore', 'pipe', 'pipe'],
  });
  const seconds = Number(process.hrtime.bigint() - begin) / 1e9;
  if (result.error) throw result.error;
  if (result.status !== 0) {
    const how = result.status === null ? `was killed by ${result.signal}` : `exited with ${result.status}`;
    throw new Error(`${[command, ...args].map(shellQuote).join(' ')} ${how}:\n${result.stderr}`);
  }
  return { stdout: result.stdout, stderr: result.stderr, seconds };
}

function shellQuote(argument) {
  return /^[\w@%+=:,./-]+$/.test(argument) ? argument : `'${argument.replaceAll("'", "'\\''")}'`;
}

// A runtime that runs the CLI: prefix + spinquant arguments; outDir is where --out files go.
function cliRuntime(name, prefix, outDir, threads) {
  return { name, kind: 'cli', prefix, outDir, threads };
}

function makeRuntimes(options, outputDir) {
  // Relative to the repository root, where every command runs, so the printed commands are short.
  const native = path.relative(repositoryRoot, nativeCli);
  const runtimes = [];
  for (const name of options.runtimes) {
    if (name === 'native') runtimes.push(cliRuntime('native', [native], outputDir, 1));
    else if (name === 'native-threads') {
      runtimes.push(cliRuntime(`native, ${options.threads} threads`, [native], outputDir, options.threads));
    } else if (name === 'wasmtime' || name === 'node-wasi') {
      const runner = name === 'wasmtime'
        ? ['python3', 'tools/wasmtime-run.py']
        : [process.execPath, 'tools/wasi-run.mjs'];
      const label = name === 'wasmtime' ? 'WASI, wasmtime' : 'WASI, node:wasi';
      runtimes.push(cliRuntime(label, [...runner, ...wasiPreopens, '--dir', `${outputDir}::/out`,
        path.relative(repositoryRoot, wasiModule)], '/out', 1));
    } else {
      const variant = emscriptenVariants.find((candidate) => candidate.name === name);
      if (!variant) throw new Error(`unknown runtime '${name}'`);
      const threads = name === 'pthread' ? options.threads : 1;
      const label = `Emscripten ${name}${threads > 1 ? `, ${threads} threads` : ''}`;
      runtimes.push({ name: label, kind: 'emscripten', variant, threads });
    }
  }
  return runtimes;
}

function best(values, higherIsBetter) {
  return values.reduce((a, b) => (higherIsBetter ? Math.max(a, b) : Math.min(a, b)));
}

function measureCli(runtime, model, options) {
  const [command, ...prefix] = runtime.prefix;
  const cli = (args) => timed(command, [...prefix, ...args]);
  const threads = ['--threads', String(runtime.threads)];
  const windows = model.maxWindows > 0 ? ['--max-windows', String(model.maxWindows)] : [];
  const commands = {
    tokenize: ['tokenize', ...model.modelArgs, '--text', model.text],
    eval: ['eval', ...model.modelArgs, '--text', model.text, '--window', String(model.window), ...windows, ...threads,
      '--json'],
    generate: ['generate', ...model.modelArgs, '--prompt', PROMPT, '--temperature', '0', '--max-tokens',
      String(MAX_TOKENS), ...threads, '--json'],
    calibrate: ['calibrate', ...model.modelArgs, '--text', model.text, '--out', `${runtime.outDir}/bench.rot`,
      ...model.calibrate, '--seed', '0', ...threads, '--json'],
  };
  const decode = [];
  const evaluate = [];
  const calibrate = [];
  for (let r = 0; r < options.repeat; r++) {
    decode.push(JSON.parse(cli(commands.generate).stdout).tokens_per_second);
    const startup = cli(commands.tokenize).seconds;
    const run = cli(commands.eval);
    const result = JSON.parse(run.stdout);
    evaluate.push((result.n_predicted + result.n_windows) / (run.seconds - startup));
    if (options.calibrate) {
      const summary = JSON.parse(cli(commands.calibrate).stdout);
      calibrate.push(summary.seconds / summary.iterations_this_run);
    }
  }
  return {
    decode: best(decode, true),
    eval: best(evaluate, true),
    calibrate: options.calibrate ? best(calibrate, false) : null,
    commands: Object.entries(commands)
      .filter(([name]) => options.calibrate || name !== 'calibrate')
      .map(([, args]) => [...runtime.prefix, ...args].map(shellQuote).join(' ')),
  };
}

function measureEmscripten(runtime, model, modelName, options, outputDir) {
  const guest = (file) => `/repo/${file}`;
  const job = {
    distDir,
    variant: runtime.variant.name,
    threads: runtime.threads,
    mounts: { '/repo': repositoryRoot, '/out': outputDir },
    model: guest(model.modelArgs[0]),
    tokenizer: model.modelArgs[1] === '--tokenizer' ? guest(model.modelArgs[2]) : '',
    // Generation first, so that it runs on freshly compiled code as in a CLI process.
    tasks: [
      { kind: 'generate', prompt: PROMPT, maxTokens: MAX_TOKENS },
      { kind: 'tokenize', textFile: path.resolve(repositoryRoot, model.text), parseSpecial: 0 },
      { kind: 'perplexity', textFile: path.resolve(repositoryRoot, model.text), window: model.window,
        maxWindows: model.maxWindows },
    ],
  };

  // Calibration unloads the model, so it comes last.
  if (options.calibrate) {
    job.tasks.push({ kind: 'calibrate', textFile: path.resolve(repositoryRoot, model.text), out: '/out/bench.rot',
      options: CALIBRATE_OPTIONS[modelName] });
  }

  const runner = path.join(repositoryRoot, 'tests/js/fixtures/emscripten-run.mjs');
  const args = [...runtime.variant.nodeFlags, runner, JSON.stringify(job)];
  const decode = [];
  const evaluate = [];
  const calibrate = [];
  for (let r = 0; r < options.repeat; r++) {
    const output = JSON.parse(timed(process.execPath, args).stdout);
    const [generated, tokenized, perplexity, calibration] = output.results;
    decode.push(generated.tokens.length / generated.decodeSeconds);
    evaluate.push((perplexity.n_predicted + perplexity.n_windows) / (perplexity.seconds - tokenized.seconds));
    if (calibration) calibrate.push(calibration.seconds / calibration.iterations);
  }

  const flags = runtime.variant.nodeFlags.join(' ');
  return {
    decode: best(decode, true),
    eval: best(evaluate, true),
    calibrate: calibrate.length > 0 ? best(calibrate, false) : null,
    commands: [`node ${flags ? `${flags} ` : ''}tests/js/fixtures/emscripten-run.mjs '<job for ${modelName}: ` +
      `sq_api_generate_* ${MAX_TOKENS} tokens, sq_api_tokenize, sq_api_perplexity_* window ${model.window}` +
      `${model.maxWindows ? ` max ${model.maxWindows}` : ''}${options.calibrate ? ', sq_api_calibrate' : ''}, ` +
      `${runtime.threads} thread${runtime.threads > 1 ? 's' : ''}>'`],
  };
}

function format(value, digits) {
  return value === null || value === undefined || !Number.isFinite(value) ? 'n/a' : value.toFixed(digits);
}

function ratio(value, reference, higherIsBetter) {
  if (value === null || reference === null || !Number.isFinite(value) || !Number.isFinite(reference)) return 'n/a';
  return (higherIsBetter ? value / reference : reference / value).toFixed(2);
}

function machineSummary() {
  const cpus = os.cpus();
  let wasmtimeVersion = 'not installed';
  const probe = spawnSync('python3', ['-c', 'import importlib.metadata as m; print(m.version("wasmtime"))'],
    { encoding: 'utf8' });
  if (probe.status === 0) wasmtimeVersion = probe.stdout.trim();
  return `${cpus[0]?.model ?? 'unknown CPU'}, ${cpus.length} logical CPUs, load average ` +
    `${os.loadavg()[0].toFixed(2)}; Node.js ${process.version} (V8 ${process.versions.v8}); ` +
    `PyPI wasmtime ${wasmtimeVersion}`;
}

function main() {
  const options = parseOptions(process.argv.slice(2));
  for (const file of [nativeCli, wasiModule]) {
    if (!existsSync(file)) throw new Error(`${file} not found; run npm run build`);
  }
  const outputDir = mkdtempSync(path.join(os.tmpdir(), 'spinquant-wasm-speed-'));
  const rows = [];
  const commands = [];
  const failures = [];
  try {
    const runtimes = makeRuntimes(options, outputDir);
    for (const modelName of options.models) {
      const model = MODELS[modelName];
      let reference = null;
      for (const runtime of runtimes) {
        if (runtime.kind === 'emscripten' && !existsSync(path.join(distDir, `spinquant-${runtime.variant.name}.mjs`))) {
          process.stderr.write(`wasm-speed: skipping ${runtime.name}: not built\n`);
          continue;
        }
        process.stderr.write(`wasm-speed: ${modelName} under ${runtime.name}\n`);
        // A failing runtime gets a row of n/a and a note under the table; the others still run.
        let measured;
        try {
          measured = runtime.kind === 'cli'
            ? measureCli(runtime, model, options)
            : measureEmscripten(runtime, model, modelName, options, outputDir);
        } catch (error) {
          process.stderr.write(`wasm-speed: ${modelName} under ${runtime.name} failed: ${error.message}\n`);
          failures.push(`${modelName} under ${runtime.name}: ${error.message.split('\n')[0]}`);
          measured = { decode: null, eval: null, calibrate: null, commands: [] };
        }
        if (runtime.name === 'native') reference = measured;
        rows.push({ model: modelName, runtime: runtime.name, ...measured, reference });
        if (modelName === options.models[0] && measured.commands.length > 0) {
          commands.push([runtime.name, measured.commands]);
        }
      }
    }
  } finally {
    rmSync(outputDir, { recursive: true, force: true });
  }

  const lines = [];
  lines.push(`Machine: ${machineSummary()}.`);
  lines.push(`Best of ${options.repeat} run${options.repeat > 1 ? 's' : ''}; "× native" is the speed relative to ` +
    'native with 1 thread (above 1 is faster).');
  lines.push('');
  lines.push('| model | runtime | decode tok/s | × native | eval tok/s | × native | calibrate s/it | × native |');
  lines.push('| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |');
  for (const row of rows) {
    const ref = row.reference ?? {};
    lines.push(`| ${row.model} | ${row.runtime} | ${format(row.decode, 1)} | ${ratio(row.decode, ref.decode ?? null, true)} ` +
      `| ${format(row.eval, 1)} | ${ratio(row.eval, ref.eval ?? null, true)} ` +
      `| ${format(row.calibrate, 3)} | ${ratio(row.calibrate, ref.calibrate ?? null, false)} |`);
  }
  if (failures.length > 0) {
    lines.push('');
    lines.push('Failed runs:');
    lines.push('');
    for (const failure of failures) lines.push(`- ${failure.replaceAll(outputDir, 'OUT')}`);
  }
  lines.push('');
  lines.push(`Command: \`${['node', 'bench/wasm-speed.mjs', ...process.argv.slice(2)].map(shellQuote).join(' ')}\``);
  lines.push('');
  lines.push(`Commands per runtime for ${options.models[0]} (the other models take the same flags; OUT is a ` +
    'temporary folder):');
  lines.push('');
  for (const [name, list] of commands) {
    lines.push(`- ${name}:`);
    for (const command of list) lines.push(`  - \`${command.replaceAll(outputDir, 'OUT')}\``);
  }
  process.stdout.write(`${lines.join('\n')}\n`);
}

try {
  main();
} catch (error) {
  process.stderr.write(`wasm-speed: error: ${error.message}\n`);
  process.exitCode = 1;
}
