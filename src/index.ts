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
export { pipelineStats, type PipelineStats } from './backend/webgpu/pipelines.js';
/** Optimizers (SGD, Adam/AdamW, RMSprop, Adagrad), learning-rate schedules, gradient clipping. */
export * as optim from './optim/index.js';
/** Layers, models (Sequential, GPT, Module), losses, initializers and the training step. */
export * as nn from './nn/index.js';
export { layers, sequential, Sequential, Module, setSeed, gpt, GPT } from './nn/index.js';
export { serializeSafetensors, parseSafetensors, saveTensors, loadTensors } from './io/safetensors.js';
/** Datasets: IDX files, the embedded MNIST, Fashion-MNIST, batching and augmentation, text and tokenizers. */
export * as data from './data/index.js';
export { Dataset, type Batch, type BatchOptions } from './data/dataset.js';
export { randomShift, type Augment, type RandomShiftOptions } from './data/augment.js';
export { Rng } from './rng.js';
export { setAnomalyMode, checkAnomalies } from './debug/anomaly.js';
export { compileStep, CompiledStep, type ReadAlong, type StepRead } from './autograd/step.js';
export { saveCheckpoint, loadCheckpoint } from './io/checkpoint.js';
/** Models in and out: PyTorch state dicts and module source. */
export * as interop from './interop/index.js';
