/**
 * The value table is the one place a value is declared: these checks tie it to the collectors
 * that read it, the families it exports and the simulator keys that drive it.
 */
import { describe, expect, it } from 'vitest';
import { collectorNamed, COLLECTORS } from '../src/collectors/index.js';
import { valuesOf } from '../src/collectors/declared.js';
import { GPM_METRICS } from '../src/collectors/gpm.js';
import { GPU_FAMILIES, NAMING_SCHEMES, familyName } from '../src/metrics/families.js';
import { VALUE_KEYS } from '../src/sample.js';
import { VALUES } from '../src/values/value-table.js';
import { simulatorKeys } from '../scripts/sim-keys.js';

/** Simulator keys no value reads directly, and what they are for. */
const SIM_KEYS_OF_NO_VALUE: Record<string, string> = {
  pci_device_id: 'GPU identity (gpu_info)',
  pci_subsystem_id: 'GPU identity',
  minor: 'GPU identity (device path /dev/nvidiaN)',
  clock_video: 'not exported',
  max_clock_video: 'not exported',
  proc_util_period_ms: 'process utilization samples (processes collector)',
  energy_start_mj: 'the energy counter at load (totalEnergyMillijoules)',
  nvlink_links: 'the nvlink collector reads only GPUs with links',
  events_supported: 'the event watch',
  gpm_supported: 'whether the gpm collector runs on the GPU',
  gpm_int_active: 'GPM metric not exported',
  gpm_dfma_tensor_active: 'GPM metric not exported',
  gpm_hmma_tensor_active: 'GPM metric not exported',
  gpm_imma_tensor_active: 'GPM metric not exported',
  gi: 'MIG GPU instance id',
  ci: 'MIG compute instance id',
};

const entries = Object.entries(VALUES) as [keyof typeof VALUES, (typeof VALUES)[keyof typeof VALUES]][];

describe('value table', () => {
  it('is the sample\'s key list and the source of every GPU family, in table order', () => {
    expect(VALUE_KEYS).toEqual(entries.map(([k]) => k));
    expect([...new Set(GPU_FAMILIES.map((f) => f.source))]).toEqual(VALUE_KEYS);
    for (const f of GPU_FAMILIES) expect(VALUES[f.source].families).toContainEqual(expect.objectContaining({ help: f.help, prometheus: f.prometheus }));
  });

  it('gives every value a collector of the registration list, and every collector in the list a value or code of its own', () => {
    const names = new Set(COLLECTORS.map((c) => c.name));
    for (const [key, v] of entries) expect(names.has(v.collector), `${key}: collector ${v.collector}`).toBe(true);
    for (const c of COLLECTORS) {
      expect(collectorNamed(c.name as Parameters<typeof collectorNamed>[0])).toBe(c);
      // processes fills the sample's process lists, mig_profiles its MIG profile table: not values
      if (c.name !== 'processes' && c.name !== 'mig_profiles') expect(valuesOf(c.name).length, `collector ${c.name} reads no value`).toBeGreaterThan(0);
    }
  });

  it('has unique family names in each naming scheme', () => {
    for (const scheme of NAMING_SCHEMES) {
      const seen = GPU_FAMILIES.map((f) => familyName(f, scheme).name);
      expect(seen.length, scheme).toBe(new Set(seen).size);
    }
  });

  it('lists the GPM metrics the gpm collector asks for, per instance exactly where the family has MIG series', () => {
    expect(GPM_METRICS.map((m) => m.key)).toEqual(entries.filter(([, v]) => v.read.kind === 'gpm').map(([k]) => k));
    for (const m of GPM_METRICS) {
      const perMig = VALUES[m.key].families.some((f) => f.entity !== 'gpu');
      expect(m.perInstance, m.key).toBe(perMig);
    }
  });

  it('names only keys the simulated library reads (GPU keys; MIG keys too for families with MIG series)', () => {
    const sim = simulatorKeys();
    for (const [key, v] of entries) {
      if (!('key' in v.sim)) continue;
      expect(sim.gpu, `${key}: gpu.N.${v.sim.key}`).toContain(v.sim.key);
      if (v.families.some((f) => f.entity !== 'gpu') && v.read.kind !== 'derived') expect(sim.mig, `${key}: mig.N.M.${v.sim.key}`).toContain(v.sim.key);
    }
  });

  it('accounts for every key of the simulator: read by a value or listed here with what it is for', () => {
    const named = new Set(entries.flatMap(([, v]) => ('key' in v.sim ? [v.sim.key] : [])));
    const sim = simulatorKeys();
    const unaccounted = [...new Set([...sim.gpu, ...sim.mig])].filter((k) => !named.has(k) && !(k in SIM_KEYS_OF_NO_VALUE));
    expect(unaccounted).toEqual([]);
    const stale = Object.keys(SIM_KEYS_OF_NO_VALUE).filter((k) => !sim.gpu.includes(k) && !sim.mig.includes(k));
    expect(stale).toEqual([]);
  });
});
