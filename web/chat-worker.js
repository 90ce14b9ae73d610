// The chat page's model worker: loads a model with the npm package (js/index.js, imported as a
// user of the package would) and streams generated text back to the page, one message per piece.
// Requests from the page: init, load, cancel-load, generate, stop. Replies: environment,
// progress, loaded, token, done, memory, error.
import { loadModel } from '/js/index.js';
import { checkBrowserSupport, serializeError } from './ui.js';

let model = null;
let loadController = null;
let generation = null; // { id, controller, stopRequested }
let stopFlag = null; // Int32Array on a SharedArrayBuffer shared with the page, or null

const post = (message) => self.postMessage(message);

function now() {
  return performance.now();
}

// The engine options for the page's choice: 'auto' uses worker threads when the page is
// cross-origin isolated (the pthread build), 'relaxed' and 'simd128' force one thread.
function engineOptions(choice) {
  if (choice === 'relaxed') return { threads: 1, simd: 'relaxed' };
  if (choice === 'simd128') return { threads: 1, simd: 'simd128' };
  return { threads: 'auto', simd: 'auto' };
}

function engineSummary(info) {
  const runtime = info?.runtime ?? {};
  return { build: runtime.build, simd: runtime.simd, threads: runtime.threads, reason: runtime.reason };
}

// Converts the package's info object into the plain fields the page shows.
function pageInfo(info) {
  const quantization = info.quantization;
  return {
    format: info.format,
    runtime: info.runtime?.engine,
    kernels: info.runtime?.kernels,
    weight_bytes: info.weightBytes,
    has_chat_template: info.hasChatTemplate,
    context_length: info.contextLength,
    quantization: quantization
      ? { w_bits: quantization.wBits, a_bits: quantization.aBits, kv_bits: quantization.kvBits, rotation: quantization.rotation }
      : null,
  };
}

// The size of the loaded model's WebAssembly memory, in bytes, or null without a model.
function memoryBytes() {
  return model ? model.memoryUsage().webAssemblyBytes : null;
}

async function load({ source, label, engine }) {
  loadController?.abort();
  const controller = new AbortController();
  loadController = controller;
  if (model) {
    const previous = model;
    model = null;
    await previous.dispose();
  }
  let lastReport = 0;
  const options = {
    ...engineOptions(engine),
    signal: controller.signal,
    // The model files on the demo server carry a version in their URL, so cached bytes are
    // never stale; local files are read directly.
    cache: source.url ? 'cache-api' : 'none',
    tokenizer: source.tokenizerFile ?? source.tokenizerUrl,
    onProgress: ({ phase, loadedBytes, totalBytes }) => {
      const time = now();
      if (time - lastReport < 50 && phase !== 'ready' && loadedBytes !== totalBytes) return;
      lastReport = time;
      post({ type: 'progress', phase, loaded: loadedBytes, total: totalBytes });
    },
  };
  try {
    const loaded = await loadModel(source.file ?? source.url, options);
    if (controller.signal.aborted) {
      await loaded.dispose();
      return;
    }
    model = loaded;
    post({ type: 'loaded', label, info: pageInfo(loaded.info), engine: engineSummary(loaded.info), memoryBytes: memoryBytes() });
  } catch (error) {
    post({ type: 'error', operation: 'load', error: serializeError(error), unloaded: true });
  } finally {
    if (loadController === controller) loadController = null;
  }
}

function stopRequested() {
  return generation?.stopRequested || (stopFlag !== null && Atomics.load(stopFlag, 0) === 1);
}

async function generate(request) {
  if (!model) {
    post({ type: 'error', operation: 'generate', id: request.id, error: { code: 'E_INVALID_ARG', message: 'no model is loaded' } });
    return;
  }
  const { settings } = request;
  const controller = new AbortController();
  generation = { id: request.id, controller, stopRequested: false };
  const options = {
    maxTokens: settings.maxTokens,
    temperature: settings.temperature,
    topP: settings.topP,
    seed: Math.floor(Math.random() * 2 ** 31),
    signal: controller.signal,
  };
  const started = now();
  let firstPieceTime = null;
  let pieces = 0;
  let reason = null;
  try {
    const run = request.mode === 'chat' ? model.chat(request.messages, options) : model.generate(request.prompt, options);
    for await (const text of run) {
      if (firstPieceTime === null) firstPieceTime = now();
      pieces += 1;
      const elapsed = (now() - firstPieceTime) / 1000;
      post({ type: 'token', id: request.id, text, tokens: pieces, tokensPerSecond: elapsed > 0.25 ? (pieces - 1) / elapsed : null });
      if (pieces % 32 === 0) post({ type: 'memory', memoryBytes: memoryBytes() });
      if (stopRequested()) {
        reason = 'aborted';
        break;
      }
    }
    const result = await run.result;
    const prefillSeconds = firstPieceTime === null ? (now() - started) / 1000 : (firstPieceTime - started) / 1000;
    const reasons = { eos: 'stop', stop: 'stop', length: 'length', context: 'context', cancelled: 'aborted' };
    post({
      type: 'done',
      id: request.id,
      reason: reason ?? reasons[result.stopReason] ?? result.stopReason,
      tokens: result.generatedTokens,
      tokensPerSecond: result.tokensPerSecond,
      promptTokens: result.promptTokens,
      prefillSeconds,
      memoryBytes: memoryBytes(),
    });
  } catch (error) {
    if (error?.code === 'E_ABORTED') {
      post({ type: 'done', id: request.id, reason: 'aborted', tokens: pieces, tokensPerSecond: null, memoryBytes: memoryBytes() });
    } else {
      post({ type: 'error', operation: 'generate', id: request.id, error: serializeError(error) });
    }
  } finally {
    generation = null;
  }
}

self.addEventListener('message', (event) => {
  const message = event.data;
  switch (message.type) {
    case 'init': {
      stopFlag = message.stopFlag ?? null;
      post({
        type: 'environment',
        engine: { isolated: self.crossOriginIsolated === true, cpus: navigator.hardwareConcurrency },
        problem: checkBrowserSupport(),
      });
      break;
    }
    case 'load':
      load(message);
      break;
    case 'cancel-load':
      loadController?.abort();
      break;
    case 'generate':
      generate(message);
      break;
    case 'stop':
      if (generation) {
        generation.stopRequested = true;
        generation.controller.abort();
      }
      break;
    default:
      console.warn(`chat worker: unknown request ${message.type}`);
  }
});
