/*
 * Orders through gmd: every placement rule, matching, order types, client
 * order ids, cancel / replace / mass cancel, self-trade prevention.
 */
#include <stdlib.h>
#include <string.h>

#include "harness.h"

#define SYM "CEA-2025"

static void setup(void) {
  ct_start(NULL, ct_at(CT_MONDAY, 10, 0));
  ct_create(SYM, 8500);                  /* 85.00 yuan: band 76.50 - 93.50 */
  ct_deposit("alice", SYM, 10000000, 0); /* 100,000 yuan */
  ct_deposit("bob", SYM, 0, 5000);       /* 5,000 t */
  ct_deposit("carol", SYM, 10000000, 5000);
}

static void teardown(void) {
  ct_stop();
}

static Gm__Carbon__PlaceRequest order(Gm__Carbon__Side side, int64_t price,
                                      int64_t qty) {
  Gm__Carbon__PlaceRequest r = GM__CARBON__PLACE_REQUEST__INIT;
  r.symbol = SYM;
  r.side = side;
  r.price = price;
  r.quantity = qty;
  return r;
}

static void expect_account(const char *who, int64_t cash, int64_t cash_frozen,
                           int64_t alw, int64_t alw_frozen, int64_t locked) {
  Gm__Carbon__Account *a = ct_account(who, SYM);
  ck_assert_msg(
      a->cash == cash && a->cash_frozen == cash_frozen &&
          a->allowances == alw && a->allowances_frozen == alw_frozen &&
          a->allowances_locked == locked,
      "%s: cash %lld/%lld alw %lld/%lld locked %lld; expected "
      "%lld/%lld %lld/%lld %lld",
      who, (long long)a->cash, (long long)a->cash_frozen,
      (long long)a->allowances, (long long)a->allowances_frozen,
      (long long)a->allowances_locked, (long long)cash, (long long)cash_frozen,
      (long long)alw, (long long)alw_frozen, (long long)locked);
  ct_free(a);
}

START_TEST(rejections_say_why_and_change_nothing) {
  Gm__Carbon__PlaceRequest r = order(CT_BUY, 8501, 10);
  r.price = 850050 / 100 + 0; /* 8500 is fine; off-tick needs tick > 1 */
  Gm__Carbon__PlaceRequest q = order(CT_BUY, 8500, 0);
  ct_expect("alice", "order.place", &q.base, GM__STATUS__INVALID_ARGUMENT,
            "quantity 0 t must be");
  q.quantity = -5;
  ct_expect("alice", "order.place", &q.base, GM__STATUS__INVALID_ARGUMENT,
            "must be 1..");
  q = order(CT_BUY, 9400, 10);
  ct_expect(
      "alice", "order.place", &q.base, GM__STATUS__INVALID_ARGUMENT,
      "outside today's band 76.50-93.50 yuan (reference 85.00 +/-10.00%)");
  q = order(CT_SELL, 7649, 10);
  ct_expect("bob", "order.place", &q.base, GM__STATUS__INVALID_ARGUMENT,
            "outside today's band 76.50-93.50");
  q = order(CT_BUY, 8500, 100000);
  ct_expect("alice", "order.place", &q.base, GM__STATUS__INVALID_ARGUMENT,
            "at or above the block threshold 100000 t");
  q = order(CT_BUY, 9000, 2000);
  ct_expect("alice", "order.place", &q.base, GM__STATUS__FAILED_PRECONDITION,
            "not enough cash: the order holds 180000.00 yuan");
  q = order(CT_SELL, 8500, 5001);
  ct_expect("bob", "order.place", &q.base, GM__STATUS__FAILED_PRECONDITION,
            "not enough allowances: 5001 t to sell, 5000 t available");
  q.symbol = "NOPE-1";
  ct_expect("bob", "order.place", &q.base, GM__STATUS__NOT_FOUND,
            "no instrument NOPE-1");
  q.symbol = "bad symbol";
  ct_expect("bob", "order.place", &q.base, GM__STATUS__INVALID_ARGUMENT,
            "symbol \"bad symbol\" is not valid");

  /* Off-tick and off-lot need an instrument with a coarser grid. */
  Gm__Carbon__Instrument in = GM__CARBON__INSTRUMENT__INIT;
  Gm__Carbon__CreateInstrumentRequest cr =
      GM__CARBON__CREATE_INSTRUMENT_REQUEST__INIT;
  in.symbol = "CCER-A";
  in.kind = "CCER";
  in.reference_price = 5000;
  in.tick = 5;
  in.lot = 10;
  cr.instrument = &in;
  ProtobufCMessage *m = ct_call("root", "instrument.create", &cr.base);
  ck_assert_msg(m, "%s", ct_message);
  protobuf_c_message_free_unpacked(m, NULL);
  ct_deposit("alice", "CCER-A", 1000000, 0);
  q = order(CT_BUY, 5002, 10);
  q.symbol = "CCER-A";
  ct_expect("alice", "order.place", &q.base, GM__STATUS__INVALID_ARGUMENT,
            "price 50.02 is not on the tick of 0.05 yuan");
  q.price = 5005;
  q.quantity = 15;
  ct_expect("alice", "order.place", &q.base, GM__STATUS__INVALID_ARGUMENT,
            "quantity 15 t is not a multiple of the lot 10 t");
  (void)r;

  /* Outside the sessions: the lunch break, and a Saturday. */
  ct_clock(ct_at(CT_MONDAY, 12, 0));
  q = order(CT_BUY, 8500, 10);
  ct_expect("alice", "order.place", &q.base, GM__STATUS__FAILED_PRECONDITION,
            "next open 2026-03-02 13:00 Asia/Shanghai");
  ct_clock(ct_at("2026-03-07", 10, 0));
  ct_expect("alice", "order.place", &q.base, GM__STATUS__FAILED_PRECONDITION,
            "next open 2026-03-09 09:30 Asia/Shanghai");
  ct_clock(ct_at(CT_MONDAY, 15, 0));
  ct_expect("alice", "order.place", &q.base, GM__STATUS__FAILED_PRECONDITION,
            "next open 2026-03-03 09:30");

  /* Halted. */
  ct_clock(ct_at(CT_MONDAY, 10, 0));
  Gm__Carbon__InstrumentRequest h = GM__CARBON__INSTRUMENT_REQUEST__INIT;
  h.symbol = SYM;
  h.reason = "registry maintenance";
  m = ct_call("root", "instrument.halt", &h.base);
  ck_assert_msg(m, "%s", ct_message);
  protobuf_c_message_free_unpacked(m, NULL);
  ct_expect("alice", "order.place", &q.base, GM__STATUS__FAILED_PRECONDITION,
            "halted (registry maintenance)");
  m = ct_call("root", "instrument.resume", &h.base);
  ck_assert_msg(m, "%s", ct_message);
  protobuf_c_message_free_unpacked(m, NULL);

  /* Nothing changed by any of it. */
  expect_account("alice", 10000000, 0, 0, 0, 0);
  expect_account("bob", 0, 0, 5000, 0, 0);
  Gm__Carbon__Depth *d = ct_depth(SYM, 5);
  ck_assert_int_eq(d->n_bids + d->n_asks, 0);
  ct_free(d);
  Gm__Carbon__PlaceReply *p = ct_limit("alice", SYM, CT_BUY, 8500, 10, CT_GTC);
  ck_assert_int_eq(p->order->state, GM__CARBON__ORDER_STATE__STATE_OPEN);
  ct_free(p);
}
END_TEST

START_TEST(price_time_priority_at_the_resting_price) {
  Gm__Carbon__PlaceReply *a1 = ct_limit("bob", SYM, CT_SELL, 8600, 100, CT_GTC);
  Gm__Carbon__PlaceReply *a2 =
      ct_limit("carol", SYM, CT_SELL, 8600, 100, CT_GTC);
  Gm__Carbon__PlaceReply *a3 = ct_limit("bob", SYM, CT_SELL, 8550, 50, CT_GTC);
  /* A buy at 87.00 for 180 t: 50 at 85.50 first, then 130 at 86.00 by time. */
  Gm__Carbon__PlaceReply *b = ct_limit("alice", SYM, CT_BUY, 8700, 180, CT_GTC);
  ck_assert_int_eq(b->n_fills, 3);
  ck_assert_int_eq(b->fills[0]->price, 8550);
  ck_assert_int_eq(b->fills[0]->quantity, 50);
  ck_assert_str_eq(b->fills[0]->maker_order_id, a3->order->id);
  ck_assert_int_eq(b->fills[1]->price, 8600);
  ck_assert_int_eq(b->fills[1]->quantity, 100);
  ck_assert_str_eq(b->fills[1]->maker_order_id, a1->order->id);
  ck_assert_int_eq(b->fills[2]->quantity, 30);
  ck_assert_str_eq(b->fills[2]->maker_order_id, a2->order->id);
  ck_assert_int_eq(b->fills[2]->amount, 30 * 8600);
  ck_assert_int_eq(b->order->state, GM__CARBON__ORDER_STATE__STATE_FILLED);
  ck_assert_int_eq(b->order->filled, 180);

  /* alice paid 50*85.50 + 130*86.00 (not 87.00): the rest came back. */
  int64_t paid = 50 * 8550 + 130 * 8600;
  expect_account("alice", 10000000 - paid, 0, 0, 0, 180);
  /* bob sold 150 t, carol 30 t of her resting 100. */
  expect_account("bob", 50 * 8550 + 100 * 8600, 0, 4850, 0, 0);
  expect_account("carol", 10000000 + 30 * 8600, 0, 4900, 70, 0);
  Gm__Carbon__Depth *d = ct_depth(SYM, 5);
  ck_assert_int_eq(d->n_asks, 1);
  ck_assert_int_eq(d->asks[0]->price, 8600);
  ck_assert_int_eq(d->asks[0]->quantity, 70);
  ck_assert_int_eq(d->n_bids, 0);
  ct_free(d);
  ct_free(a1);
  ct_free(a2);
  ct_free(a3);
  ct_free(b);
}
END_TEST

int main(void) {
  Suite *s = suite_create("carbon orders");
  TCase *tc = tcase_create("orders");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, rejections_say_why_and_change_nothing);
  tcase_add_test(tc, price_time_priority_at_the_resting_price);
  suite_add_tcase(s, tc);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
