// Opens wgnn for a demo page: `init()`'s choice (WebGPU on a GPU; the WASM backend without WebGPU or on a software
// adapter; else the CPU reference backend), or the one `?backend=webgpu|wasm|cpu` in the page's address asks for; the
// header shows which, and a banner says when it is not the GPU.
import * as wg from '../src/index.js';

const BACKENDS = ['auto', 'webgpu', 'wasm', 'cpu'] as const;

export async function openBackend(): Promise<wg.Backend> {
  const asked = new URLSearchParams(location.search).get('backend') ?? 'auto';
  const backend = BACKENDS.find((b) => b === asked);
  if (!backend) throw new Error(`?backend=${asked}: expected one of ${BACKENDS.join(', ')}`);
  const b = await wg.init({ backend });
  const status = document.getElementById('backend')!;
  status.textContent = `backend ${b.name} · ${b.description}`;
  status.dataset.backend = b.name;
  const banner = document.getElementById('banner')!;
  if (b.name === 'cpu') {
    banner.hidden = false;
    banner.textContent =
      backend === 'cpu'
        ? 'On the CPU reference backend, as ?backend=cpu asks (much slower).'
        : 'No WebGPU adapter in this browser: wgnn runs on its CPU reference backend (much slower). ' +
          'For the GPU, use a browser with WebGPU enabled (a recent Chrome, Edge, Safari or Firefox).';
  } else if (b.name === 'wasm') {
    const threads = (b as { threads?: number }).threads ?? 1; // WasmBackend's, not in the Backend contract
    banner.hidden = false;
    banner.textContent =
      `${backend === 'wasm' ? 'As ?backend=wasm asks' : 'No WebGPU on a GPU here'}: training on the WASM backend ` +
      `(${threads} thread${threads > 1 ? 's' : ''}).` +
      (self.crossOriginIsolated
        ? ''
        : ' Single-threaded: page not cross-origin isolated (serve it with the COOP/COEP headers, see the README).');
  }
  return b;
}

/** Shows an error in the banner (and the console) instead of leaving the page half-working. */
export function showError(e: unknown): void {
  const banner = document.getElementById('banner')!;
  banner.hidden = false;
  banner.className = 'banner error';
  banner.textContent = `Error: ${e instanceof Error ? e.message : String(e)}`;
  console.error(e);
}

/**
 * The adapter's description when WebGPU runs on a software (CPU) implementation of it, SwiftShader, llvmpipe or
 * lavapipe (the backend's own test of the adapter's info, and its name here); else undefined.
 */
export function softwareAdapter(b: wg.Backend): string | undefined {
  if (b.name !== 'webgpu') return undefined;
  const soft = (b instanceof wg.WebGpuBackend && b.software) || /swiftshader|llvmpipe|lavapipe/i.test(b.description);
  return soft ? b.description : undefined;
}
