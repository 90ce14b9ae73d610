// Entry point of the calibration worker under Node.js (worker_threads); see calibrate-job.js.
import { parentPort } from 'node:worker_threads';
import { runCalibrationJob } from './calibrate-job.js';
import { platform } from './platform-node.js';

parentPort.once('message', (message) => {
  runCalibrationJob(platform, message, (reply, transfer) => parentPort.postMessage(reply, transfer));
});
