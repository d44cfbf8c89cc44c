/**
 * A small fake Kubernetes API server for pods, built on node:http, for tests.
 *
 * It serves
 *   GET /api/v1/pods                      (all namespaces)
 *   GET /api/v1/namespaces/<ns>/pods      (one namespace)
 * both as a list (`items` + `metadata.resourceVersion`) and, with `watch=true`,
 * as a stream of newline-delimited JSON watch events, like the real API server:
 *
 * - `fieldSelector` is honoured for `spec.nodeName` and `metadata.namespace`/`metadata.name`
 *   (`=`, `==` and `!=`, comma-separated terms); other fields answer 400.
 * - `labelSelector` is honoured for equality terms (`k=v`, `k==v`, `k!=v`) and existence (`k`, `!k`).
 * - A watch from `resourceVersion=N` first replays the recorded events newer than N, then
 *   streams live ones. A watch from a version older than the last {@link FakeApiServer.expire}
 *   answers "410 Gone": as an HTTP 410 Status, or (the real server's usual way) as a 200 whose
 *   only event is `ERROR` with a 410 Status, depending on {@link FakeApiServer.goneMode}.
 * - A watch whose selector stops (starts) matching an object after a change gets DELETED (ADDED).
 * - `timeoutSeconds` on a watch ends the stream after that long.
 * - `allowWatchBookmarks=true` watches receive the bookmarks sent with {@link FakeApiServer.bookmark}.
 *
 * Every request is recorded (method, path, query, watch or not) for assertions.
 * Mutations take `{ notify: false }` to change the store without any watch event (as if the
 * events were lost or compacted away) — pair it with {@link FakeApiServer.expire} to force a relist.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomUUID } from 'node:crypto';

export interface FakePodSpec {
  namespace: string;
  name: string;
  /** Defaults to a random UUID. */
  uid?: string;
  labels?: Record<string, string>;
  /** Defaults to the server's {@link FakeApiServerOptions.defaultNodeName}. */
  nodeName?: string;
}

/** The JSON the fake serves for a pod (a small but well-formed subset of a v1 Pod). */
export interface FakePodObject {
  apiVersion: 'v1';
  kind: 'Pod';
  metadata: {
    name: string;
    namespace: string;
    uid: string;
    resourceVersion: string;
    creationTimestamp: string;
    labels?: Record<string, string>;
  };
  spec: { nodeName: string; containers: Array<{ name: string; image: string }> };
  status: { phase: string };
}

export interface RecordedRequest {
  method: string;
  /** Path without the query string. */
  path: string;
  /** Decoded query parameters (last value wins). */
  query: Record<string, string>;
  watch: boolean;
  /** Status code it was answered with. */
  status: number;
  headers: http.IncomingHttpHeaders;
}

export interface MutationOptions {
  /** false: change the store and bump the resource version without emitting (or recording) a watch event. */
  notify?: boolean;
}

export type WatchEventType = 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK' | 'ERROR';

export interface FakeApiServerOptions {
  defaultNodeName?: string;
  /** First resource version handed out (default 1000). */
  initialResourceVersion?: number;
}

interface HistoryEntry {
  rv: number;
  before: FakePodObject | undefined;
  after: FakePodObject | undefined;
}

interface OpenWatch {
  res: http.ServerResponse;
  namespace: string | undefined;
  matches: (pod: FakePodObject) => boolean;
  bookmarks: boolean;
  timer: NodeJS.Timeout | undefined;
  query: Record<string, string>;
}

interface CannedError {
  status: number;
  message: string;
  reason: string;
  remaining: number;
  watch: boolean | undefined;
}

export class FakeApiServer {
  readonly requests: RecordedRequest[] = [];
  /** How a watch from an expired resource version is refused. */
  goneMode: 'event' | 'http' = 'event';

  readonly #server: http.Server;
  readonly #sockets = new Set<import('node:net').Socket>();
  readonly #pods = new Map<string, FakePodObject>();
  readonly #history: HistoryEntry[] = [];
  readonly #watches = new Set<OpenWatch>();
  readonly #defaultNode: string;
  #rv: number;
  /** Watches from a resource version older than this answer 410 Gone. */
  #oldestWatchable = 0;
  #cannedErrors: CannedError[] = [];
  #url = '';

  private constructor(opts: FakeApiServerOptions) {
    this.#defaultNode = opts.defaultNodeName ?? 'node-a';
    this.#rv = opts.initialResourceVersion ?? 1000;
    this.#server = http.createServer((req, res) => this.#handle(req, res));
    this.#server.on('connection', (socket) => {
      this.#sockets.add(socket);
      socket.on('close', () => this.#sockets.delete(socket));
    });
  }

  /** Start listening on 127.0.0.1 on a free port. */
  static async start(opts: FakeApiServerOptions = {}): Promise<FakeApiServer> {
    const server = new FakeApiServer(opts);
    await new Promise<void>((resolve, reject) => {
      server.#server.once('error', reject);
      server.#server.listen(0, '127.0.0.1', () => {
        server.#server.off('error', reject);
        resolve();
      });
    });
    const { port } = server.#server.address() as AddressInfo;
    server.#url = `http://127.0.0.1:${port}`;
    return server;
  }

  /** Base URL, e.g. `http://127.0.0.1:41234`. */
  get url(): string {
    return this.#url;
  }

  /** Latest resource version handed out. */
  get resourceVersion(): string {
    return String(this.#rv);
  }

  /** Watch streams currently open. */
  get openWatchCount(): number {
    return this.#watches.size;
  }

  /** TCP connections currently open (any request kind). */
  get openConnectionCount(): number {
    return this.#sockets.size;
  }

  listRequests(): RecordedRequest[] {
    return this.requests.filter((r) => !r.watch);
  }

  watchRequests(): RecordedRequest[] {
    return this.requests.filter((r) => r.watch);
  }

  pod(namespace: string, name: string): FakePodObject | undefined {
    return this.#pods.get(key(namespace, name));
  }

  addPod(spec: FakePodSpec, opts: MutationOptions = {}): FakePodObject {
    const k = key(spec.namespace, spec.name);
    if (this.#pods.has(k)) throw new Error(`fake apiserver: pod ${k} already exists`);
    const pod: FakePodObject = {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: {
        name: spec.name,
        namespace: spec.namespace,
        uid: spec.uid ?? randomUUID(),
        resourceVersion: String(++this.#rv),
        creationTimestamp: new Date().toISOString(),
        ...(spec.labels ? { labels: { ...spec.labels } } : {}),
      },
      spec: { nodeName: spec.nodeName ?? this.#defaultNode, containers: [{ name: 'main', image: 'example/app:1' }] },
      status: { phase: 'Running' },
    };
    this.#pods.set(k, pod);
    this.#changed(undefined, pod, opts);
    return clone(pod);
  }

  /** Replace labels and/or move the pod to another node. */
  modifyPod(
    namespace: string,
    name: string,
    change: { labels?: Record<string, string>; nodeName?: string; phase?: string },
    opts: MutationOptions = {},
  ): FakePodObject {
    const k = key(namespace, name);
    const before = this.#pods.get(k);
    if (!before) throw new Error(`fake apiserver: no pod ${k}`);
    const after: FakePodObject = clone(before);
    after.metadata.resourceVersion = String(++this.#rv);
    if (change.labels !== undefined) after.metadata.labels = { ...change.labels };
    if (change.nodeName !== undefined) after.spec.nodeName = change.nodeName;
    if (change.phase !== undefined) after.status.phase = change.phase;
    this.#pods.set(k, after);
    this.#changed(before, after, opts);
    return clone(after);
  }

  deletePod(namespace: string, name: string, opts: MutationOptions = {}): void {
    const k = key(namespace, name);
    const before = this.#pods.get(k);
    if (!before) throw new Error(`fake apiserver: no pod ${k}`);
    this.#pods.delete(k);
    ++this.#rv;
    this.#changed(before, undefined, opts);
  }

  /** Send a BOOKMARK carrying the current resource version to watches that allow bookmarks. */
  bookmark(): void {
    const event = { type: 'BOOKMARK', object: { kind: 'Pod', apiVersion: 'v1', metadata: { resourceVersion: String(this.#rv) } } };
    for (const w of this.#watches) if (w.bookmarks) writeEvent(w.res, event);
  }

  /** End every open watch stream cleanly (as the server does on timeout or restart). Returns how many. */
  closeWatches(): number {
    const n = this.#watches.size;
    for (const w of [...this.#watches]) this.#endWatch(w);
    return n;
  }

  /**
   * Forget the event history: watches from any version up to now answer 410 Gone from now on.
   * Open watches get an `ERROR` 410 event (goneMode 'event') or are just closed (goneMode 'http',
   * so the client's reconnect is the request answered with HTTP 410).
   */
  expire(): void {
    this.#oldestWatchable = this.#rv;
    this.#history.length = 0;
    for (const w of [...this.#watches]) {
      if (this.goneMode === 'event') writeEvent(w.res, { type: 'ERROR', object: goneStatus(w.query['resourceVersion'] ?? '') });
      this.#endWatch(w);
    }
  }

  /**
   * Answer the next `times` matching requests with an error Status instead.
   * `watch`: only watch requests (true), only list requests (false), or either (undefined).
   */
  failNext(times: number, status: number, message: string, opts: { reason?: string; watch?: boolean } = {}): void {
    this.#cannedErrors.push({ status, message, reason: opts.reason ?? reasonFor(status), remaining: times, watch: opts.watch });
  }

  /** Stop listening, end open watches and drop every connection. */
  async close(): Promise<void> {
    for (const w of [...this.#watches]) this.#endWatch(w);
    await new Promise<void>((resolve) => {
      this.#server.close(() => resolve());
      this.#server.closeAllConnections();
    });
  }

  // ---------------------------------------------------------------------------

  #changed(before: FakePodObject | undefined, after: FakePodObject | undefined, opts: MutationOptions): void {
    if (opts.notify === false) return;
    this.#history.push({ rv: this.#rv, before: before && clone(before), after: after && clone(after) });
    for (const w of this.#watches) this.#deliver(w, before, after, this.#rv);
  }

  #deliver(w: OpenWatch, before: FakePodObject | undefined, after: FakePodObject | undefined, rv: number): void {
    const inScope = (p: FakePodObject | undefined): p is FakePodObject =>
      p !== undefined && (w.namespace === undefined || p.metadata.namespace === w.namespace) && w.matches(p);
    const was = inScope(before);
    const is = inScope(after);
    if (was && is) writeEvent(w.res, { type: 'MODIFIED', object: after });
    else if (!was && is) writeEvent(w.res, { type: 'ADDED', object: after });
    else if (was && !is) {
      // A deletion carries the last state with the deletion's resource version.
      const last = clone(after ?? before);
      last.metadata.resourceVersion = String(rv);
      writeEvent(w.res, { type: 'DELETED', object: last });
    }
  }

  #endWatch(w: OpenWatch): void {
    if (w.timer) clearTimeout(w.timer);
    this.#watches.delete(w);
    if (!w.res.writableEnded) w.res.end();
  }

  #handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const url = new URL(req.url ?? '/', 'http://fake');
    const query: Record<string, string> = {};
    for (const [k, v] of url.searchParams) query[k] = v;
    const watch = query['watch'] === 'true' || query['watch'] === '1';
    const record: RecordedRequest = { method: req.method ?? 'GET', path: url.pathname, query, watch, status: 200, headers: req.headers };
    this.requests.push(record);
    const reply = (status: number, body: unknown): void => {
      record.status = status;
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    };

    const m = /^\/api\/v1\/(?:namespaces\/([^/]+)\/)?pods\/?$/.exec(url.pathname);
    if (!m) return reply(404, status(404, `the server could not find the requested resource (${url.pathname})`, 'NotFound'));
    if (req.method !== 'GET') return reply(405, status(405, `method ${req.method} not allowed`, 'MethodNotAllowed'));

    const canned = this.#cannedErrors.find((c) => c.watch === undefined || c.watch === watch);
    if (canned) {
      if (--canned.remaining <= 0) this.#cannedErrors.splice(this.#cannedErrors.indexOf(canned), 1);
      return reply(canned.status, status(canned.status, canned.message, canned.reason));
    }

    const namespace = m[1] === undefined ? undefined : decodeURIComponent(m[1]);
    let matches: (pod: FakePodObject) => boolean;
    try {
      const byField = parseFieldSelector(query['fieldSelector'] ?? '');
      const byLabel = parseLabelSelector(query['labelSelector'] ?? '');
      matches = (p) => byField(p) && byLabel(p);
    } catch (err) {
      return reply(400, status(400, (err as Error).message, 'BadRequest'));
    }
    const inScope = (p: FakePodObject): boolean => (namespace === undefined || p.metadata.namespace === namespace) && matches(p);

    if (!watch) {
      const items = [...this.#pods.values()].filter(inScope).map(clone);
      return reply(200, { apiVersion: 'v1', kind: 'PodList', metadata: { resourceVersion: String(this.#rv) }, items });
    }

    // --- watch ---
    const rvParam = query['resourceVersion'] ?? '';
    const from = rvParam === '' || rvParam === '0' ? undefined : Number(rvParam);
    if (from !== undefined && (!Number.isInteger(from) || from < 0)) {
      return reply(400, status(400, `invalid resourceVersion ${JSON.stringify(rvParam)}`, 'BadRequest'));
    }
    const gone = from !== undefined && from < this.#oldestWatchable;
    if (gone && this.goneMode === 'http') return reply(410, goneStatus(rvParam));

    record.status = 200;
    res.writeHead(200, { 'content-type': 'application/json', 'transfer-encoding': 'chunked' });
    res.flushHeaders();
    if (gone) {
      writeEvent(res, { type: 'ERROR', object: goneStatus(rvParam) });
      res.end();
      return;
    }

    const w: OpenWatch = { res, namespace, matches, bookmarks: query['allowWatchBookmarks'] === 'true', timer: undefined, query };
    this.#watches.add(w);
    res.on('close', () => {
      if (w.timer) clearTimeout(w.timer);
      this.#watches.delete(w);
    });
    const timeoutSeconds = Number(query['timeoutSeconds'] ?? '0');
    if (timeoutSeconds > 0) {
      w.timer = setTimeout(() => this.#endWatch(w), timeoutSeconds * 1000);
      w.timer.unref();
    }

    if (from === undefined) {
      // No version: synthetic ADDED for everything that exists now ("get state and start at most recent").
      for (const p of this.#pods.values()) if (inScope(p)) writeEvent(res, { type: 'ADDED', object: p });
    } else {
      for (const h of this.#history) if (h.rv > from) this.#deliver(w, h.before, h.after, h.rv);
    }
  }
}

// -----------------------------------------------------------------------------

function key(namespace: string, name: string): string {
  return `${namespace}/${name}`;
}

function clone<T>(v: T): T {
  return structuredClone(v);
}

function writeEvent(res: http.ServerResponse, event: { type: WatchEventType | string; object: unknown }): void {
  if (!res.writableEnded && !res.destroyed) res.write(JSON.stringify(event) + '\n');
}

function status(code: number, message: string, reason: string): object {
  return { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason, code };
}

function goneStatus(rv: string): object {
  return status(410, `too old resource version: ${rv}`, 'Expired');
}

function reasonFor(code: number): string {
  switch (code) {
    case 401:
      return 'Unauthorized';
    case 403:
      return 'Forbidden';
    case 404:
      return 'NotFound';
    case 410:
      return 'Expired';
    case 429:
      return 'TooManyRequests';
    case 503:
      return 'ServiceUnavailable';
    default:
      return code >= 500 ? 'InternalError' : 'BadRequest';
  }
}

function fieldValue(pod: FakePodObject, field: string): string {
  switch (field) {
    case 'spec.nodeName':
      return pod.spec.nodeName;
    case 'metadata.namespace':
      return pod.metadata.namespace;
    case 'metadata.name':
      return pod.metadata.name;
    case 'status.phase':
      return pod.status.phase;
    default:
      throw new Error(`field label not supported: ${field}`);
  }
}

function parseFieldSelector(selector: string): (pod: FakePodObject) => boolean {
  const terms = selector
    .split(',')
    .map((t) => t.trim())
    .filter((t) => t !== '')
    .map((t) => {
      const m = /^([^!=]+)(!=|==|=)(.*)$/.exec(t);
      if (!m) throw new Error(`invalid field selector term ${JSON.stringify(t)}`);
      const [, field, op, value] = m as unknown as [string, string, string, string];
      fieldValue(SAMPLE_POD, field); // throws for unsupported fields, like the real server
      return (p: FakePodObject) => (fieldValue(p, field) === value) === (op !== '!=');
    });
  return (p) => terms.every((t) => t(p));
}

function parseLabelSelector(selector: string): (pod: FakePodObject) => boolean {
  const terms = selector
    .split(',')
    .map((t) => t.trim())
    .filter((t) => t !== '')
    .map((t): ((p: FakePodObject) => boolean) => {
      const labels = (p: FakePodObject): Record<string, string> => p.metadata.labels ?? {};
      const eq = /^([^!=]+)(!=|==|=)(.*)$/.exec(t);
      if (eq) {
        const [, k, op, v] = eq as unknown as [string, string, string, string];
        return (p) => (labels(p)[k] === v) === (op !== '!=');
      }
      if (t.startsWith('!')) return (p) => !(t.slice(1) in labels(p));
      if (/^[A-Za-z0-9_./-]+$/.test(t)) return (p) => t in labels(p);
      throw new Error(`unsupported label selector term ${JSON.stringify(t)}`);
    });
  return (p) => terms.every((t) => t(p));
}

const SAMPLE_POD: FakePodObject = {
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: { name: '', namespace: '', uid: '', resourceVersion: '0', creationTimestamp: '' },
  spec: { nodeName: '', containers: [] },
  status: { phase: '' },
};
