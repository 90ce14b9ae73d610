// Tests loading models over HTTP from a server on 127.0.0.1 that this file starts. Cases:
// progress events, abort, resuming a dropped connection with a Range request, rejecting a file
// too large for WebAssembly memory from its Content-Length, HTTP errors, and that the
// JavaScript heap does not hold the downloaded file.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createReadStream, readFileSync, statSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import v8 from 'node:v8';
import vm from 'node:vm';
import { repositoryRoot } from './helpers.mjs';
import { ErrorCode, SpinquantError, loadModel } from '../../js/node.js';

const files = {
  'stories260K.bin': path.join(repositoryRoot, 'models/stories260K/stories260K.bin'),
  'tok512.bin': path.join(repositoryRoot, 'models/stories260K/tok512.bin'),
  'stories260K.gguf': path.join(repositoryRoot, 'models/stories260K/stories260K.gguf'),
  'smollm2.gguf': path.join(repositoryRoot, 'models/smollm2/SmolLM2-135M-Instruct.Q4_1.gguf'),
};
const evalText = readFileSync(path.resolve(repositoryRoot, '../shared/reference/tinystories-40k.txt'), 'utf8');

let server;
let origin;
// Every request the server received: { url, range, closedEarly }.
const requests = [];

function sleep(milliseconds) {
  return new Promise((resolve) => setTimeout(resolve, milliseconds));
}

// Query parameters: chunk (bytes per write), delay (ms between writes), drop (close the
// connection after this many bytes of the first response), ranges=no (ignore Range headers),
// etag (the ETag of every response after the first, as if the file had changed).
async function serveFile(request, response, url, record) {
  const file = files[url.pathname.slice('/models/'.length)];
  if (!file) {
    response.writeHead(404, { 'Content-Type': 'text/plain' });
    response.end('not found');
    return;
  }
  const size = statSync(file).size;
  const chunk = Number(url.searchParams.get('chunk') ?? 65536);
  const delay = Number(url.searchParams.get('delay') ?? 0);
  const drop = Number(url.searchParams.get('drop') ?? 0);
  const first = requests.filter((item) => item.url === request.url).length === 1;
  const etag = first ? '"v1"' : (url.searchParams.get('etag') ?? '"v1"');
  const range = /^bytes=(\d+)-$/.exec(request.headers.range ?? '');
  const useRange = range && url.searchParams.get('ranges') !== 'no';
  const start = useRange ? Number(range[1]) : 0;
  const headers = { 'Content-Type': 'application/octet-stream', 'Content-Length': String(size - start), ETag: etag, 'Accept-Ranges': 'bytes' };
  if (useRange) headers['Content-Range'] = `bytes ${start}-${size - 1}/${size}`;
  response.writeHead(useRange ? 206 : 200, headers);

  let sent = 0;
  const stream = createReadStream(file, { start, highWaterMark: chunk });
  for await (const data of stream) {
    if (response.destroyed) {
      record.closedEarly = true;
      stream.destroy();
      return;
    }
    if (first && drop > 0 && sent + data.length > drop) {
      response.write(data.subarray(0, drop - sent));
      await sleep(20);
      response.socket.destroy();
      stream.destroy();
      return;
    }
    sent += data.length;
    if (!response.write(data)) await new Promise((resolve) => response.once('drain', resolve));
    if (delay > 0) await sleep(delay);
  }
  response.end();
}

async function handle(request, response) {
  const url = new URL(request.url, origin);
  const record = { url: request.url, range: request.headers.range ?? null, closedEarly: false };
  requests.push(record);
  response.on('close', () => {
    if (!response.writableFinished) record.closedEarly = true;
  });
  if (url.pathname === '/huge') {
    // Claims 5 GiB and sends nothing: the client must give up after the headers.
    response.writeHead(200, { 'Content-Type': 'application/octet-stream', 'Content-Length': String(5 * 2 ** 30) });
    response.flushHeaders();
    return;
  }
  await serveFile(request, response, url, record);
}

before(async () => {
  server = http.createServer((request, response) => {
    handle(request, response).catch((error) => {
      if (!response.headersSent) response.writeHead(500);
      response.end(String(error));
    });
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  origin = `http://127.0.0.1:${server.address().port}`;
});

after(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

async function assertRejectsWith(promise, code) {
  await assert.rejects(promise, (error) => {
    assert.ok(error instanceof SpinquantError, `expected a SpinquantError, got ${error?.stack ?? error}`);
    assert.equal(error.code, code, `code of: ${error.message}`);
    return true;
  });
}

let referencePerplexity;
async function pathPerplexity() {
  if (referencePerplexity === undefined) {
    const model = await loadModel(files['stories260K.bin'], { tokenizer: files['tok512.bin'] });
    referencePerplexity = (await model.perplexity(evalText, { window: 512, maxWindows: 2 })).perplexity;
    await model.dispose();
  }
  return referencePerplexity;
}

test('URL download reports progress and gives the same model as the file', async () => {
  const events = [];
  const model = await loadModel(`${origin}/models/stories260K.bin?chunk=16384`, {
    tokenizer: new URL(`${origin}/models/tok512.bin`),
    onProgress: (event) => events.push(event),
  });
  try {
    const size = statSync(files['stories260K.bin']).size;
    const downloads = events.filter((event) => event.phase === 'download');
    assert.ok(downloads.length >= 10, `only ${downloads.length} download events for ${size} bytes in 16 KiB chunks`);
    for (const event of downloads) assert.equal(event.totalBytes, size);
    for (let index = 1; index < downloads.length; index += 1) assert.ok(downloads[index].loadedBytes >= downloads[index - 1].loadedBytes);
    assert.deepEqual(events.at(-1), { phase: 'ready', loadedBytes: size, totalBytes: size });
    assert.ok(events.some((event) => event.phase === 'prepare'));
    const { perplexity } = await model.perplexity(evalText, { window: 512, maxWindows: 2 });
    assert.equal(perplexity, await pathPerplexity());
  } finally {
    await model.dispose();
  }
});

test('a Response from fetch() loads', async () => {
  const response = await fetch(`${origin}/models/stories260K.gguf`);
  const model = await loadModel(response);
  assert.equal(model.info.format, 'gguf');
  await model.dispose();
});

// Node.js has no download cache (the cache option applies in browsers), so
// js-api-browser.test.mjs checks that an aborted download leaves no cache entry.
test('abort during the download rejects with E_ABORTED and closes the connection', async () => {
  const controller = new AbortController();
  const url = `${origin}/models/stories260K.bin?chunk=8192&delay=5`;
  let lastLoaded = 0;
  await assertRejectsWith(loadModel(url, {
    tokenizer: files['tok512.bin'],
    signal: controller.signal,
    onProgress: ({ loadedBytes }) => {
      lastLoaded = loadedBytes;
      if (loadedBytes > 200_000) controller.abort();
    },
  }), ErrorCode.ABORTED);
  assert.ok(lastLoaded < statSync(files['stories260K.bin']).size, 'the download finished before the abort');
  await sleep(100);
  const record = requests.findLast((item) => item.url.startsWith('/models/stories260K.bin?chunk=8192&delay=5'));
  assert.equal(record.closedEarly, true, 'the server kept sending after the abort');
});

test('a dropped connection resumes with a Range request', async () => {
  const url = `/models/stories260K.bin?chunk=16384&drop=300000`;
  const model = await loadModel(`${origin}${url}`, { tokenizer: files['tok512.bin'] });
  try {
    const sent = requests.filter((item) => item.url === url);
    assert.equal(sent.length, 2, `expected the first request and one resumed request, got ${JSON.stringify(sent)}`);
    assert.equal(sent[0].range, null);
    assert.equal(sent[1].range, 'bytes=300000-');
    const { perplexity } = await model.perplexity(evalText, { window: 512, maxWindows: 2 });
    assert.equal(perplexity, await pathPerplexity());
  } finally {
    await model.dispose();
  }
});

test('a server that ignores Range resumes by skipping bytes', async () => {
  const url = `/models/stories260K.bin?drop=250000&ranges=no`;
  const model = await loadModel(`${origin}${url}`, { tokenizer: files['tok512.bin'] });
  try {
    assert.equal(requests.filter((item) => item.url === url).length, 2);
    const { perplexity } = await model.perplexity(evalText, { window: 512, maxWindows: 2 });
    assert.equal(perplexity, await pathPerplexity());
  } finally {
    await model.dispose();
  }
});

test('a file that changed on the server during the download gives E_NETWORK', async () => {
  await assertRejectsWith(loadModel(`${origin}/models/stories260K.bin?drop=250000&etag=%22v2%22`, { tokenizer: files['tok512.bin'] }), ErrorCode.NETWORK);
  await assertRejectsWith(loadModel(`${origin}/models/stories260K.bin?drop=250000&etag=%22v2%22&ranges=no`, { tokenizer: files['tok512.bin'] }), ErrorCode.NETWORK);
});

test('a Content-Length too large for WebAssembly memory is refused before the download', async () => {
  const started = Date.now();
  await assertRejectsWith(loadModel(`${origin}/huge`), ErrorCode.MEMORY);
  assert.ok(Date.now() - started < 5000, 'the refusal took more than 5 s');
  await sleep(100);
  assert.equal(requests.findLast((item) => item.url === '/huge').closedEarly, true);
});

test('HTTP errors and unreachable servers give E_NETWORK', async () => {
  await assertRejectsWith(loadModel(`${origin}/models/missing.gguf`), ErrorCode.NETWORK);
  // A port on 127.0.0.1 that this server just released.
  const closed = http.createServer();
  await new Promise((resolve) => closed.listen(0, '127.0.0.1', resolve));
  const port = closed.address().port;
  await new Promise((resolve) => closed.close(resolve));
  await assertRejectsWith(loadModel(`http://127.0.0.1:${port}/model.gguf`), ErrorCode.NETWORK);
});

// Measures live JavaScript memory after a forced garbage collection every 8 MiB of a 94 MiB
// download. The JavaScript heap must stay within a few MiB. ArrayBuffers (which exclude
// WebAssembly memory) also contain the network buffers of fetch() and of this file's server.
// Those briefly reach tens of MiB on the loopback interface, so the bound for ArrayBuffers is
// half the file, which still shows that the file is never in JavaScript memory as a whole.
test('the JavaScript heap does not hold the downloaded file', async () => {
  v8.setFlagsFromString('--expose-gc');
  const collectGarbage = vm.runInNewContext('gc');
  const live = () => {
    collectGarbage();
    const usage = process.memoryUsage();
    return { heap: usage.heapUsed, arrayBuffers: usage.arrayBuffers, external: usage.external };
  };
  const size = statSync(files['smollm2.gguf']).size;
  const base = live();
  let peakHeap = 0;
  let peakArrayBuffers = 0;
  let nextSample = 0;
  const model = await loadModel(`${origin}/models/smollm2.gguf?chunk=65536`, {
    onProgress: ({ loadedBytes }) => {
      if (loadedBytes < nextSample) return;
      nextSample = loadedBytes + (8 << 20);
      const sample = live();
      peakHeap = Math.max(peakHeap, sample.heap - base.heap);
      peakArrayBuffers = Math.max(peakArrayBuffers, sample.arrayBuffers - base.arrayBuffers);
    },
  });
  try {
    const end = live();
    const { webAssemblyBytes } = model.memoryUsage();
    const mib = (bytes) => `${(bytes / 2 ** 20).toFixed(1)} MiB`;
    assert.ok(peakHeap < 8 * 2 ** 20, `the JavaScript heap grew by ${mib(peakHeap)} while downloading a ${mib(size)} file`);
    assert.ok(peakArrayBuffers < size / 2, `ArrayBuffers grew by ${mib(peakArrayBuffers)} while downloading a ${mib(size)} file`);
    // WebAssembly memory counts as external memory; what remains beyond it must be small.
    const beyondWasm = end.external - base.external + end.heap - base.heap - webAssemblyBytes;
    assert.ok(beyondWasm < 8 * 2 ** 20, `memory beyond the ${mib(webAssemblyBytes)} of WebAssembly memory grew by ${mib(beyondWasm)}`);
  } finally {
    await model.dispose();
  }
});
