// The public Model object and loadModel(). A model owns one WebAssembly instance. Operations
// that run the model (generate, chat, perplexity) wait in a queue, so a second call made while
// one runs starts when the first has finished. tokenize and detokenize run at once.
import { chatAddsBos, renderChat } from './chat.js';
import { ErrorCode, SpinquantError, abortError, describeValue, throwIfAborted } from './errors.js';
import { GenerationRun, runTokenLoop, samplingOptions, yieldToEventLoop } from './generation.js';
import { loadInto } from './loader.js';
import { NativeContext } from './native.js';
import { chooseBuild } from './runtime.js';

class TaskQueue {
  #tail = Promise.resolve();

  run(task) {
    const result = this.#tail.then(task);
    this.#tail = result.catch(() => {});
    return result;
  }
}

function toInfo(native, description) {
  const raw = native.info();
  const { build, simd, threads, reason } = native.choice;
  return Object.freeze({
    source: description,
    format: raw.format,
    parameters: {
      dim: raw.dim,
      hiddenDim: raw.hidden_dim,
      layers: raw.n_layers,
      heads: raw.n_heads,
      kvHeads: raw.n_kv_heads,
      headDim: raw.head_dim,
      vocabSize: raw.vocab_size,
    },
    contextLength: raw.context_length,
    weightBytes: raw.weight_bytes,
    bosId: raw.bos_id,
    eosId: raw.eos_id,
    addsBos: raw.adds_bos,
    hasChatTemplate: raw.has_chat_template,
    quantization: raw.quantization
      ? Object.freeze({
          wBits: raw.quantization.w_bits,
          wGroup: raw.quantization.w_group,
          aBits: raw.quantization.a_bits,
          kvBits: raw.quantization.kv_bits,
          embedBits: raw.quantization.embed_bits,
          rotation: raw.quantization.rotation,
          mode: raw.quantization.mode,
        })
      : null,
    runtime: Object.freeze({
      engine: raw.runtime, // 'fp32' or 'integer'
      kernels: raw.kernels,
      build,
      simd,
      threads,
      reason,
      memoryLimitBytes: native.heapMax(),
    }),
  });
}

export class Model {
  #native;
  #queue = new TaskQueue();
  #disposed = false;

  /** @internal Use loadModel(). */
  constructor(native, description) {
    this.#native = native;
    /** Model configuration, tokenizer facts and the runtime in use. */
    this.info = toInfo(native, description);
  }

  #checkAlive() {
    if (this.#disposed) throw new SpinquantError(ErrorCode.INVALID_ARG, 'the model was disposed');
  }

  /** Returns the token ids of text. */
  tokenize(text, { addBos, parseSpecial = false } = {}) {
    this.#checkAlive();
    if (typeof text !== 'string') throw new SpinquantError(ErrorCode.INVALID_ARG, `tokenize expects a string, got ${describeValue(text)}`);
    let bosMode = -1;
    if (addBos !== undefined) bosMode = addBos ? 1 : 0;
    return this.#native.tokenize(text, bosMode, parseSpecial);
  }

  /** Returns the text of token ids; control tokens are left out with skipSpecialTokens. */
  detokenize(ids, { skipSpecialTokens = false } = {}) {
    this.#checkAlive();
    if (!Array.isArray(ids) && !ArrayBuffer.isView(ids)) {
      throw new SpinquantError(ErrorCode.INVALID_ARG, `detokenize expects an array of token ids, got ${describeValue(ids)}`);
    }
    return this.#native.detokenize(Array.from(ids), skipSpecialTokens);
  }

  /**
   * Renders messages with the model's chat template (or options.chatTemplate). Returns the
   * prompt's token ids, or its text with tokenize: false.
   */
  applyChatTemplate(messages, { addGenerationPrompt = true, tokenize = true, chatTemplate, templateVariables } = {}) {
    this.#checkAlive();
    const source = chatTemplate ?? this.#native.chatTemplate();
    if (!source) {
      throw new SpinquantError(ErrorCode.UNSUPPORTED, 'this model has no chat template; pass options.chatTemplate or use generate()');
    }
    const bosToken = this.info.bosId >= 0 ? this.#native.tokenText(this.info.bosId) : '';
    const eosToken = this.info.eosId >= 0 ? this.#native.tokenText(this.info.eosId) : '';
    const text = renderChat(source, messages, { addGenerationPrompt, bosToken, eosToken, variables: templateVariables });
    if (!tokenize) return text;
    return this.#native.tokenize(text, chatAddsBos(text, this.info.addsBos, bosToken) ? 1 : 0, true);
  }

  /**
   * Generates text after prompt (a string, tokenized with the tokenizer's default BOS and with
   * special tokens parsed, or an array of token ids). Returns a GenerationRun: iterate it for
   * text pieces, await its result for the summary.
   */
  generate(prompt, options = {}) {
    return new GenerationRun((run) => this.#queue.run(() => this.#generate(run, () => this.#promptIds(prompt), options)));
  }

  /** Like generate(), with the prompt built from chat messages by applyChatTemplate(). */
  chat(messages, options = {}) {
    const { chatTemplate, templateVariables, ...rest } = options;
    return new GenerationRun((run) => this.#queue.run(() => this.#generate(run, () => this.applyChatTemplate(messages, { chatTemplate, templateVariables }), rest)));
  }

  #promptIds(prompt) {
    if (typeof prompt === 'string') return this.#native.tokenize(prompt, -1, true);
    if (Array.isArray(prompt) || ArrayBuffer.isView(prompt)) return Array.from(prompt);
    throw new SpinquantError(ErrorCode.INVALID_ARG, `the prompt must be a string or an array of token ids, got ${describeValue(prompt)}`);
  }

  async #generate(run, buildPrompt, options) {
    this.#checkAlive();
    const sampling = samplingOptions(options);
    const { signal } = options;
    throwIfAborted(signal, 'generation');
    const ids = buildPrompt();
    if (ids.length === 0) {
      throw new SpinquantError(ErrorCode.INVALID_ARG, 'the prompt is empty and this tokenizer adds no BOS token; give some text');
    }
    this.#native.generateBegin(ids, sampling);
    return runTokenLoop(this.#native, run, ids.length, { ...sampling, signal });
  }

  /**
   * Perplexity of text by the windowed protocol of the native eval command: non-overlapping
   * windows of `window` tokens from an empty cache, the last partial window dropped.
   */
  perplexity(text, { window = 0, maxWindows = 0, signal, onProgress } = {}) {
    return this.#queue.run(async () => {
      this.#checkAlive();
      if (typeof text !== 'string') throw new SpinquantError(ErrorCode.INVALID_ARG, `perplexity expects a string, got ${describeValue(text)}`);
      if (!Number.isInteger(window) || window < 0) throw new SpinquantError(ErrorCode.INVALID_ARG, `invalid window ${describeValue(window)}, expected a positive integer (0: the default)`);
      if (!Number.isInteger(maxWindows) || maxWindows < 0) throw new SpinquantError(ErrorCode.INVALID_ARG, `invalid maxWindows ${describeValue(maxWindows)}, expected a non-negative integer (0: all)`);
      throwIfAborted(signal, 'the perplexity evaluation');
      const begin = globalThis.performance?.now?.() ?? Date.now();
      const available = this.#native.perplexityBegin(text, window);
      const windows = maxWindows > 0 ? Math.min(maxWindows, available) : available;
      for (let index = 0; index < windows; index += 1) {
        if (signal?.aborted) throw abortError(signal, 'the perplexity evaluation');
        this.#native.perplexityWindow(index);
        onProgress?.({ windowsDone: index + 1, windowsTotal: windows });
        await yieldToEventLoop();
      }
      const raw = this.#native.perplexityResult();
      return {
        perplexity: raw.ppl,
        meanNll: raw.mean_nll,
        tokens: raw.n_tokens,
        windows: raw.n_windows,
        predictedTokens: raw.n_predicted,
        window: raw.window,
        seconds: ((globalThis.performance?.now?.() ?? Date.now()) - begin) / 1000,
      };
    });
  }

  /** Returns the size of the model's WebAssembly memory and the size it may grow to, in bytes. */
  memoryUsage() {
    this.#checkAlive();
    return { webAssemblyBytes: this.#native.heapSize(), limitBytes: this.#native.heapMax() };
  }

  /** Frees the model's WebAssembly instance after queued work finished. Safe to call twice. */
  dispose() {
    if (this.#disposed) return Promise.resolve();
    this.#disposed = true;
    return this.#queue.run(() => this.#native.free());
  }
}

/** Loads a model; see index.d.ts for the sources and options. */
export async function loadModel(platform, source, options = {}) {
  const choice = chooseBuild(platform, options);
  throwIfAborted(options.signal, 'loading the model');
  const native = await NativeContext.create(platform, choice);
  try {
    const { description } = await loadInto(native, platform, source, options);
    return new Model(native, description);
  } catch (error) {
    native.free();
    throw error;
  }
}
