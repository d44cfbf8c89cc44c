import { labelString, type RenderFamily } from './exposition.js';
import { EXPORTER_FAMILIES, type ExporterFamily } from './families.js';
import type { RenderContext } from './render-context.js';

function family(def: ExporterFamily, series: RenderFamily['series']): RenderFamily {
  return { name: def.name, type: def.type, help: def.help, series };
}

/** The exporter's own health: per-collector success and duration, NVML state, sample age. */
export function buildExporterFamilies(ctx: RenderContext): RenderFamily[] {
  const { sample, exporter: status, attribution } = ctx;
  const F = EXPORTER_FAMILIES;
  const out: RenderFamily[] = [
    family(F.buildInfo, [
      { labels: labelString([['version', status.version], ['nodejs_version', process.version], ['naming', status.naming]]), value: 1 },
    ]),
    family(F.nvmlUp, [{ labels: '', value: status.nvmlUp ? 1 : 0 }]),
    family(F.skippedTicks, [{ labels: '', value: status.skippedTicks }]),
    family(F.sampleInterval, [{ labels: '', value: status.sampleIntervalSeconds }]),
  ];
  const k = status.kubelet;
  if (k) {
    out.push(
      family(F.kubeletUp, [{ labels: '', value: k.up ? 1 : 0 }]),
      family(F.kubeletFailures, [{ labels: '', value: k.failures }]),
      family(F.kubeletPods, [{ labels: '', value: k.pods }]),
      family(F.kubeletUnknownDevices, [{ labels: '', value: attribution.unknownDeviceIds }]),
      family(F.draUnresolvedDevices, [{ labels: '', value: attribution.draUnresolvedDevices }]),
    );
    if (k.lastSuccessMs !== undefined) out.push(family(F.kubeletLastSuccess, [{ labels: '', value: k.lastSuccessMs / 1000 }]));
    if (k.lastRefreshSeconds !== undefined) out.push(family(F.kubeletRefreshDuration, [{ labels: '', value: k.lastRefreshSeconds }]));
  }
  if (sample && status.processAttribution) out.push(family(F.unplacedProcesses, [{ labels: '', value: attribution.unplacedProcesses }]));
  if (status.eventWatch) {
    out.push(family(F.eventWatchUp, [{ labels: '', value: status.eventWatch.up ? 1 : 0 }]), family(F.eventWatchRestarts, [{ labels: '', value: status.eventWatch.restarts }]));
  }
  if (status.draSynced !== undefined) out.push(family(F.draUp, [{ labels: '', value: status.draSynced ? 1 : 0 }]));
  if (status.podMetadataSynced !== undefined) {
    out.push(family(F.podMetadataSynced, [{ labels: '', value: status.podMetadataSynced ? 1 : 0 }]), family(F.podLabelsDropped, [{ labels: '', value: ctx.droppedPodLabels }]));
  }
  if (status.webConfig) {
    out.push(
      family(F.webConfigReloadOk, [{ labels: '', value: status.webConfig.lastReloadSuccessful ? 1 : 0 }]),
      family(F.webConfigLastSuccess, [{ labels: '', value: status.webConfig.lastSuccessMs / 1000 }]),
    );
  }
  if (!sample) return out;
  out.push(
    family(F.collectorSuccess, sample.collectors.map((c) => ({ labels: labelString([['collector', c.name]]), value: c.success ? 1 : 0 }))),
    family(F.collectorDuration, sample.collectors.map((c) => ({ labels: labelString([['collector', c.name]]), value: c.durationSeconds }))),
    family(F.gpus, [{ labels: '', value: sample.gpus.length }]),
    family(F.gpusLost, [{ labels: '', value: sample.lostGpus.length }]),
    family(F.sampleTimestamp, [{ labels: '', value: sample.takenAtMs / 1000 }]),
    family(F.sampleDuration, [{ labels: '', value: sample.tickSeconds }]),
  );
  return out;
}
