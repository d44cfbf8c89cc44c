/**
 * The load the check puts on one GPU (or MIG instance): half-precision matrix products in
 * PyTorch when python3 has torch, else a CUDA program (load.cu) built with nvcc. Either prints
 * one JSON "ready" line with its pid once it computes, and ends on SIGTERM.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { failure, findExecutable, runCommand } from './proc.js';

export interface Load {
  kind: 'torch' | 'cuda';
  pid: number;
  /** What the load said when ready (device name, ...). */
  ready: Record<string, unknown>;
  /** Ends it: SIGTERM, SIGKILL after 15 s. 'exited' or 'killed'. */
  stop(): Promise<'exited' | 'killed'>;
}

export type LoadResult = { ok: true; load: Load } | { ok: false; reason: string };

async function stop(child: ChildProcess): Promise<'exited' | 'killed'> {
  if (child.exitCode !== null || child.signalCode !== null) return 'exited';
  const exited = once(child, 'exit');
  child.kill('SIGTERM');
  let killed = false;
  const timer = setTimeout(() => {
    killed = true;
    child.kill('SIGKILL');
  }, 15_000);
  await exited;
  clearTimeout(timer);
  return killed ? 'killed' : 'exited';
}

/** Spawns a load and waits for its ready line; a load that exits or says it cannot run is a reason. */
function launch(kind: Load['kind'], cmd: string, args: string[], env: NodeJS.ProcessEnv, readyTimeoutMs: number): Promise<LoadResult> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { env, stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    // the load keeps its stdout open; what it prints after the ready line is not read
    let settled = false;
    const settle = (r: LoadResult): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve(r);
    };
    const timer = setTimeout(() => {
      void stop(child);
      settle({ ok: false, reason: `${kind} load not ready after ${readyTimeoutMs / 1000} s` });
    }, readyTimeoutMs);
    child.on('error', (e) => settle({ ok: false, reason: `${kind} load: ${e.message}` }));
    child.stderr.on('data', (d: Buffer) => (err = (err + d.toString()).slice(-4000)));
    child.stdout.on('data', (d: Buffer) => {
      if (settled) return;
      out += d.toString();
      let nl;
      while ((nl = out.indexOf('\n')) >= 0) {
        const line = out.slice(0, nl).trim();
        out = out.slice(nl + 1);
        let msg: Record<string, unknown>;
        try {
          msg = JSON.parse(line) as Record<string, unknown>;
        } catch {
          continue; // a library's chatter before the ready line
        }
        if (typeof msg !== 'object' || msg === null || !('ready' in msg)) continue;
        if (msg.ready !== true) {
          settle({ ok: false, reason: `${kind} load: ${String(msg.error ?? 'not ready')}` });
          return;
        }
        settle({ ok: true, load: { kind, pid: child.pid!, ready: msg, stop: () => stop(child) } });
        return;
      }
      out = out.slice(-4000);
    });
    child.on('exit', (code, signal) => {
      const last = err.trim().split('\n').pop() ?? '';
      settle({ ok: false, reason: `${kind} load exited ${code ?? signal} before it was ready${last ? `: ${last}` : ''}` });
    });
  });
}

/**
 * Starts the load on `device` (a GPU-… or MIG-… UUID, as CUDA_VISIBLE_DEVICES). Tries torch,
 * then nvcc; the reasons of both when neither runs.
 */
export async function startLoad(opts: { python: string; device: string; seconds: number; here: string; budgetMs: number }): Promise<LoadResult> {
  const env = { ...process.env, CUDA_VISIBLE_DEVICES: opts.device, CUDA_DEVICE_ORDER: 'PCI_BUS_ID' };
  const reasons: string[] = [];
  const end = Date.now() + opts.budgetMs;
  const left = (most: number): number => Math.max(1000, Math.min(most, end - Date.now()));
  const python = findExecutable(opts.python);
  if (python) {
    const r = await launch('torch', python, [path.join(opts.here, 'load_torch.py'), '--seconds', String(opts.seconds)], env, left(90_000));
    if (r.ok) return r;
    reasons.push(r.reason);
  } else {
    reasons.push(`${opts.python} not found`);
  }
  const nvcc = findExecutable('nvcc') ?? findExecutable('/usr/local/cuda/bin/nvcc');
  if (!nvcc) {
    reasons.push('nvcc not found');
    return { ok: false, reason: reasons.join('; ') };
  }
  const dir = mkdtempSync(path.join(os.tmpdir(), 'gpu-check-load-'));
  const bin = path.join(dir, 'gpu-check-load');
  const built = await runCommand(nvcc, ['-O2', '-o', bin, path.join(opts.here, 'load.cu')], { timeoutMs: left(120_000) });
  const cleanup = (): void => rmSync(dir, { recursive: true, force: true });
  if (built.code !== 0) {
    cleanup();
    reasons.push(failure('nvcc load.cu', built));
    return { ok: false, reason: reasons.join('; ') };
  }
  const r = await launch('cuda', bin, [String(opts.seconds)], env, left(30_000));
  if (r.ok) {
    const stopLoad = r.load.stop;
    r.load.stop = async () => {
      const how = await stopLoad();
      cleanup();
      return how;
    };
    return r;
  }
  cleanup();
  reasons.push(r.reason);
  return { ok: false, reason: reasons.join('; ') };
}
