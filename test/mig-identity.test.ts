import { describe, expect, it } from 'vitest';
import { migCollector } from '../src/collectors/mig.js';
import type { NvmlBinding } from '../src/native/nvml-binding.js';
import type { MigSample, NodeSample } from '../src/sample.js';
import { Ticker } from '../src/sampler/tick.js';
import { fixtureScenario } from './support/fixture-scenario.js';
import { scenarioBinding } from './support/scenario-binding.js';

/**
 * The mig collector reads what identifies a MIG instance (GPU and compute instance ids, profile)
 * once per MIG device UUID, and each tick only the list, the UUIDs and the memory: through a real
 * Ticker and the koffi binding on the simulated NVML (a copy of scenarios/a100-mig.sim).
 */
const scenario = fixtureScenario('a100-mig', { dir: 'scenarios' });
const realBinding = scenarioBinding(scenario);

const MIG0 = 'MIG-815d2802-8272-83e0-ad84-173581569969';
const MIG3 = 'MIG-2824c1c0-9972-4caf-4941-d4072014b3ce';

/** The real binding with the identity getters and the per-tick getters counted. */
function counted() {
  const calls = { gpuInstanceId: 0, computeInstanceId: 0, name: 0, uuid: 0, memoryInfo: 0 };
  const nvml = realBinding();
  const binding = Object.create(nvml) as NvmlBinding;
  for (const name of Object.keys(calls) as (keyof typeof calls)[]) {
    const real = nvml[name].bind(nvml) as (...args: unknown[]) => unknown;
    (binding as unknown as Record<string, unknown>)[name] = (...args: unknown[]) => {
      calls[name]++;
      return real(...args);
    };
  }
  return { binding, calls };
}

function instances(sample: NodeSample): MigSample[] {
  const g = sample.gpus.find((x) => x.index === 0);
  if (!g) throw new Error('GPU 0 missing from the sample');
  return g.mig;
}

const identity = (m: MigSample) => [m.uuid, m.gpuInstanceId, m.computeInstanceId, m.profile];

describe('MIG instance identity', () => {
  it('is read once per instance; the list, UUIDs and memory every tick', () => {
    const { binding, calls } = counted();
    const ticker = new Ticker(binding, [migCollector]);
    const first = instances(ticker.tick());
    expect(first.map(identity)).toEqual([
      [MIG0, 2, 0, '3g.40gb'],
      ['MIG-e58b0810-06f7-e3df-c967-a64cb14028d5', 3, 0, '2g.20gb'],
      ['MIG-12c9791e-558e-08ba-a719-6b50ac2f8670', 9, 0, '1g.10gb'],
      [MIG3, 10, 0, '1g.10gb'],
    ]);
    const afterFirst = { ...calls };
    expect(afterFirst.gpuInstanceId).toBe(4);
    for (let i = 0; i < 3; i++) {
      const s = instances(ticker.tick());
      expect(s.map(identity)).toEqual(first.map(identity));
      expect(s[0]!.values.fbTotalBytes).toBe(40192 * 2 ** 20);
    }
    expect(calls.gpuInstanceId).toBe(4);
    expect(calls.computeInstanceId).toBe(4);
    expect(calls.name - afterFirst.name).toBe(0);
    expect(calls.memoryInfo - afterFirst.memoryInfo).toBe(3 * 4);
    expect(calls.uuid - afterFirst.uuid).toBeGreaterThanOrEqual(3 * 4);
  });

  it('is read at once for an instance created again (a new UUID), with its new ids and profile', async () => {
    const { binding, calls } = counted();
    const ticker = new Ticker(binding, [migCollector]);
    ticker.tick();
    await scenario.edit([`gpu.0.mig.3.uuid ${MIG3}`, 'gpu.0.mig.3.uuid MIG-2824c1c0-9972-4caf-4941-d4072014ffff'], ['gpu.0.mig.3.profile 1g.10gb', 'gpu.0.mig.3.profile 1g.20gb'], ['gpu.0.mig.3.gi 10', 'gpu.0.mig.3.gi 11']);
    const s = instances(ticker.tick());
    expect(identity(s[3]!)).toEqual(['MIG-2824c1c0-9972-4caf-4941-d4072014ffff', 11, 0, '1g.20gb']);
    expect(calls.gpuInstanceId).toBe(5);
  });

  it('is forgotten when the instance is no longer listed: a UUID listed again is read again', async () => {
    const { binding, calls } = counted();
    const ticker = new Ticker(binding, [migCollector]);
    ticker.tick();
    await scenario.write(scenario.original.split('\n').filter((l) => !l.startsWith('gpu.0.mig.3.')).join('\n'));
    expect(instances(ticker.tick()).map((m) => m.uuid)).not.toContain(MIG3);
    // the same UUID back with other ids: only a forgotten identity shows them
    await scenario.write(scenario.original.replace('gpu.0.mig.3.gi 10', 'gpu.0.mig.3.gi 12'));
    const back = instances(ticker.tick());
    expect(identity(back[3]!)).toEqual([MIG3, 12, 0, '1g.10gb']);
    expect(calls.gpuInstanceId).toBe(5);
  });
});
