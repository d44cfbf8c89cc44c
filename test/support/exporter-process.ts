import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { copyFileSync, mkdtempSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { simulatedNode, type SimulatedNode } from '../../src/sim/harness.js';

export const ROOT = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../..');

/** A writable copy of a shipped scenario, so a test can change values while the exporter runs. */
export function scenarioCopy(name: string): { node: SimulatedNode; statePath: string } {
  const node = simulatedNode(name);
  const dir = mkdtempSync(path.join(os.tmpdir(), 'kge-scn-'));
  const statePath = path.join(dir, `${name}.sim`);
  copyFileSync(node.statePath, statePath);
  return { node, statePath };
}

export interface RunningExporter {
  url: string;
  child: ChildProcess;
  logs: () => string[];
  stop(): Promise<number | null>;
}

/** Starts the real CLI (src/main.ts through tsx) in its own process on a free port. */
export async function startExporterProcess(opts: {
  library?: string;
  statePath?: string;
  args?: string[];
  env?: Record<string, string>;
  /** Modules node loads before the exporter (`--import`), e.g. a test's fault trigger. */
  preload?: string[];
  /** Keep the child's standard input open as a pipe (`child.stdin`). */
  stdin?: boolean;
}): Promise<RunningExporter> {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', ...(opts.preload ?? []).flatMap((m) => ['--import', m]), path.join(ROOT, 'src/main.ts'), '--web.listen-address=127.0.0.1:0', ...(opts.args ?? [])],
    {
      cwd: ROOT,
      env: {
        ...process.env,
        NODE_NAME: 'golden-node',
        ...(opts.library ? { KGE_NVML_LIBRARY: opts.library } : {}),
        ...(opts.statePath ? { KGE_SIM_STATE: opts.statePath } : {}),
        ...opts.env,
      },
      stdio: [opts.stdin ? 'pipe' : 'ignore', 'pipe', 'pipe'],
    },
  );
  const lines: string[] = [];
  let buf = '';
  const onData = (d: Buffer): void => {
    buf += d.toString();
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      lines.push(buf.slice(0, i));
      buf = buf.slice(i + 1);
    }
  };
  child.stdout!.on('data', onData);
  child.stderr!.on('data', onData);
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`exporter did not start:\n${lines.join('\n')}`)), 20_000);
    const check = (): void => {
      for (const l of lines) {
        if (!l.includes('serving /metrics')) continue;
        clearTimeout(timer);
        resolve((JSON.parse(l) as { port: number }).port);
        return;
      }
      if (child.exitCode !== null) {
        clearTimeout(timer);
        reject(new Error(`exporter exited ${child.exitCode}:\n${lines.join('\n')}`));
        return;
      }
      setTimeout(check, 20);
    };
    check();
  });
  return {
    url: `http://127.0.0.1:${port}`,
    child,
    logs: () => lines,
    async stop() {
      if (child.exitCode !== null) return child.exitCode;
      child.kill('SIGTERM');
      const [code] = (await once(child, 'exit')) as [number | null];
      return code;
    },
  };
}

/** Polls until `fn` returns a truthy value. */
export async function waitFor<T>(fn: () => Promise<T | undefined | false> | T | undefined | false, timeoutMs = 10_000, what = 'condition'): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v as T;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * GET /metrics on a connection of its own (no keep-alive): a pooled connection the exporter
 * closed as idle while the test was busy would otherwise fail the next request at random.
 */
export async function scrape(url: string, headers: Record<string, string> = {}): Promise<string> {
  if (!url.startsWith('http:')) return (await fetch(`${url}/metrics`, { headers })).text();
  return new Promise<string>((resolve, reject) => {
    const req = http.get(`${url}/metrics`, { headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
      res.on('error', reject);
    });
    req.on('error', reject);
  });
}

/** Parses text exposition into name{labels} -> value, skipping comments. */
export function parseMetrics(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const sp = line.lastIndexOf(' ');
    out.set(line.slice(0, sp), Number(line.slice(sp + 1)));
  }
  return out;
}

/** Series of one family: [labels string, value][] */
export function seriesOf(text: string, family: string): { labels: Record<string, string>; value: number }[] {
  const out: { labels: Record<string, string>; value: number }[] = [];
  for (const line of text.split('\n')) {
    if (!line.startsWith(family + '{') && !line.startsWith(family + ' ')) continue;
    const brace = line.indexOf('{');
    const labels: Record<string, string> = {};
    if (brace === family.length) {
      const close = line.lastIndexOf('}');
      const body = line.slice(brace + 1, close);
      for (const m of body.matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[m[1]!] = m[2]!;
    }
    out.push({ labels, value: Number(line.slice(line.lastIndexOf(' ') + 1)) });
  }
  return out;
}
