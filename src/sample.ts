/**
 * Plain samples: what the sampling worker hands the main thread. No handles, no classes,
 * only data that survives structured cloning.
 */

/** Every raw value a collector can produce, in NVML's own units. */
export const VALUE_KEYS = [
  'gpuUtilPercent',
  'memCopyUtilPercent',
  'encoderUtilPercent',
  'decoderUtilPercent',
  'fbTotalBytes',
  'fbUsedBytes',
  'fbFreeBytes',
  'fbReservedBytes',
  'gpuTempCelsius',
  'memoryTempCelsius',
  'powerUsageMilliwatts',
  'powerLimitMilliwatts',
  'totalEnergyMillijoules',
  'smClockMHz',
  'memClockMHz',
  'graphicsClockMHz',
  'maxSmClockMHz',
  'maxMemClockMHz',
  'maxGraphicsClockMHz',
  'fanSpeedPercent',
  'performanceState',
  'pcieTxKBps',
  'pcieRxKBps',
  'migModeEnabled',
  /** Derived on the main thread: utilization integrated over time. */
  'gpuBusySeconds',
  'memCopyBusySeconds',
] as const;
export type ValueKey = (typeof VALUE_KEYS)[number];
export type Values = Partial<Record<ValueKey, number>>;

export interface MigSample {
  uuid: string;
  gpuInstanceId: number;
  computeInstanceId: number;
  /** e.g. "1g.10gb" */
  profile: string;
  values: Values;
}

export interface GpuSample {
  index: number;
  uuid: string;
  name: string;
  pciBusId: string;
  minor: number;
  values: Values;
  mig: MigSample[];
}

export interface CollectorReport {
  name: string;
  success: boolean;
  durationSeconds: number;
  /** First error of this tick, for the log (one line per change of state). */
  error?: string;
}

export interface LostGpu {
  index: number;
  uuid?: string;
  error: string;
}

export interface NodeSample {
  /** Wall-clock ms when the tick started. */
  takenAtMs: number;
  /** Monotonic ms (performance.now of the worker) when the tick started. */
  monotonicMs: number;
  driverVersion: string;
  gpus: GpuSample[];
  lostGpus: LostGpu[];
  collectors: CollectorReport[];
  /** Set when device enumeration itself failed. */
  enumerationError?: string;
  tickSeconds: number;
  /** Optional NVML symbols this driver lacks (their values count as not supported). */
  missingSymbols?: string[];
}
