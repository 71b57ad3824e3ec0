/*
 * Bounded work per call for a trader with thousands of open orders:
 * order.list pages with a cursor, order.mass_cancel walks the orders at most
 * mass_cancel_max per call (with and without a side), and records.reconcile
 * reads the accounts in runs of reconcile_page.  Through gmd and a real
 * Redis; the walks are checked against the ids order.place returned.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

#define SYM "CEA-2025"
#define SYM2 "CEA-2026"
/* Each trader in these tests rests this many orders: half buys, half sells. */
#define N_ORDERS 2500
#define CASH 100000000 /* 1,000,000 yuan */
#define ALW 100000

static void setup(void) {
  ct_start("mass_cancel_max = 1000\nreconcile_page = 50",
           ct_at(CT_MONDAY, 10, 0));
  ct_register("alice", "buyer,seller");
  ct_register("bob", "buyer,seller");
  ct_create(SYM, 8500); /* band 76.50 - 93.50 yuan */
  ct_create(SYM2, 8500);
  ct_deposit("alice", SYM, CASH, ALW);
  ct_deposit("alice", SYM2, CASH, ALW);
  ct_deposit("bob", SYM, CASH, ALW);
}

static void teardown(void) {
  ct_stop();
}

/* A set of order ids (strings owned by the set), kept sorted for lookup. */
typedef struct ids {
  char **v;
  size_t n, cap;
} ids;

static int ids__cmp(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

static void ids_add(ids *s, const char *id) {
  if (s->n == s->cap) {
    s->cap = s->cap * 2 + 64;
    s->v = realloc(s->v, s->cap * sizeof *s->v);
    ck_assert(s->v != NULL);
  }
  s->v[s->n++] = strdup(id);
}

static void ids_sort(ids *s) {
  if (s->n) qsort(s->v, s->n, sizeof *s->v, ids__cmp);
}

static int ids_has(const ids *s, const char *id) {
  return s->n && bsearch(&id, s->v, s->n, sizeof *s->v, ids__cmp) != NULL;
}

/* Distinct ids after sorting: a walk that saw an id twice counts it once. */
static size_t ids_distinct(ids *s) {
  size_t d = 0;
  ids_sort(s);
  for (size_t i = 0; i < s->n; i++) d += i == 0 || strcmp(s->v[i], s->v[i - 1]);
  return d;
}

static void ids_free(ids *s) {
  for (size_t i = 0; i < s->n; i++) free(s->v[i]);
  free(s->v);
  *s = (ids){0};
}

/*
 * Rests n orders of `who` in `sym`, pipelined (at most 100 in flight so
 * neither side's queue fills): order i buys when i is even, at 80.00 +
 * (i % 400) fen, else sells at 86.00 + (i % 400) fen, so nothing crosses;
 * quantity 1 + i % 5.  Adds their ids to *out and what they freeze to
 * *cash and *alw.
 */
static void rest_orders(const char *who, const char *sym, int n, ids *out,
                        int64_t *cash, int64_t *alw) {
  static unsigned long seq;
  int sent = 0, got = 0;
  while (got < n) {
    while (sent < n && sent - got < 100) {
      Gm__Carbon__PlaceRequest r = GM__CARBON__PLACE_REQUEST__INIT;
      char idem[64];
      int buy = sent % 2 == 0;
      r.symbol = (char *)sym;
      r.side = buy ? CT_BUY : CT_SELL;
      r.price = (buy ? 8000 : 8600) + sent % 400;
      r.quantity = 1 + sent % 5;
      if (buy)
        *cash += r.price * r.quantity;
      else
        *alw += r.quantity;
      snprintf(idem, sizeof idem, "rest-%s-%lu", who, ++seq);
      gm_test_send(ct_conn, 1000000 + seq, who, "carbon", "order.place", idem,
                   &r.base);
      sent++;
    }
    Gm__Reply *rep = gm_test_conn_recv(ct_conn, 10000);
    ck_assert_msg(rep, "no reply to order %d of %d", got, n);
    ck_assert_msg(rep->status == GM__STATUS__OK, "order.place: %s",
                  rep->message);
    Gm__Carbon__PlaceReply *p =
        gm__carbon__place_reply__unpack(NULL, rep->body.len, rep->body.data);
    ck_assert(p && p->order && p->n_fills == 0);
    ids_add(out, p->order->id);
    gm__carbon__place_reply__free_unpacked(p, NULL);
    gm__reply__free_unpacked(rep, NULL);
    got++;
  }
}

/* One order.list page after `cursor`; adds its ids to *seen and returns
 * next_cursor (malloc'd). */
static char *list_page(const char *who, const char *sym, int limit,
                       const char *cursor, ids *seen) {
  Gm__Carbon__ListOrdersRequest req = GM__CARBON__LIST_ORDERS_REQUEST__INIT;
  req.symbol = (char *)sym;
  req.limit = limit;
  req.cursor = (char *)cursor;
  Gm__Carbon__OrderList *l =
      (Gm__Carbon__OrderList *)ct_call(who, "order.list", &req.base);
  ck_assert_msg(l, "order.list: %s", ct_message);
  ck_assert_msg(l->n_orders <= (size_t)limit, "page of %zu orders > %d",
                l->n_orders, limit);
  for (size_t i = 0; i < l->n_orders; i++) {
    ck_assert_str_eq(l->orders[i]->participant, who);
    ids_add(seen, l->orders[i]->id);
  }
  char *next = strdup(l->next_cursor);
  ct_free(l);
  return next;
}

/* Walks order.list from `cursor` to the end; returns the number of pages. */
static int list_from(const char *who, const char *sym, int limit,
                     const char *cursor, ids *seen) {
  char *next = strdup(cursor);
  int pages = 0;
  do {
    char *c = list_page(who, sym, limit, next, seen);
    free(next);
    next = c;
    ck_assert_msg(++pages < 10000, "order.list never ends");
  } while (next[0]);
  free(next);
  return pages;
}

static int list_all(const char *who, const char *sym, int limit, ids *seen) {
  return list_from(who, sym, limit, "", seen);
}

static int64_t sscan_calls(void) {
  redisContext *rc = gm_test_redis_connect(ct_redis);
  redisReply *r = gm_test_redis_cmd(rc, "INFO commandstats");
  const char *p = strstr(r->str, "cmdstat_sscan:calls=");
  int64_t n = p ? strtoll(p + strlen("cmdstat_sscan:calls="), NULL, 10) : 0;
  freeReplyObject(r);
  redisFree(rc);
  return n;
}

START_TEST(order_list_pages_through_every_order) {
  ids placed = {0}, other = {0}, seen = {0};
  int64_t cash = 0, alw = 0, bcash = 0, balw = 0;
  rest_orders("alice", SYM, N_ORDERS, &placed, &cash, &alw);
  rest_orders("bob", SYM, 40, &other, &bcash, &balw);

  /* Pages of at most 1000, together every order exactly once. */
  int pages = list_all("alice", SYM, 1000, &seen);
  ck_assert_int_ge(pages, 3);
  ck_assert_int_eq(seen.n, N_ORDERS);
  ck_assert_int_eq(ids_distinct(&seen), N_ORDERS);
  ids_sort(&placed);
  for (size_t i = 0; i < seen.n; i++)
    ck_assert_msg(ids_has(&placed, seen.v[i]), "%s is not alice's", seen.v[i]);
  ids_free(&seen);

  /* No limit and no cursor (an old caller): the first page of 100. */
  Gm__Carbon__ListOrdersRequest req = GM__CARBON__LIST_ORDERS_REQUEST__INIT;
  req.symbol = SYM;
  Gm__Carbon__OrderList *l =
      (Gm__Carbon__OrderList *)ct_call("alice", "order.list", &req.base);
  ck_assert_msg(l, "%s", ct_message);
  ck_assert_int_eq(l->n_orders, 100);
  ck_assert_str_ne(l->next_cursor, "");
  char *cursor = strdup(l->next_cursor);
  ct_free(l);

  /* Page bounds and cursors that are not ours are refused, saying why. */
  req.limit = 1001;
  ct_expect("alice", "order.list", &req.base, GM__STATUS__INVALID_ARGUMENT,
            "limit 1001 is out of range: a page holds 1..1000 orders");
  req.limit = -1;
  ct_expect("alice", "order.list", &req.base, GM__STATUS__INVALID_ARGUMENT,
            "limit -1 is out of range");
  req.limit = 0;
  req.cursor = "CEA-2025:12x";
  ct_expect("alice", "order.list", &req.base, GM__STATUS__INVALID_ARGUMENT,
            "is not one order.list returned; pass next_cursor back");
  req.cursor = "CEA-2025:99999999999999999999";
  ct_expect("alice", "order.list", &req.base, GM__STATUS__INVALID_ARGUMENT,
            "is not one order.list returned");
  req.symbol = SYM2;
  req.cursor = cursor;
  ct_expect("alice", "order.list", &req.base, GM__STATUS__INVALID_ARGUMENT,
            "cursor is for CEA-2025, not CEA-2026");
  free(cursor);
  /* A made-up cursor carrying bob's order ids shows none of them. */
  char forged[64];
  snprintf(forged, sizeof forged, "%s:-:%s", SYM, strchr(other.v[0], ':') + 1);
  req.symbol = SYM;
  req.cursor = forged;
  l = (Gm__Carbon__OrderList *)ct_call("alice", "order.list", &req.base);
  ck_assert_msg(l, "%s", ct_message);
  ck_assert_int_eq(l->n_orders, 0);
  ck_assert_str_eq(l->next_cursor, "");
  ct_free(l);

  /* The set grows past a resize of its hash table between two pages: every
   * order open throughout the walk is still seen (some may be seen twice,
   * as SSCAN allows, never more than limit in a page). */
  ids more = {0};
  cursor = list_page("alice", SYM, 500, "", &seen);
  rest_orders("alice", SYM, 2000, &more, &cash, &alw);
  list_from("alice", SYM, 500, cursor, &seen);
  free(cursor);
  ids_sort(&seen);
  for (size_t i = 0; i < placed.n; i++)
    ck_assert_msg(ids_has(&seen, placed.v[i]),
                  "%s was open all along and "
                  "not listed",
                  placed.v[i]);
  ck_assert_int_ge(ids_distinct(&seen), N_ORDERS);
  ck_assert_int_le(ids_distinct(&seen), N_ORDERS + 2000);
  ids_free(&seen);
  for (size_t i = 0; i < more.n; i++) ids_add(&placed, more.v[i]);
  ids_free(&more);

  /* Every instrument: the walk goes on from one instrument to the next. */
  rest_orders("alice", SYM2, 30, &placed, &cash, &alw);
  pages = list_all("alice", "", 333, &seen);
  ck_assert_int_ge(pages, (N_ORDERS + 2030 + 332) / 333);
  ck_assert_int_eq(seen.n, N_ORDERS + 2030);
  ck_assert_int_eq(ids_distinct(&seen), N_ORDERS + 2030);
  ids_free(&seen);
  /* Bob sees his 40 only. */
  ck_assert_int_eq(list_all("bob", "", 7, &seen), (40 + 6) / 7);
  ck_assert_int_eq(ids_distinct(&seen), 40);
  ids_free(&seen);
  ids_free(&placed);
  ids_free(&other);
}
END_TEST

/* One mass cancel call; returns the reply (asserting OK). */
static Gm__Carbon__MassCancelReply *mass_cancel(const char *who,
                                                Gm__Carbon__Side side,
                                                const char *cursor) {
  Gm__Carbon__MassCancelRequest req = GM__CARBON__MASS_CANCEL_REQUEST__INIT;
  req.symbol = SYM;
  req.side = side;
  req.cursor = (char *)cursor;
  Gm__Carbon__MassCancelReply *m = (Gm__Carbon__MassCancelReply *)ct_call(
      who, "order.mass_cancel", &req.base);
  ck_assert_msg(m, "order.mass_cancel: %s", ct_message);
  return m;
}

/* Walks mass cancel to its end; returns the calls it took. */
static int mass_cancel_all(const char *who, Gm__Carbon__Side side,
                           ids *cancelled, int64_t *last_remaining) {
  char *cursor = strdup("");
  int calls = 0;
  do {
    Gm__Carbon__MassCancelReply *m = mass_cancel(who, side, cursor);
    ck_assert_int_le(m->n_cancelled, 1000);
    for (size_t i = 0; i < m->n_cancelled; i++)
      ids_add(cancelled, m->cancelled[i]);
    /* While the walk goes on, remaining never claims there is nothing. */
    if (m->next_cursor[0]) ck_assert_int_gt(m->remaining, 0);
    *last_remaining = m->remaining;
    free(cursor);
    cursor = strdup(m->next_cursor);
    ct_free(m);
    ck_assert_msg(++calls < 100, "mass cancel never ends");
  } while (cursor[0]);
  free(cursor);
  return calls;
}

START_TEST(mass_cancel_takes_bounded_calls_and_releases_everything) {
  ids placed = {0}, cancelled = {0}, other = {0};
  int64_t cash = 0, alw = 0, bcash = 0, balw = 0, remaining = -1;
  rest_orders("alice", SYM, N_ORDERS, &placed, &cash, &alw);
  rest_orders("bob", SYM, 20, &other, &bcash, &balw);
  Gm__Carbon__Account *a = ct_account("alice", SYM);
  ck_assert_int_eq(a->cash_frozen, cash);
  ck_assert_int_eq(a->allowances_frozen, alw);
  ct_free(a);

  /* 2,500 orders at 1,000 per call: exactly 3 calls, counting down. */
  Gm__Carbon__MassCancelReply *m = mass_cancel("alice", 0, "");
  ck_assert_int_eq(m->n_cancelled, 1000);
  ck_assert_int_eq(m->remaining, N_ORDERS - 1000);
  ck_assert_str_ne(m->next_cursor, "");
  for (size_t i = 0; i < m->n_cancelled; i++)
    ids_add(&cancelled, m->cancelled[i]);
  char *cursor = strdup(m->next_cursor);
  ct_free(m);
  /* The cursor belongs to this symbol and side. */
  Gm__Carbon__MassCancelRequest bad = GM__CARBON__MASS_CANCEL_REQUEST__INIT;
  bad.symbol = SYM;
  bad.side = CT_SELL;
  bad.cursor = cursor;
  ct_expect("alice", "order.mass_cancel", &bad.base,
            GM__STATUS__INVALID_ARGUMENT,
            "cursor is for another symbol or side than this request's "
            "(" SYM ", SIDE_SELL)");
  bad.side = 0;
  bad.cursor = "CEA-2025:a:0:xyz";
  ct_expect("alice", "order.mass_cancel", &bad.base,
            GM__STATUS__INVALID_ARGUMENT,
            "is not one order.mass_cancel returned");
  m = mass_cancel("alice", 0, cursor);
  free(cursor);
  ck_assert_int_eq(m->n_cancelled, 1000);
  ck_assert_int_eq(m->remaining, N_ORDERS - 2000);
  for (size_t i = 0; i < m->n_cancelled; i++)
    ids_add(&cancelled, m->cancelled[i]);
  cursor = strdup(m->next_cursor);
  ct_free(m);
  m = mass_cancel("alice", 0, cursor);
  free(cursor);
  ck_assert_int_eq(m->n_cancelled, N_ORDERS - 2000);
  ck_assert_int_eq(m->remaining, 0);
  ck_assert_str_eq(m->next_cursor, "");
  for (size_t i = 0; i < m->n_cancelled; i++)
    ids_add(&cancelled, m->cancelled[i]);
  ct_free(m);

  /* Every order once, and every frozen fen and tonne released. */
  ck_assert_int_eq(ids_distinct(&cancelled), N_ORDERS);
  ids_sort(&placed);
  for (size_t i = 0; i < cancelled.n; i++)
    ck_assert(ids_has(&placed, cancelled.v[i]));
  a = ct_account("alice", SYM);
  ck_assert_int_eq(a->cash, CASH);
  ck_assert_int_eq(a->cash_frozen, 0);
  ck_assert_int_eq(a->allowances, ALW);
  ck_assert_int_eq(a->allowances_frozen, 0);
  ct_free(a);
  /* Each call's 1,000 cancels went out in several outbox entries (at most
     100 records each, lib.lua ev_flush): all of them settle. */
  static const char ended[] =
      "SELECT count(*) FROM carbon_orders WHERE symbol = '" SYM
      "' AND"
      " participant = 'alice' AND state = 4";
  for (int i = 0; i < 3 && ct_ledger_int(ended) != N_ORDERS; i++)
    ct_ledger_wait(ended, N_ORDERS);
  ck_assert_int_eq(ct_ledger_int(ended), N_ORDERS);
  /* Bob's orders are untouched: the book holds exactly his. */
  Gm__Carbon__Depth *d = ct_depth(SYM, 100);
  int64_t book = 0;
  for (size_t i = 0; i < d->n_bids; i++) book += d->bids[i]->quantity;
  for (size_t i = 0; i < d->n_asks; i++) book += d->asks[i]->quantity;
  ct_free(d);
  int64_t bob_qty = 0;
  for (int i = 0; i < 20; i++) bob_qty += 1 + i % 5; /* as rest_orders */
  ck_assert_int_eq(book, bob_qty);
  ids_free(&cancelled);

  /* An old caller (no cursor) calling again while remaining > 0 also ends. */
  rest_orders("alice", SYM, 1500, &placed, &cash, &alw);
  m = mass_cancel("alice", 0, "");
  ck_assert_int_eq(m->n_cancelled, 1000);
  ck_assert_int_eq(m->remaining, 500);
  ct_free(m);
  m = mass_cancel("alice", 0, "");
  ck_assert_int_eq(m->n_cancelled, 500);
  ck_assert_int_eq(m->remaining, 0);
  ct_free(m);
  ck_assert_int_eq(mass_cancel_all("alice", 0, &cancelled, &remaining), 1);
  ck_assert_int_eq(cancelled.n, 0);
  ck_assert_int_eq(remaining, 0);
  ids_free(&placed);
  ids_free(&other);
}
END_TEST

START_TEST(mass_cancel_by_side_leaves_the_other_side) {
  ids placed = {0}, cancelled = {0}, left = {0};
  int64_t cash = 0, alw = 0, remaining = -1;
  rest_orders("alice", SYM, N_ORDERS, &placed, &cash, &alw);
  int64_t before = sscan_calls();
  /* Sells only: a call still looks at no more than 1,000 orders of either
   * side, so 2,500 take 3 calls though only half are cancelled. */
  ck_assert_int_eq(mass_cancel_all("alice", CT_SELL, &cancelled, &remaining),
                   3);
  ck_assert_int_gt(sscan_calls(), before);
  ck_assert_int_eq(remaining, 0);
  ck_assert_int_eq(cancelled.n, N_ORDERS / 2);
  ck_assert_int_eq(ids_distinct(&cancelled), N_ORDERS / 2);
  /* The buys stay, all of them, and still hold their cash. */
  list_all("alice", SYM, 1000, &left);
  ck_assert_int_eq(ids_distinct(&left), N_ORDERS / 2);
  ids_sort(&cancelled);
  for (size_t i = 0; i < left.n; i++)
    ck_assert_msg(!ids_has(&cancelled, left.v[i]),
                  "%s was cancelled and "
                  "is listed",
                  left.v[i]);
  Gm__Carbon__Account *a = ct_account("alice", SYM);
  ck_assert_int_eq(a->cash_frozen, cash);
  ck_assert_int_eq(a->cash, CASH - cash);
  ck_assert_int_eq(a->allowances_frozen, 0);
  ck_assert_int_eq(a->allowances, ALW);
  ct_free(a);
  Gm__Carbon__Depth *d = ct_depth(SYM, 5);
  ck_assert_int_eq(d->n_asks, 0);
  ck_assert_int_gt(d->n_bids, 0);
  ct_free(d);
  ids_free(&cancelled);
  ids_free(&left);
  ids_free(&placed);
}
END_TEST

START_TEST(reconcile_over_many_pages_finds_a_planted_difference) {
  /* 183 accounts (alice, bob and 181 more) at 50 per run: 4 runs. */
  char who[32];
  for (int i = 0; i < 181; i++) {
    snprintf(who, sizeof who, "p%03d", i);
    ct_deposit(who, SYM, 1000 + i, i % 3 ? i : 0);
  }
  Gm__Carbon__ReconcileReply *rec = ct_reconcile_settled(SYM);
  ck_assert_int_eq(rec->accounts, 183);
  ck_assert_int_eq(rec->n_differences, 0);
  ct_free(rec);

  /* Behind the ledger's back: one account gains 5 fen, and one appears that
   * the ledger never saw. */
  redisContext *rc = gm_test_redis_connect(ct_redis);
  freeReplyObject(
      gm_test_redis_cmd(rc, "HINCRBY gm:{carbon:CEA-2025}:a:p137 c 5"));
  freeReplyObject(gm_test_redis_cmd(
      rc, "HSET gm:{carbon:CEA-2025}:a:ghost c 0 cf 0 al 3 af 0 lk 0"));
  freeReplyObject(
      gm_test_redis_cmd(rc, "SADD gm:{carbon:CEA-2025}:accts ghost"));
  redisFree(rc);
  int64_t before = sscan_calls();
  rec = ct_reconcile_settled(SYM);
  ck_assert_int_ge(sscan_calls() - before, 184 / 50);
  ck_assert_int_eq(rec->accounts, 184);
  ck_assert_int_eq(rec->n_differences, 2);
  /* Sorted by participant: "ghost" before "p137". */
  ck_assert_str_eq(rec->differences[0]->participant, "ghost");
  ck_assert_int_eq(rec->differences[0]->asset,
                   GM__CARBON__ASSET__ASSET_ALLOWANCE);
  ck_assert_int_eq(rec->differences[0]->ledger, 0);
  ck_assert_int_eq(rec->differences[0]->live, 3);
  ck_assert_str_eq(rec->differences[1]->participant, "p137");
  ck_assert_int_eq(rec->differences[1]->asset, GM__CARBON__ASSET__ASSET_CASH);
  ck_assert_int_eq(rec->differences[1]->ledger, 1137);
  ck_assert_int_eq(rec->differences[1]->live, 1142);
  ct_free(rec);
}
END_TEST

int main(void) {
  Suite *s = suite_create("carbon paging");
  TCase *tc = tcase_create("paging");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_set_timeout(tc, 240);
  tcase_add_test(tc, order_list_pages_through_every_order);
  tcase_add_test(tc, mass_cancel_takes_bounded_calls_and_releases_everything);
  tcase_add_test(tc, mass_cancel_by_side_leaves_the_other_side);
  tcase_add_test(tc, reconcile_over_many_pages_finds_a_planted_difference);
  suite_add_tcase(s, tc);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
