import { ClockType, ClocksEventReason, FieldId, FieldScope, GpmMetricId, PcieCounter, PerfPolicy } from '../native/nvml-constants.js';
import { bitLabels, byCollector, call, derived, field, gpm, simKey, simNote, type ValueDescriptor } from './descriptor.js';

/** nvmlDeviceGetPerformanceState's NVML_PSTATE_UNKNOWN: no value. */
const PSTATE_UNKNOWN = 32;
const knownPstate = (p: number): number | undefined => (p === PSTATE_UNKNOWN ? undefined : p);

/**
 * Every value a collector produces, one descriptor each (see descriptor.ts and
 * docs/adding-a-metric.md), in the order their families are exported. A value's key is its name
 * in the sample (NVML's own units); its families scale it to the exported unit.
 */
export const VALUES = {
  gpuUtilPercent: {
    collector: 'utilization',
    read: byCollector('nvmlDeviceGetUtilizationRates'),
    sim: simKey('util_gpu'),
    families: [
      {
        type: 'gauge', entity: 'gpu',
        help: 'Fraction of time a kernel ran on the GPU over the driver sample period',
        dcgm: { name: 'DCGM_FI_DEV_GPU_UTIL', scale: 1, unit: '%' },
        prometheus: { name: 'gpu_utilization_ratio', scale: 0.01, unit: 'ratio' },
      },
    ],
  },
  memCopyUtilPercent: {
    collector: 'utilization',
    read: byCollector('nvmlDeviceGetUtilizationRates'),
    sim: simKey('util_mem'),
    families: [
      {
        type: 'gauge', entity: 'gpu',
        help: 'Fraction of time device memory was being read or written',
        dcgm: { name: 'DCGM_FI_DEV_MEM_COPY_UTIL', scale: 1, unit: '%' },
        prometheus: { name: 'gpu_memory_copy_utilization_ratio', scale: 0.01, unit: 'ratio' },
      },
    ],
  },
  gpuBusySeconds: {
    collector: 'utilization',
    read: derived('gpuUtilPercent (MIG instances: grEngineActivePercent), integrated over time on the main thread'),
    sim: simNote('util_gpu (MIG instances: gpm_gr_active) integrated over time'),
    families: [
      {
        type: 'counter', entity: 'gpu+mig',
        help: 'Seconds the GPU was busy (utilization integrated over time); rate() gives the exact average utilization over any window. MIG instances, which have no utilization, count the gpm collector\'s graphics engine activity instead, so idle alerts work on them too',
        prometheus: { name: 'gpu_busy_seconds_total', scale: 1, unit: 'seconds' },
      },
    ],
  },
  memCopyBusySeconds: {
    collector: 'utilization',
    read: derived('memCopyUtilPercent, integrated over time on the main thread'),
    sim: simNote('util_mem integrated over time'),
    families: [
      {
        type: 'counter', entity: 'gpu',
        help: 'Seconds device memory was busy (memory copy utilization integrated over time)',
        prometheus: { name: 'gpu_memory_copy_busy_seconds_total', scale: 1, unit: 'seconds' },
      },
    ],
  },
  grEngineActivePercent: {
    collector: 'gpm',
    read: gpm('GRAPHICS_UTIL', GpmMetricId.GRAPHICS_UTIL, true),
    sim: simKey('gpm_gr_active'),
    families: [
      {
        type: 'gauge', entity: 'gpu+mig',
        help: 'Fraction of time the graphics or compute engine was active, averaged since the previous sample (NVML GPM, Hopper and later; on MIG-enabled GPUs per MIG instance, not on the GPU)',
        dcgm: { name: 'DCGM_FI_PROF_GR_ENGINE_ACTIVE', scale: 0.01, unit: 'ratio' },
        prometheus: { name: 'gpu_graphics_engine_active_ratio', scale: 0.01, unit: 'ratio' },
      },
    ],
  },
  smActivePercent: {
    collector: 'gpm',
    read: gpm('SM_UTIL', GpmMetricId.SM_UTIL, true),
    sim: simKey('gpm_sm_active'),
    families: [
      {
        type: 'gauge', entity: 'gpu+mig',
        help: 'Fraction of time an SM had at least one warp resident, averaged over all SMs since the previous sample (GPM; per MIG instance on MIG-enabled GPUs). Well below the graphics engine activity means kernels too small to fill the GPU',
        dcgm: { name: 'DCGM_FI_PROF_SM_ACTIVE', scale: 0.01, unit: 'ratio' },
        prometheus: { name: 'gpu_sm_active_ratio', scale: 0.01, unit: 'ratio' },
      },
    ],
  },
  smOccupancyPercent: {
    collector: 'gpm',
    read: gpm('SM_OCCUPANCY', GpmMetricId.SM_OCCUPANCY, true),
    sim: simKey('gpm_sm_occupancy'),
    families: [
      {
        type: 'gauge', entity: 'gpu+mig',
        help: 'Warps resident on the SMs as a fraction of the most they can hold, averaged since the previous sample (GPM; per MIG instance on MIG-enabled GPUs)',
        dcgm: { name: 'DCGM_FI_PROF_SM_OCCUPANCY', scale: 0.01, unit: 'ratio' },
        prometheus: { name: 'gpu_sm_occupancy_ratio', scale: 0.01, unit: 'ratio' },
      },
    ],
  },
  tensorActivePercent: {
    collector: 'gpm',
    read: gpm('ANY_TENSOR_UTIL', GpmMetricId.ANY_TENSOR_UTIL, true),
    sim: simKey('gpm_tensor_active'),
    families: [
      {
        type: 'gauge', entity: 'gpu+mig',
        help: 'Fraction of cycles any tensor core pipe was active, averaged since the previous sample (GPM; per MIG instance on MIG-enabled GPUs): how much of the GPU\'s matrix throughput the work uses',
        dcgm: { name: 'DCGM_FI_PROF_PIPE_TENSOR_ACTIVE', scale: 0.01, unit: 'ratio' },
        prometheus: { name: 'gpu_tensor_pipe_active_ratio', scale: 0.01, unit: 'ratio' },
      },
    ],
  },
  dramActivePercent: {
    collector: 'gpm',
    read: gpm('DRAM_BW_UTIL', GpmMetricId.DRAM_BW_UTIL, true),
    sim: simKey('gpm_dram_active'),
    families: [
      {
        type: 'gauge', entity: 'gpu+mig',
        help: 'Fraction of cycles device memory was sending or receiving data (memory bandwidth in use), averaged since the previous sample (GPM; per MIG instance on MIG-enabled GPUs)',
        dcgm: { name: 'DCGM_FI_PROF_DRAM_ACTIVE', scale: 0.01, unit: 'ratio' },
        prometheus: { name: 'gpu_dram_active_ratio', scale: 0.01, unit: 'ratio' },
      },
    ],
  },
  fp64ActivePercent: {
    collector: 'gpm',
    read: gpm('FP64_UTIL', GpmMetricId.FP64_UTIL, true),
    sim: simKey('gpm_fp64_active'),
    families: [
      {
        type: 'gauge', entity: 'gpu+mig',
        help: 'Fraction of cycles the FP64 (double precision) pipe was active, averaged since the previous sample (GPM; per MIG instance on MIG-enabled GPUs)',
        dcgm: { name: 'DCGM_FI_PROF_PIPE_FP64_ACTIVE', scale: 0.01, unit: 'ratio' },
        prometheus: { name: 'gpu_fp64_pipe_active_ratio', scale: 0.01, unit: 'ratio' },
      },
    ],
  },
  fp32ActivePercent: {
    collector: 'gpm',
    read: gpm('FP32_UTIL', GpmMetricId.FP32_UTIL, true),
    sim: simKey('gpm_fp32_active'),
    families: [
      {
        type: 'gauge', entity: 'gpu+mig',
        help: 'Fraction of cycles the FP32 (single precision) pipe was active, averaged since the previous sample (GPM; per MIG instance on MIG-enabled GPUs)',
        dcgm: { name: 'DCGM_FI_PROF_PIPE_FP32_ACTIVE', scale: 0.01, unit: 'ratio' },
        prometheus: { name: 'gpu_fp32_pipe_active_ratio', scale: 0.01, unit: 'ratio' },
      },
    ],
  },
  fp16ActivePercent: {
    collector: 'gpm',
    read: gpm('FP16_UTIL', GpmMetricId.FP16_UTIL, true),
    sim: simKey('gpm_fp16_active'),
    families: [
      {
        type: 'gauge', entity: 'gpu+mig',
        help: 'Fraction of cycles the FP16 (half precision) pipe was active, averaged since the previous sample (GPM; per MIG instance on MIG-enabled GPUs)',
        dcgm: { name: 'DCGM_FI_PROF_PIPE_FP16_ACTIVE', scale: 0.01, unit: 'ratio' },
        prometheus: { name: 'gpu_fp16_pipe_active_ratio', scale: 0.01, unit: 'ratio' },
      },
    ],
  },
  gpmPcieTxMiBps: {
    collector: 'gpm',
    read: gpm('PCIE_TX_PER_SEC', GpmMetricId.PCIE_TX_PER_SEC, false),
    sim: simKey('gpm_pcie_tx_mibps'),
    families: [
      {
        type: 'gauge', entity: 'gpu',
        help: 'PCIe bytes the GPU transmitted per second, averaged since the previous sample (GPM; whole GPU only). The prof_ in the Prometheus name sets it apart from gpu_pcie_transmit_bytes_per_second, the driver\'s 20 ms PCIe counter of the pcie collector',
        dcgm: { name: 'DCGM_FI_PROF_PCIE_TX_BYTES', scale: 1048576, unit: 'B/s' },
        prometheus: { name: 'gpu_prof_pcie_transmit_bytes_per_second', scale: 1048576, unit: 'bytes/s' },
      },
    ],
  },
  gpmPcieRxMiBps: {
    collector: 'gpm',
    read: gpm('PCIE_RX_PER_SEC', GpmMetricId.PCIE_RX_PER_SEC, false),
    sim: simKey('gpm_pcie_rx_mibps'),
    families: [
      {
        type: 'gauge', entity: 'gpu',
        help: 'PCIe bytes the GPU received per second, averaged since the previous sample (GPM; whole GPU only; see gpu_pcie_receive_bytes_per_second for the 20 ms counter)',
        dcgm: { name: 'DCGM_FI_PROF_PCIE_RX_BYTES', scale: 1048576, unit: 'B/s' },
        prometheus: { name: 'gpu_prof_pcie_receive_bytes_per_second', scale: 1048576, unit: 'bytes/s' },
      },
    ],
  },
  gpmNvlinkTxMiBps: {
    collector: 'gpm',
    read: gpm('NVLINK_TOTAL_TX_PER_SEC', GpmMetricId.NVLINK_TOTAL_TX_PER_SEC, false),
    sim: simKey('gpm_nvlink_tx_mibps'),
    families: [
      {
        type: 'gauge', entity: 'gpu',
        help: 'NVLink bytes the GPU transmitted per second over all its links, averaged since the previous sample (GPM; whole GPU only; rate(gpu_nvlink_transmit_bytes_total) gives the same from the cumulative counter)',
        dcgm: { name: 'DCGM_FI_PROF_NVLINK_TX_BYTES', scale: 1048576, unit: 'B/s' },
        prometheus: { name: 'gpu_prof_nvlink_transmit_bytes_per_second', scale: 1048576, unit: 'bytes/s' },
      },
    ],
  },
  gpmNvlinkRxMiBps: {
    collector: 'gpm',
    read: gpm('NVLINK_TOTAL_RX_PER_SEC', GpmMetricId.NVLINK_TOTAL_RX_PER_SEC, false),
    sim: simKey('gpm_nvlink_rx_mibps'),
    families: [
      {
        type: 'gauge', entity: 'gpu',
        help: 'NVLink bytes the GPU received per second over all its links, averaged since the previous sample (GPM; whole GPU only)',
        dcgm: { name: 'DCGM_FI_PROF_NVLINK_RX_BYTES', scale: 1048576, unit: 'B/s' },
        prometheus: { name: 'gpu_prof_nvlink_receive_bytes_per_second', scale: 1048576, unit: 'bytes/s' },
      },
    ],
  },
  encoderUtilPercent: {
    collector: 'codec',
    read: call('nvmlDeviceGetEncoderUtilization', (n, d) => n.encoderUtilization(d)),
    sim: simKey('enc_util'),
    families: [
      {
        type: 'gauge', entity: 'gpu',
        help: 'Video encoder utilization',
        dcgm: { name: 'DCGM_FI_DEV_ENC_UTIL', scale: 1, unit: '%' },
        prometheus: { name: 'gpu_encoder_utilization_ratio', scale: 0.01, unit: 'ratio' },
      },
    ],
  },
  decoderUtilPercent: {
    collector: 'codec',
    read: call('nvmlDeviceGetDecoderUtilization', (n, d) => n.decoderUtilization(d)),
    sim: simKey('dec_util'),
    families: [
      {
        type: 'gauge', entity: 'gpu',
        help: 'Video decoder utilization',
        dcgm: { name: 'DCGM_FI_DEV_DEC_UTIL', scale: 1, unit: '%' },
        prometheus: { name: 'gpu_decoder_utilization_ratio', scale: 0.01, unit: 'ratio' },
      },
    ],
  },
  fbTotalBytes: {
    collector: 'memory',
    read: byCollector('nvmlDeviceGetMemoryInfo_v2'),
    sim: simKey('mem_total'),
    families: [
      {
        type: 'gauge', entity: 'gpu+mig',
        help: 'Total framebuffer memory (per MIG instance: the instance\'s own)',
        dcgm: { name: 'DCGM_FI_DEV_FB_TOTAL', scale: 9.5367431640625e-7, unit: 'MiB', integer: true },
        prometheus: { name: 'gpu_memory_total_bytes', scale: 1, unit: 'bytes' },
      },
    ],
  },
  fbUsedBytes: {
    collector: 'memory',
    read: byCollector('nvmlDeviceGetMemoryInfo_v2'),
    sim: simKey('mem_used'),
    families: [
      {
        type: 'gauge', entity: 'gpu+mig',
        help: 'Framebuffer memory used',
        dcgm: { name: 'DCGM_FI_DEV_FB_USED', scale: 9.5367431640625e-7, unit: 'MiB', integer: true },
        prometheus: { name: 'gpu_memory_used_bytes', scale: 1, unit: 'bytes' },
      },
    ],
  },
  fbFreeBytes: {
    collector: 'memory',
    read: byCollector('nvmlDeviceGetMemoryInfo_v2'),
    sim: simNote('mem_total - mem_reserved - mem_used'),
    families: [
      {
        type: 'gauge', entity: 'gpu+mig',
        help: 'Framebuffer memory free',
        dcgm: { name: 'DCGM_FI_DEV_FB_FREE', scale: 9.5367431640625e-7, unit: 'MiB', integer: true },
        prometheus: { name: 'gpu_memory_free_bytes', scale: 1, unit: 'bytes' },
      },
    ],
  },
  fbReservedBytes: {
    collector: 'memory',
    read: byCollector('nvmlDeviceGetMemoryInfo_v2'),
    sim: simKey('mem_reserved'),
    families: [
      {
        type: 'gauge', entity: 'gpu+mig',
        help: 'Framebuffer memory reserved by the driver (drivers with MemoryInfo_v2)',
        dcgm: { name: 'DCGM_FI_DEV_FB_RESERVED', scale: 9.5367431640625e-7, unit: 'MiB', integer: true },
        prometheus: { name: 'gpu_memory_reserved_bytes', scale: 1, unit: 'bytes' },
      },
    ],
  },
  gpuTempCelsius: {
    collector: 'temperature',
    read: call('nvmlDeviceGetTemperature', (n, d) => n.temperature(d, 0)),
    sim: simKey('temp_gpu'),
    families: [
      {
        type: 'gauge', entity: 'gpu',
        help: 'GPU die temperature',
        dcgm: { name: 'DCGM_FI_DEV_GPU_TEMP', scale: 1, unit: 'C' },
        prometheus: { name: 'gpu_temperature_celsius', scale: 1, unit: 'celsius' },
      },
    ],
  },
  memoryTempCelsius: {
    collector: 'temperature',
    read: field('MEMORY_TEMP', FieldId.MEMORY_TEMP),
    sim: simKey('temp_mem'),
    families: [
      {
        type: 'gauge', entity: 'gpu',
        help: 'Memory (HBM) temperature',
        dcgm: { name: 'DCGM_FI_DEV_MEMORY_TEMP', scale: 1, unit: 'C' },
        prometheus: { name: 'gpu_memory_temperature_celsius', scale: 1, unit: 'celsius' },
      },
    ],
  },
  powerUsageMilliwatts: {
    collector: 'power',
    read: call('nvmlDeviceGetPowerUsage', (n, d) => n.powerUsageMilliwatts(d)),
    sim: simKey('power_mw'),
    families: [
      {
        type: 'gauge', entity: 'gpu',
        help: 'Power draw',
        dcgm: { name: 'DCGM_FI_DEV_POWER_USAGE', scale: 0.001, unit: 'W' },
        prometheus: { name: 'gpu_power_watts', scale: 0.001, unit: 'watts' },
      },
    ],
  },
  powerLimitMilliwatts: {
    collector: 'power',
    read: call('nvmlDeviceGetEnforcedPowerLimit', (n, d) => n.enforcedPowerLimitMilliwatts(d)),
    sim: simKey('power_limit_mw'),
    families: [
      {
        type: 'gauge', entity: 'gpu',
        help: 'Power limit the driver enforces',
        dcgm: { name: 'DCGM_FI_DEV_ENFORCED_POWER_LIMIT', scale: 0.001, unit: 'W' },
        prometheus: { name: 'gpu_power_limit_watts', scale: 0.001, unit: 'watts' },
      },
    ],
  },
  totalEnergyMillijoules: {
    collector: 'power',
    read: call('nvmlDeviceGetTotalEnergyConsumption', (n, d) => n.totalEnergyMillijoules(d)),
    sim: simNote('energy_start_mj plus power_mw integrated over elapsed time'),
    families: [
      {
        type: 'counter', entity: 'gpu',
        help: 'Energy consumed since the driver was loaded',
        dcgm: { name: 'DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION', scale: 1, unit: 'mJ' },
        prometheus: { name: 'gpu_energy_joules_total', scale: 0.001, unit: 'joules' },
      },
    ],
  },
  smClockMHz: {
    collector: 'clocks',
    read: call('nvmlDeviceGetClockInfo', (n, d) => n.clockMHz(d, ClockType.SM)),
    sim: simKey('clock_sm'),
    families: [
      {
        type: 'gauge', entity: 'gpu',
        help: 'SM clock',
        dcgm: { name: 'DCGM_FI_DEV_SM_CLOCK', scale: 1, unit: 'MHz' },
        prometheus: { name: 'gpu_sm_clock_hertz', scale: 1000000, unit: 'hertz' },
      },
    ],
  },
  memClockMHz: {
    collector: 'clocks',
    read: call('nvmlDeviceGetClockInfo', (n, d) => n.clockMHz(d, ClockType.MEM)),
    sim: simKey('clock_mem'),
    families: [
      {
        type: 'gauge', entity: 'gpu',
        help: 'Memory clock',
        dcgm: { name: 'DCGM_FI_DEV_MEM_CLOCK', scale: 1, unit: 'MHz' },
        prometheus: { name: 'gpu_memory_clock_hertz', scale: 1000000, unit: 'hertz' },
      },
    ],
  },
  graphicsClockMHz: {
    collector: 'clocks',
    read: call('nvmlDeviceGetClockInfo', (n, d) => n.clockMHz(d, ClockType.GRAPHICS)),
    sim: simKey('clock_graphics'),
    families: [
      {
        type: 'gauge', entity: 'gpu',
        help: 'Graphics clock',
        prometheus: { name: 'gpu_graphics_clock_hertz', scale: 1000000, unit: 'hertz' },
      },
    ],
  },
  maxSmClockMHz: {
    collector: 'clocks',
    read: call('nvmlDeviceGetMaxClockInfo', (n, d) => n.maxClockMHz(d, ClockType.SM), { fixed: true }),
    sim: simKey('max_clock_sm'),
    families: [
      {
        type: 'gauge', entity: 'gpu',
        help: 'Maximum SM clock',
        dcgm: { name: 'DCGM_FI_DEV_MAX_SM_CLOCK', scale: 1, unit: 'MHz' },
        prometheus: { name: 'gpu_sm_clock_max_hertz', scale: 1000000, unit: 'hertz' },
      },
    ],
  },
  maxMemClockMHz: {
    collector: 'clocks',
    read: call('nvmlDeviceGetMaxClockInfo', (n, d) => n.maxClockMHz(d, ClockType.MEM), { fixed: true }),
    sim: simKey('max_clock_mem'),
    families: [
      {
        type: 'gauge', entity: 'gpu',
        help: 'Maximum memory clock',
        dcgm: { name: 'DCGM_FI_DEV_MAX_MEM_CLOCK', scale: 1, unit: 'MHz' },
        prometheus: { name: 'gpu_memory_clock_max_hertz', scale: 1000000, unit: 'hertz' },
      },
    ],
  },
  maxGraphicsClockMHz: {
    collector: 'clocks',
    read: call('nvmlDeviceGetMaxClockInfo', (n, d) => n.maxClockMHz(d, ClockType.GRAPHICS), { fixed: true }),
    sim: simKey('max_clock_graphics'),
    families: [
      {
        type: 'gauge', entity: 'gpu',
        help: 'Maximum graphics clock',
        prometheus: { name: 'gpu_graphics_clock_max_hertz', scale: 1000000, unit: 'hertz' },
      },
    ],
  },
  fanSpeedPercent: {
    collector: 'fan',
    read: call('nvmlDeviceGetFanSpeed', (n, d) => n.fanSpeedPercent(d)),
    sim: simKey('fan'),
    families: [
      {
        type: 'gauge', entity: 'gpu',
        help: 'Fan speed as a share of its maximum (can exceed 100 %)',
        dcgm: { name: 'DCGM_FI_DEV_FAN_SPEED', scale: 1, unit: '%' },
        prometheus: { name: 'gpu_fan_speed_ratio', scale: 0.01, unit: 'ratio' },
      },
    ],
  },
  performanceState: {
    collector: 'pstate',
    read: call('nvmlDeviceGetPerformanceState', (n, d) => knownPstate(n.performanceState(d))),
    sim: simKey('pstate'),
    families: [
      {
        type: 'gauge', entity: 'gpu',
        help: 'Performance state, 0 (P0, highest) to 15 (P15, lowest)',
        dcgm: { name: 'DCGM_FI_DEV_PSTATE', scale: 1, unit: 'P-state' },
        prometheus: { name: 'gpu_performance_state', scale: 1, unit: 'P-state' },
      },
    ],
  },
  pcieTxKBps: {
    collector: 'pcie',
    read: call('nvmlDeviceGetPcieThroughput', (n, d) => n.pcieThroughputKBps(d, PcieCounter.TX)),
    sim: simKey('pcie_tx_kbps'),
    families: [
      {
        type: 'gauge', entity: 'gpu',
        help: 'PCIe transmit throughput over the driver\'s 20 ms window',
        dcgm: { name: 'DCGM_FI_DEV_PCIE_TX_THROUGHPUT', scale: 1, unit: 'KB/s' },
        prometheus: { name: 'gpu_pcie_transmit_bytes_per_second', scale: 1024, unit: 'bytes/s' },
      },
    ],
  },
  pcieRxKBps: {
    collector: 'pcie',
    read: call('nvmlDeviceGetPcieThroughput', (n, d) => n.pcieThroughputKBps(d, PcieCounter.RX)),
    sim: simKey('pcie_rx_kbps'),
    families: [
      {
        type: 'gauge', entity: 'gpu',
        help: 'PCIe receive throughput over the driver\'s 20 ms window',
        dcgm: { name: 'DCGM_FI_DEV_PCIE_RX_THROUGHPUT', scale: 1, unit: 'KB/s' },
        prometheus: { name: 'gpu_pcie_receive_bytes_per_second', scale: 1024, unit: 'bytes/s' },
      },
    ],
  },
  pcieLinkGen: {
    collector: 'pcie_link',
    read: call('nvmlDeviceGetCurrPcieLinkGeneration', (n, d) => n.pcieLinkGeneration(d)),
    sim: simKey('pcie_link_gen'),
    families: [
      {
        type: 'gauge', entity: 'gpu',
        help: 'PCIe generation the GPU\'s link runs at now. An idle GPU lowers it to save power; under load it should equal the maximum generation',
        dcgm: { name: 'DCGM_FI_DEV_PCIE_LINK_GEN', scale: 1, unit: 'generation' },
        prometheus: { name: 'gpu_pcie_link_generation', scale: 1, unit: 'generation' },
      },
    ],
  },
  pcieLinkWidth: {
    collector: 'pcie_link',
    read: call('nvmlDeviceGetCurrPcieLinkWidth', (n, d) => n.pcieLinkWidth(d)),
    sim: simKey('pcie_link_width'),
    families: [
      {
        type: 'gauge', entity: 'gpu',
        help: 'PCIe lanes the GPU\'s link runs on now; fewer than the maximum width means a link that trained narrow (a badly seated card, a damaged riser or slot)',
        dcgm: { name: 'DCGM_FI_DEV_PCIE_LINK_WIDTH', scale: 1, unit: 'lanes' },
        prometheus: { name: 'gpu_pcie_link_width', scale: 1, unit: 'lanes' },
      },
    ],
  },
  maxPcieLinkGen: {
    collector: 'pcie_link',
    read: call('nvmlDeviceGetMaxPcieLinkGeneration', (n, d) => n.maxPcieLinkGeneration(d), { fixed: true }),
    sim: simKey('pcie_max_link_gen'),
    families: [
      {
        type: 'gauge', entity: 'gpu',
        help: 'Highest PCIe generation both the GPU and its slot support (a Gen5 GPU in a Gen4 slot: 4)',
        dcgm: { name: 'DCGM_FI_DEV_PCIE_MAX_LINK_GEN', scale: 1, unit: 'generation' },
        prometheus: { name: 'gpu_pcie_link_max_generation', scale: 1, unit: 'generation' },
      },
    ],
  },
  maxPcieLinkWidth: {
    collector: 'pcie_link',
    read: call('nvmlDeviceGetMaxPcieLinkWidth', (n, d) => n.maxPcieLinkWidth(d), { fixed: true }),
    sim: simKey('pcie_max_link_width'),
    families: [
      {
        type: 'gauge', entity: 'gpu',
        help: 'Most PCIe lanes both the GPU and its slot support',
        dcgm: { name: 'DCGM_FI_DEV_PCIE_MAX_LINK_WIDTH', scale: 1, unit: 'lanes' },
        prometheus: { name: 'gpu_pcie_link_max_width', scale: 1, unit: 'lanes' },
      },
    ],
  },
  migModeEnabled: {
    collector: 'mig',
    read: byCollector('nvmlDeviceGetMigMode'),
    sim: simKey('mig_mode'),
    families: [
      {
        type: 'gauge', entity: 'gpu',
        help: 'MIG mode: 1 enabled, 0 disabled',
        dcgm: { name: 'DCGM_FI_DEV_MIG_MODE', scale: 1, unit: 'bool' },
        prometheus: { name: 'gpu_mig_mode_enabled', scale: 1, unit: 'bool' },
      },
    ],
  },
  clocksEventReasons: {
    collector: 'throttle',
    read: call('nvmlDeviceGetCurrentClocksEventReasons', (n, d) => n.clocksEventReasons(d)),
    sim: simKey('clocks_event_reasons'),
    families: [
      {
        type: 'gauge', entity: 'gpu',
        help: 'Clock event (throttle) reasons active now, as NVML\'s bit mask: 0x1 idle, 0x2 application clocks setting, 0x4 software power cap, 0x8 hardware slowdown, 0x10 sync boost, 0x20 software thermal slowdown, 0x40 hardware thermal slowdown, 0x80 hardware power brake, 0x100 display clock setting; gpu_clock_event_reason_active has one series per reason',
        dcgm: { name: 'DCGM_FI_DEV_CLOCK_THROTTLE_REASONS', scale: 1, unit: 'bit mask' },
        prometheus: { name: 'gpu_clock_event_reasons', scale: 1, unit: 'bit mask' },
      },
      {
        type: 'gauge', entity: 'gpu',
        help: 'Whether a clock event (throttle) reason holds the clocks down now (1) or not (0), one series per reason. gpu_idle, applications_clocks_setting and display_clock_setting are harmless; sw_power_cap and sw_thermal_slowdown under load cost performance (power limit, cooling); hw_slowdown, hw_thermal_slowdown and hw_power_brake_slowdown are hardware protection (overheating, power supply or brake signal) and worth an alert',
        prometheus: { name: 'gpu_clock_event_reason_active', scale: 1, unit: 'bool' },
        labels: bitLabels('reason', ClocksEventReason),
      },
    ],
  },
  powerViolationNs: {
    collector: 'violation',
    read: call('nvmlDeviceGetViolationStatus', (n, d) => n.violationTime(d, PerfPolicy.POWER).violationTimeNs),
    sim: simKey('violation_power_ns'),
    families: [
      {
        type: 'counter', entity: 'gpu',
        help: 'Time the power limit held the clocks down since the driver loaded; rate() is the share of time the GPU was power capped. A high share under load means the work wants more power than the limit allows',
        dcgm: { name: 'DCGM_FI_DEV_POWER_VIOLATION', scale: 0.001, unit: 'us', integer: true },
        prometheus: { name: 'gpu_power_violation_seconds_total', scale: 1e-9, unit: 'seconds' },
      },
    ],
  },
  thermalViolationNs: {
    collector: 'violation',
    read: call('nvmlDeviceGetViolationStatus', (n, d) => n.violationTime(d, PerfPolicy.THERMAL).violationTimeNs),
    sim: simKey('violation_thermal_ns'),
    families: [
      {
        type: 'counter', entity: 'gpu',
        help: 'Time the thermal limit held the clocks down since the driver loaded; rate() is the share of time the GPU was too hot to run at full clocks. A sustained rate calls for a look at cooling and airflow',
        dcgm: { name: 'DCGM_FI_DEV_THERMAL_VIOLATION', scale: 0.001, unit: 'us', integer: true },
        prometheus: { name: 'gpu_thermal_violation_seconds_total', scale: 1e-9, unit: 'seconds' },
      },
    ],
  },
  eccSbeVolatile: {
    collector: 'ecc',
    read: field('ECC_SBE_VOL_TOTAL', FieldId.ECC_SBE_VOLATILE_TOTAL),
    sim: simKey('ecc_sbe_vol'),
    families: [
      {
        type: 'counter', entity: 'gpu',
        help: 'Single-bit (corrected) ECC errors since the driver loaded or the GPU was reset (volatile). The hardware corrected them; a steady climb points at weakening memory, see the retired pages and remapped rows',
        dcgm: { name: 'DCGM_FI_DEV_ECC_SBE_VOL_TOTAL', scale: 1, unit: 'errors' },
        prometheus: { name: 'gpu_ecc_single_bit_volatile_errors_total', scale: 1, unit: 'errors' },
      },
    ],
  },
  eccDbeVolatile: {
    collector: 'ecc',
    read: field('ECC_DBE_VOL_TOTAL', FieldId.ECC_DBE_VOLATILE_TOTAL),
    sim: simKey('ecc_dbe_vol'),
    families: [
      {
        type: 'counter', entity: 'gpu',
        help: 'Double-bit (uncorrectable) ECC errors since the driver loaded or the GPU was reset (volatile). Any increase means corrupted data: the work on the GPU may have failed or computed wrong results; drain the GPU and check pending page retirement or row remapping',
        dcgm: { name: 'DCGM_FI_DEV_ECC_DBE_VOL_TOTAL', scale: 1, unit: 'errors' },
        prometheus: { name: 'gpu_ecc_double_bit_volatile_errors_total', scale: 1, unit: 'errors' },
      },
    ],
  },
  eccSbeAggregate: {
    collector: 'memory_errors',
    read: field('ECC_SBE_AGG_TOTAL', FieldId.ECC_SBE_AGGREGATE_TOTAL),
    sim: simKey('ecc_sbe_agg'),
    families: [
      {
        type: 'counter', entity: 'gpu',
        help: 'Single-bit (corrected) ECC errors over the GPU\'s lifetime (aggregate, kept in the InfoROM across reboots; re-read every --health.interval)',
        dcgm: { name: 'DCGM_FI_DEV_ECC_SBE_AGG_TOTAL', scale: 1, unit: 'errors' },
        prometheus: { name: 'gpu_ecc_single_bit_aggregate_errors_total', scale: 1, unit: 'errors' },
      },
    ],
  },
  eccDbeAggregate: {
    collector: 'memory_errors',
    read: field('ECC_DBE_AGG_TOTAL', FieldId.ECC_DBE_AGGREGATE_TOTAL),
    sim: simKey('ecc_dbe_agg'),
    families: [
      {
        type: 'counter', entity: 'gpu',
        help: 'Double-bit (uncorrectable) ECC errors over the GPU\'s lifetime (aggregate, kept in the InfoROM across reboots; re-read every --health.interval). A GPU whose count keeps growing is a candidate for replacement',
        dcgm: { name: 'DCGM_FI_DEV_ECC_DBE_AGG_TOTAL', scale: 1, unit: 'errors' },
        prometheus: { name: 'gpu_ecc_double_bit_aggregate_errors_total', scale: 1, unit: 'errors' },
      },
    ],
  },
  retiredPagesSbe: {
    collector: 'memory_errors',
    read: field('RETIRED_SBE', FieldId.RETIRED_PAGES_SBE),
    sim: simKey('retired_sbe'),
    families: [
      {
        type: 'counter', entity: 'gpu',
        help: 'Framebuffer pages retired after repeated single-bit ECC errors, over the GPU\'s lifetime (page retirement: GPUs before Ampere; re-read every --health.interval). A growing count means failing memory',
        dcgm: { name: 'DCGM_FI_DEV_RETIRED_SBE', scale: 1, unit: 'pages' },
        prometheus: { name: 'gpu_retired_pages_single_bit_total', scale: 1, unit: 'pages' },
      },
    ],
  },
  retiredPagesDbe: {
    collector: 'memory_errors',
    read: field('RETIRED_DBE', FieldId.RETIRED_PAGES_DBE),
    sim: simKey('retired_dbe'),
    families: [
      {
        type: 'counter', entity: 'gpu',
        help: 'Framebuffer pages retired after a double-bit ECC error, over the GPU\'s lifetime (page retirement: GPUs before Ampere; re-read every --health.interval). Each one followed an uncorrectable error',
        dcgm: { name: 'DCGM_FI_DEV_RETIRED_DBE', scale: 1, unit: 'pages' },
        prometheus: { name: 'gpu_retired_pages_double_bit_total', scale: 1, unit: 'pages' },
      },
    ],
  },
  retiredPagesPending: {
    collector: 'memory_errors',
    read: field('RETIRED_PENDING', FieldId.RETIRED_PAGES_PENDING),
    sim: simKey('retired_pending'),
    families: [
      {
        type: 'gauge', entity: 'gpu',
        help: '1 while retired pages wait for the next driver reload or GPU reset to take effect (until then the bad memory can still be used): drain and reset the GPU; 0 otherwise',
        dcgm: { name: 'DCGM_FI_DEV_RETIRED_PENDING', scale: 1, unit: 'bool' },
        prometheus: { name: 'gpu_retired_pages_pending', scale: 1, unit: 'bool' },
      },
    ],
  },
  remappedRowsCorrectable: {
    collector: 'memory_errors',
    read: field('REMAPPED_COR', FieldId.REMAPPED_ROWS_CORRECTABLE),
    sim: simKey('remap_correctable'),
    families: [
      {
        type: 'counter', entity: 'gpu',
        help: 'Memory rows remapped to spare rows after correctable errors, over the GPU\'s lifetime (row remapping: Ampere and later; absent in MIG mode; re-read every --health.interval)',
        dcgm: { name: 'DCGM_FI_DEV_CORRECTABLE_REMAPPED_ROWS', scale: 1, unit: 'rows' },
        prometheus: { name: 'gpu_remapped_rows_correctable_total', scale: 1, unit: 'rows' },
      },
    ],
  },
  remappedRowsUncorrectable: {
    collector: 'memory_errors',
    read: field('REMAPPED_UNC', FieldId.REMAPPED_ROWS_UNCORRECTABLE),
    sim: simKey('remap_uncorrectable'),
    families: [
      {
        type: 'counter', entity: 'gpu',
        help: 'Memory rows remapped to spare rows after uncorrectable errors, over the GPU\'s lifetime (row remapping: Ampere and later; absent in MIG mode; re-read every --health.interval). Each one followed a double-bit error',
        dcgm: { name: 'DCGM_FI_DEV_UNCORRECTABLE_REMAPPED_ROWS', scale: 1, unit: 'rows' },
        prometheus: { name: 'gpu_remapped_rows_uncorrectable_total', scale: 1, unit: 'rows' },
      },
    ],
  },
  remappedRowsPending: {
    collector: 'memory_errors',
    read: field('REMAPPED_PENDING', FieldId.REMAPPED_ROWS_PENDING),
    sim: simKey('remap_pending'),
    families: [
      {
        type: 'gauge', entity: 'gpu',
        help: '1 while a row remapping waits for a GPU reset to take effect: drain and reset the GPU; 0 otherwise (absent in MIG mode)',
        dcgm: { name: 'DCGM_FI_DEV_ROW_REMAP_PENDING', scale: 1, unit: 'bool' },
        prometheus: { name: 'gpu_row_remap_pending', scale: 1, unit: 'bool' },
      },
    ],
  },
  remappedRowsFailure: {
    collector: 'memory_errors',
    read: field('REMAPPED_FAILURE', FieldId.REMAPPED_ROWS_FAILURE),
    sim: simKey('remap_failure'),
    families: [
      {
        type: 'gauge', entity: 'gpu',
        help: '1 when a row remapping failed (no spare row left): the memory can no longer repair itself and the GPU should be replaced; 0 otherwise (absent in MIG mode)',
        dcgm: { name: 'DCGM_FI_DEV_ROW_REMAP_FAILURE', scale: 1, unit: 'bool' },
        prometheus: { name: 'gpu_row_remap_failure', scale: 1, unit: 'bool' },
      },
    ],
  },
  pcieReplays: {
    collector: 'pcie_errors',
    read: field('PCIE_REPLAY_COUNTER', FieldId.PCIE_REPLAY_COUNTER),
    sim: simKey('pcie_replay'),
    families: [
      {
        type: 'counter', entity: 'gpu',
        help: 'PCIe link-level replays (packets sent again after a transmission error) since the driver loaded. A few are normal; a steady rate points at a marginal link, riser or slot and costs throughput',
        dcgm: { name: 'DCGM_FI_DEV_PCIE_REPLAY_COUNTER', scale: 1, unit: 'replays' },
        prometheus: { name: 'gpu_pcie_replays_total', scale: 1, unit: 'replays' },
      },
    ],
  },
  nvlinkCrcFlitErrors: {
    collector: 'nvlink',
    read: field('NVLINK_CRC_FLIT_ERROR_COUNT_TOTAL', FieldId.NVLINK_CRC_FLIT_ERRORS_TOTAL),
    sim: simKey('nvlink_crc_flit'),
    families: [
      {
        type: 'counter', entity: 'gpu',
        help: 'NVLink flow-control (flit) CRC errors summed over the GPU\'s links since the driver loaded (GPUs with NVLink). A growing count means a degrading link',
        dcgm: { name: 'DCGM_FI_DEV_NVLINK_CRC_FLIT_ERROR_COUNT_TOTAL', scale: 1, unit: 'errors' },
        prometheus: { name: 'gpu_nvlink_crc_flit_errors_total', scale: 1, unit: 'errors' },
      },
    ],
  },
  nvlinkCrcDataErrors: {
    collector: 'nvlink',
    read: field('NVLINK_CRC_DATA_ERROR_COUNT_TOTAL', FieldId.NVLINK_CRC_DATA_ERRORS_TOTAL),
    sim: simKey('nvlink_crc_data'),
    families: [
      {
        type: 'counter', entity: 'gpu',
        help: 'NVLink data CRC errors summed over the GPU\'s links since the driver loaded (GPUs with NVLink). A growing count means a degrading link',
        dcgm: { name: 'DCGM_FI_DEV_NVLINK_CRC_DATA_ERROR_COUNT_TOTAL', scale: 1, unit: 'errors' },
        prometheus: { name: 'gpu_nvlink_crc_data_errors_total', scale: 1, unit: 'errors' },
      },
    ],
  },
  nvlinkReplayErrors: {
    collector: 'nvlink',
    read: field('NVLINK_REPLAY_ERROR_COUNT_TOTAL', FieldId.NVLINK_REPLAY_ERRORS_TOTAL),
    sim: simKey('nvlink_replay'),
    families: [
      {
        type: 'counter', entity: 'gpu',
        help: 'NVLink replays (transfers sent again after an error) summed over the GPU\'s links since the driver loaded (GPUs with NVLink); corrected, but a steady rate costs bandwidth',
        dcgm: { name: 'DCGM_FI_DEV_NVLINK_REPLAY_ERROR_COUNT_TOTAL', scale: 1, unit: 'errors' },
        prometheus: { name: 'gpu_nvlink_replay_errors_total', scale: 1, unit: 'errors' },
      },
    ],
  },
  nvlinkRecoveryErrors: {
    collector: 'nvlink',
    read: field('NVLINK_RECOVERY_ERROR_COUNT_TOTAL', FieldId.NVLINK_RECOVERY_ERRORS_TOTAL),
    sim: simKey('nvlink_recovery'),
    families: [
      {
        type: 'counter', entity: 'gpu',
        help: 'NVLink recoveries (a link retrained after errors) summed over the GPU\'s links since the driver loaded (GPUs with NVLink); any increase deserves a look, as links that keep recovering tend to fail',
        dcgm: { name: 'DCGM_FI_DEV_NVLINK_RECOVERY_ERROR_COUNT_TOTAL', scale: 1, unit: 'errors' },
        prometheus: { name: 'gpu_nvlink_recovery_errors_total', scale: 1, unit: 'errors' },
      },
    ],
  },
  nvlinkTotalKiB: {
    collector: 'nvlink',
    read: derived('nvlinkTxKiB + nvlinkRxKiB, by the nvlink collector'),
    sim: simNote('nvlink_tx_kib + nvlink_rx_kib'),
    families: [
      {
        type: 'counter', entity: 'gpu',
        help: 'NVLink data transmitted plus received over all of the GPU\'s links since the driver loaded (GPUs with NVLink; NVML\'s data throughput counters, in KiB in the dcgm scheme); rate() is the NVLink bandwidth in use',
        dcgm: { name: 'DCGM_FI_DEV_NVLINK_BANDWIDTH_TOTAL', scale: 1, unit: 'KiB' },
        prometheus: { name: 'gpu_nvlink_bytes_total', scale: 1024, unit: 'bytes' },
      },
    ],
  },
  nvlinkTxKiB: {
    collector: 'nvlink',
    read: field('NVLINK_THROUGHPUT_DATA_TX', FieldId.NVLINK_THROUGHPUT_DATA_TX, FieldScope.ALL_NVLINKS),
    sim: simKey('nvlink_tx_kib'),
    families: [
      {
        type: 'counter', entity: 'gpu',
        help: 'NVLink data transmitted over all of the GPU\'s links since the driver loaded (GPUs with NVLink)',
        prometheus: { name: 'gpu_nvlink_transmit_bytes_total', scale: 1024, unit: 'bytes' },
      },
    ],
  },
  nvlinkRxKiB: {
    collector: 'nvlink',
    read: field('NVLINK_THROUGHPUT_DATA_RX', FieldId.NVLINK_THROUGHPUT_DATA_RX, FieldScope.ALL_NVLINKS),
    sim: simKey('nvlink_rx_kib'),
    families: [
      {
        type: 'counter', entity: 'gpu',
        help: 'NVLink data received over all of the GPU\'s links since the driver loaded (GPUs with NVLink)',
        prometheus: { name: 'gpu_nvlink_receive_bytes_total', scale: 1024, unit: 'bytes' },
      },
    ],
  },
} as const satisfies Record<string, ValueDescriptor>;
