/*
 * gm_bench_cluster: what routing over a Redis Cluster costs and how load
 * spreads, on a private 3-master cluster (tests/support/cluster_fixture.h).
 *
 * 1. Routing against a single Redis, same run, same server: a key's master
 *    addressed as a single Redis, and the same master reached through the
 *    cluster's slot map; sequential round trips, then 128 fibers pipelining
 *    as a broker worker does.  Rounds alternate A B; medians printed.
 * 2. Spread: SET on 16, 64 and 256 tags (gmd's keys, gm:{bench:<tag>}:k),
 *    commands per master from INFO commandstats.
 *
 * Prints figures; never a test.  On a 2-core machine shared with the
 * cluster's servers, absolute rates mean little: read the ratios.
 */
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../bench_time.h"

#include "cluster.h"
#include "cluster_fixture.h"
#include "fiber.h"
#include "redis.h"

#define ROUNDS 5
#define SEQ_CALLS 5000
#define FIBERS 128
#define PER_FIBER 200

static void call_ok(gm__redis *r, const char *key) {
  redisReply *rep = gm__redis_callf(r, "SET %s v", key);
  if (!rep || rep->type == REDIS_REPLY_ERROR) {
    fprintf(stderr, "SET %s failed: %s\n", key,
            rep ? rep->str : gm__redis_last_error(r));
    exit(1);
  }
  freeReplyObject(rep);
}

/* Microseconds per sequential round trip. */
static double sequential(gm__redis *r, const char *key) {
  double t0 = now_s();
  for (int i = 0; i < SEQ_CALLS; i++) call_ok(r, key);
  return (now_s() - t0) * 1e6 / SEQ_CALLS;
}

typedef struct job {
  gm__redis *r;
  char key[64];
} job;

static void fiber_body(void *arg) {
  job *j = arg;
  for (int i = 0; i < PER_FIBER; i++) call_ok(j->r, j->key);
}

/* Calls per second with FIBERS fibers pipelining on r, driven like a
   worker: write, poll the one descriptor, read, resume. */
static double pipelined(gm__redis *r, char keys[][64], int nkeys) {
  static gm__fiber *f[FIBERS];
  static job jobs[FIBERS];
  int live = 0;
  gm__redis_set_pipelined(r, 1);
  double t0 = now_s();
  for (int i = 0; i < FIBERS; i++) {
    if (!f[i]) f[i] = gm__fiber_new(64 * 1024);
    jobs[i].r = r;
    snprintf(jobs[i].key, sizeof jobs[i].key, "%s", keys[i % nkeys]);
    if (gm__fiber_start(f[i], fiber_body, &jobs[i]) == 0) live++;
  }
  while (gm__redis_waiting(r)) {
    gm__redis_send(r);
    struct pollfd p = {gm__redis_fd(r), POLLIN, 0};
    if (poll(&p, 1, 1000) > 0) gm__redis_receive(r);
  }
  double s = now_s() - t0;
  gm__redis_set_pipelined(r, 0);
  (void)live;
  return FIBERS * PER_FIBER / s;
}

static long long set_calls(const gm_test_cluster *cl, int node) {
  redisContext *c = gm_test_cluster_connect(cl, node);
  redisReply *r = redisCommand(c, "INFO commandstats");
  long long n = 0;
  const char *p = r && r->str ? strstr(r->str, "cmdstat_set:calls=") : NULL;
  if (p) n = atoll(p + strlen("cmdstat_set:calls="));
  if (r) freeReplyObject(r);
  redisFree(c);
  return n;
}

int main(void) {
  gm_test_cluster *cl = gm_test_cluster_start(3, 0, 5000);
  char err[512];
  gm__redis_addr caddr = {.cluster = gm_test_cluster_seeds(cl)};
  gm__redis *routed = gm__redis_connect(&caddr, err, sizeof err);
  if (!routed) {
    fprintf(stderr, "%s\n", err);
    return 1;
  }
  /* One tag's master as a single Redis: the same server, no routing. */
  const char *key = "gm:{bench:one}:k";
  int owner = gm_test_cluster_owner(cl, gm__cluster_keyslot(key, strlen(key)));
  gm__redis_addr saddr = {.host = "127.0.0.1",
                          .port = gm_test_cluster_port(cl, owner)};
  gm__redis *single = gm__redis_connect(&saddr, err, sizeof err);
  if (!single) {
    fprintf(stderr, "%s\n", err);
    return 1;
  }
  char one[1][64];
  snprintf(one[0], sizeof one[0], "%s", key);
  double sa[ROUNDS], sb[ROUNDS], pa[ROUNDS], pb[ROUNDS], sr[ROUNDS], pr[ROUNDS];
  call_ok(routed, key);
  call_ok(single, key);
  for (int k = 0; k < ROUNDS; k++) {
    sa[k] = sequential(single, key);
    sb[k] = sequential(routed, key);
    sr[k] = sb[k] / sa[k];
    pa[k] = pipelined(single, one, 1);
    pb[k] = pipelined(routed, one, 1);
    pr[k] = pb[k] / pa[k];
  }
  printf("one key, one master, %d alternating rounds (medians):\n", ROUNDS);
  printf(
      "  sequential round trip: single %.1f us, routed %.1f us; routed / "
      "single %.3f\n",
      median(sa, ROUNDS), median(sb, ROUNDS), median(sr, ROUNDS));
  printf(
      "  %d fibers pipelining: single %.0f calls/s, routed %.0f; routed "
      "/ single %.3f\n",
      FIBERS, median(pa, ROUNDS), median(pb, ROUNDS), median(pr, ROUNDS));

  static char keys[256][64];
  int sizes[] = {16, 64, 256};
  for (int s = 0; s < 3; s++) {
    int n = sizes[s];
    for (int i = 0; i < n; i++)
      snprintf(keys[i], sizeof keys[i], "gm:{bench:I%03d}:k", i);
    long long before[3], after[3];
    for (int m = 0; m < 3; m++) before[m] = set_calls(cl, m);
    double rate = pipelined(routed, keys, n);
    for (int m = 0; m < 3; m++) after[m] = set_calls(cl, m);
    long long total = 0, max = 0;
    for (int m = 0; m < 3; m++) {
      long long d = after[m] - before[m];
      total += d;
      if (d > max) max = d;
    }
    printf(
        "%3d tags, %d fibers: %.0f calls/s; SET per master %lld / %lld / "
        "%lld; busiest / mean %.2f\n",
        n, FIBERS, rate, after[0] - before[0], after[1] - before[1],
        after[2] - before[2], (double)max * 3 / (double)total);
  }
  gm__redis_destroy(&single);
  gm__redis_destroy(&routed);
  gm_test_cluster_stop(&cl);
  return 0;
}
