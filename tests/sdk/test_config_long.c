/*
 * gm_config_long (include/greenmarket/plugin.h), the whole-number setting
 * every market's init reads, on a host whose config is a table: absent
 * gives the default, a whole number in range is taken, anything else is
 * refused with one ERROR line naming the setting, the range in its unit
 * and the default, leaving *out as it was.  Compiled as a plugin author
 * might (CMakeLists.txt: ISO C99, -pedantic, -Wdeclaration-after-statement).
 */
#include <check.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "greenmarket/plugin.h"

static const char *value; /* the one key's value; NULL: absent */
static char logged[1024];
static int nlogged;
static gm_log_level level;

static const char *config(gm_market *m, const char *key, const char *def) {
  (void)m;
  return strcmp(key, "days") == 0 && value ? value : def;
}

static void log_line(gm_market *m, gm_log_level lv, const char *fmt, ...) {
  va_list ap;
  (void)m;
  va_start(ap, fmt);
  vsnprintf(logged, sizeof logged, fmt, ap);
  va_end(ap);
  level = lv;
  nlogged++;
}

static gm_host_api host;

static gm_status get(const char *v, const char *unit, long *out) {
  value = v;
  nlogged = 0;
  logged[0] = '\0';
  host.size = sizeof host;
  host.log = log_line;
  host.config = config;
  return gm_config_long(NULL, &host, "mkt", "days", 30, 0, 3650, unit, out);
}

START_TEST(absent_gives_the_default_and_a_whole_number_is_taken) {
  long out = -1;
  ck_assert_int_eq(get(NULL, "days", &out), GM_OK);
  ck_assert_int_eq(out, 30);
  ck_assert_int_eq(get("0", "days", &out), GM_OK);
  ck_assert_int_eq(out, 0);
  ck_assert_int_eq(get("3650", "days", &out), GM_OK);
  ck_assert_int_eq(out, 3650);
  ck_assert_int_eq(nlogged, 0);
}
END_TEST

START_TEST(anything_else_is_refused_saying_what_to_write) {
  long out = 42;
  static const char *bad[] = {"",    "3651", "-1",   "abc",
                              "12x", "1e3",  "0x10", "99999999999999999999",
                              "7 d", "30.5"};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    char want[512];
    out = 42;
    ck_assert_int_eq(get(bad[i], "days", &out), GM_INVALID_ARGUMENT);
    ck_assert_int_eq(out, 42);
    ck_assert_int_eq(nlogged, 1);
    ck_assert_int_eq(level, GM_LOG_ERROR);
    snprintf(want, sizeof want,
             "[market.mkt] days = %s is not a whole number of days in "
             "0..3650: write one in that range, or remove the line for the "
             "default (30 days); the market is not loaded until then",
             bad[i]);
    ck_assert_str_eq(logged, want);
  }
  /* No unit: none named. */
  ck_assert_int_eq(get("-2", "", &out), GM_INVALID_ARGUMENT);
  ck_assert_str_eq(logged,
                   "[market.mkt] days = -2 is not a whole number in 0..3650: "
                   "write one in that range, or remove the line for the "
                   "default (30); the market is not loaded until then");
  ck_assert_int_eq(get("-2", NULL, &out), GM_INVALID_ARGUMENT);
  ck_assert(strstr(logged, "whole number in 0..3650") != NULL);
}
END_TEST

int main(void) {
  Suite *s = suite_create("sdk config_long");
  TCase *tc = tcase_create("config_long");
  SRunner *sr;
  int failed;
  tcase_add_test(tc, absent_gives_the_default_and_a_whole_number_is_taken);
  tcase_add_test(tc, anything_else_is_refused_saying_what_to_write);
  suite_add_tcase(s, tc);
  sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
