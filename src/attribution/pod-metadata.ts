/**
 * Optional pod metadata source: the UID and an allowlist of labels of the pods on this node,
 * read from the Kubernetes API and kept current with a watch (one list, then a long-lived
 * watch; never a list per sample).
 *
 * Both the list and the watch use the field selector `spec.nodeName=<node>`, so each exporter
 * only ever receives its own node's pods. The list is served from the API server's watch cache
 * (`resourceVersion=0`), which keeps a DaemonSet's worth of lists cheap for the API server.
 *
 * Loading: this module is meant to be `await import()`ed only when the feature is enabled, and
 * it imports `@kubernetes/client-node` itself only in {@link PodMetadataWatcher.start}: that
 * library costs roughly 27 MB of V8 heap (about 40 MB RSS) once loaded, because its generated
 * API client and models are all loaded together. Importing this file alone costs next to nothing.
 *
 * Failure handling:
 * - start() makes one attempt at the initial list and rejects with a message naming the node,
 *   the API server and the reason (connection refused, RBAC 403, timeout...). It may be called
 *   again after a rejection.
 * - After that, a watch stream that ends is re-opened from the last seen resourceVersion: at
 *   once when it had been healthy, otherwise with exponential backoff (500 ms doubling to 30 s,
 *   jittered). A "410 Gone" (expired resourceVersion, as an ERROR event or an HTTP 410) triggers
 *   a relist that replaces the whole map. Meanwhile the last known metadata keeps being served.
 * - State changes (synced -> retrying -> synced again, relists) are logged once each, not per
 *   event or per retry.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Logger } from 'pino';
import type * as K8s from '@kubernetes/client-node';

export interface PodMetadata {
  uid: string;
  labels: Readonly<Record<string, string>>;
}

export interface PodMetadataOptions {
  /** Only pods with spec.nodeName=<nodeName> are listed and watched. */
  nodeName: string;
  /** Pod label keys to keep (tested against the key); none are kept when undefined. */
  labelAllowlist?: RegExp;
  /** Kubeconfig file. Without it: in-cluster service account config, else the default kubeconfig. */
  kubeconfigPath?: string;
  /** API server URL used as is, without credentials (tests, `kubectl proxy`). Overrides kubeconfigPath. */
  server?: string;
  logger: Logger;
  /** Timeout of each list request, ms (default 10 000). */
  requestTimeoutMs?: number;
  /** Reconnect backoff: first delay and cap, ms (defaults 500 and 30 000). Delays get ±20 % jitter. */
  backoff?: { initialMs?: number; maxMs?: number };
  /**
   * Watch duration the API server is asked for (`timeoutSeconds`), randomized per watch between
   * this value and twice it, like client-go (default 300, so 5-10 min). The watch is then simply
   * re-opened. A stream still open 30 s past its deadline is treated as dead and aborted.
   */
  watchTimeoutSeconds?: number;
}

/** Pod label key -> Prometheus label name, kube-state-metrics style: `label_` + key with every char outside [a-zA-Z0-9_] replaced by `_`. */
export function podLabelName(key: string): string {
  return 'label_' + key.replace(/[^a-zA-Z0-9_]/gu, '_');
}

type K8sModule = typeof import('@kubernetes/client-node');

interface Client {
  k8s: K8sModule;
  api: K8s.CoreV1Api;
  watch: K8s.Watch;
  server: string;
}

/** Pod fields this module reads, as they appear in both list items and watch events. */
interface PodLike {
  metadata?: {
    name?: string;
    namespace?: string;
    uid?: string;
    resourceVersion?: string;
    labels?: Record<string, string> | null;
  };
}

/** How one watch request ended. */
interface WatchEnd {
  /** The server answered 200 and the stream was open. */
  established: boolean;
  /** At least one event arrived. */
  sawEvent: boolean;
  /** 410 Gone (HTTP status or ERROR event): a relist is needed. */
  gone: boolean;
  /** Undefined when the stream ended cleanly. */
  error: unknown;
  durationMs: number;
}

type State = 'idle' | 'synced' | 'retrying' | 'stopped';

const SERVICE_ACCOUNT_TOKEN = '/var/run/secrets/kubernetes.io/serviceaccount/token';
const PODS_PATH = '/api/v1/pods';
const EMPTY_LABELS: Readonly<Record<string, string>> = Object.freeze({});
/** A watch that lived at least this long counts as healthy even without events. */
const HEALTHY_WATCH_MS = 10_000;
const WATCHDOG_GRACE_MS = 30_000;

export class PodMetadataWatcher {
  readonly #opts: PodMetadataOptions;
  readonly #log: Logger;
  readonly #allow: RegExp | undefined;
  readonly #fieldSelector: string;
  readonly #backoffInitialMs: number;
  readonly #backoffMaxMs: number;

  #pods = new Map<string, PodMetadata>();
  #resourceVersion = '';
  #state: State = 'idle';
  #client: Client | undefined;
  #starting: Promise<void> | undefined;
  #loop: Promise<void> | undefined;
  #retryingSince = 0;
  #lastGoneLogAt = -Infinity;

  // Everything stop() must cancel.
  #stopped = false;
  #listAbort: AbortController | undefined;
  #watchAbort: AbortController | undefined;
  #endWatch: ((end: Partial<WatchEnd>) => void) | undefined;
  #sleepTimer: NodeJS.Timeout | undefined;
  #wake: (() => void) | undefined;

  constructor(opts: PodMetadataOptions) {
    if (!opts.nodeName) throw new Error('pod metadata: nodeName is required');
    this.#opts = opts;
    this.#log = opts.logger.child({ component: 'pod-metadata' });
    // A /g or /y RegExp keeps state between test() calls; use a stateless copy.
    this.#allow = opts.labelAllowlist && new RegExp(opts.labelAllowlist.source, opts.labelAllowlist.flags.replace(/[gy]/g, ''));
    this.#fieldSelector = `spec.nodeName=${opts.nodeName}`;
    this.#backoffInitialMs = Math.max(1, opts.backoff?.initialMs ?? 500);
    this.#backoffMaxMs = Math.max(this.#backoffInitialMs, opts.backoff?.maxMs ?? 30_000);
  }

  /** True while the last list succeeded and the watch is established (or being re-opened after a clean end). */
  get synced(): boolean {
    return this.#state === 'synced';
  }

  /** Number of pods currently known. */
  get size(): number {
    return this.#pods.size;
  }

  /** Metadata of a pod on this node, or undefined when unknown. Never throws. */
  metadataOf(namespace: string, pod: string): PodMetadata | undefined {
    try {
      return this.#pods.get(podKey(namespace, pod));
    } catch {
      return undefined;
    }
  }

  /**
   * Load the client configuration, list the node's pods once, then keep watching in the background.
   * Resolves after that first list; rejects (with the reason in the message) when it fails, leaving
   * nothing running. Calling it again while starting or started returns the same promise; after a
   * rejection it tries again.
   */
  start(): Promise<void> {
    if (this.#stopped) return Promise.reject(new Error('pod metadata: start() after stop()'));
    this.#starting ??= this.#start().catch((err: unknown) => {
      this.#starting = undefined;
      throw err;
    });
    return this.#starting;
  }

  /**
   * Keeps calling start() in the background until it succeeds or stop() is called, the wait
   * doubling from `initialMs` to `maxMs`: the exporter serves without pod_uid and pod labels
   * meanwhile. The first failure and the success are logged once each. Never rejects.
   */
  startInBackground(retry: { initialMs: number; maxMs: number } = { initialMs: 1000, maxMs: 60_000 }): void {
    void this.#keepStarting(retry.initialMs, retry.maxMs);
  }

  async #keepStarting(initialMs: number, maxMs: number): Promise<void> {
    let delayMs = initialMs;
    let logged = false;
    while (!this.#stopped) {
      try {
        await this.start();
        this.#log.info({ node: this.#opts.nodeName }, "pod metadata: watching this node's pods in the Kubernetes API");
        return;
      } catch (err) {
        if (this.#stopped) return;
        if (!logged) this.#log.error({ err: describeError(err), retryInMs: delayMs }, 'pod metadata unavailable; serving without pod_uid and pod labels, retrying');
        logged = true;
        await this.#sleep(delayMs);
        delayMs = Math.min(delayMs * 2, maxMs);
      }
    }
  }

  /** Stop watching; closes the open request and clears every timer. Idempotent. */
  async stop(): Promise<void> {
    if (!this.#stopped) {
      this.#stopped = true;
      this.#state = 'stopped';
      this.#listAbort?.abort();
      this.#watchAbort?.abort();
      this.#endWatch?.({});
      this.#wakeUp();
      this.#log.debug('pod metadata watch stopped');
    }
    await this.#loop;
  }

  // ---------------------------------------------------------------------------

  async #start(): Promise<void> {
    let client: Client;
    try {
      client = this.#client ??= await this.#createClient();
    } catch (err) {
      throw new Error(`pod metadata: cannot configure the Kubernetes client: ${describeError(err)}`, { cause: err });
    }
    if (this.#stopped) throw new Error('pod metadata: stopped before the initial pod list completed');
    try {
      await this.#list(client);
    } catch (err) {
      if (this.#stopped) throw new Error('pod metadata: stopped before the initial pod list completed', { cause: err });
      throw new Error(
        `pod metadata: cannot list pods on node "${this.#opts.nodeName}" from ${client.server}: ${describeError(err)}`,
        { cause: err },
      );
    }
    if (this.#stopped) throw new Error('pod metadata: stopped before the initial pod list completed');
    this.#state = 'synced';
    this.#log.info(
      { node: this.#opts.nodeName, server: client.server, pods: this.#pods.size },
      'pod metadata: initial pod list done, watching for changes',
    );
    this.#loop = this.#watchLoop(client);
  }

  async #createClient(): Promise<Client> {
    const k8s = await import('@kubernetes/client-node');
    const kc = new k8s.KubeConfig();
    const { server, kubeconfigPath } = this.#opts;
    if (server !== undefined) {
      const plainHttp = new URL(server).protocol === 'http:';
      kc.loadFromOptions({
        clusters: [{ name: 'direct', server: server.replace(/\/+$/, ''), skipTLSVerify: plainHttp }],
        users: [{ name: 'anonymous' }],
        contexts: [{ name: 'direct', cluster: 'direct', user: 'anonymous' }],
        currentContext: 'direct',
      });
    } else if (kubeconfigPath !== undefined) {
      kc.loadFromFile(kubeconfigPath);
    } else if (process.env['KUBERNETES_SERVICE_HOST'] && fs.existsSync(SERVICE_ACCOUNT_TOKEN)) {
      kc.loadFromCluster();
    } else if (process.env['KUBECONFIG'] || fs.existsSync(path.join(os.homedir(), '.kube', 'config'))) {
      kc.loadFromDefault();
    } else {
      throw new Error(
        'not running in a pod (no KUBERNETES_SERVICE_HOST or service account token) and no kubeconfig (KUBECONFIG, ~/.kube/config)',
      );
    }
    const cluster = kc.getCurrentCluster();
    if (!cluster) throw new Error(`no current cluster in the kubeconfig (context "${kc.getCurrentContext()}")`);
    return { k8s, api: kc.makeApiClient(k8s.CoreV1Api), watch: new k8s.Watch(kc), server: cluster.server };
  }

  /** List the node's pods and replace the map; records the list's resourceVersion. */
  async #list(client: Client): Promise<void> {
    const abort = new AbortController();
    this.#listAbort = abort;
    const timeoutMs = this.#opts.requestTimeoutMs ?? 10_000;
    const timer = setTimeout(() => abort.abort(new Error(`timed out after ${timeoutMs} ms`)), timeoutMs);
    timer.unref();
    const withSignal: K8s.ObservableMiddleware = {
      pre: (ctx) => {
        ctx.setSignal(abort.signal);
        return new client.k8s.Observable(Promise.resolve(ctx));
      },
      post: (res) => new client.k8s.Observable(Promise.resolve(res)),
    };
    try {
      const list = await client.api.listPodForAllNamespaces(
        { fieldSelector: this.#fieldSelector, resourceVersion: '0' },
        { middleware: [withSignal], middlewareMergeStrategy: 'append' },
      );
      const pods = new Map<string, PodMetadata>();
      for (const item of list.items ?? []) {
        const k = keyOf(item);
        if (k) pods.set(k, this.#metadataFrom(item, undefined));
      }
      this.#pods = pods;
      this.#resourceVersion = list.metadata?.resourceVersion ?? '';
    } catch (err) {
      // node-fetch reports our abort as a bare AbortError; surface the timeout reason instead.
      if (abort.signal.aborted && abort.signal.reason instanceof Error && !this.#stopped) throw abort.signal.reason;
      throw err;
    } finally {
      clearTimeout(timer);
      if (this.#listAbort === abort) this.#listAbort = undefined;
    }
  }

  async #watchLoop(client: Client): Promise<void> {
    let failures = 0;
    let needRelist = false;
    let announcedRelist = false;
    while (!this.#stopped) {
      if (needRelist) {
        try {
          await this.#list(client);
          needRelist = false;
          this.#log[announcedRelist ? 'info' : 'debug']({ pods: this.#pods.size }, 'pod metadata: relisted pods');
          announcedRelist = false;
          this.#markSynced();
        } catch (err) {
          if (this.#stopped) break;
          this.#markRetrying(err, 'list');
          await this.#sleep(this.#backoff(failures++));
          continue;
        }
      }

      const end = await this.#watchOnce(client);
      if (this.#stopped) break;

      if (end.gone) {
        needRelist = true;
        // Rare in a healthy cluster: info, but at most once a minute should it keep happening.
        const now = Date.now();
        const level = now - this.#lastGoneLogAt >= 60_000 ? 'info' : 'debug';
        announcedRelist = level === 'info';
        if (announcedRelist) this.#lastGoneLogAt = now;
        this.#log[level]({ resourceVersion: this.#resourceVersion }, 'pod metadata: resourceVersion expired (410 Gone), relisting');
      } else if (end.error !== undefined) {
        this.#markRetrying(end.error, 'watch');
      } else {
        this.#log.debug({ durationMs: end.durationMs }, 'pod metadata: watch stream ended, re-opening');
      }

      const healthy = end.established && (end.sawEvent || end.durationMs >= HEALTHY_WATCH_MS);
      if (healthy) {
        failures = 0;
        // A healthy stream that ended (server timeout, apiserver rollout): re-open at once; relist at once.
        continue;
      }
      await this.#sleep(this.#backoff(failures++));
    }
  }

  /** One watch request, from the current resourceVersion; resolves when the stream ends (or stop()). */
  #watchOnce(client: Client): Promise<WatchEnd> {
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
      const watchdog = setTimeout(
        () => finish({ error: new Error(`watch stream silent past its ${timeoutSeconds} s timeout`) }),
        timeoutSeconds * 1000 + WATCHDOG_GRACE_MS,
      );
      watchdog.unref();

      const onEvent = (type: string, obj: unknown): void => {
        if (ended) return;
        // ERROR events do not make a stream healthy (else a server answering only errors would be retried at once).
        if (type !== 'ERROR') result.sawEvent = true;
        try {
          this.#apply(type, obj);
        } catch (err) {
          this.#log.debug({ err, type }, 'pod metadata: ignoring malformed watch event');
        }
        if (type === 'ERROR') {
          const code = (obj as { code?: unknown } | null)?.code;
          if (code === 410) finish({ gone: true });
          else finish({ error: new Error(`watch ERROR event: ${statusMessage(obj)}`) });
        }
      };
      const onDone = (err: unknown): void => {
        if (err !== null && err !== undefined && statusCodeOf(err) === 410) finish({ gone: true });
        else finish({ error: err === null || err === undefined ? undefined : err });
      };

      client.watch
        .watch(
          PODS_PATH,
          {
            fieldSelector: this.#fieldSelector,
            resourceVersion: this.#resourceVersion || undefined,
            allowWatchBookmarks: true,
            timeoutSeconds,
          },
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

  #apply(type: string, obj: unknown): void {
    const pod = obj as PodLike | null;
    const rv = pod?.metadata?.resourceVersion;
    switch (type) {
      case 'ADDED':
      case 'MODIFIED': {
        const k = keyOf(pod);
        if (k) this.#pods.set(k, this.#metadataFrom(pod as PodLike, this.#pods.get(k)));
        break;
      }
      case 'DELETED': {
        const k = keyOf(pod);
        if (k) this.#pods.delete(k);
        break;
      }
      case 'BOOKMARK':
        break;
      default:
        return; // ERROR (handled by the caller) or unknown: no resourceVersion to take.
    }
    if (rv) this.#resourceVersion = rv;
  }

  /** Compact form of a pod; reuses `previous` when nothing we keep has changed. */
  #metadataFrom(pod: PodLike, previous: PodMetadata | undefined): PodMetadata {
    const uid = pod.metadata?.uid ?? '';
    let labels: Readonly<Record<string, string>> = EMPTY_LABELS;
    const all = pod.metadata?.labels;
    if (this.#allow && all) {
      const kept: Record<string, string> = {};
      let n = 0;
      for (const [k, v] of Object.entries(all)) {
        if (typeof v === 'string' && this.#allow.test(k)) {
          kept[k] = v;
          n++;
        }
      }
      if (n > 0) labels = Object.freeze(kept);
    }
    if (previous && previous.uid === uid && sameLabels(previous.labels, labels)) return previous;
    return Object.freeze({ uid, labels });
  }

  #markSynced(): void {
    if (this.#stopped || this.#state === 'synced') return;
    const wasRetrying = this.#state === 'retrying';
    this.#state = 'synced';
    if (wasRetrying) {
      this.#log.info({ downMs: Date.now() - this.#retryingSince, pods: this.#pods.size }, 'pod metadata: watch re-established');
    }
  }

  #markRetrying(err: unknown, what: 'list' | 'watch'): void {
    if (this.#stopped) return;
    if (this.#state === 'retrying') {
      this.#log.debug({ err: describeError(err) }, `pod metadata: ${what} failed again`);
      return;
    }
    this.#state = 'retrying';
    this.#retryingSince = Date.now();
    this.#log.warn(
      { err: describeError(err), pods: this.#pods.size },
      `pod metadata: ${what} failed; retrying with backoff and serving the last known pod metadata meanwhile`,
    );
  }

  #backoff(failures: number): number {
    const base = Math.min(this.#backoffMaxMs, this.#backoffInitialMs * 2 ** Math.min(failures, 30));
    return Math.round(base * (0.8 + 0.4 * Math.random()));
  }

  #sleep(ms: number): Promise<void> {
    if (this.#stopped) return Promise.resolve();
    return new Promise<void>((resolve) => {
      this.#wake = resolve;
      this.#sleepTimer = setTimeout(() => this.#wakeUp(), ms);
      // Whether the process keeps running is the exporter's business, not this background retry's.
      this.#sleepTimer.unref();
    });
  }

  #wakeUp(): void {
    clearTimeout(this.#sleepTimer);
    this.#sleepTimer = undefined;
    const wake = this.#wake;
    this.#wake = undefined;
    wake?.();
  }
}

// -----------------------------------------------------------------------------

function podKey(namespace: string, name: string): string {
  return `${namespace}/${name}`;
}

function keyOf(pod: PodLike | null | undefined): string | undefined {
  const ns = pod?.metadata?.namespace;
  const name = pod?.metadata?.name;
  return typeof ns === 'string' && typeof name === 'string' ? podKey(ns, name) : undefined;
}

function sameLabels(a: Readonly<Record<string, string>>, b: Readonly<Record<string, string>>): boolean {
  if (a === b) return true;
  const ak = Object.keys(a);
  if (ak.length !== Object.keys(b).length) return false;
  return ak.every((k) => a[k] === b[k]);
}

function statusCodeOf(err: unknown): number | undefined {
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

/** One line for logs and error messages, without the response headers ApiException puts in its message. */
function describeError(err: unknown): string {
  if (typeof err !== 'object' || err === null) return String(err);
  const e = err as { code?: unknown; body?: unknown; message?: unknown; name?: unknown };
  // ApiException from the generated client: numeric code + (often) a Status body.
  if (typeof e.code === 'number' && typeof e.message === 'string' && e.message.startsWith('HTTP-Code:')) {
    const body = typeof e.body === 'string' ? safeJson(e.body) : e.body;
    const msg = (body as { message?: unknown } | undefined)?.message;
    const hint = e.code === 401 ? ' (credentials rejected)' : e.code === 403 ? ' (RBAC: needs list and watch on pods)' : '';
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
