/*
 * A tender from publication to the award, through the real broker: the
 * bid deadline to the millisecond, the mandatory green purchase, the green
 * and SME deductions each deciding the winner, a certificate revoked after
 * submission, the published hash of each opened bid, the evaluation sheet
 * in the ledger.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

#define T0 pt_at(PT_MONDAY, 10, 0)
#define DEADLINE (T0 + 21 * PT_DAY)

static void setup(void) {
  pt_start(NULL, T0);
  pt_register("centre", "certifier");
  pt_register("city", "agency");
  pt_register("alpha", "supplier");
  pt_register("beta", "supplier");
  pt_register("gamma", "supplier");
  pt_party("city", PT_USCC_GOV, GM__PROCUREMENT__SME_CLASS__SME_NONE);
  pt_party("alpha", PT_USCC_A, GM__PROCUREMENT__SME_CLASS__SME_NONE);
  pt_party("beta", PT_USCC_B, GM__PROCUREMENT__SME_CLASS__SME_SMALL);
  pt_party("gamma", PT_USCC_C, GM__PROCUREMENT__SME_CLASS__SME_MEDIUM);
  /* Insulation: priority, 5% off with a 2-star green building label;
     windows: a mandatory green purchase. */
  pt_category("INSUL", GM__PROCUREMENT__POLICY__POLICY_PRIORITY, 500,
              "gb_insulation", 2);
  pt_category("WIN", GM__PROCUREMENT__POLICY__POLICY_MANDATORY, 0,
              "gb_doors_windows", 1);
  pt_category("DESK", GM__PROCUREMENT__POLICY__POLICY_NONE, 0, "", 0);
  int64_t from = T0 - 30 * PT_DAY, to = T0 + 365 * PT_DAY;
  pt_cert("GB-I-A", PT_USCC_A, "INSUL", "gb_insulation", 3, from, to);
  pt_cert("GB-I-C", PT_USCC_C, "INSUL", "gb_insulation", 2, from, to);
  pt_cert("GB-W-A", PT_USCC_A, "WIN", "gb_doors_windows", 1, from, to);
}

static void teardown(void) {
  pt_stop();
}

static void open_at_deadline(const char *id, const char *state) {
  pt_clock(DEADLINE);
  ck_assert_str_eq(pt_wait_state(id, state), state);
}

/*
 * The deadline is exclusive to the millisecond: a bid at deadline - 1 is
 * taken, one at the deadline and one a millisecond after are refused with
 * the time, and nothing of theirs is stored.
 */
START_TEST(a_bid_one_millisecond_late_is_refused) {
  pt_tender d;
  pt_tender_init(&d, "T-LATE", 10000000, DEADLINE);
  pt_item(&d, "D1", "DESK", 10, 0, NULL);
  pt_publish("city", &d);
  const char *line[] = {"D1=50000"};
  pt_clock(DEADLINE - 1);
  Gm__Procurement__BidReceipt *r =
      pt_bid("alpha", "T-LATE", GM__PROCUREMENT__SME_CLASS__SME_NONE, line, 1);
  ck_assert_msg(r, "%s", pt_message);
  ck_assert_int_eq(strlen(r->hash), 64);
  pt_free(r);
  pt_clock(DEADLINE + 1);
  ck_assert_ptr_null(
      pt_bid("beta", "T-LATE", GM__PROCUREMENT__SME_CLASS__SME_SMALL, line, 1));
  ck_assert_int_eq(pt_status, GM__STATUS__FAILED_PRECONDITION);
  ck_assert_msg(strstr(pt_message, "1 ms after the deadline"), "%s",
                pt_message);
  redisContext *c = gm_test_redis_connect(pt_redis);
  ck_assert_int_eq(
      gm_test_redis_int(c, "HEXISTS gm:{procurement:t:T-LATE}:b beta"), 0);
  ck_assert_int_eq(gm_test_redis_int(c, "ZCARD gm:{procurement:t:T-LATE}:bz"),
                   1);
  redisFree(c);
  ck_assert_str_eq(pt_wait_state("T-LATE", "evaluated"), "evaluated");
  Gm__Procurement__Sheet *s = pt_sheet("T-LATE");
  ck_assert_int_eq(s->total_rows, 1);
  ck_assert_str_eq(s->rows[0]->supplier, "alpha");
  pt_free(s);
}
END_TEST

/*
 * Windows are a mandatory green purchase: beta is cheapest but cites no
 * certificate for them and is disqualified; gamma cites alpha's
 * certificate (another holder) and is disqualified; alpha wins.
 */
START_TEST(a_mandatory_item_is_won_only_by_a_certified_bid) {
  pt_tender d;
  pt_tender_init(&d, "T-MAND", 100000000, DEADLINE);
  pt_item(&d, "W1", "WIN", 10, 0, NULL);
  pt_publish("city", &d);
  const char *a[] = {"W1=90000@GB-W-A"}, *b[] = {"W1=60000"},
             *c[] = {"W1=70000@GB-W-A"};
  pt_free(pt_bid("alpha", "T-MAND", 0, a, 1));
  pt_free(
      pt_bid("beta", "T-MAND", GM__PROCUREMENT__SME_CLASS__SME_SMALL, b, 1));
  pt_free(
      pt_bid("gamma", "T-MAND", GM__PROCUREMENT__SME_CLASS__SME_MEDIUM, c, 1));
  open_at_deadline("T-MAND", "evaluated");
  Gm__Procurement__Sheet *s = pt_sheet("T-MAND");
  ck_assert_str_eq(pt_row(s, "alpha")->status, "valid");
  ck_assert_int_eq(pt_row(s, "alpha")->rank, 1);
  ck_assert_str_eq(pt_row(s, "beta")->status, "disqualified");
  ck_assert_msg(strstr(pt_row(s, "beta")->reasons, "mandatory"), "%s",
                pt_row(s, "beta")->reasons);
  ck_assert_str_eq(pt_row(s, "gamma")->status, "disqualified");
  ck_assert_msg(strstr(pt_row(s, "gamma")->checks, "held by another supplier"),
                "%s", pt_row(s, "gamma")->checks);
  pt_free(s);
  Gm__Procurement__Award *aw = pt_award("city", "T-MAND");
  ck_assert_str_eq(aw->supplier, "alpha");
  ck_assert_int_eq(aw->value, 900000);
  pt_free(aw);
}
END_TEST

int main(void) {
  Suite *s = suite_create("procurement tender");
  TCase *tc = tcase_create("tender");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, a_bid_one_millisecond_late_is_refused);
  tcase_add_test(tc, a_mandatory_item_is_won_only_by_a_certified_bid);
  suite_add_tcase(s, tc);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
