/**
 * The fake resource.k8s.io API server (src/sim/fake-resource-api.ts), exercised over real HTTP:
 * raw fetch / node:http for the protocol details, and @kubernetes/client-node to prove a real
 * client accepts what it serves.
 */
import { afterEach, describe, expect, it } from 'vitest';
import http from 'node:http';
import * as k8s from '@kubernetes/client-node';
import { FakeResourceApi, type FakeResourceApiOptions, type FakeSliceSpec } from '../src/sim/fake-resource-api.js';

// --- fixtures -----------------------------------------------------------------

function gpuSlice(nodeName: string, overrides: Partial<FakeSliceSpec> = {}): FakeSliceSpec {
  return {
    name: `${nodeName}-gpu.nvidia.com-x7k2p`,
    nodeName,
    driver: 'gpu.nvidia.com',
    pool: { name: nodeName, generation: 1, resourceSliceCount: 1 },
    devices: [
      {
        name: 'gpu-0',
        attributes: {
          type: { string: 'gpu' },
          uuid: { string: `GPU-${nodeName}-0` },
          productName: { string: 'NVIDIA H100 80GB HBM3' },
          index: { int: 0 },
          driverVersion: { version: '570.124.6' },
        },
      },
      {
        name: 'gpu-1-mig-1g10gb-19-0',
        attributes: {
          type: { string: 'mig' },
          uuid: { string: `MIG-${nodeName}-1` },
          parentUUID: { string: `GPU-${nodeName}-1` },
          profile: { string: '1g.10gb' },
        },
      },
    ],
    ...overrides,
  };
}

function otherDriverSlice(nodeName: string): FakeSliceSpec {
  return {
    name: `${nodeName}-net.example.com-abcde`,
    nodeName,
    driver: 'net.example.com',
    pool: { name: nodeName, generation: 1, resourceSliceCount: 1 },
    devices: [{ name: 'nic-0', attributes: { rdma: { bool: true } } }],
  };
}

const V1 = '/apis/resource.k8s.io/v1/resourceslices';
const V1BETA1 = '/apis/resource.k8s.io/v1beta1/resourceslices';

/** The JSON shape of what the fake serves, loosely typed for assertions. */
interface SliceJson {
  apiVersion: string;
  kind: string;
  metadata: { name: string; uid: string; resourceVersion: string; creationTimestamp: string };
  spec: {
    driver: string;
    nodeName: string;
    pool: { name: string; generation: number; resourceSliceCount: number };
    devices: Array<{ name: string; attributes?: Record<string, unknown>; basic?: { attributes: Record<string, unknown> } }>;
  };
}

interface ListJson {
  apiVersion: string;
  kind: string;
  metadata: { resourceVersion: string };
  items: SliceJson[];
}

interface StatusJson {
  kind: 'Status';
  code: number;
  reason: string;
  message: string;
}

interface WatchEventJson {
  type: string;
  object: SliceJson & StatusJson;
}

// --- per-test resources ---------------------------------------------------------

const servers: FakeResourceApi[] = [];
const cleanups: Array<() => void | Promise<void>> = [];

async function startApi(opts: FakeResourceApiOptions = {}): Promise<FakeResourceApi> {
  const api = await FakeResourceApi.start(opts);
  servers.push(api);
  return api;
}

afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

async function getJson<T>(api: FakeResourceApi, path: string, init?: RequestInit): Promise<{ status: number; body: T }> {
  const res = await fetch(api.url + path, init);
  return { status: res.status, body: (await res.json()) as T };
}

async function list(api: FakeResourceApi, path: string, fieldSelector?: string): Promise<ListJson> {
  const q = fieldSelector === undefined ? '' : `?fieldSelector=${encodeURIComponent(fieldSelector)}`;
  const { status, body } = await getJson<ListJson>(api, path + q);
  expect(status).toBe(200);
  return body;
}

const names = (items: Array<{ metadata: { name: string } }>): string[] => items.map((i) => i.metadata.name);

/**
 * A watch stream read over node:http. Resolves once the response headers are in (the fake
 * registers the watch before sending them, so every later change reaches it).
 */
class WatchStream {
  readonly events: WatchEventJson[] = [];
  ended = false;
  #buffer = '';
  #waiters = new Set<() => void>();

  private constructor(
    readonly status: number,
    private readonly res: http.IncomingMessage,
  ) {
    res.setEncoding('utf8');
    res.on('data', (chunk: string) => this.#onData(chunk));
    res.on('close', () => {
      this.ended = true;
      this.#notify();
    });
    res.on('error', () => undefined); // a cut connection shows up as `ended`
  }

  static open(api: FakeResourceApi, path: string, query: Record<string, string> = {}): Promise<WatchStream> {
    const params = new URLSearchParams({ watch: 'true', ...query });
    return new Promise((resolve, reject) => {
      const req = http.get(`${api.url}${path}?${params}`, { agent: false }, (res) => {
        const stream = new WatchStream(res.statusCode ?? 0, res);
        cleanups.push(() => void req.destroy());
        resolve(stream);
      });
      req.on('error', reject);
    });
  }

  types(): string[] {
    return this.events.map((e) => e.type);
  }

  /** Wait until `pred` holds for the events so far; fails if the stream ends first or on timeout. */
  until(pred: (events: WatchEventJson[]) => boolean, what: string, timeoutMs = 5000): Promise<void> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => done(new Error(`watch: ${what} not seen within ${timeoutMs} ms; got ${this.types().join(',')}`)), timeoutMs);
      const check = (): void => {
        if (pred(this.events)) done();
        else if (this.ended) done(new Error(`watch ended before ${what}; got ${this.types().join(',')}`));
      };
      const done = (err?: Error): void => {
        clearTimeout(timer);
        this.#waiters.delete(check);
        if (err) reject(err);
        else resolve();
      };
      this.#waiters.add(check);
      check();
    });
  }

  /** Wait for at least `n` events. */
  count(n: number): Promise<void> {
    return this.until((e) => e.length >= n, `${n} events`);
  }

  /** Wait for the server to end the stream. */
  closed(timeoutMs = 5000): Promise<void> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`watch not closed within ${timeoutMs} ms`)), timeoutMs);
      const check = (): void => {
        if (!this.ended) return;
        clearTimeout(timer);
        this.#waiters.delete(check);
        resolve();
      };
      this.#waiters.add(check);
      check();
    });
  }

  #onData(chunk: string): void {
    this.#buffer += chunk;
    let nl: number;
    while ((nl = this.#buffer.indexOf('\n')) >= 0) {
      const line = this.#buffer.slice(0, nl);
      this.#buffer = this.#buffer.slice(nl + 1);
      if (line.trim() !== '') this.events.push(JSON.parse(line) as WatchEventJson);
    }
    this.#notify();
  }

  #notify(): void {
    for (const w of [...this.#waiters]) w();
  }
}

function deferred<T = void>(): { promise: Promise<T>; resolve: (v: T) => void } {
  let resolve!: (v: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

/** `promise`, or a rejection naming `what` if it takes longer than `ms`. */
async function within<T>(promise: Promise<T>, what: string, ms = 5000): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} not within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** A KubeConfig for a plain-HTTP server URL, built the way src/attribution/kube/kube-config.ts does. */
function kubeConfigFor(api: FakeResourceApi): k8s.KubeConfig {
  const kc = new k8s.KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: 'direct', server: api.url, skipTLSVerify: true }],
    users: [{ name: 'anonymous' }],
    contexts: [{ name: 'direct', cluster: 'direct', user: 'anonymous' }],
    currentContext: 'direct',
  });
  return kc;
}

// --- tests ------------------------------------------------------------------------

describe('FakeResourceApi discovery', () => {
  it('serves all three versions by default, v1 preferred', async () => {
    const api = await startApi();
    const { body: groups } = await getJson<{ kind: string; groups: Array<{ name: string; versions: unknown[]; preferredVersion: unknown }> }>(api, '/apis');
    expect(groups.kind).toBe('APIGroupList');
    const group = groups.groups.find((g) => g.name === 'resource.k8s.io');
    expect(group?.versions).toEqual([
      { groupVersion: 'resource.k8s.io/v1', version: 'v1' },
      { groupVersion: 'resource.k8s.io/v1beta2', version: 'v1beta2' },
      { groupVersion: 'resource.k8s.io/v1beta1', version: 'v1beta1' },
    ]);
    expect(group?.preferredVersion).toEqual({ groupVersion: 'resource.k8s.io/v1', version: 'v1' });

    for (const path of ['/apis/resource.k8s.io', '/apis/resource.k8s.io/']) {
      const { status, body } = await getJson<{ kind: string; name: string }>(api, path);
      expect(status).toBe(200);
      expect(body).toEqual({ kind: 'APIGroup', apiVersion: 'v1', ...group });
    }

    for (const v of ['v1', 'v1beta2', 'v1beta1']) {
      const { status, body } = await getJson<{ kind: string; groupVersion: string; resources: unknown[] }>(api, `/apis/resource.k8s.io/${v}`);
      expect(status).toBe(200);
      expect(body.kind).toBe('APIResourceList');
      expect(body.groupVersion).toBe(`resource.k8s.io/${v}`);
      expect(body.resources).toEqual([
        expect.objectContaining({ name: 'resourceslices', namespaced: false, kind: 'ResourceSlice', verbs: ['get', 'list', 'watch'] }),
      ]);
    }
  });

  it('lists exactly the served versions (only v1beta1: a 1.32/1.33 cluster with beta groups on)', async () => {
    const api = await startApi({ servedVersions: ['v1beta1'] });
    api.putSlice(gpuSlice('node-a'));
    const { body: group } = await getJson<{ versions: unknown[]; preferredVersion: unknown }>(api, '/apis/resource.k8s.io');
    expect(group.versions).toEqual([{ groupVersion: 'resource.k8s.io/v1beta1', version: 'v1beta1' }]);
    expect(group.preferredVersion).toEqual({ groupVersion: 'resource.k8s.io/v1beta1', version: 'v1beta1' });
    expect((await list(api, V1BETA1)).items).toHaveLength(1);

    for (const path of ['/apis/resource.k8s.io/v1', V1, `${V1}/node-a-gpu.nvidia.com-x7k2p`, '/apis/resource.k8s.io/v1beta2/resourceslices']) {
      const { status, body } = await getJson<StatusJson>(api, path);
      expect(status, path).toBe(404);
      expect(body).toMatchObject({ kind: 'Status', code: 404, reason: 'NotFound' });
    }
  });

  it('takes the preferred version from the order given, and can serve no version at all', async () => {
    const api = await startApi({ servedVersions: ['v1beta2', 'v1beta1'] });
    const { body } = await getJson<{ preferredVersion: { version: string } }>(api, '/apis/resource.k8s.io');
    expect(body.preferredVersion.version).toBe('v1beta2');

    const none = await startApi({ servedVersions: [] });
    const { body: groups } = await getJson<{ groups: unknown[] }>(none, '/apis');
    expect(groups.groups).toEqual([]);
    expect((await fetch(none.url + '/apis/resource.k8s.io')).status).toBe(404);
  });

  it('answers 404 for other paths and 405 for other methods, with Status bodies', async () => {
    const api = await startApi();
    const other = await getJson<StatusJson>(api, '/api/v1/pods');
    expect(other.status).toBe(404);
    expect(other.body).toMatchObject({ kind: 'Status', code: 404 });
    expect((await fetch(api.url + '/apis/resource.k8s.io/v1/resourceclaims')).status).toBe(404);

    const post = await getJson<StatusJson>(api, V1, { method: 'POST', body: '{}' });
    expect(post.status).toBe(405);
    expect(post.body).toMatchObject({ kind: 'Status', code: 405, reason: 'MethodNotAllowed' });
    expect(api.requests.map((r) => [r.method, r.path, r.status])).toEqual([
      ['GET', '/api/v1/pods', 404],
      ['GET', '/apis/resource.k8s.io/v1/resourceclaims', 404],
      ['POST', V1, 405],
    ]);
  });

  it('is discovered by @kubernetes/client-node (ApisApi, ResourceApi)', async () => {
    const api = await startApi({ servedVersions: ['v1', 'v1beta1'] });
    const kc = kubeConfigFor(api);
    const groups = await kc.makeApiClient(k8s.ApisApi).getAPIVersions();
    const group = groups.groups.find((g) => g.name === 'resource.k8s.io');
    expect(group?.versions.map((v) => v.version)).toEqual(['v1', 'v1beta1']);
    const direct = await kc.makeApiClient(k8s.ResourceApi).getAPIGroup();
    expect(direct.preferredVersion?.groupVersion).toBe('resource.k8s.io/v1');
  });
});

describe('FakeResourceApi lists and gets', () => {
  it('serves v1 / v1beta2 with attributes on the device and v1beta1 with them under basic', async () => {
    const api = await startApi({ initialResourceVersion: 500 });
    const spec = gpuSlice('node-a');
    api.putSlice(spec);

    for (const v of ['v1', 'v1beta2']) {
      const body = await list(api, `/apis/resource.k8s.io/${v}/resourceslices`);
      expect(body).toMatchObject({ apiVersion: `resource.k8s.io/${v}`, kind: 'ResourceSliceList', metadata: { resourceVersion: '501' } });
      const [item] = body.items;
      expect(item?.apiVersion).toBe(`resource.k8s.io/${v}`);
      expect(item?.kind).toBe('ResourceSlice');
      expect(item?.metadata).toMatchObject({ name: spec.name, resourceVersion: '501' });
      expect(item?.metadata.uid).toMatch(/^[0-9a-f-]{36}$/);
      expect(Number.isNaN(Date.parse(item?.metadata.creationTimestamp ?? ''))).toBe(false);
      expect(item?.spec).toEqual({
        driver: 'gpu.nvidia.com',
        nodeName: 'node-a',
        pool: spec.pool,
        devices: spec.devices.map((d) => ({ name: d.name, attributes: d.attributes })),
      });
    }

    const beta1 = await list(api, V1BETA1);
    expect(beta1.apiVersion).toBe('resource.k8s.io/v1beta1');
    expect(beta1.items[0]?.apiVersion).toBe('resource.k8s.io/v1beta1');
    expect(beta1.items[0]?.spec.devices).toEqual(spec.devices.map((d) => ({ name: d.name, basic: { attributes: d.attributes } })));
  });

  it('gets one slice by name, or 404', async () => {
    const api = await startApi();
    const spec = gpuSlice('node-a');
    api.putSlice(spec);
    const one = await getJson<SliceJson>(api, `${V1BETA1}/${spec.name}`);
    expect(one.status).toBe(200);
    expect(one.body.metadata.name).toBe(spec.name);
    expect(one.body.spec.devices[0]?.basic?.attributes).toEqual(spec.devices[0]?.attributes);

    const missing = await getJson<StatusJson>(api, `${V1}/nope`);
    expect(missing.status).toBe(404);
    expect(missing.body).toMatchObject({ kind: 'Status', reason: 'NotFound', message: expect.stringContaining('"nope"') });
  });

  it('replaces a slice in place, keeping uid and creation time, and deletes it', async () => {
    const api = await startApi();
    api.putSlice(gpuSlice('node-a'));
    const [first] = (await list(api, V1)).items;
    api.putSlice(gpuSlice('node-a', { pool: { name: 'node-a', generation: 2, resourceSliceCount: 1 } }));
    const [second] = (await list(api, V1)).items;
    expect(second?.metadata.uid).toBe(first?.metadata.uid);
    expect(second?.metadata.creationTimestamp).toBe(first?.metadata.creationTimestamp);
    expect(Number(second?.metadata.resourceVersion)).toBeGreaterThan(Number(first?.metadata.resourceVersion));
    expect(second?.spec.pool.generation).toBe(2);
    expect(api.slices().map((s) => s.pool.generation)).toEqual([2]);

    api.deleteSlice(gpuSlice('node-a').name);
    expect((await list(api, V1)).items).toEqual([]);
    expect(() => api.deleteSlice('nope')).toThrow(/no ResourceSlice/);
  });

  it('stores a copy: changing the spec after putSlice changes nothing served', async () => {
    const api = await startApi();
    const spec = gpuSlice('node-a');
    api.putSlice(spec);
    spec.nodeName = 'mutated';
    spec.devices.length = 0;
    const [item] = (await list(api, V1)).items;
    expect(item?.spec.nodeName).toBe('node-a');
    expect(item?.spec.devices).toHaveLength(2);
  });
});

describe('FakeResourceApi field selectors', () => {
  async function apiWithSlices(): Promise<FakeResourceApi> {
    const api = await startApi();
    api.putSlice(gpuSlice('node-a'));
    api.putSlice(gpuSlice('node-b'));
    api.putSlice(otherDriverSlice('node-a'));
    return api;
  }

  it('selects by spec.nodeName, spec.driver, both, and negation', async () => {
    const api = await apiWithSlices();
    expect(names((await list(api, V1, 'spec.nodeName=node-a')).items)).toEqual(['node-a-gpu.nvidia.com-x7k2p', 'node-a-net.example.com-abcde']);
    expect(names((await list(api, V1, 'spec.driver==gpu.nvidia.com')).items)).toEqual(['node-a-gpu.nvidia.com-x7k2p', 'node-b-gpu.nvidia.com-x7k2p']);
    expect(names((await list(api, V1, 'spec.nodeName=node-a,spec.driver=gpu.nvidia.com')).items)).toEqual(['node-a-gpu.nvidia.com-x7k2p']);
    expect(names((await list(api, V1BETA1, 'spec.driver!=gpu.nvidia.com')).items)).toEqual(['node-a-net.example.com-abcde']);
    expect((await list(api, V1, 'spec.nodeName=node-z')).items).toEqual([]);
    expect((await list(api, V1, '')).items).toHaveLength(3);
  });

  it('answers 400 naming an unsupported field, on lists and watches', async () => {
    const api = await apiWithSlices();
    for (const watch of [false, true]) {
      const q = `?fieldSelector=${encodeURIComponent('metadata.namespace=x')}${watch ? '&watch=true' : ''}`;
      const { status, body } = await getJson<StatusJson>(api, V1 + q);
      expect(status).toBe(400);
      expect(body).toMatchObject({ kind: 'Status', code: 400, reason: 'BadRequest' });
      expect(body.message).toContain('metadata.namespace');
    }
    const bad = await getJson<StatusJson>(api, `${V1}?fieldSelector=garbage`);
    expect(bad.status).toBe(400);
  });
});

describe('FakeResourceApi watches', () => {
  it('replays history newer than the resourceVersion, then streams live events', async () => {
    const api = await startApi();
    const start = (await list(api, V1)).metadata.resourceVersion;
    api.putSlice(gpuSlice('node-a'));
    api.putSlice(gpuSlice('node-b'));
    const afterA = Number(start) + 1;

    const fromStart = await WatchStream.open(api, V1, { resourceVersion: start });
    const fromA = await WatchStream.open(api, V1, { resourceVersion: String(afterA) });
    await fromStart.count(2);
    await fromA.count(1);
    expect(fromStart.events.map((e) => [e.type, e.object.metadata.name])).toEqual([
      ['ADDED', 'node-a-gpu.nvidia.com-x7k2p'],
      ['ADDED', 'node-b-gpu.nvidia.com-x7k2p'],
    ]);
    expect(fromA.events.map((e) => e.object.metadata.name)).toEqual(['node-b-gpu.nvidia.com-x7k2p']);

    api.putSlice(gpuSlice('node-a', { pool: { name: 'node-a', generation: 2, resourceSliceCount: 1 } }));
    await fromStart.count(3);
    const modified = fromStart.events[2];
    expect(modified?.type).toBe('MODIFIED');
    expect(modified?.object.spec.pool.generation).toBe(2);
    expect(modified?.object.metadata.resourceVersion).toBe(api.resourceVersion);
    expect(modified?.object.apiVersion).toBe('resource.k8s.io/v1');
    expect(api.openWatchCount).toBe(2);
    expect(api.requests.filter((r) => r.watch).map((r) => r.query['resourceVersion'])).toEqual([start, String(afterA)]);
  });

  it('starts with a synthetic ADDED per slice when no resourceVersion is given, in the watch\'s version', async () => {
    const api = await startApi();
    api.putSlice(gpuSlice('node-a'));
    const w = await WatchStream.open(api, V1BETA1);
    await w.count(1);
    expect(w.events[0]?.type).toBe('ADDED');
    expect(w.events[0]?.object.apiVersion).toBe('resource.k8s.io/v1beta1');
    expect(w.events[0]?.object.spec.devices[0]?.basic?.attributes).toMatchObject({ type: { string: 'gpu' } });
  });

  it('sends DELETED with the last state and the deletion\'s resourceVersion', async () => {
    const api = await startApi();
    api.putSlice(gpuSlice('node-a'));
    const w = await WatchStream.open(api, V1, { resourceVersion: api.resourceVersion });
    api.deleteSlice(gpuSlice('node-a').name);
    await w.count(1);
    expect(w.events[0]?.type).toBe('DELETED');
    expect(w.events[0]?.object.metadata.name).toBe('node-a-gpu.nvidia.com-x7k2p');
    expect(w.events[0]?.object.metadata.resourceVersion).toBe(api.resourceVersion);
    expect(w.events[0]?.object.spec.devices).toHaveLength(2);
  });

  it('sends DELETED / ADDED when a change makes a slice leave / enter the selector', async () => {
    const api = await startApi();
    api.putSlice(gpuSlice('node-a'));
    const rv = api.resourceVersion;
    const onA = await WatchStream.open(api, V1, { resourceVersion: rv, fieldSelector: 'spec.nodeName=node-a' });
    const onB = await WatchStream.open(api, V1, { resourceVersion: rv, fieldSelector: 'spec.nodeName=node-b' });

    api.putSlice(gpuSlice('node-a', { nodeName: 'node-b' })); // same name, moved to node-b
    await onA.count(1);
    await onB.count(1);
    expect(onA.events.map((e) => [e.type, e.object.spec.nodeName])).toEqual([['DELETED', 'node-b']]);
    expect(onB.events.map((e) => [e.type, e.object.spec.nodeName])).toEqual([['ADDED', 'node-b']]);

    api.putSlice(gpuSlice('node-a')); // back
    await onA.count(2);
    await onB.count(2);
    expect(onA.types()).toEqual(['DELETED', 'ADDED']);
    expect(onB.types()).toEqual(['ADDED', 'DELETED']);

    api.putSlice(otherDriverSlice('node-b')); // never matched by onA
    await onB.count(3);
    expect(onA.events).toHaveLength(2);
  });

  it('sends bookmarks only to watches that allow them', async () => {
    const api = await startApi();
    const with_ = await WatchStream.open(api, V1BETA1, { resourceVersion: api.resourceVersion, allowWatchBookmarks: 'true' });
    const without = await WatchStream.open(api, V1BETA1, { resourceVersion: api.resourceVersion });
    api.putSlice(gpuSlice('node-a'));
    api.bookmark();
    api.putSlice(gpuSlice('node-b'));
    await with_.count(3);
    await without.count(2);
    expect(with_.types()).toEqual(['ADDED', 'BOOKMARK', 'ADDED']);
    expect(with_.events[1]?.object).toEqual({
      apiVersion: 'resource.k8s.io/v1beta1',
      kind: 'ResourceSlice',
      metadata: { resourceVersion: String(Number(api.resourceVersion) - 1) },
    });
    expect(without.types()).toEqual(['ADDED', 'ADDED']);
  });

  it('does not emit or record changes made with notify: false', async () => {
    const api = await startApi();
    const rv = api.resourceVersion;
    const w = await WatchStream.open(api, V1, { resourceVersion: rv });
    api.putSlice(gpuSlice('node-a'), { notify: false });
    api.putSlice(gpuSlice('node-b'));
    await w.count(1);
    expect(w.events.map((e) => e.object.metadata.name)).toEqual(['node-b-gpu.nvidia.com-x7k2p']);
    expect(api.resourceVersion).toBe(String(Number(rv) + 2));
    expect(api.slices()).toHaveLength(2);
    const replay = await WatchStream.open(api, V1, { resourceVersion: rv });
    await replay.count(1);
    expect(replay.events.map((e) => e.object.metadata.name)).toEqual(['node-b-gpu.nvidia.com-x7k2p']);
  });

  it('answers 410 Gone as an ERROR event after expire() (goneMode event), and ends open watches with one', async () => {
    const api = await startApi();
    const old = api.resourceVersion;
    api.putSlice(gpuSlice('node-a'));
    const open = await WatchStream.open(api, V1, { resourceVersion: old });
    await open.count(1);
    api.expire();
    await open.closed();
    expect(open.types()).toEqual(['ADDED', 'ERROR']);
    expect(open.events[1]?.object).toMatchObject({ kind: 'Status', code: 410, reason: 'Expired' });

    const again = await WatchStream.open(api, V1, { resourceVersion: old });
    expect(again.status).toBe(200);
    await again.closed();
    expect(again.events).toHaveLength(1);
    expect(again.events[0]).toMatchObject({ type: 'ERROR', object: { kind: 'Status', code: 410, message: `too old resource version: ${old}` } });

    // From the current version (what a relist returns) it works again.
    const fresh = await WatchStream.open(api, V1, { resourceVersion: (await list(api, V1)).metadata.resourceVersion });
    api.deleteSlice(gpuSlice('node-a').name);
    await fresh.count(1);
    expect(fresh.types()).toEqual(['DELETED']);
  });

  it('answers 410 Gone as HTTP 410 after expire() (goneMode http), closing open watches without an event', async () => {
    const api = await startApi();
    api.goneMode = 'http';
    const old = api.resourceVersion;
    const open = await WatchStream.open(api, V1, { resourceVersion: old });
    api.putSlice(gpuSlice('node-a'));
    await open.count(1);
    api.expire();
    await open.closed();
    expect(open.types()).toEqual(['ADDED']);

    const { status, body } = await getJson<StatusJson>(api, `${V1}?watch=1&resourceVersion=${old}`);
    expect(status).toBe(410);
    expect(body).toMatchObject({ kind: 'Status', code: 410, reason: 'Expired' });
    expect(api.requests.at(-1)).toMatchObject({ watch: true, status: 410 });
  });

  it('ends a watch after timeoutSeconds', async () => {
    const api = await startApi();
    const w = await WatchStream.open(api, V1, { resourceVersion: api.resourceVersion, timeoutSeconds: '1' });
    expect(api.openWatchCount).toBe(1);
    await w.closed(5000);
    expect(api.openWatchCount).toBe(0);
  });

  it('closeWatches() ends every open stream and says how many', async () => {
    const api = await startApi();
    const a = await WatchStream.open(api, V1);
    const b = await WatchStream.open(api, V1BETA1);
    expect(api.closeWatches()).toBe(2);
    await a.closed();
    await b.closed();
    expect(api.closeWatches()).toBe(0);
  });

  it('rejects an invalid resourceVersion with 400', async () => {
    const api = await startApi();
    const { status } = await getJson<StatusJson>(api, `${V1}?watch=true&resourceVersion=abc`);
    expect(status).toBe(400);
  });
});

describe('FakeResourceApi failures and outages', () => {
  it('failNext answers the next requests with an error Status, then recovers', async () => {
    const api = await startApi();
    api.putSlice(gpuSlice('node-a'));
    api.failNext(2, 503, 'etcd is down');
    for (let i = 0; i < 2; i++) {
      const { status, body } = await getJson<StatusJson>(api, V1);
      expect(status).toBe(503);
      expect(body).toMatchObject({ kind: 'Status', code: 503, reason: 'ServiceUnavailable', message: 'etcd is down' });
    }
    expect((await list(api, V1)).items).toHaveLength(1);
    expect(api.requests.map((r) => r.status)).toEqual([503, 503, 200]);
  });

  it('failNext with watch: true fails only watches; discovery is unaffected unless asked', async () => {
    const api = await startApi();
    api.failNext(1, 403, 'forbidden', { watch: true });
    expect((await fetch(api.url + '/apis')).status).toBe(200);
    expect((await list(api, V1)).items).toEqual([]);
    const denied = await getJson<StatusJson>(api, `${V1}?watch=true`);
    expect(denied.status).toBe(403);
    expect(denied.body.reason).toBe('Forbidden');
    const ok = await WatchStream.open(api, V1);
    expect(ok.status).toBe(200);

    api.failNext(1, 500, 'discovery broke', { discovery: true });
    expect((await list(api, V1)).items).toEqual([]);
    expect((await fetch(api.url + '/apis/resource.k8s.io')).status).toBe(500);
    expect((await fetch(api.url + '/apis/resource.k8s.io')).status).toBe(200);
  });

  it('pause() refuses connections and cuts open watches; resume() serves the same store on the same port', async () => {
    const api = await startApi();
    api.putSlice(gpuSlice('node-a'));
    const { port, url } = api;
    const w = await WatchStream.open(api, V1, { resourceVersion: api.resourceVersion });

    await api.pause();
    await w.closed();
    expect(api.openWatchCount).toBe(0);
    const refused = await fetch(url + '/apis').then(
      () => undefined,
      (err: Error) => err,
    );
    expect((refused?.cause as NodeJS.ErrnoException | undefined)?.code).toBe('ECONNREFUSED');
    const beforeB = api.resourceVersion;
    api.putSlice(gpuSlice('node-b')); // changes while down are kept, and replayable

    await api.resume();
    expect(api.port).toBe(port);
    expect(api.url).toBe(url);
    expect(names((await list(api, V1)).items)).toEqual(['node-a-gpu.nvidia.com-x7k2p', 'node-b-gpu.nvidia.com-x7k2p']);
    const rewatch = await WatchStream.open(api, V1, { resourceVersion: beforeB });
    await rewatch.count(1);
    expect(rewatch.events.map((e) => [e.type, e.object.metadata.name])).toEqual([['ADDED', 'node-b-gpu.nvidia.com-x7k2p']]);
  });

  it('can start on a fixed port', async () => {
    const probe = await startApi();
    const port = probe.port;
    await probe.close();
    servers.splice(servers.indexOf(probe), 1);
    const api = await startApi({ port });
    expect(api.url).toBe(`http://127.0.0.1:${port}`);
    expect((await fetch(api.url + '/apis')).status).toBe(200);
  });
});

describe('FakeResourceApi through @kubernetes/client-node', () => {
  it('a k8s.Watch on v1 resourceslices receives ADDED / MODIFIED / DELETED', async () => {
    const api = await startApi();
    api.putSlice(gpuSlice('node-a'));
    const start = api.resourceVersion;
    const seen: Array<[string, string, number]> = [];
    const threeEvents = deferred();
    const watchDone = deferred<unknown>();
    const controller = await new k8s.Watch(kubeConfigFor(api)).watch(
      '/apis/resource.k8s.io/v1/resourceslices',
      { resourceVersion: start, fieldSelector: 'spec.driver=gpu.nvidia.com', allowWatchBookmarks: true },
      (phase, obj: SliceJson) => {
        seen.push([phase, obj.metadata.name, obj.spec.pool.generation]);
        if (seen.length >= 3) threeEvents.resolve();
      },
      (err) => watchDone.resolve(err),
    );
    cleanups.push(() => controller.abort());

    api.putSlice(gpuSlice('node-b'));
    api.putSlice(otherDriverSlice('node-b')); // filtered out by the selector
    api.putSlice(gpuSlice('node-b', { pool: { name: 'node-b', generation: 2, resourceSliceCount: 1 } }));
    api.deleteSlice(gpuSlice('node-b').name);
    await within(threeEvents.promise, `3 events (got ${JSON.stringify(seen)})`);
    expect(seen).toEqual([
      ['ADDED', 'node-b-gpu.nvidia.com-x7k2p', 1],
      ['MODIFIED', 'node-b-gpu.nvidia.com-x7k2p', 2],
      ['DELETED', 'node-b-gpu.nvidia.com-x7k2p', 2],
    ]);
    expect(api.requests.find((r) => r.watch)?.query).toMatchObject({
      watch: 'true',
      resourceVersion: start,
      fieldSelector: 'spec.driver=gpu.nvidia.com',
      allowWatchBookmarks: 'true',
    });

    // The server ending the stream reaches the client's done callback, without an error.
    expect(api.closeWatches()).toBe(1);
    expect(await within(watchDone.promise, 'done callback')).toBeNull();
  });

  it('ResourceV1Api.listResourceSlice decodes the list, honouring the field selector', async () => {
    const api = await startApi();
    api.putSlice(gpuSlice('node-a'));
    api.putSlice(gpuSlice('node-b'));
    api.putSlice(otherDriverSlice('node-a'));
    const client = kubeConfigFor(api).makeApiClient(k8s.ResourceV1Api);
    const res = await client.listResourceSlice({ fieldSelector: 'spec.nodeName=node-a,spec.driver=gpu.nvidia.com' });
    expect(res.metadata?.resourceVersion).toBe(api.resourceVersion);
    expect(res.items.map((s) => s.metadata?.name)).toEqual(['node-a-gpu.nvidia.com-x7k2p']);
    const [slice] = res.items;
    expect(slice?.spec.driver).toBe('gpu.nvidia.com');
    expect(slice?.spec.nodeName).toBe('node-a');
    expect(slice?.spec.pool).toEqual({ name: 'node-a', generation: 1, resourceSliceCount: 1 });
    expect(slice?.metadata?.creationTimestamp).toBeInstanceOf(Date);
    const gpu = slice?.spec.devices?.[0];
    expect(gpu?.name).toBe('gpu-0');
    expect(gpu?.attributes?.['uuid']?.string).toBe('GPU-node-a-0');
    expect(gpu?.attributes?.['index']?._int).toBe(0); // the client maps `int` to `_int`
    expect(gpu?.attributes?.['driverVersion']?.version).toBe('570.124.6');
    expect(slice?.spec.devices?.[1]?.attributes?.['parentUUID']?.string).toBe('GPU-node-a-1');
    expect(api.requests.at(-1)).toMatchObject({ path: V1, watch: false, status: 200 });

    const one = await client.readResourceSlice({ name: 'node-a-net.example.com-abcde' });
    expect(one.spec.devices?.[0]?.attributes?.['rdma']?.bool).toBe(true);
    await expect(client.readResourceSlice({ name: 'nope' })).rejects.toMatchObject({ code: 404 });
  });

  it('ResourceV1beta1Api.listResourceSlice sees the attributes under devices[].basic', async () => {
    const api = await startApi({ servedVersions: ['v1beta1'] });
    api.putSlice(gpuSlice('node-a'));
    const kc = kubeConfigFor(api);
    const res = await kc.makeApiClient(k8s.ResourceV1beta1Api).listResourceSlice({ fieldSelector: 'spec.nodeName=node-a' });
    expect(res.apiVersion).toBe('resource.k8s.io/v1beta1');
    const device = res.items[0]?.spec.devices?.[0];
    expect(device?.name).toBe('gpu-0');
    expect(device?.basic?.attributes?.['uuid']?.string).toBe('GPU-node-a-0');
    expect(device?.basic?.attributes?.['type']?.string).toBe('gpu');
    expect(device).not.toHaveProperty('attributes');
    expect(api.requests.at(-1)?.path).toBe(V1BETA1);

    // v1 is not served here: the v1 client gets a 404.
    await expect(kc.makeApiClient(k8s.ResourceV1Api).listResourceSlice()).rejects.toMatchObject({ code: 404 });
  });

  it('ResourceV1beta2Api.listResourceSlice decodes v1beta2 (attributes on the device)', async () => {
    const api = await startApi();
    api.putSlice(gpuSlice('node-a'));
    const res = await kubeConfigFor(api).makeApiClient(k8s.ResourceV1beta2Api).listResourceSlice();
    expect(res.items[0]?.spec.devices?.[1]?.attributes?.['profile']?.string).toBe('1g.10gb');
  });
});
