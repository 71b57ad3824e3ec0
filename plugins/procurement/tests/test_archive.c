/*
 * Ended tenders leave Redis: a cancelled tender's sealed bids go at once
 * (never opened), and archive_after_days after the end, once the ledger
 * holds the final state, every key of the tender goes; what Redis holds for
 * the tender's hash tag is counted before and after.  Reads after the
 * archive: tender.get from the ledger, the bid list, the sheet and the OCDS
 * export as before, a bid or an award of it refused naming where the
 * record is.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include "harness.h"
#include "redis_fill.h"

#define T0 pt_at(PT_MONDAY, 10, 0)
#define DEADLINE (T0 + 21 * PT_DAY)

static void setup(void) {
  pt_start("archive_after_days = 2", T0);
  pt_register("city", "agency");
  pt_register("alpha", "supplier");
  pt_register("beta", "supplier");
  pt_party("city", PT_USCC_GOV, GM__PROCUREMENT__SME_CLASS__SME_NONE);
  pt_party("alpha", PT_USCC_A, GM__PROCUREMENT__SME_CLASS__SME_NONE);
  pt_party("beta", PT_USCC_B, GM__PROCUREMENT__SME_CLASS__SME_SMALL);
  pt_category("DESK", GM__PROCUREMENT__POLICY__POLICY_NONE, 0, "", 0);
}

static void teardown(void) {
  pt_stop();
}

/* The tender's own keys in Redis: every key of its hash tag but the
   host's outbox stream (and what its retirement keeps, which expires) and
   its stored replies (which expire). */
static long long tender_keys(const char *id) {
  redisContext *c = gm_test_redis_connect(pt_redis);
  redisReply *r = gm_test_redis_cmd(c, "KEYS gm:{procurement:t:%s}:*", id);
  long long n = 0;
  for (size_t i = 0; i < r->elements; i++) {
    const char *k = strchr(r->element[i]->str, '}') + 2;
    if (strncmp(k, "outbox", 6) != 0 && strncmp(k, "idem:", 5) != 0 &&
        strncmp(k, "dl", 2) != 0)
      n++;
  }
  freeReplyObject(r);
  redisFree(c);
  return n;
}

static long long redis_int(const char *fmt, const char *id) {
  redisContext *c = gm_test_redis_connect(pt_redis);
  long long n = gm_test_redis_int(c, fmt, id);
  redisFree(c);
  return n;
}

/* How many ms the latest stored reply of the tender's deadline firings
   ("dl." idempotency keys) outlives its claims hash's '#t' plus [redis]
   idempotency_ttl (the default, 1 day), which is what the settler waits
   (with outbox_retire_s) before it drops the hash with the firing counter;
   LLONG_MIN when there is no such reply or no '#t'. */
static long long replies_past_claims_ms(const char *id) {
  redisContext *c = gm_test_redis_connect(pt_redis);
  redisReply *t =
      gm_test_redis_cmd(c, "HGET gm:{procurement:t:%s}:dl:claims #t", id);
  redisReply *now = gm_test_redis_cmd(c, "TIME");
  long long worst = LLONG_MIN;
  if (t->type == REDIS_REPLY_STRING) {
    long long keep = atoll(t->str) + 86400LL * 1000;
    long long ms =
        atoll(now->element[0]->str) * 1000 + atoll(now->element[1]->str) / 1000;
    redisReply *r =
        gm_test_redis_cmd(c, "KEYS gm:{procurement:t:%s}:idem:*:dl.*", id);
    for (size_t i = 0; i < r->elements; i++) {
      long long pttl = gm_test_redis_int(c, "PTTL %s", r->element[i]->str);
      if (pttl > 0 && ms + pttl - keep > worst) worst = ms + pttl - keep;
    }
    freeReplyObject(r);
  }
  freeReplyObject(t);
  freeReplyObject(now);
  redisFree(c);
  return worst;
}

/* The agency cancels tender `id` ("the project was withdrawn"). */
static void cancel(const char *id) {
  Gm__Procurement__TenderRequest q = GM__PROCUREMENT__TENDER_REQUEST__INIT;
  q.tender_id = (char *)id;
  q.reason = "the project was withdrawn";
  ProtobufCMessage *r = pt_call("city", "tender.cancel", &q.base);
  ck_assert_msg(r, "%s", pt_message);
  protobuf_c_message_free_unpacked(r, NULL);
}

/* Waits (10 s) until the tender's keys are gone from Redis. */
static long long wait_gone(const char *id) {
  long long n = -1;
  for (int i = 0; i < 200 && (n = tender_keys(id)) != 0; i++) usleep(50000);
  return n;
}

/*
 * Cancelled with two sealed bids: the sealed texts are unlinked by the
 * cancellation itself, nobody can read them; two days later the tender's
 * keys are gone and tender.get answers from the ledger.
 */
START_TEST(a_cancelled_tender_loses_its_sealed_bids_then_its_keys) {
  pt_tender d;
  pt_tender_init(&d, "T-CAN", 10000000, DEADLINE);
  pt_item(&d, "D1", "DESK", 10, 0, NULL);
  pt_publish("city", &d);
  const char *a[] = {"D1=50000"}, *b[] = {"D1=40000"};
  pt_free(pt_bid("alpha", "T-CAN", 0, a, 1));
  pt_free(pt_bid("beta", "T-CAN", GM__PROCUREMENT__SME_CLASS__SME_SMALL, b, 1));
  ck_assert_int_eq(redis_int("HLEN gm:{procurement:t:%s}:bc", "T-CAN"), 2);
  long long before = tender_keys("T-CAN");
  ck_assert_int_ge(before, 4); /* t, b, bc, bz at least */

  cancel("T-CAN");
  ck_assert_int_eq(redis_int("EXISTS gm:{procurement:t:%s}:bc", "T-CAN"), 0);
  /* Its bidder reads its receipt, marked as never opened: not
     "submitted" with no lines and a total of 0. */
  Gm__Procurement__BidQuery mq = GM__PROCUREMENT__BID_QUERY__INIT;
  mq.tender_id = "T-CAN";
  Gm__Procurement__Bid *mine =
      (Gm__Procurement__Bid *)pt_call("alpha", "bid.get", &mq.base);
  ck_assert_msg(mine, "%s", pt_message);
  ck_assert_str_eq(mine->state, "unopened");
  ck_assert_int_eq(mine->n_lines, 0);
  ck_assert_int_eq(mine->version, 1);
  pt_free(mine);
  /* To another supplier it stays sealed: not even whether alpha bid. */
  mq.supplier = "alpha";
  pt_expect("beta", "bid.get", &mq.base, GM__STATUS__PERMISSION_DENIED,
            "sealed");
  /* Everything else stays until the archive, due two days after the
     cancellation. */
  ck_assert_int_eq(tender_keys("T-CAN"), before - 1);
  redisContext *c = gm_test_redis_connect(pt_redis);
  redisReply *due =
      gm_test_redis_cmd(c, "ZSCORE gm:{procurement:t:T-CAN}:dl archive|T-CAN");
  ck_assert_int_eq(strtoll(due->str, NULL, 10), T0 + 2 * PT_DAY);
  freeReplyObject(due);
  redisFree(c);

  /* The archive waits for the ledger to hold the final state (archive.c
     sets itself a minute later when it does not): let it settle first. */
  pt_ledger_wait(
      "SELECT count(*) FROM procurement_tenders WHERE tender_id ="
      " 'T-CAN' AND state = 'cancelled'",
      1);
  pt_clock(T0 + 2 * PT_DAY + 1000);
  ck_assert_int_eq(wait_gone("T-CAN"), 0);
  ck_assert_int_gt(pt_ledger_wait("SELECT archived_ms > 0 FROM"
                                  " procurement_tenders WHERE tender_id ="
                                  " 'T-CAN'",
                                  1),
                   0);
  /* No deadline of it is left to fire. */
  ck_assert_int_eq(redis_int("ZCARD gm:{procurement:t:%s}:dl", "T-CAN"), 0);

  Gm__Procurement__TenderView *v = pt_tender_get("T-CAN");
  ck_assert_ptr_nonnull(v);
  ck_assert_str_eq(v->tender->state, "cancelled");
  ck_assert_str_eq(v->tender->reason, "the project was withdrawn");
  ck_assert_int_eq(v->tender->n_items, 1);
  ck_assert_int_gt(v->archived_ms, 0);
  pt_free(v);
  Gm__Procurement__BidQuery bq = GM__PROCUREMENT__BID_QUERY__INIT;
  bq.tender_id = "T-CAN";
  pt_expect("alpha", "bid.get", &bq.base, GM__STATUS__FAILED_PRECONDITION,
            "archived");
  /* The bids' records stay in the ledger, with no text: never opened. */
  ck_assert_int_eq(pt_ledger_int("SELECT count(*) FROM procurement_bids"
                                 " WHERE tender_id = 'T-CAN' AND"
                                 " opened_text = ''"),
                   2);
  Gm__Procurement__ExportRequest e = GM__PROCUREMENT__EXPORT_REQUEST__INIT;
  e.tender_id = "T-CAN";
  Gm__Procurement__Export *x =
      (Gm__Procurement__Export *)pt_call("city", "tender.export", &e.base);
  ck_assert_msg(x, "%s", pt_message);
  ck_assert_ptr_nonnull(strstr(x->json, "\"cancelled\""));
  pt_free(x);
}
END_TEST

/*
 * Redis over maxmemory: the archive still runs (its steps and the
 * deadline claims behind it are allowed over maxmemory: they free) and
 * the tender's keys go; a bid on another tender is still refused with the
 * clear error; the archived tender reads from the ledger.
 */
START_TEST(the_archive_frees_redis_over_maxmemory) {
  /* The clock moves while Redis is full by renaming gm:deadlines away
     (redis_fill.h), which a cluster refuses (CROSSSLOT), and one node's
     maxmemory is not the cluster's: the plain run covers it. */
  if (getenv("GM_TEST_REDIS_CLUSTER")) return;
  pt_tender d, live;
  pt_tender_init(&d, "T-FULL", 10000000, DEADLINE);
  pt_item(&d, "D1", "DESK", 10, 0, NULL);
  pt_publish("city", &d);
  pt_tender_init(&live, "T-LIVE", 10000000, DEADLINE + 7 * PT_DAY);
  pt_item(&live, "D1", "DESK", 10, 0, NULL);
  pt_publish("city", &live);
  const char *a[] = {"D1=50000"}, *b[] = {"D1=40000"};
  pt_free(pt_bid("alpha", "T-FULL", 0, a, 1));
  cancel("T-FULL");
  pt_ledger_wait(
      "SELECT count(*) FROM procurement_tenders WHERE tender_id ="
      " 'T-FULL' AND state = 'cancelled'",
      1);
  ck_assert_int_gt(tender_keys("T-FULL"), 2);
  redisContext *c = gm_test_redis_connect(pt_redis);
  ck_assert_int_gt(gm_test_redis_fill(c), 0);

  gm_test_redis_clock_while_full(c, pt_clock, T0 + 2 * PT_DAY + 1000);
  ck_assert_int_eq(wait_gone("T-FULL"), 0);
  ck_assert_int_gt(pt_ledger_wait("SELECT archived_ms > 0 FROM"
                                  " procurement_tenders WHERE tender_id ="
                                  " 'T-FULL'",
                                  1),
                   0);
  /* The archive stored no reply of its steps. */
  redisReply *r =
      gm_test_redis_cmd(c, "KEYS gm:{procurement:t:T-FULL}:idem:*:dl.*");
  ck_assert_uint_eq(r->elements, 0);
  freeReplyObject(r);

  /* Still full: a bid on the live tender is refused as before. */
  ck_assert_ptr_null(
      pt_bid("beta", "T-LIVE", GM__PROCUREMENT__SME_CLASS__SME_SMALL, b, 1));
  ck_assert_int_eq(pt_status, GM__STATUS__RESOURCE_EXHAUSTED);
  ck_assert_ptr_nonnull(strstr(pt_message, "raise maxmemory or free keys"));
  Gm__Procurement__TenderView *v = pt_tender_get("T-FULL");
  ck_assert_ptr_nonnull(v);
  ck_assert_str_eq(v->tender->state, "cancelled");
  ck_assert_int_gt(v->archived_ms, 0);
  pt_free(v);
  freeReplyObject(gm_test_redis_cmd(c, "CONFIG SET maxmemory 0"));
  redisFree(c);
}
END_TEST

/*
 * Unsuccessful at the opening (no security lodged): its opened bids, the
 * sheet and the export come from the ledger after the archive, as before
 * it; an amendment or an award is refused naming the archive.
 */
START_TEST(an_unsuccessful_tender_is_read_from_the_ledger_after_archive) {
  pt_tender d;
  pt_tender_init(&d, "T-UNS", 10000000, DEADLINE);
  pt_item(&d, "D1", "DESK", 10, 0, NULL);
  d.t.bid_security = 1000;
  pt_publish("city", &d);
  const char *a[] = {"D1=50000"};
  pt_free(pt_bid("alpha", "T-UNS", 0, a, 1));
  pt_clock(DEADLINE);
  ck_assert_str_eq(pt_wait_state("T-UNS", "unsuccessful"), "unsuccessful");
  ck_assert_int_gt(tender_keys("T-UNS"), 4);
  pt_ledger_wait(
      "SELECT count(*) FROM procurement_tenders WHERE tender_id ="
      " 'T-UNS' AND state = 'unsuccessful'",
      1);
  pt_clock(DEADLINE + 2 * PT_DAY);
  ck_assert_int_eq(wait_gone("T-UNS"), 0);
  pt_ledger_wait(
      "SELECT archived_ms > 0 FROM procurement_tenders"
      " WHERE tender_id = 'T-UNS'",
      1);

  Gm__Procurement__TenderView *v = pt_tender_get("T-UNS");
  ck_assert_str_eq(v->tender->state, "unsuccessful");
  ck_assert_int_eq(v->tender->bids, 1);
  ck_assert_int_eq(v->tender->round, 1);
  pt_free(v);
  Gm__Procurement__BidListRequest bl = GM__PROCUREMENT__BID_LIST_REQUEST__INIT;
  bl.tender_id = "T-UNS";
  Gm__Procurement__BidList *l =
      (Gm__Procurement__BidList *)pt_call_settled("beta", "bid.list", &bl.base);
  ck_assert_msg(l, "%s", pt_message);
  ck_assert_int_eq(l->n_bids, 1);
  ck_assert_str_eq(l->bids[0]->supplier, "alpha");
  pt_free(l);
  Gm__Procurement__Sheet *s = pt_sheet("T-UNS");
  ck_assert_str_eq(pt_row(s, "alpha")->status, "disqualified");
  pt_free(s);
  Gm__Procurement__AwardRequest tq = GM__PROCUREMENT__AWARD_REQUEST__INIT;
  tq.tender_id = "T-UNS";
  pt_expect("city", "tender.award", &tq.base, GM__STATUS__FAILED_PRECONDITION,
            "gm procurement export T-UNS");
}
END_TEST

/*
 * An awarded tender, two challenges, the first upheld with cancellation:
 * the award, its contract, both challenges (the second closed by the
 * cancellation) and their answer deadlines go with the tender, leaving no
 * key and no deadline of it; the award, the contract and a challenge then
 * answer that the tender is archived.
 */
START_TEST(an_awarded_tender_with_challenges_leaves_no_key_behind) {
  pt_register("gamma", "supplier");
  pt_party("gamma", PT_USCC_C, GM__PROCUREMENT__SME_CLASS__SME_NONE);
  pt_tender d;
  pt_tender_init(&d, "T-AW", 100000000, DEADLINE);
  pt_item(&d, "D1", "DESK", 10, 0, NULL);
  pt_publish("city", &d);
  const char *a[] = {"D1=100000"}, *b[] = {"D1=110000"}, *g[] = {"D1=120000"};
  pt_free(pt_bid("alpha", "T-AW", 0, a, 1));
  pt_free(pt_bid("gamma", "T-AW", 0, g, 1));
  pt_free(pt_bid("beta", "T-AW", GM__PROCUREMENT__SME_CLASS__SME_SMALL, b, 1));
  pt_clock(DEADLINE);
  ck_assert_str_eq(pt_wait_state("T-AW", "evaluated"), "evaluated");
  pt_free(pt_award("city", "T-AW"));
  const char *who[] = {"alpha", "gamma"};
  for (int i = 0; i < 2; i++) {
    Gm__Procurement__ChallengeRequest cq =
        GM__PROCUREMENT__CHALLENGE_REQUEST__INIT;
    cq.tender_id = "T-AW";
    cq.text = "the delivery terms do not meet item D1";
    ProtobufCMessage *c = pt_call(who[i], "challenge.lodge", &cq.base);
    ck_assert_msg(c, "%s", pt_message);
    protobuf_c_message_free_unpacked(c, NULL);
  }
  ck_assert_int_eq(redis_int("EXISTS gm:{procurement:t:%s}:ch:2", "T-AW"), 1);
  Gm__Procurement__AnswerRequest aq = GM__PROCUREMENT__ANSWER_REQUEST__INIT;
  aq.challenge_id = "T-AW-Q1";
  aq.upheld = 1;
  aq.remedy = GM__PROCUREMENT__REMEDY__REMEDY_CANCEL;
  aq.answer = "upheld: the terms were unclear";
  ProtobufCMessage *r = pt_call("city", "challenge.answer", &aq.base);
  ck_assert_msg(r, "%s", pt_message);
  protobuf_c_message_free_unpacked(r, NULL);
  ck_assert_str_eq(pt_wait_state("T-AW", "cancelled"), "cancelled");
  long long before = tender_keys("T-AW");
  ck_assert_int_ge(before, 10); /* aw:1, k:..., ch:1, ch:2 and the rest */

  pt_ledger_wait(
      "SELECT count(*) FROM procurement_tenders WHERE tender_id ="
      " 'T-AW' AND state = 'cancelled'",
      1);
  pt_clock(pt_now + 2 * PT_DAY + 1000);
  ck_assert_int_eq(wait_gone("T-AW"), 0);
  pt_ledger_wait(
      "SELECT archived_ms > 0 FROM procurement_tenders"
      " WHERE tender_id = 'T-AW'",
      1);
  ck_assert_int_eq(redis_int("ZCARD gm:{procurement:t:%s}:dl", "T-AW"), 0);
  /* No claim is left; what stays is the host's firing counter ('#') and
     its last claim's time ('#t'), with its outbox stream, until the
     settler retires the tag (procurement.md, Limits). */
  ck_assert_int_eq(redis_int("HLEN gm:{procurement:t:%s}:dl:claims", "T-AW"),
                   2);
  ck_assert_int_eq(
      redis_int("HEXISTS gm:{procurement:t:%s}:dl:claims #", "T-AW"), 1);
  ck_assert_int_eq(
      redis_int("HEXISTS gm:{procurement:t:%s}:dl:claims #t", "T-AW"), 1);

  Gm__Procurement__AwardRequest ar = GM__PROCUREMENT__AWARD_REQUEST__INIT;
  ar.tender_id = "T-AW";
  pt_expect("alpha", "award.get", &ar.base, GM__STATUS__FAILED_PRECONDITION,
            "archived");
  Gm__Procurement__ContractRequest kq = GM__PROCUREMENT__CONTRACT_REQUEST__INIT;
  kq.contract_id = "T-AW-A1-1";
  pt_expect("city", "contract.get", &kq.base, GM__STATUS__FAILED_PRECONDITION,
            "archived");
  /* The challenges stay in the ledger: the upheld one and the one its
     cancellation closed. */
  ck_assert_int_eq(pt_ledger_int("SELECT count(*) FROM procurement_challenges"
                                 " WHERE challenge_id IN ('T-AW-Q1',"
                                 " 'T-AW-Q2') AND status IN ('upheld',"
                                 " 'closed')"),
                   2);
}
END_TEST

/*
 * Comprehensive scoring cancelled mid-scoring: the round's scores
 * (sc:1, scn:1) go with the tender.
 */
START_TEST(a_tender_cancelled_while_scoring_loses_its_scores) {
  pt_register("e1", "evaluator");
  pt_tender d;
  pt_tender_init(&d, "T-SC", 100000000, DEADLINE);
  pt_item(&d, "D1", "DESK", 10, 0, NULL);
  d.t.award_method = GM__PROCUREMENT__AWARD_METHOD__AWARD_SCORING;
  d.t.price_weight_bp = 3000;
  d.evaluators[0] = "e1";
  d.t.n_evaluators = 1;
  pt_publish("city", &d);
  const char *a[] = {"D1=100000"}, *b[] = {"D1=110000"};
  pt_free(pt_bid("alpha", "T-SC", 0, a, 1));
  pt_free(pt_bid("beta", "T-SC", GM__PROCUREMENT__SME_CLASS__SME_SMALL, b, 1));
  pt_clock(DEADLINE);
  ck_assert_str_eq(pt_wait_state("T-SC", "scoring"), "scoring");
  Gm__Procurement__Score sc = GM__PROCUREMENT__SCORE__INIT, *ps[] = {&sc};
  sc.supplier = "alpha";
  sc.score_bp = 5000;
  Gm__Procurement__ScoreRequest q = GM__PROCUREMENT__SCORE_REQUEST__INIT;
  q.tender_id = "T-SC";
  q.scores = ps;
  q.n_scores = 1;
  ProtobufCMessage *r = pt_call("e1", "evaluation.score", &q.base);
  ck_assert_msg(r, "%s", pt_message);
  protobuf_c_message_free_unpacked(r, NULL);
  ck_assert_int_eq(redis_int("EXISTS gm:{procurement:t:%s}:sc:1", "T-SC"), 1);
  ck_assert_int_eq(redis_int("EXISTS gm:{procurement:t:%s}:scn:1", "T-SC"), 1);
  cancel("T-SC");
  pt_ledger_wait(
      "SELECT count(*) FROM procurement_tenders WHERE tender_id ="
      " 'T-SC' AND state = 'cancelled'",
      1);
  pt_clock(pt_now + 2 * PT_DAY + 1000);
  ck_assert_int_eq(wait_gone("T-SC"), 0);
  ck_assert_int_eq(redis_int("ZCARD gm:{procurement:t:%s}:dl", "T-SC"), 0);
  /* The score stays in the ledger. */
  ck_assert_int_eq(pt_ledger_wait("SELECT count(*) FROM"
                                  " procurement_tech_scores WHERE tender_id"
                                  " = 'T-SC'",
                                  1),
                   1);
}
END_TEST

/*
 * The archive removes the keys at once and the ledger learns it when the
 * settler gets there: in between (here the ledger is held locked by a
 * writer, as a busy or restarting settler would leave it), the tender is
 * still answered from the ledger's final state, not "no tender".
 */
START_TEST(a_tender_read_before_the_ledger_marks_it_archived) {
  pt_tender d;
  pt_tender_init(&d, "T-WIN", 10000000, DEADLINE);
  pt_item(&d, "D1", "DESK", 10, 0, NULL);
  pt_publish("city", &d);
  const char *a[] = {"D1=50000"};
  pt_free(pt_bid("alpha", "T-WIN", 0, a, 1));
  cancel("T-WIN");
  pt_ledger_wait(
      "SELECT count(*) FROM procurement_tenders WHERE tender_id ="
      " 'T-WIN' AND state = 'cancelled'",
      1);

  sqlite3 *db;
  ck_assert_int_eq(sqlite3_open(gm_test_gmd_ledger(pt_gmd), &db), SQLITE_OK);
  sqlite3_busy_timeout(db, 5000);
  ck_assert_int_eq(sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL),
                   SQLITE_OK);
  pt_clock(T0 + 2 * PT_DAY + 1000);
  long long left = wait_gone("T-WIN");
  Gm__Procurement__TenderRequest g = GM__PROCUREMENT__TENDER_REQUEST__INIT;
  g.tender_id = "T-WIN";
  Gm__Procurement__TenderView *v = left == 0
                                       ? (Gm__Procurement__TenderView *)pt_call(
                                             "root", "tender.get", &g.base)
                                       : NULL;
  const char *msg = pt_message;
  char got[64];
  snprintf(got, sizeof got, "%s", v ? v->tender->state : "(none)");
  if (v) pt_free(v);
  ck_assert_int_eq(sqlite3_exec(db, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
  sqlite3_close(db);
  ck_assert_int_eq(left, 0);
  ck_assert_msg(!strcmp(got, "cancelled"), "tender.get: %s (%s)", got, msg);
  ck_assert_int_gt(pt_ledger_wait("SELECT archived_ms > 0 FROM"
                                  " procurement_tenders WHERE tender_id ="
                                  " 'T-WIN'",
                                  1),
                   0);
}
END_TEST

/*
 * A draft is not public, and cancelling it does not publish it: a
 * supplier cannot read a cancelled draft's definition (items, budget),
 * before its archive or after; its agency can.
 */
START_TEST(a_cancelled_draft_stays_unpublished) {
  pt_tender d;
  pt_tender_init(&d, "T-DR", 10000000, DEADLINE);
  pt_item(&d, "D1", "DESK", 10, 0, NULL);
  Gm__Procurement__DraftRequest dr = GM__PROCUREMENT__DRAFT_REQUEST__INIT;
  dr.tender = &d.t;
  ProtobufCMessage *r = pt_call("city", "tender.draft", &dr.base);
  ck_assert_msg(r, "%s", pt_message);
  protobuf_c_message_free_unpacked(r, NULL);
  Gm__Procurement__TenderRequest q = GM__PROCUREMENT__TENDER_REQUEST__INIT;
  q.tender_id = "T-DR";
  pt_expect("alpha", "tender.get", &q.base, GM__STATUS__NOT_FOUND,
            "no tender T-DR");
  q.reason = "not needed after all";
  r = pt_call("city", "tender.cancel", &q.base);
  ck_assert_msg(r, "%s", pt_message);
  protobuf_c_message_free_unpacked(r, NULL);
  pt_expect("alpha", "tender.get", &q.base, GM__STATUS__NOT_FOUND,
            "no tender T-DR");
  pt_ledger_wait(
      "SELECT count(*) FROM procurement_tenders WHERE tender_id ="
      " 'T-DR' AND state = 'cancelled'",
      1);
  pt_clock(T0 + 2 * PT_DAY + 1000);
  ck_assert_int_eq(wait_gone("T-DR"), 0);
  pt_ledger_wait(
      "SELECT archived_ms > 0 FROM procurement_tenders"
      " WHERE tender_id = 'T-DR'",
      1);
  pt_expect("alpha", "tender.get", &q.base, GM__STATUS__NOT_FOUND,
            "no tender T-DR");
  Gm__Procurement__TenderListRequest lq =
      GM__PROCUREMENT__TENDER_LIST_REQUEST__INIT;
  Gm__Procurement__TenderList *l =
      (Gm__Procurement__TenderList *)pt_call("alpha", "tender.list", &lq.base);
  ck_assert_msg(l, "%s", pt_message);
  for (size_t i = 0; i < l->n_tenders; i++)
    ck_assert_str_ne(l->tenders[i]->id, "T-DR");
  pt_free(l);
  Gm__Procurement__TenderView *v =
      (Gm__Procurement__TenderView *)pt_call("city", "tender.get", &q.base);
  ck_assert_msg(v, "%s", pt_message);
  ck_assert_str_eq(v->tender->state, "cancelled");
  pt_free(v);
}
END_TEST

/*
 * A tender id names one tender for good: once archived, its id cannot be
 * drafted again (by its agency or another), which would overwrite the
 * archived tender's record in the ledger and mix its bids and OCDS
 * releases with the new one's.
 */
START_TEST(an_archived_tenders_id_is_not_drafted_again) {
  pt_register("town", "agency");
  pt_party("town", PT_USCC_C, GM__PROCUREMENT__SME_CLASS__SME_NONE);
  pt_tender d;
  pt_tender_init(&d, "T-RE", 10000000, DEADLINE);
  pt_item(&d, "D1", "DESK", 10, 0, NULL);
  pt_publish("city", &d);
  cancel("T-RE");
  pt_ledger_wait(
      "SELECT count(*) FROM procurement_tenders WHERE tender_id ="
      " 'T-RE' AND state = 'cancelled'",
      1);
  pt_clock(T0 + 2 * PT_DAY + 1000);
  ck_assert_int_eq(wait_gone("T-RE"), 0);
  pt_ledger_wait(
      "SELECT archived_ms > 0 FROM procurement_tenders"
      " WHERE tender_id = 'T-RE'",
      1);

  pt_tender n;
  pt_tender_init(&n, "T-RE", 20000000, T0 + 30 * PT_DAY);
  pt_item(&n, "D1", "DESK", 20, 0, NULL);
  Gm__Procurement__DraftRequest dr = GM__PROCUREMENT__DRAFT_REQUEST__INIT;
  dr.tender = &n.t;
  pt_expect("town", "tender.draft", &dr.base, GM__STATUS__FAILED_PRECONDITION,
            "archived");
  pt_expect("city", "tender.draft", &dr.base, GM__STATUS__FAILED_PRECONDITION,
            "choose another id");
  ck_assert_int_eq(tender_keys("T-RE"), 0);
  ck_assert_int_eq(pt_ledger_int("SELECT count(*) FROM procurement_tenders"
                                 " WHERE tender_id = 'T-RE' AND lead ="
                                 " 'city' AND state = 'cancelled' AND"
                                 " archived_ms > 0"),
                   1);
}
END_TEST

/* ---- outbox streams retired once settled and idle ---- */

static void setup_retire(void) {
  pt_start("archive_after_days = 2\n[ledger]\noutbox_retire_s = 1", T0);
  pt_register("city", "agency");
  pt_register("alpha", "supplier");
  pt_party("city", PT_USCC_GOV, GM__PROCUREMENT__SME_CLASS__SME_NONE);
  pt_party("alpha", PT_USCC_A, GM__PROCUREMENT__SME_CLASS__SME_NONE);
  pt_category("DESK", GM__PROCUREMENT__POLICY__POLICY_NONE, 0, "", 0);
}

/* The outbox stream of hash tag `tag` (procurement's) exists, is listed in
   gm:outboxes: 2 bits (1 exists, 2 listed). */
static int outbox_state(const char *tag) {
  redisContext *c = gm_test_redis_connect(pt_redis);
  int st = (int)gm_test_redis_int(c, "EXISTS gm:{procurement:%s}:outbox", tag) |
           (int)gm_test_redis_int(
               c, "SISMEMBER gm:outboxes gm:{procurement:%s}:outbox", tag)
               << 1;
  redisFree(c);
  return st;
}

/* Waits (20 s: a sweep every 2.5 s, 1 s idle) until the tag's outbox is
   retired: deleted and out of gm:outboxes. */
static int wait_retired(const char *tag) {
  int st = -1;
  for (int i = 0; i < 400 && (st = outbox_state(tag)) != 0; i++) usleep(50000);
  return st;
}

static long long outbox_added(const char *tag) {
  redisContext *c = gm_test_redis_connect(pt_redis);
  redisReply *r =
      gm_test_redis_cmd(c, "XINFO STREAM gm:{procurement:%s}:outbox", tag);
  long long n = -1;
  for (size_t i = 0; r->type == REDIS_REPLY_ARRAY && i + 1 < r->elements;
       i += 2)
    if (strcmp(r->element[i]->str, "entries-added") == 0)
      n = r->element[i + 1]->integer;
  freeReplyObject(r);
  redisFree(c);
  return n;
}

/*
 * Through a real gmd with [ledger] outbox_retire_s = 1: a party's tag,
 * everything settled and idle, loses its outbox stream (deleted, out of
 * gm:outboxes); the party's next change makes its stream again, listed,
 * with its count of entries going on, and settles.  An archived tender's
 * tag, whose deadlines fired, stays until its last claim is older than
 * the stored replies' lifetime.
 */
START_TEST(settled_idle_outboxes_are_retired_and_made_again) {
  /* alpha's organisation record: its shard's tag. */
  char org[16];
  snprintf(org, sizeof org, "org:%02d", pr_cert_shard("alpha"));
  pt_tender d;
  pt_tender_init(&d, "T-OLD", 10000000, DEADLINE);
  pt_item(&d, "D1", "DESK", 10, 0, NULL);
  pt_publish("city", &d);
  cancel("T-OLD");
  pt_ledger_wait("SELECT count(*) FROM procurement_parties", 2);
  pt_ledger_wait(
      "SELECT count(*) FROM procurement_tenders WHERE tender_id ="
      " 'T-OLD' AND state = 'cancelled'",
      1);
  /* The tender still has its archive deadline: its stream stays. */
  ck_assert_int_eq(outbox_state("t:T-OLD"), 3);
  ck_assert_int_eq(wait_retired(org), 0);
  ck_assert_int_eq(outbox_state("t:T-OLD"), 3);
  pt_clock(T0 + 2 * PT_DAY + 1000);
  ck_assert_int_eq(wait_gone("T-OLD"), 0);
  pt_ledger_wait(
      "SELECT archived_ms > 0 FROM procurement_tenders"
      " WHERE tender_id = 'T-OLD'",
      1);
  /* Its deadlines fired: the claims hash says when it last claimed one. */
  redisContext *cc = gm_test_redis_connect(pt_redis);
  ck_assert_int_eq(
      gm_test_redis_int(cc, "HEXISTS gm:{procurement:t:T-OLD}:dl:claims #t"),
      1);
  redisFree(cc);
  /* Its only firings were the archive's, whose steps store no reply
     (GM_SCRIPT_ALLOW_OOM: they run again on a retry), so no stored reply
     can outlive the hash's '#t' (test_settle's
     claims_go_with_the_stream_once_older_than_stored_replies checks
     that '#t' outlives the replies of firings that store them). */
  long long past = replies_past_claims_ms("T-OLD");
  ck_assert_msg(past == LLONG_MIN,
                "a stored reply of T-OLD's archive firings (%lld ms past "
                "its claims hash's '#t' plus idempotency_ttl)",
                past);

  /* The party changes: its stream is made again and listed, its ids and
     count go on from the retired stream's, and the change settles. */
  redisContext *c = gm_test_redis_connect(pt_redis);
  /* What the retirement kept: the stream was there, and was retired. */
  redisReply *kept =
      gm_test_redis_cmd(c, "GET gm:{procurement:%s}:outbox:retired", org);
  ck_assert_int_eq(kept->type, REDIS_REPLY_STRING);
  long long before = atoll(strchr(kept->str, ' ') + 1);
  ck_assert_int_gt(before, 0);
  freeReplyObject(kept);
  redisFree(c);
  pt_party("alpha", PT_USCC_A, GM__PROCUREMENT__SME_CLASS__SME_SMALL);
  ck_assert_int_eq(outbox_state(org) & 2, 2);
  ck_assert_int_eq(outbox_added(org), before + 1);
  ck_assert_int_eq(pt_ledger_wait("SELECT count(*) FROM procurement_parties"
                                  " WHERE id = 'alpha' AND size = 2",
                                  1),
                   1);
  ck_assert_int_eq(pt_ledger_int("SELECT count(*) FROM gm_dead_letter"), 0);
  /* Settled and idle again: retired again.  The archived tender's tag is
     kept by those sweeps: its last deadline claim is younger than
     [redis] idempotency_ttl plus outbox_retire_s, and a firing counter
     started again could repeat a stored reply's key (test_settle's
     claims_go_with_the_stream_once_older_than_stored_replies takes it
     further). */
  ck_assert_int_eq(wait_retired(org), 0);
  ck_assert_int_eq(outbox_state("t:T-OLD"), 3);
}
END_TEST

/* The sweep looks every second. */
static void setup_sweep(void) {
  pt_start("archive_after_days = 2\narchive_sweep_s = 1", T0);
  pt_register("city", "agency");
  pt_party("city", PT_USCC_GOV, GM__PROCUREMENT__SME_CLASS__SME_NONE);
  pt_category("DESK", GM__PROCUREMENT__POLICY__POLICY_NONE, 0, "", 0);
}

/*
 * A tender that ended before the archive existed has no archive deadline:
 * here one cancelled, its deadline then removed by hand.  The sweep finds
 * it in the ledger (ended, not archived, its last change more than
 * archive_after_days plus a day old), gives it one, and it is archived;
 * not before that day has passed.
 */
START_TEST(a_tender_ended_without_an_archive_deadline_is_swept) {
  pt_tender d;
  pt_tender_init(&d, "T-OLD", 10000000, DEADLINE);
  pt_item(&d, "D1", "DESK", 10, 0, NULL);
  pt_publish("city", &d);
  cancel("T-OLD");
  pt_ledger_wait(
      "SELECT count(*) FROM procurement_tenders WHERE tender_id ="
      " 'T-OLD' AND state = 'cancelled'",
      1);
  ck_assert_int_eq(
      redis_int("ZREM gm:{procurement:t:%s}:dl archive|T-OLD", "T-OLD"), 1);
  ck_assert_int_gt(tender_keys("T-OLD"), 0);
  /* Past its archive_after_days, not yet past the day more: stays. */
  pt_clock(T0 + 2 * PT_DAY + 1000);
  usleep(1500000);
  ck_assert_int_gt(tender_keys("T-OLD"), 0);
  pt_clock(T0 + 3 * PT_DAY + 2000);
  ck_assert_int_eq(wait_gone("T-OLD"), 0);
  ck_assert_int_gt(pt_ledger_wait("SELECT archived_ms > 0 FROM"
                                  " procurement_tenders WHERE tender_id ="
                                  " 'T-OLD'",
                                  1),
                   0);
}
END_TEST

/*
 * A tender whose `rearm` fails by itself (its record is not a hash here,
 * as a damaged or hand-edited key would leave it) does not hold back the
 * ones that ended after it: the sweep logs it and goes on.  Before, the
 * sweep stopped at it every round and started again from it.
 */
START_TEST(a_row_the_sweep_cannot_rearm_holds_back_no_other) {
  const char *ids[] = {"T-BAD", "T-OLD"};
  for (int i = 0; i < 2; i++) {
    pt_clock(T0 + i * 1000);
    pt_tender d;
    pt_tender_init(&d, ids[i], 10000000, DEADLINE);
    pt_item(&d, "D1", "DESK", 10, 0, NULL);
    pt_publish("city", &d);
    cancel(ids[i]);
    char sql[160];
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM procurement_tenders WHERE tender_id ="
             " '%s' AND state = 'cancelled'",
             ids[i]);
    pt_ledger_wait(sql, 1);
    char cmd[96];
    snprintf(cmd, sizeof cmd, "ZREM gm:{procurement:t:%%s}:dl archive|%s",
             ids[i]);
    ck_assert_int_eq(redis_int(cmd, ids[i]), 1);
  }
  redis_int("DEL gm:{procurement:t:%s}:t", "T-BAD");
  redisContext *c = gm_test_redis_connect(pt_redis);
  freeReplyObject(gm_test_redis_cmd(c, "SET gm:{procurement:t:T-BAD}:t x"));
  pt_clock(T0 + 3 * PT_DAY + 3000);
  ck_assert_int_eq(wait_gone("T-OLD"), 0);
  /* The damaged one is left as it was, for the operator. */
  redisReply *r = gm_test_redis_cmd(c, "GET gm:{procurement:t:T-BAD}:t");
  ck_assert_str_eq(r->str, "x");
  freeReplyObject(r);
  redisFree(c);
}
END_TEST

int main(void) {
  Suite *s = suite_create("procurement_archive");
  TCase *tc = tcase_create("archive");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, a_cancelled_tender_loses_its_sealed_bids_then_its_keys);
  tcase_add_test(tc,
                 an_unsuccessful_tender_is_read_from_the_ledger_after_archive);
  tcase_add_test(tc, an_archived_tenders_id_is_not_drafted_again);
  tcase_add_test(tc, the_archive_frees_redis_over_maxmemory);
  tcase_add_test(tc, a_cancelled_draft_stays_unpublished);
  tcase_add_test(tc, a_tender_read_before_the_ledger_marks_it_archived);
  tcase_add_test(tc, a_tender_cancelled_while_scoring_loses_its_scores);
  tcase_add_test(tc, an_awarded_tender_with_challenges_leaves_no_key_behind);
  suite_add_tcase(s, tc);
  TCase *rt = tcase_create("retire");
  tcase_add_checked_fixture(rt, setup_retire, teardown);
  tcase_set_timeout(rt, 120);
  tcase_add_test(rt, settled_idle_outboxes_are_retired_and_made_again);
  suite_add_tcase(s, rt);
  TCase *sw = tcase_create("sweep");
  tcase_add_checked_fixture(sw, setup_sweep, teardown);
  tcase_set_timeout(sw, 120);
  tcase_add_test(sw, a_tender_ended_without_an_archive_deadline_is_swept);
  tcase_add_test(sw, a_row_the_sweep_cannot_rearm_holds_back_no_other);
  suite_add_tcase(s, sw);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
