import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import bcrypt from 'bcryptjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeTestPki } from './support/certs.js';
import { scenarioCopy, startExporterProcess, waitFor, type RunningExporter } from './support/exporter-process.js';

/** A real Prometheus scrapes the exporter over TLS (client certificate and basic auth). */
const pki = makeTestPki();
const { node, statePath } = scenarioCopy('workstation');
const dir = mkdtempSync(path.join(os.tmpdir(), 'kge-prom-tls-'));
let exporter: RunningExporter;
let prometheus: ChildProcess;
let promUrl: string;

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

interface Target {
  labels: Record<string, string>;
  health: string;
  lastError: string;
}

beforeAll(async () => {
  const webFile = path.join(dir, 'web.yml');
  writeFileSync(
    webFile,
    [
      'tls_server_config:', `  cert_file: ${pki.server.certFile}`, `  key_file: ${pki.server.keyFile}`,
      `  client_ca_file: ${pki.ca.certFile}`, '  client_auth_type: RequireAndVerifyClientCert',
      'basic_auth_users:', `  prometheus: ${bcrypt.hashSync('scrape-pw', 8)}`, '',
    ].join('\n'),
  );
  exporter = await startExporterProcess({ library: node.libraryPath, statePath, args: [`--web.config.file=${webFile}`, '--kubelet.socket=none', '--sample-interval=500ms'] });
  const exporterPort = new URL(exporter.url).port;
  const job = (name: string, password: string) => [
    `  - job_name: ${name}`, '    scheme: https',
    '    tls_config:', `      ca_file: ${pki.ca.certFile}`, `      cert_file: ${pki.client.certFile}`, `      key_file: ${pki.client.keyFile}`, '      server_name: localhost',
    '    basic_auth:', '      username: prometheus', `      password: ${password}`,
    '    static_configs:', `      - targets: ['127.0.0.1:${exporterPort}']`,
  ];
  const config = path.join(dir, 'prometheus.yml');
  writeFileSync(config, ['global:', '  scrape_interval: 1s', '  scrape_timeout: 900ms', 'scrape_configs:', ...job('gpu', 'scrape-pw'), ...job('gpu-wrong-password', 'guess'), ''].join('\n'));
  const port = await freePort();
  promUrl = `http://127.0.0.1:${port}`;
  prometheus = spawn('prometheus', [`--config.file=${config}`, `--storage.tsdb.path=${path.join(dir, 'data')}`, `--web.listen-address=127.0.0.1:${port}`, '--log.level=warn'], { stdio: 'ignore' });
});

afterAll(async () => {
  prometheus?.kill('SIGTERM');
  await exporter?.stop();
});

async function targets(): Promise<Target[]> {
  const res = await fetch(`${promUrl}/api/v1/targets`).catch(() => undefined);
  if (!res?.ok) return [];
  return ((await res.json()) as { data: { activeTargets: Target[] } }).data.activeTargets;
}

describe('a real Prometheus over TLS with basic auth', () => {
  it('scrapes the exporter with its client certificate and password; a wrong password is refused', async () => {
    const seen = await waitFor(
      async () => {
        const t = await targets();
        const ok = t.find((x) => x.labels.job === 'gpu');
        const bad = t.find((x) => x.labels.job === 'gpu-wrong-password');
        return ok?.health === 'up' && bad?.health === 'down' ? { ok, bad } : undefined;
      },
      30_000,
      'both targets scraped',
    );
    expect(seen.ok.lastError).toBe('');
    expect(seen.bad.lastError).toMatch(/401/);
    const q = await waitFor(async () => {
      const res = (await (await fetch(`${promUrl}/api/v1/query?query=${encodeURIComponent('DCGM_FI_DEV_GPU_TEMP{job="gpu"}')}`)).json()) as { data: { result: { metric: Record<string, string>; value: [number, string] }[] } };
      return res.data.result.length ? res.data.result : undefined;
    }, 15_000, 'a GPU series in Prometheus');
    expect(q[0]!.metric.modelName).toBeTruthy();
    expect(Number(q[0]!.value[1])).toBeGreaterThan(0);
  });
});
