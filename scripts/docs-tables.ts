import { COLLECTORS } from '../src/collectors/index.js';
import { collectorEnv, FLAGS } from '../src/config/flags.js';
import { EVENT_FAMILIES, EXPORTER_FAMILIES, familyName, GPU_FAMILIES, INFO_FAMILIES, POD_FAMILIES } from '../src/metrics/families.js';

/** README tables generated from the family and flag tables; a test fails when README drifts. */
export function metricsTable(): string {
  const rows = ['| DCGM name (default) | Prometheus name (`--naming=prometheus`) | type | unit (dcgm / prometheus) | series per | collector | description |', '|---|---|---|---|---|---|---|'];
  for (const f of GPU_FAMILIES) {
    const d = familyName(f, 'dcgm');
    const p = familyName(f, 'prometheus');
    const per = f.entity === 'gpu+mig' ? 'GPU and MIG instance' : f.entity === 'mig' ? 'MIG instance' : 'GPU';
    const labels = f.labels ? `. Label \`${f.labels.name}\`: ${f.labels.values.map((v) => v.value).join(', ')}` : '';
    rows.push(`| \`${d.name}\` | \`${p.name}\` | ${f.type} | ${d.unit} / ${p.unit} | ${per} | ${f.collector} | ${f.help}${labels} |`);
  }
  rows.push(`| \`${INFO_FAMILIES.gpu.name}\` | \`${INFO_FAMILIES.gpu.name}\` | gauge | 1 | GPU | (always) | ${INFO_FAMILIES.gpu.help} |`);
  rows.push(`| \`${INFO_FAMILIES.mig.name}\` | \`${INFO_FAMILIES.mig.name}\` | gauge | 1 | MIG instance | mig | ${INFO_FAMILIES.mig.help} |`);
  const { lastXid, ...events } = EVENT_FAMILIES;
  rows.push(`| \`${lastXid.dcgm.name}\` | \`${lastXid.prometheus.name}\` | gauge | Xid | GPU | (events) | ${lastXid.dcgm.help}. |`);
  for (const f of Object.values(events)) {
    const labels = f.labels.length ? ` Labels: ${f.labels.join(', ')}.` : '';
    rows.push(`| \`${f.name}\` | \`${f.name}\` | ${f.type} | - | GPU | ${f.name === 'gpu_answering' ? '(always)' : '(events)'} | ${f.help}.${labels} |`);
  }
  for (const f of Object.values(POD_FAMILIES)) {
    const from = f.source === 'kubelet' ? '(kubelet)' : 'processes';
    rows.push(`| \`${f.name}\` | \`${f.name}\` | ${f.type} | ${f.unit} | container and device | ${from} | ${f.help}. |`);
  }
  for (const f of Object.values(EXPORTER_FAMILIES)) {
    const labels = f.labels.length ? ` Labels: ${f.labels.join(', ')}.` : '';
    rows.push(`| \`${f.name}\` | \`${f.name}\` | ${f.type} | - | exporter | (always) | ${f.help}.${labels} |`);
  }
  return rows.join('\n');
}

export function flagsTable(): string {
  const rows = ['| flag | environment | default | accepts | what it does |', '|---|---|---|---|---|'];
  for (const f of FLAGS) rows.push(`| \`${f.flag}\` | \`${f.env}\` | \`${f.defaultText}\` | ${f.accepts} | ${f.help} |`);
  for (const c of COLLECTORS) {
    rows.push(`| \`--[no-]collector.${c.name}\` | \`${collectorEnv(c.name)}\` | ${c.defaultEnabled ? 'on' : 'off'} | true/false | ${c.description} |`);
  }
  return rows.join('\n');
}

export const GENERATED_SECTIONS = { metrics: metricsTable, flags: flagsTable } as const;

export function replaceSection(doc: string, name: string, body: string): string {
  const start = `<!-- generated:${name}:start -->`;
  const end = `<!-- generated:${name}:end -->`;
  const i = doc.indexOf(start);
  const j = doc.indexOf(end);
  if (i < 0 || j < i) throw new Error(`README lacks the ${start} ... ${end} markers`);
  return `${doc.slice(0, i + start.length)}\n${body}\n${doc.slice(j)}`;
}

export function regenerate(doc: string): string {
  let out = doc;
  for (const [name, gen] of Object.entries(GENERATED_SECTIONS)) out = replaceSection(out, name, gen());
  return out;
}
