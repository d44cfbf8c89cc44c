/**
 * Watches the ResourceSlices that NVIDIA's DRA driver publishes for this node, so that the
 * devices the kubelet reports as allocated (by driver, pool and device name) can be tied to
 * NVML devices through their `uuid` attributes.
 *
 * - Version: the newest `resource.k8s.io` version the API server serves, from discovery
 *   (v1, else v1beta2, else v1beta1).
 * - Scope: field selectors `spec.nodeName=<node>` and `spec.driver=gpu.nvidia.com`, on the list
 *   and on the watch: each exporter receives its own node's slices only.
 * - List, then watch; 410 Gone relists; errors back off (see ../kube/list-watch.ts). The last
 *   known devices stay in use while the API server is away.
 *
 * `@kubernetes/client-node` is imported only when start() first runs (it costs ~40 MB), so
 * importing this module alone costs next to nothing.
 */
import type { Logger } from 'pino';
import { connectKube, withSignal, type KubeConnection } from '../kube/kube-config.js';
import { describeKubeError, ListWatch, statusCodeOf, type ListResult } from '../kube/list-watch.js';
import { NVIDIA_GPU_DRIVER, parseSlice, SliceInventory, SliceShapeError, type DraDevice, type ParsedSlice } from './slice-inventory.js';

export const RESOURCE_GROUP = 'resource.k8s.io';
/** The versions this exporter reads, newest first. */
export const SLICE_VERSIONS = ['v1', 'v1beta2', 'v1beta1'] as const;
export type SliceVersion = (typeof SLICE_VERSIONS)[number];

export interface DraSliceWatcherOptions {
  nodeName: string;
  logger: Logger;
  /** Kubeconfig file; without it the pod's service account. */
  kubeconfigPath?: string | undefined;
  /** API server URL used as is, without credentials (tests). Overrides kubeconfigPath. */
  server?: string | undefined;
  /** Driver whose slices are watched (default gpu.nvidia.com). */
  driver?: string;
  requestTimeoutMs?: number;
  backoff?: { initialMs?: number; maxMs?: number };
  watchTimeoutSeconds?: number;
}

/** Picks the newest version this exporter reads among those served; undefined when none is. */
export function pickSliceVersion(served: readonly string[]): SliceVersion | undefined {
  return SLICE_VERSIONS.find((v) => served.includes(v));
}

export class DraSliceWatcher {
  readonly inventory = new SliceInventory();
  readonly #opts: DraSliceWatcherOptions;
  readonly #log: Logger;
  readonly #driver: string;
  readonly #fieldSelector: string;
  #listWatch: ListWatch | undefined;
  #version: SliceVersion | undefined;
  #stopped = false;
  #retryTimer: NodeJS.Timeout | undefined;
  #wake: (() => void) | undefined;
  /** Malformed slices already reported, so each is logged once. */
  readonly #reported = new Set<string>();

  constructor(opts: DraSliceWatcherOptions) {
    if (!opts.nodeName) throw new Error('DRA slices: nodeName is required');
    this.#opts = opts;
    this.#log = opts.logger.child({ component: 'dra' });
    this.#driver = opts.driver ?? NVIDIA_GPU_DRIVER;
    this.#fieldSelector = `spec.nodeName=${opts.nodeName},spec.driver=${this.#driver}`;
  }

  /** Whether the slice list and watch are in sync. */
  get synced(): boolean {
    return this.#listWatch?.synced ?? false;
  }

  /** The resource.k8s.io version in use, once discovered. */
  get version(): SliceVersion | undefined {
    return this.#version;
  }

  /** The device a current slice publishes under this name, if any. */
  lookup(driver: string, pool: string, name: string): DraDevice | undefined {
    return this.inventory.lookup(driver, pool, name);
  }

  /**
   * Connects, discovers the version, lists, then watches. Rejects with a message naming the
   * node, the server and the reason; may be called again after a rejection.
   */
  async start(): Promise<void> {
    let kube: KubeConnection;
    try {
      kube = await connectKube({ kubeconfigPath: this.#opts.kubeconfigPath, server: this.#opts.server });
    } catch (err) {
      throw new Error(`DRA slices: cannot configure the Kubernetes client: ${describeKubeError(err)}`, { cause: err });
    }
    const version = await this.#discover(kube);
    const api = this.#api(kube, version);
    const listWatch = new ListWatch(
      new kube.k8s.Watch(kube.config),
      {
        what: 'DRA ResourceSlices',
        list: (signal) => this.#list(kube, api, signal),
        watchPath: `/apis/${RESOURCE_GROUP}/${version}/resourceslices`,
        watchQuery: { fieldSelector: this.#fieldSelector },
        onList: (items) => this.inventory.replace(this.#parseAll(items)),
        onEvent: (type, obj) => {
          if (type === 'DELETED') {
            const name = (obj as { metadata?: { name?: unknown } } | null)?.metadata?.name;
            if (typeof name === 'string') this.inventory.delete(name);
            return;
          }
          const slice = this.#parse(obj);
          if (slice) this.inventory.put(slice);
        },
        size: () => this.inventory.sliceCount,
      },
      {
        logger: this.#log,
        rbacHint: `needs get, list and watch on resourceslices in ${RESOURCE_GROUP}`,
        ...(this.#opts.requestTimeoutMs !== undefined ? { requestTimeoutMs: this.#opts.requestTimeoutMs } : {}),
        ...(this.#opts.backoff ? { backoff: this.#opts.backoff } : {}),
        ...(this.#opts.watchTimeoutSeconds !== undefined ? { watchTimeoutSeconds: this.#opts.watchTimeoutSeconds } : {}),
      },
    );
    // set before the first list, so that a stop() meanwhile aborts it
    this.#listWatch = listWatch;
    try {
      await listWatch.start();
    } catch (err) {
      if (this.#listWatch === listWatch) this.#listWatch = undefined;
      throw new Error(`DRA slices: cannot list ResourceSlices (${version}) of node "${this.#opts.nodeName}" from ${kube.server}: ${describeKubeError(err, `needs list and watch on resourceslices in ${RESOURCE_GROUP}`)}`, {
        cause: err,
      });
    }
    if (this.#stopped) {
      await listWatch.stop();
      return;
    }
    this.#version = version;
    this.#log.info({ node: this.#opts.nodeName, server: kube.server, version: `${RESOURCE_GROUP}/${version}`, slices: this.inventory.sliceCount, devices: this.inventory.devices().length }, "DRA: watching this node's ResourceSlices");
  }

  /**
   * Keeps calling start() until it succeeds or stop(): the exporter serves meanwhile, DRA
   * devices unresolved. The first failure and the success are logged once each.
   */
  startInBackground(retry: { initialMs: number; maxMs: number } = { initialMs: 1000, maxMs: 60_000 }): void {
    void this.#keepStarting(retry);
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#retryTimer);
    this.#wake?.();
    await this.#listWatch?.stop();
  }

  async #keepStarting(retry: { initialMs: number; maxMs: number }): Promise<void> {
    let delayMs = retry.initialMs;
    let logged = false;
    while (!this.#stopped) {
      try {
        await this.start();
        return;
      } catch (err) {
        if (this.#stopped) return;
        if (!logged) this.#log.error({ err: (err as Error).message, retryInMs: delayMs }, 'DRA slices unavailable; devices allocated through DRA carry no pod labels until they are; retrying');
        logged = true;
        await new Promise<void>((resolve) => {
          this.#wake = resolve;
          this.#retryTimer = setTimeout(resolve, delayMs);
          this.#retryTimer.unref();
        });
        delayMs = Math.min(delayMs * 2, retry.maxMs);
      }
    }
  }

  /** The newest served version this exporter reads (`/apis/resource.k8s.io`). */
  async #discover(kube: KubeConnection): Promise<SliceVersion> {
    let served: string[];
    try {
      const group = await kube.config.makeApiClient(kube.k8s.ResourceApi).getAPIGroup();
      served = (group.versions ?? []).map((v) => v.version);
    } catch (err) {
      if (statusCodeOf(err) === 404) throw new Error(`DRA slices: ${kube.server} does not serve the ${RESOURCE_GROUP} API group (Kubernetes 1.32 or later with DRA on is needed)`, { cause: err });
      throw new Error(`DRA slices: cannot read the ${RESOURCE_GROUP} API versions from ${kube.server}: ${describeKubeError(err)}`, { cause: err });
    }
    const version = pickSliceVersion(served);
    if (!version) throw new Error(`DRA slices: ${kube.server} serves ${RESOURCE_GROUP} ${served.join(', ') || '(no versions)'}; this exporter reads ${SLICE_VERSIONS.join(', ')}`);
    return version;
  }

  #api(kube: KubeConnection, version: SliceVersion): SliceLister {
    const k8s = kube.k8s;
    switch (version) {
      case 'v1':
        return kube.config.makeApiClient(k8s.ResourceV1Api);
      case 'v1beta2':
        return kube.config.makeApiClient(k8s.ResourceV1beta2Api);
      case 'v1beta1':
        return kube.config.makeApiClient(k8s.ResourceV1beta1Api);
    }
  }

  async #list(kube: KubeConnection, api: SliceLister, signal: AbortSignal): Promise<ListResult> {
    // resourceVersion 0: served from the API server's watch cache, cheap for a DaemonSet's worth of lists
    const list = await api.listResourceSlice({ fieldSelector: this.#fieldSelector, resourceVersion: '0' }, withSignal(kube.k8s, signal));
    return { items: list.items ?? [], resourceVersion: list.metadata?.resourceVersion ?? '' };
  }

  #parseAll(items: readonly unknown[]): ParsedSlice[] {
    const out: ParsedSlice[] = [];
    for (const item of items) {
      const s = this.#parse(item);
      if (s) out.push(s);
    }
    return out;
  }

  /** A slice of this node and driver, or undefined (malformed ones logged once each). */
  #parse(obj: unknown): ParsedSlice | undefined {
    let slice: ParsedSlice;
    try {
      slice = parseSlice(obj);
    } catch (err) {
      if (!(err instanceof SliceShapeError)) throw err;
      if (!this.#reported.has(err.message)) {
        this.#reported.add(err.message);
        this.#log.warn({ err: err.message }, 'DRA: ignoring a malformed ResourceSlice');
      }
      return undefined;
    }
    // the field selectors already scope the answers; this guards against a server that ignores them
    if (slice.driver !== this.#driver || (slice.nodeName && slice.nodeName !== this.#opts.nodeName)) return undefined;
    return slice;
  }
}

/** What the three generated Resource*Api clients have in common that this module calls. */
interface SliceLister {
  listResourceSlice(
    param: { fieldSelector?: string; resourceVersion?: string },
    options?: import('@kubernetes/client-node').ConfigurationOptions,
  ): Promise<{ items?: readonly unknown[]; metadata?: { resourceVersion?: string } }>;
}
