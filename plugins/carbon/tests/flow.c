/* Carbon order flow for the cluster tests (flow.h). */
#include "flow.h"

#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cluster_failover.h"

#define MAX_TRADERS 8
#define MAX_ORDERS 40000
#define MAX_TRADES 80000
#define MAX_TRIES 500

typedef struct trader {
  pthread_t th;
  int running;
  gm_test_conn *conn;
  char who[16];
  int buy;
  unsigned seed;
  char (*orders)[40]; /* acknowledged places' order ids */
  int norders;
  char (*trades)[40]; /* the trade ids of their fills */
  int ntrades;
  char (*resting)[40]; /* orders that rested when placed: cancel candidates */
  int nresting;
  char (*cancelled)[40]; /* orders whose cancel was answered OK */
  int ncancelled;
  int born_cancelled; /* places answered with the order cancelled */
  int calls, retried, during, during_retried, bad, unavailable;
  double longest;
  char why[256];
} trader;

static trader traders[MAX_TRADERS];
static int ntraders;
static char sym[32];
static int64_t ref;
static atomic_int stop_flow, window;
/* µs of the latest answered call, and the longest gap between two. */
static atomic_llong last_ok_us, max_gap_us;

static long long now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

double ct_now_ms(void) {
  return (double)now_us() / 1e3;
}

/* An answer came now: the time since the previous one (any thread's) is a
   gap in service. */
static void answered(void) {
  long long now = now_us(), prev = atomic_exchange(&last_ok_us, now);
  long long gap = prev ? now - prev : 0, max = atomic_load(&max_gap_us);
  while (gap > max && !atomic_compare_exchange_weak(&max_gap_us, &max, gap)) {
  }
}

/* One call under `idem`, sent again under the same key while gmd answers
   UNAVAILABLE or not at all; the reply, or NULL with t->bad set after
   MAX_TRIES.  Counts the call and whether it retried. */
static Gm__Reply *call_retrying(trader *t, const char *method, const char *idem,
                                const ProtobufCMessage *req) {
  int during = atomic_load(&window);
  long long t0 = now_us();
  for (int tries = 1; tries <= MAX_TRIES; tries++) {
    Gm__Reply *r = gm_test_call(t->conn, t->who, "carbon", method, idem, req);
    if (r && r->status != GM__STATUS__UNAVAILABLE) {
      answered();
      during |= atomic_load(&window);
      double waited = (double)(now_us() - t0) / 1e3;
      t->calls++;
      t->retried += tries > 1;
      if (tries > 1 && waited > t->longest) t->longest = waited;
      t->during += during;
      t->during_retried += during && tries > 1;
      return r;
    }
    if (r) gm__reply__free_unpacked(r, NULL);
    t->unavailable++;
    during |= atomic_load(&window);
    gm_test_sleep_ms(10);
  }
  snprintf(t->why, sizeof t->why, "%s %s: still UNAVAILABLE after %d tries",
           method, idem, MAX_TRIES);
  t->bad = 1;
  return NULL;
}

static void trader_place(trader *t, int n) {
  char idem[32];
  snprintf(idem, sizeof idem, "%s-%d", t->who, n);
  Gm__Carbon__PlaceRequest req = GM__CARBON__PLACE_REQUEST__INIT;
  req.symbol = sym;
  req.side = t->buy ? CT_BUY : CT_SELL;
  /* Buys ref-5..ref+4, sells ref-4..ref+5: about half cross, the rest
     rest. */
  req.price = ref - 5 + (int64_t)(rand_r(&t->seed) % 10) + !t->buy;
  req.quantity = 1 + rand_r(&t->seed) % 10;
  req.tif = CT_GTC;
  Gm__Reply *r = call_retrying(t, "order.place", idem, &req.base);
  if (!r) return;
  Gm__Carbon__PlaceReply *p =
      (Gm__Carbon__PlaceReply *)ct_reply_body("order.place", r);
  if (!p) {
    snprintf(t->why, sizeof t->why, "order.place %s: status %d: %s", idem,
             r->status, r->message);
    t->bad = 1;
  } else {
    snprintf(t->orders[t->norders++], 40, "%s", p->order->id);
    for (size_t i = 0; i < p->n_fills && t->ntrades < MAX_TRADES; i++)
      snprintf(t->trades[t->ntrades++], 40, "%s", p->fills[i]->trade_id);
    if (p->order->state == GM__CARBON__ORDER_STATE__STATE_OPEN ||
        p->order->state == GM__CARBON__ORDER_STATE__STATE_PARTIAL)
      snprintf(t->resting[t->nresting++], 40, "%s", p->order->id);
    t->born_cancelled +=
        p->order->state == GM__CARBON__ORDER_STATE__STATE_CANCELLED;
    ct_free(p);
  }
  gm__reply__free_unpacked(r, NULL);
}

/* Cancels one of the orders that rested (taken out of the list): OK (the
   order is noted: it must end cancelled), or NOT_FOUND when it has been
   filled since. */
static void trader_cancel(trader *t, int n) {
  char idem[32];
  int k = rand_r(&t->seed) % t->nresting;
  Gm__Carbon__OrderRequest req = GM__CARBON__ORDER_REQUEST__INIT;
  req.order_id = t->resting[k];
  snprintf(idem, sizeof idem, "%s-%d", t->who, n);
  Gm__Reply *r = call_retrying(t, "order.cancel", idem, &req.base);
  if (r && r->status != GM__STATUS__OK && r->status != GM__STATUS__NOT_FOUND) {
    snprintf(t->why, sizeof t->why, "order.cancel %s of %s: status %d: %s",
             idem, t->resting[k], r->status, r->message);
    t->bad = 1;
  }
  if (r && r->status == GM__STATUS__OK)
    memcpy(t->cancelled[t->ncancelled++], t->resting[k], 40);
  if (r) gm__reply__free_unpacked(r, NULL);
  memcpy(t->resting[k], t->resting[--t->nresting], 40);
}

static void *trader_run(void *arg) {
  trader *t = arg;
  for (int n = 0; !atomic_load(&stop_flow) && !t->bad; n++) {
    if (n % 6 == 5 && t->nresting > 0)
      trader_cancel(t, n);
    else if (t->norders < MAX_ORDERS && t->ntrades + 10 <= MAX_TRADES)
      trader_place(t, n);
    else
      break; /* room for no more: the flow goes on in the others */
  }
  return NULL;
}

void ct_flow_start(const char *symbol, int64_t ref_price, int n,
                   unsigned seed) {
  ck_assert_int_le(n, MAX_TRADERS);
  ct_flow_free();
  snprintf(sym, sizeof sym, "%s", symbol);
  ref = ref_price;
  ntraders = n;
  atomic_store(&stop_flow, 0);
  atomic_store(&window, 0);
  atomic_store(&last_ok_us, 0);
  atomic_store(&max_gap_us, 0);
  for (int i = 0; i < n; i++) {
    trader *t = &traders[i];
    snprintf(t->who, sizeof t->who, "t%d", i);
    t->buy = i % 2 == 0;
    t->seed = seed + (unsigned)i;
    t->orders = calloc(MAX_ORDERS, 40);
    t->trades = calloc(MAX_TRADES, 40);
    t->resting = calloc(MAX_ORDERS, 40);
    t->cancelled = calloc(MAX_ORDERS, 40);
    ck_assert(t->orders && t->trades && t->resting && t->cancelled);
    ct_register(t->who, "buyer,seller");
    ct_deposit(t->who, sym, CT_FLOW_CASH, CT_FLOW_ALW);
    t->conn = gm_test_conn_new(gm_test_gmd_endpoint(ct_gmd), NULL, NULL, NULL);
  }
  for (int i = 0; i < n; i++) {
    ck_assert_int_eq(
        pthread_create(&traders[i].th, NULL, trader_run, &traders[i]), 0);
    traders[i].running = 1;
  }
}

void ct_flow_window(int open) {
  atomic_store(&window, open);
}

static void join_all(void) {
  atomic_store(&stop_flow, 1);
  for (int i = 0; i < ntraders; i++)
    if (traders[i].running) {
      pthread_join(traders[i].th, NULL);
      traders[i].running = 0;
    }
}

void ct_flow_stop(ct_flow_totals *out) {
  join_all();
  memset(out, 0, sizeof *out);
  for (int i = 0; i < ntraders; i++) {
    trader *t = &traders[i];
    ck_assert_msg(!t->bad, "%s: %s", t->who, t->why);
    out->calls += t->calls;
    out->retried += t->retried;
    out->during += t->during;
    out->during_retried += t->during_retried;
    out->unavailable += t->unavailable;
    out->norders += t->norders;
    out->ntrades += t->ntrades;
    out->ncancelled += t->ncancelled + t->born_cancelled;
    if (t->longest > out->longest) out->longest = t->longest;
  }
  out->gap = (double)atomic_load(&max_gap_us) / 1e3;
}

void ct_flow_free(void) {
  join_all();
  for (int i = 0; i < MAX_TRADERS; i++) {
    gm_test_conn_destroy(&traders[i].conn);
    free(traders[i].orders);
    free(traders[i].trades);
    free(traders[i].resting);
    free(traders[i].cancelled);
  }
  memset(traders, 0, sizeof traders);
  ntraders = 0;
}

long long ct_inst_field(gm_test_cluster *cl, int node, const char *symbol,
                        const char *field) {
  redisContext *rc = gm_test_cluster_connect(cl, node);
  redisReply *r =
      gm_test_redis_cmd(rc, "HGET gm:{carbon:%s}:i %s", symbol, field);
  long long v = r->type == REDIS_REPLY_STRING ? atoll(r->str) : -1;
  freeReplyObject(r);
  redisFree(rc);
  return v;
}

void ct_ledger_once(const char *sql, char (*ids)[40], int n, const char *what) {
  sqlite3 *db;
  sqlite3_stmt *st;
  ck_assert_int_eq(sqlite3_open_v2(gm_test_gmd_ledger(ct_gmd), &db,
                                   SQLITE_OPEN_READONLY, NULL),
                   SQLITE_OK);
  sqlite3_busy_timeout(db, 5000);
  ck_assert_int_eq(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
  for (int i = 0; i < n; i++) {
    sqlite3_bind_text(st, 1, ids[i], -1, SQLITE_STATIC);
    ck_assert_int_eq(sqlite3_step(st), SQLITE_ROW);
    ck_assert_msg(sqlite3_column_int64(st, 0) == 1,
                  "%s %s: the ledger counts %lld, not 1, for %s", what, ids[i],
                  (long long)sqlite3_column_int64(st, 0), sql);
    sqlite3_reset(st);
  }
  sqlite3_finalize(st);
  sqlite3_close(db);
}

static int cmp_id(const void *a, const void *b) {
  return strcmp(a, b);
}

/* Sorts ids[0..n) and asserts no id is there twice: two replies naming
   one order or trade would let a count plus a look-up of each id pass with
   one of them missing. */
static void sort_distinct(char (*ids)[40], int n, const char *what) {
  qsort(ids, (size_t)n, 40, cmp_id);
  for (int i = 1; i < n; i++)
    ck_assert_msg(strcmp(ids[i - 1], ids[i]) != 0,
                  "%s %s is named by two replies", what, ids[i]);
}

/* The ids of every trader's orders (else trades), in one array of `n`
   (free it). */
static void *gather(int orders, int n) {
  char(*all)[40] = calloc((size_t)n + 1, 40);
  ck_assert(all);
  int k = 0;
  for (int i = 0; i < ntraders; i++) {
    trader *t = &traders[i];
    int m = orders ? t->norders : t->ntrades;
    ck_assert_int_le(k + m, n);
    memcpy(all[k], orders ? t->orders : t->trades, (size_t)m * 40);
    k += m;
  }
  ck_assert_int_eq(k, n);
  return all;
}

/* The trade ids in `sym`'s outbox (read on `node`), sorted; how many. */
static int outbox_trades(gm_test_cluster *cl, int node, char (*out)[40],
                         int cap) {
  redisContext *rc = gm_test_cluster_connect(cl, node);
  redisReply *r =
      gm_test_redis_cmd(rc, "XRANGE gm:{carbon:%s}:outbox - +", sym);
  int n = 0;
  for (size_t i = 0; i < r->elements; i++) {
    redisReply *f = r->element[i]->element[1];
    /* A call's entry (kind order, r "2": CARBON_EV_CALL, then a field
       "trade" per trade) or a lone record's (kind trade, r): carbon.h. */
    if (f->elements < 4 || strcmp(f->element[0]->str, "kind") ||
        strcmp(f->element[2]->str, "r"))
      continue;
    int call = !strcmp(f->element[1]->str, "order") &&
               !strcmp(f->element[3]->str, "2");
    int lone = !strcmp(f->element[1]->str, "trade");
    if (!call && !lone) continue;
    for (size_t j = call ? 4 : 2; j + 1 < f->elements; j += 2) {
      if (call && strcmp(f->element[j]->str, "trade")) continue;
      const char *rec = f->element[j + 1]->str;
      /* The packed record: "<version>|<local trade id>|buyer|..."; replies
         name a trade "<symbol>:<local id>". */
      ck_assert_msg(strchr(rec, '|'), "entry %s: a trade record %s",
                    r->element[i]->element[0]->str, rec);
      const char *id = strchr(rec, '|') + 1;
      size_t len = strcspn(id, "|");
      ck_assert_int_lt(n, cap);
      ck_assert_uint_lt(len + strlen(sym) + 1, 40);
      snprintf(out[n++], 40, "%s:%.*s", sym, (int)len, id);
    }
  }
  freeReplyObject(r);
  redisFree(rc);
  qsort(out, (size_t)n, 40, cmp_id);
  return n;
}

/* How many entries `sym`'s outbox was ever given (XINFO STREAM's
   entries-added, which MIGRATE and replication keep), read on `node`. */
static long long outbox_added(gm_test_cluster *cl, int node) {
  redisContext *rc = gm_test_cluster_connect(cl, node);
  redisReply *r =
      gm_test_redis_cmd(rc, "XINFO STREAM gm:{carbon:%s}:outbox", sym);
  long long added = -1;
  for (size_t i = 0; i + 1 < r->elements; i += 2)
    if (r->element[i]->type == REDIS_REPLY_STRING &&
        !strcmp(r->element[i]->str, "entries-added"))
      added = r->element[i + 1]->integer;
  freeReplyObject(r);
  redisFree(rc);
  return added;
}

/* The trades: sequence, outbox (held), settled once, nothing set aside. */
static void check_trades(gm_test_cluster *cl, int node, int held, int n) {
  ck_assert_int_eq(ct_inst_field(cl, node, sym, "tseq"), n);
  char(*mine)[40] = gather(0, n);
  sort_distinct(mine, n, "trade");
  if (held) {
    char(*boxed)[40] = calloc((size_t)n + 1, 40);
    ck_assert(boxed);
    ck_assert_int_eq(outbox_trades(cl, node, boxed, n + 1), n);
    for (int i = 0; i < n; i++) ck_assert_str_eq(mine[i], boxed[i]);
    free(boxed);
    ct_ledger_release();
  }
  char sql[160];
  snprintf(sql, sizeof sql,
           "SELECT count(*) FROM carbon_trades WHERE symbol = '%s'", sym);
  for (int i = 0; i < 3 && ct_ledger_int(sql) != n; i++) ct_ledger_wait(sql, n);
  ck_assert_int_eq(ct_ledger_int(sql), n);
  ct_ledger_once("SELECT count(*) FROM carbon_trades WHERE trade_id = ?", mine,
                 n, "trade");
  /* Each entry settled once: ct_flow_check counts gm_settled against the
     outbox's entries-added (a call's trades share its entry, carbon.h). */
  ck_assert_int_eq(ct_ledger_int("SELECT count(*) FROM gm_dead_letter"), 0);
  free(mine);
}

/* The orders: sequence, one ledger row each, the cancels' effects,
   order.get. */
static void check_orders(gm_test_cluster *cl, int node, int n, int other,
                         int ncancelled) {
  ck_assert_int_eq(ct_inst_field(cl, node, sym, "seq"), n + other);
  char(*placed)[40] = gather(1, n);
  sort_distinct(placed, n, "order");
  free(placed);
  char sql[200];
  snprintf(sql, sizeof sql,
           "SELECT count(*) FROM carbon_orders WHERE symbol = '%s'", sym);
  ct_ledger_wait(sql, n + other);
  ck_assert_int_eq(ct_ledger_int(sql), n + other);
  /* Every cancel answered OK took effect: its order ended cancelled, and
     no other did but those their place's reply said were (each trader is
     on one side: no self-trade prevention). */
  snprintf(sql, sizeof sql,
           "SELECT count(*) FROM carbon_orders WHERE symbol = '%s' AND "
           "state = %d",
           sym, GM__CARBON__ORDER_STATE__STATE_CANCELLED);
  ct_ledger_wait(sql, ncancelled);
  ck_assert_int_eq(ct_ledger_int(sql), ncancelled);
  snprintf(sql, sizeof sql,
           "SELECT count(*) FROM carbon_orders WHERE order_id = ? AND "
           "state = %d",
           GM__CARBON__ORDER_STATE__STATE_CANCELLED);
  for (int i = 0; i < ntraders; i++) {
    trader *t = &traders[i];
    ct_ledger_once("SELECT count(*) FROM carbon_orders WHERE order_id = ?",
                   t->orders, t->norders, "order");
    ct_ledger_once(sql, t->cancelled, t->ncancelled,
                   "order cancelled (answered OK)");
    for (int j = 0; j < t->norders; j += 7) { /* a sample: 1 in 7 */
      Gm__Carbon__OrderRequest g = GM__CARBON__ORDER_REQUEST__INIT;
      g.order_id = t->orders[j];
      Gm__Carbon__Order *o =
          (Gm__Carbon__Order *)ct_call(t->who, "order.get", &g.base);
      ck_assert_msg(o, "order.get %s: %s", t->orders[j], ct_message);
      ck_assert_str_eq(o->participant, t->who);
      ct_free(o);
    }
  }
}

void ct_flow_check(gm_test_cluster *cl, int node, int held, int other_orders) {
  ct_flow_totals t;
  ct_flow_stop(&t);
  check_trades(cl, node, held, t.ntrades);
  check_orders(cl, node, t.norders, other_orders, t.ncancelled);
  /* Every entry the outbox was ever given (each script call's orders and
     trades, the deposits' moves) is settled once: gm_settled has one row
     per entry (its primary key), and as many as entries-added. */
  long long added = outbox_added(cl, node);
  ck_assert_int_gt(added, t.norders + other_orders);
  char sql[160];
  snprintf(sql, sizeof sql,
           "SELECT count(*) FROM gm_settled WHERE stream = "
           "'gm:{carbon:%s}:outbox'",
           sym);
  ct_ledger_wait(sql, added);
  ck_assert_int_eq(ct_ledger_int(sql), added);
  /* Cash and allowances: what was deposited, wherever it is now. */
  int64_t cash = 0, alw = 0;
  for (int i = 0; i < ntraders; i++) {
    Gm__Carbon__Account *a = ct_account(traders[i].who, sym);
    cash += a->cash + a->cash_frozen;
    alw += a->allowances + a->allowances_frozen + a->allowances_locked;
    ct_free(a);
  }
  ck_assert_int_eq(cash, ntraders * CT_FLOW_CASH);
  ck_assert_int_eq(alw, ntraders * CT_FLOW_ALW);
}

int ct_fail_over(gm_test_cluster *cl, int victim, void (*while_dead)(void)) {
  gm_test_cluster_kill(cl, victim);
  if (while_dead) while_dead();
  return gm_test_cluster_promote(cl, victim);
}
