/* kube-gpu-exporter simulated NVML: the MIG GPU instance profile table
 * (nvmlDeviceGetGpuInstanceProfileInfoV).
 *
 * A real driver answers from the GPU's hardware; the simulated one from a built-in table per
 * model below, chosen by the scenario's `name` (a model token such as "H100", matched as a whole
 * word) and `mem_total` (a range, so that e.g. A100 40GB and 80GB get their own tables). Adding a
 * model is one profile array and one row of gi_models. As on a real GPU, the table is only
 * listed while MIG mode is enabled (`mig_mode 1`); otherwise every profile is NOT_SUPPORTED.
 * The H100 80GB row's names, ids, counts, SMs and memory (MiB) are what nvidia-smi mig -lgip
 * shows for it; the other models' memory and the engine counts are close estimates, good enough
 * for a simulation, not checked against hardware. */
#include "nvml_sim.h"

/* nvmlGpuInstanceProfile indexes (the `profile` argument) the tables use */
enum {
  GI_1_SLICE = 0x0, GI_2_SLICE = 0x1, GI_3_SLICE = 0x2, GI_4_SLICE = 0x3, GI_7_SLICE = 0x4,
  GI_1_SLICE_REV1 = 0x7, /* the +me variant of 1g: all media engines */
  GI_2_SLICE_REV1 = 0x8, /* the +me variant of 2g */
  GI_1_SLICE_REV2 = 0x9, /* 1g with twice the memory (e.g. 1g.20gb) */
};

typedef struct {
  unsigned int index;         /* GI_* : the profile argument that answers with this row */
  unsigned int id;            /* the GPU instance profile id (nvidia-smi's "ID") */
  const char *name;           /* without the "MIG " prefix the driver puts before it */
  unsigned int slices, instances, sms, copy_engines, decoders, encoders, jpegs, ofas;
  unsigned long long mib;
} gi_profile_t;

/* H100 80GB (SXM5 and PCIe): 7 compute slices, 132 SMs */
MAYBE_UNUSED static const gi_profile_t h100_80gb[] = {
  /* index            id  name         slc inst  SMs  CE dec enc jpg ofa  MiB */
  { GI_1_SLICE,       19, "1g.10gb",    1,  7,   16,  1,  1,  0,  1,  0,  9984 },
  { GI_2_SLICE,       14, "2g.20gb",    2,  3,   32,  2,  2,  0,  2,  0, 20096 },
  { GI_3_SLICE,        9, "3g.40gb",    3,  2,   60,  3,  3,  0,  3,  0, 40448 },
  { GI_4_SLICE,        5, "4g.40gb",    4,  1,   64,  4,  4,  0,  4,  0, 40448 },
  { GI_7_SLICE,        0, "7g.80gb",    7,  1,  132,  8,  7,  0,  7,  1, 81152 },
  { GI_1_SLICE_REV1,  20, "1g.10gb+me", 1,  1,   16,  1,  1,  0,  1,  1,  9984 },
  { GI_1_SLICE_REV2,  15, "1g.20gb",    1,  4,   26,  1,  1,  0,  1,  0, 20096 },
};

/* H200 141GB: the H100 layout with more memory per slice */
MAYBE_UNUSED static const gi_profile_t h200_141gb[] = {
  { GI_1_SLICE,       19, "1g.18gb",     1,  7,   16,  1,  1,  0,  1,  0,  17920 },
  { GI_2_SLICE,       14, "2g.35gb",     2,  3,   32,  2,  2,  0,  2,  0,  35584 },
  { GI_3_SLICE,        9, "3g.71gb",     3,  2,   60,  3,  3,  0,  3,  0,  71424 },
  { GI_4_SLICE,        5, "4g.71gb",     4,  1,   64,  4,  4,  0,  4,  0,  71424 },
  { GI_7_SLICE,        0, "7g.141gb",    7,  1,  132,  8,  7,  0,  7,  1, 143104 },
  { GI_1_SLICE_REV1,  20, "1g.18gb+me",  1,  1,   16,  1,  1,  0,  1,  1,  17920 },
  { GI_1_SLICE_REV2,  15, "1g.35gb",     1,  4,   26,  1,  1,  0,  1,  0,  35584 },
};

/* A100 80GB: 7 compute slices, 98 SMs in MIG mode (of 108) */
MAYBE_UNUSED static const gi_profile_t a100_80gb[] = {
  { GI_1_SLICE,       19, "1g.10gb",    1,  7,   14,  1,  0,  0,  0,  0,  9728 },
  { GI_2_SLICE,       14, "2g.20gb",    2,  3,   28,  2,  1,  0,  0,  0, 19968 },
  { GI_3_SLICE,        9, "3g.40gb",    3,  2,   42,  3,  2,  0,  0,  0, 40192 },
  { GI_4_SLICE,        5, "4g.40gb",    4,  1,   56,  4,  2,  0,  0,  0, 40192 },
  { GI_7_SLICE,        0, "7g.80gb",    7,  1,   98,  7,  5,  0,  1,  1, 80640 },
  { GI_1_SLICE_REV1,  20, "1g.10gb+me", 1,  1,   14,  1,  1,  0,  1,  1,  9728 },
  { GI_1_SLICE_REV2,  15, "1g.20gb",    1,  4,   14,  1,  1,  0,  0,  0, 19968 },
};

/* A100 40GB */
MAYBE_UNUSED static const gi_profile_t a100_40gb[] = {
  { GI_1_SLICE,       19, "1g.5gb",     1,  7,   14,  1,  0,  0,  0,  0,  4864 },
  { GI_2_SLICE,       14, "2g.10gb",    2,  3,   28,  2,  1,  0,  0,  0,  9984 },
  { GI_3_SLICE,        9, "3g.20gb",    3,  2,   42,  3,  2,  0,  0,  0, 20096 },
  { GI_4_SLICE,        5, "4g.20gb",    4,  1,   56,  4,  2,  0,  0,  0, 20096 },
  { GI_7_SLICE,        0, "7g.40gb",    7,  1,   98,  7,  5,  0,  1,  1, 40192 },
  { GI_1_SLICE_REV1,  20, "1g.5gb+me",  1,  1,   14,  1,  1,  0,  1,  1,  4864 },
  { GI_1_SLICE_REV2,  15, "1g.10gb",    1,  4,   14,  1,  1,  0,  0,  0,  9984 },
};

/* A30 24GB: 4 compute slices, 56 SMs */
MAYBE_UNUSED static const gi_profile_t a30_24gb[] = {
  { GI_1_SLICE,       14, "1g.6gb",     1,  4,   14,  1,  0,  0,  0,  0,  5952 },
  { GI_2_SLICE,        5, "2g.12gb",    2,  2,   28,  2,  1,  0,  0,  0, 12032 },
  { GI_4_SLICE,        0, "4g.24gb",    4,  1,   56,  4,  2,  0,  1,  1, 24192 },
  { GI_1_SLICE_REV1,  21, "1g.6gb+me",  1,  1,   14,  1,  1,  0,  1,  1,  5952 },
  { GI_2_SLICE_REV1,   6, "2g.12gb+me", 2,  1,   28,  2,  1,  0,  1,  1, 12032 },
};

typedef struct {
  const char *token;          /* a whole word of the NVML name ("NVIDIA H100 80GB HBM3": "H100") */
  double min_mib, max_mib;    /* mem_total, MiB */
  const gi_profile_t *profiles;
  size_t count;
} gi_model_t;

#define GI_MODEL(token, lo, hi, table) { token, lo, hi, table, sizeof table / sizeof *table }
MAYBE_UNUSED static const gi_model_t gi_models[] = {
  /*        token   mem_total MiB       profiles */
  GI_MODEL("H100",   73728,  90112,  h100_80gb),   /* 81559 MiB (80GB HBM3, PCIe) */
  GI_MODEL("H200",  133120, 153600,  h200_141gb),  /* 143771 MiB */
  GI_MODEL("A100",   73728,  90112,  a100_80gb),   /* 81920 MiB */
  GI_MODEL("A100",   36864,  45056,  a100_40gb),   /* 40960 MiB */
  GI_MODEL("A30",    22528,  26624,  a30_24gb),    /* 24576 MiB */
};
#undef GI_MODEL

/* Whether `token` is a whole word of `name`: not inside a longer one ("A30" is not "A3000"). */
MAYBE_UNUSED static int has_word(const char *name, const char *token) {
  size_t n = strlen(token);
  for (const char *p = strstr(name, token); p; p = strstr(p + 1, token)) {
    int starts = p == name || !isalnum((unsigned char)p[-1]);
    int ends = !isalnum((unsigned char)p[n]);
    if (starts && ends) return 1;
  }
  return 0;
}

/* The profile table of a GPU's model, or NULL for a model the simulator does not know. Holds mu. */
MAYBE_UNUSED static const gi_model_t *gi_model_of(int gpu) {
  double total;
  if (gpu_num(gpu, K_mem_total, &total)) return NULL;
  double mib = total / 1048576.0;
  for (size_t i = 0; i < sizeof gi_models / sizeof *gi_models; i++) {
    const gi_model_t *m = &gi_models[i];
    if (has_word(st->gpu[gpu].name, m->token) && mib >= m->min_mib && mib <= m->max_mib) return m;
  }
  return NULL;
}

/* INVALID_ARGUMENT for a NULL info, ARGUMENT_VERSION_MISMATCH unless info->version is the v2
 * constant, INVALID_ARGUMENT for a profile at or past NVML_GPU_INSTANCE_PROFILE_COUNT and for a
 * MIG handle; NOT_SUPPORTED while MIG mode is off, for a model the table lacks and for a profile
 * its model has not. */
#ifndef KGE_OMIT_nvmlDeviceGetGpuInstanceProfileInfoV
EXPORT nvmlReturn_t nvmlDeviceGetGpuInstanceProfileInfoV(void *device, unsigned int profile, nvmlGpuInstanceProfileInfo_v2_t *info) {
  BEGIN(device);
  if (!info) return NVML_ERROR_INVALID_ARGUMENT;
  if (info->version != NVML_GPU_INSTANCE_PROFILE_INFO_V2_VERSION) return NVML_ERROR_ARGUMENT_VERSION_MISMATCH;
  if (profile >= NVML_GPU_INSTANCE_PROFILE_COUNT) return NVML_ERROR_INVALID_ARGUMENT;
  const handle_t *h = H(device);
  if (h->mig >= 0) return NVML_ERROR_INVALID_ARGUMENT;
  const gi_profile_t *p = NULL;
  LOCK();
  const gi_model_t *m = mig_enabled(h->gpu) ? gi_model_of(h->gpu) : NULL;
  for (size_t i = 0; m && i < m->count && !p; i++) if (m->profiles[i].index == profile) p = &m->profiles[i];
  UNLOCK();
  if (!p) return NVML_ERROR_NOT_SUPPORTED;
  memset(info, 0, sizeof *info);
  info->version = NVML_GPU_INSTANCE_PROFILE_INFO_V2_VERSION;
  info->id = p->id;
  info->isP2pSupported = 0;
  info->sliceCount = p->slices;
  info->instanceCount = p->instances;
  info->multiprocessorCount = p->sms;
  info->copyEngineCount = p->copy_engines;
  info->decoderCount = p->decoders;
  info->encoderCount = p->encoders;
  info->jpegCount = p->jpegs;
  info->ofaCount = p->ofas;
  info->memorySizeMB = p->mib;
  snprintf(info->name, sizeof info->name, "MIG %s", p->name);
  return NVML_SUCCESS;
}
#endif
