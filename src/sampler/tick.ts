import { performance } from 'node:perf_hooks';
import type { Collector, GpuTarget } from '../collectors/collector.js';
import { ValueReader } from '../collectors/collector.js';
import type { NvmlBinding } from '../native/nvml-binding.js';
import { NvmlError } from '../native/nvml-return.js';
import type { CollectorReport, GpuSample, LostGpu, NodeSample, Values } from '../sample.js';

interface Identity {
  uuid: string;
  name: string;
  pciBusId: string;
  minor: number;
}

/** The last run of a slow collector on one GPU: what it wrote, carried into samples until the next run. */
interface SlowReading {
  atMs: number;
  values: Values;
  error?: string;
}

/** What the Ticker remembers per GPU index: its identity, the collectors' state bag, slow readings. */
interface CachedGpu {
  id: Identity;
  state: Map<string, unknown>;
  /** By collector name. */
  slow: Map<string, SlowReading>;
  /** When the values the hardware fixes were last read (the tick's slow clock); undefined: not yet. */
  fixedReadAtMs?: number;
}

export interface TickerOptions {
  /**
   * How often collectors marked `slow` run on a GPU, ms; in between, the values (and error) of
   * their last run are carried over. 0 (the default): every tick.
   */
  slowIntervalMs?: number;
  /** Monotonic clock in ms (tests); default performance.now. */
  now?: () => number;
}

/** Ticks start on a timer with some jitter: a slow reading this much early still counts as due. */
const SLOW_SLACK_MS = 50;

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
  /** A slow collector's reading older than this is re-read (0: slow collectors run every tick). */
  private readonly slowDueAfterMs: number;
  private readonly now: () => number;

  constructor(
    private readonly nvml: NvmlBinding,
    private readonly collectors: readonly Collector[],
    opts: TickerOptions = {},
  ) {
    const slowMs = Math.max(0, opts.slowIntervalMs ?? 0);
    this.slowDueAfterMs = slowMs - Math.min(SLOW_SLACK_MS, slowMs / 2);
    this.now = opts.now ?? (() => performance.now());
  }

  tick(): NodeSample {
    const started = performance.now();
    const slowNow = this.now();
    const takenAtMs = Date.now();
    const lostGpus: LostGpu[] = [];
    const targets: GpuTarget[] = [];
    /** The GPUs whose fixed values this tick reads: their reading time moves once the collectors ran. */
    const fixedRead: CachedGpu[] = [];
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
          const cached = this.identity(index, device);
          const sample: GpuSample = { index, ...cached.id, values: {}, mig: [], processes: [] };
          const readFixed = this.fixedDue(cached, slowNow);
          if (readFixed) fixedRead.push(cached);
          targets.push({ device, sample, migDevices: [], state: cached.state, readFixed });
        } catch (err) {
          lostGpus.push({ index, uuid: this.identities.get(index)?.id.uuid, error: message(err) });
        }
      }
      for (const [cached, entry] of this.identities) {
        if (cached < count) continue;
        this.release(entry);
        this.identities.delete(cached);
      }
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
        const slow = collector.slow && this.slowDueAfterMs > 0 ? this.identities.get(target.sample.index)?.slow : undefined;
        const last = slow?.get(collector.name);
        if (last && slowNow - last.atMs < this.slowDueAfterMs) {
          Object.assign(target.sample.values, last.values);
          if (last.error && !error) error = `GPU ${target.sample.index}: ${last.error}`;
          continue;
        }
        const before = slow ? new Set(Object.keys(target.sample.values)) : undefined;
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
        if (slow && before) {
          const written = Object.entries(target.sample.values).filter(([k]) => !before.has(k));
          slow.set(collector.name, { atMs: slowNow, values: Object.fromEntries(written) as Values, ...(reader.firstError ? { error: reader.firstError.message } : {}) });
        }
      }
      reports.push({
        name: collector.name,
        success: error === undefined,
        durationSeconds: (performance.now() - t0) / 1000,
        ...(error ? { error } : {}),
      });
    }

    for (const cached of fixedRead) cached.fixedReadAtMs = slowNow;

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

  /** Whether a GPU's fixed values are read this tick: the first time, then once per slow interval (every tick without one). */
  private fixedDue(cached: CachedGpu, slowNow: number): boolean {
    return this.slowDueAfterMs <= 0 || cached.fixedReadAtMs === undefined || slowNow - cached.fixedReadAtMs >= this.slowDueAfterMs;
  }

  /** Frees what the collectors hold for every GPU (GPM samples); call before nvmlShutdown. */
  close(): void {
    for (const entry of this.identities.values()) this.release(entry);
    this.identities.clear();
  }

  /** Lets each collector free what it keeps in a GPU's state bag; a failure there frees what it can. */
  private release(entry: CachedGpu): void {
    for (const collector of this.collectors) {
      try {
        collector.release?.(this.nvml, entry.state);
      } catch {
        /* the GPU is gone or NVML is going away: nothing more to free */
      }
    }
    entry.state.clear();
  }

  /**
   * Identity is re-read only when the UUID at an index changes (GPU swapped or re-enumerated);
   * the collectors' state bag and slow readings start afresh with it and go when the index does.
   */
  private identity(index: number, device: unknown): CachedGpu {
    const uuid = this.nvml.uuid(device);
    const cached = this.identities.get(index);
    if (cached && cached.id.uuid === uuid) return cached;
    if (cached) this.release(cached);
    const entry: CachedGpu = {
      id: {
        uuid,
        name: this.nvml.name(device),
        pciBusId: this.nvml.pciInfo(device).busId,
        minor: this.nvml.minorNumber(device),
      },
      state: new Map(),
      slow: new Map(),
    };
    this.identities.set(index, entry);
    return entry;
  }
}
