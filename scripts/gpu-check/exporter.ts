/**
 * The compiled exporter (dist/src/main.js) in its own process, against the real driver: no
 * kubelet, default naming, 1 s samples, on a free loopback port found from its
 * "serving /metrics" log line.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { NODE_FLAGS } from '../../src/node-flags.js';

export interface RunningExporter {
  url: string;
  pid: number;
  logs(): string[];
  scrape(): Promise<string>;
  /** SIGTERM, then SIGKILL after 15 s; the exit code (null when killed). */
  stop(): Promise<number | null>;
}

export const SAMPLE_INTERVAL_SECONDS = 1;

export function exporterArgs(root: string, nvmlLibrary?: string): string[] {
  return [
    ...NODE_FLAGS,
    path.join(root, 'dist', 'src', 'main.js'),
    '--kubelet.socket=none',
    '--web.listen-address=127.0.0.1:0',
    `--sample-interval=${SAMPLE_INTERVAL_SECONDS}s`,
    ...(nvmlLibrary ? [`--nvml.library=${nvmlLibrary}`] : []),
  ];
}

async function get(url: string, timeoutMs: number): Promise<{ status: number; body: string }> {
  const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
  return { status: res.status, body: await res.text() };
}

async function stopChild(child: ChildProcess): Promise<number | null> {
  if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
  const exited = once(child, 'exit') as Promise<[number | null]>;
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
  const [code] = await exited;
  clearTimeout(timer);
  return code;
}

/**
 * Starts it and waits until /readyz answers 200 (NVML initialised, a first sample taken).
 * Throws with the exporter's last log lines when it exits or does not get ready in time.
 */
export async function startExporter(opts: { root: string; nvmlLibrary?: string; readyTimeoutMs?: number }): Promise<RunningExporter> {
  const main = path.join(opts.root, 'dist', 'src', 'main.js');
  if (!existsSync(main)) throw new Error(`${main} is missing: build first (npm run gpu-check runs tsc -p tsconfig.json)`);
  const child = spawn(process.execPath, exporterArgs(opts.root, opts.nvmlLibrary), { cwd: opts.root, env: process.env, stdio: ['ignore', 'pipe', 'pipe'] });
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
  const tail = (): string => lines.slice(-15).join('\n');
  const deadline = Date.now() + (opts.readyTimeoutMs ?? 90_000);
  try {
    let port: number | undefined;
    let scanned = 0;
    while (port === undefined) {
      for (; scanned < lines.length; scanned++) {
        const l = lines[scanned]!;
        if (!l.includes('serving /metrics')) continue;
        port = (JSON.parse(l) as { port: number }).port;
        break;
      }
      if (port !== undefined) break;
      if (child.exitCode !== null) throw new Error(`the exporter exited ${child.exitCode} before serving:\n${tail()}`);
      if (Date.now() > deadline) throw new Error(`the exporter did not start serving in time:\n${tail()}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    const url = `http://127.0.0.1:${port}`;
    let reason = '';
    for (;;) {
      try {
        const r = await get(`${url}/readyz`, 5000);
        if (r.status === 200) break;
        reason = r.body.trim();
      } catch (err) {
        reason = (err as Error).message;
      }
      if (child.exitCode !== null) throw new Error(`the exporter exited ${child.exitCode}:\n${tail()}`);
      if (Date.now() > deadline) throw new Error(`the exporter did not get ready in time (/readyz: ${reason}):\n${tail()}`);
      await new Promise((r) => setTimeout(r, 250));
    }
    return {
      url,
      pid: child.pid!,
      logs: () => [...lines],
      async scrape() {
        const r = await get(`${url}/metrics`, 10_000);
        if (r.status !== 200) throw new Error(`/metrics answered ${r.status}`);
        return r.body;
      },
      stop: () => stopChild(child),
    };
  } catch (err) {
    await stopChild(child);
    throw err;
  }
}
