#include "script_fixture.h"

#include <check.h>

gm_test_redis *srv;
gm__redis *conn;
redisContext *raw;
gm__arena *arena;

void setup(void) {
  srv = gm_test_redis_start();
  char err[512];
  gm__redis_addr addr = {.unix_path = gm_test_redis_socket(srv)};
  conn = gm__redis_connect(&addr, err, sizeof err);
  ck_assert_msg(conn != NULL, "%s", err);
  raw = gm_test_redis_connect(srv);
  arena = gm__arena_new();
}

void teardown(void) {
  gm__arena_destroy(&arena);
  if (raw) redisFree(raw);
  raw = NULL;
  gm__redis_destroy(&conn);
  gm__scripts_remove("mkt");
  gm_test_redis_stop(&srv);
}

gm_call call_as(const char *participant, const char *idem) {
  return (gm_call){.arena = arena,
                   .participant = participant,
                   .roles = "",
                   .idem_key = idem,
                   .redis = conn};
}
