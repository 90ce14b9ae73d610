// A thin wrapper around one WebAssembly instance and its sq_api_context (wasm/api*.c): it moves
// strings and token arrays in and out of WebAssembly memory and turns failures into
// SpinquantError. Strings go through malloc rather than the stack, because calibration text
// can be larger than Emscripten's stack.
import { ErrorCode, SpinquantError, codeFromNative } from './errors.js';
import { instantiateBuild } from './runtime.js';

/**
 * Rewrites a loader message for a JavaScript caller. The loaders name the in-memory files that
 * the model bytes and the tokenizer were written to, which mean nothing to the caller (whose
 * description of the source already names the model), and the CLI option --tokenizer.
 */
function describeGuestFiles(message) {
  return message
    .replace(/'\/sq-source-[^']*': /g, '')
    .replace(/(model )?'\/sq-source-[^']*'/g, 'the model')
    .replace(/(tokenizer )?'\/sq-\d+-tokenizer\.bin'/g, 'the tokenizer')
    .replaceAll('pass --tokenizer with', 'pass the tokenizer option with');
}

export class NativeContext {
  /** Starts a WebAssembly instance of the chosen build with a context of choice.threads threads. */
  static async create(platform, choice) {
    const module = await instantiateBuild(platform, choice);
    const ctx = module._sq_api_context_create(choice.threads) >>> 0;
    if (ctx === 0) {
      throw new SpinquantError(ErrorCode.MEMORY, `cannot create a context with ${choice.threads} threads`);
    }
    platform.afterContextCreate?.(module);
    return new NativeContext(module, ctx, choice);
  }

  constructor(module, ctx, choice) {
    this.module = module;
    this.ctx = ctx;
    this.choice = choice;
    this.nextFileId = 0;
  }

  get heap() {
    return this.module.HEAPU8;
  }

  /** Returns the error the last failed call left, as a SpinquantError. */
  lastError(what) {
    const nativeCode = this.module.UTF8ToString(this.module._sq_api_last_error_code(this.ctx));
    const message = this.module.UTF8ToString(this.module._sq_api_last_error(this.ctx));
    return new SpinquantError(codeFromNative(nativeCode), `${what}: ${message || nativeCode}`, { nativeCode });
  }

  check(result, what) {
    if (result < 0) throw this.lastError(what);
    return result;
  }

  withString(text, body) {
    const length = this.module.lengthBytesUTF8(text) + 1;
    const pointer = this.module._malloc(length) >>> 0;
    if (pointer === 0) throw new SpinquantError(ErrorCode.MEMORY, `cannot allocate ${length} bytes of WebAssembly memory for a string`);
    try {
      this.module.stringToUTF8(text, pointer, length);
      return body(pointer);
    } finally {
      this.module._free(pointer);
    }
  }

  withStrings(texts, body) {
    if (texts.length === 0) return body();
    const [first, ...rest] = texts;
    return this.withString(first, (pointer) => this.withStrings(rest, (...pointers) => body(pointer, ...pointers)));
  }

  withIds(ids, body) {
    const pointer = this.module._malloc(Math.max(ids.length, 1) * 4) >>> 0;
    if (pointer === 0) throw new SpinquantError(ErrorCode.MEMORY, `cannot allocate WebAssembly memory for ${ids.length} token ids`);
    try {
      new Int32Array(this.heap.buffer, pointer, ids.length).set(ids);
      return body(pointer);
    } finally {
      this.module._free(pointer);
    }
  }

  string(pointer) {
    return this.module.UTF8ToString(pointer >>> 0);
  }

  heapMax() {
    return this.module._sq_api_heap_max();
  }

  heapSize() {
    return this.module._sq_api_heap_size();
  }

  /** Returns a fresh MEMFS path for a file of this instance. */
  temporaryPath(name) {
    this.nextFileId += 1;
    return `/sq-${this.nextFileId}-${name}`;
  }

  writeFile(path, bytes) {
    this.module.FS.writeFile(path, bytes);
  }

  removeFile(path) {
    try {
      this.module.FS.unlink(path);
    } catch {
      // Already gone.
    }
  }

  // ---- streaming (api_stream.c) ----

  streamBegin(totalBytes) {
    this.check(this.module._sq_api_stream_begin(this.ctx, totalBytes ?? 0), 'cannot start loading the model');
    this.chunkMax = this.module._sq_api_stream_chunk_max();
    this.scratch = this.module._sq_api_stream_scratch(this.ctx) >>> 0;
  }

  /** Copies bytes into WebAssembly memory and feeds them to the stream, in pieces if needed. */
  streamFeed(bytes, what) {
    for (let offset = 0; offset < bytes.length; offset += this.chunkMax) {
      const piece = bytes.subarray(offset, offset + this.chunkMax);
      this.heap.set(piece, this.scratch);
      this.check(this.module._sq_api_stream_feed(this.ctx, this.scratch, piece.length), what);
    }
  }

  streamEnd(tokenizerPath, keepSource, what) {
    const result = this.withString(tokenizerPath ?? '', (pointer) => this.module._sq_api_stream_end(this.ctx, pointer, keepSource ? 1 : 0));
    if (result < 0) {
      const error = this.lastError(what);
      error.message = describeGuestFiles(error.message);
      throw error;
    }
  }

  streamAbort() {
    this.module._sq_api_stream_abort(this.ctx);
  }

  sourcePath() {
    return this.string(this.module._sq_api_source_path(this.ctx));
  }

  modelLoad(path, tokenizerPath, what) {
    this.withStrings([path, tokenizerPath ?? ''], (pathPointer, tokenizerPointer) => this.check(this.module._sq_api_model_load(this.ctx, pathPointer, tokenizerPointer), what));
  }

  // ---- model information and tokens (api.c) ----

  info() {
    return JSON.parse(this.string(this.module._sq_api_model_info(this.ctx)));
  }

  chatTemplate() {
    return this.string(this.module._sq_api_chat_template(this.ctx));
  }

  tokenText(id) {
    return this.string(this.module._sq_api_token_text(this.ctx, id));
  }

  tokenize(text, addBos, parseSpecial) {
    const count = this.withString(text, (pointer) => this.check(this.module._sq_api_tokenize(this.ctx, pointer, addBos, parseSpecial ? 1 : 0), 'cannot tokenize the text'));
    const pointer = this.module._sq_api_tokens(this.ctx) >>> 0;
    return Array.from(new Int32Array(this.heap.buffer, pointer, count));
  }

  detokenize(ids, skipControl) {
    return this.withIds(ids, (pointer) => {
      const text = this.module._sq_api_detokenize(this.ctx, pointer, ids.length, skipControl ? 1 : 0) >>> 0;
      if (text === 0) throw this.lastError('cannot decode the token ids');
      return this.string(text);
    });
  }

  // ---- generation and perplexity (api_run.c) ----

  generateBegin(ids, { maxTokens, temperature, topK, topP, repetitionPenalty, seed }) {
    this.withIds(ids, (pointer) => this.check(this.module._sq_api_generate_begin(this.ctx, pointer, ids.length, maxTokens, temperature, topK, topP, repetitionPenalty, seed), 'cannot start generating'));
  }

  /** Returns the next token id, -1 at an end-of-turn token or -3 when the context is full. */
  generateNext(isLast) {
    const id = this.module._sq_api_generate_next(this.ctx, isLast ? 1 : 0);
    if (id === -2) throw this.lastError('generation failed');
    return id;
  }

  piece() {
    return this.string(this.module._sq_api_piece(this.ctx));
  }

  perplexityBegin(text, window) {
    return this.withString(text, (pointer) => this.check(this.module._sq_api_perplexity_begin(this.ctx, pointer, window), 'cannot evaluate perplexity'));
  }

  perplexityWindow(index) {
    this.check(this.module._sq_api_perplexity_window(this.ctx, index), `perplexity window ${index} failed`);
  }

  perplexityResult() {
    return JSON.parse(this.string(this.module._sq_api_perplexity_result(this.ctx)));
  }

  // ---- calibration and export (api_calibrate.c) ----

  calibrate(text, options, rotationPath) {
    const { iterations, lr, window, samples, windowsPerStep, wBits, aBits, kvBits, mode, seed } = options;
    this.withStrings([text, rotationPath], (textPointer, rotationPointer) => this.check(
      this.module._sq_api_calibrate(this.ctx, textPointer, iterations, lr, window, samples, windowsPerStep, wBits, aBits, kvBits, mode === 'had' ? 1 : 0, seed, rotationPointer),
      'rotation learning failed',
    ));
    return JSON.parse(this.string(this.module._sq_api_result(this.ctx)));
  }

  /** Quantizes the model file at modelPath into .spq bytes; returns { bytes, report }. */
  exportSpq(modelPath, tokenizerPath, rotationPath, { wBits, wGroup, aBits, kvBits, embedBits, mode, seed }) {
    this.withStrings([modelPath, tokenizerPath ?? '', rotationPath ?? ''], (modelPointer, tokenizerPointer, rotationPointer) => this.check(
      this.module._sq_api_export_spq(this.ctx, modelPointer, tokenizerPointer, rotationPointer, wBits, wGroup, aBits, kvBits, embedBits, mode === 'had' ? 1 : 0, seed),
      'cannot export the .spq model',
    ));
    const report = JSON.parse(this.string(this.module._sq_api_result(this.ctx)));
    const pointer = this.module._sq_api_export_bytes(this.ctx) >>> 0;
    const size = this.module._sq_api_export_size(this.ctx);
    const bytes = this.heap.slice(pointer, pointer + size);
    this.module._sq_api_export_free(this.ctx);
    return { bytes, report };
  }

  /** Frees the context and stops the instance's worker threads. */
  free() {
    if (this.ctx === 0) return;
    this.module._sq_api_context_free(this.ctx);
    this.ctx = 0;
    this.module.PThread?.terminateAllThreads?.();
  }
}
