/** Runs a command to completion with a deadline; never throws (a failure is in the result). */
import { spawn } from 'node:child_process';
import { accessSync, constants, statSync } from 'node:fs';
import path from 'node:path';

export interface CommandResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** The spawn error (ENOENT, EACCES), when the command could not start. */
  error?: string;
  timedOut: boolean;
}

export function runCommand(cmd: string, args: readonly string[], opts: { timeoutMs: number; env?: NodeJS.ProcessEnv }): Promise<CommandResult> {
  return new Promise((resolve) => {
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    let settled = false;
    const child = spawn(cmd, args, { env: opts.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'] });
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, opts.timeoutMs);
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const done = (r: Omit<CommandResult, 'stdout' | 'stderr' | 'timedOut'>): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve({ ...r, stdout, stderr, timedOut });
    };
    child.on('error', (err) => done({ code: null, signal: null, error: err.message }));
    child.on('close', (code, signal) => done({ code, signal }));
  });
}

/** What went wrong, in one line, for a failed command. */
export function failure(what: string, r: CommandResult): string {
  if (r.error) return `${what}: ${r.error}`;
  if (r.timedOut) return `${what}: no answer in time`;
  const first = `${r.stderr}\n${r.stdout}`.split('\n').map((l) => l.trim()).find(Boolean) ?? '';
  return `${what} exited ${r.code ?? r.signal}${first ? `: ${first}` : ''}`;
}

function executable(file: string): boolean {
  try {
    if (!statSync(file).isFile()) return false;
    accessSync(file, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** An executable by name on PATH (like `command -v`), or a path given directly. */
export function findExecutable(nameOrPath: string, envPath = process.env.PATH ?? ''): string | undefined {
  if (nameOrPath.includes('/')) return executable(nameOrPath) ? path.resolve(nameOrPath) : undefined;
  for (const dir of envPath.split(':')) {
    if (!dir) continue;
    const f = path.join(dir, nameOrPath);
    if (executable(f)) return f;
  }
  return undefined;
}
