import type { Collector } from './collector.js';

export const codecCollector: Collector = {
  name: 'codec',
  defaultEnabled: true,
  description: 'Video encoder and decoder utilization',
  collect(reader, { device, sample }) {
    reader.read(sample.values, 'encoderUtilPercent', () => reader.nvml.encoderUtilization(device));
    reader.read(sample.values, 'decoderUtilPercent', () => reader.nvml.decoderUtilization(device));
  },
};
