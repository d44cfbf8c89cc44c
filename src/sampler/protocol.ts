import type { MessagePort } from 'node:worker_threads';
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
  /**
   * Where samples (FromWorkerSamples) are sent, apart from the other messages: the main thread
   * takes what is queued there at once, before it reads the slot (receiveMessageOnPort).
   */
  samples: MessagePort;
}

export type ToWorker = { type: 'init' } | { type: 'shutdown' };

export type FromWorker =
  | { type: 'init-result'; ok: true; libraryPath: string; driverVersion: string }
  | { type: 'init-result'; ok: false; error: string; code?: number }
  | { type: 'events'; msg: FromEventWorker }
  | { type: 'shutdown-done' };

/**
 * On the samples port, in tick order. A sample is sent as a message, before it goes into the slot,
 * when what the main thread's observers read changed (`notable`, notable.ts), when the main thread
 * asked for every sample (SamplerControl.notify), or when it does not fit the slot (`slot`: the
 * new, larger one, in use from this sample on).
 */
export type FromWorkerSamples = { type: 'sample'; seq: number; sample: NodeSample; notable: boolean; slot?: SharedArrayBuffer } | { type: 'tick-error'; error: string };
