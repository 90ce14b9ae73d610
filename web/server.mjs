// Static HTTP server for the browser demo, bound to 127.0.0.1 only. It serves the pages in web/,
// the npm package (js/), the Emscripten builds (dist/), the models in models/, and the sample
// texts of the shared data folder, read-only. Every response carries the COOP, COEP and CORP
// headers, so pages are cross-origin isolated and the pthread build gets SharedArrayBuffer.
// Files are served for GET and HEAD, with single byte ranges (206 and 416) and ETag revalidation.
// Two JSON endpoints list what the pages offer: /api/models and /api/samples.
// Like the development servers of bundlers, it rewrites bare import specifiers in the package's
// files (`from '@huggingface/jinja'`) to URLs under /node_modules/, because browsers resolve
// bare specifiers only through import maps, which module workers do not support.
//
// Usage: node web/server.mjs            (PORT sets the port, default 8080; 0 picks a free one;
//        SQ_DIST_DIR serves another folder of Emscripten builds at /dist/)
// As a module: const { url, close } = await startServer({ port: 0, distDir });
import { createReadStream } from 'node:fs';
import { readFile, readdir, realpath, stat } from 'node:fs/promises';
import http from 'node:http';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const HOST = '127.0.0.1';
const DEFAULT_PORT = 8080;

export const repositoryRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

export const CONTENT_TYPES = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.png': 'image/png',
  '.svg': 'image/svg+xml',
  '.wasm': 'application/wasm',
  '.txt': 'text/plain; charset=utf-8',
  '.raw': 'text/plain; charset=utf-8',
  '.md': 'text/markdown; charset=utf-8',
  '.ts': 'text/plain; charset=utf-8',
};

// Headers on every response, errors included.
const ISOLATION_HEADERS = {
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Embedder-Policy': 'require-corp',
  'Cross-Origin-Resource-Policy': 'same-origin',
  'X-Content-Type-Options': 'nosniff',
};

// The URL prefixes and the folders they map to. `files` limits a root to some file names;
// the package roots hide everything but code, so a stray file there is never served.
function defaultRoots(root, shared, distDir) {
  return [
    { prefix: '/js/', dir: path.join(root, 'js'), files: /\.(m?js|d\.ts|json)$/ },
    { prefix: '/dist/', dir: distDir, files: /\.(m?js|wasm|json)$/ },
    { prefix: '/node_modules/', dir: path.join(root, 'node_modules'), files: /\.(m?js|json)$/ },
    { prefix: '/models/', dir: path.join(root, 'models') },
    { prefix: '/shared/data/', dir: path.join(shared, 'data'), files: /\.(txt|raw)$/ },
    { prefix: '/shared/reference/', dir: path.join(shared, 'reference'), files: /\.(txt|json|jsonl)$/ },
    { prefix: '/', dir: path.join(root, 'web'), files: /\.(html|m?js|css|png|svg|json)$/ },
  ];
}

// Model files the demo offers, by extension, with a short description of each kind.
const MODEL_KINDS = {
  '.spq': 'integer model (.spq)',
  '.gguf': 'GGUF model, run in fp32',
  '.bin': 'llama2.c checkpoint, run in fp32',
};

// Sample texts: [URL path under /shared/ or /models/, role, description].
const SAMPLE_TEXTS = [
  ['shared/data/tinystories/tinystories-valid-part.txt', 'calibration', 'TinyStories validation'],
  ['shared/reference/tinystories-40k.txt', 'evaluation', 'TinyStories, first 40 KB'],
  ['models/data/tinystories-calib.txt', 'calibration', 'TinyStories calibration'],
  ['shared/data/wikitext-2-raw/wiki.valid.raw', 'calibration', 'WikiText-2 validation'],
  ['shared/data/wikitext-2-raw/wiki.test.raw', 'evaluation', 'WikiText-2 test'],
];

// Returns the file system path for a URL path inside one of the roots, or null when the path
// is outside every root, names a hidden file, or contains a NUL byte or an invalid escape.
// The real path (after symbolic links) must also stay inside the root's real folder.
export async function resolveRequestPath(roots, urlPath) {
  let decoded;
  try {
    decoded = decodeURIComponent(urlPath);
  } catch {
    return null;
  }
  if (decoded.includes('\0') || decoded.includes('\\') || !decoded.startsWith('/')) {
    return null;
  }

  const segments = decoded.split('/');
  if (segments.some((segment) => segment === '..' || segment.startsWith('.') && segment !== '')) {
    return null;
  }

  const root = roots.find((candidate) => decoded.startsWith(candidate.prefix));
  if (!root) {
    return null;
  }

  let relative = decoded.slice(root.prefix.length);
  if (relative === '' || relative.endsWith('/')) {
    relative += 'index.html';
  }
  if (root.files && !root.files.test(relative)) {
    return null;
  }

  const candidate = path.resolve(root.dir, relative);
  if (!candidate.startsWith(root.dir + path.sep)) {
    return null;
  }

  try {
    const [realRoot, realFile] = await Promise.all([realpath(root.dir), realpath(candidate)]);
    if (!realFile.startsWith(realRoot + path.sep)) {
      return null;
    }
    return realFile;
  } catch {
    return null;
  }
}

// Parses a Range header against a file of size bytes. Returns null to send the whole file
// (no header, or several ranges, which a server may ignore), { start, end } (inclusive) for
// one satisfiable range, or 'unsatisfiable'.
export function parseRange(header, size) {
  if (typeof header !== 'string') {
    return null;
  }
  const match = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!match) {
    return header.includes(',') ? null : 'unsatisfiable';
  }
  const [, first, last] = match;
  if (first === '' && last === '') {
    return 'unsatisfiable';
  }
  if (first === '') {
    const suffix = Number(last);
    if (suffix === 0 || size === 0) {
      return 'unsatisfiable';
    }
    return { start: Math.max(0, size - suffix), end: size - 1 };
  }
  const start = Number(first);
  const end = last === '' ? size - 1 : Math.min(Number(last), size - 1);
  if (start >= size || end < start) {
    return 'unsatisfiable';
  }
  return { start, end };
}

// Matches the specifier of static imports and exports (`from 'x'`, `import 'x'`) and of dynamic
// imports (`import('x')`) when it is bare: not relative, not absolute, not a URL.
const BARE_IMPORT = /(\bfrom\s*|\bimport\s*\(\s*|\bimport\s+)(['"])([^'"./][^'":]*)\2/g;

// Returns the URL of the ES module entry of a package in node_modules, or null.
async function resolvePackageEntry(nodeModulesDir, specifier) {
  const parts = specifier.split('/');
  const nameLength = specifier.startsWith('@') ? 2 : 1;
  const name = parts.slice(0, nameLength).join('/');
  const subpath = parts.slice(nameLength).join('/');
  let manifest;
  try {
    manifest = JSON.parse(await readFile(path.join(nodeModulesDir, name, 'package.json'), 'utf8'));
  } catch {
    return null;
  }
  const exportKey = subpath ? `./${subpath}` : '.';
  const exported = typeof manifest.exports === 'string' && exportKey === '.' ? manifest.exports : manifest.exports?.[exportKey];
  const target = typeof exported === 'string'
    ? exported
    : exported?.browser ?? exported?.import ?? exported?.default ?? (subpath ? subpath : manifest.module ?? manifest.main);
  if (typeof target !== 'string') {
    return null;
  }
  return `/node_modules/${name}/${target.replace(/^\.\//, '')}`;
}

// Rewrites the bare specifiers of a JavaScript module's source; unknown packages stay as they are.
export async function rewriteBareImports(source, nodeModulesDir) {
  const specifiers = new Set([...source.matchAll(BARE_IMPORT)].map((match) => match[3]));
  const resolved = new Map();
  for (const specifier of specifiers) {
    const url = await resolvePackageEntry(nodeModulesDir, specifier);
    if (url) resolved.set(specifier, url);
  }
  if (resolved.size === 0) {
    return source;
  }
  return source.replace(BARE_IMPORT, (whole, prefix, quote, specifier) =>
    resolved.has(specifier) ? `${prefix}${quote}${resolved.get(specifier)}${quote}` : whole);
}

async function listFiles(dir) {
  const entries = await readdir(dir, { withFileTypes: true, recursive: true }).catch(() => []);
  return entries
    .filter((entry) => entry.isFile() && !entry.name.startsWith('.'))
    .map((entry) => path.join(entry.parentPath ?? entry.path, entry.name));
}

// Lists the model files in models/: every .spq, and the .gguf and llama2.c .bin files next to
// which a usable tokenizer exists (a .bin needs a tok*.bin or tokenizer.bin in its folder).
async function listModels(modelsDir) {
  const files = await listFiles(modelsDir);
  const models = [];
  for (const file of files) {
    const extension = path.extname(file);
    const base = path.basename(file);
    if (!MODEL_KINDS[extension] || /^tok.*\.bin$|^tokenizer\.bin$/.test(base)) {
      continue;
    }
    const relative = path.relative(modelsDir, file).split(path.sep).join('/');
    const info = await stat(file);
    const model = {
      name: relative,
      url: `/models/${relative}`,
      bytes: info.size,
      // Changes when the file changes, so pages can use it as a cache key.
      version: `${info.size.toString(16)}-${Math.floor(info.mtimeMs).toString(16)}`,
      format: extension.slice(1),
      description: MODEL_KINDS[extension],
    };
    if (extension === '.bin') {
      const siblings = await readdir(path.dirname(file));
      const tokenizer = siblings.find((name) => /^tok.*\.bin$|^tokenizer\.bin$/.test(name));
      if (!tokenizer) {
        continue;
      }
      const folder = path.dirname(relative);
      model.tokenizerUrl = `/models/${folder === '.' ? '' : `${folder}/`}${tokenizer}`;
    }
    models.push(model);
  }
  // Integer models first, then the smallest first, so the quick demo model leads.
  const order = { spq: 0, gguf: 1, bin: 2 };
  models.sort((a, b) => order[a.format] - order[b.format] || a.bytes - b.bytes || a.name.localeCompare(b.name));
  return models;
}

async function listSamples(roots) {
  const samples = [];
  for (const [relative, role, description] of SAMPLE_TEXTS) {
    const url = `/${relative}`;
    const file = await resolveRequestPath(roots, url);
    if (!file) {
      continue;
    }
    const info = await stat(file);
    samples.push({ name: path.basename(relative), url, role, description, bytes: info.size });
  }
  return samples;
}

function sendText(response, status, message, extraHeaders = {}) {
  const body = `${message}\n`;
  response.writeHead(status, {
    ...ISOLATION_HEADERS,
    'Content-Type': 'text/plain; charset=utf-8',
    'Content-Length': Buffer.byteLength(body),
    'Cache-Control': 'no-store',
    ...extraHeaders,
  });
  response.end(response.req.method === 'HEAD' ? undefined : body);
}

function sendJson(response, value) {
  const body = JSON.stringify(value, null, 2);
  response.writeHead(200, {
    ...ISOLATION_HEADERS,
    'Content-Type': CONTENT_TYPES['.json'],
    'Content-Length': Buffer.byteLength(body),
    'Cache-Control': 'no-store',
  });
  response.end(response.req.method === 'HEAD' ? undefined : body);
}

// Sends a package module with its bare imports rewritten (no ranges: modules are small).
async function sendModule(request, response, file, nodeModulesDir) {
  const body = Buffer.from(await rewriteBareImports(await readFile(file, 'utf8'), nodeModulesDir));
  response.writeHead(200, {
    ...ISOLATION_HEADERS,
    'Content-Type': CONTENT_TYPES[path.extname(file)],
    'Content-Length': body.length,
    'Cache-Control': 'no-cache',
  });
  response.end(request.method === 'HEAD' ? undefined : body);
}

async function sendFile(request, response, file) {
  const info = await stat(file);
  if (!info.isFile()) {
    sendText(response, 404, 'not found');
    return;
  }
  const size = info.size;
  const etag = `"${size.toString(16)}-${Math.floor(info.mtimeMs).toString(16)}"`;
  const headers = {
    ...ISOLATION_HEADERS,
    'Content-Type': CONTENT_TYPES[path.extname(file)] ?? 'application/octet-stream',
    'Accept-Ranges': 'bytes',
    'Cache-Control': 'no-cache',
    ETag: etag,
    'Last-Modified': info.mtime.toUTCString(),
  };
  if (request.headers['if-none-match'] === etag) {
    response.writeHead(304, headers);
    response.end();
    return;
  }

  // If-Range with another version of the file means: ignore the range, send everything.
  const ifRange = request.headers['if-range'];
  const range = ifRange && ifRange !== etag ? null : parseRange(request.headers.range, size);
  if (range === 'unsatisfiable') {
    sendText(response, 416, `range not satisfiable for a file of ${size} bytes`, {
      'Content-Range': `bytes */${size}`,
    });
    return;
  }
  const start = range ? range.start : 0;
  const end = range ? range.end : size - 1;
  const length = size === 0 ? 0 : end - start + 1;
  if (range) {
    headers['Content-Range'] = `bytes ${start}-${end}/${size}`;
  }
  headers['Content-Length'] = length;
  response.writeHead(range ? 206 : 200, headers);
  if (request.method === 'HEAD' || length === 0) {
    response.end();
    return;
  }
  const stream = createReadStream(file, { start, end });
  stream.on('error', (error) => {
    console.error(`server: read failed for ${file}: ${error.message}`);
    response.destroy(error);
  });
  stream.pipe(response);
}

// Creates the request handler. options.root is the repository, options.shared the shared data
// folder (default: ../shared beside the repository), options.distDir the folder served at /dist/
// (default: the repository's dist/).
export function createHandler(options = {}) {
  const root = options.root ?? repositoryRoot;
  const shared = options.shared ?? path.resolve(root, '..', 'shared');
  const distDir = path.resolve(options.distDir ?? path.join(root, 'dist'));
  const roots = defaultRoots(root, shared, distDir);
  const modelsDir = path.join(root, 'models');
  const nodeModulesDir = path.join(root, 'node_modules');
  const packageDir = path.join(root, 'js') + path.sep;

  return async function handle(request, response) {
    if (request.method !== 'GET' && request.method !== 'HEAD') {
      sendText(response, 405, `method ${request.method} not allowed; use GET or HEAD`, { Allow: 'GET, HEAD' });
      return;
    }
    const url = new URL(request.url, `http://${HOST}`);
    if (url.pathname === '/api/models') {
      sendJson(response, { models: await listModels(modelsDir) });
      return;
    }
    if (url.pathname === '/api/samples') {
      sendJson(response, { samples: await listSamples(roots) });
      return;
    }
    if (url.pathname === '/favicon.ico') {
      response.writeHead(204, ISOLATION_HEADERS);
      response.end();
      return;
    }
    const file = await resolveRequestPath(roots, url.pathname);
    if (!file) {
      sendText(response, 404, `not found: ${url.pathname}`);
      return;
    }
    if (file.startsWith(packageDir) && /\.m?js$/.test(file)) {
      await sendModule(request, response, file, nodeModulesDir);
      return;
    }
    await sendFile(request, response, file);
  };
}

// Starts the server on 127.0.0.1 and resolves to { server, port, url, close() }.
export async function startServer(options = {}) {
  const handle = createHandler(options);
  const server = http.createServer((request, response) => {
    handle(request, response).catch((error) => {
      console.error(`server: ${request.method} ${request.url} failed: ${error.stack ?? error}`);
      if (!response.headersSent) {
        sendText(response, 500, 'internal server error');
      } else {
        response.destroy();
      }
    });
  });
  const port = options.port ?? DEFAULT_PORT;
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, HOST, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const actualPort = server.address().port;
  return {
    server,
    port: actualPort,
    url: `http://${HOST}:${actualPort}/`,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections?.();
        server.close(() => resolve());
      }),
  };
}

async function main() {
  const portText = process.env.PORT ?? String(DEFAULT_PORT);
  const port = Number(portText);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    console.error(`server: invalid PORT '${portText}', expected an integer from 0 to 65535`);
    process.exitCode = 2;
    return;
  }
  let running;
  try {
    running = await startServer({ port, distDir: process.env.SQ_DIST_DIR || undefined });
  } catch (error) {
    const hint = error.code === 'EADDRINUSE' ? `; port ${port} is in use, set PORT to another port` : '';
    console.error(`server: cannot listen on ${HOST}:${port}: ${error.message}${hint}`);
    process.exitCode = 1;
    return;
  }
  console.log(`spinquant demo: ${running.url}  (calibration: ${running.url}calibrate.html)`);
  console.log('server: serving web/, js/, dist/, models/ and the shared sample texts; Ctrl+C stops it');
  const stop = (signal) => {
    console.log(`server: ${signal} received, stopping`);
    running.close().then(() => process.exit(0));
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  main();
}
