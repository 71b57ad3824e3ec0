/*
 * Restarts.  gmd stopped with referrals in every state and started again
 * after a contact deadline, then after pick deadlines, fell due while it
 * was down: each fires once at start-up and nothing else changes.  With
 * failure injection, gmd killed between a transition's referral step and
 * its index steps: a retry with the same idempotency key, or else the
 * referral's sync deadline, brings the bank queues up to date.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "harness.h"

/* Stops gmd (SIGTERM to the pid the fixture started), appends `conf` to
   its config and starts it again. */
static void restart_with(const char *conf) {
  gm_test_conn_destroy(&ft_conn);
  ck_assert_int_eq(kill(gm_test_gmd_pid(ft_gmd), SIGTERM), 0);
  int status = gm_test_gmd_wait_exit(ft_gmd, 10000);
  ck_assert_msg(status >= 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0,
                "gmd did not stop cleanly (%d)", status);
  FILE *f = fopen(gm_test_gmd_conf(ft_gmd), "a");
  fputs(conf, f);
  fclose(f);
  gm_test_gmd_restart(ft_gmd);
  ft_conn = gm_test_conn_new(gm_test_gmd_endpoint(ft_gmd), NULL, NULL, NULL);
}

static void world(void) {
  ft_bank("icbc", "icbc1");
  ft_bank("abc", "abc1");
  ft_product("icbc-p", "icbc", "3", "", 1, 100000000000, 1, 120, 80);
  ft_product("abc-p", "abc", "3", "", 1, 100000000000, 1, 120, 80);
  ft_enterprise("acme", "330502");
}

/* The world, and referral id under review with icbc, its decision
   deadline in the ledger. */
static void reviewed(char id[32]) {
  world();
  ft_copy_id(id, ft_refer("acme", 500000000, 36, 0));
  ft_free(ft_claim("icbc1", id));
  ft_free(ft_pick("acme", id, "icbc"));
  ft_free(ft_contact("icbc1", id));
  ck_assert_int_eq(ft_ledger_wait("SELECT count(*) FROM finance_referrals"
                                  " WHERE decision_due_ms > 0",
                                  1),
                   1);
}

static int count(const char *sql) {
  return (int)ft_ledger_int(sql);
}

START_TEST(every_state_survives_and_deadlines_due_while_down_fire_once) {
  enum { J, A, B, C, D, E, F, G, H, I, N };
  char id[N][32];
  ft_start(NULL, ft_at("2026-02-24", 10, 0));
  world();
  /* J expires before the first restart (due the end of Monday 2 March). */
  ft_copy_id(id[J], ft_refer("acme", 500000000, 36, 0));
  ft_clock(ft_at("2026-03-03", 10, 0));
  ck_assert_int_eq(ft_wait_state(id[J], GM__FINANCE__STATE__STATE_EXPIRED),
                   GM__FINANCE__STATE__STATE_EXPIRED);
  for (int k = A; k < N; k++)
    ft_copy_id(id[k], ft_refer("acme", 500000000, 36, 0));
  ft_free(ft_claim("icbc1", id[B]));
  for (int k = C; k <= H; k++) {
    ft_free(ft_claim("icbc1", id[k]));
    ft_free(ft_claim("abc1", id[k]));
    ft_free(ft_pick("acme", id[k], "icbc"));
  }
  for (int k = D; k <= H; k++) ft_free(ft_contact("icbc1", id[k]));
  Gm__Finance__TextRequest t = GM__FINANCE__TEXT_REQUEST__INIT;
  t.id = id[E];
  t.text = "the EIA approval, please";
  ft_free(ft_ok("icbc1", "referral.request_info", &t.base));
  ft_free(ft_approve("icbc1", id[F], 500000000, 345, 36));
  ft_free(ft_approve("icbc1", id[G], 500000000, 345, 36));
  ft_free(ft_fund("icbc1", id[G], 500000000, NULL));
  Gm__Finance__DeclineRequest d = GM__FINANCE__DECLINE_REQUEST__INIT;
  d.id = id[H];
  d.reason = GM__FINANCE__DECLINE_REASON__DECLINE_CREDIT;
  d.text = "rating below our floor";
  ft_free(ft_ok("icbc1", "referral.decline", &d.base));
  t.id = id[I];
  t.text = "no longer needed";
  ft_free(ft_ok("acme", "referral.withdraw", &t.base));
  static const int want[N] = {10, 1, 2, 3, 4, 5, 6, 7, 8, 9};
  char v[N][16];
  for (int k = 0; k < N; k++) {
    ck_assert_int_eq(atoi(ft_redis_field(id[k], "st")), want[k]);
    snprintf(v[k], 16, "%s", ft_redis_field(id[k], "v"));
  }
  ck_assert_int_eq(ft_ledger_wait("SELECT count(*) FROM finance_transitions",
                                  2 + 9 + 1 + 3 * 6 + 5 + 1 + 2 + 1 + 1 + 1),
                   2 + 9 + 1 + 3 * 6 + 5 + 1 + 2 + 1 + 1 + 1);

  /* Down over C's contact deadline (Tuesday 10 March 10:00). */
  char conf[128];
  snprintf(conf, sizeof conf, "[testing]\nclock_start_ms = %lld\n",
           (long long)ft_at("2026-03-10", 12, 0));
  restart_with(conf);
  ck_assert_int_eq(ft_wait_state(id[C], GM__FINANCE__STATE__STATE_OPEN),
                   GM__FINANCE__STATE__STATE_OPEN);
  ck_assert_int_eq(ft_ledger_wait("SELECT count(*) FROM finance_breaches", 1),
                   1);
  ft_nap(500);
  ck_assert_int_eq(count("SELECT count(*) FROM finance_breaches"), 1);
  ck_assert_int_eq(count("SELECT count(*) FROM finance_transitions WHERE"
                         " transition = 'return'"),
                   1);
  ck_assert_str_eq(ft_redis_field(id[C], "rnd"), "2");
  ck_assert(ft_wait_relation("abc", id[C], "open"));
  ck_assert(ft_wait_relation("icbc", id[C], NULL));
  for (int k = 0; k < N; k++)
    if (k != C) {
      ck_assert_int_eq(atoi(ft_redis_field(id[k], "st")), want[k]);
      ck_assert_str_eq(ft_redis_field(id[k], "v"), v[k]);
    }

  /* Down over A's and B's pick deadline (the end of Tuesday 10 March). */
  snprintf(conf, sizeof conf, "[testing]\nclock_start_ms = %lld\n",
           (long long)ft_at("2026-03-11", 9, 0));
  restart_with(conf);
  ck_assert_int_eq(ft_wait_state(id[A], GM__FINANCE__STATE__STATE_EXPIRED),
                   GM__FINANCE__STATE__STATE_EXPIRED);
  ck_assert_int_eq(ft_wait_state(id[B], GM__FINANCE__STATE__STATE_EXPIRED),
                   GM__FINANCE__STATE__STATE_EXPIRED);
  ck_assert_int_eq(ft_ledger_wait("SELECT count(*) FROM finance_transitions"
                                  " WHERE transition = 'expire'",
                                  3),
                   3);
  ft_nap(500);
  ck_assert_int_eq(count("SELECT count(*) FROM finance_transitions WHERE"
                         " transition = 'expire'"),
                   3);
  ck_assert_int_eq(count("SELECT count(*) FROM finance_transitions WHERE"
                         " transition = 'expire' AND referral = 'R00000002'"),
                   1);
  /* C went back to the pool on the 10th: its new deadline is later. */
  ck_assert_str_eq(ft_redis_field(id[C], "st"), "1");
  for (int k = D; k < N; k++) {
    ck_assert_int_eq(atoi(ft_redis_field(id[k], "st")), want[k]);
    ck_assert_str_eq(ft_redis_field(id[k], "v"), v[k]);
  }
  ck_assert(ft_wait_relation("icbc", id[A], NULL));
  ck_assert(ft_wait_relation("icbc", id[B], NULL));
  ck_assert(ft_wait_relation("icbc", id[D], "held"));
  ck_assert_int_eq(count("SELECT count(*) FROM finance_loans"), 1);
  ft_stop();
}
END_TEST

/* A decision deadline that fell due while gmd was down fires once at
   start-up: the miss recorded against the bank, the referral back in the
   pool. */
START_TEST(a_decision_deadline_due_while_down_fires_once) {
  char id[32], conf[128];
  int64_t t0 = ft_at("2026-03-02", 10, 0);
  ft_start(NULL, t0);
  world();
  ft_copy_id(id, ft_refer("acme", 500000000, 36, 0));
  ft_free(ft_claim("icbc1", id));
  ft_free(ft_pick("acme", id, "icbc"));
  ft_free(ft_contact("icbc1", id));
  snprintf(conf, sizeof conf, "[testing]\nclock_start_ms = %lld\n",
           (long long)(t0 + 31 * GM_FINANCE_DAY_MS));
  restart_with(conf);
  ck_assert_int_eq(ft_wait_state(id, GM__FINANCE__STATE__STATE_OPEN),
                   GM__FINANCE__STATE__STATE_OPEN);
  ck_assert_int_eq(ft_ledger_wait("SELECT count(*) FROM finance_breaches"
                                  " WHERE kind = 'decision' AND bank = 'icbc'",
                                  1),
                   1);
  ft_nap(500);
  ck_assert_int_eq(count("SELECT count(*) FROM finance_breaches"), 1);
  ck_assert_int_eq(count("SELECT count(*) FROM finance_transitions WHERE"
                         " transition = 'return'"),
                   1);
  ck_assert(ft_wait_relation("abc", id, "open"));
  ft_stop();
}
END_TEST

/*
 * An upgrade: a referral under review whose contact an older release made
 * has no decision deadline (here its field, its deadline and the ledger's
 * column taken out by hand).  The decision sweep (every archive_sweep_s)
 * gives it one, decision_days from when it found it; a restart does not
 * give it a second.
 */
START_TEST(a_review_without_a_decision_deadline_gets_one_from_the_sweep) {
  char id[32], conf[128];
  int64_t t0 = ft_at("2026-03-02", 10, 0), day = GM_FINANCE_DAY_MS;
  ft_start("archive_sweep_s = 1", t0);
  reviewed(id);
  redisContext *c = gm_test_redis_connect(ft_redis);
  ck_assert_int_eq(
      gm_test_redis_int(c, "ZREM gm:{finance:%s}:dl decision|%s", id, id), 1);
  ck_assert_int_eq(gm_test_redis_int(c, "HDEL gm:{finance:%s}:r ddue", id), 1);
  redisFree(c);
  /* Ten days on, the ledger shows it as an older release left it. */
  ft_clock(t0 + 10 * day);
  ft_ledger_exec("UPDATE finance_referrals SET decision_due_ms = NULL");
  char want[24];
  snprintf(want, sizeof want, "%lld", (long long)(t0 + 40 * day));
  for (int i = 0; i < 500 && strcmp(ft_redis_field(id, "ddue"), want); i++)
    ft_nap(20);
  ck_assert_str_eq(ft_redis_field(id, "ddue"), want);
  ck_assert_int_eq(ft_ledger_wait("SELECT decision_due_ms FROM"
                                  " finance_referrals",
                                  t0 + 40 * day),
                   t0 + 40 * day);
  Gm__Finance__Referral *r = ft_get("acme", id);
  ck_assert_int_eq(r->decision_due_ms, t0 + 40 * day);
  ft_free(r);
  /* Not due on day 39, after a restart; due on day 40. */
  snprintf(conf, sizeof conf, "[testing]\nclock_start_ms = %lld\n",
           (long long)(t0 + 39 * day));
  restart_with(conf);
  ft_nap(1500);
  ck_assert_str_eq(ft_redis_field(id, "st"), "4");
  ck_assert_str_eq(ft_redis_field(id, "ddue"), want);
  ft_clock(t0 + 40 * day);
  ck_assert_int_eq(ft_wait_state(id, GM__FINANCE__STATE__STATE_OPEN),
                   GM__FINANCE__STATE__STATE_OPEN);
  ck_assert_int_eq(ft_ledger_wait("SELECT count(*) FROM finance_breaches"
                                  " WHERE kind = 'decision'",
                                  1),
                   1);
  ft_stop();
}
END_TEST

/*
 * Redis lost its data (here the referral's record deleted by hand): the
 * ledger still has the referral under review without a decision deadline,
 * so the sweep (every second here) finds it each pass.  It warns once,
 * saying what to do, not on every pass.
 */
START_TEST(a_review_gone_from_redis_is_warned_about_once) {
  char id[32];
  int64_t t0 = ft_at("2026-03-02", 10, 0);
  ft_start("archive_sweep_s = 1", t0);
  reviewed(id);
  redisContext *c = gm_test_redis_connect(ft_redis);
  ck_assert_int_eq(gm_test_redis_int(c, "DEL gm:{finance:%s}:r", id), 1);
  redisFree(c);
  ft_ledger_exec("UPDATE finance_referrals SET decision_due_ms = NULL");
  char said[96];
  snprintf(said, sizeof said, "decision sweep: referral %s is under review",
           id);
  for (int i = 0; i < 500 && !gm_test_gmd_log_has(ft_gmd, said); i++)
    ft_nap(20);
  ck_assert_msg(gm_test_gmd_log_has(ft_gmd, "Redis lost its data") &&
                    gm_test_gmd_log_has(ft_gmd, "docs/operations.md, Restore"),
                "no warning in %s", gm_test_gmd_log(ft_gmd));
  /* Three more passes: still once (before 2026-12-05, once a pass). */
  ft_nap(3500);
  ck_assert_int_eq(gm_test_gmd_log_count(ft_gmd, said), 1);
  ck_assert_int_eq(
      gm_test_gmd_log_count(ft_gmd, "was not given a decision deadline"), 0);
  ft_stop();
}
END_TEST

/* A field of a stream entry's flat field list (after its kind), or NULL. */
static const char *entry_field(const redisReply *f, const char *name) {
  for (size_t k = 2; k + 1 < f->elements; k += 2)
    if (!strcmp(f->element[k]->str, name)) return f->element[k + 1]->str;
  return NULL;
}

/*
 * A rolling upgrade: a settler from before the decision deadline (its
 * breach INSERT below, verbatim) would record a missed decision as a
 * missed contact.  The entry carries its due where that settler does not
 * look, so it would write a due of 0, which the ledger refuses (migration
 * 6's trigger): that settler retries it and sets it aside for a replay,
 * and this build's settler records it as a missed decision.
 */
START_TEST(an_older_settler_cannot_record_a_missed_decision_as_a_contact) {
  char id[32];
  int64_t t0 = ft_at("2026-03-02", 10, 0), day = GM_FINANCE_DAY_MS;
  ft_start(NULL, t0);
  reviewed(id);
  /* Nothing settles now: the breach entry stays in the outbox. */
  restart_with("[settle]\nsettle = never\n");
  ft_clock(t0 + 30 * day + 1000);
  ck_assert_int_eq(ft_wait_state(id, GM__FINANCE__STATE__STATE_OPEN),
                   GM__FINANCE__STATE__STATE_OPEN);
  redisContext *c = gm_test_redis_connect(ft_redis);
  redisReply *x = gm_test_redis_cmd(c, "XRANGE gm:{finance:%s}:outbox - +", id);
  ck_assert_int_eq(x->type, REDIS_REPLY_ARRAY);
  const redisReply *breach = NULL;
  for (size_t i = 0; i < x->elements; i++) {
    const redisReply *f = x->element[i]->element[1];
    if (f->elements >= 2 && !strcmp(f->element[1]->str, "breach")) breach = f;
  }
  ck_assert_msg(breach, "no breach entry in the outbox");
  ck_assert_str_eq(entry_field(breach, "kind"), "decision");
  const char *cdue = entry_field(breach, "cdue");
  sqlite3 *db;
  sqlite3_stmt *st;
  ck_assert_int_eq(sqlite3_open(gm_test_gmd_ledger(ft_gmd), &db), SQLITE_OK);
  sqlite3_busy_timeout(db, 5000);
  ck_assert_int_eq(
      sqlite3_prepare_v2(
          db,
          "INSERT OR IGNORE INTO finance_breaches (referral, round, bank,"
          " picked_ms, due_ms, recorded_ms) VALUES (?1,?2,?3,?4,?5,?6)",
          -1, &st, NULL),
      SQLITE_OK);
  sqlite3_bind_text(st, 1, entry_field(breach, "id"), -1, SQLITE_TRANSIENT);
  sqlite3_bind_int64(st, 2, strtoll(entry_field(breach, "rnd"), NULL, 10));
  sqlite3_bind_text(st, 3, entry_field(breach, "bank"), -1, SQLITE_TRANSIENT);
  sqlite3_bind_int64(st, 4, strtoll(entry_field(breach, "pk"), NULL, 10));
  sqlite3_bind_int64(st, 5, cdue ? strtoll(cdue, NULL, 10) : 0);
  sqlite3_bind_int64(st, 6, strtoll(entry_field(breach, "t"), NULL, 10));
  int rc = sqlite3_step(st);
  ck_assert_msg(rc == SQLITE_CONSTRAINT &&
                    strstr(sqlite3_errmsg(db), "replay it (gm admin replay)"),
                "the old settler's insert: %d %s", rc, sqlite3_errmsg(db));
  sqlite3_finalize(st);
  sqlite3_close(db);
  freeReplyObject(x);
  redisFree(c);
  ck_assert_int_eq(count("SELECT count(*) FROM finance_breaches"), 0);
  /* This build's settler records it as it was. */
  restart_with("[settle]\nsettle = auto\n");
  ck_assert_int_eq(ft_ledger_wait("SELECT count(*) FROM finance_breaches"
                                  " WHERE kind = 'decision'",
                                  1),
                   1);
  ck_assert_int_eq(ft_ledger_int("SELECT due_ms FROM finance_breaches"),
                   t0 + 30 * day);
  ft_stop();
}
END_TEST

#ifdef GM_FAILURE_INJECTION
/* gmd dies after the claim's referral step: the claim is in Redis, the
   bank's queue still says "open". */
static void claim_and_die(const char *id, const char *key) {
  Gm__Finance__ClaimRequest c = GM__FINANCE__CLAIM_REQUEST__INIT;
  c.id = (char *)id;
  Gm__Reply *r =
      gm_test_call(ft_conn, "icbc1", "finance", "referral.claim", key, &c.base);
  ck_assert_ptr_null(r);
  ck_assert_int_ge(gm_test_gmd_wait_exit(ft_gmd, 10000), 0);
  gm_test_conn_destroy(&ft_conn);
  ck_assert_str_eq(ft_redis_field(id, "st"), "2");
  FILE *f = fopen(gm_test_gmd_conf(ft_gmd), "a");
  fputs("[market.finance]\ntest_kill_before_index = 0\n", f);
  fclose(f);
  gm_test_gmd_restart(ft_gmd);
  ft_conn = gm_test_conn_new(gm_test_gmd_endpoint(ft_gmd), NULL, NULL, NULL);
  ck_assert_str_eq(ft_relation("icbc", id), "open");
}

START_TEST(a_retry_finishes_what_a_killed_broker_left) {
  ft_start("test_kill_before_index = 0", ft_at(FT_MONDAY, 10, 0));
  world();
  char id[32];
  ft_copy_id(id, ft_refer("acme", 500000000, 36, 0));
  FILE *f = fopen(gm_test_gmd_conf(ft_gmd), "a");
  fputs("test_kill_before_index = 1\n", f);
  fclose(f);
  restart_with("");
  claim_and_die(id, "claim-once");
  /* The same key again: the claim step replays, the rest runs. */
  Gm__Finance__ClaimRequest c = GM__FINANCE__CLAIM_REQUEST__INIT;
  c.id = id;
  Gm__Reply *r = gm_test_call(ft_conn, "icbc1", "finance", "referral.claim",
                              "claim-once", &c.base);
  ck_assert_msg(r && r->status == 0, "%s", r ? r->message : "no reply");
  gm__reply__free_unpacked(r, NULL);
  ck_assert_str_eq(ft_relation("icbc", id), "claimed");
  ck_assert_str_eq(ft_redis_field(id, "v"), "2"); /* claimed once */
  redisContext *rc = gm_test_redis_connect(ft_redis);
  ck_assert_int_eq(gm_test_redis_int(rc, "ZCARD gm:{finance:%s}:dl", id),
                   1); /* pick only: the sync deadline is cancelled */
  redisFree(rc);
  ck_assert_int_eq(ft_ledger_wait("SELECT count(*) FROM finance_claims", 1), 1);
  ft_stop();
}
END_TEST

START_TEST(the_sync_deadline_finishes_what_nobody_retried) {
  ft_start("test_kill_before_index = 0\nsync_ms = 2000",
           ft_at(FT_MONDAY, 10, 0));
  world();
  char id[32];
  ft_copy_id(id, ft_refer("acme", 500000000, 36, 0));
  FILE *f = fopen(gm_test_gmd_conf(ft_gmd), "a");
  fputs("test_kill_before_index = 1\n", f);
  fclose(f);
  restart_with("");
  claim_and_die(id, "claim-lost");
  /* Nobody retries: 2 s later the sync deadline writes the queues. */
  ft_clock(ft_at(FT_MONDAY, 10, 0) + 2000);
  ck_assert(ft_wait_relation("icbc", id, "claimed"));
  ck_assert(ft_wait_relation("abc", id, "open"));
  redisContext *rc = gm_test_redis_connect(ft_redis);
  for (int i = 0; i < 500; i++)
    if (gm_test_redis_int(rc, "ZCARD gm:{finance:%s}:dl", id) == 1) break;
  ck_assert_int_eq(gm_test_redis_int(rc, "ZCARD gm:{finance:%s}:dl", id), 1);
  redisFree(rc);
  ck_assert_str_eq(ft_redis_field(id, "v"), "2");
  ft_stop();
}
END_TEST

/* gmd dies after the submission's referral step: nothing is offered to
   the banks and the enterprise's list lacks it.  Nobody retries, but
   within sync_ms a bank that guessed the (sequential) id claims it: that
   claim's own steps must not cancel the sync deadline, which is still
   owed the submission's indexes. */
START_TEST(a_later_transition_leaves_the_sync_deadline_a_dead_call_owes) {
  ft_start("test_kill_before_index = 0\nsync_ms = 2000",
           ft_at(FT_MONDAY, 10, 0));
  world();
  FILE *f = fopen(gm_test_gmd_conf(ft_gmd), "a");
  fputs("test_kill_before_index = 1\n", f);
  fclose(f);
  restart_with("");
  Gm__Finance__ReferRequest q = GM__FINANCE__REFER_REQUEST__INIT;
  q.amount = 500000000;
  q.tenor_months = 36;
  q.class_code = "3";
  q.subitem = "3.2";
  q.use_of_proceeds = "rooftop solar";
  q.description = "2 MW rooftop photovoltaic plant";
  q.consent_share = 1;
  Gm__Reply *r = gm_test_call(ft_conn, "acme", "finance", "referral.create",
                              "refer-lost", &q.base);
  ck_assert_ptr_null(r);
  ck_assert_int_ge(gm_test_gmd_wait_exit(ft_gmd, 10000), 0);
  gm_test_conn_destroy(&ft_conn);
  ck_assert_str_eq(ft_redis_field("R00000001", "st"), "1");
  f = fopen(gm_test_gmd_conf(ft_gmd), "a");
  fputs("[market.finance]\ntest_kill_before_index = 0\n", f);
  fclose(f);
  gm_test_gmd_restart(ft_gmd);
  ft_conn = gm_test_conn_new(gm_test_gmd_endpoint(ft_gmd), NULL, NULL, NULL);
  ck_assert_ptr_null(ft_relation("abc", "R00000001"));
  ft_free(ft_claim("icbc1", "R00000001"));
  /* The sync deadline falls: abc is offered the referral, acme lists it. */
  ft_clock(ft_at(FT_MONDAY, 10, 0) + 2000);
  ck_assert(ft_wait_relation("abc", "R00000001", "open"));
  ck_assert(ft_wait_relation("icbc", "R00000001", "claimed"));
  Gm__Finance__ReferralsRequest l = GM__FINANCE__REFERRALS_REQUEST__INIT;
  Gm__Finance__ReferralList *list =
      (Gm__Finance__ReferralList *)ft_ok("acme", "referral.list", &l.base);
  ck_assert_int_eq(list->total, 1);
  ft_free(list);
  /* Then it is done: only the pick deadline is left. */
  redisContext *rc = gm_test_redis_connect(ft_redis);
  for (int i = 0; i < 500; i++)
    if (gm_test_redis_int(rc, "ZCARD gm:{finance:R00000001}:dl") == 1) break;
  ck_assert_int_eq(gm_test_redis_int(rc, "ZCARD gm:{finance:R00000001}:dl"), 1);
  redisFree(rc);
  ft_stop();
}
END_TEST
#endif

int main(void) {
  Suite *s = suite_create("finance restart");
  TCase *tc = tcase_create("restart");
  tcase_set_timeout(tc, 180);
  tcase_add_test(tc,
                 every_state_survives_and_deadlines_due_while_down_fire_once);
  tcase_add_test(tc, a_decision_deadline_due_while_down_fires_once);
  tcase_add_test(tc,
                 a_review_without_a_decision_deadline_gets_one_from_the_sweep);
  tcase_add_test(tc, a_review_gone_from_redis_is_warned_about_once);
  tcase_add_test(tc,
                 an_older_settler_cannot_record_a_missed_decision_as_a_contact);
#ifdef GM_FAILURE_INJECTION
  tcase_add_test(tc, a_retry_finishes_what_a_killed_broker_left);
  tcase_add_test(tc, the_sync_deadline_finishes_what_nobody_retried);
  tcase_add_test(tc,
                 a_later_transition_leaves_the_sync_deadline_a_dead_call_owes);
#endif
  suite_add_tcase(s, tc);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
