import { FieldId } from '../native/nvml-constants.js';
import type { Collector } from './collector.js';
import { readFields } from './field-values.js';

/**
 * Volatile ECC error counts (since the driver last loaded), read every sample: a double-bit error
 * must show at once. The lifetime (aggregate) counts change as rarely as retired pages and are
 * read by the slow memory_errors collector.
 */
export const eccCollector: Collector = {
  name: 'ecc',
  defaultEnabled: true,
  description: 'Single- and double-bit ECC errors since the driver loaded (GPUs with ECC enabled)',
  collect(reader, { device, sample }) {
    Object.assign(
      sample.values,
      readFields(reader, device, {
        eccSbeVolatile: FieldId.ECC_SBE_VOLATILE_TOTAL,
        eccDbeVolatile: FieldId.ECC_DBE_VOLATILE_TOTAL,
      }),
    );
  },
};
