/*
 * The day through gmd: the resale lock across a day boundary, DAY and GTD
 * expiry, the close (VWAP, else the previous close) becoming the next
 * reference price, block trades, and settlement into the ledger with
 * reconciliation and a CSV statement.
 */
#include <sqlite3.h>
#include <string.h>

#include "harness.h"

#define SYM "CEA-2025"

static void setup(void) {
  /* An entry that cannot settle is set aside after 2 failures, not 5: the
     settler's back-off after the 3rd to 5th (0.4 + 0.8 + 1.6 s) would be
     waited out for each such entry in the cases below. */
  ct_start("[ledger]\ndead_letter_after = 2\n", ct_at(CT_MONDAY, 10, 0));
  ct_register("alice", "buyer,seller");
  ct_register("bob", "buyer,seller");
  ct_create(SYM, 8500);
  ct_deposit("alice", SYM, 100000000, 0);    /* 1,000,000 yuan */
  ct_deposit("bob", SYM, 100000000, 300000); /* and 300,000 t */
}

static void teardown(void) {
  ct_stop();
}

static Gm__Carbon__CloseReply *close_day(void) {
  Gm__Carbon__CloseRequest r = GM__CARBON__CLOSE_REQUEST__INIT;
  r.symbol = SYM;
  Gm__Carbon__CloseReply *c =
      (Gm__Carbon__CloseReply *)ct_call("root", "records.close", &r.base);
  ck_assert_msg(c, "records.close: %s", ct_message);
  return c;
}

START_TEST(bought_today_is_sellable_next_trading_day) {
  ct_free(ct_limit("bob", SYM, CT_SELL, 8500, 100, CT_GTC));
  ct_free(ct_limit("alice", SYM, CT_BUY, 8500, 100, CT_GTC));
  Gm__Carbon__Account *a = ct_account("alice", SYM);
  ck_assert_int_eq(a->allowances, 0);
  ck_assert_int_eq(a->allowances_locked, 100);
  ct_free(a);
  Gm__Carbon__PlaceRequest q = GM__CARBON__PLACE_REQUEST__INIT;
  q.symbol = SYM;
  q.side = CT_SELL;
  q.price = 8500;
  q.quantity = 50;
  ct_expect("alice", "order.place", &q.base, GM__STATUS__FAILED_PRECONDITION,
            "100 t bought today become sellable next trading day");
  /* Withdrawing them is refused too. */
  Gm__Carbon__MoveRequest w = GM__CARBON__MOVE_REQUEST__INIT;
  w.participant = "alice";
  w.symbol = SYM;
  w.asset = GM__CARBON__ASSET__ASSET_ALLOWANCE;
  w.amount = 1;
  ct_expect("root", "account.withdraw", &w.base,
            GM__STATUS__FAILED_PRECONDITION, "has 0 t available");
  /* Still locked at 23:59 Shanghai; free at 09:30 the next day. */
  ct_clock(ct_at(CT_MONDAY, 23, 59));
  a = ct_account("alice", SYM);
  ck_assert_int_eq(a->allowances_locked, 100);
  ct_free(a);
  ct_clock(ct_at("2026-03-03", 9, 30));
  a = ct_account("alice", SYM);
  ck_assert_int_eq(a->allowances, 100);
  ck_assert_int_eq(a->allowances_locked, 0);
  ct_free(a);
  Gm__Carbon__PlaceReply *r =
      (Gm__Carbon__PlaceReply *)ct_call("alice", "order.place", &q.base);
  ck_assert_msg(r, "%s", ct_message);
  ct_free(r);
}
END_TEST

START_TEST(expiry_and_the_close) {
  /* Trades at 85.00 x 100 and 86.00 x 300: VWAP 85.75. */
  ct_free(ct_limit("bob", SYM, CT_SELL, 8500, 100, CT_GTC));
  ct_free(ct_limit("alice", SYM, CT_BUY, 8500, 100, CT_GTC));
  ct_free(ct_limit("bob", SYM, CT_SELL, 8600, 300, CT_GTC));
  ct_free(ct_limit("alice", SYM, CT_BUY, 8600, 300, CT_GTC));
  /* A DAY order, a GTD order for 14:00 and a GTC order rest. */
  Gm__Carbon__PlaceReply *day = ct_limit("alice", SYM, CT_BUY, 8000, 10,
                                         GM__CARBON__TIME_IN_FORCE__TIF_DAY);
  Gm__Carbon__PlaceRequest q = GM__CARBON__PLACE_REQUEST__INIT;
  q.symbol = SYM;
  q.side = CT_BUY;
  q.price = 8100;
  q.quantity = 10;
  q.tif = GM__CARBON__TIME_IN_FORCE__TIF_GTD;
  q.expire_ms = ct_at(CT_MONDAY, 14, 0);
  Gm__Carbon__PlaceReply *gtd =
      (Gm__Carbon__PlaceReply *)ct_call("alice", "order.place", &q.base);
  ck_assert_msg(gtd, "%s", ct_message);
  ct_free(ct_limit("alice", SYM, CT_BUY, 8200, 10, CT_GTC));
  Gm__Carbon__StatsRequest sr = GM__CARBON__STATS_REQUEST__INIT;
  sr.symbol = SYM;
  Gm__Carbon__Stats *st =
      (Gm__Carbon__Stats *)ct_call("root", "market.stats", &sr.base);
  ck_assert_int_eq(st->open, 8500);
  ck_assert_int_eq(st->high, 8600);
  ck_assert_int_eq(st->low, 8500);
  ck_assert_int_eq(st->last, 8600);
  ck_assert_int_eq(st->volume, 400);
  ck_assert_int_eq(st->vwap, 8575);
  ck_assert_int_eq(st->close, 0);
  ct_free(st);
  /* Before the close nothing closes. */
  Gm__Carbon__CloseReply *c = close_day();
  ck_assert_int_eq(c->n_closes, 0);
  ct_free(c);
  /* 14:00:01: the instrument's deadline, brought forward to 14:00 by the
   * GTD order, expires it. */
  ct_clock(ct_at(CT_MONDAY, 14, 0) + 1000);
  ck_assert_int_eq(ct_ledger_wait("SELECT state FROM carbon_orders WHERE"
                                  " order_id = 'CEA-2025:000000000006'",
                                  5),
                   5);
  /* 15:00: DAY expires, the day closes at the VWAP. */
  ct_clock(ct_at(CT_MONDAY, 15, 0));
  c = close_day();
  ck_assert_int_eq(c->n_closes, 1);
  ck_assert_str_eq(c->closes[0]->day, "2026-03-02");
  ck_assert_int_eq(c->closes[0]->close, 8575);
  ck_assert(c->closes[0]->from_trades);
  ct_free(c);
  Gm__Carbon__Depth *d = ct_depth(SYM, 5);
  ck_assert_int_eq(d->n_bids, 1); /* only the GTC order is left */
  ck_assert_int_eq(d->bids[0]->price, 8200);
  ct_free(d);
  Gm__Carbon__Account *a = ct_account("alice", SYM);
  ck_assert_int_eq(a->cash_frozen, 10 * 8200);
  ct_free(a);
  /* Closing again changes nothing. */
  c = close_day();
  ck_assert(c->closes[0]->already);
  ct_free(c);
  ck_assert_int_eq(ct_ledger_wait("SELECT close FROM carbon_closes WHERE"
                                  " symbol = 'CEA-2025' AND day = '2026-03-02'",
                                  8575),
                   8575);
  /* Tuesday's band is centred on 85.75: 77.18 - 94.32. */
  ct_clock(ct_at("2026-03-03", 10, 0));
  q.tif = GM__CARBON__TIME_IN_FORCE__TIF_GTC;
  q.expire_ms = 0; /* the GTD order's: a GTC order with one is refused */
  q.price = 9433;
  ct_expect("alice", "order.place", &q.base, GM__STATUS__INVALID_ARGUMENT,
            "77.18-94.32 yuan (reference 85.75");
  /* No trades on Tuesday: its close is the previous close. */
  ct_clock(ct_at("2026-03-03", 15, 30));
  c = close_day();
  ck_assert_int_eq(c->closes[0]->close, 8575);
  ck_assert(!c->closes[0]->from_trades);
  ct_free(c);
  ct_free(day);
  ct_free(gtd);
}
END_TEST

START_TEST(block_trades_by_agreement) {
  Gm__Carbon__OfferRequest o =
      ct_offer_request(SYM, CT_SELL, "alice", 8000, 150000);
  /* 10:00 is outside the block window (13:00-15:00). */
  ct_expect("bob", "block.offer", &o.base, GM__STATUS__FAILED_PRECONDITION,
            "next open 2026-03-02 13:00");
  ct_clock(ct_at(CT_MONDAY, 13, 30));
  o.quantity = 99999;
  ct_expect("bob", "block.offer", &o.base, GM__STATUS__INVALID_ARGUMENT,
            "at least 100000 t");
  o.quantity = 150000;
  o.price = 5900; /* block band is +/-30%: 59.50 - 110.50 */
  ct_expect("bob", "block.offer", &o.base, GM__STATUS__INVALID_ARGUMENT,
            "outside the block band 59.50-110.50");
  o.price = 8000;
  Gm__Carbon__BlockOffer *b =
      (Gm__Carbon__BlockOffer *)ct_call("bob", "block.offer", &o.base);
  ck_assert_msg(b, "%s", ct_message);
  ck_assert_int_eq(b->state, GM__CARBON__OFFER_STATE__OFFER_OPEN);
  Gm__Carbon__Account *a = ct_account("bob", SYM);
  ck_assert_int_eq(a->allowances_frozen, 150000);
  ct_free(a);
  Gm__Carbon__OfferDecision dec = GM__CARBON__OFFER_DECISION__INIT;
  dec.offer_id = b->id;
  /* Only the counterparty accepts; alice cannot pay 12,000,000 yuan. */
  ct_expect("bob", "block.accept", &dec.base, GM__STATUS__PERMISSION_DENIED,
            "only alice may accept");
  ct_expect("alice", "block.accept", &dec.base, GM__STATUS__FAILED_PRECONDITION,
            "not enough cash");
  ct_deposit("alice", SYM, 1200000000, 0);
  Gm__Carbon__BlockOffer *acc =
      (Gm__Carbon__BlockOffer *)ct_call("alice", "block.accept", &dec.base);
  ck_assert_msg(acc, "%s", ct_message);
  ck_assert_int_eq(acc->state, GM__CARBON__OFFER_STATE__OFFER_ACCEPTED);
  ck_assert(acc->trade_id[0]);
  a = ct_account("alice", SYM);
  ck_assert_int_eq(a->cash, 100000000);
  ck_assert_int_eq(a->allowances_locked, 150000);
  ct_free(a);
  a = ct_account("bob", SYM);
  ck_assert_int_eq(a->cash, 100000000 + 1200000000);
  ck_assert_int_eq(a->allowances, 150000);
  ck_assert_int_eq(a->allowances_frozen, 0);
  ct_free(a);
  /* Accepting again: gone. A second offer is rejected and released. */
  ct_expect("alice", "block.accept", &dec.base, GM__STATUS__NOT_FOUND,
            "no open block offer");
  o.side = CT_BUY;
  o.counterparty = "alice";
  Gm__Carbon__BlockOffer *b2 =
      (Gm__Carbon__BlockOffer *)ct_call("bob", "block.offer", &o.base);
  ck_assert_msg(b2, "%s", ct_message);
  dec.offer_id = b2->id;
  Gm__Carbon__BlockOffer *rj =
      (Gm__Carbon__BlockOffer *)ct_call("alice", "block.reject", &dec.base);
  ck_assert_msg(rj, "%s", ct_message);
  ck_assert_int_eq(rj->state, GM__CARBON__OFFER_STATE__OFFER_REJECTED);
  a = ct_account("bob", SYM);
  ck_assert_int_eq(a->cash_frozen, 0);
  ct_free(a);
  /* Block trades count apart from the listing volume and VWAP. */
  Gm__Carbon__StatsRequest sr = GM__CARBON__STATS_REQUEST__INIT;
  sr.symbol = SYM;
  Gm__Carbon__Stats *st =
      (Gm__Carbon__Stats *)ct_call("root", "market.stats", &sr.base);
  ck_assert_int_eq(st->block_volume, 150000);
  ck_assert_int_eq(st->volume, 0);
  ct_free(st);
  ck_assert_int_eq(ct_ledger_wait("SELECT count(*) FROM carbon_trades WHERE"
                                  " block = 1 AND amount = 1200000000",
                                  1),
                   1);
  ct_free(b);
  ct_free(b2);
  ct_free(acc);
  ct_free(rj);
}
END_TEST

START_TEST(settled_records_reconcile_and_export) {
  ct_free(ct_limit("bob", SYM, CT_SELL, 8550, 100, CT_GTC));
  ct_free(ct_limit("alice", SYM, CT_BUY, 8600, 60, CT_GTC));
  ct_free(ct_limit("alice", SYM, CT_BUY, 8600, 10, CT_GTC));
  ck_assert_int_eq(ct_ledger_wait("SELECT count(*) FROM carbon_trades", 2), 2);
  ck_assert_int_eq(ct_ledger_int("SELECT sum(amount) FROM carbon_trades"),
                   70 * 8550);
  ck_assert_int_eq(
      ct_ledger_int("SELECT count(*) FROM carbon_trades WHERE buyer = 'alice'"
                    " AND seller = 'bob' AND maker_side = 's'"),
      2);
  /* The ledger and Redis agree. */
  ck_assert_int_eq(ct_ledger_wait("SELECT count(*) FROM carbon_orders"
                                  " WHERE state = 3",
                                  2),
                   2);
  Gm__Carbon__ReconcileRequest rr = GM__CARBON__RECONCILE_REQUEST__INIT;
  Gm__Carbon__ReconcileReply *rec = ct_reconcile_settled("");
  ck_assert_int_eq(rec->accounts, 2);
  ck_assert_int_eq(rec->n_differences, 0);
  ct_free(rec);
  /* A change behind the ledger's back is reported. */
  redisContext *rc = gm_test_redis_connect(ct_redis);
  freeReplyObject(
      gm_test_redis_cmd(rc, "HINCRBY gm:{carbon:CEA-2025}:a:bob al 7"));
  rec = (Gm__Carbon__ReconcileReply *)ct_call("root", "records.reconcile",
                                              &rr.base);
  ck_assert_int_eq(rec->n_differences, 1);
  ck_assert_str_eq(rec->differences[0]->participant, "bob");
  ck_assert_int_eq(rec->differences[0]->asset,
                   GM__CARBON__ASSET__ASSET_ALLOWANCE);
  ck_assert_int_eq(rec->differences[0]->live - rec->differences[0]->ledger, 7);
  ct_free(rec);
  redisFree(rc);
  /* Own trades, and the counterparty hidden on listing trades. */
  Gm__Carbon__TradesRequest tr = GM__CARBON__TRADES_REQUEST__INIT;
  Gm__Carbon__TradeList *tl =
      (Gm__Carbon__TradeList *)ct_call("alice", "records.trades", &tr.base);
  ck_assert_msg(tl, "%s", ct_message);
  ck_assert_int_eq(tl->n_trades, 2);
  ck_assert_str_eq(tl->trades[0]->buyer, "alice");
  ck_assert_str_eq(tl->trades[0]->seller, "");
  ct_free(tl);
  /* Each case of the query (records.c: the participant's by the buyer and
     seller indexes, with or without a symbol; an admin's of one instrument
     or of all) lists the same two trades; a participant in neither none. */
  static const struct {
    const char *who, *sym, *buyer, *seller;
    size_t n;
  } lists[] = {
      {"alice", SYM, "alice", "", 2},  {"bob", "", "", "bob", 2},
      {"bob", SYM, "", "bob", 2},      {"root", SYM, "alice", "bob", 2},
      {"root", "", "alice", "bob", 2}, {"carol", "", "", "", 0},
      {"carol", SYM, "", "", 0},
  };
  ct_register("carol", "buyer,seller"); /* unregistered: every role */
  for (size_t i = 0; i < sizeof lists / sizeof *lists; i++) {
    tr.symbol = (char *)lists[i].sym;
    tl = (Gm__Carbon__TradeList *)ct_call(lists[i].who, "records.trades",
                                          &tr.base);
    ck_assert_msg(tl, "%s: %s", lists[i].who, ct_message);
    ck_assert_msg(tl->n_trades == lists[i].n, "%s %s: %zu trades", lists[i].who,
                  lists[i].sym, tl->n_trades);
    for (size_t k = 0; k < tl->n_trades; k++) {
      ck_assert_str_eq(tl->trades[k]->buyer, lists[i].buyer);
      ck_assert_str_eq(tl->trades[k]->seller, lists[i].seller);
      ck_assert(k == 0 || tl->trades[k - 1]->time_ms <= tl->trades[k]->time_ms);
    }
    ct_free(tl);
  }
  tr.symbol = "";
  Gm__Carbon__StatementRequest sr = GM__CARBON__STATEMENT_REQUEST__INIT;
  sr.from = CT_MONDAY;
  Gm__Carbon__Statement *s =
      (Gm__Carbon__Statement *)ct_call("alice", "records.statement", &sr.base);
  ck_assert_msg(s, "%s", ct_message);
  ck_assert_int_eq(s->rows, 2);
  ck_assert_msg(strstr(s->csv,
                       "2026-03-02T10:00:00+08:00,CEA-2025,buy,85.50,"
                       "60,5130.00"),
                "%s", s->csv);
  ct_free(s);
  sr.from = "2026-03-03";
  s = (Gm__Carbon__Statement *)ct_call("alice", "records.statement", &sr.base);
  ck_assert_int_eq(s->rows, 0);
  ct_free(s);
}
END_TEST

/* Entries of the layout brokers before carbon.h's packed records wrote
 * (a field per value, in an order other than the packed layout's: each value
 * is found by its name) still settle after an upgrade, next to packed ones;
 * a packed order's reason keeps its '|'. */
/* Pages of `as`'s records.trades of `sym` ("" every instrument), `limit` a
   page, following next_cursor: every trade id into ids (room for max);
   returns how many.  Each page but the last is full, and where a page ends
   inside a millisecond (*split) is counted. */
static size_t trades_pages(const char *as, const char *sym, int32_t limit,
                           char ids[][48], size_t max, int *split) {
  Gm__Carbon__TradesRequest tr = GM__CARBON__TRADES_REQUEST__INIT;
  char cursor[256] = "";
  int64_t last_ms = -1;
  size_t n = 0;
  tr.symbol = (char *)sym;
  tr.from_ms = ct_at(CT_MONDAY, 0, 0);
  tr.limit = limit;
  for (int page = 0;; page++) {
    ck_assert_msg(page < 64, "%s %s: no last page", as, sym);
    tr.cursor = cursor;
    Gm__Carbon__TradeList *tl =
        (Gm__Carbon__TradeList *)ct_call(as, "records.trades", &tr.base);
    ck_assert_msg(tl, "%s %s page %d: %s", as, sym, page, ct_message);
    if (tl->next_cursor[0]) ck_assert_int_eq(tl->n_trades, limit);
    if (page > 0 && tl->n_trades && tl->trades[0]->time_ms == last_ms)
      (*split)++;
    for (size_t k = 0; k < tl->n_trades; k++) {
      ck_assert_int_lt(n, max);
      snprintf(ids[n++], 48, "%s", tl->trades[k]->trade_id);
      last_ms = tl->trades[k]->time_ms;
    }
    ck_assert_int_lt(strlen(tl->next_cursor), sizeof cursor);
    snprintf(cursor, sizeof cursor, "%s", tl->next_cursor);
    ct_free(tl);
    if (!cursor[0]) return n;
  }
}

/* Trades sharing a millisecond across a page boundary: following
   next_cursor lists each exactly once in every case of the query (paging
   by time alone listed those of the boundary's millisecond twice); a
   cursor of another query, another caller or edited is refused. */
START_TEST(trades_page_exactly_once) {
  int64_t t0 = ct_at(CT_MONDAY, 10, 0);
  ct_create("RE-2", 8500);
  ct_deposit("alice", "RE-2", 100000000, 0);
  ct_deposit("bob", "RE-2", 0, 1000);
  for (int i = 0; i < 8; i++)
    ct_free(ct_limit("bob", SYM, CT_SELL, 8500, 1, CT_GTC));
  for (int i = 0; i < 2; i++)
    ct_free(ct_limit("bob", "RE-2", CT_SELL, 8500, 1, CT_GTC));
  /* 1 trade at t0, 5 + 2 of two instruments at t0 + 1 ms, 2 at t0 + 2. */
  ct_free(ct_limit("alice", SYM, CT_BUY, 8500, 1, CT_GTC));
  ct_clock(t0 + 1);
  ct_free(ct_limit("alice", SYM, CT_BUY, 8500, 5, CT_GTC));
  ct_free(ct_limit("alice", "RE-2", CT_BUY, 8500, 2, CT_GTC));
  ct_clock(t0 + 2);
  ct_free(ct_limit("alice", SYM, CT_BUY, 8500, 2, CT_GTC));
  ck_assert_int_eq(ct_ledger_wait("SELECT count(*) FROM carbon_trades", 10),
                   10);
  static const struct {
    const char *who, *sym;
    size_t n;
  } cases[] = {
      {"alice", "", 10}, {"alice", SYM, 8}, {"bob", "RE-2", 2},
      {"root", SYM, 8},  {"root", "", 10},
  };
  for (size_t c = 0; c < sizeof cases / sizeof *cases; c++)
    for (int32_t limit = 1; limit <= 4; limit++) {
      char ids[32][48];
      int split = 0;
      size_t n =
          trades_pages(cases[c].who, cases[c].sym, limit, ids, 32, &split);
      ck_assert_msg(n == cases[c].n, "%s %s limit %d: %zu trades", cases[c].who,
                    cases[c].sym, limit, n);
      for (size_t i = 0; i < n; i++)
        for (size_t k = 0; k < i; k++)
          ck_assert_msg(strcmp(ids[i], ids[k]), "%s %s limit %d: %s twice",
                        cases[c].who, cases[c].sym, limit, ids[i]);
      /* Some page boundary fell inside t0 + 1 (else this proves nothing). */
      if (limit > 1 && cases[c].n > 2)
        ck_assert_msg(split, "%s %s limit %d: no page split a millisecond",
                      cases[c].who, cases[c].sym, limit);
    }
  /* A cursor belongs to its query and caller; anything else is refused,
     with how to go on. */
  Gm__Carbon__TradesRequest tr = GM__CARBON__TRADES_REQUEST__INIT;
  tr.symbol = SYM;
  tr.from_ms = ct_at(CT_MONDAY, 0, 0);
  tr.limit = 3;
  Gm__Carbon__TradeList *tl =
      (Gm__Carbon__TradeList *)ct_call("alice", "records.trades", &tr.base);
  ck_assert_msg(tl && tl->next_cursor[0], "%s", ct_message);
  char cursor[256];
  snprintf(cursor, sizeof cursor, "%s", tl->next_cursor);
  ct_free(tl);
  tr.cursor = cursor;
  const char *why = "is not one records.trades returned for this query";
  ct_expect("bob", "records.trades", &tr.base, GM__STATUS__INVALID_ARGUMENT,
            why);
  tr.from_ms = 0;
  ct_expect("alice", "records.trades", &tr.base, GM__STATUS__INVALID_ARGUMENT,
            why);
  tr.from_ms = ct_at(CT_MONDAY, 0, 0);
  tr.symbol = "";
  ct_expect("alice", "records.trades", &tr.base, GM__STATUS__INVALID_ARGUMENT,
            "start again from the first page without a cursor");
  tr.symbol = SYM;
  char edited[256];
  snprintf(edited, sizeof edited, "%s", cursor);
  edited[1] = edited[1] == '1' ? '2' : '1'; /* another settle position */
  tr.cursor = edited;
  ct_expect("alice", "records.trades", &tr.base, GM__STATUS__INVALID_ARGUMENT,
            why);
  /* Not text at all: the broker refuses it before the market sees it. */
  tr.cursor = "\xff\xfe";
  ct_expect("alice", "records.trades", &tr.base, GM__STATUS__INVALID_ARGUMENT,
            "field 'cursor' is not valid UTF-8");
  const char *const bad[] = {"x", "1.2.3", "..", "12.CEA-2025:T1.x",
                             cursor + 1};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    tr.cursor = (char *)bad[i];
    ct_expect("alice", "records.trades", &tr.base, GM__STATUS__INVALID_ARGUMENT,
              why);
  }
  /* A limit out of range says what was given and what a page holds. */
  tr.cursor = "";
  static const int32_t limits[] = {10001, -1};
  for (size_t i = 0; i < sizeof limits / sizeof *limits; i++) {
    char want[64];
    snprintf(want, sizeof want, "limit %d is out of range: a page holds 1..",
             (int)limits[i]);
    tr.limit = limits[i];
    ct_expect("alice", "records.trades", &tr.base, GM__STATUS__INVALID_ARGUMENT,
              want);
  }
  tr.limit = 3;
  /* The cursor as given still works with its own query and caller. */
  tr.cursor = cursor;
  tl = (Gm__Carbon__TradeList *)ct_call("alice", "records.trades", &tr.base);
  ck_assert_msg(tl, "%s", ct_message);
  ck_assert_int_eq(tl->n_trades, 3);
  ct_free(tl);
}
END_TEST

/* Follows records.trades of `as` and `sym` in [Monday 00:00, to_ms), 2 a
   page, from *cursor ("" the first page) for at most `pages` pages (0: to
   the last), adding the trade ids to ids (room for 16, *n on).  Leaves in
   *cursor the next_cursor, or on the last page the resume_cursor; returns
   1 when the last page was read. */
static int late_walk(const char *as, const char *sym, int64_t to_ms,
                     char cursor[256], char ids[][48], size_t *n, int pages) {
  Gm__Carbon__TradesRequest tr = GM__CARBON__TRADES_REQUEST__INIT;
  tr.symbol = (char *)sym;
  tr.from_ms = ct_at(CT_MONDAY, 0, 0);
  tr.to_ms = to_ms;
  tr.limit = 2;
  for (int page = 0; pages == 0 || page < pages; page++) {
    ck_assert_msg(page < 16, "%s %s: no last page", as, sym);
    tr.cursor = cursor;
    Gm__Carbon__TradeList *tl =
        (Gm__Carbon__TradeList *)ct_call(as, "records.trades", &tr.base);
    ck_assert_msg(tl, "%s %s page %d: %s", as, sym, page, ct_message);
    for (size_t k = 0; k < tl->n_trades; k++) {
      ck_assert_int_lt(*n, 16);
      snprintf(ids[(*n)++], 48, "%s", tl->trades[k]->trade_id);
    }
    /* One or the other: more now, or how to come back later. */
    ck_assert(!tl->next_cursor[0] != !tl->resume_cursor[0]);
    int last = !tl->next_cursor[0];
    snprintf(cursor, 256, "%s", last ? tl->resume_cursor : tl->next_cursor);
    ct_free(tl);
    if (last) return 1;
  }
  return 0;
}

/* How many of ids[0..n) are `id`. */
static size_t late_count(char ids[][48], size_t n, const char *id) {
  size_t c = 0;
  for (size_t i = 0; i < n; i++) c += strcmp(ids[i], id) == 0;
  return c;
}

/* Holds back the settlement of `stream`'s next entries, as a settler behind
   on that one stream: its group's last-delivered id moves past every id
   Redis will give for a long while, so the settler's reads find nothing new
   there (nothing is pending, so nothing is trimmed).  The id to put back
   (late_release) goes to saved. */
static void late_hold(redisContext *rc, const char *stream, char saved[64]) {
  redisReply *r = gm_test_redis_cmd(rc, "XINFO GROUPS %s", stream);
  saved[0] = '\0';
  for (size_t g = 0; g < r->elements; g++) {
    const redisReply *f = r->element[g];
    const char *name = "", *last = "";
    for (size_t i = 0; i + 1 < f->elements; i += 2) {
      if (!strcmp(f->element[i]->str, "name")) name = f->element[i + 1]->str;
      if (!strcmp(f->element[i]->str, "last-delivered-id"))
        last = f->element[i + 1]->str;
    }
    if (!strcmp(name, "gm-settle")) snprintf(saved, 64, "%s", last);
  }
  freeReplyObject(r);
  ck_assert_msg(saved[0], "%s has no gm-settle group", stream);
  freeReplyObject(gm_test_redis_cmd(
      rc, "XGROUP SETID %s gm-settle 99999999999999-0", stream));
}

/* Lets the settler read `stream` on from `saved` (late_hold). */
static void late_release(redisContext *rc, const char *stream,
                         const char *saved) {
  freeReplyObject(
      gm_test_redis_cmd(rc, "XGROUP SETID %s gm-settle %s", stream, saved));
}

/* A trade that settles after a page was read, dated before that page's
   last trade (another instrument's outbox settled late): the later pages
   list it, once, in every case of the query; after the last page,
   resume_cursor lists the trades of the range that settled since, however
   late.  (Before the settle-order cursor the pages after the cursor's time
   never listed it.)  RE-2's settlement is held back (late_hold). */
START_TEST(trades_settled_late_are_listed_once) {
  static const char held[] = "gm:{carbon:RE-2}:outbox";
  char saved[64];
  int64_t t0 = ct_at(CT_MONDAY, 10, 0), to = t0 + 3600000;
  redisContext *rc = gm_test_redis_connect(ct_redis);
  ct_create("RE-2", 8500);
  ct_deposit("alice", "RE-2", 100000000, 0);
  ct_deposit("bob", "RE-2", 0, 1000);
  for (int i = 0; i < 4; i++)
    ct_free(ct_limit("bob", SYM, CT_SELL, 8500, 1, CT_GTC));
  for (int i = 0; i < 2; i++)
    ct_free(ct_limit("bob", "RE-2", CT_SELL, 8500, 1, CT_GTC));
  ck_assert_int_eq(ct_ledger_wait("SELECT count(*) FROM carbon_orders"
                                  " WHERE symbol = 'RE-2'",
                                  2),
                   2);
  late_hold(rc, held, saved);
  /* RE-2 trades at t0 + 1; CEA-2025 at t0 + 2, + 3 and + 4, settled. */
  ct_clock(t0 + 1);
  Gm__Carbon__PlaceReply *late =
      ct_limit("alice", "RE-2", CT_BUY, 8500, 1, CT_GTC);
  ck_assert_int_eq(late->n_fills, 1);
  char late_id[48];
  snprintf(late_id, sizeof late_id, "%s", late->fills[0]->trade_id);
  ct_free(late);
  for (int i = 0; i < 3; i++) {
    ct_clock(t0 + 2 + i);
    ct_free(ct_limit("alice", SYM, CT_BUY, 8500, 1, CT_GTC));
  }
  ck_assert_int_eq(ct_ledger_wait("SELECT count(*) FROM carbon_trades", 3), 3);
  const struct {
    const char *who, *sym;
    int64_t to_ms;
    size_t n;
  } cases[] = {
      {"alice", "", 0, 4},    {"bob", "", 0, 4},   {"root", "", 0, 4},
      {"alice", "", to, 4},   {"root", "", to, 4}, {"alice", "RE-2", 0, 1},
      {"root", "RE-2", 0, 1}, {"root", SYM, 0, 3},
  };
  enum { NC = sizeof cases / sizeof *cases };
  char cursor[NC][256], ids[NC][16][48];
  size_t n[NC] = {0};
  /* The first page of each, while RE-2's trade is not in the ledger. */
  for (size_t c = 0; c < NC; c++) {
    cursor[c][0] = '\0';
    late_walk(cases[c].who, cases[c].sym, cases[c].to_ms, cursor[c], ids[c],
              &n[c], 1);
  }
  ck_assert_int_eq(ct_ledger_int("SELECT count(*) FROM carbon_trades"), 3);
  late_release(rc, held, saved);
  ck_assert_int_eq(ct_ledger_wait("SELECT count(*) FROM carbon_trades", 4), 4);
  /* The rest of each walk (or, where the first page was the last, its
     resume_cursor) lists the late trade, once. */
  for (size_t c = 0; c < NC; c++) {
    ck_assert(late_walk(cases[c].who, cases[c].sym, cases[c].to_ms, cursor[c],
                        ids[c], &n[c], 0));
    ck_assert_msg(n[c] == cases[c].n, "%s %s: %zu trades", cases[c].who,
                  cases[c].sym, n[c]);
    for (size_t i = 0; i < n[c]; i++)
      ck_assert_msg(late_count(ids[c], n[c], ids[c][i]) == 1, "%s %s: %s twice",
                    cases[c].who, cases[c].sym, ids[c][i]);
    ck_assert_int_eq(late_count(ids[c], n[c], late_id),
                     strcmp(cases[c].sym, SYM) != 0);
  }
  /* After the last page: RE-2 trades again at t0 + 10 and settles late,
     CEA-2025 at t0 + 11 at once.  resume_cursor lists each when it has
     settled, inside the range (to_ms given); a range of to_ms 0 ended when
     its first page was read. */
  late_hold(rc, held, saved);
  ct_clock(t0 + 10);
  ct_free(ct_limit("alice", "RE-2", CT_BUY, 8500, 1, CT_GTC));
  ct_clock(t0 + 11);
  ct_free(ct_limit("alice", SYM, CT_BUY, 8500, 1, CT_GTC));
  ck_assert_int_eq(ct_ledger_wait("SELECT count(*) FROM carbon_trades", 5), 5);
  static const size_t resumed[] = {3, 4}; /* {alice, "", to}, {root, "", to} */
  for (size_t k = 0; k < 2; k++) {
    size_t c = resumed[k], before = n[c];
    ck_assert(late_walk(cases[c].who, "", to, cursor[c], ids[c], &n[c], 0));
    ck_assert_int_eq(n[c], before + 1);
    ck_assert_str_eq(ids[c][before], SYM ":T000000000004");
  }
  late_release(rc, held, saved);
  ck_assert_int_eq(ct_ledger_wait("SELECT count(*) FROM carbon_trades", 6), 6);
  for (size_t c = 0; c < NC; c++) {
    size_t before = n[c];
    ck_assert(late_walk(cases[c].who, cases[c].sym, cases[c].to_ms, cursor[c],
                        ids[c], &n[c], 0));
    int in_range = cases[c].to_ms && strcmp(cases[c].sym, SYM) != 0;
    ck_assert_msg(n[c] == before + (size_t)in_range, "%s %s %lld: %zu more",
                  cases[c].who, cases[c].sym, (long long)cases[c].to_ms,
                  n[c] - before);
    if (in_range) ck_assert_str_eq(ids[c][before], "RE-2:T000000000002");
  }
  redisFree(rc);
}
END_TEST

/* A resume_cursor followed when only others traded moves past their
   trades: the next resume reads from there, not again from the first
   page's position (each resume read every trade of the market settled
   since, whoever's, and kept the cost growing with the cursor's age). */
START_TEST(a_resume_cursor_moves_past_others_trades) {
  int64_t t0 = ct_at(CT_MONDAY, 10, 0), to = t0 + 3600000;
  ct_deposit("carol", SYM, 100000000, 0);
  for (int i = 0; i < 5; i++)
    ct_free(ct_limit("bob", SYM, CT_SELL, 8500, 1, CT_GTC));
  ct_clock(t0);
  ct_free(ct_limit("alice", SYM, CT_BUY, 8500, 1, CT_GTC));
  ck_assert_int_eq(ct_ledger_wait("SELECT count(*) FROM carbon_trades", 1), 1);
  char cursor[256] = "", first[256], ids[16][48];
  size_t n = 0;
  ck_assert(late_walk("alice", "", to, cursor, ids, &n, 0));
  ck_assert_int_eq(n, 1);
  ck_assert_msg(!strncmp(cursor, "s1.", 3), "resume_cursor %s", cursor);
  snprintf(first, sizeof first, "%s", cursor);
  for (int i = 0; i < 3; i++) {
    ct_clock(t0 + 1 + i);
    ct_free(ct_limit("carol", SYM, CT_BUY, 8500, 1, CT_GTC));
  }
  ck_assert_int_eq(ct_ledger_wait("SELECT count(*) FROM carbon_trades", 4), 4);
  ck_assert(late_walk("alice", "", to, cursor, ids, &n, 0));
  ck_assert_int_eq(n, 1);
  ck_assert_msg(!strncmp(cursor, "s4.", 3), "resume_cursor %s after %s", cursor,
                first);
  /* Alice's next trade is listed from there, once. */
  ct_clock(t0 + 4);
  ct_free(ct_limit("alice", SYM, CT_BUY, 8500, 1, CT_GTC));
  ck_assert_int_eq(ct_ledger_wait("SELECT count(*) FROM carbon_trades", 5), 5);
  ck_assert(late_walk("alice", "", to, cursor, ids, &n, 0));
  ck_assert_int_eq(n, 2);
  ck_assert_str_ne(ids[0], ids[1]);
}
END_TEST

#ifdef GM_FAILURE_INJECTION
/* The market of setup(), its late walk reading at most 3 trades settled
   since a walk began a page (test_late_window; 50,000 otherwise). */
static void setup_window(void) {
  ct_start("test_late_window = 3\n[ledger]\ndead_letter_after = 2\n",
           ct_at(CT_MONDAY, 10, 0));
  ct_register("alice", "buyer,seller");
  ct_register("bob", "buyer,seller");
  ct_create(SYM, 8500);
  ct_deposit("alice", SYM, 100000000, 0);
  ct_deposit("bob", SYM, 100000000, 300000);
}

/* A late page stops at the bound of trades settled since (here 3): one
   that reached it before it filled comes back with what it found, none
   too, and a next_cursor past the trades it read; one that filled first
   stops at its last trade.  Followed to the end, each trade settled since
   is listed once, and the last page's resume_cursor stands at the last
   trade settled.  (The 50,000 bound had no test: it needs that many
   trades.) */
START_TEST(a_late_page_stops_at_the_bound_and_resumes) {
  int64_t t0 = ct_at(CT_MONDAY, 10, 0), to = t0 + 3600000;
  ct_deposit("carol", SYM, 100000000, 0);
  for (int i = 0; i < 9; i++)
    ct_free(ct_limit("bob", SYM, CT_SELL, 8500, 1, CT_GTC));
  ct_clock(t0);
  ct_free(ct_limit("alice", SYM, CT_BUY, 8500, 1, CT_GTC)); /* seq 1 */
  ck_assert_int_eq(ct_ledger_wait("SELECT count(*) FROM carbon_trades", 1), 1);
  char alice[256] = "", root[256] = "", ids[16][48], all[16][48];
  size_t n = 0, nall = 0;
  ck_assert(late_walk("alice", "", to, alice, ids, &n, 0));
  ck_assert(late_walk("root", "", to, root, all, &nall, 0));
  ck_assert_msg(!strncmp(alice, "s1.", 3), "resume_cursor %s", alice);
  /* Settled since: carol's seq 2-5, alice's 6, carol's 7-8, alice's 9. */
  static const char *const who[] = {"carol", "carol", "carol", "carol",
                                    "alice", "carol", "carol", "alice"};
  for (int i = 0; i < 8; i++) {
    ct_clock(t0 + 1 + i);
    ct_free(ct_limit(who[i], SYM, CT_BUY, 8500, 1, CT_GTC));
  }
  ck_assert_int_eq(ct_ledger_wait("SELECT count(*) FROM carbon_trades", 9), 9);
  /* alice, 2 a page: seqs 2-4 hold none of hers (an empty page and a
     next_cursor past them), 5-7 hold seq 6, 8-9 seq 9 and end it. */
  static const struct {
    size_t n;
    const char *next, *resume;
  } pages[] = {{0, "s4.", ""}, {1, "s7.", ""}, {1, "", "s9."}};
  Gm__Carbon__TradesRequest tr = GM__CARBON__TRADES_REQUEST__INIT;
  tr.from_ms = ct_at(CT_MONDAY, 0, 0);
  tr.to_ms = to;
  tr.limit = 2;
  for (size_t p = 0; p < sizeof pages / sizeof *pages; p++) {
    tr.cursor = alice;
    Gm__Carbon__TradeList *tl =
        (Gm__Carbon__TradeList *)ct_call("alice", "records.trades", &tr.base);
    ck_assert_msg(tl, "page %zu: %s", p, ct_message);
    ck_assert_msg(tl->n_trades == pages[p].n, "page %zu: %zu trades", p,
                  tl->n_trades);
    ck_assert_msg(
        !strncmp(tl->next_cursor, pages[p].next, strlen(pages[p].next)) &&
            !tl->next_cursor[0] == !pages[p].next[0],
        "page %zu: next_cursor %s", p, tl->next_cursor);
    ck_assert_msg(
        !strncmp(tl->resume_cursor, pages[p].resume, strlen(pages[p].resume)) &&
            !tl->resume_cursor[0] == !pages[p].resume[0],
        "page %zu: resume_cursor %s", p, tl->resume_cursor);
    for (size_t k = 0; k < tl->n_trades; k++)
      snprintf(ids[n++], 48, "%s", tl->trades[k]->trade_id);
    snprintf(alice, sizeof alice, "%s",
             tl->next_cursor[0] ? tl->next_cursor : tl->resume_cursor);
    ct_free(tl);
  }
  ck_assert_int_eq(n, 3);
  ck_assert_str_eq(ids[1], SYM ":T000000000006");
  ck_assert_str_eq(ids[2], SYM ":T000000000009");
  /* root sees every trade: its pages fill before the bound (2 of 3) or
     stop at it, and list the 8 late ones once each, in settle order. */
  ck_assert(late_walk("root", "", to, root, all, &nall, 0));
  ck_assert_int_eq(nall, 9);
  for (size_t i = 0; i < nall; i++) {
    char want[48];
    snprintf(want, sizeof want, SYM ":T%012zx", i + 1);
    ck_assert_str_eq(all[i], want);
  }
  ck_assert_msg(!strncmp(root, "s9.", 3), "resume_cursor %s", root);
}
END_TEST
#endif

/* One page of alice's records.trades (every instrument, from Monday 00:00,
   to_ms 0, 2 a page) after `cursor`, on connection `conn`: the trade ids
   into ids (*n on), the next_cursor into cursor. */
static void cursor_page(gm_test_conn *conn, char cursor[256], char ids[][48],
                        size_t *n) {
  Gm__Carbon__TradesRequest tr = GM__CARBON__TRADES_REQUEST__INIT;
  gm_test_conn *own = ct_conn;
  tr.from_ms = ct_at(CT_MONDAY, 0, 0);
  tr.limit = 2;
  tr.cursor = cursor;
  ct_conn = conn;
  Gm__Carbon__TradeList *tl =
      (Gm__Carbon__TradeList *)ct_call("alice", "records.trades", &tr.base);
  ct_conn = own;
  ck_assert_msg(tl, "%s", ct_message);
  for (size_t k = 0; k < tl->n_trades; k++)
    snprintf(ids[(*n)++], 48, "%s", tl->trades[k]->trade_id);
  snprintf(cursor, 256, "%s", tl->next_cursor);
  ct_free(tl);
}

/* FNV-1a 64 over n bytes, from h. */
static uint64_t fnv(uint64_t h, const char *p, size_t n) {
  for (size_t i = 0; i < n; i++)
    h = (h ^ (unsigned char)p[i]) * 0x100000001b3ULL;
  return h;
}

/* A records.trades cursor holds positions in the ledger only: it is
   followed the same after gmd restarts and by another broker (whose ledger
   reads go to the settle-lease holder).  A ledger of a release before the
   settle order (carbon_trades without seq) is rebuilt at start keeping each
   trade's rowid as its seq, and a cursor such a release returned is
   refused, saying to start again. */
START_TEST(trades_cursor_holds_across_restarts_brokers_and_releases) {
  int64_t t0 = ct_at(CT_MONDAY, 10, 0);
  for (int i = 0; i < 6; i++)
    ct_free(ct_limit("bob", SYM, CT_SELL, 8500, 1, CT_GTC));
  for (int i = 0; i < 6; i++) {
    ct_clock(t0 + i);
    ct_free(ct_limit("alice", SYM, CT_BUY, 8500, 1, CT_GTC));
  }
  ck_assert_int_eq(ct_ledger_wait("SELECT count(*) FROM carbon_trades", 6), 6);
  /* The ledger as a release before this one left it: migration 1's table,
     the rowids 10, 20, ... in the order the trades settled. */
  gm_test_gmd_kill9(ct_gmd);
  sqlite3 *db;
  char *err = NULL;
  ck_assert_int_eq(sqlite3_open(gm_test_gmd_ledger(ct_gmd), &db), SQLITE_OK);
  ck_assert_msg(
      sqlite3_exec(
          db,
          "BEGIN;"
          "CREATE TABLE old_trades (trade_id TEXT PRIMARY KEY, symbol TEXT NOT"
          " NULL, buyer TEXT NOT NULL, seller TEXT NOT NULL, buy_order TEXT NOT"
          " NULL, sell_order TEXT NOT NULL, price INTEGER NOT NULL, quantity"
          " INTEGER NOT NULL, amount INTEGER NOT NULL, maker_side TEXT NOT"
          " NULL, block INTEGER NOT NULL, day INTEGER NOT NULL, time_ms"
          " INTEGER NOT NULL);"
          "INSERT INTO old_trades (rowid, trade_id, symbol, buyer, seller,"
          " buy_order, sell_order, price, quantity, amount, maker_side, block,"
          " day, time_ms) SELECT seq * 10, trade_id, symbol, buyer, seller,"
          " buy_order, sell_order, price, quantity, amount, maker_side, block,"
          " day, time_ms FROM carbon_trades;"
          "DROP TABLE carbon_trades;"
          "ALTER TABLE old_trades RENAME TO carbon_trades;"
          "CREATE INDEX carbon_trades_buyer ON carbon_trades (buyer, time_ms);"
          "CREATE INDEX carbon_trades_seller ON carbon_trades (seller,"
          " time_ms);"
          "CREATE INDEX carbon_trades_symbol ON carbon_trades (symbol,"
          " time_ms);"
          "UPDATE gm_schema SET version = 1 WHERE market = 'carbon';"
          "COMMIT;",
          NULL, NULL, &err) == SQLITE_OK,
      "%s", err ? err : "");
  sqlite3_close(db);
  gm_test_gmd_restart(ct_gmd);
  gm_test_conn_destroy(&ct_conn);
  ct_conn = gm_test_conn_new(gm_test_gmd_endpoint(ct_gmd), NULL, NULL, NULL);
  ct_clock(t0 + 100); /* a restarted gmd's clock starts at t0 */
  ck_assert_int_eq(ct_ledger_int("SELECT version FROM gm_schema"
                                 " WHERE market = 'carbon'"),
                   2);
  ck_assert_int_eq(ct_ledger_int("SELECT count(*) FROM carbon_trades"
                                 " WHERE seq % 10 = 0"),
                   6);
  /* A cursor the release before returned ("<time_ms>.<trade id>.<seal>",
     as records.c sealed it then): refused, saying why and how to go on. */
  char old[256], body[64], nums[64];
  snprintf(body, sizeof body, SYM ":T000000000002");
  int k = snprintf(nums, sizeof nums, "%lld %lld %lld",
                   (long long)ct_at(CT_MONDAY, 0, 0), 0LL, (long long)t0 + 1);
  uint64_t h = fnv(0xcbf29ce484222325ULL, "alice", 6);
  h = fnv(fnv(fnv(h, "", 1), nums, (size_t)k + 1), body, strlen(body) + 1);
  snprintf(old, sizeof old, "%lld.%s.%016llx", (long long)t0 + 1, body,
           (unsigned long long)h);
  Gm__Carbon__TradesRequest tr = GM__CARBON__TRADES_REQUEST__INIT;
  tr.from_ms = ct_at(CT_MONDAY, 0, 0);
  tr.limit = 2;
  tr.cursor = old;
  ct_expect("alice", "records.trades", &tr.base, GM__STATUS__INVALID_ARGUMENT,
            "is one an earlier release of the broker returned");
  ct_expect("alice", "records.trades", &tr.base, GM__STATUS__INVALID_ARGUMENT,
            "start again from the first page without a cursor");
  /* The first page here, the second after a restart, the third on another
     broker that does not settle. */
  char cursor[256] = "", ids[8][48];
  size_t n = 0;
  cursor_page(ct_conn, cursor, ids, &n);
  ck_assert_msg(cursor[0] == 't', "%s", cursor);
  gm_test_gmd_kill9(ct_gmd);
  gm_test_gmd_restart(ct_gmd);
  gm_test_conn_destroy(&ct_conn);
  ct_conn = gm_test_conn_new(gm_test_gmd_endpoint(ct_gmd), NULL, NULL, NULL);
  cursor_page(ct_conn, cursor, ids, &n);
  ck_assert(cursor[0]);
  char conf[512];
  snprintf(conf, sizeof conf,
           "[testing]\nclock = manual\nclock_start_ms = %lld\n"
           "[plugins]\nload = carbon\n[settle]\nsettle = never\n",
           (long long)t0);
  gm_test_gmd *other =
      gm_test_gmd_start_named(ct_redis, "other", GM_BUILD_PLUGIN_DIR, conf);
  gm_test_conn *oc =
      gm_test_conn_new(gm_test_gmd_endpoint(other), NULL, NULL, NULL);
  cursor_page(oc, cursor, ids, &n);
  gm_test_conn_destroy(&oc);
  gm_test_gmd_stop(&other);
  ck_assert_str_eq(cursor, "");
  ck_assert_int_eq(n, 6);
  for (size_t i = 0; i < n; i++) {
    char want[48];
    snprintf(want, sizeof want, SYM ":T%012zx", i + 1);
    ck_assert_str_eq(ids[i], want);
  }
}
END_TEST

START_TEST(old_and_packed_outbox_entries_settle) {
  redisContext *rc = gm_test_redis_connect(ct_redis);
  static const char stream[] = "gm:{carbon:" SYM "}:outbox";
  freeReplyObject(gm_test_redis_cmd(
      rc,
      "XADD %s * kind order id 0000000000a1 who alice side b px 8500 qty 20 "
      "left 5 filled 15 st 2 why %s tif 0 t 1772416800000",
      stream, ""));
  freeReplyObject(gm_test_redis_cmd(
      rc,
      "XADD %s * kind trade id T0000000000a1 buyer alice seller bob bo "
      "0000000000a1 so 0000000000a2 px 8500 qty 15 amt 127500 maker s t "
      "1772416800000 blk 0 day 20514",
      stream));
  freeReplyObject(gm_test_redis_cmd(
      rc, "XADD %s * kind order r %s", stream,
      "1|0000000000a3|bob|s|8600|30|0|0|4|0|1772416800000|cancelled by "
      "root|ops"));
  redisFree(rc);
  ck_assert_int_eq(
      ct_ledger_wait("SELECT count(*) FROM carbon_orders WHERE order_id ="
                     " '" SYM ":0000000000a1' AND participant = 'alice' AND"
                     " side = 'b' AND quantity = 20 AND remaining = 5 AND"
                     " filled = 15 AND state = 2 AND reason = '' AND tif = 0"
                     " AND updated_ms = 1772416800000",
                     1),
      1);
  ck_assert_int_eq(
      ct_ledger_wait("SELECT count(*) FROM carbon_trades WHERE trade_id ="
                     " '" SYM ":T0000000000a1' AND buyer = 'alice' AND"
                     " seller = 'bob' AND amount = 127500 AND day = 20514"
                     " AND block = 0 AND time_ms = 1772416800000 AND"
                     " maker_side = 's' AND price = 8500 AND quantity = 15",
                     1),
      1);
  ck_assert_int_eq(
      ct_ledger_wait("SELECT count(*) FROM carbon_orders WHERE order_id ="
                     " '" SYM ":0000000000a3' AND participant = 'bob' AND"
                     " price = 8600 AND quantity = 30 AND state = 4 AND"
                     " reason = 'cancelled by root|ops'",
                     1),
      1);
  /* This build's layout: one entry per script call (kind order, r "2":
     CARBON_EV_CALL), its records settled in their order (the order's last
     record is its state). */
  rc = gm_test_redis_connect(ct_redis);
  freeReplyObject(gm_test_redis_cmd(
      rc, "XADD %s * kind order r 2 order %s trade %s order %s", stream,
      "1|0000000000a4|alice|b|8600|10|4|6|2|0|1772416800000|",
      "1|T0000000000a4|alice|bob|0000000000a4|0000000000a5|8600|6|51600|s|0|"
      "20514|1772416800000",
      "1|0000000000a4|alice|b|8600|10|0|10|3|0|1772416800000|"));
  redisFree(rc);
  ck_assert_int_eq(
      ct_ledger_wait("SELECT count(*) FROM carbon_trades WHERE trade_id ="
                     " '" SYM ":T0000000000a4' AND buyer = 'alice' AND"
                     " seller = 'bob' AND amount = 51600 AND quantity = 6",
                     1),
      1);
  ck_assert_int_eq(
      ct_ledger_wait("SELECT count(*) FROM carbon_orders WHERE order_id ="
                     " '" SYM ":0000000000a4' AND remaining = 0 AND"
                     " filled = 10 AND state = 3",
                     1),
      1);
}
END_TEST

/* Each script keeps an instrument's rules across calls under its creation's
 * rules version (lib.lua, inst_load): an instrument deleted and created again
 * with other rules is traded by its new rules at once; one without a
 * version (created before them) is read whole and gets one at its close. */
START_TEST(cached_rules_follow_the_instrument) {
  ct_create("RE-1", 8500);
  ct_deposit("bob", "RE-1", 0, 1000);
  ct_free(ct_limit("bob", "RE-1", CT_SELL, 8500, 3, CT_GTC));
  redisContext *rc = gm_test_redis_connect(ct_redis);
  /* Kept a hash table (lib.lua, INST_PAD): no walk of a listpack per field. */
  redisReply *enc = gm_test_redis_cmd(rc, "OBJECT ENCODING gm:{carbon:RE-1}:i");
  ck_assert_str_eq(enc->str, "hashtable");
  freeReplyObject(enc);
  /* So is the resting orders' hash from its first order (lib.lua,
     book_add): the order and the padding field '-'. */
  enc = gm_test_redis_cmd(rc, "OBJECT ENCODING gm:{carbon:RE-1}:o");
  ck_assert_str_eq(enc->str, "hashtable");
  freeReplyObject(enc);
  ck_assert_int_eq(gm_test_redis_int(rc, "HLEN gm:{carbon:RE-1}:o"), 2);
  /* And the level hashes from the instrument's creation (admin.lua). */
  enc = gm_test_redis_cmd(rc, "OBJECT ENCODING gm:{carbon:RE-1}:lq:s");
  ck_assert_str_eq(enc->str, "hashtable");
  freeReplyObject(enc);
  ck_assert_int_eq(gm_test_redis_int(rc, "HGET gm:{carbon:RE-1}:lq:s 8500"), 3);
  freeReplyObject(gm_test_redis_cmd(rc, "DEL gm:{carbon:RE-1}:i"));
  Gm__Carbon__Instrument in = GM__CARBON__INSTRUMENT__INIT;
  Gm__Carbon__CreateInstrumentRequest cr =
      GM__CARBON__CREATE_INSTRUMENT_REQUEST__INIT;
  in.symbol = "RE-1";
  in.reference_price = 8500;
  in.lot = 10;
  cr.instrument = &in;
  ProtobufCMessage *m = ct_call("root", "instrument.create", &cr.base);
  ck_assert_msg(m, "%s", ct_message);
  protobuf_c_message_free_unpacked(m, NULL);
  Gm__Carbon__PlaceRequest pr = GM__CARBON__PLACE_REQUEST__INIT;
  pr.symbol = "RE-1";
  pr.side = CT_SELL;
  pr.price = 8500;
  pr.quantity = 3;
  pr.tif = CT_GTC;
  ct_expect("bob", "order.place", &pr.base, GM__STATUS__INVALID_ARGUMENT,
            "not a multiple of the lot 10");
  /* Without a rules version: still its rules (read whole each call). */
  freeReplyObject(gm_test_redis_cmd(rc, "HDEL gm:{carbon:RE-1}:i rv"));
  ct_expect("bob", "order.place", &pr.base, GM__STATUS__INVALID_ARGUMENT,
            "not a multiple of the lot 10");
  ct_free(ct_limit("bob", "RE-1", CT_SELL, 8500, 10, CT_GTC));
  ct_clock(ct_at(CT_MONDAY, 15, 0));
  Gm__Carbon__CloseRequest r = GM__CARBON__CLOSE_REQUEST__INIT;
  r.symbol = "RE-1";
  m = ct_call("root", "records.close", &r.base);
  ck_assert_msg(m, "records.close: %s", ct_message);
  protobuf_c_message_free_unpacked(m, NULL);
  redisReply *rv = gm_test_redis_cmd(rc, "HGET gm:{carbon:RE-1}:i rv");
  ck_assert_int_eq(rv->type, REDIS_REPLY_STRING);
  freeReplyObject(rv);
  redisFree(rc);
}
END_TEST

/* The day's statistics a script keeps between calls (lib.lua, inst_load)
 * give way to those another broker wrote with its trade (an older build:
 * the statistics and tseq, nothing else). */
START_TEST(kept_statistics_follow_other_writers) {
  ct_free(ct_limit("bob", SYM, CT_SELL, 8500, 10, CT_GTC));
  ct_free(ct_limit("alice", SYM, CT_BUY, 8500, 10, CT_GTC));
  redisContext *rc = gm_test_redis_connect(ct_redis);
  freeReplyObject(gm_test_redis_cmd(
      rc, "HSET gm:{carbon:" SYM "}:i vol 1010 turn 8585000 ntr 2 high 8600"));
  freeReplyObject(
      gm_test_redis_cmd(rc, "HINCRBY gm:{carbon:" SYM "}:i tseq 1"));
  redisFree(rc);
  ct_free(ct_limit("bob", SYM, CT_SELL, 8500, 5, CT_GTC));
  ct_free(ct_limit("alice", SYM, CT_BUY, 8500, 5, CT_GTC));
  Gm__Carbon__StatsRequest sr = GM__CARBON__STATS_REQUEST__INIT;
  sr.symbol = SYM;
  Gm__Carbon__Stats *st =
      (Gm__Carbon__Stats *)ct_call("root", "market.stats", &sr.base);
  ck_assert_msg(st, "%s", ct_message);
  ck_assert_int_eq(st->volume, 1015);
  ck_assert_int_eq(st->turnover, 8585000 + 5 * 8500);
  ck_assert_int_eq(st->trades, 3);
  ck_assert_int_eq(st->high, 8600);
  ct_free(st);
}
END_TEST

/* The fields that change without a trade (halt, its reason, the reference
 * price) are read on every call whoever wrote them (lib.lua, inst_cached:
 * IVAL), so rules kept across calls never let an order through a halt or
 * a band another writer (an older build, an operator) set meanwhile. */
START_TEST(kept_rules_see_halt_and_reference_written_elsewhere) {
  ct_free(ct_limit("bob", SYM, CT_SELL, 8500, 10, CT_GTC));
  redisContext *rc = gm_test_redis_connect(ct_redis);
  freeReplyObject(gm_test_redis_cmd(
      rc, "HSET gm:{carbon:" SYM "}:i halt 1 hreason %s", "ops check"));
  Gm__Carbon__PlaceRequest pr = GM__CARBON__PLACE_REQUEST__INIT;
  pr.symbol = SYM;
  pr.side = CT_SELL;
  pr.price = 8500;
  pr.quantity = 10;
  pr.tif = CT_GTC;
  ct_expect("bob", "order.place", &pr.base, GM__STATUS__FAILED_PRECONDITION,
            "is halted (ops check)");
  freeReplyObject(gm_test_redis_cmd(
      rc, "HSET gm:{carbon:" SYM "}:i halt 0 hreason %s ref 20000", ""));
  redisFree(rc);
  ct_expect("bob", "order.place", &pr.base, GM__STATUS__INVALID_ARGUMENT,
            "outside today's band");
  pr.price = 20000;
  ProtobufCMessage *m = ct_call("bob", "order.place", &pr.base);
  ck_assert_msg(m, "%s", ct_message);
  protobuf_c_message_free_unpacked(m, NULL);
}
END_TEST

/* Packed entries this build cannot read (a layout version it does not
 * know, a record of its own version cut short) are not guessed at: they
 * are set aside in gm_dead_letter, nothing of them reaches carbon_orders,
 * and the entries after them settle. */
START_TEST(unknown_packed_layouts_are_set_aside) {
  redisContext *rc = gm_test_redis_connect(ct_redis);
  static const char stream[] = "gm:{carbon:" SYM "}:outbox";
  freeReplyObject(gm_test_redis_cmd(
      rc, "XADD %s * kind order r %s", stream,
      "2|0000000000c1|bob|s|8600|30|0|0|4|0|1772416800000|x"));
  freeReplyObject(gm_test_redis_cmd(rc, "XADD %s * kind order r %s", stream,
                                    "1|0000000000c2|bob|s"));
  /* A call's entry with a field this build does not know: none of its
     records settles. */
  freeReplyObject(gm_test_redis_cmd(
      rc, "XADD %s * kind order r 2 order %s offer %s", stream,
      "1|0000000000c4|bob|s|8600|30|0|0|4|0|1772416800000|", "x"));
  freeReplyObject(
      gm_test_redis_cmd(rc, "XADD %s * kind order r %s", stream,
                        "1|0000000000c3|bob|s|8600|30|0|0|4|0|1772416800000|"));
  redisFree(rc);
  /* Three entries set aside, each after its retries: up to 30 s. */
  static const char c3[] =
      "SELECT count(*) FROM carbon_orders WHERE order_id ="
      " '" SYM ":0000000000c3' AND state = 4";
  for (int i = 0; i < 3 && ct_ledger_int(c3) != 1; i++) ct_ledger_wait(c3, 1);
  ck_assert_int_eq(ct_ledger_int(c3), 1);
  ck_assert_int_eq(ct_ledger_int("SELECT count(*) FROM gm_dead_letter WHERE"
                                 " kind = 'order'"),
                   3);
  ck_assert_int_eq(ct_ledger_int("SELECT count(*) FROM carbon_orders WHERE"
                                 " order_id IN ('" SYM ":0000000000c1', '" SYM
                                 ":0000000000c2', '" SYM ":0000000000c4')"),
                   0);
}
END_TEST

/* A call's entry (kind order, r "2") settles all or none: a record that
 * fails after good ones (a trade cut short, last) leaves none of them in
 * the ledger, and the entry is set aside whole.  A call's entry an earlier
 * settler set aside (docs/carbon.md, the upgrade) settles on replay, its
 * records in their order. */
START_TEST(call_entries_settle_all_or_none_and_replay) {
  static const char stream[] = "gm:{carbon:" SYM "}:outbox";
  redisContext *rc = gm_test_redis_connect(ct_redis);
  freeReplyObject(gm_test_redis_cmd(
      rc, "XADD %s * kind order r 2 order %s trade %s trade %s", stream,
      "1|0000000000d1|alice|b|8600|10|4|6|2|0|1772416800000|",
      "1|T0000000000d1|alice|bob|0000000000d1|0000000000d2|8600|6|51600|s|0|"
      "20514|1772416800000",
      "1|T0000000000d2|alice|bob"));
  redisFree(rc);
  /* Set aside after its retries: up to 30 s. */
  static const char dl[] = "SELECT count(*) FROM gm_dead_letter";
  for (int i = 0; i < 3 && ct_ledger_int(dl) != 1; i++) ct_ledger_wait(dl, 1);
  ck_assert_int_eq(ct_ledger_int(dl), 1);
  ck_assert_int_eq(ct_ledger_int("SELECT count(*) FROM carbon_orders WHERE"
                                 " order_id = '" SYM ":0000000000d1'"),
                   0);
  ck_assert_int_eq(ct_ledger_int("SELECT count(*) FROM carbon_trades WHERE"
                                 " trade_id = '" SYM ":T0000000000d1'"),
                   0);
  /* Set aside whole: every field, in its order. */
  ck_assert_int_eq(ct_ledger_int("SELECT count(*) FROM gm_dead_letter_field"),
                   4);
  ck_assert_int_eq(ct_ledger_int("SELECT count(*) FROM gm_dead_letter_field"
                                 " WHERE n = 0 AND name = 'r' AND value = '2'"),
                   1);

  /* What a settler of an earlier build leaves: the call's entry in
     gm_dead_letter.  Replayed here, it settles. */
  sqlite3 *db = NULL;
  ck_assert_int_eq(sqlite3_open(gm_test_gmd_ledger(ct_gmd), &db), SQLITE_OK);
  sqlite3_busy_timeout(db, 10000);
  char *err = NULL;
  int rv = sqlite3_exec(
      db,
      "INSERT INTO gm_dead_letter(stream, id, market, kind, error, failures,"
      " set_aside_ms) VALUES('gm:{carbon:" SYM
      "}:outbox', '1-0', 'carbon',"
      " 'order', 'a layout this build does not know', 5, 1);"
      "INSERT INTO gm_dead_letter_field VALUES('gm:{carbon:" SYM
      "}:outbox', '1-0', 0, 'r', '2');"
      "INSERT INTO gm_dead_letter_field VALUES('gm:{carbon:" SYM
      "}:outbox', '1-0', 1, 'order',"
      " '1|0000000000e1|alice|b|8600|10|4|6|2|0|1772416800000|');"
      "INSERT INTO gm_dead_letter_field VALUES('gm:{carbon:" SYM
      "}:outbox', '1-0', 2, 'trade',"
      " '1|T0000000000e1|alice|bob|0000000000e1|0000000000e2|8600|6|51600|s|"
      "0|20514|1772416800000');"
      "INSERT INTO gm_dead_letter_field VALUES('gm:{carbon:" SYM
      "}:outbox', '1-0', 3, 'order',"
      " '1|0000000000e1|alice|b|8600|10|0|10|3|0|1772416800000|');",
      NULL, NULL, &err);
  ck_assert_msg(rv == SQLITE_OK, "%s", err ? err : "?");
  sqlite3_close(db);
  Gm__ReplayRequest req = GM__REPLAY_REQUEST__INIT;
  req.stream = (char *)stream;
  req.id = "1-0";
  Gm__Reply *r = gm_test_call(ct_conn, "root", "gm", "deadletters.replay",
                              "replay-1-0", &req.base);
  ck_assert_ptr_nonnull(r);
  ck_assert_msg(r->status == GM__STATUS__OK, "%s", r->message);
  gm__reply__free_unpacked(r, NULL);
  ck_assert_int_eq(
      ct_ledger_wait("SELECT count(*) FROM carbon_orders WHERE order_id ="
                     " '" SYM ":0000000000e1' AND remaining = 0 AND"
                     " filled = 10 AND state = 3",
                     1),
      1);
  ck_assert_int_eq(ct_ledger_int("SELECT count(*) FROM carbon_trades WHERE"
                                 " trade_id = '" SYM ":T0000000000e1' AND"
                                 " quantity = 6 AND amount = 51600"),
                   1);
  ck_assert_int_eq(ct_ledger_int("SELECT count(*) FROM gm_dead_letter WHERE"
                                 " id = '1-0'"),
                   0);
}
END_TEST

/* The instrument's outbox entries after `from`: how many, and the
 * kind and first field of the last. */
static int outbox_tail(const char *from, char *kind, size_t kn, size_t *nf) {
  redisContext *rc = gm_test_redis_connect(ct_redis);
  redisReply *r = gm_test_redis_cmd(rc,
                                    "XRANGE gm:{carbon:" SYM
                                    "}:outbox"
                                    " (%s +",
                                    from);
  ck_assert_int_eq(r->type, REDIS_REPLY_ARRAY);
  int n = (int)r->elements;
  if (n > 0) {
    redisReply *f = r->element[n - 1]->element[1];
    snprintf(kind, kn, "%s", f->element[1]->str);
    *nf = f->elements / 2;
  }
  freeReplyObject(r);
  redisFree(rc);
  return n;
}

static void outbox_last_id(char *id, size_t n) {
  redisContext *rc = gm_test_redis_connect(ct_redis);
  redisReply *r =
      gm_test_redis_cmd(rc, "XREVRANGE gm:{carbon:" SYM "}:outbox + - COUNT 1");
  snprintf(id, n, "%s", r->elements ? r->element[0]->element[0]->str : "0-0");
  freeReplyObject(r);
  redisFree(rc);
}

/* Trade ids (tseq + 1, written once per call) stay unique and in order
 * across calls, several fills of one call and block trades; a mass cancel
 * of 101 orders goes out as a call's entry of 100 records and a lone
 * record's entry, and all 101 settle. */
START_TEST(trade_ids_and_entries_across_calls) {
  ct_clock(ct_at(CT_MONDAY, 13, 30));
  ct_free(ct_limit("bob", SYM, CT_SELL, 8600, 10, CT_GTC));
  ct_free(ct_limit("alice", SYM, CT_BUY, 8600, 10, CT_GTC)); /* T1 */
  Gm__Carbon__OfferRequest o =
      ct_offer_request(SYM, CT_SELL, "alice", 8000, 150000);
  Gm__Carbon__BlockOffer *b =
      (Gm__Carbon__BlockOffer *)ct_call("bob", "block.offer", &o.base);
  ck_assert_msg(b, "%s", ct_message);
  ct_deposit("alice", SYM, 1200000000, 0);
  Gm__Carbon__OfferDecision dec = GM__CARBON__OFFER_DECISION__INIT;
  dec.offer_id = b->id;
  Gm__Carbon__BlockOffer *acc =
      (Gm__Carbon__BlockOffer *)ct_call("alice", "block.accept", &dec.base);
  ck_assert_msg(acc, "%s", ct_message);
  ck_assert_str_eq(acc->trade_id, SYM ":T000000000002");
  ct_free(acc);
  ct_free(b);
  for (int i = 0; i < 3; i++)
    ct_free(ct_limit("bob", SYM, CT_SELL, 8600, 10, CT_GTC));
  char from[64];
  /* The settler held back: it trims the entries it settled. */
  ct_ledger_hold();
  outbox_last_id(from, sizeof from);
  Gm__Carbon__PlaceReply *p = ct_limit("alice", SYM, CT_BUY, 8600, 30, CT_GTC);
  ck_assert_int_eq((int)p->n_fills, 3);
  ck_assert_str_eq(p->fills[0]->trade_id, SYM ":T000000000003");
  ck_assert_str_eq(p->fills[2]->trade_id, SYM ":T000000000005");
  ct_free(p);
  /* That call: one entry, r "2" then 3 trades and 4 orders. */
  char kind[32] = "";
  size_t nf = 0;
  ck_assert_int_eq(outbox_tail(from, kind, sizeof kind, &nf), 1);
  ck_assert_str_eq(kind, "order");
  ck_assert_int_eq((int)nf, 1 + 1 + 3 + 4);
  ct_ledger_release();
  ct_free(ct_limit("bob", SYM, CT_SELL, 8600, 10, CT_GTC));
  p = ct_limit("alice", SYM, CT_BUY, 8600, 10, CT_GTC);
  ck_assert_str_eq(p->fills[0]->trade_id, SYM ":T000000000006");
  ct_free(p);
  redisContext *rc = gm_test_redis_connect(ct_redis);
  ck_assert_int_eq(gm_test_redis_int(rc, "HGET gm:{carbon:" SYM "}:i tseq"), 6);
  redisFree(rc);
  ck_assert_int_eq(
      ct_ledger_wait("SELECT count(DISTINCT trade_id) FROM carbon_trades", 6),
      6);
  ck_assert_int_eq(
      ct_ledger_int("SELECT count(*) FROM carbon_trades WHERE"
                    " block = 1 AND trade_id = '" SYM ":T000000000002'"),
      1);

  /* 101 resting orders cancelled in one call: 100 records in a call's
     entry, the 101st in an entry of its own (kind order, r). */
  for (int i = 0; i < 101; i++)
    ct_free(ct_limit("alice", SYM, CT_BUY, 8000, 10, CT_GTC));
  ct_ledger_hold();
  outbox_last_id(from, sizeof from);
  Gm__Carbon__MassCancelRequest mc = GM__CARBON__MASS_CANCEL_REQUEST__INIT;
  mc.symbol = SYM;
  Gm__Carbon__MassCancelReply *m = (Gm__Carbon__MassCancelReply *)ct_call(
      "alice", "order.mass_cancel", &mc.base);
  ck_assert_msg(m, "%s", ct_message);
  ck_assert_int_eq((int)m->n_cancelled, 101);
  ck_assert_int_eq(m->remaining, 0);
  ct_free(m);
  ck_assert_int_eq(outbox_tail(from, kind, sizeof kind, &nf), 2);
  ck_assert_str_eq(kind, "order");
  ck_assert_int_eq((int)nf, 2); /* kind, r */
  ct_ledger_release();
  ck_assert_int_eq(
      ct_ledger_wait("SELECT count(*) FROM carbon_orders WHERE participant ="
                     " 'alice' AND state = 4 AND price = 8000",
                     101),
      101);
  ck_assert_int_eq(ct_ledger_int("SELECT count(*) FROM gm_dead_letter"), 0);
}
END_TEST

int main(void) {
  Suite *s = suite_create("carbon market");
  TCase *tc = tcase_create("market");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, bought_today_is_sellable_next_trading_day);
  tcase_add_test(tc, expiry_and_the_close);
  tcase_add_test(tc, block_trades_by_agreement);
  tcase_add_test(tc, settled_records_reconcile_and_export);
  tcase_add_test(tc, trades_page_exactly_once);
  tcase_add_test(tc, trades_settled_late_are_listed_once);
  tcase_add_test(tc, a_resume_cursor_moves_past_others_trades);
  tcase_add_test(tc, trades_cursor_holds_across_restarts_brokers_and_releases);
  tcase_add_test(tc, old_and_packed_outbox_entries_settle);
  tcase_add_test(tc, cached_rules_follow_the_instrument);
  tcase_add_test(tc, kept_statistics_follow_other_writers);
  tcase_add_test(tc, kept_rules_see_halt_and_reference_written_elsewhere);
  tcase_add_test(tc, unknown_packed_layouts_are_set_aside);
  tcase_add_test(tc, call_entries_settle_all_or_none_and_replay);
  tcase_add_test(tc, trade_ids_and_entries_across_calls);
  suite_add_tcase(s, tc);
#ifdef GM_FAILURE_INJECTION
  TCase *window = tcase_create("late window");
  tcase_add_checked_fixture(window, setup_window, teardown);
  tcase_set_timeout(window, 60);
  tcase_add_test(window, a_late_page_stops_at_the_bound_and_resumes);
  suite_add_tcase(s, window);
#endif
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
