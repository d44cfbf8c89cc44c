import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const SIM_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', 'native', 'sim');

/** Every `#define NAME(X) ...` of the simulator's sources, its body with line continuations joined. */
function keyMacros(): Map<string, string> {
  const out = new Map<string, string>();
  for (const file of readdirSync(SIM_DIR)) {
    if (!/\.(c|h)$/.test(file)) continue;
    const text = readFileSync(path.join(SIM_DIR, file), 'utf8').replace(/\\\r?\n/g, ' ');
    for (const m of text.matchAll(/^#define\s+(\w+)\(X\)\s+(.*)$/gm)) out.set(m[1]!, m[2]!);
  }
  return out;
}

function expand(macros: Map<string, string>, name: string, seen: Set<string> = new Set()): string[] {
  const body = macros.get(name);
  if (body === undefined) throw new Error(`native/sim has no #define ${name}(X)`);
  if (seen.has(name)) throw new Error(`#define ${name}(X) includes itself`);
  const keys: string[] = [];
  for (const m of body.matchAll(/\b(X|\w+)\((\w+)\)/g)) {
    if (m[1] === 'X') keys.push(m[2]!);
    else if (m[2] === 'X') keys.push(...expand(macros, m[1]!, new Set([...seen, name])));
  }
  return keys;
}

/**
 * The scenario keys the simulated library reads, from its X-macro lists: `gpu.N.<key>` (and
 * `gpu.<key>` for every GPU) and `mig.N.M.<key>`.
 */
export function simulatorKeys(): { gpu: string[]; mig: string[] } {
  const macros = keyMacros();
  return { gpu: expand(macros, 'GPU_NUM_KEYS'), mig: expand(macros, 'MIG_NUM_KEYS') };
}
