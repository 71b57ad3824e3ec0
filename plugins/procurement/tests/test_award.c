/*
 * After the evaluation: the award notice and its challenge period counted
 * in working days on the calendar, nothing signed while a challenge is
 * open, challenges dismissed or upheld (re-evaluation, cancellation), the
 * 30-day signing period passing the award to the next bidder, joint tenders
 * with one contract per agency, comprehensive scoring by a committee, and
 * contracts through delivery, acceptance and payment.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <greenmarket/text.h>

#include "harness.h"

#define T0 pt_at(PT_MONDAY, 10, 0)
#define DEADLINE (T0 + 21 * PT_DAY) /* Monday 2026-03-23 10:00 */

static void setup(void) {
  pt_start(NULL, T0);
  pt_register("centre", "certifier");
  pt_register("city", "agency");
  pt_register("district", "agency");
  pt_register("alpha", "supplier");
  pt_register("beta", "supplier");
  pt_register("gamma", "supplier");
  pt_register("e1", "evaluator");
  pt_register("e2", "evaluator");
  pt_party("alpha", PT_USCC_A, GM__PROCUREMENT__SME_CLASS__SME_NONE);
  pt_party("beta", PT_USCC_B, GM__PROCUREMENT__SME_CLASS__SME_MEDIUM);
  pt_party("gamma", PT_USCC_C, GM__PROCUREMENT__SME_CLASS__SME_MEDIUM);
  pt_category("DESK", GM__PROCUREMENT__POLICY__POLICY_NONE, 0, "", 0);
  pt_category("INSUL", GM__PROCUREMENT__POLICY__POLICY_PRIORITY, 1000,
              "gb_insulation", 1);
}

static void teardown(void) {
  pt_stop();
}

/* A one-item tender that alpha (1000.00) and beta (1100.00) bid on. */
static void two_bids(const char *id, int64_t deadline) {
  pt_tender d;
  pt_tender_init(&d, id, 100000000, deadline);
  pt_item(&d, "D1", "DESK", 10, 0, NULL);
  pt_publish("city", &d);
  const char *a[] = {"D1=100000"}, *b[] = {"D1=110000"};
  pt_free(pt_bid("alpha", id, 0, a, 1));
  pt_free(pt_bid("beta", id, GM__PROCUREMENT__SME_CLASS__SME_MEDIUM, b, 1));
  pt_clock(deadline);
  ck_assert_str_eq(pt_wait_state(id, "evaluated"), "evaluated");
}

static Gm__Procurement__Challenge *challenge(const char *who, const char *id) {
  Gm__Procurement__ChallengeRequest q =
      GM__PROCUREMENT__CHALLENGE_REQUEST__INIT;
  q.tender_id = (char *)id;
  q.text = "the winner's delivery terms do not meet item D1";
  return (Gm__Procurement__Challenge *)pt_call(who, "challenge.lodge", &q.base);
}

static Gm__Procurement__Challenge *answer(const char *cid, int upheld,
                                          Gm__Procurement__Remedy r) {
  Gm__Procurement__AnswerRequest q = GM__PROCUREMENT__ANSWER_REQUEST__INIT;
  q.challenge_id = (char *)cid;
  q.upheld = upheld;
  q.remedy = r;
  q.answer = upheld ? "upheld after review" : "the terms meet the tender";
  return (Gm__Procurement__Challenge *)pt_call("city", "challenge.answer",
                                               &q.base);
}

static Gm__Procurement__Contract *contract_op(const char *as, const char *op,
                                              const char *cid, int64_t amount) {
  Gm__Procurement__ContractRequest q = GM__PROCUREMENT__CONTRACT_REQUEST__INIT;
  char method[32];
  q.contract_id = (char *)cid;
  q.amount = amount;
  q.reference = "BG-2026-001";
  snprintf(method, sizeof method, "contract.%s", op);
  return (Gm__Procurement__Contract *)pt_call(as, method, &q.base);
}

static void sign_ok(const char *as, const char *cid) {
  Gm__Procurement__Contract *k = contract_op(as, "sign", cid, 0);
  ck_assert_msg(k, "%s signs %s: %s", as, cid, pt_message);
  pt_free(k);
}

/* The only challenge of `tender` as challenge.list shows it to `as` (free
   with pt_free on the list returned in *list). */
static const Gm__Procurement__Challenge *listed(
    const char *as, const char *tender, Gm__Procurement__ChallengeList **list) {
  Gm__Procurement__ChallengeListRequest q =
      GM__PROCUREMENT__CHALLENGE_LIST_REQUEST__INIT;
  q.tender_id = (char *)tender;
  *list =
      (Gm__Procurement__ChallengeList *)pt_call(as, "challenge.list", &q.base);
  ck_assert_msg(*list, "challenge.list %s: %s", tender, pt_message);
  ck_assert_int_eq((*list)->n_challenges, 1);
  return (*list)->challenges[0];
}

/* challenge.list of `tender` with `limit` and `cursor`: refused as
   INVALID_ARGUMENT with `why` in the message. */
static void list_refused(const char *tender, int limit, const char *cursor,
                         const char *why) {
  Gm__Procurement__ChallengeListRequest q =
      GM__PROCUREMENT__CHALLENGE_LIST_REQUEST__INIT;
  q.tender_id = (char *)tender;
  q.limit = limit;
  q.cursor = (char *)cursor;
  ProtobufCMessage *m = pt_call("city", "challenge.list", &q.base);
  ck_assert_msg(!m, "limit %d cursor \"%s\" accepted", limit, cursor);
  ck_assert_int_eq(pt_status, GM__STATUS__INVALID_ARGUMENT);
  ck_assert_msg(strstr(pt_message, why), "%s", pt_message);
  /* Echoing the cursor (cut at 20 bytes) leaves the message UTF-8. */
  size_t n, len = strlen(pt_message);
  for (size_t i = 0; i < len; i += n)
    ck_assert_msg(
        gm_utf8_decode((const unsigned char *)pt_message + i, len - i, &n) >= 0,
        "not UTF-8 at byte %zu: %s", i, pt_message);
}

static long long answer_due(const char *cid) {
  redisContext *c = gm_test_redis_connect(pt_redis);
  char tender[64];
  snprintf(tender, sizeof tender, "%.*s", (int)(strrchr(cid, '-') - cid), cid);
  redisReply *r = gm_test_redis_cmd(
      c, "ZSCORE gm:{procurement:t:%s}:dl answer|%s", tender, cid);
  long long due =
      r->type == REDIS_REPLY_STRING ? strtoll(r->str, NULL, 10) : -1;
  freeReplyObject(r);
  redisFree(c);
  return due;
}

/*
 * The challenge period is 7 working days after the notice day (Monday 23
 * March), on the calendar: with Thursday 26 and Friday 27 March holidays
 * and Saturday 28 worked, it ends with Thursday 2 April (without the
 * calendar: Wednesday 1 April).  beta challenges; nothing is signed until
 * the agency answers; the dismissal gives back the days the challenge held
 * the signing period; then signature, delivery, acceptance, payment.
 */
START_TEST(a_challenge_holds_the_signature_until_it_is_answered) {
  pt_calendar_put(
      3, (const char *const[]){"2026-03-26=holiday", "2026-03-27=holiday",
                               "2026-03-28=working"});

  two_bids("T-CH", DEADLINE);
  Gm__Procurement__Award *aw = pt_award("city", "T-CH");
  ck_assert_str_eq(aw->supplier, "alpha");
  ck_assert_int_eq(aw->challenge_until_ms,
                   pt_at("2026-04-03", 0, 0) - 1); /* end of 2 April */
  ck_assert_int_eq(aw->sign_until_ms, pt_at("2026-04-23", 0, 0) - 1);
  ck_assert_int_eq(aw->n_contracts, 1);
  char cid[64];
  snprintf(cid, sizeof cid, "%s", aw->contracts[0]);
  ck_assert_str_eq(cid, "T-CH-A1-1");
  int64_t sgu = aw->sign_until_ms;
  pt_free(aw);

  /* Too early to sign: the challenge period runs. */
  Gm__Procurement__ContractRequest kq = GM__PROCUREMENT__CONTRACT_REQUEST__INIT;
  kq.contract_id = cid;
  pt_expect("city", "contract.sign", &kq.base, GM__STATUS__FAILED_PRECONDITION,
            "may challenge the award until 2026-04-02 23:59");
  /* Only a bidder other than the winner challenges. */
  ck_assert_ptr_null(challenge("gamma", "T-CH"));
  ck_assert_int_eq(pt_status, GM__STATUS__PERMISSION_DENIED);
  ck_assert_ptr_null(challenge("alpha", "T-CH"));
  ck_assert_int_eq(pt_status, GM__STATUS__FAILED_PRECONDITION);
  /* Grounds too long or empty are named as the challenge's text (the
     user typed no "text"). */
  static char longer[4002];
  memset(longer, 'x', sizeof longer - 1);
  Gm__Procurement__ChallengeRequest lq =
      GM__PROCUREMENT__CHALLENGE_REQUEST__INIT;
  lq.tender_id = "T-CH";
  lq.text = longer;
  pt_expect("beta", "challenge.lodge", &lq.base, GM__STATUS__INVALID_ARGUMENT,
            "the challenge's grounds are 4001 bytes; keep them to 4000");
  lq.text = "";
  pt_expect("beta", "challenge.lodge", &lq.base, GM__STATUS__INVALID_ARGUMENT,
            "the challenge's grounds are empty");
  pt_clock(pt_at("2026-03-30", 9, 0));
  Gm__Procurement__Challenge *c = challenge("beta", "T-CH");
  ck_assert_msg(c, "%s", pt_message);
  ck_assert_str_eq(c->id, "T-CH-Q1");
  ck_assert_str_eq(c->status, "open");
  pt_free(c);

  /* After the period, still nothing is signed while it is open. */
  pt_clock(pt_at("2026-04-03", 9, 0));
  pt_expect("alpha", "contract.sign", &kq.base, GM__STATUS__FAILED_PRECONDITION,
            "a challenge");
  ck_assert_ptr_null(challenge("beta", "T-CH"));
  ck_assert_int_eq(pt_status, GM__STATUS__FAILED_PRECONDITION);
  ck_assert_msg(strstr(pt_message, "ended at 2026-04-02 23:59"), "%s",
                pt_message);
  /* The answer goes to the challenger, the agency and the other supplier
     whose bid was opened (GP Law art. 53: "the other suppliers
     concerned"), on their private feeds; not to the public feed, where
     the next public event comes with no answer before it. */
  gm_feed *pub = pt_feed("gamma", "procurement.");
  gm_feed *winner = pt_feed("alpha", "@p:alpha procurement.challenge");
  pt_feed_warm(pub, "DESK");
  /* Dismissed four days after it was lodged: four days more to sign. */
  c = answer("T-CH-Q1", 0, GM__PROCUREMENT__REMEDY__REMEDY_NONE);
  ck_assert_msg(c, "%s", pt_message);
  ck_assert_int_eq(
      pt_feed_until(winner, 5000, "the terms meet the tender", NULL), 1);
  pt_tender end;
  pt_tender_init(&end, "T-CH-END", 10000000, pt_now + 40 * PT_DAY);
  pt_item(&end, "D1", "DESK", 10, 0, NULL);
  pt_publish("city", &end);
  ck_assert_int_eq(
      pt_feed_until(pub, 5000, "T-CH-END", "the terms meet the tender"), 1);
  gm_feed_destroy(&pub);
  gm_feed_destroy(&winner);
  ck_assert_str_eq(c->status, "dismissed");
  ck_assert_int_eq(c->overdue_ms, 0);
  ck_assert(!c->overdue);
  pt_free(c);
  /* Answered in time: its answer deadline is gone. */
  ck_assert_int_eq(answer_due("T-CH-Q1"), -1);
  Gm__Procurement__AwardRequest ar = GM__PROCUREMENT__AWARD_REQUEST__INIT;
  ar.tender_id = "T-CH";
  aw = (Gm__Procurement__Award *)pt_call("beta", "award.get", &ar.base);
  ck_assert_msg(aw, "%s", pt_message);
  ck_assert_int_eq(aw->sign_until_ms, sgu + 4 * PT_DAY);
  pt_free(aw);
  /* The ledger, the book of record, says so too. */
  char sql[160];
  snprintf(sql, sizeof sql,
           "SELECT count(*) FROM procurement_awards WHERE tender_id = 'T-CH'"
           " AND sign_until_ms = %lld",
           (long long)(sgu + 4 * PT_DAY));
  ck_assert_int_eq(pt_ledger_wait(sql, 1), 1);

  sign_ok("alpha", cid);
  sign_ok("city", cid);
  ck_assert_str_eq(pt_wait_state("T-CH", "contracted"), "contracted");
  /* Payment follows the acceptance of the delivery: before it, a payment
     is refused, saying what to do, and changes nothing. */
  char key[80];
  snprintf(key, sizeof key, "k:%s", cid);
  char *kbefore = pt_hashes("T-CH", key);
  ck_assert_ptr_null(contract_op("city", "pay", cid, 400000));
  ck_assert_int_eq(pt_status, GM__STATUS__FAILED_PRECONDITION);
  ck_assert_msg(strstr(pt_message,
                       "contract T-CH-A1-1 is not accepted yet: "
                       "nothing was delivered; payment follows the "
                       "acceptance of the delivery: the supplier, "
                       "alpha, records the delivery first (gm "
                       "procurement deliver T-CH-A1-1)"),
                "%s", pt_message);
  pt_unchanged("T-CH", key, kbefore);
  Gm__Procurement__Contract *k = contract_op("alpha", "deliver", cid, 0);
  ck_assert_msg(k, "%s", pt_message);
  pt_free(k);
  kbefore = pt_hashes("T-CH", key);
  ck_assert_ptr_null(contract_op("city", "pay", cid, 400000));
  ck_assert_int_eq(pt_status, GM__STATUS__FAILED_PRECONDITION);
  ck_assert_msg(strstr(pt_message,
                       "is not accepted yet: its delivery awaits your "
                       "acceptance; payment follows the acceptance of the "
                       "delivery: accept it first (gm procurement accept "
                       "T-CH-A1-1), then pay"),
                "%s", pt_message);
  pt_unchanged("T-CH", key, kbefore);
  k = contract_op("city", "accept", cid, 0);
  ck_assert_msg(k && !strcmp(k->status, "active"), "%s", pt_message);
  ck_assert_int_eq(k->paid, 0);
  pt_free(k);
  ck_assert_ptr_null(contract_op("city", "pay", cid, 2000000));
  ck_assert_int_eq(pt_status, GM__STATUS__INVALID_ARGUMENT); /* > value */
  /* Accepted: paid in parts, the last closes it. */
  k = contract_op("city", "pay", cid, 400000);
  ck_assert_msg(k && k->paid == 400000, "%s", pt_message);
  ck_assert_str_eq(k->status, "active");
  pt_free(k);
  k = contract_op("city", "pay", cid, 600000);
  ck_assert_msg(k, "%s", pt_message);
  ck_assert_str_eq(k->status, "terminated");
  pt_free(k);
  ck_assert_str_eq(pt_wait_state("T-CH", "complete"), "complete");
  /* Complete: it leaves Redis archive_after_days (30) later. */
  {
    redisContext *rc = gm_test_redis_connect(pt_redis);
    redisReply *due =
        gm_test_redis_cmd(rc, "ZSCORE gm:{procurement:t:T-CH}:dl archive|T-CH");
    ck_assert_int_eq(due->type, REDIS_REPLY_STRING);
    ck_assert_int_eq(strtoll(due->str, NULL, 10), pt_now + 30 * PT_DAY);
    freeReplyObject(due);
    redisFree(rc);
  }
  ck_assert_int_eq(pt_ledger_wait("SELECT count(*) FROM procurement_payments"
                                  " WHERE contract_id = 'T-CH-A1-1'",
                                  2),
                   2);
  ck_assert_int_eq(pt_ledger_wait("SELECT paid FROM procurement_contracts"
                                  " WHERE status = 'terminated'",
                                  1000000),
                   1000000);
  ck_assert_int_eq(pt_ledger_int("SELECT count(*) FROM procurement_challenges"
                                 " WHERE status = 'dismissed'"),
                   1);
}
END_TEST

/* The kinds calendar.get lists from `from` for `n` days, "date=kind ...". */
static void calendar_text(const char *from, int n, char *out, size_t len) {
  Gm__Procurement__CalendarRequest q = GM__PROCUREMENT__CALENDAR_REQUEST__INIT;
  q.from = (char *)from;
  q.days_ahead = n;
  Gm__Procurement__Calendar *c =
      (Gm__Procurement__Calendar *)pt_call("beta", "calendar.get", &q.base);
  ck_assert_msg(c, "%s", pt_message);
  out[0] = '\0';
  for (size_t i = 0; i < c->n_days; i++)
    snprintf(out + strlen(out), len - strlen(out), "%s%s=%s", i ? " " : "",
             c->days[i]->date, c->days[i]->kind);
  /* Then each note's first 8 bytes ("2027: th"), after a '|'. */
  for (size_t i = 0; i < c->n_notes; i++)
    snprintf(out + strlen(out), len - strlen(out), "|%.8s", c->notes[i]);
  pt_free(c);
}

/*
 * The state's holidays ship with the plugin (calendar.csv): National Day
 * 2026 is there without the certifier entering it, and the certifier's
 * own entry for a day wins, "normal" included.
 */
START_TEST(the_shipped_calendar_counts_unless_the_certifier_says_otherwise) {
  char got[512];
  calendar_text("2026-10-01", 10, got, sizeof got);
  ck_assert_str_eq(got,
                   "2026-10-01=holiday 2026-10-02=holiday "
                   "2026-10-05=holiday 2026-10-06=holiday "
                   "2026-10-07=holiday 2026-10-10=working");
  pt_calendar_put(1, (const char *const[]){"2026-10-07=normal"});
  calendar_text("2026-10-01", 10, got, sizeof got);
  ck_assert_str_eq(got,
                   "2026-10-01=holiday 2026-10-02=holiday "
                   "2026-10-05=holiday 2026-10-06=holiday "
                   "2026-10-10=working");
}
END_TEST

/*
 * A year the shipped calendar holds only in part (2027: the law's
 * holidays, not the State Council's arrangement) or not at all (2029) is
 * named in the listing's notes, until the certifier enters days of it.
 */
START_TEST(the_listing_names_years_the_shipped_calendar_lacks) {
  char got[512];
  calendar_text("2026-12-25", 14, got, sizeof got);
  ck_assert_str_eq(got, "2027-01-01=holiday|2027: th");
  Gm__Procurement__CalendarRequest q = GM__PROCUREMENT__CALENDAR_REQUEST__INIT;
  q.from = "2027-02-01";
  q.days_ahead = 10;
  Gm__Procurement__Calendar *c =
      (Gm__Procurement__Calendar *)pt_call("beta", "calendar.get", &q.base);
  ck_assert_msg(c, "%s", pt_message);
  ck_assert_uint_eq(c->n_notes, 1);
  ck_assert_msg(strstr(c->notes[0], "only the holidays the law fixes") &&
                    strstr(c->notes[0], "arrangement for 2027") &&
                    strstr(c->notes[0], "gm procurement import calendar"),
                "%s", c->notes[0]);
  pt_free(c);
  calendar_text("2026-03-01", 31, got, sizeof got);
  ck_assert_ptr_null(strchr(got, '|')); /* 2026 is the state's */
  calendar_text("2029-03-01", 10, got, sizeof got);
  ck_assert_str_eq(got, "|2029: th");
  /* The certifier enters a day of 2029: a range holding it has no note,
     one without it still has. */
  pt_calendar_put(1, (const char *const[]){"2029-03-05=holiday"});
  calendar_text("2029-03-01", 10, got, sizeof got);
  ck_assert_str_eq(got, "2029-03-05=holiday");
  calendar_text("2029-04-01", 10, got, sizeof got);
  ck_assert_str_eq(got, "|2029: th");
  calendar_text("2028-12-30", 5, got, sizeof got);
  ck_assert_str_eq(got, "|2028: th|2029: th");
}
END_TEST

/*
 * The agency answers a challenge within 7 working days (GP Law art. 53):
 * lodged Tuesday 24 March, due by the end of Thursday 2 April.  Unanswered
 * then, it is marked overdue (the ledger, the challenge) and stays open;
 * the challenger may complain to the finance department for 15 working
 * days more (art. 55: until the end of 24 April, Monday 6 April being
 * Qingming on the shipped calendar), which is recorded.  A
 * late answer still counts.
 */
START_TEST(an_unanswered_challenge_becomes_overdue) {
  two_bids("T-OD", DEADLINE);
  pt_free(pt_award("city", "T-OD"));
  pt_clock(pt_at("2026-03-24", 9, 0));
  Gm__Procurement__Challenge *c = challenge("beta", "T-OD");
  ck_assert_msg(c, "%s", pt_message);
  int64_t due = pt_at("2026-04-03", 0, 0) - 1;
  ck_assert_int_eq(c->answer_due_ms, due);
  ck_assert_int_eq(c->complaint_until_ms, pt_at("2026-04-25", 0, 0) - 1);
  ck_assert_int_eq(c->overdue_ms, 0);
  pt_free(c);
  ck_assert_int_eq(answer_due("T-OD-Q1"), due + 1);
  /* challenge.list (read from the ledger) shows both periods, to the
     agency and to the challenger. */
  ck_assert_int_eq(pt_ledger_wait("SELECT count(*) FROM procurement_challenges"
                                  " WHERE challenge_id = 'T-OD-Q1'",
                                  1),
                   1);
  Gm__Procurement__ChallengeList *l;
  const char *const viewers[] = {"city", "beta"};
  for (int i = 0; i < 2; i++) {
    const Gm__Procurement__Challenge *lc = listed(viewers[i], "T-OD", &l);
    ck_assert_int_eq(lc->answer_due_ms, due);
    ck_assert_int_eq(lc->complaint_until_ms, pt_at("2026-04-25", 0, 0) - 1);
    ck_assert_int_eq(lc->overdue_ms, 0);
    ck_assert(!lc->overdue);
    pt_free(l);
  }

  pt_clock(due + 1);
  char sql[200];
  snprintf(sql, sizeof sql,
           "SELECT overdue_ms FROM procurement_challenges WHERE"
           " challenge_id = 'T-OD-Q1' AND status = 'open' AND"
           " complaint_until_ms = %lld",
           (long long)(pt_at("2026-04-25", 0, 0) - 1));
  ck_assert_int_eq(pt_ledger_wait(sql, due + 1), due + 1);
  const Gm__Procurement__Challenge *lc = listed("beta", "T-OD", &l);
  ck_assert_str_eq(lc->status, "open");
  ck_assert(lc->overdue);
  ck_assert_int_eq(lc->overdue_ms, due + 1);
  ck_assert_int_eq(lc->answer_due_ms, due);
  pt_free(l);
  /* Still open: nothing is signed, and a late answer is taken. */
  c = answer("T-OD-Q1", 0, GM__PROCUREMENT__REMEDY__REMEDY_NONE);
  ck_assert_msg(c, "%s", pt_message);
  ck_assert_str_eq(c->status, "dismissed");
  ck_assert_int_eq(c->overdue_ms, due + 1);
  pt_free(c);
  ck_assert_int_eq(pt_ledger_wait("SELECT count(*) FROM procurement_challenges"
                                  " WHERE challenge_id = 'T-OD-Q1' AND"
                                  " status = 'dismissed' AND overdue_ms > 0",
                                  1),
                   1);
  /* Answered, but late: still overdue in the list. */
  lc = listed("city", "T-OD", &l);
  ck_assert_str_eq(lc->status, "dismissed");
  ck_assert(lc->overdue);
  ck_assert_int_eq(lc->complaint_until_ms, pt_at("2026-04-25", 0, 0) - 1);
  pt_free(l);
  /* Paging the list: hostile limits and cursors are refused. */
  list_refused("T-OD", -1, "", "limit must be 1-1000");
  list_refused("T-OD", 1001, "", "limit must be 1-1000");
  list_refused("T-OD", INT32_MIN, "", "limit must be 1-1000");
  list_refused("T-OD", 1, "-1", "is not one a list returned");
  list_refused("T-OD", 1, "abc", "is not one a list returned");
  list_refused("T-OD", 1, "1x", "is not one a list returned");
  list_refused("T-OD", 1, "1000000000001", "is not one a list returned");
  list_refused("T-OD", 1, "99999999999999999999999", "is not one a list");
  list_refused("T-OD", 1,
               "\xe4\xb8\xad\xe4\xb8\xad\xe4\xb8\xad\xe4\xb8\xad"
               "\xe4\xb8\xad\xe4\xb8\xad\xe4\xb8\xad",
               "is not one a list returned");
  /* A cursor past the end: an empty page, no next one. */
  Gm__Procurement__ChallengeListRequest q =
      GM__PROCUREMENT__CHALLENGE_LIST_REQUEST__INIT;
  q.tender_id = "T-OD";
  q.limit = 1;
  q.cursor = "5";
  l = (Gm__Procurement__ChallengeList *)pt_call("city", "challenge.list",
                                                &q.base);
  ck_assert_msg(l, "%s", pt_message);
  ck_assert_uint_eq(l->n_challenges, 0);
  ck_assert_str_eq(l->next_cursor, "");
  pt_free(l);
}
END_TEST

/*
 * beta's certificate was suspended when the bids opened, so alpha won.
 * The certifier reinstates it and beta challenges: upheld with a
 * re-evaluation, round 2 gives beta its deduction and the award.  A second
 * tender's challenge is upheld with a cancellation.
 */
START_TEST(an_upheld_challenge_reevaluates_or_cancels) {
  int64_t from = T0 - PT_DAY, to = T0 + 365 * PT_DAY;
  pt_cert("GB-B", PT_USCC_B, "INSUL", "gb_insulation", 2, from, to);
  pt_cert_status("GB-B", GM__PROCUREMENT__CERT_STATUS__CERT_SUSPENDED,
                 "inspection pending");
  pt_tender d;
  pt_tender_init(&d, "T-RE", 100000000, DEADLINE);
  pt_item(&d, "I1", "INSUL", 10, 0, NULL);
  pt_publish("city", &d);
  const char *a[] = {"I1=100000"}, *b[] = {"I1=105000@GB-B"};
  pt_free(pt_bid("alpha", "T-RE", 0, a, 1));
  pt_free(pt_bid("beta", "T-RE", GM__PROCUREMENT__SME_CLASS__SME_MEDIUM, b, 1));
  pt_clock(DEADLINE);
  ck_assert_str_eq(pt_wait_state("T-RE", "evaluated"), "evaluated");
  Gm__Procurement__Award *aw = pt_award("city", "T-RE");
  ck_assert_str_eq(aw->supplier, "alpha");
  pt_free(aw);
  pt_cert_status("GB-B", GM__PROCUREMENT__CERT_STATUS__CERT_VALID, "");
  Gm__Procurement__Challenge *c = challenge("beta", "T-RE");
  ck_assert_msg(c, "%s", pt_message);
  pt_free(c);
  c = answer("T-RE-Q1", 1, GM__PROCUREMENT__REMEDY__REMEDY_REEVALUATE);
  ck_assert_msg(c, "%s", pt_message);
  ck_assert_str_eq(c->status, "upheld");
  pt_free(c);
  ck_assert_str_eq(pt_wait_state("T-RE", "evaluated"), "evaluated");
  Gm__Procurement__TenderView *v = pt_tender_get("T-RE");
  ck_assert_int_eq(v->tender->round, 2);
  ck_assert_int_eq(v->tender->award_number, 0);
  pt_free(v);
  /* Redis holds round 2: the sheet is round 2's or UNAVAILABLE until it
     settles (pt_sheet retries), never round 1's. */
  Gm__Procurement__Sheet *s = pt_sheet("T-RE");
  ck_assert_int_eq(s->round, 2);
  ck_assert_int_eq(pt_row(s, "beta")->green_deduction, 105000);
  ck_assert_int_eq(pt_row(s, "beta")->rank, 1);
  pt_free(s);
  ck_assert_int_eq(
      pt_ledger_wait("SELECT count(*) FROM procurement_awards WHERE"
                     " tender_id = 'T-RE' AND status = 'cancelled'",
                     1),
      1);
  aw = pt_award("city", "T-RE");
  ck_assert_str_eq(aw->supplier, "beta");
  /* A new award of its own: alpha's cancelled award 1 and its contract
     stay in the ledger as they were. */
  ck_assert_int_eq(aw->number, 2);
  ck_assert_str_eq(aw->contracts[0], "T-RE-A2-1");
  pt_free(aw);
  ck_assert_int_eq(
      pt_ledger_wait("SELECT count(*) FROM procurement_awards WHERE"
                     " tender_id = 'T-RE'",
                     2),
      2);
  ck_assert_int_eq(
      pt_ledger_wait("SELECT count(*) FROM procurement_awards WHERE"
                     " tender_id = 'T-RE' AND award = 1 AND supplier = 'alpha'"
                     " AND status = 'cancelled'",
                     1),
      1);
  ck_assert_int_eq(
      pt_ledger_wait("SELECT count(*) FROM procurement_contracts WHERE"
                     " contract_id = 'T-RE-A1-1' AND supplier = 'alpha' AND"
                     " status = 'cancelled'",
                     1),
      1);
  /* The award in force passes on from its own rank: beta was first in
     round 2, so the next one is alpha. */
  Gm__Procurement__AwardRequest ar = GM__PROCUREMENT__AWARD_REQUEST__INIT;
  ar.tender_id = "T-RE";
  aw = (Gm__Procurement__Award *)pt_call("city", "award.get", &ar.base);
  ck_assert_msg(aw, "%s", pt_message);
  int64_t sgu = aw->sign_until_ms;
  pt_free(aw);
  pt_clock(sgu + 1);
  for (int i = 0; i < 500; i++) {
    v = pt_tender_get("T-RE");
    int n = v->tender->award_number;
    pt_free(v);
    if (n == 3) break;
    nanosleep(&(struct timespec){0, 10000000}, NULL);
  }
  aw = (Gm__Procurement__Award *)pt_call("city", "award.get", &ar.base);
  ck_assert_msg(aw, "%s", pt_message);
  ck_assert_int_eq(aw->number, 3);
  ck_assert_str_eq(aw->supplier, "alpha");
  pt_free(aw);

  two_bids("T-CX", pt_now + 21 * PT_DAY);
  pt_free(pt_award("city", "T-CX"));
  c = challenge("beta", "T-CX");
  ck_assert_msg(c, "%s", pt_message);
  pt_free(c);
  c = answer("T-CX-Q1", 1, GM__PROCUREMENT__REMEDY__REMEDY_CANCEL);
  ck_assert_msg(c, "%s", pt_message);
  pt_free(c);
  ck_assert_str_eq(pt_wait_state("T-CX", "cancelled"), "cancelled");
  /* Cancelled: the refusal says it ended, not to wait for an evaluation. */
  ar.tender_id = "T-CX";
  pt_expect("city", "tender.award", &ar.base, GM__STATUS__FAILED_PRECONDITION,
            "tender T-CX is cancelled; it has ended: there is nothing to "
            "award");
}
END_TEST

/*
 * Nobody signs within 30 days of the notice: the award passes to beta,
 * with a notice of its own; when beta does not sign either and nobody is
 * left, the tender is unsuccessful.
 */
START_TEST(an_award_not_signed_in_30_days_passes_to_the_next_bidder) {
  two_bids("T-30", DEADLINE);
  Gm__Procurement__Award *aw = pt_award("city", "T-30");
  int64_t sgu = aw->sign_until_ms;
  pt_free(aw);
  /* At the last ms of the signing period it may still be signed: nothing
     passes on, and the deadline is still there for the next ms (give the
     poller, every 20 ms, time to look). */
  pt_clock(sgu);
  nanosleep(&(struct timespec){0, 300000000}, NULL);
  Gm__Procurement__TenderView *v = pt_tender_get("T-30");
  ck_assert_int_eq(v->tender->award_number, 1);
  pt_free(v);
  pt_clock(sgu + 1);
  Gm__Procurement__AwardRequest ar = GM__PROCUREMENT__AWARD_REQUEST__INIT;
  ar.tender_id = "T-30";
  for (int i = 0; i < 500; i++) {
    v = pt_tender_get("T-30");
    int n = v->tender->award_number;
    pt_free(v);
    if (n == 2) break;
    nanosleep(&(struct timespec){0, 10000000}, NULL);
  }
  aw = (Gm__Procurement__Award *)pt_call("city", "award.get", &ar.base);
  ck_assert_msg(aw, "%s", pt_message);
  ck_assert_int_eq(aw->number, 2);
  ck_assert_str_eq(aw->supplier, "beta");
  ck_assert_int_eq(aw->value, 1100000);
  ck_assert_int_eq(aw->notice_ms, sgu + 1);
  ck_assert_str_eq(aw->contracts[0], "T-30-A2-1");
  int64_t sgu2 = aw->sign_until_ms;
  pt_free(aw);
  ck_assert_int_eq(
      pt_ledger_wait("SELECT count(*) FROM procurement_contracts WHERE"
                     " contract_id = 'T-30-A1-1' AND status = 'cancelled'",
                     1),
      1);
  /* alpha's contract is gone for good. */
  Gm__Procurement__ContractRequest kq = GM__PROCUREMENT__CONTRACT_REQUEST__INIT;
  kq.contract_id = "T-30-A1-1";
  pt_clock(sgu2 - PT_DAY);
  pt_expect("alpha", "contract.sign", &kq.base, GM__STATUS__FAILED_PRECONDITION,
            "cancelled");
  pt_clock(sgu2 + 1);
  ck_assert_str_eq(pt_wait_state("T-30", "unsuccessful"), "unsuccessful");
}
END_TEST

/*
 * A joint purchase: city drafts with district as a joint buyer, district
 * adds its demand, one winner signs one contract per agency for that
 * agency's items.
 */
START_TEST(a_joint_tender_gives_one_contract_per_agency) {
  pt_tender d;
  pt_tender_init(&d, "T-JOINT", 100000000, DEADLINE);
  d.buyers[0] = "district";
  d.t.n_buyers = 1;
  pt_item(&d, "C1", "DESK", 10, 0, NULL);
  pt_item(&d, "C2", "DESK", 5, 0, NULL);
  pt_draft("city", &d);
  Gm__Procurement__Item it, *pit = pt_new_item(&it, "K1", NULL, 20, 0, NULL);
  Gm__Procurement__DemandRequest dq = pt_demand_request("T-JOINT", &pit, 1);
  pt_expect("gamma", "tender.demand", &dq.base, GM__STATUS__PERMISSION_DENIED,
            "agency");
  pt_demand("district", "T-JOINT", &pit, 1);
  pt_publish_draft("city", "T-JOINT");
  Gm__Procurement__TenderView *v = pt_tender_get("T-JOINT");
  ck_assert_msg(v, "%s", pt_message);
  ck_assert_int_eq(v->tender->n_items, 3);
  ck_assert_str_eq(v->tender->items[2]->buyer, "district");
  pt_free(v);

  const char *a[] = {"C1=1000", "C2=2000", "K1=3000"};
  pt_free(pt_bid("alpha", "T-JOINT", 0, a, 3));
  pt_clock(DEADLINE);
  ck_assert_str_eq(pt_wait_state("T-JOINT", "evaluated"), "evaluated");
  /* A score on a tender awarded by the lowest price says that, not "after
     the opening". */
  Gm__Procurement__Score sc = GM__PROCUREMENT__SCORE__INIT, *psc = &sc;
  Gm__Procurement__ScoreRequest sq = GM__PROCUREMENT__SCORE_REQUEST__INIT;
  sq.tender_id = "T-JOINT";
  sq.scores = &psc;
  sq.n_scores = 1;
  sc.supplier = "alpha";
  sc.score_bp = 5000;
  pt_expect("e1", "evaluation.score", &sq.base, GM__STATUS__FAILED_PRECONDITION,
            "tender T-JOINT is evaluated; it has no committee: its bids are "
            "ranked by the lowest evaluated price");
  Gm__Procurement__Award *aw = pt_award("city", "T-JOINT");
  ck_assert_int_eq(aw->value, 10 * 1000 + 5 * 2000 + 20 * 3000);
  ck_assert_int_eq(aw->n_contracts, 2);
  pt_free(aw);
  pt_clock(pt_at("2026-04-02", 10, 0)); /* after the challenge period */
  Gm__Procurement__Contract *k =
      contract_op("district", "get", "T-JOINT-A1-2", 0);
  ck_assert_msg(k, "%s", pt_message);
  ck_assert_str_eq(k->agency, "district");
  ck_assert_int_eq(k->value, 60000);
  ck_assert_int_eq(k->n_items, 1);
  ck_assert_str_eq(k->items[0], "K1");
  pt_free(k);
  /* Each agency signs its own contract only. */
  Gm__Procurement__ContractRequest kq = GM__PROCUREMENT__CONTRACT_REQUEST__INIT;
  kq.contract_id = "T-JOINT-A1-1";
  pt_expect("district", "contract.sign", &kq.base,
            GM__STATUS__PERMISSION_DENIED, "only they sign it");
  /* A refused text is named as the step's option, not "reference". */
  kq.reference = "BG\n1";
  pt_expect("city", "contract.sign", &kq.base, GM__STATUS__INVALID_ARGUMENT,
            "the bond reference (--bond-ref) contains the control character "
            "U+000A");
  kq.reference = "late\x1b";
  pt_expect("alpha", "contract.deliver", &kq.base, GM__STATUS__INVALID_ARGUMENT,
            "the delivery note (--note) contains the control character");
  kq.reference = "";
  kq.rejected = 1;
  pt_expect("city", "contract.accept", &kq.base, GM__STATUS__INVALID_ARGUMENT,
            "gm procurement accept T-JOINT-A1-1 --reject REASON");
  kq.rejected = 0;
  kq.amount = PR_MAX_AMOUNT + 1;
  pt_expect("city", "contract.pay", &kq.base, GM__STATUS__INVALID_ARGUMENT,
            "a payment is 0.01 to 10000000000000.00 in the contract");
  kq.amount = 0;
  sign_ok("city", "T-JOINT-A1-1");
  sign_ok("alpha", "T-JOINT-A1-1");
  ck_assert_str_eq(pt_wait_state("T-JOINT", "awarded"), "awarded");
  sign_ok("district", "T-JOINT-A1-2");
  sign_ok("alpha", "T-JOINT-A1-2");
  ck_assert_str_eq(pt_wait_state("T-JOINT", "contracted"), "contracted");
  ck_assert_int_eq(
      pt_ledger_wait("SELECT count(*) FROM procurement_contracts WHERE"
                     " tender_id = 'T-JOINT' AND status = 'active'",
                     2),
      2);
  ck_assert_int_eq(pt_ledger_int("SELECT value FROM procurement_contracts"
                                 " WHERE agency = 'city'"),
                   20000);
}
END_TEST

/*
 * Comprehensive scoring with a committee of two: price score = lowest
 * evaluated price / this one x 30 points; beta's price is higher but its
 * other criteria score 15 points more, and it ranks first.
 */
START_TEST(comprehensive_scoring_ranks_by_total) {
  pt_tender d;
  pt_tender_init(&d, "T-SC", 100000000, DEADLINE);
  d.t.award_method = GM__PROCUREMENT__AWARD_METHOD__AWARD_SCORING;
  d.t.price_weight_bp = 3000;
  d.evaluators[0] = "e1";
  d.evaluators[1] = "e2";
  d.t.n_evaluators = 2;
  pt_item(&d, "D1", "DESK", 10, 0, NULL);
  pt_draft("city", &d);
  /* A score on a draft (no method nor deadline fixed yet) by its lead,
     here one that holds every role (development mode, unregistered):
     publish it first (a draft has no award method yet: it was told the
     tender has no committee). */
  pt_tender od;
  pt_tender_init(&od, "T-SD", 100000000, DEADLINE);
  od.t.award_method = GM__PROCUREMENT__AWARD_METHOD__AWARD_SCORING;
  od.t.price_weight_bp = 3000;
  od.evaluators[0] = "office";
  od.t.n_evaluators = 1;
  pt_item(&od, "D1", "DESK", 10, 0, NULL);
  pt_draft("office", &od);
  Gm__Procurement__Score sd = GM__PROCUREMENT__SCORE__INIT, *psd = &sd;
  Gm__Procurement__ScoreRequest sqd = GM__PROCUREMENT__SCORE_REQUEST__INIT;
  sqd.tender_id = "T-SD";
  sqd.scores = &psd;
  sqd.n_scores = 1;
  sd.supplier = "alpha";
  sd.score_bp = 5000;
  pt_expect("office", "evaluation.score", &sqd.base,
            GM__STATUS__FAILED_PRECONDITION,
            "tender T-SD is a draft: publish it; the committee scores");
  Gm__Procurement__AwardRequest ard = GM__PROCUREMENT__AWARD_REQUEST__INIT;
  ard.tender_id = "T-SD";
  pt_expect("office", "tender.award", &ard.base,
            GM__STATUS__FAILED_PRECONDITION,
            "tender T-SD is a draft: publish it, and award it after its bid "
            "deadline");
  pt_publish_draft("city", "T-SC");
  const char *a[] = {"D1=100000"}, *b[] = {"D1=120000"}, *g[] = {"D1=130000"};
  pt_free(pt_bid("alpha", "T-SC", 0, a, 1));
  pt_free(pt_bid("beta", "T-SC", GM__PROCUREMENT__SME_CLASS__SME_MEDIUM, b, 1));
  pt_free(
      pt_bid("gamma", "T-SC", GM__PROCUREMENT__SME_CLASS__SME_MEDIUM, g, 1));
  Gm__Procurement__Score s0 = GM__PROCUREMENT__SCORE__INIT, *ps0 = &s0;
  Gm__Procurement__ScoreRequest sq0 = GM__PROCUREMENT__SCORE_REQUEST__INIT;
  sq0.tender_id = "T-SC";
  sq0.scores = &ps0;
  sq0.n_scores = 1;
  s0.supplier = "alpha";
  s0.score_bp = 5000;
  pt_expect("e1", "evaluation.score", &sq0.base,
            GM__STATUS__FAILED_PRECONDITION,
            "tender T-SC is active; the committee scores its valid bids once "
            "they are opened at the bid deadline, 2026-03-23 10:00");
  Gm__Procurement__AwardRequest ar0 = GM__PROCUREMENT__AWARD_REQUEST__INIT;
  ar0.tender_id = "T-SC";
  pt_expect("city", "tender.award", &ar0.base, GM__STATUS__FAILED_PRECONDITION,
            "tender T-SC is active; its bids are opened and evaluated at its "
            "bid deadline, 2026-03-23 10:00 (Asia/Shanghai): award it after "
            "that");
  pt_clock(DEADLINE);
  ck_assert_str_eq(pt_wait_state("T-SC", "scoring"), "scoring");
  Gm__Procurement__AwardRequest ar = GM__PROCUREMENT__AWARD_REQUEST__INIT;
  ar.tender_id = "T-SC";
  pt_expect("city", "tender.award", &ar.base, GM__STATUS__FAILED_PRECONDITION,
            "not scored every valid bid");

  Gm__Procurement__Score s1 = GM__PROCUREMENT__SCORE__INIT,
                         s2 = GM__PROCUREMENT__SCORE__INIT,
                         s3 = GM__PROCUREMENT__SCORE__INIT;
  Gm__Procurement__Score *ps[] = {&s1, &s2, &s3};
  Gm__Procurement__ScoreRequest sq = GM__PROCUREMENT__SCORE_REQUEST__INIT;
  sq.tender_id = "T-SC";
  sq.scores = ps;
  s1.supplier = "alpha";
  s2.supplier = "beta";
  s3.supplier = "gamma";
  s1.score_bp = 7001; /* above the 70 points left to other criteria */
  sq.n_scores = 1;
  pt_expect("e1", "evaluation.score", &sq.base, GM__STATUS__INVALID_ARGUMENT,
            "70.00 points");
  s1.score_bp = 5000;
  pt_expect("beta", "evaluation.score", &sq.base, GM__STATUS__PERMISSION_DENIED,
            "evaluator");
  s2.score_bp = 6500;
  s3.score_bp = 4000;
  sq.n_scores = 3;
  Gm__Procurement__ScoreReply *r = (Gm__Procurement__ScoreReply *)pt_call(
      "e1", "evaluation.score", &sq.base);
  ck_assert_msg(r, "%s", pt_message);
  ck_assert_int_eq(r->missing, 0);
  ck_assert(!r->complete);
  pt_free(r);
  s1.score_bp = 5201;
  s2.score_bp = 6700;
  s3.score_bp = 4200;
  r = (Gm__Procurement__ScoreReply *)pt_call("e2", "evaluation.score",
                                             &sq.base);
  ck_assert_msg(r, "%s", pt_message);
  ck_assert(r->complete);
  pt_free(r);
  ck_assert_str_eq(pt_wait_state("T-SC", "evaluated"), "evaluated");
  /* Ranked in Redis: the sheet is ranked, or UNAVAILABLE until it is. */
  Gm__Procurement__Sheet *s = pt_sheet("T-SC");
  const Gm__Procurement__SheetRow *ra = pt_row(s, "alpha"),
                                  *rb = pt_row(s, "beta");
  ck_assert_int_eq(ra->price_score, 3000);
  ck_assert_int_eq(ra->tech_score, 5101);  /* (5000 + 5201) / 2, half up */
  ck_assert_int_eq(rb->price_score, 2500); /* 1,000,000 / 1,200,000 x 3000 */
  ck_assert_int_eq(rb->tech_score, 6600);
  ck_assert_int_eq(rb->total_score, 9100);
  ck_assert_int_eq(rb->rank, 1);
  ck_assert_int_eq(ra->rank, 2);
  ck_assert_int_eq(pt_row(s, "gamma")->price_score, 2307); /* floor */
  ck_assert_str_eq(s->method, "comprehensive scoring");
  pt_free(s);
  /* Ranked: a late change of a score is refused, saying why. */
  pt_expect("e1", "evaluation.score", &sq0.base,
            GM__STATUS__FAILED_PRECONDITION,
            "tender T-SC is evaluated; the committee's scores were final when "
            "the bids were ranked");
  Gm__Procurement__Award *aw = pt_award("city", "T-SC");
  ck_assert_str_eq(aw->supplier, "beta");
  pt_free(aw);
}
END_TEST

/*
 * A challenge is a bidder's: gamma bid and withdrew before the deadline, so
 * it took no part in the evaluation and cannot challenge the award (nor
 * hold its signature); nothing of its attempt is stored.
 */
START_TEST(a_supplier_that_withdrew_its_bid_cannot_challenge) {
  pt_tender d;
  pt_tender_init(&d, "T-WD", 100000000, DEADLINE);
  pt_item(&d, "D1", "DESK", 10, 0, NULL);
  pt_publish("city", &d);
  const char *a[] = {"D1=100000"}, *g[] = {"D1=90000"};
  pt_free(pt_bid("alpha", "T-WD", 0, a, 1));
  pt_free(
      pt_bid("gamma", "T-WD", GM__PROCUREMENT__SME_CLASS__SME_MEDIUM, g, 1));
  Gm__Procurement__TenderRequest w = GM__PROCUREMENT__TENDER_REQUEST__INIT;
  w.tender_id = "T-WD";
  ProtobufCMessage *m = pt_call("gamma", "bid.withdraw", &w.base);
  ck_assert_msg(m, "%s", pt_message);
  protobuf_c_message_free_unpacked(m, NULL);
  pt_clock(DEADLINE);
  ck_assert_str_eq(pt_wait_state("T-WD", "evaluated"), "evaluated");
  Gm__Procurement__Award *aw = pt_award("city", "T-WD");
  ck_assert_str_eq(aw->supplier, "alpha");
  pt_free(aw);
  pt_clock(DEADLINE + PT_DAY);
  ck_assert_ptr_null(challenge("gamma", "T-WD"));
  ck_assert_int_eq(pt_status, GM__STATUS__PERMISSION_DENIED);
  ck_assert_msg(strstr(pt_message, "withdrew"), "%s", pt_message);
  redisContext *c = gm_test_redis_connect(pt_redis);
  ck_assert_int_eq(gm_test_redis_int(c, "EXISTS gm:{procurement:t:T-WD}:ch:1"),
                   0);
  redisFree(c);
}
END_TEST

/*
 * A re-evaluation judges the bidders' register entries as they were at the
 * bid deadline (certificates as they are then): gamma declared itself small
 * while registered medium, and delta bid without registering; after the
 * award gamma registers as small and delta registers.  Round 2 gives gamma
 * no SME deduction and delta stays disqualified, so alpha ranks first again.
 */
START_TEST(a_reevaluation_uses_the_register_at_the_deadline) {
  pt_register("delta", "supplier");
  pt_tender d;
  pt_tender_init(&d, "T-REG", 100000000, DEADLINE);
  pt_item(&d, "D1", "DESK", 10, 0, NULL);
  pt_publish("city", &d);
  const char *a[] = {"D1=100000"}, *b[] = {"D1=110000"}, *g[] = {"D1=105000"},
             *x[] = {"D1=90000"};
  pt_free(pt_bid("alpha", "T-REG", 0, a, 1));
  pt_free(
      pt_bid("beta", "T-REG", GM__PROCUREMENT__SME_CLASS__SME_MEDIUM, b, 1));
  pt_free(
      pt_bid("gamma", "T-REG", GM__PROCUREMENT__SME_CLASS__SME_SMALL, g, 1));
  pt_free(pt_bid("delta", "T-REG", 0, x, 1));
  pt_clock(DEADLINE);
  ck_assert_str_eq(pt_wait_state("T-REG", "evaluated"), "evaluated");
  Gm__Procurement__Award *aw = pt_award("city", "T-REG");
  ck_assert_str_eq(aw->supplier, "alpha");
  pt_free(aw);
  pt_clock(DEADLINE + PT_DAY);
  char code[19];
  pt_party("gamma", PT_USCC_C, GM__PROCUREMENT__SME_CLASS__SME_SMALL);
  pt_party("delta", pt_uscc(4, code), GM__PROCUREMENT__SME_CLASS__SME_NONE);
  Gm__Procurement__Challenge *c = challenge("beta", "T-REG");
  ck_assert_msg(c, "%s", pt_message);
  pt_free(c);
  c = answer("T-REG-Q1", 1, GM__PROCUREMENT__REMEDY__REMEDY_REEVALUATE);
  ck_assert_msg(c, "%s", pt_message);
  pt_free(c);
  ck_assert_str_eq(pt_wait_state("T-REG", "evaluated"), "evaluated");
  Gm__Procurement__Sheet *s = pt_sheet("T-REG"); /* round 2's, see T-RE */
  ck_assert_int_eq(s->round, 2);
  ck_assert_int_eq(pt_row(s, "gamma")->sme_deduction, 0);
  ck_assert_msg(strstr(pt_row(s, "gamma")->checks,
                       "declared small but registered medium"),
                "%s", pt_row(s, "gamma")->checks);
  ck_assert_str_eq(pt_row(s, "delta")->status, "disqualified");
  ck_assert_int_eq(pt_row(s, "alpha")->rank, 1);
  pt_free(s);
}
END_TEST

/*
 * A scoring tender that ends without a ranking (no bid at all, so
 * unsuccessful; or cancelled while the committee was scoring) shows its
 * settled sheet, unranked: once the ledger has the tender's end there is
 * nothing left to wait for (the sheet had answered UNAVAILABLE, "settlement
 * is behind", until the tender left Redis 30 days later).
 */
static void publish_scoring(const char *id) {
  pt_tender d;
  pt_tender_init(&d, id, 100000000, DEADLINE);
  d.t.award_method = GM__PROCUREMENT__AWARD_METHOD__AWARD_SCORING;
  d.t.price_weight_bp = 3000;
  d.evaluators[0] = "e1";
  d.t.n_evaluators = 1;
  pt_item(&d, "D1", "DESK", 10, 0, NULL);
  pt_publish("city", &d);
}

START_TEST(a_scoring_tender_that_ends_unranked_shows_its_sheet) {
  publish_scoring("T-SU");
  publish_scoring("T-SX");
  const char *a[] = {"D1=100000"};
  pt_free(pt_bid("alpha", "T-SX", 0, a, 1));
  pt_clock(DEADLINE);
  ck_assert_str_eq(pt_wait_state("T-SU", "unsuccessful"), "unsuccessful");
  ck_assert_str_eq(pt_wait_state("T-SX", "scoring"), "scoring");
  Gm__Procurement__TenderRequest cq = GM__PROCUREMENT__TENDER_REQUEST__INIT;
  cq.tender_id = "T-SX";
  cq.reason = "the project was withdrawn";
  ProtobufCMessage *r = pt_call("city", "tender.cancel", &cq.base);
  ck_assert_msg(r, "%s", pt_message);
  protobuf_c_message_free_unpacked(r, NULL);
  ck_assert_int_eq(pt_ledger_wait("SELECT count(*) FROM procurement_tenders"
                                  " WHERE (tender_id = 'T-SU' AND state ="
                                  " 'unsuccessful') OR (tender_id = 'T-SX'"
                                  " AND state = 'cancelled')",
                                  2),
                   2);
  ck_assert_int_eq(pt_ledger_wait("SELECT count(*) FROM procurement_rounds"
                                  " WHERE tender_id IN ('T-SU', 'T-SX')",
                                  2),
                   2);
  Gm__Procurement__SheetRequest q = GM__PROCUREMENT__SHEET_REQUEST__INIT;
  q.tender_id = "T-SU";
  Gm__Procurement__Sheet *s =
      (Gm__Procurement__Sheet *)pt_call("root", "evaluation.sheet", &q.base);
  ck_assert_msg(s, "%s", pt_message);
  ck_assert_int_eq(s->round, 1);
  ck_assert_int_eq(s->total_rows, 0);
  pt_free(s);
  q.tender_id = "T-SX";
  s = (Gm__Procurement__Sheet *)pt_call("root", "evaluation.sheet", &q.base);
  ck_assert_msg(s, "%s", pt_message);
  ck_assert_int_eq(s->round, 1);
  ck_assert_int_eq(s->total_rows, 1);
  ck_assert_int_eq(pt_row(s, "alpha")->rank, 0); /* never ranked */
  pt_free(s);
}
END_TEST

int main(void) {
  Suite *s = suite_create("procurement awards");
  TCase *tc = tcase_create("award");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, a_challenge_holds_the_signature_until_it_is_answered);
  tcase_add_test(tc, an_unanswered_challenge_becomes_overdue);
  tcase_add_test(
      tc, the_shipped_calendar_counts_unless_the_certifier_says_otherwise);
  tcase_add_test(tc, the_listing_names_years_the_shipped_calendar_lacks);
  tcase_add_test(tc, an_upheld_challenge_reevaluates_or_cancels);
  tcase_add_test(tc, an_award_not_signed_in_30_days_passes_to_the_next_bidder);
  tcase_add_test(tc, a_joint_tender_gives_one_contract_per_agency);
  tcase_add_test(tc, comprehensive_scoring_ranks_by_total);
  tcase_add_test(tc, a_scoring_tender_that_ends_unranked_shows_its_sheet);
  tcase_add_test(tc, a_supplier_that_withdrew_its_bid_cannot_challenge);
  tcase_add_test(tc, a_reevaluation_uses_the_register_at_the_deadline);
  suite_add_tcase(s, tc);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
