import type { Logger } from 'pino';
import type { ContainerUsage, DeviceHolder } from '../attribution/attribution.js';
import { xidMessage } from '../events/xid.js';
import { GPU_FAMILIES } from '../metrics/families.js';
import type { RenderContext } from '../metrics/render-context.js';
import type { GpuIdentity, GpuSample, MigSample, ValueKey, Values } from '../sample.js';
import { BusyWindow, type WindowedUtilization } from './busy-window.js';

/**
 * The node at a glance, as plain JSON: what the node page (`/`) shows and `/api/v1/node` serves.
 * Built from the render context of each rendered sample (the same sample, attribution, events
 * and exporter state the metric families read), so the page and /metrics never disagree.
 * Every field is always present; `null` means unknown or not applicable. docs/node-page.md
 * documents each field (a test keeps the two equal).
 */
export interface NodeView {
  /** Exporter version. */
  version: string;
  /** The node name (the Hostname / node label of the series). */
  node: string;
  /** Wall-clock ms when this view was served. */
  servedAtMs: number;
  /** Whether /readyz answers 200, and why not. */
  ready: { ok: boolean; reason: string | null };
  /** The window utilization is averaged over, seconds. */
  utilizationWindowSeconds: number;
  /** Below this utilization (ratio) over the window an allocated device counts as idle (the GpuAllocatedIdle alert's threshold). */
  idleUtilizationRatio: number;
  /** The sample shown; null before the first one. */
  sample: SampleView | null;
  exporter: ExporterView;
  /** Every GPU seen since start (and any NVML lists that never answered), by index. */
  gpus: GpuView[];
}

export interface SampleView {
  takenAtMs: number;
  /** How old the sample was when this view was served, seconds. */
  ageSeconds: number;
  /** --sample-interval, seconds. */
  intervalSeconds: number;
  /** How long the sampling tick took, seconds. */
  tickSeconds: number;
  driverVersion: string;
}

export interface ExporterView {
  nvmlUp: boolean;
  /** The device enumeration error of the sample, if any. */
  enumerationError: string | null;
  /** null when pod attribution is off (--kubelet.socket=none). */
  kubelet: { up: boolean; pods: number; refreshFailures: number; lastSuccessMs: number | null } | null;
  /** null when the NVML event watch is off. */
  eventWatchUp: boolean | null;
  /** Collectors that hit an error in the sample, with the first error. */
  collectorsFailing: { name: string; error: string | null }[];
  gpusNotAnswering: number;
}

export type ThrottleKind = 'harmless' | 'performance' | 'protection';

export interface HolderView {
  namespace: string;
  pod: string;
  container: string;
  /** Replica number on a time-sliced or MPS GPU. */
  replica: string | null;
  /** Share of the whole GPU allocated (1, 1/replicas, the MIG slice). */
  share: number | null;
  /** Allocated and below idleUtilizationRatio over the window; null while utilization is unknown. */
  idle: boolean | null;
  /** `namespace/name` of the DRA ResourceClaim, for devices allocated through DRA. */
  draClaim: string | null;
}

export interface UsageView {
  /** null for processes outside any pod. */
  namespace: string | null;
  pod: string | null;
  container: string | null;
  processes: number;
  memoryUsedBytes: number | null;
  smUtilization: number | null;
}

export interface HealthView {
  lastXid: { xid: number; message: string; atMs: number } | null;
  xidEvents: number;
  doubleBitEcc: { volatile: number | null; aggregate: number | null; events: number };
  rowRemapPending: boolean | null;
  rowRemapFailure: boolean | null;
  retiredPagesPending: boolean | null;
}

interface DeviceCommon {
  utilization: number | null;
  utilizationWindowSeconds: number | null;
  memoryUsedBytes: number | null;
  memoryTotalBytes: number | null;
  holders: HolderView[];
  usage: UsageView[];
}

export interface GpuView extends DeviceCommon {
  index: number;
  uuid: string | null;
  model: string | null;
  pciBusId: string | null;
  answering: boolean;
  /** Why it does not answer. */
  error: string | null;
  temperatureCelsius: number | null;
  powerWatts: number | null;
  powerLimitWatts: number | null;
  throttleReasons: { reason: string; kind: ThrottleKind }[];
  health: HealthView;
  mig: MigView[];
}

export interface MigView extends DeviceCommon {
  uuid: string;
  profile: string;
  gpuInstanceId: number;
  computeInstanceId: number;
}

/** Window of the utilization, as the alerts and dashboards use rate(...[1m]). */
export const UTILIZATION_WINDOW_MS = 60_000;
/** deploy/rules/settings.yaml idle_utilization_ratio (a test keeps them equal). */
export const IDLE_UTILIZATION_RATIO = 0.05;

/** Scale of each value to the unit of its Prometheus-scheme family (watts, bytes, ratio, ...). */
const PROMETHEUS_SCALE = new Map<ValueKey, number>();
for (const f of GPU_FAMILIES) if (!f.labels && !PROMETHEUS_SCALE.has(f.source)) PROMETHEUS_SCALE.set(f.source, f.prometheus.scale);

/** A value in its Prometheus family's unit, as gpu-series.ts converts it; null when not sampled. */
function valueOf(values: Values | undefined, key: ValueKey): number | null {
  const raw = values?.[key];
  if (raw === undefined || !Number.isFinite(raw)) return null;
  return Number((raw * (PROMETHEUS_SCALE.get(key) ?? 1)).toPrecision(15));
}

function flagOf(values: Values | undefined, key: ValueKey): boolean | null {
  const v = valueOf(values, key);
  return v === null ? null : v !== 0;
}

/** The reasons of gpu_clock_event_reason_active, each with its bit test. */
const THROTTLE_REASONS = GPU_FAMILIES.find((f) => f.source === 'clocksEventReasons' && f.labels?.name === 'reason')!.labels!.values;
/** What each reason means for the work (the family's help text says the same). */
const THROTTLE_KINDS: Readonly<Record<string, ThrottleKind>> = {
  gpu_idle: 'harmless',
  applications_clocks_setting: 'harmless',
  display_clock_setting: 'harmless',
  sw_power_cap: 'performance',
  sw_thermal_slowdown: 'performance',
  sync_boost: 'performance',
  hw_slowdown: 'protection',
  hw_thermal_slowdown: 'protection',
  hw_power_brake_slowdown: 'protection',
};

function throttleReasons(values: Values | undefined): GpuView['throttleReasons'] {
  const raw = values?.clocksEventReasons;
  if (raw === undefined) return [];
  return THROTTLE_REASONS.filter((r) => r.of(raw) === 1).map((r) => ({ reason: r.value, kind: THROTTLE_KINDS[r.value] ?? 'performance' }));
}

function holderView(h: DeviceHolder, util: WindowedUtilization | undefined): HolderView {
  return {
    namespace: h.namespace,
    pod: h.pod,
    container: h.container,
    replica: h.vgpu ?? null,
    share: h.share === undefined ? null : Number(h.share.toPrecision(15)),
    idle: util ? util.ratio < IDLE_UTILIZATION_RATIO : null,
    draClaim: h.dra ? `${h.dra.claimNamespace}/${h.dra.claimName}` : null,
  };
}

function usageView(u: ContainerUsage): UsageView {
  return {
    namespace: u.owner?.namespace ?? null,
    pod: u.owner?.pod ?? null,
    container: u.owner?.container ?? null,
    processes: u.processes,
    memoryUsedBytes: u.usedMemoryBytes ?? null,
    smUtilization: u.smUtilPercent === undefined ? null : Number((u.smUtilPercent / 100).toPrecision(15)),
  };
}

/** The view of one render context, without what changes at serving time (age, readiness). */
function buildView(ctx: RenderContext, busy: BusyWindow): Omit<NodeView, 'servedAtMs' | 'ready'> {
  const { sample, attribution, events, exporter } = ctx;
  const usageOf = new Map<string, UsageView[]>();
  for (const u of attribution.usage) {
    let list = usageOf.get(u.deviceUuid);
    if (!list) usageOf.set(u.deviceUuid, (list = []));
    list.push(usageView(u));
  }
  const device = (uuid: string | null, values: Values | undefined): DeviceCommon => {
    const util = uuid && values ? busy.utilization(uuid) : undefined;
    return {
      utilization: util?.ratio ?? null,
      utilizationWindowSeconds: util?.windowSeconds ?? null,
      memoryUsedBytes: valueOf(values, 'fbUsedBytes'),
      memoryTotalBytes: valueOf(values, 'fbTotalBytes'),
      holders: uuid ? attribution.holdersOf(uuid).map((h) => holderView(h, util)) : [],
      usage: uuid ? (usageOf.get(uuid) ?? []) : [],
    };
  };
  const migView = (mig: MigSample): MigView => ({
    uuid: mig.uuid,
    profile: mig.profile,
    gpuInstanceId: mig.gpuInstanceId,
    computeInstanceId: mig.computeInstanceId,
    ...device(mig.uuid, mig.values),
  });
  const health = (uuid: string | null, values: Values | undefined): HealthView => {
    const last = uuid ? events.lastXidOf(uuid) : undefined;
    return {
      lastXid: last ? { xid: last.xid, message: xidMessage(last.xid), atMs: last.atMs } : null,
      xidEvents: uuid ? events.xidTotal(uuid) : 0,
      doubleBitEcc: { volatile: valueOf(values, 'eccDbeVolatile'), aggregate: valueOf(values, 'eccDbeAggregate'), events: uuid ? events.healthCount(uuid, 'double_bit_ecc') : 0 },
      rowRemapPending: flagOf(values, 'remappedRowsPending'),
      rowRemapFailure: flagOf(values, 'remappedRowsFailure'),
      retiredPagesPending: flagOf(values, 'retiredPagesPending'),
    };
  };
  const gpuView = (id: Partial<GpuIdentity> & { index: number }, gpu: GpuSample | undefined, error: string | null): GpuView => {
    const uuid = id.uuid ?? null;
    const values = gpu?.values;
    return {
      index: id.index,
      uuid,
      model: id.name ?? null,
      pciBusId: id.pciBusId ?? null,
      answering: gpu !== undefined,
      error,
      ...device(uuid, values),
      temperatureCelsius: valueOf(values, 'gpuTempCelsius'),
      powerWatts: valueOf(values, 'powerUsageMilliwatts'),
      powerLimitWatts: valueOf(values, 'powerLimitMilliwatts'),
      throttleReasons: throttleReasons(values),
      health: health(uuid, values),
      mig: (gpu?.mig ?? []).map(migView),
    };
  };

  const byUuid = new Map((sample?.gpus ?? []).map((g) => [g.uuid, g]));
  const lost = sample?.lostGpus ?? [];
  const gpus: GpuView[] = [];
  const listed = new Set<string>();
  for (const { gpu: id, answering } of ctx.seenGpus) {
    listed.add(id.uuid);
    const gpu = answering ? byUuid.get(id.uuid) : undefined;
    const why = lost.find((l) => l.uuid === id.uuid)?.error ?? 'no longer listed by NVML';
    gpus.push(gpuView(id, gpu, gpu ? null : why));
  }
  for (const g of sample?.gpus ?? []) if (!listed.has(g.uuid)) gpus.push(gpuView(g, g, null));
  // GPUs NVML lists that have not answered once since start: known by index only
  for (const l of lost) if (!(l.uuid && listed.has(l.uuid)) && !gpus.some((g) => g.index === l.index)) gpus.push(gpuView({ index: l.index, ...(l.uuid ? { uuid: l.uuid } : {}) }, undefined, l.error));
  gpus.sort((a, b) => a.index - b.index);

  const k = exporter.kubelet;
  return {
    version: exporter.version,
    node: ctx.hostname,
    utilizationWindowSeconds: busy.windowMs / 1000,
    idleUtilizationRatio: IDLE_UTILIZATION_RATIO,
    sample: sample
      ? { takenAtMs: sample.takenAtMs, ageSeconds: 0, intervalSeconds: exporter.sampleIntervalSeconds, tickSeconds: Number(sample.tickSeconds.toPrecision(6)), driverVersion: sample.driverVersion }
      : null,
    exporter: {
      nvmlUp: exporter.nvmlUp,
      enumerationError: sample?.enumerationError ?? null,
      kubelet: k ? { up: k.up, pods: k.pods, refreshFailures: k.failures, lastSuccessMs: k.lastSuccessMs ?? null } : null,
      eventWatchUp: exporter.eventWatch ? exporter.eventWatch.up : null,
      collectorsFailing: (sample?.collectors ?? []).filter((c) => !c.success).map((c) => ({ name: c.name, error: c.error ?? null })),
      gpusNotAnswering: gpus.filter((g) => !g.answering).length,
    },
    gpus,
  };
}

/**
 * The node view beside the exposition: the render stage's context factory hands it each
 * context it builds (observe), which records the busy-seconds readings of the utilization
 * window; the view itself is built when asked for (at most once per context), so a node nobody
 * looks at pays only for the readings. Neither call throws into its caller: a context that
 * cannot be turned into a view keeps the last good view, logged once until it recovers.
 */
export class NodeViews {
  private readonly busy: BusyWindow;
  private context: RenderContext | undefined;
  private built: Omit<NodeView, 'servedAtMs' | 'ready'> | undefined;
  private lastGood: Omit<NodeView, 'servedAtMs' | 'ready'> | undefined;
  private failing = false;

  constructor(
    private readonly log: Logger,
    windowMs = UTILIZATION_WINDOW_MS,
  ) {
    this.busy = new BusyWindow(windowMs);
  }

  /** A context the render stage built: its sample's busy seconds join the window. */
  observe(ctx: RenderContext): void {
    try {
      if (ctx.sample) this.busy.record(ctx.sample);
      this.context = ctx;
      this.built = undefined;
    } catch (err) {
      this.failed(err);
    }
  }

  /** The view of the newest context observed (undefined before any), with its age at `nowMs` and the readiness given. */
  view(nowMs: number, ready: { ok: boolean; reason?: string | undefined }): NodeView | undefined {
    if (!this.built && this.context) {
      try {
        this.built = buildView(this.context, this.busy);
        this.lastGood = this.built;
        if (this.failing) {
          this.failing = false;
          this.log.info('node view recovered');
        }
      } catch (err) {
        this.failed(err);
      }
    }
    const base = this.built ?? this.lastGood;
    if (!base) return undefined;
    const sample = base.sample ? { ...base.sample, ageSeconds: Number(Math.max(0, (nowMs - base.sample.takenAtMs) / 1000).toFixed(3)) } : null;
    return { ...base, servedAtMs: nowMs, ready: { ok: ready.ok, reason: ready.ok ? null : (ready.reason ?? null) }, sample };
  }

  private failed(err: unknown): void {
    if (this.failing) return;
    this.failing = true;
    this.log.error({ err: err instanceof Error ? err.message : String(err) }, 'node view failing; the node page serves its last good view');
  }
}
