/*
 * gm_bench_wait_replicas: what [redis] cluster_wait_replicas costs a
 * mutating call, end to end through gmd.
 *
 * Two gmd on the same Redis, one with the option off and one with it on
 * (1000 ms), both loading the test market; the workload is testmkt.deadline
 * op "cancel" (a Redis Function that writes the tag's entity, cancels its
 * deadline and stores an idempotency record) on 16 tags in turn, each call
 * under a new idempotency key.  Per round, alternating which goes first:
 * sequential calls (microseconds a call: the latency a client sees) and
 * calls with IN_FLIGHT in flight on one connection (calls a second), off
 * and on.  Medians of ROUNDS rounds and of the per-round ratios on/off.
 *
 * Twice: on a private Redis Cluster of 3 masters with one replica each
 * (tests/support/cluster_fixture.h), then on a single Redis with one
 * replica (gm_test_redis_replicate); last, on that single Redis, how long
 * calls in flight take to be refused once the replica is killed.  Prints
 * figures; it is never a test.
 * On a 2-core machine shared with the servers, absolute figures mean
 * little: read the ratios.
 *   gm_bench_wait_replicas [rounds, default 5]
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../bench_time.h"

#include "cluster_fixture.h"
#include "gmd_fixture.h"
#include "redis_fixture.h"
#include "testmkt.pb-c.h"

#define MAX_ROUNDS 21
#define TAGS 16
#define SEQ_CALLS 1000
#define IN_FLIGHT 64
#define PIPE_CALLS 5000
#define WAIT_MS 1000

static int rounds = 5;
static long next_key; /* idempotency keys are never reused: no replays */

/* Sends call number i (tag i % TAGS) as request_id i under a new key. */
static void send_cancel(gm_test_conn *c, uint64_t i) {
  char tag[16], idem[32];
  snprintf(tag, sizeof tag, "w%02d", (int)(i % TAGS));
  snprintf(idem, sizeof idem, "k%ld", next_key++);
  Gm__Testmkt__DeadlineRequest req = GM__TESTMKT__DEADLINE_REQUEST__INIT;
  req.op = "cancel";
  req.kind = "x";
  req.tag = tag;
  req.id = idem;
  gm_test_send(c, i, "alice", "testmkt", "deadline", idem, &req.base);
}

/* One reply: its status (said on stderr unless OK, or UNAVAILABLE and
   quiet); exits when none comes within 10 s. */
static int recv_status(gm_test_conn *c, int quiet) {
  Gm__Reply *r = gm_test_conn_recv(c, 10000);
  if (!r) {
    fprintf(stderr, "no reply within 10 s\n");
    exit(1);
  }
  int st = r->status;
  if (st != GM__STATUS__OK && !(quiet && st == GM__STATUS__UNAVAILABLE))
    fprintf(stderr, "status %d: %s\n", st, r->message);
  gm__reply__free_unpacked(r, NULL);
  return st;
}

/* Microseconds a call, one at a time. */
static double sequential(gm_test_conn *c) {
  int bad = 0;
  double t0 = now_s();
  for (uint64_t i = 0; i < SEQ_CALLS; i++) {
    send_cancel(c, i);
    bad += recv_status(c, 0) != GM__STATUS__OK;
  }
  double us = (now_s() - t0) * 1e6 / SEQ_CALLS;
  if (bad) exit(1);
  return us;
}

/* Calls a second with IN_FLIGHT in flight on one connection. */
static double pipelined(gm_test_conn *c) {
  uint64_t sent = 0, done = 0;
  int bad = 0;
  double t0 = now_s();
  for (; sent < IN_FLIGHT; sent++) send_cancel(c, sent);
  while (done < PIPE_CALLS) {
    bad += recv_status(c, 0) != GM__STATUS__OK;
    done++;
    if (sent < PIPE_CALLS) send_cancel(c, sent++);
  }
  double rate = PIPE_CALLS / (now_s() - t0);
  if (bad) exit(1);
  return rate;
}

/* Every tag once on c, retrying UNAVAILABLE (a replica not yet streaming)
   for up to 30 s. */
static void warm_up(gm_test_conn *c) {
  for (uint64_t i = 0; i < TAGS; i++) {
    int st = -1;
    for (int tries = 0; tries < 300 && st != GM__STATUS__OK; tries++) {
      send_cancel(c, i);
      st = recv_status(c, 1);
      if (st == GM__STATUS__UNAVAILABLE)
        nanosleep(&(struct timespec){0, 100000000L}, NULL);
      else if (st != GM__STATUS__OK)
        exit(1);
    }
    if (st != GM__STATUS__OK) exit(1);
  }
}

/* Off and on, alternating which goes first; prints the medians. */
static void measure(const char *what, gm_test_redis *home, const char *conf) {
  char off_conf[1024], on_conf[1024];
  const char *common = "[plugins]\nload = testmkt\n[log]\nlevel = warn\n";
  snprintf(off_conf, sizeof off_conf, "%s%s", conf, common);
  snprintf(on_conf, sizeof on_conf, "%s%s[redis]\ncluster_wait_replicas = %d\n",
           conf, common, WAIT_MS);
  gm_test_gmd *g[2] = {
      gm_test_gmd_start_named(home, "off", TEST_PLUGIN_DIR, off_conf),
      gm_test_gmd_start_named(home, "on", TEST_PLUGIN_DIR, on_conf)};
  gm_test_conn *c[2];
  for (int k = 0; k < 2; k++) {
    c[k] = gm_test_conn_new(gm_test_gmd_endpoint(g[k]), NULL, NULL, NULL);
    warm_up(c[k]);
  }
  double seq[2][MAX_ROUNDS], rate[2][MAX_ROUNDS], seq_r[MAX_ROUNDS],
      rate_r[MAX_ROUNDS];
  for (int r = 0; r < rounds; r++) {
    for (int j = 0; j < 2; j++) {
      int k = (r + j) % 2;
      seq[k][r] = sequential(c[k]);
      rate[k][r] = pipelined(c[k]);
    }
    seq_r[r] = seq[1][r] / seq[0][r];
    rate_r[r] = rate[1][r] / rate[0][r];
  }
  printf("%s, %d rounds (medians), %d tags, wait %d ms:\n", what, rounds, TAGS,
         WAIT_MS);
  printf("  sequential: off %.0f us a call, on %.0f us; on / off %.2f\n",
         median(seq[0], rounds), median(seq[1], rounds), median(seq_r, rounds));
  printf(
      "  %d in flight: off %.0f calls/s, on %.0f calls/s; on / off "
      "%.2f\n",
      IN_FLIGHT, median(rate[0], rounds), median(rate[1], rounds),
      median(rate_r, rounds));
  fflush(stdout);
  for (int k = 0; k < 2; k++) {
    gm_test_conn_destroy(&c[k]);
    gm_test_gmd_stop(&g[k]);
  }
}

/*
 * The single Redis's replica killed: DOWN_CALLS calls sent at once to a
 * gmd with the option on and `workers` workers; seconds until each is
 * answered (UNAVAILABLE).  WAIT blocks the connection it is sent on, and
 * each worker has one: had each call its own WAIT, they would time out one
 * after another (1, 1, 2, 2, 3, ... s before calls in flight shared one).
 */
static void replica_down(gm_test_redis *master, gm_test_redis *replica,
                         int workers) {
  enum { DOWN_CALLS = 8 };
  char conf[256];
  snprintf(conf, sizeof conf,
           "[plugins]\nload = testmkt\n[log]\nlevel = error\n[broker]\n"
           "workers = %d\n[redis]\ncluster_wait_replicas = %d\n",
           workers, WAIT_MS);
  gm_test_gmd *g =
      gm_test_gmd_start_named(master, "down", TEST_PLUGIN_DIR, conf);
  gm_test_conn *c = gm_test_conn_new(gm_test_gmd_endpoint(g), NULL, NULL, NULL);
  warm_up(c);
  gm_test_redis_kill(replica);
  double t0 = now_s();
  for (uint64_t i = 0; i < DOWN_CALLS; i++) send_cancel(c, i);
  printf(
      "replica killed, %d calls at once, %d workers, wait %d ms: "
      "answered UNAVAILABLE after",
      DOWN_CALLS, workers, WAIT_MS);
  for (int i = 0; i < DOWN_CALLS; i++) {
    if (recv_status(c, 1) != GM__STATUS__UNAVAILABLE) exit(1);
    printf(" %.1f", now_s() - t0);
  }
  printf(" s\n");
  gm_test_conn_destroy(&c);
  gm_test_gmd_stop(&g);
}

/* A Check test case only because the fixtures report through Check. */
START_TEST(bench) {
  gm_test_cluster *cl = gm_test_cluster_start(3, 1, 5000);
  measure("Redis Cluster, 3 masters, 1 replica each", gm_test_cluster_home(cl),
          gm_test_cluster_conf(cl));
  gm_test_cluster_stop(&cl);

  gm_test_redis *master = gm_test_redis_start();
  gm_test_redis *replica = gm_test_redis_start();
  gm_test_redis_replicate(master, replica);
  measure("single Redis, 1 replica", master, "");
  replica_down(master, replica, 2);
  gm_test_redis_stop(&replica);
  gm_test_redis_stop(&master);
}
END_TEST

int main(int argc, char **argv) {
  rounds = argc > 1 ? atoi(argv[1]) : 5;
  if (rounds < 1 || rounds > MAX_ROUNDS) {
    fprintf(stderr, "usage: %s [rounds 1-%d]\n", argv[0], MAX_ROUNDS);
    return 2;
  }
  Suite *s = suite_create("bench");
  TCase *tc = tcase_create("bench");
  tcase_set_timeout(tc, 1200);
  tcase_add_test(tc, bench);
  suite_add_tcase(s, tc);
  SRunner *sr = srunner_create(s);
  srunner_set_fork_status(sr, CK_NOFORK);
  srunner_run_all(sr, CK_SILENT);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
