import type { Collector } from './collector.js';
import { declaredReads, type DeclaredReads } from './declared.js';
import { readFields } from './field-values.js';

let reads: DeclaredReads | undefined;

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
    // the value table's fields of this collector (ECC aggregate, retired pages, remapped rows)
    const got = readFields(reader, device, (reads ??= declaredReads('memory_errors')).fields);
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
