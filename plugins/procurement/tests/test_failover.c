/*
 * kill -9 of a Redis master under bidding, its replica promoted (issue 12):
 * on a private cluster of 3 masters with 2 replicas each and gmd with
 * [redis] cluster_wait_replicas = 1000, supplier threads submit, replace
 * and withdraw sealed bids on open tenders under idempotency keys,
 * retrying UNAVAILABLE or no reply under the same key, while the master of
 * the first tender's slot is killed and its most advanced replica takes
 * over.  Then the bid deadline passes (the manual clock) and the tenders
 * open.  Every acknowledged bid action is in the ledger once (bid log),
 * each bid's last version, hash and price are the last acknowledged ones
 * (a lost action leaves an older version, a doubled one a newer), the
 * close deadline opened each tender once, and the ledger matches Redis
 * (the live bids, the opened texts, the sheet).  ctest label "cluster".
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cluster_failover.h"
#include "harness.h"

#define T0 pt_at(PT_MONDAY, 10, 0)
#define DEADLINE (T0 + 21 * PT_DAY)
#define TENDERS 12
#define SUPPLIERS 4

static gm_test_cluster *cl;

static void setup(void) {
  cl = gm_test_cluster_start(3, 2, 1000);
  /* Before any call: with cluster_wait_replicas a write is answered only
     once a replica streams. */
  gm_test_cluster_wait_streaming(cl);
  pt_start_cluster(cl, "[redis]\ncluster_wait_replicas = 1000\n", T0);
}

static void teardown(void) {
  pt_stop();
  gm_test_cluster_stop(&cl);
}

/* What a supplier thread knows of its bid on one tender: from the replies
   it was given, nothing else. */
typedef struct bid_seen {
  int actions;    /* acknowledged submit, replace and withdraw */
  int version;    /* of the last acknowledged action */
  int live;       /* the last was a submit or replace */
  long long unit; /* its unit price */
  char hash[65];
} bid_seen;

typedef struct supplier {
  pthread_t th;
  gm_test_conn *conn;
  int id;
  char name[16];
  bid_seen bid[TENDERS];
  int acked;   /* actions answered OK */
  int retried; /* of them, those that needed a retry */
  int bad;     /* any other status, or no answer in the end: the test fails */
} supplier;

static atomic_int stop_flag;

static const char *tender_id(int j, char out[16]) {
  snprintf(out, 16, "T-%d", j);
  return out;
}

/* One action under its own idempotency key, retried under the same key and
   body while gmd answers UNAVAILABLE or nothing; the receipt, or NULL (and
   s->bad set) on any other answer. */
static Gm__Procurement__BidReceipt *act(supplier *s, const char *method,
                                        const ProtobufCMessage *req) {
  char idem[48];
  snprintf(idem, sizeof idem, "%s-%d", s->name, s->acked);
  for (int tries = 1; tries <= 1000; tries++) {
    Gm__Reply *r =
        gm_test_call(s->conn, s->name, "procurement", method, idem, req);
    int st = r ? (int)r->status : GM__STATUS__UNAVAILABLE;
    if (st == GM__STATUS__OK) {
      Gm__Procurement__BidReceipt *rc =
          gm__procurement__bid_receipt__unpack(NULL, r->body.len, r->body.data);
      gm__reply__free_unpacked(r, NULL);
      s->retried += tries > 1;
      s->acked++;
      return rc;
    }
    if (st != GM__STATUS__UNAVAILABLE) {
      fprintf(stderr, "%s %s: status %d: %s\n", method, idem, st, r->message);
      gm__reply__free_unpacked(r, NULL);
      s->bad = 1;
      return NULL;
    }
    if (r) gm__reply__free_unpacked(r, NULL);
    gm_test_sleep_ms(20);
  }
  fprintf(stderr, "%s %s: still UNAVAILABLE or no reply after 1000 tries\n",
          method, idem);
  s->bad = 1;
  return NULL;
}

/*
 * A supplier goes round the tenders; on each in turn it submits a bid,
 * replaces it (a new price), withdraws it, and so on, so its actions on a
 * tender alternate and any lost or doubled one shows: the version counts
 * submits and replacements, and a withdrawal or submission out of turn is
 * refused (NOT_FOUND, ALREADY_EXISTS: the test fails).
 */
static void *supplier_run(void *arg) {
  supplier *s = arg;
  for (int n = 0; !atomic_load(&stop_flag) && !s->bad; n++) {
    int j = n % TENDERS;
    bid_seen *b = &s->bid[j];
    char tid[16];
    tender_id(j, tid);
    Gm__Procurement__BidReceipt *rc;
    if (b->live && b->actions % 3 == 2) {
      Gm__Procurement__TenderRequest w = GM__PROCUREMENT__TENDER_REQUEST__INIT;
      w.tender_id = tid;
      rc = act(s, "bid.withdraw", &w.base);
    } else {
      Gm__Procurement__BidRequest q = GM__PROCUREMENT__BID_REQUEST__INIT;
      Gm__Procurement__BidLine l = GM__PROCUREMENT__BID_LINE__INIT, *pl = &l;
      /* A price of its own per supplier and action. */
      long long unit = 100000 + s->id * 100000 + n;
      l.item = "D1";
      l.unit_price = unit;
      q.tender_id = tid;
      q.currency = "CNY";
      q.lines = &pl;
      q.n_lines = 1;
      rc = act(s, b->live ? "bid.replace" : "bid.submit", &q.base);
      if (rc) b->unit = unit;
    }
    if (!rc) break;
    b->actions++;
    b->version = rc->version;
    b->live = strcmp(rc->state, "withdrawn") != 0;
    snprintf(b->hash, sizeof b->hash, "%s", rc->hash);
    gm__procurement__bid_receipt__free_unpacked(rc, NULL);
  }
  return NULL;
}

START_TEST(bids_survive_a_master_killed_under_load) {
  pt_register("centre", "certifier");
  pt_register("city", "agency");
  pt_category("DESK", GM__PROCUREMENT__POLICY__POLICY_NONE, 0, "", 0);
  static supplier s[SUPPLIERS];
  for (int i = 0; i < SUPPLIERS; i++) {
    char code[19];
    s[i] = (supplier){.id = i};
    snprintf(s[i].name, sizeof s[i].name, "sup%d", i);
    pt_register(s[i].name, "supplier");
    pt_party(s[i].name, pt_uscc(100 + i, code),
             GM__PROCUREMENT__SME_CLASS__SME_NONE);
  }
  int per_master[12] = {0}; /* by node */
  for (int j = 0; j < TENDERS; j++) {
    char tid[16], key[64];
    pt_tender d;
    pt_tender_init(&d, tender_id(j, tid), 100000000000, DEADLINE);
    pt_item(&d, "D1", "DESK", 3, 0, NULL);
    pt_publish("city", &d);
    snprintf(key, sizeof key, "gm:{procurement:t:%s}:b", tid);
    per_master[gm_test_cluster_master_of(cl, key)]++;
  }
  int victim = gm_test_cluster_master_of(cl, "gm:{procurement:t:T-0}:b");
  fprintf(stderr, "tenders per master: %d %d %d; killing node %d\n",
          per_master[0], per_master[1], per_master[2], victim);

  atomic_store(&stop_flag, 0);
  for (int i = 0; i < SUPPLIERS; i++) {
    s[i].conn =
        gm_test_conn_new(gm_test_gmd_endpoint(pt_gmd), NULL, NULL, NULL);
    ck_assert_int_eq(pthread_create(&s[i].th, NULL, supplier_run, &s[i]), 0);
  }
  gm_test_sleep_ms(700);
  int promoted = gm_test_cluster_fail_over(cl, victim);
  /* The promoted master's writes are answered again once the other
     replica streams from it; then some more bidding. */
  gm_test_cluster_wait_streaming(cl);
  gm_test_sleep_ms(500);
  atomic_store(&stop_flag, 1);
  int acked = 0, retried = 0, bad = 0;
  for (int i = 0; i < SUPPLIERS; i++) {
    pthread_join(s[i].th, NULL);
    gm_test_conn_destroy(&s[i].conn);
    acked += s[i].acked;
    retried += s[i].retried;
    bad += s[i].bad;
  }
  fprintf(stderr,
          "failover under bidding: %d bid actions acknowledged, %d retried; "
          "node %d promoted\n",
          acked, retried, promoted);
  ck_assert_int_eq(bad, 0);
  ck_assert_int_gt(retried, 0); /* the kill did land under load */

  /* Every acknowledged action settled once, before the opening. */
  ck_assert_int_eq(
      pt_ledger_wait("SELECT count(*) FROM procurement_bid_log", acked), acked);

  /* The bid deadline: each tender closes and opens its bids. */
  pt_clock(DEADLINE);
  for (int j = 0; j < TENDERS; j++) {
    char tid[16];
    int live = 0;
    for (int i = 0; i < SUPPLIERS; i++) live += s[i].bid[j].live;
    /* Every supplier's last action on it a withdrawal: no valid bid. */
    const char *want = live ? "evaluated" : "unsuccessful";
    ck_assert_str_eq(pt_wait_state(tender_id(j, tid), want), want);
  }
  gm_test_cluster_reader *rd = gm_test_cluster_reader_new(cl);
  for (int j = 0; j < TENDERS; j++) {
    char tid[16], sql[256], key[64];
    tender_id(j, tid);
    int live = 0;
    for (int i = 0; i < SUPPLIERS; i++) live += s[i].bid[j].live;
    /* The ledger's state is Redis's. */
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM procurement_tenders WHERE tender_id ="
             " '%s' AND state = '%s'",
             tid, live ? "evaluated" : "unsuccessful");
    ck_assert_int_eq(pt_ledger_wait(sql, 1), 1);
    /* The close fired once: one opening, one evaluated round. */
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM procurement_tender_log WHERE tender_id ="
             " '%s' AND action = 'opened'",
             tid);
    ck_assert_int_eq(pt_ledger_wait(sql, 1), 1);
    snprintf(sql, sizeof sql,
             "SELECT bids FROM procurement_rounds WHERE tender_id = '%s'"
             " AND round = 1",
             tid);
    ck_assert_int_eq(pt_ledger_wait(sql, live), live);
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM procurement_rounds WHERE tender_id = '%s'"
             " AND round <> 1",
             tid);
    ck_assert_int_eq(pt_ledger_int(sql), 0);
    /* Redis: the live bids, opened, and the sheet ranks them; the ledger
       has as many opened bids and sheet rows. */
    snprintf(key, sizeof key, "gm:{procurement:t:%s}:bz", tid);
    ck_assert_int_eq(gm_test_cluster_read_int(rd, "ZCARD %s", key), live);
    snprintf(key, sizeof key, "gm:{procurement:t:%s}:o", tid);
    ck_assert_int_eq(gm_test_cluster_read_int(rd, "HLEN %s", key), live);
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM procurement_bids WHERE tender_id = '%s'"
             " AND state = 'opened'",
             tid);
    ck_assert_int_eq(pt_ledger_wait(sql, live), live);
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM procurement_sheet WHERE tender_id = '%s'",
             tid);
    ck_assert_int_eq(pt_ledger_wait(sql, live), live);

    /* Each supplier's bid: as its last acknowledged action left it, in
       bid.list (from Redis) and in the ledger. */
    Gm__Procurement__BidListRequest lq =
        GM__PROCUREMENT__BID_LIST_REQUEST__INIT;
    lq.tender_id = tid;
    lq.limit = 1000;
    Gm__Procurement__BidList *list =
        (Gm__Procurement__BidList *)pt_call_settled("city", "bid.list",
                                                    &lq.base);
    ck_assert_msg(list, "bid.list %s: %s", tid, pt_message);
    int listed = 0;
    for (int i = 0; i < SUPPLIERS; i++) {
      const bid_seen *b = &s[i].bid[j];
      snprintf(sql, sizeof sql,
               "SELECT count(*) FROM procurement_bid_log WHERE tender_id ="
               " '%s' AND supplier = '%s'",
               tid, s[i].name);
      ck_assert_int_eq(pt_ledger_int(sql), b->actions);
      if (!b->actions) continue;
      listed++;
      const Gm__Procurement__Bid *got = NULL;
      for (size_t k = 0; k < list->n_bids; k++)
        if (!strcmp(list->bids[k]->supplier, s[i].name)) {
          ck_assert_msg(got == NULL, "%s bid twice on %s", s[i].name, tid);
          got = list->bids[k];
        }
      ck_assert_msg(got, "the bid of %s on %s is not listed", s[i].name, tid);
      ck_assert_str_eq(got->state, b->live ? "opened" : "withdrawn");
      ck_assert_int_eq(got->version, b->version);
      ck_assert_str_eq(got->hash, b->hash);
      snprintf(sql, sizeof sql,
               "SELECT version FROM procurement_bids WHERE tender_id = '%s'"
               " AND supplier = '%s' AND hash = '%s' AND state = '%s'",
               tid, s[i].name, b->hash, b->live ? "opened" : "withdrawn");
      ck_assert_int_eq(pt_ledger_int(sql), b->version);
      if (!b->live) continue;
      char line[64], text[1024];
      snprintf(line, sizeof line, "line=D1,%lld,\n", b->unit);
      ck_assert_msg(strstr(got->text, line), "%s on %s: %s", s[i].name, tid,
                    got->text);
      snprintf(sql, sizeof sql,
               "SELECT opened_text FROM procurement_bids WHERE tender_id ="
               " '%s' AND supplier = '%s'",
               tid, s[i].name);
      pt_ledger_text(sql, text, sizeof text);
      ck_assert_str_eq(text, got->text);
    }
    ck_assert_int_eq((int)list->n_bids, listed);
    pt_free(list);
  }
  gm_test_cluster_reader_free(&rd);
}
END_TEST

int main(void) {
  Suite *su = suite_create("procurement_failover");
  TCase *tc = tcase_create("failover");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, bids_survive_a_master_killed_under_load);
  suite_add_tcase(su, tc);
  SRunner *sr = srunner_create(su);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
