import { EventEmitter } from 'node:events';
import type { Logger } from 'pino';
import type { FromEventWorker, GpuEvent, RegisteredGpu } from './protocol.js';

/**
 * Main-thread side of NVML events. The waits run on the sampling thread (src/events/event-loop.ts);
 * this follows its messages: whether it is watching, which GPUs, how often it had to register
 * again after a failure, and emits 'event' for each GPU event. Changes are logged once.
 */
export class EventWatcher extends EventEmitter<{ event: [GpuEvent] }> {
  /** Registered on at least one GPU and waiting. */
  up = false;
  /** Times the watch failed and registered again. */
  restarts = 0;
  registered: RegisteredGpu[] = [];
  private lastError: string | undefined;
  private loggedGpus: string | undefined;

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
}
