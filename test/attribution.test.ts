import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { FakeKubelet } from '../src/sim/fake-kubelet.js';
import { simulatedNode } from '../src/sim/harness.js';
import type { KubeletScenario } from '../src/sim/kubelet-scenario.js';
import { startSimulatedPods, type SimulatedPods } from '../src/sim/simulated-pods.js';
import { scrape, seriesOf, startExporterProcess, waitFor, type RunningExporter } from './support/exporter-process.js';

/**
 * Pod attribution end to end: the real CLI in its own process, the simulated 8x H100 node
 * (GPU 7 in MIG mode) and its pods served by a real gRPC server on a unix socket.
 */
const node = simulatedNode('h100x8');
const G = {
  0: 'GPU-a4c123b1-612d-d272-d137-1c17149d4395',
  4: 'GPU-cc3fc162-6e53-a130-43b0-26c48bbf33fe',
  5: 'GPU-ff9243a8-f506-b409-28b5-b7a767c76fb0',
  6: 'GPU-08f86beb-b273-7f6a-6f0f-b23c6f5da2ce',
};
const FAST = ['--sample-interval=200ms', '--kubelet.refresh-interval=500ms', '--kubelet.timeout=300ms'];

const cleanups: (() => Promise<unknown>)[] = [];
afterAll(async () => {
  for (const c of cleanups.reverse()) await c();
});

async function start(args: string[] = []): Promise<{ exp: RunningExporter; pods: SimulatedPods }> {
  const pods = await startSimulatedPods(node.statePath);
  cleanups.push(() => pods.stop());
  const exp = await startExporterProcess({ library: node.libraryPath, statePath: node.statePath, args: [...pods.flags, ...FAST, ...args] });
  cleanups.push(() => exp.stop());
  await waitFor(async () => seriesOf(await scrape(exp.url), 'kube_gpu_exporter_kubelet_up')[0]?.value === 1 && seriesOf(await scrape(exp.url), 'gpu_container_processes').length > 0, 15_000, 'kubelet and processes');
  return { exp, pods };
}

function podsOf(text: string, family: string, match: Record<string, string>): string[] {
  return seriesOf(text, family)
    .filter((s) => Object.entries(match).every(([k, v]) => s.labels[k] === v))
    .map((s) => `${s.labels.namespace ?? ''}/${s.labels.pod ?? ''}/${s.labels.container ?? ''}${s.labels.vgpu !== undefined ? `#${s.labels.vgpu}` : ''}`)
    .sort();
}

describe('pod labels from the kubelet', () => {
  it('labels whole GPUs, replicas of a shared GPU and MIG instances, and leaves free devices unlabelled', async () => {
    const { exp } = await start();
    const text = await scrape(exp.url);
    expect(podsOf(text, 'DCGM_FI_DEV_GPU_TEMP', { UUID: G[0] })).toEqual(['ml-train/llm-pretrain-0/trainer']);
    expect(podsOf(text, 'DCGM_FI_DEV_GPU_TEMP', { UUID: G[4] })).toEqual([
      'inference/chat-api-5d8f9-p7m2z/server#2',
      'inference/chat-api-5d8f9-x2k4q/server#0',
      'inference/chat-api-5d8f9-x2k4q/server#1',
      'notebooks/jupyter-alice/notebook#3',
    ]);
    expect(podsOf(text, 'DCGM_FI_DEV_GPU_TEMP', { UUID: G[5] })).toEqual(['//']); // allocatable but free
    expect(podsOf(text, 'DCGM_FI_DEV_FB_USED', { gpu: '7', GPU_I_ID: '2' })).toEqual(['batch/embed-job-1-8kq2w/embed']);
    expect(podsOf(text, 'DCGM_FI_DEV_FB_USED', { gpu: '7', GPU_I_ID: '3' })).toEqual(['//']); // 2g.20gb: nobody
    expect(seriesOf(text, 'kube_gpu_exporter_kubelet_pods')[0]?.value).toBe(9);
    expect(seriesOf(text, 'kube_gpu_exporter_kubelet_unknown_device_ids')[0]?.value).toBe(0);
  });

  it('writes the allocated share: 1 per whole GPU, 1/replicas per replica, the compute slice per MIG instance', async () => {
    const { exp } = await start();
    const text = await scrape(exp.url);
    const share = (match: Record<string, string>) => seriesOf(text, 'gpu_allocated_ratio').filter((s) => Object.entries(match).every(([k, v]) => s.labels[k] === v)).map((s) => s.value);
    expect(share({ UUID: G[0] })).toEqual([1]);
    expect(share({ UUID: G[6], pod: 'notebook-bob' })).toEqual([1]);
    expect(share({ UUID: G[4] })).toEqual([0.25, 0.25, 0.25, 0.25]);
    expect(share({ gpu: '7', GPU_I_ID: '2' })).toEqual([Number((3 / 7).toPrecision(15))]);
    expect(share({ gpu: '7', GPU_I_ID: '9' })).toEqual([Number((1 / 7).toPrecision(15))]);
    expect(share({ UUID: G[5] })).toEqual([]);
    // a namespace's GPUs: the shared GPU is not counted four times
    const inference = seriesOf(text, 'gpu_allocated_ratio').filter((s) => s.labels.namespace === 'inference').reduce((a, s) => a + s.value, 0);
    expect(inference).toBeCloseTo(0.75, 10);
  });

  it('attributes each process to its container, and processes outside pods to empty pod labels', async () => {
    const { exp } = await start();
    const text = await scrape(exp.url);
    const mem = (match: Record<string, string>) => seriesOf(text, 'gpu_container_memory_used_bytes').filter((s) => Object.entries(match).every(([k, v]) => s.labels[k] === v));
    expect(mem({ UUID: G[0] }).map((s) => [s.labels.pod, s.labels.container, s.value])).toEqual([['llm-pretrain-0', 'trainer', 68719476736]]);
    expect(mem({ UUID: G[0] })[0]!.labels.pod_uid).toMatch(/^[0-9a-f-]{36}$/);
    expect(mem({ UUID: G[5] }).map((s) => [s.labels.namespace, s.labels.pod, s.labels.container, s.labels.pod_uid, s.value])).toEqual([['', '', '', '', 74088185856]]);
    expect(mem({ UUID: G[4] }).map((s) => s.labels.pod).sort()).toEqual(['chat-api-5d8f9-p7m2z', 'chat-api-5d8f9-x2k4q', 'jupyter-alice']);
    expect(mem({ gpu: '7', GPU_I_ID: '9' }).map((s) => [s.labels.pod, s.value])).toEqual([['embed-job-2-4hx9d', 3221225472]]);
    const procs = seriesOf(text, 'gpu_container_processes').reduce((a, s) => a + s.value, 0);
    expect(procs).toBe(11);
    expect(seriesOf(text, 'kube_gpu_exporter_unplaced_processes')[0]?.value).toBe(0);
    const sm = seriesOf(text, 'gpu_container_sm_utilization_ratio');
    const trainer = sm.find((s) => s.labels.UUID === G[0])!;
    expect(trainer.labels.container).toBe('trainer');
    expect(trainer.value).toBeGreaterThanOrEqual(0.82);
    expect(trainer.value).toBeLessThanOrEqual(0.99);
    expect(sm.filter((s) => s.labels.gpu === '7')).toEqual([]); // not available on MIG
  });

  it('drops a pod that leaves at the next refresh: no stale series', async () => {
    const { exp, pods } = await start();
    const without: KubeletScenario = { ...pods.scenario, pods: pods.scenario.pods.filter((p) => p.name !== 'jupyter-alice') };
    pods.update(without);
    await waitFor(async () => !(await scrape(exp.url)).includes('jupyter-alice'), 5000, 'jupyter-alice gone');
    const text = await scrape(exp.url);
    expect(podsOf(text, 'DCGM_FI_DEV_GPU_TEMP', { UUID: G[4] })).toHaveLength(3);
    expect(seriesOf(text, 'kube_gpu_exporter_kubelet_pods')[0]?.value).toBe(8);
    // its process (still listed by the simulated NVML) has no /proc entry now: unplaced, not "outside pods"
    expect(seriesOf(text, 'kube_gpu_exporter_unplaced_processes')[0]?.value).toBe(1);
    expect(seriesOf(text, 'gpu_container_processes').filter((s) => s.labels.UUID === G[4] && s.labels.pod === '')).toEqual([]);
  });

  it('escapes odd pod and container names and counts unknown device ids', async () => {
    const { exp, pods } = await start();
    const odd: KubeletScenario = {
      ...pods.scenario,
      pods: [
        ...pods.scenario.pods.filter((p) => p.name !== 'notebook-bob'),
        { namespace: 'we"ird', name: 'pod\\with\nnewline-ü', uid: '11111111-2222-4333-8444-555555555555', containers: [{ name: 'c"1', id: 'a'.repeat(64), devices: { 'nvidia.com/gpu': [G[6], 'GPU-00000000-0000-0000-0000-000000000000', 'nvidia0'] }, pids: [] }] },
      ],
    };
    pods.update(odd);
    await waitFor(async () => (await scrape(exp.url)).includes('we\\"ird'), 5000, 'odd pod');
    const text = await scrape(exp.url);
    const line = text.split('\n').find((l) => l.startsWith('DCGM_FI_DEV_GPU_TEMP{') && l.includes(G[6]))!;
    expect(line).toContain('container="c\\"1",namespace="we\\"ird",pod="pod\\\\with\\nnewline-ü"');
    expect(seriesOf(text, 'kube_gpu_exporter_kubelet_unknown_device_ids')[0]?.value).toBe(2);
    expect(() => execFileSync('promtool', ['check', 'metrics'], { input: text, stdio: ['pipe', 'pipe', 'pipe'] })).not.toThrow(/error while linting|parse/);
  });
});

describe('kubelet faults', () => {
  it('serves without pod labels while the socket is missing, then picks the kubelet up', async () => {
    const sock = path.join(mkdtempSync(path.join(os.tmpdir(), 'kge-late-kubelet-')), 'pod-resources', 'kubelet.sock');
    const exp = await startExporterProcess({ library: node.libraryPath, statePath: node.statePath, args: [`--kubelet.socket=${sock}`, ...FAST] });
    cleanups.push(() => exp.stop());
    await waitFor(async () => (await fetch(`${exp.url}/readyz`)).status === 200, 15_000, 'readyz');
    let text = await scrape(exp.url);
    expect(seriesOf(text, 'kube_gpu_exporter_kubelet_up')[0]?.value).toBe(0);
    expect(seriesOf(text, 'DCGM_FI_DEV_GPU_TEMP').every((s) => !s.labels.pod)).toBe(true);
    expect(exp.logs().filter((l) => l.includes('kubelet pod resources not answering')).length).toBe(1); // logged once, not per retry
    const { listResponse, allocatableResponse, loadKubeletScenario } = await import('../src/sim/kubelet-scenario.js');
    const scenario = loadKubeletScenario(node.statePath)!;
    const kubelet = await FakeKubelet.start(sock, { list: listResponse(scenario), allocatable: allocatableResponse(scenario) });
    cleanups.push(() => kubelet.close());
    await waitFor(async () => seriesOf(await scrape(exp.url), 'kube_gpu_exporter_kubelet_up')[0]?.value === 1, 15_000, 'kubelet up');
    text = await scrape(exp.url);
    expect(podsOf(text, 'DCGM_FI_DEV_GPU_TEMP', { UUID: G[0] })).toEqual(['ml-train/llm-pretrain-0/trainer']);
  });

  it('keeps the last known pods and fast scrapes while List hangs', async () => {
    const { exp, pods } = await start();
    pods.kubelet.listDelayMs = 10_000;
    await waitFor(async () => seriesOf(await scrape(exp.url), 'kube_gpu_exporter_kubelet_up')[0]?.value === 0, 5000, 'kubelet down');
    const t0 = performance.now();
    const text = await scrape(exp.url);
    expect(performance.now() - t0).toBeLessThan(250);
    expect(podsOf(text, 'DCGM_FI_DEV_GPU_TEMP', { UUID: G[0] })).toEqual(['ml-train/llm-pretrain-0/trainer']);
    pods.kubelet.listDelayMs = 0;
  });
});

describe('pod metadata from the Kubernetes API (--kubernetes.pod-metadata)', () => {
  it('adds pod_uid and allowlisted pod labels to pod series, from a watch on this node\'s pods', async () => {
    const { FakeApiServer } = await import('./support/fake-apiserver.js');
    const api = await FakeApiServer.start({ defaultNodeName: 'golden-node' });
    cleanups.push(() => api.close());
    const kubeconfig = path.join(mkdtempSync(path.join(os.tmpdir(), 'kge-kubeconfig-')), 'config');
    writeFileSync(
      kubeconfig,
      JSON.stringify({
        apiVersion: 'v1', kind: 'Config', 'current-context': 'fake',
        clusters: [{ name: 'fake', cluster: { server: api.url, 'insecure-skip-tls-verify': true } }], // the client refuses plain http otherwise
        users: [{ name: 'fake', user: {} }],
        contexts: [{ name: 'fake', context: { cluster: 'fake', user: 'fake' } }],
      }),
    );
    api.addPod({ namespace: 'ml-train', name: 'llm-pretrain-0', uid: '0f0e0d0c-0b0a-4908-8706-050403020100', labels: { team: 'nlp', 'app.kubernetes.io/name': 'pretrain', secret: 'no' } });
    api.addPod({ namespace: 'other', name: 'elsewhere', nodeName: 'another-node', labels: { team: 'x' } });
    const { exp } = await start(['--kubernetes.pod-metadata=true', '--kubernetes.pod-labels=team|app\\.kubernetes\\.io/name', `--kubernetes.kubeconfig=${kubeconfig}`]);
    await waitFor(async () => seriesOf(await scrape(exp.url), 'kube_gpu_exporter_pod_metadata_synced')[0]?.value === 1, 15_000, 'metadata synced');
    await waitFor(async () => (await scrape(exp.url)).includes('label_team="nlp"'), 5000, 'labels');
    const text = await scrape(exp.url);
    const g0 = seriesOf(text, 'DCGM_FI_DEV_GPU_TEMP').find((s) => s.labels.UUID === G[0])!;
    expect(g0.labels).toMatchObject({ pod: 'llm-pretrain-0', pod_uid: '0f0e0d0c-0b0a-4908-8706-050403020100', label_team: 'nlp', label_app_kubernetes_io_name: 'pretrain' });
    expect(g0.labels.label_secret).toBeUndefined();
    // pods the API does not know keep their kubelet labels, without metadata
    const g6 = seriesOf(text, 'DCGM_FI_DEV_GPU_TEMP').find((s) => s.labels.UUID === G[6])!;
    expect(g6.labels.pod).toBe('notebook-bob');
    expect(g6.labels.pod_uid).toBeUndefined();
    expect(api.listRequests()[0]?.query.fieldSelector).toBe('spec.nodeName=golden-node');
    // a label change arrives through the watch
    api.modifyPod('ml-train', 'llm-pretrain-0', { labels: { team: 'speech' } });
    await waitFor(async () => (await scrape(exp.url)).includes('label_team="speech"'), 5000, 'label change');
  });

  it('serves without metadata while the API server is unreachable', async () => {
    const kubeconfig = path.join(mkdtempSync(path.join(os.tmpdir(), 'kge-kubeconfig-')), 'config');
    writeFileSync(kubeconfig, JSON.stringify({ apiVersion: 'v1', kind: 'Config', 'current-context': 'x', clusters: [{ name: 'x', cluster: { server: 'http://127.0.0.1:9' } }], users: [{ name: 'x', user: {} }], contexts: [{ name: 'x', context: { cluster: 'x', user: 'x' } }] }));
    const { exp } = await start(['--kubernetes.pod-metadata=true', `--kubernetes.kubeconfig=${kubeconfig}`]);
    const text = await scrape(exp.url);
    expect(seriesOf(text, 'kube_gpu_exporter_pod_metadata_synced')[0]?.value).toBe(0);
    expect(podsOf(text, 'DCGM_FI_DEV_GPU_TEMP', { UUID: G[0] })).toEqual(['ml-train/llm-pretrain-0/trainer']);
    await waitFor(() => exp.logs().some((l) => l.includes('pod metadata unavailable')), 5000, 'error logged');
  });
});
