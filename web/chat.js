// The chat page: the model picker, download progress, the message list and the settings. The
// model itself runs in chat-worker.js, so a long prefill never blocks this thread. This file
// only sends requests to the worker and renders what comes back.
import { latestModelRun } from './store.js';
import { describeError, formatBytes, formatRate, loadSettings, saveSettings, $ } from './ui.js';

const SETTINGS_KEY = 'spinquant-chat-settings';
const DEFAULT_MODEL_PATTERN = /smollm2.*\.spq$/i;

const elements = {
  modelSelect: $('#model-select'),
  modelHint: $('#model-hint'),
  loadButton: $('#load-button'),
  openFileButton: $('#open-file-button'),
  fileInput: $('#file-input'),
  progress: $('#progress'),
  progressBar: $('#progress-bar'),
  progressBytes: $('#progress-bytes'),
  progressSpeed: $('#progress-speed'),
  cancelLoadButton: $('#cancel-load-button'),
  temperature: $('#temperature'),
  temperatureValue: $('#temperature-value'),
  topP: $('#top-p'),
  topPValue: $('#top-p-value'),
  maxTokens: $('#max-tokens'),
  systemPrompt: $('#system-prompt'),
  engineSelect: $('#engine-select'),
  statBuild: $('#stat-build'),
  statThreads: $('#stat-threads'),
  statSimd: $('#stat-simd'),
  statIsolated: $('#stat-isolated'),
  statRuntime: $('#stat-runtime'),
  statWeights: $('#stat-weights'),
  statMemory: $('#stat-memory'),
  statSpeed: $('#stat-speed'),
  chatModel: $('#chat-model'),
  chatMode: $('#chat-mode'),
  clearButton: $('#clear-button'),
  liveStatus: $('#live-status'),
  alert: $('#alert'),
  messages: $('#messages'),
  emptyState: $('#empty-state'),
  composer: $('#composer'),
  prompt: $('#prompt'),
  sendButton: $('#send-button'),
  stopButton: $('#stop-button'),
};

const state = {
  models: [],
  calibrated: null, // the latest calibration run of this browser that has a .spq model
  loading: false,
  generating: false,
  model: null, // { name, info, engine } once loaded
  history: [], // [{ role, content }] of the conversation so far
  requestId: 0,
  current: null, // { id, element, body, text, meta } of the reply being streamed
  loadStarted: 0,
  speedSamples: [], // [{ time, loaded }] of the last few seconds of the download
};

// A one-element Int32Array on a SharedArrayBuffer that the worker reads between tokens, so a
// Stop press reaches it even while it does not return to its event loop.
const stopFlag = typeof SharedArrayBuffer === 'function' && globalThis.crossOriginIsolated
  ? new Int32Array(new SharedArrayBuffer(4))
  : null;

const worker = new Worker(new URL('./chat-worker.js', import.meta.url), { type: 'module' });
worker.addEventListener('message', (event) => handleWorkerMessage(event.data));
worker.addEventListener('error', (event) => {
  showAlert('The model worker failed to start', event.message || 'Check the browser console for details.');
  setLoading(false);
  setGenerating(false);
});
worker.postMessage({ type: 'init', stopFlag });

// ---- alerts ----

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

function hideAlert() {
  elements.alert.hidden = true;
}

// ---- settings ----

function readSettings() {
  return {
    temperature: Number(elements.temperature.value),
    topP: Number(elements.topP.value),
    maxTokens: Math.max(1, Math.min(4096, Math.floor(Number(elements.maxTokens.value) || 256))),
    systemPrompt: elements.systemPrompt.value.trim(),
    engine: elements.engineSelect.value,
  };
}

function applySettings(settings) {
  if (Number.isFinite(settings.temperature)) elements.temperature.value = settings.temperature;
  if (Number.isFinite(settings.topP)) elements.topP.value = settings.topP;
  if (Number.isFinite(settings.maxTokens)) elements.maxTokens.value = settings.maxTokens;
  if (typeof settings.systemPrompt === 'string') elements.systemPrompt.value = settings.systemPrompt;
  if (['auto', 'relaxed', 'simd128'].includes(settings.engine)) elements.engineSelect.value = settings.engine;
  updateSettingOutputs();
}

function updateSettingOutputs() {
  elements.temperatureValue.textContent = Number(elements.temperature.value).toFixed(2);
  elements.topPValue.textContent = Number(elements.topP.value).toFixed(2);
}

for (const input of [elements.temperature, elements.topP, elements.maxTokens, elements.systemPrompt, elements.engineSelect]) {
  input.addEventListener('input', () => {
    updateSettingOutputs();
    saveSettings(SETTINGS_KEY, readSettings());
  });
}

// ---- model list and loading ----

async function fetchModels() {
  try {
    const response = await fetch('/api/models');
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    const { models } = await response.json();
    state.models = models;
  } catch (error) {
    state.models = [];
    showAlert('Cannot list the server\'s models', `${error.message}. You can still open a model file from your computer.`);
  }
  try {
    state.calibrated = await latestModelRun();
  } catch (error) {
    console.warn(`chat: reading the calibration runs from IndexedDB failed: ${error.message}`);
  }
  renderModelList();
}

function calibratedLabel(run) {
  return `${run.labels.model.replace(/^.*\//, '')} ${run.settings.preset}, learned here`;
}

function renderModelList() {
  const select = elements.modelSelect;
  select.replaceChildren();
  if (state.calibrated) {
    const group = document.createElement('optgroup');
    group.label = 'Calibrated in this browser';
    group.append(new Option(calibratedLabel(state.calibrated), 'calibrated'));
    select.append(group);
  }
  if (state.models.length === 0 && !state.calibrated) {
    const option = new Option('No models on the server', '');
    option.disabled = true;
    select.append(option);
    select.disabled = true;
    elements.loadButton.disabled = true;
    elements.modelHint.textContent = 'Run npm start to prepare the demo models, or open a file.';
    return;
  }
  const group = document.createElement('optgroup');
  group.label = 'On this server';
  for (const [index, model] of state.models.entries()) {
    group.append(new Option(model.name, String(index)));
  }
  select.append(group);
  const preferred = state.models.findIndex((model) => DEFAULT_MODEL_PATTERN.test(model.name));
  select.value = String(preferred >= 0 ? preferred : 0);
  select.disabled = false;
  elements.loadButton.disabled = state.loading;
  // calibrate.html links here with ?model=calibrated to load its result at once.
  if (state.calibrated && new URLSearchParams(location.search).get('model') === 'calibrated') {
    select.value = 'calibrated';
    updateModelHint();
    loadSelected();
    return;
  }
  updateModelHint();
}

function updateModelHint() {
  if (elements.modelSelect.value === 'calibrated') {
    const run = state.calibrated;
    elements.modelHint.textContent = `${formatBytes(run.spq.size)}, integer model (.spq) from the calibration page, ${new Date(run.started).toLocaleString()}`;
    return;
  }
  const model = state.models[Number(elements.modelSelect.value)];
  elements.modelHint.textContent = model ? `${formatBytes(model.bytes)}, ${model.description}` : '';
}

elements.modelSelect.addEventListener('change', updateModelHint);

function setLoading(loading) {
  state.loading = loading;
  const empty = state.models.length === 0 && !state.calibrated;
  elements.loadButton.disabled = loading || empty;
  elements.openFileButton.disabled = loading;
  elements.modelSelect.disabled = loading || empty;
  elements.progress.hidden = !loading;
  updateComposer();
}

function startLoad(source, label) {
  if (state.generating) stopGeneration();
  hideAlert();
  state.loadStarted = performance.now();
  state.speedSamples = [];
  elements.progressBar.removeAttribute('value');
  elements.progressBytes.textContent = 'Starting…';
  elements.progressSpeed.textContent = '';
  setLoading(true);
  elements.liveStatus.textContent = `Loading ${label}…`;
  worker.postMessage({ type: 'load', source, label, engine: readSettings().engine });
}

function loadSelected() {
  if (elements.modelSelect.value === 'calibrated' && state.calibrated) {
    const label = calibratedLabel(state.calibrated);
    startLoad({ file: state.calibrated.spq, name: label }, label);
    return;
  }
  const model = state.models[Number(elements.modelSelect.value)];
  if (!model) return;
  // The version query makes a changed file a new cache entry.
  const url = `${model.url}?v=${encodeURIComponent(model.version ?? '')}`;
  startLoad({ url, tokenizerUrl: model.tokenizerUrl, name: model.name }, model.name);
}

elements.loadButton.addEventListener('click', loadSelected);

elements.openFileButton.addEventListener('click', () => elements.fileInput.click());

elements.fileInput.addEventListener('change', () => {
  const files = [...elements.fileInput.files];
  elements.fileInput.value = '';
  if (files.length === 0) return;
  const isTokenizer = (file) => /^tok.*\.bin$|^tokenizer\.bin$/i.test(file.name);
  const modelFile = files.find((file) => !isTokenizer(file)) ?? files[0];
  const tokenizerFile = files.find((file) => file !== modelFile && isTokenizer(file));
  if (files.length > 2 || (files.length === 2 && !tokenizerFile)) {
    showAlert('Select one model file', 'Select a .spq or .gguf file, or a llama2.c .bin file together with its tokenizer file (tok512.bin, tokenizer.bin).');
    return;
  }
  startLoad({ file: modelFile, tokenizerFile, name: modelFile.name }, modelFile.name);
});

elements.cancelLoadButton.addEventListener('click', () => {
  worker.postMessage({ type: 'cancel-load' });
});

function renderProgress({ loaded, total, phase }) {
  const now = performance.now();
  state.speedSamples.push({ time: now, loaded });
  while (state.speedSamples.length > 2 && now - state.speedSamples[0].time > 2000) state.speedSamples.shift();
  const first = state.speedSamples[0];
  const seconds = (now - first.time) / 1000;
  const rate = seconds > 0.2 ? (loaded - first.loaded) / seconds : null;

  if (total) {
    elements.progressBar.value = Math.min(1, loaded / total);
    elements.progressBytes.textContent = `${formatBytes(loaded)} of ${formatBytes(total)}`;
  } else {
    elements.progressBar.removeAttribute('value');
    elements.progressBytes.textContent = formatBytes(loaded);
  }
  const source = { cache: 'from cache', read: 'from disk' }[phase] ?? '';
  elements.progressSpeed.textContent = [rate !== null ? formatRate(rate) : '', source].filter(Boolean).join(' · ');
}

// ---- engine panel ----

function renderEngine(engine, info, memoryBytes) {
  elements.statBuild.textContent = engine?.build ?? '–';
  elements.statThreads.textContent = engine?.threads ? String(engine.threads) : '–';
  const simdNames = { relaxed: 'relaxed SIMD', simd128: '128-bit SIMD' };
  elements.statSimd.textContent = simdNames[engine?.simd] ?? engine?.simd ?? '–';
  const isolated = globalThis.crossOriginIsolated === true;
  elements.statIsolated.innerHTML = '';
  const badge = document.createElement('span');
  badge.className = `badge ${isolated ? 'ok' : 'warn'}`;
  badge.textContent = isolated ? 'yes' : 'no (1 thread)';
  elements.statIsolated.append(badge);
  if (info) {
    const quantization = info.quantization;
    elements.statRuntime.textContent = info.runtime === 'integer'
      ? `integer, ${info.kernels ?? ''}`.replace(/, $/, '')
      : `${info.runtime ?? 'fp32'} (${info.format ?? '?'})`;
    elements.statWeights.textContent = quantization
      ? `W${quantization.w_bits}A${quantization.a_bits}KV${quantization.kv_bits}, ${formatBytes(info.weight_bytes)}`
      : info.weight_bytes ? formatBytes(info.weight_bytes) : '–';
  }
  if (memoryBytes) renderMemory(memoryBytes);
}

function renderMemory(bytes) {
  elements.statMemory.textContent = `${formatBytes(bytes)} (WebAssembly)`;
}

// ---- messages ----

function scrollIsAtBottom() {
  const list = elements.messages;
  return list.scrollHeight - list.scrollTop - list.clientHeight < 40;
}

function scrollToBottom() {
  elements.messages.scrollTop = elements.messages.scrollHeight;
}

function appendMessage(role, text) {
  elements.emptyState.hidden = true;
  const wrapper = document.createElement('div');
  wrapper.className = `message ${role}`;
  const label = document.createElement('span');
  label.className = 'role';
  label.textContent = role === 'user' ? 'You' : role === 'assistant' ? (state.model?.name ?? 'Model') : 'Error';
  const body = document.createElement('div');
  body.className = 'body';
  body.textContent = text;
  const meta = document.createElement('span');
  meta.className = 'meta';
  wrapper.append(label, body, meta);
  elements.messages.append(wrapper);
  scrollToBottom();
  return { element: wrapper, body, meta };
}

function clearConversation() {
  state.history = [];
  for (const child of [...elements.messages.children]) {
    if (child !== elements.emptyState) child.remove();
  }
  elements.emptyState.hidden = false;
  updateEmptyState();
}

function updateEmptyState() {
  const heading = elements.emptyState.querySelector('h2');
  const text = elements.emptyState.querySelector('p');
  if (!state.model) return;
  if (state.model.chat) {
    heading.textContent = 'Ask something';
    text.textContent = 'The reply streams in token by token. Press Stop or Escape to end it early.';
  } else {
    heading.textContent = 'Start a story';
    text.textContent = 'This model has no chat template, so it continues the text you type, such as "Once upon a time".';
  }
}

elements.clearButton.addEventListener('click', () => {
  if (state.generating) stopGeneration();
  clearConversation();
  elements.prompt.focus();
});

// ---- generation ----

function setGenerating(generating) {
  state.generating = generating;
  elements.sendButton.hidden = generating;
  elements.stopButton.hidden = !generating;
  updateComposer();
  if (generating) elements.stopButton.focus();
  else if (state.model) elements.prompt.focus();
}

function updateComposer() {
  const ready = state.model !== null && !state.loading;
  elements.prompt.disabled = !ready;
  elements.sendButton.disabled = !ready || state.generating;
  elements.clearButton.disabled = !ready;
  elements.prompt.placeholder = !ready
    ? 'Load a model first'
    : state.model.chat ? 'Message the model' : 'Once upon a time';
}

function send() {
  const text = elements.prompt.value;
  if (!state.model || state.generating || state.loading || text.trim() === '') return;
  hideAlert();
  const settings = readSettings();
  appendMessage('user', text);
  elements.prompt.value = '';
  autoSize();

  const id = ++state.requestId;
  let request;
  if (state.model.chat) {
    state.history.push({ role: 'user', content: text });
    const messages = settings.systemPrompt ? [{ role: 'system', content: settings.systemPrompt }, ...state.history] : [...state.history];
    request = { type: 'generate', id, mode: 'chat', messages, settings };
  } else {
    request = { type: 'generate', id, mode: 'text', prompt: text, settings };
  }
  const reply = appendMessage('assistant', '');
  reply.element.classList.add('streaming');
  if (!state.model.chat) {
    // A text completion shows the prompt in bold, followed by what the model wrote.
    const echo = document.createElement('span');
    echo.className = 'prompt-echo';
    echo.textContent = text;
    reply.body.append(echo);
  }
  const output = document.createTextNode('');
  reply.body.append(output);
  state.current = { id, ...reply, output, text: '', tokens: 0 };
  if (stopFlag) Atomics.store(stopFlag, 0, 0);
  setGenerating(true);
  elements.liveStatus.textContent = 'Reading the prompt…';
  worker.postMessage(request);
}

function stopGeneration() {
  if (!state.generating) return;
  if (stopFlag) Atomics.store(stopFlag, 0, 1);
  worker.postMessage({ type: 'stop' });
  elements.liveStatus.textContent = 'Stopping…';
}

elements.composer.addEventListener('submit', (event) => {
  event.preventDefault();
  send();
});

elements.stopButton.addEventListener('click', stopGeneration);

function autoSize() {
  const prompt = elements.prompt;
  prompt.style.height = 'auto';
  prompt.style.height = `${Math.min(prompt.scrollHeight + 2, 200)}px`;
}

elements.prompt.addEventListener('input', autoSize);

elements.prompt.addEventListener('keydown', (event) => {
  if (event.key === 'Enter' && !event.shiftKey && !event.isComposing) {
    event.preventDefault();
    send();
  }
});

document.addEventListener('keydown', (event) => {
  if (event.key === 'Escape' && state.generating) {
    event.preventDefault();
    stopGeneration();
  }
});

function renderToken(message) {
  const current = state.current;
  if (!current || current.id !== message.id) return;
  const follow = scrollIsAtBottom();
  current.text += message.text;
  current.tokens = message.tokens;
  current.output.appendData(message.text);
  if (follow) scrollToBottom();
  if (message.tokensPerSecond) {
    elements.liveStatus.textContent = `${message.tokens} tokens · ${message.tokensPerSecond.toFixed(1)} tokens/s`;
    elements.statSpeed.textContent = `${message.tokensPerSecond.toFixed(1)} tokens/s`;
  } else {
    elements.liveStatus.textContent = `${message.tokens} tokens`;
  }
}

function finishReply(message) {
  const current = state.current;
  if (!current || current.id !== message.id) return;
  current.element.classList.remove('streaming');
  const reasons = { stop: 'end of reply', length: 'max tokens reached', context: 'context full', aborted: 'stopped' };
  const parts = [`${message.tokens} tokens`];
  if (message.tokensPerSecond) parts.push(`${message.tokensPerSecond.toFixed(1)} tokens/s`);
  if (message.prefillSeconds !== undefined) parts.push(`prompt ${message.promptTokens} tokens in ${message.prefillSeconds.toFixed(2)} s`);
  parts.push(reasons[message.reason] ?? message.reason);
  current.meta.textContent = parts.join(' · ');
  if (state.model?.chat) {
    state.history.push({ role: 'assistant', content: current.text });
  }
  if (current.text === '' && state.model?.chat) current.output.data = '(no text)';
  state.current = null;
  elements.liveStatus.textContent = message.reason === 'aborted' ? 'Stopped' : 'Ready';
  if (message.tokensPerSecond) elements.statSpeed.textContent = `${message.tokensPerSecond.toFixed(1)} tokens/s`;
  if (message.memoryBytes) renderMemory(message.memoryBytes);
  setGenerating(false);
}

// ---- worker messages ----

function handleWorkerMessage(message) {
  switch (message.type) {
    case 'environment':
      renderEngine(message.engine, null, null);
      if (message.problem) showAlert(message.problem.title, message.problem.detail);
      break;
    case 'progress':
      renderProgress(message);
      break;
    case 'loaded': {
      setLoading(false);
      const chat = message.info?.has_chat_template === true;
      state.model = { name: message.label, info: message.info, engine: message.engine, chat };
      elements.chatModel.textContent = message.label;
      elements.chatMode.hidden = false;
      elements.chatMode.textContent = chat ? 'chat' : 'text completion';
      const seconds = (performance.now() - state.loadStarted) / 1000;
      elements.liveStatus.textContent = `Loaded in ${seconds.toFixed(1)} s`;
      renderEngine(message.engine, message.info, message.memoryBytes);
      elements.statSpeed.textContent = '–';
      clearConversation();
      updateComposer();
      elements.prompt.focus();
      break;
    }
    case 'token':
      renderToken(message);
      break;
    case 'done':
      finishReply(message);
      break;
    case 'memory':
      renderMemory(message.memoryBytes);
      break;
    case 'error': {
      const { title, detail } = describeError(message.error, message.operation);
      if (message.operation === 'load') {
        setLoading(false);
        elements.liveStatus.textContent = state.model ? 'Ready' : '';
        if (message.error.code === 'E_ABORTED') {
          elements.liveStatus.textContent = 'Loading cancelled';
          break;
        }
        if (message.unloaded) {
          state.model = null;
          elements.chatModel.textContent = 'No model loaded';
          elements.chatMode.hidden = true;
          updateComposer();
        }
      } else if (message.operation === 'generate') {
        if (state.current && state.current.id === message.id) {
          state.current.element.classList.remove('streaming');
          state.current.element.classList.add('error');
          state.current.meta.textContent = `${title}: ${detail}`;
          if (state.model?.chat) state.history.pop();
          state.current = null;
        }
        setGenerating(false);
        elements.liveStatus.textContent = '';
      }
      showAlert(title, detail);
      break;
    }
    default:
      console.warn(`chat: unknown message from the worker: ${message.type}`);
  }
}

// ---- start ----

applySettings(loadSettings(SETTINGS_KEY));
renderEngine(null, null, null);
fetchModels();
