/* kube-gpu-exporter simulated NVML: running compute processes and process utilization. */
#include "nvml_sim.h"

MAYBE_UNUSED static walk_cache_t proc_walk_cache[MAX_PROCS][P_COUNT];

MAYBE_UNUSED static nvmlReturn_t processes(void *device, unsigned int *count, nvmlProcessInfo_t *infos) {
  if (!count) return NVML_ERROR_INVALID_ARGUMENT;
  const handle_t *h = H(device);
  nvmlProcessInfo_t found[MAX_PROCS]; unsigned int n = 0;
  LOCK();
  int gi_of_mig = -1;
  if (h->mig >= 0) { double gi; if (!mig_num(h->gpu, h->mig, M_gi, &gi)) gi_of_mig = (int)gi; }
  for (int i = 0; i < MAX_PROCS; i++) {
    const proc_cfg_t *p = &st->proc[i];
    if (!p->defined || p->gpu != h->gpu || !p->pid) continue;
    if (h->mig >= 0 && (!p->has_gi || p->gi != gi_of_mig)) continue;
    found[n].pid = p->pid;
    found[n].usedGpuMemory = p->has_mem ? (unsigned long long)p->mem : NVML_VALUE_NOT_AVAILABLE_ULL;
    found[n].gpuInstanceId = p->has_gi ? (unsigned int)p->gi : NOT_MIG;
    found[n].computeInstanceId = p->has_ci ? (unsigned int)p->ci : NOT_MIG;
    n++;
  }
  UNLOCK();
  if (*count < n || (n > 0 && !infos)) { *count = n; return NVML_ERROR_INSUFFICIENT_SIZE; }
  if (n) memcpy(infos, found, n * sizeof *found);
  *count = n;
  return NVML_SUCCESS;
}

#ifndef KGE_OMIT_nvmlDeviceGetComputeRunningProcesses_v3
EXPORT nvmlReturn_t nvmlDeviceGetComputeRunningProcesses_v3(void *device, unsigned int *count, nvmlProcessInfo_t *infos) {
  BEGIN(device);
  return processes(device, count, infos);
}
#endif

#ifndef KGE_OMIT_nvmlDeviceGetComputeRunningProcesses_v2
EXPORT nvmlReturn_t nvmlDeviceGetComputeRunningProcesses_v2(void *device, unsigned int *count, nvmlProcessInfo_t *infos) {
  BEGIN(device);
  return processes(device, count, infos);
}
#endif

MAYBE_UNUSED static int proc_has_util(const proc_cfg_t *p) {
  for (int k = 0; k < P_COUNT; k++) if (p->util[k].kind != V_UNSET) return 1;
  return 0;
}

MAYBE_UNUSED static unsigned int pct(double v) { return v <= 0 ? 0 : v >= 100 ? 100 : (unsigned int)v; }

/*
 * The simulated driver samples every process with a utilization key once per
 * proc_util_period_ms (default 167 ms) at scenario times k * period, k = 0, 1, ..., and keeps
 * the last PROC_UTIL_DEPTH samples per process. Sample k has the timestamp
 * epoch_realtime_us + k * period (us). Returned: every kept sample newer than lastSeen, oldest
 * first (all processes of one sampling instant together).
 */
#ifndef KGE_OMIT_nvmlDeviceGetProcessUtilization
EXPORT nvmlReturn_t nvmlDeviceGetProcessUtilization(void *device, nvmlProcessUtilizationSample_t *samples,
                                                    unsigned int *count, unsigned long long lastSeenTimeStamp) {
  BEGIN(device);
  if (!count) return NVML_ERROR_INVALID_ARGUMENT;
  const handle_t *h = H(device);
  if (h->mig >= 0) return NVML_ERROR_NOT_SUPPORTED;
  nvmlReturn_t rc = NVML_SUCCESS;
  LOCK();
  if (mig_enabled(h->gpu)) { UNLOCK(); return NVML_ERROR_NOT_SUPPORTED; }
  double period_ms = PROC_UTIL_DEFAULT_PERIOD_MS;
  if (!gpu_num(h->gpu, K_proc_util_period_ms, &period_ms) && period_ms < 1) period_ms = 1;
  long long period_us = (long long)(period_ms * 1000);
  double t = t_ms();
  long long k_now = (long long)(t * 1000) / period_us;
  long long k_min = k_now - PROC_UTIL_DEPTH + 1;
  if (k_min < 0) k_min = 0;
  long long seen = (long long)(lastSeenTimeStamp > (unsigned long long)INT64_MAX ? INT64_MAX : lastSeenTimeStamp);
  if (seen >= epoch_realtime_us) {
    long long k_seen = (seen - epoch_realtime_us) / period_us; /* newest sample not newer than lastSeen */
    if (k_seen + 1 > k_min) k_min = k_seen + 1;
  }
  int procs[MAX_PROCS]; unsigned int nprocs = 0;
  for (int i = 0; i < MAX_PROCS; i++) {
    const proc_cfg_t *p = &st->proc[i];
    if (p->defined && p->gpu == h->gpu && p->pid && proc_has_util(p)) procs[nprocs++] = i;
  }
  unsigned long long n = k_now >= k_min ? (unsigned long long)(k_now - k_min + 1) * nprocs : 0;
  if (n == 0) rc = NVML_ERROR_NOT_FOUND;
  else if (!samples || *count < n) { *count = (unsigned int)n; rc = NVML_ERROR_INSUFFICIENT_SIZE; }
  else {
    unsigned int out = 0;
    for (long long k = k_min; k <= k_now; k++) {
      double at = (double)(k * period_us) / 1000.0;
      for (unsigned int j = 0; j < nprocs; j++) {
        int i = procs[j];
        const proc_cfg_t *p = &st->proc[i];
        nvmlProcessUtilizationSample_t *s = &samples[out++];
        unsigned int v[P_COUNT];
        for (int key = 0; key < P_COUNT; key++)
          v[key] = p->util[key].kind == V_UNSET ? 0 : pct(eval_at(&p->util[key], &proc_walk_cache[i][key], at));
        s->pid = p->pid;
        s->timeStamp = (unsigned long long)(epoch_realtime_us + k * period_us);
        s->smUtil = v[P_sm]; s->memUtil = v[P_mem_util]; s->encUtil = v[P_enc]; s->decUtil = v[P_dec];
      }
    }
    *count = out;
  }
  UNLOCK();
  return rc;
}
#endif
