/* include/greenmarket/iso4217.h: active ISO 4217 codes and their minor
   units. */
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

/* ISO 4217 list one's minor units, ISO's where CLDR (ICU) differs. */
START_TEST(minor_units) {
  static const struct {
    const char *code;
    int minor;
  } want[] = {{"CNY", 2}, {"USD", 2}, {"EUR", 2}, {"JPY", 0}, {"KRW", 0},
              {"ISK", 0}, {"XAF", 0}, {"XOF", 0}, {"XPF", 0}, {"KWD", 3},
              {"BHD", 3}, {"OMR", 3}, {"JOD", 3}, {"TND", 3}, {"LYD", 3},
              {"IQD", 3}, {"CLF", 4}, {"UYW", 4}, {"CLP", 0}, {"VND", 0},
              {"IRR", 2}, {"LBP", 2}, {"MGA", 2}, {"ZWG", 2}, {"XCG", 2},
              {"HUF", 2}, {"IDR", 2}};
  for (size_t i = 0; i < sizeof want / sizeof *want; i++)
    ck_assert_msg(gm_iso4217_minor(want[i].code) == want[i].minor,
                  "%s: %d, not %d", want[i].code,
                  gm_iso4217_minor(want[i].code), want[i].minor);
  /* Every money code has 0 to 4; nothing else has one. */
  size_t n = sizeof gm_iso4217_codes / sizeof *gm_iso4217_codes;
  for (size_t i = 0; i < n; i++) {
    int m = gm_iso4217_minor(gm_iso4217_codes[i]);
    if (gm_iso4217_money(gm_iso4217_codes[i]))
      ck_assert_msg(m >= 0 && m <= 4, "%s: %d", gm_iso4217_codes[i], m);
    else
      ck_assert_msg(m == -1, "%s: %d", gm_iso4217_codes[i], m);
  }
  const char *none[] = {"XAU", "XDR", "XTS", "XXX", "XYZ", "DEM", "jpy", ""};
  for (size_t i = 0; i < sizeof none / sizeof *none; i++)
    ck_assert_msg(gm_iso4217_minor(none[i]) == -1, "%s", none[i]);
  ck_assert_int_eq(gm_iso4217_minor(NULL), -1);
}
END_TEST

int main(void) {
  Suite *s = suite_create("iso4217");
  TCase *tc = tcase_create("codes");
  tcase_add_test(tc, list_is_sorted_and_whole);
  tcase_add_test(tc, codes_in_use_and_others);
  tcase_add_test(tc, minor_units);
  suite_add_tcase(s, tc);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
