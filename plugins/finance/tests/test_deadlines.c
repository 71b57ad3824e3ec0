/*
 * The deadlines, on the manual clock: the pick deadline (5 working days,
 * counted over the holiday calendar in force) expires a referral nobody
 * picked; the contact deadline (7 days) returns a referral whose picked
 * bank made no contact to the pool for the other eligible banks and
 * records the miss against that bank, or expires it when no other bank
 * is left; the decision deadline (30 days after contact, waiting while the
 * enterprise answers a question) does the same to a bank that neither
 * funded nor declined in time.  An enterprise cannot pick a bank nobody
 * can act for.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>
#include <sqlite3.h>

#include "harness.h"

static void setup(void) {
  ft_start(NULL, ft_at(FT_MONDAY, 10, 0));
  ft_bank("icbc", "icbc1");
  ft_bank("abc", "abc1");
  ft_bank("boc", "boc1");
  ft_product("icbc-p", "icbc", "3", "", 1, 100000000000, 1, 120, 80);
  ft_product("abc-p", "abc", "3", "", 1, 100000000000, 1, 120, 80);
  ft_product("boc-p", "boc", "3", "", 1, 100000000000, 1, 120, 80);
  ft_product("solo-p", "icbc", "1", "", 1, 100000000000, 1, 120, 80);
  ft_enterprise("acme", "330502");
}

static void teardown(void) {
  ft_stop();
}

START_TEST(a_missed_contact_returns_it_to_the_pool_and_records_the_breach) {
  char id[32];
  ft_copy_id(id, ft_refer("acme", 500000000, 36, 0));
  ft_free(ft_claim("icbc1", id));
  ft_free(ft_claim("abc1", id));
  ft_free(ft_pick("acme", id, "icbc"));
  int64_t due = ft_at(FT_MONDAY, 10, 0) + 7 * GM_FINANCE_DAY_MS;
  /* A minute before the deadline nothing happens. */
  ft_clock(due - 60000);
  ft_nap(300);
  ck_assert_str_eq(ft_redis_field(id, "st"), "3");
  /* Monday 9 March 10:00: the deadline; back in the pool for the others. */
  ft_clock(due + 1000);
  ck_assert_int_eq(ft_wait_state(id, GM__FINANCE__STATE__STATE_OPEN),
                   GM__FINANCE__STATE__STATE_OPEN);
  ck_assert_str_eq(ft_redis_field(id, "rnd"), "2");
  ck_assert_str_eq(ft_redis_field(id, "bank"), "");
  /* A new pick deadline: 5 working days from Monday 9 March. */
  char want[24];
  snprintf(want, sizeof want, "%lld", (long long)ft_at("2026-03-17", 0, 0));
  ck_assert_str_eq(ft_redis_field(id, "pdue"), want);
  Gm__Finance__Referral *r = ft_get("acme", id);
  ck_assert_int_eq(r->n_missed, 1);
  ck_assert_str_eq(r->missed[0], "icbc");
  ck_assert_int_eq(r->claims, 0);
  ck_assert_int_eq(r->round, 2);
  ft_free(r);
  /* The queues: the bank that missed lost it; the others may claim. */
  ck_assert(ft_wait_relation("abc", id, "open"));
  ck_assert(ft_wait_relation("icbc", id, NULL));
  ck_assert(ft_wait_relation("boc", id, "open"));
  /* The miss is recorded against the bank. */
  ck_assert_int_eq(ft_ledger_wait("SELECT count(*) FROM finance_breaches"
                                  " WHERE bank = 'icbc' AND round = 1",
                                  1),
                   1);
  ck_assert_int_eq(ft_ledger_int("SELECT due_ms FROM finance_breaches"), due);
  ck_assert_int_eq(ft_ledger_wait("SELECT count(*) FROM finance_claims WHERE"
                                  " bank = 'icbc' AND outcome = 'missed'",
                                  1),
                   1);
  ck_assert_int_eq(ft_ledger_int("SELECT count(*) FROM finance_transitions"
                                 " WHERE transition = 'return'"),
                   1);
  Gm__Finance__BankReportRequest br = GM__FINANCE__BANK_REPORT_REQUEST__INIT;
  Gm__Finance__BankReport *rep =
      (Gm__Finance__BankReport *)ft_ok("icbc1", "bank.report", &br.base);
  ck_assert_int_eq(rep->breaches, 1);
  /* The bank was picked, whatever happened after. */
  ck_assert_int_eq(rep->claims, 1);
  ck_assert_int_eq(rep->picked, 1);
  ck_assert_str_eq(rep->breach_list[0]->referral, id);
  ck_assert_int_eq(rep->breach_list[0]->due_ms, due);
  ft_free(rep);
  /* It says the deadline passed, and when, not that another bank holds
     it. */
  Gm__Finance__ContactRequest ct = GM__FINANCE__CONTACT_REQUEST__INIT;
  ct.id = id;
  ft_expect("icbc1", "referral.contact", &ct.base,
            GM__STATUS__FAILED_PRECONDITION,
            "your bank icbc missed the contact deadline of R00000001 "
            "(2026-03-09 10:00 Asia/Shanghai");
  /* The bank that missed may not claim it again; the others may. */
  Gm__Finance__ClaimRequest c = GM__FINANCE__CLAIM_REQUEST__INIT;
  c.id = id;
  ft_expect("icbc1", "referral.claim", &c.base, GM__STATUS__PERMISSION_DENIED,
            "missed the contact deadline on R00000001 and may not claim it "
            "again");
  ft_free(ft_claim("abc1", id));
  ft_free(ft_pick("acme", id, "abc"));
  ft_free(ft_contact("abc1", id));
  ck_assert_int_eq(ft_ledger_wait("SELECT count(*) FROM finance_claims WHERE"
                                  " bank = 'abc' AND round = 2 AND outcome ="
                                  " 'picked'",
                                  1),
                   1);
  /* Contact made: its deadline is gone, so no second miss (within the
     decision deadline, 30 days after the contact). */
  ft_clock(due + 29 * GM_FINANCE_DAY_MS);
  ft_nap(300);
  ck_assert_str_eq(ft_redis_field(id, "st"), "4");
  ck_assert_int_eq(ft_ledger_int("SELECT count(*) FROM finance_breaches"), 1);
}
END_TEST

/* A referral of class 1, which icbc's solo-p alone fits: one eligible
   bank, so its miss leaves none. */
static Gm__Finance__Referral *refer_class_1(void) {
  Gm__Finance__ReferRequest q = GM__FINANCE__REFER_REQUEST__INIT;
  q.amount = 100000;
  q.tenor_months = 12;
  q.class_code = "1";
  q.subitem = "1.5";
  q.use_of_proceeds = "boiler retrofit";
  q.description = "replace two coal boilers";
  q.consent_share = 1;
  return (Gm__Finance__Referral *)ft_ok("acme", "referral.create", &q.base);
}

START_TEST(a_miss_with_no_other_bank_left_expires_it) {
  char id[32];
  ft_copy_id(id, refer_class_1());
  ft_free(ft_claim("icbc1", id));
  ft_free(ft_pick("acme", id, "icbc"));
  ft_clock(ft_at(FT_MONDAY, 10, 0) + 8 * GM_FINANCE_DAY_MS);
  ck_assert_int_eq(ft_wait_state(id, GM__FINANCE__STATE__STATE_EXPIRED),
                   GM__FINANCE__STATE__STATE_EXPIRED);
  Gm__Finance__Referral *r = ft_get("acme", id);
  ck_assert_msg(strstr(r->end_reason,
                       "bank icbc missed its contact deadline "
                       "and no other eligible bank is left"),
                "%s", r->end_reason);
  ft_free(r);
  ck_assert_int_eq(ft_ledger_wait("SELECT count(*) FROM finance_breaches", 1),
                   1);
  ck_assert_int_eq(ft_ledger_wait("SELECT state FROM finance_referrals",
                                  GM__FINANCE__STATE__STATE_EXPIRED),
                   GM__FINANCE__STATE__STATE_EXPIRED);
  ck_assert(ft_wait_relation("icbc", id, NULL));
  /* The ledger says what a return to the pool says: the claim was missed
     and the referral is no bank's (Redis holds no bank either). */
  ck_assert_str_eq(ft_redis_field(id, "bank"), "");
  ck_assert_int_eq(ft_ledger_int("SELECT count(*) FROM finance_claims WHERE"
                                 " bank = 'icbc' AND outcome = 'missed'"),
                   1);
  ck_assert_int_eq(ft_ledger_int("SELECT count(*) FROM finance_referrals"
                                 " WHERE bank = '' AND picked_ms IS NULL"),
                   1);
}
END_TEST

START_TEST(nobody_picked_in_time_expires_it) {
  char claimed[32], unclaimed[32];
  ft_copy_id(claimed, ft_refer("acme", 500000000, 36, 0));
  ft_copy_id(unclaimed, ft_refer("acme", 500000000, 36, 0));
  ft_free(ft_claim("icbc1", claimed));
  /* The pick deadline: the end of Monday 9 March (5 working days). */
  int64_t due = ft_at("2026-03-10", 0, 0);
  ft_clock(due - 1);
  ft_nap(300);
  ck_assert_str_eq(ft_redis_field(claimed, "st"), "2");
  ft_clock(due);
  ck_assert_int_eq(ft_wait_state(claimed, GM__FINANCE__STATE__STATE_EXPIRED),
                   GM__FINANCE__STATE__STATE_EXPIRED);
  ck_assert_int_eq(ft_wait_state(unclaimed, GM__FINANCE__STATE__STATE_EXPIRED),
                   GM__FINANCE__STATE__STATE_EXPIRED);
  ck_assert_str_eq(ft_redis_field(claimed, "er"),
                   "the enterprise picked none of the 1 claimants in time");
  ck_assert_str_eq(ft_redis_field(unclaimed, "er"),
                   "no bank claimed it in time");
  /* Out of every queue; the claim ended with it; a pick is too late. */
  ck_assert(ft_wait_relation("icbc", claimed, NULL));
  ck_assert(ft_wait_relation("abc", unclaimed, NULL));
  ck_assert_int_eq(ft_ledger_wait("SELECT count(*) FROM finance_claims WHERE"
                                  " outcome = 'expire'",
                                  1),
                   1);
  ck_assert_int_eq(ft_ledger_wait("SELECT count(*) FROM finance_transitions"
                                  " WHERE transition = 'expire'",
                                  2),
                   2);
  Gm__Finance__PickRequest p = GM__FINANCE__PICK_REQUEST__INIT;
  p.id = claimed;
  p.bank = "icbc";
  ft_expect("acme", "referral.pick", &p.base, GM__STATUS__FAILED_PRECONDITION,
            "is expired");
}
END_TEST

/* A deadline fires a little after its time (the poll, a retry, a start-up
   with many due, an index a killed broker lost: up to reconcile_s).  A
   pick, or a contact or a decline by the bank picked, that reaches Redis
   after the deadline but before it fired is too late all the same.  The
   deadlines are taken out of Redis here so that they cannot fire first. */
START_TEST(a_pick_contact_or_decline_after_its_deadline_is_too_late) {
  char picked[32], claimed[32];
  ft_copy_id(picked, ft_refer("acme", 500000000, 36, 0));
  ft_copy_id(claimed, ft_refer("acme", 500000000, 36, 0));
  ft_free(ft_claim("icbc1", picked));
  ft_free(ft_pick("acme", picked, "icbc"));
  ft_free(ft_claim("icbc1", claimed));
  redisContext *c = gm_test_redis_connect(ft_redis);
  ck_assert_int_eq(gm_test_redis_int(c, "ZREM gm:{finance:%s}:dl contact|%s",
                                     picked, picked),
                   1);
  ck_assert_int_eq(
      gm_test_redis_int(c, "ZREM gm:{finance:%s}:dl pick|%s", claimed, claimed),
      1);
  redisFree(c);
  /* Past both: the contact was due Monday 9 March 10:00, the pick at the
     end of that day. */
  ft_clock(ft_at("2026-03-10", 0, 0) + 1000);
  Gm__Finance__ContactRequest ct = GM__FINANCE__CONTACT_REQUEST__INIT;
  ct.id = picked;
  ft_expect(
      "icbc1", "referral.contact", &ct.base, GM__STATUS__FAILED_PRECONDITION,
      "passed at 2026-03-09 10:00 Asia/Shanghai: the miss will be recorded "
      "against your bank and the referral returns to the pool for the "
      "2 other eligible banks");
  /* Nor may it decline instead: that would spare it the miss and end the
     referral rather than return it to the pool. */
  Gm__Finance__DeclineRequest d = GM__FINANCE__DECLINE_REQUEST__INIT;
  d.id = picked;
  d.reason = GM__FINANCE__DECLINE_REASON__DECLINE_UNREACHABLE;
  d.text = "could not reach them";
  ft_expect("icbc1", "referral.decline", &d.base,
            GM__STATUS__FAILED_PRECONDITION,
            "passed at 2026-03-09 10:00 Asia/Shanghai: the miss will be "
            "recorded against your bank");
  Gm__Finance__PickRequest p = GM__FINANCE__PICK_REQUEST__INIT;
  p.id = claimed;
  p.bank = "icbc";
  ft_expect("acme", "referral.pick", &p.base, GM__STATUS__FAILED_PRECONDITION,
            "pick deadline");
  /* Nor may another bank claim it then: it would be let see the referral
     (who it is, with consent_identity) though nobody can pick it any
     more, and be counted a claimant of a referral that expired. */
  Gm__Finance__ClaimRequest cl = GM__FINANCE__CLAIM_REQUEST__INIT;
  cl.id = claimed;
  ft_expect("abc1", "referral.claim", &cl.base, GM__STATUS__FAILED_PRECONDITION,
            "the pick deadline of R00000002 passed at");
  c = gm_test_redis_connect(ft_redis);
  ck_assert_int_eq(gm_test_redis_int(c, "ZCARD gm:{finance:%s}:cl", claimed),
                   1);
  redisFree(c);
  ck_assert_str_eq(ft_redis_field(picked, "st"), "3");
  ck_assert_str_eq(ft_redis_field(claimed, "st"), "2");
}
END_TEST

static Gm__Finance__Referral *ask(const char *user, const char *id) {
  Gm__Finance__TextRequest q = GM__FINANCE__TEXT_REQUEST__INIT;
  q.id = (char *)id;
  q.text = "your 2025 accounts, please";
  return (Gm__Finance__Referral *)ft_ok(user, "referral.request_info", &q.base);
}

static Gm__Finance__Referral *answer(const char *ent, const char *id) {
  Gm__Finance__TextRequest q = GM__FINANCE__TEXT_REQUEST__INIT;
  q.id = (char *)id;
  q.text = "attached";
  return (Gm__Finance__Referral *)ft_ok(ent, "referral.answer", &q.base);
}

/*
 * The decision deadline: 30 days (decision_days) after the contact, the
 * bank holding the referral has funded or declined it, else the miss is
 * recorded against it and the referral returns to the pool, as a missed
 * contact does.  The days the enterprise takes to answer a question do not
 * count: the deadline waits and moves on by as much.
 */
/* The referral's newest outbox entry, read right after the call that
   appended it (settled entries leave the stream at the settler's next
   prune, seconds later; holding the settler's group back instead let that
   prune take the entry). */
static char cap_stream[200], cap_id[64];
static redisReply *cap_entry;

static void capture_newest(const char *id, const char *transition) {
  snprintf(cap_stream, sizeof cap_stream, "gm:{finance:%s}:outbox", id);
  redisContext *rc = gm_test_redis_connect(ft_redis);
  cap_entry = gm_test_redis_cmd(rc, "XREVRANGE %s + - COUNT 1", cap_stream);
  redisFree(rc);
  ck_assert_msg(
      cap_entry->type == REDIS_REPLY_ARRAY && cap_entry->elements == 1,
      "%s: no newest entry", cap_stream);
  snprintf(cap_id, sizeof cap_id, "%s", cap_entry->element[0]->element[0]->str);
  const redisReply *f = cap_entry->element[0]->element[1];
  const char *tr = "";
  for (size_t i = 0; i + 1 < f->elements; i += 2)
    if (!strcmp(f->element[i]->str, "tr")) tr = f->element[i + 1]->str;
  ck_assert_str_eq(tr, transition);
}

/* Runs `sql` on db with its n parameters bound as text (a column of
   integer affinity stores a number given as text as the number). */
static void db_run(sqlite3 *db, const char *sql, const char *const *text,
                   int n) {
  sqlite3_stmt *q = NULL;
  ck_assert_msg(sqlite3_prepare_v2(db, sql, -1, &q, NULL) == SQLITE_OK, "%s",
                sqlite3_errmsg(db));
  for (int i = 0; i < n; i++)
    sqlite3_bind_text(q, i + 1, text[i], -1, SQLITE_STATIC);
  ck_assert_msg(sqlite3_step(q) == SQLITE_DONE, "%s", sqlite3_errmsg(db));
  sqlite3_finalize(q);
}

/* Sets the captured entry aside as a settler that failed on it would have
   (gm_dead_letter and its fields; its gm_settled row gone: an entry set
   aside never settled), replays it (gm admin replay) and waits until the
   entry the replay appends has settled. */
static void replay_captured(void) {
  char sql[512];
  const char *stream = cap_stream, *eid = cap_id;
  sqlite3 *db = NULL;
  ck_assert_int_eq(sqlite3_open(gm_test_gmd_ledger(ft_gmd), &db), SQLITE_OK);
  sqlite3_busy_timeout(db, 10000);
  const redisReply *f = cap_entry->element[0]->element[1];
  const char *kind = "";
  for (size_t i = 0; i + 1 < f->elements; i += 2)
    if (!strcmp(f->element[i]->str, "kind")) kind = f->element[i + 1]->str;
  ck_assert_str_eq(kind, "transition");
  db_run(db,
         "INSERT INTO gm_dead_letter(stream, id, market, kind, error,"
         " failures, set_aside_ms) VALUES(?1, ?2, 'finance', ?3,"
         " 'set aside by the test', 5, 1)",
         (const char *[]){stream, eid, kind}, 3);
  for (size_t i = 0; i + 1 < f->elements; i += 2) {
    char n[24];
    snprintf(n, sizeof n, "%zu", i / 2);
    db_run(db, "INSERT INTO gm_dead_letter_field VALUES(?1, ?2, ?3, ?4, ?5)",
           (const char *[]){stream, eid, n, f->element[i]->str,
                            f->element[i + 1]->str},
           5);
  }
  db_run(db, "DELETE FROM gm_settled WHERE stream = ?1 AND id = ?2",
         (const char *[]){stream, eid}, 2);
  ck_assert_int_eq(sqlite3_changes(db), 1);
  sqlite3_close(db);
  freeReplyObject(cap_entry);
  cap_entry = NULL;
  /* The replay appends the entry again, as a new one, which settles. */
  snprintf(sql, sizeof sql,
           "SELECT count(*) FROM gm_settled WHERE stream = '%s'", stream);
  int64_t settled = ft_ledger_int(sql);
  Gm__ReplayRequest req = GM__REPLAY_REQUEST__INIT;
  req.stream = (char *)stream;
  req.id = (char *)eid;
  Gm__Reply *rep = gm_test_call(ft_conn, "root", "gm", "deadletters.replay",
                                "replay-contact", &req.base);
  ck_assert_ptr_nonnull(rep);
  ck_assert_msg(rep->status == GM__STATUS__OK, "%s", rep->message);
  gm__reply__free_unpacked(rep, NULL);
  ck_assert_int_eq(ft_ledger_wait(sql, settled + 1), settled + 1);
}

START_TEST(a_missed_decision_returns_it_to_the_pool_and_is_reported) {
  char id[32];
  int64_t t0 = ft_at(FT_MONDAY, 10, 0), day = GM_FINANCE_DAY_MS;
  ft_copy_id(id, ft_refer("acme", 500000000, 36, 0));
  ft_free(ft_claim("icbc1", id));
  ft_free(ft_claim("abc1", id));
  ft_free(ft_pick("acme", id, "icbc"));
  Gm__Finance__Referral *r = ft_contact("icbc1", id);
  capture_newest(id, "contact");
  ck_assert_int_eq(r->decision_due_ms, t0 + 30 * day);
  ft_free(r);
  /* Asked on day 1, answered on day 5: the 4 days do not count. */
  ft_clock(t0 + day);
  r = ask("icbc1", id);
  ck_assert_int_eq(r->decision_due_ms, 0);
  ck_assert_int_eq(r->decision_left_ms, 29 * day);
  ft_free(r);
  /* Waiting for the answer, nothing fires at the first due. */
  ft_clock(t0 + 30 * day + 1000);
  ft_nap(300);
  ck_assert_str_eq(ft_redis_field(id, "st"), "5");
  ft_clock(t0 + 5 * day);
  r = answer("acme", id);
  int64_t due = t0 + 34 * day;
  ck_assert_int_eq(r->decision_due_ms, due);
  ck_assert_int_eq(r->decision_left_ms, 0);
  ft_free(r);
  /* The ledger follows Redis: the due the answer set, not the contact's
     (before 2026-12-05 it kept t0 + 30 days). */
  char sql[160];
  snprintf(sql, sizeof sql,
           "SELECT decision_due_ms FROM finance_referrals WHERE id = '%s'", id);
  ck_assert_int_eq(ft_ledger_wait(sql, due), due);
  /* The contact's entry set aside and replayed after the answer settled
     (gm admin replay): it records the contact, and leaves the due the
     later answer set (before, it put the contact's back). */
  replay_captured();
  ck_assert_int_eq(ft_ledger_int(sql), due);
  ft_free(ft_approve("icbc1", id, 400000000, 345, 36));
  /* Approved, not funded: a minute before the deadline nothing happens. */
  ft_clock(due - 60000);
  ft_nap(300);
  ck_assert_str_eq(ft_redis_field(id, "st"), "6");
  ft_clock(due + 1000);
  ck_assert_int_eq(ft_wait_state(id, GM__FINANCE__STATE__STATE_OPEN),
                   GM__FINANCE__STATE__STATE_OPEN);
  ck_assert_str_eq(ft_redis_field(id, "rnd"), "2");
  /* The next bank starts afresh: no approval, contact or question. */
  r = ft_get("acme", id);
  ck_assert_str_eq(r->bank, "");
  ck_assert_int_eq(r->approved_amount, 0);
  ck_assert_int_eq(r->contacted_ms, 0);
  ck_assert_int_eq(r->decision_due_ms, 0);
  ck_assert_str_eq(r->question, "");
  ck_assert_int_eq(r->n_missed, 1);
  ck_assert_str_eq(r->missed[0], "icbc");
  ft_free(r);
  ck_assert(ft_wait_relation("abc", id, "open"));
  ck_assert(ft_wait_relation("icbc", id, NULL));
  /* Recorded as a missed decision, once; the pick was a pick. */
  ck_assert_int_eq(ft_ledger_wait("SELECT count(*) FROM finance_breaches"
                                  " WHERE bank = 'icbc' AND kind = 'decision'",
                                  1),
                   1);
  ck_assert_int_eq(ft_ledger_int("SELECT due_ms FROM finance_breaches"), due);
  ck_assert_int_eq(ft_ledger_wait("SELECT count(*) FROM finance_claims WHERE"
                                  " bank = 'icbc' AND outcome = 'missed'",
                                  1),
                   1);
  ck_assert_int_eq(ft_ledger_wait("SELECT count(*) FROM finance_referrals"
                                  " WHERE bank = '' AND decided_ms IS NULL"
                                  " AND decision_due_ms IS NULL",
                                  1),
                   1);
  Gm__Finance__BankReportRequest br = GM__FINANCE__BANK_REPORT_REQUEST__INIT;
  Gm__Finance__BankReport *rep =
      (Gm__Finance__BankReport *)ft_ok("icbc1", "bank.report", &br.base);
  ck_assert_int_eq(rep->breaches, 0);
  ck_assert_int_eq(rep->decision_breaches, 1);
  ck_assert_int_eq(rep->n_breach_list, 1);
  ck_assert_str_eq(rep->breach_list[0]->kind, "decision");
  ck_assert_int_eq(rep->breach_list[0]->due_ms, due);
  ft_free(rep);
  /* The bank that missed is told which deadline, and may not claim it
     again. */
  Gm__Finance__FundRequest f = GM__FINANCE__FUND_REQUEST__INIT;
  f.id = id;
  f.amount = 400000000;
  ft_expect("icbc1", "referral.fund", &f.base, GM__STATUS__FAILED_PRECONDITION,
            "your bank icbc missed the decision deadline of R00000001 "
            "(2026-04-05 10:00 Asia/Shanghai)");
  Gm__Finance__ClaimRequest c = GM__FINANCE__CLAIM_REQUEST__INIT;
  c.id = id;
  ft_expect("icbc1", "referral.claim", &c.base, GM__STATUS__PERMISSION_DENIED,
            "missed the decision deadline on R00000001");
  /* Another bank takes it up, with a deadline of its own. */
  ft_free(ft_claim("abc1", id));
  ft_free(ft_pick("acme", id, "abc"));
  r = ft_contact("abc1", id);
  ck_assert_int_eq(r->decision_due_ms, due + 1000 + 30 * day);
  ft_free(r);
  ft_free(ft_approve("abc1", id, 400000000, 345, 36));
  ft_free(ft_fund("abc1", id, 400000000, ""));
  /* Funded: its decision deadline is gone, nothing fires after it. */
  ck_assert_int_eq(ft_ledger_wait("SELECT state FROM finance_referrals",
                                  GM__FINANCE__STATE__STATE_FUNDED),
                   GM__FINANCE__STATE__STATE_FUNDED);
  ft_clock(due + 31 * day);
  ft_nap(500);
  ck_assert_int_eq(ft_ledger_int("SELECT state FROM finance_referrals"),
                   GM__FINANCE__STATE__STATE_FUNDED);
  ck_assert_int_eq(ft_ledger_int("SELECT count(*) FROM finance_breaches"), 1);
}
END_TEST

/* The enterprise may withdraw once the bank picked let its contact
   deadline pass, before the deadline fired (removed from Redis here so
   that it cannot fire first): the referral ends withdrawn, and the miss is
   recorded against the bank all the same, as the bank's refused contact
   said it would be (the withdrawal cancelled the deadline, so the miss was
   never recorded and the bank's report showed none). */
START_TEST(a_withdrawal_after_a_missed_contact_deadline_records_the_miss) {
  char id[32];
  ft_copy_id(id, ft_refer("acme", 500000000, 36, 0));
  ft_free(ft_claim("icbc1", id));
  ft_free(ft_pick("acme", id, "icbc"));
  int64_t due = ft_at(FT_MONDAY, 10, 0) + 7 * GM_FINANCE_DAY_MS;
  redisContext *c = gm_test_redis_connect(ft_redis);
  ck_assert_int_eq(
      gm_test_redis_int(c, "ZREM gm:{finance:%s}:dl contact|%s", id, id), 1);
  redisFree(c);
  ft_clock(due + 1000);
  Gm__Finance__TextRequest t = GM__FINANCE__TEXT_REQUEST__INIT;
  t.id = id;
  t.text = "the bank never called";
  ft_free(ft_ok("acme", "referral.withdraw", &t.base));
  ck_assert_str_eq(ft_redis_field(id, "st"), "9");
  ck_assert_int_eq(ft_ledger_wait("SELECT count(*) FROM finance_breaches"
                                  " WHERE bank = 'icbc' AND round = 1",
                                  1),
                   1);
  ck_assert_int_eq(ft_ledger_int("SELECT due_ms FROM finance_breaches"), due);
  Gm__Finance__BankReportRequest br = GM__FINANCE__BANK_REPORT_REQUEST__INIT;
  Gm__Finance__BankReport *rep =
      (Gm__Finance__BankReport *)ft_ok("icbc1", "bank.report", &br.base);
  ck_assert_int_eq(rep->breaches, 1);
  ft_free(rep);
  /* And the bank loses access, as it would had the deadline fired before
     the withdrawal (the firing's miss clears the bank; the withdrawal
     leaves it named). */
  Gm__Finance__ReferralRequest g = GM__FINANCE__REFERRAL_REQUEST__INIT;
  g.id = id;
  ft_expect("icbc1", "referral.get", &g.base, GM__STATUS__PERMISSION_DENIED,
            "your bank icbc has no access");
  /* A withdrawal before the deadline records nothing. */
  char early[32];
  ft_copy_id(early, ft_refer("acme", 500000000, 36, 0));
  ft_free(ft_claim("abc1", early));
  ft_free(ft_pick("acme", early, "abc"));
  t.id = early;
  ft_free(ft_ok("acme", "referral.withdraw", &t.base));
  ft_nap(300);
  ck_assert_int_eq(ft_ledger_int("SELECT count(*) FROM finance_breaches"), 1);
  /* Under review past its decision deadline: the same, kind decision. */
  char late[32];
  ft_copy_id(late, ft_refer("acme", 500000000, 36, 0));
  ft_free(ft_claim("abc1", late));
  ft_free(ft_pick("acme", late, "abc"));
  Gm__Finance__Referral *r = ft_contact("abc1", late);
  int64_t ddue = r->decision_due_ms;
  ft_free(r);
  ck_assert_int_gt(ddue, 0);
  c = gm_test_redis_connect(ft_redis);
  ck_assert_int_eq(
      gm_test_redis_int(c, "ZREM gm:{finance:%s}:dl decision|%s", late, late),
      1);
  redisFree(c);
  ft_clock(ddue + 1000);
  t.id = late;
  ft_free(ft_ok("acme", "referral.withdraw", &t.base));
  ck_assert_int_eq(ft_ledger_wait("SELECT count(*) FROM finance_breaches"
                                  " WHERE bank = 'abc' AND kind = 'decision'",
                                  1),
                   1);
  ck_assert_int_eq(ft_ledger_int("SELECT due_ms FROM finance_breaches WHERE"
                                 " bank = 'abc'"),
                   ddue);
  g.id = late;
  ft_expect("abc1", "referral.get", &g.base, GM__STATUS__PERMISSION_DENIED,
            "none once it missed its contact or decision deadline");
  /* The bank withdrawn from in time still reads it (not the contact). */
  Gm__Finance__Referral *kept = ft_get("abc1", early);
  ck_assert_int_eq(kept->access, GM__FINANCE__ACCESS__ACCESS_FULL);
  ck_assert(kept->contact_withheld);
  ft_free(kept);
}
END_TEST

/* With no other eligible bank left, a missed decision expires it. */
START_TEST(a_missed_decision_with_no_other_bank_left_expires_it) {
  char id[32];
  ft_copy_id(id, refer_class_1());
  ft_free(ft_claim("icbc1", id));
  ft_free(ft_pick("acme", id, "icbc"));
  ft_free(ft_contact("icbc1", id));
  ft_clock(ft_at(FT_MONDAY, 10, 0) + 31 * GM_FINANCE_DAY_MS);
  ck_assert_int_eq(ft_wait_state(id, GM__FINANCE__STATE__STATE_EXPIRED),
                   GM__FINANCE__STATE__STATE_EXPIRED);
  ck_assert_str_eq(ft_redis_field(id, "er"),
                   "bank icbc missed its decision deadline and no other "
                   "eligible bank is left");
  ck_assert_int_eq(ft_ledger_wait("SELECT count(*) FROM finance_claims WHERE"
                                  " bank = 'icbc' AND outcome = 'missed'",
                                  1),
                   1);
  ck_assert_int_eq(ft_ledger_wait("SELECT count(*) FROM finance_breaches"
                                  " WHERE kind = 'decision'",
                                  1),
                   1);
}
END_TEST

/* Past the decision deadline, before it fired (taken out of Redis here so
   that it cannot): fund, decline, approve and ask are too late. */
START_TEST(a_fund_or_decline_after_the_decision_deadline_is_too_late) {
  char id[32];
  ft_copy_id(id, ft_refer("acme", 500000000, 36, 0));
  ft_free(ft_claim("icbc1", id));
  ft_free(ft_pick("acme", id, "icbc"));
  ft_free(ft_contact("icbc1", id));
  ft_free(ft_approve("icbc1", id, 400000000, 345, 36));
  redisContext *c = gm_test_redis_connect(ft_redis);
  ck_assert_int_eq(
      gm_test_redis_int(c, "ZREM gm:{finance:%s}:dl decision|%s", id, id), 1);
  redisFree(c);
  ft_clock(ft_at(FT_MONDAY, 10, 0) + 30 * GM_FINANCE_DAY_MS);
  const char *late =
      "the decision deadline of R00000001 passed at 2026-04-01 10:00 "
      "Asia/Shanghai (your bank had until then to fund or decline it): the "
      "miss will be recorded against your bank and the referral returns to "
      "the pool for the 2 other eligible banks";
  Gm__Finance__FundRequest f = GM__FINANCE__FUND_REQUEST__INIT;
  f.id = id;
  f.amount = 400000000;
  ft_expect("icbc1", "referral.fund", &f.base, GM__STATUS__FAILED_PRECONDITION,
            late);
  Gm__Finance__DeclineRequest d = GM__FINANCE__DECLINE_REQUEST__INIT;
  d.id = id;
  d.reason = GM__FINANCE__DECLINE_REASON__DECLINE_CREDIT;
  d.text = "assessment not passed";
  ft_expect("icbc1", "referral.decline", &d.base,
            GM__STATUS__FAILED_PRECONDITION, late);
  ck_assert_str_eq(ft_redis_field(id, "st"), "6");
  ck_assert_int_eq(ft_ledger_int("SELECT count(*) FROM finance_loans"), 0);
  /* The enterprise may still withdraw. */
  Gm__Finance__TextRequest w = GM__FINANCE__TEXT_REQUEST__INIT;
  w.id = id;
  w.text = "found another lender";
  ft_free(ft_ok("acme", "referral.withdraw", &w.base));
}
END_TEST

/* Nobody can act for a bank whose staff lost the bank role: the
   enterprise may not pick it (it could only miss its contact deadline,
   and the other claimants lose access at the pick); the centre's bank
   list says so. */
START_TEST(a_bank_without_active_staff_cannot_be_picked) {
  char id[32];
  ft_copy_id(id, ft_refer("acme", 500000000, 36, 0));
  ft_free(ft_claim("icbc1", id));
  ft_free(ft_claim("abc1", id));
  ft_register("icbc1", "enterprise");
  Gm__Finance__PickRequest p = GM__FINANCE__PICK_REQUEST__INIT;
  p.id = id;
  p.bank = "icbc";
  ft_expect("acme", "referral.pick", &p.base, GM__STATUS__FAILED_PRECONDITION,
            "bank icbc has no staff who can act for it now, so it could not "
            "make contact within the contact deadline; pick another claimant "
            "(abc), or pick icbc once the centre has linked staff to it "
            "(before the pick deadline, 2026-03-10 00:00 Asia/Shanghai)");
  ck_assert_str_eq(ft_redis_field(id, "st"), "2");
  Gm__Finance__BanksRequest bl = GM__FINANCE__BANKS_REQUEST__INIT;
  Gm__Finance__BankList *l =
      (Gm__Finance__BankList *)ft_ok(FT_CENTRE, "bank.list", &bl.base);
  int flagged = 0;
  for (size_t i = 0; i < l->n_banks; i++) {
    ck_assert_int_eq(l->banks[i]->no_active_staff,
                     !strcmp(l->banks[i]->id, "icbc"));
    flagged += l->banks[i]->no_active_staff;
  }
  ck_assert_int_eq(flagged, 1);
  ft_free(l);
  /* The staff member holds the role again: it can be picked. */
  ft_register("icbc1", "bank");
  ft_free(ft_pick("acme", id, "icbc"));
}
END_TEST

START_TEST(working_days_follow_the_calendar_in_force) {
  /* Wednesday 30 September 2026: 1-7 October are off, 10 October is
     worked; the shipped calendar says so. */
  ft_clock(ft_at("2026-09-30", 10, 0));
  Gm__Finance__Referral *r = ft_refer("acme", 500000000, 36, 0);
  ck_assert_int_eq(r->pick_due_ms, ft_at("2026-10-14", 0, 0));
  ft_free(r);
  /* The centre declares Thursday 8 October a holiday too. */
  Gm__Finance__CalendarDay d = GM__FINANCE__CALENDAR_DAY__INIT, *days[] = {&d};
  Gm__Finance__LoadCalendarRequest load =
      GM__FINANCE__LOAD_CALENDAR_REQUEST__INIT;
  d.date = "2026-10-08";
  d.note = "local holiday";
  load.days = days;
  load.n_days = 1;
  load.source = "test";
  ft_expect("acme", "calendar.load", &load.base, GM__STATUS__PERMISSION_DENIED,
            "needs role centre");
  Gm__Finance__Calendar *cal =
      (Gm__Finance__Calendar *)ft_ok(FT_CENTRE, "calendar.load", &load.base);
  ck_assert(!cal->builtin);
  ck_assert_int_eq(cal->n_days, 1);
  ft_free(cal);
  r = ft_refer("acme", 500000000, 36, 0);
  /* The centre's calendar replaces the shipped one: its only day off is
     the 8th, so 1-7 October count as working days now. */
  ck_assert_int_eq(r->pick_due_ms, ft_at("2026-10-08", 0, 0));
  ft_free(r);
  /* A day that changes nothing is refused with the reason. */
  d.date = "2026-10-10";
  ft_expect(FT_CENTRE, "calendar.load", &load.base,
            GM__STATUS__INVALID_ARGUMENT, "is a weekend day");
}
END_TEST

/* The centre loads a calendar of one holiday (statutory: of that kind). */
static void load_one_day(const char *date, int statutory) {
  Gm__Finance__CalendarDay d = GM__FINANCE__CALENDAR_DAY__INIT, *days[] = {&d};
  Gm__Finance__LoadCalendarRequest load =
      GM__FINANCE__LOAD_CALENDAR_REQUEST__INIT;
  d.date = (char *)date;
  d.note = "test";
  d.statutory = statutory;
  load.days = days;
  load.n_days = 1;
  load.source = "test";
  ft_free(ft_ok(FT_CENTRE, "calendar.load", &load.base));
}

/* The notes of calendar.list over from..to, each cut to its first 8
   bytes ("2027: th") and joined by '|'. */
static void calendar_notes(const char *from, const char *to, char *out,
                           size_t len) {
  Gm__Finance__CalendarRequest q = GM__FINANCE__CALENDAR_REQUEST__INIT;
  q.from = (char *)from;
  q.to = (char *)to;
  Gm__Finance__Calendar *c =
      (Gm__Finance__Calendar *)ft_ok("acme", "calendar.list", &q.base);
  out[0] = '\0';
  for (size_t i = 0; i < c->n_notes; i++)
    snprintf(out + strlen(out), len - strlen(out), "%s%.8s", i ? "|" : "",
             c->notes[i]);
  ft_free(c);
}

/*
 * The shipped calendar has the State Council's arrangement for 2025 and
 * 2026, only the holidays the law fixes for 2027 (1 January is one), and
 * nothing later: calendar.list says so for each year of its range.  A
 * loaded calendar is noted for the years it has no day of in the range.
 */
START_TEST(the_listing_names_years_without_the_arrangement) {
  char got[256];
  calendar_notes("2026-03-01", "2026-12-31", got, sizeof got);
  ck_assert_str_eq(got, "");
  calendar_notes("2026-12-20", "2029-01-10", got, sizeof got);
  ck_assert_str_eq(got, "2027: th|2028: th|2029: th");
  Gm__Finance__CalendarRequest q = GM__FINANCE__CALENDAR_REQUEST__INIT;
  q.from = "2027-01-01";
  q.to = "2027-01-31";
  Gm__Finance__Calendar *c =
      (Gm__Finance__Calendar *)ft_ok("acme", "calendar.list", &q.base);
  ck_assert_uint_eq(c->n_days, 1);
  ck_assert_str_eq(c->days[0]->date, "2027-01-01");
  ck_assert_uint_eq(c->n_notes, 1);
  ck_assert_msg(strstr(c->notes[0], "only the holidays the law fixes") &&
                    strstr(c->notes[0], "arrangement for 2027") &&
                    strstr(c->notes[0], "gm finance calendar load"),
                "%s", c->notes[0]);
  ft_free(c);
  /* New Year's Day 2027 is not worked: a referral on Thursday 31 December
     2026 has Monday 4 to Friday 8 January for its 5 working days (with 1
     January worked it would end on the 7th). */
  ft_clock(ft_at("2026-12-31", 10, 0));
  Gm__Finance__Referral *r = ft_refer("acme", 500000000, 36, 0);
  ck_assert_int_eq(r->pick_due_ms, ft_at("2027-01-09", 0, 0));
  ft_free(r);
  /* The centre loads a calendar with one day of 2029: the ranges holding
     a day of it are not noted; 2027 now has no day in force. */
  load_one_day("2029-03-05", 0);
  calendar_notes("2029-03-01", "2029-03-31", got, sizeof got);
  ck_assert_str_eq(got, "");
  calendar_notes("2027-01-01", "2027-01-31", got, sizeof got);
  ck_assert_str_eq(got, "2027: th");
  /* A loaded calendar keeps the kind statutory: its day is a holiday, and
     its year is noted as holding only the law's holidays. */
  load_one_day("2027-01-01", 1);
  q.from = "2027-01-01";
  q.to = "2027-01-31";
  c = (Gm__Finance__Calendar *)ft_ok("acme", "calendar.list", &q.base);
  ck_assert_uint_eq(c->n_days, 1);
  ck_assert(c->days[0]->statutory && !c->days[0]->working);
  ck_assert_uint_eq(c->n_notes, 1);
  ck_assert_msg(strstr(c->notes[0],
                       "only the holidays the law fixes for "
                       "2027 (kind statutory)"),
                "%s", c->notes[0]);
  ft_free(c);
}
END_TEST

int main(void) {
  Suite *s = suite_create("finance deadlines");
  TCase *tc = tcase_create("deadlines");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_set_timeout(tc, 120);
  tcase_add_test(
      tc, a_missed_contact_returns_it_to_the_pool_and_records_the_breach);
  tcase_add_test(tc, a_miss_with_no_other_bank_left_expires_it);
  tcase_add_test(tc, nobody_picked_in_time_expires_it);
  tcase_add_test(tc, a_pick_contact_or_decline_after_its_deadline_is_too_late);
  tcase_add_test(tc, a_missed_decision_returns_it_to_the_pool_and_is_reported);
  tcase_add_test(tc, a_missed_decision_with_no_other_bank_left_expires_it);
  tcase_add_test(tc, a_fund_or_decline_after_the_decision_deadline_is_too_late);
  tcase_add_test(tc, a_bank_without_active_staff_cannot_be_picked);
  tcase_add_test(tc,
                 a_withdrawal_after_a_missed_contact_deadline_records_the_miss);
  tcase_add_test(tc, working_days_follow_the_calendar_in_force);
  tcase_add_test(tc, the_listing_names_years_without_the_arrangement);
  suite_add_tcase(s, tc);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
