import type { FromEventWorker } from '../events/protocol.js';
import type { NodeSample } from '../sample.js';

/** Messages between the main thread and the sampling worker. */
export interface WorkerInit {
  libraryPath?: string;
  driverRoot?: string;
  /** Collector name -> enabled. */
  collectors: Record<string, boolean>;
  /**
   * How often slow collectors (e.g. memory_errors) re-read a GPU, ms (--health.interval); their last
   * values are carried in between. Absent or not above the sample interval: every tick.
   */
  slowIntervalMs?: number;
  /** Wait on NVML events (Xid, ECC) with waits of at most this long; off when absent. */
  eventWaitMs?: number;
}

/**
 * The worker samples on its own timer once told to start: the main thread is not woken to ask
 * for each tick, only when a sample arrives.
 */
export type ToWorker = { type: 'init' } | { type: 'start'; intervalMs: number } | { type: 'shutdown' };

export type FromWorker =
  | { type: 'init-result'; ok: true; libraryPath: string; driverVersion: string }
  | { type: 'init-result'; ok: false; error: string; code?: number }
  /** skippedTicks: ticks this worker let pass so far because the one before was still running. */
  | { type: 'sample'; id: number; sample: NodeSample; skippedTicks: number }
  | { type: 'tick-error'; id: number; error: string; skippedTicks: number }
  | { type: 'events'; msg: FromEventWorker }
  | { type: 'shutdown-done' };
