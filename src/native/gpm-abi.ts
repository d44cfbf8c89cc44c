import koffi from 'koffi';
import { cStruct, zeroBytes } from './c-struct.js';

/**
 * The C layouts of NVML's GPM (GPU performance monitoring) calls and the request buffer of
 * nvmlGpmMetricsGet, as koffi types. The request itself is a reused Buffer written and read
 * through the struct accessors (converting a 333-entry struct array per call would cost more
 * than the call).
 */

/** nvmlGpmSample_t: an opaque pointer NVML allocates (nvmlGpmSampleAlloc) and frees (nvmlGpmSampleFree). */
koffi.pointer('nvmlGpmSample_t', koffi.opaque('nvmlGpmSample_st'));

/** Both structs carry the PLAIN version 1, not the size|version<<24 form of other versioned structs. */
export const GPM_SUPPORT_VERSION = 1;
export const GPM_METRICS_GET_VERSION = 1;
/** The metrics array of the newest headers (13.2+); allocating it whole fits every driver. */
export const GPM_METRICS_MAX = 333;
/** The metrics array of the CUDA 11.8-12.8 headers: a request never asks for more, so older drivers accept it. */
export const GPM_METRICS_PER_CALL = 98;

export const GpmSupport = cStruct('nvmlGpmSupport_t', { version: 'unsigned int', isSupportedDevice: 'unsigned int' });
const GpmMetricInfo = cStruct('nvmlGpmMetricInfo_t', { shortName: 'const char *', longName: 'const char *', unit: 'const char *' });
const GpmMetric = cStruct('nvmlGpmMetric_t', { metricId: 'unsigned int', nvmlReturn: 'int', value: 'double', metricInfo: GpmMetricInfo });
const GpmMetricsGet = cStruct('nvmlGpmMetricsGet_t', {
  version: 'unsigned int',
  numMetrics: 'unsigned int',
  sample1: 'nvmlGpmSample_t',
  sample2: 'nvmlGpmSample_t',
  metrics: koffi.array(GpmMetric.type, GPM_METRICS_MAX),
});

export const GPM_ABI_SIZES = {
  nvmlGpmSupport_t: GpmSupport.size,
  nvmlGpmMetric_t: GpmMetric.size,
  nvmlGpmMetricsGet_t: GpmMetricsGet.size,
};

/** Member offsets of the GPM structs (checked by tests against the C layout). */
export const GPM_ABI_OFFSETS = {
  nvmlGpmSupport_t: GpmSupport.offset,
  nvmlGpmMetric_t: GpmMetric.offset,
  nvmlGpmMetricInfo: GpmMetricInfo.offset,
  nvmlGpmMetricsGet_t: GpmMetricsGet.offset,
};

/** One entry of an nvmlGpmMetricsGet answer. */
export interface GpmMetricResult {
  metricId: number;
  /** The entry's own return code (metrics[i].nvmlReturn). */
  code: number;
  /** The average between the two samples, in the metric's unit; only when code is SUCCESS (it can still be NaN or Inf). */
  value?: number;
}

/**
 * A reusable nvmlGpmMetricsGet_t buffer. Not shared between threads: the binding that owns it
 * is only used on the sampling thread.
 */
export class GpmMetricsRequest {
  readonly buffer = Buffer.alloc(GpmMetricsGet.size);

  /** Writes version, the two samples (their addresses) and the metric ids; clears the entries used. */
  prepare(sample1: unknown, sample2: unknown, metricIds: readonly number[]): void {
    if (metricIds.length > GPM_METRICS_PER_CALL) {
      throw new RangeError(`nvmlGpmMetricsGet: ${metricIds.length} metrics asked for in one call; at most ${GPM_METRICS_PER_CALL} (what every driver accepts)`);
    }
    const buf = this.buffer;
    const metrics = GpmMetricsGet.offset.metrics;
    zeroBytes(buf, metrics + metricIds.length * GpmMetric.size);
    GpmMetricsGet.write.version(buf, 0, GPM_METRICS_GET_VERSION);
    GpmMetricsGet.write.numMetrics(buf, 0, metricIds.length);
    GpmMetricsGet.writePointer('sample1', buf, 0, sample1);
    GpmMetricsGet.writePointer('sample2', buf, 0, sample2);
    for (let i = 0; i < metricIds.length; i++) GpmMetric.write.metricId(buf, metrics + i * GpmMetric.size, metricIds[i]! >>> 0);
  }

  /** The entries the driver filled in, in the order asked for. */
  results(metricIds: readonly number[]): GpmMetricResult[] {
    const buf = this.buffer;
    const out: GpmMetricResult[] = new Array(metricIds.length);
    for (let i = 0; i < metricIds.length; i++) {
      const at = GpmMetricsGet.offset.metrics + i * GpmMetric.size;
      const metricId = metricIds[i]!;
      const code = GpmMetric.read.nvmlReturn(buf, at);
      out[i] = code === 0 ? { metricId, code, value: GpmMetric.read.value(buf, at) } : { metricId, code };
    }
    return out;
  }
}
