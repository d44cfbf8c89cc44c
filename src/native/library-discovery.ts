import { existsSync } from 'node:fs';
import path from 'node:path';

export const NVML_SONAME = 'libnvidia-ml.so.1';

/** Directories where driver installs put libnvidia-ml, host and GPU Operator layouts. */
const STANDARD_DIRS = [
  '/usr/lib/x86_64-linux-gnu',
  '/usr/lib/aarch64-linux-gnu',
  '/usr/lib64',
  '/usr/lib',
  '/usr/local/nvidia/lib64',
  '/usr/local/nvidia/lib',
];
/** The GPU Operator's driver container exposes its root here on the host. */
const OPERATOR_DRIVER_ROOT = '/run/nvidia/driver';

export interface LibraryCandidate {
  /** What to hand dlopen: an absolute path, or the bare SONAME for the loader path. */
  spec: string;
  /** Human description for the "not found" message. */
  where: string;
}

/**
 * The places to try, in order. An explicit path (flag or env) is the only candidate
 * when given: a user who names a library wants that one, not a silent fallback.
 */
export function libraryCandidates(explicitPath: string | undefined, driverRoot = OPERATOR_DRIVER_ROOT): LibraryCandidate[] {
  if (explicitPath) return [{ spec: explicitPath, where: explicitPath }];
  const candidates: LibraryCandidate[] = [
    { spec: NVML_SONAME, where: `${NVML_SONAME} on the dynamic loader path (LD_LIBRARY_PATH, ld.so.cache)` },
  ];
  for (const root of ['', driverRoot]) {
    for (const dir of STANDARD_DIRS) {
      const file = path.join(root || '/', dir, NVML_SONAME);
      candidates.push({ spec: file, where: file });
    }
  }
  return candidates;
}

export interface LoadAttempt {
  where: string;
  error: string;
}

export class NvmlLibraryNotFoundError extends Error {
  readonly attempts: LoadAttempt[];
  constructor(attempts: LoadAttempt[]) {
    super(
      `NVML library not found; tried: ${attempts.map((a) => `${a.where} (${a.error})`).join('; ')}`,
    );
    this.name = 'NvmlLibraryNotFoundError';
    this.attempts = attempts;
  }
}

/** Try each candidate with `open`; absolute paths that don't exist are skipped cheaply. */
export function openFirst<T>(candidates: LibraryCandidate[], open: (spec: string) => T): { lib: T; spec: string } {
  const attempts: LoadAttempt[] = [];
  for (const c of candidates) {
    if (path.isAbsolute(c.spec) && !existsSync(c.spec)) {
      attempts.push({ where: c.where, error: 'no such file' });
      continue;
    }
    try {
      return { lib: open(c.spec), spec: c.spec };
    } catch (err) {
      attempts.push({ where: c.where, error: firstLine(err) });
    }
  }
  throw new NvmlLibraryNotFoundError(attempts);
}

function firstLine(err: unknown): string {
  const msg = err instanceof Error ? err.message : String(err);
  return msg.split('\n')[0] ?? msg;
}
