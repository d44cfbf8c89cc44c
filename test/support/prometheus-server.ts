import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { waitFor } from './exporter-process.js';

export const PROMETHEUS_BIN = process.env.KGE_PROMETHEUS ?? '/usr/bin/prometheus';

/** A port nobody listens on right now (the OS picks it). */
export async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as { port: number };
  server.close();
  await once(server, 'close');
  return port;
}

/** One answer of the HTTP API (/api/v1/...). */
export interface ApiAnswer<T = unknown> {
  status: 'success' | 'error';
  data: T;
  errorType?: string;
  error?: string;
}

export interface VectorSample {
  metric: Record<string, string>;
  value: [number, string];
}

export interface QueryResult {
  resultType: 'vector' | 'scalar' | 'matrix' | 'string';
  result: VectorSample[] | [number, string];
}

export interface RunningPrometheus {
  url: string;
  dir: string;
  logs: () => string;
  api<T>(pathAndQuery: string): Promise<ApiAnswer<T>>;
  /** An instant query at the current time. */
  query(expr: string): Promise<ApiAnswer<QueryResult>>;
  stop(): Promise<void>;
}

/**
 * Starts a real Prometheus on loopback in a temporary directory (config, rule files and TSDB
 * there) and waits until it is ready.
 */
export async function startPrometheus(opts: { config: string; files: Record<string, string> }): Promise<RunningPrometheus> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'kge-prometheus-'));
  for (const [name, text] of Object.entries(opts.files)) writeFileSync(path.join(dir, name), text);
  writeFileSync(path.join(dir, 'prometheus.yml'), opts.config);
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const child: ChildProcess = spawn(
    PROMETHEUS_BIN,
    [
      `--config.file=${path.join(dir, 'prometheus.yml')}`,
      `--storage.tsdb.path=${path.join(dir, 'data')}`,
      `--web.listen-address=127.0.0.1:${port}`,
      '--log.level=warn',
    ],
    { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let log = '';
  child.stdout!.on('data', (d: Buffer) => (log += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (log += d.toString()));
  const stop = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      await once(child, 'exit');
    }
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    await waitFor(
      async () => {
        if (child.exitCode !== null) throw new Error(`prometheus exited ${child.exitCode}:\n${log}`);
        return fetch(`${url}/-/ready`).then((r) => r.ok, () => false);
      },
      20_000,
      'prometheus ready',
    );
  } catch (err) {
    await stop();
    throw err;
  }
  const api = async <T>(pathAndQuery: string): Promise<ApiAnswer<T>> => (await fetch(`${url}${pathAndQuery}`)).json() as Promise<ApiAnswer<T>>;
  return {
    url,
    dir,
    logs: () => log,
    api,
    query: (expr) => api<QueryResult>(`/api/v1/query?query=${encodeURIComponent(expr)}`),
    stop,
  };
}

/** Whether a query answer holds data (a non-empty vector, or a scalar). */
export function hasData(answer: ApiAnswer<QueryResult>): boolean {
  if (answer.status !== 'success') return false;
  return answer.data.resultType === 'scalar' || (answer.data.result as unknown[]).length > 0;
}
