/* kube-gpu-exporter simulated NVML: blocking until the scenario may have changed.
 *
 * A real driver's nvmlEventSetWait sleeps in the kernel until an event arrives or the timeout
 * passes. The simulator's wait must also notice a scenario file rewritten by another process
 * (a test injecting an Xid) and an event set freed or NVML shut down by another thread. A
 * change watch covers all three without polling: an inotify watch on the scenario file's
 * directory (only events naming the file count) and an eventfd that wake_waiters() writes.
 * Where inotify is unavailable a wait returns after at most EVENT_POLL_MS, and the caller
 * looks again. */
#include "nvml_sim.h"

#include <libgen.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>

#define MAX_WAITERS 64

static int waiter_fds[MAX_WAITERS] = { [0 ... MAX_WAITERS - 1] = -1 };  /* eventfds of the open watches; -1: a free slot */

void wake_waiters(void) {
  for (int i = 0; i < MAX_WAITERS; i++) {
    if (waiter_fds[i] < 0) continue;
    uint64_t one = 1;
    ssize_t n = write(waiter_fds[i], &one, sizeof one);
    (void)n; /* a full counter still wakes the waiter */
  }
}

void change_watch_open(change_watch_t *w) {
  memset(w, 0, sizeof *w);
  w->inotify_fd = -1;
  w->slot = -1;
  w->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  char path[4096];
  LOCK();
  snprintf(path, sizeof path, "%s", scenario_path());
  if (w->wake_fd >= 0) {
    for (int i = 0; i < MAX_WAITERS; i++) {
      if (waiter_fds[i] >= 0) continue;
      waiter_fds[i] = w->wake_fd;
      w->slot = i;
      break;
    }
  }
  UNLOCK();
  if (!path[0]) return;
  char base[4096], dir[4096];
  snprintf(base, sizeof base, "%s", path);
  snprintf(dir, sizeof dir, "%s", path);
  snprintf(w->name, sizeof w->name, "%s", basename(base));
  w->inotify_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  if (w->inotify_fd < 0) return;
  /* the directory, not the file: a scenario replaced by rename keeps being watched */
  if (inotify_add_watch(w->inotify_fd, dirname(dir), IN_CLOSE_WRITE | IN_MODIFY | IN_MOVED_TO | IN_CREATE | IN_ATTRIB) < 0) {
    close(w->inotify_fd);
    w->inotify_fd = -1;
  }
}

/* 1 when the pending inotify events name the scenario file; drains them. */
static int file_changed(change_watch_t *w) {
  char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
  int named = 0;
  for (;;) {
    ssize_t n = read(w->inotify_fd, buf, sizeof buf);
    if (n <= 0) return named;
    for (char *p = buf; p < buf + n;) {
      const struct inotify_event *ev = (const struct inotify_event *)p;
      if (ev->mask & IN_Q_OVERFLOW) named = 1;
      else if (ev->len && !strcmp(ev->name, w->name)) named = 1;
      p += sizeof *ev + ev->len;
    }
  }
}

int change_watch_wait(change_watch_t *w, double ms) {
  int reliable = w->inotify_fd >= 0 && w->slot >= 0;
  if (!reliable && ms > EVENT_POLL_MS) ms = EVENT_POLL_MS;
  double deadline = now_ms() + ms;
  for (;;) {
    double left = deadline - now_ms();
    if (left <= 0) return 0;
    struct pollfd fds[2];
    int nfds = 0;
    if (w->inotify_fd >= 0) fds[nfds++] = (struct pollfd){ .fd = w->inotify_fd, .events = POLLIN };
    if (w->slot >= 0) fds[nfds++] = (struct pollfd){ .fd = w->wake_fd, .events = POLLIN };
    /* round up: a wait that ends a little early would only spin once more */
    int rc = poll(fds, (nfds_t)nfds, (int)(left + 0.999));
    if (rc < 0 && errno == EINTR) continue;
    if (rc <= 0) return 0;
    int woken = 0;
    for (int i = 0; i < nfds; i++) {
      if (!(fds[i].revents & POLLIN)) continue;
      if (fds[i].fd == w->wake_fd) {
        uint64_t count;
        ssize_t n = read(w->wake_fd, &count, sizeof count);
        (void)n;
        woken = 1;
      } else if (file_changed(w)) {
        woken = 1;
      }
    }
    if (woken) return 1;
    /* only other files of the directory changed: keep waiting */
  }
}

void change_watch_close(change_watch_t *w) {
  LOCK();
  if (w->slot >= 0) waiter_fds[w->slot] = -1;
  UNLOCK();
  if (w->wake_fd >= 0) close(w->wake_fd);
  if (w->inotify_fd >= 0) close(w->inotify_fd);
  w->wake_fd = w->inotify_fd = -1;
  w->slot = -1;
}
