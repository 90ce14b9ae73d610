// A table of invalid arguments and malformed inputs for the JavaScript API (js/node.js):
// loadModel, Model.generate, chat, tokenize, detokenize, perplexity and calibrate. Each case must
// fail with a SpinquantError of the expected code whose message names the offending value: wrong
// types, missing and corrupt model files, truncated and corrupt .spq bytes, out-of-range or NaN
// options, unknown option values and aborted signals. tests/js/bad-input.test.mjs is the same
// table for the CLI.
// Uses models/stories260K and the native CLI (build/native/spinquant, or SQ_CLI) to write the
// .spq file that the corrupt .spq cases start from.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ReadableStream } from 'node:stream/web';
import zlib from 'node:zlib';
import { repositoryRoot, run } from './helpers.mjs';
import { ErrorCode, SpinquantError, calibrate, loadModel } from '../../js/node.js';

const cli = path.resolve(repositoryRoot, process.env.SQ_CLI ?? 'build/native/spinquant');
const storiesBin = path.join(repositoryRoot, 'models/stories260K/stories260K.bin');
const storiesGguf = path.join(repositoryRoot, 'models/stories260K/stories260K.gguf');
const storiesTokenizer = path.join(repositoryRoot, 'models/stories260K/tok512.bin');

function findSkipReason() {
  if (!existsSync(cli)) return `native CLI not found at ${cli}; build it (npm run build) or set SQ_CLI`;
  for (const file of [storiesBin, storiesGguf, storiesTokenizer]) {
    if (!existsSync(file)) return `model file ${file} not found`;
  }
  if (!existsSync(path.join(repositoryRoot, 'dist/spinquant-simd.wasm'))) return 'dist/spinquant-simd.wasm not found; build it (npm run build)';
  return false;
}

const skip = findSkipReason();

let scratch;
const at = (name) => path.join(scratch, name);
// Fixtures made in before(): the stories260K .spq bytes and a loaded GGUF model.
let spqBytes;
let model;
const calibrationText = 'Once upon a time there was a little girl who liked to play in the park with her dog. '.repeat(40);

// ---- .spq edits ----

// Returns a copy of the .spq bytes with fn applied and the file header's CRC-32 recomputed
// (bytes 60..63 over bytes 0..59).
function editedSpq(fn) {
  const bytes = Buffer.from(spqBytes);
  fn(bytes);
  bytes.writeUInt32LE(zlib.crc32(bytes.subarray(0, 60)), 60);
  return bytes;
}

// Sets the payload size of section 0 (the metadata) and recomputes that section header's CRC-32.
function withMetadataSize(bytes, size) {
  bytes.writeBigUInt64LE(BigInt(size), 64 + 16);
  bytes.writeUInt32LE(zlib.crc32(bytes.subarray(64, 124)), 124);
}

// A ReadableStream of bytes in 4093-byte chunks, with no total size.
function streamOf(bytes) {
  let offset = 0;
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
}

function abortedSignal(reason) {
  const controller = new AbortController();
  controller.abort(new Error(reason));
  return controller.signal;
}

// ---- the check ----

// Calls call() and returns what it threw or rejected with; a GenerationRun is awaited through
// its result.
async function failureOf(call) {
  try {
    let value = call();
    if (value && typeof value.then !== 'function' && value.result) value = value.result;
    await value;
  } catch (error) {
    return error;
  }
  return null;
}

// ---- the table ----

// Each case: [name, () => ({ call, code, mentions })]. mentions lists texts that the message
// must contain, at least the offending value.
const cases = [];
const add = (name, make) => cases.push([name, make]);

// loadModel: sources.
add('loadModel with a number as source', () => ({ call: () => loadModel(42), code: ErrorCode.INVALID_ARG, mentions: ['Number'] }));
add('loadModel with null as source', () => ({ call: () => loadModel(null), code: ErrorCode.INVALID_ARG, mentions: ['the model is missing'] }));
add('loadModel with a plain object as source', () => ({ call: () => loadModel({ path: storiesGguf }), code: ErrorCode.INVALID_ARG, mentions: ['Object'] }));
add('loadModel with a missing file', () => ({ call: () => loadModel(at('missing.gguf')), code: ErrorCode.IO, mentions: [at('missing.gguf')] }));
add('loadModel with a folder without config.json', () => ({ call: () => loadModel(at('empty-folder')), code: ErrorCode.FORMAT, mentions: [at('empty-folder'), 'config.json'] }));
add('loadModel with 3 bytes', () => ({ call: () => loadModel(new Uint8Array(3)), code: ErrorCode.FORMAT, mentions: ['3 bytes'] }));
add('loadModel with text bytes', () => ({ call: () => loadModel(Buffer.from('this is not a model\n'.repeat(40)), { tokenizer: storiesTokenizer }), code: ErrorCode.FORMAT, mentions: ['dim = 1936287860'] }));
add('loadModel with a truncated GGUF', () => ({ call: () => loadModel(readFileSync(storiesGguf).subarray(0, 50_000)), code: ErrorCode.FORMAT, mentions: ['token_embd.weight', '50000 bytes'] }));
add('loadModel of a llama2.c model without a tokenizer', () => ({ call: () => loadModel(storiesBin), code: ErrorCode.INVALID_ARG, mentions: [storiesBin, 'the model is a llama2.c checkpoint', 'tokenizer option'] }));
add('loadModel with a tokenizer of the wrong type', () => ({ call: () => loadModel(storiesBin, { tokenizer: 42 }), code: ErrorCode.INVALID_ARG, mentions: ['the tokenizer', 'Number'] }));
add('loadModel with a truncated tokenizer', () => ({ call: () => loadModel(storiesBin, { tokenizer: readFileSync(storiesTokenizer).subarray(0, 100) }), code: ErrorCode.INVALID_ARG, mentions: ['the tokenizer ends after 7 entries', 'vocab_size is 512'] }));
add('loadModel with a stream of strings', () => ({
  call: () => loadModel(new ReadableStream({ pull(controller) { controller.enqueue('GGUF'); controller.close(); } })),
  code: ErrorCode.INVALID_ARG,
  mentions: ['string chunk'],
}));
add('loadModel with an HTTP 404 Response', () => ({ call: () => loadModel(new Response('missing', { status: 404 })), code: ErrorCode.NETWORK, mentions: ['404'] }));

// loadModel: options.
add('loadModel with threads 0', () => ({ call: () => loadModel(storiesGguf, { threads: 0 }), code: ErrorCode.INVALID_ARG, mentions: ['threads option 0'] }));
add('loadModel with threads NaN', () => ({ call: () => loadModel(storiesGguf, { threads: NaN }), code: ErrorCode.INVALID_ARG, mentions: ['threads option NaN'] }));
add('loadModel with an unknown simd value', () => ({ call: () => loadModel(storiesGguf, { simd: 'avx' }), code: ErrorCode.INVALID_ARG, mentions: ['"avx"'] }));
add('loadModel with an unknown cache value', () => ({ call: () => loadModel(storiesGguf, { cache: 'disk' }), code: ErrorCode.INVALID_ARG, mentions: ['"disk"'] }));
add('loadModel with an aborted signal', () => ({ call: () => loadModel(storiesGguf, { signal: abortedSignal('user left') }), code: ErrorCode.ABORTED, mentions: ['loading the model', 'user left'] }));

// loadModel: .spq bytes.
add('.spq cut to half its size', () => ({ call: () => loadModel(spqBytes.subarray(0, Math.floor(spqBytes.length / 2))), code: ErrorCode.FORMAT, mentions: [String(spqBytes.length), String(Math.floor(spqBytes.length / 2)), 'truncated'] }));
add('.spq cut to half, as a stream of unknown size', () => ({ call: () => loadModel(streamOf(spqBytes.subarray(0, Math.floor(spqBytes.length / 2)))), code: ErrorCode.FORMAT, mentions: ['truncated'] }));
add('.spq with a flipped payload byte', () => ({
  call: () => {
    const bytes = Buffer.from(spqBytes);
    bytes[Math.floor(bytes.length / 2)] ^= 0x10;
    return loadModel(bytes);
  },
  code: ErrorCode.CHECKSUM,
  mentions: ['section', 'CRC-32'],
}));
add('.spq of format version 2', () => ({ call: () => loadModel(editedSpq((bytes) => bytes.writeUInt32LE(2, 8))), code: ErrorCode.UNSUPPORTED, mentions: ['file header', 'version 2'] }));
add('.spq with a wrong file header CRC-32', () => ({
  call: () => {
    const bytes = Buffer.from(spqBytes);
    bytes.writeUInt32LE(bytes.readUInt32LE(60) ^ 1, 60);
    return loadModel(bytes);
  },
  code: ErrorCode.CHECKSUM,
  mentions: ['file header'],
}));
add('.spq whose header declares 1 TiB', () => ({ call: () => loadModel(editedSpq((bytes) => bytes.writeBigUInt64LE(1n << 40n, 24))), code: ErrorCode.FORMAT, mentions: ['1099511627776', String(spqBytes.length)] }));
add('.spq whose header declares 1 TiB, as a stream of unknown size', () => ({ call: () => loadModel(streamOf(editedSpq((bytes) => bytes.writeBigUInt64LE(1n << 40n, 24)))), code: ErrorCode.FORMAT, mentions: ['1099511627776'] }));
add('.spq whose metadata section declares 256 MiB', () => ({ call: () => loadModel(editedSpq((bytes) => withMetadataSize(bytes, 256 * 1024 * 1024))), code: ErrorCode.FORMAT, mentions: ['section 0 (metadata)', '268435456'] }));
add('.spq whose metadata section declares 256 MiB, as a stream', () => ({ call: () => loadModel(streamOf(editedSpq((bytes) => withMetadataSize(bytes, 256 * 1024 * 1024)))), code: ErrorCode.FORMAT, mentions: ['section 0 (metadata)', '268435456'] }));
add('.spq whose metadata section exceeds the 256 MiB limit', () => ({ call: () => loadModel(editedSpq((bytes) => withMetadataSize(bytes, 2 ** 40))), code: ErrorCode.FORMAT, mentions: ['1099511627776', '268435456'] }));
add('.spq with 64 trailing bytes', () => ({ call: () => loadModel(Buffer.concat([spqBytes, Buffer.alloc(64)])), code: ErrorCode.FORMAT, mentions: [String(spqBytes.length), String(spqBytes.length + 64)] }));
add('.spq with a tokenizer option', () => ({ call: () => loadModel(spqBytes, { tokenizer: storiesTokenizer }), code: ErrorCode.INVALID_ARG, mentions: ['carries its own tokenizer'] }));

// generate: sampling options.
add('generate with maxTokens -1', () => ({ call: () => model.generate('Once', { maxTokens: -1 }), code: ErrorCode.INVALID_ARG, mentions: ['maxTokens -1'] }));
add('generate with maxTokens 0', () => ({ call: () => model.generate('Once', { maxTokens: 0 }), code: ErrorCode.INVALID_ARG, mentions: ['maxTokens 0'] }));
add('generate with maxTokens 2.5', () => ({ call: () => model.generate('Once', { maxTokens: 2.5 }), code: ErrorCode.INVALID_ARG, mentions: ['maxTokens 2.5', 'integer'] }));
add('generate with maxTokens as a string', () => ({ call: () => model.generate('Once', { maxTokens: '16' }), code: ErrorCode.INVALID_ARG, mentions: ['maxTokens "16"'] }));
add('generate with temperature NaN', () => ({ call: () => model.generate('Once', { temperature: NaN }), code: ErrorCode.INVALID_ARG, mentions: ['temperature NaN'] }));
add('generate with temperature Infinity', () => ({ call: () => model.generate('Once', { temperature: Infinity }), code: ErrorCode.INVALID_ARG, mentions: ['temperature Infinity'] }));
add('generate with temperature -0.5', () => ({ call: () => model.generate('Once', { temperature: -0.5 }), code: ErrorCode.INVALID_ARG, mentions: ['temperature -0.5'] }));
add('generate with topK -1', () => ({ call: () => model.generate('Once', { topK: -1 }), code: ErrorCode.INVALID_ARG, mentions: ['topK -1'] }));
add('generate with topP 1.5', () => ({ call: () => model.generate('Once', { topP: 1.5 }), code: ErrorCode.INVALID_ARG, mentions: ['topP 1.5'] }));
add('generate with repetitionPenalty 1000', () => ({ call: () => model.generate('Once', { repetitionPenalty: 1000 }), code: ErrorCode.INVALID_ARG, mentions: ['repetitionPenalty 1000'] }));
add('generate with seed -1', () => ({ call: () => model.generate('Once', { seed: -1 }), code: ErrorCode.INVALID_ARG, mentions: ['seed -1'] }));
add('generate with a number as stop', () => ({ call: () => model.generate('Once', { stop: 42 }), code: ErrorCode.INVALID_ARG, mentions: ['stop', '42'] }));
add('generate with a number inside stop', () => ({ call: () => model.generate('Once', { stop: ['end', 7] }), code: ErrorCode.INVALID_ARG, mentions: ['stop[1]', '7'] }));
add('generate with an aborted signal', () => ({ call: () => model.generate('Once', { signal: abortedSignal('user left') }), code: ErrorCode.ABORTED, mentions: ['generation', 'user left'] }));

// generate: prompts.
add('generate with an object as prompt', () => ({ call: () => model.generate({ text: 'Once' }), code: ErrorCode.INVALID_ARG, mentions: ['prompt', '{"text":"Once"}'] }));
add('generate with an empty id array', () => ({ call: () => model.generate([]), code: ErrorCode.INVALID_ARG, mentions: ['prompt is empty'] }));
add('generate with a token id beyond the vocabulary', () => ({ call: () => model.generate([1, 100000], { maxTokens: 2 }), code: ErrorCode.INVALID_ARG, mentions: ['token id 100000', 'vocabulary of 512'] }));
add('generate with a negative token id', () => ({ call: () => model.generate([-1], { maxTokens: 2 }), code: ErrorCode.INVALID_ARG, mentions: ['token id -1'] }));

// chat.
add('chat with a string as messages', () => ({ call: () => model.chat('hello', { chatTemplate: '{{ messages[0].content }}' }), code: ErrorCode.INVALID_ARG, mentions: ['messages', '"hello"'] }));
add('chat with an unknown role', () => ({ call: () => model.chat([{ role: 'robot', content: 'hi' }], { chatTemplate: '{{ messages[0].content }}' }), code: ErrorCode.INVALID_ARG, mentions: ['message 0', '"robot"'] }));
add('chat with a number as content', () => ({ call: () => model.chat([{ role: 'user', content: 5 }], { chatTemplate: '{{ messages[0].content }}' }), code: ErrorCode.INVALID_ARG, mentions: ['message 0', 'content 5'] }));
add('chat with a template that does not parse', () => ({ call: () => model.chat([{ role: 'user', content: 'hi' }], { chatTemplate: '{% if %}' }), code: ErrorCode.FORMAT, mentions: ['chat template cannot be parsed'] }));
add('chat on a model without a chat template', () => ({ call: () => model.chat([{ role: 'user', content: 'hi' }]), code: ErrorCode.UNSUPPORTED, mentions: ['no chat template'] }));
add('chat with temperature NaN', () => ({ call: () => model.chat([{ role: 'user', content: 'hi' }], { chatTemplate: '{{ messages[0].content }}', temperature: NaN }), code: ErrorCode.INVALID_ARG, mentions: ['temperature NaN'] }));

// tokenize, detokenize and perplexity.
add('tokenize with a number', () => ({ call: () => model.tokenize(42), code: ErrorCode.INVALID_ARG, mentions: ['tokenize', '42'] }));
add('detokenize with a string', () => ({ call: () => model.detokenize('abc'), code: ErrorCode.INVALID_ARG, mentions: ['detokenize', '"abc"'] }));
add('detokenize with an id beyond the vocabulary', () => ({ call: () => model.detokenize([100000]), code: ErrorCode.INVALID_ARG, mentions: ['token id 100000'] }));
add('perplexity with a number as text', () => ({ call: () => model.perplexity(42), code: ErrorCode.INVALID_ARG, mentions: ['perplexity', '42'] }));
add('perplexity with window -1', () => ({ call: () => model.perplexity('Once upon a time', { window: -1 }), code: ErrorCode.INVALID_ARG, mentions: ['window -1'] }));
add('perplexity with window NaN', () => ({ call: () => model.perplexity('Once upon a time', { window: NaN }), code: ErrorCode.INVALID_ARG, mentions: ['window NaN'] }));
add('perplexity with maxWindows 1.5', () => ({ call: () => model.perplexity('Once upon a time', { maxWindows: 1.5 }), code: ErrorCode.INVALID_ARG, mentions: ['maxWindows 1.5'] }));
add('perplexity with a window beyond the context', () => ({ call: () => model.perplexity('Once upon a time', { window: 1_000_000 }), code: ErrorCode.INVALID_ARG, mentions: ['window 1000000'] }));
add('perplexity on a text shorter than one window', () => ({ call: () => model.perplexity('Once', { window: 512 }), code: ErrorCode.INVALID_ARG, mentions: ['2 tokens', 'window of 512'] }));
add('perplexity with an aborted signal', () => ({ call: () => model.perplexity('Once upon a time', { signal: abortedSignal('user left') }), code: ErrorCode.ABORTED, mentions: ['perplexity', 'user left'] }));

// calibrate.
add('calibrate with an empty text', () => ({ call: () => calibrate(storiesBin, '', { tokenizer: storiesTokenizer }), code: ErrorCode.INVALID_ARG, mentions: ['calibrationText', 'empty string'] }));
add('calibrate with a number as text', () => ({ call: () => calibrate(storiesBin, 42, { tokenizer: storiesTokenizer }), code: ErrorCode.INVALID_ARG, mentions: ['calibrationText', '42'] }));
add('calibrate with iterations 0', () => ({ call: () => calibrate(storiesBin, calibrationText, { iterations: 0 }), code: ErrorCode.INVALID_ARG, mentions: ['iterations 0'] }));
add('calibrate with iterations as a string', () => ({ call: () => calibrate(storiesBin, calibrationText, { iterations: 'ten' }), code: ErrorCode.INVALID_ARG, mentions: ['iterations "ten"'] }));
add('calibrate with lr NaN', () => ({ call: () => calibrate(storiesBin, calibrationText, { lr: NaN }), code: ErrorCode.INVALID_ARG, mentions: ['lr NaN'] }));
add('calibrate with lr -1', () => ({ call: () => calibrate(storiesBin, calibrationText, { lr: -1 }), code: ErrorCode.INVALID_ARG, mentions: ['lr -1'] }));
add('calibrate with window 1', () => ({ call: () => calibrate(storiesBin, calibrationText, { window: 1 }), code: ErrorCode.INVALID_ARG, mentions: ['window 1'] }));
add('calibrate with an unknown mode', () => ({ call: () => calibrate(storiesBin, calibrationText, { mode: 'full' }), code: ErrorCode.INVALID_ARG, mentions: ['mode "full"'] }));
add('calibrate with spq.wBits 8', () => ({ call: () => calibrate(storiesBin, calibrationText, { spq: { wBits: 8 } }), code: ErrorCode.INVALID_ARG, mentions: ['spq.wBits 8'] }));
add('calibrate with spq.kvBits 12', () => ({ call: () => calibrate(storiesBin, calibrationText, { spq: { kvBits: 12 } }), code: ErrorCode.INVALID_ARG, mentions: ['spq.kvBits 12'] }));
add('calibrate with spq.embedBits 4', () => ({ call: () => calibrate(storiesBin, calibrationText, { spq: { embedBits: 4 } }), code: ErrorCode.INVALID_ARG, mentions: ['spq.embedBits 4'] }));
add('calibrate with spq as a string', () => ({ call: () => calibrate(storiesBin, calibrationText, { spq: 'yes' }), code: ErrorCode.INVALID_ARG, mentions: ['spq option "yes"'] }));
add('calibrate with an unknown cache value', () => ({ call: () => calibrate(storiesBin, calibrationText, { cache: 'disk' }), code: ErrorCode.INVALID_ARG, mentions: ['"disk"'] }));
add('calibrate with threads 0', () => ({ call: () => calibrate(storiesBin, calibrationText, { tokenizer: storiesTokenizer, threads: 0, iterations: 1 }), code: ErrorCode.INVALID_ARG, mentions: ['threads option 0'] }));
add('calibrate with an aborted signal', () => ({ call: () => calibrate(storiesBin, calibrationText, { tokenizer: storiesTokenizer, signal: abortedSignal('user left') }), code: ErrorCode.ABORTED, mentions: ['calibration', 'user left'] }));
add('calibrate with a missing model file', () => ({ call: () => calibrate(at('missing.bin'), calibrationText, { iterations: 1 }), code: ErrorCode.IO, mentions: [at('missing.bin')] }));
add('calibrate with a window beyond the context', () => ({ call: () => calibrate(storiesBin, calibrationText, { tokenizer: storiesTokenizer, window: 4096, samples: 1, iterations: 1 }), code: ErrorCode.INVALID_ARG, mentions: ['window 4096', '512'] }));
add('calibrate on a text too short for the windows', () => ({ call: () => calibrate(storiesBin, 'Once upon a time', { tokenizer: storiesTokenizer, window: 128, samples: 4, iterations: 1 }), code: ErrorCode.INVALID_ARG, mentions: ['4 windows of 128 tokens'] }));
add('calibrate a .spq model', () => ({ call: () => calibrate(spqBytes, calibrationText, { iterations: 1 }), code: ErrorCode.UNSUPPORTED, mentions: ['.spq'] }));

describe('JavaScript API rejects invalid arguments and malformed input cleanly', { skip }, () => {
  before(async () => {
    scratch = mkdtempSync(path.join(os.tmpdir(), 'spinquant-bad-input-js-'));
    mkdirSync(at('empty-folder'));
    const spqPath = at('stories260K.spq');
    const result = run(cli, ['quantize', storiesBin, '--tokenizer', storiesTokenizer, '--out', spqPath]);
    assert.equal(result.status, 0, `quantize failed:\n${result.stderr}`);
    spqBytes = readFileSync(spqPath);
    model = await loadModel(storiesGguf);
  });

  after(async () => {
    await model?.dispose();
    if (scratch) rmSync(scratch, { recursive: true, force: true });
  });

  for (const [name, make] of cases) {
    test(name, async () => {
      const { call, code, mentions } = make();
      const error = await failureOf(call);
      assert.ok(error !== null, 'expected a failure, but the call succeeded');
      assert.ok(error instanceof SpinquantError, `expected a SpinquantError, got ${error?.stack ?? error}`);
      assert.equal(error.code, code, `code of: ${error.message}`);
      for (const text of mentions) {
        assert.ok(error.message.includes(text), `the message does not mention ${JSON.stringify(text)}: ${error.message}`);
      }
    });
  }

  test('disposed model rejects generate', async () => {
    const disposable = await loadModel(storiesGguf);
    await disposable.dispose();
    const error = await failureOf(() => disposable.generate('Once'));
    assert.ok(error instanceof SpinquantError, `expected a SpinquantError, got ${error}`);
    assert.equal(error.code, ErrorCode.INVALID_ARG);
    assert.match(error.message, /disposed/);
  });
});
