import { spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { appendFileSync, mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { Exporter } from '../src/exporter.js';
import { scenarioCopy, scrape, seriesOf, startExporterProcess, waitFor, type RunningExporter } from './support/exporter-process.js';
import { startInProcess } from './support/in-process.js';

/** Start, stop and survive: signals, a hung NVML call at shutdown, a bad web config, a dying worker. */
const running: RunningExporter[] = [];
afterAll(async () => {
  for (const r of running) if (r.child.exitCode === null) r.child.kill('SIGKILL');
});

async function started(extra: string, args: string[] = []): Promise<RunningExporter> {
  const { node, statePath } = scenarioCopy('workstation');
  if (extra) appendFileSync(statePath, `\n${extra}\n`);
  const exp = await startExporterProcess({ library: node.libraryPath, statePath, args: ['--kubelet.socket=none', '--sample-interval=200ms', ...args] });
  running.push(exp);
  await waitFor(async () => (await fetch(`${exp.url}/readyz`)).status === 200, 10_000, 'readyz');
  return exp;
}

async function signalled(exp: RunningExporter, signal: NodeJS.Signals): Promise<{ code: number | null; ms: number }> {
  const t0 = Date.now();
  exp.child.kill(signal);
  const [code] = (await once(exp.child, 'exit')) as [number | null];
  return { code, ms: Date.now() - t0 };
}

function logged(exp: RunningExporter, msg: string): Record<string, unknown>[] {
  return exp.logs().flatMap((l) => {
    try {
      const rec = JSON.parse(l) as Record<string, unknown>;
      return rec.msg === msg ? [rec] : [];
    } catch {
      return [];
    }
  });
}

describe('signals', () => {
  it.each(['SIGTERM', 'SIGINT'] as const)('%s stops sampling, shuts NVML down and exits 0', async (signal) => {
    // nvmlShutdown takes 600 ms in this scenario: a stop that long proves it was called and waited for
    const exp = await started('latency nvmlShutdown * 600');
    const { code, ms } = await signalled(exp, signal);
    expect(code).toBe(0);
    expect(ms).toBeGreaterThanOrEqual(600);
    expect(ms).toBeLessThan(5000);
    expect(logged(exp, 'shutting down')[0]).toMatchObject({ signal });
    expect(Number(logged(exp, 'stopped')[0]!.tookMs)).toBeGreaterThanOrEqual(600);
  });

  it('a stop stuck behind a 30 s NVML call exits at --shutdown-timeout instead of waiting', async () => {
    const exp = await started('latency nvmlDeviceGetTemperature * 30000 1500', ['--shutdown-timeout=2s']);
    await waitFor(() => exp.logs().some((l) => l.includes('previous sampling tick still running')), 10_000, 'the hang to begin');
    const t0 = Date.now();
    expect((await fetch(`${exp.url}/metrics`)).status).toBe(200); // still serving from the last sample
    expect(Date.now() - t0).toBeLessThan(1000);
    const { code, ms } = await signalled(exp, 'SIGTERM');
    expect(code).toBe(1);
    expect(ms).toBeGreaterThanOrEqual(1900);
    expect(ms).toBeLessThan(4000);
    expect(exp.logs().some((l) => l.includes('shutdown did not finish within --shutdown-timeout'))).toBe(true);
  });

  it('SIGHUP re-reads the web config', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'kge-hup-'));
    const web = path.join(dir, 'web.yml');
    writeFileSync(web, 'http_server_config:\n  headers:\n    X-Frame-Options: deny\n');
    const exp = await started('', [`--web.config.file=${web}`]);
    expect((await fetch(`${exp.url}/metrics`)).headers.get('x-frame-options')).toBe('deny');
    writeFileSync(web, 'http_server_config:\n  headers:\n    X-Frame-Options: sameorigin\n');
    exp.child.kill('SIGHUP');
    await waitFor(async () => (await fetch(`${exp.url}/metrics`)).headers.get('x-frame-options') === 'sameorigin', 3000, 'the new header');
    expect(await exp.stop()).toBe(0);
  });
});

describe('bad input at start', () => {
  it('a bad web config file exits 2 with one line naming the file and the field', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'kge-badweb-'));
    const web = path.join(dir, 'web.yml');
    writeFileSync(web, 'basic_auth_users:\n  alice: hunter2\n');
    const r = spawnSync(process.execPath, ['--import', 'tsx', 'src/main.ts', `--web.config.file=${web}`, '--kubelet.socket=none', '--nvml.library=/nonexistent.so'], { encoding: 'utf8', timeout: 20_000 });
    expect(r.status).toBe(2);
    const lines = r.stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toBe(`kube-gpu-exporter: web config ${web}: basic_auth_users.alice: is not a bcrypt hash (e.g. from htpasswd -nBC 10 "" | tr -d ':\\n') [KGE_WEB_CONFIG_INVALID]`);
  });
});

describe('a sampling worker that dies', () => {
  let exporter: Exporter | undefined;
  afterAll(async () => {
    await exporter?.stop();
  });

  it('is restarted and logged, and /metrics keeps answering meanwhile', async () => {
    const { node, statePath } = scenarioCopy('workstation');
    process.env.KGE_SIM_STATE = statePath;
    const started = await startInProcess({ nvmlLibrary: node.libraryPath, nvmlRetryMs: 300 });
    exporter = started.exporter;
    await exporter.sampler.nextSample();
    const worker = (exporter.sampler as unknown as { worker: import('node:worker_threads').Worker }).worker;
    await worker.terminate();
    expect((await fetch(`${started.url}/metrics`)).status).toBe(200);
    await waitFor(() => started.logs.some((l) => l.msg === 'sampling worker exited; restarting it'), 3000, 'the restart log line');
    const before = exporter.sampler.latest!.takenAtMs;
    const next = await exporter.sampler.nextSample(5000);
    expect(next.takenAtMs).toBeGreaterThan(before);
    expect(seriesOf(await scrape(started.url), 'DCGM_FI_DEV_GPU_TEMP')).toHaveLength(1);
    expect(started.logs.filter((l) => l.msg === 'sampling worker exited; restarting it')).toHaveLength(1);
  });
});
