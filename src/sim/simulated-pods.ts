import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createFakeHost, cgroupV2Systemd, hostCgroup, type FakeHost } from './fake-host.js';
import { FakeKubelet } from './fake-kubelet.js';
import { FakeResourceApi } from './fake-resource-api.js';
import { writeFakeKubeconfig } from './kubeconfig.js';
import { allocatableResponse, draSliceSpecs, listResponse, loadKubeletScenario, type KubeletScenario } from './kubelet-scenario.js';

/** The pods side of a simulated node: a fake kubelet and a fake host /proc + /var/log tree. */
export interface SimulatedPods {
  scenario: KubeletScenario;
  kubelet: FakeKubelet;
  host: FakeHost;
  /** The fake API server serving the node's ResourceSlices, when the scenario allocates through DRA. */
  resourceApi: FakeResourceApi | undefined;
  /** The node name the slices and DRA pools are published under. */
  nodeName: string;
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

export interface SimulatedPodsOptions {
  /** Node name of the DRA pool and slices (default: the host name, the exporter's default --node-name). */
  nodeName?: string;
}

/**
 * Starts the pods of a scenario (its `.pods.json` beside the `.sim` file; none: a kubelet
 * with no pods) on a temporary unix socket. A scenario with a `dra` section also gets a fake
 * API server serving its ResourceSlice, and the flags that turn the exporter's slice watch on.
 */
export async function startSimulatedPods(statePath: string, opts: SimulatedPodsOptions = {}): Promise<SimulatedPods> {
  const nodeName = opts.nodeName ?? os.hostname();
  let scenario = loadKubeletScenario(statePath) ?? EMPTY;
  const dir = mkdtempSync(path.join(os.tmpdir(), 'kge-kubelet-'));
  const socketPath = path.join(dir, 'pod-resources', 'kubelet.sock');
  const kubelet = await FakeKubelet.start(socketPath, { list: listResponse(scenario, nodeName), allocatable: allocatableResponse(scenario) });
  const host = createFakeHost();
  writeHost(host, scenario, undefined);
  const flags = [`--kubelet.socket=${socketPath}`, `--path.procfs=${host.procRoot}`, `--path.pod-logs=${host.logRoot}`];
  let resourceApi: FakeResourceApi | undefined;
  if (scenario.dra) {
    resourceApi = await FakeResourceApi.start();
    for (const slice of draSliceSpecs(scenario, nodeName)) resourceApi.putSlice(slice);
    flags.push('--kubernetes.dra=true', `--kubernetes.kubeconfig=${writeFakeKubeconfig(dir, resourceApi.url)}`, `--node-name=${nodeName}`);
  }
  return {
    get scenario() {
      return scenario;
    },
    kubelet,
    host,
    resourceApi,
    nodeName,
    flags,
    update(next) {
      writeHost(host, next, scenario);
      scenario = next;
      kubelet.setResponses({ list: listResponse(next, nodeName), allocatable: allocatableResponse(next) });
    },
    async stop() {
      await kubelet.close();
      await resourceApi?.close();
      host.cleanup();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
