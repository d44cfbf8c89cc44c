import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NvmlBinding } from '../src/native/nvml-binding.js';
import { fixtureScenario } from './support/fixture-scenario.js';
import { nvmlError } from './support/nvml-error.js';

/** A driver without MemoryInfo_v2, ComputeRunningProcesses_v3 and ClocksEventReasons (scenarios/old-driver.sim, a copy). */
const scenario = fixtureScenario('old-driver', { dir: 'scenarios' });
const { node } = scenario;
let nvml: NvmlBinding;

beforeAll(() => {
  process.env.KGE_SIM_STATE = scenario.statePath;
  nvml = new NvmlBinding({ libraryPath: node.libraryPath });
  nvml.init();
});
afterAll(() => nvml.shutdown());

describe('old driver (symbols missing)', () => {
  it('builds a library that really lacks the symbols', () => {
    expect(node.omittedSymbols).toEqual(['nvmlDeviceGetMemoryInfo_v2', 'nvmlDeviceGetComputeRunningProcesses_v3', 'nvmlDeviceGetCurrentClocksEventReasons']);
  });

  it('falls back to the older calls instead of failing, the missing symbols listed once when it loads', () => {
    const missing = ['nvmlDeviceGetComputeRunningProcesses_v3', 'nvmlDeviceGetCurrentClocksEventReasons', 'nvmlDeviceGetMemoryInfo_v2'];
    expect([...nvml.missingSymbols].sort()).toEqual(missing);
    const d = nvml.deviceByIndex(0);
    for (let pass = 0; pass < 2; pass++) {
      const m = nvml.memoryInfo(d);
      expect(m.reserved).toBeUndefined();
      expect(m.used + m.free).toBe(m.total);
      expect(nvml.computeProcesses(d).map((p) => p.pid)).toEqual([777]);
      expect(nvml.clocksEventReasons(d)).toBe(0);
    }
    expect([...nvml.missingSymbols].sort()).toEqual(missing);
  });

  it('names the older symbol it called in its errors', async () => {
    await scenario.append('\nfault nvmlDeviceGetMemoryInfo * 999\nfault nvmlDeviceGetComputeRunningProcesses_v2 * 999\nfault nvmlDeviceGetCurrentClocksThrottleReasons * 999\n');
    try {
      const d = nvml.deviceByIndex(0);
      expect(nvmlError(() => nvml.memoryInfo(d))).toMatchObject({ call: 'nvmlDeviceGetMemoryInfo', code: 999 });
      expect(nvmlError(() => nvml.computeProcesses(d))).toMatchObject({ call: 'nvmlDeviceGetComputeRunningProcesses_v2', code: 999 });
      expect(nvmlError(() => nvml.clocksEventReasons(d))).toMatchObject({ call: 'nvmlDeviceGetCurrentClocksThrottleReasons', code: 999 });
    } finally {
      await scenario.restore();
    }
  });
});
