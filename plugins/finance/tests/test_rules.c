/*
 * The finance rules without Redis (rules.c): the fee and its rounding,
 * amount bands, dates and working days over China's holidays, division
 * codes, catalogue codes, the catalogue and calendar files shipped in the
 * plugin, and amounts as people type them.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rules.h"

static char *slurp(const char *name) {
  char path[512];
  snprintf(path, sizeof path, "%s/plugins/finance/%s", GM_SOURCE_DIR, name);
  FILE *f = fopen(path, "rb");
  ck_assert_msg(f != NULL, "cannot open %s", path);
  char *buf = calloc(1, 1 << 20);
  size_t n = fread(buf, 1, (1 << 20) - 1, f);
  buf[n] = '\0';
  fclose(f);
  return buf;
}

START_TEST(fee_rounds_half_up_to_the_fen) {
  /* 0.5 fen rounds up, 0.4999 down. */
  ck_assert_int_eq(gm__finance_fee(1, 5000), 1);
  ck_assert_int_eq(gm__finance_fee(1, 4999), 0);
  ck_assert_int_eq(gm__finance_fee(3, 5000), 2);        /* 1.5 */
  ck_assert_int_eq(gm__finance_fee(5, 3000), 2);        /* 1.5 */
  ck_assert_int_eq(gm__finance_fee(5, 2999), 1);        /* 1.4995 */
  ck_assert_int_eq(gm__finance_fee(10001, 5000), 5001); /* 5000.5 */
  /* 0 bp, 0 amount. */
  ck_assert_int_eq(gm__finance_fee(123456789, 0), 0);
  ck_assert_int_eq(gm__finance_fee(0, 10000), 0);
  /* 0.8% of 4,500,000.00 yuan is 36,000.00 yuan. */
  ck_assert_int_eq(gm__finance_fee(450000000, 80), 3600000);
  /* The largest amount at the largest fee stays exact in int64. */
  ck_assert_int_eq(gm__finance_fee(GM_FINANCE_MAX_AMOUNT, 10000),
                   GM_FINANCE_MAX_AMOUNT);
  ck_assert_int_eq(gm__finance_fee(GM_FINANCE_MAX_AMOUNT, 9999),
                   INT64_C(99990000000000));
  ck_assert_int_eq(gm__finance_fee(GM_FINANCE_MAX_AMOUNT - 1, 1),
                   INT64_C(10000000000)); /* 9999999999.9999 */
  /* Out of range: refused, not wrapped. */
  ck_assert_int_eq(gm__finance_fee(GM_FINANCE_MAX_AMOUNT + 1, 1), -1);
  ck_assert_int_eq(gm__finance_fee(-1, 1), -1);
  ck_assert_int_eq(gm__finance_fee(1, 10001), -1);
  ck_assert_int_eq(gm__finance_fee(1, -1), -1);
}
END_TEST

START_TEST(ratios_never_overflow) {
  ck_assert_int_eq(gm__finance_ratio_bp(1, 2), 5000);
  ck_assert_int_eq(gm__finance_ratio_bp(1, 3), 3333);
  ck_assert_int_eq(gm__finance_ratio_bp(0, 3), 0);
  ck_assert_int_eq(gm__finance_ratio_bp(3, 0), 0);
  ck_assert_int_eq(gm__finance_ratio_bp(5, 3), 10000);
  ck_assert_int_eq(gm__finance_ratio_bp(-1, 3), 0);
  /* fuzz/market/regression-conversion-overflow: counts from a damaged
     ledger made funded * 10000 overflow. */
  ck_assert_int_eq(gm__finance_ratio_bp(INT64_C(3496775008693548),
                                        INT64_C(3496775008693549)),
                   9999);
  ck_assert_int_eq(gm__finance_ratio_bp(INT64_MAX - 1, INT64_MAX), 9999);
}
END_TEST

START_TEST(bands_hide_the_amount) {
  int64_t lo, hi;
  gm__finance_band(1, &lo, &hi);
  ck_assert_int_eq(lo, 0);
  ck_assert_int_eq(hi, 100000000);
  gm__finance_band(100000000, &lo, &hi); /* 1 million yuan: the next band */
  ck_assert_int_eq(lo, 100000000);
  ck_assert_int_eq(hi, 500000000);
  gm__finance_band(500000000 - 1, &lo, &hi);
  ck_assert_int_eq(hi, 500000000);
  gm__finance_band(INT64_C(10000000000), &lo, &hi);
  ck_assert_int_eq(lo, INT64_C(10000000000));
  ck_assert_int_eq(hi, 0);
}
END_TEST

START_TEST(dates_in_shanghai) {
  int64_t day, first, next;
  char out[16];
  ck_assert_int_eq(gm__finance_parse_date("2026-03-02", &day), 0);
  ck_assert_str_eq(gm__finance_format_date(day, out), "2026-03-02");
  ck_assert_int_eq(gm__finance_weekday(day), 1); /* Monday */
  /* 23:59 local is the same day; 00:00 the next. */
  ck_assert_int_eq(
      gm__finance_day_of(gm__finance_day_start_ms(day) + GM_FINANCE_DAY_MS - 1),
      day);
  ck_assert_int_eq(gm__finance_day_of(gm__finance_day_start_ms(day + 1)),
                   day + 1);
  ck_assert_int_eq(gm__finance_parse_date("2026-02-29", &day), -1);
  ck_assert_int_eq(gm__finance_parse_date("2024-02-29", &day), 0);
  ck_assert_int_eq(gm__finance_parse_date("2026-3-2", &day), -1);
  ck_assert_int_eq(gm__finance_parse_date("2026-13-01", &day), -1);
  ck_assert_int_eq(gm__finance_parse_month("2026-12", &first, &next), 0);
  ck_assert_str_eq(gm__finance_format_date(first, out), "2026-12-01");
  ck_assert_str_eq(gm__finance_format_date(next, out), "2027-01-01");
  ck_assert_int_eq(gm__finance_parse_month("2026-00", &first, &next), -1);
  /* fuzz/market/regression-date-overflow: a day number from a corrupted
     Redis entry overflowed day * 86400. */
  ck_assert_str_eq(gm__finance_format_date(INT64_C(184744898127462), out), "-");
  ck_assert_str_eq(gm__finance_format_date(-1, out), "-");
  ck_assert_str_eq(gm__finance_format_date(2932896, out), "9999-12-31");
  /* A time at either end of int64 is clamped, not overflowed. */
  ck_assert_int_eq(gm__finance_day_of(INT64_MAX), 2932896);
  ck_assert_int_eq(gm__finance_day_of(INT64_MIN), -719528);
  ck_assert_int_eq(gm__finance_parse_month("9999-12", &first, &next), -1);
  ck_assert_int_eq(gm__finance_parse_month("9999-11", &first, &next), 0);
  ck_assert_str_eq(gm__finance_format_date(next, out), "9999-12-01");
  ck_assert_int_eq(gm__finance_parse_month("2026-1x", &first, &next), -1);
  ck_assert_int_eq(gm__finance_parse_month("1969-12", &first, &next), -1);
}
END_TEST

/* The calendar shipped in the plugin, parsed as init parses it. */
static int64_t hol[256], work[256];
static size_t nhol, nwork;
static int add_day(void *arg, int64_t day, char kind, const char *note) {
  (void)arg;
  (void)note;
  if (kind == 'w')
    work[nwork++] = day;
  else
    hol[nhol++] = day;
  return 0;
}

static int64_t due_of(const gm__finance_calendar *cal, const char *date,
                      int n) {
  int64_t day, due;
  ck_assert_int_eq(gm__finance_parse_date(date, &day), 0);
  ck_assert_int_eq(
      gm__finance_working_due(cal, gm__finance_day_start_ms(day) + 10 * 3600000,
                              n, 120, &due),
      0);
  return gm__finance_day_of(due - 1);
}

START_TEST(working_days_skip_holidays_and_count_make_up_days) {
  char err[256], out[16];
  char *text = slurp("calendar.csv");
  nhol = nwork = 0;
  ck_assert_int_gt(
      gm__finance_calendar_parse(text, add_day, NULL, err, sizeof err), 40);
  free(text);
  gm__finance_calendar cal = {hol, nhol, work, nwork};
  /* Monday with no holiday: the 5th working day after is next Monday; the
     deadline is its end. */
  ck_assert_str_eq(gm__finance_format_date(due_of(&cal, "2026-03-02", 5), out),
                   "2026-03-09");
  /* Wednesday 30 September 2026: 1-7 October are off, Saturday 10
     October is worked: Thu 8, Fri 9, Sat 10, Mon 12, Tue 13. */
  ck_assert_str_eq(gm__finance_format_date(due_of(&cal, "2026-09-30", 5), out),
                   "2026-10-13");
  /* Friday 13 February 2026: Saturday 14th is worked, 15-23 are off. */
  ck_assert_str_eq(gm__finance_format_date(due_of(&cal, "2026-02-13", 2), out),
                   "2026-02-24");
  /* Without the calendar the same week has no holiday. */
  ck_assert_str_eq(gm__finance_format_date(due_of(NULL, "2026-09-30", 5), out),
                   "2026-10-07");
  /* A calendar of holidays only: no due within the horizon. */
  int64_t all[200], due, d0;
  gm__finance_parse_date("2026-03-02", &d0);
  for (int i = 0; i < 200; i++) all[i] = d0 + i;
  gm__finance_calendar none = {all, 200, NULL, 0};
  ck_assert_int_eq(gm__finance_working_due(&none, gm__finance_day_start_ms(d0),
                                           5, 120, &due),
                   -1);
}
END_TEST

START_TEST(regions_and_codes) {
  ck_assert(gm__finance_valid_region("330502"));
  ck_assert(!gm__finance_valid_region("990502")); /* no province 99 */
  ck_assert(!gm__finance_valid_region("33050"));
  ck_assert(!gm__finance_valid_region("33050a"));
  ck_assert(gm__finance_region_covers("000000", "110101"));
  ck_assert(gm__finance_region_covers("330000", "330502"));
  ck_assert(gm__finance_region_covers("330500", "330502"));
  ck_assert(!gm__finance_region_covers("330500", "330102"));
  ck_assert(!gm__finance_region_covers("320000", "330502"));
  ck_assert(gm__finance_region_covers("330502", "330502"));
  char city[7];
  gm__finance_city("330502", city);
  ck_assert_str_eq(city, "330500");

  ck_assert(gm__finance_valid_code("3"));
  ck_assert(gm__finance_valid_code("3.2"));
  ck_assert(gm__finance_valid_code("3.2.10"));
  ck_assert(!gm__finance_valid_code("3.2.1.1"));
  ck_assert(!gm__finance_valid_code("10"));
  ck_assert(!gm__finance_valid_code("3."));
  ck_assert(!gm__finance_valid_code("3.02"));
  ck_assert(!gm__finance_valid_code("0"));
  ck_assert_int_lt(gm__finance_code_cmp("1.2", "1.10"), 0);
  ck_assert_int_lt(gm__finance_code_cmp("1", "1.1"), 0);
  ck_assert_int_gt(gm__finance_code_cmp("2", "1.7"), 0);
  ck_assert_int_eq(gm__finance_code_cmp("3.2.1", "3.2.1"), 0);
  /* fuzz/market/regression-code-order-hang: a corrupted code from Redis
     ("...1.1" after bytes that are no number) looped for ever. */
  ck_assert_int_ne(gm__finance_code_cmp("\xe1\xb8\xb8.11.1", "1.1"), 0);
  ck_assert_int_ne(gm__finance_code_cmp("1.x", "1.1"), 0);
  ck_assert_int_ne(gm__finance_code_cmp("1.", "1.1"), 0);
  ck_assert(gm__finance_class_covers("3", "3.2.1"));
  ck_assert(gm__finance_class_covers("3.2", "3.2"));
  ck_assert(!gm__finance_class_covers("3.2", "3.21"));
  ck_assert(!gm__finance_class_covers("3.1", "3.2"));

  ck_assert(gm__finance_valid_bank("icbc-huzhou"));
  ck_assert(!gm__finance_valid_bank("ICBC"));
  ck_assert(!gm__finance_valid_bank("-icbc"));
  ck_assert(gm__finance_valid_referral("R00000001"));
  ck_assert(!gm__finance_valid_referral("R0001"));
  ck_assert(!gm__finance_valid_referral("X00000001"));
  /* One referral, one id: a leading zero beyond 8 digits is no id. */
  ck_assert(!gm__finance_valid_referral("R000000001"));
  ck_assert(gm__finance_valid_referral("R100000000"));
  /* Refusals say what was wrong with what was typed. */
  ck_assert_str_eq(gm__finance_date_why("2026-02-30"),
                   "does not exist: that month is shorter");
  ck_assert_str_eq(gm__finance_date_why("1969-12-31"),
                   "is before 1970-01-01, the first date accepted");
  ck_assert_str_eq(gm__finance_month_why("1900-01"),
                   "is outside the months accepted, 1970-01 to 9999-11");
  ck_assert_str_eq(gm__finance_month_why("2026-13"),
                   "does not exist: a month is 01 to 12");
  ck_assert(!gm__finance_valid_region("990000"));
  ck_assert(strstr(gm__finance_region_why("990000"), "no province"));
  ck_assert(strstr(gm__finance_region_why("99000"), "not a division code"));
  int64_t v;
  char err[256];
  ck_assert_int_eq(gm__finance_parse_decimal("--tenor", "months", "36.5", 0,
                                             600, &v, err, sizeof err),
                   -1);
  ck_assert_str_eq(err, "--tenor must be a whole number of months, not 36.5");
}
END_TEST

/* Amounts (hundredths of the unit) with the currency's ISO 4217 decimals. */
START_TEST(money_in_its_decimals) {
  char m[40], err[256];
  ck_assert_str_eq(gm__finance_format_money(450000000, "CNY", m), "4500000.00");
  ck_assert_str_eq(gm__finance_format_money(450000000, "JPY", m), "4500000");
  ck_assert_str_eq(gm__finance_format_money(150, "KWD", m), "1.500");
  ck_assert_str_eq(gm__finance_format_money(250, "CLF", m), "2.5000");
  ck_assert_str_eq(gm__finance_format_money(5, "BHD", m), "0.050");
  /* An older record's fraction of a yen is shown as stored. */
  ck_assert_str_eq(gm__finance_format_money(450000050, "JPY", m), "4500000.50");
  /* A code refused now (in an older product): two decimals. */
  ck_assert_str_eq(gm__finance_format_money(1234, "XAU", m), "12.34");
  ck_assert_str_eq(gm__finance_format_money(-1234, "CNY", m), "-12.34");
  ck_assert_str_eq(gm__finance_format_money(GM_FINANCE_MAX_AMOUNT, "USD", m),
                   "1000000000000.00");
  ck_assert_int_eq(
      gm__finance_money_check("the amount", 450000000, "JPY", err, sizeof err),
      0);
  ck_assert_int_eq(
      gm__finance_money_check("the amount", 450000050, "JPY", err, sizeof err),
      -1);
  ck_assert_str_eq(err,
                   "the amount 4500000.50 JPY has more decimals than JPY "
                   "has (0, ISO 4217); give a whole amount in JPY");
  ck_assert_int_eq(
      gm__finance_money_check("the amount", 1, "CNY", err, sizeof err), 0);
  ck_assert_int_eq(
      gm__finance_money_check("the amount", 1, "KWD", err, sizeof err), 0);
}
END_TEST

static int count_entry(void *arg, const char *code, const char *parent,
                       const char *name, const char *en) {
  (void)code;
  (void)parent;
  (void)name;
  (void)en;
  ++*(int *)arg;
  return 0;
}

START_TEST(the_shipped_catalogue_has_six_classes_and_thirty_items) {
  char err[256];
  int n = 0;
  char *text = slurp("catalogue.csv");
  ck_assert_int_eq(
      gm__finance_catalogue_parse(text, count_entry, &n, err, sizeof err), 36);
  free(text);
  ck_assert_int_eq(n, 36);
}
END_TEST

START_TEST(bad_files_are_refused_with_the_line) {
  char err[256];
  int n = 0;
  ck_assert_int_eq(
      gm__finance_catalogue_parse("code,parent,name,name_en\n"
                                  "1,,A,a\n3.1,3,B,b\n",
                                  count_entry, &n, err, sizeof err),
      -1);
  ck_assert_msg(strstr(err, "line 3") && strstr(err, "parent 3"), "%s", err);
  ck_assert_int_eq(
      gm__finance_catalogue_parse("code,parent,name,name_en\n"
                                  "1,,A,a\n1.1,2,B,b\n",
                                  count_entry, &n, err, sizeof err),
      -1);
  ck_assert_msg(strstr(err, "must be \"1\""), "%s", err);
  ck_assert_int_eq(
      gm__finance_catalogue_parse("code,parent,name,name_en\n"
                                  "1,,A,a,extra\n",
                                  count_entry, &n, err, sizeof err),
      -1);
  ck_assert_msg(strstr(err, "5 fields"), "%s", err);
  ck_assert_int_eq(
      gm__finance_catalogue_parse("1,,A,a\n", count_entry, &n, err, sizeof err),
      -1);
  ck_assert_msg(strstr(err, "header"), "%s", err);
  /* A holiday on a Saturday changes nothing: refused as a mistake. */
  ck_assert_int_eq(gm__finance_calendar_parse("date,kind,note\n"
                                              "2026-03-07,holiday,x\n",
                                              add_day, NULL, err, sizeof err),
                   -1);
  ck_assert_msg(strstr(err, "weekend day"), "%s", err);
  ck_assert_int_eq(gm__finance_calendar_parse("date,kind,note\n"
                                              "2026-03-09,off,x\n",
                                              add_day, NULL, err, sizeof err),
                   -1);
  ck_assert_msg(strstr(err, "is not holiday, workday or statutory"), "%s", err);
  /* A statutory day is a holiday: on a weekend it is refused as one. */
  ck_assert_int_eq(gm__finance_calendar_parse("date,kind,note\n"
                                              "2027-02-06,statutory,x\n",
                                              add_day, NULL, err, sizeof err),
                   -1);
  ck_assert_msg(strstr(err, "weekend day"), "%s", err);
}
END_TEST

START_TEST(typed_amounts_are_exact) {
  int64_t v;
  char err[256];
  ck_assert_int_eq(
      gm__finance_parse_decimal("--amount", "yuan", "85.5", 2,
                                GM_FINANCE_MAX_AMOUNT, &v, err, sizeof err),
      0);
  ck_assert_int_eq(v, 8550);
  ck_assert_int_eq(
      gm__finance_parse_decimal("--amount", "yuan", "1000000000000", 2,
                                GM_FINANCE_MAX_AMOUNT, &v, err, sizeof err),
      0);
  ck_assert_int_eq(v, GM_FINANCE_MAX_AMOUNT);
  ck_assert_int_eq(
      gm__finance_parse_decimal("--amount", "yuan", "1000000000000.01", 2,
                                GM_FINANCE_MAX_AMOUNT, &v, err, sizeof err),
      -1);
  ck_assert_msg(strstr(err, "above the largest"), "%s", err);
  ck_assert_int_eq(
      gm__finance_parse_decimal("--amount", "yuan", "1.234", 2,
                                GM_FINANCE_MAX_AMOUNT, &v, err, sizeof err),
      -1);
  ck_assert_msg(strstr(err, "more than 2 decimals") && strstr(err, "yuan"),
                "%s", err);
  ck_assert_int_eq(
      gm__finance_parse_decimal("--rate", "%", "3.45", 2, GM_FINANCE_MAX_BP, &v,
                                err, sizeof err),
      0);
  ck_assert_int_eq(v, 345);
  ck_assert_int_eq(
      gm__finance_parse_decimal("--co2", "t", "1.5", 3, GM_FINANCE_MAX_BENEFIT,
                                &v, err, sizeof err),
      0);
  ck_assert_int_eq(v, 1500);
  ck_assert_int_eq(
      gm__finance_parse_decimal("--amount", "yuan", "-5", 2,
                                GM_FINANCE_MAX_AMOUNT, &v, err, sizeof err),
      -1);
  ck_assert_int_eq(
      gm__finance_parse_decimal("--amount", "yuan", "5e3", 2,
                                GM_FINANCE_MAX_AMOUNT, &v, err, sizeof err),
      -1);
  ck_assert_int_eq(gm__finance_parse_decimal(
                       "--amount", "yuan", "99999999999999999999999999", 2,
                       GM_FINANCE_MAX_AMOUNT, &v, err, sizeof err),
                   -1);
  char out[40];
  ck_assert_str_eq(gm__finance_format_money(450000005, "CNY", out),
                   "4500000.05");
  ck_assert_str_eq(gm__finance_format_pct(345, out), "3.45");
  ck_assert_str_eq(gm__finance_format_tonnes(1500, out), "1.500");
}
END_TEST

int main(void) {
  Suite *s = suite_create("finance rules");
  TCase *tc = tcase_create("rules");
  tcase_add_test(tc, money_in_its_decimals);
  tcase_add_test(tc, fee_rounds_half_up_to_the_fen);
  tcase_add_test(tc, ratios_never_overflow);
  tcase_add_test(tc, bands_hide_the_amount);
  tcase_add_test(tc, dates_in_shanghai);
  tcase_add_test(tc, working_days_skip_holidays_and_count_make_up_days);
  tcase_add_test(tc, regions_and_codes);
  tcase_add_test(tc, the_shipped_catalogue_has_six_classes_and_thirty_items);
  tcase_add_test(tc, bad_files_are_refused_with_the_line);
  tcase_add_test(tc, typed_amounts_are_exact);
  suite_add_tcase(s, tc);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
