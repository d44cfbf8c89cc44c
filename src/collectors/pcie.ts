import { PcieCounter } from '../native/nvml-constants.js';
import type { Collector } from './collector.js';

/** PCIe TX/RX throughput; each read can block ~20 ms in the driver, so it can be switched off. */
export const pcieCollector: Collector = {
  name: 'pcie',
  defaultEnabled: true,
  description: 'PCIe transmit and receive throughput (each read blocks the driver ~20 ms)',
  collect(reader, { device, sample }) {
    reader.read(sample.values, 'pcieTxKBps', () => reader.nvml.pcieThroughputKBps(device, PcieCounter.TX));
    reader.read(sample.values, 'pcieRxKBps', () => reader.nvml.pcieThroughputKBps(device, PcieCounter.RX));
  },
};
