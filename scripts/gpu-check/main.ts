/**
 * `npm run gpu-check [-- options]`: the compiled exporter against this host's real NVIDIA
 * driver, every family it exposes compared with nvidia-smi and pynvml, idle, under a load the
 * check starts, and idle again. One table on stdout; progress on stderr.
 *
 * Exit 0: every row within tolerance. 1: a row failed (or the check could not run a reading).
 * 2: bad options. 3: no NVIDIA GPU or driver (one line on stderr saying what is missing).
 *
 * It never changes a GPU setting: nvidia-smi is only asked to list and query, pynvml only
 * reads, and the load only computes. See docs/gpu-check.md.
 */
import os from 'node:os';
import path from 'node:path';
import { repoRoot } from '../../src/sim/harness.js';
import { compareRun, exitCode, type Row } from './compare.js';
import { SAMPLE_INTERVAL_SECONDS, startExporter, type RunningExporter } from './exporter.js';
import { startLoad, type Load } from './load.js';
import { parseOptions, USAGE, UsageError, type Options } from './options.js';
import { preflight } from './preflight.js';
import { parsePynvml } from './pynvml.js';
import { readRecording, writeRecording } from './record.js';
import { appPids, negotiateFields, pidInfo, readAppsCsv, readGpuCsv, readPynvml, readXml, type SmiQuery } from './references.js';
import { parseRun, type PhaseName, type RawRun, type RawSnapshot, type RunMeta } from './run-data.js';
import { parseAppsCsv, parseGpuCsv, queryFields, type ListedGpu } from './smi-csv.js';
import { renderTable, summary } from './table.js';
import { flag } from './values.js';

const root = repoRoot();
const here = path.join(root, 'scripts', 'gpu-check');
/** Everything after the build has to fit in this (the whole check: 5 minutes). */
const BUDGET_MS = 270_000;
const LOAD_SETTLE_MS = 5000;
const AFTER_SETTLE_MS = 3000;

const progress = (msg: string): void => {
  process.stderr.write(`gpu-check: ${msg}\n`);
};
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function header(raw: RawRun, rows: readonly Row[]): string {
  const m = raw.meta;
  const gpus = raw.listing.split('\n').filter((l) => l.startsWith('GPU ')).length;
  const lines = [
    `gpu-check: ${gpus} GPU${gpus === 1 ? '' : 's'} (${m.nvml.library}), node ${m.nodeName}, phases ${m.phaseSeconds.idle}/${m.phaseSeconds.load}/${m.phaseSeconds.after} s, ${raw.snapshots.length} snapshots`,
    `  load: ${m.load ? `${m.load.kind}, pid ${m.load.pid}, on ${m.load.migUuid ?? m.load.gpuUuid}${m.load.ended ? ` (${m.load.ended})` : ''}` : `none (${m.loadSkipped ?? 'not started'})`}`,
    `  pynvml: ${m.pynvml.available ? 'yes' : `no (${m.pynvml.reason ?? 'not available'})`}`,
    `  verdict: ${verdictLine(rows)}`,
    '',
  ];
  return lines.join('\n');
}

function verdictLine(rows: readonly Row[]): string {
  const s = summary(rows);
  const skipped = s.skip ? `; ${s.skip} row${s.skip === 1 ? '' : 's'} skipped, each saying why` : '';
  return s.fail ? `${s.fail} row${s.fail === 1 ? '' : 's'} FAIL${skipped}` : `everything compared is within tolerance${skipped}`;
}

function report(raw: RawRun): { text: string; code: 0 | 1 } {
  const rows = compareRun(parseRun(raw));
  return { text: header(raw, rows) + renderTable(rows), code: exitCode(rows) };
}

/** The GPU (or first MIG instance) the load runs on. */
function pickTarget(gpus: readonly ListedGpu[], firstCsv: string | undefined, query: SmiQuery): { device: string; gpuUuid: string; migUuid?: string } | { reason: string } {
  let rows: ReturnType<typeof parseGpuCsv> = [];
  try {
    const { keys, fields } = queryFields(query.choice);
    rows = firstCsv ? parseGpuCsv(firstCsv, fields, keys) : [];
  } catch {
    /* no MIG mode known: the listing decides */
  }
  for (const g of [...gpus].sort((a, b) => a.index - b.index)) {
    const m = g.mig[0];
    if (m) return { device: m.uuid, gpuUuid: g.uuid, migUuid: m.uuid };
    const row = rows.find((r) => r.uuid === g.uuid);
    if (row?.migMode !== undefined && flag(row.migMode) === 1) continue;
    return { device: g.uuid, gpuUuid: g.uuid };
  }
  return { reason: 'every GPU is MIG-enabled without a MIG instance to run on' };
}

interface Live {
  opts: Options;
  exporter: RunningExporter;
  query: SmiQuery;
  meta: RunMeta;
  snapshots: RawSnapshot[];
  /** pynvml is called with --events once, on the first snapshot that reaches it. */
  eventsAsked: boolean;
  deadline: number;
}

async function snapshot(live: Live, phase: PhaseName, seq: number, withXml: boolean): Promise<RawSnapshot> {
  const at = Date.now() / 1000;
  const scrape = await live.exporter.scrape();
  const errors: Record<string, string> = {};
  const s: RawSnapshot = { phase, seq, at, scrape };
  const csv = await readGpuCsv(live.query);
  if (csv.text !== undefined) s.smiCsv = csv.text;
  else errors['nvidia-smi --query-gpu'] = csv.error!;
  const apps = await readAppsCsv(live.query.smi);
  if (apps.text !== undefined) s.appsCsv = apps.text;
  else errors['nvidia-smi --query-compute-apps'] = apps.error!;
  if (withXml) {
    const xml = await readXml(live.query.smi);
    if (xml.text !== undefined) s.xml = xml.text;
    else errors['nvidia-smi -q -x'] = xml.error!;
  }
  const pids = new Set(appPids(s.appsCsv));
  if (live.meta.pynvml.available) {
    const py = await readPynvml(live.opts.python, here, !live.eventsAsked);
    if (py.missing) {
      live.meta.pynvml = { available: false, reason: py.missing };
    } else if (py.text !== undefined) {
      live.eventsAsked = true;
      s.pynvml = py.text;
      try {
        const parsed = parsePynvml(py.text);
        if (!parsed.ok && parsed.stage === 'import') {
          live.meta.pynvml = { available: false, reason: `${live.opts.python} has no pynvml (install nvidia-ml-py): ${parsed.error}` };
          delete s.pynvml;
        } else if (parsed.ok) {
          for (const g of parsed.gpus) for (const p of [...(g.processes ?? []), ...g.mig.flatMap((m) => m.processes ?? [])]) pids.add(p.pid);
        }
      } catch {
        /* kept as text: parseRun reports it */
      }
    } else {
      errors.pynvml = py.error!;
    }
  }
  s.pids = pidInfo(pids);
  if (Object.keys(errors).length) s.errors = errors;
  return s;
}

async function runPhase(live: Live, phase: PhaseName): Promise<void> {
  const end = Date.now() + live.opts.phaseSeconds[phase] * 1000;
  progress(`${phase} phase, ${live.opts.phaseSeconds[phase]} s`);
  let seq = 0;
  do {
    const t0 = Date.now();
    live.snapshots.push(await snapshot(live, phase, seq, seq === 0));
    seq++;
    const wait = 1000 - (Date.now() - t0);
    if (wait > 0) await sleep(wait);
  } while ((Date.now() < end || seq < 2) && Date.now() < live.deadline);
}

/** Waits until nvidia-smi no longer lists the pid (at most `ms`). */
async function waitGone(smi: string, pid: number, ms: number): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    const r = await readAppsCsv(smi);
    try {
      if (r.text !== undefined && !parseAppsCsv(r.text).some((a) => a.pid === pid)) return;
    } catch {
      return;
    }
    await sleep(500);
  }
}

async function runLive(opts: Options, pre: Extract<Awaited<ReturnType<typeof preflight>>, { ok: true }>): Promise<number> {
  const started = Date.now();
  const fields = await negotiateFields(pre.nvidiaSmi);
  if ('error' in fields) {
    process.stderr.write(`gpu-check: ${fields.error}\n`);
    return 1;
  }
  if (fields.dropped.length) progress(`this nvidia-smi does not know ${fields.dropped.join(', ')}`);
  const meta: RunMeta = {
    format: 1,
    startedAt: started / 1000,
    nodeName: process.env.NODE_NAME?.trim() || os.hostname(),
    sampleIntervalSeconds: SAMPLE_INTERVAL_SECONDS,
    phaseSeconds: opts.phaseSeconds,
    smiFields: queryFields(fields.query.choice),
    nvml: { loaded: true, library: pre.nvmlLibrary },
    pynvml: { available: true },
  };
  progress(`starting the exporter (dist/src/main.js) on ${pre.gpus.length} GPU(s)`);
  let exporter: RunningExporter;
  try {
    exporter = await startExporter({ root, ...(opts.nvmlLibrary ? { nvmlLibrary: opts.nvmlLibrary } : {}) });
  } catch (err) {
    process.stderr.write(`gpu-check: ${(err as Error).message}\n`);
    return 1;
  }
  let load: Load | undefined;
  const cleanup = async (): Promise<void> => {
    if (load) await load.stop().catch(() => undefined);
    load = undefined;
    await exporter.stop().catch(() => undefined);
  };
  const onSignal = (sig: NodeJS.Signals): void => {
    progress(`${sig}: stopping the load and the exporter`);
    void cleanup().finally(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  const live: Live = { opts, exporter, query: fields.query, meta, snapshots: [], eventsAsked: false, deadline: started + BUDGET_MS };
  try {
    await runPhase(live, 'idle');
    const target = pickTarget(pre.gpus, live.snapshots[0]?.smiCsv, fields.query);
    const reserve = (opts.phaseSeconds.load + opts.phaseSeconds.after) * 1000 + LOAD_SETTLE_MS + AFTER_SETTLE_MS + 25_000;
    const budget = live.deadline - Date.now() - reserve;
    if ('reason' in target) meta.loadSkipped = target.reason;
    else if (budget < 5000) meta.loadSkipped = 'no time left for a load phase within 5 minutes';
    else {
      progress(`starting the load on ${target.device}`);
      const r = await startLoad({ python: opts.python, device: target.device, seconds: opts.phaseSeconds.load + 60, here, budgetMs: budget });
      if (!r.ok) {
        meta.loadSkipped = r.reason;
        progress(`no load: ${r.reason}`);
      } else {
        load = r.load;
        meta.load = { kind: r.load.kind, pid: r.load.pid, gpuUuid: target.gpuUuid, ...(target.migUuid ? { migUuid: target.migUuid } : {}) };
        progress(`${r.load.kind} load running, pid ${r.load.pid}`);
        await sleep(LOAD_SETTLE_MS);
        await runPhase(live, 'load');
        meta.load.ended = await r.load.stop();
        load = undefined;
        await waitGone(fields.query.smi, meta.load.pid, 15_000);
        await sleep(AFTER_SETTLE_MS);
        await runPhase(live, 'after');
      }
    }
  } catch (err) {
    // what was read so far still makes a table (and a recording): the run fails with the reason
    meta.aborted = (err as Error).message;
    process.stderr.write(`gpu-check: ${meta.aborted}\n`);
  } finally {
    process.removeListener('SIGINT', onSignal);
    process.removeListener('SIGTERM', onSignal);
  }
  const logs = exporter.logs();
  await cleanup();
  const raw: RawRun = { meta, listing: pre.listing, snapshots: live.snapshots };
  const { text, code } = report(raw);
  process.stdout.write(text);
  if (opts.record) {
    writeRecording(opts.record, raw, { 'table.txt': text, 'exporter.log': logs.join('\n') + '\n' });
    progress(`recorded in ${opts.record}`);
  }
  progress(`done in ${Math.round((Date.now() - started) / 1000)} s`);
  return code;
}

export async function main(argv: readonly string[]): Promise<number> {
  let opts: Options;
  try {
    opts = parseOptions(argv);
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    process.stderr.write(`gpu-check: ${err.message}\n${USAGE}\n`);
    return 2;
  }
  if (opts.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  if (opts.replay) {
    const { text, code } = report(readRecording(opts.replay));
    process.stdout.write(text);
    return code;
  }
  const pre = await preflight({ ...(opts.nvidiaSmi ? { nvidiaSmi: opts.nvidiaSmi } : {}), ...(opts.nvmlLibrary ? { nvmlLibrary: opts.nvmlLibrary } : {}) });
  if (!pre.ok) {
    process.stderr.write(`${pre.reason}\n`);
    return 3;
  }
  return runLive(opts, pre);
}

process.exitCode = await main(process.argv.slice(2));
// a lingering keep-alive socket must not hold the exit back
setTimeout(() => process.exit(), 5000).unref();
