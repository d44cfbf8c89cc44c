import { parentPort, workerData } from 'node:worker_threads';
import { enabledCollectors } from '../collectors/index.js';
import { NvmlBinding } from '../native/nvml-binding.js';
import { NvmlError } from '../native/nvml-return.js';
import type { FromWorker, ToWorker, WorkerInit } from './protocol.js';
import { Ticker } from './tick.js';
import { EventPoller } from '../events/event-poller.js';

/**
 * The only thread that calls NVML. Blocking or hanging calls stall this thread alone;
 * the HTTP server on the main thread keeps answering from the last complete sample.
 */
const init = workerData as WorkerInit;
const port = parentPort!;
let nvml: NvmlBinding | undefined;
let ticker: Ticker | undefined;
let events: EventPoller | undefined;
/** Events taken per tick at most: a storm is read over several ticks instead of stalling one. */
const EVENTS_PER_POLL = 256;

function send(msg: FromWorker): void {
  port.postMessage(msg);
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
    send({ type: 'init-result', ok: true, libraryPath: binding.libraryPath, driverVersion });
    if (init.events) events = new EventPoller(binding, { minBackoffMs: 1000, maxBackoffMs: 60_000, maxPerPoll: EVENTS_PER_POLL }, (msg) => send({ type: 'events', msg }));
  } catch (err) {
    send({
      type: 'init-result',
      ok: false,
      error: err instanceof Error ? err.message : String(err),
      ...(err instanceof NvmlError ? { code: err.code } : {}),
    });
  }
}

port.on('message', (msg: ToWorker) => {
  switch (msg.type) {
    case 'init':
      if (!nvml) initialise();
      break;
    case 'tick':
      if (!ticker || !nvml) {
        send({ type: 'tick-error', id: msg.id, error: 'NVML is not initialised' });
        break;
      }
      // the events queued since the last tick first: their messages reach the main thread with this sample's
      events?.poll();
      try {
        const sample = ticker.tick();
        sample.missingSymbols = [...nvml.missingSymbols];
        send({ type: 'sample', id: msg.id, sample });
      } catch (err) {
        send({ type: 'tick-error', id: msg.id, error: err instanceof Error ? err.message : String(err) });
      }
      break;
    case 'shutdown':
      // collectors free their NVML allocations (GPM samples) while NVML is still initialised
      ticker?.close();
      ticker = undefined;
      // the event set is freed while NVML is still initialised
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
