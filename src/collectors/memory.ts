import type { Device, NvmlBinding } from '../native/nvml-binding.js';
import type { Values } from '../sample.js';
import type { Collector } from './collector.js';

/** Framebuffer total/used/free/reserved in bytes; reserved only from MemoryInfo_v2. */
export function readMemory(nvml: NvmlBinding, device: Device, values: Values): void {
  const m = nvml.memoryInfo(device);
  values.fbTotalBytes = m.total;
  values.fbUsedBytes = m.used;
  values.fbFreeBytes = m.free;
  if (m.reserved !== undefined) values.fbReservedBytes = m.reserved;
}

export const memoryCollector: Collector = {
  name: 'memory',
  defaultEnabled: true,
  description: 'Framebuffer memory used, free, reserved and total',
  collect(reader, { device, sample }) {
    reader.attempt(() => readMemory(reader.nvml, device, sample.values));
  },
};
