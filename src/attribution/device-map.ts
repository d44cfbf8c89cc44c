import { compareText } from './compare-text.js';
import { NVIDIA_GPU_DRIVER } from './dra/slice-inventory.js';
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

/**
 * One device of NVIDIA's DRA driver allocated to a claim that one container references, as
 * the kubelet names it: by driver, pool and device name. Which NVML device that is, is an
 * attribute of the device in a ResourceSlice (resolved at attribution time).
 */
export interface DraAllocation {
  namespace: string;
  pod: string;
  container: string;
  claimName: string;
  claimNamespace: string;
  driver: string;
  pool: string;
  device: string;
  /** One allocation of several of a device shared by consumable capacity (Kubernetes 1.35+). */
  shareId?: string;
}

/** The kubelet's view of which container holds which device. */
export interface DeviceMap {
  /** Device plugin allocations, by NVML UUID. */
  claims: ReadonlyMap<string, readonly DeviceClaim[]>;
  /** Allocations through NVIDIA's DRA driver (other drivers' devices are left out), sorted. */
  draAllocations: readonly DraAllocation[];
  /** Device ids under an NVIDIA resource that are not GPU or MIG ids (reported, not used). */
  unparsedIds: readonly string[];
  /** Pods holding at least one NVIDIA device, either way. */
  pods: number;
}

export const EMPTY_DEVICE_MAP: DeviceMap = { claims: new Map(), draAllocations: [], unparsedIds: [], pods: 0 };

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

function compareDra(a: DraAllocation, b: DraAllocation): number {
  return (
    compareText(a.pool, b.pool) ||
    compareText(a.device, b.device) ||
    compareText(a.claimNamespace, b.claimNamespace) ||
    compareText(a.claimName, b.claimName) ||
    compareText(a.shareId ?? '', b.shareId ?? '') ||
    compareText(a.namespace, b.namespace) ||
    compareText(a.pod, b.pod) ||
    compareText(a.container, b.container)
  );
}

function compareClaims(a: DeviceClaim, b: DeviceClaim): number {
  return compareText(a.namespace, b.namespace) || compareText(a.pod, b.pod) || compareText(a.container, b.container) || (a.replica ?? -1) - (b.replica ?? -1);
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
  const dra: DraAllocation[] = [];
  const seenDra = new Set<string>();
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
      for (const claim of container.dynamicResources ?? []) {
        for (const r of claim.claimResources ?? []) {
          if (r.driverName !== NVIDIA_GPU_DRIVER || !r.deviceName) continue;
          // the kubelet may list one claim twice for a container (several requests of it)
          const key = [pod.namespace, pod.name, container.name, claim.claimNamespace, claim.claimName, r.poolName, r.deviceName, r.shareId ?? ''].join('\u0000');
          if (seenDra.has(key)) continue;
          seenDra.add(key);
          podHasGpu = true;
          const a: DraAllocation = {
            namespace: pod.namespace,
            pod: pod.name,
            container: container.name,
            claimName: claim.claimName,
            claimNamespace: claim.claimNamespace,
            driver: r.driverName,
            pool: r.poolName,
            device: r.deviceName,
          };
          if (r.shareId !== undefined) a.shareId = r.shareId;
          dra.push(a);
        }
      }
    }
    if (podHasGpu) pods++;
  }
  for (const list of claims.values()) list.sort(compareClaims);
  return { claims, draAllocations: dra.sort(compareDra), unparsedIds: [...unparsed].sort(), pods };
}
