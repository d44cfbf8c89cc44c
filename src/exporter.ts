import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import { NO_ATTRIBUTION, type SampleAttribution } from './attribution/attribution.js';
import { Attributor, type PodMetadataLookup, type ProcessOwners } from './attribution/attributor.js';
import { EMPTY_DEVICE_MAP, type DeviceMap } from './attribution/device-map.js';
import { DeviceMapSource } from './attribution/kubelet/device-map-source.js';
import { ProcessOwnerResolver } from './attribution/process-owner.js';
import type { Config } from './config/flags.js';
import { WebConfigWatcher } from './config/web-config-watcher.js';
import { createListener, type Listener } from './http/listener.js';
import { createRequestHandler, RequestGuard, type ServedState } from './http/server.js';
import { buildExporterFamilies } from './metrics/exporter-series.js';
import { buildGpuFamilies, deviceLabelPairs } from './metrics/gpu-series.js';
import { buildPodFamilies } from './metrics/pod-series.js';
import { buildHealthFamilies } from './metrics/health-series.js';
import { EventTally } from './events/event-tally.js';
import { EventWatcher } from './events/event-watcher.js';
import type { FromEventWorker, GpuEvent } from './events/protocol.js';
import { xidMessage } from './events/xid.js';
import { SeenGpus } from './health/seen-gpus.js';
import { EventType } from './native/nvml-constants.js';
import { ScrapeCache } from './metrics/scrape-cache.js';
import type { NodeSample } from './sample.js';
import { Sampler } from './sampler/sampler.js';
import { VERSION } from './version.js';

export interface ExporterOptions {
  config: Config;
  logger: Logger;
  /** Who runs a host pid; built from --path.procfs and --path.pod-logs when left out. */
  processOwners?: ProcessOwners;
}

/** Longest single NVML event wait: shutdown waits at most this long for the event loop. */
const EVENT_WAIT_MS = 1000;

/** Device ids in the kubelet's map that name no device of this sample, plus ids that are not device ids. */
function unknownDeviceIds(map: DeviceMap, sample: NodeSample | undefined): number {
  const known = new Set<string>();
  for (const g of sample?.gpus ?? []) {
    known.add(g.uuid);
    for (const m of g.mig) known.add(m.uuid);
  }
  let n = map.unparsedIds.length;
  for (const uuid of map.claims.keys()) if (!known.has(uuid)) n++;
  return n;
}

/**
 * Wires the pipeline: sampler (worker + NVML) -> attribution (kubelet device map, process
 * owners, pod metadata) -> families -> rendered cache -> HTTP. A new sample re-renders the
 * cache; scrapes only send cached bytes.
 */
export class Exporter {
  readonly sampler: Sampler;
  readonly cache = new ScrapeCache();
  private listener: Listener | undefined;
  /** The web config in force (TLS, users, headers), when --web.config.file is set. */
  readonly webConfig: WebConfigWatcher | undefined;
  readonly guard: RequestGuard;
  readonly deviceMaps: DeviceMapSource | undefined;
  readonly events: EventWatcher | undefined;
  readonly tally = new EventTally();
  private readonly seen: SeenGpus;
  private readonly lastLoggedXid = new Map<string, number>();
  private readonly attributor: Attributor;
  private podMetadata: (PodMetadataLookup & { readonly synced: boolean; stop(): Promise<void> }) | undefined;

  constructor(private readonly opts: ExporterOptions) {
    const { config, logger } = opts;
    // a bad web config file stops the start here, with the ExporterError naming what is wrong
    this.webConfig = config.webConfigFile ? new WebConfigWatcher(config.webConfigFile, logger) : undefined;
    this.guard = new RequestGuard(config.webMaxRequests);
    if (this.webConfig) {
      this.guard.apply(this.webConfig.current);
      this.webConfig.on('change', (next: WebConfigWatcher['current']) => {
        this.guard.apply(next);
        if (next.tls) this.listener?.applyTls(next.tls);
      });
    }
    this.deviceMaps = config.kubeletSocket
      ? new DeviceMapSource({ socketPath: config.kubeletSocket, refreshMs: config.kubeletRefreshMs, deadlineMs: config.kubeletTimeoutMs, logger })
      : undefined;
    this.seen = new SeenGpus(logger);
    this.events = config.nvmlEvents ? new EventWatcher(logger) : undefined;
    this.events?.on('event', (e) => this.onEvent(e));
    this.attributor = new Attributor({
      deviceMap: () => this.deviceMaps?.map ?? EMPTY_DEVICE_MAP,
      processOwners:
        opts.processOwners ?? (config.collectors.processes ? new ProcessOwnerResolver({ procRoot: config.procfsPath, logRoot: config.podLogsPath }) : undefined),
      ...(config.podMetadata
        ? { podMetadata: { metadataOf: (ns: string, pod: string) => this.podMetadata?.metadataOf(ns, pod), labelName: (k: string) => this.podMetadata?.labelName(k) ?? k } }
        : {}),
    });
    this.sampler = new Sampler({
      intervalMs: config.sampleIntervalMs,
      initRetryMs: config.nvmlRetryMs,
      libraryPath: config.nvmlLibrary,
      driverRoot: config.driverRoot,
      collectors: config.collectors,
      slowIntervalMs: config.healthIntervalMs,
      ...(config.nvmlEvents ? { eventWaitMs: EVENT_WAIT_MS } : {}),
      logger,
    });
    this.sampler.on('sample', (s: NodeSample) => void this.render(s));
    this.sampler.on('events', (msg: FromEventWorker) => this.events?.handle(msg));
  }

  /** Renders a sample (or the empty state before the first one). */
  render(sample: NodeSample | undefined): Promise<void> {
    const { config } = this.opts;
    const attribution: SampleAttribution = sample ? this.attributor.attribute(sample) : NO_ATTRIBUTION;
    if (sample) this.seen.observe(sample);
    const gpuFamilies = sample ? buildGpuFamilies(sample, { scheme: config.naming, hostname: config.nodeName, attribution }) : [];
    const devices = sample ? deviceLabelPairs(sample, config.naming, config.nodeName) : new Map();
    const healthFamilies = sample ? buildHealthFamilies(sample, devices, this.tally, this.seen, attribution, config.naming, config.nodeName) : [];
    const podFamilies = buildPodFamilies(devices, attribution);
    const k = this.deviceMaps;
    const own = buildExporterFamilies(sample, {
      nvmlUp: this.sampler.state === 'ready',
      skippedTicks: this.sampler.skippedTicks,
      version: VERSION,
      naming: config.naming,
      kubelet: k && { ...k.status, pods: k.map.pods, unknownDeviceIds: unknownDeviceIds(k.map, sample) },
      podMetadataSynced: config.podMetadata ? (this.podMetadata?.synced ?? false) : undefined,
      eventWatch: this.events && { up: this.events.up, restarts: this.events.restarts },
      unplacedProcesses: sample && config.collectors.processes ? attribution.unplacedProcesses : undefined,
      webConfig: this.webConfig?.status,
    });
    return this.cache.update([...gpuFamilies, ...healthFamilies, ...podFamilies, ...own]);
  }

  /** Counts an event; logs an Xid once per GPU and code per minute (a storm is one line a minute). */
  private onEvent(e: GpuEvent): void {
    this.tally.record(e);
    if (e.eventType !== Number(EventType.XID_CRITICAL)) {
      this.opts.logger.warn({ uuid: e.uuid, eventType: e.eventType }, 'GPU health event');
      return;
    }
    const key = `${e.uuid}/${e.data}`;
    const last = this.lastLoggedXid.get(key);
    if (last !== undefined && e.atMs - last < 60_000) return;
    this.lastLoggedXid.set(key, e.atMs);
    this.opts.logger.warn({ uuid: e.uuid, xid: e.data, description: xidMessage(e.data), gpuInstanceId: e.gpuInstanceId, computeInstanceId: e.computeInstanceId, total: this.tally.xidTotal(e.uuid) }, 'Xid error');
  }

  servedState(): ServedState {
    return {
      body: (format, gzip) => this.cache.body(format, gzip),
      ready: () => {
        if (this.sampler.state !== 'ready') return { ok: false, reason: this.sampler.unavailableReason ?? 'NVML not initialised yet' };
        if (!this.sampler.latest) return { ok: false, reason: 'no sample taken yet' };
        return { ok: true, reason: '' };
      },
      latestSample: () => this.sampler.latest,
      version: VERSION,
    };
  }

  async start(): Promise<AddressInfo> {
    const { config, logger } = this.opts;
    await this.render(undefined);
    this.deviceMaps?.start();
    if (config.podMetadata) void this.startPodMetadata();
    this.sampler.start();
    this.listener = createListener(createRequestHandler(this.servedState(), this.guard), {
      tls: this.webConfig?.current.tls,
      headerTimeoutMs: config.webReadHeaderTimeoutMs,
      requestTimeoutMs: config.webRequestTimeoutMs,
    });
    const server = this.listener.server;
    this.webConfig?.start();
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ port: config.listenPort, host: config.listenHost || undefined }, () => {
        server.off('error', reject);
        resolve();
      });
    });
    const addr = server.address() as AddressInfo;
    logger.info({ address: addr.address, port: addr.port, naming: config.naming, tls: this.webConfig?.current.tls !== undefined, basicAuth: this.guard.auth.enabled }, 'serving /metrics');
    return addr;
  }

  /**
   * Loads the Kubernetes client only when pod metadata is on (it is large), then keeps
   * trying to start the watch: the exporter serves without the extra labels meanwhile.
   */
  private async startPodMetadata(): Promise<void> {
    const { config, logger } = this.opts;
    const { PodMetadataWatcher, podLabelName } = await import('./attribution/pod-metadata.js');
    const watcher = new PodMetadataWatcher({ nodeName: config.nodeName, labelAllowlist: config.podLabelAllowlist, kubeconfigPath: config.kubeconfig, logger });
    const lookup = { metadataOf: watcher.metadataOf.bind(watcher), labelName: podLabelName, stop: () => watcher.stop(), get synced() { return watcher.synced; } };
    this.podMetadata = lookup;
    let delayMs = 1000;
    let logged = false;
    while (this.podMetadata === lookup) {
      try {
        await watcher.start();
        logger.info({ node: config.nodeName }, 'pod metadata: watching this node\'s pods in the Kubernetes API');
        return;
      } catch (err) {
        if (this.podMetadata !== lookup) return;
        if (!logged) logger.error({ err: (err as Error).message, retryInMs: delayMs }, 'pod metadata unavailable; serving without pod_uid and pod labels, retrying');
        logged = true;
        await new Promise((r) => setTimeout(r, delayMs).unref());
        delayMs = Math.min(delayMs * 2, 60_000);
      }
    }
  }

  /**
   * Stops in order: no new connections (scrapes in flight finish), sampling and event waits end,
   * NVML is shut down on the sampling thread, the kubelet client and pod watch close.
   */
  async stop(): Promise<void> {
    this.webConfig?.stop();
    const podMetadata = this.podMetadata;
    this.podMetadata = undefined;
    const server = this.listener?.server;
    const closed = server?.listening ? new Promise<void>((resolve) => server.close(() => resolve())) : Promise.resolve();
    server?.closeIdleConnections();
    await Promise.all([closed, this.sampler.stop(), this.deviceMaps?.stop(), podMetadata?.stop()]);
  }

  /** Drops every connection, busy or not (when a clean stop ran out of time). */
  dropConnections(): void {
    this.listener?.server.closeAllConnections();
  }
}
