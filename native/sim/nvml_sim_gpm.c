/* kube-gpu-exporter simulated NVML: GPM (GPU performance monitoring).
 *
 * Like the hardware's counters, each GPU and each MIG instance has a running integral of every
 * GPM metric's scenario value over scenario time, advanced whenever one of its samples is
 * taken. A sample is a snapshot of those integrals; a metric between two samples is the
 * difference over the time between them: the exact average of what the scenario says over that
 * interval (steps, walks and cycles are integrated piece by piece). Percentages are clamped to
 * 0-100 and rates to >= 0; a key set to nan, inf or -inf is reported as that value. */
#include "nvml_sim.h"

#define GPM_SCOPES (MAX_MIG + 1)      /* 0: the whole GPU, 1 + slot: the MIG instance in that slot */
#define MAX_GPM_SAMPLES 1024          /* samples allocated at once */
#define NVML_GPM_METRICS_ACCEPTED 98  /* the CUDA 11.8-12.8 headers' NVML_GPM_METRIC_MAX: what this driver accepts */

typedef struct {
  unsigned int id;
  int gpu_key, mig_key;               /* mig_key -1: whole GPU only */
  int percent;                        /* 1: percent, clamped to 0-100; 0: MiB/s */
  const char *short_name, *long_name, *unit;
} gpm_metric_t;

static const gpm_metric_t gpm_metrics[] = {
  { 1, K_gpm_gr_active, M_gpm_gr_active, 1, "GR_ACTIVE", "Graphics or compute engine active", "%" },
  { 2, K_gpm_sm_active, M_gpm_sm_active, 1, "SM_ACTIVE", "SMs with at least one warp resident", "%" },
  { 3, K_gpm_sm_occupancy, M_gpm_sm_occupancy, 1, "SM_OCCUPANCY", "Resident warps of the SM maximum", "%" },
  { 4, K_gpm_int_active, M_gpm_int_active, 1, "INTEGER_ACTIVE", "Integer pipe active", "%" },
  { 5, K_gpm_tensor_active, M_gpm_tensor_active, 1, "TENSOR_ACTIVE", "Any tensor pipe active", "%" },
  { 6, K_gpm_dfma_tensor_active, M_gpm_dfma_tensor_active, 1, "DFMA_TENSOR_ACTIVE", "FP64 tensor pipe active", "%" },
  { 7, K_gpm_hmma_tensor_active, M_gpm_hmma_tensor_active, 1, "HMMA_TENSOR_ACTIVE", "Half precision tensor pipe active", "%" },
  { 9, K_gpm_imma_tensor_active, M_gpm_imma_tensor_active, 1, "IMMA_TENSOR_ACTIVE", "Integer tensor pipe active", "%" },
  { 10, K_gpm_dram_active, M_gpm_dram_active, 1, "DRAM_ACTIVE", "Device memory interface active", "%" },
  { 11, K_gpm_fp64_active, M_gpm_fp64_active, 1, "FP64_ACTIVE", "FP64 pipe active", "%" },
  { 12, K_gpm_fp32_active, M_gpm_fp32_active, 1, "FP32_ACTIVE", "FP32 pipe active", "%" },
  { 13, K_gpm_fp16_active, M_gpm_fp16_active, 1, "FP16_ACTIVE", "FP16 pipe active", "%" },
  { 20, K_gpm_pcie_tx_mibps, -1, 0, "PCIE_TX", "PCIe transmitted", "MiB/s" },
  { 21, K_gpm_pcie_rx_mibps, -1, 0, "PCIE_RX", "PCIe received", "MiB/s" },
  { 60, K_gpm_nvlink_rx_mibps, -1, 0, "NVLINK_RX", "NVLink received, all links", "MiB/s" },
  { 61, K_gpm_nvlink_tx_mibps, -1, 0, "NVLINK_TX", "NVLink transmitted, all links", "MiB/s" },
};
#define GPM_NMETRICS ((int)(sizeof gpm_metrics / sizeof *gpm_metrics))

typedef struct { int started; double at_ms; double sum[GPM_NMETRICS]; } gpm_integral_t;
static gpm_integral_t gpm_integrals[MAX_GPUS][GPM_SCOPES];
static walk_cache_t gpm_walk_cache[MAX_GPUS][GPM_SCOPES][GPM_NMETRICS];

typedef struct {
  int in_use, taken;
  int gpu, scope;
  char uuid[96];                      /* the GPU or MIG instance sampled: samples of different ones do not pair */
  double at_ms;
  double sum[GPM_NMETRICS];
} gpm_sample_t;
static gpm_sample_t gpm_samples[MAX_GPM_SAMPLES];

/* The next scenario time after t at which a piecewise-constant value can change. */
MAYBE_UNUSED static double next_change(const vspec_t *v, double t) {
  switch (v->kind) {
  case V_WALK: return (floor(t / v->period_ms) + 1) * v->period_ms;
  case V_STEPS:
    for (int i = 0; i < v->nsteps; i++) if (v->at[i] > t) return v->at[i];
    return INFINITY;
  case V_CYCLE: {
    double base = floor(t / v->cycle_ms) * v->cycle_ms;
    for (int i = 0; i < v->nsteps; i++) if (v->at[i] < v->cycle_ms && base + v->at[i] > t) return base + v->at[i];
    return base + v->cycle_ms;
  }
  default: return INFINITY;
  }
}

/* The integral of a value over scenario time [a, b] (value x ms); wc only moves forward. */
MAYBE_UNUSED static double integrate(const vspec_t *v, walk_cache_t *wc, double a, double b) {
  if (!(b > a)) return 0;
  if (v->kind == V_CONST) return v->c * (b - a);
  if (v->kind == V_LINEAR) return v->c * (b - a) + v->per_s * (b * b - a * a) / 2000.0;
  double sum = 0;
  for (double t = a; t < b;) {
    double next = next_change(v, t);
    if (!(next > t) || next > b) next = b;
    sum += eval_at(v, wc, t) * (next - t);
    t = next;
  }
  return sum;
}

/* The scenario value of metric m for a GPU (scope 0) or MIG instance, or NULL where it has none. Holds mu. */
MAYBE_UNUSED static const vspec_t *gpm_spec(int gpu, int scope, int m) {
  const gpm_metric_t *g = &gpm_metrics[m];
  const vspec_t *v;
  if (scope == 0) v = &st->gpu[gpu].num[g->gpu_key];
  else if (g->mig_key < 0) return NULL;
  else v = &st->gpu[gpu].mig[scope - 1].num[g->mig_key];
  return v->kind == V_UNSET ? NULL : v;
}

/* Brings the integrals of a GPU or MIG instance up to now. Holds mu. */
MAYBE_UNUSED static void gpm_advance(int gpu, int scope) {
  gpm_integral_t *in = &gpm_integrals[gpu][scope];
  double t = t_ms();
  if (in->started) {
    for (int m = 0; m < GPM_NMETRICS; m++) {
      const vspec_t *v = gpm_spec(gpu, scope, m);
      double part = v ? integrate(v, &gpm_walk_cache[gpu][scope][m], in->at_ms, t) : 0;
      if (isfinite(part)) in->sum[m] += part;
    }
  }
  in->started = 1;
  in->at_ms = t;
}

MAYBE_UNUSED static int gpm_supported(int gpu) {
  double v;
  return gpu_num(gpu, K_gpm_supported, &v) == NVML_SUCCESS && v == 1;
}

/* The live sample a handle names, or NULL. Holds mu. */
MAYBE_UNUSED static gpm_sample_t *gpm_sample_of(void *p) {
  gpm_sample_t *s = element_of(gpm_samples, sizeof *gpm_samples, MAX_GPM_SAMPLES, p);
  return s && s->in_use ? s : NULL;
}

/* Fills a sample of a GPU (scope 0) or MIG instance. Holds mu. */
MAYBE_UNUSED static void gpm_take(gpm_sample_t *s, int gpu, int scope) {
  gpm_advance(gpu, scope);
  const gpm_integral_t *in = &gpm_integrals[gpu][scope];
  s->taken = 1; s->gpu = gpu; s->scope = scope; s->at_ms = in->at_ms;
  memcpy(s->sum, in->sum, sizeof s->sum);
  snprintf(s->uuid, sizeof s->uuid, "%s", scope ? st->gpu[gpu].mig[scope - 1].uuid : st->gpu[gpu].uuid);
}

/* The code of an active `fault nvmlGpmMetricsGet/<metricId> GPU CODE` rule for one metric, or SUCCESS. Holds mu. */
MAYBE_UNUSED static nvmlReturn_t gpm_metric_fault(int gpu, unsigned int id) {
  char fn[96]; snprintf(fn, sizeof fn, "nvmlGpmMetricsGet/%u", id);
  double t = t_ms();
  for (int i = 0; i < st->nrules; i++) {
    const rule_t *r = &st->rule[i];
    if (r->is_latency || strcmp(r->fn, fn) || (r->gpu >= 0 && r->gpu != gpu)) continue;
    if (t < r->from_ms || t >= r->until_ms) continue;
    return (nvmlReturn_t)r->value;
  }
  return NVML_SUCCESS;
}

/* Ids the header defines that this driver does not simulate: NVDEC/NVJPG/NVOFA and per-link NVLink. */
MAYBE_UNUSED static int gpm_known_id(unsigned int id) {
  return (id >= 30 && id <= 37) || (id >= 40 && id <= 47) || id == 50 || (id >= 62 && id <= 97);
}

/* One entry of a metrics request, from two samples of the same GPU or MIG instance. Holds mu. */
MAYBE_UNUSED static void gpm_metric(const gpm_sample_t *s1, const gpm_sample_t *s2, nvmlGpmMetric_t *out) {
  out->value = 0;
  out->metricInfo.shortName = out->metricInfo.longName = out->metricInfo.unit = NULL;
  int m = -1;
  for (int i = 0; i < GPM_NMETRICS && m < 0; i++) if (gpm_metrics[i].id == out->metricId) m = i;
  if (m < 0) { out->nvmlReturn = gpm_known_id(out->metricId) ? NVML_ERROR_NOT_SUPPORTED : NVML_ERROR_INVALID_ARGUMENT; return; }
  const gpm_metric_t *g = &gpm_metrics[m];
  out->metricInfo.shortName = (char *)g->short_name;
  out->metricInfo.longName = (char *)g->long_name;
  out->metricInfo.unit = (char *)g->unit;
  if ((out->nvmlReturn = gpm_metric_fault(s1->gpu, g->id)) != NVML_SUCCESS) return;
  const vspec_t *v = gpm_spec(s1->gpu, s1->scope, m);
  if (!v) { out->nvmlReturn = NVML_ERROR_NOT_SUPPORTED; return; }
  double value = v->kind == V_CONST && !isfinite(v->c) ? v->c : (s2->sum[m] - s1->sum[m]) / (s2->at_ms - s1->at_ms);
  if (isfinite(value)) value = value < 0 ? 0 : g->percent && value > 100 ? 100 : value;
  out->value = value;
}

#ifndef KGE_OMIT_nvmlGpmQueryDeviceSupport
EXPORT nvmlReturn_t nvmlGpmQueryDeviceSupport(void *device, nvmlGpmSupport_t *support) {
  BEGIN(device);
  if (!support) return NVML_ERROR_INVALID_ARGUMENT;
  if (support->version != NVML_GPM_SUPPORT_VERSION) return NVML_ERROR_ARGUMENT_VERSION_MISMATCH;
  LOCK(); support->isSupportedDevice = (unsigned int)gpm_supported(H(device)->gpu); UNLOCK();
  return NVML_SUCCESS;
}
#endif

#ifndef KGE_OMIT_nvmlGpmSampleAlloc
EXPORT nvmlReturn_t nvmlGpmSampleAlloc(void **sample) {
  BEGIN_SYS();
  if (!sample) return NVML_ERROR_INVALID_ARGUMENT;
  nvmlReturn_t rc = NVML_ERROR_MEMORY;
  LOCK();
  for (int i = 0; i < MAX_GPM_SAMPLES; i++) {
    if (gpm_samples[i].in_use) continue;
    memset(&gpm_samples[i], 0, sizeof gpm_samples[i]);
    gpm_samples[i].in_use = 1;
    *sample = &gpm_samples[i];
    rc = NVML_SUCCESS;
    break;
  }
  UNLOCK();
  return rc;
}
#endif

#ifndef KGE_OMIT_nvmlGpmSampleFree
EXPORT nvmlReturn_t nvmlGpmSampleFree(void *sample) {
  BEGIN_SYS();
  LOCK();
  gpm_sample_t *s = gpm_sample_of(sample);
  if (s) s->in_use = 0;
  UNLOCK();
  return s ? NVML_SUCCESS : NVML_ERROR_INVALID_ARGUMENT;
}
#endif

/* A whole physical GPU with gpm_supported 1 (also in MIG mode); MIG handles: NOT_SUPPORTED. */
#ifndef KGE_OMIT_nvmlGpmSampleGet
EXPORT nvmlReturn_t nvmlGpmSampleGet(void *device, void *sample) {
  BEGIN(device);
  const handle_t *h = H(device);
  nvmlReturn_t rc = NVML_SUCCESS;
  LOCK();
  gpm_sample_t *s = gpm_sample_of(sample);
  if (!s) rc = NVML_ERROR_INVALID_ARGUMENT;
  else if (h->mig >= 0 || !gpm_supported(h->gpu)) rc = NVML_ERROR_NOT_SUPPORTED;
  else gpm_take(s, h->gpu, 0);
  UNLOCK();
  return rc;
}
#endif

/* The MIG instance with that GPU instance id on a MIG-enabled parent; NOT_FOUND when none has it. */
#ifndef KGE_OMIT_nvmlGpmMigSampleGet
EXPORT nvmlReturn_t nvmlGpmMigSampleGet(void *device, unsigned int gpuInstanceId, void *sample) {
  BEGIN(device);
  const handle_t *h = H(device);
  nvmlReturn_t rc = NVML_ERROR_NOT_FOUND;
  LOCK();
  gpm_sample_t *s = gpm_sample_of(sample);
  if (!s || h->mig >= 0) rc = NVML_ERROR_INVALID_ARGUMENT;
  else if (!gpm_supported(h->gpu) || !mig_enabled(h->gpu)) rc = NVML_ERROR_NOT_SUPPORTED;
  else {
    for (int slot = 0; slot < MAX_MIG && rc; slot++) {
      double gi;
      if (!st->gpu[h->gpu].mig[slot].defined || mig_num(h->gpu, slot, M_gi, &gi) || gi != gpuInstanceId) continue;
      gpm_take(s, h->gpu, slot + 1);
      rc = NVML_SUCCESS;
    }
  }
  UNLOCK();
  return rc;
}
#endif

/* fault rules match the GPU of sample1 (the call has no device argument). */
#ifndef KGE_OMIT_nvmlGpmMetricsGet
EXPORT nvmlReturn_t nvmlGpmMetricsGet(nvmlGpmMetricsGet_t *request) {
  int gpu = -1;
  if (request) {
    LOCK();
    const gpm_sample_t *s = gpm_sample_of(request->sample1);
    if (s && s->taken) gpu = s->gpu;
    UNLOCK();
  }
  nvmlReturn_t rc = begin(__func__, gpu >= 0 ? &gpu_handles[gpu] : NULL, 0);
  if (rc) return rc;
  if (!request) return NVML_ERROR_INVALID_ARGUMENT;
  if (request->version != NVML_GPM_METRICS_GET_VERSION) return NVML_ERROR_ARGUMENT_VERSION_MISMATCH;
  if (request->numMetrics > NVML_GPM_METRICS_ACCEPTED) return NVML_ERROR_INVALID_ARGUMENT;
  LOCK();
  const gpm_sample_t *s1 = gpm_sample_of(request->sample1), *s2 = gpm_sample_of(request->sample2);
  if (!s1 || !s2 || !s1->taken || !s2->taken || s1->gpu != s2->gpu || s1->scope != s2->scope ||
      strcmp(s1->uuid, s2->uuid) || !(s2->at_ms > s1->at_ms)) rc = NVML_ERROR_INVALID_ARGUMENT;
  else for (unsigned int i = 0; i < request->numMetrics; i++) gpm_metric(s1, s2, &request->metrics[i]);
  UNLOCK();
  return rc;
}
#endif

/* Not an NVML call: how many GPM samples are allocated and not freed (tests check for leaks). */
EXPORT int kgeSimGpmSamplesInUse(void) {
  int n = 0;
  LOCK();
  for (int i = 0; i < MAX_GPM_SAMPLES; i++) n += gpm_samples[i].in_use;
  UNLOCK();
  return n;
}
