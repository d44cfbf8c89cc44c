/**
 * The rules and dashboards against a real Prometheus: the demo node (simulated 8x H100 with its
 * fake kubelet and pods) is scraped every second by /usr/bin/prometheus with the rule files
 * loaded (generated with short windows), then every dashboard query and variable, every
 * recording rule expression and a handful of queries written for dcgm-exporter must return
 * data, the rules must load and evaluate without error, and the idle alert must fire for the
 * demo's allocated but idle GPU.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { DASHBOARDS_DIR } from '../dashboards/build.js';
import { buildRules } from '../deploy/rules/build.js';
import { simulatedNode } from '../src/sim/harness.js';
import { startSimulatedPods, type SimulatedPods } from '../src/sim/simulated-pods.js';
import { scrape, startExporterProcess, waitFor, type RunningExporter } from './support/exporter-process.js';
import { labelValuesQuery, panelQueries, selectionFor, substitute, variableQuery, variables, type DashboardQuery, type Json } from './support/grafana-dashboards.js';
import { hasData, PROMETHEUS_BIN, startPrometheus, type RunningPrometheus, type VectorSample } from './support/prometheus-server.js';

const NODE = 'gpu-node-1';
/** Values of the dashboard variables (ones the demo has: GPU 4 is time-sliced between pods). */
const VARIABLES: Record<string, string> = {
  datasource: '',
  node: NODE,
  namespace: 'inference',
  pod: 'chat-api-5d8f9-x2k4q',
  gpu: '4',
  __rate_interval: '5s',
  __interval: '1s',
  __interval_ms: '1000',
  __range: '15s',
  __range_s: '15',
  __range_ms: '15000',
};
/** Rule windows short enough for a test that scrapes for seconds, not hours. */
const SHORT_WINDOWS = { idle_window: '10s', showback_rate_window: '5s', showback_step: '1s', xid_window: '1m', ecc_window: '1m', hw_slowdown_window: '1m', thermal_slowdown_window: '1m', rightsizing_window: '12s', rightsizing_step: '3s' };
/** How long Prometheus scrapes before the queries (longer than the idle window, 10s). */
const SCRAPE_FOR_MS = 14_000;

/**
 * Families other work adds to the exporter and the demo (NVML GPM: profiling ratios, and
 * busy-seconds per MIG instance). A query that needs one returns no data until the demo's
 * /metrics has it; once it does, the query must return data like every other.
 */
const PENDING_FAMILIES: { name: string; present: (metrics: string) => boolean; usedBy: (expr: string) => boolean }[] = [
  { name: 'DCGM_FI_PROF_SM_ACTIVE', present: (m) => /^DCGM_FI_PROF_SM_ACTIVE\{/m.test(m), usedBy: (e) => e.includes('DCGM_FI_PROF_SM_ACTIVE') },
  { name: 'DCGM_FI_PROF_PIPE_TENSOR_ACTIVE', present: (m) => /^DCGM_FI_PROF_PIPE_TENSOR_ACTIVE\{/m.test(m), usedBy: (e) => e.includes('DCGM_FI_PROF_PIPE_TENSOR_ACTIVE') },
  {
    name: 'gpu_busy_seconds_total per MIG instance',
    present: (m) => /^gpu_busy_seconds_total\{[^}]*GPU_I_ID="/m.test(m),
    usedBy: (e) => /gpu_busy_seconds_total\{[^}]*GPU_I_ID!=""/.test(e),
  },
];

/** Written for dcgm-exporter: they must work unchanged (the drop-in claim). */
const DCGM_EXPORTER_QUERIES = [
  'avg by (Hostname) (DCGM_FI_DEV_GPU_TEMP)',
  'sum by (Hostname) (DCGM_FI_DEV_POWER_USAGE)',
  'max by (Hostname, gpu) (DCGM_FI_DEV_SM_CLOCK)',
  'avg by (Hostname, gpu) (DCGM_FI_DEV_GPU_UTIL)',
  'sum by (pod) (DCGM_FI_DEV_FB_USED{pod!=""})',
  'sum by (namespace, pod) (DCGM_FI_DEV_FB_USED{namespace!=""})',
  'DCGM_FI_DEV_FB_USED / (DCGM_FI_DEV_FB_USED + DCGM_FI_DEV_FB_FREE)',
  'count by (modelName) (DCGM_FI_DEV_GPU_TEMP)',
  'max by (gpu, Hostname) (DCGM_FI_DEV_MEMORY_TEMP)',
  'sum by (Hostname) (rate(DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION[5s]))',
];

const prometheusInstalled = existsSync(PROMETHEUS_BIN);
const dashboards = readdirSync(DASHBOARDS_DIR)
  .filter((f) => f.endsWith('.json'))
  .sort()
  .map((f) => JSON.parse(readFileSync(path.join(DASHBOARDS_DIR, f), 'utf8')) as Json);
const rules = buildRules(SHORT_WINDOWS).rules;
const ruleList = (parse(rules) as { groups: { name: string; rules: { record?: string; alert?: string; expr: string }[] }[] }).groups.flatMap((g) => g.rules);

type Outcome = { what: string; expr: string; problem?: string };

describe.runIf(prometheusInstalled)('rules and dashboards against a real Prometheus scraping the demo node', () => {
  let pods: SimulatedPods;
  let exporter: RunningExporter;
  let prometheus: RunningPrometheus;
  /** The exporter's /metrics when the dashboard queries run. */
  let metrics = '';

  beforeAll(async () => {
    const node = simulatedNode('h100x8');
    pods = await startSimulatedPods(node.statePath);
    exporter = await startExporterProcess({ library: node.libraryPath, statePath: node.statePath, args: [...pods.flags, '--sample-interval=500ms'], env: { NODE_NAME: NODE } });
    await waitFor(async () => (await scrape(exporter.url)).includes('kube_gpu_exporter_kubelet_up 1'), 20_000, 'the exporter with its pods');
    const target = new URL(exporter.url).host;
    prometheus = await startPrometheus({
      files: { 'kube-gpu-exporter.rules.yaml': rules },
      config: [
        'global:',
        '  scrape_interval: 1s',
        '  evaluation_interval: 1s',
        'rule_files: [kube-gpu-exporter.rules.yaml]',
        'scrape_configs:',
        // as the ServiceMonitor does: keep the exporter's pod labels, name the instance by node
        '  - job_name: kube-gpu-exporter',
        '    honor_labels: true',
        '    static_configs:',
        `      - targets: ['${target}']`,
        `        labels: {node: ${NODE}}`,
        '    relabel_configs:',
        `      - {target_label: instance, replacement: ${NODE}}`,
        '',
      ].join('\n'),
    });
    await waitFor(async () => hasData(await prometheus.query('gpu_allocated_ratio')), 15_000, 'a first scrape');
    await new Promise((r) => setTimeout(r, SCRAPE_FOR_MS));
  }, 60_000);

  afterAll(async () => {
    await prometheus?.stop();
    await exporter?.stop();
    await pods?.stop();
  });

  /** Runs expressions; returns those that failed or returned no data, with why. */
  async function run(items: { what: string; expr: string }[]): Promise<Outcome[]> {
    const out: Outcome[] = [];
    for (const item of items) {
      const a = await prometheus.query(item.expr);
      if (a.status !== 'success') out.push({ ...item, problem: `error: ${a.error}` });
      else if (!hasData(a)) out.push({ ...item, problem: 'no data' });
    }
    return out;
  }

  const pendingFamiliesOf = (expr: string): string[] => PENDING_FAMILIES.filter((f) => f.usedBy(expr) && !f.present(metrics)).map((f) => f.name);

  it('Prometheus loaded every rule, evaluated each group, and none reports an error', async () => {
    const a = await prometheus.api<{ groups: { name: string; lastEvaluation: string; rules: { name: string; health: string; lastError?: string }[] }[] }>('/api/v1/rules');
    expect(a.status).toBe('success');
    const loaded = a.data.groups.flatMap((g) => g.rules);
    expect(loaded.map((r) => r.name).sort()).toEqual(ruleList.map((r) => r.record ?? r.alert).sort());
    expect(loaded.filter((r) => r.health !== 'ok').map((r) => `${r.name}: ${r.health} ${r.lastError ?? ''}`)).toEqual([]);
    for (const g of a.data.groups) expect(Date.parse(g.lastEvaluation), g.name).toBeGreaterThan(Date.now() - 60_000);
  });

  it('every recording rule expression returns data, and so does every recorded series', async () => {
    const records = ruleList.filter((r) => r.record);
    expect(records.length).toBeGreaterThan(0);
    const failed = await run(records.flatMap((r) => [{ what: `${r.record} (expression)`, expr: r.expr }, { what: `${r.record} (recorded)`, expr: r.record! }]));
    expect(failed).toEqual([]);
  });

  it('every dashboard query returns data (queries that need a family the demo does not have yet are listed)', async () => {
    metrics = await scrape(exporter.url);
    const queries: (DashboardQuery & { what: string })[] = dashboards.flatMap((d) =>
      panelQueries(d).map((q) => ({ ...q, what: `${q.dashboard} / ${q.panel} / ${q.refId}`, expr: substitute(q.expr, selectionFor(q.panel, VARIABLES)) })),
    );
    expect(queries.length).toBeGreaterThan(50);
    const failed = await run(queries);
    const errors = failed.filter((f) => f.problem !== 'no data');
    expect(errors, 'queries Prometheus refused').toEqual([]);
    const noData = failed.map((f) => ({ what: f.what, pendingOn: pendingFamiliesOf(f.expr) }));
    // Any query without data that no pending family explains is a broken query.
    expect(noData.filter((f) => f.pendingOn.length === 0), 'queries without data').toEqual([]);
    // The queries waiting for families other work adds (none once the demo has them all).
    const waiting = queries.filter((q) => pendingFamiliesOf(q.expr).length > 0).map((q) => q.what);
    expect(noData.map((f) => f.what)).toEqual(waiting);
    if (waiting.length) process.stdout.write(`dashboard queries waiting for ${PENDING_FAMILIES.filter((f) => !f.present(metrics)).map((f) => f.name).join(', ')}:\n  ${waiting.join('\n  ')}\n`);
  });

  it('every dashboard variable query (label_values) returns values, including the ones the queries above used', async () => {
    for (const d of dashboards) {
      for (const v of variables(d).filter((x) => x.type === 'query')) {
        const lv = labelValuesQuery(variableQuery(v))!;
        const a = await prometheus.api<string[]>(`/api/v1/label/${lv.label}/values?match[]=${encodeURIComponent(substitute(lv.match, VARIABLES))}`);
        expect(a.status, `${d.title} $${v.name}`).toBe('success');
        expect(a.data, `${d.title} $${v.name}`).toContain(VARIABLES[v.name as string]);
      }
    }
  });

  it('queries written for dcgm-exporter work unchanged, with its label names and values', async () => {
    expect(await run(DCGM_EXPORTER_QUERIES.map((expr) => ({ what: expr, expr })))).toEqual([]);
    const temp = await prometheus.query('avg by (Hostname) (DCGM_FI_DEV_GPU_TEMP)');
    const [t] = temp.data.result as VectorSample[];
    expect(t!.metric).toEqual({ Hostname: NODE });
    expect(Number(t!.value[1])).toBeGreaterThan(20);
    expect(Number(t!.value[1])).toBeLessThan(90);
    const fb = await prometheus.query('sum by (pod) (DCGM_FI_DEV_FB_USED{pod!=""})');
    const byPod = Object.fromEntries((fb.data.result as VectorSample[]).map((s) => [s.metric.pod, Number(s.value[1])]));
    expect(Object.keys(byPod)).toEqual(expect.arrayContaining(['llm-pretrain-0', 'vision-finetune-7c9f4', 'chat-api-5d8f9-x2k4q', 'jupyter-alice', 'notebook-bob', 'embed-job-1-8kq2w']));
    // MiB, as dcgm-exporter writes it: two H100s with 60-75 GiB in use each
    expect(byPod['llm-pretrain-0']).toBeGreaterThan(2 * 60 * 1024);
    expect(byPod['llm-pretrain-0']).toBeLessThan(2 * 81559);
  });

  it('the idle alert fires for the demo\'s allocated but idle GPU (GPU 6, ml-research/notebook-bob) and not for busy ones', async () => {
    const a = await prometheus.api<{ alerts: { labels: Record<string, string>; state: string }[] }>('/api/v1/alerts');
    const idle = a.data.alerts.filter((x) => x.labels.alertname === 'GpuAllocatedIdle' && x.state === 'firing').map((x) => x.labels);
    expect(idle).toContainEqual(expect.objectContaining({ Hostname: NODE, gpu: '6', namespace: 'ml-research', pod: 'notebook-bob', container: 'notebook' }));
    expect(idle.filter((l) => ['llm-pretrain-0', 'vision-finetune-7c9f4', 'chat-api-5d8f9-x2k4q'].includes(l.pod!))).toEqual([]);
  });

  it('the PCIe link alert holds for the demo\'s GPU 3 (x8 of x16) and for no other GPU', async () => {
    const a = await prometheus.api<{ alerts: { labels: Record<string, string>; state: string }[] }>('/api/v1/alerts');
    const link = a.data.alerts.filter((x) => x.labels.alertname === 'GpuPcieLinkDegraded').map((x) => x.labels.gpu);
    expect(link).toEqual(['3']);
  });

  it('showback sums the demo\'s shares: 4 whole GPUs, GPU 4\'s four replicas, three MIG instances (5/7 of GPU 7), GPU 6', async () => {
    const a = await prometheus.query('sum(node_namespace:gpu_allocated:sum)');
    // ml-train 2 + ml-research 2 (vision) + 1 (notebook-bob) + GPU 4 (4 x 1/4) + 3/7 + 1/7 + 1/7
    expect(Number((a.data.result as VectorSample[])[0]!.value[1])).toBeCloseTo(6 + 5 / 7, 9);
    const u = await prometheus.query('sum(node:gpu_unallocated:sum)');
    // GPU 5 (a process outside any pod) and the unheld 2g.20gb instance of GPU 7
    expect(Number((u.data.result as VectorSample[])[0]!.value[1])).toBeCloseTo(1 + 2 / 7, 9);
    const idle = await prometheus.query('node_namespace:gpu_idle:sum{namespace="ml-research"}');
    // notebook-bob's whole GPU is idle; vision-finetune's two are busy
    const v = Number((idle.data.result as VectorSample[])[0]!.value[1]);
    expect(v).toBeGreaterThan(0.9);
    expect(v).toBeLessThan(1.5);
  });

  it('right-sizing advises the demo\'s whole-GPU pods: notebook-bob 1g.10gb, vision-finetune 3g.40gb, llm-pretrain the whole GPU; only the first two free GPU-hours', async () => {
    const a = await prometheus.query('container_gpu:mig_profile_recommended:window');
    const advice = (a.data.result as VectorSample[]).map((r) => `${r.metric.gpu} ${r.metric.pod} ${r.metric.GPU_I_PROFILE}`).sort();
    expect(advice).toEqual(['0 llm-pretrain-0 whole', '1 llm-pretrain-0 whole', '2 vision-finetune-7c9f4 3g.40gb', '3 vision-finetune-7c9f4 3g.40gb', '6 notebook-bob 1g.10gb']);
    // the profile table it chose from: the model's for GPUs 0-6 (MIG off), NVML's for GPU 7
    const t = await prometheus.query('count by (source) (gpu_mig_profile_compute_ratio)');
    expect(Object.fromEntries((t.data.result as VectorSample[]).map((r) => [r.metric.source, Number(r.value[1])]))).toEqual({ model_table: 7 * 6, nvml: 7 });
    const freed = await prometheus.query('node_namespace:gpu_hours_freed_per_week:sum');
    const byNs = Object.fromEntries((freed.data.result as VectorSample[]).map((r) => [r.metric.namespace, Number(r.value[1])]));
    expect(byNs['ml-train']).toBe(0);
    expect(byNs['ml-research']).toBeGreaterThan(0);
    const shared = await prometheus.query('container_gpu:timeshare_fit:window');
    expect((shared.data.result as VectorSample[]).map((r) => r.metric.pod)).toEqual(['notebook-bob']);
  });
});
