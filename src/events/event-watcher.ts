import { EventEmitter, once } from 'node:events';
import type { Worker } from 'node:worker_threads';
import type { Logger } from 'pino';
import { startModuleWorker } from '../worker-thread.js';
import type { EventWorkerInit, FromEventWorker, GpuEvent, RegisteredGpu } from './protocol.js';

export interface EventWatcherOptions extends EventWorkerInit {
  logger: Logger;
  /** First delay before restarting a failed worker; doubles up to `restartMaxMs`. */
  restartMinMs?: number;
  restartMaxMs?: number;
}

/**
 * Main-thread side of NVML events: runs the event worker, restarts it (with backoff) when
 * it fails, and emits 'event' for each GPU event. Failures are logged once per change.
 */
export class EventWatcher extends EventEmitter<{ event: [GpuEvent] }> {
  /** The worker is registered and waiting. */
  up = false;
  restarts = 0;
  registered: RegisteredGpu[] = [];
  private worker: Worker | undefined;
  private restartTimer: NodeJS.Timeout | undefined;
  private delayMs: number;
  private stopped = false;
  private lastError: string | undefined;

  constructor(private readonly opts: EventWatcherOptions) {
    super();
    this.delayMs = opts.restartMinMs ?? 1000;
  }

  start(): void {
    this.stopped = false;
    this.spawn();
  }

  private spawn(): void {
    const init: EventWorkerInit = { libraryPath: this.opts.libraryPath, driverRoot: this.opts.driverRoot, waitMs: this.opts.waitMs };
    const worker = startModuleWorker(import.meta.url, 'event-worker', init);
    this.worker = worker;
    worker.on('message', (msg: FromEventWorker) => this.onMessage(msg));
    worker.on('error', (err) => this.failed(`event worker crashed: ${err.message}`));
    worker.on('exit', () => {
      if (this.worker !== worker) return;
      this.worker = undefined;
      this.up = false;
      if (!this.stopped) this.scheduleRestart();
    });
  }

  private onMessage(msg: FromEventWorker): void {
    switch (msg.type) {
      case 'ready':
        this.up = msg.registered.length > 0; // waiting on no GPU is not watching
        this.registered = msg.registered;
        this.delayMs = this.opts.restartMinMs ?? 1000;
        if (this.lastError !== undefined || this.restarts === 0) {
          this.opts.logger.info({ gpus: msg.registered.map((g) => g.index), skipped: msg.skipped }, 'watching NVML events (Xid, ECC, GPU unavailable)');
        }
        this.lastError = undefined;
        break;
      case 'event':
        this.emit('event', msg.event);
        break;
      case 'failed':
        this.failed(msg.error);
        break;
      case 'stopped':
        break;
    }
  }

  private failed(error: string): void {
    this.up = false;
    if (error !== this.lastError) this.opts.logger.warn({ err: error, retryInMs: this.delayMs }, 'NVML event watch failed; restarting it');
    this.lastError = error;
  }

  private scheduleRestart(): void {
    const delay = this.delayMs;
    this.delayMs = Math.min(this.delayMs * 2, this.opts.restartMaxMs ?? 60_000);
    this.restartTimer = setTimeout(() => {
      this.restartTimer = undefined;
      if (this.stopped) return;
      this.restarts++;
      this.spawn();
    }, delay);
    this.restartTimer.unref();
  }

  /** Asks the worker to stop after its current wait; terminates it if it does not. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.restartTimer);
    const worker = this.worker;
    if (!worker) return;
    const exited = once(worker, 'exit');
    worker.postMessage({ type: 'stop' });
    const timer = setTimeout(() => void worker.terminate(), this.opts.waitMs + 2000);
    await exited;
    clearTimeout(timer);
    this.up = false;
  }
}
