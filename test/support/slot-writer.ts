import { parentPort, workerData } from 'node:worker_threads';
import type { NodeSample } from '../../src/sample.js';
import { SampleSlotWriter } from '../../src/sampler/sample-slot.js';

/**
 * A thread that publishes samples through the real SampleSlotWriter as fast as it can until the
 * flag it was given is set: every GPU of sample n has temperature n, so a torn read shows.
 */
const stop = workerData as Int32Array;
const writer = new SampleSlotWriter();
parentPort!.postMessage(writer.shared);
const gpus = (n: number) =>
  Array.from({ length: 8 }, (_, index) => ({ index, uuid: `GPU-${index}`, name: 'NVIDIA H100 80GB HBM3', pciBusId: `0000:0${index}:00.0`, minor: index, values: { gpuTempCelsius: n }, mig: [], processes: [] }));
for (let n = 1; Atomics.load(stop, 0) === 0; n++) {
  const sample: NodeSample = { takenAtMs: n, monotonicMs: n, driverVersion: 'x', gpus: gpus(n), lostGpus: [], collectors: [], tickSeconds: 0 };
  writer.publish(sample);
}
