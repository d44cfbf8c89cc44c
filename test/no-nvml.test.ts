import { copyFileSync, mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { simulatedNode } from '../src/sim/harness.js';
import { scrape, seriesOf, startExporterProcess, waitFor, type RunningExporter } from './support/exporter-process.js';

/** `npm start` on a node whose driver is not there yet: serve, say where we looked, retry. */
const running: RunningExporter[] = [];
afterAll(async () => {
  await Promise.all(running.map((r) => r.stop()));
});

describe('NVML missing at start', () => {
  it('serves with /readyz failing, logs every place tried, and picks NVML up when it appears', async () => {
    const node = simulatedNode('workstation');
    const dir = mkdtempSync(path.join(os.tmpdir(), 'kge-late-driver-'));
    const lateLibrary = path.join(dir, 'libnvidia-ml.so.1');
    const exp = await startExporterProcess({ library: lateLibrary, statePath: node.statePath, args: ['--nvml.retry-interval=200ms'] });
    running.push(exp);
    expect((await fetch(`${exp.url}/readyz`)).status).toBe(503);
    // once the first load attempt has failed, /readyz says where it looked
    const reason = await waitFor(async () => {
      const text = await (await fetch(`${exp.url}/readyz`)).text();
      return text.includes('tried') ? text : undefined;
    }, 5000, 'the not-found reason');
    expect(reason).toContain(`${lateLibrary} (no such file)`);
    expect(seriesOf(await scrape(exp.url), 'kube_gpu_exporter_nvml_up')[0]!.value).toBe(0);
    await waitFor(() => exp.logs().some((l) => l.includes('NVML unavailable')), 5000, 'the unavailable log line');

    copyFileSync(node.libraryPath, lateLibrary);
    await waitFor(async () => (await fetch(`${exp.url}/readyz`)).status === 200, 10_000, 'readyz after the driver appeared');
    await waitFor(async () => seriesOf(await scrape(exp.url), 'DCGM_FI_DEV_GPU_TEMP').length === 1, 5000, 'GPU series');
    expect(seriesOf(await scrape(exp.url), 'kube_gpu_exporter_nvml_up')[0]!.value).toBe(1);
    expect(exp.logs().filter((l) => l.includes('NVML unavailable'))).toHaveLength(1);
  });

  it('exits 2 with one line naming a bad flag', async () => {
    const { spawnSync } = await import('node:child_process');
    const r = spawnSync(process.execPath, ['--import', 'tsx', 'src/main.ts', '--sample-interval=fast'], { encoding: 'utf8' });
    expect(r.status).toBe(2);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toContain('--sample-interval');
    expect(r.stderr).toContain('KGE_FLAG_INVALID');
  });
});
