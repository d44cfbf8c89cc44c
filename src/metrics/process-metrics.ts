import { collectDefaultMetrics, Registry } from 'prom-client';
import { labelString, type RenderFamily } from './exposition.js';

/**
 * prom-client names three gauges with a _total suffix, which Prometheus reserves for counters
 * (promtool flags them); they are left out.
 */
const MISNAMED_DEFAULTS = new Set(['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total']);

/**
 * The event-loop delay monitor wakes the loop once per precision. prom-client's 10 ms would be
 * 100 wake-ups a second on an otherwise idle thread (each costs CPU on every node of a fleet); the
 * main thread has no work of its own between scrapes (sampling runs on its worker, which leaves
 * its samples in shared memory), so the monitor would be its only reason to wake. Every 10 s still
 * shows a loop blocked for seconds in the nodejs_eventloop_lag_* quantiles; nodejs_eventloop_lag_seconds
 * is measured at each scrape.
 */
const EVENT_LOOP_PRECISION_MS = 10_000;

/**
 * The exporter's own process and Node.js runtime metrics (CPU, memory, fds, event-loop lag,
 * GC), from prom-client's default collectors on a private registry. Collected once per render
 * and handed to the renderer as plain families, so both formats come from one collection.
 */
export class ProcessMetrics {
  private readonly registry = new Registry();

  constructor() {
    collectDefaultMetrics({ register: this.registry, eventLoopMonitoringPrecision: EVENT_LOOP_PRECISION_MS });
  }

  async families(): Promise<RenderFamily[]> {
    const metrics = await this.registry.getMetricsAsJSON();
    const out: RenderFamily[] = [];
    for (const m of metrics) {
      if (MISNAMED_DEFAULTS.has(m.name)) continue;
      const kind = String(m.type);
      const type = kind === 'counter' || kind === 'histogram' ? kind : 'gauge';
      out.push({
        name: m.name,
        type,
        help: m.help,
        series: m.values.map((v) => {
          const entry = v as { value: number; labels: Record<string, string | number>; metricName?: string };
          const labels = labelString(Object.entries(entry.labels).map(([k, val]) => [k, String(val)] as const));
          return entry.metricName && entry.metricName !== m.name
            ? { labels, value: entry.value, sample: entry.metricName }
            : { labels, value: entry.value };
        }),
      });
    }
    return out;
  }
}
