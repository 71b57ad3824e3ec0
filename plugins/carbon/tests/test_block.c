/*
 * Block offers are discoverable: block.list pages the open offers to or
 * from the caller (an admin: every open offer) with a cursor, as order.list
 * does, and the private carbon.offer event tells a counterparty an offer was
 * made, accepted, rejected, withdrawn or expired.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <greenmarket/client.h>

#include "harness.h"
#include "price.h"

#define SYM "CEA-BLK"
#define MAXIDS 64

static void setup(void) {
  ct_start(NULL, ct_at(CT_MONDAY, 13, 30)); /* in the block session */
  const char *who[] = {"alice", "bob", "carol", "dave"};
  ct_create(SYM, 8500);
  for (int i = 0; i < 4; i++) {
    ct_register(who[i], "buyer,seller");
    ct_deposit(who[i], SYM, INT64_C(100000000000), 4000000);
  }
}

static void teardown(void) {
  ct_stop();
}

/* `from` offers to sell 100000 t to `to` at `px`; returns the offer id. */
static void offer(const char *from, const char *to, int64_t px, char *id,
                  size_t len) {
  Gm__Carbon__OfferRequest o = ct_offer_request(SYM, CT_SELL, to, px, 100000);
  Gm__Carbon__BlockOffer *b =
      (Gm__Carbon__BlockOffer *)ct_call(from, "block.offer", &o.base);
  ck_assert_msg(b, "block.offer %s -> %s: %s", from, to, ct_message);
  snprintf(id, len, "%s", b->id);
  ct_free(b);
}

static void decide(const char *who, const char *method, const char *id) {
  Gm__Carbon__OfferDecision d = GM__CARBON__OFFER_DECISION__INIT;
  d.offer_id = (char *)id;
  Gm__Carbon__BlockOffer *b =
      (Gm__Carbon__BlockOffer *)ct_call(who, method, &d.base);
  ck_assert_msg(b, "%s %s: %s", method, id, ct_message);
  ct_free(b);
}

/*
 * Every open offer `who` sees, walking pages of `limit`: ids into `ids`
 * (each once; a walk may show one twice), returns how many.  Asserts no
 * page is over the limit and that every offer involves `who` (unless
 * `all`).
 */
static int list_all(const char *who, int limit, int all, char ids[][64]) {
  int n = 0;
  char cursor[4096] = "";
  for (int page = 0; page < 100; page++) {
    Gm__Carbon__ListOffersRequest q = GM__CARBON__LIST_OFFERS_REQUEST__INIT;
    q.symbol = page % 2 ? SYM : ""; /* either way the same walk */
    q.limit = limit;
    q.cursor = cursor;
    Gm__Carbon__OfferList *l =
        (Gm__Carbon__OfferList *)ct_call(who, "block.list", &q.base);
    ck_assert_msg(l, "block.list as %s: %s", who, ct_message);
    ck_assert_int_le((int)l->n_offers, limit ? limit : 100);
    for (size_t i = 0; i < l->n_offers; i++) {
      const Gm__Carbon__BlockOffer *b = l->offers[i];
      ck_assert_int_eq(b->state, GM__CARBON__OFFER_STATE__OFFER_OPEN);
      ck_assert_str_eq(b->symbol, SYM);
      ck_assert_msg(
          all || !strcmp(b->offerer, who) || !strcmp(b->counterparty, who),
          "%s sees %s's offer to %s", who, b->offerer, b->counterparty);
      int seen = 0;
      for (int k = 0; k < n; k++) seen |= !strcmp(ids[k], b->id);
      if (!seen && n < MAXIDS) snprintf(ids[n++], 64, "%s", b->id);
    }
    snprintf(cursor, sizeof cursor, "%s", l->next_cursor);
    ct_free(l);
    if (!cursor[0]) return n;
  }
  ck_abort_msg("block.list did not end within 100 pages");
  return n;
}

static int has(char ids[][64], int n, const char *id) {
  for (int k = 0; k < n; k++)
    if (!strcmp(ids[k], id)) return 1;
  return 0;
}

START_TEST(each_party_lists_its_open_offers) {
  char ab[64], ac[64], cb[64], ids[MAXIDS][64];
  offer("bob", "alice", 8000, ab, sizeof ab);
  offer("alice", "carol", 8100, ac, sizeof ac);
  offer("carol", "bob", 8200, cb, sizeof cb);
  int n = list_all("alice", 0, 0, ids);
  ck_assert_int_eq(n, 2);
  ck_assert(has(ids, n, ab) && has(ids, n, ac));
  n = list_all("bob", 0, 0, ids);
  ck_assert_int_eq(n, 2);
  ck_assert(has(ids, n, ab) && has(ids, n, cb));
  ck_assert_int_eq(list_all("dave", 0, 0, ids), 0);
  n = list_all("root", 0, 1, ids); /* an admin sees every open offer */
  ck_assert_int_eq(n, 3);
  /* The fields of a listed offer are the offer's. */
  Gm__Carbon__ListOffersRequest q = GM__CARBON__LIST_OFFERS_REQUEST__INIT;
  Gm__Carbon__OfferList *l =
      (Gm__Carbon__OfferList *)ct_call("carol", "block.list", &q.base);
  ck_assert_msg(l, "%s", ct_message);
  for (size_t i = 0; i < l->n_offers; i++)
    if (!strcmp(l->offers[i]->id, ac)) {
      ck_assert_str_eq(l->offers[i]->offerer, "alice");
      ck_assert_int_eq(l->offers[i]->side, CT_SELL);
      ck_assert_int_eq(l->offers[i]->price, 8100);
      ck_assert_int_eq(l->offers[i]->quantity, 100000);
      ck_assert_int_eq(l->offers[i]->created_ms, ct_at(CT_MONDAY, 13, 30));
    }
  ck_assert_int_eq((int)l->n_offers, 2);
  ct_free(l);

  /* An offer to a participant that may not take its other side is
     refused: it could never be accepted, and would hold bob's allowances
     until the block session ends. */
  ct_register("erin", "seller");
  Gm__Carbon__OfferRequest o =
      ct_offer_request(SYM, CT_SELL, "erin", 8000, 100000);
  ct_expect("bob", "block.offer", &o.base, GM__STATUS__FAILED_PRECONDITION,
            "counterparty \"erin\" cannot accept: no participant of that id "
            "holds the buyer role");
  ck_assert_int_eq(list_all("erin", 0, 0, ids), 0);

  /* Only its offerer withdraws an offer: bob, its counterparty, is told
     to reject it, and it stays open. */
  Gm__Carbon__OfferDecision w = GM__CARBON__OFFER_DECISION__INIT;
  w.offer_id = cb;
  ct_expect("bob", "block.withdraw", &w.base, GM__STATUS__FAILED_PRECONDITION,
            "only carol, who made block offer");
  n = list_all("bob", 0, 0, ids);
  ck_assert(has(ids, n, cb));
  /* Nor, asked as the counterparty only (gm's reject), does carol, its
     offerer, reject it: she is told to withdraw, and it stays open. */
  w.counterparty_only = 1;
  ct_expect("carol", "block.reject", &w.base, GM__STATUS__FAILED_PRECONDITION,
            "is your own offer to bob; only bob may reject it: to take it "
            "back, withdraw it (block.withdraw; gm carbon block withdraw " SYM
            ":B");
  n = list_all("bob", 0, 0, ids);
  ck_assert(has(ids, n, cb));

  /* Ended offers leave the lists: accepted, rejected, withdrawn. */
  decide("alice", "block.accept", ab);
  w.offer_id = ac; /* carol is its counterparty: rejected */
  Gm__Carbon__BlockOffer *rj =
      (Gm__Carbon__BlockOffer *)ct_call("carol", "block.reject", &w.base);
  ck_assert_msg(rj, "%s", ct_message);
  ck_assert_int_eq(rj->state, GM__CARBON__OFFER_STATE__OFFER_REJECTED);
  ct_free(rj);
  decide("carol", "block.withdraw", cb);
  ck_assert_int_eq(list_all("alice", 0, 0, ids), 0);
  ck_assert_int_eq(list_all("bob", 0, 0, ids), 0);
  ck_assert_int_eq(list_all("root", 0, 1, ids), 0);
  redisContext *rc = gm_test_redis_connect(ct_redis);
  const char *who[] = {"alice", "bob", "carol"};
  for (int i = 0; i < 3; i++)
    ck_assert_int_eq(
        gm_test_redis_int(rc, "SCARD gm:{carbon:" SYM "}:bo:%s", who[i]), 0);
  redisFree(rc);
}
END_TEST

START_TEST(pages_are_bounded_and_cover_every_offer) {
  enum { N = 25 };
  char made[N][64], ids[MAXIDS][64];
  for (int i = 0; i < N; i++)
    offer(i % 2 ? "bob" : "carol", "alice", 8000 + i, made[i], sizeof made[i]);
  char other[64];
  offer("bob", "carol", 8000, other, sizeof other);
  int n = list_all("alice", 7, 0, ids);
  ck_assert_int_eq(n, N);
  for (int i = 0; i < N; i++)
    ck_assert_msg(has(ids, n, made[i]), "%s", made[i]);
  ck_assert(!has(ids, n, other));
  n = list_all("root", 4, 1, ids);
  ck_assert_int_eq(n, N + 1);
  /* Limits and cursors are checked as order.list's are. */
  Gm__Carbon__ListOffersRequest q = GM__CARBON__LIST_OFFERS_REQUEST__INIT;
  q.limit = 1001;
  ct_expect("alice", "block.list", &q.base, GM__STATUS__INVALID_ARGUMENT,
            "limit 1001 is out of range: a page holds 1..1000 offers");
  q.limit = 0;
  q.cursor = SYM ":0:000000000001"; /* an order id, not an offer's */
  ct_expect("alice", "block.list", &q.base, GM__STATUS__INVALID_ARGUMENT,
            "is not one block.list returned");
  q.symbol = "CEA-OTHER";
  q.cursor = SYM ":0";
  ct_expect("alice", "block.list", &q.base, GM__STATUS__INVALID_ARGUMENT,
            "cursor is for " SYM ", not CEA-OTHER");
  /* At the block session's end they expire and leave the lists. */
  ct_clock(ct_at(CT_MONDAY, 15, 0));
  ck_assert_int_eq(
      ct_ledger_wait("SELECT count(*) FROM carbon_offers WHERE state = 5",
                     N + 1),
      N + 1);
  ck_assert_int_eq(list_all("alice", 0, 0, ids), 0);
  ck_assert_int_eq(list_all("root", 0, 1, ids), 0);
  redisContext *rc = gm_test_redis_connect(ct_redis);
  ck_assert_int_eq(gm_test_redis_int(rc, "SCARD gm:{carbon:" SYM "}:bo:alice"),
                   0);
  redisFree(rc);
}
END_TEST

/* The next carbon.offer event: its offer (free with ct_free). */
static Gm__Carbon__BlockOffer *next_offer_event(gm_feed *f) {
  char *topic = NULL;
  Gm__Event *ev = NULL;
  gm_status st = gm_feed_recv(f, &topic, &ev, 5000);
  ck_assert_msg(st == GM_OK, "no carbon.offer event within 5 s (%d)", st);
  /* Private to the offer's parties: alice's copy of each. */
  ck_assert_str_eq(topic, "@p:alice carbon.offer");
  free(topic);
  ck_assert_str_eq(ev->type, "gm.carbon.OfferEvent");
  Gm__Carbon__OfferEvent *oe =
      gm__carbon__offer_event__unpack(NULL, ev->body.len, ev->body.data);
  gm_feed_event_free(&ev);
  ck_assert_ptr_nonnull(oe);
  ck_assert_ptr_nonnull(oe->offer);
  Gm__Carbon__BlockOffer *b = oe->offer;
  oe->offer = NULL;
  ct_free(oe);
  return b;
}

START_TEST(the_feed_tells_of_each_offer_state) {
  /* Development mode: the private feed keeps a subscription as asked, so
     this follows alice's private events. */
  gm_feed *sub = gm_feed_new(gm_test_gmd_feed(ct_gmd), NULL);
  ck_assert_ptr_nonnull(sub);
  ck_assert_int_eq(gm_feed_subscribe(sub, "@p:alice carbon.offer"), GM_OK);
  /* The slow joiner: probe offers until the feed hears one (a fixed sleep
     is too short on a loaded machine), then take them back and read their
     events up to the last withdrawal, so what follows starts clean. */
  char probe[40][64];
  int np = 0, heard = 0;
  for (; np < 40 && !heard; np++) {
    offer("bob", "alice", 8010 + np, probe[np], sizeof probe[np]);
    char *topic = NULL;
    Gm__Event *ev = NULL;
    heard = gm_feed_recv(sub, &topic, &ev, 250) == GM_OK;
    free(topic);
    gm_feed_event_free(&ev);
  }
  ck_assert_msg(heard, "the feed never heard a probe offer");
  for (int i = 0; i < np; i++) decide("bob", "block.reject", probe[i]);
  for (int last = 0; !last;) {
    Gm__Carbon__BlockOffer *o = next_offer_event(sub);
    last = !strcmp(o->id, probe[np - 1]) &&
           o->state == GM__CARBON__OFFER_STATE__OFFER_WITHDRAWN;
    ct_free(o);
  }
  char a[64], b[64], c[64], d[64];
  offer("bob", "alice", 8000, a, sizeof a);
  offer("bob", "alice", 8001, b, sizeof b);
  offer("carol", "alice", 8002, c, sizeof c);
  offer("dave", "alice", 8003, d, sizeof d);
  decide("alice", "block.accept", a);
  decide("alice", "block.reject", b);
  decide("carol", "block.reject", c);
  ct_clock(ct_at(CT_MONDAY, 15, 0)); /* d expires */
  static const struct {
    const char *id_of;
    int state;
  } want[] = {{"a", GM__CARBON__OFFER_STATE__OFFER_OPEN},
              {"b", GM__CARBON__OFFER_STATE__OFFER_OPEN},
              {"c", GM__CARBON__OFFER_STATE__OFFER_OPEN},
              {"d", GM__CARBON__OFFER_STATE__OFFER_OPEN},
              {"a", GM__CARBON__OFFER_STATE__OFFER_ACCEPTED},
              {"b", GM__CARBON__OFFER_STATE__OFFER_REJECTED},
              {"c", GM__CARBON__OFFER_STATE__OFFER_WITHDRAWN},
              {"d", GM__CARBON__OFFER_STATE__OFFER_EXPIRED}};
  for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
    const char *id = want[i].id_of[0] == 'a'   ? a
                     : want[i].id_of[0] == 'b' ? b
                     : want[i].id_of[0] == 'c' ? c
                                               : d;
    Gm__Carbon__BlockOffer *o = next_offer_event(sub);
    ck_assert_str_eq(o->id, id);
    ck_assert_int_eq(o->state, want[i].state);
    ck_assert_str_eq(o->counterparty, "alice");
    ck_assert_int_eq(o->quantity, 100000);
    if (want[i].state == GM__CARBON__OFFER_STATE__OFFER_ACCEPTED)
      ck_assert(o->trade_id[0]);
    ct_free(o);
  }
  gm_feed_destroy(&sub);
}
END_TEST

/* An accept that would take a balance past the limit that keeps amounts
   exact is refused saying whose balance, in yuan or t, by how much and who
   can make room (before: "the seller's cash or the buyer's allowances
   would pass the limit of 4000000000000000 (fen or t) ...; withdraw
   first", to a counterparty that could do neither), and changes nothing:
   the offer stays open and, once an admin made room, trades. */
START_TEST(an_accept_past_the_balance_limit_says_whose_and_by_how_much) {
  char sell[64], buy[64], ids[MAXIDS][64];
  /* Out of range: which field, the value given, in yuan or t. */
  Gm__Carbon__OfferRequest bad =
      ct_offer_request(SYM, CT_SELL, "bob", 0, 100000);
  ct_expect("alice", "block.offer", &bad.base, GM__STATUS__INVALID_ARGUMENT,
            "price 0.00 yuan must be 0.01..1000000.00 yuan");
  bad = ct_offer_request(SYM, CT_SELL, "bob", 8500, -5);
  ct_expect("alice", "block.offer", &bad.base, GM__STATUS__INVALID_ARGUMENT,
            "quantity -5 t must be 1..10000000 t");
  /* alice sells 100000 t at 85.00 to bob: 8,500,000.00 yuan to her, 1.00
     yuan too many. */
  offer("alice", "bob", 8500, sell, sizeof sell);
  ct_deposit("alice", SYM,
             GM_CARBON_MAX_CASH - INT64_C(100000000000) - 850000000 + 100, 0);
  Gm__Carbon__Account *before = ct_account("bob", SYM);
  Gm__Carbon__OfferDecision d = GM__CARBON__OFFER_DECISION__INIT;
  d.offer_id = sell;
  ct_expect("bob", "block.accept", &d.base, GM__STATUS__RESOURCE_EXHAUSTED,
            "the seller alice's cash would pass the limit of "
            "40000000000000.00 yuan that keeps amounts exact: it holds "
            "39999991500001.00 yuan and the trade pays it 8500000.00 yuan; "
            "nothing was done: an admin must withdraw at least 1.00 yuan of "
            "alice's cash (account.withdraw; gm carbon withdraw) before the "
            "offer can be accepted");
  Gm__Carbon__Account *after = ct_account("bob", SYM);
  ck_assert(after->cash == before->cash &&
            after->allowances_locked == before->allowances_locked);
  ct_free(before);
  ct_free(after);
  ck_assert(has(ids, list_all("bob", 0, 0, ids), sell));
  Gm__Carbon__MoveRequest w = GM__CARBON__MOVE_REQUEST__INIT;
  w.participant = "alice";
  w.symbol = SYM;
  w.asset = GM__CARBON__ASSET__ASSET_CASH;
  w.amount = 100;
  w.reference = "room";
  ct_free((Gm__Carbon__Account *)ct_call("root", "account.withdraw", &w.base));
  decide("bob", "block.accept", sell);
  /* carol buys 100000 t from dave, her allowances 1 t short of room. */
  Gm__Carbon__OfferRequest o =
      ct_offer_request(SYM, CT_BUY, "dave", 8500, 100000);
  Gm__Carbon__BlockOffer *b =
      (Gm__Carbon__BlockOffer *)ct_call("carol", "block.offer", &o.base);
  ck_assert_msg(b, "%s", ct_message);
  snprintf(buy, sizeof buy, "%s", b->id);
  ct_free(b);
  ct_deposit("carol", SYM, 0, GM_CARBON_MAX_CASH - 4000000 - 100000 + 1);
  d.offer_id = buy;
  ct_expect("dave", "block.accept", &d.base, GM__STATUS__RESOURCE_EXHAUSTED,
            "the buyer carol's allowances would pass the limit of "
            "4000000000000000 t that keeps amounts exact: it holds "
            "3999999999900001 t and the trade gives it 100000 t; nothing was "
            "done: an admin must withdraw at least 1 t of carol's allowances");
  ck_assert(has(ids, list_all("dave", 0, 0, ids), buy));
}
END_TEST

int main(void) {
  Suite *s = suite_create("carbon block");
  TCase *tc = tcase_create("block");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, each_party_lists_its_open_offers);
  tcase_add_test(tc, pages_are_bounded_and_cover_every_offer);
  tcase_add_test(tc, the_feed_tells_of_each_offer_state);
  tcase_add_test(tc,
                 an_accept_past_the_balance_limit_says_whose_and_by_how_much);
  suite_add_tcase(s, tc);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
