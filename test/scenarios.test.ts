import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { familyName, GPU_FAMILIES, NAMING_SCHEMES, POD_FAMILIES, type NamingScheme } from '../src/metrics/families.js';
import { simulatedNode } from '../src/sim/harness.js';
import { startSimulatedPods, type SimulatedPods } from '../src/sim/simulated-pods.js';
import { ROOT, scrape, seriesOf, startExporterProcess, waitFor, type RunningExporter } from './support/exporter-process.js';
import { promtoolFindings } from './support/promtool.js';

/**
 * Every shipped scenario, through the real CLI in its own process, in both naming schemes:
 * golden /metrics (sorted, moving values masked), promtool check metrics, and family coverage.
 */
const SCENARIOS = ['workstation', 'h100x8', 'h100x8-dra', 'a100-mig', 'gpu-lost', 'old-driver'];
const GOLDEN_DIR = path.join(ROOT, 'test', 'golden');
const UPDATE = process.env.UPDATE_GOLDEN === '1';

/** Families whose values move over time (random walks, counters, timings). */
const MOVING = new Set<string>([
  ...GPU_FAMILIES.filter((f) => !['fbTotalBytes', 'fbReservedBytes', 'powerLimitMilliwatts', 'maxSmClockMHz', 'maxMemClockMHz', 'maxGraphicsClockMHz', 'migModeEnabled', 'performanceState', 'pcieLinkGen', 'pcieLinkWidth', 'maxPcieLinkGen', 'maxPcieLinkWidth'].includes(f.source)).flatMap((f) => [familyName(f, 'dcgm').name, familyName(f, 'prometheus').name]),
  'kube_gpu_exporter_collector_duration_seconds',
  'kube_gpu_exporter_last_sample_timestamp_seconds',
  'kube_gpu_exporter_sample_duration_seconds',
  'kube_gpu_exporter_skipped_ticks_total',
  'kube_gpu_exporter_kubelet_last_success_timestamp_seconds',
  'kube_gpu_exporter_kubelet_refresh_duration_seconds',
  'gpu_container_sm_utilization_ratio',
]);

/** Sorted sample lines without process metrics, moving values masked, Node version masked. */
export function normalise(text: string): string {
  return text
    .split('\n')
    .filter((l) => l && !l.startsWith('#') && !/^(process_|nodejs_)/.test(l))
    .map((l) => {
      const name = l.slice(0, l.search(/[{ ]/));
      const masked = MOVING.has(name) ? l.replace(/ [^ ]+$/, ' <value>') : l;
      return masked.replace(/nodejs_version="[^"]*"/, 'nodejs_version="<node>"').replace(/version="\d+\.\d+\.\d+"/, 'version="<version>"');
    })
    .sort()
    .join('\n') + '\n';
}

const running: RunningExporter[] = [];
const podSides: SimulatedPods[] = [];
afterAll(async () => {
  await Promise.all(running.map((r) => r.stop()));
  await Promise.all(podSides.map((p) => p.stop()));
});

const seenFamilies = new Set<string>();

describe.each(SCENARIOS)('scenario %s', (scenario) => {
  describe.each(NAMING_SCHEMES)('naming %s', (scheme: NamingScheme) => {
    it('matches the golden /metrics and passes promtool', async () => {
      const node = simulatedNode(scenario);
      // the node name the exporter processes run under (NODE_NAME), which DRA pools and slices are published for
      const pods = await startSimulatedPods(node.statePath, { nodeName: 'golden-node' });
      podSides.push(pods);
      const exp = await startExporterProcess({ library: node.libraryPath, statePath: node.statePath, args: [...pods.flags, `--naming=${scheme}`, '--sample-interval=200ms'] });
      running.push(exp);
      await waitFor(async () => (await fetch(`${exp.url}/readyz`)).status === 200, 15_000, 'readyz');
      await waitFor(async () => (await scrape(exp.url)).includes('kube_gpu_exporter_kubelet_up 1'), 15_000, 'kubelet answering');
      if (pods.resourceApi) await waitFor(async () => (await scrape(exp.url)).includes('kube_gpu_exporter_dra_up 1'), 15_000, 'ResourceSlice watch in sync');
      // two samples so counters have an elapsed interval
      await new Promise((r) => setTimeout(r, 450));
      const text = await scrape(exp.url);

      expect(await promtoolFindings(text, scheme)).toEqual([]);

      for (const f of GPU_FAMILIES) if (seriesOf(text, familyName(f, scheme).name).length > 0) seenFamilies.add(`${scheme}:${f.source}`);
      for (const f of Object.values(POD_FAMILIES)) if (seriesOf(text, f.name).length > 0) seenFamilies.add(`${scheme}:${f.name}`);

      const golden = path.join(GOLDEN_DIR, `${scenario}.${scheme}.prom`);
      const actual = normalise(text);
      if (UPDATE || !existsSync(golden)) {
        mkdirSync(GOLDEN_DIR, { recursive: true });
        writeFileSync(golden, actual);
        if (!UPDATE) throw new Error(`golden file ${golden} was missing; written now, re-run`);
      }
      expect(actual).toBe(readFileSync(golden, 'utf8'));
      expect(await exp.stop()).toBe(0);
    });
  });
});

describe('coverage', () => {
  it('every GPU family appears in some shipped scenario, in both schemes', () => {
    const missing = NAMING_SCHEMES.flatMap((s) => GPU_FAMILIES.filter((f) => !seenFamilies.has(`${s}:${f.source}`)).map((f) => `${s}:${familyName(f, s).name}`));
    expect(missing).toEqual([]);
  });
  it('every pod family appears in some shipped scenario, in both schemes', () => {
    const missing = NAMING_SCHEMES.flatMap((s) => Object.values(POD_FAMILIES).filter((f) => !seenFamilies.has(`${s}:${f.name}`)).map((f) => `${s}:${f.name}`));
    expect(missing).toEqual([]);
  });
});
