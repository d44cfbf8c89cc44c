import { readFileSync } from 'node:fs';
import koffi from 'koffi';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NvmlLibraryNotFoundError, libraryCandidates } from '../src/native/library-discovery.js';
import { ABI_SIZES, NvmlBinding } from '../src/native/nvml-binding.js';
import { ClockType, FieldId } from '../src/native/nvml-constants.js';
import { NvmlError } from '../src/native/nvml-return.js';
import { scenarioCopy } from './support/exporter-process.js';
import { appendScenarioLines, replaceScenarioFile } from '../src/sim/scenario-file.js';

/** The real koffi binding against the simulated libnvidia-ml.so.1 (8x H100 scenario). */
const { node, statePath } = scenarioCopy('h100x8');
let nvml: NvmlBinding;

beforeAll(() => {
  process.env.KGE_SIM_STATE = statePath;
  nvml = new NvmlBinding({ libraryPath: node.libraryPath });
  nvml.init();
});
afterAll(() => nvml.shutdown());

describe('ABI layout', () => {
  it('matches the C struct sizes', () => {
    expect(ABI_SIZES).toEqual({
      nvmlPciInfo_t: 68,
      nvmlUtilization_t: 8,
      nvmlMemory_t: 24,
      nvmlMemory_v2_t: 40,
      nvmlProcessInfo_t: 24,
      nvmlProcessUtilizationSample_t: 32,
      nvmlFieldValue_t: 40,
      nvmlViolationTime_t: 16,
      nvmlEventData_t: 32,
      nvmlGpmSupport_t: 8,
      nvmlGpmMetric_t: 40,
      nvmlGpmMetricsGet_t: 13_344,
    });
  });
});

describe('NvmlBinding on the simulated 8x H100 node', () => {
  it('reads system and identity values', () => {
    expect(nvml.driverVersion()).toMatch(/^\d+\.\d+/);
    expect(nvml.deviceCount()).toBe(8);
    const d = nvml.deviceByIndex(0);
    expect(nvml.uuid(d)).toMatch(/^GPU-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    expect(nvml.name(d)).toBe('NVIDIA H100 80GB HBM3');
    const pci = nvml.pciInfo(d);
    expect(pci.busId).toMatch(/^00000000:18:00\.0$/i);
    expect(pci.bus).toBe(0x18);
    expect(pci.pciDeviceId).toBe(0x233010de);
    expect(nvml.minorNumber(d)).toBe(0);
    expect(nvml.minorNumber(nvml.deviceByIndex(7))).toBe(7);
  });

  it('reads memory through MemoryInfo_v2 with reserved, and consistent totals', () => {
    const m = nvml.memoryInfo(nvml.deviceByIndex(0));
    expect(m.total).toBe(81559 * 1024 * 1024);
    expect(m.reserved).toBeGreaterThan(0);
    expect(m.used + m.free + (m.reserved ?? 0)).toBe(m.total);
  });

  it('reads utilization, temperature, power, energy, clocks and field values', () => {
    const d = nvml.deviceByIndex(0);
    const u = nvml.utilizationRates(d);
    expect(u.gpu).toBeGreaterThanOrEqual(0);
    expect(u.gpu).toBeLessThanOrEqual(100);
    expect(nvml.temperature(d)).toBeGreaterThan(10);
    expect(nvml.enforcedPowerLimitMilliwatts(d)).toBe(700_000);
    const e1 = nvml.totalEnergyMillijoules(d);
    expect(nvml.totalEnergyMillijoules(d)).toBeGreaterThanOrEqual(e1);
    expect(nvml.maxClockMHz(d, ClockType.SM)).toBe(1980);
    const [memTemp, unknown] = nvml.fieldValues(d, [FieldId.MEMORY_TEMP, 9999]);
    expect(memTemp!.code).toBe(0);
    expect(memTemp!.value).toBeGreaterThan(10);
    expect(unknown!.code).toBe(3);
    expect(unknown!.value).toBeUndefined();
  });

  it('lists running processes with the sizing pattern', () => {
    let total = 0;
    for (let i = 0; i < 8; i++) total += nvml.computeProcesses(nvml.deviceByIndex(i)).length;
    expect(total).toBeGreaterThan(0);
    const withProcs = [...Array(8).keys()].map((i) => nvml.computeProcesses(nvml.deviceByIndex(i))).find((p) => p.length > 0)!;
    expect(withProcs[0]!.pid).toBeGreaterThan(0);
    expect(withProcs[0]!.gpuInstanceId).toBeUndefined();
  });

  it('reports a fan-less GPU as NOT_SUPPORTED with an error that carries call, code, name and driver text', () => {
    try {
      nvml.fanSpeedPercent(nvml.deviceByIndex(0));
      expect.unreachable('H100 SXM has no fan');
    } catch (err) {
      expect(err).toBeInstanceOf(NvmlError);
      const e = err as NvmlError;
      expect(e.call).toBe('nvmlDeviceGetFanSpeed');
      expect(e.code).toBe(3);
      expect(e.codeName).toBe('NOT_SUPPORTED');
      expect(e.driverText).toBe('Not Supported');
      expect(e.notSupported).toBe(true);
    }
  });

  it('sees scenario changes while running, including injected faults', async () => {
    const original = readFileSync(statePath, 'utf8');
    appendScenarioLines(statePath, '\nfault nvmlDeviceGetPowerUsage 2 4\nfault nvmlDeviceGetTemperature * 15\n');
    await new Promise((r) => setTimeout(r, 60));
    try {
      expect(() => nvml.powerUsageMilliwatts(nvml.deviceByIndex(2))).toThrowError(/NO_PERMISSION/);
      expect(nvml.powerUsageMilliwatts(nvml.deviceByIndex(1))).toBeGreaterThan(0);
      const lost = (() => {
        try {
          nvml.temperature(nvml.deviceByIndex(5));
        } catch (err) {
          return err as NvmlError;
        }
      })();
      expect(lost?.gpuLost).toBe(true);
      expect(lost?.driverText).toBe('GPU is lost');
    } finally {
      replaceScenarioFile(statePath, original);
      await new Promise((r) => setTimeout(r, 60));
    }
    expect(nvml.powerUsageMilliwatts(nvml.deviceByIndex(2))).toBeGreaterThan(0);
  });
});

describe('process utilization (nvmlDeviceGetProcessUtilization)', () => {
  // test/fixtures/process-utilization.sim replaces the scenario for these tests
  const original = readFileSync(statePath, 'utf8');
  const fixture = readFileSync(new URL('./fixtures/process-utilization.sim', import.meta.url), 'utf8');
  const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

  beforeAll(async () => {
    replaceScenarioFile(statePath, fixture);
    await sleep(80);
    expect(nvml.deviceCount()).toBe(3);
  });
  afterAll(async () => {
    replaceScenarioFile(statePath, original);
    await sleep(80);
  });

  it('returns typed samples newer than lastSeen, and [] (NOT_FOUND) until the driver samples again', async () => {
    const d = nvml.deviceByIndex(0);
    // start early in a 300 ms sampling period, so the next sample cannot come between the calls below
    let all = nvml.processUtilization(d, 0);
    let newest = Math.max(...all.map((s) => s.timestampUs));
    for (let i = 0; i < 3 && Date.now() - newest / 1000 > 120; i++) {
      await sleep(Math.max(0, 300 - (Date.now() - newest / 1000)) + 20);
      all = nvml.processUtilization(d, 0);
      newest = Math.max(...all.map((s) => s.timestampUs));
    }
    expect(all.length).toBeGreaterThanOrEqual(2);
    const nowUs = Date.now() * 1000;
    // microseconds of the CPU wall clock
    expect(newest).toBeLessThanOrEqual(nowUs + 1000);
    expect(newest).toBeGreaterThan(nowUs - 600e6);
    const latest = all.filter((s) => s.timestampUs === newest).sort((a, b) => a.pid - b.pid);
    expect(latest.map((s) => s.pid)).toEqual([41200, 41999]);
    expect(latest[0]).toEqual({ pid: 41200, timestampUs: newest, smUtilPercent: 70, memUtilPercent: 35, encUtilPercent: 2, decUtilPercent: 1 });
    expect(latest[1]!.smUtilPercent).toBeGreaterThanOrEqual(10);
    expect(latest[1]!.smUtilPercent).toBeLessThanOrEqual(90);
    expect(latest[1]!.memUtilPercent).toBe(0);
    // the newest sampling instant only
    expect(nvml.processUtilization(d, newest - 1).map((s) => s.timestampUs)).toEqual([newest, newest]);
    // nothing newer yet (the driver samples every 300 ms)
    expect(nvml.processUtilization(d, BigInt(newest))).toEqual([]);
    await sleep(650);
    const later = nvml.processUtilization(d, newest);
    expect(later.length).toBeGreaterThanOrEqual(2);
    expect(later.every((s) => s.timestampUs > newest)).toBe(true);
    expect(new Set(later.map((s) => s.pid))).toEqual(new Set([41200, 41999]));
  });

  it('follows the sizing pattern: null buffer or a short one gets INSUFFICIENT_SIZE and the count', () => {
    // the same library, bound by hand to see the raw return codes
    const lib = koffi.load(node.libraryPath);
    const byIndex = lib.func('int nvmlDeviceGetHandleByIndex_v2(uint32 index, _Out_ void **dev)');
    const get = lib.func('int nvmlDeviceGetProcessUtilization(void *dev, void *samples, _Inout_ uint32 *count, uint64 lastSeen)');
    const dev: unknown[] = [null];
    expect(byIndex(0, dev)).toBe(0);
    const count = [0];
    expect(get(dev[0], null, count, 0n)).toBe(7);
    const needed = count[0]!;
    expect(needed).toBeGreaterThanOrEqual(2);
    expect(needed % 2).toBe(0); // one sample per process per sampling instant
    const short = [needed - 1];
    expect(get(dev[0], Buffer.alloc(32 * (needed - 1)), short, 0n)).toBe(7);
    expect(short[0]).toBeGreaterThanOrEqual(needed);
    const buf = Buffer.alloc(32 * (needed + 64));
    const room = [needed + 64];
    expect(get(dev[0], buf, room, 0n)).toBe(0);
    expect(room[0]).toBeGreaterThanOrEqual(needed);
    expect([41200, 41999]).toContain(buf.readUInt32LE(0));
    // a lastSeen in the future: nothing newer (NOT_FOUND)
    expect(get(dev[0], null, [0], BigInt(Date.now() + 3_600_000) * 1000n)).toBe(6);
    // processes without utilization keys are not sampled
    expect(get(byIndexOf(byIndex, 1), null, [0], 0n)).toBe(6);
    expect(nvml.processUtilization(nvml.deviceByIndex(1), 0)).toEqual([]);
  });

  it('is NOT_SUPPORTED on a MIG-enabled GPU and on MIG handles', () => {
    const gpu2 = nvml.deviceByIndex(2);
    for (const d of [gpu2, nvml.migDeviceByIndex(gpu2, 0)]) {
      try {
        nvml.processUtilization(d, 0);
        expect.unreachable('process utilization on MIG');
      } catch (err) {
        expect(err).toBeInstanceOf(NvmlError);
        expect((err as NvmlError).code).toBe(3);
        expect((err as NvmlError).notSupported).toBe(true);
      }
    }
  });

  it('reports usedGpuMemory = NVML_VALUE_NOT_AVAILABLE as unknown', () => {
    expect(nvml.computeProcesses(nvml.deviceByIndex(1))).toEqual([{ pid: 777 }, { pid: 778, usedGpuMemory: 2 * 1024 ** 3 }]);
  });

  it('obeys fault rules like every other call', async () => {
    appendScenarioLines(statePath, '\nfault nvmlDeviceGetProcessUtilization 0 4\n');
    await sleep(80);
    expect(() => nvml.processUtilization(nvml.deviceByIndex(0), 0)).toThrowError(/nvmlDeviceGetProcessUtilization failed: NVML_ERROR_NO_PERMISSION/);
    expect(nvml.processUtilization(nvml.deviceByIndex(1), 0)).toEqual([]);
    replaceScenarioFile(statePath, fixture);
    await sleep(80);
    expect(nvml.processUtilization(nvml.deviceByIndex(0), 0).length).toBeGreaterThan(0);
  });
});

function byIndexOf(byIndex: (i: number, out: unknown[]) => number, index: number): unknown {
  const out: unknown[] = [null];
  if (byIndex(index, out) !== 0) throw new Error(`no GPU ${index}`);
  return out[0];
}

describe('library discovery', () => {
  it('lists every place it tried when no library is found', () => {
    const candidates = libraryCandidates(undefined, '/nonexistent-driver-root');
    expect(candidates.map((c) => c.spec)).toContain('libnvidia-ml.so.1');
    expect(candidates.map((c) => c.spec)).toContain('/nonexistent-driver-root/usr/lib/x86_64-linux-gnu/libnvidia-ml.so.1');
    try {
      new NvmlBinding({ libraryPath: '/nonexistent/libnvidia-ml.so.1' });
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(NvmlLibraryNotFoundError);
      expect((err as Error).message).toContain('/nonexistent/libnvidia-ml.so.1 (no such file)');
    }
  });
});
