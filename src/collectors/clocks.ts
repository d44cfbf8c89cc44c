import { ClockType } from '../native/nvml-constants.js';
import type { Collector } from './collector.js';

export const clocksCollector: Collector = {
  name: 'clocks',
  defaultEnabled: true,
  description: 'SM, memory and graphics clocks and their maxima',
  collect(reader, { device, sample }) {
    const { nvml } = reader;
    const v = sample.values;
    reader.read(v, 'smClockMHz', () => nvml.clockMHz(device, ClockType.SM));
    reader.read(v, 'memClockMHz', () => nvml.clockMHz(device, ClockType.MEM));
    reader.read(v, 'graphicsClockMHz', () => nvml.clockMHz(device, ClockType.GRAPHICS));
    reader.read(v, 'maxSmClockMHz', () => nvml.maxClockMHz(device, ClockType.SM));
    reader.read(v, 'maxMemClockMHz', () => nvml.maxClockMHz(device, ClockType.MEM));
    reader.read(v, 'maxGraphicsClockMHz', () => nvml.maxClockMHz(device, ClockType.GRAPHICS));
  },
};
