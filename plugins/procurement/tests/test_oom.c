/*
 * Procurement with Redis over maxmemory: a tender and a supplier's own bid
 * still read (read-only scripts, FCALL_RO); a bid is refused with
 * RESOURCE_EXHAUSTED saying Redis is out of memory and what to do, and it
 * leaves nothing behind.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "redis_fill.h"

#define T0 pt_at(PT_MONDAY, 10, 0)
#define DEADLINE (T0 + 21 * PT_DAY)

static void setup(void) {
  pt_start(NULL, T0);
  pt_register("city", "agency");
  pt_register("alpha", "supplier");
  pt_register("beta", "supplier");
  pt_party("alpha", PT_USCC_A, GM__PROCUREMENT__SME_CLASS__SME_NONE);
  pt_party("beta", PT_USCC_B, GM__PROCUREMENT__SME_CLASS__SME_SMALL);
  pt_category("DESK", GM__PROCUREMENT__POLICY__POLICY_NONE, 0, "", 0);
  pt_tender d;
  pt_tender_init(&d, "T-OOM", 100000000000, DEADLINE);
  pt_item(&d, "D1", "DESK", 3, 0, NULL);
  pt_publish("city", &d);
}

static void teardown(void) {
  pt_stop();
}

START_TEST(reads_answer_and_bids_are_refused_over_maxmemory) {
  const char *a[] = {"D1=120000"}, *b[] = {"D1=110000"};
  pt_free(pt_bid("alpha", "T-OOM", 0, a, 1));

  redisContext *c = gm_test_redis_connect(pt_redis);
  ck_assert_int_gt(gm_test_redis_fill(c), 0);
  long long dbsize = gm_test_redis_keys_but_leases(c);

  /* Reads: the tender, the supplier's own bid. */
  Gm__Procurement__TenderView *t = pt_tender_get("T-OOM");
  ck_assert_msg(t != NULL, "tender.get: %s", pt_message);
  pt_free(t);
  Gm__Procurement__BidQuery q = GM__PROCUREMENT__BID_QUERY__INIT;
  q.tender_id = "T-OOM";
  q.supplier = "";
  Gm__Procurement__Bid *mine =
      (Gm__Procurement__Bid *)pt_call("alpha", "bid.get", &q.base);
  ck_assert_msg(mine != NULL, "bid.get: %s", pt_message);
  ck_assert_int_eq(mine->lines[0]->unit_price, 120000);
  pt_free(mine);

  /* A write: beta's bid. */
  ck_assert_ptr_null(
      pt_bid("beta", "T-OOM", GM__PROCUREMENT__SME_CLASS__SME_SMALL, b, 1));
  ck_assert_int_eq(pt_status, GM__STATUS__RESOURCE_EXHAUSTED);
  ck_assert_ptr_nonnull(strstr(pt_message, "out of memory"));
  ck_assert_ptr_nonnull(strstr(pt_message, "raise maxmemory or free keys"));
  ck_assert_int_le(gm_test_redis_keys_but_leases(c), dbsize);
  q.supplier = "";
  ck_assert_ptr_null(pt_call("beta", "bid.get", &q.base));
  ck_assert_int_eq(pt_status, GM__STATUS__NOT_FOUND);

  /* Room again: the bid goes in. */
  freeReplyObject(gm_test_redis_cmd(c, "CONFIG SET maxmemory 0"));
  Gm__Procurement__BidReceipt *r =
      pt_bid("beta", "T-OOM", GM__PROCUREMENT__SME_CLASS__SME_SMALL, b, 1);
  ck_assert_msg(r != NULL, "%s", pt_message);
  pt_free(r);
  redisFree(c);
}
END_TEST

int main(void) {
  Suite *s = suite_create("procurement_oom");
  TCase *tc = tcase_create("oom");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, reads_answer_and_bids_are_refused_over_maxmemory);
  suite_add_tcase(s, tc);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
