import { holderPairs, podPairs } from './device-labels.js';
import { labelString, type RenderFamily } from './exposition.js';
import { POD_FAMILIES, type PodFamily } from './families.js';
import { deviceError, type RenderContext } from './render-context.js';

function family(def: PodFamily): RenderFamily {
  return { name: def.name, type: def.type, help: `${def.help} (${def.unit}).`, series: [] };
}

/**
 * Allocation and per-container use, from one sample's attribution, on the device label pairs
 * of the GPU families, so the two join on them.
 */
export function buildPodFamilies(ctx: RenderContext): RenderFamily[] {
  const { devices, attribution } = ctx;
  const allocated = family(POD_FAMILIES.allocated);
  for (const [uuid, base] of devices) {
    try {
      for (const h of attribution.holdersOf(uuid)) {
        if (h.share === undefined) continue;
        allocated.series.push({ labels: labelString([...base, ...holderPairs(h)]), value: Number(h.share.toPrecision(15)) });
      }
    } catch (err) {
      throw deviceError(uuid, err);
    }
  }
  const memory = family(POD_FAMILIES.memoryUsed);
  const sm = family(POD_FAMILIES.smUtilization);
  const processes = family(POD_FAMILIES.processes);
  for (const u of attribution.usage) {
    const base = devices.get(u.deviceUuid);
    if (!base) continue;
    try {
      const labels = labelString([...base, ...podPairs(u.owner, true)]);
      processes.series.push({ labels, value: u.processes });
      if (u.usedMemoryBytes !== undefined) memory.series.push({ labels, value: u.usedMemoryBytes });
      if (u.smUtilPercent !== undefined) sm.series.push({ labels, value: Number((u.smUtilPercent / 100).toPrecision(15)) });
    } catch (err) {
      throw deviceError(u.deviceUuid, err);
    }
  }
  return [allocated, memory, sm, processes];
}
