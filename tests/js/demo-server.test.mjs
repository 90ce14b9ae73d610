// Tests the demo's static server (web/server.mjs) on a fake repository in a temporary folder.
// It checks isolation headers, content types, byte ranges, the model and sample listings and the
// rewriting of bare imports, and that no request reaches a file outside the served folders.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, mkdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { parseRange, startServer } from '../../web/server.mjs';
import { repositoryRoot } from './helpers.mjs';

let temporary;
let server;
let modelBytes;

// Writes a file under the temporary folder, creating its parent folders.
function put(relative, contents) {
  const file = path.join(temporary, relative);
  mkdirSync(path.dirname(file), { recursive: true });
  writeFileSync(file, contents);
}

// Sends one request with the path exactly as given (no URL normalization) and returns
// { status, headers, body } with the body as a Buffer.
function request(requestPath, { method = 'GET', headers = {} } = {}) {
  return new Promise((resolve, reject) => {
    const outgoing = http.request({ host: '127.0.0.1', port: server.port, path: requestPath, method, headers }, (response) => {
      const chunks = [];
      response.on('data', (chunk) => chunks.push(chunk));
      response.on('end', () => resolve({ status: response.statusCode, headers: response.headers, body: Buffer.concat(chunks) }));
    });
    outgoing.on('error', reject);
    outgoing.end();
  });
}

before(async () => {
  temporary = mkdtempSync(path.join(os.tmpdir(), 'spinquant-demo-server-'));
  const root = path.join(temporary, 'repo');
  modelBytes = Buffer.from(Array.from({ length: 1000 }, (_, index) => index % 251));
  put('secret.txt', 'outside the served folders');
  put('repo/package.json', '{"name":"fake"}');
  put('repo/web/index.html', '<!doctype html><title>demo</title>');
  put('repo/web/style.css', 'body{}');
  put('repo/web/chat.js', 'export {};');
  put('repo/web/picture.png', Buffer.from([0x89, 0x50, 0x4e, 0x47]));
  put('repo/web/notes.txt', 'not a page asset');
  put('repo/js/index.js', "import { Template } from '@huggingface/jinja';\nimport { a } from './a.js';\nexport { Template, a };\n");
  put('repo/js/a.js', 'export const a = 1;');
  put('repo/node_modules/@huggingface/jinja/package.json', JSON.stringify({ name: '@huggingface/jinja', type: 'module', exports: { '.': { import: './dist/index.js' } } }));
  put('repo/node_modules/@huggingface/jinja/dist/index.js', 'export class Template {}');
  put('repo/dist/spinquant-simd.wasm', Buffer.from([0x00, 0x61, 0x73, 0x6d, 1, 0, 0, 0]));
  put('repo/dist/spinquant-simd.mjs', 'export default 1;');
  put('repo/models/tiny.spq', modelBytes);
  put('repo/models/stories/stories.bin', Buffer.alloc(64));
  put('repo/models/stories/tok512.bin', Buffer.alloc(16));
  put('repo/models/orphan/model.bin', Buffer.alloc(32));
  put('repo/models/.hidden.spq', Buffer.alloc(8));
  put('repo/models/data/tinystories-calib.txt', 'Once upon a time.');
  put('shared/data/wikitext-2-raw/wiki.test.raw', ' = Title = \n');
  symlinkSync(path.join(temporary, 'secret.txt'), path.join(root, 'models', 'link.spq'));
  server = await startServer({ port: 0, root, shared: path.join(temporary, 'shared') });
});

after(async () => {
  await server?.close();
  rmSync(temporary, { recursive: true, force: true });
});

test('server binds to 127.0.0.1 only', () => {
  assert.equal(server.server.address().address, '127.0.0.1');
  assert.match(server.url, /^http:\/\/127\.0\.0\.1:\d+\/$/);
});

test('server sends isolation headers on every response', async () => {
  for (const requestPath of ['/', '/style.css', '/dist/spinquant-simd.wasm', '/api/models', '/missing.html', '/../secret.txt']) {
    const response = await request(requestPath);
    assert.equal(response.headers['cross-origin-opener-policy'], 'same-origin', requestPath);
    assert.equal(response.headers['cross-origin-embedder-policy'], 'require-corp', requestPath);
    assert.equal(response.headers['cross-origin-resource-policy'], 'same-origin', requestPath);
  }
});

test('server content types', async () => {
  const cases = [
    ['/', 'text/html; charset=utf-8'],
    ['/index.html', 'text/html; charset=utf-8'],
    ['/style.css', 'text/css; charset=utf-8'],
    ['/chat.js', 'text/javascript; charset=utf-8'],
    ['/picture.png', 'image/png'],
    ['/dist/spinquant-simd.wasm', 'application/wasm'],
    ['/dist/spinquant-simd.mjs', 'text/javascript; charset=utf-8'],
    ['/js/index.js', 'text/javascript; charset=utf-8'],
    ['/api/models', 'application/json; charset=utf-8'],
    ['/api/samples', 'application/json; charset=utf-8'],
    ['/models/tiny.spq', 'application/octet-stream'],
    ['/models/data/tinystories-calib.txt', 'text/plain; charset=utf-8'],
  ];
  for (const [requestPath, type] of cases) {
    const response = await request(requestPath);
    assert.equal(response.status, 200, requestPath);
    assert.equal(response.headers['content-type'], type, requestPath);
  }
});

test('server range requests', async () => {
  const size = modelBytes.length;
  const whole = await request('/models/tiny.spq');
  assert.equal(whole.status, 200);
  assert.equal(whole.headers['accept-ranges'], 'bytes');
  assert.deepEqual(whole.body, modelBytes);

  const first = await request('/models/tiny.spq', { headers: { Range: 'bytes=0-9' } });
  assert.equal(first.status, 206);
  assert.equal(first.headers['content-range'], `bytes 0-9/${size}`);
  assert.equal(first.headers['content-length'], '10');
  assert.deepEqual(first.body, modelBytes.subarray(0, 10));

  const middle = await request('/models/tiny.spq', { headers: { Range: 'bytes=500-' } });
  assert.equal(middle.status, 206);
  assert.equal(middle.headers['content-range'], `bytes 500-999/${size}`);
  assert.deepEqual(middle.body, modelBytes.subarray(500));

  const suffix = await request('/models/tiny.spq', { headers: { Range: 'bytes=-16' } });
  assert.equal(suffix.status, 206);
  assert.equal(suffix.headers['content-range'], `bytes 984-999/${size}`);
  assert.deepEqual(suffix.body, modelBytes.subarray(984));

  const clipped = await request('/models/tiny.spq', { headers: { Range: 'bytes=990-5000' } });
  assert.equal(clipped.status, 206);
  assert.equal(clipped.headers['content-range'], `bytes 990-999/${size}`);

  for (const range of [`bytes=${size}-`, 'bytes=20-10', 'bytes=-0', 'items=0-1']) {
    const rejected = await request('/models/tiny.spq', { headers: { Range: range } });
    assert.equal(rejected.status, 416, range);
    assert.equal(rejected.headers['content-range'], `bytes */${size}`, range);
  }

  // A request for several ranges at once may get the whole file.
  const multiple = await request('/models/tiny.spq', { headers: { Range: 'bytes=0-1,5-6' } });
  assert.equal(multiple.status, 200);
  assert.equal(multiple.body.length, size);

  // If-Range with an outdated validator sends the whole file.
  const stale = await request('/models/tiny.spq', { headers: { Range: 'bytes=0-9', 'If-Range': '"old"' } });
  assert.equal(stale.status, 200);
  const current = await request('/models/tiny.spq', { headers: { Range: 'bytes=0-9', 'If-Range': whole.headers.etag } });
  assert.equal(current.status, 206);
});

test('parseRange cases', () => {
  assert.equal(parseRange(undefined, 100), null);
  assert.deepEqual(parseRange('bytes=0-0', 100), { start: 0, end: 0 });
  assert.deepEqual(parseRange('bytes=99-', 100), { start: 99, end: 99 });
  assert.deepEqual(parseRange('bytes=-200', 100), { start: 0, end: 99 });
  assert.equal(parseRange('bytes=100-', 100), 'unsatisfiable');
  assert.equal(parseRange('bytes=-', 100), 'unsatisfiable');
  assert.equal(parseRange('bytes=0-', 0), 'unsatisfiable');
  assert.equal(parseRange('bytes=0-1, 3-4', 100), null);
});

test('server HEAD, 304 and 405', async () => {
  const head = await request('/models/tiny.spq', { method: 'HEAD' });
  assert.equal(head.status, 200);
  assert.equal(head.headers['content-length'], String(modelBytes.length));
  assert.equal(head.body.length, 0);

  const revalidated = await request('/models/tiny.spq', { headers: { 'If-None-Match': head.headers.etag } });
  assert.equal(revalidated.status, 304);
  assert.equal(revalidated.body.length, 0);

  const post = await request('/models/tiny.spq', { method: 'POST' });
  assert.equal(post.status, 405);
  assert.equal(post.headers.allow, 'GET, HEAD');
});

test('server rejects paths outside its folders', async () => {
  const attempts = [
    '/../secret.txt',
    '/../../secret.txt',
    '/%2e%2e/secret.txt',
    '/%2e%2e/%2e%2e/secret.txt',
    '/models/../../secret.txt',
    '/models/..%2f..%2fsecret.txt',
    '/models/%2e%2e%2f%2e%2e%2fsecret.txt',
    '/js/..%2f..%2fsecret.txt',
    '/dist/%2e%2e/package.json',
    '/..%5c..%5csecret.txt',
    '/models/tiny.spq%00.txt',
    '/models/%E0%A4%A',
    '/models/link.spq',
    '/models/.hidden.spq',
    '/notes.txt',
    '/package.json',
    '//etc/passwd',
    '/shared/data/../../secret.txt',
    '/node_modules/@huggingface/jinja/../../../secret.txt',
  ];
  for (const attempt of attempts) {
    const response = await request(attempt);
    assert.equal(response.status, 404, attempt);
    assert.doesNotMatch(response.body.toString(), /outside the served folders/, attempt);
  }
});

test('server lists models and samples', async () => {
  const { models } = JSON.parse((await request('/api/models')).body);
  const names = models.map((model) => model.name);
  assert.deepEqual(names, ['tiny.spq', 'stories/stories.bin']);
  assert.equal(models[0].url, '/models/tiny.spq');
  assert.equal(models[0].bytes, modelBytes.length);
  assert.equal(models[0].format, 'spq');
  assert.equal(typeof models[0].version, 'string');
  assert.equal(models[1].tokenizerUrl, '/models/stories/tok512.bin');

  const { samples } = JSON.parse((await request('/api/samples')).body);
  assert.deepEqual(samples.map((sample) => sample.url), ['/models/data/tinystories-calib.txt', '/shared/data/wikitext-2-raw/wiki.test.raw']);
  assert.deepEqual(samples.map((sample) => sample.role), ['calibration', 'evaluation']);
  const text = await request(samples[1].url);
  assert.equal(text.body.toString(), ' = Title = \n');
});

test('server rewrites bare imports of package modules', async () => {
  const source = (await request('/js/index.js')).body.toString();
  assert.match(source, /from '\/node_modules\/@huggingface\/jinja\/dist\/index\.js'/);
  assert.match(source, /from '\.\/a\.js'/);
  const entry = await request('/node_modules/@huggingface/jinja/dist/index.js');
  assert.equal(entry.status, 200);
  assert.equal(entry.headers['content-type'], 'text/javascript; charset=utf-8');
  const manifest = await request('/node_modules/@huggingface/jinja/package.json');
  assert.equal(manifest.status, 200);
});

test('server command prints its URL', async () => {
  const child = spawn(process.execPath, [path.join(repositoryRoot, 'web/server.mjs')], {
    env: { ...process.env, PORT: '0' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  try {
    const url = await new Promise((resolve, reject) => {
      let output = '';
      const timer = setTimeout(() => reject(new Error(`no URL printed within 10 s; output: ${output}`)), 10_000);
      child.stdout.on('data', (chunk) => {
        output += chunk;
        const match = /http:\/\/127\.0\.0\.1:\d+\//.exec(output);
        if (match) {
          clearTimeout(timer);
          resolve(match[0]);
        }
      });
      child.on('exit', (code) => reject(new Error(`the server exited with ${code}; output: ${output}`)));
    });
    const response = await fetch(url);
    assert.equal(response.status, 200);
    assert.equal(response.headers.get('cross-origin-embedder-policy'), 'require-corp');
  } finally {
    child.kill('SIGTERM');
  }
});

test('server rejects an invalid PORT', async () => {
  const child = spawn(process.execPath, [path.join(repositoryRoot, 'web/server.mjs')], {
    env: { ...process.env, PORT: 'eighty' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let errors = '';
  child.stderr.on('data', (chunk) => (errors += chunk));
  const code = await new Promise((resolve) => child.on('exit', resolve));
  assert.equal(code, 2);
  assert.match(errors, /invalid PORT 'eighty'/);
});
