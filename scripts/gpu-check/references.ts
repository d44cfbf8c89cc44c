/**
 * Runs the independent readings: nvidia-smi's CSV queries and XML report, and the pynvml
 * helper. Only read-only queries: nothing here passes nvidia-smi an option that sets anything.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { failure, findExecutable, runCommand } from './proc.js';
import { APPS_FIELDS, dropField, initialChoice, parseAppsCsv, queryFields, rejectedField, type FieldChoice } from './smi-csv.js';
import type { PidInfo } from './run-data.js';

const SMI_TIMEOUT_MS = 30_000;

export interface SmiQuery {
  smi: string;
  choice: FieldChoice;
}

/**
 * Finds the --query-gpu fields this nvidia-smi knows: asks for all, and drops (or renames)
 * each field it rejects until the query runs.
 */
export async function negotiateFields(smi: string): Promise<{ query: SmiQuery; dropped: string[] } | { error: string }> {
  const choice = initialChoice();
  const dropped: string[] = [];
  for (let attempt = 0; attempt < 60; attempt++) {
    const { fields } = queryFields(choice);
    const r = await runCommand(smi, [`--query-gpu=${fields.join(',')}`, '--format=csv,noheader,nounits'], { timeoutMs: SMI_TIMEOUT_MS });
    if (r.code === 0) return { query: { smi, choice }, dropped };
    const bad = rejectedField(`${r.stdout}\n${r.stderr}`);
    if (!bad || !dropField(choice, bad)) return { error: failure('nvidia-smi --query-gpu', r) };
    dropped.push(bad);
  }
  return { error: 'nvidia-smi --query-gpu: too many rejected fields' };
}

export interface Read {
  text?: string;
  error?: string;
}

async function smiRead(smi: string, args: string[], what: string): Promise<Read> {
  const r = await runCommand(smi, args, { timeoutMs: SMI_TIMEOUT_MS });
  return r.code === 0 ? { text: r.stdout } : { error: failure(what, r) };
}

export function readGpuCsv(q: SmiQuery): Promise<Read> {
  const { fields } = queryFields(q.choice);
  return smiRead(q.smi, [`--query-gpu=${fields.join(',')}`, '--format=csv,noheader,nounits'], 'nvidia-smi --query-gpu');
}

export function readAppsCsv(smi: string): Promise<Read> {
  return smiRead(smi, [`--query-compute-apps=${APPS_FIELDS.join(',')}`, '--format=csv,noheader,nounits'], 'nvidia-smi --query-compute-apps');
}

export function readXml(smi: string): Promise<Read> {
  return smiRead(smi, ['-q', '-x'], 'nvidia-smi -q -x');
}

/** The pynvml helper's JSON; `missing` when python3 itself is not there. */
export async function readPynvml(python: string, here: string, events: boolean): Promise<Read & { missing?: string }> {
  const exe = findExecutable(python);
  if (!exe) return { missing: `${python} not found` };
  const r = await runCommand(exe, [path.join(here, 'pynvml_read.py'), ...(events ? ['--events'] : [])], { timeoutMs: 60_000 });
  if (r.code === 0) return { text: r.stdout.trim() };
  return { error: failure('pynvml_read.py', r) };
}

/**
 * A pod's UID in a cgroup path: the systemd driver's `kubepods-<qos>-pod<uid>.slice` (dashes
 * written as `_`) or the cgroupfs driver's `kubepods/<qos>/pod<uid>`; static pods have 32 hex.
 */
const POD_UID = /kubepods\S*?[-/]pod([0-9a-fA-F]{8}[-_][0-9a-fA-F]{4}[-_][0-9a-fA-F]{4}[-_][0-9a-fA-F]{4}[-_][0-9a-fA-F]{12}|[0-9a-fA-F]{32})(?=[./]|$)/m;

export function podUidFromCgroup(cgroup: string): string | undefined {
  return POD_UID.exec(cgroup)?.[1]?.replace(/_/g, '-');
}

/** How this host's /proc sees each pid the driver lists (the exporter reads the same /proc). */
export function pidInfo(pids: Iterable<number>, procfs = '/proc'): Record<string, PidInfo> {
  const out: Record<string, PidInfo> = {};
  for (const pid of pids) {
    try {
      const cgroup = readFileSync(path.join(procfs, String(pid), 'cgroup'), 'utf8');
      const podUid = podUidFromCgroup(cgroup);
      out[String(pid)] = { visible: true, inPod: /kubepods/.test(cgroup), ...(podUid ? { podUid } : {}) };
    } catch {
      out[String(pid)] = { visible: false, inPod: false };
    }
  }
  return out;
}

/** Pids in a compute-apps CSV (for pidInfo); none when it does not parse. */
export function appPids(csv: string | undefined): number[] {
  if (csv === undefined) return [];
  try {
    return [...new Set(parseAppsCsv(csv).map((a) => a.pid))];
  } catch {
    return [];
  }
}
