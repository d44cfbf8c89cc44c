import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import os from 'node:os';
import type { AllocatableResourcesResponse, ContainerDevices, DynamicResource, ListPodResourcesResponse } from '../attribution/kubelet/podresources.js';

/**
 * The pods of a simulated node (`scenarios/<name>.pods.json`): what the fake kubelet
 * serves and which simulated processes belong to which container. Device ids are written
 * as the device plugin writes them, or as placeholders resolved against the node's .sim
 * file: `gpu:<index>` (its GPU-<uuid>), `mig:<index>.<slot>` (its MIG-<uuid>), each
 * optionally followed by `::<replica>`.
 */
export interface ScenarioContainer {
  name: string;
  /** Container id (64 hex); derived from the names when left out. */
  id: string;
  /** resource name -> device ids */
  devices: Record<string, string[]>;
  /** Host pids of this container's processes (for per-process attribution). */
  pids: number[];
  /** DRA ResourceClaims the container references, as `<namespace>/<name>` keys of the scenario's `dra.claims`. */
  claims?: string[];
}

export interface ScenarioPod {
  namespace: string;
  name: string;
  /** Pod UID; derived from namespace/name when left out. */
  uid: string;
  containers: ScenarioContainer[];
}

/** A device a DRA driver publishes in the node's ResourceSlice, with NVIDIA's attributes. */
export interface ScenarioDraDevice {
  name: string;
  type: 'gpu' | 'mig' | 'vfio';
  uuid?: string;
  parentUuid?: string;
  profile?: string;
}

/** One device of a claim; `shareId` when the claim holds one share of a device (consumable capacity). */
export interface ScenarioClaimDevice {
  device: string;
  shareId?: string;
  /** Driver of the device; the scenario's driver unless set. */
  driver?: string;
}

/** Devices allocated through DRA: what the driver publishes, and the node's ResourceClaims. */
export interface DraScenario {
  driver: string;
  /** Devices of the node's ResourceSlice (pool = node name). */
  devices: ScenarioDraDevice[];
  /** `<namespace>/<name>` -> the claim's allocated devices. */
  claims: Map<string, ScenarioClaimDevice[]>;
  /** Published MIG devices carry no uuid (the driver's DynamicMIG mode). */
  dynamicMig: boolean;
}

export interface KubeletScenario {
  pods: ScenarioPod[];
  /** resource name -> device ids the device plugin advertises. */
  allocatable: Record<string, string[]>;
  /** Pids of GPU processes that run outside any pod. */
  hostPids: number[];
  /** Set when the scenario allocates devices through DRA. */
  dra?: DraScenario;
}

export class ScenarioError extends Error {
  constructor(file: string, where: string, problem: string) {
    super(`${file}: ${where}: ${problem}`);
    this.name = 'ScenarioError';
  }
}

/** UUIDs and MIG profiles named in a .sim file, for placeholders and default allocatable devices. */
export interface SimDevices {
  gpus: Map<number, { uuid: string; migMode: boolean; mig: Map<number, { uuid: string; profile: string }> }>;
}

export function simDevices(simText: string): SimDevices {
  const gpus: SimDevices['gpus'] = new Map();
  const gpu = (i: number) => {
    let g = gpus.get(i);
    if (!g) gpus.set(i, (g = { uuid: '', migMode: false, mig: new Map() }));
    return g;
  };
  // a gpu.<i> line wins over the gpu.* default, whatever the order (as in the simulated library)
  let migModeDefault = false;
  const migModeOf = new Map<number, boolean>();
  for (const raw of simText.split('\n')) {
    const line = raw.replace(/#.*/, '').trim();
    let m = /^gpu\.(\d+)\.uuid\s+(\S+)$/.exec(line);
    if (m) gpu(Number(m[1])).uuid = m[2]!;
    m = /^gpu\.(\d+|\*)\.mig_mode\s+(\d+)$/.exec(line);
    if (m && m[1] === '*') migModeDefault = m[2] !== '0';
    else if (m) migModeOf.set(Number(m[1]), m[2] !== '0');
    m = /^gpu\.(\d+)\.mig\.(\d+)\.(uuid|profile)\s+(\S+)$/.exec(line);
    if (m) {
      const g = gpu(Number(m[1]));
      const slot = Number(m[2]);
      const inst = g.mig.get(slot) ?? { uuid: '', profile: '' };
      inst[m[3] as 'uuid' | 'profile'] = m[4]!;
      g.mig.set(slot, inst);
    }
  }
  for (const [i, g] of gpus) g.migMode = migModeOf.get(i) ?? migModeDefault;
  return { gpus };
}

/** Default device plugin advertisement: every whole GPU, every MIG instance under its profile's resource. */
export function defaultAllocatable(devices: SimDevices): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  const add = (resource: string, id: string) => (out[resource] ??= []).push(id);
  for (const [, g] of [...devices.gpus].sort((a, b) => a[0] - b[0])) {
    if (!g.uuid) continue;
    if (!g.migMode) add('nvidia.com/gpu', g.uuid);
    else for (const [, inst] of [...g.mig].sort((a, b) => a[0] - b[0])) if (inst.uuid) add(`nvidia.com/mig-${inst.profile}`, inst.uuid);
  }
  return out;
}

function deriveUid(namespace: string, name: string): string {
  const h = createHash('sha256').update(`pod/${namespace}/${name}`).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-8${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

function deriveContainerId(namespace: string, pod: string, container: string): string {
  return createHash('sha256').update(`container/${namespace}/${pod}/${container}`).digest('hex');
}

const PLACEHOLDER = /^(gpu|mig):(\d+)(?:\.(\d+))?(::\d+)?$/;

function resolveId(id: string, devices: SimDevices, file: string, where: string): string {
  const m = PLACEHOLDER.exec(id);
  if (!m) return id;
  const g = devices.gpus.get(Number(m[2]));
  if (m[1] === 'gpu') {
    if (m[3] !== undefined) throw new ScenarioError(file, where, `"${id}": gpu:<index> takes no slot (use mig:<index>.<slot>)`);
    if (!g?.uuid) throw new ScenarioError(file, where, `"${id}": the .sim file has no gpu.${m[2]}.uuid`);
    return g.uuid + (m[4] ?? '');
  }
  if (m[3] === undefined) throw new ScenarioError(file, where, `"${id}": write mig:<index>.<slot>`);
  const inst = g?.mig.get(Number(m[3]));
  if (!inst?.uuid) throw new ScenarioError(file, where, `"${id}": the .sim file has no gpu.${m[2]}.mig.${m[3]}.uuid`);
  return inst.uuid + (m[4] ?? '');
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Parses and checks a pods file; every problem names the file and the JSON path. */
export function parseKubeletScenario(text: string, file: string, devices: SimDevices): KubeletScenario {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw new ScenarioError(file, 'JSON', (err as Error).message);
  }
  if (!isObject(doc)) throw new ScenarioError(file, '(top level)', 'expected an object with "pods"');
  for (const key of Object.keys(doc)) {
    if (!['pods', 'allocatable', 'hostPids', 'dra', 'comment'].includes(key)) throw new ScenarioError(file, key, 'unknown key (expected pods, allocatable, hostPids, dra, comment)');
  }
  const dra = doc.dra === undefined ? undefined : parseDra(doc.dra, file, devices);
  const pidList = (v: unknown, where: string): number[] => {
    if (v === undefined) return [];
    if (!Array.isArray(v) || !v.every((p) => Number.isInteger(p) && p > 0 && p < 2 ** 22)) throw new ScenarioError(file, where, 'expected an array of pids (positive integers)');
    return v as number[];
  };
  const deviceTable = (v: unknown, where: string): Record<string, string[]> => {
    if (v === undefined) return {};
    if (!isObject(v)) throw new ScenarioError(file, where, 'expected an object of resource name -> array of device ids');
    const out: Record<string, string[]> = {};
    for (const [resource, ids] of Object.entries(v)) {
      if (!Array.isArray(ids) || !ids.every((x) => typeof x === 'string')) throw new ScenarioError(file, `${where}["${resource}"]`, 'expected an array of device id strings');
      out[resource] = (ids as string[]).map((id, i) => resolveId(id, devices, file, `${where}["${resource}"][${i}]`));
    }
    return out;
  };
  if (!Array.isArray(doc.pods)) throw new ScenarioError(file, 'pods', 'expected an array');
  const pods = doc.pods.map((p: unknown, i: number): ScenarioPod => {
    const where = `pods[${i}]`;
    if (!isObject(p)) throw new ScenarioError(file, where, 'expected an object');
    const namespace = p.namespace;
    const name = p.name;
    if (typeof namespace !== 'string' || !namespace) throw new ScenarioError(file, `${where}.namespace`, 'expected a non-empty string');
    if (typeof name !== 'string' || !name) throw new ScenarioError(file, `${where}.name`, 'expected a non-empty string');
    if (p.uid !== undefined && (typeof p.uid !== 'string' || !/^[0-9a-f-]{32,36}$/.test(p.uid))) throw new ScenarioError(file, `${where}.uid`, 'expected a pod UID (36 chars with dashes, or 32 hex for a static pod)');
    if (!Array.isArray(p.containers)) throw new ScenarioError(file, `${where}.containers`, 'expected an array');
    const containers = p.containers.map((c: unknown, j: number): ScenarioContainer => {
      const cw = `${where}.containers[${j}]`;
      if (!isObject(c)) throw new ScenarioError(file, cw, 'expected an object');
      if (typeof c.name !== 'string' || !c.name) throw new ScenarioError(file, `${cw}.name`, 'expected a non-empty string');
      if (c.id !== undefined && (typeof c.id !== 'string' || !/^[0-9a-f]{64}$/.test(c.id))) throw new ScenarioError(file, `${cw}.id`, 'expected 64 lowercase hex digits');
      return {
        name: c.name,
        id: (c.id as string | undefined) ?? deriveContainerId(namespace, name, c.name),
        devices: deviceTable(c.devices, `${cw}.devices`),
        pids: pidList(c.pids, `${cw}.pids`),
        claims: claimRefs(c.claims, `${cw}.claims`, file, dra),
      };
    });
    return { namespace, name, uid: (p.uid as string | undefined) ?? deriveUid(namespace, name), containers };
  });
  const scenario: KubeletScenario = {
    pods,
    allocatable: doc.allocatable === undefined ? defaultAllocatable(devices) : deviceTable(doc.allocatable, 'allocatable'),
    hostPids: pidList(doc.hostPids, 'hostPids'),
  };
  if (dra) scenario.dra = dra;
  return scenario;
}

/** The name NVIDIA's DRA driver gives a device (the exporter never parses it; it looks it up). */
function draDeviceName(placeholder: string, devices: SimDevices): string {
  const m = PLACEHOLDER.exec(placeholder)!;
  if (m[1] === 'gpu') return `gpu-${m[2]}`;
  const profile = devices.gpus.get(Number(m[2]))!.mig.get(Number(m[3]))!.profile.replace(/\./g, '');
  return `gpu-${m[2]}-mig-${profile}-${m[3]}`;
}

const DRA_DEVICE = /^(gpu|mig|vfio):(\d+)(?:\.(\d+))?$/;

/**
 * The `dra` section: `devices` the driver publishes (placeholders `gpu:<i>`, `mig:<i>.<slot>`,
 * `vfio:<i>`), `claims` (`"<namespace>/<name>": [device placeholder or name, or
 * {"device", "shareId", "driver"}]`), optional `driver` (default gpu.nvidia.com) and `dynamicMig`.
 */
function parseDra(v: unknown, file: string, devices: SimDevices): DraScenario {
  if (!isObject(v)) throw new ScenarioError(file, 'dra', 'expected an object with devices and claims');
  for (const key of Object.keys(v)) {
    if (!['driver', 'devices', 'claims', 'dynamicMig'].includes(key)) throw new ScenarioError(file, `dra.${key}`, 'unknown key (expected driver, devices, claims, dynamicMig)');
  }
  if (v.driver !== undefined && (typeof v.driver !== 'string' || !v.driver)) throw new ScenarioError(file, 'dra.driver', 'expected a non-empty string');
  if (v.dynamicMig !== undefined && typeof v.dynamicMig !== 'boolean') throw new ScenarioError(file, 'dra.dynamicMig', 'expected true or false');
  const dynamicMig = v.dynamicMig === true;
  if (!Array.isArray(v.devices)) throw new ScenarioError(file, 'dra.devices', 'expected an array of device placeholders (gpu:<index>, mig:<index>.<slot>, vfio:<index>)');
  const published: ScenarioDraDevice[] = [];
  const byPlaceholder = new Map<string, string>();
  v.devices.forEach((d: unknown, i: number) => {
    const where = `dra.devices[${i}]`;
    const m = typeof d === 'string' ? DRA_DEVICE.exec(d) : null;
    if (!m) throw new ScenarioError(file, where, `${JSON.stringify(d)}: expected gpu:<index>, mig:<index>.<slot> or vfio:<index>`);
    const g = devices.gpus.get(Number(m[2]));
    if (!g?.uuid) throw new ScenarioError(file, where, `"${d}": the .sim file has no gpu.${m[2]}.uuid`);
    if (m[1] === 'mig') {
      const inst = m[3] === undefined ? undefined : g.mig.get(Number(m[3]));
      if (!inst?.uuid) throw new ScenarioError(file, where, `"${d}": the .sim file has no gpu.${m[2]}.mig.${m[3] ?? '<slot>'}.uuid`);
      const name = draDeviceName(d as string, devices);
      published.push({ name, type: 'mig', ...(dynamicMig ? {} : { uuid: inst.uuid }), parentUuid: g.uuid, profile: inst.profile });
      byPlaceholder.set(d as string, name);
    } else {
      if (m[3] !== undefined) throw new ScenarioError(file, where, `"${d}": ${m[1]}:<index> takes no slot`);
      const name = m[1] === 'gpu' ? `gpu-${m[2]}` : `gpu-${m[2]}-vfio`;
      published.push(m[1] === 'gpu' ? { name, type: 'gpu', uuid: g.uuid } : { name, type: 'vfio' });
      byPlaceholder.set(d as string, name);
    }
  });
  if (!isObject(v.claims)) throw new ScenarioError(file, 'dra.claims', 'expected an object of "<namespace>/<name>" -> array of devices');
  const claims = new Map<string, ScenarioClaimDevice[]>();
  for (const [key, list] of Object.entries(v.claims)) {
    const where = `dra.claims["${key}"]`;
    if (!/^[^/]+\/[^/]+$/.test(key)) throw new ScenarioError(file, where, 'expected a claim key "<namespace>/<name>"');
    if (!Array.isArray(list)) throw new ScenarioError(file, where, 'expected an array of devices');
    claims.set(
      key,
      list.map((entry: unknown, i: number): ScenarioClaimDevice => {
        const ew = `${where}[${i}]`;
        const spec = typeof entry === 'string' ? { device: entry } : entry;
        if (!isObject(spec) || typeof spec.device !== 'string' || !spec.device) throw new ScenarioError(file, ew, 'expected a device (placeholder or name) or {"device", "shareId", "driver"}');
        if (spec.shareId !== undefined && typeof spec.shareId !== 'string') throw new ScenarioError(file, `${ew}.shareId`, 'expected a string');
        if (spec.driver !== undefined && typeof spec.driver !== 'string') throw new ScenarioError(file, `${ew}.driver`, 'expected a string');
        // a placeholder names a published device; anything else is used as the device name as is (odd data)
        const device = byPlaceholder.get(spec.device) ?? (DRA_DEVICE.test(spec.device) ? undefined : spec.device);
        if (device === undefined) throw new ScenarioError(file, ew, `"${spec.device}" is not in dra.devices`);
        return { device, ...(spec.shareId !== undefined ? { shareId: spec.shareId } : {}), ...(spec.driver !== undefined ? { driver: spec.driver as string } : {}) };
      }),
    );
  }
  return { driver: (v.driver as string | undefined) ?? 'gpu.nvidia.com', devices: published, claims, dynamicMig };
}

function claimRefs(v: unknown, where: string, file: string, dra: DraScenario | undefined): string[] {
  if (v === undefined) return [];
  if (!Array.isArray(v) || !v.every((x) => typeof x === 'string')) throw new ScenarioError(file, where, 'expected an array of claim keys "<namespace>/<name>"');
  (v as string[]).forEach((key, i) => {
    if (!dra?.claims.has(key)) throw new ScenarioError(file, `${where}[${i}]`, `"${key}" is not in dra.claims`);
  });
  return v as string[];
}

/** Reads `<scenario>.pods.json` beside a .sim file; undefined when the scenario has none. */
export function loadKubeletScenario(simPath: string, podsPath = simPath.replace(/\.sim$/, '.pods.json')): KubeletScenario | undefined {
  if (!existsSync(podsPath)) return undefined;
  return parseKubeletScenario(readFileSync(podsPath, 'utf8'), podsPath, simDevices(readFileSync(simPath, 'utf8')));
}

function tableToDevices(table: Record<string, string[]>): ContainerDevices[] {
  return Object.entries(table).map(([resourceName, deviceIds]) => ({ resourceName, deviceIds }));
}

/** What the kubelet reports for a container's claims: every device of each claim (it does not filter by request). */
function dynamicResources(claims: readonly string[], dra: DraScenario | undefined, pool: string): DynamicResource[] {
  if (!dra) return [];
  return claims.map((key) => {
    const [claimNamespace, claimName] = key.split('/') as [string, string];
    return {
      claimName,
      claimNamespace,
      claimResources: (dra.claims.get(key) ?? []).map((d) => ({
        driverName: d.driver ?? dra.driver,
        poolName: pool,
        deviceName: d.device,
        ...(d.shareId !== undefined ? { shareId: d.shareId } : {}),
      })),
    };
  });
}

/** The List response a kubelet would give for these pods; DRA pools are named after the node, as NVIDIA's driver names them. */
export function listResponse(scenario: KubeletScenario, nodeName = os.hostname()): ListPodResourcesResponse {
  return {
    podResources: scenario.pods.map((p) => ({
      name: p.name,
      namespace: p.namespace,
      containers: p.containers.map((c) => {
        const dynamic = dynamicResources(c.claims ?? [], scenario.dra, nodeName);
        return { name: c.name, devices: tableToDevices(c.devices), ...(dynamic.length ? { dynamicResources: dynamic } : {}) };
      }),
    })),
  };
}

export function allocatableResponse(scenario: KubeletScenario): AllocatableResourcesResponse {
  return { devices: tableToDevices(scenario.allocatable) };
}

/**
 * The ResourceSlice NVIDIA's DRA driver would publish for this node: one slice, pool named
 * after the node, generation 1, the devices of `dra.devices` with their `type`, `uuid`,
 * `parentUUID` and `profile` attributes (MIG devices without `uuid` in DynamicMIG mode).
 */
export function draSliceSpecs(scenario: KubeletScenario, nodeName = os.hostname()): import('./fake-resource-api.js').FakeSliceSpec[] {
  const dra = scenario.dra;
  if (!dra) return [];
  return [
    {
      name: `${nodeName}-${dra.driver}-sim`,
      nodeName,
      driver: dra.driver,
      pool: { name: nodeName, generation: 1, resourceSliceCount: 1 },
      devices: dra.devices.map((d) => ({
        name: d.name,
        attributes: {
          type: { string: d.type },
          ...(d.uuid !== undefined ? { uuid: { string: d.uuid } } : {}),
          ...(d.parentUuid !== undefined ? { parentUUID: { string: d.parentUuid } } : {}),
          ...(d.profile !== undefined ? { profile: { string: d.profile } } : {}),
        },
      })),
    },
  ];
}
