/**
 * Shared by the comparison rules: the row and device types, the tolerances, reading a value
 * of a device from a scrape or a reference, medians and rates over a phase, and the row builders
 * (`level`: a value against a reference; `counterLater`: a counter read again just after).
 */
import { exporterFamily, INFO } from '../names.js';
import { scalar, seriesOf, type Scrape, type Series } from '../prom.js';
import { field, type GpmReading, type PyGpu, type PyMig, type PyReadingOk, type PyValueKey } from '../pynvml.js';
import type { PhaseName, RunData, Snapshot } from '../run-data.js';
import type { GpuKey, SmiRow } from '../smi-csv.js';
import type { XmlGpu, XmlMigDevice } from '../smi-xml.js';
import { flag, fmt, isNA, median, numberWithUnit, type Reading } from '../values.js';

export type Verdict = 'pass' | 'fail' | 'skip';

export interface Row {
  family: string;
  /** GPU index, "0/GI 1" for a MIG instance, or "node". */
  gpu: string;
  phase: PhaseName | '-';
  exporter: string;
  reference: string;
  tolerance: string;
  verdict: Verdict;
  /** Why a row failed or was skipped, or what else it checked. */
  note?: string;
}

export interface Device {
  kind: 'gpu' | 'mig';
  /** The GPU's index and UUID (a MIG instance's series carry its parent's). */
  index: number;
  uuid: string;
  label: string;
  migEnabled: boolean;
  gi?: number;
  ci?: number;
  migUuid?: string;
  profile?: string;
  /** nvidia-smi -L's MIG device number (the XML's mig_device index). */
  migDevice?: number;
}

export const MIB = 1024 * 1024;

// ---------------------------------------------------------------------------------------------
// Tolerances: one place, named, each with the reason it is what it is (docs/gpu-check.md).

export const TOL = {
  /** The exporter rounds bytes to MiB, nvidia-smi truncates. */
  memoryRoundingMiB: 1,
  /** Used/free also move between the two reads (allocations, the driver's own). */
  memoryDriftMiB: 4,
  temperatureC: 3,
  powerFraction: 0.1,
  powerMinW: 15,
  powerLimitW: 0.5,
  clockFraction: 0.15,
  clockMinMHz: 150,
  fanPercent: 5,
  codecPercent: 5,
  utilLoadMin: 90,
  utilIdleMax: 10,
  memCopyUtilPoints: 20,
  busyLoadMin: 0.8,
  busyIdleMax: 0.1,
  busyVsReference: 0.15,
  memCopyBusyVsReference: 0.2,
  gpmVsPynvml: 0.15,
  gpmActiveLoadMin: 0.5,
  gpmActiveIdleMax: 0.1,
  gpmRateMinMiBps: 100,
  gpmRateFraction: 0.25,
  pcieKBps: 100_000,
  pcieFraction: 0.5,
  errorCounterGrowth: 10,
  processSmVsPynvml: 0.25,
  processSmLoadMin: 0.5,
  processMemoryPerProcessMiB: 1,
  sampleAgeSeconds: 3,
} as const;

// ---------------------------------------------------------------------------------------------
// Reading the scrape

export function seriesOn(scrape: Scrape, family: string, dev: Device, filter?: (l: Record<string, string>) => boolean): Series[] {
  return seriesOf(scrape, family).filter(
    (s) =>
      s.labels.UUID === dev.uuid &&
      (dev.kind === 'gpu' ? s.labels.GPU_I_ID === undefined : s.labels.GPU_I_ID === String(dev.gi)) &&
      (!filter || filter(s.labels)),
  );
}

export function valueOn(scrape: Scrape, family: string, dev: Device, filter?: (l: Record<string, string>) => boolean): number | undefined {
  return seriesOn(scrape, family, dev, filter)[0]?.value;
}

export const outsidePods = (l: Record<string, string>): boolean => (l.pod ?? '') === '' && (l.namespace ?? '') === '' && (l.container ?? '') === '';

export function sampleTs(scrape: Scrape): number | undefined {
  return scalar(scrape, exporterFamily('sampleTimestamp'));
}

export function nums(values: (number | undefined)[]): number[] {
  return values.filter((v): v is number => typeof v === 'number' && Number.isFinite(v));
}

export function expMedian(snaps: readonly Snapshot[], family: string, dev: Device, filter?: (l: Record<string, string>) => boolean): number | undefined {
  return median(nums(snaps.map((s) => valueOn(s.scrape, family, dev, filter))));
}

export function refMedian(snaps: readonly Snapshot[], get: (s: Snapshot) => Reading): Reading {
  const rs = snaps.map((s) => {
    try {
      return get(s);
    } catch {
      return undefined;
    }
  });
  const n = nums(rs.map((r) => (typeof r === 'number' ? r : undefined)));
  if (n.length > 0) return median(n);
  return rs.find(isNA);
}

/** The counter's growth per second of the exporter's own sample clock over the phase. */
export function rateOver(snaps: readonly Snapshot[], value: (s: Snapshot) => number | undefined): number | undefined {
  const pts = snaps.flatMap((s) => {
    const v = value(s);
    const t = sampleTs(s.scrape);
    return v !== undefined && t !== undefined ? [{ v, t }] : [];
  });
  if (pts.length < 2) return undefined;
  const first = pts[0]!;
  const last = pts[pts.length - 1]!;
  return last.t > first.t ? (last.v - first.v) / (last.t - first.t) : undefined;
}

// ---------------------------------------------------------------------------------------------
// Reading the references

export function smiRow(s: Snapshot, dev: Device): SmiRow | undefined {
  return s.smi?.find((r) => r.uuid === dev.uuid);
}

export function smi(s: Snapshot, dev: Device, key: GpuKey, parse: (t: string | undefined) => Reading = numberWithUnit): Reading {
  const row = smiRow(s, dev);
  return row ? parse(row[key]) : undefined;
}

export function xmlGpu(s: Snapshot, dev: Device): XmlGpu | undefined {
  return s.xml?.gpus.find((g) => g.uuid === dev.uuid);
}

export function xmlMig(s: Snapshot, dev: Device): XmlMigDevice | undefined {
  return xmlGpu(s, dev)?.mig.find((m) => Number(m.index) === dev.migDevice);
}

export function pyOk(s: Snapshot): PyReadingOk | undefined {
  return s.py?.ok ? s.py : undefined;
}

export function pyGpu(s: Snapshot, dev: Device): PyGpu | undefined {
  return pyOk(s)?.gpus.find((g) => g.uuid === dev.uuid);
}

export function pyMig(s: Snapshot, dev: Device): PyMig | undefined {
  return pyGpu(s, dev)?.mig.find((m) => (dev.migUuid !== undefined && m.uuid === dev.migUuid) || m.gpu_instance_id === dev.gi);
}

export function pyValue(s: Snapshot, dev: Device, key: PyValueKey): Reading {
  const g = dev.kind === 'mig' ? pyMig(s, dev) : pyGpu(s, dev);
  if (!g) return undefined;
  const v = g.values[key];
  if (v !== undefined) return v;
  const e = g.errors[key] ?? (key.startsWith('memory_') ? g.errors.memory ?? g.errors.memory_v2 : undefined);
  return nvmlAnswer(e);
}

/** An NVML error (the GPU has no such value) reads as N/A; a Python error says nothing about the GPU. */
export function nvmlAnswer(error: string | undefined): Reading {
  if (error === undefined || error.startsWith('python:')) return undefined;
  return { na: error };
}

export function pyField(s: Snapshot, dev: Device, id: number, scope?: number): Reading {
  const g = pyGpu(s, dev);
  if (!g) return undefined;
  const f = field(g, id, scope);
  if (!f) return undefined;
  if (f.value !== undefined) return f.value;
  return f.code !== undefined ? { na: f.error ?? `NVML error ${f.code}` } : undefined;
}

export function gpmOf(s: Snapshot, dev: Device): GpmReading | undefined {
  return (dev.kind === 'mig' ? pyMig(s, dev) : pyGpu(s, dev))?.gpm;
}

/** Why no pynvml reading exists, or undefined when one does. */
export function pynvmlMissing(run: RunData, snaps: readonly Snapshot[]): string | undefined {
  if (!run.meta.pynvml.available) return run.meta.pynvml.reason ?? 'no pynvml';
  const failed = snaps.map((s) => s.py).find((p) => p && !p.ok);
  if (snaps.some((s) => pyOk(s))) return undefined;
  if (failed && !failed.ok) return `pynvml: ${failed.error}`;
  return 'no pynvml reading in this phase';
}

// ---------------------------------------------------------------------------------------------
// Rows

export interface Judged {
  ok: boolean;
  note?: string;
}

export interface LevelArgs {
  family: string;
  dev?: Device;
  phase: PhaseName | '-';
  unit: string;
  exp: number | undefined;
  ref: Reading;
  refSource: string;
  /** Largest |exporter - reference| that passes; Infinity: only the threshold decides. */
  tol: number;
  tolText: string;
  /** Why there is no reference, when ref is undefined. */
  noRef?: string;
  threshold?: { text: string; test: (exp: number, ref: number | undefined) => Judged; withoutReference?: boolean };
  note?: string;
}

export function show(v: number | undefined, unit: string): string {
  return v === undefined ? 'absent' : unit ? `${fmt(v)} ${unit}` : fmt(v);
}

export function showRef(r: Reading, unit: string, source: string): string {
  if (r === undefined) return '-';
  if (isNA(r)) return `${r.na} (${source})`;
  return `${show(r, unit)} (${source})`;
}

export function devLabel(dev: Device | undefined): string {
  return dev ? dev.label : 'node';
}

/**
 * A value against a reference. A reference the tool shows as N/A must be absent in the
 * exporter (it has no value to invent); a reference with a value must be matched within `tol`
 * (and pass the threshold, when there is one).
 */
export function level(a: LevelArgs): Row {
  const tolerance = [a.tolText, a.threshold?.text].filter(Boolean).join('; ');
  const base = { family: a.family, gpu: devLabel(a.dev), phase: a.phase, exporter: show(a.exp, a.unit), reference: showRef(a.ref, a.unit, a.refSource), tolerance };
  const notes = (...n: (string | undefined)[]): string | undefined => {
    const s = [...n, a.note].filter(Boolean).join('; ');
    return s || undefined;
  };
  if (a.ref === undefined) {
    if (a.threshold?.withoutReference && a.exp !== undefined) {
      const j = a.threshold.test(a.exp, undefined);
      return { ...base, verdict: j.ok ? 'pass' : 'fail', note: notes(`threshold only: ${a.noRef ?? 'no reference'}`, j.note) };
    }
    return { ...base, verdict: 'skip', note: notes(a.noRef ?? 'no reference reading') };
  }
  if (isNA(a.ref)) {
    if (a.exp === undefined) return { ...base, verdict: 'pass', note: notes('absent on both') };
    return { ...base, verdict: 'fail', note: notes(`the exporter has a value where ${a.refSource} has none`) };
  }
  if (a.exp === undefined) return { ...base, verdict: 'fail', note: notes('absent in the exporter') };
  const diff = Math.abs(a.exp - a.ref);
  if (diff > a.tol) return { ...base, verdict: 'fail', note: notes(`off by ${fmt(diff)}${a.unit ? ` ${a.unit}` : ''}`) };
  if (a.threshold) {
    const j = a.threshold.test(a.exp, a.ref);
    if (!j.ok) return { ...base, verdict: 'fail', note: notes(j.note) };
  }
  return { ...base, verdict: 'pass', note: notes() };
}

export function skipRow(family: string, note: string, exporter = '-', gpu = 'node', phase: PhaseName | '-' = '-'): Row {
  return { family, gpu, phase, exporter, reference: '-', tolerance: '-', verdict: 'skip', note: `no independent reference: ${note}` };
}

// ---------------------------------------------------------------------------------------------
// The run's devices and phases

/** GPUs from nvidia-smi -L (else the CSV), MIG instances with their GPU instance ids. */
export function devicesOf(run: RunData): Device[] {
  const first = run.snapshots[0];
  const listed = run.listing.length > 0
    ? run.listing
    : (first?.smi ?? []).map((r) => ({ index: Number(r.index), name: r.name ?? '', uuid: r.uuid ?? '', mig: [] }));
  const out: Device[] = [];
  for (const g of listed) {
    const row = run.snapshots.map((s) => s.smi?.find((r) => r.uuid === g.uuid)).find(Boolean);
    const migEnabled = (row?.migMode !== undefined && flag(row.migMode) === 1) || g.mig.length > 0;
    const gpu: Device = { kind: 'gpu', index: g.index, uuid: g.uuid, label: String(g.index), migEnabled };
    out.push(gpu);
    for (const m of g.mig) {
      let gi: number | undefined;
      let ci: number | undefined;
      for (const s of run.snapshots) {
        const x = s.xml?.gpus.find((xg) => xg.uuid === g.uuid)?.mig.find((xm) => Number(xm.index) === m.device);
        if (x?.gpuInstanceId !== undefined && /^\d+$/.test(x.gpuInstanceId)) {
          gi = Number(x.gpuInstanceId);
          ci = x.computeInstanceId !== undefined && /^\d+$/.test(x.computeInstanceId) ? Number(x.computeInstanceId) : undefined;
          break;
        }
        const p = pyOk(s)?.gpus.find((pg) => pg.uuid === g.uuid)?.mig.find((pm) => pm.uuid === m.uuid);
        if (p?.gpu_instance_id !== undefined && p.gpu_instance_id !== null) {
          gi = p.gpu_instance_id;
          ci = p.compute_instance_id ?? undefined;
          break;
        }
      }
      if (gi === undefined) {
        // last resort, only to find its series: the exporter's own identity series
        const info = run.snapshots[0] && seriesOf(run.snapshots[0].scrape, INFO.mig).find((sr) => sr.labels.mig_uuid === m.uuid);
        if (info?.labels.GPU_I_ID !== undefined) gi = Number(info.labels.GPU_I_ID);
      }
      out.push({ kind: 'mig', index: g.index, uuid: g.uuid, label: `${g.index}/GI ${gi ?? '?'}`, migEnabled: true, gi, ci, migUuid: m.uuid, profile: m.profile, migDevice: m.device });
    }
  }
  return out;
}

/** The device the load ran on (its MIG instance on a MIG-enabled GPU). */
export function targetOf(run: RunData, devices: readonly Device[]): Device | undefined {
  const load = run.meta.load;
  if (!load) return undefined;
  if (load.migUuid) return devices.find((d) => d.kind === 'mig' && d.migUuid === load.migUuid);
  return devices.find((d) => d.kind === 'gpu' && d.uuid === load.gpuUuid);
}

export interface Ctx {
  run: RunData;
  devices: Device[];
  gpus: Device[];
  migs: Device[];
  target?: Device;
  phases: { phase: PhaseName; snaps: Snapshot[] }[];
  /** The idle phase's snapshots: where values that do not follow the load are compared. */
  idle: Snapshot[];
}

export function isTarget(ctx: Ctx, dev: Device, phase: PhaseName): boolean {
  return phase === 'load' && ctx.target !== undefined && ctx.target.uuid === dev.uuid && ctx.target.kind === dev.kind && ctx.target.gi === dev.gi;
}

/** For a whole GPU: does the load run on it (directly or in one of its MIG instances)? */
export function loadOnGpu(ctx: Ctx, dev: Device, phase: PhaseName): boolean {
  return phase === 'load' && ctx.target !== undefined && ctx.target.uuid === dev.uuid;
}

// ---------------------------------------------------------------------------------------------
// The rules. Each names the families it covers.

export interface Rule {
  families: string[];
  rows(ctx: Ctx): Row[];
}


export interface CounterLater {
  exp: number | undefined;
  ref: Reading;
  /** How far ahead the reference may be, in the family's unit. */
  maxAhead: number;
  /** How far behind (rounding). */
  maxBehind: number;
}

/** A counter the reference read after the exporter's sample: it may be ahead by what can accrue meanwhile. */
export function counterLater(c: CounterLater, a: Omit<LevelArgs, 'exp' | 'ref' | 'tol' | 'threshold'>): Row {
  const row = level({ ...a, exp: c.exp, ref: c.ref, tol: Infinity });
  if (row.verdict !== 'pass' || typeof c.ref !== 'number' || c.exp === undefined) return row;
  const ahead = c.ref - c.exp;
  if (ahead < -c.maxBehind || ahead > c.maxAhead) {
    return { ...row, verdict: 'fail', note: `reference ${ahead >= 0 ? 'ahead' : 'behind'} by ${fmt(Math.abs(ahead))} ${a.unit}, allowed ${fmt(-c.maxBehind)}..${fmt(c.maxAhead)}` };
  }
  return row;
}

/** The first snapshot of a phase where both sides have the value. */
export function firstWith(snaps: readonly Snapshot[], has: (s: Snapshot) => boolean): Snapshot | undefined {
  return snaps.find(has) ?? snaps[0];
}

/** Seconds between the exporter's sample and the pynvml read after it (at least 0). */
export function lag(s: Snapshot, dev: Device): number {
  const ts = sampleTs(s.scrape);
  const readAt = pyGpu(s, dev)?.read_at;
  return ts !== undefined && readAt !== undefined ? Math.max(0, readAt - ts) : 0;
}
