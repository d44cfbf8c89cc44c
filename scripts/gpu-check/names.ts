/**
 * The exporter's family names, units and scales as the default (dcgm) naming writes them,
 * looked up from src/metrics/families.ts so the check never spells a name a second time.
 */
import {
  EVENT_FAMILIES,
  EXPORTER_FAMILIES,
  familyName,
  GPU_FAMILIES,
  INFO_FAMILIES,
  POD_FAMILIES,
  type GpuFamily,
  type SchemeName,
} from '../../src/metrics/families.js';
import type { ValueKey } from '../../src/sample.js';

/** The naming the check starts the exporter with (its default). */
export const SCHEME = 'dcgm' as const;

/**
 * The GPU family of a value key. Two families can share a source (the throttle bit mask and
 * its one-series-per-reason form): `perLabel` picks the one with a label dimension.
 */
export function gpuFamily(source: ValueKey, perLabel = false): GpuFamily {
  const found = GPU_FAMILIES.filter((f) => f.source === source && Boolean(f.labels) === perLabel);
  if (found.length !== 1) throw new Error(`gpu-check: ${found.length} GPU families with source ${source}${perLabel ? ' and a label dimension' : ''}`);
  return found[0]!;
}

/** Name, unit and scale of a GPU family in the dcgm naming. */
export function naming(source: ValueKey, perLabel = false): SchemeName {
  return familyName(gpuFamily(source, perLabel), SCHEME);
}

export function nameOf(source: ValueKey, perLabel = false): string {
  return naming(source, perLabel).name;
}

/** Every GPU family name the exporter can expose in the dcgm naming. */
export function allGpuFamilyNames(): string[] {
  return GPU_FAMILIES.map((f) => familyName(f, SCHEME).name);
}

export const INFO = { gpu: INFO_FAMILIES.gpu.name, mig: INFO_FAMILIES.mig.name };
export const POD = {
  allocated: POD_FAMILIES.allocated.name,
  memoryUsed: POD_FAMILIES.memoryUsed.name,
  smUtilization: POD_FAMILIES.smUtilization.name,
  processes: POD_FAMILIES.processes.name,
};
export const EVENTS = {
  lastXid: EVENT_FAMILIES.lastXid.dcgm.name,
  xidEvents: EVENT_FAMILIES.xidEvents.name,
  xidErrors: EVENT_FAMILIES.xidErrors.name,
  healthEvents: EVENT_FAMILIES.healthEvents.name,
  answering: EVENT_FAMILIES.answering.name,
};
export type ExporterFamilyKey = keyof typeof EXPORTER_FAMILIES;
export function exporterFamily(key: ExporterFamilyKey): string {
  return EXPORTER_FAMILIES[key].name;
}
export function allExporterFamilyNames(): string[] {
  return Object.values(EXPORTER_FAMILIES).map((f) => f.name);
}

/** Every family name declared in families.ts for the dcgm naming. */
export function declaredFamilyNames(): string[] {
  return [
    ...allGpuFamilyNames(),
    INFO.gpu,
    INFO.mig,
    ...Object.values(POD),
    ...Object.values(EVENTS),
    ...allExporterFamilyNames(),
  ];
}

/** Families of the exporter's own Node.js runtime (prom-client's default collectors). */
export function isRuntimeFamily(name: string): boolean {
  return name.startsWith('process_') || name.startsWith('nodejs_');
}
