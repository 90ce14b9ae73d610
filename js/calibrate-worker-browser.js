// Entry point of the calibration worker in browsers (a module Web Worker); see calibrate-job.js.
import { runCalibrationJob } from './calibrate-job.js';
import { platform } from './platform-browser.js';

self.addEventListener(
  'message',
  (event) => {
    runCalibrationJob(platform, event.data, (reply, transfer) => self.postMessage(reply, transfer));
  },
  { once: true },
);
