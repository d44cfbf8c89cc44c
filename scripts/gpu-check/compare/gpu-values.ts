/**
 * Rules for GPU values nvidia-smi shows: memory, temperatures, power, clocks, fan, P-state,
 * codec utilization, MIG mode, ECC and retired pages (--query-gpu), MIG instances' memory and
 * PCIe throughput (-q -x), throttle reasons, and the identity labels.
 */
import { ClocksEventReason } from '../../../src/native/nvml-constants.js';
import type { ValueKey } from '../../../src/sample.js';
import { EVENTS, INFO, nameOf, naming } from '../names.js';
import { seriesOf } from '../prom.js';
import type { RunData } from '../run-data.js';
import type { GpuKey } from '../smi-csv.js';
import type { XmlGpu } from '../smi-xml.js';
import { flag, hexMask, isNA, numberWithUnit, pstate, type Reading } from '../values.js';
import { expMedian, level, MIB, nums, pyValue, refMedian, seriesOn, show, smi, smiRow, TOL, valueOn, xmlGpu, xmlMig, type Row, type Rule } from './core.js';

const pct = (v: number) => v;
const mibToBytes = (v: number) => v * MIB;
const wToMw = (v: number) => v * 1000;

interface CsvLevel {
  source: ValueKey;
  key: GpuKey;
  /** nvidia-smi's number in NVML's raw unit (the family's source unit). */
  toRaw: (v: number) => number;
  parse?: (t: string | undefined) => Reading;
  tol: (ref: number) => number;
  tolText: string;
  /** Compared once, in the idle phase (values that do not follow the load). */
  once?: boolean;
  /** Where nvidia-smi -q -x shows the same, for drivers whose --query-gpu lacks the field. */
  xml?: { path: string; get: (g: XmlGpu) => string | undefined };
}

const MEM_USED_TOL = TOL.memoryRoundingMiB + TOL.memoryDriftMiB;

const CSV_LEVELS: CsvLevel[] = [
  { source: 'fbTotalBytes', key: 'memTotal', toRaw: mibToBytes, tol: () => TOL.memoryRoundingMiB, tolText: `±${TOL.memoryRoundingMiB} MiB (rounding)`, once: true, xml: { path: 'fb_memory_usage/total', get: (g) => g.fb.total } },
  { source: 'fbReservedBytes', key: 'memReserved', toRaw: mibToBytes, tol: () => TOL.memoryRoundingMiB, tolText: `±${TOL.memoryRoundingMiB} MiB (rounding)`, once: true, xml: { path: 'fb_memory_usage/reserved', get: (g) => g.fb.reserved } },
  { source: 'fbUsedBytes', key: 'memUsed', toRaw: mibToBytes, tol: () => MEM_USED_TOL, tolText: `±${MEM_USED_TOL} MiB (rounding + change between reads)` },
  { source: 'fbFreeBytes', key: 'memFree', toRaw: mibToBytes, tol: () => MEM_USED_TOL, tolText: `±${MEM_USED_TOL} MiB (rounding + change between reads)` },
  { source: 'gpuTempCelsius', key: 'tempGpu', toRaw: pct, tol: () => TOL.temperatureC, tolText: `±${TOL.temperatureC} C`, xml: { path: 'temperature/gpu_temp', get: (g) => g.temperature.gpu } },
  { source: 'memoryTempCelsius', key: 'tempMem', toRaw: pct, tol: () => TOL.temperatureC, tolText: `±${TOL.temperatureC} C`, xml: { path: 'temperature/memory_temp', get: (g) => g.temperature.memory } },
  {
    source: 'powerUsageMilliwatts', key: 'powerDraw', toRaw: wToMw,
    tol: (ref) => Math.max(TOL.powerFraction * ref, TOL.powerMinW), tolText: `±${TOL.powerFraction * 100} % or ${TOL.powerMinW} W`,
  },
  { source: 'powerLimitMilliwatts', key: 'powerLimit', toRaw: wToMw, tol: () => TOL.powerLimitW, tolText: `±${TOL.powerLimitW} W`, once: true, xml: { path: 'gpu_power_readings/current_power_limit', get: (g) => g.power.enforcedLimit } },
  { source: 'smClockMHz', key: 'clockSm', toRaw: pct, tol: (ref) => Math.max(TOL.clockFraction * ref, TOL.clockMinMHz), tolText: `±${TOL.clockFraction * 100} % or ${TOL.clockMinMHz} MHz (clocks move)` },
  { source: 'memClockMHz', key: 'clockMem', toRaw: pct, tol: (ref) => Math.max(TOL.clockFraction * ref, TOL.clockMinMHz), tolText: `±${TOL.clockFraction * 100} % or ${TOL.clockMinMHz} MHz (clocks move)` },
  { source: 'graphicsClockMHz', key: 'clockGr', toRaw: pct, tol: (ref) => Math.max(TOL.clockFraction * ref, TOL.clockMinMHz), tolText: `±${TOL.clockFraction * 100} % or ${TOL.clockMinMHz} MHz (clocks move)` },
  { source: 'maxSmClockMHz', key: 'maxClockSm', toRaw: pct, tol: () => 0, tolText: 'exact', once: true, xml: { path: 'max_clocks/sm_clock', get: (g) => g.maxClocks.sm } },
  { source: 'maxMemClockMHz', key: 'maxClockMem', toRaw: pct, tol: () => 0, tolText: 'exact', once: true, xml: { path: 'max_clocks/mem_clock', get: (g) => g.maxClocks.mem } },
  { source: 'maxGraphicsClockMHz', key: 'maxClockGr', toRaw: pct, tol: () => 0, tolText: 'exact', once: true, xml: { path: 'max_clocks/graphics_clock', get: (g) => g.maxClocks.graphics } },
  { source: 'fanSpeedPercent', key: 'fan', toRaw: pct, tol: () => TOL.fanPercent, tolText: `±${TOL.fanPercent} %`, xml: { path: 'fan_speed', get: (g) => g.fanSpeed } },
  { source: 'performanceState', key: 'pstate', toRaw: pct, parse: pstate, tol: () => 0, tolText: 'exact (median over the phase)' },
  // the current generation follows the load (an idle GPU lowers it to save power): within one of nvidia-smi's reading
  { source: 'pcieLinkGen', key: 'pcieGen', toRaw: pct, tol: () => 1, tolText: '±1 (the link changes speed with load between reads)' },
  { source: 'pcieLinkWidth', key: 'pcieWidth', toRaw: pct, tol: () => 0, tolText: 'exact' },
  { source: 'maxPcieLinkGen', key: 'pcieGenMax', toRaw: pct, tol: () => 0, tolText: 'exact', once: true },
  { source: 'maxPcieLinkWidth', key: 'pcieWidthMax', toRaw: pct, tol: () => 0, tolText: 'exact', once: true },
  { source: 'encoderUtilPercent', key: 'utilEnc', toRaw: pct, tol: () => TOL.codecPercent, tolText: `±${TOL.codecPercent} %` },
  { source: 'decoderUtilPercent', key: 'utilDec', toRaw: pct, tol: () => TOL.codecPercent, tolText: `±${TOL.codecPercent} %` },
  { source: 'migModeEnabled', key: 'migMode', toRaw: pct, parse: flag, tol: () => 0, tolText: 'exact', once: true },
  { source: 'eccSbeVolatile', key: 'eccSbeVol', toRaw: pct, tol: () => 0, tolText: 'exact', once: true },
  { source: 'eccDbeVolatile', key: 'eccDbeVol', toRaw: pct, tol: () => 0, tolText: 'exact', once: true },
  { source: 'eccSbeAggregate', key: 'eccSbeAgg', toRaw: pct, tol: () => 0, tolText: 'exact', once: true },
  { source: 'eccDbeAggregate', key: 'eccDbeAgg', toRaw: pct, tol: () => 0, tolText: 'exact', once: true },
  { source: 'retiredPagesSbe', key: 'retiredSbe', toRaw: pct, tol: () => 0, tolText: 'exact', once: true },
  { source: 'retiredPagesDbe', key: 'retiredDbe', toRaw: pct, tol: () => 0, tolText: 'exact', once: true },
  { source: 'retiredPagesPending', key: 'retiredPending', toRaw: pct, parse: flag, tol: () => 0, tolText: 'exact', once: true },
];

function fieldName(run: RunData, key: GpuKey): string {
  const i = run.meta.smiFields.keys.indexOf(key);
  return i >= 0 ? run.meta.smiFields.fields[i]! : key;
}

function noSmiField(run: RunData, key: GpuKey): string | undefined {
  return run.meta.smiFields.keys.includes(key) ? undefined : `this nvidia-smi has no --query-gpu field for ${key}`;
}

export const csvLevelRules: Rule[] = CSV_LEVELS.map((spec) => {
  const n = naming(spec.source);
  return {
    families: [n.name],
    rows(ctx) {
      const out: Row[] = [];
      const phases = spec.once ? ctx.phases.filter((p) => p.phase === 'idle') : ctx.phases;
      for (const { phase, snaps } of phases) {
        for (const dev of ctx.gpus) {
          let ref = refMedian(snaps, (s) => {
            const r = smi(s, dev, spec.key, spec.parse ?? numberWithUnit);
            return typeof r === 'number' ? spec.toRaw(r) * n.scale : r;
          });
          let refSource = `nvidia-smi ${fieldName(ctx.run, spec.key)}`;
          if (ref === undefined && spec.xml && noSmiField(ctx.run, spec.key)) {
            const x = spec.xml;
            ref = refMedian(snaps, (s) => {
              const g = xmlGpu(s, dev);
              const r = g ? (spec.parse ?? numberWithUnit)(x.get(g)) : undefined;
              return typeof r === 'number' ? spec.toRaw(r) * n.scale : r;
            });
            refSource = `nvidia-smi -q -x ${x.path}`;
          }
          const tolRef = typeof ref === 'number' ? ref : 0;
          out.push(level({
            family: n.name, dev, phase, unit: n.unit, exp: expMedian(snaps, n.name, dev),
            ref, refSource, tol: spec.tol(tolRef), tolText: spec.tolText,
            noRef: noSmiField(ctx.run, spec.key) ?? 'no nvidia-smi --query-gpu reading',
          }));
        }
      }
      return out;
    },
  };
});

/** MIG instances' own framebuffer, from nvidia-smi -q -x (mig_devices/mig_device/fb_memory_usage). */
export const migMemoryRule: Rule = {
  families: [],
  rows(ctx) {
    const out: Row[] = [];
    const items = [
      { source: 'fbTotalBytes', key: 'total', once: true, tol: TOL.memoryRoundingMiB, text: `±${TOL.memoryRoundingMiB} MiB (rounding)` },
      { source: 'fbReservedBytes', key: 'reserved', once: true, tol: TOL.memoryRoundingMiB, text: `±${TOL.memoryRoundingMiB} MiB (rounding)` },
      { source: 'fbUsedBytes', key: 'used', once: false, tol: MEM_USED_TOL, text: `±${MEM_USED_TOL} MiB (rounding + change between reads)` },
      { source: 'fbFreeBytes', key: 'free', once: false, tol: MEM_USED_TOL, text: `±${MEM_USED_TOL} MiB (rounding + change between reads)` },
    ] as const;
    for (const it of items) {
      const n = naming(it.source);
      const phases = it.once ? ctx.phases.filter((p) => p.phase === 'idle') : ctx.phases;
      for (const { phase, snaps } of phases) {
        for (const dev of ctx.migs) {
          const ref = refMedian(snaps, (s) => {
            const r = numberWithUnit(xmlMig(s, dev)?.fb[it.key]);
            return typeof r === 'number' ? r * MIB * n.scale : r;
          });
          out.push(level({
            family: n.name, dev, phase, unit: n.unit, exp: expMedian(snaps, n.name, dev), ref,
            refSource: `nvidia-smi -q -x mig_device fb_memory_usage/${it.key}`, tol: it.tol, tolText: it.text,
            noRef: 'no nvidia-smi -q -x reading of this MIG device',
          }));
        }
      }
    }
    return out;
  },
};

/** PCIe throughput over the driver's 20 ms window: nvidia-smi -q -x pci/tx_util, rx_util (else pynvml). */
export const pcieRule: Rule = {
  families: [nameOf('pcieTxKBps'), nameOf('pcieRxKBps')],
  rows(ctx) {
    const out: Row[] = [];
    for (const { phase, snaps } of ctx.phases) {
      for (const [source, xmlKey, pyKey] of [['pcieTxKBps', 'txUtil', 'pcie_tx_kbps'], ['pcieRxKBps', 'rxUtil', 'pcie_rx_kbps']] as const) {
        const n = naming(source);
        for (const dev of ctx.gpus) {
          let ref = refMedian(snaps, (s) => numberWithUnit(xmlGpu(s, dev)?.pcie[xmlKey]));
          let refSource = `nvidia-smi -q -x pci/${xmlKey === 'txUtil' ? 'tx_util' : 'rx_util'}`;
          if (ref === undefined) {
            ref = refMedian(snaps, (s) => pyValue(s, dev, pyKey));
            refSource = 'pynvml nvmlDeviceGetPcieThroughput';
          }
          const tol = Math.max(TOL.pcieKBps, TOL.pcieFraction * (typeof ref === 'number' ? ref : 0));
          out.push(level({
            family: n.name, dev, phase, unit: n.unit, exp: expMedian(snaps, n.name, dev), ref, refSource, tol,
            tolText: `±${TOL.pcieKBps} KB/s or ${TOL.pcieFraction * 100} % (a 20 ms window, read at other moments)`,
            noRef: 'no nvidia-smi -q -x or pynvml reading',
          }));
        }
      }
    }
    return out;
  },
};

const KNOWN_REASON_BITS = Object.values(ClocksEventReason).reduce((a, b) => a | b, 0);
const REASON_BY_NAME = new Map(Object.entries(ClocksEventReason).map(([k, v]) => [k.toLowerCase(), v]));

function hex(v: number): string {
  return `0x${v.toString(16)}`;
}

function mode(values: readonly number[]): number | undefined {
  const counts = new Map<number, number>();
  for (const v of values) counts.set(v, (counts.get(v) ?? 0) + 1);
  let best: number | undefined;
  let bestN = 0;
  for (const [v, c] of counts) if (c > bestN) [best, bestN] = [v, c];
  return best;
}

/** Bits that kept one value through all of `masks`. */
function stableBits(masks: readonly number[]): number {
  let changed = 0;
  for (const m of masks) changed |= (m ^ masks[0]!);
  return KNOWN_REASON_BITS & ~changed;
}

/** Throttle reasons: the bits that held still on both sides through a phase must agree. */
export const throttleRule: Rule = {
  families: [nameOf('clocksEventReasons'), nameOf('clocksEventReasons', true)],
  rows(ctx) {
    const out: Row[] = [];
    const maskName = nameOf('clocksEventReasons');
    const perReason = nameOf('clocksEventReasons', true);
    for (const { phase, snaps } of ctx.phases) {
      for (const dev of ctx.gpus) {
        const ref = nums(snaps.map((s) => {
          const r = smi(s, dev, 'throttle', hexMask);
          return typeof r === 'number' ? r : undefined;
        }));
        const refNA = snaps.map((s) => smi(s, dev, 'throttle', hexMask)).find(isNA);
        const fromMask = nums(snaps.map((s) => valueOn(s.scrape, maskName, dev)));
        const fromReasons = snaps.flatMap((s) => {
          const series = seriesOn(s.scrape, perReason, dev);
          if (series.length === 0) return [];
          let m = 0;
          for (const sr of series) if (sr.value === 1) m |= REASON_BY_NAME.get(sr.labels.reason ?? '') ?? 0;
          return [m];
        });
        const refSource = `nvidia-smi ${fieldName(ctx.run, 'throttle')}`;
        for (const [family, exp] of [[maskName, fromMask], [perReason, fromReasons]] as const) {
          const expMode = mode(exp);
          const refMode = mode(ref.map((r) => r & KNOWN_REASON_BITS));
          const base = {
            family, gpu: dev.label, phase,
            exporter: expMode === undefined ? 'absent' : hex(expMode),
            reference: refMode !== undefined ? `${hex(refMode)} (${refSource})` : refNA ? `${refNA.na} (${refSource})` : '-',
            tolerance: 'bits steady through the phase on both sides agree',
          };
          if (ref.length === 0) {
            if (refNA) out.push({ ...base, verdict: exp.length === 0 ? 'pass' : 'fail', note: exp.length === 0 ? 'absent on both' : `the exporter has a value where ${refSource} has none` });
            else out.push({ ...base, verdict: 'skip', note: noSmiField(ctx.run, 'throttle') ?? 'no nvidia-smi --query-gpu reading' });
            continue;
          }
          if (exp.length === 0) {
            out.push({ ...base, verdict: 'fail', note: 'absent in the exporter' });
            continue;
          }
          const compared = stableBits(exp) & stableBits(ref);
          const differ = (exp[0]! ^ ref[0]!) & compared;
          out.push({ ...base, verdict: differ === 0 ? 'pass' : 'fail', note: differ === 0 ? `compared bits ${hex(compared)}` : `bits ${hex(differ)} differ` });
        }
      }
    }
    return out;
  },
};

/** Identity labels of gpu_info against nvidia-smi and the node name. */
export const identityRule: Rule = {
  families: [INFO.gpu, INFO.mig, EVENTS.answering],
  rows(ctx) {
    const out: Row[] = [];
    const s = ctx.idle[0];
    if (!s) return out;
    const driver = s.smi?.[0]?.driver ?? s.xml?.driverVersion;
    for (const dev of ctx.gpus) {
      const info = seriesOn(s.scrape, INFO.gpu, dev)[0] ?? seriesOf(s.scrape, INFO.gpu).find((x) => x.labels.gpu === String(dev.index));
      const row = smiRow(s, dev);
      const xml = xmlGpu(s, dev);
      const checks: [string, string | undefined, string][] = [
        ['gpu', String(dev.index), 'nvidia-smi -L index'],
        ['UUID', dev.uuid, 'nvidia-smi -L'],
        ['pci_bus_id', row?.busId ?? xml?.id, 'nvidia-smi pci.bus_id'],
        ['modelName', row?.name ?? xml?.productName, 'nvidia-smi name'],
        ['device', xml?.minorNumber !== undefined && /^\d+$/.test(xml.minorNumber) ? `nvidia${xml.minorNumber}` : undefined, 'nvidia-smi -q -x minor_number'],
        ['DCGM_FI_DRIVER_VERSION', driver, 'nvidia-smi driver_version'],
        ['Hostname', ctx.run.meta.nodeName, 'the node name the exporter was given'],
      ];
      for (const [label, ref, source] of checks) {
        const exp = info?.labels[label];
        const base = { family: `${INFO.gpu}{${label}}`, gpu: dev.label, phase: 'idle' as const, exporter: exp ?? 'absent', reference: ref === undefined ? '-' : `${ref} (${source})`, tolerance: 'exact' };
        if (ref === undefined) out.push({ ...base, verdict: 'skip', note: `no reference: ${source} not read` });
        else out.push({ ...base, verdict: exp === ref ? 'pass' : 'fail', note: exp === ref ? undefined : exp === undefined ? 'absent in the exporter' : 'differs' });
      }
      const answering = valueOn(s.scrape, EVENTS.answering, dev);
      out.push({
        family: EVENTS.answering, gpu: dev.label, phase: 'idle', exporter: show(answering, ''), reference: '1 (listed by nvidia-smi)', tolerance: 'exact',
        verdict: answering === 1 ? 'pass' : 'fail', note: answering === 1 ? undefined : 'a GPU nvidia-smi lists is not answering in the exporter',
      });
    }
    if (ctx.migs.length === 0) {
      const n = seriesOf(s.scrape, INFO.mig).length;
      out.push({
        family: INFO.mig, gpu: 'node', phase: 'idle', exporter: n ? `${n} series` : 'absent', reference: 'no MIG device (nvidia-smi -L)', tolerance: 'absent',
        verdict: n === 0 ? 'pass' : 'fail', note: n === 0 ? undefined : 'MIG instances that nvidia-smi does not list',
      });
    }
    for (const dev of ctx.migs) {
      const info = seriesOf(s.scrape, INFO.mig).find((x) => x.labels.mig_uuid === dev.migUuid);
      const xm = xmlMig(s, dev);
      const checks: [string, string | undefined, string][] = [
        ['mig_uuid', dev.migUuid, 'nvidia-smi -L'],
        ['GPU_I_PROFILE', dev.profile, 'nvidia-smi -L'],
        ['GPU_I_ID', xm?.gpuInstanceId, 'nvidia-smi -q -x gpu_instance_id'],
        ['compute_instance_id', xm?.computeInstanceId, 'nvidia-smi -q -x compute_instance_id'],
        ['UUID', dev.uuid, 'nvidia-smi -L (parent GPU)'],
      ];
      for (const [label, ref, source] of checks) {
        const exp = info?.labels[label];
        const base = { family: `${INFO.mig}{${label}}`, gpu: dev.label, phase: 'idle' as const, exporter: exp ?? 'absent', reference: ref === undefined ? '-' : `${ref} (${source})`, tolerance: 'exact' };
        if (ref === undefined) out.push({ ...base, verdict: 'skip', note: `no reference: ${source} not read` });
        else out.push({ ...base, verdict: exp === ref ? 'pass' : 'fail', note: exp === ref ? undefined : exp === undefined ? 'absent in the exporter' : 'differs' });
      }
    }
    return out;
  },
};
