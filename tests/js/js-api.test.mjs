// Tests the JavaScript API (js/node.js) under Node.js against the native CLI
// (build/native/spinquant) and the SmolLM2 reference file: every kind of model source,
// perplexity, greedy generation, abort, error codes, chat prompts, the .spq integer runtime and
// the three WebAssembly builds.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Blob } from 'node:buffer';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ReadableStream } from 'node:stream/web';
import { pathToFileURL } from 'node:url';
import { buildDir, distPath, repositoryRoot, run } from './helpers.mjs';
import { ErrorCode, SpinquantError, loadModel, selectRuntime } from '../../js/node.js';

const cli = process.env.SQ_CLI ?? path.join(buildDir('native'), 'spinquant');
const storiesBin = path.join(repositoryRoot, 'models/stories260K/stories260K.bin');
const storiesTokenizer = path.join(repositoryRoot, 'models/stories260K/tok512.bin');
const storiesGguf = path.join(repositoryRoot, 'models/stories260K/stories260K.gguf');
const smollm2 = path.join(repositoryRoot, 'models/smollm2/SmolLM2-135M-Instruct.Q4_1.gguf');
const evalTextPath = path.resolve(repositoryRoot, '../shared/reference/tinystories-40k.txt');
const evalText = readFileSync(evalTextPath, 'utf8');
const smollm2Reference = JSON.parse(readFileSync(path.join(repositoryRoot, 'tests/reference/smollm2-reference.json'), 'utf8'));

const temporary = mkdtempSync(path.join(os.tmpdir(), 'spinquant-js-api-'));
process.on('exit', () => rmSync(temporary, { recursive: true, force: true }));

function cliJson(args) {
  const result = run(cli, args);
  assert.equal(result.status, 0, `${cli} ${args.join(' ')} failed:\n${result.stderr}`);
  return JSON.parse(result.stdout);
}

function assertRelative(actual, expected, tolerance, what) {
  const relative = Math.abs(actual - expected) / Math.abs(expected);
  assert.ok(relative <= tolerance, `${what}: ${actual} vs native ${expected} (relative difference ${relative.toExponential(2)}, allowed ${tolerance})`);
}

async function assertRejectsWith(promise, code) {
  await assert.rejects(promise, (error) => {
    assert.ok(error instanceof SpinquantError, `expected a SpinquantError, got ${error?.stack ?? error}`);
    assert.equal(error.code, code, `code of: ${error.message}`);
    return true;
  });
}

// Native reference values, computed once.
const nativePerplexity = (model, extra, windows) => cliJson(['eval', model, ...extra, '--text', evalTextPath, '--window', '512', ...(windows ? ['--max-windows', String(windows)] : []), '--json']);
const binArgs = ['--tokenizer', storiesTokenizer];

const sources = {
  path: (file) => file,
  ArrayBuffer: (file) => {
    const bytes = readFileSync(file);
    return bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength);
  },
  Blob: (file) => new Blob([readFileSync(file)]),
  ReadableStream: (file) => {
    const bytes = readFileSync(file);
    let offset = 0;
    // 4093-byte chunks: not aligned with anything in the file formats.
    return new ReadableStream({
      pull(controller) {
        if (offset >= bytes.length) {
          controller.close();
          return;
        }
        controller.enqueue(new Uint8Array(bytes.subarray(offset, offset + 4093)));
        offset += 4093;
      },
    });
  },
};

test('stories260K .bin from a path: full perplexity and greedy text match the CLI', async () => {
  const model = await loadModel(storiesBin, { tokenizer: storiesTokenizer });
  try {
    assert.equal(model.info.format, 'llama2c');
    assert.equal(model.info.runtime.engine, 'fp32');
    const expected = nativePerplexity(storiesBin, binArgs);
    const actual = await model.perplexity(evalText, { window: 512 });
    assert.equal(actual.tokens, expected.n_tokens);
    assert.equal(actual.windows, expected.n_windows);
    assert.equal(actual.predictedTokens, expected.n_predicted);
    assertRelative(actual.perplexity, expected.ppl, 1e-5, 'perplexity');

    const greedy = cliJson(['generate', storiesBin, ...binArgs, '--prompt', 'Once upon a time', '--temperature', '0', '--max-tokens', '60', '--json']);
    const run = model.generate('Once upon a time', { temperature: 0, maxTokens: 60 });
    let streamed = '';
    for await (const piece of run) streamed += piece;
    const result = await run.result;
    assert.deepEqual(result.tokenIds, greedy.tokens);
    assert.equal(result.promptTokens, greedy.prompt_tokens.length);
    assert.equal(result.text, greedy.text);
    assert.equal(streamed, result.text);
    assert.equal(result.stopReason, 'length');
  } finally {
    await model.dispose();
  }
});

test('stories260K .gguf from a path: full perplexity and greedy tokens match the CLI', async () => {
  const model = await loadModel(storiesGguf);
  try {
    assert.equal(model.info.format, 'gguf');
    const expected = nativePerplexity(storiesGguf, []);
    const actual = await model.perplexity(evalText, { window: 512 });
    assert.equal(actual.predictedTokens, expected.n_predicted);
    assertRelative(actual.perplexity, expected.ppl, 1e-5, 'perplexity');
    const greedy = cliJson(['generate', storiesGguf, '--prompt', 'The dog', '--temperature', '0', '--max-tokens', '40', '--json']);
    const result = await model.generate('The dog', { temperature: 0, maxTokens: 40 }).result;
    assert.deepEqual(result.tokenIds, greedy.tokens);
  } finally {
    await model.dispose();
  }
});

for (const [kind, makeSource] of Object.entries(sources).filter(([kind]) => kind !== 'path')) {
  for (const [name, file, extra] of [['.bin', storiesBin, binArgs], ['.gguf', storiesGguf, []]]) {
    test(`stories260K ${name} from ${kind}: two windows match the CLI`, async () => {
      const progress = [];
      const options = { onProgress: (event) => progress.push(event) };
      if (extra.length > 0) options.tokenizer = makeSource(storiesTokenizer);
      const model = await loadModel(makeSource(file), options);
      try {
        const expected = nativePerplexity(file, extra, 2);
        const actual = await model.perplexity(evalText, { window: 512, maxWindows: 2 });
        assert.equal(actual.windows, 2);
        assertRelative(actual.perplexity, expected.ppl, 1e-5, 'perplexity');
        const size = readFileSync(file).length;
        const last = progress.at(-1);
        assert.equal(last.phase, 'ready');
        assert.equal(last.loadedBytes, size);
        assert.ok(progress.some((event) => event.phase === 'read' && event.loadedBytes > 0), 'no read progress event');
      } finally {
        await model.dispose();
      }
    });
  }
}

test('generate with an AbortSignal stops within one token', async () => {
  const model = await loadModel(storiesGguf);
  try {
    const controller = new AbortController();
    const run = model.generate('Once upon a time', { maxTokens: 400, temperature: 0.8, seed: 7, signal: controller.signal });
    let pieces = 0;
    await assertRejectsWith((async () => {
      for await (const piece of run) {
        assert.ok(piece.length > 0);
        pieces += 1;
        if (pieces === 3) controller.abort();
      }
    })(), ErrorCode.ABORTED);
    assert.equal(pieces, 3, 'pieces arrived after the abort');
    await assertRejectsWith(run.result, ErrorCode.ABORTED);

    // The queue moves on: the next generation runs normally.
    const next = await model.generate('Once upon a time', { maxTokens: 5, temperature: 0 }).result;
    assert.equal(next.generatedTokens, 5);
  } finally {
    await model.dispose();
  }
});

test('breaking out of the loop stops generation', async () => {
  const model = await loadModel(storiesGguf);
  try {
    const run = model.generate('Once upon a time', { maxTokens: 200, temperature: 0 });
    let pieces = 0;
    for await (const piece of run) {
      assert.ok(piece.length > 0);
      pieces += 1;
      if (pieces === 2) break;
    }
    const result = await run.result;
    assert.equal(result.stopReason, 'cancelled');
    assert.ok(result.generatedTokens <= 3, `${result.generatedTokens} tokens generated after the break`);
  } finally {
    await model.dispose();
  }
});

test('perplexity reports progress and stops on abort', async () => {
  const model = await loadModel(storiesGguf);
  try {
    const controller = new AbortController();
    const progress = [];
    await assertRejectsWith(model.perplexity(evalText, {
      window: 128,
      signal: controller.signal,
      onProgress: (event) => {
        progress.push(event);
        if (event.windowsDone === 2) controller.abort();
      },
    }), ErrorCode.ABORTED);
    assert.deepEqual(progress.map((event) => event.windowsDone), [1, 2]);
    assert.ok(progress[0].windowsTotal > 2);
  } finally {
    await model.dispose();
  }
});

test('a second generate waits for the first', async () => {
  const model = await loadModel(storiesGguf);
  try {
    const order = [];
    const first = model.generate('Once', { maxTokens: 20, temperature: 0 });
    const second = model.generate('Once', { maxTokens: 20, temperature: 0 });
    const collect = async (run, name) => {
      for await (const piece of run) order.push(name);
      return run.result;
    };
    const [a, b] = await Promise.all([collect(first, 'first'), collect(second, 'second')]);
    assert.deepEqual(a.tokenIds, b.tokenIds);
    assert.equal(order.indexOf('second'), order.lastIndexOf('first') + 1, `pieces interleaved: ${order.join(' ')}`);
  } finally {
    await model.dispose();
  }
});

test('stop strings end generation before the stop text', async () => {
  const model = await loadModel(storiesGguf);
  try {
    const full = await model.generate('Once upon a time', { temperature: 0, maxTokens: 60 }).result;
    const stop = 'Lily';
    assert.ok(full.text.includes(stop), `greedy text lacks ${stop}: ${full.text}`);
    const stopped = await model.generate('Once upon a time', { temperature: 0, maxTokens: 60, stop }).result;
    assert.equal(stopped.stopReason, 'stop');
    assert.equal(stopped.text, full.text.slice(0, full.text.indexOf(stop)));
  } finally {
    await model.dispose();
  }
});

test('tokenize and detokenize match the CLI', async () => {
  const model = await loadModel(storiesBin, { tokenizer: storiesTokenizer });
  try {
    const text = 'Lily and Ben went to the park. They saw a big dog!';
    const native = cliJson(['tokenize', storiesBin, ...binArgs, '--prompt', text, '--json']);
    const ids = model.tokenize(text);
    assert.deepEqual(ids, native.ids);
    assert.equal(model.detokenize(ids, { skipSpecialTokens: true }), text);
    await assertRejectsWith(Promise.resolve().then(() => model.detokenize([100000])), ErrorCode.INVALID_ARG);
  } finally {
    await model.dispose();
  }
});

test('invalid model bytes give E_FORMAT', async () => {
  const text = Buffer.from('this is not a model, only a line of text\n'.repeat(40));
  await assertRejectsWith(loadModel(text, { tokenizer: storiesTokenizer }), ErrorCode.FORMAT);
  await assertRejectsWith(loadModel(readFileSync(storiesGguf).subarray(0, 50_000)), ErrorCode.FORMAT);
  await assertRejectsWith(loadModel(new Uint8Array(3)), ErrorCode.FORMAT);
});

test('invalid arguments give E_INVALID_ARG or E_IO', async () => {
  await assertRejectsWith(loadModel(42), ErrorCode.INVALID_ARG);
  await assertRejectsWith(loadModel(storiesGguf, { threads: 0 }), ErrorCode.INVALID_ARG);
  await assertRejectsWith(loadModel(storiesGguf, { simd: 'avx' }), ErrorCode.INVALID_ARG);
  await assertRejectsWith(loadModel(storiesGguf, { cache: 'disk' }), ErrorCode.INVALID_ARG);
  await assertRejectsWith(loadModel(path.join(temporary, 'missing.gguf')), ErrorCode.IO);
  // A llama2.c model without its tokenizer file.
  await assertRejectsWith(loadModel(storiesBin), ErrorCode.INVALID_ARG);
  const model = await loadModel(storiesGguf);
  try {
    await assertRejectsWith(model.generate('Once', { temperature: -1 }).result, ErrorCode.INVALID_ARG);
    await assertRejectsWith(model.perplexity('too short', { window: 512 }), ErrorCode.INVALID_ARG);
    await assertRejectsWith(Promise.resolve().then(() => model.applyChatTemplate([{ role: 'user', content: 'hi' }])), ErrorCode.UNSUPPORTED);
  } finally {
    await model.dispose();
  }
  await assertRejectsWith(model.generate('Once').result, ErrorCode.INVALID_ARG);
});

test('file URLs load and a folder without config.json gives E_FORMAT', async () => {
  const model = await loadModel(pathToFileURL(storiesGguf).href);
  assert.equal(model.info.format, 'gguf');
  await model.dispose();
  await assertRejectsWith(loadModel(temporary), ErrorCode.FORMAT);
  await assert.rejects(loadModel(temporary), new RegExp(`${temporary}.*config\\.json`));
});

test('the cache option is accepted and ignored under Node.js', async () => {
  const model = await loadModel(storiesGguf, { cache: 'opfs' });
  await model.dispose();
});

test('SmolLM2 chat prompt ids match the reference and the answer names Paris', async () => {
  const model = await loadModel(smollm2);
  try {
    assert.equal(model.info.hasChatTemplate, true);
    for (const name of ['user_only', 'with_system']) {
      const expected = smollm2Reference.chat_prompt[name];
      assert.equal(model.applyChatTemplate(expected.messages, { tokenize: false }), expected.rendered, `${name} rendered text`);
      assert.deepEqual(model.applyChatTemplate(expected.messages), expected.ids, `${name} ids`);
    }
    const run = model.chat(smollm2Reference.chat_prompt.user_only.messages, { temperature: 0, maxTokens: 24 });
    let streamed = '';
    for await (const piece of run) streamed += piece;
    const result = await run.result;
    assert.match(result.text, /Paris/);
    assert.equal(streamed, result.text);
    assert.equal(result.promptTokens, smollm2Reference.chat_prompt.user_only.ids.length);
    assert.equal(result.stopReason, 'eos');
    assert.deepEqual(result.tokenIds.slice(0, 5), smollm2Reference.greedy.user_only.new_ids.slice(0, 5));
  } finally {
    await model.dispose();
  }
});

// The integer runtime: a .spq file that the native CLI writes, loaded through the streaming
// .spq reader.
const spqPath = path.join(temporary, 'stories260K-w4a8.spq');
function makeSpq() {
  const result = run(cli, ['quantize', storiesBin, ...binArgs, '--out', spqPath, '--rotation', 'hadamard']);
  assert.equal(result.status, 0, `quantize failed:\n${result.stderr}`);
  return readFileSync(spqPath);
}

test('a .spq model streams in and matches the native integer runtime', async () => {
  const bytes = makeSpq();
  const expected = nativePerplexity(spqPath, [], 3);
  const model = await loadModel(sources.ReadableStream(spqPath));
  try {
    assert.equal(model.info.format, 'spq');
    assert.equal(model.info.runtime.engine, 'integer');
    assert.equal(model.info.quantization.wBits, 4);
    assert.equal(model.info.runtime.kernels, 'wasm-simd128');
    const actual = await model.perplexity(evalText, { window: 512, maxWindows: 3 });
    assertRelative(actual.perplexity, expected.ppl, 1e-5, '.spq perplexity');
    const result = await model.generate('Once upon a time', { temperature: 0, maxTokens: 30 }).result;
    assert.equal(result.generatedTokens, 30);
    const greedy = run(cli, ['generate', spqPath, '--prompt', 'Once upon a time', '--temperature', '0', '--max-tokens', '30', '--json']);
    assert.equal(greedy.status, 0, greedy.stderr);
    assert.deepEqual(result.tokenIds, JSON.parse(greedy.stdout).tokens);
  } finally {
    await model.dispose();
  }

  const corrupt = new Uint8Array(bytes);
  corrupt[Math.floor(corrupt.length / 2)] ^= 0x10;
  await assertRejectsWith(loadModel(corrupt), ErrorCode.CHECKSUM);
  await assertRejectsWith(loadModel(bytes.subarray(0, bytes.length - 100)), ErrorCode.FORMAT);
  await assertRejectsWith(loadModel(spqPath, { tokenizer: storiesTokenizer }), ErrorCode.INVALID_ARG);
});

test('the pthread build with two threads gives the same perplexity', async () => {
  const single = await loadModel(storiesGguf);
  const threaded = await loadModel(storiesGguf, { threads: 2 });
  try {
    assert.equal(threaded.info.runtime.build, 'pthread');
    assert.equal(threaded.info.runtime.threads, 2);
    const a = await single.perplexity(evalText, { window: 512, maxWindows: 2 });
    const b = await threaded.perplexity(evalText, { window: 512, maxWindows: 2 });
    assert.equal(b.perplexity, a.perplexity);
  } finally {
    await single.dispose();
    await threaded.dispose();
  }
});

test('runtime choice: simd128 unless relaxed SIMD is usable', () => {
  const choice = selectRuntime();
  assert.equal(choice.features.simd128, true);
  if (!choice.features.relaxedSimd) {
    assert.equal(choice.build, 'simd');
    assert.throws(() => selectRuntime({ simd: 'relaxed' }), (error) => error.code === ErrorCode.UNSUPPORTED);
  }
  assert.equal(selectRuntime({ simd: 'simd128' }).build, 'simd');
  assert.equal(selectRuntime({ threads: 3 }).build, 'pthread');
  assert.throws(() => selectRuntime({ simd: 'relaxed', threads: 2 }), (error) => error.code === ErrorCode.UNSUPPORTED);
});

// The relaxed build needs V8 flags on Node.js 20, so it runs in a child process.
test('the relaxed build loads a .spq model and matches the simd128 build', async (t) => {
  const [major, minor] = process.versions.v8.split('.').map(Number);
  const flags = major < 11 || (major === 11 && minor < 4) ? ['--experimental-wasm-relaxed-simd', '--no-liftoff'] : [];
  if (!existsSync(distPath('spinquant-relaxed.wasm'))) {
    t.skip(`${distPath('spinquant-relaxed.wasm')} was not built`);
    return;
  }
  const file = path.join(temporary, 'relaxed.spq');
  writeFileSync(file, makeSpq());

  const script = `
    import { loadModel } from ${JSON.stringify(path.join(repositoryRoot, 'js/node.js'))};
    import { readFileSync } from 'node:fs';
    const text = readFileSync(${JSON.stringify(evalTextPath)}, 'utf8');
    const out = {};
    for (const simd of ['relaxed', 'simd128']) {
      const model = await loadModel(${JSON.stringify(file)}, { simd });
      const ppl = await model.perplexity(text, { window: 256, maxWindows: 2 });
      const greedy = await model.generate('Once upon a time', { temperature: 0, maxTokens: 20 }).result;
      out[simd] = { build: model.info.runtime.build, kernels: model.info.runtime.kernels, ppl: ppl.perplexity, ids: greedy.tokenIds };
      await model.dispose();
    }
    console.log(JSON.stringify(out));`;

  const result = run(process.execPath, [...flags, '--input-type=module', '-e', script]);
  assert.equal(result.status, 0, result.stderr);
  const out = JSON.parse(result.stdout);

  assert.equal(out.relaxed.build, 'relaxed');
  assert.equal(out.relaxed.kernels, 'wasm-relaxed-simd');
  assert.equal(out.simd128.kernels, 'wasm-simd128');
  // Integer dot products are exact, so both builds compute the same logits.
  assert.equal(out.relaxed.ppl, out.simd128.ppl);
  assert.deepEqual(out.relaxed.ids, out.simd128.ids);
});
