import { buildExporterFamilies } from './exporter-series.js';
import { buildGpuFamilies } from './gpu-series.js';
import { buildHealthFamilies } from './health-series.js';
import { buildMigProfileFamilies } from './mig-profile-series.js';
import { buildPodFamilies } from './pod-series.js';
import { ProcessMetrics } from './process-metrics.js';
import type { FamilyBuilder } from './render-stage.js';

/**
 * The family builders of the render stage, in exposition order, each `(ctx) => families`:
 * a new group of families is one entry here. The name is the `builder` label of
 * kube_gpu_exporter_render_failures_total.
 */
export function familyBuilders(): FamilyBuilder[] {
  const processMetrics = new ProcessMetrics();
  return [
    { name: 'gpu', build: buildGpuFamilies },
    { name: 'health', build: buildHealthFamilies },
    { name: 'mig_profile', build: buildMigProfileFamilies },
    { name: 'pod', build: buildPodFamilies },
    { name: 'exporter', build: buildExporterFamilies },
    { name: 'process', build: () => processMetrics.families() },
  ];
}
