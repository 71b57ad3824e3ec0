/*
 * kill -9 of gmd while orders stream in, then a restart: every order whose
 * reply arrived is in the book or settled as filled/cancelled, no fill is
 * settled twice, the ledger holds exactly the fills Redis made, and the
 * ledger reconciles with the holdings.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "harness.h"

#define SYM "CEA-2025"
#define N 400

static void accounts(void) {
  ct_create(SYM, 8500);
  ct_register("s", "seller");
  ct_register("b", "buyer");
  ct_deposit("s", SYM, 0, 1000000);
  ct_deposit("b", SYM, INT64_C(100000000000), 0);
}

static void setup(void) {
  ct_start(NULL, ct_at(CT_MONDAY, 10, 0));
  accounts();
}

static void setup_aof(void) {
  ct_start_aof(NULL, ct_at(CT_MONDAY, 10, 0));
  accounts();
}

/* Sends order i of a stream of resting orders (buys below sells: none
   crosses), keyed "key-<i>", without waiting for its reply. */
static void send_order(int i, const char *prefix) {
  Gm__Carbon__PlaceRequest q = GM__CARBON__PLACE_REQUEST__INIT;
  q.symbol = SYM;
  q.side = i % 2 ? CT_BUY : CT_SELL;
  q.price = i % 2 ? 8400 + i % 50 : 8600 + i % 50;
  q.quantity = 1 + i % 9;
  Gm__Request r = GM__REQUEST__INIT;
  uint8_t body[256], frame[512];
  char key[32];
  snprintf(key, sizeof key, "%s-%d", prefix, i);
  r.version = 1;
  r.request_id = (uint64_t)i + 1;
  r.market = "carbon";
  r.method = "order.place";
  r.idempotency_key = key;
  r.dev_participant = i % 2 ? "b" : "s";
  r.body.len = protobuf_c_message_pack(&q.base, body);
  r.body.data = body;
  size_t len = gm__request__pack(&r, frame);
  const void *d[] = {frame};
  gm_test_conn_send_raw(ct_conn, 1, d, &len);
}

static void teardown(void) {
  ct_stop();
}

START_TEST(kill9_during_the_stream_loses_and_doubles_nothing) {
  static char acked[N][40];
  int nacked = 0;
  unsigned seed = 7;
  /* Everything is sent before any reply is read, so the kill lands while
   * gmd works through the stream and the settler trails behind it. */
  for (int i = 0; i < N; i++) {
    Gm__Carbon__PlaceRequest q = GM__CARBON__PLACE_REQUEST__INIT;
    q.symbol = SYM;
    q.side = i % 2 ? CT_BUY : CT_SELL;
    q.price = 8495 + rand_r(&seed) % 11;
    q.quantity = 1 + rand_r(&seed) % 9;
    Gm__Request r = GM__REQUEST__INIT;
    uint8_t body[256], frame[512];
    char key[32];
    snprintf(key, sizeof key, "stream-%d", i);
    r.version = 1;
    r.request_id = (uint64_t)i + 1;
    r.market = "carbon";
    r.method = "order.place";
    r.idempotency_key = key;
    r.dev_participant = i % 2 ? "b" : "s";
    r.body.len = protobuf_c_message_pack(&q.base, body);
    r.body.data = body;
    size_t len = gm__request__pack(&r, frame);
    const void *d[] = {frame};
    gm_test_conn_send_raw(ct_conn, 1, d, &len);
  }
  for (;;) {
    Gm__Reply *rep = gm_test_conn_recv(ct_conn, 2000);
    if (!rep) break;
    if (rep->status == GM__STATUS__OK) {
      Gm__Carbon__PlaceReply *p =
          gm__carbon__place_reply__unpack(NULL, rep->body.len, rep->body.data);
      snprintf(acked[nacked++], 40, "%s", p->order->id);
      ct_free(p);
    }
    gm__reply__free_unpacked(rep, NULL);
    if (nacked == N / 2) gm_test_gmd_kill9(ct_gmd);
  }
  ck_assert_int_ge(nacked, N / 2);
  /* The restarted gmd's manual clock starts at the test's Monday
   * ([testing] clock_start_ms, kept in the config), so no deadline sees a
   * later day at its start-up. */
  gm_test_gmd_restart(ct_gmd);
  gm_test_conn_destroy(&ct_conn);
  ct_conn = gm_test_conn_new(gm_test_gmd_endpoint(ct_gmd), NULL, NULL, NULL);
  ct_clock(ct_at(CT_MONDAY, 10, 0));

  /* Redis counted the fills (the trade sequence); the ledger has each once. */
  redisContext *rc = gm_test_redis_connect(ct_redis);
  redisReply *t = gm_test_redis_cmd(rc, "HGET gm:{carbon:CEA-2025}:i tseq");
  long long fills = t->str ? atoll(t->str) : 0;
  freeReplyObject(t);
  redisFree(rc);
  ck_assert_int_gt(fills, 10);
  ck_assert_int_eq(ct_ledger_wait("SELECT count(*) FROM carbon_trades", fills),
                   fills);
  ck_assert_int_eq(ct_ledger_int("SELECT count(DISTINCT trade_id) FROM"
                                 " carbon_trades"),
                   fills);
  /* Every acknowledged order: resting in Redis, or settled as ended. */
  for (int i = 0; i < nacked; i++) {
    Gm__Carbon__OrderRequest g = GM__CARBON__ORDER_REQUEST__INIT;
    g.order_id = acked[i];
    Gm__Carbon__Order *o =
        (Gm__Carbon__Order *)ct_call("root", "order.get", &g.base);
    ck_assert_msg(o, "acknowledged order %s is lost: %s", acked[i], ct_message);
    ct_free(o);
  }
  /* The filled quantity of the settled orders equals the settled fills. */
  ck_assert_int_eq(ct_ledger_int("SELECT sum(quantity) * 2 FROM carbon_trades"),
                   ct_ledger_int("SELECT sum(filled) FROM carbon_orders"));
  Gm__Carbon__ReconcileReply *rec = ct_reconcile_settled("");
  ck_assert_int_eq(rec->n_differences, 0);
  ct_free(rec);
}
END_TEST

/*
 * kill -9 of redis-server (fsync-always AOF) while orders stream in: every
 * order whose reply said OK is there after the restart, a retry of every
 * other with its key gets the true result (its first reply, or a first
 * run), and no order is placed twice: each key is one order.
 */
#define NR 600
START_TEST(kill9_of_redis_loses_no_acknowledged_order) {
  static char id_of[NR][40]; /* the order each key placed; "" not yet */
  memset(id_of, 0, sizeof id_of);
  int acked = 0, unavailable = 0, killed = 0;
  for (int i = 0; i < NR; i++) send_order(i, "aof");
  for (;;) {
    Gm__Reply *rep = gm_test_conn_recv(ct_conn, 3000);
    if (!rep) break;
    int i = (int)rep->request_id - 1;
    ck_assert_int_ge(i, 0);
    ck_assert_int_lt(i, NR);
    if (rep->status == GM__STATUS__OK) {
      Gm__Carbon__PlaceReply *p =
          gm__carbon__place_reply__unpack(NULL, rep->body.len, rep->body.data);
      snprintf(id_of[i], 40, "%s", p->order->id);
      ct_free(p);
      acked++;
    } else {
      /* Redis went away: a retryable answer, never a false "failed". */
      ck_assert_msg(rep->status == GM__STATUS__UNAVAILABLE, "order %d: %d %s",
                    i, rep->status, rep->message);
      unavailable++;
    }
    gm__reply__free_unpacked(rep, NULL);
    if (acked == NR / 3 && !killed) {
      gm_test_redis_restart_loading(ct_redis); /* kill -9, start again */
      killed = 1;
    }
  }
  ck_assert(killed);
  ck_assert_int_ge(acked, NR / 3);
  /* Every acknowledged order survived the kill. */
  for (int i = 0; i < NR; i++) {
    if (!id_of[i][0]) continue;
    Gm__Carbon__OrderRequest g = GM__CARBON__ORDER_REQUEST__INIT;
    g.order_id = id_of[i];
    Gm__Carbon__Order *o = NULL;
    for (int t = 0; t < 200 && !o; t++) {
      o = (Gm__Carbon__Order *)ct_call("root", "order.get", &g.base);
      if (!o) {
        ck_assert_msg(ct_status == GM__STATUS__UNAVAILABLE,
                      "acknowledged order %s is lost: %s", id_of[i],
                      ct_message);
        nanosleep(&(struct timespec){0, 50000000}, NULL);
      }
    }
    ck_assert_msg(o, "order %s: %s", id_of[i], ct_message);
    ck_assert_int_eq(o->state, GM__CARBON__ORDER_STATE__STATE_OPEN);
    ct_free(o);
  }
  /* Retries of the rest, with their keys: each ends with one order. */
  for (int i = 0; i < NR; i++) {
    if (id_of[i][0]) continue;
    for (int t = 0; t < 200 && !id_of[i][0]; t++) {
      send_order(i, "aof");
      Gm__Reply *rep = gm_test_conn_recv(ct_conn, 5000);
      ck_assert_ptr_nonnull(rep);
      if (rep->status == GM__STATUS__OK) {
        Gm__Carbon__PlaceReply *p = gm__carbon__place_reply__unpack(
            NULL, rep->body.len, rep->body.data);
        snprintf(id_of[i], 40, "%s", p->order->id);
        ct_free(p);
      } else {
        ck_assert_msg(rep->status == GM__STATUS__UNAVAILABLE,
                      "retry of order %d: %d %s", i, rep->status, rep->message);
        nanosleep(&(struct timespec){0, 20000000}, NULL);
      }
      gm__reply__free_unpacked(rep, NULL);
    }
    ck_assert_msg(id_of[i][0], "order %d never got an answer", i);
  }
  /* One order per key: NR distinct ids, and Redis numbered exactly NR. */
  for (int i = 0; i < NR; i++)
    for (int k = i + 1; k < NR; k++)
      ck_assert_msg(strcmp(id_of[i], id_of[k]) != 0, "keys %d and %d: %s", i, k,
                    id_of[i]);
  redisContext *rc = gm_test_redis_connect(ct_redis);
  ck_assert_int_eq(gm_test_redis_int(rc, "HGET gm:{carbon:" SYM "}:i seq"), NR);
  redisFree(rc);
  ck_assert_int_eq(ct_ledger_wait("SELECT count(*) FROM carbon_orders", NR),
                   NR);
}
END_TEST

int main(void) {
  Suite *s = suite_create("carbon restart");
  TCase *tc = tcase_create("restart");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, kill9_during_the_stream_loses_and_doubles_nothing);
  suite_add_tcase(s, tc);
  TCase *ta = tcase_create("aof");
  tcase_add_checked_fixture(ta, setup_aof, teardown);
  tcase_set_timeout(ta, 180);
  tcase_add_test(ta, kill9_of_redis_loses_no_acknowledged_order);
  suite_add_tcase(s, ta);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
