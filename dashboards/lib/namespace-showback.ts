import type * as dashboard from '@grafana/grafana-foundation-sdk/dashboard';
import { gpuDashboard, queryVariable, row, stackedTimeseriesPanel, statPanel, tablePanel, thresholds, timeseriesPanel } from './panels.js';
import { gpuHoursColumns, gpuHoursOverRange, shareWeightedBusy } from './promql.js';

const NODE_NS = 'Hostname=~"$node", namespace=~"$namespace"';
const POD = 'Hostname=~"$node", namespace=~"$namespace", pod=~"$pod"';

export function namespaceShowback(): dashboard.DashboardBuilder {
  return gpuDashboard('kge-namespace-showback', 'GPU showback by namespace and pod')
    .description('GPU-hours allocated to and used by namespaces and pods, idle allocations, what each container uses on shared GPUs, and which containers holding a whole GPU would fit a MIG slice or a shared GPU (kube-gpu-exporter, dcgm naming).')
    .tags(['kube-gpu-exporter', 'gpu', 'showback'])
    .time({ from: 'now-7d', to: 'now' })
    .withVariable(queryVariable('node', 'Node', 'label_values(gpu_info, Hostname)', { multi: true }))
    .withVariable(queryVariable('namespace', 'Namespace', 'label_values(gpu_allocated_ratio{Hostname=~"$node"}, namespace)', { multi: true }))
    .withVariable(queryVariable('pod', 'Pod', 'label_values(gpu_allocated_ratio{Hostname=~"$node", namespace=~"$namespace"}, pod)', { multi: true }))

    .withRow(row('Namespaces'))
    .withPanel(
      statPanel(
        'GPU-hours allocated',
        'GPU-hours held by pods of the selected namespaces over the time range (shares of shared and MIG GPUs counted as such).',
        [{ expr: gpuHoursOverRange(`node_namespace:gpu_allocated:sum{${NODE_NS}}`) }],
      )
        .decimals(1)
        .span(6),
    )
    .withPanel(
      statPanel('GPU-hours used', 'The busy part of the allocated GPU-hours.', [{ expr: gpuHoursOverRange(`node_namespace:gpu_used:sum{${NODE_NS}}`) }])
        .decimals(1)
        .span(6),
    )
    .withPanel(
      statPanel('GPU-hours idle', 'Allocated GPU-hours that were not used: the waste to look at.', [{ expr: gpuHoursOverRange(`node_namespace:gpu_idle:sum{${NODE_NS}}`) }])
        .decimals(1)
        .thresholds(thresholds({ warnAt: 1 }))
        .span(6),
    )
    .withPanel(
      statPanel('Used share of allocated', 'Used GPU-hours over allocated GPU-hours, on the devices whose busy time is known.', [
        {
          expr: `${gpuHoursOverRange(`node_namespace:gpu_used:sum{${NODE_NS}}`)} / (${gpuHoursOverRange(`node_namespace:gpu_used:sum{${NODE_NS}}`)} + ${gpuHoursOverRange(`node_namespace:gpu_idle:sum{${NODE_NS}}`)})`,
        },
      ])
        .unit('percentunit')
        .decimals(0)
        .span(6),
    )
    .withPanel(
      stackedTimeseriesPanel('Allocated GPUs by namespace', 'GPUs held by each namespace over time.', [
        { expr: `sum by (namespace) (node_namespace:gpu_allocated:sum{${NODE_NS}})`, legend: '{{namespace}}' },
      ]).min(0),
    )
    .withPanel(
      stackedTimeseriesPanel('Used GPUs by namespace', 'Busy GPUs of each namespace (busy time times share).', [
        { expr: `sum by (namespace) (node_namespace:gpu_used:sum{${NODE_NS}})`, legend: '{{namespace}}' },
      ]).min(0),
    )
    .withPanel(
      tablePanel(
        'GPU-hours by namespace and GPU model (dashboard time range)',
        'Allocated, used and idle GPU-hours per namespace and GPU model, for finance and capacity planning.',
        gpuHoursColumns(NODE_NS, 'namespace, modelName'),
      ).decimals(2),
    )
    .withPanel(
      timeseriesPanel('Idle GPU-hours per hour, by namespace', 'Allocated but unused GPU-hours in each past hour (recording rule node_namespace:gpu_idle_hours:1h).', [
        { expr: `sum by (namespace) (node_namespace:gpu_idle_hours:1h{${NODE_NS}})`, legend: '{{namespace}}' },
      ])
        .min(0)
        .span(24),
    )

    .withRow(row('Pods'))
    .withPanel(
      tablePanel('Pods: allocated and busy GPUs now', 'GPUs each pod holds and the busy part of them (on a time-sliced GPU the GPU\'s busy time is split by share).', [
        { expr: `sum by (namespace, pod) (gpu_allocated_ratio{${POD}})`, legend: 'allocated GPUs' },
        { expr: `sum by (namespace, pod) (${shareWeightedBusy(POD)})`, legend: 'busy GPUs' },
      ]).decimals(3),
    )
    .withPanel(
      timeseriesPanel('Busy GPUs per pod', 'Busy time times share, per pod.', [{ expr: `sum by (namespace, pod) (${shareWeightedBusy(POD)})`, legend: '{{namespace}}/{{pod}}' }]).min(0),
    )
    .withPanel(
      timeseriesPanel(
        'Device memory of the devices each pod holds',
        'DCGM_FI_DEV_FB_USED of the GPUs and MIG instances a pod holds, once per device (a shared GPU\'s memory shows for each holder: see the per-container panel for what each uses).',
        [{ expr: `sum by (namespace, pod) (max by (namespace, pod, UUID, GPU_I_ID) (DCGM_FI_DEV_FB_USED{${POD}}))`, legend: '{{namespace}}/{{pod}}' }],
      )
        .unit('mbytes')
        .min(0),
    )
    .withPanel(
      timeseriesPanel(
        'GPU memory used by each container',
        'Memory used by the container\'s own processes on each device (per-process attribution: deploy/overlays/per-process).',
        [{ expr: `sum by (namespace, pod, container, gpu) (gpu_container_memory_used_bytes{${POD}})`, legend: '{{namespace}}/{{pod}}/{{container}} GPU {{gpu}}' }],
      )
        .unit('bytes')
        .min(0),
    )
    .withPanel(
      timeseriesPanel(
        'SM use of each container',
        'SM utilization of the container\'s own processes on each GPU: who really uses a shared GPU (not on MIG-enabled GPUs; per-process attribution).',
        [{ expr: `sum by (namespace, pod, container, gpu) (gpu_container_sm_utilization_ratio{${POD}})`, legend: '{{namespace}}/{{pod}}/{{container}} GPU {{gpu}}' }],
      )
        .unit('percentunit')
        .min(0)
        .max(1),
    )

    .withRow(row('Right-sizing'))
    .withPanel(
      statPanel(
        'GPU-hours a week right-sizing would free',
        'GPU-hours a week the selected namespaces\' containers holding a whole GPU would give back on the smallest MIG profile or time-shared replica that holds their use (recording rule node_namespace:gpu_hours_freed_per_week:sum, over the right-sizing window of the rules, not the dashboard\'s range).',
        [{ expr: `sum (node_namespace:gpu_hours_freed_per_week:sum{${NODE_NS}})` }],
      )
        .decimals(1)
        .span(6),
    )
    .withPanel(
      tablePanel(
        'GPU-hours a week right-sizing would free, by namespace and GPU model',
        'Per namespace and model: the GPU-hours a week that moving its whole-GPU containers to the recommended profile or a shared GPU would free.',
        [{ expr: `sum by (namespace, modelName) (node_namespace:gpu_hours_freed_per_week:sum{${NODE_NS}})`, legend: 'GPU-hours freed a week' }],
        { rename: { modelName: 'GPU model' } },
      )
        .decimals(1)
        .span(18),
    )
    .withPanel(
      tablePanel(
        'Right-sizing: containers holding a whole GPU',
        'Over the rules\' right-sizing window (default 7 days): peak memory, a high percentile of compute use (GPM SM activity, else SM utilization or busy time), the smallest MIG profile of the GPU\'s model that holds both with the headroom ("whole": none does; its value is the share of the GPU it has), the share of a time-shared GPU it would need where it fits one, and the GPU-hours a week moving would free. A guide, not a guarantee: docs/alerts-and-dashboards.md says where it is wrong.',
        [
          { expr: `max by (namespace, pod, container, modelName, gpu) (container_gpu:memory_used_bytes:max_window{${POD}})`, legend: 'peak memory', unit: 'bytes' },
          { expr: `max by (namespace, pod, container, modelName, gpu) (container_gpu:compute_used_ratio:quantile_window{${POD}})`, legend: 'compute (percentile)', unit: 'percentunit' },
          { expr: `max by (namespace, pod, container, modelName, gpu, GPU_I_PROFILE) (container_gpu:mig_profile_recommended:window{${POD}})`, legend: 'profile share', unit: 'percentunit' },
          { expr: `max by (namespace, pod, container, modelName, gpu) (container_gpu:timeshare_fit:window{${POD}})`, legend: 'fits a shared GPU (share)', unit: 'percentunit' },
          { expr: `max by (namespace, pod, container, modelName, gpu) (container_gpu:gpu_hours_freed_per_week:window{${POD}})`, legend: 'GPU-hours freed a week' },
        ],
        { rename: { modelName: 'GPU model', gpu: 'GPU', GPU_I_PROFILE: 'recommended profile' } },
      )
        .decimals(2)
        .height(10),
    );
}
