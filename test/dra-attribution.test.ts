import { describe, expect, it } from 'vitest';
import type { DeviceHolder } from '../src/attribution/attribution.js';
import { Attributor } from '../src/attribution/attributor.js';
import { buildDeviceMap, type DeviceMap, type DraAllocation } from '../src/attribution/device-map.js';
import { resolveDraAllocations, type DraDeviceLookup } from '../src/attribution/dra/resolve.js';
import { NVIDIA_GPU_DRIVER, parseSlice, SliceInventory, SliceShapeError, type DraDevice, type ParsedSlice } from '../src/attribution/dra/slice-inventory.js';
import type { ContainerDevices, DynamicResource, ListPodResourcesResponse } from '../src/attribution/kubelet/podresources.js';
import { holderPairs } from '../src/metrics/device-labels.js';
import type { GpuSample, MigSample, NodeSample } from '../src/sample.js';

/**
 * DRA attribution, pure: ResourceSlice parsing, the slice inventory (pool generations, devices
 * that leave), the device map's DRA allocations, their resolution to NVML devices, the shares
 * and the dra_* labels. Samples and kubelet responses are built by hand.
 */

const DRIVER = NVIDIA_GPU_DRIVER;
const NODE = 'node-a';

const GPU0 = 'GPU-00000000-0000-0000-0000-000000000000';
const GPU1 = 'GPU-11111111-1111-1111-1111-111111111111';
const GPU2 = 'GPU-22222222-2222-2222-2222-222222222222';
const MIG_A = 'MIG-aaaaaaaa-aaaa-aaaa-aaaa-aaaaaaaaaaaa';
const MIG_B = 'MIG-bbbbbbbb-bbbb-bbbb-bbbb-bbbbbbbbbbbb';
const MIG_C = 'MIG-cccccccc-cccc-cccc-cccc-cccccccccccc';

// ---------------------------------------------------------------- builders

function mig(uuid: string, profile: string, gpuInstanceId: number): MigSample {
  return { uuid, gpuInstanceId, computeInstanceId: 0, profile, values: {}, processes: [] };
}

function gpu(index: number, uuid: string, migs: MigSample[] = [], maxMigDevices?: number): GpuSample {
  const g: GpuSample = { index, uuid, name: 'NVIDIA H100 80GB HBM3', pciBusId: `00000000:0${index}:00.0`, minor: index, values: {}, processes: [], mig: migs };
  if (maxMigDevices !== undefined) g.maxMigDevices = maxMigDevices;
  return g;
}

function sampleOf(...gpus: GpuSample[]): NodeSample {
  return { takenAtMs: 0, monotonicMs: 0, driverVersion: '', gpus, lostGpus: [], collectors: [], tickSeconds: 0 };
}

type Attr = { string?: string; version?: string; int?: number; bool?: boolean };

/** A device's attributes in the v1 shape. */
function attrs(a: Record<string, string | undefined>): Record<string, Attr> {
  const out: Record<string, Attr> = {};
  for (const [k, v] of Object.entries(a)) if (v !== undefined) out[k] = { string: v };
  return out;
}

function gpuDevice(name: string, uuid: string): object {
  return { name, attributes: attrs({ type: 'gpu', uuid, productName: 'NVIDIA H100 80GB HBM3' }) };
}

function migDevice(name: string, uuid: string | undefined, parentUUID: string, profile: string): object {
  return { name, attributes: attrs({ type: 'mig', uuid, parentUUID, profile }) };
}

/** A v1 ResourceSlice as the API server serves it (plain JSON). */
function sliceObject(name: string, devices: unknown[], opts: { pool?: string; generation?: unknown; driver?: string } = {}): Record<string, unknown> {
  return {
    apiVersion: 'resource.k8s.io/v1',
    kind: 'ResourceSlice',
    metadata: { name },
    spec: {
      driver: opts.driver ?? DRIVER,
      nodeName: NODE,
      pool: { name: opts.pool ?? NODE, generation: 'generation' in opts ? opts.generation : 1, resourceSliceCount: 1 },
      devices,
    },
  };
}

function slice(name: string, devices: object[], opts: { pool?: string; generation?: number; driver?: string } = {}): ParsedSlice {
  return parseSlice(sliceObject(name, devices, opts));
}

function lookupOf(inv: SliceInventory): DraDeviceLookup {
  return (driver, pool, name) => inv.lookup(driver, pool, name);
}

function names(devices: readonly DraDevice[]): string[] {
  return devices.map((d) => `${d.driver}/${d.pool}/${d.name}`).sort();
}

interface Ref {
  pod: string;
  namespace?: string;
  container?: string;
  claim: string;
  claimNamespace?: string;
  device: string;
  pool?: string;
  driver?: string;
  shareId?: string;
}

/** A PodResources List response: one container per (namespace, pod, container), with the claims given. */
function listOf(refs: Ref[], devicePlugin: { pod: string; namespace?: string; container?: string; resource: string; ids: string[] }[] = []): ListPodResourcesResponse {
  const pods = new Map<string, { name: string; namespace: string; containers: Map<string, { name: string; devices: ContainerDevices[]; dynamicResources: DynamicResource[] }> }>();
  const containerOf = (namespace: string, podName: string, container: string) => {
    const k = `${namespace}/${podName}`;
    let pod = pods.get(k);
    if (!pod) pods.set(k, (pod = { name: podName, namespace, containers: new Map() }));
    let c = pod.containers.get(container);
    if (!c) pod.containers.set(container, (c = { name: container, devices: [], dynamicResources: [] }));
    return c;
  };
  for (const d of devicePlugin) containerOf(d.namespace ?? 'ns', d.pod, d.container ?? 'main').devices.push({ resourceName: d.resource, deviceIds: d.ids });
  for (const r of refs) {
    const c = containerOf(r.namespace ?? 'ns', r.pod, r.container ?? 'main');
    const claimNamespace = r.claimNamespace ?? r.namespace ?? 'ns';
    let claim = c.dynamicResources.find((x) => x.claimName === r.claim && x.claimNamespace === claimNamespace);
    if (!claim) c.dynamicResources.push((claim = { claimName: r.claim, claimNamespace, claimResources: [] }));
    const res: DynamicResource['claimResources'][number] = { driverName: r.driver ?? DRIVER, poolName: r.pool ?? NODE, deviceName: r.device };
    if (r.shareId !== undefined) res.shareId = r.shareId;
    claim.claimResources.push(res);
  }
  return {
    podResources: [...pods.values()].map((p) => ({ name: p.name, namespace: p.namespace, containers: [...p.containers.values()] })),
  };
}

function attributorOf(map: DeviceMap, inv?: SliceInventory): Attributor {
  return new Attributor({ deviceMap: () => map, ...(inv ? { draDevices: lookupOf(inv) } : {}) });
}

function who(holders: readonly DeviceHolder[]): string[] {
  return holders.map((h) => `${h.namespace}/${h.pod}/${h.container}`);
}

// ---------------------------------------------------------------- parseSlice

describe('parseSlice', () => {
  it('reads the v1 shape (devices[].attributes) and the v1beta1 shape (devices[].basic.attributes) to the same devices', () => {
    const v1Devices = [gpuDevice('gpu-0', GPU0), migDevice('gpu-1-mig-1g10gb-19-0', MIG_A, GPU1, '1g.10gb')];
    const v1 = parseSlice(sliceObject('s', v1Devices, { generation: 3 }));
    const v1beta1Devices = v1Devices.map((d) => {
      const { name, attributes } = d as { name: string; attributes: unknown };
      return { name, basic: { attributes, capacity: {} } };
    });
    const v1beta1 = parseSlice({ ...sliceObject('s', v1beta1Devices, { generation: 3 }), apiVersion: 'resource.k8s.io/v1beta1' });
    const expected: DraDevice[] = [
      { driver: DRIVER, pool: NODE, name: 'gpu-0', type: 'gpu', uuid: GPU0 },
      { driver: DRIVER, pool: NODE, name: 'gpu-1-mig-1g10gb-19-0', type: 'mig', uuid: MIG_A, parentUuid: GPU1, profile: '1g.10gb' },
    ];
    expect(v1).toEqual({ name: 's', driver: DRIVER, nodeName: NODE, pool: NODE, generation: 3, devices: expected });
    expect(v1beta1).toEqual(v1);
  });

  it('accepts attribute keys bare and qualified with the driver domain; the bare key wins when both are there', () => {
    const qualified = parseSlice(
      sliceObject('q', [
        {
          name: 'gpu-1-mig-0',
          attributes: {
            'gpu.nvidia.com/type': { string: 'mig' },
            'gpu.nvidia.com/uuid': { string: MIG_A },
            'gpu.nvidia.com/parentUUID': { string: GPU1 },
            'gpu.nvidia.com/profile': { string: '1g.10gb' },
          },
        },
      ]),
    );
    expect(qualified.devices).toEqual([{ driver: DRIVER, pool: NODE, name: 'gpu-1-mig-0', type: 'mig', uuid: MIG_A, parentUuid: GPU1, profile: '1g.10gb' }]);

    const both = parseSlice(
      sliceObject('b', [{ name: 'gpu-0', attributes: { 'gpu.nvidia.com/uuid': { string: GPU1 }, uuid: { string: GPU0 }, type: { string: 'gpu' }, 'gpu.nvidia.com/type': { string: 'vfio' } } }]),
    );
    expect(both.devices[0]!.uuid).toBe(GPU0);
    expect(both.devices[0]!.type).toBe('gpu');

    // another domain's key is not this driver's attribute
    const otherDomain = parseSlice(sliceObject('o', [{ name: 'gpu-0', attributes: { type: { string: 'gpu' }, 'example.com/uuid': { string: GPU0 } } }]));
    expect(otherDomain.devices[0]!.uuid).toBeUndefined();
  });

  it('reads `version` values as text, and ignores int and bool values', () => {
    const p = parseSlice(
      sliceObject('v', [
        { name: 'gpu-0', attributes: { type: { string: 'gpu' }, uuid: { version: GPU0 } } },
        { name: 'gpu-1', attributes: { type: { string: 'gpu' }, uuid: { int: 1 }, profile: { bool: true } } },
      ]),
    );
    expect(p.devices[0]).toEqual({ driver: DRIVER, pool: NODE, name: 'gpu-0', type: 'gpu', uuid: GPU0 });
    expect(p.devices[1]).toEqual({ driver: DRIVER, pool: NODE, name: 'gpu-1', type: 'gpu' });
  });

  it('skips devices without a name, and gives a device without attributes an empty type', () => {
    const p = parseSlice(sliceObject('n', [{ attributes: attrs({ type: 'gpu', uuid: GPU0 }) }, { name: '', attributes: attrs({ type: 'gpu', uuid: GPU1 }) }, { name: 7 }, null, 'gpu-9', gpuDevice('gpu-2', GPU2), { name: 'gpu-3' }]));
    expect(p.devices).toEqual([
      { driver: DRIVER, pool: NODE, name: 'gpu-2', type: 'gpu', uuid: GPU2 },
      { driver: DRIVER, pool: NODE, name: 'gpu-3', type: '' },
    ]);
  });

  it('refuses a slice without metadata.name, spec, spec.driver or spec.pool.name with a SliceShapeError naming the slice', () => {
    const refused = (obj: unknown, problem: RegExp, slice?: string) => {
      let error: unknown;
      try {
        parseSlice(obj);
      } catch (e) {
        error = e;
      }
      expect(error).toBeInstanceOf(SliceShapeError);
      expect((error as Error).name).toBe('SliceShapeError');
      expect((error as Error).message).toMatch(problem);
      if (slice !== undefined) expect((error as Error).message).toContain(JSON.stringify(slice));
    };
    const ok = sliceObject('node-a-gpu.nvidia.com-x7k2p', [gpuDevice('gpu-0', GPU0)]);
    const spec = ok.spec as Record<string, unknown>;
    refused({ ...ok, metadata: {} }, /metadata\.name/);
    refused({ ...ok, metadata: undefined }, /metadata\.name/);
    refused(null, /metadata\.name/);
    refused({ ...ok, spec: undefined }, /spec/, 'node-a-gpu.nvidia.com-x7k2p');
    refused({ ...ok, spec: { ...spec, driver: '' } }, /spec\.driver/, 'node-a-gpu.nvidia.com-x7k2p');
    refused({ ...ok, spec: { ...spec, driver: undefined } }, /spec\.driver/, 'node-a-gpu.nvidia.com-x7k2p');
    refused({ ...ok, spec: { ...spec, pool: undefined } }, /spec\.pool\.name/, 'node-a-gpu.nvidia.com-x7k2p');
    refused({ ...ok, spec: { ...spec, pool: { generation: 1 } } }, /spec\.pool\.name/, 'node-a-gpu.nvidia.com-x7k2p');
  });

  it('refuses a negative or non-integer generation, naming the slice', () => {
    for (const generation of [-1, 1.5, 'three', Number.NaN, {}]) {
      expect(() => parseSlice(sliceObject('gen-slice', [], { generation })), `generation ${String(generation)}`).toThrow(SliceShapeError);
      expect(() => parseSlice(sliceObject('gen-slice', [], { generation })), `generation ${String(generation)}`).toThrow(/"gen-slice".*generation/);
    }
    expect(parseSlice(sliceObject('gen-slice', [], { generation: 0 })).generation).toBe(0);
    expect(parseSlice(sliceObject('gen-slice', [], { generation: 12 })).generation).toBe(12);
  });

  it('accepts a slice with no devices (a counter-only slice)', () => {
    const withEmpty = parseSlice(sliceObject('counters', [], { generation: 2 }));
    expect(withEmpty).toEqual({ name: 'counters', driver: DRIVER, nodeName: NODE, pool: NODE, generation: 2, devices: [] });
    const obj = sliceObject('counters', [], { generation: 2 });
    const spec = obj.spec as Record<string, unknown>;
    delete spec.devices;
    spec.sharedCounters = [{ name: 'gpu-0-counters', counters: { memory: { value: '80Gi' } } }];
    expect(parseSlice(obj).devices).toEqual([]);
  });
});

// ---------------------------------------------------------------- SliceInventory

describe('SliceInventory', () => {
  it('a pool spread over two slices of one generation gives both slices\' devices', () => {
    const inv = new SliceInventory();
    inv.put(slice('s-1', [gpuDevice('gpu-0', GPU0)], { generation: 4 }));
    inv.put(slice('s-2', [gpuDevice('gpu-1', GPU1)], { generation: 4 }));
    expect(names(inv.devices())).toEqual([`${DRIVER}/${NODE}/gpu-0`, `${DRIVER}/${NODE}/gpu-1`]);
    expect(inv.lookup(DRIVER, NODE, 'gpu-0')?.uuid).toBe(GPU0);
    expect(inv.lookup(DRIVER, NODE, 'gpu-1')?.uuid).toBe(GPU1);
    expect(inv.sliceCount).toBe(2);
  });

  it('only the highest generation of a pool counts; deleting the newer slice brings the older generation back', () => {
    const inv = new SliceInventory();
    inv.put(slice('old', [gpuDevice('gpu-0', GPU0), gpuDevice('gpu-1', GPU1)], { generation: 1 }));
    inv.put(slice('new', [gpuDevice('gpu-2', GPU2)], { generation: 2 }));
    expect(names(inv.devices())).toEqual([`${DRIVER}/${NODE}/gpu-2`]);
    expect(inv.lookup(DRIVER, NODE, 'gpu-0')).toBeUndefined();
    expect(inv.lookup(DRIVER, NODE, 'gpu-2')?.uuid).toBe(GPU2);
    // another pool is not held back by this pool's generation
    inv.put(slice('other-pool', [gpuDevice('gpu-0', GPU0)], { pool: 'node-b', generation: 1 }));
    expect(inv.lookup(DRIVER, 'node-b', 'gpu-0')?.uuid).toBe(GPU0);
    inv.delete('new');
    expect(names(inv.devices())).toEqual([`${DRIVER}/${NODE}/gpu-0`, `${DRIVER}/${NODE}/gpu-1`, `${DRIVER}/node-b/gpu-0`]);
    expect(inv.lookup(DRIVER, NODE, 'gpu-2')).toBeUndefined();
  });

  it('the newest generation counts whatever order the slices arrive in', () => {
    const inv = new SliceInventory();
    inv.put(slice('new', [gpuDevice('gpu-2', GPU2)], { generation: 2 }));
    inv.put(slice('old', [gpuDevice('gpu-0', GPU0)], { generation: 1 }));
    expect(names(inv.devices())).toEqual([`${DRIVER}/${NODE}/gpu-2`]);
  });

  it('a device that leaves a slice (the same slice put without it) leaves lookup', () => {
    const inv = new SliceInventory();
    inv.put(slice('s', [gpuDevice('gpu-0', GPU0), gpuDevice('gpu-1', GPU1)], { generation: 1 }));
    expect(inv.lookup(DRIVER, NODE, 'gpu-1')?.uuid).toBe(GPU1);
    inv.put(slice('s', [gpuDevice('gpu-0', GPU0)], { generation: 1 }));
    expect(inv.lookup(DRIVER, NODE, 'gpu-1')).toBeUndefined();
    expect(names(inv.devices())).toEqual([`${DRIVER}/${NODE}/gpu-0`]);
    expect(inv.sliceCount).toBe(1);
  });

  it('delete() of a slice removes its devices and leaves the others', () => {
    const inv = new SliceInventory();
    inv.put(slice('s-1', [gpuDevice('gpu-0', GPU0)]));
    inv.put(slice('s-2', [gpuDevice('gpu-1', GPU1)]));
    inv.delete('s-1');
    expect(inv.lookup(DRIVER, NODE, 'gpu-0')).toBeUndefined();
    expect(inv.lookup(DRIVER, NODE, 'gpu-1')?.uuid).toBe(GPU1);
    expect(inv.sliceCount).toBe(1);
  });

  it('replace() drops every slice that is not in the new list', () => {
    const inv = new SliceInventory();
    inv.put(slice('s-1', [gpuDevice('gpu-0', GPU0)]));
    inv.put(slice('s-2', [gpuDevice('gpu-1', GPU1)]));
    inv.replace([slice('s-3', [gpuDevice('gpu-2', GPU2)]), slice('s-2', [])]);
    expect(names(inv.devices())).toEqual([`${DRIVER}/${NODE}/gpu-2`]);
    expect(inv.lookup(DRIVER, NODE, 'gpu-0')).toBeUndefined();
    expect(inv.lookup(DRIVER, NODE, 'gpu-1')).toBeUndefined();
    expect(inv.sliceCount).toBe(2);
    inv.replace([]);
    expect(inv.devices()).toEqual([]);
    expect(inv.sliceCount).toBe(0);
  });

  it('keeps two drivers with the same pool and device name apart', () => {
    const inv = new SliceInventory();
    inv.put(slice('nvidia', [gpuDevice('gpu-0', GPU0)], { generation: 1 }));
    inv.put(slice('other', [{ name: 'gpu-0', attributes: attrs({ type: 'gpu', uuid: GPU1 }) }], { driver: 'gpu.example.com', generation: 5 }));
    expect(inv.lookup(DRIVER, NODE, 'gpu-0')?.uuid).toBe(GPU0);
    expect(inv.lookup('gpu.example.com', NODE, 'gpu-0')).toEqual({ driver: 'gpu.example.com', pool: NODE, name: 'gpu-0', type: 'gpu', uuid: GPU1 });
    // the other driver's higher generation does not hide this driver's pool
    expect(names(inv.devices())).toEqual([`gpu.example.com/${NODE}/gpu-0`, `${DRIVER}/${NODE}/gpu-0`]);
    inv.delete('other');
    expect(inv.lookup(DRIVER, NODE, 'gpu-0')?.uuid).toBe(GPU0);
    expect(inv.lookup('gpu.example.com', NODE, 'gpu-0')).toBeUndefined();
  });

  it('bumps version on every change (put, delete of a known slice, replace), not on lookups or on deleting an unknown slice', () => {
    const inv = new SliceInventory();
    const v0 = inv.version;
    inv.put(slice('s-1', [gpuDevice('gpu-0', GPU0)]));
    const v1 = inv.version;
    expect(v1).toBeGreaterThan(v0);
    inv.lookup(DRIVER, NODE, 'gpu-0');
    inv.devices();
    expect(inv.version).toBe(v1);
    inv.put(slice('s-1', [gpuDevice('gpu-1', GPU1)]));
    const v2 = inv.version;
    expect(v2).toBeGreaterThan(v1);
    inv.delete('not-there');
    expect(inv.version).toBe(v2);
    inv.delete('s-1');
    const v3 = inv.version;
    expect(v3).toBeGreaterThan(v2);
    inv.replace([slice('s-2', [])]);
    expect(inv.version).toBeGreaterThan(v3);
  });
});

// ---------------------------------------------------------------- buildDeviceMap

describe('buildDeviceMap: DRA allocations', () => {
  it('keeps gpu.nvidia.com devices (claim, pool, device, shareId) and leaves other drivers out', () => {
    const map = buildDeviceMap(
      listOf([
        { pod: 'p', claim: 'gpus', claimNamespace: 'team', device: 'gpu-0' },
        { pod: 'p', claim: 'gpus', claimNamespace: 'team', device: 'gpu-1', shareId: 'e3b0c442' },
        { pod: 'p', claim: 'nic', device: 'eth-0', driver: 'net.example.com' },
        { pod: 'q', claim: 'nic', device: 'eth-1', driver: 'net.example.com' },
      ]),
      undefined,
    );
    expect(map.draAllocations).toEqual<DraAllocation[]>([
      { namespace: 'ns', pod: 'p', container: 'main', claimName: 'gpus', claimNamespace: 'team', driver: DRIVER, pool: NODE, device: 'gpu-0' },
      { namespace: 'ns', pod: 'p', container: 'main', claimName: 'gpus', claimNamespace: 'team', driver: DRIVER, pool: NODE, device: 'gpu-1', shareId: 'e3b0c442' },
    ]);
    expect(map.draAllocations[0]).not.toHaveProperty('shareId');
    // q holds only another driver's device: not a GPU pod
    expect(map.pods).toBe(1);
    expect(map.claims.size).toBe(0);
  });

  it('deduplicates one device listed twice for the same container (a claim referenced by two requests)', () => {
    const list = listOf([{ pod: 'p', claim: 'c', device: 'gpu-0' }]);
    const container = list.podResources[0]!.containers[0]!;
    container.dynamicResources!.push({ claimName: 'c', claimNamespace: 'ns', claimResources: [{ driverName: DRIVER, poolName: NODE, deviceName: 'gpu-0' }] });
    container.dynamicResources![0]!.claimResources.push({ driverName: DRIVER, poolName: NODE, deviceName: 'gpu-0' });
    const map = buildDeviceMap(list, undefined);
    expect(map.draAllocations).toHaveLength(1);
    // but two shares of one device are two allocations
    const shares = buildDeviceMap(listOf([{ pod: 'p', claim: 'c', device: 'gpu-0', shareId: 'a' }, { pod: 'p', claim: 'c', device: 'gpu-0', shareId: 'b' }]), undefined);
    expect(shares.draAllocations.map((a) => a.shareId)).toEqual(['a', 'b']);
  });

  it('counts a pod that holds only DRA devices in pods, beside device plugin pods', () => {
    const map = buildDeviceMap(
      listOf([{ pod: 'dra-only', claim: 'c', device: 'gpu-1' }], [{ pod: 'plugin', resource: 'nvidia.com/gpu', ids: [GPU0] }, { pod: 'cpu', resource: 'example.com/foo', ids: ['x'] }]),
      undefined,
    );
    expect(map.pods).toBe(2);
    expect([...map.claims.keys()]).toEqual([GPU0]);
    expect(map.draAllocations.map((a) => a.pod)).toEqual(['dra-only']);
  });

  it('gives a claim referenced by two pods one allocation per pod', () => {
    const map = buildDeviceMap(
      listOf([
        { pod: 'a', claim: 'shared', claimNamespace: 'ns', device: 'gpu-0' },
        { pod: 'b', claim: 'shared', claimNamespace: 'ns', device: 'gpu-0' },
      ]),
      undefined,
    );
    expect(map.draAllocations.map((a) => `${a.pod}:${a.claimNamespace}/${a.claimName}:${a.device}`)).toEqual(['a:ns/shared:gpu-0', 'b:ns/shared:gpu-0']);
    expect(map.pods).toBe(2);
  });

  it('sorts the allocations deterministically, whatever order the kubelet lists them in', () => {
    const refs: Ref[] = [
      { pod: 'z', claim: 'c2', device: 'gpu-1' },
      { pod: 'a', claim: 'c1', device: 'gpu-1' },
      { pod: 'm', claim: 'c3', device: 'gpu-0', shareId: 's2' },
      { pod: 'm', claim: 'c3', device: 'gpu-0', shareId: 's1' },
      { pod: 'b', namespace: 'other', claim: 'c1', claimNamespace: 'ns', device: 'gpu-1' },
      { pod: 'q', claim: 'c4', device: 'gpu-0', pool: 'node-0' },
    ];
    const key = (a: DraAllocation) => `${a.pool}|${a.device}|${a.claimNamespace}/${a.claimName}|${a.shareId ?? ''}|${a.namespace}/${a.pod}/${a.container}`;
    const forward = buildDeviceMap(listOf(refs), undefined).draAllocations.map(key);
    const backward = buildDeviceMap(listOf([...refs].reverse()), undefined).draAllocations.map(key);
    expect(forward).toEqual(backward);
    expect(forward).toEqual([
      'node-0|gpu-0|ns/c4||ns/q/main',
      `${NODE}|gpu-0|ns/c3|s1|ns/m/main`,
      `${NODE}|gpu-0|ns/c3|s2|ns/m/main`,
      `${NODE}|gpu-1|ns/c1||ns/a/main`,
      `${NODE}|gpu-1|ns/c1||other/b/main`,
      `${NODE}|gpu-1|ns/c2||ns/z/main`,
    ]);
  });
});

// ---------------------------------------------------------------- resolution

/** Node: GPU0 whole, GPU1 in MIG mode with one 3g.40gb and two 1g.10gb instances, GPU2 whole. */
const node = sampleOf(gpu(0, GPU0), gpu(1, GPU1, [mig(MIG_A, '3g.40gb', 2), mig(MIG_B, '1g.10gb', 9), mig(MIG_C, '1g.10gb', 10)], 7), gpu(2, GPU2));

function nodeInventory(): SliceInventory {
  const inv = new SliceInventory();
  inv.put(
    slice('node-a-gpu.nvidia.com-x7k2p', [
      gpuDevice('gpu-0', GPU0),
      gpuDevice('gpu-2', GPU2),
      migDevice('gpu-1-mig-3g40gb-2-0', MIG_A, GPU1, '3g.40gb'),
      migDevice('gpu-1-mig-1g10gb-9-0', MIG_B, GPU1, '1g.10gb'),
      // DynamicMIG: no uuid
      migDevice('gpu-1-mig-3g40gb-dyn', undefined, GPU1, '3g.40gb'),
      migDevice('gpu-1-mig-1g10gb-dyn', undefined, GPU1, '1g.10gb'),
      migDevice('gpu-1-mig-2g20gb-dyn', undefined, GPU1, '2g.20gb'),
      migDevice('gpu-1-mig-no-profile', undefined, GPU1, ''),
      { name: 'gpu-3-vfio', attributes: attrs({ type: 'vfio', uuid: 'GPU-33333333-3333-3333-3333-333333333333' }) },
      { name: 'gpu-4-other', attributes: attrs({ type: 'channel' }) },
      gpuDevice('gpu-5', 'GPU-55555555-5555-5555-5555-555555555555'),
      migDevice('gpu-1-mig-gone', 'MIG-dddddddd-dddd-dddd-dddd-dddddddddddd', GPU1, '1g.10gb'),
    ]),
  );
  return inv;
}

function allocation(device: string, pod = 'p', claim = 'c'): DraAllocation {
  return { namespace: 'ns', pod, container: 'main', claimName: claim, claimNamespace: 'ns', driver: DRIVER, pool: NODE, device };
}

describe('resolveDraAllocations', () => {
  const lookup = lookupOf(nodeInventory());
  const resolve = (device: string) => resolveDraAllocations([allocation(device)], lookup, node);

  it('type gpu: the GPU of the uuid attribute', () => {
    expect(resolve('gpu-0')).toEqual({ resolved: [{ allocation: allocation('gpu-0'), uuid: GPU0, isMig: false }], unresolvedDevices: 0 });
  });

  it('type mig with a uuid: that MIG instance, not its parent', () => {
    const r = resolve('gpu-1-mig-1g10gb-9-0');
    expect(r.unresolvedDevices).toBe(0);
    expect(r.resolved).toEqual([{ allocation: allocation('gpu-1-mig-1g10gb-9-0'), uuid: MIG_B, isMig: true, migProfile: '1g.10gb' }]);
  });

  it('type mig without a uuid (DynamicMIG): the one instance of its profile on its parent, unresolved when two or none exist', () => {
    expect(resolve('gpu-1-mig-3g40gb-dyn').resolved.map((r) => [r.uuid, r.isMig, r.migProfile])).toEqual([[MIG_A, true, '3g.40gb']]);
    expect(resolve('gpu-1-mig-1g10gb-dyn')).toEqual({ resolved: [], unresolvedDevices: 1 }); // MIG_B and MIG_C
    expect(resolve('gpu-1-mig-2g20gb-dyn')).toEqual({ resolved: [], unresolvedDevices: 1 }); // none
    expect(resolve('gpu-1-mig-no-profile')).toEqual({ resolved: [], unresolvedDevices: 1 });
  });

  it('ignores vfio and every other type without counting them unresolved', () => {
    expect(resolveDraAllocations([allocation('gpu-3-vfio'), allocation('gpu-4-other')], lookup, node)).toEqual({ resolved: [], unresolvedDevices: 0 });
  });

  it('counts a uuid not in the sample (GPU or MIG) as unresolved', () => {
    expect(resolve('gpu-5')).toEqual({ resolved: [], unresolvedDevices: 1 });
    expect(resolve('gpu-1-mig-gone')).toEqual({ resolved: [], unresolvedDevices: 1 });
    expect(resolveDraAllocations([allocation('gpu-0')], lookup, sampleOf(gpu(1, GPU1)))).toEqual({ resolved: [], unresolvedDevices: 1 });
  });

  it('counts distinct unpublished devices, not allocations; without a lookup every allocation is unresolved', () => {
    const allocations = [allocation('gpu-7', 'a'), allocation('gpu-7', 'b'), allocation('gpu-8', 'a'), allocation('gpu-0', 'a')];
    expect(resolveDraAllocations(allocations, lookup, node).unresolvedDevices).toBe(2);
    expect(resolveDraAllocations(allocations, undefined, node)).toEqual({ resolved: [], unresolvedDevices: 3 });
    expect(resolveDraAllocations([], undefined, node)).toEqual({ resolved: [], unresolvedDevices: 0 });
  });
});

describe('Attributor with DRA devices', () => {
  it('type gpu: the holder is on the GPU, with dra labels and share 1', () => {
    const map = buildDeviceMap(listOf([{ pod: 'train', claim: 'gpu-claim', claimNamespace: 'ns', device: 'gpu-0' }]), undefined);
    const at = attributorOf(map, nodeInventory()).attribute(node);
    expect(at.holdersOf(GPU0)).toEqual<DeviceHolder[]>([
      { namespace: 'ns', pod: 'train', container: 'main', dra: { claimName: 'gpu-claim', claimNamespace: 'ns', driver: DRIVER, pool: NODE, device: 'gpu-0' }, share: 1 },
    ]);
    expect(at.draUnresolvedDevices).toBe(0);
    expect(at.holdersOf(GPU1)).toEqual([]);
    expect(at.holdersOf(GPU2)).toEqual([]);
  });

  it('type mig: the holder is on the MIG instance (not its parent), with migUuid and migProfile, share its compute slice', () => {
    const map = buildDeviceMap(listOf([{ pod: 'p', claim: 'c', device: 'gpu-1-mig-3g40gb-2-0' }]), undefined);
    const at = attributorOf(map, nodeInventory()).attribute(node);
    expect(at.holdersOf(GPU1)).toEqual([]);
    const [h, ...rest] = at.holdersOf(MIG_A);
    expect(rest).toEqual([]);
    expect(h!.dra).toEqual({ claimName: 'c', claimNamespace: 'ns', driver: DRIVER, pool: NODE, device: 'gpu-1-mig-3g40gb-2-0', migProfile: '3g.40gb', migUuid: MIG_A });
    expect(h!.share).toBeCloseTo(3 / 7, 12);
  });

  it('DynamicMIG device: lands on the one instance of its profile, with that instance\'s uuid in migUuid', () => {
    const map = buildDeviceMap(listOf([{ pod: 'p', claim: 'c', device: 'gpu-1-mig-3g40gb-dyn' }, { pod: 'q', claim: 'd', device: 'gpu-1-mig-1g10gb-dyn' }]), undefined);
    const at = attributorOf(map, nodeInventory()).attribute(node);
    expect(at.holdersOf(MIG_A).map((h) => h.dra?.migUuid)).toEqual([MIG_A]);
    expect(at.holdersOf(MIG_B)).toEqual([]);
    expect(at.holdersOf(MIG_C)).toEqual([]);
    expect(at.draUnresolvedDevices).toBe(1);
  });

  it('ignores vfio devices: no holder, not unresolved', () => {
    const map = buildDeviceMap(listOf([{ pod: 'vm', claim: 'passthrough', device: 'gpu-3-vfio' }]), undefined);
    const at = attributorOf(map, nodeInventory()).attribute(node);
    expect(at.draUnresolvedDevices).toBe(0);
    for (const uuid of [GPU0, GPU1, GPU2, MIG_A, MIG_B, MIG_C, 'GPU-33333333-3333-3333-3333-333333333333']) expect(at.holdersOf(uuid)).toEqual([]);
  });

  it('an unpublished device is unresolved (once per device) until its slice arrives, then resolves on the next attribute()', () => {
    const inv = new SliceInventory();
    inv.put(slice('first', [gpuDevice('gpu-0', GPU0)], { pool: NODE, generation: 1 }));
    const map = buildDeviceMap(
      listOf([
        { pod: 'a', container: 'x', claim: 'c', device: 'gpu-2' },
        { pod: 'a', container: 'y', claim: 'c', device: 'gpu-2' },
        { pod: 'b', claim: 'c', device: 'gpu-2' },
        { pod: 'b', claim: 'c', device: 'gpu-0' },
      ]),
      undefined,
    );
    const attributor = attributorOf(map, inv);
    const before = attributor.attribute(node);
    expect(before.draUnresolvedDevices).toBe(1);
    expect(before.holdersOf(GPU2)).toEqual([]);
    expect(who(before.holdersOf(GPU0))).toEqual(['ns/b/main']);

    inv.put(slice('second', [gpuDevice('gpu-2', GPU2)], { pool: NODE, generation: 1 }));
    const after = attributor.attribute(node);
    expect(after.draUnresolvedDevices).toBe(0);
    expect(who(after.holdersOf(GPU2))).toEqual(['ns/a/x', 'ns/a/y', 'ns/b/main']);
  });

  it('without a draDevices source every gpu.nvidia.com allocation is unresolved and unlabelled', () => {
    const map = buildDeviceMap(listOf([{ pod: 'a', claim: 'c', device: 'gpu-0' }, { pod: 'b', claim: 'c', device: 'gpu-3-vfio' }, { pod: 'b', claim: 'c', device: 'gpu-0' }]), undefined);
    const at = attributorOf(map).attribute(node);
    expect(at.draUnresolvedDevices).toBe(2);
    expect(at.holdersOf(GPU0)).toEqual([]);
  });

  it('a device whose uuid is not in the sample is unresolved', () => {
    const map = buildDeviceMap(listOf([{ pod: 'a', claim: 'c', device: 'gpu-5' }]), undefined);
    const at = attributorOf(map, nodeInventory()).attribute(node);
    expect(at.draUnresolvedDevices).toBe(1);
    expect(at.holdersOf('GPU-55555555-5555-5555-5555-555555555555')).toEqual([]);
  });
});

// ---------------------------------------------------------------- shares

describe('DRA shares (gpu_allocated_ratio)', () => {
  const sharesOn = (refs: Ref[], uuid: string) => {
    const at = attributorOf(buildDeviceMap(listOf(refs), undefined), nodeInventory()).attribute(node);
    return at.holdersOf(uuid).map((h) => [`${h.pod}:${h.dra?.claimName ?? ''}`, h.share]);
  };

  it('one whole GPU in one claim is 1', () => {
    expect(sharesOn([{ pod: 'p', claim: 'c', device: 'gpu-0' }], GPU0)).toEqual([['p:c', 1]]);
  });

  it('one claim shared by two pods: two holders, 0.5 each', () => {
    expect(sharesOn([{ pod: 'a', claim: 'shared', device: 'gpu-0' }, { pod: 'b', claim: 'shared', device: 'gpu-0' }], GPU0)).toEqual([
      ['a:shared', 0.5],
      ['b:shared', 0.5],
    ]);
  });

  it('two claims on one device, each with a share_id, one of them referenced by two pods: 0.25, 0.25 and 0.5', () => {
    const shares = sharesOn(
      [
        { pod: 'a', claim: 'one', device: 'gpu-0', shareId: 'share-1' },
        { pod: 'b', claim: 'one', device: 'gpu-0', shareId: 'share-1' },
        { pod: 'c', claim: 'two', device: 'gpu-0', shareId: 'share-2' },
      ],
      GPU0,
    );
    expect(shares).toEqual([
      ['a:one', 0.25],
      ['b:one', 0.25],
      ['c:two', 0.5],
    ]);
    expect(shares.reduce((s, [, v]) => s + (v as number), 0)).toBe(1);
  });

  it('a MIG 3g.40gb instance on a GPU with maxMigDevices 7 is 3/7', () => {
    const shares = sharesOn([{ pod: 'p', claim: 'c', device: 'gpu-1-mig-3g40gb-2-0' }], MIG_A);
    expect(shares).toHaveLength(1);
    expect(shares[0]![1]).toBeCloseTo(3 / 7, 12);
  });

  it('device plugin and DRA holders on different GPUs of one node side by side; device plugin holders unchanged', () => {
    const list = listOf([{ pod: 'dra-pod', claim: 'c', device: 'gpu-2' }], [{ pod: 'plugin-pod', resource: 'nvidia.com/gpu', ids: [GPU0] }, { pod: 'mig-pod', resource: 'nvidia.com/mig-1g.10gb', ids: [MIG_C] }]);
    const map = buildDeviceMap(list, undefined);
    const withDra = attributorOf(map, nodeInventory()).attribute(node);
    const pluginOnly = attributorOf(buildDeviceMap(listOf([], [{ pod: 'plugin-pod', resource: 'nvidia.com/gpu', ids: [GPU0] }, { pod: 'mig-pod', resource: 'nvidia.com/mig-1g.10gb', ids: [MIG_C] }]), undefined)).attribute(node);
    expect(withDra.holdersOf(GPU0)).toEqual<DeviceHolder[]>([{ namespace: 'ns', pod: 'plugin-pod', container: 'main', share: 1 }]);
    expect(withDra.holdersOf(GPU0)).toEqual(pluginOnly.holdersOf(GPU0));
    expect(withDra.holdersOf(MIG_C)).toEqual(pluginOnly.holdersOf(MIG_C));
    expect(withDra.holdersOf(MIG_C)[0]).not.toHaveProperty('dra');
    expect(withDra.holdersOf(GPU0)[0]).not.toHaveProperty('dra');
    expect(withDra.holdersOf(GPU2)).toEqual<DeviceHolder[]>([
      { namespace: 'ns', pod: 'dra-pod', container: 'main', dra: { claimName: 'c', claimNamespace: 'ns', driver: DRIVER, pool: NODE, device: 'gpu-2' }, share: 1 },
    ]);
    expect(withDra.draUnresolvedDevices).toBe(0);
    expect(withDra.unknownDeviceIds).toBe(0);
  });
});

// ---------------------------------------------------------------- labels

describe('holderPairs: dra_* labels', () => {
  const holders = (refs: Ref[], uuid: string) => attributorOf(buildDeviceMap(listOf(refs), undefined), nodeInventory()).attribute(node).holdersOf(uuid);

  it('a whole GPU holder: pod labels, then dra_claim_name, dra_claim_namespace, dra_driver_name, dra_pool_name, dra_device_name', () => {
    const [h] = holders([{ pod: 'train', namespace: 'ml', container: 'worker', claim: 'gpu-claim', claimNamespace: 'ml', device: 'gpu-0' }], GPU0);
    expect(holderPairs(h!)).toEqual([
      ['container', 'worker'],
      ['namespace', 'ml'],
      ['pod', 'train'],
      ['dra_claim_name', 'gpu-claim'],
      ['dra_claim_namespace', 'ml'],
      ['dra_driver_name', DRIVER],
      ['dra_pool_name', NODE],
      ['dra_device_name', 'gpu-0'],
    ]);
  });

  it('a MIG holder adds dra_mig_profile and dra_mig_device_uuid', () => {
    const [h] = holders([{ pod: 'p', claim: 'c', device: 'gpu-1-mig-1g10gb-9-0' }], MIG_B);
    expect(holderPairs(h!).map(([k]) => k)).toEqual([
      'container',
      'namespace',
      'pod',
      'dra_claim_name',
      'dra_claim_namespace',
      'dra_driver_name',
      'dra_pool_name',
      'dra_device_name',
      'dra_mig_profile',
      'dra_mig_device_uuid',
    ]);
    expect(holderPairs(h!).slice(-3)).toEqual([
      ['dra_device_name', 'gpu-1-mig-1g10gb-9-0'],
      ['dra_mig_profile', '1g.10gb'],
      ['dra_mig_device_uuid', MIG_B],
    ]);
  });

  it('a device plugin holder has none of them', () => {
    const at = attributorOf(buildDeviceMap(listOf([], [{ pod: 'p', resource: 'nvidia.com/gpu', ids: [`${GPU0}::1`] }, { pod: 'q', resource: 'nvidia.com/mig-1g.10gb', ids: [MIG_B] }]), undefined)).attribute(node);
    for (const h of [...at.holdersOf(GPU0), ...at.holdersOf(MIG_B)]) {
      const keys = holderPairs(h).map(([k]) => k);
      expect(keys.filter((k) => k.startsWith('dra_'))).toEqual([]);
    }
    expect(holderPairs(at.holdersOf(GPU0)[0]!)).toEqual([
      ['container', 'main'],
      ['namespace', 'ns'],
      ['pod', 'p'],
      ['vgpu', '1'],
    ]);
  });
});

describe('DRA edge cases', () => {
  it('one container holding two shares of one device in one claim is one holder with their sum', () => {
    const inv = new SliceInventory();
    inv.put(slice('s', [gpuDevice('gpu-0', GPU0)]));
    const map = buildDeviceMap(
      listOf([
        { pod: 'p', claim: 'c', device: 'gpu-0', shareId: 'share-1' },
        { pod: 'p', claim: 'c', device: 'gpu-0', shareId: 'share-2' },
        { pod: 'q', claim: 'd', device: 'gpu-0', shareId: 'share-3' },
      ]),
      undefined,
    );
    const holders = attributorOf(map, inv).attribute(sampleOf(gpu(0, GPU0))).holdersOf(GPU0);
    const sets = holders.map((h) => JSON.stringify(holderPairs(h)));
    expect(new Set(sets).size).toBe(sets.length);
    expect(Object.fromEntries(holders.map((h) => [h.pod, h.share]))).toEqual({ p: 2 / 3, q: 1 / 3 });
  });

  it('two DynamicMIG devices of one parent and profile are not both put on the one instance NVML shows', () => {
    const inv = new SliceInventory();
    inv.put(slice('s', [migDevice('dyn-a', undefined, GPU1, '1g.10gb'), migDevice('dyn-b', undefined, GPU1, '1g.10gb')]));
    const map = buildDeviceMap(listOf([{ pod: 'a', claim: 'ca', device: 'dyn-a' }, { pod: 'b', claim: 'cb', device: 'dyn-b' }]), undefined);
    const at = attributorOf(map, inv).attribute(sampleOf(gpu(1, GPU1, [mig(MIG_B, '1g.10gb', 9)], 7)));
    expect(who(at.holdersOf(MIG_B))).toEqual([]);
    expect(at.draUnresolvedDevices).toBe(2);
  });

  it('refuses a pool generation that is not a JSON number', () => {
    // an absent (or null) generation reads as 0
    for (const g of [true, '0x10', [3], '']) expect(() => parseSlice(sliceObject('g', [], { generation: g }))).toThrow(SliceShapeError);
  });

  it('reads a device published without `type` by what its UUID says', () => {
    const inv = new SliceInventory();
    inv.put(parseSlice(sliceObject('s', [{ name: 'gpu-0', attributes: { uuid: { string: GPU0 } } }])));
    const map = buildDeviceMap(listOf([{ pod: 'p', claim: 'c', device: 'gpu-0' }]), undefined);
    expect(who(attributorOf(map, inv).attribute(sampleOf(gpu(0, GPU0))).holdersOf(GPU0))).toHaveLength(1);
  });
});
