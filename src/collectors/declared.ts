import type { Device, FieldRequest, NvmlBinding } from '../native/nvml-binding.js';
import type { ValueKey } from '../sample.js';
import type { ValueRead } from '../values/descriptor.js';
import { VALUES } from '../values/value-table.js';
import type { Collector, GpuTarget, ValueReader } from './collector.js';
import { readFieldsInto, type FieldSpec } from './field-values.js';

type Getter = (nvml: NvmlBinding, device: Device) => number | undefined;

/** What the value table says a collector reads with a getter or a field value. */
export interface DeclaredReads {
  calls: readonly (readonly [ValueKey, Getter])[];
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
  const fields: Partial<Record<ValueKey, FieldSpec<ValueKey>[ValueKey]>> = {};
  for (const [key, read] of valuesOf(collector)) {
    if (read.kind === 'call') calls.push([key, read.get]);
    else if (read.kind === 'field') fields[key] = read.field;
  }
  const fieldNames = Object.keys(fields) as ValueKey[];
  return { calls, fields: fields as FieldSpec<ValueKey>, fieldNames, fieldRequests: fieldNames.map((k) => fields[k]!) };
}

/** Reads a collector's declared values of one GPU: each getter, then its field values in one call. */
export function readDeclared(reader: ValueReader, { device, sample }: GpuTarget, reads: DeclaredReads): void {
  const { nvml } = reader;
  const { values } = sample;
  // reader.read's contract without a closure per value: a value only when finite, errors to the reader;
  // indexed, without destructuring: every tick runs this in the interpreter tiers, where each
  // destructured entry would allocate an iterator
  const { calls } = reads;
  for (let i = 0; i < calls.length; i++) {
    const call = calls[i]!;
    try {
      const v = call[1](nvml, device);
      if (v !== undefined && Number.isFinite(v)) values[call[0]] = v;
    } catch (err) {
      reader.report(err);
    }
  }
  if (reads.fieldNames.length > 0) readFieldsInto(reader, device, reads.fieldNames, reads.fieldRequests, values);
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
