/*
 * Benchmark (not a test): a disconnect storm on the private feed, without
 * Redis or CURVE, so that its cost can be counted exactly.  N connections
 * (one ROUTER connected N times, each connection named with
 * ZMQ_CONNECT_ROUTING_ID) subscribe "m."; then they all close at once and
 * the feed's monitor is read until no connection is held.  The reads of
 * the storm are gm_bench_disconnect_reads, so callgrind can count them
 * alone:
 *
 *   valgrind --tool=callgrind --toggle-collect=gm_bench_disconnect_reads \
 *     gm_bench_privfeed_disconnects [N]          (default N 1000)
 *
 * Each connection takes two descriptors in this process (ulimit -n).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include "privfeed.h"

/* One read of the monitor during the storm (not inlined: callgrind's
   --toggle-collect names it). */
__attribute__((noinline)) void gm_bench_disconnect_reads(gm__privfeed *pf) {
  gm__privfeed_read_monitor(pf);
}

static double cpu_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
  int n = argc > 1 ? atoi(argv[1]) : 1000;
  if (n < 1) {
    fprintf(stderr, "usage: gm_bench_privfeed_disconnects [N]\n");
    return 2;
  }
  char ep[128], err[256];
  snprintf(ep, sizeof ep, "ipc:///tmp/gm-bench-disconnects-%d", (int)getpid());
  void *ctx = zmq_ctx_new();
  gm__privfeed *pf = gm__privfeed_new(ctx, ep, NULL, 0, err, sizeof err);
  if (!pf) {
    fprintf(stderr, "%s\n", err);
    return 1;
  }
  void *d = zmq_socket(ctx, ZMQ_ROUTER);
  int zero = 0;
  zmq_setsockopt(d, ZMQ_LINGER, &zero, sizeof zero);
  /* 100 at a time: the listening socket's backlog. */
  for (int i = 0; i < n; i++) {
    char name[16];
    int len = snprintf(name, sizeof name, "c%d", i);
    zmq_setsockopt(d, ZMQ_CONNECT_ROUTING_ID, name, (size_t)len);
    if (zmq_connect(d, ep) != 0) {
      fprintf(stderr, "connection %d: %s\n", i, zmq_strerror(zmq_errno()));
      return 1;
    }
    zmq_send(d, name, (size_t)len, ZMQ_SNDMORE);
    zmq_send(d, "\1m.", 3, 0);
    if ((i + 1) % 100 && i + 1 < n) continue;
    for (int t = 0; t < 5000 && gm__privfeed_connections(pf) < (size_t)i + 1;
         t++) {
      gm__privfeed_read_monitor(pf);
      if (!gm__privfeed_read(pf, 256, 1000)) zmq_poll(NULL, 0, 2);
    }
  }
  size_t held = gm__privfeed_connections(pf);
  zmq_close(d);
  double spent = 0;
  for (int t = 0; t < 100000 && gm__privfeed_connections(pf) > 0; t++) {
    zmq_pollitem_t it = {gm__privfeed_monitor_socket(pf), 0, ZMQ_POLLIN, 0};
    zmq_poll(&it, 1, 5);
    double c0 = cpu_s();
    gm_bench_disconnect_reads(pf);
    spent += cpu_s() - c0;
  }
  printf(
      "%zu connections closed at once: reading their disconnects took "
      "%.1f ms CPU; %zu still held\n",
      held, spent * 1000, gm__privfeed_connections(pf));
  gm__privfeed_destroy(&pf);
  zmq_ctx_term(ctx);
  unlink(ep + strlen("ipc://"));
  return 0;
}
