/**
 * nvidia-smi's CSV queries: the fields asked for and a parser for what
 * `--format=csv,noheader,nounits` prints. Values stay text here; the rules read them.
 */

/**
 * What the check reads from `nvidia-smi --query-gpu`, by key, each with the field names to
 * try in order (drivers rename fields: clocks_throttle_reasons became clocks_event_reasons
 * in R535, and older drivers lack some fields altogether).
 */
export const GPU_QUERY = {
  index: ['index'],
  uuid: ['uuid'],
  name: ['name'],
  busId: ['pci.bus_id'],
  driver: ['driver_version'],
  utilGpu: ['utilization.gpu'],
  utilMem: ['utilization.memory'],
  utilEnc: ['utilization.encoder'],
  utilDec: ['utilization.decoder'],
  memTotal: ['memory.total'],
  memReserved: ['memory.reserved'],
  memUsed: ['memory.used'],
  memFree: ['memory.free'],
  tempGpu: ['temperature.gpu'],
  tempMem: ['temperature.memory'],
  powerDraw: ['power.draw'],
  powerAverage: ['power.draw.average'],
  powerLimit: ['enforced.power.limit'],
  clockGr: ['clocks.gr'],
  clockSm: ['clocks.sm'],
  clockMem: ['clocks.mem'],
  maxClockGr: ['clocks.max.gr'],
  maxClockSm: ['clocks.max.sm'],
  maxClockMem: ['clocks.max.mem'],
  fan: ['fan.speed'],
  pstate: ['pstate'],
  pcieGen: ['pcie.link.gen.current'],
  pcieGenMax: ['pcie.link.gen.max'],
  pcieWidth: ['pcie.link.width.current'],
  pcieWidthMax: ['pcie.link.width.max'],
  migMode: ['mig.mode.current'],
  throttle: ['clocks_event_reasons.active', 'clocks_throttle_reasons.active'],
  eccSbeVol: ['ecc.errors.corrected.volatile.total'],
  eccDbeVol: ['ecc.errors.uncorrected.volatile.total'],
  eccSbeAgg: ['ecc.errors.corrected.aggregate.total'],
  eccDbeAgg: ['ecc.errors.uncorrected.aggregate.total'],
  retiredSbe: ['retired_pages.single_bit_ecc.count'],
  retiredDbe: ['retired_pages.double_bit.count'],
  retiredPending: ['retired_pages.pending'],
} as const satisfies Record<string, readonly string[]>;

export type GpuKey = keyof typeof GPU_QUERY;

/** One GPU's row: the text of each field that was asked for, by key. */
export type SmiRow = Partial<Record<GpuKey, string>>;

/** The field asked for under each key (keys the driver knows under no name are left out). */
export type FieldChoice = Partial<Record<GpuKey, string>>;

export function initialChoice(): FieldChoice {
  const out: FieldChoice = {};
  for (const [k, names] of Object.entries(GPU_QUERY) as [GpuKey, readonly string[]][]) out[k] = names[0];
  return out;
}

/**
 * After nvidia-smi rejected `field`, the next name for its key, or the key dropped. Returns
 * false when the field is not one the check asked for (then the error is not about fields).
 */
export function dropField(choice: FieldChoice, field: string): boolean {
  const key = (Object.keys(choice) as GpuKey[]).find((k) => choice[k] === field);
  if (!key) return false;
  const names = GPU_QUERY[key] as readonly string[];
  const next = names[names.indexOf(field) + 1];
  if (next) choice[key] = next;
  else delete choice[key];
  return true;
}

/** The field nvidia-smi says it does not know, from its error text. */
export function rejectedField(output: string): string | undefined {
  return /Field "([^"]+)" is not a valid field to query/.exec(output)?.[1];
}

export function queryFields(choice: FieldChoice): { keys: GpuKey[]; fields: string[] } {
  const keys = (Object.keys(GPU_QUERY) as GpuKey[]).filter((k) => choice[k] !== undefined);
  return { keys, fields: keys.map((k) => choice[k]!) };
}

function splitCsvLine(line: string): string[] {
  return line.split(',').map((s) => s.trim());
}

/**
 * Parses `nvidia-smi --query-gpu=<fields> --format=csv,noheader,nounits`: one line per GPU,
 * the fields in the order asked, separated by ", ".
 */
export function parseGpuCsv(text: string, fields: readonly string[], keys?: readonly GpuKey[]): SmiRow[] {
  const byField = keys ?? fields.map((f) => {
    const k = (Object.keys(GPU_QUERY) as GpuKey[]).find((key) => (GPU_QUERY[key] as readonly string[]).includes(f));
    if (!k) throw new Error(`nvidia-smi field ${f} is not one the check reads`);
    return k;
  });
  const rows: SmiRow[] = [];
  for (const [i, line] of text.split('\n').entries()) {
    if (line.trim() === '') continue;
    const cells = splitCsvLine(line);
    if (cells.length !== fields.length) {
      throw new Error(`nvidia-smi --query-gpu line ${i + 1} has ${cells.length} fields, asked for ${fields.length}: ${line}`);
    }
    const row: SmiRow = {};
    byField.forEach((k, j) => (row[k] = cells[j]!));
    rows.push(row);
  }
  return rows;
}

/** A running compute process as `nvidia-smi --query-compute-apps` lists it. */
export interface ComputeApp {
  pid: number;
  gpuUuid: string;
  /** MiB as printed, or the marker ("[N/A]" where the driver does not say). */
  usedMemory: string;
  processName: string;
}

export const APPS_FIELDS = ['pid', 'gpu_uuid', 'used_memory', 'process_name'] as const;

/** `nvidia-smi --query-compute-apps=pid,gpu_uuid,used_memory,process_name --format=csv,noheader,nounits`. */
export function parseAppsCsv(text: string): ComputeApp[] {
  const out: ComputeApp[] = [];
  for (const [i, line] of text.split('\n').entries()) {
    const t = line.trim();
    if (t === '' || /^No running/i.test(t)) continue;
    const cells = splitCsvLine(t);
    if (cells.length < APPS_FIELDS.length || !/^\d+$/.test(cells[0]!)) {
      throw new Error(`nvidia-smi --query-compute-apps line ${i + 1} is not pid, gpu_uuid, used_memory, process_name: ${line}`);
    }
    out.push({ pid: Number(cells[0]), gpuUuid: cells[1]!, usedMemory: cells[2]!, processName: cells.slice(3).join(', ') });
  }
  return out;
}

/** A GPU (and its MIG devices) as `nvidia-smi -L` lists them. */
export interface ListedGpu {
  index: number;
  name: string;
  uuid: string;
  mig: { device: number; profile: string; uuid: string }[];
}

/**
 * `nvidia-smi -L`:
 *   GPU 0: NVIDIA H100 80GB HBM3 (UUID: GPU-...)
 *     MIG 3g.40gb     Device  0: (UUID: MIG-...)
 */
export function parseList(text: string): ListedGpu[] {
  const out: ListedGpu[] = [];
  for (const line of text.split('\n')) {
    const gpu = /^GPU (\d+): (.*) \(UUID: (GPU-[^)]+)\)\s*$/.exec(line.trim());
    if (gpu) {
      out.push({ index: Number(gpu[1]), name: gpu[2]!, uuid: gpu[3]!, mig: [] });
      continue;
    }
    const mig = /^MIG (\S+)\s+Device\s+(\d+): \(UUID: ([^)]+)\)\s*$/.exec(line.trim());
    if (mig && out.length > 0) out[out.length - 1]!.mig.push({ profile: mig[1]!, device: Number(mig[2]), uuid: mig[3]! });
  }
  return out;
}
