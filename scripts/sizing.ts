/**
 * `npx tsx scripts/sizing.ts [--prometheus[=SECONDS]] [--jobs=N] [--nodes=N] [--scenarios=a,b] [--dump=DIR]`:
 * series budget and sizing figures (not a pass/fail test), the table of README's "Series budget
 * and sizing".
 *
 * For each simulated node (h100x8: 8 GPUs, GPU 7 split into 4 MIG instances, 9 pods;
 * h100x8-mig7: 8 GPUs x 7 MIG instances, 1,000 pods of which 56 hold one, no GPM simulated;
 * h100x8-mig7-gpm: the same with GPM per GPU and per instance, as a real H100 has it, generated
 * here) and each series budget (default flags; dcgm-exporter's default counters through
 * --dcgm.counters; a lean --metrics.include/--metrics.exclude set) it starts the exporter as the
 * demo does (the simulated NVML library and the scenario's pods on a fake kubelet and host tree,
 * then the CLI, src/main.ts through tsx, with the node flags it ships with), waits until
 * kube_gpu_exporter_kubelet_up is 1 and two samples are in (and one more second), then scrapes
 * /metrics (text format 0.0.4) plain and with Accept-Encoding: gzip (the bytes as sent), and
 * counts the series: all of them, the exporter's own (kube_gpu_exporter_*, process_*, nodejs_*),
 * per GPU (the other series / GPUs) and per MIG instance (series with a MIG instance label /
 * instances). `--dump=DIR` keeps each scrape.
 *
 * Prometheus memory for N nodes (default 1,000) is (series + 5 per target) x N x bytes per head
 * series: MEASURED_BYTES_PER_SERIES below (its marginal RSS), unless `--prometheus` measures it
 * again. That starts three fresh Prometheus servers together (the installed binary,
 * $KGE_PROMETHEUS or /usr/bin/prometheus, each with an empty TSDB): one scraping nothing, one
 * scraping the MIG node's exporter (default flags) every second under JOBS/4 job names, one under
 * JOBS (default 16) job names, so that each holds that many copies of the node's series. None
 * scrapes itself: their /metrics are read directly every 10 s for SECONDS (default 600). The
 * figure is the difference in resident memory (process_resident_memory_bytes, the highest reading
 * of the second half of the run), Go heap in use (go_memstats_heap_inuse_bytes) and heap live at
 * the last GC (go_memstats_next_gc_bytes / 2 at GOGC=100; means of the second half) between the
 * two loaded servers over the difference in prometheus_tsdb_head_series: the cost of one more
 * series, per-target costs included (targets grow with series, as in a fleet), the fixed cost of
 * a Prometheus that scrapes anything left out. Also printed: per series above the idle server.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { createServer } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { NODE_FLAGS } from '../src/node-flags.js';
import { repoRoot, simulatedNode } from '../src/sim/harness.js';
import { startSimulatedPods } from '../src/sim/simulated-pods.js';

/**
 * Prometheus memory per head series as `--prometheus` (600 s, 16 jobs) last measured it: Prometheus
 * 2.42.0 (Debian build) on a 2-core development machine, 4,156 and 16,624 head series. Set to
 * undefined to fall back on the 3 kB rule of thumb.
 */
const MEASURED_BYTES_PER_SERIES: PerSeries | undefined = {
  marginal: { rss: 9358, heapInuse: 7106, liveHeap: 3884 },
  overIdle: { rss: 9803, heapInuse: 7560, liveHeap: 4501 },
  headSeries: [4156, 16624],
  seconds: 600,
  prometheus: '2.42.0+ds',
};

const root = repoRoot();
/** Series Prometheus adds per target: up, scrape_duration_seconds, scrape_samples_scraped, scrape_samples_post_metric_relabeling, scrape_series_added. */
const TARGET_SERIES = 5;
/** Robust Perception's rule of thumb for Prometheus 2.20 and later: about 3 kB per head series. */
const RULE_OF_THUMB = 3000;
const NODE_NAME = 'gpu-node-0001';

// --- series budgets ---------------------------------------------------------------------

/**
 * dcgm-exporter's default counters (etc/default-counters.csv of NVIDIA/dcgm-exporter, 3.3/4.x:
 * 25 fields exported, the driver version and MIG mode as labels; the commented-out fields left
 * out). Written here field by field; the exporter lacks DCGM_FI_DEV_VGPU_LICENSE_STATUS (logged).
 */
export const DCGM_DEFAULT_COUNTERS = [
  ['DCGM_FI_DEV_SM_CLOCK', 'gauge'],
  ['DCGM_FI_DEV_MEM_CLOCK', 'gauge'],
  ['DCGM_FI_DEV_MEMORY_TEMP', 'gauge'],
  ['DCGM_FI_DEV_GPU_TEMP', 'gauge'],
  ['DCGM_FI_DEV_POWER_USAGE', 'gauge'],
  ['DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION', 'counter'],
  ['DCGM_FI_DEV_PCIE_REPLAY_COUNTER', 'counter'],
  ['DCGM_FI_DEV_GPU_UTIL', 'gauge'],
  ['DCGM_FI_DEV_MEM_COPY_UTIL', 'gauge'],
  ['DCGM_FI_DEV_ENC_UTIL', 'gauge'],
  ['DCGM_FI_DEV_DEC_UTIL', 'gauge'],
  ['DCGM_FI_DEV_XID_ERRORS', 'gauge'],
  ['DCGM_FI_DEV_FB_FREE', 'gauge'],
  ['DCGM_FI_DEV_FB_USED', 'gauge'],
  ['DCGM_FI_DEV_FB_RESERVED', 'gauge'],
  ['DCGM_FI_DEV_NVLINK_BANDWIDTH_TOTAL', 'counter'],
  ['DCGM_FI_DEV_VGPU_LICENSE_STATUS', 'gauge'],
  ['DCGM_FI_DEV_UNCORRECTABLE_REMAPPED_ROWS', 'counter'],
  ['DCGM_FI_DEV_CORRECTABLE_REMAPPED_ROWS', 'counter'],
  ['DCGM_FI_DEV_ROW_REMAP_FAILURE', 'gauge'],
  ['DCGM_FI_PROF_GR_ENGINE_ACTIVE', 'gauge'],
  ['DCGM_FI_PROF_PIPE_TENSOR_ACTIVE', 'gauge'],
  ['DCGM_FI_PROF_DRAM_ACTIVE', 'gauge'],
  ['DCGM_FI_PROF_PCIE_TX_BYTES', 'gauge'],
  ['DCGM_FI_PROF_PCIE_RX_BYTES', 'gauge'],
  ['DCGM_FI_DRIVER_VERSION', 'label'],
  ['DCGM_FI_DEV_MIG_MODE', 'label'],
  ['DCGM_FI_DEV_MIG_MAX_SLICES', 'label'],
] as const;

/**
 * The lean set: utilization (busy-seconds counter, per GPU and MIG instance, and the driver's
 * gauge), memory used and total, temperature, power, Xid (last Xid, events and per-code
 * counters), allocation, whether each GPU answers, its identity (gpu_info, which the dashboards
 * join for the model) and MIG mode (GpusFreeWhilePodsWait). The shipped recording rules and every
 * shipped alert keep their inputs except the memory health ones (GpuDoubleBitEccErrors,
 * GpuRowRemapFailure, GpuMemoryRepairPending) and the slowdown ones (GpuHardwareSlowdown,
 * GpuThermalSlowdown).
 */
export const LEAN_FAMILIES = [
  'gpu_busy_seconds_total',
  'DCGM_FI_DEV_GPU_UTIL',
  'DCGM_FI_DEV_FB_USED',
  'DCGM_FI_DEV_FB_TOTAL',
  'DCGM_FI_DEV_GPU_TEMP',
  'DCGM_FI_DEV_POWER_USAGE',
  'DCGM_FI_DEV_XID_ERRORS',
  'gpu_xid_events_total',
  'gpu_xid_errors_total',
  'gpu_allocated_ratio',
  'gpu_answering',
  'gpu_info',
  'DCGM_FI_DEV_MIG_MODE',
];

/**
 * Left out of the lean set as well: the exporter's own families stay unless excluded by name; the
 * Node.js runtime's (about 50-75 series: heap spaces, GC histograms per GC kind seen) and the
 * per-collector durations are not read by the shipped rules or dashboards.
 */
export const LEAN_EXCLUDE = ['nodejs_.*', 'kube_gpu_exporter_collector_duration_seconds'];

interface Budget {
  name: string;
  flags: string[];
}

function budgets(countersFile: string): Budget[] {
  return [
    { name: 'default', flags: [] },
    { name: 'dcgm-exporter defaults', flags: [`--dcgm.counters=${countersFile}`] },
    { name: 'lean', flags: [`--metrics.include=${LEAN_FAMILIES.join('|')}`, `--metrics.exclude=${LEAN_EXCLUDE.join('|')}`] },
  ];
}

// --- the exporter on a simulated node ---------------------------------------------------

interface Exporter {
  url: string;
  child: ChildProcess;
  logs: string[];
  stop(): Promise<void>;
}

async function startExporter(args: string[], env: Record<string, string>): Promise<Exporter> {
  const child = spawn(process.execPath, [...NODE_FLAGS, '--import', 'tsx', path.join(root, 'src/main.ts'), '--web.listen-address=127.0.0.1:0', '--log.level=info', ...args], {
    cwd: root,
    env: { ...process.env, NODE_NAME, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const logs: string[] = [];
  let buf = '';
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`exporter did not start:\n${logs.join('\n')}`)), 60_000);
    const onData = (d: Buffer): void => {
      buf += d.toString();
      let i;
      while ((i = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        logs.push(line);
        if (line.includes('serving /metrics')) {
          clearTimeout(timer);
          resolve((JSON.parse(line) as { port: number }).port);
        }
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`exporter exited ${code}:\n${logs.join('\n')}`));
    });
  });
  return {
    url: `http://127.0.0.1:${port}`,
    child,
    logs,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      await once(child, 'exit');
    },
  };
}

/** GET /metrics on a connection of its own: the bytes as sent (compressed when gzip is asked for). */
function get(url: string, headers: Record<string, string> = {}): Promise<{ body: Buffer; encoding: string | undefined }> {
  return new Promise((resolve, reject) => {
    const req = http.get(`${url}/metrics`, { headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ body: Buffer.concat(chunks), encoding: res.headers['content-encoding'] }));
      res.on('error', reject);
    });
    req.on('error', reject);
  });
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Waits until the kubelet has answered and two samples have been taken. */
async function ready(url: string): Promise<void> {
  const stamps = new Set<string>();
  const end = Date.now() + 90_000;
  while (Date.now() < end) {
    const text = (await get(url)).body.toString('utf8');
    const stamp = /^kube_gpu_exporter_last_sample_timestamp_seconds(?:\{[^}]*\})? (\S+)$/m.exec(text)?.[1];
    if (stamp) stamps.add(stamp);
    if (/^kube_gpu_exporter_kubelet_up(?:\{[^}]*\})? 1$/m.test(text) && stamps.size >= 2) return;
    await sleep(250);
  }
  throw new Error('timed out waiting for kubelet_up 1 and two samples');
}

const OWN = /^(?:kube_gpu_exporter_|process_|nodejs_)/;
const MIG_LABEL = /[{,](?:GPU_I_ID|gpu_instance_id)="[^"]+"/;

interface Measurement {
  node: string;
  budget: string;
  flags: string[];
  gpus: number;
  migInstances: number;
  pods: number;
  series: number;
  own: number;
  migSeries: number;
  families: number;
  bytes: number;
  gzipBytes: number;
}

function countSeries(text: string): { series: number; own: number; migSeries: number; families: number } {
  let series = 0;
  let own = 0;
  let migSeries = 0;
  const families = new Set<string>();
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    series++;
    const name = line.slice(0, line.search(/[{ ]/));
    families.add(name);
    if (OWN.test(name)) own++;
    else if (MIG_LABEL.test(line)) migSeries++;
  }
  return { series, own, migSeries, families: families.size };
}

/**
 * The MIG node with GPM as a real H100 has it: h100x8-mig7 simulates none (no per-instance
 * utilization or profiling series), so this variant adds GPM activity per GPU and per MIG
 * instance; written to a temporary directory with the node's pods, its path returned.
 */
function migNodeWithGpm(dir: string): string {
  const base = path.join(root, 'scenarios', 'h100x8-mig7');
  const lines = ['', '# added by scripts/sizing.ts: GPM, as on a real H100', 'gpu.*.gpm_supported 1'];
  let seed = 3000;
  for (const key of ['pcie_tx_mibps', 'pcie_rx_mibps', 'nvlink_tx_mibps', 'nvlink_rx_mibps']) lines.push(`gpu.*.gpm_${key} walk(${seed++},10,2000,100,1000)`);
  const activity = ['gr_active', 'sm_active', 'sm_occupancy', 'tensor_active', 'dram_active', 'fp64_active', 'fp32_active', 'fp16_active'];
  for (let gpu = 0; gpu < 8; gpu++) {
    for (let slot = 0; slot < 7; slot++) for (const key of activity) lines.push(`gpu.${gpu}.mig.${slot}.gpm_${key} walk(${seed++},0,90,5,1000)`);
  }
  const file = path.join(dir, 'h100x8-mig7-gpm.sim');
  writeFileSync(file, readFileSync(`${base}.sim`, 'utf8') + lines.join('\n') + '\n');
  copyFileSync(`${base}.pods.json`, path.join(dir, 'h100x8-mig7-gpm.pods.json'));
  return file;
}

async function measureNode(scenario: string, file: string, list: Budget[], dumpDir: string | undefined): Promise<Measurement[]> {
  const node = simulatedNode(file);
  const pods = await startSimulatedPods(node.statePath, { nodeName: NODE_NAME });
  const out: Measurement[] = [];
  try {
    for (const b of list) {
      const exporter = await startExporter([...pods.flags, ...b.flags], { KGE_NVML_LIBRARY: node.libraryPath, KGE_SIM_STATE: node.statePath });
      try {
        await ready(exporter.url);
        await sleep(1500); // one more sample, so every collector and the process attribution have run
        const plain = (await get(exporter.url)).body;
        const gz = await get(exporter.url, { 'Accept-Encoding': 'gzip' });
        if (gz.encoding !== 'gzip') throw new Error('the exporter did not answer gzip');
        const text = plain.toString('utf8');
        if (dumpDir) writeFileSync(path.join(dumpDir, `${scenario}.${b.name.replace(/\W+/g, '-')}.prom`), text);
        // GPUs and MIG instances as the first budget (default flags: gpu_info, gpu_mig_instance_info) shows them
        const gpus = out[0]?.gpus ?? new Set([...text.matchAll(/^gpu_info\{[^}]*\bUUID="([^"]+)"/gm)].map((m) => m[1])).size;
        const migInstances = out[0]?.migInstances ?? new Set([...text.matchAll(/^gpu_mig_instance_info\{([^}]*)\}/gm)].map((m) => m[1])).size;
        out.push({
          node: scenario,
          budget: b.name,
          flags: b.flags,
          gpus,
          migInstances,
          pods: pods.scenario.pods.length,
          ...countSeries(text),
          bytes: plain.length,
          gzipBytes: gz.body.length,
        });
      } finally {
        await exporter.stop();
      }
    }
  } finally {
    await pods.stop();
  }
  return out;
}

// --- Prometheus memory per head series --------------------------------------------------

const PROMETHEUS_BIN = process.env.KGE_PROMETHEUS ?? '/usr/bin/prometheus';

async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as { port: number };
  server.close();
  await once(server, 'close');
  return port;
}

interface Prometheus {
  url: string;
  stop(): Promise<void>;
}

async function startPrometheus(config: string): Promise<Prometheus> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'kge-sizing-prom-'));
  writeFileSync(path.join(dir, 'prometheus.yml'), config);
  const port = await freePort();
  const child = spawn(PROMETHEUS_BIN, [`--config.file=${path.join(dir, 'prometheus.yml')}`, `--storage.tsdb.path=${path.join(dir, 'data')}`, `--web.listen-address=127.0.0.1:${port}`, '--log.level=warn'], {
    cwd: dir,
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  const url = `http://127.0.0.1:${port}`;
  const end = Date.now() + 30_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`prometheus exited ${child.exitCode}`);
    if (await fetch(`${url}/-/ready`).then((r) => r.ok, () => false)) break;
    if (Date.now() > end) throw new Error('prometheus did not become ready');
    await sleep(200);
  }
  return {
    url,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        await once(child, 'exit');
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

interface PromReading {
  headSeries: number;
  rss: number;
  heapInuse: number;
  /** The heap marked live at the last garbage collection: go_memstats_next_gc_bytes / (1 + GOGC/100). */
  liveHeap: number;
  version: string;
}

/** Prometheus 2.x runs with Go's GOGC=100 unless the environment says otherwise (3.x sets 75 itself). */
const GOGC = Number(process.env.GOGC ?? 100);

async function readProm(url: string): Promise<PromReading> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const value = (name: string): number => Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1] ?? NaN);
  return {
    headSeries: value('prometheus_tsdb_head_series'),
    rss: value('process_resident_memory_bytes'),
    heapInuse: value('go_memstats_heap_inuse_bytes'),
    liveHeap: value('go_memstats_next_gc_bytes') / (1 + GOGC / 100),
    version: /^prometheus_build_info\{[^}]*\bversion="([^"]+)"/m.exec(text)?.[1] ?? '?',
  };
}

/** Memory per head series by one way of counting. */
export interface Cost {
  /** Resident set: the highest reading of the second half of the run. */
  rss: number;
  /** Go heap in use: mean of the second half (it saws between the live heap and twice that). */
  heapInuse: number;
  /** Heap live at the last GC: mean of the second half. */
  liveHeap: number;
}

export interface PerSeries {
  /** Per added series: (the larger Prometheus - the smaller) / (its head series - the smaller's). */
  marginal: Cost;
  /** Per series of the larger Prometheus above the idle one. */
  overIdle: Cost;
  headSeries: [number, number];
  seconds: number;
  prometheus: string;
}

async function measurePrometheus(seconds: number, jobs: number): Promise<PerSeries> {
  const node = simulatedNode('h100x8-mig7');
  const pods = await startSimulatedPods(node.statePath, { nodeName: NODE_NAME });
  const exporter = await startExporter(pods.flags, { KGE_NVML_LIBRARY: node.libraryPath, KGE_SIM_STATE: node.statePath });
  const target = exporter.url.replace('http://', '');
  const config = (n: number): string =>
    `global: {evaluation_interval: 1m}\nscrape_configs:${n ? '' : ' []'}\n` +
    Array.from({ length: n }, (_, i) => `  - job_name: sizing-${i}\n    scrape_interval: 1s\n    scrape_timeout: 1s\n    static_configs: [{targets: ["${target}"]}]\n`).join('');
  const servers: Prometheus[] = [];
  try {
    await ready(exporter.url);
    // idle, a quarter of the jobs, all of them: the same binary, fresh TSDBs, started together
    for (const n of [0, Math.max(1, Math.round(jobs / 4)), jobs]) servers.push(await startPrometheus(config(n)));
    const readings: PromReading[][] = [];
    const t0 = Date.now();
    const mib = (n: number): string => (n / 2 ** 20).toFixed(1);
    while (Date.now() - t0 < seconds * 1000) {
      await sleep(10_000);
      const r = await Promise.all(servers.map((p) => readProm(p.url)));
      readings.push(r);
      process.stderr.write(
        `  ${String(Math.round((Date.now() - t0) / 1000)).padStart(4)} s: head series ${r.map((x) => x.headSeries).join(' / ')}; MiB RSS ${r.map((x) => mib(x.rss)).join(' / ')}; heap in use ${r.map((x) => mib(x.heapInuse)).join(' / ')}; live at last GC ${r.map((x) => mib(x.liveHeap)).join(' / ')}\n`,
      );
    }
    const late = readings.slice(Math.floor(readings.length / 2));
    const mean = (f: (r: PromReading[]) => number): number => late.reduce((s, r) => s + f(r), 0) / late.length;
    const cost = (hi: number, lo: number): Cost => {
      const series = mean((r) => r[hi]!.headSeries - r[lo]!.headSeries);
      return {
        rss: Math.round(Math.max(...late.map((r) => r[hi]!.rss - r[lo]!.rss)) / series),
        heapInuse: Math.round(mean((r) => r[hi]!.heapInuse - r[lo]!.heapInuse) / series),
        liveHeap: Math.round(mean((r) => r[hi]!.liveHeap - r[lo]!.liveHeap) / series),
      };
    };
    return {
      marginal: cost(2, 1),
      overIdle: cost(2, 0),
      headSeries: [Math.round(mean((r) => r[1]!.headSeries)), Math.round(mean((r) => r[2]!.headSeries))],
      seconds,
      prometheus: readings[0]![0]!.version,
    };
  } finally {
    for (const p of servers) await p.stop();
    await exporter.stop();
    await pods.stop();
  }
}

// --- the table --------------------------------------------------------------------------

function parseArgs(argv: string[]): { prometheusSeconds: number | undefined; nodes: number; jobs: number; scenarios: string[]; dump: string | undefined } {
  const opts = { prometheusSeconds: undefined as number | undefined, nodes: 1000, jobs: 16, scenarios: ['h100x8', 'h100x8-mig7', 'h100x8-mig7-gpm'], dump: undefined as string | undefined };
  for (const arg of argv) {
    const [name, value] = arg.includes('=') ? [arg.slice(0, arg.indexOf('=')), arg.slice(arg.indexOf('=') + 1)] : [arg, undefined];
    if (name === '--prometheus') opts.prometheusSeconds = value === undefined ? 600 : Number(value);
    else if (name === '--nodes') opts.nodes = Number(value);
    else if (name === '--jobs') opts.jobs = Number(value);
    else if (name === '--scenarios') opts.scenarios = (value ?? '').split(',').filter(Boolean);
    else if (name === '--dump' && value) opts.dump = path.resolve(value);
    else throw new Error(`unknown argument ${arg} (--prometheus[=SECONDS], --jobs=N, --nodes=N, --scenarios=a,b, --dump=DIR)`);
  }
  return opts;
}

const fmt = (n: number): string => n.toLocaleString('en-US', { maximumFractionDigits: 0 });
const fmt1 = (n: number): string => n.toLocaleString('en-US', { minimumFractionDigits: 1, maximumFractionDigits: 1 });

const opts = parseArgs(process.argv.slice(2));
const countersDir = mkdtempSync(path.join(os.tmpdir(), 'kge-sizing-'));
const countersFile = path.join(countersDir, 'default-counters.csv');
writeFileSync(countersFile, `# dcgm-exporter's default counters (etc/default-counters.csv)\n${DCGM_DEFAULT_COUNTERS.map(([f, t]) => `${f}, ${t}`).join('\n')}\n`);

try {
  let perSeries: PerSeries | undefined = MEASURED_BYTES_PER_SERIES;
  if (opts.prometheusSeconds !== undefined) {
    process.stderr.write(`measuring Prometheus memory per head series (${opts.prometheusSeconds} s, ${opts.jobs} jobs scraping h100x8-mig7 every 1 s)\n`);
    perSeries = await measurePrometheus(opts.prometheusSeconds, opts.jobs);
  }
  const rows: Measurement[] = [];
  for (const s of opts.scenarios) rows.push(...(await measureNode(s, s === 'h100x8-mig7-gpm' ? migNodeWithGpm(countersDir) : s, budgets(countersFile), opts.dump)));

  const bytesPerSeries = perSeries?.marginal.rss ?? RULE_OF_THUMB;
  const costText = (c: Cost): string => `${fmt(c.rss)} B RSS (Go heap ${fmt(c.heapInuse)} B in use, ${fmt(c.liveHeap)} B live at the last GC)`;
  const where = perSeries
    ? `${costText(perSeries.marginal)} per added head series between ${fmt(perSeries.headSeries[0])} and ${fmt(perSeries.headSeries[1])} head series; ${costText(perSeries.overIdle)} per series above an idle Prometheus; Prometheus ${perSeries.prometheus}, ${perSeries.seconds} s of 1 s scrapes`
    : `no measurement recorded: ${fmt(RULE_OF_THUMB)} B per head series, the rule of thumb (run with --prometheus)`;
  const header = ['node', 'budget', 'series / scrape', 'exporter\'s own', 'series / GPU', 'series / MIG instance', 'bytes plain / gzip', `${fmt(opts.nodes)} nodes: series`, `${fmt(opts.nodes)} nodes: Prometheus memory`, 'at 3 kB / series'];
  const lines = [`| ${header.join(' | ')} |`, `|${header.map(() => '---').join('|')}|`];
  for (const r of rows) {
    const total = (r.series + TARGET_SERIES) * opts.nodes;
    lines.push(
      `| ${r.node}: ${r.gpus} GPUs, ${r.migInstances} MIG${r.node.endsWith('-gpm') ? ' with GPM' : ''}, ${fmt(r.pods)} pods | ${r.budget} | ${fmt(r.series)} | ${r.own} | ${fmt1((r.series - r.own) / r.gpus)} | ${r.migInstances ? fmt1(r.migSeries / r.migInstances) : '-'} | ${fmt(r.bytes)} / ${fmt(r.gzipBytes)} | ${(total / 1e6).toFixed(2)} M | ${((total * bytesPerSeries) / 2 ** 30).toFixed(1)} GiB | ${((total * RULE_OF_THUMB) / 2 ** 30).toFixed(1)} GiB |`,
    );
  }
  process.stdout.write(`${lines.join('\n')}\n\nPrometheus memory: ${where}.\n`);
  process.stdout.write(`Series / GPU: series other than the exporter's own, over the GPUs; series / MIG instance: series with a MIG instance label, over the instances; ${fmt(opts.nodes)} nodes: (series + ${TARGET_SERIES} per target) x nodes.\n`);
  process.stdout.write(`Budgets:\n${budgets('FILE').map((b) => `  ${b.name}: ${b.flags.join(' ') || '(no flags)'}`).join('\n')}\n`);
  process.stdout.write(`FILE: ${DCGM_DEFAULT_COUNTERS.filter(([, t]) => t !== 'label').length} fields of dcgm-exporter's default-counters.csv (labels ${DCGM_DEFAULT_COUNTERS.filter(([, t]) => t === 'label').map(([f]) => f).join(', ')}).\n`);
} finally {
  rmSync(countersDir, { recursive: true, force: true });
}
