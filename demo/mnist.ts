// The embedded MNIST digits in the browser: fetches mnist.idx.gz (one ubyte IDX [10000, 785]: label, then 784
// pixels; see vite.config.ts), parses it and splits it with the library's own split (wg.data.splitMnist, as loadMnist).
import * as wg from '../src/index.js';

export const SIDE = wg.data.MNIST_SIDE;

/** Images x [N,28,28,1] in [0,1] and labels y [N] int32. */
export interface Split {
  x: wg.nn.HostTensor & { data: Float32Array };
  y: wg.nn.HostTensor & { data: Int32Array };
}

/** Gunzips bytes with the browser's DecompressionStream. */
export async function gunzip(bytes: Uint8Array<ArrayBuffer>): Promise<Uint8Array<ArrayBuffer>> {
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
    if (wg.data.isGzip(bytes)) bytes = await gunzip(bytes);
    return wg.data.mnistRows(wg.data.parseIdx(bytes), 'mnist.idx.gz');
  })();
  return fetched;
}

const toSplit = (d: wg.Dataset): Split => ({
  x: { data: d.x, shape: [...d.xShape] },
  // splitMnist's labels are int32 class ids.
  y: { data: d.y as Int32Array, shape: [...d.yShape] },
});

/** The first `n` rows of a split. */
function head(s: Split, n: number): Split {
  if (n >= s.y.data.length) return s;
  const px = s.x.data.length / s.y.data.length;
  return {
    x: { data: s.x.data.subarray(0, n * px), shape: [n, ...s.x.shape.slice(1)] },
    y: { data: s.y.data.subarray(0, n), shape: [n] },
  };
}

/**
 * The same train/test split as `loadMnist({ seed, trainSize })` in Node; `testSize` keeps the first that many of
 * the test digits (all of them by default).
 */
export async function loadMnist(
  seed: number,
  trainSize = 8000,
  testSize = Infinity,
): Promise<{ train: Split; test: Split }> {
  const { train, test } = wg.data.splitMnist(await rows(), { seed, trainSize });
  return { train: toSplit(train), test: head(toSplit(test), testSize) };
}
