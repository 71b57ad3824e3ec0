/*
 * [redis] cluster_wait_replicas at the redis layer (gm__script_run), one
 * Redis with one replica: every step of a mutating call that answers OK
 * is answered once a replica has what a retry would replay: a write's
 * record, a read-only step's stored reply (gm__store), and a replay over a
 * connection that did not make the write (Redis 7.0's WAIT counts the
 * master's writes up to the client's last command, not only its own).
 */
#include <check.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "call.h"
#include "redis.h"
#include "redis_fixture.h"

#define WAIT_MS 2000

static gm_test_redis *master, *replica;
static gm__redis *conn, *other;
static redisContext *raw;
static gm__arena *arena;

static gm__redis *open_conn(void) {
  char err[512];
  gm__redis_addr addr = {.unix_path = gm_test_redis_socket(master)};
  gm__redis *c = gm__redis_connect(&addr, err, sizeof err);
  ck_assert_msg(c != NULL, "%s", err);
  return c;
}

static void setup(void) {
  master = gm_test_redis_start();
  replica = gm_test_redis_start();
  gm_test_redis_replicate(master, replica);
  conn = open_conn();
  other = open_conn();
  raw = gm_test_redis_connect(master);
  arena = gm__arena_new();
  gm__scripts_set_wait_replicas(WAIT_MS);
}

static void teardown(void) {
  gm__scripts_set_wait_replicas(0);
  gm__arena_destroy(&arena);
  if (raw) redisFree(raw);
  raw = NULL;
  gm__redis_destroy(&conn);
  gm__redis_destroy(&other);
  gm__scripts_remove("mkt");
  if (replica && gm_test_redis_pid(replica) > 0)
    kill(gm_test_redis_pid(replica), SIGCONT);
  gm_test_redis_stop(&replica);
  gm_test_redis_stop(&master);
}

static void add(const char *name, const char *lua, unsigned flags) {
  char err[1024];
  gm_status st = gm__scripts_add_flags(conn, "mkt", name, NULL, lua, flags, err,
                                       sizeof err);
  ck_assert_msg(st == GM_OK, "registering %s: %s", name, err);
}

static const char peek_lua[] = "return redis.call('GET', KEYS[1]) or false\n";
static const char put_lua[] =
    "return redis.call('INCRBY', KEYS[1], tonumber(ARGV[1]))\n";

/* mkt.<name> on tag "t", key "v", under idempotency key `idem`, over c. */
static gm_status run(gm__redis *c, const char *name, const char *idem,
                     const char *arg, const char **msg) {
  gm_call call = {.arena = arena,
                  .participant = "alice",
                  .roles = "",
                  .idem_key = idem,
                  .redis = c};
  const char *keys[] = {"v"};
  const char *args[] = {arg};
  const gm_value *reply = NULL;
  gm_status st =
      gm__script_run(&call, "mkt", name, "t", 1, keys, 1, args, &reply);
  if (msg) *msg = call.message ? call.message : "";
  return st;
}

static void stop_replica(void) {
  ck_assert_int_eq(kill(gm_test_redis_pid(replica), SIGSTOP), 0);
}

static void cont_replica(void) {
  ck_assert_int_eq(kill(gm_test_redis_pid(replica), SIGCONT), 0);
}

/*
 * The replica stopped: a write is answered UNAVAILABLE (on the master, not
 * on the replica).  Its retry under the same key over another connection
 * (another worker, or the same one reconnected) replays the stored reply
 * and writes nothing: it too is UNAVAILABLE until the replica has the
 * write, then OK, applied once.  (Passes on Redis 7.0.15 as it is: it
 * would fail on a Redis whose WAIT counted only the connection's own
 * writes.)
 */
START_TEST(replay_on_another_connection_waits_for_the_write) {
  add("put", put_lua, 0);
  const char *msg;
  ck_assert_int_eq(run(conn, "put", "k1", "5", &msg), GM_OK);
  stop_replica();
  ck_assert_int_eq(run(conn, "put", "k2", "7", &msg), GM_UNAVAILABLE);
  ck_assert_msg(strstr(msg, "not yet on a replica"), "message: %s", msg);
  ck_assert_int_eq(gm_test_redis_int(raw, "GET gm:{mkt:t}:v"), 12);

  gm_status st = run(other, "put", "k2", "7", &msg);
  cont_replica();
  ck_assert_msg(st == GM_UNAVAILABLE,
                "a replay over another connection was answered %d while "
                "the replica was stopped and lacked the write",
                (int)st);
  ck_assert_int_eq(run(other, "put", "k2", "7", &msg), GM_OK);
  ck_assert_int_eq(gm_test_redis_int(raw, "GET gm:{mkt:t}:v"), 12);
}
END_TEST

/*
 * A read-only step of a mutating call keeps its reply under the step's
 * record (gm__store) so that a retry returns the same answer: that record
 * is the step's write, and the call is answered only once a replica has it,
 * like any step's.  The first run skipped the WAIT (answered OK with the
 * replica stopped) while its replay waited (UNAVAILABLE): now both wait,
 * and once the replica is back the retry replays the first read.
 */
START_TEST(read_only_step_waits_for_its_record) {
  add("peek", peek_lua, GM_SCRIPT_READ_ONLY);
  add("put", put_lua, 0);
  const char *msg;
  ck_assert_int_eq(run(conn, "put", "w", "3", &msg), GM_OK);
  stop_replica();
  gm_status first = run(conn, "peek", "r1", "", &msg);
  cont_replica();
  ck_assert_msg(first == GM_UNAVAILABLE,
                "a read-only step was answered %d while the replica was "
                "stopped and lacked its record",
                (int)first);
  ck_assert_msg(strstr(msg, "not yet on a replica"), "message: %s", msg);
  freeReplyObject(gm_test_redis_cmd(raw, "SET gm:{mkt:t}:v 9"));
  const gm_value *v = NULL;
  gm_call call = {.arena = arena,
                  .participant = "alice",
                  .roles = "",
                  .idem_key = "r1",
                  .redis = other};
  const char *keys[] = {"v"};
  const char *args[] = {""};
  ck_assert_int_eq(
      gm__script_run(&call, "mkt", "peek", "t", 1, keys, 1, args, &v), GM_OK);
  ck_assert_int_eq(v->type, GM_VALUE_STR);
  ck_assert_str_eq(v->str, "3"); /* the first run's read, replayed */
  ck_assert_int_eq(
      gm_test_redis_int(raw, "EXISTS gm:{mkt:t}:idem:alice:peek:r1"), 1);
}
END_TEST

int main(void) {
  Suite *s = suite_create("wait_steps");
  TCase *tc = tcase_create("single");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, replay_on_another_connection_waits_for_the_write);
  tcase_add_test(tc, read_only_step_waits_for_its_record);
  suite_add_tcase(s, tc);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
