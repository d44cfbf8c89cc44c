import express, { type Express, type Request, type Response } from 'express';
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

function wantsOpenMetrics(req: Request): boolean {
  return (req.headers.accept ?? '').includes('application/openmetrics-text');
}

function acceptsGzip(req: Request): boolean {
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

export function createApp(state: ServedState): Express {
  const app = express();
  app.disable('x-powered-by');
  app.disable('etag');

  app.get('/metrics', (req: Request, res: Response) => {
    const format: ExpositionFormat = wantsOpenMetrics(req) ? 'openmetrics' : 'text';
    const gzip = acceptsGzip(req);
    res.setHeader('Content-Type', CONTENT_TYPES[format]);
    res.setHeader('Vary', 'Accept, Accept-Encoding');
    if (gzip) res.setHeader('Content-Encoding', 'gzip');
    res.end(state.body(format, gzip));
  });

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
