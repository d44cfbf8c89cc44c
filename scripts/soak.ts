/**
 * `npm run soak [-- --scrapes N] [-- --warmup-seconds S] [-- --tsx]`: does the exporter leak
 * under sustained load?
 *
 * Starts the exporter (compiled, dist/src/main.js, with the node flags it ships with; --tsx:
 * src/main.ts through tsx) on the simulated 8x H100 node with its pods on a fake kubelet and a
 * fake host tree. While it scrapes /metrics continuously (plain, gzip and OpenMetrics, 4 in
 * flight), the scenario file is rewritten underneath (moving values, a failing collector, a
 * lost GPU, Xid events, a slow call) and the kubelet's pods change (new names and UIDs each
 * time). After a warm-up (S seconds of that, default 20: the resident set of a fresh process
 * grows for a while before it levels off), N scrapes (default 10,000: the short form CI runs;
 * `--scrapes 100000` is the full soak) in eight parts. The exporter's resident set (VmRSS) and
 * open file descriptors are read after the warm-up and after each part, each in a quiet moment
 * (scraping and changes paused). Exits 1 when RSS grew more than 5 MB (the median of the last
 * three readings against the first three: one reading moves by a few MB as the V8 heaps of the
 * two threads grow and shrink), the descriptors grew, a scrape failed or the exporter did not
 * exit cleanly on SIGTERM.
 *
 * The exporter runs with MALLOC_ARENA_MAX=1 unless the environment sets it: the simulated
 * library re-reads a rewritten scenario (a 1.5 MB allocation) on whichever thread calls it next,
 * the sampling thread or a libuv thread waiting for NVML events, and each thread's malloc arena
 * then keeps its own copies, which reads as slow growth that no real driver causes.
 */
import { spawn } from 'node:child_process';
import { copyFileSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { NODE_FLAGS } from '../src/node-flags.js';
import { repoRoot, simulatedNode } from '../src/sim/harness.js';
import { parseKubeletScenario, simDevices, type KubeletScenario } from '../src/sim/kubelet-scenario.js';
import { startSimulatedPods } from '../src/sim/simulated-pods.js';
import { replaceScenarioFile } from '../src/sim/scenario-file.js';

const RSS_GROWTH_LIMIT_BYTES = 5 * 1024 * 1024;
const CONCURRENCY = 4;
const SCENARIO_REWRITE_MS = 500;
const POD_CHANGE_MS = 1000;
/** The measured scrapes go in this many parts, with a reading after each. */
const PARTS = 8;

interface Options {
  scrapes: number;
  warmupSeconds: number;
  tsx: boolean;
}

function parseArgs(argv: string[]): Options {
  const opts: Options = { scrapes: 10_000, warmupSeconds: 20, tsx: false };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const [name, inline] = arg.includes('=') ? [arg.slice(0, arg.indexOf('=')), arg.slice(arg.indexOf('=') + 1)] : [arg, undefined];
    const value = (min: number): number => {
      const raw = inline ?? argv[++i];
      const n = Number(raw);
      if (!Number.isInteger(n) || n < min) throw new Error(`${name} needs a whole number of at least ${min}, got ${JSON.stringify(raw)}`);
      return n;
    };
    if (name === '--scrapes') opts.scrapes = value(PARTS);
    else if (name === '--warmup-seconds') opts.warmupSeconds = value(0);
    else if (name === '--tsx' && inline === undefined) opts.tsx = true;
    else throw new Error(`unknown argument ${JSON.stringify(arg)} (use --scrapes N, --warmup-seconds S, --tsx)`);
  }
  return opts;
}

function rssBytes(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!m) throw new Error(`no VmRSS in /proc/${pid}/status`);
  return Number(m[1]) * 1024;
}

function openFds(pid: number): number {
  return readdirSync(`/proc/${pid}/fd`).length;
}

/** The exporter process in a quiet moment; heap and external memory are its main thread's, from its own /metrics. */
interface Reading {
  rss: number;
  fds: number;
  heapTotal: number;
  heapUsed: number;
  external: number;
}

const mb = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(1)} MB`;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Additions to the scenario, cycled through by the rewrites; each one a state the exporter must cope with. */
function scenarioVariant(n: number): string {
  const gpu = n % 8;
  switch (n % 6) {
    case 0:
      return '';
    case 1:
      return `gpu.${gpu}.temp_gpu ${40 + (n % 40)}\ngpu.${gpu}.mem_used ${n % 70}GiB`;
    case 2:
      return `fault nvmlDeviceGetClockInfo ${gpu} 999`;
    case 3:
      return `fault * ${gpu} 15`; // a GPU lost, back at the next rewrite
    case 4:
      return `event ${gpu} xid ${[13, 31, 43, 45, 63][n % 5]} ${2000 + n}`; // a new Xid each time (a distinct time)
    default:
      return `latency nvmlDeviceGetPowerUsage ${gpu} 300`; // a slow call: a tick or two skipped
  }
}

/** The shipped pods under new names (and so new UIDs and container ids): generation `gen` of the node's workload. */
function podGeneration(podsDoc: { pods: { name: string }[] }, simText: string, gen: number): KubeletScenario {
  const doc = { ...podsDoc, pods: podsDoc.pods.map((p) => ({ ...p, name: `${p.name}-g${gen}` })) };
  return parseKubeletScenario(JSON.stringify(doc), 'soak pods', simDevices(simText));
}

const agent = new http.Agent({ keepAlive: true, maxSockets: CONCURRENCY });
const REQUESTS: Record<string, string>[] = [
  {},
  { 'Accept-Encoding': 'gzip' },
  { Accept: 'application/openmetrics-text; version=1.0.0' },
];

function scrapeOnce(port: number, headers: Record<string, string>): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path: '/metrics', agent, headers }, (res) => {
      let bytes = 0;
      res.on('data', (d: Buffer) => (bytes += d.length));
      res.on('end', () => (res.statusCode === 200 && bytes > 0 ? resolve(bytes) : reject(new Error(`/metrics answered ${res.statusCode} with ${bytes} bytes`))));
      res.on('error', reject);
    });
    req.on('error', reject);
  });
}

interface Counter {
  done: number;
  bytes: number;
  /** Time spent scraping. */
  ms: number;
}

/** `total` scrapes, CONCURRENCY in flight; every 10th asks for gzip and every 25th for OpenMetrics. */
async function scrapeMany(port: number, total: number, counter: Counter): Promise<void> {
  const t0 = performance.now();
  let issued = 0;
  const lane = async (): Promise<void> => {
    while (issued < total) {
      const n = issued++;
      const headers = REQUESTS[n % 25 === 0 ? 2 : n % 10 === 0 ? 1 : 0]!;
      const bytes = await scrapeOnce(port, headers);
      counter.bytes += bytes;
      counter.done++;
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, lane));
  counter.ms += performance.now() - t0;
}

async function main(): Promise<number> {
  const opts = parseArgs(process.argv.slice(2));
  const root = repoRoot();
  const node = simulatedNode('h100x8');
  const dir = mkdtempSync(path.join(os.tmpdir(), 'kge-soak-'));
  const statePath = path.join(dir, 'h100x8.sim');
  copyFileSync(node.statePath, statePath);
  const shippedSim = readFileSync(node.statePath, 'utf8');
  const podsDoc = JSON.parse(readFileSync(node.statePath.replace(/\.sim$/, '.pods.json'), 'utf8')) as { pods: { name: string }[] };
  const pods = await startSimulatedPods(node.statePath);

  const entry = opts.tsx ? ['--import', 'tsx', path.join(root, 'src/main.ts')] : [path.join(root, 'dist/src/main.js')];
  const child = spawn(
    process.execPath,
    [...NODE_FLAGS, ...entry, '--web.listen-address=127.0.0.1:0', '--sample-interval=200ms', '--kubelet.refresh-interval=500ms', ...pods.flags],
    { cwd: root, env: { MALLOC_ARENA_MAX: '1', ...process.env, KGE_NVML_LIBRARY: node.libraryPath, KGE_SIM_STATE: statePath, NODE_NAME: 'soak-node' }, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const logLevels = new Map<number, number>();
  const warnings = new Map<string, number>();
  let port = 0;
  let pending = '';
  const onLine = (line: string): void => {
    if (!line.startsWith('{')) return;
    const rec = JSON.parse(line) as { level: number; msg: string; port?: number };
    logLevels.set(rec.level, (logLevels.get(rec.level) ?? 0) + 1);
    if (rec.level >= 40) warnings.set(rec.msg, (warnings.get(rec.msg) ?? 0) + 1);
    if (rec.msg === 'serving /metrics' && rec.port) port = rec.port;
  };
  child.stdout.on('data', (d: Buffer) => {
    pending += d.toString();
    const lines = pending.split('\n');
    pending = lines.pop()!;
    for (const l of lines) onLine(l);
  });
  child.stderr.on('data', () => {}); // the simulated library's notes on scenario changes
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));

  let quiet = false;
  let rewrites = 0;
  let podChanges = 0;
  const churn = [
    setInterval(() => {
      if (quiet) return;
      rewrites++;
      const extra = scenarioVariant(rewrites);
      replaceScenarioFile(statePath, extra ? `${shippedSim}\n${extra}\n` : shippedSim);
    }, SCENARIO_REWRITE_MS),
    setInterval(() => {
      if (quiet) return;
      podChanges++;
      pods.update(podGeneration(podsDoc, shippedSim, podChanges));
    }, POD_CHANGE_MS),
  ];

  /** RSS and descriptors with nothing going on: scraping, rewrites and pod changes paused; the lowest of a few readings. */
  const measure = async (pid: number): Promise<Reading> => {
    quiet = true;
    // the scrapers' idle keep-alive connections (and the last reading's) are sockets of the
    // exporter too: close them, so that the count holds only what the exporter keeps open itself
    agent.destroy();
    await sleep(1000); // the exporter picks up the last change and renders it (and sees the sockets close)
    let rss = Infinity;
    let fds = Infinity;
    for (let i = 0; i < 5; i++) {
      rss = Math.min(rss, rssBytes(pid));
      fds = Math.min(fds, openFds(pid));
      await sleep(100);
    }
    const own = await (await fetch(`http://127.0.0.1:${port}/metrics`, { headers: { Connection: 'close' } })).text();
    const value = (name: string) => Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(own)?.[1] ?? NaN);
    quiet = false;
    return { rss, fds, heapTotal: value('nodejs_heap_size_total_bytes'), heapUsed: value('nodejs_heap_size_used_bytes'), external: value('nodejs_external_memory_bytes') };
  };

  const counter: Counter = { done: 0, bytes: 0, ms: 0 };
  let failed: string[] = [];
  try {
    const started = Date.now();
    while (!port) {
      if (child.exitCode !== null) throw new Error(`the exporter exited ${child.exitCode} before serving`);
      if (Date.now() - started > 30_000) throw new Error('the exporter did not start serving within 30 s');
      await sleep(50);
    }
    const pid = child.pid!;
    await sleep(2000); // first samples and the first kubelet refresh
    const atStart = { rss: rssBytes(pid), fds: openFds(pid) };
    const warmup: Counter = { done: 0, bytes: 0, ms: 0 };
    while (warmup.ms < opts.warmupSeconds * 1000) await scrapeMany(port, 200, warmup);
    const readings = [await measure(pid)];
    for (let part = 1; part <= PARTS; part++) {
      await scrapeMany(port, Math.round((opts.scrapes * part) / PARTS) - Math.round((opts.scrapes * (part - 1)) / PARTS), counter);
      readings.push(await measure(pid));
    }
    const seconds = counter.ms / 1000;
    const plainBytes = await scrapeOnce(port, REQUESTS[0]!);

    const first = readings.slice(0, 3);
    const last = readings.slice(-3);
    const rssGrowth = median(last.map((r) => r.rss)) - median(first.map((r) => r.rss));
    const fdsBefore = median(first.map((r) => r.fds));
    const fdsAfter = median(last.map((r) => r.fds));
    const rows: [string, string][] = [
      ['exporter', `${opts.tsx ? 'src/main.ts (tsx)' : 'dist/src/main.js'} with ${NODE_FLAGS.join(' ')}, MALLOC_ARENA_MAX=${process.env.MALLOC_ARENA_MAX ?? 1}`],
      ['warm-up', `${opts.warmupSeconds} s, ${warmup.done.toLocaleString('en')} scrapes`],
      ['scrapes', `${counter.done.toLocaleString('en')} in ${seconds.toFixed(1)} s (${Math.round(counter.done / seconds)}/s, ${mb(counter.bytes)} read)`],
      ['bytes per plain scrape', plainBytes.toLocaleString('en')],
      ['churn', `${rewrites} scenario rewrites, ${podChanges} pod changes`],
      ['RSS at start, after warm-up, after each part', [atStart, ...readings].map((r) => mb(r.rss)).join(' / ')],
      ['RSS growth (median of last 3 - first 3)', `${mb(rssGrowth)} (limit ${mb(RSS_GROWTH_LIMIT_BYTES)})`],
      ['main-thread heap used / total, external', readings.map((r) => `${mb(r.heapUsed)}/${mb(r.heapTotal)}, ${mb(r.external)}`).join('; ')],
      ['open fds at start, after warm-up, after each part', [atStart, ...readings].map((r) => r.fds).join(' / ')],
      ['log lines by level', [...logLevels].sort((a, b) => a[0] - b[0]).map(([l, n]) => `${l}: ${n}`).join(', ')],
    ];
    for (const [msg, n] of [...warnings].sort((a, b) => b[1] - a[1])) rows.push([`  ${n}x`, msg]);
    const width = Math.max(...rows.map((r) => r[0].length));
    for (const [k, v] of rows) process.stdout.write(`${k.padEnd(width)}  ${v}\n`);
    if (rssGrowth > RSS_GROWTH_LIMIT_BYTES) failed.push(`RSS grew ${mb(rssGrowth)} after the warm-up (limit ${mb(RSS_GROWTH_LIMIT_BYTES)})`);
    if (fdsAfter > fdsBefore) failed.push(`open file descriptors grew from ${fdsBefore} to ${fdsAfter}`);
  } catch (err) {
    failed.push(`after ${counter.done} scrapes: ${(err as Error).message}`);
  } finally {
    for (const t of churn) clearInterval(t);
    agent.destroy();
    if (child.exitCode === null) child.kill('SIGTERM');
    const code = await exited;
    if (code !== 0) failed.push(`the exporter exited ${code} on SIGTERM`);
    await pods.stop();
    rmSync(dir, { recursive: true, force: true });
  }
  failed = [...new Set(failed)];
  for (const f of failed) process.stderr.write(`soak: FAIL: ${f}\n`);
  if (!failed.length) process.stdout.write('soak: OK\n');
  return failed.length ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`soak: ${(err as Error).message}\n`);
    process.exit(2);
  },
);
