import type { Collector } from './collector.js';

/** Fan speed in percent of maximum (may exceed 100); absent on passively cooled GPUs. */
export const fanCollector: Collector = {
  name: 'fan',
  defaultEnabled: true,
  description: 'Fan speed (absent on GPUs without a fan, e.g. SXM modules)',
  collect(reader, { device, sample }) {
    reader.read(sample.values, 'fanSpeedPercent', () => reader.nvml.fanSpeedPercent(device));
  },
};
