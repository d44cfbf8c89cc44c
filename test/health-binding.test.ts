import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import koffi from 'koffi';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NvmlBinding, type Device, type EventSet } from '../src/native/nvml-binding.js';
import { EventType, FieldId, FieldScope, PerfPolicy } from '../src/native/nvml-constants.js';
import { NOT_EXPORTED_TEXT } from '../src/native/nvml-symbols.js';
import { simulatedNode } from '../src/sim/harness.js';
import { appendScenarioLines } from '../src/sim/scenario-file.js';
import { fixtureScenario } from './support/fixture-scenario.js';
import { nvmlError } from './support/nvml-error.js';

/**
 * The GPU health calls (remapped rows, violation time, field values: ECC, retired pages, NVLink
 * and PCIe counters, as the collectors read them) and NVML events (waitForEvent: with timeout 0 as
 * the event poller reads them once a tick, and blocking waits), through the real koffi binding against the simulated library driven
 * by test/fixtures/health.sim (a copy: the tests change it while the library runs).
 */
const scenario = fixtureScenario('health');
const { node, statePath } = scenario;
const fixture = scenario.original;

let nvml: NvmlBinding;
/** performance.now() just before the library's first nvmlInit in this process: scenario time 0 is at or after it. */
let t0 = 0;
const simElapsed = (): number => performance.now() - t0;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * nvmlEventSetWait_v2 called on a libuv pool thread (koffi's asynchronous call on the library the
 * binding loaded), for the simulator's blocking wait while this thread frees the set: the exporter
 * itself only ever waits with timeout 0, on its sampling thread.
 */
function waitOnPoolThread(libraryPath: string, set: EventSet, timeoutMs: number): Promise<number> {
  const wait = koffi.load(libraryPath).func('int nvmlEventSetWait_v2(void *set, _Out_ uint8_t *data, unsigned int timeoutms)');
  const data = Buffer.alloc(64);
  return new Promise((resolve, reject) => wait.async(set, data, timeoutMs, (err: unknown, code: number) => (err ? reject(err as Error) : resolve(code))));
}

/** The ECC totals, as the ecc collector reads them: field values. */
const ECC_FIELDS = [FieldId.ECC_SBE_VOLATILE_TOTAL, FieldId.ECC_DBE_VOLATILE_TOTAL, FieldId.ECC_SBE_AGGREGATE_TOTAL, FieldId.ECC_DBE_AGGREGATE_TOTAL];

const addressOf = (d: Device): bigint => koffi.address(d);

beforeAll(() => {
  process.env.KGE_SIM_STATE = statePath;
  nvml = new NvmlBinding({ libraryPath: node.libraryPath });
  t0 = performance.now();
  nvml.init();
});
afterAll(() => nvml.shutdown());

describe('health calls on the simulated node', () => {
  it('reads ECC error totals for every error type and counter as field values', () => {
    const d = nvml.deviceByIndex(0);
    // corrected / uncorrected, volatile then aggregate
    expect(nvml.fieldValues(d, ECC_FIELDS)).toEqual([
      { fieldId: 3, code: 0, value: 12 },
      { fieldId: 4, code: 0, value: 1 },
      { fieldId: 5, code: 0, value: 340 },
      { fieldId: 6, code: 0, value: 2 },
    ]);
    // per physical GPU: a MIG-enabled GPU answers, its MIG handles do not
    const gpu2 = nvml.deviceByIndex(2);
    expect(nvml.fieldValues(gpu2, [FieldId.ECC_SBE_VOLATILE_TOTAL])).toEqual([{ fieldId: 3, code: 0, value: 0 }]);
    const onMig = nvml.fieldValues(nvml.migDeviceByIndex(gpu2, 0), ECC_FIELDS);
    expect(onMig.map((f) => [f.code, f.value])).toEqual(ECC_FIELDS.map(() => [3, undefined]));
  });

  it('reads retired pages pending (a field value) and remapped rows', () => {
    const d = nvml.deviceByIndex(0);
    expect(nvml.fieldValues(d, [FieldId.RETIRED_PAGES_PENDING])).toEqual([{ fieldId: 31, code: 0, value: 1 }]);
    expect(nvml.remappedRows(d)).toEqual({ correctable: 5, uncorrectable: 1, pending: 1, failure: 0 });
  });

  it('reports remapped rows as NOT_SUPPORTED in MIG mode, also as field values', () => {
    const gpu2 = nvml.deviceByIndex(2);
    const e = nvmlError(() => nvml.remappedRows(gpu2));
    expect(e.call).toBe('nvmlDeviceGetRemappedRows');
    expect(e.code).toBe(3);
    const fields = nvml.fieldValues(gpu2, [
      FieldId.REMAPPED_ROWS_CORRECTABLE,
      FieldId.REMAPPED_ROWS_UNCORRECTABLE,
      FieldId.REMAPPED_ROWS_PENDING,
      FieldId.REMAPPED_ROWS_FAILURE,
      FieldId.ECC_SBE_VOLATILE_TOTAL,
    ]);
    expect(fields.map((f) => f.code)).toEqual([3, 3, 3, 3, 0]);
    expect(fields[4]!.value).toBe(0);
  });

  it('reads clock violation time per policy; it grows with linear()', async () => {
    const d = nvml.deviceByIndex(0);
    const power = nvml.violationTime(d, PerfPolicy.POWER);
    expect(power.violationTimeNs).toBe(5_000_000_000);
    // referenceTime: the CPU wall clock in microseconds, also given as ns
    expect(power.referenceTimeNs).toBe(power.referenceTimeUs * 1000);
    expect(Math.abs(power.referenceTimeUs / 1000 - Date.now())).toBeLessThan(5_000);
    const before = nvml.violationTime(d, PerfPolicy.THERMAL);
    const simBefore = simElapsed();
    // the counter grows with time: let some pass between the two readings
    await sleep(20);
    const between = simElapsed() - simBefore;
    const after = nvml.violationTime(d, PerfPolicy.THERMAL);
    // linear(0, 250 ms per second): a quarter of scenario time, which is at most the time since t0
    expect(before.violationTimeNs).toBeLessThanOrEqual(simBefore * 0.25e6);
    expect(after.violationTimeNs - before.violationTimeNs).toBeGreaterThanOrEqual((between - 1) * 0.25e6);
    expect(after.referenceTimeUs).toBeGreaterThan(before.referenceTimeUs);
  });

  it('reads the new field ids with their value types decoded, and NVLink throughput per scope', async () => {
    const d = nvml.deviceByIndex(0);
    const ids = [3, 4, 5, 6, 29, 30, 31, 38, 45, 52, 59, 91, 94, 142, 143, 144, 145];
    const values = nvml.fieldValues(d, ids);
    expect(values.map((v) => [v.fieldId, v.code, v.value])).toEqual([
      [3, 0, 12],
      [4, 0, 1],
      [5, 0, 340],
      [6, 0, 2],
      [29, 0, 3],
      [30, 0, 1],
      [31, 0, 1],
      [38, 0, 21],
      [45, 0, 22],
      [52, 0, 23],
      [59, 0, 24],
      [91, 0, 12],
      [94, 0, 7],
      [142, 0, 5],
      [143, 0, 1],
      [144, 0, 1],
      [145, 0, 0],
    ]);
    const all = FieldScope.ALL_NVLINKS;
    const [tx, rx, txLink3, txBadLink, memTemp] = nvml.fieldValues(d, [
      { fieldId: FieldId.NVLINK_THROUGHPUT_DATA_TX, scopeId: all },
      { fieldId: FieldId.NVLINK_THROUGHPUT_DATA_RX, scopeId: all },
      { fieldId: FieldId.NVLINK_THROUGHPUT_DATA_TX, scopeId: 3 },
      { fieldId: FieldId.NVLINK_THROUGHPUT_DATA_TX, scopeId: 12 },
      FieldId.MEMORY_TEMP,
    ]);
    expect(tx).toEqual({ fieldId: 138, scopeId: 0xffffffff, code: 0, value: 120_000 });
    expect(txLink3).toEqual({ fieldId: 138, scopeId: 3, code: 0, value: 10_000 }); // an even share of 12 links
    expect(txBadLink).toEqual({ fieldId: 138, scopeId: 12, code: 2 });
    expect(memTemp).toEqual({ fieldId: 82, code: 3 }); // not in this fixture; plain ids give no scopeId back
    // linear(6000000 KiB, 1000000 KiB/s): a cumulative counter
    expect(rx!.code).toBe(0);
    expect(rx!.value).toBeGreaterThanOrEqual(6_000_000);
    const rxAt = simElapsed();
    // the counter grows with time: let some pass between the two readings
    await sleep(20);
    const between = simElapsed() - rxAt;
    const [rxLater] = nvml.fieldValues(d, [{ fieldId: FieldId.NVLINK_THROUGHPUT_DATA_RX, scopeId: all }]);
    expect(rxLater!.value! - rx!.value!).toBeGreaterThanOrEqual((between - 1) * 1000);
  });

  it('answers NOT_SUPPORTED for every call and field whose key the scenario leaves out', () => {
    const d = nvml.deviceByIndex(1);
    const calls: [string, () => unknown][] = [
      ['nvmlDeviceGetRemappedRows', () => nvml.remappedRows(d)],
      ['nvmlDeviceGetViolationStatus', () => nvml.violationTime(d, PerfPolicy.THERMAL)],
      ['nvmlDeviceGetSupportedEventTypes', () => nvml.supportedEventTypes(d)],
    ];
    for (const [call, fn] of calls) {
      const e = nvmlError(fn);
      expect([e.call, e.code, e.notSupported]).toEqual([call, 3, true]);
    }
    const ids = [3, 4, 5, 6, 29, 30, 31, 38, 45, 52, 59, 91, 94, 142, 143, 144, 145];
    const fields = nvml.fieldValues(d, [...ids, { fieldId: 138, scopeId: FieldScope.ALL_NVLINKS }, { fieldId: 139, scopeId: FieldScope.ALL_NVLINKS }]);
    expect(fields.every((f) => f.code === 3 && f.value === undefined)).toBe(true);
  });
});

describe('NVML events on the simulated node', () => {
  let a: EventSet;
  let b: EventSet;
  const XID = EventType.XID_CRITICAL;

  afterAll(() => scenario.restore());

  it('reports the supported event types of each GPU', () => {
    expect(nvml.supportedEventTypes(nvml.deviceByIndex(0))).toBe(0x400bn);
    expect(nvml.supportedEventTypes(nvml.deviceByIndex(2))).toBe(0xbn);
    const mig = nvml.migDeviceByIndex(nvml.deviceByIndex(2), 0);
    expect(nvmlError(() => nvml.supportedEventTypes(mig)).notSupported).toBe(true);
  });

  it('refuses types a GPU does not support and MIG handles, registering nothing', async () => {
    const c = nvml.createEventSet();
    try {
      const gpu2 = nvml.deviceByIndex(2);
      const e = nvmlError(() => nvml.registerEvents(gpu2, XID | EventType.GPU_UNAVAILABLE, c));
      expect([e.call, e.code, e.notSupported]).toEqual(['nvmlDeviceRegisterEvents', 3, true]);
      expect(nvmlError(() => nvml.registerEvents(nvml.deviceByIndex(1), XID, c)).notSupported).toBe(true);
      expect(nvmlError(() => nvml.registerEvents(nvml.migDeviceByIndex(gpu2, 0), XID, c)).notSupported).toBe(true);
      // nothing registered: the Xid of GPU 2 (due at 1200 ms) never comes to this set, and the wait times out
      const started = performance.now();
      expect(nvml.waitForEvent(c, 100)).toBeUndefined();
      expect(performance.now() - started).toBeGreaterThanOrEqual(80);
    } finally {
      nvml.freeEventSet(c);
    }
  });

  it('delivers an Xid at its scenario time with the GPU handle and the Xid code', async () => {
    a = nvml.createEventSet();
    b = nvml.createEventSet();
    const gpu0 = nvml.deviceByIndex(0);
    nvml.registerEvents(gpu0, XID | EventType.DOUBLE_BIT_ECC, a); // not SBE: the sbe line at 1100 ms is skipped
    nvml.registerEvents(nvml.deviceByIndex(2), XID, a);
    nvml.registerEvents(gpu0, XID, b);
    const ev = nvml.waitForEvent(a, 10_000);
    expect(simElapsed()).toBeGreaterThanOrEqual(1000); // `event 0 xid 79 1000`
    expect(ev).toBeDefined();
    expect(ev!.eventType).toBe(XID);
    expect(ev!.eventData).toBe(79n);
    expect(ev!.gpuInstanceId).toBeUndefined();
    expect(ev!.computeInstanceId).toBeUndefined();
    expect(addressOf(ev!.device)).toBe(addressOf(gpu0));
    expect(nvml.uuid(ev!.device)).toBe(nvml.uuid(gpu0));
  });

  it('attributes an Xid of a MIG instance to the parent GPU with its GPU and compute instance', async () => {
    const ev = nvml.waitForEvent(a, 10_000);
    expect(simElapsed()).toBeGreaterThanOrEqual(1200);
    expect(ev).toMatchObject({ eventType: XID, eventData: 31n, gpuInstanceId: 2, computeInstanceId: 0 });
    expect(addressOf(ev!.device)).toBe(addressOf(nvml.deviceByIndex(2)));
  });

  it('delivers events in time order, only types the set registered', async () => {
    const ev = nvml.waitForEvent(a, 10_000);
    expect(simElapsed()).toBeGreaterThanOrEqual(1300);
    expect(ev).toMatchObject({ eventType: EventType.DOUBLE_BIT_ECC, eventData: 0n });
    expect(addressOf(ev!.device)).toBe(addressOf(nvml.deviceByIndex(0)));
  });

  it('times out with undefined after about timeoutMs when nothing is due', async () => {
    const started = performance.now();
    expect(nvml.waitForEvent(a, 300)).toBeUndefined();
    const elapsed = performance.now() - started;
    expect(elapsed).toBeGreaterThanOrEqual(300 * 0.8);
    expect(elapsed).toBeLessThan(300 + 2_000);
  });

  it('delivers each event once per set: a second set gets it too, once', async () => {
    const ev = nvml.waitForEvent(b, 1_000);
    expect(ev).toMatchObject({ eventType: XID, eventData: 79n });
    // nothing else is due for b: a wait that does not block says so
    expect(nvml.waitForEvent(b, 0)).toBeUndefined();
  });

  it('delivers event lines added at run time, and not again after a reload that keeps them', async () => {
    // due a little later than now: the wait must hold it back until its time
    const at = Math.ceil(simElapsed()) + 100;
    await scenario.append(`\nevent 0 xid 48 ${at}\n`);
    const ev = nvml.waitForEvent(a, 10_000);
    expect(simElapsed()).toBeGreaterThanOrEqual(at);
    expect(ev).toMatchObject({ eventType: XID, eventData: 48n });
    expect(nvml.waitForEvent(b, 1_000)).toMatchObject({ eventType: XID, eventData: 48n });
    // another change to the file, re-read: the events it keeps (all due already) are not delivered again
    await scenario.append('# touched\n');
    expect(nvml.waitForEvent(a, 0)).toBeUndefined();
    expect(nvml.waitForEvent(b, 0)).toBeUndefined();
    // an identical second line is a second event
    await scenario.append(`event 0 xid 48 ${at}\n`);
    expect(nvml.waitForEvent(a, 1_000)).toMatchObject({ eventType: XID, eventData: 48n });
    expect(nvml.waitForEvent(a, 0)).toBeUndefined();
  });

  it('fails waits in a fault window, also one that opens while the wait blocks', async () => {
    const now = Math.ceil(simElapsed());
    await scenario.append(`fault nvmlEventSetWait_v2 * 999 0 ${now + 100_000}\n`);
    const e = nvmlError(() => nvml.waitForEvent(a, 1_000));
    expect([e.call, e.code, e.codeName]).toEqual(['nvmlEventSetWait_v2', 999, 'UNKNOWN']);
    await scenario.write(fixture);
    expect(nvml.waitForEvent(a, 0)).toBeUndefined();
    // opens a little later than now: while the wait below blocks
    const opens = Math.ceil(simElapsed()) + 100;
    await scenario.append(`fault nvmlEventSetWait_v2 * 15 ${opens} ${opens + 100_000}\n`);
    const started = performance.now();
    const lost = nvmlError(() => nvml.waitForEvent(a, 10_000));
    expect(lost.gpuLost).toBe(true);
    expect(simElapsed()).toBeGreaterThanOrEqual(opens);
    expect(performance.now() - started).toBeLessThan(5_000);
    await scenario.write(fixture);
  });

  it('only looks with a timeout of 0: an event already due comes at once, none due answers TIMEOUT at once', async () => {
    const c = nvml.createEventSet();
    try {
      nvml.registerEvents(nvml.deviceByIndex(0), XID, c);
      expect(nvml.waitForEvent(c, 0)).toBeUndefined();
      // a line due a little later, waited for; then one added with the same time, due already, written as another process would
      const at = Math.ceil(simElapsed()) + 50;
      appendScenarioLines(statePath, `\nevent 0 xid 62 ${at}\n`);
      expect(nvml.waitForEvent(c, 5_000)).toMatchObject({ eventType: XID, eventData: 62n });
      appendScenarioLines(statePath, `event 0 xid 63 ${at}\n`);
      expect(nvml.waitForEvent(c, 0)).toMatchObject({ eventType: XID, eventData: 63n });
      expect(nvml.waitForEvent(c, 0)).toBeUndefined();
      // one due later is not waited for
      appendScenarioLines(statePath, `event 0 xid 63 ${Math.ceil(simElapsed()) + 60_000}\n`);
      expect(nvml.waitForEvent(c, 0)).toBeUndefined();
    } finally {
      nvml.freeEventSet(c);
      await scenario.write(fixture);
    }
  });

  // Both waits are far longer than the test may run: only the change can end them in time. The
  // scenario is rewritten by another process, so the wait must notice the file itself, as it blocks
  // (the simulator watches the file instead of polling); the set is freed from this thread while a
  // pool thread waits on it.
  it('ends a blocked wait at once when the scenario file gains an event or the set is freed', { timeout: 20_000 }, async () => {
    const c = nvml.createEventSet();
    nvml.registerEvents(nvml.deviceByIndex(0), XID, c);
    try {
      // the writer starts after the wait has begun: it sleeps first, while this thread blocks
      const line = `event 0 xid 94 ${Math.ceil(simElapsed()) + 300}`;
      const writer = spawn('sh', ['-c', `sleep 0.2; printf '\\n%s\\n' "$1" >> "$2"`, 'sh', line, statePath], { stdio: 'ignore' });
      const started = performance.now();
      expect(nvml.waitForEvent(c, 120_000)).toMatchObject({ eventType: XID, eventData: 94n });
      expect(performance.now() - started).toBeLessThan(10_000);
      await new Promise((resolve) => writer.once('exit', resolve));
    } finally {
      nvml.freeEventSet(c);
    }
    const d = nvml.createEventSet();
    nvml.registerEvents(nvml.deviceByIndex(0), XID, d);
    const waiting = waitOnPoolThread(node.libraryPath, d, 120_000);
    await sleep(50); // the pool thread is in the wait by now (were it not, its first look finds the set freed)
    nvml.freeEventSet(d);
    expect(await waiting).toBe(2); // INVALID_ARGUMENT
    await scenario.write(fixture);
  });

  it('frees event sets; a freed set is an invalid argument', async () => {
    nvml.freeEventSet(a);
    nvml.freeEventSet(b);
    expect(nvmlError(() => nvml.freeEventSet(a)).code).toBe(2);
    expect(nvmlError(() => nvml.waitForEvent(b, 10)).code).toBe(2);
  });
});

describe('a driver without the health and event calls', () => {
  const old = simulatedNode(fileURLToPath(new URL('./fixtures/health-old-driver.sim', import.meta.url)));
  let legacy: NvmlBinding;

  beforeAll(() => {
    process.env.KGE_SIM_STATE = old.statePath;
    legacy = new NvmlBinding({ libraryPath: old.libraryPath });
    legacy.init();
    process.env.KGE_SIM_STATE = statePath;
  });
  afterAll(() => legacy.shutdown());

  it('is a separate library that really lacks the symbols', () => {
    expect(old.libraryPath).not.toBe(node.libraryPath);
    expect(legacy.driverVersion()).toBe('470.256.02');
    expect(legacy.deviceCount()).toBe(1);
  });

  it('lists every missing symbol once when it loads, and treats each call as not supported', async () => {
    const d = legacy.deviceByIndex(0);
    const calls: [string, () => unknown][] = [
      ['nvmlDeviceGetRemappedRows', () => legacy.remappedRows(d)],
      ['nvmlDeviceGetViolationStatus', () => legacy.violationTime(d, 0)],
      ['nvmlDeviceGetSupportedEventTypes', () => legacy.supportedEventTypes(d)],
      ['nvmlEventSetCreate', () => legacy.createEventSet()],
      ['nvmlDeviceRegisterEvents', () => legacy.registerEvents(d, EventType.XID_CRITICAL, null)],
      ['nvmlEventSetFree', () => legacy.freeEventSet(null)],
      ['nvmlEventSetWait_v2', () => legacy.waitForEvent(null, 10)],
    ];
    const missing = calls.map(([call]) => call).sort();
    // known before any of them is called
    expect([...legacy.missingSymbols].sort()).toEqual(missing);
    for (let pass = 0; pass < 2; pass++) {
      for (const [call, fn] of calls) {
        const e = nvmlError(fn);
        expect([e.call, e.code, e.codeName, e.notSupported, e.driverText]).toEqual([call, 13, 'FUNCTION_NOT_FOUND', true, NOT_EXPORTED_TEXT]);
        expect(e.message).toBe(`${call} failed: NVML_ERROR_FUNCTION_NOT_FOUND (13): symbol not exported by this driver`);
      }
    }
    // listed once, however often called
    expect([...legacy.missingSymbols].sort()).toEqual(missing);
    // field values are a different symbol: still there, and ECC and retired pages come through them
    expect(legacy.fieldValues(d, [FieldId.ECC_SBE_VOLATILE_TOTAL, FieldId.RETIRED_PAGES_PENDING])).toEqual([
      { fieldId: 3, code: 0, value: 4 },
      { fieldId: 31, code: 0, value: 0 },
    ]);
  });
});
