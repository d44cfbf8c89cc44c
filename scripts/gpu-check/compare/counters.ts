/**
 * Rules for counters read again by a reference just after the scrape: violation time and
 * energy (pynvml), remapped rows and PCIe replays (-q -x), NVLink counters (pynvml field values).
 */
import type { ValueKey } from '../../../src/sample.js';
import { nameOf, naming } from '../names.js';
import type { Snapshot } from '../run-data.js';
import { flag, isNA, numberWithUnit, type Reading } from '../values.js';
import { counterLater, expMedian, firstWith, lag, level, pyField, pyGpu, pynvmlMissing, pyValue, rateOver, refMedian, smi, TOL, valueOn, xmlGpu, type Device, type Row, type Rule } from './core.js';

/** Violation time and energy: counters against pynvml, read just after the scrape. */
export const pynvmlCounterRule: Rule = {
  families: [nameOf('powerViolationNs'), nameOf('thermalViolationNs'), nameOf('totalEnergyMillijoules')],
  rows(ctx) {
    const out: Row[] = [];
    for (const { phase, snaps } of ctx.phases) {
      const missing = pynvmlMissing(ctx.run, snaps);
      for (const dev of ctx.gpus) {
        for (const [source, key] of [['powerViolationNs', 'power_violation_ns'], ['thermalViolationNs', 'thermal_violation_ns']] as const) {
          const n = naming(source);
          const s = firstWith(snaps, (x) => valueOn(x.scrape, n.name, dev) !== undefined && typeof pyValue(x, dev, key) === 'number');
          if (!s) continue;
          const raw = pyValue(s, dev, key);
          const l = lag(s, dev);
          out.push(counterLater(
            { exp: valueOn(s.scrape, n.name, dev), ref: typeof raw === 'number' ? raw * n.scale : raw, maxBehind: 1, maxAhead: (l + 1) * 1e9 * n.scale },
            { family: n.name, dev, phase, unit: n.unit, refSource: 'pynvml nvmlDeviceGetViolationStatus', tolText: 'read later by pynvml: ahead by at most 1 s per second elapsed (+1 s)', noRef: missing ?? 'no pynvml reading' },
          ));
        }
        const e = naming('totalEnergyMillijoules');
        const s = firstWith(snaps, (x) => valueOn(x.scrape, e.name, dev) !== undefined && typeof pyValue(x, dev, 'energy_mj') === 'number');
        if (s) {
          const limitW = (typeof smi(s, dev, 'powerLimit') === 'number' ? (smi(s, dev, 'powerLimit') as number) : undefined)
            ?? (valueOn(s.scrape, nameOf('powerLimitMilliwatts'), dev) ?? 1000);
          const raw = pyValue(s, dev, 'energy_mj');
          const l = lag(s, dev);
          out.push(counterLater(
            { exp: valueOn(s.scrape, e.name, dev), ref: typeof raw === 'number' ? raw * e.scale : raw, maxBehind: 1, maxAhead: (l + 1) * limitW * 1.2 * 1000 * e.scale },
            { family: e.name, dev, phase, unit: e.unit, refSource: 'pynvml nvmlDeviceGetTotalEnergyConsumption', tolText: 'read later by pynvml: ahead by at most 1.2 x the power limit per second elapsed (+1 s)', noRef: missing ?? 'no pynvml reading' },
          ));
        }
        // the counter's growth over the phase is the power draw nvidia-smi shows
        const rate = rateOver(snaps, (x) => valueOn(x.scrape, e.name, dev));
        const ref = refMedian(snaps, (x) => smi(x, dev, 'powerDraw'));
        const watts = rate === undefined ? undefined : (rate / e.scale) / 1000;
        out.push(level({
          family: e.name, dev, phase, unit: 'W', exp: watts, ref, refSource: 'nvidia-smi power.draw (median)',
          tol: Math.max(TOL.powerFraction * (typeof ref === 'number' ? ref : 0), TOL.powerMinW), tolText: `growth over the phase as watts: ±${TOL.powerFraction * 100} % or ${TOL.powerMinW} W`,
          noRef: 'no nvidia-smi --query-gpu reading', note: 'rate of the energy counter',
        }));
      }
    }
    return out;
  },
};

/** Remapped rows (nvidia-smi -q -x remapped_rows, else pynvml) and the PCIe replay counter (pci/replay_counter). */
export const xmlHealthRule: Rule = {
  families: [nameOf('remappedRowsCorrectable'), nameOf('remappedRowsUncorrectable'), nameOf('remappedRowsPending'), nameOf('remappedRowsFailure'), nameOf('pcieReplays')],
  rows(ctx) {
    const out: Row[] = [];
    const snaps = ctx.idle;
    const items = [
      { source: 'remappedRowsCorrectable', xml: 'correctable', parse: numberWithUnit, py: 'remapped_correctable' },
      { source: 'remappedRowsUncorrectable', xml: 'uncorrectable', parse: numberWithUnit, py: 'remapped_uncorrectable' },
      { source: 'remappedRowsPending', xml: 'pending', parse: flag, py: 'remapped_pending' },
      { source: 'remappedRowsFailure', xml: 'failure', parse: flag, py: 'remapped_failure' },
    ] as const;
    for (const dev of ctx.gpus) {
      for (const it of items) {
        const n = naming(it.source);
        let ref = refMedian(snaps, (s) => it.parse(xmlGpu(s, dev)?.remappedRows[it.xml]));
        let refSource = `nvidia-smi -q -x remapped_rows/remapped_row_${it.xml === 'correctable' ? 'corr' : it.xml === 'uncorrectable' ? 'unc' : it.xml}`;
        if (ref === undefined) {
          ref = refMedian(snaps, (s) => pyValue(s, dev, it.py));
          refSource = 'pynvml nvmlDeviceGetRemappedRows';
        }
        out.push(level({
          family: n.name, dev, phase: 'idle', unit: n.unit, exp: expMedian(snaps, n.name, dev), ref, refSource, tol: 0, tolText: 'exact',
          noRef: 'no nvidia-smi -q -x or pynvml reading',
        }));
      }
      const n = naming('pcieReplays');
      const s = firstWith(snaps, (x) => xmlGpu(x, dev)?.pcie.replayCounter !== undefined);
      if (s) {
        out.push(counterLater(
          { exp: valueOn(s.scrape, n.name, dev), ref: numberWithUnit(xmlGpu(s, dev)?.pcie.replayCounter), maxBehind: 0, maxAhead: TOL.errorCounterGrowth },
          { family: n.name, dev, phase: 'idle', unit: n.unit, refSource: 'nvidia-smi -q -x pci/replay_counter', tolText: `read later: ahead by at most ${TOL.errorCounterGrowth}`, noRef: 'no nvidia-smi -q -x reading' },
        ));
      }
    }
    return out;
  },
};

/** NVLink counters: the field values pynvml reads (link count 91 decides whether a GPU has NVLink at all). */
export const nvlinkRule: Rule = {
  families: [
    nameOf('nvlinkCrcFlitErrors'), nameOf('nvlinkCrcDataErrors'), nameOf('nvlinkReplayErrors'), nameOf('nvlinkRecoveryErrors'),
    nameOf('nvlinkTotalKiB'), nameOf('nvlinkTxKiB'), nameOf('nvlinkRxKiB'),
  ],
  rows(ctx) {
    const out: Row[] = [];
    const snaps = ctx.idle;
    const missing = pynvmlMissing(ctx.run, snaps);
    const ALL = 0xffffffff;
    const items: { source: ValueKey; ref: (s: Snapshot, dev: Device) => Reading; what: string; bandwidth?: boolean }[] = [
      { source: 'nvlinkCrcFlitErrors', ref: (s, d) => pyField(s, d, 38), what: 'field 38' },
      { source: 'nvlinkCrcDataErrors', ref: (s, d) => pyField(s, d, 45), what: 'field 45' },
      { source: 'nvlinkReplayErrors', ref: (s, d) => pyField(s, d, 52), what: 'field 52' },
      { source: 'nvlinkRecoveryErrors', ref: (s, d) => pyField(s, d, 59), what: 'field 59' },
      { source: 'nvlinkTxKiB', ref: (s, d) => pyField(s, d, 138, ALL), what: 'field 138 (all links)', bandwidth: true },
      { source: 'nvlinkRxKiB', ref: (s, d) => pyField(s, d, 139, ALL), what: 'field 139 (all links)', bandwidth: true },
      {
        source: 'nvlinkTotalKiB', what: 'fields 138 + 139', bandwidth: true,
        ref: (s, d) => {
          const tx = pyField(s, d, 138, ALL);
          const rx = pyField(s, d, 139, ALL);
          return typeof tx === 'number' && typeof rx === 'number' ? tx + rx : isNA(tx) ? tx : rx;
        },
      },
    ];
    for (const dev of ctx.gpus) {
      const s = firstWith(snaps, (x) => pyGpu(x, dev) !== undefined);
      const links = s ? pyField(s, dev, 91) : undefined;
      for (const it of items) {
        const n = naming(it.source);
        const exp = s ? valueOn(s.scrape, n.name, dev) : undefined;
        if (!s || links === undefined) {
          out.push(level({ family: n.name, dev, phase: 'idle', unit: n.unit, exp, ref: undefined, refSource: 'pynvml', tol: 0, tolText: '-', noRef: missing ?? 'no pynvml field values' }));
          continue;
        }
        const hasLinks = typeof links === 'number' && links > 0;
        const ref: Reading = hasLinks ? it.ref(s, dev) : { na: typeof links === 'number' ? 'no NVLink links (field 91 = 0)' : links.na };
        const maxAhead = it.bandwidth ? (lag(s, dev) + 1) * 1e9 * n.scale : TOL.errorCounterGrowth;
        out.push(counterLater(
          { exp, ref: typeof ref === 'number' ? ref * n.scale : ref, maxBehind: 0, maxAhead },
          {
            family: n.name, dev, phase: 'idle', unit: n.unit, refSource: `pynvml ${it.what}`,
            tolText: it.bandwidth ? 'read later: ahead by at most 1 TB/s x the time elapsed' : `read later: ahead by at most ${TOL.errorCounterGrowth}`,
            noRef: missing,
          },
        ));
      }
    }
    return out;
  },
};
