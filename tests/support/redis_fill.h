/*
 * Fills a test's redis-server up to its maxmemory: sets maxmemory 1 MiB
 * above what the server holds now, then writes 64 KiB values (keys
 * "fill:<n>") until Redis refuses one with OOM, then sets maxmemory 1 MiB
 * below what it holds, so that the few bytes Redis frees by itself (a
 * client's query buffer) cannot take it back under: it stays full until
 * the test sets maxmemory again.  Returns the keys written; aborts the
 * test when Redis never refuses (maxmemory not enforced).
 * Header-only: tests/storage/test_readonly.c and the markets' OOM tests.
 */
#ifndef GM_TEST_REDIS_FILL_H
#define GM_TEST_REDIS_FILL_H

#include <check.h>
#include <hiredis/hiredis.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "redis_fixture.h"

/* What the server holds (MEMORY STATS total.allocated), in bytes. */
static inline long long gm_test_redis_used(redisContext *c) {
  redisReply *r = gm_test_redis_cmd(c, "MEMORY STATS");
  long long used = 0;
  for (size_t i = 0; i + 1 < r->elements; i += 2)
    if (r->element[i]->type == REDIS_REPLY_STRING &&
        !strcmp(r->element[i]->str, "total.allocated"))
      used = r->element[i + 1]->integer;
  freeReplyObject(r);
  ck_assert_msg(used > 0, "MEMORY STATS has no total.allocated");
  return used;
}

static inline long gm_test_redis_fill(redisContext *c) {
  freeReplyObject(gm_test_redis_cmd(c, "CONFIG SET maxmemory %lld",
                                    gm_test_redis_used(c) + (1 << 20)));
  static char blob[65536];
  memset(blob, 'f', sizeof blob - 1);
  for (long n = 0; n < 1000; n++) {
    redisReply *r = redisCommand(c, "SET fill:%ld %s", n, blob);
    ck_assert_msg(r != NULL, "Redis went away while being filled");
    int oom = r->type == REDIS_REPLY_ERROR && !strncmp(r->str, "OOM ", 4);
    freeReplyObject(r);
    if (oom) {
      freeReplyObject(gm_test_redis_cmd(c, "CONFIG SET maxmemory %lld",
                                        gm_test_redis_used(c) - (1 << 20)));
      return n;
    }
  }
  ck_abort_msg("Redis never refused a write: maxmemory is not enforced");
  return 0;
}

/*
 * The keys Redis holds but the brokers' own bookkeeping: a refused write
 * must add no key, but four are written over maxmemory on purpose
 * (allow-oom, core/deadlines.c and core/lease.h), so DBSIZE alone moves
 * when one comes between two counts: the deadlines' reconciliation lease
 * (gm:deadlines:reconcile, taken for reconcile_s and let lapse between
 * walks), the settle lease and its book of record's mark
 * (gm:{settle}:book, made at the settler's first commit), and a tag's
 * deadline claims hash
 * (gm:{<tag>}:dl:claims, made by the first claim of a firing, e.g. a
 * referral's index sync).  One Redis (a one-node cluster included).
 */
static inline long long gm_test_redis_keys_but_leases(redisContext *c) {
  redisReply *r = gm_test_redis_cmd(c, "KEYS *:dl:claims");
  long long claims = (long long)r->elements;
  freeReplyObject(r);
  return gm_test_redis_int(c, "DBSIZE") - claims -
         gm_test_redis_int(c, "EXISTS gm:deadlines:reconcile") -
         gm_test_redis_int(c, "EXISTS gm:{settle}:lease") -
         gm_test_redis_int(c, "EXISTS gm:{settle}:book");
}

/*
 * Moves a test's manual clock with `set_clock(ms)` while Redis is over
 * maxmemory, without letting a deadline fire while Redis has room:
 * clock.set stores its reply in Redis, so maxmemory is lifted for it, with
 * the deadlines' wake-up index renamed away meanwhile (RENAME, which Redis
 * allows over maxmemory, as a firing's own steps), so nothing fires until
 * Redis is full again.  A firing claimed before the call whose callback
 * has not run yet does run in that moment, and succeeds: wait until the
 * callbacks a test expects refused were refused (test_deadlines counts
 * Redis's refused FCALLs) before calling this again.
 */
static inline void gm_test_redis_clock_while_full(redisContext *c,
                                                  void (*set_clock)(int64_t),
                                                  int64_t ms) {
  redisReply *r = gm_test_redis_cmd(c, "CONFIG GET maxmemory");
  long long max = atoll(r->element[1]->str);
  freeReplyObject(r);
  freeReplyObject(
      gm_test_redis_cmd(c, "RENAME gm:deadlines gm:deadlines:held"));
  freeReplyObject(gm_test_redis_cmd(c, "CONFIG SET maxmemory 0"));
  set_clock(ms);
  freeReplyObject(gm_test_redis_cmd(c, "CONFIG SET maxmemory %lld", max));
  freeReplyObject(
      gm_test_redis_cmd(c, "RENAME gm:deadlines:held gm:deadlines"));
}

#endif
