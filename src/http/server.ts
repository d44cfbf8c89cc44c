import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';
import express, { type Express } from 'express';
import type { WebConfig } from '../config/web-config.js';
import { BasicAuth } from './basic-auth.js';
import { ConcurrencyLimit, TokenBucket } from './limits.js';
import type { ExpositionFormat } from '../metrics/exposition.js';
import { CONTENT_TYPES } from '../metrics/exposition.js';
import type { NodeSample } from '../sample.js';
import type { Readiness } from './readiness.js';

/** What the HTTP layer reads; it never reaches back into sampling. */
export interface ServedState {
  /** Brings the exposition up to the newest sample (rendering it if a scrape is the first to ask); never rejects. */
  fresh?(): Promise<void>;
  body(format: ExpositionFormat, gzip: boolean): Buffer;
  ready(): Readiness;
  latestSample(): NodeSample | undefined;
  version: string;
}

/** What the web config and --web.max-requests put in front of every page but the probes. */
export class RequestGuard {
  headers: [string, string][] = [];
  auth = new BasicAuth(new Map());
  rate: TokenBucket | undefined;
  readonly inFlight: ConcurrencyLimit;
  /** Requests refused with 503 because --web.max-requests were in flight. */
  refusedBusy = 0;

  constructor(readonly maxInFlight = 0) {
    this.inFlight = new ConcurrencyLimit(maxInFlight);
  }

  /** Puts a (re)loaded web config's headers, users and rate limit in force. */
  apply(config: WebConfig): void {
    this.headers = config.headers;
    this.auth = new BasicAuth(config.users);
    this.rate = config.rateLimit ? new TokenBucket(config.rateLimit.intervalMs, config.rateLimit.burst) : undefined;
  }
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

/** Sends the exposition of the newest sample in the format and encoding the scraper asked for. */
function serveMetrics(state: ServedState, req: IncomingMessage, res: ServerResponse): void {
  const send = (): void => {
    const format: ExpositionFormat = wantsOpenMetrics(req) ? 'openmetrics' : 'text';
    const gzip = acceptsGzip(req);
    const body = state.body(format, gzip);
    res.setHeader('Content-Type', CONTENT_TYPES[format]);
    res.setHeader('Vary', 'Accept, Accept-Encoding');
    if (gzip) res.setHeader('Content-Encoding', 'gzip');
    res.end(req.method === 'HEAD' ? undefined : body);
  };
  if (!state.fresh) {
    send();
    return;
  }
  state.fresh().then(send).catch(() => {
    if (!res.headersSent) refuse(res, 500, 'internal error\n');
    else res.destroy();
  });
}

/** The request path without its query string. */
function pathOf(req: IncomingMessage): string {
  const url = req.url ?? '';
  const q = url.indexOf('?');
  return q < 0 ? url : url.slice(0, q);
}

/** Probes answer without credentials or limits: the kubelet sends none, and they reveal only readiness. */
const PROBE_PATHS = new Set(['/healthz', '/readyz']);

function refuse(res: ServerResponse, status: number, text: string, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'Content-Type': 'text/plain; charset=utf-8', ...headers });
  res.end(text);
}

/**
 * The server's request handler: security headers on every response, GET and HEAD only, then
 * (probes excepted) the rate limit, the concurrency limit and basic auth. Scrapes take a direct
 * path to the cached bytes (one per scraper per interval); every other page goes through express.
 */
export function createRequestHandler(state: ServedState, guard: RequestGuard = new RequestGuard()): RequestListener {
  const handle = guardedHandler(state, guard);
  // a throw here would be an uncaught exception of the whole process: it fails this request only
  return (req, res) => {
    try {
      handle(req, res);
    } catch {
      if (!res.headersSent) refuse(res, 500, 'internal error\n');
      else res.destroy();
    }
  };
}

function guardedHandler(state: ServedState, guard: RequestGuard): RequestListener {
  const app = createApp(state);
  return (req, res) => {
    for (const [name, value] of guard.headers) res.setHeader(name, value);
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      refuse(res, 405, 'method not allowed: use GET or HEAD\n', { Allow: 'GET, HEAD' });
      return;
    }
    const path = pathOf(req);
    if (PROBE_PATHS.has(path)) {
      app(req, res);
      return;
    }
    if (guard.rate && !guard.rate.take()) {
      refuse(res, 429, 'too many requests\n', { 'Retry-After': '1' });
      return;
    }
    const release = guard.inFlight.acquire();
    if (!release) {
      guard.refusedBusy++;
      refuse(res, 503, `too many concurrent requests (limit ${guard.maxInFlight}, --web.max-requests)\n`, { 'Retry-After': '1' });
      return;
    }
    res.once('close', release);
    const route = (): void => {
      if (path === '/metrics') serveMetrics(state, req, res);
      else app(req, res);
    };
    if (!guard.auth.enabled) {
      route();
      return;
    }
    guard.auth.check(req.headers.authorization).then(
      (ok) => {
        if (ok) route();
        else refuse(res, 401, 'unauthorized\n', { 'WWW-Authenticate': 'Basic realm="kube-gpu-exporter", charset="UTF-8"' });
      },
      () => refuse(res, 500, 'authentication failed\n'),
    );
  };
}

export function createApp(state: ServedState): Express {
  const app = express();
  app.disable('x-powered-by');
  app.disable('etag');

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
