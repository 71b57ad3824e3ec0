/*
 * The fixture of the script-service tests (test_redis.c, test_readonly.c):
 * a private redis-server, gmd's connection to it (`conn`), a plain hiredis
 * one to look at what it holds (`raw`) and an arena; setup and teardown
 * for tcase_add_checked_fixture, and a call as a participant.
 */
#ifndef GM_TEST_SCRIPT_FIXTURE_H
#define GM_TEST_SCRIPT_FIXTURE_H

#include <hiredis/hiredis.h>

#include "arena.h"
#include "call.h"
#include "redis.h"
#include "redis_fixture.h"

extern gm_test_redis *srv;
extern gm__redis *conn;
extern redisContext *raw;
extern gm__arena *arena;

void setup(void);
/* Also forgets market "mkt"'s scripts (the tests register under it). */
void teardown(void);
/* A call by `participant` under idempotency key `idem` on conn. */
gm_call call_as(const char *participant, const char *idem);

#endif
