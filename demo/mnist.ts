// The embedded MNIST digits in the browser: fetches mnist.idx.gz (one ubyte IDX [10000, 785]: label, then 784
// pixels; see vite.config.ts), parses it with parseIdx and splits it as loadMnist does (src/data/mnist.ts).
import { bytesToUnit, permutation } from '../src/data/dataset.js';
import { isGzip, parseIdx } from '../src/data/idx.js';
import { ParseError } from '../src/errors.js';
import { Rng } from '../src/rng.js';
import type { HostTensor } from '../src/nn/index.js';

export const SIDE = 28;
const PIXELS = SIDE * SIDE;
const ROW = 1 + PIXELS;

/** Images x [N,28,28,1] in [0,1] and labels y [N] int32. */
export interface Split {
  x: HostTensor & { data: Float32Array };
  y: HostTensor & { data: Int32Array };
}

async function gunzip(bytes: Uint8Array<ArrayBuffer>): Promise<Uint8Array<ArrayBuffer>> {
  const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream('gzip'));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

let fetched: Promise<Uint8Array> | undefined;

/** The 10,000 rows (label, then 784 pixels), fetched once per page. */
function rows(): Promise<Uint8Array> {
  fetched ??= (async () => {
    const res = await fetch(new URL('mnist.idx.gz', document.baseURI));
    if (!res.ok) throw new Error(`mnist.idx.gz: HTTP ${res.status} ${res.statusText}`);
    let bytes: Uint8Array<ArrayBuffer> = new Uint8Array(await res.arrayBuffer());
    // NOTE: a server may already have undone the gzip (Content-Encoding), so the magic decides, not the name.
    if (isGzip(bytes)) bytes = await gunzip(bytes);
    const a = parseIdx(bytes);
    if (a.type !== 'uint8' || a.dims.length !== 2 || a.dims[1] !== ROW) {
      throw new ParseError(`mnist.idx.gz: ${a.type} [${a.dims.join(', ')}]; expected uint8 [N, ${ROW}]`);
    }
    return a.data as Uint8Array;
  })();
  return fetched;
}

/**
 * The same train/test split as `loadMnist({ seed, trainSize })`: rows shuffled by `permutation(N, new Rng(seed))`,
 * the first `trainSize` train and the rest test.
 */
export async function loadMnist(seed: number, trainSize = 8000): Promise<{ train: Split; test: Split }> {
  const all = await rows();
  const order = permutation(all.length / ROW, new Rng(seed));
  const split = (ids: Int32Array): Split => {
    const pixels = new Uint8Array(ids.length * PIXELS);
    const y = new Int32Array(ids.length);
    ids.forEach((r, i) => {
      y[i] = all[r * ROW]!;
      pixels.set(all.subarray(r * ROW + 1, (r + 1) * ROW), i * PIXELS);
    });
    return { x: { data: bytesToUnit(pixels), shape: [ids.length, SIDE, SIDE, 1] }, y: { data: y, shape: [ids.length] } };
  };
  return { train: split(order.subarray(0, trainSize)), test: split(order.subarray(trainSize)) };
}
