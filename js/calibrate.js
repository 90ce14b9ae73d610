// calibrate(): SpinQuant rotation learning in a worker (a Web Worker in browsers,
// worker_threads under Node.js), so the caller's thread stays free. Cancelling (through the
// AbortSignal) terminates the worker at once; nothing of the run is kept.
import { ErrorCode, SpinquantError, abortError, describeValue, throwIfAborted } from './errors.js';
import { readSmallSource, validateCacheOption } from './sources.js';

const MAX_TOKENIZER_BYTES = 64 << 20;

const LEARNING_DEFAULTS = { iterations: 100, lr: 1.5, window: 256, samples: 64, windowsPerStep: 1, wBits: 16, aBits: 4, kvBits: 4, mode: 'had', seed: 0, threads: 1 };
const EXPORT_DEFAULTS = { wBits: 4, wGroup: 0, aBits: 8, kvBits: 8, embedBits: 8 };

// prefix names the object that contains the option in messages, such as 'spq.'.
function integerOption(options, name, min, max, prefix = '') {
  const value = options[name];
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new SpinquantError(ErrorCode.INVALID_ARG, `invalid ${prefix}${name} ${describeValue(value)}, expected an integer from ${min} to ${max}`);
  }
}

/** Fills in and checks calibrate()'s options; returns the options the worker receives. */
export function calibrationOptions(options) {
  const defined = Object.fromEntries(Object.entries(options).filter(([, value]) => value !== undefined));
  const merged = { ...LEARNING_DEFAULTS, ...defined };
  integerOption(merged, 'iterations', 1, 1 << 20);
  integerOption(merged, 'window', 2, 1 << 20);
  integerOption(merged, 'samples', 1, 1 << 20);
  integerOption(merged, 'windowsPerStep', 1, 1 << 16);
  integerOption(merged, 'wBits', 2, 16);
  integerOption(merged, 'aBits', 2, 16);
  integerOption(merged, 'kvBits', 2, 16);
  integerOption(merged, 'seed', 0, Number.MAX_SAFE_INTEGER);
  if (typeof merged.lr !== 'number' || !(merged.lr > 0) || merged.lr > 1e3) {
    throw new SpinquantError(ErrorCode.INVALID_ARG, `invalid lr ${describeValue(merged.lr)}, expected a number in (0, 1000]`);
  }
  if (merged.mode !== 'had' && merged.mode !== 'nohad') {
    throw new SpinquantError(ErrorCode.INVALID_ARG, `invalid mode ${describeValue(merged.mode)}, expected 'had' (R1 to R4) or 'nohad' (R1 and R2)`);
  }
  validateCacheOption(merged.cache);

  let spq = merged.spq ?? true;
  if (spq === true) spq = { ...EXPORT_DEFAULTS };
  else if (spq && typeof spq === 'object') spq = { ...EXPORT_DEFAULTS, ...spq };
  else if (spq !== false) throw new SpinquantError(ErrorCode.INVALID_ARG, `invalid spq option ${describeValue(spq)}, expected true, false or { wBits, wGroup, aBits, kvBits, embedBits }`);
  if (spq) {
    integerOption(spq, 'wBits', 2, 4, 'spq.');
    integerOption(spq, 'wGroup', 0, 1 << 20, 'spq.');
    integerOption(spq, 'aBits', 2, 8, 'spq.');
    integerOption(spq, 'kvBits', 2, 16, 'spq.');
    if (spq.kvBits > 8 && spq.kvBits !== 16) {
      throw new SpinquantError(ErrorCode.INVALID_ARG, `invalid spq.kvBits ${describeValue(spq.kvBits)}, expected 2 to 8, or 16 for an unquantized KV cache`);
    }
    if (spq.embedBits !== 8 && spq.embedBits !== 16) {
      throw new SpinquantError(ErrorCode.INVALID_ARG, `invalid spq.embedBits ${describeValue(spq.embedBits)}, expected 8 or 16`);
    }
  }
  const { iterations, lr, window, samples, windowsPerStep, wBits, aBits, kvBits, mode, seed, threads, simd, cache } = merged;
  return { iterations, lr, window, samples, windowsPerStep, wBits, aBits, kvBits, mode, seed, threads, simd, cache, spq };
}

// Messages carry strings, Blobs, byte arrays (copied) and transferred streams, not URL or
// Response objects, so those become a string and a stream.
function describeSource(source) {
  if (typeof URL === 'function' && source instanceof URL) return { message: { kind: 'value', value: source.href }, transfer: [] };
  if (typeof Response === 'function' && source instanceof Response) {
    if (!source.ok || !source.body) throw new SpinquantError(ErrorCode.NETWORK, `the Response has HTTP status ${source.status} or no body`);
    const length = Number(source.headers.get('content-length'));
    const totalBytes = source.headers.has('content-length') && Number.isSafeInteger(length) ? length : null;
    return { message: { kind: 'stream', stream: source.body, totalBytes }, transfer: [source.body] };
  }
  if (typeof ReadableStream === 'function' && source instanceof ReadableStream) {
    return { message: { kind: 'stream', stream: source, totalBytes: null }, transfer: [source] };
  }
  return { message: { kind: 'value', value: source }, transfer: [] };
}

/**
 * Learns SpinQuant rotations for the model at modelSource on calibrationText. Resolves to
 * { rotation: Uint8Array, spq: Uint8Array | null, summary }.
 */
export async function calibrate(platform, modelSource, calibrationText, options = {}) {
  if (typeof calibrationText !== 'string' || calibrationText.length === 0) {
    const got = calibrationText === '' ? 'an empty string' : describeValue(calibrationText);
    throw new SpinquantError(ErrorCode.INVALID_ARG, `calibrationText must be a non-empty string, got ${got}`);
  }
  const { signal, onProgress, tokenizer } = options;
  const settings = calibrationOptions(options);
  throwIfAborted(signal, 'calibration');
  const tokenizerBytes = tokenizer === undefined || tokenizer === null
    ? null
    : await readSmallSource(tokenizer, { platform, signal, cache: settings.cache, what: 'the tokenizer' }, MAX_TOKENIZER_BYTES);
  const source = describeSource(modelSource);
  throwIfAborted(signal, 'calibration');

  const worker = platform.createCalibrationWorker();
  return new Promise((resolve, reject) => {
    let settled = false;
    const finish = (action) => {
      if (settled) return;
      settled = true;
      signal?.removeEventListener('abort', onAbort);
      worker.terminate();
      action();
    };
    function onAbort() {
      finish(() => reject(abortError(signal, 'calibration')));
    }
    signal?.addEventListener('abort', onAbort, { once: true });
    worker.onError((error) => finish(() => reject(new SpinquantError(ErrorCode.IO, `the calibration worker failed: ${error.message}`, { cause: error }))));
    worker.onMessage((message) => {
      if (settled) return;
      if (message.type === 'progress') {
        try {
          onProgress?.(message.event);
        } catch (error) {
          finish(() => reject(error));
        }
      } else if (message.type === 'done') {
        finish(() => resolve({ rotation: message.rotation, spq: message.spq, summary: message.summary }));
      } else if (message.type === 'error') {
        const { code, message: text, nativeCode } = message.error;
        finish(() => reject(new SpinquantError(code, text, { nativeCode })));
      }
    });
    worker.post({ type: 'start', source: source.message, tokenizerBytes, text: calibrationText, options: settings }, source.transfer);
  });
}
