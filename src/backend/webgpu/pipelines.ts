// Pipeline cache: one compute pipeline per (shader, substituted expressions, override constants, binding layout),
// with explicit bind group layouts. Compiled once, reused for the life of the device.
import { ShaderStage } from './flags.js';
import { SHADERS, type ShaderName } from '../../shaders.gen.js';

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

/** Replaces each `/*@NAME*\/` marker in a shader with its define; a marker left over is an error. */
export function shaderSource(shader: ShaderName, defines: Record<string, string> = {}): string {
  const src = SHADERS[shader].replace(/\/\*@([A-Z_0-9]+)\*\//g, (_, name: string) => {
    const v = defines[name];
    if (v === undefined) throw new Error(`shader ${shader}: no definition for marker @${name}`);
    return v;
  });
  return src;
}

export class PipelineCache {
  private modules = new Map<string, GPUShaderModule>();
  private layouts = new Map<string, GPUBindGroupLayout>();
  private pipelines = new Map<string, CachedPipeline>();
  compiled = 0;

  constructor(private device: GPUDevice) {}

  get(k: PipelineKey): CachedPipeline {
    const modKey = `${k.shader}|${k.defines ? JSON.stringify(k.defines) : ''}`;
    const full = `${modKey}|${k.overrides ? JSON.stringify(k.overrides) : ''}|${k.outputs},${k.inputs},${k.uniform}`;
    let p = this.pipelines.get(full);
    if (p) return p;
    let module = this.modules.get(modKey);
    if (!module) {
      module = this.device.createShaderModule({ label: k.shader, code: shaderSource(k.shader, k.defines) });
      this.modules.set(modKey, module);
    }
    const layout = this.layout(k.outputs, k.inputs, k.uniform);
    const constants: Record<string, number> = {};
    for (const [name, v] of Object.entries(k.overrides ?? {})) constants[name] = typeof v === 'boolean' ? Number(v) : v;
    const pipeline = this.device.createComputePipeline({
      label: k.shader,
      layout: this.device.createPipelineLayout({ bindGroupLayouts: [layout] }),
      compute: { module, entryPoint: 'main', constants },
    });
    this.compiled++;
    p = { pipeline, layout };
    this.pipelines.set(full, p);
    return p;
  }

  private layout(outputs: number, inputs: number, uniform: boolean): GPUBindGroupLayout {
    const key = `${outputs},${inputs},${uniform}`;
    let l = this.layouts.get(key);
    if (l) return l;
    const entries: GPUBindGroupLayoutEntry[] = [];
    for (let i = 0; i < outputs + inputs; i++) {
      entries.push({
        binding: i,
        visibility: ShaderStage.COMPUTE,
        buffer: { type: i < outputs ? 'storage' : 'read-only-storage' },
      });
    }
    if (uniform)
      entries.push({ binding: outputs + inputs, visibility: ShaderStage.COMPUTE, buffer: { type: 'uniform' } });
    l = this.device.createBindGroupLayout({ entries });
    this.layouts.set(key, l);
    return l;
  }
}
