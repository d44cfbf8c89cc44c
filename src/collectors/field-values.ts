import type { Device, FieldRequest } from '../native/nvml-binding.js';
import { NVML_ERROR_FUNCTION_NOT_FOUND, NVML_ERROR_NOT_SUPPORTED, NVML_SUCCESS, NvmlError } from '../native/nvml-return.js';
import type { ValueReader } from './collector.js';

const NVML_ERROR_INVALID_ARGUMENT = 2;

/**
 * Entry codes that mean "this GPU or driver does not have this field". The ids and scopes asked
 * for are fixed and valid, so an INVALID_ARGUMENT entry means a driver older than the field id.
 */
const ABSENT = new Set([NVML_ERROR_NOT_SUPPORTED, NVML_ERROR_FUNCTION_NOT_FOUND, NVML_ERROR_INVALID_ARGUMENT]);

/** What to read: a name for each field (a ValueKey, or a collector's own name for a value it only looks at). */
export type FieldSpec<K extends string> = Readonly<Record<K, number | FieldRequest>>;

/**
 * Reads several field values of one GPU in a single nvmlDeviceGetFieldValues call. Every entry
 * carries its own return code: a value read comes back under its name; NOT_SUPPORTED (or a field
 * the driver does not know) leaves the name out; any other code is recorded as the collector's
 * error (GPU_IS_LOST aborts the GPU) while the other entries are still kept. A failure of the
 * whole call is recorded the same way and gives an empty result.
 */
export function readFields<K extends string>(reader: ValueReader, device: Device, spec: FieldSpec<K>): Partial<Record<K, number>> {
  const names = Object.keys(spec) as K[];
  const out: Partial<Record<K, number>> = {};
  readFieldsInto(reader, device, names, names.map((n) => spec[n]), out);
  return out;
}

/**
 * readFields with the names and requests listed already (a collector that reads the same fields
 * every tick lists them once), writing each value read into `out` under its name.
 */
export function readFieldsInto<K extends string>(reader: ValueReader, device: Device, names: readonly K[], requests: readonly (number | FieldRequest)[], out: Partial<Record<K, number>>): void {
  let results: ReturnType<ValueReader['nvml']['fieldValues']>;
  try {
    results = reader.nvml.fieldValues(device, requests);
  } catch (err) {
    reader.report(err);
    return;
  }
  for (let i = 0; i < results.length; i++) {
    const r = results[i]!;
    const name = names[i]!;
    if (r.code === NVML_SUCCESS) {
      if (r.value !== undefined && Number.isFinite(r.value)) out[name] = r.value;
      continue;
    }
    if (ABSENT.has(r.code)) continue;
    const scope = r.scopeId !== undefined ? `, scope ${r.scopeId}` : '';
    reader.report(new NvmlError('nvmlDeviceGetFieldValues', r.code, `field ${r.fieldId}${scope} (${name})`));
  }
}
