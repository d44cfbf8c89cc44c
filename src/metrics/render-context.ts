import { NO_ATTRIBUTION, type SampleAttribution } from '../attribution/attribution.js';
import type { EventCounts } from '../events/event-tally.js';
import type { SeenGpu } from '../health/seen-gpus.js';
import type { NodeSample } from '../sample.js';
import { deviceLabelPairs, podPairs, type HostnameLabel, type Pairs } from './device-labels.js';
import type { NamingScheme } from './families.js';
import { budgetAttribution } from './label-budget.js';

/** The kubelet side, when pod attribution is on. */
export interface KubeletSeriesStatus {
  up: boolean;
  lastSuccessMs?: number;
  lastRefreshSeconds?: number;
  failures: number;
  pods: number;
}

/** The exporter's own state at render time, for its own families. */
export interface ExporterStatus {
  nvmlUp: boolean;
  skippedTicks: number;
  version: string;
  naming: string;
  /** --sample-interval, so a rule can tell a served sample that is too old. */
  sampleIntervalSeconds: number;
  kubelet?: KubeletSeriesStatus;
  /** Whether per-process attribution runs (the processes collector is on). */
  processAttribution: boolean;
  /** Set when the NVML event watch is on. */
  eventWatch?: { up: boolean; restarts: number };
  /** Set when pod metadata from the Kubernetes API is on. */
  podMetadataSynced?: boolean;
  /** Set when --kubernetes.dra=true: whether the ResourceSlice watch is in sync. */
  draSynced?: boolean;
  /** Set when a web config file is in use. */
  webConfig?: { lastReloadSuccessful: boolean; lastSuccessMs: number };
}

/**
 * Everything a family builder reads, built once per rendered sample: the sample, its attribution, the
 * device label pairs (built here once and shared by every builder, so the families join on them),
 * the event counts and GPUs seen since start, the naming scheme and node name, and the
 * exporter's own state. Builders only read it.
 */
export interface RenderContext {
  /** Undefined before the first sample. */
  readonly sample: NodeSample | undefined;
  readonly attribution: SampleAttribution;
  /** Identity label pairs by UUID: every GPU and MIG instance of the sample, and each GPU seen earlier that is missing now. */
  readonly devices: ReadonlyMap<string, Pairs>;
  /**
   * Pod labels of a device nobody holds: empty `container`, `namespace`, `pod` when pod
   * attribution is on (as dcgm-exporter writes them), so that a Prometheus scraping with
   * honor_labels does not fill them in with the exporter pod's own target labels; none otherwise.
   */
  readonly unheld: Pairs;
  /** Pod labels left off to keep series within --metrics.max-labels (see label-budget.ts). */
  readonly droppedPodLabels: number;
  /** GPUs seen since start by index, each with whether it answered in this sample. */
  readonly seenGpus: readonly SeenGpu[];
  readonly events: EventCounts;
  readonly scheme: NamingScheme;
  /** The Hostname (dcgm) or node (prometheus) label: NODE_NAME or the host name. */
  readonly hostname: string;
  readonly exporter: ExporterStatus;
}

export interface RenderContextInput {
  sample: NodeSample | undefined;
  scheme: NamingScheme;
  hostname: string;
  /** The node label's name in the dcgm scheme (default Hostname). */
  hostnameLabel?: HostnameLabel;
  attribution?: SampleAttribution;
  seenGpus?: readonly SeenGpu[];
  events?: EventCounts;
  exporter?: ExporterStatus;
  /** --metrics.max-labels; no budget when left out. */
  maxLabels?: number;
}

/** Counts of a node where no event was seen (the event watch off, or nothing happened). */
export const NO_EVENTS: EventCounts = {
  xidCounts: () => [],
  xidTotal: () => 0,
  lastXidOf: () => undefined,
  healthCount: () => 0,
};

const IDLE_EXPORTER: ExporterStatus = { nvmlUp: false, skippedTicks: 0, version: '', naming: '', sampleIntervalSeconds: 0, processAttribution: false };

/** Builds the context of one render; what is left out is empty (no pods, no events, no GPUs seen before). */
export function renderContext(input: RenderContextInput): RenderContext {
  const { sample, scheme, hostname } = input;
  const seenGpus = input.seenGpus ?? (sample?.gpus ?? []).map((g) => ({ gpu: g, answering: true }));
  const missing = seenGpus.filter((s) => !s.answering).map((s) => s.gpu);
  const devices = sample ? deviceLabelPairs(sample.gpus, missing, sample.driverVersion, scheme, hostname, input.hostnameLabel) : new Map<string, Pairs>();
  const budgeted = budgetAttribution(input.attribution ?? NO_ATTRIBUTION, devices, input.maxLabels ?? Infinity);
  return {
    sample,
    attribution: budgeted.attribution,
    droppedPodLabels: budgeted.droppedPodLabels,
    devices,
    unheld: input.exporter?.kubelet ? podPairs(undefined) : [],
    seenGpus,
    events: input.events ?? NO_EVENTS,
    scheme,
    hostname,
    exporter: input.exporter ?? IDLE_EXPORTER,
  };
}

/** A builder's failure on one device: the render stage logs which device it was. */
export class DeviceRenderError extends Error {
  constructor(
    readonly device: string,
    cause: unknown,
  ) {
    super(cause instanceof Error ? cause.message : String(cause), { cause });
    this.name = 'DeviceRenderError';
  }
}

/** Names the device an error was thrown for (once: an error already naming one keeps it). */
export function deviceError(device: string, err: unknown): DeviceRenderError {
  return err instanceof DeviceRenderError ? err : new DeviceRenderError(device, err);
}
