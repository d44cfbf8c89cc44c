/** Parses the exporter's /metrics (Prometheus text format 0.0.4) into families of series. */

export interface Series {
  /** The sample's own name (a histogram's _bucket, _sum, _count differ from the family's). */
  name: string;
  labels: Record<string, string>;
  value: number;
}

export interface Family {
  name: string;
  type: string;
  series: Series[];
}

export type Scrape = Map<string, Family>;

function unescapeLabel(raw: string): string {
  return raw.replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c));
}

function parseValue(raw: string): number {
  if (raw === '+Inf' || raw === 'Inf') return Infinity;
  if (raw === '-Inf') return -Infinity;
  if (raw === 'NaN') return NaN;
  const v = Number(raw);
  if (raw === '' || Number.isNaN(v)) throw new Error(`not a sample value: ${JSON.stringify(raw)}`);
  return v;
}

/** `a="x",b="y"` -> {a: 'x', b: 'y'}; values may hold escaped quotes, backslashes and commas. */
export function parseLabels(body: string): Record<string, string> {
  const labels: Record<string, string> = {};
  const re = /\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"\s*(,|$)/y;
  let at = 0;
  while (at < body.length) {
    re.lastIndex = at;
    const m = re.exec(body);
    if (!m) throw new Error(`bad label set at ${JSON.stringify(body.slice(at, at + 40))}`);
    labels[m[1]!] = unescapeLabel(m[2]!);
    at = re.lastIndex;
  }
  return labels;
}

/**
 * Every sample line belongs to the family of the last `# TYPE` line before it (the exporter
 * writes HELP, TYPE, then the family's samples); a sample without one is its own untyped family.
 */
export function parseScrape(text: string): Scrape {
  const out: Scrape = new Map();
  let current: Family | undefined;
  const lines = text.split('\n');
  lines.forEach((line, i) => {
    if (line === '') return;
    if (line.startsWith('#')) {
      const m = /^# TYPE (\S+) (\S+)/.exec(line);
      if (m) {
        current = out.get(m[1]!) ?? { name: m[1]!, type: m[2]!, series: [] };
        out.set(current.name, current);
      }
      return;
    }
    try {
      const brace = line.indexOf('{');
      let name: string;
      let labels: Record<string, string> = {};
      let rest: string;
      if (brace >= 0 && brace < line.indexOf(' ')) {
        name = line.slice(0, brace);
        const close = line.lastIndexOf('}');
        if (close < brace) throw new Error('unclosed label set');
        labels = parseLabels(line.slice(brace + 1, close));
        rest = line.slice(close + 1).trim();
      } else {
        const sp = line.indexOf(' ');
        name = line.slice(0, sp);
        rest = line.slice(sp + 1).trim();
      }
      const value = parseValue(rest.split(/\s+/)[0] ?? '');
      const belongs = current && (name === current.name || name.startsWith(`${current.name}_`));
      let family = belongs ? current! : out.get(name);
      if (!family) {
        family = { name, type: 'untyped', series: [] };
        out.set(name, family);
      }
      family.series.push({ name, labels, value });
    } catch (err) {
      throw new Error(`/metrics line ${i + 1}: ${(err as Error).message}: ${line.slice(0, 120)}`);
    }
  });
  return out;
}

/** Series of a family (none when the family is absent). */
export function seriesOf(scrape: Scrape, family: string): Series[] {
  return scrape.get(family)?.series ?? [];
}

/** The one value of a family without labels, e.g. kube_gpu_exporter_gpus. */
export function scalar(scrape: Scrape, family: string): number | undefined {
  return scrape.get(family)?.series.find((s) => s.name === family)?.value;
}
