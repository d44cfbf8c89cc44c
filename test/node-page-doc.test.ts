import { readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseFlags } from '../src/config/flags.js';
import type { Exporter } from '../src/exporter.js';
import { appendScenarioLines } from '../src/sim/scenario-file.js';
import { simulatedNode } from '../src/sim/harness.js';
import { startSimulatedPods, type SimulatedPods } from '../src/sim/simulated-pods.js';
import type { NodeView } from '../src/view/node-view.js';
import { ROOT, waitFor } from './support/exporter-process.js';
import { startScenarioInProcess } from './support/in-process.js';

/**
 * docs/node-page.md and /api/v1/node agree: every field the exporter serves is in the document's
 * table with its JSON type, and every field of the table is served. The view comes from the
 * simulated 8x H100 node with its pods, an Xid and a failing collector, so every array has an
 * element and every object field a value.
 */
const DOC = readFileSync(path.join(ROOT, 'docs', 'node-page.md'), 'utf8');

/** The table rows: `path` -> the JSON types the document allows ("number or null"). */
function documentedFields(): Map<string, Set<string>> {
  const out = new Map<string, Set<string>>();
  for (const m of DOC.matchAll(/^\| `([^`]+)` \| ([^|]+) \|/gm)) {
    if (out.has(m[1]!)) throw new Error(`docs/node-page.md lists ${m[1]} twice`);
    out.set(m[1]!, new Set(m[2]!.trim().split(' or ')));
  }
  return out;
}

function jsonType(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  return typeof v;
}

/** Every field path of a JSON value (array elements as `[]`), with the types seen at each. */
function servedFields(value: unknown, prefix = '', out = new Map<string, Set<string>>()): Map<string, Set<string>> {
  const note = (p: string, v: unknown): void => {
    let s = out.get(p);
    if (!s) out.set(p, (s = new Set()));
    s.add(jsonType(v));
  };
  if (Array.isArray(value)) {
    for (const item of value) {
      if (item !== null && typeof item === 'object') servedFields(item, `${prefix}[]`, out);
    }
    return out;
  }
  if (value !== null && typeof value === 'object') {
    for (const [k, v] of Object.entries(value)) {
      const p = prefix ? `${prefix}.${k}` : k;
      note(p, v);
      if (v !== null && typeof v === 'object') servedFields(v, p, out);
    }
  }
  return out;
}

let exporter: Exporter;
let url: string;
let pods: SimulatedPods;

beforeAll(async () => {
  const node = simulatedNode('h100x8');
  pods = await startSimulatedPods(node.statePath, { nodeName: 'test-node' });
  const flags = parseFlags(pods.flags);
  if (flags.kind !== 'run') throw new Error('pods flags did not parse');
  const { kubeletSocket, procfsPath, podLogsPath } = flags.config;
  let statePath: string;
  ({ exporter, url, statePath } = await startScenarioInProcess('h100x8', { kubeletSocket, procfsPath, podLogsPath }));
  // an Xid on GPU 1 (delivered though its time has passed) and the clocks collector failing there
  appendScenarioLines(statePath, '\nevent 1 xid 13 1000\nfault nvmlDeviceGetClockInfo 1 999\n');
}, 60_000);
afterAll(async () => {
  await exporter?.stop();
  await pods?.stop();
});

async function view(): Promise<NodeView> {
  const res = await fetch(`${url}/api/v1/node`);
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toMatch(/^application\/json/);
  return (await res.json()) as NodeView;
}

describe('docs/node-page.md', () => {
  it('lists every field /api/v1/node serves, with its type, and no field it does not serve', async () => {
    const v = await waitFor(
      async () => {
        const v = await view();
        const complete =
          v.exporter.kubelet?.up &&
          v.exporter.collectorsFailing.length > 0 &&
          v.gpus[1]?.health.lastXid !== null &&
          v.gpus.every((g) => g.utilization !== null || g.mig.length > 0) &&
          v.gpus.some((g) => g.usage.length > 0) &&
          v.gpus.some((g) => g.mig.some((m) => m.holders.length > 0 && m.usage.length > 0));
        return complete ? v : undefined;
      },
      20_000,
      'a view with pods, an Xid, a failing collector and utilization',
    );
    const documented = documentedFields();
    const served = servedFields(v);
    expect(documented.size).toBeGreaterThan(50);
    expect([...served.keys()].filter((p) => !documented.has(p)), 'served but not in docs/node-page.md').toEqual([]);
    expect([...documented.keys()].filter((p) => !served.has(p)), 'in docs/node-page.md but not served').toEqual([]);
    const wrongTypes = [...served].flatMap(([p, types]) => [...types].filter((t) => !documented.get(p)!.has(t)).map((t) => `${p}: served ${t}, documented ${[...documented.get(p)!].join(' or ')}`));
    expect(wrongTypes).toEqual([]);
  });
});
