/* kube-gpu-exporter simulated NVML: nvmlDeviceGetFieldValues, served from one table.
 *
 * Adding a field id is one row of field_table below: the id (NVML_FI_DEV_*), the scenario key it
 * reads (a GPU_NUM_KEYS entry), the value type it answers, how the key's value is converted and
 * any special handling. Every field is per physical GPU: each entry of a MIG handle's request is
 * NOT_SUPPORTED; so is an id without a row and a row whose key the scenario leaves out. */
#include "nvml_sim.h"

#define FV_ALL_LINKS 0xFFFFFFFFu      /* NVLink scopeId: the sum over all links */

/* How a key's value becomes the field's value (of the row's value type). */
typedef enum {
  FV_CAST,     /* a plain C cast, as the getters of gauges convert (e.g. (unsigned int)v) */
  FV_COUNTER,  /* u64_of(v): negative reads 0, large values saturate; then the value type's width */
  FV_FLAG,     /* v != 0 */
} fv_conv_t;

typedef enum {
  FV_PLAIN,           /* the key's value */
  FV_ENERGY,          /* not the key itself: power_mw integrated over time from energy_start_mj (energy_of) */
  FV_PER_LINK,        /* NVLink throughput: scopeId FV_ALL_LINKS gives the value; a link index below
                       * nvlink_links an even share of it (floor(value / links)); any other scope, or
                       * nvlink_links left out, INVALID_ARGUMENT in that entry */
  FV_NOT_IN_MIG_MODE, /* NOT_SUPPORTED while the GPU has mig_mode 1 (remapped rows) */
} fv_special_t;

typedef struct {
  unsigned int id;
  int key;                    /* K_<scenario key> */
  int type;                   /* NVML_VALUE_TYPE_* the entry answers */
  fv_conv_t conv;
  fv_special_t special;
} field_row_t;

#define UINT NVML_VALUE_TYPE_UNSIGNED_INT
#define ULONG NVML_VALUE_TYPE_UNSIGNED_LONG
#define ULL NVML_VALUE_TYPE_UNSIGNED_LONG_LONG

MAYBE_UNUSED static const field_row_t field_table[] = {
  /* id   key                      type   conv        special */
  {   3, K_ecc_sbe_vol,            ULL,   FV_COUNTER, FV_PLAIN },            /* ECC_SBE_VOL_TOTAL */
  {   4, K_ecc_dbe_vol,            ULL,   FV_COUNTER, FV_PLAIN },            /* ECC_DBE_VOL_TOTAL */
  {   5, K_ecc_sbe_agg,            ULL,   FV_COUNTER, FV_PLAIN },            /* ECC_SBE_AGG_TOTAL */
  {   6, K_ecc_dbe_agg,            ULL,   FV_COUNTER, FV_PLAIN },            /* ECC_DBE_AGG_TOTAL */
  {  29, K_retired_sbe,            ULONG, FV_COUNTER, FV_PLAIN },            /* RETIRED_SBE */
  {  30, K_retired_dbe,            ULONG, FV_COUNTER, FV_PLAIN },            /* RETIRED_DBE */
  {  31, K_retired_pending,        UINT,  FV_FLAG,    FV_PLAIN },            /* RETIRED_PENDING */
  {  38, K_nvlink_crc_flit,        ULL,   FV_COUNTER, FV_PLAIN },            /* NVLINK_CRC_FLIT_ERROR_COUNT_TOTAL */
  {  45, K_nvlink_crc_data,        ULL,   FV_COUNTER, FV_PLAIN },            /* NVLINK_CRC_DATA_ERROR_COUNT_TOTAL */
  {  52, K_nvlink_replay,          ULL,   FV_COUNTER, FV_PLAIN },            /* NVLINK_REPLAY_ERROR_COUNT_TOTAL */
  {  59, K_nvlink_recovery,        ULL,   FV_COUNTER, FV_PLAIN },            /* NVLINK_RECOVERY_ERROR_COUNT_TOTAL */
  {  82, K_temp_mem,               UINT,  FV_CAST,    FV_PLAIN },            /* MEMORY_TEMP */
  {  83, K_power_mw,               ULL,   FV_COUNTER, FV_ENERGY },           /* TOTAL_ENERGY_CONSUMPTION (mJ) */
  {  91, K_nvlink_links,           UINT,  FV_COUNTER, FV_PLAIN },            /* NVLINK_LINK_COUNT */
  {  94, K_pcie_replay,            ULL,   FV_COUNTER, FV_PLAIN },            /* PCIE_REPLAY_COUNTER */
  { 138, K_nvlink_tx_kib,          ULL,   FV_COUNTER, FV_PER_LINK },         /* NVLINK_THROUGHPUT_DATA_TX (KiB) */
  { 139, K_nvlink_rx_kib,          ULL,   FV_COUNTER, FV_PER_LINK },         /* NVLINK_THROUGHPUT_DATA_RX (KiB) */
  { 142, K_remap_correctable,      UINT,  FV_COUNTER, FV_NOT_IN_MIG_MODE },  /* REMAPPED_COR */
  { 143, K_remap_uncorrectable,    UINT,  FV_COUNTER, FV_NOT_IN_MIG_MODE },  /* REMAPPED_UNC */
  { 144, K_remap_pending,          UINT,  FV_COUNTER, FV_NOT_IN_MIG_MODE },  /* REMAPPED_PENDING */
  { 145, K_remap_failure,          UINT,  FV_COUNTER, FV_NOT_IN_MIG_MODE },  /* REMAPPED_FAILURE */
  { 185, K_power_mw,               UINT,  FV_CAST,    FV_PLAIN },            /* POWER_AVERAGE (mW) */
  { 186, K_power_mw,               UINT,  FV_CAST,    FV_PLAIN },            /* POWER_INSTANT (mW) */
};
#define FIELD_ROWS (sizeof field_table / sizeof *field_table)

#undef UINT
#undef ULONG
#undef ULL

MAYBE_UNUSED static const field_row_t *field_row(unsigned int id) {
  for (size_t i = 0; i < FIELD_ROWS; i++) if (field_table[i].id == id) return &field_table[i];
  return NULL;
}

/* A successful entry: the value in the row's type, converted as the row says. */
MAYBE_UNUSED static void put_value(nvmlFieldValue_t *f, const field_row_t *r, double v) {
  switch (r->type) {
  case NVML_VALUE_TYPE_UNSIGNED_INT:
    f->value.ui = r->conv == FV_FLAG ? v != 0 : r->conv == FV_COUNTER ? (unsigned int)u64_of(v) : (unsigned int)v;
    break;
  case NVML_VALUE_TYPE_UNSIGNED_LONG:
    f->value.ul = r->conv == FV_FLAG ? v != 0 : r->conv == FV_COUNTER ? (unsigned long)u64_of(v) : (unsigned long)v;
    break;
  case NVML_VALUE_TYPE_UNSIGNED_LONG_LONG:
    f->value.ull = r->conv == FV_FLAG ? v != 0 : r->conv == FV_COUNTER ? u64_of(v) : (unsigned long long)v;
    break;
  default: /* not in the table */
    return;
  }
  f->valueType = r->type;
  f->nvmlReturn = NVML_SUCCESS;
}

/* Fills one entry of a physical GPU from its row; f->nvmlReturn is NOT_SUPPORTED on entry and
 * stays so (valueType and value untouched) unless the row answers. Holds mu. */
MAYBE_UNUSED static void read_field(int gpu, const field_row_t *r, nvmlFieldValue_t *f) {
  double v;
  if (r->special == FV_ENERGY) {
    unsigned long long mj;
    if (!energy_of(gpu, &mj)) { f->valueType = r->type; f->value.ull = mj; f->nvmlReturn = NVML_SUCCESS; }
    return;
  }
  if (r->special == FV_NOT_IN_MIG_MODE && mig_enabled(gpu)) return;
  if (gpu_num(gpu, r->key, &v)) return;
  if (r->special == FV_PER_LINK && f->scopeId != FV_ALL_LINKS) {
    /* one link: an even share of the total */
    double links = 0;
    if (gpu_num(gpu, K_nvlink_links, &links) || f->scopeId >= (unsigned int)links) { f->nvmlReturn = NVML_ERROR_INVALID_ARGUMENT; return; }
    v = floor(u64_of(v) / links);
  }
  put_value(f, r, v);
}

#ifndef KGE_OMIT_nvmlDeviceGetFieldValues
EXPORT nvmlReturn_t nvmlDeviceGetFieldValues(void *device, int count, nvmlFieldValue_t *values) {
  BEGIN(device);
  if (count < 0 || (count > 0 && !values)) return NVML_ERROR_INVALID_ARGUMENT;
  const handle_t *h = H(device);
  struct timespec ts; clock_gettime(CLOCK_REALTIME, &ts);
  long long us = (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
  LOCK();
  for (int i = 0; i < count; i++) {
    nvmlFieldValue_t *f = &values[i];
    f->timestamp = us; f->latencyUsec = 0;
    f->nvmlReturn = NVML_ERROR_NOT_SUPPORTED;
    if (h->mig >= 0) continue;
    const field_row_t *r = field_row(f->fieldId);
    if (r) read_field(h->gpu, r, f);
  }
  UNLOCK();
  return NVML_SUCCESS;
}
#endif
