import type { Logger } from 'pino';
import { buildDeviceMap, EMPTY_DEVICE_MAP, type DeviceMap } from '../device-map.js';
import { KubeletCallError, PodResourcesClient, type AllocatableResourcesResponse, type ListPodResourcesResponse } from './podresources.js';

export interface DeviceMapSourceOptions {
  socketPath: string;
  /** Time between refreshes while the kubelet answers. */
  refreshMs: number;
  /** Deadline of each call. */
  deadlineMs: number;
  /** Whether DRA ResourceSlices are watched (--kubernetes.dra); if not, DRA allocations are reported once in the log. */
  draWatched?: boolean;
  /** How old GetAllocatableResources' answer may get while List's stays the same (default ALLOCATABLE_MAX_AGE_MS). */
  allocatableMaxAgeMs?: number;
  logger: Logger;
}

/** What the kubelet side last did, for the exporter's own metrics. */
export interface KubeletStatus {
  /** The last List answered. */
  up: boolean;
  /** Unix ms of the last successful List. */
  lastSuccessMs?: number;
  /** Seconds the last refresh (List and GetAllocatableResources) took. */
  lastRefreshSeconds?: number;
  /** Failed refreshes since start. */
  failures: number;
  /** GetAllocatableResources answered on the last refresh (replica counts known). */
  allocatableUp: boolean;
}

const MIN_BACKOFF_MS = 250;
/**
 * GetAllocatableResources answers what the device plugins advertise, which changes far less
 * often than the pods: it is called on the first refresh, again whenever List's answer changes,
 * and otherwise once its answer (or its failure: a kubelet without it) is this old, which is how
 * long a time-slicing replica count changed without any pod moving takes to show.
 */
export const ALLOCATABLE_MAX_AGE_MS = 60_000;
const MAX_BACKOFF_MS = 30_000;

/**
 * Keeps a device map from the kubelet's PodResources API fresh. One refresh at a time, on
 * its own schedule (never per scrape), far below the kubelet's 100 QPS limit. The last good
 * map stays in use while the kubelet is unreachable; failures retry with exponential
 * backoff, so a socket that appears later (or a restarted kubelet) is picked up.
 */
export class DeviceMapSource {
  private readonly client: PodResourcesClient;
  private current: DeviceMap = EMPTY_DEVICE_MAP;
  private timer: NodeJS.Timeout | undefined;
  private inFlight: Promise<void> | undefined;
  private backoffMs = 0;
  private stopped = true;
  private lastError: string | undefined;
  private allocatableError: string | undefined;
  private draUnwatchedLogged = false;
  private lastList: ListPodResourcesResponse | undefined;
  private lastAllocatable: AllocatableResourcesResponse | undefined;
  /** performance.now() of the last GetAllocatableResources call. */
  private allocatableAtMs: number | undefined;
  readonly status: KubeletStatus = { up: false, failures: 0, allocatableUp: false };

  private readonly allocatableMaxAgeMs: number;

  constructor(private readonly opts: DeviceMapSourceOptions) {
    this.allocatableMaxAgeMs = opts.allocatableMaxAgeMs ?? ALLOCATABLE_MAX_AGE_MS;
    this.client = new PodResourcesClient(opts.socketPath, opts.deadlineMs);
  }

  /** The last good map (empty until the kubelet first answers). */
  get map(): DeviceMap {
    return this.current;
  }

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    void this.cycle();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    await this.inFlight;
    this.client.close();
  }

  /** Refreshes now (one at a time: a call during a refresh waits for that one). */
  refresh(): Promise<void> {
    this.inFlight ??= this.doRefresh().finally(() => {
      this.inFlight = undefined;
    });
    return this.inFlight;
  }

  private async cycle(): Promise<void> {
    await this.refresh();
    if (this.stopped) return;
    const delay = this.status.up ? this.opts.refreshMs : this.backoffMs;
    this.timer = setTimeout(() => void this.cycle(), delay);
    this.timer.unref();
  }

  private async doRefresh(): Promise<void> {
    const started = performance.now();
    try {
      const list = await this.client.list();
      let allocatable = this.lastAllocatable;
      const now = performance.now();
      if (list !== this.lastList || this.allocatableAtMs === undefined || now - this.allocatableAtMs >= this.allocatableMaxAgeMs) {
        this.allocatableAtMs = now;
        try {
          allocatable = await this.client.allocatable();
          this.noteAllocatable(undefined);
        } catch (err) {
          allocatable = undefined;
          this.noteAllocatable(err instanceof Error ? err.message : String(err));
        }
      }
      // the client hands back the same objects for unchanged answers: the map built from them stands
      if (list !== this.lastList || allocatable !== this.lastAllocatable) this.current = buildDeviceMap(list, allocatable);
      this.lastList = list;
      this.lastAllocatable = allocatable;
      this.status.lastSuccessMs = Date.now();
      this.status.allocatableUp = allocatable !== undefined;
      if (!this.status.up) {
        this.opts.logger.info({ socket: this.opts.socketPath, pods: this.current.pods }, 'kubelet pod resources answering; pod labels on');
      }
      if (!this.opts.draWatched && !this.draUnwatchedLogged && this.current.draAllocations.length) {
        this.draUnwatchedLogged = true;
        const devices = new Set(this.current.draAllocations.map((a) => `${a.pool}/${a.device}`)).size;
        this.opts.logger.warn(
          { devices, driver: this.current.draAllocations[0]!.driver },
          `the kubelet lists ${devices} device(s) allocated through DRA; their series carry no pod labels without --kubernetes.dra=true (counted in kube_gpu_exporter_dra_unresolved_devices)`,
        );
      }
      if (this.current.unparsedIds.length) {
        this.opts.logger.debug({ ids: this.current.unparsedIds.slice(0, 10) }, 'device ids that are not GPU or MIG ids');
      }
      this.status.up = true;
      this.lastError = undefined;
      this.backoffMs = 0;
    } catch (err) {
      const message = err instanceof KubeletCallError ? err.message : `kubelet: ${(err as Error).message}`;
      this.status.failures++;
      this.backoffMs = Math.min(Math.max(this.backoffMs * 2, Math.min(MIN_BACKOFF_MS, this.opts.refreshMs)), Math.max(MAX_BACKOFF_MS, this.opts.refreshMs));
      if (this.status.up || this.lastError === undefined || this.lastError !== message) {
        this.opts.logger.warn(
          { socket: this.opts.socketPath, err: message, retryInMs: this.backoffMs, keepingPods: this.current.pods },
          'kubelet pod resources not answering; keeping the last known pods and retrying',
        );
      }
      this.lastError = message;
      this.status.up = false;
    } finally {
      this.status.lastRefreshSeconds = (performance.now() - started) / 1000;
    }
  }

  private noteAllocatable(error: string | undefined): void {
    if (error !== this.allocatableError && error) {
      this.opts.logger.warn({ err: error }, 'GetAllocatableResources failed: replica counts of shared GPUs unknown');
    }
    this.allocatableError = error;
  }
}
