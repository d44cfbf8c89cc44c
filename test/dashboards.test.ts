/**
 * Grafana dashboards (dashboards/*.json): up to date with their definitions, valid JSON of the
 * current schema, unique ids, every panel and target on the datasource variable (no fixed uid),
 * variables defined before use and all used, and the panels the dashboards promise.
 * test/prometheus-proof.test.ts runs every query against a real Prometheus.
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { buildDashboards, DASHBOARDS_DIR } from '../dashboards/build.js';
import { GRID_COLUMNS } from '../dashboards/lib/panels.js';
import { allPanels, GRAFANA_BUILTINS, labelValuesQuery, panelQueries, variableQuery, variableRefs, variables, type Json } from './support/grafana-dashboards.js';

const FILES = readdirSync(DASHBOARDS_DIR).filter((f) => f.endsWith('.json')).sort();
const dashboards = new Map(FILES.map((f) => [f, JSON.parse(readFileSync(path.join(DASHBOARDS_DIR, f), 'utf8')) as Json]));
const PANEL_TYPES = new Set(['row', 'timeseries', 'stat', 'table', 'bargauge', 'gauge', 'state-timeline', 'text']);

/** Every object under a `datasource` key anywhere in the JSON. */
function datasourceRefs(value: unknown, at = '', out: { at: string; ref: unknown }[] = []): { at: string; ref: unknown }[] {
  if (Array.isArray(value)) value.forEach((v, i) => datasourceRefs(v, `${at}/${i}`, out));
  else if (value && typeof value === 'object') {
    for (const [k, v] of Object.entries(value)) {
      if (k === 'datasource') out.push({ at: `${at}/${k}`, ref: v });
      datasourceRefs(v, `${at}/${k}`, out);
    }
  }
  return out;
}

describe('dashboards/', () => {
  it('the JSON files are what dashboards/build.ts writes, and there are no others', () => {
    const built = buildDashboards();
    expect(built.map(([file]) => path.basename(file)).sort()).toEqual(FILES);
    for (const [file, text] of built) expect(readFileSync(file, 'utf8'), `${path.basename(file)}: run npx tsx dashboards/build.ts`).toBe(text);
  });

  it('uids and titles are unique across dashboards; all are tagged for the dashboard links', () => {
    const all = [...dashboards.values()];
    expect(new Set(all.map((d) => d.uid)).size).toBe(all.length);
    expect(new Set(all.map((d) => d.title)).size).toBe(all.length);
    for (const d of all) {
      expect(d.uid).toMatch(/^[a-z0-9-]{1,40}$/);
      expect(d.tags).toContain('kube-gpu-exporter');
      expect(d.links.every((l: Json) => l.type === 'dashboards' && l.tags.includes('kube-gpu-exporter'))).toBe(true);
    }
  });
});

describe.each(FILES)('dashboards/%s', (file) => {
  const d = dashboards.get(file)!;
  const panels = allPanels(d);
  const vars = variables(d);
  const varNames = vars.map((v) => v.name as string);

  it('current schema: schemaVersion 39 or newer, no id, a title, a time range and panels', () => {
    expect(d.schemaVersion).toBeGreaterThanOrEqual(39);
    expect(d.id ?? null).toBeNull();
    expect(typeof d.title).toBe('string');
    expect(d.time).toEqual({ from: expect.stringMatching(/^now-\d+[hdm]$/), to: 'now' });
    expect(panels.length).toBeGreaterThan(0);
  });

  it('panel ids are unique, types are current panel types (no graph/singlestat), and every panel fits the grid without overlap', () => {
    const ids = panels.map((p) => p.id as number);
    expect(ids.every((id) => Number.isInteger(id) && id > 0)).toBe(true);
    expect(new Set(ids).size).toBe(ids.length);
    expect(panels.filter((p) => !PANEL_TYPES.has(p.type)).map((p) => `${p.title}: ${p.type}`)).toEqual([]);
    const cells = new Map<string, string>();
    for (const p of panels) {
      const { x, y, w, h } = p.gridPos as { x: number; y: number; w: number; h: number };
      expect(x >= 0 && w > 0 && x + w <= GRID_COLUMNS && y >= 0 && h > 0, `${p.title}: gridPos ${JSON.stringify(p.gridPos)}`).toBe(true);
      for (let cx = x; cx < x + w; cx++) {
        for (let cy = y; cy < y + h; cy++) {
          const key = `${cx},${cy}`;
          expect(cells.get(key), `${p.title} overlaps`).toBeUndefined();
          cells.set(key, p.title as string);
        }
      }
    }
  });

  it('a datasource variable (type datasource, query prometheus), and every datasource reference anywhere is that variable', () => {
    const ds = vars.find((v) => v.name === 'datasource');
    expect(ds).toMatchObject({ type: 'datasource', query: 'prometheus' });
    const refs = datasourceRefs(d);
    expect(refs.length).toBeGreaterThan(0);
    expect(refs.filter((r) => JSON.stringify(r.ref) !== JSON.stringify({ type: 'prometheus', uid: '${datasource}' }))).toEqual([]);
  });

  it('every non-row panel has a title, a description and targets with unique refIds, each on ${datasource} with an expression', () => {
    for (const p of panels.filter((x) => x.type !== 'row')) {
      expect(p.title, `panel ${p.id}`).toBeTruthy();
      expect(p.description, p.title).toBeTruthy();
      expect(p.datasource, p.title).toEqual({ type: 'prometheus', uid: '${datasource}' });
      const targets = (p.targets ?? []) as Json[];
      expect(targets.length, p.title).toBeGreaterThan(0);
      expect(new Set(targets.map((t) => t.refId)).size, p.title).toBe(targets.length);
      for (const t of targets) {
        expect(t.datasource, `${p.title} ${t.refId}`).toEqual({ type: 'prometheus', uid: '${datasource}' });
        expect(String(t.expr).trim(), `${p.title} ${t.refId}`).not.toBe('');
      }
      if (p.type === 'table') expect(targets.every((t) => t.format === 'table' && t.instant === true), p.title).toBe(true);
    }
  });

  it('variables: node first (then namespace, pod where present) as label_values queries on ${datasource}; each is defined before use and used', () => {
    expect(varNames[0]).toBe('datasource');
    expect(varNames[1]).toBe('node');
    expect(new Set(varNames).size).toBe(varNames.length);
    for (const [i, v] of vars.entries()) {
      if (v.type === 'datasource') continue;
      expect(v.type, v.name).toBe('query');
      expect(v.datasource, v.name).toEqual({ type: 'prometheus', uid: '${datasource}' });
      const q = variableQuery(v);
      expect(labelValuesQuery(q), `${v.name}: ${q}`).toBeDefined();
      // a variable's query may only use variables defined before it
      for (const ref of variableRefs(q)) expect(varNames.slice(0, i), `${v.name} uses $${ref}`).toContain(ref);
      if (v.multi) expect(v.allValue, `${v.name}: All must not match the empty value`).toBe('.+');
    }
    const exprs = panelQueries(d).map((q) => q.expr);
    for (const q of exprs) {
      for (const ref of variableRefs(q)) expect(GRAFANA_BUILTINS.has(ref) || varNames.includes(ref), `$${ref} in ${q}`).toBe(true);
    }
    const usedText = [...exprs, ...vars.map(variableQuery).filter(Boolean)].join('\n');
    for (const name of varNames.filter((n) => n !== 'datasource')) expect(variableRefs(usedText), `$${name} is used nowhere`).toContain(name);
    if (varNames.includes('pod')) expect(varNames.indexOf('namespace')).toBeLessThan(varNames.indexOf('pod'));
  });

  it('links and variables show in the dashboard\'s top bar, not in Grafana 12\'s controls menu (no link placement, variables not hidden)', () => {
    expect(d.links.length).toBeGreaterThan(0);
    for (const l of d.links as Json[]) expect(l.placement, l.title).toBeUndefined();
    for (const v of vars) expect(v.hide ?? 0, v.name).toBe(0);
  });

  it('every time series panel shows its legend (the SDK\'s timeseries default hides it) and names each series', () => {
    for (const p of panels.filter((x) => x.type === 'timeseries')) {
      expect(p.options.legend.showLegend, p.title).toBe(true);
      for (const t of p.targets as Json[]) expect(t.legendFormat, `${p.title} ${t.refId}`).not.toBe('__auto');
    }
  });

  it('queries use the default (dcgm) names: no Prometheus-scheme family names', () => {
    const PROMETHEUS_ONLY = /\b(gpu_temperature_celsius|gpu_power_watts|gpu_memory_used_bytes|gpu_utilization_ratio|gpu_sm_clock_hertz|gpu_energy_joules_total)\b|\buuid=|\bnode=~"\$node"/;
    expect(panelQueries(d).filter((q) => PROMETHEUS_ONLY.test(q.expr)).map((q) => `${q.panel}: ${q.expr}`)).toEqual([]);
  });
});

describe('what the dashboards show', () => {
  const exprsOf = (file: string): string => panelQueries(dashboards.get(file)!).map((q) => q.expr).join('\n');
  const titlesOf = (file: string): string[] => allPanels(dashboards.get(file)!).map((p) => p.title as string);

  it('fleet overview: GPUs, allocated vs used, idle GPU-hours, top namespaces, health', () => {
    const e = exprsOf('fleet-overview.json');
    for (const m of ['gpu_answering', 'node_namespace:gpu_allocated:sum', 'node_namespace:gpu_used:sum', 'node_namespace:gpu_idle:sum', 'topk(10', 'gpu_xid_events_total', 'DCGM_FI_DEV_ECC_DBE_VOL_TOTAL', 'kube_gpu_exporter_collector_success']) {
      expect(e, m).toContain(m);
    }
  });

  it('node and GPU detail: utilization, SM and tensor activity, memory, temperature, power and energy, clocks, throttling, Xid and ECC, MIG', () => {
    const e = exprsOf('node-gpu-detail.json');
    for (const m of ['gpu_busy_seconds_total', 'DCGM_FI_PROF_SM_ACTIVE', 'DCGM_FI_PROF_PIPE_TENSOR_ACTIVE', 'DCGM_FI_DEV_FB_USED', 'DCGM_FI_DEV_GPU_TEMP', 'DCGM_FI_DEV_POWER_USAGE', 'DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION', 'DCGM_FI_DEV_SM_CLOCK', 'gpu_clock_event_reason_active', 'gpu_xid_events_total', 'DCGM_FI_DEV_ECC_DBE_VOL_TOTAL', 'gpu_mig_instance_info']) {
      expect(e, m).toContain(m);
    }
    expect(titlesOf('node-gpu-detail.json')).toEqual(expect.arrayContaining(['SM active', 'Tensor pipe active', 'MIG instances']));
  });

  it('showback: GPU-hours allocated and used, idle waste, per-container memory and SM use on shared GPUs', () => {
    const e = exprsOf('namespace-showback.json');
    for (const m of ['node_namespace:gpu_allocated:sum', 'node_namespace:gpu_used:sum', 'node_namespace:gpu_idle:sum', 'gpu_container_memory_used_bytes', 'gpu_container_sm_utilization_ratio', 'pod=~"$pod"']) {
      expect(e, m).toContain(m);
    }
  });

  it('showback, Right-sizing row: GPU-hours freed, and per container its model, peak memory, compute percentile, recommended profile, GPU-hours freed', () => {
    const d = dashboards.get('namespace-showback.json')!;
    const panels = allPanels(d);
    const rowAt = panels.findIndex((p) => p.type === 'row' && p.title === 'Right-sizing');
    expect(rowAt).toBeGreaterThan(0);
    const table = panels.slice(rowAt).find((p) => p.title === 'Right-sizing: containers holding a whole GPU')!;
    const exprs = (table.targets as Json[]).map((t) => t.expr as string);
    for (const rule of ['container_gpu:memory_used_bytes:max_window', 'container_gpu:compute_used_ratio:quantile_window', 'container_gpu:mig_profile_recommended:window', 'container_gpu:timeshare_fit:window', 'container_gpu:gpu_hours_freed_per_week:window']) {
      expect(exprs.some((e) => e.includes(rule)), rule).toBe(true);
    }
    // the columns: pod labels and model, the recommended profile as a label column, a unit per value
    expect(exprs.every((e) => /by \(namespace, pod, container, modelName, gpu/.test(e))).toBe(true);
    const organize = (table.transformations as Json[]).find((t) => t.id === 'organize')!;
    expect(organize.options.renameByName).toMatchObject({ modelName: 'GPU model', GPU_I_PROFILE: 'recommended profile', 'Value #A': 'peak memory' });
    expect((table.fieldConfig.overrides as Json[]).map((o) => [o.matcher.options, o.properties[0].value])).toEqual([
      ['A', 'bytes'],
      ['B', 'percentunit'],
      ['C', 'percentunit'],
      ['D', 'percentunit'],
    ]);
    expect(exprsOf('namespace-showback.json')).toContain('node_namespace:gpu_hours_freed_per_week:sum');
  });
});
