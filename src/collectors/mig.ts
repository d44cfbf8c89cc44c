import type { MigSample } from '../sample.js';
import type { Collector } from './collector.js';
import { readMemory } from './memory.js';

const MIG_PROFILE = /MIG\s+(\S+)\s*$/;

/** "NVIDIA H100 80GB HBM3 MIG 1g.10gb" -> "1g.10gb" */
export function migProfileFromName(name: string): string {
  return MIG_PROFILE.exec(name)?.[1] ?? 'unknown';
}

/**
 * MIG instances of MIG-enabled GPUs with their own framebuffer values. GPU-level values
 * (temperature, power, clocks) stay on the parent GPU's series.
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
    if (!enabled) return;
    reader.attempt(() => {
      const slots = nvml.maxMigDeviceCount(gpu.device);
      gpu.sample.maxMigDevices = slots;
      for (let slot = 0; slot < slots; slot++) {
        const device = nvml.migDeviceByIndex(gpu.device, slot);
        if (device === undefined) continue;
        const sample: MigSample = {
          uuid: nvml.uuid(device),
          gpuInstanceId: nvml.gpuInstanceId(device),
          computeInstanceId: nvml.computeInstanceId(device),
          profile: migProfileFromName(nvml.name(device)),
          values: {},
          processes: [],
        };
        reader.attempt(() => readMemory(nvml, device, sample.values));
        gpu.migDevices.push({ device, sample });
        gpu.sample.mig.push(sample);
      }
    });
  },
};
