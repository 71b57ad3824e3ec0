/*
 * [redis] cluster_wait_replicas on a single (non-cluster) Redis with one
 * replica: gmd answers a mutating call only once the replica has its
 * write (WAIT 1 on the connection the FCALL went on); with the replica
 * down the call is answered UNAVAILABLE, its write left on the master,
 * and a retry under the same idempotency key once the replica is back
 * replays the stored reply without running the script again.  Calls in
 * flight on one connection share a WAIT (it blocks the connection).  The
 * settler commits an entry only once the replica has it too, also after
 * its connection was opened again.  gmd runs one worker, so every call
 * goes over the same connection.
 */
#include <check.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "gmd_fixture.h"
#include "run_gm.h"
#include "redis_fixture.h"
#include "testmkt.pb-c.h"

#define WAIT_MS 1000

static const char counter[] = "gm:{testmkt:all}:counter";

static gm_test_redis *master, *replica;
static gm_test_gmd *gmd;
static gm_test_conn *conn;
static redisContext *on_master, *on_replica;

/* gmd on the master, one worker, cluster_wait_replicas = WAIT_MS, and
   `extra` config; conn connected to it. */
static void gmd_start(const char *extra) {
  char conf[512];
  snprintf(conf, sizeof conf,
           "[plugins]\nload = testmkt\n[broker]\nworkers = 1\n[redis]\n"
           "cluster_wait_replicas = %d\n%s",
           WAIT_MS, extra);
  gmd = gm_test_gmd_start(master, TEST_PLUGIN_DIR, conf);
  conn = gm_test_conn_new(gm_test_gmd_endpoint(gmd), NULL, NULL, NULL);
}

static void setup(void) {
  master = gm_test_redis_start();
  replica = gm_test_redis_start();
  gm_test_redis_replicate(master, replica);
  gmd_start("");
  on_master = gm_test_redis_connect(master);
  on_replica = gm_test_redis_connect(replica);
}

static void teardown(void) {
  if (on_master) redisFree(on_master);
  if (on_replica) redisFree(on_replica);
  on_master = on_replica = NULL;
  gm_test_conn_destroy(&conn);
  if (gmd) gm_test_gmd_stop(&gmd);
  if (replica && gm_test_redis_pid(replica) > 0)
    kill(gm_test_redis_pid(replica), SIGCONT);
  gm_test_redis_stop(&replica);
  gm_test_redis_stop(&master);
}

/* The seq of an OK testmkt.bump reply (frees it); fails the test on any
   other status. */
static long long bump_seq(Gm__Reply *r, const char *idem) {
  ck_assert_msg(r != NULL, "bump %s: no reply", idem);
  ck_assert_msg(r->status == GM__STATUS__OK, "bump %s: status %d: %s", idem,
                r->status, r->message);
  Gm__Testmkt__BumpReply *b =
      gm__testmkt__bump_reply__unpack(NULL, r->body.len, r->body.data);
  ck_assert_ptr_nonnull(b);
  long long seq = b->seq;
  gm__testmkt__bump_reply__free_unpacked(b, NULL);
  gm__reply__free_unpacked(r, NULL);
  return seq;
}

/* testmkt.bump under idem (the note is the key too): the reply. */
static Gm__Reply *bump(const char *idem) {
  Gm__Testmkt__BumpRequest req = GM__TESTMKT__BUMP_REQUEST__INIT;
  req.note = (char *)idem;
  return gm_test_call(conn, "alice", "testmkt", "bump", idem, &req.base);
}

static long long get_int(redisContext *c, const char *key) {
  return gm_test_redis_int(c, "GET %s", key);
}

/* Rows of testmkt_bumps with this note once the ledger has `rows` rows in
   all (waits up to 10 s for settlement). */
static long long settled_with_note(const char *note, long long rows) {
  sqlite3 *db;
  ck_assert_int_eq(
      sqlite3_open_v2(gm_test_gmd_ledger(gmd), &db, SQLITE_OPEN_READONLY, NULL),
      SQLITE_OK);
  sqlite3_busy_timeout(db, 1000);
  long long all = -1, with = -1;
  for (int i = 0; i < 500 && all != rows; i++) {
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db,
                           "SELECT count(*), sum(note = ?) FROM testmkt_bumps",
                           -1, &st, NULL) == SQLITE_OK) {
      sqlite3_bind_text(st, 1, note, -1, SQLITE_STATIC);
      if (sqlite3_step(st) == SQLITE_ROW) {
        all = sqlite3_column_int64(st, 0);
        with = sqlite3_column_int64(st, 1);
      }
      sqlite3_finalize(st);
    }
    if (all != rows) gm_test_sleep_ms(20);
  }
  sqlite3_close(db);
  ck_assert_int_eq(all, rows);
  return with;
}

/* Every acknowledged bump is on the replica when its reply arrives; and
   while the replica cannot acknowledge (SIGSTOP) the call is not answered,
   then answered OK once it can. */
START_TEST(test_answered_once_on_the_replica) {
  for (int i = 0; i < 20; i++) {
    char idem[16], rec[64];
    snprintf(idem, sizeof idem, "a-%d", i);
    long long seq = bump_seq(bump(idem), idem);
    ck_assert_int_eq(seq, i + 1);
    ck_assert_int_ge(get_int(on_replica, counter), seq);
    snprintf(rec, sizeof rec, "gm:{testmkt:all}:idem:alice:bump:%s", idem);
    ck_assert_int_eq(gm_test_redis_int(on_replica, "EXISTS %s", rec), 1);
  }

  pid_t pid = gm_test_redis_pid(replica);
  ck_assert_int_eq(kill(pid, SIGSTOP), 0);
  Gm__Testmkt__BumpRequest req = GM__TESTMKT__BUMP_REQUEST__INIT;
  req.note = "held";
  gm_test_send(conn, 77, "alice", "testmkt", "bump", "held", &req.base);
  Gm__Reply *early = gm_test_conn_recv(conn, WAIT_MS / 4);
  int answered = early != NULL;
  if (early) gm__reply__free_unpacked(early, NULL);
  /* The write is on the master already; only its answer waits. */
  long long on_m = get_int(on_master, counter);
  ck_assert_int_eq(kill(pid, SIGCONT), 0);
  ck_assert_msg(!answered,
                "a bump was answered while the only replica was stopped");
  ck_assert_int_eq(on_m, 21);
  Gm__Reply *r = gm_test_conn_recv(conn, 3 * WAIT_MS);
  ck_assert_ptr_nonnull(r);
  ck_assert_int_eq(r->request_id, 77);
  ck_assert_int_eq(bump_seq(r, "held"), 21);
  ck_assert_int_eq(get_int(on_replica, counter), 21);
}
END_TEST

/* The replica down: UNAVAILABLE saying why and what to do, the write on
   the master; the replica back: the retry under the same key returns the
   first run's seq, and the counter and the ledger hold the bump once. */
START_TEST(test_replica_down_then_retry) {
  ck_assert_int_eq(bump_seq(bump("b-1"), "b-1"), 1);

  gm_test_redis_kill(replica);
  Gm__Reply *r = bump("b-2");
  ck_assert_ptr_nonnull(r);
  ck_assert_int_eq(r->status, GM__STATUS__UNAVAILABLE);
  ck_assert_msg(strstr(r->message, "not yet on a replica") &&
                    strstr(r->message, "retry with the same idempotency key"),
                "message: %s", r->message);
  gm__reply__free_unpacked(r, NULL);
  ck_assert(gm_test_gmd_log_has(gmd, "no replica acknowledged"));
  ck_assert_int_eq(get_int(on_master, counter), 2);

  /* A new, empty replica: it takes the master's data in a full sync. */
  gm_test_redis_restart(replica);
  redisFree(on_replica);
  on_replica = gm_test_redis_connect(replica);
  gm_test_redis_replicate(master, replica);

  ck_assert_int_eq(bump_seq(bump("b-2"), "b-2"), 2);
  ck_assert_int_eq(get_int(on_master, counter), 2);
  ck_assert_int_eq(get_int(on_replica, counter), 2);
  ck_assert_int_eq(bump_seq(bump("b-3"), "b-3"), 3);
  ck_assert_int_eq(settled_with_note("b-2", 3), 1);
}
END_TEST

/*
 * The replica stopped from the start: the tag's first bump is answered
 * UNAVAILABLE, its write on the master.  The client does not retry; the
 * write stays, so it is settled like any: its outbox stream is in
 * gm:outboxes when the call is answered (the WAIT came before the
 * registration, which a refused WAIT skipped, leaving the entry to the
 * settler's discovery pass, every 5 minutes).
 */
START_TEST(test_refused_wait_still_registers_the_outbox) {
  pid_t pid = gm_test_redis_pid(replica);
  ck_assert_int_eq(kill(pid, SIGSTOP), 0);
  Gm__Reply *r = bump("c-1");
  long long listed = gm_test_redis_int(
      on_master, "SISMEMBER gm:outboxes gm:{testmkt:all}:outbox");
  ck_assert_int_eq(kill(pid, SIGCONT), 0);
  ck_assert_ptr_nonnull(r);
  ck_assert_int_eq(r->status, GM__STATUS__UNAVAILABLE);
  gm__reply__free_unpacked(r, NULL);
  ck_assert_int_eq(get_int(on_master, counter), 1);
  ck_assert_msg(listed == 1,
                "the outbox of a write answered UNAVAILABLE was "
                "not registered for settlement");
  ck_assert_int_eq(settled_with_note("c-1", 1), 1);
}
END_TEST

/* WAITs the master has run since the last CONFIG RESETSTAT. */
static long long waits_run(void) {
  redisReply *r = gm_test_redis_cmd(on_master, "INFO commandstats");
  const char *p = strstr(r->str, "cmdstat_wait:calls=");
  long long n = p ? atoll(p + strlen("cmdstat_wait:calls=")) : 0;
  freeReplyObject(r);
  return n;
}

/* Sends `calls` bumps at once: request ids 0..calls-1, keys <prefix>-<i>. */
static void bumps_send(const char *prefix, int calls) {
  for (int i = 0; i < calls; i++) {
    char idem[32];
    snprintf(idem, sizeof idem, "%s-%d", prefix, i);
    Gm__Testmkt__BumpRequest req = GM__TESTMKT__BUMP_REQUEST__INIT;
    req.note = idem;
    gm_test_send(conn, (uint64_t)i, "alice", "testmkt", "bump", idem,
                 &req.base);
  }
}

/* The message of the last reply bumps_recv read. */
static char last_message[512];

/* The replies of bumps_send's calls: their statuses by request id. */
static void bumps_recv(const char *prefix, int calls, int *status) {
  for (int i = 0; i < calls; i++) status[i] = -1;
  for (int i = 0; i < calls; i++) {
    Gm__Reply *r = gm_test_conn_recv(conn, (calls + 2) * WAIT_MS);
    ck_assert_msg(r != NULL, "%s: %d of %d answered", prefix, i, calls);
    ck_assert_uint_lt(r->request_id, (uint64_t)calls);
    status[r->request_id] = (int)r->status;
    snprintf(last_message, sizeof last_message, "%s",
             r->message ? r->message : "");
    gm__reply__free_unpacked(r, NULL);
  }
}

/* `calls` bumps in flight at once: their statuses by request id. */
static void bumps_in_flight(const char *prefix, int calls, int *status) {
  bumps_send(prefix, calls);
  bumps_recv(prefix, calls, status);
}

/*
 * WAIT blocks the connection it is sent on until it returns (Redis reads
 * no further command of a blocked client), and a worker has one connection
 * a master: calls in flight whose writes one WAIT already covers share it
 * rather than each sending its own, one after another.  One worker, 32
 * bumps at once: far fewer WAITs than bumps; the replica killed, 8 bumps at
 * once are refused by far fewer WAITs than bumps too (each of which would
 * hold every later command of the worker's connection for WAIT_MS).
 */
START_TEST(test_calls_in_flight_share_a_wait) {
  enum { CALLS = 32, DOWN = 8 };
  int st[CALLS];
  /* The settler sends WAITs too (before committing what it read): a
     broker that does not settle, so the master runs the calls' only. */
  gm_test_conn_destroy(&conn);
  gm_test_gmd_stop(&gmd);
  gmd_start("[settle]\nsettle = never\n");
  freeReplyObject(gm_test_redis_cmd(on_master, "CONFIG RESETSTAT"));
  bumps_in_flight("share", CALLS, st);
  for (int i = 0; i < CALLS; i++) ck_assert_int_eq(st[i], GM__STATUS__OK);
  long long waits = waits_run();
  ck_assert_msg(waits >= 1 && waits <= CALLS / 4,
                "%lld WAITs for %d bumps in flight", waits, CALLS);
  ck_assert_int_eq(get_int(on_replica, counter), CALLS);

  gm_test_redis_kill(replica);
  freeReplyObject(gm_test_redis_cmd(on_master, "CONFIG RESETSTAT"));
  bumps_in_flight("down", DOWN, st);
  for (int i = 0; i < DOWN; i++)
    ck_assert_int_eq(st[i], GM__STATUS__UNAVAILABLE);
  waits = waits_run();
  ck_assert_msg(waits >= 1 && waits <= DOWN / 4,
                "%lld WAITs refused %d bumps in flight", waits, DOWN);
}
END_TEST

/* The connection breaks while calls wait on a shared WAIT (the replica
   stopped, then the master closes gmd's connections): each call is
   answered UNAVAILABLE, gmd goes on, and the retries under the same keys
   return the first runs' seqs, each bump applied once. */
START_TEST(test_shared_wait_connection_lost) {
  enum { CALLS = 8 };
  int st[CALLS];
  /* The settler's WAIT would block too, maybe before the worker's: a
     broker that does not settle, so the one blocked client is the
     worker's connection. */
  gm_test_conn_destroy(&conn);
  gm_test_gmd_stop(&gmd);
  gmd_start("[settle]\nsettle = never\n");
  pid_t pid = gm_test_redis_pid(replica);
  ck_assert_int_eq(kill(pid, SIGSTOP), 0);
  bumps_send("lost", CALLS);
  /* Every bump applied and the worker's WAIT blocked, waited for by time
     (5 s), not by a count of polls a loaded machine runs through. */
  long long blocked = 0, applied = 0;
  for (int ms = 0; ms < 5000 && (blocked < 1 || applied < CALLS); ms += 5) {
    redisReply *r = gm_test_redis_cmd(on_master, "INFO clients");
    const char *p = strstr(r->str, "blocked_clients:");
    blocked = p ? atoll(p + strlen("blocked_clients:")) : 0;
    freeReplyObject(r);
    r = gm_test_redis_cmd(on_master, "GET %s", counter); /* nil: none yet */
    applied = r->type == REDIS_REPLY_STRING ? atoll(r->str) : 0;
    freeReplyObject(r);
    if (blocked < 1 || applied < CALLS) gm_test_sleep_ms(5);
  }
  ck_assert_int_eq(applied, CALLS);
  freeReplyObject(
      gm_test_redis_cmd(on_master, "CLIENT KILL TYPE normal SKIPME yes"));
  bumps_recv("lost", CALLS, st);
  ck_assert_int_eq(kill(pid, SIGCONT), 0);
  ck_assert_int_eq(blocked, 1);
  for (int i = 0; i < CALLS; i++)
    ck_assert_int_eq(st[i], GM__STATUS__UNAVAILABLE);
  /* The WAIT did not time out: the message says it failed, and why. */
  ck_assert_msg(strstr(last_message, "not yet on a replica") &&
                    strstr(last_message, "failed") &&
                    !strstr(last_message, "none acknowledged") &&
                    strstr(last_message, "retry with the same idempotency key"),
                "message: %s", last_message);

  unsigned seen = 0;
  for (int i = 0; i < CALLS; i++) {
    char idem[32];
    snprintf(idem, sizeof idem, "lost-%d", i);
    long long seq = bump_seq(bump(idem), idem);
    ck_assert_int_ge(seq, 1);
    ck_assert_int_le(seq, CALLS);
    seen |= 1u << (seq - 1);
  }
  ck_assert_uint_eq(seen, (1u << CALLS) - 1); /* each its own first seq */
  ck_assert_int_eq(get_int(on_master, counter), CALLS);
  ck_assert_int_eq(get_int(on_replica, counter), CALLS);
}
END_TEST

/* Rows of testmkt_bumps in the ledger now (-1: none could be read). */
static long long ledger_rows(void) {
  sqlite3 *db;
  ck_assert_int_eq(
      sqlite3_open_v2(gm_test_gmd_ledger(gmd), &db, SQLITE_OPEN_READONLY, NULL),
      SQLITE_OK);
  sqlite3_busy_timeout(db, 1000);
  long long n = -1;
  sqlite3_stmt *st;
  if (sqlite3_prepare_v2(db, "SELECT count(*) FROM testmkt_bumps", -1, &st,
                         NULL) == SQLITE_OK) {
    if (sqlite3_step(st) == SQLITE_ROW) n = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
  }
  sqlite3_close(db);
  return n;
}

/* Waits up to ms for the ledger to hold more than `rows` bumps or gmd's log
   to hold `text`; then asserts the ledger holds `rows`. */
static void still_unsettled(long long rows, const char *text, int ms) {
  for (int t = 0; t < ms && ledger_rows() == rows; t += 20) {
    if (text && gm_test_gmd_log_has(gmd, text)) break;
    gm_test_sleep_ms(20);
  }
  ck_assert_int_eq(ledger_rows(), rows);
}

/*
 * The settler does not settle a write no replica has (the replica stopped,
 * its link still up: a replica that lags): the bump answered UNAVAILABLE
 * is held back, pending, and gmd says so.  Its connection closed by the
 * master, the settler reads its pending entries again on a new
 * connection; WAIT there counts the master's writes up to that client's
 * last replicated command, which a re-read is not, so without a write of
 * its own first the WAIT would count the lagging replica at once and the
 * entry be settled.  It still holds; once the replica is back, the bump is
 * settled once.
 */
START_TEST(test_settler_waits_for_the_replica) {
  ck_assert_int_eq(bump_seq(bump("s-1"), "s-1"), 1);
  ck_assert_int_eq(settled_with_note("s-1", 1), 1);
  pid_t pid = gm_test_redis_pid(replica);
  ck_assert_int_eq(kill(pid, SIGSTOP), 0);
  Gm__Reply *r = bump("s-2");
  ck_assert_ptr_nonnull(r);
  ck_assert_int_eq(r->status, GM__STATUS__UNAVAILABLE);
  gm__reply__free_unpacked(r, NULL);
  ck_assert_int_eq(get_int(on_master, counter), 2);
  still_unsettled(1, "are not settled yet", 10000);
  ck_assert(gm_test_gmd_log_has(gmd, "are not settled yet"));

  freeReplyObject(
      gm_test_redis_cmd(on_master, "CLIENT KILL TYPE normal SKIPME yes"));
  for (int i = 0; i < 500 && !gm_test_gmd_log_has(gmd, "Redis is back"); i++)
    gm_test_sleep_ms(20);
  ck_assert(gm_test_gmd_log_has(gmd, "Redis is back"));
  /* The round that logged it goes on to its WAIT, which takes WAIT_MS
     with the replica stopped (a WAIT that counted it would answer at
     once, and the entry be committed right after). */
  still_unsettled(1, NULL, WAIT_MS + 1000);

  ck_assert_int_eq(kill(pid, SIGCONT), 0);
  ck_assert_int_eq(settled_with_note("s-2", 2), 1);
  ck_assert_int_eq(get_int(on_replica, counter), 2);
}
END_TEST

/* `gmd -c <conf> --check` with cluster_wait_replicas = ms: its exit
   status; what it printed goes to *out (static). */
static int gmd_check(long ms, const char **out) {
  static char text[4096];
  char dir[] = "/tmp/gm-waitconf-XXXXXX", conf[64];
  ck_assert_ptr_nonnull(mkdtemp(dir));
  snprintf(conf, sizeof conf, "%s/gmd.conf", dir);
  FILE *f = fopen(conf, "w");
  ck_assert_ptr_nonnull(f);
  fprintf(f,
          "[security]\nmode = dev\n[ledger]\npath = %s/ledger.sqlite\n"
          "[redis]\nunix = %s\ncluster_wait_replicas = %ld\n",
          dir, gm_test_redis_socket(master), ms);
  fclose(f);
  int rc = gm_test_gmd_check(conf, text, sizeof text);
  char rm[96];
  snprintf(rm, sizeof rm, "rm -rf %s", dir);
  ck_assert_int_eq(system(rm), 0);
  *out = text;
  return rc;
}

/*
 * A WAIT longer than gmd waits for any reply of Redis (30 s: the worker's
 * stall limit, and the blocking timeout) is taken for a Redis that stopped
 * answering: with 35000 and the replica stopped, the call was answered
 * after 30 s, its connection torn down and every command queued behind the
 * WAIT failed ("no reply from Redis ... reconnecting" in the log), while
 * the message said "within 35000 ms".  gmd refuses such a value at start,
 * saying why.
 */
START_TEST(test_wait_longer_than_the_stall_limit_is_refused) {
  const char *out;
  ck_assert_int_eq(gmd_check(WAIT_MS, &out), 0);
  int rc = gmd_check(35000, &out);
  ck_assert_msg(rc == 1,
                "gmd --check with cluster_wait_replicas = 35000 "
                "exited %d: %s",
                rc, out);
  ck_assert_msg(
      strstr(out, "cluster_wait_replicas = 35000") && strstr(out, "30 s"), "%s",
      out);
}
END_TEST

int main(void) {
  Suite *s = suite_create("wait_replica");
  TCase *tc = tcase_create("single");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, test_answered_once_on_the_replica);
  tcase_add_test(tc, test_replica_down_then_retry);
  tcase_add_test(tc, test_refused_wait_still_registers_the_outbox);
  tcase_add_test(tc, test_calls_in_flight_share_a_wait);
  tcase_add_test(tc, test_shared_wait_connection_lost);
  tcase_add_test(tc, test_wait_longer_than_the_stall_limit_is_refused);
  tcase_add_test(tc, test_settler_waits_for_the_replica);
  suite_add_tcase(s, tc);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
