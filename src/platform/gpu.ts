// The only code that touches navigator.gpu or the `webgpu` package (Dawn for Node).

// NOTE: Dawn's instance must outlive every device made from it: if it is garbage-collected, the process crashes
// later inside Dawn (futex errors, mutex assertions, segfaults). So there is one, held here for good.
let dawnGPU: GPU | undefined;

/** The WebGPU entry point: `navigator.gpu` in a browser, Dawn's `create()` in Node; undefined if neither exists. */
export async function getGPU(): Promise<GPU | undefined> {
  const nav = (globalThis as { navigator?: { gpu?: GPU } }).navigator;
  if (nav?.gpu) return nav.gpu;
  if (dawnGPU) return dawnGPU;
  if (typeof process !== 'undefined' && process.versions?.node) {
    // A variable specifier keeps browser bundlers from trying to bundle the native module.
    const pkg = 'webgpu';
    const dawn = (await import(/* @vite-ignore */ pkg)) as { create(flags: string[]): GPU; globals: object };
    Object.assign(globalThis, dawn.globals);
    dawnGPU = dawn.create([]);
    return dawnGPU;
  }
  return undefined;
}

const OPTIONAL_FEATURES: GPUFeatureName[] = ['shader-f16', 'subgroups', 'timestamp-query'] as GPUFeatureName[];

// Limits worth raising above the WebGPU defaults (16 KiB workgroup storage, 128 MiB bindings, ...).
const LIMITS = [
  'maxBufferSize',
  'maxStorageBufferBindingSize',
  'maxUniformBufferBindingSize',
  'maxComputeWorkgroupStorageSize',
  'maxComputeInvocationsPerWorkgroup',
  'maxComputeWorkgroupSizeX',
  'maxComputeWorkgroupSizeY',
  'maxComputeWorkgroupSizeZ',
  'maxComputeWorkgroupsPerDimension',
  'maxStorageBuffersPerShaderStage',
  'maxBindGroups',
] as const;

export interface AdapterInfo {
  vendor: string;
  architecture: string;
  device: string;
  description: string;
  /** The sizes a subgroup can take (with the 'subgroups' feature); absent where the implementation does not say. */
  subgroupMinSize?: number;
  subgroupMaxSize?: number;
}

export interface DeviceRequest {
  powerPreference?: GPUPowerPreference;
  /** Use WebGPU's default limits instead of the adapter's (tests of limit handling). */
  defaultLimits?: boolean;
}

export async function openDevice(
  gpu: GPU,
  req: DeviceRequest = {},
): Promise<{ adapter: GPUAdapter; device: GPUDevice; info: AdapterInfo } | undefined> {
  const adapter = await gpu.requestAdapter({ powerPreference: req.powerPreference ?? 'high-performance' });
  if (!adapter) return undefined;
  const requiredFeatures = OPTIONAL_FEATURES.filter((f) => adapter.features.has(f));
  const requiredLimits: Record<string, number> = {};
  if (!req.defaultLimits) for (const k of LIMITS) requiredLimits[k] = adapter.limits[k];
  const device = await adapter.requestDevice({ requiredFeatures, requiredLimits });
  const i = adapter.info;
  const info: AdapterInfo = {
    vendor: i.vendor,
    architecture: i.architecture,
    device: i.device,
    description: i.description,
  };
  const sg = i as { subgroupMinSize?: number; subgroupMaxSize?: number };
  if (sg.subgroupMinSize !== undefined) info.subgroupMinSize = sg.subgroupMinSize;
  if (sg.subgroupMaxSize !== undefined) info.subgroupMaxSize = sg.subgroupMaxSize;
  return { adapter, device, info };
}

/**
 * Whether an adapter is a software (CPU) implementation of WebGPU: it says it is a fallback adapter
 * (`isFallbackAdapter`, in `adapter.info` or on the adapter in older implementations), or its info names Mesa's
 * lavapipe (llvmpipe) or SwiftShader. There, the WASM backend is the faster engine.
 */
export function isSoftwareAdapter(adapter: GPUAdapter): boolean {
  const a = adapter as GPUAdapter & {
    isFallbackAdapter?: boolean;
    info: GPUAdapterInfo & { isFallbackAdapter?: boolean };
  };
  if (a.isFallbackAdapter || a.info.isFallbackAdapter) return true;
  const i = a.info;
  return /llvmpipe|lavapipe|swiftshader/i.test(`${i.vendor} ${i.architecture} ${i.device} ${i.description}`);
}

/** Why `init()`'s auto choice takes the WASM backend; `software`: there is an adapter, a software one. */
export interface WasmReason {
  reason: string;
  software: boolean;
}

/**
 * Why `init()`'s auto choice should take the WASM backend, or undefined where WebGPU (or, in Node without an adapter,
 * the CPU reference) stays the choice. A software adapter ({@link isSoftwareAdapter}: lavapipe, SwiftShader, a
 * fallback adapter), named by its info, anywhere; in a browser also no WebGPU at all (no `navigator.gpu`, or no
 * adapter), since there the WASM backend runs wherever WebAssembly SIMD does.
 */
export async function wasmReason(req: DeviceRequest = {}): Promise<WasmReason | undefined> {
  const browser = typeof process === 'undefined' || !process.versions?.node;
  const gpu = await getGPU();
  if (!gpu) return browser ? { reason: 'this browser has no WebGPU', software: false } : undefined;
  const adapter = await gpu.requestAdapter({ powerPreference: req.powerPreference ?? 'high-performance' });
  if (!adapter) return browser ? { reason: 'this browser has no WebGPU adapter', software: false } : undefined;
  if (!isSoftwareAdapter(adapter)) return undefined;
  const i = adapter.info;
  const name = [i.vendor, i.architecture, i.description].filter(Boolean).join(' / ');
  return { reason: `the WebGPU adapter is a software one (${name})`, software: true };
}
