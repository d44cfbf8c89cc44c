import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NvmlBinding } from '../src/native/nvml-binding.js';
import { simulatedNode } from '../src/sim/harness.js';

/** A driver without MemoryInfo_v2, ComputeRunningProcesses_v3 and ClocksEventReasons. */
const node = simulatedNode('old-driver');
let nvml: NvmlBinding;

beforeAll(() => {
  process.env.KGE_SIM_STATE = node.statePath;
  nvml = new NvmlBinding({ libraryPath: node.libraryPath });
  nvml.init();
});
afterAll(() => nvml.shutdown());

describe('old driver (symbols missing)', () => {
  it('builds a library that really lacks the symbols', () => {
    expect(node.omittedSymbols).toEqual(['nvmlDeviceGetMemoryInfo_v2', 'nvmlDeviceGetComputeRunningProcesses_v3', 'nvmlDeviceGetCurrentClocksEventReasons']);
  });

  it('falls back to the older calls instead of failing', () => {
    const d = nvml.deviceByIndex(0);
    const m = nvml.memoryInfo(d);
    expect(m.reserved).toBeUndefined();
    expect(m.used + m.free).toBe(m.total);
    expect(nvml.computeProcesses(d).map((p) => p.pid)).toEqual([777]);
    expect(nvml.clocksEventReasons(d)).toBe(0);
    expect(nvml.missingSymbols.sort()).toEqual([
      'nvmlDeviceGetComputeRunningProcesses_v3',
      'nvmlDeviceGetCurrentClocksEventReasons',
      'nvmlDeviceGetMemoryInfo_v2',
    ]);
  });
});
