/* The config reader: values, defaults, bad numbers, relative paths. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"

static char dir[] = "/tmp/gm-config-XXXXXX";
static char path[256];

static void write_conf(const char *text) {
  ck_assert_ptr_nonnull(mkdtemp(dir));
  snprintf(path, sizeof path, "%s/gmd.conf", dir);
  FILE *f = fopen(path, "w");
  ck_assert_ptr_nonnull(f);
  fputs(text, f);
  fclose(f);
}

static void cleanup(void) {
  unlink(path);
  rmdir(dir);
}

START_TEST(reads_values_and_defaults) {
  write_conf(
      "[broker]\nworkers = 3\n[Ledger]\nsettle = off\npath = var/l.db\n");
  char err[256];
  gm__config *c = gm__config_load(path, err, sizeof err);
  ck_assert_ptr_nonnull(c);
  long n;
  ck_assert_int_eq(
      gm__config_int(c, "broker", "workers", 4, 1, 64, &n, err, sizeof err), 0);
  ck_assert_int_eq(n, 3);
  ck_assert_int_eq(
      gm__config_int(c, "broker", "absent", 7, 1, 64, &n, err, sizeof err), 0);
  ck_assert_int_eq(n, 7);
  int on;
  ck_assert_int_eq(
      gm__config_bool(c, "ledger", "settle", 1, &on, err, sizeof err), 0);
  ck_assert_int_eq(on, 0);
  char *p = gm__config_path(c, "ledger", "path", NULL);
  char want[300];
  snprintf(want, sizeof want, "%s/var/l.db", dir);
  ck_assert_str_eq(p, want);
  free(p);
  gm__config_set(c, "broker", "workers", "9");
  ck_assert_str_eq(gm__config_get(c, "broker", "workers", ""), "9");
  gm__config_destroy(&c);
  ck_assert_ptr_null(c);
  gm__config_destroy(&c); /* idempotent */
  cleanup();
}
END_TEST

START_TEST(rejects_bad_numbers_with_the_range) {
  write_conf("[broker]\nworkers = lots\nmax = 99999\n");
  char err[256];
  gm__config *c = gm__config_load(path, err, sizeof err);
  long n;
  ck_assert_int_eq(
      gm__config_int(c, "broker", "workers", 4, 1, 64, &n, err, sizeof err),
      -1);
  ck_assert_msg(strstr(err, "workers = lots") && strstr(err, "1 to 64"), "%s",
                err);
  ck_assert_int_eq(
      gm__config_int(c, "broker", "max", 4, 1, 64, &n, err, sizeof err), -1);
  int b;
  gm__config_set(c, "x", "flag", "maybe");
  ck_assert_int_eq(gm__config_bool(c, "x", "flag", 0, &b, err, sizeof err), -1);
  ck_assert_msg(strstr(err, "on or off") != NULL, "%s", err);
  gm__config_destroy(&c);
  cleanup();
}
END_TEST

START_TEST(reports_the_bad_line) {
  write_conf("[broker]\nworkers = 3\nthis line has no equals sign\n");
  char err[256] = "";
  gm__config *c = gm__config_load(path, err, sizeof err);
  ck_assert_ptr_null(c);
  ck_assert_msg(strstr(err, ":3:") != NULL, "%s", err);
  cleanup();
}
END_TEST

START_TEST(reports_a_missing_file) {
  char err[256] = "";
  ck_assert_ptr_null(gm__config_load("/nonexistent/gmd.conf", err, sizeof err));
  ck_assert_msg(strstr(err, "cannot open") != NULL, "%s", err);
}
END_TEST

int main(void) {
  Suite *s = suite_create("config");
  TCase *tc = tcase_create("config");
  tcase_add_test(tc, reads_values_and_defaults);
  tcase_add_test(tc, rejects_bad_numbers_with_the_range);
  tcase_add_test(tc, reports_the_bad_line);
  tcase_add_test(tc, reports_a_missing_file);
  suite_add_tcase(s, tc);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
