// One streamed generation: an async iterable of text pieces plus a promise of the final result.
// The token loop runs whether or not anybody iterates (pieces wait in a queue), yields to the
// event loop after every token, and checks the AbortSignal before every token, so an abort
// takes effect within one token.
import { ErrorCode, SpinquantError, abortError, describeValue } from './errors.js';

/** Lets other tasks run: setImmediate under Node.js, a MessageChannel round trip elsewhere. */
export function yieldToEventLoop() {
  if (typeof setImmediate === 'function') return new Promise((resolve) => setImmediate(resolve));
  if (typeof MessageChannel === 'function') {
    return new Promise((resolve) => {
      const channel = new MessageChannel();
      channel.port1.onmessage = () => {
        channel.port1.close();
        resolve();
      };
      channel.port2.postMessage(null);
    });
  }
  return new Promise((resolve) => setTimeout(resolve, 0));
}

function now() {
  return globalThis.performance?.now?.() ?? Date.now();
}

/**
 * Holds back text that could be the start of a stop string, and finds the first complete
 * stop string. push(text) returns { emit, stopped }.
 */
export class StopMatcher {
  constructor(stops) {
    this.stops = stops.filter((stop) => stop.length > 0);
    this.pending = '';
  }

  push(text) {
    this.pending += text;
    let first = -1;
    for (const stop of this.stops) {
      const index = this.pending.indexOf(stop);
      if (index >= 0 && (first < 0 || index < first)) first = index;
    }
    if (first >= 0) {
      const emit = this.pending.slice(0, first);
      this.pending = '';
      return { emit, stopped: true };
    }
    const keep = this.heldBackLength();
    const emit = this.pending.slice(0, this.pending.length - keep);
    this.pending = this.pending.slice(this.pending.length - keep);
    return { emit, stopped: false };
  }

  // Length of the longest end of pending that is a proper prefix of some stop string.
  heldBackLength() {
    let longest = 0;
    for (const stop of this.stops) {
      const limit = Math.min(stop.length - 1, this.pending.length);
      for (let length = limit; length > longest; length -= 1) {
        if (this.pending.endsWith(stop.slice(0, length))) {
          longest = length;
          break;
        }
      }
    }
    return longest;
  }

  flush() {
    const emit = this.pending;
    this.pending = '';
    return emit;
  }
}

const SAMPLING_DEFAULTS = { maxTokens: 256, temperature: 0.8, topK: 40, topP: 0.95, repetitionPenalty: 1, seed: 42 };

function checkNumber(name, value, min, max, integer = false) {
  if (typeof value !== 'number' || Number.isNaN(value) || value < min || value > max || (integer && !Number.isInteger(value))) {
    throw new SpinquantError(ErrorCode.INVALID_ARG, `invalid ${name} ${describeValue(value)}, expected ${integer ? 'an integer' : 'a number'} from ${min} to ${max}`);
  }
  return value;
}

/** Fills in and checks the sampling options of generate() and chat(). */
export function samplingOptions(options = {}) {
  const merged = { ...SAMPLING_DEFAULTS, ...Object.fromEntries(Object.entries(options).filter(([, value]) => value !== undefined)) };
  checkNumber('maxTokens', merged.maxTokens, 1, 1 << 24, true);
  checkNumber('temperature', merged.temperature, 0, 100);
  checkNumber('topK', merged.topK, 0, 1 << 24, true);
  checkNumber('topP', merged.topP, 1e-6, 1);
  checkNumber('repetitionPenalty', merged.repetitionPenalty, 1e-3, 100);
  checkNumber('seed', merged.seed, 0, Number.MAX_SAFE_INTEGER, true);
  let stop = merged.stop ?? [];
  if (typeof stop === 'string') stop = [stop];
  if (!Array.isArray(stop)) {
    throw new SpinquantError(ErrorCode.INVALID_ARG, `invalid stop option ${describeValue(stop)}, expected a string or an array of strings`);
  }
  const index = stop.findIndex((item) => typeof item !== 'string');
  if (index >= 0) {
    throw new SpinquantError(ErrorCode.INVALID_ARG, `invalid stop[${index}] ${describeValue(stop[index])}, expected a string`);
  }
  return { ...merged, stop };
}

/**
 * The object generate() and chat() return. Iterate it for the text pieces; `result` resolves
 * to { text, tokenIds, promptTokens, generatedTokens, tokensPerSecond, stopReason, seconds } or rejects
 * with the SpinquantError that ended the run.
 */
export class GenerationRun {
  #pieces = [];
  #waiting = null;
  #done = false;
  #error = null;
  #iterated = false;
  #stopRequested = false;

  constructor(start) {
    this.result = start(this);
    // The result is also delivered through the iterator; a caller who only iterates must not
    // see an unhandled rejection.
    this.result.catch(() => {});
    this.result.then(() => this.#finish(null), (error) => this.#finish(error));
  }

  /** True once the consumer stopped iterating early; the token loop then ends. */
  get stopRequested() {
    return this.#stopRequested;
  }

  push(piece) {
    if (piece.length === 0) return;
    if (this.#waiting) {
      const resolve = this.#waiting.resolve;
      this.#waiting = null;
      resolve({ value: piece, done: false });
    } else {
      this.#pieces.push(piece);
    }
  }

  #finish(error) {
    this.#done = true;
    this.#error = error;
    if (this.#waiting) {
      const { resolve, reject } = this.#waiting;
      this.#waiting = null;
      if (error) reject(error);
      else resolve({ value: undefined, done: true });
    }
  }

  [Symbol.asyncIterator]() {
    if (this.#iterated) {
      throw new SpinquantError(ErrorCode.INVALID_ARG, 'a generation can be iterated only once; use its result for the whole text');
    }
    this.#iterated = true;
    return {
      next: () => {
        if (this.#pieces.length > 0) return Promise.resolve({ value: this.#pieces.shift(), done: false });
        if (this.#done) return this.#error ? Promise.reject(this.#error) : Promise.resolve({ value: undefined, done: true });
        return new Promise((resolve, reject) => {
          this.#waiting = { resolve, reject };
        });
      },
      return: () => {
        this.#stopRequested = true;
        this.#pieces = [];
        return Promise.resolve({ value: undefined, done: true });
      },
      [Symbol.asyncIterator]() {
        return this;
      },
    };
  }
}

/**
 * Runs the token loop after native.generateBegin() and returns the result object of
 * GenerationRun. promptTokens is the prompt's length.
 */
export async function runTokenLoop(native, run, promptTokens, options) {
  const { maxTokens, signal } = options;
  const matcher = new StopMatcher(options.stop);
  let text = '';
  const tokenIds = [];
  let generatedTokens = 0;
  let stopReason = 'length';
  const begin = now();
  const emit = (piece) => {
    if (piece.length === 0) return;
    text += piece;
    run.push(piece);
  };

  while (generatedTokens < maxTokens) {
    if (signal?.aborted) throw abortError(signal, 'generation');
    if (run.stopRequested) {
      stopReason = 'cancelled';
      break;
    }
    const id = native.generateNext(generatedTokens + 1 === maxTokens);
    const piece = native.piece();
    if (id < 0) {
      stopReason = id === -1 ? 'eos' : 'context';
      const { emit: tail, stopped } = matcher.push(piece);
      emit(tail);
      if (stopped) stopReason = 'stop';
      break;
    }
    generatedTokens += 1;
    tokenIds.push(id);
    const { emit: visible, stopped } = matcher.push(piece);
    emit(visible);
    if (stopped) {
      stopReason = 'stop';
      break;
    }
    await yieldToEventLoop();
  }
  if (stopReason !== 'stop') emit(matcher.flush());
  const seconds = (now() - begin) / 1000;
  return {
    text,
    tokenIds,
    promptTokens,
    generatedTokens,
    tokensPerSecond: seconds > 0 ? generatedTokens / seconds : 0,
    stopReason,
    seconds,
  };
}
