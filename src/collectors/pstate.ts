import type { Collector } from './collector.js';

const PSTATE_UNKNOWN = 32;

export const pstateCollector: Collector = {
  name: 'pstate',
  defaultEnabled: true,
  description: 'Performance state (P0 = 0 ... P15 = 15)',
  collect(reader, { device, sample }) {
    reader.attempt(() => {
      const p = reader.nvml.performanceState(device);
      if (p !== PSTATE_UNKNOWN) sample.values.performanceState = p;
    });
  },
};
