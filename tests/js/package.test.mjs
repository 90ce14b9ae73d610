// Packs the repository with `npm pack` and installs the tarball into an empty folder, with npm
// fetching the one dependency, @huggingface/jinja, from the registry. The package is then used
// from that folder, where the repository's sources are out of reach. The Node.js API loads
// stories260K from a path and generates text, and the `spinquant` command runs `info`. The
// native CLI (build/native/spinquant) quantizes stories260K and SmolLM2-135M-Instruct to .spq
// files in a temporary folder, and the installed package generates from them. With stories260K
// it must give the CLI's greedy tokens, and with SmolLM2 the CLI's answer to a chat question.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { buildDir, repositoryRoot, run } from './helpers.mjs';

const cli = process.env.SQ_CLI ?? path.join(buildDir('native'), 'spinquant');
const storiesGguf = path.join(repositoryRoot, 'models/stories260K/stories260K.gguf');
const storiesBin = path.join(repositoryRoot, 'models/stories260K/stories260K.bin');
const storiesTokenizer = path.join(repositoryRoot, 'models/stories260K/tok512.bin');
const smollm2Gguf = path.join(repositoryRoot, 'models/smollm2/SmolLM2-135M-Instruct.Q4_1.gguf');

// The quantization options tools/start.sh uses for the demo's models. Weights are rounded to
// nearest (no GPTQ), so quantizing takes seconds. SmolLM2 also gets one weight scale per 32
// columns.
const SPQ_OPTIONS = ['--rotation', 'hadamard', '--w-bits', '4', '--a-bits', '8', '--kv-bits', '8', '--embed-bits', '8', '--threads', '1'];
const SMOLLM2_GROUP = ['--w-group', '32'];

// Returns the skip reason when a model file is missing, or false. tools/setup.sh (run by
// `npm test`) downloads the models.
function skipUnlessPresent(...files) {
  const missing = files.filter((file) => !existsSync(file));
  return missing.length > 0 ? `model files missing: ${missing.join(', ')}; run tools/setup.sh` : false;
}

let workspace;
let project;
let packed;

before(() => {
  workspace = mkdtempSync(path.join(os.tmpdir(), 'spinquant-package-'));
  project = path.join(workspace, 'project');
  const pack = run('npm', ['pack', '--json', '--pack-destination', workspace], { timeout: 120_000 });
  assert.equal(pack.status, 0, `npm pack failed:\n${pack.stderr}`);
  [packed] = JSON.parse(pack.stdout);

  run('mkdir', ['-p', project]);
  writeFileSync(path.join(project, 'package.json'), JSON.stringify({ name: 'spinquant-package-test', private: true, type: 'module' }));
  const install = run('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', path.join(workspace, packed.filename)], { cwd: project, timeout: 300_000 });
  assert.equal(install.status, 0, `npm install of the tarball failed:\n${install.stdout}\n${install.stderr}`);
});

after(() => {
  if (workspace) rmSync(workspace, { recursive: true, force: true });
});

test('the tarball holds the package files and nothing else', () => {
  const files = packed.files.map((file) => file.path);
  for (const expected of ['package.json', 'js/node.js', 'js/index.js', 'js/index.d.ts', 'js/cli.js', 'js/README.md',
    'dist/spinquant-simd.mjs', 'dist/spinquant-simd.wasm', 'dist/spinquant.wasm', 'dist/spinquant-pthread.worker.js', 'dist/package.json']) {
    assert.ok(files.includes(expected), `${expected} is missing from the tarball`);
  }
  const unexpected = files.filter((file) => !/^(package\.json|README\.md|js\/[^/]+|dist\/[^/]+\.(mjs|wasm|worker\.js)|dist\/package\.json)$/.test(file));
  assert.deepEqual(unexpected, []);
  const manifest = JSON.parse(readFileSync(path.join(project, 'node_modules/spinquant-wasm/package.json'), 'utf8'));
  assert.deepEqual(Object.keys(manifest.dependencies), ['@huggingface/jinja']);
});

test('the installed package loads a model from a path and generates text', () => {
  const script = `
    import { loadModel, calibrate, SpinquantError } from 'spinquant-wasm';
    const model = await loadModel(${JSON.stringify(storiesBin)}, { tokenizer: ${JSON.stringify(storiesTokenizer)} });
    const run = model.generate('Once upon a time', { temperature: 0, maxTokens: 24 });
    let text = '';
    for await (const piece of run) text += piece;
    const result = await run.result;
    await model.dispose();
    console.log(JSON.stringify({ text, result, format: model.info.format, calibrate: typeof calibrate, error: typeof SpinquantError }));`;
  const result = run(process.execPath, ['--input-type=module', '-e', script], { cwd: project });
  assert.equal(result.status, 0, result.stderr);
  const out = JSON.parse(result.stdout);
  assert.equal(out.format, 'llama2c');
  assert.equal(out.result.generatedTokens, 24);
  assert.equal(out.text, out.result.text);
  assert.match(out.text, /^, there was a little girl/);
  assert.equal(out.calibrate, 'function');
  assert.equal(out.error, 'function');
  // The package resolved to the installed copy, not to the repository.
  const resolved = run(process.execPath, ['--input-type=module', '-e', "console.log(import.meta.resolve('spinquant-wasm'))"], { cwd: project });
  assert.match(resolved.stdout, new RegExp(`${project.replaceAll('/', '\\/')}/node_modules/spinquant-wasm/js/node\\.js`));
});

test('the spinquant command runs info on a model in the current directory', () => {
  copyFileSync(storiesGguf, path.join(project, 'stories260K.gguf'));
  const bin = path.join(project, 'node_modules/.bin/spinquant');
  const info = run(bin, ['info', 'stories260K.gguf', '--json'], { cwd: project });
  assert.equal(info.status, 0, info.stderr);
  const parsed = JSON.parse(info.stdout);
  assert.equal(parsed.format, 'gguf');
  assert.equal(parsed.dim, 64);
  assert.equal(parsed.vocab_size, 512);

  const outside = run(bin, ['info', storiesGguf], { cwd: project });
  assert.equal(outside.status, 2);
  assert.match(outside.stderr, /outside the current directory.*--dir/);
  const granted = run(bin, ['--dir', path.dirname(storiesGguf), 'info', storiesGguf, '--json'], { cwd: project });
  assert.equal(granted.status, 0, granted.stderr);
  assert.equal(JSON.parse(granted.stdout).format, 'gguf');
});

// Writes a .spq file into the temporary folder with the native CLI and returns its path.
function quantizeSpq(input, extraArgs, name) {
  const out = path.join(workspace, name);
  const args = ['quantize', input, ...extraArgs, '--out', out, ...SPQ_OPTIONS];
  const result = run(cli, args, { timeout: 600_000 });
  assert.equal(result.status, 0, `${cli} ${args.join(' ')} failed:\n${result.stderr}`);
  return out;
}

function cliGenerate(args) {
  const result = run(cli, ['generate', ...args, '--temperature', '0', '--json'], { timeout: 300_000 });
  assert.equal(result.status, 0, `${cli} generate ${args.join(' ')} failed:\n${result.stderr}`);
  return JSON.parse(result.stdout);
}

// Runs an ES module script with Node.js in the project folder, where 'spinquant-wasm' resolves
// to the installed package, and returns the JSON object it prints.
function runInProject(script) {
  const result = run(process.execPath, ['--input-type=module', '-e', script], { cwd: project, timeout: 300_000 });
  assert.equal(result.status, 0, result.stderr);
  return JSON.parse(result.stdout);
}

test('stories260K .spq generates like the CLI', { skip: skipUnlessPresent(storiesBin, storiesTokenizer) }, () => {
  const spq = quantizeSpq(storiesBin, ['--tokenizer', storiesTokenizer], 'stories260K-w4a8kv8.spq');
  const prompt = 'Once upon a time';
  const out = runInProject(`
    import { loadModel } from 'spinquant-wasm';
    const model = await loadModel(${JSON.stringify(spq)});
    const run = model.generate(${JSON.stringify(prompt)}, { temperature: 0, maxTokens: 40 });
    let text = '';
    for await (const piece of run) text += piece;
    const result = await run.result;
    const { format, runtime, quantization } = model.info;
    await model.dispose();
    console.log(JSON.stringify({ text, result, format, engine: runtime.engine, quantization }));`);

  assert.equal(out.format, 'spq');
  assert.equal(out.engine, 'integer');
  assert.equal(out.quantization.wBits, 4);
  assert.equal(out.quantization.aBits, 8);
  assert.equal(out.quantization.kvBits, 8);
  assert.equal(out.quantization.rotation, 'hadamard');
  assert.equal(out.result.generatedTokens, 40);
  assert.equal(out.text, out.result.text);
  assert.notEqual(out.text.trim(), '');

  const native = cliGenerate([spq, '--prompt', prompt, '--max-tokens', '40']);
  assert.equal(native.runtime, 'integer');
  assert.equal(out.result.promptTokens, native.prompt_tokens.length);
  assert.deepEqual(out.result.tokenIds, native.tokens);
  assert.equal(out.result.text, native.text);
});

test('SmolLM2 .spq answers a chat question', { skip: skipUnlessPresent(smollm2Gguf) }, () => {
  const spq = quantizeSpq(smollm2Gguf, SMOLLM2_GROUP, 'smollm2-w4a8kv8-g32.spq');
  const question = 'What is the capital of France?';
  const out = runInProject(`
    import { loadModel } from 'spinquant-wasm';
    const model = await loadModel(${JSON.stringify(spq)});
    const run = model.chat([{ role: 'user', content: ${JSON.stringify(question)} }], { temperature: 0, maxTokens: 48 });
    let text = '';
    for await (const piece of run) text += piece;
    const result = await run.result;
    const { format, runtime, quantization } = model.info;
    await model.dispose();
    console.log(JSON.stringify({ text, result, format, engine: runtime.engine, quantization }));`);

  assert.equal(out.format, 'spq');
  assert.equal(out.engine, 'integer');
  assert.equal(out.quantization.wGroup, 32);
  assert.equal(out.text, out.result.text);
  assert.match(out.result.text, /Paris/);
  assert.equal(out.result.stopReason, 'eos');

  // The CLI renders the same chat template natively and runs the same integer engine.
  const native = cliGenerate([spq, '--chat', '--prompt', question, '--max-tokens', '48']);
  assert.equal(out.result.promptTokens, native.prompt_tokens.length);
  assert.deepEqual(out.result.tokenIds, native.tokens);
});
