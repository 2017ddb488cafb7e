// Pipeline cache: one compute pipeline per (shader, substituted expressions, override constants, binding layout),
// with explicit bind group layouts. Compiled once, reused for the life of the device: made at once by `get`, or
// asked for ahead with `request` (createComputePipelineAsync, all of a step's at once, so a driver that compiles at
// creation compiles them in parallel on its worker threads); `pipelineStats` counts them for a progress display.
import { ShaderStage } from './flags.js';
import { SHADERS, type ShaderName } from '../../shaders.gen.js';
import { BackendError } from '../../errors.js';

export interface PipelineKey {
  shader: ShaderName;
  defines?: Record<string, string> | undefined;
  overrides?: Record<string, number | boolean> | undefined;
  outputs: number;
  inputs: number;
  uniform: boolean;
}

export interface CachedPipeline {
  pipeline: GPUComputePipeline;
  layout: GPUBindGroupLayout;
}

/** Pipelines compiled and still compiling, over every WebGPU device of this process. */
export interface PipelineStats {
  /** Pipelines created so far (each once per device). */
  compiled: number;
  /** Asked for ahead (a step being prepared) and not created yet. */
  pending: number;
}

const totals: PipelineStats = { compiled: 0, pending: 0 };

/**
 * How many GPU pipelines (compiled kernels) exist and how many are still compiling, over every WebGPU device this
 * process opened: a start-up screen shows "compiling GPU kernels (compiled of compiled + pending)" while a model's
 * first step is prepared (`fit` prepares each new batch shape; `CompiledStep.prepare` does it by hand). NOTE: some
 * drivers finish a kernel's compilation only at its first dispatch (Mesa's lavapipe), after it counts as compiled.
 */
export function pipelineStats(): PipelineStats {
  return { ...totals };
}

/** A shader's source for its defines (see {@link expandSource}). */
export function shaderSource(shader: ShaderName, defines: Record<string, string> = {}): string {
  return expandSource(SHADERS[shader], defines, `shader ${shader}`);
}

/**
 * WGSL for its defines: each `/*@NAME*\/` marker replaced by its define; the lines of each `// @if NAME` ...
 * [`// @else` ...] `// @endif` block kept by NAME's define, 'true' or 'false' (blocks do not nest), for code only
 * some devices compile (subgroup operations); and the define ENABLE, comma-separated extensions, as `enable`
 * directives at the top. A marker or block without its define, another value for a block, or a directive outside a
 * whole block is an error (`who` names the shader).
 */
export function expandSource(wgsl: string, defines: Record<string, string>, who: string): string {
  const need = (name: string): string => {
    const v = defines[name];
    if (v === undefined) throw new Error(`${who}: no definition for marker @${name}`);
    return v;
  };
  const src = wgsl
    .replace(
      /^\/\/ @if ([A-Z_0-9]+)\n([\s\S]*?)(?:^\/\/ @else\n([\s\S]*?))?^\/\/ @endif\n/gm,
      (_, name: string, yes: string, no = '') => {
        const v = need(name);
        if (v !== 'true' && v !== 'false') throw new Error(`${who}: @if ${name} is '${v}'; expected 'true' or 'false'`);
        return v === 'true' ? yes : no;
      },
    )
    .replace(/\/\*@([A-Z_0-9]+)\*\//g, (_, name: string) => need(name));
  const stray = /^\/\/ @(if|else|endif)\b.*$/m.exec(src);
  if (stray) throw new Error(`${who}: '${stray[0]}' outside a whole // @if ... // @endif block (they do not nest)`);
  const enable = defines.ENABLE ? `enable ${defines.ENABLE};\n` : '';
  return enable + src;
}

interface Entry {
  ready?: CachedPipeline;
  /** An asynchronous creation in flight. */
  pending?: Promise<CachedPipeline>;
}

export class PipelineCache {
  private modules = new Map<string, GPUShaderModule>();
  private layouts = new Map<string, GPUBindGroupLayout>();
  private entries = new Map<string, Entry>();
  /** Pipelines created by this cache. */
  compiled = 0;
  /** Asked for with `request` and not created yet. */
  pending = 0;

  constructor(private device: GPUDevice) {}

  /** The pipeline, created now if no creation has finished (one still in flight is then not waited for). */
  get(k: PipelineKey): CachedPipeline {
    const key = keyOf(k);
    const e = this.entries.get(key) ?? {};
    if (e.ready) return e.ready;
    e.ready = { pipeline: this.device.createComputePipeline(this.descriptor(k)), layout: this.layoutOf(k) };
    this.entries.set(key, e);
    this.count(1);
    return e.ready;
  }

  /**
   * Starts creating the pipeline asynchronously (unless it exists or is on its way) and resolves to it. Rejects with a
   * BackendError naming the shader when the device refuses it (a later `get` then tries again, synchronously).
   */
  request(k: PipelineKey): Promise<CachedPipeline> {
    const key = keyOf(k);
    const e = this.entries.get(key) ?? {};
    if (e.ready) return Promise.resolve(e.ready);
    if (e.pending) return e.pending;
    this.entries.set(key, e);
    this.pending++;
    totals.pending++;
    const settle = () => {
      this.pending--;
      totals.pending--;
      e.pending = undefined;
    };
    e.pending = this.device.createComputePipelineAsync(this.descriptor(k)).then(
      (pipeline) => {
        settle();
        // A `get` that could not wait made one meanwhile: keep that one (dispatches may already use it).
        if (!e.ready) {
          e.ready = { pipeline, layout: this.layoutOf(k) };
          this.count(1);
        }
        return e.ready;
      },
      (err: unknown) => {
        settle();
        const why = err instanceof Error ? err.message : String(err);
        throw new BackendError(`webgpu: pipeline ${k.shader} ${JSON.stringify(k.overrides ?? {})} failed: ${why}`);
      },
    );
    // Whoever asked awaits it; this keeps a failure nobody awaits (an abandoned capture) from being unhandled.
    e.pending.catch(() => undefined);
    return e.pending;
  }

  /** The bind group layout of a pipeline: known without the pipeline (layouts are explicit). */
  layoutOf(k: PipelineKey): GPUBindGroupLayout {
    const key = `${k.outputs},${k.inputs},${k.uniform}`;
    let l = this.layouts.get(key);
    if (l) return l;
    const entries: GPUBindGroupLayoutEntry[] = [];
    for (let i = 0; i < k.outputs + k.inputs; i++) {
      entries.push({
        binding: i,
        visibility: ShaderStage.COMPUTE,
        buffer: { type: i < k.outputs ? 'storage' : 'read-only-storage' },
      });
    }
    if (k.uniform)
      entries.push({ binding: k.outputs + k.inputs, visibility: ShaderStage.COMPUTE, buffer: { type: 'uniform' } });
    l = this.device.createBindGroupLayout({ entries });
    this.layouts.set(key, l);
    return l;
  }

  private count(n: number): void {
    this.compiled += n;
    totals.compiled += n;
  }

  private descriptor(k: PipelineKey): GPUComputePipelineDescriptor {
    const modKey = moduleKey(k);
    let module = this.modules.get(modKey);
    if (!module) {
      module = this.device.createShaderModule({ label: k.shader, code: shaderSource(k.shader, k.defines) });
      this.modules.set(modKey, module);
    }
    const constants: Record<string, number> = {};
    for (const [name, v] of Object.entries(k.overrides ?? {})) constants[name] = typeof v === 'boolean' ? Number(v) : v;
    return {
      label: k.shader,
      layout: this.device.createPipelineLayout({ bindGroupLayouts: [this.layoutOf(k)] }),
      compute: { module, entryPoint: 'main', constants },
    };
  }
}

const moduleKey = (k: PipelineKey): string => `${k.shader}|${k.defines ? JSON.stringify(k.defines) : ''}`;
const keyOf = (k: PipelineKey): string =>
  `${moduleKey(k)}|${k.overrides ? JSON.stringify(k.overrides) : ''}|${k.outputs},${k.inputs},${k.uniform}`;
