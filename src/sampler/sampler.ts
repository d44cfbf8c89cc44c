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

/** A tick is taken for stalled when no sample came for this many intervals. */
const STALL_AFTER_INTERVALS = 2;

/**
 * Main-thread side of sampling: starts the worker, which samples on its own timer, keeps the last
 * complete sample, never waits on NVML. Emits 'sample' for every complete tick. A watchdog that
 * each sample pushes back (no wake-up while samples come) notices a tick that hangs: it logs the
 * stall once and counts the ticks that pass meanwhile.
 */
export class Sampler extends EventEmitter {
  state: SamplerState = 'starting';
  latest: NodeSample | undefined;
  /** Last reason NVML could not be used (for /readyz and logs). */
  unavailableReason: string | undefined;
  private worker: Worker | undefined;
  private watchdog: NodeJS.Timeout | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  /** Skipped ticks of workers that have exited; the current worker's, as its last message said. */
  private skippedBefore = 0;
  private skippedByWorker = 0;
  private skippedShown = 0;
  /** performance.now() of the last sample (or tick error), or of the start. */
  private lastTickAtMs = 0;
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
      ...(this.opts.eventWaitMs !== undefined ? { eventWaitMs: this.opts.eventWaitMs } : {}),
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
      this.skippedBefore += this.skippedByWorker;
      this.skippedByWorker = 0;
      clearTimeout(this.watchdog);
      this.watchdog = undefined;
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
          this.lastTickAtMs = performance.now();
          this.post({ type: 'start', intervalMs: this.opts.intervalMs });
          this.armWatchdog();
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
        this.tickDone(msg.skippedTicks);
        this.busy.apply(msg.sample);
        this.stateLog.observe(msg.sample);
        this.latest = msg.sample;
        this.emit('sample', msg.sample);
        break;
      case 'tick-error':
        this.tickDone(msg.skippedTicks);
        this.stateLog.tickFailed(msg.error);
        break;
      case 'events':
        this.emit('events', msg.msg);
        break;
      case 'shutdown-done':
        break;
    }
  }

  /** Ticks skipped because the previous one was still running (a slow or hung NVML call), counted while it runs. */
  get skippedTicks(): number {
    // the worker's own count of a stall, when it ends, can come out a turn below the live one: a counter never goes back
    this.skippedShown = Math.max(this.skippedShown, this.skippedBefore + this.skippedByWorker + this.passedDuringStall());
    return this.skippedShown;
  }

  /** Interval turns that passed since the last tick ended beyond the one in progress: 0 unless stalled. */
  private passedDuringStall(): number {
    if (!this.worker || this.state !== 'ready') return 0;
    const late = Math.floor((performance.now() - this.lastTickAtMs) / this.opts.intervalMs) - 1;
    return late >= STALL_AFTER_INTERVALS - 1 ? late : 0;
  }

  private tickDone(skippedByWorker: number): void {
    this.lastTickAtMs = performance.now();
    this.skippedByWorker = skippedByWorker;
    this.watchdog?.refresh();
  }

  /** Fires only when samples stop coming: logs the stall (once per stall) and keeps watching. */
  private armWatchdog(): void {
    clearTimeout(this.watchdog);
    const check = (): void => {
      const silentMs = performance.now() - this.lastTickAtMs;
      if (silentMs >= STALL_AFTER_INTERVALS * this.opts.intervalMs) this.stateLog.stalled(Math.round(silentMs));
      this.watchdog = setTimeout(check, STALL_AFTER_INTERVALS * this.opts.intervalMs);
      this.watchdog.unref();
    };
    this.watchdog = setTimeout(check, STALL_AFTER_INTERVALS * this.opts.intervalMs);
    this.watchdog.unref();
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
    clearTimeout(this.watchdog);
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
