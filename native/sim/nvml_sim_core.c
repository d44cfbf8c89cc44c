/* kube-gpu-exporter simulated NVML: global state, clocks, value evaluation, scenario reloads,
 * the prologue of every call (faults, latency) and init/shutdown. */
#include "nvml_sim.h"

/* ---- global state ------------------------------------------------------------------- */
handle_t gpu_handles[MAX_GPUS];
handle_t mig_handles[MAX_GPUS][MAX_MIG];
pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
state_t *st;                        /* current state, guarded by mu */
int init_count;
long long epoch_realtime_us;        /* wall clock at epoch_ms: base of process utilization timestamps */
static char state_path[4096];
static struct timespec state_mtime; static off_t state_size;
static double last_stat_ms;
static double epoch_ms = -1;        /* first successful nvmlInit of the process */
static walk_cache_t walk_cache[MAX_GPUS][K_COUNT];
static walk_cache_t mig_walk_cache[MAX_GPUS][MAX_MIG][M_COUNT];
static char last_reload_error[512];
static unsigned int load_generation; /* successful scenario loads so far (kgeSimReload) */

double now_ms(void) {
  struct timespec ts; clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1000.0 + ts.tv_nsec / 1e6;
}
double t_ms(void) { return epoch_ms < 0 ? 0 : now_ms() - epoch_ms; }

/* ---- loading and reloading the scenario (hold mu) --------------------------------------- */
/* The first load (nvmlInit with no init outstanding, or kgeSimReload before any load): the file
 * KGE_SIM_STATE names. On an error the current scenario, if any, stays. */
static nvmlReturn_t load_from_env(void) {
  const char *path = getenv("KGE_SIM_STATE");
  if (!path || !*path) {
    fprintf(stderr, "kge-sim: KGE_SIM_STATE is not set: it must name a scenario file (see docs/simulator.md)\n");
    return NVML_ERROR_DRIVER_NOT_LOADED;
  }
  perr_t e = {0};
  state_t *s = load_state(path, &e);
  if (!s) {
    if (e.line) fprintf(stderr, "kge-sim: %s:%d: %s\n", e.file, e.line, e.msg);
    else fprintf(stderr, "kge-sim: %s: %s\n", e.file, e.msg);
    return e.line || strncmp(e.msg, "cannot open", 11) ? NVML_ERROR_UNKNOWN : NVML_ERROR_DRIVER_NOT_LOADED;
  }
  snprintf(state_path, sizeof state_path, "%s", path);
  struct stat sb;
  if (!stat(path, &sb)) { state_mtime = sb.st_mtim; state_size = sb.st_size; }
  free(st);
  st = s;
  load_generation++;
  return NVML_SUCCESS;
}

/* Re-read the scenario when its file's mtime or size changed; keep the last good one on error. */
static void reload_if_changed(void) {
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
  load_generation++;
}

/* At most every 20 ms. */
void maybe_reload(void) {
  double now = now_ms();
  if (now - last_stat_ms < 20) return;
  last_stat_ms = now;
  reload_if_changed();
}

void reload_now(void) {
  last_stat_ms = now_ms();
  reload_if_changed();
}

const char *scenario_path(void) { return state_path; }

/* Not an NVML call: re-reads the scenario file now if it changed (the check maybe_reload makes,
 * without its 20 ms throttle) and returns the load generation: how many times a scenario was
 * loaded successfully (nvmlInit's load and every reload), so 1 after the first load. Before any
 * load it loads KGE_SIM_STATE as nvmlInit would (without initialising: calls still answer
 * UNINITIALIZED); 0 when that fails. A change that fails to parse keeps the previous scenario
 * and the generation. */
EXPORT unsigned int kgeSimReload(void) {
  LOCK();
  if (!st) load_from_env();
  else { last_stat_ms = now_ms(); reload_if_changed(); }
  unsigned int generation = load_generation;
  UNLOCK();
  return generation;
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
double eval_at(const vspec_t *v, walk_cache_t *wc, double t) {
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
nvmlReturn_t begin(const char *fn, const handle_t *h, int need_handle) {
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

/* For calls that keep running (a blocked event wait), so a window opening mid-call ends it. */
/* Whether a rule is a fault rule for system call fn (GPU `*`). */
static int sys_fault_rule(const rule_t *r, const char *fn) {
  return !r->is_latency && r->gpu < 0 && (!strcmp(r->fn, "*") || !strcmp(r->fn, fn));
}

nvmlReturn_t active_fault(const char *fn) {
  double t = t_ms();
  for (int i = 0; i < st->nrules; i++) {
    const rule_t *r = &st->rule[i];
    if (!sys_fault_rule(r, fn) || t < r->from_ms || t >= r->until_ms) continue;
    return (nvmlReturn_t)r->value;
  }
  return NVML_SUCCESS;
}

double next_fault_change_in(const char *fn) {
  double t = t_ms(), best = -1;
  for (int i = 0; i < st->nrules; i++) {
    const rule_t *r = &st->rule[i];
    if (!sys_fault_rule(r, fn)) continue;
    double edges[2] = { r->from_ms, r->until_ms };
    for (int k = 0; k < 2; k++) {
      if (isfinite(edges[k]) && edges[k] > t && (best < 0 || edges[k] - t < best)) best = edges[k] - t;
    }
  }
  return best;
}

/* Numeric GPU value; NOT_SUPPORTED when the scenario leaves it undefined. Holds mu. */
nvmlReturn_t gpu_num(int gpu, int key, double *out) {
  const vspec_t *v = &st->gpu[gpu].num[key];
  if (v->kind == V_UNSET) return NVML_ERROR_NOT_SUPPORTED;
  *out = eval(v, &walk_cache[gpu][key]);
  return NVML_SUCCESS;
}

nvmlReturn_t mig_num(int gpu, int slot, int key, double *out) {
  const vspec_t *v = &st->gpu[gpu].mig[slot].num[key];
  if (v->kind == V_UNSET) return NVML_ERROR_NOT_SUPPORTED;
  *out = eval(v, &mig_walk_cache[gpu][slot][key]);
  return NVML_SUCCESS;
}

int mig_enabled(int gpu) {
  double m;
  return gpu_num(gpu, K_mig_mode, &m) == NVML_SUCCESS && m == 1;
}

/* The checks and the read phys_uint and phys_u64 share; out only says whether there is one. */
static nvmlReturn_t phys_num(void *device, int key, const void *out, double *v) {
  const handle_t *h = H(device);
  if (!out) return NVML_ERROR_INVALID_ARGUMENT;
  if (h->mig >= 0) return NVML_ERROR_NOT_SUPPORTED;
  LOCK();
  nvmlReturn_t rc = gpu_num(h->gpu, key, v);
  UNLOCK();
  return rc;
}

nvmlReturn_t phys_uint(void *device, int key, unsigned int *out) {
  double v;
  nvmlReturn_t rc = phys_num(device, key, out, &v);
  if (!rc) *out = (unsigned int)v;
  return rc;
}

unsigned long long u64_of(double v) {
  if (!(v > 0)) return 0;
  if (v >= 18446744073709551615.0) return ~0ull;
  return (unsigned long long)v;
}

nvmlReturn_t phys_u64(void *device, int key, unsigned long long *out) {
  double v;
  nvmlReturn_t rc = phys_num(device, key, out, &v);
  if (!rc) *out = u64_of(v);
  return rc;
}

nvmlReturn_t copy_str(char *dst, unsigned int len, const char *src) {
  if (!dst) return NVML_ERROR_INVALID_ARGUMENT;
  if (strlen(src) + 1 > len) return NVML_ERROR_INSUFFICIENT_SIZE;
  memcpy(dst, src, strlen(src) + 1);
  return NVML_SUCCESS;
}

void *element_of(void *array, size_t size, size_t n, void *handle) {
  uintptr_t p = (uintptr_t)handle, base = (uintptr_t)array;
  if (p < base || p >= base + size * n || (p - base) % size) return NULL;
  return handle;
}

/* ---- init, shutdown, error strings ---------------------------------------------------- */
static nvmlReturn_t do_init(void) {
  pthread_mutex_lock(&mu);
  if (init_count > 0) { init_count++; pthread_mutex_unlock(&mu); return NVML_SUCCESS; }
  nvmlReturn_t rc = load_from_env();
  if (rc) { pthread_mutex_unlock(&mu); return rc; }
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
  wake_waiters(); /* a wait in progress looks again now: it answers UNINITIALIZED */
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
