import { readFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { Exporter } from '../src/exporter.js';
import { scrape, seriesOf, waitFor } from './support/exporter-process.js';
import { startScenarioInProcess, type LogRecord } from './support/in-process.js';
import { appendScenarioLines, replaceScenarioFile } from '../src/sim/scenario-file.js';

/** The whole pipeline in one process on the simulated 8x H100 node, with faults injected live. */
let exporter: Exporter;
let url: string;
let logs: LogRecord[];
let statePath: string;
let original: string;

beforeAll(async () => {
  ({ exporter, url, logs, statePath, original } = await startScenarioInProcess('h100x8'));
});
afterAll(async () => {
  await exporter.stop();
});

async function setScenario(extra: string): Promise<void> {
  replaceScenarioFile(statePath, original + '\n' + extra + '\n');
  // two complete samples after the change
  await exporter.sampler.nextSample();
  await exporter.sampler.nextSample();
  await new Promise((r) => setTimeout(r, 20));
}

beforeEach(async () => {
  if (readFileSync(statePath, 'utf8') !== original) await setScenario('');
});

describe('serving', () => {
  it('serves every GPU with dcgm-exporter labels', async () => {
    const text = await scrape(url);
    const temps = seriesOf(text, 'DCGM_FI_DEV_GPU_TEMP');
    expect(temps).toHaveLength(8);
    const g0 = temps.find((s) => s.labels.gpu === '0')!;
    expect(Object.keys(g0.labels)).toEqual(['gpu', 'UUID', 'pci_bus_id', 'device', 'modelName', 'Hostname', 'DCGM_FI_DRIVER_VERSION']);
    expect(g0.labels.device).toBe('nvidia0');
    expect(g0.labels.modelName).toBe('NVIDIA H100 80GB HBM3');
    expect(g0.labels.Hostname).toBe('test-node');
    const fbTotal = seriesOf(text, 'DCGM_FI_DEV_FB_TOTAL');
    expect(fbTotal.filter((s) => s.labels.GPU_I_ID === undefined).map((s) => s.value)).toEqual(Array(8).fill(81559));
    expect(fbTotal.filter((s) => s.labels.GPU_I_ID !== undefined)).toHaveLength(4); // GPU 7's MIG instances
    expect(seriesOf(text, 'kube_gpu_exporter_collector_success').every((s) => s.value === 1)).toBe(true);
  });

  it('counts busy seconds that grow with utilization', async () => {
    // whole GPUs only: GPU 7 is in MIG mode and has no utilization of its own; its MIG instances
    // count GPM activity, which appears from the second sample on (so whether they are there yet depends on timing)
    const wholeGpus = (text: string) => seriesOf(text, 'gpu_busy_seconds_total').filter((s) => s.labels.GPU_I_ID === undefined);
    const before = wholeGpus(await scrape(url));
    expect(before.map((s) => s.labels.gpu)).toEqual(['0', '1', '2', '3', '4', '5', '6']);
    await exporter.sampler.nextSample();
    await exporter.sampler.nextSample();
    const after = wholeGpus(await scrape(url));
    const busiest = after.reduce((a, b) => (a.value > b.value ? a : b));
    const prev = before.find((s) => s.labels.gpu === busiest.labels.gpu)!;
    expect(busiest.value).toBeGreaterThan(prev.value);
  });

  it('negotiates OpenMetrics and gzip', async () => {
    const om = await fetch(`${url}/metrics`, { headers: { Accept: 'application/openmetrics-text; version=1.0.0' } });
    expect(om.headers.get('content-type')).toContain('application/openmetrics-text');
    const body = await om.text();
    expect(body.endsWith('# EOF\n')).toBe(true);
    expect(body).toContain('# TYPE gpu_busy_seconds counter');
    const res = await fetch(`${url}/metrics`, { headers: { 'Accept-Encoding': 'gzip' }, decompress: false } as RequestInit);
    // fetch decompresses transparently; check the header and that the body is valid text
    expect(res.headers.get('content-encoding')).toBe('gzip');
    expect(await res.text()).toContain('DCGM_FI_DEV_GPU_UTIL');
    const gz = exporter.cache.body('text', true);
    expect(gunzipSync(gz).toString()).toBe(exporter.cache.body('text', false).toString());
  });

  it('has /healthz, /readyz, an index page and 404s', async () => {
    expect((await fetch(`${url}/healthz`)).status).toBe(200);
    expect(await (await fetch(`${url}/readyz`)).text()).toBe('ready\n');
    const page = await (await fetch(`${url}/`)).text();
    expect(page).toContain('NVIDIA H100 80GB HBM3');
    expect(page.match(/<tr><td>\d<\/td>/g)).toHaveLength(8);
    expect((await fetch(`${url}/nope`)).status).toBe(404);
  });
});

describe('faults', () => {
  it('one collector failing on one GPU fails neither the scrape nor the other GPUs, and is logged once', async () => {
    const logsBefore = logs.length;
    await setScenario('fault nvmlDeviceGetClockInfo 1 999');
    await exporter.sampler.nextSample();
    const text = await scrape(url);
    const success = Object.fromEntries(seriesOf(text, 'kube_gpu_exporter_collector_success').map((s) => [s.labels.collector, s.value]));
    expect(success.clocks).toBe(0);
    expect(success.memory).toBe(1);
    const sm = seriesOf(text, 'DCGM_FI_DEV_SM_CLOCK');
    expect(sm.map((s) => s.labels.gpu).sort()).toEqual(['0', '2', '3', '4', '5', '6', '7']);
    expect(seriesOf(text, 'DCGM_FI_DEV_MAX_SM_CLOCK')).toHaveLength(8);
    const failing = logs.slice(logsBefore).filter((l) => l.msg === 'collector failing');
    expect(failing).toHaveLength(1);
    expect(String(failing[0]!.err)).toContain('NVML_ERROR_UNKNOWN');
    await setScenario('');
    expect(logs.slice(logsBefore).filter((l) => l.msg === 'collector recovered')).toHaveLength(1);
  });

  it('a GPU lost mid-run disappears while the others keep reporting', async () => {
    await setScenario('fault * 3 15');
    const text = await scrape(url);
    expect(seriesOf(text, 'DCGM_FI_DEV_GPU_TEMP').map((s) => s.labels.gpu).sort()).toEqual(['0', '1', '2', '4', '5', '6', '7']);
    expect(seriesOf(text, 'kube_gpu_exporter_gpus')[0]!.value).toBe(7);
    expect(seriesOf(text, 'kube_gpu_exporter_gpus_not_answering')[0]!.value).toBe(1);
    // only the health families keep the lost GPU: it answers 0, its event counters stay
    const families = new Set(text.split('\n').filter((l) => l.includes('gpu="3"')).map((l) => l.slice(0, l.indexOf('{'))));
    expect([...families].sort()).toEqual(['DCGM_FI_DEV_XID_ERRORS', 'gpu_answering', 'gpu_health_events_total', 'gpu_xid_events_total']);
    expect(seriesOf(text, 'gpu_answering').find((s) => s.labels.gpu === '3')?.value).toBe(0);
    expect(logs.filter((l) => l.msg.startsWith('GPU missing'))).toHaveLength(1);
    expect(logs.filter((l) => l.msg.startsWith('GPU missing'))[0]).toMatchObject({ gpu: 3, err: expect.stringContaining('GPU_IS_LOST') });
  });

  it('a 3 s hang in NVML leaves /metrics answering in milliseconds from the last sample', async () => {
    const skippedBefore = exporter.sampler.skippedTicks;
    appendScenarioLines(statePath, '\nlatency nvmlDeviceGetPowerUsage 0 3000\n');
    await waitFor(() => exporter.sampler.skippedTicks > skippedBefore + 2, 5000, 'a stalled tick');
    const times: number[] = [];
    for (let i = 0; i < 20; i++) {
      const t0 = performance.now();
      const body = await scrape(url);
      times.push(performance.now() - t0);
      expect(body).toContain('DCGM_FI_DEV_GPU_TEMP');
    }
    times.sort((a, b) => a - b);
    // Generous bound for a noisy 2-core machine: the point is "not 3 seconds".
    expect(times[times.length - 1]).toBeLessThan(250);
    expect(logs.filter((l) => String(l.msg).startsWith('previous sampling tick still running')).length).toBeGreaterThanOrEqual(1);
    replaceScenarioFile(statePath, original);
    await exporter.sampler.nextSample(8000);
  });
});
