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
 *
 * The list/watch machinery is shared with the ResourceSlice fake (src/sim/fake-watch-store.ts);
 * this module adds the pod routes, the pod JSON and the selectors.
 */
import { randomUUID } from 'node:crypto';
import {
  FakeWatchServer,
  equalityTerm,
  notFoundStatus,
  parseFieldSelector,
  parseSelector,
  statusObject,
  type FakeRequest,
  type MutationOptions,
  type RecordedRequest,
} from '../../src/sim/fake-watch-store.js';

export type { MutationOptions, RecordedRequest, WatchEventType } from '../../src/sim/fake-watch-store.js';

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

export interface FakeApiServerOptions {
  defaultNodeName?: string;
  /** First resource version handed out (default 1000). */
  initialResourceVersion?: number;
}

type PodFilter = (pod: FakePodObject) => boolean;

/** Pods are stored by `namespace/name`; a stored pod is never mutated (a change stores a new one). */
export class FakeApiServer extends FakeWatchServer<FakePodObject> {
  readonly #defaultNode: string;

  private constructor(opts: FakeApiServerOptions) {
    super({
      initialResourceVersion: opts.initialResourceVersion,
      withResourceVersion: (pod, rv) => {
        const copy = clone(pod);
        copy.metadata.resourceVersion = String(rv);
        return copy;
      },
    });
    this.#defaultNode = opts.defaultNodeName ?? 'node-a';
  }

  /** Start listening on 127.0.0.1 on a free port. */
  static start(opts: FakeApiServerOptions = {}): Promise<FakeApiServer> {
    return new FakeApiServer(opts).listen();
  }

  /** TCP connections currently open (any request kind). */
  get openConnectionCount(): number {
    return this.http.openConnectionCount;
  }

  listRequests(): RecordedRequest[] {
    return this.requests.filter((r) => !r.watch);
  }

  watchRequests(): RecordedRequest[] {
    return this.requests.filter((r) => r.watch);
  }

  pod(namespace: string, name: string): FakePodObject | undefined {
    return this.store.get(key(namespace, name));
  }

  addPod(spec: FakePodSpec, opts: MutationOptions = {}): FakePodObject {
    const k = key(spec.namespace, spec.name);
    if (this.store.get(k)) throw new Error(`fake apiserver: pod ${k} already exists`);
    const pod: FakePodObject = {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: {
        name: spec.name,
        namespace: spec.namespace,
        uid: spec.uid ?? randomUUID(),
        resourceVersion: String(this.store.nextResourceVersion()),
        creationTimestamp: new Date().toISOString(),
        ...(spec.labels ? { labels: { ...spec.labels } } : {}),
      },
      spec: { nodeName: spec.nodeName ?? this.#defaultNode, containers: [{ name: 'main', image: 'example/app:1' }] },
      status: { phase: 'Running' },
    };
    this.store.put(k, pod, opts);
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
    const before = this.store.get(k);
    if (!before) throw new Error(`fake apiserver: no pod ${k}`);
    const after: FakePodObject = clone(before);
    after.metadata.resourceVersion = String(this.store.nextResourceVersion());
    if (change.labels !== undefined) after.metadata.labels = { ...change.labels };
    if (change.nodeName !== undefined) after.spec.nodeName = change.nodeName;
    if (change.phase !== undefined) after.status.phase = change.phase;
    this.store.put(k, after, opts);
    return clone(after);
  }

  deletePod(namespace: string, name: string, opts: MutationOptions = {}): void {
    const k = key(namespace, name);
    if (!this.store.remove(k, opts)) throw new Error(`fake apiserver: no pod ${k}`);
  }

  /**
   * Answer the next `times` matching requests with an error Status instead.
   * `watch`: only watch requests (true), only list requests (false), or either (undefined).
   */
  failNext(times: number, status: number, message: string, opts: { reason?: string; watch?: boolean } = {}): void {
    this.http.failNext(times, status, message, opts);
  }

  // ---------------------------------------------------------------------------

  protected override handle(req: FakeRequest): void {
    const { reply } = req;
    const m = /^\/api\/v1\/(?:namespaces\/([^/]+)\/)?pods\/?$/.exec(req.path);
    if (!m) return reply(404, notFoundStatus(req.path));
    if (req.method !== 'GET') return reply(405, statusObject(405, `method ${req.method} not allowed`, 'MethodNotAllowed'));
    if (this.http.answerCannedError(req)) return;

    const namespace = m[1] === undefined ? undefined : decodeURIComponent(m[1]);
    let matches: PodFilter;
    try {
      const byField = parseFieldSelector(req.query['fieldSelector'] ?? '', SELECTABLE_FIELDS);
      const byLabel = parseLabelSelector(req.query['labelSelector'] ?? '');
      matches = (p) => (namespace === undefined || p.metadata.namespace === namespace) && byField(p) && byLabel(p);
    } catch (err) {
      return reply(400, statusObject(400, (err as Error).message, 'BadRequest'));
    }
    const view = { apiVersion: 'v1', kind: 'Pod', matches, toObject: (p: FakePodObject) => p };
    if (req.watch) this.store.watch(req, view);
    else reply(200, this.store.list(view));
  }
}

// -----------------------------------------------------------------------------

function key(namespace: string, name: string): string {
  return `${namespace}/${name}`;
}

function clone<T>(v: T): T {
  return structuredClone(v);
}

/** The fields pods can be selected by, and how to read each. */
const SELECTABLE_FIELDS: Readonly<Record<string, (pod: FakePodObject) => string>> = {
  'spec.nodeName': (p) => p.spec.nodeName,
  'metadata.namespace': (p) => p.metadata.namespace,
  'metadata.name': (p) => p.metadata.name,
  'status.phase': (p) => p.status.phase,
};

/** Parse a label selector: equality terms (`k=v`, `k==v`, `k!=v`) and existence (`k`, `!k`), comma-joined. */
function parseLabelSelector(selector: string): PodFilter {
  const labels = (p: FakePodObject): Record<string, string> => p.metadata.labels ?? {};
  return parseSelector(selector, (t): PodFilter => {
    const eq = equalityTerm(t);
    if (eq) return (p) => (labels(p)[eq.key] === eq.value) === (eq.op !== '!=');
    if (t.startsWith('!')) return (p) => !(t.slice(1) in labels(p));
    if (/^[A-Za-z0-9_./-]+$/.test(t)) return (p) => t in labels(p);
    throw new Error(`unsupported label selector term ${JSON.stringify(t)}`);
  });
}
