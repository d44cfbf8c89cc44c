import { createHash } from 'node:crypto';

/**
 * The simulated 8x H100 node with every GPU in MIG mode, split into seven 1g.10gb instances
 * (56 in all), and 1,000 pods on it: `scenarios/h100x8-mig7.sim` and `h100x8-mig7.pods.json`
 * are this module's output (a test keeps them equal). One pod holds each MIG instance and runs
 * one process on it; the other 944 pods hold no GPU (some hold devices of other resources).
 */
export const MIG_NODE_GPUS = 8;
export const MIG_NODE_SLOTS = 7;
export const MIG_NODE_PODS = 1000;
export const MIG_NODE_PROFILE = '1g.10gb';

const PCI_BUSES = ['18', '2A', '3A', '5D', '9A', 'AB', 'BA', 'DB'];
/** GPU instance ids NVML gives seven 1g.10gb instances on an H100. */
const FIRST_GPU_INSTANCE_ID = 7;
const INSTANCE_MEM_MIB = 9984;
const PROCESS_MEM_BYTES = 1024 ** 3;

/** A stable UUID with the given prefix (GPU- or MIG-), from a name. */
function stableUuid(prefix: 'GPU' | 'MIG', name: string): string {
  const h = createHash('sha256').update(`h100x8-mig7/${name}`).digest('hex');
  return `${prefix}-${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}`;
}

/** Host pid of the process on MIG instance `slot` of GPU `gpu`. */
export function migProcessPid(gpu: number, slot: number): number {
  return 52000 + gpu * 100 + slot;
}

/** The pod that holds MIG instance `slot` of GPU `gpu`. */
export function migHolder(gpu: number, slot: number): { namespace: string; pod: string; container: string } {
  const n = gpu * MIG_NODE_SLOTS + slot;
  return n % 2 === 0
    ? { namespace: 'ml-batch', pod: `embed-${gpu}-${slot}`, container: 'worker' }
    : { namespace: 'inference', pod: `small-llm-${gpu}-${slot}`, container: 'server' };
}

export function migNodeSim(): string {
  const out: string[] = [
    '# 8x NVIDIA H100 80GB HBM3 (SXM5), every GPU in MIG mode with seven 1g.10gb instances (56 in all).',
    '# Its 1,000 pods are in h100x8-mig7.pods.json. Both files are written by src/sim/mig-node.ts',
    '# (UPDATE_GOLDEN=1 npx vitest run test/faults.test.ts). Format: docs/simulator.md.',
    'driver_version 535.161.08',
    'nvml_version 12.535.161.08',
    'cuda_version 12020',
    `device_count ${MIG_NODE_GPUS}`,
    '',
    'gpu.*.name NVIDIA H100 80GB HBM3',
    'gpu.*.pci_device_id 0x233010DE',
    'gpu.*.pci_subsystem_id 0x16C110DE',
    'gpu.*.mem_total 81559MiB',
    'gpu.*.mem_reserved 515MiB',
    'gpu.*.mem_used walk(13,21474836480,64424509440,536870912,1000)',
    'gpu.*.power_limit_mw 700000',
    'gpu.*.power_mw walk(16,250000,520000,10000,1000)',
    'gpu.*.energy_start_mj 250000000000',
    'gpu.*.temp_gpu walk(14,40,62,1,1000)',
    'gpu.*.temp_mem walk(15,44,68,1,1000)',
    'gpu.*.max_clock_graphics 1980',
    'gpu.*.max_clock_sm 1980',
    'gpu.*.max_clock_mem 2619',
    'gpu.*.max_clock_video 1545',
    'gpu.*.clock_sm walk(17,1500,1980,30,1000)',
    'gpu.*.clock_graphics walk(17,1500,1980,30,1000)',
    'gpu.*.clock_mem 2619',
    'gpu.*.clock_video 1545',
    'gpu.*.pstate 0',
    'gpu.*.enc_util 0',
    'gpu.*.dec_util 0',
    'gpu.*.clocks_event_reasons 0',
    'gpu.*.pcie_tx_kbps walk(18,10000,400000,20000,1000)',
    'gpu.*.pcie_rx_kbps walk(19,10000,600000,30000,1000)',
    '# PCIe Gen5 x16 (H100 SXM5)',
    'gpu.*.pcie_link_gen 5',
    'gpu.*.pcie_link_width 16',
    'gpu.*.pcie_max_link_gen 5',
    'gpu.*.pcie_max_link_width 16',
    'gpu.*.events_supported 0x400B',
    'gpu.*.ecc_sbe_vol 0',
    'gpu.*.ecc_dbe_vol 0',
    'gpu.*.ecc_sbe_agg 0',
    'gpu.*.ecc_dbe_agg 0',
    'gpu.*.retired_sbe 0',
    'gpu.*.retired_dbe 0',
    'gpu.*.retired_pending 0',
    'gpu.*.pcie_replay 0',
    'gpu.*.nvlink_links 18',
    'gpu.*.nvlink_crc_flit 0',
    'gpu.*.nvlink_crc_data 0',
    'gpu.*.nvlink_replay 0',
    'gpu.*.nvlink_recovery 0',
    'gpu.*.nvlink_tx_kib linear(1000000,2000000)',
    'gpu.*.nvlink_rx_kib linear(1000000,2000000)',
    'gpu.*.violation_power_ns 0',
    'gpu.*.violation_thermal_ns 0',
  ];
  for (let g = 0; g < MIG_NODE_GPUS; g++) {
    out.push('', `gpu.${g}.uuid ${stableUuid('GPU', `gpu${g}`)}`, `gpu.${g}.pci_bus_id 00000000:${PCI_BUSES[g]}:00.0`, `gpu.${g}.minor ${g}`, `gpu.${g}.serial ${1652023027500 + g}`, `gpu.${g}.mig_mode 1`);
    for (let s = 0; s < MIG_NODE_SLOTS; s++) {
      const p = `gpu.${g}.mig.${s}`;
      out.push(
        `${p}.uuid ${stableUuid('MIG', `gpu${g}/mig${s}`)}`,
        `${p}.profile ${MIG_NODE_PROFILE}`,
        `${p}.gi ${FIRST_GPU_INSTANCE_ID + s}`,
        `${p}.ci 0`,
        `${p}.mem_total ${INSTANCE_MEM_MIB}MiB`,
        `${p}.mem_reserved 0`,
        `${p}.mem_used walk(${200 + g * 10 + s},1073741824,8589934592,134217728,1000)`,
      );
    }
  }
  out.push('', '# one compute process per MIG instance, in the pod that holds the instance');
  let k = 0;
  for (let g = 0; g < MIG_NODE_GPUS; g++) {
    for (let s = 0; s < MIG_NODE_SLOTS; s++, k++) {
      out.push(`proc.${k}.gpu ${g}`, `proc.${k}.pid ${migProcessPid(g, s)}`, `proc.${k}.mem ${PROCESS_MEM_BYTES}`, `proc.${k}.gi ${FIRST_GPU_INSTANCE_ID + s}`, `proc.${k}.ci 0`);
    }
  }
  return out.join('\n') + '\n';
}

interface PodsFileContainer {
  name: string;
  devices?: Record<string, string[]>;
  pids?: number[];
  claims?: string[];
}
interface PodsFilePod {
  namespace: string;
  name: string;
  containers: PodsFileContainer[];
}

/** The pods that hold no GPU: one to three containers, some with devices of other resources. */
function otherPod(i: number): PodsFilePod {
  const containers: PodsFileContainer[] = [{ name: 'app' }];
  if (i % 3 === 0) containers[0]!.devices = { 'example.com/nic': [`nic-${i % 64}`] };
  if (i % 5 === 0) containers.push({ name: 'sidecar', devices: { 'xilinx.com/fpga-u250': [`fpga-${i % 4}`] } });
  if (i % 7 === 0) containers.push({ name: 'metrics' });
  return { namespace: `team-${i % 25}`, name: `service-${i}-${(i * 7919).toString(36).slice(-5)}`, containers };
}

export function migNodePods(): string {
  const pods: PodsFilePod[] = [];
  for (let g = 0; g < MIG_NODE_GPUS; g++) {
    for (let s = 0; s < MIG_NODE_SLOTS; s++) {
      const h = migHolder(g, s);
      const containers: PodsFileContainer[] = [{ name: h.container, devices: { [`nvidia.com/mig-${MIG_NODE_PROFILE}`]: [`mig:${g}.${s}`] }, pids: [migProcessPid(g, s)] }];
      if (h.namespace === 'inference') containers.push({ name: 'proxy' });
      pods.push({ namespace: h.namespace, name: h.pod, containers });
    }
  }
  for (let i = 0; pods.length < MIG_NODE_PODS; i++) pods.push(otherPod(i));
  const comment = 'Pods on the simulated node h100x8-mig7.sim: one per MIG instance, 944 without a GPU. Written by src/sim/mig-node.ts.';
  return `{\n  "comment": ${JSON.stringify(comment)},\n  "pods": [\n${pods.map((p) => `    ${JSON.stringify(p)}`).join(',\n')}\n  ]\n}\n`;
}

/**
 * The same node with 1,000 DRA claims (for the benchmark): each MIG instance allocated to its
 * pod through a claim of NVIDIA's driver, and each of the 944 other pods holding a claim of
 * another DRA driver (a NIC), which the exporter reads and leaves out.
 */
export function migNodeDraPods(): string {
  const devices: string[] = [];
  const claims: Record<string, unknown[]> = {};
  const pods: PodsFilePod[] = [];
  for (let g = 0; g < MIG_NODE_GPUS; g++) {
    for (let s = 0; s < MIG_NODE_SLOTS; s++) {
      const h = migHolder(g, s);
      const claim = `${h.namespace}/${h.pod}-mig`;
      devices.push(`mig:${g}.${s}`);
      claims[claim] = [`mig:${g}.${s}`];
      pods.push({ namespace: h.namespace, name: h.pod, containers: [{ name: h.container, claims: [claim], pids: [migProcessPid(g, s)] }] });
    }
  }
  for (let i = 0; pods.length < MIG_NODE_PODS; i++) {
    const pod = otherPod(i);
    const claim = `${pod.namespace}/${pod.name}-nic`;
    claims[claim] = [{ device: `nic-${i % 64}`, driver: 'nic.example.com' }];
    pod.containers[0]!.claims = [claim];
    pods.push(pod);
  }
  return JSON.stringify({ comment: 'h100x8-mig7 with 1,000 DRA claims, written by src/sim/mig-node.ts for the benchmark.', dra: { devices, claims }, pods }, null, 1) + '\n';
}
