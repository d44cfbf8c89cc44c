/**
 * A fake host in a temp dir: a `/proc` tree (`<pid>/stat`, `<pid>/cgroup`) and a kubelet
 * log tree (`pods/<ns>_<pod>_<uid>/<container>/0.log`, `containers/<pod>_<ns>_<container>-<id>.log`
 * symlinks), plus builders for the cgroup paths each driver/runtime writes.
 *
 *   const host = createFakeHost();
 *   host.addPod({ namespace: 'ml', name: 'train-0', uid, containers: [{ name: 'main', id }] });
 *   host.addProcess({ pid: 4242, cgroup: cgroupV2Systemd('burstable', uid, 'containerd', id) });
 *   new ProcessOwnerResolver({ procRoot: host.procRoot, logRoot: host.logRoot });
 *   ...
 *   host.cleanup();
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export type QosClass = 'guaranteed' | 'burstable' | 'besteffort';
export type Runtime = 'containerd' | 'crio' | 'docker';

export interface FakeContainer {
  name: string;
  /** Runtime container id, 64 lowercase hex. */
  id: string;
}

export interface FakePod {
  namespace: string;
  name: string;
  uid: string;
  containers: FakeContainer[];
}

export interface FakeProcess {
  pid: number;
  /** Content of /proc/<pid>/cgroup. Build it with the cgroup* helpers below. */
  cgroup: string;
  /** Field 22 of /proc/<pid>/stat; defaults to a fresh value per call. */
  startTime?: number | string;
  /** Field 2 of /proc/<pid>/stat, without the parentheses (default `python3`). */
  comm?: string;
  /** Make `cgroup` or `stat` unreadable (a directory takes its place, so it fails even as root). */
  unreadable?: 'cgroup' | 'stat';
}

export interface FakeHost {
  /** The temp dir holding everything. */
  root: string;
  /** Stands for /proc. */
  procRoot: string;
  /** Stands for /var/log (holds `pods/` and `containers/`). */
  logRoot: string;
  /** Creates the pod's log dir and one log dir + /var/log/containers link per container. */
  addPod(pod: FakePod): void;
  /** Adds a container (e.g. a restart, with a new id) to a pod added before. */
  addContainer(podUid: string, container: FakeContainer): void;
  /** Removes the pod's log dir and its containers' links. */
  removePod(uid: string): void;
  /** Creates (or replaces) /proc/<pid>/{stat,cgroup}. */
  addProcess(proc: FakeProcess): void;
  /** Rewrites /proc/<pid>/cgroup, keeping stat (same process, e.g. migrated between cgroups). */
  setCgroup(pid: number, cgroup: string): void;
  removeProcess(pid: number): void;
  cleanup(): void;
}

export function createFakeHost(): FakeHost {
  const root = mkdtempSync(join(tmpdir(), 'kge-fake-host-'));
  const procRoot = join(root, 'proc');
  const logRoot = join(root, 'var', 'log');
  const podsDir = join(logRoot, 'pods');
  const containersDir = join(logRoot, 'containers');
  mkdirSync(procRoot, { recursive: true });
  mkdirSync(podsDir, { recursive: true });
  mkdirSync(containersDir, { recursive: true });
  const pods = new Map<string, FakePod>();
  let nextStart = 100_000;

  const linkContainer = (pod: FakePod, c: FakeContainer): void => {
    const logDir = join(podsDir, `${pod.namespace}_${pod.name}_${pod.uid}`, c.name);
    mkdirSync(logDir, { recursive: true });
    const target = join(logDir, '0.log');
    writeFileSync(target, '');
    symlinkSync(target, join(containersDir, `${pod.name}_${pod.namespace}_${c.name}-${c.id}.log`));
  };

  return {
    root,
    procRoot,
    logRoot,
    addPod(pod) {
      if (pods.has(pod.uid)) throw new Error(`fake host: pod ${pod.uid} exists`);
      const copy = { ...pod, containers: [...pod.containers] };
      pods.set(pod.uid, copy);
      mkdirSync(join(podsDir, `${pod.namespace}_${pod.name}_${pod.uid}`), { recursive: true });
      for (const c of pod.containers) linkContainer(copy, c);
    },
    addContainer(podUid, container) {
      const pod = pods.get(podUid);
      if (!pod) throw new Error(`fake host: no pod ${podUid}`);
      pod.containers.push(container);
      linkContainer(pod, container);
    },
    removePod(uid) {
      const pod = pods.get(uid);
      if (!pod) return;
      pods.delete(uid);
      rmSync(join(podsDir, `${pod.namespace}_${pod.name}_${pod.uid}`), { recursive: true, force: true });
      for (const c of pod.containers) {
        rmSync(join(containersDir, `${pod.name}_${pod.namespace}_${c.name}-${c.id}.log`), { force: true });
      }
    },
    addProcess(proc) {
      const dir = join(procRoot, String(proc.pid));
      rmSync(dir, { recursive: true, force: true });
      mkdirSync(dir);
      const start = proc.startTime ?? nextStart++;
      const statPath = join(dir, 'stat');
      const cgroupPath = join(dir, 'cgroup');
      if (proc.unreadable === 'stat') mkdirSync(statPath);
      else writeFileSync(statPath, statLine(proc.pid, proc.comm ?? 'python3', start));
      if (proc.unreadable === 'cgroup') mkdirSync(cgroupPath);
      else writeFileSync(cgroupPath, proc.cgroup);
    },
    setCgroup(pid, cgroup) {
      writeFileSync(join(procRoot, String(pid), 'cgroup'), cgroup);
    },
    removeProcess(pid) {
      rmSync(join(procRoot, String(pid)), { recursive: true, force: true });
    },
    cleanup() {
      rmSync(root, { recursive: true, force: true });
    },
  };
}

/** Lists what the fake host holds (handy when a test fails). */
export function describeFakeHost(host: FakeHost): { pids: string[]; pods: string[]; containers: string[] } {
  return {
    pids: readdirSync(host.procRoot),
    pods: readdirSync(join(host.logRoot, 'pods')),
    containers: readdirSync(join(host.logRoot, 'containers')),
  };
}

/** A /proc/<pid>/stat line (52 fields) with the given comm and start time (field 22). */
export function statLine(pid: number, comm: string, startTime: number | string): string {
  const fields: string[] = [String(pid), `(${comm})`, 'S'];
  for (let n = 4; n <= 52; n++) fields.push(n === 22 ? String(startTime) : String(n === 4 ? 1 : 0));
  return fields.join(' ') + '\n';
}

// ---------------------------------------------------------------------------------------
// ids
// ---------------------------------------------------------------------------------------

/** A 64-hex container id. */
export function randomContainerId(): string {
  return randomBytes(32).toString('hex');
}

/** An API-server pod UID (UUID with dashes). */
export function randomPodUid(): string {
  return randomUUID();
}

/** A static (file/URL) pod UID: 32 hex, no dashes. */
export function randomStaticPodUid(): string {
  return randomBytes(16).toString('hex');
}

// ---------------------------------------------------------------------------------------
// cgroup paths
// ---------------------------------------------------------------------------------------

export interface CgroupPathOptions {
  /**
   * The kubelet's `--cgroup-root` components above `kubepods`, e.g. `['kubelet']` as kind
   * and k3s-in-docker use: `/kubelet.slice/kubelet-kubepods.slice/...` or `/kubelet/kubepods/...`.
   */
  cgroupRoot?: string[];
  /** Segments appended below the container cgroup (a process in a nested cgroup). */
  below?: string[];
}

function podComponents(qos: QosClass, uid: string, opts: CgroupPathOptions): string[] {
  const c = [...(opts.cgroupRoot ?? []), 'kubepods'];
  if (qos !== 'guaranteed') c.push(qos);
  c.push(`pod${uid}`);
  return c;
}

/**
 * systemd driver path: each cgroup component becomes a slice named after all its ancestors
 * joined by `-`, with `-` inside a component escaped as `_` (so the UID's dashes become `_`).
 * `containerId` undefined gives the pod slice itself.
 */
export function systemdPodPath(
  qos: QosClass,
  uid: string,
  runtime: Runtime,
  containerId?: string,
  opts: CgroupPathOptions = {},
): string {
  const names: string[] = [];
  const slices: string[] = [];
  for (const comp of podComponents(qos, uid, opts)) {
    names.push(comp.replace(/-/g, '_'));
    slices.push(`${names.join('-')}.slice`);
  }
  if (containerId !== undefined) {
    const prefix = runtime === 'containerd' ? 'cri-containerd' : runtime === 'crio' ? 'crio' : 'docker';
    slices.push(`${prefix}-${containerId}.scope`);
  }
  return '/' + [...slices, ...(opts.below ?? [])].join('/');
}

/** cgroupfs driver path: `/kubepods[/<qos>]/pod<uid>/<id>` (CRI-O: `crio-<id>`). */
export function cgroupfsPodPath(
  qos: QosClass,
  uid: string,
  runtime: Runtime,
  containerId?: string,
  opts: CgroupPathOptions = {},
): string {
  const segs = podComponents(qos, uid, opts);
  if (containerId !== undefined) segs.push(runtime === 'crio' ? `crio-${containerId}` : containerId);
  return '/' + [...segs, ...(opts.below ?? [])].join('/');
}

/** cgroup v2 file content for a path. */
export function cgroupV2(path: string): string {
  return `0::${path}\n`;
}

const V1_CONTROLLERS = [
  'misc',
  'rdma',
  'pids',
  'hugetlb',
  'net_cls,net_prio',
  'perf_event',
  'cpuset',
  'blkio',
  'memory',
  'devices',
  'freezer',
  'cpu,cpuacct',
];

/**
 * cgroup v1 file content: one line per controller, highest hierarchy id first, then
 * `name=systemd`; `hybrid` adds the `0::<unified>` line of a hybrid host.
 */
export function cgroupV1(path: string, opts: { systemdPath?: string; unified?: string } = {}): string {
  const n = V1_CONTROLLERS.length + 1;
  const lines = V1_CONTROLLERS.map((c, i) => `${n - i}:${c}:${path}`);
  lines.push(`1:name=systemd:${opts.systemdPath ?? path}`);
  if (opts.unified !== undefined) lines.push(`0::${opts.unified}`);
  return lines.join('\n') + '\n';
}

export function cgroupV2Systemd(
  qos: QosClass,
  uid: string,
  runtime: Runtime,
  containerId?: string,
  opts?: CgroupPathOptions,
): string {
  return cgroupV2(systemdPodPath(qos, uid, runtime, containerId, opts));
}

export function cgroupV2Cgroupfs(
  qos: QosClass,
  uid: string,
  runtime: Runtime,
  containerId?: string,
  opts?: CgroupPathOptions,
): string {
  return cgroupV2(cgroupfsPodPath(qos, uid, runtime, containerId, opts));
}

export function cgroupV1Systemd(
  qos: QosClass,
  uid: string,
  runtime: Runtime,
  containerId?: string,
  opts?: CgroupPathOptions,
): string {
  return cgroupV1(systemdPodPath(qos, uid, runtime, containerId, opts));
}

export function cgroupV1Cgroupfs(
  qos: QosClass,
  uid: string,
  runtime: Runtime,
  containerId?: string,
  opts?: CgroupPathOptions,
): string {
  return cgroupV1(cgroupfsPodPath(qos, uid, runtime, containerId, opts));
}

/** A host (non-pod) process, cgroup v2 by default. */
export function hostCgroup(path = '/system.slice/nvidia-persistenced.service', version: 1 | 2 = 2): string {
  return version === 2 ? cgroupV2(path) : cgroupV1(path);
}
