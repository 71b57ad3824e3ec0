/*
 * Carbon with Redis over maxmemory: a participant still reads its holdings,
 * its orders, the book and the instruments (read-only scripts, FCALL_RO);
 * placing and cancelling are refused with RESOURCE_EXHAUSTED saying Redis is
 * out of memory and what to do, and change nothing.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "redis_fill.h"

#define SYM "CEA-2025"

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

START_TEST(reads_answer_and_orders_are_refused_over_maxmemory) {
  Gm__Carbon__PlaceReply *p = ct_limit("alice", SYM, CT_BUY, 8400, 10, CT_GTC);
  char id[64];
  snprintf(id, sizeof id, "%s", p->order->id);
  ct_free(p);
  Gm__Carbon__Account *before = ct_account("alice", SYM);

  redisContext *c = gm_test_redis_connect(ct_redis);
  ck_assert_int_gt(gm_test_redis_fill(c), 0);
  long long dbsize = gm_test_redis_keys_but_leases(c);

  /* Reads: holdings, the order, the book, the instruments. */
  Gm__Carbon__Account *a = ct_account("alice", SYM);
  ck_assert_int_eq(a->cash, before->cash);
  ck_assert_int_eq(a->cash_frozen, before->cash_frozen);
  ct_free(a);
  Gm__Carbon__OrderRequest oreq = GM__CARBON__ORDER_REQUEST__INIT;
  oreq.order_id = id;
  Gm__Carbon__Order *o =
      (Gm__Carbon__Order *)ct_call("alice", "order.get", &oreq.base);
  ck_assert_msg(o != NULL, "order.get: %s", ct_message);
  ck_assert_int_eq(o->remaining, 10);
  ct_free(o);
  Gm__Carbon__Depth *d = ct_depth(SYM, 5);
  ck_assert_uint_eq(d->n_bids, 1);
  ct_free(d);
  Gm__Carbon__ListInstrumentsRequest lreq =
      GM__CARBON__LIST_INSTRUMENTS_REQUEST__INIT;
  Gm__Carbon__InstrumentList *l = (Gm__Carbon__InstrumentList *)ct_call(
      "bob", "instrument.list", &lreq.base);
  ck_assert_msg(l != NULL, "instrument.list: %s", ct_message);
  ck_assert_uint_eq(l->n_instruments, 1);
  ct_free(l);

  /* Writes: a crossing sell, a cancel. */
  Gm__Carbon__PlaceRequest preq = GM__CARBON__PLACE_REQUEST__INIT;
  preq.symbol = SYM;
  preq.side = CT_SELL;
  preq.type = GM__CARBON__ORDER_TYPE__TYPE_LIMIT;
  preq.tif = CT_GTC;
  preq.price = 8400;
  preq.quantity = 10;
  ct_expect("bob", "order.place", &preq.base, GM__STATUS__RESOURCE_EXHAUSTED,
            "out of memory");
  ck_assert_ptr_nonnull(strstr(ct_message, "raise maxmemory or free keys"));
  ct_expect("alice", "order.cancel", &oreq.base, GM__STATUS__RESOURCE_EXHAUSTED,
            "out of memory");

  /* Nothing changed: the order rests whole, the book and cash as they were. */
  ck_assert_int_le(gm_test_redis_keys_but_leases(c), dbsize);
  o = (Gm__Carbon__Order *)ct_call("alice", "order.get", &oreq.base);
  ck_assert_int_eq(o->remaining, 10);
  ck_assert_int_eq(o->state, GM__CARBON__ORDER_STATE__STATE_OPEN);
  ct_free(o);
  a = ct_account("alice", SYM);
  ck_assert_int_eq(a->cash, before->cash);
  ct_free(a);

  /* Room again: the sell trades against the order. */
  freeReplyObject(gm_test_redis_cmd(c, "CONFIG SET maxmemory 0"));
  p = ct_limit("bob", SYM, CT_SELL, 8400, 10, CT_GTC);
  ck_assert_uint_eq(p->n_fills, 1);
  ct_free(p);
  ct_free(before);
  redisFree(c);
}
END_TEST

int main(void) {
  Suite *s = suite_create("carbon_oom");
  TCase *tc = tcase_create("oom");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, reads_answer_and_orders_are_refused_over_maxmemory);
  suite_add_tcase(s, tc);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
