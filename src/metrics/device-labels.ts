import type { DeviceHolder, PodIdentity } from '../attribution/attribution.js';
import type { GpuIdentity, GpuSample, MigSample } from '../sample.js';
import { labelString } from './exposition.js';
import type { NamingScheme } from './families.js';

export type Pairs = [string, string][];

/** The node label's name in the dcgm scheme (--dcgm.hostname-label). */
export type HostnameLabel = 'Hostname' | 'hostname';

/** Identity labels of a GPU, as dcgm-exporter writes them or in Prometheus style. */
export function gpuPairs(scheme: NamingScheme, gpu: GpuIdentity, driverVersion: string, hostname: string, hostnameLabel: HostnameLabel = 'Hostname'): Pairs {
  if (scheme === 'dcgm') {
    return [
      ['gpu', String(gpu.index)],
      ['UUID', gpu.uuid],
      ['pci_bus_id', gpu.pciBusId],
      ['device', `nvidia${gpu.minor}`],
      ['modelName', gpu.name],
      [hostnameLabel, hostname],
      ['DCGM_FI_DRIVER_VERSION', driverVersion],
    ];
  }
  return [
    ['gpu', String(gpu.index)],
    ['uuid', gpu.uuid],
    ['node', hostname],
  ];
}

/** A MIG instance's labels: its GPU's, then the instance's profile and GPU instance id. */
export function migPairs(scheme: NamingScheme, parent: Pairs, mig: MigSample): Pairs {
  return scheme === 'dcgm'
    ? [...parent, ['GPU_I_PROFILE', mig.profile], ['GPU_I_ID', String(mig.gpuInstanceId)]]
    : [...parent, ['gpu_instance_id', String(mig.gpuInstanceId)], ['mig_profile', mig.profile]];
}

/** container, namespace, pod as dcgm-exporter writes them, then pod_uid and pod labels when known. */
export function podPairs(id: PodIdentity | undefined, withUid = false): Pairs {
  const pairs: Pairs = [
    ['container', id?.container ?? ''],
    ['namespace', id?.namespace ?? ''],
    ['pod', id?.pod ?? ''],
  ];
  if (withUid || id?.podUid !== undefined) pairs.push(['pod_uid', id?.podUid ?? '']);
  for (const [k, v] of id?.podLabels ?? []) pairs.push([k, v]);
  return pairs;
}

/**
 * A holder's pod labels, then its replica number on a shared GPU, then, for a device
 * allocated through DRA, the claim and device as dcgm-exporter's DRA mode labels them.
 */
export function holderPairs(h: DeviceHolder): Pairs {
  const pairs = podPairs(h);
  if (h.vgpu !== undefined) pairs.push(['vgpu', h.vgpu]);
  const dra = h.dra;
  if (dra) {
    pairs.push(
      ['dra_claim_name', dra.claimName],
      ['dra_claim_namespace', dra.claimNamespace],
      ['dra_driver_name', dra.driver],
      ['dra_pool_name', dra.pool],
      ['dra_device_name', dra.device],
    );
    if (dra.migUuid !== undefined) pairs.push(['dra_mig_profile', dra.migProfile ?? ''], ['dra_mig_device_uuid', dra.migUuid]);
  }
  return pairs;
}

/** One label string per series of a device: one per holding container, or one with the `unheld` pod labels. */
export function deviceLabelSets(base: Pairs, holders: readonly DeviceHolder[], unheld: Pairs = []): string[] {
  if (holders.length === 0) return [labelString(unheld.length ? [...base, ...unheld] : base)];
  return holders.map((h) => labelString([...base, ...holderPairs(h)]));
}

/**
 * Identity label pairs of every device, by UUID: each GPU of the sample and its MIG instances,
 * then the GPUs seen earlier that do not answer now (whole GPUs only: their instances are unknown).
 */
export function deviceLabelPairs(
  gpus: readonly GpuSample[],
  missing: readonly GpuIdentity[],
  driverVersion: string,
  scheme: NamingScheme,
  hostname: string,
  hostnameLabel: HostnameLabel = 'Hostname',
): Map<string, Pairs> {
  const out = new Map<string, Pairs>();
  for (const gpu of gpus) {
    const base = gpuPairs(scheme, gpu, driverVersion, hostname, hostnameLabel);
    out.set(gpu.uuid, base);
    for (const mig of gpu.mig) out.set(mig.uuid, migPairs(scheme, base, mig));
  }
  for (const gpu of missing) if (!out.has(gpu.uuid)) out.set(gpu.uuid, gpuPairs(scheme, gpu, driverVersion, hostname, hostnameLabel));
  return out;
}
