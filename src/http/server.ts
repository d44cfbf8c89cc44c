import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';
import express, { type Express } from 'express';
import type { ExpositionFormat } from '../metrics/exposition.js';
import { CONTENT_TYPES } from '../metrics/exposition.js';
import type { NodeSample } from '../sample.js';

/** What the HTTP layer reads; it never reaches back into sampling. */
export interface ServedState {
  body(format: ExpositionFormat, gzip: boolean): Buffer;
  ready(): { ok: boolean; reason: string };
  latestSample(): NodeSample | undefined;
  version: string;
}

function wantsOpenMetrics(req: IncomingMessage): boolean {
  return (req.headers.accept ?? '').includes('application/openmetrics-text');
}

function acceptsGzip(req: IncomingMessage): boolean {
  return /\bgzip\b/.test(String(req.headers['accept-encoding'] ?? ''));
}

const HTML_ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };
export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => HTML_ESCAPES[c]!);
}

function indexPage(state: ServedState): string {
  const sample = state.latestSample();
  const rows = (sample?.gpus ?? [])
    .map((g) => {
      const mig = g.mig.map((m) => `${escapeHtml(m.profile)} (GI ${m.gpuInstanceId})`).join(', ');
      return `<tr><td>${g.index}</td><td>${escapeHtml(g.name)}</td><td>${escapeHtml(g.uuid)}</td><td>${escapeHtml(g.pciBusId)}</td><td>${mig || '-'}</td></tr>`;
    })
    .join('\n');
  const lost = (sample?.lostGpus ?? []).map((g) => `<li>GPU ${g.index}: ${escapeHtml(g.error)}</li>`).join('');
  const ready = state.ready();
  return `<!doctype html>
<html><head><meta charset="utf-8"><title>kube-gpu-exporter</title></head>
<body><h1>kube-gpu-exporter ${escapeHtml(state.version)}</h1>
<p>Status: ${ready.ok ? 'ready' : `not ready (${escapeHtml(ready.reason)})`}. <a href="/metrics">/metrics</a> · <a href="/healthz">/healthz</a> · <a href="/readyz">/readyz</a></p>
<table border="1" cellpadding="4"><tr><th>GPU</th><th>Model</th><th>UUID</th><th>PCI bus id</th><th>MIG instances</th></tr>
${rows || '<tr><td colspan="5">no GPUs sampled yet</td></tr>'}
</table>
${lost ? `<h2>GPUs not answering</h2><ul>${lost}</ul>` : ''}
</body></html>
`;
}

/** Sends the cached exposition in the format and encoding the scraper asked for. */
function serveMetrics(state: ServedState, req: IncomingMessage, res: ServerResponse): void {
  const format: ExpositionFormat = wantsOpenMetrics(req) ? 'openmetrics' : 'text';
  const gzip = acceptsGzip(req);
  res.setHeader('Content-Type', CONTENT_TYPES[format]);
  res.setHeader('Vary', 'Accept, Accept-Encoding');
  if (gzip) res.setHeader('Content-Encoding', 'gzip');
  res.end(req.method === 'HEAD' ? undefined : state.body(format, gzip));
}

function isMetricsRequest(req: IncomingMessage): boolean {
  if (req.method !== 'GET' && req.method !== 'HEAD') return false;
  const url = req.url ?? '';
  return url === '/metrics' || url.startsWith('/metrics?');
}

/**
 * The server's request handler. Scrapes take a direct path to the cached bytes (they are
 * the hot path: one per scraper per interval); every other page goes through the express app.
 */
export function createRequestHandler(state: ServedState): RequestListener {
  const app = createApp(state);
  return (req, res) => {
    if (isMetricsRequest(req)) serveMetrics(state, req, res);
    else app(req, res);
  };
}

export function createApp(state: ServedState): Express {
  const app = express();
  app.disable('x-powered-by');
  app.disable('etag');

  app.get('/metrics', (req, res) => serveMetrics(state, req, res));

  app.get('/healthz', (_req, res) => {
    res.type('text/plain').send('ok\n');
  });

  app.get('/readyz', (_req, res) => {
    const r = state.ready();
    res.status(r.ok ? 200 : 503).type('text/plain').send(r.ok ? 'ready\n' : `not ready: ${r.reason}\n`);
  });

  app.get('/', (_req, res) => {
    res.type('html').send(indexPage(state));
  });

  app.use((_req, res) => {
    res.status(404).type('text/plain').send('not found\n');
  });
  return app;
}
