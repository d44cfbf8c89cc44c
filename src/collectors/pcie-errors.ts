import { FieldId } from '../native/nvml-constants.js';
import type { Collector } from './collector.js';
import { readFields } from './field-values.js';

/** PCIe replay counter: link-level retransmissions (cheap, unlike the throughput read of the pcie collector). */
export const pcieErrorsCollector: Collector = {
  name: 'pcie_errors',
  defaultEnabled: true,
  description: 'PCIe replay counter (link-level retries; a growing count points at a bad riser, slot or link)',
  collect(reader, { device, sample }) {
    Object.assign(sample.values, readFields(reader, device, { pcieReplays: FieldId.PCIE_REPLAY_COUNTER }));
  },
};
