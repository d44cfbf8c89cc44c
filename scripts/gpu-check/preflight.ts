/**
 * Is there an NVIDIA GPU and driver to check? nvidia-smi must be there and list a GPU, and
 * libnvidia-ml.so.1 must load and initialise (nvmlInit_v2, then nvmlShutdown: nothing changes
 * on the GPU). Any "no" is one line for stderr, and the check exits 3.
 */
import koffi from 'koffi';
import { libraryCandidates, openFirst } from '../../src/native/library-discovery.js';
import { failure, findExecutable, runCommand } from './proc.js';
import { parseList, type ListedGpu } from './smi-csv.js';

export type Preflight =
  | { ok: true; nvidiaSmi: string; listing: string; gpus: ListedGpu[]; nvmlLibrary: string }
  | { ok: false; reason: string };

/** The nvidia-smi to run, or the one line saying it is not there. */
export function findNvidiaSmi(given: string | undefined, envPath = process.env.PATH ?? ''): { path: string } | { reason: string } {
  const found = findExecutable(given ?? 'nvidia-smi', envPath);
  if (!found) return { reason: `no NVIDIA GPU or driver: nvidia-smi not found (${given ? `no executable at ${given}` : 'not on PATH'})` };
  return { path: found };
}

/** nvmlInit_v2 and nvmlShutdown through koffi; an error text, or undefined when NVML works. */
export function tryNvml(library: string | undefined): { library: string } | { error: string } {
  let lib: koffi.IKoffiLib;
  let spec: string;
  try {
    ({ lib, spec } = openFirst(libraryCandidates(library), (s) => koffi.load(s)));
  } catch (err) {
    return { error: (err as Error).message.split('\n')[0]! };
  }
  try {
    const init = lib.func('int nvmlInit_v2()') as () => number;
    const shutdown = lib.func('int nvmlShutdown()') as () => number;
    const errorString = lib.func('const char *nvmlErrorString(int result)') as (c: number) => string;
    const rc = init();
    if (rc !== 0) return { error: `${spec}: nvmlInit_v2 returned ${rc} (${errorString(rc)})` };
    shutdown();
    return { library: spec };
  } catch (err) {
    return { error: `${spec}: ${(err as Error).message.split('\n')[0]}` };
  } finally {
    try {
      lib.unload();
    } catch {
      /* stays loaded: harmless */
    }
  }
}

export async function preflight(opts: { nvidiaSmi?: string; nvmlLibrary?: string; envPath?: string }): Promise<Preflight> {
  const smi = findNvidiaSmi(opts.nvidiaSmi, opts.envPath);
  if ('reason' in smi) return { ok: false, reason: smi.reason };
  const smiPath = smi.path;
  const r = await runCommand(smiPath, ['-L'], { timeoutMs: 60_000 });
  const out = `${r.stdout}\n${r.stderr}`;
  if (/No devices (were )?found/i.test(out)) return { ok: false, reason: 'no NVIDIA GPU or driver: nvidia-smi lists no GPU' };
  if (r.code !== 0) return { ok: false, reason: `no NVIDIA GPU or driver: ${failure('nvidia-smi -L', r)}` };
  const gpus = parseList(r.stdout);
  if (gpus.length === 0) return { ok: false, reason: 'no NVIDIA GPU or driver: nvidia-smi lists no GPU' };
  const nvml = tryNvml(opts.nvmlLibrary);
  if ('error' in nvml) return { ok: false, reason: `libnvidia-ml.so.1 cannot be loaded: ${nvml.error}` };
  return { ok: true, nvidiaSmi: smiPath, listing: r.stdout, gpus, nvmlLibrary: nvml.library };
}
