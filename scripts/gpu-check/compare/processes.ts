/**
 * Rules for the processes on each device: the per-container families against the compute
 * processes nvidia-smi and pynvml list, grouped as the exporter groups them (by pod UID, the
 * series with empty pod labels for processes outside pods), and the load's own pid.
 */
import { exporterFamily, POD } from '../names.js';
import { scalar } from '../prom.js';
import type { PyProcess } from '../pynvml.js';
import type { PidInfo, Snapshot } from '../run-data.js';
import { fmt, isNA, median, numberWithUnit, type Reading } from '../values.js';
import { level, MIB, nums, nvmlAnswer, outsidePods, pyGpu, pyMig, pynvmlMissing, refMedian, seriesOn, show, TOL, valueOn, xmlGpu, type Device, type Row, type Rule } from './core.js';

/** The compute processes the reference lists on a device, with their memory in bytes where known. */
interface RefProcess {
  pid: number;
  memoryBytes?: number;
  /** Memory in whole MiB (nvidia-smi) rather than bytes (pynvml): each adds a MiB of rounding. */
  rounded: boolean;
}

function refProcesses(s: Snapshot, dev: Device): { list: RefProcess[]; source: string } | undefined {
  const fromPy = (procs: PyProcess[] | null | undefined, source: string) =>
    procs ? { list: procs.map((p) => ({ pid: p.pid, memoryBytes: p.used_memory ?? undefined, rounded: false })), source } : undefined;
  if (dev.kind === 'mig') {
    const py = fromPy(pyMig(s, dev)?.processes, 'pynvml (MIG instance)');
    if (py) return py;
    const xml = xmlGpu(s, dev);
    if (!xml) return undefined;
    return {
      list: xml.processes.filter((p) => Number(p.gpuInstanceId) === dev.gi).map((p) => {
        const m = numberWithUnit(p.usedMemory);
        return { pid: p.pid, memoryBytes: typeof m === 'number' ? m * MIB : undefined, rounded: true };
      }),
      source: 'nvidia-smi -q -x processes',
    };
  }
  if (s.apps) {
    const pyProcs = pyGpu(s, dev)?.processes;
    return {
      list: s.apps.filter((a) => a.gpuUuid === dev.uuid).map((a) => {
        const py = pyProcs?.find((p) => p.pid === a.pid);
        if (py?.used_memory !== undefined && py.used_memory !== null) return { pid: a.pid, memoryBytes: py.used_memory, rounded: false };
        const m = numberWithUnit(a.usedMemory);
        return { pid: a.pid, memoryBytes: typeof m === 'number' ? m * MIB : undefined, rounded: true };
      }),
      source: pyProcs ? 'nvidia-smi --query-compute-apps, memory from pynvml' : 'nvidia-smi --query-compute-apps',
    };
  }
  return fromPy(pyGpu(s, dev)?.processes, 'pynvml');
}

function pidInfo(s: Snapshot, pid: number): PidInfo {
  return s.pids[String(pid)] ?? { visible: true, inPod: false };
}

/**
 * Which of the exporter's per-container series a process belongs to: its pod's UID, '' for a
 * process outside any pod (the series with empty pod labels), undefined when this /proc does
 * not show the pid (the exporter counts it as unplaced).
 */
function groupOf(s: Snapshot, pid: number): string | undefined {
  const i = pidInfo(s, pid);
  return i.visible ? i.podUid ?? '' : undefined;
}

const inGroup = (group: string) => (l: Record<string, string>): boolean => (l.pod_uid ?? '') === group && (group !== '' || outsidePods(l));

export const processRule: Rule = {
  families: [POD.processes, POD.memoryUsed, POD.smUtilization, exporterFamily('unplacedProcesses')],
  rows(ctx) {
    const out: Row[] = [];
    const loadPid = ctx.run.meta.load?.pid;
    for (const { phase, snaps } of ctx.phases) {
      const unplacedExp = median(nums(snaps.map((s) => scalar(s.scrape, exporterFamily('unplacedProcesses')))));
      const unplacedRef = median(nums(snaps.map((s) => {
        if (!s.apps) return undefined;
        return new Set(s.apps.filter((a) => !pidInfo(s, a.pid).visible).map((a) => a.pid)).size;
      })));
      out.push(level({
        family: exporterFamily('unplacedProcesses'), phase, unit: '', exp: unplacedExp, ref: unplacedRef, refSource: 'nvidia-smi compute apps without /proc/<pid> here',
        tol: 0, tolText: 'exact (median)', noRef: 'no nvidia-smi --query-compute-apps reading',
      }));
      for (const dev of ctx.devices) {
        if (dev.kind === 'gpu' && dev.migEnabled) continue; // processes count on the MIG instances
        const isLoadDev = phase === 'load' && ctx.target !== undefined && ctx.target === dev;
        const perSnap = snaps.map((s) => ({ s, ref: refProcesses(s, dev) }));
        const source = perSnap.find((p) => p.ref)?.ref?.source ?? 'nvidia-smi';
        const hidden = perSnap.some((p) => p.ref?.list.some((r) => !pidInfo(p.s, r.pid).visible));
        const groups = new Set<string>(['']);
        for (const p of perSnap) for (const r of p.ref?.list ?? []) {
          const g = groupOf(p.s, r.pid);
          if (g !== undefined) groups.add(g);
        }
        for (const s of snaps) for (const sr of seriesOn(s.scrape, POD.processes, dev)) groups.add(sr.labels.pod_uid ?? '');
        for (const group of groups) {
          const filter = inGroup(group);
          const named = (family: string) => (group === '' ? family : `${family}{pod_uid="${group}"}`);
          const who = group === '' ? 'outside pods' : `in pod ${group}`;
          const members = perSnap.map((p) => (p.ref ? p.ref.list.filter((r) => groupOf(p.s, r.pid) === group) : undefined));
          // count
          const expCount = median(snaps.map((s) => valueOn(s.scrape, POD.processes, dev, filter) ?? 0));
          const refCount = median(nums(members.map((m) => m?.length)));
          out.push(level({
            family: named(POD.processes), dev, phase, unit: '', exp: expCount, ref: refCount, refSource: `${source}, ${who}`,
            tol: 0, tolText: `exact (median over the phase; ${group === '' ? 'empty pod labels' : 'that pod_uid'})`, noRef: 'no process list from nvidia-smi or pynvml',
          }));
          // memory, compared and shown in MiB (the family is in bytes)
          const expMem = median(snaps.map((s) => valueOn(s.scrape, POD.memoryUsed, dev, filter) ?? 0));
          let rounding = 0;
          const sums = members.flatMap((m) => {
            if (!m || m.some((r) => r.memoryBytes === undefined)) return [];
            rounding = Math.max(rounding, m.filter((r) => r.rounded).length);
            return [m.reduce((a, r) => a + (r.memoryBytes ?? 0), 0)];
          });
          const refMem: Reading = sums.length ? median(sums)! / MIB : members.some((m) => m?.length) ? { na: 'memory not reported' } : undefined;
          out.push(level({
            family: named(POD.memoryUsed), dev, phase, unit: 'MiB', exp: isNA(refMem) && expMem === 0 ? undefined : expMem === undefined ? undefined : expMem / MIB, ref: refMem,
            refSource: `${source}, ${who}`, tol: TOL.memoryDriftMiB + TOL.processMemoryPerProcessMiB * rounding,
            tolText: `±${TOL.memoryDriftMiB} MiB + ${TOL.processMemoryPerProcessMiB} MiB per process in MiB (sum of its processes)`,
            noRef: 'no process list from nvidia-smi or pynvml',
          }));
          // SM utilization of the processes (whole GPUs only)
          if (dev.kind !== 'gpu') continue;
          const expSm = median(snaps.map((s) => valueOn(s.scrape, POD.smUtilization, dev, filter) ?? 0));
          const refSm = refMedian(snaps, (s) => {
            const g = pyGpu(s, dev);
            if (!g) return undefined;
            if (g.process_utilization === null || g.process_utilization === undefined) return nvmlAnswer(g.errors.process_utilization);
            const pids = new Set((refProcesses(s, dev)?.list ?? []).filter((r) => groupOf(s, r.pid) === group).map((r) => r.pid));
            return g.process_utilization.filter((u) => pids.has(u.pid)).reduce((a, u) => a + u.sm, 0) / 100;
          });
          const loadHere = isLoadDev && loadPid !== undefined && snaps.some((s) => groupOf(s, loadPid) === group);
          out.push(level({
            family: named(POD.smUtilization), dev, phase, unit: 'ratio', exp: expSm, ref: refSm, refSource: `pynvml nvmlDeviceGetProcessUtilization, ${who}`,
            tol: TOL.processSmVsPynvml, tolText: `±${TOL.processSmVsPynvml} (medians)`,
            threshold: loadHere ? { text: `under load both >= ${TOL.processSmLoadMin}`, test: (e, r) => ({ ok: e >= TOL.processSmLoadMin && (r ?? 1) >= TOL.processSmLoadMin, note: `below ${TOL.processSmLoadMin} under load` }) } : undefined,
            noRef: pynvmlMissing(ctx.run, snaps) ?? 'no pynvml process utilization',
          }));
        }
        // the load itself: listed by the reference, with its memory, and counted in its series
        if (isLoadDev && loadPid !== undefined) {
          const listedIn = perSnap.find((p) => p.ref?.list.some((r) => r.pid === loadPid));
          const listed = listedIn?.ref?.list.find((r) => r.pid === loadPid);
          const group = listedIn ? groupOf(listedIn.s, loadPid) : undefined;
          const last = snaps[snaps.length - 1]!;
          const exp = group === undefined ? undefined : valueOn(last.scrape, POD.processes, dev, inGroup(group));
          const base = {
            family: POD.processes, gpu: dev.label, phase, exporter: show(exp, ''),
            tolerance: 'the load\'s pid is listed and counted',
          };
          const where = group === undefined ? '' : group === '' ? ', outside pods' : `, in pod ${group}`;
          if (listed && group !== undefined) {
            out.push({
              ...base, reference: `pid ${loadPid}, ${listed.memoryBytes !== undefined ? fmt(listed.memoryBytes / MIB) + ' MiB' : 'memory N/A'} (${source}${where})`,
              verdict: (exp ?? 0) >= 1 ? 'pass' : 'fail', note: (exp ?? 0) >= 1 ? 'load process' : `the exporter counts no process ${group === '' ? 'outside pods' : 'in that pod'}`,
            });
          } else if (hidden || (listed && group === undefined)) {
            out.push({ ...base, reference: `pid ${loadPid} not listed (${source})`, verdict: 'skip', note: 'the driver lists pids that are not in this /proc (a pid namespace of its own, e.g. a container without host pids): the load cannot be matched by pid' });
          } else {
            out.push({ ...base, reference: `pid ${loadPid} not listed (${source})`, verdict: 'fail', note: 'the load\'s pid is not in the reference\'s process list' });
          }
        }
        if (phase === 'after' && ctx.target === dev && loadPid !== undefined) {
          const still = perSnap.some((p) => p.ref?.list.some((r) => r.pid === loadPid));
          const expCount = median(snaps.map((s) => nums(seriesOn(s.scrape, POD.processes, dev).map((x) => x.value)).reduce((a, b) => a + b, 0)));
          out.push({
            family: POD.processes, gpu: dev.label, phase, exporter: show(expCount, ''), reference: still ? `pid ${loadPid} still listed (${source})` : `pid ${loadPid} gone (${source})`,
            tolerance: 'the load\'s pid is gone after it stopped', verdict: still ? 'fail' : 'pass', note: still ? 'the load process did not go away' : undefined,
          });
        }
      }
    }
    return out;
  },
};
