// Opens wgnn for a demo page: WebGPU when the browser has an adapter, else the CPU reference backend with a
// banner that says so; the header shows which, and the adapter's name.
import * as wg from '../src/index.js';

export async function openBackend(): Promise<wg.Backend> {
  const b = await wg.init();
  const status = document.getElementById('backend')!;
  status.textContent = `backend ${b.name} · ${b.description}`;
  status.dataset.backend = b.name;
  if (b.name === 'cpu') {
    const banner = document.getElementById('banner')!;
    banner.hidden = false;
    banner.textContent =
      'No WebGPU adapter in this browser: wgnn runs on its CPU reference backend (much slower). ' +
      'For the GPU, use a browser with WebGPU enabled (a recent Chrome, Edge, Safari or Firefox).';
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
