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
 * `@kubernetes/client-node` is imported (by ./kube/kube-config.ts) only in
 * {@link PodMetadataWatcher.start}: that library costs roughly 27 MB of V8 heap (about 40 MB
 * RSS) once loaded, because its generated API client and models are all loaded together.
 * Importing this file alone costs next to nothing.
 *
 * Failure handling:
 * - start() makes one attempt at the initial list and rejects with a message naming the node,
 *   the API server and the reason (connection refused, RBAC 403, timeout...). It may be called
 *   again after a rejection.
 * - After that, list, watch, 410 relist, backoff and the logging of state changes are
 *   ./kube/list-watch.ts's: the last known metadata keeps being served meanwhile.
 */
import type { Logger } from 'pino';
import { connectKube, withSignal, type KubeConnection } from './kube/kube-config.js';
import { describeKubeError, ListWatch, type ListResult } from './kube/list-watch.js';

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

/** Pod fields this module reads, as they appear in both list items and watch events. */
interface PodLike {
  metadata?: {
    name?: string;
    namespace?: string;
    uid?: string;
    labels?: Record<string, string> | null;
  };
}

const RBAC_HINT = 'needs list and watch on pods';
const EMPTY_LABELS: Readonly<Record<string, string>> = Object.freeze({});

export class PodMetadataWatcher {
  readonly #opts: PodMetadataOptions;
  readonly #log: Logger;
  readonly #allow: RegExp | undefined;
  readonly #fieldSelector: string;

  #pods = new Map<string, PodMetadata>();
  /** Connection and list/watch, made by the first start() and reused by the next ones. */
  #kube: { server: string; listWatch: ListWatch } | undefined;
  #starting: Promise<void> | undefined;
  #stopped = false;
  #retryTimer: NodeJS.Timeout | undefined;
  #wake: (() => void) | undefined;

  constructor(opts: PodMetadataOptions) {
    if (!opts.nodeName) throw new Error('pod metadata: nodeName is required');
    this.#opts = opts;
    this.#log = opts.logger.child({ component: 'pod-metadata' });
    // A /g or /y RegExp keeps state between test() calls; use a stateless copy.
    this.#allow = opts.labelAllowlist && new RegExp(opts.labelAllowlist.source, opts.labelAllowlist.flags.replace(/[gy]/g, ''));
    this.#fieldSelector = `spec.nodeName=${opts.nodeName}`;
  }

  /** True while the last list succeeded and the watch is established (or being re-opened after a clean end). */
  get synced(): boolean {
    return !this.#stopped && (this.#kube?.listWatch.synced ?? false);
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

  /** Stop watching; closes the open request and clears every timer. Idempotent. */
  async stop(): Promise<void> {
    if (!this.#stopped) {
      this.#stopped = true;
      clearTimeout(this.#retryTimer);
      this.#wake?.();
      this.#log.debug('pod metadata watch stopped');
    }
    await this.#kube?.listWatch.stop();
  }

  // ---------------------------------------------------------------------------

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
        if (!logged) this.#log.error({ err: describeKubeError(err), retryInMs: delayMs }, 'pod metadata unavailable; serving without pod_uid and pod labels, retrying');
        logged = true;
        await new Promise<void>((resolve) => {
          this.#wake = resolve;
          // Whether the process keeps running is the exporter's business, not this background retry's.
          this.#retryTimer = setTimeout(resolve, delayMs);
          this.#retryTimer.unref();
        });
        this.#wake = undefined;
        delayMs = Math.min(delayMs * 2, maxMs);
      }
    }
  }

  async #start(): Promise<void> {
    const stoppedEarly = (cause?: unknown): Error => new Error('pod metadata: stopped before the initial pod list completed', cause === undefined ? undefined : { cause });
    let kube = this.#kube;
    if (!kube) {
      let conn: KubeConnection;
      try {
        conn = await connectKube({ kubeconfigPath: this.#opts.kubeconfigPath, server: this.#opts.server });
      } catch (err) {
        throw new Error(`pod metadata: cannot configure the Kubernetes client: ${describeKubeError(err)}`, { cause: err });
      }
      if (this.#stopped) throw stoppedEarly();
      kube = this.#kube = { server: conn.server, listWatch: this.#makeListWatch(conn) };
    }
    try {
      await kube.listWatch.start();
    } catch (err) {
      if (this.#stopped) throw stoppedEarly(err);
      throw new Error(`pod metadata: cannot list pods on node "${this.#opts.nodeName}" from ${kube.server}: ${describeKubeError(err, RBAC_HINT)}`, { cause: err });
    }
    this.#log.info({ node: this.#opts.nodeName, server: kube.server, pods: this.#pods.size }, 'pod metadata: initial pod list done, watching for changes');
  }

  #makeListWatch(kube: KubeConnection): ListWatch {
    const api = kube.config.makeApiClient(kube.k8s.CoreV1Api);
    const opts = this.#opts;
    return new ListWatch(
      new kube.k8s.Watch(kube.config),
      {
        what: 'pod metadata',
        list: async (signal): Promise<ListResult> => {
          const list = await api.listPodForAllNamespaces({ fieldSelector: this.#fieldSelector, resourceVersion: '0' }, withSignal(kube.k8s, signal));
          return { items: list.items ?? [], resourceVersion: list.metadata?.resourceVersion ?? '' };
        },
        watchPath: '/api/v1/pods',
        watchQuery: { fieldSelector: this.#fieldSelector },
        onList: (items) => {
          const pods = new Map<string, PodMetadata>();
          for (const item of items) {
            const k = keyOf(item as PodLike);
            if (k) pods.set(k, this.#metadataFrom(item as PodLike, undefined));
          }
          this.#pods = pods;
        },
        onEvent: (type, obj) => {
          const pod = obj as PodLike | null;
          const k = keyOf(pod);
          if (!k) return;
          if (type === 'DELETED') this.#pods.delete(k);
          else this.#pods.set(k, this.#metadataFrom(pod as PodLike, this.#pods.get(k)));
        },
        size: () => this.#pods.size,
      },
      {
        logger: this.#log,
        rbacHint: RBAC_HINT,
        ...(opts.requestTimeoutMs !== undefined ? { requestTimeoutMs: opts.requestTimeoutMs } : {}),
        ...(opts.backoff ? { backoff: opts.backoff } : {}),
        ...(opts.watchTimeoutSeconds !== undefined ? { watchTimeoutSeconds: opts.watchTimeoutSeconds } : {}),
      },
    );
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
