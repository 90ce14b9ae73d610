// Loading a model into a NativeContext. Each chunk of the source is copied into WebAssembly
// memory and fed to the C stream (wasm/api_stream.c) before the next chunk is read. So at most
// one chunk of the file is in JavaScript memory at a time. The tokenizer file of a llama2.c
// model is small and goes through the in-memory file system whole.
import { ErrorCode, SpinquantError, abortError, throwIfAborted, wrapError } from './errors.js';
import { openSource, readSmallSource, validateCacheOption } from './sources.js';

const MAX_TOKENIZER_BYTES = 64 << 20;

// Memory the engine needs beyond the file's bytes before anything else: the chunk buffer, the
// stack and the tokenizer tables. The check below is a lower bound; a model that passes it can
// still fail later with E_MEMORY when its run state does not fit.
const MEMORY_MARGIN_BYTES = 16 << 20;

function formatBytes(bytes) {
  return bytes >= 1 << 30 ? `${(bytes / (1 << 30)).toFixed(2)} GiB` : `${(bytes / (1 << 20)).toFixed(1)} MiB`;
}

/** Rejects a file that cannot fit in the memory this WebAssembly instance may grow to. */
export function checkFits(native, totalBytes, description) {
  if (totalBytes === null) return;
  const limit = native.heapMax();
  const available = limit - native.heapSize() - MEMORY_MARGIN_BYTES;
  if (totalBytes > available) {
    throw new SpinquantError(ErrorCode.MEMORY, `${description} has ${totalBytes} bytes (${formatBytes(totalBytes)}), more than the ${formatBytes(Math.max(available, 0))} of WebAssembly memory left (this build grows to at most ${formatBytes(limit)}); use a smaller or more strongly quantized model`);
  }
}

async function writeTokenizer(native, platform, tokenizer, signal, cache) {
  if (tokenizer === undefined || tokenizer === null) return '';
  const bytes = await readSmallSource(tokenizer, { platform, signal, cache, what: 'the tokenizer' }, MAX_TOKENIZER_BYTES);
  const path = native.temporaryPath('tokenizer.bin');
  native.writeFile(path, bytes);
  return path;
}

/**
 * Loads source (and options.tokenizer) into native. options: onProgress, signal, cache,
 * keepSource (keep the file's bytes for sq_api_export_spq). Returns { description }.
 */
export async function loadInto(native, platform, source, options = {}) {
  const { onProgress, signal, cache, keepSource = false } = options;
  validateCacheOption(cache);
  const report = (event) => onProgress?.(event);
  const tokenizerPath = await writeTokenizer(native, platform, options.tokenizer, signal, cache);
  try {
    const opened = await openSource(source, { platform, signal, cache, what: 'the model', totalBytes: options.totalBytes });
    if (opened.kind === 'directory') {
      return loadDirectory(native, platform, opened, tokenizerPath, report, signal);
    }
    await streamFile(native, opened, tokenizerPath, keepSource, report, signal);
    return { description: opened.description };
  } finally {
    if (tokenizerPath) native.removeFile(tokenizerPath);
  }
}

async function loadDirectory(native, platform, opened, tokenizerPath, report, signal) {
  report({ phase: 'prepare', loadedBytes: 0, totalBytes: null });
  const guestPath = platform.mountDirectory(native.module, opened.path, native.temporaryPath('folder'));
  try {
    native.modelLoad(guestPath, tokenizerPath, `cannot load ${opened.path}`);
  } catch (error) {
    // Messages name the folder by its path in the WebAssembly file system; show the host's path.
    error.message = error.message.replaceAll(guestPath, opened.path);
    throw error;
  } finally {
    platform.unmountDirectory(native.module, guestPath);
  }
  throwIfAborted(signal, `loading ${opened.path}`);
  report({ phase: 'ready', loadedBytes: 0, totalBytes: null });
  return { description: opened.path };
}

async function streamFile(native, opened, tokenizerPath, keepSource, report, signal) {
  const { totalBytes, description } = opened;
  let loadedBytes = 0;
  let success = false;
  try {
    checkFits(native, totalBytes, description);
    native.streamBegin(totalBytes);
    report({ phase: opened.phase, loadedBytes, totalBytes });
    for await (const chunk of opened.chunks) {
      throwIfAborted(signal, `loading ${description}`);
      native.streamFeed(chunk, `cannot load ${description}`);
      loadedBytes += chunk.length;
      report({ phase: opened.phase, loadedBytes, totalBytes });
    }
    throwIfAborted(signal, `loading ${description}`);
    report({ phase: 'prepare', loadedBytes, totalBytes: totalBytes ?? loadedBytes });
    native.streamEnd(tokenizerPath, keepSource, `cannot load ${description}`);
    if (signal?.aborted) throw abortError(signal, `loading ${description}`);
    success = true;
    report({ phase: 'ready', loadedBytes, totalBytes: totalBytes ?? loadedBytes });
  } catch (error) {
    native.streamAbort();
    await opened.cancel?.();
    throw wrapError(error, ErrorCode.IO, `cannot read ${description}`);
  } finally {
    await opened.finish?.(success);
  }
}
