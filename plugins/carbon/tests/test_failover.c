/*
 * kill -9 of a Redis master under carbon load, its replica promoted (issue
 * 12): on a private 3-master Redis Cluster with 2 replicas a master, gmd
 * answering a write only once a replica has it ([redis]
 * cluster_wait_replicas), 4 threads place crossing orders on CEA-F2704 and
 * cancel some (flow.h: each call under its own idempotency key, sent again
 * under it while gmd answers UNAVAILABLE or not at all) while the master of
 * the instrument's slot is killed and its most advanced replica takes over.
 * GTD orders expire through the instrument's day deadline as the manual
 * clock passes them: one just before the kill, one while the master is
 * dead, the rest after the promotion.  Two cases: the settler held back
 * through the failover (the outbox compared with the replies' fills), and
 * settling through it.  Then: no acknowledged order or trade
 * lost or doubled (flow.h's checks, on the promoted node), each GTD order
 * expired once with its cash given back once, the deadline armed at the
 * close with no claim left, and the day's close settled once with the
 * volume the ledger's trades add up to.  A third case: the settler does not
 * settle a call's entries before a replica has them (else a master that
 * dies first leaves the ledger with a trade the promoted replica lacks).
 * ctest label "cluster".
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster_failover.h"
#include "flow.h"

#define SYM "CEA-F2704"
#define TAG "gm:{carbon:" SYM "}"
#define REF 8500
#define TRADERS 4
#define NGTD 5 /* expiring at 10:01 .. 10:05 */
#define GTD_PRICE 8100
#define GTD_QTY 10
#define GTD_CASH INT64_C(100000000)

static gm_test_cluster *cl;
static int victim;

static void teardown(void) {
  ct_flow_free();
  ct_stop();
  gm_test_cluster_stop(&cl);
}

static int64_t at(int minute) {
  return ct_at(CT_MONDAY, 10, minute);
}

/* The instrument's day deadline (ms) on `node`; -1 when it has none. */
static long long day_due(int node) {
  redisContext *rc = gm_test_cluster_connect(cl, node);
  redisReply *r = gm_test_redis_cmd(rc, "ZSCORE " TAG ":dl day|" SYM);
  long long v = r->type == REDIS_REPLY_STRING ? atoll(r->str) : -1;
  freeReplyObject(r);
  redisFree(rc);
  return v;
}

/* Waits (up to 10 s) until the day deadline on `node` is `want`. */
static long long wait_day_due(int node, long long want) {
  long long v = -1;
  for (int i = 0; i < 1000 && (v = day_due(node)) != want; i++)
    gm_test_sleep_ms(10);
  return v;
}

/* Whether a broker holds a claim on the day deadline (its firing runs),
   read on `node`. */
static int claimed(int node) {
  redisContext *rc = gm_test_cluster_connect(cl, node);
  int v = (int)gm_test_redis_int(rc, "HEXISTS " TAG ":dl:claims day|" SYM);
  redisFree(rc);
  return v;
}

/* Sets the clock to `due` and waits until the day deadline's firing is
   claimed (returns 1: it runs) or done, the deadline moved on (0). */
static int fire(int node, long long due) {
  ct_clock(due);
  for (double t0 = ct_now_ms(); ct_now_ms() - t0 < 10000;) {
    if (claimed(node)) return 1;
    if (day_due(node) != due) return 0;
  }
  ck_abort_msg("the day deadline due at %lld neither fired nor moved in 10 s",
               due);
  return 0;
}

/* Passed to ct_fail_over: the clock passes the third GTD expiry while the
   instrument's master is dead, so its day deadline falls due then. */
static void while_dead(void) {
  ct_clock(at(3));
}

/* How many lines of gmd's log hold both `a` and `b`. */
static int log_lines(const char *a, const char *b) {
  FILE *f = fopen(gm_test_gmd_log(ct_gmd), "r");
  ck_assert_msg(f, "gmd's log %s", gm_test_gmd_log(ct_gmd));
  char line[2048];
  int n = 0;
  while (fgets(line, sizeof line, f)) n += strstr(line, a) && strstr(line, b);
  fclose(f);
  return n;
}

/* The flow, the kill, the expiries and every check.  held: the settler
   waits out the failover (the test holds the ledger's write lock), so the
   outbox keeps every entry and the test compares it with the replies'
   fills; else it settles through it, reading the outbox of the master that
   dies and then of the one promoted. */
static void master_killed_under_load(int held) {
  /* Two replicas a master: the promoted one keeps a replica (the other
     follows it), else every write after the failover would wait in vain. */
  cl = gm_test_cluster_start(3, 2, 1000);
  redisContext *rc = gm_test_cluster_connect(cl, 0);
  int slot = (int)gm_test_redis_int(rc, "CLUSTER KEYSLOT " TAG ":i");
  redisFree(rc);
  victim = gm_test_cluster_owner(cl, slot);
  ck_assert_int_ge(victim, 0);
  /* Before any call: with cluster_wait_replicas a write is answered only
     once a replica has it. */
  gm_test_cluster_wait_streaming(cl);
  ct_start_cluster(cl, "[redis]\ncluster_wait_replicas = 1000\n", at(0));
  ct_create(SYM, REF);

  /* GTD buys far below the flow's sells (never filled), each bringing the
     day deadline forward to its expiry. */
  char gtd[NGTD][40];
  ct_register("g", "buyer");
  ct_deposit("g", SYM, GTD_CASH, 0);
  for (int i = 0; i < NGTD; i++) {
    Gm__Carbon__PlaceRequest q = GM__CARBON__PLACE_REQUEST__INIT;
    q.symbol = SYM;
    q.side = CT_BUY;
    q.price = GTD_PRICE;
    q.quantity = GTD_QTY;
    q.tif = GM__CARBON__TIME_IN_FORCE__TIF_GTD;
    q.expire_ms = at(NGTD - i); /* the latest first: each moves it */
    Gm__Carbon__PlaceReply *r =
        (Gm__Carbon__PlaceReply *)ct_call("g", "order.place", &q.base);
    ck_assert_msg(r, "GTD order: %s", ct_message);
    snprintf(gtd[i], sizeof gtd[i], "%s", r->order->id);
    ct_free(r);
  }
  ck_assert_int_eq(day_due(victim), at(1));

  /* The settler waits (the ledger is busy) so the outbox keeps every entry
     for the check; it retries, and settles all once released. */
  if (held) ct_ledger_hold();
  ct_flow_start(SYM, REF, TRADERS, 20261202u);
  gm_test_sleep_ms(1500);
  ct_clock(at(1));
  ck_assert_int_eq(wait_day_due(victim, at(2)), at(2));
  /* Due now: the master dies as soon as its firing is claimed (so it runs,
     and most runs it does), or done; the next one falls due while it is
     dead (while_dead). */
  int in_flight = fire(victim, at(2));
  double t0 = ct_now_ms();
  ct_flow_window(1);
  int promoted = ct_fail_over(cl, victim, while_dead);
  double failover_ms = ct_now_ms() - t0;
  gm_test_sleep_ms(500);
  ct_flow_window(0);
  ct_clock(at(4));
  gm_test_sleep_ms(1000);
  ct_clock(at(5));
  gm_test_sleep_ms(500);
  ct_flow_totals t;
  ct_flow_stop(&t);
  /* A firing that failed on the dead master fires again once its claim
     expired (30 s of the manual clock). */
  ct_clock(at(6));
  fprintf(stderr,
          "carbon failover (settler %s): master %d (slot %d, %s) killed, "
          "replica %d "
          "promoted in %.0f ms (kill to an agreed map); %d calls, %d sent "
          "from the kill to 0.5 s after that; %d needed a retry (%d of those "
          "in that window; %d UNAVAILABLE or unanswered sends in all); the "
          "instrument answered no call for %.0f ms (the longest wait of a "
          "retried call %.0f ms); %d orders, %d trades; %d day deadline "
          "firings failed and fired again (the one due at the kill %s)\n",
          held ? "held back" : "running", victim, slot, SYM, promoted,
          failover_ms, t.calls, t.during, t.retried, t.during_retried,
          t.unavailable, t.gap, t.longest, t.norders, t.ntrades,
          log_lines("deadline day|" SYM, "failed with"),
          in_flight ? "was claimed, running" : "had fired");
  ck_assert_int_gt(t.ntrades, 0);
  /* The kill landed under load: a call met it and was done on a retry. */
  ck_assert_int_gt(t.during_retried, 0);
  ck_assert_int_eq(gm_test_cluster_owner(cl, slot), promoted);

  /* No acknowledged order or trade lost or doubled (flow.h), the GTD
     orders counted in the instrument's order sequence. */
  ct_flow_check(cl, promoted, held, NGTD);

  /* Each GTD order expired once: one ledger row each, expired, order.get
     says so, and only they expired. */
  char sql[256];
  snprintf(sql, sizeof sql,
           "SELECT count(*) FROM carbon_orders WHERE symbol = '" SYM
           "' AND state = %d",
           GM__CARBON__ORDER_STATE__STATE_EXPIRED);
  ck_assert_int_eq(ct_ledger_wait(sql, NGTD), NGTD);
  snprintf(sql, sizeof sql,
           "SELECT count(*) FROM carbon_orders WHERE order_id = ? AND "
           "state = %d",
           GM__CARBON__ORDER_STATE__STATE_EXPIRED);
  ct_ledger_once(sql, gtd, NGTD, "GTD order expired");
  for (int i = 0; i < NGTD; i++) {
    Gm__Carbon__OrderRequest g = GM__CARBON__ORDER_REQUEST__INIT;
    g.order_id = gtd[i];
    Gm__Carbon__Order *o =
        (Gm__Carbon__Order *)ct_call("g", "order.get", &g.base);
    ck_assert_msg(o, "order.get %s: %s", gtd[i], ct_message);
    ck_assert_int_eq(o->state, GM__CARBON__ORDER_STATE__STATE_EXPIRED);
    ct_free(o);
  }
  /* Their cash was given back once: nothing frozen, nothing more. */
  Gm__Carbon__Account *a = ct_account("g", SYM);
  ck_assert_int_eq(a->cash_frozen, 0);
  ck_assert_int_eq(a->cash, GTD_CASH);
  ct_free(a);
  /* The deadline moved on to the close, and no claim is left behind on the
     promoted master. */
  ck_assert_int_eq(wait_day_due(promoted, ct_at(CT_MONDAY, 15, 0)),
                   ct_at(CT_MONDAY, 15, 0));
  ck_assert_int_eq(claimed(promoted), 0);

  /* The close fires once and its volume (Redis's count of the day's
     trades) is what the ledger's trades add up to. */
  ct_clock(ct_at(CT_MONDAY, 15, 0));
  ck_assert_int_eq(
      ct_ledger_wait(
          "SELECT count(*) FROM carbon_closes WHERE symbol = '" SYM "'", 1),
      1);
  int64_t volume = ct_ledger_int(
      "SELECT sum(quantity) FROM carbon_trades WHERE symbol = '" SYM "'");
  ck_assert_int_gt(volume, 0);
  ck_assert_int_eq(
      ct_ledger_int("SELECT volume FROM carbon_closes WHERE symbol = '" SYM
                    "' AND day = '" CT_MONDAY "'"),
      volume);
  ck_assert_int_eq(ct_ledger_int("SELECT count(*) FROM gm_dead_letter"), 0);
}

START_TEST(test_master_killed_settler_held) {
  master_killed_under_load(1);
}
END_TEST

START_TEST(test_master_killed_settling) {
  master_killed_under_load(0);
}
END_TEST

/* entries-added of the instrument's outbox on `node`. */
static long long entries_added(int node) {
  redisContext *rc = gm_test_cluster_connect(cl, node);
  redisReply *r = gm_test_redis_cmd(rc, "XINFO STREAM " TAG ":outbox");
  long long v = -1;
  for (size_t i = 0; r->type == REDIS_REPLY_ARRAY && i + 1 < r->elements;
       i += 2)
    if (!strcmp(r->element[i]->str, "entries-added"))
      v = r->element[i + 1]->integer;
  freeReplyObject(r);
  redisFree(rc);
  return v;
}

#define SETTLED_SQL \
  "SELECT count(*) FROM gm_settled WHERE stream = '" TAG ":outbox'"

/*
 * The settler must not settle what no replica has (docs/status.md open
 * problem 6): both replicas of the instrument's master stopped (SIGSTOP)
 * and cut off, a crossing buy is answered UNAVAILABLE (its WAIT saw no
 * replica) while its trade is in the master's outbox; the settler reads it
 * and holds it back (it logs so).  Then the master is killed and a
 * replica promoted: the ledger holds nothing the promoted master lacks.
 * The client's retry under the same key trades again on the promoted
 * master, and that is settled once: gm_settled's rows are the outbox's
 * entries-added.
 */
START_TEST(test_settler_waits_for_replica) {
  cl = gm_test_cluster_start(3, 2, 1000);
  victim = gm_test_cluster_master_of(cl, TAG ":i");
  ck_assert_int_ge(victim, 0);
  gm_test_cluster_wait_streaming(cl);
  ct_start_cluster(cl, "[redis]\ncluster_wait_replicas = 1000\n", at(0));
  ct_create(SYM, REF);
  ct_register("a", "buyer");
  ct_register("b", "seller");
  ct_deposit("a", SYM, GTD_CASH, 0);
  ct_deposit("b", SYM, 0, 1000);
  ct_free(ct_limit("b", SYM, CT_SELL, REF, 10, CT_GTC));
  /* Everything so far settled (and on a replica). */
  long long before = entries_added(victim);
  ck_assert_int_gt(before, 0);
  ck_assert_int_eq(ct_ledger_wait(SETTLED_SQL, before), before);

  /* The victim's replicas stop, and the victim drops their links. */
  pid_t reps[4];
  int nr = 0;
  for (int n = 0; n < gm_test_cluster_size(cl); n++) {
    if (n == victim) continue;
    redisContext *c = gm_test_cluster_connect(cl, n);
    redisReply *role = gm_test_redis_cmd(c, "ROLE");
    if (!strcmp(role->element[0]->str, "slave") &&
        role->element[2]->integer == gm_test_cluster_port(cl, victim) && nr < 4)
      reps[nr++] = gm_test_cluster_pid(cl, n);
    freeReplyObject(role);
    redisFree(c);
  }
  ck_assert_int_eq(nr, 2);
  for (int i = 0; i < nr; i++) ck_assert_int_eq(kill(reps[i], SIGSTOP), 0);
  redisContext *rc = gm_test_cluster_connect(cl, victim);
  ck_assert_int_eq(gm_test_redis_int(rc, "CLIENT KILL TYPE replica"), nr);
  redisFree(rc);

  /* The crossing buy trades on the master; no replica acknowledges it. */
  Gm__Carbon__PlaceRequest q = GM__CARBON__PLACE_REQUEST__INIT;
  q.symbol = SYM;
  q.side = CT_BUY;
  q.price = REF;
  q.quantity = 10;
  q.tif = CT_GTC;
  ProtobufCMessage *m = ct_call_idem("a", "order.place", "x", &q.base);
  ck_assert_msg(!m, "the buy was answered OK with no replica");
  ck_assert_int_eq(ct_status, GM__STATUS__UNAVAILABLE);
  ck_assert_int_gt(entries_added(victim), before);
  /* The settler read its entries and held them back (it says so), or,
     without the wait, settled them: either happens within 10 s. */
  for (double t0 = ct_now_ms(); ct_now_ms() - t0 < 10000; gm_test_sleep_ms(20))
    if (log_lines("are not settled yet", "cluster_wait_replicas") > 0 ||
        ct_ledger_int("SELECT count(*) FROM carbon_trades") > 0)
      break;
  ck_assert_int_eq(ct_ledger_int("SELECT count(*) FROM carbon_trades"), 0);
  ck_assert_int_eq(ct_ledger_int(SETTLED_SQL), before);
  ck_assert_int_gt(log_lines("are not settled yet", "cluster_wait_replicas"),
                   0);

  /* The master dies before a replica has the trade. */
  gm_test_cluster_kill(cl, victim);
  for (int i = 0; i < nr; i++) ck_assert_int_eq(kill(reps[i], SIGCONT), 0);
  int promoted = gm_test_cluster_promote(cl, victim);
  ck_assert_int_eq(ct_inst_field(cl, promoted, SYM, "tseq"), 0);
  /* Nothing in the ledger the promoted master lacks. */
  ck_assert_int_eq(ct_ledger_int("SELECT count(*) FROM carbon_trades"), 0);
  ck_assert_int_eq(
      ct_ledger_int("SELECT coalesce(sum(filled), 0) FROM carbon_orders"), 0);
  ck_assert_int_eq(ct_ledger_int(SETTLED_SQL), entries_added(promoted));

  /* The client's retry under the same key trades on the promoted master;
     each of its entries is settled once. */
  for (double t0 = ct_now_ms(); ct_now_ms() - t0 < 20000;
       gm_test_sleep_ms(100)) {
    m = ct_call_idem("a", "order.place", "x", &q.base);
    if (m || ct_status != GM__STATUS__UNAVAILABLE) break;
  }
  ck_assert_msg(m, "the retry: %s", ct_message);
  protobuf_c_message_free_unpacked(m, NULL);
  ck_assert_int_eq(ct_inst_field(cl, promoted, SYM, "tseq"), 1);
  long long added = entries_added(promoted);
  ck_assert_int_gt(added, before);
  ck_assert_int_eq(ct_ledger_wait(SETTLED_SQL, added), added);
  ck_assert_int_eq(ct_ledger_int("SELECT count(*) FROM carbon_trades"), 1);
  ck_assert_int_eq(
      ct_ledger_int("SELECT coalesce(sum(filled), 0) FROM carbon_orders"), 20);
  ck_assert_int_eq(ct_ledger_int("SELECT count(*) FROM gm_dead_letter"), 0);
}
END_TEST

int main(void) {
  Suite *s = suite_create("carbon failover");
  TCase *tc = tcase_create("failover");
  tcase_add_checked_fixture(tc, NULL, teardown);
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, test_master_killed_settler_held);
  tcase_add_test(tc, test_master_killed_settling);
  suite_add_tcase(s, tc);
  TCase *tw = tcase_create("settle_wait");
  tcase_add_checked_fixture(tw, NULL, teardown);
  tcase_set_timeout(tw, 120);
  tcase_add_test(tw, test_settler_waits_for_replica);
  suite_add_tcase(s, tw);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
