import type { CollectorName } from '../collectors/index.js';
import type { Device, FieldRequest, NvmlBinding } from '../native/nvml-binding.js';

/**
 * The shape of one NVML value, declared once in the value table (value-table.ts): how it is
 * read, which collector owns it, its families in both naming schemes and the simulator's
 * scenario key that drives it. The sample's keys, the family table, the declarative collectors,
 * the README and simulator tables and the simulator key check are all derived from it.
 */

export type NamingScheme = 'dcgm' | 'prometheus';
export type MetricType = 'gauge' | 'counter';
/** Which series a family has: one per GPU, one per MIG instance, or both. */
export type Entity = 'gpu' | 'mig' | 'gpu+mig';

export interface SchemeName {
  name: string;
  /** Multiply NVML's raw value by this to get the exported unit. */
  scale: number;
  unit: string;
  /** Round to an integer (DCGM reports framebuffer in whole MiB). */
  integer?: boolean;
}

/**
 * A label that splits a family into several series per device, each derived from the family's
 * one source value (then scaled like any value), e.g. one series per bit of a bit mask.
 */
export interface LabelDimension {
  /** Label name; it follows the device labels (and precedes pod labels). */
  name: string;
  values: readonly { value: string; of: (raw: number) => number }[];
}

/** One series per bit of a bit mask, the label value the bit's name in snake_case: 1 while the bit is set, else 0. */
export function bitLabels(name: string, bits: Readonly<Record<string, number>>): LabelDimension {
  return {
    name,
    values: Object.entries(bits).map(([bit, mask]) => ({ value: bit.toLowerCase(), of: (raw: number) => (Math.floor(raw / mask) % 2 === 1 ? 1 : 0) })),
  };
}

/** A family exported from the value: everything but the value and its collector, which the descriptor gives. */
export interface FamilyDecl {
  type: MetricType;
  entity: Entity;
  help: string;
  /** DCGM field name where dcgm-exporter has one; else the Prometheus name is used in both schemes. */
  dcgm?: SchemeName;
  prometheus: SchemeName;
  /** Several series per device, one per label value; absent: one series per device. */
  labels?: LabelDimension;
}

/**
 * How a value is read.
 * - `call`: one NVML getter per GPU; the collector that owns it calls `get` (undefined or a
 *   non-finite number: absent). Declarative collectors need nothing else. `fixed`: a value the
 *   hardware fixes (a maximum clock, the widest PCIe link the GPU and slot allow), read for a new
 *   GPU and then once per --health.interval, its last reading carried in between.
 * - `field`: one entry of the owning collector's single nvmlDeviceGetFieldValues call.
 * - `gpm`: one metric of the gpm collector's nvmlGpmMetricsGet (per MIG instance too when `perInstance`).
 * - `collector`: filled by the owning collector's own code (a call that returns several values, a fallback).
 * - `derived`: computed from other values, by the collector or on the main thread.
 */
export type ValueRead =
  | { kind: 'call'; nvml: string; get: (nvml: NvmlBinding, device: Device) => number | undefined; fixed?: true }
  | { kind: 'field'; nvml: 'nvmlDeviceGetFieldValues'; field: number | FieldRequest; fieldName: string }
  | { kind: 'gpm'; nvml: 'nvmlGpmMetricsGet'; metric: number; metricName: string; perInstance: boolean }
  | { kind: 'collector'; nvml: string }
  | { kind: 'derived'; from: string };

export interface ValueDescriptor {
  collector: CollectorName;
  read: ValueRead;
  /**
   * The simulator's scenario key that drives the value (`gpu.N.<key>`, and `mig.N.M.<key>` for
   * a family with MIG series), or a sentence saying how the simulator arrives at it.
   */
  sim: { key: string } | { note: string };
  families: readonly FamilyDecl[];
}

/** A getter of one number per GPU. */
export function call(nvml: string, get: (n: NvmlBinding, d: Device) => number | undefined, opts: { fixed?: true } = {}): ValueRead {
  return opts.fixed ? { kind: 'call', nvml, get, fixed: true } : { kind: 'call', nvml, get };
}

/** One field of nvmlDeviceGetFieldValues, by its NVML_FI_ name (without the prefix) and id. */
export function field(fieldName: string, fieldId: number, scopeId?: number): ValueRead {
  return { kind: 'field', nvml: 'nvmlDeviceGetFieldValues', field: scopeId === undefined ? fieldId : { fieldId, scopeId }, fieldName };
}

export function gpm(metricName: string, metric: number, perInstance: boolean): ValueRead {
  return { kind: 'gpm', nvml: 'nvmlGpmMetricsGet', metric, metricName, perInstance };
}

export function byCollector(nvml: string): ValueRead {
  return { kind: 'collector', nvml };
}

export function derived(from: string): ValueRead {
  return { kind: 'derived', from };
}

export const simKey = (key: string): { key: string } => ({ key });
export const simNote = (note: string): { note: string } => ({ note });
