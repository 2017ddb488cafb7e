// What the fused update kernels share: a flat grid of threads updating 4 parameter elements each (the entry point
// shaders/_update.wgsl), bindings [param, ...state, flag] (read-write) then [grad, scale] (read-only) then the
// uniforms, the optional clip scale and finiteness flag on the CPU side, and the shape of their test samples.
import type { CpuInput } from '../backend/backend.js';
import { grid1d, i32, u32, type InPlaceGpuArgs, type UniformWord } from '../backend/kernel.js';
import type { InPlaceSample } from '../ops/inplace.js';
import type { SampleInput } from '../ops/op.js';
import type { ShaderName } from '../shaders.gen.js';
import { sizeOf } from '../shape.js';

const WG = 256;

/** The per-step values of one parameter's update, updated in place by the optimizer (and by replays). */
export interface Live {
  lr: number;
  /** This parameter's step count, 1 on its first update. */
  step: number;
}

/**
 * The attributes every update rule has besides its own. Its targets are [param, ...state slots, flag]: the flag
 * (int32 [1]) is the finiteness check's when `seq` is given, else a placeholder the kernel leaves untouched.
 */
export interface UpdateAttrs {
  /** The live learning rate and step (see Live). */
  live: Live;
  /**
   * With the finiteness check (TrainStep's check of the weights, src/nn/train.ts): the number the flag is lowered
   * to (atomicMin) when a new parameter value is NaN or ±Inf. Called when the update is encoded and again at each
   * replay of a captured step, so each step gets its own.
   */
  seq?: (() => number) | undefined;
}

/**
 * Encodes one fused update over `targets[0]` (the parameter, n elements); `uniforms()` follow n and seq in the struct.
 * NOTE: without a clip scale the gradient is bound a second time in the scale slot (two read-only bindings of one
 * buffer are legal), so each rule has one binding layout; HAS_SCALE = false keeps the kernel from reading it. The
 * flag slot is bound either way, for the same reason; CHECK = false keeps the kernel from touching it.
 */
export function dispatchUpdate<A extends UpdateAttrs>(
  shader: ShaderName,
  { targets, inputs, attrs, ctx }: InPlaceGpuArgs<A>,
  overrides: Record<string, boolean>,
  uniforms: () => readonly UniformWord[],
): void {
  const n = sizeOf(targets[0]!.shape);
  const grad = inputs[0]!;
  const scale = inputs[1];
  const { seq } = attrs;
  ctx.dispatch({
    shader,
    overrides: { WG, HAS_SCALE: scale !== undefined, CHECK: seq !== undefined, ...overrides },
    workgroups: grid1d(Math.ceil(n / 4), WG, ctx.limits.maxComputeWorkgroupsPerDimension),
    outputs: targets,
    inputs: [grad, scale ?? grad],
    // A function: a replayed step re-evaluates it, reading the optimizer's live learning rate and step, and the
    // check's sequence number.
    uniforms: () => [u32(n), i32(seq ? seq() : 0), ...uniforms()],
  });
}

/** For CPU references: element i of the gradient (inputs[0]) times the clip scale (inputs[1], [1]) if given. */
export function cpuGrad(inputs: readonly CpuInput[]): (i: number) => number {
  const g = inputs[0]!.data;
  const s = inputs[1] ? inputs[1].data[0]! : 1;
  return (i) => g[i]! * s;
}

/**
 * For CPU references, after the update: with `seq`, lowers the flag (the last target) to seq() when a new parameter
 * value (targets[0], as stored: f32 overflows to Inf) is NaN or ±Inf, as the kernels' atomicMin does.
 */
export function cpuCheck(targets: readonly CpuInput[], seq: (() => number) | undefined): void {
  if (!seq) return;
  const s = seq();
  const flag = targets[targets.length - 1]!.data;
  if (targets[0]!.data.some((v) => !Number.isFinite(v))) flag[0] = Math.min(flag[0]!, s);
}

/** One test case of an update rule (see updateSamples). */
export interface UpdateCase<A> {
  label: string;
  attrs: A;
  /** Each state slot's value range, or null for the [1] placeholder bound where these options leave it unused. */
  slots: readonly ([number, number] | null)[];
  /** The clip scale bound as inputs[1] (HAS_SCALE), or none. */
  scale?: number;
  /** The flag before the update (default CLEAN), checked with sequence number SEQ; null: unchecked (a placeholder). */
  flag?: number | null;
  /** Values placed last in the parameter and the gradient (the others 0.5 and 0.25): one non-finite new value. */
  last?: { param?: number; grad?: number };
  /** The parameter's shape (default: the next of UPDATE_SHAPES). */
  shape?: number[];
}

/**
 * Parameter shapes the cases take in turn: 4 elements per thread, so sizes off a multiple of 4 end in a partial
 * quad; 1031 elements are 258 threads, two workgroups of 256.
 */
const UPDATE_SHAPES = [[1], [7], [33], [65], [129], [1031], [4, 33]];
/** The flag's value while nothing was flagged (TrainStep's, src/nn/train.ts). */
const CLEAN = 0x7fffffff;
/** The sequence number of every checked sample. */
const SEQ = 5;

/**
 * Samples of a fused update: targets [param in [-2, 2], ...slots, flag], inputs [grad in [-1, 1], scale?]. Every
 * sample runs with the finiteness check (a finite update leaves the flag CLEAN) unless its case says `flag: null`.
 */
export function updateSamples<A extends UpdateAttrs>(cases: readonly UpdateCase<A>[]): InPlaceSample<A>[] {
  return cases.map((c, i) => {
    const shape = c.shape ?? UPDATE_SHAPES[i % UPDATE_SHAPES.length]!;
    const slot = (r: [number, number] | null): SampleInput => (r ? { shape, range: r } : { shape: [1], values: [0] });
    const endsWith = (fill: number, last: number): SampleInput => ({
      shape,
      values: [...Array<number>(sizeOf(shape) - 1).fill(fill), last],
    });
    const flag = c.flag === undefined ? CLEAN : c.flag;
    return {
      name: `${c.label} [${shape.join(',')}]`,
      targets: [
        c.last?.param === undefined ? { shape, range: [-2, 2] } : endsWith(0.5, c.last.param),
        ...c.slots.map(slot),
        { shape: [1], dtype: 'int32', values: [flag ?? CLEAN] },
      ],
      inputs: [
        c.last?.grad === undefined ? { shape, range: [-1, 1] } : endsWith(0.25, c.last.grad),
        ...(c.scale === undefined ? [] : [{ shape: [1], values: [c.scale] }]),
      ],
      attrs: { ...c.attrs, seq: flag === null ? undefined : () => SEQ },
    };
  });
}

/**
 * The finiteness check's cases for a rule, from `attrs` (no decoupled weight decay: lr·λ must stay finite) and its
 * slots: a new parameter value that is NaN or ±Inf lowers the flag to SEQ (an infinite learning rate makes every
 * new value ±Inf; a NaN gradient or a -Inf parameter, placed last, one), an earlier flag stays, and unchecked, the
 * flag slot is left as it is.
 */
export function checkCases<A extends UpdateAttrs>(attrs: A, slots: UpdateCase<A>['slots']): UpdateCase<A>[] {
  return [
    {
      label: 'check: lr Inf, every new value ±Inf: the flag is lowered to seq',
      attrs: { ...attrs, live: { ...attrs.live, lr: Infinity } },
      slots,
    },
    // 1031 ends in the last thread's partial quad, [4,33] in a full one.
    {
      label: 'check: NaN gradient last: a later flag (9) is lowered to seq',
      attrs,
      slots,
      flag: 9,
      last: { grad: NaN },
      shape: [1031],
    },
    {
      label: 'check: -Inf parameter last: the flag is lowered to seq',
      attrs,
      slots,
      last: { param: -Infinity },
      shape: [4, 33],
    },
    {
      label: 'check: NaN gradient last: an earlier flag (3) stays',
      attrs,
      slots,
      flag: 3,
      last: { grad: NaN },
      shape: [7],
    },
    {
      label: 'unchecked: NaN gradient last: the flag slot is left as it is',
      attrs,
      slots,
      flag: null,
      last: { grad: NaN },
      shape: [33],
    },
  ];
}
