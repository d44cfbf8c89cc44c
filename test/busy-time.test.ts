import { describe, expect, it } from 'vitest';
import type { NodeSample } from '../src/sample.js';
import { BusyTimeIntegrator } from '../src/sampler/busy-time.js';

function sample(atMs: number, gpus: { uuid: string; util?: number }[]): NodeSample {
  return {
    takenAtMs: atMs,
    monotonicMs: atMs,
    driverVersion: 'x',
    lostGpus: [],
    collectors: [],
    tickSeconds: 0,
    gpus: gpus.map((g, index) => ({
      index, uuid: g.uuid, name: 'n', pciBusId: 'p', minor: index, mig: [], processes: [],
      values: g.util === undefined ? {} : { gpuUtilPercent: g.util, memCopyUtilPercent: g.util / 2 },
    })),
  };
}

describe('BusyTimeIntegrator', () => {
  it('integrates utilization x elapsed time at every sample', () => {
    const b = new BusyTimeIntegrator();
    const s0 = sample(0, [{ uuid: 'A', util: 50 }]);
    b.apply(s0);
    expect(s0.gpus[0]!.values.gpuBusySeconds).toBe(0);
    const s1 = sample(2000, [{ uuid: 'A', util: 50 }]);
    b.apply(s1);
    expect(s1.gpus[0]!.values.gpuBusySeconds).toBeCloseTo(1.0);
    expect(s1.gpus[0]!.values.memCopyBusySeconds).toBeCloseTo(0.5);
    const s2 = sample(2500, [{ uuid: 'A', util: 100 }]);
    b.apply(s2);
    expect(s2.gpus[0]!.values.gpuBusySeconds).toBeCloseTo(1.5);
  });

  it('forgets GPUs that leave (a returning GPU starts a fresh counter)', () => {
    const b = new BusyTimeIntegrator();
    b.apply(sample(0, [{ uuid: 'A', util: 100 }]));
    b.apply(sample(1000, [{ uuid: 'A', util: 100 }]));
    b.apply(sample(2000, [{ uuid: 'B', util: 100 }]));
    const back = sample(3000, [{ uuid: 'A', util: 100 }]);
    b.apply(back);
    expect(back.gpus[0]!.values.gpuBusySeconds).toBe(0);
  });

  it('adds no counter to a GPU without utilization (e.g. MIG-enabled)', () => {
    const b = new BusyTimeIntegrator();
    const s = sample(0, [{ uuid: 'M' }]);
    b.apply(s);
    expect(s.gpus[0]!.values.gpuBusySeconds).toBeUndefined();
  });
});
