/** Renders the comparison rows as one plain-text table with a summary line. */
import type { Row, Verdict } from './compare.js';

const COLUMNS = [
  { title: 'family', get: (r: Row) => r.family, max: 64 },
  { title: 'gpu', get: (r: Row) => r.gpu, max: 12 },
  { title: 'phase', get: (r: Row) => r.phase, max: 5 },
  { title: 'exporter', get: (r: Row) => r.exporter, max: 32 },
  { title: 'reference', get: (r: Row) => r.reference, max: 72 },
  { title: 'tolerance', get: (r: Row) => r.tolerance, max: 72 },
  { title: 'verdict', get: (r: Row) => (r.verdict === 'fail' ? 'FAIL' : r.verdict), max: 7 },
  { title: 'note', get: (r: Row) => r.note ?? '', max: Infinity },
] as const;

function clip(s: string, max: number): string {
  const flat = s.replace(/\s+/g, ' ');
  return flat.length <= max ? flat : `${flat.slice(0, max - 1)}~`;
}

export function summary(rows: readonly Row[]): Record<Verdict, number> {
  const out: Record<Verdict, number> = { pass: 0, fail: 0, skip: 0 };
  for (const r of rows) out[r.verdict]++;
  return out;
}

export function renderTable(rows: readonly Row[]): string {
  const cells = rows.map((r) => COLUMNS.map((c) => clip(c.get(r), c.max)));
  const widths = COLUMNS.map((c, i) => Math.max(c.title.length, ...cells.map((row) => row[i]!.length)));
  const line = (values: readonly string[]) =>
    values.map((v, i) => (i === values.length - 1 ? v : v.padEnd(widths[i]!))).join('  ').trimEnd();
  const out = [line(COLUMNS.map((c) => c.title)), line(widths.map((w) => '-'.repeat(w))), ...cells.map(line)];
  const s = summary(rows);
  out.push('', `${rows.length} rows: ${s.pass} pass, ${s.fail} fail, ${s.skip} skip`);
  return out.join('\n') + '\n';
}
