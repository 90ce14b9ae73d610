// Loads each Emscripten variant in headless Chromium (Debian's /usr/bin/chromium, driven by
// playwright-core) from a static server on 127.0.0.1, and calls an export. The server sends the
// COOP and COEP headers, so the pthread variant gets SharedArrayBuffer.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import http from 'node:http';
import path from 'node:path';
import { chromium } from 'playwright-core';
import { distPath, repositoryRoot } from './helpers.mjs';

const CHROMIUM_PATH = process.env.SQ_CHROMIUM ?? '/usr/bin/chromium';
const CONTENT_TYPES = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.wasm': 'application/wasm',
};

let server;
let origin;
let browser;

// Serves /dist/* from the repository's dist folder and an empty page at /.
async function handleRequest(request, response) {
  const headers = {
    'Cross-Origin-Opener-Policy': 'same-origin',
    'Cross-Origin-Embedder-Policy': 'require-corp',
    'Cache-Control': 'no-store',
  };
  const url = new URL(request.url, origin);
  if (url.pathname === '/') {
    response.writeHead(200, { ...headers, 'Content-Type': CONTENT_TYPES['.html'] });
    // The empty icon link stops Chromium from requesting /favicon.ico.
    response.end('<!doctype html><title>spinquant test</title><link rel="icon" href="data:,">');
    return;
  }
  const relative = decodeURIComponent(url.pathname).replace(/^\/dist\//, '');
  const file = path.join(repositoryRoot, 'dist', relative);
  const insideDist = url.pathname.startsWith('/dist/') && !relative.includes('..');
  if (!insideDist || !existsSync(file)) {
    response.writeHead(404, headers);
    response.end('not found');
    return;
  }
  const type = CONTENT_TYPES[path.extname(file)] ?? 'application/octet-stream';
  response.writeHead(200, { ...headers, 'Content-Type': type });
  response.end(await readFile(file));
}

before(async () => {
  server = http.createServer((request, response) => {
    handleRequest(request, response).catch((error) => {
      response.writeHead(500);
      response.end(String(error));
    });
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  origin = `http://127.0.0.1:${server.address().port}`;
  // --no-sandbox: CI runs as root, where Chromium's sandbox refuses to start.
  browser = await chromium.launch({ executablePath: CHROMIUM_PATH, args: ['--no-sandbox'] });
});

after(async () => {
  await browser?.close();
  await new Promise((resolve) => (server ? server.close(resolve) : resolve()));
});

const variants = [
  { name: 'simd', required: true },
  { name: 'pthread', required: false },
  { name: 'relaxed', required: false },
];

for (const variant of variants) {
  const modulePath = distPath(`spinquant-${variant.name}.mjs`);
  const built = existsSync(modulePath);
  const skip = !built && !variant.required ? `${modulePath} was not built` : false;

  test(`emscripten ${variant.name} module loads in Chromium`, { skip, timeout: 60_000 }, async () => {
    assert.ok(built, `${modulePath} not found; run npm run build`);
    const page = await browser.newPage();
    const consoleErrors = [];
    page.on('console', (message) => {
      if (message.type() === 'error') consoleErrors.push(message.text());
    });
    try {
      await page.goto(`${origin}/`);
      const result = await page.evaluate(async (url) => {
        const { default: createSpinquantModule } = await import(url);
        const module = await createSpinquantModule({ pthreadPoolSize: 1 });
        return { apiVersion: module._sq_api_version(), isolated: self.crossOriginIsolated };
      }, `${origin}/dist/spinquant-${variant.name}.mjs`);
      assert.ok(Number.isInteger(result.apiVersion), `sq_api_version() returned ${result.apiVersion}`);
      assert.ok(result.apiVersion >= 1, `sq_api_version() returned ${result.apiVersion}, expected at least 1`);
      assert.equal(result.isolated, true, 'the page is not cross-origin isolated');
      assert.deepEqual(consoleErrors, []);
    } finally {
      await page.close();
    }
  });
}
