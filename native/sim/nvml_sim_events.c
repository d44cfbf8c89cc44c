/* kube-gpu-exporter simulated NVML: event sets.
 *
 * An event set is a slot of evsets[] (guarded by mu); nvmlEventSet_t points at it. It keeps the
 * event types registered per GPU and the identities of the events it has delivered, so every
 * `event` line is delivered once per set, also across reloads that keep the line. */
#include "nvml_sim.h"

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
    wake_waiters(); /* a wait on this set ends now */
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

/* Blocks (never holding mu) until an event is due or the timeout passes (TIMEOUT), as a real
 * driver sleeps in the kernel: a change watch (nvml_sim_wait.c) wakes it when the scenario file
 * changes or the set is freed, and it sleeps no longer than until the next scheduled event or
 * the next fault window edge for this call. Each pass re-reads a changed scenario. */
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
  /* opened before the first look, so a change made after it wakes the wait; a wait of 0 (a
   * caller that looks once a tick) only looks, and needs none */
  change_watch_t watch;
  int watching = timeoutms > 0;
  if (watching) change_watch_open(&watch);
  int changed = 1;
  nvmlReturn_t rc;
  for (;;) {
    rc = NVML_SUCCESS;
    const event_cfg_t *ev = NULL;
    double due = -1, edge = -1;
    LOCK();
    if (!init_count || !st) rc = NVML_ERROR_UNINITIALIZED;
    else if (!es->in_use || es->generation != generation) rc = NVML_ERROR_INVALID_ARGUMENT;
    else {
      if (changed) reload_now();
      else maybe_reload();
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
      if (!rc && !ev) {
        due = next_due_in(es, t_ms());
        edge = next_fault_change_in("nvmlEventSetWait_v2");
      }
    }
    UNLOCK();
    if (rc || ev) break;
    double left = deadline - now_ms();
    if (left <= 0 || !watching) { rc = NVML_ERROR_TIMEOUT; break; }
    double nap = left;
    if (due >= 0 && due + 0.1 < nap) nap = due + 0.1;
    if (edge >= 0 && edge + 0.1 < nap) nap = edge + 0.1;
    changed = change_watch_wait(&watch, nap);
  }
  if (watching) change_watch_close(&watch);
  return rc;
}
#endif
