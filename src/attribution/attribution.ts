/**
 * What the attribution stage hands the metric families: for each device (GPU or MIG
 * instance, by UUID) the containers that hold it, and what each container's processes use.
 * Plain data built once per rendered sample; the families never call back into attribution.
 */
export interface PodIdentity {
  namespace: string;
  pod: string;
  container: string;
  /** Set when known (cgroup path, or the Kubernetes API when pod metadata is on). */
  podUid?: string;
  /** Allowlisted pod labels as Prometheus label pairs (`label_<key>`), when pod metadata is on. */
  podLabels?: readonly (readonly [string, string])[];
}

/** How a DRA allocation names the device, as dcgm-exporter's DRA mode labels it. */
export interface DraHolding {
  claimName: string;
  claimNamespace: string;
  driver: string;
  pool: string;
  device: string;
  /** MIG devices only: the instance's profile and UUID. */
  migProfile?: string;
  migUuid?: string;
}

export interface DeviceHolder extends PodIdentity {
  /** Replica number when several containers share one GPU (time-slicing / MPS). */
  vgpu?: string;
  /** Set when the device was allocated through a DRA ResourceClaim. */
  dra?: DraHolding;
  /** Share of the device allocated: 1 (whole GPU), 1/replicas, or the MIG instance's slice. Undefined when unknown. */
  share?: number;
}

/** GPU use of one container's processes on one device, or of processes outside any pod. */
export interface ContainerUsage {
  deviceUuid: string;
  /** Undefined for processes that belong to no pod. */
  owner: PodIdentity | undefined;
  processes: number;
  usedMemoryBytes?: number;
  /** Sum of the processes' SM utilization (percent of the GPU); not available on MIG. */
  smUtilPercent?: number;
}

export interface SampleAttribution {
  holdersOf(deviceUuid: string): readonly DeviceHolder[];
  readonly usage: readonly ContainerUsage[];
  /** GPU processes whose owner could not be read from /proc (left out of usage). */
  readonly unplacedProcesses: number;
  /** Device ids in the kubelet's map that name no device of this sample, plus ids under NVIDIA resources that are not device ids. */
  readonly unknownDeviceIds: number;
  /** Devices of NVIDIA's DRA driver allocated on this node that could not be tied to a device of this sample. */
  readonly draUnresolvedDevices: number;
}

/** No kubelet, no process data: series carry no pod labels (as dcgm-exporter writes an unallocated device). */
export const NO_ATTRIBUTION: SampleAttribution = {
  holdersOf: () => [],
  usage: [],
  unplacedProcesses: 0,
  unknownDeviceIds: 0,
  draUnresolvedDevices: 0,
};
