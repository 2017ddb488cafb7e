// The results page: shows a results file of `npm run bench` (one committed under bench/results/, or one opened from
// disk): the adapter and its ceilings, then per family a grouped bar chart of each engine's rate and a table. The
// committed files are listed newest first by suite and date, an older one marked superseded where a newer file of the
// same adapter ran every case of it.
/// <reference types="vite/client" />
// The numbers are bench/report.ts's own: derive() gives each engine's ms (GPU timestamps when every timed engine has
// them, else wall clock), wgnn's % of the ceiling and the ratio; only the peers' rates are computed here, as derive
// computes wgnn's (work / time). Of bench/, the build keeps only derive() and the engine names (tree-shaken).
import { ENGINES, ENGINE_NAMES, type EngineResult } from '../bench/harness.js';
import { derive, engineKeys, engineName, type Report } from '../bench/report.js';
import { groupedBars, type Bar, type Series } from './bars.js';
import { fmtTime } from './format.js';
import { byDate, label, suiteOf, supersedes, type Listed } from './listing.js';

type Row = Report['rows'][number];

/** The committed results files by name, each its own chunk of the build: all are read to list them by date. */
const COMMITTED: Record<string, () => Promise<unknown>> = Object.fromEntries(
  Object.entries(import.meta.glob('../bench/results/*.json', { import: 'default' })).map(
    ([path, load]) => [path.slice(path.lastIndexOf('/') + 1), load] as const,
  ),
);

// By engine: ENGINES' in their order, then a family's own engines (wgnn1, webgpu, ort) in a family's order.
const PALETTE = ['#1d4ed8', '#f59e0b', '#059669', '#db2777', '#7c3aed', '#0891b2', '#65a30d'];
const color = (i: number): string => PALETTE[i % PALETTE.length]!;
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

function facts(r: Report, source: string): HTMLElement {
  const roof = r.roofline;
  const items: [string, string][] = [
    ['file', source],
    ['suite', suiteOf(r)],
    [
      'adapter',
      `${r.adapter.description || r.adapter.slug}${r.adapter.software ? ' (a CPU implementation of WebGPU: sizes reduced)' : ''}`,
    ],
    ['date', `${r.date || 'undated'} · Node ${r.node}`],
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
function familySection(
  name: string,
  rows: Row[],
  ceil: { gflops?: number; gbs?: number },
  run: Pick<Report, 'names'>,
): HTMLElement {
  const derived = rows.map((r) => derive(r, ceil));
  const engines = [...new Set(rows.flatMap(engineKeys))];
  const cell = (r: Row, e: string) => (r.engines as Record<string, EngineResult | undefined>)[e];
  const NAME = (e: string) => engineName(run, e);
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
      const x = cell(r, e);
      if (!x) return [];
      const ms = d.ms[e];
      if (ms === undefined)
        return [{ series: e, missing: STATUS_TEXT[x.status], title: x.why ?? STATUS_TEXT[x.status] }];
      const s = x.timing![d.timer]!;
      const title =
        `${NAME(e)}${x.kernel ? ` (${x.kernel})` : ''}: ${fmtTime(ms)}${d.timer === 'wall' ? ' wall clock' : ''} (${fmtTime(s.min)} – ${fmtTime(s.max)})` +
        `${rated ? `, ${fmt(value(r, ms))} ${unit}` : ''}${x.note ? `\n${x.note}` : ''}`;
      return [{ series: e, value: value(r, ms), title }];
    });
    return [{ label: r.label, bars }];
  });
  const series: Series[] = engines.map((e, i) => ({ key: e, label: NAME(e), color: color(i) }));

  const head = [
    'case',
    'timer',
    ...engines.map((e) => `${NAME(e)} time`),
    ...(rated ? engines.map((e) => `${NAME(e)} ${unit}`) : []),
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
    const msCell = (e: string) => {
      const x = cell(r, e);
      const ms = d.ms[e];
      if (ms !== undefined) return h('td', { className: 'time' }, fmtTime(ms));
      return h('td', { title: x?.why ?? '', className: x ? 'missing' : '' }, x ? STATUS_TEXT[x.status] : '—');
    };
    const rateCell = (e: string) => {
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
      : 'time per run, lower is better') +
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
    h('div', { className: 'chart-scroll' }, groupedBars(groups, series, unit)),
    h(
      'div',
      { className: 'table-scroll' },
      h('table', {}, h('thead', {}, h('tr', {}, ...head.map((c) => h('th', {}, c)))), h('tbody', {}, ...body)),
    ),
  );
  section.dataset.family = name;
  return section;
}

/** Replaces the page's report with `l`'s. */
function show(l: Listed): void {
  const r = l.report!;
  const ceil = { gflops: r.roofline.computeGFLOPs, gbs: r.roofline.copy?.gbs };
  const families = [...new Set(r.rows.map((row) => row.family))];
  const head = h('section', {}, h('h2', {}, label(l)), facts(r, l.source));
  const newer = l.supersededBy;
  if (newer) {
    const go = h('button', { type: 'button' }, 'show it');
    go.addEventListener('click', () => {
      fileSelect.value = newer.name;
      choose();
    });
    head.append(
      h(
        'p',
        { className: 'superseded' },
        `Superseded: ${newer.name} (${label(newer)}) is a newer run on the same adapter of every case in this file. `,
        go,
      ),
    );
  }
  reportBox.replaceChildren(
    head,
    ...families.map((f) =>
      familySection(
        f,
        r.rows.filter((row) => row.family === f),
        ceil,
        r,
      ),
    ),
  );
  if (families.length === 0) reportBox.append(h('p', {}, 'This file has no rows.'));
  reportBox.dataset.source = l.source;
  banner.hidden = true;
}

/** A file that cannot be shown: said in the banner; the report shown before stays. */
function problem(name: string, e: unknown): void {
  banner.hidden = false;
  banner.textContent = `Cannot show ${name}: ${e instanceof Error ? e.message : String(e)}`;
}

// ---------------------------------------------------------------------------------------------------------------
// The two ways in: a committed file from the list, or any file from disk (listed first once opened).

const listed = new Map<string, Listed>();

function choose(): void {
  const l = listed.get(fileSelect.value);
  if (!l) return;
  if (l.report) show(l);
  else problem(l.name, l.error);
}

async function openFile(): Promise<void> {
  const file = openInput.files?.[0];
  if (!file) return;
  try {
    const l: Listed = {
      name: 'opened',
      source: `${file.name} (opened)`,
      report: asReport(JSON.parse(await file.text())),
    };
    listed.set(l.name, l);
    const option =
      fileSelect.querySelector<HTMLOptionElement>('option[value="opened"]') ?? h('option', { value: 'opened' });
    option.textContent = label(l);
    fileSelect.prepend(option);
    fileSelect.value = 'opened';
    show(l);
  } catch (e) {
    problem(file.name, e);
  } finally {
    openInput.value = ''; // so that opening the same file again (after fixing it) fires change
  }
}

/** Reads every committed file, marks the superseded ones, and lists them newest first; shows the newest current one. */
async function list(): Promise<void> {
  const files = await Promise.all(
    Object.entries(COMMITTED).map(async ([name, load]): Promise<Listed> => {
      try {
        return { name, source: name, report: asReport(await load()) };
      } catch (error) {
        return { name, source: name, error };
      }
    }),
  );
  for (const older of files) {
    const newer = files.filter((f) => f !== older && f.report && older.report && supersedes(f.report, older.report));
    older.supersededBy = newer.sort(byDate)[0];
  }
  files.sort(byDate);
  for (const l of files) {
    listed.set(l.name, l);
    fileSelect.append(h('option', { value: l.name, title: l.name }, label(l)));
  }
  fileSelect.disabled = false;
  const first = files.find((l) => l.report && !l.supersededBy) ?? files[0];
  if (!first) {
    problem('bench/results/', new Error('no results files were committed: run `npm run bench` and open its JSON'));
    return;
  }
  fileSelect.value = first.name;
  choose();
}

fileSelect.addEventListener('change', choose);
openInput.addEventListener('change', () => void openFile());
void list();
