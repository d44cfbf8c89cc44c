import type { Device, NvmlBinding } from '../native/nvml-binding.js';
import { NvmlError } from '../native/nvml-return.js';
import type { GpuSample, MigSample, ValueKey, Values } from '../sample.js';

/** A GPU as a collector sees it: its handle plus the sample it fills in. */
export interface GpuTarget {
  device: Device;
  sample: GpuSample;
  /** MIG handles of this GPU, filled in by the mig collector when it runs first. */
  migDevices: { device: Device; sample: MigSample }[];
  /**
   * Collector state kept across ticks for this GPU (the Ticker keeps one bag per GPU while its
   * UUID stays at its index; a new or swapped GPU starts empty). Key by collector name.
   */
  state: Map<string, unknown>;
  /**
   * Whether values the hardware fixes (value table reads marked `fixed`: maximum clocks, the
   * widest PCIe link) are read this tick: for a new GPU, then once per slow interval
   * (--health.interval). In between a collector carries its last reading from the state bag.
   */
  readFixed: boolean;
}

/**
 * Reads values for one GPU. A value the GPU does not support is simply absent; any other
 * error is remembered (the collector is marked failed) and the remaining values are still read.
 * GPU_IS_LOST aborts the GPU.
 */
export class ValueReader {
  firstError: NvmlError | Error | undefined;

  constructor(readonly nvml: NvmlBinding) {}

  read(values: Values, key: ValueKey, get: () => number): void {
    try {
      const v = get();
      if (Number.isFinite(v)) values[key] = v;
    } catch (err) {
      this.handle(err);
    }
  }

  /**
   * Records an error the caller caught, or one that came back without a throw (e.g. one entry
   * of a field-value read), treated the same way as one `read` catches.
   */
  report(err: unknown): void {
    this.handle(err);
  }

  /** Runs `fn`, treating errors the same way as `read`. */
  attempt(fn: () => void): void {
    try {
      fn();
    } catch (err) {
      this.handle(err);
    }
  }

  private handle(err: unknown): void {
    if (err instanceof NvmlError) {
      if (err.notSupported) return;
      if (err.gpuLost) throw err;
    }
    this.firstError ??= err instanceof Error ? err : new Error(String(err));
  }
}

export interface Collector {
  /** Flag name: --collector.<name> / --no-collector.<name>. */
  readonly name: string;
  readonly defaultEnabled: boolean;
  readonly description: string;
  /**
   * Slow-changing values (lifetime counts kept in the InfoROM): the Ticker runs the collector on a
   * GPU only once per slow interval (--health.interval) and in between carries the values it wrote
   * to `sample.values` (and its error, if any) over into each sample, so series do not flicker.
   * A slow collector must write nothing but `sample.values`.
   */
  readonly slow?: boolean;
  /**
   * Collectors whose output this one reads (e.g. the MIG instances the mig collector lists in
   * `gpu.migDevices`): they run earlier in a tick (COLLECTORS is checked for that), and a flag
   * set that turns one off while this one stays on is refused at start.
   */
  readonly needs?: readonly string[];
  collect(reader: ValueReader, gpu: GpuTarget): void;
  /**
   * Frees what the collector keeps in a GPU's state bag that NVML must release (e.g. GPM
   * samples). The Ticker calls it when the GPU leaves (or is swapped) and when sampling stops,
   * before nvmlShutdown.
   */
  release?(nvml: NvmlBinding, state: Map<string, unknown>): void;
}
