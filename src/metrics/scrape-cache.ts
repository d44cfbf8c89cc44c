import { gzipSync } from 'node:zlib';
import { renderFamilies, type ExpositionFormat, type RenderFamily } from './exposition.js';
import { ProcessMetrics } from './process-metrics.js';

/**
 * The bytes /metrics serves, rendered once per sample (not per scrape). Process metrics are
 * collected with each render. Gzip is computed on the
 * first request that asks for it and kept until the next render.
 */
export class ScrapeCache {
  private readonly processMetrics: ProcessMetrics | undefined;
  private bodies: Record<ExpositionFormat, Buffer> = { text: Buffer.alloc(0), openmetrics: Buffer.from('# EOF\n') };
  private gzipped: Partial<Record<ExpositionFormat, Buffer>> = {};
  private rendering: Promise<void> = Promise.resolve();

  constructor(includeProcessMetrics = true) {
    this.processMetrics = includeProcessMetrics ? new ProcessMetrics() : undefined;
  }

  /** Renders the given families; concurrent calls are serialised so the newest wins. */
  update(families: readonly RenderFamily[]): Promise<void> {
    this.rendering = this.rendering.then(() => this.render(families));
    return this.rendering;
  }

  private async render(families: readonly RenderFamily[]): Promise<void> {
    const all = this.processMetrics ? [...families, ...(await this.processMetrics.families())] : families;
    this.bodies = {
      text: Buffer.from(renderFamilies(all, 'text')),
      openmetrics: Buffer.from(renderFamilies(all, 'openmetrics') + '# EOF\n'),
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
