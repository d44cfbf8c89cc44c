import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { buildDeviceMap, parseDeviceId, replicaCounts } from '../src/attribution/device-map.js';
import { DeviceMapSource } from '../src/attribution/kubelet/device-map-source.js';
import type { ListPodResourcesResponse, PodResources } from '../src/attribution/kubelet/podresources.js';
import { FakeKubelet } from '../src/sim/fake-kubelet.js';
import { defaultAllocatable, parseKubeletScenario, simDevices } from '../src/sim/kubelet-scenario.js';
import { waitFor } from './support/exporter-process.js';

const G0 = 'GPU-a4c123b1-612d-d272-d137-1c17149d4395';
const G1 = 'GPU-36b3216f-daee-b975-729f-ae923d5a4fd1';
const M0 = 'MIG-4f6b2a4e-7d0e-5c1b-9a43-2e8d61c0b7a5';

function pod(namespace: string, name: string, devices: Record<string, string[]>, container = 'main'): PodResources {
  return { namespace, name, containers: [{ name: container, devices: Object.entries(devices).map(([resourceName, deviceIds]) => ({ resourceName, deviceIds })) }] };
}
const list = (...pods: PodResources[]): ListPodResourcesResponse => ({ podResources: pods });

describe('device ids and the device map', () => {
  it('parses whole GPU, MIG and replica ids and rejects anything else', () => {
    expect(parseDeviceId(G0)).toEqual({ uuid: G0 });
    expect(parseDeviceId(M0)).toEqual({ uuid: M0 });
    expect(parseDeviceId(`${G0}::3`)).toEqual({ uuid: G0, replica: 3 });
    expect(parseDeviceId(`${M0}::0`)).toEqual({ uuid: M0, replica: 0 });
    for (const bad of ['0', 'nvidia0', `${G0}::`, `${G0}::x`, '', 'GPU-', 'gpu-abc']) expect(parseDeviceId(bad)).toBeUndefined();
  });

  it('keeps NVIDIA resources only, names holders, counts replicas from the allocatable devices', () => {
    const map = buildDeviceMap(
      list(
        pod('a', 'whole', { 'nvidia.com/gpu': [G0], 'example.com/foo': ['GPU-not-ours'], 'amd.com/gpu': ['GPU-amd'] }),
        pod('b', 'mig', { 'nvidia.com/mig-3g.40gb': [M0] }),
        pod('c', 'shared-1', { 'nvidia.com/gpu.shared': [`${G1}::0`, `${G1}::1`] }),
        pod('c', 'shared-2', { 'nvidia.com/gpu.shared': [`${G1}::3`] }),
        pod('d', 'cpu-only', { 'example.com/foo': ['x'] }),
      ),
      { devices: [{ resourceName: 'nvidia.com/gpu.shared', deviceIds: [0, 1, 2, 3].map((n) => `${G1}::${n}`) }, { resourceName: 'example.com/foo', deviceIds: [`${G0}::9`] }] },
    );
    expect(map.pods).toBe(4);
    expect(map.claims.get(G0)).toEqual([{ namespace: 'a', pod: 'whole', container: 'main', resource: 'nvidia.com/gpu' }]);
    expect(map.claims.get(M0)).toEqual([{ namespace: 'b', pod: 'mig', container: 'main', resource: 'nvidia.com/mig-3g.40gb' }]);
    expect(map.claims.get(G1)?.map((c) => [c.pod, c.replica, c.replicas])).toEqual([
      ['shared-1', 0, 4],
      ['shared-1', 1, 4],
      ['shared-2', 3, 4],
    ]);
    expect([...map.claims.keys()].sort()).toEqual([G1, G0, M0].sort());
    expect(map.unparsedIds).toEqual([]);
  });

  it('reports ids under NVIDIA resources that are not device ids, and drops duplicates', () => {
    const map = buildDeviceMap(list(pod('a', 'p', { 'nvidia.com/gpu': ['0', G0, G0, 'nvidia1'] })), undefined);
    expect(map.unparsedIds).toEqual(['0', 'nvidia1']);
    expect(map.claims.get(G0)).toHaveLength(1);
  });

  it('leaves the replica count unknown without allocatable devices', () => {
    const map = buildDeviceMap(list(pod('a', 'p', { 'nvidia.com/gpu.shared': [`${G0}::1`] })), undefined);
    expect(map.claims.get(G0)).toEqual([{ namespace: 'a', pod: 'p', container: 'main', resource: 'nvidia.com/gpu.shared', replica: 1 }]);
    expect(replicaCounts([])).toEqual(new Map());
  });

  it('tolerates missing repeated fields (proto3 empty lists)', () => {
    const odd = { podResources: [{ name: 'p', namespace: 'n', containers: [{ name: 'c' }] }, { name: 'q', namespace: 'n' }] } as unknown as ListPodResourcesResponse;
    expect(buildDeviceMap(odd, undefined).pods).toBe(0);
  });
});

describe('pods scenario files', () => {
  const sim = `gpu.0.uuid ${G0}\ngpu.1.uuid ${G1}\ngpu.7.mig_mode 1\ngpu.7.uuid GPU-x\ngpu.7.mig.0.uuid ${M0}\ngpu.7.mig.0.profile 3g.40gb\n`;
  const devices = simDevices(sim);

  it('resolves placeholders and derives allocatable devices from the .sim file', () => {
    const s = parseKubeletScenario(
      JSON.stringify({ pods: [{ namespace: 'n', name: 'p', containers: [{ name: 'c', devices: { 'nvidia.com/gpu.shared': ['gpu:1::2'], 'nvidia.com/mig-3g.40gb': ['mig:7.0'] }, pids: [7] }] }] }),
      'x.pods.json',
      devices,
    );
    expect(s.pods[0]!.containers[0]!.devices).toEqual({ 'nvidia.com/gpu.shared': [`${G1}::2`], 'nvidia.com/mig-3g.40gb': [M0] });
    expect(s.pods[0]!.uid).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-8[0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(s.pods[0]!.containers[0]!.id).toMatch(/^[0-9a-f]{64}$/);
    expect(s.allocatable).toEqual({ 'nvidia.com/gpu': [G0, G1], 'nvidia.com/mig-3g.40gb': [M0] });
  });

  it('takes MIG mode from a gpu.* default unless a gpu.<i> line says otherwise, in any order', () => {
    const d = simDevices(`gpu.1.mig_mode 0\ngpu.*.mig_mode 1\ngpu.0.uuid ${G0}\ngpu.1.uuid ${G1}\ngpu.0.mig.0.uuid ${M0}\ngpu.0.mig.0.profile 1g.10gb\n`);
    expect([d.gpus.get(0)!.migMode, d.gpus.get(1)!.migMode]).toEqual([true, false]);
    expect(defaultAllocatable(d)).toEqual({ 'nvidia.com/mig-1g.10gb': [M0], 'nvidia.com/gpu': [G1] });
  });

  it.each([
    ['not json', 'x.pods.json: JSON: '],
    ['{"pods": {}}', 'x.pods.json: pods: expected an array'],
    ['{"pods": [], "extra": 1}', 'x.pods.json: extra: unknown key'],
    ['{"pods": [{"namespace": "n", "containers": []}]}', 'x.pods.json: pods[0].name: expected a non-empty string'],
    ['{"pods": [{"namespace": "n", "name": "p", "containers": [{"name": "c", "devices": {"nvidia.com/gpu": ["gpu:5"]}}]}]}', 'pods[0].containers[0].devices["nvidia.com/gpu"][0]: "gpu:5": the .sim file has no gpu.5.uuid'],
    ['{"pods": [{"namespace": "n", "name": "p", "containers": [{"name": "c", "pids": [-1]}]}]}', 'pods[0].containers[0].pids: expected an array of pids'],
    ['{"pods": [{"namespace": "n", "name": "p", "containers": [{"name": "c", "id": "abc"}]}]}', 'pods[0].containers[0].id: expected 64 lowercase hex digits'],
  ])('rejects %s with a message naming the place', (text, message) => {
    expect(() => parseKubeletScenario(text, 'x.pods.json', devices)).toThrow(message);
  });
});

describe('the kubelet client against a real gRPC server on a unix socket', () => {
  const logger = pino({ level: 'silent' });
  const cleanups: (() => Promise<void> | void)[] = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  function socketPath(): string {
    return path.join(mkdtempSync(path.join(os.tmpdir(), 'kge-kubelet-')), 'pod-resources', 'kubelet.sock');
  }
  async function kubelet(sock: string, pods: PodResources[]): Promise<FakeKubelet> {
    const k = await FakeKubelet.start(sock, { list: list(...pods), allocatable: { devices: [] } });
    cleanups.push(() => k.close());
    return k;
  }
  function source(sock: string, refreshMs = 100, deadlineMs = 300): DeviceMapSource {
    const s = new DeviceMapSource({ socketPath: sock, refreshMs, deadlineMs, logger });
    cleanups.push(() => s.stop());
    return s;
  }

  it('reads List and GetAllocatableResources and refreshes on its own schedule', async () => {
    const sock = socketPath();
    const k = await kubelet(sock, [pod('n', 'p', { 'nvidia.com/gpu': [G0] })]);
    const s = source(sock);
    s.start();
    await waitFor(() => s.status.up, 5000, 'first refresh');
    expect(s.map.claims.get(G0)?.[0]?.pod).toBe('p');
    expect(s.status.allocatableUp).toBe(true);
    const before = k.calls.list;
    await new Promise((r) => setTimeout(r, 550));
    const refreshes = k.calls.list - before;
    expect(refreshes).toBeGreaterThanOrEqual(2); // every 100 ms...
    expect(refreshes).toBeLessThanOrEqual(7); // ...not more
    // the pods did not change: GetAllocatableResources was called on the first refresh only
    expect(k.calls.allocatable).toBe(1);
  });

  it('calls GetAllocatableResources again when the pods change and when its answer is older than its maximum age', async () => {
    const sock = socketPath();
    const k = await kubelet(sock, [pod('n', 'p', { 'nvidia.com/gpu.shared': [`${G0}::1`] })]);
    const s = new DeviceMapSource({ socketPath: sock, refreshMs: 1e9, deadlineMs: 2000, allocatableMaxAgeMs: 300, logger });
    cleanups.push(() => s.stop());
    await s.refresh();
    await s.refresh();
    expect(k.calls).toEqual({ list: 2, allocatable: 1 });
    k.setResponses({ list: list(pod('n', 'p', { 'nvidia.com/gpu.shared': [`${G0}::1`] }), pod('n', 'q', { 'nvidia.com/gpu.shared': [`${G0}::2`] })), allocatable: { devices: [] } });
    await s.refresh();
    expect(k.calls).toEqual({ list: 3, allocatable: 2 });
    expect(s.map.claims.get(G0)?.map((c) => c.pod)).toEqual(['p', 'q']);
    const at = performance.now();
    await waitFor(() => performance.now() - at > 300, 2000, 'the maximum age');
    await s.refresh();
    expect(k.calls).toEqual({ list: 4, allocatable: 3 });
  });

  it('keeps the map it built while the kubelet answers the same bytes, and builds a new one when an answer changes', async () => {
    const sock = socketPath();
    const k = await kubelet(sock, [pod('n', 'p', { 'nvidia.com/gpu': [G0] })]);
    const s = source(sock);
    s.start();
    await waitFor(() => s.status.up, 5000, 'first refresh');
    const first = s.map;
    const calls = k.calls.list;
    await waitFor(() => k.calls.list >= calls + 3, 5000, 'three more refreshes');
    expect(s.map).toBe(first); // unchanged answers: neither decoded nor built again
    k.setResponses({ list: list(pod('n', 'p', { 'nvidia.com/gpu': [G0] }), pod('n', 'q', { 'nvidia.com/gpu': [G1] })), allocatable: { devices: [] } });
    await waitFor(() => s.map.claims.get(G1)?.[0]?.pod === 'q', 5000, 'the new pod');
    expect(s.map).not.toBe(first);
    expect(s.map.claims.get(G0)?.[0]?.pod).toBe('p');
  });

  it('starts without the socket, retries with backoff, and picks the kubelet up when it appears', async () => {
    const sock = socketPath();
    const s = source(sock, 200);
    s.start();
    await waitFor(() => s.status.failures >= 2, 5000, 'failed refreshes');
    expect(s.status.up).toBe(false);
    expect(s.map.pods).toBe(0);
    await kubelet(sock, [pod('n', 'late', { 'nvidia.com/gpu': [G0] })]);
    await waitFor(() => s.status.up, 5000, 'kubelet picked up');
    expect(s.map.claims.get(G0)?.[0]?.pod).toBe('late');
  });

  it('survives a kubelet restart (socket replaced) and sees the new pods', async () => {
    const sock = socketPath();
    const k = await kubelet(sock, [pod('n', 'before', { 'nvidia.com/gpu': [G0] })]);
    const s = source(sock);
    s.start();
    await waitFor(() => s.map.claims.get(G0)?.[0]?.pod === 'before', 5000, 'first map');
    k.setResponses({ list: list(pod('n', 'after', { 'nvidia.com/gpu': [G0] })), allocatable: { devices: [] } });
    await k.restart();
    await waitFor(() => s.map.claims.get(G0)?.[0]?.pod === 'after', 5000, 'map after restart');
    expect(s.status.up).toBe(true);
  });

  it('gives up on a List that hangs at the deadline and keeps the last good map', async () => {
    const sock = socketPath();
    const k = await kubelet(sock, [pod('n', 'p', { 'nvidia.com/gpu': [G0] })]);
    const s = source(sock, 100, 200);
    s.start();
    await waitFor(() => s.status.up, 5000, 'first refresh');
    k.listDelayMs = 5000;
    await waitFor(() => !s.status.up, 3000, 'deadline exceeded');
    expect(s.status.lastRefreshSeconds).toBeGreaterThanOrEqual(0.19);
    expect(s.status.lastRefreshSeconds).toBeLessThan(1);
    expect(s.map.claims.get(G0)?.[0]?.pod).toBe('p');
    k.listDelayMs = 0;
    await waitFor(() => s.status.up, 5000, 'recovered');
  });

  it('drops a pod that left at the next refresh', async () => {
    const sock = socketPath();
    const k = await kubelet(sock, [pod('n', 'a', { 'nvidia.com/gpu': [G0] }), pod('n', 'b', { 'nvidia.com/gpu': [G1] })]);
    const s = source(sock);
    s.start();
    await waitFor(() => s.map.pods === 2, 5000, 'two pods');
    k.setResponses({ list: list(pod('n', 'a', { 'nvidia.com/gpu': [G0] })), allocatable: { devices: [] } });
    await waitFor(() => s.map.pods === 1, 5000, 'pod b gone');
    expect(s.map.claims.has(G1)).toBe(false);
  });

  it('keeps mapping when GetAllocatableResources is not implemented (replica counts unknown)', async () => {
    const sock = socketPath();
    const k = await kubelet(sock, [pod('n', 'p', { 'nvidia.com/gpu.shared': [`${G0}::1`] })]);
    k.allocatableFailure = grpc.status.UNIMPLEMENTED;
    const s = source(sock);
    s.start();
    await waitFor(() => s.status.up, 5000, 'first refresh');
    expect(s.status.allocatableUp).toBe(false);
    expect(s.map.claims.get(G0)?.[0]).toMatchObject({ pod: 'p', replica: 1 });
    expect(s.map.claims.get(G0)?.[0]?.replicas).toBeUndefined();
  });

  it('handles a response with 5,000 pods', async () => {
    const sock = socketPath();
    const pods = Array.from({ length: 5000 }, (_, i) => pod(`ns-${i % 50}`, `pod-${i}`, { 'nvidia.com/gpu.shared': [`${i % 2 ? G0 : G1}::${i}`], 'example.com/nic': [`nic-${i}`] }, `c-${i}`));
    await kubelet(sock, pods);
    const s = source(sock, 1000, 5000);
    await s.refresh();
    expect(s.status.up).toBe(true);
    expect(s.map.pods).toBe(5000);
    expect(s.map.claims.get(G0)).toHaveLength(2500);
    expect(s.map.claims.get(G1)).toHaveLength(2500);
  });
});
