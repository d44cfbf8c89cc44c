import koffi from 'koffi';
import { GPM_ABI_SIZES, GPM_SUPPORT_VERSION, GpmMetricsRequest, type GpmMetricResult } from './gpm-abi.js';
import { libraryCandidates, openFirst } from './library-discovery.js';
import {
  NvmlError,
  NVML_ERROR_FUNCTION_NOT_FOUND,
  NVML_ERROR_INSUFFICIENT_SIZE,
  NVML_ERROR_NOT_FOUND,
  NVML_ERROR_TIMEOUT,
  NVML_SUCCESS,
} from './nvml-return.js';

/**
 * koffi binding of libnvidia-ml.so.1. Every call here is synchronous and may block,
 * so this module is only ever used from the sampling worker thread, never the event loop.
 */

koffi.pointer('nvmlDevice_t', koffi.opaque('nvmlDevice_st'));
koffi.pointer('nvmlEventSet_t', koffi.opaque('nvmlEventSet_st'));

const PciInfo = koffi.struct('nvmlPciInfo_t', {
  busIdLegacy: koffi.array('char', 16),
  domain: 'uint32',
  bus: 'uint32',
  device: 'uint32',
  pciDeviceId: 'uint32',
  pciSubSystemId: 'uint32',
  busId: koffi.array('char', 32),
});
const Utilization = koffi.struct('nvmlUtilization_t', { gpu: 'uint32', memory: 'uint32' });
const MemoryV1 = koffi.struct('nvmlMemory_t', { total: 'uint64', free: 'uint64', used: 'uint64' });
const MemoryV2 = koffi.struct('nvmlMemory_v2_t', {
  version: 'uint32',
  total: 'uint64',
  reserved: 'uint64',
  free: 'uint64',
  used: 'uint64',
});
const ViolationTime = koffi.struct('nvmlViolationTime_t', { referenceTime: 'uint64', violationTime: 'uint64' });
const EventData = koffi.struct('nvmlEventData_t', {
  device: 'nvmlDevice_t',
  eventType: 'uint64',
  eventData: 'uint64',
  gpuInstanceId: 'uint32',
  computeInstanceId: 'uint32',
});

/** Sizes the C ABI fixes; checked by tests against koffi's layout. */
export const ABI_SIZES = {
  nvmlPciInfo_t: koffi.sizeof(PciInfo),
  nvmlUtilization_t: koffi.sizeof(Utilization),
  nvmlMemory_t: koffi.sizeof(MemoryV1),
  nvmlMemory_v2_t: koffi.sizeof(MemoryV2),
  nvmlProcessInfo_t: 24,
  nvmlProcessUtilizationSample_t: 32,
  nvmlFieldValue_t: 40,
  nvmlViolationTime_t: koffi.sizeof(ViolationTime),
  nvmlEventData_t: koffi.sizeof(EventData),
  ...GPM_ABI_SIZES,
};

const MEMORY_V2_VERSION = 0x02000028;
const NVML_DEVICE_UUID_V2_BUFFER_SIZE = 96;
const NVML_DEVICE_NAME_V2_BUFFER_SIZE = 96;
const NVML_SYSTEM_DRIVER_VERSION_BUFFER_SIZE = 80;
const PROCESS_INFO_SIZE = 24;
const PROCESS_UTIL_SAMPLE_SIZE = 32;
const FIELD_VALUE_SIZE = 40;
const NOT_MIG = 0xffffffff;
/** NVML_VALUE_NOT_AVAILABLE as an unsigned long long (e.g. usedGpuMemory without permission). */
const VALUE_NOT_AVAILABLE_U64 = 0xffffffffffffffffn;

/** Opaque device handle (a pointer owned by NVML). */
export type Device = unknown;
/** Opaque event set handle (nvmlEventSet_t, a pointer owned by NVML). */
export type EventSet = unknown;
/** Opaque GPM sample (nvmlGpmSample_t): allocated by NVML, freed with gpmSampleFree before shutdown. */
export type GpmSample = unknown;
export type { GpmMetricResult } from './gpm-abi.js';

/** One event from nvmlEventSetWait_v2. */
export interface NvmlEvent {
  /** The physical GPU's handle (the same pointer nvmlDeviceGetHandleByIndex_v2 gives). */
  device: Device;
  /** One EventType bit. */
  eventType: bigint;
  /** The Xid for XID_CRITICAL events; 0 for most others. */
  eventData: bigint;
  /** MIG GPU / compute instance the event belongs to; undefined when the driver says 0xFFFFFFFF (none). */
  gpuInstanceId?: number;
  computeInstanceId?: number;
}

/** nvmlDeviceGetRemappedRows. */
export interface RemappedRows {
  correctable: number;
  uncorrectable: number;
  /** 1 while a remapping waits for a GPU reset, else 0. */
  pending: number;
  /** 1 when a remapping failed (no spare rows left), else 0. */
  failure: number;
}

/** nvmlDeviceGetViolationStatus: time the GPU's clocks were held down by a policy. */
export interface ViolationTime {
  /** When the driver took the figure: CPU wall clock, as ns (the driver's microseconds x 1000). */
  referenceTimeNs: number;
  /** The driver's referenceTime as it gives it: CPU wall clock in microseconds. */
  referenceTimeUs: number;
  /** Accumulated violation time since the driver loaded, nanoseconds. */
  violationTimeNs: number;
}

/** A field to read: its id and, for per-link fields, the scope (NVLink: link index, or FieldScope.ALL_NVLINKS). */
export interface FieldRequest {
  fieldId: number;
  /** Default 0. */
  scopeId?: number;
}

export interface PciInfoValue {
  busId: string;
  domain: number;
  bus: number;
  device: number;
  pciDeviceId: number;
  pciSubSystemId: number;
}
export interface MemoryInfo {
  total: number;
  free: number;
  used: number;
  /** Only from the v2 call; undefined on drivers without it. */
  reserved?: number;
}
export interface ProcessInfo {
  pid: number;
  /** Bytes; undefined when the driver reports NVML_VALUE_NOT_AVAILABLE (unknown). */
  usedGpuMemory?: number;
  gpuInstanceId?: number;
  computeInstanceId?: number;
}
/** One entry of nvmlDeviceGetProcessUtilization: a process's utilization over one driver sample period. */
export interface ProcessUtilizationSample {
  pid: number;
  /** When the driver took the sample, microseconds (CPU wall clock). */
  timestampUs: number;
  smUtilPercent: number;
  memUtilPercent: number;
  encUtilPercent: number;
  decUtilPercent: number;
}
export interface FieldValueResult {
  fieldId: number;
  /** Present when the request gave one. */
  scopeId?: number;
  /** Undefined when the entry's own return code was not SUCCESS. */
  value?: number;
  code: number;
}

type NativeFn = (...args: unknown[]) => number;

function cString(buf: Buffer): string {
  const end = buf.indexOf(0);
  return buf.toString('utf8', 0, end < 0 ? buf.length : end);
}

export interface NvmlBindingOptions {
  /** Explicit library path (flag/env); otherwise the standard search. */
  libraryPath?: string;
  driverRoot?: string;
}

export class NvmlBinding {
  readonly libraryPath: string;
  /** Optional symbols this driver lacks (reported once by the sampler). */
  readonly missingSymbols: string[] = [];
  private readonly lib: koffi.IKoffiLib;
  private readonly fns = new Map<string, NativeFn | null>();
  /** nvmlErrorString of each code met so far. */
  private readonly errorTexts = new Map<number, string>();
  private readonly errorString: (code: number) => string;
  private gpmRequest: GpmMetricsRequest | undefined;

  constructor(opts: NvmlBindingOptions = {}) {
    const { lib, spec } = openFirst(libraryCandidates(opts.libraryPath, opts.driverRoot), (s) => koffi.load(s));
    this.lib = lib;
    this.libraryPath = spec;
    this.errorString = this.lib.func('const char *nvmlErrorString(int result)') as (code: number) => string;
  }

  private fn(proto: string, name: string, required = false): NativeFn | null {
    let f = this.fns.get(name);
    if (f !== undefined) return f;
    try {
      f = this.lib.func(proto) as NativeFn;
    } catch (err) {
      if (required) throw err;
      f = null;
      this.missingSymbols.push(name);
    }
    this.fns.set(name, f);
    return f;
  }

  private check(call: string, code: number): void {
    if (code === NVML_SUCCESS) return;
    // the driver's text for a code never changes: ask once per code
    let text = this.errorTexts.get(code);
    if (text === undefined) this.errorTexts.set(code, (text = this.errorString(code) ?? ''));
    throw new NvmlError(call, code, text);
  }

  /** Calls an optional symbol; a missing one is FUNCTION_NOT_FOUND (treated as "not supported"). */
  private call(name: string, proto: string, ...args: unknown[]): void {
    const f = this.fn(proto, name);
    if (!f) throw new NvmlError(name, NVML_ERROR_FUNCTION_NOT_FOUND, 'symbol not exported by this driver');
    this.check(name, f(...args));
  }

  init(): void {
    const f = this.fn('int nvmlInit_v2()', 'nvmlInit_v2', true)!;
    this.check('nvmlInit_v2', f());
  }

  shutdown(): void {
    const f = this.fn('int nvmlShutdown()', 'nvmlShutdown', true)!;
    this.check('nvmlShutdown', f());
  }

  private string(name: string, size: number, device?: Device): string {
    const buf = Buffer.alloc(size);
    if (device === undefined) this.call(name, `int ${name}(_Out_ uint8_t *buf, uint32 len)`, buf, size);
    else this.call(name, `int ${name}(nvmlDevice_t dev, _Out_ uint8_t *buf, uint32 len)`, device, buf, size);
    return cString(buf);
  }

  private uint(name: string, device: Device): number {
    const out = [0];
    this.call(name, `int ${name}(nvmlDevice_t dev, _Out_ uint32 *out)`, device, out);
    return out[0]!;
  }

  driverVersion(): string {
    return this.string('nvmlSystemGetDriverVersion', NVML_SYSTEM_DRIVER_VERSION_BUFFER_SIZE);
  }

  deviceCount(): number {
    const out = [0];
    this.call('nvmlDeviceGetCount_v2', 'int nvmlDeviceGetCount_v2(_Out_ uint32 *count)', out);
    return out[0]!;
  }

  deviceByIndex(index: number): Device {
    const out: unknown[] = [null];
    this.call(
      'nvmlDeviceGetHandleByIndex_v2',
      'int nvmlDeviceGetHandleByIndex_v2(uint32 index, _Out_ nvmlDevice_t *dev)',
      index,
      out,
    );
    return out[0];
  }

  uuid(device: Device): string {
    return this.string('nvmlDeviceGetUUID', NVML_DEVICE_UUID_V2_BUFFER_SIZE, device);
  }

  name(device: Device): string {
    return this.string('nvmlDeviceGetName', NVML_DEVICE_NAME_V2_BUFFER_SIZE, device);
  }

  minorNumber(device: Device): number {
    return this.uint('nvmlDeviceGetMinorNumber', device);
  }

  pciInfo(device: Device): PciInfoValue {
    const out: Record<string, unknown> = {};
    this.call('nvmlDeviceGetPciInfo_v3', 'int nvmlDeviceGetPciInfo_v3(nvmlDevice_t dev, _Out_ nvmlPciInfo_t *pci)', device, out);
    return {
      busId: String(out.busId),
      domain: Number(out.domain),
      bus: Number(out.bus),
      device: Number(out.device),
      pciDeviceId: Number(out.pciDeviceId),
      pciSubSystemId: Number(out.pciSubSystemId),
    };
  }

  utilizationRates(device: Device): { gpu: number; memory: number } {
    const out: Record<string, number> = {};
    this.call(
      'nvmlDeviceGetUtilizationRates',
      'int nvmlDeviceGetUtilizationRates(nvmlDevice_t dev, _Out_ nvmlUtilization_t *u)',
      device,
      out,
    );
    return { gpu: out.gpu!, memory: out.memory! };
  }

  private codecUtilization(name: string, device: Device): number {
    const util = [0];
    const period = [0];
    this.call(name, `int ${name}(nvmlDevice_t dev, _Out_ uint32 *util, _Out_ uint32 *periodUs)`, device, util, period);
    return util[0]!;
  }

  encoderUtilization(device: Device): number {
    return this.codecUtilization('nvmlDeviceGetEncoderUtilization', device);
  }

  decoderUtilization(device: Device): number {
    return this.codecUtilization('nvmlDeviceGetDecoderUtilization', device);
  }

  /** MemoryInfo_v2 (with reserved) where the driver has it, else the v1 call. */
  memoryInfo(device: Device): MemoryInfo {
    if (this.fn('int nvmlDeviceGetMemoryInfo_v2(nvmlDevice_t dev, _Inout_ nvmlMemory_v2_t *m)', 'nvmlDeviceGetMemoryInfo_v2')) {
      const m: Record<string, number> = { version: MEMORY_V2_VERSION, total: 0, reserved: 0, free: 0, used: 0 };
      this.call('nvmlDeviceGetMemoryInfo_v2', '', device, m);
      return { total: Number(m.total), reserved: Number(m.reserved), free: Number(m.free), used: Number(m.used) };
    }
    const m: Record<string, number> = {};
    this.call('nvmlDeviceGetMemoryInfo', 'int nvmlDeviceGetMemoryInfo(nvmlDevice_t dev, _Out_ nvmlMemory_t *m)', device, m);
    return { total: Number(m.total), free: Number(m.free), used: Number(m.used) };
  }

  temperature(device: Device, sensor = 0): number {
    const out = [0];
    this.call(
      'nvmlDeviceGetTemperature',
      'int nvmlDeviceGetTemperature(nvmlDevice_t dev, int sensor, _Out_ uint32 *t)',
      device,
      sensor,
      out,
    );
    return out[0]!;
  }

  powerUsageMilliwatts(device: Device): number {
    return this.uint('nvmlDeviceGetPowerUsage', device);
  }

  enforcedPowerLimitMilliwatts(device: Device): number {
    return this.uint('nvmlDeviceGetEnforcedPowerLimit', device);
  }

  totalEnergyMillijoules(device: Device): number {
    const out = [0n];
    this.call(
      'nvmlDeviceGetTotalEnergyConsumption',
      'int nvmlDeviceGetTotalEnergyConsumption(nvmlDevice_t dev, _Out_ uint64 *mj)',
      device,
      out,
    );
    return Number(out[0]);
  }

  clockMHz(device: Device, type: number): number {
    const out = [0];
    this.call('nvmlDeviceGetClockInfo', 'int nvmlDeviceGetClockInfo(nvmlDevice_t dev, int type, _Out_ uint32 *mhz)', device, type, out);
    return out[0]!;
  }

  maxClockMHz(device: Device, type: number): number {
    const out = [0];
    this.call('nvmlDeviceGetMaxClockInfo', 'int nvmlDeviceGetMaxClockInfo(nvmlDevice_t dev, int type, _Out_ uint32 *mhz)', device, type, out);
    return out[0]!;
  }

  fanSpeedPercent(device: Device): number {
    return this.uint('nvmlDeviceGetFanSpeed', device);
  }

  performanceState(device: Device): number {
    const out = [0];
    this.call('nvmlDeviceGetPerformanceState', 'int nvmlDeviceGetPerformanceState(nvmlDevice_t dev, _Out_ int *p)', device, out);
    return out[0]!;
  }

  /** Clock event (throttle) reasons; the older ThrottleReasons symbol where the new one is missing. */
  clocksEventReasons(device: Device): number {
    const out = [0n];
    const current = 'nvmlDeviceGetCurrentClocksEventReasons';
    if (this.fn(`int ${current}(nvmlDevice_t dev, _Out_ uint64 *r)`, current)) this.call(current, '', device, out);
    else {
      const legacy = 'nvmlDeviceGetCurrentClocksThrottleReasons';
      this.call(legacy, `int ${legacy}(nvmlDevice_t dev, _Out_ uint64 *r)`, device, out);
    }
    return Number(out[0]);
  }

  pcieThroughputKBps(device: Device, counter: number): number {
    const out = [0];
    this.call('nvmlDeviceGetPcieThroughput', 'int nvmlDeviceGetPcieThroughput(nvmlDevice_t dev, int counter, _Out_ uint32 *kbps)', device, counter, out);
    return out[0]!;
  }

  /** Compute processes; _v3 where present, else _v2 (same 24-byte entry layout). */
  computeProcesses(device: Device): ProcessInfo[] {
    let name = 'nvmlDeviceGetComputeRunningProcesses_v3';
    let f = this.fn(`int ${name}(nvmlDevice_t dev, _Inout_ uint32 *count, void *infos)`, name);
    if (!f) {
      name = 'nvmlDeviceGetComputeRunningProcesses_v2';
      f = this.fn(`int ${name}(nvmlDevice_t dev, _Inout_ uint32 *count, void *infos)`, name);
      if (!f) throw new NvmlError(name, NVML_ERROR_FUNCTION_NOT_FOUND, 'symbol not exported by this driver');
    }
    for (let attempt = 0; attempt < 4; attempt++) {
      const count = [0];
      const sizing = f(device, count, null);
      if (sizing === NVML_SUCCESS) return [];
      if (sizing !== NVML_ERROR_INSUFFICIENT_SIZE) this.check(name, sizing);
      const capacity = count[0]! + 4; // room for processes that start between the calls
      const buf = Buffer.alloc(capacity * PROCESS_INFO_SIZE);
      count[0] = capacity;
      const code = f(device, count, buf);
      if (code === NVML_ERROR_INSUFFICIENT_SIZE) continue;
      this.check(name, code);
      const out: ProcessInfo[] = [];
      for (let i = 0; i < count[0]!; i++) {
        const o = i * PROCESS_INFO_SIZE;
        const gi = buf.readUInt32LE(o + 16);
        const ci = buf.readUInt32LE(o + 20);
        const mem = buf.readBigUInt64LE(o + 8);
        out.push({
          pid: buf.readUInt32LE(o),
          ...(mem !== VALUE_NOT_AVAILABLE_U64 ? { usedGpuMemory: Number(mem) } : {}),
          ...(gi !== NOT_MIG ? { gpuInstanceId: gi } : {}),
          ...(ci !== NOT_MIG ? { computeInstanceId: ci } : {}),
        });
      }
      return out;
    }
    throw new NvmlError(name, NVML_ERROR_INSUFFICIENT_SIZE, 'process list kept growing between calls');
  }

  /**
   * Per-process utilization samples the driver took after `lastSeenTimestampUs` (0: its whole
   * buffer), oldest first; [] when there is none newer (NOT_FOUND). NOT_SUPPORTED on MIG-enabled
   * GPUs and MIG handles. Same sizing pattern as the process list: the count can grow between
   * the calls (new samples), so the buffer gets some room and the call is retried.
   */
  processUtilization(device: Device, lastSeenTimestampUs: bigint | number): ProcessUtilizationSample[] {
    const name = 'nvmlDeviceGetProcessUtilization';
    const f = this.fn(`int ${name}(nvmlDevice_t dev, void *samples, _Inout_ uint32 *count, uint64 lastSeen)`, name);
    if (!f) throw new NvmlError(name, NVML_ERROR_FUNCTION_NOT_FOUND, 'symbol not exported by this driver');
    const lastSeen = BigInt(lastSeenTimestampUs);
    for (let attempt = 0; attempt < 4; attempt++) {
      const count = [0];
      const sizing = f(device, null, count, lastSeen);
      if (sizing === NVML_ERROR_NOT_FOUND) return [];
      if (sizing === NVML_SUCCESS && count[0] === 0) return [];
      if (sizing !== NVML_SUCCESS && sizing !== NVML_ERROR_INSUFFICIENT_SIZE) this.check(name, sizing);
      const capacity = count[0]! + Math.max(16, count[0]! >> 2); // room for samples taken between the calls
      const buf = Buffer.alloc(capacity * PROCESS_UTIL_SAMPLE_SIZE);
      count[0] = capacity;
      const code = f(device, buf, count, lastSeen);
      if (code === NVML_ERROR_INSUFFICIENT_SIZE) continue;
      if (code === NVML_ERROR_NOT_FOUND) return [];
      this.check(name, code);
      const out: ProcessUtilizationSample[] = [];
      for (let i = 0; i < Math.min(count[0]!, capacity); i++) {
        const o = i * PROCESS_UTIL_SAMPLE_SIZE;
        out.push({
          pid: buf.readUInt32LE(o),
          timestampUs: Number(buf.readBigUInt64LE(o + 8)),
          smUtilPercent: buf.readUInt32LE(o + 16),
          memUtilPercent: buf.readUInt32LE(o + 20),
          encUtilPercent: buf.readUInt32LE(o + 24),
          decUtilPercent: buf.readUInt32LE(o + 28),
        });
      }
      return out;
    }
    throw new NvmlError(name, NVML_ERROR_INSUFFICIENT_SIZE, 'sample list kept growing between calls');
  }

  migMode(device: Device): { current: number; pending: number } {
    const cur = [0];
    const pend = [0];
    this.call('nvmlDeviceGetMigMode', 'int nvmlDeviceGetMigMode(nvmlDevice_t dev, _Out_ uint32 *cur, _Out_ uint32 *pend)', device, cur, pend);
    return { current: cur[0]!, pending: pend[0]! };
  }

  maxMigDeviceCount(device: Device): number {
    return this.uint('nvmlDeviceGetMaxMigDeviceCount', device);
  }

  /** The MIG device in a slot, or undefined for an empty slot (NOT_FOUND). */
  migDeviceByIndex(device: Device, index: number): Device | undefined {
    const out: unknown[] = [null];
    const name = 'nvmlDeviceGetMigDeviceHandleByIndex';
    const f = this.fn(`int ${name}(nvmlDevice_t dev, uint32 index, _Out_ nvmlDevice_t *mig)`, name);
    if (!f) throw new NvmlError(name, NVML_ERROR_FUNCTION_NOT_FOUND, 'symbol not exported by this driver');
    const code = f(device, index, out);
    if (code === NVML_ERROR_NOT_FOUND) return undefined;
    this.check(name, code);
    return out[0];
  }

  gpuInstanceId(device: Device): number {
    return this.uint('nvmlDeviceGetGpuInstanceId', device);
  }

  computeInstanceId(device: Device): number {
    return this.uint('nvmlDeviceGetComputeInstanceId', device);
  }

  /**
   * Field values; each entry carries its own return code. A request is a field id, or
   * `{ fieldId, scopeId }` for per-link fields (NVLink throughput: scopeId 0xFFFFFFFF, i.e.
   * FieldScope.ALL_NVLINKS, is the sum over links); plain ids use scope 0.
   */
  fieldValues(device: Device, fields: readonly (number | FieldRequest)[]): FieldValueResult[] {
    const requests = fields.map((f) => (typeof f === 'number' ? { fieldId: f } : f));
    const buf = Buffer.alloc(requests.length * FIELD_VALUE_SIZE);
    requests.forEach((r, i) => {
      buf.writeUInt32LE(r.fieldId >>> 0, i * FIELD_VALUE_SIZE);
      buf.writeUInt32LE((r.scopeId ?? 0) >>> 0, i * FIELD_VALUE_SIZE + 4);
    });
    this.call(
      'nvmlDeviceGetFieldValues',
      'int nvmlDeviceGetFieldValues(nvmlDevice_t dev, int count, void *values)',
      device,
      requests.length,
      buf,
    );
    return requests.map((r, i) => {
      const o = i * FIELD_VALUE_SIZE;
      const head = { fieldId: r.fieldId, ...(r.scopeId !== undefined ? { scopeId: r.scopeId } : {}) };
      const code = buf.readInt32LE(o + 28);
      if (code !== NVML_SUCCESS) return { ...head, code };
      return { ...head, code, value: readFieldValue(buf, o + 32, buf.readInt32LE(o + 24)) };
    });
  }

  /** nvmlDeviceGetTotalEccErrors: errorType 0 corrected / 1 uncorrected, counter 0 volatile / 1 aggregate. */
  totalEccErrors(device: Device, errorType: 0 | 1, counter: 0 | 1): number {
    const out = [0n];
    const name = 'nvmlDeviceGetTotalEccErrors';
    this.call(name, `int ${name}(nvmlDevice_t dev, int errorType, int counterType, _Out_ uint64 *count)`, device, errorType, counter, out);
    return Number(out[0]);
  }

  /** nvmlDeviceGetRetiredPagesPendingStatus: 1 while retired pages wait for a reboot / GPU reset, else 0. */
  retiredPagesPendingStatus(device: Device): number {
    const out = [0];
    const name = 'nvmlDeviceGetRetiredPagesPendingStatus';
    this.call(name, `int ${name}(nvmlDevice_t dev, _Out_ int *isPending)`, device, out);
    return out[0] ? 1 : 0;
  }

  /** nvmlDeviceGetRemappedRows (Ampere+); NOT_SUPPORTED with MIG mode on. */
  remappedRows(device: Device): RemappedRows {
    const corr = [0];
    const unc = [0];
    const pending = [0];
    const failure = [0];
    const name = 'nvmlDeviceGetRemappedRows';
    this.call(
      name,
      `int ${name}(nvmlDevice_t dev, _Out_ uint32 *corr, _Out_ uint32 *unc, _Out_ uint32 *pending, _Out_ uint32 *failure)`,
      device,
      corr,
      unc,
      pending,
      failure,
    );
    return { correctable: corr[0]!, uncorrectable: unc[0]!, pending: pending[0] ? 1 : 0, failure: failure[0] ? 1 : 0 };
  }

  /** nvmlDeviceGetViolationStatus: policy 0 POWER, 1 THERMAL (PerfPolicy). */
  violationTime(device: Device, policy: 0 | 1): ViolationTime {
    const out: Record<string, unknown> = {};
    const name = 'nvmlDeviceGetViolationStatus';
    this.call(name, `int ${name}(nvmlDevice_t dev, int policy, _Out_ nvmlViolationTime_t *v)`, device, policy, out);
    const referenceTimeUs = Number(out.referenceTime);
    return { referenceTimeNs: referenceTimeUs * 1000, referenceTimeUs, violationTimeNs: Number(out.violationTime) };
  }

  /** nvmlDeviceGetSupportedEventTypes: the EventType bits this GPU can deliver. */
  supportedEventTypes(device: Device): bigint {
    const out = [0n];
    const name = 'nvmlDeviceGetSupportedEventTypes';
    this.call(name, `int ${name}(nvmlDevice_t dev, _Out_ uint64 *types)`, device, out);
    return BigInt(out[0]!);
  }

  createEventSet(): EventSet {
    const out: unknown[] = [null];
    const name = 'nvmlEventSetCreate';
    this.call(name, `int ${name}(_Out_ nvmlEventSet_t *set)`, out);
    return out[0];
  }

  /** nvmlDeviceRegisterEvents, on a physical GPU (not a MIG handle); types must be among supportedEventTypes(). */
  registerEvents(device: Device, types: bigint, set: EventSet): void {
    const name = 'nvmlDeviceRegisterEvents';
    this.call(name, `int ${name}(nvmlDevice_t dev, uint64 types, nvmlEventSet_t set)`, device, types, set);
  }

  /**
   * nvmlEventSetWait_v2: BLOCKS the calling thread up to timeoutMs for the next event; undefined
   * when none came (TIMEOUT). Other codes throw NvmlError. Never call this on the event loop.
   */
  waitForEvent(set: EventSet, timeoutMs: number): NvmlEvent | undefined {
    const { f, out, timeout } = this.prepareWait(timeoutMs);
    return this.decodeEvent(f(set, out, timeout), out);
  }

  /**
   * nvmlEventSetWait_v2 on a libuv pool thread (koffi's async call): the calling thread's event
   * loop keeps running while the wait blocks, so no thread of its own is needed for events.
   */
  waitForEventAsync(set: EventSet, timeoutMs: number): Promise<NvmlEvent | undefined> {
    let prepared: ReturnType<NvmlBinding['prepareWait']>;
    try {
      prepared = this.prepareWait(timeoutMs);
    } catch (err) {
      return Promise.reject(err as Error);
    }
    const { f, out, timeout } = prepared;
    return new Promise((resolve, reject) => {
      (f as unknown as { async: (...args: unknown[]) => void }).async(set, out, timeout, (err: unknown, code: number) => {
        if (err) return reject(err instanceof Error ? err : new Error(String(err)));
        try {
          resolve(this.decodeEvent(code, out));
        } catch (e) {
          reject(e as Error);
        }
      });
    });
  }

  private prepareWait(timeoutMs: number): { f: NativeFn; out: Record<string, unknown>; timeout: number } {
    const name = 'nvmlEventSetWait_v2';
    const f = this.fn(`int ${name}(nvmlEventSet_t set, _Out_ nvmlEventData_t *data, uint32 timeoutms)`, name);
    if (!f) throw new NvmlError(name, NVML_ERROR_FUNCTION_NOT_FOUND, 'symbol not exported by this driver');
    const timeout = Number.isFinite(timeoutMs) ? Math.min(0xffffffff, Math.max(0, Math.round(timeoutMs))) : 0xffffffff;
    return { f, out: {}, timeout };
  }

  private decodeEvent(code: number, out: Record<string, unknown>): NvmlEvent | undefined {
    if (code === NVML_ERROR_TIMEOUT) return undefined;
    this.check('nvmlEventSetWait_v2', code);
    const gi = Number(out.gpuInstanceId);
    const ci = Number(out.computeInstanceId);
    return {
      device: out.device,
      eventType: BigInt(out.eventType as number | bigint),
      eventData: BigInt(out.eventData as number | bigint),
      ...(gi !== NOT_MIG ? { gpuInstanceId: gi } : {}),
      ...(ci !== NOT_MIG ? { computeInstanceId: ci } : {}),
    };
  }

  freeEventSet(set: EventSet): void {
    const name = 'nvmlEventSetFree';
    this.call(name, `int ${name}(nvmlEventSet_t set)`, set);
  }

  /**
   * nvmlGpmQueryDeviceSupport: whether the GPU has GPM (Hopper and later). The GPM symbols exist
   * on drivers and GPUs without it, so every other GPM call is gated on this one.
   */
  gpmSupported(device: Device): boolean {
    const support = { version: GPM_SUPPORT_VERSION, isSupportedDevice: 0 };
    const name = 'nvmlGpmQueryDeviceSupport';
    this.call(name, `int ${name}(nvmlDevice_t dev, _Inout_ nvmlGpmSupport_t *support)`, device, support);
    return support.isSupportedDevice !== 0;
  }

  gpmSampleAlloc(): GpmSample {
    const out: unknown[] = [null];
    const name = 'nvmlGpmSampleAlloc';
    this.call(name, `int ${name}(_Out_ nvmlGpmSample_t *sample)`, out);
    return out[0];
  }

  gpmSampleFree(sample: GpmSample): void {
    const name = 'nvmlGpmSampleFree';
    this.call(name, `int ${name}(nvmlGpmSample_t sample)`, sample);
  }

  /** nvmlGpmSampleGet: the whole GPU's counters now, into `sample`. */
  gpmSampleGet(device: Device, sample: GpmSample): void {
    const name = 'nvmlGpmSampleGet';
    this.call(name, `int ${name}(nvmlDevice_t dev, nvmlGpmSample_t sample)`, device, sample);
  }

  /** nvmlGpmMigSampleGet: the counters of one MIG GPU instance (its id from gpuInstanceId()) of a parent GPU. */
  gpmMigSampleGet(parent: Device, gpuInstanceId: number, sample: GpmSample): void {
    const name = 'nvmlGpmMigSampleGet';
    this.call(name, `int ${name}(nvmlDevice_t dev, uint32 gpuInstanceId, nvmlGpmSample_t sample)`, parent, gpuInstanceId, sample);
  }

  /**
   * nvmlGpmMetricsGet: each metric averaged between two samples of the same GPU or MIG instance
   * (taken more than 100 ms apart, sample1 first). Every entry has its own return code; a value
   * can be NaN or Inf even with SUCCESS. At most GPM_METRICS_PER_CALL (98) metrics per call.
   */
  gpmMetrics(sample1: GpmSample, sample2: GpmSample, metricIds: readonly number[]): GpmMetricResult[] {
    if (metricIds.length === 0) return [];
    const request = (this.gpmRequest ??= new GpmMetricsRequest());
    request.prepare(sample1, sample2, metricIds);
    const name = 'nvmlGpmMetricsGet';
    this.call(name, `int ${name}(void *request)`, request.buffer);
    return request.results(metricIds);
  }
}

function readFieldValue(buf: Buffer, at: number, valueType: number): number {
  switch (valueType) {
    case 0:
      return buf.readDoubleLE(at);
    case 1:
      return buf.readUInt32LE(at);
    case 2:
    case 3:
      return Number(buf.readBigUInt64LE(at));
    case 4:
      return Number(buf.readBigInt64LE(at));
    case 5:
      return buf.readInt32LE(at);
    case 6:
      return buf.readUInt16LE(at);
    default:
      return Number.NaN;
  }
}

