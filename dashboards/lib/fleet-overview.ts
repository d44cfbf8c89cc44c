import type { DashboardSpec } from './grafana.js';
import { gpuHoursColumns, gpuHoursOverRange } from './promql.js';

const NODE = 'Hostname=~"$node"';
const NODE_NS = 'Hostname=~"$node", namespace=~"$namespace"';
/** Exporter-level series (no Hostname label) of the exporters on the selected nodes. */
const ON_SELECTED_NODES = `and on (job, instance) gpu_answering{${NODE}}`;

export const fleetOverview: DashboardSpec = {
  uid: 'kge-fleet-overview',
  title: 'GPU fleet overview',
  description: 'GPUs across nodes: capacity, allocation to pods and use, idle GPU-hours, top namespaces and health (kube-gpu-exporter, dcgm naming).',
  tags: ['kube-gpu-exporter', 'gpu'],
  variables: [
    { name: 'node', label: 'Node', query: 'label_values(gpu_info, Hostname)', multi: true },
    { name: 'namespace', label: 'Namespace', query: 'label_values(gpu_allocated_ratio{Hostname=~"$node"}, namespace)', multi: true },
  ],
  rows: [
    {
      title: 'GPUs',
      panels: [
        { type: 'stat', title: 'GPUs', description: 'GPUs answering NVML on the selected nodes.', queries: [{ expr: `sum(gpu_answering{${NODE}})` }] },
        {
          type: 'stat',
          title: 'GPUs missing',
          description: 'GPUs the exporters saw that no longer answer (lost, fallen off the bus): alert GpuMissing.',
          queries: [{ expr: `count(gpu_answering{${NODE}} == 0) or vector(0)` }],
          badAt: 1,
        },
        {
          type: 'stat',
          title: 'Allocated to pods',
          description: 'GPUs held by pods of the selected namespaces; a replica of a time-sliced GPU counts its share, a MIG instance its slice.',
          queries: [{ expr: `sum(node_namespace:gpu_allocated:sum{${NODE_NS}})` }],
          decimals: 2,
        },
        {
          type: 'stat',
          title: 'Used by pods',
          description: 'Busy GPUs among those allocated (busy time times each holder\'s share).',
          queries: [{ expr: `sum(node_namespace:gpu_used:sum{${NODE_NS}})` }],
          decimals: 2,
        },
        {
          type: 'stat',
          title: 'Unallocated',
          description: 'GPUs (and shares of shared or MIG GPUs) that no pod holds.',
          queries: [{ expr: `sum(node:gpu_unallocated:sum{${NODE}})` }],
          decimals: 2,
        },
        {
          type: 'stat',
          title: 'Idle GPU-hours',
          description: 'GPU-hours allocated to pods of the selected namespaces but not used, over the dashboard time range.',
          queries: [{ expr: gpuHoursOverRange(`node_namespace:gpu_idle:sum{${NODE_NS}}`) }],
          decimals: 1,
        },
      ],
    },
    {
      title: 'Allocation and use',
      panels: [
        {
          type: 'timeseries',
          title: 'GPUs: answering, allocated, used, unallocated',
          description: 'Capacity (GPUs answering), GPUs allocated to pods, the busy part of those, and GPUs no pod holds.',
          queries: [
            { expr: `sum(gpu_answering{${NODE}})`, legend: 'answering' },
            { expr: `sum(node_namespace:gpu_allocated:sum{${NODE_NS}})`, legend: 'allocated' },
            { expr: `sum(node_namespace:gpu_used:sum{${NODE_NS}})`, legend: 'used by pods' },
            { expr: `sum(node:gpu_unallocated:sum{${NODE}})`, legend: 'unallocated' },
          ],
          min: 0,
        },
        {
          type: 'bargauge',
          title: 'Top namespaces by allocated GPUs',
          description: 'The ten namespaces holding the most GPUs now (shares of shared and MIG GPUs counted as such).',
          queries: [{ expr: `topk(10, sum by (namespace) (node_namespace:gpu_allocated:sum{${NODE_NS}}))`, legend: '{{namespace}}' }],
          decimals: 2,
          min: 0,
        },
        {
          type: 'table',
          title: 'GPU-hours by namespace (dashboard time range)',
          description: 'Allocated, used and idle GPU-hours of each namespace over the time range.',
          queries: gpuHoursColumns(NODE_NS, 'namespace'),
          decimals: 2,
        },
        {
          type: 'timeseries',
          title: 'Average GPU utilization per node',
          description: 'Busy time of whole GPUs (not MIG-enabled ones), one value per GPU however many pods share it, averaged per node.',
          queries: [
            {
              expr: `avg by (Hostname) (max by (Hostname, UUID) (rate(gpu_busy_seconds_total{${NODE}, GPU_I_ID=""}[$__rate_interval])))`,
              legend: '{{Hostname}}',
            },
          ],
          unit: 'percentunit',
          min: 0,
          max: 1,
        },
        {
          type: 'timeseries',
          title: 'Hottest GPU per node',
          description: 'The highest GPU die temperature on each node.',
          queries: [{ expr: `max by (Hostname) (DCGM_FI_DEV_GPU_TEMP{${NODE}})`, legend: '{{Hostname}}' }],
          unit: 'celsius',
        },
      ],
    },
    {
      title: 'Health',
      panels: [
        {
          type: 'stat',
          title: 'Xid errors',
          description: 'Xid errors reported over the time range, counted once per GPU (alert GpuXidErrors).',
          queries: [{ expr: `sum(max by (Hostname, UUID) (increase(gpu_xid_events_total{${NODE}}[$__range])))` }],
          decimals: 0,
          badAt: 1,
        },
        {
          type: 'stat',
          title: 'Double-bit ECC errors',
          description: 'Uncorrectable ECC errors over the time range (alert GpuDoubleBitEccErrors).',
          queries: [{ expr: `sum(max by (Hostname, UUID) (increase(DCGM_FI_DEV_ECC_DBE_VOL_TOTAL{${NODE}}[$__range])))` }],
          decimals: 0,
          badAt: 1,
        },
        {
          type: 'stat',
          title: 'Memory repairs pending',
          description: 'GPUs with a row remapping or page retirement waiting for a reset (alert GpuMemoryRepairPending).',
          queries: [
            {
              expr: `count(max by (Hostname, UUID) (DCGM_FI_DEV_ROW_REMAP_PENDING{${NODE}}) == 1 or max by (Hostname, UUID) (DCGM_FI_DEV_RETIRED_PENDING{${NODE}}) == 1) or vector(0)`,
            },
          ],
          warnAt: 1,
        },
        {
          type: 'stat',
          title: 'Exporters down',
          description: 'kube-gpu-exporter targets Prometheus cannot scrape (job kube-gpu-exporter; alert KubeGpuExporterDown).',
          queries: [{ expr: 'count(up{job="kube-gpu-exporter"} == 0) or vector(0)' }],
          badAt: 1,
        },
        {
          type: 'stat',
          title: 'Collectors failing',
          description: 'Collectors that hit an error in the last sample, on the selected nodes (alert KubeGpuExporterCollectorFailing).',
          queries: [{ expr: `count(kube_gpu_exporter_collector_success == 0 ${ON_SELECTED_NODES}) or vector(0)` }],
          warnAt: 1,
        },
        {
          type: 'stat',
          title: 'Kubelet mapping failing',
          description: 'Exporters whose last read of the kubelet device map failed (pod labels frozen; alert KubeGpuExporterKubeletMappingFailing).',
          queries: [{ expr: `count(kube_gpu_exporter_kubelet_up == 0 ${ON_SELECTED_NODES}) or vector(0)` }],
          warnAt: 1,
        },
        {
          type: 'timeseries',
          title: 'GPUs held down, by throttle reason',
          description: 'How many GPUs each clock event reason holds down now (harmless reasons left out; hw_* and sw_thermal_slowdown alert).',
          queries: [
            {
              expr: `sum by (reason) (max by (Hostname, UUID, reason) (gpu_clock_event_reason_active{${NODE}, reason!~"gpu_idle|applications_clocks_setting|display_clock_setting"}))`,
              legend: '{{reason}}',
            },
          ],
          stepped: true,
          min: 0,
          decimals: 0,
          width: 24,
        },
      ],
    },
  ],
};
