import type { NodeSample } from '../sample.js';

interface BusyState {
  gpuBusySeconds: number;
  memCopyBusySeconds: number;
  atMs: number;
}

/**
 * Integrates utilization over time into busy-seconds counters: at every sample,
 * busy += utilization x elapsed. rate() over any window then gives the exact average
 * utilization for that window, whatever the scrape interval. GPUs that leave drop their state.
 */
export class BusyTimeIntegrator {
  private readonly state = new Map<string, BusyState>();

  reset(): void {
    this.state.clear();
  }

  /** Adds gpuBusySeconds / memCopyBusySeconds to each GPU sample that reports utilization. */
  apply(sample: NodeSample): void {
    const seen = new Set<string>();
    for (const gpu of sample.gpus) {
      const util = gpu.values.gpuUtilPercent;
      const copy = gpu.values.memCopyUtilPercent;
      if (util === undefined && copy === undefined) continue;
      seen.add(gpu.uuid);
      let s = this.state.get(gpu.uuid);
      if (!s) {
        s = { gpuBusySeconds: 0, memCopyBusySeconds: 0, atMs: sample.monotonicMs };
        this.state.set(gpu.uuid, s);
      } else {
        const elapsedSeconds = Math.max(0, sample.monotonicMs - s.atMs) / 1000;
        if (util !== undefined) s.gpuBusySeconds += (util / 100) * elapsedSeconds;
        if (copy !== undefined) s.memCopyBusySeconds += (copy / 100) * elapsedSeconds;
        s.atMs = sample.monotonicMs;
      }
      if (util !== undefined) gpu.values.gpuBusySeconds = s.gpuBusySeconds;
      if (copy !== undefined) gpu.values.memCopyBusySeconds = s.memCopyBusySeconds;
    }
    for (const uuid of this.state.keys()) if (!seen.has(uuid)) this.state.delete(uuid);
  }
}
