import { execFileSync } from 'node:child_process';
import pino from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Collector } from '../src/collectors/collector.js';
import { collectorNamed, COLLECTORS } from '../src/collectors/index.js';
import { memoryErrorsCollector } from '../src/collectors/memory-errors.js';
import { migCollector } from '../src/collectors/mig.js';
import { nvlinkCollector } from '../src/collectors/nvlink.js';
import { renderFamilies, type RenderFamily } from '../src/metrics/exposition.js';
import { familyName, GPU_FAMILIES, NAMING_SCHEMES, type NamingScheme } from '../src/metrics/families.js';
import { buildGpuFamilies } from '../src/metrics/gpu-series.js';
import { renderContext } from '../src/metrics/render-context.js';
import { NvmlBinding, type FieldRequest, type FieldValueResult } from '../src/native/nvml-binding.js';
import { FieldId } from '../src/native/nvml-constants.js';
import type { GpuSample, NodeSample, ValueKey } from '../src/sample.js';
import { Sampler } from '../src/sampler/sampler.js';
import { Ticker } from '../src/sampler/tick.js';
import { fixtureScenario } from './support/fixture-scenario.js';

/**
 * The health collectors (ecc, memory_errors, pcie_errors, nvlink, throttle, violation) through a
 * real Ticker and the koffi binding on the simulated NVML, driven by test/fixtures/health-values.sim
 * (copied: tests change it while the library runs), and their families in both naming schemes.
 */
const scenario = fixtureScenario('health-values');
const { node, statePath } = scenario;
let nvml: NvmlBinding;

beforeAll(() => {
  process.env.KGE_SIM_STATE = statePath;
  nvml = new NvmlBinding({ libraryPath: node.libraryPath });
  nvml.init();
});
afterAll(() => nvml.shutdown());

/** Rewrites the scenario (each [from, to] replaced once) and has the library re-read it. */
const changeScenario = scenario.edit;

afterEach(() => scenario.restore());

const eccCollector = collectorNamed('ecc');
const pcieErrorsCollector = collectorNamed('pcie_errors');
const throttleCollector = collectorNamed('throttle');
const violationCollector = collectorNamed('violation');
const HEALTH: Collector[] = [migCollector, throttleCollector, violationCollector, eccCollector, memoryErrorsCollector, pcieErrorsCollector, nvlinkCollector];
const HEALTH_NAMES = ['throttle', 'violation', 'ecc', 'memory_errors', 'pcie_errors', 'nvlink'];
const HEALTH_KEYS: ValueKey[] = [
  'eccSbeVolatile', 'eccDbeVolatile', 'eccSbeAggregate', 'eccDbeAggregate',
  'retiredPagesSbe', 'retiredPagesDbe', 'retiredPagesPending',
  'remappedRowsCorrectable', 'remappedRowsUncorrectable', 'remappedRowsPending', 'remappedRowsFailure',
  'pcieReplays',
  'nvlinkCrcFlitErrors', 'nvlinkCrcDataErrors', 'nvlinkReplayErrors', 'nvlinkRecoveryErrors', 'nvlinkTxKiB', 'nvlinkRxKiB', 'nvlinkTotalKiB',
  'clocksEventReasons', 'powerViolationNs', 'thermalViolationNs',
];

function gpu(sample: NodeSample, index: number): GpuSample {
  const g = sample.gpus.find((x) => x.index === index);
  if (!g) throw new Error(`GPU ${index} missing from the sample`);
  return g;
}

function report(sample: NodeSample, name: string) {
  const r = sample.collectors.find((c) => c.name === name);
  if (!r) throw new Error(`no report for ${name}`);
  return r;
}

function healthValues(g: GpuSample): Partial<Record<ValueKey, number>> {
  return Object.fromEntries(HEALTH_KEYS.filter((k) => g.values[k] !== undefined).map((k) => [k, g.values[k]]));
}

/** The binding with fieldValues rewritten per entry (the rest is the real binding on the simulated library). */
function withFieldValues(rewrite: (r: FieldValueResult, gpuUuid: string) => FieldValueResult, calls?: (number | FieldRequest)[][]): NvmlBinding {
  const wrapped = Object.create(nvml) as NvmlBinding;
  wrapped.fieldValues = (device, fields) => {
    calls?.push([...fields]);
    const uuid = nvml.uuid(device);
    return nvml.fieldValues(device, fields).map((r) => rewrite(r, uuid));
  };
  return wrapped;
}

const GPU0_VALUES = {
  eccSbeVolatile: 12,
  eccDbeVolatile: 1,
  eccSbeAggregate: 340,
  eccDbeAggregate: 2,
  retiredPagesSbe: 3,
  retiredPagesDbe: 1,
  retiredPagesPending: 1,
  remappedRowsCorrectable: 5,
  remappedRowsUncorrectable: 1,
  remappedRowsPending: 1,
  remappedRowsFailure: 0,
  pcieReplays: 7,
  nvlinkCrcFlitErrors: 21,
  nvlinkCrcDataErrors: 22,
  nvlinkReplayErrors: 23,
  nvlinkRecoveryErrors: 24,
  nvlinkTxKiB: 120_000,
  nvlinkRxKiB: 6_000_000,
  nvlinkTotalKiB: 6_120_000,
  clocksEventReasons: 0x44,
  powerViolationNs: 5e9,
  thermalViolationNs: 2.5e9,
};

describe('health collectors', () => {
  it('are registered, on by default, and only memory_errors is slow', () => {
    for (const name of HEALTH_NAMES) expect(COLLECTORS.find((c) => c.name === name)).toMatchObject({ defaultEnabled: true });
    expect(COLLECTORS.filter((c) => c.slow).map((c) => c.name)).toEqual(['memory_errors']);
  });

  it('read every health value of a GPU in NVML units', () => {
    const s = new Ticker(nvml, HEALTH).tick();
    for (const name of HEALTH_NAMES) expect(report(s, name)).toMatchObject({ success: true });
    expect(healthValues(gpu(s, 0))).toEqual(GPU0_VALUES);
  });

  it('leave out what a GPU does not support, and still succeed', () => {
    const s = new Ticker(nvml, HEALTH).tick();
    for (const name of HEALTH_NAMES) expect(report(s, name)).toMatchObject({ success: true });
    // no health key at all: every call NOT_SUPPORTED
    expect(healthValues(gpu(s, 1))).toEqual({});
    // no NVLink (link count 0): no NVLink values although the counters answer
    expect(healthValues(gpu(s, 3))).toEqual({ pcieReplays: 0, clocksEventReasons: 0 });
  });

  it('leave remapped rows out on a MIG-enabled GPU (NOT_SUPPORTED), keeping ECC and reasons', () => {
    const s = new Ticker(nvml, HEALTH).tick();
    const g2 = gpu(s, 2);
    expect(g2.values.migModeEnabled).toBe(1);
    expect(g2.mig).toHaveLength(1);
    expect(healthValues(g2)).toEqual({ eccSbeVolatile: 4, eccDbeVolatile: 0, eccSbeAggregate: 40, eccDbeAggregate: 0, clocksEventReasons: 0x1 });
    expect(g2.mig[0]!.values).not.toHaveProperty('eccSbeVolatile');
    expect(report(s, 'memory_errors')).toMatchObject({ success: true });
  });

  it('keep the other values when one field-value entry fails', () => {
    const faulty = withFieldValues((r, uuid) => (uuid.endsWith('0000') && r.fieldId === FieldId.RETIRED_PAGES_DBE ? { fieldId: r.fieldId, code: 999 } : r));
    const s = new Ticker(faulty, HEALTH).tick();
    const r = report(s, 'memory_errors');
    expect(r.success).toBe(false);
    expect(r.error).toContain('GPU 0');
    expect(r.error).toContain('NVML_ERROR_UNKNOWN');
    expect(r.error).toContain(`field ${FieldId.RETIRED_PAGES_DBE}`);
    const { retiredPagesDbe: _lost, ...rest } = GPU0_VALUES;
    expect(healthValues(gpu(s, 0))).toEqual(rest);
    // the other collectors and GPUs are untouched
    expect(report(s, 'ecc')).toMatchObject({ success: true });
    expect(healthValues(gpu(s, 2))).toMatchObject({ eccSbeAggregate: 40 });
  });

  it('drop a GPU whose field-value entry says GPU_IS_LOST, and only that GPU', () => {
    const lost = withFieldValues((r, uuid) => (uuid.endsWith('0000') && r.fieldId === FieldId.PCIE_REPLAY_COUNTER ? { fieldId: r.fieldId, code: 15 } : r));
    const s = new Ticker(lost, HEALTH).tick();
    expect(s.gpus.map((g) => g.index)).toEqual([1, 2, 3]);
    expect(s.lostGpus).toEqual([expect.objectContaining({ index: 0, error: expect.stringContaining('GPU_IS_LOST') })]);
    expect(report(s, 'pcie_errors')).toMatchObject({ success: true });
  });

  it('read remapped rows through nvmlDeviceGetRemappedRows where the driver lacks their field ids', () => {
    const remapFields = new Set<number>([FieldId.REMAPPED_ROWS_CORRECTABLE, FieldId.REMAPPED_ROWS_UNCORRECTABLE, FieldId.REMAPPED_ROWS_PENDING, FieldId.REMAPPED_ROWS_FAILURE]);
    // a driver older than a field id answers that entry with INVALID_ARGUMENT: absent, not an error
    const old = withFieldValues((r) => (remapFields.has(r.fieldId) ? { fieldId: r.fieldId, code: 2 } : r));
    const s = new Ticker(old, HEALTH).tick();
    expect(report(s, 'memory_errors')).toMatchObject({ success: true });
    expect(healthValues(gpu(s, 0))).toEqual(GPU0_VALUES);
    // MIG mode: the call is NOT_SUPPORTED too
    expect(gpu(s, 2).values).not.toHaveProperty('remappedRowsCorrectable');
  });

  it('read each collector\'s fields in one nvmlDeviceGetFieldValues call per GPU', () => {
    const calls: (number | FieldRequest)[][] = [];
    new Ticker(withFieldValues((r) => r, calls), [eccCollector, memoryErrorsCollector, pcieErrorsCollector, nvlinkCollector]).tick();
    // 4 collectors x 4 GPUs
    expect(calls).toHaveLength(16);
    expect(calls.find((c) => c.includes(FieldId.RETIRED_PAGES_SBE))).toHaveLength(9);
    expect(calls.find((c) => c.includes(FieldId.NVLINK_LINK_COUNT))).toContainEqual({ fieldId: FieldId.NVLINK_THROUGHPUT_DATA_TX, scopeId: 0xffffffff });
  });
});

describe('slow schedule', () => {
  let clock = 0;
  const now = (): number => clock;

  it('re-reads slow collectors only once the interval has passed, carrying their values in between', async () => {
    clock = 0;
    const calls: (number | FieldRequest)[][] = [];
    const slowReads = (): number => calls.filter((c) => c.includes(FieldId.ECC_SBE_AGGREGATE_TOTAL)).length;
    const ticker = new Ticker(withFieldValues((r) => r, calls), HEALTH, { slowIntervalMs: 30_000, now });
    const first = ticker.tick();
    expect(slowReads()).toBe(4);
    expect(gpu(first, 0).values).toMatchObject({ eccSbeAggregate: 340, eccSbeVolatile: 12 });

    await changeScenario(['gpu.0.ecc_sbe_agg 340', 'gpu.0.ecc_sbe_agg 3400'], ['gpu.0.ecc_sbe_vol 12', 'gpu.0.ecc_sbe_vol 1200'], ['gpu.0.retired_pending 1', 'gpu.0.retired_pending 0']);
    for (const t of [1000, 15_000, 29_000]) {
      clock = t;
      const s = ticker.tick();
      expect(slowReads()).toBe(4);
      // the fast collector sees the change at once; the slow one's last values are carried, all of them
      expect(gpu(s, 0).values.eccSbeVolatile).toBe(1200);
      expect(healthValues(gpu(s, 0))).toEqual({ ...GPU0_VALUES, eccSbeVolatile: 1200 });
      expect(gpu(s, 2).values).toMatchObject({ eccSbeAggregate: 40 });
      expect(gpu(s, 2).values).not.toHaveProperty('remappedRowsCorrectable');
      expect(report(s, 'memory_errors')).toMatchObject({ success: true });
    }

    // due (ticks come on a timer with some jitter: a few ms early still counts)
    clock = 29_990;
    const due = ticker.tick();
    expect(slowReads()).toBe(8);
    expect(gpu(due, 0).values).toMatchObject({ eccSbeAggregate: 3400, retiredPagesPending: 0 });

    clock = 31_000;
    ticker.tick();
    expect(slowReads()).toBe(8);
  });

  it('carries a slow collector\'s error with its values until the next read', async () => {
    clock = 0;
    let failing = true;
    const faulty = withFieldValues((r, uuid) => (failing && uuid.endsWith('0000') && r.fieldId === FieldId.RETIRED_PAGES_DBE ? { fieldId: r.fieldId, code: 999 } : r));
    const ticker = new Ticker(faulty, HEALTH, { slowIntervalMs: 10_000, now });
    expect(report(ticker.tick(), 'memory_errors')).toMatchObject({ success: false });
    failing = false;
    clock = 5000;
    const between = ticker.tick();
    expect(report(between, 'memory_errors')).toMatchObject({ success: false, error: expect.stringContaining('GPU 0') });
    expect(gpu(between, 0).values).not.toHaveProperty('retiredPagesDbe');
    expect(gpu(between, 0).values.retiredPagesSbe).toBe(3);
    clock = 10_000;
    const after = ticker.tick();
    expect(report(after, 'memory_errors')).toMatchObject({ success: true });
    expect(gpu(after, 0).values.retiredPagesDbe).toBe(1);
  });

  it('reads a GPU that appears (new UUID at an index) at once', async () => {
    clock = 0;
    const ticker = new Ticker(nvml, HEALTH, { slowIntervalMs: 30_000, now });
    ticker.tick();
    await changeScenario(['gpu.0.uuid GPU-4ea1f000-aaaa', 'gpu.0.uuid GPU-4ea1f000-ffff'], ['gpu.0.ecc_sbe_agg 340', 'gpu.0.ecc_sbe_agg 3400']);
    clock = 1000;
    const s = ticker.tick();
    expect(gpu(s, 0).uuid).toBe('GPU-4ea1f000-ffff-4000-8000-000000000000');
    expect(gpu(s, 0).values.eccSbeAggregate).toBe(3400);
    // the others keep their schedule
    expect(gpu(s, 2).values.eccSbeAggregate).toBe(40);
  });

  it('runs in the sampling worker on the interval the Sampler is given', async () => {
    const sampler = new Sampler({
      intervalMs: 100,
      initRetryMs: 1000,
      libraryPath: node.libraryPath,
      collectors: Object.fromEntries(COLLECTORS.map((c) => [c.name, c.name === 'mig' || HEALTH_NAMES.includes(c.name)])),
      slowIntervalMs: 1500,
      logger: pino({ level: 'silent' }),
    });
    sampler.start();
    try {
      const first = await sampler.nextSample();
      expect(gpu(first, 0).values).toMatchObject({ eccSbeAggregate: 340, eccSbeVolatile: 12 });
      await changeScenario(['gpu.0.ecc_sbe_agg 340', 'gpu.0.ecc_sbe_agg 3400'], ['gpu.0.ecc_sbe_vol 12', 'gpu.0.ecc_sbe_vol 1200']);
      let s = await sampler.nextSample();
      while (gpu(s, 0).values.eccSbeVolatile !== 1200) s = await sampler.nextSample();
      // the fast value has changed, the slow one is carried
      expect(gpu(s, 0).values.eccSbeAggregate).toBe(340);
      while (gpu(s, 0).values.eccSbeAggregate !== 3400) s = await sampler.nextSample(3000);
      expect(s.monotonicMs - first.monotonicMs).toBeGreaterThanOrEqual(1400);
      expect(report(s, 'memory_errors')).toMatchObject({ success: true });
    } finally {
      await sampler.stop();
    }
  });

  it('without a slow interval (the default) reads slow collectors every tick', async () => {
    const ticker = new Ticker(nvml, HEALTH);
    expect(gpu(ticker.tick(), 0).values.eccSbeAggregate).toBe(340);
    await changeScenario(['gpu.0.ecc_sbe_agg 340', 'gpu.0.ecc_sbe_agg 3400']);
    expect(gpu(ticker.tick(), 0).values.eccSbeAggregate).toBe(3400);
  });
});

/** name -> series (labels string -> value) of the families built from a sample. */
function seriesByName(families: RenderFamily[]): Map<string, Map<string, number>> {
  return new Map(families.map((f) => [f.name, new Map(f.series.map((s) => [s.labels, s.value]))]));
}

function valueOf(families: RenderFamily[], name: string, uuid: string, extra = ''): number | undefined {
  const f = seriesByName(families).get(name);
  if (!f) return undefined;
  for (const [labels, value] of f) if (labels.includes(`"${uuid}"`) && labels.includes(extra)) return value;
  return undefined;
}

const GPU0 = 'GPU-4ea1f000-aaaa-4000-8000-000000000000';
const GPU1 = 'GPU-4ea1f000-bbbb-4000-8000-000000000001';
const GPU2 = 'GPU-4ea1f000-cccc-4000-8000-000000000002';

/** [family source, dcgm name, dcgm value, prometheus name, prometheus value] for GPU 0 of the fixture. */
const EXPECTED: [ValueKey, string, number, string, number][] = [
  ['eccSbeVolatile', 'DCGM_FI_DEV_ECC_SBE_VOL_TOTAL', 12, 'gpu_ecc_single_bit_volatile_errors_total', 12],
  ['eccDbeVolatile', 'DCGM_FI_DEV_ECC_DBE_VOL_TOTAL', 1, 'gpu_ecc_double_bit_volatile_errors_total', 1],
  ['eccSbeAggregate', 'DCGM_FI_DEV_ECC_SBE_AGG_TOTAL', 340, 'gpu_ecc_single_bit_aggregate_errors_total', 340],
  ['eccDbeAggregate', 'DCGM_FI_DEV_ECC_DBE_AGG_TOTAL', 2, 'gpu_ecc_double_bit_aggregate_errors_total', 2],
  ['retiredPagesSbe', 'DCGM_FI_DEV_RETIRED_SBE', 3, 'gpu_retired_pages_single_bit_total', 3],
  ['retiredPagesDbe', 'DCGM_FI_DEV_RETIRED_DBE', 1, 'gpu_retired_pages_double_bit_total', 1],
  ['retiredPagesPending', 'DCGM_FI_DEV_RETIRED_PENDING', 1, 'gpu_retired_pages_pending', 1],
  ['remappedRowsCorrectable', 'DCGM_FI_DEV_CORRECTABLE_REMAPPED_ROWS', 5, 'gpu_remapped_rows_correctable_total', 5],
  ['remappedRowsUncorrectable', 'DCGM_FI_DEV_UNCORRECTABLE_REMAPPED_ROWS', 1, 'gpu_remapped_rows_uncorrectable_total', 1],
  ['remappedRowsPending', 'DCGM_FI_DEV_ROW_REMAP_PENDING', 1, 'gpu_row_remap_pending', 1],
  ['remappedRowsFailure', 'DCGM_FI_DEV_ROW_REMAP_FAILURE', 0, 'gpu_row_remap_failure', 0],
  ['pcieReplays', 'DCGM_FI_DEV_PCIE_REPLAY_COUNTER', 7, 'gpu_pcie_replays_total', 7],
  ['nvlinkCrcFlitErrors', 'DCGM_FI_DEV_NVLINK_CRC_FLIT_ERROR_COUNT_TOTAL', 21, 'gpu_nvlink_crc_flit_errors_total', 21],
  ['nvlinkCrcDataErrors', 'DCGM_FI_DEV_NVLINK_CRC_DATA_ERROR_COUNT_TOTAL', 22, 'gpu_nvlink_crc_data_errors_total', 22],
  ['nvlinkReplayErrors', 'DCGM_FI_DEV_NVLINK_REPLAY_ERROR_COUNT_TOTAL', 23, 'gpu_nvlink_replay_errors_total', 23],
  ['nvlinkRecoveryErrors', 'DCGM_FI_DEV_NVLINK_RECOVERY_ERROR_COUNT_TOTAL', 24, 'gpu_nvlink_recovery_errors_total', 24],
  // KiB in the dcgm scheme, bytes in the prometheus scheme
  ['nvlinkTotalKiB', 'DCGM_FI_DEV_NVLINK_BANDWIDTH_TOTAL', 6_120_000, 'gpu_nvlink_bytes_total', 6_120_000 * 1024],
  ['nvlinkTxKiB', 'gpu_nvlink_transmit_bytes_total', 120_000 * 1024, 'gpu_nvlink_transmit_bytes_total', 120_000 * 1024],
  ['nvlinkRxKiB', 'gpu_nvlink_receive_bytes_total', 6_000_000 * 1024, 'gpu_nvlink_receive_bytes_total', 6_000_000 * 1024],
  ['clocksEventReasons', 'DCGM_FI_DEV_CLOCK_THROTTLE_REASONS', 0x44, 'gpu_clock_event_reasons', 0x44],
  // DCGM: microseconds; prometheus: seconds
  ['powerViolationNs', 'DCGM_FI_DEV_POWER_VIOLATION', 5_000_000, 'gpu_power_violation_seconds_total', 5],
  ['thermalViolationNs', 'DCGM_FI_DEV_THERMAL_VIOLATION', 2_500_000, 'gpu_thermal_violation_seconds_total', 2.5],
];

const REASONS = [
  'gpu_idle', 'applications_clocks_setting', 'sw_power_cap', 'hw_slowdown', 'sync_boost',
  'sw_thermal_slowdown', 'hw_thermal_slowdown', 'hw_power_brake_slowdown', 'display_clock_setting',
];

/**
 * dcgm-exporter's camelCase labels and _total-less counters are the dcgm scheme's point (as in
 * test/scenarios.test.ts), and so is its DCGM_FI_DEV_PCIE_REPLAY_COUNTER, a counter named "counter".
 */
const DCGM_COMPAT_LINT = [
  / label names should be written in 'snake_case' not 'camelCase'$/,
  /^DCGM_FI_\w+ counter metrics should have "_total" suffix$/,
  /^DCGM_FI_\w+ metric name should not include type 'counter'$/,
];

describe('health families', () => {
  let sample: NodeSample;
  beforeAll(() => {
    sample = new Ticker(nvml, HEALTH).tick();
  });
  const build = (scheme: NamingScheme): RenderFamily[] => buildGpuFamilies(renderContext({ sample: sample, scheme, hostname: 'node-1' }));

  it('cover every health value key with one family per name', () => {
    const covered = new Set(GPU_FAMILIES.map((f) => f.source));
    for (const key of HEALTH_KEYS) expect(covered.has(key), key).toBe(true);
    for (const scheme of NAMING_SCHEMES) {
      const names = GPU_FAMILIES.map((f) => familyName(f, scheme).name);
      expect(new Set(names).size).toBe(names.length);
    }
  });

  it.each(EXPECTED)('%s: %s = %d (dcgm), %s = %d (prometheus), typed as declared', (source, dcgmName, dcgmValue, promName, promValue) => {
    const def = GPU_FAMILIES.find((f) => f.source === source && !f.labels)!;
    expect(familyName(def, 'dcgm').name).toBe(dcgmName);
    expect(familyName(def, 'prometheus').name).toBe(promName);
    expect(valueOf(build('dcgm'), dcgmName, GPU0)).toBe(dcgmValue);
    expect(valueOf(build('prometheus'), promName, GPU0)).toBe(promValue);
    const counters = def.type === 'counter';
    if (counters) expect(promName).toMatch(/_total$/);
    else expect(promName).not.toMatch(/_total$/);
    expect(build('prometheus').find((f) => f.name === promName)!.type).toBe(def.type);
  });

  it('types the growing counts as counters and the flags and the mask as gauges', () => {
    const typeOf = (source: ValueKey): string => GPU_FAMILIES.find((f) => f.source === source && !f.labels)!.type;
    const gauges: ValueKey[] = ['retiredPagesPending', 'remappedRowsPending', 'remappedRowsFailure', 'clocksEventReasons'];
    expect(gauges.map(typeOf)).toEqual(gauges.map(() => 'gauge'));
    const counters: ValueKey[] = ['eccSbeVolatile', 'eccDbeAggregate', 'retiredPagesSbe', 'remappedRowsUncorrectable', 'pcieReplays', 'nvlinkRecoveryErrors', 'nvlinkTotalKiB', 'powerViolationNs'];
    expect(counters.map(typeOf)).toEqual(counters.map(() => 'counter'));
  });

  it.each(NAMING_SCHEMES)('splits the clock event reasons into one series per reason (%s)', (scheme) => {
    const f = build(scheme).find((x) => x.name === 'gpu_clock_event_reason_active')!;
    expect(f.type).toBe('gauge');
    const of = (uuid: string): Record<string, number> => {
      const out: Record<string, number> = {};
      for (const s of f.series) if (s.labels.includes(`"${uuid}"`)) out[/reason="([^"]+)"/.exec(s.labels)![1]!] = s.value;
      return out;
    };
    expect(Object.keys(of(GPU0))).toEqual(REASONS);
    expect(of(GPU0)).toEqual(Object.fromEntries(REASONS.map((r) => [r, r === 'sw_power_cap' || r === 'hw_thermal_slowdown' ? 1 : 0])));
    expect(of(GPU2)).toEqual(Object.fromEntries(REASONS.map((r) => [r, r === 'gpu_idle' ? 1 : 0])));
    // no reasons read: no series
    expect(of(GPU1)).toEqual({});
    // the reason label follows the device labels
    const one = f.series.find((s) => s.labels.includes(`"${GPU0}"`))!.labels;
    expect(one.endsWith('reason="gpu_idle"')).toBe(true);
    expect(one).toContain(scheme === 'dcgm' ? 'UUID=' : 'uuid=');
  });

  it('has no series for values a GPU does not support', () => {
    for (const scheme of NAMING_SCHEMES) {
      const families = build(scheme);
      for (const [source, dcgmName, , promName] of EXPECTED) {
        const name = scheme === 'dcgm' ? dcgmName : promName;
        expect(valueOf(families, name, GPU1), `${name} on GPU 1`).toBeUndefined();
        if (source.startsWith('remapped')) expect(valueOf(families, name, GPU2), `${name} on GPU 2 (MIG)`).toBeUndefined();
      }
    }
  });

  it.each(NAMING_SCHEMES)('renders health families that pass promtool (%s)', (scheme) => {
    const text = renderFamilies(build(scheme), 'text');
    let out: string;
    try {
      out = execFileSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8', stdio: ['pipe', 'pipe', 'pipe'] });
    } catch (err) {
      const e = err as { stdout?: string; stderr?: string; code?: string };
      if (e.code === 'ENOENT') return; // promtool not installed
      out = `${e.stdout ?? ''}${e.stderr ?? ''}`;
    }
    const problems = out.split('\n').filter((l) => l.trim()).filter((l) => !(scheme === 'dcgm' && DCGM_COMPAT_LINT.some((re) => re.test(l))));
    expect(problems).toEqual([]);
    // OpenMetrics: DCGM counters without _total stay as they are, typed unknown
    const om = renderFamilies(build(scheme), 'openmetrics');
    if (scheme === 'dcgm') expect(om).toContain('# TYPE DCGM_FI_DEV_RETIRED_SBE unknown');
    else expect(om).toContain('# TYPE gpu_retired_pages_single_bit counter');
  });
});
