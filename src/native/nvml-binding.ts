import koffi from 'koffi';
import { StructArray, zeroBytes } from './c-struct.js';
import { GPM_SUPPORT_VERSION, GpmMetricsRequest, type GpmMetricResult } from './gpm-abi.js';
import { libraryCandidates, openFirst } from './library-discovery.js';
import {
  FieldValue,
  fieldValueNumber,
  GPU_INSTANCE_PROFILE_COUNT,
  GPU_INSTANCE_PROFILE_INFO_V2_VERSION,
  GpuInstanceProfileInfoV2,
  MEMORY_V2_VERSION,
  ProcessInfo as ProcessInfoStruct,
  ProcessUtilizationSample as ProcessUtilizationSampleStruct,
} from './nvml-structs.js';
import {
  bindSymbols,
  NOT_EXPORTED_TEXT,
  type BoundSymbol,
  type BoundSymbols,
  type DeviceCodecSymbol,
  type DeviceIntSymbol,
  type DeviceStringSymbol,
  type DeviceEnumUintSymbol,
  type DeviceUintSymbol,
  type DeviceUlonglongSymbol,
  type NativeFunction,
  type NvmlSymbolName,
} from './nvml-symbols.js';
import {
  NvmlError,
  NVML_ERROR_FUNCTION_NOT_FOUND,
  NVML_ERROR_INSUFFICIENT_SIZE,
  NVML_ERROR_INVALID_ARGUMENT,
  NVML_ERROR_NOT_FOUND,
  NVML_ERROR_NOT_SUPPORTED,
  NVML_ERROR_TIMEOUT,
  NVML_SUCCESS,
} from './nvml-return.js';

/**
 * koffi binding of libnvidia-ml.so.1. Every call here is synchronous and may block, so this
 * module is only ever used from the sampling worker thread, never the event loop (events too are
 * read there, once a tick, without blocking: waitForEvent with timeout 0). The functions it calls are the table
 * of nvml-symbols.ts, bound when the library is loaded; the structs are those of nvml-structs.ts.
 */

export { ABI_SIZES } from './nvml-structs.js';
export type { NvmlSymbolName } from './nvml-symbols.js';

const NVML_DEVICE_UUID_V2_BUFFER_SIZE = 96;
const NVML_DEVICE_NAME_V2_BUFFER_SIZE = 96;
const NVML_SYSTEM_DRIVER_VERSION_BUFFER_SIZE = 80;
/** What NVML puts in a GPU or compute instance id that is not a MIG instance. */
const NOT_MIG = 0xffffffff;
/** NVML_VALUE_NOT_AVAILABLE as an unsigned long long (e.g. usedGpuMemory without permission). */
const VALUE_NOT_AVAILABLE_U64 = 0xffffffffffffffffn;
/** Tries of a sizing call pair (count, then fill) when the list grows between the two. */
const SIZING_ATTEMPTS = 4;

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
/** One MIG GPU instance profile of a GPU (nvmlDeviceGetGpuInstanceProfileInfoV). */
export interface GpuInstanceProfile {
  /** The profile index it was asked for: NVML_GPU_INSTANCE_PROFILE_1_SLICE = 0, 2_SLICE = 1, ... up to 0x11. */
  profileIndex: number;
  /** The GPU instance profile id, as nvidia-smi shows it (H100 80GB: 19 for 1g.10gb, 0 for 7g.80gb). */
  id: number;
  /** As NVML gives it, e.g. "MIG 1g.10gb". */
  name: string;
  /** Compute slices of the GPU's (7 on H100 and A100, 4 on A30) one instance takes. */
  sliceCount: number;
  /** How many instances of this profile fit on the GPU. */
  instanceCount: number;
  multiprocessorCount: number;
  /** The instance's memory (the driver's memorySizeMB, which is MiB). */
  memoryMiB: number;
  p2pSupported: boolean;
}

export interface FieldValueResult {
  fieldId: number;
  /** Present when the request gave one. */
  scopeId?: number;
  /** Undefined when the entry's own return code was not SUCCESS. */
  value?: number;
  code: number;
}

function cString(buf: Buffer): string {
  const end = buf.indexOf(0);
  return buf.toString('utf8', 0, end < 0 ? buf.length : end);
}

/** The FUNCTION_NOT_FOUND error of a call to a symbol this driver does not export. */
function notExported(name: string): NvmlError {
  return new NvmlError(name, NVML_ERROR_FUNCTION_NOT_FOUND, NOT_EXPORTED_TEXT);
}

export interface NvmlBindingOptions {
  /** Explicit library path (flag/env); otherwise the standard search. */
  libraryPath?: string;
  driverRoot?: string;
}

export class NvmlBinding {
  readonly libraryPath: string;
  /** Optional symbols this driver lacks, each once (reported once by the sampler). */
  readonly missingSymbols: string[];
  private readonly symbols: BoundSymbols;
  private readonly errorString: NativeFunction;
  /** nvmlErrorString of each code met so far. */
  private readonly errorTexts = new Map<number, string>();
  /** Out-parameters of the scalar getters, reused: calls are synchronous, on one thread. */
  private readonly outA: unknown[] = [0];
  private readonly outB: unknown[] = [0];
  /** nvmlEventSetWait_v2's nvmlEventData_t, filled in by each wait. */
  private readonly eventOut: Record<string, unknown> = {};
  /** Room for the longest string a call returns (UUID and name: 96 bytes). */
  private readonly stringBuffer = Buffer.alloc(Math.max(NVML_DEVICE_UUID_V2_BUFFER_SIZE, NVML_DEVICE_NAME_V2_BUFFER_SIZE, NVML_SYSTEM_DRIVER_VERSION_BUFFER_SIZE));
  private readonly fieldValueBuffer = new StructArray(FieldValue.size, 32);
  private readonly processBuffer = new StructArray(ProcessInfoStruct.size, 16);
  private readonly processUtilizationBuffer = new StructArray(ProcessUtilizationSampleStruct.size, 64);
  private readonly profileInfoBuffer = new StructArray(GpuInstanceProfileInfoV2.size, 1);
  private gpmRequest: GpmMetricsRequest | undefined;

  constructor(opts: NvmlBindingOptions = {}) {
    const { lib, spec } = openFirst(libraryCandidates(opts.libraryPath, opts.driverRoot), (s) => koffi.load(s));
    this.libraryPath = spec;
    const { symbols, missing } = bindSymbols(lib, spec);
    this.symbols = symbols;
    this.missingSymbols = missing;
    this.errorString = symbols.nvmlErrorString.fn!;
  }

  /** The bound function of a symbol; FUNCTION_NOT_FOUND where the driver has none. */
  private bound<N extends NvmlSymbolName>(name: N): BoundSymbol<N> & { fn: NativeFunction } {
    const s = this.symbols[name];
    if (s.fn === null) throw notExported(s.name);
    return s as BoundSymbol<N> & { fn: NativeFunction };
  }

  private check(call: string, code: number): void {
    if (code === NVML_SUCCESS) return;
    // the driver's text for a code never changes: ask once per code
    let text = this.errorTexts.get(code);
    if (text === undefined) this.errorTexts.set(code, (text = (this.errorString(code) as string | null) ?? ''));
    throw new NvmlError(call, code, text);
  }

  /**
   * Calls a symbol of the table and throws NvmlError unless it returns SUCCESS. The getters read
   * every tick call their symbol directly, without the rest array and spread of this one.
   */
  private call(name: NvmlSymbolName, ...args: unknown[]): void {
    const s = this.bound(name);
    this.check(s.name, s.fn(...args) as number);
  }

  /** `nvmlReturn_t fn(nvmlDevice_t, unsigned int *)` */
  private deviceUint(name: DeviceUintSymbol, device: Device): number {
    const s = this.bound(name);
    this.check(s.name, s.fn(device, this.outA) as number);
    return this.outA[0] as number;
  }

  /** `nvmlReturn_t fn(nvmlDevice_t, int *)` */
  private deviceInt(name: DeviceIntSymbol, device: Device): number {
    const s = this.bound(name);
    this.check(s.name, s.fn(device, this.outA) as number);
    return this.outA[0] as number;
  }

  /** `nvmlReturn_t fn(nvmlDevice_t, unsigned long long *)`, as koffi gives it (a number, or a bigint past 2^53). */
  private deviceUlonglong(name: DeviceUlonglongSymbol, device: Device): number | bigint {
    const s = this.bound(name);
    this.check(s.name, s.fn(device, this.outA) as number);
    return this.outA[0] as number | bigint;
  }

  /** `nvmlReturn_t fn(nvmlDevice_t, int which, unsigned int *)` */
  private deviceUintOf(name: DeviceEnumUintSymbol, device: Device, arg: number): number {
    const s = this.bound(name);
    this.check(s.name, s.fn(device, arg, this.outA) as number);
    return this.outA[0] as number;
  }

  /** `nvmlReturn_t fn(nvmlDevice_t, char *buffer, unsigned int length)` */
  private deviceString(name: DeviceStringSymbol, device: Device, size: number): string {
    const buf = zeroBytes(this.stringBuffer, size);
    this.call(name, device, buf, size);
    return cString(buf.subarray(0, size));
  }

  /** `nvmlReturn_t fn(nvmlDevice_t, unsigned int *utilization, unsigned int *samplingPeriodUs)` */
  private codecUtilization(name: DeviceCodecSymbol, device: Device): number {
    this.call(name, device, this.outA, this.outB);
    return this.outA[0] as number;
  }

  init(): void {
    this.call('nvmlInit_v2');
  }

  shutdown(): void {
    this.call('nvmlShutdown');
  }

  driverVersion(): string {
    const size = NVML_SYSTEM_DRIVER_VERSION_BUFFER_SIZE;
    const buf = zeroBytes(this.stringBuffer, size);
    this.call('nvmlSystemGetDriverVersion', buf, size);
    return cString(buf.subarray(0, size));
  }

  deviceCount(): number {
    this.call('nvmlDeviceGetCount_v2', this.outA);
    return this.outA[0] as number;
  }

  deviceByIndex(index: number): Device {
    const out: unknown[] = [null];
    this.call('nvmlDeviceGetHandleByIndex_v2', index, out);
    return out[0];
  }

  uuid(device: Device): string {
    return this.deviceString('nvmlDeviceGetUUID', device, NVML_DEVICE_UUID_V2_BUFFER_SIZE);
  }

  name(device: Device): string {
    return this.deviceString('nvmlDeviceGetName', device, NVML_DEVICE_NAME_V2_BUFFER_SIZE);
  }

  minorNumber(device: Device): number {
    return this.deviceUint('nvmlDeviceGetMinorNumber', device);
  }

  pciInfo(device: Device): PciInfoValue {
    const out: Record<string, unknown> = {};
    this.call('nvmlDeviceGetPciInfo_v3', device, out);
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
    this.call('nvmlDeviceGetUtilizationRates', device, out);
    return { gpu: out.gpu!, memory: out.memory! };
  }

  encoderUtilization(device: Device): number {
    return this.codecUtilization('nvmlDeviceGetEncoderUtilization', device);
  }

  decoderUtilization(device: Device): number {
    return this.codecUtilization('nvmlDeviceGetDecoderUtilization', device);
  }

  /** MemoryInfo_v2 (with reserved) where the driver has it, else the v1 call. */
  memoryInfo(device: Device): MemoryInfo {
    const s = this.bound('nvmlDeviceGetMemoryInfo_v2');
    if (s.name === 'nvmlDeviceGetMemoryInfo_v2') {
      const m: Record<string, number> = { version: MEMORY_V2_VERSION, total: 0, reserved: 0, free: 0, used: 0 };
      this.check(s.name, s.fn(device, m) as number);
      return { total: Number(m.total), reserved: Number(m.reserved), free: Number(m.free), used: Number(m.used) };
    }
    const m: Record<string, number> = {};
    this.check(s.name, s.fn(device, m) as number);
    return { total: Number(m.total), free: Number(m.free), used: Number(m.used) };
  }

  temperature(device: Device, sensor = 0): number {
    return this.deviceUintOf('nvmlDeviceGetTemperature', device, sensor);
  }

  powerUsageMilliwatts(device: Device): number {
    return this.deviceUint('nvmlDeviceGetPowerUsage', device);
  }

  enforcedPowerLimitMilliwatts(device: Device): number {
    return this.deviceUint('nvmlDeviceGetEnforcedPowerLimit', device);
  }

  totalEnergyMillijoules(device: Device): number {
    return Number(this.deviceUlonglong('nvmlDeviceGetTotalEnergyConsumption', device));
  }

  clockMHz(device: Device, type: number): number {
    return this.deviceUintOf('nvmlDeviceGetClockInfo', device, type);
  }

  maxClockMHz(device: Device, type: number): number {
    return this.deviceUintOf('nvmlDeviceGetMaxClockInfo', device, type);
  }

  fanSpeedPercent(device: Device): number {
    return this.deviceUint('nvmlDeviceGetFanSpeed', device);
  }

  performanceState(device: Device): number {
    return this.deviceInt('nvmlDeviceGetPerformanceState', device);
  }

  /** Clock event (throttle) reasons; the older ThrottleReasons symbol where the new one is missing. */
  clocksEventReasons(device: Device): number {
    return Number(this.deviceUlonglong('nvmlDeviceGetCurrentClocksEventReasons', device));
  }

  pcieThroughputKBps(device: Device, counter: number): number {
    return this.deviceUintOf('nvmlDeviceGetPcieThroughput', device, counter);
  }

  /** PCIe generation the link runs at now (an idle GPU may run it slower to save power). */
  pcieLinkGeneration(device: Device): number {
    return this.deviceUint('nvmlDeviceGetCurrPcieLinkGeneration', device);
  }

  /** PCIe lanes the link runs on now. */
  pcieLinkWidth(device: Device): number {
    return this.deviceUint('nvmlDeviceGetCurrPcieLinkWidth', device);
  }

  /** Highest PCIe generation both the GPU and its slot support. */
  maxPcieLinkGeneration(device: Device): number {
    return this.deviceUint('nvmlDeviceGetMaxPcieLinkGeneration', device);
  }

  /** Most PCIe lanes both the GPU and its slot support. */
  maxPcieLinkWidth(device: Device): number {
    return this.deviceUint('nvmlDeviceGetMaxPcieLinkWidth', device);
  }

  /** Compute processes; _v3 where present, else _v2 (same entry layout). */
  computeProcesses(device: Device): ProcessInfo[] {
    const { name, fn } = this.bound('nvmlDeviceGetComputeRunningProcesses_v3');
    const count = this.outA;
    const read = ProcessInfoStruct.read;
    for (let attempt = 0; attempt < SIZING_ATTEMPTS; attempt++) {
      count[0] = 0;
      const sizing = fn(device, count, null) as number;
      if (sizing === NVML_SUCCESS) return [];
      if (sizing !== NVML_ERROR_INSUFFICIENT_SIZE) this.check(name, sizing);
      const capacity = (count[0] as number) + 4; // room for processes that start between the calls
      const buf = this.processBuffer.zeroed(capacity);
      count[0] = capacity;
      const code = fn(device, count, buf) as number;
      if (code === NVML_ERROR_INSUFFICIENT_SIZE) continue;
      this.check(name, code);
      const n = Math.min(count[0] as number, capacity);
      const out: ProcessInfo[] = new Array(n);
      for (let i = 0; i < n; i++) {
        const at = i * ProcessInfoStruct.size;
        const p: ProcessInfo = { pid: read.pid(buf, at) };
        const mem = read.usedGpuMemory(buf, at);
        const gi = read.gpuInstanceId(buf, at);
        const ci = read.computeInstanceId(buf, at);
        if (mem !== VALUE_NOT_AVAILABLE_U64) p.usedGpuMemory = Number(mem);
        if (gi !== NOT_MIG) p.gpuInstanceId = gi;
        if (ci !== NOT_MIG) p.computeInstanceId = ci;
        out[i] = p;
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
    const { name, fn } = this.bound('nvmlDeviceGetProcessUtilization');
    const lastSeen = BigInt(lastSeenTimestampUs);
    const count = this.outA;
    const read = ProcessUtilizationSampleStruct.read;
    for (let attempt = 0; attempt < SIZING_ATTEMPTS; attempt++) {
      count[0] = 0;
      const sizing = fn(device, null, count, lastSeen) as number;
      if (sizing === NVML_ERROR_NOT_FOUND) return [];
      if (sizing === NVML_SUCCESS && count[0] === 0) return [];
      if (sizing !== NVML_SUCCESS && sizing !== NVML_ERROR_INSUFFICIENT_SIZE) this.check(name, sizing);
      const needed = count[0] as number;
      const capacity = needed + Math.max(16, needed >> 2); // room for samples taken between the calls
      const buf = this.processUtilizationBuffer.zeroed(capacity);
      count[0] = capacity;
      const code = fn(device, buf, count, lastSeen) as number;
      if (code === NVML_ERROR_INSUFFICIENT_SIZE) continue;
      if (code === NVML_ERROR_NOT_FOUND) return [];
      this.check(name, code);
      const n = Math.min(count[0] as number, capacity);
      const out: ProcessUtilizationSample[] = new Array(n);
      for (let i = 0; i < n; i++) {
        const at = i * ProcessUtilizationSampleStruct.size;
        out[i] = {
          pid: read.pid(buf, at),
          timestampUs: Number(read.timeStamp(buf, at)),
          smUtilPercent: read.smUtil(buf, at),
          memUtilPercent: read.memUtil(buf, at),
          encUtilPercent: read.encUtil(buf, at),
          decUtilPercent: read.decUtil(buf, at),
        };
      }
      return out;
    }
    throw new NvmlError(name, NVML_ERROR_INSUFFICIENT_SIZE, 'sample list kept growing between calls');
  }

  migMode(device: Device): { current: number; pending: number } {
    this.call('nvmlDeviceGetMigMode', device, this.outA, this.outB);
    return { current: this.outA[0] as number, pending: this.outB[0] as number };
  }

  maxMigDeviceCount(device: Device): number {
    return this.deviceUint('nvmlDeviceGetMaxMigDeviceCount', device);
  }

  /** The MIG device in a slot, or undefined for an empty slot (NOT_FOUND). */
  migDeviceByIndex(device: Device, index: number): Device | undefined {
    const { name, fn } = this.bound('nvmlDeviceGetMigDeviceHandleByIndex');
    const out: unknown[] = [null];
    const code = fn(device, index, out) as number;
    if (code === NVML_ERROR_NOT_FOUND) return undefined;
    this.check(name, code);
    return out[0];
  }

  gpuInstanceId(device: Device): number {
    return this.deviceUint('nvmlDeviceGetGpuInstanceId', device);
  }

  computeInstanceId(device: Device): number {
    return this.deviceUint('nvmlDeviceGetComputeInstanceId', device);
  }

  /**
   * The MIG GPU instance profiles of a physical GPU, by profile index (0 up to 0x11, in order).
   * A driver lists them only while MIG mode is enabled: with it off every index is NOT_SUPPORTED
   * and this is []. An index the GPU lacks (NOT_SUPPORTED) is skipped; INVALID_ARGUMENT past the
   * first index ends the list (an older driver whose enum is shorter). INVALID_ARGUMENT for index
   * 0 refuses the device itself (a MIG device handle) and throws, as does any other error; a
   * driver without the symbol throws FUNCTION_NOT_FOUND (notSupported), as every optional call.
   */
  gpuInstanceProfiles(device: Device): GpuInstanceProfile[] {
    const { name, fn } = this.bound('nvmlDeviceGetGpuInstanceProfileInfoV');
    const { read, write, offset } = GpuInstanceProfileInfoV2;
    const profiles: GpuInstanceProfile[] = [];
    for (let profileIndex = 0; profileIndex < GPU_INSTANCE_PROFILE_COUNT; profileIndex++) {
      const buf = this.profileInfoBuffer.zeroed(1);
      write.version(buf, 0, GPU_INSTANCE_PROFILE_INFO_V2_VERSION);
      const code = fn(device, profileIndex, buf) as number;
      if (code === NVML_ERROR_NOT_SUPPORTED) continue;
      if (code === NVML_ERROR_INVALID_ARGUMENT && profileIndex > 0) break;
      this.check(name, code);
      profiles.push({
        profileIndex,
        id: read.id(buf, 0),
        name: cString(buf.subarray(offset.name, GpuInstanceProfileInfoV2.size)),
        sliceCount: read.sliceCount(buf, 0),
        instanceCount: read.instanceCount(buf, 0),
        multiprocessorCount: read.multiprocessorCount(buf, 0),
        memoryMiB: Number(read.memorySizeMB(buf, 0)),
        p2pSupported: read.isP2pSupported(buf, 0) !== 0,
      });
    }
    return profiles;
  }

  /**
   * Field values; each entry carries its own return code. A request is a field id, or
   * `{ fieldId, scopeId }` for per-link fields (NVLink throughput: scopeId 0xFFFFFFFF, i.e.
   * FieldScope.ALL_NVLINKS, is the sum over links); plain ids use scope 0.
   */
  fieldValues(device: Device, fields: readonly (number | FieldRequest)[]): FieldValueResult[] {
    const n = fields.length;
    const buf = this.fieldValueBuffer.zeroed(n);
    const { read, write, size } = FieldValue;
    for (let i = 0; i < n; i++) {
      const f = fields[i]!;
      const at = i * size;
      if (typeof f === 'number') write.fieldId(buf, at, f >>> 0);
      else {
        write.fieldId(buf, at, f.fieldId >>> 0);
        write.scopeId(buf, at, (f.scopeId ?? 0) >>> 0);
      }
    }
    this.call('nvmlDeviceGetFieldValues', device, n, buf);
    const out: FieldValueResult[] = new Array(n);
    for (let i = 0; i < n; i++) {
      const f = fields[i]!;
      const at = i * size;
      const code = read.nvmlReturn(buf, at);
      const scopeId = typeof f === 'number' ? undefined : f.scopeId;
      const fieldId = typeof f === 'number' ? f : f.fieldId;
      const r: FieldValueResult = scopeId === undefined ? { fieldId, code } : { fieldId, scopeId, code };
      if (code === NVML_SUCCESS) r.value = fieldValueNumber(buf, at);
      out[i] = r;
    }
    return out;
  }

  /** nvmlDeviceGetRemappedRows (Ampere+); NOT_SUPPORTED with MIG mode on. */
  remappedRows(device: Device): RemappedRows {
    const [corr, unc, pending, failure] = [[0], [0], [0], [0]];
    this.call('nvmlDeviceGetRemappedRows', device, corr, unc, pending, failure);
    return { correctable: corr[0]!, uncorrectable: unc[0]!, pending: pending[0] ? 1 : 0, failure: failure[0] ? 1 : 0 };
  }

  /** nvmlDeviceGetViolationStatus: policy 0 POWER, 1 THERMAL (PerfPolicy). */
  violationTime(device: Device, policy: 0 | 1): ViolationTime {
    const out: Record<string, unknown> = {};
    this.call('nvmlDeviceGetViolationStatus', device, policy, out);
    const referenceTimeUs = Number(out.referenceTime);
    return { referenceTimeNs: referenceTimeUs * 1000, referenceTimeUs, violationTimeNs: Number(out.violationTime) };
  }

  /** nvmlDeviceGetSupportedEventTypes: the EventType bits this GPU can deliver. */
  supportedEventTypes(device: Device): bigint {
    return BigInt(this.deviceUlonglong('nvmlDeviceGetSupportedEventTypes', device));
  }

  createEventSet(): EventSet {
    const out: unknown[] = [null];
    this.call('nvmlEventSetCreate', out);
    return out[0];
  }

  /** nvmlDeviceRegisterEvents, on a physical GPU (not a MIG handle); types must be among supportedEventTypes(). */
  registerEvents(device: Device, types: bigint, set: EventSet): void {
    this.call('nvmlDeviceRegisterEvents', device, types, set);
  }

  /**
   * nvmlEventSetWait_v2: the next event the set holds, waiting up to timeoutMs for one (0: only
   * what is queued already, without blocking). Undefined when none came (TIMEOUT); other codes
   * throw NvmlError. The driver queues a set's events between calls, so a caller that looks once
   * a tick with timeout 0 still gets every event, at most a tick late.
   */
  waitForEvent(set: EventSet, timeoutMs: number): NvmlEvent | undefined {
    const wait = this.bound('nvmlEventSetWait_v2');
    const timeout = Number.isFinite(timeoutMs) ? Math.min(0xffffffff, Math.max(0, Math.round(timeoutMs))) : 0xffffffff;
    const out = this.eventOut;
    return this.decodeEvent(wait.name, wait.fn(set, out, timeout) as number, out);
  }

  private decodeEvent(call: string, code: number, out: Record<string, unknown>): NvmlEvent | undefined {
    if (code === NVML_ERROR_TIMEOUT) return undefined;
    this.check(call, code);
    const ev: NvmlEvent = {
      device: out.device,
      eventType: BigInt(out.eventType as number | bigint),
      eventData: BigInt(out.eventData as number | bigint),
    };
    const gi = Number(out.gpuInstanceId);
    const ci = Number(out.computeInstanceId);
    if (gi !== NOT_MIG) ev.gpuInstanceId = gi;
    if (ci !== NOT_MIG) ev.computeInstanceId = ci;
    return ev;
  }

  /**
   * The address a device handle points at: the same for the handle nvmlDeviceGetHandleByIndex_v2
   * gives and the one an event names, so an event's GPU can be known without asking NVML (which a
   * GPU that fell off the bus no longer answers).
   */
  handleAddress(device: Device): bigint {
    return BigInt(koffi.address(device));
  }

  freeEventSet(set: EventSet): void {
    this.call('nvmlEventSetFree', set);
  }

  /**
   * nvmlGpmQueryDeviceSupport: whether the GPU has GPM (Hopper and later). The GPM symbols exist
   * on drivers and GPUs without it, so every other GPM call is gated on this one.
   */
  gpmSupported(device: Device): boolean {
    const support = { version: GPM_SUPPORT_VERSION, isSupportedDevice: 0 };
    this.call('nvmlGpmQueryDeviceSupport', device, support);
    return support.isSupportedDevice !== 0;
  }

  gpmSampleAlloc(): GpmSample {
    const out: unknown[] = [null];
    this.call('nvmlGpmSampleAlloc', out);
    return out[0];
  }

  gpmSampleFree(sample: GpmSample): void {
    this.call('nvmlGpmSampleFree', sample);
  }

  /** nvmlGpmSampleGet: the whole GPU's counters now, into `sample`. */
  gpmSampleGet(device: Device, sample: GpmSample): void {
    this.call('nvmlGpmSampleGet', device, sample);
  }

  /** nvmlGpmMigSampleGet: the counters of one MIG GPU instance (its id from gpuInstanceId()) of a parent GPU. */
  gpmMigSampleGet(parent: Device, gpuInstanceId: number, sample: GpmSample): void {
    this.call('nvmlGpmMigSampleGet', parent, gpuInstanceId, sample);
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
    this.call('nvmlGpmMetricsGet', request.buffer);
    return request.results(metricIds);
  }
}
