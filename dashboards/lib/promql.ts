/** PromQL pieces the dashboards share (default dcgm naming). */
import type { Query } from './panels.js';

/**
 * The labels naming one holder of one device (with the Hostname and modelName that follow from
 * the UUID), as the showback recording rules join busy time and allocation on them.
 */
export const HOLDER = 'Hostname, modelName, UUID, GPU_I_ID, vgpu, namespace, pod, container';

/**
 * GPU-hours over the dashboard's time range: a gauge in GPUs integrated at the panel's
 * interval (the sum of its values at each step times the step), optionally per label.
 */
export function gpuHoursOverRange(gauge: string, by?: string): string {
  const sum = by ? `sum by (${by})` : 'sum';
  return `${sum} (sum_over_time(${gauge}[$__range:$__interval])) * $__interval_ms / 3600000`;
}

/**
 * Busy GPUs per holder, weighted by the holder's share (a replica of a time-sliced GPU counts
 * its share of the GPU's busy time), for series matching the selector.
 */
export function shareWeightedBusy(selector: string): string {
  return (
    `clamp_max(sum by (${HOLDER}) (rate(gpu_busy_seconds_total{${selector}}[$__rate_interval])), 1)` +
    ` * on (${HOLDER}) max by (${HOLDER}) (gpu_allocated_ratio{${selector}})`
  );
}

/** Allocated, used and idle GPU-hours over the time range (the showback gauges), per label. */
export function gpuHoursColumns(selector: string, by: string): Query[] {
  return (['allocated', 'used', 'idle'] as const).map((kind) => ({
    expr: gpuHoursOverRange(`node_namespace:gpu_${kind}:sum{${selector}}`, by),
    legend: `${kind} GPU-hours`,
  }));
}
