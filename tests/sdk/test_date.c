/* greenmarket/date.h: local calendar days at a fixed offset, checked
   against the C library's calendar (gmtime_r) and at the edges of int64,
   where a time from a corrupted record must clamp, not overflow (the
   ASan/UBSan build runs this too). */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <greenmarket/date.h>

#include "check_loop.h"

#define CN GM_DATE_CHINA_MS

static int64_t mod_day(int64_t v) {
  return (v % GM_DATE_DAY_MS + GM_DATE_DAY_MS) % GM_DATE_DAY_MS;
}

/* Every day 1900 .. 2200 and every 97th day of 0000 .. 9999 agrees with
   gmtime_r on y-m-d and the weekday, and goes back to the same day. */
START_TEST(days_agree_with_the_c_library) {
  int64_t from1900 = gm_date_from_civil(1900, 1, 1);
  int64_t to2200 = gm_date_from_civil(2200, 12, 31);
  for (int64_t day = GM_DATE_MIN_DAY; day <= GM_DATE_MAX_DAY;
       day = (day < from1900 && day + 97 > from1900)
                 ? from1900 /* every day from 1900-01-01 on */
                 : day + ((day >= from1900 && day <= to2200) ? 1 : 97)) {
    time_t t = (time_t)(day * 86400);
    struct tm tm;
    gm_check(gmtime_r(&t, &tm) != NULL);
    int y, m, d;
    gm_date_civil(day, &y, &m, &d);
    gm_check_msg(
        y == tm.tm_year + 1900 && m == tm.tm_mon + 1 && d == tm.tm_mday,
        "day %lld: %d-%d-%d, libc %d-%d-%d", (long long)day, y, m, d,
        tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday);
    gm_check_int_eq(gm_date_weekday(day), tm.tm_wday);
    gm_check(gm_date_valid(y, m, d));
    gm_check_int_eq(gm_date_from_civil(y, m, d), day);
  }
  int y, m, d;
  gm_date_civil(GM_DATE_MIN_DAY, &y, &m, &d);
  ck_assert(y == 0 && m == 1 && d == 1);
  gm_date_civil(GM_DATE_MAX_DAY, &y, &m, &d);
  ck_assert(y == 9999 && m == 12 && d == 31);
  ck_assert_int_eq(gm_date_weekday(0), 4); /* Thursday 1970-01-01 */
  ck_assert_int_eq(gm_date_weekday(-1), 3);
}
END_TEST

/* A local day starts at 16:00 UTC the day before, in China. */
START_TEST(local_days_at_an_offset) {
  ck_assert_int_eq(gm_date_day_of(0, CN), 0);
  ck_assert_int_eq(gm_date_day_of(-CN - 1, CN), -1);
  ck_assert_int_eq(gm_date_day_of(-CN, CN), 0);
  ck_assert_int_eq(gm_date_day_of(GM_DATE_DAY_MS - CN - 1, CN), 0);
  ck_assert_int_eq(gm_date_day_of(GM_DATE_DAY_MS - CN, CN), 1);
  ck_assert_int_eq(gm_date_day_of(-1, 0), -1);
  ck_assert_int_eq(gm_date_day_start(0, CN), -CN);
  /* 2026-12-04 00:00 in Beijing is 2026-12-03 16:00 UTC. */
  int64_t day;
  ck_assert_int_eq(gm_date_parse("2026-12-04", &day), 0);
  ck_assert_int_eq(gm_date_day_start(day, CN), INT64_C(1796313600000));
  for (int64_t d = -800000; d <= 3000000; d += 9973) {
    int64_t want = d < GM_DATE_MIN_DAY   ? GM_DATE_MIN_DAY
                   : d > GM_DATE_MAX_DAY ? GM_DATE_MAX_DAY
                                         : d;
    int64_t start = gm_date_day_start(want, CN);
    ck_assert_int_eq(gm_date_day_of(start, CN), want);
    ck_assert_int_eq(gm_date_day_of(start + GM_DATE_DAY_MS - 1, CN), want);
    if (want > GM_DATE_MIN_DAY)
      ck_assert_int_eq(gm_date_day_of(start - 1, CN), want - 1);
  }
  /* The last ms of 9999-12-31 is day_start(the day after) - 1. */
  ck_assert_int_eq(
      gm_date_day_of(gm_date_day_start(GM_DATE_MAX_DAY + 1, CN) - 1, CN),
      GM_DATE_MAX_DAY);
}
END_TEST

/* Any int64 is a time or a day these functions answer for: the extremes
   clamp to 0000-01-01 and 9999-12-31 (UBSan fails the run on an
   overflow). */
START_TEST(extreme_values_clamp) {
  const int64_t v[] = {INT64_MIN,     INT64_MIN + 1, -(INT64_C(1) << 62),
                       INT64_MAX - 1, INT64_MAX,     INT64_C(1) << 62};
  const int64_t off[] = {CN, 0, -CN, GM_DATE_DAY_MS - 1, 1 - GM_DATE_DAY_MS};
  for (size_t i = 0; i < sizeof v / sizeof *v; i++)
    for (size_t k = 0; k < sizeof off / sizeof *off; k++) {
      int64_t want = v[i] < 0 ? GM_DATE_MIN_DAY : GM_DATE_MAX_DAY;
      ck_assert_int_eq(gm_date_day_of(v[i], off[k]), want);
      int64_t s = gm_date_day_start(v[i], off[k]);
      ck_assert_int_eq(mod_day(s), mod_day(-off[k]));
      int64_t day, in;
      gm_date_split(v[i], off[k], &day, &in);
      ck_assert_int_eq(day, want);
      ck_assert(in == (v[i] < 0 ? 0 : GM_DATE_DAY_MS - 1));
      int y, m, d;
      gm_date_civil(v[i], &y, &m, &d);
      ck_assert_int_eq(y, v[i] < 0 ? 0 : 9999);
    }
  char t[20];
  ck_assert_str_eq(gm_date_format_time(INT64_MAX, CN, t),
                   "9999-12-31 23:59:59");
  ck_assert_str_eq(gm_date_format_time(INT64_MIN, CN, t),
                   "0000-01-01 00:00:00");
  ck_assert_str_eq(gm_date_format_time(0, CN, t), "1970-01-01 08:00:00");
  ck_assert_str_eq(gm_date_format_time(-1, CN, t), "1970-01-01 07:59:59");
  ck_assert_str_eq(gm_date_format_time(INT64_C(1796313600000), CN, t),
                   "2026-12-04 00:00:00");
  /* from_civil and the offsets clamp too. */
  ck_assert_int_eq(gm_date_from_civil(INT64_MAX, 1, 1),
                   gm_date_from_civil(10000, 1, 1));
  ck_assert_int_eq(gm_date_from_civil(2026, INT32_MAX, INT32_MIN),
                   gm_date_from_civil(2026, 12, 1));
  ck_assert_int_eq(gm_date_from_civil(2026, 2, 30),
                   gm_date_from_civil(2026, 3, 2));
  ck_assert_int_eq(gm_date_day_of(0, INT64_MAX), 0);
  ck_assert_int_eq(gm_date_day_of(0, INT64_MIN), -1);
  ck_assert_int_eq(gm_date_day_start(INT64_MAX, INT64_MIN),
                   (GM_DATE_MAX_DAY + 2) * GM_DATE_DAY_MS - 1);
  ck_assert_str_eq(gm_date_format_time(INT64_MAX, INT64_MAX, t),
                   "9999-12-31 23:59:59");
  char f[11] = "x";
  ck_assert_int_eq(gm_date_format(GM_DATE_MAX_DAY + 1, f), -1);
  ck_assert_str_eq(f, "");
  ck_assert_int_eq(gm_date_format(INT64_MIN, f), -1);
  ck_assert_int_eq(gm_date_format(GM_DATE_MIN_DAY, f), 0);
  ck_assert_str_eq(f, "0000-01-01");
}
END_TEST

START_TEST(parse_takes_real_dates_of_1970_to_9999) {
  static const char *const good[] = {"1970-01-01", "2024-02-29", "2000-02-29",
                                     "2026-12-31", "9999-12-31"};
  static const char *const bad[] = {
      "1969-12-31",  "2026-02-29",      "1900-02-29",
      "2026-13-01",  "2026-00-10",      "2026-04-31",
      "2026-01-00",  "2026-1-01",       "2026-01-1",
      " 2026-01-01", "2026-01-01 ",     "+026-01-01",
      "2026/01/01",  "20260101",        "",
      "2026-01-0x",  "2026-\xc3\xa9-01"};
  int64_t day = 42;
  for (size_t i = 0; i < sizeof good / sizeof *good; i++) {
    ck_assert_msg(gm_date_parse(good[i], &day) == 0, "%s", good[i]);
    char out[11];
    ck_assert_int_eq(gm_date_format(day, out), 0);
    ck_assert_str_eq(out, good[i]);
  }
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    day = 42;
    ck_assert_msg(gm_date_parse(bad[i], &day) == -1, "%s", bad[i]);
    ck_assert_int_eq(day, 42);
  }
  ck_assert_int_eq(gm_date_parse(NULL, &day), -1);
}
END_TEST

int main(void) {
  Suite *s = suite_create("date");
  TCase *tc = tcase_create("date");
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, days_agree_with_the_c_library);
  tcase_add_test(tc, local_days_at_an_offset);
  tcase_add_test(tc, extreme_values_clamp);
  tcase_add_test(tc, parse_takes_real_dates_of_1970_to_9999);
  suite_add_tcase(s, tc);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
