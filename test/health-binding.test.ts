import { copyFileSync, mkdtempSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import koffi from 'koffi';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NvmlBinding, type Device, type EventSet } from '../src/native/nvml-binding.js';
import { EccCounterType, EccErrorType, EventType, FieldId, FieldScope, PerfPolicy } from '../src/native/nvml-constants.js';
import { simulatedNode } from '../src/sim/harness.js';
import { nvmlError } from './support/nvml-error.js';
import { appendScenarioLines, replaceScenarioFile } from '../src/sim/scenario-file.js';

/**
 * The GPU health calls (ECC, retired pages, remapped rows, violation time, field values) and
 * NVML events, through the real koffi binding against the simulated library driven by
 * test/fixtures/health.sim (copied: the tests change it while the library runs).
 */
const fixturePath = fileURLToPath(new URL('./fixtures/health.sim', import.meta.url));
const fixture = readFileSync(fixturePath, 'utf8');
const statePath = path.join(mkdtempSync(path.join(os.tmpdir(), 'kge-health-')), 'health.sim');
copyFileSync(fixturePath, statePath);
const node = simulatedNode(statePath);

let nvml: NvmlBinding;
/** performance.now() just before the library's first nvmlInit in this process: scenario time 0 is at or after it. */
let t0 = 0;
const simElapsed = (): number => performance.now() - t0;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

const addressOf = (d: Device): bigint => koffi.address(d);

beforeAll(() => {
  process.env.KGE_SIM_STATE = statePath;
  nvml = new NvmlBinding({ libraryPath: node.libraryPath });
  t0 = performance.now();
  nvml.init();
});
afterAll(() => nvml.shutdown());

describe('health calls on the simulated node', () => {
  it('reads ECC error totals for every error type and counter', () => {
    const d = nvml.deviceByIndex(0);
    expect(nvml.totalEccErrors(d, EccErrorType.CORRECTED, EccCounterType.VOLATILE)).toBe(12);
    expect(nvml.totalEccErrors(d, EccErrorType.UNCORRECTED, EccCounterType.VOLATILE)).toBe(1);
    expect(nvml.totalEccErrors(d, EccErrorType.CORRECTED, EccCounterType.AGGREGATE)).toBe(340);
    expect(nvml.totalEccErrors(d, EccErrorType.UNCORRECTED, EccCounterType.AGGREGATE)).toBe(2);
    // per physical GPU: a MIG-enabled GPU answers, its MIG handles do not
    const gpu2 = nvml.deviceByIndex(2);
    expect(nvml.totalEccErrors(gpu2, 0, 0)).toBe(0);
    expect(nvmlError(() => nvml.totalEccErrors(nvml.migDeviceByIndex(gpu2, 0), 0, 0)).notSupported).toBe(true);
  });

  it('reads retired pages pending status and remapped rows', () => {
    const d = nvml.deviceByIndex(0);
    expect(nvml.retiredPagesPendingStatus(d)).toBe(1);
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
    await sleep(120);
    const after = nvml.violationTime(d, PerfPolicy.THERMAL);
    // linear(0, 250 ms per second): a quarter of scenario time, which is at most the time since t0
    expect(before.violationTimeNs).toBeLessThanOrEqual(simBefore * 0.25e6);
    expect(after.violationTimeNs - before.violationTimeNs).toBeGreaterThanOrEqual(100 * 0.25e6);
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
    await sleep(60);
    const [rxLater] = nvml.fieldValues(d, [{ fieldId: FieldId.NVLINK_THROUGHPUT_DATA_RX, scopeId: all }]);
    expect(rxLater!.value! - rx!.value!).toBeGreaterThanOrEqual(50_000);
  });

  it('answers NOT_SUPPORTED for every call and field whose key the scenario leaves out', () => {
    const d = nvml.deviceByIndex(1);
    const calls: [string, () => unknown][] = [
      ['nvmlDeviceGetTotalEccErrors', () => nvml.totalEccErrors(d, 1, 1)],
      ['nvmlDeviceGetRetiredPagesPendingStatus', () => nvml.retiredPagesPendingStatus(d)],
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

  afterAll(async () => {
    replaceScenarioFile(statePath, fixture);
    await sleep(60);
  });

  it('reports the supported event types of each GPU', () => {
    expect(nvml.supportedEventTypes(nvml.deviceByIndex(0))).toBe(0x400bn);
    expect(nvml.supportedEventTypes(nvml.deviceByIndex(2))).toBe(0xbn);
    const mig = nvml.migDeviceByIndex(nvml.deviceByIndex(2), 0);
    expect(nvmlError(() => nvml.supportedEventTypes(mig)).notSupported).toBe(true);
  });

  it('refuses types a GPU does not support and MIG handles, registering nothing', () => {
    const c = nvml.createEventSet();
    try {
      const gpu2 = nvml.deviceByIndex(2);
      const e = nvmlError(() => nvml.registerEvents(gpu2, XID | EventType.GPU_UNAVAILABLE, c));
      expect([e.call, e.code, e.notSupported]).toEqual(['nvmlDeviceRegisterEvents', 3, true]);
      expect(nvmlError(() => nvml.registerEvents(nvml.deviceByIndex(1), XID, c)).notSupported).toBe(true);
      expect(nvmlError(() => nvml.registerEvents(nvml.migDeviceByIndex(gpu2, 0), XID, c)).notSupported).toBe(true);
      // nothing registered: the Xid of GPU 2 (due at 1200 ms) never comes to this set
      const started = performance.now();
      expect(nvml.waitForEvent(c, 100)).toBeUndefined();
      expect(performance.now() - started).toBeGreaterThanOrEqual(80);
    } finally {
      nvml.freeEventSet(c);
    }
  });

  it('delivers an Xid at its scenario time with the GPU handle and the Xid code', () => {
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

  it('attributes an Xid of a MIG instance to the parent GPU with its GPU and compute instance', () => {
    const ev = nvml.waitForEvent(a, 10_000);
    expect(simElapsed()).toBeGreaterThanOrEqual(1200);
    expect(ev).toMatchObject({ eventType: XID, eventData: 31n, gpuInstanceId: 2, computeInstanceId: 0 });
    expect(addressOf(ev!.device)).toBe(addressOf(nvml.deviceByIndex(2)));
  });

  it('delivers events in time order, only types the set registered', () => {
    const ev = nvml.waitForEvent(a, 10_000);
    expect(simElapsed()).toBeGreaterThanOrEqual(1300);
    expect(ev).toMatchObject({ eventType: EventType.DOUBLE_BIT_ECC, eventData: 0n });
    expect(addressOf(ev!.device)).toBe(addressOf(nvml.deviceByIndex(0)));
  });

  it('times out with undefined after about timeoutMs when nothing is due', () => {
    const started = performance.now();
    expect(nvml.waitForEvent(a, 300)).toBeUndefined();
    const elapsed = performance.now() - started;
    expect(elapsed).toBeGreaterThanOrEqual(300 * 0.8);
    expect(elapsed).toBeLessThan(300 + 2_000);
  });

  it('delivers each event once per set: a second set gets it too, once', () => {
    const ev = nvml.waitForEvent(b, 1_000);
    expect(ev).toMatchObject({ eventType: XID, eventData: 79n });
    expect(nvml.waitForEvent(b, 150)).toBeUndefined();
  });

  it('delivers event lines added at run time, and not again after a reload that keeps them', async () => {
    const at = Math.ceil(simElapsed()) + 300;
    appendScenarioLines(statePath, `\nevent 0 xid 48 ${at}\n`);
    const ev = nvml.waitForEvent(a, 10_000);
    expect(simElapsed()).toBeGreaterThanOrEqual(at);
    expect(ev).toMatchObject({ eventType: XID, eventData: 48n });
    expect(nvml.waitForEvent(b, 1_000)).toMatchObject({ eventType: XID, eventData: 48n });
    // another change to the file: the events it keeps are not delivered again
    appendScenarioLines(statePath, '# touched\n');
    await sleep(60);
    expect(nvml.waitForEvent(a, 150)).toBeUndefined();
    expect(nvml.waitForEvent(b, 150)).toBeUndefined();
    // an identical second line is a second event
    appendScenarioLines(statePath, `event 0 xid 48 ${at}\n`);
    expect(nvml.waitForEvent(a, 1_000)).toMatchObject({ eventType: XID, eventData: 48n });
    expect(nvml.waitForEvent(a, 150)).toBeUndefined();
  });

  it('fails waits in a fault window, also one that opens while the wait blocks', async () => {
    const now = Math.ceil(simElapsed());
    appendScenarioLines(statePath, `fault nvmlEventSetWait_v2 * 999 0 ${now + 100_000}\n`);
    await sleep(60);
    const e = nvmlError(() => nvml.waitForEvent(a, 1_000));
    expect([e.call, e.code, e.codeName]).toEqual(['nvmlEventSetWait_v2', 999, 'UNKNOWN']);
    replaceScenarioFile(statePath, fixture);
    await sleep(60);
    expect(nvml.waitForEvent(a, 50)).toBeUndefined();
    const opens = Math.ceil(simElapsed()) + 300;
    appendScenarioLines(statePath, `fault nvmlEventSetWait_v2 * 15 ${opens} ${opens + 100_000}\n`);
    const started = performance.now();
    const lost = nvmlError(() => nvml.waitForEvent(a, 10_000));
    expect(lost.gpuLost).toBe(true);
    expect(simElapsed()).toBeGreaterThanOrEqual(opens);
    expect(performance.now() - started).toBeLessThan(5_000);
    replaceScenarioFile(statePath, fixture);
    await sleep(60);
  });

  it('does not hold up other calls while a wait blocks on another thread', async () => {
    // the same library, the wait run by koffi on a worker thread (as the event thread does)
    const lib = koffi.load(node.libraryPath);
    const wait = lib.func('int nvmlEventSetWait_v2(nvmlEventSet_t set, _Out_ void *data, uint32 timeoutms)');
    const c = nvml.createEventSet();
    nvml.registerEvents(nvml.deviceByIndex(0), EventType.GPU_UNAVAILABLE, c); // no such event in the scenario
    const started = performance.now();
    const done = new Promise<number>((resolve, reject) => {
      wait.async(c, Buffer.alloc(32), 600, (err: unknown, code: number) => (err ? reject(err) : resolve(code)));
    });
    await sleep(50);
    const callsStarted = performance.now();
    for (let i = 0; i < 20; i++) expect(nvml.totalEccErrors(nvml.deviceByIndex(0), 0, 0)).toBe(12);
    expect(performance.now() - callsStarted).toBeLessThan(300);
    expect(await done).toBe(10); // TIMEOUT
    expect(performance.now() - started).toBeGreaterThanOrEqual(600 * 0.8);
    nvml.freeEventSet(c);
  });

  it('frees event sets; a freed set is an invalid argument', () => {
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

  it('treats every missing call as not supported and lists it in missingSymbols', () => {
    const d = legacy.deviceByIndex(0);
    const calls: [string, () => unknown][] = [
      ['nvmlDeviceGetTotalEccErrors', () => legacy.totalEccErrors(d, 0, 0)],
      ['nvmlDeviceGetRetiredPagesPendingStatus', () => legacy.retiredPagesPendingStatus(d)],
      ['nvmlDeviceGetRemappedRows', () => legacy.remappedRows(d)],
      ['nvmlDeviceGetViolationStatus', () => legacy.violationTime(d, 0)],
      ['nvmlDeviceGetSupportedEventTypes', () => legacy.supportedEventTypes(d)],
      ['nvmlEventSetCreate', () => legacy.createEventSet()],
      ['nvmlDeviceRegisterEvents', () => legacy.registerEvents(d, EventType.XID_CRITICAL, null)],
      ['nvmlEventSetWait_v2', () => legacy.waitForEvent(null, 10)],
      ['nvmlEventSetFree', () => legacy.freeEventSet(null)],
    ];
    for (const [call, fn] of calls) {
      const e = nvmlError(fn);
      expect([e.call, e.code, e.codeName, e.notSupported]).toEqual([call, 13, 'FUNCTION_NOT_FOUND', true]);
    }
    expect([...legacy.missingSymbols].sort()).toEqual(calls.map(([call]) => call).sort());
    // field values are a different symbol: still there
    expect(legacy.fieldValues(d, [FieldId.ECC_SBE_VOLATILE_TOTAL])).toEqual([{ fieldId: 3, code: 0, value: 4 }]);
  });
});
