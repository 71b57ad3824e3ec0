/* The Redis script service against a real redis-server. */
#include <check.h>
#include <dlfcn.h>
#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "arena.h"
#include "call.h"
#include "clock.h"
#include "cluster.h"
#include "fiber.h"
#include "redis.h"
#include "redis_fixture.h"
#include "script_fixture.h"

static void add(const char *name, const char *lua) {
  char err[1024];
  gm_status st = gm__scripts_add(conn, "mkt", name, NULL, lua, err, sizeof err);
  ck_assert_msg(st == GM_OK, "registering %s: %s", name, err);
}

/* Runs mkt.<name> on tag with up to 3 keys and args. */
static gm_status run(gm_call *call, const char *name, const char *tag,
                     size_t nkeys, const char *k0, size_t nargs, const char *a0,
                     const gm_value **reply) {
  const char *keys[] = {k0};
  const char *args[] = {a0};
  return gm__script_run(call, "mkt", name, tag, nkeys, keys, nargs, args,
                        reply);
}

static const char counter_lua[] =
    "local n = redis.call('INCR', KEYS[1])\n"
    "gm.emit('tick', 'n', n, 'who', gm.participant)\n"
    "return n\n";

START_TEST(emit_reaches_outbox_and_registry) {
  add("emit",
      "gm.emit('fill', 'qty', ARGV[1], 'amount', 123456789012345, 'neg', -7)\n"
      "return {#KEYS, #ARGV, KEYS[1], ARGV[1], gm.participant, gm.now}\n");
  gm__clock_set_manual(1700000000123);
  gm_call c = call_as("alice", "");
  const gm_value *v = NULL;
  ck_assert_int_eq(run(&c, "emit", "CEA", 1, "book", 1, "42", &v), GM_OK);
  ck_assert_int_eq(v->type, GM_VALUE_ARRAY);
  ck_assert_uint_eq(v->n, 6);
  ck_assert_int_eq(v->items[0].integer, 1); /* only the plugin's keys */
  ck_assert_int_eq(v->items[1].integer, 1); /* only the plugin's args */
  ck_assert_str_eq(v->items[2].str, "gm:{mkt:CEA}:book");
  ck_assert_str_eq(v->items[3].str, "42");
  ck_assert_str_eq(v->items[4].str, "alice");
  ck_assert_int_eq(v->items[5].integer, 1700000000123);

  ck_assert_int_eq(
      gm_test_redis_int(raw, "SISMEMBER gm:outboxes gm:{mkt:CEA}:outbox"), 1);
  redisReply *r = gm_test_redis_cmd(raw, "XRANGE gm:{mkt:CEA}:outbox - +");
  ck_assert_uint_eq(r->elements, 1);
  redisReply *f = r->element[0]->element[1];
  ck_assert_uint_eq(f->elements, 8);
  ck_assert_str_eq(f->element[0]->str, "kind");
  ck_assert_str_eq(f->element[1]->str, "fill");
  ck_assert_str_eq(f->element[3]->str, "42");
  /* An integral Lua number is written exactly, not as 1.2345678901234e+14. */
  ck_assert_str_eq(f->element[5]->str, "123456789012345");
  ck_assert_str_eq(f->element[7]->str, "-7");
  freeReplyObject(r);
}
END_TEST

START_TEST(reject_gives_status_and_message) {
  add("reject",
      "return gm.reject('FAILED_PRECONDITION', 'not enough cash: have ' .. "
      "ARGV[1] .. ' fen')\n");
  gm_call c = call_as("bob", "");
  const gm_value *v = (const gm_value *)1;
  ck_assert_int_eq(run(&c, "reject", "t", 0, NULL, 1, "500", &v),
                   GM_FAILED_PRECONDITION);
  ck_assert_ptr_null(v);
  ck_assert_int_eq(c.status, GM_FAILED_PRECONDITION);
  ck_assert_str_eq(c.message, "not enough cash: have 500 fen");
}
END_TEST

START_TEST(idempotent_retry_returns_first_reply) {
  add("counter", counter_lua);
  const gm_value *v;
  gm_call c = call_as("alice", "order-1");
  ck_assert_int_eq(run(&c, "counter", "t", 1, "n", 0, NULL, &v), GM_OK);
  ck_assert_int_eq(v->integer, 1);
  /* The retry: same participant, script and key. */
  gm_call c2 = call_as("alice", "order-1");
  ck_assert_int_eq(run(&c2, "counter", "t", 1, "n", 0, NULL, &v), GM_OK);
  ck_assert_int_eq(v->type, GM_VALUE_INT);
  ck_assert_int_eq(v->integer, 1);
  ck_assert_int_eq(gm_test_redis_int(raw, "XLEN gm:{mkt:t}:outbox"), 1);
  redisReply *r = gm_test_redis_cmd(raw, "GET gm:{mkt:t}:n");
  ck_assert_str_eq(r->str, "1");
  freeReplyObject(r);
  long long ttl =
      gm_test_redis_int(raw, "TTL gm:{mkt:t}:idem:alice:counter:order-1");
  ck_assert_msg(ttl > 86000 && ttl <= 86400, "idem ttl %lld", ttl);

  /* Another key of the same participant runs again. */
  gm_call c3 = call_as("alice", "order-2");
  ck_assert_int_eq(run(&c3, "counter", "t", 1, "n", 0, NULL, &v), GM_OK);
  ck_assert_int_eq(v->integer, 2);
  /* No key (a read or a timer): runs every time, stores nothing. */
  gm_call c4 = call_as("alice", "");
  ck_assert_int_eq(run(&c4, "counter", "t", 1, "n", 0, NULL, &v), GM_OK);
  ck_assert_int_eq(v->integer, 3);
  ck_assert_int_eq(gm_test_redis_int(raw, "EXISTS gm:{mkt:t}:idem:-"), 0);
  ck_assert_int_eq(gm_test_redis_int(raw, "XLEN gm:{mkt:t}:outbox"), 3);
}
END_TEST

/*
 * A key's record keeps the fingerprint of the request that stored it: the
 * key sent again with another request is refused (nothing runs, nothing is
 * stored), the same request replays; a run without a fingerprint (a
 * deadline's) and a record of an older broker (no fingerprint) replay as
 * before.
 */
START_TEST(key_reused_for_another_request_is_refused) {
  add("counter", counter_lua);
  const gm_value *v;
  gm_call c = call_as("alice", "k-1");
  c.request_fp = 0x1111222233334444ull;
  ck_assert_int_eq(run(&c, "counter", "t", 1, "n", 0, NULL, &v), GM_OK);
  ck_assert_int_eq(v->integer, 1);
  redisReply *rec =
      gm_test_redis_cmd(raw, "GET gm:{mkt:t}:idem:alice:counter:k-1");
  ck_assert_int_eq(rec->type, REDIS_REPLY_STRING);
  ck_assert_uint_ge(rec->len, 14);
  ck_assert_int_eq((unsigned char)rec->str[0], 193);
  ck_assert_int_eq(memcmp(rec->str + 1, "222233334444", 12), 0);
  freeReplyObject(rec);

  gm_call same = call_as("alice", "k-1");
  same.request_fp = 0x1111222233334444ull;
  ck_assert_int_eq(run(&same, "counter", "t", 1, "n", 0, NULL, &v), GM_OK);
  ck_assert_int_eq(v->integer, 1);

  gm_call other = call_as("alice", "k-1");
  other.request_fp = 0x1111222233335555ull;
  ck_assert_int_eq(run(&other, "counter", "t", 1, "n", 0, NULL, &v),
                   GM_INVALID_ARGUMENT);
  ck_assert_msg(strstr(other.message,
                       "idempotency key 'k-1' was first used "
                       "for a different request"),
                "%s", other.message);
  ck_assert_int_eq(gm_test_redis_int(raw, "GET gm:{mkt:t}:n"), 1);
  ck_assert_int_eq(gm_test_redis_int(raw, "XLEN gm:{mkt:t}:outbox"), 1);

  gm_call none = call_as("alice", "k-1");
  ck_assert_int_eq(run(&none, "counter", "t", 1, "n", 0, NULL, &v), GM_OK);
  ck_assert_int_eq(v->integer, 1);

  /* A record an older broker stored: plain msgpack (7 is 0x07). */
  freeReplyObject(gm_test_redis_cmd(
      raw, "SET gm:{mkt:t}:idem:alice:counter:k-old %b EX 100", "\x07",
      (size_t)1));
  gm_call old = call_as("alice", "k-old");
  old.request_fp = 0x99ull;
  ck_assert_int_eq(run(&old, "counter", "t", 1, "n", 0, NULL, &v), GM_OK);
  ck_assert_int_eq(v->integer, 7);
  ck_assert_int_eq(gm_test_redis_int(raw, "GET gm:{mkt:t}:n"), 1);

  /* A plugin cannot answer as the host would. */
  add("forge_reused", "return {err = 'gm:reused'}\n");
  gm_call f = call_as("mallory", "k-2");
  f.request_fp = 5;
  ck_assert_int_eq(run(&f, "forge_reused", "t", 0, NULL, 0, NULL, &v),
                   GM_INTERNAL);
}
END_TEST

/* A call that runs a script several times: each run is a step of its own;
   a retried call replays the steps that ran and runs the ones that did not. */
START_TEST(multi_step_call_replays_step_by_step) {
  add("counter", counter_lua);
  const gm_value *v;
  gm_call c = call_as("alice", "sweep-1");
  ck_assert_int_eq(run(&c, "counter", "t", 1, "n", 0, NULL, &v), GM_OK);
  ck_assert_int_eq(v->integer, 1);
  ck_assert_int_eq(run(&c, "counter", "t", 1, "n", 0, NULL, &v), GM_OK);
  ck_assert_int_eq(v->integer, 2); /* the second step ran, not replayed */
  /* The retry died after two steps last time; now it goes three. */
  gm_call r = call_as("alice", "sweep-1");
  ck_assert_int_eq(run(&r, "counter", "t", 1, "n", 0, NULL, &v), GM_OK);
  ck_assert_int_eq(v->integer, 1);
  ck_assert_int_eq(run(&r, "counter", "t", 1, "n", 0, NULL, &v), GM_OK);
  ck_assert_int_eq(v->integer, 2);
  ck_assert_int_eq(run(&r, "counter", "t", 1, "n", 0, NULL, &v), GM_OK);
  ck_assert_int_eq(v->integer, 3);
  ck_assert_int_eq(gm_test_redis_int(raw, "XLEN gm:{mkt:t}:outbox"), 3);
  ck_assert_int_eq(
      gm_test_redis_int(raw, "EXISTS gm:{mkt:t}:idem:alice:counter:sweep-1:2"),
      1);
}
END_TEST

START_TEST(idempotency_is_per_participant) {
  add("counter", counter_lua);
  const gm_value *v;
  gm_call a = call_as("alice", "same-key");
  ck_assert_int_eq(run(&a, "counter", "t", 1, "n", 0, NULL, &v), GM_OK);
  ck_assert_int_eq(v->integer, 1);
  gm_call b = call_as("bob", "same-key");
  ck_assert_int_eq(run(&b, "counter", "t", 1, "n", 0, NULL, &v), GM_OK);
  ck_assert_int_eq(v->integer, 2);
  gm_call a2 = call_as("alice", "same-key");
  ck_assert_int_eq(run(&a2, "counter", "t", 1, "n", 0, NULL, &v), GM_OK);
  ck_assert_int_eq(v->integer, 1);
  ck_assert_int_eq(gm_test_redis_int(raw, "XLEN gm:{mkt:t}:outbox"), 2);
}
END_TEST

START_TEST(unstored_reject_and_unstored_runtime_error) {
  /* A reject changes nothing and is not stored (refused requests must not
     fill Redis): a retry with the same key runs again and sees the state
     as it is now. */
  add("guarded",
      "local v = redis.call('GET', KEYS[1])\n"
      "if not v then return gm.reject('NOT_FOUND', 'no value') end\n"
      "if v == 'boom' then error('value is boom') end\n"
      "return v\n");
  const gm_value *v;
  gm_call c = call_as("carol", "k1");
  ck_assert_int_eq(run(&c, "guarded", "t", 1, "v", 0, NULL, &v), GM_NOT_FOUND);
  ck_assert_str_eq(c.message, "no value");
  gm_test_redis_int(raw, "DEL gm:{mkt:t}:v");
  freeReplyObject(gm_test_redis_cmd(raw, "SET gm:{mkt:t}:v ready"));
  ck_assert_int_eq(
      gm_test_redis_int(raw, "EXISTS gm:{mkt:t}:idem:carol:guarded:k1"), 0);
  gm_call c2 = call_as("carol", "k1");
  ck_assert_int_eq(run(&c2, "guarded", "t", 1, "v", 0, NULL, &v), GM_OK);
  ck_assert_str_eq(v->str, "ready");
  /* Now it is stored: a later change is not seen by a retry. */
  freeReplyObject(gm_test_redis_cmd(raw, "SET gm:{mkt:t}:v later"));
  gm_call c2b = call_as("carol", "k1");
  ck_assert_int_eq(run(&c2b, "guarded", "t", 1, "v", 0, NULL, &v), GM_OK);
  ck_assert_str_eq(v->str, "ready");

  /* A Lua runtime error is INTERNAL, and not stored: the retry runs again. */
  freeReplyObject(gm_test_redis_cmd(raw, "SET gm:{mkt:t}:v boom"));
  gm_call c3 = call_as("carol", "k2");
  ck_assert_int_eq(run(&c3, "guarded", "t", 1, "v", 0, NULL, &v), GM_INTERNAL);
  ck_assert_ptr_nonnull(strstr(c3.message, "mkt.guarded"));
  ck_assert_ptr_nonnull(strstr(c3.message, "gmd log"));
  freeReplyObject(gm_test_redis_cmd(raw, "SET gm:{mkt:t}:v fine"));
  gm_call c4 = call_as("carol", "k2");
  ck_assert_int_eq(run(&c4, "guarded", "t", 1, "v", 0, NULL, &v), GM_OK);
  ck_assert_str_eq(v->str, "fine");
}
END_TEST

START_TEST(reply_tree_converts) {
  add("tree",
      "return {1, 'two', {3, {'four', false}, -5}, false, 7.9, "
      "redis.status_reply('FINE')}\n");
  add("nil", "return nil\n");
  add("empty", "return {}\n");
  const gm_value *v;
  gm_call c = call_as("dave", "");
  ck_assert_int_eq(run(&c, "tree", "t", 0, NULL, 0, NULL, &v), GM_OK);
  ck_assert_int_eq(v->type, GM_VALUE_ARRAY);
  ck_assert_uint_eq(v->n, 6);
  ck_assert_int_eq(v->items[0].type, GM_VALUE_INT);
  ck_assert_int_eq(v->items[0].integer, 1);
  ck_assert_int_eq(v->items[1].type, GM_VALUE_STR);
  ck_assert_str_eq(v->items[1].str, "two");
  ck_assert_uint_eq(v->items[1].len, 3);
  const gm_value *inner = &v->items[2];
  ck_assert_int_eq(inner->type, GM_VALUE_ARRAY);
  ck_assert_uint_eq(inner->n, 3);
  ck_assert_int_eq(inner->items[0].integer, 3);
  ck_assert_int_eq(inner->items[1].type, GM_VALUE_ARRAY);
  ck_assert_str_eq(inner->items[1].items[0].str, "four");
  ck_assert_int_eq(inner->items[1].items[1].type, GM_VALUE_NIL);
  ck_assert_int_eq(inner->items[2].integer, -5);
  ck_assert_int_eq(v->items[3].type, GM_VALUE_NIL);
  /* Redis truncates a Lua number to an integer. */
  ck_assert_int_eq(v->items[4].type, GM_VALUE_INT);
  ck_assert_int_eq(v->items[4].integer, 7);
  ck_assert_int_eq(v->items[5].type, GM_VALUE_STR);
  ck_assert_str_eq(v->items[5].str, "FINE");

  gm_call c2 = call_as("dave", "");
  ck_assert_int_eq(run(&c2, "nil", "t", 0, NULL, 0, NULL, &v), GM_OK);
  ck_assert_int_eq(v->type, GM_VALUE_NIL);
  gm_call c3 = call_as("dave", "");
  ck_assert_int_eq(run(&c3, "empty", "t", 0, NULL, 0, NULL, &v), GM_OK);
  ck_assert_int_eq(v->type, GM_VALUE_ARRAY);
  ck_assert_uint_eq(v->n, 0);

  /* Deeper than hiredis reads: a clear error, and the connection recovers. */
  add("deep", "return {{{{{{{{{1}}}}}}}}}\n");
  gm_call c6 = call_as("dave", "");
  ck_assert_int_eq(run(&c6, "deep", "t", 0, NULL, 0, NULL, &v), GM_INTERNAL);
  ck_assert_msg(strstr(c6.message, "nested deeper") != NULL, "%s", c6.message);
  gm_call c7 = call_as("dave", "");
  ck_assert_int_eq(run(&c7, "nil", "t", 0, NULL, 0, NULL, &v), GM_OK);

  /* The same tree comes back identical from the idempotency record. */
  gm_call c4 = call_as("dave", "t1");
  ck_assert_int_eq(run(&c4, "tree", "t", 0, NULL, 0, NULL, &v), GM_OK);
  gm_call c5 = call_as("dave", "t1");
  ck_assert_int_eq(run(&c5, "tree", "t", 0, NULL, 0, NULL, &v), GM_OK);
  ck_assert_uint_eq(v->n, 6);
  ck_assert_str_eq(v->items[2].items[1].items[0].str, "four");
  ck_assert_int_eq(v->items[2].items[1].items[1].type, GM_VALUE_NIL);
  ck_assert_int_eq(v->items[2].items[2].integer, -5);
  ck_assert_int_eq(v->items[4].integer, 7);
}
END_TEST

START_TEST(syntax_error_refused_with_lua_message) {
  char err[1024];
  gm_status st = gm__scripts_add(
      conn, "mkt", "bad", NULL,
      "local a = 1\nlocal b = 2\nlocal c = = 3\nreturn a\n", err, sizeof err);
  ck_assert_int_eq(st, GM_INVALID_ARGUMENT);
  ck_assert_ptr_nonnull(strstr(err, "mkt.bad"));
  /* The Lua message with the script's name and its own line number. */
  ck_assert_msg(strstr(err, "bad:3:") != NULL, "err: %s", err);
  /* With a lib, Lua counts the lib's lines first, and the message says so. */
  ck_assert_int_eq(
      gm__scripts_add(conn, "mkt", "badlib", "local x = 1\nlocal y = 2",
                      "local a = 1\nlocal b = 2\nlocal c = = 3\nreturn a\n",
                      err, sizeof err),
      GM_INVALID_ARGUMENT);
  ck_assert_msg(strstr(err, "badlib:5:") != NULL, "err: %s", err);
  ck_assert_msg(strstr(err, "lines 1-2 are the lib's") != NULL, "err: %s", err);
  ck_assert_msg(strstr(err, "unexpected symbol") != NULL, "err: %s", err);

  /* Not registered: running it fails, and a fixed version registers. */
  gm_call c = call_as("eve", "");
  const gm_value *v;
  ck_assert_int_eq(run(&c, "bad", "t", 0, NULL, 0, NULL, &v), GM_INTERNAL);
  ck_assert_ptr_nonnull(strstr(c.message, "not registered"));
  add("bad", "return 'ok'");
  ck_assert_int_eq(
      gm__scripts_add(conn, "mkt", "bad", NULL, "return 1", err, sizeof err),
      GM_ALREADY_EXISTS);
}
END_TEST

/* Redis lost the market's library (FUNCTION FLUSH; FLUSHALL keeps it but
   drops the data): the next call loads it again and is answered as before;
   a retry after the flush still replays its first reply. */
START_TEST(library_after_flush_is_recovered) {
  add("counter", counter_lua);
  const gm_value *v;
  gm_call c = call_as("frank", "first");
  ck_assert_int_eq(run(&c, "counter", "t", 1, "n", 0, NULL, &v), GM_OK);
  freeReplyObject(gm_test_redis_cmd(raw, "FUNCTION FLUSH"));
  gm_call c2 = call_as("frank", "");
  ck_assert_int_eq(run(&c2, "counter", "t", 1, "n", 0, NULL, &v), GM_OK);
  ck_assert_int_eq(v->integer, 2);
  freeReplyObject(gm_test_redis_cmd(raw, "FUNCTION FLUSH"));
  gm_call c3 = call_as("frank", "first");
  ck_assert_int_eq(run(&c3, "counter", "t", 1, "n", 0, NULL, &v), GM_OK);
  ck_assert_int_eq(v->integer, 1); /* replayed */
  freeReplyObject(gm_test_redis_cmd(raw, "FLUSHALL"));
  gm_call c4 = call_as("frank", "");
  ck_assert_int_eq(run(&c4, "counter", "t", 1, "n", 0, NULL, &v), GM_OK);
  ck_assert_int_eq(v->integer, 1);
  freeReplyObject(gm_test_redis_cmd(raw, "FLUSHALL"));
  freeReplyObject(gm_test_redis_cmd(raw, "FUNCTION FLUSH"));
  gm_call c5 = call_as("frank", "");
  ck_assert_int_eq(run(&c5, "counter", "t", 1, "n", 0, NULL, &v), GM_OK);
  ck_assert_int_eq(v->integer, 1);
  /* One library, named by its content, whatever was loaded how often. */
  redisReply *l = gm_test_redis_cmd(raw, "FUNCTION LIST LIBRARYNAME gm_mkt_*");
  ck_assert_int_eq(l->elements, 1);
  freeReplyObject(l);
}
END_TEST

/* A lib registered with a script is made once per library load: what its
   top level makes is kept from call to call (a counter here), and its
   functions see each call's KEYS, ARGV and gm. */
static const char lib_lua[] =
    "local loads = 1\n"
    "local per_call\n"
    "local function begin() per_call = {who = gm.participant, key = KEYS[1]} "
    "end\n"
    "local function made() return loads end\n";

START_TEST(lib_is_made_once_per_load) {
  char err[1024];
  ck_assert_int_eq(
      gm__scripts_add(conn, "mkt", "count", lib_lua,
                      "begin()\nloads = loads + 1\n"
                      "return {loads, per_call.who, per_call.key, ARGV[1]}\n",
                      err, sizeof err),
      GM_OK);
  ck_assert_int_eq(
      gm__scripts_add(conn, "mkt", "fails", lib_lua,
                      "begin()\nreturn nil + 1\n", err, sizeof err),
      GM_OK);
  const gm_value *v;
  for (int i = 0; i < 3; i++) {
    gm_call c = call_as(i ? "kim" : "lee", "");
    ck_assert_int_eq(run(&c, "count", "t", 1, "k", 1, "a", &v), GM_OK);
    ck_assert_int_eq(v->items[0].integer, 2 + i); /* made once, then kept */
    ck_assert_str_eq(v->items[1].str, i ? "kim" : "lee");
    ck_assert_str_eq(v->items[2].str, "gm:{mkt:t}:k");
    ck_assert_str_eq(v->items[3].str, "a");
  }
  /* Loaded again: made again. */
  freeReplyObject(gm_test_redis_cmd(raw, "FUNCTION FLUSH"));
  gm_call c = call_as("kim", "");
  ck_assert_int_eq(run(&c, "count", "t", 1, "k", 1, "a", &v), GM_OK);
  ck_assert_int_eq(v->items[0].integer, 2);
  /* A runtime error fails the call and leaves the lib as it was. */
  gm_call c2 = call_as("kim", "");
  ck_assert_int_eq(run(&c2, "fails", "t", 1, "k", 0, NULL, &v), GM_INTERNAL);
  gm_call c3 = call_as("kim", "");
  ck_assert_int_eq(run(&c3, "count", "t", 1, "k", 1, "a", &v), GM_OK);
  ck_assert_int_eq(v->items[0].integer, 3);
  /* More than 60 of the lib's locals used by one script: refused at
     registration with Lua's message. */
  char big[8192] = "", body[8192] = "return 0";
  for (int i = 0; i < 61; i++) {
    char line[64];
    snprintf(line, sizeof line, "local v%d = %d\n", i, i);
    strcat(big, line);
    snprintf(line, sizeof line, " + v%d", i);
    strcat(body, line);
  }
  strcat(body, "\n");
  ck_assert_int_eq(
      gm__scripts_add(conn, "mkt", "wide", big, body, err, sizeof err),
      GM_INVALID_ARGUMENT);
  ck_assert_msg(strstr(err, "upvalues") != NULL, "err: %s", err);
}
END_TEST

/* Each call gets its own gm, and the host's per-call state starts over:
   what a script writes into gm, or a run that failed after noting a
   deadline, reaches no later call. */
START_TEST(calls_share_no_state) {
  add("poke", "gm.seen = (gm.seen or 0) + 1\nreturn gm.seen\n");
  add("broken",
      "gm.deadline('close', 'z', 1000)\n"
      "return nil + 1\n");
  add("plain", "return gm.participant\n");
  const gm_value *v;
  for (int i = 0; i < 2; i++) {
    gm_call c = call_as("gus", "");
    ck_assert_int_eq(run(&c, "poke", "t", 0, NULL, 0, NULL, &v), GM_OK);
    ck_assert_int_eq(v->integer, 1);
  }
  gm_call c1 = call_as("gus", "");
  ck_assert_int_eq(run(&c1, "broken", "t", 0, NULL, 0, NULL, &v), GM_INTERNAL);
  gm_call c2 = call_as("hal", "p1");
  ck_assert_int_eq(run(&c2, "plain", "t", 0, NULL, 0, NULL, &v), GM_OK);
  ck_assert_str_eq(v->str, "hal");
  ck_assert_int_eq(gm_test_redis_int(raw, "EXISTS gm:{mkt:t}:dl"), 0);
  ck_assert_int_eq(gm_test_redis_int(raw, "EXISTS gm:{mkt:t}:outbox"), 0);
}
END_TEST

/* The host's gm methods are the library's, shared by every call of the
   market until Redis loads it again: a script that reaches them through
   gm's metatable must not change what the next call's gm does. */
START_TEST(host_methods_are_not_the_scripts) {
  add("hijack",
      "local ok, mt = pcall(getmetatable, gm)\n"
      "if type(mt) == 'table' and type(mt.__index) == 'table' then\n"
      "  mt.__index.reject = function() return 'hijacked' end\n"
      "end\n"
      "return 1\n");
  add("refuse", "return gm.reject('NOT_FOUND', 'no such thing')\n");
  const gm_value *v;
  gm_call c = call_as("ivy", "");
  ck_assert_int_eq(run(&c, "hijack", "t", 0, NULL, 0, NULL, &v), GM_OK);
  gm_call c2 = call_as("ivy", "");
  ck_assert_int_eq(run(&c2, "refuse", "t", 0, NULL, 0, NULL, &v), GM_NOT_FOUND);
  ck_assert_str_eq(c2.message, "no such thing");
}
END_TEST

/* Whatever a script's name holds, the library that carries it (each name
   and source as a Lua long string) loads: a name ending in "]=" would
   otherwise close a level-1 long string early. */
START_TEST(any_script_name_loads) {
  add("x]=", "return 'a'\n");
  add("]==", "return 'b'\n");
  const gm_value *v;
  gm_call c = call_as("jo", "");
  ck_assert_int_eq(run(&c, "x]=", "t", 0, NULL, 0, NULL, &v), GM_OK);
  ck_assert_str_eq(v->str, "a");
  gm_call c2 = call_as("jo", "");
  ck_assert_int_eq(run(&c2, "]==", "t", 0, NULL, 0, NULL, &v), GM_OK);
  ck_assert_str_eq(v->str, "b");
}
END_TEST

/* A script registered after the market's library was loaded: the library
   is made again under a new name, and both scripts run (the first by
   loading it after "Function not found"). */
START_TEST(script_added_after_first_call_runs) {
  add("one", "return 1\n");
  const gm_value *v;
  gm_call c = call_as("kay", "");
  ck_assert_int_eq(run(&c, "one", "t", 0, NULL, 0, NULL, &v), GM_OK);
  add("two", "return 2\n");
  gm_call c2 = call_as("kay", "");
  ck_assert_int_eq(run(&c2, "two", "t", 0, NULL, 0, NULL, &v), GM_OK);
  ck_assert_int_eq(v->integer, 2);
  gm_call c3 = call_as("kay", "");
  ck_assert_int_eq(run(&c3, "one", "t", 0, NULL, 0, NULL, &v), GM_OK);
  ck_assert_int_eq(v->integer, 1);
}
END_TEST

START_TEST(restart_is_recovered) {
  add("counter", counter_lua);
  const gm_value *v;
  gm_call c = call_as("gina", "before");
  ck_assert_int_eq(run(&c, "counter", "t", 1, "n", 0, NULL, &v), GM_OK);
  redisFree(raw);
  raw = NULL;
  /* A new server on the same socket: no scripts, no data, no gm:outboxes. */
  gm_test_redis_restart(srv);
  raw = gm_test_redis_connect(srv);
  gm_call c2 = call_as("gina", "after");
  ck_assert_int_eq(run(&c2, "counter", "t", 1, "n", 0, NULL, &v), GM_OK);
  ck_assert_int_eq(v->integer, 1);
  /* The reconnect forgot the outbox cache, so the stream is registered
     again before the script wrote to it. */
  ck_assert_int_eq(
      gm_test_redis_int(raw, "SISMEMBER gm:outboxes gm:{mkt:t}:outbox"), 1);
  ck_assert_int_eq(gm_test_redis_int(raw, "XLEN gm:{mkt:t}:outbox"), 1);
}
END_TEST

START_TEST(unreachable_is_unavailable) {
  add("counter", counter_lua);
  gm_test_redis_kill(srv);
  const gm_value *v;
  gm_call c = call_as("hank", "x");
  ck_assert_int_eq(run(&c, "counter", "t", 1, "n", 0, NULL, &v),
                   GM_UNAVAILABLE);
  ck_assert_msg(strstr(c.message, "is redis-server running?") != NULL, "%s",
                c.message);
  ck_assert_ptr_nonnull(strstr(c.message, gm_test_redis_socket(srv)));

  char err[512];
  gm__redis_addr addr = {.unix_path = gm_test_redis_socket(srv)};
  ck_assert_ptr_null(gm__redis_connect(&addr, err, sizeof err));
  ck_assert_ptr_nonnull(strstr(err, "is redis-server running?"));
  /* Registration while Redis is down is an outage, not a bad script. */
  ck_assert_int_eq(
      gm__scripts_add(conn, "mkt", "late", NULL, "return 1", err, sizeof err),
      GM_UNAVAILABLE);
  ck_assert_ptr_nonnull(strstr(err, "is redis-server running?"));
}
END_TEST

START_TEST(bounds_and_tags_refused) {
  add("counter", counter_lua);
  const char *keys[65], *args[257];
  for (int i = 0; i < 65; i++) keys[i] = "k";
  for (int i = 0; i < 257; i++) args[i] = "a";
  const gm_value *v;
  gm_call c = call_as("ivy", "");
  ck_assert_int_eq(
      gm__script_run(&c, "mkt", "counter", "t", 65, keys, 0, args, &v),
      GM_INVALID_ARGUMENT);
  ck_assert_ptr_nonnull(strstr(c.message, "at most 64 keys"));
  gm_call c2 = call_as("ivy", "");
  ck_assert_int_eq(
      gm__script_run(&c2, "mkt", "counter", "t", 1, keys, 257, args, &v),
      GM_INVALID_ARGUMENT);
  gm_call c3 = call_as("ivy", "");
  ck_assert_int_eq(run(&c3, "counter", "a}b", 1, "n", 0, NULL, &v),
                   GM_INVALID_ARGUMENT);
  /* At the bounds it runs. */
  add("count", "return {#KEYS, #ARGV}");
  gm_call c4 = call_as("ivy", "");
  ck_assert_int_eq(
      gm__script_run(&c4, "mkt", "count", "t", 64, keys, 256, args, &v), GM_OK);
  ck_assert_int_eq(v->items[0].integer, 64);
  ck_assert_int_eq(v->items[1].integer, 256);
}
END_TEST

/* Worker threads, each with its own connection, share the registry. */
typedef struct worker {
  int index; /* which thread */
  int calls; /* calls to make */
  int ok;    /* calls that returned GM_OK */
} worker;

static void *worker_run(void *arg) {
  worker *w = arg;
  char err[512];
  gm__redis_addr addr = {.unix_path = gm_test_redis_socket(srv)};
  gm__redis *r = gm__redis_connect(&addr, err, sizeof err);
  if (!r) return NULL;
  gm__arena *a = gm__arena_new();
  for (int i = 0; i < w->calls; i++) {
    char idem[32], tag[16];
    snprintf(idem, sizeof idem, "w%d-%d", w->index, i);
    snprintf(tag, sizeof tag, "tag%d", i % 5);
    const char *keys[] = {"n"};
    const gm_value *v;
    /* Each call twice (a retry is a new call with the same key): the retry
       must not count. */
    for (int k = 0; k < 2; k++) {
      gm_call c = {.arena = a,
                   .participant = "p",
                   .roles = "",
                   .idem_key = idem,
                   .redis = r};
      if (gm__script_run(&c, "mkt", "counter", tag, 1, keys, 0, NULL, &v) ==
              GM_OK &&
          k == 1)
        w->ok++;
    }
    gm__arena_reset(a);
  }
  gm__arena_destroy(&a);
  gm__redis_destroy(&r);
  return NULL;
}

START_TEST(threads_share_registry) {
  add("counter", counter_lua);
  enum { N = 4, CALLS = 200 };
  pthread_t t[N];
  worker w[N];
  for (int i = 0; i < N; i++) {
    w[i] = (worker){i, CALLS, 0};
    pthread_create(&t[i], NULL, worker_run, &w[i]);
  }
  long long total = 0;
  for (int i = 0; i < N; i++) {
    pthread_join(t[i], NULL);
    ck_assert_int_eq(w[i].ok, CALLS);
  }
  for (int i = 0; i < 5; i++) {
    char key[32];
    snprintf(key, sizeof key, "gm:{mkt:tag%d}:outbox", i);
    total += gm_test_redis_int(raw, "XLEN %s", key);
    ck_assert_int_eq(gm_test_redis_int(raw, "SISMEMBER gm:outboxes %s", key),
                     1);
  }
  ck_assert_int_eq(total, N * CALLS);
}
END_TEST

/* Makes /tmp/gm-redis-XXXXXX with an owner file, 1 h old. */
static void fake_dir(char *dir, size_t len, pid_t owner_pid) {
  snprintf(dir, len, "/tmp/gm-redis-XXXXXX");
  ck_assert_ptr_nonnull(mkdtemp(dir));
  char owner[128];
  snprintf(owner, sizeof owner, "%s/owner", dir);
  FILE *f = fopen(owner, "w");
  ck_assert_ptr_nonnull(f);
  fprintf(f, "%ld\n", (long)owner_pid);
  fclose(f);
  struct timeval old[2] = {{time(NULL) - 3600, 0}, {time(NULL) - 3600, 0}};
  ck_assert_int_eq(utimes(owner, old), 0);
}

/* ---- pipelining: many calls on fibers share one write and one read ---- */

#define PIPE_MAX 64

typedef struct pipe_job {
  gm_call call;
  char idem[32];
  int steps;        /* script runs this call makes */
  gm_status st[2];  /* each run's status */
  long long got[2]; /* each run's counter value, -1 when it failed */
} pipe_job;

static void pipe_job_run(void *arg) {
  pipe_job *j = arg;
  for (int s = 0; s < j->steps; s++) {
    const gm_value *v = NULL;
    j->st[s] = run(&j->call, "counter", "t", 1, "n", 0, NULL, &v);
    j->got[s] =
        j->st[s] == GM_OK && v && v->type == GM_VALUE_INT ? v->integer : -1;
  }
}

static void pipe_jobs(pipe_job *jobs, int n, int steps) {
  for (int i = 0; i < n; i++) {
    snprintf(jobs[i].idem, sizeof jobs[i].idem, "job-%d", i);
    jobs[i].call = call_as("ivy", jobs[i].idem);
    jobs[i].steps = steps;
  }
}

/* Starts every job on a fiber of its own over the pipelined connection,
   calls between() once every job waits, then flushes until none waits;
   returns how many flushes (round trips) that took. */
static int pipe_run(pipe_job *jobs, int n, void (*between)(void)) {
  gm__fiber *f[PIPE_MAX];
  ck_assert_int_le(n, PIPE_MAX);
  gm__redis_set_pipelined(conn, 1);
  for (int i = 0; i < n; i++) {
    f[i] = gm__fiber_new(128 * 1024);
    ck_assert_ptr_nonnull(f[i]);
    gm__fiber_start(f[i], pipe_job_run, &jobs[i]);
  }
  ck_assert_int_eq((int)gm__redis_waiting(conn), n);
  if (between) between();
  int rounds = 0;
  while (gm__redis_waiting(conn)) {
    gm__redis_flush(conn);
    rounds++;
  }
  for (int i = 0; i < n; i++) gm__fiber_destroy(&f[i]);
  gm__redis_set_pipelined(conn, 0);
  return rounds;
}

START_TEST(pipelined_calls_share_round_trips) {
  add("counter", counter_lua);
  const gm_value *v;
  gm_call warm = call_as("ivy", ""); /* registers the outbox stream */
  ck_assert_int_eq(run(&warm, "counter", "t", 1, "n", 0, NULL, &v), GM_OK);
  pipe_job jobs[40] = {0};
  pipe_jobs(jobs, 40, 2);
  /* Two steps each: 40 calls take two round trips, not eighty. */
  ck_assert_int_eq(pipe_run(jobs, 40, NULL), 2);
  for (int i = 0; i < 40; i++) {
    ck_assert_int_eq(jobs[i].st[0], GM_OK);
    ck_assert_int_eq(jobs[i].st[1], GM_OK);
    /* Redis ran the scripts in the order the calls queued them. */
    ck_assert_int_eq(jobs[i].got[0], 2 + i);
    ck_assert_int_eq(jobs[i].got[1], 42 + i);
  }
  ck_assert_int_eq(gm_test_redis_int(raw, "XLEN gm:{mkt:t}:outbox"), 81);
  /* Each step kept its own idempotency record. */
  ck_assert_int_eq(
      gm_test_redis_int(raw, "EXISTS gm:{mkt:t}:idem:ivy:counter:job-39:1"), 1);
  /* The same calls again (client retries) replay, in the same two trips. */
  pipe_job again[40] = {0};
  pipe_jobs(again, 40, 2);
  ck_assert_int_eq(pipe_run(again, 40, NULL), 2);
  for (int i = 0; i < 40; i++) ck_assert_int_eq(again[i].got[1], 42 + i);
  ck_assert_int_eq(gm_test_redis_int(raw, "XLEN gm:{mkt:t}:outbox"), 81);
}
END_TEST

START_TEST(pipelined_function_flush_is_recovered) {
  add("counter", counter_lua);
  const gm_value *v;
  gm_call warm = call_as("ivy", "");
  ck_assert_int_eq(run(&warm, "counter", "t", 1, "n", 0, NULL, &v), GM_OK);
  freeReplyObject(gm_test_redis_cmd(raw, "FUNCTION FLUSH"));
  pipe_job jobs[20] = {0};
  pipe_jobs(jobs, 20, 1);
  /* "Function not found" for all, FUNCTION LOAD for all (the first loads
     the library, the others find it there), then the runs. */
  ck_assert_int_eq(pipe_run(jobs, 20, NULL), 3);
  for (int i = 0; i < 20; i++) {
    ck_assert_int_eq(jobs[i].st[0], GM_OK);
    ck_assert_int_eq(jobs[i].got[0], 2 + i);
  }
}
END_TEST

static void restart_redis(void) {
  redisFree(raw);
  raw = NULL;
  gm_test_redis_restart(srv);
  raw = gm_test_redis_connect(srv);
}

START_TEST(pipelined_restart_is_recovered) {
  add("counter", counter_lua);
  pipe_job jobs[20] = {0};
  pipe_jobs(jobs, 20, 1);
  /* The commands are queued, Redis restarts (no scripts, no data), then the
     batch is sent: it fails, the connection is reopened, and every call
     registers its outbox again and reloads the script by itself. */
  pipe_run(jobs, 20, restart_redis);
  for (int i = 0; i < 20; i++) {
    ck_assert_msg(jobs[i].st[0] == GM_OK, "job %d: %s", i,
                  jobs[i].call.message ? jobs[i].call.message : "");
    ck_assert_int_eq(jobs[i].got[0], 1 + i);
  }
  ck_assert_int_eq(
      gm_test_redis_int(raw, "SISMEMBER gm:outboxes gm:{mkt:t}:outbox"), 1);
  ck_assert_int_eq(gm_test_redis_int(raw, "XLEN gm:{mkt:t}:outbox"), 20);
}
END_TEST

static void kill_redis(void) {
  redisFree(raw);
  raw = NULL;
  gm_test_redis_kill(srv);
}

START_TEST(pipelined_unreachable_is_unavailable) {
  add("counter", counter_lua);
  pipe_job jobs[10] = {0};
  pipe_jobs(jobs, 10, 1);
  pipe_run(jobs, 10, kill_redis);
  for (int i = 0; i < 10; i++) {
    ck_assert_int_eq(jobs[i].st[0], GM_UNAVAILABLE);
    ck_assert_ptr_nonnull(
        strstr(jobs[i].call.message, "is redis-server running?"));
  }
}
END_TEST

/* While Redis is down, calls fail at once and append nothing: the
   connection's buffer does not grow with every failed attempt. */
START_TEST(pipelined_outage_buffers_nothing) {
  add("counter", counter_lua);
  kill_redis();
  size_t first = 0; /* what the first round left: the commands of one round */
  for (int round = 0; round < 50; round++) {
    pipe_job jobs[20] = {0};
    pipe_jobs(jobs, 20, 1);
    gm__fiber *f[20];
    gm__redis_set_pipelined(conn, 1);
    for (int i = 0; i < 20; i++) {
      f[i] = gm__fiber_new(128 * 1024);
      gm__fiber_start(f[i], pipe_job_run, &jobs[i]);
    }
    while (gm__redis_waiting(conn)) gm__redis_flush(conn);
    for (int i = 0; i < 20; i++) {
      ck_assert_int_eq(jobs[i].st[0], GM_UNAVAILABLE);
      gm__fiber_destroy(&f[i]);
    }
    gm__redis_set_pipelined(conn, 0);
    if (round == 0)
      first = gm__redis_buffered(conn);
    else
      ck_assert_uint_le(gm__redis_buffered(conn), first);
  }
  ck_assert_uint_le(first, 20 * 512);
}
END_TEST

/* A plugin cannot forge the host's fields (a replay marker). */
START_TEST(emit_refuses_host_field_names) {
  add("forge", "gm.emit('thing', 'gm:replay_of', '1-1')\nreturn 1\n");
  const gm_value *v;
  gm_call c = call_as("mallory", "");
  ck_assert_int_eq(run(&c, "forge", "t", 0, NULL, 0, NULL, &v), GM_INTERNAL);
  ck_assert_int_eq(gm_test_redis_int(raw, "EXISTS gm:{mkt:t}:outbox"), 0);
}
END_TEST

/*
 * With a password ([redis] password_file), every connection's first command
 * is AUTH.  A Redis that is stopped (not dead) still has its connections
 * accepted by the kernel: the reconnect gives up after the I/O timeout
 * instead of waiting in AUTH until Redis runs again.  And a Redis that now
 * refuses the password says so on the kept context and in the last error,
 * not as the old connection's "Server closed the connection".
 */
/* Writes `text` to the file at path (mode 600). */
static void write_secret(const char *path, const char *text) {
  FILE *f = fopen(path, "w");
  ck_assert_ptr_nonnull(f);
  fputs(text, f);
  fclose(f);
  chmod(path, 0600);
}

START_TEST(auth_on_reconnect_is_bounded_and_named) {
  freeReplyObject(gm_test_redis_cmd(raw, "CONFIG SET requirepass pw-1"));
  char *file = gm_test_redis_path(srv, "redis.pass");
  write_secret(file, "pw-1\n");
  gm__redis_set_auth(NULL, file);
  char err[256];
  gm__redis_addr addr = {.unix_path = gm_test_redis_socket(srv)};
  gm__redis *r = gm__redis_connect(&addr, err, sizeof err);
  ck_assert_msg(r != NULL, "%s", err);
  gm__redis_set_timeouts(r, 200 * 1000, 200 * 1000);
  kill(gm_test_redis_pid(srv), SIGSTOP);
  uint64_t t0 = gm__clock_mono_us();
  gm_status st = gm__redis_reconnect(r);
  uint64_t took = gm__clock_mono_us() - t0;
  kill(gm_test_redis_pid(srv), SIGCONT);
  ck_assert_int_eq(st, GM_UNAVAILABLE);
  ck_assert_msg(took < 2000000, "reconnect took %llu us",
                (unsigned long long)took);
  ck_assert_int_eq(gm__redis_reconnect(r), GM_OK);
  redisReply *p = redisCommand(gm__redis_context(r), "PING");
  ck_assert_msg(p && p->type == REDIS_REPLY_STATUS, "PING after AUTH: %s",
                p ? p->str : gm__redis_context(r)->errstr);
  freeReplyObject(p);
  /* The password changes under gmd; its connection is closed. */
  freeReplyObject(gm_test_redis_cmd(raw, "CONFIG SET requirepass pw-2"));
  freeReplyObject(gm_test_redis_cmd(raw, "CLIENT KILL TYPE normal SKIPME yes"));
  p = redisCommand(gm__redis_context(r), "PING");
  ck_assert_ptr_null(p);
  ck_assert_int_eq(gm__redis_reconnect(r), GM_UNAVAILABLE);
  const char *why = gm__redis_context(r)->errstr;
  ck_assert_msg(strstr(why, "AUTH refused") && strstr(why, "WRONGPASS") &&
                    !strstr(why, "pw-1"),
                "%s", why);
  ck_assert_msg(strstr(gm__redis_last_error(r), "WRONGPASS"), "%s",
                gm__redis_last_error(r));
  /* The file is read at each new connection: the new password in it is
     enough, with no restart (gm__redis_set_auth is not called again). */
  write_secret(file, "pw-2\n");
  ck_assert_int_eq(gm__redis_reconnect(r), GM_OK);
  p = redisCommand(gm__redis_context(r), "PING");
  ck_assert_msg(p && p->type == REDIS_REPLY_STATUS, "PING after AUTH: %s",
                p ? p->str : gm__redis_context(r)->errstr);
  freeReplyObject(p);
  /* A file gone or emptied fails the next connection, named as gmd's
     password file, not as Redis refusing or being down. */
  ck_assert_int_eq(unlink(file), 0);
  freeReplyObject(gm_test_redis_cmd(raw, "CLIENT KILL TYPE normal SKIPME yes"));
  p = redisCommand(gm__redis_context(r), "PING");
  ck_assert_ptr_null(p);
  ck_assert_int_eq(gm__redis_reconnect(r), GM_UNAVAILABLE);
  why = gm__redis_last_error(r);
  ck_assert_msg(gm__redis_auth_failed(why) &&
                    strstr(why, "password_file: cannot be read"),
                "%s", why);
  char msg[768];
  gm__redis_auth_message(msg, sizeof msg, "here", why);
  ck_assert_msg(strstr(msg, file) && strstr(msg, "no restart needed") &&
                    !strstr(msg, "refused"),
                "%s", msg);
  write_secret(file, "");
  ck_assert_int_eq(gm__redis_reconnect(r), GM_UNAVAILABLE);
  ck_assert_msg(strstr(gm__redis_last_error(r), "password_file: is empty"),
                "%s", gm__redis_last_error(r));
  write_secret(file, "pw-2");
  ck_assert_int_eq(gm__redis_reconnect(r), GM_OK);
  gm__redis_destroy(&r);
  freeReplyObject(gm_test_redis_cmd(raw, "CONFIG SET requirepass \"\""));
  gm__redis_set_auth(NULL, NULL);
  free(file);
}
END_TEST

/* What is wrong with a password file is said as what it is: a folder or a
   file that cannot be read is not "empty" (fopen opens a folder; its first
   read fails), and a first line of exactly 512 bytes is whole, CR LF or
   not, while 513 is over. */
START_TEST(a_password_file_read_names_what_is_wrong) {
  char *dir = gm_test_redis_path(srv, "pass.d");
  ck_assert_int_eq(mkdir(dir, 0700), 0);
  char pass[513], why[96];
  ck_assert_int_eq(gm__redis_password_read(dir, pass, why, sizeof why), -1);
  ck_assert_msg(strstr(why, "cannot be read") && strstr(why, "directory") &&
                    !strstr(why, "empty"),
                "%s", why);
  char *file = gm_test_redis_path(srv, "pass.f");
  char line[600];
  memset(line, 'p', 512);
  strcpy(line + 512, "\r\n");
  write_secret(file, line);
  ck_assert_int_eq(gm__redis_password_read(file, pass, why, sizeof why), 0);
  ck_assert_uint_eq(strlen(pass), 512);
  memset(line, 'p', 513);
  line[513] = '\0';
  write_secret(file, line);
  ck_assert_int_eq(gm__redis_password_read(file, pass, why, sizeof why), -1);
  ck_assert_msg(strstr(why, "over 512 bytes"), "%s", why);
  ck_assert_int_eq(rmdir(dir), 0);
  unlink(file);
  free(dir);
  free(file);
}
END_TEST

/* A Redis that stops answering (stopped, not dead) fails the waiting calls
   once nothing has come back for the limit, instead of hanging them. */
START_TEST(pipelined_stalled_redis_fails_waiters) {
  add("counter", counter_lua);
  const gm_value *v;
  gm_call warm = call_as("ivy", "");
  ck_assert_int_eq(run(&warm, "counter", "t", 1, "n", 0, NULL, &v), GM_OK);
  pipe_job jobs[5] = {0};
  pipe_jobs(jobs, 5, 1);
  gm__fiber *f[5];
  gm__redis_set_pipelined(conn, 1);
  kill(gm_test_redis_pid(srv), SIGSTOP);
  for (int i = 0; i < 5; i++) {
    f[i] = gm__fiber_new(128 * 1024);
    gm__fiber_start(f[i], pipe_job_run, &jobs[i]);
  }
  int rounds = 0;
  while (gm__redis_waiting(conn) && rounds++ < 20) {
    gm__redis_send(conn);
    usleep(120 * 1000);
    gm__redis_expire(conn, 100 * 1000);
  }
  kill(gm_test_redis_pid(srv), SIGCONT);
  ck_assert_int_eq((int)gm__redis_waiting(conn), 0);
  for (int i = 0; i < 5; i++) {
    ck_assert_int_eq(jobs[i].st[0], GM_UNAVAILABLE);
    ck_assert_msg(strstr(jobs[i].call.message, "no reply for 100 ms"), "%s",
                  jobs[i].call.message);
    gm__fiber_destroy(&f[i]);
  }
  gm__redis_set_pipelined(conn, 0);
  /* Redis answers again: calls work. */
  gm_call after = call_as("ivy", "");
  ck_assert_int_eq(run(&after, "counter", "t", 1, "n", 0, NULL, &v), GM_OK);
}
END_TEST

/* ---- pipelined replies read into each call's arena ---- */

/* ARGV[1]: a job number; 600 strings of 200 bytes naming it and their
   place, so a reply given to the wrong call, or cut, shows. */
static const char big_lua[] =
    "local t = {}\n"
    "for k = 1, 600 do\n"
    "  local s = 'job' .. ARGV[1] .. '-' .. k .. '-'\n"
    "  t[k] = s .. string.rep('x', 200 - #s)\n"
    "end\n"
    "return t\n";

typedef struct big_job {
  gm_call call;
  const char *script; /* "big" or "deep" */
  char arg[16];
  gm_status st;
  const gm_value *v;
} big_job;

static void big_job_run(void *arg) {
  big_job *j = arg;
  const char *args[] = {j->arg};
  j->st =
      gm__script_run(&j->call, "mkt", j->script, "t", 0, NULL, 1, args, &j->v);
}

/* Runs the jobs on fibers over the pipelined connection until none waits. */
static void big_run(big_job *jobs, int n) {
  gm__fiber *f[8];
  ck_assert_int_le(n, 8);
  gm__redis_set_pipelined(conn, 1);
  for (int i = 0; i < n; i++) {
    f[i] = gm__fiber_new(128 * 1024);
    gm__fiber_start(f[i], big_job_run, &jobs[i]);
  }
  for (int rounds = 0; gm__redis_waiting(conn) && rounds < 20; rounds++)
    gm__redis_flush(conn);
  ck_assert_int_eq((int)gm__redis_waiting(conn), 0);
  for (int i = 0; i < n; i++) gm__fiber_destroy(&f[i]);
  gm__redis_set_pipelined(conn, 0);
}

static void big_check(const big_job *j, int job) {
  ck_assert_msg(j->st == GM_OK, "job %d: %s", job,
                j->call.message ? j->call.message : "");
  ck_assert_int_eq(j->v->type, GM_VALUE_ARRAY);
  ck_assert_uint_eq(j->v->n, 600);
  for (int k = 0; k < 600; k++) {
    char want[32];
    int len = snprintf(want, sizeof want, "job%d-%d-", job, k + 1);
    const gm_value *it = &j->v->items[k];
    ck_assert_int_eq(it->type, GM_VALUE_STR);
    ck_assert_uint_eq(it->len, 200);
    ck_assert_uint_eq(strlen(it->str), 200);
    ck_assert_int_eq(memcmp(it->str, want, (size_t)len), 0);
  }
}

/* Replies of 120 KB each, read in many pieces while other replies of the
   same pipeline queue behind them: each call gets exactly its own, built
   in its own arena, which holds it after the call (the values point into
   it). */
START_TEST(pipelined_big_replies_reach_their_calls) {
  add("big", big_lua);
  big_job jobs[6] = {0};
  gm__arena *own[6];
  for (int i = 0; i < 6; i++) {
    own[i] = gm__arena_new();
    jobs[i].call = call_as("ivy", "");
    jobs[i].call.arena = own[i];
    jobs[i].script = "big";
    snprintf(jobs[i].arg, sizeof jobs[i].arg, "%d", i);
  }
  big_run(jobs, 6);
  for (int i = 0; i < 6; i++) {
    big_check(&jobs[i], i);
    /* The reply's 120 KB are in the call's arena, once. */
    ck_assert_uint_ge(gm__arena_held(own[i]), 600 * 200);
    ck_assert_uint_lt(gm__arena_held(own[i]), 2 * 600 * 256);
  }
  for (int i = 0; i < 6; i++) gm__arena_destroy(&own[i]);
}
END_TEST

/* A reply hiredis cannot read, between two big ones: that call fails with
   why, the others are sent again and get their own replies. */
START_TEST(pipelined_unreadable_reply_fails_only_its_call) {
  add("big", big_lua);
  add("deep", "return {{{{{{{{{ARGV[1]}}}}}}}}}\n");
  big_job jobs[3] = {0};
  for (int i = 0; i < 3; i++) {
    jobs[i].call = call_as("ivy", "");
    jobs[i].script = i == 1 ? "deep" : "big";
    snprintf(jobs[i].arg, sizeof jobs[i].arg, "%d", i);
  }
  big_run(jobs, 3);
  big_check(&jobs[0], 0);
  ck_assert_int_eq(jobs[1].st, GM_INTERNAL);
  ck_assert_msg(strstr(jobs[1].call.message, "nested deeper"), "%s",
                jobs[1].call.message);
  big_check(&jobs[2], 2);
}
END_TEST

/* A fake Redis: accepts one connection, answers its first command with
   half a reply, then stops listening (a reconnect fails) and says nothing
   more until the test ends. */
typedef struct half_server {
  char dir[64], path[96];
  int lfd, cfd;
  pthread_t th;
} half_server;

static void *half_serve(void *arg) {
  half_server *h = arg;
  h->cfd = accept(h->lfd, NULL, NULL);
  close(h->lfd);
  unlink(h->path);
  if (h->cfd < 0) return NULL;
  char buf[4096];
  /* gm__redis_connect's PING first (a whole reply), then the call. */
  if (read(h->cfd, buf, sizeof buf) <= 0) return NULL;
  if (write(h->cfd, "+PONG\r\n", 7) < 0) return NULL;
  if (read(h->cfd, buf, sizeof buf) <= 0) return NULL;
  static const char half[] = "*3\r\n$5\r\nhello\r\n:7\r\n";
  if (write(h->cfd, half, sizeof half - 1) < 0) return NULL;
  return NULL;
}

static void half_start(half_server *h) {
  snprintf(h->dir, sizeof h->dir, "/tmp/gm-half-XXXXXX");
  ck_assert_ptr_nonnull(mkdtemp(h->dir));
  snprintf(h->path, sizeof h->path, "%s/s", h->dir);
  h->lfd = socket(AF_UNIX, SOCK_STREAM, 0);
  struct sockaddr_un sa = {.sun_family = AF_UNIX};
  snprintf(sa.sun_path, sizeof sa.sun_path, "%s", h->path);
  ck_assert_int_eq(bind(h->lfd, (struct sockaddr *)&sa, sizeof sa), 0);
  ck_assert_int_eq(listen(h->lfd, 4), 0);
  h->cfd = -1;
  ck_assert_int_eq(pthread_create(&h->th, NULL, half_serve, h), 0);
}

static void half_stop(half_server *h) {
  pthread_join(h->th, NULL);
  if (h->cfd >= 0) close(h->cfd);
  rmdir(h->dir);
}

/*
 * A connection that breaks in the middle of a reply read into a call's
 * arena, and cannot be reopened: the call fails, and the half-read reply
 * stays the arena's (freed with it), not the kept connection's, which is
 * freed later (under ASan a use after free otherwise).
 */
START_TEST(half_read_reply_stays_with_its_arena) {
  add("pair", "return {'hello', 7, 'more'}\n");
  half_server h;
  half_start(&h);
  char err[256];
  gm__redis_addr addr = {.unix_path = h.path};
  gm__redis *half = gm__redis_connect(&addr, err, sizeof err);
  ck_assert_msg(half != NULL, "%s", err);
  gm__redis_set_timeouts(half, 200 * 1000, 200 * 1000);
  gm__redis_set_pipelined(half, 1);
  gm__arena *own = gm__arena_new();
  big_job j = {.call = call_as("ivy", ""), .script = "pair", .arg = "1"};
  j.call.arena = own;
  j.call.redis = half;
  gm__fiber *f = gm__fiber_new(128 * 1024);
  gm__fiber_start(f, big_job_run, &j);
  for (int rounds = 0; gm__redis_waiting(half) && rounds < 50; rounds++) {
    gm__redis_send(half);
    struct pollfd p = {.fd = gm__redis_fd(half), .events = POLLIN};
    if (poll(&p, 1, 20) > 0) gm__redis_receive(half);
    gm__redis_expire(half, 100 * 1000);
  }
  ck_assert_int_eq((int)gm__redis_waiting(half), 0);
  ck_assert_int_eq(j.st, GM_UNAVAILABLE);
  ck_assert_msg(strstr(j.call.message, "is redis-server running?"), "%s",
                j.call.message);
  gm__fiber_destroy(&f);
  gm__arena_destroy(&own);
  gm__redis_destroy(&half);
  half_stop(&h);
}
END_TEST

/* ---- deadlines in scripts (the host's gm.deadline*) ---- */

/* ARGV: id, due ('' cancels); writes the entity, sets or cancels the
   deadline, answers a tree with what gm.deadline_get sees afterwards. */
static const char deadline_lua[] =
    "redis.call('SET', KEYS[1], ARGV[1])\n"
    "if ARGV[2] == '' then gm.deadline_cancel('close', ARGV[1])\n"
    "else gm.deadline('close', ARGV[1], tonumber(ARGV[2])) end\n"
    "return {1, 'two', {gm.deadline_get('close', ARGV[1])}, false}\n";

static gm_status set_deadline(const char *idem, const char *id, const char *due,
                              const gm_value **v) {
  gm_call c = call_as("dan", idem);
  const char *keys[] = {"entity"};
  const char *args[] = {id, due};
  return gm__script_run(&c, "mkt", "deadline", "t", 1, keys, 2, args, v);
}

static long long zscore(const char *key, const char *member) {
  redisReply *r = gm_test_redis_cmd(raw, "ZSCORE %s %s", key, member);
  long long v = r->type == REDIS_REPLY_STRING ? atoll(r->str) : -1;
  freeReplyObject(r);
  return v;
}

/*
 * A deadline is written with the entity, the reply reaches the caller as the
 * script returned it (the host's wrapper taken off), the wake-up index only
 * goes down, and a replay gives the same reply and puts back an index entry
 * lost after the first run.
 */
START_TEST(deadlines_are_set_with_the_entity) {
  add("deadline", deadline_lua);
  const gm_value *v;
  ck_assert_int_eq(set_deadline("d1", "a", "5000", &v), GM_OK);
  ck_assert_int_eq(v->type, GM_VALUE_ARRAY);
  ck_assert_uint_eq(v->n, 4);
  ck_assert_int_eq(v->items[0].integer, 1);
  ck_assert_str_eq(v->items[1].str, "two");
  ck_assert_int_eq(v->items[2].items[0].integer, 5000); /* run's own */
  ck_assert_int_eq(v->items[3].type, GM_VALUE_NIL);
  ck_assert_int_eq(zscore("gm:{mkt:t}:dl", "close|a"), 5000);
  ck_assert_int_eq(zscore("gm:deadlines", "mkt:t"), 5000);
  /* A later one leaves the index alone; an earlier one lowers it. */
  ck_assert_int_eq(set_deadline("d2", "b", "9000", &v), GM_OK);
  ck_assert_int_eq(zscore("gm:deadlines", "mkt:t"), 5000);
  ck_assert_int_eq(set_deadline("d3", "c", "3000", &v), GM_OK);
  ck_assert_int_eq(zscore("gm:deadlines", "mkt:t"), 3000);
  /* Moved, and cancelled. */
  ck_assert_int_eq(set_deadline("d4", "a", "7000", &v), GM_OK);
  ck_assert_int_eq(zscore("gm:{mkt:t}:dl", "close|a"), 7000);
  ck_assert_int_eq(set_deadline("d5", "c", "", &v), GM_OK);
  ck_assert_int_eq(v->items[2].n, 1);
  ck_assert_int_eq(v->items[2].items[0].type, GM_VALUE_NIL); /* false */
  ck_assert_int_eq(zscore("gm:{mkt:t}:dl", "close|c"), -1);
  /* The index lost the tag (a broker died before its ZADD): the retry of
     the call replays its reply and puts the tag's earliest back. */
  freeReplyObject(gm_test_redis_cmd(raw, "DEL gm:deadlines"));
  ck_assert_int_eq(set_deadline("d4", "a", "7000", &v), GM_OK);
  ck_assert_uint_eq(v->n, 4);
  ck_assert_int_eq(v->items[2].items[0].integer, 7000);
  ck_assert_int_eq(zscore("gm:deadlines", "mkt:t"), 7000);
  ck_assert_int_eq(gm_test_redis_int(raw, "ZCARD gm:{mkt:t}:dl"), 2);
}
END_TEST

/*
 * A refused run leaves no deadline and no index entry, whether it called
 * gm.reject before or after gm.deadline; what the script wrote itself before
 * refusing stays (Redis does not roll a script back: plugins.md, rule 7).
 * A Lua error after gm.deadline writes no deadline either.
 */
START_TEST(refused_runs_leave_no_deadline) {
  add("after",
      "redis.call('SET', KEYS[1], 'written')\n"
      "gm.deadline('close', 'x', 1000)\n"
      "return gm.reject('FAILED_PRECONDITION', 'refused after')\n");
  add("before",
      "redis.call('SET', KEYS[1], 'written')\n"
      "local e = gm.reject('FAILED_PRECONDITION', 'refused before')\n"
      "gm.deadline('close', 'y', 1000)\n"
      "return e\n");
  add("broken",
      "gm.deadline('close', 'z', 1000)\n"
      "return nil + 1\n");
  const gm_value *v;
  gm_call c1 = call_as("dan", "r1");
  ck_assert_int_eq(run(&c1, "after", "t", 1, "entity", 0, NULL, &v),
                   GM_FAILED_PRECONDITION);
  gm_call c2 = call_as("dan", "r2");
  ck_assert_int_eq(run(&c2, "before", "t", 1, "entity", 0, NULL, &v),
                   GM_FAILED_PRECONDITION);
  gm_call c3 = call_as("dan", "r3");
  ck_assert_int_eq(run(&c3, "broken", "t", 1, "entity", 0, NULL, &v),
                   GM_INTERNAL);
  ck_assert_int_eq(gm_test_redis_int(raw, "EXISTS gm:{mkt:t}:dl"), 0);
  ck_assert_int_eq(gm_test_redis_int(raw, "EXISTS gm:deadlines"), 0);
  redisReply *e = gm_test_redis_cmd(raw, "GET gm:{mkt:t}:entity");
  ck_assert_str_eq(e->str, "written");
  freeReplyObject(e);
  /* A retry of a refused call replays the refusal, still without one. */
  gm_call c4 = call_as("dan", "r1");
  ck_assert_int_eq(run(&c4, "after", "t", 1, "entity", 0, NULL, &v),
                   GM_FAILED_PRECONDITION);
  ck_assert_int_eq(gm_test_redis_int(raw, "EXISTS gm:deadlines"), 0);
}
END_TEST

/* The host's wrapper cannot be forged or mistaken: a plugin reply of its
   shape is refused; bad deadline arguments fail the run. */
START_TEST(deadline_misuse_is_refused) {
  add("forge", "return {redis.error_reply('gm:deadline 5'), 'x'}\n");
  add("kind", "gm.deadline('Close', 'x', 1000)\nreturn 1\n");
  add("noid", "gm.deadline('close', '', 1000)\nreturn 1\n");
  add("due", "gm.deadline('close', 'x', 1.5)\nreturn 1\n");
  add("lookalike", "return {{'gm:deadline 5'}, 'x'}\n");
  const char *bad[] = {"forge", "kind", "noid", "due"};
  const gm_value *v;
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    gm_call c = call_as("dan", "");
    ck_assert_msg(run(&c, bad[i], "t", 0, NULL, 0, NULL, &v) == GM_INTERNAL,
                  "%s was not refused", bad[i]);
  }
  ck_assert_int_eq(gm_test_redis_int(raw, "EXISTS gm:{mkt:t}:dl"), 0);
  ck_assert_int_eq(gm_test_redis_int(raw, "EXISTS gm:deadlines"), 0);
  /* A string that merely reads like the marker is the plugin's own. */
  gm_call c = call_as("dan", "");
  ck_assert_int_eq(run(&c, "lookalike", "t", 0, NULL, 0, NULL, &v), GM_OK);
  ck_assert_uint_eq(v->n, 2);
  ck_assert_str_eq(v->items[0].items[0].str, "gm:deadline 5");
}
END_TEST

typedef struct dl_job {
  gm_call call;
  char idem[16], id[16], due[16];
  gm_status st;
  int done;
} dl_job;

static void dl_job_run(void *arg) {
  dl_job *j = arg;
  const gm_value *v;
  const char *keys[] = {"entity"};
  const char *args[] = {j->id, j->due};
  j->st =
      gm__script_run(&j->call, "mkt", "deadline", "t", 1, keys, 2, args, &v);
  j->done = 1;
}

/* On a pipelined connection the index update is sent behind the script and
   nobody waits for it: each call ends with its script's reply. */
START_TEST(pipelined_index_update_is_not_waited_for) {
  add("deadline", deadline_lua);
  const gm_value *v;
  ck_assert_int_eq(set_deadline("warm", "w", "90000", &v), GM_OK);
  enum { N = 10 };
  dl_job jobs[N];
  gm__fiber *f[N];
  memset(jobs, 0, sizeof jobs);
  gm__redis_set_pipelined(conn, 1);
  for (int i = 0; i < N; i++) {
    snprintf(jobs[i].idem, sizeof jobs[i].idem, "p%d", i);
    snprintf(jobs[i].id, sizeof jobs[i].id, "o%d", i);
    snprintf(jobs[i].due, sizeof jobs[i].due, "%d", 80000 - i * 1000);
    jobs[i].call = call_as("dan", jobs[i].idem);
    f[i] = gm__fiber_new(128 * 1024);
    gm__fiber_start(f[i], dl_job_run, &jobs[i]);
  }
  gm__redis_flush(conn); /* the scripts' replies */
  for (int i = 0; i < N; i++) {
    ck_assert_msg(jobs[i].done, "call %d waits for its index update", i);
    ck_assert_int_eq(jobs[i].st, GM_OK);
  }
  ck_assert_int_eq((int)gm__redis_waiting(conn), N); /* the ZADDs */
  gm__redis_flush(conn);
  ck_assert_int_eq((int)gm__redis_waiting(conn), 0);
  gm__redis_set_pipelined(conn, 0);
  for (int i = 0; i < N; i++) gm__fiber_destroy(&f[i]);
  ck_assert_int_eq(zscore("gm:deadlines", "mkt:t"), 80000 - (N - 1) * 1000);
}
END_TEST

/*
 * A command nobody waits for (the deadline index's ZADD) cut by gmd's stop
 * (redis.h: its connections shut down, none reopened) is logged at INFO as
 * what it is, not as an ERROR of Redis.
 */
START_TEST(a_no_wait_command_cut_by_a_stop_is_no_error) {
  char err[512];
  gm__redis_stop *stop = gm__redis_stop_new();
  gm__redis_addr addr = {.unix_path = gm_test_redis_socket(srv), .stop = stop};
  gm__redis *r = gm__redis_connect(&addr, err, sizeof err);
  ck_assert_msg(r != NULL, "%s", err);
  gm__redis_stop_now(stop);
  gm_call call = call_as("dan", NULL);
  call.redis = r;
  char log_path[] = "/tmp/gm-test-redis-log-XXXXXX";
  int log_fd = mkstemp(log_path);
  ck_assert_int_ge(log_fd, 0);
  fflush(stderr);
  int saved = dup(2);
  ck_assert_int_ge(dup2(log_fd, 2), 0);
  gm__deadline_index_lower(&call, "mkt", "t", 5000, 0);
  fflush(stderr);
  dup2(saved, 2);
  close(saved);
  char buf[4096];
  ssize_t n = pread(log_fd, buf, sizeof buf - 1, 0);
  close(log_fd);
  unlink(log_path);
  buf[n > 0 ? n : 0] = '\0';
  fputs(buf, stderr);
  ck_assert_msg(strstr(buf,
                       "INFO  [redis] ZADD gm:deadlines not sent: gmd "
                       "is stopping"),
                "the cut is not said as a stop: %s", buf);
  ck_assert_msg(!strstr(buf, "ERROR"), "an ERROR for a stop's cut: %s", buf);
  gm__redis_destroy(&r);
  gm__redis_stop_destroy(&stop);
}
END_TEST

/* A TCP port on 127.0.0.1 whose connects hang (its listener's accept
   queue is full and never read, so the kernel drops new SYNs): a Redis on
   a network that drops packets.  Returns the listener; its port in *port. */
static int blackhole(int *port, int held[8], int *nheld) {
  int l = socket(AF_INET, SOCK_STREAM, 0);
  ck_assert_int_ge(l, 0);
  struct sockaddr_in a = {.sin_family = AF_INET,
                          .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  ck_assert_int_eq(bind(l, (struct sockaddr *)&a, sizeof a), 0);
  ck_assert_int_eq(listen(l, 0), 0);
  socklen_t len = sizeof a;
  ck_assert_int_eq(getsockname(l, (struct sockaddr *)&a, &len), 0);
  *port = ntohs(a.sin_port);
  /* Connects until one does not complete: the queue is full. */
  *nheld = 0;
  for (;;) {
    ck_assert_int_lt(*nheld, 8);
    int c = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    ck_assert_int_ge(c, 0);
    held[(*nheld)++] = c;
    int rc = connect(c, (struct sockaddr *)&a, sizeof a);
    if (rc == 0) continue;
    ck_assert_int_eq(errno, EINPROGRESS);
    struct pollfd p = {.fd = c, .events = POLLOUT};
    if (poll(&p, 1, 200) == 0) break;
  }
  return l;
}

typedef struct {
  gm__redis_addr addr;
  gm__redis *r;
  char err[512];
} connect_job;

static void *connect_run(void *arg) {
  connect_job *j = arg;
  j->r = gm__redis_connect(&j->addr, j->err, sizeof j->err);
  return NULL;
}

/*
 * A connect under way to a Redis whose network drops packets ends when the
 * stop cuts its connections, not at its connect timeout (5 s here): the
 * socket is listed in the stop from its connect() on.
 */
START_TEST(a_stop_ends_a_connect_under_way) {
  int port, held[8], nheld;
  int l = blackhole(&port, held, &nheld);
  gm__redis_stop *stop = gm__redis_stop_new();
  connect_job j = {.addr = {.host = "127.0.0.1",
                            .port = port,
                            .connect_us = 5000000,
                            .stop = stop}};
  pthread_t t;
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  ck_assert_int_eq(pthread_create(&t, NULL, connect_run, &j), 0);
  usleep(300 * 1000);
  gm__redis_stop_now(stop);
  pthread_join(t, NULL);
  clock_gettime(CLOCK_MONOTONIC, &t1);
  long ms =
      (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
  fprintf(stderr,
          "test_redis: a connect under way ended %ld ms after its "
          "start (the stop at 300 ms): %s\n",
          ms, j.err);
  ck_assert_ptr_null(j.r);
  ck_assert_msg(ms < 1500, "the connect waited %ld ms after the stop", ms);
  ck_assert_msg(strstr(j.err, "gmd is stopping"), "%s", j.err);
  for (int i = 0; i < nheld; i++) close(held[i]);
  close(l);
  gm__redis_stop_destroy(&stop);
}
END_TEST

/* ---- stopping: name lookups, probes all at once, slot-map reads ---- */

/*
 * This program's name lookups (its own definition comes before the C
 * library's, for gmd's code and hiredis's alike): "hang.gm-test" does not
 * resolve for 4 s (a DNS server that drops packets); "flaky.gm-test" is
 * 127.0.0.1 until flaky_hangs is set, then hangs so too; "two.gm-test"
 * is 127.0.0.2 (where no Redis listens), then 127.0.0.1; any other name
 * goes to the C library.
 */
static _Atomic int flaky_hangs;
__attribute__((visibility("default"))) int getaddrinfo(
    const char *node, const char *service, const struct addrinfo *hints,
    struct addrinfo **res) {
  static int (*real)(const char *, const char *, const struct addrinfo *,
                     struct addrinfo **);
  if (!real) *(void **)&real = dlsym(RTLD_NEXT, "getaddrinfo");
  if (node && (!strcmp(node, "hang.gm-test") ||
               (!strcmp(node, "flaky.gm-test") && atomic_load(&flaky_hangs))))
    gm_test_sleep_ms(4000);
  if (node && !strcmp(node, "flaky.gm-test")) node = "127.0.0.1";
  if (node && !strcmp(node, "two.gm-test")) {
    /* glibc's freeaddrinfo frees node by node: two lists chained are one. */
    struct addrinfo *first = NULL, *second = NULL;
    int rc = real("127.0.0.2", service, hints, &first);
    if (rc) return rc;
    if ((rc = real("127.0.0.1", service, hints, &second))) {
      freeaddrinfo(first);
      return rc;
    }
    struct addrinfo *last = first;
    while (last->ai_next) last = last->ai_next;
    last->ai_next = second;
    *res = first;
    return 0;
  }
  return real(node, service, hints, res);
}

static long ms_since(const struct timespec *t0) {
  struct timespec t1;
  clock_gettime(CLOCK_MONOTONIC, &t1);
  return (t1.tv_sec - t0->tv_sec) * 1000 + (t1.tv_nsec - t0->tv_nsec) / 1000000;
}

/* Has the one-node Redis s listen on a free loopback TCP port too. */
static int tcp_port(gm_test_redis *s) {
  int l = socket(AF_INET, SOCK_STREAM, 0);
  ck_assert_int_ge(l, 0);
  struct sockaddr_in a = {.sin_family = AF_INET,
                          .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  ck_assert_int_eq(bind(l, (struct sockaddr *)&a, sizeof a), 0);
  socklen_t len = sizeof a;
  ck_assert_int_eq(getsockname(l, (struct sockaddr *)&a, &len), 0);
  close(l);
  int port = ntohs(a.sin_port);
  redisContext *c = gm_test_redis_connect(s);
  freeReplyObject(gm_test_redis_cmd(c, "CONFIG SET bind 127.0.0.1"));
  freeReplyObject(gm_test_redis_cmd(c, "CONFIG SET port %d", port));
  redisFree(c);
  return port;
}

/* A name the hosts file resolves (localhost) connects as before. */
START_TEST(a_name_in_the_hosts_file_still_connects) {
  gm_test_redis *s = gm_test_redis_start();
  char err[512];
  gm__redis_stop *stop = gm__redis_stop_new();
  gm__redis_addr addr = {
      .host = "localhost", .port = tcp_port(s), .stop = stop};
  gm__redis *r = gm__redis_connect(&addr, err, sizeof err);
  ck_assert_msg(r != NULL, "%s", err);
  redisReply *rep = gm__redis_callf(r, "PING");
  ck_assert_ptr_nonnull(rep);
  ck_assert_str_eq(rep->str, "PONG");
  freeReplyObject(rep);
  char where[64];
  gm__redis_ctx_where(gm__redis_context(r), where, sizeof where);
  ck_assert_msg(!strncmp(where, "localhost:", 10), "named %s", where);
  gm__redis_destroy(&r);
  gm__redis_stop_destroy(&stop);
  gm_test_redis_stop(&s);
}
END_TEST

/*
 * A name with several addresses: one that refuses the connect is passed
 * over for the next (hiredis, before, took the first and failed; so does
 * a Redis bound to 127.0.0.1 only, named localhost, where the name's ::1
 * comes first).
 */
START_TEST(a_refused_address_of_a_name_is_passed_over) {
  gm_test_redis *s = gm_test_redis_start();
  char err[512];
  gm__redis_stop *stop = gm__redis_stop_new();
  gm__redis_addr addr = {.host = "two.gm-test",
                         .port = tcp_port(s),
                         .connect_us = 2000000,
                         .stop = stop};
  gm__redis *r = gm__redis_connect(&addr, err, sizeof err);
  ck_assert_msg(r != NULL, "%s", err);
  redisReply *rep = gm__redis_callf(r, "PING");
  ck_assert_ptr_nonnull(rep);
  ck_assert_str_eq(rep->str, "PONG");
  freeReplyObject(rep);
  gm__redis_destroy(&r);
  /* Refused at its only address: said so, as before. */
  gm__redis_addr none = {.host = "127.0.0.2",
                         .port = addr.port,
                         .connect_us = 2000000,
                         .stop = stop};
  ck_assert_ptr_null(gm__redis_connect(&none, err, sizeof err));
  ck_assert_msg(strstr(err, "127.0.0.2") && strstr(err, "refused"), "%s", err);
  gm__redis_stop_destroy(&stop);
  gm_test_redis_stop(&s);
}
END_TEST

typedef struct {
  gm__redis_addr addr;
  gm__redis *r;
  char err[512];
  long ms;
} lookup_job;

static void *lookup_run(void *arg) {
  lookup_job *j = arg;
  struct timespec t0;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  j->r = gm__redis_connect(&j->addr, j->err, sizeof j->err);
  j->ms = ms_since(&t0);
  return NULL;
}

/*
 * A name lookup that does not answer is bounded by the connect timeout
 * (0.3 s here; before, getaddrinfo ran before the timeout started and held
 * the connect for as long as DNS did), and said as what it is.
 */
START_TEST(a_hanging_name_lookup_ends_at_the_connect_timeout) {
  lookup_job j = {
      .addr = {.host = "hang.gm-test", .port = 6379, .connect_us = 300000}};
  lookup_run(&j);
  fprintf(stderr, "test_redis: a hanging lookup ended after %ld ms: %s\n", j.ms,
          j.err);
  ck_assert_ptr_null(j.r);
  ck_assert_msg(j.ms < 2000, "the lookup held the connect %ld ms", j.ms);
  ck_assert_msg(strstr(j.err, "hang.gm-test:6379") &&
                    strstr(j.err, "did not resolve within 0.3 s"),
                "%s", j.err);
}
END_TEST

/*
 * A stop past its grace gives up a name lookup under way (a reconnect in a
 * DNS outage), 0.5 s into it, rather than wait out the connect timeout
 * (5 s here).
 */
START_TEST(a_stop_gives_up_a_hanging_name_lookup) {
  gm__redis_stop *stop = gm__redis_stop_new();
  lookup_job j = {.addr = {.host = "hang.gm-test",
                           .port = 6379,
                           .connect_us = 5000000,
                           .stop = stop}};
  pthread_t t;
  ck_assert_int_eq(pthread_create(&t, NULL, lookup_run, &j), 0);
  gm_test_sleep_ms(100);
  gm__redis_stop_after(stop, 0);
  pthread_join(t, NULL);
  fprintf(stderr, "test_redis: a lookup under a stop ended after %ld ms: %s\n",
          j.ms, j.err);
  ck_assert_ptr_null(j.r);
  ck_assert_msg(j.ms < 2000, "the lookup held the connect %ld ms", j.ms);
  ck_assert_msg(strstr(j.err, "gmd is stopping"), "%s", j.err);
  gm__redis_stop_destroy(&stop);
}
END_TEST

typedef struct {
  gm__redis *r;
  long ms;
} wait_job;

static void *wait_run(void *arg) {
  wait_job *j = arg;
  struct timespec t0;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  redisReply *rep = gm__redis_callf(j->r, "PING");
  j->ms = ms_since(&t0);
  if (rep) freeReplyObject(rep);
  return NULL;
}

/*
 * The stop's probe asks the address the connection uses, without
 * resolving its name again: with DNS down (the name's lookup now hangs)
 * and Redis stopped, the stop still cuts at its first probe (before, the
 * probe's own lookup hung and nothing was cut: the command waited its read
 * timeout, 3 s here).
 */
START_TEST(the_stop_probe_resolves_no_name) {
  gm_test_redis *s = gm_test_redis_start();
  gm__redis_stop *stop = gm__redis_stop_new();
  gm__redis_addr addr = {.host = "flaky.gm-test",
                         .port = tcp_port(s),
                         .io_us = 3000000,
                         .stop = stop};
  char err[512];
  gm__redis *r = gm__redis_connect(&addr, err, sizeof err);
  ck_assert_msg(r != NULL, "%s", err);
  atomic_store(&flaky_hangs, 1);
  pid_t pid = gm_test_redis_pid(s);
  ck_assert_int_eq(kill(pid, SIGSTOP), 0);
  wait_job j = {.r = r};
  pthread_t t;
  ck_assert_int_eq(pthread_create(&t, NULL, wait_run, &j), 0);
  gm_test_sleep_ms(50);
  gm__redis_stop_after(stop, 0);
  pthread_join(t, NULL);
  kill(pid, SIGCONT);
  fprintf(stderr,
          "test_redis: a command on a stopped Redis named by a name DNS no "
          "longer answers ended after %ld ms\n",
          j.ms);
  ck_assert_msg(j.ms < 2000, "not cut: the command waited %ld ms", j.ms);
  ck_assert(gm__redis_stopping(stop));
  gm__redis_destroy(&r);
  gm__redis_stop_destroy(&stop);
  gm_test_redis_stop(&s);
}
END_TEST

/*
 * Three stopped Redis servers are probed at once: the stop cuts all of
 * them one probe (0.5 s) into it, not one after another (1.5 s).
 */
START_TEST(stopped_servers_are_probed_at_once) {
  enum { N = 3 };
  gm_test_redis *s[N];
  gm__redis *r[N];
  wait_job j[N];
  pthread_t t[N];
  gm__redis_stop *stop = gm__redis_stop_new();
  for (int i = 0; i < N; i++) {
    s[i] = gm_test_redis_start();
    gm__redis_addr addr = {.unix_path = gm_test_redis_socket(s[i]),
                           .io_us = 5000000,
                           .stop = stop};
    char err[512];
    r[i] = gm__redis_connect(&addr, err, sizeof err);
    ck_assert_msg(r[i] != NULL, "%s", err);
  }
  for (int i = 0; i < N; i++) {
    ck_assert_int_eq(kill(gm_test_redis_pid(s[i]), SIGSTOP), 0);
    j[i] = (wait_job){.r = r[i]};
    ck_assert_int_eq(pthread_create(&t[i], NULL, wait_run, &j[i]), 0);
  }
  gm_test_sleep_ms(50);
  /* The stop's log line, read back from a file standing in for stderr. */
  FILE *log = tmpfile();
  ck_assert_ptr_nonnull(log);
  fflush(stderr);
  int saved = dup(2);
  ck_assert_int_ge(saved, 0);
  ck_assert_int_ge(dup2(fileno(log), 2), 0);
  struct timespec t0;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  gm__redis_stop_after(stop, 0);
  for (int i = 0; i < N; i++) pthread_join(t[i], NULL);
  long ms = ms_since(&t0);
  fflush(stderr);
  dup2(saved, 2);
  close(saved);
  for (int i = 0; i < N; i++) kill(gm_test_redis_pid(s[i]), SIGCONT);
  char said[4096] = "";
  rewind(log);
  size_t got = fread(said, 1, sizeof said - 1, log);
  said[got] = '\0';
  fclose(log);
  fprintf(stderr, "%s", said);
  /* Three servers, each said to be one of them (not "Redis at one and
     others does not answer: cutting its connections to it"). */
  ck_assert_msg(strstr(said, "3 Redis servers do not answer") &&
                    strstr(said, "among them: cutting their 3 connection(s)"),
                "the stop said: %s", said);
  fprintf(stderr,
          "test_redis: %d stopped Redis servers cut %ld ms into the stop\n", N,
          ms);
  ck_assert_msg(ms < 1200, "%d stopped servers cut after %ld ms", N, ms);
  for (int i = 0; i < N; i++) {
    gm__redis_destroy(&r[i]);
    gm_test_redis_stop(&s[i]);
  }
  gm__redis_stop_destroy(&stop);
}
END_TEST

/*
 * A stop made after its parent was forced (the settle lease's release
 * after a second signal) is forced too, as the force would have left it:
 * it says so, and connects nothing.
 */
START_TEST(a_child_of_a_forced_stop_is_born_forced) {
  gm__redis_stop *parent = gm__redis_stop_new();
  gm__redis_stop *before = gm__redis_stop_child(parent);
  ck_assert(!gm__redis_stop_forced(before) && !gm__redis_stopping(before));
  gm__redis_stop_force(parent);
  ck_assert(gm__redis_stop_forced(before) && gm__redis_stopping(before));
  gm__redis_stop *after = gm__redis_stop_child(parent);
  ck_assert_msg(gm__redis_stop_forced(after),
                "a child made after the force is not forced");
  ck_assert(gm__redis_stopping(after));
  char err[512];
  gm__redis_addr addr = {.host = "127.0.0.1", .port = 1, .stop = after};
  gm__redis *r = gm__redis_connect(&addr, err, sizeof err);
  ck_assert_ptr_null(r);
  ck_assert_msg(strstr(err, "gmd is stopping"), "%s", err);
  gm__redis_stop_destroy(&after);
  gm__redis_stop_destroy(&before);
  gm__redis_stop_destroy(&parent);
}
END_TEST

typedef struct {
  gm__cluster *c;
  gm__redis_stop *stop;
  int rc;
  char err[256];
} map_job;

static void *map_run(void *arg) {
  map_job *j = arg;
  j->rc = gm__cluster_refresh(j->c, 5000000, j->stop, j->err, sizeof j->err);
  return NULL;
}

/*
 * A slot-map read's connection is one of the stop's: a stop cuts a read
 * whose node does not answer (its connect under way here, 5 s timeout)
 * at once (before, it was not listed and ran its course).
 */
START_TEST(a_stop_cuts_a_slot_map_read) {
  int port, held[8], nheld;
  int l = blackhole(&port, held, &nheld);
  char seeds[64], err[256];
  snprintf(seeds, sizeof seeds, "127.0.0.1:%d", port);
  map_job j = {.c = gm__cluster_new(seeds, err, sizeof err),
               .stop = gm__redis_stop_new()};
  ck_assert_msg(j.c != NULL, "%s", err);
  pthread_t t;
  struct timespec t0;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  ck_assert_int_eq(pthread_create(&t, NULL, map_run, &j), 0);
  gm_test_sleep_ms(200);
  gm__redis_stop_now(j.stop);
  pthread_join(t, NULL);
  long ms = ms_since(&t0);
  fprintf(stderr, "test_redis: a slot-map read cut %ld ms in: %s\n", ms, j.err);
  ck_assert_int_eq(j.rc, -1);
  ck_assert_msg(ms < 1500, "the read went on %ld ms", ms);
  ck_assert_msg(strstr(j.err, "gmd is stopping"), "%s", j.err);
  for (int i = 0; i < nheld; i++) close(held[i]);
  close(l);
  gm__cluster_destroy(&j.c);
  gm__redis_stop_destroy(&j.stop);
}
END_TEST

/* The server's process id, read with INFO (gm_test_redis_pid would keep
   a shared cluster from later takers). */
static long server_pid(gm_test_redis *r) {
  redisContext *c = gm_test_redis_connect(r);
  redisReply *info = gm_test_redis_cmd(c, "INFO server");
  const char *p = strstr(info->str, "process_id:");
  ck_assert_ptr_nonnull(p);
  long pid = atol(p + strlen("process_id:"));
  freeReplyObject(info);
  redisFree(c);
  return pid;
}

/*
 * The cluster copies' shared cluster (GM_TEST_REDIS_SHARE=1, run here as
 * test_storage_redis_cluster1): a second start in the same case takes the
 * same server back with nothing of the first left (keys, functions, other
 * clients, statistics) and a folder of its own; while taken, or once
 * reconfigured (through gm_test_redis_cmd, or around it until undone), a
 * start gets a server of its own.
 */
START_TEST(fixture_shared_cluster_is_fresh_for_each_taker) {
  gm_test_redis *r = gm_test_redis_start();
  if (!gm_test_redis_shared(
          r)) { /* a plain run, or GM_TEST_REDIS_SHARE unset */
    gm_test_redis_stop(&r);
    return;
  }
  long pid = server_pid(r);
  char dir[128];
  snprintf(dir, sizeof dir, "%s", gm_test_redis_dir(r));
  redisContext *c = gm_test_redis_connect(r);
  freeReplyObject(gm_test_redis_cmd(c, "SET gm:test:left 1"));
  freeReplyObject(gm_test_redis_cmd(
      c, "FUNCTION LOAD %s",
      "#!lua name=gmleft\nredis.register_function('gmleft', function() "
      "return 1 end)"));
  redisContext *idle = gm_test_redis_connect(r);
  /* Taken: a second fixture in the same case is a server of its own. */
  gm_test_redis *other = gm_test_redis_start();
  ck_assert(!gm_test_redis_shared(other));
  ck_assert_int_ne(server_pid(other), pid);
  gm_test_redis_stop(&other);
  redisFree(c);
  gm_test_redis_stop(&r);
  struct stat st;
  ck_assert_int_ne(stat(dir, &st), 0); /* the case's folder went */

  r = gm_test_redis_start();
  ck_assert(gm_test_redis_shared(r));
  ck_assert_int_eq(server_pid(r), pid);
  ck_assert_str_ne(gm_test_redis_dir(r), dir);
  c = gm_test_redis_connect(r);
  ck_assert_int_eq(gm_test_redis_int(c, "DBSIZE"), 0);
  redisReply *libs = gm_test_redis_cmd(c, "FUNCTION LIST");
  ck_assert_int_eq((int)libs->elements, 0);
  freeReplyObject(libs);
  /* The idle client of the first taker was disconnected. */
  redisReply *gone = redisCommand(idle, "PING");
  ck_assert_msg(gone == NULL, "an earlier taker's connection still works");
  redisFree(idle);
  redisReply *stats = gm_test_redis_cmd(c, "INFO commandstats");
  ck_assert_msg(strstr(stats->str, "cmdstat_set:") == NULL,
                "the first taker's SET is still counted: %s", stats->str);
  freeReplyObject(stats);
  /* Reconfigured around gm_test_redis_cmd (nothing marks it): later takers
     get a server of their own until the setting is back. */
  char sock[128];
  snprintf(sock, sizeof sock, "%s", gm_test_redis_socket(r));
  redisReply *set = redisCommand(c, "CONFIG SET notify-keyspace-events KEA");
  ck_assert(set && set->type == REDIS_REPLY_STATUS);
  freeReplyObject(set);
  redisFree(c);
  gm_test_redis_stop(&r);
  r = gm_test_redis_start();
  ck_assert_msg(!gm_test_redis_shared(r),
                "taken with an earlier taker's notify-keyspace-events");
  ck_assert_int_ne(server_pid(r), pid);
  gm_test_redis_stop(&r);
  c = redisConnectUnix(sock);
  ck_assert(c && !c->err);
  set = redisCommand(c, "CONFIG SET notify-keyspace-events %s", "");
  ck_assert(set && set->type == REDIS_REPLY_STATUS);
  freeReplyObject(set);
  redisFree(c);
  r = gm_test_redis_start();
  ck_assert(gm_test_redis_shared(r));
  ck_assert_int_eq(server_pid(r), pid);
  c = gm_test_redis_connect(r);
  /* Reconfigured through gm_test_redis_cmd: later takers get a server of
     their own. */
  freeReplyObject(gm_test_redis_cmd(c, "CONFIG SET maxmemory-samples 6"));
  redisFree(c);
  gm_test_redis_stop(&r);
  r = gm_test_redis_start();
  ck_assert(!gm_test_redis_shared(r));
  ck_assert_int_ne(server_pid(r), pid);
  gm_test_redis_stop(&r);
}
END_TEST

/*
 * The program fixture_shared_node_left_stopped_dies_with_the_program runs
 * (GM_TEST_STOP_NODE_FILE set): its one case takes the shared cluster,
 * writes "<node pid> <case pid>" to that file, stops the node (SIGSTOP) and
 * waits to be killed.
 */
START_TEST(helper_stop_shared_node) {
  gm_test_redis *r = gm_test_redis_start();
  ck_assert(gm_test_redis_shared(r));
  pid_t node = gm_test_redis_pid(r);
  const char *file = getenv("GM_TEST_STOP_NODE_FILE");
  char tmp[256];
  snprintf(tmp, sizeof tmp, "%s.tmp", file);
  FILE *f = fopen(tmp, "w");
  ck_assert_ptr_nonnull(f);
  fprintf(f, "%ld %ld\n", (long)node, (long)getpid());
  fclose(f);
  ck_assert_int_eq(kill(node, SIGSTOP), 0);
  ck_assert_int_eq(rename(tmp, file), 0);
  sleep(60);
}
END_TEST

/* pid has exited (gone, or a zombie not yet reaped). */
static int exited(long pid) {
  char path[64], st[256];
  snprintf(path, sizeof path, "/proc/%ld/stat", pid);
  FILE *f = fopen(path, "r");
  if (!f) return 1;
  size_t n = fread(st, 1, sizeof st - 1, f);
  fclose(f);
  st[n] = '\0';
  const char *paren = strrchr(st, ')');
  return paren && paren[1] == ' ' && (paren[2] == 'Z' || paren[2] == 'X');
}

/*
 * A node of the shared cluster (GM_TEST_REDIS_SHARE=1) that a case left
 * stopped dies when the program is killed (ctest's timeout): its
 * PR_SET_PDEATHSIG signal must be one a stopped process acts on.
 */
START_TEST(fixture_shared_node_left_stopped_dies_with_the_program) {
  char dir[] = "/tmp/gm-stopnode-XXXXXX";
  ck_assert_ptr_nonnull(mkdtemp(dir));
  char file[64];
  snprintf(file, sizeof file, "%s/pids", dir);
  pid_t prog = fork();
  ck_assert_int_ge(prog, 0);
  if (prog == 0) {
    setenv("GM_TEST_REDIS_SHARE", "1", 1);
    setenv("GM_TEST_REDIS_CLUSTER", "1", 1);
    setenv("GM_TEST_STOP_NODE_FILE", file, 1);
    setenv("CK_RUN_CASE", "helper", 1);
    setenv("CK_FORK", "yes", 1);
    int null = open("/dev/null", O_WRONLY);
    if (null >= 0) dup2(null, 1);
    execl("/proc/self/exe", "test_storage_redis", (char *)NULL);
    _exit(127);
  }
  long node = 0, kase = 0;
  for (int i = 0; i < 1500 && node <= 0; i++) {
    FILE *f = fopen(file, "r");
    if (f) {
      if (fscanf(f, "%ld %ld", &node, &kase) != 2) node = 0;
      fclose(f);
    }
    if (node <= 0) usleep(20000);
  }
  kill(prog, SIGKILL);
  waitpid(prog, NULL, 0);
  int gone = 0;
  for (int i = 0; node > 0 && i < 150 && !gone; i++) {
    gone = exited(node);
    if (!gone) usleep(20000);
  }
  if (kase > 0) kill((pid_t)kase, SIGKILL);
  if (node > 0 && !gone) kill((pid_t)node, SIGKILL);
  unlink(file);
  rmdir(dir);
  ck_assert_msg(node > 0,
                "the helper program did not take the shared "
                "cluster within 30 s");
  ck_assert_msg(gone, "the stopped shared node %ld outlived its program", node);
}
END_TEST

START_TEST(fixture_removes_folders_of_dead_tests) {
  pid_t dead = fork();
  if (dead == 0) _exit(0);
  waitpid(dead, NULL, 0);
  char gone[64], kept[64];
  fake_dir(gone, sizeof gone, dead);
  fake_dir(kept, sizeof kept, getpid());
  gm_test_redis *r = gm_test_redis_start();
  struct stat st;
  ck_assert_int_ne(stat(gone, &st), 0);
  ck_assert_int_eq(stat(kept, &st), 0);
  gm_test_redis_stop(&r);
  ck_assert_ptr_null(r);
  char owner[128];
  snprintf(owner, sizeof owner, "%s/owner", kept);
  unlink(owner);
  rmdir(kept);
}
END_TEST

/*
 * GM_TEST_REDIS_CLUSTER=1 (the cluster1 label) gives a one-node cluster
 * that refuses what a real cluster refuses: a command over two slots, and a
 * #!lua script reaching an undeclared key in another slot (what the core's
 * EVAL scripts start with); one slot's keys work, also after a restart.
 * Without it, a plain Redis accepts all of them.
 */
START_TEST(fixture_cluster_mode_refuses_two_slots) {
  const char *env = getenv("GM_TEST_REDIS_CLUSTER");
  int cluster = env && strcmp(env, "1") == 0;
  gm_test_redis *r = gm_test_redis_start();
  gm_test_redis_restart(r);
  redisContext *c = gm_test_redis_connect(r);
  redisReply *m = redisCommand(c, "MSET {a}x 1 {b}y 1");
  ck_assert_ptr_nonnull(m);
  if (cluster) {
    ck_assert_int_eq(m->type, REDIS_REPLY_ERROR);
    ck_assert_msg(strncmp(m->str, "CROSSSLOT", 9) == 0, "%s", m->str);
  } else {
    ck_assert_int_eq(m->type, REDIS_REPLY_STATUS);
  }
  freeReplyObject(m);
  redisReply *e = redisCommand(c, "EVAL %s 1 {a}x",
                               "#!lua\nredis.call('SET', KEYS[1], 2)\n"
                               "return redis.call('SET', '{b}y', 2)");
  ck_assert_ptr_nonnull(e);
  if (cluster) {
    ck_assert_int_eq(e->type, REDIS_REPLY_ERROR);
    ck_assert_msg(strstr(e->str, "do not hash to the same slot") != NULL, "%s",
                  e->str);
  } else {
    ck_assert_int_eq(e->type, REDIS_REPLY_STATUS);
  }
  freeReplyObject(e);
  ck_assert_int_eq(gm_test_redis_int(c, "INCR {a}n"), 1);
  redisFree(c);
  gm_test_redis_stop(&r);
}
END_TEST

/* A key ("k<n>") whose slot the master on `port` serves, as ports[] says;
   n counts on from *next. */
static void key_on(redisContext *c, const int *ports, int port, int *next,
                   char *key, size_t keylen) {
  for (;; (*next)++) {
    snprintf(key, keylen, "k%d", *next);
    redisReply *s = redisCommand(c, "CLUSTER KEYSLOT %s", key);
    ck_assert_ptr_nonnull(s);
    long long slot = s->integer;
    freeReplyObject(s);
    if (ports[slot] == port) {
      (*next)++;
      return;
    }
  }
}

/* The pid of the redis-server on 127.0.0.1:port (INFO server). */
static pid_t node_pid(int port) {
  redisContext *c = redisConnect("127.0.0.1", port);
  ck_assert(c && !c->err);
  redisReply *r = redisCommand(c, "INFO server");
  ck_assert_ptr_nonnull(r);
  const char *p = strstr(r->str, "process_id:");
  ck_assert_ptr_nonnull(p);
  pid_t pid = (pid_t)atol(p + strlen("process_id:"));
  freeReplyObject(r);
  redisFree(c);
  return pid;
}

/*
 * GM_TEST_REDIS_CLUSTER=3 (the cluster3 label) gives three masters sharing
 * the slots: from node 0's socket, gm_test_redis_cmd reaches each key's
 * master (MOVED, and ASK while a slot migrates), KEYS, DBSIZE and INFO see
 * every master; a restart loses the data on every node without AOF and
 * keeps it with AOF; stop ends every node and removes the folders.
 */
static void three_masters(int aof) {
  setenv("GM_TEST_REDIS_CLUSTER", "3", 1);
  gm_test_redis *r = gm_test_redis_start_aof(aof);
  unsetenv("GM_TEST_REDIS_CLUSTER");
  const char *seeds = gm_test_redis_seeds(r);
  ck_assert_ptr_nonnull(seeds);
  redisContext *c = gm_test_redis_connect(r);
  static int ports[16384];
  ck_assert_int_eq(gm_test_redis_slot_ports(c, ports), 0);
  int port[3] = {ports[0], ports[8192], ports[16383]};
  char addr[32];
  for (int m = 0; m < 3; m++) {
    ck_assert_int_ne(port[m], 0);
    ck_assert_int_ne(port[m], port[(m + 1) % 3]);
    snprintf(addr, sizeof addr, "127.0.0.1:%d", port[m]);
    ck_assert_msg(strstr(seeds, addr), "%s is not in %s", addr, seeds);
  }
  pid_t pids[3];
  for (int m = 0; m < 3; m++) pids[m] = node_pid(port[m]);

  /* Two keys on each master, written and read through node 0. */
  char keys[6][16];
  int next = 0;
  for (int k = 0; k < 6; k++) {
    key_on(c, ports, port[k / 2], &next, keys[k], sizeof keys[k]);
    freeReplyObject(gm_test_redis_cmd(c, "SET %s %d", keys[k], k + 10));
    ck_assert_int_eq(gm_test_redis_int(c, "GET %s", keys[k]), k + 10);
  }
  /* Node 0 itself holds only its own: the others answer MOVED to it. */
  redisReply *raw = redisCommand(c, "DBSIZE");
  ck_assert_int_lt(raw->integer, 6);
  freeReplyObject(raw);
  redisReply *all = gm_test_redis_cmd(c, "KEYS k*");
  ck_assert_int_eq(all->elements, 6);
  freeReplyObject(all);
  ck_assert_int_eq(gm_test_redis_int(c, "DBSIZE"), 6);
  redisReply *info = gm_test_redis_cmd(c, "INFO keyspace");
  ck_assert_msg(strstr(info->str, "db0:keys=6,"), "%s", info->str);
  freeReplyObject(info);
  info = gm_test_redis_cmd(c, "INFO commandstats");
  ck_assert_msg(strstr(info->str, "cmdstat_set:calls=6,"), "%s", info->str);
  freeReplyObject(info);
  /* Only counts are summed: a flag of the node itself, the same on every
     master, reads as it is (before the fix cluster_enabled read 3). */
  info = gm_test_redis_cmd(c, "INFO cluster");
  ck_assert_msg(strstr(info->str, "cluster_enabled:1\r\n"), "%s", info->str);
  freeReplyObject(info);

  /* A slot migrating from master 1 to master 2: a key it does not hold
     yet is asked of master 2 (ASK, then ASKING there). */
  char moving[16];
  key_on(c, ports, port[1], &next, moving, sizeof moving);
  redisReply *s = redisCommand(c, "CLUSTER KEYSLOT %s", moving);
  long long slot = s->integer;
  freeReplyObject(s);
  redisContext *from = redisConnect("127.0.0.1", port[1]);
  redisContext *to = redisConnect("127.0.0.1", port[2]);
  redisReply *id = gm_test_redis_cmd(to, "CLUSTER MYID");
  redisReply *fid = gm_test_redis_cmd(from, "CLUSTER MYID");
  freeReplyObject(gm_test_redis_cmd(to, "CLUSTER SETSLOT %lld IMPORTING %s",
                                    slot, fid->str));
  freeReplyObject(gm_test_redis_cmd(from, "CLUSTER SETSLOT %lld MIGRATING %s",
                                    slot, id->str));
  freeReplyObject(gm_test_redis_cmd(c, "SET %s asked", moving));
  freeReplyObject(gm_test_redis_cmd(to, "ASKING"));
  redisReply *v = redisCommand(to, "GET %s", moving);
  ck_assert_int_eq(v->type, REDIS_REPLY_STRING);
  ck_assert_str_eq(v->str, "asked");
  freeReplyObject(v);
  /* Not left on a master that does not own its slot for the restart. */
  freeReplyObject(gm_test_redis_cmd(to, "ASKING"));
  ck_assert_int_eq(gm_test_redis_int(to, "DEL %s", moving), 1);
  freeReplyObject(gm_test_redis_cmd(from, "CLUSTER SETSLOT %lld STABLE", slot));
  freeReplyObject(gm_test_redis_cmd(to, "CLUSTER SETSLOT %lld STABLE", slot));
  freeReplyObject(id);
  freeReplyObject(fid);
  redisFree(from);
  redisFree(to);
  redisFree(c);

  /* Every node restarts: without AOF the data is gone, with it kept. */
  gm_test_redis_restart(r);
  c = gm_test_redis_connect(r);
  ck_assert_int_eq(gm_test_redis_int(c, "DBSIZE"), aof ? 6 : 0);
  for (int k = 0; k < 6 && aof; k++)
    ck_assert_int_eq(gm_test_redis_int(c, "GET %s", keys[k]), k + 10);
  ck_assert_int_eq(gm_test_redis_int(c, "INCR %s", keys[5]), aof ? 16 : 1);
  redisFree(c);
  for (int m = 0; m < 3; m++) pids[m] = node_pid(port[m]);

  char *dir = strdup(gm_test_redis_dir(r));
  gm_test_redis_stop(&r);
  for (int m = 0; m < 3; m++) ck_assert_int_ne(kill(pids[m], 0), 0);
  struct stat st;
  ck_assert_int_ne(stat(dir, &st), 0);
  free(dir);
}

/*
 * A TCP connection to one node of the 3-master fixture is a test's look at
 * that node (gm_test_cluster_connect's, "the entity as node N holds it"):
 * a key that node does not serve must fail the test, not be read on the
 * master MOVED names.  Run as an exit test: the fixture's failure ends the
 * test with 1.  Before the fix gm_test_redis_cmd followed the MOVED and
 * the GET answered the other master's value (exit 0: this test failed).
 * Every check before that call exits 2, so only the fixture's refusal
 * passes.
 */
START_TEST(fixture_tcp_connection_reads_only_its_node) {
  setenv("GM_TEST_REDIS_CLUSTER", "3", 1);
  gm_test_redis *r = gm_test_redis_start();
  unsetenv("GM_TEST_REDIS_CLUSTER");
  redisContext *c = gm_test_redis_connect(r);
  static int ports[16384];
  if (gm_test_redis_slot_ports(c, ports) != 0) _exit(2);
  char key[16];
  int next = 0, other = ports[0] == ports[16383] ? ports[8192] : ports[16383];
  if (other == ports[0]) _exit(2);
  key_on(c, ports, ports[0], &next, key, sizeof key);
  freeReplyObject(gm_test_redis_cmd(c, "SET %s on-its-master", key));
  /* The folder this test leaves (it ends in the fixture's failure) goes at
     the next start: an owner file older than 10 minutes, its pid gone. */
  char *owner = gm_test_redis_path(r, "owner");
  struct timeval old[2] = {{time(NULL) - 3600, 0}, {time(NULL) - 3600, 0}};
  if (utimes(owner, old) != 0) _exit(2);
  free(owner);
  redisContext *one = redisConnect("127.0.0.1", other);
  if (!one || one->err) _exit(2);
  redisReply *v = gm_test_redis_cmd(one, "GET %s", key);
  fprintf(stderr, "node on port %d answered GET %s (type %d) of port %d\n",
          other, key, v->type, ports[0]);
  freeReplyObject(v);
  redisFree(one);
  redisFree(c);
  gm_test_redis_stop(&r);
}
END_TEST

START_TEST(fixture_three_masters_route_and_merge) {
  three_masters(0);
}
END_TEST

START_TEST(fixture_three_masters_keep_aof_data_over_a_restart) {
  three_masters(1);
}
END_TEST

int main(void) {
  if (getenv("GM_TEST_STOP_NODE_FILE")) {
    /* The program fixture_shared_node_left_stopped_dies_with_the_program
       starts and kills. */
    Suite *s = suite_create("storage_redis_helper");
    TCase *h = tcase_create("helper");
    tcase_set_timeout(h, 120);
    tcase_add_test(h, helper_stop_shared_node);
    suite_add_tcase(s, h);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_SILENT);
    srunner_free(sr);
    return EXIT_SUCCESS;
  }
  Suite *s = suite_create("storage_redis");
  TCase *tc = tcase_create("scripts");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, emit_reaches_outbox_and_registry);
  tcase_add_test(tc, reject_gives_status_and_message);
  tcase_add_test(tc, idempotent_retry_returns_first_reply);
  tcase_add_test(tc, multi_step_call_replays_step_by_step);
  tcase_add_test(tc, idempotency_is_per_participant);
  tcase_add_test(tc, unstored_reject_and_unstored_runtime_error);
  tcase_add_test(tc, reply_tree_converts);
  tcase_add_test(tc, syntax_error_refused_with_lua_message);
  tcase_add_test(tc, library_after_flush_is_recovered);
  tcase_add_test(tc, calls_share_no_state);
  tcase_add_test(tc, lib_is_made_once_per_load);
  tcase_add_test(tc, host_methods_are_not_the_scripts);
  tcase_add_test(tc, any_script_name_loads);
  tcase_add_test(tc, script_added_after_first_call_runs);
  tcase_add_test(tc, restart_is_recovered);
  tcase_add_test(tc, unreachable_is_unavailable);
  tcase_add_test(tc, bounds_and_tags_refused);
  tcase_add_test(tc, threads_share_registry);
  tcase_add_test(tc, pipelined_calls_share_round_trips);
  tcase_add_test(tc, pipelined_function_flush_is_recovered);
  tcase_add_test(tc, pipelined_restart_is_recovered);
  tcase_add_test(tc, pipelined_unreachable_is_unavailable);
  tcase_add_test(tc, pipelined_outage_buffers_nothing);
  tcase_add_test(tc, pipelined_stalled_redis_fails_waiters);
  tcase_add_test(tc, auth_on_reconnect_is_bounded_and_named);
  tcase_add_test(tc, a_password_file_read_names_what_is_wrong);
  tcase_add_test(tc, key_reused_for_another_request_is_refused);
  tcase_add_test(tc, pipelined_big_replies_reach_their_calls);
  tcase_add_test(tc, pipelined_unreadable_reply_fails_only_its_call);
  tcase_add_test(tc, half_read_reply_stays_with_its_arena);
  tcase_add_test(tc, emit_refuses_host_field_names);
  tcase_add_test(tc, deadlines_are_set_with_the_entity);
  tcase_add_test(tc, refused_runs_leave_no_deadline);
  tcase_add_test(tc, deadline_misuse_is_refused);
  tcase_add_test(tc, pipelined_index_update_is_not_waited_for);
  tcase_add_test(tc, a_no_wait_command_cut_by_a_stop_is_no_error);
  tcase_add_test(tc, a_stop_ends_a_connect_under_way);
  suite_add_tcase(s, tc);
  TCase *st = tcase_create("stopping");
  tcase_set_timeout(st, 60);
  tcase_add_test(st, a_name_in_the_hosts_file_still_connects);
  tcase_add_test(st, a_refused_address_of_a_name_is_passed_over);
  tcase_add_test(st, a_hanging_name_lookup_ends_at_the_connect_timeout);
  tcase_add_test(st, a_stop_gives_up_a_hanging_name_lookup);
  tcase_add_test(st, the_stop_probe_resolves_no_name);
  tcase_add_test(st, stopped_servers_are_probed_at_once);
  tcase_add_test(st, a_stop_cuts_a_slot_map_read);
  tcase_add_test(st, a_child_of_a_forced_stop_is_born_forced);
  suite_add_tcase(s, st);
  TCase *fx = tcase_create("fixture");
  tcase_set_timeout(fx, 60);
  tcase_add_test(fx, fixture_removes_folders_of_dead_tests);
  tcase_add_test(fx, fixture_shared_cluster_is_fresh_for_each_taker);
  tcase_add_test(fx, fixture_shared_node_left_stopped_dies_with_the_program);
  tcase_add_test(fx, fixture_cluster_mode_refuses_two_slots);
  tcase_add_exit_test(fx, fixture_tcp_connection_reads_only_its_node, 1);
  tcase_add_test(fx, fixture_three_masters_route_and_merge);
  tcase_add_test(fx, fixture_three_masters_keep_aof_data_over_a_restart);
  suite_add_tcase(s, fx);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
