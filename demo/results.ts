// The results page: shows a results file of `npm run bench` (one committed under bench/results/, or one opened from
// disk): the adapter and its ceilings, then per family a grouped bar chart of each engine's rate and a table.
/// <reference types="vite/client" />
// The numbers are bench/report.ts's own: derive() gives each engine's ms (GPU timestamps when every timed engine has
// them, else wall clock), wgnn's % of the ceiling and the ratio; only the peers' rates are computed here, as derive
// computes wgnn's (work / time). Of bench/, the build keeps only derive() and the engine names (tree-shaken).
import { ENGINES, ENGINE_NAMES, type Engine, type EngineResult } from '../bench/harness.js';
import { derive, type Report } from '../bench/report.js';
import { groupedBars, type Bar, type Series } from './bars.js';

type Row = Report['rows'][number];

/** The committed results files by name, each loaded (its own chunk of the build) when chosen. */
const COMMITTED: Record<string, () => Promise<unknown>> = Object.fromEntries(
  Object.entries(import.meta.glob('../bench/results/*.json', { import: 'default' }))
    .map(([path, load]) => [path.slice(path.lastIndexOf('/') + 1), load] as const)
    .sort(([a], [b]) => a.localeCompare(b)),
);

const COLORS: Record<Engine, string> = { wgnn: '#1d4ed8', tfjs: '#f59e0b', jax: '#059669' };
const STATUS_TEXT: Record<EngineResult['status'], string> = {
  ok: 'untimed',
  'n/a': 'n/a',
  fail: 'FAIL',
  error: 'ERROR',
};

const $ = <T extends HTMLElement = HTMLElement>(id: string) => document.getElementById(id) as T;
const fileSelect = $<HTMLSelectElement>('file');
const openInput = $<HTMLInputElement>('open');
const banner = $('banner');
const reportBox = $('report');
const fmt = (x: number | undefined): string =>
  x === undefined || !Number.isFinite(x) ? '—' : x.toLocaleString('en-US', { maximumSignificantDigits: 3 });

function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  props: Partial<HTMLElementTagNameMap[K]> = {},
  ...children: (Node | string)[]
): HTMLElementTagNameMap[K] {
  const e = Object.assign(document.createElement(tag), props);
  e.append(...children);
  return e;
}

// ---------------------------------------------------------------------------------------------------------------
// Reading a file: enough checks that derive() and the page never trip on what they read.

const isObject = (x: unknown): x is Record<string, unknown> => typeof x === 'object' && x !== null && !Array.isArray(x);
const isStats = (x: unknown): boolean => isObject(x) && typeof x.median === 'number';

function asReport(x: unknown): Report {
  if (!isObject(x) || !isObject(x.adapter) || !Array.isArray(x.rows)) {
    throw new Error('not a results file of `npm run bench`: expected an object with "adapter" and "rows"');
  }
  x.rows.forEach((r: unknown, i) => {
    if (!isObject(r) || typeof r.family !== 'string' || typeof r.label !== 'string' || !isObject(r.engines)) {
      throw new Error(`rows[${i}] has no family, label or engines`);
    }
    if (r.bound !== 'compute' && r.bound !== 'memory')
      throw new Error(`rows[${i}] (${r.label}): bound is neither "compute" nor "memory"`);
    for (const [e, v] of Object.entries(r.engines)) {
      if (!isObject(v) || !(typeof v.status === 'string' && v.status in STATUS_TEXT))
        throw new Error(`rows[${i}] (${r.label}): engines.${e} has no valid status`);
      const t = v.timing;
      if (t !== undefined && !(isObject(t) && isStats(t.wall) && (t.gpu === undefined || isStats(t.gpu)))) {
        throw new Error(`rows[${i}] (${r.label}): engines.${e}.timing has no wall (and gpu) median`);
      }
    }
  });
  return {
    ...x,
    roofline: isObject(x.roofline) ? x.roofline : {},
    peers: isObject(x.peers) ? x.peers : {},
  } as unknown as Report;
}

// ---------------------------------------------------------------------------------------------------------------
// Rendering.

function facts(r: Report): HTMLElement {
  const roof = r.roofline;
  const items: [string, string][] = [
    [
      'adapter',
      `${r.adapter.description || r.adapter.slug}${r.adapter.software ? ' (a CPU implementation of WebGPU: sizes reduced)' : ''}`,
    ],
    ['date', `${r.date} · Node ${r.node}`],
    ['copy bandwidth', roof.copy ? `${fmt(roof.copy.gbs)} GB/s (the ceiling of memory-bound cases)` : '—'],
    [
      'compute ceiling',
      roof.computeGFLOPs
        ? `${fmt(roof.computeGFLOPs)} GFLOP/s, ${roof.computeFrom ?? ''} (the best matmul of the run)`
        : '—',
    ],
    ...ENGINES.filter((e) => r.peers[e] !== undefined).map((e): [string, string] => [ENGINE_NAMES[e], r.peers[e]!]),
    [
      'options',
      Object.entries(r.options ?? {})
        .map(([k, v]) => `${k} ${Array.isArray(v) ? v.join(',') : String(v)}`)
        .join(' · ') || '—',
    ],
  ];
  return h('dl', { className: 'facts' }, ...items.flatMap(([k, v]) => [h('dt', {}, k), h('dd', {}, v)]));
}

/** One family: a chart of every engine's rate (ms when the family's rows do not all have flops or bytes) and a table. */
function familySection(name: string, rows: Row[], ceil: { gflops?: number; gbs?: number }): HTMLElement {
  const derived = rows.map((r) => derive(r, ceil));
  const engines = ENGINES.filter((e) => rows.some((r) => r.engines[e]));
  const peers = engines.filter((e) => e !== 'wgnn');
  const bound = rows[0]!.bound;
  const work = (r: Row) => (r.bound === 'compute' ? r.flops : r.bytes) ?? 0;
  const rated = rows.every((r) => r.bound === bound && (r.skipped || work(r) > 0));
  const unit = !rated ? 'ms' : bound === 'compute' ? 'GFLOP/s' : 'GB/s';
  // The same rate as derive() gives wgnn: work / (ms · 1e6), in GFLOP/s or GB/s.
  const value = (r: Row, ms: number) => (rated ? work(r) / (ms * 1e6) : ms);
  const ceiling = bound === 'compute' ? ceil.gflops : ceil.gbs;

  const groups = rows.flatMap((r, i) => {
    const d = derived[i];
    if (!d) return [];
    const bars = engines.flatMap((e): Bar[] => {
      const x = r.engines[e];
      if (!x) return [];
      const ms = d.ms[e];
      if (ms === undefined)
        return [{ series: e, missing: STATUS_TEXT[x.status], title: x.why ?? STATUS_TEXT[x.status] }];
      const s = x.timing![d.timer]!;
      const title =
        `${ENGINE_NAMES[e]}${x.kernel ? ` (${x.kernel})` : ''}: ${fmt(ms)} ms${d.timer === 'wall' ? ' wall clock' : ''} (${fmt(s.min)}–${fmt(s.max)})` +
        `${rated ? `, ${fmt(value(r, ms))} ${unit}` : ''}${x.note ? `\n${x.note}` : ''}`;
      return [{ series: e, value: value(r, ms), title }];
    });
    return [{ label: r.label, bars }];
  });
  const series: Series[] = engines.map((e) => ({ key: e, label: ENGINE_NAMES[e], color: COLORS[e] }));

  const head = [
    'case',
    'timer',
    ...engines.map((e) => `${ENGINE_NAMES[e]} ms`),
    ...(rated ? engines.map((e) => `${ENGINE_NAMES[e]} ${unit}`) : []),
    ...(rated ? ['wgnn % of ceiling'] : []),
    ...(peers.length ? ['ratio'] : []),
  ];
  const body = rows.map((r, i) => {
    const tr = h('tr');
    tr.dataset.id = r.id;
    const d = derived[i];
    if (!d) {
      tr.append(h('td', {}, r.label), h('td', { colSpan: head.length - 1, className: 'skipped' }, r.skipped ?? ''));
      return tr;
    }
    const msCell = (e: Engine) => {
      const x = r.engines[e];
      const ms = d.ms[e];
      if (ms !== undefined) return h('td', {}, fmt(ms));
      return h('td', { title: x?.why ?? '', className: x ? 'missing' : '' }, x ? STATUS_TEXT[x.status] : '—');
    };
    const rateCell = (e: Engine) => {
      const ms = d.ms[e];
      return h('td', {}, ms === undefined ? '—' : fmt(value(r, ms)));
    };
    tr.append(h('td', {}, r.label), h('td', {}, d.timer), ...engines.map(msCell));
    if (rated) tr.append(...engines.map(rateCell), h('td', {}, fmt(d.pctOfCeiling)));
    if (peers.length) {
      const cls = d.ratio === undefined ? '' : d.ratio >= 1 ? ' faster' : ' slower';
      tr.append(h('td', { className: `ratio${cls}` }, d.ratio === undefined ? '—' : d.ratio.toFixed(2)));
    }
    return tr;
  });

  const skipped = rows.length - groups.length;
  const about =
    `${rows.length} cases${skipped ? ` (${skipped} skipped, in the table only)` : ''}; ` +
    (rated
      ? `${unit} = ${bound === 'compute' ? 'flops' : 'bytes read + written'} / time, higher is better`
      : 'ms per run, lower is better') +
    (rated
      ? `; % of ${ceiling ? `${fmt(ceiling)} ${unit}, ${bound === 'compute' ? 'the best matmul of the run' : 'the copy bandwidth'}` : 'the ceiling: not measured in this run'}`
      : '') +
    (peers.length ? '; ratio = fastest peer ms / wgnn ms (> 1: wgnn faster)' : '');
  const swatch = (color: string) => {
    const i = h('i');
    i.style.background = color;
    return i;
  };
  const legend = h('p', { className: 'legend' }, ...series.map((s) => h('span', {}, swatch(s.color), s.label)));
  const section = h(
    'section',
    { className: 'family' },
    h('h2', {}, name),
    h('p', { className: 'caption' }, about),
    legend,
    groupedBars(groups, series, unit),
    h('table', {}, h('thead', {}, h('tr', {}, ...head.map((c) => h('th', {}, c)))), h('tbody', {}, ...body)),
  );
  section.dataset.family = name;
  return section;
}

/** Replaces the page's report with `r`; `source` names it (data-source, for the tests). */
function show(r: Report, source: string): void {
  const ceil = { gflops: r.roofline.computeGFLOPs, gbs: r.roofline.copy?.gbs };
  const families = [...new Set(r.rows.map((row) => row.family))];
  reportBox.replaceChildren(
    h('section', {}, h('h2', {}, source), facts(r)),
    ...families.map((f) =>
      familySection(
        f,
        r.rows.filter((row) => row.family === f),
        ceil,
      ),
    ),
  );
  if (families.length === 0) reportBox.append(h('p', {}, 'This file has no rows.'));
  reportBox.dataset.source = source;
  banner.hidden = true;
}

/** A file that cannot be shown: said in the banner; the report shown before stays. */
function problem(name: string, e: unknown): void {
  banner.hidden = false;
  banner.textContent = `Cannot show ${name}: ${e instanceof Error ? e.message : String(e)}`;
}

// ---------------------------------------------------------------------------------------------------------------
// The two ways in: a committed file from the list, or any file from disk (listed as the last option once opened).

const opened = h('option', { value: 'opened', hidden: true });
let openedReport: { report: Report; source: string } | undefined;

async function choose(): Promise<void> {
  const name = fileSelect.value;
  if (name === 'opened') {
    if (openedReport) show(openedReport.report, openedReport.source);
    return;
  }
  try {
    const report = asReport(await COMMITTED[name]!());
    if (fileSelect.value === name) show(report, name); // unless another file was chosen meanwhile
  } catch (e) {
    problem(name, e);
  }
}

async function openFile(): Promise<void> {
  const file = openInput.files?.[0];
  if (!file) return;
  try {
    openedReport = { report: asReport(JSON.parse(await file.text())), source: `${file.name} (opened)` };
    opened.textContent = openedReport.source;
    opened.hidden = false;
    fileSelect.value = 'opened';
    show(openedReport.report, openedReport.source);
  } catch (e) {
    problem(file.name, e);
  } finally {
    openInput.value = ''; // so that opening the same file again (after fixing it) fires change
  }
}

fileSelect.append(
  ...Object.keys(COMMITTED).map((name) => h('option', { value: name }, name.replace(/\.json$/, ''))),
  opened,
);
fileSelect.addEventListener('change', () => void choose());
openInput.addEventListener('change', () => void openFile());
if (fileSelect.options.length > 1) void choose();
else problem('bench/results/', new Error('no results files were committed: run `npm run bench` and open its JSON'));
