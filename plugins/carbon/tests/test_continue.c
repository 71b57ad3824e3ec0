/*
 * Orders that continue past the per-step fill bound: one call matches over
 * several script steps (max_fills resting orders each), bounded by
 * max_steps; a broker killed between two steps leaves the order in flight,
 * and either the client's retry (same idempotency key) or the order's
 * in-flight deadline (inflight_ms after its last step) finishes it.  The kill
 * is real (SIGKILL of gmd, raised by the plugin's test-only
 * test_kill_after_step right after a step's script returned); the restart runs
 * with that setting switched off.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "harness.h"

#define SYM "CEA-STEP"
#define NS 3
#define CASH0 INT64_C(100000000) /* 1,000,000 yuan */
#define ALW0 1000

static const char *const sellers[NS] = {"s0", "s1", "s2"};

/* A resting ask as placed, in arrival order. */
typedef struct {
  char id[40];
  int seller;
  int64_t px, q;
} ask;

static void teardown(void) {
  ct_stop();
}

/* gmd with `conf`, an instrument with `max_fills`, funded traders. */
static void start(const char *conf, int max_fills) {
  ct_start(conf, ct_at(CT_MONDAY, 10, 0));
  Gm__Carbon__Instrument in = GM__CARBON__INSTRUMENT__INIT;
  Gm__Carbon__CreateInstrumentRequest cr =
      GM__CARBON__CREATE_INSTRUMENT_REQUEST__INIT;
  in.symbol = SYM;
  in.reference_price = 8500;
  in.max_fills = max_fills;
  cr.instrument = &in;
  Gm__Carbon__Instrument *made =
      (Gm__Carbon__Instrument *)ct_call("root", "instrument.create", &cr.base);
  ck_assert_msg(made, "instrument.create: %s", ct_message);
  ct_free(made);
  ct_register("b", "buyer");
  ct_deposit("b", SYM, CASH0, 0);
  for (int i = 0; i < NS; i++) {
    ct_register(sellers[i], "seller");
    ct_deposit(sellers[i], SYM, 0, ALW0);
  }
}

/* n asks at prices and quantities that make price-time order non-trivial:
 * later asks often undercut earlier ones. */
static void place_asks(ask *a, int n) {
  for (int i = 0; i < n; i++) {
    a[i].seller = i % NS;
    a[i].px = 8500 + (i * 7) % 3;
    a[i].q = 1 + i % 3;
    Gm__Carbon__PlaceReply *r =
        ct_limit(sellers[a[i].seller], SYM, CT_SELL, a[i].px, a[i].q, CT_GTC);
    ck_assert_int_eq(r->n_fills, 0);
    snprintf(a[i].id, sizeof a[i].id, "%s", r->order->id);
    ct_free(r);
  }
}

/* The asks in the order price-time priority fills them. */
static void by_priority(const ask *a, int n, int *order) {
  for (int i = 0; i < n; i++) order[i] = i;
  for (int i = 1; i < n; i++)
    for (int j = i; j > 0 && a[order[j]].px < a[order[j - 1]].px; j--) {
      int t = order[j];
      order[j] = order[j - 1];
      order[j - 1] = t;
    }
}

/* Every fill of `r` is the next ask in price-time order, in full. */
static void expect_fills(const Gm__Carbon__PlaceReply *r, const ask *a, int n) {
  int order[64];
  by_priority(a, n, order);
  ck_assert_int_eq((int)r->n_fills, n);
  for (int k = 0; k < n; k++) {
    const ask *x = &a[order[k]];
    ck_assert_msg(!strcmp(r->fills[k]->maker_order_id, x->id),
                  "fill %d took %s; price-time priority says %s", k,
                  r->fills[k]->maker_order_id, x->id);
    ck_assert_int_eq(r->fills[k]->price, x->px);
    ck_assert_int_eq(r->fills[k]->quantity, x->q);
    ck_assert_int_eq(r->fills[k]->amount, x->px * x->q);
  }
}

/* Cash and allowances: what the buyer paid the sellers got, nothing frozen
 * but `frozen` fen of the buyer's, nothing created. */
static void expect_conserved(int64_t paid, int64_t bought, int64_t frozen) {
  Gm__Carbon__Account *b = ct_account("b", SYM);
  ck_assert_int_eq(b->cash + b->cash_frozen, CASH0 - paid);
  ck_assert_int_eq(b->cash_frozen, frozen);
  ck_assert_int_eq(b->allowances_locked, bought);
  ct_free(b);
  int64_t cash = 0, alw = 0;
  for (int i = 0; i < NS; i++) {
    Gm__Carbon__Account *s = ct_account(sellers[i], SYM);
    cash += s->cash;
    alw += s->allowances + s->allowances_frozen;
    ck_assert_int_eq(s->cash_frozen, 0);
    ct_free(s);
  }
  ck_assert_int_eq(cash, paid);
  ck_assert_int_eq(alw + bought, NS * ALW0);
}

static redisReply *redis_cmd(const char *fmt, const char *arg) {
  redisContext *c = gm_test_redis_connect(ct_redis);
  redisReply *r = gm_test_redis_cmd(c, fmt, arg);
  redisFree(c);
  return r;
}

static long long redis_int(const char *fmt, const char *arg) {
  redisReply *r = redis_cmd(fmt, arg);
  long long v = r->type == REDIS_REPLY_INTEGER ? r->integer
                : r->str                       ? atoll(r->str)
                                               : -1;
  freeReplyObject(r);
  return v;
}

#ifdef GM_FAILURE_INJECTION
/*
 * Sends a buy that gmd dies in the middle of (test_kill_after_step), and
 * returns the order's id from Redis: the order is in flight, not in the
 * book, its remainder still frozen.
 */
static void crash_mid_order(const Gm__Carbon__PlaceRequest *q, const char *idem,
                            char *id, size_t idlen, int64_t frozen) {
  /* gmd kills itself after the step: wait for that, not for a reply that
     cannot come (gm_test_call waits 5 s for it). */
  gm_test_send(ct_conn, 1u << 30, "b", "carbon", "order.place", idem, &q->base);
  int st = gm_test_gmd_wait_exit(ct_gmd, 10000); /* reaps the dead gmd */
  ck_assert_msg(st >= 0 && WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL,
                "gmd did not die by SIGKILL after the step (status %d)", st);
  Gm__Reply *r = gm_test_conn_recv(ct_conn, 100);
  ck_assert_msg(r == NULL, "gmd answered (status %d); it should have died",
                r ? (int)r->status : 0);
  redisReply *keys = redis_cmd("HKEYS %s", "gm:{carbon:" SYM "}:fl");
  ck_assert_int_eq((int)keys->elements, 1);
  snprintf(id, idlen, "%s", keys->element[0]->str);
  freeReplyObject(keys);
  char bz[64];
  snprintf(bz, sizeof bz, "gm:{carbon:%s}:bz:b", SYM);
  redisContext *c = gm_test_redis_connect(ct_redis);
  redisReply *z = gm_test_redis_cmd(c, "ZSCORE %s %s", bz, id);
  ck_assert_msg(z->type == REDIS_REPLY_NIL,
                "an in-flight order is in the book");
  freeReplyObject(z);
  redisReply *cf = gm_test_redis_cmd(c, "HGET gm:{carbon:" SYM "}:a:b cf");
  ck_assert_int_eq(atoll(cf->str), frozen);
  freeReplyObject(cf);
  redisFree(c);
}
#endif

#ifdef GM_FAILURE_INJECTION
/* The due ms of order id's in-flight deadline, or -1 when it has none. */
static long long inflight_due(const char *id) {
  redisContext *c = gm_test_redis_connect(ct_redis);
  redisReply *r =
      gm_test_redis_cmd(c, "ZSCORE gm:{carbon:" SYM "}:dl inflight|%s", id);
  long long v = r->type == REDIS_REPLY_STRING ? atoll(r->str) : -1;
  freeReplyObject(r);
  redisFree(c);
  return v;
}

/* Restarts the killed gmd with `conf` appended (later keys win). */
static void restart(const char *conf) {
  char path[600];
  snprintf(path, sizeof path, "%s/gmd.conf", gm_test_redis_dir(ct_redis));
  FILE *f = fopen(path, "a");
  ck_assert_ptr_nonnull(f);
  fprintf(f, "[market.carbon]\ntest_kill_after_step = 0\n%s\n", conf);
  fclose(f);
  gm_test_gmd_restart(ct_gmd);
  gm_test_conn_destroy(&ct_conn);
  ct_conn = gm_test_conn_new(gm_test_gmd_endpoint(ct_gmd), NULL, NULL, NULL);
}
#endif

START_TEST(one_call_sweeps_three_times_max_fills) {
  enum { MAXF = 4, N = 3 * MAXF };
  ask a[N];
  start(NULL, MAXF);
  place_asks(a, N);
  int64_t qty = 0, paid = 0;
  for (int i = 0; i < N; i++) qty += a[i].q, paid += a[i].px * a[i].q;

  Gm__Carbon__PlaceRequest q = GM__CARBON__PLACE_REQUEST__INIT;
  q.symbol = SYM;
  q.side = CT_BUY;
  q.price = 8502;
  q.quantity = qty;

  Gm__Carbon__PlaceReply *r = ct_limit("b", SYM, CT_BUY, 8502, qty, CT_GTC);
  ck_assert_int_eq(r->order->state, GM__CARBON__ORDER_STATE__STATE_FILLED);
  ck_assert_int_eq(r->order->filled, qty);
  ck_assert_str_eq(r->order->reason, "");
  expect_fills(r, a, N);
  ct_free(r);
  Gm__Carbon__Depth *d = ct_depth(SYM, 5);
  ck_assert_int_eq(d->n_asks + d->n_bids, 0);
  ct_free(d);
  expect_conserved(paid, qty, 0);
  ck_assert_int_eq(redis_int("HLEN %s", "gm:{carbon:" SYM "}:fl"), 0);
  ck_assert_int_eq(ct_ledger_wait("SELECT count(*) FROM carbon_trades", N), N);
  ck_assert_int_eq(ct_ledger_wait("SELECT count(*) FROM carbon_orders WHERE"
                                  " state = 3",
                                  N + 1),
                   N + 1);

  /* An IOC past the bound: continues, then its remainder is cancelled. */
  place_asks(a, N);
  q.tif = GM__CARBON__TIME_IN_FORCE__TIF_IOC;
  q.quantity = qty + 5;
  r = (Gm__Carbon__PlaceReply *)ct_call("b", "order.place", &q.base);
  ck_assert_msg(r, "%s", ct_message);
  ck_assert_int_eq(r->order->state, GM__CARBON__ORDER_STATE__STATE_CANCELLED);
  ck_assert_str_eq(r->order->reason, "IOC remainder");
  ck_assert_int_eq(r->order->filled, qty);
  expect_fills(r, a, N);
  ct_free(r);
  expect_conserved(2 * paid, 2 * qty, 0);
}
END_TEST

START_TEST(the_whole_call_is_bounded_by_max_steps) {
  enum { MAXF = 3, N = 8 };
  start("[market.carbon]\nmax_steps = 2\n", MAXF);
  for (int i = 0; i < N; i++)
    ct_free(ct_limit(sellers[i % NS], SYM, CT_SELL, 8500 + i, 1, CT_GTC));
  Gm__Carbon__PlaceReply *r = ct_limit("b", SYM, CT_BUY, 8600, N, CT_GTC);
  ck_assert_int_eq(r->n_fills, 2 * MAXF);
  ck_assert_int_eq(r->order->state, GM__CARBON__ORDER_STATE__STATE_CANCELLED);
  ck_assert_str_eq(r->order->reason,
                   "step bound reached: 2 steps of 3 resting orders; place "
                   "the rest again");
  ct_free(r);
  Gm__Carbon__Depth *d = ct_depth(SYM, 5);
  ck_assert_int_eq(d->n_asks, N - 2 * MAXF);
  ck_assert_int_eq(d->asks[0]->price, 8500 + 2 * MAXF);
  ck_assert_int_eq(d->n_bids, 0);
  ct_free(d);
  int64_t paid = 0;
  for (int i = 0; i < 2 * MAXF; i++) paid += 8500 + i;
  Gm__Carbon__Account *b = ct_account("b", SYM);
  ck_assert_int_eq(b->cash, CASH0 - paid);
  ck_assert_int_eq(b->cash_frozen, 0);
  ck_assert_int_eq(b->allowances_locked, 2 * MAXF);
  ct_free(b);
}
END_TEST

/* Total quantity of the asks in the book (market.depth, 100 levels). */
static int64_t asks_resting(void) {
  Gm__Carbon__Depth *d = ct_depth(SYM, 100);
  int64_t q = 0;
  for (size_t i = 0; i < d->n_asks; i++) q += d->asks[i]->quantity;
  ck_assert_int_eq(d->n_bids, 0);
  ct_free(d);
  return q;
}

/* Nothing of a FOK order is left: no order in flight, nothing held. */
static void expect_no_fok_left(void) {
  ck_assert_int_eq(redis_int("HLEN %s", "gm:{carbon:" SYM "}:fl"), 0);
  redisReply *k = redis_cmd("KEYS %s", "gm:{carbon:" SYM "}:h*");
  ck_assert_int_eq((int)k->elements, 0);
  freeReplyObject(k);
  /* No order held: the instrument's count of them (place.lua, hb_moved) is
   * 0 or absent, whichever way the FOK ended (filled, gave back, expired). */
  long long hbn = redis_int("HGET %s hbn", "gm:{carbon:" SYM "}:i");
  ck_assert_msg(hbn == 0 || hbn == -1, "hbn %lld with no order held", hbn);
}

static Gm__Carbon__PlaceRequest fok(int64_t qty) {
  Gm__Carbon__PlaceRequest q = GM__CARBON__PLACE_REQUEST__INIT;
  q.symbol = SYM;
  q.side = CT_BUY;
  q.price = 8502;
  q.quantity = qty;
  q.tif = GM__CARBON__TIME_IN_FORCE__TIF_FOK;
  return q;
}

/*
 * FOK past max_fills: all or nothing whatever the number of resting orders
 * it takes.  One short of the book: refused, the book and the accounts as
 * they were; the whole book: filled in price-time order over several steps.
 */
START_TEST(a_fok_fills_past_max_fills_or_not_at_all) {
  enum { MAXF = 4, N = 3 * MAXF };
  ask a[N];
  start(NULL, MAXF);
  place_asks(a, N);
  int64_t qty = 0, paid = 0;
  for (int i = 0; i < N; i++) qty += a[i].q, paid += a[i].px * a[i].q;

  Gm__Carbon__PlaceRequest q = fok(qty + 1);
  char want[128];
  snprintf(want, sizeof want, "FOK order cannot fill in full: %lld t available",
           (long long)qty);
  ct_expect("b", "order.place", &q.base, GM__STATUS__FAILED_PRECONDITION, want);
  ck_assert_int_eq(asks_resting(), qty);
  expect_conserved(0, 0, 0);
  expect_no_fok_left();
  ck_assert_int_eq(redis_int("HGET %s tseq", "gm:{carbon:" SYM "}:i"), 0);

  q = fok(qty);
  Gm__Carbon__PlaceReply *r =
      (Gm__Carbon__PlaceReply *)ct_call("b", "order.place", &q.base);
  ck_assert_msg(r, "FOK of the whole book: %s", ct_message);
  ck_assert_int_eq(r->order->state, GM__CARBON__ORDER_STATE__STATE_FILLED);
  ck_assert_int_eq(r->order->filled, qty);
  expect_fills(r, a, N); /* the order the refused FOK found them in */
  ct_free(r);
  ck_assert_int_eq(asks_resting(), 0);
  expect_conserved(paid, qty, 0);
  expect_no_fok_left();
}
END_TEST

/* The last order a FOK order past max_fills takes in part goes back to its
 * place in the book with the rest, and the levels say so. */
START_TEST(a_fok_gives_back_the_rest_of_its_last_order) {
  enum { MAXF = 2, N = 6 };
  char id[N][40];
  start(NULL, MAXF);
  for (int i = 0; i < N; i++) {
    Gm__Carbon__PlaceReply *r =
        ct_limit(sellers[i % NS], SYM, CT_SELL, 8500, 2, CT_GTC);
    snprintf(id[i], sizeof id[i], "%s", r->order->id);
    ct_free(r);
  }
  Gm__Carbon__PlaceRequest q = fok(7);
  Gm__Carbon__PlaceReply *r =
      (Gm__Carbon__PlaceReply *)ct_call("b", "order.place", &q.base);
  ck_assert_msg(r, "FOK: %s", ct_message);
  ck_assert_int_eq(r->order->state, GM__CARBON__ORDER_STATE__STATE_FILLED);
  ck_assert_int_eq((int)r->n_fills, 4);
  for (int k = 0; k < 4; k++) {
    ck_assert_str_eq(r->fills[k]->maker_order_id, id[k]);
    ck_assert_int_eq(r->fills[k]->quantity, k < 3 ? 2 : 1);
  }
  ct_free(r);
  Gm__Carbon__Depth *d = ct_depth(SYM, 5);
  ck_assert_int_eq((int)d->n_asks, 1);
  ck_assert_int_eq(d->asks[0]->quantity, 2 * N - 7);
  ct_free(d);
  expect_no_fok_left();
  /* The partly taken order is still first. */
  r = ct_limit("b", SYM, CT_BUY, 8500, 1, GM__CARBON__TIME_IN_FORCE__TIF_IOC);
  ck_assert_int_eq((int)r->n_fills, 1);
  ck_assert_str_eq(r->fills[0]->maker_order_id, id[3]);
  ct_free(r);
  expect_conserved(8 * 8500, 8, 0);
}
END_TEST

/* A FOK needing more than max_steps x max_fills resting orders is refused,
 * and every order it looked at keeps its place in the book. */
START_TEST(a_fok_is_bounded_by_max_steps) {
  enum { MAXF = 3, N = 8 };
  ask a[N];
  start("[market.carbon]\nmax_steps = 2\n", MAXF);
  for (int i = 0; i < N; i++) {
    Gm__Carbon__PlaceReply *r =
        ct_limit(sellers[i % NS], SYM, CT_SELL, 8500 - (i % 2), 1, CT_GTC);
    snprintf(a[i].id, sizeof a[i].id, "%s", r->order->id);
    a[i].seller = i % NS;
    a[i].px = 8500 - (i % 2);
    a[i].q = 1;
    ct_free(r);
  }
  Gm__Carbon__PlaceRequest q = fok(N);
  ct_expect("b", "order.place", &q.base, GM__STATUS__FAILED_PRECONDITION,
            "within 6 resting orders");
  expect_no_fok_left();
  ck_assert_int_eq(asks_resting(), N);
  expect_conserved(0, 0, 0);
  /* Price-time priority as placed (the buy's 2 steps take 6 of them). */
  Gm__Carbon__PlaceReply *r = ct_limit("b", SYM, CT_BUY, 8502, N, CT_GTC);
  int order[N];
  by_priority(a, N, order);
  ck_assert_int_eq((int)r->n_fills, 2 * MAXF);
  for (int k = 0; k < 2 * MAXF; k++)
    ck_assert_str_eq(r->fills[k]->maker_order_id, a[order[k]].id);
  ct_free(r);
}
END_TEST

#ifdef GM_FAILURE_INJECTION /* needs gmd to die mid-call */
START_TEST(a_retry_resumes_an_order_cut_by_a_crash) {
  enum { MAXF = 2, N = 10 };
  ask a[N];
  start("[market.carbon]\ntest_kill_after_step = 2\n", MAXF);
  place_asks(a, N);
  int64_t qty = 0, paid = 0;
  for (int i = 0; i < N; i++) qty += a[i].q, paid += a[i].px * a[i].q;
  Gm__Carbon__PlaceRequest q = GM__CARBON__PLACE_REQUEST__INIT;
  q.symbol = SYM;
  q.side = CT_BUY;
  q.price = 8502;
  q.quantity = qty;
  char id[40];

  /* Killed after step 2: 2 x max_fills asks taken, the rest frozen. */
  int order[N];
  by_priority(a, N, order);
  int64_t left = qty;
  for (int k = 0; k < 2 * MAXF; k++) left -= a[order[k]].q;
  crash_mid_order(&q, "crash-1", id, sizeof id, left * 8502);
  ck_assert_int_eq(redis_int("HGET %s tseq", "gm:{carbon:" SYM "}:i"),
                   2 * MAXF);

  /* The in-flight deadline waits (the restarted gmd's clock is still at the
   * crash, before inflight_ms passed); the client retries with the same
   * key: steps 1-2 replay their stored replies, steps 3-5 run, and the
   * deadline goes with the order's end. */
  ck_assert_int_eq(inflight_due(id), ct_at(CT_MONDAY, 10, 0) + 5000);
  restart("");
  ct_clock(ct_at(CT_MONDAY, 10, 0));
  Gm__Carbon__PlaceReply *r = (Gm__Carbon__PlaceReply *)ct_call_idem(
      "b", "order.place", "crash-1", &q.base);
  ck_assert_msg(r, "retry: %s", ct_message);
  ck_assert_str_eq(r->order->id + strlen(SYM) + 1, id);
  ck_assert_int_eq(r->order->state, GM__CARBON__ORDER_STATE__STATE_FILLED);
  expect_fills(r, a, N);
  ct_free(r);
  /* Each fill happened once. */
  ck_assert_int_eq(redis_int("HGET %s tseq", "gm:{carbon:" SYM "}:i"), N);
  ck_assert_int_eq(ct_ledger_wait("SELECT count(DISTINCT trade_id) FROM"
                                  " carbon_trades",
                                  N),
                   N);
  ck_assert_int_eq(redis_int("HLEN %s", "gm:{carbon:" SYM "}:fl"), 0);
  ck_assert_int_eq(inflight_due(id), -1);
  expect_conserved(paid, qty, 0);

  /* Another retry replays every step and changes nothing. */
  r = (Gm__Carbon__PlaceReply *)ct_call_idem("b", "order.place", "crash-1",
                                             &q.base);
  ck_assert_msg(r, "%s", ct_message);
  ck_assert_int_eq(r->order->state, GM__CARBON__ORDER_STATE__STATE_FILLED);
  expect_fills(r, a, N);
  ct_free(r);
  ck_assert_int_eq(redis_int("HGET %s tseq", "gm:{carbon:" SYM "}:i"), N);
  expect_conserved(paid, qty, 0);
}
END_TEST
#endif

#ifdef GM_FAILURE_INJECTION /* needs gmd to die mid-call */
START_TEST(the_inflight_deadline_finishes_an_abandoned_order) {
  enum { MAXF = 2, N = 10 };
  ask a[N];
  start("[market.carbon]\ntest_kill_after_step = 2\n", MAXF);
  place_asks(a, N);
  int64_t qty = 0, paid = 0;
  for (int i = 0; i < N; i++) qty += a[i].q, paid += a[i].px * a[i].q;
  Gm__Carbon__PlaceRequest q = GM__CARBON__PLACE_REQUEST__INIT;
  q.symbol = SYM;
  q.side = CT_BUY;
  q.price = 8502;
  q.quantity = qty + 7; /* a limit order: 7 t rest once the asks are gone */
  char id[40], full[64];
  int order[N];
  by_priority(a, N, order);
  int64_t left = q.quantity;
  for (int k = 0; k < 2 * MAXF; k++) left -= a[order[k]].q;
  crash_mid_order(&q, "abandoned-1", id, sizeof id, left * 8502);
  snprintf(full, sizeof full, "%s:%s", SYM, id);

  /* The client never retries.  The restarted gmd's clock passes the order's
   * deadline (inflight_ms = 5000 after its last step): its callback takes
   * the next steps. */
  ck_assert_int_eq(inflight_due(id), ct_at(CT_MONDAY, 10, 0) + 5000);
  restart("");
  ct_clock(ct_at(CT_MONDAY, 10, 0) + 10000);
  char sql[256];
  snprintf(sql, sizeof sql,
           "SELECT filled FROM carbon_orders WHERE order_id = '%s' AND "
           "state = 2 AND remaining = 7",
           full);
  ck_assert_int_eq(ct_ledger_wait(sql, qty), qty);
  ck_assert_int_eq(redis_int("HLEN %s", "gm:{carbon:" SYM "}:fl"), 0);
  ck_assert_int_eq(redis_int("HGET %s tseq", "gm:{carbon:" SYM "}:i"), N);
  ck_assert_int_eq(
      ct_ledger_wait("SELECT count(DISTINCT trade_id) FROM carbon_trades", N),
      N);
  /* It rests as its type says, with its arrival priority and funds. */
  Gm__Carbon__Depth *d = ct_depth(SYM, 5);
  ck_assert_int_eq(d->n_asks, 0);
  ck_assert_int_eq(d->n_bids, 1);
  ck_assert_int_eq(d->bids[0]->price, 8502);
  ck_assert_int_eq(d->bids[0]->quantity, 7);
  ct_free(d);
  expect_conserved(paid, qty, 7 * 8502);
  ck_assert(gm_test_gmd_log_has(ct_gmd, "was left in flight"));
  ck_assert_int_eq(inflight_due(id), -1);

  /* A late retry of the abandoned call gets the order's final state. */
  Gm__Carbon__PlaceReply *r = (Gm__Carbon__PlaceReply *)ct_call_idem(
      "b", "order.place", "abandoned-1", &q.base);
  ck_assert_msg(r, "late retry: %s", ct_message);
  ck_assert_str_eq(r->order->id, full);
  ck_assert_int_eq(r->order->state, GM__CARBON__ORDER_STATE__STATE_PARTIAL);
  ck_assert_int_eq(r->order->remaining, 7);
  ct_free(r);
  ck_assert_int_eq(redis_int("HGET %s tseq", "gm:{carbon:" SYM "}:i"), N);
  expect_conserved(paid, qty, 7 * 8502);
}
END_TEST
#endif

#ifdef GM_FAILURE_INJECTION
/* order.cancel of an order id, as `who`: the reply (asserted OK). */
static Gm__Carbon__Order *cancel(const char *who, const char *id) {
  Gm__Carbon__OrderRequest c = GM__CARBON__ORDER_REQUEST__INIT;
  c.order_id = (char *)id;
  Gm__Carbon__Order *o =
      (Gm__Carbon__Order *)ct_call(who, "order.cancel", &c.base);
  ck_assert_msg(o, "order.cancel %s by %s: %s", id, who, ct_message);
  return o;
}
#endif

#ifdef GM_FAILURE_INJECTION /* needs gmd to die mid-call */
/*
 * A cancel of an order that is in flight (its broker died between two
 * steps) is accepted as CANCEL_PENDING; the retry's next step stops before
 * any further fill and cancels the remainder, releasing its cash.
 */
START_TEST(a_cancel_wins_over_an_order_in_flight) {
  enum { MAXF = 2, N = 10 };
  ask a[N];
  start("[market.carbon]\ntest_kill_after_step = 2\n", MAXF);
  place_asks(a, N);
  int64_t qty = 0;
  for (int i = 0; i < N; i++) qty += a[i].q;
  Gm__Carbon__PlaceRequest q = GM__CARBON__PLACE_REQUEST__INIT;
  q.symbol = SYM;
  q.side = CT_BUY;
  q.price = 8502;
  q.quantity = qty;
  char id[40], full[64];
  int order[N];
  by_priority(a, N, order);
  int64_t left = qty, got = 0, paid = 0;
  for (int k = 0; k < 2 * MAXF; k++) {
    left -= a[order[k]].q;
    got += a[order[k]].q;
    paid += a[order[k]].q * a[order[k]].px;
  }
  crash_mid_order(&q, "cancelled-1", id, sizeof id, left * 8502);
  snprintf(full, sizeof full, "%s:%s", SYM, id);
  restart(""); /* the in-flight deadline is not due */
  ct_clock(ct_at(CT_MONDAY, 10, 0));

  /* Someone else cannot cancel it; the owner can, while it is in flight. */
  Gm__Carbon__OrderRequest cr = GM__CARBON__ORDER_REQUEST__INIT;
  cr.order_id = full;
  ct_expect("s0", "order.cancel", &cr.base, GM__STATUS__NOT_FOUND,
            "no open order");
  Gm__Carbon__Order *c = cancel("b", full);
  ck_assert_int_eq(c->state, GM__CARBON__ORDER_STATE__STATE_CANCEL_PENDING);
  ck_assert_int_eq(c->filled, got);
  ck_assert_int_eq(c->remaining, left);
  ck_assert_ptr_nonnull(strstr(c->reason, "cancel pending"));
  ct_free(c);
  /* Cancelling again says the same and changes nothing. */
  c = cancel("b", full);
  ck_assert_int_eq(c->state, GM__CARBON__ORDER_STATE__STATE_CANCEL_PENDING);
  ct_free(c);
  expect_conserved(paid, got, left * 8502); /* still frozen until the step */

  /* The placing call's retry: steps 1-2 replay, step 3 sees the mark. */
  Gm__Carbon__PlaceReply *r = (Gm__Carbon__PlaceReply *)ct_call_idem(
      "b", "order.place", "cancelled-1", &q.base);
  ck_assert_msg(r, "retry: %s", ct_message);
  ck_assert_str_eq(r->order->id, full);
  ck_assert_int_eq(r->order->state, GM__CARBON__ORDER_STATE__STATE_CANCELLED);
  ck_assert_str_eq(r->order->reason, "cancelled by b while it was matching");
  ck_assert_int_eq(r->order->filled, got);
  ck_assert_int_eq((int)r->n_fills, 2 * MAXF);
  ct_free(r);
  /* Nothing traded after the cancel: the other asks still rest. */
  ck_assert_int_eq(redis_int("HGET %s tseq", "gm:{carbon:" SYM "}:i"),
                   2 * MAXF);
  ck_assert_int_eq(redis_int("HLEN %s", "gm:{carbon:" SYM "}:fl"), 0);
  Gm__Carbon__Depth *d = ct_depth(SYM, 5);
  int64_t resting = 0;
  for (size_t i = 0; i < d->n_asks; i++) resting += d->asks[i]->quantity;
  ck_assert_int_eq(resting, qty - got);
  ck_assert_int_eq(d->n_bids, 0);
  ct_free(d);
  expect_conserved(paid, got, 0);
  char sql[256];
  snprintf(sql, sizeof sql,
           "SELECT filled FROM carbon_orders WHERE order_id = '%s' AND "
           "state = 4 AND remaining = 0",
           full);
  ck_assert_int_eq(ct_ledger_wait(sql, got), got);
  ct_expect("b", "order.cancel", &cr.base, GM__STATUS__NOT_FOUND,
            "no open order");
}
END_TEST
#endif

#ifdef GM_FAILURE_INJECTION /* needs gmd to die mid-call */
/* Nobody retries the placing call: its in-flight deadline takes the order's
 * next step, which honours the pending cancel. */
START_TEST(the_inflight_deadline_honours_a_pending_cancel) {
  enum { MAXF = 2, N = 10 };
  ask a[N];
  start("[market.carbon]\ntest_kill_after_step = 2\n", MAXF);
  place_asks(a, N);
  int64_t qty = 0;
  for (int i = 0; i < N; i++) qty += a[i].q;
  Gm__Carbon__PlaceRequest q = GM__CARBON__PLACE_REQUEST__INIT;
  q.symbol = SYM;
  q.side = CT_BUY;
  q.price = 8502;
  q.quantity = qty;
  char id[40], full[64];
  int order[N];
  by_priority(a, N, order);
  int64_t left = qty, got = 0, paid = 0;
  for (int k = 0; k < 2 * MAXF; k++) {
    left -= a[order[k]].q;
    got += a[order[k]].q;
    paid += a[order[k]].q * a[order[k]].px;
  }
  crash_mid_order(&q, "abandoned-2", id, sizeof id, left * 8502);
  snprintf(full, sizeof full, "%s:%s", SYM, id);
  /* Not due yet when cancelled (inflight_ms after its last step). */
  restart("");
  ct_clock(ct_at(CT_MONDAY, 10, 0) + 1000);
  Gm__Carbon__Order *c = cancel("b", full);
  ck_assert_int_eq(c->state, GM__CARBON__ORDER_STATE__STATE_CANCEL_PENDING);
  ct_free(c);
  ct_clock(ct_at(CT_MONDAY, 10, 0) + 10000);
  char sql[256];
  snprintf(sql, sizeof sql,
           "SELECT filled FROM carbon_orders WHERE order_id = '%s' AND "
           "state = 4 AND reason = 'cancelled by b while it was matching'",
           full);
  ck_assert_int_eq(ct_ledger_wait(sql, got), got);
  ck_assert_int_eq(redis_int("HLEN %s", "gm:{carbon:" SYM "}:fl"), 0);
  ck_assert_int_eq(redis_int("HGET %s tseq", "gm:{carbon:" SYM "}:i"),
                   2 * MAXF);
  expect_conserved(paid, got, 0);
}
END_TEST
#endif

#ifdef GM_FAILURE_INJECTION /* needs gmd to die mid-call */
/*
 * order.mass_cancel reaches an order in flight: it is marked as order.cancel
 * marks it (CANCEL_PENDING) and its next step cancels the rest.  order.get
 * shows it in flight, then pending.
 */
START_TEST(mass_cancel_reaches_an_order_in_flight) {
  enum { MAXF = 2, N = 10 };
  ask a[N];
  start("[market.carbon]\ntest_kill_after_step = 2\n", MAXF);
  place_asks(a, N);
  int64_t qty = 0;
  for (int i = 0; i < N; i++) qty += a[i].q;
  Gm__Carbon__PlaceRequest q = GM__CARBON__PLACE_REQUEST__INIT;
  q.symbol = SYM;
  q.side = CT_BUY;
  q.price = 8502;
  q.quantity = qty;
  char id[40], full[64];
  int order[N];
  by_priority(a, N, order);
  int64_t left = qty, got = 0, paid = 0;
  for (int k = 0; k < 2 * MAXF; k++) {
    left -= a[order[k]].q;
    got += a[order[k]].q;
    paid += a[order[k]].q * a[order[k]].px;
  }
  crash_mid_order(&q, "mass-1", id, sizeof id, left * 8502);
  snprintf(full, sizeof full, "%s:%s", SYM, id);
  restart("");
  ct_clock(ct_at(CT_MONDAY, 10, 0));
  Gm__Carbon__OrderRequest g = GM__CARBON__ORDER_REQUEST__INIT;
  g.order_id = full;
  Gm__Carbon__Order *o =
      (Gm__Carbon__Order *)ct_call("b", "order.get", &g.base);
  ck_assert_msg(o, "order.get: %s", ct_message);
  ck_assert_int_eq(o->state, GM__CARBON__ORDER_STATE__STATE_PARTIAL);
  ck_assert_str_eq(o->reason, "in flight: matching continues");
  ck_assert_int_eq(o->filled, got);
  ct_free(o);
  /* order.list shows it, in flight. */
  Gm__Carbon__ListOrdersRequest lr = GM__CARBON__LIST_ORDERS_REQUEST__INIT;
  lr.symbol = SYM;
  Gm__Carbon__OrderList *l =
      (Gm__Carbon__OrderList *)ct_call("b", "order.list", &lr.base);
  ck_assert_msg(l, "order.list: %s", ct_message);
  ck_assert_int_eq((int)l->n_orders, 1);
  ck_assert_str_eq(l->orders[0]->id, full);
  ck_assert_str_eq(l->orders[0]->reason, "in flight: matching continues");
  ct_free(l);
  /* A resting order of b's too. */
  Gm__Carbon__PlaceReply *rest = ct_limit("b", SYM, CT_BUY, 8000, 1, CT_GTC);

  Gm__Carbon__MassCancelRequest m = GM__CARBON__MASS_CANCEL_REQUEST__INIT;
  m.symbol = SYM;
  Gm__Carbon__MassCancelReply *mc =
      (Gm__Carbon__MassCancelReply *)ct_call("b", "order.mass_cancel", &m.base);
  ck_assert_msg(mc, "order.mass_cancel: %s", ct_message);
  ck_assert_int_eq((int)mc->n_cancelled, 2);
  int seen = 0;
  for (size_t i = 0; i < mc->n_cancelled; i++)
    seen |= !strcmp(mc->cancelled[i], full)              ? 1
            : !strcmp(mc->cancelled[i], rest->order->id) ? 2
                                                         : 4;
  ck_assert_int_eq(seen, 3);
  ck_assert_int_eq(mc->remaining, 0);
  ck_assert_str_eq(mc->next_cursor, "");
  ct_free(mc);
  ct_free(rest);
  o = (Gm__Carbon__Order *)ct_call("b", "order.get", &g.base);
  ck_assert_msg(o, "order.get: %s", ct_message);
  ck_assert_int_eq(o->state, GM__CARBON__ORDER_STATE__STATE_CANCEL_PENDING);
  ct_free(o);

  Gm__Carbon__PlaceReply *r = (Gm__Carbon__PlaceReply *)ct_call_idem(
      "b", "order.place", "mass-1", &q.base);
  ck_assert_msg(r, "retry: %s", ct_message);
  ck_assert_int_eq(r->order->state, GM__CARBON__ORDER_STATE__STATE_CANCELLED);
  ck_assert_str_eq(r->order->reason, "cancelled by b while it was matching");
  ck_assert_int_eq(r->order->filled, got);
  ct_free(r);
  ck_assert_int_eq(redis_int("HGET %s tseq", "gm:{carbon:" SYM "}:i"),
                   2 * MAXF);
  ck_assert_int_eq(asks_resting(), qty - got);
  expect_conserved(paid, got, 0);
}
END_TEST

/*
 * A FOK matching over several steps holds the resting orders it counted:
 * their cancel waits (CANCEL_PENDING), another buyer cannot take them, and
 * the retry of the FOK's call fills it in full, the held order included.
 */
START_TEST(a_fok_holds_what_it_counted) {
  enum { MAXF = 2, N = 10 };
  ask a[N];
  start("[market.carbon]\ntest_kill_after_step = 2\n", MAXF);
  ct_register("b2", "buyer");
  ct_deposit("b2", SYM, CASH0, 0);
  place_asks(a, N);
  int64_t qty = 0, paid = 0;
  for (int i = 0; i < N; i++) qty += a[i].q, paid += a[i].px * a[i].q;
  Gm__Carbon__PlaceRequest q = fok(qty);
  char id[40];
  crash_mid_order(&q, "fok-1", id, sizeof id, qty * 8502);
  restart("");
  ct_clock(ct_at(CT_MONDAY, 10, 0));
  int order[N];
  by_priority(a, N, order);
  /* Two steps of two: the four best asks are held, out of the book. */
  int64_t held = 0;
  for (int k = 0; k < 2 * MAXF; k++) held += a[order[k]].q;
  ck_assert_int_eq(asks_resting(), qty - held);
  /* Their owner's cancel waits for the FOK. */
  const ask *best = &a[order[0]];
  Gm__Carbon__OrderRequest c = GM__CARBON__ORDER_REQUEST__INIT;
  c.order_id = (char *)best->id;
  Gm__Carbon__Order *o = (Gm__Carbon__Order *)ct_call(sellers[best->seller],
                                                      "order.cancel", &c.base);
  ck_assert_msg(o, "cancel of a held order: %s", ct_message);
  ck_assert_int_eq(o->state, GM__CARBON__ORDER_STATE__STATE_CANCEL_PENDING);
  ct_free(o);
  o = (Gm__Carbon__Order *)ct_call(sellers[best->seller], "order.get", &c.base);
  ck_assert_msg(o, "order.get of a held order: %s", ct_message);
  ck_assert_int_eq(o->state, GM__CARBON__ORDER_STATE__STATE_CANCEL_PENDING);
  ck_assert_ptr_nonnull(strstr(o->reason, "a FOK order that is matching"));
  ct_free(o);
  /* Another held order: a replace is refused while it is held; a mass
   * cancel of its owner (s0: the four best asks are all s0's) marks the
   * held ones, and none of them counts as open any more. */
  const ask *second = &a[order[1]];
  ck_assert_int_eq(best->seller, 0);
  Gm__Carbon__ReplaceRequest rp = GM__CARBON__REPLACE_REQUEST__INIT;
  rp.order_id = (char *)second->id;
  rp.price = 8501;
  ct_expect(sellers[second->seller], "order.replace", &rp.base,
            GM__STATUS__FAILED_PRECONDITION, "held by a FOK order");
  Gm__Carbon__MassCancelRequest m = GM__CARBON__MASS_CANCEL_REQUEST__INIT;
  m.symbol = SYM;
  Gm__Carbon__MassCancelReply *mc = (Gm__Carbon__MassCancelReply *)ct_call(
      "s0", "order.mass_cancel", &m.base);
  ck_assert_msg(mc, "order.mass_cancel: %s", ct_message);
  int marked = 0;
  for (size_t i = 0; i < mc->n_cancelled; i++)
    for (int k = 0; k < 2 * MAXF; k++)
      marked += !strcmp(mc->cancelled[i], a[order[k]].id);
  /* The best one's cancel already waits: it is no longer open. */
  ck_assert_int_eq(marked, 2 * MAXF - 1);
  ck_assert_int_eq((int)mc->n_cancelled, 2 * MAXF - 1);
  ck_assert_int_eq(mc->remaining, 0);
  ct_free(mc);
  ck_assert_int_eq(asks_resting(), qty - held); /* nothing ended yet */

  /* The retry: steps 1-2 replay, the rest holds and executes. */
  Gm__Carbon__PlaceReply *r = (Gm__Carbon__PlaceReply *)ct_call_idem(
      "b", "order.place", "fok-1", &q.base);
  ck_assert_msg(r, "retry: %s", ct_message);
  ck_assert_int_eq(r->order->state, GM__CARBON__ORDER_STATE__STATE_FILLED);
  expect_fills(r, a, N);
  ct_free(r);
  ck_assert_int_eq(asks_resting(), 0);
  expect_conserved(paid, qty, 0);
  expect_no_fok_left();
  Gm__Carbon__Order *g =
      (Gm__Carbon__Order *)ct_call(sellers[best->seller], "order.get", &c.base);
  ck_assert_msg(g, "order.get: %s", ct_message);
  ck_assert_int_eq(g->state, GM__CARBON__ORDER_STATE__STATE_FILLED);
  ct_free(g);
}
END_TEST

/*
 * A FOK cut by a crash while it holds orders, and liquidity taken meanwhile
 * by another buyer: the retry finds it short, refuses it, and every held
 * order goes back to the book in its own place.
 */
START_TEST(a_fok_that_falls_short_gives_back_what_it_held) {
  enum { MAXF = 2, N = 10 };
  ask a[N];
  start("[market.carbon]\ntest_kill_after_step = 2\n", MAXF);
  ct_register("b2", "buyer");
  ct_deposit("b2", SYM, CASH0, 0);
  place_asks(a, N);
  int64_t qty = 0;
  for (int i = 0; i < N; i++) qty += a[i].q;
  Gm__Carbon__PlaceRequest q = fok(qty);
  char id[40];
  crash_mid_order(&q, "fok-2", id, sizeof id, qty * 8502);
  restart("");
  ct_clock(ct_at(CT_MONDAY, 10, 0));
  int order[N];
  by_priority(a, N, order);
  /* b2 takes the best ask not held (the fifth in priority), in full. */
  const ask *taken = &a[order[2 * MAXF]];
  Gm__Carbon__PlaceReply *t = ct_limit("b2", SYM, CT_BUY, 8502, taken->q,
                                       GM__CARBON__TIME_IN_FORCE__TIF_IOC);
  ck_assert_int_eq((int)t->n_fills, 1);
  ck_assert_str_eq(t->fills[0]->maker_order_id, taken->id);
  ct_free(t);

  /* The best held ask's owner cancels it: that waits for the FOK. */
  const ask *best = &a[order[0]];
  Gm__Carbon__OrderRequest c = GM__CARBON__ORDER_REQUEST__INIT;
  c.order_id = (char *)best->id;
  Gm__Carbon__Order *o = (Gm__Carbon__Order *)ct_call(sellers[best->seller],
                                                      "order.cancel", &c.base);
  ck_assert_msg(o, "cancel of a held order: %s", ct_message);
  ck_assert_int_eq(o->state, GM__CARBON__ORDER_STATE__STATE_CANCEL_PENDING);
  ct_free(o);

  ct_expect("b", "order.place", &q.base, GM__STATUS__FAILED_PRECONDITION,
            "FOK order cannot fill in full");
  /* Replaying the call says the same (the expect used a fresh key: the
   * crashed call's own key replays too). */
  Gm__Carbon__PlaceReply *r = (Gm__Carbon__PlaceReply *)ct_call_idem(
      "b", "order.place", "fok-2", &q.base);
  ck_assert_msg(r == NULL, "the FOK's retry filled it");
  ck_assert_int_eq(ct_status, GM__STATUS__FAILED_PRECONDITION);
  ck_assert_ptr_nonnull(strstr(ct_message, "FOK order cannot fill in full"));
  expect_no_fok_left();
  /* Given back: the cancelled one ended, the rest in place. */
  o = (Gm__Carbon__Order *)ct_call(sellers[best->seller], "order.get", &c.base);
  ck_assert_msg(o, "order.get: %s", ct_message);
  ck_assert_int_eq(o->state, GM__CARBON__ORDER_STATE__STATE_CANCELLED);
  ck_assert_str_eq(o->reason, "cancelled by s0");
  ct_free(o);
  ck_assert_int_eq(asks_resting(), qty - taken->q - best->q);
  ck_assert_int_eq(redis_int("HGET %s tseq", "gm:{carbon:" SYM "}:i"), 1);
  Gm__Carbon__Account *b = ct_account("b", SYM);
  ck_assert_int_eq(b->cash_frozen, 0);
  ck_assert_int_eq(b->cash, CASH0);
  ct_free(b);
  /* Every ask left, in its own place: b2 takes them all in priority. */
  ask rest[N];
  int n = 0;
  for (int i = 0; i < N; i++)
    if (&a[i] != taken && &a[i] != best) rest[n++] = a[i];
  r = ct_limit("b2", SYM, CT_BUY, 8502, qty - taken->q - best->q, CT_GTC);
  expect_fills(r, rest, n);
  ct_free(r);
}
END_TEST
#endif

/*
 * The same race live: a deep book matched one resting order per step, and a
 * cancel sent from another connection while the call is matching.  The
 * order's fills stop exactly where the cancel found them.
 */
START_TEST(a_live_cancel_stops_a_matching_order) {
  enum { N = 600 };
  start("[market.carbon]\nmax_steps = 1000\n", 1);
  for (int i = 0; i < N; i++)
    ct_free(ct_limit(sellers[i % NS], SYM, CT_SELL, 8500, 1, CT_GTC));
  Gm__Carbon__PlaceRequest q = GM__CARBON__PLACE_REQUEST__INIT;
  q.symbol = SYM;
  q.side = CT_BUY;
  q.price = 8500;
  q.quantity = N;
  gm_test_send(ct_conn, 4242, "b", "carbon", "order.place", "live-1", &q.base);

  /* Its id, from Redis, as soon as it is in flight. */
  redisContext *rc = gm_test_redis_connect(ct_redis);
  char id[64] = "";
  for (int i = 0; i < 200000 && !id[0]; i++) {
    redisReply *k = gm_test_redis_cmd(rc, "HKEYS gm:{carbon:" SYM "}:fl");
    if (k->elements == 1)
      snprintf(id, sizeof id, "%s:%s", SYM, k->element[0]->str);
    freeReplyObject(k);
  }
  redisFree(rc);
  ck_assert_msg(id[0], "the order was never seen in flight");
  gm_test_conn *other =
      gm_test_conn_new(gm_test_gmd_endpoint(ct_gmd), NULL, NULL, NULL);
  Gm__Carbon__OrderRequest cr = GM__CARBON__ORDER_REQUEST__INIT;
  cr.order_id = id;
  Gm__Reply *cx =
      gm_test_call(other, "b", "carbon", "order.cancel", "live-cx", &cr.base);
  gm_test_conn_destroy(&other);
  ck_assert_ptr_nonnull(cx);
  ck_assert_msg(cx->status == GM__STATUS__OK,
                "cancel lost the race (status %d: %s); the book should be "
                "deep enough to still be matching",
                (int)cx->status, cx->message);
  Gm__Carbon__Order *c =
      gm__carbon__order__unpack(NULL, cx->body.len, cx->body.data);
  gm__reply__free_unpacked(cx, NULL);
  ck_assert_int_eq(c->state, GM__CARBON__ORDER_STATE__STATE_CANCEL_PENDING);
  int64_t at_cancel = c->filled;
  ct_free(c);

  Gm__Reply *pr = gm_test_conn_recv(ct_conn, 30000);
  ck_assert_ptr_nonnull(pr);
  ck_assert_int_eq((int)pr->request_id, 4242);
  ck_assert_int_eq(pr->status, GM__STATUS__OK);
  Gm__Carbon__PlaceReply *r =
      gm__carbon__place_reply__unpack(NULL, pr->body.len, pr->body.data);
  gm__reply__free_unpacked(pr, NULL);
  ck_assert_int_eq(r->order->state, GM__CARBON__ORDER_STATE__STATE_CANCELLED);
  ck_assert_str_eq(r->order->reason, "cancelled by b while it was matching");
  ck_assert_msg(r->order->filled == at_cancel,
                "%lld t filled, %lld t when the cancel was accepted",
                (long long)r->order->filled, (long long)at_cancel);
  ck_assert_int_eq((int64_t)r->n_fills, at_cancel);
  ck_assert(at_cancel < N);
  ct_free(r);
  ck_assert_int_eq(redis_int("HGET %s tseq", "gm:{carbon:" SYM "}:i"),
                   at_cancel);
  Gm__Carbon__Depth *d = ct_depth(SYM, 5);
  ck_assert_int_eq(d->n_asks, 1);
  ck_assert_int_eq(d->asks[0]->quantity, N - at_cancel);
  ck_assert_int_eq(d->n_bids, 0);
  ct_free(d);
  expect_conserved(at_cancel * 8500, at_cancel, 0);
}
END_TEST

/* records.close is mutating: a retry with the same key replays the first
 * reply; a new key closes nothing twice. */
START_TEST(records_close_retries_replay) {
  start(NULL, 64);
  ct_clock(ct_at(CT_MONDAY, 16, 0));
  Gm__Carbon__CloseRequest c = GM__CARBON__CLOSE_REQUEST__INIT;
  c.symbol = SYM;
  for (int i = 0; i < 3; i++) {
    Gm__Carbon__CloseReply *r = (Gm__Carbon__CloseReply *)ct_call_idem(
        "root", "records.close", i < 2 ? "close-1" : "close-2", &c.base);
    ck_assert_msg(r, "records.close: %s", ct_message);
    ck_assert_int_eq((int)r->n_closes, 1);
    ck_assert_str_eq(r->closes[0]->day, CT_MONDAY);
    ck_assert_int_eq(r->closes[0]->close, 8500);
    ck_assert_int_eq(r->closes[0]->already, i == 2);
    ct_free(r);
  }
  Gm__Reply *no_key =
      gm_test_call(ct_conn, "root", "carbon", "records.close", NULL, &c.base);
  ck_assert_ptr_nonnull(no_key);
  ck_assert_int_eq(no_key->status, GM__STATUS__INVALID_ARGUMENT);
  ck_assert_ptr_nonnull(strstr(no_key->message, "idempotency_key"));
  gm__reply__free_unpacked(no_key, NULL);
}
END_TEST

#ifdef GM_FAILURE_INJECTION
/*
 * Orders a FOK holds are out of the book, so a buy arriving meanwhile at
 * their price does not meet them.  It must not rest across them either: if
 * the FOK falls short and gives them back, the book would be crossed (a bid
 * at or above an ask, both resting, nothing trading them).
 */
START_TEST(a_fok_giving_back_never_crosses_the_book) {
  enum { MAXF = 2 };
  start("[market.carbon]\ntest_kill_after_step = 2\n", MAXF);
  ct_register("b2", "buyer");
  ct_deposit("b2", SYM, CASH0, 0);
  /* Two asks at 8500 and three at 8501: the FOK's two steps before the
   * crash hold the two at 8500 and two at 8501. */
  for (int i = 0; i < 5; i++)
    ct_free(ct_limit(sellers[i % NS], SYM, CT_SELL, i < 2 ? 8500 : 8501, 1,
                     CT_GTC));
  Gm__Carbon__PlaceRequest q = fok(6); /* one more than the book holds */
  q.price = 8501;
  char id[40];
  crash_mid_order(&q, "fok-3", id, sizeof id, 6 * 8501);
  restart("");
  ct_clock(ct_at(CT_MONDAY, 10, 0));
  ck_assert_int_eq(asks_resting(), 1); /* four are held */
  /* The instrument's hbn counts the held orders: an order about to rest
   * checks the held sets only when it is not 0.  Without it (held by a
   * broker before the count) they are counted at the next order that
   * would rest, b2's below, which still must not rest across them. */
  ck_assert_int_eq(redis_int("HGET %s hbn", "gm:{carbon:" SYM "}:i"), 4);
  ck_assert_int_eq(redis_int("HDEL %s hbn", "gm:{carbon:" SYM "}:i"), 1);
  /* b2 bids 8500: nothing in the book crosses it now. */
  Gm__Carbon__PlaceReply *t = ct_limit("b2", SYM, CT_BUY, 8500, 1, CT_GTC);
  ck_assert_int_eq((int)t->n_fills, 0);
  /* It does not rest across the held asks either: they may come back. */
  ck_assert_int_eq(t->order->state, GM__CARBON__ORDER_STATE__STATE_CANCELLED);
  ck_assert_ptr_nonnull(strstr(t->order->reason, "a FOK order is matching"));
  ct_free(t);
  /* The FOK's retry falls short and gives back the two asks at 8500. */
  Gm__Carbon__PlaceReply *r = (Gm__Carbon__PlaceReply *)ct_call_idem(
      "b", "order.place", "fok-3", &q.base);
  ck_assert_msg(r == NULL, "the FOK filled");
  ck_assert_int_eq(ct_status, GM__STATUS__FAILED_PRECONDITION);
  expect_no_fok_left();
  ck_assert_int_eq(redis_int("HGET %s hbn", "gm:{carbon:" SYM "}:i"), 0);
  Gm__Carbon__Depth *d = ct_depth(SYM, 5);
  ck_assert_int_eq((int)d->n_asks, 2);
  ck_assert_int_eq(d->asks[0]->price, 8500);
  ck_assert_int_eq(d->asks[0]->quantity, 2);
  ck_assert_msg(d->n_bids == 0 || d->bids[0]->price < d->asks[0]->price,
                "crossed book: bid %lld t at %lld, ask %lld t at %lld",
                (long long)d->bids[0]->quantity, (long long)d->bids[0]->price,
                (long long)d->asks[0]->quantity, (long long)d->asks[0]->price);
  int64_t bids = 0;
  for (size_t i = 0; i < d->n_bids; i++)
    bids += d->bids[i]->quantity * d->bids[i]->price;
  ct_free(d);
  /* b2 holds exactly what it has resting; b holds nothing. */
  Gm__Carbon__Account *a = ct_account("b2", SYM);
  ck_assert_int_eq(a->cash_frozen, bids);
  ck_assert_int_eq(a->cash + a->cash_frozen, CASH0);
  ct_free(a);
  a = ct_account("b", SYM);
  ck_assert_int_eq(a->cash_frozen, 0);
  ck_assert_int_eq(a->cash, CASH0);
  ct_free(a);
}
END_TEST
#endif

#ifdef GM_FAILURE_INJECTION
/*
 * A FOK cut by a crash once it holds enough (executing) just before the
 * close: the day closes (its deadline) before the retry executes it.  Its
 * trades must not land in a day already closed without them: the day's
 * close (volume, reference price for the next day) would disagree with the
 * trades of that day.
 */
START_TEST(a_fok_executing_never_trades_into_a_closed_day) {
  enum { MAXF = 2 };
  start("[market.carbon]\ntest_kill_after_step = 2\ninflight_ms = 3600000\n",
        MAXF);
  for (int i = 0; i < 4; i++)
    ct_free(ct_limit(sellers[i % NS], SYM, CT_SELL, 8500, 1, CT_GTC));
  ct_clock(ct_at(CT_MONDAY, 14, 59));
  /* Step 1 holds two asks, step 2 the third: it holds enough (executing). */
  Gm__Carbon__PlaceRequest q = fok(3);
  q.price = 8500;
  char id[40];
  crash_mid_order(&q, "fok-4", id, sizeof id, 3 * 8500);
  restart("");
  ct_clock(ct_at(CT_MONDAY, 15, 1)); /* the day deadline is due */
  Gm__Carbon__CloseRequest c = GM__CARBON__CLOSE_REQUEST__INIT;
  c.symbol = SYM;
  Gm__Carbon__CloseReply *cl =
      (Gm__Carbon__CloseReply *)ct_call("root", "records.close", &c.base);
  ck_assert_msg(cl, "records.close: %s", ct_message);
  ct_free(cl);
  Gm__Carbon__PlaceReply *r = (Gm__Carbon__PlaceReply *)ct_call_idem(
      "b", "order.place", "fok-4", &q.base);
  int64_t traded = r ? r->order->filled : 0;
  if (r) ct_free(r);
  expect_no_fok_left();
  /* Whatever the FOK did, Monday's close counts every trade of Monday. */
  cl = (Gm__Carbon__CloseReply *)ct_call("root", "records.close", &c.base);
  ck_assert_msg(cl, "records.close: %s", ct_message);
  ck_assert_int_eq((int)cl->n_closes, 1);
  ck_assert_str_eq(cl->closes[0]->day, CT_MONDAY);
  ck_assert_msg(cl->closes[0]->volume == traded,
                "the FOK traded %lld t on Monday, which closed with volume "
                "%lld",
                (long long)traded, (long long)cl->closes[0]->volume);
  ct_free(cl);
  expect_conserved(traded * 8500, traded, 0);
}
END_TEST
#endif

#ifdef GM_FAILURE_INJECTION /* needs gmd to die mid-call */
/* An order a broker of the previous layout left in flight (its open-order
 * set holds the 12-hex id) and this one finishes: once it rests, the set
 * holds it once, not as both the hex id and the decimal sequence (two
 * members for one order: SCARD and mass cancel's remaining count it twice,
 * and order.list can show it on two pages). */
START_TEST(an_order_in_flight_of_the_previous_layout_rests_once) {
  enum { MAXF = 2, N = 10, MORE = 5 };
  ask a[N];
  start("[market.carbon]\ntest_kill_after_step = 2\n", MAXF);
  place_asks(a, N);
  int64_t qty = MORE;
  for (int i = 0; i < N; i++) qty += a[i].q;
  Gm__Carbon__PlaceRequest q = GM__CARBON__PLACE_REQUEST__INIT;
  q.symbol = SYM;
  q.side = CT_BUY;
  q.price = 8502;
  q.quantity = qty;
  char id[40];
  int order[N];
  by_priority(a, N, order);
  int64_t left = qty;
  for (int k = 0; k < 2 * MAXF; k++) left -= a[order[k]].q;
  crash_mid_order(&q, "crash-old", id, sizeof id, left * 8502);

  /* What the previous layout wrote: the id itself, not its sequence. */
  redisContext *rc = gm_test_redis_connect(ct_redis);
  const char *set = "gm:{carbon:" SYM "}:op:b";
  ck_assert_int_eq(
      gm_test_redis_int(rc, "SREM %s %llu", set, strtoull(id, NULL, 16)), 1);
  ck_assert_int_eq(gm_test_redis_int(rc, "SADD %s %s", set, id), 1);

  restart("");
  ct_clock(ct_at(CT_MONDAY, 10, 0));
  Gm__Carbon__PlaceReply *r = (Gm__Carbon__PlaceReply *)ct_call_idem(
      "b", "order.place", "crash-old", &q.base);
  ck_assert_msg(r, "retry: %s", ct_message);
  ck_assert_int_eq(r->order->state, GM__CARBON__ORDER_STATE__STATE_PARTIAL);
  ck_assert_int_eq(r->order->remaining, MORE);
  ct_free(r);
  ck_assert_int_eq(gm_test_redis_int(rc, "SCARD %s", set), 1);

  /* order.list a page of one at a time: the order once. */
  Gm__Carbon__ListOrdersRequest lr = GM__CARBON__LIST_ORDERS_REQUEST__INIT;
  lr.symbol = SYM;
  lr.limit = 1;
  int seen = 0;
  char cursor[256] = "";
  for (int page = 0; page < 8; page++) {
    lr.cursor = cursor;
    Gm__Carbon__OrderList *l =
        (Gm__Carbon__OrderList *)ct_call("b", "order.list", &lr.base);
    ck_assert_msg(l, "%s", ct_message);
    seen += (int)l->n_orders;
    snprintf(cursor, sizeof cursor, "%s", l->next_cursor ? l->next_cursor : "");
    ct_free(l);
    if (!cursor[0]) break;
  }
  ck_assert_int_eq(seen, 1);

  Gm__Carbon__MassCancelRequest mc = GM__CARBON__MASS_CANCEL_REQUEST__INIT;
  mc.symbol = SYM;
  Gm__Carbon__MassCancelReply *m = (Gm__Carbon__MassCancelReply *)ct_call(
      "b", "order.mass_cancel", &mc.base);
  ck_assert_msg(m, "%s", ct_message);
  ck_assert_int_eq(m->n_cancelled, 1);
  ck_assert_int_eq(m->remaining, 0);
  ct_free(m);
  ck_assert_int_eq(gm_test_redis_int(rc, "EXISTS %s", set), 0);
  redisFree(rc);
}
END_TEST
#endif

int main(void) {
  Suite *s = suite_create("carbon continue");
  TCase *tc = tcase_create("continue");
  tcase_add_checked_fixture(tc, NULL, teardown);
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, one_call_sweeps_three_times_max_fills);
  tcase_add_test(tc, the_whole_call_is_bounded_by_max_steps);
#ifdef GM_FAILURE_INJECTION /* gmd killed between two steps of an order */
  tcase_add_test(tc, a_retry_resumes_an_order_cut_by_a_crash);
  tcase_add_test(tc, the_inflight_deadline_finishes_an_abandoned_order);
  tcase_add_test(tc, a_cancel_wins_over_an_order_in_flight);
  tcase_add_test(tc, the_inflight_deadline_honours_a_pending_cancel);
  tcase_add_test(tc, mass_cancel_reaches_an_order_in_flight);
  tcase_add_test(tc, a_fok_holds_what_it_counted);
  tcase_add_test(tc, a_fok_that_falls_short_gives_back_what_it_held);
  tcase_add_test(tc, a_fok_giving_back_never_crosses_the_book);
  tcase_add_test(tc, a_fok_executing_never_trades_into_a_closed_day);
  tcase_add_test(tc, an_order_in_flight_of_the_previous_layout_rests_once);
#endif
  tcase_add_test(tc, a_fok_fills_past_max_fills_or_not_at_all);
  tcase_add_test(tc, a_fok_is_bounded_by_max_steps);
  tcase_add_test(tc, a_fok_gives_back_the_rest_of_its_last_order);
  tcase_add_test(tc, records_close_retries_replay);
  tcase_add_test(tc, a_live_cancel_stops_a_matching_order);
  suite_add_tcase(s, tc);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
