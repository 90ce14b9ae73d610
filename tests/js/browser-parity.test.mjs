// Parity of each Emscripten variant with the native CLI in headless Chromium. For each variant, a
// page on 127.0.0.1 starts a Web Worker (tests/js/fixtures/browser-worker.js) that loads
// dist/spinquant-VARIANT.mjs, writes the model files into MEMFS and computes a perplexity
// through the C API, which must equal the native one to 1e-5 relative:
//   - stories260K (fp32 runtime) on the whole TinyStories reference text;
//   - a W4A8KV8 .spq file of stories260K made by the native quantize command (integer runtime)
//     over 8 windows.
// The pthread variant runs with two threads and must see a cross-origin isolated context with
// SharedArrayBuffer. The simd variant must exist; pthread and relaxed are checked when built.
// Server and browser set-up: tests/js/fixtures/browser-harness.mjs.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { run } from './helpers.mjs';
import { launchChromium, startServer } from './fixtures/browser-harness.mjs';
import { makeStoriesSpq, SPQ_FILE_NAME, SPQ_MAX_WINDOWS, SPQ_WINDOW } from './fixtures/spq-reference.mjs';
import {
  describeAgreement, distDir, emscriptenVariants, nativeCli, relativeDifference, stories,
} from './fixtures/targets.mjs';

const PPL_TOLERANCE = 1e-5;
const textUrl = `/shared/reference/${path.basename(stories.text)}`;

let spqDir;
let spq;
let server;
let browser;
let nativeEval;

before(async () => {
  spqDir = mkdtempSync(path.join(os.tmpdir(), 'spinquant-browser-parity-'));
  server = await startServer({ extraRoutes: [{ prefix: '/spq/', root: spqDir }] });
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  await server?.close();
  if (spqDir) rmSync(spqDir, { recursive: true, force: true });
});

function native() {
  if (!nativeEval) {
    const result = run(nativeCli, ['eval', stories.model, '--tokenizer', stories.tokenizer, '--text', stories.text,
      '--window', '512', '--json']);
    assert.equal(result.status, 0, `native eval failed:\n${result.stderr}`);
    nativeEval = JSON.parse(result.stdout);
  }
  return nativeEval;
}

// Runs one job in a new page's worker and checks the isolation the variant needs; returns the
// worker's reply.
async function runInWorker(variant, job) {
  const page = await browser.context.newPage();
  const consoleErrors = [];
  page.on('console', (message) => {
    if (message.type() === 'error') consoleErrors.push(message.text());
  });
  page.on('pageerror', (error) => consoleErrors.push(String(error)));
  try {
    await page.goto(`${server.origin}/`);
    const reply = await page.evaluate((message) => new Promise((resolve) => {
      const worker = new Worker('/fixtures/browser-worker.js');
      worker.onmessage = (event) => {
        worker.terminate();
        resolve({ ...event.data, pageIsolated: self.crossOriginIsolated });
      };
      worker.onerror = (event) => {
        worker.terminate();
        resolve({ ok: false, error: `worker error: ${event.message}` });
      };
      worker.postMessage(message);
    }), { variant: variant.name, threads: variant.threads, textUrl, ...job });
    assert.ok(reply.ok, reply.error);
    assert.equal(reply.pageIsolated, true, 'the page is not cross-origin isolated');
    if (variant.name === 'pthread') {
      assert.equal(reply.crossOriginIsolated, true, 'the worker is not cross-origin isolated');
      assert.equal(reply.sharedArrayBuffer, true, 'the worker has no SharedArrayBuffer');
    }
    assert.deepEqual(consoleErrors, []);
    return reply;
  } finally {
    await page.close();
  }
}

function assertSamePerplexity(t, label, actual, expected) {
  for (const field of ['ppl', 'mean_nll']) {
    const difference = relativeDifference(actual[field], expected[field]);
    assert.ok(difference <= PPL_TOLERANCE,
      `${field}: ${label} ${actual[field]}, native ${expected[field]}, relative difference ${difference}`);
  }
  for (const field of ['n_windows', 'n_predicted', 'window']) {
    assert.equal(actual[field], expected[field], field);
  }
  t.diagnostic(`ppl native ${expected.ppl}, ${label} ${actual.ppl}: ${describeAgreement(actual, expected)}; ` +
    `${actual.seconds.toFixed(2)} s`);
}

for (const variant of emscriptenVariants) {
  const modulePath = path.join(distDir, `spinquant-${variant.name}.mjs`);
  const built = existsSync(modulePath);
  const skip = !built && variant.name !== 'simd' ? `${modulePath} was not built` : false;

  test(`emscripten ${variant.name} in a Chromium worker matches native on stories260K`,
    { skip, timeout: 300_000 }, async (t) => {
      assert.ok(built, `${modulePath} not found; run npm run build`);
      const expected = native();
      const reply = await runInWorker(variant, {
        files: { 'stories260K.bin': `/${stories.model}`, 'tok512.bin': `/${stories.tokenizer}` },
        model: 'stories260K.bin',
        tokenizer: 'tok512.bin',
        window: 512,
      });
      assertSamePerplexity(t, `${variant.name} in Chromium`, reply.result, expected);
    });

  test(`emscripten ${variant.name} in a Chromium worker matches native on a .spq model`,
    { skip, timeout: 300_000 }, async (t) => {
      assert.ok(built, `${modulePath} not found; run npm run build`);
      spq ??= makeStoriesSpq(spqDir);
      const reply = await runInWorker(variant, {
        files: { [SPQ_FILE_NAME]: `/spq/${SPQ_FILE_NAME}` },
        model: SPQ_FILE_NAME,
        window: SPQ_WINDOW,
        maxWindows: SPQ_MAX_WINDOWS,
      });
      assertSamePerplexity(t, `${variant.name} in Chromium`, reply.result, spq.nativeEval);
    });
}
