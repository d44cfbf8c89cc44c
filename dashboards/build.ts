/**
 * Writes the Grafana dashboards (dashboards/*.json) from their definitions in dashboards/lib/,
 * built with @grafana/grafana-foundation-sdk's typed builders (house style: lib/panels.ts).
 *
 *   npx tsx dashboards/build.ts
 *
 * (test/dashboards.test.ts fails while a file differs from what this writes; so does
 * test/deploy.test.ts while deploy/components/grafana-dashboards/ differs from these files:
 * npx tsx scripts/build-dashboard-configmaps.ts)
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type * as dashboard from '@grafana/grafana-foundation-sdk/dashboard';
import { fleetOverview } from './lib/fleet-overview.js';
import { namespaceShowback } from './lib/namespace-showback.js';
import { nodeGpuDetail } from './lib/node-gpu-detail.js';
import { buildDashboard } from './lib/panels.js';

export const DASHBOARDS_DIR = path.dirname(fileURLToPath(import.meta.url));

/** Output file name (in dashboards/) and definition of each dashboard. */
export const DASHBOARDS: [string, () => dashboard.DashboardBuilder][] = [
  ['fleet-overview.json', fleetOverview],
  ['node-gpu-detail.json', nodeGpuDetail],
  ['namespace-showback.json', namespaceShowback],
];

/** File path and JSON text of every dashboard. */
export function buildDashboards(): [string, string][] {
  return DASHBOARDS.map(([file, define]) => [path.join(DASHBOARDS_DIR, file), `${JSON.stringify(buildDashboard(define()), null, 2)}\n`]);
}

function main(): void {
  for (const [file, text] of buildDashboards()) {
    writeFileSync(file, text);
    process.stdout.write(`wrote dashboards/${path.basename(file)}\n`);
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) main();
