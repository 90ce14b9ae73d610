// The browser and Web Worker side of the package: fetching the .wasm files, Web Workers for
// calibration, the pthread build's file locations and the download caches.
import { cacheApiStore, opfsStore } from './cache.js';
import { ErrorCode, SpinquantError } from './errors.js';

export const platform = {
  name: 'browser',

  // SharedArrayBuffer, and with it the pthread build, exists only on cross-origin isolated pages.
  threadsAvailable: () => globalThis.crossOriginIsolated === true && typeof SharedArrayBuffer === 'function',

  cpuCount: () => globalThis.navigator?.hardwareConcurrency ?? 1,

  relaxedSimdProblem: () => null,

  async compileWasm(url) {
    const response = await fetch(url, { credentials: 'same-origin' });
    if (!response.ok) throw new Error(`HTTP ${response.status} for ${url}`);
    // compileStreaming needs the application/wasm content type; fall back when it is missing.
    if (typeof WebAssembly.compileStreaming === 'function' && response.headers.get('content-type')?.startsWith('application/wasm')) {
      return WebAssembly.compileStreaming(response);
    }
    return WebAssembly.compile(await response.arrayBuffer());
  },

  warn: (text) => console.warn(text),

  // The worker script and the main script are given by URL, so they are found after a bundler
  // has renamed or moved them.
  pthreadSettings: (build) => ({
    locateFile: (file) => (file.endsWith('.worker.js') ? build.workerUrl().href : build.wasmUrl().href),
    mainScriptUrlOrBlob: build.scriptUrl().href,
  }),

  isPathSource: () => false,

  async openPath(filePath) {
    throw new SpinquantError(ErrorCode.INVALID_ARG, `cannot open the file path ${JSON.stringify(filePath)} in a browser; pass a URL, a File or the bytes`);
  },

  mountDirectory() {
    throw new SpinquantError(ErrorCode.UNSUPPORTED, 'Hugging Face folders load only under Node.js; convert the model to GGUF or .spq');
  },

  createCalibrationWorker() {
    const worker = new Worker(new URL('./calibrate-worker-browser.js', import.meta.url), { type: 'module' });
    return {
      post: (message, transfer) => worker.postMessage(message, transfer),
      onMessage: (handler) => worker.addEventListener('message', (event) => handler(event.data)),
      onError: (handler) => {
        worker.addEventListener('error', (event) => handler(new Error(event.message || 'the calibration worker failed to start')));
        worker.addEventListener('messageerror', () => handler(new Error('a message from the calibration worker could not be read')));
      },
      terminate: () => worker.terminate(),
    };
  },

  defaultCache: 'none',
  caches: {
    'cache-api': cacheApiStore,
    opfs: opfsStore,
  },
};
