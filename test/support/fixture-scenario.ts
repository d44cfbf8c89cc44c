import { mkdtempSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import koffi from 'koffi';
import { ROOT } from './exporter-process.js';
import { simulatedNode, type SimulatedNode } from '../../src/sim/harness.js';
import { replaceScenarioFile } from '../../src/sim/scenario-file.js';

/** How long write() keeps trying to have the library take a new scenario. */
const RELOAD_DEADLINE_MS = 2_000;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export interface FixtureScenario {
  /** The copy the library reads (KGE_SIM_STATE). */
  statePath: string;
  /** The scenario as shipped (after the `# kge-sim-omit:` line of `omit`, when given). */
  original: string;
  /** The simulated library for it (a variant without the symbols its `# kge-sim-omit:` line names). */
  node: SimulatedNode;
  /**
   * Writes the whole scenario and has the library of this process re-read it now
   * (kgeSimReload); resolves once it has. The library must be initialised.
   */
  write(text: string): Promise<void>;
  /** Replaces each `from` of the shipped scenario once (it must be there) and writes the result. */
  edit(...edits: [from: string, to: string][]): Promise<void>;
  /** Adds lines to the end of the scenario as it is now and writes it. */
  append(lines: string): Promise<void>;
  /** Puts the shipped scenario back if a test changed it. */
  restore(): Promise<void>;
}

export interface FixtureScenarioOptions {
  /** Where the scenario is shipped: test/fixtures (default) or scenarios/. */
  dir?: 'test/fixtures' | 'scenarios';
  /** Symbols the library is built without (an older driver): a `# kge-sim-omit:` line before the scenario. */
  omit?: readonly string[];
}

/**
 * A writable copy of test/fixtures/<name>.sim (or scenarios/<name>.sim), so tests can change it
 * while the simulated library runs in this process. The library re-reads a changed file at most
 * every 20 ms on its own; write() does not wait for that: it calls the library's kgeSimReload
 * (the same library the binding under test loaded: one dlopen per path and process), which
 * re-reads the file at once and returns its load generation. An exporter in a child process
 * has its own copy of the library: wait on what it serves instead.
 */
export function fixtureScenario(name: string, opts: FixtureScenarioOptions = {}): FixtureScenario {
  const dir = opts.dir ?? 'test/fixtures';
  const source = path.join(ROOT, dir, `${name}.sim`);
  const shipped = readFileSync(source, 'utf8');
  const original = opts.omit?.length ? `# kge-sim-omit: ${opts.omit.join(',')}\n${shipped}` : shipped;
  const statePath = path.join(mkdtempSync(path.join(os.tmpdir(), `kge-${name}-`)), `${name}.sim`);
  replaceScenarioFile(statePath, original);
  const node = simulatedNode(statePath);
  let reloadFn: (() => number) | undefined;
  const reload = (): number => (reloadFn ??= koffi.load(node.libraryPath).func('unsigned int kgeSimReload(void)') as () => number)();

  const write = async (text: string): Promise<void> => {
    const before = reload();
    const deadline = Date.now() + RELOAD_DEADLINE_MS;
    for (;;) {
      replaceScenarioFile(statePath, text);
      if (reload() !== before) return;
      // not taken: the library sees a change by file time and size, and a text of the same
      // size written within one tick of the file clock looks unchanged; write it again later
      if (Date.now() > deadline) throw new Error(`the simulated library did not re-read ${statePath} (an invalid scenario, or NVML not initialised?)`);
      await sleep(5);
    }
  };

  return {
    statePath,
    original,
    node,
    write,
    edit(...edits) {
      let text = original;
      for (const [from, to] of edits) {
        if (!text.includes(from)) throw new Error(`${dir}/${name}.sim has no "${from}"`);
        text = text.replace(from, to);
      }
      return write(text);
    },
    append(lines) {
      return write(readFileSync(statePath, 'utf8') + lines);
    },
    async restore() {
      if (readFileSync(statePath, 'utf8') !== original) await write(original);
    },
  };
}
