#include "timesync.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "log.h"

/* How often the thread reads Redis's clock. */
#define GM__TIMESYNC_EVERY_US 1000000u
/* A change of the offset this large is logged (a host's clock stepped). */
#define GM__TIMESYNC_STEP_LOG_US 250000

typedef struct gm__ts_sample {
  int64_t offset_us; /* Redis's clock minus this host's at the sample */
  int64_t rtt_us;    /* the TIME command's round trip */
} gm__ts_sample;

struct gm__timesync {
  gm__redis *redis;
  pthread_t thread;
  int started;
  int stop;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  gm__ts_sample window[GM__TIMESYNC_WINDOW];
  size_t n, next;          /* samples held, where the next one goes */
  int have;                /* an offset was set from Redis */
  uint64_t warned_us;      /* the last WARN of a large offset; 0: never */
  uint64_t unreachable_us; /* the last note of Redis out of reach */
  uint64_t log_every_us;   /* a WARN is repeated at most this often */
  int64_t max_rtt_us;      /* a reading with a longer round trip: dropped */
  unsigned slow;           /* readings dropped for that in a row */
  uint64_t slow_us;        /* the last WARN of them; 0: never */
  char why[1024];          /* why the last reading failed */
};

/* One reading of Redis's clock; 0, or -1 when Redis did not answer. */
static int gm__ts_sample_once(gm__timesync *t, gm__ts_sample *out) {
  redisContext *c = gm__redis_context_for(t->redis, GM__DEADLINE_INDEX,
                                          strlen(GM__DEADLINE_INDEX));
  if (!c) {
    snprintf(t->why, sizeof t->why, "no connection to the node serving %s",
             GM__DEADLINE_INDEX);
    gm__redis_reconnect(t->redis);
    return -1;
  }
  uint64_t m0 = gm__clock_mono_us();
  int64_t local = gm__clock_local_us();
  redisReply *r = redisCommand(c, "TIME");
  uint64_t m1 = gm__clock_mono_us();
  int ok = r && r->type == REDIS_REPLY_ARRAY && r->elements == 2 &&
           r->element[0]->type == REDIS_REPLY_STRING &&
           r->element[1]->type == REDIS_REPLY_STRING;
  if (ok) {
    int64_t redis_us = strtoll(r->element[0]->str, NULL, 10) * 1000000 +
                       strtoll(r->element[1]->str, NULL, 10);
    out->rtt_us = (int64_t)(m1 - m0);
    /* Redis read its clock somewhere in the round trip: its middle. */
    out->offset_us = redis_us - (local + out->rtt_us / 2);
  }
  /* Why, for the log: Redis's own words (BUSY, LOADING, NOPERM, MOVED)
     or the connection's ("no reply within 1 s" for a Redis that stalled);
     the handle's last error is not set by a plain redisCommand, so it said
     "no error" or an older failure. */
  char cbuf[128];
  if (!ok)
    snprintf(t->why, sizeof t->why, "%s",
             r && r->type == REDIS_REPLY_ERROR ? r->str
             : c->err ? gm__redis_ctx_error(t->redis, c, cbuf, sizeof cbuf)
                      : "an unexpected reply to TIME");
  /* A broken connection is reopened; so is a cluster's after an error
     reply (MOVED after a failover: the map is read again).  One Redis's
     error reply (BUSY, LOADING) leaves the connection as it is: a reopen
     would clear the process's cache of registered outbox streams, every
     second while Redis is busy, for nothing. */
  int reopen = !ok && (c->err || (r && r->type == REDIS_REPLY_ERROR &&
                                  gm__redis_is_cluster(t->redis)));
  if (r) freeReplyObject(r);
  if (reopen && gm__redis_reconnect(t->redis) != GM_OK) {
    char buf[1024];
    snprintf(t->why, sizeof t->why, "%s",
             gm__redis_error_text(t->redis, gm__redis_last_error(t->redis), buf,
                                  sizeof buf));
  }
  return ok ? 0 : -1;
}

/* Takes a sample into the window and sets the clock's offset from the
   window's best; logs what an operator should know. */
static void gm__ts_round(gm__timesync *t) {
  gm__ts_sample s;
  uint64_t now = gm__clock_mono_us();
  if (gm__ts_sample_once(t, &s) != 0) {
    if (!t->unreachable_us || now - t->unreachable_us >= t->log_every_us) {
      t->unreachable_us = now;
      /* What the time goes on from, in words: "+0.000 s" said nothing of
         a host that agreed with Redis, or had never read it. */
      int64_t off = gm__clock_offset_us();
      char from[160];
      if (!t->have)
        snprintf(from, sizeof from,
                 "this host's clock alone (Redis's was never read)");
      else if (llabs(off) < 1000)
        snprintf(from, sizeof from,
                 "this host's clock, which agreed with Redis's within 1 ms "
                 "at the last reading");
      else
        snprintf(from, sizeof from,
                 "this host's clock with the last offset: it was %.3f s %s "
                 "Redis's",
                 (double)llabs(off) / 1e6, off > 0 ? "behind" : "ahead of");
      gm__log(GM_LOG_WARN, "clock",
              "cannot read Redis's clock at %s (%s); the time goes on from "
              "%s",
              gm__redis_where(t->redis), t->why, from);
    }
    return;
  }
  if (s.rtt_us > t->max_rtt_us) {
    /* One slow reading among good ones says nothing; none used since
       start, or a window's worth in a row, and the broker silently kept
       this host's clock (or an offset growing stale). */
    t->slow++;
    if ((!t->have || t->slow >= GM__TIMESYNC_WINDOW) &&
        (!t->slow_us || now - t->slow_us >= t->log_every_us)) {
      t->slow_us = now;
      gm__log(GM_LOG_WARN, "clock",
              "Redis's clock at %s answers too slowly to follow: %u "
              "reading(s) in a row took longer than %.3f ms (the last %.3f "
              "ms; a reading's error is up to half its round trip); the "
              "time goes on from this host's clock %s%+.3f s; bring Redis "
              "nearer or less loaded, or keep this host's clock by NTP and "
              "set [clock] source = local",
              gm__redis_where(t->redis), t->slow, (double)t->max_rtt_us / 1e3,
              (double)s.rtt_us / 1e3,
              t->have ? "with the last offset, " : "alone, offset ",
              (double)gm__clock_offset_us() / 1e6);
    }
    return;
  }
  t->slow = 0;
  /* Two readings of one clock differ by at most half their round trips
     summed: more, and a clock stepped (this host's or Redis's), so the
     older readings say nothing of now. */
  for (size_t i = 0; i < t->n; i++) {
    int64_t rtt =
        t->window[i].rtt_us > s.rtt_us ? t->window[i].rtt_us : s.rtt_us;
    if (llabs(t->window[i].offset_us - s.offset_us) > rtt + 1000) {
      t->n = t->next = 0;
      break;
    }
  }
  t->window[t->next] = s;
  t->next = (t->next + 1) % GM__TIMESYNC_WINDOW;
  if (t->n < GM__TIMESYNC_WINDOW) t->n++;
  const gm__ts_sample *best = &t->window[0];
  for (size_t i = 1; i < t->n; i++)
    if (t->window[i].rtt_us < best->rtt_us) best = &t->window[i];
  int64_t was = gm__clock_offset_us(), off = best->offset_us;
  /* Within a millisecond: the same clock (no change for jitter); the WARN
     below is repeated all the same while the offset is large (it came
     only with a change of a millisecond or more: a host steadily off by
     minutes was warned of once). */
  if (t->have && llabs(off - was) < 1000)
    off = was;
  else
    gm__clock_set_offset_us(off);
  if ((!t->have || llabs(off - was) >= GM__TIMESYNC_STEP_LOG_US) &&
      llabs(off) < 1000)
    gm__log(GM_LOG_INFO, "clock",
            "following Redis's clock at %s: this host's clock agrees with it "
            "within 1 ms (round trip %.3f ms)",
            gm__redis_where(t->redis), (double)best->rtt_us / 1e3);
  else if (!t->have || llabs(off - was) >= GM__TIMESYNC_STEP_LOG_US)
    gm__log(GM_LOG_INFO, "clock",
            "following Redis's clock at %s: this host's clock is %.3f s %s "
            "it (round trip %.3f ms)",
            gm__redis_where(t->redis), (double)llabs(off) / 1e6,
            off > 0 ? "behind" : "ahead of", (double)best->rtt_us / 1e3);
  t->have = 1;
  if (llabs(off) >= (int64_t)GM__TIMESYNC_WARN_MS * 1000 &&
      (!t->warned_us || now - t->warned_us >= t->log_every_us)) {
    t->warned_us = now;
    gm__log(GM_LOG_WARN, "clock",
            "this host's clock is %.3f s %s Redis's at %s; gmd keeps time "
            "by Redis's clock ([clock] source = redis), so deadlines and "
            "times agree across brokers, but logs and other programs here "
            "read this host's: keep both hosts' clocks by NTP (chrony)",
            (double)llabs(off) / 1e6, off > 0 ? "behind" : "ahead of",
            gm__redis_where(t->redis));
  }
}

static void *gm__ts_run(void *arg) {
  gm__timesync *t = arg;
  pthread_mutex_lock(&t->mu);
  while (!t->stop) {
    struct timespec at;
    clock_gettime(CLOCK_MONOTONIC, &at);
    at.tv_sec += GM__TIMESYNC_EVERY_US / 1000000u;
    while (!t->stop && pthread_cond_timedwait(&t->cv, &t->mu, &at) == 0) {
    }
    if (t->stop) break;
    pthread_mutex_unlock(&t->mu);
    gm__ts_round(t);
    pthread_mutex_lock(&t->mu);
  }
  pthread_mutex_unlock(&t->mu);
  return NULL;
}

gm__timesync *gm__timesync_start(const gm__redis_addr *addr,
                                 uint64_t log_every_us, int64_t max_rtt_us,
                                 char *err, size_t errlen) {
  gm__timesync *t = calloc(1, sizeof *t);
  if (!t) abort();
  t->log_every_us = log_every_us;
  t->max_rtt_us = max_rtt_us;
  pthread_mutex_init(&t->mu, NULL);
  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_cond_init(&t->cv, &ca);
  pthread_condattr_destroy(&ca);
  /* Short waits: a Redis that stops answering must not hold the clock's
     thread (or a stop) long. */
  gm__redis_addr a = *addr;
  a.connect_us = 2000000;
  a.io_us = 1000000;
  char why[512];
  t->redis = gm__redis_connect(&a, why, sizeof why);
  if (!t->redis) {
    snprintf(err, errlen, "[clock] source = redis: %s", why);
    pthread_cond_destroy(&t->cv);
    pthread_mutex_destroy(&t->mu);
    free(t);
    return NULL;
  }
  /* A few samples now, so the first requests already see Redis's time. */
  for (int i = 0; i < 3; i++) gm__ts_round(t);
  if (pthread_create(&t->thread, NULL, gm__ts_run, t) != 0) {
    snprintf(err, errlen, "cannot start the clock's thread");
    gm__redis_destroy(&t->redis);
    pthread_cond_destroy(&t->cv);
    pthread_mutex_destroy(&t->mu);
    free(t);
    return NULL;
  }
  t->started = 1;
  return t;
}

void gm__timesync_stop(gm__timesync **tp) {
  if (!tp || !*tp) return;
  gm__timesync *t = *tp;
  if (t->started) {
    pthread_mutex_lock(&t->mu);
    t->stop = 1;
    pthread_cond_signal(&t->cv);
    pthread_mutex_unlock(&t->mu);
    pthread_join(t->thread, NULL);
  }
  gm__redis_destroy(&t->redis);
  pthread_cond_destroy(&t->cv);
  pthread_mutex_destroy(&t->mu);
  free(t);
  *tp = NULL;
}

int gm__timesync_gauge_offset(void *arg, double *value) {
  (void)arg;
  *value = (double)gm__clock_offset_us() / 1e6;
  return 0;
}
