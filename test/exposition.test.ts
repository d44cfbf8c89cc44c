import { gunzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { escapeLabelValue, formatValue, labelString, renderFamilies } from '../src/metrics/exposition.js';

describe('label escaping', () => {
  it('escapes backslash, quote and newline and keeps UTF-8', () => {
    expect(escapeLabelValue('a\\b"c\nd')).toBe('a\\\\b\\"c\\nd');
    expect(escapeLabelValue('grüße-π-训练')).toBe('grüße-π-训练');
    expect(labelString([['pod', 'x"y'], ['ns', 'a\\']])).toBe('pod="x\\"y",ns="a\\\\"');
  });
});

describe('value formatting', () => {
  it('writes NaN and infinities as Prometheus expects', () => {
    expect(formatValue(NaN)).toBe('NaN');
    expect(formatValue(Infinity)).toBe('+Inf');
    expect(formatValue(-Infinity)).toBe('-Inf');
    expect(formatValue(1.5)).toBe('1.5');
    expect(formatValue(81559)).toBe('81559');
  });
});

describe('renderFamilies', () => {
  const fams = [
    { name: 'DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION', type: 'counter' as const, help: 'Energy\\n "x"', series: [{ labels: 'gpu="0"', value: 5 }] },
    { name: 'gpu_busy_seconds_total', type: 'counter' as const, help: 'Busy', series: [{ labels: '', value: 2 }] },
    { name: 'empty', type: 'gauge' as const, help: 'none', series: [] },
  ];

  it('renders text format 0.0.4 and drops empty families', () => {
    const text = renderFamilies(fams, 'text');
    expect(text).toContain('# TYPE DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION counter\n');
    expect(text).toContain('# HELP DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION Energy\\\\n "x"\n');
    expect(text).toContain('DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION{gpu="0"} 5\n');
    expect(text).toContain('gpu_busy_seconds_total 2\n');
    expect(text).not.toContain('empty');
  });

  it('renders OpenMetrics: _total counters keep a suffix-less family, others become unknown', () => {
    const om = renderFamilies(fams, 'openmetrics');
    expect(om).toContain('# TYPE gpu_busy_seconds counter\n');
    expect(om).toContain('gpu_busy_seconds_total 2\n');
    expect(om).toContain('# TYPE DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION unknown\n');
    expect(om).toContain('# HELP DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION Energy\\\\n \\"x\\"\n');
  });
});

describe('unit conversion', () => {
  it('writes scaled values without binary noise', async () => {
    const { buildGpuFamilies } = await import('../src/metrics/gpu-series.js');
    const { renderContext } = await import('../src/metrics/render-context.js');
    const sample = {
      takenAtMs: 0, monotonicMs: 0, driverVersion: 'd', lostGpus: [], collectors: [], tickSeconds: 0,
      gpus: [{ index: 0, uuid: 'GPU-x', name: 'n', pciBusId: 'p', minor: 0, mig: [], processes: [], values: { powerUsageMilliwatts: 75198 } }],
    };
    const fams = buildGpuFamilies(renderContext({ sample, scheme: 'dcgm', hostname: 'h' }));
    expect(fams.find((f) => f.name === 'DCGM_FI_DEV_POWER_USAGE')!.series[0]!.value).toBe(75.198);
  });
});

describe('scrape cache', () => {
  const many = (n: number) => [{ name: 'm', type: 'gauge' as const, help: 'h', series: Array.from({ length: n }, (_, i) => ({ labels: `i="${i}"`, value: i })) }, { name: 'c_total', type: 'counter' as const, help: 'h', series: [{ labels: '', value: 1 }] }];

  it('renders a large sample in slices, letting the event loop run in between', async () => {
    const { ScrapeCache } = await import('../src/metrics/scrape-cache.js');
    const cache = new ScrapeCache();
    let ranDuringRender = false;
    // queued before the render starts: it runs before the render ends only if the render yields between slices
    setImmediate(() => (ranDuringRender = true));
    const done = cache.update(many(3000));
    await done;
    expect(ranDuringRender).toBe(true);
    expect(cache.body('text', false).toString().split('\n').filter((l) => l.startsWith('m{'))).toHaveLength(3000);
  });

  it('renders OpenMetrics from the first scrape that asks for it, then with every sample', async () => {
    const { ScrapeCache } = await import('../src/metrics/scrape-cache.js');
    const cache = new ScrapeCache();
    await cache.update(many(1));
    const om = cache.body('openmetrics', false).toString();
    expect(om).toContain('# TYPE c counter\nc_total 1\n');
    expect(om.endsWith('# EOF\n')).toBe(true);
    await cache.update(many(2));
    expect(cache.body('openmetrics', false).toString()).toContain('m{i="1"} 1');
    expect(gunzipSync(cache.body('openmetrics', true)).toString()).toBe(cache.body('openmetrics', false).toString());
  });
});
