// Runs the browser entry of the package (js/index.js) in headless Chromium (Debian's
// /usr/bin/chromium through playwright-core), served from 127.0.0.1 by this file. Cases: loading
// by URL, the Cache API and OPFS caches, the three builds, threads on a cross-origin isolated
// page and their rejection on a page that is not, a module Web Worker, and calibrate() in its
// Web Worker. Results are compared with the Node.js entry, which the other tests compare with
// the native CLI.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';
import { buildDir, repositoryRoot, run } from './helpers.mjs';
import { calibrate, loadModel } from '../../js/node.js';

const CHROMIUM_PATH = process.env.SQ_CHROMIUM ?? '/usr/bin/chromium';
const cli = process.env.SQ_CLI ?? path.join(buildDir('native'), 'spinquant');
const CONTENT_TYPES = { '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8', '.mjs': 'text/javascript; charset=utf-8', '.wasm': 'application/wasm' };
const JINJA_URL = '/node_modules/@huggingface/jinja/dist/index.js';

const temporary = mkdtempSync(path.join(os.tmpdir(), 'spinquant-browser-'));
const storiesBin = path.join(repositoryRoot, 'models/stories260K/stories260K.bin');
const storiesGguf = path.join(repositoryRoot, 'models/stories260K/stories260K.gguf');
const storiesTokenizer = path.join(repositoryRoot, 'models/stories260K/tok512.bin');
const spqPath = path.join(temporary, 'stories260K.spq');
const calibrationPath = path.join(repositoryRoot, 'models/data/tinystories-calib.txt');

// URL prefix → folder. /scratch/ serves files this test writes.
const folders = {
  '/js/': path.join(repositoryRoot, 'js'),
  '/dist/': path.join(repositoryRoot, 'dist'),
  '/models/': path.join(repositoryRoot, 'models/stories260K'),
  '/data/': path.join(repositoryRoot, 'models/data'),
  '/scratch/': temporary,
  '/node_modules/': path.join(repositoryRoot, 'node_modules'),
};

const WORKER_SCRIPT = `
import { loadModel } from '/js/index.js';
self.onmessage = async (event) => {
  try {
    const model = await loadModel(event.data);
    const result = await model.generate('Once upon a time', { temperature: 0, maxTokens: 20 }).result;
    self.postMessage({ ids: result.tokenIds, build: model.info.runtime.build });
    await model.dispose();
  } catch (error) {
    self.postMessage({ error: error.code + ' ' + error.message });
  }
};`;

let server;
let origin;
let browser;
const requests = [];
// URLs whose first request got a stalled response (see the stall query parameter).
const stalledUrls = new Set();

// Bare module specifiers work in pages through import maps but not in Web Workers, so the
// server resolves the package's one bare import the way a bundler would.
function rewriteImports(text) {
  return text.replaceAll("from '@huggingface/jinja'", `from '${JINJA_URL}'`);
}

function handle(request, response) {
  const url = new URL(request.url, origin);
  requests.push(url.pathname);
  const isolated = url.searchParams.get('isolated') !== '0';
  const headers = { 'Cache-Control': 'no-store' };
  if (isolated) Object.assign(headers, { 'Cross-Origin-Opener-Policy': 'same-origin', 'Cross-Origin-Embedder-Policy': 'require-corp' });
  if (url.pathname === '/') {
    response.writeHead(200, { ...headers, 'Content-Type': CONTENT_TYPES['.html'] });
    response.end('<!doctype html><title>spinquant js test</title><link rel="icon" href="data:,">');
    return;
  }
  if (url.pathname === '/worker-test.js') {
    response.writeHead(200, { ...headers, 'Content-Type': CONTENT_TYPES['.js'] });
    response.end(WORKER_SCRIPT);
    return;
  }
  const prefix = Object.keys(folders).find((candidate) => url.pathname.startsWith(candidate));
  const relative = prefix ? decodeURIComponent(url.pathname.slice(prefix.length)) : '';
  const file = prefix ? path.join(folders[prefix], relative) : '';
  if (!prefix || relative.includes('..') || !existsSync(file)) {
    response.writeHead(404, headers);
    response.end('not found');
    return;
  }
  const extension = path.extname(file);
  let body = readFileSync(file);
  if (prefix === '/js/' && extension === '.js') body = Buffer.from(rewriteImports(body.toString('utf8')));
  response.writeHead(200, { ...headers, 'Content-Type': CONTENT_TYPES[extension] ?? 'application/octet-stream', 'Content-Length': String(body.length) });
  // stall=N: the first request of this URL gets N bytes, then the response stays open with no
  // more data, so a client can abort in the middle of the download. Later requests get the file.
  const stall = Number(url.searchParams.get('stall') ?? 0);
  if (stall > 0 && !stalledUrls.has(request.url)) {
    stalledUrls.add(request.url);
    response.write(body.subarray(0, stall));
    return;
  }
  response.end(body);
}

before(async () => {
  const quantize = run(cli, ['quantize', storiesBin, '--tokenizer', storiesTokenizer, '--out', spqPath, '--rotation', 'hadamard']);
  assert.equal(quantize.status, 0, quantize.stderr);
  server = http.createServer(handle);
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  origin = `http://127.0.0.1:${server.address().port}`;
  // --no-sandbox: CI runs as root, where Chromium's sandbox refuses to start.
  browser = await chromium.launch({ executablePath: CHROMIUM_PATH, args: ['--no-sandbox'] });
});

after(async () => {
  await browser?.close();
  server?.closeAllConnections();
  await new Promise((resolve) => (server ? server.close(resolve) : resolve()));
  rmSync(temporary, { recursive: true, force: true });
});

async function openPage(isolated = true) {
  const context = await browser.newContext();
  const page = await context.newPage();
  const errors = [];
  page.on('pageerror', (error) => errors.push(error.message));
  await page.goto(`${origin}/?isolated=${isolated ? 1 : 0}`);
  return { page, context, errors };
}

async function nodeGreedy(source, options = {}) {
  const model = await loadModel(source, options);
  try {
    return (await model.generate('Once upon a time', { temperature: 0, maxTokens: 20 }).result).tokenIds;
  } finally {
    await model.dispose();
  }
}

test('the browser entry loads a model by URL and generates like Node.js', async () => {
  const expected = await nodeGreedy(path.join(repositoryRoot, 'models/stories260K/stories260K.gguf'));
  const { page, context, errors } = await openPage();
  try {
    const out = await page.evaluate(async () => {
      const { loadModel } = await import('/js/index.js');
      const phases = new Set();
      const model = await loadModel('/models/stories260K.bin', { tokenizer: '/models/tok512.bin', onProgress: ({ phase }) => phases.add(phase) });
      const llama2c = (await model.generate('Once upon a time', { temperature: 0, maxTokens: 20 }).result).tokenIds;
      await model.dispose();
      const gguf = await loadModel(new URL('/models/stories260K.gguf', location.href));
      const run = gguf.generate('Once upon a time', { temperature: 0, maxTokens: 20 });
      let text = '';
      for await (const piece of run) text += piece;
      const result = await run.result;
      const info = gguf.info;
      await gguf.dispose();
      return { llama2c, ids: result.tokenIds, text, resultText: result.text, phases: [...phases], runtime: info.runtime };
    });
    assert.deepEqual(out.ids, expected);
    assert.equal(out.text, out.resultText);
    assert.deepEqual(out.phases, ['download', 'prepare', 'ready']);
    assert.equal(out.runtime.build, 'relaxed', `Chromium validates relaxed SIMD, so 'auto' picks it: ${out.runtime.reason}`);
    assert.deepEqual(errors, []);
  } finally {
    await context.close();
  }
});

for (const cache of ['cache-api', 'opfs']) {
  test(`the ${cache} cache serves the second load without a request`, async () => {
    const { page, context } = await openPage();
    try {
      const url = `/models/stories260K.gguf?cache-test=${cache}`;
      const load = () => page.evaluate(async ({ url, cache }) => {
        const { loadModel } = await import('/js/index.js');
        const phases = new Set();
        const model = await loadModel(url, { cache, onProgress: ({ phase }) => phases.add(phase) });
        const ids = (await model.generate('Once upon a time', { temperature: 0, maxTokens: 10 }).result).tokenIds;
        await model.dispose();
        return { phases: [...phases], ids };
      }, { url, cache });
      const count = () => requests.filter((item) => item === '/models/stories260K.gguf').length;
      const before = count();
      const first = await load();
      assert.ok(first.phases.includes('download'));
      assert.equal(count(), before + 1);
      const second = await load();
      assert.ok(second.phases.includes('cache'), `phases of the second load: ${second.phases}`);
      assert.ok(!second.phases.includes('download'));
      assert.equal(count(), before + 1, 'the second load contacted the server');
      assert.deepEqual(second.ids, first.ids);
      await page.evaluate(async () => (await import('/js/index.js')).clearCache());
      await load();
      assert.equal(count(), before + 2, 'clearCache() left the entry');
    } finally {
      await context.close();
    }
  });
}

// Lists the entries of the package's browser cache as [{ key, bytes }]. For 'cache-api' these are
// the responses in its Cache API cache, keyed by URL. For 'opfs' these are the files in its
// folder of the origin private file system, keyed by file name.
function listCacheEntries(page, cache) {
  return page.evaluate(async (cache) => {
    const entries = [];
    if (cache === 'cache-api') {
      if (!(await caches.has('spinquant-models'))) return entries;
      const store = await caches.open('spinquant-models');
      for (const request of await store.keys()) {
        const response = await store.match(request);
        entries.push({ key: request.url, bytes: (await response.arrayBuffer()).byteLength });
      }
      return entries;
    }
    const root = await navigator.storage.getDirectory();
    let folder;
    try {
      folder = await root.getDirectoryHandle('spinquant-models');
    } catch {
      return entries;
    }
    for await (const [name, handle] of folder.entries()) {
      entries.push({ key: name, bytes: handle.kind === 'file' ? (await handle.getFile()).size : null });
    }
    return entries;
  }, cache);
}

for (const cache of ['cache-api', 'opfs']) {
  test(`an aborted download leaves no ${cache} entry`, { timeout: 120_000 }, async () => {
    const size = statSync(storiesGguf).size;
    const stall = 400_000;
    const abortAt = 200_000;
    const url = `/models/stories260K.gguf?abort-test=${cache}&stall=${stall}`;
    const { page, context } = await openPage();
    try {
      const aborted = await page.evaluate(async ({ url, cache, abortAt }) => {
        const { loadModel } = await import('/js/index.js');
        const controller = new AbortController();
        let loadedBytes = 0;
        try {
          await loadModel(url, {
            cache,
            signal: controller.signal,
            onProgress: (event) => {
              loadedBytes = event.loadedBytes;
              if (event.loadedBytes >= abortAt) controller.abort();
            },
          });
          return { code: 'loaded', loadedBytes };
        } catch (error) {
          return { code: error.code, loadedBytes };
        }
      }, { url, cache, abortAt });
      assert.equal(aborted.code, 'E_ABORTED');
      assert.ok(aborted.loadedBytes >= abortAt, `aborted after ${aborted.loadedBytes} bytes, before the abort point`);
      assert.ok(aborted.loadedBytes <= stall, `aborted after ${aborted.loadedBytes} bytes, more than the server sent`);
      assert.deepEqual(await listCacheEntries(page, cache), [], 'the aborted download left a cache entry');

      // A complete load of the same URL downloads again and stores the whole file.
      const loaded = await page.evaluate(async ({ url, cache }) => {
        const { loadModel } = await import('/js/index.js');
        const phases = new Set();
        const model = await loadModel(url, { cache, onProgress: ({ phase }) => phases.add(phase) });
        await model.dispose();
        return [...phases];
      }, { url, cache });
      assert.ok(loaded.includes('download'), `phases of the complete load: ${loaded}`);
      assert.ok(!loaded.includes('cache'), `phases of the complete load: ${loaded}`);
      const entries = await listCacheEntries(page, cache);
      assert.equal(entries.length, 1, `entries after the complete load: ${JSON.stringify(entries)}`);
      assert.equal(entries[0].bytes, size);
      if (cache === 'cache-api') assert.equal(entries[0].key, `${origin}${url}`);
    } finally {
      await context.close();
    }
  });
}

test('threads need cross-origin isolation; the pthread and relaxed builds match simd', async () => {
  const isolated = await openPage(true);
  const plain = await openPage(false);
  try {
    const script = async () => {
      const { loadModel } = await import('/js/index.js');
      const text = await (await fetch('/data/tinystories-calib.txt')).text();
      const out = {};
      for (const [name, options] of [['simd', { simd: 'simd128' }], ['relaxed', { simd: 'relaxed' }], ['pthread', { threads: 2 }]]) {
        try {
          const model = await loadModel('/scratch/stories260K.spq', options);
          const { perplexity } = await model.perplexity(text.slice(0, 20000), { window: 256, maxWindows: 2 });
          out[name] = { perplexity, build: model.info.runtime.build, kernels: model.info.runtime.kernels };
          await model.dispose();
        } catch (error) {
          out[name] = { error: error.code };
        }
      }
      return { out, isolated: crossOriginIsolated };
    };
    const withThreads = await isolated.page.evaluate(script);
    assert.equal(withThreads.isolated, true);
    assert.equal(withThreads.out.pthread.build, 'pthread');
    assert.equal(withThreads.out.relaxed.kernels, 'wasm-relaxed-simd');
    assert.equal(withThreads.out.simd.kernels, 'wasm-simd128');
    assert.equal(withThreads.out.relaxed.perplexity, withThreads.out.simd.perplexity);
    assert.equal(withThreads.out.pthread.perplexity, withThreads.out.simd.perplexity);

    const withoutThreads = await plain.page.evaluate(script);
    assert.equal(withoutThreads.isolated, false);
    assert.equal(withoutThreads.out.pthread.error, 'E_UNSUPPORTED');
    assert.equal(withoutThreads.out.simd.perplexity, withThreads.out.simd.perplexity);
  } finally {
    await isolated.context.close();
    await plain.context.close();
  }
});

// Runs WORKER_SCRIPT in a module Web Worker on the model at url; returns the greedy token ids.
async function workerGreedy(url) {
  const { page, context } = await openPage();
  try {
    const out = await page.evaluate((modelUrl) => new Promise((resolve) => {
      const worker = new Worker('/worker-test.js', { type: 'module' });
      worker.onmessage = (event) => resolve(event.data);
      worker.onerror = (event) => resolve({ error: event.message });
      worker.postMessage(modelUrl);
    }), url);
    assert.equal(out.error, undefined, out.error);
    return out.ids;
  } finally {
    await context.close();
  }
}

test('the package runs in a module Web Worker', async () => {
  const expected = await nodeGreedy(path.join(repositoryRoot, 'models/stories260K/stories260K.gguf'));
  assert.deepEqual(await workerGreedy('/models/stories260K.gguf'), expected);
});

test('a .spq model in a Web Worker gives the CLI greedy tokens', async () => {
  const native = run(cli, ['generate', spqPath, '--prompt', 'Once upon a time', '--temperature', '0', '--max-tokens', '20', '--json']);
  assert.equal(native.status, 0, native.stderr);
  const expected = JSON.parse(native.stdout).tokens;
  assert.equal(expected.length, 20);
  assert.deepEqual(await workerGreedy('/scratch/stories260K.spq'), expected);
});

test('calibrate runs in a Web Worker and matches Node.js', async () => {
  const settings = { iterations: 2, samples: 2, window: 64, seed: 3 };
  const text = readFileSync(calibrationPath, 'utf8');
  const expected = await calibrate(storiesBin, text, { ...settings, tokenizer: storiesTokenizer });
  const { page, context } = await openPage();
  try {
    const out = await page.evaluate(async (settings) => {
      const { calibrate } = await import('/js/index.js');
      const text = await (await fetch('/data/tinystories-calib.txt')).text();
      const steps = [];
      const result = await calibrate('/models/stories260K.bin', text, {
        ...settings,
        tokenizer: '/models/tok512.bin',
        onProgress: (event) => event.phase === 'calibrate' && steps.push(event.iteration),
      });
      return { rotation: Array.from(result.rotation), spq: Array.from(result.spq), steps };
    }, settings);
    assert.deepEqual(out.steps, [1, 2]);
    assert.ok(Buffer.from(out.rotation).equals(Buffer.from(expected.rotation)), 'the rotation file differs from Node.js');
    assert.ok(Buffer.from(out.spq).equals(Buffer.from(expected.spq)), 'the .spq file differs from Node.js');
  } finally {
    await context.close();
  }
});
