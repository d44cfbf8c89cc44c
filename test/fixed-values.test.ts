import { describe, expect, it } from 'vitest';
import { collectorNamed } from '../src/collectors/index.js';
import type { NvmlBinding } from '../src/native/nvml-binding.js';
import { NVML_ERROR_NOT_SUPPORTED, NvmlError } from '../src/native/nvml-return.js';
import type { GpuSample, NodeSample } from '../src/sample.js';
import { Ticker } from '../src/sampler/tick.js';
import { VALUES } from '../src/values/value-table.js';
import { fixtureScenario } from './support/fixture-scenario.js';
import { scenarioBinding } from './support/scenario-binding.js';

/**
 * Values the hardware fixes (maximum clocks, the widest PCIe link the GPU and its slot allow):
 * read for a new GPU and once per slow interval, carried in between, through a real Ticker and
 * the koffi binding on the simulated NVML (a copy of scenarios/workstation.sim: tests change it).
 */
const scenario = fixtureScenario('workstation', { dir: 'scenarios' });
const realBinding = scenarioBinding(scenario);

const COLLECTORS = [collectorNamed('clocks'), collectorNamed('pcie_link')];
const FIXED_KEYS = Object.entries(VALUES)
  .filter(([, v]) => v.read.kind === 'call' && v.read.fixed)
  .map(([k]) => k)
  .sort();

interface Counted {
  binding: NvmlBinding;
  /** Calls of nvmlDeviceGetMaxClockInfo so far. */
  maxClockCalls: () => number;
  /** Calls of nvmlDeviceGetCurrPcieLinkGeneration (read every tick) so far. */
  linkGenCalls: () => number;
}

/** The real binding with two getters counted, and the maximum-clock getter failing with `failWith` while it is set. */
function counted(failWith?: () => number | undefined): Counted {
  let maxClock = 0;
  let linkGen = 0;
  const nvml = realBinding();
  const binding = Object.create(nvml) as NvmlBinding;
  binding.maxClockMHz = (device, type) => {
    maxClock++;
    const code = failWith?.();
    if (code !== undefined) throw new NvmlError('nvmlDeviceGetMaxClockInfo', code, 'injected');
    return nvml.maxClockMHz(device, type);
  };
  binding.pcieLinkGeneration = (device) => {
    linkGen++;
    return nvml.pcieLinkGeneration(device);
  };
  return { binding, maxClockCalls: () => maxClock, linkGenCalls: () => linkGen };
}

function gpu0(sample: NodeSample): GpuSample {
  const g = sample.gpus.find((x) => x.index === 0);
  if (!g) throw new Error('GPU 0 missing from the sample');
  return g;
}

function report(sample: NodeSample, name: string) {
  const r = sample.collectors.find((c) => c.name === name);
  if (!r) throw new Error(`no report for ${name}`);
  return r;
}

describe('values the hardware fixes', () => {
  let clock = 0;
  const now = (): number => clock;

  it('are the maximum clocks and the maximum PCIe link, nothing else', () => {
    expect(FIXED_KEYS).toEqual(['maxGraphicsClockMHz', 'maxMemClockMHz', 'maxPcieLinkGen', 'maxPcieLinkWidth', 'maxSmClockMHz']);
  });

  it('are read on the first tick, carried until the slow interval has passed, then read again', async () => {
    clock = 0;
    const c = counted();
    const ticker = new Ticker(c.binding, COLLECTORS, { slowIntervalMs: 30_000, now });
    const first = gpu0(ticker.tick());
    expect(first.values).toMatchObject({ maxSmClockMHz: 2100, maxMemClockMHz: 8001, maxGraphicsClockMHz: 2100, maxPcieLinkGen: 4, maxPcieLinkWidth: 16 });
    expect(c.maxClockCalls()).toBe(3);

    await scenario.edit(['gpu.0.max_clock_sm 2100', 'gpu.0.max_clock_sm 1800'], ['gpu.0.pcie_max_link_gen 4', 'gpu.0.pcie_max_link_gen 3'], ['gpu.0.pcie_link_gen 4', 'gpu.0.pcie_link_gen 2']);
    for (const t of [1000, 15_000, 29_000]) {
      clock = t;
      const s = ticker.tick();
      // the current link generation is read every tick; the maxima are carried, every one of them
      expect(gpu0(s).values.pcieLinkGen).toBe(2);
      expect(gpu0(s).values).toMatchObject({ maxSmClockMHz: 2100, maxMemClockMHz: 8001, maxGraphicsClockMHz: 2100, maxPcieLinkGen: 4, maxPcieLinkWidth: 16 });
      expect(report(s, 'clocks')).toMatchObject({ success: true });
    }
    expect(c.maxClockCalls()).toBe(3);
    expect(c.linkGenCalls()).toBe(4);

    // due: a tick a few ms early still counts, as for the slow collectors
    clock = 29_990;
    const due = gpu0(ticker.tick());
    expect(due.values).toMatchObject({ maxSmClockMHz: 1800, maxPcieLinkGen: 3 });
    expect(c.maxClockCalls()).toBe(6);
    clock = 31_000;
    ticker.tick();
    expect(c.maxClockCalls()).toBe(6);
  });

  it('are read at once for a GPU that appears (a new UUID at the index)', async () => {
    clock = 0;
    const c = counted();
    const ticker = new Ticker(c.binding, COLLECTORS, { slowIntervalMs: 30_000, now });
    ticker.tick();
    await scenario.edit(['gpu.0.uuid GPU-d440e504-54f3-1af3-1768-13e02ea68ef7', 'gpu.0.uuid GPU-d440e504-54f3-1af3-1768-13e02ea6ffff'], ['gpu.0.max_clock_sm 2100', 'gpu.0.max_clock_sm 1800']);
    clock = 1000;
    const s = gpu0(ticker.tick());
    expect(s.uuid).toBe('GPU-d440e504-54f3-1af3-1768-13e02ea6ffff');
    expect(s.values.maxSmClockMHz).toBe(1800);
    expect(c.maxClockCalls()).toBe(6);
  });

  it('are read again on every tick after a failed read, each failure reported, until one succeeds', () => {
    clock = 0;
    let failing = true;
    const c = counted(() => (failing ? 999 : undefined));
    const ticker = new Ticker(c.binding, COLLECTORS, { slowIntervalMs: 30_000, now });
    for (const t of [0, 1000]) {
      clock = t;
      const s = ticker.tick();
      expect(report(s, 'clocks')).toMatchObject({ success: false, error: expect.stringContaining('nvmlDeviceGetMaxClockInfo') });
      expect(gpu0(s).values).not.toHaveProperty('maxSmClockMHz');
      // the other values of the collector are still there
      expect(gpu0(s).values.memClockMHz).toBe(8001);
    }
    expect(c.maxClockCalls()).toBe(6);
    failing = false;
    clock = 2000;
    const ok = ticker.tick();
    expect(report(ok, 'clocks')).toMatchObject({ success: true });
    expect(gpu0(ok).values.maxSmClockMHz).toBe(2100);
    clock = 3000;
    expect(gpu0(ticker.tick()).values.maxSmClockMHz).toBe(2100);
    expect(c.maxClockCalls()).toBe(9);
  });

  it('stay absent without a call per tick where the GPU does not support them', () => {
    clock = 0;
    const c = counted(() => NVML_ERROR_NOT_SUPPORTED);
    const ticker = new Ticker(c.binding, COLLECTORS, { slowIntervalMs: 30_000, now });
    for (const t of [0, 1000, 2000]) {
      clock = t;
      const s = ticker.tick();
      expect(report(s, 'clocks')).toMatchObject({ success: true });
      expect(gpu0(s).values).not.toHaveProperty('maxSmClockMHz');
      expect(gpu0(s).values.maxPcieLinkWidth).toBe(16);
    }
    expect(c.maxClockCalls()).toBe(3);
  });

  it('are read on every tick without a slow interval (the default)', async () => {
    const c = counted();
    const ticker = new Ticker(c.binding, COLLECTORS);
    expect(gpu0(ticker.tick()).values.maxSmClockMHz).toBe(2100);
    await scenario.edit(['gpu.0.max_clock_sm 2100', 'gpu.0.max_clock_sm 1800']);
    expect(gpu0(ticker.tick()).values.maxSmClockMHz).toBe(1800);
    expect(c.maxClockCalls()).toBe(6);
  });
});
