/** nvmlReturn_t codes and their symbolic names (see docs/nvml-abi facts). */
export const NVML_SUCCESS = 0;
export const NVML_ERROR_INVALID_ARGUMENT = 2;
export const NVML_ERROR_NOT_SUPPORTED = 3;
export const NVML_ERROR_NOT_FOUND = 6;
export const NVML_ERROR_INSUFFICIENT_SIZE = 7;
export const NVML_ERROR_TIMEOUT = 10;
export const NVML_ERROR_FUNCTION_NOT_FOUND = 13;
export const NVML_ERROR_GPU_IS_LOST = 15;

const RETURN_NAMES: Record<number, string> = {
  0: 'SUCCESS',
  1: 'UNINITIALIZED',
  2: 'INVALID_ARGUMENT',
  3: 'NOT_SUPPORTED',
  4: 'NO_PERMISSION',
  5: 'ALREADY_INITIALIZED',
  6: 'NOT_FOUND',
  7: 'INSUFFICIENT_SIZE',
  8: 'INSUFFICIENT_POWER',
  9: 'DRIVER_NOT_LOADED',
  10: 'TIMEOUT',
  11: 'IRQ_ISSUE',
  12: 'LIBRARY_NOT_FOUND',
  13: 'FUNCTION_NOT_FOUND',
  14: 'CORRUPTED_INFOROM',
  15: 'GPU_IS_LOST',
  16: 'RESET_REQUIRED',
  17: 'OPERATING_SYSTEM',
  18: 'LIB_RM_VERSION_MISMATCH',
  19: 'IN_USE',
  20: 'MEMORY',
  21: 'NO_DATA',
  22: 'VGPU_ECC_NOT_SUPPORTED',
  23: 'INSUFFICIENT_RESOURCES',
  24: 'FREQ_NOT_SUPPORTED',
  25: 'ARGUMENT_VERSION_MISMATCH',
  26: 'DEPRECATED',
  27: 'NOT_READY',
  28: 'GPU_NOT_FOUND',
  29: 'INVALID_STATE',
  999: 'UNKNOWN',
};

export function nvmlReturnName(code: number): string {
  return RETURN_NAMES[code] ?? `CODE_${code}`;
}

/**
 * A failed NVML call: which function, the code, its symbolic name and the driver's text. It
 * carries no stack trace: the call it names says where it came from, and "not supported"
 * answers come by the dozen every tick, where capturing stacks would cost more than the calls.
 */
export class NvmlError extends Error {
  readonly call: string;
  readonly code: number;
  readonly codeName: string;
  readonly driverText: string;

  constructor(call: string, code: number, driverText: string) {
    const codeName = nvmlReturnName(code);
    const stackLimit = Error.stackTraceLimit;
    Error.stackTraceLimit = 0;
    super(`${call} failed: NVML_ERROR_${codeName} (${code}): ${driverText}`);
    Error.stackTraceLimit = stackLimit;
    this.name = 'NvmlError';
    this.call = call;
    this.code = code;
    this.codeName = codeName;
    this.driverText = driverText;
  }

  get notSupported(): boolean {
    return this.code === NVML_ERROR_NOT_SUPPORTED || this.code === NVML_ERROR_FUNCTION_NOT_FOUND;
  }

  get gpuLost(): boolean {
    return this.code === NVML_ERROR_GPU_IS_LOST;
  }
}
