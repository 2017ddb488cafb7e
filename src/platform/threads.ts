// Threads for the WASM backend: Node's `worker_threads` or the browser's Web Workers, started from an inline
// source (no worker file to locate, so bundlers have nothing to resolve), and what this platform allows with them.

/** A started worker: messages both ways, and a way to stop it. */
export interface ThreadWorker {
  post(message: unknown): void;
  /** Calls `f` with every message the worker posts. */
  onMessage(f: (message: unknown) => void): void;
  onError(f: (error: unknown) => void): void;
  /** Stops the worker. */
  terminate(): void;
}

const isNode = (): boolean => typeof process !== 'undefined' && !!process.versions?.node;

/**
 * Logical cores the platform reports (1 when it does not say): in Node `os.availableParallelism()` (Node 20 has no
 * `navigator`), in a browser `navigator.hardwareConcurrency`.
 */
export async function hardwareThreads(): Promise<number> {
  if (isNode()) {
    const mod = 'node:os'; // a variable specifier keeps browser bundlers from resolving the Node module
    const os = (await import(/* @vite-ignore */ mod)) as typeof import('node:os');
    return Math.max(1, os.availableParallelism());
  }
  const nav = (globalThis as { navigator?: { hardwareConcurrency?: number } }).navigator;
  return Math.max(1, nav?.hardwareConcurrency ?? 1);
}

/**
 * Whether memory can be shared with workers: SharedArrayBuffer exists, and in a browser the page is cross-origin
 * isolated (COOP/COEP headers); without it the WASM backend runs on one thread.
 */
export function canShareMemory(): boolean {
  if (typeof SharedArrayBuffer === 'undefined') return false;
  if (isNode()) return true;
  return (globalThis as { crossOriginIsolated?: boolean }).crossOriginIsolated === true;
}

/** Whether this thread may block in `Atomics.wait` (Node's main thread may; a browser page's main thread may not). */
export function canBlock(): boolean {
  return isNode() || typeof (globalThis as { document?: unknown }).document === 'undefined';
}

/**
 * Starts a worker running `body`, a classic script that sees `post(message)` and `listen(handler)` (handler gets
 * each message's data). Node: `new Worker(src, { eval: true })`, unref'd after its first message; browser: a Blob URL.
 */
export async function spawnWorker(body: string): Promise<ThreadWorker> {
  if (isNode()) {
    // A variable specifier keeps browser bundlers from resolving the Node module.
    const mod = 'node:worker_threads';
    const { Worker } = (await import(/* @vite-ignore */ mod)) as typeof import('node:worker_threads');
    const prelude =
      "const { parentPort } = require('node:worker_threads');\n" +
      'const post = (m) => parentPort.postMessage(m);\n' +
      "const listen = (f) => parentPort.on('message', f);\n";
    const w = new Worker(prelude + body, { eval: true });
    // NOTE: a worker keeps Node alive until its first message (the caller awaits it), then never again: a script
    // that forgot to destroy its backend still exits. A listener added to a worker refs it, so unref after it.
    return {
      post: (m) => w.postMessage(m),
      onMessage: (f) =>
        void w.on('message', (m) => {
          f(m);
          w.unref();
        }),
      onError: (f) => void w.on('error', f),
      terminate: () => void w.terminate(),
    };
  }
  const prelude =
    'const post = (m) => self.postMessage(m);\nconst listen = (f) => { self.onmessage = (e) => f(e.data); };\n';
  const url = URL.createObjectURL(new Blob([prelude + body], { type: 'text/javascript' }));
  const w = new Worker(url);
  return {
    post: (m) => w.postMessage(m),
    onMessage: (f) => w.addEventListener('message', (e) => f(e.data)),
    // An ErrorEvent prints as "[object ErrorEvent]": pass on its message (a CSP refusing blob: workers, a syntax error).
    onError: (f) => w.addEventListener('error', (e) => f(new Error(e.message || 'the worker script did not load'))),
    terminate: () => {
      w.terminate();
      URL.revokeObjectURL(url); // not before: the worker may still be fetching its script
    },
  };
}
