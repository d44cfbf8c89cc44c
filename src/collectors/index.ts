import { clocksCollector } from './clocks.js';
import { codecCollector } from './codec.js';
import type { Collector } from './collector.js';
import { eccCollector } from './ecc.js';
import { fanCollector } from './fan.js';
import { gpmCollector } from './gpm.js';
import { memoryErrorsCollector } from './memory-errors.js';
import { memoryCollector } from './memory.js';
import { migCollector } from './mig.js';
import { nvlinkCollector } from './nvlink.js';
import { pcieErrorsCollector } from './pcie-errors.js';
import { pcieCollector } from './pcie.js';
import { powerCollector } from './power.js';
import { processesCollector } from './processes.js';
import { pstateCollector } from './pstate.js';
import { temperatureCollector } from './temperature.js';
import { throttleCollector } from './throttle.js';
import { utilizationCollector } from './utilization.js';
import { violationCollector } from './violation.js';

/** The registration list: every collector, in the order a tick runs them. */
export const COLLECTORS: readonly Collector[] = [
  migCollector,
  utilizationCollector,
  gpmCollector,
  memoryCollector,
  temperatureCollector,
  powerCollector,
  clocksCollector,
  fanCollector,
  pstateCollector,
  pcieCollector,
  codecCollector,
  throttleCollector,
  violationCollector,
  eccCollector,
  // slow: runs once per --health.interval, its values carried in between
  memoryErrorsCollector,
  pcieErrorsCollector,
  nvlinkCollector,
  processesCollector,
];

/**
 * Collectors a flag set turns off while others that need them stay on: each entry is the
 * collector off and the ones on that read its output. Empty when the set is consistent.
 */
export function missingNeeds(enabled: Readonly<Record<string, boolean>>): { off: string; neededBy: string[] }[] {
  const on = (c: Collector) => enabled[c.name] ?? c.defaultEnabled;
  const out: { off: string; neededBy: string[] }[] = [];
  for (const c of COLLECTORS) {
    if (on(c)) continue;
    const neededBy = COLLECTORS.filter((d) => on(d) && d.needs?.includes(c.name)).map((d) => d.name);
    if (neededBy.length) out.push({ off: c.name, neededBy });
  }
  return out;
}

export function enabledCollectors(overrides: Readonly<Record<string, boolean>>): Collector[] {
  return COLLECTORS.filter((c) => overrides[c.name] ?? c.defaultEnabled);
}
