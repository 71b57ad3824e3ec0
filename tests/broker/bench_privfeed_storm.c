/*
 * Benchmark (not a test): a reconnect storm on the private feed while
 * events flow.  N CURVE clients (each its own key, registered in a real
 * Redis) connect at once and subscribe "m."; a loop shaped like the
 * publisher thread's (core/publisher.c: the monitor, a burst of 256
 * subscriptions, then events, the re-check each second) delivers a public
 * event "m.tick" every 10 ms, and the time until every client has
 * received one is printed, from when the loop starts with every client
 * connected and its subscription sent (as after a restart), with the time
 * the loop spent reading subscriptions (events wait meanwhile).  The registry
 * look-up is gm__auth_owners's: a pipelined GET per key, then a pipelined HGET
 * of each owner's roles.  Then every client closes at once (a disconnect
 * storm), and the time the loop spent reading the monitor until the feed
 * held no connection is printed (wall and the thread's CPU time).
 *
 *   gm_bench_privfeed_storm HOST PORT [N]     (default N 2000)
 */
#include <hiredis/hiredis.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include "privfeed.h"

static double now_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static int n_clients;
static char (*pubs)[41], (*secs)[41];
static atomic_int zap_stop, admitted;

/* Admits every bench key as "u<i>". */
static void *zap_run(void *ctx) {
  void *rep = zmq_socket(ctx, ZMQ_REP);
  int zero = 0, ms = 50;
  zmq_setsockopt(rep, ZMQ_LINGER, &zero, sizeof zero);
  zmq_setsockopt(rep, ZMQ_RCVTIMEO, &ms, sizeof ms);
  zmq_bind(rep, "inproc://zeromq.zap.01");
  while (!atomic_load(&zap_stop)) {
    char f[8][64];
    int len[8] = {0}, n = 0, more = 1;
    if (zmq_recv(rep, f[0], sizeof f[0], 0) < 0) continue;
    n = 1;
    while (more) {
      size_t ml = sizeof more;
      zmq_getsockopt(rep, ZMQ_RCVMORE, &more, &ml);
      if (!more) break;
      int k = zmq_recv(rep, f[n < 7 ? n : 7], 64, 0);
      len[n < 7 ? n : 7] = k;
      if (n < 7) n++;
    }
    char z85[41] = "";
    if (n == 7 && len[6] == 32) zmq_z85_encode(z85, (uint8_t *)f[6], 32);
    int who = -1;
    for (int k = 0; k < n_clients && who < 0; k++)
      if (!strcmp(z85, pubs[k])) who = k;
    char user[16] = "";
    uint8_t meta[256];
    size_t m = 0;
    if (who >= 0) {
      atomic_fetch_add(&admitted, 1);
      snprintf(user, sizeof user, "u%d", who);
      const char *names[2] = {"X-Roles", "X-Key"};
      const char *vals[2] = {"", pubs[who]};
      for (int i = 0; i < 2; i++) {
        size_t nl = strlen(names[i]), vl = strlen(vals[i]);
        meta[m++] = (uint8_t)nl;
        memcpy(meta + m, names[i], nl);
        m += nl;
        meta[m++] = 0, meta[m++] = 0, meta[m++] = 0, meta[m++] = (uint8_t)vl;
        memcpy(meta + m, vals[i], vl);
        m += vl;
      }
    }
    zmq_send(rep, "1.0", 3, ZMQ_SNDMORE);
    zmq_send(rep, f[1], (size_t)(len[1] > 0 ? len[1] : 0), ZMQ_SNDMORE);
    zmq_send(rep, who >= 0 ? "200" : "400", 3, ZMQ_SNDMORE);
    zmq_send(rep, "", 0, ZMQ_SNDMORE);
    zmq_send(rep, user, strlen(user), ZMQ_SNDMORE);
    zmq_send(rep, meta, m, 0);
  }
  zmq_close(rep);
  return NULL;
}

static redisContext *rc;
static long calls, round_trips;

/* gm__auth_owners's shape: GET each key, then HGET each owner's roles. */
static int lookup(void *ctx, const char *const *keys, size_t n, char **owners,
                  char **roles) {
  (void)ctx;
  calls++;
  static char own[1 << 14][16], rol[1 << 14][8];
  for (size_t i = 0; i < n; i++)
    redisAppendCommand(rc, "GET gm:{participants}:key:%s", keys[i]);
  round_trips++;
  for (size_t i = 0; i < n; i++) {
    redisReply *r;
    if (redisGetReply(rc, (void **)&r) != REDIS_OK) return -1;
    owners[i] = NULL;
    if (r->type == REDIS_REPLY_STRING && i < (1 << 14)) {
      snprintf(own[i], sizeof own[i], "%s", r->str);
      owners[i] = own[i];
    }
    freeReplyObject(r);
  }
  size_t held = 0;
  for (size_t i = 0; i < n; i++)
    if (owners[i]) {
      redisAppendCommand(rc, "HGET gm:{participants}:id:%s roles", owners[i]);
      held++;
    }
  if (held) round_trips++;
  for (size_t i = 0; i < n; i++) {
    roles[i] = NULL;
    if (!owners[i]) continue;
    redisReply *r;
    if (redisGetReply(rc, (void **)&r) != REDIS_OK) return -1;
    rol[i][0] = 0;
    roles[i] = rol[i];
    freeReplyObject(r);
  }
  return 0;
}

static double *first;
static atomic_int heard;

/* Reads every client's socket; notes when each first hears an event. */
static void *recv_run(void *arg) {
  void **d = arg;
  zmq_pollitem_t *it = calloc((size_t)n_clients, sizeof *it);
  for (int i = 0; i < n_clients; i++)
    it[i] = (zmq_pollitem_t){d[i], 0, ZMQ_POLLIN, 0};
  while (atomic_load(&heard) < n_clients) {
    if (zmq_poll(it, n_clients, 100) <= 0) continue;
    for (int i = 0; i < n_clients; i++) {
      if (!(it[i].revents & ZMQ_POLLIN)) continue;
      char t[64];
      while (zmq_recv(d[i], t, sizeof t, ZMQ_DONTWAIT) >= 0) {
        int more = 1;
        size_t ml = sizeof more;
        zmq_getsockopt(d[i], ZMQ_RCVMORE, &more, &ml);
        while (more) {
          zmq_recv(d[i], t, sizeof t, 0);
          zmq_getsockopt(d[i], ZMQ_RCVMORE, &more, &ml);
        }
        if (first[i] == 0) {
          first[i] = now_s();
          atomic_fetch_add(&heard, 1);
        }
      }
    }
  }
  free(it);
  return NULL;
}

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: gm_bench_privfeed_storm HOST PORT [N]\n");
    return 2;
  }
  n_clients = argc > 3 ? atoi(argv[3]) : 2000;
  rc = redisConnect(argv[1], atoi(argv[2]));
  if (!rc || rc->err) {
    fprintf(stderr, "cannot reach Redis at %s:%s\n", argv[1], argv[2]);
    return 1;
  }
  pubs = calloc((size_t)n_clients, sizeof *pubs);
  secs = calloc((size_t)n_clients, sizeof *secs);
  first = calloc((size_t)n_clients, sizeof *first);
  for (int i = 0; i < n_clients; i++) {
    zmq_curve_keypair(pubs[i], secs[i]);
    redisAppendCommand(rc, "SET gm:{participants}:key:%s u%d", pubs[i], i);
    redisAppendCommand(rc, "HSET gm:{participants}:id:u%d roles %s", i, "");
  }
  for (int i = 0; i < 2 * n_clients; i++) {
    redisReply *r;
    redisGetReply(rc, (void **)&r);
    freeReplyObject(r);
  }
  void *ctx = zmq_ctx_new();
  zmq_ctx_set(ctx, ZMQ_MAX_SOCKETS, n_clients + 64);
  pthread_t zt, rt;
  pthread_create(&zt, NULL, zap_run, ctx);
  zmq_poll(NULL, 0, 50);
  char spub[41], ssec[41], ep[128], err[256];
  zmq_curve_keypair(spub, ssec);
  snprintf(ep, sizeof ep, "ipc:///tmp/gm-bench-storm-%d", (int)getpid());
  gm__privfeed *pf = gm__privfeed_new(ctx, ep, ssec, 0, err, sizeof err);
  if (!pf) {
    fprintf(stderr, "%s\n", err);
    return 1;
  }
  gm__privfeed_set_lookup(pf, lookup, NULL);
  void **d = calloc((size_t)n_clients, sizeof *d);
  for (int i = 0; i < n_clients; i++) {
    d[i] = zmq_socket(ctx, ZMQ_DEALER);
    int zero = 0;
    zmq_setsockopt(d[i], ZMQ_LINGER, &zero, sizeof zero);
    zmq_setsockopt(d[i], ZMQ_CURVE_SERVERKEY, spub, 40);
    zmq_setsockopt(d[i], ZMQ_CURVE_PUBLICKEY, pubs[i], 40);
    zmq_setsockopt(d[i], ZMQ_CURVE_SECRETKEY, secs[i], 40);
  }
  /* As after a restart: every client has reconnected and sent its
     subscription before the feed's loop reads them (the monitor is read
     meanwhile, as the publisher thread does). */
  double c0 = now_s();
  for (int i = 0; i < n_clients; i++) {
    zmq_connect(d[i], ep);
    zmq_send(d[i], "\1m.", 3, 0);
  }
  while (atomic_load(&admitted) < n_clients && now_s() - c0 < 120) {
    zmq_poll(NULL, 0, 10);
    gm__privfeed_read_monitor(pf);
  }
  zmq_poll(NULL, 0, 200); /* their subscriptions sent after the handshake */
  printf("%d handshakes in %.3f s\n", atomic_load(&admitted), now_s() - c0);
  pthread_create(&rt, NULL, recv_run, d);
  double t0 = now_s(), max_pass = 0, sum_pass = 0, next_recheck = t0 + 1,
         next_event = t0;
  long events = 0;
  while (atomic_load(&heard) < n_clients && now_s() - t0 < 120) {
    zmq_pollitem_t items[] = {
        {gm__privfeed_socket(pf), 0, ZMQ_POLLIN, 0},
        {gm__privfeed_monitor_socket(pf), 0, ZMQ_POLLIN, 0}};
    zmq_poll(items, 2, 1);
    double p0 = now_s();
    int64_t ms = (int64_t)(p0 * 1000);
    if (items[1].revents & ZMQ_POLLIN) gm__privfeed_read_monitor(pf);
    if (items[0].revents & ZMQ_POLLIN) gm__privfeed_read(pf, 256, ms);
    double p1 = now_s();
    if (p1 - p0 > max_pass) max_pass = p1 - p0;
    sum_pass += p1 - p0;
    if (p1 >= next_event) { /* an event every 10 ms when nothing holds
                               the loop */
      gm__privfeed_deliver(pf, "m.tick", 6, "x", 1);
      events++;
      next_event = p1 + 0.01;
    }
    if (p1 >= next_recheck) {
      gm__privfeed_recheck(pf, ms);
      next_recheck = p1 + 1;
    }
  }
  double last = 0;
  for (int i = 0; i < n_clients; i++)
    if (first[i] > last) last = first[i];
  printf(
      "%d clients: every one heard an event %.3f s after the loop "
      "started (%d heard); reading subscriptions held events %.1f ms in "
      "all, %.1f ms at most at once; %ld look-ups, %ld Redis round trips; "
      "%ld events sent\n",
      n_clients, last - t0, atomic_load(&heard), sum_pass * 1000,
      max_pass * 1000, calls, round_trips, events);
  atomic_store(&heard, n_clients);
  pthread_join(rt, NULL);
  /* The disconnect storm: every client closes; the monitor is read as the
     publisher thread reads it, until no connection is held. */
  size_t held = gm__privfeed_connections(pf);
  for (int i = 0; i < n_clients; i++) {
    zmq_close(d[i]);
    d[i] = NULL;
  }
  double w0 = now_s(), in_wall = 0, in_cpu = 0;
  while (gm__privfeed_connections(pf) > 0 && now_s() - w0 < 120) {
    zmq_pollitem_t it = {gm__privfeed_monitor_socket(pf), 0, ZMQ_POLLIN, 0};
    zmq_poll(&it, 1, 10);
    struct timespec c0, c1;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &c0);
    double p0 = now_s();
    gm__privfeed_read_monitor(pf);
    in_wall += now_s() - p0;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &c1);
    in_cpu += (double)(c1.tv_sec - c0.tv_sec) +
              (double)(c1.tv_nsec - c0.tv_nsec) / 1e9;
  }
  printf(
      "%zu connections closed: none held %.3f s after the closes; reading "
      "the monitor took %.1f ms (%.1f ms CPU); %zu still held\n",
      held, now_s() - w0, in_wall * 1000, in_cpu * 1000,
      gm__privfeed_connections(pf));
  for (int i = 0; i < n_clients; i++) {
    redisAppendCommand(rc, "DEL gm:{participants}:key:%s", pubs[i]);
    redisAppendCommand(rc, "DEL gm:{participants}:id:u%d", i);
  }
  for (int i = 0; i < 2 * n_clients; i++) {
    redisReply *r;
    redisGetReply(rc, (void **)&r);
    freeReplyObject(r);
  }
  gm__privfeed_destroy(&pf);
  atomic_store(&zap_stop, 1);
  pthread_join(zt, NULL);
  zmq_ctx_term(ctx);
  redisFree(rc);
  unlink(ep + strlen("ipc://"));
  return 0;
}
