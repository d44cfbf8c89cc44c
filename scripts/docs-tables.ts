import { COLLECTORS } from '../src/collectors/index.js';
import { collectorEnv, FLAGS } from '../src/config/flags.js';
import { EVENT_FAMILIES, EXPORTER_FAMILIES, familyName, GPU_FAMILIES, INFO_FAMILIES, MIG_PROFILE_FAMILIES, POD_FAMILIES } from '../src/metrics/families.js';
import type { ValueRead } from '../src/values/descriptor.js';
import { VALUES } from '../src/values/value-table.js';

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
  for (const f of Object.values(MIG_PROFILE_FAMILIES)) {
    rows.push(`| \`${f.name}\` | \`${f.name}\` | ${f.type} | ${f.unit} | GPU and MIG profile | mig_profiles | ${f.help}. Labels: GPU_I_PROFILE (mig_profile), source (nvml or model_table). |`);
  }
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

/** How a value is read, in a few words (docs/simulator.md's value table). */
function readText(read: ValueRead): string {
  switch (read.kind) {
    case 'call':
      return read.fixed ? `\`${read.nvml}\` (fixed by the hardware: once per --health.interval)` : `\`${read.nvml}\``;
    case 'field':
      return `\`nvmlDeviceGetFieldValues\` (NVML_FI_DEV_${read.fieldName})`;
    case 'gpm':
      return `\`nvmlGpmMetricsGet\` (NVML_GPM_METRIC_${read.metricName})`;
    case 'collector':
      return `\`${read.nvml}\``;
    case 'derived':
      return `derived: ${read.from}`;
  }
}

/** docs/simulator.md: for every value, the scenario key that drives it, the NVML call and its families. */
export function simulatorValuesTable(): string {
  const rows = ['| scenario key | value (sample key) | collector | read with | families (Prometheus names) |', '|---|---|---|---|---|'];
  for (const [key, v] of Object.entries(VALUES)) {
    const sim = 'key' in v.sim ? `\`${v.sim.key}\`${v.families.some((f) => f.entity !== 'gpu') && v.read.kind !== 'derived' ? ' (GPU and MIG)' : ''}` : `(${v.sim.note})`;
    const families = v.families.map((f) => `\`${f.prometheus.name}\``).join(', ');
    rows.push(`| ${sim} | \`${key}\` | ${v.collector} | ${readText(v.read)} | ${families} |`);
  }
  return rows.join('\n');
}

/** The generated sections of each document, by file (relative to the repository root). */
export const GENERATED_DOCS: Readonly<Record<string, Readonly<Record<string, () => string>>>> = {
  'README.md': { metrics: metricsTable, flags: flagsTable },
  'docs/simulator.md': { 'sim-values': simulatorValuesTable },
};

export function replaceSection(doc: string, name: string, body: string): string {
  const start = `<!-- generated:${name}:start -->`;
  const end = `<!-- generated:${name}:end -->`;
  const i = doc.indexOf(start);
  const j = doc.indexOf(end);
  if (i < 0 || j < i) throw new Error(`the document lacks the ${start} ... ${end} markers`);
  return `${doc.slice(0, i + start.length)}\n${body}\n${doc.slice(j)}`;
}

/** A document with its generated sections rewritten from the tables. */
export function regenerate(doc: string, file = 'README.md'): string {
  const sections = GENERATED_DOCS[file];
  if (!sections) throw new Error(`${file} has no generated sections`);
  let out = doc;
  for (const [name, gen] of Object.entries(sections)) out = replaceSection(out, name, gen());
  return out;
}
