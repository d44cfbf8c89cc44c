/*
 * kge-sim: a simulated NVIDIA NVML library (libnvidia-ml.so.1) for tests and demos.
 *
 * Exports a subset of the NVML C API with the same names, argument lists, return codes
 * and struct layouts as the real library (x86-64 LP64), so an FFI binding written
 * against the real driver library loads this one unchanged. The values come from a
 * scenario file named by the KGE_SIM_STATE environment variable; see docs/simulator.md.
 *
 * Every exported function except the five core ones is wrapped in
 * `#ifndef KGE_OMIT_<symbol>` so that scripts/build-sim.mjs can build variants that
 * lack symbols, like older drivers do.
 *
 * Build: gcc -std=gnu11 -shared -fPIC -O2 -Wall -Wextra -Werror nvml_sim.c -lm -lpthread
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define EXPORT __attribute__((visibility("default")))

/* ------------------------------------------------------------------ NVML types */

typedef int nvmlReturn_t;
enum {
    NVML_SUCCESS = 0,
    NVML_ERROR_UNINITIALIZED = 1,
    NVML_ERROR_INVALID_ARGUMENT = 2,
    NVML_ERROR_NOT_SUPPORTED = 3,
    NVML_ERROR_NOT_FOUND = 6,
    NVML_ERROR_INSUFFICIENT_SIZE = 7,
    NVML_ERROR_DRIVER_NOT_LOADED = 9,
    NVML_ERROR_ARGUMENT_VERSION_MISMATCH = 25,
    NVML_ERROR_UNKNOWN = 999,
};

struct nvmlDevice_st { int pad[4]; };
typedef struct nvmlDevice_st *nvmlDevice_t;

typedef struct {
    char busIdLegacy[16];
    unsigned int domain;
    unsigned int bus;
    unsigned int device;
    unsigned int pciDeviceId;
    unsigned int pciSubSystemId;
    char busId[32];
} nvmlPciInfo_t;

typedef struct { unsigned int gpu; unsigned int memory; } nvmlUtilization_t;

typedef struct { unsigned long long total, free, used; } nvmlMemory_t;

typedef struct {
    unsigned int version;
    unsigned long long total, reserved, free, used;
} nvmlMemory_v2_t;

typedef struct {
    unsigned int pid;
    unsigned long long usedGpuMemory;
    unsigned int gpuInstanceId;
    unsigned int computeInstanceId;
} nvmlProcessInfo_t;

typedef union {
    double dVal;
    int siVal;
    unsigned int uiVal;
    unsigned long ulVal;
    unsigned long long ullVal;
    signed long long sllVal;
    unsigned short usVal;
} nvmlValue_t;

typedef struct {
    unsigned int fieldId;
    unsigned int scopeId;
    long long timestamp;
    long long latencyUsec;
    int valueType;
    int nvmlReturn;
    nvmlValue_t value;
} nvmlFieldValue_t;

_Static_assert(sizeof(nvmlPciInfo_t) == 68, "nvmlPciInfo_t size");
_Static_assert(offsetof(nvmlPciInfo_t, domain) == 16, "pci domain");
_Static_assert(offsetof(nvmlPciInfo_t, pciDeviceId) == 28, "pci device id");
_Static_assert(offsetof(nvmlPciInfo_t, pciSubSystemId) == 32, "pci subsystem id");
_Static_assert(offsetof(nvmlPciInfo_t, busId) == 36, "pci busId");
_Static_assert(sizeof(nvmlUtilization_t) == 8, "utilization size");
_Static_assert(sizeof(nvmlMemory_t) == 24, "memory size");
_Static_assert(sizeof(nvmlMemory_v2_t) == 40, "memory v2 size");
_Static_assert(offsetof(nvmlMemory_v2_t, total) == 8, "memory v2 total");
_Static_assert(offsetof(nvmlMemory_v2_t, used) == 32, "memory v2 used");
_Static_assert(sizeof(nvmlProcessInfo_t) == 24, "process info size");
_Static_assert(offsetof(nvmlProcessInfo_t, gpuInstanceId) == 16, "process gi");
_Static_assert(offsetof(nvmlProcessInfo_t, computeInstanceId) == 20, "process ci");
_Static_assert(sizeof(nvmlValue_t) == 8, "value size");
_Static_assert(sizeof(nvmlFieldValue_t) == 40, "field value size");
_Static_assert(offsetof(nvmlFieldValue_t, valueType) == 24, "field valueType");
_Static_assert(offsetof(nvmlFieldValue_t, nvmlReturn) == 28, "field nvmlReturn");
_Static_assert(offsetof(nvmlFieldValue_t, value) == 32, "field value");

#define MEMORY_V2_VERSION 0x02000028u
#define NA_U32 0xFFFFFFFFu

/* ------------------------------------------------------------------ scenario model */

#define MAX_GPUS 16
#define MAX_MIG 7
#define MAX_PROCS 256
#define MAX_RULES 256
#define MAX_PTS 32
#define STR_LEN 96

enum { SP_NONE = 0, SP_CONST, SP_WALK, SP_STEPS, SP_CYCLE };

typedef struct {
    int kind;
    double c;                       /* SP_CONST */
    uint64_t seed;                  /* SP_WALK */
    double lo, hi, step, period;    /* SP_WALK; period also for SP_CYCLE */
    int npts;                       /* SP_STEPS / SP_CYCLE */
    double pt[MAX_PTS], pv[MAX_PTS];
    int64_t wn;                     /* walk cache: step index, value, rng state */
    double wv;
    uint64_t wrng;
} spec_t;

enum {
    G_MINOR, G_MEM_TOTAL, G_MEM_RESERVED, G_MEM_USED, G_UTIL_GPU, G_UTIL_MEM, G_ENC, G_DEC,
    G_TEMP_GPU, G_TEMP_MEM, G_POWER, G_POWER_LIMIT, G_ENERGY_START,
    G_CLK_G, G_CLK_SM, G_CLK_MEM, G_CLK_VID, G_MCLK_G, G_MCLK_SM, G_MCLK_MEM, G_MCLK_VID,
    G_FAN, G_PSTATE, G_PCIE_TX, G_PCIE_RX, G_REASONS, G_MIG_MODE, G_PCI_DEV, G_PCI_SUBSYS,
    G_NUM
};
static const char *const gkey_names[G_NUM] = {
    "minor", "mem_total", "mem_reserved", "mem_used", "util_gpu", "util_mem", "enc_util", "dec_util",
    "temp_gpu", "temp_mem", "power_mw", "power_limit_mw", "energy_start_mj",
    "clock_graphics", "clock_sm", "clock_mem", "clock_video",
    "max_clock_graphics", "max_clock_sm", "max_clock_mem", "max_clock_video",
    "fan", "pstate", "pcie_tx_kbps", "pcie_rx_kbps", "clocks_event_reasons", "mig_mode",
    "pci_device_id", "pci_subsystem_id",
};
/* keys that must be plain numbers (identities, not time series) */
static const int gkey_plain[G_NUM] = { [G_MINOR] = 1, [G_PCI_DEV] = 1, [G_PCI_SUBSYS] = 1 };

enum { S_NAME, S_UUID, S_SERIAL, S_BUSID, S_NUM };
static const char *const skey_names[S_NUM] = { "name", "uuid", "serial", "pci_bus_id" };
static const unsigned skey_max[S_NUM] = { 96, 96, 30, 32 }; /* buffer sizes incl. NUL */

enum { M_GI, M_CI, M_MEM_TOTAL, M_MEM_RESERVED, M_MEM_USED, M_NUM };
static const char *const mkey_names[M_NUM] = { "gi", "ci", "mem_total", "mem_reserved", "mem_used" };
static const int mkey_plain[M_NUM] = { [M_GI] = 1, [M_CI] = 1 };

typedef struct {
    spec_t v[M_NUM];
    char uuid[STR_LEN], profile[STR_LEN];
    int has_uuid, has_profile;
    int used;
} mig_t;

typedef struct {
    spec_t v[G_NUM];
    char s[S_NUM][STR_LEN];
    int has_s[S_NUM];
    unsigned pci_domain, pci_bus, pci_dev, pci_fn;
    mig_t mig[MAX_MIG];
    int first_line; /* first line naming this GPU (for range errors) */
} gpu_t;

typedef struct {
    int line;
    int has_gpu, has_pid, has_gi, has_ci;
    unsigned gpu, pid, gi, ci;
    spec_t mem;
} proc_t;

typedef struct {
    char fn[64]; /* "" = any */
    int gpu;     /* -1 = any */
    double val;  /* code or ms */
    double from, until;
} rule_t;

typedef struct {
    char driver[80], nvml[80];
    int has_driver, has_nvml, has_cuda;
    int cuda;
    int device_count;
    gpu_t gpu[MAX_GPUS];
    gpu_t def;
    int def_used;
    proc_t proc[MAX_PROCS];
    rule_t fault[MAX_RULES], lat[MAX_RULES];
    int nfault, nlat;
} state_t;

/* every exported function name, for validating fault/latency lines */
static const char *const known_functions[] = {
    "nvmlInit_v2", "nvmlInitWithFlags", "nvmlShutdown", "nvmlErrorString",
    "nvmlSystemGetDriverVersion", "nvmlSystemGetNVMLVersion", "nvmlSystemGetCudaDriverVersion_v2",
    "nvmlDeviceGetCount_v2", "nvmlDeviceGetHandleByIndex_v2", "nvmlDeviceGetHandleByUUID",
    "nvmlDeviceGetIndex", "nvmlDeviceGetMinorNumber", "nvmlDeviceGetUUID", "nvmlDeviceGetName",
    "nvmlDeviceGetSerial", "nvmlDeviceGetPciInfo_v3", "nvmlDeviceGetUtilizationRates",
    "nvmlDeviceGetEncoderUtilization", "nvmlDeviceGetDecoderUtilization", "nvmlDeviceGetMemoryInfo",
    "nvmlDeviceGetMemoryInfo_v2", "nvmlDeviceGetTemperature", "nvmlDeviceGetPowerUsage",
    "nvmlDeviceGetEnforcedPowerLimit", "nvmlDeviceGetTotalEnergyConsumption", "nvmlDeviceGetClockInfo",
    "nvmlDeviceGetMaxClockInfo", "nvmlDeviceGetFanSpeed", "nvmlDeviceGetPerformanceState",
    "nvmlDeviceGetCurrentClocksEventReasons", "nvmlDeviceGetCurrentClocksThrottleReasons",
    "nvmlDeviceGetPcieThroughput", "nvmlDeviceGetComputeRunningProcesses_v3",
    "nvmlDeviceGetComputeRunningProcesses_v2", "nvmlDeviceGetMigMode", "nvmlDeviceGetMaxMigDeviceCount",
    "nvmlDeviceGetMigDeviceHandleByIndex", "nvmlDeviceGetDeviceHandleFromMigDeviceHandle",
    "nvmlDeviceGetGpuInstanceId", "nvmlDeviceGetComputeInstanceId", "nvmlDeviceIsMigDeviceHandle",
    "nvmlDeviceGetFieldValues",
};

/* ------------------------------------------------------------------ globals */

static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static int g_ref;                 /* init reference count */
static state_t *g_st;             /* current scenario */
static char g_path[4096];         /* scenario path captured at init */
static int g_t0_set;
static struct timespec g_t0;      /* first nvmlInit of the process */
static double g_last_check = -1e18;
static struct { int ok; dev_t dev; ino_t ino; struct timespec mt; off_t size; } g_seen;
static struct { int init; double mj; double last; } g_energy[MAX_GPUS];
/* handle storage: [gpu][0] = physical GPU, [gpu][1 + slot] = MIG slot */
static struct nvmlDevice_st g_handles[MAX_GPUS][1 + MAX_MIG];

#define LOCK() pthread_mutex_lock(&g_mu)
#define UNLOCK() pthread_mutex_unlock(&g_mu)

static double mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static double elapsed_ms(void)
{
    if (!g_t0_set) return 0;
    return mono_ms() - (g_t0.tv_sec * 1e3 + g_t0.tv_nsec / 1e6);
}

/* ------------------------------------------------------------------ value specs */

static uint64_t splitmix64(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static double pick_points(const spec_t *s, double t)
{
    double v = s->pv[0];
    for (int i = 0; i < s->npts && s->pt[i] <= t; i++) v = s->pv[i];
    return v;
}

/* must be called with g_mu held (walk caches) */
static double eval(spec_t *s, double t)
{
    switch (s->kind) {
    case SP_CONST:
        return s->c;
    case SP_WALK: {
        int64_t n = t > 0 ? (int64_t)floor(t / s->period) : 0;
        if (s->wn < 0 || n < s->wn) {
            s->wn = 0;
            s->wv = (s->lo + s->hi) / 2;
            s->wrng = s->seed;
        }
        while (s->wn < n) {
            double u = (splitmix64(&s->wrng) >> 11) * (1.0 / 9007199254740992.0);
            s->wv += (2 * u - 1) * s->step;
            if (s->wv < s->lo) s->wv = s->lo;
            if (s->wv > s->hi) s->wv = s->hi;
            s->wn++;
        }
        return s->wv;
    }
    case SP_STEPS:
        return pick_points(s, t);
    case SP_CYCLE:
        return pick_points(s, fmod(t > 0 ? t : 0, s->period));
    default:
        return 0;
    }
}

static unsigned eval_u32(spec_t *s, double t)
{
    double v = eval(s, t);
    if (!(v > 0)) return 0;
    if (v >= 4294967295.0) return 0xFFFFFFFFu;
    return (unsigned)llround(v);
}

static unsigned long long eval_u64(spec_t *s, double t)
{
    double v = eval(s, t);
    if (!(v > 0)) return 0;
    if (v >= 18446744073709549568.0) return ~0ull;
    return (unsigned long long)llround(v);
}

/* ------------------------------------------------------------------ parser */

typedef struct {
    const char *file;
    int line;
    char *err;
    size_t errlen;
} pctx_t;

__attribute__((format(printf, 2, 3)))
static int perr(pctx_t *p, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    snprintf(p->err, p->errlen, "kge-sim: %s:%d: %s", p->file, p->line, msg);
    return -1;
}

static char *trim(char *s)
{
    while (isspace((unsigned char)*s)) s++;
    size_t n = strlen(s);
    while (n && isspace((unsigned char)s[n - 1])) s[--n] = 0;
    return s;
}

/* one number: decimal (may be fractional or negative), 0x hex, optional KiB/MiB/GiB/TiB.
 * Parses exactly [s, s+len). Returns 0 on success. */
static int parse_number(const char *s, size_t len, double *out)
{
    char buf[128];
    while (len && isspace((unsigned char)*s)) s++, len--;
    while (len && isspace((unsigned char)s[len - 1])) len--;
    if (!len || len >= sizeof buf) return -1;
    memcpy(buf, s, len);
    buf[len] = 0;
    double mult = 1;
    static const struct { const char *suf; double m; } sufs[] = {
        { "KiB", 1024.0 }, { "MiB", 1048576.0 }, { "GiB", 1073741824.0 }, { "TiB", 1099511627776.0 },
    };
    for (size_t i = 0; i < sizeof sufs / sizeof sufs[0]; i++) {
        size_t sl = strlen(sufs[i].suf);
        if (len > sl && strcasecmp(buf + len - sl, sufs[i].suf) == 0) {
            mult = sufs[i].m;
            buf[len - sl] = 0;
            len -= sl;
            while (len && isspace((unsigned char)buf[len - 1])) buf[--len] = 0;
            break;
        }
    }
    const char *b = buf;
    int neg = 0;
    if (*b == '-' || *b == '+') neg = (*b++ == '-');
    char *end;
    double v;
    if (b[0] == '0' && (b[1] == 'x' || b[1] == 'X')) {
        if (!isxdigit((unsigned char)b[2])) return -1;
        errno = 0;
        unsigned long long u = strtoull(b + 2, &end, 16);
        if (errno) return -1;
        v = (double)u;
    } else {
        if (!isdigit((unsigned char)b[0]) && !(b[0] == '.' && isdigit((unsigned char)b[1]))) return -1;
        v = strtod(b, &end);
    }
    if (*end) return -1;
    *out = (neg ? -v : v) * mult;
    return 0;
}

/* split "a,b,c" inside parens into pointers; modifies the buffer */
static int split_args(char *s, char **args, int max)
{
    int n = 0;
    char *p = s;
    for (;;) {
        char *c = strchr(p, ',');
        if (n >= max) return -1;
        args[n++] = p;
        if (!c) break;
        *c = 0;
        p = c + 1;
    }
    return n;
}

static int parse_points(pctx_t *p, const char *what, char **args, int n, spec_t *sp)
{
    if (n < 1) return perr(p, "%s() needs at least one t:v point", what);
    if (n > MAX_PTS) return perr(p, "%s() has more than %d points", what, MAX_PTS);
    for (int i = 0; i < n; i++) {
        char *colon = strchr(args[i], ':');
        if (!colon) return perr(p, "%s() point '%s' is not t:v", what, trim(args[i]));
        if (parse_number(args[i], (size_t)(colon - args[i]), &sp->pt[i]) || sp->pt[i] < 0)
            return perr(p, "%s() point '%s': bad time", what, trim(args[i]));
        if (parse_number(colon + 1, strlen(colon + 1), &sp->pv[i]))
            return perr(p, "%s() point '%s': bad value", what, trim(args[i]));
        if (i && sp->pt[i] <= sp->pt[i - 1]) return perr(p, "%s() times must increase", what);
    }
    sp->npts = n;
    return 0;
}

static int parse_spec(pctx_t *p, const char *key, const char *value, int plain, spec_t *sp)
{
    char buf[1024];
    if (strlen(value) >= sizeof buf) return perr(p, "value of '%s' is too long", key);
    strcpy(buf, value);
    char *v = trim(buf);
    memset(sp, 0, sizeof *sp);
    sp->wn = -1;
    char *open = strchr(v, '(');
    if (open) {
        if (plain) return perr(p, "'%s' must be a plain number", key);
        size_t n = strlen(v);
        if (v[n - 1] != ')') return perr(p, "bad value for '%s': missing ')'", key);
        v[n - 1] = 0;
        *open = 0;
        char *fname = trim(v);
        char *args[MAX_PTS + 2];
        int na = split_args(open + 1, args, MAX_PTS + 2);
        if (na < 0) return perr(p, "too many arguments in %s()", fname);
        if (strcmp(fname, "walk") == 0) {
            double a[5];
            if (na != 5) return perr(p, "walk() needs 5 arguments: seed,min,max,step,period_ms");
            for (int i = 0; i < 5; i++)
                if (parse_number(args[i], strlen(args[i]), &a[i]))
                    return perr(p, "walk(): bad number '%s'", trim(args[i]));
            if (a[0] < 0 || a[0] != floor(a[0])) return perr(p, "walk(): seed must be a non-negative integer");
            if (a[1] > a[2]) return perr(p, "walk(): min is greater than max");
            if (a[3] < 0) return perr(p, "walk(): step must not be negative");
            if (a[4] <= 0) return perr(p, "walk(): period_ms must be positive");
            sp->kind = SP_WALK;
            sp->seed = (uint64_t)a[0];
            sp->lo = a[1];
            sp->hi = a[2];
            sp->step = a[3];
            sp->period = a[4];
            return 0;
        }
        if (strcmp(fname, "steps") == 0) {
            sp->kind = SP_STEPS;
            return parse_points(p, "steps", args, na, sp);
        }
        if (strcmp(fname, "cycle") == 0) {
            if (na < 2) return perr(p, "cycle() needs period_ms and at least one t:v point");
            if (parse_number(args[0], strlen(args[0]), &sp->period) || sp->period <= 0)
                return perr(p, "cycle(): bad period_ms '%s'", trim(args[0]));
            sp->kind = SP_CYCLE;
            return parse_points(p, "cycle", args + 1, na - 1, sp);
        }
        return perr(p, "unknown value function '%s' (expected walk, steps or cycle)", fname);
    }
    if (parse_number(v, strlen(v), &sp->c)) return perr(p, "bad number '%s' for '%s'", v, key);
    sp->kind = SP_CONST;
    return 0;
}

static int parse_index(const char *s, size_t len, int max, int *out)
{
    if (len == 1 && s[0] == '*') { *out = -1; return 0; }
    if (!len || len > 4) return -1;
    int v = 0;
    for (size_t i = 0; i < len; i++) {
        if (!isdigit((unsigned char)s[i])) return -1;
        v = v * 10 + (s[i] - '0');
    }
    if (v >= max) return -2;
    *out = v;
    return 0;
}

static int parse_plain_u32(pctx_t *p, const char *key, const char *value, unsigned *out)
{
    double d;
    if (parse_number(value, strlen(value), &d) || d < 0 || d > 4294967295.0 || d != floor(d))
        return perr(p, "'%s' must be a non-negative integer, got '%s'", key, value);
    *out = (unsigned)d;
    return 0;
}

static int parse_busid(const char *v, gpu_t *g)
{
    unsigned d, b, dev, fn;
    char tail;
    if (sscanf(v, "%x:%x:%x.%x%c", &d, &b, &dev, &fn, &tail) != 4) return -1;
    if (b > 0xFF || dev > 0x1F || fn > 7) return -1;
    g->pci_domain = d;
    g->pci_bus = b;
    g->pci_dev = dev;
    g->pci_fn = fn;
    snprintf(g->s[S_BUSID], STR_LEN, "%08X:%02X:%02X.%X", d, b, dev, fn);
    return 0;
}

static int parse_rule(pctx_t *p, state_t *st, int is_fault, char *value)
{
    char *tok[6];
    int n = 0;
    for (char *s = strtok(value, " \t"); s; s = strtok(NULL, " \t")) {
        if (n == 6) return perr(p, "too many fields; expected %s <function|*> <gpu|*> <%s> [from_ms [until_ms]]",
                                is_fault ? "fault" : "latency", is_fault ? "code" : "ms");
        tok[n++] = s;
    }
    if (n < 3 || n > 5)
        return perr(p, "expected %s <function|*> <gpu|*> <%s> [from_ms [until_ms]]",
                    is_fault ? "fault" : "latency", is_fault ? "code" : "ms");
    rule_t r;
    memset(&r, 0, sizeof r);
    if (strcmp(tok[0], "*") != 0) {
        int ok = 0;
        for (size_t i = 0; i < sizeof known_functions / sizeof known_functions[0]; i++)
            if (strcmp(tok[0], known_functions[i]) == 0) ok = 1;
        if (!ok) return perr(p, "unknown function '%s'", tok[0]);
        snprintf(r.fn, sizeof r.fn, "%s", tok[0]);
    }
    int rc = parse_index(tok[1], strlen(tok[1]), MAX_GPUS, &r.gpu);
    if (rc == -2) return perr(p, "gpu index '%s' out of range (0..%d)", tok[1], MAX_GPUS - 1);
    if (rc) return perr(p, "bad gpu index '%s' (a number or *)", tok[1]);
    if (parse_number(tok[2], strlen(tok[2]), &r.val) || r.val < 0 || r.val != floor(r.val))
        return perr(p, "bad %s '%s'", is_fault ? "return code" : "latency ms", tok[2]);
    if (is_fault && r.val == 0) return perr(p, "fault code 0 is SUCCESS; give an error code");
    r.from = 0;
    r.until = INFINITY;
    if (n >= 4 && (parse_number(tok[3], strlen(tok[3]), &r.from) || r.from < 0))
        return perr(p, "bad from_ms '%s'", tok[3]);
    if (n >= 5 && (parse_number(tok[4], strlen(tok[4]), &r.until) || r.until < r.from))
        return perr(p, "bad until_ms '%s'", tok[4]);
    if (is_fault) {
        if (st->nfault >= MAX_RULES) return perr(p, "too many fault lines (max %d)", MAX_RULES);
        st->fault[st->nfault++] = r;
    } else {
        if (st->nlat >= MAX_RULES) return perr(p, "too many latency lines (max %d)", MAX_RULES);
        st->lat[st->nlat++] = r;
    }
    return 0;
}

static int parse_gpu_line(pctx_t *p, state_t *st, const char *key, const char *value)
{
    const char *rest = key + 4; /* after "gpu." */
    const char *dot = strchr(rest, '.');
    if (!dot) return perr(p, "unknown key '%s' (expected gpu.<i>.<key>)", key);
    int idx;
    int rc = parse_index(rest, (size_t)(dot - rest), MAX_GPUS, &idx);
    if (rc == -2) return perr(p, "gpu index out of range in '%s' (0..%d)", key, MAX_GPUS - 1);
    if (rc) return perr(p, "bad gpu index in '%s'", key);
    gpu_t *g = idx < 0 ? &st->def : &st->gpu[idx];
    if (idx < 0) st->def_used = 1;
    else if (!g->first_line) g->first_line = p->line;
    const char *k = dot + 1;

    if (strncmp(k, "mig.", 4) == 0) {
        const char *s = k + 4;
        const char *d2 = strchr(s, '.');
        int slot;
        if (!d2 || parse_index(s, (size_t)(d2 - s), MAX_MIG, &slot) || slot < 0)
            return perr(p, "bad MIG slot in '%s' (expected gpu.<i>.mig.<0..%d>.<key>)", key, MAX_MIG - 1);
        mig_t *m = &g->mig[slot];
        const char *mk = d2 + 1;
        m->used = 1;
        if (strcmp(mk, "uuid") == 0 || strcmp(mk, "profile") == 0) {
            if (strlen(value) >= 80) return perr(p, "'%s' is too long", key);
            if (mk[0] == 'u') { snprintf(m->uuid, STR_LEN, "%s", value); m->has_uuid = 1; }
            else { snprintf(m->profile, STR_LEN, "%s", value); m->has_profile = 1; }
            return 0;
        }
        for (int i = 0; i < M_NUM; i++)
            if (strcmp(mk, mkey_names[i]) == 0) return parse_spec(p, key, value, mkey_plain[i], &m->v[i]);
        return perr(p, "unknown MIG key '%s'", mk);
    }
    for (int i = 0; i < S_NUM; i++) {
        if (strcmp(k, skey_names[i]) != 0) continue;
        if (strlen(value) >= skey_max[i]) return perr(p, "'%s' is too long (max %u characters)", key, skey_max[i] - 1);
        if (i == S_BUSID) {
            if (parse_busid(value, g)) return perr(p, "bad pci_bus_id '%s' (expected DDDDDDDD:BB:DD.F in hex)", value);
        } else {
            snprintf(g->s[i], STR_LEN, "%s", value);
        }
        g->has_s[i] = 1;
        return 0;
    }
    for (int i = 0; i < G_NUM; i++)
        if (strcmp(k, gkey_names[i]) == 0) return parse_spec(p, key, value, gkey_plain[i], &g->v[i]);
    return perr(p, "unknown key '%s'", key);
}

static int parse_proc_line(pctx_t *p, state_t *st, const char *key, const char *value)
{
    const char *rest = key + 5;
    const char *dot = strchr(rest, '.');
    int idx;
    if (!dot) return perr(p, "unknown key '%s' (expected proc.<k>.<key>)", key);
    int rc = parse_index(rest, (size_t)(dot - rest), MAX_PROCS, &idx);
    if (rc == -2) return perr(p, "process index out of range in '%s' (0..%d)", key, MAX_PROCS - 1);
    if (rc || idx < 0) return perr(p, "bad process index in '%s'", key);
    proc_t *pr = &st->proc[idx];
    if (!pr->line) pr->line = p->line;
    const char *k = dot + 1;
    if (strcmp(k, "mem") == 0) return parse_spec(p, key, value, 0, &pr->mem);
    unsigned *dst;
    int *has;
    if (strcmp(k, "gpu") == 0) dst = &pr->gpu, has = &pr->has_gpu;
    else if (strcmp(k, "pid") == 0) dst = &pr->pid, has = &pr->has_pid;
    else if (strcmp(k, "gi") == 0) dst = &pr->gi, has = &pr->has_gi;
    else if (strcmp(k, "ci") == 0) dst = &pr->ci, has = &pr->has_ci;
    else return perr(p, "unknown process key '%s'", k);
    if (parse_plain_u32(p, key, value, dst)) return -1;
    *has = 1;
    return 0;
}

static void merge_spec(spec_t *dst, const spec_t *src, int gpu)
{
    if (dst->kind != SP_NONE || src->kind == SP_NONE) return;
    *dst = *src;
    if (dst->kind == SP_WALK) dst->seed += (uint64_t)gpu;
}

/* parse a scenario file. Returns 0, or -1 unreadable (err set), -2 parse error (err set) */
static int parse_file(const char *path, state_t **out, char *err, size_t errlen)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, errlen, "kge-sim: cannot read scenario %s: %s", path, strerror(errno));
        return -1;
    }
    state_t *st = calloc(1, sizeof *st);
    if (!st) {
        fclose(f);
        snprintf(err, errlen, "kge-sim: out of memory");
        return -1;
    }
    pctx_t p = { path, 0, err, errlen };
    char *line = NULL;
    size_t cap = 0;
    int rc = 0, have_count = 0;
    while (getline(&line, &cap, f) >= 0) {
        p.line++;
        /* comments: '#' at line start or after whitespace */
        for (char *c = line; *c; c++)
            if (*c == '#' && (c == line || isspace((unsigned char)c[-1]))) { *c = 0; break; }
        char *s = trim(line);
        if (!*s) continue;
        char *key = s, *value = s;
        while (*value && !isspace((unsigned char)*value)) value++;
        if (*value) *value++ = 0;
        value = trim(value);
        if (!*value) { rc = perr(&p, "missing value for '%s'", key); break; }

        if (strcmp(key, "driver_version") == 0 || strcmp(key, "nvml_version") == 0) {
            if (strlen(value) >= 80) { rc = perr(&p, "'%s' is too long", key); break; }
            if (key[0] == 'd') { snprintf(st->driver, 80, "%s", value); st->has_driver = 1; }
            else { snprintf(st->nvml, 80, "%s", value); st->has_nvml = 1; }
        } else if (strcmp(key, "cuda_version") == 0) {
            unsigned v;
            if ((rc = parse_plain_u32(&p, key, value, &v))) break;
            st->cuda = (int)v;
            st->has_cuda = 1;
        } else if (strcmp(key, "device_count") == 0) {
            unsigned v;
            if ((rc = parse_plain_u32(&p, key, value, &v))) break;
            if (v > MAX_GPUS) { rc = perr(&p, "device_count %u is more than %d", v, MAX_GPUS); break; }
            st->device_count = (int)v;
            have_count = 1;
        } else if (strcmp(key, "fault") == 0 || strcmp(key, "latency") == 0) {
            if ((rc = parse_rule(&p, st, key[0] == 'f', value))) break;
        } else if (strncmp(key, "gpu.", 4) == 0) {
            if ((rc = parse_gpu_line(&p, st, key, value))) break;
        } else if (strncmp(key, "proc.", 5) == 0) {
            if ((rc = parse_proc_line(&p, st, key, value))) break;
        } else {
            rc = perr(&p, "unknown key '%s'", key);
            break;
        }
    }
    free(line);
    fclose(f);
    if (!rc) {
        (void)have_count;
        for (int i = st->device_count; i < MAX_GPUS && !rc; i++)
            if (st->gpu[i].first_line) {
                p.line = st->gpu[i].first_line;
                rc = perr(&p, "gpu index %d out of range (device_count is %d)", i, st->device_count);
            }
        for (int k = 0; k < MAX_PROCS && !rc; k++) {
            proc_t *pr = &st->proc[k];
            if (!pr->line) continue;
            p.line = pr->line;
            if (!pr->has_gpu || !pr->has_pid) rc = perr(&p, "proc.%d needs both gpu and pid", k);
            else if ((int)pr->gpu >= st->device_count)
                rc = perr(&p, "proc.%d: gpu %u out of range (device_count is %d)", k, pr->gpu, st->device_count);
        }
    }
    if (rc) {
        free(st);
        return -2;
    }
    /* apply gpu.* defaults */
    for (int i = 0; i < st->device_count; i++) {
        gpu_t *g = &st->gpu[i], *d = &st->def;
        for (int k = 0; k < G_NUM; k++) merge_spec(&g->v[k], &d->v[k], i);
        for (int k = 0; k < S_NUM; k++)
            if (!g->has_s[k] && d->has_s[k]) {
                memcpy(g->s[k], d->s[k], STR_LEN);
                g->has_s[k] = 1;
                if (k == S_BUSID) {
                    g->pci_domain = d->pci_domain;
                    g->pci_bus = d->pci_bus;
                    g->pci_dev = d->pci_dev;
                    g->pci_fn = d->pci_fn;
                }
            }
        for (int m = 0; m < MAX_MIG; m++) {
            mig_t *gm = &g->mig[m], *dm = &d->mig[m];
            if (!dm->used) continue;
            gm->used = 1;
            for (int k = 0; k < M_NUM; k++) merge_spec(&gm->v[k], &dm->v[k], i);
            if (!gm->has_uuid && dm->has_uuid) { memcpy(gm->uuid, dm->uuid, STR_LEN); gm->has_uuid = 1; }
            if (!gm->has_profile && dm->has_profile) { memcpy(gm->profile, dm->profile, STR_LEN); gm->has_profile = 1; }
        }
    }
    *out = st;
    return 0;
}

/* ------------------------------------------------------------------ loading / reloading */

static void energy_seed(void)
{
    double t = elapsed_ms();
    for (int i = 0; i < g_st->device_count; i++) {
        if (g_energy[i].init) continue;
        g_energy[i].init = 1;
        spec_t *s = &g_st->gpu[i].v[G_ENERGY_START];
        g_energy[i].mj = s->kind ? eval(s, t) : 0;
        g_energy[i].last = t;
    }
}

static int stat_changed(struct stat *sb)
{
    return !g_seen.ok || sb->st_dev != g_seen.dev || sb->st_ino != g_seen.ino || sb->st_size != g_seen.size ||
           sb->st_mtim.tv_sec != g_seen.mt.tv_sec || sb->st_mtim.tv_nsec != g_seen.mt.tv_nsec;
}

static void remember_stat(struct stat *sb)
{
    g_seen.ok = 1;
    g_seen.dev = sb->st_dev;
    g_seen.ino = sb->st_ino;
    g_seen.size = sb->st_size;
    g_seen.mt = sb->st_mtim;
}

/* with g_mu held and initialized: reload the scenario when the file changed */
static void maybe_reload(void)
{
    double now = mono_ms();
    if (now - g_last_check < 20) return;
    g_last_check = now;
    struct stat sb;
    if (stat(g_path, &sb) != 0) {
        if (g_seen.ok) {
            fprintf(stderr, "kge-sim: cannot stat scenario %s: %s (keeping the previous state)\n", g_path, strerror(errno));
            g_seen.ok = 0; /* print once; reload when it is back */
        }
        return;
    }
    if (!stat_changed(&sb)) return;
    remember_stat(&sb);
    char err[1024];
    state_t *st = NULL;
    if (parse_file(g_path, &st, err, sizeof err) != 0) {
        fprintf(stderr, "%s (keeping the previous state)\n", err);
        return;
    }
    free(g_st);
    g_st = st;
    energy_seed();
}

/* ------------------------------------------------------------------ rules */

static double rule_latency(const char *fn, int gpu, double t)
{
    double ms = 0;
    for (int i = 0; i < g_st->nlat; i++) {
        rule_t *r = &g_st->lat[i];
        if (r->fn[0] && strcmp(r->fn, fn) != 0) continue;
        if (r->gpu >= 0 && r->gpu != gpu) continue;
        if (t < r->from || t >= r->until) continue;
        if (r->val > ms) ms = r->val;
    }
    return ms;
}

static int rule_fault(const char *fn, int gpu, double t)
{
    for (int i = 0; i < g_st->nfault; i++) {
        rule_t *r = &g_st->fault[i];
        if (r->fn[0] && strcmp(r->fn, fn) != 0) continue;
        if (r->gpu >= 0 && r->gpu != gpu) continue;
        if (t < r->from || t >= r->until) continue;
        return (int)r->val;
    }
    return 0;
}

static void sleep_ms(double ms)
{
    struct timespec ts = { (time_t)(ms / 1000), (long)(fmod(ms, 1000) * 1e6) };
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {}
}

/* ------------------------------------------------------------------ call prologue */

typedef struct {
    int gpu;      /* physical GPU index, -1 for system calls */
    int slot;     /* MIG slot, -1 for a physical GPU handle */
    gpu_t *g;
    mig_t *m;
    double t;     /* ms since first init */
} ref_t;

enum { F_DEV = 1, F_MIG_OK = 2, F_GPU_ARG = 4 };

static nvmlDevice_t handle_of(int gpu, int slot) { return &g_handles[gpu][slot + 1]; }

static int resolve(nvmlDevice_t d, ref_t *r)
{
    if (!d) return NVML_ERROR_INVALID_ARGUMENT;
    uintptr_t base = (uintptr_t)&g_handles[0][0], p = (uintptr_t)d;
    if (p < base || p >= base + sizeof g_handles || (p - base) % sizeof(struct nvmlDevice_st))
        return NVML_ERROR_INVALID_ARGUMENT;
    size_t idx = (p - base) / sizeof(struct nvmlDevice_st);
    int gpu = (int)(idx / (1 + MAX_MIG)), slot = (int)(idx % (1 + MAX_MIG)) - 1;
    if (gpu >= g_st->device_count) return NVML_ERROR_INVALID_ARGUMENT;
    r->gpu = gpu;
    r->slot = slot;
    r->g = &g_st->gpu[gpu];
    r->m = NULL;
    if (slot >= 0) {
        spec_t *mm = &r->g->v[G_MIG_MODE];
        if (!mm->kind || eval_u32(mm, r->t) != 1 || !r->g->mig[slot].used) return NVML_ERROR_INVALID_ARGUMENT;
        r->m = &r->g->mig[slot];
    }
    return 0;
}

/* On success returns 0 with g_mu held; on error returns the code with g_mu released. */
static nvmlReturn_t begin(const char *fn, nvmlDevice_t d, int flags, int gpu_arg, ref_t *r)
{
    LOCK();
    if (!g_ref) { UNLOCK(); return NVML_ERROR_UNINITIALIZED; }
    maybe_reload();
    r->gpu = (flags & F_GPU_ARG) ? gpu_arg : -1;
    r->slot = -1;
    r->g = NULL;
    r->m = NULL;
    r->t = elapsed_ms();
    int rc;
    if ((flags & F_DEV) && (rc = resolve(d, r))) { UNLOCK(); return rc; }
    double lat = rule_latency(fn, r->gpu, r->t);
    if (lat > 0) {
        UNLOCK();
        sleep_ms(lat);
        LOCK();
        if (!g_ref) { UNLOCK(); return NVML_ERROR_UNINITIALIZED; }
        maybe_reload();
        r->t = elapsed_ms();
        if ((flags & F_DEV) && (rc = resolve(d, r))) { UNLOCK(); return rc; }
    }
    if ((rc = rule_fault(fn, r->gpu, r->t))) { UNLOCK(); return rc; }
    if ((flags & F_DEV) && r->slot >= 0 && !(flags & F_MIG_OK)) { UNLOCK(); return NVML_ERROR_NOT_SUPPORTED; }
    return NVML_SUCCESS;
}

static nvmlReturn_t fin(nvmlReturn_t rc)
{
    UNLOCK();
    return rc;
}

static nvmlReturn_t put_str(char *buf, unsigned len, const char *s)
{
    size_t n = strlen(s) + 1;
    if (len < n) return NVML_ERROR_INSUFFICIENT_SIZE;
    memcpy(buf, s, n);
    return NVML_SUCCESS;
}

#define DEF(g, k) ((g)->v[k].kind != SP_NONE)

/* read a uint gpu value: NOT_SUPPORTED when undefined */
static nvmlReturn_t get_u32(ref_t *r, int key, unsigned *out)
{
    spec_t *s = &r->g->v[key];
    if (!s->kind) return NVML_ERROR_NOT_SUPPORTED;
    *out = eval_u32(s, r->t);
    return NVML_SUCCESS;
}

static int mig_enabled(ref_t *r)
{
    spec_t *s = &r->g->v[G_MIG_MODE];
    return s->kind && eval_u32(s, r->t) == 1;
}

/* ------------------------------------------------------------------ init / shutdown */

static nvmlReturn_t do_init(const char *fn)
{
    LOCK();
    if (!g_t0_set) {
        clock_gettime(CLOCK_MONOTONIC, &g_t0);
        g_t0_set = 1;
    }
    if (g_ref == 0) {
        const char *path = getenv("KGE_SIM_STATE");
        if (!path || !*path) {
            fprintf(stderr, "kge-sim: KGE_SIM_STATE is not set (it must name a scenario file)\n");
            UNLOCK();
            return NVML_ERROR_DRIVER_NOT_LOADED;
        }
        if (strlen(path) >= sizeof g_path) {
            fprintf(stderr, "kge-sim: KGE_SIM_STATE path is too long\n");
            UNLOCK();
            return NVML_ERROR_DRIVER_NOT_LOADED;
        }
        char err[1024];
        state_t *st = NULL;
        struct stat sb;
        int have_stat = stat(path, &sb) == 0;
        int rc = parse_file(path, &st, err, sizeof err);
        if (rc) {
            fprintf(stderr, "%s\n", err);
            UNLOCK();
            return rc == -1 ? NVML_ERROR_DRIVER_NOT_LOADED : NVML_ERROR_UNKNOWN;
        }
        free(g_st);
        g_st = st;
        strcpy(g_path, path);
        g_seen.ok = 0;
        if (have_stat) remember_stat(&sb);
        g_last_check = mono_ms();
        energy_seed();
    } else {
        maybe_reload();
    }
    double t = elapsed_ms();
    double lat = rule_latency(fn, -1, t);
    if (lat > 0) {
        UNLOCK();
        sleep_ms(lat);
        LOCK();
        t = elapsed_ms();
    }
    int f = rule_fault(fn, -1, t);
    if (f) { UNLOCK(); return f; }
    g_ref++;
    UNLOCK();
    return NVML_SUCCESS;
}

EXPORT nvmlReturn_t nvmlInit_v2(void) { return do_init("nvmlInit_v2"); }

#ifndef KGE_OMIT_nvmlInitWithFlags
EXPORT nvmlReturn_t nvmlInitWithFlags(unsigned int flags)
{
    (void)flags;
    return do_init("nvmlInitWithFlags");
}
#endif

EXPORT nvmlReturn_t nvmlShutdown(void)
{
    LOCK();
    if (!g_ref) { UNLOCK(); return NVML_ERROR_UNINITIALIZED; }
    g_ref--;
    UNLOCK();
    return NVML_SUCCESS;
}

EXPORT const char *nvmlErrorString(nvmlReturn_t r)
{
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
    case 17: return "The operating system has blocked the request.";
    case 18: return "RM has detected an NVML/RM version mismatch.";
    case 19: return "In use by another client";
    case 20: return "Insufficient Memory";
    case 21: return "No data";
    case 22: return "The requested vgpu operation is not available on target device, because ECC is enabled";
    case 23: return "Ran out of critical resources, other than memory";
    case 24: return "Frequency not supported";
    case 25: return "Argument Version Mismatch";
    case 26: return "The requested functionality has been deprecated";
    case 27: return "System is not ready for the request";
    case 28: return "No GPUs were found";
    case 29: return "Resource not in correct state to perform requested operation";
    default: return "Unknown Error";
    }
}

/* ------------------------------------------------------------------ system */

#ifndef KGE_OMIT_nvmlSystemGetDriverVersion
EXPORT nvmlReturn_t nvmlSystemGetDriverVersion(char *version, unsigned int length)
{
    ref_t r;
    nvmlReturn_t rc = begin("nvmlSystemGetDriverVersion", NULL, 0, 0, &r);
    if (rc) return rc;
    if (!version) return fin(NVML_ERROR_INVALID_ARGUMENT);
    if (!g_st->has_driver) return fin(NVML_ERROR_NOT_SUPPORTED);
    return fin(put_str(version, length, g_st->driver));
}
#endif

#ifndef KGE_OMIT_nvmlSystemGetNVMLVersion
EXPORT nvmlReturn_t nvmlSystemGetNVMLVersion(char *version, unsigned int length)
{
    ref_t r;
    nvmlReturn_t rc = begin("nvmlSystemGetNVMLVersion", NULL, 0, 0, &r);
    if (rc) return rc;
    if (!version) return fin(NVML_ERROR_INVALID_ARGUMENT);
    if (!g_st->has_nvml) return fin(NVML_ERROR_NOT_SUPPORTED);
    return fin(put_str(version, length, g_st->nvml));
}
#endif

#ifndef KGE_OMIT_nvmlSystemGetCudaDriverVersion_v2
EXPORT nvmlReturn_t nvmlSystemGetCudaDriverVersion_v2(int *cudaDriverVersion)
{
    ref_t r;
    nvmlReturn_t rc = begin("nvmlSystemGetCudaDriverVersion_v2", NULL, 0, 0, &r);
    if (rc) return rc;
    if (!cudaDriverVersion) return fin(NVML_ERROR_INVALID_ARGUMENT);
    if (!g_st->has_cuda) return fin(NVML_ERROR_NOT_SUPPORTED);
    *cudaDriverVersion = g_st->cuda;
    return fin(NVML_SUCCESS);
}
#endif

/* ------------------------------------------------------------------ enumeration */

EXPORT nvmlReturn_t nvmlDeviceGetCount_v2(unsigned int *deviceCount)
{
    ref_t r;
    nvmlReturn_t rc = begin("nvmlDeviceGetCount_v2", NULL, 0, 0, &r);
    if (rc) return rc;
    if (!deviceCount) return fin(NVML_ERROR_INVALID_ARGUMENT);
    *deviceCount = (unsigned)g_st->device_count;
    return fin(NVML_SUCCESS);
}

EXPORT nvmlReturn_t nvmlDeviceGetHandleByIndex_v2(unsigned int index, nvmlDevice_t *device)
{
    ref_t r;
    nvmlReturn_t rc = begin("nvmlDeviceGetHandleByIndex_v2", NULL, F_GPU_ARG, index < MAX_GPUS ? (int)index : -1, &r);
    if (rc) return rc;
    if (!device || index >= (unsigned)g_st->device_count) return fin(NVML_ERROR_INVALID_ARGUMENT);
    *device = handle_of((int)index, -1);
    return fin(NVML_SUCCESS);
}

#ifndef KGE_OMIT_nvmlDeviceGetHandleByUUID
/* with g_mu held: find a GPU or (enabled) MIG handle by UUID */
static int find_uuid(const char *uuid, double t, int *gpu, int *slot)
{
    for (int i = 0; i < g_st->device_count; i++) {
        gpu_t *g = &g_st->gpu[i];
        if (g->has_s[S_UUID] && strcmp(g->s[S_UUID], uuid) == 0) { *gpu = i; *slot = -1; return 1; }
        spec_t *mm = &g->v[G_MIG_MODE];
        if (!mm->kind || eval_u32(mm, t) != 1) continue;
        for (int m = 0; m < MAX_MIG; m++)
            if (g->mig[m].used && g->mig[m].has_uuid && strcmp(g->mig[m].uuid, uuid) == 0) {
                *gpu = i;
                *slot = m;
                return 1;
            }
    }
    return 0;
}

EXPORT nvmlReturn_t nvmlDeviceGetHandleByUUID(const char *uuid, nvmlDevice_t *device)
{
    int gpu = -1, slot = -1;
    LOCK();
    if (g_ref && uuid) find_uuid(uuid, elapsed_ms(), &gpu, &slot);
    UNLOCK();
    ref_t r;
    nvmlReturn_t rc = begin("nvmlDeviceGetHandleByUUID", NULL, F_GPU_ARG, gpu, &r);
    if (rc) return rc;
    if (!uuid || !device) return fin(NVML_ERROR_INVALID_ARGUMENT);
    if (!find_uuid(uuid, r.t, &gpu, &slot)) return fin(NVML_ERROR_NOT_FOUND);
    *device = handle_of(gpu, slot);
    return fin(NVML_SUCCESS);
}
#endif

#ifndef KGE_OMIT_nvmlDeviceGetIndex
EXPORT nvmlReturn_t nvmlDeviceGetIndex(nvmlDevice_t device, unsigned int *index)
{
    ref_t r;
    nvmlReturn_t rc = begin("nvmlDeviceGetIndex", device, F_DEV, 0, &r);
    if (rc) return rc;
    if (!index) return fin(NVML_ERROR_INVALID_ARGUMENT);
    *index = (unsigned)r.gpu;
    return fin(NVML_SUCCESS);
}
#endif

#ifndef KGE_OMIT_nvmlDeviceGetMinorNumber
EXPORT nvmlReturn_t nvmlDeviceGetMinorNumber(nvmlDevice_t device, unsigned int *minorNumber)
{
    ref_t r;
    nvmlReturn_t rc = begin("nvmlDeviceGetMinorNumber", device, F_DEV, 0, &r);
    if (rc) return rc;
    if (!minorNumber) return fin(NVML_ERROR_INVALID_ARGUMENT);
    return fin(get_u32(&r, G_MINOR, minorNumber));
}
#endif

/* ------------------------------------------------------------------ identity */

#ifndef KGE_OMIT_nvmlDeviceGetUUID
EXPORT nvmlReturn_t nvmlDeviceGetUUID(nvmlDevice_t device, char *uuid, unsigned int length)
{
    ref_t r;
    nvmlReturn_t rc = begin("nvmlDeviceGetUUID", device, F_DEV | F_MIG_OK, 0, &r);
    if (rc) return rc;
    if (!uuid) return fin(NVML_ERROR_INVALID_ARGUMENT);
    if (r.m) return fin(r.m->has_uuid ? put_str(uuid, length, r.m->uuid) : NVML_ERROR_NOT_SUPPORTED);
    if (!r.g->has_s[S_UUID]) return fin(NVML_ERROR_NOT_SUPPORTED);
    return fin(put_str(uuid, length, r.g->s[S_UUID]));
}
#endif

#ifndef KGE_OMIT_nvmlDeviceGetName
EXPORT nvmlReturn_t nvmlDeviceGetName(nvmlDevice_t device, char *name, unsigned int length)
{
    ref_t r;
    nvmlReturn_t rc = begin("nvmlDeviceGetName", device, F_DEV | F_MIG_OK, 0, &r);
    if (rc) return rc;
    if (!name) return fin(NVML_ERROR_INVALID_ARGUMENT);
    if (!r.g->has_s[S_NAME]) return fin(NVML_ERROR_NOT_SUPPORTED);
    if (r.m) {
        if (!r.m->has_profile) return fin(NVML_ERROR_NOT_SUPPORTED);
        char buf[2 * STR_LEN + 8];
        snprintf(buf, sizeof buf, "%s MIG %s", r.g->s[S_NAME], r.m->profile);
        return fin(put_str(name, length, buf));
    }
    return fin(put_str(name, length, r.g->s[S_NAME]));
}
#endif

#ifndef KGE_OMIT_nvmlDeviceGetSerial
EXPORT nvmlReturn_t nvmlDeviceGetSerial(nvmlDevice_t device, char *serial, unsigned int length)
{
    ref_t r;
    nvmlReturn_t rc = begin("nvmlDeviceGetSerial", device, F_DEV, 0, &r);
    if (rc) return rc;
    if (!serial) return fin(NVML_ERROR_INVALID_ARGUMENT);
    if (!r.g->has_s[S_SERIAL]) return fin(NVML_ERROR_NOT_SUPPORTED);
    return fin(put_str(serial, length, r.g->s[S_SERIAL]));
}
#endif

#ifndef KGE_OMIT_nvmlDeviceGetPciInfo_v3
EXPORT nvmlReturn_t nvmlDeviceGetPciInfo_v3(nvmlDevice_t device, nvmlPciInfo_t *pci)
{
    ref_t r;
    nvmlReturn_t rc = begin("nvmlDeviceGetPciInfo_v3", device, F_DEV, 0, &r);
    if (rc) return rc;
    if (!pci) return fin(NVML_ERROR_INVALID_ARGUMENT);
    if (!r.g->has_s[S_BUSID]) return fin(NVML_ERROR_NOT_SUPPORTED);
    memset(pci, 0, sizeof *pci);
    snprintf(pci->busIdLegacy, sizeof pci->busIdLegacy, "%04X:%02X:%02X.%X", r.g->pci_domain & 0xFFFF,
             r.g->pci_bus, r.g->pci_dev, r.g->pci_fn);
    snprintf(pci->busId, sizeof pci->busId, "%08X:%02X:%02X.%X", r.g->pci_domain, r.g->pci_bus, r.g->pci_dev,
             r.g->pci_fn);
    pci->domain = r.g->pci_domain;
    pci->bus = r.g->pci_bus;
    pci->device = r.g->pci_dev;
    pci->pciDeviceId = DEF(r.g, G_PCI_DEV) ? eval_u32(&r.g->v[G_PCI_DEV], r.t) : 0;
    pci->pciSubSystemId = DEF(r.g, G_PCI_SUBSYS) ? eval_u32(&r.g->v[G_PCI_SUBSYS], r.t) : 0;
    return fin(NVML_SUCCESS);
}
#endif

/* ------------------------------------------------------------------ utilization */

#ifndef KGE_OMIT_nvmlDeviceGetUtilizationRates
EXPORT nvmlReturn_t nvmlDeviceGetUtilizationRates(nvmlDevice_t device, nvmlUtilization_t *utilization)
{
    ref_t r;
    nvmlReturn_t rc = begin("nvmlDeviceGetUtilizationRates", device, F_DEV, 0, &r);
    if (rc) return rc;
    if (!utilization) return fin(NVML_ERROR_INVALID_ARGUMENT);
    if (mig_enabled(&r) || !DEF(r.g, G_UTIL_GPU)) return fin(NVML_ERROR_NOT_SUPPORTED);
    utilization->gpu = eval_u32(&r.g->v[G_UTIL_GPU], r.t);
    utilization->memory = DEF(r.g, G_UTIL_MEM) ? eval_u32(&r.g->v[G_UTIL_MEM], r.t) : 0;
    return fin(NVML_SUCCESS);
}
#endif

static nvmlReturn_t codec_util(const char *fn, int key, nvmlDevice_t device, unsigned *util, unsigned *period)
{
    ref_t r;
    nvmlReturn_t rc = begin(fn, device, F_DEV, 0, &r);
    if (rc) return rc;
    if (!util || !period) return fin(NVML_ERROR_INVALID_ARGUMENT);
    if (mig_enabled(&r) || !DEF(r.g, key)) return fin(NVML_ERROR_NOT_SUPPORTED);
    *util = eval_u32(&r.g->v[key], r.t);
    *period = 167000;
    return fin(NVML_SUCCESS);
}

#ifndef KGE_OMIT_nvmlDeviceGetEncoderUtilization
EXPORT nvmlReturn_t nvmlDeviceGetEncoderUtilization(nvmlDevice_t device, unsigned int *utilization,
                                                    unsigned int *samplingPeriodUs)
{
    return codec_util("nvmlDeviceGetEncoderUtilization", G_ENC, device, utilization, samplingPeriodUs);
}
#endif

#ifndef KGE_OMIT_nvmlDeviceGetDecoderUtilization
EXPORT nvmlReturn_t nvmlDeviceGetDecoderUtilization(nvmlDevice_t device, unsigned int *utilization,
                                                    unsigned int *samplingPeriodUs)
{
    return codec_util("nvmlDeviceGetDecoderUtilization", G_DEC, device, utilization, samplingPeriodUs);
}
#endif

/* ------------------------------------------------------------------ memory */

/* with g_mu held: total/reserved/used of a GPU or MIG handle */
static nvmlReturn_t mem_values(ref_t *r, unsigned long long *total, unsigned long long *reserved,
                               unsigned long long *used)
{
    spec_t *t, *rs, *u;
    if (r->m) {
        t = &r->m->v[M_MEM_TOTAL];
        rs = &r->m->v[M_MEM_RESERVED];
        u = &r->m->v[M_MEM_USED];
    } else {
        t = &r->g->v[G_MEM_TOTAL];
        rs = &r->g->v[G_MEM_RESERVED];
        u = &r->g->v[G_MEM_USED];
    }
    if (!t->kind) return NVML_ERROR_NOT_SUPPORTED;
    *total = eval_u64(t, r->t);
    *reserved = rs->kind ? eval_u64(rs, r->t) : 0;
    *used = u->kind ? eval_u64(u, r->t) : 0;
    if (*reserved > *total) *reserved = *total;
    if (*used > *total - *reserved) *used = *total - *reserved;
    return NVML_SUCCESS;
}

#ifndef KGE_OMIT_nvmlDeviceGetMemoryInfo
EXPORT nvmlReturn_t nvmlDeviceGetMemoryInfo(nvmlDevice_t device, nvmlMemory_t *memory)
{
    ref_t r;
    nvmlReturn_t rc = begin("nvmlDeviceGetMemoryInfo", device, F_DEV | F_MIG_OK, 0, &r);
    if (rc) return rc;
    if (!memory) return fin(NVML_ERROR_INVALID_ARGUMENT);
    unsigned long long total, reserved, used;
    if ((rc = mem_values(&r, &total, &reserved, &used))) return fin(rc);
    memory->total = total;
    memory->used = used + reserved;
    memory->free = total - memory->used;
    return fin(NVML_SUCCESS);
}
#endif

#ifndef KGE_OMIT_nvmlDeviceGetMemoryInfo_v2
EXPORT nvmlReturn_t nvmlDeviceGetMemoryInfo_v2(nvmlDevice_t device, nvmlMemory_v2_t *memory)
{
    ref_t r;
    nvmlReturn_t rc = begin("nvmlDeviceGetMemoryInfo_v2", device, F_DEV | F_MIG_OK, 0, &r);
    if (rc) return rc;
    if (!memory) return fin(NVML_ERROR_INVALID_ARGUMENT);
    if (memory->version != MEMORY_V2_VERSION) return fin(NVML_ERROR_ARGUMENT_VERSION_MISMATCH);
    unsigned long long total, reserved, used;
    if ((rc = mem_values(&r, &total, &reserved, &used))) return fin(rc);
    memory->total = total;
    memory->reserved = reserved;
    memory->used = used;
    memory->free = total - reserved - used;
    return fin(NVML_SUCCESS);
}
#endif

/* ------------------------------------------------------------------ thermal / power / clocks */

#ifndef KGE_OMIT_nvmlDeviceGetTemperature
EXPORT nvmlReturn_t nvmlDeviceGetTemperature(nvmlDevice_t device, int sensorType, unsigned int *temp)
{
    ref_t r;
    nvmlReturn_t rc = begin("nvmlDeviceGetTemperature", device, F_DEV, 0, &r);
    if (rc) return rc;
    if (!temp || sensorType != 0) return fin(NVML_ERROR_INVALID_ARGUMENT);
    return fin(get_u32(&r, G_TEMP_GPU, temp));
}
#endif

#ifndef KGE_OMIT_nvmlDeviceGetPowerUsage
EXPORT nvmlReturn_t nvmlDeviceGetPowerUsage(nvmlDevice_t device, unsigned int *power)
{
    ref_t r;
    nvmlReturn_t rc = begin("nvmlDeviceGetPowerUsage", device, F_DEV, 0, &r);
    if (rc) return rc;
    if (!power) return fin(NVML_ERROR_INVALID_ARGUMENT);
    return fin(get_u32(&r, G_POWER, power));
}
#endif

#ifndef KGE_OMIT_nvmlDeviceGetEnforcedPowerLimit
EXPORT nvmlReturn_t nvmlDeviceGetEnforcedPowerLimit(nvmlDevice_t device, unsigned int *limit)
{
    ref_t r;
    nvmlReturn_t rc = begin("nvmlDeviceGetEnforcedPowerLimit", device, F_DEV, 0, &r);
    if (rc) return rc;
    if (!limit) return fin(NVML_ERROR_INVALID_ARGUMENT);
    return fin(get_u32(&r, G_POWER_LIMIT, limit));
}
#endif

/* with g_mu held: the energy counter in mJ, integrating power since the last read */
static nvmlReturn_t energy_read(ref_t *r, unsigned long long *out)
{
    if (!DEF(r->g, G_ENERGY_START)) return NVML_ERROR_NOT_SUPPORTED;
    double t = elapsed_ms();
    if (!g_energy[r->gpu].init) {
        g_energy[r->gpu].init = 1;
        g_energy[r->gpu].mj = eval(&r->g->v[G_ENERGY_START], t);
        g_energy[r->gpu].last = t;
    }
    double dt = t - g_energy[r->gpu].last;
    if (dt > 0) {
        double p = DEF(r->g, G_POWER) ? eval(&r->g->v[G_POWER], t) : 0;
        if (p > 0) g_energy[r->gpu].mj += p * dt / 1000.0;
        g_energy[r->gpu].last = t;
    }
    *out = (unsigned long long)g_energy[r->gpu].mj;
    return NVML_SUCCESS;
}

#ifndef KGE_OMIT_nvmlDeviceGetTotalEnergyConsumption
EXPORT nvmlReturn_t nvmlDeviceGetTotalEnergyConsumption(nvmlDevice_t device, unsigned long long *energy)
{
    ref_t r;
    nvmlReturn_t rc = begin("nvmlDeviceGetTotalEnergyConsumption", device, F_DEV, 0, &r);
    if (rc) return rc;
    if (!energy) return fin(NVML_ERROR_INVALID_ARGUMENT);
    return fin(energy_read(&r, energy));
}
#endif

static nvmlReturn_t clock_common(const char *fn, int base, nvmlDevice_t device, int type, unsigned *clock)
{
    ref_t r;
    nvmlReturn_t rc = begin(fn, device, F_DEV, 0, &r);
    if (rc) return rc;
    if (!clock || type < 0 || type > 3) return fin(NVML_ERROR_INVALID_ARGUMENT);
    return fin(get_u32(&r, base + type, clock));
}

#ifndef KGE_OMIT_nvmlDeviceGetClockInfo
EXPORT nvmlReturn_t nvmlDeviceGetClockInfo(nvmlDevice_t device, int type, unsigned int *clock)
{
    return clock_common("nvmlDeviceGetClockInfo", G_CLK_G, device, type, clock);
}
#endif

#ifndef KGE_OMIT_nvmlDeviceGetMaxClockInfo
EXPORT nvmlReturn_t nvmlDeviceGetMaxClockInfo(nvmlDevice_t device, int type, unsigned int *clock)
{
    return clock_common("nvmlDeviceGetMaxClockInfo", G_MCLK_G, device, type, clock);
}
#endif

#ifndef KGE_OMIT_nvmlDeviceGetFanSpeed
EXPORT nvmlReturn_t nvmlDeviceGetFanSpeed(nvmlDevice_t device, unsigned int *speed)
{
    ref_t r;
    nvmlReturn_t rc = begin("nvmlDeviceGetFanSpeed", device, F_DEV, 0, &r);
    if (rc) return rc;
    if (!speed) return fin(NVML_ERROR_INVALID_ARGUMENT);
    return fin(get_u32(&r, G_FAN, speed));
}
#endif

#ifndef KGE_OMIT_nvmlDeviceGetPerformanceState
EXPORT nvmlReturn_t nvmlDeviceGetPerformanceState(nvmlDevice_t device, int *pState)
{
    ref_t r;
    nvmlReturn_t rc = begin("nvmlDeviceGetPerformanceState", device, F_DEV, 0, &r);
    if (rc) return rc;
    if (!pState) return fin(NVML_ERROR_INVALID_ARGUMENT);
    unsigned v;
    if ((rc = get_u32(&r, G_PSTATE, &v))) return fin(rc);
    *pState = (int)v;
    return fin(NVML_SUCCESS);
}
#endif

static nvmlReturn_t reasons_common(const char *fn, nvmlDevice_t device, unsigned long long *reasons)
{
    ref_t r;
    nvmlReturn_t rc = begin(fn, device, F_DEV, 0, &r);
    if (rc) return rc;
    if (!reasons) return fin(NVML_ERROR_INVALID_ARGUMENT);
    if (!DEF(r.g, G_REASONS)) return fin(NVML_ERROR_NOT_SUPPORTED);
    *reasons = eval_u64(&r.g->v[G_REASONS], r.t);
    return fin(NVML_SUCCESS);
}

#ifndef KGE_OMIT_nvmlDeviceGetCurrentClocksEventReasons
EXPORT nvmlReturn_t nvmlDeviceGetCurrentClocksEventReasons(nvmlDevice_t device, unsigned long long *reasons)
{
    return reasons_common("nvmlDeviceGetCurrentClocksEventReasons", device, reasons);
}
#endif

#ifndef KGE_OMIT_nvmlDeviceGetCurrentClocksThrottleReasons
EXPORT nvmlReturn_t nvmlDeviceGetCurrentClocksThrottleReasons(nvmlDevice_t device, unsigned long long *reasons)
{
    return reasons_common("nvmlDeviceGetCurrentClocksThrottleReasons", device, reasons);
}
#endif

#ifndef KGE_OMIT_nvmlDeviceGetPcieThroughput
EXPORT nvmlReturn_t nvmlDeviceGetPcieThroughput(nvmlDevice_t device, int counter, unsigned int *value)
{
    ref_t r;
    nvmlReturn_t rc = begin("nvmlDeviceGetPcieThroughput", device, F_DEV, 0, &r);
    if (rc) return rc;
    if (!value || counter < 0 || counter > 1) return fin(NVML_ERROR_INVALID_ARGUMENT);
    return fin(get_u32(&r, counter == 0 ? G_PCIE_TX : G_PCIE_RX, value));
}
#endif

/* ------------------------------------------------------------------ processes */

static int proc_matches(const proc_t *p, const ref_t *r)
{
    if (!p->line || (int)p->gpu != r->gpu) return 0;
    if (!r->m) return 1;
    spec_t *gi = &r->m->v[M_GI], *ci = &r->m->v[M_CI];
    if (!p->has_gi || !gi->kind || p->gi != (unsigned)gi->c) return 0;
    if (p->has_ci && ci->kind && p->ci != (unsigned)ci->c) return 0;
    return 1;
}

static nvmlReturn_t procs_common(const char *fn, nvmlDevice_t device, unsigned *count, nvmlProcessInfo_t *infos)
{
    ref_t r;
    nvmlReturn_t rc = begin(fn, device, F_DEV | F_MIG_OK, 0, &r);
    if (rc) return rc;
    if (!count) return fin(NVML_ERROR_INVALID_ARGUMENT);
    unsigned n = 0;
    for (int k = 0; k < MAX_PROCS; k++) n += (unsigned)proc_matches(&g_st->proc[k], &r);
    if (n == 0) {
        *count = 0;
        return fin(NVML_SUCCESS);
    }
    if (*count < n) {
        *count = n;
        return fin(NVML_ERROR_INSUFFICIENT_SIZE);
    }
    if (!infos) return fin(NVML_ERROR_INVALID_ARGUMENT);
    unsigned i = 0;
    for (int k = 0; k < MAX_PROCS; k++) {
        proc_t *p = &g_st->proc[k];
        if (!proc_matches(p, &r)) continue;
        memset(&infos[i], 0, sizeof infos[i]);
        infos[i].pid = p->pid;
        infos[i].usedGpuMemory = p->mem.kind ? eval_u64(&p->mem, r.t) : ~0ull;
        infos[i].gpuInstanceId = p->has_gi ? p->gi : NA_U32;
        infos[i].computeInstanceId = p->has_ci ? p->ci : NA_U32;
        i++;
    }
    *count = n;
    return fin(NVML_SUCCESS);
}

#ifndef KGE_OMIT_nvmlDeviceGetComputeRunningProcesses_v3
EXPORT nvmlReturn_t nvmlDeviceGetComputeRunningProcesses_v3(nvmlDevice_t device, unsigned int *infoCount,
                                                            nvmlProcessInfo_t *infos)
{
    return procs_common("nvmlDeviceGetComputeRunningProcesses_v3", device, infoCount, infos);
}
#endif

#ifndef KGE_OMIT_nvmlDeviceGetComputeRunningProcesses_v2
EXPORT nvmlReturn_t nvmlDeviceGetComputeRunningProcesses_v2(nvmlDevice_t device, unsigned int *infoCount,
                                                            nvmlProcessInfo_t *infos)
{
    return procs_common("nvmlDeviceGetComputeRunningProcesses_v2", device, infoCount, infos);
}
#endif

/* ------------------------------------------------------------------ MIG */

#ifndef KGE_OMIT_nvmlDeviceGetMigMode
EXPORT nvmlReturn_t nvmlDeviceGetMigMode(nvmlDevice_t device, unsigned int *currentMode, unsigned int *pendingMode)
{
    ref_t r;
    nvmlReturn_t rc = begin("nvmlDeviceGetMigMode", device, F_DEV, 0, &r);
    if (rc) return rc;
    if (!currentMode || !pendingMode) return fin(NVML_ERROR_INVALID_ARGUMENT);
    unsigned v;
    if ((rc = get_u32(&r, G_MIG_MODE, &v))) return fin(rc);
    *currentMode = *pendingMode = v;
    return fin(NVML_SUCCESS);
}
#endif

#ifndef KGE_OMIT_nvmlDeviceGetMaxMigDeviceCount
EXPORT nvmlReturn_t nvmlDeviceGetMaxMigDeviceCount(nvmlDevice_t device, unsigned int *count)
{
    ref_t r;
    nvmlReturn_t rc = begin("nvmlDeviceGetMaxMigDeviceCount", device, F_DEV, 0, &r);
    if (rc) return rc;
    if (!count) return fin(NVML_ERROR_INVALID_ARGUMENT);
    *count = mig_enabled(&r) ? MAX_MIG : 0;
    return fin(NVML_SUCCESS);
}
#endif

#ifndef KGE_OMIT_nvmlDeviceGetMigDeviceHandleByIndex
EXPORT nvmlReturn_t nvmlDeviceGetMigDeviceHandleByIndex(nvmlDevice_t device, unsigned int index,
                                                        nvmlDevice_t *migDevice)
{
    ref_t r;
    nvmlReturn_t rc = begin("nvmlDeviceGetMigDeviceHandleByIndex", device, F_DEV, 0, &r);
    if (rc) return rc;
    if (!migDevice) return fin(NVML_ERROR_INVALID_ARGUMENT);
    if (!mig_enabled(&r)) return fin(NVML_ERROR_NOT_SUPPORTED);
    if (index >= MAX_MIG) return fin(NVML_ERROR_INVALID_ARGUMENT);
    if (!r.g->mig[index].used) return fin(NVML_ERROR_NOT_FOUND);
    *migDevice = handle_of(r.gpu, (int)index);
    return fin(NVML_SUCCESS);
}
#endif

#ifndef KGE_OMIT_nvmlDeviceGetDeviceHandleFromMigDeviceHandle
EXPORT nvmlReturn_t nvmlDeviceGetDeviceHandleFromMigDeviceHandle(nvmlDevice_t migDevice, nvmlDevice_t *device)
{
    ref_t r;
    nvmlReturn_t rc = begin("nvmlDeviceGetDeviceHandleFromMigDeviceHandle", migDevice, F_DEV | F_MIG_OK, 0, &r);
    if (rc) return rc;
    if (!device) return fin(NVML_ERROR_INVALID_ARGUMENT);
    if (!r.m) return fin(NVML_ERROR_NOT_SUPPORTED);
    *device = handle_of(r.gpu, -1);
    return fin(NVML_SUCCESS);
}
#endif

static nvmlReturn_t mig_id(const char *fn, int key, nvmlDevice_t device, unsigned *id)
{
    ref_t r;
    nvmlReturn_t rc = begin(fn, device, F_DEV | F_MIG_OK, 0, &r);
    if (rc) return rc;
    if (!id) return fin(NVML_ERROR_INVALID_ARGUMENT);
    if (!r.m || !r.m->v[key].kind) return fin(NVML_ERROR_NOT_SUPPORTED);
    *id = eval_u32(&r.m->v[key], r.t);
    return fin(NVML_SUCCESS);
}

#ifndef KGE_OMIT_nvmlDeviceGetGpuInstanceId
EXPORT nvmlReturn_t nvmlDeviceGetGpuInstanceId(nvmlDevice_t device, unsigned int *id)
{
    return mig_id("nvmlDeviceGetGpuInstanceId", M_GI, device, id);
}
#endif

#ifndef KGE_OMIT_nvmlDeviceGetComputeInstanceId
EXPORT nvmlReturn_t nvmlDeviceGetComputeInstanceId(nvmlDevice_t device, unsigned int *id)
{
    return mig_id("nvmlDeviceGetComputeInstanceId", M_CI, device, id);
}
#endif

#ifndef KGE_OMIT_nvmlDeviceIsMigDeviceHandle
EXPORT nvmlReturn_t nvmlDeviceIsMigDeviceHandle(nvmlDevice_t device, unsigned int *isMigDevice)
{
    ref_t r;
    nvmlReturn_t rc = begin("nvmlDeviceIsMigDeviceHandle", device, F_DEV | F_MIG_OK, 0, &r);
    if (rc) return rc;
    if (!isMigDevice) return fin(NVML_ERROR_INVALID_ARGUMENT);
    *isMigDevice = r.m ? 1 : 0;
    return fin(NVML_SUCCESS);
}
#endif

/* ------------------------------------------------------------------ field values */

#ifndef KGE_OMIT_nvmlDeviceGetFieldValues
EXPORT nvmlReturn_t nvmlDeviceGetFieldValues(nvmlDevice_t device, int valuesCount, nvmlFieldValue_t *values)
{
    ref_t r;
    nvmlReturn_t rc = begin("nvmlDeviceGetFieldValues", device, F_DEV | F_MIG_OK, 0, &r);
    if (rc) return rc;
    if (valuesCount < 0 || (valuesCount > 0 && !values)) return fin(NVML_ERROR_INVALID_ARGUMENT);
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    long long ts = (long long)now.tv_sec * 1000000LL + now.tv_nsec / 1000;
    for (int i = 0; i < valuesCount; i++) {
        nvmlFieldValue_t *f = &values[i];
        f->timestamp = ts;
        f->latencyUsec = 0;
        f->value.ullVal = 0;
        f->valueType = 1;
        f->nvmlReturn = NVML_ERROR_NOT_SUPPORTED;
        if (r.m) continue; /* per physical GPU values: read them from the parent */
        switch (f->fieldId) {
        case 82: /* NVML_FI_DEV_MEMORY_TEMP */
            if (DEF(r.g, G_TEMP_MEM)) {
                f->value.uiVal = eval_u32(&r.g->v[G_TEMP_MEM], r.t);
                f->nvmlReturn = NVML_SUCCESS;
            }
            break;
        case 83: { /* NVML_FI_DEV_TOTAL_ENERGY_CONSUMPTION */
            unsigned long long e;
            f->valueType = 3;
            if (energy_read(&r, &e) == NVML_SUCCESS) {
                f->value.ullVal = e;
                f->nvmlReturn = NVML_SUCCESS;
            }
            break;
        }
        case 185: /* NVML_FI_DEV_POWER_AVERAGE */
        case 186: /* NVML_FI_DEV_POWER_INSTANT */
            if (DEF(r.g, G_POWER)) {
                f->value.uiVal = eval_u32(&r.g->v[G_POWER], r.t);
                f->nvmlReturn = NVML_SUCCESS;
            }
            break;
        default:
            break;
        }
    }
    return fin(NVML_SUCCESS);
}
#endif
