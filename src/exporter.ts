import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import { NO_ATTRIBUTION, type SampleAttribution } from './attribution/attribution.js';
import { Attributor, type ProcessOwners } from './attribution/attributor.js';
import { EMPTY_DEVICE_MAP } from './attribution/device-map.js';
import { DraSliceWatcher } from './attribution/dra/slice-watcher.js';
import { DeviceMapSource } from './attribution/kubelet/device-map-source.js';
import { PodMetadataWatcher, podLabelName } from './attribution/pod-metadata.js';
import { ProcessOwnerResolver } from './attribution/process-owner.js';
import type { Config } from './config/flags.js';
import { WebConfigWatcher } from './config/web-config-watcher.js';
import { EventWatcher } from './events/event-watcher.js';
import type { FromEventWorker } from './events/protocol.js';
import { SeenGpus } from './health/seen-gpus.js';
import { createListener, type Listener } from './http/listener.js';
import { readiness } from './http/readiness.js';
import { createRequestHandler, RequestGuard, type ServedState } from './http/server.js';
import { familyBuilders } from './metrics/builders.js';
import { familySelection, implementedDcgmFields } from './metrics/family-selection.js';
import { NO_EVENTS, renderContext, type ExporterStatus, type RenderContext } from './metrics/render-context.js';
import { ATTRIBUTION_STEP, RenderStage, type FamilyBuilder } from './metrics/render-stage.js';
import { ScrapeCache } from './metrics/scrape-cache.js';
import type { NodeSample } from './sample.js';
import { Sampler } from './sampler/sampler.js';
import { VERSION } from './version.js';
import { NodeViews } from './view/node-view.js';

export interface ExporterOptions {
  config: Config;
  logger: Logger;
  /** Who runs a host pid; built from --path.procfs and --path.pod-logs when left out. */
  processOwners?: ProcessOwners;
  /** The render stage's family builders; the registered list (src/metrics/builders.ts) when left out. */
  familyBuilders?: readonly FamilyBuilder[];
}

/**
 * Which families are exported (--metrics.include, --metrics.exclude, --dcgm.counters); the fields
 * of a counters file the exporter does not have are logged once, by name.
 */
function seriesBudget(config: Config, logger: Logger): ((name: string) => boolean) | undefined {
  const counters = config.dcgmCounters;
  if (counters) {
    const implemented = implementedDcgmFields();
    const missing = counters.fields.filter((f) => !implemented.has(f));
    if (missing.length) logger.warn({ file: counters.file, fields: missing }, `--dcgm.counters: ${missing.length} of ${counters.fields.length} fields are not exported by kube-gpu-exporter and are ignored`);
  }
  return familySelection({
    ...(config.metricsInclude ? { include: config.metricsInclude } : {}),
    ...(config.metricsExclude ? { exclude: config.metricsExclude } : {}),
    ...(counters ? { dcgmFields: counters.fields } : {}),
  });
}

/**
 * Wires the parts together: sampler (worker + NVML, busy time integrated there; the newest sample read at each scrape) ->
 * attribution (kubelet device map, process owners, pod metadata) -> render stage (context,
 * family builders, exposition) -> scrape cache -> HTTP. NVML events from the sampling thread
 * go to the event watcher, whose counts the health builder reads at the next render.
 */
export class Exporter {
  readonly sampler: Sampler;
  readonly cache = new ScrapeCache();
  readonly stage: RenderStage;
  private listener: Listener | undefined;
  /** The web config in force (TLS, users, headers), when --web.config.file is set. */
  readonly webConfig: WebConfigWatcher | undefined;
  readonly guard: RequestGuard;
  readonly deviceMaps: DeviceMapSource | undefined;
  readonly events: EventWatcher | undefined;
  private readonly seen: SeenGpus;
  private readonly attributor: Attributor;
  private lastAttribution: SampleAttribution = NO_ATTRIBUTION;
  /** The sample last marked for rendering. */
  private noted: NodeSample | undefined;
  private podLabelsDropLogged = false;
  private readonly podMetadata: PodMetadataWatcher | undefined;
  readonly draSlices: DraSliceWatcher | undefined;
  /** The node page's data, from each render context (beside the exposition). */
  readonly nodeViews: NodeViews;

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
      ? new DeviceMapSource({ socketPath: config.kubeletSocket, refreshMs: config.kubeletRefreshMs, deadlineMs: config.kubeletTimeoutMs, draWatched: config.kubernetesDra, logger })
      : undefined;
    this.seen = new SeenGpus(logger);
    this.events = config.nvmlEvents ? new EventWatcher(logger) : undefined;
    this.podMetadata = config.podMetadata
      ? new PodMetadataWatcher({ nodeName: config.nodeName, labelAllowlist: config.podLabelAllowlist, kubeconfigPath: config.kubeconfig, logger })
      : undefined;
    const podMetadata = this.podMetadata;
    this.draSlices = config.kubernetesDra ? new DraSliceWatcher({ nodeName: config.nodeName, kubeconfigPath: config.kubeconfig, logger }) : undefined;
    const draSlices = this.draSlices;
    this.attributor = new Attributor({
      deviceMap: () => this.deviceMaps?.map ?? EMPTY_DEVICE_MAP,
      processOwners:
        opts.processOwners ?? (config.collectors.processes ? new ProcessOwnerResolver({ procRoot: config.procfsPath, logRoot: config.podLogsPath }) : undefined),
      ...(podMetadata ? { podMetadata: { metadataOf: (ns: string, pod: string) => podMetadata.metadataOf(ns, pod), labelName: podLabelName } } : {}),
      ...(draSlices ? { draDevices: (driver: string, pool: string, name: string) => draSlices.lookup(driver, pool, name) } : {}),
    });
    this.nodeViews = new NodeViews(logger);
    this.stage = new RenderStage(opts.familyBuilders ?? familyBuilders(), this.cache, logger, seriesBudget(config, logger));
    this.sampler = new Sampler({
      intervalMs: config.sampleIntervalMs,
      initRetryMs: config.nvmlRetryMs,
      libraryPath: config.nvmlLibrary,
      driverRoot: config.driverRoot,
      collectors: config.collectors,
      slowIntervalMs: config.healthIntervalMs,
      ...(config.nvmlEvents ? { events: true } : {}),
      logger,
    });
    // a lost GPU is logged when its sample comes, scraped or not
    this.sampler.on('notable', (s: NodeSample) => this.seen.observe(s));
    this.sampler.on('events', (msg: FromEventWorker) => this.events?.handle(msg));
  }

  /**
   * Before a scrape is served: the newest sample, when it is not the one rendered last, marks the
   * exposition out of date, and the scrape renders it. Samples nobody scrapes are never read.
   */
  private fresh(): Promise<void> {
    const sample = this.sampler.latest;
    if (sample && sample !== this.noted) {
      this.noted = sample;
      this.stage.invalidate(() => this.contextOf(sample));
    }
    return this.stage.fresh();
  }

  /** Renders a sample (or the empty state before the first one) now; resolves once it is served, never rejects. */
  render(sample: NodeSample | undefined): Promise<void> {
    return this.stage.render(() => this.contextOf(sample));
  }

  /** The render context of a sample; the attribution is guarded on its own, so a failure there keeps the sample's values. */
  private contextOf(sample: NodeSample | undefined): RenderContext {
    const { config } = this.opts;
    const attribution = sample ? this.stage.guard.run(ATTRIBUTION_STEP, () => this.attributor.attribute(sample), this.lastAttribution) : NO_ATTRIBUTION;
    this.lastAttribution = attribution;
    const ctx = renderContext({
      sample,
      scheme: config.naming,
      hostname: config.nodeName,
      hostnameLabel: config.dcgmHostnameLabel,
      attribution,
      seenGpus: this.seen.all(),
      events: this.events?.tally ?? NO_EVENTS,
      exporter: this.status(),
      maxLabels: config.metricsMaxLabels,
    });
    this.nodeViews.observe(ctx);
    if (ctx.droppedPodLabels > 0 && !this.podLabelsDropLogged) {
      this.podLabelsDropLogged = true;
      this.opts.logger.warn(
        { maxLabels: config.metricsMaxLabels, dropped: ctx.droppedPodLabels },
        'pod labels dropped to keep series within --metrics.max-labels (the last in name order first; counted in kube_gpu_exporter_pod_labels_dropped): narrow --kubernetes.pod-labels or raise the budget',
      );
    }
    return ctx;
  }

  private status(): ExporterStatus {
    const { config } = this.opts;
    const k = this.deviceMaps;
    return {
      nvmlUp: this.sampler.state === 'ready',
      skippedTicks: this.sampler.skippedTicks,
      version: VERSION,
      naming: config.naming,
      sampleIntervalSeconds: config.sampleIntervalMs / 1000,
      ...(k ? { kubelet: { ...k.status, pods: k.map.pods } } : {}),
      processAttribution: Boolean(config.collectors.processes),
      ...(this.podMetadata ? { podMetadataSynced: this.podMetadata.synced } : {}),
      ...(this.draSlices ? { draSynced: this.draSlices.synced } : {}),
      ...(this.events ? { eventWatch: { up: this.events.up, restarts: this.events.restarts } } : {}),
      ...(this.webConfig ? { webConfig: this.webConfig.status } : {}),
    };
  }

  servedState(): ServedState {
    return {
      fresh: () => this.fresh(),
      body: (format, gzip) => this.cache.body(format, gzip),
      ready: () => readiness({ nvmlReady: this.sampler.state === 'ready', unavailableReason: this.sampler.unavailableReason, hasSample: this.sampler.latest !== undefined }),
      latestSample: () => this.sampler.latest,
      nodeView: (nowMs, ready) => this.nodeViews.view(nowMs, ready),
      version: VERSION,
    };
  }

  async start(): Promise<AddressInfo> {
    const { config, logger } = this.opts;
    await this.render(undefined);
    this.deviceMaps?.start();
    this.podMetadata?.startInBackground();
    this.draSlices?.startInBackground();
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
   * Stops in order: no new connections (scrapes in flight finish), sampling ends, the NVML event set is freed,
   * NVML is shut down on the sampling thread, the kubelet client and pod watch close.
   */
  async stop(): Promise<void> {
    this.webConfig?.stop();
    const server = this.listener?.server;
    const closed = server?.listening ? new Promise<void>((resolve) => server.close(() => resolve())) : Promise.resolve();
    server?.closeIdleConnections();
    await Promise.all([closed, this.sampler.stop(), this.deviceMaps?.stop(), this.podMetadata?.stop(), this.draSlices?.stop()]);
  }

  /** Drops every connection, busy or not (when a clean stop ran out of time). */
  dropConnections(): void {
    this.listener?.server.closeAllConnections();
  }
}
