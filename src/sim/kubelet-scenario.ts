import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import type { AllocatableResourcesResponse, ContainerDevices, ListPodResourcesResponse } from '../attribution/kubelet/podresources.js';

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
}

export interface ScenarioPod {
  namespace: string;
  name: string;
  /** Pod UID; derived from namespace/name when left out. */
  uid: string;
  containers: ScenarioContainer[];
}

export interface KubeletScenario {
  pods: ScenarioPod[];
  /** resource name -> device ids the device plugin advertises. */
  allocatable: Record<string, string[]>;
  /** Pids of GPU processes that run outside any pod. */
  hostPids: number[];
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
    if (!['pods', 'allocatable', 'hostPids', 'comment'].includes(key)) throw new ScenarioError(file, key, 'unknown key (expected pods, allocatable, hostPids, comment)');
  }
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
      };
    });
    return { namespace, name, uid: (p.uid as string | undefined) ?? deriveUid(namespace, name), containers };
  });
  return {
    pods,
    allocatable: doc.allocatable === undefined ? defaultAllocatable(devices) : deviceTable(doc.allocatable, 'allocatable'),
    hostPids: pidList(doc.hostPids, 'hostPids'),
  };
}

/** Reads `<scenario>.pods.json` beside a .sim file; undefined when the scenario has none. */
export function loadKubeletScenario(simPath: string, podsPath = simPath.replace(/\.sim$/, '.pods.json')): KubeletScenario | undefined {
  if (!existsSync(podsPath)) return undefined;
  return parseKubeletScenario(readFileSync(podsPath, 'utf8'), podsPath, simDevices(readFileSync(simPath, 'utf8')));
}

function tableToDevices(table: Record<string, string[]>): ContainerDevices[] {
  return Object.entries(table).map(([resourceName, deviceIds]) => ({ resourceName, deviceIds }));
}

/** The List response a kubelet would give for these pods. */
export function listResponse(scenario: KubeletScenario): ListPodResourcesResponse {
  return {
    podResources: scenario.pods.map((p) => ({
      name: p.name,
      namespace: p.namespace,
      containers: p.containers.map((c) => ({ name: c.name, devices: tableToDevices(c.devices) })),
    })),
  };
}

export function allocatableResponse(scenario: KubeletScenario): AllocatableResourcesResponse {
  return { devices: tableToDevices(scenario.allocatable) };
}
