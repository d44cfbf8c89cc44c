import type { NodeSample } from '../../sample.js';
import type { DraAllocation } from '../device-map.js';
import type { DraDevice } from './slice-inventory.js';

/** Looks up a device a DRA driver publishes (the slice watcher's inventory). */
export type DraDeviceLookup = (driver: string, pool: string, name: string) => DraDevice | undefined;

/** Where an allocation landed: the NVML device (GPU or MIG instance) of the sample, by UUID. */
export interface ResolvedDraAllocation {
  allocation: DraAllocation;
  uuid: string;
  isMig: boolean;
  /** The MIG instance's profile (from the slice, else from NVML). */
  migProfile?: string;
}

export interface DraResolution {
  resolved: ResolvedDraAllocation[];
  /** Distinct devices (driver, pool, name) allocated here that name no device of this sample. */
  unresolvedDevices: number;
}

interface MigOfSample {
  uuid: string;
  profile: string;
}

/**
 * Ties each DRA allocation to an NVML device of the sample:
 * - `type` gpu: the device's `uuid` attribute, a GPU of this sample;
 * - `type` mig: its `uuid` (the MIG instance, not its parent); without one (the driver's
 *   DynamicMIG mode) the one instance of `profile` on the GPU `parentUUID`, when NVML shows
 *   exactly one such instance and no other such device of that parent and profile is
 *   allocated (else it could be either), else unresolved;
 * - any other type (`vfio` passthrough, ...): not an NVML device on this host, ignored.
 * An allocation whose device no slice publishes (the slice not seen yet, or DRA watching
 * off) is unresolved, and resolves at a later render once the slice arrives.
 */
export function resolveDraAllocations(allocations: readonly DraAllocation[], lookup: DraDeviceLookup | undefined, sample: NodeSample): DraResolution {
  if (allocations.length === 0) return { resolved: [], unresolvedDevices: 0 };
  const gpus = new Set<string>();
  const migs = new Map<string, MigOfSample>();
  const migsOfParent = new Map<string, MigOfSample[]>();
  for (const gpu of sample.gpus) {
    gpus.add(gpu.uuid);
    const list: MigOfSample[] = [];
    for (const m of gpu.mig) {
      const entry = { uuid: m.uuid, profile: m.profile };
      migs.set(m.uuid, entry);
      list.push(entry);
    }
    migsOfParent.set(gpu.uuid, list);
  }
  const devices = allocations.map((a) => lookup?.(a.driver, a.pool, a.device));
  // DynamicMIG devices (no uuid) allocated per parent GPU and profile: two of them cannot be told apart
  const dynamicMig = new Map<string, Set<string>>();
  for (const d of devices) {
    if (d?.type !== 'mig' || d.uuid) continue;
    const k = `${d.parentUuid}\u0000${d.profile}`;
    let names = dynamicMig.get(k);
    if (!names) dynamicMig.set(k, (names = new Set()));
    names.add(`${d.pool}\u0000${d.name}`);
  }
  const resolved: ResolvedDraAllocation[] = [];
  const unresolved = new Set<string>();
  for (const [i, a] of allocations.entries()) {
    const device = devices[i];
    const ambiguous = device?.type === 'mig' && !device.uuid && (dynamicMig.get(`${device.parentUuid}\u0000${device.profile}`)?.size ?? 0) > 1;
    const target = device && !ambiguous ? deviceOf(device, gpus, migs, migsOfParent) : undefined;
    if (target === 'ignored') continue;
    if (!target) {
      unresolved.add(`${a.driver}\u0000${a.pool}\u0000${a.device}`);
      continue;
    }
    resolved.push({ allocation: a, ...target });
  }
  return { resolved, unresolvedDevices: unresolved.size };
}

function deviceOf(
  device: DraDevice,
  gpus: ReadonlySet<string>,
  migs: ReadonlyMap<string, MigOfSample>,
  migsOfParent: ReadonlyMap<string, readonly MigOfSample[]>,
): Omit<ResolvedDraAllocation, 'allocation'> | 'ignored' | undefined {
  switch (device.type) {
    case 'gpu':
      return device.uuid && gpus.has(device.uuid) ? { uuid: device.uuid, isMig: false } : undefined;
    case 'mig': {
      if (device.uuid) {
        const m = migs.get(device.uuid);
        return m ? { uuid: m.uuid, isMig: true, migProfile: device.profile ?? m.profile } : undefined;
      }
      if (!device.parentUuid || !device.profile) return undefined;
      const candidates = (migsOfParent.get(device.parentUuid) ?? []).filter((m) => m.profile === device.profile);
      return candidates.length === 1 ? { uuid: candidates[0]!.uuid, isMig: true, migProfile: device.profile } : undefined;
    }
    default:
      return 'ignored';
  }
}
