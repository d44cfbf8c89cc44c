/**
 * The MIG profile table as series (src/collectors/mig-profiles.ts, src/metrics/mig-profile-series.ts):
 * NVML's table through the real binding and the simulated library on MIG-enabled GPUs, the model
 * table on the others, read once per MIG mode change.
 */
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { defaultConfig } from '../src/config/flags.js';
import type { Exporter } from '../src/exporter.js';
import { modelMigProfiles } from '../src/metrics/mig-profile-models.js';
import { replaceScenarioFile } from '../src/sim/scenario-file.js';
import { scrape, seriesOf } from './support/exporter-process.js';
import { startScenarioInProcess } from './support/in-process.js';

const GIB = 1024 ** 3;
type Series = ReturnType<typeof seriesOf>[number];
const byGpu = (series: Series[], gpu: string): Series[] => series.filter((s) => s.labels.gpu === gpu);
const table = (series: Series[]): Record<string, number> => Object.fromEntries(series.map((s) => [s.labels.GPU_I_PROFILE!, s.value]));

describe('the model table', () => {
  it('knows each MIG model by name and memory, with its compute slices, and nothing else', () => {
    const h100 = modelMigProfiles('NVIDIA H100 80GB HBM3', 81559 * 1024 * 1024)!;
    expect(h100.map((p) => p.profile)).toEqual(['1g.10gb', '1g.20gb', '2g.20gb', '3g.40gb', '4g.40gb', '7g.80gb']);
    expect(h100.find((p) => p.profile === '3g.40gb')).toEqual({ profile: '3g.40gb', sliceCount: 3, instanceCount: 2, memoryBytes: 40e9 });
    // the A100's two memory sizes have different tables; an A30 has 4 slices
    expect(modelMigProfiles('NVIDIA A100-SXM4-40GB', 40 * GIB)!.map((p) => p.profile)).toContain('1g.5gb');
    expect(modelMigProfiles('NVIDIA A100-SXM4-80GB', 80 * GIB)!.map((p) => p.profile)).toContain('1g.10gb');
    expect(Math.max(...modelMigProfiles('NVIDIA A30', 24 * GIB)!.map((p) => p.sliceCount))).toBe(4);
    // a model without MIG, an H100 with another memory size (NVL: 94 GB), no memory read
    expect(modelMigProfiles('NVIDIA L4', 23034 * 1024 * 1024)).toBeUndefined();
    expect(modelMigProfiles('NVIDIA H100 NVL', 94 * GIB)).toBeUndefined();
    expect(modelMigProfiles('NVIDIA H100 80GB HBM3', undefined)).toBeUndefined();
  });
});

describe('profile series on the simulated 8x H100 node', () => {
  let exporter: Exporter;
  let url: string;
  let statePath: string;
  let original: string;

  beforeAll(async () => {
    ({ exporter, url, statePath, original } = await startScenarioInProcess('h100x8'));
  });
  afterAll(async () => {
    await exporter.stop();
  });

  async function setScenario(extra: string): Promise<string> {
    replaceScenarioFile(statePath, `${original}\n${extra}\n`);
    await exporter.sampler.nextSample();
    await exporter.sampler.nextSample();
    await exporter.sampler.nextSample();
    return scrape(url);
  }

  beforeEach(async () => {
    if (readFileSync(statePath, 'utf8') !== original) await setScenario('');
  });

  it('GPU 7 (MIG on) has NVML\'s table, GPUs 0-6 (MIG off) their model\'s; one series per GPU and profile, no pod labels', async () => {
    const text = await setScenario('');
    const compute = seriesOf(text, 'gpu_mig_profile_compute_ratio');
    const memory = seriesOf(text, 'gpu_mig_profile_memory_bytes');
    const instances = seriesOf(text, 'gpu_mig_profile_instances');
    expect(new Set(compute.map((s) => s.labels.gpu))).toEqual(new Set(['0', '1', '2', '3', '4', '5', '6', '7']));
    const g7 = byGpu(compute, '7');
    expect(new Set(g7.map((s) => s.labels.source))).toEqual(new Set(['nvml']));
    // NVML's names (the +me variant too) and real sizes in MiB; the shares are slices over 7
    expect(table(g7)).toEqual({ '1g.10gb': 1 / 7, '1g.10gb+me': 1 / 7, '1g.20gb': 1 / 7, '2g.20gb': 2 / 7, '3g.40gb': 3 / 7, '4g.40gb': 4 / 7, '7g.80gb': 1 });
    expect(table(byGpu(memory, '7'))['3g.40gb']).toBe(40448 * 1024 * 1024);
    expect(table(byGpu(instances, '7'))).toMatchObject({ '1g.10gb': 7, '1g.20gb': 4, '2g.20gb': 3, '3g.40gb': 2, '7g.80gb': 1 });
    const g0 = byGpu(memory, '0');
    expect(new Set(g0.map((s) => s.labels.source))).toEqual(new Set(['model_table']));
    expect(table(g0)).toEqual({ '1g.10gb': 10e9, '1g.20gb': 20e9, '2g.20gb': 20e9, '3g.40gb': 40e9, '4g.40gb': 40e9, '7g.80gb': 80e9 });
    expect(Object.keys(g0[0]!.labels)).toEqual(['gpu', 'UUID', 'pci_bus_id', 'device', 'modelName', 'Hostname', 'DCGM_FI_DRIVER_VERSION', 'GPU_I_PROFILE', 'source']);
    expect(compute).toHaveLength(7 * 6 + 7);
  });

  it('a GPU whose MIG mode turns on gets NVML\'s table; the table is read once per mode change, not every tick', async () => {
    let text = await setScenario('gpu.0.mig_mode 1');
    expect(new Set(byGpu(seriesOf(text, 'gpu_mig_profile_compute_ratio'), '0').map((s) => s.labels.source))).toEqual(new Set(['nvml']));
    // the call failing now changes nothing: the table was read when the mode changed
    text = await setScenario('gpu.0.mig_mode 1\nfault nvmlDeviceGetGpuInstanceProfileInfoV * 999');
    expect(byGpu(seriesOf(text, 'gpu_mig_profile_compute_ratio'), '7').map((s) => s.labels.source)).toContain('nvml');
    expect(seriesOf(text, 'kube_gpu_exporter_collector_success').find((s) => s.labels.collector === 'mig_profiles')?.value).toBe(1);
  });

  it('a failing read is the collector\'s failure and the GPU keeps its model\'s table; the next tick reads again', async () => {
    // GPU 0's mode turns on while the call fails (the mode change forces a read)
    let text = await setScenario('gpu.0.mig_mode 1\nfault nvmlDeviceGetGpuInstanceProfileInfoV 0 999');
    expect(seriesOf(text, 'kube_gpu_exporter_collector_success').find((s) => s.labels.collector === 'mig_profiles')?.value).toBe(0);
    expect(new Set(byGpu(seriesOf(text, 'gpu_mig_profile_compute_ratio'), '0').map((s) => s.labels.source))).toEqual(new Set(['model_table']));
    text = await setScenario('gpu.0.mig_mode 1');
    expect(seriesOf(text, 'kube_gpu_exporter_collector_success').find((s) => s.labels.collector === 'mig_profiles')?.value).toBe(1);
    expect(new Set(byGpu(seriesOf(text, 'gpu_mig_profile_compute_ratio'), '0').map((s) => s.labels.source))).toEqual(new Set(['nvml']));
  });
});

describe('without the collector, or on a GPU without MIG', () => {
  it('--no-collector.mig_profiles: no profile families at all; a workstation GPU (RTX A6000): none either', async () => {
    const collectors = { ...defaultConfig().collectors, mig_profiles: false };
    const off = await startScenarioInProcess('h100x8', { collectors });
    try {
      await off.exporter.sampler.nextSample();
      expect(await scrape(off.url)).not.toContain('gpu_mig_profile_');
    } finally {
      await off.exporter.stop();
    }
    const ws = await startScenarioInProcess('workstation');
    try {
      await ws.exporter.sampler.nextSample();
      const text = await scrape(ws.url);
      expect(text).toContain('DCGM_FI_DEV_GPU_TEMP');
      expect(text).not.toContain('gpu_mig_profile_');
    } finally {
      await ws.exporter.stop();
    }
  });
});
