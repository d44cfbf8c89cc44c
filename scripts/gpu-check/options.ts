/** Command-line options of `npm run gpu-check -- [options]`. */
import type { PhaseName } from './run-data.js';

export interface Options {
  /** Passed to the exporter's --nvml.library (and loaded by the preflight). */
  nvmlLibrary?: string;
  /** The nvidia-smi to run; default: the one on PATH. */
  nvidiaSmi?: string;
  /** The python3 that runs pynvml_read.py and the torch load. */
  python: string;
  /** Save every raw reading and scrape of the run here. */
  record?: string;
  /** Compare a recording instead of a live GPU (no GPU needed). */
  replay?: string;
  phaseSeconds: Record<PhaseName, number>;
  help: boolean;
}

export const DEFAULT_PHASE_SECONDS: Record<PhaseName, number> = { idle: 20, load: 30, after: 20 };
export const MIN_PHASE_SECONDS = 5;
export const MAX_PHASE_SECONDS = 60;

export class UsageError extends Error {}

export const USAGE = `Usage: npm run gpu-check -- [options]
  Compares every family the compiled exporter exposes on this host's GPUs with nvidia-smi and
  pynvml, idle, under a load it starts, and idle again. Exit 0: all within tolerance; 1: some
  row failed; 2: bad options; 3: no NVIDIA GPU or driver.

  --nvml-library PATH   libnvidia-ml.so.1 to use (the exporter's --nvml.library)
  --nvidia-smi PATH     the nvidia-smi to run (default: from PATH)
  --python PATH         python3 with pynvml (nvidia-ml-py) and, for the load, torch (default: python3)
  --record DIR          save every raw reference output and exporter scrape of the run in DIR
  --phase-seconds N     length of each phase in seconds (N, or IDLE,LOAD,AFTER; ${MIN_PHASE_SECONDS}-${MAX_PHASE_SECONDS}; default ${DEFAULT_PHASE_SECONDS.idle},${DEFAULT_PHASE_SECONDS.load},${DEFAULT_PHASE_SECONDS.after})
  --replay DIR          compare a recording made with --record (no GPU needed)
  --help                this text`;

function phaseSeconds(raw: string): Record<PhaseName, number> {
  const parts = raw.split(',').map((p) => p.trim());
  if (parts.length !== 1 && parts.length !== 3) throw new UsageError(`--phase-seconds takes N or IDLE,LOAD,AFTER, got ${JSON.stringify(raw)}`);
  const values = parts.map((p) => {
    const n = Number(p);
    if (!/^\d+$/.test(p) || n < MIN_PHASE_SECONDS || n > MAX_PHASE_SECONDS) {
      throw new UsageError(`--phase-seconds: each phase is a whole number of seconds from ${MIN_PHASE_SECONDS} to ${MAX_PHASE_SECONDS}, got ${JSON.stringify(p)}`);
    }
    return n;
  });
  const [idle, load, after] = values.length === 1 ? [values[0]!, values[0]!, values[0]!] : values;
  return { idle: idle!, load: load!, after: after! };
}

export function parseOptions(argv: readonly string[]): Options {
  const opts: Options = { python: 'python3', phaseSeconds: { ...DEFAULT_PHASE_SECONDS }, help: false };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const eq = arg.indexOf('=');
    const name = arg.startsWith('--') && eq > 0 ? arg.slice(0, eq) : arg;
    const value = (): string => {
      const v = eq > 0 && arg.startsWith('--') ? arg.slice(eq + 1) : argv[++i];
      if (v === undefined || v === '') throw new UsageError(`${name} needs a value`);
      return v;
    };
    switch (name) {
      case '--nvml-library': opts.nvmlLibrary = value(); break;
      case '--nvidia-smi': opts.nvidiaSmi = value(); break;
      case '--python': opts.python = value(); break;
      case '--record': opts.record = value(); break;
      case '--replay': opts.replay = value(); break;
      case '--phase-seconds': opts.phaseSeconds = phaseSeconds(value()); break;
      case '--help': case '-h': opts.help = true; break;
      default: throw new UsageError(`unknown option ${JSON.stringify(arg)}`);
    }
  }
  return opts;
}
