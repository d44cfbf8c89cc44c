/*
 * kube-gpu-exporter: a simulated libnvidia-ml.so.1 (internal header shared by its sources).
 *
 * Exports the NVML symbols the exporter binds, with the same C ABI (nvml_sim_abi.h: x86-64 LP64
 * struct layouts, return codes), driven by a scenario file named by KGE_SIM_STATE. The file is
 * re-read when it changes, so tests can move values, inject errors and latency while an
 * exporter runs. Format: docs/simulator.md. Any exported function can be compiled out
 * with -DKGE_OMIT_<symbol> to imitate an older driver.
 *
 * Sources (one shared object, built by scripts/build-sim.mjs from every .c here):
 *   nvml_sim_core.c       global state, clocks, value evaluation, reload, call prologue, init/shutdown
 *   nvml_sim_scenario.c   the scenario file parser
 *   nvml_sim_devices.c    system calls, device identity, PCI, utilization, memory, power, clocks, PCIe, MIG
 *   nvml_sim_mig_profiles.c  MIG GPU instance profiles: a built-in table per GPU model
 *   nvml_sim_processes.c  running processes and process utilization
 *   nvml_sim_fields.c     nvmlDeviceGetFieldValues and its field table
 *   nvml_sim_health.c     ECC, retired pages, remapped rows, clock violation time
 *   nvml_sim_events.c     event sets
 *   nvml_sim_gpm.c        GPM (GPU performance monitoring)
 *   nvml_sim_wait.c       blocking until the scenario file changes or a waiter is woken
 * Every function that is not EXPORT stays inside the library (-fvisibility=hidden).
 */
#ifndef KGE_NVML_SIM_H
#define KGE_NVML_SIM_H

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

#include "nvml_sim_abi.h"

#define EXPORT __attribute__((visibility("default")))
/* helpers whose only callers may all be compiled out (-DKGE_OMIT_...) */
#define MAYBE_UNUSED __attribute__((unused))

#define MAX_GPUS 16
#define MAX_MIG 7
#define MAX_PROCS 256
#define MAX_RULES 128
#define MAX_STEPS 32
#define MAX_EVENTS 256                /* event lines per scenario */
#define MAX_EVSETS 64                 /* event sets alive at once */
#define EVENT_POLL_MS 50              /* without inotify: how often a blocked nvmlEventSetWait_v2 looks for a changed file */
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

/* Numeric per-GPU keys: `gpu.<i>.<key>`, each taking every value form (const, walk, steps, ...).
 * This macro, with the lists it pulls in, is the complete per-GPU key list (scripts/sim-keys.ts
 * parses its X(...) entries). */
#define GPU_NUM_KEYS(X) \
  X(pci_device_id) X(pci_subsystem_id) X(minor) X(mem_total) X(mem_reserved) X(mem_used) \
  X(util_gpu) X(util_mem) X(enc_util) X(dec_util) X(temp_gpu) X(temp_mem) X(power_mw) \
  X(power_limit_mw) X(energy_start_mj) X(clock_graphics) X(clock_sm) X(clock_mem) X(clock_video) \
  X(max_clock_graphics) X(max_clock_sm) X(max_clock_mem) X(max_clock_video) X(fan) X(pstate) \
  X(pcie_tx_kbps) X(pcie_rx_kbps) X(pcie_link_gen) X(pcie_link_width) X(pcie_max_link_gen) X(pcie_max_link_width) \
  X(clocks_event_reasons) X(mig_mode) X(proc_util_period_ms) \
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

/* numeric per-MIG-instance keys: `gpu.<i>.mig.<slot>.<key>` */
#define MIG_NUM_KEYS(X) X(gi) X(ci) X(mem_total) X(mem_reserved) X(mem_used) GPM_INSTANCE_KEYS(X)
#define X_MIG_ENUM(k) M_##k,
enum { MIG_NUM_KEYS(X_MIG_ENUM) M_COUNT };

/* per-process utilization keys (percent), sampled by nvmlDeviceGetProcessUtilization */
enum { P_sm, P_mem_util, P_enc, P_dec, P_COUNT };

/* ---- the scenario ------------------------------------------------------------------- */
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

/* A parse error: file, line (0: not about one line) and what is wrong. */
typedef struct { const char *file; int line; char msg[400]; } perr_t;

/* nvml_sim_scenario.c: reads a scenario file; NULL (and *e filled in) when it cannot. */
state_t *load_state(const char *path, perr_t *e);

/* ---- handles ------------------------------------------------------------------------ */
typedef struct { int gpu; int mig; /* -1 = physical GPU */ } handle_t;
extern handle_t gpu_handles[MAX_GPUS];
extern handle_t mig_handles[MAX_GPUS][MAX_MIG];
static inline const handle_t *H(void *device) { return (const handle_t *)device; }

/* ---- global state (nvml_sim_core.c) ------------------------------------------------- */
extern pthread_mutex_t mu;
extern state_t *st;                 /* current scenario, guarded by mu */
extern int init_count;
extern long long epoch_realtime_us; /* wall clock at the first nvmlInit: base of process utilization timestamps */

double now_ms(void);                /* CLOCK_MONOTONIC, ms */
double t_ms(void);                  /* scenario time: ms since the process's first nvmlInit */

/* ---- value evaluation (hold mu) ------------------------------------------------------ */
/* The value of a spec at scenario time t (ms); a walk cache only moves forward. */
double eval_at(const vspec_t *v, walk_cache_t *wc, double t);
/* Numeric GPU / MIG value now; NOT_SUPPORTED when the scenario leaves it undefined. */
nvmlReturn_t gpu_num(int gpu, int key, double *out);
nvmlReturn_t mig_num(int gpu, int slot, int key, double *out);
int mig_enabled(int gpu);
/* A scenario value as an unsigned counter (negative reads 0). */
unsigned long long u64_of(double v);
/* Energy in mJ: power_mw integrated over real elapsed time from energy_start_mj (nvml_sim_devices.c). */
nvmlReturn_t energy_of(int gpu, unsigned long long *mj);

/* ---- helpers that take mu themselves --------------------------------------------------- */
/* Physical-GPU-only value: INVALID_ARGUMENT for a NULL out, NOT_SUPPORTED on MIG handles and for an unset key. */
nvmlReturn_t phys_uint(void *device, int key, unsigned int *out);
nvmlReturn_t phys_u64(void *device, int key, unsigned long long *out);
nvmlReturn_t copy_str(char *dst, unsigned int len, const char *src);
/* The element of a static array (n elements of `size` bytes) that a handle points at, or NULL. */
void *element_of(void *array, size_t size, size_t n, void *handle);

/* ---- call prologue: init check, reload, faults, latency -------------------------------- */
nvmlReturn_t begin(const char *fn, const handle_t *h, int need_handle);
/* The code of the first fault rule for a system call (GPU `*`) active now, or SUCCESS. Holds mu. */
nvmlReturn_t active_fault(const char *fn);
/* Re-reads the scenario when its file changed (at most every 20 ms). Holds mu. */
void maybe_reload(void);
/* The same without the 20 ms throttle (a wait told the file changed). Holds mu. */
void reload_now(void);
/* The scenario file's path ("" before the first load). Holds mu. */
const char *scenario_path(void);
/* Milliseconds until a fault window of a system call (GPU `*`) opens or closes after now, or a
 * negative number when none will. Holds mu. */
double next_fault_change_in(const char *fn);

/* ---- blocking waits (nvml_sim_wait.c) ------------------------------------------------ */
typedef struct { int inotify_fd; int wake_fd; int slot; char name[256]; } change_watch_t;
/* Starts watching the scenario file and wake_waiters(). Open it before looking at the state, so
 * a change made after that look is not missed. Takes mu. */
void change_watch_open(change_watch_t *w);
/* Blocks up to ms, never holding mu, until the scenario file may have changed or wake_waiters()
 * ran (1) or the time passed (0). Without inotify it returns after at most EVENT_POLL_MS. */
int change_watch_wait(change_watch_t *w, double ms);
void change_watch_close(change_watch_t *w);
/* Ends every change_watch_wait now (an event set freed, NVML shut down). Holds mu. */
void wake_waiters(void);

#define BEGIN(h) do { nvmlReturn_t _rc = begin(__func__, (const handle_t *)(h), 1); if (_rc) return _rc; } while (0)
#define BEGIN_SYS() do { nvmlReturn_t _rc = begin(__func__, NULL, 0); if (_rc) return _rc; } while (0)
#define LOCK() pthread_mutex_lock(&mu)
#define UNLOCK() pthread_mutex_unlock(&mu)

#endif
