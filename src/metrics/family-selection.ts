import { EVENT_FAMILIES, familyName, GPU_FAMILIES } from './families.js';

/** What the user chose to export: the series budget. */
export interface SelectionOptions {
  /** Families to keep, matched against a family's name in either naming scheme (--metrics.include). */
  include?: RegExp;
  /** Families to drop, likewise (--metrics.exclude); the exporter's own families too, by name. */
  exclude?: RegExp;
  /** DCGM fields to keep (--dcgm.counters): families with a DCGM name not listed are dropped. */
  dcgmFields?: readonly string[];
}

interface KnownFamily {
  /** Its names in both schemes. */
  names: readonly string[];
  /** Its DCGM field name, when dcgm-exporter has the value. */
  dcgmField?: string;
}

/** Every family with a DCGM field, by each of its names. */
function knownFamilies(): Map<string, KnownFamily> {
  const out = new Map<string, KnownFamily>();
  const add = (names: string[], dcgmField?: string): void => {
    const known: KnownFamily = dcgmField ? { names, dcgmField } : { names };
    for (const n of names) out.set(n, known);
  };
  for (const f of GPU_FAMILIES) {
    const names = [...new Set([familyName(f, 'dcgm').name, familyName(f, 'prometheus').name])];
    add(names, f.dcgm?.name);
  }
  add([EVENT_FAMILIES.lastXid.dcgm.name, EVENT_FAMILIES.lastXid.prometheus.name], EVENT_FAMILIES.lastXid.dcgm.name);
  return out;
}

/** The DCGM fields the exporter has a family for. */
export function implementedDcgmFields(): Set<string> {
  const out = new Set<string>();
  for (const k of knownFamilies().values()) if (k.dcgmField) out.add(k.dcgmField);
  return out;
}

/** The exporter's own families and its process metrics: kept unless excluded by name. */
function isOwn(name: string): boolean {
  return name.startsWith('kube_gpu_exporter_') || name.startsWith('process_') || name.startsWith('nodejs_');
}

/**
 * Whether a family is exported, by its name as rendered; undefined when nothing is selected
 * (every family is). Decisions are kept per name, so each costs one lookup per render.
 */
export function familySelection(opts: SelectionOptions): ((name: string) => boolean) | undefined {
  const { include, exclude, dcgmFields } = opts;
  if (!include && !exclude && !dcgmFields) return undefined;
  const known = knownFamilies();
  const fields = dcgmFields ? new Set(dcgmFields) : undefined;
  const decided = new Map<string, boolean>();
  const decide = (name: string): boolean => {
    const family = known.get(name);
    const names = family?.names ?? [name];
    if (exclude && names.some((n) => exclude.test(n))) return false;
    if (isOwn(name)) return true;
    if (include && !names.some((n) => include.test(n))) return false;
    if (fields && family?.dcgmField && !fields.has(family.dcgmField)) return false;
    return true;
  };
  return (name) => {
    let keep = decided.get(name);
    if (keep === undefined) decided.set(name, (keep = decide(name)));
    return keep;
  };
}
