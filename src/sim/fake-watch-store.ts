/**
 * The list/watch core shared by the fake Kubernetes API servers (src/sim/fake-resource-api.ts for
 * DRA ResourceSlices, test/support/fake-apiserver.ts for pods):
 *
 * - {@link FakeHttpServer}: a node:http server on 127.0.0.1 that records every request, answers
 *   canned error Statuses ({@link FakeHttpServer.failNext}), tracks its sockets and can stop and
 *   listen again on the same port.
 * - {@link WatchStore}: objects by key with resource versions, the event history and the open
 *   watches, speaking the real list/watch protocol: newline-delimited JSON watch events, replay
 *   from a `resourceVersion`, "410 Gone" for one older than the last {@link WatchStore.expire}
 *   (as an `ERROR` event or an HTTP 410, per {@link WatchStore.goneMode}), bookmarks,
 *   `timeoutSeconds`, and ADDED/DELETED when a change makes an object start/stop matching a
 *   watch's selector.
 * - {@link FakeWatchServer}: the two joined, with the controls both fakes offer (`goneMode`,
 *   `expire()`, `bookmark()`, `closeWatches()`, ...); a fake extends it with its routes.
 * - Status bodies and a field selector parser.
 *
 * The fakes keep what is theirs: routes, how objects are stored and their JSON, which fields can
 * be selected.
 */
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

export type WatchEventType = 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK' | 'ERROR';

export interface WatchEvent {
  type: WatchEventType;
  object: unknown;
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
  /** true: fail discovery requests (`/apis...` above the resources) instead of resource requests. */
  discovery?: boolean;
}

/** Answers one request: status and JSON body. */
export type Reply = (status: number, body: unknown) => void;

/** One request, parsed, with its record (in {@link FakeHttpServer.requests}) and a way to answer it. */
export interface FakeRequest extends Pick<RecordedRequest, 'method' | 'path' | 'query' | 'watch'> {
  record: RecordedRequest;
  res: http.ServerResponse;
  reply: Reply;
}

interface CannedError {
  status: number;
  message: string;
  reason: string;
  remaining: number;
  watch: boolean | undefined;
  discovery: boolean;
}

// --- HTTP server ------------------------------------------------------------------

/** A node:http server on 127.0.0.1 that records requests and can answer canned errors. */
export class FakeHttpServer {
  readonly requests: RecordedRequest[] = [];

  readonly #server: http.Server;
  readonly #sockets = new Set<Socket>();
  #cannedErrors: CannedError[] = [];
  #port: number;

  /** `port` 0 (the default): a free one, picked by the first {@link listen}. */
  constructor(handle: (req: FakeRequest) => void, port = 0) {
    this.#port = port;
    this.#server = http.createServer((req, res) => handle(this.#parse(req, res)));
    this.#server.on('connection', (socket) => {
      this.#sockets.add(socket);
      socket.on('close', () => this.#sockets.delete(socket));
    });
  }

  /** Base URL, e.g. `http://127.0.0.1:41234`. */
  get url(): string {
    return `http://127.0.0.1:${this.#port}`;
  }

  get port(): number {
    return this.#port;
  }

  /** TCP connections currently open (any request kind). */
  get openConnectionCount(): number {
    return this.#sockets.size;
  }

  /** Start listening (again, on the same port after a {@link stop}); a no-op while listening. */
  async listen(): Promise<void> {
    if (this.#server.listening) return;
    await new Promise<void>((resolve, reject) => {
      this.#server.once('error', reject);
      this.#server.listen(this.#port, '127.0.0.1', () => {
        this.#server.off('error', reject);
        resolve();
      });
    });
    this.#port = (this.#server.address() as AddressInfo).port;
  }

  /** Close the listener and destroy every open socket. */
  async stop(): Promise<void> {
    if (!this.#server.listening) return;
    const closed = new Promise<void>((resolve) => this.#server.close(() => resolve()));
    for (const socket of this.#sockets) socket.destroy();
    await closed;
  }

  /** Answer the next `times` matching requests with an error Status (see {@link answerCannedError}). */
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

  /**
   * Answer `req` with the first canned error that applies to it, counting that one down; false
   * when none does. A discovery request takes only `discovery` errors, whatever their `watch`.
   */
  answerCannedError(req: FakeRequest, discovery = false): boolean {
    const canned = this.#cannedErrors.find(
      (c) => c.discovery === discovery && (discovery || c.watch === undefined || c.watch === req.watch),
    );
    if (!canned) return false;
    if (--canned.remaining <= 0) this.#cannedErrors.splice(this.#cannedErrors.indexOf(canned), 1);
    req.reply(canned.status, statusObject(canned.status, canned.message, canned.reason));
    return true;
  }

  #parse(req: http.IncomingMessage, res: http.ServerResponse): FakeRequest {
    const url = new URL(req.url ?? '/', 'http://fake');
    const query: Record<string, string> = {};
    for (const [k, v] of url.searchParams) query[k] = v;
    const watch = query['watch'] === 'true' || query['watch'] === '1';
    const method = req.method ?? 'GET';
    const record: RecordedRequest = { method, path: url.pathname, query, watch, status: 200, headers: req.headers };
    this.requests.push(record);
    const reply: Reply = (code, body) => {
      record.status = code;
      res.writeHead(code, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    return { method, path: url.pathname, query, watch, record, res, reply };
  }
}

// --- store and watches ------------------------------------------------------------

export interface WatchStoreOptions<T> {
  /** First resource version handed out (default 1000). */
  initialResourceVersion?: number;
  /** A copy of `obj` carrying resource version `rv`: what a DELETED event shows. */
  withResourceVersion: (obj: T, rv: number) => T;
  /** The order of lists and of a watch's initial ADDED events (default: insertion order). */
  compare?: (a: T, b: T) => number;
}

/** How one request sees the store: which objects its selectors pick, and their JSON. */
export interface StoreView<T> {
  /** `apiVersion` of the objects, lists and bookmarks served, e.g. `v1`. */
  apiVersion: string;
  /** Object kind, e.g. `Pod`; a list is a `PodList`. */
  kind: string;
  matches: (obj: T) => boolean;
  toObject: (obj: T) => unknown;
}

interface HistoryEntry<T> {
  rv: number;
  before: T | undefined;
  after: T | undefined;
}

interface OpenWatch<T> {
  res: http.ServerResponse;
  view: StoreView<T>;
  bookmarks: boolean;
  timer: NodeJS.Timeout | undefined;
  /** The resourceVersion the watch was opened from, for the 410 Status message. */
  fromParam: string;
}

/**
 * Objects by key, each never mutated once stored, with the resource version counter, the history
 * of changes and the open watches.
 */
export class WatchStore<T> {
  /** How a watch from an expired resource version is refused. */
  goneMode: 'event' | 'http' = 'event';

  readonly #objects = new Map<string, T>();
  readonly #history: HistoryEntry<T>[] = [];
  readonly #watches = new Set<OpenWatch<T>>();
  readonly #withResourceVersion: (obj: T, rv: number) => T;
  readonly #compare: ((a: T, b: T) => number) | undefined;
  #rv: number;
  /** Watches from a resource version older than this answer 410 Gone. */
  #oldestWatchable = 0;

  constructor(opts: WatchStoreOptions<T>) {
    this.#rv = opts.initialResourceVersion ?? 1000;
    this.#withResourceVersion = opts.withResourceVersion;
    this.#compare = opts.compare;
  }

  /** Latest resource version handed out. */
  get resourceVersion(): string {
    return String(this.#rv);
  }

  /** Watch streams currently open. */
  get openWatchCount(): number {
    return this.#watches.size;
  }

  /** Hand out the next resource version, for an object about to be {@link put}. */
  nextResourceVersion(): number {
    return ++this.#rv;
  }

  get(key: string): T | undefined {
    return this.#objects.get(key);
  }

  /** The stored objects, in list order. */
  values(): T[] {
    const values = [...this.#objects.values()];
    return this.#compare ? values.sort(this.#compare) : values;
  }

  /** Store `after` under `key`: ADDED, or MODIFIED over the object there. */
  put(key: string, after: T, opts: MutationOptions = {}): void {
    const before = this.#objects.get(key);
    this.#objects.set(key, after);
    this.changed(before, after, opts);
  }

  /** Remove the object under `key` (DELETED) with a new resource version; false when there is none. */
  remove(key: string, opts: MutationOptions = {}): boolean {
    const before = this.#objects.get(key);
    if (before === undefined) return false;
    this.#objects.delete(key);
    ++this.#rv;
    this.changed(before, undefined, opts);
    return true;
  }

  /** Record a change made at the current resource version and send it to every open watch. */
  changed(before: T | undefined, after: T | undefined, opts: MutationOptions = {}): void {
    if (opts.notify === false) return;
    this.#history.push({ rv: this.#rv, before, after });
    for (const w of this.#watches) this.#deliver(w, before, after, this.#rv);
  }

  /** The list body (`<kind>List`) of the objects `view` selects. */
  list(view: StoreView<T>): object {
    const items = this.values().filter(view.matches).map(view.toObject);
    return { apiVersion: view.apiVersion, kind: `${view.kind}List`, metadata: { resourceVersion: this.resourceVersion }, items };
  }

  /**
   * Serve a watch request: refuse a bad or expired `resourceVersion`, else stream the replay (or,
   * without a version, a synthetic ADDED per selected object) and then live events, until the
   * client goes, `timeoutSeconds` pass, or the fake ends it.
   */
  watch(req: FakeRequest, view: StoreView<T>): void {
    const { query, res, reply } = req;
    const fromParam = query['resourceVersion'] ?? '';
    const from = fromParam === '' || fromParam === '0' ? undefined : Number(fromParam);
    if (from !== undefined && (!Number.isInteger(from) || from < 0)) {
      return reply(400, statusObject(400, `invalid resourceVersion ${JSON.stringify(fromParam)}`, 'BadRequest'));
    }
    const gone = from !== undefined && from < this.#oldestWatchable;
    if (gone && this.goneMode === 'http') return reply(410, goneStatus(fromParam));

    req.record.status = 200;
    res.writeHead(200, { 'content-type': 'application/json', 'transfer-encoding': 'chunked' });
    res.flushHeaders();
    if (gone) {
      writeEvent(res, { type: 'ERROR', object: goneStatus(fromParam) });
      res.end();
      return;
    }

    // Registered synchronously: once a client has the response headers, it sees every later change.
    const w: OpenWatch<T> = { res, view, bookmarks: query['allowWatchBookmarks'] === 'true', timer: undefined, fromParam };
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
      for (const obj of this.values()) if (view.matches(obj)) writeEvent(res, { type: 'ADDED', object: view.toObject(obj) });
    } else {
      for (const h of this.#history) if (h.rv > from) this.#deliver(w, h.before, h.after, h.rv);
    }
  }

  /** Send a BOOKMARK carrying the current resource version to watches that allow bookmarks. */
  bookmark(): void {
    for (const w of this.#watches) {
      if (!w.bookmarks) continue;
      const object = { apiVersion: w.view.apiVersion, kind: w.view.kind, metadata: { resourceVersion: this.resourceVersion } };
      writeEvent(w.res, { type: 'BOOKMARK', object });
    }
  }

  /** Forget the history, so that watches from up to now get 410 Gone; end the open ones (with the ERROR event in goneMode 'event'). */
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

  /** Forget open watches without ending their streams: their sockets are about to be destroyed. */
  dropWatches(): void {
    for (const w of this.#watches) if (w.timer) clearTimeout(w.timer);
    this.#watches.clear();
  }

  /** Send the event one change means to one watch, seen through its selector. */
  #deliver(w: OpenWatch<T>, before: T | undefined, after: T | undefined, rv: number): void {
    const was = before !== undefined && w.view.matches(before);
    const is = after !== undefined && w.view.matches(after);
    if (was && is) writeEvent(w.res, { type: 'MODIFIED', object: w.view.toObject(after) });
    else if (!was && is) writeEvent(w.res, { type: 'ADDED', object: w.view.toObject(after) });
    else if (was && !is) {
      // A deletion (or an object leaving the selector) carries the last state with the change's resource version.
      writeEvent(w.res, { type: 'DELETED', object: w.view.toObject(this.#withResourceVersion(after ?? before, rv)) });
    }
  }

  #endWatch(w: OpenWatch<T>): void {
    if (w.timer) clearTimeout(w.timer);
    this.#watches.delete(w);
    if (!w.res.writableEnded) w.res.end();
  }
}

// --- the two joined -----------------------------------------------------------------

/**
 * A fake API server: a {@link FakeHttpServer} whose requests go to {@link handle}, and a
 * {@link WatchStore}, with the public controls every fake offers. Subclasses add the routes, the
 * mutations and how to start.
 */
export abstract class FakeWatchServer<T> {
  /** Every request, in arrival order, with the status it was answered with. */
  readonly requests: RecordedRequest[];

  protected readonly http: FakeHttpServer;
  protected readonly store: WatchStore<T>;

  protected constructor(storeOpts: WatchStoreOptions<T>, port = 0) {
    this.store = new WatchStore(storeOpts);
    this.http = new FakeHttpServer((req) => this.handle(req), port);
    this.requests = this.http.requests;
  }

  /** Answer one request. */
  protected abstract handle(req: FakeRequest): void;

  /** Start listening; resolves to this server, for a subclass's static `start()`. */
  protected async listen(): Promise<this> {
    await this.http.listen();
    return this;
  }

  /** How a watch from an expired resource version is refused. */
  get goneMode(): 'event' | 'http' {
    return this.store.goneMode;
  }

  set goneMode(mode: 'event' | 'http') {
    this.store.goneMode = mode;
  }

  /** Base URL, e.g. `http://127.0.0.1:41234`. */
  get url(): string {
    return this.http.url;
  }

  /** Latest resource version handed out. */
  get resourceVersion(): string {
    return this.store.resourceVersion;
  }

  /** Watch streams currently open. */
  get openWatchCount(): number {
    return this.store.openWatchCount;
  }

  /** Send a BOOKMARK carrying the current resource version to watches that allow bookmarks. */
  bookmark(): void {
    this.store.bookmark();
  }

  /**
   * Forget the event history: watches from any version up to now answer 410 Gone from now on.
   * Open watches get an `ERROR` 410 event (goneMode 'event') or are just closed (goneMode 'http',
   * so the client's reconnect is the request answered with HTTP 410).
   */
  expire(): void {
    this.store.expire();
  }

  /** End every open watch stream cleanly (as the server does on timeout or restart). Returns how many. */
  closeWatches(): number {
    return this.store.closeWatches();
  }

  /** Stop listening, end open watches and drop every connection. */
  async close(): Promise<void> {
    this.store.closeWatches();
    await this.http.stop();
  }
}

function writeEvent(res: http.ServerResponse, event: WatchEvent): void {
  if (!res.writableEnded && !res.destroyed) res.write(JSON.stringify(event) + '\n');
}

// --- Status bodies and selectors ----------------------------------------------------

/** A `Status` failure body. */
export function statusObject(code: number, message: string, reason: string, details?: object): object {
  return { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason, ...(details ? { details } : {}), code };
}

/** The 404 for a path nothing is served at. */
export function notFoundStatus(pathname: string): object {
  return statusObject(404, `the server could not find the requested resource (${pathname})`, 'NotFound');
}

function goneStatus(rv: string): object {
  return statusObject(410, `too old resource version: ${rv}`, 'Expired');
}

/** The usual Status `reason` for an HTTP status code. */
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

/** A selector's comma-separated terms, each parsed by `parseTerm`, as one predicate that all must hold. */
export function parseSelector<T>(selector: string, parseTerm: (term: string) => (obj: T) => boolean): (obj: T) => boolean {
  const terms = selector
    .split(',')
    .map((t) => t.trim())
    .filter((t) => t !== '')
    .map(parseTerm);
  return (obj) => terms.every((t) => t(obj));
}

/** `key=value`, `key==value` or `key!=value`: key, operator and value, or undefined for another form. */
export function equalityTerm(term: string): { key: string; op: '=' | '==' | '!='; value: string } | undefined {
  const m = /^([^!=]+)(!=|==|=)(.*)$/.exec(term);
  if (!m) return undefined;
  const [, key, op, value] = m as unknown as [string, string, '=' | '==' | '!=', string];
  return { key, op, value };
}

/**
 * Parse a field selector (`f=v`, `f==v`, `f!=v`, comma-joined) over the fields `fields` can read.
 * Throws with the Status message (for a 400) on a bad term or a field that cannot be selected.
 */
export function parseFieldSelector<T>(selector: string, fields: Readonly<Record<string, (obj: T) => string>>): (obj: T) => boolean {
  return parseSelector(selector, (t) => {
    const term = equalityTerm(t);
    if (!term) throw new Error(`invalid field selector term ${JSON.stringify(t)}`);
    const field = term.key.trim();
    const read = Object.hasOwn(fields, field) ? fields[field] : undefined;
    if (!read) throw new Error(`field label not supported: ${field}`);
    return (obj) => (read(obj) === term.value) === (term.op !== '!=');
  });
}
