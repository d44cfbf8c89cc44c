import { FieldId } from '../native/nvml-constants.js';
import type { Collector } from './collector.js';
import { declaredReads, type DeclaredReads } from './declared.js';
import { readFields } from './field-values.js';

let reads: DeclaredReads | undefined;

/**
 * NVLink error totals and data counters over all links, in one field-value read. Only GPUs whose
 * link count reads above 0 get values: a GPU without NVLink has no NVLink series (not zeros).
 */
export const nvlinkCollector: Collector = {
  name: 'nvlink',
  defaultEnabled: true,
  description: 'NVLink CRC, replay and recovery error totals and data transmitted/received (GPUs with NVLink)',
  collect(reader, { device, sample }) {
    // the link count, to tell a GPU without NVLink, and the value table's fields of this collector
    const got = readFields(reader, device, { links: FieldId.NVLINK_LINK_COUNT, ...(reads ??= declaredReads('nvlink')).fields });
    const { links, ...values } = got;
    if (links === undefined || links <= 0) return;
    Object.assign(sample.values, values);
    if (values.nvlinkTxKiB !== undefined && values.nvlinkRxKiB !== undefined) {
      sample.values.nvlinkTotalKiB = values.nvlinkTxKiB + values.nvlinkRxKiB;
    }
  },
};
