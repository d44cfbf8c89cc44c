/*
 * kube-gpu-exporter simulated NVML: the C ABI it shares with callers (x86-64 / aarch64 Linux,
 * LP64): return codes, value types and every struct an exported call passes, laid out as
 * NVIDIA's nvml.h lays them out.
 *
 * Every struct's size is asserted below, one `_Static_assert(sizeof(T) == N, "T");` per line:
 * test/binding.test.ts reads exactly those lines (from every .c and .h under native/sim) and
 * requires them to equal the binding's ABI_SIZES (src/native/nvml-structs.ts, gpm-abi.ts),
 * both ways. Other asserts (member offsets) use another label, so that test skips them.
 */
#ifndef KGE_NVML_SIM_ABI_H
#define KGE_NVML_SIM_ABI_H

typedef int nvmlReturn_t;
enum {
  NVML_SUCCESS = 0, NVML_ERROR_UNINITIALIZED = 1, NVML_ERROR_INVALID_ARGUMENT = 2,
  NVML_ERROR_NOT_SUPPORTED = 3, NVML_ERROR_NOT_FOUND = 6, NVML_ERROR_INSUFFICIENT_SIZE = 7,
  NVML_ERROR_DRIVER_NOT_LOADED = 9, NVML_ERROR_TIMEOUT = 10, NVML_ERROR_GPU_IS_LOST = 15,
  NVML_ERROR_MEMORY = 20, NVML_ERROR_INSUFFICIENT_RESOURCES = 23,
  NVML_ERROR_ARGUMENT_VERSION_MISMATCH = 25, NVML_ERROR_UNKNOWN = 999
};

/* nvmlValueType_t: which member of nvmlFieldValue_t's value a field is in */
enum {
  NVML_VALUE_TYPE_DOUBLE = 0, NVML_VALUE_TYPE_UNSIGNED_INT = 1, NVML_VALUE_TYPE_UNSIGNED_LONG = 2,
  NVML_VALUE_TYPE_UNSIGNED_LONG_LONG = 3, NVML_VALUE_TYPE_SIGNED_LONG_LONG = 4,
  NVML_VALUE_TYPE_SIGNED_INT = 5, NVML_VALUE_TYPE_UNSIGNED_SHORT = 6
};

typedef struct {
  char busIdLegacy[16];
  unsigned int domain, bus, device, pciDeviceId, pciSubSystemId;
  char busId[32];
} nvmlPciInfo_t;

typedef struct { unsigned int gpu, memory; } nvmlUtilization_t;

typedef struct { unsigned long long total, free, used; } nvmlMemory_t;
typedef struct { unsigned int version; unsigned long long total, reserved, free, used; } nvmlMemory_v2_t;
#define NVML_MEMORY_V2_VERSION 0x02000028u /* sizeof | 2 << 24 */

/* the entry of nvmlDeviceGetComputeRunningProcesses_v3 and _v2 (the same layout) */
typedef struct { unsigned int pid; unsigned long long usedGpuMemory; unsigned int gpuInstanceId, computeInstanceId; } nvmlProcessInfo_t;

typedef struct {
  unsigned int pid;
  unsigned long long timeStamp; /* microseconds */
  unsigned int smUtil, memUtil, encUtil, decUtil;
} nvmlProcessUtilizationSample_t;

typedef struct {
  unsigned int fieldId, scopeId;
  long long timestamp, latencyUsec;
  int valueType, nvmlReturn;
  union { double d; unsigned int ui; unsigned long ul; unsigned long long ull; long long sll; int si; unsigned short us; } value;
} nvmlFieldValue_t;

typedef struct { unsigned long long referenceTime, violationTime; } nvmlViolationTime_t;

/* nvmlDeviceGetGpuInstanceProfileInfoV: one MIG GPU instance profile (its `profile` argument is an
 * index, NVML_GPU_INSTANCE_PROFILE_1_SLICE = 0 ... 0x11; `id` is the profile id nvidia-smi shows) */
#define NVML_GPU_INSTANCE_PROFILE_COUNT 0x12u
#define NVML_GPU_INSTANCE_PROFILE_INFO_V2_VERSION 0x02000098u /* sizeof | 2 << 24 */
typedef struct {
  unsigned int version, id, isP2pSupported, sliceCount, instanceCount, multiprocessorCount;
  unsigned int copyEngineCount, decoderCount, encoderCount, jpegCount, ofaCount;
  unsigned long long memorySizeMB; /* MiB */
  char name[96];                   /* e.g. "MIG 1g.10gb" */
} nvmlGpuInstanceProfileInfo_v2_t;

typedef struct {
  void *device;
  unsigned long long eventType, eventData;
  unsigned int gpuInstanceId, computeInstanceId;
} nvmlEventData_t;

/* GPM. Both versioned structs carry the PLAIN version 1, not the size | version << 24 form. */
#define NVML_GPM_SUPPORT_VERSION 1
#define NVML_GPM_METRICS_GET_VERSION 1
/* nvmlGpmMetricsGet_t's array as the newest headers (13.2+) size it; the simulated driver accepts
 * at most NVML_GPM_METRICS_ACCEPTED entries (nvml_sim_gpm.c), so the array length matters only
 * for sizeof: a caller passes a pointer. */
#define NVML_GPM_METRICS_GET_MAX 333

typedef struct { unsigned int version, isSupportedDevice; } nvmlGpmSupport_t;
typedef struct {
  unsigned int metricId;
  nvmlReturn_t nvmlReturn;
  double value;
  struct { char *shortName, *longName, *unit; } metricInfo;
} nvmlGpmMetric_t;
typedef struct {
  unsigned int version, numMetrics;
  void *sample1, *sample2;
  nvmlGpmMetric_t metrics[NVML_GPM_METRICS_GET_MAX];
} nvmlGpmMetricsGet_t;

/* ---- sizes: one per line, `_Static_assert(sizeof(T) == N, "T");` (read by test/binding.test.ts) ---- */
_Static_assert(sizeof(nvmlPciInfo_t) == 68, "nvmlPciInfo_t");
_Static_assert(sizeof(nvmlUtilization_t) == 8, "nvmlUtilization_t");
_Static_assert(sizeof(nvmlMemory_t) == 24, "nvmlMemory_t");
_Static_assert(sizeof(nvmlMemory_v2_t) == 40, "nvmlMemory_v2_t");
_Static_assert(sizeof(nvmlProcessInfo_t) == 24, "nvmlProcessInfo_t");
_Static_assert(sizeof(nvmlProcessUtilizationSample_t) == 32, "nvmlProcessUtilizationSample_t");
_Static_assert(sizeof(nvmlFieldValue_t) == 40, "nvmlFieldValue_t");
_Static_assert(sizeof(nvmlViolationTime_t) == 16, "nvmlViolationTime_t");
_Static_assert(sizeof(nvmlGpuInstanceProfileInfo_v2_t) == 152, "nvmlGpuInstanceProfileInfo_v2_t");
_Static_assert(sizeof(nvmlEventData_t) == 32, "nvmlEventData_t");
_Static_assert(sizeof(nvmlGpmSupport_t) == 8, "nvmlGpmSupport_t");
_Static_assert(sizeof(nvmlGpmMetric_t) == 40, "nvmlGpmMetric_t");
_Static_assert(sizeof(nvmlGpmMetricsGet_t) == 13344, "nvmlGpmMetricsGet_t");

/* ---- member offsets the callers rely on (labelled "T.member") ---- */
_Static_assert(__builtin_offsetof(nvmlPciInfo_t, busId) == 36, "nvmlPciInfo_t.busId");
_Static_assert(__builtin_offsetof(nvmlMemory_v2_t, total) == 8, "nvmlMemory_v2_t.total");
_Static_assert(__builtin_offsetof(nvmlProcessInfo_t, gpuInstanceId) == 16, "nvmlProcessInfo_t.gpuInstanceId");
_Static_assert(__builtin_offsetof(nvmlProcessUtilizationSample_t, smUtil) == 16, "nvmlProcessUtilizationSample_t.smUtil");
_Static_assert(__builtin_offsetof(nvmlFieldValue_t, valueType) == 24, "nvmlFieldValue_t.valueType");
_Static_assert(__builtin_offsetof(nvmlFieldValue_t, value) == 32, "nvmlFieldValue_t.value");
_Static_assert(__builtin_offsetof(nvmlEventData_t, gpuInstanceId) == 24, "nvmlEventData_t.gpuInstanceId");
_Static_assert(__builtin_offsetof(nvmlGpuInstanceProfileInfo_v2_t, ofaCount) == 40, "nvmlGpuInstanceProfileInfo_v2_t.ofaCount");
_Static_assert(__builtin_offsetof(nvmlGpuInstanceProfileInfo_v2_t, memorySizeMB) == 48, "nvmlGpuInstanceProfileInfo_v2_t.memorySizeMB");
_Static_assert(__builtin_offsetof(nvmlGpuInstanceProfileInfo_v2_t, name) == 56, "nvmlGpuInstanceProfileInfo_v2_t.name");
_Static_assert(__builtin_offsetof(nvmlGpmMetric_t, metricInfo) == 16, "nvmlGpmMetric_t.metricInfo");
_Static_assert(__builtin_offsetof(nvmlGpmMetricsGet_t, metrics) == 24, "nvmlGpmMetricsGet_t.metrics");

#endif
