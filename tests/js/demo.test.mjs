// Drives the browser demo (web/) in headless Chromium (Debian's /usr/bin/chromium through
// playwright-core, which never downloads a browser) against web/server.mjs on 127.0.0.1:
//   - chat with stories260K: streamed text, Stop, cross-origin isolation, the threaded build;
//   - chat with SmolLM2-135M-Instruct: a question and its answer;
//   - calibration of stories260K: the loss curve, the perplexity table, the download, and the
//     downloaded model loaded on the chat page.
// Every test fails on a console error and on any request to a host other than 127.0.0.1.
// Screenshots at 1280x800 and 390x844 go to tests/artifacts/ (ignored by git). With
// SQ_UPDATE_DOCS_SCREENSHOT=1 the SmolLM2 test also rewrites docs/demo-chat.png. The .spq demo
// models come from `tools/start.sh --no-serve --skip-setup`, which is cached. SQ_DIST_DIR serves
// another folder of Emscripten builds.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';
import { startServer } from '../../web/server.mjs';
import { repositoryRoot } from './helpers.mjs';

const CHROMIUM_PATH = process.env.SQ_CHROMIUM ?? '/usr/bin/chromium';
const CHROMIUM_ARGS = [
  '--no-sandbox', // CI runs as root, where Chromium's sandbox refuses to start
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];
const ARTIFACTS = path.join(repositoryRoot, 'tests/artifacts');
const DESKTOP = { width: 1280, height: 800 };
const PHONE = { width: 390, height: 844 };

let server;
let context;
let profile;
let downloads;

before(async () => {
  // Prepares models/stories260K-w4a8kv8.spq and models/smollm2-w4a8kv8.spq (skipped when fresh).
  const prepared = spawnSync('bash', [path.join(repositoryRoot, 'tools/start.sh'), '--no-serve', '--skip-setup'], {
    cwd: repositoryRoot,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
    timeout: 600_000,
  });
  assert.equal(prepared.status, 0, `tools/start.sh --no-serve failed:\n${prepared.stdout}\n${prepared.stderr}`);
  mkdirSync(ARTIFACTS, { recursive: true });
  server = await startServer({ port: 0, distDir: process.env.SQ_DIST_DIR || undefined });
  profile = mkdtempSync(path.join(os.tmpdir(), 'spinquant-demo-profile-'));
  downloads = mkdtempSync(path.join(os.tmpdir(), 'spinquant-demo-downloads-'));
  context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM_PATH,
    headless: true,
    args: CHROMIUM_ARGS,
    viewport: DESKTOP,
    acceptDownloads: true,
  });
});

after(async () => {
  await context?.close();
  await server?.close();
  for (const folder of [profile, downloads]) {
    if (folder) rmSync(folder, { recursive: true, force: true });
  }
});

// Opens a page that records console errors, uncaught exceptions and requests to other hosts.
async function openPage(pathname) {
  const page = await context.newPage();
  const problems = { consoleErrors: [], foreignRequests: [] };
  page.on('console', (message) => {
    if (message.type() === 'error') problems.consoleErrors.push(message.text());
  });
  page.on('pageerror', (error) => problems.consoleErrors.push(`uncaught: ${error.message}`));
  page.on('request', (request) => {
    const url = new URL(request.url());
    if ((url.protocol === 'http:' || url.protocol === 'https:' || url.protocol === 'ws:' || url.protocol === 'wss:') && url.hostname !== '127.0.0.1') {
      problems.foreignRequests.push(request.url());
    }
  });
  page.setDefaultTimeout(120_000);
  await page.goto(new URL(pathname, server.url).href);
  return { page, problems };
}

function assertClean(problems) {
  assert.deepEqual(problems.foreignRequests, [], 'the page requested a host other than 127.0.0.1');
  assert.deepEqual(problems.consoleErrors, [], 'the page logged errors');
}

async function listedModels() {
  const response = await fetch(new URL('/api/models', server.url));
  return (await response.json()).models;
}

// Selects the server model whose name matches pattern, loads it and waits until it is ready.
async function loadServerModel(page, pattern) {
  await page.waitForSelector('#model-select:not([disabled])');
  const value = await page.$eval('#model-select', (select, source) => {
    const option = [...select.options].find((candidate) => new RegExp(source).test(candidate.textContent));
    return option?.value ?? null;
  }, pattern.source);
  assert.ok(value !== null, `no model matching ${pattern} in the model list`);
  await page.selectOption('#model-select', value);
  await page.click('#load-button');
  await waitForLoaded(page);
}

async function waitForLoaded(page) {
  await page.waitForFunction(() => !document.querySelector('#prompt').disabled || !document.querySelector('#alert').hidden);
  const alert = await page.$eval('#alert', (element) => (element.hidden ? '' : element.textContent));
  assert.equal(alert, '', `loading failed: ${alert}`);
}

// Sets a range or number input as a user would, firing its input event.
async function setInput(page, selector, value) {
  await page.$eval(selector, (input, text) => {
    input.value = text;
    input.dispatchEvent(new Event('input', { bubbles: true }));
  }, String(value));
}

async function screenshots(page, name) {
  for (const [label, size] of [['desktop', DESKTOP], ['phone', PHONE]]) {
    await page.setViewportSize(size);
    await page.evaluate(() => window.scrollTo(0, 0));
    await page.waitForTimeout(100);
    await page.screenshot({ path: path.join(ARTIFACTS, `${name}-${label}.png`), fullPage: label === 'phone' });
  }
  await page.setViewportSize(DESKTOP);
}

// Returns the pattern of the quick model: the .spq file when start.sh made one, else the GGUF.
async function storiesPattern() {
  const models = await listedModels();
  return models.some((model) => model.name === 'stories260K-w4a8kv8.spq') ? /^stories260K-w4a8kv8\.spq$/ : /stories260K\.gguf$/;
}

test('demo chat streams stories260K and stops', { timeout: 180_000 }, async () => {
  const { page, problems } = await openPage('/');
  try {
    assert.equal(await page.evaluate(() => self.crossOriginIsolated), true, 'the page is not cross-origin isolated');
    await loadServerModel(page, await storiesPattern());

    const build = await page.textContent('#stat-build');
    const threads = Number(await page.textContent('#stat-threads'));
    const cpus = await page.evaluate(() => navigator.hardwareConcurrency);
    if (cpus >= 2) {
      assert.equal(build, 'pthread', 'the automatic engine did not choose the threaded build');
      assert.ok(threads >= 2, `the threaded build runs ${threads} threads`);
    }
    assert.match(await page.textContent('#stat-memory'), /MB|GB|KB/);

    await setInput(page, '#max-tokens', 4096);
    await page.fill('#prompt', 'Once upon a time');
    await page.keyboard.press('Enter');

    // Samples the reply's length once per animation frame. Once it has grown in three separate
    // frames, the page itself presses Stop, so the model is still generating when it does.
    const observation = await page.evaluate(() => new Promise((resolve, reject) => {
      const lengths = [];
      const started = performance.now();
      const onFrame = () => {
        const reply = [...document.querySelectorAll('.message.assistant .body')].at(-1);
        const length = reply ? reply.textContent.length : 0;
        if (lengths.length === 0 || lengths.at(-1) !== length) lengths.push(length);
        const stop = document.querySelector('#stop-button');
        // lengths has one entry for the first frame and one for each later frame that changed the text.
        if (lengths.length >= 4 && !stop.hidden) {
          stop.click();
          resolve({ lengths, stoppedWhileRunning: true });
          return;
        }
        if (stop.hidden && lengths.length > 1) {
          resolve({ lengths, stoppedWhileRunning: false });
          return;
        }
        if (performance.now() - started > 60_000) {
          reject(new Error(`no streamed text within 60 s; lengths ${lengths}`));
          return;
        }
        requestAnimationFrame(onFrame);
      };
      requestAnimationFrame(onFrame);
    }));
    assert.ok(observation.stoppedWhileRunning, `generation ended before Stop could be pressed; lengths per frame: ${observation.lengths}`);
    const growths = observation.lengths.filter((length, index) => index > 0 && length > observation.lengths[index - 1]).length;
    assert.ok(growths >= 3, `the text grew in only ${growths} frames; lengths per frame: ${observation.lengths}`);

    await page.waitForSelector('#stop-button', { state: 'hidden' });
    const meta = await page.textContent('.message.assistant:last-child .meta');
    assert.match(meta, /stopped/, `the reply's status line does not say it was stopped: ${meta}`);
    const generated = Number(/^(\d+) tokens/.exec(meta)?.[1]);
    assert.ok(generated > 0, `the stopped reply has ${generated} tokens`);
    assert.ok(generated < 400, `the stopped reply has ${generated} tokens, so Stop did not end it early`);
    assert.equal(await page.evaluate(() => document.activeElement?.id), 'prompt', 'focus did not return to the prompt');

    await screenshots(page, 'chat-stories260K');
    assertClean(problems);
  } finally {
    await page.close();
  }
});

test('demo chat answers with SmolLM2', { timeout: 300_000 }, async (t) => {
  const models = await listedModels();
  const spq = models.find((model) => model.name === 'smollm2-w4a8kv8.spq');
  const pattern = spq ? /^smollm2-w4a8kv8\.spq$/ : /SmolLM2-135M-Instruct\.Q4_1\.gguf$/;
  if (!spq) t.diagnostic('models/smollm2-w4a8kv8.spq is missing; testing the GGUF model in fp32');
  const { page, problems } = await openPage('/');
  try {
    await loadServerModel(page, pattern);
    assert.equal(await page.textContent('#chat-mode'), 'chat');
    await setInput(page, '#temperature', 0);
    await setInput(page, '#max-tokens', 48);
    await page.fill('#prompt', 'What is the capital of France?');
    await page.click('#send-button');
    await page.waitForSelector('.message.assistant .body');
    await page.waitForSelector('#stop-button', { state: 'hidden', timeout: 240_000 });
    const reply = await page.textContent('.message.assistant:last-child .body');
    assert.match(reply, /Paris/, `the reply does not name Paris: ${reply}`);
    const meta = await page.textContent('.message.assistant:last-child .meta');
    assert.match(meta, /tokens\/s/);
    t.diagnostic(`SmolLM2 reply: ${reply.trim()} (${meta})`);
    t.diagnostic(`engine: ${await page.$eval('.stats', (element) => element.innerText.replace(/\n/g, ' '))}`);

    // docs/demo-chat.png is committed, so it changes only on request.
    const docsScreenshot = process.env.SQ_UPDATE_DOCS_SCREENSHOT === '1' ? 'docs/demo-chat.png' : 'tests/artifacts/demo-chat.png';
    await page.screenshot({ path: path.join(repositoryRoot, docsScreenshot) });
    await screenshots(page, 'chat-smollm2');
    assertClean(problems);
  } finally {
    await page.close();
  }
});

test('demo calibration learns, downloads and chats', { timeout: 300_000 }, async () => {
  const iterations = 5;
  const { page, problems } = await openPage('/calibrate.html');
  let downloaded;
  try {
    await page.waitForSelector('#run-button:not([disabled])');
    const modelName = await page.$eval('#model-select', (select) => select.selectedOptions[0]?.textContent);
    assert.match(modelName, /stories260K/);
    await page.fill('#iterations', String(iterations));
    await page.click('#run-button');
    await page.waitForFunction(() => /^(Done|Failed|Cancelled)/.test(document.querySelector('#status-text').textContent), null, { timeout: 240_000 });
    const alert = await page.$eval('#alert', (element) => (element.hidden ? '' : element.textContent));
    assert.equal(alert, '', `calibration failed: ${alert}`);

    assert.equal(await page.$eval('#loss-plot', (plot) => plot.dataset.points), String(iterations));
    assert.equal(await page.$$eval('#loss-plot circle.point', (points) => points.length), iterations);

    const table = await page.$$eval('#ppl-table tbody tr', (rows) => Object.fromEntries(rows.map((row) => [row.dataset.row, row.cells[2].textContent])));
    for (const row of ['fp32', 'hadamard', 'learned']) {
      const value = Number(table[row]);
      assert.ok(Number.isFinite(value), `perplexity of ${row}: ${table[row]}`);
      assert.ok(value > 1, `perplexity of ${row}: ${table[row]}`);
      assert.ok(value < 100, `perplexity of ${row}: ${table[row]}`);
    }
    // A learned rotation far worse than the Hadamard start would mean a broken export.
    assert.ok(Number(table.learned) < Number(table.hadamard) * 1.5, `learned ${table.learned}, Hadamard ${table.hadamard}`);

    const [download] = await Promise.all([page.waitForEvent('download'), page.click('#download-spq')]);
    assert.match(download.suggestedFilename(), /^stories260K-w4a8kv8-learned\.spq$/);
    downloaded = path.join(downloads, download.suggestedFilename());
    await download.saveAs(downloaded);
    const bytes = readFileSync(downloaded);
    assert.ok(bytes.length > 1000, `the download has ${bytes.length} bytes`);

    await screenshots(page, 'calibrate');

    // A reloaded tab shows the finished run again from IndexedDB.
    await page.reload();
    await page.waitForFunction(() => /^Last run/.test(document.querySelector('#status-text').textContent));
    assert.match(await page.textContent('#status-text'), /finished/);
    assert.equal(await page.$eval('#loss-plot', (plot) => plot.dataset.points), String(iterations));
    assert.equal(await page.$eval('#download-spq', (link) => link.getAttribute('aria-disabled')), 'false');
    assertClean(problems);
  } finally {
    await page.close();
  }

  // The downloaded file, opened on the chat page as a user would.
  const chat = await openPage('/');
  try {
    await chat.page.waitForSelector('#model-select:not([disabled])');
    const calibratedListed = await chat.page.$eval('#model-select', (select) => [...select.options].some((option) => option.value === 'calibrated'));
    assert.ok(calibratedListed, 'the chat page does not list the model learned in this browser');
    await chat.page.setInputFiles('#file-input', downloaded);
    await waitForLoaded(chat.page);
    assert.equal(await chat.page.textContent('#chat-model'), path.basename(downloaded));
    assert.match(await chat.page.textContent('#stat-weights'), /^W4A8KV8/);
    await setInput(chat.page, '#max-tokens', 32);
    await chat.page.fill('#prompt', 'Once upon a time');
    await chat.page.keyboard.press('Enter');
    await chat.page.waitForSelector('#stop-button', { state: 'hidden' });
    await chat.page.waitForFunction(() => document.querySelector('.message.assistant:last-child .meta')?.textContent.length > 0);
    const reply = await chat.page.textContent('.message.assistant:last-child .body');
    assert.ok(reply.length > 'Once upon a time'.length + 10, `the learned model wrote only: ${reply}`);
    assertClean(chat.problems);
  } finally {
    await chat.page.close();
  }
});

test('demo chat reports an invalid model file', { timeout: 60_000 }, async () => {
  const { page, problems } = await openPage('/');
  try {
    await page.waitForSelector('#model-select:not([disabled])');
    const bogus = path.join(downloads, 'not-a-model.gguf');
    writeFileSync(bogus, 'this is not a model file, just text');
    await page.setInputFiles('#file-input', bogus);
    await page.waitForSelector('#alert:not([hidden])');
    const alert = await page.textContent('#alert');
    assert.match(alert, /could not be loaded|not a valid model/i);
    assert.equal(await page.$eval('#prompt', (prompt) => prompt.disabled), true);
    assertClean(problems);
  } finally {
    await page.close();
  }
});
