import type { Device, GpmSample, NvmlBinding } from '../native/nvml-binding.js';
import { NVML_ERROR_FUNCTION_NOT_FOUND, NVML_ERROR_NOT_SUPPORTED, NVML_SUCCESS, NvmlError } from '../native/nvml-return.js';
import type { MigSample, ValueKey, Values } from '../sample.js';
import type { Collector, GpuTarget, ValueReader } from './collector.js';
import { valuesOf } from './declared.js';
import { migEnabled } from './processes.js';

/** The GPM metrics read (the value table's gpm entries), the value each fills in, and whether a MIG GPU instance has it (else: whole GPU only). */
export const GPM_METRICS: readonly { id: number; key: ValueKey; perInstance: boolean }[] = valuesOf('gpm').flatMap(([key, read]) =>
  read.kind === 'gpm' ? [{ id: read.metric, key, perInstance: read.perInstance }] : [],
);
const KEY_OF = new Map(GPM_METRICS.map((m) => [m.id, m.key]));
/** A GPU without MIG: every metric. */
const WHOLE_GPU_IDS = GPM_METRICS.map((m) => m.id);
/** A MIG GPU instance: the metrics it has its own values of. */
const INSTANCE_IDS = GPM_METRICS.filter((m) => m.perInstance).map((m) => m.id);
/** A MIG-enabled GPU itself: what only the whole GPU has (the rest is on its instances). */
const MIG_PARENT_IDS = GPM_METRICS.filter((m) => !m.perInstance).map((m) => m.id);

/** Two GPM samples give an average only when taken more than this far apart (NVML's guidance). */
export const GPM_MIN_SPAN_MS = 100;

/** GpuTarget.state key of this collector's state. */
export const GPM_STATE_KEY = 'gpm';

/** The samples of one GPU or MIG instance: the baseline and the one the next reading goes into. */
interface SamplePair {
  baseline: GpmSample;
  next: GpmSample;
  /** When the baseline was taken (monotonic ms); undefined until there is one (first cycle, re-seeded). */
  baselineAtMs?: number;
  /** The values of the last completed interval, carried into a tick that comes too soon after it. */
  last: Values;
}

/** A MIG GPU instance's pair, with what identified the instance when its baseline was taken. */
interface InstancePair extends SamplePair {
  uuid: string;
  profile: string;
}

interface GpmState {
  /** true once the GPU said it has GPM; a reason once it is known not to. */
  support?: true | { reason: string };
  whole?: SamplePair;
  /** By GPU instance id. */
  instances: Map<number, InstancePair>;
}

interface Reading {
  values: Values;
  /** Set when the values were computed now (absent: carried over, or none yet). */
  spanMs?: number;
}

const now = (): number => performance.now();

/** Entry codes that mean "this GPU or instance has no such metric". */
const ABSENT = new Set([NVML_ERROR_NOT_SUPPORTED, NVML_ERROR_FUNCTION_NOT_FOUND]);

function allocatePair(nvml: NvmlBinding): SamplePair {
  const baseline = nvml.gpmSampleAlloc();
  try {
    return { baseline, next: nvml.gpmSampleAlloc(), last: {} };
  } catch (err) {
    freeSample(nvml, baseline);
    throw err;
  }
}

function freeSample(nvml: NvmlBinding, sample: GpmSample): void {
  try {
    nvml.gpmSampleFree(sample);
  } catch {
    /* nothing more can be done with it */
  }
}

function freePair(nvml: NvmlBinding, pair: SamplePair | undefined): void {
  if (!pair) return;
  freeSample(nvml, pair.baseline);
  freeSample(nvml, pair.next);
}

function freeAll(nvml: NvmlBinding, state: GpmState): void {
  freePair(nvml, state.whole);
  state.whole = undefined;
  for (const pair of state.instances.values()) freePair(nvml, pair);
  state.instances.clear();
}

function stateOf(gpu: GpuTarget): GpmState {
  let state = gpu.state.get(GPM_STATE_KEY) as GpmState | undefined;
  if (!state) gpu.state.set(GPM_STATE_KEY, (state = { instances: new Map() }));
  return state;
}

/**
 * Takes a sample into the pair and returns the averages since its baseline; the new sample
 * becomes the baseline. The first reading (no baseline) gives nothing; a reading within
 * GPM_MIN_SPAN_MS of the baseline takes no sample and carries the last values.
 */
function read(reader: ValueReader, pair: SamplePair, take: (sample: GpmSample) => void, metricIds: readonly number[]): Reading {
  const at = now();
  if (pair.baselineAtMs !== undefined && at - pair.baselineAtMs <= GPM_MIN_SPAN_MS) return { values: pair.last };
  try {
    take(pair.next);
  } catch (err) {
    pair.baselineAtMs = undefined; // a failed or lost device starts over from a fresh baseline
    pair.last = {};
    throw err;
  }
  const since = pair.baselineAtMs;
  [pair.baseline, pair.next] = [pair.next, pair.baseline];
  pair.baselineAtMs = at;
  pair.last = {};
  if (since === undefined) return { values: {} };
  const values: Values = {};
  for (const r of reader.nvml.gpmMetrics(pair.next, pair.baseline, metricIds)) {
    const key = KEY_OF.get(r.metricId)!;
    if (r.code === NVML_SUCCESS) {
      if (r.value !== undefined && Number.isFinite(r.value)) values[key] = r.value;
    } else if (!ABSENT.has(r.code)) {
      reader.report(new NvmlError('nvmlGpmMetricsGet', r.code, `metric ${r.metricId} (${key})`));
    }
  }
  pair.last = values;
  return { values, spanMs: at - since };
}

/** Whether the GPU has GPM; once known not to, every tick notes it on the sample (the sampler logs it once). */
function supported(reader: ValueReader, gpu: GpuTarget, state: GpmState): boolean {
  if (state.support === undefined) {
    try {
      state.support = reader.nvml.gpmSupported(gpu.device) ? true : { reason: 'nvmlGpmQueryDeviceSupport: this GPU has no GPM (it needs Hopper or later)' };
    } catch (err) {
      if (!(err instanceof NvmlError && err.notSupported)) {
        reader.report(err);
        return false;
      }
      state.support = { reason: err.message };
    }
  }
  if (state.support === true) return true;
  gpu.sample.unsupported = [...(gpu.sample.unsupported ?? []), { collector: gpmCollector.name, reason: state.support.reason }];
  return false;
}

/**
 * Reads the whole GPU. A missing GPM symbol, or NOT_SUPPORTED on a GPU without MIG, turns GPM off
 * for the GPU from now on. (A MIG-enabled GPU that does not sample as a whole keeps its instances.)
 */
function readWholeGpu(reader: ValueReader, gpu: GpuTarget, state: GpmState, mig: boolean): void {
  reader.attempt(() => {
    try {
      const pair = (state.whole ??= allocatePair(reader.nvml));
      const { values } = read(reader, pair, (s) => reader.nvml.gpmSampleGet(gpu.device, s), mig ? MIG_PARENT_IDS : WHOLE_GPU_IDS);
      Object.assign(gpu.sample.values, values);
    } catch (err) {
      if (err instanceof NvmlError && (err.code === NVML_ERROR_FUNCTION_NOT_FOUND || (err.notSupported && !mig))) {
        freeAll(reader.nvml, state);
        state.support = { reason: err.message };
      }
      throw err;
    }
  });
}

/**
 * One reading per GPU instance of the MIG devices listed this tick (MIG devices of one instance,
 * one per compute instance, share it); the samples of instances no longer listed are freed.
 */
function readInstances(reader: ValueReader, parent: Device, state: GpmState, migDevices: readonly { sample: MigSample }[]): void {
  const readings = new Map<number, Reading>();
  for (const { sample } of migDevices) {
    const gi = sample.gpuInstanceId;
    if (!readings.has(gi)) {
      readings.set(gi, { values: {} });
      reader.attempt(() => {
        readings.set(gi, readInstance(reader, parent, state, sample));
      });
    }
    const reading = readings.get(gi)!;
    Object.assign(sample.values, reading.values);
    if (reading.spanMs !== undefined) sample.gpmSpanMs = reading.spanMs;
  }
  for (const [gi, pair] of state.instances) {
    if (readings.has(gi)) continue;
    freePair(reader.nvml, pair);
    state.instances.delete(gi);
  }
}

function readInstance(reader: ValueReader, parent: Device, state: GpmState, mig: MigSample): Reading {
  const gi = mig.gpuInstanceId;
  let pair = state.instances.get(gi);
  if (!pair) {
    pair = { ...allocatePair(reader.nvml), uuid: mig.uuid, profile: mig.profile };
    state.instances.set(gi, pair);
  } else if (pair.uuid !== mig.uuid || pair.profile !== mig.profile) {
    // MIG was reconfigured and the id now names another instance: its old baseline means nothing
    pair.baselineAtMs = undefined;
    pair.last = {};
    pair.uuid = mig.uuid;
    pair.profile = mig.profile;
  }
  return read(reader, pair, (s) => reader.nvml.gpmMigSampleGet(parent, gi, s), INSTANCE_IDS);
}

/**
 * Profiling metrics from NVML's GPM API (the values dcgm-exporter reads from DCGM's profiling
 * fields), without DCGM: per GPU, and on MIG-enabled GPUs per MIG GPU instance where the API has
 * per-instance values (PCIe and NVLink stay on the GPU). Each value is the average between the
 * previous sample and this one, so the first tick has none. Needs the mig collector (which runs
 * first) for the instances.
 */
export const gpmCollector: Collector = {
  name: 'gpm',
  needs: ['mig'],
  defaultEnabled: true,
  description: 'Profiling metrics from NVML GPM (Hopper and later): graphics engine, SM, tensor, FP and DRAM activity per GPU and per MIG instance, PCIe and NVLink rates; each the average since the previous sample, at least 100 ms before (a shorter --sample-interval repeats the last average)',
  collect(reader, gpu) {
    const state = stateOf(gpu);
    if (!supported(reader, gpu, state)) return;
    const mig = migEnabled(reader, gpu);
    readWholeGpu(reader, gpu, state, mig);
    if (!supported(reader, gpu, state)) return;
    readInstances(reader, gpu.device, state, mig ? gpu.migDevices : []);
  },
  release(nvml, bag) {
    const state = bag.get(GPM_STATE_KEY) as GpmState | undefined;
    if (state) freeAll(nvml, state);
  },
};
