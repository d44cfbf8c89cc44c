import { EventEmitter } from 'node:events';
import type { Logger } from 'pino';
import { EventType } from '../native/nvml-constants.js';
import { EventTally } from './event-tally.js';
import type { FromEventWorker, GpuEvent, RegisteredGpu } from './protocol.js';
import { xidMessage } from './xid.js';

/** An Xid is logged once per GPU and code in this window: a storm is one line a window. */
const XID_LOG_WINDOW_MS = 60_000;

/**
 * Main-thread side of NVML events. They are read on the sampling thread (src/events/event-poller.ts);
 * this follows its messages: whether it is watching, which GPUs, how often it had to register
 * again after a failure. Each GPU event is counted in the tally the health families read,
 * logged (an Xid once per GPU and code per minute) and emitted as 'event'. Changes of the
 * watch's state are logged once.
 */
export class EventWatcher extends EventEmitter<{ event: [GpuEvent] }> {
  readonly tally = new EventTally();
  /** Registered on at least one GPU and waiting. */
  up = false;
  /** Times the watch failed and registered again. */
  restarts = 0;
  registered: RegisteredGpu[] = [];
  private lastError: string | undefined;
  private loggedGpus: string | undefined;
  private readonly lastLoggedXid = new Map<string, number>();

  constructor(private readonly logger: Logger) {
    super();
  }

  handle(msg: FromEventWorker): void {
    switch (msg.type) {
      case 'ready': {
        this.up = msg.registered.length > 0; // waiting on no GPU is not watching
        this.registered = msg.registered;
        const gpus = msg.registered.map((g) => g.index).join(',');
        if (gpus !== this.loggedGpus || this.lastError !== undefined) {
          this.logger.info({ gpus: msg.registered.map((g) => g.index), skipped: msg.skipped }, 'watching NVML events (Xid, ECC, GPU unavailable)');
          this.loggedGpus = gpus;
        }
        this.lastError = undefined;
        break;
      }
      case 'event':
        this.tally.record(msg.event);
        this.logEvent(msg.event);
        this.emit('event', msg.event);
        break;
      case 'failed':
        this.up = false;
        this.restarts++;
        if (msg.error !== this.lastError) this.logger.warn({ err: msg.error }, 'NVML event watch failed; registering again after a backoff');
        this.lastError = msg.error;
        break;
      case 'stopped':
        this.up = false;
        break;
    }
  }

  private logEvent(e: GpuEvent): void {
    if (e.eventType !== Number(EventType.XID_CRITICAL)) {
      this.logger.warn({ uuid: e.uuid, eventType: e.eventType }, 'GPU health event');
      return;
    }
    const key = `${e.uuid}/${e.data}`;
    const last = this.lastLoggedXid.get(key);
    if (last !== undefined && e.atMs - last < XID_LOG_WINDOW_MS) return;
    this.lastLoggedXid.set(key, e.atMs);
    this.logger.warn(
      { uuid: e.uuid, xid: e.data, description: xidMessage(e.data), gpuInstanceId: e.gpuInstanceId, computeInstanceId: e.computeInstanceId, total: this.tally.xidTotal(e.uuid) },
      'Xid error',
    );
  }
}
