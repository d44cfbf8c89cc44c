import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { gzipSync } from 'node:zlib';
import { enabledCollectors } from '../src/collectors/index.js';
import { NO_ATTRIBUTION } from '../src/attribution/attribution.js';
import { buildGpuFamilies } from '../src/metrics/gpu-series.js';
import { renderFamilies } from '../src/metrics/exposition.js';
import { NvmlBinding } from '../src/native/nvml-binding.js';
import { BusyTimeIntegrator } from '../src/sampler/busy-time.js';
import { NODE_FLAGS } from '../src/node-flags.js';
import { Ticker } from '../src/sampler/tick.js';
import { repoRoot, simulatedNode } from '../src/sim/harness.js';

/**
 * `npm run bench`: figures, not pass/fail. On the simulated 8x H100 node:
 * /metrics latency under concurrent load beside a bare node:http server sending the same
 * bytes (each in its own process, requests interleaved in the same run), CPU per sampling
 * tick, bytes per scrape, the exporter's RSS before and after 10,000 scrapes.
 */
const SCRAPES = Number(process.env.BENCH_SCRAPES ?? 10_000);
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 4);
const TICKS = Number(process.env.BENCH_TICKS ?? 300);

const node = simulatedNode(process.env.BENCH_SCENARIO ?? 'h100x8');
process.env.KGE_SIM_STATE = node.statePath;

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

const agent = new http.Agent({ keepAlive: true, maxSockets: CONCURRENCY });
function get(port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const req = http.get({ host: '127.0.0.1', port, path: '/metrics', agent }, (res) => {
      res.on('data', () => {});
      res.on('end', () => resolve(performance.now() - t0));
    });
    req.on('error', reject);
  });
}

/** Runs `total` requests alternating between the two servers, `CONCURRENCY` in flight. */
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

function mb(bytes: number): string {
  return (bytes / 1024 / 1024).toFixed(1);
}

// --- CPU per sampling tick (the worker's work, measured synchronously here) ---------------
const nvml = new NvmlBinding({ libraryPath: node.libraryPath });
nvml.init();
const ticker = new Ticker(nvml, enabledCollectors({ pcie: true }));
const busy = new BusyTimeIntegrator();
for (let i = 0; i < 20; i++) ticker.tick();
let cpu0 = process.cpuUsage();
for (let i = 0; i < TICKS; i++) ticker.tick();
let cpu = process.cpuUsage(cpu0);
const tickCpuMs = (cpu.user + cpu.system) / 1000 / TICKS;
const sample = ticker.tick();
cpu0 = process.cpuUsage();
for (let i = 0; i < TICKS; i++) {
  busy.apply(sample);
  renderFamilies(buildGpuFamilies(sample, { scheme: 'dcgm', hostname: 'bench', attribution: NO_ATTRIBUTION }), 'text');
}
cpu = process.cpuUsage(cpu0);
const renderCpuMs = (cpu.user + cpu.system) / 1000 / TICKS;
nvml.shutdown();

// --- the exporter and the floor, each in its own process ---------------------------------
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

/** User + system CPU of a process so far, from /proc (clock ticks of 10 ms). */
function cpuMs(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /s, '').split(' ');
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100;
}

const root = repoRoot();
const nodeFlags = process.env.BENCH_NODE_FLAGS !== undefined ? process.env.BENCH_NODE_FLAGS.split(' ').filter(Boolean) : [...NODE_FLAGS];
const exporter = await startChild(
  [...nodeFlags, path.join(root, 'dist/src/main.js'), '--web.listen-address=127.0.0.1:0', '--log.level=info'],
  { KGE_NVML_LIBRARY: node.libraryPath, KGE_SIM_STATE: node.statePath, NODE_NAME: 'bench-node' },
  (line) => (line.includes('serving /metrics') ? (JSON.parse(line) as { port: number }).port : undefined),
);
await new Promise((r) => setTimeout(r, 2500)); // first samples
const IDLE_MS = Number(process.env.BENCH_IDLE_MS ?? 10_000);
const idleCpu0 = cpuMs(exporter.child.pid!);
await new Promise((r) => setTimeout(r, IDLE_MS));
const idleCpuPerSecond = (cpuMs(exporter.child.pid!) - idleCpu0) / (IDLE_MS / 1000);
const body = await (await fetch(`http://127.0.0.1:${exporter.port}/metrics`)).arrayBuffer();
const gzipBytes = gzipSync(Buffer.from(body)).length;
const bodyFile = path.join(mkdtempSync(path.join(os.tmpdir(), 'kge-bench-')), 'metrics.txt');
writeFileSync(bodyFile, Buffer.from(body));
const floorScript = `const b=require('fs').readFileSync(${JSON.stringify(bodyFile)});const s=require('http').createServer((q,r)=>{r.setHeader('Content-Type','text/plain; version=0.0.4; charset=utf-8');r.end(b)});s.listen(0,'127.0.0.1',()=>console.log('port '+s.address().port));`;
const floor = await startChild(['-e', floorScript], {}, (line) => (/^port \d+$/.test(line) ? Number(line.slice(5)) : undefined));

await load([exporter.port, floor.port], 1000); // warm-up
const rssBefore = rssMB(exporter.child.pid!);
const [exp, bare] = await load([exporter.port, floor.port], SCRAPES * 2);
const rssAfter = rssMB(exporter.child.pid!);
await load([exporter.port, floor.port], SCRAPES * 2); // a second round, to see whether RSS keeps growing
const rssAfterSecond = rssMB(exporter.child.pid!);

const rows: [string, string][] = [
  ['scenario', `${path.basename(node.statePath)} (${sample.gpus.length} GPUs)`],
  ['/metrics p50 / p99 (ms)', `${percentile(exp, 50).toFixed(3)} / ${percentile(exp, 99).toFixed(3)}`],
  ['bare node:http, same bytes, p50 / p99 (ms)', `${percentile(bare, 50).toFixed(3)} / ${percentile(bare, 99).toFixed(3)}`],
  ['p99 ratio exporter / floor', (percentile(exp, 99) / percentile(bare, 99)).toFixed(2)],
  ['concurrency, scrapes per server', `${CONCURRENCY}, ${exp.length}`],
  ['CPU per sampling tick (ms, all collectors)', tickCpuMs.toFixed(3)],
  ['CPU per render of a sample (ms)', renderCpuMs.toFixed(3)],
  ['exporter CPU while idle, sampling every 1 s (ms per s)', idleCpuPerSecond.toFixed(1)],
  ['bytes per scrape (plain / gzip)', `${body.byteLength} / ${gzipBytes}`],
  ['exporter node flags', nodeFlags.join(' ') || '(none)'],
  [`exporter RSS before / after ${exp.length} / after ${2 * exp.length} scrapes (MB)`, `${rssBefore.toFixed(1)} / ${rssAfter.toFixed(1)} / ${rssAfterSecond.toFixed(1)}`],
];
const w = Math.max(...rows.map((r) => r[0].length));
process.stdout.write('\nkube-gpu-exporter benchmark\n' + rows.map(([k, v]) => `  ${k.padEnd(w)}  ${v}`).join('\n') + '\n');

exporter.child.kill('SIGTERM');
floor.child.kill('SIGTERM');
agent.destroy();
