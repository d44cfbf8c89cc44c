import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createFakeHost, cgroupV2Systemd, hostCgroup, type FakeHost } from './fake-host.js';
import { FakeKubelet } from './fake-kubelet.js';
import { allocatableResponse, listResponse, loadKubeletScenario, type KubeletScenario } from './kubelet-scenario.js';

/** The pods side of a simulated node: a fake kubelet and a fake host /proc + /var/log tree. */
export interface SimulatedPods {
  scenario: KubeletScenario;
  kubelet: FakeKubelet;
  host: FakeHost;
  /** Exporter flags that point it at this fake kubelet and host tree. */
  flags: string[];
  /** Serves a changed scenario (pods that come and go) and updates the host tree to match. */
  update(next: KubeletScenario): void;
  stop(): Promise<void>;
}

const EMPTY: KubeletScenario = { pods: [], allocatable: {}, hostPids: [] };

function writeHost(host: FakeHost, scenario: KubeletScenario, previous: KubeletScenario | undefined): void {
  for (const pod of previous?.pods ?? []) {
    host.removePod(pod.uid);
    for (const c of pod.containers) for (const pid of c.pids) host.removeProcess(pid);
  }
  for (const pid of previous?.hostPids ?? []) host.removeProcess(pid);
  for (const pod of scenario.pods) {
    host.addPod({ namespace: pod.namespace, name: pod.name, uid: pod.uid, containers: pod.containers.map((c) => ({ name: c.name, id: c.id })) });
    for (const c of pod.containers) {
      for (const pid of c.pids) host.addProcess({ pid, cgroup: cgroupV2Systemd('burstable', pod.uid, 'containerd', c.id) });
    }
  }
  for (const pid of scenario.hostPids) host.addProcess({ pid, cgroup: hostCgroup('/user.slice/user-1000.slice/session-4.scope') });
}

/**
 * Starts the pods of a scenario (its `.pods.json` beside the `.sim` file; none: a kubelet
 * with no pods) on a temporary unix socket.
 */
export async function startSimulatedPods(statePath: string): Promise<SimulatedPods> {
  let scenario = loadKubeletScenario(statePath) ?? EMPTY;
  const socketPath = path.join(mkdtempSync(path.join(os.tmpdir(), 'kge-kubelet-')), 'pod-resources', 'kubelet.sock');
  const kubelet = await FakeKubelet.start(socketPath, { list: listResponse(scenario), allocatable: allocatableResponse(scenario) });
  const host = createFakeHost();
  writeHost(host, scenario, undefined);
  return {
    get scenario() {
      return scenario;
    },
    kubelet,
    host,
    flags: [`--kubelet.socket=${socketPath}`, `--path.procfs=${host.procRoot}`, `--path.pod-logs=${host.logRoot}`],
    update(next) {
      writeHost(host, next, scenario);
      scenario = next;
      kubelet.setResponses({ list: listResponse(next), allocatable: allocatableResponse(next) });
    },
    async stop() {
      await kubelet.close();
      host.cleanup();
    },
  };
}
