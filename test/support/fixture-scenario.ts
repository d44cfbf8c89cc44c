import { mkdtempSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ROOT } from './exporter-process.js';
import { replaceScenarioFile } from '../../src/sim/scenario-file.js';

/** The simulated library looks at its scenario file at most every 20 ms; this leaves room. */
const RELOAD_WAIT_MS = 80;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export interface FixtureScenario {
  /** The copy the library reads (KGE_SIM_STATE). */
  statePath: string;
  /** The fixture as shipped. */
  original: string;
  /** Writes the whole scenario and waits until the library has re-read it. */
  write(text: string): Promise<void>;
  /** Replaces each `from` of the fixture once (it must be there) and writes the result. */
  edit(...edits: [from: string, to: string][]): Promise<void>;
  /** Puts the fixture back if a test changed it. */
  restore(): Promise<void>;
}

/** A writable copy of test/fixtures/<name>.sim, so tests can change it while the library runs. */
export function fixtureScenario(name: string): FixtureScenario {
  const original = readFileSync(path.join(ROOT, 'test', 'fixtures', `${name}.sim`), 'utf8');
  const statePath = path.join(mkdtempSync(path.join(os.tmpdir(), `kge-${name}-`)), `${name}.sim`);
  replaceScenarioFile(statePath, original);
  const write = async (text: string): Promise<void> => {
    replaceScenarioFile(statePath, text);
    await sleep(RELOAD_WAIT_MS);
  };
  return {
    statePath,
    original,
    write,
    edit(...edits) {
      let text = original;
      for (const [from, to] of edits) {
        if (!text.includes(from)) throw new Error(`test/fixtures/${name}.sim has no "${from}"`);
        text = text.replace(from, to);
      }
      return write(text);
    },
    async restore() {
      if (readFileSync(statePath, 'utf8') !== original) await write(original);
    },
  };
}
