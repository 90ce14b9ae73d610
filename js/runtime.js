// Choosing and starting one of the three Emscripten builds in dist/. The builds:
//   simd     128-bit SIMD, one thread; runs everywhere the package runs
//   relaxed  relaxed SIMD (in the integer dot products of .spq models), one thread
//   pthread  128-bit SIMD with worker threads; needs SharedArrayBuffer, which browsers offer
//            only to cross-origin isolated pages (COOP and COEP headers)
// Each model gets its own WebAssembly instance (so disposing a model returns all its memory),
// while the compiled WebAssembly.Module of each build is compiled once and shared.
import { ErrorCode, SpinquantError, describeValue } from './errors.js';

// The URLs are written out in full so that bundlers (Vite, webpack) find and copy the files.
const BUILDS = {
  simd: {
    importScript: () => import('../dist/spinquant-simd.mjs'),
    scriptUrl: () => new URL('../dist/spinquant-simd.mjs', import.meta.url),
    wasmUrl: () => new URL('../dist/spinquant-simd.wasm', import.meta.url),
  },
  relaxed: {
    importScript: () => import('../dist/spinquant-relaxed.mjs'),
    scriptUrl: () => new URL('../dist/spinquant-relaxed.mjs', import.meta.url),
    wasmUrl: () => new URL('../dist/spinquant-relaxed.wasm', import.meta.url),
  },
  pthread: {
    importScript: () => import('../dist/spinquant-pthread.mjs'),
    scriptUrl: () => new URL('../dist/spinquant-pthread.mjs', import.meta.url),
    wasmUrl: () => new URL('../dist/spinquant-pthread.wasm', import.meta.url),
    workerUrl: () => new URL('../dist/spinquant-pthread.worker.js', import.meta.url),
  },
};

// A module with one function returning the result of
// i32x4.relaxed_dot_i8x16_i7x16_add_s(v128.const 0, v128.const 0, v128.const 0).
const RELAXED_SIMD_PROBE = new Uint8Array([
  0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, // magic, version 1
  0x01, 0x05, 0x01, 0x60, 0x00, 0x01, 0x7b, // type section: () -> v128
  0x03, 0x02, 0x01, 0x00, // function section: one function of type 0
  0x0a, 0x3d, 0x01, 0x3b, 0x00, // code section: one body of 59 bytes, no locals
  0xfd, 0x0c, ...new Array(16).fill(0),
  0xfd, 0x0c, ...new Array(16).fill(0),
  0xfd, 0x0c, ...new Array(16).fill(0),
  0xfd, 0x93, 0x02, // i32x4.relaxed_dot_i8x16_i7x16_add_s (0xfd 0x113)
  0x0b, // end
]);

// The same module with v128.const only: plain 128-bit SIMD.
const SIMD128_PROBE = new Uint8Array([
  0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
  0x01, 0x05, 0x01, 0x60, 0x00, 0x01, 0x7b,
  0x03, 0x02, 0x01, 0x00,
  0x0a, 0x16, 0x01, 0x14, 0x00,
  0xfd, 0x0c, ...new Array(16).fill(0),
  0x0b,
]);

/** Returns which WebAssembly features this engine validates. */
export function probeFeatures() {
  return {
    simd128: WebAssembly.validate(SIMD128_PROBE),
    relaxedSimd: WebAssembly.validate(RELAXED_SIMD_PROBE),
  };
}

const MAX_THREADS = 64;

/**
 * Picks the build for the options. simd: 'auto' | 'relaxed' | 'simd128'; threads: a count or
 * 'auto'. Returns { build, simd, threads, reason }.
 */
export function chooseBuild(platform, options = {}) {
  const simd = options.simd ?? 'auto';
  if (!['auto', 'relaxed', 'simd128'].includes(simd)) {
    throw new SpinquantError(ErrorCode.INVALID_ARG, `invalid simd option ${describeValue(simd)}, expected 'auto', 'relaxed' or 'simd128'`);
  }
  const features = probeFeatures();
  if (!features.simd128) {
    throw new SpinquantError(ErrorCode.UNSUPPORTED, 'this JavaScript engine lacks WebAssembly 128-bit SIMD, which every build of spinquant needs (Chrome 91, Firefox 89, Safari 16.4, Node.js 16.4 or later)');
  }

  const threadsAvailable = platform.threadsAvailable();
  let threads = options.threads ?? 1;
  if (threads === 'auto') {
    threads = threadsAvailable ? Math.min(platform.cpuCount(), 8) : 1;
  }
  if (!Number.isInteger(threads) || threads < 1 || threads > MAX_THREADS) {
    throw new SpinquantError(ErrorCode.INVALID_ARG, `invalid threads option ${describeValue(options.threads)}, expected 'auto' or an integer from 1 to ${MAX_THREADS}`);
  }
  if (threads > 1 && !threadsAvailable) {
    throw new SpinquantError(ErrorCode.UNSUPPORTED, `threads: ${threads} needs SharedArrayBuffer, which this page lacks because it is not cross-origin isolated; serve it with the headers Cross-Origin-Opener-Policy: same-origin and Cross-Origin-Embedder-Policy: require-corp, or use threads: 1`);
  }

  const relaxedProblem = relaxedSimdProblem(platform, features);
  if (simd === 'relaxed' && relaxedProblem) {
    throw new SpinquantError(ErrorCode.UNSUPPORTED, `simd: 'relaxed' is not available: ${relaxedProblem}`);
  }
  if (simd === 'relaxed' && threads > 1) {
    throw new SpinquantError(ErrorCode.UNSUPPORTED, "simd: 'relaxed' runs single-threaded (there is no threaded relaxed-SIMD build); use threads: 1 or simd: 'simd128'");
  }
  if (threads > 1) {
    return { build: 'pthread', simd: 'simd128', threads, reason: `${threads} threads need the pthread build, which uses 128-bit SIMD` };
  }
  if (simd === 'relaxed' || (simd === 'auto' && !relaxedProblem)) {
    return { build: 'relaxed', simd: 'relaxed', threads: 1, reason: simd === 'auto' ? 'relaxed SIMD validated' : "simd: 'relaxed' requested" };
  }
  const reason = simd === 'simd128' ? "simd: 'simd128' requested" : `relaxed SIMD not used: ${relaxedProblem}`;
  return { build: 'simd', simd: 'simd128', threads: 1, reason };
}

function relaxedSimdProblem(platform, features) {
  if (!features.relaxedSimd) {
    return platform.name === 'node'
      ? 'this Node.js does not validate relaxed SIMD (Node.js 20 needs --experimental-wasm-relaxed-simd --no-liftoff)'
      : 'this browser does not validate relaxed SIMD (Chrome 114 or later has it)';
  }
  return platform.relaxedSimdProblem?.() ?? null;
}

const compiledModules = new Map();

function compileBuild(platform, name) {
  let compiled = compiledModules.get(name);
  if (compiled === undefined) {
    compiled = platform.compileWasm(BUILDS[name].wasmUrl());
    compiledModules.set(name, compiled);
    compiled.catch(() => compiledModules.delete(name));
  }
  return compiled;
}

/**
 * Starts a new instance of a build. Returns the Emscripten module object, which carries the
 * exported C functions (module._sq_api_*), FS and HEAPU8.
 */
export async function instantiateBuild(platform, choice) {
  const build = BUILDS[choice.build];
  let factory;
  let compiled;
  try {
    [{ default: factory }, compiled] = await Promise.all([build.importScript(), compileBuild(platform, choice.build)]);
  } catch (error) {
    throw new SpinquantError(ErrorCode.IO, `cannot load the WebAssembly build ${choice.build} (${build.wasmUrl().href}): ${error.message}`, { cause: error });
  }

  let failInstantiation;
  const instantiationFailed = new Promise((resolve, reject) => {
    failInstantiation = reject;
  });
  const settings = {
    instantiateWasm(imports, receiveInstance) {
      WebAssembly.instantiate(compiled, imports).then(
        (instance) => receiveInstance(instance, compiled),
        (error) => failInstantiation(error),
      );
      return {};
    },
    print: () => {},
    printErr: (text) => platform.warn?.(`spinquant (WebAssembly): ${text}`),
  };
  if (choice.build === 'pthread') {
    settings.pthreadPoolSize = choice.threads - 1;
    Object.assign(settings, platform.pthreadSettings?.(build) ?? {});
  }

  let module;
  try {
    module = await Promise.race([factory(settings), instantiationFailed]);
  } catch (error) {
    const memory = /memory/i.test(String(error?.message ?? error));
    throw new SpinquantError(memory ? ErrorCode.MEMORY : ErrorCode.UNSUPPORTED, `cannot start the WebAssembly build ${choice.build}: ${error?.message ?? error}`, { cause: error });
  }
  platform.afterInstantiate?.(module);
  return module;
}
