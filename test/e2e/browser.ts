// What the browser tests share: build demo/ with Vite, serve the build on localhost, launch Debian's Chromium
// (WebGPU through its SwiftShader) with Playwright, and open pages that record every error. Each test file builds
// into its own folder (dist/e2e/<name>), since Vitest may run the files at the same time.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright';
import { build, preview, type PreviewServer } from 'vite';
import { CHROMIUM, CHROMIUM_ARGS as ARGS } from '../../bench/browser.js';

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));
/** Screenshots. */
export const SHOTS = join(ROOT, 'test-results');
const DEMO = join(ROOT, 'demo');

/** A page that records console errors, page errors and failed requests: each test ends by expecting none. */
export interface Watched {
  context: BrowserContext;
  page: Page;
  errors: string[];
}

/** How a page is opened. */
export interface OpenOptions {
  /**
   * false: the server's COOP/COEP headers are taken off every response (as a plain static server would serve it), so
   * the page is not cross-origin isolated and has no SharedArrayBuffer. Default true (vite.config.ts sends them).
   */
  isolated?: boolean;
}

/** An init script that hides WebGPU (`navigator.gpu` undefined), as in a browser without it. */
export const NO_WEBGPU = (): void => {
  Object.defineProperty(Navigator.prototype, 'gpu', { get: () => undefined });
};

export interface Demo {
  /** Opens `path` of the demo in a fresh context; `init` runs before the page's scripts. */
  open(path: string, init?: () => void, opts?: OpenOptions): Promise<Watched>;
  close(): Promise<void>;
}

/** Builds the demo into dist/e2e/`name`, serves it and launches Chromium. Throws, never skips, without Chromium. */
export async function startDemo(name: string): Promise<Demo> {
  mkdirSync(SHOTS, { recursive: true });
  const configFile = join(ROOT, 'vite.config.ts');
  const outDir = join(ROOT, 'dist', 'e2e', name);
  await build({ root: DEMO, configFile, logLevel: 'error', build: { outDir } });
  const server: PreviewServer = await preview({
    root: DEMO,
    configFile,
    logLevel: 'error',
    build: { outDir },
    preview: { host: 'localhost', port: 0 },
  });
  const local = server.resolvedUrls?.local[0];
  if (!local) throw new Error('vite preview gave no local URL');
  const url = local.replace(/\/?$/, '/');
  let browser: Browser;
  try {
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ARGS });
  } catch (e) {
    await server.close();
    throw new Error(
      `cannot launch Chromium at ${CHROMIUM} (apt-get install chromium; WGNN_CHROMIUM overrides the path): ${(e as Error).message}`,
    );
  }
  return {
    async open(path, init, opts = {}) {
      const context = await browser.newContext({ viewport: { width: 1280, height: 980 } });
      if (init) await context.addInitScript(init);
      if (opts.isolated === false) {
        await context.route('**/*', async (route) => {
          const response = await route.fetch();
          const headers = response.headers();
          delete headers['cross-origin-opener-policy'];
          delete headers['cross-origin-embedder-policy'];
          await route.fulfill({ response, headers });
        });
      }
      const page = await context.newPage();
      const errors: string[] = [];
      page.on('console', (m) => m.type() === 'error' && errors.push(`console: ${m.text()}`));
      page.on('pageerror', (e) => errors.push(`page error: ${e.message}`));
      page.on('requestfailed', (r) => errors.push(`request failed: ${r.url()} ${r.failure()?.errorText ?? ''}`));
      page.on('response', (r) => r.status() >= 400 && errors.push(`HTTP ${r.status()}: ${r.url()}`));
      await page.goto(url + path);
      return { context, page, errors };
    },
    async close() {
      await browser.close();
      await server.close();
    },
  };
}
