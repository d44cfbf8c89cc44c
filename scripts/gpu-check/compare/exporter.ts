/**
 * Rules for NVML events and the exporter's own families, the explained skips, and the rows for
 * a reading that failed or a run without a load.
 */
import { EVENTS, exporterFamily, isRuntimeFamily, POD, type ExporterFamilyKey } from '../names.js';
import { scalar, seriesOf } from '../prom.js';
import type { PhaseName } from '../run-data.js';
import { fmt } from '../values.js';
import { level, nums, pynvmlMissing, pyOk, sampleTs, show, skipRow, TOL, type Ctx, type Row, type Rule } from './core.js';

export const eventsRule: Rule = {
  families: [EVENTS.lastXid, EVENTS.xidEvents, EVENTS.xidErrors, EVENTS.healthEvents, exporterFamily('eventWatchUp')],
  rows(ctx) {
    const out: Row[] = [];
    const s = ctx.idle[ctx.idle.length - 1];
    const total = (family: string) => {
      const series = s ? seriesOf(s.scrape, family) : [];
      return series.length ? fmt(series.reduce((a, x) => a + x.value, 0)) + ` (${series.length} series)` : 'absent';
    };
    const why = 'counts NVML events since the exporter started; this check provokes none (it never injects faults) and nvidia-smi and pynvml keep no event history to compare';
    out.push(skipRow(EVENTS.lastXid, why, total(EVENTS.lastXid)));
    out.push(skipRow(EVENTS.xidEvents, why, total(EVENTS.xidEvents)));
    out.push(skipRow(EVENTS.xidErrors, `${why} (a code's series appears with its first Xid)`, total(EVENTS.xidErrors)));
    out.push(skipRow(EVENTS.healthEvents, why, total(EVENTS.healthEvents)));
    const up = exporterFamily('eventWatchUp');
    const withEvents = ctx.run.snapshots.map((x) => pyOk(x)).find((p) => p?.gpus.some((g) => g.events));
    const exp = s ? scalar(s.scrape, up) : undefined;
    if (!withEvents) {
      out.push({ ...skipRow(up, pynvmlMissing(ctx.run, ctx.idle) ?? 'pynvml did not try to register events', show(exp, ''), 'node', 'idle') });
    } else {
      const registered = withEvents.gpus.filter((g) => g.events?.registered).length;
      const ref = registered > 0 ? 1 : 0;
      const errors = withEvents.gpus.map((g) => g.events?.error).filter(Boolean);
      out.push(level({
        family: up, phase: 'idle', unit: '', exp, ref, refSource: `pynvml registered Xid/ECC events on ${registered} of ${withEvents.gpus.length} GPUs`,
        tol: 0, tolText: 'exact', note: errors.length ? `pynvml: ${errors[0]}` : undefined,
      }));
    }
    return out;
  },
};

const SELF_REPORT = 'the exporter\'s own report, no independent reading';

export const exporterRule: Rule = {
  families: [
    exporterFamily('nvmlUp'), exporterFamily('gpus'), exporterFamily('gpusLost'), exporterFamily('collectorSuccess'), exporterFamily('renderFailures'),
    exporterFamily('sampleTimestamp'), exporterFamily('sampleInterval'),
  ],
  rows(ctx) {
    const out: Row[] = [];
    const s = ctx.idle[ctx.idle.length - 1];
    if (!s) return out;
    const listed = ctx.gpus.length;
    out.push(level({ family: exporterFamily('nvmlUp'), phase: 'idle', unit: '', exp: scalar(s.scrape, exporterFamily('nvmlUp')), ref: ctx.run.meta.nvml.loaded ? 1 : 0, refSource: `the check loaded ${ctx.run.meta.nvml.library}`, tol: 0, tolText: 'exact' }));
    out.push(level({ family: exporterFamily('gpus'), phase: 'idle', unit: '', exp: scalar(s.scrape, exporterFamily('gpus')), ref: listed, refSource: 'GPUs nvidia-smi lists', tol: 0, tolText: 'exact' }));
    const lostRef = (s.smi ?? []).filter((r) => r.uuid !== undefined && /^\[/.test(r.uuid)).length;
    out.push(level({ family: exporterFamily('gpusLost'), phase: 'idle', unit: '', exp: scalar(s.scrape, exporterFamily('gpusLost')), ref: s.smi ? lostRef : undefined, refSource: 'GPUs nvidia-smi cannot read', tol: 0, tolText: 'exact', noRef: 'no nvidia-smi --query-gpu reading' }));
    for (const { phase, snaps } of ctx.phases) {
      const last = snaps[snaps.length - 1];
      if (!last) continue;
      const collectors = seriesOf(last.scrape, exporterFamily('collectorSuccess'));
      const failing = collectors.filter((sr) => sr.value !== 1).map((sr) => sr.labels.collector ?? '?');
      out.push({
        family: exporterFamily('collectorSuccess'), gpu: 'node', phase,
        exporter: collectors.length ? `${collectors.length - failing.length} of ${collectors.length} collectors 1` : 'absent',
        reference: '1 each (a healthy GPU)', tolerance: 'every collector 1',
        verdict: collectors.length > 0 && failing.length === 0 ? 'pass' : 'fail',
        note: failing.length ? `${SELF_REPORT}: ${failing.join(', ')} hit an NVML error (see the exporter log)` : SELF_REPORT,
      });
      const failures = seriesOf(last.scrape, exporterFamily('renderFailures')).reduce((a, x) => a + x.value, 0);
      out.push({
        family: exporterFamily('renderFailures'), gpu: 'node', phase, exporter: fmt(failures), reference: '0', tolerance: 'must be 0',
        verdict: failures === 0 ? 'pass' : 'fail', note: SELF_REPORT,
      });
      const ages = nums(snaps.map((x) => {
        const ts = sampleTs(x.scrape);
        return ts === undefined ? undefined : x.at - ts;
      }));
      const worst = ages.length ? Math.max(...ages.map(Math.abs)) : undefined;
      out.push({
        family: exporterFamily('sampleTimestamp'), gpu: 'node', phase, exporter: worst === undefined ? 'absent' : `${fmt(worst)} s old at most`, reference: 'the check\'s clock at each scrape',
        tolerance: `served sample at most ${TOL.sampleAgeSeconds} s old`, verdict: worst !== undefined && worst <= TOL.sampleAgeSeconds ? 'pass' : 'fail',
        note: worst === undefined ? 'absent' : undefined,
      });
    }
    out.push(level({
      family: exporterFamily('sampleInterval'), phase: 'idle', unit: 's', exp: scalar(s.scrape, exporterFamily('sampleInterval')), ref: ctx.run.meta.sampleIntervalSeconds,
      refSource: '--sample-interval given', tol: 0, tolText: 'exact',
    }));
    return out;
  },
};

const SKIPPED_EXPORTER: { key: ExporterFamilyKey; why: string }[] = [
  { key: 'collectorDuration', why: 'time the exporter spent; nothing outside it measures that' },
  { key: 'sampleDuration', why: 'time the exporter spent; nothing outside it measures that' },
  { key: 'skippedTicks', why: SELF_REPORT },
  { key: 'kubeletUp', why: 'the check runs the exporter with --kubelet.socket=none (no kubelet)' },
  { key: 'kubeletLastSuccess', why: 'no kubelet in this check' },
  { key: 'kubeletRefreshDuration', why: 'no kubelet in this check' },
  { key: 'kubeletFailures', why: 'no kubelet in this check' },
  { key: 'kubeletPods', why: 'no kubelet in this check' },
  { key: 'kubeletUnknownDevices', why: 'no kubelet in this check' },
  { key: 'eventWatchRestarts', why: SELF_REPORT },
  { key: 'podMetadataSynced', why: 'off by default (--kubernetes.pod-metadata)' },
  { key: 'draUp', why: 'off by default (--kubernetes.dra)' },
  { key: 'podLabelsDropped', why: 'off by default (--kubernetes.pod-metadata)' },
  { key: 'draUnresolvedDevices', why: 'no kubelet in this check' },
  { key: 'webConfigReloadOk', why: 'no --web.config.file in this check' },
  { key: 'webConfigLastSuccess', why: 'no --web.config.file in this check' },
  { key: 'buildInfo', why: 'the exporter\'s version; not a GPU reading' },
];

export const skippedRule: Rule = {
  families: [...SKIPPED_EXPORTER.map((x) => exporterFamily(x.key)), POD.allocated],
  rows(ctx) {
    const s = ctx.idle[ctx.idle.length - 1];
    const value = (family: string): string => {
      const series = s ? seriesOf(s.scrape, family) : [];
      if (series.length === 0) return 'absent';
      return series.length === 1 ? fmt(series[0]!.value) : `${series.length} series`;
    };
    return [
      ...SKIPPED_EXPORTER.map((x) => skipRow(exporterFamily(x.key), x.why, value(exporterFamily(x.key)))),
      skipRow(POD.allocated, 'allocations come from the kubelet, which this check does not run (--kubelet.socket=none); the simulated-kubelet tests cover it', value(POD.allocated)),
    ];
  },
};

/** The exporter's Node.js runtime (process_*, nodejs_*): one row for all of them. */
export function runtimeRow(ctx: Ctx): Row {
  const s = ctx.idle[ctx.idle.length - 1];
  const names = s ? [...s.scrape.keys()].filter(isRuntimeFamily) : [];
  return skipRow('process_* / nodejs_*', 'the exporter\'s own Node.js runtime (prom-client defaults); nothing on the GPU to compare', `${names.length} families`);
}

/** A reference that could not be run or parsed: the comparison is incomplete, which fails. */
export function referenceErrorRows(ctx: Ctx): Row[] {
  const seen = new Map<string, { phase: PhaseName; error: string; n: number }>();
  for (const s of ctx.run.snapshots) {
    for (const [source, error] of Object.entries(s.errors)) {
      const prev = seen.get(source);
      if (prev) prev.n++;
      else seen.set(source, { phase: s.phase, error, n: 1 });
    }
  }
  const aborted: Row[] = ctx.run.meta.aborted
    ? [{ family: '(run)', gpu: 'node', phase: ctx.run.snapshots[ctx.run.snapshots.length - 1]?.phase ?? 'idle', exporter: '-', reference: '-', tolerance: 'the run completes', verdict: 'fail', note: `stopped early: ${ctx.run.meta.aborted}` }]
    : [];
  return [...aborted, ...[...seen.entries()].map(([source, e]) => ({
    family: `(${source})`, gpu: 'node', phase: e.phase, exporter: '-', reference: e.error.slice(0, 160), tolerance: 'every reading taken',
    verdict: 'fail' as const, note: `failed in ${e.n} of ${ctx.run.snapshots.length} snapshots`,
  }))];
}

/** Checks that need a load, when there was none. */
export function loadSkippedRows(ctx: Ctx): Row[] {
  const why = ctx.run.meta.loadSkipped;
  if (!why) return [];
  return [{
    family: '(load phase)', gpu: 'node', phase: 'load', exporter: '-', reference: '-', tolerance: '-', verdict: 'skip',
    note: `no load phase: ${why}; busy-seconds, GPM activity and the process list were compared idle only`,
  }];
}
