import { gzipSync } from 'node:zlib';
import { collectDefaultMetrics, Registry } from 'prom-client';
import { renderFamilies, type ExpositionFormat, type RenderFamily } from './exposition.js';

/**
 * prom-client names three gauges with a _total suffix, which Prometheus reserves for counters
 * (promtool flags them); they are left out.
 */
const MISNAMED_DEFAULTS = /^# HELP nodejs_active_(handles|requests|resources)_total /;

function withoutMisnamed(text: string): string {
  return text
    .split('\n\n')
    .filter((block) => !MISNAMED_DEFAULTS.test(block))
    .join('\n\n');
}

function openMetricsRegistry(): Registry {
  const r = new Registry();
  r.setContentType(Registry.OPENMETRICS_CONTENT_TYPE as never);
  return r;
}

/**
 * The bytes /metrics serves, rendered once per sample (not per scrape). Process metrics come
 * from prom-client on a private registry, refreshed with each render. Gzip is computed on the
 * first request that asks for it and kept until the next render.
 */
export class ScrapeCache {
  private readonly processText = new Registry();
  private readonly processOpenMetrics = openMetricsRegistry();
  private bodies: Record<ExpositionFormat, Buffer> = { text: Buffer.alloc(0), openmetrics: Buffer.from('# EOF\n') };
  private gzipped: Partial<Record<ExpositionFormat, Buffer>> = {};
  private rendering: Promise<void> = Promise.resolve();

  constructor(private readonly includeProcessMetrics = true) {
    if (includeProcessMetrics) {
      collectDefaultMetrics({ register: this.processText });
      collectDefaultMetrics({ register: this.processOpenMetrics });
    }
  }

  /** Renders the given families; concurrent calls are serialised so the newest wins. */
  update(families: readonly RenderFamily[]): Promise<void> {
    this.rendering = this.rendering.then(() => this.render(families));
    return this.rendering;
  }

  private async render(families: readonly RenderFamily[]): Promise<void> {
    let processText = '';
    let processOm = '';
    if (this.includeProcessMetrics) {
      [processText, processOm] = await Promise.all([this.processText.metrics(), this.processOpenMetrics.metrics()]);
      processText = withoutMisnamed(processText);
      processOm = withoutMisnamed(processOm.replace(/# EOF\n?$/, ''));
    }
    this.bodies = {
      text: Buffer.from(renderFamilies(families, 'text') + processText),
      openmetrics: Buffer.from(renderFamilies(families, 'openmetrics') + processOm + '# EOF\n'),
    };
    this.gzipped = {};
  }

  body(format: ExpositionFormat, gzip: boolean): Buffer {
    if (!gzip) return this.bodies[format];
    let z = this.gzipped[format];
    if (!z) {
      z = gzipSync(this.bodies[format], { level: 6 });
      this.gzipped[format] = z;
    }
    return z;
  }
}
