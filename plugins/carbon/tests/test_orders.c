/*
 * Orders through gmd: every placement rule, matching, order types, client
 * order ids, cancel / replace / mass cancel, self-trade prevention.
 */
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "price.h"

#define SYM "CEA-2025"

static void setup(void) {
  ct_start(NULL, ct_at(CT_MONDAY, 10, 0));
  ct_register("alice", "buyer");
  ct_register("bob", "seller");
  ct_register("carol", "buyer,seller");
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

START_TEST(ioc_fok_market_and_post_only) {
  ct_free(ct_limit("bob", SYM, CT_SELL, 8600, 100, CT_GTC));
  ct_free(ct_limit("bob", SYM, CT_SELL, 8700, 100, CT_GTC));
  /* FOK for more than there is at or under 86.50: nothing happens. */
  Gm__Carbon__PlaceRequest q = order(CT_BUY, 8650, 150);
  q.tif = GM__CARBON__TIME_IN_FORCE__TIF_FOK;
  ct_expect("alice", "order.place", &q.base, GM__STATUS__FAILED_PRECONDITION,
            "FOK order cannot fill in full: 100 t available");
  expect_account("alice", 10000000, 0, 0, 0, 0);
  /* IOC: 100 fill, the other 50 are cancelled and released. */
  q.tif = GM__CARBON__TIME_IN_FORCE__TIF_IOC;
  Gm__Carbon__PlaceReply *r =
      (Gm__Carbon__PlaceReply *)ct_call("alice", "order.place", &q.base);
  ck_assert_msg(r, "%s", ct_message);
  ck_assert_int_eq(r->n_fills, 1);
  ck_assert_int_eq(r->order->state, GM__CARBON__ORDER_STATE__STATE_CANCELLED);
  ck_assert_str_eq(r->order->reason, "IOC remainder");
  ck_assert_int_eq(r->order->filled, 100);
  ck_assert_int_eq(r->order->remaining, 0);
  ct_free(r);
  expect_account("alice", 10000000 - 100 * 8600, 0, 0, 0, 100);
  /* FOK that fits: fills in full. */
  q.tif = GM__CARBON__TIME_IN_FORCE__TIF_FOK;
  q.price = 8700;
  q.quantity = 60;
  r = (Gm__Carbon__PlaceReply *)ct_call("alice", "order.place", &q.base);
  ck_assert_msg(r, "%s", ct_message);
  ck_assert_int_eq(r->order->state, GM__CARBON__ORDER_STATE__STATE_FILLED);
  ct_free(r);
  /* Post-only that would trade: refused; one that rests: fine. */
  q = order(CT_BUY, 8700, 10);
  q.post_only = 1;
  ct_expect("alice", "order.place", &q.base, GM__STATUS__FAILED_PRECONDITION,
            "post-only order would trade at 87.00; change the price or drop "
            "post-only (post_only, gm: --post-only)");
  q.price = 8690;
  r = (Gm__Carbon__PlaceReply *)ct_call("alice", "order.place", &q.base);
  ck_assert_msg(r, "%s", ct_message);
  ck_assert_int_eq(r->order->state, GM__CARBON__ORDER_STATE__STATE_OPEN);
  ct_free(r);
  /* Market sell: bounded by the band's low edge, takes the 86.90 bid and
   * cancels the rest rather than walking down empty ticks. */
  q = order(CT_SELL, 0, 30);
  q.type = GM__CARBON__ORDER_TYPE__TYPE_MARKET;
  r = (Gm__Carbon__PlaceReply *)ct_call("carol", "order.place", &q.base);
  ck_assert_msg(r, "%s", ct_message);
  ck_assert_int_eq(r->n_fills, 1);
  ck_assert_int_eq(r->fills[0]->price, 8690);
  ck_assert_int_eq(r->fills[0]->quantity, 10);
  ck_assert_int_eq(r->order->state, GM__CARBON__ORDER_STATE__STATE_CANCELLED);
  ck_assert_str_eq(r->order->reason, "market order remainder");
  ct_free(r);
  expect_account("carol", 10000000 + 10 * 8690, 0, 4990, 0, 0);
}
END_TEST

/* A field the order would not use is refused with what to send instead,
   and nothing is done: a market order's price (before, dropped: the order
   traded past it, at the band edge), a market order's DAY or GTD (before,
   made IOC), an expire_ms on an order that is not GTD (before, dropped: a
   GTC order that its sender meant to expire). */
START_TEST(fields_an_order_would_not_use_are_refused) {
  Gm__Carbon__PlaceReply *ask =
      ct_limit("bob", SYM, CT_SELL, 9000, 10, CT_GTC); /* 90.00 */
  ck_assert_str_eq(ask->order->id, SYM ":000000000001");
  ct_free(ask);
  Gm__Carbon__PlaceRequest q = order(CT_BUY, 8500, 10);
  q.type = GM__CARBON__ORDER_TYPE__TYPE_MARKET;
  ct_expect("alice", "order.place", &q.base, GM__STATUS__INVALID_ARGUMENT,
            "a market order takes no price (85.00 yuan given): it trades at "
            "the best prices within today's band; send price 0, or a limit "
            "order (TYPE_LIMIT) to cap the price");
  q.price = 0;
  q.tif = GM__CARBON__TIME_IN_FORCE__TIF_DAY;
  ct_expect("alice", "order.place", &q.base, GM__STATUS__INVALID_ARGUMENT,
            "a market order never rests, so TIF_DAY does not apply");
  q.tif = GM__CARBON__TIME_IN_FORCE__TIF_GTD;
  q.expire_ms = ct_at(CT_MONDAY, 14, 0);
  ct_expect("alice", "order.place", &q.base, GM__STATUS__INVALID_ARGUMENT,
            "a market order never rests, so TIF_GTD does not apply");
  q = order(CT_BUY, 8500, 10);
  q.expire_ms = ct_at(CT_MONDAY, 14, 0);
  ct_expect("alice", "order.place", &q.base, GM__STATUS__INVALID_ARGUMENT,
            "expire_ms is only for GTD orders: set tif=TIF_GTD");
  q.tif = GM__CARBON__TIME_IN_FORCE__TIF_DAY;
  ct_expect("alice", "order.place", &q.base, GM__STATUS__INVALID_ARGUMENT,
            "expire_ms is only for GTD orders");
  q.tif = GM__CARBON__TIME_IN_FORCE__TIF_IOC;
  q.price = 9000;
  ct_expect("alice", "order.place", &q.base, GM__STATUS__INVALID_ARGUMENT,
            "expire_ms is only for GTD orders");
  /* A GTD order without its expiry: the field and gm's option named, in
     the units the field takes. */
  q = order(CT_BUY, 8500, 10);
  q.tif = GM__CARBON__TIME_IN_FORCE__TIF_GTD;
  ct_expect("alice", "order.place", &q.base, GM__STATUS__INVALID_ARGUMENT,
            "a GTD order (tif TIF_GTD) needs its expiry: set expire_ms to the "
            "time it expires, in ms since 1970-01-01 UTC (gm: --gtd DATE)");
  /* post_only on an order that never rests names gm's option too. */
  q = order(CT_BUY, 8500, 10);
  q.tif = GM__CARBON__TIME_IN_FORCE__TIF_IOC;
  q.post_only = 1;
  ct_expect("alice", "order.place", &q.base, GM__STATUS__INVALID_ARGUMENT,
            "post_only (gm: --post-only) applies to resting limit orders");
  /* Nothing traded, rested or was numbered. */
  expect_account("alice", 10000000, 0, 0, 0, 0);
  expect_account("bob", 0, 0, 4990, 10, 0);
  Gm__Carbon__Depth *d = ct_depth(SYM, 5);
  ck_assert_int_eq(d->n_bids, 0);
  ck_assert_int_eq(d->n_asks, 1);
  ck_assert_int_eq(d->asks[0]->quantity, 10);
  ct_free(d);
  /* What the messages say to send works: the market order without its
     price (it takes the 90.00 ask), the GTD order with its tif. */
  q = order(CT_BUY, 0, 10);
  q.type = GM__CARBON__ORDER_TYPE__TYPE_MARKET;
  Gm__Carbon__PlaceReply *r =
      (Gm__Carbon__PlaceReply *)ct_call("alice", "order.place", &q.base);
  ck_assert_msg(r, "%s", ct_message);
  ck_assert_str_eq(r->order->id, SYM ":000000000002");
  ck_assert_int_eq(r->order->state, GM__CARBON__ORDER_STATE__STATE_FILLED);
  ct_free(r);
  q = order(CT_BUY, 8500, 10);
  q.tif = GM__CARBON__TIME_IN_FORCE__TIF_GTD;
  q.expire_ms = ct_at(CT_MONDAY, 14, 0);
  r = (Gm__Carbon__PlaceReply *)ct_call("alice", "order.place", &q.base);
  ck_assert_msg(r, "%s", ct_message);
  ck_assert_int_eq(r->order->expire_ms, ct_at(CT_MONDAY, 14, 0));
  ct_free(r);
}
END_TEST

/* A trade that would take a balance past the exact-amount limit ends the
   order with the balance named, in its units, and trades nothing: the
   seller's cash (yuan), the buyer's allowances (tonnes). Before, both
   said "cash limit of ... yuan reached". */
START_TEST(the_balance_limit_names_the_balance) {
  ct_deposit("bob", SYM, GM_CARBON_MAX_CASH - 100, 0);
  /* A deposit past the limit says how much still fits. */
  Gm__Carbon__MoveRequest mv = GM__CARBON__MOVE_REQUEST__INIT;
  mv.participant = "bob";
  mv.symbol = SYM;
  mv.asset = GM__CARBON__ASSET__ASSET_CASH;
  mv.amount = 101;
  ct_expect("root", "account.deposit", &mv.base, GM__STATUS__RESOURCE_EXHAUSTED,
            "bob holds 39999999999999.00 yuan in " SYM
            ", so at most 1.00 yuan can be deposited");
  Gm__Carbon__PlaceReply *ask = ct_limit("bob", SYM, CT_SELL, 8500, 10, CT_GTC);
  Gm__Carbon__PlaceReply *r = ct_limit("alice", SYM, CT_BUY, 8500, 10, CT_GTC);
  ck_assert_int_eq(r->order->state, GM__CARBON__ORDER_STATE__STATE_CANCELLED);
  ck_assert_int_eq(r->order->filled, 0);
  ck_assert_str_eq(r->order->reason,
                   "the resting seller's cash would pass the limit of "
                   "40000000000000.00 yuan that keeps amounts exact");
  ct_free(r);
  expect_account("alice", 10000000, 0, 0, 0, 0);
  expect_account("bob", GM_CARBON_MAX_CASH - 100, 0, 4990, 10, 0);
  Gm__Carbon__OrderRequest oc = GM__CARBON__ORDER_REQUEST__INIT;
  oc.order_id = ask->order->id;
  ProtobufCMessage *m = ct_call("bob", "order.cancel", &oc.base);
  ck_assert_msg(m, "%s", ct_message);
  protobuf_c_message_free_unpacked(m, NULL);
  ct_free(ask);
  /* The aggressor's own cash: "your". */
  ct_free(ct_limit("alice", SYM, CT_BUY, 8400, 10, CT_GTC));
  ct_deposit("carol", SYM, GM_CARBON_MAX_CASH - 10000000 - 100, 0);
  r = ct_limit("carol", SYM, CT_SELL, 8400, 10, CT_GTC);
  ck_assert_int_eq(r->order->filled, 0);
  ck_assert_str_eq(r->order->reason,
                   "your cash would pass the limit of 40000000000000.00 yuan "
                   "that keeps amounts exact");
  ct_free(r);
  /* The aggressor buyer's allowances, in tonnes (dave's ask rests above
     alice's bid). */
  ct_register("dave", "seller");
  ct_deposit("dave", SYM, 0, 100);
  ct_free(ct_limit("dave", SYM, CT_SELL, 8500, 10, CT_GTC));
  ct_deposit("alice", SYM, 0, GM_CARBON_MAX_CASH - 5);
  r = ct_limit("alice", SYM, CT_BUY, 8500, 10, CT_GTC);
  ck_assert_int_eq(r->order->filled, 0);
  ck_assert_str_eq(r->order->reason,
                   "your allowances would pass the limit of "
                   "4000000000000000 t that keeps amounts exact");
  ct_free(r);
  expect_account("alice", 10000000 - 10 * 8400, 10 * 8400,
                 GM_CARBON_MAX_CASH - 5, 0, 0);
}
END_TEST

START_TEST(client_order_id_and_retries_are_idempotent) {
  Gm__Carbon__PlaceRequest q = order(CT_BUY, 8500, 10);
  q.client_order_id = "my-1";
  Gm__Carbon__PlaceReply *a =
      (Gm__Carbon__PlaceReply *)ct_call("alice", "order.place", &q.base);
  ck_assert_msg(a, "%s", ct_message);
  ck_assert(!a->duplicate);
  /* Same client order id, new envelope key, even a different price. */
  q.price = 8400;
  Gm__Carbon__PlaceReply *b =
      (Gm__Carbon__PlaceReply *)ct_call("alice", "order.place", &q.base);
  ck_assert_msg(b, "%s", ct_message);
  ck_assert(b->duplicate);
  ck_assert_str_eq(b->order->id, a->order->id);
  ck_assert_int_eq(b->order->price, 8500);
  /* Another participant may use the same client order id. */
  Gm__Carbon__PlaceReply *c =
      (Gm__Carbon__PlaceReply *)ct_call("carol", "order.place", &q.base);
  ck_assert_msg(c, "%s", ct_message);
  ck_assert(!c->duplicate);
  /* A retried envelope (same idempotency key) returns the first reply. */
  Gm__Carbon__PlaceRequest z = order(CT_BUY, 8300, 5);
  Gm__Carbon__PlaceReply *d = (Gm__Carbon__PlaceReply *)ct_call_idem(
      "alice", "order.place", "retry-key", &z.base);
  Gm__Carbon__PlaceReply *e = (Gm__Carbon__PlaceReply *)ct_call_idem(
      "alice", "order.place", "retry-key", &z.base);
  ck_assert(d && e);
  ck_assert_str_eq(d->order->id, e->order->id);
  expect_account("alice", 10000000 - 10 * 8500 - 5 * 8300, 10 * 8500 + 5 * 8300,
                 0, 0, 0);
  Gm__Carbon__Depth *dp = ct_depth(SYM, 5);
  ck_assert_int_eq(dp->n_bids, 3);
  ck_assert_int_eq(dp->bids[0]->price, 8500);
  ck_assert_int_eq(dp->bids[0]->quantity, 10);
  ck_assert_int_eq(dp->bids[1]->price, 8400);
  ck_assert_int_eq(dp->bids[2]->price, 8300);
  ct_free(dp);
  ct_free(a);
  ct_free(b);
  ct_free(c);
  ct_free(d);
  ct_free(e);
}
END_TEST

/* A GTD order placed before its expiry, retried after it has passed (its
   reply lost): the same key replays the first reply and the same client
   order id answers duplicate, not a refusal of a past expiry; a new order
   with that expiry is refused, saying when. */
START_TEST(gtd_retry_after_its_expiry_replays) {
  Gm__Carbon__PlaceRequest q = order(CT_BUY, 8300, 3);
  q.tif = GM__CARBON__TIME_IN_FORCE__TIF_GTD;
  q.expire_ms = ct_at(CT_MONDAY, 10, 1);
  q.client_order_id = "g-1";
  Gm__Carbon__PlaceReply *a = (Gm__Carbon__PlaceReply *)ct_call_idem(
      "alice", "order.place", "gkey", &q.base);
  ck_assert_msg(a, "%s", ct_message);
  ct_clock(ct_at(CT_MONDAY, 10, 2));
  Gm__Carbon__PlaceReply *b = (Gm__Carbon__PlaceReply *)ct_call_idem(
      "alice", "order.place", "gkey", &q.base);
  ck_assert_msg(b, "%s", ct_message);
  ck_assert_str_eq(b->order->id, a->order->id);
  Gm__Carbon__PlaceReply *c =
      (Gm__Carbon__PlaceReply *)ct_call("alice", "order.place", &q.base);
  ck_assert_msg(c, "%s", ct_message);
  ck_assert(c->duplicate);
  ck_assert_str_eq(c->order->id, a->order->id);
  q.client_order_id = "g-2";
  ct_expect("alice", "order.place", &q.base, GM__STATUS__INVALID_ARGUMENT,
            "(2026-03-02T10:01:00+08:00) is not in the future: it is now "
            "2026-03-02T10:02:00+08:00");
  ct_free(a);
  ct_free(b);
  ct_free(c);
}
END_TEST

/* The records of an order's reply are packed, one string of NUL-separated
 * fields each (lib.lua, R_ORD_str; reply.c unpacks them); replies stored
 * before, with each record an array of strings, are answered the same:
 * here the first reply a client order id keeps (P.co:<who>), rewritten in
 * the previous layout. */
START_TEST(replies_of_the_previous_layout) {
  ct_free(ct_limit("carol", SYM, CT_SELL, 8500, 4, CT_GTC));
  Gm__Carbon__PlaceRequest q = order(CT_BUY, 8500, 10);
  q.client_order_id = "old-1";
  Gm__Carbon__PlaceReply *a =
      (Gm__Carbon__PlaceReply *)ct_call("alice", "order.place", &q.base);
  ck_assert_msg(a, "%s", ct_message);
  redisContext *rc = gm_test_redis_connect(ct_redis);
  /* Every packed record made an array; answers how many there were. */
  static const char unpack[] =
      "local r = cjson.decode(redis.call('HGET', KEYS[1], ARGV[1])) "
      "local n = 0 "
      "for i, rec in ipairs(r) do if type(rec) == 'string' then "
      "local t = {} "
      "for f in string.gmatch(rec .. '\\0', '([^%z]*)%z') do "
      "t[#t + 1] = f end "
      "r[i], n = t, n + 1 end end "
      "redis.call('HSET', KEYS[1], ARGV[1], cjson.encode(r)) return n";
  ck_assert_int_ge(gm_test_redis_int(rc, "EVAL %s 1 %s %s", unpack,
                                     "gm:{carbon:" SYM "}:co:alice", "old-1"),
                   4); /* the order, its fill, carol's, the level */
  q.price = 8400;
  Gm__Carbon__PlaceReply *b =
      (Gm__Carbon__PlaceReply *)ct_call("alice", "order.place", &q.base);
  ck_assert_msg(b, "%s", ct_message);
  ck_assert(b->duplicate);
  ck_assert_str_eq(b->order->id, a->order->id);
  ck_assert_int_eq(b->order->price, 8500);
  ck_assert_int_eq(b->order->quantity, 10);
  ck_assert_int_eq(b->order->filled, 4);
  ck_assert_int_eq(b->order->state, a->order->state);
  ck_assert_int_eq(b->n_fills, 1);
  ck_assert_int_eq(b->fills[0]->quantity, 4);
  ck_assert_int_eq(b->fills[0]->price, 8500);
  ck_assert_str_eq(b->fills[0]->trade_id, a->fills[0]->trade_id);
  redisFree(rc);
  ct_free(a);
  ct_free(b);
}
END_TEST

static Gm__Carbon__PlaceReply *replace(const char *who, const char *id,
                                       int64_t price, int64_t qty) {
  Gm__Carbon__ReplaceRequest r = GM__CARBON__REPLACE_REQUEST__INIT;
  r.order_id = (char *)id;
  r.price = price;
  r.quantity = qty;
  Gm__Carbon__PlaceReply *p =
      (Gm__Carbon__PlaceReply *)ct_call(who, "order.replace", &r.base);
  ck_assert_msg(p, "replace: %s", ct_message);
  return p;
}

START_TEST(cancel_replace_and_mass_cancel) {
  Gm__Carbon__PlaceReply *b1 = ct_limit("bob", SYM, CT_SELL, 8600, 100, CT_GTC);
  Gm__Carbon__PlaceReply *c1 =
      ct_limit("carol", SYM, CT_SELL, 8600, 100, CT_GTC);
  /* A decrease keeps bob first in line. */
  Gm__Carbon__PlaceReply *r = replace("bob", b1->order->id, 0, 60);
  ck_assert_str_eq(r->order->id, b1->order->id);
  ck_assert_int_eq(r->order->remaining, 60);
  ct_free(r);
  expect_account("bob", 0, 0, 4940, 60, 0);
  Gm__Carbon__PlaceReply *t = ct_limit("alice", SYM, CT_BUY, 8600, 10, CT_GTC);
  ck_assert_str_eq(t->fills[0]->maker_order_id, b1->order->id);
  ct_free(t);
  /* An increase loses priority: a new order id behind carol. */
  r = replace("bob", b1->order->id, 0, 200);
  ck_assert_str_ne(r->order->id, b1->order->id);
  ck_assert_int_eq(r->order->remaining, 190);
  char *bob2 = strdup(r->order->id);
  ct_free(r);
  t = ct_limit("alice", SYM, CT_BUY, 8600, 10, CT_GTC);
  ck_assert_str_eq(t->fills[0]->maker_order_id, c1->order->id);
  ct_free(t);
  /* The old id is gone: cancelling it says so, and a fill racing a cancel
   * leaves the same answer. */
  Gm__Carbon__OrderRequest cr = GM__CARBON__ORDER_REQUEST__INIT;
  cr.order_id = b1->order->id;
  ct_expect("bob", "order.cancel", &cr.base, GM__STATUS__NOT_FOUND,
            "no open order");
  /* A price change that crosses trades at once. */
  Gm__Carbon__PlaceReply *a = ct_limit("alice", SYM, CT_BUY, 8500, 20, CT_GTC);
  r = replace("alice", a->order->id, 8600, 0);
  ck_assert_int_eq(r->n_fills, 1);
  ck_assert_int_eq(r->order->state, GM__CARBON__ORDER_STATE__STATE_FILLED);
  ct_free(r);
  /* Only the owner cancels. */
  cr.order_id = bob2;
  ct_expect("carol", "order.cancel", &cr.base, GM__STATUS__NOT_FOUND,
            "of yours");
  Gm__Carbon__Order *o =
      (Gm__Carbon__Order *)ct_call("bob", "order.cancel", &cr.base);
  ck_assert_msg(o, "%s", ct_message);
  ck_assert_int_eq(o->state, GM__CARBON__ORDER_STATE__STATE_CANCELLED);
  ct_free(o);
  expect_account("bob", 10 * 8600, 0, 4990, 0, 0);
  /* Mass cancel: carol's three orders, nobody else's. */
  ct_free(ct_limit("carol", SYM, CT_BUY, 8000, 10, CT_GTC));
  ct_free(ct_limit("carol", SYM, CT_BUY, 8100, 10, CT_GTC));
  ct_free(ct_limit("alice", SYM, CT_BUY, 8100, 10, CT_GTC));
  Gm__Carbon__MassCancelRequest mc = GM__CARBON__MASS_CANCEL_REQUEST__INIT;
  mc.symbol = SYM;
  Gm__Carbon__MassCancelReply *m = (Gm__Carbon__MassCancelReply *)ct_call(
      "carol", "order.mass_cancel", &mc.base);
  ck_assert_msg(m, "%s", ct_message);
  ck_assert_int_eq(m->n_cancelled, 3);
  ck_assert_int_eq(m->remaining, 0);
  ct_free(m);
  /* carol sold 30 of her 100 (10 + 20); mass cancel released the 70. */
  expect_account("carol", 10000000 + 30 * 8600, 0, 4970, 0, 0);
  Gm__Carbon__Depth *d = ct_depth(SYM, 5);
  ck_assert_int_eq(d->n_asks, 0);
  ck_assert_int_eq(d->n_bids, 1);
  ck_assert_int_eq(d->bids[0]->quantity, 10);
  ct_free(d);
  /* Cancelling needs no trading role, placing does: a participant whose
     trading roles were all taken away (registered again with other
     markets' roles only) can still cancel the orders that would otherwise
     trade on, and withdraw its block offers; the scripts let each cancel
     only the caller's own (carol above). */
  Gm__Reply *rr = gm_test_call(ct_conn, "root", "gm", "markets", NULL, NULL);
  ck_assert_msg(rr && rr->status == GM__STATUS__OK, "markets");
  Gm__MarketsReply *mk =
      gm__markets_reply__unpack(NULL, rr->body.len, rr->body.data);
  ck_assert_ptr_nonnull(mk);
  int seen = 0;
  for (size_t i = 0; i < mk->n_markets; i++)
    for (size_t j = 0; j < mk->markets[i]->n_methods; j++) {
      const Gm__MethodInfo *mi = mk->markets[i]->methods[j];
      if (strcmp(mk->markets[i]->name, "carbon")) continue;
      if (!strcmp(mi->name, "order.cancel") ||
          !strcmp(mi->name, "order.mass_cancel") ||
          !strcmp(mi->name, "block.reject")) {
        ck_assert_msg(!*mi->roles, "%s needs roles '%s'", mi->name, mi->roles);
        seen++;
      }
      if (!strcmp(mi->name, "order.place"))
        ck_assert_str_eq(mi->roles, "buyer,seller");
    }
  ck_assert_int_eq(seen, 3);
  gm__markets_reply__free_unpacked(mk, NULL);
  gm__reply__free_unpacked(rr, NULL);
  free(bob2);
  ct_free(a);
  ct_free(b1);
  ct_free(c1);
}
END_TEST

/* A replace that changes nothing, or only lowers the quantity, at the same
   price keeps the order's id and its place in the queue. */
START_TEST(an_unchanged_replace_keeps_priority) {
  Gm__Carbon__PlaceReply *b1 = ct_limit("bob", SYM, CT_SELL, 8600, 100, CT_GTC);
  Gm__Carbon__PlaceReply *c1 =
      ct_limit("carol", SYM, CT_SELL, 8600, 100, CT_GTC);
  Gm__Carbon__PlaceReply *r = replace("bob", b1->order->id, 0, 100);
  ck_assert_str_eq(r->order->id, b1->order->id);
  ck_assert_int_eq(r->order->remaining, 100);
  ct_free(r);
  r = replace("bob", b1->order->id, 8600, 0);
  ck_assert_str_eq(r->order->id, b1->order->id);
  ct_free(r);
  r = replace("bob", b1->order->id, 8600, 100);
  ck_assert_str_eq(r->order->id, b1->order->id);
  ct_free(r);
  expect_account("bob", 0, 0, 4900, 100, 0);
  Gm__Carbon__PlaceReply *t = ct_limit("alice", SYM, CT_BUY, 8600, 10, CT_GTC);
  ck_assert_str_eq(t->fills[0]->maker_order_id, b1->order->id);
  ct_free(t);
  ct_free(b1);
  ct_free(c1);
}
END_TEST

/* Text carbon stores and shows to others is one line of plain UTF-8;
   participant ids follow the core's rule; create takes no halt and no
   currency but CNY.  Each refusal changes nothing. */
START_TEST(text_ids_and_create_fields_are_checked) {
  Gm__Carbon__Instrument in = GM__CARBON__INSTRUMENT__INIT;
  Gm__Carbon__CreateInstrumentRequest cr =
      GM__CARBON__CREATE_INSTRUMENT_REQUEST__INIT;
  cr.instrument = &in;
  in.symbol = "ESC-2025";
  in.reference_price = 5000;
  in.name = "e\x1b[2Jx\ny";
  ct_expect("root", "instrument.create", &cr.base, GM__STATUS__INVALID_ARGUMENT,
            "name contains the control character U+001B at byte 2");
  in.name = "   ";
  ct_expect("root", "instrument.create", &cr.base, GM__STATUS__INVALID_ARGUMENT,
            "name is only spaces");
  in.name =
      "ok\xe2\x80\xae"
      "evil";
  ct_expect("root", "instrument.create", &cr.base, GM__STATUS__INVALID_ARGUMENT,
            "bidi control character U+202E");
  in.name = "";
  in.halted = 1;
  ct_expect("root", "instrument.create", &cr.base, GM__STATUS__INVALID_ARGUMENT,
            "then halt it");
  in.halted = 0;
  in.currency = "USD";
  ct_expect("root", "instrument.create", &cr.base, GM__STATUS__INVALID_ARGUMENT,
            "trades in CNY only");
  in.currency = "";
  /* A reference off the tick: the message gives the tick and the largest
     price, each its own figure (both once showed the tick). */
  in.tick = 3;
  ct_expect("root", "instrument.create", &cr.base, GM__STATUS__INVALID_ARGUMENT,
            "the reference price (the previous close) 50.00 yuan must be a "
            "multiple of the tick of 0.03 yuan, up to 1000000.00 yuan");
  /* Each refusal of a rule says the value given. */
  in.tick = 20000;
  ct_expect("root", "instrument.create", &cr.base, GM__STATUS__INVALID_ARGUMENT,
            "the tick must be 0.01..100.00 yuan and the lot 1..100000 t "
            "(given: tick 200.00 yuan, lot 1 t)");
  in.tick = 0;
  in.lot = 10;
  in.block_threshold = 7;
  ct_expect("root", "instrument.create", &cr.base, GM__STATUS__INVALID_ARGUMENT,
            "the block threshold must be a multiple of the lot, up to "
            "10000000 t (given: 7 t, lot 10 t)");
  in.lot = 0;
  in.block_threshold = 0;
  in.reference_price = 0;
  ct_expect("root", "instrument.create", &cr.base, GM__STATUS__INVALID_ARGUMENT,
            "reference_price (the previous close, the centre of the first "
            "day's band) is required: give it in fen, 8550 for 85.50 yuan");
  in.reference_price = 5000;
  char big[3001];
  memset(big, 'A', 3000);
  big[3000] = '\0';
  in.symbol = big;
  ct_expect("root", "instrument.create", &cr.base, GM__STATUS__INVALID_ARGUMENT,
            "AAAA... (3000 bytes)\" is not valid");
  ck_assert_msg(strlen(ct_message) < 300, "message of %zu bytes",
                strlen(ct_message));
  in.symbol = "ESC-2025";
  in.kind = "C\x1b[2J";
  ct_expect("root", "instrument.create", &cr.base, GM__STATUS__INVALID_ARGUMENT,
            "kind \"C?[2J\" is unknown");
  in.kind = "";
  Gm__Carbon__OrderRequest oc = GM__CARBON__ORDER_REQUEST__INIT;
  char longid[3010];
  snprintf(longid, sizeof longid, "%s:1", big);
  oc.order_id = longid;
  ct_expect("alice", "order.cancel", &oc.base, GM__STATUS__INVALID_ARGUMENT,
            "... (3002 bytes)\" does not start with an instrument symbol");
  Gm__Carbon__InstrumentRequest ir = GM__CARBON__INSTRUMENT_REQUEST__INIT;
  ir.symbol = SYM;
  ir.reason = "line1\nline2\x1b[31mred";
  ct_expect("root", "instrument.halt", &ir.base, GM__STATUS__INVALID_ARGUMENT,
            "reason contains the control character U+000A at byte 6");
  Gm__Carbon__MoveRequest m = GM__CARBON__MOVE_REQUEST__INIT;
  m.symbol = SYM;
  m.asset = GM__CARBON__ASSET__ASSET_CASH;
  m.amount = 100;
  const char *bad[] = {"x#y{z}", "x:y", "caf\xc3\xa9"};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    m.participant = (char *)bad[i];
    ct_expect("root", "account.deposit", &m.base, GM__STATUS__INVALID_ARGUMENT,
              "is not a valid participant id: 1-64 characters of ASCII");
  }
  /* An id an earlier release let a deposit use can still be withdrawn
     from (here: nothing is there), not refused as an id. */
  m.participant = "x#y{z}";
  ck_assert_ptr_null(ct_call("root", "account.withdraw", &m.base));
  ck_assert_msg(ct_status == GM__STATUS__FAILED_PRECONDITION, "%d: %s",
                ct_status, ct_message);
  m.participant = "a b";
  ct_expect("root", "account.withdraw", &m.base, GM__STATUS__INVALID_ARGUMENT,
            "is not a valid participant id");
  m.participant = "alice";
  m.reference = "wire\r\nX";
  ct_expect("root", "account.deposit", &m.base, GM__STATUS__INVALID_ARGUMENT,
            "reference contains the control character U+000D");
  Gm__Carbon__PlaceRequest q = order(CT_BUY, 8500, 1);
  q.client_order_id = "c\x1b]0;x\x07";
  ct_expect("alice", "order.place", &q.base, GM__STATUS__INVALID_ARGUMENT,
            "client_order_id contains the control character U+001B");
  Gm__Carbon__ListInstrumentsRequest lr =
      GM__CARBON__LIST_INSTRUMENTS_REQUEST__INIT;
  Gm__Carbon__InstrumentList *l = (Gm__Carbon__InstrumentList *)ct_call(
      "root", "instrument.list", &lr.base);
  ck_assert_msg(l, "%s", ct_message);
  ck_assert_int_eq(l->n_instruments, 1);
  ck_assert(!l->instruments[0]->halted);
  ct_free(l);
  expect_account("alice", 10000000, 0, 0, 0, 0);
}
END_TEST

START_TEST(self_trade_prevention_modes) {
  Gm__Carbon__PlaceReply *own =
      ct_limit("carol", SYM, CT_SELL, 8600, 50, CT_GTC);
  ct_free(ct_limit("bob", SYM, CT_SELL, 8600, 50, CT_GTC));
  /* Default (cancel incoming): carol's buy stops at her own order. */
  Gm__Carbon__PlaceReply *r = ct_limit("carol", SYM, CT_BUY, 8600, 80, CT_GTC);
  ck_assert_int_eq(r->n_fills, 0);
  ck_assert_int_eq(r->order->state, GM__CARBON__ORDER_STATE__STATE_CANCELLED);
  ck_assert_str_eq(r->order->reason, "self-trade prevention");
  ct_free(r);
  /* Cancel resting: her sell goes, bob's fills. */
  Gm__Carbon__PlaceRequest q = order(CT_BUY, 8600, 80);
  q.stp = GM__CARBON__STP_MODE__STP_CANCEL_RESTING;
  r = (Gm__Carbon__PlaceReply *)ct_call("carol", "order.place", &q.base);
  ck_assert_msg(r, "%s", ct_message);
  ck_assert_int_eq(r->n_fills, 1);
  ck_assert_int_eq(r->fills[0]->quantity, 50);
  ck_assert_int_eq(r->order->remaining, 30);
  ct_free(r);
  Gm__Carbon__OrderRequest g = GM__CARBON__ORDER_REQUEST__INIT;
  g.order_id = own->order->id;
  /* Off the book, order.get answers from the ledger once settled. */
  ck_assert_int_eq(ct_ledger_wait("SELECT state FROM carbon_orders WHERE"
                                  " order_id = 'CEA-2025:000000000001'",
                                  4),
                   4);
  Gm__Carbon__Order *o =
      (Gm__Carbon__Order *)ct_call("carol", "order.get", &g.base);
  ck_assert_msg(o, "%s", ct_message);
  ck_assert_int_eq(o->state, GM__CARBON__ORDER_STATE__STATE_CANCELLED);
  ck_assert_str_eq(o->reason, "self-trade prevention");
  ct_free(o);
  /* Account default: cancel both. */
  Gm__Carbon__ConfigureAccountRequest cf =
      GM__CARBON__CONFIGURE_ACCOUNT_REQUEST__INIT;
  cf.symbol = SYM;
  cf.stp = GM__CARBON__STP_MODE__STP_CANCEL_BOTH;
  ct_free(
      (Gm__Carbon__Account *)ct_call("carol", "account.configure", &cf.base));
  r = ct_limit("carol", SYM, CT_SELL, 8600, 10, CT_GTC);
  ck_assert_int_eq(r->order->state, GM__CARBON__ORDER_STATE__STATE_CANCELLED);
  ct_free(r);
  Gm__Carbon__Depth *d = ct_depth(SYM, 5);
  ck_assert_int_eq(d->n_bids + d->n_asks, 0);
  ct_free(d);
  expect_account("carol", 10000000 - 50 * 8600, 0, 5000, 0, 50);
  ct_free(own);
}
END_TEST

/* One step touches at most max_fills resting orders; the order continues in
 * further steps of the same call (test_continue.c tests this in depth). */
START_TEST(one_order_continues_past_max_fills) {
  Gm__Carbon__Instrument in = GM__CARBON__INSTRUMENT__INIT;
  Gm__Carbon__CreateInstrumentRequest cr =
      GM__CARBON__CREATE_INSTRUMENT_REQUEST__INIT;
  in.symbol = "CEA-BOUND";
  in.reference_price = 8500;
  in.max_fills = 3;
  cr.instrument = &in;
  ct_free(
      (Gm__Carbon__Instrument *)ct_call("root", "instrument.create", &cr.base));
  ct_deposit("bob", "CEA-BOUND", 0, 100);
  ct_deposit("alice", "CEA-BOUND", 1000000, 0);
  for (int i = 0; i < 5; i++)
    ct_free(ct_limit("bob", "CEA-BOUND", CT_SELL, 8500 + i, 1, CT_GTC));
  Gm__Carbon__PlaceReply *r =
      ct_limit("alice", "CEA-BOUND", CT_BUY, 8600, 5, CT_GTC);
  ck_assert_int_eq(r->n_fills, 5);
  ck_assert_int_eq(r->order->state, GM__CARBON__ORDER_STATE__STATE_FILLED);
  for (int i = 0; i < 5; i++) ck_assert_int_eq(r->fills[i]->price, 8500 + i);
  ct_free(r);
  Gm__Carbon__Depth *d = ct_depth("CEA-BOUND", 5);
  ck_assert_int_eq(d->n_asks + d->n_bids, 0);
  ct_free(d);
}
END_TEST

/* A cancel and a crossing order sent together: one of them wins, never both. */
START_TEST(cancel_racing_a_fill) {
  for (int round = 0; round < 20; round++) {
    Gm__Carbon__PlaceReply *s = ct_limit("bob", SYM, CT_SELL, 8600, 10, CT_GTC);
    gm_test_conn *other =
        gm_test_conn_new(gm_test_gmd_endpoint(ct_gmd), NULL, NULL, NULL);
    Gm__Carbon__OrderRequest cr = GM__CARBON__ORDER_REQUEST__INIT;
    cr.order_id = s->order->id;
    Gm__Carbon__PlaceRequest q = order(CT_BUY, 8600, 10);
    q.tif = GM__CARBON__TIME_IN_FORCE__TIF_IOC;
    char k1[32], k2[32];
    snprintf(k1, sizeof k1, "race-c-%d", round);
    snprintf(k2, sizeof k2, "race-b-%d", round);
    /* Both requests are in flight before either reply is read. */
    Gm__Request a = GM__REQUEST__INIT, b = GM__REQUEST__INIT;
    uint8_t ba[512], bb[512], fa[1024], fb[1024];
    a.version = b.version = 1;
    a.request_id = 1;
    b.request_id = 2;
    a.market = b.market = "carbon";
    a.method = "order.cancel";
    b.method = "order.place";
    a.idempotency_key = k1;
    b.idempotency_key = k2;
    a.dev_participant = "bob";
    b.dev_participant = "alice";
    a.body.len = protobuf_c_message_pack(&cr.base, ba);
    a.body.data = ba;
    b.body.len = protobuf_c_message_pack(&q.base, bb);
    b.body.data = bb;
    size_t la = gm__request__pack(&a, fa), lb = gm__request__pack(&b, fb);
    const void *da[] = {fa}, *db[] = {fb};
    gm_test_conn_send_raw(ct_conn, 1, da, &la);
    gm_test_conn_send_raw(other, 1, db, &lb);
    Gm__Reply *ra = gm_test_conn_recv(ct_conn, 5000);
    Gm__Reply *rb = gm_test_conn_recv(other, 5000);
    ck_assert(ra && rb);
    ck_assert_int_eq(rb->status, GM__STATUS__OK);
    Gm__Carbon__PlaceReply *p =
        gm__carbon__place_reply__unpack(NULL, rb->body.len, rb->body.data);
    if (ra->status == GM__STATUS__OK)
      ck_assert_int_eq(p->n_fills, 0); /* the cancel won */
    else
      ck_assert_int_eq(p->n_fills, 1); /* the fill won; cancel: NOT_FOUND */
    ck_assert(ra->status == GM__STATUS__OK ||
              ra->status == GM__STATUS__NOT_FOUND);
    ct_free(p);
    gm__reply__free_unpacked(ra, NULL);
    gm__reply__free_unpacked(rb, NULL);
    gm_test_conn_destroy(&other);
    ct_free(s);
  }
  /* Conservation: what bob lost in allowances alice gained, and cash too. */
  Gm__Carbon__Account *al = ct_account("alice", SYM),
                      *bo = ct_account("bob", SYM);
  ck_assert_int_eq(al->allowances_locked, 5000 - bo->allowances);
  ck_assert_int_eq(10000000 - al->cash, bo->cash);
  ck_assert_int_eq(bo->allowances_frozen + al->cash_frozen, 0);
  ct_free(al);
  ct_free(bo);
}
END_TEST

/* The owner's open-order set holds sequences in decimal (an intset while
 * small); members a broker of the previous layout wrote (the 12-hex ids)
 * are still listed, cancelled and mass-cancelled. */
START_TEST(open_orders_of_the_previous_layout) {
  char *id[3];
  for (int i = 0; i < 3; i++) {
    Gm__Carbon__PlaceReply *p =
        ct_limit("carol", SYM, CT_BUY, 8000 + 100 * i, 10, CT_GTC);
    id[i] = strdup(p->order->id);
    ct_free(p);
  }
  redisContext *rc = gm_test_redis_connect(ct_redis);
  const char *set = "gm:{carbon:" SYM "}:op:carol";
  redisReply *e = gm_test_redis_cmd(rc, "OBJECT ENCODING %s", set);
  ck_assert_str_eq(e->str, "intset");
  freeReplyObject(e);
  for (int i = 0; i < 2; i++) {
    const char *hex = strrchr(id[i], ':') + 1; /* "<symbol>:<12 hex>" */
    unsigned long long seq = strtoull(hex, NULL, 16);
    ck_assert_int_eq(gm_test_redis_int(rc, "SREM %s %llu", set, seq), 1);
    ck_assert_int_eq(gm_test_redis_int(rc, "SADD %s %s", set, hex), 1);
  }
  Gm__Carbon__ListOrdersRequest lr = GM__CARBON__LIST_ORDERS_REQUEST__INIT;
  lr.symbol = SYM;
  lr.limit = 10;
  Gm__Carbon__OrderList *l =
      (Gm__Carbon__OrderList *)ct_call("carol", "order.list", &lr.base);
  ck_assert_msg(l, "%s", ct_message);
  ck_assert_int_eq(l->n_orders, 3);
  for (int i = 0; i < 3; i++) {
    int found = 0;
    for (size_t k = 0; k < l->n_orders; k++)
      found += !strcmp(l->orders[k]->id, id[i]);
    ck_assert_msg(found == 1, "order.list shows %s %d times", id[i], found);
  }
  ct_free(l);
  Gm__Carbon__OrderRequest cr = GM__CARBON__ORDER_REQUEST__INIT;
  cr.order_id = id[0];
  Gm__Carbon__Order *o =
      (Gm__Carbon__Order *)ct_call("carol", "order.cancel", &cr.base);
  ck_assert_msg(o, "%s", ct_message);
  ck_assert_int_eq(o->state, GM__CARBON__ORDER_STATE__STATE_CANCELLED);
  ct_free(o);
  ck_assert_int_eq(gm_test_redis_int(rc, "SCARD %s", set), 2);
  Gm__Carbon__MassCancelRequest mc = GM__CARBON__MASS_CANCEL_REQUEST__INIT;
  mc.symbol = SYM;
  Gm__Carbon__MassCancelReply *m = (Gm__Carbon__MassCancelReply *)ct_call(
      "carol", "order.mass_cancel", &mc.base);
  ck_assert_msg(m, "%s", ct_message);
  ck_assert_int_eq(m->n_cancelled, 2);
  ck_assert_int_eq(m->remaining, 0);
  ct_free(m);
  ck_assert_int_eq(gm_test_redis_int(rc, "EXISTS %s", set), 0);
  expect_account("carol", 10000000, 0, 5000, 0, 0);
  redisFree(rc);
  for (int i = 0; i < 3; i++) free(id[i]);
}
END_TEST

/* A resting order's record is packed (28 bytes for a 9-character name);
 * a record a broker of the previous layout wrote (text) is still read,
 * matched against, and written back packed. */
static Gm__Carbon__Order *get_order(const char *who, const char *id) {
  Gm__Carbon__OrderRequest g = GM__CARBON__ORDER_REQUEST__INIT;
  g.order_id = (char *)id;
  Gm__Carbon__Order *o =
      (Gm__Carbon__Order *)ct_call(who, "order.get", &g.base);
  ck_assert_msg(o, "%s", ct_message);
  return o;
}

static void expect_packed(redisContext *rc, const char *hex, size_t len) {
  redisReply *r = gm_test_redis_cmd(rc, "HGET gm:{carbon:" SYM "}:o %s", hex);
  ck_assert_int_eq(r->type, REDIS_REPLY_STRING);
  ck_assert_uint_eq(r->len, len);
  ck_assert_uint_ge((unsigned char)r->str[0], 0x80);
  freeReplyObject(r);
}

START_TEST(order_records_of_the_previous_layout) {
  Gm__Carbon__PlaceReply *b = ct_limit("bob", SYM, CT_SELL, 8600, 100, CT_GTC);
  const char *hex = strrchr(b->order->id, ':') + 1;
  redisContext *rc = gm_test_redis_connect(ct_redis);
  expect_packed(rc, hex, 19 + strlen("bob"));
  ck_assert_int_eq(gm_test_redis_int(rc,
                                     "HSET gm:{carbon:" SYM
                                     "}:o %s bob|s|8600|100|0|0|0|%lld",
                                     hex, (long long)b->order->created_ms),
                   0);
  Gm__Carbon__Order *o = get_order("bob", b->order->id);
  ck_assert_str_eq(o->participant, "bob");
  ck_assert_int_eq(o->side, GM__CARBON__SIDE__SIDE_SELL);
  ck_assert_int_eq(o->price, 8600);
  ck_assert_int_eq(o->remaining, 100);
  ck_assert_int_eq(o->created_ms, b->order->created_ms);
  ck_assert_int_eq(o->state, GM__CARBON__ORDER_STATE__STATE_OPEN);
  ct_free(o);
  Gm__Carbon__PlaceReply *t = ct_limit("alice", SYM, CT_BUY, 8600, 30, CT_GTC);
  ck_assert_int_eq(t->n_fills, 1);
  ck_assert_str_eq(t->fills[0]->maker_order_id, b->order->id);
  ct_free(t);
  expect_packed(rc, hex, 19 + strlen("bob"));
  o = get_order("bob", b->order->id);
  ck_assert_int_eq(o->remaining, 70);
  ck_assert_int_eq(o->filled, 30);
  ck_assert_int_eq(o->created_ms, b->order->created_ms);
  ck_assert_int_eq(o->state, GM__CARBON__ORDER_STATE__STATE_PARTIAL);
  ct_free(o);
  Gm__Carbon__OrderRequest cr = GM__CARBON__ORDER_REQUEST__INIT;
  cr.order_id = b->order->id;
  o = (Gm__Carbon__Order *)ct_call("bob", "order.cancel", &cr.base);
  ck_assert_msg(o, "%s", ct_message);
  ck_assert_int_eq(o->state, GM__CARBON__ORDER_STATE__STATE_CANCELLED);
  ct_free(o);
  expect_account("bob", 30 * 8600, 0, 4970, 0, 0);
  redisFree(rc);
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
  tcase_add_test(tc, ioc_fok_market_and_post_only);
  tcase_add_test(tc, fields_an_order_would_not_use_are_refused);
  tcase_add_test(tc, the_balance_limit_names_the_balance);
  tcase_add_test(tc, client_order_id_and_retries_are_idempotent);
  tcase_add_test(tc, gtd_retry_after_its_expiry_replays);
  tcase_add_test(tc, replies_of_the_previous_layout);
  tcase_add_test(tc, cancel_replace_and_mass_cancel);
  tcase_add_test(tc, an_unchanged_replace_keeps_priority);
  tcase_add_test(tc, text_ids_and_create_fields_are_checked);
  tcase_add_test(tc, self_trade_prevention_modes);
  tcase_add_test(tc, one_order_continues_past_max_fills);
  tcase_add_test(tc, cancel_racing_a_fill);
  tcase_add_test(tc, open_orders_of_the_previous_layout);
  tcase_add_test(tc, order_records_of_the_previous_layout);
  suite_add_tcase(s, tc);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
