/*
 * The settlement writer against a real redis-server and SQLite file: every
 * outbox entry settles exactly once through crashes, redeliveries, dead
 * consumers and failing callbacks.
 */
#include <check.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "arena.h"
#include "fault_vfs.h"
#include "call.h"
#include "lease.h"
#include "ledger.h"
#include "redis.h"
#include "redis_fill.h"
#include "redis_fixture.h"
#include "settle.h"

static gm_test_redis *srv;
static redisContext *raw;
static char *path;

/* What the test callback does: counted, optionally failing, optionally
   killing every other Redis client (to break the settler's connection). */
static atomic_int calls;
static atomic_int fail_on;      /* fail on the entry with this qty; 0: never */
static atomic_int fail_also;    /* and on this one */
static atomic_int kill_clients; /* before returning, once */
/* On the entry with qty forge_qty, step outside the market's tables: */
enum { FORGE_RETURN = 1, FORGE_SWALLOW, FORGE_OTHER_MARKET };
static atomic_int forge_qty, forge_mode;
static long sleep_us; /* per entry, to make a batch slow */
/* The callback that is the hang_at-th stops there for good, after writing
   a byte to hang_fd: a process killed then is inside a batch. */
static int hang_at, hang_fd = -1;
static atomic_int spill; /* times the entry with qty 1 meets a full disk */
/* start()'s retire_idle_ms (0: streams are never retired). */
static int64_t retire_ms;

static gm_status settle_row(gm_market *m, gm_ledger *tx,
                            const gm_outbox_entry *e) {
  (void)m;
  if (atomic_fetch_add(&calls, 1) + 1 == hang_at) {
    char b = 'h';
    if (write(hang_fd, &b, 1) != 1) _exit(3);
    for (;;) pause();
  }
  /* The host's own fields (a replay's gm:replay_of) never reach a market. */
  for (size_t i = 0; i < e->nfields; i++)
    if (strncmp(e->names[i], "gm:", 3) == 0) return GM_INTERNAL;
  const char *qty = gm_entry_field(e, "qty");
  if (qty && (atoi(qty) == atomic_load(&fail_on) ||
              atoi(qty) == atomic_load(&fail_also)))
    return GM_INTERNAL;
  if (qty && atoi(qty) == atomic_load(&forge_qty)) {
    gm_param f[] = {GM_TEXT(e->stream), GM_TEXT(e->id)};
    int mode = atomic_load(&forge_mode);
    gm_status fst =
        mode == FORGE_OTHER_MARKET
            ? gm__ledger_exec(tx,
                              "INSERT INTO beta_rows(market, stream, id) "
                              "VALUES('alpha', ?1, ?2)",
                              f, 2)
            : gm__ledger_exec(tx,
                              "INSERT INTO gm_settled(stream, id, kind, "
                              "settled_ms) VALUES(?1 || '-forged', ?2, "
                              "'forged', 0)",
                              f, 2);
    if (mode != FORGE_SWALLOW) return fst;
  }
  if (sleep_us) usleep((useconds_t)sleep_us);
  if (qty && atoi(qty) == 1 && atomic_load(&spill) > 0) {
    atomic_fetch_sub(&spill, 1);
    /* More than the page cache holds: pages go to the WAL during this
       statement, and the disk is full just then. */
    gm_fault_arm(GM_FAULT_WRITE, 1, SQLITE_FULL, 1);
    gm_status big = gm__ledger_exec(
        tx, "INSERT INTO alpha_spill(b) VALUES(randomblob(16000000))", NULL, 0);
    gm_fault_reset();
    if (big != GM_OK) return big;
  }
  gm_param p[] = {GM_TEXT(tx->market), GM_TEXT(e->stream), GM_TEXT(e->id),
                  GM_TEXT(e->kind), qty ? GM_INT(atoll(qty)) : GM_NULL};
  /* Each market writes its own table (the ledger's boundaries). */
  gm_status st = gm__ledger_exec(
      tx,
      strcmp(tx->market, "alpha") == 0
          ? "INSERT INTO alpha_rows(market, stream, id, kind, qty) "
            "VALUES(?1, ?2, ?3, ?4, ?5)"
          : "INSERT INTO beta_rows(market, stream, id, kind, qty) "
            "VALUES(?1, ?2, ?3, ?4, ?5)",
      p, 5);
  if (atomic_exchange(&kill_clients, 0)) {
    /* The COMMIT that follows succeeds; the XACK after it cannot. */
    redisContext *c = gm_test_redis_connect(srv);
    freeReplyObject(redisCommand(c, "CLIENT KILL TYPE normal SKIPME yes"));
    redisFree(c);
  }
  return st;
}

/* Markets alpha and beta settle; ghost is not loaded. */
static gm_settle_fn lookup(void *arg, const char *market, gm_market **m) {
  (void)arg;
  *m = NULL;
  if (strcmp(market, "alpha") == 0 || strcmp(market, "beta") == 0)
    return settle_row;
  return NULL;
}

static void setup(void) {
  srv = gm_test_redis_start();
  raw = gm_test_redis_connect(srv);
  path = gm_test_redis_path(srv, "ledger.sqlite");
  atomic_store(&calls, 0);
  atomic_store(&fail_on, 0);
  atomic_store(&fail_also, 0);
  atomic_store(&kill_clients, 0);
  atomic_store(&forge_qty, 0);
  atomic_store(&forge_mode, 0);
  atomic_store(&spill, 0);
  sleep_us = 0;
  retire_ms = 0;
  char err[512];
  gm__ledger *l = gm__ledger_open(path, 0, err, sizeof err);
  ck_assert_msg(l != NULL, "%s", err);
  /* No unique key: a double settlement shows as a second row.  The tests
     count both markets' rows through the view `rows` (made as the broker:
     markets may not name each other's tables). */
  const gm_migration alpha[] = {
      {1,
       "CREATE TABLE alpha_rows(market TEXT, stream TEXT, id TEXT, kind TEXT, "
       "qty INTEGER); CREATE TABLE alpha_spill(b BLOB)"}};
  const gm_migration beta[] = {
      {1,
       "CREATE TABLE beta_rows(market TEXT, stream TEXT, id TEXT, kind TEXT, "
       "qty INTEGER)"}};
  ck_assert_int_eq(gm__ledger_migrate(l, "alpha", alpha, 1, err, sizeof err),
                   GM_OK);
  ck_assert_int_eq(gm__ledger_migrate(l, "beta", beta, 1, err, sizeof err),
                   GM_OK);
  ck_assert_int_eq(sqlite3_exec(gm__ledger_db(l),
                                "CREATE VIEW rows AS SELECT * FROM alpha_rows "
                                "UNION ALL SELECT * FROM beta_rows",
                                NULL, NULL, NULL),
                   SQLITE_OK);
  gm__ledger_close(&l);
}

static void teardown(void) {
  if (raw) redisFree(raw);
  raw = NULL;
  free(path);
  path = NULL;
  gm_test_redis_stop(&srv);
}

/* When set, start() uses it as prune_idle_ms (else twice claim_ms). */
static int64_t prune_ms;
/* When set, the settler's Redis read timeout (else the default 30 s). */
static int64_t io_us;

static gm__settler *start(const char *consumer, int batch, int64_t claim_ms,
                          int no_thread) {
  gm__settle_config cfg = {
      .redis = {.unix_path = gm_test_redis_socket(srv), .io_us = io_us},
      .ledger_path = path,
      .consumer = consumer,
      .batch_size = batch,
      .block_ms = 10,
      .claim_idle_ms = claim_ms,
      .prune_idle_ms = prune_ms ? prune_ms : 2 * claim_ms,
      .retire_idle_ms = retire_ms,
      .lookup = lookup,
      .no_thread = no_thread};
  char err[512];
  gm__settler *s = gm__settler_start(&cfg, err, sizeof err);
  ck_assert_msg(s != NULL, "%s", err);
  return s;
}

static long long count(const char *sql) {
  sqlite3 *db = NULL;
  /* "unix", the default VFS before a test installs the failing one. */
  ck_assert_int_eq(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, "unix"),
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

/* Appends n entries with qty first..first+n-1 to market:tag's outbox. */
static void add_entries(const char *market, const char *tag, int first, int n) {
  char stream[128];
  snprintf(stream, sizeof stream, "gm:{%s:%s}:outbox", market, tag);
  gm_test_redis_int(raw, "SADD gm:outboxes %s", stream);
  for (int i = 0; i < n; i++)
    redisAppendCommand(raw, "XADD %s * kind fill qty %d side buy", stream,
                       first + i);
  for (int i = 0; i < n; i++) {
    redisReply *r = NULL;
    ck_assert_int_eq(redisGetReply(raw, (void **)&r), REDIS_OK);
    ck_assert_int_eq(r->type, REDIS_REPLY_STRING);
    freeReplyObject(r);
  }
}

static long long outbox_total(const char *what) {
  redisReply *m = gm_test_redis_cmd(raw, "SMEMBERS gm:outboxes");
  long long total = 0;
  for (size_t i = 0; i < m->elements; i++) {
    if (strcmp(what, "XLEN") == 0) {
      total += gm_test_redis_int(raw, "XLEN %s", m->element[i]->str);
    } else {
      redisReply *p =
          gm_test_redis_cmd(raw, "XPENDING %s gm-settle", m->element[i]->str);
      total += p->element[0]->integer;
      freeReplyObject(p);
    }
  }
  freeReplyObject(m);
  return total;
}

/* Drains until `want` rows are settled or rounds run out. */
static void drain_until(gm__settler *s, uint64_t want, int rounds) {
  for (int i = 0; i < rounds && gm__settler_settled(s) < want; i++)
    gm__settler_drain_once(s);
}

/* Every (stream, id) settled exactly once, and nothing left in Redis. */
static void assert_exactly_once(long long n) {
  ck_assert_int_eq(count("SELECT count(*) FROM rows"), n);
  ck_assert_int_eq(
      count("SELECT count(*) FROM (SELECT DISTINCT stream, id FROM rows)"), n);
  ck_assert_int_eq(count("SELECT count(*) FROM gm_settled"), n);
  ck_assert_int_eq(outbox_total("XPENDING"), 0);
  ck_assert_int_eq(outbox_total("XLEN"), 0);
}

/* A field of a command's line in INFO commandstats ("calls", ...). */
static long long cmdstat(const char *cmd, const char *field) {
  redisReply *r = gm_test_redis_cmd(raw, "INFO commandstats");
  char head[64], name[64];
  snprintf(head, sizeof head, "cmdstat_%s:", cmd);
  snprintf(name, sizeof name, "%s=", field);
  const char *p = strstr(r->str, head);
  const char *end = p ? strchr(p, '\n') : NULL;
  const char *q = p ? strstr(p, name) : NULL;
  long long v = q && (!end || q < end) ? atoll(q + strlen(name)) : 0;
  freeReplyObject(r);
  return v;
}

START_TEST(many_streams_two_markets_settle_once) {
  /* 300 streams: more than one XREADGROUP chunk of 128. */
  long long n = 0;
  for (int i = 0; i < 200; i++) {
    char tag[16];
    snprintf(tag, sizeof tag, "i%d", i);
    add_entries("alpha", tag, 1 + i * 10, 3);
    n += 3;
  }
  for (int i = 0; i < 100; i++) {
    char tag[16];
    snprintf(tag, sizeof tag, "t%d", i);
    add_entries("beta", tag, 5000 + i * 10, 4);
    n += 4;
  }
  gm__settler *s = start("c1", 64, 30000, 1);
  drain_until(s, (uint64_t)n, 200);
  ck_assert_uint_eq(gm__settler_settled(s), (uint64_t)n);
  assert_exactly_once(n);
  ck_assert_int_eq(count("SELECT count(*) FROM rows WHERE market = 'beta'"),
                   400);
  ck_assert_int_eq(count("SELECT count(*) FROM rows WHERE kind = 'fill' AND "
                         "qty IS NOT NULL"),
                   n);
  ck_assert_int_eq(atomic_load(&calls), n);
  /* Nothing more: a round reads nothing and settles nothing. */
  ck_assert_int_eq(gm__settler_drain_once(s), 0);
  /* Groups are made by EVALSHA of the script the first refresh loaded;
     Redis forgot it (a restart, SCRIPT FLUSH): new streams, two chunks of
     them, get their group all the same, by EVAL with the text. */
  ck_assert_int_gt(cmdstat("evalsha", "calls"), 0);
  freeReplyObject(gm_test_redis_cmd(raw, "SCRIPT FLUSH"));
  for (int i = 0; i < 200; i++) {
    char tag[16];
    snprintf(tag, sizeof tag, "n%d", i);
    add_entries("alpha", tag, 9000 + i * 10, 1);
  }
  n += 200;
  drain_until(s, (uint64_t)n, 200);
  assert_exactly_once(n);
  gm__settler_stop(&s);
  ck_assert_ptr_null(s);
  gm__settler_stop(&s); /* idempotent */
}
END_TEST

/*
 * A round holds at most 8 batches, as docs/operations.md says of `[ledger]
 * batch`, with 16 streams behind: XREADGROUP's COUNT is per stream, so each
 * stream is asked for its share (16 streams, batch 10: 160 entries in one
 * round before the share, then 320...).
 */
START_TEST(a_round_holds_at_most_eight_batches) {
  for (int i = 0; i < 16; i++) {
    char tag[16];
    snprintf(tag, sizeof tag, "s%d", i);
    add_entries("alpha", tag, 1 + i * 1000, 200);
  }
  gm__settler *s = start("c1", 10, 30000, 1);
  int most = 0;
  for (int i = 0; i < 1000 && gm__settler_settled(s) < 16 * 200; i++) {
    int n = gm__settler_drain_once(s);
    if (n > most) most = n;
  }
  ck_assert_uint_eq(gm__settler_settled(s), 16 * 200);
  ck_assert_int_le(most, 8 * 10);
  gm__settler_stop(&s);
}
END_TEST

/*
 * Entries left pending by a consumer killed mid-batch are read again before
 * new ones, on every stream: with more streams than a round wants, the
 * re-read of our pending entries covers only some streams, and when those
 * had none the settler went on to new entries, leaving the others' pending
 * entries for claim_idle_ms and settling them after later entries of their
 * stream.
 */
START_TEST(pending_entries_on_any_stream_settle_before_new_ones) {
  for (int i = 0; i < 16; i++) {
    char tag[16], stream[64];
    snprintf(tag, sizeof tag, "s%02d", i); /* read in this order */
    add_entries("alpha", tag, 1 + i * 1000, 5);
    snprintf(stream, sizeof stream, "gm:{alpha:%s}:outbox", tag);
    redisReply *r =
        gm_test_redis_cmd(raw, "XGROUP CREATE %s gm-settle 0", stream);
    freeReplyObject(r);
    /* c1 was killed after reading 2 entries of the last 6 streams. */
    if (i >= 10)
      freeReplyObject(gm_test_redis_cmd(
          raw, "XREADGROUP GROUP gm-settle c1 COUNT 2 STREAMS %s >", stream));
  }
  ck_assert_int_eq(outbox_total("XPENDING"), 12);
  gm__settler *s = start("c1", 10, 30000, 1);
  drain_until(s, 16 * 5, 100);
  ck_assert_uint_eq(gm__settler_settled(s), 16 * 5);
  assert_exactly_once(16 * 5);
  /* Each stream settled in its order. */
  ck_assert_int_eq(count("SELECT count(*) FROM alpha_rows a JOIN alpha_rows b "
                         "ON a.stream = b.stream AND a.rowid < b.rowid AND "
                         "a.qty > b.qty"),
                   0);
  gm__settler_stop(&s);
}
END_TEST

/*
 * A poison entry on one of more streams than a round wants is still set
 * aside and everything else settles: the entries of the batch it rolled
 * back are read again (pending) wherever the next round starts.
 */
START_TEST(a_poison_entry_among_many_streams_is_set_aside) {
  for (int i = 0; i < 16; i++) {
    char tag[16];
    snprintf(tag, sizeof tag, "s%02d", i);
    add_entries("alpha", tag, 1 + i * 1000, 5);
  }
  atomic_store(&fail_on, 3 + 4 * 1000); /* the 3rd entry of s04 */
  gm__settle_config cfg = {.redis = {.unix_path = gm_test_redis_socket(srv)},
                           .ledger_path = path,
                           .consumer = "c1",
                           .batch_size = 10,
                           .block_ms = 10,
                           .claim_idle_ms = 30000,
                           .lookup = lookup,
                           .dead_letter_after = 2,
                           .no_thread = 1};
  char err[512];
  gm__settler *s = gm__settler_start(&cfg, err, sizeof err);
  ck_assert_msg(s != NULL, "%s", err);
  for (int i = 0; i < 200 && count("SELECT count(*) FROM gm_settled") < 80; i++)
    gm__settler_drain_once(s);
  ck_assert_int_eq(count("SELECT count(*) FROM gm_settled"), 80);
  ck_assert_int_eq(count("SELECT count(*) FROM rows"), 79);
  ck_assert_int_eq(
      count("SELECT count(*) FROM (SELECT DISTINCT stream, id FROM rows)"), 79);
  ck_assert_int_eq(count("SELECT count(*) FROM gm_dead_letter_field WHERE "
                         "name = 'qty' AND value = '4003'"),
                   1);
  ck_assert_int_eq(outbox_total("XPENDING"), 0);
  gm__settler_stop(&s);
}
END_TEST

START_TEST(redelivery_after_commit_settles_once) {
  add_entries("alpha", "x", 1, 20);
  gm__settler *s = start("c1", 100, 30000, 1);
  /* The batch commits, then the connection dies before XACK: the entries
     stay pending, exactly as after kill -9 between COMMIT and XACK. */
  atomic_store(&kill_clients, 1);
  ck_assert_int_eq(gm__settler_drain_once(s), 20);
  redisFree(raw); /* killed with the settler's */
  raw = gm_test_redis_connect(srv);
  ck_assert_int_eq(count("SELECT count(*) FROM rows"), 20);
  ck_assert_int_eq(outbox_total("XPENDING"), 20);
  ck_assert_int_eq(outbox_total("XLEN"), 20);
  /* Next round: reconnect, read our pending entries, recognise them. */
  ck_assert_int_eq(gm__settler_drain_once(s), 0);
  assert_exactly_once(20);
  ck_assert_int_eq(atomic_load(&calls), 20); /* no callback ran twice */
  ck_assert_uint_eq(gm__settler_settled(s), 20);
  gm__settler_stop(&s);

  /* A new settler under the same consumer name resumes its pending list. */
  add_entries("alpha", "x", 100, 5);
  redisReply *r = gm_test_redis_cmd(
      raw, "XREADGROUP GROUP gm-settle c2 COUNT 100 STREAMS %s >",
      "gm:{alpha:x}:outbox");
  freeReplyObject(r);
  ck_assert_int_eq(outbox_total("XPENDING"), 5);
  s = start("c2", 100, 30000, 1);
  ck_assert_int_eq(gm__settler_drain_once(s), 5);
  assert_exactly_once(25);
  gm__settler_stop(&s);
}
END_TEST

/* A monotonic clock, for the checks that hold only while an idle time
   has not passed: on a stalled machine they are skipped, not failed. */
static int64_t mono_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

START_TEST(dead_consumer_entries_are_claimed) {
  add_entries("alpha", "a", 1, 10);
  add_entries("beta", "b", 100, 10);
  const char *streams[] = {"gm:{alpha:a}:outbox", "gm:{beta:b}:outbox"};
  /* Consumer "dead" reads every entry and never acknowledges. */
  int64_t read_at = mono_ms();
  for (int i = 0; i < 2; i++) {
    freeReplyObject(
        gm_test_redis_cmd(raw, "XGROUP CREATE %s gm-settle 0", streams[i]));
    freeReplyObject(gm_test_redis_cmd(
        raw, "XREADGROUP GROUP gm-settle dead COUNT 100 STREAMS %s >",
        streams[i]));
  }
  ck_assert_int_eq(outbox_total("XPENDING"), 20);
  gm__settler *s = start("live", 100, 300, 1);
  /* Not idle for 300 ms yet: the entries are left to their consumer
     (checked when the round ended within those 300 ms). */
  int early = gm__settler_drain_once(s);
  if (mono_ms() - read_at < 300) {
    ck_assert_int_eq(early, 0);
    ck_assert_int_eq(count("SELECT count(*) FROM rows"), 0);
  }
  usleep(400 * 1000);
  drain_until(s, 20, 50);
  assert_exactly_once(20);
  ck_assert_int_eq(atomic_load(&calls), 20);
  gm__settler_stop(&s);
}
END_TEST

/* Consumers of brokers that are gone leave the group once their entries
   are claimed and they stayed idle; one that still holds entries stays. */
START_TEST(dead_consumers_are_removed_once_empty) {
  add_entries("alpha", "a", 1, 10);
  const char *stream = "gm:{alpha:a}:outbox";
  freeReplyObject(
      gm_test_redis_cmd(raw, "XGROUP CREATE %s gm-settle 0", stream));
  /* "gone" reads every entry and dies; "empty" never read anything. */
  freeReplyObject(gm_test_redis_cmd(
      raw, "XREADGROUP GROUP gm-settle gone COUNT 100 STREAMS %s >", stream));
  int64_t created_at = mono_ms();
  freeReplyObject(gm_test_redis_cmd(
      raw, "XGROUP CREATECONSUMER %s gm-settle empty", stream));
  gm__settler *s = start("live", 100, 200, 1);
  usleep(300 * 1000);
  /* Claims gone's entries; empty is idle over 400 ms only later. */
  drain_until(s, 10, 50);
  assert_exactly_once(10);
  redisReply *r =
      gm_test_redis_cmd(raw, "XINFO CONSUMERS %s gm-settle", stream);
  ck_assert_int_eq(r->type, REDIS_REPLY_ARRAY);
  size_t before = r->elements;
  freeReplyObject(r);
  /* "empty" may go once idle 400 ms (2 x claim): while that time has not
     passed, it is still there. */
  if (mono_ms() - created_at < 400) ck_assert_int_ge(before, 2);
  /* After the idle time, a later round removes both; live stays. */
  usleep(500 * 1000);
  for (int i = 0; i < 30; i++) {
    gm__settler_drain_once(s);
    r = gm_test_redis_cmd(raw, "XINFO CONSUMERS %s gm-settle", stream);
    size_t n = r->elements;
    freeReplyObject(r);
    if (n == 1) break;
    usleep(50 * 1000);
  }
  r = gm_test_redis_cmd(raw, "XINFO CONSUMERS %s gm-settle", stream);
  ck_assert_int_eq(r->elements, 1);
  ck_assert_str_eq(r->element[0]->element[1]->str, "live");
  freeReplyObject(r);
  /* A consumer with an entry pending is never removed, however idle. */
  add_entries("alpha", "a", 11, 1);
  freeReplyObject(gm_test_redis_cmd(
      raw, "XREADGROUP GROUP gm-settle holder COUNT 1 STREAMS %s >", stream));
  gm__settler_stop(&s);
  prune_ms = 100; /* idle long enough to go, but it holds an entry */
  s = start("live", 100, 60000, 1); /* claims nothing for a minute */
  usleep(300 * 1000);
  gm__settler_drain_once(s);
  r = gm_test_redis_cmd(raw, "XINFO CONSUMERS %s gm-settle", stream);
  int holder = 0;
  for (size_t i = 0; i < r->elements; i++)
    holder += strcmp(r->element[i]->element[1]->str, "holder") == 0;
  freeReplyObject(r);
  ck_assert_int_eq(holder, 1);
  gm__settler_stop(&s);
}
END_TEST

/* A dead letter replayed twice (its Redis replay record lost, say) is
   settled once: the ledger row it deletes decides, not Redis. */
START_TEST(replayed_letter_settles_once_even_if_appended_twice) {
  sqlite3 *db = NULL;
  ck_assert_int_eq(sqlite3_open(path, &db), SQLITE_OK);
  ck_assert_int_eq(
      sqlite3_exec(db,
                   "INSERT INTO gm_dead_letter(stream, id, market, kind, "
                   "error, failures, set_aside_ms) VALUES('gm:{alpha:a}:"
                   "outbox', '5-0', 'alpha', 'fill', 'e', 5, 1);"
                   "INSERT INTO gm_dead_letter_field VALUES('gm:{alpha:a}:"
                   "outbox', '5-0', 0, 'qty', '77')",
                   NULL, NULL, NULL),
      SQLITE_OK);
  sqlite3_close(db);
  const char *stream = "gm:{alpha:a}:outbox";
  gm_test_redis_int(raw, "SADD gm:outboxes %s", stream);
  for (int i = 0; i < 2; i++)
    freeReplyObject(gm_test_redis_cmd(
        raw, "XADD %s * kind fill gm:replay_of 5-0 qty 77", stream));
  gm__settler *s = start("live", 100, 30000, 1);
  for (int i = 0; i < 20 && outbox_total("XLEN") > 0; i++)
    gm__settler_drain_once(s);
  ck_assert_int_eq(atomic_load(&calls), 1);
  ck_assert_int_eq(count("SELECT count(*) FROM rows WHERE qty = 77"), 1);
  ck_assert_int_eq(count("SELECT count(*) FROM gm_dead_letter"), 0);
  ck_assert_int_eq(count("SELECT count(*) FROM gm_dead_letter_field"), 0);
  /* The marker never reached the callback's fields (it fails on gm:). */
  ck_assert_int_eq(count("SELECT count(*) FROM rows WHERE kind = 'fill'"), 1);
  ck_assert_int_eq(outbox_total("XPENDING"), 0);
  gm__settler_stop(&s);
}
END_TEST

/* One entry whose callback always fails is set aside after 3 failures in a
   row, fields and error kept, and the other entries settle. */
START_TEST(poison_entry_is_set_aside_not_lost) {
  add_entries("alpha", "p", 1, 10);
  gm__settle_config cfg = {.redis = {.unix_path = gm_test_redis_socket(srv)},
                           .ledger_path = path,
                           .consumer = "c1",
                           .batch_size = 100,
                           .block_ms = 10,
                           .claim_idle_ms = 30000,
                           .lookup = lookup,
                           .dead_letter_after = 3,
                           .no_thread = 1};
  char err[512];
  gm__settler *s = gm__settler_start(&cfg, err, sizeof err);
  ck_assert_msg(s != NULL, "%s", err);
  atomic_store(&fail_on, 7);
  for (int i = 0; i < 3; i++) ck_assert_int_eq(gm__settler_drain_once(s), -1);
  ck_assert_int_eq(count("SELECT count(*) FROM rows"), 0);
  ck_assert_int_eq(gm__settler_drain_once(s), 10);
  ck_assert_int_eq(count("SELECT count(*) FROM rows"), 9);
  ck_assert_int_eq(count("SELECT count(*) FROM rows WHERE qty = 7"), 0);
  ck_assert_int_eq(count("SELECT count(*) FROM gm_settled"), 10);
  ck_assert_int_eq(count("SELECT count(*) FROM gm_dead_letter WHERE market = "
                         "'alpha' AND kind = 'fill' AND failures = 3"),
                   1);
  ck_assert_int_eq(count("SELECT count(*) FROM gm_dead_letter_field WHERE "
                         "name = 'qty' AND value = '7'"),
                   1);
  ck_assert_int_eq(outbox_total("XPENDING"), 0);
  gm__settler_stop(&s);
}
END_TEST

/* Runs a settler that sets an entry aside after 2 failures in a row. */
static gm__settler *start_strict(void) {
  gm__settle_config cfg = {.redis = {.unix_path = gm_test_redis_socket(srv)},
                           .ledger_path = path,
                           .consumer = "c1",
                           .batch_size = 100,
                           .block_ms = 10,
                           .claim_idle_ms = 30000,
                           .lookup = lookup,
                           .dead_letter_after = 2,
                           .no_thread = 1};
  char err[512];
  gm__settler *s = gm__settler_start(&cfg, err, sizeof err);
  ck_assert_msg(s != NULL, "%s", err);
  return s;
}

/* Two entries of one batch whose callbacks always fail are both set aside
   and the others settle: the second one's failure rolls back the batch that
   set the first aside, so the next batch ends right after setting it aside
   again (before, the two took turns failing for ever and nothing after them
   settled). */
START_TEST(two_poison_entries_in_one_batch_are_set_aside) {
  add_entries("alpha", "p", 1, 10);
  atomic_store(&fail_on, 4);
  atomic_store(&fail_also, 7);
  gm__settler *s = start_strict();
  for (int i = 0; i < 20 && count("SELECT count(*) FROM gm_settled") < 10; i++)
    gm__settler_drain_once(s);
  ck_assert_int_eq(count("SELECT count(*) FROM rows"), 8);
  ck_assert_int_eq(count("SELECT count(*) FROM gm_settled"), 10);
  ck_assert_int_eq(count("SELECT count(*) FROM gm_dead_letter WHERE market = "
                         "'alpha' AND failures = 2"),
                   2);
  ck_assert_int_eq(count("SELECT count(*) FROM gm_dead_letter_field WHERE "
                         "name = 'qty' AND value IN ('4', '7')"),
                   2);
  ck_assert_int_eq(outbox_total("XPENDING"), 0);
  gm__settler_stop(&s);
}
END_TEST

/*
 * The ledger's boundaries in a settle callback: a market writing outside
 * its tables is refused with the rule, the whole batch rolls back (the
 * other entries too), is retried, and the entry is set aside with the
 * reason once it failed dead_letter_after times: nothing forged, nothing
 * lost.
 */
static void refused_write_is_set_aside(int mode, const char *reason) {
  add_entries("alpha", "x", 1, 5);
  atomic_store(&forge_qty, 3);
  atomic_store(&forge_mode, mode);
  gm__settler *s = start_strict();
  for (int i = 0; i < 2; i++) {
    ck_assert_int_eq(gm__settler_drain_once(s), -1);
    ck_assert_int_eq(count("SELECT count(*) FROM rows"), 0);
    ck_assert_int_eq(count("SELECT count(*) FROM gm_settled"), 0);
    ck_assert_int_eq(outbox_total("XPENDING"), 5); /* nothing acked */
  }
  ck_assert_int_eq(gm__settler_drain_once(s), 5);
  ck_assert_int_eq(count("SELECT count(*) FROM rows"), 4);
  ck_assert_int_eq(count("SELECT count(*) FROM rows WHERE qty = 3"), 0);
  ck_assert_int_eq(count("SELECT count(*) FROM gm_settled"), 5);
  ck_assert_int_eq(
      count("SELECT count(*) FROM gm_settled WHERE kind = 'forged'"), 0);
  char sql[512];
  snprintf(sql, sizeof sql,
           "SELECT count(*) FROM gm_dead_letter WHERE market = 'alpha' AND "
           "failures = 2 AND instr(error, '%s') > 0",
           reason);
  ck_assert_msg(count(sql) == 1, "no dead letter with '%s'", reason);
  ck_assert_int_eq(count("SELECT count(*) FROM gm_dead_letter_field WHERE "
                         "name = 'qty' AND value = '3'"),
                   1);
  ck_assert_int_eq(outbox_total("XPENDING"), 0);
  gm__settler_stop(&s);
}

START_TEST(writing_gm_settled_is_refused_and_set_aside) {
  refused_write_is_set_aside(FORGE_RETURN,
                             "alpha may use only tables named alpha_*: "
                             "''gm_settled'' belongs to the broker");
}
END_TEST

/* The callback ignores the refusal and returns GM_OK: the host still does
   not commit the batch. */
START_TEST(an_ignored_refusal_still_rolls_back) {
  refused_write_is_set_aside(FORGE_SWALLOW,
                             "''gm_settled'' belongs to the broker");
}
END_TEST

START_TEST(writing_another_markets_table_is_refused) {
  refused_write_is_set_aside(FORGE_OTHER_MARKET,
                             "alpha may use only tables named alpha_*: "
                             "''beta_rows'' is not one of them");
  ck_assert_int_eq(count("SELECT count(*) FROM beta_rows"), 0);
}
END_TEST

START_TEST(failing_callback_rolls_back_the_batch) {
  add_entries("alpha", "f", 1, 10);
  gm__settler *s = start("c1", 100, 30000, 1);
  atomic_store(&fail_on, 5);
  ck_assert_int_eq(gm__settler_drain_once(s), -1);
  ck_assert_int_eq(atomic_load(&calls), 5); /* 1..4 wrote, 5 failed */
  ck_assert_int_eq(count("SELECT count(*) FROM rows"), 0);
  ck_assert_int_eq(count("SELECT count(*) FROM gm_settled"), 0);
  ck_assert_int_eq(outbox_total("XPENDING"), 10); /* nothing acked */
  ck_assert_int_eq(outbox_total("XLEN"), 10);
  ck_assert_int_eq(gm__settler_drain_once(s), -1);
  ck_assert_int_eq(count("SELECT count(*) FROM rows"), 0);
  ck_assert_uint_eq(gm__settler_settled(s), 0);
  /* The plugin is fixed: every entry settles once. */
  atomic_store(&fail_on, 0);
  ck_assert_int_eq(gm__settler_drain_once(s), 10);
  assert_exactly_once(10);
  ck_assert_uint_eq(gm__settler_settled(s), 10);
  gm__settler_stop(&s);
}
END_TEST

START_TEST(unknown_market_is_recorded_and_acked) {
  add_entries("ghost", "g", 1, 3);
  add_entries("alpha", "a", 10, 2);
  gm__settler *s = start("c1", 100, 30000, 1);
  drain_until(s, 5, 20);
  ck_assert_uint_eq(gm__settler_settled(s), 5);
  ck_assert_int_eq(count("SELECT count(*) FROM gm_settled WHERE kind = "
                         "'fill' AND stream = 'gm:{ghost:g}:outbox'"),
                   3);
  ck_assert_int_eq(count("SELECT count(*) FROM rows"), 2);
  ck_assert_int_eq(outbox_total("XPENDING"), 0);
  ck_assert_int_eq(outbox_total("XLEN"), 0);
  gm__settler_stop(&s);
}
END_TEST

static void wait_for(const char *sql, long long want, int seconds) {
  long long have = -1;
  for (int i = 0; i < seconds * 50; i++) {
    have = count(sql);
    if (have >= want) return;
    usleep(20 * 1000);
  }
  ck_abort_msg("%s: %lld after %d s, want %lld", sql, have, seconds, want);
}

START_TEST(kill9_during_settlement_loses_and_doubles_nothing) {
  enum { N = 3000 };
  add_entries("alpha", "k1", 1, N / 3);
  add_entries("alpha", "k2", 10001, N / 3);
  add_entries("beta", "k3", 20001, N / 3);
  /* The victim stops inside a batch, at a callback drawn at random past
     the first batches: killed there, it holds entries it has not acked,
     whatever the machine's load (a kill timed from outside could land
     between a batch's XACK and the next read: nothing pending). */
  int hang[2];
  ck_assert_int_eq(pipe(hang), 0);
  srand((unsigned)time(NULL));
  int at = 400 + rand() % 1600;
  pid_t pid = fork();
  ck_assert_int_ge(pid, 0);
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    close(hang[0]);
    hang_fd = hang[1];
    hang_at = at;
    atomic_store(&calls, 0);
    gm__settle_config cfg = {.redis = {.unix_path = gm_test_redis_socket(srv)},
                             .ledger_path = path,
                             .consumer = "victim",
                             .batch_size = 50,
                             .block_ms = 10,
                             .lookup = lookup};
    char err[512];
    if (!gm__settler_start(&cfg, err, sizeof err)) _exit(1);
    for (;;) pause();
  }
  close(hang[1]);
  char b;
  ck_assert_msg(read(hang[0], &b, 1) == 1,
                "the victim exited before callback %d", at);
  close(hang[0]);
  long long settled = count("SELECT count(*) FROM rows");
  kill(pid, SIGKILL);
  waitpid(pid, NULL, 0);
  long long before = count("SELECT count(*) FROM rows");
  ck_assert_int_eq(before, settled);
  ck_assert_msg(before > 0 && before < at,
                "%lld settled before callback %d stopped", before, at);
  ck_assert_int_gt(outbox_total("XPENDING"), 0);

  gm__settler *s = start("survivor", 256, 200, 0);
  wait_for("SELECT count(*) FROM gm_settled", N, 30);
  gm__settler_stop(&s);
  assert_exactly_once(N);
}
END_TEST

START_TEST(scripts_emit_and_thread_settles) {
  char err[512];
  gm__redis_addr addr = {.unix_path = gm_test_redis_socket(srv)};
  gm__redis *r = gm__redis_connect(&addr, err, sizeof err);
  ck_assert_msg(r != NULL, "%s", err);
  ck_assert_int_eq(
      gm__scripts_add(r, "alpha", "fill", NULL,
                      "gm.emit('fill', 'qty', tonumber(ARGV[1]), 'buyer', "
                      "gm.participant)\nreturn 1\n",
                      err, sizeof err),
      GM_OK);
  gm__settler *s = start("c1", 32, 30000, 0);
  gm__arena *a = gm__arena_new();
  enum { N = 500 };
  for (int i = 0; i < N; i++) {
    char qty[16], idem[16];
    snprintf(qty, sizeof qty, "%d", i + 1);
    snprintf(idem, sizeof idem, "o%d", i);
    gm_call c = {
        .arena = a, .participant = "alice", .idem_key = idem, .redis = r};
    const char *args[] = {qty};
    const gm_value *v;
    const char *tag = i % 2 ? "odd" : "even";
    ck_assert_int_eq(
        gm__script_run(&c, "alpha", "fill", tag, 0, NULL, 1, args, &v), GM_OK);
    /* A retry (a new call, the same key) of every tenth emits nothing new. */
    if (i % 10 == 0) {
      gm_call retry = {
          .arena = a, .participant = "alice", .idem_key = idem, .redis = r};
      ck_assert_int_eq(
          gm__script_run(&retry, "alpha", "fill", tag, 0, NULL, 1, args, &v),
          GM_OK);
    }
    gm__arena_reset(a);
  }
  wait_for("SELECT count(*) FROM gm_settled", N, 20);
  gm__settler_stop(&s);
  assert_exactly_once(N);
  ck_assert_int_eq(count("SELECT sum(qty) FROM rows"), N * (N + 1) / 2);
  gm__arena_destroy(&a);
  gm__redis_destroy(&r);
  gm__scripts_remove("alpha");
}
END_TEST

START_TEST(redis_restart_during_settlement) {
  add_entries("alpha", "r", 1, 10);
  gm__settler *s = start("c1", 100, 30000, 1);
  drain_until(s, 10, 20);
  ck_assert_uint_eq(gm__settler_settled(s), 10);
  /* A new, empty server: no gm:outboxes, no streams, no groups. */
  redisFree(raw);
  gm_test_redis_restart(srv);
  raw = gm_test_redis_connect(srv);
  ck_assert_int_eq(gm__settler_drain_once(s), -1); /* the old connection */
  add_entries("alpha", "r", 11, 10);
  add_entries("beta", "r", 21, 5);
  /* The known stream has no group any more: it is created again. */
  drain_until(s, 25, 2000);
  ck_assert_uint_eq(gm__settler_settled(s), 25);
  ck_assert_int_eq(count("SELECT count(*) FROM rows"), 25);
  ck_assert_int_eq(outbox_total("XPENDING"), 0);
  ck_assert_int_eq(outbox_total("XLEN"), 0);

  /* A stream deleted and written again has no group: NOGROUP, then the
     group is made again and the entries are read from the start. */
  gm_test_redis_int(raw, "DEL gm:{alpha:r}:outbox");
  add_entries("alpha", "r", 31, 4);
  drain_until(s, 29, 20);
  ck_assert_uint_eq(gm__settler_settled(s), 29);
  assert_exactly_once(29);
  gm__settler_stop(&s);
}
END_TEST

START_TEST(trim_keeps_entries_pending_elsewhere) {
  add_entries("alpha", "p", 1, 10);
  const char *stream = "gm:{alpha:p}:outbox";
  freeReplyObject(
      gm_test_redis_cmd(raw, "XGROUP CREATE %s gm-settle 0", stream));
  /* A live consumer holds the 5 oldest entries. */
  redisReply *r = gm_test_redis_cmd(
      raw, "XREADGROUP GROUP gm-settle other COUNT 5 STREAMS %s >", stream);
  char held[5][48];
  for (int i = 0; i < 5; i++)
    snprintf(held[i], sizeof held[i], "%s",
             r->element[0]->element[1]->element[i]->element[0]->str);
  freeReplyObject(r);
  gm__settler *s = start("c1", 100, 30000, 1);
  ck_assert_int_eq(gm__settler_drain_once(s), 5);
  /* Acked entries above the held ones stay; the held ones are intact. */
  ck_assert_int_eq(outbox_total("XPENDING"), 5);
  ck_assert_int_eq(gm_test_redis_int(raw, "XLEN %s", stream), 10);
  for (int i = 0; i < 5; i++) {
    r = gm_test_redis_cmd(raw, "XRANGE %s %s %s", stream, held[i], held[i]);
    ck_assert_uint_eq(r->elements, 1);
    freeReplyObject(r);
  }
  gm__settler_stop(&s);
  /* The holder dies; its entries are claimed and the stream empties. */
  s = start("c2", 100, 100, 1);
  usleep(200 * 1000);
  drain_until(s, 5, 20);
  assert_exactly_once(10);
  gm__settler_stop(&s);
}
END_TEST

/*
 * SQLite fails at each file operation of a batch in turn (the n-th write,
 * sync or lock from the batch's start, for every n the batch makes): the
 * batch is rolled back and retried, and every entry settles exactly once,
 * none set aside as a dead letter for a fault of the ledger's.
 */
static void fault_each_step(gm_fault_op op, int rc, int times) {
  gm_fault_vfs_install();
  gm__settler *s = start("c1", 16, 30000, 1);
  long long total = 10;
  add_entries("alpha", "clean", 1, 10);
  gm_fault_reset();
  drain_until(s, (uint64_t)total, 20);
  int steps = gm_fault_count(op);
  assert_exactly_once(total);
  int fired = 0; /* steps whose fault fired: a batch's operations vary a
                    little (WAL frames, checkpoints) */
  for (int k = 1; k <= steps + 1; k++) {
    char tag[16];
    snprintf(tag, sizeof tag, "f%d", k);
    add_entries(k % 2 ? "alpha" : "beta", tag, 100 * k, 10);
    total += 10;
    gm_fault_arm(op, k, rc, times);
    drain_until(s, (uint64_t)total, 40);
    fired += gm_fault_fired() > 0;
    ck_assert_msg(gm__settler_settled(s) == (uint64_t)total,
                  "fault %d at operation %d of %d: %llu of %lld settled", rc, k,
                  steps, (unsigned long long)gm__settler_settled(s), total);
    assert_exactly_once(total);
    ck_assert_int_eq(count("SELECT count(*) FROM gm_dead_letter"), 0);
  }
  gm_fault_reset();
  ck_assert_msg(fired >= steps / 2 && fired > 0,
                "the fault fired at %d of %d steps", fired, steps);
  gm__settler_stop(&s);
}

START_TEST(io_errors_at_each_write_are_retried) {
  fault_each_step(GM_FAULT_WRITE, SQLITE_IOERR_WRITE, 1);
}
END_TEST

START_TEST(a_full_disk_at_each_write_is_retried) {
  /* Full for longer than the dead-letter threshold: still not the entry's
     fault. */
  fault_each_step(GM_FAULT_WRITE, SQLITE_FULL, 8);
}
END_TEST

START_TEST(a_full_disk_inside_a_callback_sets_nothing_aside) {
  gm_fault_vfs_install();
  gm__settler *s = start("c1", 16, 30000, 1);
  add_entries("alpha", "big", 1, 3);
  /* Full each time entry 1 settles, more times than the dead-letter
     threshold (5); every other write succeeds. */
  atomic_store(&spill, 8);
  for (int i = 0; i < 8; i++) gm__settler_drain_once(s);
  ck_assert_int_eq(atomic_load(&spill), 0);
  ck_assert_int_eq(count("SELECT count(*) FROM gm_dead_letter"), 0);
  ck_assert_int_eq(count("SELECT count(*) FROM rows"), 0);
  drain_until(s, 3, 20);
  assert_exactly_once(3);
  ck_assert_int_eq(count("SELECT count(*) FROM gm_dead_letter"), 0);
  gm__settler_stop(&s);
}
END_TEST

START_TEST(busy_locks_at_each_step_are_retried) {
  /* Longer than a busy handler waits out within one statement's retries. */
  fault_each_step(GM_FAULT_SHMLOCK, SQLITE_BUSY, 50);
}
END_TEST

/*
 * A broker that died between a script run and registering the tag's
 * stream left entries gm:outboxes does not list: the settler's discovery
 * walk finds the stream and settles them.
 */
START_TEST(an_unlisted_stream_is_found_and_settled) {
  add_entries("alpha", "listed", 1, 3);
  for (int i = 0; i < 4; i++)
    freeReplyObject(gm_test_redis_cmd(
        raw, "XADD gm:{alpha:lost}:outbox * kind fill qty %d", 100 + i));
  /* A tag with deadlines only is listed too (the deadline service walks the
     list); other keys are left alone. */
  freeReplyObject(gm_test_redis_cmd(raw, "ZADD gm:{beta:dlonly}:dl 5 close|x"));
  freeReplyObject(gm_test_redis_cmd(raw, "SET gm:{alpha:lost}:other 1"));
  gm__settler *s = start("c1", 64, 30000, 1);
  drain_until(s, 7, 20);
  ck_assert_uint_eq(gm__settler_settled(s), 7);
  ck_assert_int_eq(gm_test_redis_int(raw, "SISMEMBER gm:outboxes %s",
                                     "gm:{alpha:lost}:outbox"),
                   1);
  ck_assert_int_eq(gm_test_redis_int(raw, "SISMEMBER gm:outboxes %s",
                                     "gm:{beta:dlonly}:outbox"),
                   1);
  ck_assert_int_eq(gm_test_redis_int(raw, "SCARD gm:outboxes"), 3);
  assert_exactly_once(7);
  gm__settler_stop(&s);
}
END_TEST

/* The settle lease's gate (lease.h), set by the test: 0 closed, else the
   tenure. */
static _Atomic uint64_t tenure;
static uint64_t gate(void *arg) {
  (void)arg;
  return atomic_load(&tenure);
}

/* A broker that took the settle lease claims a dead holder's entries at
   once (not after claim_idle_ms): those it had settled but not XACKed are
   recognised and not settled again; the rest settle once. */
START_TEST(a_new_lease_holder_claims_at_once_and_settles_nothing_twice) {
  add_entries("alpha", "x", 1, 20);
  gm__settler *old = start("old", 100, 30000, 1);
  /* The old holder commits 20, then dies before XACK. */
  atomic_store(&kill_clients, 1);
  ck_assert_int_eq(gm__settler_drain_once(old), 20);
  gm__settler_stop(&old);
  redisFree(raw);
  raw = gm_test_redis_connect(srv);
  /* ... and had read 5 more it never settled. */
  add_entries("alpha", "x", 100, 5);
  freeReplyObject(gm_test_redis_cmd(
      raw, "XREADGROUP GROUP gm-settle old COUNT 100 STREAMS %s >",
      "gm:{alpha:x}:outbox"));
  ck_assert_int_eq(outbox_total("XPENDING"), 25);
  gm__settle_config cfg = {.redis = {.unix_path = gm_test_redis_socket(srv)},
                           .ledger_path = path,
                           .consumer = "new",
                           .batch_size = 100,
                           .block_ms = 10,
                           .claim_idle_ms = 30000,
                           .lookup = lookup,
                           .no_thread = 1,
                           .gate = gate};
  char err[512];
  atomic_store(&tenure, 0);
  gm__settler *s = gm__settler_start(&cfg, err, sizeof err);
  ck_assert_msg(s != NULL, "%s", err);
  /* Without the lease it settles nothing. */
  ck_assert_int_eq(gm__settler_drain_once(s), 0);
  ck_assert_int_eq(outbox_total("XPENDING"), 25);
  /* With it, at once, though nothing was idle for 30 s. */
  atomic_store(&tenure, 1);
  drain_until(s, 5, 10);
  ck_assert_uint_eq(gm__settler_settled(s), 5);
  assert_exactly_once(25);
  ck_assert_int_eq(atomic_load(&calls), 25); /* no callback ran twice */
  gm__settler_stop(&s);
}
END_TEST

/* Fencing: a gate that closes during a batch (the lease was not renewed
   in time) rolls the batch back before COMMIT and leaves it pending. */
static atomic_int gate_calls, gate_open_calls;
static uint64_t closing_gate(void *arg) {
  (void)arg;
  return atomic_fetch_add(&gate_calls, 1) < atomic_load(&gate_open_calls);
}

START_TEST(a_lease_lost_mid_batch_commits_nothing) {
  add_entries("alpha", "x", 1, 10);
  gm__settle_config cfg = {.redis = {.unix_path = gm_test_redis_socket(srv)},
                           .ledger_path = path,
                           .consumer = "fenced",
                           .batch_size = 100,
                           .block_ms = 10,
                           .claim_idle_ms = 30000,
                           .lookup = lookup,
                           .no_thread = 1,
                           .gate = closing_gate};
  char err[512];
  gm__settler *s = gm__settler_start(&cfg, err, sizeof err);
  ck_assert_msg(s != NULL, "%s", err);
  /* Open at the round's start, closed at COMMIT. */
  atomic_store(&gate_calls, 0);
  atomic_store(&gate_open_calls, 1);
  ck_assert_int_eq(gm__settler_drain_once(s), -1);
  ck_assert_int_eq(count("SELECT count(*) FROM rows"), 0);
  ck_assert_int_eq(count("SELECT count(*) FROM gm_settled"), 0);
  ck_assert_int_eq(outbox_total("XPENDING"), 10);
  /* Renewed: the same entries settle, once. */
  atomic_store(&gate_calls, 0);
  atomic_store(&gate_open_calls, 1000);
  drain_until(s, 10, 10);
  assert_exactly_once(10);
  gm__settler_stop(&s);
}
END_TEST

/* ---- retiring settled, idle streams ---- */

static gm__redis *emitter;
static gm__arena *emit_arena;

static void emitter_start(void) {
  char err[512];
  gm__redis_addr addr = {.unix_path = gm_test_redis_socket(srv)};
  emitter = gm__redis_connect(&addr, err, sizeof err);
  ck_assert_msg(emitter != NULL, "%s", err);
  ck_assert_int_eq(gm__scripts_add(emitter, "alpha", "fill", NULL,
                                   "gm.emit('fill', 'qty', tonumber(ARGV[1]))\n"
                                   "return 1\n",
                                   err, sizeof err),
                   GM_OK);
  emit_arena = gm__arena_new();
}

static void emitter_stop(void) {
  gm__arena_destroy(&emit_arena);
  gm__redis_destroy(&emitter);
  gm__scripts_remove("alpha");
}

/* alpha.fill on `tag` with qty and idempotency key `idem`, as a broker
   runs it (its outbox registered through this process's list). */
static void emit(const char *tag, int qty, const char *idem) {
  char q[16];
  snprintf(q, sizeof q, "%d", qty);
  gm_call c = {.arena = emit_arena,
               .participant = "alice",
               .idem_key = idem,
               .redis = emitter};
  const char *args[] = {q};
  const gm_value *v;
  ck_assert_int_eq(
      gm__script_run(&c, "alpha", "fill", tag, 0, NULL, 1, args, &v), GM_OK);
  gm__arena_reset(emit_arena);
}

static long long listed(const char *tag) {
  return gm_test_redis_int(raw, "SISMEMBER gm:outboxes gm:{alpha:%s}:outbox",
                           tag);
}
static long long exists(const char *tag) {
  return gm_test_redis_int(raw, "EXISTS gm:{alpha:%s}:outbox", tag);
}

/* A broker that starts while its Redis is over maxmemory takes the settle
   lease (two keys of fixed size) and settles: the book's mark after each
   COMMIT is written too, so the entries are acknowledged and trimmed,
   which frees Redis.  Before, the lease's SET was refused (gmd would not
   start) and so was the mark (nothing acknowledged: the outbox kept its
   memory until Redis had room). */
START_TEST(over_maxmemory_the_lease_is_taken_and_entries_freed) {
  add_entries("alpha", "m", 1, 20);
  /* The group as a running broker's settler made it (XGROUP CREATE
     itself is refused over maxmemory). */
  freeReplyObject(
      gm_test_redis_cmd(raw, "XGROUP CREATE gm:{alpha:m}:outbox gm-settle 0"));
  /* A broker gone for good left its consumer, with nothing pending: the
     prune removes it over maxmemory too. */
  ck_assert_int_eq(
      gm_test_redis_int(
          raw, "XGROUP CREATECONSUMER gm:{alpha:m}:outbox gm-settle gone"),
      1);
  ck_assert(gm_test_redis_fill(raw) > 0);
  usleep(60 * 1000); /* "gone" idle past prune_idle_ms */
  gm__lease_config lc = {.redis = {.unix_path = gm_test_redis_socket(srv)},
                         .name = "full",
                         .endpoint = "tcp://127.0.0.1:9",
                         .ledger_path = path,
                         .lease_ms = 3000,
                         .take = 1};
  char err[512];
  gm__lease *l = gm__lease_start(&lc, err, sizeof err);
  ck_assert_msg(l != NULL, "%s", err);
  ck_assert_uint_gt(gm__lease_gate(l), 0);
  gm__settle_config cfg = {.redis = {.unix_path = gm_test_redis_socket(srv)},
                           .ledger_path = path,
                           .consumer = "full",
                           .batch_size = 100,
                           .block_ms = 10,
                           .claim_idle_ms = 30000,
                           .prune_idle_ms = 50,
                           .retire_idle_ms = 1,
                           .lookup = lookup,
                           .no_thread = 1,
                           .gate = gm__lease_gate,
                           .gate_arg = l,
                           .committed = gm__lease_committed};
  gm__settler *s = gm__settler_start(&cfg, err, sizeof err);
  ck_assert_msg(s != NULL, "%s", err);
  drain_until(s, 20, 20);
  /* Still over maxmemory: a write of the test's own is refused. */
  redisReply *r = redisCommand(raw, "SET probe 1");
  ck_assert_msg(r && r->type == REDIS_REPLY_ERROR && !strncmp(r->str, "OOM", 3),
                "Redis had room again: the case proves nothing");
  freeReplyObject(r);
  assert_exactly_once(20); /* nothing pending, the stream trimmed */
  r = gm_test_redis_cmd(raw, "XINFO CONSUMERS gm:{alpha:m}:outbox gm-settle");
  for (size_t i = 0; i < r->elements; i++)
    ck_assert_str_ne(r->element[i]->element[1]->str, "gone");
  freeReplyObject(r);
  /* Idle and settled, the stream is retired, still over maxmemory. */
  usleep(20 * 1000);
  ck_assert_int_eq(gm__settler_retire_once(s), 1);
  ck_assert_int_eq(exists("m"), 0);
  ck_assert_int_eq(listed("m"), 0);
  gm__settler_stop(&s);
  gm__lease_stop(&l);
  freeReplyObject(gm_test_redis_cmd(raw, "CONFIG SET maxmemory 0"));
}
END_TEST

/* A listed tag whose outbox is still to be made (deadlines only) while
   Redis is over maxmemory: Redis refuses to make it, which is Redis being
   full, not a key that is not a stream; the settler says so once, not at
   every reading of gm:outboxes, and makes the stream once Redis has room. */
START_TEST(over_maxmemory_an_outbox_to_make_waits_for_room) {
  add_entries("alpha", "m", 1, 5);
  freeReplyObject(
      gm_test_redis_cmd(raw, "XGROUP CREATE gm:{alpha:m}:outbox gm-settle 0"));
  freeReplyObject(
      gm_test_redis_cmd(raw, "ZADD gm:{alpha:dlonly}:dl 9 close|x"));
  gm_test_redis_int(raw, "SADD gm:outboxes gm:{alpha:dlonly}:outbox");
  ck_assert(gm_test_redis_fill(raw) > 0);
  char log_path[] = "/tmp/gm-test-settle-log-XXXXXX";
  int log_fd = mkstemp(log_path);
  ck_assert_int_ge(log_fd, 0);
  fflush(stderr);
  int saved = dup(2);
  ck_assert_int_ge(dup2(log_fd, 2), 0);
  gm__settler *s = start("full", 100, 30000, 1);
  drain_until(s, 5, 20);
  /* Two more readings of gm:outboxes (one a second). */
  for (int i = 0; i < 2; i++) {
    usleep(1100 * 1000);
    gm__settler_drain_once(s);
  }
  fflush(stderr);
  dup2(saved, 2);
  close(saved);
  char buf[16384];
  ssize_t n = pread(log_fd, buf, sizeof buf - 1, 0);
  close(log_fd);
  unlink(log_path);
  buf[n > 0 ? n : 0] = '\0';
  fputs(buf, stderr);
  ck_assert_msg(!strstr(buf, "delete the key"),
                "the log tells the operator to delete a key: %s", buf);
  int lines = 0;
  for (const char *p = buf; (p = strstr(p, "gm:{alpha:dlonly}:outbox")); p++)
    lines++;
  ck_assert_msg(lines <= 1, "%d lines about the outbox to make", lines);
  ck_assert_int_eq(exists("dlonly"), 0);
  /* Room again: the stream is made, with the group. */
  freeReplyObject(gm_test_redis_cmd(raw, "CONFIG SET maxmemory 0"));
  usleep(1100 * 1000);
  gm__settler_drain_once(s);
  ck_assert_int_eq(exists("dlonly"), 1);
  gm__settler_stop(&s);
}
END_TEST

/* Runs fn(s) with stderr into a file; what it logged, in buf. */
static void logged(void (*fn)(gm__settler *), gm__settler *s, char *buf,
                   size_t n) {
  char log_path[] = "/tmp/gm-test-settle-log-XXXXXX";
  int log_fd = mkstemp(log_path);
  ck_assert_int_ge(log_fd, 0);
  fflush(stderr);
  int saved = dup(2);
  ck_assert_int_ge(dup2(log_fd, 2), 0);
  fn(s);
  fflush(stderr);
  dup2(saved, 2);
  close(saved);
  ssize_t got = pread(log_fd, buf, n - 1, 0);
  close(log_fd);
  unlink(log_path);
  buf[got > 0 ? got : 0] = '\0';
  fputs(buf, stderr);
}

static void drain(gm__settler *s) {
  gm__settler_drain_once(s);
}

static void retire(gm__settler *s) {
  gm__settler_retire_once(s);
}

/*
 * The settler's side sweeps (looking for dead consumers, for streams to
 * retire) against a Redis that does not answer them (writes paused: their
 * scripts wait, as on a stalled Redis) say so as the rest of the settler
 * does: "no reply within N s" and Redis's address, not hiredis's
 * "Resource temporarily unavailable".
 */
START_TEST(a_stalled_redis_during_the_side_sweeps_is_said_as_such) {
  add_entries("alpha", "s", 1, 5);
  io_us = 300000;
  prune_ms = 1; /* a prune every round */
  gm__settler *s = start("side", 100, 60000, 1);
  drain_until(s, 5, 20);
  char buf[16384];
  freeReplyObject(gm_test_redis_cmd(raw, "CLIENT PAUSE 1500 WRITE"));
  usleep(5 * 1000);
  logged(drain, s, buf, sizeof buf);
  freeReplyObject(gm_test_redis_cmd(raw, "CLIENT UNPAUSE"));
  ck_assert_msg(strstr(buf,
                       "looking for dead consumers: no reply within 0.3 s "
                       "(Redis at unix socket "),
                "the prune's warning: %s", buf);
  ck_assert_msg(!strstr(buf, "Resource temporarily unavailable"), "%s", buf);
  gm__settler_drain_once(s); /* reconnects */
  freeReplyObject(gm_test_redis_cmd(raw, "CLIENT PAUSE 1500 WRITE"));
  usleep(5 * 1000);
  logged(retire, s, buf, sizeof buf);
  freeReplyObject(gm_test_redis_cmd(raw, "CLIENT UNPAUSE"));
  ck_assert_msg(strstr(buf,
                       "looking for settled outbox streams to retire: no "
                       "reply within 0.3 s (Redis at unix socket "),
                "the retire sweep's warning: %s", buf);
  ck_assert_msg(!strstr(buf, "Resource temporarily unavailable"), "%s", buf);
  gm__settler_stop(&s);
}
END_TEST

START_TEST(settled_idle_streams_are_retired_and_made_again) {
  emitter_start();
  retire_ms = 1;
  emit("done", 1, "d1");
  emit("done", 2, "d2");
  emit("again", 3, "a1");
  add_entries("alpha", "dl", 4, 1); /* a tag with a deadline still due */
  freeReplyObject(gm_test_redis_cmd(raw, "ZADD gm:{alpha:dl}:dl 9 close|x"));
  add_entries("alpha", "late", 5, 1);
  add_entries("alpha", "ghost", 6, 1);
  gm__settler *s = start("c1", 64, 30000, 1);
  drain_until(s, 6, 20);
  ck_assert_uint_eq(gm__settler_settled(s), 6);
  /* Written after the settler's last read: one entry nobody has read yet,
     one read by another consumer and not acknowledged. */
  add_entries("alpha", "late", 7, 1);
  add_entries("alpha", "ghost", 8, 1);
  freeReplyObject(gm_test_redis_cmd(
      raw,
      "XREADGROUP GROUP gm-settle ghost STREAMS gm:{alpha:ghost}:outbox >"));
  usleep(20 * 1000); /* every last entry is now older than retire_ms */
  ck_assert_int_eq(gm__settler_retire_once(s), 2);
  ck_assert_int_eq(exists("done"), 0);
  ck_assert_int_eq(listed("done"), 0);
  ck_assert_int_eq(exists("again"), 0);
  ck_assert_int_eq(listed("again"), 0);
  const char *kept[] = {"dl", "late", "ghost"};
  for (int i = 0; i < 3; i++) {
    ck_assert_msg(exists(kept[i]) && listed(kept[i]), "%s was retired",
                  kept[i]);
  }
  ck_assert_int_eq(gm_test_redis_int(raw, "SCARD gm:outboxes"), 3);
  /* A retry of a call whose stream is gone replays and makes nothing. */
  emit("again", 3, "a1");
  ck_assert_int_eq(exists("again"), 0);
  ck_assert_int_eq(listed("again"), 0);
  /* A new call makes the stream again and lists it, though this process
     listed it before the retirement; its entry settles. */
  emit("done", 9, "d3");
  ck_assert_int_eq(exists("done"), 1);
  ck_assert_int_eq(listed("done"), 1);
  drain_until(s, 8, 20); /* d3 and late's second entry */
  ck_assert_uint_eq(gm__settler_settled(s), 8);
  ck_assert_int_eq(count("SELECT count(*) FROM rows WHERE qty = 9"), 1);
  /* Nothing retired twice or settled twice: 8 distinct entries. */
  ck_assert_int_eq(count("SELECT count(*) FROM gm_settled"), 8);
  ck_assert_int_eq(
      count("SELECT count(*) FROM (SELECT DISTINCT stream, id FROM rows)"), 8);
  gm__settler_stop(&s);
  emitter_stop();
}
END_TEST

/* Redis's clock in ms. */
static long long redis_now_ms(void) {
  redisReply *t = gm_test_redis_cmd(raw, "TIME");
  ck_assert(t && t->type == REDIS_REPLY_ARRAY && t->elements == 2);
  long long ms =
      atoll(t->element[0]->str) * 1000 + atoll(t->element[1]->str) / 1000;
  freeReplyObject(t);
  return ms;
}

/* A field of XINFO STREAM `stream`, as a string (malloc'd). */
static char *stream_info(const char *stream, const char *field) {
  redisReply *r = gm_test_redis_cmd(raw, "XINFO STREAM %s", stream);
  ck_assert(r && r->type == REDIS_REPLY_ARRAY);
  char *v = NULL;
  for (size_t i = 0; i + 1 < r->elements; i += 2)
    if (strcmp(r->element[i]->str, field) == 0) {
      const redisReply *e = r->element[i + 1];
      if (e->type == REDIS_REPLY_INTEGER) {
        char b[32];
        snprintf(b, sizeof b, "%lld", e->integer);
        v = strdup(b);
      } else {
        v = strdup(e->str);
      }
    }
  freeReplyObject(r);
  ck_assert_msg(v != NULL, "XINFO STREAM %s has no %s", stream, field);
  return v;
}

START_TEST(a_stream_made_again_goes_on_from_its_last_id_and_count) {
  /* Entries stamped by a clock that ran ahead (or, the same, a clock set
     back since): one per ms from 1.5 s to 6.5 s from now.  The settler
     retires them as idle (retire_idle_ms below 0 moves its cut into the
     future as a clock set back would).  The next entry, made within that
     span, must not take an id of a settled entry: gm_settled would take it
     for settled already and drop it. */
  emitter_start();
  const char *stream = "gm:{alpha:skew}:outbox";
  long long base = redis_now_ms() + 1500;
  enum { N = 5000 };
  gm_test_redis_int(raw, "SADD gm:outboxes %s", stream);
  for (int i = 0; i < N; i++)
    redisAppendCommand(raw, "XADD %s %lld-0 kind fill qty %d", stream, base + i,
                       100 + i);
  for (int i = 0; i < N; i++) {
    redisReply *r = NULL;
    ck_assert_int_eq(redisGetReply(raw, (void **)&r), REDIS_OK);
    ck_assert_int_eq(r->type, REDIS_REPLY_STRING);
    freeReplyObject(r);
  }
  retire_ms = -3600000;
  gm__settler *s = start("c1", 512, 30000, 1);
  drain_until(s, N, 40);
  ck_assert_uint_eq(gm__settler_settled(s), N);
  ck_assert_int_eq(gm__settler_retire_once(s), 1);
  ck_assert_int_eq(exists("skew"), 0);
  ck_assert_int_eq(listed("skew"), 0);
  /* What the retirement kept expires (30 days): no key stays for ever. */
  long long ttl = gm_test_redis_int(raw, "TTL %s:retired", stream);
  ck_assert_msg(ttl > 2591000 && ttl <= 2592000, "TTL %lld", ttl);
  while (redis_now_ms() < base + 200) usleep(20 * 1000);
  emit("skew", 7, "s1");
  ck_assert_int_eq(listed("skew"), 1);
  char *last = stream_info(stream, "last-generated-id");
  const char *dash = strchr(last, '-');
  ck_assert_ptr_nonnull(dash);
  long long ms = atoll(last), seq = atoll(dash + 1);
  ck_assert_msg(ms > base + N - 1 || (ms == base + N - 1 && seq > 0),
                "the stream made again starts at %s, among the retired "
                "stream's ids (%lld-0 to %lld-0)",
                last, base, base + N - 1);
  free(last);
  /* Its count of entries ever added goes on too (carbon's reconcile). */
  char *added = stream_info(stream, "entries-added");
  ck_assert_str_eq(added, "5001");
  free(added);
  drain_until(s, N + 1, 20);
  ck_assert_uint_eq(gm__settler_settled(s), N + 1);
  ck_assert_int_eq(count("SELECT count(*) FROM rows WHERE qty = 7"), 1);
  assert_exactly_once(N + 1);
  gm__settler_stop(&s);
  emitter_stop();
}
END_TEST

START_TEST(a_retry_registers_a_stream_made_again_whatever_the_cache) {
  emitter_start();
  retire_ms = 1;
  emit("r", 1, "r1"); /* this process lists gm:{alpha:r}:outbox */
  gm__settler *s = start("c1", 64, 30000, 1);
  drain_until(s, 1, 20);
  usleep(20 * 1000);
  ck_assert_int_eq(gm__settler_retire_once(s), 1);
  ck_assert_int_eq(listed("r"), 0);
  /* Another broker runs a call that makes the stream again and dies
     before its SADD (the same as: its SADD is not there). */
  emit("r", 2, "r2");
  gm_test_redis_int(raw, "SREM gm:outboxes gm:{alpha:r}:outbox");
  /* The client's retry comes here: its replay registers the stream,
     though this process listed it before the retirement. */
  emit("r", 2, "r2");
  ck_assert_int_eq(listed("r"), 1);
  drain_until(s, 2, 20);
  ck_assert_uint_eq(gm__settler_settled(s), 2);
  gm__settler_stop(&s);
  emitter_stop();
}
END_TEST

START_TEST(a_deadline_on_a_retired_tag_registers_it) {
  emitter_start();
  char err[512];
  ck_assert_int_eq(gm__scripts_add(emitter, "alpha", "arm", NULL,
                                   "gm.deadline('close', 'x', 4102444800000)\n"
                                   "return 1\n",
                                   err, sizeof err),
                   GM_OK);
  retire_ms = 1;
  emit("d", 1, "d1");
  gm__settler *s = start("c1", 64, 30000, 1);
  drain_until(s, 1, 20);
  usleep(20 * 1000);
  ck_assert_int_eq(gm__settler_retire_once(s), 1);
  ck_assert_int_eq(listed("d"), 0);
  /* A run that only sets a deadline: the tag is listed again (the deadline
     reconciliation walks gm:outboxes), though this process listed it
     before the retirement. */
  gm_call c = {.arena = emit_arena,
               .participant = "alice",
               .idem_key = "d2",
               .redis = emitter};
  const gm_value *v;
  ck_assert_int_eq(
      gm__script_run(&c, "alpha", "arm", "d", 0, NULL, 0, NULL, &v), GM_OK);
  ck_assert_int_eq(listed("d"), 1);
  /* The settler's group makes the stream again, going on from the retired
     stream's last id and count; it is kept while the deadline is there. */
  redisReply *kept = gm_test_redis_cmd(raw, "GET gm:{alpha:d}:outbox:retired");
  ck_assert_int_eq(kept->type, REDIS_REPLY_STRING);
  char was[64];
  snprintf(was, sizeof was, "%s", kept->str);
  freeReplyObject(kept);
  gm__settler_drain_once(s);
  ck_assert_int_eq(exists("d"), 1);
  char *last = stream_info("gm:{alpha:d}:outbox", "last-generated-id");
  char *added = stream_info("gm:{alpha:d}:outbox", "entries-added");
  char now[64];
  snprintf(now, sizeof now, "%s %s", last, added);
  ck_assert_str_eq(now, was);
  free(last);
  free(added);
  usleep(20 * 1000);
  ck_assert_int_eq(gm__settler_retire_once(s), 0);
  ck_assert_int_eq(listed("d"), 1);
  gm__settler_stop(&s);
  emitter_stop();
}
END_TEST

START_TEST(a_missing_stream_of_a_tag_with_deadlines_stays_listed) {
  retire_ms = 1;
  add_entries("alpha", "gone", 1, 1);
  gm__settler *s = start("c1", 64, 30000, 1);
  drain_until(s, 1, 20);
  ck_assert_uint_eq(gm__settler_settled(s), 1);
  /* Another settler (a lease holder before this one) retired the stream,
     which this one's list still names, and a run set a deadline on the tag
     since, listing it again: the tag stays listed for the deadline
     reconciliation. */
  gm_test_redis_int(raw, "DEL gm:{alpha:gone}:outbox");
  freeReplyObject(gm_test_redis_cmd(raw, "ZADD gm:{alpha:gone}:dl 9 close|x"));
  usleep(20 * 1000);
  ck_assert_int_eq(gm__settler_retire_once(s), 0);
  ck_assert_int_eq(listed("gone"), 1);
  gm__settler_stop(&s);
}
END_TEST

/* A tag's deadline claims hash (its firing counter) goes with its stream
   once its last claim is older than stored replies live (plus the idle
   time); a later one keeps the tag; one without that time (an older
   release's) stays behind while the stream goes. */
START_TEST(claims_go_with_the_stream_once_older_than_stored_replies) {
  retire_ms = 1;
  redisReply *now = gm_test_redis_cmd(raw, "TIME");
  long long ms = atoll(now->element[0]->str) * 1000;
  freeReplyObject(now);
  const char *tag[] = {"recent", "old", "legacy"};
  for (int i = 0; i < 3; i++) {
    add_entries("alpha", tag[i], i + 1, 1);
    freeReplyObject(
        gm_test_redis_cmd(raw, "HSET gm:{alpha:%s}:dl:claims # 3", tag[i]));
  }
  freeReplyObject(gm_test_redis_cmd(
      raw, "HSET gm:{alpha:recent}:dl:claims #t %lld", ms - 1000));
  freeReplyObject(gm_test_redis_cmd(raw,
                                    "HSET gm:{alpha:old}:dl:claims #t %lld",
                                    ms - gm__scripts_idem_ttl() * 1000 - 1000));
  gm__settler *s = start("c1", 64, 30000, 1);
  drain_until(s, 3, 20);
  ck_assert_uint_eq(gm__settler_settled(s), 3);
  usleep(20 * 1000);
  ck_assert_int_eq(gm__settler_retire_once(s), 2);
  ck_assert_int_eq(exists("recent") + listed("recent"), 2);
  ck_assert_int_eq(gm_test_redis_int(raw, "EXISTS gm:{alpha:recent}:dl:claims"),
                   1);
  ck_assert_int_eq(exists("old") + listed("old"), 0);
  ck_assert_int_eq(gm_test_redis_int(raw, "EXISTS gm:{alpha:old}:dl:claims"),
                   0);
  ck_assert_int_eq(exists("legacy") + listed("legacy"), 0);
  ck_assert_int_eq(gm_test_redis_int(raw, "EXISTS gm:{alpha:legacy}:dl:claims"),
                   1);
  gm__settler_stop(&s);
}
END_TEST

/* A listed stream already gone (another settler retired it) follows the
   claims hash's '#t' as a present one does: a recent one keeps the tag
   listed and the hash, an old one lets both go.  A hash holding a claim but
   no deadline (one cancelled while it fired) keeps its tag too (below). */
START_TEST(a_missing_streams_claims_follow_their_time) {
  retire_ms = 1;
  redisReply *now = gm_test_redis_cmd(raw, "TIME");
  long long ms = atoll(now->element[0]->str) * 1000;
  freeReplyObject(now);
  const char *tag[] = {"gone-recent", "gone-old", "cancelled"};
  for (int i = 0; i < 3; i++) add_entries("alpha", tag[i], i + 1, 1);
  gm__settler *s = start("c1", 64, 30000, 1);
  drain_until(s, 3, 20);
  ck_assert_uint_eq(gm__settler_settled(s), 3);
  long long old = ms - gm__scripts_idem_ttl() * 1000 - 1000;
  gm_test_redis_int(raw, "DEL gm:{alpha:gone-recent}:outbox");
  gm_test_redis_int(raw, "DEL gm:{alpha:gone-old}:outbox");
  freeReplyObject(gm_test_redis_cmd(
      raw, "HSET gm:{alpha:gone-recent}:dl:claims # 2 #t %lld", ms - 1000));
  freeReplyObject(gm_test_redis_cmd(
      raw, "HSET gm:{alpha:gone-old}:dl:claims # 2 #t %lld", old));
  freeReplyObject(gm_test_redis_cmd(
      raw,
      "HSET gm:{alpha:cancelled}:dl:claims # 1 #t %lld close|x %lld|9|1|1|b",
      ms - 1000, ms + 600000));
  usleep(20 * 1000);
  ck_assert_int_eq(gm__settler_retire_once(s), 1);
  ck_assert_int_eq(listed("gone-recent"), 1);
  ck_assert_int_eq(
      gm_test_redis_int(raw, "HGET gm:{alpha:gone-recent}:dl:claims #"), 2);
  ck_assert_int_eq(listed("gone-old"), 0);
  ck_assert_int_eq(
      gm_test_redis_int(raw, "EXISTS gm:{alpha:gone-old}:dl:claims"), 0);
  ck_assert_int_eq(exists("cancelled") + listed("cancelled"), 2);
  ck_assert_int_eq(
      gm_test_redis_int(raw, "HEXISTS %s %s", "gm:{alpha:cancelled}:dl:claims",
                        "close|x"),
      1);
  gm__settler_stop(&s);
}
END_TEST

/* A claims hash that holds a claim keeps its tag (stream and hash) however
   old its '#t': a live claim is a firing still running, storing replies
   later than '#t' (a callback slower than idempotency_ttl plus the idle
   time), and an expired one a firing whose end no broker has seen yet
   (its broker died, or its callback failed and the deadline was
   cancelled: the deadline claim script drops it then and moves '#t').
   Once the claims are gone, the old '#t' lets the tag go. */
START_TEST(a_claims_hash_holding_a_claim_keeps_its_tag) {
  retire_ms = 1;
  redisReply *now = gm_test_redis_cmd(raw, "TIME");
  long long ms = atoll(now->element[0]->str) * 1000;
  freeReplyObject(now);
  long long old = ms - gm__scripts_idem_ttl() * 1000 - 1000;
  const char *tag[] = {"live", "expired"};
  for (int i = 0; i < 2; i++) add_entries("alpha", tag[i], i + 1, 1);
  freeReplyObject(gm_test_redis_cmd(
      raw, "HSET gm:{alpha:live}:dl:claims # 1 #t %lld close|x %lld|9|1|1|b",
      old, ms + 600000));
  freeReplyObject(gm_test_redis_cmd(
      raw, "HSET gm:{alpha:expired}:dl:claims # 1 #t %lld close|y 5|9|1|1|b",
      old));
  gm__settler *s = start("c1", 64, 30000, 1);
  drain_until(s, 2, 20);
  ck_assert_uint_eq(gm__settler_settled(s), 2);
  usleep(20 * 1000);
  ck_assert_int_eq(gm__settler_retire_once(s), 0);
  for (int i = 0; i < 2; i++) {
    ck_assert_int_eq(exists(tag[i]) + listed(tag[i]), 2);
    ck_assert_int_eq(
        gm_test_redis_int(raw, "HGET gm:{alpha:%s}:dl:claims #", tag[i]), 1);
  }
  gm_test_redis_int(raw, "HDEL gm:{alpha:live}:dl:claims close|x");
  gm_test_redis_int(raw, "HDEL gm:{alpha:expired}:dl:claims close|y");
  ck_assert_int_eq(gm__settler_retire_once(s), 2);
  for (int i = 0; i < 2; i++) {
    ck_assert_int_eq(exists(tag[i]) + listed(tag[i]), 0);
    ck_assert_int_eq(
        gm_test_redis_int(raw, "EXISTS gm:{alpha:%s}:dl:claims", tag[i]), 0);
  }
  gm__settler_stop(&s);
}
END_TEST

START_TEST(streams_written_lately_are_kept) {
  emitter_start();
  retire_ms = 60000;
  emit("fresh", 1, "f1");
  gm__settler *s = start("c1", 64, 30000, 1);
  drain_until(s, 1, 20);
  ck_assert_uint_eq(gm__settler_settled(s), 1);
  ck_assert_int_eq(gm__settler_retire_once(s), 0);
  ck_assert_int_eq(exists("fresh"), 1);
  ck_assert_int_eq(listed("fresh"), 1);
  gm__settler_stop(&s);
  emitter_stop();
}
END_TEST

START_TEST(a_settler_thread_retires_by_itself) {
  retire_ms = 1;
  add_entries("alpha", "t1", 1, 2);
  add_entries("alpha", "t2", 3, 1);
  gm__settler *s = start("c1", 64, 30000, 0);
  /* Settled within a round, retired by a sweep (every 2.5 s). */
  /* The set's member and the stream go by separate commands (other slots
     on a cluster): wait for both. */
  for (int i = 0; i < 500 && (gm_test_redis_int(raw, "SCARD gm:outboxes") ||
                              exists("t1") + exists("t2"));
       i++)
    usleep(20 * 1000);
  ck_assert_int_eq(gm_test_redis_int(raw, "SCARD gm:outboxes"), 0);
  ck_assert_int_eq(exists("t1") + exists("t2"), 0);
  gm__settler_stop(&s);
  assert_exactly_once(3);
}
END_TEST

int main(void) {
  Suite *s = suite_create("storage_settle");
  TCase *tc = tcase_create("settle");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, many_streams_two_markets_settle_once);
  tcase_add_test(tc, redelivery_after_commit_settles_once);
  tcase_add_test(tc, a_round_holds_at_most_eight_batches);
  tcase_add_test(tc, pending_entries_on_any_stream_settle_before_new_ones);
  tcase_add_test(tc, a_poison_entry_among_many_streams_is_set_aside);
  tcase_add_test(tc, dead_consumer_entries_are_claimed);
  tcase_add_test(tc,
                 a_new_lease_holder_claims_at_once_and_settles_nothing_twice);
  tcase_add_test(tc, a_lease_lost_mid_batch_commits_nothing);
  tcase_add_test(tc, dead_consumers_are_removed_once_empty);
  tcase_add_test(tc, replayed_letter_settles_once_even_if_appended_twice);
  tcase_add_test(tc, failing_callback_rolls_back_the_batch);
  tcase_add_test(tc, poison_entry_is_set_aside_not_lost);
  tcase_add_test(tc, two_poison_entries_in_one_batch_are_set_aside);
  tcase_add_test(tc, unknown_market_is_recorded_and_acked);
  tcase_add_test(tc, writing_gm_settled_is_refused_and_set_aside);
  tcase_add_test(tc, an_ignored_refusal_still_rolls_back);
  tcase_add_test(tc, writing_another_markets_table_is_refused);
  tcase_add_test(tc, kill9_during_settlement_loses_and_doubles_nothing);
  tcase_add_test(tc, scripts_emit_and_thread_settles);
  tcase_add_test(tc, redis_restart_during_settlement);
  tcase_add_test(tc, trim_keeps_entries_pending_elsewhere);
  tcase_add_test(tc, io_errors_at_each_write_are_retried);
  tcase_add_test(tc, a_full_disk_at_each_write_is_retried);
  tcase_add_test(tc, busy_locks_at_each_step_are_retried);
  tcase_add_test(tc, a_full_disk_inside_a_callback_sets_nothing_aside);
  tcase_add_test(tc, an_unlisted_stream_is_found_and_settled);
  tcase_add_test(tc, over_maxmemory_the_lease_is_taken_and_entries_freed);
  tcase_add_test(tc, over_maxmemory_an_outbox_to_make_waits_for_room);
  suite_add_tcase(s, tc);
  /* Also in a one-node cluster (test_storage_settle_cluster1). */
  TCase *rt = tcase_create("retire");
  tcase_add_checked_fixture(rt, setup, teardown);
  tcase_set_timeout(rt, 60);
  tcase_add_test(rt, settled_idle_streams_are_retired_and_made_again);
  tcase_add_test(rt, streams_written_lately_are_kept);
  tcase_add_test(rt, claims_go_with_the_stream_once_older_than_stored_replies);
  tcase_add_test(rt, a_missing_streams_claims_follow_their_time);
  tcase_add_test(rt, a_claims_hash_holding_a_claim_keeps_its_tag);
  tcase_add_test(rt, a_settler_thread_retires_by_itself);
  tcase_add_test(rt, a_stalled_redis_during_the_side_sweeps_is_said_as_such);
  tcase_add_test(rt, a_stream_made_again_goes_on_from_its_last_id_and_count);
  tcase_add_test(rt, a_retry_registers_a_stream_made_again_whatever_the_cache);
  tcase_add_test(rt, a_deadline_on_a_retired_tag_registers_it);
  tcase_add_test(rt, a_missing_stream_of_a_tag_with_deadlines_stays_listed);
  suite_add_tcase(s, rt);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
