import type { ContainerUsage, DeviceHolder, SampleAttribution } from '../attribution/attribution.js';
import { gpuPairs, holderPairs, migPairs, podPairs, type Pairs } from './device-labels.js';
import type { NamingScheme } from './families.js';

/**
 * The series label budget (--metrics.max-labels): hosted backends refuse series with more than
 * 30 labels (Mimir's and Grafana Cloud's default, the metric name counted). The labels the
 * exporter writes itself are bounded; only pod labels copied from pod metadata (`label_<key>`,
 * as many as the allowlist matches) are not, so those are what the budget trims: each series
 * keeps its pod labels in name order while they fit, and drops the rest.
 */

/** The most labels a device family adds to the device's own: (err_code, err_msg), (xid, err_msg). */
export const MAX_DIMENSION_LABELS = 2;

/** A holder with every label a holder can carry but pod labels: replica number, pod UID, DRA claim of a MIG device. */
const FULLEST_HOLDER: DeviceHolder = {
  namespace: 'n',
  pod: 'p',
  container: 'c',
  podUid: 'u',
  vgpu: '0',
  dra: { claimName: 'c', claimNamespace: 'n', driver: 'd', pool: 'p', device: 'd', migProfile: 'm', migUuid: 'm' },
};

/** The most labels a device series carries without pod labels, its name counted. */
function fixedLabels(scheme: NamingScheme): number {
  const gpu = gpuPairs(scheme, { index: 0, uuid: 'u', pciBusId: 'p', minor: 0, name: 'n' }, 'v', 'h');
  const mig = migPairs(scheme, gpu, { profile: 'p', gpuInstanceId: 0 } as Parameters<typeof migPairs>[2]);
  return 1 + mig.length + MAX_DIMENSION_LABELS + holderPairs(FULLEST_HOLDER).length;
}

/** The smallest --metrics.max-labels each scheme accepts: every label but pod labels must fit. */
export const MIN_SERIES_LABELS: Readonly<Record<NamingScheme, number>> = { dcgm: fixedLabels('dcgm'), prometheus: fixedLabels('prometheus') };

export interface BudgetedAttribution {
  attribution: SampleAttribution;
  /** Pod labels dropped: for each pod, the most left off one of its series, summed over pods. */
  droppedPodLabels: number;
}

/**
 * The attribution with each holder's and each process owner's pod labels trimmed so that no
 * series of the device exceeds `maxLabels` (its device labels, the most dimension labels a
 * family adds, the holder's own labels and the metric name counted). Devices are the label
 * pairs by UUID the families build on.
 */
export function budgetAttribution(attribution: SampleAttribution, devices: ReadonlyMap<string, Pairs>, maxLabels: number): BudgetedAttribution {
  const droppedByPod = new Map<string, number>();
  const note = (id: { namespace: string; pod: string }, dropped: number) => {
    const k = `${id.namespace}\u0000${id.pod}`;
    droppedByPod.set(k, Math.max(droppedByPod.get(k) ?? 0, dropped));
  };
  const trim = <T extends { podLabels?: readonly (readonly [string, string])[] }>(id: T & { namespace: string; pod: string }, fixed: number): T => {
    const labels = id.podLabels;
    const room = Math.max(0, maxLabels - fixed);
    if (!labels || labels.length <= room) return id;
    note(id, labels.length - room);
    return { ...id, podLabels: labels.slice(0, room) };
  };
  const holders = new Map<string, readonly DeviceHolder[]>();
  for (const [uuid, base] of devices) {
    const list = attribution.holdersOf(uuid);
    if (list.length === 0) continue;
    holders.set(
      uuid,
      list.map((h) => (h.podLabels?.length ? trim(h, 1 + base.length + MAX_DIMENSION_LABELS + holderPairs({ ...h, podLabels: [] }).length) : h)),
    );
  }
  const usage = attribution.usage.map((u): ContainerUsage => {
    const base = devices.get(u.deviceUuid);
    if (!u.owner?.podLabels?.length || !base) return u;
    return { ...u, owner: trim(u.owner, 1 + base.length + podPairs({ ...u.owner, podLabels: [] }, true).length) };
  });
  let dropped = 0;
  for (const n of droppedByPod.values()) dropped += n;
  if (dropped === 0) return { attribution, droppedPodLabels: 0 };
  return {
    attribution: { ...attribution, holdersOf: (uuid) => holders.get(uuid) ?? attribution.holdersOf(uuid), usage },
    droppedPodLabels: dropped,
  };
}
