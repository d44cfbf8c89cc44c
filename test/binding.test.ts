import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import koffi from 'koffi';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NvmlLibraryNotFoundError, libraryCandidates } from '../src/native/library-discovery.js';
import { ABI_SIZES, NvmlBinding } from '../src/native/nvml-binding.js';
import { ClockType, FieldId } from '../src/native/nvml-constants.js';
import { NvmlError } from '../src/native/nvml-return.js';
import {
  FieldValue,
  fieldValueNumber,
  MEMORY_V2_VERSION,
  NVML_VALUE_TYPE,
  ProcessInfo,
  ProcessUtilizationSample,
  Value,
} from '../src/native/nvml-structs.js';
import { NVML_SYMBOLS, type DeviceUintSymbol, type NvmlSymbolName } from '../src/native/nvml-symbols.js';
import { ROOT } from './support/exporter-process.js';
import { fixtureScenario } from './support/fixture-scenario.js';

/** The real koffi binding against the simulated libnvidia-ml.so.1 (8x H100 scenario, a copy the tests change). */
const scenario = fixtureScenario('h100x8', { dir: 'scenarios' });
const { node, statePath } = scenario;
let nvml: NvmlBinding;

beforeAll(() => {
  process.env.KGE_SIM_STATE = statePath;
  nvml = new NvmlBinding({ libraryPath: node.libraryPath });
  nvml.init();
});
afterAll(() => nvml.shutdown());

/** The C sources and headers of the simulator (native/sim, not its build output), each with its text. */
function simulatorSources(): { file: string; text: string }[] {
  const dir = path.join(ROOT, 'native', 'sim');
  return (readdirSync(dir, { recursive: true }) as string[])
    .filter((f) => /\.[ch]$/.test(f) && !f.split(path.sep).includes('build'))
    .map((file) => ({ file, text: readFileSync(path.join(dir, file), 'utf8') }));
}

/**
 * The simulator's `_Static_assert(sizeof(T) == N, "T");` lines, from every C source and header
 * under native/sim: the sizes its C compiler holds the structs to.
 */
function simulatorStructSizes(): Record<string, number> {
  const sizes: Record<string, number> = {};
  for (const { file, text } of simulatorSources()) {
    for (const [, type, size, label] of text.matchAll(/^_Static_assert\(sizeof\((\w+)\) == (\d+), "(\w+)"\);$/gm)) {
      if (label !== type) continue; // another kind of assert about the struct
      if (sizes[type!] !== undefined && sizes[type!] !== Number(size)) throw new Error(`native/sim/${file}: ${type} asserted as ${sizes[type!]} and ${size}`);
      sizes[type!] = Number(size);
    }
  }
  return sizes;
}

/** The simulator's `_Static_assert(__builtin_offsetof(T, m) == N, "T.m");` lines: [T, m, N]. */
function simulatorMemberOffsets(): [type: string, member: string, offset: number][] {
  const out: [string, string, number][] = [];
  for (const { text } of simulatorSources()) {
    for (const [, type, member, offset, label] of text.matchAll(/^_Static_assert\(__builtin_offsetof\((\w+), (\w+)\) == (\d+), "([\w.]+)"\);$/gm)) {
      if (label === `${type}.${member}`) out.push([type!, member!, Number(offset)]);
    }
  }
  return out;
}

describe('ABI layout', () => {
  it('gives every struct the size the simulator\'s C compiler asserts, and asserts every struct the binding passes', () => {
    const asserted = simulatorStructSizes();
    expect(Object.keys(asserted).length).toBeGreaterThan(0);
    // both ways: each assert matches koffi's size, and each struct of ABI_SIZES has an assert
    expect(ABI_SIZES).toEqual(asserted);
  });

  it('puts every member the simulator asserts an offset of where its C compiler does', () => {
    const asserted = simulatorMemberOffsets();
    expect(asserted.length).toBeGreaterThan(0);
    // each struct is a koffi type registered under its C name
    expect(asserted.map(([type, member]) => [type, member, koffi.offsetof(type, member)])).toEqual(asserted);
  });

  it('lays out the structs read from reused buffers as the NVML header does', () => {
    expect(FieldValue.offset).toEqual({ fieldId: 0, scopeId: 4, timestamp: 8, latencyUsec: 16, valueType: 24, nvmlReturn: 28, value: 32 });
    expect(Value.size).toBe(8);
    expect(ProcessInfo.offset).toEqual({ pid: 0, usedGpuMemory: 8, gpuInstanceId: 16, computeInstanceId: 20 });
    expect(ProcessUtilizationSample.offset).toEqual({ pid: 0, timeStamp: 8, smUtil: 16, memUtil: 20, encUtil: 24, decUtil: 28 });
    expect(MEMORY_V2_VERSION).toBe(0x02000028);
  });

  it('decodes a field value by its value type; an unknown type is NaN', () => {
    const buf = Buffer.alloc(FieldValue.size);
    const value = FieldValue.offset.value;
    const cases: [type: number, write: () => void, expected: number][] = [
      [NVML_VALUE_TYPE.DOUBLE, () => Value.write.dVal(buf, value, 41.5), 41.5],
      [NVML_VALUE_TYPE.UNSIGNED_INT, () => Value.write.uiVal(buf, value, 0xfffffffe), 0xfffffffe],
      [NVML_VALUE_TYPE.UNSIGNED_LONG, () => Value.write.ulVal(buf, value, 2n ** 40n + 3n), 2 ** 40 + 3],
      [NVML_VALUE_TYPE.UNSIGNED_LONG_LONG, () => Value.write.ullVal(buf, value, 2n ** 52n + 1n), 2 ** 52 + 1],
      [NVML_VALUE_TYPE.SIGNED_LONG_LONG, () => Value.write.sllVal(buf, value, -(2n ** 40n)), -(2 ** 40)],
      [NVML_VALUE_TYPE.SIGNED_INT, () => Value.write.siVal(buf, value, -7), -7],
      [NVML_VALUE_TYPE.UNSIGNED_SHORT, () => Value.write.usVal(buf, value, 65535), 65535],
    ];
    for (const [type, write, expected] of cases) {
      buf.fill(0xff); // the union's other bytes: whatever the driver left there
      write();
      FieldValue.write.valueType(buf, 0, type);
      expect(fieldValueNumber(buf, 0), `value type ${type}`).toBe(expected);
    }
    FieldValue.write.valueType(buf, 0, 7);
    expect(fieldValueNumber(buf, 0)).toBeNaN();
  });
});

describe('the symbol table', () => {
  it('binds every symbol at load: the full simulated library lacks none', () => {
    expect(nvml.missingSymbols).toEqual([]);
  });

  it('names symbols by a type: a misspelt name or a getter of another shape does not compile', () => {
    // @ts-expect-error not a symbol of the table
    const misspelt: NvmlSymbolName = 'nvmlDeviceGetFanSpeeed';
    // @ts-expect-error nvmlDeviceGetTemperature takes a sensor before its unsigned int
    const otherShape: DeviceUintSymbol = 'nvmlDeviceGetTemperature';
    const getter: DeviceUintSymbol = 'nvmlDeviceGetFanSpeed';
    expect(Object.keys(NVML_SYMBOLS)).not.toContain(misspelt);
    expect(NVML_SYMBOLS[getter].params).not.toBe(NVML_SYMBOLS[otherShape].params);
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
    await scenario.append('\nfault nvmlDeviceGetPowerUsage 2 4\nfault nvmlDeviceGetTemperature * 15\n');
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
      await scenario.restore();
    }
    expect(nvml.powerUsageMilliwatts(nvml.deviceByIndex(2))).toBeGreaterThan(0);
  });
});

describe('process utilization (nvmlDeviceGetProcessUtilization)', () => {
  // test/fixtures/process-utilization.sim replaces the scenario for these tests
  const fixture = readFileSync(path.join(ROOT, 'test', 'fixtures', 'process-utilization.sim'), 'utf8');
  const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

  beforeAll(async () => {
    await scenario.write(fixture);
    expect(nvml.deviceCount()).toBe(3);
  });
  afterAll(() => scenario.restore());

  it('returns typed samples newer than lastSeen, and [] (NOT_FOUND) until the driver samples again', async () => {
    const d = nvml.deviceByIndex(0);
    // start early in a 300 ms sampling period, so the next sample cannot come between the calls below
    let all = nvml.processUtilization(d, 0);
    let newest = Math.max(...all.map((s) => s.timestampUs));
    for (let i = 0; i < 3 && Date.now() - newest / 1000 > 120; i++) {
      // the driver's next sampling instant: what is tested comes from its sampling period
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
    // until the driver's next sampling instant (300 ms period): one sample per process
    const later = await until(() => nvml.processUtilization(d, newest), (l) => l.length > 0, 3_000, 'a newer sampling instant');
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
    await scenario.write(`${fixture}\nfault nvmlDeviceGetProcessUtilization 0 4\n`);
    expect(() => nvml.processUtilization(nvml.deviceByIndex(0), 0)).toThrowError(/nvmlDeviceGetProcessUtilization failed: NVML_ERROR_NO_PERMISSION/);
    expect(nvml.processUtilization(nvml.deviceByIndex(1), 0)).toEqual([]);
    await scenario.write(fixture);
    expect(nvml.processUtilization(nvml.deviceByIndex(0), 0).length).toBeGreaterThan(0);
  });
});

/** Polls `get` (every 10 ms) until `done` holds for what it returns; that value. */
async function until<T>(get: () => T, done: (v: T) => boolean, timeoutMs: number, what: string): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = get();
    if (done(v)) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

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
