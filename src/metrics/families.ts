import { ClocksEventReason } from '../native/nvml-constants.js';
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

/**
 * A label that splits a family into several series per device, each derived from the family's
 * one source value (then scaled like any value), e.g. one series per bit of a bit mask.
 */
export interface LabelDimension {
  /** Label name; it follows the device labels (and precedes pod labels). */
  name: string;
  values: readonly { value: string; of: (raw: number) => number }[];
}

/** One series per bit of a bit mask, the label value the bit's name in snake_case: 1 while the bit is set, else 0. */
export function bitLabels(name: string, bits: Readonly<Record<string, number>>): LabelDimension {
  return {
    name,
    values: Object.entries(bits).map(([bit, mask]) => ({ value: bit.toLowerCase(), of: (raw: number) => (Math.floor(raw / mask) % 2 === 1 ? 1 : 0) })),
  };
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
  /** Several series per device, one per label value; absent: one series per device. */
  labels?: LabelDimension;
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
    source: 'gpuBusySeconds', collector: 'utilization', type: 'counter', entity: 'gpu+mig',
    help: 'Seconds the GPU was busy (utilization integrated over time); rate() gives the exact average utilization over any window. MIG instances, which have no utilization, count the gpm collector\'s graphics engine activity instead, so idle alerts work on them too',
    prometheus: { name: 'gpu_busy_seconds_total', scale: 1, unit: 'seconds' },
  },
  {
    source: 'memCopyBusySeconds', collector: 'utilization', type: 'counter', entity: 'gpu',
    help: 'Seconds device memory was busy (memory copy utilization integrated over time)',
    prometheus: { name: 'gpu_memory_copy_busy_seconds_total', scale: 1, unit: 'seconds' },
  },
  {
    source: 'grEngineActivePercent', collector: 'gpm', type: 'gauge', entity: 'gpu+mig',
    help: 'Fraction of time the graphics or compute engine was active, averaged since the previous sample (NVML GPM, Hopper and later; on MIG-enabled GPUs per MIG instance, not on the GPU)',
    dcgm: { name: 'DCGM_FI_PROF_GR_ENGINE_ACTIVE', scale: 0.01, unit: 'ratio' },
    prometheus: { name: 'gpu_graphics_engine_active_ratio', scale: 0.01, unit: 'ratio' },
  },
  {
    source: 'smActivePercent', collector: 'gpm', type: 'gauge', entity: 'gpu+mig',
    help: 'Fraction of time an SM had at least one warp resident, averaged over all SMs since the previous sample (GPM; per MIG instance on MIG-enabled GPUs). Well below the graphics engine activity means kernels too small to fill the GPU',
    dcgm: { name: 'DCGM_FI_PROF_SM_ACTIVE', scale: 0.01, unit: 'ratio' },
    prometheus: { name: 'gpu_sm_active_ratio', scale: 0.01, unit: 'ratio' },
  },
  {
    source: 'smOccupancyPercent', collector: 'gpm', type: 'gauge', entity: 'gpu+mig',
    help: 'Warps resident on the SMs as a fraction of the most they can hold, averaged since the previous sample (GPM; per MIG instance on MIG-enabled GPUs)',
    dcgm: { name: 'DCGM_FI_PROF_SM_OCCUPANCY', scale: 0.01, unit: 'ratio' },
    prometheus: { name: 'gpu_sm_occupancy_ratio', scale: 0.01, unit: 'ratio' },
  },
  {
    source: 'tensorActivePercent', collector: 'gpm', type: 'gauge', entity: 'gpu+mig',
    help: 'Fraction of cycles any tensor core pipe was active, averaged since the previous sample (GPM; per MIG instance on MIG-enabled GPUs): how much of the GPU\'s matrix throughput the work uses',
    dcgm: { name: 'DCGM_FI_PROF_PIPE_TENSOR_ACTIVE', scale: 0.01, unit: 'ratio' },
    prometheus: { name: 'gpu_tensor_pipe_active_ratio', scale: 0.01, unit: 'ratio' },
  },
  {
    source: 'dramActivePercent', collector: 'gpm', type: 'gauge', entity: 'gpu+mig',
    help: 'Fraction of cycles device memory was sending or receiving data (memory bandwidth in use), averaged since the previous sample (GPM; per MIG instance on MIG-enabled GPUs)',
    dcgm: { name: 'DCGM_FI_PROF_DRAM_ACTIVE', scale: 0.01, unit: 'ratio' },
    prometheus: { name: 'gpu_dram_active_ratio', scale: 0.01, unit: 'ratio' },
  },
  {
    source: 'fp64ActivePercent', collector: 'gpm', type: 'gauge', entity: 'gpu+mig',
    help: 'Fraction of cycles the FP64 (double precision) pipe was active, averaged since the previous sample (GPM; per MIG instance on MIG-enabled GPUs)',
    dcgm: { name: 'DCGM_FI_PROF_PIPE_FP64_ACTIVE', scale: 0.01, unit: 'ratio' },
    prometheus: { name: 'gpu_fp64_pipe_active_ratio', scale: 0.01, unit: 'ratio' },
  },
  {
    source: 'fp32ActivePercent', collector: 'gpm', type: 'gauge', entity: 'gpu+mig',
    help: 'Fraction of cycles the FP32 (single precision) pipe was active, averaged since the previous sample (GPM; per MIG instance on MIG-enabled GPUs)',
    dcgm: { name: 'DCGM_FI_PROF_PIPE_FP32_ACTIVE', scale: 0.01, unit: 'ratio' },
    prometheus: { name: 'gpu_fp32_pipe_active_ratio', scale: 0.01, unit: 'ratio' },
  },
  {
    source: 'fp16ActivePercent', collector: 'gpm', type: 'gauge', entity: 'gpu+mig',
    help: 'Fraction of cycles the FP16 (half precision) pipe was active, averaged since the previous sample (GPM; per MIG instance on MIG-enabled GPUs)',
    dcgm: { name: 'DCGM_FI_PROF_PIPE_FP16_ACTIVE', scale: 0.01, unit: 'ratio' },
    prometheus: { name: 'gpu_fp16_pipe_active_ratio', scale: 0.01, unit: 'ratio' },
  },
  {
    source: 'gpmPcieTxMiBps', collector: 'gpm', type: 'gauge', entity: 'gpu',
    help: 'PCIe bytes the GPU transmitted per second, averaged since the previous sample (GPM; whole GPU only). The prof_ in the Prometheus name sets it apart from gpu_pcie_transmit_bytes_per_second, the driver\'s 20 ms PCIe counter of the pcie collector',
    dcgm: { name: 'DCGM_FI_PROF_PCIE_TX_BYTES', scale: 1048576, unit: 'B/s' },
    prometheus: { name: 'gpu_prof_pcie_transmit_bytes_per_second', scale: 1048576, unit: 'bytes/s' },
  },
  {
    source: 'gpmPcieRxMiBps', collector: 'gpm', type: 'gauge', entity: 'gpu',
    help: 'PCIe bytes the GPU received per second, averaged since the previous sample (GPM; whole GPU only; see gpu_pcie_receive_bytes_per_second for the 20 ms counter)',
    dcgm: { name: 'DCGM_FI_PROF_PCIE_RX_BYTES', scale: 1048576, unit: 'B/s' },
    prometheus: { name: 'gpu_prof_pcie_receive_bytes_per_second', scale: 1048576, unit: 'bytes/s' },
  },
  {
    source: 'gpmNvlinkTxMiBps', collector: 'gpm', type: 'gauge', entity: 'gpu',
    help: 'NVLink bytes the GPU transmitted per second over all its links, averaged since the previous sample (GPM; whole GPU only; rate(gpu_nvlink_transmit_bytes_total) gives the same from the cumulative counter)',
    dcgm: { name: 'DCGM_FI_PROF_NVLINK_TX_BYTES', scale: 1048576, unit: 'B/s' },
    prometheus: { name: 'gpu_prof_nvlink_transmit_bytes_per_second', scale: 1048576, unit: 'bytes/s' },
  },
  {
    source: 'gpmNvlinkRxMiBps', collector: 'gpm', type: 'gauge', entity: 'gpu',
    help: 'NVLink bytes the GPU received per second over all its links, averaged since the previous sample (GPM; whole GPU only)',
    dcgm: { name: 'DCGM_FI_PROF_NVLINK_RX_BYTES', scale: 1048576, unit: 'B/s' },
    prometheus: { name: 'gpu_prof_nvlink_receive_bytes_per_second', scale: 1048576, unit: 'bytes/s' },
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
  {
    source: 'clocksEventReasons', collector: 'throttle', type: 'gauge', entity: 'gpu',
    help: 'Clock event (throttle) reasons active now, as NVML\'s bit mask: 0x1 idle, 0x2 application clocks setting, 0x4 software power cap, 0x8 hardware slowdown, 0x10 sync boost, 0x20 software thermal slowdown, 0x40 hardware thermal slowdown, 0x80 hardware power brake, 0x100 display clock setting; gpu_clock_event_reason_active has one series per reason',
    dcgm: { name: 'DCGM_FI_DEV_CLOCK_THROTTLE_REASONS', scale: 1, unit: 'bit mask' },
    prometheus: { name: 'gpu_clock_event_reasons', scale: 1, unit: 'bit mask' },
  },
  {
    source: 'clocksEventReasons', collector: 'throttle', type: 'gauge', entity: 'gpu',
    help: 'Whether a clock event (throttle) reason holds the clocks down now (1) or not (0), one series per reason. gpu_idle, applications_clocks_setting and display_clock_setting are harmless; sw_power_cap and sw_thermal_slowdown under load cost performance (power limit, cooling); hw_slowdown, hw_thermal_slowdown and hw_power_brake_slowdown are hardware protection (overheating, power supply or brake signal) and worth an alert',
    prometheus: { name: 'gpu_clock_event_reason_active', scale: 1, unit: 'bool' },
    labels: bitLabels('reason', ClocksEventReason),
  },
  {
    source: 'powerViolationNs', collector: 'violation', type: 'counter', entity: 'gpu',
    help: 'Time the power limit held the clocks down since the driver loaded; rate() is the share of time the GPU was power capped. A high share under load means the work wants more power than the limit allows',
    dcgm: { name: 'DCGM_FI_DEV_POWER_VIOLATION', scale: 1e-3, unit: 'us', integer: true },
    prometheus: { name: 'gpu_power_violation_seconds_total', scale: 1e-9, unit: 'seconds' },
  },
  {
    source: 'thermalViolationNs', collector: 'violation', type: 'counter', entity: 'gpu',
    help: 'Time the thermal limit held the clocks down since the driver loaded; rate() is the share of time the GPU was too hot to run at full clocks. A sustained rate calls for a look at cooling and airflow',
    dcgm: { name: 'DCGM_FI_DEV_THERMAL_VIOLATION', scale: 1e-3, unit: 'us', integer: true },
    prometheus: { name: 'gpu_thermal_violation_seconds_total', scale: 1e-9, unit: 'seconds' },
  },
  {
    source: 'eccSbeVolatile', collector: 'ecc', type: 'counter', entity: 'gpu',
    help: 'Single-bit (corrected) ECC errors since the driver loaded or the GPU was reset (volatile). The hardware corrected them; a steady climb points at weakening memory, see the retired pages and remapped rows',
    dcgm: { name: 'DCGM_FI_DEV_ECC_SBE_VOL_TOTAL', scale: 1, unit: 'errors' },
    prometheus: { name: 'gpu_ecc_single_bit_volatile_errors_total', scale: 1, unit: 'errors' },
  },
  {
    source: 'eccDbeVolatile', collector: 'ecc', type: 'counter', entity: 'gpu',
    help: 'Double-bit (uncorrectable) ECC errors since the driver loaded or the GPU was reset (volatile). Any increase means corrupted data: the work on the GPU may have failed or computed wrong results; drain the GPU and check pending page retirement or row remapping',
    dcgm: { name: 'DCGM_FI_DEV_ECC_DBE_VOL_TOTAL', scale: 1, unit: 'errors' },
    prometheus: { name: 'gpu_ecc_double_bit_volatile_errors_total', scale: 1, unit: 'errors' },
  },
  {
    source: 'eccSbeAggregate', collector: 'memory_errors', type: 'counter', entity: 'gpu',
    help: 'Single-bit (corrected) ECC errors over the GPU\'s lifetime (aggregate, kept in the InfoROM across reboots; re-read every --health.interval)',
    dcgm: { name: 'DCGM_FI_DEV_ECC_SBE_AGG_TOTAL', scale: 1, unit: 'errors' },
    prometheus: { name: 'gpu_ecc_single_bit_aggregate_errors_total', scale: 1, unit: 'errors' },
  },
  {
    source: 'eccDbeAggregate', collector: 'memory_errors', type: 'counter', entity: 'gpu',
    help: 'Double-bit (uncorrectable) ECC errors over the GPU\'s lifetime (aggregate, kept in the InfoROM across reboots; re-read every --health.interval). A GPU whose count keeps growing is a candidate for replacement',
    dcgm: { name: 'DCGM_FI_DEV_ECC_DBE_AGG_TOTAL', scale: 1, unit: 'errors' },
    prometheus: { name: 'gpu_ecc_double_bit_aggregate_errors_total', scale: 1, unit: 'errors' },
  },
  {
    source: 'retiredPagesSbe', collector: 'memory_errors', type: 'counter', entity: 'gpu',
    help: 'Framebuffer pages retired after repeated single-bit ECC errors, over the GPU\'s lifetime (page retirement: GPUs before Ampere; re-read every --health.interval). A growing count means failing memory',
    dcgm: { name: 'DCGM_FI_DEV_RETIRED_SBE', scale: 1, unit: 'pages' },
    prometheus: { name: 'gpu_retired_pages_single_bit_total', scale: 1, unit: 'pages' },
  },
  {
    source: 'retiredPagesDbe', collector: 'memory_errors', type: 'counter', entity: 'gpu',
    help: 'Framebuffer pages retired after a double-bit ECC error, over the GPU\'s lifetime (page retirement: GPUs before Ampere; re-read every --health.interval). Each one followed an uncorrectable error',
    dcgm: { name: 'DCGM_FI_DEV_RETIRED_DBE', scale: 1, unit: 'pages' },
    prometheus: { name: 'gpu_retired_pages_double_bit_total', scale: 1, unit: 'pages' },
  },
  {
    source: 'retiredPagesPending', collector: 'memory_errors', type: 'gauge', entity: 'gpu',
    help: '1 while retired pages wait for the next driver reload or GPU reset to take effect (until then the bad memory can still be used): drain and reset the GPU; 0 otherwise',
    dcgm: { name: 'DCGM_FI_DEV_RETIRED_PENDING', scale: 1, unit: 'bool' },
    prometheus: { name: 'gpu_retired_pages_pending', scale: 1, unit: 'bool' },
  },
  {
    source: 'remappedRowsCorrectable', collector: 'memory_errors', type: 'counter', entity: 'gpu',
    help: 'Memory rows remapped to spare rows after correctable errors, over the GPU\'s lifetime (row remapping: Ampere and later; absent in MIG mode; re-read every --health.interval)',
    dcgm: { name: 'DCGM_FI_DEV_CORRECTABLE_REMAPPED_ROWS', scale: 1, unit: 'rows' },
    prometheus: { name: 'gpu_remapped_rows_correctable_total', scale: 1, unit: 'rows' },
  },
  {
    source: 'remappedRowsUncorrectable', collector: 'memory_errors', type: 'counter', entity: 'gpu',
    help: 'Memory rows remapped to spare rows after uncorrectable errors, over the GPU\'s lifetime (row remapping: Ampere and later; absent in MIG mode; re-read every --health.interval). Each one followed a double-bit error',
    dcgm: { name: 'DCGM_FI_DEV_UNCORRECTABLE_REMAPPED_ROWS', scale: 1, unit: 'rows' },
    prometheus: { name: 'gpu_remapped_rows_uncorrectable_total', scale: 1, unit: 'rows' },
  },
  {
    source: 'remappedRowsPending', collector: 'memory_errors', type: 'gauge', entity: 'gpu',
    help: '1 while a row remapping waits for a GPU reset to take effect: drain and reset the GPU; 0 otherwise (absent in MIG mode)',
    dcgm: { name: 'DCGM_FI_DEV_ROW_REMAP_PENDING', scale: 1, unit: 'bool' },
    prometheus: { name: 'gpu_row_remap_pending', scale: 1, unit: 'bool' },
  },
  {
    source: 'remappedRowsFailure', collector: 'memory_errors', type: 'gauge', entity: 'gpu',
    help: '1 when a row remapping failed (no spare row left): the memory can no longer repair itself and the GPU should be replaced; 0 otherwise (absent in MIG mode)',
    dcgm: { name: 'DCGM_FI_DEV_ROW_REMAP_FAILURE', scale: 1, unit: 'bool' },
    prometheus: { name: 'gpu_row_remap_failure', scale: 1, unit: 'bool' },
  },
  {
    source: 'pcieReplays', collector: 'pcie_errors', type: 'counter', entity: 'gpu',
    help: 'PCIe link-level replays (packets sent again after a transmission error) since the driver loaded. A few are normal; a steady rate points at a marginal link, riser or slot and costs throughput',
    dcgm: { name: 'DCGM_FI_DEV_PCIE_REPLAY_COUNTER', scale: 1, unit: 'replays' },
    prometheus: { name: 'gpu_pcie_replays_total', scale: 1, unit: 'replays' },
  },
  {
    source: 'nvlinkCrcFlitErrors', collector: 'nvlink', type: 'counter', entity: 'gpu',
    help: 'NVLink flow-control (flit) CRC errors summed over the GPU\'s links since the driver loaded (GPUs with NVLink). A growing count means a degrading link',
    dcgm: { name: 'DCGM_FI_DEV_NVLINK_CRC_FLIT_ERROR_COUNT_TOTAL', scale: 1, unit: 'errors' },
    prometheus: { name: 'gpu_nvlink_crc_flit_errors_total', scale: 1, unit: 'errors' },
  },
  {
    source: 'nvlinkCrcDataErrors', collector: 'nvlink', type: 'counter', entity: 'gpu',
    help: 'NVLink data CRC errors summed over the GPU\'s links since the driver loaded (GPUs with NVLink). A growing count means a degrading link',
    dcgm: { name: 'DCGM_FI_DEV_NVLINK_CRC_DATA_ERROR_COUNT_TOTAL', scale: 1, unit: 'errors' },
    prometheus: { name: 'gpu_nvlink_crc_data_errors_total', scale: 1, unit: 'errors' },
  },
  {
    source: 'nvlinkReplayErrors', collector: 'nvlink', type: 'counter', entity: 'gpu',
    help: 'NVLink replays (transfers sent again after an error) summed over the GPU\'s links since the driver loaded (GPUs with NVLink); corrected, but a steady rate costs bandwidth',
    dcgm: { name: 'DCGM_FI_DEV_NVLINK_REPLAY_ERROR_COUNT_TOTAL', scale: 1, unit: 'errors' },
    prometheus: { name: 'gpu_nvlink_replay_errors_total', scale: 1, unit: 'errors' },
  },
  {
    source: 'nvlinkRecoveryErrors', collector: 'nvlink', type: 'counter', entity: 'gpu',
    help: 'NVLink recoveries (a link retrained after errors) summed over the GPU\'s links since the driver loaded (GPUs with NVLink); any increase deserves a look, as links that keep recovering tend to fail',
    dcgm: { name: 'DCGM_FI_DEV_NVLINK_RECOVERY_ERROR_COUNT_TOTAL', scale: 1, unit: 'errors' },
    prometheus: { name: 'gpu_nvlink_recovery_errors_total', scale: 1, unit: 'errors' },
  },
  {
    source: 'nvlinkTotalKiB', collector: 'nvlink', type: 'counter', entity: 'gpu',
    help: 'NVLink data transmitted plus received over all of the GPU\'s links since the driver loaded (GPUs with NVLink; NVML\'s data throughput counters, in KiB in the dcgm scheme); rate() is the NVLink bandwidth in use',
    dcgm: { name: 'DCGM_FI_DEV_NVLINK_BANDWIDTH_TOTAL', scale: 1, unit: 'KiB' },
    prometheus: { name: 'gpu_nvlink_bytes_total', scale: 1024, unit: 'bytes' },
  },
  {
    source: 'nvlinkTxKiB', collector: 'nvlink', type: 'counter', entity: 'gpu',
    help: 'NVLink data transmitted over all of the GPU\'s links since the driver loaded (GPUs with NVLink)',
    prometheus: { name: 'gpu_nvlink_transmit_bytes_total', scale: 1024, unit: 'bytes' },
  },
  {
    source: 'nvlinkRxKiB', collector: 'nvlink', type: 'counter', entity: 'gpu',
    help: 'NVLink data received over all of the GPU\'s links since the driver loaded (GPUs with NVLink)',
    prometheus: { name: 'gpu_nvlink_receive_bytes_total', scale: 1024, unit: 'bytes' },
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
