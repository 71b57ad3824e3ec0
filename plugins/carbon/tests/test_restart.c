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

#include "harness.h"

#define SYM "CEA-2025"
#define N 400

static void setup(void) {
  ct_start(NULL, ct_at(CT_MONDAY, 10, 0));
  ct_create(SYM, 8500);
  ct_register("s", "seller");
  ct_register("b", "buyer");
  ct_deposit("s", SYM, 0, 1000000);
  ct_deposit("b", SYM, INT64_C(100000000000), 0);
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
  Gm__Carbon__ReconcileRequest rr = GM__CARBON__RECONCILE_REQUEST__INIT;
  Gm__Carbon__ReconcileReply *rec = (Gm__Carbon__ReconcileReply *)ct_call(
      "root", "records.reconcile", &rr.base);
  ck_assert_msg(rec, "%s", ct_message);
  ck_assert_int_eq(rec->unsettled, 0);
  ck_assert_int_eq(rec->n_differences, 0);
  ct_free(rec);
}
END_TEST

int main(void) {
  Suite *s = suite_create("carbon restart");
  TCase *tc = tcase_create("restart");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, kill9_during_the_stream_loses_and_doubles_nothing);
  suite_add_tcase(s, tc);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
