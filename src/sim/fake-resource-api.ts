/**
 * A small fake Kubernetes API server for DRA ResourceSlices (API group `resource.k8s.io`),
 * built on node:http, for tests and the demo.
 *
 * It serves
 *   GET /apis                                              APIGroupList (discovery)
 *   GET /apis/resource.k8s.io                              APIGroup
 *   GET /apis/resource.k8s.io/<v>                          APIResourceList
 *   GET /apis/resource.k8s.io/<v>/resourceslices           ResourceSliceList, or a watch
 *   GET /apis/resource.k8s.io/<v>/resourceslices/<name>    one ResourceSlice
 * for the versions it is told to serve (`v1`, `v1beta2`, `v1beta1`), with the real list/watch
 * protocol:
 *
 * - `fieldSelector` is honoured for `spec.nodeName` and `spec.driver` (`=`, `==`, `!=`,
 *   comma-separated terms); any other field answers 400. `labelSelector` is ignored.
 * - `watch=true` streams newline-delimited JSON watch events. A watch from `resourceVersion=N`
 *   first replays the recorded events newer than N, then streams live ones; without a version
 *   (or with "0") it starts with a synthetic ADDED per existing slice. A watch from a version
 *   older than the last {@link FakeResourceApi.expire} answers "410 Gone": as an HTTP 410
 *   Status, or (the real server's usual way) as a 200 whose only event is `ERROR` with a 410
 *   Status, depending on {@link FakeResourceApi.goneMode}.
 * - A watch whose selector stops (starts) matching a slice after a change gets DELETED (ADDED).
 * - `timeoutSeconds` on a watch ends the stream after that long.
 * - `allowWatchBookmarks=true` watches receive the bookmarks sent with {@link FakeResourceApi.bookmark}.
 *
 * Slices are stored in one version-neutral shape ({@link FakeSliceSpec}) and converted to the
 * requested version's JSON at serve time: v1 and v1beta2 put device attributes at
 * `spec.devices[].attributes`, v1beta1 nests them under `spec.devices[].basic.attributes`.
 *
 * Every request is recorded for assertions. Mutations take `{ notify: false }` to change the
 * store without any watch event (as if the events were lost or compacted away) — pair it with
 * {@link FakeResourceApi.expire} to force clients to relist.
 */
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { randomUUID } from 'node:crypto';

export type ResourceApiVersion = 'v1' | 'v1beta2' | 'v1beta1';

export type DeviceAttributeValue = { string: string } | { int: number } | { bool: boolean } | { version: string };

export interface FakeSliceDevice {
  name: string;
  attributes: Record<string, DeviceAttributeValue>;
}

export interface FakeSliceSpec {
  /** metadata.name */
  name: string;
  /** spec.nodeName */
  nodeName: string;
  /** spec.driver */
  driver: string;
  pool: { name: string; generation: number; resourceSliceCount: number };
  devices: FakeSliceDevice[];
}

export interface FakeResourceApiOptions {
  /** Versions of `resource.k8s.io` served; the first is the preferred one. Default `['v1','v1beta2','v1beta1']`; `[]` = the group is not served at all. */
  servedVersions?: ResourceApiVersion[];
  /** First resource version handed out (default 1000). */
  initialResourceVersion?: number;
  /** TCP port on 127.0.0.1 (default 0: a free one). */
  port?: number;
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

export interface FailNextOptions {
  /** Only watch requests (true), only list/get requests (false), or either (undefined). */
  watch?: boolean;
  /** Status `reason`; defaults to the usual one for the code. */
  reason?: string;
  /** true: fail discovery requests (`/apis...` above `resourceslices`) instead of slice requests. */
  discovery?: boolean;
}

const GROUP = 'resource.k8s.io';
const ALL_VERSIONS: readonly ResourceApiVersion[] = ['v1', 'v1beta2', 'v1beta1'];

/** One stored slice: the caller's spec plus what the server assigns. Never mutated once stored. */
interface StoredSlice {
  spec: FakeSliceSpec;
  uid: string;
  resourceVersion: number;
  creationTimestamp: string;
}

interface HistoryEntry {
  rv: number;
  before: StoredSlice | undefined;
  after: StoredSlice | undefined;
}

type SliceFilter = (slice: StoredSlice) => boolean;

interface OpenWatch {
  res: http.ServerResponse;
  version: ResourceApiVersion;
  matches: SliceFilter;
  bookmarks: boolean;
  timer: NodeJS.Timeout | undefined;
  /** The resourceVersion the watch was opened from, for the 410 Status message. */
  fromParam: string;
}

interface CannedError {
  status: number;
  message: string;
  reason: string;
  remaining: number;
  watch: boolean | undefined;
  discovery: boolean;
}

type Route =
  | { kind: 'groupList' }
  | { kind: 'group' }
  | { kind: 'resources'; version: string }
  | { kind: 'collection'; version: string }
  | { kind: 'item'; version: string; name: string };

interface WatchEvent {
  type: 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK' | 'ERROR';
  object: unknown;
}

/** Answers one request: status and JSON body. */
type Reply = (status: number, body: unknown) => void;

export class FakeResourceApi {
  readonly requests: RecordedRequest[] = [];
  /** How a watch from an expired resource version is refused. */
  goneMode: 'event' | 'http' = 'event';

  readonly #server: http.Server;
  readonly #sockets = new Set<Socket>();
  readonly #slices = new Map<string, StoredSlice>();
  readonly #history: HistoryEntry[] = [];
  readonly #watches = new Set<OpenWatch>();
  readonly #served: readonly ResourceApiVersion[];
  #rv: number;
  /** Watches from a resource version older than this answer 410 Gone. */
  #oldestWatchable = 0;
  #cannedErrors: CannedError[] = [];
  #port: number;

  private constructor(opts: FakeResourceApiOptions) {
    this.#served = checkVersions(opts.servedVersions ?? [...ALL_VERSIONS]);
    this.#rv = opts.initialResourceVersion ?? 1000;
    this.#port = opts.port ?? 0;
    this.#server = http.createServer((req, res) => this.#handle(req, res));
    this.#server.on('connection', (socket) => {
      this.#sockets.add(socket);
      socket.on('close', () => this.#sockets.delete(socket));
    });
  }

  /** Start listening on 127.0.0.1 (on a free port unless {@link FakeResourceApiOptions.port} is set). */
  static async start(opts: FakeResourceApiOptions = {}): Promise<FakeResourceApi> {
    const api = new FakeResourceApi(opts);
    await api.#listen();
    return api;
  }

  /** Base URL, e.g. `http://127.0.0.1:41234`. */
  get url(): string {
    return `http://127.0.0.1:${this.#port}`;
  }

  get port(): number {
    return this.#port;
  }

  /** Latest resource version handed out. */
  get resourceVersion(): string {
    return String(this.#rv);
  }

  /** Watch streams currently open. */
  get openWatchCount(): number {
    return this.#watches.size;
  }

  /** Versions served, preferred first. */
  get servedVersions(): ResourceApiVersion[] {
    return [...this.#served];
  }

  /** Add a slice (ADDED) or replace the one of the same name (MODIFIED; uid and creation time are kept). */
  putSlice(spec: FakeSliceSpec, opts: MutationOptions = {}): void {
    const before = this.#slices.get(spec.name);
    const after: StoredSlice = {
      spec: structuredClone(spec),
      uid: before?.uid ?? randomUUID(),
      resourceVersion: ++this.#rv,
      creationTimestamp: before?.creationTimestamp ?? new Date().toISOString(),
    };
    this.#slices.set(spec.name, after);
    this.#changed(before, after, opts);
  }

  /** Delete a slice (DELETED). Throws when there is none of that name. */
  deleteSlice(name: string, opts: MutationOptions = {}): void {
    const before = this.#slices.get(name);
    if (!before) throw new Error(`fake resource api: no ResourceSlice ${JSON.stringify(name)}`);
    this.#slices.delete(name);
    ++this.#rv;
    this.#changed(before, undefined, opts);
  }

  /** The stored slices (copies), by name. */
  slices(): FakeSliceSpec[] {
    return this.#sortedSlices().map((s) => structuredClone(s.spec));
  }

  /** Send a BOOKMARK carrying the current resource version to watches that allow bookmarks. */
  bookmark(): void {
    for (const w of this.#watches) {
      if (!w.bookmarks) continue;
      const object = { apiVersion: groupVersion(w.version), kind: 'ResourceSlice', metadata: { resourceVersion: String(this.#rv) } };
      writeEvent(w.res, { type: 'BOOKMARK', object });
    }
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
      if (this.goneMode === 'event') writeEvent(w.res, { type: 'ERROR', object: goneStatus(w.fromParam) });
      this.#endWatch(w);
    }
  }

  /** End every open watch stream cleanly (as the server does on timeout or restart). Returns how many. */
  closeWatches(): number {
    const n = this.#watches.size;
    for (const w of [...this.#watches]) this.#endWatch(w);
    return n;
  }

  /**
   * Answer the next `times` matching requests with an error Status instead. By default only
   * ResourceSlice requests (list, get, watch) match, filtered by `watch`; `discovery: true`
   * fails discovery requests instead.
   */
  failNext(times: number, status: number, message: string, opts: FailNextOptions = {}): void {
    if (times <= 0) return;
    this.#cannedErrors.push({
      status,
      message,
      reason: opts.reason ?? reasonFor(status),
      remaining: times,
      watch: opts.watch,
      discovery: opts.discovery ?? false,
    });
  }

  /** Stop accepting connections (close listener and every open socket) — the API server is down. */
  async pause(): Promise<void> {
    this.#dropWatches();
    await this.#stopListening();
  }

  /** Listen again on the same port, with the same store and history. */
  async resume(): Promise<void> {
    if (!this.#server.listening) await this.#listen();
  }

  /** Stop listening, end open watches and drop every connection. */
  async close(): Promise<void> {
    for (const w of [...this.#watches]) this.#endWatch(w);
    await this.#stopListening();
  }

  // --- listener ---------------------------------------------------------------

  async #listen(): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      this.#server.once('error', reject);
      this.#server.listen(this.#port, '127.0.0.1', () => {
        this.#server.off('error', reject);
        resolve();
      });
    });
    this.#port = (this.#server.address() as AddressInfo).port;
  }

  async #stopListening(): Promise<void> {
    if (!this.#server.listening) return;
    const closed = new Promise<void>((resolve) => this.#server.close(() => resolve()));
    for (const socket of this.#sockets) socket.destroy();
    await closed;
  }

  /** Forget open watches without ending their streams: their sockets are about to be destroyed. */
  #dropWatches(): void {
    for (const w of this.#watches) if (w.timer) clearTimeout(w.timer);
    this.#watches.clear();
  }

  // --- store and watch delivery -------------------------------------------------

  #sortedSlices(): StoredSlice[] {
    return [...this.#slices.values()].sort((a, b) => (a.spec.name < b.spec.name ? -1 : a.spec.name > b.spec.name ? 1 : 0));
  }

  #changed(before: StoredSlice | undefined, after: StoredSlice | undefined, opts: MutationOptions): void {
    if (opts.notify === false) return;
    this.#history.push({ rv: this.#rv, before, after });
    for (const w of this.#watches) this.#deliver(w, before, after, this.#rv);
  }

  /** Send the event one change means to one watch, seen through its selector. */
  #deliver(w: OpenWatch, before: StoredSlice | undefined, after: StoredSlice | undefined, rv: number): void {
    const was = before !== undefined && w.matches(before);
    const is = after !== undefined && w.matches(after);
    if (was && is) writeEvent(w.res, { type: 'MODIFIED', object: toObject(after, w.version) });
    else if (!was && is) writeEvent(w.res, { type: 'ADDED', object: toObject(after, w.version) });
    else if (was && !is) {
      // A deletion (or a slice leaving the selector) carries the last state with the change's resource version.
      writeEvent(w.res, { type: 'DELETED', object: toObject({ ...(after ?? before), resourceVersion: rv }, w.version) });
    }
  }

  #endWatch(w: OpenWatch): void {
    if (w.timer) clearTimeout(w.timer);
    this.#watches.delete(w);
    if (!w.res.writableEnded) w.res.end();
  }

  // --- request handling ---------------------------------------------------------

  #handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const url = new URL(req.url ?? '/', 'http://fake');
    const query: Record<string, string> = {};
    for (const [k, v] of url.searchParams) query[k] = v;
    const watch = query['watch'] === 'true' || query['watch'] === '1';
    const record: RecordedRequest = { method: req.method ?? 'GET', path: url.pathname, query, watch, status: 200, headers: req.headers };
    this.requests.push(record);
    const reply: Reply = (code, body) => {
      record.status = code;
      res.writeHead(code, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    };

    const route = parseRoute(url.pathname);
    if (!route || !this.#routeServed(route)) return reply(404, notFoundStatus(url.pathname));
    if (req.method !== 'GET') return reply(405, status(405, `the server does not allow this method on the requested resource (${req.method})`, 'MethodNotAllowed'));

    const discovery = route.kind !== 'collection' && route.kind !== 'item';
    const canned = this.#takeCannedError(discovery, watch);
    if (canned) return reply(canned.status, status(canned.status, canned.message, canned.reason));

    switch (route.kind) {
      case 'groupList':
        return reply(200, { kind: 'APIGroupList', apiVersion: 'v1', groups: this.#served.length > 0 ? [this.#apiGroup()] : [] });
      case 'group':
        return reply(200, this.#apiGroup());
      case 'resources':
        return reply(200, apiResourceList(route.version));
      case 'item':
        return this.#getSlice(route.version as ResourceApiVersion, route.name, reply);
      case 'collection':
        return this.#listOrWatch(route.version as ResourceApiVersion, query, watch, res, record, reply);
    }
  }

  /** Whether the group/version a route names is served (an unserved version, or any version when none is, is 404). */
  #routeServed(route: Route): boolean {
    if (route.kind === 'groupList') return true;
    if (route.kind === 'group') return this.#served.length > 0;
    return (this.#served as readonly string[]).includes(route.version);
  }

  /** The canned error that applies to this request, if any (and count it down). */
  #takeCannedError(discovery: boolean, watch: boolean): CannedError | undefined {
    const canned = this.#cannedErrors.find((c) => c.discovery === discovery && (discovery || c.watch === undefined || c.watch === watch));
    if (canned && --canned.remaining <= 0) this.#cannedErrors.splice(this.#cannedErrors.indexOf(canned), 1);
    return canned;
  }

  #apiGroup(): object {
    const versions = this.#served.map((v) => ({ groupVersion: groupVersion(v), version: v }));
    return { kind: 'APIGroup', apiVersion: 'v1', name: GROUP, versions, preferredVersion: versions[0] };
  }

  #getSlice(version: ResourceApiVersion, name: string, reply: Reply): void {
    const slice = this.#slices.get(name);
    if (!slice) return reply(404, sliceNotFoundStatus(name));
    reply(200, toObject(slice, version));
  }

  #listOrWatch(
    version: ResourceApiVersion,
    query: Record<string, string>,
    watch: boolean,
    res: http.ServerResponse,
    record: RecordedRequest,
    reply: Reply,
  ): void {
    let matches: SliceFilter;
    try {
      matches = parseFieldSelector(query['fieldSelector'] ?? '');
    } catch (err) {
      return reply(400, status(400, (err as Error).message, 'BadRequest'));
    }
    if (!watch) {
      const items = this.#sortedSlices()
        .filter(matches)
        .map((s) => toObject(s, version));
      return reply(200, { apiVersion: groupVersion(version), kind: 'ResourceSliceList', metadata: { resourceVersion: String(this.#rv) }, items });
    }
    this.#watch(version, query, matches, res, record, reply);
  }

  #watch(
    version: ResourceApiVersion,
    query: Record<string, string>,
    matches: SliceFilter,
    res: http.ServerResponse,
    record: RecordedRequest,
    reply: Reply,
  ): void {
    const fromParam = query['resourceVersion'] ?? '';
    const from = fromParam === '' || fromParam === '0' ? undefined : Number(fromParam);
    if (from !== undefined && (!Number.isInteger(from) || from < 0)) {
      return reply(400, status(400, `invalid resourceVersion ${JSON.stringify(fromParam)}`, 'BadRequest'));
    }
    const gone = from !== undefined && from < this.#oldestWatchable;
    if (gone && this.goneMode === 'http') return reply(410, goneStatus(fromParam));

    record.status = 200;
    res.writeHead(200, { 'content-type': 'application/json', 'transfer-encoding': 'chunked' });
    res.flushHeaders();
    if (gone) {
      writeEvent(res, { type: 'ERROR', object: goneStatus(fromParam) });
      res.end();
      return;
    }

    // Registered synchronously: once a client has the response headers, it sees every later change.
    const w: OpenWatch = { res, version, matches, bookmarks: query['allowWatchBookmarks'] === 'true', timer: undefined, fromParam };
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
      // No version: a synthetic ADDED for everything that exists now ("get state and start at most recent").
      for (const s of this.#sortedSlices()) if (matches(s)) writeEvent(res, { type: 'ADDED', object: toObject(s, version) });
    } else {
      for (const h of this.#history) if (h.rv > from) this.#deliver(w, h.before, h.after, h.rv);
    }
  }
}

// --- helpers ----------------------------------------------------------------------

function checkVersions(versions: ResourceApiVersion[]): readonly ResourceApiVersion[] {
  for (const v of versions) {
    if (!ALL_VERSIONS.includes(v)) throw new Error(`fake resource api: unknown version ${JSON.stringify(v)}`);
  }
  if (new Set(versions).size !== versions.length) throw new Error(`fake resource api: duplicate versions in ${versions.join(',')}`);
  return [...versions];
}

function groupVersion(version: string): string {
  return `${GROUP}/${version}`;
}

const GROUP_PATH = /^\/apis\/resource\.k8s\.io\/?$/;
const VERSION_PATH = /^\/apis\/resource\.k8s\.io\/([^/]+)\/?$/;
const SLICES_PATH = /^\/apis\/resource\.k8s\.io\/([^/]+)\/resourceslices(?:\/([^/]+))?\/?$/;

/** What a path names, whether or not its version is served; undefined for any other path. */
function parseRoute(pathname: string): Route | undefined {
  if (pathname === '/apis' || pathname === '/apis/') return { kind: 'groupList' };
  if (GROUP_PATH.test(pathname)) return { kind: 'group' };
  const v = VERSION_PATH.exec(pathname);
  if (v) return { kind: 'resources', version: v[1] as string };
  const s = SLICES_PATH.exec(pathname);
  if (!s) return undefined;
  const version = s[1] as string;
  return s[2] === undefined ? { kind: 'collection', version } : { kind: 'item', version, name: decodeURIComponent(s[2]) };
}

function apiResourceList(version: string): object {
  return {
    kind: 'APIResourceList',
    apiVersion: 'v1',
    groupVersion: groupVersion(version),
    resources: [
      { name: 'resourceslices', singularName: 'resourceslice', namespaced: false, kind: 'ResourceSlice', verbs: ['get', 'list', 'watch'] },
    ],
  };
}

/** The JSON of a stored slice in the given API version. */
function toObject(slice: StoredSlice, version: ResourceApiVersion): object {
  const { spec } = slice;
  return {
    apiVersion: groupVersion(version),
    kind: 'ResourceSlice',
    metadata: {
      name: spec.name,
      uid: slice.uid,
      resourceVersion: String(slice.resourceVersion),
      creationTimestamp: slice.creationTimestamp,
    },
    spec: {
      driver: spec.driver,
      nodeName: spec.nodeName,
      pool: { ...spec.pool },
      devices: spec.devices.map((d) => deviceObject(d, version)),
    },
  };
}

/** v1 and v1beta2 carry attributes on the device; v1beta1 nests them under `basic`. */
function deviceObject(device: FakeSliceDevice, version: ResourceApiVersion): object {
  const attributes = structuredClone(device.attributes);
  return version === 'v1beta1' ? { name: device.name, basic: { attributes } } : { name: device.name, attributes };
}

function writeEvent(res: http.ServerResponse, event: WatchEvent): void {
  if (!res.writableEnded && !res.destroyed) res.write(JSON.stringify(event) + '\n');
}

function status(code: number, message: string, reason: string, details?: object): object {
  return { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason, ...(details ? { details } : {}), code };
}

function notFoundStatus(pathname: string): object {
  return status(404, `the server could not find the requested resource (${pathname})`, 'NotFound');
}

function sliceNotFoundStatus(name: string): object {
  return status(404, `resourceslices.${GROUP} ${JSON.stringify(name)} not found`, 'NotFound', { name, group: GROUP, kind: 'resourceslices' });
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

/** The fields ResourceSlices can be selected by, and how to read each. */
const SELECTABLE_FIELDS: Readonly<Record<string, (slice: StoredSlice) => string>> = {
  'spec.nodeName': (s) => s.spec.nodeName,
  'spec.driver': (s) => s.spec.driver,
};

/** Parse a field selector (`f=v`, `f==v`, `f!=v`, comma-joined; all must hold). Throws with the Status message on a bad one. */
function parseFieldSelector(selector: string): SliceFilter {
  const terms = selector
    .split(',')
    .map((t) => t.trim())
    .filter((t) => t !== '')
    .map((t): SliceFilter => {
      const m = /^([^!=]+)(!=|==|=)(.*)$/.exec(t);
      if (!m) throw new Error(`invalid field selector term ${JSON.stringify(t)}`);
      const [, rawField, op, value] = m as unknown as [string, string, string, string];
      const field = rawField.trim();
      const read = Object.hasOwn(SELECTABLE_FIELDS, field) ? SELECTABLE_FIELDS[field] : undefined;
      if (!read) throw new Error(`field label not supported: ${field}`);
      return (s) => (read(s) === value) === (op !== '!=');
    });
  return (s) => terms.every((t) => t(s));
}
