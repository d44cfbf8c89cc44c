/*
 * kube-gpu-exporter: a simulated libnvidia-ml.so.1.
 *
 * Exports the NVML symbols the exporter binds, with the same C ABI (x86-64 LP64 struct
 * layouts, return codes), driven by a scenario file named by KGE_SIM_STATE. The file is
 * re-read when it changes, so tests can move values, inject errors and latency while an
 * exporter runs. Format: docs/simulator.md. Any exported function can be compiled out
 * with -DKGE_OMIT_<symbol> to imitate an older driver.
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define EXPORT __attribute__((visibility("default")))
/* helpers whose only callers may all be compiled out (-DKGE_OMIT_...) */
#define MAYBE_UNUSED __attribute__((unused))

typedef int nvmlReturn_t;
enum {
  NVML_SUCCESS = 0, NVML_ERROR_UNINITIALIZED = 1, NVML_ERROR_INVALID_ARGUMENT = 2,
  NVML_ERROR_NOT_SUPPORTED = 3, NVML_ERROR_NOT_FOUND = 6, NVML_ERROR_INSUFFICIENT_SIZE = 7,
  NVML_ERROR_DRIVER_NOT_LOADED = 9, NVML_ERROR_TIMEOUT = 10, NVML_ERROR_GPU_IS_LOST = 15,
  NVML_ERROR_MEMORY = 20, NVML_ERROR_INSUFFICIENT_RESOURCES = 23,
  NVML_ERROR_ARGUMENT_VERSION_MISMATCH = 25, NVML_ERROR_UNKNOWN = 999
};

#define MAX_GPUS 16
#define MAX_MIG 7
#define MAX_PROCS 256
#define MAX_RULES 128
#define MAX_STEPS 32
#define MAX_EVENTS 256                /* event lines per scenario */
#define MAX_EVSETS 64                 /* event sets alive at once */
#define EVENT_POLL_MS 50              /* how often a blocked nvmlEventSetWait_v2 looks for a changed file or fault */
#define NOT_MIG 0xFFFFFFFFu
#define NVML_VALUE_NOT_AVAILABLE_ULL 0xFFFFFFFFFFFFFFFFull
#define PROC_UTIL_DEPTH 120           /* samples per process the simulated driver keeps */
#define PROC_UTIL_DEFAULT_PERIOD_MS 167

/* ---- value specs -------------------------------------------------------------------- */
typedef enum { V_UNSET = 0, V_CONST, V_WALK, V_STEPS, V_CYCLE, V_LINEAR } vkind_t;
typedef struct {
  vkind_t kind;
  double c;                            /* V_CONST; V_LINEAR: the value at t = 0 */
  double per_s;                        /* V_LINEAR: growth per second of scenario time */
  uint64_t seed; double min, max, step, period_ms; /* V_WALK */
  int nsteps; double at[MAX_STEPS], val[MAX_STEPS]; double cycle_ms; /* V_STEPS / V_CYCLE */
} vspec_t;

typedef struct { int64_t n; double v; int valid; } walk_cache_t;

/* numeric per-GPU keys */
#define GPU_NUM_KEYS(X) \
  X(pci_device_id) X(pci_subsystem_id) X(minor) X(mem_total) X(mem_reserved) X(mem_used) \
  X(util_gpu) X(util_mem) X(enc_util) X(dec_util) X(temp_gpu) X(temp_mem) X(power_mw) \
  X(power_limit_mw) X(energy_start_mj) X(clock_graphics) X(clock_sm) X(clock_mem) X(clock_video) \
  X(max_clock_graphics) X(max_clock_sm) X(max_clock_mem) X(max_clock_video) X(fan) X(pstate) \
  X(pcie_tx_kbps) X(pcie_rx_kbps) X(clocks_event_reasons) X(mig_mode) X(proc_util_period_ms) \
  X(ecc_sbe_vol) X(ecc_dbe_vol) X(ecc_sbe_agg) X(ecc_dbe_agg) \
  X(retired_sbe) X(retired_dbe) X(retired_pending) \
  X(remap_correctable) X(remap_uncorrectable) X(remap_pending) X(remap_failure) \
  X(pcie_replay) X(nvlink_links) X(nvlink_crc_flit) X(nvlink_crc_data) X(nvlink_replay) X(nvlink_recovery) \
  X(nvlink_tx_kib) X(nvlink_rx_kib) X(violation_power_ns) X(violation_thermal_ns) X(events_supported) \
  X(gpm_supported) GPM_INSTANCE_KEYS(X) GPM_DEVICE_KEYS(X)
/* GPM metrics (percent) a GPU and each of its MIG instances have */
#define GPM_INSTANCE_KEYS(X) \
  X(gpm_gr_active) X(gpm_sm_active) X(gpm_sm_occupancy) X(gpm_int_active) X(gpm_tensor_active) \
  X(gpm_dfma_tensor_active) X(gpm_hmma_tensor_active) X(gpm_imma_tensor_active) X(gpm_dram_active) \
  X(gpm_fp64_active) X(gpm_fp32_active) X(gpm_fp16_active)
/* GPM metrics (MiB/s) only a whole GPU has */
#define GPM_DEVICE_KEYS(X) X(gpm_pcie_tx_mibps) X(gpm_pcie_rx_mibps) X(gpm_nvlink_tx_mibps) X(gpm_nvlink_rx_mibps)
#define X_ENUM(k) K_##k,
enum { GPU_NUM_KEYS(X_ENUM) K_COUNT };
#define X_NAME(k) #k,
static const char *gpu_key_names[] = { GPU_NUM_KEYS(X_NAME) };

#define MIG_NUM_KEYS(X) X(gi) X(ci) X(mem_total) X(mem_reserved) X(mem_used) GPM_INSTANCE_KEYS(X)
#define X_MIG_ENUM(k) M_##k,
enum { MIG_NUM_KEYS(X_MIG_ENUM) M_COUNT };
static const char *mig_key_names[] = { MIG_NUM_KEYS(X_NAME) };

typedef struct {
  int defined;
  char uuid[96], profile[32];
  vspec_t num[M_COUNT];
} mig_cfg_t;

typedef struct {
  char name[96], uuid[96], serial[32], pci_bus_id[32];
  int has_name, has_uuid, has_serial, has_pci;
  vspec_t num[K_COUNT];
  mig_cfg_t mig[MAX_MIG];
} gpu_cfg_t;

/* per-process utilization keys (percent), sampled by nvmlDeviceGetProcessUtilization */
enum { P_sm, P_mem_util, P_enc, P_dec, P_COUNT };
static const char *proc_util_key_names[] = { "sm", "mem_util", "enc", "dec" };

typedef struct {
  int defined; int gpu; uint32_t pid; double mem; int gi, ci; int has_gi, has_ci, has_mem;
  vspec_t util[P_COUNT];
} proc_cfg_t;

typedef struct {
  int is_latency; char fn[96]; int gpu; /* -1 = any */
  long value; double from_ms, until_ms;
} rule_t;

/* One `event` line: fires at scenario time `at` on GPU `gpu`. Everything but `line` is its identity,
 * so a reload that keeps the line keeps the event (and what each event set already got of it). */
typedef struct {
  int gpu; unsigned long long type, data; double at; unsigned int gi, ci;
  int dup;  /* how many identical lines come before this one (identical lines are distinct events) */
  int line; /* order in the file: ties at the same time are delivered in file order */
} event_cfg_t;

typedef struct {
  char driver_version[80], nvml_version[80];
  int cuda_version, has_cuda;
  int device_count;
  gpu_cfg_t gpu[MAX_GPUS];
  gpu_cfg_t defaults;
  int per_gpu_set[MAX_GPUS][K_COUNT]; /* a per-GPU line wins over gpu.* */
  proc_cfg_t proc[MAX_PROCS];
  rule_t rule[MAX_RULES]; int nrules;
  event_cfg_t event[MAX_EVENTS]; int nevents;
} state_t;

/* ---- handles ------------------------------------------------------------------------ */
typedef struct { int gpu; int mig; /* -1 = physical GPU */ } handle_t;
static handle_t gpu_handles[MAX_GPUS];
static handle_t mig_handles[MAX_GPUS][MAX_MIG];

/* ---- global state ------------------------------------------------------------------- */
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static state_t *st;                 /* current state, guarded by mu */
static int init_count;
static char state_path[4096];
static struct timespec state_mtime; static off_t state_size;
static double last_stat_ms;
static double epoch_ms = -1;        /* first successful nvmlInit of the process */
static walk_cache_t walk_cache[MAX_GPUS][K_COUNT];
static walk_cache_t mig_walk_cache[MAX_GPUS][MAX_MIG][M_COUNT];
MAYBE_UNUSED static walk_cache_t proc_walk_cache[MAX_PROCS][P_COUNT];
static long long epoch_realtime_us;  /* wall clock at epoch_ms: base of process utilization timestamps */
static double energy_mj[MAX_GPUS]; static double energy_at_ms[MAX_GPUS]; static int energy_init[MAX_GPUS];
static char last_reload_error[512];

static double now_ms(void) {
  struct timespec ts; clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1000.0 + ts.tv_nsec / 1e6;
}
static double t_ms(void) { return epoch_ms < 0 ? 0 : now_ms() - epoch_ms; }

/* ---- parsing ------------------------------------------------------------------------ */
typedef struct { const char *file; int line; char msg[400]; } perr_t;

static int fail(perr_t *e, const char *fmt, ...) {
  va_list ap; va_start(ap, fmt); vsnprintf(e->msg, sizeof e->msg, fmt, ap); va_end(ap);
  return -1;
}

static char *trim(char *s) {
  while (isspace((unsigned char)*s)) s++;
  char *end = s + strlen(s);
  while (end > s && isspace((unsigned char)end[-1])) *--end = 0;
  return s;
}

/* A number: decimal, hex (0x), optional MiB/GiB/KiB suffix. */
static int parse_number(const char *s, double *out) {
  char *end; errno = 0;
  double v;
  while (isspace((unsigned char)*s)) s++;
  if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) v = (double)strtoull(s, &end, 16);
  else v = strtod(s, &end);
  if (end == s || errno) return -1;
  while (isspace((unsigned char)*end)) end++;
  if (!strcmp(end, "KiB")) v *= 1024.0;
  else if (!strcmp(end, "MiB")) v *= 1048576.0;
  else if (!strcmp(end, "GiB")) v *= 1073741824.0;
  else if (*end) return -1;
  if (!isfinite(v)) return -1;
  *out = v;
  return 0;
}

static int parse_pairs(char *list, vspec_t *v, perr_t *e) {
  v->nsteps = 0;
  for (char *tok = strtok(list, ","); tok; tok = strtok(NULL, ",")) {
    char *colon = strchr(tok, ':');
    if (!colon) return fail(e, "expected t_ms:value in '%s'", trim(tok));
    *colon = 0;
    if (v->nsteps >= MAX_STEPS) return fail(e, "more than %d steps", MAX_STEPS);
    if (parse_number(tok, &v->at[v->nsteps]) || parse_number(colon + 1, &v->val[v->nsteps]))
      return fail(e, "bad number in step '%s:%s'", trim(tok), trim(colon + 1));
    if (v->nsteps && v->at[v->nsteps] < v->at[v->nsteps - 1]) return fail(e, "step times must increase");
    v->nsteps++;
  }
  if (!v->nsteps) return fail(e, "no steps given");
  return 0;
}

static int parse_vspec(const char *raw, vspec_t *v, perr_t *e) {
  char buf[1024]; snprintf(buf, sizeof buf, "%s", raw);
  char *s = trim(buf);
  memset(v, 0, sizeof *v);
  if (!strncmp(s, "linear(", 7)) {
    size_t n = strlen(s);
    if (s[n - 1] != ')') return fail(e, "missing ')' in '%s'", s);
    s[n - 1] = 0;
    char *args = s + 7, *comma = strchr(args, ',');
    if (!comma || strchr(comma + 1, ',')) return fail(e, "linear() takes start,per_second");
    *comma = 0;
    if (parse_number(args, &v->c) || parse_number(comma + 1, &v->per_s)) return fail(e, "linear() takes start,per_second");
    v->kind = V_LINEAR;
    return 0;
  }
  if (!strncmp(s, "walk(", 5) || !strncmp(s, "steps(", 6) || !strncmp(s, "cycle(", 6)) {
    size_t n = strlen(s);
    if (s[n - 1] != ')') return fail(e, "missing ')' in '%s'", s);
    s[n - 1] = 0;
    char *args = strchr(s, '(') + 1;
    if (!strncmp(s, "walk(", 5)) {
      double a[5]; int i = 0;
      for (char *tok = strtok(args, ","); tok; tok = strtok(NULL, ",")) {
        if (i >= 5 || parse_number(tok, &a[i])) return fail(e, "walk() takes seed,min,max,step,period_ms");
        i++;
      }
      if (i != 5) return fail(e, "walk() takes seed,min,max,step,period_ms");
      if (a[1] > a[2]) return fail(e, "walk(): min > max");
      if (a[4] <= 0) return fail(e, "walk(): period_ms must be > 0");
      v->kind = V_WALK; v->seed = (uint64_t)a[0]; v->min = a[1]; v->max = a[2]; v->step = a[3]; v->period_ms = a[4];
      return 0;
    }
    if (!strncmp(s, "steps(", 6)) { v->kind = V_STEPS; return parse_pairs(args, v, e); }
    char *comma = strchr(args, ',');
    if (!comma) return fail(e, "cycle() takes period_ms,t:v,...");
    *comma = 0;
    if (parse_number(args, &v->cycle_ms) || v->cycle_ms <= 0) return fail(e, "cycle(): bad period '%s'", args);
    v->kind = V_CYCLE;
    return parse_pairs(comma + 1, v, e);
  }
  if (parse_number(s, &v->c)) return fail(e, "bad number '%s'", s);
  v->kind = V_CONST;
  return 0;
}

/* A key's value. GPM metric keys also take nan, inf and -inf: what the driver then reports,
 * with SUCCESS, so callers' handling of non-finite values can be tested. */
static int parse_value(const char *key, const char *raw, vspec_t *v, perr_t *e) {
  static const struct { const char *text; double value; } specials[] = { { "nan", NAN }, { "inf", INFINITY }, { "-inf", -INFINITY } };
  if (!strncmp(key, "gpm_", 4) && strcmp(key, "gpm_supported")) {
    for (size_t i = 0; i < sizeof specials / sizeof *specials; i++) {
      if (strcmp(raw, specials[i].text)) continue;
      memset(v, 0, sizeof *v);
      v->kind = V_CONST; v->c = specials[i].value;
      return 0;
    }
  }
  return parse_vspec(raw, v, e);
}

static int parse_index(const char *s, int max, int *out) {
  char *end; long v = strtol(s, &end, 10);
  if (end == s || *end || v < 0 || v >= max) return -1;
  *out = (int)v; return 0;
}

static int set_str(char *dst, size_t n, const char *v, perr_t *e, const char *key) {
  if (strlen(v) >= n) return fail(e, "%s is longer than %zu characters", key, n - 1);
  snprintf(dst, n, "%s", v); return 0;
}

static int parse_gpu_key(state_t *s, gpu_cfg_t *g, int gidx, const char *key, const char *val, perr_t *e) {
  if (!strcmp(key, "name")) { g->has_name = 1; return set_str(g->name, sizeof g->name, val, e, key); }
  if (!strcmp(key, "uuid")) { g->has_uuid = 1; return set_str(g->uuid, sizeof g->uuid, val, e, key); }
  if (!strcmp(key, "serial")) { g->has_serial = 1; return set_str(g->serial, sizeof g->serial, val, e, key); }
  if (!strcmp(key, "pci_bus_id")) {
    unsigned d, b, dev, f;
    if (sscanf(val, "%x:%x:%x.%x", &d, &b, &dev, &f) != 4) return fail(e, "pci_bus_id must look like 00000000:18:00.0");
    g->has_pci = 1; return set_str(g->pci_bus_id, sizeof g->pci_bus_id, val, e, key);
  }
  if (!strncmp(key, "mig.", 4)) {
    char tmp[128]; snprintf(tmp, sizeof tmp, "%s", key + 4);
    char *dot = strchr(tmp, '.');
    int slot;
    if (!dot) return fail(e, "expected mig.<slot>.<key>");
    *dot = 0;
    if (parse_index(tmp, MAX_MIG, &slot)) return fail(e, "MIG slot '%s' out of range 0-%d", tmp, MAX_MIG - 1);
    const char *mk = dot + 1;
    mig_cfg_t *m = &g->mig[slot];
    m->defined = 1;
    if (!strcmp(mk, "uuid")) return set_str(m->uuid, sizeof m->uuid, val, e, mk);
    if (!strcmp(mk, "profile")) return set_str(m->profile, sizeof m->profile, val, e, mk);
    for (int i = 0; i < M_COUNT; i++)
      if (!strcmp(mk, mig_key_names[i])) return parse_value(mk, val, &m->num[i], e);
    return fail(e, "unknown MIG key '%s'", mk);
  }
  for (int i = 0; i < K_COUNT; i++) {
    if (!strcmp(key, gpu_key_names[i])) {
      if (gidx >= 0) s->per_gpu_set[gidx][i] = 1;
      else {
        /* a default never overrides a per-GPU line, whatever the order */
        for (int j = 0; j < MAX_GPUS; j++) if (!s->per_gpu_set[j][i]) {
          if (parse_value(key, val, &s->gpu[j].num[i], e)) return -1;
          if (s->gpu[j].num[i].kind == V_WALK) s->gpu[j].num[i].seed += (uint64_t)j;
        }
      }
      return parse_value(key, val, &g->num[i], e);
    }
  }
  return fail(e, "unknown GPU key '%s'", key);
}

static int parse_rule(state_t *s, char *args, int is_latency, perr_t *e) {
  char *tok[5]; int n = 0;
  for (char *t = strtok(args, " \t"); t && n < 5; t = strtok(NULL, " \t")) tok[n++] = t;
  if (n < 3) return fail(e, "%s needs: <function|*> <gpu|*> <%s> [from_ms [until_ms]]", is_latency ? "latency" : "fault", is_latency ? "ms" : "code");
  if (s->nrules >= MAX_RULES) return fail(e, "more than %d fault/latency rules", MAX_RULES);
  rule_t *r = &s->rule[s->nrules];
  memset(r, 0, sizeof *r);
  r->is_latency = is_latency;
  if (strlen(tok[0]) >= sizeof r->fn) return fail(e, "function name too long");
  snprintf(r->fn, sizeof r->fn, "%s", tok[0]);
  if (!strcmp(tok[1], "*")) r->gpu = -1;
  else if (parse_index(tok[1], MAX_GPUS, &r->gpu)) return fail(e, "bad GPU index '%s'", tok[1]);
  double v;
  if (parse_number(tok[2], &v) || v < 0) return fail(e, "bad %s '%s'", is_latency ? "latency" : "code", tok[2]);
  r->value = (long)v;
  r->from_ms = 0; r->until_ms = INFINITY;
  if (n > 3 && parse_number(tok[3], &r->from_ms)) return fail(e, "bad from_ms '%s'", tok[3]);
  if (n > 4 && parse_number(tok[4], &r->until_ms)) return fail(e, "bad until_ms '%s'", tok[4]);
  s->nrules++;
  return 0;
}

static const struct { const char *name; unsigned long long bit; } event_type_names[] = {
  { "sbe", 0x1 }, { "dbe", 0x2 }, { "pstate", 0x4 }, { "xid", 0x8 }, { "clock", 0x10 },
  { "mig_config_change", 0x100 }, { "gpu_unavailable", 0x4000 }, { "gpu_recovery_action", 0x8000 },
};

static int parse_u64(const char *tok, unsigned long long *out) {
  double v;
  if (parse_number(tok, &v) || v < 0 || v != floor(v) || v > 18446744073709549568.0) return -1;
  *out = (unsigned long long)v;
  return 0;
}

/* event <gpu> <type> <data> <at_ms> [<gi> <ci>] */
static int parse_event(state_t *s, char *args, int line, perr_t *e) {
  char *tok[8]; int n = 0;
  for (char *t = strtok(args, " \t"); t && n < 8; t = strtok(NULL, " \t")) tok[n++] = t;
  if (n != 4 && n != 6) return fail(e, "event needs: <gpu> <type> <data> <at_ms> [<gi> <ci>]");
  if (s->nevents >= MAX_EVENTS) return fail(e, "more than %d event lines", MAX_EVENTS);
  event_cfg_t *ev = &s->event[s->nevents];
  memset(ev, 0, sizeof *ev);
  if (parse_index(tok[0], MAX_GPUS, &ev->gpu)) return fail(e, "bad GPU index '%s'", tok[0]);
  ev->type = 0;
  for (size_t i = 0; i < sizeof event_type_names / sizeof *event_type_names; i++)
    if (!strcmp(tok[1], event_type_names[i].name)) ev->type = event_type_names[i].bit;
  if (!ev->type && (parse_u64(tok[1], &ev->type) || !ev->type))
    return fail(e, "bad event type '%s' (xid, sbe, dbe, gpu_unavailable, pstate, clock, mig_config_change, gpu_recovery_action or a bit)", tok[1]);
  if (parse_u64(tok[2], &ev->data)) return fail(e, "bad event data '%s'", tok[2]);
  if (parse_number(tok[3], &ev->at) || ev->at < 0) return fail(e, "bad event time '%s'", tok[3]);
  ev->gi = ev->ci = NOT_MIG;
  if (n == 6) {
    unsigned long long gi, ci;
    if (parse_u64(tok[4], &gi) || gi > 0xFFFFFFFFull) return fail(e, "bad GPU instance id '%s'", tok[4]);
    if (parse_u64(tok[5], &ci) || ci > 0xFFFFFFFFull) return fail(e, "bad compute instance id '%s'", tok[5]);
    ev->gi = (unsigned int)gi; ev->ci = (unsigned int)ci;
  }
  ev->line = line;
  for (int i = 0; i < s->nevents; i++) {
    const event_cfg_t *o = &s->event[i];
    if (o->gpu == ev->gpu && o->type == ev->type && o->data == ev->data && o->at == ev->at && o->gi == ev->gi && o->ci == ev->ci) ev->dup++;
  }
  s->nevents++;
  return 0;
}

static int parse_line(state_t *s, char *line, perr_t *e) {
  char *hash = strchr(line, '#');
  if (hash) *hash = 0;
  char *l = trim(line);
  if (!*l) return 0;
  char *sp = l; while (*sp && !isspace((unsigned char)*sp)) sp++;
  char key[256];
  size_t klen = (size_t)(sp - l);
  if (klen >= sizeof key) return fail(e, "key too long");
  memcpy(key, l, klen); key[klen] = 0;
  char *val = trim(sp);
  if (!*val) return fail(e, "'%s' needs a value", key);

  if (!strcmp(key, "fault")) return parse_rule(s, val, 0, e);
  if (!strcmp(key, "event")) return parse_event(s, val, e->line, e);
  if (!strcmp(key, "latency")) return parse_rule(s, val, 1, e);
  if (!strcmp(key, "driver_version")) return set_str(s->driver_version, sizeof s->driver_version, val, e, key);
  if (!strcmp(key, "nvml_version")) return set_str(s->nvml_version, sizeof s->nvml_version, val, e, key);
  if (!strcmp(key, "cuda_version")) {
    double v; if (parse_number(val, &v)) return fail(e, "bad cuda_version '%s'", val);
    s->cuda_version = (int)v; s->has_cuda = 1; return 0;
  }
  if (!strcmp(key, "device_count")) {
    double v;
    if (parse_number(val, &v) || v < 0 || v > MAX_GPUS || v != floor(v)) return fail(e, "device_count must be 0-%d", MAX_GPUS);
    s->device_count = (int)v; return 0;
  }
  if (!strncmp(key, "gpu.", 4)) {
    char *rest = key + 4, *dot = strchr(rest, '.');
    if (!dot) return fail(e, "expected gpu.<index>.<key>");
    *dot = 0;
    if (!strcmp(rest, "*")) return parse_gpu_key(s, &s->defaults, -1, dot + 1, val, e);
    int idx;
    if (parse_index(rest, MAX_GPUS, &idx)) return fail(e, "GPU index '%s' out of range 0-%d", rest, MAX_GPUS - 1);
    return parse_gpu_key(s, &s->gpu[idx], idx, dot + 1, val, e);
  }
  if (!strncmp(key, "proc.", 5)) {
    char *rest = key + 5, *dot = strchr(rest, '.');
    int idx;
    if (!dot) return fail(e, "expected proc.<n>.<key>");
    *dot = 0;
    if (parse_index(rest, MAX_PROCS, &idx)) return fail(e, "process index '%s' out of range 0-%d", rest, MAX_PROCS - 1);
    proc_cfg_t *p = &s->proc[idx];
    p->defined = 1;
    const char *pk = dot + 1;
    for (int i = 0; i < P_COUNT; i++)
      if (!strcmp(pk, proc_util_key_names[i])) return parse_vspec(val, &p->util[i], e);
    double v;
    if (parse_number(val, &v) || v < 0) return fail(e, "bad number '%s'", val);
    if (!strcmp(pk, "gpu")) { if (v >= MAX_GPUS) return fail(e, "GPU index out of range"); p->gpu = (int)v; }
    else if (!strcmp(pk, "pid")) p->pid = (uint32_t)v;
    else if (!strcmp(pk, "mem")) { p->mem = v; p->has_mem = 1; }
    else if (!strcmp(pk, "gi")) { p->gi = (int)v; p->has_gi = 1; }
    else if (!strcmp(pk, "ci")) { p->ci = (int)v; p->has_ci = 1; }
    else return fail(e, "unknown process key '%s'", pk);
    return 0;
  }
  return fail(e, "unknown key '%s'", key);
}

static state_t *load_state(const char *path, perr_t *e) {
  FILE *f = fopen(path, "r");
  e->file = path; e->line = 0;
  if (!f) { fail(e, "cannot open: %s", strerror(errno)); return NULL; }
  state_t *s = calloc(1, sizeof *s);
  snprintf(s->driver_version, sizeof s->driver_version, "535.161.08");
  snprintf(s->nvml_version, sizeof s->nvml_version, "12.535.161.08");
  char line[2048];
  while (fgets(line, sizeof line, f)) {
    e->line++;
    if (parse_line(s, line, e)) { fclose(f); free(s); return NULL; }
  }
  fclose(f);
  e->line = 0;
  for (int i = 0; i < s->device_count; i++) {
    gpu_cfg_t *g = &s->gpu[i];
    if (!g->has_name && s->defaults.has_name) { snprintf(g->name, sizeof g->name, "%s", s->defaults.name); g->has_name = 1; }
    if (!g->has_uuid) { fail(e, "gpu.%d.uuid is required", i); free(s); return NULL; }
    if (!g->has_name) { fail(e, "gpu.%d.name is required", i); free(s); return NULL; }
    if (!g->has_pci) { fail(e, "gpu.%d.pci_bus_id is required", i); free(s); return NULL; }
  }
  for (int i = 0; i < s->nevents; i++) {
    if (s->event[i].gpu >= s->device_count) {
      e->line = s->event[i].line;
      fail(e, "event for GPU %d, but device_count is %d", s->event[i].gpu, s->device_count);
      free(s); return NULL;
    }
  }
  return s;
}

/* Re-read the scenario when its file changed; keep the last good one on error. Holds mu. */
static void maybe_reload(void) {
  double now = now_ms();
  if (now - last_stat_ms < 20) return;
  last_stat_ms = now;
  struct stat sb;
  if (stat(state_path, &sb)) return;
  if (sb.st_mtim.tv_sec == state_mtime.tv_sec && sb.st_mtim.tv_nsec == state_mtime.tv_nsec && sb.st_size == state_size) return;
  perr_t e = {0};
  state_t *s = load_state(state_path, &e);
  state_mtime = sb.st_mtim; state_size = sb.st_size;
  if (!s) {
    char msg[512];
    snprintf(msg, sizeof msg, "%s:%d: %s", e.file, e.line, e.msg);
    if (strcmp(msg, last_reload_error)) {
      fprintf(stderr, "kge-sim: %s (keeping the previous scenario)\n", msg);
      snprintf(last_reload_error, sizeof last_reload_error, "%s", msg);
    }
    return;
  }
  last_reload_error[0] = 0;
  free(st);
  st = s;
}

/* ---- value evaluation (holds mu) ---------------------------------------------------- */
static double splitmix(uint64_t *x) {
  uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  z ^= z >> 31;
  return (double)(z >> 11) / 9007199254740992.0; /* [0,1) */
}

/* The value of a spec at scenario time t (ms). A walk cache only moves forward; asking for an
 * earlier step replays the walk from its start. */
static double eval_at(const vspec_t *v, walk_cache_t *wc, double t) {
  switch (v->kind) {
  case V_CONST: return v->c;
  case V_LINEAR: return v->c + v->per_s * t / 1000.0;
  case V_WALK: {
    int64_t n = (int64_t)(t / v->period_ms);
    if (!wc->valid || wc->n > n) { wc->valid = 1; wc->n = 0; wc->v = (v->min + v->max) / 2; }
    while (wc->n < n) {
      wc->n++;
      uint64_t x = v->seed * 1000003ull + (uint64_t)wc->n;
      double r = splitmix(&x) * 2 - 1;
      double nv = wc->v + r * v->step;
      wc->v = nv < v->min ? v->min : nv > v->max ? v->max : nv;
    }
    return wc->v;
  }
  case V_STEPS:
  case V_CYCLE: {
    double tt = v->kind == V_CYCLE ? fmod(t, v->cycle_ms) : t;
    double out = v->val[0];
    for (int i = 0; i < v->nsteps; i++) if (tt >= v->at[i]) out = v->val[i];
    return out;
  }
  default: return 0;
  }
}

static double eval(const vspec_t *v, walk_cache_t *wc) { return eval_at(v, wc, t_ms()); }

/* ---- call prologue: init check, reload, faults, latency -------------------------------- */
typedef struct { int gpu; int mig; } target_t;

static nvmlReturn_t begin(const char *fn, const handle_t *h, int need_handle) {
  long sleep_ms = 0; nvmlReturn_t code = NVML_SUCCESS;
  pthread_mutex_lock(&mu);
  if (!init_count || !st) { pthread_mutex_unlock(&mu); return NVML_ERROR_UNINITIALIZED; }
  maybe_reload();
  if (need_handle && !h) { pthread_mutex_unlock(&mu); return NVML_ERROR_INVALID_ARGUMENT; }
  int gpu = h ? h->gpu : -1;
  if (h && gpu >= st->device_count) { pthread_mutex_unlock(&mu); return NVML_ERROR_GPU_IS_LOST; }
  double t = t_ms();
  for (int i = 0; i < st->nrules; i++) {
    rule_t *r = &st->rule[i];
    if (strcmp(r->fn, "*") && strcmp(r->fn, fn)) continue;
    if (r->gpu >= 0 && r->gpu != gpu) continue;
    if (t < r->from_ms || t >= r->until_ms) continue;
    if (r->is_latency) sleep_ms += r->value;
    else if (code == NVML_SUCCESS) code = (nvmlReturn_t)r->value;
  }
  pthread_mutex_unlock(&mu);
  if (sleep_ms > 0) usleep((useconds_t)sleep_ms * 1000);
  return code;
}

/* The code of the first fault rule for a system call (GPU `*`) that is active now, or SUCCESS.
 * Holds mu. For calls that keep running (a blocked event wait), so a window opening mid-call ends it. */
MAYBE_UNUSED static nvmlReturn_t active_fault(const char *fn) {
  double t = t_ms();
  for (int i = 0; i < st->nrules; i++) {
    const rule_t *r = &st->rule[i];
    if (r->is_latency || r->gpu >= 0) continue;
    if (strcmp(r->fn, "*") && strcmp(r->fn, fn)) continue;
    if (t < r->from_ms || t >= r->until_ms) continue;
    return (nvmlReturn_t)r->value;
  }
  return NVML_SUCCESS;
}

#define BEGIN(h) do { nvmlReturn_t _rc = begin(__func__, (const handle_t *)(h), 1); if (_rc) return _rc; } while (0)
#define BEGIN_SYS() do { nvmlReturn_t _rc = begin(__func__, NULL, 0); if (_rc) return _rc; } while (0)
#define LOCK() pthread_mutex_lock(&mu)
#define UNLOCK() pthread_mutex_unlock(&mu)

static const handle_t *H(void *device) { return (const handle_t *)device; }

/* Numeric GPU value; NOT_SUPPORTED when the scenario leaves it undefined. Holds mu. */
static nvmlReturn_t gpu_num(int gpu, int key, double *out) {
  const vspec_t *v = &st->gpu[gpu].num[key];
  if (v->kind == V_UNSET) return NVML_ERROR_NOT_SUPPORTED;
  *out = eval(v, &walk_cache[gpu][key]);
  return NVML_SUCCESS;
}

static nvmlReturn_t mig_num(int gpu, int slot, int key, double *out) {
  const vspec_t *v = &st->gpu[gpu].mig[slot].num[key];
  if (v->kind == V_UNSET) return NVML_ERROR_NOT_SUPPORTED;
  *out = eval(v, &mig_walk_cache[gpu][slot][key]);
  return NVML_SUCCESS;
}

MAYBE_UNUSED static int mig_enabled(int gpu) {
  double m;
  return gpu_num(gpu, K_mig_mode, &m) == NVML_SUCCESS && m == 1;
}

/* Physical-GPU-only value: NOT_SUPPORTED on MIG handles. */
static nvmlReturn_t phys_uint(void *device, int key, unsigned int *out) {
  const handle_t *h = H(device);
  if (!out) return NVML_ERROR_INVALID_ARGUMENT;
  if (h->mig >= 0) return NVML_ERROR_NOT_SUPPORTED;
  double v;
  LOCK();
  nvmlReturn_t rc = gpu_num(h->gpu, key, &v);
  UNLOCK();
  if (!rc) *out = (unsigned int)v;
  return rc;
}

/* A scenario value as an unsigned counter (negative reads 0). */
static unsigned long long u64_of(double v) {
  if (!(v > 0)) return 0;
  if (v >= 18446744073709551615.0) return ~0ull;
  return (unsigned long long)v;
}

/* Physical-GPU-only counter: NOT_SUPPORTED on MIG handles. */
MAYBE_UNUSED static nvmlReturn_t phys_u64(void *device, int key, unsigned long long *out) {
  const handle_t *h = H(device);
  if (!out) return NVML_ERROR_INVALID_ARGUMENT;
  if (h->mig >= 0) return NVML_ERROR_NOT_SUPPORTED;
  double v;
  LOCK();
  nvmlReturn_t rc = gpu_num(h->gpu, key, &v);
  UNLOCK();
  if (!rc) *out = u64_of(v);
  return rc;
}

MAYBE_UNUSED static nvmlReturn_t copy_str(char *dst, unsigned int len, const char *src) {
  if (!dst) return NVML_ERROR_INVALID_ARGUMENT;
  if (strlen(src) + 1 > len) return NVML_ERROR_INSUFFICIENT_SIZE;
  memcpy(dst, src, strlen(src) + 1);
  return NVML_SUCCESS;
}

/* ---- exported API ------------------------------------------------------------------- */
static nvmlReturn_t do_init(void) {
  pthread_mutex_lock(&mu);
  if (init_count > 0) { init_count++; pthread_mutex_unlock(&mu); return NVML_SUCCESS; }
  const char *path = getenv("KGE_SIM_STATE");
  if (!path || !*path) {
    fprintf(stderr, "kge-sim: KGE_SIM_STATE is not set: it must name a scenario file (see docs/simulator.md)\n");
    pthread_mutex_unlock(&mu);
    return NVML_ERROR_DRIVER_NOT_LOADED;
  }
  perr_t e = {0};
  state_t *s = load_state(path, &e);
  if (!s) {
    if (e.line) fprintf(stderr, "kge-sim: %s:%d: %s\n", e.file, e.line, e.msg);
    else fprintf(stderr, "kge-sim: %s: %s\n", e.file, e.msg);
    pthread_mutex_unlock(&mu);
    return e.line || strncmp(e.msg, "cannot open", 11) ? NVML_ERROR_UNKNOWN : NVML_ERROR_DRIVER_NOT_LOADED;
  }
  snprintf(state_path, sizeof state_path, "%s", path);
  struct stat sb;
  if (!stat(path, &sb)) { state_mtime = sb.st_mtim; state_size = sb.st_size; }
  free(st);
  st = s;
  for (int i = 0; i < MAX_GPUS; i++) {
    gpu_handles[i].gpu = i; gpu_handles[i].mig = -1;
    for (int j = 0; j < MAX_MIG; j++) { mig_handles[i][j].gpu = i; mig_handles[i][j].mig = j; }
  }
  if (epoch_ms < 0) {
    struct timespec rt; clock_gettime(CLOCK_REALTIME, &rt);
    epoch_ms = now_ms();
    epoch_realtime_us = (long long)rt.tv_sec * 1000000 + rt.tv_nsec / 1000;
  }
  init_count = 1;
  pthread_mutex_unlock(&mu);
  return NVML_SUCCESS;
}

EXPORT nvmlReturn_t nvmlInit_v2(void) { return do_init(); }

#ifndef KGE_OMIT_nvmlInitWithFlags
EXPORT nvmlReturn_t nvmlInitWithFlags(unsigned int flags) { (void)flags; return do_init(); }
#endif

EXPORT nvmlReturn_t nvmlShutdown(void) {
  /* fault and latency rules apply to shutdown too (a slow or failing driver unload) */
  nvmlReturn_t injected = begin(__func__, NULL, 0);
  if (injected != NVML_SUCCESS && injected != NVML_ERROR_UNINITIALIZED) return injected;
  pthread_mutex_lock(&mu);
  nvmlReturn_t rc = NVML_SUCCESS;
  if (init_count == 0) rc = NVML_ERROR_UNINITIALIZED;
  else init_count--;
  pthread_mutex_unlock(&mu);
  return rc;
}

EXPORT const char *nvmlErrorString(nvmlReturn_t r) {
  switch (r) {
  case 0: return "Success";
  case 1: return "Uninitialized";
  case 2: return "Invalid Argument";
  case 3: return "Not Supported";
  case 4: return "Insufficient Permissions";
  case 5: return "Already Initialized";
  case 6: return "Not Found";
  case 7: return "Insufficient Size";
  case 8: return "Insufficient External Power";
  case 9: return "Driver Not Loaded";
  case 10: return "Timeout";
  case 11: return "Interrupt Request Issue";
  case 12: return "NVML Shared Library Not Found";
  case 13: return "Function Not Found";
  case 14: return "Corrupted infoROM";
  case 15: return "GPU is lost";
  case 16: return "GPU requires restart";
  case 17: return "The operating system has blocked the request";
  case 18: return "RM has detected an NVML/RM version mismatch";
  case 19: return "In use by another client";
  case 20: return "Insufficient Memory";
  case 21: return "No data";
  case 22: return "The requested vgpu operation is not available on target device, because ECC is enabled";
  case 23: return "Insufficient resources";
  case 24: return "Frequency not supported";
  case 25: return "Argument version mismatch";
  case 26: return "Deprecated";
  case 27: return "Not Ready";
  case 28: return "GPU not found";
  case 29: return "Invalid state";
  default: return "Unknown Error";
  }
}

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

typedef struct {
  char busIdLegacy[16];
  unsigned int domain, bus, device, pciDeviceId, pciSubSystemId;
  char busId[32];
} nvmlPciInfo_t;
_Static_assert(sizeof(nvmlPciInfo_t) == 68, "nvmlPciInfo_t layout");

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

typedef struct { unsigned int gpu, memory; } nvmlUtilization_t;
_Static_assert(sizeof(nvmlUtilization_t) == 8, "nvmlUtilization_t layout");

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

typedef struct { unsigned long long total, free, used; } nvmlMemory_t;
typedef struct { unsigned int version; unsigned long long total, reserved, free, used; } nvmlMemory_v2_t;
_Static_assert(sizeof(nvmlMemory_t) == 24, "nvmlMemory_t layout");
_Static_assert(sizeof(nvmlMemory_v2_t) == 40, "nvmlMemory_v2_t layout");

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
  if (m->version != 0x02000028u) return NVML_ERROR_ARGUMENT_VERSION_MISMATCH;
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

/* Energy integrates the current power over real elapsed time. Holds mu. */
MAYBE_UNUSED static nvmlReturn_t energy_of(int gpu, unsigned long long *mj) {
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

typedef struct { unsigned int pid; unsigned long long usedGpuMemory; unsigned int gpuInstanceId, computeInstanceId; } nvmlProcessInfo_t;
_Static_assert(sizeof(nvmlProcessInfo_t) == 24, "nvmlProcessInfo_t layout");

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

typedef struct {
  unsigned int pid;
  unsigned long long timeStamp; /* microseconds */
  unsigned int smUtil, memUtil, encUtil, decUtil;
} nvmlProcessUtilizationSample_t;
_Static_assert(sizeof(nvmlProcessUtilizationSample_t) == 32, "nvmlProcessUtilizationSample_t layout");

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

typedef struct {
  unsigned int fieldId, scopeId;
  long long timestamp, latencyUsec;
  int valueType, nvmlReturn;
  union { double d; unsigned int ui; unsigned long ul; unsigned long long ull; long long sll; int si; unsigned short us; } value;
} nvmlFieldValue_t;
_Static_assert(sizeof(nvmlFieldValue_t) == 40, "nvmlFieldValue_t layout");

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
    double v; unsigned long long ull;
    f->nvmlReturn = NVML_ERROR_NOT_SUPPORTED;
    if (h->mig >= 0) continue;
    switch (f->fieldId) {
    case 82: /* memory temperature */
      if (!gpu_num(h->gpu, K_temp_mem, &v)) { f->valueType = 1; f->value.ui = (unsigned int)v; f->nvmlReturn = 0; }
      break;
    case 83: /* total energy */
      if (!energy_of(h->gpu, &ull)) { f->valueType = 3; f->value.ull = ull; f->nvmlReturn = 0; }
      break;
    case 185: case 186: /* power average / instant */
      if (!gpu_num(h->gpu, K_power_mw, &v)) { f->valueType = 1; f->value.ui = (unsigned int)v; f->nvmlReturn = 0; }
      break;
    case 3: case 4: case 5: case 6: /* ECC totals: SBE/DBE volatile, SBE/DBE aggregate */
    case 38: case 45: case 52: case 59: /* NVLink CRC flit, CRC data, replay, recovery totals */
    case 94: /* PCIe replay counter */ {
      int k = f->fieldId == 3 ? K_ecc_sbe_vol : f->fieldId == 4 ? K_ecc_dbe_vol : f->fieldId == 5 ? K_ecc_sbe_agg
            : f->fieldId == 6 ? K_ecc_dbe_agg : f->fieldId == 38 ? K_nvlink_crc_flit : f->fieldId == 45 ? K_nvlink_crc_data
            : f->fieldId == 52 ? K_nvlink_replay : f->fieldId == 59 ? K_nvlink_recovery : K_pcie_replay;
      if (!gpu_num(h->gpu, k, &v)) { f->valueType = 3; f->value.ull = u64_of(v); f->nvmlReturn = 0; }
      break;
    }
    case 29: case 30: /* retired pages SBE / DBE (unsigned long) */
      if (!gpu_num(h->gpu, f->fieldId == 29 ? K_retired_sbe : K_retired_dbe, &v)) { f->valueType = 2; f->value.ul = (unsigned long)u64_of(v); f->nvmlReturn = 0; }
      break;
    case 31: /* retired pages pending */
      if (!gpu_num(h->gpu, K_retired_pending, &v)) { f->valueType = 1; f->value.ui = v != 0; f->nvmlReturn = 0; }
      break;
    case 91: /* NVLink link count */
      if (!gpu_num(h->gpu, K_nvlink_links, &v)) { f->valueType = 1; f->value.ui = (unsigned int)u64_of(v); f->nvmlReturn = 0; }
      break;
    case 138: case 139: /* NVLink data throughput TX / RX, KiB: scopeId = link, 0xFFFFFFFF = all links */
      if (!gpu_num(h->gpu, f->fieldId == 138 ? K_nvlink_tx_kib : K_nvlink_rx_kib, &v)) {
        double links = 0;
        if (f->scopeId != NOT_MIG) {
          /* one link: an even share of the total */
          if (gpu_num(h->gpu, K_nvlink_links, &links) || f->scopeId >= (unsigned int)links) { f->nvmlReturn = NVML_ERROR_INVALID_ARGUMENT; break; }
          v = floor(u64_of(v) / links);
        }
        f->valueType = 3; f->value.ull = u64_of(v); f->nvmlReturn = 0;
      }
      break;
    case 142: case 143: case 144: case 145: /* remapped rows: correctable, uncorrectable, pending, failure */
      if (mig_enabled(h->gpu)) break;
      if (!gpu_num(h->gpu, f->fieldId == 142 ? K_remap_correctable : f->fieldId == 143 ? K_remap_uncorrectable
                         : f->fieldId == 144 ? K_remap_pending : K_remap_failure, &v)) {
        f->valueType = 1; f->value.ui = (unsigned int)u64_of(v); f->nvmlReturn = 0;
      }
      break;
    default: break;
    }
  }
  UNLOCK();
  return NVML_SUCCESS;
}
#endif

/* ---- GPU health: ECC, retired pages, remapped rows, clock violation time ------------- */
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

typedef struct { unsigned long long referenceTime, violationTime; } nvmlViolationTime_t;
_Static_assert(sizeof(nvmlViolationTime_t) == 16, "nvmlViolationTime_t layout");

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

/* ---- events ---------------------------------------------------------------------------
 * An event set is a slot of evsets[] (guarded by mu); nvmlEventSet_t points at it. It keeps the
 * event types registered per GPU and the identities of the events it has delivered, so every
 * `event` line is delivered once per set, also across reloads that keep the line. */
typedef struct {
  void *device;
  unsigned long long eventType, eventData;
  unsigned int gpuInstanceId, computeInstanceId;
} nvmlEventData_t;
_Static_assert(sizeof(nvmlEventData_t) == 32, "nvmlEventData_t layout");

typedef struct {
  int in_use;
  unsigned int generation;          /* bumped by free: a wait on a freed set ends */
  unsigned long long types[MAX_GPUS];
  double since[MAX_GPUS];           /* sim time the GPU was first registered: earlier events are not delivered, as with a real driver */
  event_cfg_t *delivered; int ndelivered, cap;
} evset_t;
MAYBE_UNUSED static evset_t evsets[MAX_EVSETS];

MAYBE_UNUSED static int same_event(const event_cfg_t *a, const event_cfg_t *b) {
  return a->gpu == b->gpu && a->type == b->type && a->data == b->data && a->at == b->at &&
         a->gi == b->gi && a->ci == b->ci && a->dup == b->dup;
}

/* The element of a static array (n elements of `size` bytes) that a handle points at, or NULL. */
MAYBE_UNUSED static void *element_of(void *array, size_t size, size_t n, void *handle) {
  uintptr_t p = (uintptr_t)handle, base = (uintptr_t)array;
  if (p < base || p >= base + size * n || (p - base) % size) return NULL;
  return handle;
}

/* The live set a handle names, or NULL. Holds mu. */
MAYBE_UNUSED static evset_t *evset_of(void *set) {
  evset_t *es = element_of(evsets, sizeof *evsets, MAX_EVSETS, set);
  return es && es->in_use ? es : NULL;
}

#ifndef KGE_OMIT_nvmlEventSetCreate
EXPORT nvmlReturn_t nvmlEventSetCreate(void **set) {
  BEGIN_SYS();
  if (!set) return NVML_ERROR_INVALID_ARGUMENT;
  nvmlReturn_t rc = NVML_ERROR_INSUFFICIENT_RESOURCES;
  LOCK();
  for (int i = 0; i < MAX_EVSETS; i++) {
    evset_t *es = &evsets[i];
    if (es->in_use) continue;
    unsigned int gen = es->generation;
    memset(es, 0, sizeof *es);
    es->generation = gen + 1;
    es->in_use = 1;
    *set = es;
    rc = NVML_SUCCESS;
    break;
  }
  UNLOCK();
  return rc;
}
#endif

#ifndef KGE_OMIT_nvmlEventSetFree
EXPORT nvmlReturn_t nvmlEventSetFree(void *set) {
  BEGIN_SYS();
  LOCK();
  evset_t *es = evset_of(set);
  if (es) {
    free(es->delivered);
    es->delivered = NULL; es->ndelivered = es->cap = 0;
    es->in_use = 0;
    es->generation++;
  }
  UNLOCK();
  return es ? NVML_SUCCESS : NVML_ERROR_INVALID_ARGUMENT;
}
#endif

/* events_supported of a physical GPU; NOT_SUPPORTED when left out and on MIG handles. */
#ifndef KGE_OMIT_nvmlDeviceGetSupportedEventTypes
EXPORT nvmlReturn_t nvmlDeviceGetSupportedEventTypes(void *device, unsigned long long *eventTypes) {
  BEGIN(device);
  return phys_u64(device, K_events_supported, eventTypes);
}
#endif

/* Only on physical GPUs and only types in events_supported (else NOT_SUPPORTED, registering nothing). */
#ifndef KGE_OMIT_nvmlDeviceRegisterEvents
EXPORT nvmlReturn_t nvmlDeviceRegisterEvents(void *device, unsigned long long eventTypes, void *set) {
  BEGIN(device);
  const handle_t *h = H(device);
  if (h->mig >= 0) return NVML_ERROR_NOT_SUPPORTED;
  nvmlReturn_t rc;
  LOCK();
  evset_t *es = evset_of(set);
  double mask;
  if (!es) rc = NVML_ERROR_INVALID_ARGUMENT;
  else if ((rc = gpu_num(h->gpu, K_events_supported, &mask)) == NVML_SUCCESS) {
    if (eventTypes & ~u64_of(mask)) rc = NVML_ERROR_NOT_SUPPORTED;
    else {
      if (!es->types[h->gpu]) es->since[h->gpu] = t_ms();
      es->types[h->gpu] |= eventTypes;
    }
  }
  UNLOCK();
  return rc;
}
#endif

/* The earliest undelivered event whose time has come, for a GPU and type registered in es, or
 * NULL. Ties in time go in file order. Holds mu. */
MAYBE_UNUSED static const event_cfg_t *next_event(const evset_t *es, double t) {
  const event_cfg_t *best = NULL;
  for (int i = 0; i < st->nevents; i++) {
    const event_cfg_t *ev = &st->event[i];
    if (ev->at > t || ev->gpu >= st->device_count || !(es->types[ev->gpu] & ev->type) || ev->at < es->since[ev->gpu]) continue;
    if (best && (ev->at > best->at || (ev->at == best->at && ev->line > best->line))) continue;
    int seen = 0;
    for (int j = 0; j < es->ndelivered && !seen; j++) seen = same_event(&es->delivered[j], ev);
    if (!seen) best = ev;
  }
  return best;
}

/* Milliseconds until the next undelivered event registered in es falls due (after t), or a
 * negative number when none is scheduled. Holds mu. */
MAYBE_UNUSED static double next_due_in(const evset_t *es, double t) {
  double best = -1;
  for (int i = 0; i < st->nevents; i++) {
    const event_cfg_t *ev = &st->event[i];
    if (ev->at <= t || ev->gpu >= st->device_count || !(es->types[ev->gpu] & ev->type) || ev->at < es->since[ev->gpu]) continue;
    if (best < 0 || ev->at - t < best) best = ev->at - t;
  }
  return best;
}

/* Blocks (never holding mu) until an event is due or the timeout passes (TIMEOUT), sleeping until
 * the next scheduled event or EVENT_POLL_MS, whichever is sooner, as a real driver sleeps in the
 * kernel rather than spinning. Each pass re-reads a changed scenario and obeys fault windows that
 * open while it waits. */
#ifndef KGE_OMIT_nvmlEventSetWait_v2
EXPORT nvmlReturn_t nvmlEventSetWait_v2(void *set, nvmlEventData_t *data, unsigned int timeoutms) {
  BEGIN_SYS();
  if (!data) return NVML_ERROR_INVALID_ARGUMENT;
  double deadline = now_ms() + timeoutms;
  LOCK();
  evset_t *es = evset_of(set);
  unsigned int generation = es ? es->generation : 0;
  UNLOCK();
  if (!es) return NVML_ERROR_INVALID_ARGUMENT;
  for (;;) {
    nvmlReturn_t rc = NVML_SUCCESS;
    const event_cfg_t *ev = NULL;
    LOCK();
    if (!init_count || !st) rc = NVML_ERROR_UNINITIALIZED;
    else if (!es->in_use || es->generation != generation) rc = NVML_ERROR_INVALID_ARGUMENT;
    else {
      maybe_reload();
      rc = active_fault("nvmlEventSetWait_v2");
      if (!rc && (ev = next_event(es, t_ms())) != NULL) {
        if (es->ndelivered == es->cap) {
          int cap = es->cap ? es->cap * 2 : 16;
          event_cfg_t *grown = realloc(es->delivered, (size_t)cap * sizeof *grown);
          if (!grown) rc = NVML_ERROR_MEMORY;
          else { es->delivered = grown; es->cap = cap; }
        }
        if (!rc) {
          es->delivered[es->ndelivered++] = *ev;
          data->device = &gpu_handles[ev->gpu];
          data->eventType = ev->type;
          data->eventData = ev->data;
          data->gpuInstanceId = ev->gi;
          data->computeInstanceId = ev->ci;
        }
      }
    }
    double due = (rc || ev || !st) ? -1 : next_due_in(es, t_ms());
    UNLOCK();
    if (rc || ev) return rc;
    double left = deadline - now_ms();
    if (left <= 0) return NVML_ERROR_TIMEOUT;
    double nap = left < EVENT_POLL_MS ? left : EVENT_POLL_MS;
    if (due >= 0 && due < nap) nap = due + 0.1;
    usleep((useconds_t)(nap * 1000));
  }
}
#endif

/* ---- GPM (GPU performance monitoring) --------------------------------------------------
 * Like the hardware's counters, each GPU and each MIG instance has a running integral of every
 * GPM metric's scenario value over scenario time, advanced whenever one of its samples is
 * taken. A sample is a snapshot of those integrals; a metric between two samples is the
 * difference over the time between them: the exact average of what the scenario says over that
 * interval (steps, walks and cycles are integrated piece by piece). Percentages are clamped to
 * 0-100 and rates to >= 0; a key set to nan, inf or -inf is reported as that value. */
#define GPM_SCOPES (MAX_MIG + 1)      /* 0: the whole GPU, 1 + slot: the MIG instance in that slot */
#define MAX_GPM_SAMPLES 1024          /* samples allocated at once */
#define NVML_GPM_METRICS_GET_VERSION 1
#define NVML_GPM_SUPPORT_VERSION 1
#define NVML_GPM_METRIC_MAX 98        /* the CUDA 11.8-12.8 headers' MAX: what this driver accepts */

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
  nvmlGpmMetric_t metrics[NVML_GPM_METRIC_MAX];
} nvmlGpmMetricsGet_t;
_Static_assert(sizeof(nvmlGpmSupport_t) == 8, "nvmlGpmSupport_t layout");
_Static_assert(sizeof(nvmlGpmMetric_t) == 40, "nvmlGpmMetric_t layout");
_Static_assert(__builtin_offsetof(nvmlGpmMetric_t, metricInfo) == 16, "nvmlGpmMetric_t layout");
_Static_assert(__builtin_offsetof(nvmlGpmMetricsGet_t, metrics) == 24, "nvmlGpmMetricsGet_t layout");
_Static_assert(sizeof(nvmlGpmMetricsGet_t) == 3944, "nvmlGpmMetricsGet_t layout");

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
  if (request->numMetrics > NVML_GPM_METRIC_MAX) return NVML_ERROR_INVALID_ARGUMENT;
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
