import type { AllocatableResourcesResponse, ContainerDevices, ListPodResourcesResponse } from './kubelet/podresources.js';

/** Resource names of NVIDIA's device plugin; every other resource is ignored. */
export const WHOLE_GPU_RESOURCE = 'nvidia.com/gpu';
export const SHARED_GPU_RESOURCE = 'nvidia.com/gpu.shared';
export const MIG_RESOURCE_PREFIX = 'nvidia.com/mig-';

export function isNvidiaGpuResource(name: string): boolean {
  return name === WHOLE_GPU_RESOURCE || name === SHARED_GPU_RESOURCE || name.startsWith(MIG_RESOURCE_PREFIX);
}

/** A device id as the device plugin writes it: `GPU-<uuid>`, `MIG-<uuid>`, each optionally `::<replica>`. */
export interface ParsedDeviceId {
  /** The NVML UUID of the GPU or MIG instance (`GPU-...` / `MIG-...`). */
  uuid: string;
  replica?: number;
}

const DEVICE_ID = /^((?:GPU|MIG)-[0-9A-Za-z][0-9A-Za-z\-/]*)(?:::(\d{1,6}))?$/;

export function parseDeviceId(id: string): ParsedDeviceId | undefined {
  const m = DEVICE_ID.exec(id);
  if (!m) return undefined;
  return m[2] === undefined ? { uuid: m[1]! } : { uuid: m[1]!, replica: Number(m[2]) };
}

/** One device (or one replica of it) allocated to one container. */
export interface DeviceClaim {
  namespace: string;
  pod: string;
  container: string;
  resource: string;
  /** Replica number for a shared (time-sliced or MPS) GPU. */
  replica?: number;
  /** How many replicas the device plugin advertises for this device, when known. */
  replicas?: number;
}

/** The kubelet's view of which container holds which device, by NVML UUID. */
export interface DeviceMap {
  claims: ReadonlyMap<string, readonly DeviceClaim[]>;
  /** Device ids under an NVIDIA resource that are not GPU or MIG ids (reported, not used). */
  unparsedIds: readonly string[];
  pods: number;
}

export const EMPTY_DEVICE_MAP: DeviceMap = { claims: new Map(), unparsedIds: [], pods: 0 };

/** Replica counts per device UUID, from the devices the plugin advertises. */
export function replicaCounts(allocatable: readonly ContainerDevices[]): Map<string, number> {
  const counts = new Map<string, number>();
  for (const d of allocatable) {
    if (!isNvidiaGpuResource(d.resourceName)) continue;
    for (const id of d.deviceIds) {
      const parsed = parseDeviceId(id);
      if (parsed?.replica === undefined) continue;
      counts.set(parsed.uuid, (counts.get(parsed.uuid) ?? 0) + 1);
    }
  }
  return counts;
}

function compareClaims(a: DeviceClaim, b: DeviceClaim): number {
  return a.namespace.localeCompare(b.namespace) || a.pod.localeCompare(b.pod) || a.container.localeCompare(b.container) || (a.replica ?? -1) - (b.replica ?? -1);
}

/**
 * Builds the device map from a List response (and the allocatable devices, for replica
 * counts). Pure: the same responses give the same map, claims sorted for stable output.
 */
export function buildDeviceMap(list: ListPodResourcesResponse, allocatable: AllocatableResourcesResponse | undefined): DeviceMap {
  const replicas = allocatable ? replicaCounts(allocatable.devices ?? []) : new Map<string, number>();
  const claims = new Map<string, DeviceClaim[]>();
  const seen = new Set<string>();
  const unparsed = new Set<string>();
  let pods = 0;
  for (const pod of list.podResources ?? []) {
    let podHasGpu = false;
    for (const container of pod.containers ?? []) {
      for (const devices of container.devices ?? []) {
        if (!isNvidiaGpuResource(devices.resourceName)) continue;
        for (const id of devices.deviceIds ?? []) {
          const parsed = parseDeviceId(id);
          if (!parsed) {
            unparsed.add(id);
            continue;
          }
          const key = `${pod.namespace}\u0000${pod.name}\u0000${container.name}\u0000${id}`;
          if (seen.has(key)) continue;
          seen.add(key);
          podHasGpu = true;
          const claim: DeviceClaim = { namespace: pod.namespace, pod: pod.name, container: container.name, resource: devices.resourceName };
          if (parsed.replica !== undefined) {
            claim.replica = parsed.replica;
            const count = replicas.get(parsed.uuid);
            if (count !== undefined) claim.replicas = count;
          }
          let list = claims.get(parsed.uuid);
          if (!list) claims.set(parsed.uuid, (list = []));
          list.push(claim);
        }
      }
    }
    if (podHasGpu) pods++;
  }
  for (const list of claims.values()) list.sort(compareClaims);
  return { claims, unparsedIds: [...unparsed].sort(), pods };
}
