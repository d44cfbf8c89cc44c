/* kube-gpu-exporter simulated NVML: GPU health: ECC, retired pages, remapped rows, clock
 * violation time. (Their field ids are served by nvml_sim_fields.c.) */
#include "nvml_sim.h"

#ifndef KGE_OMIT_nvmlDeviceGetTotalEccErrors
EXPORT nvmlReturn_t nvmlDeviceGetTotalEccErrors(void *device, int errorType, int counterType, unsigned long long *count) {
  BEGIN(device);
  if (errorType != 0 && errorType != 1) return NVML_ERROR_INVALID_ARGUMENT;
  if (counterType != 0 && counterType != 1) return NVML_ERROR_INVALID_ARGUMENT;
  int key = counterType == 0 ? (errorType == 0 ? K_ecc_sbe_vol : K_ecc_dbe_vol) : (errorType == 0 ? K_ecc_sbe_agg : K_ecc_dbe_agg);
  return phys_u64(device, key, count);
}
#endif

#ifndef KGE_OMIT_nvmlDeviceGetRetiredPagesPendingStatus
EXPORT nvmlReturn_t nvmlDeviceGetRetiredPagesPendingStatus(void *device, int *isPending) {
  BEGIN(device);
  if (!isPending) return NVML_ERROR_INVALID_ARGUMENT;
  unsigned long long v;
  nvmlReturn_t rc = phys_u64(device, K_retired_pending, &v);
  if (!rc) *isPending = v != 0;
  return rc;
}
#endif

/* Supported when any remap_* key is set (the others read 0); NOT_SUPPORTED in MIG mode. */
#ifndef KGE_OMIT_nvmlDeviceGetRemappedRows
EXPORT nvmlReturn_t nvmlDeviceGetRemappedRows(void *device, unsigned int *corrRows, unsigned int *uncRows,
                                             unsigned int *isPending, unsigned int *failureOccurred) {
  BEGIN(device);
  if (!corrRows || !uncRows || !isPending || !failureOccurred) return NVML_ERROR_INVALID_ARGUMENT;
  const handle_t *h = H(device);
  if (h->mig >= 0) return NVML_ERROR_NOT_SUPPORTED;
  static const int keys[4] = { K_remap_correctable, K_remap_uncorrectable, K_remap_pending, K_remap_failure };
  double v[4] = { 0, 0, 0, 0 };
  int any = 0;
  LOCK();
  int mig = mig_enabled(h->gpu);
  for (int i = 0; i < 4; i++) if (!gpu_num(h->gpu, keys[i], &v[i])) any = 1;
  UNLOCK();
  if (mig || !any) return NVML_ERROR_NOT_SUPPORTED;
  *corrRows = (unsigned int)u64_of(v[0]);
  *uncRows = (unsigned int)u64_of(v[1]);
  *isPending = v[2] != 0;
  *failureOccurred = v[3] != 0;
  return NVML_SUCCESS;
}
#endif

/* policy 0 POWER (violation_power_ns), 1 THERMAL (violation_thermal_ns); the other policies of the
 * enum (2-5, 10, 11) are NOT_SUPPORTED, anything else INVALID_ARGUMENT. referenceTime: CPU wall
 * clock in microseconds, as the header documents. */
#ifndef KGE_OMIT_nvmlDeviceGetViolationStatus
EXPORT nvmlReturn_t nvmlDeviceGetViolationStatus(void *device, int policy, nvmlViolationTime_t *out) {
  BEGIN(device);
  if (!out || policy < 0 || policy > 11) return NVML_ERROR_INVALID_ARGUMENT;
  if (policy > 1) return NVML_ERROR_NOT_SUPPORTED;
  unsigned long long ns;
  nvmlReturn_t rc = phys_u64(device, policy == 0 ? K_violation_power_ns : K_violation_thermal_ns, &ns);
  if (rc) return rc;
  struct timespec ts; clock_gettime(CLOCK_REALTIME, &ts);
  out->referenceTime = (unsigned long long)ts.tv_sec * 1000000ull + (unsigned long long)ts.tv_nsec / 1000ull;
  out->violationTime = ns;
  return NVML_SUCCESS;
}
#endif
