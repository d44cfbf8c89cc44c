import { Writable } from 'node:stream';
import koffi from 'koffi';
import pino from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Collector } from '../src/collectors/collector.js';
import { GPM_METRICS, gpmCollector } from '../src/collectors/gpm.js';
import { COLLECTORS } from '../src/collectors/index.js';
import { migCollector } from '../src/collectors/mig.js';
import type { RenderFamily } from '../src/metrics/exposition.js';
import { buildGpuFamilies } from '../src/metrics/gpu-series.js';
import { renderContext } from '../src/metrics/render-context.js';
import { NvmlBinding } from '../src/native/nvml-binding.js';
import type { GpuSample, MigSample, NodeSample, Values } from '../src/sample.js';
import { BusyTimeIntegrator } from '../src/sampler/busy-time.js';
import { Sampler } from '../src/sampler/sampler.js';
import { StateChangeLog } from '../src/sampler/state-log.js';
import { Ticker } from '../src/sampler/tick.js';
import { fixtureScenario } from './support/fixture-scenario.js';

/**
 * The gpm collector through a real Ticker and the koffi binding on the simulated NVML, driven by
 * test/fixtures/gpm.sim (GPU 0 whole H100, GPU 1 an A100 without GPM, GPU 2 an H100 in MIG mode
 * with GPU instances 1 and 5), its families, the busy-seconds counter of MIG instances, the log
 * line for GPUs without GPM, and the freeing of GPM samples.
 */
const scenario = fixtureScenario('gpm');
const { node } = scenario;
const samplesInUse = koffi.load(node.libraryPath).func('int kgeSimGpmSamplesInUse()') as () => number;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
/** More than the 100 ms two GPM samples need between them, with room for a busy machine. */
const APART_MS = 150;
const GPM_KEYS = GPM_METRICS.map((m) => m.key);

function gpu(sample: NodeSample, index: number): GpuSample {
  const g = sample.gpus.find((x) => x.index === index);
  if (!g) throw new Error(`GPU ${index} missing from the sample`);
  return g;
}
function instance(sample: NodeSample, gpuInstanceId: number): MigSample {
  const m = gpu(sample, 2).mig.find((x) => x.gpuInstanceId === gpuInstanceId);
  if (!m) throw new Error(`GPU instance ${gpuInstanceId} missing from the sample`);
  return m;
}
function gpmValues(device: { values: Values }): Values {
  return Object.fromEntries(GPM_KEYS.filter((k) => device.values[k] !== undefined).map((k) => [k, device.values[k]]));
}
function report(sample: NodeSample) {
  return sample.collectors.find((c) => c.name === 'gpm')!;
}
const near = (v: number) => expect.closeTo(v, 6);

/** The fixture's constant values (GPU 0's graphics engine is a square wave, its PCIe TX a ramp). */
const GPU0_CONSTANT = {
  smActivePercent: near(80), smOccupancyPercent: near(45), tensorActivePercent: near(60), dramActivePercent: near(35),
  fp64ActivePercent: near(0.5), fp32ActivePercent: near(12), fp16ActivePercent: near(9),
  gpmPcieRxMiBps: near(2500), gpmNvlinkTxMiBps: near(9000), gpmNvlinkRxMiBps: near(8500),
};
const GI1 = {
  grEngineActivePercent: near(75), smActivePercent: near(64), smOccupancyPercent: near(30), tensorActivePercent: near(41),
  dramActivePercent: near(22), fp64ActivePercent: near(0), fp32ActivePercent: near(8), fp16ActivePercent: near(5),
};
const GPU2_PARENT = { gpmPcieTxMiBps: near(300), gpmPcieRxMiBps: near(400), gpmNvlinkTxMiBps: near(1200), gpmNvlinkRxMiBps: near(1100) };

describe('gpm collector', () => {
  let nvml: NvmlBinding;
  const tickers: Ticker[] = [];
  const newTicker = (collectors: Collector[] = [migCollector, gpmCollector], binding = nvml): Ticker => {
    const t = new Ticker(binding, collectors);
    tickers.push(t);
    return t;
  };
  /** Two ticks far enough apart that the second has averages. */
  async function twoTicks(t: Ticker): Promise<[NodeSample, NodeSample]> {
    const first = t.tick();
    await sleep(APART_MS);
    return [first, t.tick()];
  }

  beforeAll(() => {
    process.env.KGE_SIM_STATE = scenario.statePath;
    nvml = new NvmlBinding({ libraryPath: node.libraryPath });
    nvml.init();
  });
  afterEach(async () => {
    for (const t of tickers.splice(0)) t.close();
    await scenario.restore();
  });
  afterAll(() => nvml.shutdown());

  it('has no value in the first tick and the averages since it in the next', async () => {
    const [first, second] = await twoTicks(newTicker());
    for (const index of [0, 1, 2]) expect(gpmValues(gpu(first, index))).toEqual({});
    for (const m of gpu(first, 2).mig) {
      expect(gpmValues(m)).toEqual({});
      expect(m.gpmSpanMs).toBeUndefined();
    }
    expect(gpmValues(gpu(second, 0))).toEqual({ ...GPU0_CONSTANT, grEngineActivePercent: expect.any(Number), gpmPcieTxMiBps: expect.any(Number) });
    // the square wave (0 or 100 at any instant) averages strictly between over 150 ms or more
    expect(gpu(second, 0).values.grEngineActivePercent).toBeGreaterThan(5);
    expect(gpu(second, 0).values.grEngineActivePercent).toBeLessThan(95);
    expect(report(second)).toMatchObject({ success: true });
  });

  it('puts per-instance values on the MIG instances and only PCIe and NVLink on their GPU', async () => {
    const [first, second] = await twoTicks(newTicker());
    expect(gpmValues(gpu(second, 2))).toEqual(GPU2_PARENT);
    expect(gpmValues(instance(second, 1))).toEqual(GI1);
    expect(gpmValues(instance(second, 5))).toEqual(Object.fromEntries(Object.keys(GI1).map((k) => [k, near(0)])));
    const span = instance(second, 1).gpmSpanMs!;
    expect(span).toBeGreaterThan(APART_MS - 5);
    expect(span).toBeLessThanOrEqual(second.monotonicMs - first.monotonicMs + (second.tickSeconds + first.tickSeconds) * 1000);
  });

  it('leaves a GPU without GPM out and notes why on every sample; the sampler logs it once', async () => {
    const lines: string[] = [];
    const log = new StateChangeLog(pino({ level: 'info' }, new Writable({ write: (c: Buffer, _e, cb) => (lines.push(c.toString()), cb()) })));
    const t = newTicker();
    const samples = [t.tick()];
    for (let i = 0; i < 3; i++) {
      await sleep(APART_MS);
      samples.push(t.tick());
    }
    for (const s of samples) {
      expect(gpmValues(gpu(s, 1))).toEqual({});
      expect(gpu(s, 1).unsupported).toEqual([{ collector: 'gpm', reason: expect.stringContaining('no GPM') }]);
      expect(gpu(s, 0).unsupported).toBeUndefined();
      expect(report(s)).toMatchObject({ success: true });
      log.observe(s);
    }
    const notSupported = lines.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => String(l.msg).startsWith('not supported on this GPU'));
    expect(notSupported).toEqual([expect.objectContaining({ gpu: 1, uuid: 'GPU-9a9a0000-1111-4000-8000-000000000001', collector: 'gpm' })]);
  });

  it('takes no sample within 100 ms of the baseline: it carries the last averages and keeps the baseline', async () => {
    const t = newTicker();
    const [, second] = await twoTicks(t);
    const soon = t.tick();
    // a sample taken now would average the square wave over a moment: 0 or 100
    expect(gpmValues(gpu(soon, 0))).toEqual(gpmValues(gpu(second, 0)));
    expect(gpmValues(instance(soon, 1))).toEqual(gpmValues(instance(second, 1)));
    expect(instance(soon, 1).gpmSpanMs).toBeUndefined();
    await sleep(APART_MS);
    const later = t.tick();
    // the next average runs from the baseline of `second`, not from `soon`
    expect(instance(later, 1).gpmSpanMs!).toBeGreaterThanOrEqual(later.monotonicMs - second.monotonicMs - 5);
    expect(gpmValues(instance(later, 1))).toEqual(GI1);
  });

  it('skips a metric whose entry failed, reports the error, keeps the others', async () => {
    await scenario.edit(['gpu.2.mig_mode 1', 'gpu.2.mig_mode 1\nfault nvmlGpmMetricsGet/5 0 999']);
    const [, second] = await twoTicks(newTicker());
    const { tensorActivePercent, ...rest } = GPU0_CONSTANT;
    expect(tensorActivePercent).toBeDefined();
    expect(gpmValues(gpu(second, 0))).toEqual({ ...rest, grEngineActivePercent: expect.any(Number), gpmPcieTxMiBps: expect.any(Number) });
    expect(gpmValues(instance(second, 1))).toEqual(GI1);
    expect(report(second)).toMatchObject({ success: false, error: expect.stringMatching(/^GPU 0: nvmlGpmMetricsGet failed: NVML_ERROR_UNKNOWN \(999\): metric 5 \(tensorActivePercent\)$/) });
  });

  it('drops NaN and Inf values, without an error', async () => {
    await scenario.edit(['gpu.0.gpm_sm_active 80', 'gpu.0.gpm_sm_active nan'], ['gpu.0.gpm_dram_active 35', 'gpu.0.gpm_dram_active inf'], ['gpu.2.mig.0.gpm_fp32_active 8', 'gpu.2.mig.0.gpm_fp32_active -inf']);
    const [, second] = await twoTicks(newTicker());
    expect(gpu(second, 0).values.smActivePercent).toBeUndefined();
    expect(gpu(second, 0).values.dramActivePercent).toBeUndefined();
    expect(gpu(second, 0).values.tensorActivePercent).toBeCloseTo(60, 6);
    expect(instance(second, 1).values.fp32ActivePercent).toBeUndefined();
    expect(instance(second, 1).values.grEngineActivePercent).toBeCloseTo(75, 6);
    expect(report(second)).toMatchObject({ success: true });
  });

  it('re-seeds an instance when MIG was reconfigured and its GPU instance id names another instance', async () => {
    const t = newTicker();
    const [, second] = await twoTicks(t);
    expect(gpmValues(instance(second, 1))).toEqual(GI1);
    await scenario.edit(['gpu.2.mig.0.uuid MIG-9a9a0000-3333', 'gpu.2.mig.0.uuid MIG-9a9a0000-5555'], ['gpu.2.mig.0.gpm_sm_active 64', 'gpu.2.mig.0.gpm_sm_active 12']);
    const after = t.tick();
    expect(instance(after, 1).uuid).toBe('MIG-9a9a0000-5555-4000-8000-000000000003');
    // no average across two different instances (the simulated driver refuses to pair them: INVALID_ARGUMENT)
    expect(gpmValues(instance(after, 1))).toEqual({});
    expect(gpmValues(instance(after, 5))).toEqual(expect.objectContaining({ grEngineActivePercent: near(0) }));
    expect(report(after)).toMatchObject({ success: true });
    await sleep(APART_MS);
    expect(gpmValues(instance(t.tick(), 1))).toEqual({ ...GI1, smActivePercent: near(12) });
  });

  it('frees the samples of an instance or GPU that goes away, and all of them on close', async () => {
    const before = samplesInUse();
    const t = newTicker();
    t.tick();
    // two per device: GPU 0, GPU 2 and its two instances (none for the A100)
    expect(samplesInUse() - before).toBe(8);
    await scenario.write(scenario.original.split('\n').filter((l) => !l.startsWith('gpu.2.mig.1.')).join('\n'));
    expect(gpu(t.tick(), 2).mig.map((m) => m.gpuInstanceId)).toEqual([1]);
    expect(samplesInUse() - before).toBe(6);
    await scenario.edit(['device_count 3', 'device_count 2']);
    expect(t.tick().gpus.map((g) => g.index)).toEqual([0, 1]);
    expect(samplesInUse() - before).toBe(2);
    t.close();
    expect(samplesInUse()).toBe(before);
  });

  it('frees the samples of a GPU swapped at its index', async () => {
    const before = samplesInUse();
    const t = newTicker();
    t.tick();
    await scenario.edit(['gpu.0.uuid GPU-9a9a0000-0000', 'gpu.0.uuid GPU-9a9a0000-ffff']);
    const swapped = t.tick();
    expect(gpu(swapped, 0).uuid).toBe('GPU-9a9a0000-ffff-4000-8000-000000000000');
    // the new GPU starts over: no averages yet, one pair of samples as before
    expect(gpmValues(gpu(swapped, 0))).toEqual({});
    expect(samplesInUse() - before).toBe(8);
  });

  it('builds the DCGM profiling families and their Prometheus twins, MIG values on the instance series', async () => {
    const [, second] = await twoTicks(newTicker());
    const families = (scheme: 'dcgm' | 'prometheus'): Map<string, RenderFamily> =>
      new Map(buildGpuFamilies(renderContext({ sample: second, scheme, hostname: 'node-a' })).map((f) => [f.name, f]));
    const series = (f: RenderFamily | undefined, ...parts: string[]): number[] =>
      (f?.series ?? []).filter((s) => parts.every((p) => s.labels.includes(p))).map((s) => s.value);
    const dcgm = families('dcgm');
    expect(series(dcgm.get('DCGM_FI_PROF_SM_ACTIVE'), 'UUID="GPU-9a9a0000-0000')).toEqual([0.8]);
    expect(series(dcgm.get('DCGM_FI_PROF_PIPE_TENSOR_ACTIVE'), 'UUID="GPU-9a9a0000-0000')).toEqual([0.6]);
    expect(series(dcgm.get('DCGM_FI_PROF_PCIE_RX_BYTES'), 'UUID="GPU-9a9a0000-0000')).toEqual([2500 * 1048576]);
    expect(series(dcgm.get('DCGM_FI_PROF_NVLINK_TX_BYTES'), 'UUID="GPU-9a9a0000-2222')).toEqual([1200 * 1048576]);
    // MIG: on the instance's series (parent gpu and UUID, GPU_I_PROFILE, GPU_I_ID), not on the GPU's
    const sm = dcgm.get('DCGM_FI_PROF_SM_ACTIVE')!;
    expect(series(sm, 'UUID="GPU-9a9a0000-2222', 'GPU_I_PROFILE="3g.40gb"', 'GPU_I_ID="1"')).toEqual([0.64]);
    expect(series(sm, 'UUID="GPU-9a9a0000-2222', 'GPU_I_ID="5"')).toEqual([0]);
    expect(series(sm, 'UUID="GPU-9a9a0000-2222')).toHaveLength(2);
    expect(series(sm, 'UUID="GPU-9a9a0000-1111')).toEqual([]);
    expect(series(dcgm.get('DCGM_FI_PROF_PCIE_TX_BYTES'), 'GPU_I_ID=')).toEqual([]);
    const prom = families('prometheus');
    expect(series(prom.get('gpu_sm_active_ratio'), 'uuid="GPU-9a9a0000-2222', 'gpu_instance_id="1"', 'mig_profile="3g.40gb"')).toEqual([0.64]);
    expect(series(prom.get('gpu_dram_active_ratio'), 'uuid="GPU-9a9a0000-0000')).toEqual([0.35]);
    expect(series(prom.get('gpu_prof_pcie_receive_bytes_per_second'), 'uuid="GPU-9a9a0000-0000')).toEqual([2500 * 1048576]);
    expect(prom.get('gpu_graphics_engine_active_ratio')!.type).toBe('gauge');
  });

  it.each([
    ['every GPM symbol', ['nvmlGpmQueryDeviceSupport', 'nvmlGpmSampleAlloc', 'nvmlGpmSampleFree', 'nvmlGpmSampleGet', 'nvmlGpmMigSampleGet', 'nvmlGpmMetricsGet'], 'nvmlGpmQueryDeviceSupport'],
    ['nvmlGpmSampleAlloc alone', ['nvmlGpmSampleAlloc'], 'nvmlGpmSampleAlloc'],
  ])('treats a driver without %s as "no GPM": no values, the reason noted, no error', async (_what, omit, named) => {
    const old = fixtureScenario('gpm', { omit });
    process.env.KGE_SIM_STATE = old.statePath;
    const oldNvml = new NvmlBinding({ libraryPath: old.node.libraryPath });
    oldNvml.init();
    process.env.KGE_SIM_STATE = scenario.statePath;
    try {
      const t = newTicker([migCollector, gpmCollector], oldNvml);
      const [first, second] = await twoTicks(t);
      for (const s of [first, second]) {
        for (const g of s.gpus) expect(gpmValues(g)).toEqual({});
        expect(gpu(s, 0).unsupported).toEqual([{ collector: 'gpm', reason: expect.stringContaining(named) }]);
        expect(report(s)).toMatchObject({ success: true });
      }
      t.close();
    } finally {
      oldNvml.shutdown();
    }
  });
});

describe('gpm collector in the sampling worker', () => {
  it('feeds MIG instances\' busy seconds from graphics engine activity, logs a GPU without GPM once, frees every sample before nvmlShutdown', async () => {
    // this process holds no NVML init now: if the worker shut NVML down first, freeing would fail (UNINITIALIZED)
    expect(samplesInUse()).toBe(0);
    const lines: Record<string, unknown>[] = [];
    const logger = pino({ level: 'info' }, new Writable({ write: (c: Buffer, _e, cb) => (lines.push(JSON.parse(c.toString()) as Record<string, unknown>), cb()) }));
    process.env.KGE_SIM_STATE = scenario.statePath;
    const sampler = new Sampler({
      intervalMs: 200,
      initRetryMs: 1000,
      libraryPath: node.libraryPath,
      collectors: Object.fromEntries(COLLECTORS.map((c) => [c.name, ['mig', 'utilization', 'gpm'].includes(c.name)])),
      logger,
    });
    sampler.start();
    const samples: NodeSample[] = [];
    try {
      while (samples.length < 6) samples.push(await sampler.nextSample());
      expect(samplesInUse()).toBe(8);
    } finally {
      await sampler.stop();
    }
    expect(samplesInUse()).toBe(0);
    // GI 1 runs at 75 %: its counter grows by 0.75 x the span each new average covers (a tick that
    // came too soon after the previous one carries its values and adds nothing); GI 5 is idle
    const counted = samples.filter((s) => instance(s, 1).values.gpuBusySeconds !== undefined);
    expect(counted.filter((s) => instance(s, 1).gpmSpanMs !== undefined).length).toBeGreaterThanOrEqual(3);
    for (let i = 1; i < counted.length; i++) {
      const grew = instance(counted[i]!, 1).values.gpuBusySeconds! - instance(counted[i - 1]!, 1).values.gpuBusySeconds!;
      const span = instance(counted[i]!, 1).gpmSpanMs;
      expect(grew).toBeCloseTo(span === undefined ? 0 : 0.75 * (span / 1000), 9);
      if (span !== undefined) expect(grew).toBeGreaterThan(0.075);
      expect(instance(counted[i]!, 5).values.gpuBusySeconds).toBeCloseTo(0, 9);
    }
    // whole GPUs keep counting their utilization
    expect(gpu(samples.at(-1)!, 0).values.gpuBusySeconds).toBeGreaterThan(0);
    expect(gpu(samples.at(-1)!, 2).values.gpuBusySeconds).toBeUndefined();
    const notSupported = lines.filter((l) => String(l.msg).startsWith('not supported on this GPU'));
    expect(notSupported).toEqual([expect.objectContaining({ gpu: 1, collector: 'gpm' })]);
  });
});

describe('busy seconds of MIG instances', () => {
  function sample(atMs: number, mig: { uuid: string; active?: number; spanMs?: number }[]): NodeSample {
    return {
      takenAtMs: atMs, monotonicMs: atMs, driverVersion: 'x', lostGpus: [], collectors: [], tickSeconds: 0,
      gpus: [{
        index: 0, uuid: 'GPU-P', name: 'n', pciBusId: 'p', minor: 0, processes: [], values: { migModeEnabled: 1 },
        mig: mig.map((m) => ({
          uuid: m.uuid, gpuInstanceId: 1, computeInstanceId: 0, profile: '1g.10gb', processes: [],
          values: m.active === undefined ? {} : { grEngineActivePercent: m.active },
          ...(m.spanMs !== undefined ? { gpmSpanMs: m.spanMs } : {}),
        })),
      }],
    };
  }
  const busy = (s: NodeSample, i = 0): number | undefined => s.gpus[0]!.mig[i]!.values.gpuBusySeconds;

  it('adds activity x the span of each new average, nothing for carried values, and starts over for a new instance', () => {
    const b = new BusyTimeIntegrator();
    const first = sample(0, [{ uuid: 'MIG-A' }]);
    b.apply(first);
    expect(busy(first)).toBeUndefined();
    const s1 = sample(1000, [{ uuid: 'MIG-A', active: 40, spanMs: 1000 }]);
    b.apply(s1);
    expect(busy(s1)).toBe(0);
    const s2 = sample(1500, [{ uuid: 'MIG-A', active: 80, spanMs: 500 }]);
    b.apply(s2);
    expect(busy(s2)).toBeCloseTo(0.4, 12);
    // a tick that came too soon carries the values without a span: already counted
    const carried = sample(1550, [{ uuid: 'MIG-A', active: 80 }]);
    b.apply(carried);
    expect(busy(carried)).toBeCloseTo(0.4, 12);
    const s3 = sample(2500, [{ uuid: 'MIG-A', active: 10, spanMs: 1000 }]);
    b.apply(s3);
    expect(busy(s3)).toBeCloseTo(0.5, 12);
    // reconfigured: a new instance (new UUID) gets a counter of its own from 0
    const s4 = sample(3500, [{ uuid: 'MIG-B', active: 50, spanMs: 1000 }]);
    b.apply(s4);
    expect(busy(s4)).toBe(0);
    const back = sample(4500, [{ uuid: 'MIG-A', active: 50, spanMs: 1000 }]);
    b.apply(back);
    expect(busy(back)).toBe(0);
  });
});
