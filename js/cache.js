// Download caches for browsers, keyed by the model's URL:
//   'cache-api'  the Cache API (caches.open), available in secure contexts and workers;
//   'opfs'       the origin private file system (navigator.storage.getDirectory).
// A download is written to the cache while it streams into WebAssembly memory and becomes
// visible only when it completed, so an interrupted download never leaves a partial entry.
// A later load of the same URL reads the cached bytes and does not contact the server.
// NOTE: entries are never revalidated; a model that changes on the server keeps its cached
// bytes until clearCache() removes them.

const CACHE_NAME = 'spinquant-models';
const OPFS_FOLDER = 'spinquant-models';

export const cacheApiStore = {
  name: 'cache-api',

  available: () => typeof globalThis.caches?.open === 'function',

  async lookup(url) {
    const cache = await caches.open(CACHE_NAME);
    const response = await cache.match(url);
    if (!response?.body) return null;
    const length = Number(response.headers.get('content-length'));
    return { totalBytes: Number.isFinite(length) && length > 0 ? length : null, body: response.body };
  },

  // cache.put consumes a stream fed chunk by chunk. Awaiting writer.ready applies backpressure,
  // so chunks do not pile up in memory when the cache writes slower than the network reads.
  async createWriter(url, totalBytes) {
    const cache = await caches.open(CACHE_NAME);
    const { readable, writable } = new TransformStream();
    const headers = { 'content-type': 'application/octet-stream' };
    if (totalBytes !== null) headers['content-length'] = String(totalBytes);
    const stored = cache.put(url, new Response(readable, { headers }));
    stored.catch(() => {});
    const writer = writable.getWriter();
    return {
      async write(chunk) {
        await writer.ready;
        // The chunk is copied because the loader's chunk arrays may be reused.
        writer.write(chunk.slice());
      },
      async commit() {
        await writer.close();
        await stored;
      },
      async abort(reason) {
        await writer.abort(reason).catch(() => {});
        await cache.delete(url).catch(() => {});
      },
    };
  },

  async clear() {
    if (typeof globalThis.caches?.delete === 'function') await caches.delete(CACHE_NAME);
  },
};

async function opfsFolder() {
  const root = await navigator.storage.getDirectory();
  return root.getDirectoryHandle(OPFS_FOLDER, { create: true });
}

// File names are the hex SHA-256 of the URL, which fits any file-name rule.
async function opfsName(url) {
  const digest = await crypto.subtle.digest('SHA-256', new TextEncoder().encode(url));
  return `${[...new Uint8Array(digest)].map((byte) => byte.toString(16).padStart(2, '0')).join('')}.bin`;
}

export const opfsStore = {
  name: 'opfs',

  available: () => typeof globalThis.navigator?.storage?.getDirectory === 'function' && typeof globalThis.crypto?.subtle?.digest === 'function',

  async lookup(url) {
    const folder = await opfsFolder();
    let handle;
    try {
      handle = await folder.getFileHandle(await opfsName(url));
    } catch {
      return null;
    }
    const file = await handle.getFile();
    if (file.size === 0) return null;
    return { totalBytes: file.size, body: file.stream() };
  },

  // createWritable writes to a swap file that replaces the entry only on close().
  async createWriter(url) {
    const folder = await opfsFolder();
    const name = await opfsName(url);
    const handle = await folder.getFileHandle(name, { create: true });
    const writable = await handle.createWritable();
    return {
      write: (chunk) => writable.write(chunk),
      commit: () => writable.close(),
      async abort(reason) {
        await writable.abort(reason).catch(() => {});
        const file = await handle.getFile().catch(() => null);
        if (file?.size === 0) await folder.removeEntry(name).catch(() => {});
      },
    };
  },

  async clear() {
    if (!this.available()) return;
    const root = await navigator.storage.getDirectory();
    await root.removeEntry(OPFS_FOLDER, { recursive: true }).catch(() => {});
  },
};
