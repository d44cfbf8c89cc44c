import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import { NO_ATTRIBUTION, type DeviceAttribution } from './attribution/attribution.js';
import type { Config } from './config/flags.js';
import { createRequestHandler, type ServedState } from './http/server.js';
import { buildExporterFamilies } from './metrics/exporter-series.js';
import { buildGpuFamilies } from './metrics/gpu-series.js';
import { ScrapeCache } from './metrics/scrape-cache.js';
import type { NodeSample } from './sample.js';
import { Sampler } from './sampler/sampler.js';
import { VERSION } from './version.js';

export interface ExporterOptions {
  config: Config;
  logger: Logger;
  attribution?: DeviceAttribution;
}

/**
 * Wires the pipeline: sampler (worker + NVML) -> attribution -> families -> rendered cache
 * -> HTTP. A new sample re-renders the cache; scrapes only send cached bytes.
 */
export class Exporter {
  readonly sampler: Sampler;
  readonly cache = new ScrapeCache();
  private server: Server | undefined;
  private readonly attribution: DeviceAttribution;

  constructor(private readonly opts: ExporterOptions) {
    const { config, logger } = opts;
    this.attribution = opts.attribution ?? NO_ATTRIBUTION;
    this.sampler = new Sampler({
      intervalMs: config.sampleIntervalMs,
      initRetryMs: config.nvmlRetryMs,
      libraryPath: config.nvmlLibrary,
      driverRoot: config.driverRoot,
      collectors: config.collectors,
      logger,
    });
    this.sampler.on('sample', (s: NodeSample) => void this.render(s));
  }

  /** Renders a sample (or the empty state before the first one). */
  render(sample: NodeSample | undefined): Promise<void> {
    const { config } = this.opts;
    const gpuFamilies = sample
      ? buildGpuFamilies(sample, { scheme: config.naming, hostname: config.nodeName, attribution: this.attribution })
      : [];
    const own = buildExporterFamilies(sample, {
      nvmlUp: this.sampler.state === 'ready',
      skippedTicks: this.sampler.skippedTicks,
      version: VERSION,
      naming: config.naming,
    });
    return this.cache.update([...gpuFamilies, ...own]);
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
    this.sampler.start();
    const server = createServer(createRequestHandler(this.servedState()));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ port: config.listenPort, host: config.listenHost || undefined }, () => {
        server.off('error', reject);
        resolve();
      });
    });
    this.server = server;
    const addr = server.address() as AddressInfo;
    logger.info({ address: addr.address, port: addr.port, naming: config.naming }, 'serving /metrics');
    return addr;
  }

  async stop(): Promise<void> {
    await this.sampler.stop();
    const server = this.server;
    this.server = undefined;
    if (server) {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    }
  }
}
