// The benchmark's WebGPU entry point in Node: one Dawn instance for wgnn and both peers (so all three run on the same
// adapter), published as `navigator.gpu` with the `userAgent` and `hardwareConcurrency` that TF.js and jax-js read.
import { availableParallelism } from 'node:os';
import type { AdapterInfo } from '../src/internal.js';

// NOTE: held for the life of the process: Dawn's instance must outlive every device made from it (src/platform/gpu.ts).
let dawn: GPU | undefined;

/**
 * Makes `navigator.gpu` a Dawn instance (unless a browser already has one) and returns it; wgnn's getGPU() then uses
 * it too. Dawn quantizes timestamp queries to 2^16 ns by default (a fingerprinting guard meant for browsers), too
 * coarse for a pass of a few microseconds, so this instance turns that off.
 */
export async function installNavigator(): Promise<GPU | undefined> {
  const nav = (globalThis as { navigator?: { gpu?: GPU } }).navigator;
  if (nav?.gpu) return nav.gpu;
  if (!dawn) {
    const pkg = 'webgpu'; // a variable specifier: bundlers leave the native module alone
    const m = (await import(/* @vite-ignore */ pkg)) as { create(flags: string[]): GPU; globals: object };
    Object.assign(globalThis, m.globals);
    dawn = m.create(['disable-dawn-features=timestamp_quantization']);
  }
  Object.defineProperty(globalThis, 'navigator', {
    value: {
      ...nav,
      gpu: dawn,
      userAgent: `Node.js/${process.versions.node}`,
      hardwareConcurrency: availableParallelism(),
    },
    configurable: true,
    writable: true,
  });
  return dawn;
}

/** Mesa's lavapipe (llvmpipe), SwiftShader and other CPU implementations of WebGPU. */
export function isSoftwareAdapter(info: AdapterInfo): boolean {
  return /software|llvmpipe|lavapipe|swiftshader|cpu/i.test(`${info.architecture} ${info.device} ${info.description}`);
}

/** A file-name slug for an adapter: 'nvidia-hopper-...' or 'mesa-software-llvmpipe-...'. */
export function adapterSlug(info: AdapterInfo): string {
  const raw = [info.vendor, info.architecture, info.device || info.description].filter(Boolean).join('-');
  const slug = raw
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 60)
    .replace(/-+$/, '');
  return slug || 'unknown-adapter';
}
