/*
 * Deadlines end to end: a real redis-server, one or two real gmd brokers
 * with the test market (its deadline kinds count each firing in Redis and
 * emit an outbox entry the ledger settles), and the manual clock moved by
 * clock.set.  Checks what Redis and the ledger hold.  One test drives the
 * poller thread in process, for what gmd does not show: the registry's
 * refusals, the firing's key and the metrics counts.
 */
#include <check.h>
#include <limits.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <zmq.h>

#include "call.h"
#include "clock.h"
#include "deadlines.h"
#include "gmd_fixture.h"
#include "greenmarket.pb-c.h"
#include "ledger.h"
#include "market.h"
#include "redis_fixture.h"
#include "redis_fill.h"
#include "testmkt.pb-c.h"

/* Both brokers' clocks start here ([testing] clock_start_ms). */
#define B0 INT64_C(1800000000000)
#define CLAIM_MS 1000

static gm_test_redis *redis;
static gm_test_gmd *g1, *g2;
static gm_test_conn *c1, *c2;
static redisContext *rc;

/* The test market with a manual clock at `start`, fast polls and `extra`. */
static char *conf(int64_t start, const char *extra) {
  char *s = NULL;
  int n = asprintf(&s,
                   "[testing]\nclock = manual\nclock_start_ms = %lld\n"
                   "[plugins]\nload = testmkt\n"
                   "[deadlines]\npoll_ms = 20\nclaim_ms = %d\n%s\n",
                   (long long)start, CLAIM_MS, extra ? extra : "");
  ck_assert_int_gt(n, 0);
  return s;
}

/* Broker 1 with extra1; with extra2, broker 2 on the same Redis and ledger
   (the ledger written by broker 1's settler unless extra1 turns it off). */
static void start(const char *extra1, const char *extra2) {
  redis = gm_test_redis_start();
  rc = gm_test_redis_connect(redis);
  char *c = conf(B0, extra1);
  g1 = gm_test_gmd_start(redis, TEST_PLUGIN_DIR, c);
  free(c);
  c1 = gm_test_conn_new(gm_test_gmd_endpoint(g1), NULL, NULL, NULL);
  if (!extra2) return;
  char more[1024];
  snprintf(more, sizeof more, "%s\n[ledger]\npath = %s\n", extra2,
           gm_test_gmd_ledger(g1));
  c = conf(B0, more);
  g2 = gm_test_gmd_start_named(redis, "b2", TEST_PLUGIN_DIR, c);
  free(c);
  c2 = gm_test_conn_new(gm_test_gmd_endpoint(g2), NULL, NULL, NULL);
}

static void teardown(void) {
  gm_test_conn_destroy(&c1);
  gm_test_conn_destroy(&c2);
  if (g1) gm_test_gmd_stop(&g1);
  if (g2) gm_test_gmd_stop(&g2);
  if (rc) redisFree(rc);
  rc = NULL;
  gm_test_redis_stop(&redis);
}

static void clock_set(gm_test_conn *c, int64_t ms) {
  static unsigned long seq;
  char idem[32];
  snprintf(idem, sizeof idem, "clock-%lu", ++seq);
  Gm__ClockSetRequest req = GM__CLOCK_SET_REQUEST__INIT;
  req.time_ms = ms;
  Gm__Reply *r = gm_test_call(c, "root", "gm", "clock.set", idem, &req.base);
  ck_assert_msg(r && r->status == GM__STATUS__OK, "clock.set: %s",
                r ? r->message : "no reply");
  gm__reply__free_unpacked(r, NULL);
}

/* testmkt.deadline: the status; *due what gm.deadline_get saw after. */
static int deadline(gm_test_conn *c, const char *op, const char *kind,
                    const char *tag, const char *id, int64_t due_ms,
                    int64_t *due) {
  static unsigned long seq;
  char idem[32];
  snprintf(idem, sizeof idem, "dl-%lu", ++seq);
  Gm__Testmkt__DeadlineRequest req = GM__TESTMKT__DEADLINE_REQUEST__INIT;
  req.op = (char *)op;
  req.kind = (char *)kind;
  req.tag = (char *)tag;
  req.id = (char *)id;
  req.due_ms = due_ms;
  Gm__Reply *r = gm_test_call(c, "alice", "testmkt",
                              strcmp(op, "get") ? "deadline" : "deadline.get",
                              strcmp(op, "get") ? idem : NULL, &req.base);
  ck_assert_msg(r != NULL, "no reply to deadline %s", op);
  int st = r->status;
  if (st == GM__STATUS__OK && due) {
    Gm__Testmkt__DeadlineReply *d =
        gm__testmkt__deadline_reply__unpack(NULL, r->body.len, r->body.data);
    *due = d->due_ms;
    gm__testmkt__deadline_reply__free_unpacked(d, NULL);
  }
  gm__reply__free_unpacked(r, NULL);
  return st;
}

static void set(gm_test_conn *c, const char *op, const char *kind,
                const char *tag, const char *id, int64_t due_ms) {
  int64_t got = -1;
  ck_assert_int_eq(deadline(c, op, kind, tag, id, due_ms, &got),
                   GM__STATUS__OK);
  if (!strcmp(op, "set") || !strcmp(op, "host_set"))
    ck_assert_int_eq(got, due_ms);
  else
    ck_assert_int_eq(got, 0);
}

/* A hash field of the tag's key as a number; 0 when absent. */
static long long field(const char *tag, const char *key, const char *id) {
  redisReply *r =
      gm_test_redis_cmd(rc, "HGET gm:{testmkt:%s}:%s %s", tag, key, id);
  long long v = r->type == REDIS_REPLY_STRING ? atoll(r->str) : 0;
  freeReplyObject(r);
  return v;
}

/* How many times the deadline of id (tag) fired: its first step's count. */
static long long fired(const char *tag, const char *id) {
  return field(tag, "fired", id);
}

/* Waits (up to 10 s) until field(tag, key, id) == want; returns it. */
static long long wait_field(const char *tag, const char *key, const char *id,
                            long long want) {
  long long v = -1;
  for (int i = 0; i < 1000 && (v = field(tag, key, id)) != want; i++)
    gm_test_sleep_ms(10);
  return v;
}

/* Waits (up to 10 s) until ZCARD key == want; returns it. */
static long long wait_card(const char *key, long long want) {
  long long v = -1;
  for (int i = 0;
       i < 1000 && (v = gm_test_redis_int(rc, "ZCARD %s", key)) != want; i++)
    gm_test_sleep_ms(10);
  return v;
}

static long long zscore(const char *key, const char *member) {
  redisReply *r = gm_test_redis_cmd(rc, "ZSCORE %s %s", key, member);
  long long v = r->type == REDIS_REPLY_STRING ? atoll(r->str) : -1;
  freeReplyObject(r);
  return v;
}

/* Waits (up to 10 s) until zscore(key, member) == want (-1: absent). */
static long long wait_zscore(const char *key, const char *member,
                             long long want) {
  long long v = -2;
  for (int i = 0; i < 1000 && (v = zscore(key, member)) != want; i++)
    gm_test_sleep_ms(10);
  return v;
}

/* Waits (up to 15 s) until the ledger answers `want` to sql. */
static long long ledger_wait(const char *sql, long long want) {
  long long n = -1;
  for (int i = 0; i < 1500; i++) {
    sqlite3 *db;
    if (sqlite3_open_v2(gm_test_gmd_ledger(g1 ? g1 : g2), &db,
                        SQLITE_OPEN_READONLY, NULL) == SQLITE_OK) {
      sqlite3_busy_timeout(db, 5000);
      sqlite3_stmt *st;
      if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK) {
        if (sqlite3_step(st) == SQLITE_ROW) n = sqlite3_column_int64(st, 0);
        sqlite3_finalize(st);
      }
    }
    sqlite3_close(db);
    if (n == want) break;
    gm_test_sleep_ms(10);
  }
  return n;
}

/*
 * Two brokers poll one Redis and both clocks pass the due together: each of
 * 20 deadlines on four tags fires once (counted in Redis, one ledger row
 * each), and once nothing is left the index empties.
 */
START_TEST(each_deadline_fires_once_across_two_brokers) {
  start(NULL, "[ledger]\nsettle = off\n");
  const char *tags[] = {"t0", "t1", "t2", "t3"};
  for (int i = 0; i < 20; i++) {
    char id[16];
    snprintf(id, sizeof id, "d%d", i);
    set(i % 2 ? c2 : c1, "set", "tick", tags[i % 4], id, B0 + 1000 + i);
  }
  ck_assert_int_eq(wait_card("gm:deadlines", 4), 4);
  clock_set(c1, B0 + 2000);
  clock_set(c2, B0 + 2000);
  for (int i = 0; i < 20; i++) {
    char id[16];
    snprintf(id, sizeof id, "d%d", i);
    ck_assert_int_eq(wait_field(tags[i % 4], "after", id, 1), 1);
  }
  ck_assert_int_eq(ledger_wait("SELECT count(*) FROM testmkt_fired", 20), 20);
  for (int i = 0; i < 4; i++) {
    char key[64];
    snprintf(key, sizeof key, "gm:{testmkt:%s}:dl", tags[i]);
    ck_assert_int_eq(wait_card(key, 0), 0);
  }
  /* Past the last claim's expiry both brokers find nothing: the index
   * empties, and nothing fired again. */
  clock_set(c1, B0 + 5000);
  clock_set(c2, B0 + 5000);
  ck_assert_int_eq(wait_card("gm:deadlines", 0), 0);
  for (int i = 0; i < 20; i++) {
    char id[16];
    snprintf(id, sizeof id, "d%d", i);
    ck_assert_int_eq(fired(tags[i % 4], id), 1);
    ck_assert_int_eq(field(tags[i % 4], "after", id), 1);
    ck_assert_int_eq(field(tags[i % 4], "attempts", id), 1);
  }
  ck_assert_int_eq(
      ledger_wait("SELECT count(*) FROM testmkt_fired WHERE n = 1", 20), 20);
}
END_TEST

#ifdef GM_FAILURE_INJECTION /* needs gmd to die inside the callback */
/*
 * The broker that claimed a deadline dies (SIGKILL, raised by the test
 * market between the callback's two steps).  The other broker leaves the
 * live claim alone, takes it over once claim_ms passed on its clock, replays
 * the first step (its effect and ledger row stay single) and runs the
 * second: attempt 2.
 */
START_TEST(a_broker_killed_while_firing_is_taken_over_once) {
  start("[market.testmkt]\ntest_kill_in_deadline = 1\n[ledger]\nsettle = off\n",
        "");
  set(c2, "set", "tick", "k", "x", B0 + 1000);
  clock_set(c1, B0 + 2000); /* only broker 1 sees it due */
  int status = gm_test_gmd_wait_exit(g1, 10000);
  ck_assert_msg(
      status != -1 && WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL,
      "broker 1 did not die in the callback (status %d)", status);
  gm_test_conn_destroy(&c1);
  ck_assert_int_eq(fired("k", "x"), 1);
  ck_assert_int_eq(field("k", "after", "x"), 0);
  redisReply *claim =
      gm_test_redis_cmd(rc, "HGET gm:{testmkt:k}:dl:claims tick|x");
  ck_assert_int_eq(claim->type, REDIS_REPLY_STRING);
  freeReplyObject(claim);

  /* Broker 2 is past the due but not past the claim: it fires another
   * deadline of the tag (in the same claim step that would have taken x)
   * and leaves x alone. */
  set(c2, "set", "tick", "k", "y", B0 + 1500);
  clock_set(c2, B0 + 2000);
  ck_assert_int_eq(wait_field("k", "after", "y", 1), 1);
  ck_assert_int_eq(field("k", "after", "x"), 0);
  ck_assert_int_eq(fired("k", "x"), 1);

  /* Past the claim's expiry: taken over, the effect still once. */
  clock_set(c2, B0 + 2000 + CLAIM_MS + 1);
  ck_assert_int_eq(wait_field("k", "after", "x", 1), 1);
  ck_assert_int_eq(fired("k", "x"), 1);
  ck_assert_int_eq(field("k", "attempts", "x"), 2);
  ck_assert_int_eq(wait_card("gm:{testmkt:k}:dl", 0), 0);
  ck_assert_int_eq(
      ledger_wait("SELECT count(*) FROM testmkt_fired WHERE id = 'x'", 1), 1);
  ck_assert_int_eq(ledger_wait("SELECT count(*) FROM testmkt_fired", 2), 2);
}
END_TEST
#endif

/*
 * Set, then every broker stops; the next broker starts with its clock past
 * the due (clock_start_ms) and fires it at start-up, nobody moving its
 * clock.
 */
START_TEST(late_deadlines_fire_at_start_up) {
  start(NULL, NULL);
  set(c1, "set", "tick", "late", "a", B0 + 60000);
  set(c1, "host_set", "tick", "late", "b", B0 + 90000);
  set(c1, "set", "tick", "late", "later", B0 + 3600000);
  gm_test_conn_destroy(&c1);
  gm_test_gmd_stop(&g1);
  ck_assert_int_eq(fired("late", "a"), 0);
  char *c = conf(B0 + 120000, NULL);
  g1 = gm_test_gmd_start(redis, TEST_PLUGIN_DIR, c);
  free(c);
  ck_assert_int_eq(wait_field("late", "after", "a", 1), 1);
  ck_assert_int_eq(wait_field("late", "after", "b", 1), 1);
  ck_assert_int_eq(fired("late", "later"), 0);
  ck_assert_int_eq(zscore("gm:{testmkt:late}:dl", "tick|later"), B0 + 3600000);
  ck_assert_int_eq(ledger_wait("SELECT count(*) FROM testmkt_fired", 2), 2);
}
END_TEST

/*
 * Moved (by the market's script, later and earlier) and cancelled (by a
 * script and by host->deadline_cancel) deadlines: each fires at its last
 * time, the cancelled never.  A sentinel on the same tag shows when a poll
 * has looked: the claim that takes it takes every deadline of the tag then
 * due.
 */
START_TEST(moved_and_cancelled_deadlines) {
  start(NULL, NULL);
  int64_t got;
  set(c1, "set", "tick", "m", "a", B0 + 1000);
  set(c1, "set", "tick", "m", "a", B0 + 5000); /* moved later */
  set(c1, "host_set", "tick", "m", "b", B0 + 1000);
  set(c1, "host_cancel", "tick", "m", "b", 0);
  set(c1, "set", "tick", "m", "c", B0 + 1000);
  set(c1, "cancel", "tick", "m", "c", 0);
  set(c1, "set", "tick", "m", "d", B0 + 9000);
  set(c1, "set", "tick", "m", "d", B0 + 4000); /* moved earlier */
  set(c1, "set", "tick", "m", "s1", B0 + 1500);
  ck_assert_int_eq(deadline(c1, "get", "tick", "m", "a", 0, &got),
                   GM__STATUS__OK);
  ck_assert_int_eq(got, B0 + 5000);
  ck_assert_int_eq(zscore("gm:deadlines", "testmkt:m"), B0 + 1000);

  clock_set(c1, B0 + 2000);
  ck_assert_int_eq(wait_field("m", "after", "s1", 1), 1);
  ck_assert_int_eq(
      fired("m", "a") + fired("m", "b") + fired("m", "c") + fired("m", "d"), 0);
  /* The index waits for no later than the earliest left (d, moved to
   * 4000); it may say the sentinel's claim expiry, before that. */
  long long next = zscore("gm:deadlines", "testmkt:m");
  ck_assert_msg(next > B0 + 2000 && next <= B0 + 4000, "index at B0%+lld",
                next - B0);

  clock_set(c1, B0 + 4500);
  ck_assert_int_eq(wait_field("m", "after", "d", 1), 1);
  ck_assert_int_eq(fired("m", "a"), 0);
  clock_set(c1, B0 + 6000);
  ck_assert_int_eq(wait_field("m", "after", "a", 1), 1);
  ck_assert_int_eq(wait_card("gm:{testmkt:m}:dl", 0), 0);
  set(c1, "set", "tick", "m", "s2", B0 + 6000);
  ck_assert_int_eq(wait_field("m", "after", "s2", 1), 1);
  ck_assert_int_eq(fired("m", "b") + fired("m", "c"), 0);
  ck_assert_int_eq(fired("m", "a") + fired("m", "d"), 2);
}
END_TEST

/*
 * A script that sets a deadline and is refused, whether gm.reject was
 * called before or after gm.deadline, leaves no deadline and no index
 * entry; the entity it wrote before refusing stays (Redis does not roll a
 * script back).  An unknown kind is refused by host->deadline_set, and a
 * status gm.reject does not know is a plugin bug the log explains.
 */
START_TEST(a_refused_script_leaves_no_deadline) {
  start(NULL, NULL);
  ck_assert_int_eq(deadline(c1, "reject_after", "tick", "r", "a", B0, NULL),
                   GM__STATUS__FAILED_PRECONDITION);
  ck_assert_int_eq(deadline(c1, "reject_before", "tick", "r", "b", B0, NULL),
                   GM__STATUS__FAILED_PRECONDITION);
  ck_assert_int_eq(gm_test_redis_int(rc, "EXISTS gm:{testmkt:r}:dl"), 0);
  ck_assert_int_eq(gm_test_redis_int(rc, "EXISTS gm:deadlines"), 0);
  redisReply *e = gm_test_redis_cmd(rc, "GET gm:{testmkt:r}:entity");
  ck_assert_str_eq(e->str, "reject_before:b");
  freeReplyObject(e);
  ck_assert_int_eq(deadline(c1, "host_set", "nokind", "r", "c", B0, NULL),
                   GM__STATUS__INVALID_ARGUMENT);
  ck_assert_int_eq(gm_test_redis_int(rc, "EXISTS gm:{testmkt:r}:dl"), 0);
  /* gm.reject with a status outside the set: the caller gets INTERNAL and
     the log says which name is wrong, which are right, and the message. */
  ck_assert_int_eq(deadline(c1, "reject_bad", "tick", "r", "d", B0, NULL),
                   GM__STATUS__INTERNAL);
  ck_assert(gm_test_gmd_log_has(
      g1,
      "gm.reject(EXISTS, 'not a status name'): EXISTS is not a status "
      "name; use one of INVALID_ARGUMENT, NOT_FOUND"));
  /* Registering after init (a script, a timer, a deadline kind, a settle
     callback) is refused and logged: handlers already run. */
  ck_assert_int_eq(deadline(c1, "late_register", "tick", "r", "e", B0, NULL),
                   GM__STATUS__FAILED_PRECONDITION);
  ck_assert(gm_test_gmd_log_has(
      g1, "script_register late refused: it is for init only"));
  ck_assert(gm_test_gmd_log_has(g1, "timer_add late refused"));
  ck_assert(gm_test_gmd_log_has(g1, "deadline_register late refused"));
  ck_assert(gm_test_gmd_log_has(g1, "settle_register refused"));
}
END_TEST

/*
 * The index lost a tag (a broker died between a script and its index
 * update: here the member is deleted by hand).  Nothing else would wake
 * the tag; reconciliation (every second here) puts it back and it fires.
 */
START_TEST(a_lost_index_entry_is_repaired_by_reconciliation) {
  start("[deadlines]\nreconcile_s = 1\n", NULL);
  set(c1, "set", "tick", "lost", "a", B0 + 1000);
  ck_assert_int_eq(wait_zscore("gm:deadlines", "testmkt:lost", B0 + 1000),
                   B0 + 1000);
  freeReplyObject(gm_test_redis_cmd(rc, "ZREM gm:deadlines testmkt:lost"));
  clock_set(c1, B0 + 2000);
  ck_assert_int_eq(wait_field("lost", "after", "a", 1), 1);
  ck_assert_int_eq(fired("lost", "a"), 1);
  redisReply *lease = gm_test_redis_cmd(rc, "GET gm:deadlines:reconcile");
  ck_assert_int_eq(lease->type, REDIS_REPLY_STRING);
  freeReplyObject(lease);
}
END_TEST

/*
 * The same over maxmemory: the reconciliation's lease is one key of fixed
 * size and its index write an allow-oom ZADD, so a full Redis does not
 * stop the walk (its lease script was refused there, and the member never
 * came back until Redis had room).  The deadline is not due: nothing
 * fires, the index only says when to look.
 */
START_TEST(a_lost_index_entry_is_repaired_over_maxmemory) {
  /* gm_test_redis_fill fills the node rc reaches; a cluster's index may
     live on another: the plain run covers it. */
  if (getenv("GM_TEST_REDIS_CLUSTER")) return;
  start("[deadlines]\nreconcile_s = 1\n", NULL);
  set(c1, "set", "tick", "full", "a", B0 + 5000);
  ck_assert_int_eq(wait_zscore("gm:deadlines", "testmkt:full", B0 + 5000),
                   B0 + 5000);
  ck_assert_int_gt(gm_test_redis_fill(rc), 0);
  freeReplyObject(gm_test_redis_cmd(rc, "ZREM gm:deadlines testmkt:full"));
  /* The lease (1 s) is renewed or taken again, and the walk comes round. */
  ck_assert_int_eq(wait_zscore("gm:deadlines", "testmkt:full", B0 + 5000),
                   B0 + 5000);
  ck_assert(!gm_test_gmd_log_has(g1, "reconciliation lease"));
  ck_assert_int_eq(fired("full", "a"), 0);
  freeReplyObject(gm_test_redis_cmd(rc, "CONFIG SET maxmemory 0"));
}
END_TEST

/*
 * A callback that sets its own deadline again for the time it fires at
 * fires again (a new firing, not a replay of the last), until it stops
 * re-arming; then the deadline is gone.
 */
START_TEST(a_deadline_rearmed_for_its_own_time_fires_again) {
  start(NULL, NULL);
  set(c1, "set", "rearm", "re", "r", B0 + 1000);
  clock_set(c1, B0 + 2000);
  ck_assert_int_eq(wait_field("re", "fired", "r", 3), 3);
  ck_assert_int_eq(wait_card("gm:{testmkt:re}:dl", 0), 0);
  ck_assert_int_eq(
      ledger_wait("SELECT count(*) FROM testmkt_fired WHERE id = 'r'", 3), 3);
  clock_set(c1, B0 + 9000);
  ck_assert_int_eq(wait_card("gm:deadlines", 0), 0);
  ck_assert_int_eq(fired("re", "r"), 3);
  /* Each firing number counted says when, by Redis's clock: the settler
     drops the hash with a retired tag only once that is older than the
     stored replies' lifetime (core/settle.c). */
  redisReply *n = gm_test_redis_cmd(rc, "HGET gm:{testmkt:re}:dl:claims #");
  redisReply *t = gm_test_redis_cmd(rc, "HGET gm:{testmkt:re}:dl:claims #t");
  redisReply *now = gm_test_redis_cmd(rc, "TIME");
  ck_assert_int_eq(n->type, REDIS_REPLY_STRING);
  ck_assert_str_eq(n->str, "3");
  ck_assert_int_eq(t->type, REDIS_REPLY_STRING);
  long long at = atoll(t->str), ms = atoll(now->element[0]->str) * 1000;
  ck_assert_msg(at > ms - 120000 && at <= ms + 1000,
                "#t %lld against Redis's time %lld", at, ms);
  freeReplyObject(n);
  freeReplyObject(t);
  freeReplyObject(now);
}
END_TEST

/* How many ms the latest stored reply of the tag's deadline firings ("dl."
   idempotency keys) outlives its claims hash's '#t' plus [redis]
   idempotency_ttl (the default, 1 day), read in one script (at one time):
   the settler drops the hash, and the firing counter the keys are made
   of, once '#t' is older than that (plus outbox_retire_s), so this must
   never be above 0 (2 ms allowed for the rounding of PTTL and TIME to ms).
   LLONG_MIN when there is no such reply, LLONG_MAX when there is no '#t'. */
static long long replies_past_claims_ms(const char *tag) {
  static const char lua[] =
      "local t = tonumber(redis.call('HGET', KEYS[1], '#t'))\n"
      "local now = redis.call('TIME')\n"
      "local ms = tonumber(now[1]) * 1000 + "
      "math.floor(tonumber(now[2]) / 1000)\n"
      "local worst\n"
      "for _, k in ipairs(redis.call('KEYS', ARGV[1])) do\n"
      "  local p = redis.call('PTTL', k)\n"
      "  if p > 0 and (not worst or ms + p > worst) then worst = ms + p end\n"
      "end\n"
      "if not worst then return 'none' end\n"
      "if not t then return 'no #t' end\n"
      "return string.format('%d', worst - t - 86400000)\n";
  redisReply *r = gm_test_redis_cmd(
      rc, "EVAL %s 1 gm:{testmkt:%s}:dl:claims gm:{testmkt:%s}:idem:*:dl.*",
      lua, tag, tag);
  ck_assert_int_eq(r->type, REDIS_REPLY_STRING);
  long long v = !strcmp(r->str, "none")    ? LLONG_MIN
                : !strcmp(r->str, "no #t") ? LLONG_MAX
                                           : atoll(r->str);
  freeReplyObject(r);
  return v;
}

/* Redis's clock in ms. */
static long long redis_now_ms(void) {
  redisReply *r = gm_test_redis_cmd(rc, "TIME");
  long long ms =
      atoll(r->element[0]->str) * 1000 + atoll(r->element[1]->str) / 1000;
  freeReplyObject(r);
  return ms;
}

/*
 * A callback that stores its step's reply well after its claim (it waits
 * 100 ms first) moves '#t' past that reply when it ends: the done script
 * writes when the firing ended, not when it was claimed.
 */
START_TEST(a_slow_firing_moves_its_claims_time_to_its_end) {
  start(NULL, NULL);
  set(c1, "set", "slow", "sl", "y", B0 + 1000);
  clock_set(c1, B0 + 2000);
  ck_assert_int_eq(wait_field("sl", "fired", "y", 1), 1);
  ck_assert_int_eq(wait_zscore("gm:{testmkt:sl}:dl", "slow|y", -1), -1);
  for (int i = 0;
       i < 1000 && gm_test_redis_int(rc, "HEXISTS %s %s",
                                     "gm:{testmkt:sl}:dl:claims", "slow|y");
       i++)
    gm_test_sleep_ms(10);
  long long past = replies_past_claims_ms("sl");
  ck_assert_msg(past != LLONG_MIN && past <= 2,
                "a stored reply of the slow firing outlives '#t' plus "
                "idempotency_ttl by %lld ms",
                past);
}
END_TEST

/*
 * A callback that fails after its step (stored well after its claim) moves
 * '#t' past that step's reply, and keeps its claim.  Its deadline is then
 * cancelled before the claim expired, so it is never claimed again: once
 * the claim has expired the poller drops it and moves '#t' again (the end
 * of that firing no broker had seen).  Neither fires it again.
 */
START_TEST(a_failed_firing_then_cancelled_moves_its_claims_time) {
  start(NULL, NULL);
  set(c1, "set", "slowfail", "sf", "x", B0 + 1000);
  clock_set(c1, B0 + 2000);
  ck_assert_int_eq(wait_field("sf", "fired", "x", 1), 1);
  long long past = LLONG_MAX;
  for (int i = 0; i < 300 && (past = replies_past_claims_ms("sf")) > 2; i++)
    gm_test_sleep_ms(10);
  ck_assert_msg(past != LLONG_MIN && past <= 2,
                "a stored reply of the failed firing outlives '#t' plus "
                "idempotency_ttl by %lld ms",
                past);
  ck_assert(gm_test_gmd_log_has(
      g1, "slow attempt 1 fails on purpose after its step"));
  const char *claims = "gm:{testmkt:sf}:dl:claims";
  ck_assert_int_eq(gm_test_redis_int(rc, "HEXISTS %s slowfail|x", claims), 1);
  set(c1, "cancel", "slowfail", "sf", "x", 0);
  ck_assert_int_eq(zscore("gm:{testmkt:sf}:dl", "slowfail|x"), -1);
  long long before = redis_now_ms();
  gm_test_sleep_ms(5);
  clock_set(c1, B0 + 2000 + CLAIM_MS + 1);
  for (int i = 0;
       i < 1000 && gm_test_redis_int(rc, "HEXISTS %s slowfail|x", claims); i++)
    gm_test_sleep_ms(10);
  ck_assert_int_eq(gm_test_redis_int(rc, "HEXISTS %s slowfail|x", claims), 0);
  long long t = gm_test_redis_int(rc, "HGET %s #t", claims);
  ck_assert_msg(t > before,
                "'#t' %lld is not after the time %lld, read before the "
                "expired claim could be dropped",
                t, before);
  ck_assert_int_eq(wait_card("gm:deadlines", 0), 0);
  ck_assert_int_eq(fired("sf", "x"), 1);
}
END_TEST

/*
 * A callback that fails keeps its claim and fires again once the claim
 * expired, with attempt 2 and the same idempotency key: the step that ran
 * replays, so its effect happens once.  A deadline of a kind the market
 * never registered (one of another release's) is logged and left, never
 * dropped, and never claimed: a broker that knows the kind fires it at once.
 */
START_TEST(failed_and_unknown_deadlines_are_kept) {
  start(NULL, NULL);
  set(c1, "set", "flaky", "f", "x", B0 + 1000);
  set(c1, "set", "nokind", "f", "u", B0 + 1000);
  clock_set(c1, B0 + 2000);
  ck_assert_int_eq(wait_field("f", "fired", "x", 1), 1);
  for (int i = 0; i < 1000 && !gm_test_gmd_log_has(g1, "fails on purpose"); i++)
    gm_test_sleep_ms(10);
  ck_assert(gm_test_gmd_log_has(g1, "attempt 1) failed with UNAVAILABLE"));
  for (int i = 0;
       i < 1000 && !gm_test_gmd_log_has(g1, "testmkt:f are due with a kind");
       i++)
    gm_test_sleep_ms(10);
  ck_assert(gm_test_gmd_log_has(g1, "testmkt:f are due with a kind"));
  ck_assert(gm_test_gmd_log_has(
      g1,
      "on this broker (it registers: tick, rearm, flaky, count, slow, "
      "slowfail)"));
  ck_assert(gm_test_gmd_log_has(
      g1, "fix the kind gm.deadline names: ZRANGE gm:{testmkt:f}:dl 0 -1"));
  ck_assert_int_eq(gm_test_redis_int(rc, "HEXISTS %s %s",
                                     "gm:{testmkt:f}:dl:claims", "nokind|u"),
                   0);
  ck_assert_int_eq(zscore("gm:{testmkt:f}:dl", "flaky|x"), B0 + 1000);
  clock_set(c1, B0 + 2000 + CLAIM_MS + 1);
  ck_assert_int_eq(wait_zscore("gm:{testmkt:f}:dl", "flaky|x", -1), -1);
  ck_assert_int_eq(fired("f", "x"), 1);
  ck_assert(!gm_test_gmd_log_has(g1, "attempt 2) failed"));
  ck_assert_int_eq(
      ledger_wait("SELECT count(*) FROM testmkt_fired WHERE id = 'x'", 1), 1);
  ck_assert_int_eq(zscore("gm:{testmkt:f}:dl", "nokind|u"), B0 + 1000);
  ck_assert_int_eq(gm_test_redis_int(rc, "HEXISTS %s %s",
                                     "gm:{testmkt:f}:dl:claims", "nokind|u"),
                   0);
}
END_TEST

/*
 * Rolling upgrade: broker 1 runs a release that does not know the kind
 * "tick", broker 2 one that does.  Broker 1 never claims a tick (the claim
 * script takes only the kinds it is given), so broker 2 fires it although
 * neither clock passes the claim period (a claim by broker 1 would hold it
 * that long).
 */
START_TEST(a_kind_unknown_to_a_broker_is_left_to_one_that_knows_it) {
  start("[market.testmkt]\ntest_old_release = 1\n[ledger]\nsettle = off\n", "");
  /* One tag each: whichever broker polls a tag first would claim it, so
     with the old claim script broker 1 would take about half of them. */
  for (int i = 0; i < 8; i++) {
    char tag[16];
    snprintf(tag, sizeof tag, "old%d", i);
    set(c2, "set", "tick", tag, "n", B0 + 1000 + i);
  }
  clock_set(c1, B0 + 2000);
  clock_set(c2, B0 + 2000);
  for (int i = 0; i < 8; i++) {
    char tag[16], key[64];
    snprintf(tag, sizeof tag, "old%d", i);
    ck_assert_int_eq(wait_field(tag, "after", "n", 1), 1);
    ck_assert_int_eq(fired(tag, "n"), 1);
    snprintf(key, sizeof key, "gm:{testmkt:%s}:dl", tag);
    ck_assert_int_eq(wait_card(key, 0), 0);
  }
  ck_assert(!gm_test_gmd_log_has(g1, "has kind tick"));
}
END_TEST

/* ---- the poller in process ---- */

static atomic_int thread_fired;
static char thread_key[128];
static unsigned thread_attempt;
static gm_market thread_market = {.name = "mkt"};

static gm_status thread_cb(gm_call *call, const gm_deadline *d, void *arg) {
  (void)arg;
  snprintf(thread_key, sizeof thread_key, "%s", call->idem_key);
  thread_attempt = d->attempt;
  atomic_fetch_add(&thread_fired, 1);
  return GM_OK;
}

static gm_market *thread_find(void *arg, const char *market) {
  (void)arg;
  return strcmp(market, "mkt") ? NULL : &thread_market;
}

/*
 * Kinds are checked at registration; a due deadline is claimed and fired
 * with the key dl.<kind>.<id>.<due>.<n>, then removed, and the tag leaves
 * the index once nothing is left; tags of a market not loaded here are left
 * alone, and the counts say how many tags wait and how many are late.
 */
START_TEST(the_poller_fires_registers_and_counts) {
  redis = gm_test_redis_start();
  rc = gm_test_redis_connect(redis);
  gm__clock_set_manual(B0);
  char err[512];
  gm__deadlines *d = gm__deadlines_new();
  ck_assert_int_eq(gm__deadlines_register(d, &thread_market, "Bad", thread_cb,
                                          NULL, err, sizeof err),
                   GM_INVALID_ARGUMENT);
  ck_assert_msg(strstr(err, "[a-z][a-z0-9_]*") != NULL, "%s", err);
  ck_assert_int_eq(gm__deadlines_register(d, &thread_market, "k", NULL, NULL,
                                          err, sizeof err),
                   GM_INVALID_ARGUMENT);
  ck_assert_int_eq(gm__deadlines_register(d, &thread_market, "k", thread_cb,
                                          NULL, err, sizeof err),
                   GM_OK);
  ck_assert_int_eq(gm__deadlines_register(d, &thread_market, "k", thread_cb,
                                          NULL, err, sizeof err),
                   GM_ALREADY_EXISTS);
  ck_assert(gm__deadlines_known(d, &thread_market, "k"));
  ck_assert(!gm__deadlines_known(d, &thread_market, "other"));

  freeReplyObject(gm_test_redis_cmd(
      rc, "ZADD gm:deadlines %lld other:late %lld other:later %lld mkt:t",
      (long long)(B0 - 5000), (long long)(B0 + 100000), (long long)(B0 - 10)));
  freeReplyObject(gm_test_redis_cmd(rc, "ZADD gm:{mkt:t}:dl %lld k|x",
                                    (long long)(B0 - 10)));
  char *ledger = gm_test_redis_path(redis, "ledger.sqlite");
  gm__ledger *l = gm__ledger_open(ledger, 0, err, sizeof err);
  ck_assert_msg(l != NULL, "%s", err);
  gm__ledger_close(&l);
  void *zctx = zmq_ctx_new();
  gm__events *events =
      gm__events_open(zctx, "inproc://test-events", err, sizeof err);
  ck_assert_msg(events != NULL, "%s", err);
  gm__redis_addr addr = {.unix_path = gm_test_redis_socket(redis)};
  gm__deadlines_config c = {.redis = &addr,
                            .ledger_path = ledger,
                            .events = events,
                            .broker = "b1",
                            .poll_ms = 10,
                            .claim_ms = 1000,
                            .reconcile_s = 300,
                            .find = thread_find};
  ck_assert_msg(gm__deadlines_start(d, &c, err, sizeof err) == 0, "%s", err);

  for (int i = 0; i < 1000 && atomic_load(&thread_fired) < 1; i++)
    gm_test_sleep_ms(10);
  ck_assert_int_eq(atomic_load(&thread_fired), 1);
  char want[128];
  snprintf(want, sizeof want, "dl.k.x.%lld.1", (long long)(B0 - 10));
  ck_assert_str_eq(thread_key, want);
  ck_assert_uint_eq(thread_attempt, 1);
  ck_assert_int_eq(wait_card("gm:{mkt:t}:dl", 0), 0);
  /* The index waits for the claim's expiry; past it, the tag is gone. */
  gm__clock_set_manual(B0 + 2000);
  ck_assert_int_eq(wait_zscore("gm:deadlines", "mkt:t", -1), -1);
  ck_assert_int_eq(zscore("gm:deadlines", "other:late"), B0 - 5000);

  gm__deadline_counts n = {0};
  for (int i = 0; i < 300; i++) {
    gm__deadlines_counts(d, &n);
    if (n.as_of_ms >= B0 + 2000 && n.pending == 2) break;
    gm_test_sleep_ms(10);
  }
  ck_assert_int_eq(n.pending, 2);
  ck_assert_int_eq(n.late, 1);
  ck_assert_int_eq(atomic_load(&thread_fired), 1);
  gm__deadlines_destroy(&d);
  ck_assert_ptr_null(d);
  gm__events_close(&events);
  zmq_ctx_term(zctx);
  free(ledger);
}
END_TEST

/*
 * Due tags of a market no broker here loads (its brokers are down, or it
 * was removed) come first in the index, oldest first: however many there
 * are, this broker's own due deadline still fires.
 */
START_TEST(tags_of_markets_not_loaded_here_never_hold_back_ours) {
  redis = gm_test_redis_start();
  rc = gm_test_redis_connect(redis);
  gm__clock_set_manual(B0);
  char err[512];
  gm__deadlines *d = gm__deadlines_new();
  ck_assert_int_eq(gm__deadlines_register(d, &thread_market, "k", thread_cb,
                                          NULL, err, sizeof err),
                   GM_OK);
  for (int i = 0; i < 600; i++)
    freeReplyObject(gm_test_redis_cmd(rc, "ZADD gm:deadlines %lld gone:t%d",
                                      (long long)(B0 - 5000), i));
  freeReplyObject(gm_test_redis_cmd(rc, "ZADD gm:deadlines %lld mkt:t",
                                    (long long)(B0 - 10)));
  freeReplyObject(gm_test_redis_cmd(rc, "ZADD gm:{mkt:t}:dl %lld k|x",
                                    (long long)(B0 - 10)));
  char *ledger = gm_test_redis_path(redis, "ledger.sqlite");
  gm__ledger *l = gm__ledger_open(ledger, 0, err, sizeof err);
  ck_assert_msg(l != NULL, "%s", err);
  gm__ledger_close(&l);
  void *zctx = zmq_ctx_new();
  gm__events *events =
      gm__events_open(zctx, "inproc://test-events", err, sizeof err);
  ck_assert_msg(events != NULL, "%s", err);
  gm__redis_addr addr = {.unix_path = gm_test_redis_socket(redis)};
  gm__deadlines_config c = {.redis = &addr,
                            .ledger_path = ledger,
                            .events = events,
                            .broker = "b1",
                            .poll_ms = 10,
                            .claim_ms = 1000,
                            .reconcile_s = 300,
                            .find = thread_find};
  ck_assert_msg(gm__deadlines_start(d, &c, err, sizeof err) == 0, "%s", err);
  for (int i = 0; i < 500 && atomic_load(&thread_fired) < 1; i++)
    gm_test_sleep_ms(10);
  ck_assert_int_eq(atomic_load(&thread_fired), 1);
  ck_assert_int_eq(wait_card("gm:{mkt:t}:dl", 0), 0);
  ck_assert_int_eq(zscore("gm:deadlines", "gone:t0"), B0 - 5000);
  gm__deadlines_destroy(&d);
  gm__events_close(&events);
  zmq_ctx_term(zctx);
  free(ledger);
}
END_TEST

/* ---- two pollers in process: a claim that ran out before its turn ---- */

static gm__deadlines *late_d2;       /* the second broker's poller */
static gm__deadlines_config late_c2; /* its configuration */
static atomic_int late_x, late_y;    /* firings of k|x and k|y */

/* k|x takes longer than the claim (the clock moves past it), and lets the
   second broker start meanwhile; k|y is counted. */
static gm_status late_cb(gm_call *call, const gm_deadline *d, void *arg) {
  (void)call;
  (void)arg;
  if (strcmp(d->id, "y") == 0) {
    atomic_fetch_add(&late_y, 1);
    return GM_OK;
  }
  if (atomic_fetch_add(&late_x, 1) == 0) {
    gm__clock_set_manual(B0 + 5 * CLAIM_MS);
    char err[512];
    ck_assert_msg(gm__deadlines_start(late_d2, &late_c2, err, sizeof err) == 0,
                  "%s", err);
    for (int i = 0; i < 500 && atomic_load(&late_y) < 1; i++)
      gm_test_sleep_ms(10);
  }
  return GM_OK;
}

/*
 * One claim takes several deadlines of a tag, fired one after the other:
 * one whose claim ran out while those before it ran (here the first took
 * longer than the claim) is another broker's to take, and the broker that
 * claimed it no longer fires it.
 */
START_TEST(a_claim_that_ran_out_before_its_turn_is_not_fired) {
  redis = gm_test_redis_start();
  rc = gm_test_redis_connect(redis);
  gm__clock_set_manual(B0);
  char err[512];
  gm__deadlines *d1 = gm__deadlines_new();
  late_d2 = gm__deadlines_new();
  ck_assert_int_eq(gm__deadlines_register(d1, &thread_market, "k", late_cb,
                                          NULL, err, sizeof err),
                   GM_OK);
  ck_assert_int_eq(gm__deadlines_register(late_d2, &thread_market, "k", late_cb,
                                          NULL, err, sizeof err),
                   GM_OK);
  freeReplyObject(gm_test_redis_cmd(rc, "ZADD gm:deadlines %lld mkt:t",
                                    (long long)(B0 - 10)));
  freeReplyObject(gm_test_redis_cmd(rc, "ZADD gm:{mkt:t}:dl %lld k|x %lld k|y",
                                    (long long)(B0 - 20),
                                    (long long)(B0 - 10)));
  char *ledger = gm_test_redis_path(redis, "ledger.sqlite");
  gm__ledger *l = gm__ledger_open(ledger, 0, err, sizeof err);
  ck_assert_msg(l != NULL, "%s", err);
  gm__ledger_close(&l);
  void *zctx = zmq_ctx_new();
  gm__events *events =
      gm__events_open(zctx, "inproc://test-events", err, sizeof err);
  ck_assert_msg(events != NULL, "%s", err);
  gm__redis_addr addr = {.unix_path = gm_test_redis_socket(redis)};
  gm__deadlines_config c = {.redis = &addr,
                            .ledger_path = ledger,
                            .events = events,
                            .broker = "b1",
                            .poll_ms = 10,
                            .claim_ms = CLAIM_MS,
                            .reconcile_s = 300,
                            .find = thread_find};
  late_c2 = c;
  late_c2.broker = "b2";
  ck_assert_msg(gm__deadlines_start(d1, &c, err, sizeof err) == 0, "%s", err);
  ck_assert_int_eq(wait_card("gm:{mkt:t}:dl", 0), 0);
  gm_test_sleep_ms(300);
  /* k|x itself outran its claim, so the second broker took it over too
     (docs/plugins.md: a callback slower than claim_ms); k|y never ran
     before its claim ran out, and only the second broker fires it. */
  ck_assert_int_ge(atomic_load(&late_x), 1);
  ck_assert_int_eq(atomic_load(&late_y), 1);
  gm__deadlines_destroy(&d1);
  gm__deadlines_destroy(&late_d2);
  gm__events_close(&events);
  zmq_ctx_term(zctx);
  free(ledger);
}
END_TEST

/*
 * A broker whose host's clock is 10 minutes fast ([testing] clock_skew_ms)
 * keeps Redis's clock ([clock] source = redis, the default): its "now" is
 * Redis's, so a deadline due in 30 s does not fire at once, and the log
 * says how far off the host is.  With source = local the deadline fired
 * on the first poll and ping said 10 minutes later.
 */
/* The broker's time as ping tells it. */
static int64_t ping_time(gm_test_conn *c) {
  Gm__PingRequest ping = GM__PING_REQUEST__INIT;
  Gm__Reply *p = gm_test_call(c, NULL, "gm", "ping", NULL, &ping.base);
  ck_assert(p && p->status == GM__STATUS__OK);
  Gm__PingReply *pr = gm__ping_reply__unpack(NULL, p->body.len, p->body.data);
  ck_assert_ptr_nonnull(pr);
  int64_t t = pr->time_ms;
  gm__ping_reply__free_unpacked(pr, NULL);
  gm__reply__free_unpacked(p, NULL);
  return t;
}

/*
 * Each broker keeps its own manual clock: a clock.set retried (same
 * idempotency key) through another broker moves that broker's clock too;
 * it was answered OK from the first broker's record, its clock unmoved.
 */
START_TEST(a_clock_set_retried_on_another_broker_moves_its_clock) {
  start(NULL, "");
  Gm__ClockSetRequest req = GM__CLOCK_SET_REQUEST__INIT;
  req.time_ms = B0 + 3600000;
  for (int i = 0; i < 2; i++) {
    Gm__Reply *r = gm_test_call(i ? c2 : c1, "root", "gm", "clock.set",
                                "the-same-key", &req.base);
    ck_assert_msg(r && r->status == GM__STATUS__OK, "clock.set: %s",
                  r ? r->message : "no reply");
    gm__reply__free_unpacked(r, NULL);
  }
  ck_assert_int_eq(ping_time(c1), B0 + 3600000);
  ck_assert_int_eq(ping_time(c2), B0 + 3600000);
}
END_TEST

/* The broker's uptime as stats tells it. */
static int64_t uptime_ms(gm_test_conn *c) {
  Gm__StatsRequest req = GM__STATS_REQUEST__INIT;
  Gm__Reply *r = gm_test_call(c, NULL, "gm", "stats", NULL, &req.base);
  ck_assert(r && r->status == GM__STATUS__OK);
  Gm__StatsReply *s = gm__stats_reply__unpack(NULL, r->body.len, r->body.data);
  ck_assert_ptr_nonnull(s);
  int64_t up = s->uptime_ms;
  gm__stats_reply__free_unpacked(s, NULL);
  gm__reply__free_unpacked(r, NULL);
  return up;
}

/*
 * A manual clock (a trial broker) restarted resumes where gm clock set
 * left it, not at clock_start_ms (weeks back) or today (every deadline due
 * by then firing at once); a clock_start_ms later than that wins.
 */
START_TEST(a_restarted_manual_clock_resumes_where_it_was_set) {
  start(NULL, NULL);
  clock_set(c1, B0 + 86400000);
  gm_test_conn_destroy(&c1);
  gm_test_gmd_kill9(g1);
  gm_test_gmd_restart(g1);
  c1 = gm_test_conn_new(gm_test_gmd_endpoint(g1), NULL, NULL, NULL);
  ck_assert_int_eq(ping_time(c1), B0 + 86400000);
  ck_assert(gm_test_gmd_log_has(g1, "the manual clock resumes at"));
  /* Uptime is the time since this start, whatever the manual clock says
     (it was the manual clock minus the host's clock at start: weeks). */
  int64_t up = uptime_ms(c1);
  ck_assert_msg(up >= 0 && up < 60000, "uptime %lld ms", (long long)up);
  /* Asked to start later than that: it does. */
  gm_test_conn_destroy(&c1);
  gm_test_gmd_kill9(g1);
  FILE *f = fopen(gm_test_gmd_conf(g1), "a");
  ck_assert_ptr_nonnull(f);
  fprintf(f, "\n[testing]\nclock_start_ms = %lld\n",
          (long long)(B0 + 2 * 86400000));
  fclose(f);
  gm_test_gmd_restart(g1);
  c1 = gm_test_conn_new(gm_test_gmd_endpoint(g1), NULL, NULL, NULL);
  ck_assert_int_eq(ping_time(c1), B0 + 2 * 86400000);
}
END_TEST

START_TEST(a_broker_whose_host_clock_is_off_keeps_redis_time) {
  redis = gm_test_redis_start();
  rc = gm_test_redis_connect(redis);
  g1 = gm_test_gmd_start(redis, TEST_PLUGIN_DIR,
                         "[plugins]\nload = testmkt\n"
                         "[deadlines]\npoll_ms = 20\n"
                         "[testing]\nclock_skew_ms = 600000\n"
                         "clock_log_every_ms = 300\n");
  c1 = gm_test_conn_new(gm_test_gmd_endpoint(g1), NULL, NULL, NULL);
  int64_t now = redis_now_ms(), said = ping_time(c1);
  ck_assert_msg(llabs((long long)(said - now)) < 2000,
                "ping says %lld, Redis %lld", (long long)said, (long long)now);
  set(c1, "set", "tick", "skew", "a", now + 30000);
  ck_assert_int_eq(wait_zscore("gm:deadlines", "testmkt:skew", now + 30000),
                   now + 30000);
  gm_test_sleep_ms(1000); /* 50 polls */
  ck_assert_int_eq(fired("skew", "a"), 0);
  /* Repeated while it lasts (every clock_log_every_ms here): it came only
     with a change of the offset, so a host steadily off was warned of
     once. */
  int warns = gm_test_gmd_log_count(g1, "s ahead of Redis's");
  ck_assert_msg(warns >= 2, "%d WARN of the host's clock in 1 s", warns);
}
END_TEST

/*
 * Every reading of Redis's clock slower than the limit (here 1 us, so
 * all): the broker keeps this host's clock, 10 minutes fast, and the log
 * says why and what to do; it said nothing (readings dropped silently).
 */
START_TEST(a_redis_clock_too_slow_to_follow_is_said) {
  redis = gm_test_redis_start();
  rc = gm_test_redis_connect(redis);
  g1 = gm_test_gmd_start(redis, TEST_PLUGIN_DIR,
                         "[plugins]\nload = testmkt\n"
                         "[testing]\nclock_skew_ms = 600000\n"
                         "clock_max_rtt_us = 1\n");
  c1 = gm_test_conn_new(gm_test_gmd_endpoint(g1), NULL, NULL, NULL);
  int64_t now = redis_now_ms(), said = ping_time(c1);
  ck_assert_msg(llabs((long long)(said - now - 600000)) < 2000,
                "ping says %lld, Redis %lld", (long long)said, (long long)now);
  ck_assert(
      gm_test_gmd_log_has(g1, "answers too slowly to follow: 1 reading(s)"));
  ck_assert(gm_test_gmd_log_has(g1, "this host's clock alone, offset +0.000"));
  ck_assert(!gm_test_gmd_log_has(g1, "following Redis's clock"));
}
END_TEST

/*
 * In process: "now" never goes back when the offset to Redis's clock moves
 * back by a few ms (a reading with a shorter round trip): it holds until
 * the clock catches up; a step back over GM__CLOCK_HOLD_MS is followed.
 * It went back by the offset's move: an event or a firing read a time
 * before one already read.
 */
START_TEST(now_never_steps_back_when_the_offset_moves_back_a_little) {
  gm__clock_set_offset_us(0);
  int64_t a = gm__clock_now_ms();
  gm__clock_set_offset_us(-50000);
  int64_t b = gm__clock_now_ms();
  ck_assert_msg(b >= a, "now went back from %lld to %lld", (long long)a,
                (long long)b);
  ck_assert_int_lt(b, a + 50);
  gm__clock_set_offset_us(-(GM__CLOCK_HOLD_MS + 5000) * INT64_C(1000));
  int64_t c = gm__clock_now_ms();
  ck_assert_int_lt(c, a - GM__CLOCK_HOLD_MS);
  gm__clock_set_offset_us(0);
  ck_assert_int_ge(gm__clock_now_ms(), a);
}
END_TEST

/* Connections Redis has accepted since it started (INFO stats).  Right
   after SCRIPT KILL the script may still be ending, and Redis answers
   BUSY until it has: asked again then (up to 5 s). */
static long long connections_received(void) {
  redisReply *r = NULL;
  for (int i = 0; i < 100; i++) {
    r = redisCommand(rc, "INFO stats");
    ck_assert_ptr_nonnull(r);
    if (r->type != REDIS_REPLY_ERROR || strncmp(r->str, "BUSY", 4) != 0) break;
    freeReplyObject(r);
    r = NULL;
    gm_test_sleep_ms(50);
  }
  ck_assert_msg(r && r->type == REDIS_REPLY_STRING, "INFO stats: %s",
                r ? r->str : "still BUSY after 5 s");
  const char *p = strstr(r->str, "total_connections_received:");
  ck_assert_ptr_nonnull(p);
  long long n = atoll(p + strlen("total_connections_received:"));
  freeReplyObject(r);
  return n;
}

/*
 * Redis busy running a script: TIME answers BUSY, and the clock's WARN
 * says so (it said "(no error)": the reading's error reply was never
 * noted where the message looked).  An error reply leaves the connection
 * as it is: the clock thread reconnected after each, which cleared the
 * process's outbox cache every second while Redis was busy.
 */
START_TEST(a_clock_reading_refused_says_why) {
  redis = gm_test_redis_start();
  rc = gm_test_redis_connect(redis);
  g1 = gm_test_gmd_start(redis, TEST_PLUGIN_DIR, "[plugins]\nload = testmkt\n");
  freeReplyObject(gm_test_redis_cmd(rc, "CONFIG SET busy-reply-threshold 100"));
  redisContext *busy = gm_test_redis_connect(redis);
  /* gmd's threads open their connections as they start (slowly under
     ASan): counted once the count holds still for half a second. */
  long long before = connections_received(), again;
  for (int i = 0; i < 40; i++, before = again) {
    gm_test_sleep_ms(500);
    if ((again = connections_received()) == before) break;
  }
  redisAppendCommand(busy, "EVAL %s 0", "while true do end");
  int done = 0;
  while (!done) ck_assert_int_eq(redisBufferWrite(busy, &done), REDIS_OK);
  for (int i = 0;
       i < 100 && !gm_test_gmd_log_has(g1, "cannot read Redis's clock"); i++)
    gm_test_sleep_ms(50);
  /* Two more readings (one a second), both refused BUSY. */
  gm_test_sleep_ms(2200);
  freeReplyObject(gm_test_redis_cmd(rc, "SCRIPT KILL"));
  redisFree(busy);
  long long after = connections_received();
  ck_assert_msg(after == before,
                "%lld connections opened while Redis answered BUSY (gmd "
                "reconnected after an error reply)",
                after - before);
  FILE *f = fopen(gm_test_gmd_log(g1), "r");
  ck_assert_ptr_nonnull(f);
  char line[2048], warn[2048] = "";
  while (fgets(line, sizeof line, f))
    if (strstr(line, "cannot read Redis's clock") && !warn[0])
      snprintf(warn, sizeof warn, "%s", line);
  fclose(f);
  ck_assert_msg(strstr(warn, "(BUSY Redis is busy running a script"),
                "the clock's WARN does not say why: %s", warn);
}
END_TEST

/*
 * Redis over maxmemory: the claims run (allow-oom), so every due deadline
 * whose callback writes is claimed, refused RESOURCE_EXHAUSTED and fired
 * again each claim_ms.  The log says so once a minute, with a count, not
 * a line per firing (ten deadlines, four claim periods here).  With room
 * again each fires once.
 */
static void clock1(int64_t ms) {
  clock_set(c1, ms);
}

static int log_count(const char *needle) {
  FILE *f = fopen(gm_test_gmd_log(g1), "r");
  char line[2048];
  int n = 0;
  while (f && fgets(line, sizeof line, f))
    if (strstr(line, needle)) n++;
  if (f) fclose(f);
  return n;
}

/* The attempt in the claim of kind|id on tag (0: no claim). */
static long long claim_attempt(const char *tag, const char *member) {
  redisReply *r =
      gm_test_redis_cmd(rc, "HGET gm:{testmkt:%s}:dl:claims %s", tag, member);
  long long a = 0;
  if (r->type == REDIS_REPLY_STRING) {
    const char *p = strchr(r->str, '|');
    if (p) p = strchr(p + 1, '|');
    if (p) a = atoll(p + 1);
  }
  freeReplyObject(r);
  return a;
}

/* FCALLs Redis refused before running them (over maxmemory: a firing's
   callback), from INFO commandstats. */
static long long fcalls_refused(void) {
  redisReply *r = gm_test_redis_cmd(rc, "INFO commandstats");
  const char *p = strstr(r->str, "cmdstat_fcall:");
  const char *q = p ? strstr(p, "rejected_calls=") : NULL;
  long long n = q ? atoll(q + strlen("rejected_calls=")) : 0;
  freeReplyObject(r);
  return n;
}

START_TEST(refused_firings_over_maxmemory_are_logged_once_a_minute) {
  /* The clock moves while Redis is full by renaming gm:deadlines away
     (redis_fill.h), which a cluster refuses (CROSSSLOT): the plain run
     covers it. */
  if (getenv("GM_TEST_REDIS_CLUSTER")) return;
  start(NULL, NULL);
  char id[10][8];
  for (int i = 0; i < 10; i++) {
    snprintf(id[i], sizeof id[i], "o%d", i % 10);
    set(c1, "set", "tick", "o", id[i], B0 + 1000);
  }
  ck_assert_int_gt(gm_test_redis_fill(rc), 0);
  int64_t now = B0 + 2000;
  for (int round = 1; round <= 4; round++, now += CLAIM_MS + 1) {
    long long refused = fcalls_refused();
    gm_test_redis_clock_while_full(rc, clock1, now);
    /* Every one claimed and refused again (its attempt counts up). */
    for (int i = 0; i < 10; i++) {
      char m[16] = "tick|";
      strcat(m, id[i]);
      for (int w = 0; w < 500 && claim_attempt("o", m) < round; w++)
        gm_test_sleep_ms(10);
      ck_assert_int_eq(claim_attempt("o", m), round);
    }
    /* Claimed is not yet refused: the next round lifts maxmemory for a
       moment (the clock's reply), and a callback still to run then would
       fire.  Each of the ten is refused before the clock moves again. */
    for (int w = 0; w < 500 && fcalls_refused() < refused + 10; w++)
      gm_test_sleep_ms(10);
    ck_assert_int_ge(fcalls_refused(), refused + 10);
  }
  gm_test_sleep_ms(100);
  ck_assert_int_eq(log_count("failed with RESOURCE_EXHAUSTED"), 1);
  for (int i = 0; i < 10; i++) ck_assert_int_eq(fired("o", id[i]), 0);
  freeReplyObject(gm_test_redis_cmd(rc, "CONFIG SET maxmemory 0"));
  clock_set(c1, now);
  for (int i = 0; i < 10; i++)
    ck_assert_int_eq(wait_field("o", "fired", id[i], 1), 1);
}
END_TEST

int main(void) {
  Suite *s = suite_create("deadlines");
  TCase *tc = tcase_create("deadlines");
  tcase_add_checked_fixture(tc, NULL, teardown);
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, each_deadline_fires_once_across_two_brokers);
#ifdef GM_FAILURE_INJECTION
  tcase_add_test(tc, a_broker_killed_while_firing_is_taken_over_once);
#endif
  tcase_add_test(tc, late_deadlines_fire_at_start_up);
  tcase_add_test(tc, moved_and_cancelled_deadlines);
  tcase_add_test(tc, a_refused_script_leaves_no_deadline);
  tcase_add_test(tc, a_lost_index_entry_is_repaired_by_reconciliation);
  tcase_add_test(tc, a_lost_index_entry_is_repaired_over_maxmemory);
  tcase_add_test(tc, a_broker_whose_host_clock_is_off_keeps_redis_time);
  tcase_add_test(tc, a_clock_reading_refused_says_why);
  tcase_add_test(tc, a_redis_clock_too_slow_to_follow_is_said);
  tcase_add_test(tc, now_never_steps_back_when_the_offset_moves_back_a_little);
  tcase_add_test(tc, a_restarted_manual_clock_resumes_where_it_was_set);
  tcase_add_test(tc, a_clock_set_retried_on_another_broker_moves_its_clock);
  tcase_add_test(tc, a_deadline_rearmed_for_its_own_time_fires_again);
  tcase_add_test(tc, failed_and_unknown_deadlines_are_kept);
  tcase_add_test(tc, a_slow_firing_moves_its_claims_time_to_its_end);
  tcase_add_test(tc, a_failed_firing_then_cancelled_moves_its_claims_time);
  tcase_add_test(tc, a_kind_unknown_to_a_broker_is_left_to_one_that_knows_it);
  tcase_add_test(tc, the_poller_fires_registers_and_counts);
  tcase_add_test(tc, tags_of_markets_not_loaded_here_never_hold_back_ours);
  tcase_add_test(tc, a_claim_that_ran_out_before_its_turn_is_not_fired);
  tcase_add_test(tc, refused_firings_over_maxmemory_are_logged_once_a_minute);
  suite_add_tcase(s, tc);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
