/**
 * Loads scenario files into the simulated NVML through the real binding and runs the real
 * collectors over them, in a process of its own so that a crash in the C code shows as this
 * process dying (test/fuzz.test.ts runs it). For each case file, two ways in:
 *   init:   the case is the scenario at nvmlInit;
 *   reload: NVML runs on a valid scenario, then the file is overwritten with the case while
 *           NVML is initialised (the library re-reads a changed file).
 * Each pass ticks the collectors and waits for events. stdout: `case <file>` before a case,
 * then `result <json>` after it, and `finished` at the end.
 *
 *   node --import tsx test/support/sim-fuzz-driver.ts <library> <valid scenario> <case files...>
 */
import { copyFileSync, mkdtempSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { enabledCollectors } from '../../src/collectors/index.js';
import { NvmlBinding } from '../../src/native/nvml-binding.js';
import { NvmlError } from '../../src/native/nvml-return.js';
import { Ticker } from '../../src/sampler/tick.js';
import { replaceScenarioFile } from '../../src/sim/scenario-file.js';

export interface CaseResult {
  file: string;
  /** nvmlInit on the case: 'ok' or the NVML return code name. */
  init: string;
  /** GPUs the first tick on the case saw (init path). */
  gpus?: number;
  /** After the case replaced a valid scenario under running NVML: GPUs the tick saw. */
  gpusAfterReload: number;
  /** GPUs of the valid scenario before the reload. */
  gpusBeforeReload: number;
}

const [library, validScenario, ...cases] = process.argv.slice(2);
if (!library || !validScenario) throw new Error('usage: sim-fuzz-driver <library> <valid scenario> <case files...>');

const nvml = new NvmlBinding({ libraryPath: library });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Ticks every collector and looks (without blocking) for events on every GPU that has them, as the event poller does. */
async function exercise(): Promise<number> {
  const ticker = new Ticker(nvml, enabledCollectors({}));
  let gpus = 0;
  try {
    for (let i = 0; i < 2; i++) gpus = ticker.tick().gpus.length;
    let set: unknown;
    try {
      set = nvml.createEventSet();
      for (let i = 0; i < nvml.deviceCount(); i++) {
        try {
          const d = nvml.deviceByIndex(i);
          nvml.registerEvents(d, nvml.supportedEventTypes(d), set);
        } catch (err) {
          if (!(err instanceof NvmlError)) throw err;
        }
      }
      for (let i = 0; i < 3; i++) nvml.waitForEvent(set, 0);
    } catch (err) {
      if (!(err instanceof NvmlError)) throw err;
    } finally {
      if (set !== undefined) nvml.freeEventSet(set);
    }
  } finally {
    ticker.close();
  }
  return gpus;
}

function initCode(): string {
  try {
    nvml.init();
    return 'ok';
  } catch (err) {
    if (err instanceof NvmlError) return err.codeName;
    throw err;
  }
}

const work = mkdtempSync(path.join(os.tmpdir(), 'kge-sim-fuzz-'));
const live = path.join(work, 'live.sim');

for (const file of cases) {
  process.stdout.write(`case ${file}\n`);
  const result: CaseResult = { file, init: '', gpusAfterReload: 0, gpusBeforeReload: 0 };

  process.env.KGE_SIM_STATE = file;
  result.init = initCode();
  if (result.init === 'ok') {
    result.gpus = await exercise();
    nvml.shutdown();
  }

  copyFileSync(validScenario, live);
  process.env.KGE_SIM_STATE = live;
  if (initCode() !== 'ok') throw new Error(`the valid scenario ${validScenario} did not initialise`);
  result.gpusBeforeReload = await exercise();
  await sleep(25); // the library looks at the file at most every 20 ms
  replaceScenarioFile(live, readFileSync(file));
  await sleep(25);
  result.gpusAfterReload = await exercise();
  nvml.shutdown();

  process.stdout.write(`result ${JSON.stringify(result)}\n`);
}
process.stdout.write('finished\n');
