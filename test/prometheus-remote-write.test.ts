/**
 * At fleet scale: a real Prometheus in agent mode scrapes the demo node (simulated 8x H100, its
 * fake kubelet and pods, pod metadata from a fake Kubernetes API with the pod-labels component's
 * label allowlist) as the Prometheus Operator scrapes the base ServiceMonitor, and remote-writes
 * everything to a second real Prometheus that receives remote write and evaluates the
 * project's rules (generated with short windows). From the receiver alone: every recording rule
 * and every dashboard query must return data, and every series received must stay inside
 * Mimir's default limits (30 labels per series including __name__, names of at most 1,024
 * bytes, values of at most 2,048 bytes).
 */
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { DASHBOARDS_DIR } from '../dashboards/build.js';
import { buildRules } from '../deploy/rules/build.js';
import { podLabelName } from '../src/attribution/pod-metadata.js';
import { simulatedNode } from '../src/sim/harness.js';
import { writeFakeKubeconfig } from '../src/sim/kubeconfig.js';
import { startSimulatedPods, type SimulatedPods } from '../src/sim/simulated-pods.js';
import { FakeApiServer } from './support/fake-apiserver.js';
import { ROOT, scrape, seriesOf, startExporterProcess, waitFor, type RunningExporter } from './support/exporter-process.js';
import { panelQueries, selectionFor, substitute, type Json } from './support/grafana-dashboards.js';
import {
  hasData,
  PROMETHEUS_BIN,
  remoteWriteReceiverFlags,
  serviceMonitorEndpoint,
  serviceMonitorScrapeConfig,
  startPrometheus,
  type OperatorTarget,
  type RunningPrometheus,
} from './support/prometheus-server.js';

const NODE = 'gpu-node-1';
const TARGET: OperatorTarget = { namespace: 'gpu-monitoring', service: 'kube-gpu-exporter', pod: 'kube-gpu-exporter-abcde', container: 'exporter', node: NODE };
/** Mimir's defaults: -validation.max-label-names-per-series, -validation.max-length-label-name, -validation.max-length-label-value. */
const MIMIR = { maxLabelNamesPerSeries: 30, maxLabelNameBytes: 1024, maxLabelValueBytes: 2048 };
/**
 * Dashboard variables (values the demo has). Rates over 10 s, not 5 s: samples reach the
 * receiver a remote-write batch (up to 1 s) after they are scraped.
 */
const VARIABLES: Record<string, string> = {
  datasource: '',
  node: NODE,
  namespace: 'inference',
  pod: 'chat-api-5d8f9-x2k4q',
  gpu: '4',
  __rate_interval: '10s',
  __interval: '1s',
  __interval_ms: '1000',
  __range: '15s',
  __range_s: '15',
  __range_ms: '15000',
};
const SHORT_WINDOWS = { idle_window: '10s', showback_rate_window: '10s', showback_step: '1s', xid_window: '1m', ecc_window: '1m', hw_slowdown_window: '1m', thermal_slowdown_window: '1m', rightsizing_window: '15s', rightsizing_step: '5s' };
/**
 * Families other work adds to the demo (as in test/prometheus-proof.test.ts): a query that
 * needs one is expected to have data only once the exporter's /metrics has the family.
 */
const PENDING_FAMILIES: { present: (metrics: string) => boolean; usedBy: (expr: string) => boolean }[] = [
  { present: (m) => /^DCGM_FI_PROF_SM_ACTIVE\{/m.test(m), usedBy: (e) => e.includes('DCGM_FI_PROF_SM_ACTIVE') },
  { present: (m) => /^DCGM_FI_PROF_PIPE_TENSOR_ACTIVE\{/m.test(m), usedBy: (e) => e.includes('DCGM_FI_PROF_PIPE_TENSOR_ACTIVE') },
  { present: (m) => /^gpu_busy_seconds_total\{[^}]*GPU_I_ID="/m.test(m), usedBy: (e) => /gpu_busy_seconds_total\{[^}]*GPU_I_ID!=""/.test(e) },
];

/** The label allowlist deploy/components/pod-labels ships (--kubernetes.pod-labels). */
function shippedPodLabelAllowlist(): string {
  const ops = parse(readFileSync(path.join(ROOT, 'deploy/components/pod-labels/daemonset-patch.yaml'), 'utf8')) as { value?: unknown }[];
  const arg = ops.map((o) => o.value).find((v): v is string => typeof v === 'string' && v.startsWith('--kubernetes.pod-labels='));
  if (!arg) throw new Error('deploy/components/pod-labels/daemonset-patch.yaml: no --kubernetes.pod-labels');
  return arg.slice(arg.indexOf('=') + 1);
}

const prometheusInstalled = existsSync(PROMETHEUS_BIN);
const dashboards = readdirSync(DASHBOARDS_DIR)
  .filter((f) => f.endsWith('.json'))
  .sort()
  .map((f) => JSON.parse(readFileSync(path.join(DASHBOARDS_DIR, f), 'utf8')) as Json);
const rules = buildRules(SHORT_WINDOWS).rules;
const records = (parse(rules) as { groups: { rules: { record?: string; expr: string }[] }[] }).groups.flatMap((g) => g.rules).filter((r) => r.record);

describe.runIf(prometheusInstalled)('a Prometheus agent scraping the demo node remote-writes to a receiver that answers the dashboards and rules', () => {
  let pods: SimulatedPods;
  let api: FakeApiServer;
  let exporter: RunningExporter;
  let receiver: RunningPrometheus;
  let agent: RunningPrometheus;
  let dir: string;
  let allowlist: RegExp;
  /** The exporter's /metrics once pod metadata is in. */
  let metrics = '';

  beforeAll(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'kge-remote-write-'));
    const node = simulatedNode('h100x8');
    pods = await startSimulatedPods(node.statePath);
    // The demo's pods in the Kubernetes API, with labels the allowlist takes and labels it leaves;
    // allowlisted values as long as Kubernetes allows (63 characters).
    api = await FakeApiServer.start({ defaultNodeName: NODE });
    for (const p of pods.scenario.pods) {
      api.addPod({
        namespace: p.namespace,
        name: p.name,
        uid: p.uid,
        labels: {
          app: p.name.slice(0, 63),
          team: `${p.namespace}-`.padEnd(63, 'x'),
          'app.kubernetes.io/name': `${p.name}-`.padEnd(63, 'y'),
          'pod-template-hash': '5d8f9',
          'controller-revision-hash': `${p.name}-6b7c8d9f`.slice(0, 63),
          'batch.kubernetes.io/job-name': p.name.slice(0, 63),
        },
      });
    }
    const kubeconfig = writeFakeKubeconfig(dir, api.url);
    const labels = shippedPodLabelAllowlist();
    allowlist = new RegExp(`^(?:${labels})$`);
    exporter = await startExporterProcess({
      library: node.libraryPath,
      statePath: node.statePath,
      args: [...pods.flags, '--sample-interval=500ms', '--kubernetes.pod-metadata=true', `--kubernetes.pod-labels=${labels}`, `--kubernetes.kubeconfig=${kubeconfig}`],
      env: { NODE_NAME: NODE },
    });
    await waitFor(
      async () => {
        const m = await scrape(exporter.url);
        return m.includes('kube_gpu_exporter_kubelet_up 1') && seriesOf(m, 'kube_gpu_exporter_pod_metadata_synced')[0]?.value === 1 && m.includes('label_team="');
      },
      20_000,
      'the exporter with its pods and their metadata',
    );
    metrics = await scrape(exporter.url);

    receiver = await startPrometheus({
      files: { 'kube-gpu-exporter.rules.yaml': rules },
      args: remoteWriteReceiverFlags(),
      config: stringify({ global: { evaluation_interval: '1s' }, rule_files: ['kube-gpu-exporter.rules.yaml'] }),
    });
    agent = await startPrometheus({
      agent: true,
      files: {},
      config: stringify({
        global: { scrape_interval: '1s' },
        // the base ServiceMonitor (honorLabels true), as the Prometheus Operator renders it
        scrape_configs: [serviceMonitorScrapeConfig(serviceMonitorEndpoint(), new URL(exporter.url).host, TARGET)],
        remote_write: [{ url: `${receiver.url}/api/v1/write`, queue_config: { batch_send_deadline: '1s', min_backoff: '100ms', max_backoff: '1s' } }],
      }),
    });
    await waitFor(async () => hasData(await receiver.query('gpu_allocated_ratio{label_team!=""}')), 30_000, 'remote-written samples with pod labels at the receiver');
  }, 90_000);

  afterAll(async () => {
    await agent?.stop();
    await receiver?.stop();
    await exporter?.stop();
    await api?.close();
    await pods?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('the agent only scrapes and forwards (no local queries) and has sent samples without failures', async () => {
    const q = await agent.query('up');
    expect(q.status).toBe('error');
    const total = (own: string, name: string): number => seriesOf(own, name).reduce((a, s) => a + s.value, 0);
    const own = await waitFor(
      async () => {
        const m = await (await fetch(`${agent.url}/metrics`)).text();
        return total(m, 'prometheus_remote_storage_samples_total') > 0 && m;
      },
      10_000,
      'the agent to count sent samples',
    );
    expect(total(own, 'prometheus_remote_storage_samples_failed_total')).toBe(0);
    // the receiver has no scrape config: `up` there came from the agent (appended after the
    // scrape's samples, so it may be a batch behind them)
    const up = await waitFor(async () => {
      const a = await receiver.query('up');
      return hasData(a) && (a.data.result as { metric: Record<string, string>; value: [number, string] }[]);
    }, 10_000, '`up` at the receiver');
    expect(up.map((s) => [s.metric.job, s.metric.instance, s.metric.pod, s.value[1]])).toEqual([[TARGET.service, NODE, TARGET.pod, '1']]);
  });

  it('every recording rule evaluates to data on the receiver, from remote-written samples', async () => {
    expect(records.length).toBeGreaterThan(0);
    const missing = async (): Promise<string[]> => {
      const out: string[] = [];
      for (const r of records) if (!hasData(await receiver.query(r.record!))) out.push(r.record!);
      return out;
    };
    await waitFor(async () => (await missing()).length === 0, 20_000, 'every recorded series').catch(() => undefined);
    expect(await missing()).toEqual([]);
    const a = await receiver.api<{ groups: { rules: { name: string; health: string; lastError?: string }[] }[] }>('/api/v1/rules');
    expect(a.data.groups.flatMap((g) => g.rules).filter((r) => r.health !== 'ok').map((r) => `${r.name}: ${r.lastError}`)).toEqual([]);
    // showback from the receiver matches the demo's shares (as in test/prometheus-proof.test.ts)
    const allocated = await receiver.query('sum(node_namespace:gpu_allocated:sum)');
    expect(Number((allocated.data.result as { value: [number, string] }[])[0]!.value[1])).toBeCloseTo(6 + 5 / 7, 9);
  });

  it('every dashboard query returns data from the receiver (queries on families the demo does not have yet excepted)', async () => {
    const queries = dashboards.flatMap((d) => panelQueries(d).map((q) => ({ what: `${q.dashboard} / ${q.panel} / ${q.refId}`, expr: substitute(q.expr, selectionFor(q.panel, VARIABLES)) })));
    expect(queries.length).toBeGreaterThan(50);
    const expected = queries.filter((q) => !PENDING_FAMILIES.some((f) => f.usedBy(q.expr) && !f.present(metrics)));
    const failing = async (): Promise<{ what: string; problem: string }[]> => {
      const out: { what: string; problem: string }[] = [];
      for (const q of expected) {
        const a = await receiver.query(q.expr);
        if (a.status !== 'success') out.push({ what: q.what, problem: `error: ${a.error}` });
        else if (!hasData(a)) out.push({ what: q.what, problem: 'no data' });
      }
      return out;
    };
    // the range queries ($__range = 15s) fill as samples arrive
    await waitFor(async () => (await failing()).length === 0, 20_000, 'every dashboard query').catch(() => undefined);
    expect(await failing()).toEqual([]);
  });

  it('every series received stays inside Mimir\'s default limits, with pod UIDs and allowlisted pod labels on', async () => {
    const a = await receiver.api<Record<string, string>[]>(`/api/v1/series?match[]=${encodeURIComponent('{job=~".+"}')}&start=${Date.now() / 1000 - 600}`);
    expect(a.status).toBe('success');
    const series = a.data;
    // everything the exporter serves arrived (each family with its series; up and scrape_* besides)
    const families = new Set(metrics.split('\n').filter((l) => l && !l.startsWith('#')).map((l) => l.split(/[{ ]/)[0]!));
    const received = new Set(series.map((s) => s.__name__));
    expect([...families].filter((f) => !received.has(f))).toEqual([]);
    expect(series.length).toBeGreaterThan(families.size);
    // pod metadata is on: pod_uid and the allowlisted labels arrived, nothing outside the allowlist
    const labelNames = new Set(series.flatMap((s) => Object.keys(s)));
    for (const key of ['app', 'team', 'app.kubernetes.io/name']) expect(allowlist.test(key), key).toBe(true);
    for (const name of ['pod_uid', podLabelName('app'), podLabelName('team'), podLabelName('app.kubernetes.io/name')]) expect(labelNames.has(name), name).toBe(true);
    for (const key of ['pod-template-hash', 'controller-revision-hash', 'batch.kubernetes.io/job-name']) expect(labelNames.has(podLabelName(key)), key).toBe(false);

    const tooMany = series.filter((s) => Object.keys(s).length > MIMIR.maxLabelNamesPerSeries);
    const longNames = series.flatMap((s) => Object.keys(s).filter((k) => Buffer.byteLength(k) > MIMIR.maxLabelNameBytes));
    const longValues = series.flatMap((s) => Object.entries(s).filter(([, v]) => Buffer.byteLength(v) > MIMIR.maxLabelValueBytes).map(([k]) => `${s.__name__}: ${k}`));
    expect(tooMany.map((s) => `${s.__name__}: ${Object.keys(s).length} labels`)).toEqual([]);
    expect(longNames).toEqual([]);
    expect(longValues).toEqual([]);
    const widest = series.reduce((w, s) => (Object.keys(s).length > Object.keys(w).length ? s : w));
    const longest = Math.max(...series.flatMap((s) => Object.values(s).map((v) => Buffer.byteLength(v))));
    process.stdout.write(`remote write: ${series.length} series, at most ${Object.keys(widest).length} labels (${widest.__name__}: ${Object.keys(widest).join(', ')}), longest value ${longest} bytes\n`);
  });
});
