/**
 * Host PID -> Kubernetes pod/container, without the API server.
 *
 * NVML reports host PIDs (the exporter runs with `hostPID: true` and the host cgroup
 * namespace). The pod UID and container id come from `/proc/<pid>/cgroup`; the names come
 * from the kubelet's log tree:
 *   - `<logRoot>/pods/<namespace>_<pod>_<uid>/`                      (pod UID -> names)
 *   - `<logRoot>/containers/<pod>_<namespace>_<container>-<id>.log`  (container id -> names)
 *
 * Everything here is synchronous and cheap: it runs on the main thread once per rendered sample for
 * the handful of pids NVML reports. A steady state reads two small files per pid
 * (`stat` to detect pid reuse; `cgroup` only on a cache miss) and no directories.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

export type ProcessOwner =
  | { kind: 'pod'; podUid: string; containerId?: string; namespace?: string; pod?: string; container?: string }
  | { kind: 'host' } // process exists but is not in any pod cgroup
  | { kind: 'unknown'; reason: string }; // pid vanished / cgroup file unreadable

export type PodOwner = Extract<ProcessOwner, { kind: 'pod' }>;

export interface PodCgroup {
  podUid: string;
  /** Runtime container id (64 hex), absent when the process sits in the pod cgroup itself. */
  containerId?: string;
}

// ---------------------------------------------------------------------------------------
// cgroup parsing
// ---------------------------------------------------------------------------------------

/**
 * Pod slice of the systemd cgroup driver, with any cgroup-root prefix and QoS segment:
 * `kubepods-pod<uid>.slice`, `kubepods-burstable-pod<uid>.slice`,
 * `kubelet-kubepods-besteffort-pod<uid>.slice`. Systemd escapes `-` in the UID as `_`.
 */
const SYSTEMD_POD = /^(?:[^/]+-)?kubepods(?:-[a-z]+)?-pod([0-9A-Za-z_]+)\.slice$/;
/** Pod directory of the cgroupfs driver: `pod<uid>` under `kubepods[/<qos>]`. */
const CGROUPFS_POD = /^pod([0-9A-Za-z][0-9A-Za-z-]*)$/;
const QOS_DIRS = new Set(['burstable', 'besteffort']);
/**
 * Container cgroup right below the pod cgroup: `cri-containerd-<id>.scope`, `crio-<id>.scope`,
 * `docker-<id>.scope` (systemd driver), `<id>` or `crio-<id>` (cgroupfs driver).
 * `crio-conmon-<id>.scope` (CRI-O's monitor, not the container) deliberately does not match.
 */
const CONTAINER = /^(?:(?:cri-containerd|crio|cri-o|docker)-)?([0-9a-f]{64})(?:\.scope)?$/;

/** Parses one cgroup path (as in `/proc/<pid>/cgroup`); undefined when it is not a pod cgroup. */
export function podFromCgroupPath(path: string): PodCgroup | undefined {
  let p = path.trim();
  // cgroup v2 marks a removed cgroup: `0::/kubepods.slice/... (deleted)`
  if (p.endsWith(' (deleted)')) p = p.slice(0, -' (deleted)'.length);
  const segs = p.split('/');
  for (let i = 0; i < segs.length; i++) {
    const seg = segs[i]!;
    let podUid: string | undefined;
    const sd = SYSTEMD_POD.exec(seg);
    if (sd) {
      podUid = sd[1]!.replace(/_/g, '-');
    } else {
      const cf = CGROUPFS_POD.exec(seg);
      if (cf && underKubepods(segs, i)) podUid = cf[1]!;
    }
    if (podUid === undefined) continue;
    const next = segs[i + 1];
    const c = next === undefined ? null : CONTAINER.exec(next);
    return c ? { podUid, containerId: c[1]! } : { podUid };
  }
  return undefined;
}

/**
 * Whether cgroupfs segment `i` (a `pod<uid>` directory) sits in the kubelet's pod hierarchy:
 * its parent is `kubepods`, or a QoS directory whose parent is `kubepods`. A `..` parent
 * (the path as seen from a non-host cgroup namespace) is accepted too.
 */
function underKubepods(segs: readonly string[], i: number): boolean {
  let j = i - 1;
  if (j >= 0 && QOS_DIRS.has(segs[j]!)) j--;
  if (j < 0) return false;
  return segs[j] === 'kubepods' || segs[j] === '..';
}

/**
 * Parses /proc/<pid>/cgroup content; undefined when the process is not in a pod.
 * cgroup v2 is one line `0::<path>`; v1 has `<id>:<controllers>:<path>` lines, any of which
 * may name the pod (a line that also names the container wins).
 */
export function podFromCgroup(text: string): { podUid: string; containerId?: string } | undefined {
  let podOnly: PodCgroup | undefined;
  for (const line of text.split('\n')) {
    const a = line.indexOf(':');
    if (a < 0) continue;
    const b = line.indexOf(':', a + 1);
    if (b < 0) continue;
    const found = podFromCgroupPath(line.slice(b + 1));
    if (!found) continue;
    if (found.containerId !== undefined) return found;
    podOnly ??= found;
  }
  return podOnly;
}

/**
 * The process start time (field 22 of /proc/<pid>/stat, clock ticks since boot), as a
 * string. `comm` (field 2) is in parentheses and may itself contain spaces and parentheses,
 * so fields are counted from the LAST `)`.
 */
export function startTimeFromStat(text: string): string | undefined {
  const close = text.lastIndexOf(')');
  if (close < 0) return undefined;
  const fields = text.slice(close + 1).trim().split(/\s+/);
  // fields[0] is field 3 (state), so field 22 is fields[19]
  const v = fields[19];
  return v !== undefined && /^\d+$/.test(v) ? v : undefined;
}

// ---------------------------------------------------------------------------------------
// kubelet log tree
// ---------------------------------------------------------------------------------------

export interface PodNames {
  namespace: string;
  pod: string;
}
export interface ContainerNames extends PodNames {
  container: string;
}

/** `<namespace>_<pod>_<uid>` (none of the three can contain `_`). */
export function parsePodLogDirName(name: string): (PodNames & { uid: string }) | undefined {
  const parts = name.split('_');
  if (parts.length !== 3 || parts.some((x) => x === '')) return undefined;
  return { namespace: parts[0]!, pod: parts[1]!, uid: parts[2]! };
}

const CONTAINER_LOG = /^([^_]+)_([^_]+)_(.+)-([0-9a-f]{64})\.log$/;

/** `<pod>_<namespace>_<container>-<64 hex id>.log` (the container name may contain `-`). */
export function parseContainerLogName(name: string): (ContainerNames & { containerId: string }) | undefined {
  const m = CONTAINER_LOG.exec(name);
  if (!m) return undefined;
  return { pod: m[1]!, namespace: m[2]!, container: m[3]!, containerId: m[4]! };
}

/** A snapshot of the kubelet's log directories, indexed by pod UID and container id. */
export class KubeletLogIndex {
  readonly pods = new Map<string, PodNames>();
  readonly containers = new Map<string, ContainerNames>();

  /** Reads `<logRoot>/pods` and `<logRoot>/containers`; a missing directory reads as empty. */
  static read(logRoot: string): KubeletLogIndex {
    const index = new KubeletLogIndex();
    for (const name of listDir(join(logRoot, 'pods'))) {
      const p = parsePodLogDirName(name);
      if (p) index.pods.set(p.uid, { namespace: p.namespace, pod: p.pod });
    }
    for (const name of listDir(join(logRoot, 'containers'))) {
      const c = parseContainerLogName(name);
      if (c) index.containers.set(c.containerId, { namespace: c.namespace, pod: c.pod, container: c.container });
    }
    return index;
  }
}

function listDir(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

// ---------------------------------------------------------------------------------------
// resolver
// ---------------------------------------------------------------------------------------

export interface ProcessOwnerOptions {
  /** Host /proc (e.g. `/proc`, or `/host/proc` when mounted). */
  procRoot: string;
  /** Host /var/log (the directory that holds `pods/` and `containers/`). */
  logRoot: string;
  /** Milliseconds clock; defaults to Date.now. */
  now?: () => number;
  /** Least time between two reads of the log directories, in ms (default 5000). */
  logRefreshIntervalMs?: number;
}

export const DEFAULT_LOG_REFRESH_INTERVAL_MS = 5000;

interface CacheEntry {
  startTime: string;
  /** undefined: a host process. */
  pod: PodCgroup | undefined;
}

type ReadResult = { ok: true; text: string } | { ok: false; code: string };

function readText(path: string): ReadResult {
  try {
    return { ok: true, text: readFileSync(path, 'utf8') };
  } catch (e) {
    const code = (e as NodeJS.ErrnoException | undefined)?.code;
    return { ok: false, code: typeof code === 'string' ? code : String(e) };
  }
}

const GONE = new Set(['ENOENT', 'ESRCH']);

export class ProcessOwnerResolver {
  private readonly procRoot: string;
  private readonly logRoot: string;
  private readonly now: () => number;
  private readonly refreshMs: number;
  private readonly cache = new Map<number, CacheEntry>();
  private index: KubeletLogIndex | undefined;
  private indexReadAt = 0;
  private indexReads = 0;

  constructor(opts: ProcessOwnerOptions) {
    this.procRoot = opts.procRoot;
    this.logRoot = opts.logRoot;
    this.now = opts.now ?? Date.now;
    this.refreshMs = opts.logRefreshIntervalMs ?? DEFAULT_LOG_REFRESH_INTERVAL_MS;
  }

  /** How many times the log directories have been read (for tests and debugging). */
  get logIndexReadCount(): number {
    return this.indexReads;
  }

  /** Number of pids with a cached cgroup lookup. */
  get cachedPidCount(): number {
    return this.cache.size;
  }

  ownerOf(pid: number): ProcessOwner {
    try {
      return this.resolve(pid);
    } catch (e) {
      // nothing below is expected to throw; stay true to "never throws" anyway
      return { kind: 'unknown', reason: `pid ${pid}: ${e instanceof Error ? e.message : String(e)}` };
    }
  }

  /** Drops cached entries for pids not in this set (call once per rendered sample with the live pids). */
  retain(livePids: Iterable<number>): void {
    const live = livePids instanceof Set ? (livePids as Set<number>) : new Set(livePids);
    for (const pid of this.cache.keys()) if (!live.has(pid)) this.cache.delete(pid);
  }

  private resolve(pid: number): ProcessOwner {
    if (!Number.isSafeInteger(pid) || pid <= 0) return { kind: 'unknown', reason: `invalid pid ${pid}` };
    const start = this.startTime(pid);
    if (!start.ok) {
      this.cache.delete(pid);
      return { kind: 'unknown', reason: start.reason };
    }
    let entry = this.cache.get(pid);
    if (entry === undefined || entry.startTime !== start.value) {
      this.cache.delete(pid);
      const cg = readText(join(this.procRoot, String(pid), 'cgroup'));
      if (!cg.ok) {
        return {
          kind: 'unknown',
          reason: GONE.has(cg.code) ? `pid ${pid} vanished` : `pid ${pid}: cannot read cgroup (${cg.code})`,
        };
      }
      // the pid may have exited and been reused between the two reads: check it is the same process
      const again = this.startTime(pid);
      if (!again.ok) return { kind: 'unknown', reason: again.reason };
      if (again.value !== start.value) return { kind: 'unknown', reason: `pid ${pid} was reused during lookup` };
      entry = { startTime: start.value, pod: podFromCgroup(cg.text) };
      this.cache.set(pid, entry);
    }
    if (entry.pod === undefined) return { kind: 'host' };
    return this.withNames(entry.pod);
  }

  private startTime(pid: number): { ok: true; value: string } | { ok: false; reason: string } {
    const st = readText(join(this.procRoot, String(pid), 'stat'));
    if (!st.ok) {
      return {
        ok: false,
        reason: GONE.has(st.code) ? `pid ${pid} vanished` : `pid ${pid}: cannot read stat (${st.code})`,
      };
    }
    const value = startTimeFromStat(st.text);
    if (value === undefined) return { ok: false, reason: `pid ${pid}: malformed stat` };
    return { ok: true, value };
  }

  private withNames(p: PodCgroup): PodOwner {
    let index = this.index;
    let fresh = false;
    if (index === undefined) {
      index = this.readIndex();
      fresh = true;
    }
    let pod = index.pods.get(p.podUid);
    let ctr = p.containerId === undefined ? undefined : index.containers.get(p.containerId);
    const missing = pod === undefined || (p.containerId !== undefined && ctr === undefined);
    // a pod or container started after the last read: look again, but at most once per interval
    if (missing && !fresh && this.now() - this.indexReadAt >= this.refreshMs) {
      index = this.readIndex();
      pod = index.pods.get(p.podUid);
      ctr = p.containerId === undefined ? undefined : index.containers.get(p.containerId);
    }
    const owner: PodOwner = { kind: 'pod', podUid: p.podUid };
    if (p.containerId !== undefined) owner.containerId = p.containerId;
    const names = pod ?? ctr;
    if (names) {
      owner.namespace = names.namespace;
      owner.pod = names.pod;
    }
    // the container log name carries no UID: trust it only for the pod it names
    if (ctr && names && ctr.namespace === names.namespace && ctr.pod === names.pod) owner.container = ctr.container;
    return owner;
  }

  private readIndex(): KubeletLogIndex {
    const index = KubeletLogIndex.read(this.logRoot);
    this.index = index;
    this.indexReadAt = this.now();
    this.indexReads++;
    return index;
  }
}
