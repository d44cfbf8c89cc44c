import { EventType } from '../native/nvml-constants.js';
import type { GpuEvent } from './protocol.js';

/** Which device an event counts against: the GPU, or one of its MIG instances. */
export interface EventDevice {
  uuid: string;
  gpuInstanceId?: number;
  computeInstanceId?: number;
}

export interface XidCount extends EventDevice {
  xid: number;
  count: number;
}

export const HEALTH_EVENTS = ['single_bit_ecc', 'double_bit_ecc', 'gpu_unavailable'] as const;
export type HealthEvent = (typeof HEALTH_EVENTS)[number];

const EVENT_NAMES: ReadonlyMap<number, HealthEvent> = new Map([
  [Number(EventType.SINGLE_BIT_ECC), 'single_bit_ecc'],
  [Number(EventType.DOUBLE_BIT_ECC), 'double_bit_ecc'],
  [Number(EventType.GPU_UNAVAILABLE), 'gpu_unavailable'],
]);

/** What the health families read of the counts (the render stage never records). */
export interface EventCounts {
  xidCounts(): readonly XidCount[];
  /** All Xids of a GPU (including its MIG instances'); 0 for a GPU without any. */
  xidTotal(uuid: string): number;
  lastXidOf(uuid: string): { xid: number; atMs: number } | undefined;
  healthCount(uuid: string, event: HealthEvent): number;
}

/**
 * Counts events since the exporter started: Xids per device and code, all Xids per GPU, other
 * health events per GPU, and the last Xid per GPU. Counters only grow, so `increase()` alerts
 * fire once per burst and resolve.
 */
export class EventTally implements EventCounts {
  private readonly xids = new Map<string, XidCount>();
  private readonly xidTotals = new Map<string, number>();
  private readonly lastXid = new Map<string, { xid: number; atMs: number }>();
  private readonly health = new Map<string, Map<HealthEvent, number>>();

  record(e: GpuEvent): void {
    if (!e.uuid) return; // the device could not be named: logged by the caller, not counted against a GPU
    if (e.eventType === Number(EventType.XID_CRITICAL)) {
      const key = `${e.uuid}/${e.gpuInstanceId ?? ''}/${e.computeInstanceId ?? ''}/${e.data}`;
      const c = this.xids.get(key);
      if (c) c.count++;
      else {
        const entry: XidCount = { uuid: e.uuid, xid: e.data, count: 1 };
        if (e.gpuInstanceId !== undefined) entry.gpuInstanceId = e.gpuInstanceId;
        if (e.computeInstanceId !== undefined) entry.computeInstanceId = e.computeInstanceId;
        this.xids.set(key, entry);
      }
      this.xidTotals.set(e.uuid, (this.xidTotals.get(e.uuid) ?? 0) + 1);
      this.lastXid.set(e.uuid, { xid: e.data, atMs: e.atMs });
      return;
    }
    const name = EVENT_NAMES.get(e.eventType);
    if (!name) return;
    let m = this.health.get(e.uuid);
    if (!m) this.health.set(e.uuid, (m = new Map()));
    m.set(name, (m.get(name) ?? 0) + 1);
  }

  xidCounts(): readonly XidCount[] {
    return [...this.xids.values()];
  }

  /** All Xids of a GPU (including its MIG instances'); 0 for a GPU without any. */
  xidTotal(uuid: string): number {
    return this.xidTotals.get(uuid) ?? 0;
  }

  lastXidOf(uuid: string): { xid: number; atMs: number } | undefined {
    return this.lastXid.get(uuid);
  }

  healthCount(uuid: string, event: HealthEvent): number {
    return this.health.get(uuid)?.get(event) ?? 0;
  }
}
