/*
 * gm_bench_ledger_route: ledger reads per second on the broker holding the
 * settle lease (a local SQLite read) against the same reads on a second
 * broker, which sends them to the holder over ZeroMQ (core/ledger_route.c).
 * One redis-server and two gmd on this host, started here (test fixtures)
 * and stopped by pid; broker 2 has a ledger file of its own that it never
 * settles into, so every read it answers went to the holder.
 *   gm_bench_ledger_route [seconds per run, default 3] [in flight, default 16]
 * Runs local and routed alternately three times each (A B A B A B) and
 * prints each rate and routed/local.  Prints figures; it is never a test.
 */
#include <check.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gmd_fixture.h"
#include "greenmarket.pb-c.h"
#include "redis_fixture.h"
#include "testmkt.pb-c.h"

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* testmkt.count (one ledger read) with k in flight for `secs`: reads/s. */
static double run(gm_test_conn *c, double secs, int k, long long want) {
  Gm__Testmkt__CountRequest req = GM__TESTMKT__COUNT_REQUEST__INIT;
  uint64_t sent = 0, done = 0, bad = 0;
  double t0 = now_s(), end = t0 + secs;
  for (; sent < (uint64_t)k; sent++)
    gm_test_send(c, sent, "alice", "testmkt", "count", NULL, &req.base);
  while (done < sent) {
    Gm__Reply *r = gm_test_conn_recv(c, 10000);
    if (!r) {
      fprintf(stderr, "no reply within 10 s\n");
      exit(1);
    }
    done++;
    if (r->status != GM__STATUS__OK) {
      bad++;
    } else {
      Gm__Testmkt__CountReply *b =
          gm__testmkt__count_reply__unpack(NULL, r->body.len, r->body.data);
      if (b->settled != want) bad++;
      gm__testmkt__count_reply__free_unpacked(b, NULL);
    }
    gm__reply__free_unpacked(r, NULL);
    if (now_s() < end) {
      gm_test_send(c, sent, "alice", "testmkt", "count", NULL, &req.base);
      sent++;
    }
  }
  double rate = (double)done / (now_s() - t0);
  if (bad) fprintf(stderr, "%" PRIu64 " replies not OK or wrong\n", bad);
  return rate;
}

static double secs = 3.0;
static int k = 16;

/* A Check test case only because the fixtures report through Check. */
START_TEST(measure) {
  gm_test_redis *redis = gm_test_redis_start();
  gm_test_gmd *g1 =
      gm_test_gmd_start(redis, TEST_PLUGIN_DIR,
                        "[plugins]\nload = testmkt\n[log]\nlevel = warn\n");
  gm_test_gmd *g2 = gm_test_gmd_start_named(
      redis, "b2", TEST_PLUGIN_DIR,
      "[plugins]\nload = testmkt\n[settle]\nsettle = never\n[log]\nlevel = "
      "warn\n");
  gm_test_conn *c1 =
      gm_test_conn_new(gm_test_gmd_endpoint(g1), NULL, NULL, NULL);
  gm_test_conn *c2 =
      gm_test_conn_new(gm_test_gmd_endpoint(g2), NULL, NULL, NULL);
  /* Some rows to count, settled before measuring. */
  const long long rows = 200;
  for (long long i = 0; i < rows; i++) {
    char note[32];
    snprintf(note, sizeof note, "n%lld", i);
    Gm__Testmkt__BumpRequest b = GM__TESTMKT__BUMP_REQUEST__INIT;
    b.note = note;
    Gm__Reply *r = gm_test_call(c1, "alice", "testmkt", "bump", note, &b.base);
    ck_assert_msg(r && r->status == GM__STATUS__OK, "bump failed");
    gm__reply__free_unpacked(r, NULL);
  }
  for (int i = 0; i < 500; i++) {
    Gm__Testmkt__CountRequest q = GM__TESTMKT__COUNT_REQUEST__INIT;
    Gm__Reply *r = gm_test_call(c1, "alice", "testmkt", "count", NULL, &q.base);
    long long n = -1;
    if (r && r->status == GM__STATUS__OK) {
      Gm__Testmkt__CountReply *b =
          gm__testmkt__count_reply__unpack(NULL, r->body.len, r->body.data);
      n = b->settled;
      gm__testmkt__count_reply__free_unpacked(b, NULL);
    }
    if (r) gm__reply__free_unpacked(r, NULL);
    if (n == rows) break;
    nanosleep(&(struct timespec){0, 20000000L}, NULL);
  }
  printf("ledger reads (testmkt.count), %d in flight, %.1f s per run\n", k,
         secs);
  double local = 0, routed = 0;
  for (int round = 0; round < 3; round++) {
    double a = run(c1, secs, k, rows), b = run(c2, secs, k, rows);
    printf(
        "run %d: local %.0f reads/s, routed %.0f reads/s, routed/local "
        "%.2f\n",
        round + 1, a, b, b / a);
    local += a;
    routed += b;
  }
  printf("mean: local %.0f reads/s, routed %.0f reads/s, routed/local %.2f\n",
         local / 3, routed / 3, routed / local);
  gm_test_conn_destroy(&c1);
  gm_test_conn_destroy(&c2);
  gm_test_gmd_stop(&g1);
  gm_test_gmd_stop(&g2);
  gm_test_redis_stop(&redis);
}
END_TEST

int main(int argc, char **argv) {
  secs = argc > 1 ? atof(argv[1]) : 3.0;
  k = argc > 2 ? atoi(argv[2]) : 16;
  if (secs <= 0 || k < 1 || k > 1024) {
    fprintf(stderr, "usage: %s [seconds > 0] [in flight 1-1024]\n", argv[0]);
    return 2;
  }
  Suite *s = suite_create("bench");
  TCase *tc = tcase_create("bench");
  tcase_set_timeout(tc, 600);
  tcase_add_test(tc, measure);
  suite_add_tcase(s, tc);
  SRunner *sr = srunner_create(s);
  srunner_set_fork_status(sr, CK_NOFORK);
  srunner_run_all(sr, CK_SILENT);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
