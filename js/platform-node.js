// The Node.js side of the package: reading files in chunks, compiling the .wasm files from
// disk, worker_threads for calibration, and the pthread build's worker handling.
import { open, readFile, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { ErrorCode, SpinquantError, abortError } from './errors.js';

const READ_CHUNK_BYTES = 1 << 20;

// A string source is a URL when it starts with a scheme of two or more letters (so that a
// Windows drive letter such as C: stays a path).
const URL_PATTERN = /^[a-z][a-z0-9+.-]+:/i;

function hasNodeFlag(flag) {
  const options = process.env.NODE_OPTIONS ?? '';
  return process.execArgv.includes(flag) || options.split(/\s+/).includes(flag);
}

function v8Before(major, minor) {
  const [actualMajor, actualMinor] = process.versions.v8.split('.').map(Number);
  return actualMajor < major || (actualMajor === major && actualMinor < minor);
}

export const platform = {
  name: 'node',

  threadsAvailable: () => typeof SharedArrayBuffer === 'function',

  cpuCount: () => (typeof os.availableParallelism === 'function' ? os.availableParallelism() : os.cpus().length),

  // V8 before 11.4 (Node.js 20) has relaxed SIMD only behind --experimental-wasm-relaxed-simd,
  // and its baseline compiler Liftoff miscomputes i32x4.relaxed_dot_i8x16_i7x16_add_s, so the
  // relaxed build is used there only with --no-liftoff.
  // NOTE: later V8 versions were not checked for this bug here.
  relaxedSimdProblem() {
    if (v8Before(11, 4) && !hasNodeFlag('--no-liftoff')) {
      return `Node.js ${process.version} needs --no-liftoff as well, because its baseline compiler miscomputes relaxed dot products`;
    }
    return null;
  },

  compileWasm: async (url) => WebAssembly.compile(await readFile(url)),

  warn: (text) => process.emitWarning(text),

  // Node.js finds the worker script next to the .mjs file by itself.
  pthreadSettings: () => ({}),

  // The pthread build's workers would keep the process alive after the last model is used.
  // Unreferencing them is safe because they only compute while the main thread waits for them.
  afterInstantiate(module) {
    unrefWorkers(module);
  },

  afterContextCreate(module) {
    unrefWorkers(module);
  },

  isPathSource: (value) => typeof value === 'string' && !URL_PATTERN.test(value),

  /** Opens a file or folder. Returns { kind: 'directory', path } or a chunked file source. */
  async openPath(filePath, { signal } = {}) {
    let info;
    try {
      info = await stat(filePath);
    } catch (error) {
      const code = error.code === 'ENOENT' ? 'not found' : error.message;
      throw new SpinquantError(ErrorCode.IO, `cannot read the model file ${JSON.stringify(filePath)}: ${code}`, { cause: error });
    }
    if (info.isDirectory()) return { kind: 'directory', path: path.resolve(filePath) };
    const handle = await open(filePath, 'r');
    const totalBytes = info.size;
    async function* chunks() {
      // One buffer serves every read: the consumer copies each chunk before asking for the next.
      const buffer = Buffer.allocUnsafe(Math.min(READ_CHUNK_BYTES, Math.max(totalBytes, 1)));
      try {
        let position = 0;
        for (;;) {
          if (signal?.aborted) throw abortError(signal, `reading ${filePath}`);
          const { bytesRead } = await handle.read(buffer, 0, buffer.length, position);
          if (bytesRead === 0) return;
          position += bytesRead;
          yield buffer.subarray(0, bytesRead);
        }
      } finally {
        await handle.close();
      }
    }
    return { kind: 'file', totalBytes, phase: 'read', chunks: chunks(), cancel: () => handle.close().catch(() => {}) };
  },

  /** Mounts the host folder at hostPath in the module's file system; returns the guest path. */
  mountDirectory(module, hostPath, guestPath) {
    module.FS.mkdir(guestPath);
    module.FS.mount(module.FS.filesystems.NODEFS, { root: hostPath }, guestPath);
    return guestPath;
  },

  unmountDirectory(module, guestPath) {
    try {
      module.FS.unmount(guestPath);
      module.FS.rmdir(guestPath);
    } catch {
      // The folder was never mounted.
    }
  },

  /** Starts the calibration worker. Returns { post, onMessage, onError, terminate }. */
  createCalibrationWorker() {
    const worker = new Worker(new URL('./calibrate-worker-node.js', import.meta.url));
    return {
      post: (message, transfer) => worker.postMessage(message, transfer),
      onMessage: (handler) => worker.on('message', handler),
      onError: (handler) => {
        worker.on('error', handler);
        worker.on('exit', (code) => handler(new Error(`the calibration worker exited with code ${code}`)));
      },
      terminate: () => worker.terminate(),
    };
  },

  defaultCache: 'none',
  caches: {},

  filePathOf: (url) => fileURLToPath(url),
};

function unrefWorkers(module) {
  const threads = module.PThread;
  if (!threads) return;
  for (const worker of [...(threads.unusedWorkers ?? []), ...(threads.runningWorkers ?? [])]) {
    worker.unref?.();
  }
}
