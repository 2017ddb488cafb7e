// The window arithmetic conv2d and the pooling ops share (src/ops/window.ts), checked against definitions written
// independently here: output sizes by counting window placements, 'same' as TF/Keras defines it, and the grids'
// coverage of their rows and limits. (The ops' samples cannot catch a wrong formula: kernels and references share it.)
import { describe, expect, it } from 'vitest';
import { LimitError, ShapeError } from '../src/errors.js';
import { foldIntoZ, rowThreadGrid, slideWindow, type Padding, type WindowAttrs } from '../src/ops/window.js';

const CONV = { noun: 'kernel', strideAttr: 'stride' };
const POOL = { noun: 'window', strideAttr: 'strides', padBelowSize: true };

/** Window placements along one axis: starts s·i − padBefore whose extent fits in the padded length. */
function placements(n: number, extent: number, stride: number, before: number, after: number): number {
  let count = 0;
  for (let start = -before; start + extent <= n + after; start += stride) count++;
  return count;
}

describe('slideWindow', () => {
  it('explicit padding: P x Q is the number of window placements, for every stride, dilation and side', () => {
    let checked = 0;
    for (const H of [1, 2, 5, 8]) {
      for (const R of [1, 2, 3]) {
        for (const s of [1, 2, 3]) {
          for (const d of [1, 2]) {
            for (const pad of [0, 1, 2, [2, 0, 1, 0] as const, [0, 1, 0, 2] as const]) {
              const [pt, pb, pl, pr] = typeof pad === 'number' ? [pad, pad, pad, pad] : pad;
              const e = d * (R - 1) + 1;
              const want = [placements(H, e, s, pt, pb), placements(H + 1, e, s, pl, pr)];
              const a = { stride: s, dilation: d, padding: pad };
              if (want[0]! < 1 || want[1]! < 1) {
                expect(
                  () => slideWindow('op', 'x', H, H + 1, [R, R], a, CONV),
                  `H ${H} R ${R} s ${s} d ${d} pad ${pad}`,
                ).toThrow(ShapeError);
                continue;
              }
              const g = slideWindow('op', 'x', H, H + 1, [R, R], a, CONV);
              expect([g.P, g.Q, g.pt, g.pb, g.pl, g.pr], `H ${H} R ${R} s ${s} d ${d} pad ${pad}`).toEqual([
                ...want,
                pt,
                pb,
                pl,
                pr,
              ]);
              checked++;
            }
          }
        }
      }
    }
    expect(checked).toBeGreaterThan(100);
  });

  it("'same' as TF/Keras: ceil(in / stride) outputs, the odd padding row at the bottom and column at the right", () => {
    // [H, W], window [R, S], stride, dilation -> [P, Q], [top, bottom, left, right], worked by hand from TF's rule
    // (total padding = max((out − 1)·stride + extent − in, 0), top = floor(total / 2)).
    const cases: [number[], number[], number, number, number[], number[]][] = [
      [[7, 6], [2, 2], 2, 1, [4, 3], [0, 1, 0, 0]],
      [[5, 5], [3, 3], 1, 1, [5, 5], [1, 1, 1, 1]],
      [[9, 10], [3, 3], 1, 2, [9, 10], [2, 2, 2, 2]],
      [[8, 8], [2, 3], 3, 1, [3, 3], [0, 0, 0, 1]],
      [[4, 4], [4, 1], 1, 1, [4, 4], [1, 2, 0, 0]],
    ];
    for (const [[H, W], size, s, d, out, pad] of cases) {
      const g = slideWindow(
        'op',
        'x',
        H!,
        W!,
        size as [number, number],
        { stride: s, dilation: d, padding: 'same' },
        CONV,
      );
      expect([g.P, g.Q, g.pt, g.pb, g.pl, g.pr], `${H}x${W} ${size} s ${s} d ${d}`).toEqual([...out, ...pad]);
    }
  });

  it('rejects what the rules forbid, naming the op, the attribute and the shapes', () => {
    const a: WindowAttrs = { stride: 1, dilation: 1, padding: 'valid' };
    const at =
      (over: Partial<WindowAttrs>, rules = CONV) =>
      () =>
        slideWindow('conv2d', 'x [1,4,4,1]', 4, 4, [2, 2], { ...a, ...over }, rules);
    expect(at({ stride: [1, 0] })).toThrow(/^conv2d: stride \[1,0\] for x \[1,4,4,1\]; expected positive integers$/);
    expect(at({ dilation: 1.5 })).toThrow(/^conv2d: dilation 1.5 for x \[1,4,4,1\]; expected positive integers$/);
    expect(at({ padding: [1, 1, 1] as unknown as Padding })).toThrow(
      /^conv2d: padding \[1,1,1\] for x \[1,4,4,1\]; expected 'valid', 'same'/,
    );
    expect(at({ dilation: 4 })).toThrow(
      /^conv2d: the 2x2 kernel \(dilation 4,4: 5x5 input pixels\) is larger than the 4x4 input padded by \[0,0,0,0\]/,
    );
    // Pooling: each explicit side below the window, so every window holds an input element.
    expect(at({ padding: [0, 1, 0, 1] }, POOL)).not.toThrow();
    expect(at({ padding: [0, 2, 0, 1] }, POOL)).toThrow(
      /padding \[0,2,0,1\] for x \[1,4,4,1\]; .*, each smaller than the 2x2 window$/,
    );
    expect(at({ padding: [0, 2, 0, 1] })).not.toThrow();
  });
});

describe('grids', () => {
  it('foldIntoZ covers every workgroup within the per-dimension limit and leaves no z layer empty', () => {
    for (const max of [4, 7, 65535]) {
      for (const count of [0, 1, max - 1, max, max + 1, 2 * max, 2 * max + 1, 3 * max - 1, max * max]) {
        const [y, z] = foldIntoZ(count, max);
        const at = `count ${count}, limit ${max}: [${y}, ${z}]`;
        expect(y, at).toBeLessThanOrEqual(max);
        expect(z, at).toBeLessThanOrEqual(max);
        expect(y * z, at).toBeGreaterThanOrEqual(count);
        if (count > 0) expect((z - 1) * y, at).toBeLessThan(count);
        if (count <= max) expect([y, z], at).toEqual([count, 1]);
      }
    }
  });

  it('rowThreadGrid: 64-thread workgroups that cover rows x threads, and LimitError for a row past the limit', () => {
    for (const [rows, len] of [
      [1, 1],
      [3, 5],
      [100, 64],
      [7, 1000],
      [2000000, 3],
    ]) {
      const {
        overrides,
        workgroups: [x, y, z],
      } = rowThreadGrid('pool', rows!, len!, 65535);
      const at = `${rows} rows x ${len}`;
      expect(overrides.WX * overrides.WY, at).toBe(64);
      expect(x * overrides.WX, at).toBeGreaterThanOrEqual(len!);
      expect(y * z * overrides.WY, at).toBeGreaterThanOrEqual(rows!);
      expect(Math.max(x, y, z), at).toBeLessThanOrEqual(65535);
    }
    expect(() => rowThreadGrid('max_pool2d', 1, 64 * 70000, 65535)).toThrow(LimitError);
    expect(() => rowThreadGrid('max_pool2d', 1, 64 * 70000, 65535)).toThrow(
      /^max_pool2d: a row of 4480000 threads needs 70000 workgroups; expected at most 65535/,
    );
  });
});
