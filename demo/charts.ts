// Line charts for the demo pages (uPlot, canvas-based): x against one or two y scales, resized with their box; an
// empty chart says "no data yet" over its axes rather than looking like a result.
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';

export interface Line {
  label: string;
  stroke: string;
  /** Which y axis: 'y' on the left (default), 'y2' on the right. */
  scale?: 'y' | 'y2';
  width?: number;
  dash?: number[];
  /** Show this line's points (default: the chart's `points`), as for values at a few x only. */
  points?: boolean;
  /** Draw the line across nulls (a value every few x, as the validation loss). */
  spanGaps?: boolean;
}

export interface ChartOptions {
  x: string;
  y: string;
  /** The right axis's label, when some lines use scale 'y2'. */
  y2?: string;
  /** The left axis starts at 0 (rates); otherwise it fits the data. */
  yFromZero?: boolean;
  /** Fixed range of the right axis (accuracy: [0, 1]). */
  y2Range?: [number, number];
  lines: Line[];
  height?: number;
  /** Show points (few x values, as epochs or sizes). */
  points?: boolean;
  /** Logarithmic x axis in base 2 (matrix sizes). */
  log2x?: boolean;
}

export class Chart {
  private readonly plot: uPlot;
  private readonly empty: HTMLElement;

  constructor(el: HTMLElement, o: ChartOptions) {
    const axis = (label: string, scale: string, side: 1 | 3): uPlot.Axis => ({
      label,
      scale,
      side,
      stroke: '#444',
      grid: { show: side === 3, stroke: '#eee' },
    });
    // Whole numbers on x (steps, epochs, sizes).
    const xIncrs = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10_000, 20_000, 50_000];
    const opts: uPlot.Options = {
      width: Math.max(el.clientWidth, 240),
      height: o.height ?? 200,
      scales: {
        x: { time: false, ...(o.log2x ? { distr: 3, log: 2 } : {}) },
        ...(o.yFromZero
          ? { y: { range: (_u: uPlot, _min: number, max: number): uPlot.Range.MinMax => [0, max > 0 ? 1.1 * max : 1] } }
          : {}),
        ...(o.y2 ? { y2: o.y2Range ? { range: o.y2Range } : {} } : {}),
      },
      axes: [
        { label: o.x, stroke: '#444', grid: { stroke: '#eee' }, incrs: xIncrs },
        axis(o.y, 'y', 3),
        ...(o.y2 ? [axis(o.y2, 'y2', 1)] : []),
      ],
      series: [
        { label: o.x },
        ...o.lines.map((l) => ({
          label: l.label,
          stroke: l.stroke,
          scale: l.scale ?? 'y',
          width: l.width ?? 1.5,
          ...(l.dash ? { dash: l.dash } : {}),
          points: { show: l.points ?? o.points ?? false },
          ...(l.spanGaps ? { spanGaps: true } : {}),
        })),
      ],
      cursor: { drag: { x: false, y: false } },
      legend: { live: false },
    };
    this.plot = new uPlot(opts, [[], ...o.lines.map(() => [])], el);
    el.classList.add('chart-box');
    this.empty = document.createElement('div');
    this.empty.className = 'chart-empty';
    this.empty.textContent = 'no data yet';
    el.append(this.empty);
    new ResizeObserver(() => {
      const width = Math.max(el.clientWidth, 240);
      if (width !== this.plot.width) this.plot.setSize({ width, height: opts.height });
    }).observe(el);
  }

  /** x values and one array per line (same length; null leaves a gap). */
  setData(x: number[], ys: (number | null)[][]): void {
    this.plot.setData([x, ...ys]);
    this.empty.hidden = x.length > 0;
  }
}
