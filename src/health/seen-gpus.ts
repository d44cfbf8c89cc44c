import type { Logger } from 'pino';
import type { GpuIdentity, NodeSample } from '../sample.js';

/** A GPU seen since start, and whether it answered in the last sample. */
export interface SeenGpu {
  gpu: GpuIdentity;
  answering: boolean;
}

/**
 * Every GPU seen since the exporter started. A GPU that stops answering (GPU_IS_LOST) or
 * drops out of NVML's list stays known, so its absence can be exported and alerted on
 * ("GPU missing" is not "exporter down"); the sampler keeps trying to re-acquire it.
 */
export class SeenGpus {
  private readonly seen = new Map<string, GpuIdentity>();
  private missingNow = new Set<string>();

  constructor(private readonly log: Logger) {}

  observe(sample: NodeSample): void {
    const present = new Set<string>();
    for (const g of sample.gpus) {
      present.add(g.uuid);
      this.seen.set(g.uuid, { index: g.index, uuid: g.uuid, name: g.name, pciBusId: g.pciBusId, minor: g.minor });
    }
    const missing = new Set<string>();
    for (const [uuid, id] of this.seen) {
      if (present.has(uuid)) continue;
      missing.add(uuid);
      if (!this.missingNow.has(uuid)) {
        const lost = sample.lostGpus.find((l) => l.uuid === uuid);
        this.log.error({ gpu: id.index, uuid, pciBusId: id.pciBusId, err: lost?.error ?? 'no longer listed by NVML' }, 'GPU missing: seen earlier, not answering now; the other GPUs keep reporting');
      }
    }
    for (const uuid of this.missingNow) if (!missing.has(uuid)) this.log.info({ gpu: this.seen.get(uuid)?.index, uuid }, 'GPU answering again');
    this.missingNow = missing;
  }

  /** GPUs seen since start, each with whether it answered in the last sample. */
  all(): SeenGpu[] {
    return [...this.seen.values()].sort((a, b) => a.index - b.index).map((gpu) => ({ gpu, answering: !this.missingNow.has(gpu.uuid) }));
  }
}
