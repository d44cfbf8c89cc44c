import { EventType } from '../native/nvml-constants.js';
import type { EventSet, NvmlBinding } from '../native/nvml-binding.js';
import type { FromEventWorker, RegisteredGpu } from './protocol.js';

const WANTED = EventType.XID_CRITICAL | EventType.SINGLE_BIT_ECC | EventType.DOUBLE_BIT_ECC | EventType.GPU_UNAVAILABLE;

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

export interface EventLoopOptions {
  /** Longest single wait; a stop takes at most this long. */
  waitMs: number;
  /** First delay before registering again after a failure; doubles up to maxBackoffMs. */
  minBackoffMs: number;
  maxBackoffMs: number;
}

/**
 * Waits on NVML events on the sampling thread without blocking it: each wait runs on a
 * libuv pool thread (an asynchronous koffi call), so ticks go on between and during waits and
 * no V8 isolate of its own is needed. A failed wait frees the event set and registers again
 * after a backoff; stop() ends the loop after the current wait, before NVML is shut down.
 */
export class EventLoop {
  private stopping = false;
  private running: Promise<void> | undefined;
  private wake: (() => void) | undefined;

  constructor(
    private readonly nvml: NvmlBinding,
    private readonly opts: EventLoopOptions,
    private readonly send: (msg: FromEventWorker) => void,
  ) {}

  start(): void {
    this.running ??= this.loop();
  }

  async stop(): Promise<void> {
    this.stopping = true;
    this.wake?.();
    await this.running;
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(done, ms);
      function done(): void {
        clearTimeout(t);
        resolve();
      }
      this.wake = done;
    });
  }

  private async loop(): Promise<void> {
    let backoff = this.opts.minBackoffMs;
    while (!this.stopping) {
      let set: EventSet | undefined;
      try {
        set = this.nvml.createEventSet();
        const registered = this.register(set);
        if (!registered.length) {
          await this.sleep(this.opts.maxBackoffMs); // nothing to wait on: look again later (GPUs may come back)
          continue;
        }
        backoff = this.opts.minBackoffMs;
        while (!this.stopping) {
          const ev = await this.nvml.waitForEventAsync(set, this.opts.waitMs);
          if (ev) this.forward(ev);
        }
      } catch (err) {
        if (this.stopping) break;
        this.send({ type: 'failed', error: message(err) });
        await this.sleep(backoff);
        backoff = Math.min(backoff * 2, this.opts.maxBackoffMs);
      } finally {
        if (set !== undefined) {
          try {
            this.nvml.freeEventSet(set);
          } catch {
            /* the set goes with NVML anyway */
          }
        }
      }
    }
    this.send({ type: 'stopped' });
  }

  private register(set: EventSet): RegisteredGpu[] {
    const registered: RegisteredGpu[] = [];
    const skipped: { index: number; error: string }[] = [];
    const count = this.nvml.deviceCount();
    for (let index = 0; index < count; index++) {
      try {
        const device = this.nvml.deviceByIndex(index);
        const types = this.nvml.supportedEventTypes(device) & WANTED;
        if (types === 0n) continue;
        this.nvml.registerEvents(device, types, set);
        registered.push({ index, uuid: this.nvml.uuid(device), types: Number(types) });
      } catch (err) {
        skipped.push({ index, error: message(err) }); // one GPU that cannot register does not stop the others
      }
    }
    this.send({ type: 'ready', registered, skipped });
    return registered;
  }

  private forward(ev: NonNullable<Awaited<ReturnType<NvmlBinding['waitForEventAsync']>>>): void {
    let uuid = '';
    try {
      uuid = this.nvml.uuid(ev.device);
    } catch {
      /* a GPU that fell off the bus may not answer: the event is still reported */
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
