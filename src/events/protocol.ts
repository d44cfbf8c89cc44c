/** What the NVML event watch (on the sampling worker) reports to the main thread. */
/** One NVML event, as plain data. */
export interface GpuEvent {
  /** UUID of the physical GPU the event names ('' when it could not be read). */
  uuid: string;
  /** Event type bit (EventType). */
  eventType: number;
  /** For Xid events, the Xid. */
  data: number;
  /** MIG GPU / compute instance the event names, when it names one. */
  gpuInstanceId?: number;
  computeInstanceId?: number;
  /** Unix ms when the worker received it. */
  atMs: number;
}

export interface RegisteredGpu {
  index: number;
  uuid: string;
  /** Event type bits registered on this GPU. */
  types: number;
}

export type FromEventWorker =
  | { type: 'ready'; registered: RegisteredGpu[]; skipped: { index: number; error: string }[] }
  | { type: 'event'; event: GpuEvent }
  | { type: 'failed'; error: string }
  | { type: 'stopped' };
