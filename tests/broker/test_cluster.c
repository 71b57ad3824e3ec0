/*
 * gmd on a Redis Cluster (tests/support/cluster_fixture.h): a worker's
 * connection pipelines on every master at once, each script call
 * lands on the master of its tag's slot, MOVED and ASK during a slot's
 * migration are followed, and after a master's kill -9 and its replica's
 * promotion requests resume.  ctest label "cluster".
 */
#include <arpa/inet.h>
#include <check.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "cluster.h"
#include "cluster_failover.h"
#include "cluster_fixture.h"
#include "config.h"
#include "fiber.h"
#include "gmd_fixture.h"
#include "metrics.h"
#include "redis.h"
#include "testmkt.pb-c.h"

#define TAGS 16

static gm_test_cluster *cl;
static gm_test_gmd *gmd;
static gm_test_conn *conn;
static gm_test_cluster *shared_cl; /* the "shared" cases' (shared_up) */

/* gmd (and, unless the case runs on the shared cluster, a cluster of 3
   masters with `replicas` replicas each) with the testmkt market. */
static void start_with(int replicas, const char *extra) {
  if (cl) /* shared_setup's: its folder is each case's own */
    ck_assert_int_eq(replicas, 0);
  else
    cl = gm_test_cluster_start(3, replicas, 1000);
  char conf[1024], name[32];
  snprintf(conf, sizeof conf, "%s[plugins]\nload = testmkt\n%s",
           gm_test_cluster_conf(cl), extra);
  snprintf(name, sizeof name, "gmd-%ld", (long)getpid());
  gmd = cl == shared_cl ? gm_test_gmd_start_named(gm_test_cluster_home(cl),
                                                  name, TEST_PLUGIN_DIR, conf)
                        : gm_test_gmd_start(gm_test_cluster_home(cl),
                                            TEST_PLUGIN_DIR, conf);
  conn = gm_test_conn_new(gm_test_gmd_endpoint(gmd), NULL, NULL, NULL);
}

static void start(int replicas) {
  start_with(replicas, "");
}

static void teardown(void) {
  gm_test_conn_destroy(&conn);
  if (gmd) gm_test_gmd_stop(&gmd);
  gm_test_cluster_stop(&cl);
}

/*
 * The program's cluster of three masters without replicas, for the cases
 * that change nothing on it a flush does not undo (no kill, no stop, no
 * slot moved or left migrating; test_pipelined_ask, which leaves one
 * migrating, runs last): a cluster's start costs about 2 s (a
 * master waits before it turns writable).  It starts once, in Check's
 * parent process (an unchecked fixture), before the "shared" cases' own
 * processes; each of them flushes every master's data, functions and
 * scripts first and runs a gmd of its own in a folder of its own (its own
 * ledger), as on a fresh cluster.
 */
static void shared_up(void) {
  shared_cl = gm_test_cluster_start(3, 0, 1000);
}

static void shared_down(void) {
  gm_test_cluster_stop(&shared_cl);
}

static void shared_setup(void) {
  ck_assert_msg(shared_cl != NULL, "the program's cluster did not start");
  cl = shared_cl;
  static const char *const reset[] = {"FLUSHALL SYNC", "FUNCTION FLUSH SYNC",
                                      "SCRIPT FLUSH SYNC", NULL};
  for (int m = 0; m < 3; m++) {
    redisContext *rc = gm_test_cluster_connect(cl, m);
    for (const char *const *cmd = reset; *cmd; cmd++) {
      redisReply *r = redisCommand(rc, *cmd);
      ck_assert_msg(r && r->type == REDIS_REPLY_STATUS, "%s on master %d: %s",
                    *cmd, m, r ? r->str : rc->errstr);
      freeReplyObject(r);
    }
    ck_assert_int_eq(gm_test_redis_int(rc, "DBSIZE"), 0);
    redisFree(rc);
  }
}

/* The shared cluster stays up for the next case (shared_down stops it). */
static void shared_teardown(void) {
  gm_test_conn_destroy(&conn);
  if (gmd) gm_test_gmd_stop(&gmd);
  cl = NULL;
}

/* testmkt.deadline op "cancel" on `tag`: writes gm:{testmkt:<tag>}:entity
   = "cancel:<id>" (a mutating script with an idempotency record); the
   reply's status. */
static int write_tag(const char *tag, const char *id, const char *idem) {
  Gm__Testmkt__DeadlineRequest req = GM__TESTMKT__DEADLINE_REQUEST__INIT;
  req.op = "cancel";
  req.kind = "x";
  req.tag = (char *)tag;
  req.id = (char *)id;
  Gm__Reply *r =
      gm_test_call(conn, "alice", "testmkt", "deadline", idem, &req.base);
  ck_assert_msg(r != NULL, "no reply for tag %s", tag);
  int st = r->status;
  if (st != GM__STATUS__OK)
    fprintf(stderr, "tag %s: status %d %s\n", tag, st, r->message);
  gm__reply__free_unpacked(r, NULL);
  return st;
}

static char *entity_key(const char *tag) {
  static char key[128];
  snprintf(key, sizeof key, "gm:{testmkt:%s}:entity", tag);
  return key;
}

/* The entity as the node holds it ("" when it does not). */
static void expect_entity(int node, const char *tag, const char *want) {
  redisContext *rc = gm_test_cluster_connect(cl, node);
  redisReply *r = gm_test_redis_cmd(rc, "GET %s", entity_key(tag));
  ck_assert_msg(r->type == REDIS_REPLY_STRING && strcmp(r->str, want) == 0,
                "node %d holds %s = %s, want %s", node, entity_key(tag),
                r->type == REDIS_REPLY_STRING ? r->str : "(none)", want);
  freeReplyObject(r);
  redisFree(rc);
}

static int owner_of(const char *tag) {
  const char *key = entity_key(tag);
  return gm_test_cluster_owner(cl, gm__cluster_keyslot(key, strlen(key)));
}

START_TEST(test_calls_land_on_their_masters) {
  start(0);
  Gm__PingRequest ping = GM__PING_REQUEST__INIT;
  Gm__Reply *p = gm_test_call(conn, NULL, "gm", "ping", NULL, &ping.base);
  ck_assert_ptr_nonnull(p);
  ck_assert_int_eq(p->status, GM__STATUS__OK);
  gm__reply__free_unpacked(p, NULL);

  int per_master[3] = {0};
  for (int i = 0; i < TAGS; i++) {
    char tag[16], idem[16];
    snprintf(tag, sizeof tag, "t%d", i);
    snprintf(idem, sizeof idem, "w-%d", i);
    ck_assert_int_eq(write_tag(tag, tag, idem), GM__STATUS__OK);
    /* A retry replays from the record next to the entity. */
    ck_assert_int_eq(write_tag(tag, tag, idem), GM__STATUS__OK);
    int owner = owner_of(tag);
    ck_assert_int_ge(owner, 0);
    ck_assert_int_lt(owner, 3);
    per_master[owner]++;
    char want[32];
    snprintf(want, sizeof want, "cancel:%s", tag);
    expect_entity(owner, tag, want);
  }
  /* Our slot of each key is the cluster's, and the tags spread. */
  redisContext *rc = gm_test_cluster_connect(cl, 0);
  for (int m = 0; m < 3; m++) {
    ck_assert_msg(per_master[m] > 0, "no tag of %d on master %d", TAGS, m);
    redisContext *mc = gm_test_cluster_connect(cl, m);
    ck_assert_int_gt(gm_test_redis_int(mc, "DBSIZE"), 0);
    redisFree(mc);
  }
  for (int i = 0; i < TAGS; i++) {
    char key[64];
    snprintf(key, sizeof key, "gm:{testmkt:t%d}:idem:alice:dl:w-%d", i, i);
    ck_assert_int_eq(gm_test_redis_int(rc, "CLUSTER KEYSLOT %s", key),
                     gm__cluster_keyslot(key, strlen(key)));
  }
  redisFree(rc);
}
END_TEST

/* SELECT count(*) ... of gmd's ledger, waited for (up to 30 s) until it
   is `want`; the last count read. */
static long long ledger_wait(const char *sql, long long want) {
  long long n = -1;
  for (int i = 0; i < 3000 && n != want; i++) {
    sqlite3 *db;
    if (sqlite3_open_v2(gm_test_gmd_ledger(gmd), &db, SQLITE_OPEN_READONLY,
                        NULL) == SQLITE_OK) {
      sqlite3_busy_timeout(db, 5000);
      sqlite3_stmt *st;
      if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK) {
        if (sqlite3_step(st) == SQLITE_ROW) n = sqlite3_column_int64(st, 0);
        sqlite3_finalize(st);
      }
    }
    sqlite3_close(db);
    if (n != want) gm_test_sleep_ms(10);
  }
  return n;
}

/* One "tick" deadline due at due_ms on each of TAGS tags <prefix>0..,
 * counting per master the tags it owns. */
static void set_ticks(const char *prefix, int64_t due, int per_master[3]) {
  for (int i = 0; i < TAGS; i++) {
    char tag[16], idem[24];
    snprintf(tag, sizeof tag, "%s%d", prefix, i);
    snprintf(idem, sizeof idem, "%sset-%d", prefix, i);
    Gm__Testmkt__DeadlineRequest req = GM__TESTMKT__DEADLINE_REQUEST__INIT;
    req.op = "set";
    req.kind = "tick";
    req.tag = tag;
    req.id = tag;
    req.due_ms = due;
    Gm__Reply *r =
        gm_test_call(conn, "alice", "testmkt", "deadline", idem, &req.base);
    ck_assert_ptr_nonnull(r);
    ck_assert_int_eq(r->status, GM__STATUS__OK);
    gm__reply__free_unpacked(r, NULL);
    per_master[owner_of(tag)]++;
  }
}

/*
 * The settler and the deadline poller on three masters: deadlines due at
 * once on tags spread over every master fire (the claim script runs on
 * each tag's master), and the entries their callbacks emit to each tag's
 * outbox stream reach the ledger once (the settler reads, acks and trims
 * each stream on its own master).
 */
START_TEST(test_deadlines_fire_and_settle_on_every_master) {
  start(0);
  struct timespec now;
  clock_gettime(CLOCK_REALTIME, &now);
  int64_t due = (int64_t)now.tv_sec * 1000 - 1000;
  int per_master[3] = {0};
  set_ticks("s", due, per_master);
  for (int m = 0; m < 3; m++)
    ck_assert_msg(per_master[m] > 0, "no tag of %d on master %d", TAGS, m);
  ck_assert_int_eq(ledger_wait("SELECT count(*) FROM testmkt_fired", TAGS),
                   TAGS);
  ck_assert_int_eq(
      ledger_wait("SELECT count(DISTINCT id) FROM testmkt_fired", TAGS), TAGS);
  /* Each stream acked and trimmed on its own master: nothing pending. */
  for (int i = 0; i < TAGS; i++) {
    char stream[64];
    snprintf(stream, sizeof stream, "gm:{testmkt:s%d}:outbox", i);
    int owner =
        gm_test_cluster_owner(cl, gm__cluster_keyslot(stream, strlen(stream)));
    redisContext *rc = gm_test_cluster_connect(cl, owner);
    long long pending = -1;
    for (int t = 0; t < 1000 && pending != 0; t++) {
      redisReply *x = gm_test_redis_cmd(rc, "XPENDING %s gm-settle", stream);
      pending = x->type == REDIS_REPLY_ARRAY && x->elements > 0 &&
                        x->element[0]->type == REDIS_REPLY_INTEGER
                    ? x->element[0]->integer
                    : -1;
      freeReplyObject(x);
      if (pending != 0) gm_test_sleep_ms(10);
    }
    ck_assert_msg(pending == 0, "%s has %lld pending", stream, pending);
    redisFree(rc);
  }
}
END_TEST

/* Runs `fmt` on node and expects +OK. */
static void ok_on(int node, const char *fmt, const char *a, const char *b) {
  redisContext *rc = gm_test_cluster_connect(cl, node);
  redisReply *r = gm_test_redis_cmd(rc, fmt, a, b);
  freeReplyObject(r);
  redisFree(rc);
}

START_TEST(test_slot_migration_moved_and_ask) {
  start(0);
  const char *tag = "mv";
  ck_assert_int_eq(write_tag(tag, "1", "mv-1"), GM__STATUS__OK);
  int from = owner_of(tag), to = (from + 1) % 3;
  const char *key = entity_key(tag);
  int slot = gm__cluster_keyslot(key, strlen(key));
  char s[16];
  snprintf(s, sizeof s, "%d", slot);

  /* A client of core/redis.c of its own, whose map says `from`. */
  char err[512];
  gm__redis_addr addr = {.cluster = gm_test_cluster_seeds(cl)};
  gm__redis *r = gm__redis_connect(&addr, err, sizeof err);
  ck_assert_msg(r != NULL, "%s", err);

  ok_on(to, "CLUSTER SETSLOT %s IMPORTING %s", s, gm_test_cluster_id(cl, from));
  ok_on(from, "CLUSTER SETSLOT %s MIGRATING %s", s, gm_test_cluster_id(cl, to));
  /* A key `from` lacks while the slot migrates: ASK, ASKING, set on `to`. */
  redisReply *rep = gm__redis_callf(r, "SET gm:{testmkt:mv}:plain asked");
  ck_assert_ptr_nonnull(rep);
  ck_assert_msg(rep->type == REDIS_REPLY_STATUS, "SET: %s", rep->str);
  freeReplyObject(rep);
  redisContext *tc = gm_test_cluster_connect(cl, to);
  freeReplyObject(gm_test_redis_cmd(tc, "ASKING"));
  rep = gm_test_redis_cmd(tc, "GET gm:{testmkt:mv}:plain");
  ck_assert_str_eq(rep->str, "asked");
  freeReplyObject(rep);
  redisFree(tc);
  redisContext *fc = gm_test_cluster_connect(cl, from);
  /* A script whose keys are split between the nodes cannot run on either
     (TRYAGAIN): gmd answers UNAVAILABLE, which clients retry. */
  int st = write_tag(tag, "2", "mv-2");
  ck_assert_msg(st == GM__STATUS__OK || st == GM__STATUS__UNAVAILABLE,
                "status %d during the migration", st);

  /* Every key of the slot to `to`, then the slot itself. */
  redisReply *keys =
      gm_test_redis_cmd(fc, "CLUSTER GETKEYSINSLOT %d 1000", slot);
  ck_assert_uint_gt(keys->elements, 0);
  for (size_t i = 0; i < keys->elements; i++) {
    redisReply *m =
        redisCommand(fc, "MIGRATE 127.0.0.1 %d %s 0 5000",
                     gm_test_cluster_port(cl, to), keys->element[i]->str);
    ck_assert_msg(m && m->type == REDIS_REPLY_STATUS, "MIGRATE %s: %s",
                  keys->element[i]->str, m ? m->str : fc->errstr);
    freeReplyObject(m);
  }
  freeReplyObject(keys);
  redisFree(fc);
  for (int m = 0; m < 3; m++)
    ok_on(m, "CLUSTER SETSLOT %s NODE %s", s, gm_test_cluster_id(cl, to));
  gm_test_cluster_wait_ok(cl);

  /* gmd's workers and r still name `from`: MOVED, followed. */
  ck_assert_int_eq(write_tag(tag, "3", "mv-3"), GM__STATUS__OK);
  expect_entity(to, tag, "cancel:3");
  ck_assert_int_eq(write_tag(tag, "2", "mv-2"), GM__STATUS__OK);
  /* The first call's record moved with the slot: a retry replays it and
     changes nothing. */
  ck_assert_int_eq(write_tag(tag, "1", "mv-1"), GM__STATUS__OK);
  expect_entity(to, tag, "cancel:2");
  rep = gm__redis_callf(r, "GET gm:{testmkt:mv}:plain");
  ck_assert_ptr_nonnull(rep);
  ck_assert_int_eq(rep->type, REDIS_REPLY_STRING);
  ck_assert_str_eq(rep->str, "asked");
  freeReplyObject(rep);
  gm__redis_destroy(&r);
}
END_TEST

START_TEST(test_master_killed_replica_promoted) {
  start(1);
  for (int i = 0; i < TAGS; i++) {
    char tag[16], idem[16];
    snprintf(tag, sizeof tag, "t%d", i);
    snprintf(idem, sizeof idem, "a-%d", i);
    ck_assert_int_eq(write_tag(tag, "a", idem), GM__STATUS__OK);
  }
  int victim = owner_of("t0"), replica = -1;
  for (int n = 3; n < 6; n++) {
    redisContext *rc = gm_test_cluster_connect(cl, n);
    redisReply *role = gm_test_redis_cmd(rc, "ROLE");
    if (role->element[2]->integer == gm_test_cluster_port(cl, victim))
      replica = n;
    freeReplyObject(role);
    redisFree(rc);
  }
  ck_assert_int_ge(replica, 0);
  gm_test_cluster_kill(cl, victim);
  ck_assert_int_ne(write_tag("t0", "b", "b-0"), GM__STATUS__OK);
  ok_on(replica, "CLUSTER FAILOVER %s%s", "TAKEOVER", "");
  gm_test_cluster_wait_ok(cl);

  /* Requests resume once gmd reads the new map; until then they fail
     retryably.  Each retry carries the same idempotency key. */
  int st = -1;
  for (int tries = 0; tries < 100 && st != GM__STATUS__OK; tries++) {
    st = write_tag("t0", "b", "b-0");
    ck_assert_msg(st == GM__STATUS__OK || st == GM__STATUS__UNAVAILABLE,
                  "status %d after the failover", st);
    if (st != GM__STATUS__OK) gm_test_sleep_ms(100);
  }
  ck_assert_int_eq(st, GM__STATUS__OK);
  expect_entity(replica, "t0", "cancel:b");
  for (int i = 0; i < TAGS; i++) {
    char tag[16], idem[16];
    snprintf(tag, sizeof tag, "t%d", i);
    snprintf(idem, sizeof idem, "c-%d", i);
    ck_assert_int_eq(write_tag(tag, "c", idem), GM__STATUS__OK);
  }
}
END_TEST

/* Writes `tag` = "cancel:<value>" under one idempotency key, retrying
   while gmd answers UNAVAILABLE (the retry a client makes); the attempts
   it took.  Any other status fails the test. */
static int write_until_ok(const char *tag, const char *value,
                          const char *idem) {
  for (int tries = 1; tries <= 500; tries++) {
    int st = write_tag(tag, value, idem);
    if (st == GM__STATUS__OK) return tries;
    ck_assert_msg(st == GM__STATUS__UNAVAILABLE, "tag %s: status %d", tag, st);
    gm_test_sleep_ms(20);
  }
  ck_abort_msg("tag %s: still UNAVAILABLE after 500 tries", tag);
  return 0;
}

/* redis-cli --cluster reshard moves every slot of one master to another
   while requests flow: each request succeeds, at once or after retries,
   and the last value acknowledged for each tag is what its new master
   holds. */
START_TEST(test_reshard_while_requests_flow) {
  start(0);
  int from = owner_of("t0"), to = (from + 1) % 3, last[TAGS] = {0};
  for (int i = 0; i < TAGS; i++) {
    char tag[16], idem[24];
    snprintf(tag, sizeof tag, "t%d", i);
    snprintf(idem, sizeof idem, "r-%d-0", i);
    write_until_ok(tag, "0", idem);
  }
  /* All of from's slots: a third of 16384. */
  pid_t cli = gm_test_cluster_reshard(cl, from, to, 16384 / 3 + 1);
  int during = 0, retried = 0, rc;
  for (int n = 1; (rc = gm_test_cluster_reshard_done(cli)) < 0; n++) {
    int i = n % TAGS;
    char tag[16], idem[24], value[16];
    snprintf(tag, sizeof tag, "t%d", i);
    snprintf(idem, sizeof idem, "r-%d-%d", i, n);
    snprintf(value, sizeof value, "%d", n);
    retried += write_until_ok(tag, value, idem) > 1;
    last[i] = n;
    during++;
  }
  ck_assert_int_eq(rc, 0);
  gm_test_cluster_wait_ok(cl);
  fprintf(stderr, "reshard: %d writes while it ran, %d needed a retry\n",
          during, retried);
  ck_assert_int_gt(during, 0);
  for (int i = 0; i < TAGS; i++) {
    char tag[16], want[24];
    snprintf(tag, sizeof tag, "t%d", i);
    int owner = owner_of(tag);
    ck_assert_int_ne(owner, from);
    snprintf(want, sizeof want, "cancel:%d", last[i]);
    expect_entity(owner, tag, want);
  }
}
END_TEST

/* The hash field `id` of gm:{testmkt:<tag>}:<key> on the tag's master;
   0 when absent. */
static long long tag_field(const char *tag, const char *key, const char *id) {
  char k[128];
  snprintf(k, sizeof k, "gm:{testmkt:%s}:%s", tag, key);
  redisContext *rc = gm_test_cluster_connect(cl, owner_of(tag));
  redisReply *r = gm_test_redis_cmd(rc, "HGET %s %s", k, id);
  long long v = r->type == REDIS_REPLY_STRING ? atoll(r->str) : 0;
  freeReplyObject(r);
  redisFree(rc);
  return v;
}

/* The deadline service runs its scripts (EVALSHA after SCRIPT LOAD) on the
   master of each tag: a deadline fires whichever master holds its tag, not
   only on the one a keyless SCRIPT LOAD reached. */
START_TEST(test_deadlines_fire_on_every_master) {
  start_with(0, "[ledger]\nsettle = off\n[deadlines]\npoll_ms = 20\n");
  int per_master[3] = {0};
  for (int i = 0; i < TAGS; i++) {
    char tag[16], idem[16];
    snprintf(tag, sizeof tag, "d%d", i);
    snprintf(idem, sizeof idem, "dl-%d", i);
    Gm__Testmkt__DeadlineRequest req = GM__TESTMKT__DEADLINE_REQUEST__INIT;
    req.op = "set";
    req.kind = "tick";
    req.tag = tag;
    req.id = "x";
    req.due_ms = (int64_t)time(NULL) * 1000; /* due now */
    Gm__Reply *r =
        gm_test_call(conn, "alice", "testmkt", "deadline", idem, &req.base);
    ck_assert_ptr_nonnull(r);
    ck_assert_msg(r->status == GM__STATUS__OK, "tag %s: %s", tag, r->message);
    gm__reply__free_unpacked(r, NULL);
    per_master[owner_of(tag)]++;
  }
  ck_assert(per_master[0] && per_master[1] && per_master[2]);
  for (int i = 0; i < TAGS; i++) {
    char tag[16];
    snprintf(tag, sizeof tag, "d%d", i);
    long long after = 0;
    for (int w = 0; w < 1000 && (after = tag_field(tag, "after", "x")) != 1;
         w++)
      gm_test_sleep_ms(10);
    ck_assert_msg(after == 1,
                  "the deadline of tag %s (master %d) fired %lld "
                  "times",
                  tag, owner_of(tag), after);
    ck_assert_int_eq(tag_field(tag, "fired", "x"), 1);
  }
}
END_TEST

/* The port gmd logged for /metrics. */
static int metrics_port(void) {
  int p = gm_test_gmd_metrics_port(gmd);
  ck_assert_msg(p > 0, "gmd logged no metrics port");
  return p;
}

/* GET path on gmd's metrics port: the HTTP status, the body in a static
   buffer. */
static const char *http_get(int port, const char *path, int *status) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  ck_assert_int_ge(fd, 0);
  struct timeval tv = {10, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
  inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
  ck_assert_int_eq(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
  char req[256];
  int n = snprintf(req, sizeof req, "GET %s HTTP/1.0\r\n\r\n", path);
  ck_assert_int_eq(write(fd, req, (size_t)n), n);
  static char buf[1 << 20];
  size_t len = 0;
  ssize_t got;
  while (len < sizeof buf - 1 &&
         (got = read(fd, buf + len, sizeof buf - 1 - len)) > 0)
    len += (size_t)got;
  close(fd);
  buf[len] = '\0';
  *status = 0;
  sscanf(buf, "HTTP/1.%*d %d", status);
  const char *body = strstr(buf, "\r\n\r\n");
  return body ? body + 4 : buf;
}

/* /healthz asks every master: one that is down (here with no replica to
   take over) fails it, by its address, whichever master it is. */
START_TEST(test_healthz_asks_every_master) {
  start_with(0, "[metrics]\nlisten = 127.0.0.1:0\n");
  int port = metrics_port(), status = 0;
  const char *body = http_get(port, "/healthz", &status);
  ck_assert_msg(status == 200, "%d %s", status, body);
  for (int node = 1; node < 3; node++) {
    gm_test_cluster_kill(cl, node);
    char want[64];
    snprintf(want, sizeof want, "127.0.0.1:%d does not answer",
             gm_test_cluster_port(cl, node));
    body = http_get(port, "/healthz", &status);
    ck_assert_msg(status == 503 && strstr(body, "does not answer PING"),
                  "master %d killed: /healthz said %d %s", node, status, body);
    if (node == 1)
      ck_assert_msg(strstr(body, want) != NULL, "want \"%s\" in %s", want,
                    body);
  }
}
END_TEST

/* testmkt.bump (one emit on tag "all") under idem, retried while gmd
   answers UNAVAILABLE. */
static void bump_until_ok(const char *idem) {
  for (int tries = 0; tries < 100; tries++) {
    Gm__Testmkt__BumpRequest req = GM__TESTMKT__BUMP_REQUEST__INIT;
    req.note = "cluster";
    Gm__Reply *r =
        gm_test_call(conn, "alice", "testmkt", "bump", idem, &req.base);
    ck_assert_ptr_nonnull(r);
    int st = r->status;
    gm__reply__free_unpacked(r, NULL);
    if (st == GM__STATUS__OK) return;
    ck_assert_int_eq(st, GM__STATUS__UNAVAILABLE);
    gm_test_sleep_ms(50);
  }
  ck_abort_msg("bump %s: still UNAVAILABLE", idem);
}

/* Waits (up to 30 s; the count is made at most every outbox_count_ms, 200
   here) until the metrics' outbox entries say want, failing the test
   otherwise. */
static void wait_outbox_entries(double want) {
  gm_test_gmd_wait_metric(gmd, "greenmarket_outbox_entries", want, want, 30000);
}

/* The metrics thread's connection to the master of gm:outboxes (not the
   first master, whose context the PING check uses) is closed by Redis: the
   outbox count comes back on a later scrape instead of staying unknown. */
START_TEST(test_metrics_outbox_count_survives_a_closed_node_connection) {
  start_with(0,
             "[ledger]\nsettle = off\n[metrics]\nlisten = 127.0.0.1:0\n"
             "outbox_count_ms = 200\n");
  metrics_port(); /* fails the test unless gmd serves /metrics */
  bump_until_ok("m-1");
  wait_outbox_entries(1);
  static const char registry[] = "gm:outboxes";
  int node = gm_test_cluster_owner(
      cl, gm__cluster_keyslot(registry, strlen(registry)));
  ck_assert_int_ne(node, gm_test_cluster_owner(cl, 0));
  redisContext *rc = gm_test_cluster_connect(cl, node);
  ck_assert_int_gt(gm_test_redis_int(rc, "CLIENT KILL TYPE normal"), 0);
  redisFree(rc);
  bump_until_ok("m-2");
  wait_outbox_entries(2);
}
END_TEST

/* Until the test opens it (10 s at most): a count held on the checker
   thread, so the check runs past the request's deadline. */
static void hold_count(void *arg) {
  atomic_int *opened = arg;
  for (int i = 0; i < 2000 && !atomic_load(opened); i++) gm_test_sleep_ms(5);
}

/* A health check that waits on one node of a cluster (the master of
   gm:outboxes, held in the outbox count by a hook) is answered 503 naming
   that node, which the operator can look at, not the cluster's seed list.
   Before, "Redis at cluster 127.0.0.1:...,... to answer the outbox count". */
START_TEST(test_a_503_names_the_node_waited_on) {
  static _Atomic uint64_t bad_frames = 0;
  atomic_int opened = 0;
  gm__config *c = gm__config_new();
  gm__config_set(c, "metrics", "listen", "127.0.0.1:0");
  char err[512] = "";
  gm__metrics *m = gm__metrics_new(c, err, sizeof err);
  ck_assert_msg(m != NULL, "%s", err);
  gm__metrics_set_request_deadline_ms(m, 500);
  gm__metrics_set_count_hook(m, hold_count, &opened);
  gm__metrics_view v = {.broker = "test",
                        .bad_frames = &bad_frames,
                        .redis = {.cluster = gm_test_cluster_seeds(cl)},
                        .ledger_path = "/nonexistent.sqlite"};
  ck_assert_msg(gm__metrics_start(m, &v, err, sizeof err) == 0, "%s", err);
  int status;
  const char *body = http_get(gm__metrics_port(m), "/healthz", &status);
  static const char registry[] = "gm:outboxes";
  char want[128];
  snprintf(want, sizeof want,
           "Redis at 127.0.0.1:%d to answer the outbox count",
           gm_test_cluster_port(
               cl, gm_test_cluster_owner(
                       cl, gm__cluster_keyslot(registry, strlen(registry)))));
  int named = status == 503 && strstr(body, want) && !strstr(body, "cluster ");
  char said[1024];
  snprintf(said, sizeof said, "%s", body);
  atomic_store(&opened, 1);
  gm__metrics_destroy(&m);
  gm__config_destroy(&c);
  ck_assert_msg(named, "want 503 \"%s\", got %d %s", want, status, said);
}
END_TEST

/* A failover that loses an acknowledged SADD gm:outboxes (replication is
   asynchronous: kill -9 of the master before its replica had it) is
   repaired as a restarted Redis is: gmd forgets which streams it
   registered once its map changes, and the tag's next run registers its
   stream again on the new master, so the settler lists it. */
START_TEST(test_outbox_registered_again_after_a_failover) {
  start_with(1, "[ledger]\nsettle = off\n");
  static const char registry[] = "gm:outboxes",
                    stream[] = "gm:{testmkt:all}:outbox";
  bump_until_ok("o-0");
  int victim = gm_test_cluster_owner(
      cl, gm__cluster_keyslot(registry, strlen(registry)));
  ck_assert_int_ne(
      victim,
      gm_test_cluster_owner(cl, gm__cluster_keyslot(stream, strlen(stream))));
  int replica = -1;
  for (int n = 3; n < 6; n++) {
    redisContext *rc = gm_test_cluster_connect(cl, n);
    redisReply *role = gm_test_redis_cmd(rc, "ROLE");
    if (role->element[2]->integer == gm_test_cluster_port(cl, victim))
      replica = n;
    freeReplyObject(role);
    redisFree(rc);
  }
  ck_assert_int_ge(replica, 0);
  /* The replica has the registration (a fresh replica may still be in its
     first sync), so the SREM below is what removes it. */
  redisContext *vc = gm_test_cluster_connect(cl, victim);
  long long synced = 0;
  for (int i = 0; i < 30 && !synced; i++)
    synced = gm_test_redis_int(vc, "WAIT 1 1000");
  ck_assert_int_eq(synced, 1);
  redisFree(vc);
  gm_test_cluster_kill(cl, victim);
  ok_on(replica, "CLUSTER FAILOVER %s%s", "TAKEOVER", "");
  gm_test_cluster_wait_ok(cl);
  redisContext *rc = gm_test_cluster_connect(cl, replica);
  ck_assert_int_eq(gm_test_redis_int(rc, "SREM %s %s", registry, stream), 1);
  long long listed = 0;
  for (int i = 1; i <= 100 && !listed; i++) {
    char idem[16];
    snprintf(idem, sizeof idem, "o-%d", i);
    bump_until_ok(idem);
    listed = gm_test_redis_int(rc, "SISMEMBER %s %s", registry, stream);
    if (!listed) gm_test_sleep_ms(100);
  }
  redisFree(rc);
  ck_assert_msg(listed, "%s is not in %s on the new master after 100 runs",
                stream, registry);
}
END_TEST

/* One client thread of the failover test: bumps with its own idempotency
   keys (the note is the key, so each ledger row names its request),
   retrying a request under the same key while gmd answers UNAVAILABLE or
   does not answer, until told to stop. */
typedef struct bumper {
  pthread_t th;
  gm_test_conn *conn;
  int id;
  int acked;   /* requests answered OK */
  int retried; /* of them, those that needed a retry */
  int bad;     /* any other status: the test fails */
} bumper;

static atomic_int bumpers_stop;

static void *bumper_run(void *arg) {
  bumper *b = arg;
  while (!atomic_load(&bumpers_stop) && !b->bad) {
    char idem[32];
    snprintf(idem, sizeof idem, "f%d-%d", b->id, b->acked);
    int st = -1, tries = 0;
    while (st != GM__STATUS__OK && tries < 500) {
      Gm__Testmkt__BumpRequest req = GM__TESTMKT__BUMP_REQUEST__INIT;
      req.note = idem;
      Gm__Reply *r =
          gm_test_call(b->conn, "alice", "testmkt", "bump", idem, &req.base);
      tries++;
      st = r ? (int)r->status : GM__STATUS__UNAVAILABLE;
      if (r) gm__reply__free_unpacked(r, NULL);
      if (st != GM__STATUS__OK && st != GM__STATUS__UNAVAILABLE) {
        fprintf(stderr, "bump %s: status %d\n", idem, st);
        b->bad = 1;
      }
      if (st == GM__STATUS__UNAVAILABLE) gm_test_sleep_ms(20);
      if (b->bad) break;
    }
    if (st != GM__STATUS__OK) {
      b->bad = 1;
      break;
    }
    b->retried += tries > 1;
    b->acked++;
  }
  return NULL;
}

/*
 * Runs with [redis] cluster_wait_replicas on: without it, in about 1 run
 * of 6 one acknowledged bump was lost (7048 of 7049 in the ledger), the
 * write in flight when the master died, answered before its replica had
 * it.  With it gmd answers a bump only after WAIT 1 saw a replica take it.
 *
 * kill -9 of the master under load, its replica promoted: client threads
 * send idempotent bumps (each one INCR of gm:{testmkt:all}:counter and one
 * outbox entry, settled into testmkt_bumps with the seq as primary key)
 * through gmd, retrying UNAVAILABLE under the same key, while the master
 * of tag "all" is killed and its replica takes over.  Afterwards every
 * acknowledged request is in the ledger exactly once, the counter on the
 * new master agrees with the ledger, and deadlines set before the kill on
 * every master fire once.  Replication is asynchronous: the test waits
 * until the replicas stream (without that wait, a third of the runs killed
 * the master while its replica was still between its first sync and its
 * first ACK, and lost every acknowledged bump since; see docs/operations.md,
 * Redis Cluster).
 */
START_TEST(test_master_killed_under_load) {
  /* Two replicas a master: the promoted one keeps a replica (the other
     follows it), else every bump after the failover would wait in vain. */
  start_with(2,
             "[deadlines]\npoll_ms = 20\n[redis]\ncluster_wait_replicas = "
             "1000\n");
  static const char counter[] = "gm:{testmkt:all}:counter";
  int victim =
      gm_test_cluster_owner(cl, gm__cluster_keyslot(counter, strlen(counter)));
  /* Before any call: with cluster_wait_replicas a write is answered only
     once a replica streams (cluster_failover.h). */
  gm_test_cluster_wait_streaming(cl);

  /* Deadlines due after the failover, on tags over every master. */
  struct timespec now;
  clock_gettime(CLOCK_REALTIME, &now);
  int64_t due = (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000 + 3000;
  int per_master[3] = {0};
  set_ticks("k", due, per_master);
  int on_victim = per_master[victim];
  ck_assert_int_gt(on_victim, 0);

  enum { CLIENTS = 4 };
  bumper b[CLIENTS];
  atomic_store(&bumpers_stop, 0);
  for (int i = 0; i < CLIENTS; i++) {
    b[i] = (bumper){
        .conn = gm_test_conn_new(gm_test_gmd_endpoint(gmd), NULL, NULL, NULL),
        .id = i};
    ck_assert_int_eq(pthread_create(&b[i].th, NULL, bumper_run, &b[i]), 0);
  }
  gm_test_sleep_ms(500);
  /* Its replica furthest along takes over (cluster_failover.h). */
  int replica = gm_test_cluster_fail_over(cl, victim);
  gm_test_sleep_ms(500);
  atomic_store(&bumpers_stop, 1);
  int acked = 0, retried = 0, bad = 0;
  for (int i = 0; i < CLIENTS; i++) {
    pthread_join(b[i].th, NULL);
    gm_test_conn_destroy(&b[i].conn);
    acked += b[i].acked;
    retried += b[i].retried;
    bad += b[i].bad;
  }
  fprintf(stderr, "failover under load: %d bumps acknowledged, %d retried\n",
          acked, retried);
  ck_assert_int_eq(bad, 0);
  ck_assert_int_gt(retried, 0); /* the kill did land under load */

  /* Every acknowledged request settled exactly once. */
  ck_assert_int_eq(ledger_wait("SELECT count(*) FROM testmkt_bumps", acked),
                   acked);
  ck_assert_int_eq(
      ledger_wait("SELECT count(DISTINCT note) FROM testmkt_bumps", acked),
      acked);
  for (int i = 0; i < CLIENTS; i++) {
    char sql[160];
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM testmkt_bumps WHERE note LIKE 'f%d-%%'", i);
    ck_assert_int_eq(ledger_wait(sql, b[i].acked), b[i].acked);
  }
  /* Redis and the ledger agree: the counter is the last seq settled, and
     no seq is missing. */
  redisContext *rc = gm_test_cluster_connect(cl, replica);
  redisReply *r = gm_test_redis_cmd(rc, "GET %s", counter);
  ck_assert_int_eq(r->type, REDIS_REPLY_STRING);
  ck_assert_int_eq(atoll(r->str), acked);
  freeReplyObject(r);
  redisFree(rc);
  ck_assert_int_eq(ledger_wait("SELECT max(seq) FROM testmkt_bumps", acked),
                   acked);

  /* The deadlines fire once each, those of the killed master's tags from
     its promoted replica. */
  ck_assert_int_eq(ledger_wait("SELECT count(*) FROM testmkt_fired", TAGS),
                   TAGS);
  ck_assert_int_eq(
      ledger_wait("SELECT count(DISTINCT id) FROM testmkt_fired", TAGS), TAGS);
}
END_TEST

/* One fiber of the pipelined test: its own tag, SET then GET. */
typedef struct piper {
  gm__redis *r;
  int i;
  int ok;
} piper;

static void piper_run(void *arg) {
  piper *p = arg;
  redisReply *set = gm__redis_callf(p->r, "SET gm:{pipe:%d}:k v%d", p->i, p->i);
  redisReply *get = gm__redis_callf(p->r, "GET gm:{pipe:%d}:k", p->i);
  char want[16];
  snprintf(want, sizeof want, "v%d", p->i);
  p->ok = set && set->type == REDIS_REPLY_STATUS && get &&
          get->type == REDIS_REPLY_STRING && strcmp(get->str, want) == 0;
  if (set) freeReplyObject(set);
  if (get) freeReplyObject(get);
}

/* A fiber of the pipelined ASK test: SET then GET of a key of its own,
   in the migrating slot (tag "ask") or on another tag. */
static void asker_run(void *arg) {
  piper *p = arg;
  const char *tag = p->i % 2 ? "ask" : "noask";
  redisReply *set =
      gm__redis_callf(p->r, "SET gm:{%s}:k%d v%d", tag, p->i, p->i);
  redisReply *get = gm__redis_callf(p->r, "GET gm:{%s}:k%d", tag, p->i);
  char want[16];
  snprintf(want, sizeof want, "v%d", p->i);
  p->ok = set && set->type == REDIS_REPLY_STATUS && get &&
          get->type == REDIS_REPLY_STRING && strcmp(get->str, want) == 0;
  if (set) freeReplyObject(set);
  if (get) freeReplyObject(get);
}

/* ASK on a pipelined connection: while a slot migrates, fibers' commands
   for keys its old master lacks go to the new one behind ASKING, queued
   with other fibers' commands, and each fiber gets its own replies. */
START_TEST(test_pipelined_ask) {
  char err[512];
  gm__redis_addr addr = {.cluster = gm_test_cluster_seeds(cl)};
  gm__redis *r = gm__redis_connect(&addr, err, sizeof err);
  ck_assert_msg(r != NULL, "%s", err);
  gm__redis_set_pipelined(r, 1);
  int slot = gm__cluster_keyslot("ask", 3);
  int from = gm_test_cluster_owner(cl, slot), to = (from + 1) % 3;
  char s[16];
  snprintf(s, sizeof s, "%d", slot);
  ok_on(to, "CLUSTER SETSLOT %s IMPORTING %s", s, gm_test_cluster_id(cl, from));
  ok_on(from, "CLUSTER SETSLOT %s MIGRATING %s", s, gm_test_cluster_id(cl, to));
  enum { N = 32 };
  static gm__fiber *f[N];
  static piper p[N];
  for (int i = 0; i < N; i++) {
    f[i] = gm__fiber_new(64 * 1024);
    p[i] = (piper){r, i, 0};
    ck_assert_int_eq(gm__fiber_start(f[i], asker_run, &p[i]), 0);
  }
  for (int rounds = 0; gm__redis_waiting(r) && rounds < 1000; rounds++) {
    gm__redis_send(r);
    struct pollfd pfd = {gm__redis_fd(r), POLLIN, 0};
    ck_assert_int_ge(poll(&pfd, 1, 5000), 1);
    gm__redis_receive(r);
  }
  ck_assert_uint_eq(gm__redis_waiting(r), 0);
  for (int i = 0; i < N; i++) {
    ck_assert_msg(p[i].ok, "fiber %d got another's reply or none", i);
    gm__fiber_destroy(&f[i]);
  }
  /* The slot's keys are on `to` only. */
  redisContext *tc = gm_test_cluster_connect(cl, to);
  redisContext *fc = gm_test_cluster_connect(cl, from);
  ck_assert_int_eq(gm_test_redis_int(fc, "CLUSTER COUNTKEYSINSLOT %d", slot),
                   0);
  ck_assert_int_eq(gm_test_redis_int(tc, "CLUSTER COUNTKEYSINSLOT %d", slot),
                   N / 2);
  redisFree(tc);
  redisFree(fc);
  gm__redis_destroy(&r);
}
END_TEST

/* A worker's connection on a cluster: fibers' commands queue on each
   master's connection at once, the worker polls one descriptor, and every
   fiber gets its own replies. */
START_TEST(test_pipelines_per_master) {
  char err[512];
  gm__redis_addr addr = {.cluster = gm_test_cluster_seeds(cl)};
  gm__redis *r = gm__redis_connect(&addr, err, sizeof err);
  ck_assert_msg(r != NULL, "%s", err);
  gm__redis_set_pipelined(r, 1);
  enum { N = 64 };
  static gm__fiber *f[N];
  static piper p[N];
  for (int i = 0; i < N; i++) {
    f[i] = gm__fiber_new(64 * 1024);
    p[i] = (piper){r, i, 0};
    ck_assert_int_eq(gm__fiber_start(f[i], piper_run, &p[i]), 0);
  }
  /* Every fiber waits on its tag's master: all three have a queue. */
  ck_assert_uint_eq(gm__redis_waiting(r), N);
  int busy[3] = {0};
  for (int i = 0; i < N; i++) {
    char key[32];
    snprintf(key, sizeof key, "gm:{pipe:%d}:k", i);
    busy[gm_test_cluster_owner(cl, gm__cluster_keyslot(key, strlen(key)))]++;
  }
  ck_assert(busy[0] && busy[1] && busy[2]);
  for (int rounds = 0; gm__redis_waiting(r) && rounds < 1000; rounds++) {
    gm__redis_send(r);
    struct pollfd pfd = {gm__redis_fd(r), POLLIN, 0};
    ck_assert_int_ge(poll(&pfd, 1, 5000), 1);
    gm__redis_receive(r);
  }
  ck_assert_uint_eq(gm__redis_waiting(r), 0);
  for (int i = 0; i < N; i++) {
    ck_assert_msg(p[i].ok, "fiber %d got another's reply or none", i);
    gm__fiber_destroy(&f[i]);
  }
  for (int m = 0; m < 3; m++) {
    redisContext *mc = gm_test_cluster_connect(cl, m);
    ck_assert_int_eq(gm_test_redis_int(mc, "DBSIZE"), busy[m]);
    redisFree(mc);
  }
  /* Per-node commands reach every master through gm__redis_masters. */
  redisContext *masters[8];
  ck_assert_uint_eq(gm__redis_masters(r, masters, 8), 3);
  long long keys = 0;
  for (int m = 0; m < 3; m++) keys += gm_test_redis_int(masters[m], "DBSIZE");
  ck_assert_int_eq(keys, N);
  gm__redis_destroy(&r);
}
END_TEST

/*
 * The fixture's ports (and bus ports, +10000) lie below the kernel's
 * ephemeral range, where no connect() takes a local port: a client socket
 * of any test left in TIME_WAIT there blocks redis-server's bind even with
 * SO_REUSEADDR, and a connection made between the fixture's search and the
 * server's bind takes the port.  Thousands of short connections (the
 * markets' failover checks once) so made "no 9 free loopback ports".
 */
START_TEST(test_fixture_ports_below_the_ephemeral_range) {
  int lo = 32768, hi = 60999;
  FILE *f = fopen("/proc/sys/net/ipv4/ip_local_port_range", "r");
  if (f) {
    ck_assert_int_eq(fscanf(f, "%d %d", &lo, &hi), 2);
    fclose(f);
  }
  cl = gm_test_cluster_start(3, 1, 1000);
  for (int n = 0; n < gm_test_cluster_size(cl); n++) {
    int port = gm_test_cluster_port(cl, n);
    ck_assert_msg(port + 10000 < lo || port > hi,
                  "node %d: port %d or its bus port %d is in the ephemeral "
                  "range %d-%d",
                  n, port, port + 10000, lo, hi);
  }
}
END_TEST

/* gmd's connections closed (a restart of the nodes, CLIENT KILL) while one
   master is stalled (stopped, not dead): /healthz names the stalled master,
   not one whose connection was merely closed and opens again at once, and
   answers within two read timeouts.  Twice: every node's connections
   closed (the stalled one's too: the retry on new connections meets the
   stall), then only the first master's (the same round meets the stall). */
static void kill_gmd_connections(int node) {
  redisContext *c = gm_test_cluster_connect(cl, node);
  redisReply *r = redisCommand(c, "CLIENT KILL TYPE normal SKIPME yes");
  ck_assert_msg(r && r->type == REDIS_REPLY_INTEGER, "CLIENT KILL: %s",
                r ? r->str : c->errstr);
  freeReplyObject(r);
  redisFree(c);
}

START_TEST(test_healthz_names_the_stalled_master_not_a_closed_one) {
  start_with(0, "[metrics]\nlisten = 127.0.0.1:0\n");
  int port = metrics_port(), status = 0;
  const char *body = http_get(port, "/healthz", &status);
  ck_assert_msg(status == 200, "%d %s", status, body);
  int stalled = gm_test_cluster_owner(cl, 16383);
  int first = gm_test_cluster_owner(cl, 0);
  ck_assert_int_ne(stalled, first);
  char want[64], closed[64];
  snprintf(want, sizeof want, "127.0.0.1:%d does not answer PING",
           gm_test_cluster_port(cl, stalled));
  snprintf(closed, sizeof closed, "127.0.0.1:%d",
           gm_test_cluster_port(cl, first));
  for (int round = 0; round < 2; round++) {
    for (int node = 0; node < gm_test_cluster_size(cl); node++)
      if (round == 0 || node == first) kill_gmd_connections(node);
    pid_t pid = gm_test_cluster_pid(cl, stalled);
    ck_assert_int_eq(kill(pid, SIGSTOP), 0);
    uint64_t t0 = gm__clock_mono_us();
    body = http_get(port, "/healthz", &status);
    uint64_t took_ms = (gm__clock_mono_us() - t0) / 1000;
    kill(pid, SIGCONT);
    ck_assert_msg(status == 503 && strstr(body, want) && !strstr(body, closed),
                  "round %d: want 503 \"%s\", not %s: %d %s", round, want,
                  closed, status, body);
    ck_assert_msg(took_ms < 4500, "round %d: /healthz took %llu ms", round,
                  (unsigned long long)took_ms);
    for (int i = 0; i < 100 && status != 200; i++) {
      gm_test_sleep_ms(50);
      body = http_get(port, "/healthz", &status);
    }
    ck_assert_msg(status == 200, "after SIGCONT: %d %s", status, body);
  }
}
END_TEST

/* The same with a password on every node: a probe while a master other than
   the first is stopped failed its PING, and reopening that master's
   connection at the end of the probe failed too (the AUTH of a stopped
   Redis times out; without a password nothing is sent, so the new
   connection looked fine).  The failed connection was kept, so the first
   /healthz after the master went on reported it down again.  Now the
   first probe after SIGCONT passes. */
START_TEST(test_healthz_passes_once_a_stalled_master_resumes_with_a_password) {
  cl = gm_test_cluster_start(3, 0, 1000);
  int stalled = gm_test_cluster_owner(cl, 16383);
  ck_assert_int_ne(stalled, gm_test_cluster_owner(cl, 0));
  for (int node = 0; node < gm_test_cluster_size(cl); node++) {
    redisContext *c = gm_test_cluster_connect(cl, node);
    redisReply *r = redisCommand(c, "CONFIG SET requirepass %s", "cl-pass-1");
    ck_assert_msg(r && r->type == REDIS_REPLY_STATUS, "node %d: %s", node,
                  r ? r->str : c->errstr);
    freeReplyObject(r);
    redisFree(c);
  }
  char *file = gm_test_redis_path(gm_test_cluster_home(cl), "gmd.pass");
  FILE *f = fopen(file, "w");
  ck_assert_ptr_nonnull(f);
  fputs("cl-pass-1\n", f);
  fclose(f);
  char conf[2048];
  snprintf(conf, sizeof conf,
           "%s[plugins]\nload = testmkt\n[metrics]\nlisten = 127.0.0.1:0\n"
           "[redis]\npassword_file = %s\n",
           gm_test_cluster_conf(cl), file);
  free(file);
  gmd = gm_test_gmd_start(gm_test_cluster_home(cl), TEST_PLUGIN_DIR, conf);
  int port = metrics_port(), status = 0;
  const char *body = http_get(port, "/healthz", &status);
  ck_assert_msg(status == 200, "%d %s", status, body);
  char want[64];
  snprintf(want, sizeof want, "127.0.0.1:%d does not answer PING",
           gm_test_cluster_port(cl, stalled));
  pid_t pid = gm_test_cluster_pid(cl, stalled);
  for (int round = 0; round < 2; round++) {
    ck_assert_int_eq(kill(pid, SIGSTOP), 0);
    uint64_t t0 = gm__clock_mono_us();
    body = http_get(port, "/healthz", &status);
    uint64_t took_ms = (gm__clock_mono_us() - t0) / 1000;
    kill(pid, SIGCONT);
    ck_assert_msg(status == 503 && strstr(body, want),
                  "round %d: want 503 \"%s\": %d %s", round, want, status,
                  body);
    /* One read timeout (2 s), not a second one for the AUTH of a
       connection reopened to the stopped master. */
    ck_assert_msg(took_ms < 3500, "round %d: /healthz took %llu ms", round,
                  (unsigned long long)took_ms);
    body = http_get(port, "/healthz", &status);
    ck_assert_msg(status == 200,
                  "round %d: first /healthz after SIGCONT: %d %s", round,
                  status, body);
  }
}
END_TEST

int main(void) {
  Suite *s = suite_create("cluster");
  TCase *tc = tcase_create("route");
  tcase_add_checked_fixture(tc, NULL, teardown);
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, test_slot_migration_moved_and_ask);
  tcase_add_test(tc, test_reshard_while_requests_flow);
  tcase_add_test(tc, test_master_killed_replica_promoted);
  tcase_add_test(tc, test_master_killed_under_load);
  tcase_add_test(tc, test_outbox_registered_again_after_a_failover);
  tcase_add_test(tc, test_healthz_asks_every_master);
  suite_add_tcase(s, tc);
  TCase *sh = tcase_create("shared");
  tcase_add_unchecked_fixture(sh, shared_up, shared_down);
  tcase_add_checked_fixture(sh, shared_setup, shared_teardown);
  tcase_set_timeout(sh, 120);
  tcase_add_test(sh, test_pipelines_per_master);
  tcase_add_test(sh, test_calls_land_on_their_masters);
  tcase_add_test(sh, test_deadlines_fire_and_settle_on_every_master);
  tcase_add_test(sh, test_deadlines_fire_on_every_master);
  tcase_add_test(sh,
                 test_metrics_outbox_count_survives_a_closed_node_connection);
  tcase_add_test(sh, test_a_503_names_the_node_waited_on);
  /* Last: it leaves a slot migrating. */
  tcase_add_test(sh, test_pipelined_ask);
  suite_add_tcase(s, sh);
  TCase *hz = tcase_create("healthz");
  tcase_add_checked_fixture(hz, NULL, teardown);
  tcase_set_timeout(hz, 120);
  tcase_add_test(hz, test_healthz_names_the_stalled_master_not_a_closed_one);
  tcase_add_test(
      hz, test_healthz_passes_once_a_stalled_master_resumes_with_a_password);
  suite_add_tcase(s, hz);
  TCase *ports = tcase_create("ports");
  tcase_add_checked_fixture(ports, NULL, teardown);
  tcase_add_test(ports, test_fixture_ports_below_the_ephemeral_range);
  suite_add_tcase(s, ports);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
