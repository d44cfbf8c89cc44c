/**
 * deploy/overlays/dcgm-compat against a real Prometheus: the demo node (simulated 8x H100, its
 * fake kubelet and pods) is scraped as the Prometheus Operator scrapes a ServiceMonitor target
 * (the target's own namespace, service, pod, container, job and endpoint labels, then the
 * ServiceMonitor's relabelings), with the ServiceMonitor of the dcgm-compat overlay:
 * honorLabels false. Queries written for dcgm-exporter behind such a ServiceMonitor (on
 * exported_pod, exported_namespace, exported_container) must find the demo's pods, `pod`,
 * `namespace` and `container` must name the exporter's own pod, and the queries of this
 * project that filter on `pod`/`namespace` must show the breakage the README describes.
 */
import { existsSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { simulatedNode } from '../src/sim/harness.js';
import { startSimulatedPods, type SimulatedPods } from '../src/sim/simulated-pods.js';
import { scrape, seriesOf, startExporterProcess, waitFor, type RunningExporter } from './support/exporter-process.js';
import {
  hasData,
  PROMETHEUS_BIN,
  serviceMonitorEndpoint,
  serviceMonitorScrapeConfig,
  startPrometheus,
  type ApiAnswer,
  type OperatorTarget,
  type QueryResult,
  type RunningPrometheus,
  type VectorSample,
} from './support/prometheus-server.js';

const NODE = 'gpu-node-1';
/** The exporter pod as the Prometheus Operator sees the target (endpoints of the Service). */
const TARGET: OperatorTarget = { namespace: 'gpu-monitoring', service: 'kube-gpu-exporter', pod: 'kube-gpu-exporter-abcde', container: 'exporter', node: NODE };

const prometheusInstalled = existsSync(PROMETHEUS_BIN);

describe.runIf(prometheusInstalled)('deploy/overlays/dcgm-compat (honorLabels false) against a real Prometheus scraping the demo node', () => {
  let pods: SimulatedPods;
  let exporter: RunningExporter;
  let prometheus: RunningPrometheus;
  /** The demo's pods that hold a device, from its kubelet scenario: pod -> namespace and container per kind of device. */
  const holders = new Map<string, { namespace: string; gpuContainers: Set<string>; containers: Set<string> }>();

  /** An instant query at a fixed time (so two queries see the same samples). */
  const queryAt = (expr: string, time: number): Promise<ApiAnswer<QueryResult>> =>
    prometheus.api<QueryResult>(`/api/v1/query?query=${encodeURIComponent(expr)}&time=${time}`);
  const vector = (a: ApiAnswer<QueryResult>): VectorSample[] => {
    expect(a.status, a.error).toBe('success');
    return a.data.result as VectorSample[];
  };

  beforeAll(async () => {
    const node = simulatedNode('h100x8');
    pods = await startSimulatedPods(node.statePath);
    for (const p of pods.scenario.pods) {
      for (const c of p.containers) {
        const ids = Object.values(c.devices).flat();
        if (ids.length === 0) continue;
        const h = holders.get(p.name) ?? { namespace: p.namespace, gpuContainers: new Set<string>(), containers: new Set<string>() };
        h.containers.add(c.name);
        // whole GPUs and replicas of shared GPUs (GPU-<uuid>[::n]) have DCGM_FI_DEV_GPU_UTIL; MIG instances do not
        if (ids.some((id) => id.startsWith('GPU-'))) h.gpuContainers.add(c.name);
        holders.set(p.name, h);
      }
    }
    exporter = await startExporterProcess({ library: node.libraryPath, statePath: node.statePath, args: [...pods.flags, '--sample-interval=500ms'], env: { NODE_NAME: NODE } });
    await waitFor(async () => (await scrape(exporter.url)).includes('kube_gpu_exporter_kubelet_up 1'), 20_000, 'the exporter with its pods');
    const endpoint = serviceMonitorEndpoint(['deploy/components/dcgm-compat/servicemonitor-patch.yaml']);
    expect(endpoint.honorLabels, 'the dcgm-compat ServiceMonitor').toBe(false);
    prometheus = await startPrometheus({
      files: {},
      config: stringify({ global: { scrape_interval: '1s', evaluation_interval: '1s' }, scrape_configs: [serviceMonitorScrapeConfig(endpoint, new URL(exporter.url).host, TARGET)] }),
    });
    // A scrape with the pods' series in it (one scrape is ingested whole).
    await waitFor(async () => hasData(await prometheus.query('DCGM_FI_DEV_FB_USED{exported_pod!=""}')), 20_000, 'a first scrape with pod series');
  }, 60_000);

  afterAll(async () => {
    await prometheus?.stop();
    await exporter?.stop();
    await pods?.stop();
  });

  it('the demo has pods on whole GPUs, on replicas of a shared GPU and on MIG instances, and the exporter writes them as pod/namespace/container', async () => {
    const gpuPods = [...holders].filter(([, h]) => h.gpuContainers.size > 0).map(([p]) => p);
    expect(gpuPods.length).toBeGreaterThanOrEqual(4);
    expect(holders.size).toBeGreaterThan(gpuPods.length);
    const metrics = await scrape(exporter.url);
    expect(new Set(seriesOf(metrics, 'DCGM_FI_DEV_GPU_UTIL').map((s) => s.labels.pod).filter(Boolean))).toEqual(new Set(gpuPods));
    expect(new Set(seriesOf(metrics, 'DCGM_FI_DEV_FB_USED').map((s) => s.labels.pod).filter(Boolean))).toEqual(new Set(holders.keys()));
  });

  it('DCGM_FI_DEV_GPU_UTIL{exported_pod="<pod>"} finds each demo pod on a GPU, with its namespace and container as exported_*, and the exporter pod as pod', async () => {
    const metrics = await scrape(exporter.url);
    for (const [name, h] of holders) {
      if (h.gpuContainers.size === 0) continue;
      const got = vector(await prometheus.query(`DCGM_FI_DEV_GPU_UTIL{exported_pod="${name}"}`));
      // one series per device (and replica) the pod holds, as the exporter writes them
      expect(got.length, name).toBe(seriesOf(metrics, 'DCGM_FI_DEV_GPU_UTIL').filter((s) => s.labels.pod === name).length);
      for (const s of got) {
        expect(s.metric, name).toMatchObject({ exported_namespace: h.namespace, pod: TARGET.pod, namespace: TARGET.namespace, container: TARGET.container, job: TARGET.service, instance: NODE });
        expect(h.gpuContainers.has(s.metric.exported_container!), `${name}: exported_container ${s.metric.exported_container}`).toBe(true);
        expect(Number(s.value[1])).toBeGreaterThanOrEqual(0);
        expect(Number(s.value[1])).toBeLessThanOrEqual(100);
      }
    }
  });

  it('sum by (exported_namespace) (DCGM_FI_DEV_FB_USED) has every namespace of the demo\'s pods, and devices no pod holds under no exported_namespace', async () => {
    const t = Date.now() / 1000;
    const sums = vector(await queryAt('sum by (exported_namespace) (DCGM_FI_DEV_FB_USED)', t));
    const raw = vector(await queryAt('DCGM_FI_DEV_FB_USED', t));
    const expected = new Map<string, number>();
    for (const s of raw) expected.set(s.metric.exported_namespace ?? '', (expected.get(s.metric.exported_namespace ?? '') ?? 0) + Number(s.value[1]));
    const namespaces = new Set([...holders.values()].map((h) => h.namespace));
    expect(new Set(sums.map((s) => s.metric.exported_namespace ?? ''))).toEqual(new Set([...namespaces, '']));
    for (const s of sums) expect(Number(s.value[1]), s.metric.exported_namespace).toBe(expected.get(s.metric.exported_namespace ?? ''));
    // the unheld devices (GPU 5, the free MIG instance, GPU 7 itself) keep only the target's labels
    const unheld = raw.filter((s) => s.metric.exported_pod === undefined);
    expect(unheld.length).toBeGreaterThan(0);
    for (const s of unheld) expect(s.metric).toMatchObject({ pod: TARGET.pod, namespace: TARGET.namespace, container: TARGET.container });
    for (const s of unheld) expect(s.metric.exported_namespace).toBeUndefined();
  });

  it('a prometheus-adapter style query, avg by (exported_namespace, exported_pod) (DCGM_FI_DEV_GPU_UTIL{exported_pod!=""}), has one value per demo pod on a GPU', async () => {
    const t = Date.now() / 1000;
    const got = vector(await queryAt('avg by (exported_namespace, exported_pod) (DCGM_FI_DEV_GPU_UTIL{exported_pod!=""})', t));
    const expected = [...holders].filter(([, h]) => h.gpuContainers.size > 0).map(([p, h]) => `${h.namespace}/${p}`).sort();
    expect(got.map((s) => `${s.metric.exported_namespace}/${s.metric.exported_pod}`).sort()).toEqual(expected);
    const raw = vector(await queryAt('DCGM_FI_DEV_GPU_UTIL{exported_pod!=""}', t));
    for (const s of got) {
      const own = raw.filter((r) => r.metric.exported_pod === s.metric.exported_pod).map((r) => Number(r.value[1]));
      expect(Number(s.value[1]), s.metric.exported_pod).toBeCloseTo(own.reduce((a, b) => a + b, 0) / own.length, 9);
    }
    // the label values a dashboard variable on exported_pod lists
    const values = await prometheus.api<string[]>(`/api/v1/label/exported_pod/values?match[]=${encodeURIComponent('DCGM_FI_DEV_FB_USED')}`);
    expect(new Set(values.data)).toEqual(new Set(holders.keys()));
  });

  it('pod, namespace and container name the exporter\'s own pod on every series', async () => {
    const groups = vector(await prometheus.query('count by (pod, namespace, container) ({job="kube-gpu-exporter"})'));
    expect(groups.map((g) => g.metric)).toEqual([{ pod: TARGET.pod, namespace: TARGET.namespace, container: TARGET.container }]);
    expect((await prometheus.api<string[]>('/api/v1/label/pod/values')).data).toEqual([TARGET.pod]);
  });

  it('what breaks: this project\'s label filters and aggregations on pod and namespace now see only the exporter pod; with exported_* they work again', async () => {
    const t = Date.now() / 1000;
    // showback by namespace (node_namespace:gpu_allocated:sum): everything lands in gpu-monitoring
    const byNamespace = vector(await queryAt('sum by (namespace) (gpu_allocated_ratio)', t));
    expect(byNamespace.map((s) => s.metric.namespace)).toEqual([TARGET.namespace]);
    // a dashboard's namespace filter finds nothing
    expect(vector(await queryAt(`DCGM_FI_DEV_GPU_UTIL{namespace="${[...holders.values()][0]!.namespace}"}`, t))).toEqual([]);
    // the idle alert's {pod!=""} no longer tells held devices from free ones
    const all = vector(await queryAt('count(gpu_busy_seconds_total)', t));
    const podFiltered = vector(await queryAt('count(gpu_busy_seconds_total{pod!=""})', t));
    const held = vector(await queryAt('count(gpu_busy_seconds_total{exported_pod!=""})', t));
    expect(podFiltered[0]!.value[1]).toBe(all[0]!.value[1]);
    expect(Number(held[0]!.value[1])).toBeLessThan(Number(all[0]!.value[1]));
    // the same showback on exported_namespace has every namespace, and the same total
    const fixed = vector(await queryAt('sum by (exported_namespace) (gpu_allocated_ratio)', t));
    expect(new Set(fixed.map((s) => s.metric.exported_namespace))).toEqual(new Set([...holders.values()].map((h) => h.namespace)));
    expect(fixed.reduce((a, s) => a + Number(s.value[1]), 0)).toBeCloseTo(Number(byNamespace[0]!.value[1]), 9);
  });
});
