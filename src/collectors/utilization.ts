import type { Collector } from './collector.js';

/** GPU and memory-copy utilization (percent over the driver's last sample period). */
export const utilizationCollector: Collector = {
  name: 'utilization',
  defaultEnabled: true,
  description: 'GPU and memory copy utilization (not available on MIG-enabled GPUs)',
  collect(reader, { device, sample }) {
    reader.attempt(() => {
      const u = reader.nvml.utilizationRates(device);
      sample.values.gpuUtilPercent = u.gpu;
      sample.values.memCopyUtilPercent = u.memory;
    });
  },
};
