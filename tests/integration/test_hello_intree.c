/*
 * examples/hello, built in this tree from its own CMakeLists.txt
 * (intree_hello.cmake), signed through the built gm against a private
 * redis-server and gmd: the Check test docs/plugins.md ("Test it") shows.
 */
#include <stdlib.h>
#include <check.h>
#include <sqlite3.h>
#include <unistd.h>

#include "gmd_fixture.h"
#include "redis_fixture.h"
#include "run_gm.h"

/* The settled guestbook rows in the broker's ledger. */
static long long rows(gm_test_gmd *gmd) {
  sqlite3 *db;
  sqlite3_stmt *st;
  long long n = -1;
  ck_assert_int_eq(sqlite3_open(gm_test_gmd_ledger(gmd), &db), SQLITE_OK);
  if (sqlite3_prepare_v2(db, "SELECT count(*) FROM hello_guestbook", -1, &st,
                         NULL) == SQLITE_OK &&
      sqlite3_step(st) == SQLITE_ROW)
    n = sqlite3_column_int64(st, 0);
  sqlite3_finalize(st);
  sqlite3_close(db);
  return n;
}

START_TEST(a_signature_settles) {
  gm_test_redis *redis = gm_test_redis_start();
  gm_test_gmd *gmd =
      gm_test_gmd_start(redis, HELLO_PLUGIN_DIR, "[plugins]\nload = hello\n");
  char *sign[] = {"--as", "alice", "hello", "sign", "hi", NULL};
  run_result *r = gm_test_run_gm(gm_test_gmd_endpoint(gmd), sign);
  ck_assert_msg(r->code == 0, "%s", r->err);
  ck_assert_str_eq(r->out, "signed: entry 1 in the guestbook\n");
  long long n = 0;
  for (int i = 0; i < 100 && (n = rows(gmd)) != 1; i++) usleep(20000);
  ck_assert_int_eq(n, 1);
  redisContext *c = gm_test_redis_connect(redis);
  ck_assert_int_eq(gm_test_redis_int(c, "GET gm:{hello:guestbook}:count"), 1);
  redisFree(c);
  gm_test_gmd_stop(&gmd);
  gm_test_redis_stop(&redis);
}
END_TEST

int main(void) {
  /* gm finds gm_hello.so where the test build put it. */
  setenv("GM_PLUGIN_DIR", HELLO_PLUGIN_DIR, 1);
  Suite *s = suite_create("hello");
  TCase *tc = tcase_create("guestbook");
  tcase_add_test(tc, a_signature_settles);
  suite_add_tcase(s, tc);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed != 0;
}
