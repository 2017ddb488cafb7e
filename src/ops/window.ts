// Sliding-window arithmetic that convolution and pooling share over NHWC images: [height, width] attribute pairs,
// 'valid' / 'same' / explicit padding, output sizes and the ShapeErrors of their rules; and the workgroup grids
// of their kernels (row tiles folded into z; rows × threads).
import { LimitError, ShapeError, fmtShape } from '../errors.js';
import type { Shape } from '../shape.js';

/** One number for both axes, or [height, width]. */
export type Pair = number | readonly [number, number];
/** 'valid' (none), 'same' (TF/Keras: output = ceil(in / stride), the odd pixel at bottom/right), all sides, or [top, bottom, left, right]. */
export type Padding = 'valid' | 'same' | number | readonly [number, number, number, number];

/** [height, width] of a {@link Pair}. */
export const pair = (v: Pair): [number, number] => (typeof v === 'number' ? [v, v] : [v[0], v[1]]);

const fmtAttr = (v: unknown): string => JSON.stringify(v);
const natural = (v: number): boolean => Number.isInteger(v) && v >= 0;
const positive = (v: number): boolean => Number.isInteger(v) && v >= 1;

/** Checks that `shape` (called `label` in messages) has rank 4 and returns it; `axes` names its dimensions. */
export function rank4(op: string, label: string, shape: Shape, axes = 'N,H,W,C'): [number, number, number, number] {
  if (shape.length !== 4)
    throw new ShapeError(`${op}: ${label} ${fmtShape(shape)} has rank ${shape.length}; expected rank 4 [${axes}]`);
  return shape as [number, number, number, number];
}

/** The attribute `name` of an op as [height, width], both positive integers; else ShapeError naming it and `where`. */
export function positivePair(op: string, name: string, v: Pair, where: string): [number, number] {
  const [h, w] = pair(v);
  if (!positive(h) || !positive(w))
    throw new ShapeError(`${op}: ${name} ${fmtAttr(v)} for ${where}; expected positive integers`);
  return [h, w];
}

/** Where a window of size [R, S] taps lies on the H x W plane: output size P x Q, steps, tap spacing and padding. */
export interface Window2d {
  P: number;
  Q: number;
  sh: number;
  sw: number;
  dh: number;
  dw: number;
  /** Zero rows above / below and columns left / right of the input. */
  pt: number;
  pb: number;
  pl: number;
  pr: number;
}

export interface WindowAttrs {
  stride: Pair;
  /** Spacing between taps (1 for pooling). */
  dilation: Pair;
  padding: Padding;
}

/** How an op names its window and stride in messages, and its one extra rule. */
export interface WindowRules {
  /** The window's name: 'kernel' (convolution) or 'window' (pooling). */
  noun: string;
  /** The stride attribute's name as the op's user writes it: 'stride' (conv2d) or 'strides' (pooling, as Keras). */
  strideAttr: string;
  /** Each explicit padding side must be smaller than the window: then every window holds an input element (pooling). */
  padBelowSize?: boolean;
}

/**
 * The placement of a window of [R, S] taps (positive integers, checked by the caller) over the H x W plane of an
 * input with these attributes, P = floor((H + pt + pb − eh) / sh) + 1 for the dilated extent eh = dh·(R − 1) + 1
 * (likewise Q). Throws ShapeError naming `op`, the attribute and `where` (the shapes) for a stride or dilation that is
 * not a positive integer, a padding that is not one of {@link Padding}, or an output smaller than 1x1.
 */
export function slideWindow(
  op: string,
  where: string,
  H: number,
  W: number,
  [R, S]: readonly [number, number],
  a: WindowAttrs,
  rules: WindowRules,
): Window2d {
  const [sh, sw] = positivePair(op, rules.strideAttr, a.stride, where);
  const [dh, dw] = positivePair(op, 'dilation', a.dilation, where);
  const eh = dh * (R - 1) + 1; // the dilated window's extent
  const ew = dw * (S - 1) + 1;
  const below = rules.padBelowSize ? `${R}x${S} ${rules.noun}` : undefined;
  const [pt, pb, pl, pr] = resolvePadding(op, where, a.padding, [H, W], [eh, ew], [sh, sw], below);
  const P = Math.floor((H + pt + pb - eh) / sh) + 1;
  const Q = Math.floor((W + pl + pr - ew) / sw) + 1;
  if (P < 1 || Q < 1) {
    const dilated = dh !== 1 || dw !== 1 ? ` (dilation ${dh},${dw}: ${eh}x${ew} input pixels)` : '';
    throw new ShapeError(
      `${op}: the ${R}x${S} ${rules.noun}${dilated} is larger than the ${H}x${W} input padded by [${pt},${pb},${pl},${pr}] for ${where}; ` +
        'expected an output of at least 1x1',
    );
  }
  return { P, Q, sh, sw, dh, dw, pt, pb, pl, pr };
}

/**
 * [top, bottom, left, right] zero rows and columns for a window of extent [eh, ew] stepping [sh, sw] over [H, W].
 * `below`, where given, names the window every explicit side must be smaller than ('2x2 window').
 */
function resolvePadding(
  op: string,
  where: string,
  pad: Padding,
  [H, W]: readonly number[],
  [eh, ew]: readonly number[],
  [sh, sw]: readonly number[],
  below?: string,
): number[] {
  if (pad === 'valid') return [0, 0, 0, 0];
  if (pad === 'same') {
    // NOTE: as TF/Keras, the output is ceil(in / stride) and an odd total padding puts the extra row at the bottom
    // (column at the right); PyTorch's padding='same' (stride 1 only) puts it at the top/left. Each side stays
    // below the extent, since (ceil(in / stride) − 1)·stride < in.
    const total = (n: number, e: number, s: number) => Math.max((Math.ceil(n / s) - 1) * s + e - n, 0);
    const th = total(H, eh, sh);
    const tw = total(W, ew, sw);
    return [Math.floor(th / 2), th - Math.floor(th / 2), Math.floor(tw / 2), tw - Math.floor(tw / 2)];
  }
  const p =
    typeof pad === 'number'
      ? [pad, pad, pad, pad]
      : Array.isArray(pad) && pad.length === 4
        ? [...(pad as number[])]
        : undefined;
  if (!p || !p.every((v, i) => natural(v) && (below === undefined || v < (i < 2 ? eh : ew)))) {
    throw new ShapeError(
      `${op}: padding ${fmtAttr(pad)} for ${where}; expected 'valid', 'same', a non-negative integer or [top, bottom, left, right]` +
        (below ? `, each smaller than the ${below}` : ''),
    );
  }
  return p;
}

/**
 * Workgroups [y, z] for `count` workgroups along y: past the per-dimension limit they fold into z, and the kernel
 * reads its index as wid.y + wid.z · num_workgroups.y (the few past `count` in the last z layer return early).
 */
export function foldIntoZ(count: number, maxPerDim: number): [number, number] {
  if (count <= maxPerDim) return [count, 1];
  const z = Math.ceil(count / maxPerDim);
  return [Math.ceil(count / z), z];
}

/** Threads per workgroup of a rows × threads grid. */
const ROW_WG = 64;

/**
 * A 2-D grid of `rows` rows by `len` threads, for kernels that split their index per row rather than per thread
 * (the pooling kernels): x runs along a row, y over rows (folded into z past the per-dimension limit; the kernel's row
 * is gid.y + gid.z · num_workgroups.y · WY). Workgroups hold 64 threads, several rows of them where rows are short.
 * Throws LimitError naming `op` when one row needs more workgroups than a dimension allows.
 */
export function rowThreadGrid(op: string, rows: number, len: number, maxPerDim: number) {
  const WX = Math.min(ROW_WG, 2 ** Math.ceil(Math.log2(len)));
  const WY = ROW_WG / WX;
  const gx = Math.ceil(len / WX);
  if (gx > maxPerDim) {
    throw new LimitError(
      `${op}: a row of ${len} threads needs ${gx} workgroups; expected at most ${maxPerDim} (the adapter's maxComputeWorkgroupsPerDimension)`,
    );
  }
  const [gy, gz] = foldIntoZ(Math.ceil(rows / WY), maxPerDim);
  return { overrides: { WX, WY }, workgroups: [gx, gy, gz] as [number, number, number] };
}
