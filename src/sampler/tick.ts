import { performance } from 'node:perf_hooks';
import type { Collector, GpuTarget } from '../collectors/collector.js';
import { ValueReader } from '../collectors/collector.js';
import type { NvmlBinding } from '../native/nvml-binding.js';
import { NvmlError } from '../native/nvml-return.js';
import type { CollectorReport, GpuSample, LostGpu, NodeSample } from '../sample.js';

interface Identity {
  uuid: string;
  name: string;
  pciBusId: string;
  minor: number;
}

/** What the Ticker remembers per GPU index: its identity and the collectors' state bag. */
interface CachedGpu {
  id: Identity;
  state: Map<string, unknown>;
}

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/**
 * One sampling pass over every GPU and enabled collector. Runs on the worker thread;
 * every failure is contained: a failing collector or GPU only removes its own values.
 */
export class Ticker {
  private readonly identities = new Map<number, CachedGpu>();
  private driverVersion = '';

  constructor(
    private readonly nvml: NvmlBinding,
    private readonly collectors: readonly Collector[],
  ) {}

  tick(): NodeSample {
    const started = performance.now();
    const takenAtMs = Date.now();
    const lostGpus: LostGpu[] = [];
    const targets: GpuTarget[] = [];
    let enumerationError: string | undefined;

    if (!this.driverVersion) {
      try {
        this.driverVersion = this.nvml.driverVersion();
      } catch {
        this.driverVersion = '';
      }
    }

    try {
      const count = this.nvml.deviceCount();
      for (let index = 0; index < count; index++) {
        try {
          const device = this.nvml.deviceByIndex(index);
          const { id, state } = this.identity(index, device);
          const sample: GpuSample = { index, ...id, values: {}, mig: [], processes: [] };
          targets.push({ device, sample, migDevices: [], state });
        } catch (err) {
          lostGpus.push({ index, uuid: this.identities.get(index)?.id.uuid, error: message(err) });
        }
      }
      for (const cached of this.identities.keys()) if (cached >= count) this.identities.delete(cached);
    } catch (err) {
      enumerationError = message(err);
    }

    const lostIndexes = new Set<number>();
    const reports: CollectorReport[] = [];
    for (const collector of this.collectors) {
      const t0 = performance.now();
      let error: string | undefined;
      for (const target of targets) {
        if (lostIndexes.has(target.sample.index)) continue;
        const reader = new ValueReader(this.nvml);
        try {
          collector.collect(reader, target);
        } catch (err) {
          if (err instanceof NvmlError && err.gpuLost) {
            lostIndexes.add(target.sample.index);
            lostGpus.push({ index: target.sample.index, uuid: target.sample.uuid, error: err.message });
            continue;
          }
          reader.firstError ??= err instanceof Error ? err : new Error(String(err));
        }
        if (reader.firstError && !error) error = `GPU ${target.sample.index}: ${reader.firstError.message}`;
      }
      reports.push({
        name: collector.name,
        success: error === undefined,
        durationSeconds: (performance.now() - t0) / 1000,
        ...(error ? { error } : {}),
      });
    }

    return {
      takenAtMs,
      monotonicMs: started,
      driverVersion: this.driverVersion,
      gpus: targets.filter((t) => !lostIndexes.has(t.sample.index)).map((t) => t.sample),
      lostGpus,
      collectors: reports,
      ...(enumerationError ? { enumerationError } : {}),
      tickSeconds: (performance.now() - started) / 1000,
    };
  }

  /**
   * Identity is re-read only when the UUID at an index changes (GPU swapped or re-enumerated);
   * the collectors' state bag starts afresh with it and goes when the index does.
   */
  private identity(index: number, device: unknown): CachedGpu {
    const uuid = this.nvml.uuid(device);
    const cached = this.identities.get(index);
    if (cached && cached.id.uuid === uuid) return cached;
    const entry: CachedGpu = {
      id: {
        uuid,
        name: this.nvml.name(device),
        pciBusId: this.nvml.pciInfo(device).busId,
        minor: this.nvml.minorNumber(device),
      },
      state: new Map(),
    };
    this.identities.set(index, entry);
    return entry;
  }
}
