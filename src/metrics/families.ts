import type { CollectorName } from '../collectors/index.js';
import type { ValueKey } from '../sample.js';
import type { FamilyDecl, MetricType, NamingScheme, SchemeName } from '../values/descriptor.js';
import { VALUES } from '../values/value-table.js';

export { bitLabels, type Entity, type LabelDimension, type MetricType, type NamingScheme, type SchemeName } from '../values/descriptor.js';

/**
 * Every metric family, declared once as data. The GPU families come from the value table
 * (src/values/value-table.ts), one or more per value; the renderer, the README's metrics table
 * and the drift test all read these tables.
 */
export const NAMING_SCHEMES: readonly NamingScheme[] = ['dcgm', 'prometheus'];

/** A family of a value: its declaration plus the value it exports and the collector that reads it. */
export interface GpuFamily extends FamilyDecl {
  source: ValueKey;
  collector: CollectorName;
}

export const GPU_FAMILIES: readonly GpuFamily[] = (Object.entries(VALUES) as [ValueKey, (typeof VALUES)[ValueKey]][]).flatMap(([source, v]) =>
  v.families.map((f: FamilyDecl): GpuFamily => ({ ...f, source, collector: v.collector })),
);

export function familyName(f: GpuFamily, scheme: NamingScheme): SchemeName {
  return scheme === 'dcgm' ? (f.dcgm ?? f.prometheus) : f.prometheus;
}

/** Identity series: one per GPU (and per MIG instance), value 1, identity in labels. */
export const INFO_FAMILIES = {
  gpu: { name: 'gpu_info', help: 'GPU identity: model, PCI bus id, driver version (value is always 1)' },
  mig: { name: 'gpu_mig_instance_info', help: 'MIG instance identity: profile, GPU and compute instance ids, UUID (value is always 1)' },
} as const;

/**
 * The MIG profile table of each GPU that has one: one series per GPU and profile, not copied per
 * holder (it describes the hardware). Labels: the GPU's identity labels, the profile in the
 * scheme's MIG profile label (GPU_I_PROFILE or mig_profile) and `source`: `nvml` (listed by the
 * driver, MIG mode enabled) or `model_table` (the model's known profiles, MIG mode off).
 */
export interface MigProfileFamily {
  name: string;
  type: MetricType;
  unit: string;
  help: string;
}
export const MIG_PROFILE_FAMILIES = {
  memory: {
    name: 'gpu_mig_profile_memory_bytes', type: 'gauge', unit: 'bytes',
    help: 'Memory an instance of the MIG profile has (from the model table: the figure in the profile\'s name, in decimal gigabytes, a little under the real size)',
  },
  compute: {
    name: 'gpu_mig_profile_compute_ratio', type: 'gauge', unit: 'ratio',
    help: 'Share of the GPU\'s compute slices an instance of the MIG profile has (3/7 for 3g.40gb; 2/4 for 2g.12gb on an A30)',
  },
  instances: {
    name: 'gpu_mig_profile_instances', type: 'gauge', unit: 'instances',
    help: 'How many instances of the MIG profile fit on the GPU when it holds no other',
  },
} as const satisfies Record<string, MigProfileFamily>;

/**
 * Families about pods on devices: allocation from the kubelet, use from the processes.
 * The same names in both schemes; their device labels follow the scheme (GPU labels, plus
 * the MIG instance labels for MIG instances) and then container, namespace, pod.
 */
export interface PodFamily {
  name: string;
  type: MetricType;
  unit: string;
  /** Where the numbers come from: the kubelet's allocations or NVML's process list. */
  source: 'kubelet' | 'processes';
  help: string;
}
export const POD_FAMILIES = {
  allocated: {
    name: 'gpu_allocated_ratio', type: 'gauge', unit: 'ratio', source: 'kubelet',
    help: 'Share of the device allocated to the container: 1 for a whole GPU, 1/replicas for a replica of a shared GPU (vgpu label), the compute slice for a MIG instance',
  },
  memoryUsed: {
    name: 'gpu_container_memory_used_bytes', type: 'gauge', unit: 'bytes', source: 'processes',
    help: 'GPU memory used by the container\'s processes on the device; processes outside any pod are summed into the series with empty pod labels',
  },
  smUtilization: {
    name: 'gpu_container_sm_utilization_ratio', type: 'gauge', unit: 'ratio', source: 'processes',
    help: 'SM utilization of the container\'s processes on the GPU, summed over its processes (NVML process samples since the last sample); not available on MIG-enabled GPUs',
  },
  processes: {
    name: 'gpu_container_processes', type: 'gauge', unit: 'processes', source: 'processes',
    help: 'Compute processes the container runs on the device; processes outside any pod are counted in the series with empty pod labels',
  },
} as const satisfies Record<string, PodFamily>;

/** The exporter's own families; the same names in both schemes. */
export interface ExporterFamily {
  name: string;
  type: MetricType;
  help: string;
  labels: readonly string[];
}
export const EXPORTER_FAMILIES = {
  collectorSuccess: { name: 'kube_gpu_exporter_collector_success', type: 'gauge', help: 'Whether the collector read every value it could on every GPU in the last sample (1) or hit an error (0)', labels: ['collector'] },
  collectorDuration: { name: 'kube_gpu_exporter_collector_duration_seconds', type: 'gauge', help: 'Time the collector took in the last sample', labels: ['collector'] },
  nvmlUp: { name: 'kube_gpu_exporter_nvml_up', type: 'gauge', help: 'Whether NVML is loaded and initialised (1) or not (0)', labels: [] },
  gpus: { name: 'kube_gpu_exporter_gpus', type: 'gauge', help: 'GPUs reporting in the last sample', labels: [] },
  gpusLost: { name: 'kube_gpu_exporter_gpus_not_answering', type: 'gauge', help: 'GPUs NVML lists that did not answer in the last sample (e.g. fallen off the bus)', labels: [] },
  sampleTimestamp: { name: 'kube_gpu_exporter_last_sample_timestamp_seconds', type: 'gauge', help: 'When the sample being served was taken (Unix time)', labels: [] },
  sampleDuration: { name: 'kube_gpu_exporter_sample_duration_seconds', type: 'gauge', help: 'Time the last complete sampling tick took', labels: [] },
  skippedTicks: { name: 'kube_gpu_exporter_skipped_ticks_total', type: 'counter', help: 'Sampling ticks skipped because the previous tick was still running (slow or hung NVML call)', labels: [] },
  sampleInterval: { name: 'kube_gpu_exporter_sample_interval_seconds', type: 'gauge', help: 'How often a sample is taken (--sample-interval): a served sample many intervals older than its scrape means a stalled pipeline', labels: [] },
  renderFailures: { name: 'kube_gpu_exporter_render_failures_total', type: 'counter', help: 'Times a step of the render stage threw (a family builder, the pod attribution, the sample context, the exposition); a failed step keeps its last good output and the rest of the exposition is rendered as usual', labels: ['builder'] },
  kubeletUp: { name: 'kube_gpu_exporter_kubelet_up', type: 'gauge', help: 'Whether the kubelet PodResources API answered the last refresh (1) or not (0: series keep the last known pods); absent with --kubelet.socket=none', labels: [] },
  kubeletLastSuccess: { name: 'kube_gpu_exporter_kubelet_last_success_timestamp_seconds', type: 'gauge', help: 'When the kubelet last answered (Unix time)', labels: [] },
  kubeletRefreshDuration: { name: 'kube_gpu_exporter_kubelet_refresh_duration_seconds', type: 'gauge', help: 'Time the last refresh of the device-to-pod mapping took', labels: [] },
  kubeletFailures: { name: 'kube_gpu_exporter_kubelet_refresh_failures_total', type: 'counter', help: 'Refreshes of the device-to-pod mapping that failed (socket missing, timeout, error)', labels: [] },
  kubeletPods: { name: 'kube_gpu_exporter_kubelet_pods', type: 'gauge', help: 'Pods holding NVIDIA devices in the last good mapping', labels: [] },
  kubeletUnknownDevices: { name: 'kube_gpu_exporter_kubelet_unknown_device_ids', type: 'gauge', help: 'Device ids the kubelet lists under NVIDIA resources that match no device sampled on this node (ignored)', labels: [] },
  podLabelsDropped: { name: 'kube_gpu_exporter_pod_labels_dropped', type: 'gauge', help: 'Pod labels left off series in the last render to keep them within --metrics.max-labels (for each pod the most dropped from one of its series, summed over pods); absent unless --kubernetes.pod-metadata=true', labels: [] },
  draUp: { name: 'kube_gpu_exporter_dra_up', type: 'gauge', help: 'Whether the watch on the ResourceSlices of NVIDIA\'s DRA driver for this node is in sync (1) or not (0: the last known devices are kept); absent unless --kubernetes.dra=true', labels: [] },
  draUnresolvedDevices: { name: 'kube_gpu_exporter_dra_unresolved_devices', type: 'gauge', help: 'Devices of NVIDIA\'s DRA driver the kubelet lists as allocated here that could not be tied to a GPU or MIG instance of the sample (no ResourceSlice publishes them yet, --kubernetes.dra is off, or a DynamicMIG device NVML cannot tell apart): their series carry no pod labels', labels: [] },
  unplacedProcesses: { name: 'kube_gpu_exporter_unplaced_processes', type: 'gauge', help: 'GPU processes whose pod could not be read from /proc/<pid>/cgroup (pid not visible: per-process attribution needs hostPID and the host /proc); left out of the gpu_container_* families', labels: [] },
  eventWatchUp: { name: 'kube_gpu_exporter_event_watch_up', type: 'gauge', help: 'Whether the NVML event watch is registered on at least one GPU and waiting for Xid and ECC events (1) or not (0: registering again after a failure, or events not supported)', labels: [] },
  eventWatchRestarts: { name: 'kube_gpu_exporter_event_watch_restarts_total', type: 'counter', help: 'Times the NVML event watch failed and registered again', labels: [] },
  podMetadataSynced: { name: 'kube_gpu_exporter_pod_metadata_synced', type: 'gauge', help: 'Whether the watch on this node\'s pods in the Kubernetes API is in sync (1) or not (0); absent unless --kubernetes.pod-metadata=true', labels: [] },
  webConfigReloadOk: { name: 'kube_gpu_exporter_web_config_last_reload_successful', type: 'gauge', help: 'Whether the last change to the web config file loaded (1) or was rejected and the last good config kept (0); absent without --web.config.file', labels: [] },
  webConfigLastSuccess: { name: 'kube_gpu_exporter_web_config_last_reload_success_timestamp_seconds', type: 'gauge', help: 'When the web config in force was loaded (Unix time); absent without --web.config.file', labels: [] },
  buildInfo: { name: 'kube_gpu_exporter_build_info', type: 'gauge', help: 'Exporter version and Node.js version (value is always 1)', labels: ['version', 'nodejs_version', 'naming'] },
} as const satisfies Record<string, ExporterFamily>;

/**
 * NVML events (Xid, ECC, GPU unavailable) counted since the exporter started, and whether
 * each GPU seen since start still answers. The same names in both schemes except the last
 * Xid gauge, which keeps dcgm-exporter's name in the dcgm scheme.
 */
export interface EventFamily {
  name: string;
  type: MetricType;
  help: string;
  /** Labels added to the device labels. */
  labels: readonly string[];
}
export const EVENT_FAMILIES = {
  lastXid: {
    dcgm: { name: 'DCGM_FI_DEV_XID_ERRORS', type: 'gauge', help: 'The last Xid error the GPU reported since the exporter started (the Xid; 0 when none), with err_code and err_msg labels as dcgm-exporter writes them. It stays at the last Xid: alert on gpu_xid_events_total', labels: ['err_code', 'err_msg'] },
    prometheus: { name: 'gpu_last_xid', type: 'gauge', help: 'The last Xid error the GPU reported since the exporter started (the Xid; 0 when none), with err_code and err_msg labels. It stays at the last Xid: alert on gpu_xid_events_total', labels: ['err_code', 'err_msg'] },
  },
  xidEvents: { name: 'gpu_xid_events_total', type: 'counter', help: 'Xid errors the GPU and its MIG instances reported since the exporter started; present from the start at 0, so increase(gpu_xid_events_total[10m]) > 0 fires once per burst and resolves', labels: [] },
  xidErrors: { name: 'gpu_xid_errors_total', type: 'counter', help: 'Xid errors per device and code since the exporter started (xid and err_msg labels); an event that names a MIG instance counts on that instance. A code\'s series appears with its first occurrence', labels: ['xid', 'err_msg'] },
  healthEvents: { name: 'gpu_health_events_total', type: 'counter', help: 'NVML health events other than Xids since the exporter started, per GPU and event (single_bit_ecc, double_bit_ecc, gpu_unavailable)', labels: ['event'] },
  answering: { name: 'gpu_answering', type: 'gauge', help: 'Every GPU seen since the exporter started: 1 while it answers NVML, 0 once it is lost (e.g. fallen off the bus) or no longer listed; the exporter keeps trying to re-acquire it', labels: [] },
} as const satisfies Record<string, EventFamily | { dcgm: EventFamily; prometheus: EventFamily }>;
