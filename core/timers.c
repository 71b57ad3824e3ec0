#include "timers.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zmq.h>

#include "call.h"
#include "clock.h"
#include "ledger.h"
#include "market.h"
#include "log.h"

typedef struct timer {
  gm_market *market;   /* whose callback */
  char *name;          /* for the log */
  int64_t interval_us; /* period */
  uint64_t due_us;     /* next run, monotonic */
  gm_timer_fn fn;      /* the callback */
  void *arg;           /* its argument */
} timer;

struct gm__timers {
  timer *list;                      /* registered timers */
  size_t n;                         /* how many */
  pthread_t thread;                 /* the timer thread, when started */
  int started;                      /* thread is running */
  atomic_int stop;                  /* asks the thread to end */
  gm__redis *redis;                 /* the thread's connection */
  gm__ledger *reader;               /* the thread's read-only ledger */
  struct gm__ledger_remote *remote; /* its reads' route (not owned) */
  gm__events *pub;                  /* the queue to the publisher (shared) */
};

void gm__timers_set_remote(gm__timers *t, struct gm__ledger_remote *remote) {
  t->remote = remote;
}

gm__timers *gm__timers_new(void) {
  gm__timers *t = calloc(1, sizeof *t);
  if (!t) abort();
  return t;
}

gm_status gm__timers_add(gm__timers *t, gm_market *m, const char *name,
                         int64_t interval_ms, gm_timer_fn fn, void *arg) {
  if (interval_ms <= 0 || !fn || t->started) return GM_INVALID_ARGUMENT;
  t->list = realloc(t->list, (t->n + 1) * sizeof *t->list);
  if (!t->list) abort();
  t->list[t->n] =
      (timer){m, strdup(name ? name : "timer"), interval_ms * 1000, 0, fn, arg};
  t->n++;
  return GM_OK;
}

void gm__timers_remove(gm__timers *t, const gm_market *m) {
  if (!t) return;
  size_t k = 0;
  for (size_t i = 0; i < t->n; i++) {
    if (t->list[i].market == m)
      free(t->list[i].name);
    else
      t->list[k++] = t->list[i];
  }
  t->n = k;
}

static void *run(void *arg) {
  gm__timers *t = arg;
  gm__arena *arena = gm__arena_new();
  uint64_t now = gm__clock_mono_us();
  for (size_t i = 0; i < t->n; i++)
    t->list[i].due_us = now + (uint64_t)t->list[i].interval_us;
  while (!atomic_load(&t->stop)) {
    now = gm__clock_mono_us();
    for (size_t i = 0; i < t->n && !atomic_load(&t->stop); i++) {
      timer *tm = &t->list[i];
      if (now < tm->due_us) continue;
      gm_call call = {.arena = arena,
                      .market = tm->market,
                      .participant = "",
                      .roles = "",
                      .idem_key = "",
                      .redis = t->redis,
                      .reader = t->reader,
                      .remote = t->remote,
                      .pub = t->pub};
      tm->fn(&call, tm->arg);
      if (call.status != GM_OK)
        gm__log(GM_LOG_WARN, tm->market ? tm->market->name : "timers",
                "timer %s: %s", tm->name, call.message ? call.message : "");
      gm__arena_reset(arena);
      /* Skip missed periods instead of running them back to back. */
      now = gm__clock_mono_us();
      tm->due_us += (uint64_t)tm->interval_us;
      if (tm->due_us < now) tm->due_us = now + (uint64_t)tm->interval_us;
    }
    struct timespec ts = {0, 10 * 1000 * 1000};
    nanosleep(&ts, NULL);
  }
  gm__arena_destroy(&arena);
  return NULL;
}

int gm__timers_start(gm__timers *t, const gm__redis_addr *addr,
                     const char *ledger_path, gm__events *events, char *err,
                     size_t errlen) {
  if (t->n == 0) return 0;
  t->redis = gm__redis_connect(addr, err, errlen);
  if (!t->redis) return -1;
  t->reader = gm__ledger_open(ledger_path, 1, err, errlen);
  if (!t->reader) return -1;
  t->pub = events;
  if (pthread_create(&t->thread, NULL, run, t) != 0) {
    snprintf(err, errlen, "cannot start the timer thread");
    return -1;
  }
  pthread_setname_np(t->thread, "gmd-timers");
  t->started = 1;
  return 0;
}

void gm__timers_destroy(gm__timers **tp) {
  if (!tp || !*tp) return;
  gm__timers *t = *tp;
  if (t->started) {
    atomic_store(&t->stop, 1);
    pthread_join(t->thread, NULL);
  }
  gm__redis_destroy(&t->redis);
  gm__ledger_close(&t->reader);
  for (size_t i = 0; i < t->n; i++) free(t->list[i].name);
  free(t->list);
  free(t);
  *tp = NULL;
}
