// Weight initialisers, as Keras names them, drawn on the host from a seeded generator and uploaded once.
import type { Backend } from '../backend/backend.js';
import { Rng } from '../rng.js';
import { sizeOf } from '../shape.js';
import { tensor, type Tensor } from '../tensor.js';

/** The named weight initializers (Keras's names). */
export type InitializerName =
  | 'glorotUniform'
  | 'glorotNormal'
  | 'heUniform'
  | 'heNormal'
  | 'randomUniform'
  | 'randomNormal'
  | 'zeros'
  | 'ones';

/**
 * An initialiser: a name, or `{ kind: 'randomNormal', stddev }` (Keras's `RandomNormal(stddev=...)`, torch's
 * `normal_(0, std)`; the name alone is stddev 0.05, Keras's default). Plain objects, so a layer's config stays JSON.
 */
export type Initializer = InitializerName | { kind: 'randomNormal'; stddev: number };

/** `{ kind: 'randomNormal', stddev }`: N(0, stddev²), not truncated (GPT-style models draw N(0, 0.02²)). */
export const randomNormal = (stddev: number): Initializer => ({ kind: 'randomNormal', stddev });

/** fan_in and fan_out of a kernel: dense [in, out]; conv [R, S, C, K] has fan_in R·S·C and fan_out R·S·K. */
export function fans(shape: readonly number[]): [number, number] {
  if (shape.length < 2) return [shape[0] ?? 1, shape[0] ?? 1];
  const receptive = sizeOf(shape.slice(0, -2));
  return [shape[shape.length - 2]! * receptive, shape[shape.length - 1]! * receptive];
}

/**
 * Draws a tensor. NOTE: the normal variants use a normal distribution truncated at two standard deviations with
 * the variance corrected for truncation, as Keras does (stddev / 0.8796).
 */
export function initialize(init: Initializer, shape: readonly number[], rng: Rng, backend?: Backend): Tensor {
  const kind = typeof init === 'string' ? init : init.kind;
  const n = sizeOf(shape);
  const [fanIn, fanOut] = fans(shape);
  const data = new Float32Array(n);
  const truncNormal = (std: number) => {
    for (let i = 0; i < n; i++) {
      let v: number;
      do v = rng.normal();
      while (Math.abs(v) > 2);
      data[i] = (v * std) / 0.8796256610342398;
    }
  };
  const uniform = (limit: number) => {
    for (let i = 0; i < n; i++) data[i] = rng.uniform(-limit, limit);
  };
  switch (kind) {
    case 'glorotUniform':
      uniform(Math.sqrt(6 / (fanIn + fanOut)));
      break;
    case 'glorotNormal':
      truncNormal(Math.sqrt(2 / (fanIn + fanOut)));
      break;
    case 'heUniform':
      uniform(Math.sqrt(6 / fanIn));
      break;
    case 'heNormal':
      truncNormal(Math.sqrt(2 / fanIn));
      break;
    case 'randomUniform': // Keras's RandomUniform defaults, [-0.05, 0.05] (its Embedding's initialiser)
      uniform(0.05);
      break;
    case 'randomNormal': {
      const std = typeof init === 'string' ? 0.05 : init.stddev;
      for (let i = 0; i < n; i++) data[i] = rng.normal() * std;
      break;
    }
    case 'zeros':
      break;
    case 'ones':
      data.fill(1);
      break;
  }
  return tensor(data, shape, backend ? { backend } : {});
}

let globalRng = new Rng(42);
/** Seeds the generator layers draw their initial weights (and dropout seeds) from when they are given no seed. */
export function setSeed(seed: number): void {
  globalRng = new Rng(seed);
}
/** A generator for one layer: its own seed, or the next draw of the global one. */
export const layerRng = (seed?: number): Rng => new Rng(seed ?? Math.floor(globalRng.next() * 2 ** 32));
