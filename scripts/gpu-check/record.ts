/**
 * A run on disk (`--record DIR`): run.json (what was run, and per snapshot when and which
 * files), nvidia-smi-L.txt, and per snapshot the raw outputs as the tools printed them:
 *   <phase>-<nn>.scrape.prom   the exporter's /metrics
 *   <phase>-<nn>.smi.csv       nvidia-smi --query-gpu=<run.json smiFields> --format=csv,noheader,nounits
 *   <phase>-<nn>.apps.csv      nvidia-smi --query-compute-apps=pid,gpu_uuid,used_memory,process_name --format=csv,noheader,nounits
 *   <phase>-<nn>.smi.xml       nvidia-smi -q -x (first snapshot of each phase)
 *   <phase>-<nn>.pynvml.json   python3 scripts/gpu-check/pynvml_read.py
 * The same layout is what the tests read as fixtures (test/fixtures/gpu-check/).
 */
import { mkdirSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import path from 'node:path';
import type { PidInfo, RawRun, RawSnapshot, RunMeta } from './run-data.js';

const FILES = { scrape: 'scrape.prom', smiCsv: 'smi.csv', appsCsv: 'apps.csv', xml: 'smi.xml', pynvml: 'pynvml.json' } as const;
type FileKey = keyof typeof FILES;

interface SnapshotEntry {
  phase: RawSnapshot['phase'];
  seq: number;
  at: number;
  files: Partial<Record<FileKey, string>>;
  errors?: Record<string, string>;
  pids?: Record<string, PidInfo>;
}

interface RunFile {
  meta: RunMeta;
  listing: string;
  snapshots: SnapshotEntry[];
}

function stem(s: RawSnapshot): string {
  return `${s.phase}-${String(s.seq).padStart(2, '0')}`;
}

export function writeRecording(dir: string, run: RawRun, extra: Record<string, string> = {}): void {
  mkdirSync(dir, { recursive: true });
  const snapshots: SnapshotEntry[] = run.snapshots.map((s) => {
    const files: Partial<Record<FileKey, string>> = {};
    for (const key of Object.keys(FILES) as FileKey[]) {
      const text = s[key];
      if (text === undefined) continue;
      const name = `${stem(s)}.${FILES[key]}`;
      writeFileSync(path.join(dir, name), text);
      files[key] = name;
    }
    return { phase: s.phase, seq: s.seq, at: s.at, files, ...(s.errors && Object.keys(s.errors).length ? { errors: s.errors } : {}), ...(s.pids ? { pids: s.pids } : {}) };
  });
  writeFileSync(path.join(dir, 'nvidia-smi-L.txt'), run.listing);
  const file: RunFile = { meta: run.meta, listing: 'nvidia-smi-L.txt', snapshots };
  writeFileSync(path.join(dir, 'run.json'), JSON.stringify(file, null, 2) + '\n');
  for (const [name, text] of Object.entries(extra)) writeFileSync(path.join(dir, name), text);
}

export function readRecording(dir: string): RawRun {
  const runJson = path.join(dir, 'run.json');
  if (!existsSync(runJson)) throw new Error(`${dir} is not a gpu-check recording (no run.json)`);
  const file = JSON.parse(readFileSync(runJson, 'utf8')) as RunFile;
  if (file.meta?.format !== 1) throw new Error(`${runJson}: unknown format ${String(file.meta?.format)}`);
  const read = (name: string | undefined): string | undefined => (name === undefined ? undefined : readFileSync(path.join(dir, name), 'utf8'));
  return {
    meta: file.meta,
    listing: read(file.listing) ?? '',
    snapshots: file.snapshots.map((e) => ({
      phase: e.phase,
      seq: e.seq,
      at: e.at,
      scrape: read(e.files.scrape) ?? '',
      smiCsv: read(e.files.smiCsv),
      appsCsv: read(e.files.appsCsv),
      xml: read(e.files.xml),
      pynvml: read(e.files.pynvml),
      ...(e.errors ? { errors: e.errors } : {}),
      ...(e.pids ? { pids: e.pids } : {}),
    })),
  };
}
