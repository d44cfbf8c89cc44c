import type { GpuSample, MigProfileSample } from '../sample.js';
import type { Pairs } from './device-labels.js';
import { labelString, type RenderFamily } from './exposition.js';
import { MIG_PROFILE_FAMILIES } from './families.js';
import { modelMigProfiles } from './mig-profile-models.js';
import { deviceError, type RenderContext } from './render-context.js';

/** The collector whose samples carry NVML's tables; off, no profile families at all. */
const COLLECTOR = 'mig_profiles';

type Source = 'nvml' | 'model_table';

/** A GPU's profile table and where it came from: NVML's while MIG mode is on, else its model's. */
export function profileTable(gpu: GpuSample): { source: Source; profiles: readonly MigProfileSample[] } | undefined {
  if (gpu.migProfiles?.length) return { source: 'nvml', profiles: gpu.migProfiles };
  const known = modelMigProfiles(gpu.name, gpu.values.fbTotalBytes);
  return known ? { source: 'model_table', profiles: known } : undefined;
}

/** The MIG profile table of every GPU that has one (see MIG_PROFILE_FAMILIES). */
export function buildMigProfileFamilies(ctx: RenderContext): RenderFamily[] {
  const { sample, devices, scheme } = ctx;
  if (!sample?.collectors.some((c) => c.name === COLLECTOR)) return [];
  const family = (f: (typeof MIG_PROFILE_FAMILIES)[keyof typeof MIG_PROFILE_FAMILIES]): RenderFamily => ({ name: f.name, type: f.type, help: f.help, series: [] });
  const memory = family(MIG_PROFILE_FAMILIES.memory);
  const compute = family(MIG_PROFILE_FAMILIES.compute);
  const instances = family(MIG_PROFILE_FAMILIES.instances);
  const profileLabel = scheme === 'dcgm' ? 'GPU_I_PROFILE' : 'mig_profile';
  for (const gpu of sample.gpus) {
    try {
      const table = profileTable(gpu);
      if (!table) continue;
      const slices = Math.max(...table.profiles.map((p) => p.sliceCount));
      const base = devices.get(gpu.uuid)!;
      for (const p of table.profiles) {
        const labels = labelString([...base, [profileLabel, p.profile], ['source', table.source]] as Pairs);
        memory.series.push({ labels, value: p.memoryBytes });
        compute.series.push({ labels, value: p.sliceCount / slices });
        instances.series.push({ labels, value: p.instanceCount });
      }
    } catch (err) {
      throw deviceError(gpu.uuid, err);
    }
  }
  return [memory, compute, instances].filter((f) => f.series.length > 0);
}
