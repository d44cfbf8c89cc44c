import { describe, expect, it } from 'vitest';
import { EventTally } from '../src/events/event-tally.js';
import { xidMessage } from '../src/events/xid.js';
import { EventType } from '../src/native/nvml-constants.js';

const XID = Number(EventType.XID_CRITICAL);
const G0 = 'GPU-a4c123b1-612d-d272-d137-1c17149d4395';
const G1 = 'GPU-36b3216f-daee-b975-729f-ae923d5a4fd1';

describe('event tally', () => {
  it('counts Xids per device and code across repeated events, and all Xids per GPU', () => {
    const t = new EventTally();
    t.record({ uuid: G0, eventType: XID, data: 79, atMs: 1 });
    t.record({ uuid: G0, eventType: XID, data: 79, atMs: 2 });
    t.record({ uuid: G0, eventType: XID, data: 31, atMs: 3 });
    t.record({ uuid: G0, eventType: XID, data: 31, gpuInstanceId: 2, computeInstanceId: 0, atMs: 4 });
    t.record({ uuid: G1, eventType: XID, data: 48, atMs: 5 });
    expect(t.xidCounts().map((c) => [c.uuid === G0 ? 'g0' : 'g1', c.gpuInstanceId ?? '-', c.xid, c.count])).toEqual([
      ['g0', '-', 79, 2],
      ['g0', '-', 31, 1],
      ['g0', 2, 31, 1],
      ['g1', '-', 48, 1],
    ]);
    expect(t.xidTotal(G0)).toBe(4);
    expect(t.xidTotal(G1)).toBe(1);
    expect(t.xidTotal('GPU-other')).toBe(0);
    expect(t.lastXidOf(G0)).toEqual({ xid: 31, atMs: 4 });
  });

  it('counts ECC and GPU-unavailable events apart from Xids, and ignores unnamed devices', () => {
    const t = new EventTally();
    t.record({ uuid: G0, eventType: Number(EventType.DOUBLE_BIT_ECC), data: 0, atMs: 1 });
    t.record({ uuid: G0, eventType: Number(EventType.DOUBLE_BIT_ECC), data: 0, atMs: 2 });
    t.record({ uuid: G0, eventType: Number(EventType.GPU_UNAVAILABLE), data: 0, atMs: 3 });
    t.record({ uuid: '', eventType: XID, data: 79, atMs: 4 });
    t.record({ uuid: G0, eventType: Number(EventType.PSTATE), data: 0, atMs: 5 });
    expect(t.healthCount(G0, 'double_bit_ecc')).toBe(2);
    expect(t.healthCount(G0, 'gpu_unavailable')).toBe(1);
    expect(t.healthCount(G0, 'single_bit_ecc')).toBe(0);
    expect(t.xidTotal(G0)).toBe(0);
    expect(t.xidCounts()).toEqual([]);
  });

  it('describes common Xids and falls back for unknown ones', () => {
    expect(xidMessage(79)).toBe('GPU has fallen off the bus');
    expect(xidMessage(48)).toBe('Double-bit ECC error');
    expect(xidMessage(9999)).toContain('Xid 9999');
  });
});

describe('the event poller on the sampling thread, against the simulated library', () => {
  it('delivers Xids with their GPU and MIG instance once each, registers again after a failed call, and frees the set at stop', async () => {
    const { simulatedNode } = await import('../src/sim/harness.js');
    const { EventWatcher } = await import('../src/events/event-watcher.js');
    const { Sampler } = await import('../src/sampler/sampler.js');
    const pino = (await import('pino')).default;
    const { Writable } = await import('node:stream');
    const node = simulatedNode('test/fixtures/events.sim');
    process.env.KGE_SIM_STATE = node.statePath;
    const logs: string[] = [];
    const logger = pino({ level: 'info' }, new Writable({ write: (c: Buffer, _e, cb) => (logs.push(c.toString()), cb()) }));
    const sampler = new Sampler({ intervalMs: 200, initRetryMs: 1000, libraryPath: node.libraryPath, collectors: {}, logger, events: true });
    const watcher = new EventWatcher(logger);
    const reports: string[] = [];
    sampler.on('events', (m: import('../src/events/protocol.js').FromEventWorker) => {
      reports.push(m.type);
      watcher.handle(m);
    });
    const events: import('../src/events/protocol.js').GpuEvent[] = [];
    watcher.on('event', (e) => events.push(e));
    sampler.start();
    const deadline = Date.now() + 15_000;
    while (!events.some((e) => e.data === 79) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));

    expect(events.map((e) => [e.uuid.slice(0, 8), e.eventType, e.data, e.gpuInstanceId ?? '-'])).toEqual([
      ['GPU-1111', XID, 13, '-'],
      ['GPU-1111', XID, 13, '-'],
      ['GPU-6666', XID, 31, 2],
      ['GPU-1111', Number(EventType.DOUBLE_BIT_ECC), 0, '-'],
      ['GPU-1111', XID, 79, '-'], // after registering again; the earlier events are not delivered twice
    ]);
    expect(watcher.restarts).toBeGreaterThanOrEqual(1);
    expect(watcher.up).toBe(true);
    expect(watcher.registered.map((g) => g.index)).toEqual([0, 1]);
    expect(logs.filter((l) => l.includes('NVML event watch failed')).length).toBe(1); // once, not per retry
    // registered, failed in the fault window, registered again after the backoff: in that order
    expect(reports.filter((t) => t !== 'event').slice(0, 3)).toEqual(['ready', 'failed', 'ready']);

    await sampler.stop();
    expect(reports.at(-1)).toBe('stopped');
    expect(watcher.up).toBe(false);
  }, 30_000);
});

describe('event watcher', () => {
  it('counts every event in its tally, and logs an Xid storm as one line per GPU and code a minute', async () => {
    const { EventWatcher } = await import('../src/events/event-watcher.js');
    const pino = (await import('pino')).default;
    const { Writable } = await import('node:stream');
    const logs: { msg: string; xid?: number; uuid?: string }[] = [];
    const watcher = new EventWatcher(pino({}, new Writable({ write: (c: Buffer, _e, cb) => (logs.push(JSON.parse(c.toString())), cb()) })));
    const xid = (uuid: string, data: number, atMs: number) => watcher.handle({ type: 'event', event: { uuid, eventType: XID, data, atMs } });
    for (let i = 0; i < 100; i++) xid(G0, 13, 1000 + i * 100); // 100 Xid 13 within 10 s
    xid(G0, 31, 5000); // another code: its own line
    xid(G1, 13, 5000); // another GPU: its own line
    xid(G0, 13, 61_000); // a minute after the first line: a new line
    watcher.handle({ type: 'event', event: { uuid: G0, eventType: Number(EventType.DOUBLE_BIT_ECC), data: 0, atMs: 61_000 } });
    expect(watcher.tally.xidTotal(G0)).toBe(102);
    expect(watcher.tally.healthCount(G0, 'double_bit_ecc')).toBe(1);
    const xidLines = logs.filter((l) => l.msg === 'Xid error');
    expect(xidLines.map((l) => [l.uuid === G0 ? 'g0' : 'g1', l.xid])).toEqual([['g0', 13], ['g0', 31], ['g1', 13], ['g0', 13]]);
    expect(logs.filter((l) => l.msg === 'GPU health event')).toHaveLength(1);
  });
});

describe('events and lost GPUs on /metrics', () => {
  it('counts Xids per GPU and code (MIG events on the instance), keeps the last Xid, and marks a lost GPU', async () => {
    const { mkdtempSync, readFileSync, writeFileSync } = await import('node:fs');
    const os = await import('node:os');
    const path = await import('node:path');
    const { simulatedNode } = await import('../src/sim/harness.js');
    const { startInProcess } = await import('./support/in-process.js');
    const { scrape, seriesOf, waitFor } = await import('./support/exporter-process.js');
    const node = simulatedNode('test/fixtures/events.sim');
    // later event times (sim time counts from the first nvmlInit of this process, in the test above), no wait fault, and GPU 0 falls off the bus with its Xid 79
    const text = readFileSync(node.statePath, 'utf8')
      .replace(/^fault .*$/m, '')
      .replace(/^(event \d \w+ \d+ )(\d+)/gm, (_m, head: string, at: string) => `${head}${Number(at) + 9000}`)
      .concat('fault * 0 15 14100\n');
    const statePath = path.join(mkdtempSync(path.join(os.tmpdir(), 'kge-events-')), 'events.sim');
    writeFileSync(statePath, text);
    process.env.KGE_SIM_STATE = statePath;
    const { exporter, url } = await startInProcess({ nvmlLibrary: node.libraryPath, sampleIntervalMs: 200 });
    try {
      await waitFor(async () => seriesOf(await scrape(url), 'gpu_answering').some((s) => s.value === 0), 20_000, 'GPU 0 lost');
      await waitFor(async () => seriesOf(await scrape(url), 'gpu_xid_events_total').find((s) => s.labels.gpu === '0')?.value === 3, 5000, 'three Xids on GPU 0');
      const m = await scrape(url);
      const g0 = (s: { labels: Record<string, string> }) => s.labels.UUID === 'GPU-11111111-2222-3333-4444-555555555555';
      expect(seriesOf(m, 'gpu_answering').map((s) => [s.labels.gpu, s.value])).toEqual([['0', 0], ['1', 1]]);
      expect(seriesOf(m, 'gpu_xid_errors_total').filter(g0).map((s) => [s.labels.xid, s.labels.err_msg, s.value])).toEqual([
        ['13', 'Graphics engine exception (usually an application error)', 2],
        ['79', 'GPU has fallen off the bus', 1],
      ]);
      const mig = seriesOf(m, 'gpu_xid_errors_total').filter((s) => s.labels.GPU_I_ID === '2');
      expect(mig.map((s) => [s.labels.gpu, s.labels.xid, s.value])).toEqual([['1', '31', 1]]);
      expect(seriesOf(m, 'DCGM_FI_DEV_XID_ERRORS').filter(g0).map((s) => [s.labels.err_code, s.value])).toEqual([['79', 79]]);
      expect(seriesOf(m, 'gpu_health_events_total').filter((s) => g0(s) && s.labels.event === 'double_bit_ecc')[0]?.value).toBe(1);
      expect(seriesOf(m, 'gpu_xid_events_total').find((s) => s.labels.gpu === '1')?.value).toBe(1);
      expect(seriesOf(m, 'DCGM_FI_DEV_GPU_TEMP').map((s) => s.labels.gpu)).toEqual(['1']); // the other GPU keeps reporting
      expect(seriesOf(m, 'kube_gpu_exporter_event_watch_up')[0]?.value).toBe(1);
    } finally {
      await exporter.stop();
    }
  }, 40_000);
});

describe('GPUs seen since start', () => {
  it('marks a GPU that drops out of the device list as not answering, once, and back when it returns', async () => {
    const { SeenGpus } = await import('../src/health/seen-gpus.js');
    const pino = (await import('pino')).default;
    const { Writable } = await import('node:stream');
    const logs: string[] = [];
    const seen = new SeenGpus(pino({}, new Writable({ write: (c: Buffer, _e, cb) => (logs.push(c.toString()), cb()) })));
    const gpu = (index: number, uuid: string) => ({ index, uuid, name: 'n', pciBusId: `p${index}`, minor: index, values: {}, mig: [], processes: [] });
    const sample = (gpus: ReturnType<typeof gpu>[]) => ({ takenAtMs: 0, monotonicMs: 0, driverVersion: 'd', gpus, lostGpus: [], collectors: [], tickSeconds: 0 });
    seen.observe(sample([gpu(0, G0), gpu(1, G1)]));
    seen.observe(sample([gpu(0, G0)])); // device count dropped: no error, just gone
    seen.observe(sample([gpu(0, G0)]));
    expect(seen.all().map((s) => [s.gpu.uuid, s.answering])).toEqual([[G0, true], [G1, false]]);
    expect(logs.filter((l) => l.includes('GPU missing')).length).toBe(1);
    expect(logs.find((l) => l.includes('GPU missing'))).toContain('no longer listed by NVML');
    seen.observe(sample([gpu(0, G0), gpu(1, G1)]));
    expect(seen.all().every((s) => s.answering)).toBe(true);
    expect(logs.filter((l) => l.includes('GPU answering again')).length).toBe(1);
  });
});
