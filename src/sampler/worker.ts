import { parentPort, workerData } from 'node:worker_threads';
import { enabledCollectors } from '../collectors/index.js';
import { EventPoller } from '../events/event-poller.js';
import { NvmlBinding } from '../native/nvml-binding.js';
import { NvmlError } from '../native/nvml-return.js';
import { BusyTimeIntegrator } from './busy-time.js';
import { notableKey } from './notable.js';
import type { FromWorker, FromWorkerSamples, ToWorker, WorkerInit } from './protocol.js';
import { SampleSlotWriter, SamplerControl, sharedNowMs } from './sample-slot.js';
import { Ticker } from './tick.js';

/**
 * The only thread that calls NVML, on its own interval. Blocking or hanging calls stall this
 * thread alone; the HTTP server on the main thread keeps answering from the last complete sample.
 * Each sample is left in shared memory (sample-slot.ts) and sent as a message (on the samples port)
 * only when the main thread's observers need to see it (notable.ts) or it asked for every sample.
 */
const init = workerData as WorkerInit;
const port = parentPort!;
const control = new SamplerControl(init.control);
const busy = new BusyTimeIntegrator();
/** Events taken per tick at most: a storm is read over several ticks instead of stalling one. */
const EVENTS_PER_POLL = 256;
let nvml: NvmlBinding | undefined;
let ticker: Ticker | undefined;
let events: EventPoller | undefined;
let slot: SampleSlotWriter | undefined;
let timer: NodeJS.Timeout | undefined;
/** notableKey of the last sample; undefined after a failed or overlong tick, so the next one is sent. */
let lastKey: string | undefined;

function send(msg: FromWorker): void {
  port.postMessage(msg);
}

function sendSample(msg: FromWorkerSamples): void {
  init.samples.postMessage(msg);
}

function initialise(): void {
  try {
    const binding = new NvmlBinding({ libraryPath: init.libraryPath, driverRoot: init.driverRoot });
    binding.init();
    nvml = binding;
    ticker = new Ticker(binding, enabledCollectors(init.collectors), { slowIntervalMs: init.slowIntervalMs ?? 0 });
    let driverVersion = '';
    try {
      driverVersion = binding.driverVersion();
    } catch {
      /* reported through the sample */
    }
    if (init.events) events = new EventPoller(binding, { minBackoffMs: 1000, maxBackoffMs: 60_000, maxPerPoll: EVENTS_PER_POLL }, (msg) => send({ type: 'events', msg }));
    slot = new SampleSlotWriter();
    send({ type: 'init-result', ok: true, libraryPath: binding.libraryPath, driverVersion });
    tick();
    timer = setInterval(tick, init.intervalMs);
  } catch (err) {
    send({
      type: 'init-result',
      ok: false,
      error: err instanceof Error ? err.message : String(err),
      ...(err instanceof NvmlError ? { code: err.code } : {}),
    });
  }
}

/** One tick: the events queued since the last one, a sample, busy time integrated, the sample left for the main thread. */
function tick(): void {
  if (!ticker || !nvml || !slot) return;
  const started = sharedNowMs();
  control.tickStarted(started);
  /** Ticks the timer could not start while this one ran (a slow or hung NVML call). */
  const overlapped = (): number => Math.floor((sharedNowMs() - started) / init.intervalMs);
  try {
    events?.poll();
    const sample = ticker.tick();
    sample.missingSymbols = [...nvml.missingSymbols];
    busy.apply(sample);
    const key = notableKey(sample);
    // after an overlong tick the main thread's stall log hears that sampling goes on
    const overlong = overlapped() > 0;
    const notable = key !== lastKey || overlong;
    lastKey = overlong ? undefined : key;
    // the message first: a sample the main thread finds in the slot has its message queued already
    const prepared = slot.prepare(sample);
    if (notable || prepared.newSlot || control.notify) sendSample({ type: 'sample', seq: prepared.seq, sample, notable, ...(prepared.newSlot ? { slot: prepared.newSlot } : {}) });
    slot.commit(prepared);
  } catch (err) {
    lastKey = undefined;
    sendSample({ type: 'tick-error', error: err instanceof Error ? err.message : String(err) });
  } finally {
    control.tickEnded(overlapped());
  }
}

port.on('message', (msg: ToWorker) => {
  switch (msg.type) {
    case 'init':
      if (!nvml) initialise();
      break;
    case 'shutdown':
      clearInterval(timer);
      timer = undefined;
      // collectors free their NVML allocations (GPM samples) and the event set is freed while NVML is still initialised
      ticker?.close();
      ticker = undefined;
      events?.stop();
      events = undefined;
      try {
        nvml?.shutdown();
      } catch {
        /* shutting down anyway */
      }
      nvml = undefined;
      send({ type: 'shutdown-done' });
      break;
  }
});
