// The calibration page: choose a model, texts and bits, run rotation learning in
// calibrate-worker.js, draw the loss per iteration, fill the perplexity table, and offer the
// learned .spq model and rotation file for download. Each run is saved in IndexedDB (store.js)
// as it progresses, so a reloaded tab shows it again.
// NOTE: the package's calibrate() cannot resume an interrupted run, so a run cut short by a
// reload is shown as interrupted and has to be started again.
import { describeError, formatBytes, formatSeconds, serializeError, $ } from './ui.js';
import { drawLossPlot } from './loss-plot.js';
import { latestRun, pruneRuns, saveRun } from './store.js';

// Bit presets: what learning simulates and what the exported .spq model stores. The .spq export
// takes 2- to 4-bit weights, so W16A4KV4 (learning for weights quantized later, as with GPTQ)
// exports round-to-nearest 4-bit weights.
const PRESETS = {
  W4A8KV8: { learn: { wBits: 4, aBits: 8, kvBits: 8 }, spq: { wBits: 4, aBits: 8, kvBits: 8 }, hint: 'Learns with 4-bit weights, 8-bit activations and KV cache; the .spq model has the same widths.' },
  W4A4KV4: { learn: { wBits: 4, aBits: 4, kvBits: 4 }, spq: { wBits: 4, aBits: 4, kvBits: 4 }, hint: 'Learns with 4-bit weights, activations and KV cache; the .spq model has the same widths.' },
  W16A4KV4: { learn: { wBits: 16, aBits: 4, kvBits: 4 }, spq: { wBits: 4, aBits: 4, kvBits: 4 }, hint: 'Learns with full-precision weights and 4-bit activations and KV cache. The .spq model rounds its weights to 4 bits (GPTQ is not in the browser build).' },
};

// The evaluation window in tokens; the model's context must hold it (stories260K: 512).
const EVAL_WINDOW = 512;

const elements = {
  form: $('#calibration-form'),
  modelSelect: $('#model-select'),
  modelHint: $('#model-hint'),
  modelFileButton: $('#model-file-button'),
  modelFileInput: $('#model-file-input'),
  textSelect: $('#text-select'),
  textFileButton: $('#text-file-button'),
  textFileInput: $('#text-file-input'),
  evalSelect: $('#eval-select'),
  bitsHint: $('#bits-hint'),
  iterations: $('#iterations'),
  learningRate: $('#learning-rate'),
  window: $('#window'),
  samples: $('#samples'),
  evalWindows: $('#eval-windows'),
  seed: $('#seed'),
  runButton: $('#run-button'),
  cancelButton: $('#cancel-button'),
  alert: $('#alert'),
  statusText: $('#status-text'),
  runProgress: $('#run-progress'),
  plot: $('#loss-plot'),
  lossSummary: $('#loss-summary'),
  pplTable: $('#ppl-table'),
  pplNote: $('#ppl-note'),
  resultText: $('#result-text'),
  downloadSpq: $('#download-spq'),
  downloadRotation: $('#download-rotation'),
  openInChat: $('#open-in-chat'),
};

const state = {
  models: [],
  samples: [],
  localModel: null, // { file, tokenizerFile, name }
  localText: null, // File
  worker: null,
  run: null, // the run record being shown (see store.js)
  saving: Promise.resolve(),
  downloadUrls: [],
};

// ---- alerts and status ----

function showAlert(title, detail, kind = 'error') {
  elements.alert.replaceChildren();
  const strong = document.createElement('strong');
  strong.textContent = title;
  elements.alert.append(strong);
  if (detail) {
    const paragraph = document.createElement('p');
    paragraph.textContent = detail;
    elements.alert.append(paragraph);
  }
  elements.alert.classList.toggle('notice', kind === 'notice');
  elements.alert.hidden = false;
}

function setStatus(text, progress) {
  elements.statusText.textContent = text;
  if (progress === undefined) elements.runProgress.removeAttribute('value');
  else elements.runProgress.value = progress;
}

// ---- choices ----

function selectedPreset() {
  return elements.form.querySelector('input[name="bits"]:checked').value;
}

function updateBitsHint() {
  elements.bitsHint.textContent = PRESETS[selectedPreset()].hint;
}

for (const radio of elements.form.querySelectorAll('input[name="bits"]')) radio.addEventListener('change', updateBitsHint);

function currentModel() {
  if (elements.modelSelect.value === 'local') return state.localModel;
  const model = state.models[Number(elements.modelSelect.value)];
  return model ? { url: `${model.url}?v=${encodeURIComponent(model.version ?? '')}`, tokenizerUrl: model.tokenizerUrl, name: model.name } : null;
}

function currentText(select) {
  if (select.value === 'local') return state.localText ? { file: state.localText, name: state.localText.name } : null;
  const sample = state.samples[Number(select.value)];
  return sample ? { url: sample.url, name: sample.name } : null;
}

function fillSamples(select, role) {
  select.replaceChildren();
  for (const [index, sample] of state.samples.entries()) {
    if (sample.role !== role) continue;
    select.append(new Option(`${sample.description} (${formatBytes(sample.bytes)})`, String(index)));
  }
  select.disabled = select.options.length === 0;
}

// Picks the sample texts that match the model: TinyStories for stories models, WikiText otherwise.
function matchSamplesToModel() {
  const model = currentModel();
  const stories = /stories/i.test(model?.name ?? '');
  for (const select of [elements.textSelect, elements.evalSelect]) {
    const match = [...select.options].find((option) => /TinyStories/.test(option.textContent) === stories);
    if (match) select.value = match.value;
  }
}

async function fetchLists() {
  try {
    const [models, samples] = await Promise.all([
      fetch('/api/models').then((response) => response.json()),
      fetch('/api/samples').then((response) => response.json()),
    ]);
    // Learning needs the original weights, so .spq models are not offered.
    state.models = models.models.filter((model) => model.format !== 'spq');
    state.samples = samples.samples;
  } catch (error) {
    showAlert('Cannot list the server\'s models and texts', `${error.message}. You can still open files from your computer.`);
  }
  const select = elements.modelSelect;
  select.replaceChildren();
  for (const [index, model] of state.models.entries()) select.append(new Option(model.name, String(index)));
  const preferred = state.models.findIndex((model) => /stories260K\.bin$/.test(model.name));
  if (preferred >= 0) select.value = String(preferred);
  select.disabled = state.models.length === 0;
  fillSamples(elements.textSelect, 'calibration');
  fillSamples(elements.evalSelect, 'evaluation');
  matchSamplesToModel();
  updateModelHint();
  elements.runButton.disabled = false;
}

function updateModelHint() {
  const model = state.models[Number(elements.modelSelect.value)];
  elements.modelHint.textContent = elements.modelSelect.value === 'local'
    ? `${state.localModel.name}, from your computer`
    : model ? `${formatBytes(model.bytes)}, ${model.description}` : '';
}

elements.modelSelect.addEventListener('change', () => {
  updateModelHint();
  matchSamplesToModel();
});

elements.modelFileButton.addEventListener('click', () => elements.modelFileInput.click());
elements.modelFileInput.addEventListener('change', () => {
  const files = [...elements.modelFileInput.files];
  elements.modelFileInput.value = '';
  if (files.length === 0) return;
  const isTokenizer = (file) => /^tok.*\.bin$|^tokenizer\.bin$/i.test(file.name);
  const file = files.find((candidate) => !isTokenizer(candidate)) ?? files[0];
  const tokenizerFile = files.find((candidate) => candidate !== file && isTokenizer(candidate));
  state.localModel = { file, tokenizerFile, name: file.name };
  let option = elements.modelSelect.querySelector('option[value="local"]');
  if (!option) {
    option = new Option('', 'local');
    elements.modelSelect.append(option);
  }
  option.textContent = `${file.name} (local)`;
  elements.modelSelect.value = 'local';
  elements.modelSelect.disabled = false;
  updateModelHint();
});

elements.textFileButton.addEventListener('click', () => elements.textFileInput.click());
elements.textFileInput.addEventListener('change', () => {
  const [file] = elements.textFileInput.files;
  elements.textFileInput.value = '';
  if (!file) return;
  state.localText = file;
  for (const select of [elements.textSelect, elements.evalSelect]) {
    let option = select.querySelector('option[value="local"]');
    if (!option) {
      option = new Option('', 'local');
      select.append(option);
    }
    option.textContent = `${file.name} (local, ${formatBytes(file.size)})`;
    select.disabled = false;
  }
  elements.textSelect.value = 'local';
});

// ---- loss plot ----

function drawPlot() {
  const losses = state.run?.losses ?? [];
  const iterations = state.run?.settings?.options?.iterations ?? Math.max(losses.length, 1);
  drawLossPlot(elements.plot, losses, iterations);
  if (losses.length > 0) {
    const first = losses[0].loss;
    const last = losses.at(-1).loss;
    elements.lossSummary.textContent = `${losses.length} of ${iterations} iterations · first loss ${first.toFixed(4)} · latest ${last.toFixed(4)}`;
  } else {
    elements.lossSummary.textContent = '';
  }
}

new ResizeObserver(() => drawPlot()).observe(elements.plot);

// ---- perplexity table and result ----

function renderTable() {
  const run = state.run;
  const perplexity = run?.perplexity ?? {};
  const preset = run ? PRESETS[run.settings.preset] : PRESETS[selectedPreset()];
  const spqBits = preset.spq;
  const fp32 = perplexity.fp32?.perplexity;
  let best = null;
  for (const row of ['rtn', 'hadamard', 'learned']) {
    const value = perplexity[row]?.perplexity;
    if (Number.isFinite(value) && (best === null || value < perplexity[best].perplexity)) best = row;
  }
  for (const tr of elements.pplTable.tBodies[0].rows) {
    const row = tr.dataset.row;
    const entry = perplexity[row];
    const [, runtimeCell, valueCell, deltaCell] = tr.cells;
    if (row !== 'fp32') runtimeCell.textContent = `integer W${spqBits.wBits}A${spqBits.aBits}KV${spqBits.kvBits}`;
    tr.classList.toggle('best', row === best);
    if (row === 'rtn') {
      valueCell.textContent = 'n/a';
      valueCell.title = 'The package exports .spq models only with rotations, so round-to-nearest without rotation cannot be measured in the browser.';
      deltaCell.textContent = '';
      continue;
    }
    if (!entry) {
      valueCell.textContent = run?.phase === `evaluate-${row}` ? '…' : '–';
      deltaCell.textContent = '–';
    } else if (entry.error) {
      valueCell.textContent = 'failed';
      valueCell.title = entry.error.message;
      deltaCell.textContent = '';
    } else {
      valueCell.textContent = entry.perplexity.toFixed(3);
      valueCell.title = `${entry.windows} windows of ${entry.window} tokens, ${entry.seconds.toFixed(1)} s`;
      deltaCell.textContent = row === 'fp32' || !Number.isFinite(fp32) ? '' : `${entry.perplexity >= fp32 ? '+' : ''}${(entry.perplexity - fp32).toFixed(3)}`;
    }
  }
  const windows = perplexity.fp32?.windows ?? perplexity.learned?.windows;
  elements.pplNote.textContent = [
    windows ? `Windows of ${EVAL_WINDOW} tokens, ${windows} evaluated.` : '',
    'Round-to-nearest without rotation is not measured: the package exports .spq models only with rotations.',
  ].filter(Boolean).join(' ');
}

function setDownload(link, blob, fileName) {
  if (!blob) {
    link.removeAttribute('href');
    link.removeAttribute('download');
    link.setAttribute('aria-disabled', 'true');
    return;
  }
  const url = URL.createObjectURL(blob);
  state.downloadUrls.push(url);
  link.href = url;
  link.download = fileName;
  link.setAttribute('aria-disabled', 'false');
}

function resultBaseName(run) {
  const model = run.labels.model.replace(/^.*\//, '').replace(/\.(gguf|bin)$/i, '');
  return `${model}-${run.settings.preset.toLowerCase()}-learned`;
}

function renderResult() {
  for (const url of state.downloadUrls.splice(0)) URL.revokeObjectURL(url);
  const run = state.run;
  const base = run ? resultBaseName(run) : '';
  setDownload(elements.downloadSpq, run?.spq ?? null, `${base}.spq`);
  setDownload(elements.downloadRotation, run?.rotation ?? null, `${base}.rot`);
  elements.openInChat.setAttribute('aria-disabled', run?.spq ? 'false' : 'true');
  if (!run?.summary) {
    elements.resultText.textContent = run?.status === 'running' ? 'Learning…' : 'The learned model appears here when calibration ends.';
    return;
  }
  const summary = run.summary;
  const parts = [
    `${summary.iterations} iterations in ${formatSeconds(summary.seconds)}`,
    `loss ${summary.firstLoss.toFixed(4)} → ${summary.finalLoss.toFixed(4)}`,
    `${summary.calibrationTokens} calibration tokens`,
  ];
  if (run.spq) parts.push(`.spq model ${formatBytes(run.spq.size)}`);
  elements.resultText.textContent = parts.join(' · ');
}

elements.openInChat.addEventListener('click', (event) => {
  if (elements.openInChat.getAttribute('aria-disabled') === 'true') event.preventDefault();
});
for (const link of [elements.downloadSpq, elements.downloadRotation]) {
  link.addEventListener('click', (event) => {
    if (link.getAttribute('aria-disabled') === 'true') event.preventDefault();
  });
}

// ---- persistence ----

// Saves the run in IndexedDB. Saves are chained, so they land in order.
function persist() {
  const snapshot = { ...state.run, losses: [...state.run.losses] };
  state.saving = state.saving.then(() => saveRun(snapshot)).catch((error) => {
    console.warn(`calibrate: saving the run in IndexedDB failed: ${error.message}`);
  });
}

async function restoreLastRun() {
  let run;
  try {
    run = await latestRun();
  } catch (error) {
    console.warn(`calibrate: reading IndexedDB failed: ${error.message}`);
    return;
  }
  if (!run) return;
  if (run.status === 'running') {
    run.status = 'interrupted';
    state.run = run;
    persist();
    showAlert('The last calibration was interrupted', `It stopped after ${run.losses.length} of ${run.settings.options.iterations} iterations when the page was closed or reloaded. The browser API cannot resume a run, so start it again.`, 'notice');
  } else {
    state.run = run;
  }
  const labels = run.labels;
  setStatus(`Last run (${new Date(run.started).toLocaleString()}): ${labels.model}, ${run.settings.preset}, ${labels.text}: ${run.status}.`, run.status === 'finished' ? 1 : 0);
  drawPlot();
  renderTable();
  renderResult();
}

// ---- running ----

function setRunning(running) {
  elements.runButton.hidden = running;
  elements.cancelButton.hidden = !running;
  for (const control of elements.form.querySelectorAll('select, input, button:not(#cancel-button)')) control.disabled = running;
  if (!running) {
    elements.modelSelect.disabled = elements.modelSelect.options.length === 0;
  }
}

function numberField(input, fallback) {
  const value = Number(input.value);
  return Number.isFinite(value) ? value : fallback;
}

function start() {
  const model = currentModel();
  const calibrationText = currentText(elements.textSelect);
  const evaluationText = currentText(elements.evalSelect);
  if (!model || !calibrationText || !evaluationText) {
    showAlert('Choose a model, a calibration text and an evaluation text', 'Use the lists or open files from your computer.');
    return;
  }
  elements.alert.hidden = true;
  const preset = selectedPreset();
  const { learn, spq } = PRESETS[preset];
  const options = {
    iterations: Math.max(1, Math.floor(numberField(elements.iterations, 20))),
    lr: numberField(elements.learningRate, 1.5),
    window: Math.max(16, Math.floor(numberField(elements.window, 128))),
    samples: Math.max(1, Math.floor(numberField(elements.samples, 16))),
    seed: Math.max(0, Math.floor(numberField(elements.seed, 0))),
    ...learn,
    spq: { ...spq, embedBits: 8 },
  };
  const evalWindows = Math.max(0, Math.floor(numberField(elements.evalWindows, 8)));
  state.run = {
    id: `run-${Date.now()}`,
    started: Date.now(),
    status: 'running',
    phase: 'load',
    settings: { preset, options, evalWindows },
    labels: { model: model.name, text: calibrationText.name, evaluation: evaluationText.name },
    losses: [],
    perplexity: {},
    summary: null,
    rotation: null,
    spq: null,
  };
  persist();
  drawPlot();
  renderTable();
  renderResult();
  setRunning(true);
  setStatus('Starting…');

  state.worker?.terminate();
  const worker = new Worker(new URL('./calibrate-worker.js', import.meta.url), { type: 'module' });
  state.worker = worker;
  worker.addEventListener('message', (event) => handleMessage(event.data));
  worker.addEventListener('error', (event) => fail({ code: null, message: event.message || 'the calibration worker failed to start' }));
  worker.postMessage({ type: 'start', model, calibrationText, evaluationText, options, evalWindows, evalWindow: EVAL_WINDOW });
}

function finish(status) {
  state.run.status = status;
  state.run.phase = null;
  persist();
  setRunning(false);
  state.worker?.terminate();
  state.worker = null;
  renderTable();
  renderResult();
  pruneRuns().catch(() => {});
}

function fail(error) {
  if (!state.run || state.run.status !== 'running') return;
  state.run.error = error;
  if (error.code === 'E_ABORTED') {
    setStatus('Cancelled.', 0);
    finish('cancelled');
    return;
  }
  const { title, detail } = describeError(error, 'calibrate');
  showAlert(title, detail);
  setStatus(`Failed: ${error.message}`, 0);
  finish('failed');
}

const PHASES = {
  'read-text': 'Reading the texts…',
  load: 'Loading the model…',
  export: 'Writing the .spq model with the learned rotations…',
  hadamard: 'Building the Hadamard baseline…',
  'evaluate-learned': 'Measuring the learned model\'s perplexity',
  'evaluate-fp32': 'Measuring the original model\'s perplexity',
  'evaluate-hadamard': 'Measuring the Hadamard baseline\'s perplexity',
};

function handleMessage(message) {
  const run = state.run;
  if (!run) return;
  switch (message.type) {
    case 'phase': {
      run.phase = message.phase;
      const windows = message.total ? ` (window ${message.done} of ${message.total})` : '…';
      setStatus(message.phase.startsWith('evaluate') ? `${PHASES[message.phase]}${windows}` : PHASES[message.phase] ?? message.phase, message.total ? message.done / message.total : undefined);
      if (message.phase.startsWith('evaluate') && !message.total) renderTable();
      break;
    }
    case 'load-progress':
      setStatus(`Loading the model: ${formatBytes(message.loaded)}${message.total ? ` of ${formatBytes(message.total)}` : ''}`, message.total ? message.loaded / message.total : undefined);
      break;
    case 'iteration': {
      if (message.recovered) break;
      run.losses.push({ iteration: message.iteration, loss: message.loss, seconds: message.seconds });
      setStatus(`Iteration ${message.iteration} of ${message.iterations} · loss ${message.loss.toFixed(4)} · ${message.seconds.toFixed(2)} s per iteration · ${formatSeconds(message.secondsLeft)} left`, message.iteration / message.iterations);
      drawPlot();
      persist();
      break;
    }
    case 'learned':
      run.summary = message.summary;
      run.rotation = new Blob([message.rotation], { type: 'application/octet-stream' });
      run.spq = message.spq ? new Blob([message.spq], { type: 'application/octet-stream' }) : null;
      persist();
      renderResult();
      break;
    case 'perplexity':
      run.perplexity[message.row] = message.error ? { error: message.error } : message.result;
      persist();
      renderTable();
      break;
    case 'finished':
      setStatus(`Done: ${run.losses.length} iterations, perplexity measured on ${run.labels.evaluation}.`, 1);
      finish('finished');
      break;
    case 'error':
      fail(message.error);
      break;
    default:
      console.warn(`calibrate: unknown message from the worker: ${message.type}`);
  }
}

elements.form.addEventListener('submit', (event) => {
  event.preventDefault();
  start();
});

elements.cancelButton.addEventListener('click', () => {
  if (!state.worker) return;
  state.worker.postMessage({ type: 'cancel' });
  // The package stops its learning worker at once; this ends ours too, in case it is busy.
  setTimeout(() => {
    if (state.run?.status === 'running') fail(serializeError(Object.assign(new Error('cancelled by the user'), { code: 'E_ABORTED' })));
  }, 1500);
});

window.addEventListener('beforeunload', () => state.worker?.terminate());

updateBitsHint();
drawPlot();
renderTable();
fetchLists().then(restoreLastRun);
