// spinquant-wasm for browsers and Web Workers (the package's "browser" and "default" entry).
import { createApi } from './api.js';
import { platform } from './platform-browser.js';

export { ErrorCode, SpinquantError } from './errors.js';
export { Model } from './model.js';

export const { loadModel, calibrate, selectRuntime, clearCache } = createApi(platform);
