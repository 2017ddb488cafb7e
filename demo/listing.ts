// How the results page lists results files (results.ts): each labelled by suite, date and adapter, newest first, and
// an older file marked superseded where a newer one of the same adapter ran every case of it.
import type { Report } from '../bench/report.js';

/** A results file as the page lists it: what it holds (or why it cannot be read) and the newer file superseding it. */
export interface Listed {
  /** The file name (the option's value), or 'opened' for the file opened from disk. */
  name: string;
  /** What the report says it is (data-source, for the tests): the file name, or '<name> (opened)'. */
  source: string;
  report?: Report;
  error?: unknown;
  supersededBy?: Listed;
}

/** The run's start in ms since 1970, or undefined when the file has no (valid) date. */
const when = (r: Report): number | undefined => {
  const t = typeof r.date === 'string' ? Date.parse(r.date) : NaN;
  return Number.isFinite(t) ? t : undefined;
};
/** The run's start as 'YYYY-MM-DD HH:MM UTC', or 'undated'. */
const dateLabel = (r: Report): string => {
  const t = when(r);
  return t === undefined ? 'undated' : `${new Date(t).toISOString().slice(0, 16).replace('T', ' ')} UTC`;
};
/** The adapter's short name: 'llvmpipe' of 'llvmpipe: Mesa 25.0.7 (LLVM 15.0.6)'. */
const adapterName = (r: Report): string =>
  (r.adapter.description || r.adapter.slug || 'unknown adapter').split(/[:(]/)[0]!.trim().slice(0, 32);
/** The suite the file names (bench/report.ts RunInfo.suite); older files without one: the families they ran. */
export const suiteOf = (r: Report): string =>
  typeof r.suite === 'string' && r.suite ? r.suite : [...new Set(r.rows.map((x) => x.family))].join('+') || 'empty';

/** The option's text: suite · date · adapter, '· superseded' when a newer file has every case of it. */
export function label(l: Listed): string {
  if (!l.report) return `${l.name} · unreadable`;
  const r = l.report;
  const opened = l.name === 'opened' ? ` · ${l.source}` : '';
  return `${suiteOf(r)} · ${dateLabel(r)} · ${adapterName(r)}${opened}${l.supersededBy ? ' · superseded' : ''}`;
}

/**
 * Whether `newer` supersedes `older`: the same adapter and backend, started later, and it ran every case (family/id)
 * of `older`, so none of `older`'s numbers is the latest. A run of every family supersedes an older train run; a newer
 * run of fewer cases (one batch size of several) does not, nor does a --quick run supersede a full one.
 */
export function supersedes(newer: Report, older: Report): boolean {
  const [t1, t0] = [when(newer), when(older)];
  if (t1 === undefined || t0 === undefined || t1 <= t0) return false;
  if (newer.adapter.slug !== older.adapter.slug) return false;
  const opt = (r: Report, k: string) => (r.options ?? {})[k];
  if ((opt(newer, 'backend') ?? 'webgpu') !== (opt(older, 'backend') ?? 'webgpu')) return false;
  if (opt(newer, 'quick') === true && opt(older, 'quick') !== true) return false;
  const cases = new Set(newer.rows.map((r) => `${r.family}/${r.id}`));
  return older.rows.every((r) => cases.has(`${r.family}/${r.id}`));
}

/** Newest first; undated, then unreadable files last. */
export function byDate(a: Listed, b: Listed): number {
  const key = (l: Listed) => (l.report ? (when(l.report) ?? -1) : -2);
  return key(b) - key(a) || a.name.localeCompare(b.name);
}
