// Chromium for the benchmarks and the browser tests (test/e2e/browser.ts): Debian's build, WebGPU through its bundled
// SwiftShader on http://localhost pages, no calls home; and a page of bench/ built with Vite and served on localhost.
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type BrowserContext } from 'playwright';
import { build, preview, type PreviewServer } from 'vite';

/** The Chromium Playwright drives: Debian's (`apt-get install chromium`); WGNN_CHROMIUM overrides the path. */
export const CHROMIUM = process.env.WGNN_CHROMIUM ?? '/usr/bin/chromium';
/** Its flags: WebGPU on localhost pages (SwiftShader without a GPU); no network (this machine's is closed). */
export const CHROMIUM_ARGS = [
  '--enable-unsafe-webgpu',
  '--no-sandbox',
  '--disable-background-networking',
  '--disable-component-update',
  '--no-first-run',
  '--disable-sync',
];

// The repository: this file runs from bench/ (Vitest) or compiled, from dist/bench/.
const HERE = fileURLToPath(new URL('.', import.meta.url));
const ROOT = join(HERE, /[/\\]dist[/\\]bench[/\\]?$/.test(HERE) ? '../..' : '..');

/** A built page of bench/ served on localhost. */
export interface ServedPage {
  url: string;
  close(): Promise<void>;
}

/** Builds of this process, by page: one build serves every case of a benchmark run. */
const built = new Map<string, Promise<unknown>>();

/**
 * Serves bench/`page`.html (and what it imports) on localhost, built with Vite into dist/bench-pages/`page` (once per
 * process): a page on its own, without the demo's pages and plugins. The caller closes it.
 */
export async function servePage(page: string): Promise<ServedPage> {
  const root = join(ROOT, 'bench');
  const outDir = join(ROOT, 'dist', 'bench-pages', page);
  const input = join(root, `${page}.html`);
  if (!built.has(page)) {
    const b = build({
      root,
      configFile: false,
      logLevel: 'error',
      build: { outDir, emptyOutDir: true, target: 'es2022', rolldownOptions: { input } },
    });
    built.set(page, b);
    b.catch(() => built.delete(page)); // a failed build is tried again by the next caller
  }
  await built.get(page);
  const server: PreviewServer = await preview({
    root,
    configFile: false,
    logLevel: 'error',
    build: { outDir },
    preview: { host: 'localhost', port: 0 },
  });
  const local = server.resolvedUrls?.local[0];
  if (!local) {
    await server.close();
    throw new Error('vite preview gave no local URL');
  }
  return { url: `${local.replace(/\/?$/, '/')}${page}.html`, close: () => server.close() };
}

/**
 * A fresh Chromium process on the profile in `userDataDir` (its disk caches, the GPU's included, live there), with
 * `args` added to CHROMIUM_ARGS. Throws, naming the path, where Chromium cannot start.
 */
export async function launchProfile(userDataDir: string, args: string[] = []): Promise<BrowserContext> {
  try {
    return await chromium.launchPersistentContext(userDataDir, {
      executablePath: CHROMIUM,
      headless: true,
      args: [...CHROMIUM_ARGS, ...args],
    });
  } catch (e) {
    throw new Error(
      `cannot launch Chromium at ${CHROMIUM} (apt-get install chromium; WGNN_CHROMIUM overrides the path): ${(e as Error).message}`,
    );
  }
}
