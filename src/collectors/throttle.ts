import type { Collector } from './collector.js';

/** Clock event (throttle) reasons as NVML's bit mask; the families split it into one series per reason. */
export const throttleCollector: Collector = {
  name: 'throttle',
  defaultEnabled: true,
  description: 'Clock event (throttle) reasons: why clocks are below their maximum (idle, power cap, thermal or power-brake slowdown, ...)',
  collect(reader, { device, sample }) {
    reader.read(sample.values, 'clocksEventReasons', () => reader.nvml.clocksEventReasons(device));
  },
};
