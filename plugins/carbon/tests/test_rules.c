/* The carbon rules that need no Redis: price display, sessions, dates, names.
 */
#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "price.h"
#include "rules.h"

/* Typed prices are parsed by gm (tests/client/test_carbon_cli.c); the
   plugin and gm share the printing. */
START_TEST(prices_print_in_yuan) {
  char buf[32];
  ck_assert_str_eq(gm__carbon_format_price(8550, buf), "85.50");
  ck_assert_str_eq(gm__carbon_format_price(5, buf), "0.05");
  ck_assert_str_eq(gm__carbon_format_price(-105, buf), "-1.05");
  ck_assert_str_eq(gm__carbon_format_price(GM_CARBON_MAX_PRICE, buf),
                   "1000000.00");
}
END_TEST

START_TEST(integers_print_in_decimal) {
  char buf[24];
  ck_assert_uint_eq(gm__carbon_format_int(0, buf), 1);
  ck_assert_str_eq(buf, "0");
  ck_assert_uint_eq(gm__carbon_format_int(-42, buf), 3);
  ck_assert_str_eq(buf, "-42");
  ck_assert_uint_eq(gm__carbon_format_int(1000000, buf), 7);
  ck_assert_str_eq(buf, "1000000");
  ck_assert_uint_eq(gm__carbon_format_int(INT64_MAX, buf), 19);
  ck_assert_str_eq(buf, "9223372036854775807");
  ck_assert_uint_eq(gm__carbon_format_int(INT64_MIN, buf), 20);
  ck_assert_str_eq(buf, "-9223372036854775808");
  char want[24];
  for (int64_t v = -100000; v <= 100000; v += 7) {
    snprintf(want, sizeof want, "%lld", (long long)v);
    gm__carbon_format_int(v, buf);
    ck_assert_str_eq(buf, want);
  }
}
END_TEST

/* The settler's and the replies' number reader reads what strtoll(s, NULL,
   10) reads, for every text the scripts write and for the odd ones. */
START_TEST(integers_parse_as_strtoll_does) {
  const char *cases[] = {"0",
                         "-42",
                         "1000000",
                         "1772589600000",
                         "9223372036854775807",
                         "-9223372036854775808",
                         "99999999999999999999",
                         "-99999999999999999999",
                         "123456789012345678",
                         "1234567890123456789",
                         "",
                         "-",
                         "+7",
                         " 12",
                         "\t-3",
                         "12|34",
                         "4e5",
                         "abc",
                         "007",
                         "-0"};
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
    ck_assert_msg(gm__carbon_parse_int(cases[i]) == strtoll(cases[i], NULL, 10),
                  "\"%s\": %lld, strtoll %lld", cases[i],
                  (long long)gm__carbon_parse_int(cases[i]),
                  strtoll(cases[i], NULL, 10));
  char buf[24];
  for (int64_t v = -100000; v <= 100000; v += 7) {
    gm__carbon_format_int(v, buf);
    ck_assert_int_eq(gm__carbon_parse_int(buf), v);
  }
}
END_TEST

START_TEST(sessions_parse_to_minutes_and_back) {
  char out[128], err[256], txt[128];
  ck_assert_int_eq(gm__carbon_parse_sessions("09:30-11:30,13:00-15:00", out,
                                             sizeof out, err, sizeof err),
                   0);
  ck_assert_str_eq(out, "570-690,780-900");
  gm__carbon_format_sessions(out, txt, sizeof txt);
  ck_assert_str_eq(txt, "09:30-11:30,13:00-15:00");
  ck_assert_int_eq(gm__carbon_parse_sessions("00:00-24:00", out, sizeof out,
                                             err, sizeof err),
                   0);
  ck_assert_str_eq(out, "0-1440");
  const char *bad[] = {"",
                       "9:30-11:30",
                       "11:30-09:30",
                       "13:00-15:00,09:30-11:30",
                       "09:30-11:30,11:00-12:00",
                       "09:30-11:60",
                       "25:00-26:00",
                       "09:30-11:30;13:00-15:00"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    err[0] = '\0';
    ck_assert_msg(gm__carbon_parse_sessions(bad[i], out, sizeof out, err,
                                            sizeof err) == -1,
                  "accepted \"%s\"", bad[i]);
    ck_assert_msg(strlen(err) > 10, "no reason for \"%s\"", bad[i]);
  }
}
END_TEST

START_TEST(days_are_shanghai_dates) {
  int64_t day;
  char buf[16];
  ck_assert_int_eq(gm__carbon_parse_date("1970-01-01", &day), 0);
  ck_assert_int_eq(day, 0);
  ck_assert_int_eq(gm__carbon_parse_date("2026-03-02", &day), 0);
  ck_assert_str_eq(gm__carbon_format_date(day, buf), "2026-03-02");
  /* 2026-03-02 is a Monday: (day + 4) % 7 == 1, as the scripts compute. */
  ck_assert_int_eq((day + 4) % 7, 1);
  ck_assert_int_eq(gm__carbon_parse_date("2024-02-29", &day), 0);
  ck_assert_str_eq(gm__carbon_format_date(day, buf), "2024-02-29");
  ck_assert_int_eq(gm__carbon_parse_date("2025-02-29", &day), -1);
  ck_assert_int_eq(gm__carbon_parse_date("2025-13-01", &day), -1);
  ck_assert_int_eq(gm__carbon_parse_date("2025-1-01", &day), -1);
  /* 2026-03-01 16:00 UTC is 2026-03-02 00:00 in Shanghai. */
  ck_assert_int_eq(gm__carbon_parse_date("2026-03-02", &day), 0);
  int64_t ms = gm__carbon_day_start_ms(day);
  ck_assert_int_eq(gm__carbon_day_of(ms), day);
  ck_assert_int_eq(gm__carbon_day_of(ms - 1), day - 1);
  ck_assert_int_eq(ms % GM_CARBON_DAY_MS, 16 * 3600 * 1000);
  /* Every day number round-trips through its date. */
  for (int64_t d = 0; d < 40000; d += 7) {
    int64_t back;
    ck_assert_int_eq(
        gm__carbon_parse_date(gm__carbon_format_date(d, buf), &back), 0);
    ck_assert_int_eq(back, d);
  }
}
END_TEST

/* Days and times beyond any date the market writes are clamped, never
   overflowed (found by tests/fuzz/fuzz_market). */
START_TEST(extreme_days_do_not_overflow) {
  char d[16];
  ck_assert_str_eq(gm__carbon_format_date(INT64_MAX, d), "(no date)");
  ck_assert_str_eq(gm__carbon_format_date(INT64_MIN, d), "(no date)");
  ck_assert_str_eq(gm__carbon_format_date(2932896, d), "9999-12-31");
  ck_assert_str_eq(gm__carbon_format_date(-719528, d), "0000-01-01");
  ck_assert_int_eq(gm__carbon_day_of(INT64_MAX), 2932896);
  ck_assert_int_eq(gm__carbon_day_of(INT64_MIN), -719528);
  /* The day after 9999-12-31 still starts (the end of the last day is
     its start - 1); past it the day is clamped. */
  ck_assert_int_eq(gm__carbon_day_start_ms(INT64_MAX),
                   gm__carbon_day_start_ms(2932897));
  ck_assert_int_eq(gm__carbon_day_of(gm__carbon_day_start_ms(2932897) - 1),
                   2932896);
  ck_assert_int_eq(gm__carbon_day_start_ms(INT64_MIN),
                   gm__carbon_day_start_ms(-719528));
}
END_TEST

START_TEST(names_are_checked) {
  ck_assert(gm__carbon_valid_symbol("CEA-2025"));
  ck_assert(gm__carbon_valid_symbol("CCER"));
  ck_assert(!gm__carbon_valid_symbol("cea"));
  ck_assert(!gm__carbon_valid_symbol("1CEA"));
  ck_assert(!gm__carbon_valid_symbol("CEA:2025"));
  ck_assert(!gm__carbon_valid_symbol("ABCDEFGHIJKLMNOPQRSTUVWXY"));
  ck_assert(!gm__carbon_valid_symbol(""));
}
END_TEST

static void text_bad(const char *text, const char *want) {
  char why[128] = "";
  ck_assert_msg(gm__carbon_check_text(text, why, sizeof why) == -1,
                "\"%s\" was taken", text);
  ck_assert_msg(strstr(why, want), "message \"%s\" lacks \"%s\"", why, want);
}

START_TEST(free_text_is_one_line_of_plain_utf8) {
  char why[128];
  ck_assert_int_eq(gm__carbon_check_text("", why, sizeof why), 0);
  ck_assert_int_eq(gm__carbon_check_text("Allowances 2025", why, sizeof why),
                   0);
  ck_assert_int_eq(gm__carbon_check_text("全国碳排放权 2025", why, sizeof why),
                   0);
  text_bad("e\x1b[2Jx", "control character U+001B at byte 2");
  text_bad("line1\nline2", "U+000A");
  text_bad("a\x7f", "U+007F");
  text_bad("a\xc2\x9b", "U+009B");                            /* C1 CSI */
  text_bad("a\xe2\x80\xae", "bidi control character U+202E"); /* RLO */
  text_bad("a\xe2\x81\xa6", "U+2066");
  text_bad("a\xe2\x80\x8f", "bidi control character U+200F"); /* RLM */
  text_bad(
      "a\xe2\x80\xa8"
      "b",
      "control character U+2028"); /* LS */
  text_bad("a\xff", "not valid UTF-8 (at byte 2)");
  text_bad("a\xc0\x80", "not valid UTF-8");     /* overlong NUL */
  text_bad("a\xed\xa0\x80", "not valid UTF-8"); /* a surrogate */
  text_bad("   ", "only spaces");
}
END_TEST

START_TEST(shown_text_is_cut_and_clean) {
  char out[96], big[3001];
  ck_assert_str_eq(gm__carbon_shown("CEA-2025", out), "CEA-2025");
  ck_assert_str_eq(gm__carbon_shown("a\x1b[2J\n", out), "a?[2J?");
  memset(big, 'A', 3000);
  big[3000] = '\0';
  ck_assert_str_eq(gm__carbon_shown(big, out),
                   "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA... (3000 bytes)");
  /* 31 bytes, then a 3-byte character that would cross 32: not cut in it. */
  memset(big, 'A', 31);
  strcpy(big + 31, "碳碳碳碳碳碳碳碳碳碳碳碳碳碳碳碳");
  ck_assert_str_eq(gm__carbon_shown(big, out),
                   "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA... (79 bytes)");
}
END_TEST

START_TEST(session_errors_show_no_control_characters) {
  char out[128], err[256];
  ck_assert_int_eq(gm__carbon_parse_sessions("09:30-11:30\x1b[2J", out,
                                             sizeof out, err, sizeof err),
                   -1);
  ck_assert_msg(!strchr(err, '\x1b') &&
                    strstr(err,
                           "unexpected character at byte 12 of session "
                           "list \"09:30-11:30?[2J\""),
                "%s", err);
}
END_TEST

START_TEST(zone_offsets_are_real_ones) {
  ck_assert(!gm__carbon_bad_offset("2026-12-04T16:40:00+08:00"));
  ck_assert(!gm__carbon_bad_offset("2026-12-04T16:40:00-14:00"));
  ck_assert(!gm__carbon_bad_offset("2026-12-04T16:40:00+14:00"));
  ck_assert(!gm__carbon_bad_offset("2026-12-04T16:40:00Z"));
  ck_assert(!gm__carbon_bad_offset("1764837600000"));
  ck_assert(gm__carbon_bad_offset("2026-12-04T16:40:00+25:00"));
  ck_assert(gm__carbon_bad_offset("2026-12-04T16:40:00+99:99"));
  ck_assert(gm__carbon_bad_offset("2026-12-04T16:40:00+05:60"));
  ck_assert(gm__carbon_bad_offset("2026-12-04T16:40:00-14:01"));
}
END_TEST

int main(void) {
  Suite *s = suite_create("carbon rules");
  TCase *tc = tcase_create("rules");
  tcase_add_test(tc, prices_print_in_yuan);
  tcase_add_test(tc, free_text_is_one_line_of_plain_utf8);
  tcase_add_test(tc, shown_text_is_cut_and_clean);
  tcase_add_test(tc, zone_offsets_are_real_ones);
  tcase_add_test(tc, session_errors_show_no_control_characters);
  tcase_add_test(tc, integers_print_in_decimal);
  tcase_add_test(tc, integers_parse_as_strtoll_does);
  tcase_add_test(tc, sessions_parse_to_minutes_and_back);
  tcase_add_test(tc, days_are_shanghai_dates);
  tcase_add_test(tc, names_are_checked);
  tcase_add_test(tc, extreme_days_do_not_overflow);
  suite_add_tcase(s, tc);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
