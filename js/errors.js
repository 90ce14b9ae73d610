// The error type of the package. Every failure the package reports is a SpinquantError whose
// `code` is the kind of failure, and whose message names the value or file involved.

/** Error codes, one per kind of failure. */
export const ErrorCode = Object.freeze({
  FORMAT: 'E_FORMAT', // the bytes are not a valid model, tokenizer or text
  CHECKSUM: 'E_CHECKSUM', // a .spq section does not match its CRC-32
  NETWORK: 'E_NETWORK', // a download failed and could not be resumed
  MEMORY: 'E_MEMORY', // the model does not fit in WebAssembly memory
  ABORTED: 'E_ABORTED', // an AbortSignal or a cancel request stopped the operation
  INVALID_ARG: 'E_INVALID_ARG', // an argument or option has an invalid value
  UNSUPPORTED: 'E_UNSUPPORTED', // this environment or build lacks a needed feature
  IO: 'E_IO', // a file could not be read or written
});

const KNOWN_CODES = new Set(Object.values(ErrorCode));

// Codes of the C library (sq_status_name) that have no code of their own in the package.
const NATIVE_CODE_MAP = {
  E_MISMATCH: ErrorCode.INVALID_ARG, // two inputs disagree, such as a tokenizer for another vocabulary
  E_NUMERIC: ErrorCode.FORMAT, // NaN or Inf in weights or during learning
};

export class SpinquantError extends Error {
  /**
   * @param {string} code one of ErrorCode
   * @param {string} message
   * @param {{cause?: unknown, nativeCode?: string}} [options]
   */
  constructor(code, message, options = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'SpinquantError';
    this.code = code;
    if (options.nativeCode !== undefined) this.nativeCode = options.nativeCode;
  }
}

/** Converts the C library's status name (such as "E_NUMERIC") into a package error code. */
export function codeFromNative(nativeCode) {
  if (KNOWN_CODES.has(nativeCode)) return nativeCode;
  return NATIVE_CODE_MAP[nativeCode] ?? ErrorCode.FORMAT;
}

/**
 * Formats a value for an error message: numbers as written (NaN and Infinity included, which
 * JSON.stringify turns into null), strings quoted, and other values as JSON cut to 60
 * characters, or by their type.
 */
export function describeValue(value) {
  if (typeof value === 'number' || typeof value === 'boolean' || value === null || value === undefined) return String(value);
  if (typeof value === 'bigint') return `${value}n`;
  if (typeof value === 'string') return JSON.stringify(value.length > 60 ? `${value.slice(0, 60)}…` : value);
  if (typeof value === 'function' || typeof value === 'symbol') return `a ${typeof value}`;
  let text;
  try {
    text = JSON.stringify(value);
  } catch {
    text = undefined;
  }
  const type = Object.prototype.toString.call(value).slice(8, -1);
  if (text === undefined) return `a value of type ${type}`;
  return `${type === 'Object' || type === 'Array' ? '' : `${type} `}${text.length > 60 ? `${text.slice(0, 60)}…` : text}`;
}

export function abortError(signal, what) {
  const reason = signal?.reason;
  const detail = reason instanceof Error && reason.name !== 'AbortError' ? `: ${reason.message}` : '';
  return new SpinquantError(ErrorCode.ABORTED, `${what} was aborted${detail}`, { cause: reason });
}

export function throwIfAborted(signal, what) {
  if (signal?.aborted) throw abortError(signal, what);
}

/** Returns error unchanged when it is a SpinquantError, otherwise wraps it with code. */
export function wrapError(error, code, message) {
  if (error instanceof SpinquantError) return error;
  const detail = error instanceof Error ? error.message : String(error);
  return new SpinquantError(code, `${message}: ${detail}`, { cause: error });
}
