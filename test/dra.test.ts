import { copyFileSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { startSimulatedPods, type SimulatedPods } from '../src/sim/simulated-pods.js';
import { scenarioCopy, scrape, seriesOf, startExporterProcess, waitFor, type RunningExporter } from './support/exporter-process.js';
import { promtoolFindings } from './support/promtool.js';

/**
 * Devices allocated through DRA, end to end: the real CLI on the simulated h100x8-dra node,
 * a fake kubelet reporting dynamic_resources and a fake API server serving the ResourceSlice.
 */

const running: RunningExporter[] = [];
const podSides: SimulatedPods[] = [];
afterEach(async () => {
  await Promise.all(running.splice(0).map((r) => r.stop()));
  await Promise.all(podSides.splice(0).map((p) => p.stop()));
});

async function start(opts: { pods?: (doc: Record<string, unknown>) => void; withoutSlices?: boolean; apiDown?: boolean; dra?: boolean; args?: string[] } = {}) {
  const { node, statePath } = scenarioCopy('h100x8-dra');
  const podsPath = statePath.replace(/\.sim$/, '.pods.json');
  copyFileSync(node.statePath.replace(/\.sim$/, '.pods.json'), podsPath);
  if (opts.pods) {
    const doc = JSON.parse(readFileSync(podsPath, 'utf8')) as Record<string, unknown>;
    opts.pods(doc);
    writeFileSync(podsPath, JSON.stringify(doc));
  }
  const pods = await startSimulatedPods(statePath, { nodeName: 'golden-node' });
  podSides.push(pods);
  const api = pods.resourceApi!;
  const slices = api.slices();
  if (opts.withoutSlices) for (const s of slices) api.deleteSlice(s.name);
  if (opts.apiDown) await api.pause();
  const flags = opts.dra === false ? pods.flags.filter((f) => !f.startsWith('--kubernetes.')) : pods.flags;
  const exp = await startExporterProcess({ library: node.libraryPath, statePath, args: [...flags, '--sample-interval=200ms', ...(opts.args ?? [])] });
  running.push(exp);
  await waitFor(async () => (await scrape(exp.url)).includes('kube_gpu_exporter_kubelet_up 1'), 15_000, 'kubelet answering');
  return { exp, pods, api, slices };
}

const gauge = (text: string, name: string) => seriesOf(text, name)[0]?.value;
const holdersOf = (text: string, family: string, gpu: string) =>
  seriesOf(text, family)
    .filter((s) => s.labels.gpu === gpu)
    .map((s) => `${s.labels.namespace}/${s.labels.pod}/${s.labels.container}`)
    .sort();

describe('pods on devices allocated through DRA', () => {
  it('labels GPUs and MIG instances with their claims, beside device-plugin allocations, and splits shared devices', async () => {
    const { exp } = await start();
    const text = await waitFor(async () => {
      const t = await scrape(exp.url);
      return t.includes('kube_gpu_exporter_dra_up 1') && gauge(t, 'kube_gpu_exporter_dra_unresolved_devices') === 0 ? t : undefined;
    }, 20_000, 'DRA devices resolved');
    expect(await promtoolFindings(text, 'dcgm')).toEqual([]);

    const gpu0 = seriesOf(text, 'DCGM_FI_DEV_GPU_UTIL').find((s) => s.labels.gpu === '0')!;
    expect(gpu0.labels).toMatchObject({
      namespace: 'ml-train',
      pod: 'llm-pretrain-0',
      container: 'trainer',
      dra_claim_name: 'llm-pretrain-0-gpus',
      dra_claim_namespace: 'ml-train',
      dra_driver_name: 'gpu.nvidia.com',
      dra_pool_name: 'golden-node',
      dra_device_name: 'gpu-0',
    });
    expect(gpu0.labels.dra_mig_profile).toBeUndefined();
    // the device-plugin GPU beside them: pod labels, no dra_* labels
    const gpu2 = seriesOf(text, 'DCGM_FI_DEV_GPU_UTIL').find((s) => s.labels.gpu === '2')!;
    expect(gpu2.labels.pod).toBe('vision-finetune-7c9f4');
    expect(Object.keys(gpu2.labels).filter((k) => k.startsWith('dra_'))).toEqual([]);
    // one claim in two pods' specs, and a second claim on another share of the same GPU
    expect(holdersOf(text, 'DCGM_FI_DEV_GPU_UTIL', '4')).toEqual(['inference/chat-api-5d8f9-p7m2z/server', 'inference/chat-api-5d8f9-x2k4q/server', 'notebooks/jupyter-alice/notebook']);
    const shares = Object.fromEntries(seriesOf(text, 'gpu_allocated_ratio').filter((s) => s.labels.gpu === '4').map((s) => [s.labels.pod, s.value]));
    expect(shares).toEqual({ 'chat-api-5d8f9-p7m2z': 0.25, 'chat-api-5d8f9-x2k4q': 0.25, 'jupyter-alice': 0.5 });
    // MIG instances: the instance's series, not the parent's, with the MIG labels
    const mig = seriesOf(text, 'gpu_busy_seconds_total').filter((s) => s.labels.gpu === '7' && s.labels.pod);
    expect(mig.map((s) => [s.labels.GPU_I_PROFILE, s.labels.pod, s.labels.dra_mig_profile ?? '-']).sort()).toEqual([
      ['1g.10gb', 'embed-job-2-4hx9d', '1g.10gb'],
      ['1g.10gb', 'embed-job-3-r6t1n', '-'],
      ['3g.40gb', 'embed-job-1-8kq2w', '3g.40gb'],
    ]);
    expect(mig.find((s) => s.labels.pod === 'embed-job-1-8kq2w')!.labels.dra_mig_device_uuid).toMatch(/^MIG-/);
    // whole-GPU series of GPU 7 carry no pod: its instances do
    expect(seriesOf(text, 'DCGM_FI_DEV_FB_USED').filter((s) => s.labels.gpu === '7' && !s.labels.GPU_I_ID && s.labels.pod)).toEqual([]);
    // per-container use is cgroup based: DRA pods get it like the others
    const used = seriesOf(text, 'gpu_container_memory_used_bytes').filter((s) => s.labels.pod === 'eval-runner-0');
    expect(used.length).toBe(1);
  });

  it('leaves a claim unresolved until its slice arrives, and through an API server that was down at start', async () => {
    const { exp, api, slices } = await start({ withoutSlices: true, apiDown: true });
    let text = await scrape(exp.url);
    expect(gauge(text, 'kube_gpu_exporter_dra_up')).toBe(0);
    expect(gauge(text, 'kube_gpu_exporter_dra_unresolved_devices')).toBe(7);
    expect(seriesOf(text, 'DCGM_FI_DEV_GPU_UTIL').find((s) => s.labels.gpu === '0')!.labels.pod).toBe('');
    await waitFor(() => exp.logs().some((l) => l.includes('DRA slices unavailable')), 20_000, 'the failed start logged');
    await api.resume();
    await waitFor(async () => (await scrape(exp.url)).includes('kube_gpu_exporter_dra_up 1'), 20_000, 'watch in sync');
    text = await scrape(exp.url);
    expect(gauge(text, 'kube_gpu_exporter_dra_unresolved_devices')).toBe(7);
    for (const s of slices) api.putSlice(s);
    text = await waitFor(async () => {
      const t = await scrape(exp.url);
      return gauge(t, 'kube_gpu_exporter_dra_unresolved_devices') === 0 ? t : undefined;
    }, 20_000, 'claims resolved');
    expect(seriesOf(text, 'DCGM_FI_DEV_GPU_UTIL').find((s) => s.labels.gpu === '0')!.labels.pod).toBe('llm-pretrain-0');
    expect(exp.logs().filter((l) => l.includes('DRA slices unavailable'))).toHaveLength(1);
  });

  it('without --kubernetes.dra: the devices go unlabelled, counted, and the log says once which flag labels them', async () => {
    const { exp, pods } = await start({ dra: false, args: ['--kubelet.refresh-interval=500ms'] });
    const text = await waitFor(async () => {
      const t = await scrape(exp.url);
      return gauge(t, 'kube_gpu_exporter_dra_unresolved_devices') === 7 ? t : undefined;
    }, 15_000, 'unresolved devices counted');
    expect(seriesOf(text, 'kube_gpu_exporter_dra_up')).toEqual([]);
    expect(seriesOf(text, 'DCGM_FI_DEV_GPU_UTIL').find((s) => s.labels.gpu === '0')!.labels.pod).toBe('');
    // the device-plugin GPU still has its pod
    expect(seriesOf(text, 'DCGM_FI_DEV_GPU_UTIL').find((s) => s.labels.gpu === '2')!.labels.pod).toBe('vision-finetune-7c9f4');
    // several kubelet refreshes later: still one line
    const lists = pods.kubelet.calls.list;
    await waitFor(() => pods.kubelet.calls.list >= lists + 3, 15_000, 'three more kubelet refreshes');
    const lines = exp.logs().filter((l) => l.includes('allocated through DRA'));
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain('7 device(s)');
  });

  it('escapes odd claim, pod and container names and ignores passthrough (vfio) devices', async () => {
    const odd = 'we"ird\\claim\nname';
    const { exp } = await start({
      pods: (doc) => {
        const dra = doc.dra as { devices: string[]; claims: Record<string, unknown> };
        dra.devices.push('vfio:5');
        dra.claims[`odd-ns/${odd}`] = ['gpu:5'];
        dra.claims['odd-ns/passthrough'] = ['vfio:5'];
        (doc.pods as unknown[]).push({ namespace: 'odd-ns', name: 'pod "quoted" \\ back', containers: [{ name: 'c\nnl', claims: [`odd-ns/${odd}`] }, { name: 'vm', claims: ['odd-ns/passthrough'] }] });
      },
    });
    const text = await waitFor(async () => {
      const t = await scrape(exp.url);
      return t.includes('kube_gpu_exporter_dra_up 1') && gauge(t, 'kube_gpu_exporter_dra_unresolved_devices') === 0 && t.includes('odd-ns') ? t : undefined;
    }, 20_000, 'odd claim resolved');
    expect(await promtoolFindings(text, 'dcgm')).toEqual([]);
    const gpu5 = seriesOf(text, 'DCGM_FI_DEV_GPU_UTIL').filter((s) => s.labels.gpu === '5');
    expect(gpu5).toHaveLength(1);
    // label values as written in the exposition: quote, backslash and newline escaped
    const escaped = (v: string) => v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
    expect(gpu5[0]!.labels).toMatchObject({ pod: escaped('pod "quoted" \\ back'), container: escaped('c\nnl'), dra_claim_name: escaped(odd) });
    expect(text).toContain('dra_claim_name="we\\"ird\\\\claim\\nname"');
  });
});
