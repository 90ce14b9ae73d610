// Turning every kind of model source into one shape: an async iterable of byte chunks with the
// total size when it is known. Sources: a URL (string or URL object), a Response, a
// ReadableStream, a Blob or File, an ArrayBuffer or typed array, and under Node.js a file path
// or a Hugging Face folder. No source is read into one JavaScript buffer: chunks are consumed
// one at a time, and a chunk may be reused by the source after the consumer asked for the next.
import { ErrorCode, SpinquantError, abortError, describeValue, throwIfAborted } from './errors.js';
import { openHttp } from './http.js';

const SLICE_BYTES = 1 << 20;
const CACHE_KINDS = ['cache-api', 'opfs', 'none'];

/** Reads a ReadableStream chunk by chunk; an abort cancels the stream even while it stalls. */
export async function* readStream(stream, signal, what) {
  const reader = stream.getReader();
  let finished = false;
  let onAbort;
  const aborted = new Promise((resolve, reject) => {
    onAbort = () => reject(abortError(signal, what));
    if (signal?.aborted) onAbort();
    else signal?.addEventListener('abort', onAbort, { once: true });
  });
  aborted.catch(() => {});
  try {
    for (;;) {
      const { done, value } = await Promise.race([reader.read(), aborted]);
      if (done) {
        finished = true;
        return;
      }
      yield toBytes(value, what);
    }
  } finally {
    signal?.removeEventListener('abort', onAbort);
    if (!finished) await reader.cancel().catch(() => {});
    reader.releaseLock();
  }
}

function toBytes(value, what) {
  if (value instanceof Uint8Array) return value;
  if (ArrayBuffer.isView(value)) return new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
  if (value instanceof ArrayBuffer) return new Uint8Array(value);
  throw new SpinquantError(ErrorCode.INVALID_ARG, `${what}: the stream produced a ${typeof value} chunk, expected Uint8Array chunks`);
}

function* sliceBytes(bytes) {
  for (let offset = 0; offset < bytes.length; offset += SLICE_BYTES) {
    yield bytes.subarray(offset, offset + SLICE_BYTES);
  }
}

// Blob.stream() would do, but slices keep at most one chunk in memory in every browser.
async function* readBlob(blob, signal, what) {
  for (let offset = 0; offset < blob.size; offset += SLICE_BYTES) {
    throwIfAborted(signal, what);
    yield new Uint8Array(await blob.slice(offset, offset + SLICE_BYTES).arrayBuffer());
  }
}

function isUrlObject(value) {
  return typeof URL === 'function' && value instanceof URL;
}

function describe(source) {
  if (typeof source === 'string') return source;
  if (isUrlObject(source)) return source.href;
  if (typeof Response === 'function' && source instanceof Response) return source.url || 'the Response';
  if (typeof File === 'function' && source instanceof File) return source.name;
  if (typeof Blob === 'function' && source instanceof Blob) return 'the Blob';
  if (typeof ReadableStream === 'function' && source instanceof ReadableStream) return 'the ReadableStream';
  return 'the bytes';
}

export function validateCacheOption(cache) {
  if (cache !== undefined && !CACHE_KINDS.includes(cache)) {
    throw new SpinquantError(ErrorCode.INVALID_ARG, `invalid cache option ${describeValue(cache)}, expected ${CACHE_KINDS.map((kind) => `'${kind}'`).join(', ')}`);
  }
}

// Wraps a download so that its chunks also go to a cache writer. The entry is committed only by
// finish(true), after the model loaded, so a file the engine rejects is not kept.
function writeThrough(opened, writer) {
  let writing = writer;
  async function* chunks() {
    for await (const chunk of opened.chunks) {
      if (writing) {
        try {
          await writing.write(chunk);
        } catch {
          // A full or unavailable cache only costs the caching.
          await writing.abort().catch(() => {});
          writing = null;
        }
      }
      yield chunk;
    }
  }
  return {
    ...opened,
    chunks: chunks(),
    async finish(success) {
      if (!writing) return;
      const current = writing;
      writing = null;
      if (success) await current.commit().catch(() => current.abort().catch(() => {}));
      else await current.abort().catch(() => {});
    },
  };
}

async function openUrl(url, options) {
  const { platform, signal, cache = platform.defaultCache, onRetry } = options;
  const href = isUrlObject(url) ? url.href : new URL(url, globalThis.location?.href).href;
  const store = cache === 'none' ? undefined : platform.caches[cache];
  if (store?.available()) {
    const hit = await store.lookup(href).catch(() => null);
    if (hit) {
      return { kind: 'file', totalBytes: hit.totalBytes, phase: 'cache', description: href, chunks: readStream(hit.body, signal, `reading ${href} from the cache`), cancel: () => hit.body.cancel().catch(() => {}) };
    }
  }
  const opened = await openHttp(href, { signal, onRetry });
  const file = { kind: 'file', totalBytes: opened.totalBytes, phase: 'download', description: href, chunks: opened.chunks, cancel: opened.cancel };
  if (!store?.available()) return file;
  const writer = await store.createWriter(href, opened.totalBytes).catch(() => null);
  return writer ? writeThrough(file, writer) : file;
}

function openResponse(response, description, signal) {
  if (!response.ok) throw new SpinquantError(ErrorCode.NETWORK, `${description} has HTTP status ${response.status}`);
  if (response.bodyUsed || !response.body) {
    throw new SpinquantError(ErrorCode.INVALID_ARG, `the body of ${description} was already read or is empty`);
  }
  const length = Number(response.headers.get('content-length'));
  const encoded = (response.headers.get('content-encoding') ?? 'identity') !== 'identity';
  const known = response.headers.has('content-length') && !encoded && Number.isSafeInteger(length);
  return {
    kind: 'file',
    totalBytes: known ? length : null,
    phase: 'download',
    description,
    chunks: readStream(response.body, signal, `reading ${description}`),
    cancel: () => response.body.cancel().catch(() => {}),
  };
}

function isBytes(source) {
  const shared = typeof SharedArrayBuffer === 'function' && source instanceof SharedArrayBuffer;
  return source instanceof ArrayBuffer || shared || ArrayBuffer.isView(source);
}

/**
 * Opens source. Returns { kind: 'file', totalBytes, phase, description, chunks, cancel,
 * finish? } or, for a folder under Node.js, { kind: 'directory', path }.
 * phase is 'download', 'cache' or 'read'. options.totalBytes gives the size of a stream.
 */
export async function openSource(source, options) {
  const { platform, signal, what = 'the model' } = options;
  throwIfAborted(signal, `loading ${what}`);
  if (source === null || source === undefined) {
    throw new SpinquantError(ErrorCode.INVALID_ARG, `${what} is missing: pass a URL, a Response, a ReadableStream, a Blob, the bytes or (Node.js) a file path`);
  }
  const description = describe(source);

  if (typeof source === 'string' && platform.isPathSource(source)) {
    return { description, ...(await platform.openPath(source, { signal })) };
  }
  const fileUrl = typeof source === 'string' && /^file:/i.test(source) ? new URL(source) : source;
  if (isUrlObject(fileUrl) && fileUrl.protocol === 'file:' && platform.filePathOf) {
    return { description, ...(await platform.openPath(platform.filePathOf(fileUrl), { signal })) };
  }
  if (typeof source === 'string' || isUrlObject(source)) {
    return openUrl(source, options);
  }

  if (typeof Response === 'function' && source instanceof Response) {
    return openResponse(source, description, signal);
  }
  const file = { kind: 'file', phase: 'read', description, cancel: () => {} };
  if (typeof ReadableStream === 'function' && source instanceof ReadableStream) {
    return { ...file, totalBytes: options.totalBytes ?? null, chunks: readStream(source, signal, `reading ${description}`), cancel: () => source.cancel().catch(() => {}) };
  }
  if (typeof Blob === 'function' && source instanceof Blob) {
    return { ...file, totalBytes: source.size, chunks: readBlob(source, signal, `reading ${description}`) };
  }
  if (isBytes(source)) {
    const bytes = ArrayBuffer.isView(source) ? new Uint8Array(source.buffer, source.byteOffset, source.byteLength) : new Uint8Array(source);
    return { ...file, totalBytes: bytes.length, chunks: sliceBytes(bytes) };
  }
  const type = Object.prototype.toString.call(source).slice(8, -1);
  throw new SpinquantError(ErrorCode.INVALID_ARG, `cannot load ${what} from a value of type ${type}; pass a URL, a Response, a ReadableStream, a Blob, an ArrayBuffer or Uint8Array, or (Node.js) a file path`);
}

/** Reads a small source (a tokenizer file) whole; rejects more than maxBytes. */
export async function readSmallSource(source, options, maxBytes) {
  const opened = await openSource(source, options);
  if (opened.kind !== 'file') {
    throw new SpinquantError(ErrorCode.INVALID_ARG, `${options.what} is a folder, expected a file`);
  }
  if (opened.totalBytes !== null && opened.totalBytes > maxBytes) {
    await opened.cancel();
    throw new SpinquantError(ErrorCode.INVALID_ARG, `${options.what} has ${opened.totalBytes} bytes, more than the ${maxBytes} a tokenizer file may have`);
  }
  const parts = [];
  let length = 0;
  for await (const chunk of opened.chunks) {
    length += chunk.length;
    if (length > maxBytes) {
      throw new SpinquantError(ErrorCode.INVALID_ARG, `${options.what} has more than the ${maxBytes} bytes a tokenizer file may have`);
    }
    parts.push(chunk.slice());
  }
  const bytes = new Uint8Array(length);
  let offset = 0;
  for (const part of parts) {
    bytes.set(part, offset);
    offset += part.length;
  }
  await opened.finish?.(true);
  return bytes;
}
