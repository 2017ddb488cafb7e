// Vite serves the demo (demo/: the training, bench and results pages, with the embedded MNIST as /mnist.idx.gz);
// Vitest runs the tests (test/, the browser tests in test/e2e/ included), one process per file since Dawn is native.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import type { Plugin } from 'vite';
import { defineConfig } from 'vitest/config';

/**
 * The embedded MNIST digits as one gzipped ubyte IDX [10000, 785] (label, then 784 pixels): the binary cache
 * src/data/mnist.ts keeps in node_modules/.cache/wgnn (made on first use), served in dev and emitted by the build.
 */
function mnistIdx(): Plugin {
  let bytes: Promise<Buffer> | undefined;
  const load = () =>
    (bytes ??= import('./src/data/mnist.js').then(({ loadMnist }) => gzipSync(readFileSync(loadMnist().cachePath))));
  return {
    name: 'wgnn-mnist-idx',
    configureServer(server) {
      server.middlewares.use('/mnist.idx.gz', (_req, res, next) => {
        load().then((b) => {
          res.setHeader('Content-Type', 'application/octet-stream');
          res.end(b);
        }, next);
      });
    },
    async generateBundle() {
      this.emitFile({ type: 'asset', fileName: 'mnist.idx.gz', source: await load() });
    },
  };
}

const demo = (page: string) => fileURLToPath(new URL(`demo/${page}`, import.meta.url));

export default defineConfig({
  root: 'demo',
  plugins: [mnistIdx()],
  build: {
    outDir: '../dist/demo',
    emptyOutDir: true,
    target: 'es2022',
    rolldownOptions: { input: { index: demo('index.html'), bench: demo('bench.html'), results: demo('results.html') } },
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
