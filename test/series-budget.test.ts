import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseDcgmCounters, readDcgmCounters } from '../src/config/dcgm-counters.js';
import { parseFlags, type Config } from '../src/config/flags.js';
import { familySelection, implementedDcgmFields } from '../src/metrics/family-selection.js';
import { familyName, GPU_FAMILIES } from '../src/metrics/families.js';
import { scrape, seriesOf } from './support/exporter-process.js';
import { startScenarioInProcess } from './support/in-process.js';
import { errorOf } from './support/errors.js';

/** The series budget: which families are exported, by regular expression and by dcgm-exporter's counters file. */

/** A counters file in dcgm-exporter's format: comments, blank lines, gauges, counters, a label, a field we lack. */
const COUNTERS = `# Format
# If line starts with a '#' it is considered a comment
# DCGM FIELD, Prometheus metric type, help message

# Clocks
DCGM_FI_DEV_SM_CLOCK,  gauge, SM clock frequency (in MHz).
DCGM_FI_DEV_MEM_CLOCK, gauge, Memory clock frequency (in MHz).

# Temperature, power
DCGM_FI_DEV_GPU_TEMP,    gauge, GPU temperature (in C).
DCGM_FI_DEV_POWER_USAGE, gauge, Power draw (in W).
DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION, counter, Total energy consumption since boot (in mJ).
DCGM_FI_DEV_XID_ERRORS, gauge, Value of the last XID error encountered.
DCGM_FI_DEV_VGPU_LICENSE_STATUS, gauge, vGPU License status
DCGM_FI_DRIVER_VERSION, label, Driver Version
`;


function countersFile(text: string): string {
  const file = path.join(mkdtempSync(path.join(os.tmpdir(), 'kge-counters-')), 'default-counters.csv');
  writeFileSync(file, text);
  return file;
}

describe('dcgm-exporter counters file', () => {
  it('reads the fields, the label fields apart, skipping comments and blank lines', () => {
    const c = parseDcgmCounters(COUNTERS, 'default-counters.csv');
    expect(c.fields).toEqual([
      'DCGM_FI_DEV_SM_CLOCK', 'DCGM_FI_DEV_MEM_CLOCK', 'DCGM_FI_DEV_GPU_TEMP', 'DCGM_FI_DEV_POWER_USAGE',
      'DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION', 'DCGM_FI_DEV_XID_ERRORS', 'DCGM_FI_DEV_VGPU_LICENSE_STATUS',
    ]);
    expect(c.labels).toEqual(['DCGM_FI_DRIVER_VERSION']);
    expect(parseDcgmCounters('DCGM_FI_DEV_GPU_UTIL,gauge\r\n', 'f').fields).toEqual(['DCGM_FI_DEV_GPU_UTIL']); // no help, CRLF
  });

  it.each([
    ['DCGM_FI_DEV_SM_CLOCK\n', 'line 1: expected "DCGM_FI_FIELD, gauge|counter|label, help"'],
    ['# c\nsm_clock, gauge, x\n', 'line 2: "sm_clock" is not a DCGM field name'],
    ['DCGM_FI_DEV_SM_CLOCK, summary, x\n', 'line 1: type "summary" of DCGM_FI_DEV_SM_CLOCK is not gauge, counter or label'],
    ['# only comments\n\n', 'lists no gauge or counter field'],
  ])('refuses %j with one message naming the flag, the file and the line', (text, message) => {
    const err = errorOf(() => parseDcgmCounters(text, '/etc/dcgm/counters.csv'));
    expect(err.code).toBe('KGE_DCGM_COUNTERS_INVALID');
    expect(err.message.startsWith(`--dcgm.counters /etc/dcgm/counters.csv: ${message}`), err.message).toBe(true);
  });

  it('an unreadable file, given as a flag or in the environment, stops the start with one message', () => {
    expect(errorOf(() => readDcgmCounters('/nonexistent/counters.csv')).message).toBe('--dcgm.counters /nonexistent/counters.csv: cannot read it: ENOENT');
    expect(errorOf(() => parseFlags(['--dcgm.counters=/nonexistent/c.csv'], {})).code).toBe('KGE_DCGM_COUNTERS_INVALID');
    expect(errorOf(() => parseFlags([], { KGE_DCGM_COUNTERS: '/nonexistent/c.csv' })).code).toBe('KGE_DCGM_COUNTERS_INVALID');
    const ok = parseFlags([`--dcgm.counters=${countersFile(COUNTERS)}`], {});
    expect(ok.kind === 'run' && ok.config.dcgmCounters?.fields).toHaveLength(7);
  });

  it.each([
    [['--metrics.include=DCGM_(FI'], '--metrics.include'],
    [['--metrics.exclude=*'], '--metrics.exclude'],
    [['--dcgm.hostname-label=HOSTNAME'], 'Hostname or hostname'],
  ])('refuses %j', (argv, mentions) => {
    const err = errorOf(() => parseFlags(argv, {}));
    expect(err.code).toBe('KGE_FLAG_INVALID');
    expect(err.message).toContain(mentions);
  });
});

describe('family selection', () => {
  const dcgm = (source: string) => familyName(GPU_FAMILIES.find((f) => f.source === source)!, 'dcgm').name;
  const prom = (source: string) => familyName(GPU_FAMILIES.find((f) => f.source === source)!, 'prometheus').name;

  it('matches a family by its name in either scheme, and keeps the exporter\'s own families unless excluded by name', () => {
    const keep = familySelection({ include: /^(?:gpu_temperature_celsius|gpu_busy_seconds_total)$/ })!;
    expect(keep(dcgm('gpuTempCelsius'))).toBe(true); // DCGM_FI_DEV_GPU_TEMP, included by its Prometheus name
    expect(keep(prom('gpuTempCelsius'))).toBe(true);
    expect(keep('gpu_busy_seconds_total')).toBe(true);
    expect(keep(dcgm('powerUsageMilliwatts'))).toBe(false);
    expect(keep('gpu_allocated_ratio')).toBe(false);
    expect(keep('kube_gpu_exporter_collector_success')).toBe(true);
    expect(keep('process_resident_memory_bytes')).toBe(true);
    const exclude = familySelection({ exclude: /^(?:DCGM_FI_PROF_.*|kube_gpu_exporter_collector_duration_seconds)$/ })!;
    expect(exclude(prom('smActivePercent'))).toBe(false); // gpu_sm_active_ratio, excluded by its DCGM name
    expect(exclude('kube_gpu_exporter_collector_duration_seconds')).toBe(false);
    expect(exclude('kube_gpu_exporter_collector_success')).toBe(true);
    expect(familySelection({})).toBeUndefined();
  });

  it('limits the families with a DCGM field to the counters file; the others stay', () => {
    const keep = familySelection({ dcgmFields: parseDcgmCounters(COUNTERS, 'f').fields })!;
    expect(keep('DCGM_FI_DEV_SM_CLOCK')).toBe(true);
    expect(keep('gpu_sm_clock_hertz')).toBe(true); // the same field in the prometheus scheme
    expect(keep('DCGM_FI_DEV_GPU_UTIL')).toBe(false);
    expect(keep('gpu_utilization_ratio')).toBe(false);
    expect(keep('DCGM_FI_DEV_XID_ERRORS')).toBe(true);
    expect(keep('gpu_busy_seconds_total')).toBe(true); // no DCGM field: not affected
    expect(keep('gpu_allocated_ratio')).toBe(true);
    expect(implementedDcgmFields().has('DCGM_FI_DEV_VGPU_LICENSE_STATUS')).toBe(false);
  });
});

describe('the running exporter', () => {
  it('with a counters file and hostname: only the listed DCGM families, the others as usual, the missing field logged once', async () => {
    const overrides: Partial<Config> = { dcgmCounters: readDcgmCounters(countersFile(COUNTERS)), dcgmHostnameLabel: 'hostname', metricsExclude: /^(?:DCGM_FI_DEV_MEM_CLOCK)$/ };
    const { exporter, url, logs } = await startScenarioInProcess('h100x8', overrides);
    try {
      const text = await scrape(url);
      const dcgmFamilies = new Set(text.split('\n').filter((l) => l.startsWith('DCGM_')).map((l) => l.slice(0, l.search(/[{ ]/))));
      expect([...dcgmFamilies].sort()).toEqual(['DCGM_FI_DEV_GPU_TEMP', 'DCGM_FI_DEV_POWER_USAGE', 'DCGM_FI_DEV_SM_CLOCK', 'DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION', 'DCGM_FI_DEV_XID_ERRORS']);
      expect(seriesOf(text, 'gpu_busy_seconds_total').length).toBeGreaterThan(0);
      expect(seriesOf(text, 'kube_gpu_exporter_collector_success').length).toBeGreaterThan(0);
      const temp = seriesOf(text, 'DCGM_FI_DEV_GPU_TEMP')[0]!;
      expect(temp.labels.hostname).toBe('test-node');
      expect(temp.labels.Hostname).toBeUndefined();
      const warned = logs.filter((l) => String(l.msg).startsWith('--dcgm.counters'));
      expect(warned).toHaveLength(1);
      expect(warned[0]).toMatchObject({ fields: ['DCGM_FI_DEV_VGPU_LICENSE_STATUS'] });
    } finally {
      await exporter.stop();
    }
  });
});

describe('--metrics.max-labels', () => {
  it('refuses a budget below the labels a device series carries without pod labels, naming the flag', () => {
    const err = errorOf(() => parseFlags(['--metrics.max-labels=23'], {}));
    expect(err.code).toBe('KGE_MAX_LABELS_TOO_LOW');
    expect(err.message).toBe('--metrics.max-labels=23 is below the 24 labels a device series of the dcgm scheme can carry without pod labels (name, device, MIG instance, event, pod, replica and DRA labels)');
    expect((parseFlags(['--metrics.max-labels=20', '--naming=prometheus'], {}) as { config: Config }).config.metricsMaxLabels).toBe(20);
    expect(errorOf(() => parseFlags(['--metrics.max-labels=x'], {})).code).toBe('KGE_FLAG_INVALID');
  });

  it('keeps every series within the budget: pod labels past it dropped last-in-name-order first, counted, logged once', { timeout: 60_000 }, async () => {
    const { mkdtempSync: tmp } = await import('node:fs');
    const { writeFakeKubeconfig } = await import('../src/sim/kubeconfig.js');
    const { FakeApiServer } = await import('./support/fake-apiserver.js');
    const { simulatedNode } = await import('../src/sim/harness.js');
    const { startSimulatedPods } = await import('../src/sim/simulated-pods.js');
    const { startExporterProcess, waitFor } = await import('./support/exporter-process.js');
    const node = simulatedNode('h100x8');
    const pods = await startSimulatedPods(node.statePath);
    const api = await FakeApiServer.start({ defaultNodeName: 'golden-node' });
    const stops: (() => Promise<unknown>)[] = [() => pods.stop(), () => api.close()];
    try {
      // 20 allowlisted labels per pod: more than 30 leave room for on any device series
      const labels = Object.fromEntries(Array.from({ length: 20 }, (_, i) => [`k${String(i).padStart(2, '0')}`, `v${i}`]));
      for (const p of pods.scenario.pods) api.addPod({ namespace: p.namespace, name: p.name, uid: p.uid, labels });
      const kubeconfig = writeFakeKubeconfig(tmp(path.join(os.tmpdir(), 'kge-budget-')), api.url);
      const exp = await startExporterProcess({
        library: node.libraryPath,
        statePath: node.statePath,
        args: [...pods.flags, '--sample-interval=200ms', '--kubernetes.pod-metadata=true', '--kubernetes.pod-labels=k.*', `--kubernetes.kubeconfig=${kubeconfig}`],
      });
      stops.unshift(() => exp.stop());
      const text = await waitFor(async () => {
        const t = await scrape(exp.url);
        return t.includes('kube_gpu_exporter_kubelet_up 1') && t.includes('kube_gpu_exporter_pod_metadata_synced 1') && t.includes('label_k00="v0"') ? t : undefined;
      }, 30_000, 'pod labels on the series');
      let widest = 0;
      for (const line of text.split('\n')) {
        if (!line || line.startsWith('#')) continue;
        const n = 1 + [...line.matchAll(/[{,]([a-zA-Z_][a-zA-Z0-9_]*)="/g)].length;
        widest = Math.max(widest, n);
      }
      expect(widest).toBe(30); // the budget is used to the full, never passed
      // each series keeps the pod labels first in name order that fit beside its own labels (the
      // metric name, the device's, two for a family's own dimensions, the holder's): a whole GPU
      // 30 - (1 + 7 + 2 + 4) = 16, a replica of the shared GPU 4 (vgpu) 15, a MIG instance 14
      const util = seriesOf(text, 'gpu_busy_seconds_total');
      const keys = (s: { labels: Record<string, string> }) => Object.keys(s.labels).filter((k) => k.startsWith('label_'));
      const first = (n: number) => Array.from({ length: n }, (_, i) => `label_k${String(i).padStart(2, '0')}`);
      expect(keys(util.find((s) => s.labels.gpu === '0')!)).toEqual(first(16));
      expect(keys(util.find((s) => s.labels.gpu === '4' && s.labels.vgpu !== undefined)!)).toEqual(first(15));
      expect(keys(util.find((s) => s.labels.gpu === '7' && s.labels.GPU_I_ID !== undefined && s.labels.pod)!)).toEqual(first(14));
      expect(seriesOf(text, 'kube_gpu_exporter_pod_labels_dropped')[0]!.value).toBeGreaterThan(0);
      expect(exp.logs().filter((l) => l.includes('--metrics.max-labels'))).toHaveLength(1);
    } finally {
      for (const stop of stops) await stop();
    }
  });
});
