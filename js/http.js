// HTTP downloads that resume: when the connection drops or the body ends before Content-Length
// bytes, the download continues with a Range request from the first missing byte. The resumed
// response must carry the first response's ETag (or Last-Modified) and total size, so a file
// that changed on the server in between is detected instead of being spliced together from two
// versions. No If-Range header is sent, because it is not CORS-safelisted and would make
// cross-origin downloads depend on a preflight request.
import { ErrorCode, SpinquantError, abortError } from './errors.js';

const DEFAULT_MAX_RETRIES = 5;
const RETRY_DELAYS_MS = [250, 500, 1000, 2000, 4000];

function delay(milliseconds, signal) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(done, milliseconds);
    function done() {
      signal?.removeEventListener('abort', aborted);
      resolve();
    }
    function aborted() {
      clearTimeout(timer);
      reject(abortError(signal, 'the download'));
    }
    signal?.addEventListener('abort', aborted, { once: true });
  });
}

function isAbort(error, signal) {
  return signal?.aborted || error?.name === 'AbortError' || error?.code === ErrorCode.ABORTED;
}

// Content-Length is the transferred size only without a content coding; fetch decodes gzip
// and friends, so then the decoded size is unknown.
function contentLength(response) {
  const encoding = response.headers.get('content-encoding');
  if (encoding && encoding !== 'identity') return null;
  const length = Number(response.headers.get('content-length'));
  return response.headers.has('content-length') && Number.isSafeInteger(length) && length >= 0 ? length : null;
}

function validatorOf(response) {
  const etag = response.headers.get('etag');
  if (etag && !etag.startsWith('W/')) return etag;
  return response.headers.get('last-modified');
}

async function request(url, headers, signal, fetchFunction) {
  try {
    return await fetchFunction(url, { headers, signal });
  } catch (error) {
    if (isAbort(error, signal)) throw abortError(signal, `the download of ${url}`);
    throw new SpinquantError(ErrorCode.NETWORK, `cannot download ${url}: ${error.cause?.message ?? error.message}`, { cause: error });
  }
}

/**
 * Starts downloading url. Returns { totalBytes, chunks, cancel } once the response headers
 * arrived; chunks is an async iterable of Uint8Array that resumes after a dropped connection
 * up to maxRetries times in a row without progress. onRetry({ receivedBytes, attempt, error })
 * is called before each resumed request.
 */
export async function openHttp(url, { signal, maxRetries = DEFAULT_MAX_RETRIES, onRetry, fetchFunction = globalThis.fetch } = {}) {
  const href = url instanceof URL ? url.href : String(url);
  const first = await request(href, {}, signal, fetchFunction);
  if (!first.ok) {
    await first.body?.cancel().catch(() => {});
    throw new SpinquantError(ErrorCode.NETWORK, `cannot download ${href}: HTTP ${first.status} ${first.statusText}`.trim());
  }
  const totalBytes = contentLength(first);
  const validator = validatorOf(first);
  let current = first;
  let reader = null;

  async function resume(receivedBytes) {
    const response = await request(href, { Range: `bytes=${receivedBytes}-` }, signal, fetchFunction);
    const changed = validator !== null && validatorOf(response) !== validator;
    if (response.status === 206) {
      // A cross-origin server that does not list Content-Range in Access-Control-Expose-Headers
      // hides it; then the body length must be the missing rest of the file.
      const header = response.headers.get('content-range');
      const restLength = contentLength(response) === totalBytes - receivedBytes;
      const range = header === null && restLength ? [null, String(receivedBytes), '*'] : /^bytes (\d+)-\d+\/(\d+|\*)$/.exec(header ?? '');
      if (!range || Number(range[1]) !== receivedBytes) {
        await response.body?.cancel().catch(() => {});
        throw new SpinquantError(ErrorCode.NETWORK, `cannot resume ${href}: the server responded to the request for bytes ${receivedBytes}- with Content-Range ${JSON.stringify(response.headers.get('content-range'))}`);
      }
      if (changed || (range[2] !== '*' && Number(range[2]) !== totalBytes)) {
        await response.body?.cancel().catch(() => {});
        throw new SpinquantError(ErrorCode.NETWORK, `cannot resume ${href}: the file changed on the server during the download; load it again`);
      }
      return { response, skip: 0 };
    }
    if (response.status === 200) {
      // The server ignored Range. Unless the file changed, skip what already arrived.
      if (changed || contentLength(response) !== totalBytes) {
        await response.body?.cancel().catch(() => {});
        throw new SpinquantError(ErrorCode.NETWORK, `cannot resume ${href}: the file changed on the server during the download; load it again`);
      }
      return { response, skip: receivedBytes };
    }
    await response.body?.cancel().catch(() => {});
    throw new SpinquantError(ErrorCode.NETWORK, `cannot resume ${href} at byte ${receivedBytes}: HTTP ${response.status} ${response.statusText}`.trim());
  }

  async function* chunks() {
    let received = 0;
    let failures = 0;
    let skip = 0;
    for (;;) {
      let failure = null;
      try {
        reader = current.body.getReader();
        for (;;) {
          const { done, value } = await reader.read();
          if (done) break;
          let chunk = value;
          if (skip > 0) {
            const dropped = Math.min(skip, chunk.length);
            skip -= dropped;
            chunk = chunk.subarray(dropped);
            if (chunk.length === 0) continue;
          }
          if (totalBytes !== null && received + chunk.length > totalBytes) {
            throw new SpinquantError(ErrorCode.NETWORK, `the server sent more than the ${totalBytes} bytes of Content-Length for ${href}`);
          }
          received += chunk.length;
          failures = 0;
          yield chunk;
        }
        if (totalBytes === null || received === totalBytes) return;
        failure = new Error(`the connection closed after ${received} of ${totalBytes} bytes`);
      } catch (error) {
        if (isAbort(error, signal)) throw abortError(signal, `the download of ${href}`);
        if (error instanceof SpinquantError) throw error;
        failure = error;
      } finally {
        // Closes the connection when the consumer stopped early; harmless after the end.
        await reader?.cancel().catch(() => {});
        reader = null;
      }

      // Without Content-Length there is no way to tell where the file ends, so no resuming.
      failures += 1;
      if (totalBytes === null || failures > maxRetries) {
        const tries = totalBytes === null ? 'the server sent no Content-Length, so it cannot be resumed' : `${maxRetries} resumed requests failed`;
        throw new SpinquantError(ErrorCode.NETWORK, `the download of ${href} failed after ${received} bytes (${failure.message}); ${tries}`, { cause: failure });
      }
      onRetry?.({ receivedBytes: received, attempt: failures, error: failure });
      await delay(RETRY_DELAYS_MS[Math.min(failures - 1, RETRY_DELAYS_MS.length - 1)], signal);
      ({ response: current, skip } = await resume(received));
    }
  }

  return {
    totalBytes,
    chunks: chunks(),
    cancel: async () => {
      await (reader ? reader.cancel() : current.body?.cancel())?.catch(() => {});
    },
  };
}
