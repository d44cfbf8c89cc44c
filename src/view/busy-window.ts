import type { NodeSample } from '../sample.js';

/** One reading of a device's busy-seconds counter: the sample's monotonic time and the counter. */
interface Reading {
  atMs: number;
  busySeconds: number;
}

/** Average utilization over the readings kept: a ratio (0-1) and the seconds it covers. */
export interface WindowedUtilization {
  ratio: number;
  windowSeconds: number;
}

/**
 * Utilization over a sliding window from the busy-seconds counters (`gpu_busy_seconds_total`,
 * the value the GPU and MIG families export), as `rate(gpu_busy_seconds_total[1m])` computes it:
 * (newest - oldest reading) / the time between them. A reading is kept per device for each
 * rendered sample, for `windowMs`. A counter that goes back (the sampling worker restarted and the
 * counters with it) or a sample clock that goes back (a new worker's clock) starts the device's
 * readings afresh; a device that leaves the sample drops its readings.
 */
export class BusyWindow {
  private readonly readings = new Map<string, Reading[]>();

  constructor(readonly windowMs = 60_000) {}

  /** Records the busy seconds of every GPU and MIG instance of a sample that has them. */
  record(sample: NodeSample): void {
    const seen = new Set<string>();
    const add = (uuid: string, busySeconds: number | undefined): void => {
      if (busySeconds === undefined || !Number.isFinite(busySeconds)) return;
      seen.add(uuid);
      let list = this.readings.get(uuid);
      const last = list?.at(-1);
      if (!list || !last || sample.monotonicMs < last.atMs || busySeconds < last.busySeconds) {
        this.readings.set(uuid, (list = []));
      } else if (sample.monotonicMs === last.atMs) {
        return; // the same sample again
      }
      list.push({ atMs: sample.monotonicMs, busySeconds });
      const from = sample.monotonicMs - this.windowMs;
      let drop = 0;
      while (drop < list.length - 1 && list[drop]!.atMs < from) drop++;
      if (drop) list.splice(0, drop);
    };
    for (const gpu of sample.gpus) {
      add(gpu.uuid, gpu.values.gpuBusySeconds);
      for (const mig of gpu.mig) add(mig.uuid, mig.values.gpuBusySeconds);
    }
    for (const uuid of this.readings.keys()) if (!seen.has(uuid)) this.readings.delete(uuid);
  }

  /** The device's utilization over its readings; undefined until it has two. */
  utilization(uuid: string): WindowedUtilization | undefined {
    const list = this.readings.get(uuid);
    if (!list || list.length < 2) return undefined;
    const first = list[0]!;
    const last = list.at(-1)!;
    const seconds = (last.atMs - first.atMs) / 1000;
    if (seconds <= 0) return undefined;
    const ratio = Math.min(1, Math.max(0, (last.busySeconds - first.busySeconds) / seconds));
    return { ratio: Number(ratio.toFixed(4)), windowSeconds: Number(seconds.toFixed(3)) };
  }
}
