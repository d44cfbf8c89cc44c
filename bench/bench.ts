import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { performance } from 'node:perf_hooks';
import pino from 'pino';
import { enabledCollectors } from '../src/collectors/index.js';
import { defaultConfig } from '../src/config/flags.js';
import { Exporter } from '../src/exporter.js';
import { NO_ATTRIBUTION } from '../src/attribution/attribution.js';
import { buildGpuFamilies } from '../src/metrics/gpu-series.js';
import { renderFamilies } from '../src/metrics/exposition.js';
import { NvmlBinding } from '../src/native/nvml-binding.js';
import { BusyTimeIntegrator } from '../src/sampler/busy-time.js';
import { Ticker } from '../src/sampler/tick.js';
import { simulatedNode } from '../src/sim/harness.js';

/**
 * `npm run bench`: figures, not pass/fail. On the simulated 8x H100 node:
 * /metrics latency under concurrent load beside a bare node:http server sending the same
 * bytes (measured interleaved in the same run), CPU per sampling tick, bytes per scrape,
 * RSS before and after 10,000 scrapes.
 */
const SCRAPES = Number(process.env.BENCH_SCRAPES ?? 10_000);
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 8);
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

// --- the exporter and the floor ------------------------------------------------------------
const config = { ...defaultConfig(), listenHost: '127.0.0.1', listenPort: 0, nvmlLibrary: node.libraryPath, nodeName: 'bench-node' };
const exporter = new Exporter({ config, logger: pino({ level: 'warn' }) });
const addr = await exporter.start();
await exporter.sampler.nextSample();
await exporter.sampler.nextSample();
const body = exporter.cache.body('text', false);
const gz = exporter.cache.body('text', true);
const floor = http.createServer((_req, res) => {
  res.setHeader('Content-Type', 'text/plain; version=0.0.4; charset=utf-8');
  res.end(body);
});
await new Promise<void>((r) => floor.listen(0, '127.0.0.1', r));
const floorPort = (floor.address() as AddressInfo).port;

await load([addr.port, floorPort], 1000); // warm-up
global.gc?.();
const rssBefore = process.memoryUsage().rss;
const [exp, bare] = await load([addr.port, floorPort], SCRAPES * 2);
global.gc?.();
const rssAfter = process.memoryUsage().rss;

const rows: [string, string][] = [
  ['scenario', `${node.statePath.split('/').pop()} (${sample.gpus.length} GPUs)`],
  ['/metrics p50 / p99 (ms)', `${percentile(exp, 50).toFixed(3)} / ${percentile(exp, 99).toFixed(3)}`],
  ['bare node:http p50 / p99 (ms)', `${percentile(bare, 50).toFixed(3)} / ${percentile(bare, 99).toFixed(3)}`],
  ['p99 ratio exporter / floor', (percentile(exp, 99) / percentile(bare, 99)).toFixed(2)],
  ['concurrency, scrapes', `${CONCURRENCY}, ${exp.length}`],
  ['CPU per sampling tick (ms, all collectors incl. pcie)', tickCpuMs.toFixed(3)],
  ['CPU per render of a sample (ms)', renderCpuMs.toFixed(3)],
  ['bytes per scrape (plain / gzip)', `${body.length} / ${gz.length}`],
  [`RSS before / after ${exp.length} scrapes (MB)`, `${mb(rssBefore)} / ${mb(rssAfter)}`],
];
const w = Math.max(...rows.map((r) => r[0].length));
process.stdout.write('\nkube-gpu-exporter benchmark\n' + rows.map(([k, v]) => `  ${k.padEnd(w)}  ${v}`).join('\n') + '\n');

await exporter.stop();
floor.close();
agent.destroy();
