import type { DashboardSpec } from './grafana.js';
import { gpuHoursColumns, gpuHoursOverRange, shareWeightedBusy } from './promql.js';

const NODE_NS = 'Hostname=~"$node", namespace=~"$namespace"';
const POD = 'Hostname=~"$node", namespace=~"$namespace", pod=~"$pod"';

export const namespaceShowback: DashboardSpec = {
  uid: 'kge-namespace-showback',
  title: 'GPU showback by namespace and pod',
  description: 'GPU-hours allocated to and used by namespaces and pods, idle allocations, and what each container uses on shared GPUs (kube-gpu-exporter, dcgm naming).',
  tags: ['kube-gpu-exporter', 'gpu', 'showback'],
  time: { from: 'now-7d', to: 'now' },
  variables: [
    { name: 'node', label: 'Node', query: 'label_values(gpu_info, Hostname)', multi: true },
    { name: 'namespace', label: 'Namespace', query: 'label_values(gpu_allocated_ratio{Hostname=~"$node"}, namespace)', multi: true },
    { name: 'pod', label: 'Pod', query: 'label_values(gpu_allocated_ratio{Hostname=~"$node", namespace=~"$namespace"}, pod)', multi: true },
  ],
  rows: [
    {
      title: 'Namespaces',
      panels: [
        {
          type: 'stat',
          title: 'GPU-hours allocated',
          description: 'GPU-hours held by pods of the selected namespaces over the time range (shares of shared and MIG GPUs counted as such).',
          queries: [{ expr: gpuHoursOverRange(`node_namespace:gpu_allocated:sum{${NODE_NS}}`) }],
          decimals: 1,
          width: 6,
        },
        {
          type: 'stat',
          title: 'GPU-hours used',
          description: 'The busy part of the allocated GPU-hours.',
          queries: [{ expr: gpuHoursOverRange(`node_namespace:gpu_used:sum{${NODE_NS}}`) }],
          decimals: 1,
          width: 6,
        },
        {
          type: 'stat',
          title: 'GPU-hours idle',
          description: 'Allocated GPU-hours that were not used: the waste to look at.',
          queries: [{ expr: gpuHoursOverRange(`node_namespace:gpu_idle:sum{${NODE_NS}}`) }],
          decimals: 1,
          warnAt: 1,
          width: 6,
        },
        {
          type: 'stat',
          title: 'Used share of allocated',
          description: 'Used GPU-hours over allocated GPU-hours, on the devices whose busy time is known.',
          queries: [
            {
              expr: `${gpuHoursOverRange(`node_namespace:gpu_used:sum{${NODE_NS}}`)} / (${gpuHoursOverRange(`node_namespace:gpu_used:sum{${NODE_NS}}`)} + ${gpuHoursOverRange(`node_namespace:gpu_idle:sum{${NODE_NS}}`)})`,
            },
          ],
          unit: 'percentunit',
          decimals: 0,
          width: 6,
        },
        {
          type: 'timeseries',
          title: 'Allocated GPUs by namespace',
          description: 'GPUs held by each namespace over time.',
          queries: [{ expr: `sum by (namespace) (node_namespace:gpu_allocated:sum{${NODE_NS}})`, legend: '{{namespace}}' }],
          stacked: true,
          min: 0,
        },
        {
          type: 'timeseries',
          title: 'Used GPUs by namespace',
          description: 'Busy GPUs of each namespace (busy time times share).',
          queries: [{ expr: `sum by (namespace) (node_namespace:gpu_used:sum{${NODE_NS}})`, legend: '{{namespace}}' }],
          stacked: true,
          min: 0,
        },
        {
          type: 'table',
          title: 'GPU-hours by namespace and GPU model (dashboard time range)',
          description: 'Allocated, used and idle GPU-hours per namespace and GPU model, for finance and capacity planning.',
          queries: gpuHoursColumns(NODE_NS, 'namespace, modelName'),
          decimals: 2,
        },
        {
          type: 'timeseries',
          title: 'Idle GPU-hours per hour, by namespace',
          description: 'Allocated but unused GPU-hours in each past hour (recording rule node_namespace:gpu_idle_hours:1h).',
          queries: [{ expr: `sum by (namespace) (node_namespace:gpu_idle_hours:1h{${NODE_NS}})`, legend: '{{namespace}}' }],
          min: 0,
          width: 24,
        },
      ],
    },
    {
      title: 'Pods',
      panels: [
        {
          type: 'table',
          title: 'Pods: allocated and busy GPUs now',
          description: 'GPUs each pod holds and the busy part of them (on a time-sliced GPU the GPU\'s busy time is split by share).',
          queries: [
            { expr: `sum by (namespace, pod) (gpu_allocated_ratio{${POD}})`, legend: 'allocated GPUs' },
            { expr: `sum by (namespace, pod) (${shareWeightedBusy(POD)})`, legend: 'busy GPUs' },
          ],
          decimals: 3,
        },
        {
          type: 'timeseries',
          title: 'Busy GPUs per pod',
          description: 'Busy time times share, per pod.',
          queries: [{ expr: `sum by (namespace, pod) (${shareWeightedBusy(POD)})`, legend: '{{namespace}}/{{pod}}' }],
          min: 0,
        },
        {
          type: 'timeseries',
          title: 'Device memory of the devices each pod holds',
          description: 'DCGM_FI_DEV_FB_USED of the GPUs and MIG instances a pod holds, once per device (a shared GPU\'s memory shows for each holder: see the per-container panel for what each uses).',
          queries: [{ expr: `sum by (namespace, pod) (max by (namespace, pod, UUID, GPU_I_ID) (DCGM_FI_DEV_FB_USED{${POD}}))`, legend: '{{namespace}}/{{pod}}' }],
          unit: 'mbytes',
          min: 0,
        },
        {
          type: 'timeseries',
          title: 'GPU memory used by each container',
          description: 'Memory used by the container\'s own processes on each device (per-process attribution: deploy/overlays/per-process).',
          queries: [
            { expr: `sum by (namespace, pod, container, gpu) (gpu_container_memory_used_bytes{${POD}})`, legend: '{{namespace}}/{{pod}}/{{container}} GPU {{gpu}}' },
          ],
          unit: 'bytes',
          min: 0,
        },
        {
          type: 'timeseries',
          title: 'SM use of each container',
          description: 'SM utilization of the container\'s own processes on each GPU: who really uses a shared GPU (not on MIG-enabled GPUs; per-process attribution).',
          queries: [
            { expr: `sum by (namespace, pod, container, gpu) (gpu_container_sm_utilization_ratio{${POD}})`, legend: '{{namespace}}/{{pod}}/{{container}} GPU {{gpu}}' },
          ],
          unit: 'percentunit',
          min: 0,
          max: 1,
        },
      ],
    },
  ],
};
