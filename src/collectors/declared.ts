import type { Device, NvmlBinding } from '../native/nvml-binding.js';
import type { ValueKey } from '../sample.js';
import type { ValueRead } from '../values/descriptor.js';
import { VALUES } from '../values/value-table.js';
import type { Collector, GpuTarget, ValueReader } from './collector.js';
import { readFields, type FieldSpec } from './field-values.js';

type Getter = (nvml: NvmlBinding, device: Device) => number | undefined;

/** What the value table says a collector reads with a getter or a field value. */
export interface DeclaredReads {
  calls: readonly (readonly [ValueKey, Getter])[];
  /** Its field values, read in one nvmlDeviceGetFieldValues call. */
  fields: FieldSpec<ValueKey>;
  hasFields: boolean;
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
  return { calls, fields: fields as FieldSpec<ValueKey>, hasFields: Object.keys(fields).length > 0 };
}

/** Reads a collector's declared values of one GPU: each getter, then its field values in one call. */
export function readDeclared(reader: ValueReader, { device, sample }: GpuTarget, reads: DeclaredReads): void {
  const { nvml } = reader;
  const { values } = sample;
  // reader.read's contract without a closure per value: a value only when finite, errors to the reader
  for (const [key, get] of reads.calls) {
    try {
      const v = get(nvml, device);
      if (v !== undefined && Number.isFinite(v)) values[key] = v;
    } catch (err) {
      reader.report(err);
    }
  }
  if (reads.hasFields) Object.assign(values, readFields(reader, device, reads.fields));
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
