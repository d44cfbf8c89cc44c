import type { MigSample } from '../sample.js';
import type { Collector } from './collector.js';
import { readMemory } from './memory.js';

const MIG_PROFILE = /MIG\s+(\S+)\s*$/;

/** GpuTarget.state key: what identifies each MIG instance of the GPU, by MIG device UUID. */
export const MIG_IDENTITY_KEY = 'mig.identities';

/** What NVML fixes for a MIG device while its UUID stays (a reconfiguration creates new UUIDs). */
interface MigIdentity {
  gpuInstanceId: number;
  computeInstanceId: number;
  profile: string;
}

/** "NVIDIA H100 80GB HBM3 MIG 1g.10gb" -> "1g.10gb" */
export function migProfileFromName(name: string): string {
  return MIG_PROFILE.exec(name)?.[1] ?? 'unknown';
}

/**
 * MIG instances of MIG-enabled GPUs with their own framebuffer values. GPU-level values
 * (temperature, power, clocks) stay on the parent GPU's series. Each tick lists the instances and
 * reads each one's UUID; its GPU and compute instance ids and profile are read once per UUID (NVML
 * gives a re-created instance a new UUID) and kept in the GPU's state bag while it is listed.
 */
export const migCollector: Collector = {
  name: 'mig',
  defaultEnabled: true,
  description: 'MIG mode and, per MIG instance, its own framebuffer memory',
  collect(reader, gpu) {
    const { nvml } = reader;
    let enabled = false;
    reader.attempt(() => {
      enabled = nvml.migMode(gpu.device).current === 1;
      gpu.sample.values.migModeEnabled = enabled ? 1 : 0;
    });
    if (!enabled) {
      gpu.state.delete(MIG_IDENTITY_KEY);
      return;
    }
    let known = gpu.state.get(MIG_IDENTITY_KEY) as Map<string, MigIdentity> | undefined;
    if (!known) gpu.state.set(MIG_IDENTITY_KEY, (known = new Map()));
    const identities = known;
    reader.attempt(() => {
      const slots = nvml.maxMigDeviceCount(gpu.device);
      gpu.sample.maxMigDevices = slots;
      for (let slot = 0; slot < slots; slot++) {
        const device = nvml.migDeviceByIndex(gpu.device, slot);
        if (device === undefined) continue;
        const uuid = nvml.uuid(device);
        let id = identities.get(uuid);
        if (!id) {
          id = { gpuInstanceId: nvml.gpuInstanceId(device), computeInstanceId: nvml.computeInstanceId(device), profile: migProfileFromName(nvml.name(device)) };
          identities.set(uuid, id);
        }
        const sample: MigSample = { uuid, gpuInstanceId: id.gpuInstanceId, computeInstanceId: id.computeInstanceId, profile: id.profile, values: {}, processes: [] };
        reader.attempt(() => readMemory(nvml, device, sample.values));
        gpu.migDevices.push({ device, sample });
        gpu.sample.mig.push(sample);
      }
    });
    // instances no longer listed (destroyed, or the list failed part-way) are forgotten
    if (identities.size > gpu.sample.mig.length) {
      const listed = new Set(gpu.sample.mig.map((m) => m.uuid));
      for (const uuid of identities.keys()) if (!listed.has(uuid)) identities.delete(uuid);
    }
  },
};
