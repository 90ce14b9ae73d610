// spinquant-wasm for Node.js (the package's "node" entry): also loads file paths and Hugging
// Face folders, and runs calibration in worker_threads.
import { createApi } from './api.js';
import { platform } from './platform-node.js';

export { ErrorCode, SpinquantError } from './errors.js';
export { Model } from './model.js';

export const { loadModel, calibrate, selectRuntime, clearCache } = createApi(platform);
