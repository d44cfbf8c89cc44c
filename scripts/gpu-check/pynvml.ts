/** The JSON that scripts/gpu-check/pynvml_read.py prints, typed and checked. */

export interface FieldEntry {
  value?: number;
  error?: string;
  code?: number;
}

export interface GpmReading {
  supported: boolean;
  span_s?: number;
  /** By GPM metric id: percent (activity) or MiB/s (PCIe, NVLink). */
  metrics?: Record<string, number>;
  errors?: Record<string, string>;
  error?: string;
}

export interface PyProcess {
  pid: number;
  used_memory: number | null;
  gpu_instance_id: number | null;
  compute_instance_id: number | null;
}

export interface PyProcessUtil {
  pid: number;
  sm: number;
  mem: number;
  samples: number;
}

export type PyValueKey =
  | 'memory_total' | 'memory_reserved' | 'memory_used' | 'memory_free'
  | 'energy_mj' | 'power_violation_ns' | 'thermal_violation_ns'
  | 'remapped_correctable' | 'remapped_uncorrectable' | 'remapped_pending' | 'remapped_failure'
  | 'pcie_tx_kbps' | 'pcie_rx_kbps' | 'mig_mode';

export interface PyMig {
  index: number;
  uuid: string;
  gpu_instance_id: number | null;
  compute_instance_id: number | null;
  values: Partial<Record<PyValueKey, number>>;
  errors: Record<string, string>;
  processes: PyProcess[] | null;
  gpm?: GpmReading;
}

export interface PyGpu {
  index: number;
  uuid: string;
  /** Wall clock (s) right after the counters (energy, violation time, field values) were read. */
  read_at: number;
  values: Partial<Record<PyValueKey, number>>;
  /** By value key: "NVML error N: ..." (the GPU's answer) or "python: ..." (the binding's). */
  errors: Record<string, string>;
  /** By field id, "138:4294967295" for a scoped one. An entry with `code` is NVML's answer; without, a Python error. */
  fields: Record<string, FieldEntry>;
  gpm?: GpmReading;
  /** null on MIG-enabled GPUs (see mig[].processes) or when the call failed. */
  processes: PyProcess[] | null;
  process_utilization?: PyProcessUtil[] | null;
  events?: { supported_types?: number; registered: boolean; error?: string };
  mig: PyMig[];
}

export interface PyReadingOk {
  ok: true;
  started_at: number;
  finished_at: number;
  module: string;
  version: string | null;
  driver_version?: string;
  gpus: PyGpu[];
}

export interface PyReadingFailed {
  ok: false;
  stage: 'import' | 'init' | 'read';
  error: string;
}

export type PyReading = PyReadingOk | PyReadingFailed;

function need(cond: unknown, what: string): asserts cond {
  if (!cond) throw new Error(`pynvml_read.py output: ${what}`);
}

/** Parses and checks the helper's output (the shape, not every value). */
export function parsePynvml(text: string): PyReading {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new Error(`pynvml_read.py output is not JSON: ${(err as Error).message}: ${text.slice(0, 200)}`);
  }
  need(typeof raw === 'object' && raw !== null, 'not an object');
  const r = raw as Record<string, unknown>;
  if (r.ok === false) {
    need(typeof r.error === 'string', 'a failure without an error text');
    return r as unknown as PyReadingFailed;
  }
  need(r.ok === true, 'no "ok"');
  need(Array.isArray(r.gpus), 'no "gpus" list');
  for (const g of r.gpus as Record<string, unknown>[]) {
    need(typeof g.index === 'number' && typeof g.uuid === 'string', 'a GPU without index and uuid');
    need(typeof g.values === 'object' && g.values !== null, `GPU ${g.index}: no "values"`);
    need(typeof g.fields === 'object' && g.fields !== null, `GPU ${g.index}: no "fields"`);
    need(typeof g.read_at === 'number', `GPU ${g.index}: no "read_at"`);
    need(Array.isArray(g.mig), `GPU ${g.index}: no "mig" list`);
    g.errors ??= {};
  }
  return r as unknown as PyReadingOk;
}

/** A field value, or its error (undefined when the field was not read). */
export function field(g: PyGpu, id: number, scope?: number): FieldEntry | undefined {
  return g.fields[scope === undefined ? String(id) : `${id}:${scope}`];
}
