/* The plugin loader: every refusal is refused with its reason; a good plugin
 * loads. */
#include <check.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "host.h"
#include "loader.h"
#include "roles.h"
#include "timers.h"

static gm__config *cfg;
static gm__host host;

static void setup(void) {
  cfg = gm__config_new();
  gm__config_set(cfg, "market.testmkt", "greeting", "hi");
  host = (gm__host){
      .config = cfg, .timers = gm__timers_new(), .broker_name = "test"};
}

static void teardown(void) {
  gm__timers_destroy(&host.timers);
  gm__config_destroy(&cfg);
}

/* Loads `name` from the test plugin dir; expects refusal with `why` in err. */
static void expect_refused(const char *name, const char *why) {
  char path[512], err[1024] = "";
  snprintf(path, sizeof path, "%s/%s", TEST_PLUGIN_DIR, name);
  gm_market *m = gm__plugin_load(path, &host, err, sizeof err);
  ck_assert_ptr_null(m);
  ck_assert_msg(strstr(err, path) != NULL, "err names no file: %s", err);
  ck_assert_msg(strstr(err, why) != NULL, "expected '%s' in: %s", why, err);
}

START_TEST(refuses_wrong_abi) {
  expect_refused("gm_broken_abi.so", "built for plugin ABI 999");
}
END_TEST

START_TEST(refuses_missing_magic) {
  expect_refused("gm_broken_no_magic.so", "no gm_plugin_magic symbol");
}
END_TEST

START_TEST(refuses_missing_entry) {
  expect_refused("gm_broken_no_entry.so", "no gm_plugin_entry symbol");
}
END_TEST

START_TEST(refuses_missing_shutdown) {
  expect_refused("gm_broken_no_shutdown.so", "mandatory callback shutdown");
}
END_TEST

START_TEST(refuses_missing_handler) {
  expect_refused("gm_broken_no_handler.so",
                 "method x: mandatory callback handle");
}
END_TEST

START_TEST(refuses_failing_init) {
  expect_refused("gm_broken_init_fails.so",
                 "init failed with FAILED_PRECONDITION");
}
END_TEST

START_TEST(refuses_non_plugin_file) {
  char path[] = "/tmp/gm-notaplugin-XXXXXX";
  int fd = mkstemp(path);
  ck_assert_int_ge(fd, 0);
  ck_assert_int_eq(write(fd, "not an ELF file\n", 16), 16);
  close(fd);
  char err[1024] = "";
  gm_market *m = gm__plugin_load(path, &host, err, sizeof err);
  unlink(path);
  ck_assert_ptr_null(m);
  ck_assert_msg(strstr(err, "dlopen failed") != NULL, "%s", err);
}
END_TEST

START_TEST(refuses_missing_file) {
  expect_refused("gm_nothere.so", "dlopen failed");
}
END_TEST

/* testmkt's init needs Redis: without it, it is refused and says so; the
   loader must still have unloaded cleanly (a second attempt behaves the same).
 */
START_TEST(good_plugin_without_redis_is_refused_cleanly) {
  expect_refused("gm_testmkt.so", "init failed with UNAVAILABLE");
  expect_refused("gm_testmkt.so", "init failed with UNAVAILABLE");
}
END_TEST

START_TEST(refuses_a_role_name_that_is_no_role_name) {
  expect_refused("gm_badname.so", "role 0 is named 'Bad Role'");
}
END_TEST

START_TEST(refuses_declaring_admin) {
  expect_refused("gm_admin.so", "declares role admin, which is the broker's");
}
END_TEST

START_TEST(refuses_method_roles_with_spaces) {
  expect_refused("gm_spaces.so",
                 "method x: roles \"buyer, seller\" must be role names "
                 "separated by commas, without spaces");
}
END_TEST

/* A market's tables are "<market>_*": no name may hold another's tables
   ("alpha_eu_t" starts with "alpha_"), nor SQLite's ("sqlite_*"). */
START_TEST(refuses_a_name_whose_tables_are_another_s) {
  expect_refused("gm_nested.so",
                 "market name 'alpha_eu' is not [a-z][a-z0-9]*");
  expect_refused("gm_sqlite.so", "market name 'sqlite' is not [a-z][a-z0-9]*");
}
END_TEST

/* Loads the named test plugins in that order; every one must load. */
static size_t load_all(const char *const *names, size_t n, gm_market **out) {
  for (size_t i = 0; i < n; i++) {
    char path[512], err[1024] = "";
    snprintf(path, sizeof path, "%s/gm_%s.so", TEST_PLUGIN_DIR, names[i]);
    out[i] = gm__plugin_load(path, &host, err, sizeof err);
    ck_assert_msg(out[i] != NULL, "%s", err);
  }
  return n;
}

static int has_market(gm_market *const *m, size_t n, const char *name) {
  for (size_t i = 0; i < n; i++)
    if (strcmp(m[i]->name, name) == 0) return 1;
  return 0;
}

/*
 * Roles are checked once every plugin has loaded: beta may name alpha's
 * role; gamma names a role nobody declares and is refused; delta names
 * gamma's role and goes with it.  The same markets stay whatever the load
 * order.
 */
START_TEST(roles_are_checked_after_every_plugin_loaded) {
  static const char *const orders[][5] = {
      {"alpha", "beta", "gamma", "delta", "oldsdk"},
      {"delta", "oldsdk", "gamma", "beta", "alpha"}};
  for (size_t o = 0; o < 2; o++) {
    gm_market *m[5];
    size_t n = load_all(orders[o], 5, m);
    gm__plugins_check_roles(m, &n);
    ck_assert_uint_eq(n, 3);
    ck_assert(has_market(m, n, "alpha"));
    ck_assert(has_market(m, n, "beta"));
    ck_assert(has_market(m, n, "oldsdk"));
    gm__roles *r = gm__roles_new(m, n);
    ck_assert_str_eq(gm__roles_all(r), "admin,auditor,buyer,lender,old_role");
    ck_assert(gm__roles_known(r, "lender", 6));
    ck_assert(!gm__roles_known(r, "steward", 7));
    gm__arena *a = gm__arena_new();
    /* Roles no loaded market declares are kept out, not refused. */
    ck_assert_str_eq(gm__roles_in_force(r, a, "steward,buyer,,wizard,admin"),
                     "buyer,admin");
    ck_assert_str_eq(gm__roles_in_force(r, a, "steward"), "");
    const char *list = gm__roles_describe(r, a);
    ck_assert_msg(strstr(list, "\n  admin (gm): the broker's administrator"),
                  "%s", list);
    ck_assert_msg(strstr(list, "\n  auditor (alpha): reads every record"), "%s",
                  list);
    /* Declared by two markets: one line, each market's meaning. */
    ck_assert_msg(strstr(list,
                         "\n  buyer (alpha: buys alpha goods (alpha's "
                         "own meaning); oldsdk: named by its methods"),
                  "%s", list);
    gm__arena_destroy(&a);
    gm__roles_destroy(&r);
    ck_assert_ptr_null(r);
    for (size_t i = 0; i < n; i++) gm__plugin_unload(&m[i]);
  }
}
END_TEST

/* Latency statistics: every latency falls in the bucket whose bounds hold
   it, buckets are within 12.5% wide, and percentiles come out within that. */
START_TEST(latency_buckets_bound_every_value) {
  uint64_t lower = 0;
  for (unsigned b = 0; b + 1 < GM_LATENCY_BUCKETS; b++) {
    uint64_t upper = gm__stats_bucket_bound(b);
    ck_assert_uint_gt(upper, lower);
    ck_assert_uint_eq(gm__stats_bucket(lower), b);
    ck_assert_uint_eq(gm__stats_bucket(upper - 1), b);
    if (lower >= 8) ck_assert_uint_le((upper - lower) * 8, lower);
    lower = upper;
  }
  ck_assert_uint_eq(gm__stats_bucket(UINT64_MAX), GM_LATENCY_BUCKETS - 1);

  static gm__stats st; /* zeroed */
  for (uint64_t us = 1; us <= 1000; us++) gm__stats_add(&st, GM_OK, us * 100);
  gm__stats_add(&st, GM_INTERNAL, 5000000);
  uint64_t p50 = gm__stats_percentile_us(&st, 50);
  uint64_t p99 = gm__stats_percentile_us(&st, 99);
  ck_assert_msg(p50 >= 50000 && p50 <= 50000 + 50000 / 8, "p50 %llu",
                (unsigned long long)p50);
  ck_assert_msg(p99 >= 99000 && p99 <= 99000 + 99000 / 8, "p99 %llu",
                (unsigned long long)p99);
  ck_assert_uint_eq(atomic_load(&st.requests), 1001);
  ck_assert_uint_eq(atomic_load(&st.errors), 1);
  ck_assert_uint_eq(atomic_load(&st.latency_max_us), 5000000);
}
END_TEST

int main(void) {
  Suite *s = suite_create("loader");
  TCase *tc = tcase_create("refusals");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_add_test(tc, refuses_wrong_abi);
  tcase_add_test(tc, refuses_missing_magic);
  tcase_add_test(tc, refuses_missing_entry);
  tcase_add_test(tc, refuses_missing_shutdown);
  tcase_add_test(tc, refuses_missing_handler);
  tcase_add_test(tc, refuses_failing_init);
  tcase_add_test(tc, refuses_non_plugin_file);
  tcase_add_test(tc, refuses_missing_file);
  tcase_add_test(tc, good_plugin_without_redis_is_refused_cleanly);
  tcase_add_test(tc, latency_buckets_bound_every_value);
  tcase_add_test(tc, refuses_a_role_name_that_is_no_role_name);
  tcase_add_test(tc, refuses_declaring_admin);
  tcase_add_test(tc, refuses_method_roles_with_spaces);
  tcase_add_test(tc, refuses_a_name_whose_tables_are_another_s);
  tcase_add_test(tc, roles_are_checked_after_every_plugin_loaded);
  suite_add_tcase(s, tc);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
