import type * as dashboard from '@grafana/grafana-foundation-sdk/dashboard';
import { bargaugePanel, gpuDashboard, queryVariable, row, statPanel, steppedTimeseriesPanel, tablePanel, thresholds, timeseriesPanel } from './panels.js';
import { gpuHoursColumns, gpuHoursOverRange } from './promql.js';

const NODE = 'Hostname=~"$node"';
const NODE_NS = 'Hostname=~"$node", namespace=~"$namespace"';
/** Exporter-level series (no Hostname label) of the exporters on the selected nodes. */
const ON_SELECTED_NODES = `and on (job, instance) gpu_answering{${NODE}}`;

export function fleetOverview(): dashboard.DashboardBuilder {
  return gpuDashboard('kge-fleet-overview', 'GPU fleet overview')
    .description('GPUs across nodes: capacity, allocation to pods and use, idle GPU-hours, top namespaces and health (kube-gpu-exporter, dcgm naming).')
    .tags(['kube-gpu-exporter', 'gpu'])
    .withVariable(queryVariable('node', 'Node', 'label_values(gpu_info, Hostname)', { multi: true }))
    .withVariable(queryVariable('namespace', 'Namespace', 'label_values(gpu_allocated_ratio{Hostname=~"$node"}, namespace)', { multi: true }))

    .withRow(row('GPUs'))
    .withPanel(statPanel('GPUs', 'GPUs answering NVML on the selected nodes.', [{ expr: `sum(gpu_answering{${NODE}})` }]))
    .withPanel(
      statPanel('GPUs missing', 'GPUs the exporters saw that no longer answer (lost, fallen off the bus): alert GpuMissing.', [
        { expr: `count(gpu_answering{${NODE}} == 0) or vector(0)` },
      ]).thresholds(thresholds({ badAt: 1 })),
    )
    .withPanel(
      statPanel(
        'Allocated to pods',
        'GPUs held by pods of the selected namespaces; a replica of a time-sliced GPU counts its share, a MIG instance its slice.',
        [{ expr: `sum(node_namespace:gpu_allocated:sum{${NODE_NS}})` }],
      ).decimals(2),
    )
    .withPanel(
      statPanel('Used by pods', 'Busy GPUs among those allocated (busy time times each holder\'s share).', [{ expr: `sum(node_namespace:gpu_used:sum{${NODE_NS}})` }]).decimals(2),
    )
    .withPanel(statPanel('Unallocated', 'GPUs (and shares of shared or MIG GPUs) that no pod holds.', [{ expr: `sum(node:gpu_unallocated:sum{${NODE}})` }]).decimals(2))
    .withPanel(
      statPanel('Idle GPU-hours', 'GPU-hours allocated to pods of the selected namespaces but not used, over the dashboard time range.', [
        { expr: gpuHoursOverRange(`node_namespace:gpu_idle:sum{${NODE_NS}}`) },
      ]).decimals(1),
    )

    .withRow(row('Allocation and use'))
    .withPanel(
      timeseriesPanel(
        'GPUs: answering, allocated, used, unallocated',
        'Capacity (GPUs answering), GPUs allocated to pods, the busy part of those, and GPUs no pod holds.',
        [
          { expr: `sum(gpu_answering{${NODE}})`, legend: 'answering' },
          { expr: `sum(node_namespace:gpu_allocated:sum{${NODE_NS}})`, legend: 'allocated' },
          { expr: `sum(node_namespace:gpu_used:sum{${NODE_NS}})`, legend: 'used by pods' },
          { expr: `sum(node:gpu_unallocated:sum{${NODE}})`, legend: 'unallocated' },
        ],
      ).min(0),
    )
    .withPanel(
      bargaugePanel('Top namespaces by allocated GPUs', 'The ten namespaces holding the most GPUs now (shares of shared and MIG GPUs counted as such).', [
        { expr: `topk(10, sum by (namespace) (node_namespace:gpu_allocated:sum{${NODE_NS}}))`, legend: '{{namespace}}' },
      ])
        .decimals(2)
        .min(0),
    )
    .withPanel(
      tablePanel('GPU-hours by namespace (dashboard time range)', 'Allocated, used and idle GPU-hours of each namespace over the time range.', gpuHoursColumns(NODE_NS, 'namespace')).decimals(2),
    )
    .withPanel(
      timeseriesPanel(
        'Average GPU utilization per node',
        'Busy time of whole GPUs (not MIG-enabled ones), one value per GPU however many pods share it, averaged per node.',
        [
          {
            expr: `avg by (Hostname) (max by (Hostname, UUID) (rate(gpu_busy_seconds_total{${NODE}, GPU_I_ID=""}[$__rate_interval])))`,
            legend: '{{Hostname}}',
          },
        ],
      )
        .unit('percentunit')
        .min(0)
        .max(1),
    )
    .withPanel(
      timeseriesPanel('Hottest GPU per node', 'The highest GPU die temperature on each node.', [{ expr: `max by (Hostname) (DCGM_FI_DEV_GPU_TEMP{${NODE}})`, legend: '{{Hostname}}' }]).unit(
        'celsius',
      ),
    )

    .withRow(row('Health'))
    .withPanel(
      statPanel('Xid errors', 'Xid errors reported over the time range, counted once per GPU (alert GpuXidErrors).', [
        { expr: `sum(max by (Hostname, UUID) (increase(gpu_xid_events_total{${NODE}}[$__range])))` },
      ])
        .decimals(0)
        .thresholds(thresholds({ badAt: 1 })),
    )
    .withPanel(
      statPanel('Double-bit ECC errors', 'Uncorrectable ECC errors over the time range (alert GpuDoubleBitEccErrors).', [
        { expr: `sum(max by (Hostname, UUID) (increase(DCGM_FI_DEV_ECC_DBE_VOL_TOTAL{${NODE}}[$__range])))` },
      ])
        .decimals(0)
        .thresholds(thresholds({ badAt: 1 })),
    )
    .withPanel(
      statPanel('Memory repairs pending', 'GPUs with a row remapping or page retirement waiting for a reset (alert GpuMemoryRepairPending).', [
        {
          expr: `count(max by (Hostname, UUID) (DCGM_FI_DEV_ROW_REMAP_PENDING{${NODE}}) == 1 or max by (Hostname, UUID) (DCGM_FI_DEV_RETIRED_PENDING{${NODE}}) == 1) or vector(0)`,
        },
      ]).thresholds(thresholds({ warnAt: 1 })),
    )
    .withPanel(
      statPanel('Exporters down', 'kube-gpu-exporter targets Prometheus cannot scrape (job kube-gpu-exporter; alert KubeGpuExporterDown).', [
        { expr: 'count(up{job="kube-gpu-exporter"} == 0) or vector(0)' },
      ]).thresholds(thresholds({ badAt: 1 })),
    )
    .withPanel(
      statPanel('Collectors failing', 'Collectors that hit an error in the last sample, on the selected nodes (alert KubeGpuExporterCollectorFailing).', [
        { expr: `count(kube_gpu_exporter_collector_success == 0 ${ON_SELECTED_NODES}) or vector(0)` },
      ]).thresholds(thresholds({ warnAt: 1 })),
    )
    .withPanel(
      statPanel(
        'Kubelet mapping failing',
        'Exporters whose last read of the kubelet device map failed (pod labels frozen; alert KubeGpuExporterKubeletMappingFailing).',
        [{ expr: `count(kube_gpu_exporter_kubelet_up == 0 ${ON_SELECTED_NODES}) or vector(0)` }],
      ).thresholds(thresholds({ warnAt: 1 })),
    )
    .withPanel(
      steppedTimeseriesPanel(
        'GPUs held down, by throttle reason',
        'How many GPUs each clock event reason holds down now (harmless reasons left out; hw_* and sw_thermal_slowdown alert).',
        [
          {
            expr: `sum by (reason) (max by (Hostname, UUID, reason) (gpu_clock_event_reason_active{${NODE}, reason!~"gpu_idle|applications_clocks_setting|display_clock_setting"}))`,
            legend: '{{reason}}',
          },
        ],
      )
        .min(0)
        .decimals(0)
        .span(24),
    );
}
