import type { MetricType } from './families.js';

/** A family ready to render: label sets are already escaped and joined. */
export interface RenderFamily {
  name: string;
  type: MetricType | 'histogram';
  help: string;
  /** `sample` names a histogram's _bucket/_sum/_count line; otherwise the family name is used. */
  series: { labels: string; value: number; sample?: string }[];
}

export type ExpositionFormat = 'text' | 'openmetrics';

export const CONTENT_TYPES: Record<ExpositionFormat, string> = {
  text: 'text/plain; version=0.0.4; charset=utf-8',
  openmetrics: 'application/openmetrics-text; version=1.0.0; charset=utf-8',
};

/** A character escaping changes; most label values (UUIDs, names, pod names) have none. */
const NEEDS_ESCAPE = /[\\\n"]/;

/** Label value escaping for both formats: backslash, double quote, newline. UTF-8 passes through. */
export function escapeLabelValue(value: string): string {
  if (!NEEDS_ESCAPE.test(value)) return value;
  return value.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
}

export function labelString(pairs: readonly (readonly [string, string])[]): string {
  return pairs.map(([k, v]) => `${k}="${escapeLabelValue(v)}"`).join(',');
}

function escapeHelp(help: string, format: ExpositionFormat): string {
  const s = help.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
  return format === 'openmetrics' ? s.replace(/"/g, '\\"') : s;
}

export function formatValue(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (v === Infinity) return '+Inf';
  if (v === -Infinity) return '-Inf';
  return String(v);
}

/**
 * Text exposition 0.0.4 or OpenMetrics 1.0. In OpenMetrics a counter's samples must end in
 * _total; a DCGM counter without that suffix keeps its name (drop-in) and is typed unknown.
 */
export function renderFamilies(families: readonly RenderFamily[], format: ExpositionFormat): string {
  const out: string[] = [];
  for (const f of families) {
    if (f.series.length === 0) continue;
    let familyName = f.name;
    let type: string = f.type;
    if (format === 'openmetrics' && f.type === 'counter') {
      if (f.name.endsWith('_total')) familyName = f.name.slice(0, -'_total'.length);
      else type = 'unknown';
    }
    out.push(`# HELP ${familyName} ${escapeHelp(f.help, format)}\n# TYPE ${familyName} ${type}\n`);
    for (const s of f.series) {
      const name = s.sample ?? f.name;
      out.push(s.labels ? `${name}{${s.labels}} ${formatValue(s.value)}\n` : `${name} ${formatValue(s.value)}\n`);
    }
  }
  return out.join('');
}
