// Demo page: opens wgnn on this browser's GPU (or the CPU, with a banner) and checks a fused dense layer
// against the CPU reference. The training demo builds on this page.
import * as wg from '../src/index.js';

const $ = (id: string) => document.getElementById(id)!;

async function main(): Promise<void> {
  const b = await wg.init();
  $('backend').textContent = `Backend: ${b.name} — ${b.description}`;
  if (b.name === 'cpu') $('backend').className = 'banner';
  const cpu = new wg.CpuBackend();
  const M = 64, K = 96, N = 33;
  const rand = (n: number) => Float32Array.from({ length: n }, () => Math.random() * 2 - 1);
  const [xs, ws, bs] = [rand(M * K), rand(K * N), rand(N)];
  const run = async (backend?: wg.Backend) => {
    const opts = backend ? { backend } : {};
    const x = wg.tensor(xs, [M, K], opts), w = wg.tensor(ws, [K, N], opts), bias = wg.tensor(bs, [N], opts);
    const y = wg.tidy(() => wg.softmax(wg.linear(x, w, bias, { activation: 'relu' })));
    const t0 = performance.now();
    const d = await y.data();
    const ms = performance.now() - t0;
    for (const t of [x, w, bias, y]) t.dispose();
    return { d, ms };
  };
  const got = await run();
  const want = await run(cpu);
  let maxErr = 0;
  for (let i = 0; i < want.d.length; i++) maxErr = Math.max(maxErr, Math.abs(got.d[i]! - want.d[i]!));
  $('check').textContent = `softmax(relu(x[${M},${K}] @ w[${K},${N}] + b)) on ${b.name}: max |gpu − cpu| = ${maxErr.toExponential(2)}\n${JSON.stringify(wg.memory(), null, 1)}`;
}

main().catch((e: unknown) => {
  $('backend').textContent = `Error: ${String(e)}`;
  $('backend').className = 'banner';
});
