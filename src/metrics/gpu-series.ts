import type { Values } from '../sample.js';
import { deviceLabelSets, type Pairs } from './device-labels.js';
import { labelString, type RenderFamily } from './exposition.js';
import { familyName, GPU_FAMILIES, INFO_FAMILIES } from './families.js';
import { deviceError, type RenderContext } from './render-context.js';

/** Builds every GPU family from one sample. Families with no series are dropped. */
export function buildGpuFamilies(ctx: RenderContext): RenderFamily[] {
  const { sample, scheme, attribution, devices, unheld } = ctx;
  if (!sample) return [];
  /** A device's values, its label sets (one per holder), and label sets with one more pair (label dimensions). */
  type DeviceSet = { uuid: string; values: Values; labels: string[]; withPair: (name: string, value: string) => string[] };
  const gpuSets: DeviceSet[] = [];
  const migSets: DeviceSet[] = [];
  const deviceSet = (values: Values, base: Pairs, uuid: string): DeviceSet => {
    const holders = attribution.holdersOf(uuid);
    return { uuid, values, labels: deviceLabelSets(base, holders, unheld), withPair: (name, value) => deviceLabelSets([...base, [name, value]], holders, unheld) };
  };
  const info: RenderFamily = { name: INFO_FAMILIES.gpu.name, type: 'gauge', help: INFO_FAMILIES.gpu.help, series: [] };
  const migInfo: RenderFamily = { name: INFO_FAMILIES.mig.name, type: 'gauge', help: INFO_FAMILIES.mig.help, series: [] };

  for (const gpu of sample.gpus) {
    try {
      const base = devices.get(gpu.uuid)!;
      gpuSets.push(deviceSet(gpu.values, base, gpu.uuid));
      const infoPairs: Pairs =
        scheme === 'dcgm'
          ? base
          : [...base, ['model', gpu.name], ['pci_bus_id', gpu.pciBusId], ['device', `nvidia${gpu.minor}`], ['driver_version', sample.driverVersion]];
      info.series.push({ labels: labelString(infoPairs), value: 1 });
      for (const mig of gpu.mig) {
        const migBase = devices.get(mig.uuid)!;
        migSets.push(deviceSet(mig.values, migBase, mig.uuid));
        migInfo.series.push({
          labels: labelString([...migBase, ['mig_uuid', mig.uuid], ['compute_instance_id', String(mig.computeInstanceId)]]),
          value: 1,
        });
      }
    } catch (err) {
      throw deviceError(gpu.uuid, err);
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
      try {
        if (!def.labels) {
          const value = convert(raw);
          for (const l of set.labels) family.series.push({ labels: l, value });
          continue;
        }
        for (const { value: labelValue, of } of def.labels.values) {
          const value = convert(of(raw));
          for (const l of set.withPair(def.labels.name, labelValue)) family.series.push({ labels: l, value });
        }
      } catch (err) {
        throw deviceError(set.uuid, err);
      }
    }
    families.push(family);
  }
  return families;
}
