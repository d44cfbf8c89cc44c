import { EventType } from '../native/nvml-constants.js';
import type { EventSet, NvmlBinding, NvmlEvent } from '../native/nvml-binding.js';
import type { FromEventWorker, RegisteredGpu } from './protocol.js';

const WANTED = EventType.XID_CRITICAL | EventType.SINGLE_BIT_ECC | EventType.DOUBLE_BIT_ECC | EventType.GPU_UNAVAILABLE;

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

export interface EventPollerOptions {
  /** First delay before registering again after a failure; doubles up to maxBackoffMs. */
  minBackoffMs: number;
  /** Also how long to wait before looking again when no GPU can deliver events. */
  maxBackoffMs: number;
  /** Most events taken in one poll; the rest stay queued in the set for the next. */
  maxPerPoll: number;
  /** Monotonic clock in ms (tests); default performance.now. */
  now?: () => number;
}

/**
 * Reads NVML events on the sampling thread, once per tick (poll), without waiting: the driver
 * queues a set's events between calls, so each poll drains what came since the last one with
 * nvmlEventSetWait_v2 and a timeout of 0. Nothing runs between ticks (no thread blocked in a wait,
 * no wake-up of its own), and a stop never waits for a wait to end. The first poll registers the
 * GPUs; a failed call frees the set and registers again after a backoff.
 */
export class EventPoller {
  private set: EventSet | undefined;
  /** UUID of each GPU registered in the set, by handle address: an event's GPU without an NVML call. */
  private uuidByHandle = new Map<bigint, string>();
  private stopped = false;
  /** Monotonic ms before which no registration is tried (after a failure, or when nothing could register). */
  private retryAtMs = -Infinity;
  private backoffMs: number;
  private readonly now: () => number;

  constructor(
    private readonly nvml: NvmlBinding,
    private readonly opts: EventPollerOptions,
    private readonly send: (msg: FromEventWorker) => void,
  ) {
    this.backoffMs = opts.minBackoffMs;
    this.now = opts.now ?? (() => performance.now());
  }

  /** Registers when due, then forwards the events queued since the last poll; never throws. */
  poll(): void {
    if (this.stopped) return;
    const set = this.set ?? this.registerWhenDue();
    if (set === undefined) return;
    try {
      for (let i = 0; i < this.opts.maxPerPoll; i++) {
        const ev = this.nvml.waitForEvent(set, 0);
        if (!ev) break;
        this.forward(ev);
      }
      this.backoffMs = this.opts.minBackoffMs;
    } catch (err) {
      this.failed(err);
    }
  }

  /** Frees the event set (before NVML is shut down) and reports the watch stopped; later polls do nothing. */
  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    this.free();
    this.send({ type: 'stopped' });
  }

  private registerWhenDue(): EventSet | undefined {
    if (this.now() < this.retryAtMs) return undefined;
    let registered: RegisteredGpu[];
    try {
      this.set = this.nvml.createEventSet();
      registered = this.register(this.set);
    } catch (err) {
      this.failed(err);
      return undefined;
    }
    if (registered.length > 0) return this.set;
    // nothing to wait on: look again later (GPUs may come back)
    this.free();
    this.retryAtMs = this.now() + this.opts.maxBackoffMs;
    return undefined;
  }

  /** Reports a failure, frees the set, and puts the next registration a backoff away (doubling). */
  private failed(err: unknown): void {
    this.send({ type: 'failed', error: message(err) });
    this.free();
    this.retryAtMs = this.now() + this.backoffMs;
    this.backoffMs = Math.min(this.backoffMs * 2, this.opts.maxBackoffMs);
  }

  private free(): void {
    const set = this.set;
    this.set = undefined;
    if (set === undefined) return;
    try {
      this.nvml.freeEventSet(set);
    } catch {
      /* the set goes with NVML anyway */
    }
  }

  private register(set: EventSet): RegisteredGpu[] {
    this.uuidByHandle = new Map();
    const registered: RegisteredGpu[] = [];
    const skipped: { index: number; error: string }[] = [];
    const count = this.nvml.deviceCount();
    for (let index = 0; index < count; index++) {
      try {
        const device = this.nvml.deviceByIndex(index);
        const types = this.nvml.supportedEventTypes(device) & WANTED;
        if (types === 0n) continue;
        const uuid = this.nvml.uuid(device);
        this.nvml.registerEvents(device, types, set);
        this.uuidByHandle.set(this.nvml.handleAddress(device), uuid);
        registered.push({ index, uuid, types: Number(types) });
      } catch (err) {
        skipped.push({ index, error: message(err) }); // one GPU that cannot register does not stop the others
      }
    }
    this.send({ type: 'ready', registered, skipped });
    return registered;
  }

  private forward(ev: NvmlEvent): void {
    // known from the registration: a GPU that fell off the bus (Xid 79) no longer answers NVML
    let uuid = this.uuidByHandle.get(this.nvml.handleAddress(ev.device)) ?? '';
    if (!uuid) {
      try {
        uuid = this.nvml.uuid(ev.device);
      } catch {
        /* the event is still reported, without its GPU */
      }
    }
    this.send({
      type: 'event',
      event: {
        uuid,
        eventType: Number(ev.eventType),
        data: Number(ev.eventData),
        ...(ev.gpuInstanceId !== undefined ? { gpuInstanceId: ev.gpuInstanceId } : {}),
        ...(ev.computeInstanceId !== undefined ? { computeInstanceId: ev.computeInstanceId } : {}),
        atMs: Date.now(),
      },
    });
  }
}
