import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { enabledCollectors } from '../src/collectors/index.js';
import { NvmlBinding } from '../src/native/nvml-binding.js';
import { NODE_FLAGS } from '../src/node-flags.js';
import { Ticker } from '../src/sampler/tick.js';
import { repoRoot, simulatedNode } from '../src/sim/harness.js';
import { migNodeDraPods, migNodeSim } from '../src/sim/mig-node.js';
import { startSimulatedPods } from '../src/sim/simulated-pods.js';

/**
 * `npm run bench`: figures, not pass/fail. For each simulated node (1 GPU; 8x H100 with its
 * pods; 8x H100 with 7 MIG instances each and 1,000 pods) it starts the compiled exporter with
 * the node flags it ships with, and a bare node:http server sending the same bytes (the floor),
 * each in its own process, and scrapes both, interleaved, with CONCURRENCY requests in flight.
 * It prints one table: scrape latency beside the floor's, the latency of a scrape that is the
 * first after a new sample (it renders that sample), exporter CPU per scrape and per sampling tick
 * (measured in a child process of this script, with the same node flags, on the same simulated
 * node), CPU per second idle (no scrapes) and with one gzip scrape every 15 s (as Prometheus
 * scrapes), bytes per scrape, and resident memory before and after the scrapes, and how long the
 * last refresh of the kubelet's device map took; then, for the 8x H100 node, whether memory
 * stays flat over a second round of scrapes. `h100x8-mig7-dra` (in the default list) is the MIG
 * node with 1,000 DRA claims, written to a temporary directory by src/sim/mig-node.ts, its
 * ResourceSlice on a fake API server.
 */
const SCRAPES = Number(process.env.BENCH_SCRAPES ?? 10_000);
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 4);
const TICKS = Number(process.env.BENCH_TICKS ?? 2000);
const IDLE_MS = Number(process.env.BENCH_IDLE_MS ?? 20_000);
/**
 * Time the exporter runs before its idle CPU is measured: V8 collects the start-up garbage with
 * full GCs ("memory reducer") about 8 s after start, once per thread, which is not what a node
 * pays for an exporter that runs for weeks.
 */
const WARM_MS = Number(process.env.BENCH_WARM_MS ?? 20_000);
/** A window in which one Prometheus scrapes every SCRAPE_EVERY_MS, as a fleet runs it. */
const SCRAPED_MS = Number(process.env.BENCH_SCRAPED_MS ?? 30_000);
const SCRAPE_EVERY_MS = Number(process.env.BENCH_SCRAPE_EVERY_MS ?? 15_000);
/** Scrapes that each come just after a new sample, so each renders it. */
const COLD_SCRAPES = Number(process.env.BENCH_COLD_SCRAPES ?? 10);
const SCENARIOS = (process.env.BENCH_SCENARIOS ?? 'workstation,h100x8,h100x8-mig7,h100x8-mig7-dra').split(',');
/** Scenarios generated for the benchmark rather than shipped. */
const GENERATED: Record<string, () => { sim: string; pods: string }> = {
  'h100x8-mig7-dra': () => ({ sim: migNodeSim(), pods: migNodeDraPods() }),
};

/** The scenario file to run: a shipped name, or a generated scenario written to a temporary directory. */
function scenarioFile(name: string): string {
  const make = GENERATED[name];
  if (!make) return name;
  const dir = mkdtempSync(path.join(os.tmpdir(), 'kge-bench-scn-'));
  const { sim, pods } = make();
  writeFileSync(path.join(dir, `${name}.sim`), sim);
  writeFileSync(path.join(dir, `${name}.pods.json`), pods);
  return path.join(dir, `${name}.sim`);
}
/** The node whose memory is watched over a second round of scrapes. */
const FLATNESS_SCENARIO = 'h100x8';

const root = repoRoot();
const nodeFlags = process.env.BENCH_NODE_FLAGS !== undefined ? process.env.BENCH_NODE_FLAGS.split(' ').filter(Boolean) : [...NODE_FLAGS];

// --- CPU per sampling tick: a child process of this script per scenario ------------------
if (process.argv[2] === '--tick-cpu') {
  const node = simulatedNode(process.argv[3]!);
  process.env.KGE_SIM_STATE = node.statePath;
  const nvml = new NvmlBinding({ libraryPath: node.libraryPath });
  nvml.init();
  const cpuPerTick = (ticker: Ticker): number => {
    for (let i = 0; i < 200; i++) ticker.tick(); // warm: the first ticks run cold code
    const cpu0 = process.cpuUsage();
    for (let i = 0; i < TICKS; i++) ticker.tick();
    const cpu = process.cpuUsage(cpu0);
    return (cpu.user + cpu.system) / 1000 / TICKS;
  };
  // as the exporter runs: the slow collectors (lifetime memory health) once per --health.interval,
  // measured apart; the others every tick
  const collectors = enabledCollectors({});
  const ticker = new Ticker(nvml, collectors, { slowIntervalMs: 3_600_000 });
  const tickCpuMs = cpuPerTick(ticker);
  const slowReadCpuMs = cpuPerTick(new Ticker(nvml, collectors.filter((c) => c.slow), { slowIntervalMs: 0 }));
  const gpus = ticker.tick().gpus;
  nvml.shutdown();
  process.stdout.write(JSON.stringify({ tickCpuMs, slowReadCpuMs, gpus: gpus.length, migInstances: gpus.reduce((n, g) => n + g.mig.length, 0) }) + '\n');
  process.exit(0);
}

interface TickFigures {
  tickCpuMs: number;
  slowReadCpuMs: number;
  kubeletRefreshMs: number | undefined;
  gpus: number;
  migInstances: number;
}

function tickCpu(scenario: string): Promise<TickFigures> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...nodeFlags, ...process.execArgv, fileURLToPath(import.meta.url), '--tick-cpu', scenario], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    child.once('exit', (code) => (code === 0 ? resolve(JSON.parse(out) as TickFigures) : reject(new Error(`tick measurement for ${scenario} exited ${code}`))));
  });
}

// --- load --------------------------------------------------------------------------------
function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

const agent = new http.Agent({ keepAlive: true, maxSockets: CONCURRENCY });
/** What Prometheus sends on a scrape (it asks for gzip unless a job turns compression off). */
const PROMETHEUS_HEADERS = { 'accept-encoding': 'gzip' };
/** GET /metrics; resolves with the ms until the whole body came. `asPrometheus`: with Prometheus's headers (a gzip body). */
function get(port: number, asPrometheus = false): Promise<number> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const req = http.get({ host: '127.0.0.1', port, path: '/metrics', agent, ...(asPrometheus ? { headers: PROMETHEUS_HEADERS } : {}) }, (res) => {
      res.on('data', () => {});
      res.on('end', () => resolve(performance.now() - t0));
    });
    req.on('error', reject);
  });
}

/** Runs `total` requests alternating between the two servers, CONCURRENCY in flight. */
async function load(ports: [number, number], total: number): Promise<[number[], number[]]> {
  const lat: [number[], number[]] = [[], []];
  let issued = 0;
  async function lane(): Promise<void> {
    while (issued < total) {
      const which = issued++ % 2;
      lat[which]!.push(await get(ports[which]!));
    }
  }
  await Promise.all(Array.from({ length: CONCURRENCY }, lane));
  return [lat[0].sort((a, b) => a - b), lat[1].sort((a, b) => a - b)];
}

function startChild(args: string[], env: Record<string, string>, portFrom: (line: string) => number | undefined): Promise<{ child: ChildProcess; port: number }> {
  const child = spawn(process.execPath, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    let buf = '';
    child.stdout!.on('data', (d: Buffer) => {
      buf += d.toString();
      for (const line of buf.split('\n')) {
        const port = portFrom(line);
        if (port) resolve({ child, port });
      }
    });
    child.once('exit', (code) => reject(new Error(`child exited ${code}`)));
  });
}

function rssMB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m![1]) / 1024;
}

/**
 * CPU time a process (or, with tid, one of its threads) has run so far, ms: the run time the
 * scheduler accounts per thread (/proc/<pid>/task/<tid>/schedstat, in ns), summed over the
 * process's threads. /proc/<pid>/stat's utime and stime count in clock ticks of 10 ms, too coarse
 * for a few ms a second over a 20 s window; the exporter's threads live as long as it does.
 */
function cpuMs(pid: number, tid?: number): number {
  const tids = tid === undefined ? readdirSync(`/proc/${pid}/task`) : [String(tid)];
  let ns = 0;
  for (const t of tids) {
    try {
      ns += Number(readFileSync(`/proc/${pid}/task/${t}/schedstat`, 'utf8').split(' ')[0]);
    } catch {
      /* a thread that ended since the listing */
    }
  }
  return ns / 1e6;
}

interface NodeRun {
  scenario: string;
  gpus: number;
  migInstances: number;
  pods: number;
  exp: number[];
  bare: number[];
  bytes: number;
  gzipBytes: number;
  tickCpuMs: number;
  slowReadCpuMs: number;
  kubeletRefreshMs: number | undefined;
  idleCpuPerSecond: number;
  /** Of idleCpuPerSecond, the main thread's (HTTP, kubelet, timers, notable samples); the rest is the sampling worker and V8's and libuv's helpers. */
  idleMainCpuPerSecond: number;
  scrapedCpuPerSecond: number;
  coldScrapeMs: number[];
  cpuPerScrapeMs: number;
  rss: { before: number; after: number; afterSecondRound?: number };
}

async function runNode(scenario: string): Promise<NodeRun> {
  const file = scenarioFile(scenario);
  const node = simulatedNode(file);
  const tick = await tickCpu(file);
  const pods = await startSimulatedPods(node.statePath, { nodeName: 'bench-node' });
  const exporter = await startChild(
    [...nodeFlags, path.join(root, 'dist/src/main.js'), '--web.listen-address=127.0.0.1:0', '--log.level=info', ...pods.flags],
    { KGE_NVML_LIBRARY: node.libraryPath, KGE_SIM_STATE: node.statePath, NODE_NAME: 'bench-node' },
    (line) => (line.includes('serving /metrics') ? (JSON.parse(line) as { port: number }).port : undefined),
  );
  const pid = exporter.child.pid!;
  await new Promise((r) => setTimeout(r, 2500)); // first samples and the first kubelet refresh
  if (pods.resourceApi) {
    // the slice watch loads the Kubernetes client first: wait until every DRA claim is resolved
    for (let i = 0; i < 100; i++) {
      const text = await (await fetch(`http://127.0.0.1:${exporter.port}/metrics`)).text();
      if (text.includes('kube_gpu_exporter_dra_up 1') && text.includes('kube_gpu_exporter_dra_unresolved_devices 0')) break;
      await new Promise((r) => setTimeout(r, 200));
    }
  }
  await new Promise((r) => setTimeout(r, WARM_MS));
  const idleCpu0 = cpuMs(pid);
  const idleMainCpu0 = cpuMs(pid, pid);
  await new Promise((r) => setTimeout(r, IDLE_MS));
  const idleCpuPerSecond = (cpuMs(pid) - idleCpu0) / (IDLE_MS / 1000);
  const idleMainCpuPerSecond = (cpuMs(pid, pid) - idleMainCpu0) / (IDLE_MS / 1000);
  // scraped every 15 s, as Prometheus does (gzip): each scrape renders the sample it finds and compresses it
  const scrapedCpu0 = cpuMs(pid);
  for (let at = 0; at < SCRAPED_MS; at += SCRAPE_EVERY_MS) {
    await get(exporter.port, true);
    await new Promise((r) => setTimeout(r, SCRAPE_EVERY_MS));
  }
  const scrapedCpuPerSecond = (cpuMs(pid) - scrapedCpu0) / (SCRAPED_MS / 1000);
  // a scrape that is the first after a new sample (sampling every 1 s) pays its render
  const coldScrapeMs: number[] = [];
  for (let i = 0; i < COLD_SCRAPES; i++) {
    await new Promise((r) => setTimeout(r, 1050));
    coldScrapeMs.push(await get(exporter.port));
  }
  coldScrapeMs.sort((a, b) => a - b);

  const body = Buffer.from(await (await fetch(`http://127.0.0.1:${exporter.port}/metrics`)).text());
  const refresh = /^kube_gpu_exporter_kubelet_refresh_duration_seconds (\S+)$/m.exec(body.toString());
  const bodyFile = path.join(mkdtempSync(path.join(os.tmpdir(), 'kge-bench-')), 'metrics.txt');
  writeFileSync(bodyFile, body);
  const floorScript = `const b=require('fs').readFileSync(${JSON.stringify(bodyFile)});const s=require('http').createServer((q,r)=>{r.setHeader('Content-Type','text/plain; version=0.0.4; charset=utf-8');r.end(b)});s.listen(0,'127.0.0.1',()=>console.log('port '+s.address().port));`;
  const floor = await startChild(['-e', floorScript], {}, (line) => (/^port \d+$/.test(line) ? Number(line.slice(5)) : undefined));
  const ports: [number, number] = [exporter.port, floor.port];

  await load(ports, 1000); // warm-up
  const before = rssMB(pid);
  const cpu0 = cpuMs(pid);
  const t0 = performance.now();
  const [exp, bare] = await load(ports, SCRAPES * 2);
  const seconds = (performance.now() - t0) / 1000;
  const cpuPerScrapeMs = Math.max(0, cpuMs(pid) - cpu0 - idleCpuPerSecond * seconds) / exp.length;
  const after = rssMB(pid);
  let afterSecondRound: number | undefined;
  if (scenario === FLATNESS_SCENARIO) {
    await load(ports, SCRAPES * 2);
    afterSecondRound = rssMB(pid);
  }
  exporter.child.kill('SIGTERM');
  floor.child.kill('SIGTERM');
  await pods.stop();
  return {
    scenario, gpus: tick.gpus, migInstances: tick.migInstances, pods: pods.scenario.pods.length,
    exp, bare, bytes: body.length, gzipBytes: gzipSync(body).length,
    tickCpuMs: tick.tickCpuMs, slowReadCpuMs: tick.slowReadCpuMs, kubeletRefreshMs: refresh ? Number(refresh[1]) * 1000 : undefined, idleCpuPerSecond, idleMainCpuPerSecond, scrapedCpuPerSecond, coldScrapeMs, cpuPerScrapeMs,
    rss: { before, after, ...(afterSecondRound !== undefined ? { afterSecondRound } : {}) },
  };
}

const runs: NodeRun[] = [];
for (const s of SCENARIOS) runs.push(await runNode(s));
agent.destroy();

const ms = (xs: number[], p: number) => percentile(xs, p).toFixed(2);
const header = ['node', 'scrape p50 / p99 ms', 'floor p50 / p99 ms', 'p99 ratio', 'first scrape after a sample p50 / max ms', 'CPU ms / scrape', 'CPU ms / tick', 'idle CPU ms / s', 'CPU ms / s scraped every 15 s', 'bytes / scrape (gzip)', 'RSS MB before / after', 'kubelet refresh ms'];
const rows = runs.map((r) => [
  `${r.scenario}: ${r.gpus} GPU${r.gpus === 1 ? '' : 's'}${r.migInstances ? `, ${r.migInstances} MIG` : ''}, ${r.pods} pods`,
  `${ms(r.exp, 50)} / ${ms(r.exp, 99)}`,
  `${ms(r.bare, 50)} / ${ms(r.bare, 99)}`,
  (percentile(r.exp, 99) / percentile(r.bare, 99)).toFixed(2),
  `${ms(r.coldScrapeMs, 50)} / ${r.coldScrapeMs.at(-1)!.toFixed(2)}`,
  r.cpuPerScrapeMs.toFixed(3),
  r.tickCpuMs.toFixed(2),
  r.idleCpuPerSecond.toFixed(1),
  r.scrapedCpuPerSecond.toFixed(1),
  `${r.bytes.toLocaleString('en-US')} (${r.gzipBytes.toLocaleString('en-US')})`,
  `${r.rss.before.toFixed(1)} / ${r.rss.after.toFixed(1)}`,
  r.kubeletRefreshMs === undefined ? '-' : r.kubeletRefreshMs.toFixed(1),
]);
const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
const line = (cells: string[]) => '| ' + cells.map((c, i) => c.padEnd(widths[i]!)).join(' | ') + ' |';
const flat = runs.find((r) => r.rss.afterSecondRound !== undefined);
process.stdout.write(
  [
    '',
    `kube-gpu-exporter benchmark: ${SCRAPES.toLocaleString('en-US')} scrapes per server, ${CONCURRENCY} in flight, exporter node flags ${nodeFlags.join(' ') || '(none)'}`,
    '',
    line(header),
    line(widths.map((w) => '-'.repeat(w))),
    ...rows.map(line),
    '',
    `Idle CPU: after ${WARM_MS / 1000} s of running, over ${IDLE_MS / 1000} s, sampling every 1 s with NVML events on; of it the main thread (HTTP, kubelet, the samples whose GPUs or errors changed): ${runs.map((r) => `${r.scenario} ${r.idleMainCpuPerSecond.toFixed(1)}`).join(', ')} ms / s, the rest on the sampling worker and V8's and libuv's helper threads.`,
    `CPU ms / tick: every collector but the slow ones (lifetime ECC, retired pages, remapped rows), which run once per --health.interval: ${runs.map((r) => `${r.scenario} ${r.slowReadCpuMs.toFixed(2)} ms`).join(', ')} per read. Both include the simulated driver's own work.`,
    ...(flat ? [`${flat.scenario}: RSS ${flat.rss.before.toFixed(1)} MB before, ${flat.rss.after.toFixed(1)} MB after ${SCRAPES.toLocaleString('en-US')}, ${flat.rss.afterSecondRound!.toFixed(1)} MB after ${(2 * SCRAPES).toLocaleString('en-US')} scrapes`] : []),
    '',
  ].join('\n'),
);
