/**
 * Keeps a local copy of one Kubernetes collection current: list it once, then watch it from
 * the list's resourceVersion, the way client-go's reflector does.
 *
 * - A watch stream that ends is re-opened from the last resourceVersion seen: at once when it
 *   was healthy, else after an exponential backoff (jittered).
 * - "410 Gone" (an expired resourceVersion, as an ERROR event or an HTTP 410) relists, which
 *   replaces the whole copy.
 * - Meanwhile the copy keeps its last known content; the owner decides what to serve.
 * - State changes (in sync -> retrying -> in sync) are logged once each, not per retry.
 *
 * The owner supplies the list call and applies list results and events to its own store.
 */
import type { Logger } from 'pino';
import type * as K8s from '@kubernetes/client-node';

export type WatchEventType = 'ADDED' | 'MODIFIED' | 'DELETED';

export interface ListResult {
  items: readonly unknown[];
  resourceVersion: string;
}

export interface ListWatchSpec {
  /** What is being watched, for log lines ("DRA ResourceSlices"). */
  what: string;
  /** Lists the collection; the signal aborts it (timeout, stop). */
  list(signal: AbortSignal): Promise<ListResult>;
  /** The collection's path, e.g. `/apis/resource.k8s.io/v1/resourceslices`. */
  watchPath: string;
  /** Query parameters of the watch besides resourceVersion and timeouts (e.g. fieldSelector). */
  watchQuery: Record<string, string>;
  /** A list succeeded: replace the copy with these items. */
  onList(items: readonly unknown[]): void;
  /** One change to apply. */
  onEvent(type: WatchEventType, obj: unknown): void;
  /** The size of the copy, for log lines. */
  size(): number;
}

export interface ListWatchOptions {
  logger: Logger;
  /** Timeout of each list request, ms (default 10 000). */
  requestTimeoutMs?: number;
  /** Reconnect backoff: first delay and cap, ms (defaults 500 and 30 000), ±20 % jitter. */
  backoff?: { initialMs?: number; maxMs?: number };
  /**
   * Watch duration asked of the API server (`timeoutSeconds`), randomized between this and
   * twice it like client-go (default 300). A stream silent 30 s past it is aborted as dead.
   */
  watchTimeoutSeconds?: number;
  /** Said after an HTTP 403, e.g. "needs list and watch on resourceslices". */
  rbacHint?: string;
}

/** How one watch request ended. */
interface WatchEnd {
  established: boolean;
  sawEvent: boolean;
  gone: boolean;
  error: unknown;
  durationMs: number;
}

/** A watch that lived at least this long counts as healthy even without events. */
const HEALTHY_WATCH_MS = 10_000;
const WATCHDOG_GRACE_MS = 30_000;

export class ListWatch {
  readonly #spec: ListWatchSpec;
  readonly #opts: ListWatchOptions;
  readonly #watch: K8s.Watch;
  readonly #log: Logger;
  #resourceVersion = '';
  #state: 'idle' | 'synced' | 'retrying' | 'stopped' = 'idle';
  #retryingSince = 0;
  #lastGoneLogAt = -Infinity;
  #loop: Promise<void> | undefined;
  #stopped = false;
  #listAbort: AbortController | undefined;
  #watchAbort: AbortController | undefined;
  #endWatch: ((end: Partial<WatchEnd>) => void) | undefined;
  #sleepTimer: NodeJS.Timeout | undefined;
  #wake: (() => void) | undefined;

  constructor(watch: K8s.Watch, spec: ListWatchSpec, opts: ListWatchOptions) {
    this.#watch = watch;
    this.#spec = spec;
    this.#opts = opts;
    this.#log = opts.logger;
  }

  /** The last list succeeded and the watch is established (or being re-opened after a clean end). */
  get synced(): boolean {
    return this.#state === 'synced';
  }

  /**
   * Lists once (rejecting with the reason when that fails), then keeps watching in the
   * background until stop().
   */
  async start(): Promise<void> {
    await this.#list();
    if (this.#stopped) throw new Error(`${this.#spec.what}: stopped before the first list completed`);
    this.#state = 'synced';
    this.#loop = this.#watchLoop();
  }

  /** Closes the open request and clears every timer. Idempotent. */
  async stop(): Promise<void> {
    if (!this.#stopped) {
      this.#stopped = true;
      this.#state = 'stopped';
      this.#listAbort?.abort();
      this.#watchAbort?.abort();
      this.#endWatch?.({});
      this.#wakeUp();
    }
    await this.#loop;
  }

  /** Sleeps `ms` unless stopped first (for the owner's own retries). */
  sleep(ms: number): Promise<void> {
    if (this.#stopped) return Promise.resolve();
    return new Promise<void>((resolve) => {
      this.#wake = resolve;
      this.#sleepTimer = setTimeout(() => this.#wakeUp(), ms);
      this.#sleepTimer.unref();
    });
  }

  get stopped(): boolean {
    return this.#stopped;
  }

  async #list(): Promise<void> {
    const abort = new AbortController();
    this.#listAbort = abort;
    const timeoutMs = this.#opts.requestTimeoutMs ?? 10_000;
    const timer = setTimeout(() => abort.abort(new Error(`timed out after ${timeoutMs} ms`)), timeoutMs);
    timer.unref();
    try {
      const result = await this.#spec.list(abort.signal);
      this.#spec.onList(result.items);
      this.#resourceVersion = result.resourceVersion;
    } catch (err) {
      // the client reports our abort as a bare AbortError; surface the timeout reason instead
      if (abort.signal.aborted && abort.signal.reason instanceof Error && !this.#stopped) throw abort.signal.reason;
      throw err;
    } finally {
      clearTimeout(timer);
      if (this.#listAbort === abort) this.#listAbort = undefined;
    }
  }

  async #watchLoop(): Promise<void> {
    let failures = 0;
    let needRelist = false;
    let announcedRelist = false;
    while (!this.#stopped) {
      if (needRelist) {
        try {
          await this.#list();
          needRelist = false;
          this.#log[announcedRelist ? 'info' : 'debug']({ items: this.#spec.size() }, `${this.#spec.what}: relisted`);
          announcedRelist = false;
          this.#markSynced();
        } catch (err) {
          if (this.#stopped) break;
          this.#markRetrying(err, 'list');
          await this.sleep(this.#backoff(failures++));
          continue;
        }
      }
      const end = await this.#watchOnce();
      if (this.#stopped) break;
      if (end.gone) {
        needRelist = true;
        const now = Date.now();
        announcedRelist = now - this.#lastGoneLogAt >= 60_000;
        if (announcedRelist) this.#lastGoneLogAt = now;
        this.#log[announcedRelist ? 'info' : 'debug']({ resourceVersion: this.#resourceVersion }, `${this.#spec.what}: resourceVersion expired (410 Gone), relisting`);
      } else if (end.error !== undefined) {
        this.#markRetrying(end.error, 'watch');
      } else {
        this.#log.debug({ durationMs: end.durationMs }, `${this.#spec.what}: watch stream ended, re-opening`);
      }
      if (end.established && (end.sawEvent || end.durationMs >= HEALTHY_WATCH_MS)) {
        failures = 0;
        continue;
      }
      await this.sleep(this.#backoff(failures++));
    }
  }

  #watchOnce(): Promise<WatchEnd> {
    const startedAt = Date.now();
    const timeoutSeconds = Math.round((this.#opts.watchTimeoutSeconds ?? 300) * (1 + Math.random()));
    const result: WatchEnd = { established: false, sawEvent: false, gone: false, error: undefined, durationMs: 0 };
    return new Promise<WatchEnd>((resolve) => {
      let ended = false;
      const finish = (end: Partial<WatchEnd>): void => {
        if (ended) return;
        ended = true;
        clearTimeout(watchdog);
        if (this.#endWatch === finish) this.#endWatch = undefined;
        const abort = this.#watchAbort;
        this.#watchAbort = undefined;
        abort?.abort();
        Object.assign(result, end, { durationMs: Date.now() - startedAt });
        resolve(result);
      };
      this.#endWatch = finish;
      const watchdog = setTimeout(() => finish({ error: new Error(`watch stream silent past its ${timeoutSeconds} s timeout`) }), timeoutSeconds * 1000 + WATCHDOG_GRACE_MS);
      watchdog.unref();
      const onEvent = (type: string, obj: unknown): void => {
        if (ended) return;
        if (type === 'ERROR') {
          // an ERROR does not make a stream healthy (a server answering only errors is not retried at once)
          const code = (obj as { code?: unknown } | null)?.code;
          finish(code === 410 ? { gone: true } : { error: new Error(`watch ERROR event: ${statusMessage(obj)}`) });
          return;
        }
        result.sawEvent = true;
        if (type === 'ADDED' || type === 'MODIFIED' || type === 'DELETED') {
          try {
            this.#spec.onEvent(type, obj);
          } catch (err) {
            this.#log.debug({ err: describeKubeError(err), type }, `${this.#spec.what}: ignoring a malformed watch event`);
          }
        }
        const rv = (obj as { metadata?: { resourceVersion?: unknown } } | null)?.metadata?.resourceVersion;
        if (typeof rv === 'string' && rv && (type === 'ADDED' || type === 'MODIFIED' || type === 'DELETED' || type === 'BOOKMARK')) this.#resourceVersion = rv;
      };
      const onDone = (err: unknown): void => {
        if (err !== null && err !== undefined && statusCodeOf(err) === 410) finish({ gone: true });
        else finish({ error: err === null || err === undefined ? undefined : err });
      };
      this.#watch
        .watch(
          this.#spec.watchPath,
          { ...this.#spec.watchQuery, resourceVersion: this.#resourceVersion || undefined, allowWatchBookmarks: true, timeoutSeconds },
          onEvent,
          onDone,
        )
        .then(
          (abort) => {
            if (ended) {
              abort.abort();
              return;
            }
            this.#watchAbort = abort;
            result.established = true;
            this.#markSynced();
          },
          (err: unknown) => finish({ error: err }),
        );
    });
  }

  #markSynced(): void {
    if (this.#stopped || this.#state === 'synced') return;
    const wasRetrying = this.#state === 'retrying';
    this.#state = 'synced';
    if (wasRetrying) this.#log.info({ downMs: Date.now() - this.#retryingSince, items: this.#spec.size() }, `${this.#spec.what}: watch re-established`);
  }

  #markRetrying(err: unknown, what: 'list' | 'watch'): void {
    if (this.#stopped) return;
    const reason = describeKubeError(err, this.#opts.rbacHint);
    if (this.#state === 'retrying') {
      this.#log.debug({ err: reason }, `${this.#spec.what}: ${what} failed again`);
      return;
    }
    this.#state = 'retrying';
    this.#retryingSince = Date.now();
    this.#log.warn({ err: reason, items: this.#spec.size() }, `${this.#spec.what}: ${what} failed; retrying with backoff and keeping the last known state meanwhile`);
  }

  #backoff(failures: number): number {
    const initial = Math.max(1, this.#opts.backoff?.initialMs ?? 500);
    const max = Math.max(initial, this.#opts.backoff?.maxMs ?? 30_000);
    return Math.round(Math.min(max, initial * 2 ** Math.min(failures, 30)) * (0.8 + 0.4 * Math.random()));
  }

  #wakeUp(): void {
    clearTimeout(this.#sleepTimer);
    this.#sleepTimer = undefined;
    const wake = this.#wake;
    this.#wake = undefined;
    wake?.();
  }
}

/** The HTTP status of an error from the Kubernetes client, when it has one. */
export function statusCodeOf(err: unknown): number | undefined {
  if (typeof err !== 'object' || err === null) return undefined;
  const e = err as { statusCode?: unknown; code?: unknown };
  if (typeof e.statusCode === 'number') return e.statusCode;
  if (typeof e.code === 'number') return e.code;
  return undefined;
}

function statusMessage(status: unknown): string {
  const s = status as { code?: unknown; reason?: unknown; message?: unknown } | null;
  const parts = [s?.code, s?.reason, s?.message].filter((p) => p !== undefined && p !== '');
  return parts.length > 0 ? parts.join(' ') : JSON.stringify(status);
}

/** One line for logs and errors, without the response headers the generated client puts in its message. */
export function describeKubeError(err: unknown, rbacHint?: string): string {
  if (typeof err !== 'object' || err === null) return String(err);
  const e = err as { code?: unknown; body?: unknown; message?: unknown };
  if (typeof e.code === 'number' && typeof e.message === 'string' && e.message.startsWith('HTTP-Code:')) {
    const body = typeof e.body === 'string' ? safeJson(e.body) : e.body;
    const msg = (body as { message?: unknown } | undefined)?.message;
    const hint = e.code === 401 ? ' (credentials rejected)' : e.code === 403 && rbacHint ? ` (RBAC: ${rbacHint})` : '';
    return `HTTP ${e.code}${hint}${typeof msg === 'string' && msg ? `: ${msg}` : ''}`;
  }
  if (typeof e.message === 'string' && e.message) return e.message;
  return String(err);
}

function safeJson(s: string): unknown {
  try {
    return JSON.parse(s);
  } catch {
    return undefined;
  }
}
