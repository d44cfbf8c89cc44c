import type * as dashboard from '@grafana/grafana-foundation-sdk/dashboard';
import type * as timeseries from '@grafana/grafana-foundation-sdk/timeseries';
import { bargaugePanel, gpuDashboard, queryVariable, row, steppedTimeseriesPanel, tablePanel, timeseriesPanel } from './panels.js';

/** Whole GPUs of the selected node and GPUs (device series are repeated per holder: max by gpu). */
const GPU = 'Hostname=~"$node", gpu=~"$gpu"';
/** MIG instances of the node (every GPU: instances live on MIG-enabled GPUs only). */
const MIG = 'Hostname=~"$node", GPU_I_ID!=""';

/** One line per GPU of a device family (MIG instance series left out). */
function perGpu(title: string, description: string, family: string, unit: string): timeseries.PanelBuilder {
  return timeseriesPanel(title, description, [{ expr: `max by (gpu) (${family}{${GPU}, GPU_I_ID=""})`, legend: 'GPU {{gpu}}' }]).unit(unit);
}

/** A profiling (GPM) ratio per GPU and per MIG instance. */
function profiling(title: string, description: string, family: string): timeseries.PanelBuilder {
  return timeseriesPanel(title, description, [{ expr: `max by (gpu, GPU_I_ID) (${family}{${GPU}})`, legend: 'GPU {{gpu}} {{GPU_I_ID}}' }])
    .unit('percentunit')
    .min(0)
    .max(1);
}

export function nodeGpuDetail(): dashboard.DashboardBuilder {
  return gpuDashboard('kge-node-gpu-detail', 'GPU node and device detail')
    .description(
      'One node\'s GPUs: utilization and profiling, memory, temperature, power and energy, clocks and throttling, Xid and ECC errors, MIG instances and the pods holding them (kube-gpu-exporter, dcgm naming).',
    )
    .tags(['kube-gpu-exporter', 'gpu'])
    .time({ from: 'now-1h', to: 'now' })
    .withVariable(queryVariable('node', 'Node', 'label_values(gpu_info, Hostname)', { multi: false }))
    .withVariable(queryVariable('gpu', 'GPU', 'label_values(gpu_info{Hostname=~"$node"}, gpu)', { multi: true, numeric: true }))

    .withRow(row('Utilization'))
    .withPanel(
      timeseriesPanel(
        'GPU utilization (busy time)',
        'Share of time a kernel ran, from the busy-seconds counter: exact at any scrape interval. MIG-enabled GPUs report per instance (MIG row).',
        [{ expr: `max by (gpu) (rate(gpu_busy_seconds_total{${GPU}, GPU_I_ID=""}[$__rate_interval]))`, legend: 'GPU {{gpu}}' }],
      )
        .unit('percentunit')
        .min(0)
        .max(1),
    )
    .withPanel(perGpu('Memory copy utilization', 'Share of time device memory was read or written.', 'DCGM_FI_DEV_MEM_COPY_UTIL', 'percent'))
    .withPanel(
      profiling(
        'SM active',
        'Share of time at least one warp was resident on an SM, averaged over all SMs (NVML GPM; per MIG instance on MIG-enabled GPUs).',
        'DCGM_FI_PROF_SM_ACTIVE',
      ),
    )
    .withPanel(
      profiling('Tensor pipe active', 'Share of cycles the tensor (matrix) pipes were busy (NVML GPM; per MIG instance on MIG-enabled GPUs).', 'DCGM_FI_PROF_PIPE_TENSOR_ACTIVE'),
    )

    .withRow(row('Memory'))
    .withPanel(perGpu('Framebuffer used', 'Device memory in use per GPU (MIG instances: MIG row).', 'DCGM_FI_DEV_FB_USED', 'mbytes'))
    .withPanel(
      timeseriesPanel('Framebuffer used, share of total', 'Device memory in use as a share of the GPU\'s memory.', [
        {
          expr: `max by (gpu) (DCGM_FI_DEV_FB_USED{${GPU}, GPU_I_ID=""}) / max by (gpu) (DCGM_FI_DEV_FB_TOTAL{${GPU}, GPU_I_ID=""})`,
          legend: 'GPU {{gpu}}',
        },
      ])
        .unit('percentunit')
        .min(0)
        .max(1),
    )

    .withRow(row('Temperature, power and clocks'))
    .withPanel(
      timeseriesPanel('Temperature', 'GPU die and memory (HBM) temperature.', [
        { expr: `max by (gpu) (DCGM_FI_DEV_GPU_TEMP{${GPU}})`, legend: 'GPU {{gpu}}' },
        { expr: `max by (gpu) (DCGM_FI_DEV_MEMORY_TEMP{${GPU}})`, legend: 'GPU {{gpu}} memory' },
      ]).unit('celsius'),
    )
    .withPanel(
      timeseriesPanel('Power draw and limit', 'Power drawn and the limit the driver enforces.', [
        { expr: `max by (gpu) (DCGM_FI_DEV_POWER_USAGE{${GPU}})`, legend: 'GPU {{gpu}}' },
        { expr: `max by (gpu) (DCGM_FI_DEV_ENFORCED_POWER_LIMIT{${GPU}})`, legend: 'GPU {{gpu}} limit' },
      ])
        .unit('watt')
        .min(0),
    )
    .withPanel(
      bargaugePanel('Energy over the time range', 'Energy each GPU consumed over the dashboard time range (the driver\'s energy counter, in mJ).', [
        { expr: `max by (gpu) (increase(DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION{${GPU}}[$__range])) / 3600000000`, legend: 'GPU {{gpu}}' },
      ])
        .unit('kwatth')
        .decimals(2)
        .min(0),
    )
    .withPanel(
      timeseriesPanel('SM clock', 'SM clock, and its maximum.', [
        { expr: `max by (gpu) (DCGM_FI_DEV_SM_CLOCK{${GPU}}) * 1e6`, legend: 'GPU {{gpu}}' },
        { expr: `max(DCGM_FI_DEV_MAX_SM_CLOCK{${GPU}}) * 1e6`, legend: 'maximum' },
      ])
        .unit('hertz')
        .min(0),
    )
    .withPanel(
      steppedTimeseriesPanel(
        'Throttle reasons',
        'Clock event reasons holding each GPU\'s clocks down (1 active). gpu_idle and the settings reasons are harmless; sw_power_cap and sw_thermal_slowdown cost performance; hw_* are hardware protection.',
        [{ expr: `max by (gpu, reason) (gpu_clock_event_reason_active{${GPU}})`, legend: 'GPU {{gpu}} {{reason}}' }],
      )
        .min(0)
        .max(1)
        .decimals(0),
    )
    .withPanel(
      timeseriesPanel(
        'Time held down by the power and thermal limits',
        'Share of time the power limit and the thermal limit held the clocks down (violation counters, in microseconds).',
        [
          { expr: `max by (gpu) (rate(DCGM_FI_DEV_POWER_VIOLATION{${GPU}}[$__rate_interval])) / 1e6`, legend: 'GPU {{gpu}} power' },
          { expr: `max by (gpu) (rate(DCGM_FI_DEV_THERMAL_VIOLATION{${GPU}}[$__rate_interval])) / 1e6`, legend: 'GPU {{gpu}} thermal' },
        ],
      )
        .unit('percentunit')
        .min(0),
    )

    .withRow(row('Errors'))
    .withPanel(
      timeseriesPanel('Xid errors', 'Xid errors per GPU (gpu_xid_events_total); the codes are in the table beside.', [
        { expr: `max by (gpu) (increase(gpu_xid_events_total{${GPU}}[$__rate_interval]))`, legend: 'GPU {{gpu}}' },
      ])
        .decimals(0)
        .min(0),
    )
    .withPanel(
      tablePanel(
        'Last Xid per GPU',
        'DCGM_FI_DEV_XID_ERRORS as dcgm-exporter writes it: the last Xid since the exporter started (0: none), with its code and message.',
        [{ expr: `max by (gpu, err_code, err_msg) (DCGM_FI_DEV_XID_ERRORS{${GPU}})`, legend: 'last Xid' }],
      ).span(12),
    )
    .withPanel(
      timeseriesPanel('ECC errors (volatile)', 'Single-bit (corrected) and double-bit (uncorrectable) ECC errors since the driver loaded.', [
        { expr: `max by (gpu) (increase(DCGM_FI_DEV_ECC_SBE_VOL_TOTAL{${GPU}}[$__rate_interval]))`, legend: 'GPU {{gpu}} single-bit' },
        { expr: `max by (gpu) (increase(DCGM_FI_DEV_ECC_DBE_VOL_TOTAL{${GPU}}[$__rate_interval]))`, legend: 'GPU {{gpu}} double-bit' },
      ])
        .decimals(0)
        .min(0),
    )
    .withPanel(
      timeseriesPanel(
        'PCIe replays and NVLink errors',
        'Link-level retries per second: PCIe replays and NVLink CRC, replay and recovery errors (summed over links).',
        [
          { expr: `max by (gpu) (rate(DCGM_FI_DEV_PCIE_REPLAY_COUNTER{${GPU}}[$__rate_interval]))`, legend: 'GPU {{gpu}} PCIe replays' },
          { expr: `max by (gpu) (rate(DCGM_FI_DEV_NVLINK_CRC_FLIT_ERROR_COUNT_TOTAL{${GPU}}[$__rate_interval]))`, legend: 'GPU {{gpu}} NVLink CRC flit' },
          { expr: `max by (gpu) (rate(DCGM_FI_DEV_NVLINK_REPLAY_ERROR_COUNT_TOTAL{${GPU}}[$__rate_interval]))`, legend: 'GPU {{gpu}} NVLink replays' },
          { expr: `max by (gpu) (rate(DCGM_FI_DEV_NVLINK_RECOVERY_ERROR_COUNT_TOTAL{${GPU}}[$__rate_interval]))`, legend: 'GPU {{gpu}} NVLink recoveries' },
        ],
      )
        .unit('ops')
        .min(0),
    )
    .withPanel(
      tablePanel('Memory health', 'Lifetime ECC errors, retired pages and remapped rows per GPU, and whether a repair waits for a reset or failed.', [
        { expr: `max by (gpu) (DCGM_FI_DEV_ECC_SBE_AGG_TOTAL{${GPU}})`, legend: 'single-bit, lifetime' },
        { expr: `max by (gpu) (DCGM_FI_DEV_ECC_DBE_AGG_TOTAL{${GPU}})`, legend: 'double-bit, lifetime' },
        { expr: `max by (gpu) (DCGM_FI_DEV_RETIRED_SBE{${GPU}} + DCGM_FI_DEV_RETIRED_DBE{${GPU}})`, legend: 'retired pages' },
        { expr: `max by (gpu) (DCGM_FI_DEV_CORRECTABLE_REMAPPED_ROWS{${GPU}} + DCGM_FI_DEV_UNCORRECTABLE_REMAPPED_ROWS{${GPU}})`, legend: 'remapped rows' },
        { expr: `max by (gpu) (DCGM_FI_DEV_ROW_REMAP_PENDING{${GPU}})`, legend: 'remap pending' },
        { expr: `max by (gpu) (DCGM_FI_DEV_ROW_REMAP_FAILURE{${GPU}})`, legend: 'remap failed' },
      ]),
    )

    .withRow(row('MIG instances'))
    .withPanel(
      tablePanel('MIG instances', 'The node\'s MIG instances: GPU, instance id, profile and MIG device UUID.', [
        { expr: `max by (gpu, GPU_I_ID, GPU_I_PROFILE, mig_uuid) (gpu_mig_instance_info{Hostname=~"$node"})`, legend: 'instance' },
      ]),
    )
    .withPanel(
      timeseriesPanel('MIG instance memory used', 'Each MIG instance\'s own framebuffer memory in use.', [
        { expr: `max by (gpu, GPU_I_ID, GPU_I_PROFILE) (DCGM_FI_DEV_FB_USED{${MIG}})`, legend: 'GPU {{gpu}} instance {{GPU_I_ID}} ({{GPU_I_PROFILE}})' },
      ]).unit('mbytes'),
    )
    .withPanel(
      timeseriesPanel(
        'MIG instance utilization (busy time)',
        'Share of time each MIG instance\'s graphics engine was busy (its busy-seconds counter, from NVML GPM).',
        [
          {
            expr: `max by (gpu, GPU_I_ID, GPU_I_PROFILE) (rate(gpu_busy_seconds_total{${MIG}}[$__rate_interval]))`,
            legend: 'GPU {{gpu}} instance {{GPU_I_ID}} ({{GPU_I_PROFILE}})',
          },
        ],
      )
        .unit('percentunit')
        .min(0)
        .max(1),
    )
    .withPanel(
      timeseriesPanel('MIG instance SM active', 'Share of time at least one warp was resident on the instance\'s SMs (NVML GPM).', [
        { expr: `max by (gpu, GPU_I_ID, GPU_I_PROFILE) (DCGM_FI_PROF_SM_ACTIVE{${MIG}})`, legend: 'GPU {{gpu}} instance {{GPU_I_ID}} ({{GPU_I_PROFILE}})' },
      ])
        .unit('percentunit')
        .min(0)
        .max(1),
    )

    .withRow(row('Pods'))
    .withPanel(
      tablePanel('Pods holding the node\'s devices', 'Each container holding a GPU, a MIG instance or replicas of a shared GPU, and its share of the device.', [
        { expr: `max by (gpu, GPU_I_ID, GPU_I_PROFILE, vgpu, namespace, pod, container) (gpu_allocated_ratio{${GPU}})`, legend: 'share' },
      ]),
    );
}
