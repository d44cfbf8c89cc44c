import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root (where package.json and scenarios/ live), from src/ or dist/src/. */
export function repoRoot(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(path.join(dir, 'package.json')) && existsSync(path.join(dir, 'scenarios'))) return dir;
    const up = path.dirname(dir);
    if (up === dir) throw new Error('cannot find the kube-gpu-exporter repository root (package.json beside scenarios/)');
    dir = up;
  }
}

export interface SimulatedNode {
  /** The simulated libnvidia-ml.so.1 to load (a variant when the scenario omits symbols). */
  libraryPath: string;
  /** The scenario file; the library re-reads it when it changes. */
  statePath: string;
  omittedSymbols: string[];
}

const OMIT_DIRECTIVE = /^#\s*kge-sim-omit:\s*(.+)$/m;

/** Symbols a scenario asks to be compiled out (its `# kge-sim-omit:` line). */
export function scenarioOmits(statePath: string): string[] {
  const m = OMIT_DIRECTIVE.exec(readFileSync(statePath, 'utf8'));
  return m ? m[1]!.split(',').map((s) => s.trim()).filter(Boolean) : [];
}

/** Resolves a shipped scenario name (e.g. "h100x8") or a path to a scenario file. */
export function scenarioPath(nameOrPath: string): string {
  if (nameOrPath.includes('/') || nameOrPath.endsWith('.sim')) return path.resolve(nameOrPath);
  return path.join(repoRoot(), 'scenarios', `${nameOrPath}.sim`);
}

/** Builds (if needed) the simulated library for a scenario. */
export function simulatedNode(nameOrPath: string): SimulatedNode {
  const root = repoRoot();
  const statePath = scenarioPath(nameOrPath);
  if (!existsSync(statePath)) throw new Error(`scenario not found: ${statePath}`);
  const omitted = scenarioOmits(statePath);
  const build = path.join(root, 'scripts', 'build-sim.mjs');
  let libraryPath = path.join(root, 'native', 'sim', 'build', 'libnvidia-ml.so.1');
  const args = [build];
  if (omitted.length) {
    libraryPath = path.join(root, 'native', 'sim', 'build', `omit-${[...omitted].sort().join('_')}`, 'libnvidia-ml.so.1');
    args.push('--omit', omitted.join(','), '--out', libraryPath);
  }
  execFileSync(process.execPath, args, { stdio: ['ignore', 'ignore', 'inherit'] });
  return { libraryPath, statePath, omittedSymbols: omitted };
}
