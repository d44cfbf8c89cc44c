import { writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import bcrypt from 'bcryptjs';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { WebConfigWatcher } from '../src/config/web-config-watcher.js';
import type { Exporter } from '../src/exporter.js';
import { makeTestPki } from './support/certs.js';
import { scenarioCopy, waitFor } from './support/exporter-process.js';
import { httpsRequest } from './support/https-client.js';
import { startInProcess, type LogRecord } from './support/in-process.js';

/** TLS, client certificates, basic auth, headers, limits and reloads, through real handshakes. */
const pki = makeTestPki();
const { node, statePath } = scenarioCopy('workstation');
const HASH_ALICE = bcrypt.hashSync('alice-pw', 6);
const HASH_BOB = bcrypt.hashSync('bob-pw', 6);
const webFile = path.join(pki.dir, 'web.yml');

function webConfig(opts: { cert?: 'server' | 'serverRotated'; users?: string; clientAuth?: string; sans?: string[]; extra?: string } = {}): string {
  const cert = pki[opts.cert ?? 'server'];
  const lines = ['tls_server_config:', `  cert_file: ${cert.certFile}`, `  key_file: ${cert.keyFile}`];
  if (opts.clientAuth) lines.push(`  client_auth_type: ${opts.clientAuth}`, `  client_ca_file: ${pki.ca.certFile}`);
  if (opts.sans) lines.push(`  client_allowed_sans: [${opts.sans.join(', ')}]`);
  lines.push('http_server_config:', '  headers:', '    X-Content-Type-Options: nosniff', '    X-Frame-Options: deny');
  lines.push('basic_auth_users:', opts.users ?? `  alice: ${HASH_ALICE}\n  bob: ${HASH_BOB}`);
  return lines.join('\n') + '\n' + (opts.extra ?? '');
}

let exporter: Exporter;
let port: number;
let logs: LogRecord[];

async function reload(text: string): Promise<boolean> {
  writeFileSync(webFile, text);
  return exporter.webConfig!.check();
}

beforeAll(async () => {
  process.env.KGE_SIM_STATE = statePath;
  writeFileSync(webFile, webConfig());
  let url: string;
  ({ exporter, url, logs } = await startInProcess({ nvmlLibrary: node.libraryPath, webConfigFile: webFile, webMaxRequests: 3, webReadHeaderTimeoutMs: 1000, webRequestTimeoutMs: 5000 }));
  port = Number(new URL(url).port);
  await waitFor(async () => (await httpsRequest(port, '/readyz', { ca: pki.ca.cert })).status === 200, 10_000, 'readyz');
});
afterAll(async () => {
  await exporter.stop();
});

const ca = () => ({ ca: pki.ca.cert });

describe('TLS', () => {
  it('serves /metrics over TLS with the configured certificate and security headers', async () => {
    const res = await httpsRequest(port, '/metrics', { ...ca(), auth: 'alice:alice-pw' });
    expect(res.status).toBe(200);
    expect(res.body).toContain('DCGM_FI_DEV_GPU_TEMP{');
    expect(res.body).toContain('kube_gpu_exporter_web_config_last_reload_successful 1');
    expect(res.serverCert.fingerprint256).toBe(new (await import('node:crypto')).X509Certificate(pki.server.cert).fingerprint256);
    expect(res.headers['x-content-type-options']).toBe('nosniff');
    expect(res.headers['x-frame-options']).toBe('deny');
  });

  it('refuses plain HTTP on the TLS port', async () => {
    const res = await fetch(`http://127.0.0.1:${port}/metrics`).then((r) => r.status, (err: Error) => err.message);
    expect(res).not.toBe(200);
  });

  it('refuses a client whose only TLS version is below min_version', async () => {
    await reload(webConfig({ extra: '' }).replace('  key_file:', '  min_version: TLS13\n  key_file:'));
    await expect(httpsRequest(port, '/healthz', { ...ca(), maxVersion: 'TLSv1.2' })).rejects.toThrow(/protocol version|alert|handshake|socket hang up|ECONNRESET/i);
    expect((await httpsRequest(port, '/healthz', { ...ca(), minVersion: 'TLSv1.3' })).status).toBe(200);
    await reload(webConfig());
  });
});

describe('basic auth', () => {
  it('lets a known user in and refuses a wrong password, an unknown user and no credentials alike', async () => {
    expect((await httpsRequest(port, '/metrics', { ...ca(), auth: 'bob:bob-pw' })).status).toBe(200);
    for (const auth of ['alice:wrong', 'mallory:alice-pw', 'alice:', undefined]) {
      const res = await httpsRequest(port, '/metrics', { ...ca(), ...(auth !== undefined ? { auth } : {}) });
      expect(res.status, String(auth)).toBe(401);
      expect(res.headers['www-authenticate']).toMatch(/^Basic realm="kube-gpu-exporter"/);
      expect(res.body).not.toContain('DCGM_');
    }
  });

  it('an unknown user costs a bcrypt comparison against a real hash, as a wrong password does', async () => {
    const spy = vi.spyOn(bcrypt, 'compare');
    try {
      await httpsRequest(port, '/metrics', { ...ca(), auth: 'mallory:whatever' });
      await httpsRequest(port, '/metrics', { ...ca(), auth: 'alice:whatever' });
      expect(spy).toHaveBeenCalledTimes(2);
      const [unknown, wrong] = spy.mock.calls.map((c) => c[1]);
      expect(unknown === HASH_ALICE || unknown === HASH_BOB).toBe(true);
      expect(wrong).toBe(HASH_ALICE);
    } finally {
      spy.mockRestore();
    }
  });

  it('probes answer without credentials; every other page needs them', async () => {
    expect((await httpsRequest(port, '/healthz', ca())).status).toBe(200);
    expect((await httpsRequest(port, '/readyz', ca())).status).toBe(200);
    expect((await httpsRequest(port, '/', ca())).status).toBe(401);
    expect((await httpsRequest(port, '/', { ...ca(), auth: 'alice:alice-pw' })).status).toBe(200);
  });
});

describe('client certificates', () => {
  it('RequireAndVerifyClientCert admits a certificate from the CA and refuses none or a stranger\'s', async () => {
    expect(await reload(webConfig({ clientAuth: 'RequireAndVerifyClientCert' }))).toBe(true);
    const good = await httpsRequest(port, '/metrics', { ...ca(), cert: pki.client.cert, key: pki.client.key, auth: 'alice:alice-pw' });
    expect(good.status).toBe(200);
    await expect(httpsRequest(port, '/metrics', { ...ca(), auth: 'alice:alice-pw' })).rejects.toThrow();
    await expect(httpsRequest(port, '/metrics', { ...ca(), cert: pki.strangerClient.cert, key: pki.strangerClient.key, auth: 'alice:alice-pw' })).rejects.toThrow();
  });

  it('client_allowed_sans refuses a verified certificate with another name', async () => {
    await reload(webConfig({ clientAuth: 'RequireAndVerifyClientCert', sans: ['scraper.example'] }));
    expect((await httpsRequest(port, '/healthz', { ...ca(), cert: pki.client.cert, key: pki.client.key })).status).toBe(200);
    await expect(httpsRequest(port, '/healthz', { ...ca(), cert: pki.otherClient.cert, key: pki.otherClient.key })).rejects.toThrow();
  });

  it('VerifyClientCertIfGiven admits no certificate but refuses an unverified one', async () => {
    await reload(webConfig({ clientAuth: 'VerifyClientCertIfGiven' }));
    expect((await httpsRequest(port, '/healthz', ca())).status).toBe(200);
    expect((await httpsRequest(port, '/healthz', { ...ca(), cert: pki.client.cert, key: pki.client.key })).status).toBe(200);
    await expect(httpsRequest(port, '/healthz', { ...ca(), cert: pki.strangerClient.cert, key: pki.strangerClient.key })).rejects.toThrow();
    await reload(webConfig());
  });
});

describe('reloading the web config', () => {
  it('a new password and a rotated certificate take effect without a restart', async () => {
    const HASH_NEW = bcrypt.hashSync('new-pw', 4);
    expect(await reload(webConfig({ cert: 'serverRotated', users: `  alice: ${HASH_NEW}` }))).toBe(true);
    expect((await httpsRequest(port, '/metrics', { ...ca(), auth: 'alice:alice-pw' })).status).toBe(401);
    const res = await httpsRequest(port, '/metrics', { ...ca(), auth: 'alice:new-pw' });
    expect(res.status).toBe(200);
    const { X509Certificate } = await import('node:crypto');
    expect(res.serverCert.fingerprint256).toBe(new X509Certificate(pki.serverRotated.cert).fingerprint256);
    await reload(webConfig());
  });

  it('a broken change keeps the last good config, says so once, and recovers when fixed', async () => {
    const before = logs.length;
    expect(await reload('basic_auth_users:\n  alice: not-a-hash\n')).toBe(false);
    expect(exporter.webConfig!.check()).toBe(false); // still broken: not logged again
    expect((await httpsRequest(port, '/metrics', { ...ca(), auth: 'alice:alice-pw' })).status).toBe(200);
    const rejected = logs.slice(before).filter((l) => l.msg === 'web config change rejected; keeping the last good config');
    expect(rejected).toHaveLength(1);
    expect(String(rejected[0]!.err)).toMatch(/basic_auth_users\.alice: is not a bcrypt hash/);
    await exporter.sampler.nextSample();
    await new Promise((r) => setTimeout(r, 20));
    const metrics = (await httpsRequest(port, '/metrics', { ...ca(), auth: 'alice:alice-pw' })).body;
    expect(metrics).toContain('kube_gpu_exporter_web_config_last_reload_successful 0');
    expect(await reload(webConfig())).toBe(true);
    expect(exporter.webConfig!.status.lastReloadSuccessful).toBe(true);
  });

  it('turning TLS off needs a restart: the change is refused and TLS stays', async () => {
    expect(await reload(`basic_auth_users:\n  alice: ${HASH_ALICE}\n`)).toBe(false);
    expect(logs.at(-1)!.err).toMatch(/turning TLS on or off needs a restart/);
    expect((await httpsRequest(port, '/healthz', ca())).status).toBe(200);
    await reload(webConfig());
  });

  it('a watcher notices a changed certificate file on its own, by polling', async () => {
    const file = path.join(pki.dir, 'poll.yml');
    writeFileSync(file, 'rate_limit:\n  interval: 1s\n  burst: 5\n');
    const watcher = new WebConfigWatcher(file, pino({ level: 'silent' }), 50);
    const changed = new Promise((resolve) => watcher.once('change', resolve));
    watcher.start();
    writeFileSync(file, 'rate_limit:\n  interval: 2s\n  burst: 5\n');
    await expect(changed).resolves.toMatchObject({ rateLimit: { intervalMs: 2000, burst: 5 } });
    watcher.stop();
  });
});

describe('limits', () => {
  it('answers 503 beyond --web.max-requests in flight, and serves again after', async () => {
    await reload(webConfig({ users: `  slow: ${bcrypt.hashSync('pw', 11)}` })); // each check takes a while: requests stay in flight
    // open the connections first, so the scrapes arrive together rather than one handshake apart
    const agent = new (await import('node:https')).Agent({ keepAlive: true, maxSockets: 10, ca: pki.ca.cert });
    await Promise.all(Array.from({ length: 10 }, () => httpsRequest(port, '/healthz', { ...ca(), agent })));
    let most = 0;
    const watch = setInterval(() => (most = Math.max(most, exporter.guard.inFlight.current)), 2);
    const results = await Promise.all(Array.from({ length: 10 }, (_, i) => httpsRequest(port, '/metrics', { ...ca(), agent, auth: `slow:wrong-${i}` })));
    clearInterval(watch);
    agent.destroy();
    const statuses = results.map((r) => r.status);
    expect(statuses.filter((s) => s !== 503 && s !== 401)).toEqual([]);
    expect(statuses.filter((s) => s === 503).length).toBeGreaterThanOrEqual(1);
    expect(most).toBe(3);
    expect(results.find((r) => r.status === 503)!.body).toContain('--web.max-requests');
    await waitFor(() => exporter.guard.inFlight.current === 0, 2000, 'every slot given back');
    expect((await httpsRequest(port, '/healthz', ca())).status).toBe(200);
    await reload(webConfig());
  });

  it('the web config\'s rate limit answers 429 beyond its burst', async () => {
    await reload(webConfig({ extra: 'rate_limit:\n  interval: 1m\n  burst: 2\n' }));
    const statuses: number[] = [];
    for (let i = 0; i < 4; i++) statuses.push((await httpsRequest(port, '/metrics', { ...ca(), auth: 'alice:alice-pw' })).status);
    expect(statuses).toEqual([200, 200, 429, 429]);
    expect((await httpsRequest(port, '/healthz', ca())).status).toBe(200); // probes are not limited
    await reload(webConfig());
  });

  it('GET and HEAD only; unknown paths 404; nothing of the request is echoed', async () => {
    const post = await httpsRequest(port, '/metrics', { ...ca(), auth: 'alice:alice-pw', method: 'POST' });
    expect(post.status).toBe(405);
    expect(post.headers.allow).toBe('GET, HEAD');
    const head = await httpsRequest(port, '/metrics', { ...ca(), auth: 'alice:alice-pw', method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(head.body).toBe('');
    const probe = '/<script>alert(1)</script>';
    const missing = await httpsRequest(port, encodeURI(probe), { ...ca(), auth: 'alice:alice-pw' });
    expect(missing.status).toBe(404);
    expect(missing.body).not.toMatch(/script|alert/);
  });

  it('closes a connection that sends its headers too slowly (slowloris)', async () => {
    const { connect } = await import('node:tls');
    const socket = connect({ host: '127.0.0.1', port, ca: pki.ca.cert, servername: 'localhost' });
    await new Promise((resolve, reject) => socket.once('secureConnect', resolve).once('error', reject));
    const t0 = Date.now();
    socket.write('GET /metrics HTTP/1.1\r\nHost: x\r\n'); // never finishes the headers
    const closedAfter = await new Promise<number>((resolve) => {
      socket.on('data', () => {});
      socket.once('close', () => resolve(Date.now() - t0));
      socket.once('error', () => {});
    });
    expect(closedAfter).toBeGreaterThanOrEqual(900);
    expect(closedAfter).toBeLessThan(4000);
  });

  it('closes a TCP connection that never starts the TLS handshake', async () => {
    const socket = net.connect(port, '127.0.0.1');
    const closed = await new Promise<boolean>((resolve) => {
      socket.once('close', () => resolve(true));
      socket.once('error', () => {});
      setTimeout(() => resolve(false), 4000);
    });
    expect(closed).toBe(true);
  });
});
