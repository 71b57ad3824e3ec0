/*
 * The OCDS export at every stage of a joint tender (published and
 * amended, opened with valid, disqualified and withdrawn bids, awarded,
 * contracted, delivered and paid), and of a cancelled and an unsuccessful
 * one, each validated against the OCDS 1.1.5 release-package schema with
 * python3-jsonschema (tests/validate_ocds.py) and checked for what it must
 * say: exact amounts, one buyer party per agency, a contract per agency.
 */
#include <jansson.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "harness.h"

#define T0 pt_at(PT_MONDAY, 10, 0)
#define DEADLINE (T0 + 21 * PT_DAY)

static void setup(void) {
  pt_start(NULL, T0);
  pt_register("centre", "certifier");
  pt_register("city", "agency");
  pt_register("district", "agency");
  pt_register("alpha", "supplier");
  pt_register("beta", "supplier");
  pt_register("gamma", "supplier");
  pt_party("city", PT_USCC_GOV, GM__PROCUREMENT__SME_CLASS__SME_NONE);
  pt_party("alpha", PT_USCC_A, GM__PROCUREMENT__SME_CLASS__SME_NONE);
  pt_party("beta", PT_USCC_B, GM__PROCUREMENT__SME_CLASS__SME_SMALL);
  pt_party("gamma", PT_USCC_C, GM__PROCUREMENT__SME_CLASS__SME_MEDIUM);
  pt_category("INSUL", GM__PROCUREMENT__POLICY__POLICY_PRIORITY, 300,
              "gb_insulation,gb_structural", 1);
  pt_category("DESK", GM__PROCUREMENT__POLICY__POLICY_NONE, 0, "", 0);
  pt_cert("GB-A", PT_USCC_A, "INSUL", "gb_insulation", 2, T0 - PT_DAY,
          T0 + 400 * PT_DAY);
}

static void teardown(void) {
  pt_stop();
}

/* Exports `id` (one release per change when per_change), validates it,
   and returns the JSON (free()). */
static char *export_valid_as(const char *id, int per_change) {
  Gm__Procurement__ExportRequest q = GM__PROCUREMENT__EXPORT_REQUEST__INIT;
  q.tender_id = (char *)id;
  q.per_change = per_change;
  Gm__Procurement__Export *e =
      (Gm__Procurement__Export *)pt_call("alpha", "tender.export", &q.base);
  ck_assert_msg(e, "tender.export %s: %s", id, pt_message);
  char *path = gm_test_redis_path(pt_redis, "export.json");
  FILE *f = fopen(path, "w");
  ck_assert_ptr_nonnull(f);
  fputs(e->json, f);
  fclose(f);
  char cmd[2048], out[8192] = "";
  snprintf(cmd, sizeof cmd,
           "/usr/bin/python3 %s/plugins/procurement/tests/validate_ocds.py "
           "%s/plugins/procurement/ocds %s 2>&1",
           GM_SOURCE_DIR, GM_SOURCE_DIR, path);
  FILE *p = popen(cmd, "r");
  ck_assert_ptr_nonnull(p);
  size_t n = fread(out, 1, sizeof out - 1, p);
  out[n] = '\0';
  int rc = pclose(p);
  ck_assert_msg(rc == 0 && strstr(out, "valid"),
                "the export of %s is not valid OCDS 1.1.5:\n%s\n%.3000s", id,
                out, e->json);
  char *json = strdup(e->json);
  pt_free(e);
  free(path);
  return json;
}

static char *export_valid(const char *id) {
  return export_valid_as(id, 0);
}

/* The export of `id` without the schema check (a python3 run each): for
   what a test reads again of an export validated at the same stage. */
static char *export_of(const char *id) {
  Gm__Procurement__ExportRequest q = GM__PROCUREMENT__EXPORT_REQUEST__INIT;
  q.tender_id = (char *)id;
  Gm__Procurement__Export *e =
      (Gm__Procurement__Export *)pt_call("alpha", "tender.export", &q.base);
  ck_assert_msg(e, "tender.export %s: %s", id, pt_message);
  char *json = strdup(e->json);
  pt_free(e);
  return json;
}

static json_t *release_of(const char *json) {
  json_error_t err;
  json_t *doc = json_loads(json, 0, &err);
  ck_assert_msg(doc, "%s", err.text);
  json_t *rel =
      json_incref(json_array_get(json_object_get(doc, "releases"), 0));
  json_decref(doc);
  return rel;
}

/* The roles of party `id` as one comma list. */
static void roles_of(json_t *rel, const char *id, char *out, size_t len) {
  size_t i, k;
  json_t *p, *r;
  out[0] = '\0';
  json_array_foreach(json_object_get(rel, "parties"), i, p) {
    if (strcmp(json_string_value(json_object_get(p, "id")), id)) continue;
    json_array_foreach(json_object_get(p, "roles"), k, r) {
      size_t n = strlen(out);
      snprintf(out + n, len - n, "%s%s", n ? "," : "", json_string_value(r));
    }
  }
}

static void wait_ledger_state(const char *id, const char *state) {
  char sql[256], got[32] = "";
  snprintf(sql, sizeof sql,
           "SELECT state FROM procurement_tenders WHERE tender_id = '%s'", id);
  for (int i = 0; i < 1000; i++) {
    pt_ledger_text(sql, got, sizeof got);
    if (!strcmp(got, state)) return;
    nanosleep(&(struct timespec){0, 10000000}, NULL);
  }
  ck_abort_msg("%s never settled as %s (last %s)", id, state, got);
}

static void sign(const char *as, const char *cid) {
  Gm__Procurement__ContractRequest q = GM__PROCUREMENT__CONTRACT_REQUEST__INIT;
  q.contract_id = (char *)cid;
  q.reference = "G-1";
  ProtobufCMessage *m = pt_call(as, "contract.sign", &q.base);
  ck_assert_msg(m, "%s signs %s: %s", as, cid, pt_message);
  protobuf_c_message_free_unpacked(m, NULL);
}

static void contract(const char *as, const char *op, const char *cid,
                     int64_t amount) {
  Gm__Procurement__ContractRequest q = GM__PROCUREMENT__CONTRACT_REQUEST__INIT;
  char method[32];
  q.contract_id = (char *)cid;
  q.amount = amount;
  snprintf(method, sizeof method, "contract.%s", op);
  ProtobufCMessage *m = pt_call(as, method, &q.base);
  ck_assert_msg(m, "%s %s %s: %s", as, op, cid, pt_message);
  protobuf_c_message_free_unpacked(m, NULL);
}

START_TEST(exports_validate_at_every_stage) {
  pt_tender d;
  pt_tender_init(&d, "T-OCDS", 123456789, DEADLINE); /* 1234567.89 yuan */
  d.buyers[0] = "district";
  d.t.n_buyers = 1;
  d.t.description = "the seed's joint purchase of fit-out materials";
  pt_item(&d, "I1", "INSUL", 300, 0, NULL);
  pt_item(&d, "D1", "DESK", 12, 0, "district");
  pt_publish("city", &d);
  /* An amendment: one more week. */
  Gm__Procurement__Tender ch = GM__PROCUREMENT__TENDER__INIT;
  ch.deadline_ms = DEADLINE + 7 * PT_DAY;
  char *fields[] = {"deadline_ms"};
  Gm__Procurement__AmendRequest aq = GM__PROCUREMENT__AMEND_REQUEST__INIT;
  aq.tender_id = "T-OCDS";
  aq.note = "one more week for site visits";
  aq.changes = &ch;
  aq.fields = fields;
  aq.n_fields = 1;
  ProtobufCMessage *m = pt_call("city", "tender.amend", &aq.base);
  ck_assert_msg(m, "%s", pt_message);
  protobuf_c_message_free_unpacked(m, NULL);
  ck_assert_int_eq(pt_ledger_wait("SELECT version FROM procurement_tenders", 2),
                   2);
  char *json = export_valid("T-OCDS");
  ck_assert_msg(strstr(json, "\"amount\": 1234567.89"), "%s", json);
  json_t *rel = release_of(json);
  ck_assert_str_eq(json_string_value(json_object_get(
                       json_object_get(rel, "tender"), "status")),
                   "active");
  char roles[128];
  roles_of(rel, "city", roles, sizeof roles);
  ck_assert_str_eq(roles, "buyer,procuringEntity");
  roles_of(rel, "district", roles, sizeof roles);
  ck_assert_str_eq(roles, "buyer");
  ck_assert_int_eq(json_array_size(json_object_get(
                       json_object_get(rel, "tender"), "amendments")),
                   1);
  ck_assert_ptr_null(json_object_get(rel, "bids")); /* sealed */
  json_decref(rel);
  free(json);

  const char *a[] = {"I1=12345@GB-A", "D1=50000"},
             *b[] = {"I1=10000", "D1=40000"}, *g[] = {"I1=9000", "D1=1"};
  pt_free(pt_bid("alpha", "T-OCDS", 0, a, 2));
  pt_free(
      pt_bid("beta", "T-OCDS", GM__PROCUREMENT__SME_CLASS__SME_SMALL, b, 2));
  pt_free(
      pt_bid("gamma", "T-OCDS", GM__PROCUREMENT__SME_CLASS__SME_MEDIUM, g, 2));
  Gm__Procurement__TenderRequest w = GM__PROCUREMENT__TENDER_REQUEST__INIT;
  w.tender_id = "T-OCDS";
  m = pt_call("gamma", "bid.withdraw", &w.base);
  ck_assert_msg(m, "%s", pt_message);
  protobuf_c_message_free_unpacked(m, NULL);
  pt_clock(DEADLINE + 7 * PT_DAY);
  ck_assert_str_eq(pt_wait_state("T-OCDS", "evaluated"), "evaluated");
  wait_ledger_state("T-OCDS", "evaluated");
  pt_free(pt_sheet("T-OCDS"));
  json = export_valid("T-OCDS");
  rel = release_of(json);
  json_t *bids = json_object_get(json_object_get(rel, "bids"), "details");
  ck_assert_int_eq(json_array_size(bids), 3);
  /* Tenderers are the parties that submitted a bid, gamma (withdrawn)
     included: the count and the list agree. */
  ck_assert_int_eq(json_integer_value(json_object_get(
                       json_object_get(rel, "tender"), "numberOfTenderers")),
                   3);
  ck_assert_int_eq(json_array_size(json_object_get(
                       json_object_get(rel, "tender"), "tenderers")),
                   3);
  ck_assert_msg(strstr(json,
                       "\"extensions\": [\n  \"https://raw."
                       "githubusercontent.com/open-contracting-"
                       "extensions/ocds_bid_extension/v1.1.5/"
                       "extension.json\""),
                "%s", json);
  /* alpha 300 x 123.45 + 12 x 500.00 = 43035.00 */
  ck_assert_msg(strstr(json, "\"amount\": 43035.00"), "%s", json);
  ck_assert_str_eq(json_string_value(json_object_get(
                       json_object_get(rel, "tender"), "status")),
                   "complete");
  json_decref(rel);
  free(json);

  Gm__Procurement__Award *aw = pt_award("city", "T-OCDS");
  ck_assert_int_eq(aw->n_contracts, 2);
  char k1[64], k2[64];
  snprintf(k1, sizeof k1, "%s", aw->contracts[0]);
  snprintf(k2, sizeof k2, "%s", aw->contracts[1]);
  pt_free(aw);
  wait_ledger_state("T-OCDS", "awarded");
  ck_assert_int_eq(
      pt_ledger_wait("SELECT count(*) FROM procurement_contracts", 2), 2);
  json = export_valid("T-OCDS");
  ck_assert_msg(strstr(json, "\"status\": \"pending\""), "%s", json);
  free(json);

  pt_clock(DEADLINE + 30 * PT_DAY);
  sign("city", k1);
  sign("district", k2);
  sign("beta", k1);
  sign("beta", k2);
  contract("beta", "deliver", k1, 0);
  contract("city", "accept", k1, 0);
  contract("city", "pay", k1, 1000000);
  wait_ledger_state("T-OCDS", "contracted");
  ck_assert_int_eq(
      pt_ledger_wait("SELECT count(*) FROM procurement_payments", 1), 1);
  json = export_valid("T-OCDS");
  rel = release_of(json);
  json_t *ks = json_object_get(rel, "contracts");
  ck_assert_int_eq(json_array_size(ks), 2);
  json_t *c1 = json_array_get(ks, 0), *c2 = json_array_get(ks, 1);
  ck_assert_str_eq(
      json_string_value(json_object_get(json_object_get(c1, "buyer"), "id")),
      "city");
  ck_assert_str_eq(
      json_string_value(json_object_get(json_object_get(c2, "buyer"), "id")),
      "district");
  ck_assert_int_eq(json_array_size(json_object_get(
                       json_object_get(c1, "implementation"), "transactions")),
                   1);
  roles_of(rel, "beta", roles, sizeof roles);
  ck_assert_str_eq(roles, "tenderer,supplier,payee");
  json_decref(rel);
  free(json);

  /* One release per change, valid, in order: the publication, the
     amendment, the opening, the award notice and its contracts, their
     changes, the payment, each with what changed. */
  json = export_valid_as("T-OCDS", 1);
  json_error_t err;
  json_t *pkg = json_loads(json, 0, &err);
  ck_assert_ptr_nonnull(pkg);
  json_t *rels = json_object_get(pkg, "releases");
  char seq[2048] = "";
  for (size_t i = 0; i < json_array_size(rels); i++) {
    const char *tg = json_string_value(
        json_array_get(json_object_get(json_array_get(rels, i), "tag"), 0));
    if (strlen(seq) + strlen(tg) + 2 < sizeof seq) {
      strcat(seq, tg);
      strcat(seq, " ");
    }
  }
  ck_assert_msg(
      strstr(seq, "tender tenderAmendment ") == seq && strstr(seq, " award ") &&
          strstr(seq, " contract contract ") && strstr(seq, " implementation "),
      "%s", seq);
  /* The payment's release: 10000.00 yuan to contract k1 of award 1. */
  ck_assert_msg(strstr(json, "\"amount\": 10000.00"), "%s", json);
  json_decref(pkg);
  free(json);

  /* A cancelled tender and an unsuccessful one. */
  pt_tender_init(&d, "T-OCX", 1000000, DEADLINE + 60 * PT_DAY);
  pt_item(&d, "D1", "DESK", 1, 0, NULL);
  pt_publish("city", &d);
  Gm__Procurement__TenderRequest cq = GM__PROCUREMENT__TENDER_REQUEST__INIT;
  cq.tender_id = "T-OCX";
  cq.reason = "the need went away";
  m = pt_call("city", "tender.cancel", &cq.base);
  ck_assert_msg(m, "%s", pt_message);
  protobuf_c_message_free_unpacked(m, NULL);
  wait_ledger_state("T-OCX", "cancelled");
  json = export_valid("T-OCX");
  ck_assert_msg(strstr(json, "\"tenderCancellation\""), "%s", json);
  free(json);
  pt_tender_init(&d, "T-OCU", 1000000, DEADLINE + 60 * PT_DAY);
  pt_item(&d, "D1", "DESK", 1, 0, NULL);
  pt_publish("city", &d);
  pt_clock(DEADLINE + 60 * PT_DAY);
  wait_ledger_state("T-OCU", "unsuccessful");
  json = export_valid("T-OCU");
  ck_assert_msg(strstr(json, "\"status\": \"unsuccessful\""), "%s", json);
  free(json);
  /* Their releases per change are valid too, the last one the end. */
  json = export_valid_as("T-OCX", 1);
  ck_assert_msg(strstr(json, "\"tenderCancellation\""), "%s", json);
  free(json);
  json = export_valid_as("T-OCU", 1);
  ck_assert_msg(strstr(json, "\"status\": \"unsuccessful\""), "%s", json);
  free(json);
}
END_TEST

/* The status of the only award of `json`. */
static void award_status(const char *json, const char *want) {
  json_t *rel = release_of(json);
  json_t *a = json_array_get(json_object_get(rel, "awards"), 0);
  ck_assert_msg(a, "%s", json);
  ck_assert_str_eq(json_string_value(json_object_get(a, "status")), want);
  json_decref(rel);
}

/* The release id of `json`, which must end in "-<ms>" of its date. */
static void release_id(const char *json, char *out, size_t len) {
  json_t *rel = release_of(json);
  snprintf(out, len, "%s", json_string_value(json_object_get(rel, "id")));
  json_decref(rel);
}

/* Asserts the release of `json` is the change at `ms`: its id ends in it
   and its date is that moment (Asia/Shanghai, as the export writes it). */
static void release_at(const char *json, int64_t ms) {
  char id[128], tail[32], date[32];
  release_id(json, id, sizeof id);
  snprintf(tail, sizeof tail, "-%lld", (long long)ms);
  size_t n = strlen(id), k = strlen(tail);
  ck_assert_msg(n > k && !strcmp(id + n - k, tail), "release %s, not at %s", id,
                tail);
  time_t s = (time_t)((ms + 8 * 3600000) / 1000);
  struct tm tm;
  gmtime_r(&s, &tm);
  strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%S+08:00", &tm);
  json_t *rel = release_of(json);
  ck_assert_str_eq(json_string_value(json_object_get(rel, "date")), date);
  json_decref(rel);
}

/*
 * An award is in force (OCDS "active") once its challenge period is over
 * and no challenge to it is open: one lodged in time and still open after
 * the period keeps it "pending" (nothing can be signed); its dismissal
 * makes it "active".  Turning active changes the release, so its id and
 * date move to that moment (the end of the period, or the answer to the
 * last challenge open after it): two exports with different contents never
 * share a release id.
 */
START_TEST(an_award_under_challenge_is_pending) {
  pt_tender d;
  pt_tender_init(&d, "T-OCC", 100000000, DEADLINE);
  pt_item(&d, "D1", "DESK", 10, 0, NULL);
  pt_publish("city", &d);
  const char *a[] = {"D1=110000"}, *b[] = {"D1=100000"};
  pt_free(pt_bid("alpha", "T-OCC", 0, a, 1));
  pt_free(pt_bid("beta", "T-OCC", GM__PROCUREMENT__SME_CLASS__SME_SMALL, b, 1));
  pt_clock(DEADLINE);
  ck_assert_str_eq(pt_wait_state("T-OCC", "evaluated"), "evaluated");
  Gm__Procurement__Award *aw = pt_award("city", "T-OCC");
  int64_t chu = aw->challenge_until_ms;
  pt_free(aw);
  ck_assert_int_eq(pt_ledger_wait("SELECT count(*) FROM procurement_awards", 1),
                   1);
  char *json = export_of("T-OCC");
  award_status(json, "pending");
  release_at(json, DEADLINE);
  free(json);
  pt_clock(DEADLINE + PT_DAY);
  Gm__Procurement__ChallengeRequest cq =
      GM__PROCUREMENT__CHALLENGE_REQUEST__INIT;
  cq.tender_id = "T-OCC";
  cq.text = "the award is wrong";
  ProtobufCMessage *m = pt_call("alpha", "challenge.lodge", &cq.base);
  ck_assert_msg(m, "%s", pt_message);
  protobuf_c_message_free_unpacked(m, NULL);
  ck_assert_int_eq(
      pt_ledger_wait("SELECT count(*) FROM procurement_challenges", 1), 1);
  pt_clock(chu + 1);
  json = export_of("T-OCC"); /* the shape validated below, once active */
  award_status(json, "pending");
  release_at(json, DEADLINE); /* a challenge lodged is not exported */
  free(json);
  pt_clock(chu + 2 * PT_DAY);
  Gm__Procurement__AnswerRequest aq = GM__PROCUREMENT__ANSWER_REQUEST__INIT;
  aq.challenge_id = "T-OCC-Q1";
  aq.answer = "the award stands";
  m = pt_call("city", "challenge.answer", &aq.base);
  ck_assert_msg(m, "%s", pt_message);
  protobuf_c_message_free_unpacked(m, NULL);
  ck_assert_int_eq(pt_ledger_wait("SELECT count(*) FROM procurement_challenges"
                                  " WHERE status = 'dismissed'",
                                  1),
                   1);
  json = export_valid("T-OCC");
  award_status(json, "active");
  release_at(json, chu + 2 * PT_DAY); /* the dismissal */
  free(json);

  /* No challenge: active from the ms after the period, whenever the
     export is asked for. */
  pt_tender d2;
  pt_tender_init(&d2, "T-OCN", 100000000, chu + 40 * PT_DAY);
  pt_item(&d2, "D1", "DESK", 10, 0, NULL);
  pt_publish("city", &d2);
  pt_free(pt_bid("alpha", "T-OCN", 0, a, 1));
  pt_clock(chu + 40 * PT_DAY);
  ck_assert_str_eq(pt_wait_state("T-OCN", "evaluated"), "evaluated");
  aw = pt_award("city", "T-OCN");
  int64_t chu2 = aw->challenge_until_ms;
  pt_free(aw);
  ck_assert_int_eq(pt_ledger_wait("SELECT count(*) FROM procurement_awards"
                                  " WHERE tender_id = 'T-OCN'",
                                  1),
                   1);
  json = export_of("T-OCN");
  award_status(json, "pending");
  release_at(json, chu + 40 * PT_DAY);
  free(json);
  pt_clock(chu2 + 3 * PT_DAY);
  json = export_of("T-OCN");
  award_status(json, "active");
  release_at(json, chu2 + 1);
  free(json);
}
END_TEST

/* Changes the ledger behind gmd's back: to make rows as an older version
   settled them. */
static void ledger_exec(const char *sql) {
  sqlite3 *db;
  ck_assert_int_eq(sqlite3_open(gm_test_gmd_ledger(pt_gmd), &db), SQLITE_OK);
  sqlite3_busy_timeout(db, 5000);
  char *err = NULL;
  ck_assert_msg(sqlite3_exec(db, sql, NULL, NULL, &err) == SQLITE_OK, "%s: %s",
                sql, err ? err : "");
  sqlite3_close(db);
}

/* Whether the export of T-BIG gives alpha's bid a value (and checks the
   others all have one). */
static int alpha_has_value(void) {
  char *json = export_valid("T-BIG");
  json_t *rel = release_of(json);
  size_t i;
  json_t *bid;
  int seen = 0, has = -1;
  json_array_foreach(json_object_get(json_object_get(rel, "bids"), "details"),
                     i, bid) {
    const char *who = json_string_value(json_object_get(
        json_array_get(json_object_get(bid, "tenderers"), 0), "id"));
    if (!strcmp(who, "alpha")) {
      seen++;
      ck_assert_str_eq(json_string_value(json_object_get(bid, "status")),
                       "disqualified");
      has = json_object_get(bid, "value") != NULL;
    } else {
      ck_assert_ptr_nonnull(json_object_get(bid, "value"));
    }
  }
  ck_assert_int_eq(seen, 1);
  json_decref(rel);
  free(json);
  return has;
}

/* Publishes T-BIG, alpha priced beyond any amount, beta priced; evaluated
   and settled. */
static void big_tender(void) {
  pt_tender d;
  pt_tender_init(&d, "T-BIG", PR_MAX_AMOUNT, DEADLINE);
  pt_item(&d, "D1", "DESK", 1, 0, NULL);
  pt_item(&d, "D2", "DESK", 1, 0, NULL);
  pt_publish("city", &d);
  const char *a[] = {"D1=600000000000000", "D2=600000000000000"},
             *b[] = {"D1=100000", "D2=100000"};
  pt_free(pt_bid("alpha", "T-BIG", 0, a, 2));
  pt_free(pt_bid("beta", "T-BIG", 0, b, 2));
  pt_clock(DEADLINE);
  ck_assert_str_eq(pt_wait_state("T-BIG", "evaluated"), "evaluated");
  wait_ledger_state("T-BIG", "evaluated");
}

/*
 * A bid priced beyond any amount has no price: its bid exports no value
 * rather than a false 0.  The evaluation stores that as a flag of its
 * sheet row (no_price), and the export reads the flag, not the reasons'
 * text: with the text reworded it still exports no value, and with the
 * flag saying there is a price it exports one.  A row settled before the
 * flag (NULL) is recognised by its reasons, as before.
 */
START_TEST(a_bid_beyond_any_amount_exports_no_value) {
  big_tender();
  Gm__Procurement__Sheet *sh = pt_sheet("T-BIG");
  ck_assert(pt_row(sh, "alpha")->no_price);
  ck_assert(!pt_row(sh, "beta")->no_price);
  pt_free(sh);
  ck_assert_int_eq(pt_ledger_int("SELECT no_price FROM procurement_sheet"
                                 " WHERE tender_id = 'T-BIG' AND"
                                 " supplier = 'alpha'"),
                   1);
  ck_assert_int_eq(pt_ledger_int("SELECT no_price FROM procurement_sheet"
                                 " WHERE tender_id = 'T-BIG' AND"
                                 " supplier = 'beta'"),
                   0);
  ck_assert_int_eq(alpha_has_value(), 0);

  /* The flag decides, whatever the reasons say. */
  ledger_exec(
      "UPDATE procurement_sheet SET reasons = 'reworded'"
      " WHERE tender_id = 'T-BIG' AND supplier = 'alpha'");
  ck_assert_int_eq(alpha_has_value(), 0);
  ledger_exec(
      "UPDATE procurement_sheet SET no_price = 0"
      " WHERE tender_id = 'T-BIG' AND supplier = 'alpha'");
  ck_assert_int_eq(alpha_has_value(), 1);

  /* Rows settled before the flag: recognised by their reasons. */
  ledger_exec(
      "UPDATE procurement_sheet SET no_price = NULL,"
      " reasons = 'item D1 is priced beyond any amount'"
      " WHERE tender_id = 'T-BIG' AND supplier = 'alpha'");
  ck_assert_int_eq(alpha_has_value(), 0);
  ledger_exec(
      "UPDATE procurement_sheet SET reasons = 'over the budget'"
      " WHERE tender_id = 'T-BIG' AND supplier = 'alpha'");
  ck_assert_int_eq(alpha_has_value(), 1);
  /* A damaged quantity had no price either. */
  ledger_exec(
      "UPDATE procurement_sheet SET reasons = 'item D1 has no valid quantity'"
      " WHERE tender_id = 'T-BIG' AND supplier = 'alpha'");
  ck_assert_int_eq(alpha_has_value(), 0);
  /* A flag of 0 wins over reasons that happen to read like no price. */
  ledger_exec(
      "UPDATE procurement_sheet SET no_price = 0,"
      " reasons = 'item D1 is priced beyond any amount; item D2 has no"
      " valid quantity'"
      " WHERE tender_id = 'T-BIG' AND supplier = 'alpha'");
  ck_assert_int_eq(alpha_has_value(), 1);
}
END_TEST

/*
 * A bid whose opened text does not match its published hash has no known
 * price either: its sheet row is flagged and its bid exports no value,
 * not a false 0 (it was 0 before the flag covered it).
 */
START_TEST(a_bid_not_matching_its_hash_exports_no_value) {
  pt_tender d;
  pt_tender_init(&d, "T-BIG", PR_MAX_AMOUNT, DEADLINE);
  pt_item(&d, "D1", "DESK", 1, 0, NULL);
  pt_publish("city", &d);
  const char *a[] = {"D1=100000"}, *b[] = {"D1=200000"};
  pt_free(pt_bid("alpha", "T-BIG", 0, a, 1));
  pt_free(pt_bid("beta", "T-BIG", 0, b, 1));
  /* alpha's record (state|version|hash|kid|time|seq) names another hash,
     as a damaged record would. */
  redisContext *c = gm_test_redis_connect(pt_redis);
  redisReply *r = gm_test_redis_cmd(c, "HGET gm:{procurement:t:T-BIG}:b alpha");
  ck_assert_int_eq(r->type, REDIS_REPLY_STRING);
  char rec[512];
  const char *h = strchr(strchr(r->str, '|') + 1, '|') + 1;
  snprintf(rec, sizeof rec, "%.*s%064d%s", (int)(h - r->str), r->str, 0,
           h + 64);
  freeReplyObject(r);
  freeReplyObject(
      gm_test_redis_cmd(c, "HSET gm:{procurement:t:T-BIG}:b alpha %s", rec));
  redisFree(c);
  pt_clock(DEADLINE);
  ck_assert_str_eq(pt_wait_state("T-BIG", "evaluated"), "evaluated");
  wait_ledger_state("T-BIG", "evaluated");
  Gm__Procurement__Sheet *sh = pt_sheet("T-BIG");
  ck_assert_msg(strstr(pt_row(sh, "alpha")->reasons, "does not match"), "%s",
                pt_row(sh, "alpha")->reasons);
  ck_assert(pt_row(sh, "alpha")->no_price);
  ck_assert(!pt_row(sh, "beta")->no_price);
  pt_free(sh);
  ck_assert_int_eq(alpha_has_value(), 0);
}
END_TEST

/* Adds a sheet entry for alpha of T-BIG to the tender's outbox, as a
   broker writes it (noprice: NULL for one of the version before the flag)
   and waits until it is settled. */
static void settle_sheet_entry(const char *noprice, const char *reasons) {
  redisContext *c = gm_test_redis_connect(pt_redis);
  redisReply *r;
  if (noprice)
    r = gm_test_redis_cmd(
        c,
        "XADD gm:{procurement:t:T-BIG}:outbox * kind sheet id T-BIG round 1"
        " supplier alpha valid 0 bid 0 green 0 sme 0 evaluated 0 member x"
        " smecls 0 hash h reasons %s checks c noprice %s text %s t 1",
        reasons, noprice, "");
  else
    r = gm_test_redis_cmd(
        c,
        "XADD gm:{procurement:t:T-BIG}:outbox * kind sheet id T-BIG round 1"
        " supplier alpha valid 0 bid 0 green 0 sme 0 evaluated 0 member x"
        " smecls 0 hash h reasons %s checks c text %s t 1",
        reasons, "");
  ck_assert_int_eq(r->type, REDIS_REPLY_STRING);
  char sql[200];
  snprintf(sql, sizeof sql,
           "SELECT count(*) FROM gm_settled WHERE stream ="
           " 'gm:{procurement:t:T-BIG}:outbox' AND id = '%s'",
           r->str);
  freeReplyObject(r);
  redisFree(c);
  ck_assert_int_eq(pt_ledger_wait(sql, 1), 1);
}

/*
 * Ledger migration 7 on a ledger an older version settled, with rows:
 * they get no_price NULL and export as before, by their reasons.  Then an
 * outbox entry of that version (no noprice field: a broker of it may
 * still be running) settles as NULL, and one of this version with its
 * flag, whatever its reasons say.  (An older broker settling an entry of
 * this version reads its fields by name: noprice is ignored, the row is
 * NULL, and the reasons decide, as for the older rows.)
 */
START_TEST(migration_7_keeps_older_rows_and_entries) {
  big_tender();
  /* The ledger as the version before the flag left it. */
  gm_test_conn_destroy(&pt_conn);
  gm_test_gmd_kill9(pt_gmd);
  ledger_exec("ALTER TABLE procurement_sheet DROP COLUMN no_price");
  ledger_exec("UPDATE gm_schema SET version = 6 WHERE market = 'procurement'");
  gm_test_gmd_restart(pt_gmd);
  pt_conn = gm_test_conn_new(gm_test_gmd_endpoint(pt_gmd), NULL, NULL, NULL);
  ck_assert_int_eq(
      pt_ledger_int(
          "SELECT version FROM gm_schema WHERE market = 'procurement'"),
      8); /* 7, then 8 (the archive sweep's index, there already) */
  ck_assert_int_eq(pt_ledger_int("SELECT count(*) FROM procurement_sheet"
                                 " WHERE tender_id = 'T-BIG' AND"
                                 " no_price IS NULL"),
                   2);
  ck_assert_int_eq(alpha_has_value(), 0);
  Gm__Procurement__Sheet *sh = pt_sheet("T-BIG");
  ck_assert(pt_row(sh, "alpha")->no_price);
  ck_assert(!pt_row(sh, "beta")->no_price);
  pt_free(sh);

  /* An entry without the field: NULL, recognised by its reasons. */
  settle_sheet_entry(NULL, "item D1 is priced beyond any amount");
  ck_assert_int_eq(pt_ledger_int("SELECT no_price IS NULL FROM"
                                 " procurement_sheet WHERE tender_id ="
                                 " 'T-BIG' AND supplier = 'alpha'"),
                   1);
  ck_assert_int_eq(alpha_has_value(), 0);
  settle_sheet_entry(NULL, "over the budget");
  ck_assert_int_eq(alpha_has_value(), 1);
  /* Entries with the field: it decides. */
  settle_sheet_entry("1", "reworded");
  ck_assert_int_eq(pt_ledger_int("SELECT no_price FROM procurement_sheet"
                                 " WHERE tender_id = 'T-BIG' AND"
                                 " supplier = 'alpha'"),
                   1);
  ck_assert_int_eq(alpha_has_value(), 0);
  settle_sheet_entry("0", "item D1 is priced beyond any amount");
  ck_assert_int_eq(pt_ledger_int("SELECT no_price FROM procurement_sheet"
                                 " WHERE tender_id = 'T-BIG' AND"
                                 " supplier = 'alpha'"),
                   0);
  ck_assert_int_eq(alpha_has_value(), 1);
}
END_TEST

int main(void) {
  Suite *s = suite_create("procurement OCDS");
  TCase *tc = tcase_create("ocds");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, exports_validate_at_every_stage);
  tcase_add_test(tc, an_award_under_challenge_is_pending);
  tcase_add_test(tc, a_bid_beyond_any_amount_exports_no_value);
  tcase_add_test(tc, migration_7_keeps_older_rows_and_entries);
  tcase_add_test(tc, a_bid_not_matching_its_hash_exports_no_value);
  suite_add_tcase(s, tc);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
