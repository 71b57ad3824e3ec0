/*
 * The money: the referral fee settled with each funded loan at the
 * rounding edges (half a fen, the largest amount, 0 bp, 100%), a bank's
 * monthly CSV statement checked line by line and in total against the
 * ledger, the centre's report for a period, and a bank's report
 * (conversion, time to decision).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

#define MAX GM_FINANCE_MAX_AMOUNT

static const struct {
  int64_t amount;
  int bp;
  int64_t fee; /* what the rule (half up to the fen) gives */
} edge[] = {
    {100, 50, 1},                       /* 0.5 fen: up */
    {9999, 1, 1},                       /* 0.9999 fen: up */
    {49, 100, 0},                       /* 0.49 fen: down */
    {300, 50, 2},                       /* 1.5 fen: up */
    {2999, 5, 1},                       /* 1.4995 fen: down */
    {1000100, 50, 5001},                /* 5000.5 fen: up */
    {123456789, 0, 0},                  /* 0 bp */
    {MAX, 500, MAX / 20},               /* the largest amount, the cap (5%) */
    {MAX, 499, INT64_C(4990000000000)}, /* the largest amount, 4.99% */
    {450000000, 80, 3600000},           /* 0.8% of 4,500,000.00 yuan */
};
#define NEDGE (sizeof edge / sizeof edge[0])

static void setup(void) {
  ft_start(NULL, ft_at(FT_MONDAY, 10, 0));
  ft_bank("icbc", "icbc1");
  ft_bank("abc", "abc1");
  for (size_t i = 0; i < NEDGE; i++) {
    char p[16];
    snprintf(p, sizeof p, "fee%d", edge[i].bp);
    ft_product(p, "icbc", "3", "", 1, MAX, 1, 120, edge[i].bp);
  }
  ft_product("abc-p", "abc", "3", "", 1, MAX, 1, 120, 100);
  ft_enterprise("acme", "330502");
  /* The reports name the banks from the ledger's rows, written by the
     directory's own outbox stream: a referral's rows settling says
     nothing about them. */
  ck_assert_int_eq(ft_ledger_wait("SELECT count(*) FROM finance_banks", 2), 2);
}

static void teardown(void) {
  ft_stop();
}

/* A referral funded by `user` with product `product` on `date`; returns
   its id (static) and checks the fee in the reply. */
static const char *funded(const char *user, const char *bank,
                          const char *product, int64_t amount, int64_t fee,
                          const char *date) {
  static char id[32];
  Gm__Finance__Referral *r = ft_refer("acme", amount, 36, 0);
  snprintf(id, sizeof id, "%s", r->id);
  ft_free(r);
  Gm__Finance__ClaimRequest c = GM__FINANCE__CLAIM_REQUEST__INIT;
  c.id = id;
  c.product = (char *)product;
  ft_free(ft_ok(user, "referral.claim", &c.base));
  ft_free(ft_pick("acme", id, bank));
  ft_free(ft_contact(user, id));
  ft_free(ft_approve(user, id, amount, 345, 36));
  r = ft_fund(user, id, amount, date);
  ck_assert_msg(r->fee == fee, "%s: fee %lld, expected %lld", id,
                (long long)r->fee, (long long)fee);
  ft_free(r);
  return id;
}

/* "1234.56" -> 123456 fen, exactly. */
static int64_t fen(const char *yuan) {
  int64_t v;
  char err[128];
  ck_assert_msg(gm__finance_parse_decimal("csv", "yuan", yuan, 2, MAX, &v, err,
                                          sizeof err) == 0,
                "%s: %s", yuan, err);
  return v;
}

START_TEST(fees_round_half_up_and_settle_with_the_loan) {
  char ids[NEDGE][32];
  for (size_t i = 0; i < NEDGE; i++) {
    char p[16];
    snprintf(p, sizeof p, "fee%d", edge[i].bp);
    snprintf(ids[i], 32, "%s",
             funded("icbc1", "icbc", p, edge[i].amount, edge[i].fee, NULL));
  }
  ck_assert_int_eq(ft_ledger_wait("SELECT count(*) FROM finance_loans", NEDGE),
                   NEDGE);
  for (size_t i = 0; i < NEDGE; i++) {
    char sql[512];
    snprintf(sql, sizeof sql,
             "SELECT fee FROM finance_loans WHERE referral = '%s' AND"
             " fee_bp = %d AND amount = %lld",
             ids[i], edge[i].bp, (long long)edge[i].amount);
    ck_assert_msg(ft_ledger_int(sql) == edge[i].fee, "%s -> %lld", sql,
                  (long long)ft_ledger_int(sql));
  }
}
END_TEST

START_TEST(the_monthly_statement_matches_the_ledger) {
  /* March: three icbc loans and one of abc; April: one icbc loan. */
  char march[3][32];
  snprintf(march[0], 32, "%s",
           funded("icbc1", "icbc", "fee80", 450000000, 3600000, NULL));
  snprintf(march[1], 32, "%s",
           funded("icbc1", "icbc", "fee50", 1000100, 5001, "2026-03-02"));
  snprintf(march[2], 32, "%s", funded("icbc1", "icbc", "fee100", 49, 0, NULL));
  funded("abc1", "abc", "abc-p", 100000000, 1000000, NULL);
  ft_clock(ft_at("2026-04-01", 9, 0));
  funded("icbc1", "icbc", "fee80", 200000000, 1600000, NULL);
  ck_assert_int_eq(ft_ledger_wait("SELECT count(*) FROM finance_loans", 5), 5);

  Gm__Finance__StatementRequest sr = GM__FINANCE__STATEMENT_REQUEST__INIT;
  sr.month = "2026-03";
  Gm__Finance__Statement *st =
      (Gm__Finance__Statement *)ft_ok("icbc1", "report.statement", &sr.base);
  ck_assert_str_eq(st->bank, "icbc");
  ck_assert_int_eq(st->rows, 3);
  /* Line by line: each row is a loan of the ledger, to the fen. */
  char *csv = strdup(st->csv), *save = NULL;
  int lines = 0, rows = 0;
  int64_t sum_amount = 0, sum_fee = 0;
  for (char *line = strtok_r(csv, "\n", &save); line;
       line = strtok_r(NULL, "\n", &save), lines++) {
    char *f[10], *s2 = NULL;
    int n = 0;
    for (char *t = strtok_r(line, ",", &s2); t && n < 10;
         t = strtok_r(NULL, ",", &s2))
      f[n++] = t;
    if (lines == 0) {
      ck_assert_str_eq(f[0], "referral");
      continue;
    }
    if (!strcmp(f[0], "total")) continue; /* checked whole below */
    ck_assert_int_eq(n, 10);
    char sql[512];
    snprintf(sql, sizeof sql,
             "SELECT amount FROM finance_loans WHERE referral = '%s' AND"
             " bank = 'icbc' AND funded_date = '%s' AND fee_bp = %s",
             f[0], f[1], f[8]);
    ck_assert_int_eq(ft_ledger_int(sql), fen(f[5]));
    snprintf(sql, sizeof sql,
             "SELECT fee FROM finance_loans WHERE referral = '%s'", f[0]);
    ck_assert_int_eq(ft_ledger_int(sql), fen(f[9]));
    sum_amount += fen(f[5]);
    sum_fee += fen(f[9]);
    rows++;
  }
  free(csv);
  ck_assert_int_eq(rows, 3);
  /* In total: the ledger's sums for the bank and the month. */
  int64_t ledger_amount = ft_ledger_int(
      "SELECT sum(amount) FROM finance_loans WHERE bank = 'icbc' AND"
      " funded_date LIKE '2026-03-%'");
  int64_t ledger_fee = ft_ledger_int(
      "SELECT sum(fee) FROM finance_loans WHERE bank = 'icbc' AND"
      " funded_date LIKE '2026-03-%'");
  ck_assert_int_eq(sum_amount, ledger_amount);
  ck_assert_int_eq(sum_fee, ledger_fee);
  ck_assert_str_eq(st->currency, "CNY");
  ck_assert_int_eq(st->funded_amount, ledger_amount);
  ck_assert_int_eq(st->fees, ledger_fee);
  /* The total line says the same. */
  char total[128];
  char a[40], b[40];
  snprintf(total, sizeof total, "total,,,,CNY,%s,,,,%s\n",
           gm__finance_format_money(ledger_amount, "CNY", a),
           gm__finance_format_money(ledger_fee, "CNY", b));
  ck_assert_msg(strstr(st->csv, total), "%s lacks %s", st->csv, total);
  ft_free(st);

  /* Another bank's statement: the centre may, a bank user may not. */
  sr.bank = "abc";
  ft_expect("icbc1", "report.statement", &sr.base,
            GM__STATUS__PERMISSION_DENIED,
            "your bank is icbc; only the centre reads another bank's");
  st = (Gm__Finance__Statement *)ft_ok(FT_CENTRE, "report.statement", &sr.base);
  ck_assert_int_eq(st->rows, 1);
  ck_assert_int_eq(st->fees, 1000000);
  ft_free(st);
  sr.month = "2026-13";
  ft_expect(FT_CENTRE, "report.statement", &sr.base,
            GM__STATUS__INVALID_ARGUMENT,
            "month \"2026-13\" does not exist: a month is 01 to 12");
}
END_TEST

START_TEST(the_centre_report_and_a_bank_report) {
  funded("icbc1", "icbc", "fee80", 450000000, 3600000, NULL);
  funded("abc1", "abc", "abc-p", 100000000, 1000000, NULL);
  /* A referral icbc claims, holds 2 hours, then declines. */
  Gm__Finance__Referral *r = ft_refer("acme", 300000000, 24, 0);
  char id[32];
  snprintf(id, sizeof id, "%s", r->id);
  ft_free(r);
  ft_free(ft_claim("icbc1", id));
  ft_free(ft_pick("acme", id, "icbc"));
  ft_clock(ft_at(FT_MONDAY, 12, 0));
  ft_free(ft_contact("icbc1", id));
  Gm__Finance__DeclineRequest d = GM__FINANCE__DECLINE_REQUEST__INIT;
  d.id = id;
  d.reason = GM__FINANCE__DECLINE_REASON__DECLINE_POLICY;
  d.text = "over our sector limit";
  ft_free(ft_ok("icbc1", "referral.decline", &d.base));
  /* And one referral nobody claims. */
  ft_free(ft_refer("acme", 100000, 12, 0));
  ck_assert_int_eq(ft_ledger_wait("SELECT count(*) FROM finance_transitions"
                                  " WHERE transition = 'decline'",
                                  1),
                   1);
  ck_assert_int_eq(ft_ledger_wait("SELECT count(*) FROM finance_referrals", 4),
                   4);
  /* Each referral settles on its own stream, in order: its first row says
     nothing of its later ones (the claims, the loans). */
  ck_assert_int_eq(ft_ledger_wait("SELECT count(*) FROM finance_loans", 2), 2);
  ck_assert_int_eq(ft_ledger_wait("SELECT count(*) FROM finance_claims", 3), 3);

  Gm__Finance__ReportRequest rq = GM__FINANCE__REPORT_REQUEST__INIT;
  rq.from = "2026-03-01";
  rq.to = "2026-03-31";
  ft_expect("icbc1", "report.period", &rq.base, GM__STATUS__PERMISSION_DENIED,
            "needs role centre");
  rq.from = "2026-03-31";
  rq.to = "2026-03-01";
  ft_expect(FT_CENTRE, "report.period", &rq.base, GM__STATUS__INVALID_ARGUMENT,
            "the period starts 2026-03-31, after it ends 2026-03-01; give a "
            "from on or before the to (--from 2026-03-01 --to 2026-03-31 "
            "covers it)");
  rq.from = "2026-03-01";
  rq.to = "2026-03-31";
  Gm__Finance__Report *rep =
      (Gm__Finance__Report *)ft_ok(FT_CENTRE, "report.period", &rq.base);
  ck_assert_int_eq(rep->referrals, 4);
  ck_assert_int_eq(rep->funded, 2);
  ck_assert_str_eq(rep->currency, "CNY");
  ck_assert_int_eq(rep->funded_amount, 550000000);
  ck_assert_int_eq(rep->fees, 4600000);
  ck_assert_uint_eq(rep->n_by_currency, 1);
  ck_assert_int_eq(rep->by_currency[0]->funded_amount, 550000000);
  ck_assert_int_eq(rep->co2_avoided_kg, 2 * 1500000);
  ck_assert_int_eq(rep->coal_saved_kg, 2 * 600000);
  ck_assert_int_eq(rep->n_by_class, 1);
  ck_assert_str_eq(rep->by_class[0]->key, "3");
  ck_assert_str_eq(rep->by_class[0]->name, "清洁能源产业");
  ck_assert_int_eq(rep->by_class[0]->referrals, 4);
  ck_assert_int_eq(rep->n_by_bank, 2);
  ck_assert_str_eq(rep->by_bank[1]->key, "icbc");
  ck_assert_int_eq(rep->by_bank[1]->referrals, 2); /* claimed */
  ck_assert_int_eq(rep->by_bank[1]->funded, 1);
  ck_assert_int_eq(rep->by_bank[1]->fees, 3600000);
  ck_assert_msg(strstr(rep->csv, "total,,,CNY,4,2,5500000.00,46000.00,,\n"),
                "%s", rep->csv);
  ck_assert_msg(
      strstr(rep->csv, "bank,icbc,Bank icbc,CNY,2,1,4500000.00,36000.00"), "%s",
      rep->csv);
  ft_free(rep);
  /* A period before anything: all zero. */
  rq.from = "2026-01-01";
  rq.to = "2026-01-31";
  rep = (Gm__Finance__Report *)ft_ok(FT_CENTRE, "report.period", &rq.base);
  ck_assert_int_eq(rep->referrals, 0);
  ck_assert_int_eq(rep->fees, 0);
  ft_free(rep);

  Gm__Finance__BankReportRequest br = GM__FINANCE__BANK_REPORT_REQUEST__INIT;
  br.from = "2026-03-01";
  br.to = "2026-03-31";
  Gm__Finance__BankReport *b =
      (Gm__Finance__BankReport *)ft_ok("icbc1", "bank.report", &br.base);
  ck_assert_str_eq(b->bank, "icbc");
  ck_assert_int_eq(b->claims, 2);
  ck_assert_int_eq(b->picked, 2);
  ck_assert_int_eq(b->funded, 1);
  ck_assert_int_eq(b->conversion_bp, 5000);
  ck_assert_int_eq(b->decisions, 2);
  /* Approved at once; declined 2 hours after the pick. */
  ck_assert_int_eq(b->decision_max_ms, 2 * 3600000);
  ck_assert_int_eq(b->decision_mean_ms, 3600000);
  ck_assert_str_eq(b->currency, "CNY");
  ck_assert_int_eq(b->fees, 3600000);
  ck_assert_int_eq(b->breaches, 0);
  ft_free(b);
  br.bank = "abc";
  ft_expect("icbc1", "bank.report", &br.base, GM__STATUS__PERMISSION_DENIED,
            "your bank is icbc");
}
END_TEST

/* The centre's report counts each bank's missed deadlines, by kind, as
   bank-report --bank does: in the reply's bank lines and in two CSV
   columns (a bank whose only part in the period is a miss gets a line). */
START_TEST(the_centre_report_counts_each_bank_s_missed_deadlines) {
  int64_t t0 = ft_at(FT_MONDAY, 10, 0), day = GM_FINANCE_DAY_MS;
  char a[32], b[32];
  ft_copy_id(a, ft_refer("acme", 100000000, 36, 0));
  ft_copy_id(b, ft_refer("acme", 100000000, 36, 0));
  ft_free(ft_claim("icbc1", a));
  ft_free(ft_pick("acme", a, "icbc"));
  Gm__Finance__ClaimRequest c = GM__FINANCE__CLAIM_REQUEST__INIT;
  c.id = b;
  ft_free(ft_ok("abc1", "referral.claim", &c.base));
  ft_free(ft_pick("acme", b, "abc"));
  ft_free(ft_contact("abc1", b));
  /* icbc misses its contact deadline (9 March), abc its decision
     deadline (1 April). */
  ft_clock(t0 + 7 * day + 1000);
  ck_assert_int_eq(ft_ledger_wait("SELECT count(*) FROM finance_breaches", 1),
                   1);
  ft_clock(t0 + 30 * day + 1000);
  ck_assert_int_eq(ft_ledger_wait("SELECT count(*) FROM finance_breaches", 2),
                   2);
  Gm__Finance__ReportRequest rq = GM__FINANCE__REPORT_REQUEST__INIT;
  rq.from = "2026-03-01";
  rq.to = "2026-04-30";
  Gm__Finance__Report *rep =
      (Gm__Finance__Report *)ft_ok(FT_CENTRE, "report.period", &rq.base);
  ck_assert_msg(
      strstr(rep->csv,
             "section,key,name,currency,referrals,funded,"
             "funded_amount,fees,contact_misses,"
             "decision_misses\n") &&
          strstr(rep->csv, "\nbank,abc,Bank abc,CNY,1,0,0.00,0.00,0,1\n") &&
          strstr(rep->csv, "\nbank,icbc,Bank icbc,CNY,1,0,0.00,0.00,1,0\n") &&
          strstr(rep->csv, "\nclass,3,清洁能源产业,CNY,2,0,0.00,0.00,,\n"),
      "%s", rep->csv);
  ck_assert_int_eq(rep->n_by_bank, 2);
  ck_assert_str_eq(rep->by_bank[1]->key, "icbc");
  ck_assert_int_eq(rep->by_bank[1]->contact_misses, 1);
  ck_assert_int_eq(rep->by_bank[1]->decision_misses, 0);
  ft_free(rep);
  /* April: abc's miss alone, no claim or loan of the month. */
  rq.from = "2026-04-01";
  rep = (Gm__Finance__Report *)ft_ok(FT_CENTRE, "report.period", &rq.base);
  ck_assert_msg(
      strstr(rep->csv, "\nbank,abc,Bank abc,CNY,0,0,0.00,0.00,0,1\n") &&
          !strstr(rep->csv, "bank,icbc"),
      "%s", rep->csv);
  ft_free(rep);
}
END_TEST

/* A bank's name is free text: a comma or a quote in it must not shift
   the report's CSV columns. */
START_TEST(a_bank_name_with_a_comma_keeps_the_csv_columns) {
  Gm__Finance__Bank b = GM__FINANCE__BANK__INIT;
  Gm__Finance__CreateBankRequest cb = GM__FINANCE__CREATE_BANK_REQUEST__INIT;
  b.id = "hz";
  b.name = "Bank \"HZ\", Huzhou branch";
  cb.bank = &b;
  ft_free(ft_ok(FT_CENTRE, "bank.create", &cb.base));
  ft_register("hz1", "bank");
  Gm__Finance__LinkRequest link = GM__FINANCE__LINK_REQUEST__INIT;
  link.participant = "hz1";
  link.bank = "hz";
  ft_free(ft_ok(FT_CENTRE, "bank.link", &link.base));
  link.participant = "";
  ft_free(ft_ok("hz1", "bank.link", &link.base));
  ft_product("hz-p", "hz", "1", "", 1, MAX, 1, 120, 100);
  Gm__Finance__ReferRequest q = GM__FINANCE__REFER_REQUEST__INIT;
  q.amount = 100000000;
  q.tenor_months = 12;
  q.class_code = "1";
  q.subitem = "1.5";
  q.use_of_proceeds = "boiler retrofit";
  q.description = "replace two coal boilers";
  q.consent_share = 1;
  Gm__Finance__Referral *r =
      (Gm__Finance__Referral *)ft_ok("acme", "referral.create", &q.base);
  char id[32];
  snprintf(id, sizeof id, "%s", r->id);
  ft_free(r);
  ft_free(ft_claim("hz1", id));
  ft_free(ft_pick("acme", id, "hz"));
  ft_free(ft_contact("hz1", id));
  ft_free(ft_approve("hz1", id, 100000000, 345, 12));
  ft_free(ft_fund("hz1", id, 100000000, NULL));
  ck_assert_int_eq(ft_ledger_wait("SELECT count(*) FROM finance_loans", 1), 1);
  Gm__Finance__ReportRequest rq = GM__FINANCE__REPORT_REQUEST__INIT;
  rq.from = "2026-03-01";
  rq.to = "2026-03-31";
  Gm__Finance__Report *rep =
      (Gm__Finance__Report *)ft_ok(FT_CENTRE, "report.period", &rq.base);
  ck_assert_str_eq(rep->by_bank[0]->name, "Bank \"HZ\", Huzhou branch");
  ck_assert_msg(strstr(rep->csv,
                       "bank,hz,\"Bank \"\"HZ\"\", Huzhou branch\","
                       "CNY,1,1,1000000.00,10000.00,0,0\n"),
                "%s", rep->csv);
  ft_free(rep);
}
END_TEST

/* A referral in `currency` that `user` of `bank` funds with `product`. */
static void funded_in(const char *currency, const char *user, const char *bank,
                      const char *product, int64_t amount) {
  Gm__Finance__ReferRequest q = GM__FINANCE__REFER_REQUEST__INIT;
  q.amount = amount;
  q.currency = (char *)currency;
  q.tenor_months = 36;
  q.class_code = "3";
  q.subitem = "3.2";
  q.use_of_proceeds = "rooftop solar";
  q.description = "2 MW rooftop photovoltaic plant on our workshops";
  q.consent_share = 1;
  Gm__Finance__Referral *r =
      (Gm__Finance__Referral *)ft_ok("acme", "referral.create", &q.base);
  char id[32];
  snprintf(id, sizeof id, "%s", r->id);
  ft_free(r);
  Gm__Finance__ClaimRequest c = GM__FINANCE__CLAIM_REQUEST__INIT;
  c.id = id;
  c.product = (char *)product;
  ft_free(ft_ok(user, "referral.claim", &c.base));
  ft_free(ft_pick("acme", id, bank));
  ft_free(ft_contact(user, id));
  ft_free(ft_approve(user, id, amount, 345, 36));
  ft_free(ft_fund(user, id, amount, NULL));
}

/*
 * A bank lending in two currencies: every report gives each currency's
 * money apart and never adds yuan to dollars; the statement is not refused
 * and has a total line per currency.
 */
START_TEST(money_in_two_currencies_is_never_added_together) {
  Gm__Finance__Product p = GM__FINANCE__PRODUCT__INIT;
  Gm__Finance__CreateProductRequest cp =
      GM__FINANCE__CREATE_PRODUCT_REQUEST__INIT;
  char *cls[] = {"3"};
  p.id = "icbc-usd";
  p.bank = "icbc";
  p.name = "green loan in dollars";
  p.currency = "USD";
  p.amount_min = 1;
  p.amount_max = MAX;
  p.tenor_min_months = 1;
  p.tenor_max_months = 120;
  p.rate_min_bp = 300;
  p.rate_max_bp = 450;
  p.fee_bp = 100;
  p.classes = cls;
  p.n_classes = 1;
  cp.product = &p;
  /* Three capital letters are not enough: an active ISO 4217 code. */
  p.currency = "XYZ";
  ft_expect(FT_CENTRE, "product.create", &cp.base, GM__STATUS__INVALID_ARGUMENT,
            "currency \"XYZ\" is not an ISO 4217 currency in use");
  p.currency = "USD";
  ft_free(ft_ok(FT_CENTRE, "product.create", &cp.base));
  funded("icbc1", "icbc", "fee80", 450000000, 3600000, NULL); /* CNY */
  funded_in("USD", "icbc1", "icbc", "icbc-usd", 20000000);    /* 1% fee */
  ck_assert_int_eq(ft_ledger_wait("SELECT count(*) FROM finance_loans", 2), 2);

  Gm__Finance__BankReportRequest br = GM__FINANCE__BANK_REPORT_REQUEST__INIT;
  br.from = "2026-03-01";
  br.to = "2026-03-31";
  Gm__Finance__BankReport *b =
      (Gm__Finance__BankReport *)ft_ok("icbc1", "bank.report", &br.base);
  ck_assert_int_eq(b->funded, 2);
  ck_assert_str_eq(b->currency, ""); /* two: no single sum */
  ck_assert_int_eq(b->funded_amount, 0);
  ck_assert_int_eq(b->fees, 0);
  ck_assert_uint_eq(b->n_by_currency, 2);
  ck_assert_str_eq(b->by_currency[0]->currency, "CNY");
  ck_assert_int_eq(b->by_currency[0]->loans, 1);
  ck_assert_int_eq(b->by_currency[0]->funded_amount, 450000000);
  ck_assert_int_eq(b->by_currency[0]->fees, 3600000);
  ck_assert_str_eq(b->by_currency[1]->currency, "USD");
  ck_assert_int_eq(b->by_currency[1]->funded_amount, 20000000);
  ck_assert_int_eq(b->by_currency[1]->fees, 200000);
  ft_free(b);

  Gm__Finance__ReportRequest rq = GM__FINANCE__REPORT_REQUEST__INIT;
  rq.from = "2026-03-01";
  rq.to = "2026-03-31";
  Gm__Finance__Report *rep =
      (Gm__Finance__Report *)ft_ok(FT_CENTRE, "report.period", &rq.base);
  ck_assert_int_eq(rep->referrals, 2);
  ck_assert_int_eq(rep->funded, 2);
  ck_assert_str_eq(rep->currency, "");
  ck_assert_int_eq(rep->funded_amount, 0);
  ck_assert_uint_eq(rep->n_by_currency, 2);
  ck_assert_int_eq(rep->by_currency[1]->fees, 200000);
  /* A line per class and currency. */
  ck_assert_uint_eq(rep->n_by_class, 2);
  ck_assert_str_eq(rep->by_class[0]->currency, "CNY");
  ck_assert_int_eq(rep->by_class[0]->referrals, 1);
  ck_assert_int_eq(rep->by_class[0]->funded_amount, 450000000);
  ck_assert_str_eq(rep->by_class[1]->currency, "USD");
  ck_assert_int_eq(rep->by_class[1]->funded_amount, 20000000);
  ck_assert_uint_eq(rep->n_by_bank, 2);
  ck_assert_str_eq(rep->by_bank[1]->currency, "USD");
  ck_assert_int_eq(rep->by_bank[1]->referrals, 1); /* claimed */
  ck_assert_msg(strstr(rep->csv, "total,,,CNY,1,1,4500000.00,36000.00,,\n") &&
                    strstr(rep->csv, "total,,,USD,1,1,200000.00,2000.00,,\n"),
                "%s", rep->csv);
  ft_free(rep);

  Gm__Finance__StatementRequest sr = GM__FINANCE__STATEMENT_REQUEST__INIT;
  sr.month = "2026-03";
  Gm__Finance__Statement *st =
      (Gm__Finance__Statement *)ft_ok("icbc1", "report.statement", &sr.base);
  ck_assert_int_eq(st->rows, 2);
  ck_assert_str_eq(st->currency, "");
  ck_assert_int_eq(st->funded_amount, 0);
  ck_assert_uint_eq(st->n_by_currency, 2);
  ck_assert_msg(strstr(st->csv, "total,,,,CNY,4500000.00,,,,36000.00\n") &&
                    strstr(st->csv, "total,,,,USD,200000.00,,,,2000.00\n"),
                "%s", st->csv);
  ft_free(st);
}
END_TEST

/*
 * The centre's CSV totals count every referral submitted in the period:
 * one in a currency no loan of the period is in has its own total line
 * (with no loans), instead of being left out of every total.
 */
START_TEST(the_csv_totals_count_referrals_in_a_currency_without_loans) {
  Gm__Finance__Product p = GM__FINANCE__PRODUCT__INIT;
  Gm__Finance__CreateProductRequest cp =
      GM__FINANCE__CREATE_PRODUCT_REQUEST__INIT;
  char *cls[] = {"3"};
  p.id = "icbc-usd";
  p.bank = "icbc";
  p.name = "green loan in dollars";
  p.currency = "USD";
  p.amount_min = 1;
  p.amount_max = MAX;
  p.tenor_min_months = 1;
  p.tenor_max_months = 120;
  p.rate_min_bp = 300;
  p.rate_max_bp = 450;
  p.fee_bp = 100;
  p.classes = cls;
  p.n_classes = 1;
  cp.product = &p;
  /* Three capital letters are not enough: an active ISO 4217 code. */
  p.currency = "XYZ";
  ft_expect(FT_CENTRE, "product.create", &cp.base, GM__STATUS__INVALID_ARGUMENT,
            "currency \"XYZ\" is not an ISO 4217 currency in use");
  p.currency = "USD";
  ft_free(ft_ok(FT_CENTRE, "product.create", &cp.base));
  funded("icbc1", "icbc", "fee80", 450000000, 3600000, NULL); /* CNY */
  Gm__Finance__ReferRequest q = GM__FINANCE__REFER_REQUEST__INIT;
  q.amount = 20000000;
  q.currency = "USD";
  q.tenor_months = 36;
  q.class_code = "3";
  q.subitem = "3.2";
  q.use_of_proceeds = "rooftop solar";
  q.description = "2 MW rooftop photovoltaic plant on our workshops";
  q.consent_share = 1;
  ft_free(ft_ok("acme", "referral.create", &q.base)); /* submitted only */
  ck_assert_int_eq(ft_ledger_wait("SELECT count(*) FROM finance_referrals", 2),
                   2);
  ck_assert_int_eq(ft_ledger_wait("SELECT count(*) FROM finance_loans", 1), 1);

  Gm__Finance__ReportRequest rq = GM__FINANCE__REPORT_REQUEST__INIT;
  rq.from = "2026-03-01";
  rq.to = "2026-03-31";
  Gm__Finance__Report *rep =
      (Gm__Finance__Report *)ft_ok(FT_CENTRE, "report.period", &rq.base);
  ck_assert_int_eq(rep->referrals, 2);
  /* The loans are in one currency: the single-currency fields stand. */
  ck_assert_str_eq(rep->currency, "CNY");
  ck_assert_int_eq(rep->funded_amount, 450000000);
  ck_assert_uint_eq(rep->n_by_currency, 1);
  ck_assert_msg(strstr(rep->csv, "class,3,清洁能源产业,USD,1,0,0.00,0.00,,\n"),
                "%s", rep->csv);
  ck_assert_msg(strstr(rep->csv, "total,,,CNY,1,1,4500000.00,36000.00,,\n") &&
                    strstr(rep->csv, "total,,,USD,1,0,0.00,0.00,,\n"),
                "the USD referral is in no total line:\n%s", rep->csv);
  ft_free(rep);
}
END_TEST

int main(void) {
  Suite *s = suite_create("finance reports");
  TCase *tc = tcase_create("reports");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, fees_round_half_up_and_settle_with_the_loan);
  tcase_add_test(tc, the_monthly_statement_matches_the_ledger);
  tcase_add_test(tc, the_centre_report_and_a_bank_report);
  tcase_add_test(tc, the_centre_report_counts_each_bank_s_missed_deadlines);
  tcase_add_test(tc, a_bank_name_with_a_comma_keeps_the_csv_columns);
  tcase_add_test(tc, money_in_two_currencies_is_never_added_together);
  tcase_add_test(tc,
                 the_csv_totals_count_referrals_in_a_currency_without_loans);
  suite_add_tcase(s, tc);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
