/*
 * What a market may name and touch, through a real gmd and redis-server:
 * the roles it declares (and those of the other loaded markets), and only
 * its own ledger tables.
 */
#include <check.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gmd_fixture.h"
#include "greenmarket.pb-c.h"
#include "redis_fixture.h"
#include "testmkt.pb-c.h"

static gm_test_redis *redis;
static gm_test_gmd *gmd;
static gm_test_conn *conn;

static void start(const char *extra) {
  if (!redis) redis = gm_test_redis_start();
  gmd = gm_test_gmd_start(redis, TEST_PLUGIN_DIR, extra);
  conn = gm_test_conn_new(gm_test_gmd_endpoint(gmd), NULL, NULL, NULL);
}

static void stop(void) {
  gm_test_conn_destroy(&conn);
  gm_test_gmd_stop(&gmd);
}

static void teardown(void) {
  stop();
  gm_test_redis_stop(&redis);
}

/* Expects `status` and `text` in the reply message; frees the reply. */
static void expect_error(Gm__Reply *r, Gm__Status status, const char *text) {
  ck_assert_ptr_nonnull(r);
  ck_assert_msg(r->status == status, "status %d (%s), want %d", r->status,
                r->message, status);
  ck_assert_msg(strstr(r->message, text) != NULL, "'%s' not in '%s'", text,
                r->message);
  gm__reply__free_unpacked(r, NULL);
}

static void expect_ok(Gm__Reply *r) {
  ck_assert_ptr_nonnull(r);
  ck_assert_msg(r->status == GM__STATUS__OK, "status %d: %s", r->status,
                r->message);
  gm__reply__free_unpacked(r, NULL);
}

/* Calls market.method (an echo of the test markets) as `as`. */
static Gm__Reply *echo(const char *as, const char *market, const char *method) {
  Gm__Testmkt__EchoRequest e = GM__TESTMKT__ECHO_REQUEST__INIT;
  e.text = "hi";
  return gm_test_call(conn, as, market, method, NULL, &e.base);
}

static Gm__Reply *register_roles(const char *id, char **roles, size_t n,
                                 const char *key) {
  Gm__Participant p = GM__PARTICIPANT__INIT;
  p.id = (char *)id;
  p.roles = roles;
  p.n_roles = n;
  Gm__RegisterRequest reg = GM__REGISTER_REQUEST__INIT;
  reg.participant = &p;
  return gm_test_call(conn, "root", "gm", "register", key, &reg.base);
}

static long long ledger_count(const char *sql) {
  return gm_test_gmd_ledger_count(gmd, sql);
}

/* Waits (up to 15 s) until `sql` counts `want`. */
static long long wait_count(const char *sql, long long want) {
  long long n = -1;
  for (int i = 0; i < 1500 && n != want; i++) {
    n = ledger_count(sql);
    if (n != want) gm_test_sleep_ms(10);
  }
  return n;
}

/* ---- roles come from the markets ---- */

#define ALL_TEST_MARKETS                                           \
  "[plugins]\nload = testmkt, alpha, beta, gamma, delta, oldsdk, " \
  "unprefixed\n"

/*
 * The broker knows admin and the roles the loaded markets declare: a
 * market naming a role nobody declares is refused after every plugin has
 * loaded, with the markets naming its roles; a market may name another's
 * role; gm markets lists each market's roles; register refuses an unknown
 * role listing the known ones.
 */
START_TEST(roles_are_the_loaded_markets_roles) {
  start(ALL_TEST_MARKETS);
  Gm__MarketsRequest mreq = GM__MARKETS_REQUEST__INIT;
  Gm__Reply *r = gm_test_call(conn, NULL, "gm", "markets", NULL, &mreq.base);
  ck_assert_int_eq(r->status, GM__STATUS__OK);
  Gm__MarketsReply *m =
      gm__markets_reply__unpack(NULL, r->body.len, r->body.data);
  gm__reply__free_unpacked(r, NULL);
  char names[256] = "";
  for (size_t i = 0; i < m->n_markets; i++)
    snprintf(names + strlen(names), sizeof names - strlen(names), "%s%s",
             i ? "," : "", m->markets[i]->name);
  ck_assert_str_eq(names, "gm,testmkt,alpha,beta,oldsdk");
  Gm__MarketInfo *alpha = m->markets[2];
  ck_assert_uint_eq(alpha->n_roles, 2);
  ck_assert_str_eq(alpha->roles[1]->name, "buyer");
  ck_assert_str_eq(alpha->roles[1]->summary,
                   "buys alpha goods (alpha's own meaning)");
  gm__markets_reply__free_unpacked(m, NULL);

  ck_assert(gm_test_gmd_log_has(gmd,
                                "gm_gamma.so: refused: method x needs "
                                "role 'wizard', which no loaded market "
                                "declares"));
  ck_assert(gm_test_gmd_log_has(gmd,
                                "gm_delta.so: refused: method y needs "
                                "role 'steward', which only the refused "
                                "market gamma declared"));
  ck_assert(gm_test_gmd_log_has(gmd,
                                "unprefixed may use only tables named "
                                "unprefixed_*: 'oops' is not one of "
                                "them"));
  ck_assert_int_eq(
      ledger_count("SELECT count(*) FROM sqlite_schema WHERE name = 'oops'"),
      0);
  expect_error(echo(NULL, "gamma", "x"), GM__STATUS__NOT_FOUND,
               "no market 'gamma'");
  expect_error(echo(NULL, "gamma", "x"), GM__STATUS__NOT_FOUND,
               "a plugin gmd refused at start is not among them, and the "
               "gmd log says why");

  /* Unknown (or refused markets') roles are refused with the list. */
  char *steward[] = {"steward"};
  r = register_roles("carol", steward, 1, "r-1");
  ck_assert_int_eq(r->status, GM__STATUS__INVALID_ARGUMENT);
  ck_assert_msg(
      strstr(r->message, "'steward' is no role on this broker") &&
          strstr(r->message, "\n  admin (gm): ") &&
          strstr(r->message,
                 "\n  auditor (alpha): reads every record of the alpha "
                 "market") &&
          strstr(r->message,
                 "\n  buyer (alpha: buys alpha goods (alpha's own "
                 "meaning); oldsdk: named by its methods") &&
          strstr(r->message, "testmkt: bumps the test counter)") &&
          strstr(r->message, "\n  lender (beta): lends money"),
      "%s", r->message);
  gm__reply__free_unpacked(r, NULL);

  /* beta's method names alpha's role and its own. */
  char *lender[] = {"lender"};
  expect_ok(register_roles("carol", lender, 1, "r-2"));
  expect_ok(echo("carol", "beta", "lend"));
  expect_error(echo("carol", "alpha", "look"), GM__STATUS__PERMISSION_DENIED,
               "alpha look needs role auditor");
  char *auditor[] = {"auditor"};
  expect_ok(register_roles("dave", auditor, 1, "r-3"));
  expect_ok(echo("dave", "beta", "lend"));
  expect_ok(echo("dave", "alpha", "look"));
  /* An old plugin's roles, declared by naming them, are roles too. */
  char *old[] = {"old_role"};
  expect_ok(register_roles("olga", old, 1, "r-4"));
  expect_ok(echo("olga", "oldsdk", "z"));
  /* Unregistered in development mode: every role there is. */
  expect_ok(echo("zed", "alpha", "look"));
  expect_ok(echo("zed", "beta", "lend"));
}
END_TEST

/*
 * A participant registered with a role whose market is no longer loaded
 * keeps it in the registry; the broker ignores it (never a crash, never a
 * lock-out) until a market declaring it is loaded again.
 */
START_TEST(roles_of_an_unloaded_market_are_kept_and_ignored) {
  start(ALL_TEST_MARKETS);
  char *both[] = {"auditor", "buyer"};
  expect_ok(register_roles("erin", both, 2, "e-1"));
  char *admin[] = {"admin", "auditor"};
  expect_ok(register_roles("boss", admin, 2, "e-2"));
  stop();
  start("[plugins]\nload = testmkt\n");
  /* erin still trades with buyer; auditor is gone from the broker. */
  Gm__Testmkt__BumpRequest b = GM__TESTMKT__BUMP_REQUEST__INIT;
  b.note = "still here";
  expect_ok(gm_test_call(conn, "erin", "testmkt", "bump", "b-1", &b.base));
  Gm__WhoamiRequest w = GM__WHOAMI_REQUEST__INIT;
  Gm__Reply *r = gm_test_call(conn, "erin", "gm", "whoami", NULL, &w.base);
  ck_assert_int_eq(r->status, GM__STATUS__OK);
  Gm__WhoamiReply *who =
      gm__whoami_reply__unpack(NULL, r->body.len, r->body.data);
  ck_assert_uint_eq(who->participant->n_roles, 2); /* the registry's record */
  ck_assert_str_eq(who->participant->roles[0], "auditor");
  gm__whoami_reply__free_unpacked(who, NULL);
  gm__reply__free_unpacked(r, NULL);
  /* An admin stays an admin. */
  char *buyer[] = {"buyer"};
  Gm__Participant p = GM__PARTICIPANT__INIT;
  p.id = "gus";
  p.roles = buyer;
  p.n_roles = 1;
  Gm__RegisterRequest reg = GM__REGISTER_REQUEST__INIT;
  reg.participant = &p;
  expect_ok(gm_test_call(conn, "boss", "gm", "register", "g-1", &reg.base));
  /* Giving the gone role again is refused until its market is back. */
  char *auditor[] = {"auditor"};
  expect_error(register_roles("erin", auditor, 1, "e-3"),
               GM__STATUS__INVALID_ARGUMENT,
               "'auditor' is no role on this broker");
  stop();
  start(ALL_TEST_MARKETS);
  expect_ok(echo("erin", "alpha", "look"));
}
END_TEST

/* ---- each market reads and writes only its own tables ---- */

static void probe(const char *what, const char *key) {
  Gm__Testmkt__ProbeRequest req = GM__TESTMKT__PROBE_REQUEST__INIT;
  req.what = (char *)what;
  expect_ok(gm_test_call(conn, "alice", "testmkt", "probe", key, &req.base));
}

static void bump(const char *key) {
  Gm__Testmkt__BumpRequest b = GM__TESTMKT__BUMP_REQUEST__INIT;
  b.note = "next to a probe";
  expect_ok(gm_test_call(conn, "alice", "testmkt", "bump", key, &b.base));
}

/*
 * A settle callback writing outside its tables: the statement is refused
 * with the rule, the batch does not commit (the bumps around it neither),
 * it is retried, and after five failures the entry is set aside in
 * gm_dead_letter with the reason, so the rest settles.  Nothing is forged,
 * nothing lost.
 */
static void settle_refused(const char *what, const char *reason) {
  start("[plugins]\nload = testmkt\n");
  bump("b-1");
  probe(what, "p-1");
  bump("b-2");
  char sql[512];
  snprintf(sql, sizeof sql,
           "SELECT count(*) FROM gm_dead_letter WHERE market = 'testmkt' AND "
           "kind = 'probe' AND failures = 5 AND instr(error, '%s') > 0",
           reason);
  ck_assert_int_eq(wait_count(sql, 1), 1);
  ck_assert_int_eq(wait_count("SELECT count(*) FROM testmkt_bumps", 2), 2);
  ck_assert_int_eq(
      ledger_count("SELECT count(*) FROM gm_settled WHERE kind = 'forged'"), 0);
  ck_assert_int_eq(ledger_count("SELECT count(*) FROM gm_settled"), 3);
  ck_assert_int_eq(ledger_count("SELECT count(*) FROM gm_dead_letter_field "
                                "WHERE name = 'what'"),
                   1);
  ck_assert(gm_test_gmd_log_has(gmd, "settle callback failed"));
}

START_TEST(settling_into_gm_settled_is_refused) {
  settle_refused("settled",
                 "testmkt may use only tables named testmkt_*: "
                 "''gm_settled'' belongs to the broker");
  ck_assert(gm_test_gmd_log_has(gmd,
                                "testmkt may use only tables named "
                                "testmkt_*: 'gm_settled' belongs to the "
                                "broker"));
}
END_TEST

START_TEST(settling_into_another_markets_table_is_refused) {
  /* Another market's table, made as that market would have. */
  redis = gm_test_redis_start();
  char *path = gm_test_redis_path(redis, "ledger.sqlite");
  sqlite3 *db;
  ck_assert_int_eq(sqlite3_open(path, &db), SQLITE_OK);
  ck_assert_int_eq(sqlite3_exec(db, "CREATE TABLE othermkt_rows(x INTEGER)",
                                NULL, NULL, NULL),
                   SQLITE_OK);
  sqlite3_close(db);
  free(path);
  settle_refused("other",
                 "testmkt may use only tables named testmkt_*: "
                 "''othermkt_rows'' is not one of them");
  ck_assert_int_eq(ledger_count("SELECT count(*) FROM othermkt_rows"), 0);
}
END_TEST

START_TEST(reading_outside_its_tables_is_refused) {
  redis = gm_test_redis_start();
  char *path = gm_test_redis_path(redis, "ledger.sqlite");
  sqlite3 *db;
  ck_assert_int_eq(sqlite3_open(path, &db), SQLITE_OK);
  ck_assert_int_eq(sqlite3_exec(db,
                                "CREATE TABLE othermkt_rows(x INTEGER);"
                                "INSERT INTO othermkt_rows VALUES(1)",
                                NULL, NULL, NULL),
                   SQLITE_OK);
  sqlite3_close(db);
  free(path);
  start("[plugins]\nload = testmkt\n");
  Gm__Testmkt__ProbeRequest req = GM__TESTMKT__PROBE_REQUEST__INIT;
  req.what = "other";
  expect_error(gm_test_call(conn, "alice", "testmkt", "peek", NULL, &req.base),
               GM__STATUS__PERMISSION_DENIED,
               "ledger query refused: testmkt may use only tables named "
               "testmkt_*: 'othermkt_rows' is not one of them");
  req.what = "settled";
  expect_error(gm_test_call(conn, "alice", "testmkt", "peek", NULL, &req.base),
               GM__STATUS__PERMISSION_DENIED,
               "'gm_settled' belongs to the broker");
  ck_assert(gm_test_gmd_log_has(gmd,
                                "ledger_query refused: testmkt may use "
                                "only tables named testmkt_*"));
  /* Its own tables it reads. */
  req.what = "own";
  expect_ok(gm_test_call(conn, "alice", "testmkt", "peek", NULL, &req.base));
  /* Inside a settle transaction: its own write read back, the broker's
     table refused. */
  probe("txread", "t-1");
  ck_assert_int_eq(
      wait_count("SELECT count(*) FROM testmkt_seen WHERE n = 1", 1), 1);
  probe("txread_settled", "t-2");
  ck_assert_int_eq(wait_count("SELECT count(*) FROM gm_dead_letter WHERE "
                              "instr(error, 'belongs to the broker') > 0",
                              1),
                   1);
  ck_assert(gm_test_gmd_log_has(gmd,
                                "ledger_tx_query refused: testmkt may "
                                "use only tables named testmkt_*"));
}
END_TEST

int main(void) {
  Suite *s = suite_create("bounds");
  TCase *tc = tcase_create("roles");
  tcase_add_checked_fixture(tc, NULL, teardown);
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, roles_are_the_loaded_markets_roles);
  tcase_add_test(tc, roles_of_an_unloaded_market_are_kept_and_ignored);
  suite_add_tcase(s, tc);
  TCase *tl = tcase_create("ledger");
  tcase_add_checked_fixture(tl, NULL, teardown);
  tcase_set_timeout(tl, 120);
  tcase_add_test(tl, settling_into_gm_settled_is_refused);
  tcase_add_test(tl, settling_into_another_markets_table_is_refused);
  tcase_add_test(tl, reading_outside_its_tables_is_refused);
  suite_add_tcase(s, tl);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
