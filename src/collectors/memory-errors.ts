import { FieldId } from '../native/nvml-constants.js';
import type { Collector } from './collector.js';
import { readFields } from './field-values.js';

/**
 * Memory health kept in the InfoROM: lifetime ECC counts, retired pages (before Ampere) and remapped
 * rows (Ampere and later), in one field-value read. These change rarely, so the collector is slow:
 * it re-reads a GPU every --health.interval and its last values are carried in between.
 * Remapped rows are not supported while MIG mode is on (they are absent then).
 */
export const memoryErrorsCollector: Collector = {
  name: 'memory_errors',
  defaultEnabled: true,
  slow: true,
  description: 'Lifetime ECC error counts, retired pages and remapped rows (re-read every --health.interval)',
  collect(reader, { device, sample }) {
    const got = readFields(reader, device, {
      eccSbeAggregate: FieldId.ECC_SBE_AGGREGATE_TOTAL,
      eccDbeAggregate: FieldId.ECC_DBE_AGGREGATE_TOTAL,
      retiredPagesSbe: FieldId.RETIRED_PAGES_SBE,
      retiredPagesDbe: FieldId.RETIRED_PAGES_DBE,
      retiredPagesPending: FieldId.RETIRED_PAGES_PENDING,
      remappedRowsCorrectable: FieldId.REMAPPED_ROWS_CORRECTABLE,
      remappedRowsUncorrectable: FieldId.REMAPPED_ROWS_UNCORRECTABLE,
      remappedRowsPending: FieldId.REMAPPED_ROWS_PENDING,
      remappedRowsFailure: FieldId.REMAPPED_ROWS_FAILURE,
    });
    Object.assign(sample.values, got);
    const remapRead =
      got.remappedRowsCorrectable !== undefined ||
      got.remappedRowsUncorrectable !== undefined ||
      got.remappedRowsPending !== undefined ||
      got.remappedRowsFailure !== undefined;
    if (remapRead) return;
    // drivers that have nvmlDeviceGetRemappedRows (R450) but not yet its field ids
    reader.attempt(() => {
      const rows = reader.nvml.remappedRows(device);
      sample.values.remappedRowsCorrectable = rows.correctable;
      sample.values.remappedRowsUncorrectable = rows.uncorrectable;
      sample.values.remappedRowsPending = rows.pending;
      sample.values.remappedRowsFailure = rows.failure;
    });
  },
};
