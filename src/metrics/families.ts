import type { ValueKey } from '../sample.js';

/**
 * Every GPU metric family, declared once as data. The renderer, the README's metrics table
 * and the drift test all read this table.
 */
export type NamingScheme = 'dcgm' | 'prometheus';
export const NAMING_SCHEMES: readonly NamingScheme[] = ['dcgm', 'prometheus'];
export type MetricType = 'gauge' | 'counter';

/** Which series a family has: one per GPU, one per MIG instance, or both. */
export type Entity = 'gpu' | 'mig' | 'gpu+mig';

export interface SchemeName {
  name: string;
  /** Multiply NVML's raw value by this to get the exported unit. */
  scale: number;
  unit: string;
  /** Round to an integer (DCGM reports framebuffer in whole MiB). */
  integer?: boolean;
}

export interface GpuFamily {
  source: ValueKey;
  collector: string;
  type: MetricType;
  entity: Entity;
  help: string;
  /** DCGM field name where dcgm-exporter has one; else the Prometheus name is used in both schemes. */
  dcgm?: SchemeName;
  prometheus: SchemeName;
}

const MIB = 1 / (1024 * 1024);

export const GPU_FAMILIES: readonly GpuFamily[] = [
  {
    source: 'gpuUtilPercent', collector: 'utilization', type: 'gauge', entity: 'gpu',
    help: 'Fraction of time a kernel ran on the GPU over the driver sample period',
    dcgm: { name: 'DCGM_FI_DEV_GPU_UTIL', scale: 1, unit: '%' },
    prometheus: { name: 'gpu_utilization_ratio', scale: 0.01, unit: 'ratio' },
  },
  {
    source: 'memCopyUtilPercent', collector: 'utilization', type: 'gauge', entity: 'gpu',
    help: 'Fraction of time device memory was being read or written',
    dcgm: { name: 'DCGM_FI_DEV_MEM_COPY_UTIL', scale: 1, unit: '%' },
    prometheus: { name: 'gpu_memory_copy_utilization_ratio', scale: 0.01, unit: 'ratio' },
  },
  {
    source: 'gpuBusySeconds', collector: 'utilization', type: 'counter', entity: 'gpu',
    help: 'Seconds the GPU was busy (utilization integrated over time); rate() gives the exact average utilization over any window',
    prometheus: { name: 'gpu_busy_seconds_total', scale: 1, unit: 'seconds' },
  },
  {
    source: 'memCopyBusySeconds', collector: 'utilization', type: 'counter', entity: 'gpu',
    help: 'Seconds device memory was busy (memory copy utilization integrated over time)',
    prometheus: { name: 'gpu_memory_copy_busy_seconds_total', scale: 1, unit: 'seconds' },
  },
  {
    source: 'encoderUtilPercent', collector: 'codec', type: 'gauge', entity: 'gpu',
    help: 'Video encoder utilization',
    dcgm: { name: 'DCGM_FI_DEV_ENC_UTIL', scale: 1, unit: '%' },
    prometheus: { name: 'gpu_encoder_utilization_ratio', scale: 0.01, unit: 'ratio' },
  },
  {
    source: 'decoderUtilPercent', collector: 'codec', type: 'gauge', entity: 'gpu',
    help: 'Video decoder utilization',
    dcgm: { name: 'DCGM_FI_DEV_DEC_UTIL', scale: 1, unit: '%' },
    prometheus: { name: 'gpu_decoder_utilization_ratio', scale: 0.01, unit: 'ratio' },
  },
  {
    source: 'fbTotalBytes', collector: 'memory', type: 'gauge', entity: 'gpu+mig',
    help: 'Total framebuffer memory (per MIG instance: the instance\'s own)',
    dcgm: { name: 'DCGM_FI_DEV_FB_TOTAL', scale: MIB, unit: 'MiB', integer: true },
    prometheus: { name: 'gpu_memory_total_bytes', scale: 1, unit: 'bytes' },
  },
  {
    source: 'fbUsedBytes', collector: 'memory', type: 'gauge', entity: 'gpu+mig',
    help: 'Framebuffer memory used',
    dcgm: { name: 'DCGM_FI_DEV_FB_USED', scale: MIB, unit: 'MiB', integer: true },
    prometheus: { name: 'gpu_memory_used_bytes', scale: 1, unit: 'bytes' },
  },
  {
    source: 'fbFreeBytes', collector: 'memory', type: 'gauge', entity: 'gpu+mig',
    help: 'Framebuffer memory free',
    dcgm: { name: 'DCGM_FI_DEV_FB_FREE', scale: MIB, unit: 'MiB', integer: true },
    prometheus: { name: 'gpu_memory_free_bytes', scale: 1, unit: 'bytes' },
  },
  {
    source: 'fbReservedBytes', collector: 'memory', type: 'gauge', entity: 'gpu+mig',
    help: 'Framebuffer memory reserved by the driver (drivers with MemoryInfo_v2)',
    dcgm: { name: 'DCGM_FI_DEV_FB_RESERVED', scale: MIB, unit: 'MiB', integer: true },
    prometheus: { name: 'gpu_memory_reserved_bytes', scale: 1, unit: 'bytes' },
  },
  {
    source: 'gpuTempCelsius', collector: 'temperature', type: 'gauge', entity: 'gpu',
    help: 'GPU die temperature',
    dcgm: { name: 'DCGM_FI_DEV_GPU_TEMP', scale: 1, unit: 'C' },
    prometheus: { name: 'gpu_temperature_celsius', scale: 1, unit: 'celsius' },
  },
  {
    source: 'memoryTempCelsius', collector: 'temperature', type: 'gauge', entity: 'gpu',
    help: 'Memory (HBM) temperature',
    dcgm: { name: 'DCGM_FI_DEV_MEMORY_TEMP', scale: 1, unit: 'C' },
    prometheus: { name: 'gpu_memory_temperature_celsius', scale: 1, unit: 'celsius' },
  },
  {
    source: 'powerUsageMilliwatts', collector: 'power', type: 'gauge', entity: 'gpu',
    help: 'Power draw',
    dcgm: { name: 'DCGM_FI_DEV_POWER_USAGE', scale: 1e-3, unit: 'W' },
    prometheus: { name: 'gpu_power_watts', scale: 1e-3, unit: 'watts' },
  },
  {
    source: 'powerLimitMilliwatts', collector: 'power', type: 'gauge', entity: 'gpu',
    help: 'Power limit the driver enforces',
    dcgm: { name: 'DCGM_FI_DEV_ENFORCED_POWER_LIMIT', scale: 1e-3, unit: 'W' },
    prometheus: { name: 'gpu_power_limit_watts', scale: 1e-3, unit: 'watts' },
  },
  {
    source: 'totalEnergyMillijoules', collector: 'power', type: 'counter', entity: 'gpu',
    help: 'Energy consumed since the driver was loaded',
    dcgm: { name: 'DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION', scale: 1, unit: 'mJ' },
    prometheus: { name: 'gpu_energy_joules_total', scale: 1e-3, unit: 'joules' },
  },
  {
    source: 'smClockMHz', collector: 'clocks', type: 'gauge', entity: 'gpu',
    help: 'SM clock',
    dcgm: { name: 'DCGM_FI_DEV_SM_CLOCK', scale: 1, unit: 'MHz' },
    prometheus: { name: 'gpu_sm_clock_hertz', scale: 1e6, unit: 'hertz' },
  },
  {
    source: 'memClockMHz', collector: 'clocks', type: 'gauge', entity: 'gpu',
    help: 'Memory clock',
    dcgm: { name: 'DCGM_FI_DEV_MEM_CLOCK', scale: 1, unit: 'MHz' },
    prometheus: { name: 'gpu_memory_clock_hertz', scale: 1e6, unit: 'hertz' },
  },
  {
    source: 'graphicsClockMHz', collector: 'clocks', type: 'gauge', entity: 'gpu',
    help: 'Graphics clock',
    prometheus: { name: 'gpu_graphics_clock_hertz', scale: 1e6, unit: 'hertz' },
  },
  {
    source: 'maxSmClockMHz', collector: 'clocks', type: 'gauge', entity: 'gpu',
    help: 'Maximum SM clock',
    dcgm: { name: 'DCGM_FI_DEV_MAX_SM_CLOCK', scale: 1, unit: 'MHz' },
    prometheus: { name: 'gpu_sm_clock_max_hertz', scale: 1e6, unit: 'hertz' },
  },
  {
    source: 'maxMemClockMHz', collector: 'clocks', type: 'gauge', entity: 'gpu',
    help: 'Maximum memory clock',
    dcgm: { name: 'DCGM_FI_DEV_MAX_MEM_CLOCK', scale: 1, unit: 'MHz' },
    prometheus: { name: 'gpu_memory_clock_max_hertz', scale: 1e6, unit: 'hertz' },
  },
  {
    source: 'maxGraphicsClockMHz', collector: 'clocks', type: 'gauge', entity: 'gpu',
    help: 'Maximum graphics clock',
    prometheus: { name: 'gpu_graphics_clock_max_hertz', scale: 1e6, unit: 'hertz' },
  },
  {
    source: 'fanSpeedPercent', collector: 'fan', type: 'gauge', entity: 'gpu',
    help: 'Fan speed as a share of its maximum (can exceed 100 %)',
    dcgm: { name: 'DCGM_FI_DEV_FAN_SPEED', scale: 1, unit: '%' },
    prometheus: { name: 'gpu_fan_speed_ratio', scale: 0.01, unit: 'ratio' },
  },
  {
    source: 'performanceState', collector: 'pstate', type: 'gauge', entity: 'gpu',
    help: 'Performance state, 0 (P0, highest) to 15 (P15, lowest)',
    dcgm: { name: 'DCGM_FI_DEV_PSTATE', scale: 1, unit: 'P-state' },
    prometheus: { name: 'gpu_performance_state', scale: 1, unit: 'P-state' },
  },
  {
    source: 'pcieTxKBps', collector: 'pcie', type: 'gauge', entity: 'gpu',
    help: 'PCIe transmit throughput over the driver\'s 20 ms window',
    dcgm: { name: 'DCGM_FI_DEV_PCIE_TX_THROUGHPUT', scale: 1, unit: 'KB/s' },
    prometheus: { name: 'gpu_pcie_transmit_bytes_per_second', scale: 1024, unit: 'bytes/s' },
  },
  {
    source: 'pcieRxKBps', collector: 'pcie', type: 'gauge', entity: 'gpu',
    help: 'PCIe receive throughput over the driver\'s 20 ms window',
    dcgm: { name: 'DCGM_FI_DEV_PCIE_RX_THROUGHPUT', scale: 1, unit: 'KB/s' },
    prometheus: { name: 'gpu_pcie_receive_bytes_per_second', scale: 1024, unit: 'bytes/s' },
  },
  {
    source: 'migModeEnabled', collector: 'mig', type: 'gauge', entity: 'gpu',
    help: 'MIG mode: 1 enabled, 0 disabled',
    dcgm: { name: 'DCGM_FI_DEV_MIG_MODE', scale: 1, unit: 'bool' },
    prometheus: { name: 'gpu_mig_mode_enabled', scale: 1, unit: 'bool' },
  },
];

export function familyName(f: GpuFamily, scheme: NamingScheme): SchemeName {
  return scheme === 'dcgm' ? (f.dcgm ?? f.prometheus) : f.prometheus;
}

/** Identity series: one per GPU (and per MIG instance), value 1, identity in labels. */
export const INFO_FAMILIES = {
  gpu: { name: 'gpu_info', help: 'GPU identity: model, PCI bus id, driver version (value is always 1)' },
  mig: { name: 'gpu_mig_instance_info', help: 'MIG instance identity: profile, GPU and compute instance ids, UUID (value is always 1)' },
} as const;

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
  kubeletUp: { name: 'kube_gpu_exporter_kubelet_up', type: 'gauge', help: 'Whether the kubelet PodResources API answered the last refresh (1) or not (0: series keep the last known pods); absent with --kubelet.socket=none', labels: [] },
  kubeletLastSuccess: { name: 'kube_gpu_exporter_kubelet_last_success_timestamp_seconds', type: 'gauge', help: 'When the kubelet last answered (Unix time)', labels: [] },
  kubeletRefreshDuration: { name: 'kube_gpu_exporter_kubelet_refresh_duration_seconds', type: 'gauge', help: 'Time the last refresh of the device-to-pod mapping took', labels: [] },
  kubeletFailures: { name: 'kube_gpu_exporter_kubelet_refresh_failures_total', type: 'counter', help: 'Refreshes of the device-to-pod mapping that failed (socket missing, timeout, error)', labels: [] },
  kubeletPods: { name: 'kube_gpu_exporter_kubelet_pods', type: 'gauge', help: 'Pods holding NVIDIA devices in the last good mapping', labels: [] },
  kubeletUnknownDevices: { name: 'kube_gpu_exporter_kubelet_unknown_device_ids', type: 'gauge', help: 'Device ids the kubelet lists under NVIDIA resources that match no device sampled on this node (ignored)', labels: [] },
  eventWatchUp: { name: 'kube_gpu_exporter_event_watch_up', type: 'gauge', help: 'Whether the NVML event thread is registered and waiting for Xid and ECC events (1) or not (0: restarting, or events not supported)', labels: [] },
  eventWatchRestarts: { name: 'kube_gpu_exporter_event_watch_restarts_total', type: 'counter', help: 'Times the NVML event thread was restarted after a failure', labels: [] },
  podMetadataSynced: { name: 'kube_gpu_exporter_pod_metadata_synced', type: 'gauge', help: 'Whether the watch on this node\'s pods in the Kubernetes API is in sync (1) or not (0); absent unless --kubernetes.pod-metadata=true', labels: [] },
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
