/*
 * Carbon orders while their instrument's slot migrates (issue 12): on a
 * private 3-master Redis Cluster, `redis-cli --cluster reshard` moves the
 * one slot of instrument CEA-R2704's tag to another master while threads
 * place crossing orders and cancel some (flow.h), each call under an
 * idempotency key and retried under the same key while gmd answers
 * UNAVAILABLE (some call must have been).  Then (ct_flow_check): every
 * acknowledged order exists once (no id in two replies), every cancel
 * answered OK left its order cancelled, cash and allowances are conserved,
 * every trade is settled once in the ledger (and, in the case that holds
 * the settler back during the move, is exactly one of the trades in the
 * instrument's outbox), so is every entry the outbox was ever given; and
 * the slot lives on the target master.  ctest label "cluster".
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "flow.h"

/* "carbon:CEA-R2704" hashes to slot 5461, the first slot `redis-cli
 * --cluster create` gives the second of 3 masters (5461-10922).  redis-cli
 * --cluster reshard takes a source's slots in ascending order, so a reshard
 * of 1 slot from that master moves exactly this instrument's slot (checked
 * below, not assumed). */
#define SYM "CEA-R2704"
#define INST_KEY "gm:{carbon:" SYM "}:i"
#define REF 8500
#define TRADERS 4 /* t0 t2 buy, t1 t3 sell */

static gm_test_cluster *cl;

static void teardown(void) {
  ct_flow_free();
  ct_stop();
  gm_test_cluster_stop(&cl);
}

/* The flow, the move and every check.  hold: the settler waits out the
   move (the test holds the ledger's write lock), so the outbox keeps every
   entry and the test compares it with the replies' fills; else it settles
   while the slot moves (its reads and acks follow the stream to the new
   master). */
static void orders_while_the_slot_moves(int hold) {
  cl = gm_test_cluster_start(3, 0, 1000);
  redisContext *rc = gm_test_cluster_connect(cl, 0);
  int slot = (int)gm_test_redis_int(rc, "CLUSTER KEYSLOT " INST_KEY);
  redisFree(rc);
  int from = gm_test_cluster_owner(cl, slot), to = (from + 1) % 3;
  ck_assert_int_ge(from, 0);
  ck_assert_msg(slot == 0 || gm_test_cluster_owner(cl, slot - 1) != from,
                "slot %d is not the first slot of its master: a reshard of "
                "1 slot would move another",
                slot);

  ct_start_cluster(cl, NULL, ct_at(CT_MONDAY, 10, 0));
  ct_create(SYM, REF);
  /* The settler waits (the ledger is busy) so the outbox keeps every entry
     for the check; it retries, and settles all once released. */
  if (hold) ct_ledger_hold();
  ct_flow_start(SYM, REF, TRADERS, 20261202u);
  /* Orders first, so the slot holds the instrument's keys and many
     idempotency records when it moves. */
  gm_test_sleep_ms(3000);
  rc = gm_test_cluster_connect(cl, from);
  long long keys = gm_test_redis_int(rc, "CLUSTER COUNTKEYSINSLOT %d", slot);
  redisFree(rc);
  double t0 = ct_now_ms();
  ct_flow_window(1);
  pid_t cli = gm_test_cluster_reshard(cl, from, to, 1);
  int st;
  while ((st = gm_test_cluster_reshard_done(cli)) < 0) gm_test_sleep_ms(5);
  ct_flow_window(0);
  double move_ms = ct_now_ms() - t0;
  gm_test_sleep_ms(500);
  ct_flow_totals t;
  ct_flow_stop(&t);
  ck_assert_msg(st == 0,
                "redis-cli --cluster reshard exited with %d; see "
                "redis.log in the cluster's folder",
                st);
  gm_test_cluster_wait_ok(cl);
  fprintf(stderr,
          "carbon reshard (settler %s) of slot %d (%s, %lld keys) from "
          "master %d to %d in %.0f ms (redis-cli's run): %d calls, %d while it "
          "moved; %d needed a retry (%d of those while it moved; %d "
          "UNAVAILABLE answers in all, the longest wait %.0f ms, the longest "
          "time without an answer %.0f ms); %d orders, %d trades\n",
          hold ? "held back" : "running", slot, SYM, keys, from, to, move_ms,
          t.calls, t.during, t.retried, t.during_retried, t.unavailable,
          t.longest, t.gap, t.norders, t.ntrades);
  ck_assert_int_gt(t.during, 0);
  /* The flow met the migrating slot (a call answered UNAVAILABLE, then
     done on a retry under its key): else nothing here tested the move. */
  ck_assert_msg(t.during_retried > 0,
                "no call was answered UNAVAILABLE while the slot moved: the "
                "move was not exercised (a larger slot, or more traders)");
  ck_assert_int_gt(t.ntrades, 0);

  /* The slot lives on the target master. */
  ck_assert_int_eq(gm_test_cluster_owner(cl, slot), to);

  /* No acknowledged order or trade lost or doubled (flow.h). */
  ct_flow_check(cl, to, hold, 0);
}

START_TEST(test_orders_while_the_slot_moves_settler_held) {
  orders_while_the_slot_moves(1);
}
END_TEST

START_TEST(test_orders_while_the_slot_moves_settling) {
  orders_while_the_slot_moves(0);
}
END_TEST

int main(void) {
  Suite *s = suite_create("carbon reshard");
  TCase *tc = tcase_create("reshard");
  tcase_add_checked_fixture(tc, NULL, teardown);
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, test_orders_while_the_slot_moves_settler_held);
  tcase_add_test(tc, test_orders_while_the_slot_moves_settling);
  suite_add_tcase(s, tc);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
