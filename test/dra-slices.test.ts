import { afterEach, describe, expect, it } from 'vitest';
import pino from 'pino';
import { DraSliceWatcher, pickSliceVersion } from '../src/attribution/dra/slice-watcher.js';
import { FakeResourceApi, type FakeSliceSpec, type ResourceApiVersion } from '../src/sim/fake-resource-api.js';
import { waitFor } from './support/exporter-process.js';

/** The DRA ResourceSlice watch against a real HTTP server speaking the Kubernetes list/watch protocol. */

interface LogLine {
  level: number;
  msg: string;
  err?: string;
}

const NODE = 'node-a';
const GPU0 = 'GPU-4cf8db2d-06c0-7d70-1a51-e59b25b2c16c';
const GPU1 = 'GPU-9a1b2c3d-4e5f-6071-8293-a4b5c6d7e8f9';
const MIG0 = 'MIG-0a7d4bd9-3c8e-5f34-9a1b-6c1d2e3f4a5b';

function slice(over: Partial<FakeSliceSpec> = {}): FakeSliceSpec {
  return {
    name: `${NODE}-gpu.nvidia.com-x7k2p`,
    nodeName: NODE,
    driver: 'gpu.nvidia.com',
    pool: { name: NODE, generation: 1, resourceSliceCount: 1 },
    devices: [
      { name: 'gpu-0', attributes: { type: { string: 'gpu' }, uuid: { string: GPU0 } } },
      { name: 'gpu-1-mig-1g10gb-19-0', attributes: { type: { string: 'mig' }, uuid: { string: MIG0 }, parentUUID: { string: GPU1 }, profile: { string: '1g.10gb' } } },
    ],
    ...over,
  };
}

const servers: FakeResourceApi[] = [];
const watchers: DraSliceWatcher[] = [];
afterEach(async () => {
  await Promise.all(watchers.splice(0).map((w) => w.stop()));
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

async function server(versions?: ResourceApiVersion[]): Promise<FakeResourceApi> {
  const s = await FakeResourceApi.start(versions ? { servedVersions: versions } : {});
  servers.push(s);
  return s;
}

function watcher(api: FakeResourceApi, over: { nodeName?: string } = {}): { w: DraSliceWatcher; lines: LogLine[] } {
  const lines: LogLine[] = [];
  const logger = pino({ level: 'debug' }, { write: (s: string) => void lines.push(JSON.parse(s) as LogLine) });
  const w = new DraSliceWatcher({ nodeName: over.nodeName ?? NODE, server: api.url, logger, backoff: { initialMs: 20, maxMs: 200 }, requestTimeoutMs: 2000 });
  watchers.push(w);
  return { w, lines };
}

const warnings = (lines: LogLine[]) => lines.filter((l) => l.level >= 40).map((l) => l.msg);

describe('DRA ResourceSlice watch', () => {
  it('picks the newest version it reads among those served', () => {
    expect(pickSliceVersion(['v1beta1', 'v1', 'v1beta2'])).toBe('v1');
    expect(pickSliceVersion(['v1alpha3', 'v1beta1'])).toBe('v1beta1');
    expect(pickSliceVersion(['v1beta2', 'v1beta1'])).toBe('v1beta2');
    expect(pickSliceVersion(['v1alpha3'])).toBeUndefined();
  });

  it.each<[ResourceApiVersion[], ResourceApiVersion]>([
    [['v1', 'v1beta2', 'v1beta1'], 'v1'],
    [['v1beta2', 'v1beta1'], 'v1beta2'],
    [['v1beta1'], 'v1beta1'],
  ])('served %j: lists and watches %s with the node and driver field selectors, and reads its shape', async (versions, expected) => {
    const api = await server(versions);
    api.putSlice(slice());
    const { w } = watcher(api);
    await w.start();
    expect(w.version).toBe(expected);
    expect(w.synced).toBe(true);
    expect(w.lookup('gpu.nvidia.com', NODE, 'gpu-0')).toMatchObject({ type: 'gpu', uuid: GPU0 });
    expect(w.lookup('gpu.nvidia.com', NODE, 'gpu-1-mig-1g10gb-19-0')).toMatchObject({ type: 'mig', uuid: MIG0, parentUuid: GPU1, profile: '1g.10gb' });
    await waitFor(() => api.openWatchCount === 1, 5000, 'watch open');
    const sliceRequests = api.requests.filter((r) => r.path.endsWith('/resourceslices'));
    expect(sliceRequests.every((r) => r.path === `/apis/resource.k8s.io/${expected}/resourceslices`)).toBe(true);
    expect(sliceRequests.map((r) => [r.watch, r.query.fieldSelector])).toEqual([
      [false, `spec.nodeName=${NODE},spec.driver=gpu.nvidia.com`],
      [true, `spec.nodeName=${NODE},spec.driver=gpu.nvidia.com`],
    ]);
  });

  it('follows changes: a device leaving a slice leaves the map, a new pool generation replaces the old one', async () => {
    const api = await server();
    api.putSlice(slice());
    const { w } = watcher(api);
    await w.start();
    await waitFor(() => api.openWatchCount === 1, 5000, 'watch open');

    api.putSlice(slice({ devices: [slice().devices[1]!] }));
    await waitFor(() => w.lookup('gpu.nvidia.com', NODE, 'gpu-0') === undefined, 5000, 'gpu-0 gone');
    expect(w.lookup('gpu.nvidia.com', NODE, 'gpu-1-mig-1g10gb-19-0')?.uuid).toBe(MIG0);

    // the driver republishes the pool as generation 2 in a new slice; the old slice lingers until deleted
    api.putSlice(slice({ name: `${NODE}-gpu.nvidia.com-new`, pool: { name: NODE, generation: 2, resourceSliceCount: 1 }, devices: [{ name: 'gpu-1', attributes: { type: { string: 'gpu' }, uuid: { string: GPU1 } } }] }));
    await waitFor(() => w.lookup('gpu.nvidia.com', NODE, 'gpu-1')?.uuid === GPU1, 5000, 'generation 2 device');
    expect(w.lookup('gpu.nvidia.com', NODE, 'gpu-1-mig-1g10gb-19-0')).toBeUndefined();
    api.deleteSlice(slice().name);
    await waitFor(() => w.inventory.sliceCount === 1, 5000, 'old slice deleted');
    expect(w.inventory.devices().map((d) => d.name)).toEqual(['gpu-1']);
  });

  it("ignores other drivers' and other nodes' slices even from a server that does not filter", async () => {
    const api = await server();
    api.putSlice(slice());
    api.putSlice(slice({ name: 'other-driver', driver: 'gpu.example.com', pool: { name: NODE, generation: 5, resourceSliceCount: 1 } }));
    api.putSlice(slice({ name: 'other-node', nodeName: 'node-b', pool: { name: 'node-b', generation: 1, resourceSliceCount: 1 } }));
    const { w } = watcher(api);
    await w.start();
    expect(w.inventory.sliceCount).toBe(1);
    expect(w.lookup('gpu.example.com', NODE, 'gpu-0')).toBeUndefined();
    expect(w.lookup('gpu.nvidia.com', 'node-b', 'gpu-0')).toBeUndefined();
    expect(w.lookup('gpu.nvidia.com', NODE, 'gpu-0')?.uuid).toBe(GPU0);
  });

  it('relists after 410 Gone and picks up what changed meanwhile', async () => {
    const api = await server();
    api.putSlice(slice());
    const { w } = watcher(api);
    await w.start();
    await waitFor(() => api.openWatchCount === 1, 5000, 'watch open');
    const lists = () => api.requests.filter((r) => r.path.endsWith('/resourceslices') && !r.watch).length;
    // a change whose event is lost, then the history expires: only a relist can see it
    api.putSlice(slice({ devices: [] }), { notify: false });
    api.expire();
    api.closeWatches();
    await waitFor(() => lists() === 2 && w.lookup('gpu.nvidia.com', NODE, 'gpu-0') === undefined, 5000, 'relist');
    expect(w.synced).toBe(true);
  });

  it('reports an API server without resource.k8s.io in one message naming what is needed', async () => {
    const api = await server([]);
    const { w } = watcher(api);
    await expect(w.start()).rejects.toThrow(/does not serve the resource\.k8s\.io API group/);
  });

  it('starts in the background while the API server is down, then rides out an outage: last map kept, one line per change', async () => {
    const api = await server();
    api.putSlice(slice());
    await api.pause();
    const { w, lines } = watcher(api);
    w.startInBackground({ initialMs: 20, maxMs: 100 });
    await waitFor(() => lines.some((l) => l.msg.startsWith('DRA slices unavailable')), 5000, 'first failure logged');
    expect(w.synced).toBe(false);
    await api.resume();
    await waitFor(() => w.synced, 10_000, 'synced after the server came back');
    expect(w.lookup('gpu.nvidia.com', NODE, 'gpu-0')?.uuid).toBe(GPU0);
    expect(lines.filter((l) => l.msg.startsWith('DRA slices unavailable'))).toHaveLength(1);

    await waitFor(() => api.openWatchCount === 1, 5000, 'watch open');
    await api.pause();
    await waitFor(() => !w.synced, 5000, 'out of sync while down');
    // failed re-watches back off and retry several times, logged once
    await waitFor(() => lines.filter((l) => /failed again/.test(l.msg)).length >= 2, 10_000, 'retries');
    expect(w.lookup('gpu.nvidia.com', NODE, 'gpu-0')?.uuid).toBe(GPU0);
    await api.resume();
    await waitFor(() => w.synced, 10_000, 're-established');
    expect(warnings(lines).filter((m) => /watch failed; retrying/.test(m))).toHaveLength(1);
    expect(lines.filter((l) => /watch re-established/.test(l.msg))).toHaveLength(1);
  });

  it('logs a malformed slice once and keeps the good ones', async () => {
    const api = await server();
    api.putSlice(slice());
    api.putSlice(slice({ name: 'bad-generation', pool: { name: NODE, generation: -1, resourceSliceCount: 1 } }));
    const { w, lines } = watcher(api);
    await w.start();
    expect(w.lookup('gpu.nvidia.com', NODE, 'gpu-0')?.uuid).toBe(GPU0);
    expect(warnings(lines).filter((m) => m.includes('malformed ResourceSlice'))).toHaveLength(1);
  });
});
