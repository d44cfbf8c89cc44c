import type { Collector } from './collector.js';
import { declaredCollector } from './declared.js';
import { gpmCollector } from './gpm.js';
import { memoryErrorsCollector } from './memory-errors.js';
import { memoryCollector } from './memory.js';
import { migProfilesCollector } from './mig-profiles.js';
import { migCollector } from './mig.js';
import { nvlinkCollector } from './nvlink.js';
import { processesCollector } from './processes.js';
import { utilizationCollector } from './utilization.js';

/**
 * The registration list: every collector by its flag name (--collector.<name>), in the order a
 * tick runs them. A collector that only reads what the value table (src/values/value-table.ts)
 * assigns it is declared here in one line; the others have a file of their own.
 */
const COLLECTOR_TABLE = {
  mig: migCollector,
  mig_profiles: migProfilesCollector,
  utilization: utilizationCollector,
  gpm: gpmCollector,
  memory: memoryCollector,
  temperature: declaredCollector({ name: 'temperature', description: 'GPU and memory (HBM) temperature' }),
  power: declaredCollector({ name: 'power', description: 'Power draw, enforced power limit and total energy since driver load' }),
  clocks: declaredCollector({ name: 'clocks', description: 'SM, memory and graphics clocks and their maxima' }),
  fan: declaredCollector({ name: 'fan', description: 'Fan speed (absent on GPUs without a fan, e.g. SXM modules)' }),
  pstate: declaredCollector({ name: 'pstate', description: 'Performance state (P0 = 0 ... P15 = 15)' }),
  pcie: declaredCollector({ name: 'pcie', description: 'PCIe transmit and receive throughput (each read blocks the driver ~20 ms)' }),
  pcie_link: declaredCollector({ name: 'pcie_link', description: 'PCIe link generation and width, now and the most the GPU and its slot support (a link below its maximum is a hardware fault)' }),
  codec: declaredCollector({ name: 'codec', description: 'Video encoder and decoder utilization' }),
  throttle: declaredCollector({
    name: 'throttle',
    description: 'Clock event (throttle) reasons: why clocks are below their maximum (idle, power cap, thermal or power-brake slowdown, ...)',
  }),
  violation: declaredCollector({ name: 'violation', description: 'Time clocks were held down by the power and by the thermal limit since the driver loaded' }),
  ecc: declaredCollector({ name: 'ecc', description: 'Single- and double-bit ECC errors since the driver loaded (GPUs with ECC enabled)' }),
  // slow: runs once per --health.interval, its values carried in between
  memory_errors: memoryErrorsCollector,
  pcie_errors: declaredCollector({ name: 'pcie_errors', description: 'PCIe replay counter (link-level retries; a growing count points at a bad riser, slot or link)' }),
  nvlink: nvlinkCollector,
  processes: processesCollector,
} satisfies Record<string, Collector>;

/** A collector's flag name; the value table's `collector` fields are checked against it. */
export type CollectorName = keyof typeof COLLECTOR_TABLE;

export const COLLECTORS: readonly Collector[] = Object.entries(COLLECTOR_TABLE).map(([name, c]) => {
  if (c.name !== name) throw new Error(`collector table: the entry ${name} holds the collector ${c.name}`);
  return c;
});

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

/** The collector of a flag name. */
export function collectorNamed(name: CollectorName): Collector {
  return COLLECTOR_TABLE[name];
}
