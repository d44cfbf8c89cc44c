import { afterAll, afterEach, beforeAll } from 'vitest';
import { NvmlBinding } from '../../src/native/nvml-binding.js';
import type { FixtureScenario } from './fixture-scenario.js';

/**
 * The real koffi binding on the simulated library of a fixture scenario, for the tests of one
 * file: initialised before them (the library reads the scenario's copy), shut down after them,
 * and the shipped scenario put back after each test that changed it. Call at the top of the file.
 */
export function scenarioBinding(scenario: FixtureScenario): () => NvmlBinding {
  let nvml: NvmlBinding | undefined;
  beforeAll(() => {
    process.env.KGE_SIM_STATE = scenario.statePath;
    nvml = new NvmlBinding({ libraryPath: scenario.node.libraryPath });
    nvml.init();
  });
  afterAll(() => nvml?.shutdown());
  afterEach(() => scenario.restore());
  return () => {
    if (!nvml) throw new Error('the binding is initialised in beforeAll: use it inside a test');
    return nvml;
  };
}
