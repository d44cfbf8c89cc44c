/**
 * NVML enum values the collectors pass to the binding. Kept apart from the binding so that
 * modules on the HTTP thread can name collectors without loading the FFI library.
 */
export const ClockType = { GRAPHICS: 0, SM: 1, MEM: 2, VIDEO: 3 } as const;
export const PcieCounter = { TX: 0, RX: 1 } as const;
export const FieldId = {
  MEMORY_TEMP: 82,
  TOTAL_ENERGY: 83,
  POWER_AVERAGE: 185,
  POWER_INSTANT: 186,
} as const;
