/*
 * The settle lease and routed ledger reads, end to end: a real redis-server
 * and two real gmd brokers with the test market.  Only the lease holder
 * settles; a ledger read on the other broker is answered by the holder;
 * kill -9 of the holder under a flow of bumps hands the lease to the other
 * broker, and every acknowledged bump is settled exactly once.  Checks what
 * Redis and the SQLite files hold.
 */
#include <arpa/inet.h>
#include <check.h>
#include <netinet/in.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "gmd_fixture.h"
#include "run_gm.h"
#include <zmq.h>

#include "greenmarket.pb-c.h"
#include "ledger.pb-c.h"
#include "redis_fixture.h"
#include "testmkt.pb-c.h"

#define LEASE_MS 1000
#define LEASE_KEY "gm:{settle}:lease"

static gm_test_redis *redis;
static gm_test_gmd *g1, *g2;
static gm_test_conn *c1, *c2;
static redisContext *rc;

static uint64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Broker 1 (settle = auto) with `extra1`, then broker 2 with `extra2` on
   the same Redis; broker 2 shares broker 1's ledger file when `share`. */
static void start(const char *extra1, const char *extra2, int share) {
  redis = gm_test_redis_start();
  rc = gm_test_redis_connect(redis);
  char conf[1024];
  snprintf(conf, sizeof conf,
           "[plugins]\nload = testmkt\n[settle]\nlease_ms = %d\n"
           "[metrics]\nlisten = 127.0.0.1:0\n",
           LEASE_MS);
  char first[2048];
  snprintf(first, sizeof first, "%s%s\n", conf, extra1);
  g1 = gm_test_gmd_start(redis, TEST_PLUGIN_DIR, first);
  c1 = gm_test_conn_new(gm_test_gmd_endpoint(g1), NULL, NULL, NULL);
  char more[2048];
  int n = snprintf(more, sizeof more, "%s%s\n", conf, extra2);
  if (share)
    snprintf(more + n, sizeof more - (size_t)n, "[ledger]\npath = %s\n",
             gm_test_gmd_ledger(g1));
  g2 = gm_test_gmd_start_named(redis, "b2", TEST_PLUGIN_DIR, more);
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

/* The lease's value ("" when nobody holds it). */
static char *holder(void) {
  redisReply *r = gm_test_redis_cmd(rc, "GET " LEASE_KEY);
  char *v = strdup(r->type == REDIS_REPLY_STRING ? r->str : "");
  freeReplyObject(r);
  return v;
}

/* Non-zero when the lease names broker g (its ledger endpoint is its
   client endpoint + ".ledger"). */
static int holds(const gm_test_gmd *g) {
  char want[600];
  snprintf(want, sizeof want, "\n%s.ledger", gm_test_gmd_endpoint(g));
  char *v = holder();
  size_t lv = strlen(v), lw = strlen(want);
  int yes = lv > lw && strcmp(v + lv - lw, want) == 0;
  free(v);
  return yes;
}

/* greenmarket_settle_lease_held as broker g's metrics endpoint serves it,
   or -1 when the line is missing. */
static int lease_held(const gm_test_gmd *g) {
  ck_assert_int_gt(gm_test_gmd_metrics_port(g), 0);
  return (int)gm_test_gmd_metric(g, "greenmarket_settle_lease_held");
}

/* One bump; its seq, or -1 when it was not acknowledged. */
static long long bump(gm_test_conn *c, const char *note) {
  Gm__Testmkt__BumpRequest req = GM__TESTMKT__BUMP_REQUEST__INIT;
  req.note = (char *)note;
  Gm__Reply *r = gm_test_call(c, "alice", "testmkt", "bump", note, &req.base);
  long long seq = -1;
  if (r && r->status == GM__STATUS__OK) {
    Gm__Testmkt__BumpReply *b =
        gm__testmkt__bump_reply__unpack(NULL, r->body.len, r->body.data);
    seq = b->seq;
    gm__testmkt__bump_reply__free_unpacked(b, NULL);
  }
  if (r) gm__reply__free_unpacked(r, NULL);
  return seq;
}

/* testmkt.count through broker c: the settled bumps its ledger read sees;
   -1 - status when refused. */
static long long settled(gm_test_conn *c) {
  Gm__Testmkt__CountRequest req = GM__TESTMKT__COUNT_REQUEST__INIT;
  Gm__Reply *r = gm_test_call(c, "alice", "testmkt", "count", NULL, &req.base);
  ck_assert_ptr_nonnull(r);
  long long n = -1 - (long long)r->status;
  if (r->status == GM__STATUS__OK) {
    Gm__Testmkt__CountReply *b =
        gm__testmkt__count_reply__unpack(NULL, r->body.len, r->body.data);
    n = b->settled;
    gm__testmkt__count_reply__free_unpacked(b, NULL);
  }
  gm__reply__free_unpacked(r, NULL);
  return n;
}

/* testmkt.peek: a read of what `what` names (testmkt.c). */
static int peek_status(gm_test_conn *c, const char *what) {
  Gm__Testmkt__ProbeRequest req = GM__TESTMKT__PROBE_REQUEST__INIT;
  req.what = (char *)what;
  Gm__Reply *r = gm_test_call(c, "alice", "testmkt", "peek", NULL, &req.base);
  ck_assert_ptr_nonnull(r);
  int st = r->status;
  gm__reply__free_unpacked(r, NULL);
  return st;
}

/* Sets a "count" deadline due now through broker c and waits (up to 20 s)
   for what its ledger read recorded; -1 when it did not fire. */
static long long deadline_count(gm_test_conn *c, const char *id) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  Gm__Testmkt__DeadlineRequest req = GM__TESTMKT__DEADLINE_REQUEST__INIT;
  req.op = "host_set";
  req.kind = "count";
  req.tag = "t";
  req.id = (char *)id;
  req.due_ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
  Gm__Reply *r = gm_test_call(c, "alice", "testmkt", "deadline", id, &req.base);
  ck_assert_msg(r && r->status == GM__STATUS__OK, "deadline: %s",
                r ? r->message : "no reply");
  gm__reply__free_unpacked(r, NULL);
  long long n = -1;
  for (int i = 0; i < 1000 && n < 0; i++) {
    redisReply *v = gm_test_redis_cmd(rc, "HGET gm:{testmkt:t}:counted %s", id);
    if (v->type == REDIS_REPLY_STRING) n = atoll(v->str);
    freeReplyObject(v);
    if (n < 0) gm_test_sleep_ms(20);
  }
  return n;
}

/* Waits (up to 20 s) until broker c's ledger read sees `want` bumps. */
static long long wait_settled(gm_test_conn *c, long long want) {
  long long n = -1;
  for (int i = 0; i < 1000 && (n = settled(c)) != want; i++)
    gm_test_sleep_ms(20);
  return n;
}

static long long sql_count(const char *path, const char *sql) {
  sqlite3 *db = NULL;
  ck_assert_int_eq(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL),
                   SQLITE_OK);
  sqlite3_busy_timeout(db, 5000);
  sqlite3_stmt *st = NULL;
  ck_assert_int_eq(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
  ck_assert_int_eq(sqlite3_step(st), SQLITE_ROW);
  long long v = sqlite3_column_int64(st, 0);
  sqlite3_finalize(st);
  sqlite3_close(db);
  return v;
}

/* Broker 2 keeps a ledger file of its own that it never settles into: its
   reads can only show the rows by going to broker 1. */
START_TEST(reads_on_the_other_broker_go_to_the_holder) {
  /* Broker 1 polls deadlines once an hour: broker 2 fires them. */
  start("[deadlines]\npoll_ms = 3600000\n",
        "[settle]\nsettle = never\n[deadlines]\npoll_ms = 20\n", 0);
  ck_assert(holds(g1));
  for (int i = 0; i < 30; i++) {
    char note[16];
    snprintf(note, sizeof note, "r%d", i);
    ck_assert_int_eq(bump(i % 2 ? c1 : c2, note), i + 1);
  }
  ck_assert_int_eq(wait_settled(c1, 30), 30);
  ck_assert_int_eq(settled(c2), 30);
  ck_assert_int_eq(
      sql_count(gm_test_gmd_ledger(g1), "SELECT count(*) FROM testmkt_bumps"),
      30);
  ck_assert_int_eq(
      sql_count(gm_test_gmd_ledger(g2), "SELECT count(*) FROM testmkt_bumps"),
      0);
  /* The holder keeps each market to its own tables, as for a local read
     (and logs the refusal: the read ran there). */
  ck_assert_int_eq(peek_status(c2, "settled"), GM__STATUS__PERMISSION_DENIED);
  ck_assert(gm_test_gmd_log_has(g1, "ledger_query refused"));
  ck_assert(!gm_test_gmd_log_has(g2, "ledger_query refused"));
  ck_assert_int_eq(peek_status(c2, "own"), GM__STATUS__OK);
  /* A read too large for the ledger endpoint is refused at once on the
     sending broker (the endpoint would drop the connection, and the read
     wait out read_timeout_ms as UNAVAILABLE). */
  ck_assert_int_eq(peek_status(c1, "big"), GM__STATUS__OK);
  ck_assert_int_eq(peek_status(c2, "big"), GM__STATUS__RESOURCE_EXHAUSTED);
  ck_assert_int_eq(peek_status(c2, "own"), GM__STATUS__OK);
  /* A deadline callback's ledger read on broker 2 goes to the holder too. */
  ck_assert_int_eq(deadline_count(c2, "c1"), 30);
  ck_assert(!gm_test_gmd_log_has(g2, "holds the settle lease"));
  /* A clean stop releases the lease at once; settle = never does not take
     it, and its own file is no book: its reads wait for a holder. */
  gm_test_gmd_stop(&g1);
  char *v = holder();
  ck_assert_str_eq(v, "");
  free(v);
  gm_test_sleep_ms(2 * LEASE_MS);
  v = holder();
  ck_assert_str_eq(v, "");
  free(v);
  ck_assert_int_eq(settled(c2), -1 - GM__STATUS__UNAVAILABLE);
}
END_TEST

/* Both may settle, one ledger file: only the holder does; when it is
   killed the other takes over, and every acknowledged bump settles once. */
START_TEST(kill9_of_the_holder_hands_over_and_settles_once) {
  start("", "", 1);
  ck_assert(holds(g1));
  ck_assert(!holds(g2));
  ck_assert_int_eq(lease_held(g1), 1);
  ck_assert_int_eq(lease_held(g2), 0);
  long long acked = 0, seq_max = 0;
  for (int i = 0; i < 100; i++) {
    char note[16];
    snprintf(note, sizeof note, "a%d", i);
    long long s = bump(c2, note);
    ck_assert_int_gt(s, 0);
    acked++;
    if (s > seq_max) seq_max = s;
  }
  ck_assert_int_eq(wait_settled(c2, acked), acked);
  ck_assert(gm_test_gmd_log_has(g1, "holds the settle lease"));
  ck_assert(!gm_test_gmd_log_has(g2, "holds the settle lease"));

  /* Bumps keep coming to broker 2 while broker 1 dies. */
  uint64_t killed = 0, taken = 0;
  for (int i = 0; i < 600 || !taken; i++) {
    char note[16];
    snprintf(note, sizeof note, "b%d", i);
    long long s = bump(c2, note);
    ck_assert_int_gt(s, 0);
    acked++;
    if (i == 50) {
      gm_test_gmd_kill9(g1);
      killed = now_ms();
    }
    if (killed && !taken && holds(g2)) taken = now_ms();
    ck_assert_msg(!killed || taken || now_ms() - killed < LEASE_MS + 5000,
                  "broker 2 did not take the lease within %d ms",
                  LEASE_MS + 5000);
  }
  printf("lease taken over %llu ms after kill -9 (lease_ms %d)\n",
         (unsigned long long)(taken - killed), LEASE_MS);
  ck_assert_int_eq(wait_settled(c2, acked), acked);
  const char *ledger = gm_test_gmd_ledger(g1);
  ck_assert_int_eq(sql_count(ledger, "SELECT count(*) FROM testmkt_bumps"),
                   acked);
  ck_assert_int_eq(
      sql_count(ledger, "SELECT count(DISTINCT seq) FROM testmkt_bumps"),
      acked);
  ck_assert_int_eq(sql_count(ledger, "SELECT max(seq) FROM testmkt_bumps"),
                   acked);
  ck_assert_int_eq(sql_count(ledger, "SELECT count(*) FROM gm_settled"), acked);
  ck_assert(gm_test_gmd_log_has(g2, "holds the settle lease"));
  ck_assert_int_eq(lease_held(g2), 1);
  /* Nothing left pending or unsettled in the outbox. */
  ck_assert_int_eq(gm_test_redis_int(rc, "XLEN gm:{testmkt:all}:outbox"), 0);
  gm_test_gmd_restart(g1);
}
END_TEST

/* A ledger Query for testmkt's count, as a broker's link sends it. */
static size_t count_query(uint8_t *buf, size_t cap) {
  Gm__Ledger__Query q = GM__LEDGER__QUERY__INIT;
  q.version = 1;
  q.market = "testmkt";
  q.sql.data =
      (uint8_t *)"SELECT count(*) FROM testmkt_bumps /* scan: a test's rows */";
  q.sql.len = strlen((const char *)q.sql.data);
  size_t len = gm__ledger__query__get_packed_size(&q);
  ck_assert_uint_le(len, cap);
  return gm__ledger__query__pack(&q, buf);
}

/* Sends the count Query to the ledger endpoint with key pair (pub, sec);
   the Rows reply, or NULL when none came within wait_ms. */
static Gm__Ledger__Rows *raw_query(const char *pub, const char *sec,
                                   const char *server_pub, int wait_ms) {
  void *ctx = zmq_ctx_new();
  void *d = zmq_socket(ctx, ZMQ_DEALER);
  int zero = 0;
  zmq_setsockopt(d, ZMQ_LINGER, &zero, sizeof zero);
  zmq_setsockopt(d, ZMQ_CURVE_SERVERKEY, server_pub, 40);
  zmq_setsockopt(d, ZMQ_CURVE_PUBLICKEY, pub, 40);
  zmq_setsockopt(d, ZMQ_CURVE_SECRETKEY, sec, 40);
  char ep[600];
  snprintf(ep, sizeof ep, "%s.ledger", gm_test_gmd_endpoint(g1));
  ck_assert_int_eq(zmq_connect(d, ep), 0);
  uint8_t buf[256];
  size_t len = count_query(buf, sizeof buf);
  uint64_t id = 7;
  zmq_send(d, &id, 8, ZMQ_SNDMORE);
  zmq_send(d, buf, len, 0);
  Gm__Ledger__Rows *rows = NULL;
  zmq_pollitem_t it = {d, 0, ZMQ_POLLIN, 0};
  if (zmq_poll(&it, 1, wait_ms) == 1) {
    uint64_t rid = 0;
    ck_assert_int_eq(zmq_recv(d, &rid, 8, 0), 8);
    ck_assert_uint_eq(rid, 7);
    zmq_msg_t m;
    zmq_msg_init(&m);
    ck_assert_int_ge(zmq_msg_recv(&m, d, 0), 0);
    rows = gm__ledger__rows__unpack(NULL, zmq_msg_size(&m), zmq_msg_data(&m));
    zmq_msg_close(&m);
  }
  zmq_close(d);
  zmq_ctx_term(ctx);
  return rows;
}

/* With CURVE, the ledger endpoint admits only the brokers' own key pair. */
START_TEST(curve_reads_are_routed_and_strangers_refused) {
  char spub[41], ssec[41], apub[41], asec[41], epub[41], esec[41];
  ck_assert_int_eq(zmq_curve_keypair(spub, ssec), 0);
  ck_assert_int_eq(zmq_curve_keypair(apub, asec), 0);
  ck_assert_int_eq(zmq_curve_keypair(epub, esec), 0);
  redis = gm_test_redis_start();
  rc = gm_test_redis_connect(redis);
  char *keyfile = gm_test_key_file(redis, "server.key", spub, ssec);
  char conf[2048];
  snprintf(conf, sizeof conf,
           "[plugins]\nload = testmkt\n[security]\nmode = curve\n"
           "secret_key_file = %s\nadmin_keys = %s\n",
           keyfile, apub);
  free(keyfile);
  g1 = gm_test_gmd_start_curve(redis, TEST_PLUGIN_DIR, conf, spub, apub, asec);
  c1 = gm_test_conn_new(gm_test_gmd_endpoint(g1), spub, apub, asec);
  char more[2200];
  snprintf(more, sizeof more, "%s[settle]\nsettle = never\n", conf);
  g2 = gm_test_gmd_start_named_curve(redis, "b2", TEST_PLUGIN_DIR, more, spub,
                                     apub, asec);
  c2 = gm_test_conn_new(gm_test_gmd_endpoint(g2), spub, apub, asec);
  for (int i = 0; i < 10; i++) {
    char note[16];
    snprintf(note, sizeof note, "c%d", i);
    ck_assert_int_eq(bump(c1, note), i + 1);
  }
  ck_assert_int_eq(wait_settled(c1, 10), 10);
  ck_assert_int_eq(settled(c2), 10); /* through the holder */
  Gm__Ledger__Rows *rows = raw_query(spub, ssec, spub, 5000);
  ck_assert_ptr_nonnull(rows);
  ck_assert_uint_eq(rows->status, 0);
  ck_assert_uint_eq(rows->n_rows, 1);
  ck_assert_int_eq(rows->rows[0]->cols[0]->integer, 10);
  gm__ledger__rows__free_unpacked(rows, NULL);
  /* A participant's key (admin's, even) is not a broker's. */
  ck_assert_ptr_null(raw_query(apub, asec, spub, 1000));
  ck_assert_ptr_null(raw_query(epub, esec, spub, 1000));
}
END_TEST

/* A broker whose ledger file is a restore from an older backup lacks
   entries already acknowledged: it must not take the lease, even when the
   holder is gone; the holder's own file may. */
START_TEST(a_file_behind_the_book_never_takes_the_lease) {
  redis = gm_test_redis_start();
  rc = gm_test_redis_connect(redis);
  char conf[1024];
  snprintf(conf, sizeof conf,
           "[plugins]\nload = testmkt\n[settle]\nlease_ms = %d\n", LEASE_MS);
  g1 = gm_test_gmd_start(redis, TEST_PLUGIN_DIR, conf);
  c1 = gm_test_conn_new(gm_test_gmd_endpoint(g1), NULL, NULL, NULL);
  for (int i = 0; i < 10; i++) {
    char note[16];
    snprintf(note, sizeof note, "o%d", i);
    ck_assert_int_eq(bump(c1, note), i + 1);
  }
  ck_assert_int_eq(wait_settled(c1, 10), 10);
  /* The backup (as docs/operations.md takes it), then 10 more settled. */
  char *backup = gm_test_redis_path(redis, "backup.sqlite");
  sqlite3 *db = NULL;
  ck_assert_int_eq(sqlite3_open(gm_test_gmd_ledger(g1), &db), SQLITE_OK);
  char *sql = sqlite3_mprintf("VACUUM INTO %Q", backup);
  ck_assert_int_eq(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
  sqlite3_free(sql);
  sqlite3_close(db);
  for (int i = 10; i < 20; i++) {
    char note[16];
    snprintf(note, sizeof note, "o%d", i);
    ck_assert_int_eq(bump(c1, note), i + 1);
  }
  ck_assert_int_eq(wait_settled(c1, 20), 20);
  char more[2048];
  snprintf(more, sizeof more, "%s[ledger]\npath = %s\n", conf, backup);
  g2 = gm_test_gmd_start_named(redis, "b2", TEST_PLUGIN_DIR, more);
  c2 = gm_test_conn_new(gm_test_gmd_endpoint(g2), NULL, NULL, NULL);
  ck_assert_int_eq(settled(c2), 20); /* routed to the holder */
  gm_test_gmd_kill9(g1);
  for (int i = 0; i < 500 && !gm_test_gmd_log_has(g2, "not the book of record");
       i++)
    gm_test_sleep_ms(20);
  ck_assert(gm_test_gmd_log_has(g2, "not the book of record"));
  char *v = holder();
  ck_assert_str_eq(v, "");
  free(v);
  ck_assert_int_eq(sql_count(backup, "SELECT count(*) FROM testmkt_bumps"), 10);
  /* Nor does its stale file answer reads meanwhile. */
  ck_assert_int_eq(settled(c2), -1 - GM__STATUS__UNAVAILABLE);
  /* The holder's own file is current: back, it takes the lease again and
     settles what came meanwhile. */
  ck_assert_int_eq(bump(c2, "while-down"), 21);
  gm_test_gmd_restart(g1);
  ck_assert_int_eq(wait_settled(c2, 21), 21);
  ck_assert(holds(g1));
  free(backup);
}
END_TEST

/* gmd --check with `settle_conf` in [settle]: its exit status; out gets
   what it said. */
static int check_conf(const char *settle_conf, char *out, size_t outlen) {
  char *conf = gm_test_redis_path(redis, "check.conf");
  FILE *f = fopen(conf, "w");
  ck_assert_ptr_nonnull(f);
  fprintf(f,
          "[redis]\nunix = %s\n[ledger]\npath = ledger.sqlite\n"
          "[security]\nmode = dev\n[plugins]\ndir = %s\nload = testmkt\n"
          "[settle]\n%s\n",
          gm_test_redis_socket(redis), TEST_PLUGIN_DIR, settle_conf);
  fclose(f);
  int rc = gm_test_gmd_check(conf, out, outlen);
  free(conf);
  return rc;
}

/* Bad [settle] values stop gmd at start, naming the key; nothing is taken. */
START_TEST(bad_settle_settings_are_refused) {
  redis = gm_test_redis_start();
  rc = gm_test_redis_connect(redis);
  char out[4096];
  ck_assert_int_eq(check_conf("settle = sometimes", out, sizeof out), 1);
  ck_assert_msg(strstr(out, "[settle] settle = sometimes: use auto"),
                "gmd said: %s", out);
  ck_assert_int_eq(check_conf("lease_ms = 10", out, sizeof out), 1);
  ck_assert_msg(strstr(out,
                       "[settle] lease_ms = 10: expected a whole number "
                       "from 300 to 600000"),
                "gmd said: %s", out);
  ck_assert_int_eq(
      check_conf("settle = never\nlease_ms = 300", out, sizeof out), 0);
  char *v = holder();
  ck_assert_str_eq(v, "");
  free(v);
}
END_TEST

/* A file another holder has gone on from (same book, its own later
   batches) is refused whatever its count: each taking of the lease marks
   the file it writes. */
START_TEST(a_forked_file_never_takes_the_lease) {
  redis = gm_test_redis_start();
  rc = gm_test_redis_connect(redis);
  char conf[1024];
  snprintf(conf, sizeof conf,
           "[plugins]\nload = testmkt\n[settle]\nlease_ms = %d\n", LEASE_MS);
  g1 = gm_test_gmd_start(redis, TEST_PLUGIN_DIR, conf);
  c1 = gm_test_conn_new(gm_test_gmd_endpoint(g1), NULL, NULL, NULL);
  for (int i = 0; i < 5; i++) {
    char note[16];
    snprintf(note, sizeof note, "f%d", i);
    ck_assert_int_eq(bump(c1, note), i + 1);
  }
  ck_assert_int_eq(wait_settled(c1, 5), 5);
  gm_test_gmd_kill9(g1);
  /* The book moves: a copy of the current file goes on elsewhere. */
  char *moved = gm_test_redis_path(redis, "moved.sqlite");
  sqlite3 *db = NULL;
  ck_assert_int_eq(sqlite3_open(gm_test_gmd_ledger(g1), &db), SQLITE_OK);
  char *sql = sqlite3_mprintf("VACUUM INTO %Q", moved);
  ck_assert_int_eq(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
  sqlite3_free(sql);
  sqlite3_close(db);
  char more[2048];
  snprintf(more, sizeof more, "%s[ledger]\npath = %s\n", conf, moved);
  g2 = gm_test_gmd_start_named(redis, "b2", TEST_PLUGIN_DIR, more);
  c2 = gm_test_conn_new(gm_test_gmd_endpoint(g2), NULL, NULL, NULL);
  for (int i = 0; i < 100 && !holds(g2); i++) gm_test_sleep_ms(50);
  ck_assert(holds(g2));
  ck_assert_int_eq(bump(c2, "f5"), 6);
  ck_assert_int_eq(wait_settled(c2, 6), 6);
  gm_test_conn_destroy(&c2);
  gm_test_gmd_stop(&g2);
  /* The old file claims more batches than the book: still not the book. */
  ck_assert_int_eq(sqlite3_open(gm_test_gmd_ledger(g1), &db), SQLITE_OK);
  ck_assert_int_eq(sqlite3_exec(db, "UPDATE gm_book SET batches = 1000000",
                                NULL, NULL, NULL),
                   SQLITE_OK);
  sqlite3_close(db);
  gm_test_gmd_restart(g1);
  for (int i = 0; i < 500 && !gm_test_gmd_log_has(g1, "not the book of record");
       i++)
    gm_test_sleep_ms(20);
  ck_assert(gm_test_gmd_log_has(g1, "not the book of record"));
  char *v = holder();
  ck_assert_str_eq(v, "");
  free(v);
  ck_assert_int_eq(settled(c1), -1 - GM__STATUS__UNAVAILABLE);
  free(moved);
}
END_TEST

/* The book's mark as Redis holds it ("" none). */
static char *book_mark(void) {
  redisReply *r = gm_test_redis_cmd(rc, "GET gm:{settle}:book");
  char *v = strdup(r->type == REDIS_REPLY_STRING ? r->str : "");
  freeReplyObject(r);
  return v;
}

/* Broker 1 alone, its first `n` bumps settled. */
static void start_alone(int n) {
  redis = gm_test_redis_start();
  rc = gm_test_redis_connect(redis);
  char conf[1024];
  snprintf(conf, sizeof conf,
           "[plugins]\nload = testmkt\n[settle]\nlease_ms = %d\n", LEASE_MS);
  g1 = gm_test_gmd_start(redis, TEST_PLUGIN_DIR, conf);
  c1 = gm_test_conn_new(gm_test_gmd_endpoint(g1), NULL, NULL, NULL);
  for (int i = 0; i < n; i++) {
    char note[16];
    snprintf(note, sizeof note, "s%d", i);
    ck_assert_int_eq(bump(c1, note), i + 1);
  }
  ck_assert_int_eq(wait_settled(c1, n), n);
}

/* The holder is killed after a tenure's first COMMIT and before its mark
   reached Redis: the file has the new tenure mark and one batch more than
   the book's mark says.  It holds every acknowledged entry, so the same
   broker must take the lease again (alone on its Redis, nobody else can
   settle). */
START_TEST(a_holder_killed_between_commit_and_mark_takes_the_lease_again) {
  start_alone(5);
  gm_test_gmd_kill9(g1);
  gm_test_gmd_restart(g1); /* a new tenure: its first COMMIT marks the file */
  for (int i = 0; i < 100 && !holds(g1); i++) gm_test_sleep_ms(50);
  ck_assert(holds(g1));
  char *before = book_mark();
  ck_assert_str_ne(before, "");
  ck_assert_int_eq(bump(c1, "s5"), 6);
  ck_assert_int_eq(wait_settled(c1, 6), 6);
  char *after = book_mark();
  ck_assert_str_ne(after, before);
  gm_test_gmd_kill9(g1);
  /* As if the kill came before the mark was written. */
  redisReply *r = gm_test_redis_cmd(rc, "SET gm:{settle}:book %s", before);
  freeReplyObject(r);
  gm_test_gmd_restart(g1);
  for (int i = 0; i < 100 && !holds(g1); i++) gm_test_sleep_ms(50);
  ck_assert_msg(!gm_test_gmd_log_has(g1, "not the book of record"),
                "the book's own file was refused (mark %s, then %s)", before,
                after);
  ck_assert(holds(g1));
  ck_assert_int_eq(bump(c1, "s6"), 7);
  ck_assert_int_eq(wait_settled(c1, 7), 7);
  free(before);
  free(after);
}
END_TEST

/* Redis loses the lease key while the holder renews it (a failover to a
   replica that had not seen it, a DEL): the holder takes it again without
   calling its own file foreign and without dropping the lease. */
START_TEST(a_lost_lease_key_is_taken_again_by_its_holder) {
  start_alone(3);
  ck_assert(holds(g1));
  char *mark = book_mark();
  ck_assert_str_ne(mark, "");
  free(mark);
  for (int round = 0; round < 5; round++) {
    redisReply *r = gm_test_redis_cmd(rc, "DEL " LEASE_KEY);
    freeReplyObject(r);
    for (int i = 0; i < 100 && !holds(g1); i++) gm_test_sleep_ms(20);
    ck_assert(holds(g1));
  }
  ck_assert_msg(!gm_test_gmd_log_has(g1, "not the book of record"),
                "the holder called its own file foreign");
  ck_assert_int_eq(bump(c1, "s3"), 4);
  ck_assert_int_eq(wait_settled(c1, 4), 4);
}
END_TEST

/* One Query (market, sql) sent as a peer would, without CURVE, to broker
   g's ledger endpoint; its reply's status, or -1 when none came in 5 s. */
static int raw_sql(const gm_test_gmd *g, const char *market, const char *sql) {
  Gm__Ledger__Query q = GM__LEDGER__QUERY__INIT;
  q.version = 1;
  q.market = (char *)market;
  q.sql.data = (uint8_t *)sql;
  q.sql.len = strlen(sql);
  size_t len = gm__ledger__query__get_packed_size(&q);
  uint8_t *buf = malloc(len);
  gm__ledger__query__pack(&q, buf);
  void *ctx = zmq_ctx_new();
  void *d = zmq_socket(ctx, ZMQ_DEALER);
  int zero = 0;
  zmq_setsockopt(d, ZMQ_LINGER, &zero, sizeof zero);
  char ep[600];
  snprintf(ep, sizeof ep, "%s.ledger", gm_test_gmd_endpoint(g));
  ck_assert_int_eq(zmq_connect(d, ep), 0);
  uint64_t id = 9;
  zmq_send(d, &id, 8, ZMQ_SNDMORE);
  zmq_send(d, buf, len, 0);
  free(buf);
  int st = -1;
  zmq_pollitem_t it = {d, 0, ZMQ_POLLIN, 0};
  if (zmq_poll(&it, 1, 5000) == 1) {
    uint64_t rid = 0;
    ck_assert_int_eq(zmq_recv(d, &rid, 8, 0), 8);
    zmq_msg_t m;
    zmq_msg_init(&m);
    ck_assert_int_ge(zmq_msg_recv(&m, d, 0), 0);
    Gm__Ledger__Rows *rows =
        gm__ledger__rows__unpack(NULL, zmq_msg_size(&m), zmq_msg_data(&m));
    ck_assert_ptr_nonnull(rows);
    st = (int)rows->status;
    gm__ledger__rows__free_unpacked(rows, NULL);
    zmq_msg_close(&m);
  }
  zmq_close(d);
  zmq_ctx_term(ctx);
  return st;
}

/* A peer of the ledger endpoint (any client in dev mode, a broker's bug)
   sends statements that sqlite3_stmt_readonly lets through but that change
   the holder's shared read connection: BEGIN would freeze every later
   routed read on one snapshot; ATTACH would read another file.  Both are
   refused and leave routed reads current. */
START_TEST(a_peer_cannot_freeze_or_widen_the_holders_reads) {
  start("", "[settle]\nsettle = never\n", 0);
  ck_assert(holds(g1));
  for (int i = 0; i < 3; i++) {
    char note[16];
    snprintf(note, sizeof note, "p%d", i);
    ck_assert_int_eq(bump(c1, note), i + 1);
  }
  ck_assert_int_eq(wait_settled(c2, 3), 3);
  ck_assert_int_ne(raw_sql(g1, "", "BEGIN"), GM__STATUS__OK);
  ck_assert_int_eq(settled(c2), 3);
  for (int i = 3; i < 5; i++) {
    char note[16];
    snprintf(note, sizeof note, "p%d", i);
    ck_assert_int_eq(bump(c1, note), i + 1);
  }
  ck_assert_int_eq(wait_settled(c1, 5), 5);
  ck_assert_int_eq(wait_settled(c2, 5), 5);
  char attach[1200];
  snprintf(attach, sizeof attach, "ATTACH DATABASE '%s' AS other",
           gm_test_gmd_ledger(g2));
  ck_assert_int_ne(raw_sql(g1, "", attach), GM__STATUS__OK);
  ck_assert_int_ne(raw_sql(g1, "", "SELECT count(*) FROM other.gm_book"),
                   GM__STATUS__OK);
}
END_TEST

static Suite *suite(void) {
  Suite *s = suite_create("lease");
  TCase *t = tcase_create("lease");
  tcase_set_timeout(t, 120);
  tcase_add_checked_fixture(t, NULL, teardown);
  tcase_add_test(t, reads_on_the_other_broker_go_to_the_holder);
  tcase_add_test(t, kill9_of_the_holder_hands_over_and_settles_once);
  tcase_add_test(t, curve_reads_are_routed_and_strangers_refused);
  tcase_add_test(t, a_file_behind_the_book_never_takes_the_lease);
  tcase_add_test(t, a_forked_file_never_takes_the_lease);
  tcase_add_test(t, bad_settle_settings_are_refused);
  tcase_add_test(t,
                 a_holder_killed_between_commit_and_mark_takes_the_lease_again);
  tcase_add_test(t, a_lost_lease_key_is_taken_again_by_its_holder);
  tcase_add_test(t, a_peer_cannot_freeze_or_widen_the_holders_reads);
  suite_add_tcase(s, t);
  return s;
}

int main(void) {
  SRunner *r = srunner_create(suite());
  srunner_run_all(r, CK_NORMAL);
  int failed = srunner_ntests_failed(r);
  srunner_free(r);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
