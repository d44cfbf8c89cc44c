import koffi from 'koffi';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { GPM_ABI_OFFSETS, GPM_ABI_SIZES, GPM_METRICS_GET_VERSION, GpmMetricsRequest } from '../src/native/gpm-abi.js';
import { NvmlBinding, type Device, type GpmSample } from '../src/native/nvml-binding.js';
import { GpmMetricId } from '../src/native/nvml-constants.js';
import { fixtureScenario } from './support/fixture-scenario.js';
import { nvmlError } from './support/nvml-error.js';

/**
 * The GPM calls through the real koffi binding against the simulated library, driven by
 * test/fixtures/gpm.sim (a copy: tests change it while the library runs), plus raw calls with
 * malformed requests that the binding itself never makes.
 */
const scenario = fixtureScenario('gpm');
const { statePath, node } = scenario;

let nvml: NvmlBinding;
/** performance.now() just before and after the library's first nvmlInit in this process: scenario time 0 lies between. */
let t0Before = 0;
let t0After = 0;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
/**
 * Between the two samples of a pair: the driver averages over the time between them, so some
 * must pass (the simulated driver refuses a second sample not later than the first). The values
 * these tests read are constant over time, so a few milliseconds do; the collector itself keeps
 * the header's 100 ms (test/gpm.test.ts).
 */
const APART_MS = 5;
const raw = koffi.load(node.libraryPath);
const samplesInUse = raw.func('int kgeSimGpmSamplesInUse()') as () => number;
const rawMetricsGet = raw.func('int nvmlGpmMetricsGet(void *request)') as (req: Buffer) => number;
const rawQuerySupport = raw.func('int nvmlGpmQueryDeviceSupport(void *device, void *support)') as (d: Device, s: Buffer) => number;

const changeScenario = scenario.edit;

const allocated: GpmSample[] = [];
function alloc(): GpmSample {
  const s = nvml.gpmSampleAlloc();
  allocated.push(s);
  return s;
}

beforeAll(() => {
  process.env.KGE_SIM_STATE = statePath;
  nvml = new NvmlBinding({ libraryPath: node.libraryPath });
  t0Before = performance.now();
  nvml.init();
  t0After = performance.now();
});
afterEach(async () => {
  for (const s of allocated.splice(0)) nvml.gpmSampleFree(s);
  await scenario.restore();
});
afterAll(() => nvml.shutdown());

describe('GPM ABI layout', () => {
  it('matches the C structs of the NVML header (x86-64)', () => {
    expect(GPM_ABI_SIZES).toEqual({ nvmlGpmSupport_t: 8, nvmlGpmMetric_t: 40, nvmlGpmMetricsGet_t: 13_344 });
    expect(GPM_ABI_OFFSETS).toEqual({
      nvmlGpmSupport_t: { version: 0, isSupportedDevice: 4 },
      nvmlGpmMetric_t: { metricId: 0, nvmlReturn: 4, value: 8, metricInfo: 16 },
      nvmlGpmMetricInfo: { shortName: 0, longName: 8, unit: 16 },
      nvmlGpmMetricsGet_t: { version: 0, numMetrics: 4, sample1: 8, sample2: 16, metrics: 24 },
    });
  });

  it('writes the request where the C library reads it: metricInfo pointers land at offset 16', async () => {
    const d = nvml.deviceByIndex(0);
    const [a, b] = [alloc(), alloc()];
    nvml.gpmSampleGet(d, a);
    await sleep(APART_MS);
    nvml.gpmSampleGet(d, b);
    const req = new GpmMetricsRequest();
    req.prepare(a, b, [GpmMetricId.SM_UTIL, GpmMetricId.PCIE_RX_PER_SEC]);
    expect(rawMetricsGet(req.buffer)).toBe(0);
    expect(req.results([GpmMetricId.SM_UTIL, GpmMetricId.PCIE_RX_PER_SEC])).toEqual([
      { metricId: 2, code: 0, value: 80 },
      { metricId: 21, code: 0, value: 2500 },
    ]);
    const info = GPM_ABI_OFFSETS.nvmlGpmMetricsGet_t.metrics + GPM_ABI_OFFSETS.nvmlGpmMetric_t.metricInfo;
    const text = (at: number): string => koffi.decode(req.buffer, at, 'const char *') as string;
    expect(text(info + GPM_ABI_OFFSETS.nvmlGpmMetricInfo.shortName)).toBe('SM_ACTIVE');
    expect(text(info + GPM_ABI_OFFSETS.nvmlGpmMetricInfo.unit)).toBe('%');
    expect(text(info + GPM_ABI_SIZES.nvmlGpmMetric_t + GPM_ABI_OFFSETS.nvmlGpmMetricInfo.unit)).toBe('MiB/s');
  });
});

describe('GPM support', () => {
  it('is reported per GPU: Hopper yes, A100 no; a MIG handle answers for its parent', () => {
    expect(nvml.gpmSupported(nvml.deviceByIndex(0))).toBe(true);
    expect(nvml.gpmSupported(nvml.deviceByIndex(1))).toBe(false);
    const gpu2 = nvml.deviceByIndex(2);
    expect(nvml.gpmSupported(gpu2)).toBe(true);
    expect(nvml.gpmSupported(nvml.migDeviceByIndex(gpu2, 0))).toBe(true);
  });

  it('takes the plain version 1; the size|version<<24 form is ARGUMENT_VERSION_MISMATCH', () => {
    const d = nvml.deviceByIndex(0);
    const support = Buffer.alloc(8);
    support.writeUInt32LE(1, 0);
    expect(rawQuerySupport(d, support)).toBe(0);
    expect(support.readUInt32LE(4)).toBe(1);
    support.writeUInt32LE((8 | (1 << 24)) >>> 0, 0);
    expect(rawQuerySupport(d, support)).toBe(25);
  });
});

describe('GPM samples and metrics', () => {
  it('gives the constant values of the scenario, each entry with its own code', async () => {
    const d = nvml.deviceByIndex(0);
    const [a, b] = [alloc(), alloc()];
    nvml.gpmSampleGet(d, a);
    await sleep(APART_MS);
    nvml.gpmSampleGet(d, b);
    const ids = [GpmMetricId.SM_UTIL, GpmMetricId.SM_OCCUPANCY, GpmMetricId.ANY_TENSOR_UTIL, GpmMetricId.DRAM_BW_UTIL, GpmMetricId.FP64_UTIL, GpmMetricId.NVLINK_TOTAL_TX_PER_SEC, GpmMetricId.NVLINK_TOTAL_RX_PER_SEC];
    const out = nvml.gpmMetrics(a, b, ids);
    expect(out.map((r) => r.code)).toEqual([0, 0, 0, 0, 0, 0, 0]);
    expect(out.map((r) => r.value!)).toEqual([80, 45, 60, 35, 0.5, expect.closeTo(9000, 6), expect.closeTo(8500, 6)]);
    // 0 and 8 are not metric ids; 30 (NVDEC 0) is, but this GPU has no value for it
    expect(nvml.gpmMetrics(a, b, [0, 8, 30])).toEqual([
      { metricId: 0, code: 2 },
      { metricId: 8, code: 2 },
      { metricId: 30, code: 3 },
    ]);
  });

  it('averages what the scenario says over the interval, not the value at its end', async () => {
    const d = nvml.deviceByIndex(0);
    const [a, b] = [alloc(), alloc()];
    // bounds of the scenario time of each sample
    const before1 = performance.now() - t0After;
    nvml.gpmSampleGet(d, a);
    const after1 = performance.now() - t0Before;
    // long enough for the square wave to average out and the ramp to climb: what is tested
    await sleep(1000);
    const before2 = performance.now() - t0After;
    nvml.gpmSampleGet(d, b);
    const after2 = performance.now() - t0Before;
    const [square, ramp] = nvml.gpmMetrics(a, b, [GpmMetricId.GRAPHICS_UTIL, GpmMetricId.PCIE_TX_PER_SEC]);
    // 0/100 square wave of 200 ms: about five whole periods average 50 (at either end it is 0 or 100)
    const span = before2 - after1 - (t0After - t0Before);
    expect(Math.abs(square!.value! - 50)).toBeLessThanOrEqual((100 * 100) / span + 1);
    // linear(1000, 1000 per s): the mean over [t1, t2] is 1000 + (t1 + t2) / 2
    expect(ramp!.value!).toBeGreaterThanOrEqual(1000 + (before1 + before2) / 2 - 1);
    expect(ramp!.value!).toBeLessThanOrEqual(1000 + (after1 + after2) / 2 + 1);
    // the value at the end is about 500 MiB/s higher
    expect(1000 + before2 - ramp!.value!).toBeGreaterThan(400);
  });

  it('samples a MIG GPU instance by its id on the parent; PCIe and NVLink only per GPU', async () => {
    const gpu2 = nvml.deviceByIndex(2);
    const mig0 = nvml.migDeviceByIndex(gpu2, 0);
    const gi = nvml.gpuInstanceId(mig0);
    expect(gi).toBe(1);
    const [a, b, p1, p2] = [alloc(), alloc(), alloc(), alloc()];
    nvml.gpmMigSampleGet(gpu2, gi, a);
    nvml.gpmSampleGet(gpu2, p1);
    await sleep(APART_MS);
    nvml.gpmMigSampleGet(gpu2, gi, b);
    nvml.gpmSampleGet(gpu2, p2);
    expect(nvml.gpmMetrics(a, b, [GpmMetricId.GRAPHICS_UTIL, GpmMetricId.SM_UTIL, GpmMetricId.ANY_TENSOR_UTIL, GpmMetricId.PCIE_TX_PER_SEC])).toEqual([
      { metricId: 1, code: 0, value: 75 },
      { metricId: 2, code: 0, value: 64 },
      { metricId: 5, code: 0, value: 41 },
      { metricId: 20, code: 3 },
    ]);
    expect(nvml.gpmMetrics(p1, p2, [GpmMetricId.PCIE_TX_PER_SEC, GpmMetricId.PCIE_RX_PER_SEC])).toEqual([
      { metricId: 20, code: 0, value: expect.closeTo(300, 6) },
      { metricId: 21, code: 0, value: expect.closeTo(400, 6) },
    ]);
    // an instance and its parent are different devices: their samples do not pair
    expect(nvmlError(() => nvml.gpmMetrics(a, p2, [GpmMetricId.GRAPHICS_UTIL])).code).toBe(2);
  });

  it('answers NOT_SUPPORTED, NOT_FOUND and INVALID_ARGUMENT where a driver would', () => {
    const s = alloc();
    expect(nvmlError(() => nvml.gpmSampleGet(nvml.deviceByIndex(1), s))).toMatchObject({ call: 'nvmlGpmSampleGet', code: 3, notSupported: true });
    const gpu2 = nvml.deviceByIndex(2);
    expect(nvmlError(() => nvml.gpmSampleGet(nvml.migDeviceByIndex(gpu2, 0), s)).code).toBe(3);
    expect(nvmlError(() => nvml.gpmMigSampleGet(gpu2, 4, s))).toMatchObject({ call: 'nvmlGpmMigSampleGet', code: 6 });
    expect(nvmlError(() => nvml.gpmMigSampleGet(nvml.deviceByIndex(0), 1, s)).code).toBe(3);
    // a sample that was never taken
    const untaken = alloc();
    nvml.gpmSampleGet(nvml.deviceByIndex(0), s);
    expect(nvmlError(() => nvml.gpmMetrics(untaken, s, [GpmMetricId.SM_UTIL])).code).toBe(2);
  });

  it('refuses samples in the wrong order, or of two GPUs', async () => {
    const [a, b, other] = [alloc(), alloc(), alloc()];
    nvml.gpmSampleGet(nvml.deviceByIndex(0), a);
    nvml.gpmSampleGet(nvml.deviceByIndex(2), other);
    await sleep(APART_MS);
    nvml.gpmSampleGet(nvml.deviceByIndex(0), b);
    expect(nvml.gpmMetrics(a, b, [GpmMetricId.SM_UTIL])[0]!.code).toBe(0);
    expect(nvmlError(() => nvml.gpmMetrics(b, a, [GpmMetricId.SM_UTIL])).code).toBe(2);
    expect(nvmlError(() => nvml.gpmMetrics(other, b, [GpmMetricId.SM_UTIL])).code).toBe(2);
  });

  it('checks the request version and its metric count', async () => {
    const [a, b] = [alloc(), alloc()];
    nvml.gpmSampleGet(nvml.deviceByIndex(0), a);
    await sleep(APART_MS);
    nvml.gpmSampleGet(nvml.deviceByIndex(0), b);
    const req = new GpmMetricsRequest();
    req.prepare(a, b, [GpmMetricId.SM_UTIL]);
    expect(rawMetricsGet(req.buffer)).toBe(0);
    req.buffer.writeUInt32LE((GPM_ABI_SIZES.nvmlGpmMetricsGet_t | (GPM_METRICS_GET_VERSION << 24)) >>> 0, 0);
    expect(rawMetricsGet(req.buffer)).toBe(25);
    // 99 entries is more than a driver of the 98-entry header takes
    req.prepare(a, b, Array.from({ length: 98 }, () => GpmMetricId.SM_UTIL));
    expect(rawMetricsGet(req.buffer)).toBe(0);
    req.buffer.writeUInt32LE(99, GPM_ABI_OFFSETS.nvmlGpmMetricsGet_t.numMetrics);
    expect(rawMetricsGet(req.buffer)).toBe(2);
    // so the binding never asks for more
    expect(() => nvml.gpmMetrics(a, b, Array.from({ length: 99 }, () => GpmMetricId.SM_UTIL))).toThrowError(
      'nvmlGpmMetricsGet: 99 metrics asked for in one call; at most 98 (what every driver accepts)',
    );
    expect(nvml.gpmMetrics(a, b, [])).toEqual([]);
  });

  it('reports NaN and Inf as the driver gives them, with SUCCESS', async () => {
    await changeScenario(['gpu.0.gpm_sm_active 80', 'gpu.0.gpm_sm_active nan'], ['gpu.0.gpm_dram_active 35', 'gpu.0.gpm_dram_active inf']);
    const [a, b] = [alloc(), alloc()];
    nvml.gpmSampleGet(nvml.deviceByIndex(0), a);
    await sleep(APART_MS);
    nvml.gpmSampleGet(nvml.deviceByIndex(0), b);
    const [sm, dram, tensor] = nvml.gpmMetrics(a, b, [GpmMetricId.SM_UTIL, GpmMetricId.DRAM_BW_UTIL, GpmMetricId.ANY_TENSOR_UTIL]);
    expect(sm).toMatchObject({ code: 0 });
    expect(sm!.value).toBeNaN();
    expect(dram).toEqual({ metricId: 10, code: 0, value: Infinity });
    expect(tensor).toEqual({ metricId: 5, code: 0, value: 60 });
  });

  it('injects faults into the whole call or into one metric entry, per GPU', async () => {
    await changeScenario(['gpu.2.mig_mode 1', 'gpu.2.mig_mode 1\nfault nvmlGpmMetricsGet 0 999\nfault nvmlGpmMetricsGet/2 2 15']);
    const [a, b, p1, p2] = [alloc(), alloc(), alloc(), alloc()];
    nvml.gpmSampleGet(nvml.deviceByIndex(0), a);
    nvml.gpmSampleGet(nvml.deviceByIndex(2), p1);
    await sleep(APART_MS);
    nvml.gpmSampleGet(nvml.deviceByIndex(0), b);
    nvml.gpmSampleGet(nvml.deviceByIndex(2), p2);
    expect(nvmlError(() => nvml.gpmMetrics(a, b, [GpmMetricId.SM_UTIL]))).toMatchObject({ call: 'nvmlGpmMetricsGet', code: 999 });
    // GPU 2's request goes through; only its SM entry carries the injected code (GPU_IS_LOST)
    expect(nvml.gpmMetrics(p1, p2, [GpmMetricId.SM_UTIL, GpmMetricId.PCIE_TX_PER_SEC])).toEqual([
      { metricId: 2, code: 15 },
      { metricId: 20, code: 0, value: expect.closeTo(300, 6) },
    ]);
  });

  it('frees samples; a freed or unknown sample is INVALID_ARGUMENT', () => {
    const before = samplesInUse();
    const s = nvml.gpmSampleAlloc();
    expect(samplesInUse()).toBe(before + 1);
    nvml.gpmSampleFree(s);
    expect(samplesInUse()).toBe(before);
    expect(nvmlError(() => nvml.gpmSampleFree(s))).toMatchObject({ call: 'nvmlGpmSampleFree', code: 2 });
  });
});

describe('a driver without the GPM symbols', () => {
  const omitted = ['nvmlGpmQueryDeviceSupport', 'nvmlGpmSampleAlloc', 'nvmlGpmSampleFree', 'nvmlGpmSampleGet', 'nvmlGpmMigSampleGet', 'nvmlGpmMetricsGet'];
  const old = fixtureScenario('gpm', { omit: omitted });
  let oldNvml: NvmlBinding;
  beforeAll(() => {
    process.env.KGE_SIM_STATE = old.statePath;
    oldNvml = new NvmlBinding({ libraryPath: old.node.libraryPath });
    oldNvml.init();
    process.env.KGE_SIM_STATE = statePath;
  });
  afterAll(() => oldNvml.shutdown());

  it('reports every GPM call as FUNCTION_NOT_FOUND (not supported) and lists the symbols once, when it loads', () => {
    expect([...oldNvml.missingSymbols].sort()).toEqual([...omitted].sort());
    const d = oldNvml.deviceByIndex(0);
    expect(nvmlError(() => oldNvml.gpmSupported(d))).toMatchObject({ call: 'nvmlGpmQueryDeviceSupport', code: 13, notSupported: true });
    expect(nvmlError(() => oldNvml.gpmSampleAlloc())).toMatchObject({ call: 'nvmlGpmSampleAlloc', code: 13 });
    expect(nvmlError(() => oldNvml.gpmSampleGet(d, null))).toMatchObject({ call: 'nvmlGpmSampleGet', code: 13 });
    expect(nvmlError(() => oldNvml.gpmMigSampleGet(d, 1, null))).toMatchObject({ call: 'nvmlGpmMigSampleGet', code: 13 });
    expect(nvmlError(() => oldNvml.gpmSampleFree(null))).toMatchObject({ call: 'nvmlGpmSampleFree', code: 13 });
    expect(nvmlError(() => oldNvml.gpmMetrics(null, null, [1]))).toMatchObject({ call: 'nvmlGpmMetricsGet', code: 13 });
    expect(nvmlError(() => oldNvml.gpmSupported(d)).code).toBe(13);
    expect([...oldNvml.missingSymbols].sort()).toEqual([...omitted].sort());
  });
});
