// "See inside": the first layer's weights as small images (the CNN's 32 3×3 filters, or the MLP's first 32 hidden
// units' 28×28 input weights) and, for the CNN, its 32 feature maps for the current digit (the conv layer run alone):
// two labelled grids of the same columns, the maps left empty (with a word why) while there is no digit.
import * as wg from '../src/index.js';

const SHOWN = 32;

/** A canvas of w×h pixels drawn from values by a colour map (CSS scales it up, pixelated). */
function image(
  w: number,
  h: number,
  values: (i: number) => number,
  colour: (v: number) => [number, number, number],
): HTMLCanvasElement {
  const c = document.createElement('canvas');
  c.width = w;
  c.height = h;
  const img = new ImageData(w, h);
  for (let i = 0; i < w * h; i++) img.data.set([...colour(values(i)), 255], 4 * i);
  c.getContext('2d')!.putImageData(img, 0, 0);
  return c;
}

// Weights: blue below zero, white at zero, red above, scaled by the largest |w| shown.
const diverging = (v: number): [number, number, number] =>
  v >= 0 ? [255, 255 * (1 - v), 255 * (1 - v)] : [255 * (1 + v), 255 * (1 + v), 255];
// Activations (relu, so >= 0): black to yellow, scaled by the largest shown.
const heat = (v: number): [number, number, number] => [255 * Math.min(1, 2 * v), 255 * Math.max(0, 2 * v - 1), 60 * v];

const maxAbs = (a: ArrayLike<number>): number => {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]!));
  return m || 1;
};

export class Inside {
  constructor(
    private readonly weightsEl: HTMLElement,
    private readonly mapsEl: HTMLElement,
    private readonly weightsLabel: HTMLElement,
    private readonly mapsLabel: HTMLElement,
    private readonly captionEl: HTMLElement,
  ) {}

  /** Redraws from the model's current weights; `x` is the current digit [1,28,28,1], undefined while the pad is blank. */
  async update(model: wg.Sequential, x: wg.Tensor | undefined): Promise<void> {
    const first = model.layers[0];
    if (first instanceof wg.nn.Conv2D) {
      // w [R,S,C,K] = [3,3,1,32]; the feature maps y [1,P,Q,K] = [1,26,26,32] (relu applied by the layer).
      const y = x && wg.noGrad(() => wg.tidy(() => first.forward(x)));
      const [w, maps] = await Promise.all([first.kernel.data(), y?.data()]);
      const [R, S, C, K] = first.kernel.shape as [number, number, number, number];
      const n = Math.min(K, SHOWN);
      const wm = maxAbs(w);
      this.weightsLabel.textContent = `${n < K ? `${n} of the ${K}` : `the ${K}`} filters, ${R}×${S} (red > 0 > blue)`;
      this.weightsEl.replaceChildren(
        ...Array.from({ length: n }, (_, k) => image(S, R, (i) => w[i * C * K + k]! / wm, diverging)),
      );
      this.mapsLabel.hidden = false;
      if (y && maps) {
        const [, P, Q] = y.shape as [number, number, number, number];
        y.dispose();
        const am = maxAbs(maps);
        this.mapsLabel.textContent = `their ${n} feature maps for this digit, ${P}×${Q} (after relu; black 0, yellow the largest)`;
        this.mapsEl.replaceChildren(
          ...Array.from({ length: n }, (_, k) => image(Q, P, (i) => maps[i * K + k]! / am, heat)),
        );
      } else {
        this.mapsLabel.textContent = 'their feature maps';
        this.mapsEl.replaceChildren(empty('Draw a digit (or pick a test digit) to see what each filter finds in it.'));
      }
      this.captionEl.textContent = `The conv layer's filters are in the same order as their maps: filter k makes map k.`;
      return;
    }
    const dense = model.layers.find((l): l is wg.nn.Dense => l instanceof wg.nn.Dense);
    if (!dense) return;
    // kernel [784, units]: column u is hidden unit u's weight on each pixel.
    const w = await dense.kernel.data();
    const [inDim, units] = dense.kernel.shape as [number, number];
    const side = Math.round(Math.sqrt(inDim));
    const n = Math.min(units, SHOWN);
    const col = (u: number) => (i: number) => w[i * units + u]!;
    this.weightsLabel.textContent = `input weights of hidden units 0–${n - 1} of ${units}, as ${side}×${side} images (red > 0 > blue)`;
    this.weightsEl.replaceChildren(
      ...Array.from({ length: n }, (_, u) => {
        const m = maxAbs(Array.from({ length: inDim }, (_, i) => col(u)(i)));
        return image(side, side, (i) => col(u)(i) / m, diverging);
      }),
    );
    this.mapsLabel.hidden = true;
    this.mapsEl.replaceChildren();
    this.captionEl.textContent = 'The MLP has no feature maps: pick the CNN to see its filters and their maps.';
  }
}

/** The text an empty grid shows in its place. */
function empty(text: string): HTMLElement {
  const p = document.createElement('p');
  p.className = 'empty';
  p.textContent = text;
  return p;
}
