/*
 * The opening happens once: gmd stopped before the bid deadline and
 * started after it opens the bids at start-up; gmd killed in the middle of
 * an opening (after its second page) is replaced by a restarted one that
 * finishes it once the claim ran out.  Each bid is opened and evaluated
 * exactly once: one sheet entry per bid reaches the ledger.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"

#define T0 pt_at(PT_MONDAY, 10, 0)
#define DEADLINE (T0 + 21 * PT_DAY)
#define NBIDS 35

static void bidders(const char *tender, int n) {
  for (int i = 0; i < n; i++) {
    char who[16], line[32];
    snprintf(who, sizeof who, "s%02d", i);
    snprintf(line, sizeof line, "D1=%d", 100000 + (i * 7919) % 5000);
    pt_register(who, "supplier");
    char code[19];
    pt_party(who, pt_uscc(i, code), GM__PROCUREMENT__SME_CLASS__SME_NONE);
    const char *l[] = {line};
    Gm__Procurement__BidReceipt *r = pt_bid(who, tender, 0, l, 1);
    ck_assert_msg(r, "%s: %s", who, pt_message);
    pt_free(r);
  }
}

static void start_tender(const char *extra) {
  pt_start(extra, T0);
  pt_register("centre", "certifier");
  pt_register("city", "agency");
  pt_category("DESK", GM__PROCUREMENT__POLICY__POLICY_NONE, 0, "", 0);
  pt_tender d;
  pt_tender_init(&d, "T-RS", 100000000000, DEADLINE);
  pt_item(&d, "D1", "DESK", 1, 0, NULL);
  pt_publish("city", &d);
}

/* Appends lines to gmd.conf (later keys win) for the next start. */
static void conf_append(const char *text) {
  FILE *f = fopen(gm_test_gmd_conf(pt_gmd), "a");
  ck_assert_ptr_nonnull(f);
  fputs(text, f);
  fclose(f);
}

static void reconnect(void) {
  gm_test_conn_destroy(&pt_conn);
  pt_conn = gm_test_conn_new(gm_test_gmd_endpoint(pt_gmd), NULL, NULL, NULL);
}

static void opened_once(int n) {
  char sql[256];
  snprintf(sql, sizeof sql,
           "SELECT count(*) FROM procurement_sheet WHERE tender_id = 'T-RS'");
  ck_assert_int_eq(pt_ledger_wait(sql, n), n);
  /* One sheet entry per bid was settled: none was evaluated twice. */
  ck_assert_int_eq(pt_ledger_int("SELECT count(*) FROM gm_settled WHERE"
                                 " stream = 'gm:{procurement:t:T-RS}:outbox'"
                                 " AND kind = 'sheet'"),
                   n);
  /* The round and the tender log's line come from other entries than the
     sheet's (kind evaluated, and the tender's): the settler may have
     committed the sheet in a batch before them (seen on cluster3). */
  ck_assert_int_eq(pt_ledger_wait("SELECT count(*) FROM procurement_rounds", 1),
                   1);
  ck_assert_int_eq(pt_ledger_wait("SELECT count(*) FROM procurement_tender_log"
                                  " WHERE action = 'opened'",
                                  1),
                   1);
  redisContext *c = gm_test_redis_connect(pt_redis);
  ck_assert_int_eq(gm_test_redis_int(c, "ZCARD gm:{procurement:t:T-RS}:rk"), n);
  ck_assert_int_eq(gm_test_redis_int(c, "HLEN gm:{procurement:t:T-RS}:o"), n);
  ck_assert_int_eq(gm_test_redis_int(c, "HLEN gm:{procurement:t:T-RS}:bc"), 0);
  redisFree(c);
}

START_TEST(stopped_across_the_deadline_opens_once_at_start_up) {
  start_tender(NULL);
  bidders("T-RS", 12);
  gm_test_conn_destroy(&pt_conn);
  gm_test_gmd_stop(&pt_gmd);
  /* Nobody moves the clock: a new gmd on the same Redis, ledger and key
     file starts after the deadline. */
  char conf[1024];
  snprintf(conf, sizeof conf,
           "[testing]\nclock = manual\nclock_start_ms = %lld\n[plugins]\n"
           "load = procurement\n[deadlines]\npoll_ms = 20\n",
           (long long)(DEADLINE + 5000));
  pt_gmd = gm_test_gmd_start(pt_redis, GM_BUILD_PLUGIN_DIR, conf);
  reconnect();
  ck_assert_str_eq(pt_wait_state("T-RS", "evaluated"), "evaluated");
  opened_once(12);
  /* A second restart changes nothing. */
  gm_test_gmd_kill9(pt_gmd);
  gm_test_gmd_restart(pt_gmd);
  reconnect();
  pt_clock(DEADLINE + 60000);
  ck_assert_str_eq(pt_wait_state("T-RS", "evaluated"), "evaluated");
  opened_once(12);
}
END_TEST

#ifdef GM_FAILURE_INJECTION
/* Moves the test clock to ms when that starts a deadline gmd kills itself
   in: the deadline thread can get there before the reply to clock.set is
   out, so the reply may be lost. */
static void clock_then_die(int64_t ms) {
  Gm__ClockSetRequest req = GM__CLOCK_SET_REQUEST__INIT;
  req.time_ms = ms;
  Gm__Reply *r = gm_test_call(pt_conn, "root", "gm", "clock.set",
                              "clock-then-die", &req.base);
  ck_assert_msg(!r || r->status == GM__STATUS__OK, "clock.set failed: %s",
                r && r->message ? r->message : "");
  if (r) gm__reply__free_unpacked(r, NULL);
  pt_now = ms;
}

START_TEST(killed_mid_opening_finishes_once_elsewhere) {
  start_tender(
      "page = 10\ntest_kill_after_page = 2\n[deadlines]\n"
      "claim_ms = 1000\n");
  bidders("T-RS", NBIDS);
  clock_then_die(DEADLINE);
  /* Two pages stored, then gmd dies inside the deadline's callback. */
  int st = gm_test_gmd_wait_exit(pt_gmd, 10000);
  ck_assert_msg(st != -1, "gmd did not kill itself mid-opening");
  redisContext *c = gm_test_redis_connect(pt_redis);
  /* The settler died with it: Redis says how far it got. */
  ck_assert_int_eq(gm_test_redis_int(c, "HLEN gm:{procurement:t:T-RS}:o"), 20);
  redisReply *r = gm_test_redis_cmd(c, "HGET gm:{procurement:t:T-RS}:t st");
  ck_assert_str_eq(r->str, "opening");
  freeReplyObject(r);
  redisFree(c);
  /* Restarted without the fault; the claim runs out and the opening is
     taken over, replaying the pages done. */
  conf_append("[market.procurement]\ntest_kill_after_page = 0\n");
  gm_test_gmd_restart(pt_gmd);
  reconnect();
  pt_clock(DEADLINE + 2000);
  ck_assert_str_eq(pt_wait_state("T-RS", "evaluated"), "evaluated");
  opened_once(NBIDS);
  Gm__Procurement__Sheet *s = pt_sheet("T-RS");
  ck_assert_int_eq(s->total_rows, NBIDS);
  /* Ranks 1..N, each once. */
  int seen[NBIDS + 1] = {0};
  for (size_t i = 0; i < s->n_rows; i++) seen[s->rows[i]->rank]++;
  for (int k = 1; k <= NBIDS; k++) ck_assert_int_eq(seen[k], 1);
  pt_free(s);
}
END_TEST
#endif

#ifdef GM_FAILURE_INJECTION
static void score_request(Gm__Procurement__ScoreRequest *q,
                          Gm__Procurement__Score s[3],
                          Gm__Procurement__Score *ps[3], char names[3][16],
                          int bp, const char *one, int one_bp) {
  for (int i = 0; i < 3; i++) {
    gm__procurement__score__init(&s[i]);
    snprintf(names[i], 16, "s%02d", i);
    s[i].supplier = names[i];
    s[i].score_bp = one && !strcmp(one, names[i]) ? one_bp : bp;
    ps[i] = &s[i];
  }
  gm__procurement__score_request__init(q);
  q->tender_id = "T-SR";
  q->scores = ps;
  q->n_scores = one ? 1 : 3;
  if (one) ps[0] = &s[atoi(one + 1)];
}

static void score_all(const char *who, int bp, const char *one, int one_bp) {
  Gm__Procurement__Score s[3], *ps[3];
  char names[3][16];
  Gm__Procurement__ScoreRequest q;
  score_request(&q, s, ps, names, bp, one, one_bp);
  Gm__Procurement__ScoreReply *r =
      (Gm__Procurement__ScoreReply *)pt_call(who, "evaluation.score", &q.base);
  ck_assert_msg(r, "%s scores: %s", who, pt_message);
  pt_free(r);
}

/*
 * The last score starts the ranking, in which gmd kills itself: the deadline
 * thread can get there before the worker's reply is out, so the reply may be
 * lost (a client sees a timeout).  Sent with a fixed idempotency key, so
 * last_score_replayed() can ask again after the restart, as a client would.
 */
#define LAST_SCORE_KEY "last-score-e2"
static void last_score_then_die(void) {
  Gm__Procurement__Score s[3], *ps[3];
  char names[3][16];
  Gm__Procurement__ScoreRequest q;
  score_request(&q, s, ps, names, 5000, NULL, 0);
  Gm__Reply *r = gm_test_call(pt_conn, "e2", "procurement", "evaluation.score",
                              LAST_SCORE_KEY, &q.base);
  ck_assert_msg(!r || r->status == GM__STATUS__OK, "e2 scores: %s",
                r && r->message ? r->message : "");
  if (r) gm__reply__free_unpacked(r, NULL);
}

/* The retry of the last score after the restart replays its reply. */
static void last_score_replayed(void) {
  Gm__Procurement__Score s[3], *ps[3];
  char names[3][16];
  Gm__Procurement__ScoreRequest q;
  score_request(&q, s, ps, names, 5000, NULL, 0);
  Gm__Procurement__ScoreReply *r = (Gm__Procurement__ScoreReply *)pt_call_idem(
      "e2", "evaluation.score", LAST_SCORE_KEY, &q.base);
  ck_assert_msg(r, "e2's retried score: %s", pt_message);
  pt_free(r);
}

/*
 * Comprehensive scoring: gmd dies while the "rank" deadline computes the
 * totals (after reading the first page of scores), and an evaluator then
 * changes a score.  The restarted gmd fires the ranking again once the
 * claim ran out: the tender does not stay `scoring`, and the totals are
 * those of the changed score, not of the page read before the crash (the
 * score version).
 */
START_TEST(killed_mid_totals_ranks_again_with_the_changed_score) {
  pt_start("test_kill_in_totals = 1\n[deadlines]\nclaim_ms = 1000\n", T0);
  pt_register("centre", "certifier");
  pt_register("city", "agency");
  pt_register("e1", "evaluator");
  pt_register("e2", "evaluator");
  pt_category("DESK", GM__PROCUREMENT__POLICY__POLICY_NONE, 0, "", 0);
  pt_tender d;
  pt_tender_init(&d, "T-SR", 100000000000, DEADLINE);
  pt_item(&d, "D1", "DESK", 1, 0, NULL);
  d.t.award_method = GM__PROCUREMENT__AWARD_METHOD__AWARD_SCORING;
  d.t.price_weight_bp = 3000;
  d.evaluators[0] = "e1";
  d.evaluators[1] = "e2";
  d.t.n_evaluators = 2;
  pt_publish("city", &d);
  bidders("T-SR", 3);
  pt_clock(DEADLINE);
  ck_assert_str_eq(pt_wait_state("T-SR", "scoring"), "scoring");
  score_all("e1", 5000, NULL, 0);
  last_score_then_die(); /* the last score: the ranking starts */
  int st = gm_test_gmd_wait_exit(pt_gmd, 10000);
  ck_assert_msg(st != -1, "gmd did not kill itself in the totals");
  redisContext *c = gm_test_redis_connect(pt_redis);
  redisReply *r = gm_test_redis_cmd(c, "HGET gm:{procurement:t:T-SR}:t st");
  ck_assert_str_eq(r->str, "scoring");
  freeReplyObject(r);
  redisFree(c);

  conf_append("[market.procurement]\ntest_kill_in_totals = 0\n");
  gm_test_gmd_restart(pt_gmd);
  reconnect();
  last_score_replayed();
  score_all("e2", 0, "s00", 6000);
  pt_clock(DEADLINE + 2000);
  ck_assert_str_eq(pt_wait_state("T-SR", "evaluated"), "evaluated");
  ck_assert_int_eq(pt_ledger_wait("SELECT tech_score FROM procurement_sheet"
                                  " WHERE tender_id = 'T-SR' AND supplier ="
                                  " 's00' AND total_score > 0",
                                  5500),
                   5500);
  ck_assert_int_eq(pt_ledger_wait("SELECT count(*) FROM procurement_sheet"
                                  " WHERE tender_id = 'T-SR' AND"
                                  " tech_score = 5000 AND total_score > 0",
                                  2),
                   2);
}
END_TEST

/*
 * The same crash with nobody scoring afterwards: the claim of the killed
 * gmd runs out and the ranking is fired again by the restarted one, so the
 * tender does not stay `scoring` waiting for a score.
 */
START_TEST(killed_mid_totals_ranks_again_with_no_new_score) {
  pt_start("test_kill_in_totals = 1\n[deadlines]\nclaim_ms = 1000\n", T0);
  pt_register("centre", "certifier");
  pt_register("city", "agency");
  pt_register("e1", "evaluator");
  pt_register("e2", "evaluator");
  pt_category("DESK", GM__PROCUREMENT__POLICY__POLICY_NONE, 0, "", 0);
  pt_tender d;
  pt_tender_init(&d, "T-SR", 100000000000, DEADLINE);
  pt_item(&d, "D1", "DESK", 1, 0, NULL);
  d.t.award_method = GM__PROCUREMENT__AWARD_METHOD__AWARD_SCORING;
  d.t.price_weight_bp = 3000;
  d.evaluators[0] = "e1";
  d.evaluators[1] = "e2";
  d.t.n_evaluators = 2;
  pt_publish("city", &d);
  bidders("T-SR", 3);
  pt_clock(DEADLINE);
  ck_assert_str_eq(pt_wait_state("T-SR", "scoring"), "scoring");
  score_all("e1", 5000, NULL, 0);
  last_score_then_die(); /* the last score: the ranking starts */
  int st = gm_test_gmd_wait_exit(pt_gmd, 10000);
  ck_assert_msg(st != -1, "gmd did not kill itself in the totals");
  redisContext *c = gm_test_redis_connect(pt_redis);
  redisReply *r = gm_test_redis_cmd(c, "HGET gm:{procurement:t:T-SR}:t st");
  ck_assert_str_eq(r->str, "scoring");
  freeReplyObject(r);
  redisFree(c);

  conf_append("[market.procurement]\ntest_kill_in_totals = 0\n");
  gm_test_gmd_restart(pt_gmd);
  reconnect();
  last_score_replayed();
  pt_clock(DEADLINE + 2000);
  ck_assert_str_eq(pt_wait_state("T-SR", "evaluated"), "evaluated");
  ck_assert_int_eq(pt_ledger_wait("SELECT tech_score FROM procurement_sheet"
                                  " WHERE tender_id = 'T-SR' AND supplier ="
                                  " 's00' AND total_score > 0",
                                  5000),
                   5000);
}
END_TEST

#endif

#ifdef GM_FAILURE_INJECTION
/*
 * Comprehensive scoring, no crash: the "rank" deadline reads the first
 * page of scores, and an evaluator changes a score before that page's
 * totals are stored (gmd waits, test_pause_in_totals, while its pause
 * file exists).  The totals read before the change are stale (the score
 * version): they are not stored, the ranking does not finish on them, and
 * the firing the change set computes them with the changed score.
 */
START_TEST(a_score_changed_while_totals_compute_is_not_lost) {
  pt_start("test_pause_in_totals = totals.pause\n", T0);
  char pause[4096];
  snprintf(pause, sizeof pause, "%s", gm_test_gmd_conf(pt_gmd));
  char *slash = strrchr(pause, '/');
  snprintf(slash + 1, sizeof pause - (size_t)(slash + 1 - pause),
           "totals.pause");
  pt_register("centre", "certifier");
  pt_register("city", "agency");
  pt_register("e1", "evaluator");
  pt_register("e2", "evaluator");
  pt_category("DESK", GM__PROCUREMENT__POLICY__POLICY_NONE, 0, "", 0);
  pt_tender d;
  pt_tender_init(&d, "T-SR", 100000000000, DEADLINE);
  pt_item(&d, "D1", "DESK", 1, 0, NULL);
  d.t.award_method = GM__PROCUREMENT__AWARD_METHOD__AWARD_SCORING;
  d.t.price_weight_bp = 3000;
  d.evaluators[0] = "e1";
  d.evaluators[1] = "e2";
  d.t.n_evaluators = 2;
  pt_publish("city", &d);
  bidders("T-SR", 3);
  pt_clock(DEADLINE);
  ck_assert_str_eq(pt_wait_state("T-SR", "scoring"), "scoring");
  score_all("e1", 5000, NULL, 0);
  score_all("e2", 5000, NULL, 0); /* the last score: the ranking starts */
  /* Wait (10 s at most) for the ranking to hold its first page. */
  for (int i = 0; i < 1000 && access(pause, F_OK) != 0; i++) usleep(10000);
  ck_assert_msg(access(pause, F_OK) == 0, "the ranking did not pause");
  score_all("e2", 0, "s00", 6000);
  ck_assert_int_eq(unlink(pause), 0);
  ck_assert_int_eq(pt_ledger_wait("SELECT tech_score FROM procurement_sheet"
                                  " WHERE tender_id = 'T-SR' AND supplier ="
                                  " 's00' AND total_score > 0",
                                  5500),
                   5500);
  ck_assert_str_eq(pt_wait_state("T-SR", "evaluated"), "evaluated");
  ck_assert_int_eq(pt_ledger_int("SELECT tech_score FROM procurement_sheet"
                                 " WHERE tender_id = 'T-SR' AND supplier ="
                                 " 's00'"),
                   5500);
}
END_TEST
#endif

static void teardown(void) {
  pt_stop();
}

int main(void) {
  Suite *s = suite_create("procurement restart");
  TCase *tc = tcase_create("restart");
  tcase_add_checked_fixture(tc, NULL, teardown);
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, stopped_across_the_deadline_opens_once_at_start_up);
#ifdef GM_FAILURE_INJECTION
  tcase_add_test(tc, killed_mid_opening_finishes_once_elsewhere);
  tcase_add_test(tc, killed_mid_totals_ranks_again_with_the_changed_score);
  tcase_add_test(tc, a_score_changed_while_totals_compute_is_not_lost);
  tcase_add_test(tc, killed_mid_totals_ranks_again_with_no_new_score);
#endif
  suite_add_tcase(s, tc);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
