/*
 * Benchmark (not a test): the private feed's cost of many connections
 * subscribing many prefixes, without a broker (the ROUTER on inproc, the
 * DEALERs in this process).  N connections each subscribe K prefixes, the
 * audiences either each connection's own ("own") or shared by all
 * ("shared": K roles every connection follows); it times until the last
 * subscription is applied, then until every connection's resent
 * subscriptions (the lease keep-alive) are read, then until all of them are
 * unsubscribed.
 *
 *   gm_bench_privfeed [N [K]]      (defaults 3000 256)
 *
 * Against a running gmd instead (its private feed's endpoint): connects N
 * DEALERs, each sends K prefixes of its own audiences, and they stay
 * connected (resending every 5 s, as a client does) for S seconds; time the
 * broker with its greenmarket_feed_private_subscribes_total metric.
 *
 *   gm_bench_privfeed --connect ENDPOINT N K S
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zmq.h>

#include "privfeed.h"

static double now_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* Reads until `want` messages were handled; seconds taken. */
static double read_all(gm__privfeed *pf, long want) {
  double t0 = now_s();
  for (long got = 0; got < want;) {
    int n = gm__privfeed_read(pf, 1024, 1000);
    got += n;
    if (!n) zmq_poll(NULL, 0, 1);
  }
  return now_s() - t0;
}

static void send_all(void **d, int n, int k, int shared, int on) {
  for (int i = 0; i < n; i++)
    for (int j = 0; j < k; j++) {
      char m[64];
      int l = shared ? snprintf(m, sizeof m, "%c@r:r%d ", on, j)
                     : snprintf(m, sizeof m, "%c@p:c%d-%d ", on, i, j);
      zmq_send(d[i], m, (size_t)l, 0);
    }
}

/* The --connect mode. */
static int against(const char *endpoint, int n, int k, int secs) {
  void *ctx = zmq_ctx_new();
  zmq_ctx_set(ctx, ZMQ_MAX_SOCKETS, n + 16);
  void **d = calloc((size_t)n, sizeof *d);
  for (int i = 0; i < n; i++) {
    d[i] = zmq_socket(ctx, ZMQ_DEALER);
    int zero = 0, hwm = 0;
    zmq_setsockopt(d[i], ZMQ_LINGER, &zero, sizeof zero);
    zmq_setsockopt(d[i], ZMQ_SNDHWM, &hwm, sizeof hwm);
    if (!d[i] || zmq_connect(d[i], endpoint) != 0) {
      fprintf(stderr, "socket %d: %s\n", i, zmq_strerror(zmq_errno()));
      return 1;
    }
  }
  double t0 = now_s();
  for (double next = t0; now_s() - t0 < secs; next += 5) {
    send_all(d, n, k, 0, 1);
    printf("%.1f s: sent %ld subscriptions\n", now_s() - t0, (long)n * k);
    fflush(stdout);
    while (now_s() < next + 5 && now_s() - t0 < secs) zmq_poll(NULL, 0, 100);
  }
  for (int i = 0; i < n; i++) zmq_close(d[i]);
  free(d);
  zmq_ctx_term(ctx);
  return 0;
}

int main(int argc, char **argv) {
  if (argc == 6 && strcmp(argv[1], "--connect") == 0)
    return against(argv[2], atoi(argv[3]), atoi(argv[4]), atoi(argv[5]));
  int n = argc > 1 ? atoi(argv[1]) : 3000, k = argc > 2 ? atoi(argv[2]) : 256;
  if (n < 1 || k < 1 || k > GM_PRIVFEED_MAX_SUBS) {
    fprintf(stderr, "usage: gm_bench_privfeed [N [K (1-%d)]]\n",
            GM_PRIVFEED_MAX_SUBS);
    return 2;
  }
  for (int shared = 0; shared < 2; shared++) {
    void *ctx = zmq_ctx_new();
    zmq_ctx_set(ctx, ZMQ_MAX_SOCKETS, n + 16);
    char err[256];
    gm__privfeed *pf =
        gm__privfeed_new(ctx, "inproc://bench", NULL, 0, err, sizeof err);
    if (!pf) {
      fprintf(stderr, "%s\n", err);
      return 1;
    }
    void **d = calloc((size_t)n, sizeof *d);
    for (int i = 0; i < n; i++) {
      d[i] = zmq_socket(ctx, ZMQ_DEALER);
      int zero = 0, hwm = 0;
      zmq_setsockopt(d[i], ZMQ_LINGER, &zero, sizeof zero);
      zmq_setsockopt(d[i], ZMQ_SNDHWM, &hwm, sizeof hwm);
      if (!d[i] || zmq_connect(d[i], "inproc://bench") != 0) {
        fprintf(stderr, "socket %d: %s\n", i, zmq_strerror(zmq_errno()));
        return 1;
      }
    }
    long total = (long)n * k;
    send_all(d, n, k, shared, 1);
    double sub = read_all(pf, total);
    send_all(d, n, k, shared, 1);
    double again = read_all(pf, total);
    send_all(d, n, k, shared, 0);
    double unsub = read_all(pf, total);
    printf(
        "%s audiences, %d connections x %d prefixes: subscribe %.2f s, "
        "resend %.2f s, unsubscribe %.2f s (%zu connections left)\n",
        shared ? "shared" : "own", n, k, sub, again, unsub,
        gm__privfeed_connections(pf));
    for (int i = 0; i < n; i++) zmq_close(d[i]);
    free(d);
    gm__privfeed_destroy(&pf);
    zmq_ctx_term(ctx);
  }
  return 0;
}
