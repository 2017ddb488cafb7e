// Lines of code per folder, against a budget: growth past it fails CI, so growing a folder is a decision made
// here (raise its number in the same commit, and say why), not an accident. Counts the files git tracks.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

/**
 * Budget per folder, in lines (blank lines and comment-only lines count: a comment is read as code is). Set about 10%
 * above the counts of 2026-12-02 (after Prettier at 120 columns).
 */
const BUDGET = {
  'src/autograd': 560, // + CompiledStep.prepare (dry capture: all of a step's pipelines compile at once, issue 19)
  'src/backend': 1700, // + asynchronous pipeline requests, pipelineStats, dry captures (issue 19)
  'src/backend/wasm': 4000, // the WASM backend (issue 16): host side, thread pool, kernel table, AssemblyScript kernels
  'src/cli': 800, // + the GPT's train and sample commands (cli/gpt.ts)
  'src/data': 1800,
  'src/debug': 150,
  'src/io': 750,
  'src/interop': 3100, // PyTorch export/import (pytorch.ts), the fixed part of the generated model.py; ONNX in (schema, checked plan, the graph interpreter: ~50 operators with their attribute checks) and out; + onnx-torch.ts: an ONNX graph out to PyTorch (model.py runs the same ~50 operators in Python)
  'src/nn': 3800, // + transformer layers (transformer.ts), the GPT and its generation (gpt.ts), the layer list (registry.ts)
  'src/ops': 7400, // + attention_qkv and its backward (the fused attention kernels on the packed QKV projection)
  'src/optim': 1400,
  'src/platform': 450, // + threads.ts: worker threads for the WASM backend
  src: 800, // init's choice of the WASM backend on software adapters
  shaders: 3900, // + the lane-row attention kernels for software adapters with subgroups of 8 (attention_*_lanes and _attention_lanes: 2.2-5.5x the tiled kernels there, which GPUs keep); + the software-adapter subgroup reads (// @if SUBGROUP_ROWS blocks in _tile_mma beside the plain reads a GPU keeps); + the fused attention kernels (attention_fwd, attention_bwd_q, attention_bwd_kv and their include); conv2d_bwd_w_direct (the seed CNN's filter gradient without GEMM tiles: ~0.6 s less compilation at its first step on lavapipe)
  test: 16300, // + the browser tests of the MNIST page's evaluation/controls/layout, the results pages, the demo on wasm; wasm replay; the ONNX fuzz's second tier
  bench: 6900, // + the CPU suite (bench/wasm.ts: wgnn wasm vs jax-js and TF.js WASM), time to first step (ttfs.ts), ONNX inference vs onnxruntime (onnx.ts)
  demo: 4100, // + the evaluation view (evaluation.ts), the results listing and number formats, the wasm banner
  examples: 200, // + examples/gpt.ts
  scripts: 700, // + bench-device.sh runs the transformer family and its PyTorch reference
};
const CODE = /\.(ts|mjs|js|wgsl|sh|html|css)$/;

const files = execFileSync('git', ['ls-files'], { encoding: 'utf8' })
  .split('\n')
  .filter((f) => CODE.test(f));
const counts = Object.fromEntries(Object.keys(BUDGET).map((k) => [k, 0]));
for (const f of files) {
  // The most specific budgeted folder holding the file (src/ counts only files directly in it).
  const folder = Object.keys(BUDGET)
    .filter((k) => f.startsWith(`${k}/`) && (k !== 'src' || !f.slice(4).includes('/')))
    .sort((a, b) => b.length - a.length)[0];
  if (!folder) continue;
  counts[folder] += readFileSync(f, 'utf8').split('\n').length;
}
let over = 0;
console.log(`${'folder'.padEnd(14)} ${'lines'.padStart(6)} ${'budget'.padStart(7)}`);
for (const [k, budget] of Object.entries(BUDGET)) {
  const n = counts[k];
  const flag = n > budget ? '  over budget' : '';
  if (flag) over++;
  console.log(`${k.padEnd(14)} ${String(n).padStart(6)} ${String(budget).padStart(7)}${flag}`);
}
const total = Object.values(counts).reduce((a, b) => a + b, 0);
console.log(`${'total'.padEnd(14)} ${String(total).padStart(6)}`);
if (over) {
  console.error(
    `line-budget: ${over} folder(s) over budget; shrink them, or raise the budget in scripts/line-budget.mjs and say why`,
  );
  process.exit(1);
}
