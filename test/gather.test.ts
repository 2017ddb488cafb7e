// gather's out-of-range indices, which the op-table walk cannot sample (the CPU reference refuses them): a typed
// error on the CPU naming the index, its position and V; on WebGPU a NaN row and no out-of-bounds read; the
// backward drops them. Plus a hand-checked lookup with repeats and a backward that is bitwise the same each run.
import { beforeAll, describe, expect, it } from 'vitest';
import type { WebGpuBackend } from '../src/backend/webgpu/webgpu.js';
import { backward } from '../src/autograd/tape.js';
import { ArgumentError } from '../src/errors.js';
import { apply } from '../src/ops/apply.js';
import { gather, gatherBwdOp } from '../src/ops/gather.js';
import { tensor } from '../src/tensor.js';
import { cpu, gpuBackend } from './helpers.js';

let gpu: WebGpuBackend;
beforeAll(async () => {
  gpu = await gpuBackend();
});

// table [5, 3]: row r is [10r, 10r + 1, 10r + 2].
const TABLE = Array.from({ length: 15 }, (_, i) => 10 * Math.floor(i / 3) + (i % 3));

describe('gather', () => {
  it.each([
    [7, '[1,0]'],
    [-1, '[1,0]'],
  ])(
    'cpu: index %i is an ArgumentError naming it, its position %s and V; the backend stays usable',
    async (bad, at) => {
      const table = tensor(TABLE, [5, 3], { backend: cpu });
      const idx = tensor([0, 4, bad, 1], [2, 2], { backend: cpu, dtype: 'int32' });
      expect(() => gather(table, idx)).toThrow(ArgumentError);
      expect(() => gather(table, idx)).toThrow(
        `gather: index ${bad} at position ${at} of indices [2,2] is outside [0, 5); expected a row of the table of 5 rows`,
      );
      const dy = tensor(new Array(12).fill(1), [2, 2, 3], { backend: cpu });
      expect(() => apply(gatherBwdOp, [idx, dy], { rows: 5 })).toThrow(
        /gather_bwd_table: index .* at position \[1,0\]/,
      );
      const ok = tensor([4, 0], [2], { backend: cpu, dtype: 'int32' });
      const y = gather(table, ok);
      expect(Array.from(await y.data())).toEqual([40, 41, 42, 0, 1, 2]);
      for (const t of [table, idx, dy, ok, y]) t.dispose();
    },
  );

  it.each([
    ['cpu', () => cpu],
    ['[webgpu]', () => gpu],
  ] as const)('%s: rows by hand, with repeats and a 0-d index; the table gradient sums repeated rows', async (_, b) => {
    const table = tensor(TABLE, [5, 3], { backend: b() }).variable();
    const idx = tensor([4, 0, 4, 2], [4], { backend: b(), dtype: 'int32' });
    const y = gather(table, idx);
    expect(y.shape).toEqual([4, 3]);
    expect(Array.from(await y.data())).toEqual([40, 41, 42, 0, 1, 2, 40, 41, 42, 20, 21, 22]);
    // dy rows 1, 2, 3, 4 (times [1, 1, 1]): row 4 gets 1 + 3, row 0 gets 2, row 2 gets 4, rows 1 and 3 nothing.
    backward(y, tensor([1, 1, 1, 2, 2, 2, 3, 3, 3, 4, 4, 4], [4, 3], { backend: b() }));
    expect(Array.from(await table.grad!.data())).toEqual([2, 2, 2, 0, 0, 0, 4, 4, 4, 0, 0, 0, 4, 4, 4]);
    const scalar = tensor([3], [], { backend: b(), dtype: 'int32' });
    const z = gather(table, scalar);
    expect(z.shape).toEqual([3]);
    expect(Array.from(await z.data())).toEqual([30, 31, 32]);
    for (const t of [table, idx, y, scalar, z]) t.dispose();
  });

  it('[webgpu]: an index outside [0, V) gives a NaN row (no out-of-bounds read), and the backward drops it', async () => {
    const table = tensor(TABLE, [5, 3], { backend: gpu });
    const idx = tensor([1, 5, -1, 4, 1000000], [5], { backend: gpu, dtype: 'int32' });
    const y = gather(table, idx);
    const got = Array.from(await y.data());
    expect(got.slice(0, 3)).toEqual([10, 11, 12]);
    expect(got.slice(3, 9).every(Number.isNaN)).toBe(true);
    expect(got.slice(9, 12)).toEqual([40, 41, 42]);
    expect(got.slice(12).every(Number.isNaN)).toBe(true);
    const dy = tensor(new Array(15).fill(1), [5, 3], { backend: gpu });
    const dt = apply(gatherBwdOp, [idx, dy], { rows: 5 });
    expect(Array.from(await dt.data())).toEqual([0, 0, 0, 1, 1, 1, 0, 0, 0, 0, 0, 0, 1, 1, 1]);
    for (const t of [table, idx, y, dy, dt]) t.dispose();
  });

  it('[webgpu]: the table gradient is bitwise the same on every run (no atomics)', async () => {
    const n = 4099;
    const idx = tensor(
      Array.from({ length: n }, (_, i) => (i * 7919) % 13),
      [n],
      { backend: gpu, dtype: 'int32' },
    );
    const dy = tensor(
      Array.from({ length: n * 5 }, (_, i) => Math.sin(i) * 1e3),
      [n, 5],
      { backend: gpu },
    );
    const runs = [];
    for (let k = 0; k < 3; k++) {
      const dt = apply(gatherBwdOp, [idx, dy], { rows: 13 });
      runs.push(new Uint32Array((await dt.data()).buffer));
      dt.dispose();
    }
    expect(runs[1]).toEqual(runs[0]);
    expect(runs[2]).toEqual(runs[0]);
    for (const t of [idx, dy]) t.dispose();
  });
});
