// Grouped horizontal bar charts as inline SVG (one group per case, one bar per series), for the results page.
// Drawn by hand rather than with uPlot: uPlot plots series against a numeric x, and these are categories.

export interface Series {
  key: string;
  label: string;
  color: string;
}

export interface Bar {
  series: string;
  /** Undefined: no bar, `missing` is written in its place instead (n/a, FAIL). */
  value?: number;
  missing?: string;
  /** The bar's tooltip. */
  title: string;
}

export interface Group {
  label: string;
  bars: Bar[];
}

const SVG = 'http://www.w3.org/2000/svg';
/** viewBox geometry: the label column, the value text after the longest bar, the top axis. */
const WIDTH = 1000;
const LABEL_W = 410;
const VALUE_W = 64;
const AXIS_H = 24;
const BAR_H = 8;
const BAR_GAP = 1;
const GROUP_PAD = 8;
/** Labels longer than this (11 px monospace, ~0.61 em a character) would not fit: cut, the whole label as tooltip. */
const MAX_LABEL = Math.floor((LABEL_W - 12) / (0.61 * 11));

const fmt = new Intl.NumberFormat('en-US', { maximumSignificantDigits: 3 });

function el<K extends keyof SVGElementTagNameMap>(
  name: K,
  attrs: Record<string, string | number>,
  text?: string,
): SVGElementTagNameMap[K] {
  const e = document.createElementNS(SVG, name);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  if (text !== undefined) e.textContent = text;
  return e;
}

const titled = <E extends SVGElement>(e: E, title: string): E => (e.append(el('title', {}, title)), e);

/** 0 and a few round steps (1, 2 or 5 × 10ᵏ) up to at least `max`. */
function ticks(max: number): number[] {
  const raw = max / 5;
  const pow = 10 ** Math.floor(Math.log10(raw));
  const step = ([1, 2, 5, 10].find((m) => m * pow >= raw) ?? 10) * pow;
  return Array.from({ length: Math.ceil(max / step - 1e-9) + 1 }, (_, i) => i * step);
}

/** A chart of `groups` in the order given; within a group, one slot per series in `series` order. */
export function groupedBars(groups: Group[], series: Series[], unit: string): SVGSVGElement {
  const groupH = series.length * (BAR_H + BAR_GAP) + GROUP_PAD;
  const height = AXIS_H + groups.length * groupH + 4;
  const plotW = WIDTH - LABEL_W - VALUE_W;
  const max = Math.max(...groups.flatMap((g) => g.bars.map((b) => b.value ?? 0)), 0);
  const marks = max > 0 ? ticks(max) : [0];
  const top = marks[marks.length - 1] || 1;
  const x = (v: number) => LABEL_W + (v / top) * plotW;

  const svg = el('svg', { viewBox: `0 0 ${WIDTH} ${height}`, class: 'bars', role: 'img' });
  svg.append(el('text', { x: LABEL_W - 8, y: AXIS_H - 10, 'text-anchor': 'end', class: 'unit' }, unit));
  for (const t of marks) {
    svg.append(el('line', { x1: x(t), x2: x(t), y1: AXIS_H - 4, y2: height, class: 'grid' }));
    svg.append(el('text', { x: x(t), y: AXIS_H - 10, 'text-anchor': 'middle', class: 'tick' }, fmt.format(t)));
  }
  groups.forEach((g, i) => {
    const y0 = AXIS_H + i * groupH;
    const row = el('g', { class: 'group', 'data-label': g.label });
    if (i % 2) row.append(el('rect', { x: 0, y: y0, width: WIDTH, height: groupH, class: 'stripe' }));
    const label = g.label.length > MAX_LABEL ? `${g.label.slice(0, MAX_LABEL - 1)}…` : g.label;
    row.append(
      titled(
        el('text', { x: LABEL_W - 8, y: y0 + groupH / 2 + 4, 'text-anchor': 'end', class: 'label' }, label),
        g.label,
      ),
    );
    series.forEach((s, j) => {
      const b = g.bars.find((b) => b.series === s.key);
      if (!b) return;
      const y = y0 + GROUP_PAD / 2 + j * (BAR_H + BAR_GAP);
      if (b.value === undefined) {
        row.append(
          titled(
            el('text', { x: LABEL_W + 3, y: y + BAR_H - 1, class: 'missing' }, `${s.label} ${b.missing ?? 'n/a'}`),
            b.title,
          ),
        );
        return;
      }
      const w = Math.max(x(b.value) - LABEL_W, 0.5);
      row.append(
        titled(
          el('rect', {
            x: LABEL_W,
            y,
            width: w,
            height: BAR_H,
            fill: s.color,
            class: 'bar',
            'data-series': s.key,
            'data-value': b.value,
          }),
          b.title,
        ),
      );
      row.append(el('text', { x: LABEL_W + w + 4, y: y + BAR_H - 1, class: 'value' }, fmt.format(b.value)));
    });
    svg.append(row);
  });
  return svg;
}
