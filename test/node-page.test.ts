import { readFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import vm from 'node:vm';
import bcrypt from 'bcryptjs';
import { afterEach, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import type { DeviceHolder, SampleAttribution } from '../src/attribution/attribution.js';
import type { EventCounts } from '../src/events/event-tally.js';
import type { WebConfig } from '../src/config/web-config.js';
import { buildGpuFamilies } from '../src/metrics/gpu-series.js';
import { renderContext, type ExporterStatus, type RenderContext } from '../src/metrics/render-context.js';
import { NODE_PAGE_CSS, NODE_PAGE_SCRIPT } from '../src/http/node-page-assets.js';
import { NODE_PAGE_CSP } from '../src/http/node-page.js';
import { createRequestHandler, RequestGuard, type ServedState } from '../src/http/server.js';
import type { GpuSample, MigSample, NodeSample } from '../src/sample.js';
import { IDLE_UTILIZATION_RATIO, NodeViews, type NodeView } from '../src/view/node-view.js';
import { ROOT } from './support/exporter-process.js';
import { capturingLogger } from './support/in-process.js';

/**
 * The node view (what the page shows, from the render context: utilization over the last minute
 * from the busy-seconds counter, holders and idle ones, health, the exporter's state) and how
 * the page and its data are served (headers, web config, request guard, fresh()).
 */


const T0 = 1_700_000_000_000;
const uuidOf = (index: number): string => `GPU-${index}0000000-0000-0000-0000-000000000000`;
const gpu = (index: number, values: GpuSample['values'], mig: MigSample[] = []): GpuSample => ({
  index, uuid: uuidOf(index), name: 'NVIDIA H100 80GB HBM3', pciBusId: `00000000:0${index}:00.0`, minor: index, values, mig, processes: [],
});
const sampleAt = (seconds: number, gpus: GpuSample[], extra: Partial<NodeSample> = {}): NodeSample => ({
  takenAtMs: T0 + seconds * 1000, monotonicMs: seconds * 1000, driverVersion: '550.54.15', gpus, lostGpus: [],
  collectors: [{ name: 'memory', success: true, durationSeconds: 0.001 }], tickSeconds: 0.002, ...extra,
});
const attributionOf = (holders: Record<string, DeviceHolder[]>, rest: Partial<SampleAttribution> = {}): SampleAttribution => ({
  holdersOf: (uuid) => holders[uuid] ?? [], usage: [], unplacedProcesses: 0, unknownDeviceIds: 0, draUnresolvedDevices: 0, ...rest,
});
const STATUS: ExporterStatus = {
  nvmlUp: true, skippedTicks: 0, version: '9.9.9', naming: 'prometheus', sampleIntervalSeconds: 1, processAttribution: true,
  kubelet: { up: true, lastSuccessMs: T0, failures: 0, pods: 2 },
};
const ctxOf = (sample: NodeSample, more: Partial<Parameters<typeof renderContext>[0]> = {}): RenderContext =>
  renderContext({ sample, scheme: 'prometheus', hostname: 'node-a', exporter: STATUS, ...more });
const READY = { ok: true, reason: '' };

describe('the node view', () => {
  it('averages utilization from the busy-seconds counter over the last 60 s of rendered samples', () => {
    const views = new NodeViews(capturingLogger().logger);
    const at = (s: number, busy: number): NodeView => {
      views.observe(ctxOf(sampleAt(s, [gpu(0, { gpuUtilPercent: 50, gpuBusySeconds: busy })])));
      return views.view(T0 + s * 1000, READY)!;
    };
    const first = at(0, 0);
    expect(first.gpus[0]!.utilization).toBeNull(); // one reading: no window yet
    expect(first.gpus[0]!.utilizationWindowSeconds).toBeNull();
    at(15, 9);
    at(30, 18);
    at(45, 27);
    expect(at(60, 36).gpus[0]).toMatchObject({ utilization: 0.6, utilizationWindowSeconds: 60 });
    // idle for 15 s: the reading at 0 s leaves the window, (36 - 9) / 60
    expect(at(75, 36).gpus[0]).toMatchObject({ utilization: 0.45, utilizationWindowSeconds: 60 });
    // the counter went back (the sampling worker restarted): readings start afresh
    expect(at(76, 1).gpus[0]!.utilization).toBeNull();
    expect(at(78, 2).gpus[0]).toMatchObject({ utilization: 0.5, utilizationWindowSeconds: 2 });
  });

  it('marks holders of a device below the idle threshold, with their replica, share and claim', () => {
    const views = new NodeViews(capturingLogger().logger);
    const mig: MigSample = { uuid: 'MIG-7a', gpuInstanceId: 2, computeInstanceId: 0, profile: '3g.40gb', values: { gpuBusySeconds: 0, fbUsedBytes: 1, fbTotalBytes: 2 }, processes: [] };
    const holders: Record<string, DeviceHolder[]> = {
      [uuidOf(0)]: [
        { namespace: 'inference', pod: 'chat-a', container: 'server', vgpu: '0', share: 0.25 },
        { namespace: 'notebooks', pod: 'alice', container: 'nb', vgpu: '3', share: 0.25 },
      ],
      [uuidOf(1)]: [{ namespace: 'ml', pod: 'idle-pod', container: 'main', share: 1, dra: { claimName: 'gpu-claim', claimNamespace: 'ml', driver: 'gpu.nvidia.com', pool: 'node-a', device: 'gpu-1' } }],
      'MIG-7a': [{ namespace: 'batch', pod: 'embed', container: 'embed', share: 3 / 7 }],
    };
    for (const [s, busy0, busy1, busyMig] of [[0, 0, 0, 0], [10, 5, 0.1, 0.3]] as const) {
      views.observe(ctxOf(sampleAt(s, [gpu(0, { gpuBusySeconds: busy0 }), gpu(1, { gpuBusySeconds: busy1 }), gpu(7, {}, [{ ...mig, values: { ...mig.values, gpuBusySeconds: busyMig } }])]), { attribution: attributionOf(holders) }));
    }
    const v = views.view(T0 + 10_000, READY)!;
    expect(v.gpus[0]!.holders).toEqual([
      { namespace: 'inference', pod: 'chat-a', container: 'server', replica: '0', share: 0.25, idle: false, draClaim: null },
      { namespace: 'notebooks', pod: 'alice', container: 'nb', replica: '3', share: 0.25, idle: false, draClaim: null },
    ]);
    expect(v.gpus[1]!.utilization).toBe(0.01);
    expect(v.gpus[1]!.holders).toEqual([{ namespace: 'ml', pod: 'idle-pod', container: 'main', replica: null, share: 1, idle: true, draClaim: 'ml/gpu-claim' }]);
    expect(v.gpus[2]!.utilization).toBeNull(); // MIG mode: no utilization of its own
    expect(v.gpus[2]!.mig[0]).toMatchObject({ profile: '3g.40gb', gpuInstanceId: 2, utilization: 0.03, memoryUsedBytes: 1, memoryTotalBytes: 2 });
    expect(v.gpus[2]!.mig[0]!.holders).toEqual([{ namespace: 'batch', pod: 'embed', container: 'embed', replica: null, share: 0.428571428571429, idle: true, draClaim: null }]);
    expect(v.idleUtilizationRatio).toBe(IDLE_UTILIZATION_RATIO);
  });

  it('uses the idle threshold of the GpuAllocatedIdle alert', () => {
    const settings = parseYaml(readFileSync(path.join(ROOT, 'deploy', 'rules', 'settings.yaml'), 'utf8')) as Record<string, unknown>;
    expect(IDLE_UTILIZATION_RATIO).toBe(settings.idle_utilization_ratio);
  });

  it('shows the values the GPU families export, in their Prometheus units, and the throttle reasons set', () => {
    const views = new NodeViews(capturingLogger().logger);
    const values = { fbUsedBytes: 52e9, fbTotalBytes: 85520809984, gpuTempCelsius: 71, powerUsageMilliwatts: 512345, powerLimitMilliwatts: 700000, clocksEventReasons: 0x44 };
    const ctx = ctxOf(sampleAt(0, [gpu(0, values)]));
    views.observe(ctx);
    const g = views.view(T0, READY)!.gpus[0]!;
    const exported = (name: string): number | undefined => buildGpuFamilies(ctx).find((f) => f.name === name)?.series[0]?.value;
    expect(g.memoryUsedBytes).toBe(exported('gpu_memory_used_bytes'));
    expect(g.memoryTotalBytes).toBe(exported('gpu_memory_total_bytes'));
    expect(g.temperatureCelsius).toBe(exported('gpu_temperature_celsius'));
    expect(g.powerWatts).toBe(exported('gpu_power_watts'));
    expect(g.powerWatts).toBe(512.345);
    expect(g.powerLimitWatts).toBe(exported('gpu_power_limit_watts'));
    expect(g.throttleReasons).toEqual([
      { reason: 'sw_power_cap', kind: 'performance' },
      { reason: 'hw_thermal_slowdown', kind: 'protection' },
    ]);
    const active = buildGpuFamilies(ctx).find((f) => f.name === 'gpu_clock_event_reason_active')!.series.filter((s) => s.value === 1).map((s) => /reason="([^"]+)"/.exec(s.labels)![1]);
    expect(g.throttleReasons.map((r) => r.reason)).toEqual(active);
  });

  it('keeps a lost GPU with its error, holders and last Xid; lists a GPU that never answered by index', () => {
    const views = new NodeViews(capturingLogger().logger);
    const events: EventCounts = {
      xidCounts: () => [{ uuid: uuidOf(3), xid: 79, count: 1 }],
      xidTotal: (uuid) => (uuid === uuidOf(3) ? 1 : 0),
      lastXidOf: (uuid) => (uuid === uuidOf(3) ? { xid: 79, atMs: T0 - 500 } : undefined),
      healthCount: (uuid, e) => (uuid === uuidOf(0) && e === 'double_bit_ecc' ? 2 : 0),
    };
    const g0 = gpu(0, { eccDbeVolatile: 2, eccDbeAggregate: 5, remappedRowsPending: 1, remappedRowsFailure: 0, retiredPagesPending: 0 });
    const lost3 = gpu(3, {});
    const sample = sampleAt(0, [g0], {
      lostGpus: [{ index: 3, uuid: uuidOf(3), error: 'NVML_ERROR_GPU_IS_LOST' }, { index: 5, error: 'NVML_ERROR_GPU_IS_LOST' }],
      collectors: [{ name: 'memory', success: true, durationSeconds: 0 }, { name: 'clocks', success: false, durationSeconds: 0, error: 'GPU 0: NVML_ERROR_UNKNOWN' }],
    });
    views.observe(ctxOf(sample, {
      seenGpus: [{ gpu: g0, answering: true }, { gpu: lost3, answering: false }],
      events,
      attribution: attributionOf({ [uuidOf(3)]: [{ namespace: 'ml', pod: 'train', container: 'main', share: 1 }] }),
    }));
    const v = views.view(T0 + 2500, { ok: true, reason: '' })!;
    expect(v.gpus.map((g) => [g.index, g.answering, g.error])).toEqual([[0, true, null], [3, false, 'NVML_ERROR_GPU_IS_LOST'], [5, false, 'NVML_ERROR_GPU_IS_LOST']]);
    const lost = v.gpus[1]!;
    expect(lost).toMatchObject({ uuid: uuidOf(3), model: 'NVIDIA H100 80GB HBM3', memoryUsedBytes: null, temperatureCelsius: null, utilization: null, mig: [] });
    expect(lost.holders.map((h) => h.pod)).toEqual(['train']);
    expect(lost.health.lastXid).toEqual({ xid: 79, message: 'GPU has fallen off the bus', atMs: T0 - 500 });
    expect(lost.health.xidEvents).toBe(1);
    expect(v.gpus[2]).toMatchObject({ index: 5, uuid: null, model: null });
    expect(v.gpus[0]!.health).toEqual({ lastXid: null, xidEvents: 0, doubleBitEcc: { volatile: 2, aggregate: 5, events: 2 }, rowRemapPending: true, rowRemapFailure: false, retiredPagesPending: false });
    expect(v.exporter).toEqual({
      nvmlUp: true, enumerationError: null, kubelet: { up: true, pods: 2, refreshFailures: 0, lastSuccessMs: T0 }, eventWatchUp: null,
      collectorsFailing: [{ name: 'clocks', error: 'GPU 0: NVML_ERROR_UNKNOWN' }], gpusNotAnswering: 2,
    });
    expect(v.sample).toMatchObject({ takenAtMs: T0, ageSeconds: 2.5, intervalSeconds: 1, driverVersion: '550.54.15' });
  });

  it('before the first sample: no sample, no GPUs, and why the exporter is not ready', () => {
    const views = new NodeViews(capturingLogger().logger);
    expect(views.view(T0, READY)).toBeUndefined();
    views.observe(renderContext({ sample: undefined, scheme: 'dcgm', hostname: 'node-a', exporter: { ...STATUS, nvmlUp: false, kubelet: undefined } }));
    const v = views.view(T0, { ok: false, reason: 'NVML not loaded: libnvidia-ml.so.1 not found' })!;
    expect(v).toMatchObject({ sample: null, gpus: [], ready: { ok: false, reason: 'NVML not loaded: libnvidia-ml.so.1 not found' } });
    expect(v.exporter).toMatchObject({ nvmlUp: false, kubelet: null, collectorsFailing: [] });
  });

  it('serves the last good view while a context cannot be turned into one, logged once until it recovers', () => {
    const { logger, logs } = capturingLogger();
    const views = new NodeViews(logger);
    const good = (s: number): RenderContext => ctxOf(sampleAt(s, [gpu(0, { gpuTempCelsius: 40 + s })]));
    // a context whose attribution throws when the view reads it (the render stage's context is built by then)
    const broken = (s: number): RenderContext => ({ ...good(s), attribution: attributionOf({}, { holdersOf: () => { throw new Error('odd value'); } }) });
    views.observe(good(1));
    expect(views.view(T0, READY)!.gpus[0]!.temperatureCelsius).toBe(41);
    views.observe(broken(2));
    expect(views.view(T0, READY)!.gpus[0]!.temperatureCelsius).toBe(41);
    views.observe(broken(3));
    expect(views.view(T0, READY)!.gpus[0]!.temperatureCelsius).toBe(41);
    expect(logs.filter((l) => l.msg.startsWith('node view failing'))).toHaveLength(1);
    views.observe(good(4));
    expect(views.view(T0, READY)!.gpus[0]!.temperatureCelsius).toBe(44);
    expect(logs.filter((l) => l.msg === 'node view recovered')).toHaveLength(1);
  });
});

// ---------------------------------------------------------------------------------------
// Serving: a real HTTP server per test around the request handler /metrics goes through
// ---------------------------------------------------------------------------------------

const servers: http.Server[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => new Promise((r) => s.close(r))));
});

function stateWith(view: (nowMs: number) => NodeView | undefined, more: Partial<ServedState> = {}): ServedState {
  return {
    body: () => Buffer.from('up 1\n'),
    ready: () => ({ ok: true, reason: '' }),
    latestSample: () => undefined,
    nodeView: (nowMs, ready) => {
      const v = view(nowMs);
      return v && { ...v, ready: { ok: ready.ok, reason: ready.ok ? null : ready.reason } };
    },
    version: '9.9.9',
    ...more,
  };
}

function demoView(model = 'NVIDIA H100 80GB HBM3'): (nowMs: number) => NodeView | undefined {
  const views = new NodeViews(capturingLogger().logger);
  views.observe(ctxOf(sampleAt(0, [{ ...gpu(0, { gpuTempCelsius: 50 }), name: model }])));
  return (nowMs) => views.view(nowMs, READY);
}

async function serve(state: ServedState, guard = new RequestGuard()): Promise<string> {
  const server = http.createServer(createRequestHandler(state, guard));
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

const PAGE_PATHS = ['/', '/api/v1/node', '/node-page.js', '/node-page.css'];

function webConfig(over: Partial<WebConfig>): WebConfig {
  return { tls: undefined, headers: [], users: new Map(), rateLimit: undefined, http2: false, files: [], ...over };
}

describe('serving the node page', () => {
  it('serves the shell, its script and style sheet and the JSON, each with the Content-Security-Policy', async () => {
    const url = await serve(stateWith(demoView()));
    const types: Record<string, RegExp> = { '/': /^text\/html/, '/api/v1/node': /^application\/json/, '/node-page.js': /^text\/javascript/, '/node-page.css': /^text\/css/ };
    for (const p of PAGE_PATHS) {
      const res = await fetch(url + p);
      expect(res.status, p).toBe(200);
      expect(res.headers.get('content-type'), p).toMatch(types[p]!);
      expect(res.headers.get('content-security-policy'), p).toBe(NODE_PAGE_CSP);
      expect(res.headers.get('x-content-type-options'), p).toBe('nosniff');
    }
    expect(NODE_PAGE_CSP).toMatch(/default-src 'none'/);
    expect(NODE_PAGE_CSP).not.toMatch(/unsafe-inline|unsafe-eval|https?:|\*/);
    expect(await (await fetch(`${url}/node-page.js`)).text()).toBe(NODE_PAGE_SCRIPT);
    expect(await (await fetch(`${url}/node-page.css`)).text()).toBe(NODE_PAGE_CSS);
    const view = (await (await fetch(`${url}/api/v1/node`)).json()) as NodeView;
    expect(view.gpus.map((g) => [g.index, g.temperatureCelsius])).toEqual([[0, 50]]);
  });

  it('loads only its own files: no other origin, no inline script or style in the shell', async () => {
    const url = await serve(stateWith(demoView()));
    const html = await (await fetch(`${url}/`)).text();
    const refs = [...html.matchAll(/\s(?:src|href)="([^"]*)"/g)].map((m) => m[1]!);
    expect(refs).toEqual(expect.arrayContaining(['node-page.css', 'node-page.js', 'api/v1/node']));
    for (const r of refs) expect(r, r).toMatch(/^(?:[a-z0-9./-]+|data:,)$/); // relative, or the empty data: icon
    expect([...html.matchAll(/<script\b([^>]*)>([\s\S]*?)<\/script>/g)].map((m) => [m[1]!.includes('src='), m[2]])).toEqual([[true, '']]);
    expect(html).not.toMatch(/<style|\sstyle=|\son[a-z]+=/i);
  });

  it('escapes what it writes into the page for browsers without JavaScript', async () => {
    const url = await serve(stateWith(demoView('<img src=x onerror=alert(1)>')));
    const html = await (await fetch(`${url}/`)).text();
    expect(html).toContain('&lt;img src=x onerror=alert(1)&gt;');
    expect(html).not.toContain('<img');
  });

  it('is behind basic auth and the configured headers like /metrics; the probes are not', async () => {
    const guard = new RequestGuard();
    guard.apply(webConfig({ users: new Map([['alice', bcrypt.hashSync('pw', 4)]]), headers: [['Content-Security-Policy', "default-src 'none'"], ['X-Frame-Options', 'deny']] }));
    const url = await serve(stateWith(demoView()), guard);
    const auth = { Authorization: `Basic ${Buffer.from('alice:pw').toString('base64')}` };
    for (const p of [...PAGE_PATHS, '/metrics']) {
      expect((await fetch(url + p)).status, p).toBe(401);
      expect((await fetch(url + p, { headers: { Authorization: `Basic ${Buffer.from('alice:nope').toString('base64')}` } })).status, p).toBe(401);
      const res = await fetch(url + p, { headers: auth });
      expect(res.status, p).toBe(200);
      expect(res.headers.get('x-frame-options'), p).toBe('deny');
      // the web config's policy, not the page's
      if (p !== '/metrics') expect(res.headers.get('content-security-policy'), p).toBe("default-src 'none'");
    }
    expect((await fetch(`${url}/readyz`)).status).toBe(200);
  });

  it('counts against the rate limit and --web.max-requests like every other page', async () => {
    const guard = new RequestGuard();
    guard.apply(webConfig({ rateLimit: { intervalMs: 60_000, burst: 2 } }));
    const url = await serve(stateWith(demoView()), guard);
    expect((await fetch(`${url}/`)).status).toBe(200);
    expect((await fetch(`${url}/api/v1/node`)).status).toBe(200);
    expect((await fetch(`${url}/api/v1/node`)).status).toBe(429);
    expect((await fetch(`${url}/node-page.js`)).status).toBe(429);

    const busyGuard = new RequestGuard(1);
    let release!: () => void;
    let entered!: () => void;
    const inFresh = new Promise<void>((r) => (entered = r));
    const held = new Promise<void>((r) => (release = r));
    const busyUrl = await serve(stateWith(demoView(), { fresh: () => (entered(), held) }), busyGuard);
    const first = fetch(`${busyUrl}/api/v1/node`);
    await inFresh;
    expect((await fetch(`${busyUrl}/api/v1/node`)).status).toBe(503);
    release();
    expect((await first).status).toBe(200);
  });

  it('answers /api/v1/node and / only once the newest sample is rendered (fresh), as /metrics does', async () => {
    let rendered = 40;
    let release!: () => void;
    let entered!: () => void;
    const inFresh = new Promise<void>((r) => (entered = r));
    const held = new Promise<void>((r) => (release = r));
    let viewsAsked = 0;
    const views = new NodeViews(capturingLogger().logger);
    const state = stateWith(
      (nowMs) => {
        viewsAsked++;
        views.observe(ctxOf(sampleAt(0, [gpu(0, { gpuTempCelsius: rendered })])));
        return views.view(nowMs, READY);
      },
      {
        fresh: () => {
          entered();
          return held.then(() => {
            rendered = 41; // the render fresh() waited for
          });
        },
      },
    );
    const url = await serve(state);
    const pending = fetch(`${url}/api/v1/node`);
    await inFresh;
    expect(viewsAsked).toBe(0);
    release();
    const view = (await (await pending).json()) as NodeView;
    expect(view.gpus[0]!.temperatureCelsius).toBe(41);
  });

  it('answers 404 for /api/v1/node where no node view is wired, and keeps 404 for unknown paths', async () => {
    const url = await serve({ body: () => Buffer.from(''), ready: () => ({ ok: true, reason: '' }), latestSample: () => undefined, version: '1' });
    expect((await fetch(`${url}/api/v1/node`)).status).toBe(404);
    expect((await fetch(`${url}/`)).status).toBe(200);
    expect((await fetch(`${url}/api/v1/nodes`)).status).toBe(404);
  });
});

describe('the page script', () => {
  it('is valid JavaScript that builds the page with DOM calls only: no HTML parsing of data, no eval, one same-origin fetch', () => {
    expect(() => new vm.Script(NODE_PAGE_SCRIPT, { filename: 'node-page.js' })).not.toThrow();
    expect(NODE_PAGE_SCRIPT).not.toMatch(/innerHTML|outerHTML|insertAdjacentHTML|document\.write|\beval\(|new Function|setAttribute\(\s*'style'/);
    expect([...NODE_PAGE_SCRIPT.matchAll(/fetch\(([^,)]+)/g)].map((m) => m[1])).toEqual(["'api/v1/node'"]);
    expect(NODE_PAGE_SCRIPT).not.toMatch(/https?:\/\//);
    expect(NODE_PAGE_CSS).not.toMatch(/@import|url\(/);
  });
});
