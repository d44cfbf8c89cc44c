import { setImmediate as yieldToEventLoop } from 'node:timers/promises';
import { gzipSync } from 'node:zlib';
import { renderFamilies, type ExpositionFormat, type RenderFamily } from './exposition.js';

/** Series rendered between two turns of the event loop, so a large node never stalls scrapes. */
const SERIES_PER_SLICE = 2000;

const FORMATS: readonly ExpositionFormat[] = ['text', 'openmetrics'];

function finish(format: ExpositionFormat, body: string): Buffer {
  return Buffer.from(format === 'openmetrics' ? `${body}# EOF\n` : body);
}

/** Renders in slices, letting requests in between; scrapes meanwhile get the previous bytes. */
async function renderInSlices(families: readonly RenderFamily[], format: ExpositionFormat): Promise<Buffer> {
  const parts: string[] = [];
  let slice: RenderFamily[] = [];
  let series = 0;
  for (const f of families) {
    slice.push(f);
    series += f.series.length;
    if (series >= SERIES_PER_SLICE) {
      parts.push(renderFamilies(slice, format));
      slice = [];
      series = 0;
      await yieldToEventLoop();
    }
  }
  parts.push(renderFamilies(slice, format));
  return finish(format, parts.join(''));
}

/**
 * The bytes /metrics serves, rendered at most once per sample (for the first scrape after it), in the formats
 * scrapers ask for (text until an OpenMetrics scrape comes). Gzip is computed on the first
 * request that asks for it and kept until the next render. The render stage calls update()
 * one render at a time; a render that throws leaves the bytes of the previous one in place.
 */
export class ScrapeCache {
  private bodies: Partial<Record<ExpositionFormat, Buffer>> = { text: Buffer.alloc(0), openmetrics: Buffer.from('# EOF\n') };
  /** The families of the last render, for a format asked for the first time. */
  private families: readonly RenderFamily[] = [];
  private readonly wanted = new Set<ExpositionFormat>(['text']);
  private gzipped: Partial<Record<ExpositionFormat, Buffer>> = {};

  /** Renders the given families in every format asked for so far, then serves them. */
  async update(families: readonly RenderFamily[]): Promise<void> {
    const bodies: Partial<Record<ExpositionFormat, Buffer>> = {};
    for (const format of FORMATS) if (this.wanted.has(format)) bodies[format] = await renderInSlices(families, format);
    this.families = families;
    this.bodies = bodies;
    this.gzipped = {};
  }

  body(format: ExpositionFormat, gzip: boolean): Buffer {
    let plain = this.bodies[format];
    if (!plain) {
      // first scrape in this format: render it now, and with every sample from now on
      this.wanted.add(format);
      plain = finish(format, renderFamilies(this.families, format));
      this.bodies[format] = plain;
    }
    if (!gzip) return plain;
    let z = this.gzipped[format];
    if (!z) {
      z = gzipSync(plain, { level: 6 });
      this.gzipped[format] = z;
    }
    return z;
  }
}
