/**
 * One run of the check as data: what was read (raw text, as the tools printed it) and the
 * same parsed. `--record DIR` writes the raw form (record.ts); the comparison only ever sees
 * the parsed form, so a recording replays to the same table.
 */
import { parseScrape, type Scrape } from './prom.js';
import { parsePynvml, type PyReading } from './pynvml.js';
import { parseAppsCsv, parseGpuCsv, parseList, type ComputeApp, type GpuKey, type ListedGpu, type SmiRow } from './smi-csv.js';
import { parseSmiXml, type XmlLog } from './smi-xml.js';

export const PHASES = ['idle', 'load', 'after'] as const;
export type PhaseName = (typeof PHASES)[number];

export interface PidInfo {
  /** /proc/<pid> exists here (the driver's pid is in this pid namespace). */
  visible: boolean;
  /** Its cgroup is a Kubernetes pod's (kubepods). */
  inPod: boolean;
  /** That pod's UID, from the cgroup path (the exporter labels its series pod_uid with it). */
  podUid?: string;
}

export interface LoadInfo {
  kind: 'torch' | 'cuda';
  pid: number;
  /** The GPU the load ran on, and the MIG instance when the GPU is MIG-enabled. */
  gpuUuid: string;
  migUuid?: string;
  /** How the load ended: 'exited' (on SIGTERM or its own deadline) or 'killed'. */
  ended?: string;
}

export interface RunMeta {
  format: 1;
  startedAt: number;
  /** The exporter's Hostname label should be this. */
  nodeName: string;
  sampleIntervalSeconds: number;
  phaseSeconds: Record<PhaseName, number>;
  /** The --query-gpu fields asked for, with the key each was read under. */
  smiFields: { keys: GpuKey[]; fields: string[] };
  nvml: { loaded: boolean; library: string; error?: string };
  pynvml: { available: boolean; reason?: string };
  load?: LoadInfo;
  /** Why there was no load phase. */
  loadSkipped?: string;
  /** The run stopped early (the exporter stopped answering, ...): what happened. */
  aborted?: string;
}

export interface RawSnapshot {
  phase: PhaseName;
  seq: number;
  /** Wall clock (s) when the exporter scrape was taken. */
  at: number;
  scrape: string;
  smiCsv?: string;
  appsCsv?: string;
  xml?: string;
  pynvml?: string;
  /** A reference that could not be read this time, by source. */
  errors?: Record<string, string>;
  /** The compute processes nvidia-smi listed, as this host's /proc sees them. */
  pids?: Record<string, PidInfo>;
}

export interface RawRun {
  meta: RunMeta;
  /** `nvidia-smi -L`. */
  listing: string;
  snapshots: RawSnapshot[];
}

export interface Snapshot {
  phase: PhaseName;
  seq: number;
  at: number;
  scrape: Scrape;
  smi?: SmiRow[];
  apps?: ComputeApp[];
  xml?: XmlLog;
  py?: PyReading;
  errors: Record<string, string>;
  pids: Record<string, PidInfo>;
}

export interface RunData {
  meta: RunMeta;
  listing: ListedGpu[];
  snapshots: Snapshot[];
}

function parsed<T>(errors: Record<string, string>, source: string, raw: string | undefined, parse: (t: string) => T): T | undefined {
  if (raw === undefined) return undefined;
  try {
    return parse(raw);
  } catch (err) {
    errors[source] = `cannot parse: ${(err as Error).message}`;
    return undefined;
  }
}

/** Parses every raw reading; one that does not parse is recorded as that snapshot's error. */
export function parseRun(raw: RawRun): RunData {
  const { keys, fields } = raw.meta.smiFields;
  const snapshots = raw.snapshots.map((s): Snapshot => {
    const errors = { ...(s.errors ?? {}) };
    return {
      phase: s.phase,
      seq: s.seq,
      at: s.at,
      scrape: parseScrape(s.scrape),
      smi: parsed(errors, 'nvidia-smi --query-gpu', s.smiCsv, (t) => parseGpuCsv(t, fields, keys)),
      apps: parsed(errors, 'nvidia-smi --query-compute-apps', s.appsCsv, parseAppsCsv),
      xml: parsed(errors, 'nvidia-smi -q -x', s.xml, parseSmiXml),
      py: parsed(errors, 'pynvml', s.pynvml, parsePynvml),
      errors,
      pids: s.pids ?? {},
    };
  });
  return { meta: raw.meta, listing: parseList(raw.listing), snapshots };
}

export function phaseSnapshots(run: RunData, phase: PhaseName): Snapshot[] {
  return run.snapshots.filter((s) => s.phase === phase);
}
