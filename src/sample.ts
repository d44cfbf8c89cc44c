/**
 * Plain samples: what the sampling worker hands the main thread. No handles, no classes,
 * only data that survives structured cloning.
 */

import { VALUES } from './values/value-table.js';

/**
 * Every raw value a collector can produce, in NVML's own units: the keys of the value table
 * (src/values/value-table.ts), where each is declared with how it is read and what it exports.
 */
export type ValueKey = keyof typeof VALUES;
export const VALUE_KEYS = Object.keys(VALUES) as ValueKey[];
export type Values = Partial<Record<ValueKey, number>>;

/** A running compute process (nvmlDeviceGetComputeRunningProcesses). */
export interface ProcessSample {
  /** Host pid (as the driver sees it, in the host's pid namespace). */
  pid: number;
  /** GPU memory the process uses, bytes; absent when the driver does not say (NVML_VALUE_NOT_AVAILABLE). */
  usedMemoryBytes?: number;
  /** MIG GPU instance / compute instance of the process; absent on GPUs without MIG. */
  gpuInstanceId?: number;
  computeInstanceId?: number;
}

/**
 * Utilization of one process (nvmlDeviceGetProcessUtilization), percent, averaged over the
 * driver samples taken since the previous tick.
 */
export interface ProcessUtilSample {
  pid: number;
  smUtilPercent: number;
  memUtilPercent: number;
  encUtilPercent: number;
  decUtilPercent: number;
}

export interface MigSample {
  uuid: string;
  gpuInstanceId: number;
  computeInstanceId: number;
  /** e.g. "1g.10gb" */
  profile: string;
  values: Values;
  /** Compute processes running in this MIG instance (read through the MIG handle). */
  processes: ProcessSample[];
  /**
   * Milliseconds between the two GPM samples this instance's GPM values average over; present
   * only when they were computed this tick (absent when the values are carried over from the
   * previous tick because the samples would have been too close together).
   */
  gpmSpanMs?: number;
}

/**
 * A MIG profile the GPU can be split into, as NVML lists it (nvmlDeviceGetGpuInstanceProfileInfoV):
 * NVML answers only while MIG mode is enabled.
 */
export interface MigProfileSample {
  /** e.g. "1g.10gb" (NVML's name without its "MIG " prefix) */
  profile: string;
  /** Compute slices the profile takes (the GPU has as many as its largest profile: 7, 4 on an A30). */
  sliceCount: number;
  /** How many instances of the profile fit on the empty GPU. */
  instanceCount: number;
  memoryBytes: number;
}

/** A collector that found its feature missing on a GPU (e.g. no GPM before Hopper): its families are absent for that GPU. */
export interface UnsupportedFeature {
  collector: string;
  reason: string;
}

export interface GpuSample {
  index: number;
  uuid: string;
  name: string;
  pciBusId: string;
  minor: number;
  values: Values;
  mig: MigSample[];
  /** Compute processes on the whole GPU; empty on MIG-enabled GPUs (see MigSample.processes). */
  processes: ProcessSample[];
  /**
   * Per pid, averaged over the driver samples since the previous tick; empty when no process
   * ran since then. Absent where it could not be read: MIG-enabled GPUs, drivers without
   * support, errors (so per-container utilization is left out rather than reported as 0).
   */
  processUtilization?: ProcessUtilSample[];
  /** How many MIG devices the GPU can hold (its compute slices, 7 on A100/H100); MIG-enabled GPUs only. */
  maxMigDevices?: number;
  /**
   * The MIG profiles NVML lists for the GPU (mig_profiles collector), in NVML's order; present
   * only while MIG mode is enabled and NVML answered. GPUs without it get the profiles of their
   * model, if known, from src/metrics/mig-profile-models.ts.
   */
  migProfiles?: MigProfileSample[];
  /** Collectors that this GPU does not support (logged once per GPU). */
  unsupported?: UnsupportedFeature[];
}

/** What names a GPU on its series; a GPU that stopped answering keeps the identity it last had. */
export type GpuIdentity = Pick<GpuSample, 'index' | 'uuid' | 'name' | 'pciBusId' | 'minor'>;

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
