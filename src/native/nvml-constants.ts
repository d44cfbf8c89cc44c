/**
 * NVML enum values the collectors pass to the binding. Kept apart from the binding so that
 * modules on the HTTP thread can name collectors without loading the FFI library.
 */
export const ClockType = { GRAPHICS: 0, SM: 1, MEM: 2, VIDEO: 3 } as const;
export const PcieCounter = { TX: 0, RX: 1 } as const;
export const FieldId = {
  ECC_SBE_VOLATILE_TOTAL: 3,
  ECC_DBE_VOLATILE_TOTAL: 4,
  ECC_SBE_AGGREGATE_TOTAL: 5,
  ECC_DBE_AGGREGATE_TOTAL: 6,
  RETIRED_PAGES_SBE: 29,
  RETIRED_PAGES_DBE: 30,
  RETIRED_PAGES_PENDING: 31,
  NVLINK_CRC_FLIT_ERRORS_TOTAL: 38,
  NVLINK_CRC_DATA_ERRORS_TOTAL: 45,
  NVLINK_REPLAY_ERRORS_TOTAL: 52,
  NVLINK_RECOVERY_ERRORS_TOTAL: 59,
  MEMORY_TEMP: 82,
  TOTAL_ENERGY: 83,
  NVLINK_LINK_COUNT: 91,
  PCIE_REPLAY_COUNTER: 94,
  /** KiB; scopeId 0xFFFFFFFF = the sum over links. */
  NVLINK_THROUGHPUT_DATA_TX: 138,
  NVLINK_THROUGHPUT_DATA_RX: 139,
  REMAPPED_ROWS_CORRECTABLE: 142,
  REMAPPED_ROWS_UNCORRECTABLE: 143,
  REMAPPED_ROWS_PENDING: 144,
  REMAPPED_ROWS_FAILURE: 145,
  POWER_AVERAGE: 185,
  POWER_INSTANT: 186,
} as const;

/** nvmlFieldValue_t.scopeId values. */
export const FieldScope = {
  /** NVLink throughput fields: the sum over all links. */
  ALL_NVLINKS: 0xffffffff,
} as const;

/** nvmlDeviceGetViolationStatus policy (nvmlPerfPolicyType_t). */
export const PerfPolicy = { POWER: 0, THERMAL: 1 } as const;

/** Event type bits (nvmlDeviceRegisterEvents / nvmlEventData_t.eventType). */
export const EventType = {
  SINGLE_BIT_ECC: 0x1n,
  DOUBLE_BIT_ECC: 0x2n,
  PSTATE: 0x4n,
  XID_CRITICAL: 0x8n,
  CLOCK: 0x10n,
  MIG_CONFIG_CHANGE: 0x100n,
  GPU_UNAVAILABLE: 0x4000n,
  GPU_RECOVERY_ACTION: 0x8000n,
} as const;

/** Clock event (throttle) reason bits (nvmlDeviceGetCurrentClocksEventReasons). */
export const ClocksEventReason = {
  GPU_IDLE: 0x1,
  APPLICATIONS_CLOCKS_SETTING: 0x2,
  SW_POWER_CAP: 0x4,
  HW_SLOWDOWN: 0x8,
  SYNC_BOOST: 0x10,
  SW_THERMAL_SLOWDOWN: 0x20,
  HW_THERMAL_SLOWDOWN: 0x40,
  HW_POWER_BRAKE_SLOWDOWN: 0x80,
  DISPLAY_CLOCK_SETTING: 0x100,
} as const;

/** GPM metric ids (nvmlGpmMetric_t.metricId): percent 0-100 unless noted. */
export const GpmMetricId = {
  GRAPHICS_UTIL: 1,
  SM_UTIL: 2,
  SM_OCCUPANCY: 3,
  INTEGER_UTIL: 4,
  ANY_TENSOR_UTIL: 5,
  DFMA_TENSOR_UTIL: 6,
  HMMA_TENSOR_UTIL: 7,
  IMMA_TENSOR_UTIL: 9,
  DRAM_BW_UTIL: 10,
  FP64_UTIL: 11,
  FP32_UTIL: 12,
  FP16_UTIL: 13,
  /** MiB/s */
  PCIE_TX_PER_SEC: 20,
  PCIE_RX_PER_SEC: 21,
  /** MiB/s over all links */
  NVLINK_TOTAL_RX_PER_SEC: 60,
  NVLINK_TOTAL_TX_PER_SEC: 61,
} as const;
