import type { DeviceHolder, PodIdentity, SampleAttribution } from '../attribution/attribution.js';
import type { GpuSample, MigSample, NodeSample, Values } from '../sample.js';
import { labelString, type RenderFamily } from './exposition.js';
import { familyName, GPU_FAMILIES, INFO_FAMILIES, type NamingScheme } from './families.js';

export interface SeriesContext {
  scheme: NamingScheme;
  /** Hostname label (NODE_NAME or the host name). */
  hostname: string;
  attribution: SampleAttribution;
}

export type Pairs = [string, string][];

/** Identity labels of a GPU, as dcgm-exporter writes them or in Prometheus style. */
function gpuPairs(scheme: NamingScheme, gpu: GpuSample, driverVersion: string, hostname: string): Pairs {
  if (scheme === 'dcgm') {
    return [
      ['gpu', String(gpu.index)],
      ['UUID', gpu.uuid],
      ['pci_bus_id', gpu.pciBusId],
      ['device', `nvidia${gpu.minor}`],
      ['modelName', gpu.name],
      ['Hostname', hostname],
      ['DCGM_FI_DRIVER_VERSION', driverVersion],
    ];
  }
  return [
    ['gpu', String(gpu.index)],
    ['uuid', gpu.uuid],
    ['node', hostname],
  ];
}

function migPairs(scheme: NamingScheme, parent: Pairs, mig: MigSample): Pairs {
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

function holderPairs(h: DeviceHolder): Pairs {
  const pairs = podPairs(h);
  if (h.vgpu !== undefined) pairs.push(['vgpu', h.vgpu]);
  return pairs;
}

/** One label string per series of a device: one per holding container, or one without pod labels. */
export function deviceLabelSets(base: Pairs, holders: readonly DeviceHolder[]): string[] {
  if (holders.length === 0) return [labelString(base)];
  return holders.map((h) => labelString([...base, ...holderPairs(h)]));
}

/** Identity label pairs of every device in a sample, by UUID (GPUs and MIG instances). */
export function deviceLabelPairs(sample: NodeSample, scheme: NamingScheme, hostname: string): Map<string, Pairs> {
  const out = new Map<string, Pairs>();
  for (const gpu of sample.gpus) {
    const base = gpuPairs(scheme, gpu, sample.driverVersion, hostname);
    out.set(gpu.uuid, base);
    for (const mig of gpu.mig) out.set(mig.uuid, migPairs(scheme, base, mig));
  }
  return out;
}

/** Builds every GPU family from one sample. Families with no series are dropped. */
export function buildGpuFamilies(sample: NodeSample, ctx: SeriesContext): RenderFamily[] {
  const { scheme, hostname, attribution } = ctx;
  /** A device's values, its label sets (one per holder), and label sets with one more pair (label dimensions). */
  type DeviceSet = { values: Values; labels: string[]; withPair: (name: string, value: string) => string[] };
  const gpuSets: DeviceSet[] = [];
  const migSets: DeviceSet[] = [];
  const deviceSet = (values: Values, base: Pairs, uuid: string): DeviceSet => {
    const holders = attribution.holdersOf(uuid);
    return { values, labels: deviceLabelSets(base, holders), withPair: (name, value) => deviceLabelSets([...base, [name, value]], holders) };
  };
  const info: RenderFamily = { name: INFO_FAMILIES.gpu.name, type: 'gauge', help: INFO_FAMILIES.gpu.help, series: [] };
  const migInfo: RenderFamily = { name: INFO_FAMILIES.mig.name, type: 'gauge', help: INFO_FAMILIES.mig.help, series: [] };

  for (const gpu of sample.gpus) {
    const base = gpuPairs(scheme, gpu, sample.driverVersion, hostname);
    gpuSets.push(deviceSet(gpu.values, base, gpu.uuid));
    const infoPairs: Pairs =
      scheme === 'dcgm'
        ? base
        : [...base, ['model', gpu.name], ['pci_bus_id', gpu.pciBusId], ['device', `nvidia${gpu.minor}`], ['driver_version', sample.driverVersion]];
    info.series.push({ labels: labelString(infoPairs), value: 1 });
    for (const mig of gpu.mig) {
      const migBase = migPairs(scheme, base, mig);
      migSets.push(deviceSet(mig.values, migBase, mig.uuid));
      migInfo.series.push({
        labels: labelString([...migBase, ['mig_uuid', mig.uuid], ['compute_instance_id', String(mig.computeInstanceId)]]),
        value: 1,
      });
    }
  }

  const families: RenderFamily[] = [info, migInfo];
  for (const def of GPU_FAMILIES) {
    const naming = familyName(def, scheme);
    const family: RenderFamily = { name: naming.name, type: def.type, help: `${def.help} (${naming.unit}).`, series: [] };
    const convert = (raw: number): number => {
      const v = raw * naming.scale;
      // 15 significant digits drop binary noise from unit scaling (75198 mW -> 75.198, not 75.19800000000001)
      return naming.integer ? Math.round(v) : Number(v.toPrecision(15));
    };
    const sets = def.entity === 'gpu' ? gpuSets : def.entity === 'mig' ? migSets : [...gpuSets, ...migSets];
    for (const set of sets) {
      const raw = set.values[def.source];
      if (raw === undefined) continue;
      if (!def.labels) {
        const value = convert(raw);
        for (const l of set.labels) family.series.push({ labels: l, value });
        continue;
      }
      for (const { value: labelValue, of } of def.labels.values) {
        const value = convert(of(raw));
        for (const l of set.withPair(def.labels.name, labelValue)) family.series.push({ labels: l, value });
      }
    }
    families.push(family);
  }
  return families;
}
