import type { NodeSample } from '../sample.js';

interface BusyState {
  gpuBusySeconds: number;
  memCopyBusySeconds: number;
  atMs: number;
}

/**
 * Integrates utilization over time into busy-seconds counters: at every sample,
 * busy += utilization x elapsed. rate() over any window then gives the exact average
 * utilization for that window, whatever the scrape interval. MIG instances (which have no
 * utilization) count GPM's graphics engine activity over the span its average covers.
 * Devices that leave drop their state.
 */
export class BusyTimeIntegrator {
  private readonly state = new Map<string, BusyState>();

  reset(): void {
    this.state.clear();
  }

  /** Adds gpuBusySeconds / memCopyBusySeconds to each GPU sample that reports utilization, gpuBusySeconds to each MIG instance with GPM values. */
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
    for (const mig of sample.gpus.flatMap((g) => g.mig)) {
      const active = mig.values.grEngineActivePercent;
      if (active === undefined) continue;
      seen.add(mig.uuid);
      let s = this.state.get(mig.uuid);
      if (!s) {
        s = { gpuBusySeconds: 0, memCopyBusySeconds: 0, atMs: sample.monotonicMs };
        this.state.set(mig.uuid, s);
      } else if (mig.gpmSpanMs !== undefined) {
        // the average covers exactly the span between its two GPM samples (absent: values carried over, already counted)
        s.gpuBusySeconds += (active / 100) * (mig.gpmSpanMs / 1000);
      }
      mig.values.gpuBusySeconds = s.gpuBusySeconds;
    }
    for (const uuid of this.state.keys()) if (!seen.has(uuid)) this.state.delete(uuid);
  }
}
