// The benchmark families, in the order they run (matmul first: its best GFLOP/s is the compute ceiling of the rest).
import type { Case, Engine, Env, FamilyOpts, Row } from './harness.js';
import { matmulCases, matmulTuneCases } from './matmul.js';
import { convCases } from './conv.js';
import { poolCases } from './pool.js';
import { activationCases, binaryCases } from './elementwise.js';
import { reduceCases, softmaxCases } from './reduce.js';
import { optimCases } from './optim.js';
import { printTrain, runTrain, trainCases } from './train.js';
import { generateCases, printGenerate, runGenerate } from './generate.js';
import { printTransformer, runTransformer, transformerCases } from './transformer.js';
import { attentionCases, printAttention } from './attention.js';
import { printTtfs, runTtfs, ttfsCases } from './ttfs.js';
import { onnxCases, printOnnx, runOnnx } from './onnx.js';

export interface Family {
  name: string;
  /** One or two lines under the family's title: what is measured and how the rate is defined. */
  about: string;
  unit: 'GFLOP/s' | 'GB/s';
  cases(o: FamilyOpts): Case[];
  /** Runs a case its own way instead of the harness's runCase (train: many steps, counters, its own checks). */
  run?(c: Case, env: Env): Promise<Row>;
  /** Prints the family's table instead of report.ts's printFamily. */
  print?(rows: Row[], peers: Partial<Record<Engine, string>>, log: (s: string) => void): void;
}

export const FAMILIES: Family[] = [
  {
    name: 'matmul',
    about:
      'matmul f32 a [M,K] @ b [K,N] (transA: a stored [K,M]; transB: b stored [N,K]), inputs uniform in [-1,1]; GFLOP/s = 2·M·N·K / time',
    unit: 'GFLOP/s',
    cases: matmulCases,
  },
  {
    name: 'matmul-tune',
    about:
      "f32 [n,n] @ [n,n] on each kernel of matmul's table, forced (which is fastest here; the table picks per shape); GFLOP/s = 2·n³ / time",
    unit: 'GFLOP/s',
    cases: matmulTuneCases,
  },
  {
    name: 'conv',
    about:
      'conv2d f32 NHWC x [N,H,W,C] * w [R,S,C,K] -> y [N,P,Q,K]; GFLOP/s = 2·N·P·Q·K·R·S·C / time for each pass (jax-js: NCHW/OIHW copies of the same data)',
    unit: 'GFLOP/s',
    cases: convCases,
  },
  {
    name: 'pool',
    about:
      'pooling f32 NHWC; GB/s = bytes read + written / time (max forward also writes its int32 argmax; max backward reads it)',
    unit: 'GB/s',
    cases: poolCases,
  },
  {
    name: 'activation',
    about:
      "unary activations f32, forward y = f(x) and backward dx = f'(x or y)·dy; GB/s = bytes read + written / time",
    unit: 'GB/s',
    cases: activationCases,
  },
  {
    name: 'binary',
    about: 'broadcast binary ops f32; GB/s = (|a| + |b| + |y|)·4 bytes / time',
    unit: 'GB/s',
    cases: binaryCases,
  },
  {
    name: 'reduce',
    about: 'reductions f32 of x [R,C]; GB/s = (|x| + |y|)·4 bytes / time',
    unit: 'GB/s',
    cases: reduceCases,
  },
  {
    name: 'softmax',
    about:
      'softmax and fused softmax + cross-entropy over the last axis of logits [R,C]; GB/s = bytes read + written / time',
    unit: 'GB/s',
    cases: softmaxCases,
  },
  {
    name: 'optim',
    about:
      'fused optimizer updates in place over n parameters; GB/s = (params + grads + state) read + (params + state) written / time',
    unit: 'GB/s',
    cases: optimCases,
  },
  {
    name: 'train',
    about:
      "one training step of the seed CNN and MLP (wgnn eager and replayed, TF.js, jax-js); GFLOP/s = the step's least flops / time",
    unit: 'GFLOP/s',
    cases: trainCases,
    run: runTrain,
    print: printTrain,
  },
  {
    name: 'generate',
    about:
      "ms per generated token of a GPT at several prefix lengths, with the key/value cache and with full recomputation (greedy: both must give the same tokens); GFLOP/s = a cached token's least flops at the longest prefix / its time",
    unit: 'GFLOP/s',
    cases: generateCases,
    run: runGenerate,
    print: printGenerate,
  },
  {
    name: 'transformer',
    about:
      "one AdamW training step of a char GPT (wgnn's replayed trainStep, the same GPT in TF.js and jax-js): tokens/s; GFLOP/s = nanoGPT's step flops estimate / time",
    unit: 'GFLOP/s',
    cases: transformerCases,
    run: runTransformer,
    print: printTransformer,
  },
  {
    name: 'attention',
    about:
      'causal attention forward + backward (dq, dk, dv), fused flash-style kernels vs the composed path (matmul, softmax, matmul; the tape backward); GFLOP/s = 6 products of T·T·D, halved by the mask',
    unit: 'GFLOP/s',
    cases: attentionCases,
    print: printAttention,
  },
  {
    name: 'ttfs',
    about:
      'time to first training step: a fresh Node process or Chromium (SwiftShader), init() to the first loss (fit, one batch of 64) of the seed MLP and CNN, cold (no shader cache) and warm; ms, no rate',
    unit: 'GB/s',
    cases: ttfsCases,
    run: runTtfs,
    print: printTtfs,
  },
  {
    name: 'onnx',
    about:
      'inference of the seed CNN and the char GPT exported from PyTorch to ONNX: wgnn (loadOnnx) on WebGPU vs onnxruntime-web webgpu, wgnn WASM vs onnxruntime-node; ms per batch',
    unit: 'GFLOP/s',
    cases: onnxCases,
    run: runOnnx,
    print: printOnnx,
  },
];
