import type koffi from 'koffi';
import './gpm-abi.js';
import './nvml-structs.js';

/**
 * Every NVML function the binding calls, in one table: its parameters (a koffi prototype, the
 * struct types from nvml-structs.ts and gpm-abi.ts), whether the binding cannot work without it,
 * and the older symbols to bind where a driver lacks it. bindSymbols() binds the whole table when
 * the library is loaded; a symbol missing from an older driver is normal: it is listed once in
 * `missing`, and calling it fails as FUNCTION_NOT_FOUND ("not supported").
 */

/** Parameter lists many getters share. */
const DEVICE_UINT = 'nvmlDevice_t device, _Out_ unsigned int *value';
const DEVICE_INT = 'nvmlDevice_t device, _Out_ int *value';
const DEVICE_ULONGLONG = 'nvmlDevice_t device, _Out_ unsigned long long *value';
const DEVICE_STRING = 'nvmlDevice_t device, _Out_ uint8_t *buffer, unsigned int length';
/** An enum argument (clock type, sensor, PCIe counter) and an unsigned int out. */
const DEVICE_ENUM_UINT = 'nvmlDevice_t device, int which, _Out_ unsigned int *value';
const DEVICE_CODEC = 'nvmlDevice_t device, _Out_ unsigned int *utilization, _Out_ unsigned int *samplingPeriodUs';
const COMPUTE_PROCESSES = 'nvmlDevice_t device, _Inout_ unsigned int *infoCount, nvmlProcessInfo_t *infos';

export interface Fallback {
  readonly name: string;
  readonly params: string;
}

export interface SymbolSpec {
  /** The C parameter list, in koffi's prototype syntax. */
  readonly params: string;
  /** The C return type; default nvmlReturn_t (int). */
  readonly returns?: string;
  /** Without it the library is not a usable NVML: loading fails. */
  readonly required?: true;
  /** Older symbols tried in order where the driver lacks this one (the caller checks which one it got). */
  readonly fallbacks?: readonly Fallback[];
}

export const NVML_SYMBOLS = {
  nvmlErrorString: { returns: 'const char *', params: 'int result', required: true },
  nvmlInit_v2: { params: '', required: true },
  nvmlShutdown: { params: '', required: true },
  nvmlSystemGetDriverVersion: { params: '_Out_ uint8_t *version, unsigned int length' },
  nvmlDeviceGetCount_v2: { params: '_Out_ unsigned int *deviceCount' },
  nvmlDeviceGetHandleByIndex_v2: { params: 'unsigned int index, _Out_ nvmlDevice_t *device' },
  nvmlDeviceGetUUID: { params: DEVICE_STRING },
  nvmlDeviceGetName: { params: DEVICE_STRING },
  nvmlDeviceGetMinorNumber: { params: DEVICE_UINT },
  nvmlDeviceGetPciInfo_v3: { params: 'nvmlDevice_t device, _Out_ nvmlPciInfo_t *pci' },
  nvmlDeviceGetUtilizationRates: { params: 'nvmlDevice_t device, _Out_ nvmlUtilization_t *utilization' },
  nvmlDeviceGetEncoderUtilization: { params: DEVICE_CODEC },
  nvmlDeviceGetDecoderUtilization: { params: DEVICE_CODEC },
  nvmlDeviceGetMemoryInfo_v2: {
    params: 'nvmlDevice_t device, _Inout_ nvmlMemory_v2_t *memory',
    fallbacks: [{ name: 'nvmlDeviceGetMemoryInfo', params: 'nvmlDevice_t device, _Out_ nvmlMemory_t *memory' }],
  },
  nvmlDeviceGetTemperature: { params: DEVICE_ENUM_UINT },
  nvmlDeviceGetPowerUsage: { params: DEVICE_UINT },
  nvmlDeviceGetEnforcedPowerLimit: { params: DEVICE_UINT },
  nvmlDeviceGetTotalEnergyConsumption: { params: DEVICE_ULONGLONG },
  nvmlDeviceGetClockInfo: { params: DEVICE_ENUM_UINT },
  nvmlDeviceGetMaxClockInfo: { params: DEVICE_ENUM_UINT },
  nvmlDeviceGetFanSpeed: { params: DEVICE_UINT },
  nvmlDeviceGetPerformanceState: { params: DEVICE_INT },
  nvmlDeviceGetCurrentClocksEventReasons: {
    params: DEVICE_ULONGLONG,
    fallbacks: [{ name: 'nvmlDeviceGetCurrentClocksThrottleReasons', params: DEVICE_ULONGLONG }],
  },
  nvmlDeviceGetPcieThroughput: { params: DEVICE_ENUM_UINT },
  nvmlDeviceGetCurrPcieLinkGeneration: { params: DEVICE_UINT },
  nvmlDeviceGetCurrPcieLinkWidth: { params: DEVICE_UINT },
  nvmlDeviceGetMaxPcieLinkGeneration: { params: DEVICE_UINT },
  nvmlDeviceGetMaxPcieLinkWidth: { params: DEVICE_UINT },
  nvmlDeviceGetComputeRunningProcesses_v3: {
    params: COMPUTE_PROCESSES,
    fallbacks: [{ name: 'nvmlDeviceGetComputeRunningProcesses_v2', params: COMPUTE_PROCESSES }],
  },
  nvmlDeviceGetProcessUtilization: {
    params: 'nvmlDevice_t device, nvmlProcessUtilizationSample_t *utilization, _Inout_ unsigned int *processSamplesCount, unsigned long long lastSeenTimeStamp',
  },
  nvmlDeviceGetMigMode: { params: 'nvmlDevice_t device, _Out_ unsigned int *currentMode, _Out_ unsigned int *pendingMode' },
  nvmlDeviceGetMaxMigDeviceCount: { params: DEVICE_UINT },
  nvmlDeviceGetMigDeviceHandleByIndex: { params: 'nvmlDevice_t device, unsigned int index, _Out_ nvmlDevice_t *migDevice' },
  nvmlDeviceGetGpuInstanceId: { params: DEVICE_UINT },
  // optional, like every row without `required`: older drivers lack it (the info is a reused Buffer)
  nvmlDeviceGetGpuInstanceProfileInfoV: { params: 'nvmlDevice_t device, unsigned int profile, nvmlGpuInstanceProfileInfo_v2_t *info' },
  nvmlDeviceGetComputeInstanceId: { params: DEVICE_UINT },
  nvmlDeviceGetFieldValues: { params: 'nvmlDevice_t device, int valuesCount, nvmlFieldValue_t *values' },
  nvmlDeviceGetRemappedRows: {
    params: 'nvmlDevice_t device, _Out_ unsigned int *corrRows, _Out_ unsigned int *uncRows, _Out_ unsigned int *isPending, _Out_ unsigned int *failureOccurred',
  },
  nvmlDeviceGetViolationStatus: { params: 'nvmlDevice_t device, int perfPolicyType, _Out_ nvmlViolationTime_t *violTime' },
  nvmlDeviceGetSupportedEventTypes: { params: DEVICE_ULONGLONG },
  nvmlEventSetCreate: { params: '_Out_ nvmlEventSet_t *set' },
  nvmlDeviceRegisterEvents: { params: 'nvmlDevice_t device, unsigned long long eventTypes, nvmlEventSet_t set' },
  nvmlEventSetWait_v2: { params: 'nvmlEventSet_t set, _Out_ nvmlEventData_t *data, unsigned int timeoutms' },
  nvmlEventSetFree: { params: 'nvmlEventSet_t set' },
  nvmlGpmQueryDeviceSupport: { params: 'nvmlDevice_t device, _Inout_ nvmlGpmSupport_t *gpmSupport' },
  nvmlGpmSampleAlloc: { params: '_Out_ nvmlGpmSample_t *gpmSample' },
  nvmlGpmSampleFree: { params: 'nvmlGpmSample_t gpmSample' },
  nvmlGpmSampleGet: { params: 'nvmlDevice_t device, nvmlGpmSample_t gpmSample' },
  nvmlGpmMigSampleGet: { params: 'nvmlDevice_t device, unsigned int gpuInstanceId, nvmlGpmSample_t gpmSample' },
  nvmlGpmMetricsGet: { params: 'nvmlGpmMetricsGet_t *metricsGet' },
} as const satisfies Record<string, SymbolSpec>;

type Table = typeof NVML_SYMBOLS;
/** The name of a symbol of the table; a misspelt one does not compile. */
export type NvmlSymbolName = keyof Table;
/** The names a table row can end up bound to: its own or one of its fallbacks. */
export type BoundName<N extends NvmlSymbolName> = N | (Table[N] extends { fallbacks: readonly { name: infer F extends string }[] } ? F : never);
/** The symbols whose parameters are exactly `P` (e.g. every `nvmlReturn_t fn(nvmlDevice_t, unsigned int *)`). */
export type SymbolsWithParams<P extends string> = { [K in NvmlSymbolName]: Table[K]['params'] extends P ? K : never }[NvmlSymbolName];
export type DeviceUintSymbol = SymbolsWithParams<typeof DEVICE_UINT>;
export type DeviceIntSymbol = SymbolsWithParams<typeof DEVICE_INT>;
export type DeviceUlonglongSymbol = SymbolsWithParams<typeof DEVICE_ULONGLONG>;
export type DeviceStringSymbol = SymbolsWithParams<typeof DEVICE_STRING>;
export type DeviceEnumUintSymbol = SymbolsWithParams<typeof DEVICE_ENUM_UINT>;
export type DeviceCodecSymbol = SymbolsWithParams<typeof DEVICE_CODEC>;

export type NativeFunction = koffi.KoffiFunction;

/** A table row as bound to a library: the symbol it got (itself or a fallback), or null where the driver has none. */
export interface BoundSymbol<N extends NvmlSymbolName = NvmlSymbolName> {
  /** The symbol bound, or the last one tried when none was there (errors name it). */
  readonly name: BoundName<N>;
  readonly fn: NativeFunction | null;
}

export type BoundSymbols = { readonly [N in NvmlSymbolName]: BoundSymbol<N> };

/** Text of the FUNCTION_NOT_FOUND error of a call to a symbol the driver does not export. */
export const NOT_EXPORTED_TEXT = 'symbol not exported by this driver';

/** koffi's error for a symbol the library does not export. */
const MISSING_SYMBOL = /^Cannot find function /;

/**
 * Binds every row of the table. A missing required symbol throws; a missing optional one (and
 * each missing fallback tried for it) is listed in `missing`, once.
 */
export function bindSymbols(lib: koffi.IKoffiLib, libraryPath: string): { symbols: BoundSymbols; missing: string[] } {
  const missing: string[] = [];
  const symbols: Record<string, BoundSymbol> = {};
  const bind = (name: string, returns: string, params: string): NativeFunction | null => {
    try {
      return lib.func(`${returns} ${name}(${params})`);
    } catch (err) {
      // only an absent symbol; a prototype koffi cannot parse is a bug in the table
      if (!(err instanceof Error && MISSING_SYMBOL.test(err.message))) throw err;
      missing.push(name);
      return null;
    }
  };
  for (const [name, spec] of Object.entries(NVML_SYMBOLS) as [NvmlSymbolName, SymbolSpec][]) {
    const returns = spec.returns ?? 'int';
    let bound: BoundSymbol = { name, fn: bind(name, returns, spec.params) };
    if (!bound.fn && spec.required) throw new Error(`${libraryPath} is not a usable NVML library: it does not export ${name}`);
    for (const fb of spec.fallbacks ?? []) {
      if (bound.fn) break;
      bound = { name: fb.name as BoundName<typeof name>, fn: bind(fb.name, returns, fb.params) };
    }
    symbols[name] = bound;
  }
  return { symbols: symbols as BoundSymbols, missing };
}
