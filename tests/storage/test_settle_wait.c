/*
 * The settler under [redis] cluster_wait_replicas on a Redis Cluster (3
 * masters, one replica each), driven without its thread: a master whose
 * replica stopped has its entries held back, and the other masters'
 * streams go on settling meanwhile; once the replica is back, the held
 * entries settle, each once.
 */
#include <check.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster.h"
#include "cluster_failover.h"
#include "cluster_fixture.h"
#include "ledger.h"
#include "redis.h"
#include "settle.h"

#define WAIT_MS 200

static gm_test_cluster *cl;
static char *path;

static gm_status settle_row(gm_market *m, gm_ledger *tx,
                            const gm_outbox_entry *e) {
  (void)m;
  gm_param p[] = {GM_TEXT(e->stream), GM_TEXT(e->id)};
  return gm__ledger_exec(tx, "INSERT INTO held_rows(stream, id) VALUES(?1, ?2)",
                         p, 2);
}

static gm_settle_fn lookup(void *arg, const char *market, gm_market **m) {
  (void)arg;
  *m = NULL;
  return strcmp(market, "held") == 0 ? settle_row : NULL;
}

/* The node serving key. */
static int owner(const char *key) {
  return gm_test_cluster_owner(cl, gm__cluster_keyslot(key, strlen(key)));
}

static void on_owner(const char *key, const char *fmt, const char *arg) {
  redisContext *c = gm_test_cluster_connect(cl, owner(key));
  redisReply *r = redisCommand(c, fmt, key, arg);
  ck_assert_ptr_nonnull(r);
  ck_assert_int_ne(r->type, REDIS_REPLY_ERROR);
  freeReplyObject(r);
  redisFree(c);
}

/* Rows the ledger holds for stream. */
static long long rows(const char *stream) {
  sqlite3 *db = NULL;
  ck_assert_int_eq(sqlite3_open(path, &db), SQLITE_OK);
  sqlite3_stmt *st = NULL;
  ck_assert_int_eq(sqlite3_prepare_v2(db,
                                      "SELECT count(*) FROM held_rows WHERE "
                                      "stream = ?1",
                                      -1, &st, NULL),
                   SQLITE_OK);
  sqlite3_bind_text(st, 1, stream, -1, SQLITE_STATIC);
  ck_assert_int_eq(sqlite3_step(st), SQLITE_ROW);
  long long n = sqlite3_column_int64(st, 0);
  sqlite3_finalize(st);
  sqlite3_close(db);
  return n;
}

/* The replica node of master node m. */
static int replica_of(int m) {
  for (int n = 0; n < gm_test_cluster_size(cl); n++) {
    redisContext *c = gm_test_cluster_connect(cl, n);
    redisReply *r = redisCommand(c, "ROLE");
    int mine = r && r->type == REDIS_REPLY_ARRAY && r->elements >= 3 &&
               strcmp(r->element[0]->str, "slave") == 0 &&
               r->element[2]->integer == gm_test_cluster_port(cl, m);
    freeReplyObject(r);
    redisFree(c);
    if (mine) return n;
  }
  ck_abort_msg("master %d has no replica", m);
  return -1;
}

START_TEST(other_masters_settle_while_one_lacks_its_replica) {
  cl = gm_test_cluster_start(3, 1, 5000);
  /* Every replica streaming first: a replica listed online before its
     master streams to it acknowledges nothing yet, and would hold b's
     entries too (seen once under ASan: b never settled). */
  gm_test_cluster_wait_streaming(cl);
  path = gm_test_redis_path(gm_test_cluster_home(cl), "ledger.sqlite");
  char err[512];
  gm__ledger *l = gm__ledger_open(path, 0, err, sizeof err);
  ck_assert_msg(l != NULL, "%s", err);
  const gm_migration mig[] = {
      {1, "CREATE TABLE held_rows(stream TEXT, id TEXT)"}};
  ck_assert_int_eq(gm__ledger_migrate(l, "held", mig, 1, err, sizeof err),
                   GM_OK);
  gm__ledger_close(&l);
  /* Two streams on different masters. */
  char a[64], b[64];
  snprintf(a, sizeof a, "gm:{held:s0}:outbox");
  int i = 1;
  for (; i < 100; i++) {
    snprintf(b, sizeof b, "gm:{held:s%d}:outbox", i);
    if (owner(b) != owner(a)) break;
  }
  ck_assert_int_lt(i, 100);
  on_owner("gm:outboxes", "SADD %s %s", a);
  on_owner("gm:outboxes", "SADD %s %s", b);
  gm__scripts_set_wait_replicas(WAIT_MS);
  gm__settle_config cfg = {.redis = {.cluster = gm_test_cluster_seeds(cl)},
                           .ledger_path = path,
                           .consumer = "held",
                           .batch_size = 64,
                           .block_ms = 10,
                           .claim_idle_ms = 600000,
                           .prune_idle_ms = 1200000,
                           .lookup = lookup,
                           .no_thread = 1};
  gm__settler *s = gm__settler_start(&cfg, err, sizeof err);
  ck_assert_msg(s != NULL, "%s", err);
  gm__settler_drain_once(s); /* the groups made */

  pid_t stopped = gm_test_cluster_pid(cl, replica_of(owner(a)));
  ck_assert_int_eq(kill(stopped, SIGSTOP), 0);
  on_owner(a, "XADD %s * kind row n %s", "1");
  for (int r = 0; r < 3; r++) gm__settler_drain_once(s);
  ck_assert_int_eq(rows(a), 0); /* held: no replica has it */

  /* The other master's entries settle while a's are held. */
  on_owner(b, "XADD %s * kind row n %s", "2");
  for (int r = 0; r < 10 && rows(b) == 0; r++) gm__settler_drain_once(s);
  ck_assert_int_eq(rows(b), 1);
  ck_assert_int_eq(rows(a), 0);

  /* The replica back, a's entries settle, each once, and new ones too. */
  ck_assert_int_eq(kill(stopped, SIGCONT), 0);
  on_owner(a, "XADD %s * kind row n %s", "3");
  on_owner(b, "XADD %s * kind row n %s", "4");
  for (int r = 0; r < 50 && (rows(a) < 2 || rows(b) < 2); r++)
    gm__settler_drain_once(s);
  ck_assert_int_eq(rows(a), 2);
  ck_assert_int_eq(rows(b), 2);
  gm__settler_stop(&s);
  gm__scripts_set_wait_replicas(0);
  free(path);
  gm_test_cluster_stop(&cl);
}
END_TEST

int main(void) {
  Suite *su = suite_create("settle_wait");
  TCase *tc = tcase_create("core");
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, other_masters_settle_while_one_lacks_its_replica);
  suite_add_tcase(su, tc);
  SRunner *sr = srunner_create(su);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
