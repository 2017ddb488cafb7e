// Data augmentation on the host: functions that change one training batch's images in place before it is uploaded,
// as Keras' ImageDataGenerator or torchvision's transforms. Each draws only from the Rng it is handed, so with
// `Dataset.batches` (one Rng per seed, epoch and batch) the same batch always gets the same changes.
import { ArgumentError, ShapeError, fmtShape } from '../errors.js';
import type { Rng } from '../rng.js';

/** Transforms one batch's inputs x [B,H,W,C] (NHWC, float32) in place, drawing its randomness from `rng` only. */
export type Augment = (x: Float32Array, shape: readonly number[], rng: Rng) => void;

/** Options of `randomShift`. */
export interface RandomShiftOptions {
  /** Largest vertical shift in pixels: each image moves by an integer drawn uniformly in [-height, height]. */
  height: number;
  /** Largest horizontal shift in pixels: each image moves by an integer drawn uniformly in [-width, width]. */
  width: number;
  /** Value of the pixels the shift vacates (default 0, Keras' `fill_mode='constant', cval=0`). */
  fill?: number;
}

/** x [B,H,W,C]: checks the rank and that the shape describes x. */
function imageShape(op: string, x: Float32Array, shape: readonly number[]): [number, number, number, number] {
  if (shape.length !== 4)
    throw new ShapeError(`${op}: x ${fmtShape(shape)} has rank ${shape.length}; expected images [B,H,W,C]`);
  const n = shape.reduce((a, b) => a * b, 1);
  if (n !== x.length) throw new ShapeError(`${op}: x has ${x.length} values, its shape ${fmtShape(shape)} holds ${n}`);
  return shape as [number, number, number, number];
}

/**
 * Random translation by whole pixels, as Keras' `width_shift_range`/`height_shift_range` given integers or
 * torchvision's `RandomAffine(translate=...)`: each image moves down by dy ∈ [-height, height] and right by
 * dx ∈ [-width, width] (uniform, drawn per image, dy first), all channels together; pixels that come from outside
 * the image are `fill`. NOTE: integer shifts only, so no pixel is interpolated and a shift of 0 is the identity.
 */
export function randomShift({ height, width, fill = 0 }: RandomShiftOptions): Augment {
  for (const [name, v] of [
    ['height', height],
    ['width', width],
  ] as const) {
    if (!Number.isInteger(v) || v < 0)
      throw new ArgumentError(`randomShift: ${name} ${v} must be an integer number of pixels >= 0`);
  }
  if (!Number.isFinite(fill)) throw new ArgumentError(`randomShift: fill ${fill} must be a finite number`);
  return (x, shape, rng) => {
    const [b, h, w, c] = imageShape('randomShift', x, shape);
    const size = h * w * c;
    const src = new Float32Array(size);
    for (let i = 0; i < b; i++) {
      const dy = rng.int(-height, height + 1);
      const dx = rng.int(-width, width + 1);
      if (dy === 0 && dx === 0) continue;
      const img = x.subarray(i * size, (i + 1) * size);
      src.set(img);
      img.fill(fill);
      // Output row r, column q reads source row r - dy, column q - dx; only the overlap is copied.
      const q0 = Math.max(0, dx);
      const q1 = Math.min(w, w + dx);
      if (q0 >= q1) continue;
      for (let r = Math.max(0, dy); r < Math.min(h, h + dy); r++) {
        img.set(src.subarray(((r - dy) * w + q0 - dx) * c, ((r - dy) * w + q1 - dx) * c), (r * w + q0) * c);
      }
    }
  };
}
