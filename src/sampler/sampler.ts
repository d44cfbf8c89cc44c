import { EventEmitter } from 'node:events';
import { MessageChannel, receiveMessageOnPort, type MessagePort, type Worker } from 'node:worker_threads';
import type { Logger } from 'pino';
import type { NodeSample } from '../sample.js';
import type { FromWorker, FromWorkerSamples, ToWorker, WorkerInit } from './protocol.js';
import { newerSeq, SampleSlotReader, SamplerControl, sharedNowMs } from './sample-slot.js';
import { StateChangeLog } from './state-log.js';
import { startModuleWorker } from '../worker-thread.js';

export interface SamplerOptions extends Omit<WorkerInit, 'control' | 'samples'> {
  /** How often to retry loading/initialising NVML while it is unavailable. */
  initRetryMs: number;
  logger: Logger;
}

export type SamplerState = 'starting' | 'nvml-unavailable' | 'ready' | 'stopped';

/** How often the main thread looks for a tick that has run too long, when nothing reads a sample meanwhile. */
const STALL_CHECK_MS = 5000;

/**
 * Main-thread side of sampling: starts the worker (which ticks on its own interval), reads the
 * newest complete sample from shared memory when asked (latest), never waits on NVML. Between
 * reads it does not run at all, except for samples whose collector errors or GPUs changed
 * ('notable', seen by the state-change log as they come) and a stall check every few seconds.
 * Emits 'sample' for every tick while something listens for it (tests, the demo).
 */
export class Sampler extends EventEmitter {
  state: SamplerState = 'starting';
  /** Last reason NVML could not be used (for /readyz and logs). */
  unavailableReason: string | undefined;

  private newest: NodeSample | undefined;
  private newestSeq = 0;
  private slot: SampleSlotReader | undefined;
  private readonly control = new SamplerControl();
  private worker: Worker | undefined;
  /** The main thread's end of the worker's samples port. */
  private samples: MessagePort | undefined;
  private stallTimer: NodeJS.Timeout | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private readonly stateLog: StateChangeLog;
  private readonly log: Logger;

  constructor(private readonly opts: SamplerOptions) {
    super();
    this.log = opts.logger;
    this.stateLog = new StateChangeLog(opts.logger);
    // a message per sample only while someone listens for each one
    this.on('newListener', (event: string) => {
      if (event === 'sample') this.control.notify = true;
    });
    this.on('removeListener', (event: string) => {
      if (event === 'sample' && this.listenerCount('sample') === 0) this.control.notify = false;
    });
  }

  /** The newest complete sample (read from the worker's slot when a newer one is there). */
  get latest(): NodeSample | undefined {
    this.readSlot();
    return this.newest;
  }

  /** Ticks skipped because the previous one was still running (a slow or hung NVML call), the running one's included. */
  get skippedTicks(): number {
    const { inFlightSinceMs, skipped } = this.control.snapshot();
    return skipped + (inFlightSinceMs === undefined ? 0 : Math.max(0, Math.floor((sharedNowMs() - inFlightSinceMs) / this.opts.intervalMs)));
  }

  start(): void {
    this.spawn();
  }

  private spawn(): void {
    const channel = new MessageChannel();
    const init: WorkerInit = {
      libraryPath: this.opts.libraryPath,
      driverRoot: this.opts.driverRoot,
      collectors: this.opts.collectors,
      intervalMs: this.opts.intervalMs,
      // at or below the sample interval, slow collectors simply run every tick
      slowIntervalMs: (this.opts.slowIntervalMs ?? 0) > this.opts.intervalMs ? this.opts.slowIntervalMs : 0,
      ...(this.opts.events ? { events: true } : {}),
      control: this.control.shared,
      samples: channel.port2,
    };
    const worker = startModuleWorker(import.meta.url, 'worker', init, [channel.port2]);
    this.worker = worker;
    this.samples = channel.port1;
    channel.port1.on('message', (msg: FromWorkerSamples) => this.onSampleMessage(msg));
    channel.port1.unref();
    worker.on('message', (msg: FromWorker) => this.onMessage(msg));
    worker.on('error', (err) => {
      this.log.error({ err: err.message }, 'sampling worker crashed; restarting it');
    });
    worker.on('exit', (code) => {
      if (this.worker !== worker) return;
      this.worker = undefined;
      // a new worker counts its samples from the start, in a slot of its own
      this.drainSamples();
      this.samples?.close();
      this.samples = undefined;
      this.slot = undefined;
      this.newestSeq = 0;
      this.control.tickEnded(0);
      clearInterval(this.stallTimer);
      this.stallTimer = undefined;
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
          this.stallTimer = setInterval(() => this.checkStall(), Math.max(STALL_CHECK_MS, this.opts.intervalMs));
          this.stallTimer.unref?.();
        } else {
          this.state = 'nvml-unavailable';
          if (this.unavailableReason !== msg.error) {
            this.log.error({ err: msg.error, retryInMs: this.opts.initRetryMs }, 'NVML unavailable; retrying in the background');
          }
          this.unavailableReason = msg.error;
          this.retryTimer = setTimeout(() => this.post({ type: 'init' }), this.opts.initRetryMs);
        }
        break;
      case 'events':
        this.emit('events', msg.msg);
        break;
      case 'shutdown-done':
        break;
    }
  }

  private onSampleMessage(msg: FromWorkerSamples): void {
    if (msg.type === 'tick-error') {
      this.stateLog.tickFailed(msg.error);
      return;
    }
    if (msg.slot) this.slot = new SampleSlotReader(msg.slot);
    if (msg.notable) {
      this.stateLog.observe(msg.sample);
      this.emit('notable', msg.sample);
    }
    if (newerSeq(msg.seq, this.newestSeq)) this.take(msg.seq, msg.sample);
  }

  /** Handles the sample messages queued now, in order, without waiting for the event loop to. */
  private drainSamples(): void {
    const port = this.samples;
    if (!port) return;
    for (let m = receiveMessageOnPort(port); m; m = receiveMessageOnPort(port)) this.onSampleMessage(m.message as FromWorkerSamples);
  }

  /**
   * The newest sample into `newest`: the queued sample messages first (a notable sample is seen by
   * its observers before anything renders it, and a new slot is taken up), then the slot.
   */
  private readSlot(): void {
    this.drainSamples();
    const read = this.slot?.readNewerThan(this.newestSeq);
    if (read) this.take(read.seq, read.sample);
    this.checkStall();
  }

  private take(seq: number, sample: NodeSample): void {
    this.newestSeq = seq;
    this.newest = sample;
    if (this.listenerCount('sample') > 0) this.emit('sample', sample);
  }

  /** Logs (once per stall) a tick that has run longer than the sample interval. */
  private checkStall(): void {
    const since = this.control.snapshot().inFlightSinceMs;
    if (since === undefined) return;
    const forMs = sharedNowMs() - since;
    if (forMs > this.opts.intervalMs) this.stateLog.stalled(Math.round(forMs));
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
    clearInterval(this.stallTimer);
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
    this.samples?.close();
    this.samples = undefined;
  }
}
