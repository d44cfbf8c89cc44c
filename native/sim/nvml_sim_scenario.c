/* kube-gpu-exporter simulated NVML: the scenario file parser (format: docs/simulator.md). */
#include "nvml_sim.h"

#define X_NAME(k) #k,
static const char *gpu_key_names[] = { GPU_NUM_KEYS(X_NAME) };
static const char *mig_key_names[] = { MIG_NUM_KEYS(X_NAME) };
static const char *proc_util_key_names[] = { "sm", "mem_util", "enc", "dec" };

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

state_t *load_state(const char *path, perr_t *e) {
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
