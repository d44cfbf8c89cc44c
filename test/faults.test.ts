import { copyFileSync, existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { simulatedNode } from '../src/sim/harness.js';
import { loadKubeletScenario, type KubeletScenario } from '../src/sim/kubelet-scenario.js';
import { migHolder, migNodePods, migNodeSim, MIG_NODE_GPUS, MIG_NODE_PODS, MIG_NODE_SLOTS } from '../src/sim/mig-node.js';
import { ROOT, scrape, seriesOf, startExporterProcess, waitFor, type RunningExporter } from './support/exporter-process.js';
import { promtoolFindings } from './support/promtool.js';
import { countLogs, logLines, plainValue, sampleTime, startSimulatedExporter, type SimulatedExporter } from './support/simulated-exporter.js';
import { replaceScenarioFile } from '../src/sim/scenario-file.js';

/**
 * Faults, end to end through the real exporter process on the simulated NVML and the fake
 * kubelet. In each: /metrics keeps answering with output promtool accepts, the process does
 * not crash (it exits 0 on SIGTERM at the end), and each fault is logged once per change of
 * state, however many ticks it lasts.
 */
const running: { stop(): Promise<unknown> }[] = [];
afterAll(async () => {
  await Promise.all(running.map((r) => r.stop()));
});

async function simulated(scenario: string, args: string[] = []): Promise<SimulatedExporter> {
  const s = await startSimulatedExporter(scenario, args);
  running.push(s);
  return s;
}

/** Scrapes and checks the body with promtool; returns it. */
async function validScrape(url: string): Promise<string> {
  const text = await scrape(url);
  expect(await promtoolFindings(text)).toEqual([]);
  return text;
}

/** No worker crash or restart and a clean exit: the process survived the fault. */
async function expectCleanExit(exp: RunningExporter, stop: () => Promise<number | null>): Promise<void> {
  expect(countLogs(exp, 'sampling worker')).toBe(0);
  expect(countLogs(exp, 'sampling tick failed')).toBe(0);
  expect(await stop()).toBe(0);
}

const gpusOf = (text: string, family: string) => [...new Set(seriesOf(text, family).map((s) => s.labels.gpu!))].sort();
const podOf = (text: string, family: string, gpu: string) => seriesOf(text, family).find((s) => s.labels.gpu === gpu && s.labels.GPU_I_ID === undefined)?.labels.pod;

describe('NVML absent at start, then present but not initialising, then initialising', () => {
  it('serves valid /metrics without GPUs, logs each distinct reason once over many retries, and picks NVML up', async () => {
    const node = simulatedNode('workstation');
    const dir = mkdtempSync(path.join(os.tmpdir(), 'kge-late-driver-'));
    const library = path.join(dir, 'libnvidia-ml.so.1');
    const statePath = path.join(dir, 'node.sim');
    const exp = await startExporterProcess({ library, statePath, args: ['--nvml.retry-interval=100ms', '--sample-interval=100ms', '--kubelet.socket=none'] });
    running.push(exp);
    /** One reason: logged once however many retries it lasts, /metrics valid and without GPUs meanwhile. */
    const expectReason = async (nth: number, readyz: RegExp): Promise<void> => {
      await waitFor(() => countLogs(exp, 'NVML unavailable') === nth, 5000, `reason ${nth} logged`);
      // time for several retries (every 100 ms) with the same reason: what is tested is that they log nothing more
      await new Promise((r) => setTimeout(r, 500));
      expect(countLogs(exp, 'NVML unavailable')).toBe(nth);
      const text = await validScrape(exp.url);
      expect(plainValue(text, 'kube_gpu_exporter_nvml_up')).toBe(0);
      expect(seriesOf(text, 'DCGM_FI_DEV_GPU_TEMP')).toEqual([]);
      const notReady = await fetch(`${exp.url}/readyz`);
      expect(notReady.status).toBe(503);
      expect(await notReady.text()).toMatch(readyz);
    };
    await expectReason(1, /no such file/);
    // the library appears; the driver behind it is not loaded (the simulated library: no scenario file yet)
    copyFileSync(node.libraryPath, library);
    await expectReason(2, /DRIVER_NOT_LOADED/);
    // a driver that answers init with an error
    replaceScenarioFile(statePath, 'device_count 1\ngpu.0.uuid GPU-1\n'); // no name or PCI bus id: init fails
    await expectReason(3, /UNKNOWN/);

    replaceScenarioFile(statePath, readFileSync(node.statePath, 'utf8'));
    await waitFor(async () => (await fetch(`${exp.url}/readyz`)).status === 200, 5000, 'readyz after the driver came up');
    const text = await waitFor(async () => {
      const t = await scrape(exp.url);
      return seriesOf(t, 'DCGM_FI_DEV_GPU_TEMP').length === 1 ? t : undefined;
    }, 5000, 'GPU series');
    expect(await promtoolFindings(text)).toEqual([]);
    expect(plainValue(text, 'kube_gpu_exporter_nvml_up')).toBe(1);
    expect(countLogs(exp, 'NVML initialised')).toBe(1);
    expect(countLogs(exp, 'NVML unavailable')).toBe(3);
    await expectCleanExit(exp, () => exp.stop());
  });
});

describe('a GPU lost for many ticks, then back', () => {
  it('keeps the other GPUs and their pods, exports the loss, and logs loss and return once each', async () => {
    const s = await simulated('h100x8');
    s.setScenario('fault * 2 15'); // GPU_IS_LOST on every call to GPU 2
    let text = await s.samples(3);
    expect(seriesOf(text, 'gpu_answering').find((x) => x.labels.gpu === '2')?.value).toBe(0);
    await s.samples(20);
    text = await validScrape(s.exp.url);
    expect(gpusOf(text, 'DCGM_FI_DEV_GPU_TEMP')).toEqual(['0', '1', '3', '4', '5', '6', '7']);
    expect(plainValue(text, 'kube_gpu_exporter_gpus_not_answering')).toBe(1);
    expect(podOf(text, 'DCGM_FI_DEV_GPU_TEMP', '3')).toBe('vision-finetune-7c9f4'); // pods of the other GPUs keep their labels
    expect(seriesOf(text, 'kube_gpu_exporter_collector_success').every((x) => x.value === 1)).toBe(true); // a lost GPU is not a failing collector

    s.setScenario('');
    text = await waitFor(async () => {
      const t = await scrape(s.exp.url);
      return seriesOf(t, 'gpu_answering').find((x) => x.labels.gpu === '2')?.value === 1 ? t : undefined;
    }, 5000, 'GPU 2 answering again');
    await s.samples(5);
    text = await validScrape(s.exp.url);
    expect(gpusOf(text, 'DCGM_FI_DEV_GPU_TEMP')).toHaveLength(8);
    expect(plainValue(text, 'kube_gpu_exporter_gpus_not_answering')).toBe(0);
    expect(podOf(text, 'DCGM_FI_DEV_GPU_TEMP', '2')).toBe('vision-finetune-7c9f4');
    // said once each: lost, and back
    expect(countLogs(s.exp, 'GPU missing', { gpu: 2 })).toBe(1);
    expect(countLogs(s.exp, 'GPU missing')).toBe(1);
    expect(countLogs(s.exp, 'GPU answering again', { gpu: 2 })).toBe(1);
    expect(countLogs(s.exp, 'GPU answering again')).toBe(1);
    await expectCleanExit(s.exp, () => s.stop());
  });
});

describe('an NVML call that hangs 30 s', () => {
  it('serves the last complete sample fast for the whole hang, logs the stall once, and resumes sampling after', { timeout: 90_000 }, async () => {
    const s = await simulated('h100x8');
    const before = await scrape(s.exp.url);
    s.setScenario('latency nvmlDeviceGetPowerUsage 3 30000');
    const hangStarted = Date.now();
    // nothing scrapes meanwhile: the main thread's stall check (every 5 s) finds the tick running
    await waitFor(() => countLogs(s.exp, 'previous sampling tick still running') === 1, 15_000, 'the stall log line');
    s.setScenario(''); // the call in progress keeps sleeping; later calls do not hang
    const frozenAt = sampleTime(await scrape(s.exp.url));
    expect(frozenAt).toBeGreaterThanOrEqual(sampleTime(before));

    const times: number[] = [];
    let checked = false;
    while (Date.now() - hangStarted < 27_000) {
      const t0 = performance.now();
      const res = await fetch(`${s.exp.url}/metrics`);
      const body = await res.text();
      times.push(performance.now() - t0);
      expect(res.status).toBe(200);
      expect(sampleTime(body)).toBe(frozenAt); // no sample completes while the call hangs
      if (!checked && Date.now() - hangStarted > 10_000) {
        expect(await promtoolFindings(body)).toEqual([]);
        expect((await fetch(`${s.exp.url}/healthz`)).status).toBe(200);
        checked = true;
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    times.sort((a, b) => a - b);
    expect(times.length).toBeGreaterThan(100);
    // generous bounds for a shared 2-core machine: the point is milliseconds, not the 30 s hang
    expect(times[Math.floor(times.length / 2)]).toBeLessThan(50);
    expect(times[times.length - 1]).toBeLessThan(1000);

    const after = await waitFor(async () => {
      const t = await scrape(s.exp.url);
      return sampleTime(t) > frozenAt ? t : undefined;
    }, 15_000, 'sampling to resume');
    expect(Date.now() - hangStarted).toBeGreaterThan(29_000);
    await s.samples(3);
    const text = await validScrape(s.exp.url);
    expect(gpusOf(text, 'DCGM_FI_DEV_POWER_USAGE')).toHaveLength(8);
    expect(plainValue(text, 'kube_gpu_exporter_skipped_ticks_total')).toBeGreaterThan(100);
    expect(sampleTime(after)).toBeGreaterThan(frozenAt);
    expect(countLogs(s.exp, 'previous sampling tick still running')).toBe(1);
    await expectCleanExit(s.exp, () => s.stop());
  });
});

describe('a storm of errors', () => {
  const STORM = [
    'fault nvmlDeviceGetTemperature * 999',
    'fault nvmlDeviceGetClockInfo * 2',
    'fault nvmlDeviceGetMemoryInfo_v2 * 20',
    'fault nvmlDeviceGetPowerUsage 0 999',
    'fault nvmlDeviceGetPowerUsage 5 999',
    'fault nvmlDeviceGetPowerUsage 6 999',
    'fault nvmlDeviceGetFieldValues * 999',
    'fault nvmlDeviceGetComputeRunningProcesses_v3 * 999',
    'fault nvmlDeviceGetCurrentClocksEventReasons * 999',
    'fault nvmlDeviceGetPcieThroughput * 999',
    'fault nvmlDeviceGetUtilizationRates 1 999',
    'fault nvmlDeviceGetUtilizationRates 4 999',
  ].join('\n');

  it('many calls failing on every GPU for many ticks: one line per collector when it starts failing and one when it recovers', async () => {
    const s = await simulated('h100x8');
    s.setScenario(STORM);
    await s.samples(30);
    const text = await validScrape(s.exp.url);
    const success = seriesOf(text, 'kube_gpu_exporter_collector_success');
    const failing = success.filter((x) => x.value === 0).map((x) => x.labels.collector!).sort();
    expect(failing).toEqual(expect.arrayContaining(['clocks', 'memory', 'pcie', 'power', 'processes', 'temperature', 'throttle', 'utilization']));
    // what did not fail keeps its values on every GPU; so do GPUs a per-GPU fault spares
    expect(gpusOf(text, 'DCGM_FI_DEV_PSTATE')).toHaveLength(8);
    expect(gpusOf(text, 'DCGM_FI_DEV_POWER_USAGE')).toEqual(['1', '2', '3', '4', '7']);
    expect(seriesOf(text, 'DCGM_FI_DEV_GPU_TEMP')).toEqual([]);
    expect(podOf(text, 'DCGM_FI_DEV_PSTATE', '0')).toBe('llm-pretrain-0');
    for (const c of failing) expect(countLogs(s.exp, 'collector failing', { collector: c }), c).toBe(1);
    expect(countLogs(s.exp, 'collector failing')).toBe(failing.length);
    expect(countLogs(s.exp, 'collector recovered')).toBe(0);

    s.setScenario('');
    await s.samples(5);
    const calm = await validScrape(s.exp.url);
    expect(seriesOf(calm, 'kube_gpu_exporter_collector_success').every((x) => x.value === 1)).toBe(true);
    expect(gpusOf(calm, 'DCGM_FI_DEV_GPU_TEMP')).toHaveLength(8);
    for (const c of failing) expect(countLogs(s.exp, 'collector recovered', { collector: c }), c).toBe(1);
    expect(countLogs(s.exp, 'collector failing')).toBe(failing.length);
    await expectCleanExit(s.exp, () => s.stop());
  });
});

describe('the kubelet socket flapping', () => {
  /** The shipped pods with the pod on GPUs 0 and 1 renamed, so a new map shows. */
  function renamed(base: KubeletScenario, name: string): KubeletScenario {
    return { ...base, pods: base.pods.map((p) => (p.name === 'llm-pretrain-0' ? { ...p, name } : p)) };
  }

  it('keeps the last good pod labels while down, says so in kubelet_up, picks up the new map when back, one line per change', { timeout: 90_000 }, async () => {
    const s = await simulated('h100x8', ['--kubelet.refresh-interval=500ms', '--kubelet.timeout=300ms']);
    const base = s.pods.scenario;
    const cycles = 4;
    for (let i = 1; i <= cycles; i++) {
      const previous = i === 1 ? 'llm-pretrain-0' : `llm-pretrain-${i - 1}`;
      // odd cycles: the kubelet goes and its socket file with it; even: a stale socket file stays
      if (i % 2 === 0) await s.pods.kubelet.crash();
      else await s.pods.kubelet.close();
      expect(existsSync(s.pods.kubelet.socketPath)).toBe(i % 2 === 0);
      let text = await waitFor(async () => {
        const t = await scrape(s.exp.url);
        return plainValue(t, 'kube_gpu_exporter_kubelet_up') === 0 ? t : undefined;
      }, 10_000, `kubelet down (cycle ${i})`);
      s.pods.update(renamed(base, `llm-pretrain-${i}`)); // pods change while the kubelet is away
      // several failed refreshes, as the exporter counts them
      const failuresBefore = plainValue(text, 'kube_gpu_exporter_kubelet_refresh_failures_total') ?? 0;
      await waitFor(async () => (plainValue(await scrape(s.exp.url), 'kube_gpu_exporter_kubelet_refresh_failures_total') ?? 0) >= failuresBefore + 2, 10_000, `two more failed refreshes (cycle ${i})`);
      text = await validScrape(s.exp.url);
      expect(plainValue(text, 'kube_gpu_exporter_kubelet_up')).toBe(0);
      expect(podOf(text, 'DCGM_FI_DEV_GPU_TEMP', '0')).toBe(previous);
      expect(podOf(text, 'DCGM_FI_DEV_GPU_TEMP', '1')).toBe(previous);
      expect(podOf(text, 'DCGM_FI_DEV_GPU_TEMP', '6')).toBe('notebook-bob');

      await s.pods.kubelet.restart(); // the socket file removed and created again by a new server
      text = await waitFor(async () => {
        const t = await scrape(s.exp.url);
        return plainValue(t, 'kube_gpu_exporter_kubelet_up') === 1 && podOf(t, 'DCGM_FI_DEV_GPU_TEMP', '0') === `llm-pretrain-${i}` ? t : undefined;
      }, 15_000, `kubelet back with the new map (cycle ${i})`);
      expect(await promtoolFindings(text)).toEqual([]);
      expect(countLogs(s.exp, 'kubelet pod resources not answering')).toBe(i);
      expect(countLogs(s.exp, 'kubelet pod resources answering')).toBe(i + 1);
    }
    const text = await validScrape(s.exp.url);
    expect(plainValue(text, 'kube_gpu_exporter_kubelet_refresh_failures_total')).toBeGreaterThanOrEqual(cycles * 2);
    await expectCleanExit(s.exp, () => s.stop());
  });
});

describe('8 GPUs x 7 MIG instances with 1,000 pods', () => {
  const simFile = path.join(ROOT, 'scenarios', 'h100x8-mig7.sim');
  const podsFile = path.join(ROOT, 'scenarios', 'h100x8-mig7.pods.json');

  it('ships the scenario and pods files its generator writes', () => {
    if (process.env.UPDATE_GOLDEN === '1') {
      writeFileSync(simFile, migNodeSim());
      writeFileSync(podsFile, migNodePods());
    }
    expect(readFileSync(simFile, 'utf8')).toBe(migNodeSim());
    expect(readFileSync(podsFile, 'utf8')).toBe(migNodePods());
    const pods = loadKubeletScenario(simFile)!;
    expect(pods.pods).toHaveLength(MIG_NODE_PODS);
    expect(pods.allocatable['nvidia.com/mig-1g.10gb']).toHaveLength(MIG_NODE_GPUS * MIG_NODE_SLOTS);
  });

  it('labels every MIG instance with its pod, counts each container\'s memory, and stays valid', async () => {
    const s = await simulated('h100x8-mig7', ['--sample-interval=250ms']);
    await s.samples(3);
    let text = await validScrape(s.exp.url);
    const instances = seriesOf(text, 'DCGM_FI_DEV_FB_USED').filter((x) => x.labels.GPU_I_ID !== undefined);
    expect(instances).toHaveLength(MIG_NODE_GPUS * MIG_NODE_SLOTS);
    for (const x of instances) {
      const gpu = Number(x.labels.gpu);
      const slot = Number(x.labels.GPU_I_ID) - 7;
      const holder = migHolder(gpu, slot);
      expect(x.labels, `gpu ${gpu} instance ${x.labels.GPU_I_ID}`).toMatchObject({ GPU_I_PROFILE: '1g.10gb', namespace: holder.namespace, pod: holder.pod, container: holder.container });
    }
    expect(seriesOf(text, 'DCGM_FI_DEV_FB_USED').filter((x) => x.labels.GPU_I_ID === undefined && x.labels.pod)).toEqual([]);
    // each GPU is fully allocated: seven 1/7 slices
    const allocated = new Map<string, number>();
    for (const x of seriesOf(text, 'gpu_allocated_ratio')) allocated.set(x.labels.gpu!, (allocated.get(x.labels.gpu!) ?? 0) + x.value);
    expect([...allocated.values()].map((v) => Math.round(v * 1e9) / 1e9)).toEqual(Array(MIG_NODE_GPUS).fill(1));
    const memory = seriesOf(text, 'gpu_container_memory_used_bytes');
    expect(memory).toHaveLength(MIG_NODE_GPUS * MIG_NODE_SLOTS);
    expect(memory.every((x) => x.value === 1024 ** 3 && x.labels.pod !== '')).toBe(true);
    expect(plainValue(text, 'kube_gpu_exporter_kubelet_pods')).toBe(MIG_NODE_GPUS * MIG_NODE_SLOTS);
    expect(plainValue(text, 'kube_gpu_exporter_kubelet_unknown_device_ids')).toBe(0);
    expect(plainValue(text, 'kube_gpu_exporter_unplaced_processes')).toBe(0);

    // the pods on the instances of GPU 0 are replaced: the next refresh relabels them
    const next = s.pods.scenario;
    s.pods.update({ ...next, pods: next.pods.map((p) => (p.name.startsWith('embed-0-') ? { ...p, name: p.name.replace('embed-', 'rerun-') } : p)) });
    text = await waitFor(async () => {
      const t = await scrape(s.exp.url);
      return seriesOf(t, 'DCGM_FI_DEV_FB_USED').some((x) => x.labels.pod === 'rerun-0-0') ? t : undefined;
    }, 15_000, 'the new pods');
    expect(await promtoolFindings(text)).toEqual([]);
    expect(seriesOf(text, 'DCGM_FI_DEV_FB_USED').some((x) => x.labels.pod === 'embed-0-0')).toBe(false);
    expect(logLines(s.exp).filter((l) => l.level >= 40)).toEqual([]);
    await expectCleanExit(s.exp, () => s.stop());
  });
});
