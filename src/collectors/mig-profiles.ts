import type { Device, GpuInstanceProfile, NvmlBinding } from '../native/nvml-binding.js';
import type { MigProfileSample } from '../sample.js';
import { NvmlError } from '../native/nvml-return.js';
import type { Collector } from './collector.js';
import { migProfileFromName } from './mig.js';

const MIB = 1024 * 1024;
const STATE_KEY = 'mig_profiles';

/** NVML's profiles as plain samples: one per name (NVML's first), none without a name. */
export function profileSamples(profiles: readonly GpuInstanceProfile[]): MigProfileSample[] {
  const out: MigProfileSample[] = [];
  const seen = new Set<string>();
  for (const p of profiles) {
    // NVML names a profile as it names a MIG device: "MIG 1g.10gb"
    const profile = migProfileFromName(p.name);
    if (profile === 'unknown' || seen.has(profile) || p.sliceCount <= 0) continue;
    seen.add(profile);
    out.push({ profile, sliceCount: p.sliceCount, instanceCount: p.instanceCount, memoryBytes: p.memoryMiB * MIB });
  }
  return out;
}

function readProfiles(nvml: NvmlBinding, device: Device): MigProfileSample[] {
  return profileSamples(nvml.gpuInstanceProfiles(device));
}

/**
 * The MIG profile table of each MIG-enabled GPU, as NVML lists it. The table only changes with
 * the MIG mode, so it is read once when a GPU's MIG mode turns on (and again after a failed
 * read) and carried in every sample after that: no NVML call in a steady tick.
 */
export const migProfilesCollector: Collector = {
  name: 'mig_profiles',
  defaultEnabled: true,
  description: 'The MIG profiles each MIG-enabled GPU can be split into (memory, compute share, how many fit), read once per MIG mode change; GPUs of a known model get their model\'s table while MIG is off',
  needs: ['mig'],
  collect(reader, gpu) {
    if (gpu.sample.values.migModeEnabled !== 1) {
      gpu.state.delete(STATE_KEY);
      return;
    }
    let profiles = gpu.state.get(STATE_KEY) as MigProfileSample[] | undefined;
    if (!profiles) {
      let failed = false;
      reader.attempt(() => {
        try {
          profiles = readProfiles(reader.nvml, gpu.device);
        } catch (err) {
          failed = !(err instanceof NvmlError && err.notSupported);
          throw err;
        }
      });
      // NOT_SUPPORTED (an old driver without the call) is an answer too: none until the mode changes
      profiles ??= failed ? undefined : [];
      if (profiles) gpu.state.set(STATE_KEY, profiles);
    }
    if (profiles?.length) gpu.sample.migProfiles = profiles;
  },
};
