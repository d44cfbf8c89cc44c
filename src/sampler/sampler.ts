import { EventEmitter } from 'node:events';
import type { Worker } from 'node:worker_threads';
import type { Logger } from 'pino';
import type { NodeSample } from '../sample.js';
import { BusyTimeIntegrator } from './busy-time.js';
import type { FromWorker, ToWorker, WorkerInit } from './protocol.js';
import { StateChangeLog } from './state-log.js';
import { startModuleWorker } from '../worker-thread.js';

export interface SamplerOptions extends WorkerInit {
  intervalMs: number;
  /** How often to retry loading/initialising NVML while it is unavailable. */
  initRetryMs: number;
  logger: Logger;
}

export type SamplerState = 'starting' | 'nvml-unavailable' | 'ready' | 'stopped';

/**
 * Main-thread side of sampling: drives the worker on its interval, keeps the last complete
 * sample, never waits on NVML. Emits 'sample' for every complete tick.
 */
export class Sampler extends EventEmitter {
  state: SamplerState = 'starting';
  latest: NodeSample | undefined;
  /** Last reason NVML could not be used (for /readyz and logs). */
  unavailableReason: string | undefined;
  /** Ticks skipped because the previous one was still running (a slow or hung NVML call). */
  skippedTicks = 0;
  tickInFlightSince: number | undefined;

  private worker: Worker | undefined;
  private timer: NodeJS.Timeout | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private nextTickId = 1;
  private readonly busy = new BusyTimeIntegrator();
  private readonly stateLog: StateChangeLog;
  private readonly log: Logger;

  constructor(private readonly opts: SamplerOptions) {
    super();
    this.log = opts.logger;
    this.stateLog = new StateChangeLog(opts.logger);
  }

  start(): void {
    this.spawn();
  }

  private spawn(): void {
    const init: WorkerInit = {
      libraryPath: this.opts.libraryPath,
      driverRoot: this.opts.driverRoot,
      collectors: this.opts.collectors,
      // at or below the sample interval, slow collectors simply run every tick
      slowIntervalMs: (this.opts.slowIntervalMs ?? 0) > this.opts.intervalMs ? this.opts.slowIntervalMs : 0,
      ...(this.opts.events ? { events: true } : {}),
    };
    const worker = startModuleWorker(import.meta.url, 'worker', init);
    this.worker = worker;
    this.busy.reset();
    worker.on('message', (msg: FromWorker) => this.onMessage(msg));
    worker.on('error', (err) => {
      this.log.error({ err: err.message }, 'sampling worker crashed; restarting it');
    });
    worker.on('exit', (code) => {
      if (this.worker !== worker) return;
      this.worker = undefined;
      this.tickInFlightSince = undefined;
      clearInterval(this.timer);
      this.timer = undefined;
      this.emit('events', { type: 'stopped' });
      if (this.state === 'stopped') return;
      this.log.warn({ exitCode: code }, 'sampling worker exited; restarting it');
      this.retryTimer = setTimeout(() => this.spawn(), this.opts.initRetryMs);
    });
    this.post({ type: 'init' });
  }

  private post(msg: ToWorker): void {
    this.worker?.postMessage(msg);
  }

  private onMessage(msg: FromWorker): void {
    switch (msg.type) {
      case 'init-result':
        if (msg.ok) {
          this.unavailableReason = undefined;
          this.state = 'ready';
          this.log.info({ library: msg.libraryPath, driverVersion: msg.driverVersion }, 'NVML initialised');
          this.tick();
          this.timer = setInterval(() => this.tick(), this.opts.intervalMs);
          this.timer.unref?.();
        } else {
          this.state = 'nvml-unavailable';
          if (this.unavailableReason !== msg.error) {
            this.log.error({ err: msg.error, retryInMs: this.opts.initRetryMs }, 'NVML unavailable; retrying in the background');
          }
          this.unavailableReason = msg.error;
          this.retryTimer = setTimeout(() => this.post({ type: 'init' }), this.opts.initRetryMs);
        }
        break;
      case 'sample':
        this.tickInFlightSince = undefined;
        this.busy.apply(msg.sample);
        this.stateLog.observe(msg.sample);
        this.latest = msg.sample;
        this.emit('sample', msg.sample);
        break;
      case 'tick-error':
        this.tickInFlightSince = undefined;
        this.stateLog.tickFailed(msg.error);
        break;
      case 'events':
        this.emit('events', msg.msg);
        break;
      case 'shutdown-done':
        break;
    }
  }

  /** Starts a tick unless one is still running: at most one NVML call is ever outstanding. */
  tick(): void {
    if (this.tickInFlightSince !== undefined) {
      this.skippedTicks++;
      this.stateLog.stalled(Date.now() - this.tickInFlightSince);
      return;
    }
    this.tickInFlightSince = Date.now();
    this.post({ type: 'tick', id: this.nextTickId++ });
  }

  /** Resolves with the next complete sample (tests and the demo use it). */
  nextSample(timeoutMs = 10_000): Promise<NodeSample> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.off('sample', onSample);
        reject(new Error(`no sample within ${timeoutMs} ms`));
      }, timeoutMs);
      const onSample = (s: NodeSample): void => {
        clearTimeout(timer);
        resolve(s);
      };
      this.once('sample', onSample);
    });
  }

  async stop(graceMs = 2000): Promise<void> {
    this.state = 'stopped';
    clearInterval(this.timer);
    clearTimeout(this.retryTimer);
    const worker = this.worker;
    if (!worker) return;
    const done = new Promise<void>((resolve) => {
      const t = setTimeout(resolve, graceMs);
      worker.on('message', (m: FromWorker) => {
        if (m.type === 'shutdown-done') {
          clearTimeout(t);
          resolve();
        }
      });
    });
    this.post({ type: 'shutdown' });
    await done;
    this.worker = undefined;
    await worker.terminate();
  }
}
