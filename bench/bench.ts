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
import { simDevices, type KubeletScenario } from '../src/sim/kubelet-scenario.js';
import { startSimulatedPods, type SimulatedPods } from '../src/sim/simulated-pods.js';
import { DeviceMapSource } from '../src/attribution/kubelet/device-map-source.js';
import pino from 'pino';

/**
 * `npm run bench`: figures, not pass/fail. On the simulated 8x H100 node:
 * /metrics latency under concurrent load beside a bare node:http server sending the same
 * bytes (each in its own process, requests interleaved in the same run), CPU per sampling
 * tick, bytes per scrape, the exporter's RSS before and after 10,000 scrapes; then the same node
 * with 500 pods (replicas and MIG): scrape latency, bytes, and the time to refresh the device map.
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
const IDLE_MS = Number(process.env.BENCH_IDLE_MS ?? 10_000);

interface ServerRun {
  exp: number[];
  bare: number[];
  bytes: number;
  gzipBytes: number;
  rss: [number, number, number];
  idleCpuPerSecond?: number;
  refreshSeconds?: number;
}

/**
 * Starts the compiled exporter (with the shipped node flags) against the simulated node and
 * the given pods, and a bare node:http server sending the bytes it serves; scrapes both.
 */
async function runServers(pods: SimulatedPods, opts: { idle: boolean; rssRounds: boolean }): Promise<ServerRun> {
  const exporter = await startChild(
    [...nodeFlags, path.join(root, 'dist/src/main.js'), '--web.listen-address=127.0.0.1:0', '--log.level=info', ...pods.flags],
    { KGE_NVML_LIBRARY: node.libraryPath, KGE_SIM_STATE: node.statePath, NODE_NAME: 'bench-node' },
    (line) => (line.includes('serving /metrics') ? (JSON.parse(line) as { port: number }).port : undefined),
  );
  await new Promise((r) => setTimeout(r, 2500)); // first samples and the first kubelet refresh
  let idleCpuPerSecond: number | undefined;
  if (opts.idle) {
    const idleCpu0 = cpuMs(exporter.child.pid!);
    await new Promise((r) => setTimeout(r, IDLE_MS));
    idleCpuPerSecond = (cpuMs(exporter.child.pid!) - idleCpu0) / (IDLE_MS / 1000);
  }
  const text = await (await fetch(`http://127.0.0.1:${exporter.port}/metrics`)).text();
  const body = Buffer.from(text);
  const refresh = /^kube_gpu_exporter_kubelet_refresh_duration_seconds (\S+)$/m.exec(text);
  const bodyFile = path.join(mkdtempSync(path.join(os.tmpdir(), 'kge-bench-')), 'metrics.txt');
  writeFileSync(bodyFile, body);
  const floorScript = `const b=require('fs').readFileSync(${JSON.stringify(bodyFile)});const s=require('http').createServer((q,r)=>{r.setHeader('Content-Type','text/plain; version=0.0.4; charset=utf-8');r.end(b)});s.listen(0,'127.0.0.1',()=>console.log('port '+s.address().port));`;
  const floor = await startChild(['-e', floorScript], {}, (line) => (/^port \d+$/.test(line) ? Number(line.slice(5)) : undefined));
  await load([exporter.port, floor.port], 1000); // warm-up
  const rssBefore = rssMB(exporter.child.pid!);
  const [exp, bare] = await load([exporter.port, floor.port], SCRAPES * 2);
  const rssAfter = rssMB(exporter.child.pid!);
  let rssAfterSecond = Number.NaN;
  if (opts.rssRounds) {
    await load([exporter.port, floor.port], SCRAPES * 2); // a second round, to see whether RSS keeps growing
    rssAfterSecond = rssMB(exporter.child.pid!);
  }
  exporter.child.kill('SIGTERM');
  floor.child.kill('SIGTERM');
  return {
    exp, bare, bytes: body.length, gzipBytes: gzipSync(body).length, rss: [rssBefore, rssAfter, rssAfterSecond],
    ...(idleCpuPerSecond !== undefined ? { idleCpuPerSecond } : {}),
    ...(refresh ? { refreshSeconds: Number(refresh[1]) } : {}),
  };
}

/**
 * 500 pods on the node. `dense`: 496 hold replicas of GPUs 0-6 (71 replicas each) and 4 the MIG
 * instances of GPU 7, the worst case for bytes per scrape (every GPU series once per holder).
 * `typical`: 56 hold replicas (8 per GPU), 4 the MIG instances, 440 other resources only.
 */
function fiveHundredPods(kind: 'dense' | 'typical'): KubeletScenario {
  const devices = simDevices(readFileSync(node.statePath, 'utf8'));
  const uuid = (i: number) => devices.gpus.get(i)!.uuid;
  const replicaHolders = kind === 'dense' ? 496 : 56;
  const replicas = Math.ceil(replicaHolders / 7);
  const pods: KubeletScenario['pods'] = [];
  const id = (i: number) => ({ uid: `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`, containerId: String(i).padStart(64, '0') });
  for (let i = 0; i < 496; i++) {
    const devicesOf: Record<string, string[]> = i < replicaHolders ? { 'nvidia.com/gpu.shared': [`${uuid(i % 7)}::${Math.floor(i / 7)}`] } : { 'example.com/nic': [`nic-${i}`] };
    pods.push({ namespace: `team-${i % 20}`, name: `worker-${i}`, uid: id(i).uid, containers: [{ name: 'main', id: id(i).containerId, devices: devicesOf, pids: [] }] });
  }
  const mig = [...devices.gpus.get(7)!.mig.values()];
  mig.forEach((m, j) => pods.push({ namespace: 'batch', name: `mig-job-${j}`, uid: id(1000 + j).uid, containers: [{ name: 'main', id: id(1000 + j).containerId, devices: { [`nvidia.com/mig-${m.profile}`]: [m.uuid] }, pids: [] }] }));
  const allocatable: Record<string, string[]> = { 'nvidia.com/gpu.shared': [] };
  for (let g = 0; g < 7; g++) for (let r = 0; r < replicas; r++) allocatable['nvidia.com/gpu.shared']!.push(`${uuid(g)}::${r}`);
  for (const m of mig) (allocatable[`nvidia.com/mig-${m.profile}`] ??= []).push(m.uuid);
  return { pods, allocatable, hostPids: [] };
}

/** Time of one refresh of the device map (List + GetAllocatableResources + building the map), in this process. */
async function refreshTimes(socketPath: string, n: number): Promise<number[]> {
  const source = new DeviceMapSource({ socketPath, refreshMs: 60_000, deadlineMs: 5000, logger: pino({ level: 'silent' }) });
  const times: number[] = [];
  for (let i = 0; i < n + 3; i++) {
    const t0 = performance.now();
    await source.refresh();
    if (i >= 3) times.push(performance.now() - t0);
  }
  await source.stop();
  return times.sort((a, b) => a - b);
}

// --- the shipped node (its 9 pods), then 500 pods on it ------------------------------------
const demoPods = await startSimulatedPods(node.statePath);
const base = await runServers(demoPods, { idle: true, rssRounds: true });
await demoPods.stop();

async function withPods(kind: 'dense' | 'typical'): Promise<{ run: ServerRun; refresh: number[] }> {
  const pods = await startSimulatedPods(node.statePath);
  pods.update(fiveHundredPods(kind));
  const run = await runServers(pods, { idle: false, rssRounds: false });
  const refresh = await refreshTimes(pods.kubelet.socketPath, 30);
  await pods.stop();
  return { run, refresh };
}
const typical = await withPods('typical');
const dense = await withPods('dense');

const ms = (xs: number[], p: number) => percentile(xs, p).toFixed(3);
const rows: [string, string][] = [
  ['scenario', `${path.basename(node.statePath)} (${sample.gpus.length} GPUs), ${demoPods.scenario.pods.length} pods`],
  ['/metrics p50 / p99 (ms)', `${ms(base.exp, 50)} / ${ms(base.exp, 99)}`],
  ['bare node:http, same bytes, p50 / p99 (ms)', `${ms(base.bare, 50)} / ${ms(base.bare, 99)}`],
  ['p99 ratio exporter / floor', (percentile(base.exp, 99) / percentile(base.bare, 99)).toFixed(2)],
  ['concurrency, scrapes per server', `${CONCURRENCY}, ${base.exp.length}`],
  ['CPU per sampling tick (ms, all collectors)', tickCpuMs.toFixed(3)],
  ['CPU per render of a sample (ms)', renderCpuMs.toFixed(3)],
  ['exporter CPU while idle, sampling every 1 s (ms per s)', base.idleCpuPerSecond!.toFixed(1)],
  ['bytes per scrape (plain / gzip)', `${base.bytes} / ${base.gzipBytes}`],
  ['exporter node flags', nodeFlags.join(' ') || '(none)'],
  [`exporter RSS before / after ${base.exp.length} / after ${2 * base.exp.length} scrapes (MB)`, base.rss.map((r) => r.toFixed(1)).join(' / ')],
  ...(
    [
      ['500 pods, 60 on GPUs', typical],
      ['500 pods, all on GPUs', dense],
    ] as const
  ).flatMap(([label, { run, refresh }]): [string, string][] => [
    [`${label}: /metrics p50 / p99 (ms)`, `${ms(run.exp, 50)} / ${ms(run.exp, 99)}`],
    [`${label}: bare node:http, same bytes, p50 / p99 (ms)`, `${ms(run.bare, 50)} / ${ms(run.bare, 99)}`],
    [`${label}: bytes per scrape (plain / gzip)`, `${run.bytes} / ${run.gzipBytes}`],
    [`${label}: device map refresh p50 / max (ms)`, `${ms(refresh, 50)} / ${refresh[refresh.length - 1]!.toFixed(3)}`],
    [`${label}: exporter RSS before / after scrapes (MB)`, `${run.rss[0].toFixed(1)} / ${run.rss[1].toFixed(1)}`],
  ]),
];
const w = Math.max(...rows.map((r) => r[0].length));
process.stdout.write('\nkube-gpu-exporter benchmark\n' + rows.map(([k, v]) => `  ${k.padEnd(w)}  ${v}`).join('\n') + '\n');

agent.destroy();
