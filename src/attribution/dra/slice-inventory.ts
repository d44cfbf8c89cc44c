/**
 * The devices a DRA driver publishes for this node, from its ResourceSlice objects, keyed the
 * way the kubelet names an allocated device: (driver, pool, device name).
 *
 * Pure data handling, no I/O: the slice watcher feeds it objects as the Kubernetes API serves
 * them (any of the v1, v1beta2 and v1beta1 shapes, as plain JSON or as the client library's
 * model objects) and asks it for devices. Rules it keeps:
 * - a pool may be spread over several slices; only the slices of the pool's highest
 *   `spec.pool.generation` count (older ones are leftovers of a change in progress);
 * - a device that leaves a slice (or whose slice is deleted) leaves the inventory;
 * - attribute keys are accepted bare (`uuid`) or qualified with the driver's domain
 *   (`gpu.nvidia.com/uuid`).
 */

/** NVIDIA's GPU DRA driver. Other drivers' devices are not GPUs NVML can see. */
export const NVIDIA_GPU_DRIVER = 'gpu.nvidia.com';

/** One published device, with the attributes that say which NVML device it is. */
export interface DraDevice {
  driver: string;
  pool: string;
  name: string;
  /** `gpu`, `mig`, `vfio`, ... (the driver's `type` attribute); empty when absent. */
  type: string;
  /** `GPU-...` or `MIG-...`; absent for MIG devices in the driver's DynamicMIG mode. */
  uuid?: string;
  /** A MIG device's GPU (`GPU-...`). */
  parentUuid?: string;
  /** A MIG device's profile, e.g. `1g.10gb`. */
  profile?: string;
}

/** What a slice says, reduced to what the inventory keeps. */
export interface ParsedSlice {
  name: string;
  driver: string;
  nodeName: string;
  pool: string;
  generation: number;
  devices: DraDevice[];
}

export class SliceShapeError extends Error {
  constructor(slice: string, problem: string) {
    super(`ResourceSlice ${JSON.stringify(slice)}: ${problem}`);
    this.name = 'SliceShapeError';
  }
}

type Loose = Record<string, unknown>;

function isObject(v: unknown): v is Loose {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** A device attribute's value as text: `string` or `version` (ints and bools are not identifiers we read). */
function attributeText(value: unknown): string | undefined {
  if (!isObject(value)) return undefined;
  if (typeof value.string === 'string') return value.string;
  if (typeof value.version === 'string') return value.version;
  return undefined;
}

/** Looks an attribute up by its bare key or qualified with the driver's domain; the bare key wins. */
function attribute(attrs: Loose, driver: string, key: string): string | undefined {
  return attributeText(attrs[key]) ?? attributeText(attrs[`${driver}/${key}`]);
}

/**
 * Reads one ResourceSlice object. v1 and v1beta2 keep a device's attributes at
 * `devices[].attributes`, v1beta1 under `devices[].basic.attributes`; both are read, so the
 * caller need not say which version served it. Devices without a name are skipped; a slice
 * without a name, driver or pool is refused.
 */
export function parseSlice(obj: unknown): ParsedSlice {
  const meta = isObject(obj) && isObject(obj.metadata) ? obj.metadata : undefined;
  const name = typeof meta?.name === 'string' ? meta.name : '';
  if (!name) throw new SliceShapeError('', 'no metadata.name');
  const spec = isObject(obj) && isObject(obj.spec) ? obj.spec : undefined;
  if (!spec) throw new SliceShapeError(name, 'no spec');
  const driver = typeof spec.driver === 'string' ? spec.driver : '';
  if (!driver) throw new SliceShapeError(name, 'no spec.driver');
  const pool = isObject(spec.pool) ? spec.pool : undefined;
  const poolName = typeof pool?.name === 'string' ? pool.name : '';
  if (!poolName) throw new SliceShapeError(name, 'no spec.pool.name');
  const generation = pool?.generation ?? 0;
  if (typeof generation !== 'number' || !Number.isSafeInteger(generation) || generation < 0) throw new SliceShapeError(name, `spec.pool.generation ${JSON.stringify(pool?.generation)} is not a non-negative integer`);
  const devices: DraDevice[] = [];
  for (const d of Array.isArray(spec.devices) ? spec.devices : []) {
    if (!isObject(d) || typeof d.name !== 'string' || !d.name) continue;
    const attrs = isObject(d.attributes) ? d.attributes : isObject(d.basic) && isObject(d.basic.attributes) ? d.basic.attributes : {};
    const uuid = attribute(attrs, driver, 'uuid');
    const device: DraDevice = { driver, pool: poolName, name: d.name, type: attribute(attrs, driver, 'type') ?? typeFromUuid(uuid) };
    if (uuid) device.uuid = uuid;
    const parentUuid = attribute(attrs, driver, 'parentUUID');
    if (parentUuid) device.parentUuid = parentUuid;
    const profile = attribute(attrs, driver, 'profile');
    if (profile) device.profile = profile;
    devices.push(device);
  }
  return { name, driver, nodeName: typeof spec.nodeName === 'string' ? spec.nodeName : '', pool: poolName, generation, devices };
}

/** A device published without `type`: what its UUID says it is (`GPU-...`, `MIG-...`), else nothing. */
function typeFromUuid(uuid: string | undefined): string {
  if (uuid?.startsWith('GPU-')) return 'gpu';
  if (uuid?.startsWith('MIG-')) return 'mig';
  return '';
}

function deviceKey(driver: string, pool: string, name: string): string {
  return `${driver}\u0000${pool}\u0000${name}`;
}

/** The devices of the slices seen so far, current pool generations only. */
export class SliceInventory {
  readonly #slices = new Map<string, ParsedSlice>();
  #index: Map<string, DraDevice> | undefined;
  /** Bumped on every change, so that readers can tell whether the devices changed. */
  #version = 0;

  /** Replaces every slice (after a list). */
  replace(slices: readonly ParsedSlice[]): void {
    this.#slices.clear();
    for (const s of slices) this.#slices.set(s.name, s);
    this.#changed();
  }

  /** Adds or replaces one slice (a watch ADDED or MODIFIED). */
  put(slice: ParsedSlice): void {
    this.#slices.set(slice.name, slice);
    this.#changed();
  }

  /** Removes one slice (a watch DELETED). */
  delete(sliceName: string): void {
    if (this.#slices.delete(sliceName)) this.#changed();
  }

  get version(): number {
    return this.#version;
  }

  get sliceCount(): number {
    return this.#slices.size;
  }

  /** The device the kubelet names (driver, pool, device), or undefined when no current slice publishes it. */
  lookup(driver: string, pool: string, name: string): DraDevice | undefined {
    return this.#currentIndex().get(deviceKey(driver, pool, name));
  }

  /** Every device of the current generations (for tests and logs). */
  devices(): DraDevice[] {
    return [...this.#currentIndex().values()];
  }

  #changed(): void {
    this.#index = undefined;
    this.#version++;
  }

  #currentIndex(): Map<string, DraDevice> {
    if (this.#index) return this.#index;
    const newest = new Map<string, number>();
    for (const s of this.#slices.values()) {
      const k = `${s.driver}\u0000${s.pool}`;
      newest.set(k, Math.max(newest.get(k) ?? -1, s.generation));
    }
    const index = new Map<string, DraDevice>();
    for (const s of this.#slices.values()) {
      if (s.generation !== newest.get(`${s.driver}\u0000${s.pool}`)) continue;
      for (const d of s.devices) index.set(deviceKey(d.driver, d.pool, d.name), d);
    }
    this.#index = index;
    return index;
  }
}
