import { FieldId } from '../native/nvml-constants.js';
import type { Collector } from './collector.js';

export const temperatureCollector: Collector = {
  name: 'temperature',
  defaultEnabled: true,
  description: 'GPU and memory (HBM) temperature',
  collect(reader, { device, sample }) {
    reader.read(sample.values, 'gpuTempCelsius', () => reader.nvml.temperature(device, 0));
    reader.attempt(() => {
      const [memTemp] = reader.nvml.fieldValues(device, [FieldId.MEMORY_TEMP]);
      if (memTemp?.value !== undefined) sample.values.memoryTempCelsius = memTemp.value;
    });
  },
};
