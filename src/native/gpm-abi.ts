import koffi from 'koffi';

/**
 * The C layouts of NVML's GPM (GPU performance monitoring) calls and the request buffer of
 * nvmlGpmMetricsGet. The structs are declared with koffi so their sizes and offsets can be
 * checked against the ABI; the request itself is a plain Buffer written and read at those
 * offsets (converting a 333-entry struct array per call would cost more than the call).
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

export const GpmSupport = koffi.struct('nvmlGpmSupport_t', { version: 'uint32', isSupportedDevice: 'uint32' });
const GpmMetricInfo = koffi.struct('nvmlGpmMetricInfo_t', { shortName: 'const char *', longName: 'const char *', unit: 'const char *' });
const GpmMetric = koffi.struct('nvmlGpmMetric_t', { metricId: 'uint32', nvmlReturn: 'int', value: 'double', metricInfo: GpmMetricInfo });
const GpmMetricsGet = koffi.struct('nvmlGpmMetricsGet_t', {
  version: 'uint32',
  numMetrics: 'uint32',
  sample1: 'nvmlGpmSample_t',
  sample2: 'nvmlGpmSample_t',
  metrics: koffi.array(GpmMetric, GPM_METRICS_MAX),
});

export const GPM_ABI_SIZES = {
  nvmlGpmSupport_t: koffi.sizeof(GpmSupport),
  nvmlGpmMetric_t: koffi.sizeof(GpmMetric),
  nvmlGpmMetricsGet_t: koffi.sizeof(GpmMetricsGet),
};

/** Field offsets the request buffer is written and read at (checked by tests against the C layout). */
export const GPM_ABI_OFFSETS = {
  nvmlGpmSupport_t: { version: koffi.offsetof(GpmSupport, 'version'), isSupportedDevice: koffi.offsetof(GpmSupport, 'isSupportedDevice') },
  nvmlGpmMetric_t: {
    metricId: koffi.offsetof(GpmMetric, 'metricId'),
    nvmlReturn: koffi.offsetof(GpmMetric, 'nvmlReturn'),
    value: koffi.offsetof(GpmMetric, 'value'),
    metricInfo: koffi.offsetof(GpmMetric, 'metricInfo'),
  },
  nvmlGpmMetricInfo: {
    shortName: koffi.offsetof(GpmMetricInfo, 'shortName'),
    longName: koffi.offsetof(GpmMetricInfo, 'longName'),
    unit: koffi.offsetof(GpmMetricInfo, 'unit'),
  },
  nvmlGpmMetricsGet_t: {
    version: koffi.offsetof(GpmMetricsGet, 'version'),
    numMetrics: koffi.offsetof(GpmMetricsGet, 'numMetrics'),
    sample1: koffi.offsetof(GpmMetricsGet, 'sample1'),
    sample2: koffi.offsetof(GpmMetricsGet, 'sample2'),
    metrics: koffi.offsetof(GpmMetricsGet, 'metrics'),
  },
};

/** One entry of an nvmlGpmMetricsGet answer. */
export interface GpmMetricResult {
  metricId: number;
  /** The entry's own return code (metrics[i].nvmlReturn). */
  code: number;
  /** The average between the two samples, in the metric's unit; only when code is SUCCESS (it can still be NaN or Inf). */
  value?: number;
}

const REQ = GPM_ABI_OFFSETS.nvmlGpmMetricsGet_t;
const METRIC = GPM_ABI_OFFSETS.nvmlGpmMetric_t;
const METRIC_SIZE = GPM_ABI_SIZES.nvmlGpmMetric_t;

/**
 * A reusable nvmlGpmMetricsGet_t buffer. Not shared between threads: the binding that owns it
 * is only used on the sampling thread.
 */
export class GpmMetricsRequest {
  readonly buffer = Buffer.alloc(GPM_ABI_SIZES.nvmlGpmMetricsGet_t);

  /** Writes version, the two samples (their addresses) and the metric ids; clears the entries used. */
  prepare(sample1: unknown, sample2: unknown, metricIds: readonly number[]): void {
    if (metricIds.length > GPM_METRICS_PER_CALL) {
      throw new RangeError(`nvmlGpmMetricsGet: ${metricIds.length} metrics asked for in one call; at most ${GPM_METRICS_PER_CALL} (what every driver accepts)`);
    }
    const buf = this.buffer;
    buf.fill(0, 0, REQ.metrics + metricIds.length * METRIC_SIZE);
    buf.writeUInt32LE(GPM_METRICS_GET_VERSION, REQ.version);
    buf.writeUInt32LE(metricIds.length, REQ.numMetrics);
    buf.writeBigUInt64LE(koffi.address(sample1), REQ.sample1);
    buf.writeBigUInt64LE(koffi.address(sample2), REQ.sample2);
    metricIds.forEach((id, i) => buf.writeUInt32LE(id >>> 0, REQ.metrics + i * METRIC_SIZE + METRIC.metricId));
  }

  /** The entries the driver filled in, in the order asked for. */
  results(metricIds: readonly number[]): GpmMetricResult[] {
    const buf = this.buffer;
    return metricIds.map((metricId, i) => {
      const at = REQ.metrics + i * METRIC_SIZE;
      const code = buf.readInt32LE(at + METRIC.nvmlReturn);
      return code === 0 ? { metricId, code, value: buf.readDoubleLE(at + METRIC.value) } : { metricId, code };
    });
  }
}
