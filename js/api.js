// The public functions, bound to one platform (Node.js or browser); index.js and node.js export
// them for their environment.
import { calibrate } from './calibrate.js';
import { ErrorCode, SpinquantError } from './errors.js';
import { loadModel } from './model.js';
import { chooseBuild, probeFeatures } from './runtime.js';

export function createApi(platform) {
  return {
    loadModel: (source, options) => loadModel(platform, source, options),
    calibrate: (modelSource, calibrationText, options) => calibrate(platform, modelSource, calibrationText, options),
    /** Returns the build loadModel would choose for these options, without loading anything. */
    selectRuntime: (options) => {
      const { build, simd, threads, reason } = chooseBuild(platform, options);
      return { build, simd, threads, reason, features: probeFeatures(), threadsAvailable: platform.threadsAvailable() };
    },
    /** Deletes every model the 'cache-api' and 'opfs' caches hold (browsers; a no-op under Node.js). */
    clearCache: async () => {
      for (const store of Object.values(platform.caches)) {
        if (store.available()) await store.clear();
      }
    },
  };
}

export { ErrorCode, SpinquantError };
