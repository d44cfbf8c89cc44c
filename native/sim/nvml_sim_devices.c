/* kube-gpu-exporter simulated NVML: system calls, device identity, PCI, utilization, memory,
 * temperature, power, energy, clocks, fan, performance state, PCIe, MIG. */
#include "nvml_sim.h"

/* ---- system and device identity ------------------------------------------------------ */
#ifndef KGE_OMIT_nvmlSystemGetDriverVersion
EXPORT nvmlReturn_t nvmlSystemGetDriverVersion(char *v, unsigned int len) {
  BEGIN_SYS();
  LOCK(); char tmp[80]; snprintf(tmp, sizeof tmp, "%s", st->driver_version); UNLOCK();
  return copy_str(v, len, tmp);
}
#endif

#ifndef KGE_OMIT_nvmlSystemGetNVMLVersion
EXPORT nvmlReturn_t nvmlSystemGetNVMLVersion(char *v, unsigned int len) {
  BEGIN_SYS();
  LOCK(); char tmp[80]; snprintf(tmp, sizeof tmp, "%s", st->nvml_version); UNLOCK();
  return copy_str(v, len, tmp);
}
#endif

#ifndef KGE_OMIT_nvmlSystemGetCudaDriverVersion_v2
EXPORT nvmlReturn_t nvmlSystemGetCudaDriverVersion_v2(int *v) {
  BEGIN_SYS();
  if (!v) return NVML_ERROR_INVALID_ARGUMENT;
  LOCK(); int has = st->has_cuda, c = st->cuda_version; UNLOCK();
  if (!has) return NVML_ERROR_NOT_SUPPORTED;
  *v = c; return NVML_SUCCESS;
}
#endif

EXPORT nvmlReturn_t nvmlDeviceGetCount_v2(unsigned int *count) {
  BEGIN_SYS();
  if (!count) return NVML_ERROR_INVALID_ARGUMENT;
  LOCK(); *count = (unsigned int)st->device_count; UNLOCK();
  return NVML_SUCCESS;
}

EXPORT nvmlReturn_t nvmlDeviceGetHandleByIndex_v2(unsigned int index, void **device) {
  if (index < MAX_GPUS) { nvmlReturn_t rc = begin(__func__, &gpu_handles[index], 1); if (rc) return rc; }
  else BEGIN_SYS();
  if (!device) return NVML_ERROR_INVALID_ARGUMENT;
  LOCK(); int n = st->device_count; UNLOCK();
  if (index >= (unsigned int)n) return NVML_ERROR_INVALID_ARGUMENT;
  *device = &gpu_handles[index];
  return NVML_SUCCESS;
}

#ifndef KGE_OMIT_nvmlDeviceGetHandleByUUID
EXPORT nvmlReturn_t nvmlDeviceGetHandleByUUID(const char *uuid, void **device) {
  BEGIN_SYS();
  if (!uuid || !device) return NVML_ERROR_INVALID_ARGUMENT;
  nvmlReturn_t rc = NVML_ERROR_NOT_FOUND;
  LOCK();
  for (int i = 0; i < st->device_count && rc; i++) {
    if (!strcmp(st->gpu[i].uuid, uuid)) { *device = &gpu_handles[i]; rc = NVML_SUCCESS; }
    for (int j = 0; j < MAX_MIG && rc; j++)
      if (st->gpu[i].mig[j].defined && !strcmp(st->gpu[i].mig[j].uuid, uuid)) { *device = &mig_handles[i][j]; rc = NVML_SUCCESS; }
  }
  UNLOCK();
  return rc;
}
#endif

#ifndef KGE_OMIT_nvmlDeviceGetIndex
EXPORT nvmlReturn_t nvmlDeviceGetIndex(void *device, unsigned int *index) {
  BEGIN(device);
  if (!index) return NVML_ERROR_INVALID_ARGUMENT;
  *index = (unsigned int)H(device)->gpu;
  return NVML_SUCCESS;
}
#endif

#ifndef KGE_OMIT_nvmlDeviceGetMinorNumber
EXPORT nvmlReturn_t nvmlDeviceGetMinorNumber(void *device, unsigned int *minor) {
  BEGIN(device);
  if (!minor) return NVML_ERROR_INVALID_ARGUMENT;
  double v;
  LOCK();
  nvmlReturn_t rc = gpu_num(H(device)->gpu, K_minor, &v);
  UNLOCK();
  *minor = rc ? (unsigned int)H(device)->gpu : (unsigned int)v;
  return NVML_SUCCESS;
}
#endif

#ifndef KGE_OMIT_nvmlDeviceGetUUID
EXPORT nvmlReturn_t nvmlDeviceGetUUID(void *device, char *uuid, unsigned int len) {
  BEGIN(device);
  const handle_t *h = H(device);
  char tmp[96];
  LOCK();
  snprintf(tmp, sizeof tmp, "%s", h->mig >= 0 ? st->gpu[h->gpu].mig[h->mig].uuid : st->gpu[h->gpu].uuid);
  UNLOCK();
  return copy_str(uuid, len, tmp);
}
#endif

#ifndef KGE_OMIT_nvmlDeviceGetName
EXPORT nvmlReturn_t nvmlDeviceGetName(void *device, char *name, unsigned int len) {
  BEGIN(device);
  const handle_t *h = H(device);
  char tmp[160];
  LOCK();
  if (h->mig >= 0) snprintf(tmp, sizeof tmp, "%s MIG %s", st->gpu[h->gpu].name, st->gpu[h->gpu].mig[h->mig].profile);
  else snprintf(tmp, sizeof tmp, "%s", st->gpu[h->gpu].name);
  UNLOCK();
  return copy_str(name, len, tmp);
}
#endif

#ifndef KGE_OMIT_nvmlDeviceGetSerial
EXPORT nvmlReturn_t nvmlDeviceGetSerial(void *device, char *serial, unsigned int len) {
  BEGIN(device);
  const handle_t *h = H(device);
  char tmp[32]; int has;
  LOCK(); has = st->gpu[h->gpu].has_serial; snprintf(tmp, sizeof tmp, "%s", st->gpu[h->gpu].serial); UNLOCK();
  if (!has) return NVML_ERROR_NOT_SUPPORTED;
  return copy_str(serial, len, tmp);
}
#endif

#ifndef KGE_OMIT_nvmlDeviceGetPciInfo_v3
EXPORT nvmlReturn_t nvmlDeviceGetPciInfo_v3(void *device, nvmlPciInfo_t *pci) {
  BEGIN(device);
  if (!pci) return NVML_ERROR_INVALID_ARGUMENT;
  const handle_t *h = H(device);
  memset(pci, 0, sizeof *pci);
  double id = 0, sub = 0;
  LOCK();
  snprintf(pci->busId, sizeof pci->busId, "%s", st->gpu[h->gpu].pci_bus_id);
  gpu_num(h->gpu, K_pci_device_id, &id);
  gpu_num(h->gpu, K_pci_subsystem_id, &sub);
  UNLOCK();
  unsigned d = 0, b = 0, dev = 0, f = 0;
  sscanf(pci->busId, "%x:%x:%x.%x", &d, &b, &dev, &f);
  pci->domain = d; pci->bus = b; pci->device = dev;
  pci->pciDeviceId = (unsigned int)id; pci->pciSubSystemId = (unsigned int)sub;
  snprintf(pci->busIdLegacy, sizeof pci->busIdLegacy, "%04x:%02x:%02x.%x", d & 0xffff, b, dev, f);
  return NVML_SUCCESS;
}
#endif

#ifndef KGE_OMIT_nvmlDeviceGetUtilizationRates
EXPORT nvmlReturn_t nvmlDeviceGetUtilizationRates(void *device, nvmlUtilization_t *u) {
  BEGIN(device);
  if (!u) return NVML_ERROR_INVALID_ARGUMENT;
  const handle_t *h = H(device);
  if (h->mig >= 0) return NVML_ERROR_NOT_SUPPORTED;
  double g, m;
  LOCK();
  nvmlReturn_t rc = mig_enabled(h->gpu) ? NVML_ERROR_NOT_SUPPORTED : gpu_num(h->gpu, K_util_gpu, &g);
  if (!rc) rc = gpu_num(h->gpu, K_util_mem, &m);
  UNLOCK();
  if (rc) return rc;
  u->gpu = (unsigned int)g; u->memory = (unsigned int)m;
  return NVML_SUCCESS;
}
#endif

MAYBE_UNUSED static nvmlReturn_t codec(void *device, int key, unsigned int *util, unsigned int *period) {
  if (!period) return NVML_ERROR_INVALID_ARGUMENT;
  nvmlReturn_t rc = phys_uint(device, key, util);
  if (!rc) *period = 167000;
  return rc;
}

#ifndef KGE_OMIT_nvmlDeviceGetEncoderUtilization
EXPORT nvmlReturn_t nvmlDeviceGetEncoderUtilization(void *device, unsigned int *util, unsigned int *period) {
  BEGIN(device);
  return codec(device, K_enc_util, util, period);
}
#endif

#ifndef KGE_OMIT_nvmlDeviceGetDecoderUtilization
EXPORT nvmlReturn_t nvmlDeviceGetDecoderUtilization(void *device, unsigned int *util, unsigned int *period) {
  BEGIN(device);
  return codec(device, K_dec_util, util, period);
}
#endif

/* total, reserved, used for a GPU or MIG handle (bytes). Holds mu. */
MAYBE_UNUSED static nvmlReturn_t memory_of(const handle_t *h, double *total, double *reserved, double *used) {
  *reserved = 0;
  if (h->mig >= 0) {
    if (mig_num(h->gpu, h->mig, M_mem_total, total)) return NVML_ERROR_NOT_SUPPORTED;
    mig_num(h->gpu, h->mig, M_mem_reserved, reserved);
    if (mig_num(h->gpu, h->mig, M_mem_used, used)) *used = 0;
  } else {
    if (gpu_num(h->gpu, K_mem_total, total)) return NVML_ERROR_NOT_SUPPORTED;
    gpu_num(h->gpu, K_mem_reserved, reserved);
    if (gpu_num(h->gpu, K_mem_used, used)) *used = 0;
  }
  double avail = *total - *reserved;
  if (*used > avail) *used = avail;
  if (*used < 0) *used = 0;
  return NVML_SUCCESS;
}

#ifndef KGE_OMIT_nvmlDeviceGetMemoryInfo
EXPORT nvmlReturn_t nvmlDeviceGetMemoryInfo(void *device, nvmlMemory_t *m) {
  BEGIN(device);
  if (!m) return NVML_ERROR_INVALID_ARGUMENT;
  double total, reserved, used;
  LOCK(); nvmlReturn_t rc = memory_of(H(device), &total, &reserved, &used); UNLOCK();
  if (rc) return rc;
  /* the legacy call counts reserved memory as used */
  m->total = (unsigned long long)total;
  m->used = (unsigned long long)used + (unsigned long long)reserved;
  m->free = m->total - m->used;
  return NVML_SUCCESS;
}
#endif

#ifndef KGE_OMIT_nvmlDeviceGetMemoryInfo_v2
EXPORT nvmlReturn_t nvmlDeviceGetMemoryInfo_v2(void *device, nvmlMemory_v2_t *m) {
  BEGIN(device);
  if (!m) return NVML_ERROR_INVALID_ARGUMENT;
  if (m->version != NVML_MEMORY_V2_VERSION) return NVML_ERROR_ARGUMENT_VERSION_MISMATCH;
  double total, reserved, used;
  LOCK(); nvmlReturn_t rc = memory_of(H(device), &total, &reserved, &used); UNLOCK();
  if (rc) return rc;
  m->total = (unsigned long long)total;
  m->reserved = (unsigned long long)reserved;
  m->used = (unsigned long long)used;
  m->free = m->total - m->reserved - m->used;
  return NVML_SUCCESS;
}
#endif

#ifndef KGE_OMIT_nvmlDeviceGetTemperature
EXPORT nvmlReturn_t nvmlDeviceGetTemperature(void *device, int sensor, unsigned int *temp) {
  BEGIN(device);
  if (sensor != 0) return NVML_ERROR_INVALID_ARGUMENT;
  return phys_uint(device, K_temp_gpu, temp);
}
#endif

#ifndef KGE_OMIT_nvmlDeviceGetPowerUsage
EXPORT nvmlReturn_t nvmlDeviceGetPowerUsage(void *device, unsigned int *mw) {
  BEGIN(device);
  return phys_uint(device, K_power_mw, mw);
}
#endif

#ifndef KGE_OMIT_nvmlDeviceGetEnforcedPowerLimit
EXPORT nvmlReturn_t nvmlDeviceGetEnforcedPowerLimit(void *device, unsigned int *mw) {
  BEGIN(device);
  return phys_uint(device, K_power_limit_mw, mw);
}
#endif

static double energy_mj[MAX_GPUS]; static double energy_at_ms[MAX_GPUS]; static int energy_init[MAX_GPUS];

/* Energy integrates the current power over real elapsed time. Holds mu. */
nvmlReturn_t energy_of(int gpu, unsigned long long *mj) {
  double p, start = 0;
  if (gpu_num(gpu, K_power_mw, &p)) return NVML_ERROR_NOT_SUPPORTED;
  gpu_num(gpu, K_energy_start_mj, &start);
  double now = now_ms();
  if (!energy_init[gpu]) { energy_init[gpu] = 1; energy_mj[gpu] = start; energy_at_ms[gpu] = now; }
  energy_mj[gpu] += p * (now - energy_at_ms[gpu]) / 1000.0; /* mW x s = mJ */
  energy_at_ms[gpu] = now;
  *mj = (unsigned long long)energy_mj[gpu];
  return NVML_SUCCESS;
}

#ifndef KGE_OMIT_nvmlDeviceGetTotalEnergyConsumption
EXPORT nvmlReturn_t nvmlDeviceGetTotalEnergyConsumption(void *device, unsigned long long *mj) {
  BEGIN(device);
  if (!mj) return NVML_ERROR_INVALID_ARGUMENT;
  if (H(device)->mig >= 0) return NVML_ERROR_NOT_SUPPORTED;
  LOCK(); nvmlReturn_t rc = energy_of(H(device)->gpu, mj); UNLOCK();
  return rc;
}
#endif

MAYBE_UNUSED static int clock_key(int type, int max) {
  switch (type) {
  case 0: return max ? K_max_clock_graphics : K_clock_graphics;
  case 1: return max ? K_max_clock_sm : K_clock_sm;
  case 2: return max ? K_max_clock_mem : K_clock_mem;
  case 3: return max ? K_max_clock_video : K_clock_video;
  default: return -1;
  }
}

#ifndef KGE_OMIT_nvmlDeviceGetClockInfo
EXPORT nvmlReturn_t nvmlDeviceGetClockInfo(void *device, int type, unsigned int *mhz) {
  BEGIN(device);
  int k = clock_key(type, 0);
  if (k < 0) return NVML_ERROR_INVALID_ARGUMENT;
  return phys_uint(device, k, mhz);
}
#endif

#ifndef KGE_OMIT_nvmlDeviceGetMaxClockInfo
EXPORT nvmlReturn_t nvmlDeviceGetMaxClockInfo(void *device, int type, unsigned int *mhz) {
  BEGIN(device);
  int k = clock_key(type, 1);
  if (k < 0) return NVML_ERROR_INVALID_ARGUMENT;
  return phys_uint(device, k, mhz);
}
#endif

#ifndef KGE_OMIT_nvmlDeviceGetFanSpeed
EXPORT nvmlReturn_t nvmlDeviceGetFanSpeed(void *device, unsigned int *speed) {
  BEGIN(device);
  return phys_uint(device, K_fan, speed);
}
#endif

#ifndef KGE_OMIT_nvmlDeviceGetPerformanceState
EXPORT nvmlReturn_t nvmlDeviceGetPerformanceState(void *device, int *p) {
  BEGIN(device);
  unsigned int v;
  nvmlReturn_t rc = phys_uint(device, K_pstate, &v);
  if (!rc) { if (!p) return NVML_ERROR_INVALID_ARGUMENT; *p = (int)v; }
  return rc;
}
#endif

MAYBE_UNUSED static nvmlReturn_t reasons(void *device, unsigned long long *r) {
  if (!r) return NVML_ERROR_INVALID_ARGUMENT;
  unsigned int v;
  nvmlReturn_t rc = phys_uint(device, K_clocks_event_reasons, &v);
  if (!rc) *r = v;
  return rc;
}

#ifndef KGE_OMIT_nvmlDeviceGetCurrentClocksEventReasons
EXPORT nvmlReturn_t nvmlDeviceGetCurrentClocksEventReasons(void *device, unsigned long long *r) {
  BEGIN(device);
  return reasons(device, r);
}
#endif

#ifndef KGE_OMIT_nvmlDeviceGetCurrentClocksThrottleReasons
EXPORT nvmlReturn_t nvmlDeviceGetCurrentClocksThrottleReasons(void *device, unsigned long long *r) {
  BEGIN(device);
  return reasons(device, r);
}
#endif

#ifndef KGE_OMIT_nvmlDeviceGetPcieThroughput
EXPORT nvmlReturn_t nvmlDeviceGetPcieThroughput(void *device, int counter, unsigned int *kbps) {
  BEGIN(device);
  if (counter != 0 && counter != 1) return NVML_ERROR_INVALID_ARGUMENT;
  return phys_uint(device, counter == 0 ? K_pcie_tx_kbps : K_pcie_rx_kbps, kbps);
}
#endif

/* ---- PCIe link: current and maximum generation and width ---------------------------- */
#ifndef KGE_OMIT_nvmlDeviceGetCurrPcieLinkGeneration
EXPORT nvmlReturn_t nvmlDeviceGetCurrPcieLinkGeneration(void *device, unsigned int *gen) {
  BEGIN(device);
  return phys_uint(device, K_pcie_link_gen, gen);
}
#endif

#ifndef KGE_OMIT_nvmlDeviceGetCurrPcieLinkWidth
EXPORT nvmlReturn_t nvmlDeviceGetCurrPcieLinkWidth(void *device, unsigned int *width) {
  BEGIN(device);
  return phys_uint(device, K_pcie_link_width, width);
}
#endif

#ifndef KGE_OMIT_nvmlDeviceGetMaxPcieLinkGeneration
EXPORT nvmlReturn_t nvmlDeviceGetMaxPcieLinkGeneration(void *device, unsigned int *gen) {
  BEGIN(device);
  return phys_uint(device, K_pcie_max_link_gen, gen);
}
#endif

#ifndef KGE_OMIT_nvmlDeviceGetMaxPcieLinkWidth
EXPORT nvmlReturn_t nvmlDeviceGetMaxPcieLinkWidth(void *device, unsigned int *width) {
  BEGIN(device);
  return phys_uint(device, K_pcie_max_link_width, width);
}
#endif

/* ---- MIG ------------------------------------------------------------------------------ */
#ifndef KGE_OMIT_nvmlDeviceGetMigMode
EXPORT nvmlReturn_t nvmlDeviceGetMigMode(void *device, unsigned int *current, unsigned int *pending) {
  BEGIN(device);
  if (!current || !pending) return NVML_ERROR_INVALID_ARGUMENT;
  unsigned int v;
  nvmlReturn_t rc = phys_uint(device, K_mig_mode, &v);
  if (!rc) *current = *pending = v;
  return rc;
}
#endif

#ifndef KGE_OMIT_nvmlDeviceGetMaxMigDeviceCount
EXPORT nvmlReturn_t nvmlDeviceGetMaxMigDeviceCount(void *device, unsigned int *count) {
  BEGIN(device);
  if (!count) return NVML_ERROR_INVALID_ARGUMENT;
  if (H(device)->mig >= 0) return NVML_ERROR_NOT_SUPPORTED;
  LOCK(); int on = mig_enabled(H(device)->gpu); UNLOCK();
  *count = on ? MAX_MIG : 0;
  return NVML_SUCCESS;
}
#endif

#ifndef KGE_OMIT_nvmlDeviceGetMigDeviceHandleByIndex
EXPORT nvmlReturn_t nvmlDeviceGetMigDeviceHandleByIndex(void *device, unsigned int index, void **mig) {
  BEGIN(device);
  if (!mig) return NVML_ERROR_INVALID_ARGUMENT;
  const handle_t *h = H(device);
  if (h->mig >= 0) return NVML_ERROR_NOT_SUPPORTED;
  if (index >= MAX_MIG) return NVML_ERROR_INVALID_ARGUMENT;
  LOCK();
  int on = mig_enabled(h->gpu), defined = st->gpu[h->gpu].mig[index].defined;
  UNLOCK();
  if (!on) return NVML_ERROR_NOT_SUPPORTED;
  if (!defined) return NVML_ERROR_NOT_FOUND;
  *mig = &mig_handles[h->gpu][index];
  return NVML_SUCCESS;
}
#endif

#ifndef KGE_OMIT_nvmlDeviceGetDeviceHandleFromMigDeviceHandle
EXPORT nvmlReturn_t nvmlDeviceGetDeviceHandleFromMigDeviceHandle(void *mig, void **device) {
  BEGIN(mig);
  if (!device) return NVML_ERROR_INVALID_ARGUMENT;
  if (H(mig)->mig < 0) return NVML_ERROR_INVALID_ARGUMENT;
  *device = &gpu_handles[H(mig)->gpu];
  return NVML_SUCCESS;
}
#endif

MAYBE_UNUSED static nvmlReturn_t mig_id(void *device, int key, unsigned int *out) {
  if (!out) return NVML_ERROR_INVALID_ARGUMENT;
  const handle_t *h = H(device);
  if (h->mig < 0) return NVML_ERROR_INVALID_ARGUMENT;
  double v;
  LOCK(); nvmlReturn_t rc = mig_num(h->gpu, h->mig, key, &v); UNLOCK();
  if (rc) return rc;
  *out = (unsigned int)v;
  return NVML_SUCCESS;
}

#ifndef KGE_OMIT_nvmlDeviceGetGpuInstanceId
EXPORT nvmlReturn_t nvmlDeviceGetGpuInstanceId(void *device, unsigned int *id) {
  BEGIN(device);
  return mig_id(device, M_gi, id);
}
#endif

#ifndef KGE_OMIT_nvmlDeviceGetComputeInstanceId
EXPORT nvmlReturn_t nvmlDeviceGetComputeInstanceId(void *device, unsigned int *id) {
  BEGIN(device);
  return mig_id(device, M_ci, id);
}
#endif

#ifndef KGE_OMIT_nvmlDeviceIsMigDeviceHandle
EXPORT nvmlReturn_t nvmlDeviceIsMigDeviceHandle(void *device, unsigned int *isMig) {
  BEGIN(device);
  if (!isMig) return NVML_ERROR_INVALID_ARGUMENT;
  *isMig = H(device)->mig >= 0;
  return NVML_SUCCESS;
}
#endif
