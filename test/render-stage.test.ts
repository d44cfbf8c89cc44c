import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import type { Exporter } from '../src/exporter.js';
import { familyBuilders } from '../src/metrics/builders.js';
import { ProcessMetrics } from '../src/metrics/process-metrics.js';
import { deviceError, renderContext, type RenderContext } from '../src/metrics/render-context.js';
import { RenderStage, type FamilyBuilder } from '../src/metrics/render-stage.js';
import { ScrapeCache } from '../src/metrics/scrape-cache.js';
import type { GpuSample, NodeSample } from '../src/sample.js';
import { replaceScenarioFile } from '../src/sim/scenario-file.js';
import { scrape, seriesOf, waitFor } from './support/exporter-process.js';
import { capturingLogger, startScenarioInProcess, type LogRecord } from './support/in-process.js';

/**
 * The render stage contains every builder: one that throws keeps its last good series, the
 * rest of /metrics renders as usual, the failure is counted and logged once each way.
 */


const gpu = (index: number, values: GpuSample['values'], uuid = `GPU-${index}0000000-0000-0000-0000-000000000000`): GpuSample => ({
  index, uuid, name: 'NVIDIA H100 80GB HBM3', pciBusId: `00000000:0${index}:00.0`, minor: index, values, mig: [], processes: [],
});
const sampleOf = (gpus: GpuSample[], takenAtMs = 1_700_000_000_000): NodeSample => ({
  takenAtMs, monotonicMs: 0, driverVersion: '550.54.15', gpus, lostGpus: [], collectors: [], tickSeconds: 0.001,
});
const ctxOf = (s: NodeSample): RenderContext => renderContext({ sample: s, scheme: 'dcgm', hostname: 'node-a' });

/**
 * A stand-in for a builder with a bug that only an odd value from a real driver brings out:
 * it trips on a NaN, on a number past 2^53, and on an empty UUID, naming the device it was on.
 */
const oddValueBuilder: FamilyBuilder = {
  name: 'odd',
  build(ctx) {
    const series = [];
    for (const g of ctx.sample?.gpus ?? []) {
      try {
        for (const v of Object.values(g.values)) {
          if (Number.isNaN(v)) throw new RangeError('cannot convert NaN');
          if (v !== undefined && v > Number.MAX_SAFE_INTEGER) throw new RangeError(`${v} is past 2^53`);
        }
        if (!g.uuid) throw new TypeError("cannot read properties of undefined (reading 'toLowerCase')");
        series.push({ labels: `gpu="${g.index}"`, value: 1 });
      } catch (err) {
        throw deviceError(g.uuid || `gpu ${g.index}`, err);
      }
    }
    return [{ name: 'odd_gpus_checked', type: 'gauge', help: 'h', series }];
  },
};

const failures = (text: string, builder: string): number | undefined => seriesOf(text, 'kube_gpu_exporter_render_failures_total').find((s) => s.labels.builder === builder)?.value;
const failing = (logs: LogRecord[], builder: string) => logs.filter((l) => l.msg.startsWith('render step failing') && l.builder === builder);
const recovered = (logs: LogRecord[], builder: string) => logs.filter((l) => l.msg === 'render step recovered' && l.builder === builder);

describe('render stage', () => {
  it.each([
    ['a NaN', { gpuTempCelsius: Number.NaN }, undefined, 'cannot convert NaN'],
    ['a number past 2^53', { totalEnergyMillijoules: 1e19 }, undefined, 'is past 2^53'],
    ['an empty UUID', { gpuTempCelsius: 40 }, '', "reading 'toLowerCase'"],
  ])('one GPU with %s: that builder keeps its last good series, every other family renders the new sample', async (_what, oddValues, oddUuid, message) => {
    const { logger, logs } = capturingLogger();
    const cache = new ScrapeCache();
    const stage = new RenderStage([...familyBuilders(), oddValueBuilder], cache, logger);
    const good = sampleOf([gpu(0, { gpuTempCelsius: 40 }), gpu(1, { gpuTempCelsius: 41 })]);
    await stage.render(() => ctxOf(good));
    const before = cache.body('text', false).toString();
    expect(seriesOf(before, 'odd_gpus_checked')).toHaveLength(2);

    const odd = sampleOf([gpu(0, { gpuTempCelsius: 50 }), gpu(1, oddValues, oddUuid)], good.takenAtMs + 1000);
    await stage.render(() => ctxOf(odd));
    await stage.render(() => ctxOf({ ...odd, takenAtMs: odd.takenAtMs + 1000 }));
    const text = cache.body('text', false).toString();
    // the other families carry the new sample, the odd value rendered as the real builders write it
    expect(seriesOf(text, 'kube_gpu_exporter_last_sample_timestamp_seconds')[0]!.value).toBe((odd.takenAtMs + 1000) / 1000);
    expect(seriesOf(text, 'DCGM_FI_DEV_GPU_TEMP').find((s) => s.labels.gpu === '0')!.value).toBe(50);
    expect(seriesOf(text, 'kube_gpu_exporter_collector_success')).toEqual(seriesOf(before, 'kube_gpu_exporter_collector_success'));
    expect(seriesOf(text, 'process_cpu_user_seconds_total')).toHaveLength(1);
    // the failing builder: its last good series, counted per render, one log line naming the device
    expect(seriesOf(text, 'odd_gpus_checked')).toEqual(seriesOf(before, 'odd_gpus_checked'));
    expect(failures(text, 'odd')).toBe(2);
    expect(failures(text, 'gpu')).toBe(0);
    expect(failing(logs, 'odd')).toHaveLength(1);
    const device = oddUuid === '' ? 'gpu 1' : odd.gpus[1]!.uuid;
    expect(failing(logs, 'odd')[0]).toMatchObject({ level: 50, device, err: expect.stringContaining(message) });

    await stage.render(() => ctxOf({ ...good, takenAtMs: odd.takenAtMs + 2000 }));
    await stage.render(() => ctxOf({ ...good, takenAtMs: odd.takenAtMs + 3000 }));
    const after = cache.body('text', false).toString();
    expect(failures(after, 'odd')).toBe(2);
    expect(seriesOf(after, 'odd_gpus_checked')).toHaveLength(2);
    expect(recovered(logs, 'odd')).toHaveLength(1);
    expect(failing(logs, 'odd')).toHaveLength(1);
  });

  it('a builder that always throws, before it ever succeeded: no series of its own, the rest renders, every render counts', async () => {
    const { logger, logs } = capturingLogger();
    const cache = new ScrapeCache();
    const broken: FamilyBuilder = {
      name: 'broken',
      build: () => {
        throw new Error('always');
      },
    };
    const stage = new RenderStage([broken, ...familyBuilders()], cache, logger);
    for (let i = 0; i < 5; i++) await stage.render(() => ctxOf(sampleOf([gpu(0, { gpuTempCelsius: 40 + i })], 1000 * i)));
    const text = cache.body('text', false).toString();
    expect(seriesOf(text, 'DCGM_FI_DEV_GPU_TEMP')[0]!.value).toBe(44);
    expect(failures(text, 'broken')).toBe(5);
    expect(failing(logs, 'broken')).toHaveLength(1);
    expect(failing(logs, 'broken')[0]!.device).toBeUndefined();
  });

  it('a builder that returns something other than families fails in its own guard, not in the exposition', async () => {
    const { logger, logs } = capturingLogger();
    const cache = new ScrapeCache();
    const wrong: FamilyBuilder[] = [
      { name: 'not_a_list', build: () => ({}) as never },
      { name: 'string_value', build: () => [{ name: 'x', type: 'gauge', help: 'h', series: [{ labels: '', value: '1' as unknown as number }] }] },
      { name: 'rejects', build: () => Promise.reject(new Error('async failure')) },
    ];
    const stage = new RenderStage([...familyBuilders(), ...wrong], cache, logger);
    await stage.render(() => ctxOf(sampleOf([gpu(0, { gpuTempCelsius: 40 })])));
    await stage.render(() => ctxOf(sampleOf([gpu(0, { gpuTempCelsius: 40 })])));
    const text = cache.body('text', false).toString();
    for (const name of ['not_a_list', 'string_value', 'rejects']) expect(failures(text, name), name).toBe(2);
    expect(failures(text, 'exposition')).toBe(0);
    expect(seriesOf(text, 'DCGM_FI_DEV_GPU_TEMP')).toHaveLength(1);
    expect(logs.filter((l) => l.msg.startsWith('render step failing')).map((l) => l.builder).sort()).toEqual(['not_a_list', 'rejects', 'string_value']);
  });

  it('a context that cannot be built keeps every builder at its last good output; renders after it go on', async () => {
    const { logger, logs } = capturingLogger();
    const cache = new ScrapeCache();
    const stage = new RenderStage(familyBuilders(), cache, logger);
    await stage.render(() => ctxOf(sampleOf([gpu(0, { gpuTempCelsius: 40 })])));
    await stage.render(() => {
      throw new Error('no context');
    });
    await stage.render(() => ctxOf(sampleOf([gpu(0, { gpuTempCelsius: 45 })])));
    const text = cache.body('text', false).toString();
    expect(seriesOf(text, 'DCGM_FI_DEV_GPU_TEMP')[0]!.value).toBe(45);
    expect(failures(text, 'context')).toBe(1);
    expect(failing(logs, 'context')).toHaveLength(1);
    expect(recovered(logs, 'context')).toHaveLength(1);
  });

  it('samples that arrive during a render coalesce into the newest; each caller resolves once it is served', async () => {
    const { logger } = capturingLogger();
    const cache = new ScrapeCache();
    const built: number[] = [];
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const slow: FamilyBuilder = {
      name: 'slow',
      build: async (ctx) => {
        built.push(ctx.sample!.takenAtMs);
        if (built.length === 1) await gate;
        return [];
      },
    };
    const stage = new RenderStage([slow, ...familyBuilders()], cache, logger);
    const first = stage.render(() => ctxOf(sampleOf([gpu(0, {})], 1000)));
    const later = [2000, 3000, 4000].map((t) => stage.render(() => ctxOf(sampleOf([gpu(0, {})], t))));
    release();
    await Promise.all([first, ...later]);
    expect(built).toEqual([1000, 4000]);
    expect(seriesOf(cache.body('text', false).toString(), 'kube_gpu_exporter_last_sample_timestamp_seconds')[0]!.value).toBe(4);
  });
});

describe('rendering on demand', () => {
  it('a scrape is answered when the sample newest at its arrival is served, even while every render is slower than the sampling', async () => {
    const { logger } = capturingLogger();
    const cache = new ScrapeCache();
    const built: number[] = [];
    let at = 1000;
    // each render notes a newer sample before it ends, as a 100 ms sampling interval does to a 150 ms render
    const slow: FamilyBuilder = {
      name: 'slow',
      build: async (ctx) => {
        built.push(ctx.sample!.takenAtMs);
        const t = (at += 1000);
        stage.invalidate(() => ctxOf(sampleOf([gpu(0, {})], t)));
        await new Promise((r) => setImmediate(r));
        return [];
      },
    };
    const stage: RenderStage = new RenderStage([slow, ...familyBuilders()], cache, logger);
    stage.invalidate(() => ctxOf(sampleOf([gpu(0, {})], 1000)));
    await stage.fresh();
    expect(built).toEqual([1000]);
    // the sample noted during that render is rendered by the next scrape, which then resolves
    await stage.fresh();
    expect(built).toEqual([1000, 2000]);
  });

  it('a sample only marks the exposition out of date; the next scrape renders it once, however many scrapes wait', async () => {
    const { logger } = capturingLogger();
    const cache = new ScrapeCache();
    const built: number[] = [];
    const counting: FamilyBuilder = { name: 'counting', build: (ctx) => (built.push(ctx.sample!.takenAtMs), []) };
    const stage = new RenderStage([counting, ...familyBuilders()], cache, logger);
    stage.invalidate(() => ctxOf(sampleOf([gpu(0, {})], 1000)));
    stage.invalidate(() => ctxOf(sampleOf([gpu(0, {})], 2000)));
    expect(built).toEqual([]);
    await Promise.all([stage.fresh(), stage.fresh(), stage.fresh()]);
    expect(built).toEqual([2000]);
    await stage.fresh(); // nothing new: no render
    expect(built).toEqual([2000]);
    expect(seriesOf(cache.body('text', false).toString(), 'kube_gpu_exporter_last_sample_timestamp_seconds')[0]!.value).toBe(2);
  });

  it('in the running exporter, samples nobody scrapes are not rendered, and a scrape gets the newest sample', async () => {
    const built: number[] = [];
    const counting: FamilyBuilder = { name: 'counting', build: (ctx) => (ctx.sample && built.push(ctx.sample.takenAtMs), []) };
    const { exporter, url } = await startScenarioInProcess('workstation', {}, { familyBuilders: [...familyBuilders(), counting] });
    try {
      await scrape(url);
      const rendered = built.length;
      for (let i = 0; i < 3; i++) await exporter.sampler.nextSample();
      expect(built.length).toBe(rendered);
      const newest = exporter.sampler.latest!.takenAtMs;
      const text = await scrape(url);
      expect(built.length).toBeGreaterThan(rendered); // (a sample arriving during that render is rendered too)
      expect(seriesOf(text, 'kube_gpu_exporter_last_sample_timestamp_seconds')[0]!.value).toBeGreaterThanOrEqual(newest / 1000);
    } finally {
      await exporter.stop();
    }
  });
});

describe('render failures in the running exporter', () => {
  let exporter: Exporter;
  let url: string;
  let logs: LogRecord[];
  let statePath: string;
  let original: string;

  beforeAll(async () => {
    ({ exporter, url, logs, statePath, original } = await startScenarioInProcess('h100x8', {}, { familyBuilders: [...familyBuilders(), oddValueBuilder] }));
  });
  afterAll(async () => {
    await exporter.stop();
  });
  afterEach(() => {
    vi.restoreAllMocks();
    replaceScenarioFile(statePath, original);
  });

  const sampleTime = (text: string): number => seriesOf(text, 'kube_gpu_exporter_last_sample_timestamp_seconds')[0]!.value;
  /** Scrapes until the served sample is newer than the one in `text`, `n` times over. */
  async function newerSamples(text: string, n: number): Promise<string> {
    let body = text;
    for (let i = 0; i < n; i++) {
      const last = sampleTime(body);
      body = await waitFor(async () => {
        const t = await scrape(url);
        return sampleTime(t) > last ? t : undefined;
      }, 10_000, 'a newer sample');
    }
    return body;
  }

  it('a huge value from the driver on GPU 5 trips one builder: the rest of /metrics stays current, the counter counts, one log line each way', async () => {
    const before = await newerSamples(await scrape(url), 1);
    expect(seriesOf(before, 'odd_gpus_checked')).toHaveLength(8);
    replaceScenarioFile(statePath, `${original}\ngpu.5.mem_total 10000000000000000000\n`);
    const during = await waitFor(async () => {
      const t = await scrape(url);
      return (failures(t, 'odd') ?? 0) >= 3 ? t : undefined;
    }, 10_000, 'three failed renders');
    const uuid5 = seriesOf(before, 'DCGM_FI_DEV_GPU_TEMP').find((s) => s.labels.gpu === '5')!.labels.UUID;
    expect(seriesOf(during, 'DCGM_FI_DEV_FB_TOTAL').find((s) => s.labels.gpu === '5' && s.labels.GPU_I_ID === undefined)!.value).toBe(Math.round(1e19 / 1048576));
    expect(seriesOf(during, 'odd_gpus_checked')).toEqual(seriesOf(before, 'odd_gpus_checked'));
    expect(seriesOf(during, 'DCGM_FI_DEV_GPU_TEMP')).toHaveLength(8);
    expect(failing(logs, 'odd')).toHaveLength(1);
    expect(failing(logs, 'odd')[0]).toMatchObject({ device: uuid5, err: expect.stringContaining('past 2^53') });

    replaceScenarioFile(statePath, original);
    // renders happen for scrapes: scrape until one renders the repaired sample
    await waitFor(async () => (await scrape(url)) && recovered(logs, 'odd').length === 1, 10_000, 'the builder to recover');
    const after = await newerSamples(await scrape(url), 2);
    expect(failures(after, 'odd')).toBe(failures(await newerSamples(after, 1), 'odd'));
    expect(failing(logs, 'odd')).toHaveLength(1);
  });

  it('a throw in the process-metrics collection keeps the last process metrics; GPU families go on', async () => {
    const before = await newerSamples(await scrape(url), 1);
    const spy = vi.spyOn(ProcessMetrics.prototype, 'families').mockRejectedValue(new Error('prom-client collect failed'));
    const during = await waitFor(async () => {
      const t = await scrape(url);
      return (failures(t, 'process') ?? 0) >= 2 ? t : undefined;
    }, 10_000, 'two failed process-metrics collections');
    expect(spy).toHaveBeenCalled();
    expect(sampleTime(during)).toBeGreaterThan(sampleTime(before));
    expect(seriesOf(during, 'process_cpu_user_seconds_total')).toHaveLength(1);
    expect(seriesOf(during, 'DCGM_FI_DEV_GPU_TEMP')).toHaveLength(8);
    expect(failing(logs, 'process')).toHaveLength(1);
    expect(failing(logs, 'process')[0]!.err).toBe('prom-client collect failed');
    spy.mockRestore();
    await waitFor(async () => (await scrape(url)) && recovered(logs, 'process').length === 1, 10_000, 'process metrics to recover');
    expect(failing(logs, 'process')).toHaveLength(1);
  });
});
