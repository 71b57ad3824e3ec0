/* The ledger service: migrations, exec, query, on a real SQLite file. */
#include <check.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "arena.h"
#include "call.h"
#include "fault_vfs.h"
#include "ledger.h"
#include "market.h"
#include "redis.h"
#include "redis_fixture.h"

static gm_test_redis *srv; /* for its temp folder and cleanup */
static char *path;
static gm__ledger *writer;

static void setup(void) {
  srv = gm_test_redis_start();
  path = gm_test_redis_path(srv, "ledger.sqlite");
  char err[512];
  writer = gm__ledger_open(path, 0, err, sizeof err);
  ck_assert_msg(writer != NULL, "%s", err);
}

static void teardown(void) {
  gm__ledger_close(&writer);
  free(path);
  gm_test_redis_stop(&srv);
}

/* One integer from a SQL query on the writer connection. */
static long long scalar(const char *sql) {
  sqlite3_stmt *st = NULL;
  ck_assert_int_eq(
      sqlite3_prepare_v2(gm__ledger_db(writer), sql, -1, &st, NULL), SQLITE_OK);
  ck_assert_int_eq(sqlite3_step(st), SQLITE_ROW);
  long long v = sqlite3_column_int64(st, 0);
  sqlite3_finalize(st);
  return v;
}

static long long version_of(const char *market) {
  char sql[128];
  snprintf(sql, sizeof sql,
           "SELECT coalesce((SELECT version FROM gm_schema WHERE market = "
           "'%s'), 0)",
           market);
  return scalar(sql);
}

START_TEST(open_sets_wal_and_core_tables) {
  sqlite3_stmt *st = NULL;
  sqlite3_prepare_v2(gm__ledger_db(writer), "PRAGMA journal_mode", -1, &st,
                     NULL);
  ck_assert_int_eq(sqlite3_step(st), SQLITE_ROW);
  ck_assert_str_eq((const char *)sqlite3_column_text(st, 0), "wal");
  sqlite3_finalize(st);
  ck_assert_int_eq(scalar("PRAGMA foreign_keys"), 1);
  ck_assert_int_eq(scalar("PRAGMA synchronous"), 1); /* NORMAL */
  ck_assert_int_eq(scalar("SELECT count(*) FROM sqlite_master WHERE name IN "
                          "('gm_schema', 'gm_settled')"),
                   2);

  char err[512];
  gm__ledger *ro = gm__ledger_open(path, 1, err, sizeof err);
  ck_assert_msg(ro != NULL, "%s", err);
  ck_assert(sqlite3_db_readonly(gm__ledger_db(ro), "main") == 1);
  gm__ledger_close(&ro);
  ck_assert_ptr_null(ro);
  gm__ledger_close(&ro); /* idempotent */

  char *missing = gm_test_redis_path(srv, "missing.sqlite");
  ck_assert_ptr_null(gm__ledger_open(missing, 1, err, sizeof err));
  ck_assert_ptr_nonnull(strstr(err, "missing.sqlite"));
  ck_assert_ptr_nonnull(strstr(err, "start it first"));
  free(missing);
}
END_TEST

static const gm_migration three[] = {
    {1,
     "CREATE TABLE carbon_trade(id TEXT PRIMARY KEY, qty INTEGER NOT NULL);"},
    {2,
     "ALTER TABLE carbon_trade ADD COLUMN price INTEGER;"
     "CREATE TABLE carbon_note(t TEXT);"},
    {3, "INSERT INTO carbon_note VALUES('v3 ran');"},
};

START_TEST(migrations_apply_once_in_order) {
  char err[512] = "";
  ck_assert_int_eq(
      gm__ledger_migrate(writer, "carbon", three, 3, err, sizeof err), GM_OK);
  ck_assert_int_eq(version_of("carbon"), 3);
  ck_assert_int_eq(scalar("SELECT count(*) FROM carbon_note"), 1);
  /* Again: nothing runs (v3 would insert a second note). */
  ck_assert_int_eq(
      gm__ledger_migrate(writer, "carbon", three, 3, err, sizeof err), GM_OK);
  ck_assert_int_eq(scalar("SELECT count(*) FROM carbon_note"), 1);
  /* Another market has its own version. */
  ck_assert_int_eq(version_of("other"), 0);
  /* A later plugin version adds v4 only. */
  const gm_migration four[] = {
      three[0],
      three[1],
      three[2],
      {4, "INSERT INTO carbon_note VALUES('v4 ran');"}};
  ck_assert_int_eq(
      gm__ledger_migrate(writer, "carbon", four, 4, err, sizeof err), GM_OK);
  ck_assert_int_eq(version_of("carbon"), 4);
  ck_assert_int_eq(scalar("SELECT count(*) FROM carbon_note"), 2);
  /* A fresh connection sees the same recorded state. */
  gm__ledger_close(&writer);
  writer = gm__ledger_open(path, 0, err, sizeof err);
  ck_assert_int_eq(
      gm__ledger_migrate(writer, "carbon", four, 4, err, sizeof err), GM_OK);
  ck_assert_int_eq(scalar("SELECT count(*) FROM carbon_note"), 2);
}
END_TEST

START_TEST(failing_migration_keeps_earlier_ones) {
  const gm_migration bad[] = {
      {1, "CREATE TABLE procurement_a(x INTEGER);"},
      {2,
       "CREATE TABLE procurement_b(x INTEGER);"
       "INSERT INTO procurement_nope VALUES(1);"},
      {3, "CREATE TABLE procurement_c(x INTEGER);"},
  };
  char err[512] = "";
  ck_assert_int_eq(
      gm__ledger_migrate(writer, "procurement", bad, 3, err, sizeof err),
      GM_INTERNAL);
  ck_assert_msg(strstr(err, "procurement version 2") != NULL, "%s", err);
  ck_assert_msg(strstr(err, "no such table: procurement_nope") != NULL, "%s",
                err);
  ck_assert_int_eq(version_of("procurement"), 1);
  ck_assert_int_eq(scalar("SELECT count(*) FROM sqlite_master WHERE name = "
                          "'procurement_a'"),
                   1);
  /* Version 2 is rolled back whole; version 3 never ran. */
  ck_assert_int_eq(scalar("SELECT count(*) FROM sqlite_master WHERE name IN "
                          "('procurement_b', 'procurement_c')"),
                   0);
  /* Not in a transaction any more: the connection is usable. */
  ck_assert(sqlite3_get_autocommit(gm__ledger_db(writer)));

  const gm_migration unordered[] = {{2, "SELECT 1;"}, {1, "SELECT 1;"}};
  ck_assert_int_eq(
      gm__ledger_migrate(writer, "x", unordered, 2, err, sizeof err),
      GM_INVALID_ARGUMENT);
  ck_assert_ptr_nonnull(strstr(err, "increasing order"));
}
END_TEST

START_TEST(exec_binds_ints_text_null) {
  ck_assert_int_eq(
      sqlite3_exec(gm__ledger_db(writer),
                   "CREATE TABLE carbon_t(i INTEGER, s TEXT, n TEXT)", NULL,
                   NULL, NULL),
      SQLITE_OK);
  gm_ledger tx = {.ledger = writer, .market = "carbon"};
  const char *ins = "INSERT INTO carbon_t(i, s, n) VALUES(?1, ?2, ?3)";
  gm_param p[] = {GM_INT(INT64_MAX), GM_TEXT("héllo, 'world'"), GM_NULL};
  ck_assert_int_eq(gm__ledger_exec(&tx, ins, p, 3), GM_OK);
  gm_param q[] = {GM_INT(INT64_MIN), GM_TEXT(""), GM_TEXT("x")};
  /* The same text again uses the cached statement with new bindings. */
  for (int i = 0; i < 500; i++)
    ck_assert_int_eq(gm__ledger_exec(&tx, ins, q, 3), GM_OK);
  ck_assert_int_eq(scalar("SELECT count(*) FROM carbon_t"), 501);
  ck_assert_int_eq(scalar("SELECT i FROM carbon_t WHERE n IS NULL"), INT64_MAX);
  ck_assert_int_eq(scalar("SELECT count(*) FROM carbon_t WHERE s = 'héllo, "
                          "''world''' AND n IS NULL"),
                   1);
  ck_assert_int_eq(scalar("SELECT count(*) FROM carbon_t WHERE i = "
                          "-9223372036854775807 - 1 AND s = '' AND n = 'x'"),
                   500);

  /* Wrong parameter count, bad SQL, constraint: err says why. */
  ck_assert_int_eq(gm__ledger_exec(&tx, ins, p, 2), GM_INTERNAL);
  ck_assert_msg(strstr(tx.err, "3 parameters but 2") != NULL, "%s", tx.err);
  ck_assert_int_eq(
      gm__ledger_exec(&tx, "INSERT INTO carbon_nope VALUES(1)", NULL, 0),
      GM_INTERNAL);
  ck_assert_msg(strstr(tx.err, "no such table") != NULL, "%s", tx.err);
  ck_assert_int_eq(sqlite3_exec(gm__ledger_db(writer),
                                "CREATE TABLE carbon_u(k TEXT PRIMARY KEY)",
                                NULL, NULL, NULL),
                   SQLITE_OK);
  gm_param k[] = {GM_TEXT("dup")};
  ck_assert_int_eq(
      gm__ledger_exec(&tx, "INSERT INTO carbon_u VALUES(?1)", k, 1), GM_OK);
  ck_assert_int_eq(
      gm__ledger_exec(&tx, "INSERT INTO carbon_u VALUES(?1)", k, 1),
      GM_INTERNAL);
  ck_assert_msg(strstr(tx.err, "UNIQUE") != NULL, "%s", tx.err);
}
END_TEST

typedef struct rows {
  int n;                 /* rows seen */
  int stop_after;        /* 0: all */
  int64_t sum;           /* of column 0 */
  const char *last_text; /* column 1 of the last row */
  int saw_null;          /* column 2 was NULL once */
} rows;

static int on_row(void *arg, size_t ncols, const gm_param *cols) {
  rows *r = arg;
  ck_assert_uint_eq(ncols, 3);
  ck_assert_int_eq(cols[0].type, GM_PARAM_INT);
  ck_assert_int_eq(cols[1].type, GM_PARAM_TEXT);
  r->sum += cols[0].i;
  r->last_text = cols[1].s;
  if (cols[2].type == GM_PARAM_NULL) r->saw_null = 1;
  r->n++;
  return r->stop_after && r->n >= r->stop_after;
}

START_TEST(query_reads_and_refuses_writes) {
  ck_assert_int_eq(
      sqlite3_exec(gm__ledger_db(writer),
                   "CREATE TABLE q(i INTEGER, s TEXT, n TEXT);"
                   "INSERT INTO q VALUES(1, 'one', NULL), (2, 'two', 'x'),"
                   " (3, 'three', 'y')",
                   NULL, NULL, NULL),
      SQLITE_OK);
  char err[512];
  gm__ledger *reader = gm__ledger_open(path, 1, err, sizeof err);
  ck_assert_msg(reader != NULL, "%s", err);
  gm__arena *a = gm__arena_new();
  gm_call call = {.arena = a, .participant = "p", .reader = reader};

  rows r = {0};
  gm_param min[] = {GM_INT(1)};
  ck_assert_int_eq(gm__ledger_query(&call,
                                    "SELECT i, s, n FROM q WHERE i >= ?1 "
                                    "ORDER BY i",
                                    min, 1, on_row, &r),
                   GM_OK);
  ck_assert_int_eq(r.n, 3);
  ck_assert_int_eq(r.sum, 6);
  ck_assert_str_eq(r.last_text, "three");
  ck_assert(r.saw_null);

  rows early = {.stop_after = 2};
  ck_assert_int_eq(gm__ledger_query(&call,
                                    "SELECT i, s, n FROM q WHERE i >= ?1 "
                                    "ORDER BY i",
                                    min, 1, on_row, &early),
                   GM_OK);
  ck_assert_int_eq(early.n, 2);
  ck_assert_str_eq(early.last_text, "two"); /* copied: valid after the query */

  gm_call wcall = {.arena = a, .reader = reader};
  ck_assert_int_eq(
      gm__ledger_query(&wcall, "DELETE FROM q", NULL, 0, on_row, &r),
      GM_INVALID_ARGUMENT);
  ck_assert_ptr_nonnull(strstr(wcall.message, "read-only"));
  ck_assert_int_eq(scalar("SELECT count(*) FROM q"), 3);

  /* The reader sees what the writer commits later. */
  ck_assert_int_eq(
      sqlite3_exec(gm__ledger_db(writer),
                   "INSERT INTO q VALUES(4, 'four', NULL)", NULL, NULL, NULL),
      SQLITE_OK);
  rows after = {0};
  ck_assert_int_eq(gm__ledger_query(&call,
                                    "SELECT i, s, n FROM q WHERE i >= ?1 "
                                    "ORDER BY i",
                                    min, 1, on_row, &after),
                   GM_OK);
  ck_assert_int_eq(after.n, 4);

  gm_call bad = {.arena = a, .reader = reader};
  ck_assert_int_eq(gm__ledger_query(&bad, "SELEC x", NULL, 0, on_row, &r),
                   GM_INTERNAL);
  ck_assert_ptr_nonnull(strstr(bad.message, "syntax error"));
  gm__arena_destroy(&a);
  gm__ledger_close(&reader);
}
END_TEST

/* ---- statements that must not be half-run or reused while in use ---- */

START_TEST(exec_refuses_a_second_statement) {
  ck_assert_int_eq(
      sqlite3_exec(gm__ledger_db(writer), "CREATE TABLE carbon_two(i INTEGER)",
                   NULL, NULL, NULL),
      SQLITE_OK);
  gm_ledger tx = {.ledger = writer, .market = "carbon"};
  ck_assert_int_eq(gm__ledger_exec(&tx,
                                   "INSERT INTO carbon_two VALUES(1); "
                                   "INSERT INTO carbon_two VALUES(2)",
                                   NULL, 0),
                   GM_INTERNAL);
  ck_assert_msg(strstr(tx.err, "one statement per call") != NULL, "%s", tx.err);
  ck_assert_int_eq(scalar("SELECT count(*) FROM carbon_two"), 0);
  /* A trailing ';' is fine. */
  ck_assert_int_eq(
      gm__ledger_exec(&tx, "INSERT INTO carbon_two VALUES(3);", NULL, 0),
      GM_OK);
  ck_assert_int_eq(scalar("SELECT count(*) FROM carbon_two"), 1);
}
END_TEST

typedef struct nested {
  gm_call *call; /* to query again from inside a row */
  int outer;     /* outer rows seen */
  int inner;     /* inner rows seen, in all */
} nested;

static int inner_row(void *arg, size_t ncols, const gm_param *cols) {
  (void)ncols;
  (void)cols;
  ((nested *)arg)->inner++;
  return 0;
}

static int outer_row(void *arg, size_t ncols, const gm_param *cols) {
  (void)ncols;
  (void)cols;
  nested *n = arg;
  n->outer++;
  /* The same SQL again while the outer statement is still stepping. */
  ck_assert_int_eq(gm__ledger_query(n->call, "SELECT i FROM nq ORDER BY i",
                                    NULL, 0, inner_row, n),
                   GM_OK);
  return 0;
}

START_TEST(a_query_inside_a_row_callback_is_its_own) {
  ck_assert_int_eq(sqlite3_exec(gm__ledger_db(writer),
                                "CREATE TABLE nq(i INTEGER);"
                                "INSERT INTO nq VALUES(1), (2), (3)",
                                NULL, NULL, NULL),
                   SQLITE_OK);
  char err[512];
  gm__ledger *reader = gm__ledger_open(path, 1, err, sizeof err);
  ck_assert_msg(reader != NULL, "%s", err);
  gm__arena *a = gm__arena_new();
  gm_call call = {.arena = a, .participant = "p", .reader = reader};
  nested n = {.call = &call};
  ck_assert_int_eq(gm__ledger_query(&call, "SELECT i FROM nq ORDER BY i", NULL,
                                    0, outer_row, &n),
                   GM_OK);
  ck_assert_int_eq(n.outer, 3); /* not restarted by the inner query */
  ck_assert_int_eq(n.inner, 9);
  gm__arena_destroy(&a);
  gm__ledger_close(&reader);
}
END_TEST

/* A script run from a row callback is refused with the reason (it would
   hold the read transaction open while the worker runs other requests),
   and the query itself goes on. */
static int script_from_row(void *arg, size_t ncols, const gm_param *cols) {
  (void)ncols;
  (void)cols;
  gm_call *call = arg;
  const gm_value *v = NULL;
  ck_assert_int_eq(
      gm__script_run(call, "mkt", "any", "t", 0, NULL, 0, NULL, &v),
      GM_INTERNAL);
  ck_assert_ptr_nonnull(strstr(call->message, "inside a ledger_query row"));
  return 0;
}

START_TEST(script_run_inside_a_row_callback_is_refused) {
  ck_assert_int_eq(sqlite3_exec(gm__ledger_db(writer),
                                "CREATE TABLE sq(i INTEGER);"
                                "INSERT INTO sq VALUES(1), (2)",
                                NULL, NULL, NULL),
                   SQLITE_OK);
  char err[512];
  gm__ledger *reader = gm__ledger_open(path, 1, err, sizeof err);
  ck_assert_msg(reader != NULL, "%s", err);
  gm__arena *a = gm__arena_new();
  gm_call call = {.arena = a, .participant = "p", .reader = reader};
  ck_assert_int_eq(gm__ledger_query(&call, "SELECT i FROM sq", NULL, 0,
                                    script_from_row, &call),
                   GM_OK);
  ck_assert_uint_eq(call.in_query, 0);
  gm__arena_destroy(&a);
  gm__ledger_close(&reader);
}
END_TEST

/* ---- boundaries: each market reads and writes only its own tables ---- */

/* Tables of two markets and the broker's, made as the broker. */
static void two_markets(void) {
  ck_assert_int_eq(sqlite3_exec(gm__ledger_db(writer),
                                "CREATE TABLE carbon_x(i INTEGER);"
                                "CREATE TABLE procurement_y(i INTEGER "
                                "PRIMARY KEY AUTOINCREMENT);"
                                "INSERT INTO procurement_y VALUES(7)",
                                NULL, NULL, NULL),
                   SQLITE_OK);
}

/* Runs sql as market `m` in a settle transaction; expects a refusal whose
   message holds `why`. */
static void expect_exec_refused(const char *m, const char *sql,
                                const char *why) {
  gm_ledger tx = {.ledger = writer, .market = m};
  ck_assert_int_eq(gm__ledger_exec(&tx, sql, NULL, 0), GM_PERMISSION_DENIED);
  ck_assert_msg(strstr(tx.err, why) != NULL, "'%s' not in '%s'", why, tx.err);
  ck_assert_int_eq(tx.refused, 1);
}

START_TEST(exec_reaches_only_the_markets_tables) {
  two_markets();
  expect_exec_refused("carbon",
                      "INSERT INTO gm_settled(stream, id, kind, settled_ms) "
                      "VALUES('s', 'i', 'k', 0)",
                      "carbon may use only tables named carbon_*: "
                      "'gm_settled' belongs to the broker");
  expect_exec_refused("carbon", "DELETE FROM procurement_y",
                      "carbon may use only tables named carbon_*: "
                      "'procurement_y' is not one of them");
  /* Reading another's table inside a write is a read too. */
  expect_exec_refused("carbon",
                      "INSERT INTO carbon_x SELECT i FROM procurement_y",
                      "'procurement_y' is not one of them");
  /* Names compare without case, as SQLite's do. */
  expect_exec_refused("carbon", "DELETE FROM GM_SETTLED",
                      "'gm_settled' belongs to the broker");
  gm_ledger tx = {.ledger = writer, .market = "carbon"};
  ck_assert_int_eq(
      gm__ledger_exec(&tx, "INSERT INTO CARBON_X VALUES(1)", NULL, 0), GM_OK);
  ck_assert_int_eq(tx.refused, 0);
  /* Every market's AUTOINCREMENT counters: SQLite's to keep. */
  expect_exec_refused("carbon", "UPDATE sqlite_sequence SET seq = 0",
                      "'sqlite_sequence' is SQLite's own");
  expect_exec_refused("carbon", "ATTACH ':memory:' AS other",
                      "carbon may not attach or detach a database");
  expect_exec_refused("carbon", "BEGIN", "carbon may not BEGIN a transaction");
  expect_exec_refused("carbon", "SAVEPOINT s", "carbon may not BEGIN");
  expect_exec_refused("carbon", "PRAGMA user_version = 5",
                      "carbon may not run PRAGMA user_version = 5");
  expect_exec_refused("carbon", "ANALYZE", "carbon may not run ANALYZE");
  expect_exec_refused("carbon", "CREATE TABLE carbon_new(i INTEGER)",
                      "carbon may change the schema ('carbon_new') only in "
                      "its migrations");
  /* What was refused changed nothing; the broker's own rows ("gm") are not
     bounded. */
  ck_assert_int_eq(scalar("SELECT count(*) FROM procurement_y"), 1);
  ck_assert_int_eq(scalar("PRAGMA user_version"), 0);
  gm_ledger core = {.ledger = writer, .market = "gm"};
  ck_assert_int_eq(gm__ledger_exec(&core,
                                   "INSERT INTO gm_settled(stream, id, kind, "
                                   "settled_ms) VALUES('s', 'i', 'k', 0)",
                                   NULL, 0),
                   GM_OK);
  ck_assert_int_eq(scalar("SELECT count(*) FROM gm_settled"), 1);
}
END_TEST

/* SQLite authorizes at prepare time: a statement cached for the broker (or
   one market) must never be handed to another with the same text. */
START_TEST(cached_statements_are_not_shared_between_owners) {
  two_markets();
  const char *ins =
      "INSERT INTO gm_settled(stream, id, kind, settled_ms) VALUES(?1, 'i', "
      "'k', 0)";
  gm_ledger core = {.ledger = writer, .market = "gm"};
  gm_param p1[] = {GM_TEXT("a")};
  ck_assert_int_eq(gm__ledger_exec(&core, ins, p1, 1), GM_OK);
  gm_ledger tx = {.ledger = writer, .market = "carbon"};
  gm_param p2[] = {GM_TEXT("b")};
  ck_assert_int_eq(gm__ledger_exec(&tx, ins, p2, 1), GM_PERMISSION_DENIED);
  gm_param p3[] = {GM_TEXT("c")};
  ck_assert_int_eq(gm__ledger_exec(&core, ins, p3, 1), GM_OK);
  ck_assert_int_eq(scalar("SELECT count(*) FROM gm_settled"), 2);
  /* One market's statement, the same text from another. */
  const char *own = "INSERT INTO carbon_x VALUES(1)";
  ck_assert_int_eq(gm__ledger_exec(&tx, own, NULL, 0), GM_OK);
  gm_ledger other = {.ledger = writer, .market = "procurement"};
  ck_assert_int_eq(gm__ledger_exec(&other, own, NULL, 0), GM_PERMISSION_DENIED);
  ck_assert_msg(strstr(other.err,
                       "procurement may use only tables named "
                       "procurement_*: 'carbon_x'") != NULL,
                "%s", other.err);
  ck_assert_int_eq(scalar("SELECT count(*) FROM carbon_x"), 1);
}
END_TEST

/* A worker's read-only connection to the test's ledger. */
static gm__ledger *reader_open(void) {
  char err[512];
  gm__ledger *reader = gm__ledger_open(path, 1, err, sizeof err);
  ck_assert_msg(reader != NULL, "%s", err);
  return reader;
}

static int count_row(void *arg, size_t ncols, const gm_param *cols) {
  if (ncols == 1) *(int64_t *)arg = cols[0].i;
  return 0;
}

START_TEST(query_reads_only_the_calling_markets_tables) {
  two_markets();
  gm__ledger *reader = reader_open();
  gm__arena *a = gm__arena_new();
  gm_market carbon = {.name = "carbon"};
  gm_call call = {.arena = a, .reader = reader, .market = &carbon};
  int64_t n = -1;
  const char *theirs = "SELECT count(*) FROM procurement_y";
  ck_assert_int_eq(gm__ledger_query(&call, theirs, NULL, 0, count_row, &n),
                   GM_PERMISSION_DENIED);
  ck_assert_msg(strstr(call.message,
                       "ledger query refused: carbon may use "
                       "only tables named carbon_*: "
                       "'procurement_y' is not one of them"),
                "%s", call.message);
  ck_assert_int_eq(n, -1);
  ck_assert_int_eq(gm__ledger_query(&call, "SELECT count(*) FROM gm_settled",
                                    NULL, 0, count_row, &n),
                   GM_PERMISSION_DENIED);
  ck_assert_ptr_nonnull(strstr(call.message, "belongs to the broker"));
  /* Its own tables, SQLite's schema and JSON table functions are fine. */
  ck_assert_int_eq(gm__ledger_query(&call,
                                    "SELECT count(*) FROM carbon_x, "
                                    "json_each('[1, 2]')",
                                    NULL, 0, count_row, &n),
                   GM_OK);
  ck_assert_int_eq(n, 0);
  ck_assert_int_eq(gm__ledger_query(&call,
                                    "SELECT count(*) FROM sqlite_schema WHERE "
                                    "name = 'procurement_y'",
                                    NULL, 0, count_row, &n),
                   GM_OK);
  ck_assert_int_eq(n, 1);
  /* The broker's own queries (core methods) read anything, the same text
     included. */
  gm_call core = {.arena = a, .reader = reader};
  ck_assert_int_eq(gm__ledger_query(&core, theirs, NULL, 0, count_row, &n),
                   GM_OK);
  ck_assert_int_eq(n, 1);
  gm__arena_destroy(&a);
  gm__ledger_close(&reader);
}
END_TEST

/*
 * [ledger] scan_check: a read whose plan walks a whole table is refused
 * with the plan and what to do, whoever runs it and however its text was
 * built; the same read by an index, a scan its text says is meant, a
 * constant row and a table function pass.  In a settle transaction it
 * counts as a refusal (the callback cannot go on as if it had run), and a
 * migration is never checked.  Off, the same scan runs.
 */
START_TEST(scan_check_refuses_reads_of_whole_tables) {
  ck_assert_int_eq(sqlite3_exec(gm__ledger_db(writer),
                                "CREATE TABLE carbon_s(k TEXT PRIMARY KEY, "
                                "v INTEGER);"
                                "INSERT INTO carbon_s VALUES('a', 1)",
                                NULL, NULL, NULL),
                   SQLITE_OK);
  gm__ledger *reader = reader_open();
  gm__arena *a = gm__arena_new();
  gm_market carbon = {.name = "carbon"};
  gm_call call = {.arena = a, .reader = reader, .market = &carbon};
  int64_t n = -1;
  char err[512];
  const char *scan = "SELECT v FROM carbon_s WHERE v = 1";
  gm__ledger_set_scan_check(1);
  ck_assert_int_eq(gm__ledger_query(&call, scan, NULL, 0, count_row, &n),
                   GM_INTERNAL);
  ck_assert_msg(strstr(call.message,
                       "ledger query refused: its plan reads every row "
                       "(SCAN carbon_s)") &&
                    strstr(call.message, "give it an index it can search") &&
                    strstr(call.message, "/* scan: ... */"),
                "%s", call.message);
  ck_assert_int_eq(n, -1);
  /* Core's own reads are held to it too. */
  gm_call core = {.arena = a, .reader = reader};
  ck_assert_int_eq(gm__ledger_query(&core, "SELECT count(*) FROM gm_settled",
                                    NULL, 0, count_row, &n),
                   GM_INTERNAL);
  static const char *const pass[] = {
      "SELECT v FROM carbon_s WHERE k = 'a'",
      "SELECT v FROM carbon_s WHERE v = 1 /* scan: one row */",
      "SELECT 1",
      "SELECT count(*) FROM json_each('[1, 2]')",
      /* What the statement builds itself is not a table: a materialized
         CTE and a subquery's co-routine, each read by the key. */
      "WITH x AS MATERIALIZED (SELECT v FROM carbon_s WHERE k = 'a') "
      "SELECT v FROM x",
      "SELECT v FROM (SELECT DISTINCT v FROM carbon_s WHERE k = 'a') AS y",
  };
  for (size_t i = 0; i < sizeof pass / sizeof *pass; i++)
    ck_assert_msg(
        gm__ledger_query(&call, pass[i], NULL, 0, count_row, &n) == GM_OK,
        "%s: %s", pass[i], call.message);
  /* ... but their own reads are checked. */
  ck_assert_int_eq(
      gm__ledger_query(&call,
                       "WITH x AS MATERIALIZED (SELECT v FROM carbon_s "
                       "WHERE v = 1) SELECT v FROM x",
                       NULL, 0, count_row, &n),
      GM_INTERNAL);
  ck_assert_msg(strstr(call.message, "(SCAN carbon_s)"), "%s", call.message);
  /* The comment counts only as a comment: inside a string, an identifier
     or another comment it exempts nothing. */
  static const char *const quoted[] = {
      "SELECT v FROM carbon_s WHERE k != '/* scan: one row */'",
      "SELECT v FROM carbon_s WHERE k != 'it''s /* scan: x */'",
      "SELECT v AS \"/* scan: x */\" FROM carbon_s",
      "SELECT v AS [/* scan: x */] FROM carbon_s",
      "SELECT v FROM carbon_s -- /* scan: x */\n",
      "SELECT v FROM carbon_s /* not here: /* scan: x */",
  };
  for (size_t i = 0; i < sizeof quoted / sizeof *quoted; i++) {
    ck_assert_msg(gm__ledger_query(&call, quoted[i], NULL, 0, count_row, &n) ==
                      GM_INTERNAL,
                  "%s", quoted[i]);
    ck_assert_msg(strstr(call.message, "(SCAN carbon_s)"), "%s: %s", quoted[i],
                  call.message);
  }
  ck_assert_int_eq(gm__ledger_query(&call,
                                    "SELECT v FROM carbon_s WHERE k != "
                                    "'it''s' /* scan: after a literal */",
                                    NULL, 0, count_row, &n),
                   GM_OK);
  /* A settle callback's scanning statement fails its entry. */
  gm_ledger tx = {.ledger = writer, .market = "carbon", .arena = a};
  ck_assert_int_eq(
      gm__ledger_exec(&tx, "UPDATE carbon_s SET v = 2 WHERE v = 1", NULL, 0),
      GM_PERMISSION_DENIED);
  ck_assert_msg(strstr(tx.err, "SCAN carbon_s"), "%s", tx.err);
  ck_assert_int_eq(tx.refused, 1);
  tx.refused = 0;
  ck_assert_int_eq(gm__ledger_tx_query(&tx, scan, NULL, 0, count_row, &n),
                   GM_PERMISSION_DENIED);
  ck_assert_int_eq(tx.refused, 1);
  ck_assert_int_eq(scalar("SELECT v FROM carbon_s"), 1);
  /* A migration may scan (it runs once). */
  static const gm_migration fill[] = {
      {1, "UPDATE carbon_s SET v = v + 10 WHERE v = 1"}};
  ck_assert_int_eq(
      gm__ledger_migrate(writer, "carbon", fill, 1, err, sizeof err), GM_OK);
  ck_assert_int_eq(scalar("SELECT v FROM carbon_s"), 11);
  /* Off (the default), the same scan runs: the cached refusal is not
     kept. */
  gm__ledger_set_scan_check(0);
  ck_assert_int_eq(
      gm__ledger_query(&call, "SELECT v FROM carbon_s WHERE v = 11", NULL, 0,
                       count_row, &n),
      GM_OK);
  ck_assert_int_eq(n, 11);
  gm__arena_destroy(&a);
  gm__ledger_close(&reader);
}
END_TEST

typedef struct seen {
  int64_t n;        /* column 0 of the last row */
  const char *text; /* column 1, copied to the transaction's arena */
} seen;

static int seen_row(void *arg, size_t ncols, const gm_param *cols) {
  seen *s = arg;
  s->n = cols[0].i;
  if (ncols > 1) s->text = cols[1].s;
  return 0;
}

START_TEST(tx_query_sees_its_own_writes) {
  two_markets();
  ck_assert_int_eq(sqlite3_exec(gm__ledger_db(writer),
                                "CREATE TABLE carbon_t(i INTEGER, s TEXT)",
                                NULL, NULL, NULL),
                   SQLITE_OK);
  char err[512];
  gm__ledger *reader = gm__ledger_open(path, 1, err, sizeof err);
  ck_assert_msg(reader != NULL, "%s", err);
  gm__arena *a = gm__arena_new();
  ck_assert_int_eq(
      sqlite3_exec(gm__ledger_db(writer), "BEGIN IMMEDIATE", NULL, NULL, NULL),
      SQLITE_OK);
  gm_ledger tx = {.ledger = writer, .market = "carbon", .arena = a};
  gm_param row[] = {GM_INT(41), GM_TEXT("first")};
  ck_assert_int_eq(
      gm__ledger_exec(&tx, "INSERT INTO carbon_t VALUES(?1, ?2)", row, 2),
      GM_OK);
  seen s = {-1, NULL};
  ck_assert_int_eq(gm__ledger_tx_query(&tx,
                                       "SELECT i + 1, s FROM carbon_t WHERE "
                                       "i = ?1",
                                       row, 1, seen_row, &s),
                   GM_OK);
  ck_assert_int_eq(s.n, 42);
  ck_assert_str_eq(s.text, "first");
  /* Not committed: another connection does not see it yet. */
  gm_call rc = {.arena = a, .reader = reader};
  int64_t n = -1;
  ck_assert_int_eq(gm__ledger_query(&rc, "SELECT count(*) FROM carbon_t", NULL,
                                    0, count_row, &n),
                   GM_OK);
  ck_assert_int_eq(n, 0);
  /* The same boundaries as ledger_exec, and reads only. */
  ck_assert_int_eq(gm__ledger_tx_query(&tx, "SELECT count(*) FROM gm_settled",
                                       NULL, 0, count_row, &n),
                   GM_PERMISSION_DENIED);
  ck_assert_ptr_nonnull(strstr(tx.err, "'gm_settled' belongs to the broker"));
  ck_assert_int_eq(tx.refused, 1);
  ck_assert_int_eq(
      gm__ledger_tx_query(&tx, "DELETE FROM carbon_t", NULL, 0, count_row, &n),
      GM_INVALID_ARGUMENT);
  ck_assert_ptr_nonnull(strstr(tx.err, "read-only"));
  ck_assert_int_eq(
      sqlite3_exec(gm__ledger_db(writer), "COMMIT", NULL, NULL, NULL),
      SQLITE_OK);
  ck_assert_int_eq(gm__ledger_query(&rc, "SELECT count(*) FROM carbon_t", NULL,
                                    0, count_row, &n),
                   GM_OK);
  ck_assert_int_eq(n, 1);
  gm__arena_destroy(&a);
  gm__ledger_close(&reader);
}
END_TEST

/* Migrates `m` with one migration; expects a refusal naming `why`, and
   nothing of it left behind. */
static void expect_migration_refused(const char *m, const char *sql,
                                     const char *why) {
  const gm_migration one[] = {{1, sql}};
  char err[512] = "";
  ck_assert_int_eq(gm__ledger_migrate(writer, m, one, 1, err, sizeof err),
                   GM_PERMISSION_DENIED);
  ck_assert_msg(strstr(err, why) != NULL, "'%s' not in '%s'", why, err);
  ck_assert_msg(strstr(err, "fix that migration's SQL") != NULL, "%s", err);
  ck_assert_int_eq(version_of(m), 0);
  ck_assert(sqlite3_get_autocommit(gm__ledger_db(writer)));
}

START_TEST(migrations_stay_inside_the_prefix) {
  two_markets();
  long long objects = scalar("SELECT count(*) FROM sqlite_schema");
  expect_migration_refused("carbon", "CREATE TABLE oops(x INTEGER)",
                           "carbon may use only tables named carbon_*: 'oops' "
                           "is not one of them");
  expect_migration_refused(
      "carbon", "CREATE INDEX carbon_i ON gm_settled(kind)",
      "carbon may use only tables named carbon_*: 'gm_settled' belongs to "
      "the broker");
  expect_migration_refused("carbon",
                           "CREATE TRIGGER carbon_t AFTER INSERT ON "
                           "procurement_y BEGIN SELECT 1; END",
                           "'procurement_y' is not one of them");
  expect_migration_refused("carbon",
                           "CREATE TABLE carbon_a(x INTEGER);"
                           "ALTER TABLE carbon_a RENAME TO gm_a",
                           "'gm_a' belongs to the broker");
  expect_migration_refused(
      "carbon", "CREATE TABLE carbon_f(s TEXT REFERENCES gm_settled(stream))",
      "'gm_settled' belongs to the broker (table carbon_f references it "
      "with a foreign key)");
  expect_migration_refused(
      "carbon", "CREATE VIEW carbon_v AS SELECT * FROM procurement_y",
      "'procurement_y' is not one of them (view carbon_v reads it)");
  expect_migration_refused("carbon", "DROP TABLE procurement_y",
                           "'procurement_y' is not one of them");
  expect_migration_refused("carbon", "PRAGMA journal_mode = DELETE",
                           "carbon may not run PRAGMA journal_mode");
  /* SQLite's AUTOINCREMENT counters are one table for every market: a
     migration may change its own tables' rows only. */
  expect_migration_refused("carbon",
                           "UPDATE sqlite_sequence SET seq = 100 WHERE name = "
                           "'procurement_y'",
                           "another market's AUTOINCREMENT counter "
                           "('procurement_y')");
  expect_migration_refused("carbon", "DELETE FROM sqlite_sequence",
                           "another market's AUTOINCREMENT counter "
                           "('procurement_y')");
  ck_assert_int_eq(
      scalar("SELECT seq FROM sqlite_sequence WHERE name = 'procurement_y'"),
      7);
  ck_assert_int_eq(scalar("SELECT count(*) FROM sqlite_schema"), objects);
  /* What a market does within its prefix is fine: AUTOINCREMENT (SQLite
     keeps sqlite_sequence), indexes, views and triggers of its own, a
     full-text table (its shadow tables share the prefix), renames and
     drops. */
  const gm_migration fine[] = {
      {1,
       "CREATE TABLE carbon_a(id INTEGER PRIMARY KEY AUTOINCREMENT, "
       "k TEXT UNIQUE, x INTEGER);"
       "CREATE INDEX carbon_a_x ON carbon_a(x);"
       "CREATE VIEW carbon_v AS SELECT x FROM carbon_a;"
       "CREATE TABLE carbon_log(x INTEGER);"
       "CREATE TRIGGER carbon_t AFTER INSERT ON carbon_a BEGIN "
       "INSERT INTO carbon_log VALUES(new.x); END;"
       "CREATE VIRTUAL TABLE carbon_search USING fts5(body);"
       "INSERT INTO carbon_a(k, x) VALUES('one', 1);"},
      {2,
       "ALTER TABLE carbon_a RENAME TO carbon_b;"
       "ALTER TABLE carbon_b ADD COLUMN y INTEGER;"
       "DROP VIEW carbon_v; DROP TABLE carbon_log;"},
      {3, "DROP TABLE carbon_b"},
  };
  char err[512] = "";
  ck_assert_msg(
      gm__ledger_migrate(writer, "carbon", fine, 3, err, sizeof err) == GM_OK,
      "%s", err);
  ck_assert_int_eq(version_of("carbon"), 3);
}
END_TEST

/*
 * A migration meets a failing disk at each of its writes in turn: it is
 * refused with SQLite's reason, leaves its version and tables as they
 * were (all or nothing), and applies whole once the disk is back.
 */
START_TEST(a_migration_failing_at_any_write_is_all_or_nothing) {
  const gm_migration two[] = {
      {1,
       "CREATE TABLE carbon_a(x INTEGER); WITH RECURSIVE n(i) AS (SELECT 1 "
       "UNION ALL SELECT i + 1 FROM n WHERE i < 2000) INSERT INTO carbon_a "
       "SELECT i FROM n;"},
      {2, "CREATE TABLE carbon_b(y TEXT); INSERT INTO carbon_b VALUES('v2');"},
  };
  char err[512];
  gm_fault_vfs_install();
  for (int k = 1;; k++) {
    /* A fresh file and connection (through the failing VFS) each time. */
    gm__ledger_close(&writer);
    remove(path);
    char *wal = gm_test_redis_path(srv, "ledger.sqlite-wal");
    remove(wal);
    free(wal);
    writer = gm__ledger_open(path, 0, err, sizeof err);
    ck_assert_msg(writer != NULL, "%s", err);
    gm_fault_arm(GM_FAULT_WRITE, k, k % 2 ? SQLITE_IOERR_WRITE : SQLITE_FULL,
                 1);
    gm_status st =
        gm__ledger_migrate(writer, "carbon", two, 2, err, sizeof err);
    int fired = gm_fault_fired();
    gm_fault_reset();
    long long v = version_of("carbon");
    if (!fired) { /* past the last write: it all went through */
      ck_assert_msg(st == GM_OK, "k=%d: %s", k, err);
      ck_assert_int_eq(v, 2);
      ck_assert_msg(k > 2, "the migration made only %d writes", k - 1);
      break;
    }
    if (st == GM_OK) {
      /* The failed write was retried by SQLite or was not needed. */
      ck_assert_int_eq(v, 2);
    } else {
      ck_assert_msg(strstr(err, "disk") || strstr(err, "I/O"), "%s", err);
      /* The storage failed, not the SQL: the message says so and what to
         do, not to fix the migration. */
      ck_assert_msg(!strstr(err, "fix that migration's SQL"), "%s", err);
      ck_assert_msg(strstr(err, "free disk space"), "%s", err);
      ck_assert_msg(strstr(err, "nothing of") || strstr(err, "recording"), "%s",
                    err);
      ck_assert_msg(v == 0 || v == 1, "version %lld after a failure", v);
      /* Whatever version is recorded, its tables are whole. */
      if (v >= 1)
        ck_assert_int_eq(scalar("SELECT count(*) FROM carbon_a"), 2000);
      ck_assert_int_eq(
          scalar("SELECT count(*) FROM sqlite_master WHERE name = 'carbon_b'"),
          0);
      ck_assert(sqlite3_get_autocommit(gm__ledger_db(writer)));
    }
    /* The disk is back: the next start applies what is missing. */
    ck_assert_int_eq(
        gm__ledger_migrate(writer, "carbon", two, 2, err, sizeof err), GM_OK);
    ck_assert_int_eq(version_of("carbon"), 2);
    ck_assert_int_eq(scalar("SELECT count(*) FROM carbon_a"), 2000);
    ck_assert_int_eq(scalar("SELECT count(*) FROM carbon_b"), 1);
    ck_assert_msg(k < 500, "no end to the migration's writes");
  }
}
END_TEST

/* Another writer's transaction, held for hold_ms on its own connection. */
typedef struct holder {
  const char *path;
  int hold_ms;
  sqlite3 *db;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int locked;
} holder;

static void *hold_lock(void *arg) {
  holder *h = arg;
  ck_assert_int_eq(sqlite3_open(h->path, &h->db), SQLITE_OK);
  int rc = sqlite3_exec(h->db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
  pthread_mutex_lock(&h->mu);
  h->locked = rc == SQLITE_OK ? 1 : -1;
  pthread_cond_signal(&h->cv);
  pthread_mutex_unlock(&h->mu);
  struct timespec d = {h->hold_ms / 1000, (long)(h->hold_ms % 1000) * 1000000};
  nanosleep(&d, NULL);
  sqlite3_exec(h->db, "ROLLBACK", NULL, NULL, NULL);
  sqlite3_close(h->db);
  return NULL;
}

static void hold_start(holder *h, pthread_t *t, int hold_ms) {
  *h = (holder){.path = path, .hold_ms = hold_ms};
  pthread_mutex_init(&h->mu, NULL);
  pthread_cond_init(&h->cv, NULL);
  ck_assert_int_eq(pthread_create(t, NULL, hold_lock, h), 0);
  pthread_mutex_lock(&h->mu);
  while (!h->locked) pthread_cond_wait(&h->cv, &h->mu);
  pthread_mutex_unlock(&h->mu);
  ck_assert_int_eq(h->locked, 1);
}

/* Another writer holds the ledger's write lock past the busy timeout
   (another gmd migrating a large ledger, which takes minutes): a gmd
   started meanwhile waits for it and migrates after, instead of refusing
   the plugin (gmd would serve on without that market); past its wait it
   applies nothing and says why and what to do, not "database is locked"
   alone. */
START_TEST(a_migration_behind_another_writer_waits_for_it) {
  const gm_migration one[] = {{1, "CREATE TABLE carbon_a(x INTEGER);"}};
  char err[512];
  holder h;
  pthread_t t;
  int saved = gm__ledger_migrate_wait_ms;

  /* Held 7 s: past one busy timeout (5 s), within the wait. */
  gm__ledger_migrate_wait_ms = 60000;
  hold_start(&h, &t, 7000);
  gm_status st = gm__ledger_migrate(writer, "carbon", one, 1, err, sizeof err);
  pthread_join(t, NULL);
  ck_assert_msg(st == GM_OK, "%s", err);
  ck_assert_int_eq(version_of("carbon"), 1);

  /* Held past the wait (none here: one busy timeout). */
  const gm_migration two[] = {{1, "CREATE TABLE carbon_a(x INTEGER);"},
                              {2, "CREATE TABLE carbon_b(x INTEGER);"}};
  gm__ledger_migrate_wait_ms = 0;
  hold_start(&h, &t, 7000);
  st = gm__ledger_migrate(writer, "carbon", two, 2, err, sizeof err);
  pthread_join(t, NULL);
  gm__ledger_migrate_wait_ms = saved;
  ck_assert_int_eq(st, GM_UNAVAILABLE);
  ck_assert_msg(strstr(err, "another gmd migrating it"), "%s", err);
  ck_assert_msg(strstr(err, "nothing was applied"), "%s", err);
  ck_assert_int_eq(version_of("carbon"), 1);
  /* Once it is done, the start goes through. */
  ck_assert_int_eq(
      gm__ledger_migrate(writer, "carbon", two, 2, err, sizeof err), GM_OK);
  ck_assert_int_eq(version_of("carbon"), 2);
}
END_TEST

int main(void) {
  Suite *s = suite_create("storage_ledger");
  TCase *tc = tcase_create("ledger");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_add_test(tc, open_sets_wal_and_core_tables);
  tcase_add_test(tc, migrations_apply_once_in_order);
  tcase_add_test(tc, failing_migration_keeps_earlier_ones);
  tcase_add_test(tc, exec_binds_ints_text_null);
  tcase_add_test(tc, query_reads_and_refuses_writes);
  tcase_add_test(tc, exec_refuses_a_second_statement);
  tcase_add_test(tc, a_query_inside_a_row_callback_is_its_own);
  tcase_add_test(tc, script_run_inside_a_row_callback_is_refused);
  tcase_add_test(tc, exec_reaches_only_the_markets_tables);
  tcase_add_test(tc, cached_statements_are_not_shared_between_owners);
  tcase_add_test(tc, query_reads_only_the_calling_markets_tables);
  tcase_add_test(tc, tx_query_sees_its_own_writes);
  tcase_add_test(tc, scan_check_refuses_reads_of_whole_tables);
  tcase_add_test(tc, migrations_stay_inside_the_prefix);
  tcase_add_test(tc, a_migration_failing_at_any_write_is_all_or_nothing);
  tcase_add_test(tc, a_migration_behind_another_writer_waits_for_it);
  suite_add_tcase(s, tc);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
