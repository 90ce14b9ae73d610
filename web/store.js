// The calibration runs of this browser, kept in IndexedDB (database spinquant-demo, store runs)
// so a reloaded tab shows the last run and the chat page can load its .spq model. A run is
// { id, started, status, settings, labels, losses, summary, perplexity, rotation, spq, error }
// where rotation and spq are Blobs once learning finished.

const DATABASE = 'spinquant-demo';
const STORE = 'runs';
const VERSION = 1;

function request(operation) {
  return new Promise((resolve, reject) => {
    operation.onsuccess = () => resolve(operation.result);
    operation.onerror = () => reject(operation.error);
  });
}

function openDatabase() {
  const opening = indexedDB.open(DATABASE, VERSION);
  opening.onupgradeneeded = () => {
    opening.result.createObjectStore(STORE, { keyPath: 'id' });
  };
  return request(opening);
}

async function withStore(mode, body) {
  const database = await openDatabase();
  try {
    const transaction = database.transaction(STORE, mode);
    const result = await body(transaction.objectStore(STORE));
    await new Promise((resolve, reject) => {
      transaction.oncomplete = resolve;
      transaction.onerror = () => reject(transaction.error);
      transaction.onabort = () => reject(transaction.error ?? new Error('the IndexedDB transaction was aborted'));
    });
    return result;
  } finally {
    database.close();
  }
}

export function saveRun(run) {
  return withStore('readwrite', (store) => request(store.put(run)));
}

export function getRun(id) {
  return withStore('readonly', (store) => request(store.get(id)));
}

// Returns the most recently started run, or null.
export async function latestRun() {
  const runs = await withStore('readonly', (store) => request(store.getAll()));
  runs.sort((a, b) => b.started - a.started);
  return runs[0] ?? null;
}

// Returns the most recent run that produced a .spq model, or null.
export async function latestModelRun() {
  const runs = await withStore('readonly', (store) => request(store.getAll()));
  runs.sort((a, b) => b.started - a.started);
  return runs.find((run) => run.spq instanceof Blob) ?? null;
}

// Deletes every run but the newest keep, so models do not pile up in the browser's storage.
export async function pruneRuns(keep = 3) {
  const runs = await withStore('readonly', (store) => request(store.getAll()));
  runs.sort((a, b) => b.started - a.started);
  const old = runs.slice(keep);
  if (old.length === 0) return;
  await withStore('readwrite', (store) => Promise.all(old.map((run) => request(store.delete(run.id)))));
}
