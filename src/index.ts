// wgnn: a WebGPU neural-network engine. `await init()` then build tensors and run ops.
// NOTE: the reference makes the emitted index.d.ts bring the WebGPU types (GPUBuffer, GPUDevice, ...) that the
// declarations use, so a user's tsc needs no setup of its own; `preserve` keeps it in the output (TypeScript >= 5.5).
/// <reference types="@webgpu/types" preserve="true" />
export { init, reinit, shutdown, backend, createWebGpuBackend, type InitOptions } from './init.js';
export { Tensor, tensor, zeros, ones, full, scalar, tidy, keep, memory, type CreateOptions } from './tensor.js';
export * from './ops/index.js';
export { backward, noGrad, isGradEnabled, grad, valueAndGrad, detach, zeroGrad } from './autograd/tape.js';
export type { BackwardOptions } from './tensor.js';
export { OPS, type OpName } from './ops/registry.js';
export * from './errors.js';
export type { Backend, DispatchInfo, MemoryInfo, DType, TypedArray } from './backend/backend.js';
export { CpuBackend } from './backend/cpu/cpu.js';
export { WebGpuBackend } from './backend/webgpu/webgpu.js';
export * as optim from './optim/index.js';
export * as nn from './nn/index.js';
export { layers, sequential, Sequential, Module, setSeed, gpt, GPT } from './nn/index.js';
export { serializeSafetensors, parseSafetensors, saveTensors, loadTensors } from './io/safetensors.js';
export * as data from './data/index.js';
export { Dataset, type Batch, type BatchOptions } from './data/dataset.js';
export { randomShift, type Augment, type RandomShiftOptions } from './data/augment.js';
export { Rng } from './rng.js';
export { setAnomalyMode, checkAnomalies } from './debug/anomaly.js';
export { compileStep, CompiledStep, type ReadAlong, type StepRead } from './autograd/step.js';
export { saveCheckpoint, loadCheckpoint } from './io/checkpoint.js';
export * as interop from './interop/index.js';
