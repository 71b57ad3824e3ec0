/*
 * The procurement rules without Redis (rules.c): yuan and percentages as
 * people type them, dates and the working-day calendar, the sealed bid's
 * canonical text (round trip, strictness), the evaluation of one bid
 * (every check and deduction, exact at the largest amounts), the price
 * score and the committee's mean.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <greenmarket/iso4217.h>
#include <jansson.h>

#include "rules.h"

START_TEST(yuan_and_percentages) {
  char buf[32], err[256];
  int64_t fen;
  int bp;
  ck_assert_str_eq(pr_yuan(123456, buf), "1234.56");
  ck_assert_str_eq(pr_yuan(-5, buf), "-0.05");
  ck_assert_str_eq(pr_yuan(PR_MAX_AMOUNT, buf), "10000000000000.00");
  ck_assert_int_eq(pr_parse_yuan("x", "85", PR_MAX_AMOUNT, &fen, err, 256), 0);
  ck_assert_int_eq(fen, 8500);
  ck_assert_int_eq(pr_parse_yuan("x", "85.5", PR_MAX_AMOUNT, &fen, err, 256),
                   0);
  ck_assert_int_eq(fen, 8550);
  ck_assert_int_eq(pr_parse_yuan("x", "0.01", PR_MAX_AMOUNT, &fen, err, 256),
                   0);
  ck_assert_int_eq(fen, 1);
  ck_assert_int_eq(pr_parse_yuan("the budget", "1.234", 100000, &fen, err, 256),
                   -1);
  ck_assert_str_eq(err,
                   "the budget 1.234 has more than two decimals; amounts "
                   "are in yuan to the fen (0.01)");
  ck_assert_int_eq(pr_parse_yuan("x", "-1", 100000, &fen, err, 256), -1);
  ck_assert_int_eq(pr_parse_yuan("x", "1e5", 100000, &fen, err, 256), -1);
  ck_assert_int_eq(pr_parse_yuan("x", "1000.01", 100000, &fen, err, 256), -1);
  ck_assert_msg(strstr(err, "above the largest accepted, 1000.00 yuan"), "%s",
                err);
  ck_assert_int_eq(
      pr_parse_yuan("x", "99999999999999999999999", 100000, &fen, err, 256),
      -1);
  ck_assert_int_eq(pr_parse_percent("r", "10%", 2000, &bp, err, 256), 0);
  ck_assert_int_eq(bp, 1000);
  ck_assert_int_eq(pr_parse_percent("r", "2.25%", 2000, &bp, err, 256), 0);
  ck_assert_int_eq(bp, 225);
  ck_assert_int_eq(pr_parse_percent("r", "350bp", 2000, &bp, err, 256), 0);
  ck_assert_int_eq(bp, 350);
  ck_assert_int_eq(pr_parse_percent("r", "20.01%", 2000, &bp, err, 256), -1);
  ck_assert_msg(strstr(err, "largest accepted, 20.00%"), "%s", err);
  ck_assert_int_eq(pr_parse_percent("r", "10", 2000, &bp, err, 256), -1);
  ck_assert_int_eq(pr_parse_percent("r", "1.234%", 2000, &bp, err, 256), -1);
  ck_assert_str_eq(pr_percent(1250, buf), "12.50%");
  /* Shares are exact even where amount x bp passes 2^63. */
  ck_assert_int_eq(pr_share(PR_MAX_AMOUNT, 2000), PR_MAX_AMOUNT / 5);
  ck_assert_int_eq(pr_share(999999, 1), 99);
}
END_TEST

START_TEST(dates_and_the_working_day_calendar) {
  int64_t day;
  char buf[32];
  ck_assert_int_eq(pr_parse_date("2026-03-02", &day), 0);
  ck_assert_int_eq(pr_weekday(day), 1); /* a Monday */
  ck_assert_str_eq(pr_date(day, buf), "2026-03-02");
  ck_assert_int_eq(pr_parse_date("2026-02-29", &day), -1);
  ck_assert_int_eq(pr_parse_date("2028-02-29", &day), 0);
  ck_assert_int_eq(pr_parse_date("2026-3-02", &day), -1);
  ck_assert_int_eq(pr_parse_date("2026-03-02x", &day), -1);
  pr_parse_date("2026-03-02", &day);
  int64_t start = pr_day_start(day);
  ck_assert_int_eq(start, INT64_C(1772380800000)); /* 00:00 +08:00 */
  ck_assert_int_eq(pr_day_of(start), day);
  ck_assert_int_eq(pr_day_of(start - 1), day - 1);
  ck_assert_str_eq(pr_rfc3339(start + 3723000, buf),
                   "2026-03-02T01:02:03+08:00");
  /* Out of RFC 3339's range (a corrupted record: fuzz/settle's
     crash-7baf6b9c): clamped, never an overflow. */
  ck_assert_str_eq(pr_rfc3339(INT64_MAX, buf), "9999-12-31T23:59:59+08:00");
  ck_assert_str_eq(pr_rfc3339(INT64_MIN, buf), "1970-01-01T08:00:00+08:00");
  ck_assert_str_eq(pr_datetime(start + 3723000, buf), "2026-03-02 01:02");
  /* A corrupted record's time in a message (CI's fuzz smoke run of
     2026-12-04 found INT64_MAX overflowing pr_day_of): clamped to the
     dates a four-digit year can write. */
  ck_assert_str_eq(pr_datetime(INT64_MAX, buf), "9999-12-31 23:59");
  ck_assert_str_eq(pr_datetime(INT64_MIN, buf), "0000-01-01 00:00");
  ck_assert_str_eq(pr_date(pr_day_of(INT64_MAX), buf), "9999-12-31");
  ck_assert_str_eq(pr_date(INT64_MIN, buf), "0000-01-01");
  ck_assert_int_eq(pr_day_of(pr_day_start(INT64_MAX) - 1),
                   pr_day_of(INT64_MAX));
  /* 7 working days after Monday 2 March: Wednesday 11 March. */
  int64_t end = pr_working_days_end(day, 7, 60, NULL, NULL);
  ck_assert_str_eq(pr_datetime(end, buf), "2026-03-11 23:59");
  ck_assert_int_eq(end, pr_day_start(day + 10) - 1);
  ck_assert_int_eq(pr_days_end(day, 30), pr_day_start(day + 31) - 1);
}
END_TEST

/* Calendars of the test: Wednesday 4 March a holiday, and with it
   Saturday 7 March worked. */
static char holiday(void *arg, int64_t day) {
  return day == *(int64_t *)arg + 2 ? 'h' : 0;
}

static char kinds(void *arg, int64_t day) {
  if (day == *(int64_t *)arg + 5) return 'w';
  return holiday(arg, day);
}

START_TEST(the_calendar_moves_the_challenge_period) {
  int64_t day;
  char buf[32];
  pr_parse_date("2026-03-02", &day);
  ck_assert(!pr_is_working(day + 2, kinds, &day));
  ck_assert(pr_is_working(day + 5, kinds, &day));
  ck_assert(!pr_is_working(day + 6, kinds, &day));
  /* 3, 5, 6, 9, 10, 11, 12 */
  int64_t end = pr_working_days_end(day, 7, 60, holiday, &day);
  ck_assert_str_eq(pr_datetime(end, buf), "2026-03-12 23:59");
  /* 3, 5, 6, 7 (worked), 9, 10, 11 */
  end = pr_working_days_end(day, 7, 60, kinds, &day);
  ck_assert_str_eq(pr_datetime(end, buf), "2026-03-11 23:59");
  /* Too short a horizon: not found. */
  ck_assert_int_eq(pr_working_days_end(day, 7, 5, kinds, &day), -1);
}
END_TEST

static pr_bid *bid_of(const char *supplier, int sme) {
  static pr_bid b;
  memset(&b, 0, sizeof b);
  snprintf(b.tender, sizeof b.tender, "T-1");
  snprintf(b.supplier, sizeof b.supplier, "%s", supplier);
  memset(b.salt, 'a', PR_SALT_HEX);
  snprintf(b.currency, sizeof b.currency, "CNY");
  b.sme = sme;
  return &b;
}

static void line(pr_bid *b, const char *item, int64_t price, const char *cert) {
  pr_line *l = &b->lines[b->nlines++];
  snprintf(l->item, sizeof l->item, "%s", item);
  l->unit_price = price;
  snprintf(l->cert, sizeof l->cert, "%s", cert);
}

START_TEST(the_canonical_text_round_trips_and_is_strict) {
  pr_bid *b = bid_of("alpha", 2), back;
  char text[4096], err[256];
  line(b, "Z9", 5, "");
  line(b, "A1", 123456, "GB-1/2026");
  long n = pr_bid_text(b, text, sizeof text);
  ck_assert_int_gt(n, 0);
  ck_assert_str_eq(text,
                   "greenmarket-procurement-bid/1\ntender=T-1\n"
                   "supplier=alpha\nsalt=aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n"
                   "currency=CNY\nsme=small\nline=A1,123456,GB-1/2026\n"
                   "line=Z9,5,\n");
  ck_assert_int_eq(pr_bid_parse(text, (size_t)n, &back, err, sizeof err), 0);
  ck_assert_int_eq(back.nlines, 2);
  ck_assert_str_eq(back.lines[0].item, "A1");
  ck_assert_int_eq(back.lines[0].unit_price, 123456);
  ck_assert_str_eq(back.lines[0].cert, "GB-1/2026");
  ck_assert_int_eq(back.sme, 2);
  /* Anything but exactly the canonical form is refused. */
  static const char *const bad[] = {
      "greenmarket-procurement-bid/2\n",
      "greenmarket-procurement-bid/1\ntender=T-1\nsupplier=alpha\nsalt=aa\n"
      "currency=CNY\nsme=small\n",
      "greenmarket-procurement-bid/1\ntender=T-1\nsupplier=alpha\n"
      "salt=aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\ncurrency=CNY\nsme=huge\n",
      "greenmarket-procurement-bid/1\ntender=T-1\nsupplier=alpha\n"
      "salt=aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\ncurrency=CNY\nsme=none\n"
      "line=B,1,\nline=A,1,\n",
      "greenmarket-procurement-bid/1\ntender=T-1\nsupplier=alpha\n"
      "salt=aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\ncurrency=CNY\nsme=none\n"
      "line=A,01,\n",
      "greenmarket-procurement-bid/1\ntender=T-1\nsupplier=alpha\n"
      "salt=aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\ncurrency=CNY\nsme=none\n"
      "line=A,1,\nextra",
      "greenmarket-procurement-bid/1\ntender=T-1\nsupplier=al pha\n"
      "salt=aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\ncurrency=CNY\nsme=none\n",
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    ck_assert_msg(
        pr_bid_parse(bad[i], strlen(bad[i]), &back, err, sizeof err) == -1,
        "case %zu parsed", i);
  ck_assert_int_eq(pr_bid_text(b, text, 40), -1);
}
END_TEST

/* Certificates of the evaluation tests. */
static pr_cert_state good = {
    1, "914403001922038216", "INSUL", "gb_insulation", 2, 0, INT64_MAX, 1, 0};
static pr_cert_state revoked = {
    1, "914403001922038216", "INSUL", "gb_insulation", 2, 0, INT64_MAX, 3, 0};
static pr_cert_state low = {
    1, "914403001922038216", "INSUL", "gb_insulation", 1, 0, INT64_MAX, 1, 0};

static const pr_cert_state *certs(void *arg, const char *no) {
  (void)arg;
  if (!strcmp(no, "GOOD")) return &good;
  if (!strcmp(no, "REV")) return &revoked;
  if (!strcmp(no, "LOW")) return &low;
  return NULL;
}

static pr_item_rule items[] = {
    {"I1", "INSUL", 100, 0, 1, 500, "gb_insulation", 2},
    {"W1", "WIN", 10, 0, 2, 0, "gb_doors_windows", 0},
};

/* A damaged tender record (found in a review of what the fuzzers rarely
   reach): an item of quantity 0 divided the price check by zero, and a
   deduction of 1,200,000% overflowed the sum of deductions.  The item is
   disqualified, the deduction clamped to the most the rules allow (20%). */
START_TEST(a_damaged_rule_is_evaluated_without_overflow) {
  pr_item_rule its[] = {
      {"A", "INSUL", 1, 0, 1, 120000000, "gb_insulation", 0},
      {"B", "INSUL", 1, 0, 1, 120000000, "gb_insulation", 0},
  };
  pr_tender_rule t = {"CNY", 0, 0, 1, 1, 1000, 0, 2, its};
  char checks[4096], reasons[512];
  pr_eval e;
  pr_bid *b = bid_of("alpha", 0);
  line(b, "A", INT64_C(500000000000000), "GOOD");
  line(b, "B", INT64_C(500000000000000), "GOOD");
  ck_assert_int_eq(
      pr_evaluate(&t, b, "914403001922038216", 0, 1000, 0, certs, NULL, &e,
                  checks, sizeof checks, reasons, sizeof reasons),
      0);
  ck_assert_int_eq(e.bid_price, INT64_C(1000000000000000));
  ck_assert_int_eq(e.green, e.bid_price / 5); /* 20% of each item */
  ck_assert_int_eq(e.evaluated, e.bid_price - e.green);
  ck_assert_int_eq(e.no_price, 0);
  its[0].quantity = 0;
  ck_assert_int_eq(
      pr_evaluate(&t, b, "914403001922038216", 0, 1000, 0, certs, NULL, &e,
                  checks, sizeof checks, reasons, sizeof reasons),
      0);
  ck_assert(!e.valid);
  ck_assert_msg(strstr(checks,
                       "item A: the tender's quantity 0 is not "
                       "1-1000000000: disqualified"),
                "%s", checks);
  ck_assert_int_eq(e.bid_price, 0);
  ck_assert_int_eq(e.no_price, 1); /* 0 is not its price */
}
END_TEST

START_TEST(one_bid_is_evaluated_check_by_check) {
  pr_tender_rule t = {"CNY", 10000000, 0, 1, 1, 1000, 1000, 1, items};
  char checks[4096], reasons[512];
  pr_eval e;
  pr_bid *b = bid_of("alpha", 2);
  line(b, "I1", 10000, "GOOD");
  ck_assert_int_eq(
      pr_evaluate(&t, b, "914403001922038216", 2, 1000, 0, certs, NULL, &e,
                  checks, sizeof checks, reasons, sizeof reasons),
      0);
  ck_assert(e.valid);
  ck_assert_int_eq(e.bid_price, 1000000);
  ck_assert_int_eq(e.green, 50000);
  ck_assert_int_eq(e.sme, 100000);
  ck_assert_int_eq(e.evaluated, 850000);
  ck_assert_msg(strstr(checks,
                       "evaluated price 10000.00 - 500.00 - 1000.00 = "
                       "8500.00 yuan"),
                "%s", checks);
  /* Revoked, below the grade, someone else's, or none: no deduction. */
  strcpy(b->lines[0].cert, "REV");
  pr_evaluate(&t, b, "914403001922038216", 2, 1000, 0, certs, NULL, &e, checks,
              sizeof checks, reasons, sizeof reasons);
  ck_assert_int_eq(e.green, 0);
  ck_assert_msg(strstr(checks, "certificate REV revoked"), "%s", checks);
  strcpy(b->lines[0].cert, "LOW");
  pr_evaluate(&t, b, "914403001922038216", 2, 1000, 0, certs, NULL, &e, checks,
              sizeof checks, reasons, sizeof reasons);
  ck_assert_int_eq(e.green, 0);
  ck_assert_msg(strstr(checks, "1 star(s), below the 2"), "%s", checks);
  strcpy(b->lines[0].cert, "GOOD");
  pr_evaluate(&t, b, "9144030071526726XG", 2, 1000, 0, certs, NULL, &e, checks,
              sizeof checks, reasons, sizeof reasons);
  ck_assert_int_eq(e.green, 0);
  ck_assert_msg(strstr(checks, "held by another supplier"), "%s", checks);
  /* Expired at the evaluation time. */
  good.to_ms = 5;
  pr_evaluate(&t, b, "914403001922038216", 2, 1000, 6, certs, NULL, &e, checks,
              sizeof checks, reasons, sizeof reasons);
  good.to_ms = INT64_MAX;
  ck_assert_int_eq(e.green, 0);
  ck_assert_msg(strstr(checks, "expired on"), "%s", checks);
  /* Works: no SME deduction. */
  t.kind = 2;
  pr_evaluate(&t, b, "914403001922038216", 2, 1000, 0, certs, NULL, &e, checks,
              sizeof checks, reasons, sizeof reasons);
  ck_assert_int_eq(e.sme, 0);
  ck_assert_msg(strstr(checks, "no deduction for works"), "%s", checks);
}
END_TEST

START_TEST(disqualifications_name_every_reason) {
  pr_tender_rule t = {"CNY", 100, 0, 1, 1, 0, 1000, 2, items};
  char checks[4096], reasons[512];
  pr_eval e;
  pr_bid *b = bid_of("alpha", 0);
  snprintf(b->currency, sizeof b->currency, "USD");
  line(b, "I1", 1, "");
  line(b, "X9", 1, "");
  pr_evaluate(&t, b, "914403001922038216", 0, 999, 0, certs, NULL, &e, checks,
              sizeof checks, reasons, sizeof reasons);
  ck_assert(!e.valid);
  ck_assert_str_eq(reasons,
                   "bid in USD, the tender is in CNY; item X9 is not in the "
                   "tender; missing item W1; bid security not lodged");
  /* Mandatory without a certificate; over the budget; not registered. */
  b = bid_of("alpha", 0);
  line(b, "I1", 1, "");
  line(b, "W1", 100, "");
  pr_evaluate(&t, b, "", -1, 1000, 0, certs, NULL, &e, checks, sizeof checks,
              reasons, sizeof reasons);
  ck_assert_str_eq(reasons,
                   "not in the party register; item W1 is mandatory and has "
                   "no valid certificate; over the budget");
  /* Disqualified but priced: the flag says its bid_price is its price. */
  ck_assert_int_eq(e.no_price, 0);
  /* A price beyond any amount is refused, not wrapped, and the bid is
     flagged as having no price (the OCDS export reads the flag). */
  b = bid_of("alpha", 0);
  line(b, "I1", PR_MAX_AMOUNT, "");
  line(b, "W1", 1, "");
  t.budget = PR_MAX_AMOUNT;
  pr_evaluate(&t, b, "914403001922038216", 0, 1000, 0, certs, NULL, &e, checks,
              sizeof checks, reasons, sizeof reasons);
  ck_assert(!e.valid);
  ck_assert_msg(strstr(reasons, "item I1 is priced beyond any amount"), "%s",
                reasons);
  ck_assert_int_eq(e.no_price, 1);
  ck_assert(e.bid_price == 0);
  /* A sheet too small for its checks says so. */
  ck_assert_int_eq(pr_evaluate(&t, b, "x", 0, 1000, 0, certs, NULL, &e, checks,
                               16, reasons, sizeof reasons),
                   -1);
}
END_TEST

/* A challenge's answer is overdue once its period passed unanswered,
   whether answered late since or not; never for one with no period
   recorded (settled before the period was). */
START_TEST(a_challenge_answer_is_overdue_after_its_period) {
  int64_t due = 1000;
  ck_assert(!pr_answer_overdue(due, 0, due));
  ck_assert(pr_answer_overdue(due, 0, due + 1));
  ck_assert(!pr_answer_overdue(due, due, due + 5000));
  ck_assert(pr_answer_overdue(due, due + 1, due + 5000));
  ck_assert(!pr_answer_overdue(0, 0, INT64_MAX));
}
END_TEST

START_TEST(price_scores_and_the_committee_mean) {
  ck_assert_int_eq(pr_price_score(1000000, 1000000, 3000), 3000);
  ck_assert_int_eq(pr_price_score(1000000, 1200000, 3000), 2500);
  ck_assert_int_eq(pr_price_score(1000000, 1300000, 3000), 2307);
  /* Exact at the largest amounts (the product passes 2^63). */
  ck_assert_int_eq(pr_price_score(PR_MAX_AMOUNT - 1, PR_MAX_AMOUNT, 10000),
                   9999);
  int32_t s[] = {5000, 5201};
  ck_assert_int_eq(pr_mean_score(s, 2), 5101); /* 5100.5 rounds up */
  int32_t t[] = {1, 2, 2};
  ck_assert_int_eq(pr_mean_score(t, 3), 2); /* 1.67 */
  ck_assert_int_eq(pr_mean_score(t, 0), 0);
}
END_TEST

START_TEST(catalogue_fields_and_shards) {
  char err[256];
  ck_assert(pr_label_known("gb_chiller") && pr_label_graded("gb_chiller"));
  ck_assert(pr_label_known("energy_saving") &&
            !pr_label_graded("energy_saving"));
  ck_assert(!pr_label_known("gb_"));
  for (int i = 0; i < 1000; i++) {
    char no[32];
    snprintf(no, sizeof no, "GB-%d", i);
    int s = pr_cert_shard(no);
    ck_assert(s >= 0 && s < PR_CERT_SHARDS);
  }
  ck_assert_int_eq(pr_cert_shard("GB-I-001"), pr_cert_shard("GB-I-001"));
  ck_assert_int_eq(pr_check_category("GB-INSUL", "Insulation", 1, 500,
                                     "gb_insulation", 2, err, sizeof err),
                   0);
  ck_assert_int_eq(pr_check_category("GB-INSUL", "Insulation", 1, 2001,
                                     "gb_insulation", 2, err, sizeof err),
                   -1);
  ck_assert_int_eq(pr_check_category("X", "x", 2, 0, "", 0, err, sizeof err),
                   -1);
  ck_assert_msg(strstr(err, "names the label types"), "%s", err);
  /* A code echoed in the refusal: an escape sequence shows as '?', and a
     long one is cut at a character, never inside one (the broker would
     show the broken bytes as U+FFFD), with its length said. */
  ck_assert_int_eq(
      pr_check_category("A\x1b[2JB", "x", 0, 0, "", 0, err, sizeof err), -1);
  ck_assert_msg(strstr(err, "code \"A?[2JB\" is not"), "%s", err);
  char longcode[64];
  memset(longcode, 'A', 31);
  strcpy(longcode + 31, "\xe4\xb8\xad");
  ck_assert_int_eq(
      pr_check_category(longcode, "x", 0, 0, "", 0, err, sizeof err), -1);
  ck_assert_msg(strstr(err, "AAA... (34 bytes)\" is not"), "%s", err);
  /* A minimum grade no certificate of its labels can carry. */
  ck_assert_int_eq(pr_check_category("C-BADG", "Bad grade", 1, 200,
                                     "energy_saving", 2, err, sizeof err),
                   -1);
  ck_assert_msg(strstr(err,
                       "minimum grade 2: none of the labels "
                       "energy_saving carries a grade"),
                "%s", err);
  ck_assert_int_eq(
      pr_check_category("C-MIX", "Mixed", 1, 200, "energy_saving,gb_insulation",
                        2, err, sizeof err),
      0);
  ck_assert_int_eq(
      pr_check_certificate("N-1", "914403001922038216", "A", "P", "M", "INSUL",
                           "energy_saving", 1, "I", 1, 2, err, sizeof err),
      -1);
  ck_assert_msg(strstr(err, "has no grade"), "%s", err);
  ck_assert_int_eq(pr_valid_text("title", "a\tb", 10, 0, err, sizeof err), -1);
  ck_assert_int_eq(
      pr_valid_text("title", "\xc3\xa9t\xc3\xa9", 10, 0, err, sizeof err), 0);
  ck_assert_int_eq(
      pr_valid_text("title", "\xed\xa0\x80", 10, 0, err, sizeof err),
      -1); /* a surrogate */
  ck_assert_int_eq(pr_valid_text("title", "\xc0\xaf", 10, 0, err, sizeof err),
                   -1); /* overlong */
  /* The markets' text rule (greenmarket/text.h): a bidi override would let
     one supplier's or tender's name pass for another's; C1 controls and
     spaces only are refused too, each with where and why. */
  ck_assert_int_eq(pr_valid_text("title",
                                 "ACME \xe2\x80\xae"
                                 "gnal",
                                 40, 1, err, sizeof err),
                   -1);
  ck_assert_msg(strstr(err,
                       "title contains the bidi control character U+202E "
                       "at byte 6"),
                "%s", err);
  ck_assert_int_eq(pr_valid_text("title", "a\xc2\x85", 10, 1, err, sizeof err),
                   -1);
  ck_assert_msg(strstr(err, "U+0085"), "%s", err);
  ck_assert_int_eq(pr_valid_text("title", "   ", 10, 0, err, sizeof err), -1);
  ck_assert_msg(strstr(err, "title is only spaces"), "%s", err);
  ck_assert_int_eq(
      pr_valid_text("grounds", "line one\nline\ttwo", 40, 1, err, sizeof err),
      0);
}
END_TEST

/*
 * A currency is an active ISO 4217 code that the shipped OCDS 1.1 schema's
 * currency enum lists too, so every accepted tender exports valid OCDS:
 * checked code by code against ocds/release-schema.json; and one with two
 * decimals, as every amount of the market is hundredths of its unit.
 */
START_TEST(currencies_are_active_iso_4217_codes_ocds_knows) {
  char err[256];
  ck_assert_int_eq(pr_check_currency("CNY", err, sizeof err), 0);
  ck_assert_int_eq(pr_check_currency("XYZ", err, sizeof err), -1);
  ck_assert_msg(strstr(err, "\"XYZ\" is not an ISO 4217 currency in use"), "%s",
                err);
  ck_assert_int_eq(pr_check_currency("DEM", err, sizeof err), -1);
  ck_assert_int_eq(pr_check_currency("cny", err, sizeof err), -1);
  /* Bids and amendments of a tender drafted before the list keep to its
     own currency's shape only. */
  ck_assert(pr_currency_shaped("RMB"));
  ck_assert(!pr_currency_shaped("rmb"));
  ck_assert(!pr_currency_shaped("CNYY"));
  ck_assert(!pr_currency_shaped(""));
  ck_assert_int_eq(pr_check_currency("SLE", err, sizeof err), -1);
  ck_assert_msg(strstr(err, "not in the OCDS 1.1 currency codelist"), "%s",
                err);
  /* Amounts are hundredths of the unit: a currency with no minor unit
     (half a yen) or three (fils) is refused, saying why. */
  ck_assert_int_eq(pr_check_currency("JPY", err, sizeof err), -1);
  ck_assert_msg(strstr(err, "currency JPY has 0 decimal places (ISO 4217)"),
                "%s", err);
  ck_assert_int_eq(pr_check_currency("KWD", err, sizeof err), -1);
  ck_assert_msg(strstr(err, "KWD has 3 decimal places"), "%s", err);
  ck_assert_int_eq(pr_check_currency("USD", err, sizeof err), 0);
  json_error_t je;
  json_t *schema = json_load_file(
      GM_SOURCE_DIR "/plugins/procurement/ocds/release-schema.json", 0, &je);
  ck_assert_msg(schema, "%s", je.text);
  json_t *cur = json_object_get(
      json_object_get(
          json_object_get(
              json_object_get(json_object_get(schema, "definitions"), "Value"),
              "properties"),
          "currency"),
      "enum");
  ck_assert(json_is_array(cur));
  for (size_t i = 0; i < sizeof gm_iso4217_codes / sizeof *gm_iso4217_codes;
       i++) {
    int in_ocds = 0;
    size_t k;
    json_t *v;
    json_array_foreach(cur, k, v) if (json_is_string(v) &&
                                      !strcmp(json_string_value(v),
                                              gm_iso4217_codes[i])) in_ocds = 1;
    ck_assert_msg(pr_check_currency(gm_iso4217_codes[i], err, sizeof err) ==
                      (in_ocds && gm_iso4217_money(gm_iso4217_codes[i]) &&
                               gm_iso4217_minor(gm_iso4217_codes[i]) == 2
                           ? 0
                           : -1),
                  "%s: in the OCDS enum %d, %s", gm_iso4217_codes[i], in_ocds,
                  err);
  }
  json_decref(schema);
}
END_TEST

int main(void) {
  Suite *s = suite_create("procurement rules");
  TCase *tc = tcase_create("rules");
  tcase_add_test(tc, yuan_and_percentages);
  tcase_add_test(tc, a_damaged_rule_is_evaluated_without_overflow);
  tcase_add_test(tc, a_challenge_answer_is_overdue_after_its_period);
  tcase_add_test(tc, dates_and_the_working_day_calendar);
  tcase_add_test(tc, the_calendar_moves_the_challenge_period);
  tcase_add_test(tc, the_canonical_text_round_trips_and_is_strict);
  tcase_add_test(tc, one_bid_is_evaluated_check_by_check);
  tcase_add_test(tc, disqualifications_name_every_reason);
  tcase_add_test(tc, price_scores_and_the_committee_mean);
  tcase_add_test(tc, catalogue_fields_and_shards);
  tcase_add_test(tc, currencies_are_active_iso_4217_codes_ocds_knows);
  suite_add_tcase(s, tc);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
