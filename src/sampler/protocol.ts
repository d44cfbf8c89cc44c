import type { FromEventWorker } from '../events/protocol.js';
import type { NodeSample } from '../sample.js';

/** Messages between the main thread and the sampling worker. */
export interface WorkerInit {
  libraryPath?: string;
  driverRoot?: string;
  /** Collector name -> enabled. */
  collectors: Record<string, boolean>;
  /** The sample interval, ms: the worker ticks on its own timer. */
  intervalMs: number;
  /**
   * How often slow collectors (e.g. memory_errors) re-read a GPU, ms (--health.interval); their last
   * values are carried in between. Absent or not above the sample interval: every tick.
   */
  slowIntervalMs?: number;
  /** Read NVML events (Xid, ECC, GPU unavailable) at each tick; off when absent. */
  events?: boolean;
  /** The SamplerControl words (sample-slot.ts), shared with the main thread. */
  control: SharedArrayBuffer;
}

export type ToWorker = { type: 'init' } | { type: 'shutdown' };

export type FromWorker =
  /** `slot`: the SampleSlotReader's buffer, where every sample is left from now on. */
  | { type: 'init-result'; ok: true; libraryPath: string; driverVersion: string; slot: SharedArrayBuffer }
  | { type: 'init-result'; ok: false; error: string; code?: number }
  /**
   * A sample also sent as a message: `notable` when what the main thread's observers read changed
   * (notable.ts), otherwise because the main thread asked for every sample (SamplerControl.notify),
   * or because it did not fit the slot (`slot`: the new, larger one, in use from this sample on).
   */
  | { type: 'sample'; seq: number; sample: NodeSample; notable: boolean; slot?: SharedArrayBuffer }
  | { type: 'tick-error'; error: string }
  | { type: 'events'; msg: FromEventWorker }
  | { type: 'shutdown-done' };
