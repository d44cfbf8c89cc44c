import type { ServerResponse } from 'node:http';
import type { NodeView } from '../view/node-view.js';
import { NODE_PAGE_CSS, NODE_PAGE_SCRIPT } from './node-page-assets.js';

/**
 * The node page: `/` (the HTML shell), `/node-page.js` and `/node-page.css` (served from here,
 * nothing from elsewhere) and `/api/v1/node` (the node view as JSON, which the script fetches
 * every few seconds). Format of the JSON: docs/node-page.md.
 */
export const NODE_VIEW_PATH = '/api/v1/node';
export const NODE_PAGE_ASSETS: Readonly<Record<string, { type: string; body: Buffer }>> = {
  '/node-page.js': { type: 'text/javascript; charset=utf-8', body: Buffer.from(NODE_PAGE_SCRIPT) },
  '/node-page.css': { type: 'text/css; charset=utf-8', body: Buffer.from(NODE_PAGE_CSS) },
};

/**
 * Nothing but the exporter's own script, style sheet and JSON: no inline script or style, no
 * other origin, no frames, forms or plugins. A Content-Security-Policy the web config sets wins.
 */
export const NODE_PAGE_CSP = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/** The headers of every page response; those the web config already set are left as they are. */
export function setPageHeaders(res: ServerResponse): void {
  if (!res.hasHeader('Content-Security-Policy')) res.setHeader('Content-Security-Policy', NODE_PAGE_CSP);
  if (!res.hasHeader('X-Content-Type-Options')) res.setHeader('X-Content-Type-Options', 'nosniff');
  if (!res.hasHeader('Referrer-Policy')) res.setHeader('Referrer-Policy', 'no-referrer');
  res.setHeader('Cache-Control', 'no-store');
}

const HTML_ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };
export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => HTML_ESCAPES[c]!);
}

/** Without JavaScript: the GPUs and MIG instances of the view, escaped, and where the rest is. */
function fallbackTable(view: NodeView | undefined): string {
  const rows = (view?.gpus ?? []).map((g) => {
    const mig = g.mig.map((m) => `${escapeHtml(m.profile)} (GI ${m.gpuInstanceId})`).join(', ');
    const state = g.answering ? 'answering' : `not answering: ${escapeHtml(g.error ?? '')}`;
    return `<tr><td>${g.index}</td><td>${escapeHtml(g.model ?? '')}</td><td>${escapeHtml(g.uuid ?? '')}</td><td>${escapeHtml(g.pciBusId ?? '')}</td><td>${mig || '-'}</td><td>${state}</td></tr>`;
  });
  return `<p>This page updates itself with JavaScript; without it, the GPUs of the last sample (everything else: <a href="api/v1/node">api/v1/node</a>):</p>
<table><thead><tr><th>GPU</th><th>Model</th><th>UUID</th><th>PCI bus id</th><th>MIG instances</th><th>State</th></tr></thead>
<tbody>${rows.join('\n') || '<tr><td colspan="6">no GPUs sampled yet</td></tr>'}</tbody></table>`;
}

/** The HTML of `/`: the shell the script fills in, with the view of the last sample for browsers without JavaScript. */
export function nodePageHtml(view: NodeView | undefined, version: string): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>kube-gpu-exporter</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="node-page.css">
<script src="node-page.js" defer></script>
</head><body>
<header>
<h1>GPUs of <span id="node">${escapeHtml(view?.node ?? '')}</span></h1>
<span id="about">kube-gpu-exporter ${escapeHtml(version)}</span>
<nav><a href="metrics">metrics</a> · <a href="api/v1/node">api/v1/node</a> · <a href="readyz">readyz</a></nav>
<span id="connection" class="connection"></span>
<p id="status"></p>
</header>
<main>
<table id="devices" hidden>
<thead><tr><th>Device</th><th>Model</th><th>Utilization</th><th>Memory</th><th>Temp</th><th>Power</th><th>Clocks held by</th><th>Holders</th><th>Health</th></tr></thead>
<tbody id="devices-body"></tbody>
</table>
<p id="empty" hidden></p>
<noscript>${fallbackTable(view)}</noscript>
</main>
</body></html>
`;
}
