import type { SampleAttribution } from '../attribution/attribution.js';
import { labelString, type RenderFamily } from './exposition.js';
import { POD_FAMILIES, type PodFamily } from './families.js';
import { podPairs, type Pairs } from './gpu-series.js';

function family(def: PodFamily): RenderFamily {
  return { name: def.name, type: def.type, help: `${def.help} (${def.unit}).`, series: [] };
}

/**
 * Allocation and per-container use, from one sample's attribution. `devices` are the device
 * label pairs of the sample (deviceLabelPairs), as on the GPU families, so the two join on them.
 */
export function buildPodFamilies(devices: ReadonlyMap<string, Pairs>, attribution: SampleAttribution): RenderFamily[] {
  const allocated = family(POD_FAMILIES.allocated);
  for (const [uuid, base] of devices) {
    for (const h of attribution.holdersOf(uuid)) {
      if (h.share === undefined) continue;
      const pairs: Pairs = [...base, ...podPairs(h)];
      if (h.vgpu !== undefined) pairs.push(['vgpu', h.vgpu]);
      allocated.series.push({ labels: labelString(pairs), value: Number(h.share.toPrecision(15)) });
    }
  }
  const memory = family(POD_FAMILIES.memoryUsed);
  const sm = family(POD_FAMILIES.smUtilization);
  const processes = family(POD_FAMILIES.processes);
  for (const u of attribution.usage) {
    const base = devices.get(u.deviceUuid);
    if (!base) continue;
    const labels = labelString([...base, ...podPairs(u.owner, true)]);
    processes.series.push({ labels, value: u.processes });
    if (u.usedMemoryBytes !== undefined) memory.series.push({ labels, value: u.usedMemoryBytes });
    if (u.smUtilPercent !== undefined) sm.series.push({ labels, value: Number((u.smUtilPercent / 100).toPrecision(15)) });
  }
  return [allocated, memory, sm, processes];
}
