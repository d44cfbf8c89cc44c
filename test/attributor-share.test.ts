import { describe, expect, it } from 'vitest';
import { Attributor } from '../src/attribution/attributor.js';
import { buildDeviceMap } from '../src/attribution/device-map.js';
import type { NodeSample } from '../src/sample.js';

/** The allocated share of each kind of claim, straight through the device map and the attributor. */
const GPU = 'GPU-11111111-2222-3333-4444-555555555555';
const MIG = 'MIG-aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee';
const sample = {
  takenAtMs: 0, monotonicMs: 0, driverVersion: '', lostGpus: [], collectors: [], tickSeconds: 0,
  gpus: [{ index: 0, uuid: GPU, name: 'NVIDIA H100 80GB HBM3', pciBusId: '', minor: 0, values: {}, processes: [], maxMigDevices: 7, mig: [{ uuid: MIG, gpuInstanceId: 9, computeInstanceId: 0, profile: '1g.10gb', values: {}, processes: [] }] }],
} as unknown as NodeSample;

function sharesOf(resource: string, ids: string[], allocatable: string[]): number[] {
  const list = { podResources: ids.map((id, i) => ({ name: `p${i}`, namespace: 'n', containers: [{ name: 'c', devices: [{ resourceName: resource, deviceIds: [id] }] }] })) };
  const map = buildDeviceMap(list, { devices: [{ resourceName: resource, deviceIds: allocatable }] });
  const attribution = new Attributor({ deviceMap: () => map }).attribute(sample);
  return [...attribution.holdersOf(GPU), ...attribution.holdersOf(MIG)].map((h) => h.share!);
}

describe('allocated share', () => {
  it('a whole GPU is 1 and a MIG instance its compute slice', () => {
    expect(sharesOf('nvidia.com/gpu', [GPU], [GPU])).toEqual([1]);
    expect(sharesOf('nvidia.com/mig-1g.10gb', [MIG], [MIG])).toEqual([1 / 7]);
  });

  it('a replica of a shared GPU is 1/replicas, and a replica of a shared MIG instance its slice split as many ways', () => {
    const gpuReplicas = [0, 1, 2, 3].map((r) => `${GPU}::${r}`);
    expect(sharesOf('nvidia.com/gpu', gpuReplicas.slice(0, 2), gpuReplicas)).toEqual([0.25, 0.25]);
    const migReplicas = [0, 1, 2, 3].map((r) => `${MIG}::${r}`);
    const shares = sharesOf('nvidia.com/mig-1g.10gb', migReplicas, migReplicas);
    expect(shares).toHaveLength(4);
    for (const s of shares) expect(s).toBeCloseTo(1 / 28, 12);
    expect(shares.reduce((a, b) => a + b, 0)).toBeCloseTo(1 / 7, 12);
  });
});

describe('device ids that name no device here', () => {
  it('are counted per sample: ids of devices this sample lacks, and ids that are no device id at all', () => {
    const ids = [GPU, 'GPU-99999999-0000-0000-0000-000000000000', 'MIG-77777777-0000-0000-0000-000000000000', 'not-a-device-id'];
    const list = { podResources: ids.map((id, i) => ({ name: `p${i}`, namespace: 'n', containers: [{ name: 'c', devices: [{ resourceName: 'nvidia.com/gpu', deviceIds: [id] }] }] })) };
    const attributor = new Attributor({ deviceMap: () => buildDeviceMap(list, undefined) });
    expect(attributor.attribute(sample).unknownDeviceIds).toBe(3);
    // the same map with the GPU gone from the sample: its id is unknown too
    expect(attributor.attribute({ ...sample, gpus: [] }).unknownDeviceIds).toBe(4);
  });
});
