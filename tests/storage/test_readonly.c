/*
 * Read-only scripts (GM_SCRIPT_READ_ONLY: no-writes functions run by
 * FCALL_RO) and Redis over maxmemory, against a real redis-server.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "call.h"
#include "fiber.h"
#include "redis.h"
#include "redis_fill.h"
#include "redis_fixture.h"
#include "script_fixture.h"

static void add(const char *name, const char *lua, unsigned flags) {
  char err[1024];
  gm_status st = gm__scripts_add_flags(conn, "mkt", name, NULL, lua, flags, err,
                                       sizeof err);
  ck_assert_msg(st == GM_OK, "registering %s: %s", name, err);
}

/* Runs mkt.<name> on tag "t" with key "v" and one argument. */
static gm_status run(gm_call *call, const char *name, const char *arg,
                     const gm_value **reply) {
  const char *keys[] = {"v"};
  const char *args[] = {arg};
  return gm__script_run(call, "mkt", name, "t", 1, keys, 1, args, reply);
}

/* Keys of the tag matching `pattern` after "gm:{mkt:t}:". */
static long long count_keys(const char *pattern) {
  redisReply *r = gm_test_redis_cmd(raw, "KEYS gm:{mkt:t}:%s", pattern);
  long long n = (long long)r->elements;
  freeReplyObject(r);
  return n;
}

/* How many strings of the reply tree equal s. */
static int count_str(const redisReply *r, const char *s) {
  if (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS)
    return strcmp(r->str, s) == 0;
  int n = 0;
  if (r->type == REDIS_REPLY_ARRAY)
    for (size_t i = 0; i < r->elements; i++) n += count_str(r->element[i], s);
  return n;
}

static const char peek_lua[] =
    "return {redis.call('GET', KEYS[1]) or false, ARGV[1]}\n";
static const char put_lua[] =
    "redis.call('SET', KEYS[1], ARGV[1])\n"
    "gm.emit('put', 'v', ARGV[1])\n"
    "return 1\n";

static void add_peek_put(void) {
  add("peek", peek_lua, GM_SCRIPT_READ_ONLY);
  add("put", put_lua, 0);
}

START_TEST(read_only_read_answers_and_stores_nothing) {
  add_peek_put();
  gm_call w = call_as("alice", "k1");
  const gm_value *v = NULL;
  ck_assert_int_eq(run(&w, "put", "one", &v), GM_OK);
  gm_call c = call_as("alice", "");
  ck_assert_int_eq(run(&c, "peek", "x", &v), GM_OK);
  ck_assert_int_eq(v->type, GM_VALUE_ARRAY);
  ck_assert_str_eq(v->items[0].str, "one");
  ck_assert_str_eq(v->items[1].str, "x");
  /* The put's record only: a read stores nothing. */
  ck_assert_int_eq(count_keys("idem:*"), 1);
  /* peek's function, and only it, is flagged no-writes in Redis. */
  redisReply *r = gm_test_redis_cmd(raw, "FUNCTION LIST");
  ck_assert_int_eq(count_str(r, "no-writes"), 1);
  freeReplyObject(r);
}
END_TEST

/* In a mutating call a read-only step keeps its reply under the step's
   record like any step: a retry replays it, even after the data changed. */
START_TEST(read_only_step_of_mutating_call_replays) {
  add_peek_put();
  freeReplyObject(gm_test_redis_cmd(raw, "SET gm:{mkt:t}:v first"));
  gm_call c = call_as("alice", "key-1");
  const gm_value *v = NULL;
  ck_assert_int_eq(run(&c, "peek", "a", &v), GM_OK);
  ck_assert_str_eq(v->items[0].str, "first");
  ck_assert_int_eq(count_keys("idem:alice:peek:key-1"), 1);
  long long ttl =
      gm_test_redis_int(raw, "TTL gm:{mkt:t}:idem:alice:peek:key-1");
  ck_assert(ttl > 0 && ttl <= 86400);

  freeReplyObject(gm_test_redis_cmd(raw, "SET gm:{mkt:t}:v second"));
  gm_call again = call_as("alice", "key-1");
  ck_assert_int_eq(run(&again, "peek", "a", &v), GM_OK);
  ck_assert_str_eq(v->items[0].str, "first"); /* replayed */
  /* Another key reads afresh. */
  gm_call other = call_as("alice", "key-2");
  ck_assert_int_eq(run(&other, "peek", "a", &v), GM_OK);
  ck_assert_str_eq(v->items[0].str, "second");

  /* A second step of the same call has a record of its own. */
  gm_call two = call_as("bob", "key-3");
  ck_assert_int_eq(run(&two, "peek", "a", &v), GM_OK);
  ck_assert_int_eq(run(&two, "put", "third", &v), GM_OK);
  ck_assert_int_eq(run(&two, "peek", "b", &v), GM_OK);
  ck_assert_str_eq(v->items[0].str, "third");
  ck_assert_int_eq(count_keys("idem:bob:*"), 3);
}
END_TEST

/* A refused read-only step stores nothing, as any refusal. */
START_TEST(read_only_refusal_is_not_stored) {
  add("nope", "return gm.reject('NOT_FOUND', 'no ' .. ARGV[1])\n",
      GM_SCRIPT_READ_ONLY);
  gm_call c = call_as("alice", "key-1");
  const gm_value *v = NULL;
  ck_assert_int_eq(run(&c, "nope", "thing", &v), GM_NOT_FOUND);
  ck_assert_str_eq(c.message, "no thing");
  ck_assert_int_eq(count_keys("idem:*"), 0);
}
END_TEST

/* A script flagged read-only that writes is a plugin bug: INTERNAL with a
   message naming it, nothing written, with or without a key. */
START_TEST(read_only_script_that_writes_is_refused) {
  add("badset", "redis.call('SET', KEYS[1], 'x')\nreturn 1\n",
      GM_SCRIPT_READ_ONLY);
  add("bademit", "gm.emit('x', 'a', 'b')\nreturn 1\n", GM_SCRIPT_READ_ONLY);
  add("baddl", "gm.deadline('close', 'a', 5)\nreturn 1\n", GM_SCRIPT_READ_ONLY);
  const char *names[] = {"badset", "bademit", "baddl"};
  const char *idems[] = {"", "key-1"};
  for (size_t i = 0; i < 3; i++)
    for (size_t k = 0; k < 2; k++) {
      gm_call c = call_as("alice", idems[k]);
      const gm_value *v = (const gm_value *)1;
      ck_assert_int_eq(run(&c, names[i], "a", &v), GM_INTERNAL);
      ck_assert_ptr_null(v);
      ck_assert_msg(strstr(c.message,
                           "registered read-only but tried to "
                           "write") != NULL,
                    "%s: %s", names[i], c.message);
      ck_assert_ptr_nonnull(strstr(c.message, names[i]));
    }
  /* Nothing at all on the tag: no value, outbox, deadline or record. */
  ck_assert_int_eq(count_keys("*"), 0);
}
END_TEST

START_TEST(unknown_flags_are_refused) {
  char err[512];
  ck_assert_int_eq(gm__scripts_add_flags(conn, "mkt", "odd", NULL, "return 1",
                                         0x10, err, sizeof err),
                   GM_INVALID_ARGUMENT);
  ck_assert_ptr_nonnull(strstr(err, "unknown flags"));
  ck_assert_ptr_nonnull(strstr(err, "GM_SCRIPT_READ_ONLY"));
}
END_TEST

/* The library gone (flush, new Redis): FCALL_RO gets "Function not found"
   too, and the host loads the library and runs the read. */
START_TEST(read_only_after_function_flush) {
  add_peek_put();
  gm_call c = call_as("alice", "");
  const gm_value *v = NULL;
  ck_assert_int_eq(run(&c, "peek", "a", &v), GM_OK);
  redisReply *r = gm_test_redis_cmd(raw, "FUNCTION FLUSH");
  freeReplyObject(r);
  ck_assert_int_eq(run(&c, "peek", "b", &v), GM_OK);
  ck_assert_str_eq(v->items[1].str, "b");
}
END_TEST

START_TEST(over_maxmemory_reads_answer_writes_are_refused) {
  add_peek_put();
  gm_call w = call_as("alice", "k1");
  const gm_value *v = NULL;
  ck_assert_int_eq(run(&w, "put", "before", &v), GM_OK);
  long filled = gm_test_redis_fill(raw);
  ck_assert(filled > 0);
  long long keys = gm_test_redis_keys_but_leases(raw);

  gm_call c = call_as("alice", "");
  ck_assert_int_eq(run(&c, "peek", "a", &v), GM_OK);
  ck_assert_str_eq(v->items[0].str, "before");

  gm_call w2 = call_as("alice", "k2");
  ck_assert_int_eq(run(&w2, "put", "after", &v), GM_RESOURCE_EXHAUSTED);
  ck_assert_ptr_nonnull(strstr(w2.message, "out of memory"));
  ck_assert_ptr_nonnull(strstr(w2.message, "raise maxmemory or free keys"));
  /* A read step of a mutating call is refused too (its record cannot be
     stored), and leaves nothing. */
  gm_call w3 = call_as("alice", "k3");
  ck_assert_int_eq(run(&w3, "peek", "a", &v), GM_RESOURCE_EXHAUSTED);
  ck_assert_int_eq(gm_test_redis_keys_but_leases(raw), keys);
  redisReply *r = gm_test_redis_cmd(raw, "GET gm:{mkt:t}:v");
  ck_assert_str_eq(r->str, "before");
  freeReplyObject(r);
  ck_assert_int_eq(gm_test_redis_int(raw, "XLEN gm:{mkt:t}:outbox"), 1);

  /* Room again: the same key goes through. */
  r = gm_test_redis_cmd(raw, "CONFIG SET maxmemory 0");
  freeReplyObject(r);
  gm_call w4 = call_as("alice", "k2");
  ck_assert_int_eq(run(&w4, "put", "after", &v), GM_OK);
}
END_TEST

/* A script flagged GM_SCRIPT_ALLOW_OOM (one that frees) runs over
   maxmemory in a mutating call, storing no reply, and is loaded
   allow-oom; the plain write beside it is still refused. */
static const char drop_lua[] = "return redis.call('DEL', KEYS[1])\n";

START_TEST(over_maxmemory_a_freeing_script_runs) {
  add_peek_put();
  add("drop", drop_lua, GM_SCRIPT_ALLOW_OOM);
  /* Both flags: read-only (no-writes), not allow-oom. */
  add("peek2", peek_lua, GM_SCRIPT_READ_ONLY | GM_SCRIPT_ALLOW_OOM);
  gm_call w = call_as("alice", "k1");
  const gm_value *v = NULL;
  ck_assert_int_eq(run(&w, "put", "before", &v), GM_OK);
  redisReply *lib = gm_test_redis_cmd(raw, "FUNCTION LIST WITHCODE");
  ck_assert_int_eq(count_str(lib, "allow-oom"), 1);
  ck_assert_int_eq(count_str(lib, "no-writes"), 2);
  freeReplyObject(lib);
  ck_assert(gm_test_redis_fill(raw) > 0);

  gm_call w2 = call_as("alice", "k2");
  ck_assert_int_eq(run(&w2, "put", "after", &v), GM_RESOURCE_EXHAUSTED);
  ck_assert_ptr_nonnull(strstr(w2.message, "raise maxmemory or free keys"));
  gm_call d = call_as("alice", "k3");
  ck_assert_int_eq(run(&d, "drop", "", &v), GM_OK);
  ck_assert_int_eq(v->integer, 1);
  ck_assert_int_eq(count_keys("v"), 0);
  /* It stored no reply (nothing but what it freed changed): the same key
     runs it again, and finds nothing left to delete. */
  ck_assert_int_eq(count_keys("idem:*"), 1); /* put's, before */
  gm_call d2 = call_as("alice", "k3");
  ck_assert_int_eq(run(&d2, "drop", "", &v), GM_OK);
  ck_assert_int_eq(v->integer, 0);
  /* Still full: the plain write is still refused. */
  gm_call w3 = call_as("alice", "k4");
  ck_assert_int_eq(run(&w3, "put", "after", &v), GM_RESOURCE_EXHAUSTED);
  freeReplyObject(gm_test_redis_cmd(raw, "CONFIG SET maxmemory 0"));
}
END_TEST

/* Over maxmemory with the library not loaded (a flushed or new Redis):
   FUNCTION LOAD is refused too, and the call says Redis is out of memory. */
START_TEST(over_maxmemory_without_library_says_so) {
  add_peek_put();
  gm_test_redis_fill(raw);
  gm_call c = call_as("alice", "");
  const gm_value *v = NULL;
  ck_assert_int_eq(run(&c, "peek", "a", &v), GM_RESOURCE_EXHAUSTED);
  ck_assert_ptr_nonnull(strstr(c.message, "out of memory"));
  /* A read was refused here: the message must not say reads answer, and
     says why this one did not run. */
  ck_assert_msg(strstr(c.message, "reads still answer") == NULL, "%s",
                c.message);
  ck_assert_msg(strstr(c.message, "could not load") != NULL, "%s", c.message);
  ck_assert_ptr_nonnull(strstr(c.message, "raise maxmemory or free keys"));
}
END_TEST

/* A write step whose first send ran in Redis but whose reply was lost (a
   read timeout here), resent and refused by OOM (that first run took Redis
   over maxmemory): the step wrote and stored its record, so the read
   step's record before it must stay, and a retry must replay both. */
START_TEST(oom_after_a_resend_keeps_the_read_records) {
  add("peek", peek_lua, GM_SCRIPT_READ_ONLY);
  /* Writes v and 2 MiB elsewhere, then holds Redis for 1.5 s (past the
     1 s read timeout below, and within two of them): its reply is lost, the
     host sends it again, and by then Redis is over maxmemory. */
  add("fat",
      "redis.call('SET', KEYS[1], 'changed')\n"
      "redis.call('SET', KEYS[1] .. ':fat', string.rep('x', 2097152))\n"
      "local t = redis.call('TIME')\n"
      "local t0 = t[1] * 1000000 + t[2]\n"
      "repeat t = redis.call('TIME') until t[1] * 1000000 + t[2] - t0 >= "
      "1500000\n"
      "return 1\n",
      0);
  freeReplyObject(gm_test_redis_cmd(raw, "SET gm:{mkt:t}:v first"));
  const gm_value *v = NULL;
  gm_call warm = call_as("alice", ""); /* the library loaded */
  ck_assert_int_eq(run(&warm, "peek", "a", &v), GM_OK);
  freeReplyObject(gm_test_redis_cmd(raw, "CONFIG SET maxmemory %lld",
                                    gm_test_redis_used(raw) + (1 << 20)));

  gm_call c = call_as("alice", "k1");
  ck_assert_int_eq(run(&c, "peek", "a", &v), GM_OK);
  ck_assert_str_eq(v->items[0].str, "first");
  gm__redis_set_timeouts(conn, 0, 1000000);
  ck_assert_int_eq(run(&c, "fat", "b", &v), GM_RESOURCE_EXHAUSTED);
  gm__redis_set_timeouts(conn, 0, 5000000);
  /* Not "refused before running it": the first send may have run. */
  ck_assert_msg(strstr(c.message, "may have run") != NULL, "%s", c.message);
  ck_assert_ptr_nonnull(strstr(c.message, "raise maxmemory or free keys"));
  redisReply *r = gm_test_redis_cmd(raw, "GET gm:{mkt:t}:v");
  ck_assert_str_eq(r->str, "changed"); /* the first send ran */
  freeReplyObject(r);
  gm__scripts_forget_reads(&c);
  gm__redis_flush(conn);
  ck_assert_int_eq(count_keys("idem:alice:*:k1*"), 2);

  /* The retry replays what the first attempt read and did. */
  freeReplyObject(gm_test_redis_cmd(raw, "CONFIG SET maxmemory 0"));
  gm_call again = call_as("alice", "k1");
  ck_assert_int_eq(run(&again, "peek", "a", &v), GM_OK);
  ck_assert_str_eq(v->items[0].str, "first");
  ck_assert_int_eq(run(&again, "fat", "b", &v), GM_OK);
}
END_TEST

/* With [redis] cluster_wait_replicas, a mutating call is answered only
   once a replica has its writes: a read-only step's record is one (a
   failover that lost it would make a retry read afresh and may answer
   otherwise).  This Redis has no replica, so WAIT finds none.  A read
   method stores nothing and waits for nothing. */
START_TEST(read_only_step_record_waits_for_a_replica) {
  add_peek_put();
  const gm_value *v = NULL;
  gm__scripts_set_wait_replicas(100);
  gm_call c = call_as("alice", "k1");
  gm_status st = run(&c, "peek", "a", &v);
  gm_call q = call_as("alice", "");
  gm_status qst = run(&q, "peek", "a", &v);
  gm__scripts_set_wait_replicas(0);
  ck_assert_int_eq(st, GM_UNAVAILABLE);
  ck_assert_ptr_nonnull(strstr(c.message, "not yet on a replica"));
  ck_assert_int_eq(qst, GM_OK);
}
END_TEST

/* Where the fiber of a refused request stood right after
   gm__scripts_forget_reads: the worker sends the reply then. */
typedef struct forget_job {
  gm_call call;
  gm_status st;
  long long left; /* the request's records in Redis at that moment */
} forget_job;

static void forget_job_run(void *arg) {
  forget_job *j = arg;
  const gm_value *v = NULL;
  j->st = run(&j->call, "peek", "a", &v);
  gm__scripts_forget_reads(&j->call);
  j->left = count_keys("idem:alice:*:k1*");
}

/* On a worker's pipelined connection the records are gone before the
   refusal is answered: a retry sent on receiving it reads afresh, instead
   of replaying a record an UNLINK still queued then removes under it. */
START_TEST(read_records_are_gone_before_the_refusal_is_answered) {
  add_peek_put();
  forget_job j = {.call = call_as("alice", "k1"), .left = -1};
  gm__redis_set_pipelined(conn, 1);
  gm__fiber *f = gm__fiber_new(128 * 1024);
  ck_assert_ptr_nonnull(f);
  gm__fiber_start(f, forget_job_run, &j);
  while (gm__redis_waiting(conn)) gm__redis_flush(conn);
  gm__fiber_destroy(&f);
  gm__redis_set_pipelined(conn, 0);
  ck_assert_int_eq(j.st, GM_OK);
  ck_assert_int_eq(j.left, 0);
}
END_TEST

/* Open problem 9: a call refused with only read-only records stored has
   them unlinked; a call with a step that wrote (or may have) keeps them. */
START_TEST(refused_call_forgets_only_read_records) {
  add_peek_put();
  add("nope", "return gm.reject('FAILED_PRECONDITION', 'not now')\n", 0);
  add("boom", "redis.call('SET', KEYS[1], 'half')\nerror('boom')\n", 0);
  const gm_value *v = NULL;

  /* read, read, refused write: both reads' records go. */
  gm_call c = call_as("alice", "k1");
  ck_assert_int_eq(run(&c, "peek", "a", &v), GM_OK);
  ck_assert_int_eq(run(&c, "peek", "b", &v), GM_OK);
  ck_assert_int_eq(run(&c, "nope", "c", &v), GM_FAILED_PRECONDITION);
  ck_assert_int_eq(count_keys("idem:alice:*:k1*"), 2);
  gm__scripts_forget_reads(&c);
  gm__redis_flush(conn);
  ck_assert_int_eq(count_keys("idem:alice:*:k1*"), 0);

  /* Refused by the handler after a read (no other step). */
  gm_call h = call_as("alice", "k2");
  ck_assert_int_eq(run(&h, "peek", "a", &v), GM_OK);
  gm__scripts_forget_reads(&h);
  gm__redis_flush(conn);
  ck_assert_int_eq(count_keys("idem:alice:*:k2*"), 0);

  /* A write step stored its reply: the read before it must replay. */
  gm_call w = call_as("alice", "k3");
  ck_assert_int_eq(run(&w, "peek", "a", &v), GM_OK);
  ck_assert_int_eq(run(&w, "put", "x", &v), GM_OK);
  ck_assert_int_eq(run(&w, "nope", "c", &v), GM_FAILED_PRECONDITION);
  gm__scripts_forget_reads(&w);
  gm__redis_flush(conn);
  ck_assert_int_eq(count_keys("idem:alice:*:k3*"), 2);

  /* A runtime error may have written half: the records stay. */
  gm_call e = call_as("alice", "k4");
  ck_assert_int_eq(run(&e, "peek", "a", &v), GM_OK);
  ck_assert_int_eq(run(&e, "boom", "c", &v), GM_INTERNAL);
  gm__scripts_forget_reads(&e);
  gm__redis_flush(conn);
  ck_assert_int_eq(count_keys("idem:alice:*:k4*"), 1);
}
END_TEST

/* The host wraps a read-only step's reply once on its way back, as it
   wraps a run that emits: the reply a plain run may return at the limit
   hiredis reads (tests/storage/test_redis.c) is one level too deep there,
   refused with the reason; one level less passes. */
START_TEST(read_only_step_reply_nests_one_level_less) {
  add("deep", "return {{{{{{{{1}}}}}}}}\n", GM_SCRIPT_READ_ONLY);
  add("less", "return {{{{{{{1}}}}}}}\n", GM_SCRIPT_READ_ONLY);
  const gm_value *v = NULL;
  gm_call q = call_as("alice", ""); /* a read method: not wrapped */
  ck_assert_int_eq(run(&q, "deep", "a", &v), GM_OK);
  gm_call r = call_as("alice", "k1");
  ck_assert_int_eq(run(&r, "deep", "a", &v), GM_INTERNAL);
  ck_assert_ptr_nonnull(strstr(r.message, "nested deeper than"));
  gm_call c = call_as("alice", "k2");
  ck_assert_int_eq(run(&c, "less", "a", &v), GM_OK);
  for (int d = 0; d < 7; d++) {
    ck_assert_int_eq(v->type, GM_VALUE_ARRAY);
    v = &v->items[0];
  }
  ck_assert_int_eq(v->integer, 1);
}
END_TEST

/* A read-only step of a mutating call stores its record through gm__store
   with the request's fingerprint: another request with the key is refused
   there too. */
START_TEST(read_step_record_keeps_the_fingerprint) {
  add_peek_put();
  const gm_value *v;
  gm_call c = call_as("rita", "rk-1");
  c.request_fp = 0xabcdef012345ull;
  ck_assert_int_eq(run(&c, "peek", "a", &v), GM_OK);
  gm_call same = call_as("rita", "rk-1");
  same.request_fp = 0xabcdef012345ull;
  ck_assert_int_eq(run(&same, "peek", "b", &v), GM_OK);
  ck_assert_str_eq(v->items[1].str, "a"); /* the first reply */
  gm_call other = call_as("rita", "rk-1");
  other.request_fp = 0xabcdef012346ull;
  ck_assert_int_eq(run(&other, "peek", "c", &v), GM_INVALID_ARGUMENT);
  ck_assert_msg(strstr(other.message, "first used for a different request"),
                "%s", other.message);
}
END_TEST

typedef struct peek_job {
  gm_call call;
  const char *arg;
  gm_status st;
} peek_job;

static void peek_job_run(void *p) {
  peek_job *j = p;
  const gm_value *v;
  j->st = run(&j->call, "peek", j->arg, &v);
}

/* Two requests with one key in one pipeline, both past FCALL_RO before
   either stores: the second's gm__store finds the first's record and is
   refused, and forgetting its read records leaves the first's record. */
START_TEST(refused_reuse_keeps_the_other_request_record) {
  add_peek_put();
  peek_job a = {.call = call_as("rita", "rk-2"), .arg = "a"};
  peek_job b = {.call = call_as("rita", "rk-2"), .arg = "b"};
  a.call.request_fp = 0x111;
  b.call.request_fp = 0x222;
  gm__redis_set_pipelined(conn, 1);
  gm__fiber *fa = gm__fiber_new(128 * 1024), *fb = gm__fiber_new(128 * 1024);
  gm__fiber_start(fa, peek_job_run, &a);
  gm__fiber_start(fb, peek_job_run, &b);
  for (int rounds = 0; gm__redis_waiting(conn) && rounds < 10; rounds++)
    gm__redis_flush(conn);
  gm__fiber_destroy(&fa);
  gm__fiber_destroy(&fb);
  gm__redis_set_pipelined(conn, 0);
  ck_assert_int_eq(a.st, GM_OK);
  ck_assert_int_eq(b.st, GM_INVALID_ARGUMENT);
  gm__scripts_forget_reads(&b.call);
  ck_assert_int_eq(count_keys("idem:rita:peek:rk-2"), 1);
}
END_TEST

static Suite *suite(void) {
  Suite *s = suite_create("readonly");
  TCase *tc = tcase_create("readonly");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, read_step_record_keeps_the_fingerprint);
  tcase_add_test(tc, refused_reuse_keeps_the_other_request_record);
  tcase_add_test(tc, read_only_read_answers_and_stores_nothing);
  tcase_add_test(tc, read_only_step_of_mutating_call_replays);
  tcase_add_test(tc, read_only_refusal_is_not_stored);
  tcase_add_test(tc, read_only_script_that_writes_is_refused);
  tcase_add_test(tc, unknown_flags_are_refused);
  tcase_add_test(tc, read_only_after_function_flush);
  tcase_add_test(tc, read_records_are_gone_before_the_refusal_is_answered);
  tcase_add_test(tc, read_only_step_record_waits_for_a_replica);
  tcase_add_test(tc, refused_call_forgets_only_read_records);
  tcase_add_test(tc, read_only_step_reply_nests_one_level_less);
  /* Last: they set maxmemory, after which no later case of the cluster1
     copy could take the program's shared cluster (GM_TEST_REDIS_SHARE):
     each would start a cluster of its own, about 2 s. */
  tcase_add_test(tc, over_maxmemory_reads_answer_writes_are_refused);
  tcase_add_test(tc, over_maxmemory_without_library_says_so);
  tcase_add_test(tc, over_maxmemory_a_freeing_script_runs);
  tcase_add_test(tc, oom_after_a_resend_keeps_the_read_records);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  SRunner *sr = srunner_create(suite());
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
