import { PerfPolicy } from '../native/nvml-constants.js';
import type { Collector } from './collector.js';

/** Accumulated time the power and thermal policies held the clocks down (nvmlDeviceGetViolationStatus). */
export const violationCollector: Collector = {
  name: 'violation',
  defaultEnabled: true,
  description: 'Time clocks were held down by the power and by the thermal limit since the driver loaded',
  collect(reader, { device, sample }) {
    const { nvml } = reader;
    reader.read(sample.values, 'powerViolationNs', () => nvml.violationTime(device, PerfPolicy.POWER).violationTimeNs);
    reader.read(sample.values, 'thermalViolationNs', () => nvml.violationTime(device, PerfPolicy.THERMAL).violationTimeNs);
  },
};
