import type { Device, FieldRequest, NvmlBinding } from '../native/nvml-binding.js';
import { NvmlError } from '../native/nvml-return.js';
import type { ValueKey, Values } from '../sample.js';
import type { ValueRead } from '../values/descriptor.js';
import { VALUES } from '../values/value-table.js';
import type { Collector, GpuTarget, ValueReader } from './collector.js';
import { readFieldsInto, type FieldSpec } from './field-values.js';

type Getter = (nvml: NvmlBinding, device: Device) => number | undefined;

/** What the value table says a collector reads with a getter or a field value. */
export interface DeclaredReads {
  calls: readonly (readonly [ValueKey, Getter])[];
  /** Getters of values the hardware fixes: read when the tick says so (GpuTarget.readFixed), else carried. */
  fixedCalls: readonly (readonly [ValueKey, Getter])[];
  /** GpuTarget.state key of the last reading of fixedCalls. */
  fixedStateKey: string;
  /** Its field values, read in one nvmlDeviceGetFieldValues call. */
  fields: FieldSpec<ValueKey>;
  /** The same fields as two lists (names, requests), made once for every tick's call. */
  fieldNames: readonly ValueKey[];
  fieldRequests: readonly (number | FieldRequest)[];
}

/** The value table's entries of one collector, with how each is read. */
export function valuesOf(collector: string): [ValueKey, ValueRead][] {
  const out: [ValueKey, ValueRead][] = [];
  for (const [key, v] of Object.entries(VALUES) as [ValueKey, (typeof VALUES)[ValueKey]][]) {
    if (v.collector === collector) out.push([key, v.read]);
  }
  return out;
}

export function declaredReads(collector: string): DeclaredReads {
  const calls: [ValueKey, Getter][] = [];
  const fixedCalls: [ValueKey, Getter][] = [];
  const fields: Partial<Record<ValueKey, FieldSpec<ValueKey>[ValueKey]>> = {};
  for (const [key, read] of valuesOf(collector)) {
    if (read.kind === 'call') (read.fixed ? fixedCalls : calls).push([key, read.get]);
    else if (read.kind === 'field') fields[key] = read.field;
  }
  const fieldNames = Object.keys(fields) as ValueKey[];
  return { calls, fixedCalls, fixedStateKey: `${collector}:fixed`, fields: fields as FieldSpec<ValueKey>, fieldNames, fieldRequests: fieldNames.map((k) => fields[k]!) };
}

/**
 * Calls each getter, writing finite values into `into`; errors go to the reader (reader.read's
 * contract without a closure per value). Returns whether a call failed other than NOT_SUPPORTED.
 */
function readCalls(reader: ValueReader, device: Device, calls: DeclaredReads['calls'], into: Values): boolean {
  const { nvml } = reader;
  let failed = false;
  // indexed, without destructuring: every tick runs this in the interpreter tiers, where each
  // destructured entry would allocate an iterator
  for (let i = 0; i < calls.length; i++) {
    const call = calls[i]!;
    try {
      const v = call[1](nvml, device);
      if (v !== undefined && Number.isFinite(v)) into[call[0]] = v;
    } catch (err) {
      if (!(err instanceof NvmlError && err.notSupported)) failed = true;
      reader.report(err);
    }
  }
  return failed;
}

/**
 * The values the hardware fixes: read when the tick asks for them (a new GPU, then once per slow
 * interval) and kept in the GPU's state bag; carried from there in between. A reading with a
 * failed call is not kept, so the next tick reads again and reports the error again.
 */
function readFixedCalls(reader: ValueReader, gpu: GpuTarget, reads: DeclaredReads): void {
  const { values } = gpu.sample;
  const carried = gpu.state.get(reads.fixedStateKey) as Values | undefined;
  if (carried && !gpu.readFixed) {
    Object.assign(values, carried);
    return;
  }
  const reading: Values = {};
  const failed = readCalls(reader, gpu.device, reads.fixedCalls, reading);
  if (failed) gpu.state.delete(reads.fixedStateKey);
  else gpu.state.set(reads.fixedStateKey, reading);
  Object.assign(values, reading);
}

/** Reads a collector's declared values of one GPU: each getter (fixed ones when due), then its field values in one call. */
export function readDeclared(reader: ValueReader, gpu: GpuTarget, reads: DeclaredReads): void {
  const { device, sample } = gpu;
  readCalls(reader, device, reads.calls, sample.values);
  if (reads.fixedCalls.length > 0) readFixedCalls(reader, gpu, reads);
  if (reads.fieldNames.length > 0) readFieldsInto(reader, device, reads.fieldNames, reads.fieldRequests, sample.values);
}

export interface DeclaredCollectorSpec {
  name: string;
  description: string;
  /** Default true. */
  defaultEnabled?: boolean;
  slow?: boolean;
}

/**
 * A collector that reads exactly what the value table gives it (getters and field values) and
 * has no code of its own: most simple values need nothing more.
 */
export function declaredCollector(spec: DeclaredCollectorSpec): Collector {
  let reads: DeclaredReads | undefined;
  return {
    name: spec.name,
    description: spec.description,
    defaultEnabled: spec.defaultEnabled ?? true,
    ...(spec.slow ? { slow: true } : {}),
    collect(reader, gpu) {
      readDeclared(reader, gpu, (reads ??= declaredReads(spec.name)));
    },
  };
}
