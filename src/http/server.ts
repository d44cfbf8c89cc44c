import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';
import express, { type Express, type Response } from 'express';
import type { WebConfig } from '../config/web-config.js';
import { BasicAuth } from './basic-auth.js';
import { ConcurrencyLimit, TokenBucket } from './limits.js';
import type { ExpositionFormat } from '../metrics/exposition.js';
import { CONTENT_TYPES } from '../metrics/exposition.js';
import type { NodeSample } from '../sample.js';
import type { Readiness } from './readiness.js';
import type { NodeView } from '../view/node-view.js';
import { NODE_PAGE_ASSETS, NODE_VIEW_PATH, nodePageHtml, setPageHeaders } from './node-page.js';

export { escapeHtml } from './node-page.js';

/** What the HTTP layer reads; it never reaches back into sampling. */
export interface ServedState {
  /** Brings the exposition up to the newest sample (rendering it if a scrape is the first to ask); never rejects. */
  fresh?(): Promise<void>;
  body(format: ExpositionFormat, gzip: boolean): Buffer;
  ready(): Readiness;
  latestSample(): NodeSample | undefined;
  /** The node view of the newest rendered sample (the node page's data), as of `nowMs`; undefined before the first render. */
  nodeView?(nowMs: number, ready: Readiness): NodeView | undefined;
  version: string;
}

/** What the web config and --web.max-requests put in front of every page but the probes. */
export class RequestGuard {
  headers: [string, string][] = [];
  auth = new BasicAuth(new Map());
  rate: TokenBucket | undefined;
  readonly inFlight: ConcurrencyLimit;

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

  // the node page and its data: like /metrics, from the newest sample once it is rendered
  const withView = (res: Response, send: (view: NodeView | undefined) => void): void => {
    const go = (): void => send(state.nodeView?.(Date.now(), state.ready()));
    if (!state.fresh) {
      go();
      return;
    }
    state.fresh().then(go).catch(() => {
      if (!res.headersSent) refuse(res, 500, 'internal error\n');
      else res.destroy();
    });
  };
  app.get('/', (_req, res) => {
    withView(res, (view) => {
      setPageHeaders(res);
      res.type('html').send(nodePageHtml(view, state.version));
    });
  });
  app.get(NODE_VIEW_PATH, (_req, res) => {
    if (!state.nodeView) {
      res.status(404).type('text/plain').send('not found\n');
      return;
    }
    withView(res, (view) => {
      setPageHeaders(res);
      if (view) res.type('application/json').send(JSON.stringify(view));
      else res.status(503).type('text/plain').send('no node view yet\n');
    });
  });
  for (const [path, asset] of Object.entries(NODE_PAGE_ASSETS)) {
    app.get(path, (_req, res) => {
      setPageHeaders(res);
      res.setHeader('Content-Type', asset.type);
      res.send(asset.body);
    });
  }

  app.use((_req, res) => {
    res.status(404).type('text/plain').send('not found\n');
  });
  return app;
}
