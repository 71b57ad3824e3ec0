/*
 * order.get whatever the settler's lag: an order that ended (filled,
 * cancelled, expired at the close, never rested at all) shows its final
 * state at once, not the ledger's older row nor NOT_FOUND.  The settler is
 * held back for real: the test holds the ledger's write lock
 * (ct_ledger_hold), so gmd's settler finds it busy and waits, while
 * everything else runs as usual.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "carbon.h"
#include "harness.h"

#define SYM "CEA-LAG"

static void setup(void) {
  ct_start(NULL, ct_at(CT_MONDAY, 10, 0));
  ct_register("alice", "buyer");
  ct_register("bob", "seller");
  ct_create(SYM, 8500);
  ct_deposit("alice", SYM, 10000000, 0);
  ct_deposit("bob", SYM, 0, 5000);
}

static void teardown(void) {
  ct_stop();
}

static Gm__Carbon__Order *get(const char *who, const char *id) {
  Gm__Carbon__OrderRequest g = GM__CARBON__ORDER_REQUEST__INIT;
  g.order_id = (char *)id;
  Gm__Carbon__Order *o =
      (Gm__Carbon__Order *)ct_call(who, "order.get", &g.base);
  ck_assert_msg(o, "order.get %s by %s: %s", id, who, ct_message);
  return o;
}

static void expect_state(const char *who, const char *id,
                         Gm__Carbon__OrderState st, int64_t filled,
                         const char *reason) {
  Gm__Carbon__Order *o = get(who, id);
  ck_assert_msg(o->state == st && o->filled == filled && o->remaining == 0 &&
                    !strcmp(o->reason, reason),
                "order.get %s: state %d filled %lld remaining %lld reason "
                "\"%s\"; expected state %d filled %lld remaining 0 \"%s\"",
                id, (int)o->state, (long long)o->filled,
                (long long)o->remaining, o->reason, (int)st, (long long)filled,
                reason);
  ck_assert_str_eq(o->id, id);
  ck_assert_str_eq(o->participant, who);
  ct_free(o);
}

/* The order id of a placement (kept in `id`). */
static void place(const char *who, Gm__Carbon__Side side, int64_t px, int64_t q,
                  Gm__Carbon__TimeInForce tif, char *id) {
  Gm__Carbon__PlaceReply *r = ct_limit(who, SYM, side, px, q, tif);
  snprintf(id, 64, "%s", r->order->id);
  ct_free(r);
}

START_TEST(ended_orders_show_their_state_before_settlement) {
  char filled[64], cancelled[64], expired[64], taker[64], fok[64];
  place("bob", CT_SELL, 8500, 10, CT_GTC, filled);
  place("bob", CT_SELL, 8600, 5, CT_GTC, cancelled);
  place("bob", CT_SELL, 8700, 5, GM__CARBON__TIME_IN_FORCE__TIF_DAY, expired);
  /* The ledger knows all three as open; then settlement stands still. */
  ck_assert_int_eq(ct_ledger_wait("SELECT count(*) FROM carbon_orders WHERE"
                                  " state = 1",
                                  3),
                   3);
  ct_ledger_hold();

  /* A fill ends the resting order and the taker (which never rested). */
  place("alice", CT_BUY, 8500, 10, GM__CARBON__TIME_IN_FORCE__TIF_IOC, taker);
  expect_state("bob", filled, GM__CARBON__ORDER_STATE__STATE_FILLED, 10, "");
  expect_state("alice", taker, GM__CARBON__ORDER_STATE__STATE_FILLED, 10, "");
  /* Still nobody else's order. */
  Gm__Carbon__OrderRequest g = GM__CARBON__ORDER_REQUEST__INIT;
  g.order_id = filled;
  ct_expect("alice", "order.get", &g.base, GM__STATUS__NOT_FOUND, "of yours");
  /* An IOC that finds nothing: cancelled at once, never in the book. */
  place("alice", CT_BUY, 8500, 3, GM__CARBON__TIME_IN_FORCE__TIF_IOC, fok);
  expect_state("alice", fok, GM__CARBON__ORDER_STATE__STATE_CANCELLED, 0,
               "IOC remainder");
  /* A cancel. */
  Gm__Carbon__OrderRequest c = GM__CARBON__ORDER_REQUEST__INIT;
  c.order_id = cancelled;
  ct_free((Gm__Carbon__Order *)ct_call("bob", "order.cancel", &c.base));
  expect_state("bob", cancelled, GM__CARBON__ORDER_STATE__STATE_CANCELLED, 0,
               "cancelled by bob");
  /* A DAY order expires at the close. */
  ct_clock(ct_at(CT_MONDAY, 15, 1));
  Gm__Carbon__CloseRequest cr = GM__CARBON__CLOSE_REQUEST__INIT;
  cr.symbol = SYM;
  Gm__Carbon__CloseReply *cl =
      (Gm__Carbon__CloseReply *)ct_call("root", "records.close", &cr.base);
  ck_assert_msg(cl, "records.close: %s", ct_message);
  ct_free(cl);
  expect_state("bob", expired, GM__CARBON__ORDER_STATE__STATE_EXPIRED, 0,
               "expired");
  /* What an ended order keeps in Redis expires by itself. */
  redisContext *rc = gm_test_redis_connect(ct_redis);
  redisReply *k = gm_test_redis_cmd(rc, "KEYS gm:{carbon:" SYM "}:e:*");
  ck_assert_msg(k->elements >= 1, "no ended-order records in Redis");
  for (size_t i = 0; i < k->elements; i++) {
    redisReply *t = gm_test_redis_cmd(rc, "PTTL %s", k->element[i]->str);
    ck_assert_msg(t->integer > 0, "%s has no expiry (PTTL %lld)",
                  k->element[i]->str, (long long)t->integer);
    freeReplyObject(t);
  }
  /* They expire by Redis's clock, which the manual clock does not move
   * (their minutes are real time's: reply.c): the fill five hours ago by
   * the manual clock is moments ago by theirs.  Their expiry is played by
   * deleting them. */
  for (size_t i = 0; i < k->elements; i++)
    ck_assert_int_eq(gm_test_redis_int(rc, "DEL %s", k->element[i]->str), 1);
  freeReplyObject(k);
  redisFree(rc);

  /* Past what Redis keeps of ended orders (CARBON_ENDED_KEEP_MS): the
   * ledger's row still says open, and order.get says it is not settled yet
   * instead of showing it open. */
  ct_expect("bob", "order.get", &g.base, GM__STATUS__UNAVAILABLE,
            "has not recorded its final state yet");
  ct_expect("alice", "order.get", &g.base, GM__STATUS__NOT_FOUND, "of yours");
  /* The taker never rested, so the ledger has no row of it at all until
   * settled: it is not settled yet either, not an order that never was
   * (a client told NOT_FOUND could place it again and buy twice). */
  g.order_id = taker;
  ct_expect("alice", "order.get", &g.base, GM__STATUS__UNAVAILABLE,
            "has not recorded");
  g.order_id = filled;
  /* Nothing of it is settled yet: the answers came from Redis. */
  ck_assert_int_eq(ct_ledger_int("SELECT count(*) FROM carbon_orders WHERE"
                                 " state = 1"),
                   3);

  /* Once settled the ledger says the same. */
  ct_ledger_release();
  ck_assert_int_eq(ct_ledger_wait("SELECT count(*) FROM carbon_orders WHERE"
                                  " state IN (3, 4, 5)",
                                  5),
                   5);
  expect_state("bob", filled, GM__CARBON__ORDER_STATE__STATE_FILLED, 10, "");
  expect_state("alice", taker, GM__CARBON__ORDER_STATE__STATE_FILLED, 10, "");
  expect_state("bob", expired, GM__CARBON__ORDER_STATE__STATE_EXPIRED, 0,
               "expired");
  /* Settled, another's order and an id that names none answer alike, word
   * for word but the id (it said "no order ID" for the second). */
  g.order_id = filled;
  ct_expect("alice", "order.get", &g.base, GM__STATUS__NOT_FOUND, "of yours");
  char other[sizeof ct_message];
  snprintf(other, sizeof other, "%s", ct_message);
  g.order_id = SYM ":00000000ffff";
  ct_expect("alice", "order.get", &g.base, GM__STATUS__NOT_FOUND, "of yours");
  char none[sizeof ct_message];
  snprintf(none, sizeof none, "%s", ct_message);
  char *p = strstr(other, filled);
  ck_assert_ptr_nonnull(p);
  memmove(p, p + strlen(filled), strlen(p + strlen(filled)) + 1);
  p = strstr(none, g.order_id);
  ck_assert_ptr_nonnull(p);
  memmove(p, p + strlen(g.order_id), strlen(p + strlen(g.order_id)) + 1);
  ck_assert_str_eq(other, none);
  /* An admin, who may see any order, is told the id names none (not
   * "of yours"), and sees another's. */
  ct_expect("root", "order.get", &g.base, GM__STATUS__NOT_FOUND,
            "never issued that number");
  Gm__Carbon__Order *seen = get("root", filled);
  ck_assert_str_eq(seen->participant, "bob");
  ck_assert_int_eq(seen->state, GM__CARBON__ORDER_STATE__STATE_FILLED);
  ct_free(seen);
}
END_TEST

/* The number of ended-order records in instrument `sym`'s per-minute
   hashes, of order `id` ("<sym>:<sequence>": the field is the sequence),
   or of every order when id is NULL (each hash also holds the field '-',
   the padding that keeps it a hash table: lib.lua, ended_flush). */
static long long ended_records(redisContext *rc, const char *sym,
                               const char *id) {
  long long n = 0;
  redisReply *k = gm_test_redis_cmd(rc, "KEYS gm:{carbon:%s}:e:*", sym);
  for (size_t i = 0; i < k->elements; i++)
    n += id ? gm_test_redis_int(rc, "HEXISTS %s %s", k->element[i]->str,
                                strrchr(id, ':') + 1)
            : gm_test_redis_int(rc, "HLEN %s", k->element[i]->str) -
                  gm_test_redis_int(rc, "HEXISTS %s -", k->element[i]->str);
  freeReplyObject(k);
  return n;
}

/* lib.lua is made once per load of carbon's Redis library (scripts.c), so
   what one call collects in its tables (ended orders, accounts, levels)
   must not reach the next: orders ended on one instrument leave their
   records there only, and accounts stay each instrument's own. */
START_TEST(calls_share_no_lib_state) {
  ct_create(SYM "2", 8500);
  ct_deposit("bob", SYM "2", 0, 700);
  char first[64], a[64], b[64];
  place("bob", CT_SELL, 8600, 5, CT_GTC, first); /* a's sequence is 2 */
  place("bob", CT_SELL, 8600, 5, CT_GTC, a);
  Gm__Carbon__OrderRequest c = GM__CARBON__ORDER_REQUEST__INIT;
  c.order_id = a;
  ct_free((Gm__Carbon__Order *)ct_call("bob", "order.cancel", &c.base));
  Gm__Carbon__PlaceReply *r =
      ct_limit("bob", SYM "2", CT_SELL, 8600, 7, CT_GTC);
  snprintf(b, sizeof b, "%s", r->order->id); /* sequence 1 */
  ct_free(r);
  c.order_id = b;
  ct_free((Gm__Carbon__Order *)ct_call("bob", "order.cancel", &c.base));
  redisContext *rc = gm_test_redis_connect(ct_redis);
  ck_assert_int_eq(ended_records(rc, SYM, a), 1);
  ck_assert_int_eq(ended_records(rc, SYM, NULL), 1);
  ck_assert_int_eq(ended_records(rc, SYM "2", b), 1);
  ck_assert_int_eq(ended_records(rc, SYM "2", NULL), 1);
  redisFree(rc);
  Gm__Carbon__Account *x = ct_account("bob", SYM);
  ck_assert_int_eq(x->allowances, 4995);
  ct_free(x);
  x = ct_account("bob", SYM "2");
  ck_assert_int_eq(x->allowances, 700);
  ct_free(x);
}
END_TEST

/* A minute's ended-order hash gets its expiry from the call that makes
   it, long enough that a record written into it a slot later still keeps
   CARBON_ENDED_KEEP_MS (lib.lua, ended_flush): later writes into it send
   no PEXPIRE, so the key must not lose its expiry nor expire sooner. */
START_TEST(ended_records_expire_a_keep_after_their_last_write) {
  char a[64], b[64], c3[64], d[64];
  place("bob", CT_SELL, 8600, 5, CT_GTC, a);
  place("bob", CT_SELL, 8600, 5, CT_GTC, b);
  place("bob", CT_SELL, 8600, 5, CT_GTC, c3);
  place("bob", CT_SELL, 8700, 5, CT_GTC, d);
  Gm__Carbon__OrderRequest c = GM__CARBON__ORDER_REQUEST__INIT;
  c.order_id = a; /* makes this minute's hash */
  ct_free((Gm__Carbon__Order *)ct_call("bob", "order.cancel", &c.base));
  /* 59.9 s later by the broker's clock, the same minute: */
  ct_clock(ct_at(CT_MONDAY, 10, 0) + 59900);
  c.order_id = b; /* writes into it */
  ct_free((Gm__Carbon__Order *)ct_call("bob", "order.cancel", &c.base));
  redisContext *rc = gm_test_redis_connect(ct_redis);
  /* The manual clock's minutes are not the hashes' (those follow real
     time): a's and b's, the one hash unless a real minute began between
     them. */
  redisReply *k = gm_test_redis_cmd(rc, "KEYS gm:{carbon:" SYM "}:e:*");
  ck_assert_int_ge(k->elements, 1);
  ck_assert_int_le(k->elements, 2);
  size_t kb = 0;
  while (kb + 1 < k->elements &&
         !gm_test_redis_int(rc, "HEXISTS %s %s", k->element[kb]->str,
                            strrchr(b, ':') + 1))
    kb++;
  long long ttl = gm_test_redis_int(rc, "PTTL %s", k->element[kb]->str);
  ck_assert_int_eq(ended_records(rc, SYM, b), 1);
  /* Its expiry was set when it was made, moments ago by Redis's clock,
     and no later write moves it: it must leave more than KEEP after a
     write up to a slot later (by the brokers' clocks, which may run a slot
     apart from Redis's): ENDED_KEEP + 2 slots from its first write. */
  ck_assert_msg(ttl > CARBON_ENDED_KEEP_MS + CARBON_ENDED_SLOT_MS * 3 / 2 &&
                    ttl <= CARBON_ENDED_KEEP_MS + 2 * CARBON_ENDED_SLOT_MS,
                "%s: PTTL %lld, expected just under %lld", k->element[kb]->str,
                ttl,
                (long long)(CARBON_ENDED_KEEP_MS + 2 * CARBON_ENDED_SLOT_MS));
  /* A mass cancel's several records into the existing key keep it too. */
  Gm__Carbon__MassCancelRequest m = GM__CARBON__MASS_CANCEL_REQUEST__INIT;
  m.symbol = SYM;
  Gm__Carbon__MassCancelReply *mr = (Gm__Carbon__MassCancelReply *)ct_call(
      "bob", "order.mass_cancel", &m.base);
  ck_assert_msg(mr && mr->n_cancelled == 2, "order.mass_cancel: %s",
                mr ? "not 2 cancelled" : ct_message);
  ct_free(mr);
  ck_assert_int_eq(ended_records(rc, SYM, c3), 1);
  ck_assert_int_eq(ended_records(rc, SYM, d), 1);
  ck_assert_int_eq(ended_records(rc, SYM, NULL), 4);
  ck_assert_int_gt(gm_test_redis_int(rc, "PTTL %s", k->element[kb]->str),
                   CARBON_ENDED_KEEP_MS);
  freeReplyObject(k);
  redisFree(rc);
}
END_TEST

/* Under a manual clock (trial brokers) ended-order records go into the
   hash of the real minute, not of the manual clock's: each hash expires a
   fixed real time after it is made, so a record must go into one made
   within the last real minute (before, under a paused clock, every record
   went into the paused minute's hash, and one written just before it
   expired was gone with it).  And order.get looks where any broker put
   it: the slots follow real time, not a broker's own count of how long
   its clock stood still, so a clock moved back or forward since (or
   another broker, or a restart) still finds the record.  The ledger is
   held: only Redis can answer. */
START_TEST(a_paused_clock_keeps_ended_records) {
  char a[64], b[64];
  int64_t x = ct_at(CT_MONDAY, 10, 0) + 59000; /* a second before 10:01 */
  ct_clock(x);
  place("bob", CT_SELL, 8600, 5, CT_GTC, a);
  place("bob", CT_SELL, 8600, 5, CT_GTC, b);
  ck_assert_int_eq(ct_ledger_wait("SELECT count(*) FROM carbon_orders WHERE"
                                  " state = 1",
                                  2),
                   2);
  ct_ledger_hold();
  Gm__Carbon__OrderRequest c = GM__CARBON__ORDER_REQUEST__INIT;
  c.order_id = a;
  ct_free((Gm__Carbon__Order *)ct_call("bob", "order.cancel", &c.base));
  redisContext *rc = gm_test_redis_connect(ct_redis);
  /* In a hash made just now, whatever the manual clock says. */
  char key[128];
  snprintf(key, sizeof key, "gm:{carbon:" SYM "}:e:%lld",
           (long long)(x / CARBON_ENDED_SLOT_MS));
  ck_assert_int_eq(gm_test_redis_int(rc, "EXISTS %s", key), 0);
  ck_assert_int_eq(ended_records(rc, SYM, a), 1);
  redisReply *k = gm_test_redis_cmd(rc, "KEYS gm:{carbon:" SYM "}:e:*");
  ck_assert_int_eq(k->elements, 1);
  ck_assert_int_gt(gm_test_redis_int(rc, "PTTL %s", k->element[0]->str),
                   CARBON_ENDED_KEEP_MS + CARBON_ENDED_SLOT_MS);
  freeReplyObject(k);
  /* The clock moved back an hour: a's record is still found. */
  ct_clock(x - 3600 * 1000);
  expect_state("bob", a, GM__CARBON__ORDER_STATE__STATE_CANCELLED, 0,
               "cancelled by bob");
  /* And forward 20 minutes, past the keep by the manual clock. */
  ct_clock(x + 20 * 60 * 1000);
  expect_state("bob", a, GM__CARBON__ORDER_STATE__STATE_CANCELLED, 0,
               "cancelled by bob");
  c.order_id = b;
  ct_free((Gm__Carbon__Order *)ct_call("bob", "order.cancel", &c.base));
  ct_clock(x);
  expect_state("bob", b, GM__CARBON__ORDER_STATE__STATE_CANCELLED, 0,
               "cancelled by bob");
  redisFree(rc);
}
END_TEST

int main(void) {
  Suite *s = suite_create("carbon lag");
  TCase *tc = tcase_create("lag");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, ended_orders_show_their_state_before_settlement);
  tcase_add_test(tc, calls_share_no_lib_state);
  tcase_add_test(tc, ended_records_expire_a_keep_after_their_last_write);
  tcase_add_test(tc, a_paused_clock_keeps_ended_records);
  suite_add_tcase(s, tc);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
