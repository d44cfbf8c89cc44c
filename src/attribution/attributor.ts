import { compareText } from './compare-text.js';
import type { GpuSample, NodeSample, ProcessSample } from '../sample.js';
import type { ContainerUsage, DeviceHolder, PodIdentity, SampleAttribution } from './attribution.js';
import type { DeviceClaim, DeviceMap } from './device-map.js';
import { resolveDraAllocations, type DraDeviceLookup, type ResolvedDraAllocation } from './dra/resolve.js';

/** Who runs a host pid, as the process-owner resolver answers. */
export type ProcessOwnerAnswer =
  | { kind: 'pod'; podUid: string; containerId?: string; namespace?: string; pod?: string; container?: string }
  | { kind: 'host' }
  | { kind: 'unknown'; reason: string };

export interface ProcessOwners {
  ownerOf(pid: number): ProcessOwnerAnswer;
  retain(livePids: Iterable<number>): void;
}

export interface PodMetadataLookup {
  metadataOf(namespace: string, pod: string): { uid: string; labels: Readonly<Record<string, string>> } | undefined;
  /** Prometheus label name of a pod label key. */
  labelName(key: string): string;
}

export interface AttributorSources {
  /** The kubelet's current device map. */
  deviceMap(): DeviceMap;
  processOwners?: ProcessOwners;
  podMetadata?: PodMetadataLookup;
  /** The devices DRA drivers publish in ResourceSlices (--kubernetes.dra); without it DRA allocations stay unresolved. */
  draDevices?: DraDeviceLookup;
}

const MIG_SLICES = /(?:^|\.)(?:(\d+)c\.)?(\d+)g\./;

/**
 * Share of the GPU a MIG instance gets: its compute slices over the GPU's slice count
 * (the maximum number of MIG devices, 7 on A100/H100, 4 on A30). "1g.10gb" on an H100 is
 * 1/7; a compute instance "1c.3g.40gb" is 1/7 too.
 */
export function migShare(profile: string, maxSlices: number | undefined): number | undefined {
  const m = MIG_SLICES.exec(`${profile}.`);
  if (!m || !maxSlices) return undefined;
  const slices = Number(m[1] ?? m[2]);
  return slices > 0 && slices <= maxSlices ? slices / maxSlices : undefined;
}

interface DeviceInfo {
  isMig: boolean;
  profile?: string;
  maxSlices?: number;
}

/** Share of the whole GPU a claim holds: the device's share (1, or the MIG slice), split between its replicas. */
function claimShare(claim: DeviceClaim, device: DeviceInfo): number | undefined {
  const deviceShare = device.isMig ? migShare(device.profile ?? '', device.maxSlices) : 1;
  if (deviceShare === undefined) return undefined;
  if (claim.replica === undefined) return deviceShare;
  return claim.replicas ? deviceShare / claim.replicas : undefined;
}

/**
 * The attribution stage: joins a sample with the kubelet's device map (who holds which
 * device), the process owners (whose processes use it) and, when enabled, pod metadata.
 */
export class Attributor {
  constructor(private readonly sources: AttributorSources) {}

  attribute(sample: NodeSample): SampleAttribution {
    const map = this.sources.deviceMap();
    const devices = new Map<string, DeviceInfo>();
    for (const gpu of sample.gpus) {
      devices.set(gpu.uuid, { isMig: false });
      for (const mig of gpu.mig) devices.set(mig.uuid, { isMig: true, profile: mig.profile, maxSlices: gpu.maxMigDevices });
    }
    const holders = new Map<string, DeviceHolder[]>();
    let unknownDeviceIds = map.unparsedIds.length;
    for (const [uuid, claims] of map.claims) {
      const device = devices.get(uuid);
      if (!device) {
        unknownDeviceIds++; // a device of another node or one not answering: nothing to label
        continue;
      }
      holders.set(
        uuid,
        claims.map((c) => {
          const h: DeviceHolder = this.withMetadata({ namespace: c.namespace, pod: c.pod, container: c.container });
          if (c.replica !== undefined) h.vgpu = String(c.replica);
          const share = claimShare(c, device);
          if (share !== undefined) h.share = share;
          return h;
        }),
      );
    }
    const dra = resolveDraAllocations(map.draAllocations, this.sources.draDevices, sample);
    for (const [uuid, draHolders] of this.draHolders(dra.resolved, devices)) {
      const list = holders.get(uuid);
      if (list) list.push(...draHolders);
      else holders.set(uuid, draHolders);
    }
    const { usage, unplaced } = this.sources.processOwners ? this.usage(sample, this.sources.processOwners) : { usage: [], unplaced: 0 };
    return { holdersOf: (uuid) => holders.get(uuid) ?? [], usage, unplacedProcesses: unplaced, unknownDeviceIds, draUnresolvedDevices: dra.unresolvedDevices };
  }

  /**
   * Holders of devices allocated through DRA, by device UUID. The kubelet reports a claim to
   * every container that references it, so a claim shared by several pods gives the device
   * several holders. The device's share is split evenly between its allocations (distinct
   * claims, or shares of one device under consumable capacity), and each allocation's part
   * between the containers that hold it.
   */
  private draHolders(resolved: readonly ResolvedDraAllocation[], devices: ReadonlyMap<string, DeviceInfo>): Map<string, DeviceHolder[]> {
    const byDevice = new Map<string, ResolvedDraAllocation[]>();
    for (const r of resolved) {
      let list = byDevice.get(r.uuid);
      if (!list) byDevice.set(r.uuid, (list = []));
      list.push(r);
    }
    const out = new Map<string, DeviceHolder[]>();
    for (const [uuid, list] of byDevice) {
      const device = devices.get(uuid);
      const deviceShare = device?.isMig ? migShare(device.profile ?? '', device.maxSlices) : 1;
      const holdersOfAllocation = new Map<string, number>();
      for (const r of list) {
        const k = allocationKey(r);
        holdersOfAllocation.set(k, (holdersOfAllocation.get(k) ?? 0) + 1);
      }
      // a container holding several shares of the device through one claim is one holder (one label set), with their sum
      const holders = new Map<string, DeviceHolder>();
      for (const r of list) {
        const a = r.allocation;
        const share = deviceShare === undefined ? undefined : deviceShare / holdersOfAllocation.size / holdersOfAllocation.get(allocationKey(r))!;
        const key = `${a.namespace}\u0000${a.pod}\u0000${a.container}\u0000${a.claimNamespace}\u0000${a.claimName}`;
        const known = holders.get(key);
        if (known) {
          if (known.share !== undefined && share !== undefined) known.share += share;
          continue;
        }
        const h: DeviceHolder = this.withMetadata({ namespace: a.namespace, pod: a.pod, container: a.container });
        h.dra = { claimName: a.claimName, claimNamespace: a.claimNamespace, driver: a.driver, pool: a.pool, device: a.device };
        if (r.isMig) {
          if (r.migProfile !== undefined) h.dra.migProfile = r.migProfile;
          h.dra.migUuid = r.uuid;
        }
        if (share !== undefined) h.share = share;
        holders.set(key, h);
      }
      out.set(uuid, [...holders.values()]);
    }
    return out;
  }

  private withMetadata<T extends PodIdentity>(id: T): T {
    const meta = this.sources.podMetadata;
    if (!meta || !id.pod) return id;
    const m = meta.metadataOf(id.namespace, id.pod);
    if (!m) return id;
    id.podUid = m.uid;
    id.podLabels = this.labelPairsOf(m.labels, meta);
    return id;
  }

  /** Label pairs of a pod's labels, built once per labels object (the watcher keeps one while they do not change). */
  private readonly labelPairs = new WeakMap<object, readonly (readonly [string, string])[]>();
  private labelPairsOf(podLabels: Readonly<Record<string, string>>, meta: PodMetadataLookup): readonly (readonly [string, string])[] {
    let pairs = this.labelPairs.get(podLabels);
    if (pairs) return pairs;
    // keys that map to one label name (a.b, a_b) keep the first in key order: a series has each label once
    const labels = new Map<string, string>();
    for (const k of Object.keys(podLabels).sort()) {
      const name = meta.labelName(k);
      if (!labels.has(name)) labels.set(name, podLabels[k]!);
    }
    pairs = [...labels].sort((a, b) => compareText(a[0], b[0]));
    this.labelPairs.set(podLabels, pairs);
    return pairs;
  }

  /**
   * Per-container use. A process whose owner cannot be read (pid not visible: no hostPID or
   * not the host's /proc) is counted as unplaced, not passed off as a process outside pods.
   */
  private usage(sample: NodeSample, owners: ProcessOwners): { usage: ContainerUsage[]; unplaced: number } {
    const out = new Map<string, ContainerUsage>();
    const live: number[] = [];
    let unplaced = 0;
    const add = (deviceUuid: string, p: ProcessSample, smUtil: number | undefined) => {
      live.push(p.pid);
      const answer = owners.ownerOf(p.pid);
      if (answer.kind === 'unknown') {
        unplaced++;
        return;
      }
      const owner = this.ownerIdentity(answer);
      const key = `${deviceUuid}\u0000${owner ? `${owner.namespace}\u0000${owner.pod}\u0000${owner.container}\u0000${owner.podUid ?? ''}` : ''}`;
      let u = out.get(key);
      if (!u) out.set(key, (u = { deviceUuid, owner, processes: 0 }));
      u.processes++;
      if (p.usedMemoryBytes !== undefined) u.usedMemoryBytes = (u.usedMemoryBytes ?? 0) + p.usedMemoryBytes;
      if (smUtil !== undefined) u.smUtilPercent = (u.smUtilPercent ?? 0) + smUtil;
    };
    for (const gpu of sample.gpus) {
      const util = utilByPid(gpu);
      for (const p of gpu.processes ?? []) add(gpu.uuid, p, util?.get(p.pid) ?? (util ? 0 : undefined));
      for (const mig of gpu.mig) for (const p of mig.processes ?? []) add(mig.uuid, p, undefined);
    }
    owners.retain(live);
    return { usage: [...out.values()], unplaced };
  }

  private ownerIdentity(answer: ProcessOwnerAnswer): PodIdentity | undefined {
    if (answer.kind !== 'pod') return undefined;
    const id: PodIdentity = { namespace: answer.namespace ?? '', pod: answer.pod ?? '', container: answer.container ?? '', podUid: answer.podUid };
    const withMeta = this.withMetadata(id);
    withMeta.podUid = answer.podUid; // the cgroup's UID is authoritative for a running process
    return withMeta;
  }
}

/** One allocation of a device: a claim, or one share of the device within a claim. */
function allocationKey(r: ResolvedDraAllocation): string {
  const a = r.allocation;
  return `${a.claimNamespace}\u0000${a.claimName}\u0000${a.shareId ?? ''}`;
}

/**
 * SM utilization per pid from the samples of this tick; undefined when the GPU gave none
 * (not supported, MIG), so that "no data" is not reported as 0 %.
 */
function utilByPid(gpu: GpuSample): Map<number, number> | undefined {
  if (!gpu.processUtilization) return undefined;
  const m = new Map<number, number>();
  for (const s of gpu.processUtilization) m.set(s.pid, s.smUtilPercent);
  return m;
}
