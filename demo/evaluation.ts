// The evaluation view: the model run over the test digits, as tfjs-vis shows it: a 10×10 confusion matrix (rows:
// the true class, columns: the predicted one), the accuracy of each class, and a gallery of the digits it gets wrong.
import * as wg from '../src/index.js';
import { SIDE, type Split } from './mnist.js';

const CLASSES = 10;
/** Test digits per forward pass. */
const BATCH = 500;
/** Mistakes drawn in the gallery (the first ones, in test order). */
const GALLERY = 48;

export interface Mistake {
  index: number;
  label: number;
  predicted: number;
}

export interface Evaluation {
  /** matrix[t][p]: test digits of class t the model calls p. */
  matrix: number[][];
  total: number;
  correct: number;
  /** Every test digit it gets wrong, in test order. */
  mistakes: Mistake[];
  /** When: the step, and the epoch it ended (undefined for an evaluation asked for in between). */
  step: number;
  epoch?: number;
}

/** Classifies every digit of `test` with the model's weights as they are now (a forward pass, no gradients). */
export async function evaluate(
  model: wg.Sequential,
  test: Split,
  at: { step: number; epoch?: number },
): Promise<Evaluation> {
  const n = test.y.data.length;
  const px = SIDE * SIDE;
  const matrix = Array.from({ length: CLASSES }, () => new Array<number>(CLASSES).fill(0));
  const mistakes: Mistake[] = [];
  let correct = 0;
  for (let i0 = 0; i0 < n; i0 += BATCH) {
    const b = Math.min(BATCH, n - i0);
    const x = wg.tensor(test.x.data.subarray(i0 * px, (i0 + b) * px), [b, SIDE, SIDE, 1]);
    let p: Float32Array;
    try {
      // NOTE: forward under noGrad, not predict(): predict() would switch the model to eval mode in the middle of
      // fit's epoch (no difference for these layers, but not ours to change), and may not run while fit reads.
      const y = wg.noGrad(() => wg.tidy(() => model.forward(x)));
      try {
        p = (await y.data()) as Float32Array;
      } finally {
        y.dispose();
      }
    } finally {
      x.dispose();
    }
    for (let r = 0; r < b; r++) {
      let best = 0;
      for (let c = 1; c < CLASSES; c++) if (p[r * CLASSES + c]! > p[r * CLASSES + best]!) best = c;
      const label = test.y.data[i0 + r]!;
      matrix[label]![best]!++;
      if (best === label) correct++;
      else mistakes.push({ index: i0 + r, label, predicted: best });
    }
  }
  return { matrix, total: n, correct, mistakes, ...at };
}

const pct = (a: number, b: number) => (b ? `${((100 * a) / b).toFixed(1)}%` : '–');

/** A test digit as a 28×28 canvas (CSS scales it up). */
export function digitCanvas(test: Split, index: number): HTMLCanvasElement {
  const c = document.createElement('canvas');
  c.width = c.height = SIDE;
  const img = new ImageData(SIDE, SIDE);
  const px = test.x.data.subarray(index * SIDE * SIDE, (index + 1) * SIDE * SIDE);
  px.forEach((v, i) => img.data.set([v * 255, v * 255, v * 255, 255], 4 * i));
  c.getContext('2d')!.putImageData(img, 0, 0);
  return c;
}

/** Draws an Evaluation into the page's #eval section; a click on a mistake calls `pick` with its test index. */
export class EvaluationView {
  constructor(
    private readonly summary: HTMLElement,
    private readonly table: HTMLTableElement,
    private readonly gallery: HTMLElement,
    private readonly pick: (index: number) => void,
  ) {
    this.clear();
  }

  /** No evaluation yet (a new model). */
  clear(): void {
    this.summary.textContent = 'No evaluation yet: it runs after each epoch, or now with "Evaluate".';
    delete this.summary.dataset.total;
    delete this.summary.dataset.correct;
    this.table.replaceChildren();
    this.gallery.replaceChildren();
  }

  show(e: Evaluation, test: Split): void {
    const when = e.epoch !== undefined ? `after epoch ${e.epoch} (step ${e.step})` : `at step ${e.step}`;
    this.summary.innerHTML = `${when}: <b id="eval-acc">${pct(e.correct, e.total)}</b> right (${e.correct} of ${e.total} test digits)`;
    this.summary.dataset.total = String(e.total);
    this.summary.dataset.correct = String(e.correct);
    this.summary.dataset.step = String(e.step);

    // Rows: true class; columns: predicted class, then the class's accuracy. Shade: share of the row.
    const head = document.createElement('tr');
    head.innerHTML =
      '<th title="rows: the true class; columns: the predicted class">true \\ said</th>' +
      Array.from({ length: CLASSES }, (_, c) => `<th>${c}</th>`).join('') +
      '<th>accuracy</th>';
    const rows = e.matrix.map((row, t) => {
      const tr = document.createElement('tr');
      const sum = row.reduce((a, v) => a + v, 0);
      const th = document.createElement('th');
      th.textContent = String(t);
      tr.append(th);
      row.forEach((v, p) => {
        const td = document.createElement('td');
        td.className = p === t ? 'cell diag' : 'cell';
        td.dataset.count = String(v);
        td.textContent = v ? String(v) : '';
        td.title = `${v} digits ${t} classified as ${p}`;
        const share = sum ? v / sum : 0;
        td.style.background =
          v === 0
            ? ''
            : p === t
              ? `rgba(29, 78, 216, ${0.1 + 0.6 * share})`
              : `rgba(198, 40, 40, ${0.15 + 0.85 * share})`;
        if (p === t && share > 0.55) td.style.color = '#fff';
        tr.append(td);
      });
      const acc = document.createElement('td');
      acc.className = 'class-acc';
      acc.dataset.class = String(t);
      acc.textContent = pct(row[t]!, sum);
      tr.append(acc);
      return tr;
    });
    this.table.replaceChildren(head, ...rows);

    const shown = e.mistakes.slice(0, GALLERY);
    this.gallery.replaceChildren(
      ...shown.map((m) => {
        const f = document.createElement('figure');
        f.dataset.index = String(m.index);
        f.dataset.label = String(m.label);
        f.dataset.predicted = String(m.predicted);
        f.title = `test digit #${m.index}: a ${m.label}, classified as ${m.predicted} (click to put it on the pad)`;
        const cap = document.createElement('figcaption');
        cap.innerHTML = `said <b>${m.predicted}</b> · is ${m.label}`;
        f.append(digitCanvas(test, m.index), cap);
        f.addEventListener('click', () => this.pick(m.index));
        return f;
      }),
    );
    if (e.mistakes.length > shown.length) {
      const more = document.createElement('p');
      more.className = 'caption';
      more.textContent = `and ${e.mistakes.length - shown.length} more`;
      this.gallery.append(more);
    }
  }
}
