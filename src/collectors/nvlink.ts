import { FieldId, FieldScope } from '../native/nvml-constants.js';
import type { Collector } from './collector.js';
import { readFields } from './field-values.js';

/**
 * NVLink error totals and data counters over all links, in one field-value read. Only GPUs whose
 * link count reads above 0 get values: a GPU without NVLink has no NVLink series (not zeros).
 */
export const nvlinkCollector: Collector = {
  name: 'nvlink',
  defaultEnabled: true,
  description: 'NVLink CRC, replay and recovery error totals and data transmitted/received (GPUs with NVLink)',
  collect(reader, { device, sample }) {
    const got = readFields(reader, device, {
      links: FieldId.NVLINK_LINK_COUNT,
      nvlinkCrcFlitErrors: FieldId.NVLINK_CRC_FLIT_ERRORS_TOTAL,
      nvlinkCrcDataErrors: FieldId.NVLINK_CRC_DATA_ERRORS_TOTAL,
      nvlinkReplayErrors: FieldId.NVLINK_REPLAY_ERRORS_TOTAL,
      nvlinkRecoveryErrors: FieldId.NVLINK_RECOVERY_ERRORS_TOTAL,
      nvlinkTxKiB: { fieldId: FieldId.NVLINK_THROUGHPUT_DATA_TX, scopeId: FieldScope.ALL_NVLINKS },
      nvlinkRxKiB: { fieldId: FieldId.NVLINK_THROUGHPUT_DATA_RX, scopeId: FieldScope.ALL_NVLINKS },
    });
    const { links, ...values } = got;
    if (links === undefined || links <= 0) return;
    Object.assign(sample.values, values);
    if (values.nvlinkTxKiB !== undefined && values.nvlinkRxKiB !== undefined) {
      sample.values.nvlinkTotalKiB = values.nvlinkTxKiB + values.nvlinkRxKiB;
    }
  },
};
