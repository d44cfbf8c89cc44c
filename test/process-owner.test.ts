import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  parseContainerLogName,
  parsePodLogDirName,
  podFromCgroup,
  ProcessOwnerResolver,
  startTimeFromStat,
} from '../src/attribution/process-owner.js';
import {
  cgroupfsPodPath,
  cgroupV1,
  cgroupV1Cgroupfs,
  cgroupV1Systemd,
  cgroupV2,
  cgroupV2Cgroupfs,
  cgroupV2Systemd,
  createFakeHost,
  hostCgroup,
  randomContainerId,
  randomPodUid,
  randomStaticPodUid,
  statLine,
  systemdPodPath,
  type FakeHost,
  type QosClass,
  type Runtime,
} from '../src/sim/fake-host.js';

const UID = '0f5b4a3c-1d2e-4f60-8a9b-0c1d2e3f4a5b';
const UID_SD = '0f5b4a3c_1d2e_4f60_8a9b_0c1d2e3f4a5b';
const STATIC_UID = '3f0e2a9b8c7d6e5f4a3b2c1d0e9f8a7b';
const CID = 'a'.repeat(8) + '0123456789abcdef'.repeat(3) + 'b'.repeat(8);

describe('podFromCgroup: literal kernel lines', () => {
  it.each([
    [
      'v2 systemd containerd burstable',
      `0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod${UID_SD}.slice/cri-containerd-${CID}.scope\n`,
      { podUid: UID, containerId: CID },
    ],
    [
      'v2 systemd containerd besteffort',
      `0::/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod${UID_SD}.slice/cri-containerd-${CID}.scope`,
      { podUid: UID, containerId: CID },
    ],
    [
      'v2 systemd containerd guaranteed (no QoS slice)',
      `0::/kubepods.slice/kubepods-pod${UID_SD}.slice/cri-containerd-${CID}.scope`,
      { podUid: UID, containerId: CID },
    ],
    [
      'v2 systemd CRI-O',
      `0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod${UID_SD}.slice/crio-${CID}.scope`,
      { podUid: UID, containerId: CID },
    ],
    [
      'v2 systemd docker',
      `0::/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod${UID_SD}.slice/docker-${CID}.scope`,
      { podUid: UID, containerId: CID },
    ],
    ['v2 cgroupfs containerd burstable', `0::/kubepods/burstable/pod${UID}/${CID}`, { podUid: UID, containerId: CID }],
    ['v2 cgroupfs containerd besteffort', `0::/kubepods/besteffort/pod${UID}/${CID}`, { podUid: UID, containerId: CID }],
    ['v2 cgroupfs guaranteed', `0::/kubepods/pod${UID}/${CID}`, { podUid: UID, containerId: CID }],
    ['v2 cgroupfs CRI-O', `0::/kubepods/burstable/pod${UID}/crio-${CID}`, { podUid: UID, containerId: CID }],
    [
      'kind/k3s systemd under kubelet.slice',
      `0::/kubelet.slice/kubelet-kubepods.slice/kubelet-kubepods-besteffort.slice/kubelet-kubepods-besteffort-pod${UID_SD}.slice/cri-containerd-${CID}.scope`,
      { podUid: UID, containerId: CID },
    ],
    ['kind/k3s cgroupfs under /kubelet', `0::/kubelet/kubepods/burstable/pod${UID}/${CID}`, { podUid: UID, containerId: CID }],
    [
      'kind node without cgroupns (docker prefix)',
      `0::/docker/${'c'.repeat(64)}/kubelet/kubepods/besteffort/pod${UID}/${CID}`,
      { podUid: UID, containerId: CID },
    ],
    [
      'static pod (32 hex UID), systemd',
      `0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod${STATIC_UID}.slice/cri-containerd-${CID}.scope`,
      { podUid: STATIC_UID, containerId: CID },
    ],
    ['static pod (32 hex UID), cgroupfs', `0::/kubepods/pod${STATIC_UID}/${CID}`, { podUid: STATIC_UID, containerId: CID }],
    [
      'process in the pod slice itself',
      `0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod${UID_SD}.slice`,
      { podUid: UID },
    ],
    ['process in the cgroupfs pod dir itself', `0::/kubepods/burstable/pod${UID}`, { podUid: UID }],
    [
      'CRI-O conmon beside the container is the pod, not the container',
      `0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod${UID_SD}.slice/crio-conmon-${CID}.scope`,
      { podUid: UID },
    ],
    [
      'nested cgroup inside the container',
      `0::/kubepods.slice/kubepods-pod${UID_SD}.slice/cri-containerd-${CID}.scope/init.scope`,
      { podUid: UID, containerId: CID },
    ],
    [
      'removed cgroup (v2 "(deleted)")',
      `0::/kubepods.slice/kubepods-pod${UID_SD}.slice/cri-containerd-${CID}.scope (deleted)\n`,
      { podUid: UID, containerId: CID },
    ],
    [
      'seen from a non-host cgroup namespace (relative ..)',
      `0::/../../kubepods-besteffort-pod${UID_SD}.slice/cri-containerd-${CID}.scope`,
      { podUid: UID, containerId: CID },
    ],
    ['cgroupfs seen from a non-host cgroup namespace', `0::/../../burstable/pod${UID}/${CID}`, { podUid: UID, containerId: CID }],
  ])('%s', (_name, text, expected) => {
    expect(podFromCgroup(text)).toEqual(expected);
  });

  it('v1: every controller line names the pod', () => {
    const text = [
      `12:pids:/kubepods/burstable/pod${UID}/${CID}`,
      `11:memory:/kubepods/burstable/pod${UID}/${CID}`,
      `10:cpu,cpuacct:/kubepods/burstable/pod${UID}/${CID}`,
      `1:name=systemd:/kubepods/burstable/pod${UID}/${CID}`,
    ].join('\n');
    expect(podFromCgroup(text)).toEqual({ podUid: UID, containerId: CID });
  });

  it('v1: uses any line whose path is a pod path', () => {
    const text = [
      '12:pids:/',
      '11:memory:/system.slice/containerd.service',
      `10:devices:/kubepods.slice/kubepods-pod${UID_SD}.slice/cri-containerd-${CID}.scope`,
      '1:name=systemd:/init.scope',
      '0::/',
    ].join('\n');
    expect(podFromCgroup(text)).toEqual({ podUid: UID, containerId: CID });
  });

  it('v1: a line naming the container wins over one naming only the pod', () => {
    const text = [
      `12:pids:/kubepods/pod${UID}`,
      `11:memory:/kubepods/pod${UID}/${CID}`,
      `1:name=systemd:/kubepods/pod${UID}`,
    ].join('\n');
    expect(podFromCgroup(text)).toEqual({ podUid: UID, containerId: CID });
  });

  it.each([
    ['root', '0::/\n'],
    ['empty file', ''],
    ['systemd service', '0::/system.slice/nvidia-persistenced.service\n'],
    ['containerd itself', '0::/system.slice/containerd.service\n'],
    ['user session', '0::/user.slice/user-1000.slice/session-3.scope\n'],
    ['plain docker container, not a pod', `0::/system.slice/docker-${CID}.scope\n`],
    ['QoS slice only', '0::/kubepods.slice/kubepods-burstable.slice\n'],
    ['kubepods root only', '0::/kubepods\n'],
    ['pod-like dir outside kubepods', `0::/machine/pod${UID}/${CID}\n`],
    ['pod-like slice outside kubepods', `0::/system.slice/pod${UID_SD}.slice\n`],
    ['v1 host process', '12:pids:/system.slice/sshd.service\n11:memory:/\n1:name=systemd:/system.slice/sshd.service\n'],
    ['garbage', 'not a cgroup file at all\n\n::::\n'],
  ])('host: %s', (_name, text) => {
    expect(podFromCgroup(text)).toBeUndefined();
  });
});

describe('podFromCgroup: every generated layout', () => {
  const runtimes: Runtime[] = ['containerd', 'crio', 'docker'];
  const qoses: QosClass[] = ['guaranteed', 'burstable', 'besteffort'];
  const roots: (string[] | undefined)[] = [undefined, ['kubelet']];
  const uids = [randomPodUid(), randomStaticPodUid()];
  for (const runtime of runtimes)
    for (const qos of qoses)
      for (const cgroupRoot of roots)
        for (const uid of uids) {
          const id = randomContainerId();
          const label = `${runtime} ${qos} ${cgroupRoot ? 'nested ' : ''}${uid.length === 32 ? 'static' : 'uuid'}`;
          it(label, () => {
            const opts = { cgroupRoot };
            for (const text of [
              cgroupV2Systemd(qos, uid, runtime, id, opts),
              cgroupV2Cgroupfs(qos, uid, runtime, id, opts),
              cgroupV1Systemd(qos, uid, runtime, id, opts),
              cgroupV1Cgroupfs(qos, uid, runtime, id, opts),
            ]) {
              expect(podFromCgroup(text), text).toEqual({ podUid: uid, containerId: id });
            }
            for (const text of [
              cgroupV2Systemd(qos, uid, runtime, undefined, opts),
              cgroupV1Cgroupfs(qos, uid, runtime, undefined, opts),
            ]) {
              expect(podFromCgroup(text), text).toEqual({ podUid: uid });
            }
          });
        }

  it('the generators write what the kubelet writes', () => {
    expect(systemdPodPath('burstable', UID, 'containerd', CID)).toBe(
      `/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod${UID_SD}.slice/cri-containerd-${CID}.scope`,
    );
    expect(systemdPodPath('guaranteed', UID, 'crio', CID, { cgroupRoot: ['kubelet'] })).toBe(
      `/kubelet.slice/kubelet-kubepods.slice/kubelet-kubepods-pod${UID_SD}.slice/crio-${CID}.scope`,
    );
    expect(cgroupfsPodPath('besteffort', UID, 'crio', CID)).toBe(`/kubepods/besteffort/pod${UID}/crio-${CID}`);
    expect(cgroupfsPodPath('guaranteed', UID, 'containerd', CID, { cgroupRoot: ['kubelet'] })).toBe(
      `/kubelet/kubepods/pod${UID}/${CID}`,
    );
  });
});

describe('parsers', () => {
  it('start time is field 22 even when comm has spaces and parentheses', () => {
    expect(startTimeFromStat(statLine(7, 'python3', 123456))).toBe('123456');
    expect(startTimeFromStat(statLine(7, 'a b) (c d', 987))).toBe('987');
    expect(startTimeFromStat(statLine(7, ') 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 (', 55))).toBe('55');
    expect(startTimeFromStat(statLine(7, '', 1))).toBe('1');
    expect(startTimeFromStat('7 (short) S 1 2 3')).toBeUndefined();
    expect(startTimeFromStat('no parentheses')).toBeUndefined();
  });

  it('pod log dir names', () => {
    expect(parsePodLogDirName(`kube-system_etcd-node-1_${STATIC_UID}`)).toEqual({
      namespace: 'kube-system',
      pod: 'etcd-node-1',
      uid: STATIC_UID,
    });
    expect(parsePodLogDirName(`ns_my.pod.with.dots_${UID}`)).toEqual({ namespace: 'ns', pod: 'my.pod.with.dots', uid: UID });
    expect(parsePodLogDirName('only_two')).toBeUndefined();
    expect(parsePodLogDirName('a_b_c_d')).toBeUndefined();
    expect(parsePodLogDirName(`_pod_${UID}`)).toBeUndefined();
  });

  it('container log names split on the last - before the id', () => {
    expect(parseContainerLogName(`web-7d9f-abcde_prod-eu_side-car-2-${CID}.log`)).toEqual({
      pod: 'web-7d9f-abcde',
      namespace: 'prod-eu',
      container: 'side-car-2',
      containerId: CID,
    });
    expect(parseContainerLogName(`p_n_c-${CID}.log`)).toEqual({ pod: 'p', namespace: 'n', container: 'c', containerId: CID });
    expect(parseContainerLogName(`p_n_c-${CID}.log.1`)).toBeUndefined();
    expect(parseContainerLogName(`p_n_c-${CID.slice(1)}.log`)).toBeUndefined();
    expect(parseContainerLogName(`p_n_${CID}.log`)).toBeUndefined();
  });
});

describe('ProcessOwnerResolver on a fake host', () => {
  let host: FakeHost;
  let t: number;
  let resolver: ProcessOwnerResolver;

  beforeEach(() => {
    host = createFakeHost();
    t = 1_000_000;
    resolver = new ProcessOwnerResolver({ procRoot: host.procRoot, logRoot: host.logRoot, now: () => t });
  });
  afterEach(() => host.cleanup());

  it('resolves a containerd pod process to namespace/pod/container', () => {
    const uid = randomPodUid();
    const id = randomContainerId();
    host.addPod({ namespace: 'ml', name: 'trainer-0', uid, containers: [{ name: 'main', id }] });
    host.addProcess({ pid: 4242, cgroup: cgroupV2Systemd('burstable', uid, 'containerd', id) });
    expect(resolver.ownerOf(4242)).toEqual({
      kind: 'pod',
      podUid: uid,
      containerId: id,
      namespace: 'ml',
      pod: 'trainer-0',
      container: 'main',
    });
  });

  it('picks the right container among several pods and containers, v1 and v2, both drivers', () => {
    const a = { uid: randomPodUid(), ids: [randomContainerId(), randomContainerId()] };
    const b = { uid: randomStaticPodUid(), ids: [randomContainerId()] };
    host.addPod({
      namespace: 'team-a',
      name: 'job-1',
      uid: a.uid,
      containers: [
        { name: 'worker', id: a.ids[0]! },
        { name: 'logger', id: a.ids[1]! },
      ],
    });
    host.addPod({ namespace: 'kube-system', name: 'gpu-probe-node-1', uid: b.uid, containers: [{ name: 'probe', id: b.ids[0]! }] });
    host.addProcess({ pid: 10, cgroup: cgroupV1Cgroupfs('guaranteed', a.uid, 'containerd', a.ids[0]) });
    host.addProcess({ pid: 11, cgroup: cgroupV2Cgroupfs('besteffort', a.uid, 'crio', a.ids[1]) });
    host.addProcess({ pid: 12, cgroup: cgroupV1Systemd('burstable', b.uid, 'crio', b.ids[0]) });
    host.addProcess({ pid: 13, cgroup: hostCgroup() });
    expect(resolver.ownerOf(10)).toMatchObject({ kind: 'pod', namespace: 'team-a', pod: 'job-1', container: 'worker' });
    expect(resolver.ownerOf(11)).toMatchObject({ kind: 'pod', namespace: 'team-a', pod: 'job-1', container: 'logger' });
    expect(resolver.ownerOf(12)).toEqual({
      kind: 'pod',
      podUid: b.uid,
      containerId: b.ids[0],
      namespace: 'kube-system',
      pod: 'gpu-probe-node-1',
      container: 'probe',
    });
    expect(resolver.ownerOf(13)).toEqual({ kind: 'host' });
    // one directory read served all four lookups
    expect(resolver.logIndexReadCount).toBe(1);
  });

  it('host processes: services, user sessions, root cgroup, v1', () => {
    host.addProcess({ pid: 1, cgroup: cgroupV2('/init.scope') });
    host.addProcess({ pid: 2, cgroup: cgroupV2('/') });
    host.addProcess({ pid: 3, cgroup: hostCgroup('/user.slice/user-1000.slice/session-4.scope') });
    host.addProcess({ pid: 4, cgroup: hostCgroup('/system.slice/foo.service', 1) });
    for (const pid of [1, 2, 3, 4]) expect(resolver.ownerOf(pid)).toEqual({ kind: 'host' });
    expect(resolver.logIndexReadCount).toBe(0);
  });

  it('a process in the pod slice but in no container gets the pod without a container', () => {
    const uid = randomPodUid();
    host.addPod({ namespace: 'ns', name: 'p', uid, containers: [{ name: 'c', id: randomContainerId() }] });
    host.addProcess({ pid: 50, cgroup: cgroupV2Systemd('besteffort', uid, 'containerd') });
    expect(resolver.ownerOf(50)).toEqual({ kind: 'pod', podUid: uid, namespace: 'ns', pod: 'p' });
  });

  it('static pod UID (32 hex) is kept as is and found in the log tree', () => {
    const uid = randomStaticPodUid();
    const id = randomContainerId();
    host.addPod({ namespace: 'kube-system', name: 'kube-apiserver-cp-1', uid, containers: [{ name: 'kube-apiserver', id }] });
    host.addProcess({ pid: 77, cgroup: cgroupV2Systemd('burstable', uid, 'containerd', id) });
    expect(resolver.ownerOf(77)).toEqual({
      kind: 'pod',
      podUid: uid,
      containerId: id,
      namespace: 'kube-system',
      pod: 'kube-apiserver-cp-1',
      container: 'kube-apiserver',
    });
  });

  it('nested kubelet cgroup root (kind/k3s)', () => {
    const uid = randomPodUid();
    const id = randomContainerId();
    host.addPod({ namespace: 'default', name: 'cuda-vectoradd', uid, containers: [{ name: 'cuda', id }] });
    host.addProcess({ pid: 5, cgroup: cgroupV2Systemd('besteffort', uid, 'containerd', id, { cgroupRoot: ['kubelet'] }) });
    host.addProcess({ pid: 6, cgroup: cgroupV1Cgroupfs('besteffort', uid, 'containerd', id, { cgroupRoot: ['kubelet'] }) });
    for (const pid of [5, 6]) {
      expect(resolver.ownerOf(pid)).toMatchObject({ kind: 'pod', podUid: uid, pod: 'cuda-vectoradd', container: 'cuda' });
    }
  });

  it('odd but valid names', () => {
    const cases = [
      { namespace: '1a', name: 'x', container: 'c' },
      { namespace: 'prod-eu-west-1', name: 'web.example.com-5f7d8-x2kq9', container: 'side-car-2' },
      // long names (a log file name must still fit in 255 bytes)
      { namespace: 'n', name: 'a'.repeat(100) + '.b-0', container: 'b'.repeat(63) },
      { namespace: 'deadbeef', name: 'cafe-0', container: 'abcdef0123' },
      { namespace: 'ns', name: 'p-1', container: 'container-with-many-dashes-and-9' },
    ];
    cases.forEach((c, i) => {
      const uid = i === 2 ? randomStaticPodUid() : randomPodUid();
      const id = randomContainerId();
      host.addPod({ namespace: c.namespace, name: c.name, uid, containers: [{ name: c.container, id }] });
      host.addProcess({ pid: 100 + i, cgroup: cgroupV2Cgroupfs('burstable', uid, 'containerd', id), comm: 'weird) (comm 1 2' });
    });
    cases.forEach((c, i) => {
      expect(resolver.ownerOf(100 + i)).toMatchObject({
        kind: 'pod',
        namespace: c.namespace,
        pod: c.name,
        container: c.container,
      });
    });
  });

  it('no log tree at all: still the pod, with UID and container id only', () => {
    const bare = new ProcessOwnerResolver({ procRoot: host.procRoot, logRoot: `${host.root}/nonexistent`, now: () => t });
    const uid = randomPodUid();
    const id = randomContainerId();
    host.addProcess({ pid: 9, cgroup: cgroupV2Systemd('burstable', uid, 'crio', id) });
    expect(bare.ownerOf(9)).toEqual({ kind: 'pod', podUid: uid, containerId: id });
  });

  it('pod found but container log missing: pod names without container', () => {
    const uid = randomPodUid();
    host.addPod({ namespace: 'ns', name: 'p', uid, containers: [] });
    const id = randomContainerId();
    host.addProcess({ pid: 9, cgroup: cgroupV2Systemd('guaranteed', uid, 'containerd', id) });
    expect(resolver.ownerOf(9)).toEqual({ kind: 'pod', podUid: uid, containerId: id, namespace: 'ns', pod: 'p' });
  });

  it('container log found but pod dir missing: names from the container log', () => {
    const uid = randomPodUid();
    const id = randomContainerId();
    host.addPod({ namespace: 'ns', name: 'p', uid: randomPodUid(), containers: [{ name: 'c', id }] });
    host.addProcess({ pid: 9, cgroup: cgroupV2Systemd('guaranteed', uid, 'containerd', id) });
    expect(resolver.ownerOf(9)).toEqual({ kind: 'pod', podUid: uid, containerId: id, namespace: 'ns', pod: 'p', container: 'c' });
  });

  it('vanished pid and unreadable files give unknown, never throw', () => {
    expect(resolver.ownerOf(31337)).toEqual({ kind: 'unknown', reason: 'pid 31337 vanished' });
    host.addProcess({ pid: 20, cgroup: '', unreadable: 'cgroup' });
    host.addProcess({ pid: 21, cgroup: hostCgroup(), unreadable: 'stat' });
    const r20 = resolver.ownerOf(20);
    expect(r20.kind).toBe('unknown');
    expect(r20.kind === 'unknown' && r20.reason).toMatch(/pid 20: cannot read cgroup \(EISDIR\)/);
    const r21 = resolver.ownerOf(21);
    expect(r21.kind === 'unknown' && r21.reason).toMatch(/pid 21: cannot read stat/);
    for (const bad of [0, -1, 1.5, Number.NaN]) {
      expect(resolver.ownerOf(bad)).toMatchObject({ kind: 'unknown' });
    }
  });

  it('malformed stat gives unknown', async () => {
    const { writeFileSync } = await import('node:fs');
    host.addProcess({ pid: 22, cgroup: hostCgroup() });
    writeFileSync(`${host.procRoot}/22/stat`, '22 (x) S 1\n');
    expect(resolver.ownerOf(22)).toEqual({ kind: 'unknown', reason: 'pid 22: malformed stat' });
  });

  it('a pid that exits after a lookup turns unknown, and its cache entry goes', () => {
    const uid = randomPodUid();
    const id = randomContainerId();
    host.addPod({ namespace: 'ns', name: 'p', uid, containers: [{ name: 'c', id }] });
    host.addProcess({ pid: 30, cgroup: cgroupV2Systemd('burstable', uid, 'containerd', id) });
    expect(resolver.ownerOf(30).kind).toBe('pod');
    expect(resolver.cachedPidCount).toBe(1);
    host.removeProcess(30);
    expect(resolver.ownerOf(30)).toEqual({ kind: 'unknown', reason: 'pid 30 vanished' });
    expect(resolver.cachedPidCount).toBe(0);
  });

  it('caches per pid: same start time -> cgroup not re-read', () => {
    const uid = randomPodUid();
    const id = randomContainerId();
    host.addPod({ namespace: 'ns', name: 'p', uid, containers: [{ name: 'c', id }] });
    host.addProcess({ pid: 40, cgroup: cgroupV2Systemd('burstable', uid, 'containerd', id), startTime: 5000 });
    expect(resolver.ownerOf(40)).toMatchObject({ pod: 'p', container: 'c' });
    // the same process (same start time): the cached cgroup answer stands
    host.setCgroup(40, hostCgroup());
    expect(resolver.ownerOf(40)).toMatchObject({ pod: 'p', container: 'c' });
  });

  it('pid reuse: same pid, new start time, new cgroup -> new owner', () => {
    const a = { uid: randomPodUid(), id: randomContainerId() };
    const b = { uid: randomPodUid(), id: randomContainerId() };
    host.addPod({ namespace: 'ns', name: 'first', uid: a.uid, containers: [{ name: 'one', id: a.id }] });
    host.addPod({ namespace: 'other', name: 'second', uid: b.uid, containers: [{ name: 'two', id: b.id }] });
    host.addProcess({ pid: 41, cgroup: cgroupV2Systemd('burstable', a.uid, 'containerd', a.id), startTime: 1000 });
    expect(resolver.ownerOf(41)).toMatchObject({ podUid: a.uid, pod: 'first', container: 'one' });
    host.addProcess({ pid: 41, cgroup: cgroupV2Cgroupfs('besteffort', b.uid, 'crio', b.id), startTime: 2000 });
    expect(resolver.ownerOf(41)).toMatchObject({ podUid: b.uid, namespace: 'other', pod: 'second', container: 'two' });
    host.addProcess({ pid: 41, cgroup: hostCgroup(), startTime: 3000 });
    expect(resolver.ownerOf(41)).toEqual({ kind: 'host' });
    host.addProcess({ pid: 41, cgroup: cgroupV2Systemd('burstable', a.uid, 'containerd', a.id), startTime: 4000 });
    expect(resolver.ownerOf(41)).toMatchObject({ podUid: a.uid, container: 'one' });
  });

  it('a pod appearing after the first lookup is named after the refresh interval, not before', () => {
    const uid = randomPodUid();
    const id = randomContainerId();
    host.addProcess({ pid: 60, cgroup: cgroupV2Systemd('burstable', uid, 'containerd', id) });
    expect(resolver.ownerOf(60)).toEqual({ kind: 'pod', podUid: uid, containerId: id });
    expect(resolver.logIndexReadCount).toBe(1);

    host.addPod({ namespace: 'late', name: 'newcomer', uid, containers: [{ name: 'gpu', id }] });
    t += 1000;
    expect(resolver.ownerOf(60)).toEqual({ kind: 'pod', podUid: uid, containerId: id });
    t += 3999; // 4999 ms after the read
    expect(resolver.ownerOf(60)).toEqual({ kind: 'pod', podUid: uid, containerId: id });
    expect(resolver.logIndexReadCount).toBe(1);

    t += 1; // 5000 ms
    expect(resolver.ownerOf(60)).toEqual({
      kind: 'pod',
      podUid: uid,
      containerId: id,
      namespace: 'late',
      pod: 'newcomer',
      container: 'gpu',
    });
    expect(resolver.logIndexReadCount).toBe(2);
  });

  it('a restarted container (new id) in a known pod is named after the interval', () => {
    const uid = randomPodUid();
    const id1 = randomContainerId();
    const id2 = randomContainerId();
    host.addPod({ namespace: 'ns', name: 'p', uid, containers: [{ name: 'main', id: id1 }] });
    host.addProcess({ pid: 70, cgroup: cgroupV2Systemd('burstable', uid, 'containerd', id1), startTime: 1 });
    expect(resolver.ownerOf(70)).toMatchObject({ container: 'main', containerId: id1 });
    host.addContainer(uid, { name: 'main', id: id2 });
    host.addProcess({ pid: 71, cgroup: cgroupV2Systemd('burstable', uid, 'containerd', id2), startTime: 2 });
    // pod known, container not yet: pod names only, no re-read inside the interval
    expect(resolver.ownerOf(71)).toEqual({ kind: 'pod', podUid: uid, containerId: id2, namespace: 'ns', pod: 'p' });
    expect(resolver.logIndexReadCount).toBe(1);
    t += 5000;
    expect(resolver.ownerOf(71)).toMatchObject({ container: 'main', containerId: id2 });
    expect(resolver.logIndexReadCount).toBe(2);
  });

  it('steady state does no directory reads, however much time passes', () => {
    const uid = randomPodUid();
    const id = randomContainerId();
    host.addPod({ namespace: 'ns', name: 'p', uid, containers: [{ name: 'c', id }] });
    host.addProcess({ pid: 80, cgroup: cgroupV2Systemd('burstable', uid, 'containerd', id) });
    host.addProcess({ pid: 81, cgroup: hostCgroup() });
    for (let i = 0; i < 20; i++) {
      expect(resolver.ownerOf(80)).toMatchObject({ pod: 'p', container: 'c' });
      expect(resolver.ownerOf(81)).toEqual({ kind: 'host' });
      resolver.retain([80, 81]);
      t += 60_000;
    }
    expect(resolver.logIndexReadCount).toBe(1);
    // the names come from the snapshot: a pod deleted from the log tree keeps its names until a miss refreshes it
    host.removePod(uid);
    expect(resolver.ownerOf(80)).toMatchObject({ pod: 'p', container: 'c' });
    expect(resolver.logIndexReadCount).toBe(1);
  });

  it('a refresh drops pods that left the log tree', () => {
    const gone = { uid: randomPodUid(), id: randomContainerId() };
    host.addPod({ namespace: 'ns', name: 'gone', uid: gone.uid, containers: [{ name: 'c', id: gone.id }] });
    host.addProcess({ pid: 90, cgroup: cgroupV2Systemd('burstable', gone.uid, 'containerd', gone.id) });
    expect(resolver.ownerOf(90)).toMatchObject({ pod: 'gone' });
    host.removePod(gone.uid);
    // a miss on another pod forces a refresh after the interval
    const other = randomPodUid();
    host.addProcess({ pid: 91, cgroup: cgroupV2Systemd('burstable', other, 'containerd') });
    t += 5000;
    expect(resolver.ownerOf(91)).toEqual({ kind: 'pod', podUid: other });
    expect(resolver.logIndexReadCount).toBe(2);
    // the refreshed snapshot no longer names the removed pod; its next lookup is itself a miss, rate limited
    expect(resolver.ownerOf(90)).toEqual({ kind: 'pod', podUid: gone.uid, containerId: gone.id });
    expect(resolver.logIndexReadCount).toBe(2);
  });

  it('retain evicts dead pids and keeps live ones', () => {
    const uid = randomPodUid();
    const id = randomContainerId();
    host.addPod({ namespace: 'ns', name: 'p', uid, containers: [{ name: 'c', id }] });
    for (const pid of [1, 2, 3]) {
      host.addProcess({ pid, cgroup: cgroupV2Systemd('burstable', uid, 'containerd', id), startTime: 7 });
      expect(resolver.ownerOf(pid).kind).toBe('pod');
    }
    expect(resolver.cachedPidCount).toBe(3);
    resolver.retain(new Set([2]));
    expect(resolver.cachedPidCount).toBe(1);
    // evicted pids are read afresh (even with an unchanged start time), the kept one is not
    for (const pid of [1, 2]) host.setCgroup(pid, hostCgroup());
    expect(resolver.ownerOf(1)).toEqual({ kind: 'host' });
    expect(resolver.ownerOf(2)).toMatchObject({ kind: 'pod', container: 'c' });
    resolver.retain([]);
    expect(resolver.cachedPidCount).toBe(0);
    expect(resolver.ownerOf(2)).toEqual({ kind: 'host' });
  });

  it('unknown results are not cached', () => {
    host.addProcess({ pid: 95, cgroup: '', unreadable: 'cgroup', startTime: 9 });
    expect(resolver.ownerOf(95).kind).toBe('unknown');
    expect(resolver.cachedPidCount).toBe(0);
    host.addProcess({ pid: 95, cgroup: hostCgroup(), startTime: 9 });
    expect(resolver.ownerOf(95)).toEqual({ kind: 'host' });
  });

  it('uses Date.now and a 5 s interval by default', () => {
    const r = new ProcessOwnerResolver({ procRoot: host.procRoot, logRoot: host.logRoot });
    const uid = randomPodUid();
    host.addProcess({ pid: 96, cgroup: cgroupV2Systemd('burstable', uid, 'containerd') });
    expect(r.ownerOf(96)).toEqual({ kind: 'pod', podUid: uid });
    host.addPod({ namespace: 'ns', name: 'p', uid, containers: [] });
    expect(r.ownerOf(96)).toEqual({ kind: 'pod', podUid: uid }); // well within 5 s of the first read
    expect(r.logIndexReadCount).toBe(1);
  });
});
