import koffi from 'koffi';
import { cStruct, cUnion } from './c-struct.js';
import { GPM_ABI_SIZES } from './gpm-abi.js';

/**
 * The C structs of the NVML calls the binding makes (x86-64 / aarch64 Linux, LP64), as koffi
 * types. Prototypes in nvml-symbols.ts name them; their sizes (ABI_SIZES) are checked by a test
 * against the simulated library's _Static_asserts. The GPM structs are in gpm-abi.ts.
 */

/** Opaque handles: pointers NVML owns. */
koffi.pointer('nvmlDevice_t', koffi.opaque('nvmlDevice_st'));
koffi.pointer('nvmlEventSet_t', koffi.opaque('nvmlEventSet_st'));

export const PciInfo = cStruct('nvmlPciInfo_t', {
  busIdLegacy: koffi.array('char', 16),
  domain: 'unsigned int',
  bus: 'unsigned int',
  device: 'unsigned int',
  pciDeviceId: 'unsigned int',
  pciSubSystemId: 'unsigned int',
  busId: koffi.array('char', 32),
});

export const Utilization = cStruct('nvmlUtilization_t', { gpu: 'unsigned int', memory: 'unsigned int' });

export const Memory = cStruct('nvmlMemory_t', { total: 'unsigned long long', free: 'unsigned long long', used: 'unsigned long long' });

export const MemoryV2 = cStruct('nvmlMemory_v2_t', {
  version: 'unsigned int',
  total: 'unsigned long long',
  reserved: 'unsigned long long',
  free: 'unsigned long long',
  used: 'unsigned long long',
});
/** nvmlMemory_v2: sizeof | 2 << 24. */
export const MEMORY_V2_VERSION = (MemoryV2.size | (2 << 24)) >>> 0;

/** The entry of nvmlDeviceGetComputeRunningProcesses_v3 (and _v2: the same layout). */
export const ProcessInfo = cStruct('nvmlProcessInfo_t', {
  pid: 'unsigned int',
  usedGpuMemory: 'unsigned long long',
  gpuInstanceId: 'unsigned int',
  computeInstanceId: 'unsigned int',
});

export const ProcessUtilizationSample = cStruct('nvmlProcessUtilizationSample_t', {
  pid: 'unsigned int',
  timeStamp: 'unsigned long long',
  smUtil: 'unsigned int',
  memUtil: 'unsigned int',
  encUtil: 'unsigned int',
  decUtil: 'unsigned int',
});

/** nvmlValueType_t: which member of nvmlValue_t a field value is in. */
export const NVML_VALUE_TYPE = {
  DOUBLE: 0,
  UNSIGNED_INT: 1,
  UNSIGNED_LONG: 2,
  UNSIGNED_LONG_LONG: 3,
  SIGNED_LONG_LONG: 4,
  SIGNED_INT: 5,
  UNSIGNED_SHORT: 6,
} as const;
export type NvmlValueType = (typeof NVML_VALUE_TYPE)[keyof typeof NVML_VALUE_TYPE];

export const Value = cUnion('nvmlValue_t', {
  dVal: 'double',
  siVal: 'int',
  uiVal: 'unsigned int',
  ulVal: 'unsigned long',
  ullVal: 'unsigned long long',
  sllVal: 'long long',
  usVal: 'unsigned short',
});

export const FieldValue = cStruct('nvmlFieldValue_t', {
  fieldId: 'unsigned int',
  scopeId: 'unsigned int',
  timestamp: 'long long',
  latencyUsec: 'long long',
  valueType: 'int',
  nvmlReturn: 'int',
  value: Value,
});

/** Reads the value of a field value entry at `at` as a number, by its type; NaN for a type this binding does not know. */
export function fieldValueNumber(buf: Buffer, at: number): number {
  const read = VALUE_READERS[FieldValue.read.valueType(buf, at) as NvmlValueType];
  return read ? read(buf, at + FieldValue.offset.value) : Number.NaN;
}

const VALUE_READERS: Readonly<Record<NvmlValueType, (buf: Buffer, at: number) => number>> = {
  [NVML_VALUE_TYPE.DOUBLE]: (b, at) => Value.read.dVal(b, at),
  [NVML_VALUE_TYPE.UNSIGNED_INT]: (b, at) => Value.read.uiVal(b, at),
  [NVML_VALUE_TYPE.UNSIGNED_LONG]: (b, at) => Number(Value.read.ulVal(b, at)),
  [NVML_VALUE_TYPE.UNSIGNED_LONG_LONG]: (b, at) => Number(Value.read.ullVal(b, at)),
  [NVML_VALUE_TYPE.SIGNED_LONG_LONG]: (b, at) => Number(Value.read.sllVal(b, at)),
  [NVML_VALUE_TYPE.SIGNED_INT]: (b, at) => Value.read.siVal(b, at),
  [NVML_VALUE_TYPE.UNSIGNED_SHORT]: (b, at) => Value.read.usVal(b, at),
};

export const ViolationTime = cStruct('nvmlViolationTime_t', { referenceTime: 'unsigned long long', violationTime: 'unsigned long long' });

export const EventData = cStruct('nvmlEventData_t', {
  device: 'nvmlDevice_t',
  eventType: 'unsigned long long',
  eventData: 'unsigned long long',
  gpuInstanceId: 'unsigned int',
  computeInstanceId: 'unsigned int',
});

/**
 * nvmlDeviceGetGpuInstanceProfileInfoV's answer: one MIG GPU instance profile. Read from a reused
 * Buffer; `name` through its offset (a NUL-terminated char[96]).
 */
export const GpuInstanceProfileInfoV2 = cStruct('nvmlGpuInstanceProfileInfo_v2_t', {
  version: 'unsigned int',
  id: 'unsigned int',
  isP2pSupported: 'unsigned int',
  sliceCount: 'unsigned int',
  instanceCount: 'unsigned int',
  multiprocessorCount: 'unsigned int',
  copyEngineCount: 'unsigned int',
  decoderCount: 'unsigned int',
  encoderCount: 'unsigned int',
  jpegCount: 'unsigned int',
  ofaCount: 'unsigned int',
  memorySizeMB: 'unsigned long long',
  name: koffi.array('char', 96),
});
/** nvmlGpuInstanceProfileInfo_v2: sizeof | 2 << 24 (0x02000098). */
export const GPU_INSTANCE_PROFILE_INFO_V2_VERSION = (GpuInstanceProfileInfoV2.size | (2 << 24)) >>> 0;
/** NVML_GPU_INSTANCE_PROFILE_COUNT: profile indexes are 0 (NVML_GPU_INSTANCE_PROFILE_1_SLICE) up to 0x11. */
export const GPU_INSTANCE_PROFILE_COUNT = 0x12;

/** Sizes of the C structs the binding passes, from koffi's layout; a test checks them against the simulator's _Static_asserts. */
export const ABI_SIZES = {
  nvmlPciInfo_t: PciInfo.size,
  nvmlUtilization_t: Utilization.size,
  nvmlMemory_t: Memory.size,
  nvmlMemory_v2_t: MemoryV2.size,
  nvmlProcessInfo_t: ProcessInfo.size,
  nvmlProcessUtilizationSample_t: ProcessUtilizationSample.size,
  nvmlFieldValue_t: FieldValue.size,
  nvmlViolationTime_t: ViolationTime.size,
  nvmlEventData_t: EventData.size,
  nvmlGpuInstanceProfileInfo_v2_t: GpuInstanceProfileInfoV2.size,
  ...GPM_ABI_SIZES,
};
