/**
 * Rules for what follows the load: utilization, the busy-seconds counters and the GPM
 * profiling metrics.
 */
import type { ValueKey } from '../../../src/sample.js';
import { nameOf, naming } from '../names.js';
import type { Snapshot } from '../run-data.js';
import { fmt, type Reading } from '../values.js';
import { expMedian, gpmOf, isTarget, level, loadOnGpu, MIB, nvmlAnswer, pynvmlMissing, rateOver, refMedian, show, smi, TOL, valueOn, type Ctx, type Device, type LevelArgs, type Row, type Rule } from './core.js';

function utilThreshold(loaded: boolean, what: string): LevelArgs['threshold'] {
  return loaded
    ? { text: `under load both >= ${TOL.utilLoadMin} %`, test: (e, r) => ({ ok: e >= TOL.utilLoadMin && (r ?? 100) >= TOL.utilLoadMin, note: `${what} under load below ${TOL.utilLoadMin} %` }) }
    : { text: `idle both <= ${TOL.utilIdleMax} %`, test: (e, r) => ({ ok: e <= TOL.utilIdleMax && (r ?? 0) <= TOL.utilIdleMax, note: `${what} above ${TOL.utilIdleMax} % while idle` }) };
}

export const utilizationRule: Rule = {
  families: [nameOf('gpuUtilPercent'), nameOf('memCopyUtilPercent')],
  rows(ctx) {
    const out: Row[] = [];
    const gu = naming('gpuUtilPercent');
    const mu = naming('memCopyUtilPercent');
    for (const { phase, snaps } of ctx.phases) {
      for (const dev of ctx.gpus) {
        const loaded = loadOnGpu(ctx, dev, phase);
        out.push(level({
          family: gu.name, dev, phase, unit: gu.unit, exp: expMedian(snaps, gu.name, dev),
          ref: refMedian(snaps, (s) => smi(s, dev, 'utilGpu')), refSource: 'nvidia-smi utilization.gpu',
          tol: Infinity, tolText: 'median over the phase', threshold: utilThreshold(loaded, 'utilization'),
          noRef: 'no nvidia-smi --query-gpu reading',
        }));
        out.push(level({
          family: mu.name, dev, phase, unit: mu.unit, exp: expMedian(snaps, mu.name, dev),
          ref: refMedian(snaps, (s) => smi(s, dev, 'utilMem')), refSource: 'nvidia-smi utilization.memory',
          tol: loaded ? TOL.memCopyUtilPoints : Infinity,
          tolText: loaded ? `±${TOL.memCopyUtilPoints} % (median over the phase)` : 'median over the phase',
          threshold: loaded ? undefined : utilThreshold(false, 'memory copy utilization'),
          noRef: 'no nvidia-smi --query-gpu reading',
        }));
      }
    }
    return out;
  },
};

/** Busy-seconds counters: their rate over each phase against the utilization nvidia-smi (or GPM on MIG) shows. */
export const busyRule: Rule = {
  families: [nameOf('gpuBusySeconds'), nameOf('memCopyBusySeconds')],
  rows(ctx) {
    const out: Row[] = [];
    const busy = nameOf('gpuBusySeconds');
    const memBusy = nameOf('memCopyBusySeconds');
    for (const { phase, snaps } of ctx.phases) {
      for (const dev of ctx.devices) {
        const loaded = dev.kind === 'gpu' ? loadOnGpu(ctx, dev, phase) && !dev.migEnabled : isTarget(ctx, dev, phase);
        const rate = rateOver(snaps, (s) => valueOn(s.scrape, busy, dev));
        const ref: Reading = dev.kind === 'gpu'
          ? refMedian(snaps, (s) => {
            const r = smi(s, dev, 'utilGpu');
            return typeof r === 'number' ? r / 100 : r;
          })
          : refMedian(snaps, (s) => {
            const g = gpmOf(s, dev);
            const v = g?.metrics?.['1'];
            if (v !== undefined) return v / 100;
            return g?.supported === false ? (/no GPM functions/.test(g.error ?? '') ? undefined : nvmlAnswer(g.error ?? 'GPM not supported')) : nvmlAnswer(g?.errors?.['1']);
          });
        const threshold: LevelArgs['threshold'] = loaded
          ? { text: `under load >= ${TOL.busyLoadMin} s/s`, test: (e) => ({ ok: e >= TOL.busyLoadMin, note: `grew ${fmt(e)} s/s under load` }) }
          : { text: `idle <= ${TOL.busyIdleMax} s/s`, test: (e) => ({ ok: e <= TOL.busyIdleMax, note: `grew ${fmt(e)} s/s while idle` }) };
        const present = snaps.some((s) => valueOn(s.scrape, busy, dev) !== undefined);
        out.push(level({
          family: busy, dev, phase, unit: 's/s', exp: present ? rate : undefined, ref,
          refSource: dev.kind === 'gpu' ? 'nvidia-smi utilization.gpu / 100' : 'pynvml GPM graphics activity / 100',
          tol: TOL.busyVsReference, tolText: `rate over the phase within ${TOL.busyVsReference} of the reference`, threshold,
          noRef: dev.kind === 'gpu' ? 'no nvidia-smi --query-gpu reading' : pynvmlMissing(ctx.run, snaps) ?? 'no pynvml GPM reading for this MIG instance',
          note: present && rate === undefined ? 'fewer than two samples in the phase' : undefined,
        }));
        if (dev.kind !== 'gpu') continue;
        const memRate = rateOver(snaps, (s) => valueOn(s.scrape, memBusy, dev));
        const memPresent = snaps.some((s) => valueOn(s.scrape, memBusy, dev) !== undefined);
        out.push(level({
          family: memBusy, dev, phase, unit: 's/s', exp: memPresent ? memRate : undefined,
          ref: refMedian(snaps, (s) => {
            const r = smi(s, dev, 'utilMem');
            return typeof r === 'number' ? r / 100 : r;
          }),
          refSource: 'nvidia-smi utilization.memory / 100', tol: TOL.memCopyBusyVsReference,
          tolText: `rate over the phase within ${TOL.memCopyBusyVsReference} of the reference`,
          threshold: loaded ? undefined : { text: `idle <= ${TOL.busyIdleMax} s/s`, test: (e) => ({ ok: e <= TOL.busyIdleMax, note: `grew ${fmt(e)} s/s while idle` }) },
          noRef: 'no nvidia-smi --query-gpu reading',
        }));
      }
    }
    return out;
  },
};

/** GPM activity families and their GPM metric ids. */
const GPM_ACTIVITY: { source: ValueKey; id: number; activity?: boolean }[] = [
  { source: 'grEngineActivePercent', id: 1, activity: true },
  { source: 'smActivePercent', id: 2, activity: true },
  { source: 'smOccupancyPercent', id: 3 },
  { source: 'tensorActivePercent', id: 5 },
  { source: 'dramActivePercent', id: 10 },
  { source: 'fp64ActivePercent', id: 11 },
  { source: 'fp32ActivePercent', id: 12 },
  { source: 'fp16ActivePercent', id: 13 },
];
const GPM_RATES: { source: ValueKey; id: number }[] = [
  { source: 'gpmPcieTxMiBps', id: 21 },
  { source: 'gpmPcieRxMiBps', id: 20 },
  { source: 'gpmNvlinkTxMiBps', id: 61 },
  { source: 'gpmNvlinkRxMiBps', id: 60 },
];

function gpmRef(snaps: readonly Snapshot[], dev: Device, id: number, scale: number): Reading {
  return refMedian(snaps, (s) => {
    const g = gpmOf(s, dev);
    if (!g) return undefined;
    const v = g.metrics?.[String(id)];
    if (v !== undefined) return v * scale;
    if (g.supported === false && g.error) return /no GPM functions/.test(g.error) ? undefined : nvmlAnswer(g.error);
    return nvmlAnswer(g.errors?.[String(id)]);
  });
}

function gpmNoRef(ctx: Ctx, snaps: readonly Snapshot[], dev: Device): string {
  const missing = pynvmlMissing(ctx.run, snaps);
  if (missing) return missing;
  const err = snaps.map((s) => gpmOf(s, dev)?.error).find(Boolean);
  return err ? `pynvml GPM: ${err}` : 'no pynvml GPM reading';
}

export const gpmRule: Rule = {
  families: [...GPM_ACTIVITY, ...GPM_RATES].map((g) => nameOf(g.source)),
  rows(ctx) {
    const out: Row[] = [];
    for (const { phase, snaps } of ctx.phases) {
      for (const g of GPM_ACTIVITY) {
        const n = naming(g.source);
        for (const dev of ctx.devices) {
          if (dev.kind === 'gpu' && dev.migEnabled) {
            const exp = expMedian(snaps, n.name, dev);
            out.push({
              family: n.name, gpu: dev.label, phase, exporter: show(exp, n.unit), reference: '-', tolerance: 'absent on a MIG-enabled GPU (per MIG instance)',
              verdict: exp === undefined ? 'pass' : 'fail', note: exp === undefined ? undefined : 'a MIG-enabled GPU has activity per MIG instance only',
            });
            continue;
          }
          const loaded = dev.kind === 'gpu' ? loadOnGpu(ctx, dev, phase) : isTarget(ctx, dev, phase);
          const threshold: LevelArgs['threshold'] = g.activity
            ? loaded
              ? { text: `under load >= ${TOL.gpmActiveLoadMin}`, test: (e, r) => ({ ok: e >= TOL.gpmActiveLoadMin && (r ?? 1) >= TOL.gpmActiveLoadMin, note: `below ${TOL.gpmActiveLoadMin} under load` }), withoutReference: true }
              : { text: `idle <= ${TOL.gpmActiveIdleMax}`, test: (e, r) => ({ ok: e <= TOL.gpmActiveIdleMax && (r ?? 0) <= TOL.gpmActiveIdleMax, note: `above ${TOL.gpmActiveIdleMax} while idle` }), withoutReference: true }
            : undefined;
          out.push(level({
            family: n.name, dev, phase, unit: n.unit, exp: expMedian(snaps, n.name, dev), ref: gpmRef(snaps, dev, g.id, n.scale),
            refSource: `pynvml GPM metric ${g.id}`, tol: TOL.gpmVsPynvml, tolText: `±${TOL.gpmVsPynvml} (medians)`, threshold,
            noRef: gpmNoRef(ctx, snaps, dev),
          }));
        }
      }
      for (const g of GPM_RATES) {
        const n = naming(g.source);
        for (const dev of ctx.gpus) {
          // compared and shown in MiB/s (the family's B/s over 2^20)
          const ref = gpmRef(snaps, dev, g.id, n.scale / MIB);
          const exp = expMedian(snaps, n.name, dev);
          const tol = Math.max(TOL.gpmRateMinMiBps, TOL.gpmRateFraction * (typeof ref === 'number' ? ref : 0));
          out.push(level({
            family: n.name, dev, phase, unit: 'MiB/s', exp: exp === undefined ? undefined : exp / MIB, ref, refSource: `pynvml GPM metric ${g.id}`,
            tol, tolText: `±${TOL.gpmRateMinMiBps} MiB/s or ${TOL.gpmRateFraction * 100} % (medians)`, noRef: gpmNoRef(ctx, snaps, dev),
          }));
        }
      }
    }
    return out;
  },
};
