import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Collector } from '../src/collectors/collector.js';
import { migCollector } from '../src/collectors/mig.js';
import { averageProcessUtilization, processesCollector } from '../src/collectors/processes.js';
import { NvmlBinding } from '../src/native/nvml-binding.js';
import type { GpuSample, NodeSample } from '../src/sample.js';
import { Ticker } from '../src/sampler/tick.js';
import { fixtureScenario } from './support/fixture-scenario.js';

/**
 * The processes collector through a real Ticker and the koffi binding on the simulated NVML:
 * test/fixtures/processes.sim (GPU 0 whole, GPU 1 in MIG mode), copied so tests can change it.
 */
const scenario = fixtureScenario('processes');
const { node, statePath, original } = scenario;
let nvml: NvmlBinding;

const GiB = 1024 ** 3;

beforeAll(() => {
  process.env.KGE_SIM_STATE = statePath;
  nvml = new NvmlBinding({ libraryPath: node.libraryPath });
  nvml.init();
});
afterAll(() => nvml.shutdown());

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Rewrites the scenario (the fixture plus these lines) and has the library re-read it. */
function setScenario(extra: string): Promise<void> {
  return scenario.write(extra ? `${original}\n${extra}\n` : original);
}

afterEach(() => scenario.restore());

function gpu(sample: NodeSample, index: number): GpuSample {
  const g = sample.gpus.find((x) => x.index === index);
  if (!g) throw new Error(`GPU ${index} missing from the sample`);
  return g;
}

function report(sample: NodeSample, name: string) {
  return sample.collectors.find((c) => c.name === name)!;
}

describe('processes collector', () => {
  it('lists the compute processes of a whole GPU with their memory (unknown memory left out)', () => {
    const s = new Ticker(nvml, [migCollector, processesCollector]).tick();
    expect(report(s, 'processes')).toMatchObject({ success: true });
    expect(gpu(s, 0).processes).toEqual([
      { pid: 1001, usedMemoryBytes: 8 * GiB },
      { pid: 1002, usedMemoryBytes: 2 * GiB },
      { pid: 1003 },
    ]);
  });

  it('puts processes of MIG instances on their MigSample with GPU and compute instance ids', () => {
    const s = new Ticker(nvml, [migCollector, processesCollector]).tick();
    const g1 = gpu(s, 1);
    expect(g1.processes).toEqual([]);
    expect(g1.mig.map((m) => [m.gpuInstanceId, m.processes])).toEqual([
      [1, [{ pid: 2001, usedMemoryBytes: 10 * GiB, gpuInstanceId: 1, computeInstanceId: 0 }]],
      [2, [{ pid: 2002, usedMemoryBytes: 3 * GiB, gpuInstanceId: 2, computeInstanceId: 0 }]],
    ]);
    // utilization per process is not available on MIG-enabled GPUs: absent, not a failure
    expect(g1.processUtilization).toBeUndefined();
    expect(report(s, 'processes').success).toBe(true);
  });

  it('does not list a MIG GPU\'s processes on the whole GPU when the mig collector is off', () => {
    const s = new Ticker(nvml, [processesCollector]).tick();
    expect(gpu(s, 1).processes).toEqual([]);
    expect(gpu(s, 1).mig).toEqual([]);
    expect(gpu(s, 0).processes.map((p) => p.pid)).toEqual([1001, 1002, 1003]);
    expect(report(s, 'processes').success).toBe(true);
  });

  it('averages utilization per pid over the samples since the previous tick', async () => {
    const ticker = new Ticker(nvml, [migCollector, processesCollector]);
    const first = gpu(ticker.tick(), 0).processUtilization!;
    expect(first.map((u) => u.pid)).toEqual([1001, 1002]);
    // utilization is averaged over the driver samples since the last tick: wait for at least 3
    // (every 50 ms), as any 3 consecutive samples of pid 1002 average strictly between 20 and 60
    await sleep(200);
    const util = gpu(ticker.tick(), 0).processUtilization!;
    // pid 1003 has no samples
    expect(util.map((u) => u.pid)).toEqual([1001, 1002]);
    expect(util[0]).toEqual({ pid: 1001, smUtilPercent: 50, memUtilPercent: 20, encUtilPercent: 5, decUtilPercent: 3 });
    const p2 = util[1]!;
    // SM alternates 20 and 60 every other sample: any 3+ consecutive samples average strictly between
    expect(p2.smUtilPercent).toBeGreaterThan(20);
    expect(p2.smUtilPercent).toBeLessThan(60);
    expect(p2.memUtilPercent).toBeGreaterThanOrEqual(10);
    expect(p2.memUtilPercent).toBeLessThanOrEqual(30);
    expect(p2.encUtilPercent).toBe(0);
  });

  it('a failing utilization call marks the collector failed while memory values still arrive', async () => {
    await setScenario('fault nvmlDeviceGetProcessUtilization 0 999');
    const s = new Ticker(nvml, [migCollector, processesCollector]).tick();
    const r = report(s, 'processes');
    expect(r.success).toBe(false);
    expect(r.error).toContain('GPU 0');
    expect(r.error).toContain('nvmlDeviceGetProcessUtilization');
    expect(gpu(s, 0).processes.map((p) => p.pid)).toEqual([1001, 1002, 1003]);
    expect(gpu(s, 0).processUtilization).toBeUndefined(); // failed: unknown, not 0 %
    expect(gpu(s, 1).mig.flatMap((m) => m.processes.map((p) => p.pid))).toEqual([2001, 2002]);
    expect(report(s, 'mig').success).toBe(true);
  });

  it('a failing process list on one GPU loses neither the other GPU nor the utilization', async () => {
    await setScenario('fault nvmlDeviceGetComputeRunningProcesses_v3 1 999');
    const s = new Ticker(nvml, [migCollector, processesCollector]).tick();
    expect(report(s, 'processes').success).toBe(false);
    expect(report(s, 'processes').error).toContain('GPU 1');
    expect(gpu(s, 1).mig.flatMap((m) => m.processes)).toEqual([]);
    expect(gpu(s, 0).processes).toHaveLength(3);
    expect(gpu(s, 0).processUtilization!.map((u) => u.pid)).toEqual([1001, 1002]);
  });
});

describe('averageProcessUtilization', () => {
  it('means every field per pid and sorts by pid', () => {
    const at = (pid: number, t: number, sm: number, mem: number, enc = 0, dec = 0) => ({
      pid, timestampUs: t, smUtilPercent: sm, memUtilPercent: mem, encUtilPercent: enc, decUtilPercent: dec,
    });
    expect(averageProcessUtilization([at(9, 1, 10, 0, 4), at(3, 1, 50, 10), at(9, 2, 30, 6), at(9, 3, 20, 3, 2, 9)])).toEqual([
      { pid: 3, smUtilPercent: 50, memUtilPercent: 10, encUtilPercent: 0, decUtilPercent: 0 },
      { pid: 9, smUtilPercent: 20, memUtilPercent: 3, encUtilPercent: 2, decUtilPercent: 3 },
    ]);
    expect(averageProcessUtilization([])).toEqual([]);
  });
});

describe('Ticker per-GPU state', () => {
  /** Counts its own calls per GPU in the state bag. */
  function counter(seen: Map<number, number>): Collector {
    return {
      name: 'counter',
      defaultEnabled: true,
      description: 'test',
      collect(_reader, target) {
        const n = ((target.state.get('counter.n') as number | undefined) ?? 0) + 1;
        target.state.set('counter.n', n);
        seen.set(target.sample.index, n);
      },
    };
  }

  it('keeps a bag per GPU across ticks and drops it when the GPU goes away or is swapped', async () => {
    const seen = new Map<number, number>();
    const ticker = new Ticker(nvml, [counter(seen)]);
    ticker.tick();
    ticker.tick();
    expect([...seen]).toEqual([[0, 2], [1, 2]]);

    await setScenario('device_count 1');
    seen.clear();
    ticker.tick();
    expect([...seen]).toEqual([[0, 3]]);

    await setScenario('');
    ticker.tick();
    expect([...seen]).toEqual([[0, 4], [1, 1]]);

    await setScenario('gpu.0.uuid GPU-0a1b2c3d-9999-4000-8000-000000000009');
    ticker.tick();
    expect([...seen]).toEqual([[0, 1], [1, 2]]);
  });

  it('does not leak the state bag into the samples', () => {
    const s = new Ticker(nvml, [processesCollector]).tick();
    expect(Object.keys(gpu(s, 0)).sort()).toEqual(['index', 'mig', 'minor', 'name', 'pciBusId', 'processUtilization', 'processes', 'uuid', 'values']);
    expect(Object.keys(gpu(s, 1))).not.toContain('processUtilization'); // MIG GPU: not read
    expect(() => structuredClone(s)).not.toThrow();
  });
});
