/*
 * Carbon orders while their instrument's slot migrates (issue 12): on a
 * private 3-master Redis Cluster, `redis-cli --cluster reshard` moves the
 * one slot of instrument CEA-R2704's tag to another master while threads
 * place crossing orders and cancel some, each call under an idempotency key
 * and retried under the same key while gmd answers UNAVAILABLE (some call
 * must have been).  Then: every acknowledged order exists once (no id in
 * two replies), every cancel answered OK left its order cancelled, cash and
 * allowances are conserved, every trade is settled once in the ledger (and,
 * in the case that holds the settler back during the move, is exactly one
 * of the trades in the instrument's outbox), so is every entry the outbox
 * was ever given, and the slot lives on the target master.  ctest label
 * "cluster".
 */
#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "harness.h"

/* "carbon:CEA-R2704" hashes to slot 5461, the first slot `redis-cli
 * --cluster create` gives the second of 3 masters (5461-10922).  redis-cli
 * --cluster reshard takes a source's slots in ascending order, so a reshard
 * of 1 slot from that master moves exactly this instrument's slot (checked
 * below, not assumed). */
#define SYM "CEA-R2704"
#define INST_KEY "gm:{carbon:" SYM "}:i"
#define OUTBOX_KEY "gm:{carbon:" SYM "}:outbox"
#define REF 8500
#define TRADERS 4 /* t0 t2 buy, t1 t3 sell */
#define MAX_ORDERS 40000
#define MAX_TRADES 80000
#define MAX_TRIES 500

static const int64_t cash0 = INT64_C(100000000000), alw0 = 10000000;

static gm_test_cluster *cl;

typedef struct trader {
  pthread_t th;
  gm_test_conn *conn;
  char who[8];
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
  int calls, retried, during, during_retried, bad;
  int unavailable; /* UNAVAILABLE answers (or none within 5 s) in all */
  double longest;  /* ms from a retried call's first send to its answer */
  char why[256];
} trader;

static trader traders[TRADERS];
static atomic_int stop_flow, moving;

static void teardown(void) {
  for (int i = 0; i < TRADERS; i++) {
    gm_test_conn_destroy(&traders[i].conn);
    free(traders[i].orders);
    free(traders[i].trades);
    free(traders[i].resting);
    free(traders[i].cancelled);
  }
  memset(traders, 0, sizeof traders);
  ct_stop();
  gm_test_cluster_stop(&cl);
}

static void nap_ms(int ms) {
  nanosleep(&(struct timespec){ms / 1000, (ms % 1000) * 1000000L}, NULL);
}

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* One call under `idem`, sent again under the same key while gmd answers
   UNAVAILABLE or not at all (what a client does); the reply, or NULL with
   t->bad set after MAX_TRIES.  Counts the call and whether it retried. */
static Gm__Reply *call_retrying(trader *t, const char *method, const char *idem,
                                const ProtobufCMessage *req) {
  int during = atomic_load(&moving);
  double t0 = now_ms();
  for (int tries = 1; tries <= MAX_TRIES; tries++) {
    Gm__Reply *r = gm_test_call(t->conn, t->who, "carbon", method, idem, req);
    if (r && r->status != GM__STATUS__UNAVAILABLE) {
      during |= atomic_load(&moving);
      t->calls++;
      t->retried += tries > 1;
      if (tries > 1 && now_ms() - t0 > t->longest) t->longest = now_ms() - t0;
      t->during += during;
      t->during_retried += during && tries > 1;
      return r;
    }
    if (r) gm__reply__free_unpacked(r, NULL);
    t->unavailable++;
    during |= atomic_load(&moving);
    nap_ms(10);
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
  req.symbol = SYM;
  req.side = t->buy ? CT_BUY : CT_SELL;
  /* Buys 8495-8504, sells 8496-8505: about half cross, the rest rest. */
  req.price = REF - 5 + (int64_t)(rand_r(&t->seed) % 10) + !t->buy;
  req.quantity = 1 + rand_r(&t->seed) % 10;
  req.tif = CT_GTC;
  Gm__Reply *r = call_retrying(t, "order.place", idem, &req.base);
  if (!r) return;
  Gm__Carbon__PlaceReply *p =
      (Gm__Carbon__PlaceReply *)ct_reply_body("order.place", r);
  if (!p || t->norders >= MAX_ORDERS) {
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
    else if (t->norders < MAX_ORDERS)
      trader_place(t, n);
    else
      break; /* room for no more: the flow goes on in the others */
  }
  return NULL;
}

/* The trade ids in `sym`'s outbox (read from `node`), sorted; how many. */
static int outbox_trades(int node, char (*out)[40], int cap) {
  redisContext *rc = gm_test_cluster_connect(cl, node);
  redisReply *r = gm_test_redis_cmd(rc, "XRANGE " OUTBOX_KEY " - +");
  int n = 0;
  for (size_t i = 0; i < r->elements; i++) {
    redisReply *f = r->element[i]->element[1];
    const char *kind = NULL, *rec = NULL;
    for (size_t j = 0; j + 1 < f->elements; j += 2) {
      if (!strcmp(f->element[j]->str, "kind")) kind = f->element[j + 1]->str;
      if (!strcmp(f->element[j]->str, "r")) rec = f->element[j + 1]->str;
    }
    if (!kind || strcmp(kind, "trade")) continue;
    /* The packed record: "<version>|<local trade id>|buyer|..."; replies
       name a trade "<symbol>:<local id>". */
    ck_assert_msg(rec && strchr(rec, '|'), "trade entry %s without a record",
                  r->element[i]->element[0]->str);
    const char *id = strchr(rec, '|') + 1;
    size_t len = strcspn(id, "|");
    ck_assert_int_lt(n, cap);
    ck_assert_uint_lt(len + sizeof SYM, 40);
    snprintf(out[n++], 40, "%s:%.*s", SYM, (int)len, id);
  }
  freeReplyObject(r);
  redisFree(rc);
  qsort(out, (size_t)n, 40, (int (*)(const void *, const void *))strcmp);
  return n;
}

/* How many entries the instrument's outbox was ever given (XINFO STREAM's
   entries-added, which MIGRATE keeps), read on `node`. */
static long long outbox_added(int node) {
  redisContext *rc = gm_test_cluster_connect(cl, node);
  redisReply *r = gm_test_redis_cmd(rc, "XINFO STREAM " OUTBOX_KEY);
  long long added = -1;
  for (size_t i = 0; i + 1 < r->elements; i += 2)
    if (r->element[i]->type == REDIS_REPLY_STRING &&
        !strcmp(r->element[i]->str, "entries-added"))
      added = r->element[i + 1]->integer;
  freeReplyObject(r);
  redisFree(rc);
  return added;
}

/* An integer field of the instrument's hash, read on `node`. */
static long long inst_field(int node, const char *field) {
  redisContext *rc = gm_test_cluster_connect(cl, node);
  redisReply *r = gm_test_redis_cmd(rc, "HGET " INST_KEY " %s", field);
  long long v = r->type == REDIS_REPLY_STRING ? atoll(r->str) : -1;
  freeReplyObject(r);
  redisFree(rc);
  return v;
}

/* Sorts ids[0..n) and asserts no id is there twice: two replies naming
   one order or trade would let a count plus a look-up of each id pass with
   one of them missing. */
static void sort_distinct(char (*ids)[40], int n, const char *what) {
  qsort(ids, (size_t)n, 40, (int (*)(const void *, const void *))strcmp);
  for (int i = 1; i < n; i++)
    ck_assert_msg(strcmp(ids[i - 1], ids[i]) != 0,
                  "%s %s is named by two replies", what, ids[i]);
}

/* How many rows `sql` (one text parameter) counts for each of ids[0..n):
   asserts each is exactly 1 (`what` says what that row is). */
static void ledger_once(const char *sql, char (*ids)[40], int n,
                        const char *what) {
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

/* The flow, the move and every check.  hold: the settler waits out the
   move (the test holds the ledger's write lock), so the outbox keeps every
   entry and the test compares it with the replies' fills; else it settles
   while the slot moves (its reads and acks follow the stream to the new
   master). */
static void orders_while_the_slot_moves(int hold) {
  cl = gm_test_cluster_start(3, 0, 1000);
  redisContext *rc = gm_test_cluster_connect(cl, 0);
  int slot = (int)gm_test_redis_int(rc, "CLUSTER KEYSLOT " INST_KEY);
  redisFree(rc);
  int from = gm_test_cluster_owner(cl, slot), to = (from + 1) % 3;
  ck_assert_int_ge(from, 0);
  ck_assert_msg(slot == 0 || gm_test_cluster_owner(cl, slot - 1) != from,
                "slot %d is not the first slot of its master: a reshard of "
                "1 slot would move another",
                slot);

  ct_start_cluster(cl, NULL, ct_at(CT_MONDAY, 10, 0));
  ct_create(SYM, REF);
  for (int i = 0; i < TRADERS; i++) {
    trader *t = &traders[i];
    snprintf(t->who, sizeof t->who, "t%d", i);
    t->buy = i % 2 == 0;
    t->seed = 20261202u + (unsigned)i;
    t->orders = calloc(MAX_ORDERS, 40);
    t->trades = calloc(MAX_TRADES, 40);
    t->resting = calloc(MAX_ORDERS, 40);
    t->cancelled = calloc(MAX_ORDERS, 40);
    ck_assert(t->orders && t->trades && t->resting && t->cancelled);
    ct_register(t->who, "buyer,seller");
    ct_deposit(t->who, SYM, cash0, alw0);
    t->conn = gm_test_conn_new(gm_test_gmd_endpoint(ct_gmd), NULL, NULL, NULL);
  }
  /* The settler waits (the ledger is busy) so the outbox keeps every entry
     for the check; it retries, and settles all once released. */
  if (hold) ct_ledger_hold();
  atomic_store(&stop_flow, 0);
  atomic_store(&moving, 0);
  for (int i = 0; i < TRADERS; i++)
    ck_assert_int_eq(
        pthread_create(&traders[i].th, NULL, trader_run, &traders[i]), 0);
  /* Orders first, so the slot holds the instrument's keys and many
     idempotency records when it moves. */
  nap_ms(3000);
  rc = gm_test_cluster_connect(cl, from);
  long long keys = gm_test_redis_int(rc, "CLUSTER COUNTKEYSINSLOT %d", slot);
  redisFree(rc);
  double t0 = now_ms();
  atomic_store(&moving, 1);
  pid_t cli = gm_test_cluster_reshard(cl, from, to, 1);
  int st;
  while ((st = gm_test_cluster_reshard_done(cli)) < 0) nap_ms(5);
  atomic_store(&moving, 0);
  double move_ms = now_ms() - t0;
  nap_ms(500);
  atomic_store(&stop_flow, 1);
  for (int i = 0; i < TRADERS; i++) pthread_join(traders[i].th, NULL);
  ck_assert_msg(st == 0,
                "redis-cli --cluster reshard exited with %d; see "
                "redis.log in the cluster's folder",
                st);
  gm_test_cluster_wait_ok(cl);

  int calls = 0, retried = 0, during = 0, during_retried = 0, norders = 0,
      ntrades = 0, unavailable = 0, ncancelled = 0;
  double longest = 0;
  for (int i = 0; i < TRADERS; i++) {
    trader *t = &traders[i];
    ck_assert_msg(!t->bad, "%s: %s", t->who, t->why);
    calls += t->calls;
    retried += t->retried;
    during += t->during;
    during_retried += t->during_retried;
    norders += t->norders;
    ntrades += t->ntrades;
    ncancelled += t->ncancelled + t->born_cancelled;
    unavailable += t->unavailable;
    if (t->longest > longest) longest = t->longest;
  }
  fprintf(stderr,
          "carbon reshard (settler %s) of slot %d (%s, %lld keys) from "
          "master %d to %d in %.0f ms (redis-cli's run): %d calls, %d while it "
          "moved; %d "
          "needed a retry (%d of those while it moved; %d UNAVAILABLE "
          "answers in all, the longest wait %.0f ms); %d orders, %d trades\n",
          hold ? "held back" : "running", slot, SYM, keys, from, to, move_ms,
          calls, during, retried, during_retried, unavailable, longest, norders,
          ntrades);
  ck_assert_int_gt(during, 0);
  /* The flow met the migrating slot (a call answered UNAVAILABLE, then
     done on a retry under its key): else nothing here tested the move. */
  ck_assert_msg(during_retried > 0,
                "no call was answered UNAVAILABLE while the slot moved: the "
                "move was not exercised (a larger slot, or more traders)");
  ck_assert_int_gt(ntrades, 0);

  /* The slot lives on the target master. */
  ck_assert_int_eq(gm_test_cluster_owner(cl, slot), to);

  /* Each acknowledged place made one order (the instrument's order
     sequence) and one trade per fill its reply lists (the trade
     sequence): a retry that placed again would show here. */
  ck_assert_int_eq(inst_field(to, "seq"), norders);
  ck_assert_int_eq(inst_field(to, "tseq"), ntrades);

  /* The replies' fills, sorted.  With the settler held back, they are
     exactly the trades in the outbox. */
  char(*mine)[40] = calloc((size_t)ntrades, 40);
  ck_assert(mine);
  for (int i = 0, k = 0; i < TRADERS; i++)
    for (int j = 0; j < traders[i].ntrades; j++)
      memcpy(mine[k++], traders[i].trades[j], 40);
  sort_distinct(mine, ntrades, "trade");
  if (hold) {
    char(*boxed)[40] = calloc(MAX_TRADES, 40);
    ck_assert(boxed);
    ck_assert_int_eq(outbox_trades(to, boxed, MAX_TRADES), ntrades);
    for (int i = 0; i < ntrades; i++) ck_assert_str_eq(mine[i], boxed[i]);
    free(boxed);
    ct_ledger_release();
  }

  /* Settled once each, nothing else, nothing set aside. */
  char sql[128];
  snprintf(sql, sizeof sql,
           "SELECT count(*) FROM carbon_trades WHERE symbol = '%s'", SYM);
  for (int i = 0; i < 3 && ct_ledger_int(sql) != ntrades; i++)
    ct_ledger_wait(sql, ntrades);
  ck_assert_int_eq(ct_ledger_int(sql), ntrades);
  ledger_once("SELECT count(*) FROM carbon_trades WHERE trade_id = ?", mine,
              ntrades, "trade");
  snprintf(sql, sizeof sql,
           "SELECT count(*) FROM gm_settled WHERE stream = '%s' AND kind = "
           "'trade'",
           OUTBOX_KEY);
  ck_assert_int_eq(ct_ledger_int(sql), ntrades);
  ck_assert_int_eq(ct_ledger_int("SELECT count(*) FROM gm_dead_letter"), 0);
  free(mine);

  /* Every acknowledged order exists once: no two replies name one order,
     order.get finds it, owned by its trader, and the ledger has one row of
     it. */
  char(*placed)[40] = calloc((size_t)norders, 40);
  ck_assert(placed);
  for (int i = 0, k = 0; i < TRADERS; i++)
    for (int j = 0; j < traders[i].norders; j++)
      memcpy(placed[k++], traders[i].orders[j], 40);
  sort_distinct(placed, norders, "order");
  free(placed);
  snprintf(sql, sizeof sql,
           "SELECT count(*) FROM carbon_orders WHERE symbol = '%s'", SYM);
  ct_ledger_wait(sql, norders);
  ck_assert_int_eq(ct_ledger_int(sql), norders);
  /* Every cancel answered OK took effect: its order ended cancelled, and
     no other did but those their place's reply said were (each trader is
     on one side: no self-trade prevention). */
  snprintf(sql, sizeof sql,
           "SELECT count(*) FROM carbon_orders WHERE symbol = '%s' AND "
           "state = %d",
           SYM, GM__CARBON__ORDER_STATE__STATE_CANCELLED);
  ct_ledger_wait(sql, ncancelled);
  ck_assert_int_eq(ct_ledger_int(sql), ncancelled);
  /* Every entry the outbox was ever given (orders as they change, trades,
     the deposits' moves) is settled once: gm_settled has one row per entry
     (its primary key), and as many as entries-added. */
  long long added = outbox_added(to);
  ck_assert_int_gt(added, norders + ntrades);
  snprintf(sql, sizeof sql,
           "SELECT count(*) FROM gm_settled WHERE stream = '%s'", OUTBOX_KEY);
  ct_ledger_wait(sql, added);
  ck_assert_int_eq(ct_ledger_int(sql), added);
  for (int i = 0; i < TRADERS; i++) {
    trader *t = &traders[i];
    ledger_once("SELECT count(*) FROM carbon_orders WHERE order_id = ?",
                t->orders, t->norders, "order");
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM carbon_orders WHERE order_id = ? AND "
             "state = %d",
             GM__CARBON__ORDER_STATE__STATE_CANCELLED);
    ledger_once(sql, t->cancelled, t->ncancelled,
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

  /* Cash and allowances: what was deposited, wherever it is now. */
  int64_t cash = 0, alw = 0;
  for (int i = 0; i < TRADERS; i++) {
    Gm__Carbon__Account *a = ct_account(traders[i].who, SYM);
    cash += a->cash + a->cash_frozen;
    alw += a->allowances + a->allowances_frozen + a->allowances_locked;
    ct_free(a);
  }
  ck_assert_int_eq(cash, TRADERS * cash0);
  ck_assert_int_eq(alw, TRADERS * alw0);
}

START_TEST(test_orders_while_the_slot_moves_settler_held) {
  orders_while_the_slot_moves(1);
}
END_TEST

START_TEST(test_orders_while_the_slot_moves_settling) {
  orders_while_the_slot_moves(0);
}
END_TEST

int main(void) {
  Suite *s = suite_create("carbon reshard");
  TCase *tc = tcase_create("reshard");
  tcase_add_checked_fixture(tc, NULL, teardown);
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, test_orders_while_the_slot_moves_settler_held);
  tcase_add_test(tc, test_orders_while_the_slot_moves_settling);
  suite_add_tcase(s, tc);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
