/* include/greenmarket/iso4217.h: active ISO 4217 codes. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "greenmarket/iso4217.h"

START_TEST(list_is_sorted_and_whole) {
  size_t n = sizeof gm_iso4217_codes / sizeof *gm_iso4217_codes;
  ck_assert_uint_ge(n, 150);
  for (size_t i = 0; i < n; i++) {
    ck_assert_uint_eq(strlen(gm_iso4217_codes[i]), 3);
    if (i)
      ck_assert_int_lt(memcmp(gm_iso4217_codes[i - 1], gm_iso4217_codes[i], 3),
                       0);
    /* bsearch finds every entry. */
    ck_assert(gm_iso4217_active(gm_iso4217_codes[i]));
  }
}
END_TEST

START_TEST(codes_in_use_and_others) {
  const char *yes[] = {"CNY", "USD", "EUR", "HKD", "JPY",
                       "GBP", "AED", "ZMW", "ZWG", "XCG"};
  for (size_t i = 0; i < sizeof yes / sizeof *yes; i++)
    ck_assert_msg(gm_iso4217_active(yes[i]), "%s", yes[i]);
  const char *no[] = {"XYZ",  "DEM", "FRF", "cny", "CN",
                      "CNYY", "",    "AAA", "RMB"};
  for (size_t i = 0; i < sizeof no / sizeof *no; i++)
    ck_assert_msg(!gm_iso4217_active(no[i]), "%s", no[i]);
  ck_assert(!gm_iso4217_active(NULL));
  /* Money: not metals, units of account, testing or "no currency". */
  ck_assert(gm_iso4217_money("CNY") && gm_iso4217_money("XAF") &&
            gm_iso4217_money("XCD") && gm_iso4217_money("XOF"));
  ck_assert(gm_iso4217_active("XAU") && !gm_iso4217_money("XAU"));
  ck_assert(!gm_iso4217_money("XXX") && !gm_iso4217_money("XTS") &&
            !gm_iso4217_money("XDR") && !gm_iso4217_money("XYZ"));
}
END_TEST

int main(void) {
  Suite *s = suite_create("iso4217");
  TCase *tc = tcase_create("codes");
  tcase_add_test(tc, list_is_sorted_and_whole);
  tcase_add_test(tc, codes_in_use_and_others);
  suite_add_tcase(s, tc);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
