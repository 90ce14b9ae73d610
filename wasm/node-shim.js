// Prepended to the Emscripten ES-module output with --extern-pre-js.
// Emscripten 3.1.6 emits CommonJS names (require, __dirname) in its Node.js code path even when
// it writes an ES module, where Node.js does not define them. This defines both under Node.js.
// Browsers and workers skip the imports; the Node.js path that reads the names never runs there.
const sqRunsInNode = typeof process === 'object' && typeof process.versions === 'object' &&
  typeof process.versions.node === 'string';
const require = sqRunsInNode ? (await import('node:module')).createRequire(import.meta.url) : undefined;
const __dirname = sqRunsInNode ? require('node:path').dirname(require('node:url').fileURLToPath(import.meta.url)) : '';
