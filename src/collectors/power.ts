import type { Collector } from './collector.js';

export const powerCollector: Collector = {
  name: 'power',
  defaultEnabled: true,
  description: 'Power draw, enforced power limit and total energy since driver load',
  collect(reader, { device, sample }) {
    const { nvml } = reader;
    reader.read(sample.values, 'powerUsageMilliwatts', () => nvml.powerUsageMilliwatts(device));
    reader.read(sample.values, 'powerLimitMilliwatts', () => nvml.enforcedPowerLimitMilliwatts(device));
    reader.read(sample.values, 'totalEnergyMillijoules', () => nvml.totalEnergyMillijoules(device));
  },
};
