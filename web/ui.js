// Small helpers shared by the demo pages: element lookup, number formatting, settings kept in
// localStorage, and the text shown for each error code of the package.

export function $(selector) {
  const element = document.querySelector(selector);
  if (!element) throw new Error(`element ${selector} not found`);
  return element;
}

export function formatBytes(bytes) {
  if (!Number.isFinite(bytes)) return '–';
  if (bytes < 1024) return `${bytes} B`;
  const units = ['KB', 'MB', 'GB'];
  let value = bytes / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${value.toFixed(value < 10 ? 2 : value < 100 ? 1 : 0)} ${units[unit]}`;
}

export function formatRate(bytesPerSecond) {
  return `${formatBytes(bytesPerSecond)}/s`;
}

export function formatSeconds(seconds) {
  if (!Number.isFinite(seconds)) return '–';
  if (seconds < 60) return `${seconds.toFixed(seconds < 10 ? 1 : 0)} s`;
  const minutes = Math.floor(seconds / 60);
  return `${minutes} min ${Math.round(seconds - minutes * 60)} s`;
}

export function loadSettings(key) {
  try {
    return JSON.parse(localStorage.getItem(key) ?? '{}') ?? {};
  } catch {
    return {};
  }
}

export function saveSettings(key, value) {
  try {
    localStorage.setItem(key, JSON.stringify(value));
  } catch {
    // Storage can be full or disabled, and then the settings last for this page only.
  }
}

// Returns { title, detail } for an error sent by a worker as { code, message, name }.
// The codes are those of the package's SpinquantError (js/errors.js).
export function describeError(error, operation) {
  const message = error?.message ?? String(error);
  const failure = operation === 'load' ? 'The model could not be loaded'
    : operation === 'generate' ? 'Generation failed'
    : operation === 'calibrate' ? 'Calibration failed'
    : 'Something went wrong';
  switch (error?.code) {
    case 'E_UNSUPPORTED':
      return { title: 'This browser lacks a feature the engine needs', detail: message };
    case 'E_MEMORY':
      return { title: 'Out of memory', detail: `${message}. Close other tabs, or pick a smaller model.` };
    case 'E_NETWORK':
      return { title: 'Network error', detail: `${message}. Check that the demo server is still running, then try again.` };
    case 'E_FORMAT':
    case 'E_CHECKSUM':
      return { title: `${failure}: the file is not a valid model`, detail: message };
    case 'E_ABORTED':
      return { title: 'Stopped', detail: message };
    case 'E_INVALID_ARG':
      return { title: failure, detail: message };
    case 'E_IO':
      return { title: `${failure}: a file could not be read`, detail: message };
    default:
      if (error?.name === 'RangeError' && /memory/i.test(message)) {
        return { title: 'Out of memory', detail: message };
      }
      return { title: failure, detail: message };
  }
}

// Checks what every build of the engine needs before loading anything: WebAssembly with 128-bit
// SIMD. Returns null or { title, detail }.
export function checkBrowserSupport() {
  if (typeof WebAssembly !== 'object') {
    return { title: 'WebAssembly is not available', detail: 'This browser has WebAssembly turned off or does not support it.' };
  }
  // A function returning v128.const 0: valid only where 128-bit SIMD is supported.
  const simdProbe = new Uint8Array([
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, 0x01, 0x05, 0x01, 0x60, 0x00, 0x01, 0x7b, 0x03,
    0x02, 0x01, 0x00, 0x0a, 0x16, 0x01, 0x14, 0x00, 0xfd, 0x0c, ...new Array(16).fill(0), 0x0b,
  ]);
  if (!WebAssembly.validate(simdProbe)) {
    return {
      title: 'WebAssembly SIMD is not supported',
      detail: 'The engine needs 128-bit WebAssembly SIMD: Chrome 91, Firefox 89, Safari 16.4 or later.',
    };
  }
  return null;
}

// Serializes an error for postMessage: code, name and message survive, the stack does not.
export function serializeError(error) {
  return {
    code: error?.code ?? null,
    name: error?.name ?? 'Error',
    message: error?.message ?? String(error),
  };
}
