import { appendFileSync, readFileSync, writeFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NvmlLibraryNotFoundError, libraryCandidates } from '../src/native/library-discovery.js';
import { ABI_SIZES, NvmlBinding } from '../src/native/nvml-binding.js';
import { ClockType, FieldId } from '../src/native/nvml-constants.js';
import { NvmlError } from '../src/native/nvml-return.js';
import { scenarioCopy } from './support/exporter-process.js';

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
      nvmlFieldValue_t: 40,
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
    appendFileSync(statePath, '\nfault nvmlDeviceGetPowerUsage 2 4\nfault nvmlDeviceGetTemperature * 15\n');
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
      writeFileSync(statePath, original);
      await new Promise((r) => setTimeout(r, 60));
    }
    expect(nvml.powerUsageMilliwatts(nvml.deviceByIndex(2))).toBeGreaterThan(0);
  });
});

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
