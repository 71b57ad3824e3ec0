/*
 * A tender from publication to the award, through the real broker: the
 * bid deadline to the millisecond, the mandatory green purchase, the green
 * and SME deductions each deciding the winner, a certificate revoked after
 * submission, the published hash of each opened bid, the evaluation sheet
 * in the ledger.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include <greenmarket/client.h>

#include "greenmarket.pb-c.h"
#include "harness.h"
#include "run_gm.h"

#define T0 pt_at(PT_MONDAY, 10, 0)
#define DEADLINE (T0 + 21 * PT_DAY)

static void setup(void) {
  pt_start(NULL, T0);
  pt_register("centre", "certifier");
  pt_register("city", "agency");
  pt_register("alpha", "supplier");
  pt_register("beta", "supplier");
  pt_register("gamma", "supplier");
  pt_party("city", PT_USCC_GOV, GM__PROCUREMENT__SME_CLASS__SME_NONE);
  pt_party("alpha", PT_USCC_A, GM__PROCUREMENT__SME_CLASS__SME_NONE);
  pt_party("beta", PT_USCC_B, GM__PROCUREMENT__SME_CLASS__SME_SMALL);
  pt_party("gamma", PT_USCC_C, GM__PROCUREMENT__SME_CLASS__SME_MEDIUM);
  /* Insulation: priority, 5% off with a 2-star green building label;
     windows: a mandatory green purchase. */
  pt_category("INSUL", GM__PROCUREMENT__POLICY__POLICY_PRIORITY, 500,
              "gb_insulation", 2);
  pt_category("WIN", GM__PROCUREMENT__POLICY__POLICY_MANDATORY, 0,
              "gb_doors_windows", 1);
  pt_category("DESK", GM__PROCUREMENT__POLICY__POLICY_NONE, 0, "", 0);
  int64_t from = T0 - 30 * PT_DAY, to = T0 + 365 * PT_DAY;
  pt_cert("GB-I-A", PT_USCC_A, "INSUL", "gb_insulation", 3, from, to);
  pt_cert("GB-I-C", PT_USCC_C, "INSUL", "gb_insulation", 2, from, to);
  pt_cert("GB-W-A", PT_USCC_A, "WIN", "gb_doors_windows", 1, from, to);
}

static void teardown(void) {
  pt_stop();
}

static void open_at_deadline(const char *id, const char *state) {
  pt_clock(DEADLINE);
  ck_assert_str_eq(pt_wait_state(id, state), state);
}

/*
 * The deadline is exclusive to the millisecond: a bid at deadline - 1 is
 * taken, one at the deadline and one a millisecond after are refused with
 * the time, and nothing of theirs is stored.
 */
START_TEST(a_bid_one_millisecond_late_is_refused) {
  pt_tender d;
  pt_tender_init(&d, "T-LATE", 10000000, DEADLINE);
  pt_item(&d, "D1", "DESK", 10, 0, NULL);
  pt_publish("city", &d);
  const char *line[] = {"D1=50000"};
  pt_clock(DEADLINE - 1);
  Gm__Procurement__BidReceipt *r =
      pt_bid("alpha", "T-LATE", GM__PROCUREMENT__SME_CLASS__SME_NONE, line, 1);
  ck_assert_msg(r, "%s", pt_message);
  ck_assert_int_eq(strlen(r->hash), 64);
  pt_free(r);
  pt_clock(DEADLINE + 1);
  ck_assert_ptr_null(
      pt_bid("beta", "T-LATE", GM__PROCUREMENT__SME_CLASS__SME_SMALL, line, 1));
  ck_assert_int_eq(pt_status, GM__STATUS__FAILED_PRECONDITION);
  ck_assert_msg(strstr(pt_message, "1 ms after the deadline"), "%s",
                pt_message);
  redisContext *c = gm_test_redis_connect(pt_redis);
  ck_assert_int_eq(
      gm_test_redis_int(c, "HEXISTS gm:{procurement:t:T-LATE}:b beta"), 0);
  ck_assert_int_eq(gm_test_redis_int(c, "ZCARD gm:{procurement:t:T-LATE}:bz"),
                   1);
  redisFree(c);
  ck_assert_str_eq(pt_wait_state("T-LATE", "evaluated"), "evaluated");
  Gm__Procurement__Sheet *s = pt_sheet("T-LATE");
  ck_assert_int_eq(s->total_rows, 1);
  ck_assert_str_eq(s->rows[0]->supplier, "alpha");
  pt_free(s);
}
END_TEST

/*
 * Windows are a mandatory green purchase: beta is cheapest but cites no
 * certificate for them and is disqualified; gamma cites alpha's
 * certificate (another holder) and is disqualified; alpha wins.
 */
START_TEST(a_mandatory_item_is_won_only_by_a_certified_bid) {
  pt_tender d;
  pt_tender_init(&d, "T-MAND", 100000000, DEADLINE);
  pt_item(&d, "W1", "WIN", 10, 0, NULL);
  pt_publish("city", &d);
  const char *a[] = {"W1=90000@GB-W-A"}, *b[] = {"W1=60000"},
             *c[] = {"W1=70000@GB-W-A"};
  pt_free(pt_bid("alpha", "T-MAND", 0, a, 1));
  pt_free(
      pt_bid("beta", "T-MAND", GM__PROCUREMENT__SME_CLASS__SME_SMALL, b, 1));
  pt_free(
      pt_bid("gamma", "T-MAND", GM__PROCUREMENT__SME_CLASS__SME_MEDIUM, c, 1));
  open_at_deadline("T-MAND", "evaluated");
  Gm__Procurement__Sheet *s = pt_sheet("T-MAND");
  ck_assert_str_eq(pt_row(s, "alpha")->status, "valid");
  ck_assert_int_eq(pt_row(s, "alpha")->rank, 1);
  ck_assert_str_eq(pt_row(s, "beta")->status, "disqualified");
  ck_assert_msg(strstr(pt_row(s, "beta")->reasons, "mandatory"), "%s",
                pt_row(s, "beta")->reasons);
  ck_assert_str_eq(pt_row(s, "gamma")->status, "disqualified");
  ck_assert_msg(strstr(pt_row(s, "gamma")->checks, "held by another supplier"),
                "%s", pt_row(s, "gamma")->checks);
  pt_free(s);
  Gm__Procurement__Award *aw = pt_award("city", "T-MAND");
  ck_assert_str_eq(aw->supplier, "alpha");
  ck_assert_int_eq(aw->value, 900000);
  pt_free(aw);
}
END_TEST

/*
 * Insulation is a priority category (5% with a 2-star label).  alpha bids
 * 5% more than gamma but holds a valid 3-star certificate: its evaluated
 * price is lower, and it wins at its own (higher) bid price.
 */
START_TEST(a_green_deduction_changes_the_winner) {
  pt_tender d;
  pt_tender_init(&d, "T-GREEN", 100000000, DEADLINE);
  pt_item(&d, "I1", "INSUL", 100, 0, NULL);
  pt_publish("city", &d);
  const char *a[] = {"I1=10200@GB-I-A"}, *g[] = {"I1=10000"};
  pt_free(pt_bid("alpha", "T-GREEN", 0, a, 1));
  pt_free(
      pt_bid("gamma", "T-GREEN", GM__PROCUREMENT__SME_CLASS__SME_MEDIUM, g, 1));
  open_at_deadline("T-GREEN", "evaluated");
  Gm__Procurement__Sheet *s = pt_sheet("T-GREEN");
  const Gm__Procurement__SheetRow *ra = pt_row(s, "alpha"),
                                  *rg = pt_row(s, "gamma");
  ck_assert_int_eq(ra->bid_price, 1020000);
  ck_assert_int_eq(ra->green_deduction, 51000); /* 5% */
  ck_assert_int_eq(ra->evaluated_price, 969000);
  ck_assert_int_eq(ra->rank, 1);
  ck_assert_int_eq(rg->evaluated_price, 1000000);
  ck_assert_int_eq(rg->rank, 2);
  ck_assert_msg(strstr(ra->checks, "green deduction 5.00% of 10200.00"), "%s",
                ra->checks);
  pt_free(s);
  Gm__Procurement__Award *aw = pt_award("city", "T-GREEN");
  ck_assert_str_eq(aw->supplier, "alpha");
  ck_assert_int_eq(aw->value, 1020000); /* the contract is at the bid price */
  pt_free(aw);
  /* The same two bids without the green preference: gamma wins. */
  pt_tender_init(&d, "T-GREEN2", 100000000, DEADLINE + 21 * PT_DAY);
  d.t.green_preference = 0;
  pt_item(&d, "I1", "INSUL", 100, 0, NULL);
  pt_publish("city", &d);
  pt_free(pt_bid("alpha", "T-GREEN2", 0, a, 1));
  pt_free(pt_bid("gamma", "T-GREEN2", GM__PROCUREMENT__SME_CLASS__SME_MEDIUM, g,
                 1));
  pt_clock(DEADLINE + 21 * PT_DAY);
  ck_assert_str_eq(pt_wait_state("T-GREEN2", "evaluated"), "evaluated");
  s = pt_sheet("T-GREEN2");
  ck_assert_int_eq(pt_row(s, "gamma")->rank, 1);
  ck_assert_int_eq(pt_row(s, "alpha")->green_deduction, 0);
  pt_free(s);
}
END_TEST

/*
 * beta is a small enterprise: 10% off for evaluation makes its higher bid
 * the winner.  gamma declares itself small but is registered medium: no
 * deduction, and it says so.
 */
START_TEST(an_sme_deduction_changes_the_winner) {
  pt_tender d;
  pt_tender_init(&d, "T-SME", 100000000, DEADLINE);
  pt_item(&d, "D1", "DESK", 20, 0, NULL);
  pt_publish("city", &d);
  const char *b[] = {"D1=105000"}, *g[] = {"D1=100000"}, *a[] = {"D1=99000"};
  pt_free(pt_bid("beta", "T-SME", GM__PROCUREMENT__SME_CLASS__SME_SMALL, b, 1));
  pt_free(
      pt_bid("gamma", "T-SME", GM__PROCUREMENT__SME_CLASS__SME_SMALL, g, 1));
  pt_free(pt_bid("alpha", "T-SME", GM__PROCUREMENT__SME_CLASS__SME_NONE, a, 1));
  open_at_deadline("T-SME", "evaluated");
  Gm__Procurement__Sheet *s = pt_sheet("T-SME");
  const Gm__Procurement__SheetRow *rb = pt_row(s, "beta"),
                                  *rg = pt_row(s, "gamma"),
                                  *ra = pt_row(s, "alpha");
  ck_assert_int_eq(rb->sme_deduction, 210000); /* 10% of 2,100,000 */
  ck_assert_int_eq(rb->evaluated_price, 1890000);
  ck_assert_str_eq(rb->sme, "small");
  ck_assert_int_eq(rb->rank, 1);
  ck_assert_int_eq(ra->rank, 2);
  ck_assert_int_eq(rg->sme_deduction, 0);
  ck_assert_msg(strstr(rg->checks, "declared small but registered medium"),
                "%s", rg->checks);
  ck_assert_int_eq(rg->rank, 3);
  pt_free(s);
  Gm__Procurement__Award *aw = pt_award("city", "T-SME");
  ck_assert_str_eq(aw->supplier, "beta");
  ck_assert_int_eq(aw->value, 2100000);
  pt_free(aw);
}
END_TEST

/*
 * alpha relies on its certificate when it bids; the certifier revokes it
 * before the deadline: at the opening it earns nothing and gamma wins.  The
 * sheet says when it was revoked.
 */
START_TEST(a_certificate_revoked_after_submission_loses_its_deduction) {
  pt_tender d;
  pt_tender_init(&d, "T-REV", 100000000, DEADLINE);
  pt_item(&d, "I1", "INSUL", 100, 0, NULL);
  pt_publish("city", &d);
  const char *a[] = {"I1=10200@GB-I-A"}, *g[] = {"I1=10000"};
  pt_free(pt_bid("alpha", "T-REV", 0, a, 1));
  pt_free(
      pt_bid("gamma", "T-REV", GM__PROCUREMENT__SME_CLASS__SME_MEDIUM, g, 1));
  pt_clock(T0 + 3 * PT_DAY);
  pt_cert_status("GB-I-A", GM__PROCUREMENT__CERT_STATUS__CERT_REVOKED,
                 "failed the annual inspection");
  open_at_deadline("T-REV", "evaluated");
  Gm__Procurement__Sheet *s = pt_sheet("T-REV");
  const Gm__Procurement__SheetRow *ra = pt_row(s, "alpha");
  ck_assert_int_eq(ra->green_deduction, 0);
  ck_assert_int_eq(ra->rank, 2);
  ck_assert_msg(strstr(ra->checks, "revoked on 2026-03-05 10:00"), "%s",
                ra->checks);
  ck_assert_int_eq(pt_row(s, "gamma")->rank, 1);
  pt_free(s);
  /* The register says why, in Redis and in the ledger. */
  ck_assert_int_eq(
      pt_ledger_wait("SELECT status FROM procurement_certificates WHERE"
                     " number = 'GB-I-A'",
                     3),
      3);
  /* Revoked is final. */
  Gm__Procurement__CertificateStatusRequest q =
      GM__PROCUREMENT__CERTIFICATE_STATUS_REQUEST__INIT;
  q.number = "GB-I-A";
  q.status = GM__PROCUREMENT__CERT_STATUS__CERT_VALID;
  pt_expect("centre", "certificate.status", &q.base,
            GM__STATUS__FAILED_PRECONDITION, "final");
}
END_TEST

/*
 * Amendments before the deadline are versioned and announced; one moves
 * the deadline and adds an item: a bid made before it lacks the item and
 * is disqualified at the opening ("missing item"), a bid after the old
 * deadline is taken.  No amendment after the deadline.
 */
START_TEST(amendments_move_the_deadline_and_change_the_items) {
  pt_tender d;
  pt_tender_init(&d, "T-AM", 100000000, DEADLINE);
  pt_item(&d, "D1", "DESK", 10, 0, NULL);
  pt_publish("city", &d);
  const char *a[] = {"D1=100000"};
  pt_free(pt_bid("alpha", "T-AM", 0, a, 1));
  Gm__Procurement__Tender ch = GM__PROCUREMENT__TENDER__INIT;
  Gm__Procurement__Item i1 = GM__PROCUREMENT__ITEM__INIT,
                        i2 = GM__PROCUREMENT__ITEM__INIT;
  Gm__Procurement__Item *items[] = {&i1, &i2};
  i1.id = "D1";
  i2.id = "D2";
  i1.category = i2.category = "DESK";
  i1.quantity = 10;
  i2.quantity = 4;
  i1.unit = i2.unit = "set";
  ch.items = items;
  ch.n_items = 2;
  ch.deadline_ms = DEADLINE + 7 * PT_DAY;
  char *fields[] = {"items", "deadline_ms"};
  Gm__Procurement__AmendRequest q = GM__PROCUREMENT__AMEND_REQUEST__INIT;
  q.tender_id = "T-AM";
  q.note = "chairs added; one more week";
  q.changes = &ch;
  q.fields = fields;
  q.n_fields = 2;
  pt_expect("alpha", "tender.amend", &q.base, GM__STATUS__PERMISSION_DENIED,
            "agency");
  Gm__Procurement__TenderView *v =
      (Gm__Procurement__TenderView *)pt_call("city", "tender.amend", &q.base);
  ck_assert_msg(v, "%s", pt_message);
  ck_assert_int_eq(v->tender->version, 2);
  ck_assert_int_eq(v->tender->deadline_ms, DEADLINE + 7 * PT_DAY);
  ck_assert_int_eq(v->n_amendments, 1);
  ck_assert_str_eq(v->amendments[0]->note, "chairs added; one more week");
  ck_assert_int_eq(v->amendments[0]->n_fields, 2);
  pt_free(v);
  /* A bid for the old items is refused now, with the items named. */
  const char *g[] = {"D1=90000"}, *b[] = {"D1=95000", "D2=1000"};
  ck_assert_ptr_null(pt_bid("gamma", "T-AM", 0, g, 1));
  ck_assert_int_eq(pt_status, GM__STATUS__INVALID_ARGUMENT);
  ck_assert_msg(strstr(pt_message, "asks for D1,D2"), "%s", pt_message);
  pt_clock(DEADLINE + PT_DAY); /* after the first deadline */
  Gm__Procurement__BidReceipt *r =
      pt_bid("beta", "T-AM", GM__PROCUREMENT__SME_CLASS__SME_SMALL, b, 2);
  ck_assert_msg(r, "%s", pt_message);
  pt_free(r);
  ck_assert_str_eq(pt_wait_state("T-AM", "active"), "active");
  pt_clock(DEADLINE + 7 * PT_DAY);
  ck_assert_str_eq(pt_wait_state("T-AM", "evaluated"), "evaluated");
  q.n_fields = 1;
  pt_expect("city", "tender.amend", &q.base, GM__STATUS__FAILED_PRECONDITION,
            "before the bid deadline");
  Gm__Procurement__Sheet *s = pt_sheet("T-AM");
  ck_assert_str_eq(pt_row(s, "alpha")->status, "disqualified");
  ck_assert_str_eq(pt_row(s, "alpha")->reasons, "missing item D2");
  ck_assert_int_eq(pt_row(s, "beta")->rank, 1);
  pt_free(s);
  ck_assert_int_eq(pt_ledger_wait("SELECT count(*) FROM procurement_amendments"
                                  " WHERE tender_id = 'T-AM'",
                                  1),
                   1);
}
END_TEST

/* The items of a tender as "ID:BUYER ..." in its order. */
static void items_text(const Gm__Procurement__Tender *t, char *out,
                       size_t len) {
  out[0] = '\0';
  for (size_t i = 0; i < t->n_items; i++)
    snprintf(out + strlen(out), len - strlen(out), "%s%s:%s", i ? " " : "",
             t->items[i]->id, t->items[i]->buyer);
}

/* The catalogue's rules fixed into an item, as one text. */
static void rules_text(const Gm__Procurement__Item *it, char *out, size_t len) {
  snprintf(out, len, "%s policy %d, %d bp, grade %d, labels", it->id,
           (int)it->policy, it->deduction_bp, it->min_grade);
  for (size_t i = 0; i < it->n_labels; i++)
    snprintf(out + strlen(out), len - strlen(out), " %s", it->labels[i]);
}

/*
 * A joint tender: the lead's amendment of items replaces the items of the
 * buyers it names (its own when an item names none) and keeps a joint
 * buyer's as they are, with the catalogue's rules they were published
 * with: a change of the catalogue since applies only to the items an
 * amendment gives.  An item for someone who is not a buyer is refused,
 * saying that an amendment cannot add one, and changes nothing; a demand
 * holding another's item is refused too.
 */
START_TEST(amending_items_keeps_the_joint_buyers_items) {
  pt_register("district", "agency");
  pt_tender d;
  pt_tender_init(&d, "T-JAM", 100000000, DEADLINE);
  d.buyers[d.t.n_buyers++] = "district";
  pt_item(&d, "C1", "DESK", 10, 0, NULL);
  pt_draft("city", &d);
  Gm__Procurement__Item k1,
      *pk1 = pt_new_item(&k1, "K1", "INSUL", 20, 0, "school");
  Gm__Procurement__DemandRequest dq = pt_demand_request("T-JAM", &pk1, 1);
  pt_refused("T-JAM", "district", "tender.demand", &dq.base,
             GM__STATUS__INVALID_ARGUMENT,
             "item K1 is for school, not you; your demand holds your own "
             "items only: leave the item's buyer empty");
  k1.buyer = "";
  pt_demand("district", "T-JAM", &pk1, 1);
  pt_publish_draft("city", "T-JAM");
  /* The catalogue changes after the publication: insulation becomes a
     mandatory purchase of 3 stars. */
  pt_category("INSUL", GM__PROCUREMENT__POLICY__POLICY_MANDATORY, 0,
              "gb_insulation", 3);

  /* The lead's own items change; district's K1 stays, with its rules. */
  Gm__Procurement__Item c1, c2,
      *mine[] = {pt_new_item(&c1, "C1", NULL, 12, 0, NULL),
                 pt_new_item(&c2, "C2", NULL, 3, 0, NULL)};
  pt_amend a;
  pt_amend_init(&a, "T-JAM", "items", "city needs 12 desks and 3 cabinets");
  a.ch.items = mine;
  a.ch.n_items = 2;
  Gm__Procurement__TenderView *v =
      (Gm__Procurement__TenderView *)pt_call("city", "tender.amend", &a.q.base);
  ck_assert_msg(v, "%s", pt_message);
  char text[256];
  items_text(v->tender, text, sizeof text);
  ck_assert_str_eq(text, "C1:city C2:city K1:district");
  ck_assert_int_eq(v->tender->items[2]->quantity, 20);
  rules_text(v->tender->items[2], text, sizeof text);
  ck_assert_str_eq(text, "K1 policy 1, 500 bp, grade 2, labels gb_insulation");
  pt_free(v);

  /* Naming district replaces district's items, and keeps the lead's; the
     item it gives takes the catalogue's rules of now. */
  Gm__Procurement__Item k2,
      *theirs[] = {pt_new_item(&k2, "K2", "INSUL", 25, 0, "district")};
  a.ch.items = theirs;
  a.ch.n_items = 1;
  a.q.note = "district's insulation is K2 now";
  v = (Gm__Procurement__TenderView *)pt_call("city", "tender.amend", &a.q.base);
  ck_assert_msg(v, "%s", pt_message);
  items_text(v->tender, text, sizeof text);
  ck_assert_str_eq(text, "C1:city C2:city K2:district");
  rules_text(v->tender->items[2], text, sizeof text);
  ck_assert_str_eq(text, "K2 policy 2, 0 bp, grade 3, labels gb_insulation");
  pt_free(v);

  /* Refused whole: an item for someone who is not a buyer, no items. */
  char *before = pt_hashes("T-JAM", "t dm am");
  Gm__Procurement__Item x,
      *other[] = {pt_new_item(&c1, "C1", NULL, 1, 0, NULL),
                  pt_new_item(&x, "X1", NULL, 1, 0, "school")};
  a.ch.items = other;
  a.ch.n_items = 2;
  pt_expect("city", "tender.amend", &a.q.base, GM__STATUS__INVALID_ARGUMENT,
            "item X1 is for school, who is not a buyer of this tender; an "
            "amendment cannot add a buyer (the buyers were published with "
            "the tender): give the item to one of city, district, or leave "
            "the item's buyer empty for city's");
  a.ch.n_items = 0;
  pt_expect("city", "tender.amend", &a.q.base, GM__STATUS__INVALID_ARGUMENT,
            "items is named but no item is given");
  pt_unchanged("T-JAM", "t dm am", before);
  v = pt_tender_get("T-JAM");
  items_text(v->tender, text, sizeof text);
  ck_assert_str_eq(text, "C1:city C2:city K2:district");
  ck_assert_int_eq(v->tender->version, 3);
  pt_free(v);
}
END_TEST

/*
 * The items' budgets, the joint buyers' too, must fit in the tender's
 * budget at every step that changes either: a joint buyer's demand, the
 * lead's redraft, the publication and the lead's amendments of the budget
 * or the items.  Each refusal says the sums in yuan and changes nothing.
 */
START_TEST(the_items_budgets_fit_in_the_tenders_budget) {
  pt_register("district", "agency");
  pt_tender d;
  pt_tender_init(&d, "T-JB", 1000000, DEADLINE); /* 10000.00 yuan */
  d.buyers[d.t.n_buyers++] = "district";
  pt_item(&d, "C1", "DESK", 10, 600000, NULL);
  pt_draft("city", &d);

  /* district's 5000 with city's 6000 is over 10000. */
  Gm__Procurement__Item k1,
      *pk1 = pt_new_item(&k1, "K1", NULL, 20, 500000, NULL);
  Gm__Procurement__DemandRequest dq = pt_demand_request("T-JB", &pk1, 1);
  pt_refused("T-JB", "district", "tender.demand", &dq.base,
             GM__STATUS__INVALID_ARGUMENT,
             "your items' budgets add up to 5000.00 yuan; with the 6000.00 "
             "yuan of the items already in tender T-JB (city 6000.00 yuan) "
             "that is 11000.00 yuan, above its budget 10000.00 yuan: the "
             "items' budgets must fit in the tender's; lower yours to 4000.00 "
             "yuan in all or less, or ask city, the lead agency, to raise the "
             "budget");
  /* With city's items taking the whole budget, none is left to lower to:
     an item with no budget still fits. */
  d.items[0].budget = 1000000;
  pt_draft("city", &d);
  pt_refused("T-JB", "district", "tender.demand", &dq.base,
             GM__STATUS__INVALID_ARGUMENT,
             "above its budget 10000.00 yuan: the items' budgets must fit in "
             "the tender's; the items already there take the whole budget: "
             "send yours with no budget (0), or ask city, the lead agency, to "
             "raise the budget");
  d.items[0].budget = 600000;
  pt_draft("city", &d);
  k1.budget = 400000;
  pt_demand("district", "T-JB", &pk1, 1);

  /* The lead cannot lower the budget under the two. */
  d.t.budget = 900000;
  Gm__Procurement__DraftRequest dr = GM__PROCUREMENT__DRAFT_REQUEST__INIT;
  dr.tender = &d.t;
  pt_refused("T-JB", "city", "tender.draft", &dr.base,
             GM__STATUS__INVALID_ARGUMENT,
             "with the joint buyers' demand the items' budgets add up to "
             "10000.00 yuan (city 6000.00 yuan, district 4000.00 yuan), above "
             "the budget 9000.00 yuan");
  d.t.budget = 1000000;
  pt_publish_draft("city", "T-JB");

  /* Published: amending the budget under the items, or an item over
     what is left, is refused. */
  pt_amend a;
  pt_amend_init(&a, "T-JB", "budget", "less money");
  a.ch.budget = 900000;
  char *before = pt_hashes("T-JB", "t dm am");
  pt_expect("city", "tender.amend", &a.q.base, GM__STATUS__INVALID_ARGUMENT,
            "the items' budgets add up to 10000.00 yuan (city 6000.00 yuan, "
            "district 4000.00 yuan), above the tender's budget 9000.00 yuan");
  Gm__Procurement__Item c1,
      *mine[] = {pt_new_item(&c1, "C1", NULL, 12, 700000, NULL)};
  a.ch.items = mine;
  a.ch.n_items = 1;
  a.fields[0] = "items";
  pt_expect("city", "tender.amend", &a.q.base, GM__STATUS__INVALID_ARGUMENT,
            "the items' budgets add up to 11000.00 yuan (city 7000.00 yuan, "
            "district 4000.00 yuan), above the tender's budget 10000.00 yuan");
  pt_unchanged("T-JB", "t dm am", before);
  /* Both together fit. */
  pt_amend_init(&a, "T-JB", "budget,items", "more desks, more money");
  a.ch.budget = 1100000;
  a.ch.items = mine;
  a.ch.n_items = 1;
  Gm__Procurement__TenderView *v =
      (Gm__Procurement__TenderView *)pt_call("city", "tender.amend", &a.q.base);
  ck_assert_msg(v, "%s", pt_message);
  ck_assert_int_eq(v->tender->budget, 1100000);
  ck_assert_int_eq(v->tender->n_items, 2);
  pt_free(v);
}
END_TEST

/* The refusal of a script step run directly (pt_script): its message. */
static void script_refused(redisReply *r, const char *text) {
  ck_assert_int_eq(r->type, REDIS_REPLY_ERROR);
  ck_assert_msg(strstr(r->str, text), "%s", r->str);
  freeReplyObject(r);
}

/*
 * The budget check of a redraft, a demand and a publication is made in C
 * on the draft as read, and the step is refused if the draft changed
 * since (its revision): here the step is run on Redis with the revision
 * read before a joint buyer's demand came in, as the broker would run it
 * had the demand come between its read and its step.  Each is refused,
 * saying what changed and to do it again, and nothing is written.
 */
START_TEST(a_step_on_a_draft_changed_since_its_check_is_refused) {
  pt_register("district", "agency");
  pt_register("county", "agency");
  pt_tender d;
  pt_tender_init(&d, "T-RACE", 1000000, DEADLINE);
  d.buyers[d.t.n_buyers++] = "district";
  d.buyers[d.t.n_buyers++] = "county";
  pt_item(&d, "C1", "DESK", 10, 600000, NULL);
  pt_draft("city", &d);
  redisContext *c = gm_test_redis_connect(pt_redis);
  redisReply *r = gm_test_redis_cmd(c,
                                    "HMGET gm:{procurement:t:T-RACE}:t rev "
                                    "def buyers title");
  ck_assert_int_eq(r->type, REDIS_REPLY_ARRAY);
  ck_assert_str_eq(r->element[0]->str, "1");
  char def[4096];
  snprintf(def, sizeof def, "%s", r->element[1]->str);
  const char *redraft[] = {
      "draft", "T-RACE", def, ",district,county,", "green fit-out materials",
      "1"};
  freeReplyObject(r);
  redisFree(c);

  /* district's demand comes in: the draft is at revision 2. */
  Gm__Procurement__Item k1,
      *pk1 = pt_new_item(&k1, "K1", NULL, 20, 400000, NULL);
  pt_demand("district", "T-RACE", &pk1, 1);
  char *before = pt_hashes("T-RACE", "t dm am");

  script_refused(pt_script("city", "tender", "T-RACE", 6, redraft),
                 "FAILED_PRECONDITION the draft of tender T-RACE changed "
                 "while it was being redrafted (a joint buyer sent its "
                 "demand); draft it again");
  const char *demand[] = {"demand", "T-RACE", "", "1"};
  script_refused(pt_script("county", "tender", "T-RACE", 4, demand),
                 "FAILED_PRECONDITION the draft of tender T-RACE changed "
                 "while your demand was being checked (city redrafted it, or "
                 "another buyer sent its demand); send it again");
  const char *publish[] = {"publish", "T-RACE", "1"};
  script_refused(pt_script("city", "tender", "T-RACE", 3, publish),
                 "FAILED_PRECONDITION the draft of tender T-RACE changed "
                 "while it was being published (a joint buyer added its "
                 "demand); publish it again");
  pt_unchanged("T-RACE", "t dm am", before);

  /* At the revision it is at, the same steps go through the broker. */
  pt_publish_draft("city", "T-RACE");
  Gm__Procurement__TenderView *v = pt_tender_get("T-RACE");
  char text[128];
  items_text(v->tender, text, sizeof text);
  ck_assert_str_eq(text, "C1:city K1:district");
  pt_free(v);
}
END_TEST

/*
 * A tender published before the items' budgets had to fit in its budget
 * (its stored definition rewritten here to hold items over it, as an
 * older release let a joint buyer's demand do) can still be amended in
 * what does not touch that sum: the deadline moves.  An amendment of the
 * budget or the items must make them fit.
 */
START_TEST(a_tender_published_over_its_budget_can_still_move_its_deadline) {
  pt_tender d;
  pt_tender_init(&d, "T-OLD", 1000000, DEADLINE); /* 10000.00 yuan */
  pt_item(&d, "C1", "DESK", 10, 600000, NULL);
  pt_item(&d, "C2", "DESK", 10, 400000, NULL);
  pt_publish("city", &d);

  /* The stored definition: C2's budget raised to 6000.00, so the items
     add up to 12000.00 yuan over the 10000.00. */
  redisContext *c = gm_test_redis_connect(pt_redis);
  redisReply *r = gm_test_redis_cmd(c, "HGET gm:{procurement:t:T-OLD}:t def");
  ck_assert_int_eq(r->type, REDIS_REPLY_STRING);
  uint8_t *bin = malloc(r->len + 1);
  size_t n = 0;
  ck_assert_int_eq(sodium_base642bin(bin, r->len + 1, r->str, r->len, NULL, &n,
                                     NULL, sodium_base64_VARIANT_ORIGINAL),
                   0);
  freeReplyObject(r);
  Gm__Procurement__Tender *t = gm__procurement__tender__unpack(NULL, n, bin);
  ck_assert_ptr_nonnull(t);
  free(bin);
  ck_assert_int_eq(t->n_items, 2);
  t->items[1]->budget = 600000;
  n = gm__procurement__tender__get_packed_size(t);
  bin = malloc(n + 1);
  gm__procurement__tender__pack(t, bin);
  gm__procurement__tender__free_unpacked(t, NULL);
  size_t elen = sodium_base64_ENCODED_LEN(n, sodium_base64_VARIANT_ORIGINAL);
  char *enc = malloc(elen);
  sodium_bin2base64(enc, elen, bin, n, sodium_base64_VARIANT_ORIGINAL);
  free(bin);
  r = gm_test_redis_cmd(c, "HSET gm:{procurement:t:T-OLD}:t def %s", enc);
  ck_assert_int_eq(r->type, REDIS_REPLY_INTEGER);
  freeReplyObject(r);
  free(enc);
  redisFree(c);

  /* One more week: the deadline alone moves. */
  pt_amend a;
  pt_amend_init(&a, "T-OLD", "deadline_ms", "one more week for site visits");
  a.ch.deadline_ms = DEADLINE + 7 * PT_DAY;
  Gm__Procurement__TenderView *v =
      (Gm__Procurement__TenderView *)pt_call("city", "tender.amend", &a.q.base);
  ck_assert_msg(v, "%s", pt_message);
  ck_assert_int_eq(v->tender->deadline_ms, DEADLINE + 7 * PT_DAY);
  ck_assert_int_eq(v->tender->version, 2);
  pt_free(v);

  /* An amendment of the budget is held to the sum, and says it. */
  pt_amend_init(&a, "T-OLD", "budget", "a little more money");
  a.ch.budget = 1100000;
  pt_refused("T-OLD", "city", "tender.amend", &a.q.base,
             GM__STATUS__INVALID_ARGUMENT,
             "the items' budgets add up to 12000.00 yuan (city 12000.00 yuan), "
             "above the tender's budget 11000.00 yuan");
  a.ch.budget = 1200000;
  v = (Gm__Procurement__TenderView *)pt_call("city", "tender.amend", &a.q.base);
  ck_assert_msg(v, "%s", pt_message);
  ck_assert_int_eq(v->tender->budget, 1200000);
  pt_free(v);
}
END_TEST

/*
 * Bid security (at most 2% of the budget) must be lodged before the
 * deadline: gamma's is short and it is disqualified; over the budget and
 * over an item's budget disqualify too.  With no valid bid left the
 * tender is unsuccessful and cannot be awarded.
 */
START_TEST(security_and_budgets_disqualify_and_no_valid_bid_is_unsuccessful) {
  pt_tender d;
  pt_tender_init(&d, "T-SEC", 1000000, DEADLINE);
  d.t.bid_security = 20001; /* more than 2% */
  pt_item(&d, "D1", "DESK", 10, 90000, NULL);
  Gm__Procurement__DraftRequest dr = GM__PROCUREMENT__DRAFT_REQUEST__INIT;
  dr.tender = &d.t;
  pt_expect("city", "tender.draft", &dr.base, GM__STATUS__INVALID_ARGUMENT,
            "above 2% of the budget");
  d.t.bid_security = 20000;
  d.t.deadline_ms = T0 + 19 * PT_DAY;
  pt_free(
      (Gm__Procurement__TenderView *)pt_call("city", "tender.draft", &dr.base));
  Gm__Procurement__TenderRequest pr = GM__PROCUREMENT__TENDER_REQUEST__INIT;
  pr.tender_id = "T-SEC";
  pt_expect("city", "tender.publish", &pr.base, GM__STATUS__INVALID_ARGUMENT,
            "less than the 20 days");
  d.t.deadline_ms = DEADLINE;
  pt_publish("city", &d);
  Gm__Procurement__SecurityRequest sq = GM__PROCUREMENT__SECURITY_REQUEST__INIT;
  sq.tender_id = "T-SEC";
  sq.supplier = "alpha";
  sq.amount = 20000;
  sq.reference = "transfer 0001";
  ProtobufCMessage *m = pt_call("city", "tender.security", &sq.base);
  ck_assert_msg(m, "%s", pt_message);
  protobuf_c_message_free_unpacked(m, NULL);
  sq.supplier = "gamma";
  sq.amount = 19999;
  m = pt_call("city", "tender.security", &sq.base);
  ck_assert_msg(m, "%s", pt_message);
  protobuf_c_message_free_unpacked(m, NULL);
  sq.supplier = "beta";
  sq.amount = 20000;
  m = pt_call("city", "tender.security", &sq.base);
  protobuf_c_message_free_unpacked(m, NULL);
  /* alpha: over D1's budget of 900.00; beta: over the whole budget;
     gamma: its security is short. */
  const char *a[] = {"D1=9001"}, *b[] = {"D1=100001"}, *g[] = {"D1=8000"};
  pt_free(pt_bid("alpha", "T-SEC", 0, a, 1));
  pt_free(pt_bid("beta", "T-SEC", GM__PROCUREMENT__SME_CLASS__SME_SMALL, b, 1));
  pt_free(
      pt_bid("gamma", "T-SEC", GM__PROCUREMENT__SME_CLASS__SME_MEDIUM, g, 1));
  /* delta never registered its credit code: its security is refused
     (nor is any recorded for a name nobody registered), its bid taken,
     then disqualified. */
  pt_register("delta", "supplier");
  sq.supplier = "delta";
  sq.amount = 20000;
  pt_expect("city", "tender.security", &sq.base,
            GM__STATUS__FAILED_PRECONDITION,
            "delta is not a registered supplier");
  pt_free(pt_bid("delta", "T-SEC", 0, g, 1));
  open_at_deadline("T-SEC", "unsuccessful");
  Gm__Procurement__Sheet *s = pt_sheet("T-SEC");
  ck_assert_str_eq(pt_row(s, "alpha")->reasons, "item D1 over its budget");
  ck_assert_msg(strstr(pt_row(s, "beta")->reasons, "over the budget"), "%s",
                pt_row(s, "beta")->reasons);
  ck_assert_str_eq(pt_row(s, "gamma")->reasons, "bid security not lodged");
  ck_assert_str_eq(pt_row(s, "delta")->reasons,
                   "not in the party register; bid security not lodged");
  ck_assert_msg(strstr(pt_row(s, "gamma")->checks,
                       "bid security: 199.99 of 200.00 yuan lodged"),
                "%s", pt_row(s, "gamma")->checks);
  pt_free(s);
  Gm__Procurement__AwardRequest ar = GM__PROCUREMENT__AWARD_REQUEST__INIT;
  ar.tender_id = "T-SEC";
  pt_expect("city", "tender.award", &ar.base, GM__STATUS__FAILED_PRECONDITION,
            "unsuccessful");
  Gm__Procurement__TenderView *v = pt_tender_get("T-SEC");
  ck_assert_str_eq(v->tender->reason, "no valid bid");
  pt_free(v);
}
END_TEST

/*
 * The catalogue: a batch with one bad certificate stores nothing and
 * names the certificate and the field; a certificate of a category not in
 * the catalogue is refused; registering with a wrong credit code is
 * refused with the character; a draft naming an unknown category cannot be
 * published; only its agencies see a draft.
 */
START_TEST(bad_input_is_refused_whole_with_the_reason) {
  Gm__Procurement__Certificate c1 = GM__PROCUREMENT__CERTIFICATE__INIT,
                               c2 = GM__PROCUREMENT__CERTIFICATE__INIT;
  Gm__Procurement__Certificate *cs[] = {&c1, &c2};
  Gm__Procurement__CertificateBatch b =
      GM__PROCUREMENT__CERTIFICATE_BATCH__INIT;
  c1.number = "GB-NEW-1";
  c2.number = "GB-NEW-2";
  c1.holder = c2.holder = PT_USCC_B;
  c1.product = c2.product = "board";
  c1.issuer = c2.issuer = "centre";
  c1.category = c2.category = "INSUL";
  c1.label = c2.label = "gb_insulation";
  c1.grade = 2;
  c2.grade = 4; /* no such grade */
  c1.valid_from_ms = c2.valid_from_ms = T0;
  c1.valid_to_ms = c2.valid_to_ms = T0 + PT_DAY;
  b.certificates = cs;
  b.n_certificates = 2;
  pt_expect("centre", "certificate.put", &b.base, GM__STATUS__INVALID_ARGUMENT,
            "certificate 2 (GB-NEW-2): grade 4");
  c2.grade = 2;
  c2.category = "NOPE";
  pt_expect("centre", "certificate.put", &b.base,
            GM__STATUS__FAILED_PRECONDITION, "category NOPE is not in the");
  c2.category = "INSUL";
  c2.number = "GB-NEW-1";
  pt_expect("centre", "certificate.put", &b.base, GM__STATUS__INVALID_ARGUMENT,
            "twice");
  pt_expect("alpha", "certificate.put", &b.base, GM__STATUS__PERMISSION_DENIED,
            "certifier");
  redisContext *rc = gm_test_redis_connect(pt_redis);
  redisReply *r = gm_test_redis_cmd(rc, "KEYS *GB-NEW*");
  ck_assert_int_eq(r->elements, 0);
  freeReplyObject(r);
  redisFree(rc);

  Gm__Procurement__Party p = GM__PROCUREMENT__PARTY__INIT;
  p.uscc = "914403001922038217";
  p.name = "Alpha";
  pt_expect("alpha", "party.register", &p.base, GM__STATUS__INVALID_ARGUMENT,
            "call for check character '6'");

  pt_tender d;
  pt_tender_init(&d, "T-BAD", 100000000, DEADLINE);
  pt_item(&d, "X1", "NOPE", 1, 0, NULL);
  Gm__Procurement__DraftRequest dr = GM__PROCUREMENT__DRAFT_REQUEST__INIT;
  dr.tender = &d.t;
  ProtobufCMessage *m = pt_call("city", "tender.draft", &dr.base);
  ck_assert_msg(m, "%s", pt_message);
  protobuf_c_message_free_unpacked(m, NULL);
  Gm__Procurement__TenderRequest q = GM__PROCUREMENT__TENDER_REQUEST__INIT;
  q.tender_id = "T-BAD";
  pt_expect("alpha", "tender.get", &q.base, GM__STATUS__NOT_FOUND, "no tender");
  pt_expect("city", "tender.publish", &q.base, GM__STATUS__FAILED_PRECONDITION,
            "category NOPE is not in the catalogue");
  d.t.title = "bad\x01title";
  pt_expect("city", "tender.draft", &dr.base, GM__STATUS__INVALID_ARGUMENT,
            "control character");

  /* An item's budget above the whole tender's could never bind: refused,
     in yuan, and nothing is drafted. */
  pt_tender o;
  pt_tender_init(&o, "T-OVER", 50000000, DEADLINE);
  pt_item(&o, "I1", "INSUL", 300, 60000000, NULL);
  dr.tender = &o.t;
  pt_expect("city", "tender.draft", &dr.base, GM__STATUS__INVALID_ARGUMENT,
            "item I1: its budget 600000.00 yuan is above the tender's budget "
            "500000.00 yuan");
  q.tender_id = "T-OVER";
  pt_expect("city", "tender.get", &q.base, GM__STATUS__NOT_FOUND, "no tender");
}
END_TEST

/*
 * Two items each priced within the largest amount but together beyond it:
 * the bid is disqualified with the reason, not taken as a valid bid of
 * price 0 that would rank first and could never be awarded.
 */
START_TEST(a_bid_whose_total_is_beyond_any_amount_is_disqualified) {
  pt_tender d;
  pt_tender_init(&d, "T-BIG", PR_MAX_AMOUNT, DEADLINE);
  pt_item(&d, "D1", "DESK", 1, 0, NULL);
  pt_item(&d, "D2", "DESK", 1, 0, NULL);
  pt_publish("city", &d);
  const char *a[] = {"D1=600000000000000", "D2=600000000000000"},
             *b[] = {"D1=100000", "D2=100000"};
  pt_free(pt_bid("alpha", "T-BIG", 0, a, 2));
  pt_free(
      pt_bid("gamma", "T-BIG", GM__PROCUREMENT__SME_CLASS__SME_MEDIUM, b, 2));
  open_at_deadline("T-BIG", "evaluated");
  Gm__Procurement__Sheet *s = pt_sheet("T-BIG");
  ck_assert_str_eq(pt_row(s, "alpha")->status, "disqualified");
  ck_assert_msg(strstr(pt_row(s, "alpha")->reasons, "beyond any amount"), "%s",
                pt_row(s, "alpha")->reasons);
  ck_assert_int_eq(pt_row(s, "gamma")->rank, 1);
  pt_free(s);
  Gm__Procurement__Award *aw = pt_award("city", "T-BIG");
  ck_assert_str_eq(aw->supplier, "gamma");
  ck_assert_int_eq(aw->value, 200000);
  pt_free(aw);
}
END_TEST

/*
 * An amendment cannot take back the bidding period the law gives: a new
 * deadline less than 20 days after the publication is refused, as it is at
 * publishing, and the tender keeps its deadline.
 */
START_TEST(an_amendment_cannot_shorten_the_bidding_period_below_the_law) {
  pt_tender d;
  pt_tender_init(&d, "T-SHORT", 100000000, DEADLINE);
  pt_item(&d, "D1", "DESK", 10, 0, NULL);
  pt_publish("city", &d);
  pt_clock(T0 + PT_DAY);
  Gm__Procurement__Tender ch = GM__PROCUREMENT__TENDER__INIT;
  ch.deadline_ms = T0 + 2 * PT_DAY;
  char *fields[] = {"deadline_ms"};
  Gm__Procurement__AmendRequest q = GM__PROCUREMENT__AMEND_REQUEST__INIT;
  q.tender_id = "T-SHORT";
  q.note = "we close tomorrow";
  q.changes = &ch;
  q.fields = fields;
  q.n_fields = 1;
  pt_expect("city", "tender.amend", &q.base, GM__STATUS__INVALID_ARGUMENT,
            "20 days");
  Gm__Procurement__TenderView *v = pt_tender_get("T-SHORT");
  ck_assert_int_eq(v->tender->deadline_ms, DEADLINE);
  ck_assert_int_eq(v->tender->version, 1);
  pt_free(v);
  /* Exactly 20 days after the publication is the earliest. */
  ch.deadline_ms = T0 + 20 * PT_DAY;
  v = (Gm__Procurement__TenderView *)pt_call("city", "tender.amend", &q.base);
  ck_assert_msg(v, "%s", pt_message);
  ck_assert_int_eq(v->tender->deadline_ms, T0 + 20 * PT_DAY);
  pt_free(v);
}
END_TEST

/*
 * MOF Order 87 art. 27: a change that may affect the preparation of bids
 * with fewer than 15 days left moves the deadline so 15 remain (to the next
 * minute), or is refused naming that deadline when the agency keeps its
 * own; one that does not affect bids, or leaves 15 days, moves nothing.
 */
START_TEST(a_change_affecting_bids_leaves_15_days_before_the_deadline) {
  pt_tender d;
  pt_tender_init(&d, "T-15", 100000000, DEADLINE);
  pt_item(&d, "D1", "DESK", 10, 0, NULL);
  pt_publish("city", &d);
  pt_clock(T0 + 10 * PT_DAY); /* 11 days left */
  Gm__Procurement__Tender ch = GM__PROCUREMENT__TENDER__INIT;
  ch.budget = 90000000;
  char *fields[] = {"budget"};
  Gm__Procurement__AmendRequest q = GM__PROCUREMENT__AMEND_REQUEST__INIT;
  q.tender_id = "T-15";
  q.note = "budget cut";
  q.changes = &ch;
  q.fields = fields;
  q.n_fields = 1;
  q.affects_bids = 1;
  q.keep_deadline = 1;
  pt_expect("city", "tender.amend", &q.base, GM__STATUS__FAILED_PRECONDITION,
            "the earliest deadline allowed is 2026-03-27 10:01");
  Gm__Procurement__TenderView *v = pt_tender_get("T-15");
  ck_assert_int_eq(v->tender->version, 1);
  ck_assert_int_eq(v->tender->budget, 100000000);
  pt_free(v);

  q.keep_deadline = 0;
  v = (Gm__Procurement__TenderView *)pt_call("city", "tender.amend", &q.base);
  ck_assert_msg(v, "%s", pt_message);
  ck_assert_int_eq(v->tender->deadline_ms, T0 + 25 * PT_DAY + 60000);
  ck_assert_int_eq(v->tender->budget, 90000000);
  ck_assert_int_eq(v->n_amendments, 1);
  ck_assert_int_eq(v->amendments[0]->n_fields, 2);
  ck_assert_str_eq(v->amendments[0]->fields[1], "deadline_ms");
  ck_assert_ptr_nonnull(strstr(v->amendments[0]->note, "Order 87 art. 27"));
  pt_free(v);
  /* The opening follows the moved deadline, not the first one. */
  redisContext *c = gm_test_redis_connect(pt_redis);
  redisReply *due =
      gm_test_redis_cmd(c, "ZSCORE gm:{procurement:t:T-15}:dl open|T-15");
  ck_assert_int_eq(strtoll(due->str, NULL, 10), T0 + 25 * PT_DAY + 60000);
  freeReplyObject(due);
  redisFree(c);

  /* A title does not affect bids: the deadline stays, 4 days left. */
  pt_clock(T0 + 21 * PT_DAY);
  ch.title = "Desks, tower 3";
  fields[0] = "title";
  q.affects_bids = 0;
  v = (Gm__Procurement__TenderView *)pt_call("city", "tender.amend", &q.base);
  ck_assert_msg(v, "%s", pt_message);
  ck_assert_int_eq(v->tender->deadline_ms, T0 + 25 * PT_DAY + 60000);
  pt_free(v);
}
END_TEST

/*
 * A request for quotations gives suppliers 3 working days (MOF Order 74),
 * counted on the calendar after the day of the notice: published on
 * Friday 2026-03-06 with Monday a holiday, the earliest deadline is the
 * start of Friday 2026-03-13 (Tue, Wed, Thu); Monday 10:00, three calendar
 * days later, is refused, naming it.
 */
START_TEST(a_request_for_quotations_counts_3_working_days) {
  pt_calendar_put(1, (const char *const[]){"2026-03-09=holiday"});
  pt_clock(pt_at("2026-03-06", 10, 0));

  pt_tender d;
  pt_tender_init(&d, "T-RFQ", 1000000, pt_at("2026-03-09", 10, 0));
  pt_item(&d, "D1", "DESK", 10, 0, NULL);
  d.t.method = GM__PROCUREMENT__METHOD__METHOD_RFQ;
  Gm__Procurement__DraftRequest dr = GM__PROCUREMENT__DRAFT_REQUEST__INIT;
  dr.tender = &d.t;
  ProtobufCMessage *m = pt_call("city", "tender.draft", &dr.base);
  ck_assert_msg(m, "%s", pt_message);
  protobuf_c_message_free_unpacked(m, NULL);
  Gm__Procurement__TenderRequest pr = GM__PROCUREMENT__TENDER_REQUEST__INIT;
  pr.tender_id = "T-RFQ";
  pt_expect("city", "tender.publish", &pr.base, GM__STATUS__INVALID_ARGUMENT,
            "less than the 3 working days the law gives them; set it after "
            "2026-03-13 00:00");
  /* Thursday evening is still short; the start of Friday is enough. */
  d.t.deadline_ms = pt_at("2026-03-12", 23, 59);
  m = pt_call("city", "tender.draft", &dr.base);
  protobuf_c_message_free_unpacked(m, NULL);
  pt_expect("city", "tender.publish", &pr.base, GM__STATUS__INVALID_ARGUMENT,
            "3 working days");
  d.t.deadline_ms = pt_at("2026-03-13", 0, 0);
  m = pt_call("city", "tender.draft", &dr.base);
  protobuf_c_message_free_unpacked(m, NULL);
  m = pt_call("city", "tender.publish", &pr.base);
  ck_assert_msg(m, "%s", pt_message);
  protobuf_c_message_free_unpacked(m, NULL);
}
END_TEST

/*
 * A squatted credit code comes back: delta registered PT_USCC_D first;
 * omega, whose code it is, asks for it with its evidence; the centre
 * approves: the code is omega's, delta's entry is gone (from Redis and the
 * ledger), and omega registers.  A second request for it while one is
 * pending, one without evidence, for a code nobody holds, or a decision by
 * anyone but the centre are refused, changing nothing.
 */
START_TEST(a_squatted_credit_code_is_reclaimed_with_the_centres_approval) {
  pt_register("delta", "supplier");
  pt_register("omega", "supplier");
  pt_party("delta", PT_USCC_D, GM__PROCUREMENT__SME_CLASS__SME_SMALL);
  Gm__Procurement__Party p = GM__PROCUREMENT__PARTY__INIT;
  p.uscc = PT_USCC_D;
  p.name = "Omega Windows";
  pt_expect("omega", "party.register", &p.base, GM__STATUS__ALREADY_EXISTS,
            "registered to delta");

  Gm__Procurement__ReclaimRequest q = GM__PROCUREMENT__RECLAIM_REQUEST__INIT;
  q.uscc = PT_USCC_D;
  q.evidence = "";
  pt_expect("omega", "party.reclaim", &q.base, GM__STATUS__INVALID_ARGUMENT,
            "evidence is empty");
  char code[19];
  q.uscc = pt_uscc(77, code);
  q.evidence = "business licence";
  pt_expect("omega", "party.reclaim", &q.base, GM__STATUS__FAILED_PRECONDITION,
            "register it yourself");
  q.uscc = PT_USCC_D;
  q.evidence = "business licence 9144..., issued 2019-05-01 by Shenzhen AMR";
  Gm__Procurement__Reclaim *r =
      (Gm__Procurement__Reclaim *)pt_call("omega", "party.reclaim", &q.base);
  ck_assert_msg(r, "%s", pt_message);
  ck_assert_str_eq(r->status, "pending");
  ck_assert_str_eq(r->holder, "delta");
  pt_free(r);
  pt_expect("gamma", "party.reclaim", &q.base, GM__STATUS__FAILED_PRECONDITION,
            "omega has asked");

  Gm__Procurement__ReclaimDecision dq = GM__PROCUREMENT__RECLAIM_DECISION__INIT;
  dq.uscc = PT_USCC_D;
  dq.approve = 1;
  dq.reason = "the licence names omega";
  pt_expect("gamma", "party.reclaim_decide", &dq.base,
            GM__STATUS__PERMISSION_DENIED, "certifier");
  r = (Gm__Procurement__Reclaim *)pt_call("centre", "party.reclaim_decide",
                                          &dq.base);
  ck_assert_msg(r, "%s", pt_message);
  ck_assert_str_eq(r->status, "approved");
  ck_assert_str_eq(r->decided_by, "centre");
  pt_free(r);
  pt_expect("centre", "party.reclaim_decide", &dq.base, GM__STATUS__NOT_FOUND,
            "no pending request");

  Gm__Procurement__PartyRequest gq = GM__PROCUREMENT__PARTY_REQUEST__INIT;
  gq.id = "delta";
  pt_expect("delta", "party.get", &gq.base, GM__STATUS__NOT_FOUND,
            "has not registered");
  Gm__Procurement__Party *e =
      (Gm__Procurement__Party *)pt_call("omega", "party.register", &p.base);
  ck_assert_msg(e, "%s", pt_message);
  ck_assert_str_eq(e->uscc, PT_USCC_D);
  pt_free(e);
  /* delta may register again, with a code of its own. */
  pt_expect("delta", "party.register", &p.base, GM__STATUS__ALREADY_EXISTS,
            "registered to omega");
  ck_assert_int_eq(pt_ledger_wait("SELECT count(*) FROM procurement_parties"
                                  " WHERE id = 'delta'",
                                  0),
                   0);
  ck_assert_int_eq(pt_ledger_wait("SELECT count(*) FROM procurement_reclaims"
                                  " WHERE claimant = 'omega' AND holder ="
                                  " 'delta' AND status = 'approved'",
                                  1),
                   1);
}
END_TEST

/*
 * A request for quotations is not a tender: Order 87 art. 27's 15 days
 * are for tenders; for an inquiry MOF Order 74 (art. 10) asks a change
 * that may affect the responses to leave 3 working days before the
 * deadline, else the deadline moves.  Published Monday 2026-03-02 with a
 * deadline Friday 2026-03-13 10:00: amended Monday 03-09 (Tue, Wed, Thu
 * left) nothing moves; amended Wednesday 03-11 the deadline moves to the
 * start of Tuesday 03-17 (Thu, Fri, Mon), or the amendment is refused
 * naming it.
 */
START_TEST(a_quotation_change_affecting_responses_leaves_3_working_days) {
  pt_clock(pt_at("2026-03-02", 10, 0));
  pt_tender d;
  pt_tender_init(&d, "T-RFQ3", 1000000, pt_at("2026-03-13", 10, 0));
  pt_item(&d, "D1", "DESK", 10, 0, NULL);
  d.t.method = GM__PROCUREMENT__METHOD__METHOD_RFQ;
  pt_publish("city", &d);

  pt_clock(pt_at("2026-03-09", 10, 0));
  Gm__Procurement__Tender ch = GM__PROCUREMENT__TENDER__INIT;
  ch.budget = 900000;
  char *fields[] = {"budget"};
  Gm__Procurement__AmendRequest q = GM__PROCUREMENT__AMEND_REQUEST__INIT;
  q.tender_id = "T-RFQ3";
  q.note = "budget cut";
  q.changes = &ch;
  q.fields = fields;
  q.n_fields = 1;
  q.affects_bids = 1;
  Gm__Procurement__TenderView *v =
      (Gm__Procurement__TenderView *)pt_call("city", "tender.amend", &q.base);
  ck_assert_msg(v, "%s", pt_message);
  ck_assert_int_eq(v->tender->deadline_ms, pt_at("2026-03-13", 10, 0));
  ck_assert_int_eq(v->amendments[0]->n_fields, 1);
  pt_free(v);

  pt_clock(pt_at("2026-03-11", 10, 0));
  ch.budget = 800000;
  q.keep_deadline = 1;
  pt_expect("city", "tender.amend", &q.base, GM__STATUS__FAILED_PRECONDITION,
            "the earliest deadline allowed is 2026-03-17 00:00");
  q.keep_deadline = 0;
  v = (Gm__Procurement__TenderView *)pt_call("city", "tender.amend", &q.base);
  ck_assert_msg(v, "%s", pt_message);
  ck_assert_int_eq(v->tender->deadline_ms, pt_at("2026-03-17", 0, 0));
  ck_assert_ptr_nonnull(strstr(v->amendments[1]->note, "Order 74"));
  pt_free(v);
}
END_TEST

/*
 * The certification centre decides on a request for a credit code it is
 * not a party to: a participant holding both the supplier and the
 * certifier role cannot approve its own request (and take a code from the
 * participant that registered it), nor reject one against itself.
 */
START_TEST(a_reclaim_is_not_decided_by_a_party_to_it) {
  pt_register("delta", "supplier");
  pt_register("mallory", "supplier,certifier");
  pt_party("delta", PT_USCC_D, GM__PROCUREMENT__SME_CLASS__SME_SMALL);
  Gm__Procurement__ReclaimRequest q = GM__PROCUREMENT__RECLAIM_REQUEST__INIT;
  q.uscc = PT_USCC_D;
  q.evidence = "a licence of my own making";
  Gm__Procurement__Reclaim *r =
      (Gm__Procurement__Reclaim *)pt_call("mallory", "party.reclaim", &q.base);
  ck_assert_msg(r, "%s", pt_message);
  pt_free(r);
  Gm__Procurement__ReclaimDecision dq = GM__PROCUREMENT__RECLAIM_DECISION__INIT;
  dq.uscc = PT_USCC_D;
  dq.approve = 1;
  dq.reason = "looks fine to me";
  pt_expect("mallory", "party.reclaim_decide", &dq.base,
            GM__STATUS__PERMISSION_DENIED, "party to it");
  Gm__Procurement__PartyRequest gq = GM__PROCUREMENT__PARTY_REQUEST__INIT;
  gq.id = "delta";
  Gm__Procurement__Party *e =
      (Gm__Procurement__Party *)pt_call("delta", "party.get", &gq.base);
  ck_assert_msg(e, "%s", pt_message);
  ck_assert_str_eq(e->uscc, PT_USCC_D);
  pt_free(e);
  /* The request is still pending: the real centre decides. */
  dq.approve = 0;
  dq.reason = "the licence is not genuine";
  r = (Gm__Procurement__Reclaim *)pt_call("centre", "party.reclaim_decide",
                                          &dq.base);
  ck_assert_msg(r, "%s", pt_message);
  ck_assert_str_eq(r->status, "rejected");
  pt_free(r);
}
END_TEST

/*
 * A credit code is one party of the register: gamma cannot register
 * alpha's code (printed in every OCDS export) and then cite alpha's
 * certificate for a mandatory item as its own, nor could one enterprise
 * bid twice through two participants.  alpha may register again with its
 * own code; a code it leaves is free for whoever holds it next.
 */
START_TEST(a_credit_code_is_registered_to_one_party) {
  Gm__Procurement__Party p = GM__PROCUREMENT__PARTY__INIT;
  p.uscc = PT_USCC_A;
  p.name = "Alpha Materials (not)";
  p.size = GM__PROCUREMENT__SME_CLASS__SME_MEDIUM;
  pt_expect("gamma", "party.register", &p.base, GM__STATUS__ALREADY_EXISTS,
            "registered to alpha");
  Gm__Procurement__PartyRequest q = GM__PROCUREMENT__PARTY_REQUEST__INIT;
  q.id = "gamma";
  Gm__Procurement__Party *r =
      (Gm__Procurement__Party *)pt_call("gamma", "party.get", &q.base);
  ck_assert_msg(r, "%s", pt_message);
  ck_assert_str_eq(r->uscc, PT_USCC_C);
  pt_free(r);

  /* So alpha's certificate for the windows stays alpha's. */
  pt_tender d;
  pt_tender_init(&d, "T-USCC", 100000000, DEADLINE);
  pt_item(&d, "W1", "WIN", 10, 0, NULL);
  pt_publish("city", &d);
  const char *a[] = {"W1=90000@GB-W-A"}, *c[] = {"W1=70000@GB-W-A"};
  pt_free(pt_bid("alpha", "T-USCC", 0, a, 1));
  pt_free(
      pt_bid("gamma", "T-USCC", GM__PROCUREMENT__SME_CLASS__SME_MEDIUM, c, 1));
  open_at_deadline("T-USCC", "evaluated");
  Gm__Procurement__Sheet *s = pt_sheet("T-USCC");
  ck_assert_str_eq(pt_row(s, "gamma")->status, "disqualified");
  ck_assert_int_eq(pt_row(s, "alpha")->rank, 1);
  pt_free(s);

  /* alpha registers again (a new name) with its code; then moves to
     another code, and the old one is free. */
  p.name = "Alpha Materials Group";
  r = (Gm__Procurement__Party *)pt_call("alpha", "party.register", &p.base);
  ck_assert_msg(r, "%s", pt_message);
  pt_free(r);
  p.uscc = PT_USCC_D;
  r = (Gm__Procurement__Party *)pt_call("alpha", "party.register", &p.base);
  ck_assert_msg(r, "%s", pt_message);
  pt_free(r);
  p.uscc = PT_USCC_A;
  r = (Gm__Procurement__Party *)pt_call("gamma", "party.register", &p.base);
  ck_assert_msg(r, "%s", pt_message);
  pt_free(r);
  p.uscc = PT_USCC_D;
  pt_expect("beta", "party.register", &p.base, GM__STATUS__ALREADY_EXISTS,
            "registered to alpha");
}
END_TEST

/*
 * A published tender is refused a redraft and a joint demand with the
 * normal refusal (not a failed script); a bid at exactly the deadline is
 * told so; the bids of a tender cancelled before its opening are not
 * called "sealed until its opening".
 */
START_TEST(a_published_tender_refuses_a_redraft_a_demand_and_a_late_bid) {
  pt_tender d;
  pt_tender_init(&d, "T-PUB", 10000000, DEADLINE);
  d.buyers[d.t.n_buyers++] = "school";
  pt_item(&d, "D1", "DESK", 10, 0, NULL);
  pt_publish("city", &d);
  Gm__Procurement__DraftRequest dr = GM__PROCUREMENT__DRAFT_REQUEST__INIT;
  dr.tender = &d.t;
  pt_expect("city", "tender.draft", &dr.base, GM__STATUS__FAILED_PRECONDITION,
            "is open for bids until");
  ck_assert_msg(strstr(pt_message, "changes by gm procurement amend"), "%s",
                pt_message);
  pt_register("school", "agency");
  Gm__Procurement__DemandRequest dm = GM__PROCUREMENT__DEMAND_REQUEST__INIT;
  dm.tender_id = "T-PUB";
  dm.items = d.t.items;
  dm.n_items = d.t.n_items;
  pt_expect("school", "tender.demand", &dm.base,
            GM__STATUS__FAILED_PRECONDITION,
            "demand joins a tender while it is a draft");

  const char *line[] = {"D1=50000"};
  pt_clock(DEADLINE);
  ck_assert_ptr_null(
      pt_bid("beta", "T-PUB", GM__PROCUREMENT__SME_CLASS__SME_SMALL, line, 1));
  ck_assert_msg(strstr(pt_message,
                       "came at the deadline; bids must arrive "
                       "before it"),
                "%s", pt_message);

  pt_tender c;
  pt_tender_init(&c, "T-CX", 10000000, DEADLINE + 21 * PT_DAY);
  pt_item(&c, "D1", "DESK", 10, 0, NULL);
  pt_publish("city", &c);
  Gm__Procurement__TenderRequest q = GM__PROCUREMENT__TENDER_REQUEST__INIT;
  q.tender_id = "T-CX";
  q.reason = "budget withdrawn";
  ProtobufCMessage *m = pt_call("city", "tender.cancel", &q.base);
  ck_assert_msg(m, "%s", pt_message);
  protobuf_c_message_free_unpacked(m, NULL);
  Gm__Procurement__BidListRequest bl = GM__PROCUREMENT__BID_LIST_REQUEST__INIT;
  bl.tender_id = "T-CX";
  pt_expect("alpha", "bid.list", &bl.base, GM__STATUS__FAILED_PRECONDITION,
            "was cancelled before its opening (budget withdrawn)");
}
END_TEST

/*
 * A draft never published and then cancelled stays its agency's: another
 * party asking for its bids or challenges is told there is no such tender
 * (not the reason it was cancelled).  A refund of security (0) is recorded
 * whatever the register says now: for a name without security it is
 * refused for that, not for the register.
 */
START_TEST(a_cancelled_draft_stays_hidden_and_refunds_skip_the_register) {
  pt_tender d;
  pt_tender_init(&d, "T-HID", 10000000, DEADLINE);
  pt_item(&d, "D1", "DESK", 10, 0, NULL);
  Gm__Procurement__DraftRequest dr = GM__PROCUREMENT__DRAFT_REQUEST__INIT;
  dr.tender = &d.t;
  ProtobufCMessage *m = pt_call("city", "tender.draft", &dr.base);
  ck_assert_msg(m, "%s", pt_message);
  protobuf_c_message_free_unpacked(m, NULL);
  Gm__Procurement__TenderRequest q = GM__PROCUREMENT__TENDER_REQUEST__INIT;
  q.tender_id = "T-HID";
  q.reason = "merger with agency X";
  m = pt_call("city", "tender.cancel", &q.base);
  ck_assert_msg(m, "%s", pt_message);
  protobuf_c_message_free_unpacked(m, NULL);
  Gm__Procurement__BidListRequest bl = GM__PROCUREMENT__BID_LIST_REQUEST__INIT;
  bl.tender_id = "T-HID";
  pt_expect("alpha", "bid.list", &bl.base, GM__STATUS__NOT_FOUND,
            "no tender T-HID");
  ck_assert_msg(!strstr(pt_message, "merger"), "%s", pt_message);
  Gm__Procurement__ChallengeListRequest cl =
      GM__PROCUREMENT__CHALLENGE_LIST_REQUEST__INIT;
  cl.tender_id = "T-HID";
  pt_expect("alpha", "challenge.list", &cl.base, GM__STATUS__NOT_FOUND,
            "no tender T-HID");
  Gm__Procurement__ExportRequest ex = GM__PROCUREMENT__EXPORT_REQUEST__INIT;
  ex.tender_id = "T-HID";
  pt_expect("alpha", "tender.export", &ex.base, GM__STATUS__NOT_FOUND,
            "no published tender T-HID");

  pt_tender p;
  pt_tender_init(&p, "T-REF", 10000000, DEADLINE);
  pt_item(&p, "D1", "DESK", 10, 0, NULL);
  p.t.bid_security = 20000;
  pt_publish("city", &p);
  Gm__Procurement__SecurityRequest sq = GM__PROCUREMENT__SECURITY_REQUEST__INIT;
  sq.tender_id = "T-REF";
  sq.supplier = "nobody";
  sq.amount = 0;
  sq.reference = "refund";
  m = pt_call("city", "tender.security", &sq.base);
  ck_assert_ptr_null(m);
  ck_assert_msg(!strstr(pt_message, "not a registered supplier"), "%s",
                pt_message);
  sq.amount = 20000;
  pt_expect("city", "tender.security", &sq.base,
            GM__STATUS__FAILED_PRECONDITION, "not a registered supplier");
}
END_TEST

/*
 * A tender never published is its agency's and its joint buyers' only:
 * tender.get answers "no tender" to anyone else, and so does every other
 * call on it, so no refusal tells another agency or a supplier that the
 * draft exists, its state or whose it is (publish, cancel and demand said
 * "only city ...", a bid "tender ... is draft", mybid "alpha has no bid
 * on tender ..."); drafting its id again is refused as taken.  After it
 * is cancelled and archived, the same: not "ended cancelled and was
 * archived".
 */
static void none_to(const char *as, const char *method,
                    const ProtobufCMessage *req, int status, const char *text) {
  pt_expect(as, method, req, status, text);
  ck_assert_msg(
      !strstr(pt_message, "city") && !strstr(pt_message, "is draft") &&
          !strstr(pt_message, "archiv") && !strstr(pt_message, "cancelled"),
      "%s %s as %s says too much: %s", method, "T-SEC", as, pt_message);
}

static void nobody_else_sees(const char *other_agency) {
  Gm__Procurement__TenderRequest q = GM__PROCUREMENT__TENDER_REQUEST__INIT;
  q.tender_id = "T-SEC";
  none_to(other_agency, "tender.publish", &q.base, GM__STATUS__NOT_FOUND,
          "no tender T-SEC");
  q.reason = "not yours";
  none_to(other_agency, "tender.cancel", &q.base, GM__STATUS__NOT_FOUND,
          "no tender T-SEC");
  none_to("alpha", "tender.get", &q.base, GM__STATUS__NOT_FOUND,
          "no tender T-SEC");
  Gm__Procurement__Tender ch = GM__PROCUREMENT__TENDER__INIT;
  char *fields[] = {"title"};
  ch.title = "renamed";
  Gm__Procurement__AmendRequest am = GM__PROCUREMENT__AMEND_REQUEST__INIT;
  am.tender_id = "T-SEC";
  am.note = "a change";
  am.changes = &ch;
  am.fields = fields;
  am.n_fields = 1;
  none_to(other_agency, "tender.amend", &am.base, GM__STATUS__NOT_FOUND,
          "no tender T-SEC");
  Gm__Procurement__Item it = GM__PROCUREMENT__ITEM__INIT, *pit = &it;
  it.id = "X1";
  it.category = "DESK";
  it.quantity = 1;
  it.unit = "unit";
  Gm__Procurement__DemandRequest dm = GM__PROCUREMENT__DEMAND_REQUEST__INIT;
  dm.tender_id = "T-SEC";
  dm.items = &pit;
  dm.n_items = 1;
  none_to(other_agency, "tender.demand", &dm.base, GM__STATUS__NOT_FOUND,
          "no tender T-SEC");
  Gm__Procurement__SecurityRequest sq = GM__PROCUREMENT__SECURITY_REQUEST__INIT;
  sq.tender_id = "T-SEC";
  sq.supplier = "alpha";
  sq.amount = 100;
  sq.reference = "transfer";
  none_to(other_agency, "tender.security", &sq.base, GM__STATUS__NOT_FOUND,
          "no tender T-SEC");
  Gm__Procurement__AwardRequest aw = GM__PROCUREMENT__AWARD_REQUEST__INIT;
  aw.tender_id = "T-SEC";
  none_to(other_agency, "tender.award", &aw.base, GM__STATUS__NOT_FOUND,
          "no tender T-SEC");
  none_to("alpha", "award.get", &aw.base, GM__STATUS__NOT_FOUND,
          "no tender T-SEC");
  Gm__Procurement__BidQuery bq = GM__PROCUREMENT__BID_QUERY__INIT;
  bq.tender_id = "T-SEC";
  none_to("alpha", "bid.get", &bq.base, GM__STATUS__NOT_FOUND,
          "no tender T-SEC");
  Gm__Procurement__BidLine l = GM__PROCUREMENT__BID_LINE__INIT, *pl = &l;
  l.item = "D1";
  l.unit_price = 100;
  l.certificate = "";
  Gm__Procurement__BidRequest b = GM__PROCUREMENT__BID_REQUEST__INIT;
  b.tender_id = "T-SEC";
  b.currency = "CNY";
  b.lines = &pl;
  b.n_lines = 1;
  none_to("alpha", "bid.submit", &b.base, GM__STATUS__NOT_FOUND,
          "no tender T-SEC");
  /* Its id is taken, and that is all that is said. */
  pt_tender d;
  pt_tender_init(&d, "T-SEC", 10000000, DEADLINE);
  pt_item(&d, "D1", "DESK", 10, 0, NULL);
  Gm__Procurement__DraftRequest dr = GM__PROCUREMENT__DRAFT_REQUEST__INIT;
  dr.tender = &d.t;
  none_to(other_agency, "tender.draft", &dr.base, GM__STATUS__ALREADY_EXISTS,
          "tender id T-SEC is taken; choose another id");
}

START_TEST(another_agencys_draft_is_none_to_every_call) {
  pt_register("town", "agency");
  pt_register("county", "agency");
  pt_party("town", PT_USCC_D, GM__PROCUREMENT__SME_CLASS__SME_NONE);
  pt_tender d;
  pt_tender_init(&d, "T-SEC", 10000000, DEADLINE);
  pt_item(&d, "D1", "DESK", 10, 0, NULL);
  d.buyers[0] = "county";
  d.t.buyers = d.buyers;
  d.t.n_buyers = 1;
  Gm__Procurement__DraftRequest dr = GM__PROCUREMENT__DRAFT_REQUEST__INIT;
  dr.tender = &d.t;
  ProtobufCMessage *m = pt_call("city", "tender.draft", &dr.base);
  ck_assert_msg(m, "%s", pt_message);
  protobuf_c_message_free_unpacked(m, NULL);
  nobody_else_sees("town");
  /* Its agency and its joint buyer still see it and are told why. */
  Gm__Procurement__TenderRequest q = GM__PROCUREMENT__TENDER_REQUEST__INIT;
  q.tender_id = "T-SEC";
  m = pt_call("county", "tender.get", &q.base);
  ck_assert_msg(m, "%s", pt_message);
  protobuf_c_message_free_unpacked(m, NULL);
  pt_expect("county", "tender.publish", &q.base, GM__STATUS__PERMISSION_DENIED,
            "only city, the agency that drafted tender T-SEC, may publish");
  /* Cancelled, then archived: still none to the others. */
  q.reason = "plans changed";
  m = pt_call("city", "tender.cancel", &q.base);
  ck_assert_msg(m, "%s", pt_message);
  protobuf_c_message_free_unpacked(m, NULL);
  pt_ledger_wait(
      "SELECT count(*) FROM procurement_tenders WHERE tender_id ="
      " 'T-SEC' AND state = 'cancelled'",
      1);
  pt_clock(T0 + 31 * PT_DAY);
  ck_assert_int_gt(pt_ledger_wait("SELECT archived_ms > 0 FROM"
                                  " procurement_tenders WHERE tender_id ="
                                  " 'T-SEC'",
                                  1),
                   0);
  nobody_else_sees("town");
  /* The agency is still told where its record went. */
  pt_expect("city", "tender.cancel", &q.base, GM__STATUS__FAILED_PRECONDITION,
            "ended cancelled and was archived");
}
END_TEST

/*
 * A draft cancelled was never public: its cancellation (id, title,
 * deadline, reason) goes to its agencies on the private feed, not to every
 * subscriber of the public one, which announced it.  A published tender's
 * cancellation stays public.
 */
START_TEST(a_cancelled_draft_is_not_announced_on_the_public_feed) {
  gm_feed *pub = pt_feed("alpha", "procurement.tender");
  gm_feed *own = pt_feed("city", "@p:city procurement.tender");
  pt_feed_warm(pub, "DESK");
  Gm__Procurement__TenderRequest q = GM__PROCUREMENT__TENDER_REQUEST__INIT;
  int private_draft = 0;
  for (int k = 0; k < 50 && !private_draft; k++) {
    pt_tender d;
    char id[32];
    snprintf(id, sizeof id, "T-DRAFT-%d", k);
    pt_tender_init(&d, id, 10000000, DEADLINE);
    pt_item(&d, "D1", "DESK", 10, 0, NULL);
    Gm__Procurement__DraftRequest dr = GM__PROCUREMENT__DRAFT_REQUEST__INIT;
    dr.tender = &d.t;
    ProtobufCMessage *m = pt_call("city", "tender.draft", &dr.base);
    ck_assert_msg(m, "%s", pt_message);
    protobuf_c_message_free_unpacked(m, NULL);
    q.tender_id = id;
    q.reason = "the secret project moved";
    m = pt_call("city", "tender.cancel", &q.base);
    ck_assert_msg(m, "%s", pt_message);
    protobuf_c_message_free_unpacked(m, NULL);
    if (k == 0) {
      /* Then a published tender cancelled: its event marks the end (one
         broker sends a call's events before those of a later call). */
      pt_tender p;
      pt_tender_init(&p, "T-PUBX", 10000000, DEADLINE);
      pt_item(&p, "D1", "DESK", 10, 0, NULL);
      pt_publish("city", &p);
      q.tender_id = "T-PUBX";
      q.reason = "no longer needed";
      m = pt_call("city", "tender.cancel", &q.base);
      ck_assert_msg(m, "%s", pt_message);
      protobuf_c_message_free_unpacked(m, NULL);
      ck_assert_msg(pt_feed_until(pub, 10000, "no longer needed",
                                  "the secret project moved") == 1,
                    "the cancellation of draft T-DRAFT-0 went to the public "
                    "feed, or T-PUBX's never came");
    }
    /* Its agency is told, on its private feed (the first may be missed
       while the subscription travels: the slow joiner again). */
    private_draft =
        pt_feed_until(own, 200, "the secret project moved", NULL) == 1;
  }
  gm_feed_destroy(&pub);
  gm_feed_destroy(&own);
  ck_assert_msg(private_draft,
                "city was never told of its draft's cancellation");
  /* Nor does the ledger keep an OCDS release of it (none was ever public;
     the release would be written with its cancelled row). */
  ck_assert_int_eq(pt_ledger_wait("SELECT count(*) FROM procurement_tenders"
                                  " WHERE tender_id = 'T-DRAFT-0' AND state ="
                                  " 'cancelled'",
                                  1),
                   1);
  ck_assert_int_eq(pt_ledger_int("SELECT count(*) FROM procurement_releases"
                                 " WHERE tender_id = 'T-DRAFT-0'"),
                   0);
  ck_assert_int_eq(pt_ledger_wait("SELECT count(*) FROM procurement_releases"
                                  " WHERE tender_id = 'T-PUBX' AND tag ="
                                  " 'tenderCancellation'",
                                  1),
                   1);
}
END_TEST

/*
 * The shortest bidding periods (min_open_days, min_rfq_days) are checked
 * when the market loads, as its other numbers are: a value that is no
 * whole number in 0..365 refuses the market, saying what to write, where
 * it was read at each publication with strtol ("abc" gave 0 days, no
 * bidding period at all; "400" silently 20).  A good one is what
 * publishing asks.
 */
static int check_with(gm_test_redis *r, const char *line, char *out,
                      size_t outlen) {
  char extra[128];
  snprintf(extra, sizeof extra, "[market.procurement]\n%s\n", line);
  return gm_test_gmd_check_load(r, GM_BUILD_PLUGIN_DIR, "procurement", extra,
                                out, outlen);
}

START_TEST(a_bidding_period_setting_out_of_range_refuses_the_market) {
  gm_test_redis *r = gm_test_redis_start();
  char out[8192], want[256];
  ck_assert_msg(check_with(r, "min_open_days = 0\nmin_rfq_days = 365", out,
                           sizeof out) == 0,
                "%s", out);
  static const struct {
    const char *key, *value, *unit, *def;
  } bad[] = {{"min_open_days", "abc", "days", "20"},
             {"min_open_days", "366", "days", "20"},
             {"min_open_days", "2o", "days", "20"},
             {"min_rfq_days", "-1", "working days", "3"},
             {"min_rfq_days", "", "working days", "3"}};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    char line[64];
    snprintf(line, sizeof line, "%s = %s", bad[i].key, bad[i].value);
    ck_assert_msg(check_with(r, line, out, sizeof out) == 1, "%s: %s", line,
                  out);
    snprintf(want, sizeof want,
             "[market.procurement] %s = %s is not a whole number of %s in "
             "0..365: write one in that range, or remove the line for the "
             "default (%s %s)",
             bad[i].key, bad[i].value, bad[i].unit, bad[i].def, bad[i].unit);
    ck_assert_msg(strstr(out, want), "%s: want \"%s\" in:\n%s", line, want,
                  out);
  }
  gm_test_redis_stop(&r);
}
END_TEST

START_TEST(a_shorter_bidding_period_set_in_the_config_is_the_one_asked) {
  pt_start("min_open_days = 5", T0);
  pt_register("city", "agency");
  pt_party("city", PT_USCC_GOV, GM__PROCUREMENT__SME_CLASS__SME_NONE);
  pt_category("DESK", GM__PROCUREMENT__POLICY__POLICY_NONE, 0, "", 0);
  pt_tender d;
  pt_tender_init(&d, "T-FOUR", 100000000, T0 + 4 * PT_DAY);
  pt_item(&d, "D1", "DESK", 10, 0, NULL);
  Gm__Procurement__DraftRequest dr = GM__PROCUREMENT__DRAFT_REQUEST__INIT;
  dr.tender = &d.t;
  ProtobufCMessage *v = pt_call("city", "tender.draft", &dr.base);
  ck_assert_msg(v, "%s", pt_message);
  protobuf_c_message_free_unpacked(v, NULL);
  Gm__Procurement__TenderRequest q = GM__PROCUREMENT__TENDER_REQUEST__INIT;
  q.tender_id = "T-FOUR";
  pt_expect("city", "tender.publish", &q.base, GM__STATUS__INVALID_ARGUMENT,
            "5 days");
  pt_tender_init(&d, "T-FIVE", 100000000, T0 + 5 * PT_DAY);
  pt_item(&d, "D1", "DESK", 10, 0, NULL);
  pt_publish("city", &d);
  pt_stop();
}
END_TEST

int main(void) {
  Suite *s = suite_create("procurement tender");
  TCase *tc = tcase_create("tender");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, a_bid_one_millisecond_late_is_refused);
  tcase_add_test(tc,
                 a_cancelled_draft_stays_hidden_and_refunds_skip_the_register);
  tcase_add_test(tc,
                 a_published_tender_refuses_a_redraft_a_demand_and_a_late_bid);
  tcase_add_test(tc,
                 a_squatted_credit_code_is_reclaimed_with_the_centres_approval);
  tcase_add_test(tc, a_request_for_quotations_counts_3_working_days);
  tcase_add_test(tc,
                 a_quotation_change_affecting_responses_leaves_3_working_days);
  tcase_add_test(tc, a_reclaim_is_not_decided_by_a_party_to_it);
  tcase_add_test(tc,
                 a_change_affecting_bids_leaves_15_days_before_the_deadline);
  tcase_add_test(tc, a_mandatory_item_is_won_only_by_a_certified_bid);
  tcase_add_test(tc, a_green_deduction_changes_the_winner);
  tcase_add_test(tc, an_sme_deduction_changes_the_winner);
  tcase_add_test(tc,
                 a_certificate_revoked_after_submission_loses_its_deduction);
  tcase_add_test(tc, amendments_move_the_deadline_and_change_the_items);
  tcase_add_test(tc, amending_items_keeps_the_joint_buyers_items);
  tcase_add_test(tc, the_items_budgets_fit_in_the_tenders_budget);
  tcase_add_test(tc, a_step_on_a_draft_changed_since_its_check_is_refused);
  tcase_add_test(
      tc, a_tender_published_over_its_budget_can_still_move_its_deadline);
  tcase_add_test(
      tc, security_and_budgets_disqualify_and_no_valid_bid_is_unsuccessful);
  tcase_add_test(tc, bad_input_is_refused_whole_with_the_reason);
  tcase_add_test(tc, a_bid_whose_total_is_beyond_any_amount_is_disqualified);
  tcase_add_test(tc,
                 an_amendment_cannot_shorten_the_bidding_period_below_the_law);
  tcase_add_test(tc, a_credit_code_is_registered_to_one_party);
  tcase_add_test(tc, another_agencys_draft_is_none_to_every_call);
  tcase_add_test(tc, a_cancelled_draft_is_not_announced_on_the_public_feed);
  suite_add_tcase(s, tc);
  TCase *settings = tcase_create("settings");
  tcase_set_timeout(settings, 120);
  tcase_add_test(settings,
                 a_bidding_period_setting_out_of_range_refuses_the_market);
  tcase_add_test(settings,
                 a_shorter_bidding_period_set_in_the_config_is_the_one_asked);
  suite_add_tcase(s, settings);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
