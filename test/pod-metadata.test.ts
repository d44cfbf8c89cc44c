import { afterEach, describe, expect, it } from 'vitest';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import pino from 'pino';
import { PodMetadataWatcher, podLabelName, type PodMetadataOptions } from '../src/attribution/pod-metadata.js';
import { FakeApiServer } from './support/fake-apiserver.js';

const NODE = 'node-a';

interface LogLine {
  level: number;
  msg: string;
  [k: string]: unknown;
}

function captureLogger(): { logger: pino.Logger; lines: LogLine[] } {
  const lines: LogLine[] = [];
  const logger = pino({ level: 'debug' }, { write: (s: string) => void lines.push(JSON.parse(s) as LogLine) });
  return { logger, lines };
}

const WARN = 40;
const INFO = 30;

async function waitFor(pred: () => boolean, timeoutMs = 5000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!pred()) {
    if (Date.now() > deadline) throw new Error(`waitFor: ${what} not met within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

let server: FakeApiServer | undefined;
const watchers: PodMetadataWatcher[] = [];
const extraServers: http.Server[] = [];

function makeWatcher(overrides: Partial<PodMetadataOptions> = {}): { w: PodMetadataWatcher; lines: LogLine[] } {
  const { logger, lines } = captureLogger();
  const w = new PodMetadataWatcher({
    nodeName: NODE,
    server: server?.url,
    logger,
    backoff: { initialMs: 20, maxMs: 200 },
    requestTimeoutMs: 3000,
    ...overrides,
  });
  watchers.push(w);
  return { w, lines };
}

afterEach(async () => {
  await Promise.all(watchers.splice(0).map((w) => w.stop()));
  await server?.close();
  server = undefined;
  for (const s of extraServers.splice(0)) {
    s.closeAllConnections();
    await new Promise((r) => s.close(r));
  }
});

describe('podLabelName', () => {
  it('maps pod label keys kube-state-metrics style', () => {
    expect(podLabelName('app')).toBe('label_app');
    expect(podLabelName('app.kubernetes.io/name')).toBe('label_app_kubernetes_io_name');
    expect(podLabelName('pod-template-hash')).toBe('label_pod_template_hash');
    expect(podLabelName('Team_1')).toBe('label_Team_1');
    expect(podLabelName('a\u00e9b')).toBe('label_a_b');
  });
});

describe('PodMetadataWatcher against a fake API server', () => {
  it('lists the node\'s pods at start, with the spec.nodeName field selector on both list and watch', async () => {
    server = await FakeApiServer.start({ defaultNodeName: NODE });
    const a = server.addPod({ namespace: 'ml', name: 'train-0', labels: { app: 'train' } });
    const b = server.addPod({ namespace: 'ml', name: 'infer-0' });
    server.addPod({ namespace: 'ml', name: 'elsewhere', nodeName: 'node-b' });
    const { w, lines } = makeWatcher();

    expect(w.synced).toBe(false);
    expect(w.metadataOf('ml', 'train-0')).toBeUndefined();
    await w.start();

    expect(w.synced).toBe(true);
    expect(w.size).toBe(2);
    expect(w.metadataOf('ml', 'train-0')).toEqual({ uid: a.metadata.uid, labels: {} });
    expect(w.metadataOf('ml', 'infer-0')?.uid).toBe(b.metadata.uid);
    expect(w.metadataOf('ml', 'elsewhere')).toBeUndefined();
    expect(w.metadataOf('other', 'train-0')).toBeUndefined();

    const [list] = server.listRequests();
    expect(list?.path).toBe('/api/v1/pods');
    expect(list?.query['fieldSelector']).toBe(`spec.nodeName=${NODE}`);
    expect(list?.query['resourceVersion']).toBe('0'); // served from the apiserver watch cache

    await waitFor(() => server!.openWatchCount === 1, 3000, 'watch opened');
    const [watch] = server.watchRequests();
    expect(watch?.path).toBe('/api/v1/pods');
    expect(watch?.query['fieldSelector']).toBe(`spec.nodeName=${NODE}`);
    expect(watch?.query['resourceVersion']).toBe(server.resourceVersion);
    expect(watch?.query['allowWatchBookmarks']).toBe('true');
    const timeout = Number(watch?.query['timeoutSeconds']);
    expect(timeout).toBeGreaterThanOrEqual(300);
    expect(timeout).toBeLessThanOrEqual(600);

    expect(server.listRequests()).toHaveLength(1);
    expect(lines.filter((l) => l.level === INFO && /initial pod list/.test(l.msg))).toHaveLength(1);
  });

  it('keeps only allowlisted label keys (none without an allowlist)', async () => {
    server = await FakeApiServer.start({ defaultNodeName: NODE });
    const labels = { app: 'train', 'team.example.com/owner': 'ml-infra', 'pod-template-hash': '7d9f', 'controller-revision-hash': 'x' };
    server.addPod({ namespace: 'ml', name: 'p1', labels });
    server.addPod({ namespace: 'ml', name: 'p2', labels });
    server.addPod({ namespace: 'ml', name: 'p3', labels: { unrelated: 'y' } });

    // A /g RegExp is stateful in test(); it must still match every pod's keys.
    const { w } = makeWatcher({ labelAllowlist: /^(app|team\.example\.com\/owner)$/g });
    await w.start();
    const expected = { app: 'train', 'team.example.com/owner': 'ml-infra' };
    expect(w.metadataOf('ml', 'p1')?.labels).toEqual(expected);
    expect(w.metadataOf('ml', 'p2')?.labels).toEqual(expected);
    expect(w.metadataOf('ml', 'p3')?.labels).toEqual({});
    expect(Object.isFrozen(w.metadataOf('ml', 'p1')?.labels)).toBe(true);

    const { w: none } = makeWatcher();
    await none.start();
    expect(none.metadataOf('ml', 'p1')?.labels).toEqual({});
  });

  it('applies ADDED / MODIFIED / DELETED from the watch without relisting', async () => {
    server = await FakeApiServer.start({ defaultNodeName: NODE });
    server.addPod({ namespace: 'ml', name: 'train-0', labels: { app: 'v1' } });
    const { w } = makeWatcher({ labelAllowlist: /^app$/ });
    await w.start();
    await waitFor(() => server!.openWatchCount === 1, 3000, 'watch opened');

    const added = server.addPod({ namespace: 'ml', name: 'train-1', labels: { app: 'new', other: 'x' } });
    await waitFor(() => w.metadataOf('ml', 'train-1') !== undefined, 3000, 'ADDED applied');
    expect(w.metadataOf('ml', 'train-1')).toEqual({ uid: added.metadata.uid, labels: { app: 'new' } });

    server.modifyPod('ml', 'train-0', { labels: { app: 'v2' } });
    await waitFor(() => w.metadataOf('ml', 'train-0')?.labels['app'] === 'v2', 3000, 'MODIFIED applied');

    // A change to a label outside the allowlist keeps the same (frozen) object.
    const before = w.metadataOf('ml', 'train-0');
    server.modifyPod('ml', 'train-0', { labels: { app: 'v2', ignored: 'z' } });
    server.modifyPod('ml', 'train-0', { labels: { app: 'v3' } });
    await waitFor(() => w.metadataOf('ml', 'train-0')?.labels['app'] === 'v3', 3000, 'second MODIFIED applied');
    expect(before?.labels).toEqual({ app: 'v2' });

    server.deletePod('ml', 'train-1');
    await waitFor(() => w.metadataOf('ml', 'train-1') === undefined, 3000, 'DELETED applied');

    // Pods of other nodes never show up; one bound to this node later does.
    server.addPod({ namespace: 'ml', name: 'pending', nodeName: 'node-b' });
    server.modifyPod('ml', 'pending', { nodeName: NODE });
    await waitFor(() => w.metadataOf('ml', 'pending') !== undefined, 3000, 'pod moved onto node');
    expect(w.size).toBe(2);

    expect(server.listRequests()).toHaveLength(1);
    expect(server.watchRequests()).toHaveLength(1);
    expect(w.synced).toBe(true);
  });

  it('takes the resourceVersion of bookmarks', async () => {
    server = await FakeApiServer.start({ defaultNodeName: NODE });
    const { w } = makeWatcher();
    await w.start();
    await waitFor(() => server!.openWatchCount === 1, 3000, 'watch opened');
    server.addPod({ namespace: 'x', name: 'other-node', nodeName: 'node-b' }); // bumps the version, no event for us
    server.bookmark();
    await sleep(100);
    server.closeWatches();
    await waitFor(() => server!.watchRequests().length === 2, 3000, 'reconnect');
    expect(server.watchRequests()[1]?.query['resourceVersion']).toBe(server.resourceVersion);
  });

  it('re-opens the watch from the last resourceVersion when the server closes the stream', async () => {
    server = await FakeApiServer.start({ defaultNodeName: NODE });
    server.addPod({ namespace: 'ml', name: 'a' });
    const { w, lines } = makeWatcher();
    await w.start();
    await waitFor(() => server!.openWatchCount === 1, 3000, 'watch opened');
    server.addPod({ namespace: 'ml', name: 'b' });
    await waitFor(() => w.metadataOf('ml', 'b') !== undefined, 3000, 'b seen');
    const rvAfterB = server.resourceVersion;

    expect(server.closeWatches()).toBe(1);
    // A change made while the watcher is between streams is replayed on reconnect.
    server.addPod({ namespace: 'ml', name: 'c' });
    await waitFor(() => server!.watchRequests().length === 2 && server!.openWatchCount === 1, 3000, 'reconnected');
    expect(server.watchRequests()[1]?.query['resourceVersion']).toBe(rvAfterB);
    expect(server.watchRequests()[1]?.query['fieldSelector']).toBe(`spec.nodeName=${NODE}`);
    await waitFor(() => w.metadataOf('ml', 'c') !== undefined, 3000, 'c replayed');

    server.deletePod('ml', 'a');
    await waitFor(() => w.metadataOf('ml', 'a') === undefined, 3000, 'later change seen');
    expect(server.listRequests()).toHaveLength(1);
    expect(w.synced).toBe(true);
    expect(lines.filter((l) => l.level >= WARN)).toEqual([]);
  });

  for (const goneMode of ['event', 'http'] as const) {
    it(`relists on 410 Gone (${goneMode === 'event' ? 'ERROR event' : 'HTTP 410'}) and picks up changes made meanwhile`, async () => {
      server = await FakeApiServer.start({ defaultNodeName: NODE });
      server.goneMode = goneMode;
      server.addPod({ namespace: 'ml', name: 'stays', labels: { app: 'old' } });
      server.addPod({ namespace: 'ml', name: 'goes' });
      const { w, lines } = makeWatcher({ labelAllowlist: /^app$/ });
      await w.start();
      await waitFor(() => server!.openWatchCount === 1, 3000, 'watch opened');

      // Changes the watch never reports (their events were compacted away)...
      const arrived = server.addPod({ namespace: 'ml', name: 'arrived' }, { notify: false });
      server.deletePod('ml', 'goes', { notify: false });
      server.modifyPod('ml', 'stays', { labels: { app: 'new' } }, { notify: false });
      // ...then the history is gone: the open watch (event mode) or the reconnect (http mode) gets 410.
      server.expire();

      await waitFor(() => server!.listRequests().length === 2, 3000, 'relist');
      await waitFor(() => w.metadataOf('ml', 'arrived') !== undefined, 3000, 'relist applied');
      expect(w.metadataOf('ml', 'arrived')?.uid).toBe(arrived.metadata.uid);
      expect(w.metadataOf('ml', 'goes')).toBeUndefined();
      expect(w.metadataOf('ml', 'stays')?.labels).toEqual({ app: 'new' });
      expect(server.listRequests()[1]?.query['fieldSelector']).toBe(`spec.nodeName=${NODE}`);
      if (goneMode === 'http') expect(server.watchRequests().some((r) => r.status === 410)).toBe(true);

      // The new watch starts from the relist's version and sees later changes.
      await waitFor(() => server!.openWatchCount === 1, 3000, 'watch re-opened');
      expect(server.watchRequests().at(-1)?.query['resourceVersion']).toBe(server.resourceVersion);
      server.addPod({ namespace: 'ml', name: 'later' });
      await waitFor(() => w.metadataOf('ml', 'later') !== undefined, 3000, 'later change seen');
      expect(w.synced).toBe(true);
      expect(server.listRequests()).toHaveLength(2);
      expect(lines.filter((l) => /410 Gone/.test(l.msg))).toHaveLength(1);
      expect(lines.filter((l) => /relisted/.test(l.msg))).toHaveLength(1);
    });
  }

  it('retries a failing watch with backoff, logging the outage and the recovery once each', async () => {
    server = await FakeApiServer.start({ defaultNodeName: NODE });
    server.addPod({ namespace: 'ml', name: 'a' });
    const { w, lines } = makeWatcher({ backoff: { initialMs: 30, maxMs: 1000 } });
    await w.start();
    await waitFor(() => server!.openWatchCount === 1, 3000, 'watch opened');

    server.failNext(4, 500, 'etcdserver: request timed out', { watch: true });
    server.closeWatches();
    server.addPod({ namespace: 'ml', name: 'during-outage' });
    await waitFor(() => !w.synced, 3000, 'not synced during outage');
    expect(w.metadataOf('ml', 'a')).toBeDefined(); // last known data still served

    await waitFor(() => w.synced, 5000, 'synced again');
    await waitFor(() => w.metadataOf('ml', 'during-outage') !== undefined, 3000, 'outage change replayed');
    const watches = server.watchRequests();
    expect(watches.filter((r) => r.status === 500)).toHaveLength(4);
    // Backoff: the failed attempts are spread out, not hammered (30+60+120+240 ms nominal, ±20 %).
    expect(watches).toHaveLength(6);
    expect(server.listRequests()).toHaveLength(1);

    const warns = lines.filter((l) => l.level === WARN);
    expect(warns).toHaveLength(1);
    expect(warns[0]?.msg).toMatch(/watch failed/);
    expect(String(warns[0]?.['err'])).toMatch(/Internal Server Error|500/);
    expect(lines.filter((l) => l.level === INFO && /re-established/.test(l.msg))).toHaveLength(1);
  });

  it('backs off exponentially while the API server keeps failing, and stop() interrupts the wait', async () => {
    server = await FakeApiServer.start({ defaultNodeName: NODE });
    const { w } = makeWatcher({ backoff: { initialMs: 50, maxMs: 5000 } });
    await w.start();
    await waitFor(() => server!.openWatchCount === 1, 3000, 'watch opened');
    server.failNext(1000, 503, 'apiserver is shutting down', { watch: true });
    server.closeWatches();
    await waitFor(() => !w.synced, 3000, 'outage noticed');
    await sleep(1200);
    // Nominal attempt times 0, 50, 150, 350, 750, 1550 ms (±20 %): a handful, not a hot loop.
    const failed = server.watchRequests().filter((r) => r.status === 503).length;
    expect(failed).toBeGreaterThanOrEqual(3);
    expect(failed).toBeLessThanOrEqual(7);
    await sleep(400); // now in a sleep of ~0.8 s or longer
    const t = Date.now();
    await w.stop();
    expect(Date.now() - t).toBeLessThan(500);
    // an attempt on its way when stop() came was written to the socket already: two turns of the
    // event loop (a poll phase between them) let this process's fake server read it, so what is
    // counted from here on could only have been sent after stop() returned
    for (let i = 0; i < 2; i++) await new Promise((r) => setImmediate(r));
    const after = server.requests.length;
    await sleep(1000);
    expect(server.requests.length).toBe(after);
  });

  it('start() rejects with a clear message when the API server is down', async () => {
    const down = await FakeApiServer.start();
    const url = down.url;
    await down.close();
    const { w } = makeWatcher({ server: url });
    const err = await w.start().then(
      () => undefined,
      (e: unknown) => e as Error,
    );
    expect(err).toBeInstanceOf(Error);
    expect(err?.message).toMatch(new RegExp(`^pod metadata: cannot list pods on node "${NODE}" from ${url.replace(/\./g, '\\.')}: .*ECONNREFUSED`));
    expect(w.synced).toBe(false);
    expect(w.metadataOf('ml', 'a')).toBeUndefined();
  });

  it('start() reports RBAC errors, and can be called again after a rejection', async () => {
    server = await FakeApiServer.start({ defaultNodeName: NODE });
    server.addPod({ namespace: 'ml', name: 'a' });
    server.failNext(1, 403, 'pods is forbidden: User "system:serviceaccount:gpu:exporter" cannot list resource "pods" in API group "" at the cluster scope');
    const { w } = makeWatcher();
    await expect(w.start()).rejects.toThrow(/HTTP 403 \(RBAC: needs list and watch on pods\): pods is forbidden: User "system:serviceaccount:gpu:exporter"/);
    expect(server.watchRequests()).toHaveLength(0); // nothing left running after a failed start

    await w.start();
    expect(w.synced).toBe(true);
    expect(w.metadataOf('ml', 'a')).toBeDefined();
  });

  it('start() times out when the API server accepts but never answers', async () => {
    const silent = http.createServer(() => {
      /* never respond */
    });
    extraServers.push(silent);
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(silent.address() as AddressInfo).port}`;
    const { w } = makeWatcher({ server: url, requestTimeoutMs: 200 });
    const t0 = Date.now();
    await expect(w.start()).rejects.toThrow(/cannot list pods on node "node-a" from .*: timed out after 200 ms/);
    expect(Date.now() - t0).toBeLessThan(2000);
  });

  it('start() rejects with a clear message when there is no Kubernetes configuration', async () => {
    const { w } = makeWatcher({ server: undefined, kubeconfigPath: '/nonexistent/kubeconfig' });
    await expect(w.start()).rejects.toThrow(/pod metadata: cannot configure the Kubernetes client: .*ENOENT/);
  });

  it('stop() closes the watch, stops retrying and leaves the data readable; metadataOf never throws', async () => {
    server = await FakeApiServer.start({ defaultNodeName: NODE });
    server.addPod({ namespace: 'ml', name: 'a' });
    const { w } = makeWatcher();
    await w.start();
    await waitFor(() => server!.openWatchCount === 1, 3000, 'watch opened');

    await w.stop();
    expect(w.synced).toBe(false);
    await waitFor(() => server!.openWatchCount === 0 && server!.openConnectionCount === 0, 3000, 'client closed its sockets');
    const requests = server.requests.length;
    server.addPod({ namespace: 'ml', name: 'after-stop' });
    await sleep(150);
    expect(server.requests.length).toBe(requests); // no reconnect attempts after stop()
    expect(w.metadataOf('ml', 'a')).toBeDefined();
    expect(w.metadataOf('ml', 'after-stop')).toBeUndefined();

    await w.stop(); // idempotent
    await expect(w.start()).rejects.toThrow(/after stop/);
    const weird = w.metadataOf(Symbol('x') as unknown as string, 'a');
    expect(weird).toBeUndefined();
  });

  it('stop() during start() rejects start() and leaves nothing open', async () => {
    const silent = http.createServer(() => {
      /* never respond */
    });
    extraServers.push(silent);
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    const { w } = makeWatcher({ server: `http://127.0.0.1:${(silent.address() as AddressInfo).port}` });
    const started = w.start();
    await sleep(100);
    await w.stop();
    await expect(started).rejects.toThrow(/stopped before the initial pod list completed/);
    let open = 1;
    await waitFor(() => {
      silent.getConnections((_e, n) => (open = n));
      return open === 0;
    }, 3000, 'list request socket closed');
  });

  it('lets the process exit on its own after stop() (no timers or sockets left)', async () => {
    const root = fileURLToPath(new URL('..', import.meta.url));
    const script = `
      const { FakeApiServer } = await import('./test/support/fake-apiserver.ts');
      const { PodMetadataWatcher } = await import('./src/attribution/pod-metadata.ts');
      const pino = (await import('pino')).default;
      const server = await FakeApiServer.start({ defaultNodeName: 'n' });
      server.addPod({ namespace: 'ns', name: 'p' });
      const w = new PodMetadataWatcher({ nodeName: 'n', server: server.url, logger: pino({ level: 'silent' }), backoff: { initialMs: 20, maxMs: 50 } });
      await w.start();
      while (server.openWatchCount === 0) await new Promise((r) => setTimeout(r, 10));
      server.closeWatches();
      while (server.watchRequests().length < 2) await new Promise((r) => setTimeout(r, 10));
      if (!w.metadataOf('ns', 'p')) throw new Error('pod missing');
      await w.stop();
      // The client must close its own sockets (server.close() below would otherwise hide a leak).
      for (let i = 0; server.openConnectionCount > 0; i++) {
        if (i > 200) throw new Error('client socket still open after stop()');
        await new Promise((r) => setTimeout(r, 10));
      }
      await server.close();
      console.log('done');
    `;
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
      cwd: root,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const code = await new Promise<number | null | 'hung'>((resolve) => {
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        resolve('hung');
      }, 20_000);
      child.on('exit', (c) => {
        clearTimeout(timer);
        resolve(c);
      });
    });
    expect({ code, out: out.trim() }).toEqual({ code: 0, out: 'done' });
  });
});
