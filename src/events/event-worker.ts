import { setImmediate as nextTurn } from 'node:timers/promises';
import { parentPort, workerData } from 'node:worker_threads';
import { EventType } from '../native/nvml-constants.js';
import { NvmlBinding, type EventSet } from '../native/nvml-binding.js';
import type { EventWorkerInit, FromEventWorker, RegisteredGpu, ToEventWorker } from './protocol.js';

/**
 * The thread that waits on NVML events. A wait blocks this thread for up to `waitMs`; the
 * sampling worker and the event loop never wait on it. Between waits it looks for a stop
 * request, so shutdown takes at most one wait.
 */
const WANTED = EventType.XID_CRITICAL | EventType.SINGLE_BIT_ECC | EventType.DOUBLE_BIT_ECC | EventType.GPU_UNAVAILABLE;

const init = workerData as EventWorkerInit;
const port = parentPort!;
let stopping = false;
port.on('message', (msg: ToEventWorker) => {
  if (msg.type === 'stop') stopping = true;
});

function send(msg: FromEventWorker): void {
  port.postMessage(msg);
}

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

async function watch(): Promise<void> {
  const nvml = new NvmlBinding({ libraryPath: init.libraryPath, driverRoot: init.driverRoot });
  nvml.init();
  let set: EventSet | undefined;
  try {
    set = nvml.createEventSet();
    const registered: RegisteredGpu[] = [];
    const skipped: { index: number; error: string }[] = [];
    const count = nvml.deviceCount();
    for (let index = 0; index < count; index++) {
      try {
        const device = nvml.deviceByIndex(index);
        const types = nvml.supportedEventTypes(device) & WANTED;
        if (types === 0n) continue;
        nvml.registerEvents(device, types, set);
        registered.push({ index, uuid: nvml.uuid(device), types: Number(types) });
      } catch (err) {
        skipped.push({ index, error: message(err) }); // one GPU that cannot register does not stop the others
      }
    }
    send({ type: 'ready', registered, skipped });
    while (!stopping) {
      const ev = registered.length ? nvml.waitForEvent(set, init.waitMs) : undefined;
      if (ev) {
        let uuid = '';
        try {
          uuid = nvml.uuid(ev.device);
        } catch {
          /* a GPU that fell off the bus may not answer: the event is still counted */
        }
        send({
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
      } else if (!registered.length) {
        await new Promise((r) => setTimeout(r, init.waitMs));
      }
      await nextTurn(); // let a stop request in
    }
  } finally {
    if (set !== undefined) {
      try {
        nvml.freeEventSet(set);
      } catch {
        /* shutting down anyway */
      }
    }
    nvml.shutdown();
  }
}

watch().then(
  () => send({ type: 'stopped' }),
  (err: unknown) => send({ type: 'failed', error: message(err) }),
).finally(() => port.close());
