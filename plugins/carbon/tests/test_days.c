/*
 * Days missed by the end-of-day sweep: when no broker ran over several
 * closes, every missed trading day is closed in turn, oldest first, each
 * with its own close and reference price, after the DAY orders and block
 * offers of that day expired; weekends and holidays are skipped, and one
 * sweep closes at most 16 days (the next carries on).  The instrument's day
 * deadline drives it; tests of records.close keep the deadlines away with
 * an hour between polls (the first poll, at start-up, finds nothing due).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "harness.h"

#define SYM "CEA-GAP"

static void teardown(void) {
  ct_stop();
}

/* gmd with `conf`; SYM with a holiday on Wednesday 2026-03-04; funded. */
static void start(const char *conf) {
  ct_start(conf, ct_at(CT_MONDAY, 10, 0));
  Gm__Carbon__Instrument in = GM__CARBON__INSTRUMENT__INIT;
  Gm__Carbon__CreateInstrumentRequest cr =
      GM__CARBON__CREATE_INSTRUMENT_REQUEST__INIT;
  char *hol[] = {"2026-03-04"};
  in.symbol = SYM;
  in.reference_price = 8500;
  in.holidays = hol;
  in.n_holidays = 1;
  cr.instrument = &in;
  Gm__Carbon__Instrument *made =
      (Gm__Carbon__Instrument *)ct_call("root", "instrument.create", &cr.base);
  ck_assert_msg(made, "instrument.create: %s", ct_message);
  ct_free(made);
  ct_register("alice", "buyer,seller");
  ct_register("bob", "buyer,seller");
  ct_deposit("alice", SYM, 100000000, 0);
  ct_deposit("bob", SYM, 100000000, 300000);
}

/* One listing trade of bob's `qty` t to alice at `px`. */
static void trade(int64_t px, int64_t qty) {
  ct_free(ct_limit("bob", SYM, CT_SELL, px, qty, CT_GTC));
  Gm__Carbon__PlaceReply *r = ct_limit("alice", SYM, CT_BUY, px, qty, CT_GTC);
  ck_assert_int_eq((int)r->n_fills, 1);
  ct_free(r);
}

static Gm__Carbon__CloseReply *close_days(void) {
  Gm__Carbon__CloseRequest r = GM__CARBON__CLOSE_REQUEST__INIT;
  r.symbol = SYM;
  Gm__Carbon__CloseReply *c =
      (Gm__Carbon__CloseReply *)ct_call("root", "records.close", &r.base);
  ck_assert_msg(c, "records.close: %s", ct_message);
  return c;
}

static int64_t reference(void) {
  Gm__Carbon__StatsRequest sr = GM__CARBON__STATS_REQUEST__INIT;
  sr.symbol = SYM;
  Gm__Carbon__Stats *st =
      (Gm__Carbon__Stats *)ct_call("root", "market.stats", &sr.base);
  ck_assert_msg(st, "market.stats: %s", ct_message);
  int64_t ref = st->reference_price;
  ct_free(st);
  return ref;
}

/* The settled close of `day` as "close/volume/from_trades", or "none". */
static const char *settled(const char *day, char *buf, size_t len) {
  char sql[256];
  snprintf(sql, sizeof sql,
           "SELECT close * 1000000 + volume * 10 + from_trades FROM "
           "carbon_closes WHERE symbol = '" SYM "' AND day = '%s'",
           day);
  int64_t v = ct_ledger_int(sql);
  if (v < 0) return strcpy(buf, "none");
  snprintf(buf, len, "%lld/%lld/%lld", (long long)(v / 1000000),
           (long long)(v % 1000000 / 10), (long long)(v % 10));
  return buf;
}

/*
 * No broker's clock passed a close from Monday's trading to the next Monday:
 * the instrument's deadline, due at Monday's close, then fires and closes
 * Monday (VWAP), Tuesday, Thursday and Friday (the previous close), skips
 * the holiday and the weekend, and expires Monday's DAY order and block
 * offer before Monday's close.
 */
START_TEST(the_deadline_closes_every_missed_day) {
  char buf[64];
  start(NULL);
  trade(8600, 100);
  trade(8700, 300); /* VWAP (8600 x 100 + 8700 x 300) / 400 = 8675 */
  Gm__Carbon__PlaceReply *day = ct_limit("alice", SYM, CT_BUY, 8000, 10,
                                         GM__CARBON__TIME_IN_FORCE__TIF_DAY);
  char day_id[64];
  snprintf(day_id, sizeof day_id, "%s", day->order->id);
  ct_free(day);
  ct_clock(ct_at(CT_MONDAY, 13, 30));
  Gm__Carbon__OfferRequest o =
      ct_offer_request(SYM, CT_SELL, "alice", 8500, 100000);
  Gm__Carbon__BlockOffer *b =
      (Gm__Carbon__BlockOffer *)ct_call("bob", "block.offer", &o.base);
  ck_assert_msg(b, "block.offer: %s", ct_message);
  char offer_id[64];
  snprintf(offer_id, sizeof offer_id, "%s", b->id);
  ct_free(b);

  /* The clock jumps to the next Monday morning: no deadline fired over any
   * of the week's closes, as if gmd had been down. */
  ct_clock(ct_at("2026-03-09", 9, 0));

  ck_assert_int_eq(ct_ledger_wait("SELECT count(*) FROM carbon_closes WHERE"
                                  " symbol = '" SYM "'",
                                  4),
                   4);
  ck_assert_str_eq(settled("2026-03-02", buf, sizeof buf), "8675/400/1");
  ck_assert_str_eq(settled("2026-03-03", buf, sizeof buf), "8675/0/0");
  ck_assert_str_eq(settled("2026-03-04", buf, sizeof buf), "none");
  ck_assert_str_eq(settled("2026-03-05", buf, sizeof buf), "8675/0/0");
  ck_assert_str_eq(settled("2026-03-06", buf, sizeof buf), "8675/0/0");
  ck_assert_str_eq(settled("2026-03-07", buf, sizeof buf), "none");
  ck_assert_str_eq(settled("2026-03-09", buf, sizeof buf), "none");
  ck_assert_int_eq(reference(), 8675);
  /* Closed by the deadline's callback (records.close logs nothing). */
  ck_assert(
      gm_test_gmd_log_has(ct_gmd, SYM " closed 2026-03-02 at 86.75 yuan"));
  /* Monday's DAY order and block offer expired, and released. */
  char sql[256];
  snprintf(sql, sizeof sql,
           "SELECT state FROM carbon_orders WHERE order_id = '%s'", day_id);
  ck_assert_int_eq(ct_ledger_wait(sql, 5), 5);
  snprintf(sql, sizeof sql,
           "SELECT state FROM carbon_offers WHERE offer_id = '%s'", offer_id);
  ck_assert_int_eq(ct_ledger_wait(sql, 5), 5);
  Gm__Carbon__Account *a = ct_account("alice", SYM);
  ck_assert_int_eq(a->cash_frozen, 0);
  ck_assert_int_eq(a->allowances, 400); /* Monday's purchase is sellable */
  ct_free(a);
  a = ct_account("bob", SYM);
  ck_assert_int_eq(a->allowances_frozen, 0);
  ck_assert_int_eq(a->allowances, 300000 - 400);
  ct_free(a);
  /* Closing again: the latest closed day, nothing new. */
  Gm__Carbon__CloseReply *c = close_days();
  ck_assert_int_eq((int)c->n_closes, 1);
  ck_assert_str_eq(c->closes[0]->day, "2026-03-06");
  ck_assert(c->closes[0]->already);
  ck_assert_int_eq(c->closes[0]->volume, 0);
  ck_assert(!c->closes[0]->from_trades);
  ct_free(c);
}
END_TEST

/*
 * Trading went on while nothing closed Monday (no deadline polled):
 * Tuesday's trades
 * replace Monday's day statistics, yet Monday closes at its own VWAP, then
 * Tuesday at its own, in that order, so Tuesday's close is the reference.
 */
START_TEST(a_day_traded_after_a_missed_close_keeps_its_own_close) {
  char buf[64];
  start("[deadlines]\npoll_ms = 3600000\n");
  trade(8600, 100);
  ct_clock(ct_at("2026-03-03", 10, 0));
  trade(8800, 200);
  trade(8900, 200); /* Tuesday's VWAP 8850 */
  ct_clock(ct_at("2026-03-03", 15, 30));
  Gm__Carbon__CloseReply *c = close_days();
  ck_assert_int_eq((int)c->n_closes, 2);
  ck_assert_str_eq(c->closes[0]->day, "2026-03-02");
  ck_assert_int_eq(c->closes[0]->close, 8600);
  ck_assert_int_eq(c->closes[0]->volume, 100);
  ck_assert(c->closes[0]->from_trades);
  ck_assert(!c->closes[0]->already);
  ck_assert_str_eq(c->closes[1]->day, "2026-03-03");
  ck_assert_int_eq(c->closes[1]->close, 8850);
  ck_assert_int_eq(c->closes[1]->volume, 400);
  ck_assert(c->closes[1]->from_trades);
  ct_free(c);
  ck_assert_int_eq(reference(), 8850);
  /* A day closed before is reported as it was closed: its volume and basis
   * too, also once the next day traded. */
  ct_clock(ct_at("2026-03-04", 10, 0)); /* the holiday: nothing to close */
  c = close_days();
  ck_assert_int_eq((int)c->n_closes, 1);
  ck_assert(c->closes[0]->already);
  ck_assert_str_eq(c->closes[0]->day, "2026-03-03");
  ck_assert_int_eq(c->closes[0]->close, 8850);
  ck_assert_int_eq(c->closes[0]->volume, 400);
  ck_assert(c->closes[0]->from_trades);
  ct_free(c);
  ct_clock(ct_at("2026-03-05", 10, 0));
  trade(8900, 10);
  c = close_days();
  ck_assert_int_eq((int)c->n_closes, 1);
  ck_assert(c->closes[0]->already);
  ck_assert_str_eq(c->closes[0]->day, "2026-03-03");
  ck_assert_int_eq(c->closes[0]->volume, 400);
  ck_assert(c->closes[0]->from_trades);
  ct_free(c);
  ck_assert_int_eq(ct_ledger_wait("SELECT count(*) FROM carbon_closes", 2), 2);
  ck_assert_str_eq(settled("2026-03-02", buf, sizeof buf), "8600/100/1");
  ck_assert_str_eq(settled("2026-03-03", buf, sizeof buf), "8850/400/1");
  /* Nothing is kept for closed days. */
  redisContext *rc = gm_test_redis_connect(ct_redis);
  ck_assert_int_eq(gm_test_redis_int(rc, "HLEN gm:{carbon:" SYM "}:dv"), 0);
  redisFree(rc);
}
END_TEST

/*
 * Five weeks without a close (24 trading days, the holiday skipped): one
 * records.close closes 16 of them, the next the other 8, then nothing.
 */
START_TEST(one_sweep_closes_at_most_16_days) {
  start("[deadlines]\npoll_ms = 3600000\n");
  ct_clock(ct_at("2026-04-03", 16, 0)); /* a Friday, five weeks on */
  Gm__Carbon__CloseReply *c = close_days();
  ck_assert_int_eq((int)c->n_closes, 16);
  ck_assert_str_eq(c->closes[0]->day, "2026-03-02");
  ck_assert_str_eq(c->closes[1]->day, "2026-03-03");
  ck_assert_str_eq(c->closes[2]->day, "2026-03-05");
  ck_assert_str_eq(c->closes[15]->day, "2026-03-24");
  for (size_t i = 0; i < c->n_closes; i++) {
    ck_assert(!c->closes[i]->already);
    ck_assert_int_eq(c->closes[i]->close, 8500);
  }
  ct_free(c);
  c = close_days();
  ck_assert_int_eq((int)c->n_closes, 8);
  ck_assert_str_eq(c->closes[0]->day, "2026-03-25");
  ck_assert_str_eq(c->closes[7]->day, "2026-04-03");
  ct_free(c);
  c = close_days();
  ck_assert_int_eq((int)c->n_closes, 1);
  ck_assert(c->closes[0]->already);
  ck_assert_str_eq(c->closes[0]->day, "2026-04-03");
  ct_free(c);
  ck_assert_int_eq(ct_ledger_wait("SELECT count(*) FROM carbon_closes", 24),
                   24);
}
END_TEST

/* The instrument's day deadline, ms; -1 when it has none. */
static long long day_due(void) {
  redisContext *rc = gm_test_redis_connect(ct_redis);
  redisReply *r =
      gm_test_redis_cmd(rc, "ZSCORE gm:{carbon:" SYM "}:dl day|" SYM);
  long long v = r->type == REDIS_REPLY_STRING ? atoll(r->str) : -1;
  freeReplyObject(r);
  redisFree(rc);
  return v;
}

/* Waits (up to 10 s) until the day deadline is `want`; returns it. */
static long long wait_day_due(long long want) {
  long long v = -1;
  for (int i = 0; i < 1000 && (v = day_due()) != want; i++) {
    struct timespec ts = {0, 10 * 1000 * 1000};
    nanosleep(&ts, NULL);
  }
  return v;
}

static char *gtd(int64_t expire_ms, char *id, size_t len) {
  Gm__Carbon__PlaceRequest q = GM__CARBON__PLACE_REQUEST__INIT;
  q.symbol = SYM;
  q.side = CT_BUY;
  q.price = 8100;
  q.quantity = 10;
  q.tif = GM__CARBON__TIME_IN_FORCE__TIF_GTD;
  q.expire_ms = expire_ms;
  Gm__Carbon__PlaceReply *r =
      (Gm__Carbon__PlaceReply *)ct_call("alice", "order.place", &q.base);
  ck_assert_msg(r, "GTD order: %s", ct_message);
  snprintf(id, len, "%s", r->order->id);
  ct_free(r);
  return id;
}

/* Waits until the ledger has order id in state 5 (expired). */
static void expect_expired(const char *id) {
  char sql[256];
  snprintf(sql, sizeof sql,
           "SELECT state FROM carbon_orders WHERE order_id = '%s'", id);
  ck_assert_int_eq(ct_ledger_wait(sql, 5), 5);
}

/*
 * No timer: the instrument's one deadline says when its next end-of-day
 * event is due, moved by the orders that need it earlier and by every
 * expiry and close, and only the manual clock passing it makes anything
 * happen.  A GTD order expiring before the close brings it forward and
 * expires on time; the DAY order expires at the close and the day closes
 * at its VWAP; a GTD order expiring after the close is next; then the next
 * trading day's close (the holiday skipped on Wednesday).
 */
START_TEST(the_day_deadline_drives_expiry_and_the_close) {
  char buf[64], g11[64], g16[64], day_id[64];
  start(NULL);
  ck_assert_int_eq(day_due(), ct_at(CT_MONDAY, 15, 0));
  trade(8600, 100);
  Gm__Carbon__PlaceReply *day = ct_limit("alice", SYM, CT_BUY, 8000, 10,
                                         GM__CARBON__TIME_IN_FORCE__TIF_DAY);
  snprintf(day_id, sizeof day_id, "%s", day->order->id);
  ct_free(day);
  ck_assert_int_eq(day_due(), ct_at(CT_MONDAY, 15, 0));
  gtd(ct_at(CT_MONDAY, 16, 0), g16, sizeof g16); /* after the close */
  ck_assert_int_eq(day_due(), ct_at(CT_MONDAY, 15, 0));
  gtd(ct_at(CT_MONDAY, 11, 0), g11, sizeof g11); /* before: forward */
  ck_assert_int_eq(day_due(), ct_at(CT_MONDAY, 11, 0));

  ct_clock(ct_at(CT_MONDAY, 11, 0));
  expect_expired(g11);
  ck_assert_int_eq(wait_day_due(ct_at(CT_MONDAY, 15, 0)),
                   ct_at(CT_MONDAY, 15, 0));
  ck_assert_str_eq(settled("2026-03-02", buf, sizeof buf), "none");

  ct_clock(ct_at(CT_MONDAY, 15, 0));
  expect_expired(day_id);
  ck_assert_int_eq(ct_ledger_wait("SELECT count(*) FROM carbon_closes", 1), 1);
  ck_assert_str_eq(settled("2026-03-02", buf, sizeof buf), "8600/100/1");
  ck_assert_int_eq(reference(), 8600);
  ck_assert_int_eq(wait_day_due(ct_at(CT_MONDAY, 16, 0)),
                   ct_at(CT_MONDAY, 16, 0));

  ct_clock(ct_at(CT_MONDAY, 16, 0));
  expect_expired(g16);
  ck_assert_int_eq(wait_day_due(ct_at("2026-03-03", 15, 0)),
                   ct_at("2026-03-03", 15, 0));
  ct_clock(ct_at("2026-03-03", 15, 0));
  ck_assert_int_eq(ct_ledger_wait("SELECT count(*) FROM carbon_closes", 2), 2);
  ck_assert_int_eq(wait_day_due(ct_at("2026-03-05", 15, 0)),
                   ct_at("2026-03-05", 15, 0));
  Gm__Carbon__Account *a = ct_account("alice", SYM);
  ck_assert_int_eq(a->cash_frozen, 0);
  ct_free(a);
}
END_TEST

int main(void) {
  Suite *s = suite_create("carbon days");
  TCase *tc = tcase_create("days");
  tcase_add_checked_fixture(tc, NULL, teardown);
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, the_deadline_closes_every_missed_day);
  tcase_add_test(tc, a_day_traded_after_a_missed_close_keeps_its_own_close);
  tcase_add_test(tc, one_sweep_closes_at_most_16_days);
  tcase_add_test(tc, the_day_deadline_drives_expiry_and_the_close);
  suite_add_tcase(s, tc);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
