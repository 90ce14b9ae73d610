// The calibration page's worker: runs the package's calibrate() (which starts its own worker for
// the learning itself), then measures perplexity on the evaluation text with loadModel() and
// model.perplexity(), one model at a time so only one is in memory.
// Requests: start, cancel. Replies: phase, load-progress, iteration, learned, perplexity,
// finished, error.
import { calibrate, loadModel } from '/js/index.js';
import { serializeError } from './ui.js';

const post = (message, transfer) => self.postMessage(message, transfer ?? []);

let controller = null;

async function readText(source, signal) {
  if (source.file) return source.file.text();
  const response = await fetch(source.url, { signal });
  if (!response.ok) {
    const error = new Error(`HTTP ${response.status} for ${source.url}`);
    error.code = 'E_NETWORK';
    throw error;
  }
  return response.text();
}

function modelSource(model) {
  return model.file ?? model.url;
}

function modelOptions(model) {
  return {
    tokenizer: model.tokenizerFile ?? model.tokenizerUrl,
    cache: model.url ? 'cache-api' : 'none',
  };
}

async function measure(row, source, options, evalText, evalWindows, window, signal) {
  post({ type: 'phase', phase: `evaluate-${row}` });
  let model = null;
  try {
    model = await loadModel(source, { ...options, threads: 'auto', signal });
    const result = await model.perplexity(evalText, {
      window,
      maxWindows: evalWindows,
      signal,
      onProgress: ({ windowsDone, windowsTotal }) => post({ type: 'phase', phase: `evaluate-${row}`, done: windowsDone, total: windowsTotal }),
    });
    post({ type: 'perplexity', row, result: { perplexity: result.perplexity, windows: result.windows, window: result.window, seconds: result.seconds, engine: model.info.runtime.engine } });
  } catch (error) {
    if (error?.code === 'E_ABORTED') throw error;
    post({ type: 'perplexity', row, error: serializeError(error) });
  } finally {
    await model?.dispose();
  }
}

async function run(request) {
  const { model, options, evalWindows, evalWindow } = request;
  controller = new AbortController();
  const { signal } = controller;
  try {
    post({ type: 'phase', phase: 'read-text' });
    const [calibrationText, evalText] = await Promise.all([readText(request.calibrationText, signal), readText(request.evaluationText, signal)]);

    post({ type: 'phase', phase: 'load' });
    const learned = await calibrate(modelSource(model), calibrationText, {
      ...modelOptions(model),
      ...options,
      threads: 'auto',
      signal,
      onProgress: (event) => {
        if (event.phase === 'calibrate') {
          post({ type: 'iteration', ...event });
        } else if (event.phase === 'export') {
          post({ type: 'phase', phase: 'export' });
        } else if (event.loadedBytes !== undefined) {
          post({ type: 'load-progress', phase: event.phase, loaded: event.loadedBytes, total: event.totalBytes });
        }
      },
    });
    const rotation = learned.rotation;
    const spq = learned.spq;
    post({ type: 'learned', summary: learned.summary, rotation, spq }, []);

    const window = evalWindow;
    if (spq) {
      await measure('learned', spq, {}, evalText, evalWindows, window, signal);
    }
    await measure('fp32', modelSource(model), modelOptions(model), evalText, evalWindows, window, signal);

    // The Hadamard baseline: one learning step with a negligible learning rate leaves the
    // random Hadamard rotations that learning starts from.
    post({ type: 'phase', phase: 'hadamard' });
    const baseline = await calibrate(modelSource(model), calibrationText, {
      ...modelOptions(model),
      ...options,
      iterations: 1,
      samples: 1,
      lr: 1e-9,
      threads: 'auto',
      signal,
    });
    if (baseline.spq) {
      await measure('hadamard', baseline.spq, {}, evalText, evalWindows, window, signal);
    }
    post({ type: 'finished' });
  } catch (error) {
    post({ type: 'error', error: serializeError(error) });
  } finally {
    controller = null;
  }
}

self.addEventListener('message', (event) => {
  const message = event.data;
  if (message.type === 'start') {
    if (controller) {
      post({ type: 'error', error: { code: 'E_INVALID_ARG', message: 'a calibration is already running' } });
      return;
    }
    run(message);
  } else if (message.type === 'cancel') {
    controller?.abort();
  }
});
