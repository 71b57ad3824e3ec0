/*
 * Sealed bids: before the deadline nobody but the bidder reads a price, not
 * the agency, not another supplier, not an operator reading Redis or the
 * ledger; the hash returned at submission is the hash published at the
 * opening, and it is SHA-256 of the opened text.  Replacing and
 * withdrawing before the deadline.
 */
#include <sodium.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

#define T0 pt_at(PT_MONDAY, 10, 0)
#define DEADLINE (T0 + 21 * PT_DAY)
/* Prices no other number in the test has. */
#define SECRET "7654321"
#define SECRET2 "8765432"

static void setup(void) {
  pt_start(NULL, T0);
  pt_register("centre", "certifier");
  pt_register("city", "agency");
  pt_register("alpha", "supplier");
  pt_register("beta", "supplier");
  pt_party("alpha", PT_USCC_A, GM__PROCUREMENT__SME_CLASS__SME_NONE);
  pt_party("beta", PT_USCC_B, GM__PROCUREMENT__SME_CLASS__SME_SMALL);
  pt_category("DESK", GM__PROCUREMENT__POLICY__POLICY_NONE, 0, "", 0);
  pt_tender d;
  pt_tender_init(&d, "T-SEAL", 100000000000, DEADLINE);
  pt_item(&d, "D1", "DESK", 3, 0, NULL);
  pt_publish("city", &d);
}

static void teardown(void) {
  pt_stop();
}

static Gm__Procurement__Bid *bid_get(const char *as, const char *who) {
  Gm__Procurement__BidQuery q = GM__PROCUREMENT__BID_QUERY__INIT;
  q.tender_id = "T-SEAL";
  q.supplier = (char *)who;
  return (Gm__Procurement__Bid *)pt_call(as, "bid.get", &q.base);
}

/* Whether any key, field or value in Redis holds `text`. */
static int redis_holds(const char *text) {
  redisContext *c = gm_test_redis_connect(pt_redis);
  redisReply *keys = gm_test_redis_cmd(c, "KEYS *");
  int found = 0;
  for (size_t i = 0; i < keys->elements && !found; i++) {
    const char *k = keys->element[i]->str;
    if (strstr(k, text)) found = 1;
    /* DUMP: every type, every byte of the value. */
    redisReply *d = gm_test_redis_cmd(c, "DUMP %s", k);
    if (d->type == REDIS_REPLY_STRING &&
        memmem(d->str, d->len, text, strlen(text)))
      found = 1;
    freeReplyObject(d);
  }
  freeReplyObject(keys);
  redisFree(c);
  return found;
}

static int ledger_cell(void *arg, int n, char **v, char **names) {
  (void)names;
  for (int i = 0; i < n; i++)
    if (v[i] && strstr(v[i], (const char *)arg)) return 1; /* abort: found */
  return 0;
}

/* Whether any cell of any table of the ledger holds `text`. */
static int ledger_holds(const char *text) {
  sqlite3 *db;
  ck_assert_int_eq(sqlite3_open_v2(gm_test_gmd_ledger(pt_gmd), &db,
                                   SQLITE_OPEN_READONLY, NULL),
                   SQLITE_OK);
  sqlite3_busy_timeout(db, 5000);
  sqlite3_stmt *st;
  int found = 0;
  ck_assert_int_eq(sqlite3_prepare_v2(db,
                                      "SELECT name FROM sqlite_schema WHERE"
                                      " type = 'table'",
                                      -1, &st, NULL),
                   SQLITE_OK);
  while (!found && sqlite3_step(st) == SQLITE_ROW) {
    char sql[256];
    snprintf(sql, sizeof sql, "SELECT * FROM \"%s\"",
             (const char *)sqlite3_column_text(st, 0));
    found =
        sqlite3_exec(db, sql, ledger_cell, (void *)text, NULL) == SQLITE_ABORT;
  }
  sqlite3_finalize(st);
  sqlite3_close(db);
  return found;
}

START_TEST(a_sealed_bid_is_unreadable_before_the_opening) {
  const char *a[] = {"D1=" SECRET}, *b[] = {"D1=" SECRET2};
  Gm__Procurement__BidReceipt *ra = pt_bid("alpha", "T-SEAL", 0, a, 1);
  ck_assert_msg(ra, "%s", pt_message);
  pt_free(
      pt_bid("beta", "T-SEAL", GM__PROCUREMENT__SME_CLASS__SME_SMALL, b, 1));
  /* Wait until the ledger has settled both submissions. */
  ck_assert_int_eq(pt_ledger_wait("SELECT count(*) FROM procurement_bids"
                                  " WHERE tender_id = 'T-SEAL'",
                                  2),
                   2);

  /* The bidder reads its own bid, with its prices. */
  Gm__Procurement__Bid *mine = bid_get("alpha", "");
  ck_assert_msg(mine, "%s", pt_message);
  ck_assert_int_eq(mine->n_lines, 1);
  ck_assert_int_eq(mine->lines[0]->unit_price, atoll(SECRET));
  ck_assert_int_eq(mine->total, 3 * atoll(SECRET));
  ck_assert_str_eq(mine->hash, ra->hash);
  pt_free(mine);

  /* The agency and another supplier cannot; nor an admin. */
  ck_assert_ptr_null(bid_get("city", "alpha"));
  ck_assert_int_eq(pt_status, GM__STATUS__PERMISSION_DENIED);
  ck_assert_msg(strstr(pt_message, "sealed until the opening"), "%s",
                pt_message);
  ck_assert_ptr_null(bid_get("beta", "alpha"));
  ck_assert_int_eq(pt_status, GM__STATUS__PERMISSION_DENIED);
  ck_assert_ptr_null(bid_get("root", "alpha"));
  ck_assert_int_eq(pt_status, GM__STATUS__PERMISSION_DENIED);
  Gm__Procurement__BidListRequest lq = GM__PROCUREMENT__BID_LIST_REQUEST__INIT;
  lq.tender_id = "T-SEAL";
  pt_expect("city", "bid.list", &lq.base, GM__STATUS__FAILED_PRECONDITION,
            "sealed");

  /* An operator reading all of Redis, or all of the ledger, finds no
     price: not the unit price, not the total, not in yuan. */
  char total[32], yuan[32];
  snprintf(total, sizeof total, "%lld", 3 * atoll(SECRET));
  ck_assert(!redis_holds(SECRET) && !redis_holds(SECRET2));
  ck_assert(!redis_holds(total) && !redis_holds("76543.21"));
  ck_assert(!ledger_holds(SECRET) && !ledger_holds(SECRET2));
  ck_assert(!ledger_holds(total) &&
            !ledger_holds(pr_yuan(atoll(SECRET), yuan)));
  /* But the hash is there, and who bid. */
  ck_assert(redis_holds(ra->hash));

  /* At the opening the prices become public. */
  pt_clock(DEADLINE);
  ck_assert_str_eq(pt_wait_state("T-SEAL", "evaluated"), "evaluated");
  mine = bid_get("beta", "alpha");
  ck_assert_msg(mine, "%s", pt_message);
  ck_assert_int_eq(mine->lines[0]->unit_price, atoll(SECRET));
  pt_free(mine);
  pt_free(ra);
}
END_TEST

/* The receipt's hash is the one published at the opening, and SHA-256 of
   the opened text, which holds the bid's prices. */
START_TEST(the_published_hash_matches_the_opened_bid) {
  const char *a1[] = {"D1=500000"}, *b[] = {"D1=490000"};
  Gm__Procurement__BidReceipt *first = pt_bid("alpha", "T-SEAL", 0, a1, 1);
  ck_assert_msg(first, "%s", pt_message);
  /* Replaced: a new version and a new hash. */
  Gm__Procurement__BidRequest q = GM__PROCUREMENT__BID_REQUEST__INIT;
  Gm__Procurement__BidLine l = GM__PROCUREMENT__BID_LINE__INIT, *pl = &l;
  l.item = "D1";
  l.unit_price = 480000;
  q.tender_id = "T-SEAL";
  q.currency = "CNY";
  q.lines = &pl;
  q.n_lines = 1;
  Gm__Procurement__BidReceipt *second =
      (Gm__Procurement__BidReceipt *)pt_call("alpha", "bid.replace", &q.base);
  ck_assert_msg(second, "%s", pt_message);
  ck_assert_int_eq(second->version, 2);
  ck_assert_str_ne(second->hash, first->hash);
  /* beta bids and withdraws. */
  pt_free(
      pt_bid("beta", "T-SEAL", GM__PROCUREMENT__SME_CLASS__SME_SMALL, b, 1));
  Gm__Procurement__TenderRequest w = GM__PROCUREMENT__TENDER_REQUEST__INIT;
  w.tender_id = "T-SEAL";
  ProtobufCMessage *wr = pt_call("beta", "bid.withdraw", &w.base);
  ck_assert_msg(wr, "%s", pt_message);
  protobuf_c_message_free_unpacked(wr, NULL);
  pt_expect("beta", "bid.withdraw", &w.base, GM__STATUS__NOT_FOUND, "no bid");
  /* Submitting twice is refused; replacing nothing too. */
  ck_assert_ptr_null(pt_bid("alpha", "T-SEAL", 0, a1, 1));
  ck_assert_int_eq(pt_status, GM__STATUS__ALREADY_EXISTS);
  ck_assert_msg(strstr(pt_message,
                       "replace it with gm procurement rebid "
                       "(bid.replace)"),
                "%s", pt_message);
  pt_expect("beta", "bid.replace", &q.base, GM__STATUS__NOT_FOUND,
            "to replace; submit one with gm procurement bid (bid.submit)");

  pt_clock(DEADLINE);
  ck_assert_str_eq(pt_wait_state("T-SEAL", "evaluated"), "evaluated");
  ck_assert_int_eq(pt_ledger_wait("SELECT count(*) FROM procurement_bids"
                                  " WHERE opened_text <> ''",
                                  1),
                   1);
  Gm__Procurement__BidListRequest lq = GM__PROCUREMENT__BID_LIST_REQUEST__INIT;
  lq.tender_id = "T-SEAL";
  Gm__Procurement__BidList *list =
      (Gm__Procurement__BidList *)pt_call_settled("beta", "bid.list", &lq.base);
  ck_assert_msg(list, "%s", pt_message);
  ck_assert_int_eq(list->n_bids, 2);
  const Gm__Procurement__Bid *ba = NULL, *bb = NULL;
  for (size_t i = 0; i < list->n_bids; i++) {
    if (!strcmp(list->bids[i]->supplier, "alpha")) ba = list->bids[i];
    if (!strcmp(list->bids[i]->supplier, "beta")) bb = list->bids[i];
  }
  ck_assert_ptr_nonnull(ba);
  ck_assert_str_eq(ba->hash, second->hash);
  unsigned char h[crypto_hash_sha256_BYTES];
  char hex[65];
  crypto_hash_sha256(h, (const unsigned char *)ba->text, strlen(ba->text));
  sodium_bin2hex(hex, sizeof hex, h, sizeof h);
  ck_assert_str_eq(hex, ba->hash);
  ck_assert_msg(strstr(ba->text, "line=D1,480000,\n"), "%s", ba->text);
  ck_assert_msg(strstr(ba->text, "supplier=alpha\n"), "%s", ba->text);
  ck_assert_int_eq(ba->total, 1440000);
  /* The withdrawn bid is listed as withdrawn, never opened. */
  ck_assert_ptr_nonnull(bb);
  ck_assert_str_eq(bb->state, "withdrawn");
  ck_assert_str_eq(bb->text, "");
  /* The sheet carries the same hash. */
  Gm__Procurement__Sheet *s = pt_sheet("T-SEAL");
  ck_assert_int_eq(s->total_rows, 1);
  ck_assert_str_eq(pt_row(s, "alpha")->hash, second->hash);
  pt_free(s);
  pt_free(list);
  pt_free(first);
  pt_free(second);
}
END_TEST

/*
 * Who bid is sealed too: before the opening, bid.get of another supplier
 * answers the same whether it has a live bid, a withdrawn one or none, so
 * the agency or a competitor cannot find the bidders by asking.
 */
START_TEST(nobody_learns_who_bid_before_the_opening) {
  const char *b[] = {"D1=" SECRET2};
  pt_free(
      pt_bid("beta", "T-SEAL", GM__PROCUREMENT__SME_CLASS__SME_SMALL, b, 1));
  Gm__Procurement__TenderRequest w = GM__PROCUREMENT__TENDER_REQUEST__INIT;
  w.tender_id = "T-SEAL";
  ProtobufCMessage *wr = pt_call("beta", "bid.withdraw", &w.base);
  ck_assert_msg(wr, "%s", pt_message);
  protobuf_c_message_free_unpacked(wr, NULL);
  const char *a[] = {"D1=" SECRET};
  pt_free(pt_bid("alpha", "T-SEAL", 0, a, 1));
  char first[2048];
  const char *asking[] = {"city", "beta", "root"};
  const char *about[] = {"alpha", "beta", "gamma"};
  first[0] = '\0';
  for (size_t i = 0; i < 3; i++)
    for (size_t k = 0; k < 3; k++) {
      if (!strcmp(asking[i], about[k])) continue;
      Gm__Procurement__Bid *got = bid_get(asking[i], about[k]);
      ck_assert_msg(got == NULL, "%s read the bid of %s before the opening",
                    asking[i], about[k]);
      ck_assert_msg(pt_status == GM__STATUS__PERMISSION_DENIED,
                    "%s asking about %s: status %d: %s", asking[i], about[k],
                    pt_status, pt_message);
      if (!first[0]) snprintf(first, sizeof first, "%s", pt_message);
      ck_assert_str_eq(pt_message, first);
    }
  /* The bidder still reads its own, and learns it has none when it has
     none. */
  Gm__Procurement__Bid *mine = bid_get("beta", "");
  ck_assert_msg(mine, "%s", pt_message);
  ck_assert_str_eq(mine->state, "withdrawn");
  pt_free(mine);
  pt_register("gamma", "supplier");
  ck_assert_ptr_null(bid_get("gamma", ""));
  ck_assert_int_eq(pt_status, GM__STATUS__NOT_FOUND);
  /* After the opening the withdrawn bid is public, as bid.list shows. */
  pt_clock(DEADLINE);
  ck_assert_str_eq(pt_wait_state("T-SEAL", "evaluated"), "evaluated");
  Gm__Procurement__Bid *got = bid_get("city", "beta");
  ck_assert_msg(got, "%s", pt_message);
  ck_assert_str_eq(got->state, "withdrawn");
  pt_free(got);
}
END_TEST

/*
 * While the settler has not written the evaluation (here it waits on a
 * write lock the test holds on the ledger), bid.list says the tender is
 * opened and its bids are on their way, retryably, rather than "sealed";
 * once the lock goes the list answers.
 */
START_TEST(the_bid_list_waits_for_settlement_not_the_seal) {
  const char *a[] = {"D1=" SECRET};
  pt_free(pt_bid("alpha", "T-SEAL", 0, a, 1));
  ck_assert_int_eq(pt_ledger_wait("SELECT count(*) FROM procurement_bids"
                                  " WHERE tender_id = 'T-SEAL'",
                                  1),
                   1);
  sqlite3 *db;
  ck_assert_int_eq(sqlite3_open(gm_test_gmd_ledger(pt_gmd), &db), SQLITE_OK);
  ck_assert_int_eq(sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL),
                   SQLITE_OK);
  pt_clock(DEADLINE);
  ck_assert_str_eq(pt_wait_state("T-SEAL", "evaluated"), "evaluated");
  Gm__Procurement__BidListRequest lq = GM__PROCUREMENT__BID_LIST_REQUEST__INIT;
  lq.tender_id = "T-SEAL";
  pt_expect("beta", "bid.list", &lq.base, GM__STATUS__UNAVAILABLE,
            "tender T-SEAL was opened and evaluated (round 1) but its opened "
            "bids are not in the ledger yet");
  ck_assert_int_eq(sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL), SQLITE_OK);
  sqlite3_close(db);
  Gm__Procurement__BidList *list =
      (Gm__Procurement__BidList *)pt_call_settled("beta", "bid.list", &lq.base);
  ck_assert_msg(list, "%s", pt_message);
  ck_assert_int_eq(list->n_bids, 1);
  ck_assert_str_eq(list->bids[0]->state, "opened");
  pt_free(list);
  /* A tender that does not exist is not called sealed. */
  lq.tender_id = "T-NONE";
  pt_expect("beta", "bid.list", &lq.base, GM__STATUS__NOT_FOUND,
            "no tender T-NONE");
}
END_TEST

/*
 * The same for the evaluation sheet: while the evaluation is in Redis and
 * not in the ledger, the sheet is UNAVAILABLE (retry), not "no evaluation
 * yet"; a round Redis has not evaluated is still "no evaluation".
 */
START_TEST(the_sheet_waits_for_settlement_not_the_evaluation) {
  const char *a[] = {"D1=" SECRET};
  pt_free(pt_bid("alpha", "T-SEAL", 0, a, 1));
  ck_assert_int_eq(pt_ledger_wait("SELECT count(*) FROM procurement_bids"
                                  " WHERE tender_id = 'T-SEAL'",
                                  1),
                   1);
  Gm__Procurement__SheetRequest q = GM__PROCUREMENT__SHEET_REQUEST__INIT;
  q.tender_id = "T-SEAL";
  pt_expect("root", "evaluation.sheet", &q.base,
            GM__STATUS__FAILED_PRECONDITION,
            "tender T-SEAL has no evaluation yet");
  sqlite3 *db;
  ck_assert_int_eq(sqlite3_open(gm_test_gmd_ledger(pt_gmd), &db), SQLITE_OK);
  ck_assert_int_eq(sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL),
                   SQLITE_OK);
  pt_clock(DEADLINE);
  ck_assert_str_eq(pt_wait_state("T-SEAL", "evaluated"), "evaluated");
  pt_expect("root", "evaluation.sheet", &q.base, GM__STATUS__UNAVAILABLE,
            "tender T-SEAL: evaluation round 1 is done but its sheet is not "
            "in the ledger yet");
  q.round = 1;
  pt_expect("root", "evaluation.sheet", &q.base, GM__STATUS__UNAVAILABLE,
            "evaluation round 1 is done");
  q.round = 2;
  pt_expect("root", "evaluation.sheet", &q.base,
            GM__STATUS__FAILED_PRECONDITION,
            "tender T-SEAL has no evaluation round 2 yet");
  ck_assert_int_eq(sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL), SQLITE_OK);
  sqlite3_close(db);
  q.round = 0;
  Gm__Procurement__Sheet *s = (Gm__Procurement__Sheet *)pt_call_settled(
      "root", "evaluation.sheet", &q.base);
  ck_assert_msg(s, "%s", pt_message);
  ck_assert_int_eq(s->round, 1);
  ck_assert_int_eq(s->total_rows, 1);
  ck_assert_str_eq(s->rows[0]->supplier, "alpha");
  pt_free(s);
}
END_TEST

/* The length of alpha's sealed bid in Redis. */
static long long sealed_len(void) {
  redisContext *c = gm_test_redis_connect(pt_redis);
  long long n =
      gm_test_redis_int(c, "HSTRLEN gm:{procurement:t:T-SEAL}:bc %s", "alpha");
  redisFree(c);
  return n;
}

/*
 * The sealed text's length says nothing either: a one-digit price with no
 * certificate and no SME class, and the largest price with the longest
 * certificate number and a medium enterprise's declaration, seal to the same
 * length (the text is padded to the longest any bid of this supplier on
 * this tender's items could have).  The bidder still reads its own prices.
 */
START_TEST(the_sealed_length_tells_nothing) {
  const char *small[] = {"D1=1"};
  pt_free(pt_bid("alpha", "T-SEAL", GM__PROCUREMENT__SME_CLASS__SME_NONE, small,
                 1));
  long long n1 = sealed_len();
  ck_assert_int_gt(n1, 0);
  Gm__Procurement__BidRequest q = GM__PROCUREMENT__BID_REQUEST__INIT;
  Gm__Procurement__BidLine l = GM__PROCUREMENT__BID_LINE__INIT, *pl = &l;
  char cert[80];
  snprintf(cert, sizeof cert, "%064d", 7);
  l.item = "D1";
  l.unit_price = PR_MAX_AMOUNT;
  l.certificate = cert;
  q.tender_id = "T-SEAL";
  q.currency = "CNY";
  q.sme = GM__PROCUREMENT__SME_CLASS__SME_MEDIUM;
  q.lines = &pl;
  q.n_lines = 1;
  Gm__Procurement__BidReceipt *r =
      (Gm__Procurement__BidReceipt *)pt_call("alpha", "bid.replace", &q.base);
  ck_assert_msg(r, "%s", pt_message);
  pt_free(r);
  ck_assert_int_eq(sealed_len(), n1);
  l.unit_price = atoll(SECRET);
  l.certificate = "GB-I-1";
  q.sme = GM__PROCUREMENT__SME_CLASS__SME_SMALL;
  r = (Gm__Procurement__BidReceipt *)pt_call("alpha", "bid.replace", &q.base);
  ck_assert_msg(r, "%s", pt_message);
  pt_free(r);
  ck_assert_int_eq(sealed_len(), n1);
  Gm__Procurement__Bid *mine = bid_get("alpha", "");
  ck_assert_msg(mine, "%s", pt_message);
  ck_assert_int_eq(mine->lines[0]->unit_price, atoll(SECRET));
  ck_assert_str_eq(mine->lines[0]->certificate, "GB-I-1");
  ck_assert_msg(strstr(mine->text, "sme=small\nline=D1," SECRET ",GB-I-1\n"),
                "%s", mine->text);
  char hash[65];
  snprintf(hash, sizeof hash, "%s", mine->hash);
  pt_free(mine);
  /* At the opening the published text is the unpadded one, and its
     SHA-256 is the hash. */
  pt_clock(DEADLINE);
  ck_assert_str_eq(pt_wait_state("T-SEAL", "evaluated"), "evaluated");
  ck_assert_int_eq(pt_ledger_wait("SELECT count(*) FROM procurement_bids"
                                  " WHERE opened_text <> ''",
                                  1),
                   1);
  char text[1024];
  pt_ledger_text(
      "SELECT opened_text FROM procurement_bids WHERE supplier ="
      " 'alpha'",
      text, sizeof text);
  unsigned char h[crypto_hash_sha256_BYTES];
  char hex[65];
  crypto_hash_sha256(h, (const unsigned char *)text, strlen(text));
  sodium_bin2hex(hex, sizeof hex, h, sizeof h);
  ck_assert_str_eq(hex, hash);
  Gm__Procurement__Sheet *s = pt_sheet("T-SEAL");
  ck_assert_str_eq(pt_row(s, "alpha")->status, "valid");
  ck_assert_int_eq(pt_row(s, "alpha")->bid_price, 3 * atoll(SECRET));
  pt_free(s);
}
END_TEST

/*
 * Two brokers on one Redis whose key files differ (each made its own at
 * its first start): a tender's bids are all sealed under one key, so one
 * broker can open them all.  A bid sealed through the other broker is
 * refused, saying why, instead of making the tender impossible to open.
 */
START_TEST(bids_of_a_tender_are_sealed_under_one_key) {
  char conf[512];
  snprintf(conf, sizeof conf,
           "[testing]\nclock = manual\nclock_start_ms = %lld\n"
           "[plugins]\nload = procurement\n[deadlines]\npoll_ms = 20\n"
           "[ledger]\nsettle = off\n",
           (long long)T0);
  gm_test_gmd *other =
      gm_test_gmd_start_named(pt_redis, "b2", GM_BUILD_PLUGIN_DIR, conf);
  gm_test_conn *mine = pt_conn;
  const char *a[] = {"D1=" SECRET}, *b[] = {"D1=" SECRET2};
  pt_free(pt_bid("alpha", "T-SEAL", 0, a, 1));
  pt_conn = gm_test_conn_new(gm_test_gmd_endpoint(other), NULL, NULL, NULL);
  Gm__Procurement__BidReceipt *r =
      pt_bid("beta", "T-SEAL", GM__PROCUREMENT__SME_CLASS__SME_SMALL, b, 1);
  gm_test_conn_destroy(&pt_conn);
  pt_conn = mine;
  gm_test_gmd_stop(&other);
  ck_assert_msg(r == NULL, "a bid sealed under another key file was taken");
  ck_assert_int_eq(pt_status, GM__STATUS__FAILED_PRECONDITION);
  ck_assert_msg(strstr(pt_message, "key file"), "%s", pt_message);
  redisContext *c = gm_test_redis_connect(pt_redis);
  ck_assert_int_eq(gm_test_redis_int(c,
                                     "HEXISTS gm:{procurement:t:T-SEAL}:b "
                                     "beta"),
                   0);
  redisFree(c);
  /* The tender opens. */
  pt_clock(DEADLINE);
  ck_assert_str_eq(pt_wait_state("T-SEAL", "evaluated"), "evaluated");
}
END_TEST

int main(void) {
  Suite *s = suite_create("procurement sealed bids");
  TCase *tc = tcase_create("sealed");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, a_sealed_bid_is_unreadable_before_the_opening);
  tcase_add_test(tc, the_published_hash_matches_the_opened_bid);
  tcase_add_test(tc, nobody_learns_who_bid_before_the_opening);
  tcase_add_test(tc, the_sealed_length_tells_nothing);
  tcase_add_test(tc, the_bid_list_waits_for_settlement_not_the_seal);
  tcase_add_test(tc, the_sheet_waits_for_settlement_not_the_evaluation);
  tcase_add_test(tc, bids_of_a_tender_are_sealed_under_one_key);
  suite_add_tcase(s, tc);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
