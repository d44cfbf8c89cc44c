import { HEALTH_EVENTS } from '../events/event-tally.js';
import { xidMessage } from '../events/xid.js';
import { deviceLabelSets, type Pairs } from './device-labels.js';
import { labelString, type RenderFamily } from './exposition.js';
import { EVENT_FAMILIES } from './families.js';
import { deviceError, type RenderContext } from './render-context.js';

function family(def: { name: string; type: 'gauge' | 'counter'; help: string }): RenderFamily {
  return { name: def.name, type: def.type, help: def.help, series: [] };
}

/**
 * Xid and health-event families and the answering state of every GPU seen since start.
 * Device labels (and pod labels of the holders) are those of the GPU families; GPUs that
 * stopped answering keep their series, so an Xid 79 is still seen when its GPU is gone.
 */
export function buildHealthFamilies(ctx: RenderContext): RenderFamily[] {
  const { sample, devices, attribution, events: tally, scheme } = ctx;
  if (!sample) return [];
  const labelsOf = (uuid: string, extra: Pairs = []): string[] => {
    const base = devices.get(uuid);
    return base ? deviceLabelSets([...base, ...extra], attribution.holdersOf(uuid), ctx.unheld) : [];
  };
  const migUuid = (parent: string, gi?: number, ci?: number): string => {
    if (gi === undefined) return parent;
    const gpu = sample.gpus.find((g) => g.uuid === parent);
    const mig = gpu?.mig.find((m) => m.gpuInstanceId === gi && (ci === undefined || m.computeInstanceId === ci));
    return mig?.uuid ?? parent;
  };

  const last = family(scheme === 'dcgm' ? EVENT_FAMILIES.lastXid.dcgm : EVENT_FAMILIES.lastXid.prometheus);
  const xidByGpu = family(EVENT_FAMILIES.xidEvents);
  const health = family(EVENT_FAMILIES.healthEvents);
  const answering = family(EVENT_FAMILIES.answering);
  for (const { gpu, answering: ok } of ctx.seenGpus) {
    try {
      const l = tally.lastXidOf(gpu.uuid);
      const extra: Pairs = l ? [['err_code', String(l.xid)], ['err_msg', xidMessage(l.xid)]] : [];
      for (const labels of labelsOf(gpu.uuid, extra)) last.series.push({ labels, value: l?.xid ?? 0 });
      for (const labels of labelsOf(gpu.uuid)) xidByGpu.series.push({ labels, value: tally.xidTotal(gpu.uuid) });
      for (const event of HEALTH_EVENTS) {
        for (const labels of labelsOf(gpu.uuid, [['event', event]])) health.series.push({ labels, value: tally.healthCount(gpu.uuid, event) });
      }
      answering.series.push({ labels: labelString(devices.get(gpu.uuid)!), value: ok ? 1 : 0 });
    } catch (err) {
      throw deviceError(gpu.uuid, err);
    }
  }
  const xids = family(EVENT_FAMILIES.xidErrors);
  for (const c of tally.xidCounts()) {
    try {
      for (const labels of labelsOf(migUuid(c.uuid, c.gpuInstanceId, c.computeInstanceId), [['xid', String(c.xid)], ['err_msg', xidMessage(c.xid)]])) {
        xids.series.push({ labels, value: c.count });
      }
    } catch (err) {
      throw deviceError(c.uuid, err);
    }
  }
  return [last, xidByGpu, xids, health, answering];
}
