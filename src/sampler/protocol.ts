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
  /** Read NVML events (Xid, ECC, GPU unavailable) at each tick; off when absent. */
  events?: boolean;
}

export type ToWorker = { type: 'init' } | { type: 'tick'; id: number } | { type: 'shutdown' };

export type FromWorker =
  | { type: 'init-result'; ok: true; libraryPath: string; driverVersion: string }
  | { type: 'init-result'; ok: false; error: string; code?: number }
  | { type: 'sample'; id: number; sample: NodeSample }
  | { type: 'tick-error'; id: number; error: string }
  | { type: 'events'; msg: FromEventWorker }
  | { type: 'shutdown-done' };
