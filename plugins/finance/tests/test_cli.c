/*
 * `gm finance ...` end to end: the built gm, loading the commands from the
 * built gm_finance.so, against a private gmd.  People type yuan, percent
 * and tonnes; the broker gets fen, basis points and kg, exactly; mistakes
 * are refused before anything is sent, in the units typed.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "run_gm.h"

static const char *ep;

static void setup(void) {
  ft_start(NULL, ft_at(FT_MONDAY, 10, 0));
  ep = gm_test_gmd_endpoint(ft_gmd);
  ft_register("icbc1", "bank");
  ft_register("acme", "enterprise");
}

static void teardown(void) {
  ft_stop();
}

static run_result *gm(const char *first, ...) {
  char *args[64];
  int n = 0;
  args[n++] = "--plugin-dir";
  args[n++] = (char *)GM_BUILD_PLUGIN_DIR;
  args[n++] = (char *)first;
  va_list ap;
  va_start(ap, first);
  for (char *a; (a = va_arg(ap, char *)) && n < 63;) args[n++] = a;
  va_end(ap);
  args[n] = NULL;
  return gm_test_run_gm(ep, args);
}

#define OK(r)                                                         \
  ck_assert_msg((r)->code == 0, "gm exit %d\nstdout: %s\nstderr: %s", \
                (r)->code, (r)->out, (r)->err)
#define REFUSED(r, text)                                                   \
  do {                                                                     \
    ck_assert_msg((r)->code == 1, "gm exit %d, expected 1\nstdout: %s",    \
                  (r)->code, (r)->out);                                    \
    ck_assert_msg(strstr((r)->err, text), "stderr lacks \"%s\": %s", text, \
                  (r)->err);                                               \
  } while (0)

START_TEST(a_whole_session_in_yuan_percent_and_tonnes) {
  run_result *r;
  OK(gm("--as", FT_CENTRE, "finance", "catalogue", "load", NULL));
  r = gm("finance", "catalogue", NULL);
  OK(r);
  ck_assert_msg(
      strstr(r->out, "3.2") && strstr(r->out, "清洁能源设施建设和运营"), "%s",
      r->out);
  OK(gm("--as", FT_CENTRE, "finance", "bank", "create", "icbc", "--name",
        "ICBC Huzhou", NULL));
  r = gm("--as", FT_CENTRE, "finance", "bank", "link", "icbc1", "icbc", NULL);
  OK(r);
  ck_assert_msg(strstr(r->out, "gm --as icbc1 finance bank join icbc"), "%s",
                r->out);
  OK(gm("--as", "icbc1", "finance", "bank", "join", "icbc", NULL));
  r = gm("--as", FT_CENTRE, "finance", "product", "create", "icbc-solar",
         "--bank", "icbc", "--name", "Green solar loan", "--amount",
         "100000-50000000", "--tenor", "12-60", "--rate", "3.10-4.20", "--fee",
         "0.8", "--classes", "3", "--regions", "330000", NULL);
  OK(r);
  ck_assert_msg(strstr(r->out, "100000.00-50000000.00 CNY"), "%s", r->out);
  /* What the broker holds: fen and basis points, exactly. */
  Gm__Finance__ProductsRequest pl = GM__FINANCE__PRODUCTS_REQUEST__INIT;
  Gm__Finance__ProductList *list =
      (Gm__Finance__ProductList *)ft_ok(FT_CENTRE, "product.list", &pl.base);
  ck_assert_int_eq(list->n_products, 1);
  ck_assert_int_eq(list->products[0]->amount_min, 10000000);
  ck_assert_int_eq(list->products[0]->amount_max, 5000000000);
  ck_assert_int_eq(list->products[0]->rate_min_bp, 310);
  ck_assert_int_eq(list->products[0]->fee_bp, 80);
  ft_free(list);

  char code[19];
  ft_code("91330502MA2B3C4D5", code);
  OK(gm("--as", "acme", "finance", "enterprise", "register", "--code", code,
        "--name", "湖州绿能光伏有限公司", "--region", "330502", "--size",
        "small", "--contact", "Li Wei 13800000000", NULL));
  r = gm("--as", "acme", "finance", "screen", "--amount", "5000000", "--tenor",
         "36", "--item", "3.2", "--use", "rooftop PV", "--description",
         "2 MW rooftop PV", NULL);
  OK(r);
  ck_assert_msg(strstr(r->out, "not eligible") && strstr(r->out, "consent"),
                "%s", r->out);
  r = gm("--as", "acme", "finance", "refer", "--amount", "5000000", "--tenor",
         "36", "--item", "3.2", "--use", "rooftop PV", "--description",
         "2 MW rooftop PV", "--co2", "1500.5", "--coal", "600",
         "--consent-share", "--cert", "CQC-PV-001", NULL);
  OK(r);
  ck_assert_msg(strstr(r->out, "R00000001") && strstr(r->out, "5000000.00 CNY"),
                "%s", r->out);
  ck_assert_str_eq(ft_redis_field("R00000001", "amt"), "500000000");
  ck_assert_str_eq(ft_redis_field("R00000001", "co2"), "1500500");
  /* The bank sees the summary in its queue. */
  r = gm("--as", "icbc1", "finance", "queue", NULL);
  OK(r);
  ck_assert_msg(strstr(r->out, "R00000001") && strstr(r->out, "open") &&
                    strstr(r->out, "5000000.00-10000000.00"),
                "%s", r->out);
  OK(gm("--as", "icbc1", "finance", "claim", "R00000001", NULL));
  OK(gm("--as", "acme", "finance", "pick", "R00000001", "icbc", NULL));
  OK(gm("--as", "icbc1", "finance", "contact", "R00000001", "called", "Li",
        "Wei", NULL));
  ck_assert_str_eq(ft_redis_field("R00000001", "cnote"), "called Li Wei");
  /* The decision deadline: 30 days after the contact, waiting while the
     enterprise answers. */
  r = gm("--as", "icbc1", "finance", "show", "R00000001", NULL);
  OK(r);
  ck_assert_msg(strstr(r->out, "fund or decline by 2026-04-01 10:00"), "%s",
                r->out);
  OK(gm("--as", "icbc1", "finance", "request-info", "R00000001", "grid",
        "approval?", NULL));
  r = gm("--as", "acme", "finance", "show", "R00000001", NULL);
  OK(r);
  ck_assert_msg(strstr(r->out, "waiting for the answer; then 30 d 0 h left"),
                "%s", r->out);
  OK(gm("--as", "acme", "finance", "answer", "R00000001", "attached", NULL));
  /* An amount refused names the referral's currency, as typed (not fen). */
  r = gm("--as", "icbc1", "finance", "approve", "R00000001", "--amount", "-1",
         "--rate", "3.45", "--tenor", "36", NULL);
  REFUSED(r, "--amount -1 is negative; give a positive number of CNY");
  r = gm("--as", "icbc1", "finance", "approve", "R00000001", "--amount", "0",
         "--rate", "3.45", "--tenor", "36", NULL);
  REFUSED(r, "--amount must be above 0 CNY");
  OK(gm("--as", "icbc1", "finance", "approve", "R00000001", "--amount",
        "4500000", "--rate", "3.45", "--tenor", "36", NULL));
  ck_assert_str_eq(ft_redis_field("R00000001", "arate"), "345");
  r = gm("--as", "icbc1", "finance", "fund", "R00000001", "--amount",
         "4500000.01", NULL);
  REFUSED(r,
          "the funded amount 4500000.01 CNY is more than the approved "
          "4500000.00 CNY");
  r = gm("--as", "icbc1", "finance", "fund", "R00000001", "--amount", "4500000",
         NULL);
  OK(r);
  ck_assert_msg(strstr(r->out, "referral fee 36000.00"), "%s", r->out);
  ck_assert_int_eq(ft_ledger_wait("SELECT count(*) FROM finance_loans", 1), 1);

  /* The statement to a file: the ledger's loan, to the fen. */
  char *out = gm_test_redis_path(ft_redis, "icbc-2026-03.csv");
  OK(gm("--as", "icbc1", "finance", "statement", "2026-03", "--out", out,
        NULL));
  FILE *f = fopen(out, "r");
  char csv[1024] = "";
  size_t n = fread(csv, 1, sizeof csv - 1, f);
  csv[n] = '\0';
  fclose(f);
  free(out);
  ck_assert_msg(strstr(csv,
                       "R00000001,2026-03-02,3,3.2,CNY,4500000.00,3.45,"
                       "36,80,36000.00\n") &&
                    strstr(csv, "total,,,,CNY,4500000.00,,,,36000.00\n"),
                "%s", csv);
  r = gm("--as", FT_CENTRE, "finance", "report", "--from", "2026-03-01", "--to",
         "2026-03-31", NULL);
  OK(r);
  ck_assert_msg(
      strstr(r->out, "class,3,清洁能源产业,CNY,1,1,4500000.00,36000.00"), "%s",
      r->out);
  r = gm("--as", "icbc1", "finance", "bank-report", NULL);
  OK(r);
  ck_assert_msg(
      strstr(r->out, "conversion 100.00%") &&
          strstr(r->out, "1 loan, 4500000.00 CNY; fees due 36000.00 CNY"),
      "%s", r->out);
  /* A period without a decision says so, not an average of nothing. */
  r = gm("--as", "icbc1", "finance", "bank-report", "--from", "2026-01-01",
         "--to", "2026-01-31", NULL);
  OK(r);
  ck_assert_msg(strstr(r->out, "decisions       none in the period") &&
                    !strstr(r->out, "on average"),
                "%s", r->out);
  /* The centre unlinks icbc's only staff member while icbc has claimed a
     referral: told that nobody can act for icbc, which referral, and how
     to let someone act for it. */
  OK(gm("--as", "acme", "finance", "refer", "--amount", "5000000", "--tenor",
        "36", "--item", "3.2", "--use", "PV", "--description", "PV",
        "--consent-share", NULL));
  OK(gm("--as", "icbc1", "finance", "claim", "R00000002", NULL));
  r = gm("--as", FT_CENTRE, "finance", "bank", "unlink", "icbc1", NULL);
  OK(r);
  ck_assert_msg(
      strstr(r->out, "icbc1 no longer acts for icbc; icbc's staff now: none") &&
          strstr(r->out,
                 "warning: nobody can act for bank icbc now (no "
                 "staff); its 1 referral(s) below") &&
          strstr(r->out, "gm finance bank link PARTICIPANT icbc") &&
          strstr(r->out, "R00000002  claimed"),
      "%s", r->out);
  /* A referral the centre made for acme: acme reads the consents given
     and who gave them. */
  OK(gm("--as", FT_CENTRE, "finance", "refer", "--for", "acme", "--amount",
        "5000000", "--tenor", "36", "--item", "3.2", "--use", "PV",
        "--description", "PV", "--consent-share", "--consent-identity", NULL));
  r = gm("--as", "acme", "finance", "show", "R00000003", NULL);
  OK(r);
  ck_assert_msg(strstr(r->out,
                       "consent         to share the need with the "
                       "fitting banks, and who it is with those that "
                       "claim") &&
                    strstr(r->out,
                           "referred by     centre, for acme (it gave "
                           "the consents on acme's behalf)"),
                "%s", r->out);
  r = gm("--as", "acme", "finance", "show", "R00000001", NULL);
  OK(r);
  ck_assert_msg(strstr(r->out, "who it is only with the bank picked") &&
                    !strstr(r->out, "referred by"),
                "%s", r->out);
  /* --json: the reply as the broker sent it, in fen. */
  r = gm("--json", "--as", "acme", "finance", "show", "R00000001", NULL);
  OK(r);
  ck_assert_msg(strstr(r->out, "450000000") && strstr(r->out, "3600000"), "%s",
                r->out);
}
END_TEST

START_TEST(mistakes_are_refused_in_the_units_typed) {
  run_result *r =
      gm("--as", "acme", "finance", "refer", "--amount", "12.345", "--tenor",
         "36", "--item", "3.2", "--use", "x", "--description", "y", NULL);
  REFUSED(r,
          "--amount 12.345 has more decimals than CNY has (2, ISO 4217); "
          "give at most 2 decimals in CNY");
  r = gm("--as", "acme", "finance", "refer", "--amount", "12.5", "--currency",
         "JPY", "--tenor", "36", "--item", "3.2", "--use", "x", "--description",
         "y", NULL);
  REFUSED(r,
          "--amount 12.5 has more decimals than JPY has (0, ISO 4217); "
          "give a whole amount in JPY");
  r = gm("--as", FT_CENTRE, "finance", "product", "create", "kw", "--bank",
         "icbc", "--name", "n", "--amount", "1.005-2", "--tenor", "1-2",
         "--rate", "3-4", "--fee", "1", "--classes", "3", "--currency", "KWD",
         NULL);
  REFUSED(r,
          "the smallest --amount 1.005 has 3 decimals; finance carries "
          "amounts to 0.01 KWD (KWD has 3, ISO 4217: the digits past the "
          "second are not carried)");
  r = gm("--as", "icbc1", "finance", "approve", "R00000001", "--amount",
         "1.001", "--rate", "3", "--tenor", "3", NULL);
  REFUSED(r, "--amount 1.001 has 3 decimals; give at most 2");
  /* No referral to read the currency of: the unit is still the one typed,
     not fen. */
  r = gm("--as", "icbc1", "finance", "approve", "R00000001", "--amount", "-1",
         "--rate", "3", "--tenor", "3", NULL);
  REFUSED(r,
          "--amount -1 is negative; give a positive number of the "
          "referral's currency (yuan for CNY, not fen)");
  r = gm("--as", "icbc1", "finance", "approve", "R00000001", "--amount", "1",
         "--rate", "3.456", "--tenor", "3", NULL);
  REFUSED(r, "--rate 3.456 has more than 2 decimals; give percent to 2");
  r = gm("--as", "icbc1", "finance", "approve", "R00000001", "--amount", "1",
         "--rate", "3", "--tenor", "x", NULL);
  REFUSED(r, "--tenor x is not a number of months; write a whole number");
  r = gm("--as", "acme", "finance", "refer", "--amount", "-5", "--tenor", "36",
         "--item", "3.2", "--use", "x", "--description", "y", NULL);
  REFUSED(r, "--amount -5 is negative; give a positive number of CNY");
  r = gm("--as", "acme", "finance", "refer", "--amount", "5", "--tenor", "36",
         "--item", "3.2", "--use", "x", "--description", "y", "--co2", "1.2345",
         NULL);
  REFUSED(r,
          "--co2 1.2345 has more than 3 decimals; give tonnes to 3 decimals");
  r = gm("--as", FT_CENTRE, "finance", "product", "create", "p", "--bank",
         "icbc", "--name", "n", "--amount", "100", "--tenor", "1-2", "--rate",
         "3-4", "--fee", "1", "--classes", "3", NULL);
  REFUSED(r, "--amount \"100\" is not a range MIN-MAX");
  r = gm("--as", FT_CENTRE, "finance", "product", "create", "p", "--bank",
         "icbc", "--name", "n", "--amount", "1-2", "--tenor", "1-2", "--rate",
         "3-4", "--fee", "80", "--classes", "3", NULL);
  REFUSED(r,
          "--fee 80 is 80 % of the funded amount, above the largest "
          "referral fee, 5.00 % (lenders pay about 0.5-1.5 %): give 0 to "
          "5.00, in percent: 0.8 for 0.80 %");
  r = gm("--as", FT_CENTRE, "finance", "product", "create", "p", "--bank",
         "icbc", "--name", "n", "--amount", "1-2", "--tenor", "1-2", "--rate",
         "3-4", "--fee", "150", "--classes", "3", NULL);
  REFUSED(r,
          "--fee 150 is 150 % of the funded amount, above the largest "
          "referral fee, 5.00 %");
  r = gm("--as", "acme", "finance", "refer", "--amount", "5", "--tenor", "36.5",
         "--item", "3.2", "--use", "x", "--description", "y", NULL);
  REFUSED(r, "--tenor must be a whole number of months, not 36.5");
  r = gm("--as", "icbc1", "finance", "claim", "R00000001", "extra", "args",
         NULL);
  REFUSED(r, "\"extra\" is extra: this command takes the referral id");
  r = gm("--as", "icbc1", "finance", "show", "R000000001", NULL);
  REFUSED(r, "is not a referral id (R and 8 digits");
  r = gm("--as", FT_CENTRE, "finance", "refer", "--amount", "5", "--tenor",
         "36", "--item", "3.2", "--use", "x", "--description", "y",
         "--consent-share", NULL);
  REFUSED(r, "--for PARTICIPANT");
  r = gm("--as", FT_CENTRE, "finance", "enterprise", "newco", NULL);
  REFUSED(r, "enterprise newco has no profile");
  r = gm("--as", FT_CENTRE, "finance", "product", "abc", NULL);
  REFUSED(r, "unknown product command \"abc\"; give list, create or retire");
  r = gm("--as", "icbc1", "finance", "fund", "R00000001", "--amount", "1",
         "--date", "2026-02-30", NULL);
  REFUSED(r, "the value date \"2026-02-30\" does not exist");
  r = gm("--as", "icbc1", "finance", "statement", "1900-01", NULL);
  REFUSED(r, "1970-01 to 9999-11");
  r = gm("--as", "icbc1", "finance", "decline", "R00000001", "because", NULL);
  REFUSED(r, "the reason must be one of credit, collateral");
  /* A catalogue file with a mistake: refused with its line. */
  char *path = gm_test_redis_path(ft_redis, "cat.csv");
  FILE *f = fopen(path, "w");
  fputs("code,parent,name,name_en\n1,,A,a\n1.1,1,B,b\n2.1,2,C,c\n", f);
  fclose(f);
  r = gm("--as", FT_CENTRE, "finance", "catalogue", "load", path, NULL);
  REFUSED(r, "line 4: parent 2 of 2.1 is not listed before it");
  free(path);
  /* Nothing was sent: the shipped catalogue is still in force. */
  Gm__Finance__CatalogueRequest cr = GM__FINANCE__CATALOGUE_REQUEST__INIT;
  Gm__Finance__Catalogue *c =
      (Gm__Finance__Catalogue *)ft_ok(FT_CENTRE, "catalogue.list", &cr.base);
  ck_assert(c->builtin);
  ck_assert_int_eq(c->n_entries, 36);
  ft_free(c);
  r = gm("finance", "--help", NULL);
  OK(r);
  ck_assert_msg(strstr(r->out, "gm finance refer") &&
                    strstr(r->out, "gm finance statement"),
                "%s", r->out);
}
END_TEST

/* More classes or regions than a product takes are refused, not cut to
   the first 16 or 64 (the product would cover less than was typed). */
START_TEST(a_product_with_too_many_regions_is_refused_not_cut) {
  ft_bank("icbc", NULL);
  char regions[65 * 7 + 1] = "";
  for (int i = 1; i <= 65; i++)
    snprintf(regions + strlen(regions), sizeof regions - strlen(regions),
             "%s3301%02d", i > 1 ? "," : "", i);
  run_result *r =
      gm("--as", FT_CENTRE, "finance", "product", "create", "p", "--bank",
         "icbc", "--name", "n", "--amount", "1-2", "--tenor", "1-2", "--rate",
         "3-4", "--fee", "1", "--classes", "3", "--regions", regions, NULL);
  REFUSED(r, "at most 64");
  r = gm("--as", FT_CENTRE, "finance", "product", "create", "p", "--bank",
         "icbc", "--name", "n", "--amount", "1-2", "--tenor", "1-2", "--rate",
         "3-4", "--fee", "1", "--classes",
         "1,1.1,1.2,1.3,1.4,1.5,1.6,2,2.1,2.2,2.3,2.4,3,3.1,3.2,3.3,3.4", NULL);
  REFUSED(r, "at most 16");
  Gm__Finance__ProductsRequest pr = GM__FINANCE__PRODUCTS_REQUEST__INIT;
  Gm__Finance__ProductList *l =
      (Gm__Finance__ProductList *)ft_ok(FT_CENTRE, "product.list", &pr.base);
  ck_assert_int_eq(l->n_products, 0);
  ft_free(l);
}
END_TEST

/* "back in the pool" only while it is: a referral that expired after a
   missed contact deadline (round 2) is not. */
START_TEST(show_says_back_in_the_pool_only_when_it_is) {
  ft_bank("icbc", NULL);
  Gm__Finance__LinkRequest link = GM__FINANCE__LINK_REQUEST__INIT;
  link.participant = "icbc1";
  link.bank = "icbc";
  ft_free(ft_ok(FT_CENTRE, "bank.link", &link.base));
  link.participant = "";
  ft_free(ft_ok("icbc1", "bank.link", &link.base));
  ft_product("icbc-p", "icbc", "3", "", 1, 100000000000, 1, 120, 80);
  ft_enterprise("newco", "330502");
  Gm__Finance__Referral *ref = ft_refer("newco", 500000000, 36, 0);
  char id[32];
  snprintf(id, sizeof id, "%s", ref->id);
  ft_free(ref);
  ft_free(ft_claim("icbc1", id));
  ft_free(ft_pick("newco", id, "icbc"));
  ft_clock(ft_at(FT_MONDAY, 10, 0) + 8 * GM_FINANCE_DAY_MS);
  ck_assert_int_eq(ft_wait_state(id, GM__FINANCE__STATE__STATE_EXPIRED),
                   GM__FINANCE__STATE__STATE_EXPIRED);
  run_result *r = gm("--as", "newco", "finance", "show", id, NULL);
  OK(r);
  ck_assert_msg(strstr(r->out, "expired") && !strstr(r->out, "back in the"),
                "%s", r->out);
}
END_TEST

/* After loading the shipped calendar, a range whose 2026 part (December)
   has no holiday is not said to lack 2026; 2027, with only the
   statutory holidays, is noted. */
START_TEST(the_calendar_notes_only_years_it_lacks) {
  OK(gm("--as", FT_CENTRE, "finance", "calendar", "load", NULL));
  run_result *r = gm("finance", "calendar", "--from", "2026-12-01", "--to",
                     "2027-02-28", NULL);
  OK(r);
  ck_assert_msg(!strstr(r->out, "2026: ") && !strstr(r->err, "2026: "), "%s%s",
                r->out, r->err);
  ck_assert_msg(strstr(r->out, "2027") && strstr(r->out, "2027-01-01"), "%s",
                r->out);
  ck_assert_msg(!strstr(r->out, "2026-10-01"), "%s", r->out);
  ck_assert_msg(strstr(r->out, "calendar.csv shipped in the finance plugin"),
                "%s", r->out);
}
END_TEST

/* The centre's bank list: staff, inactive staff, pending offers; the
   centre withdraws an offer. */
START_TEST(bank_list_shows_offers_and_inactive_staff) {
  run_result *r;
  ft_register("li", "bank");
  OK(gm("--as", FT_CENTRE, "finance", "bank", "create", "icbc", "--name",
        "ICBC Huzhou", NULL));
  OK(gm("--as", FT_CENTRE, "finance", "bank", "link", "icbc1", "icbc", NULL));
  OK(gm("--as", "icbc1", "finance", "bank", "join", "icbc", NULL));
  r = gm("--as", FT_CENTRE, "finance", "bank", "link", "li", "icbc", NULL);
  OK(r);
  ck_assert_msg(strstr(r->out, "offer to li pending until 2026-03-09 10:00"),
                "%s", r->out);
  ft_register("icbc1", "enterprise");
  r = gm("--as", FT_CENTRE, "finance", "bank", "list", NULL);
  OK(r);
  ck_assert_msg(strstr(r->out, "  icbc1  inactive: no bank role") &&
                    strstr(r->out,
                           "  li  offered 2026-03-02 10:00 by centre, pending "
                           "until 2026-03-09 10:00 (bank join)"),
                "%s", r->out);
  /* Its one member lacks the role: nobody can act for icbc. */
  ck_assert_msg(strstr(r->out,
                       "  no active staff: nobody can act for icbc "
                       "(enterprises cannot pick it"),
                "%s", r->out);
  r = gm("--as", FT_CENTRE, "finance", "bank", "withdraw", "li", NULL);
  OK(r);
  ck_assert_msg(strstr(r->out, "withdrawn: the offer to li to act for icbc"),
                "%s", r->out);
  r = gm("--as", FT_CENTRE, "finance", "bank", "list", NULL);
  OK(r);
  ck_assert_msg(!strstr(r->out, "li  offered"), "%s", r->out);
  r = gm("--as", "li", "finance", "bank", "join", "icbc", NULL);
  REFUSED(r, "the centre has no pending offer to link you (li) to bank icbc");
  /* An offer an older gmd stored (the bank alone) is pending: the listing
     re-stamps it, a week from now, and says what it does not know. */
  redisContext *c = gm_test_redis_connect(ft_redis);
  freeReplyObject(gm_test_redis_cmd(c, "HSET gm:{finance:dir}:inv li icbc"));
  redisFree(c);
  r = gm("--as", FT_CENTRE, "finance", "bank", "list", NULL);
  OK(r);
  ck_assert_msg(strstr(r->out,
                       "  li  offered by an older gmd (when and by whom not "
                       "kept), pending until 2026-03-09 10:00 (bank join)"),
                "%s", r->out);
  OK(gm("--as", "li", "finance", "bank", "join", "icbc", NULL));
  r = gm("--as", FT_CENTRE, "finance", "bank", "list", NULL);
  OK(r);
  ck_assert_msg(!strstr(r->out, "no active staff"), "%s", r->out);
  /* li, icbc's last active member, unlinked while icbc's queue cannot be
     read (its key made the wrong type): gm says the unlink was made, that
     the list is unknown, and how to read it. */
  c = gm_test_redis_connect(ft_redis);
  freeReplyObject(gm_test_redis_cmd(c, "SET gm:{finance:b:icbc}:q broken"));
  redisFree(c);
  r = gm("--as", FT_CENTRE, "finance", "bank", "unlink", "li", NULL);
  OK(r);
  ck_assert_msg(
      strstr(r->out, "li no longer acts for icbc; icbc's staff now: icbc1") &&
          strstr(r->out,
                 "warning: nobody can act for bank icbc now (its staff lack "
                 "the bank role); the unlink was made, but bank icbc's queue "
                 "could not be read afterwards") &&
          strstr(r->out, "list them with gm finance queue --bank icbc."),
      "%s", r->out);
}
END_TEST

/* Yen have no decimals: typed and shown whole. */
START_TEST(yen_are_whole) {
  run_result *r;
  OK(gm("--as", FT_CENTRE, "finance", "bank", "create", "icbc", "--name",
        "ICBC Huzhou", NULL));
  r = gm("--as", FT_CENTRE, "finance", "product", "create", "icbc-yen",
         "--bank", "icbc", "--name", "Yen loan", "--amount", "100000-50000000",
         "--tenor", "12-60", "--rate", "1-2", "--fee", "0.8", "--classes", "3",
         "--currency", "JPY", NULL);
  OK(r);
  ck_assert_msg(strstr(r->out, "100000-50000000 JPY"), "%s", r->out);
  char code[19];
  ft_code("91330502MA2B3C4D5", code);
  OK(gm("--as", "acme", "finance", "enterprise", "register", "--code", code,
        "--name", "Acme", "--region", "330502", "--size", "small", "--contact",
        "Li Wei", NULL));
  r = gm("--as", "acme", "finance", "refer", "--amount", "5000000",
         "--currency", "JPY", "--tenor", "36", "--item", "3.2", "--use", "PV",
         "--description", "PV", "--consent-share", NULL);
  OK(r);
  ck_assert_msg(strstr(r->out, "5000000 JPY") && !strstr(r->out, "5000000.00"),
                "%s", r->out);
  ck_assert_str_eq(ft_redis_field("R00000001", "amt"), "500000000");
  r = gm("--as", "acme", "finance", "referrals", NULL);
  OK(r);
  ck_assert_msg(strstr(r->out, "5000000 JPY"), "%s", r->out);
}
END_TEST

/* KWD has 3 decimals and CLF 4: an amount is shown with them (the last
   ones 0, finance carries hundredths) and can be typed back as shown; a
   digit past the hundredths that is not 0 is refused. */
START_TEST(kwd_amounts_typed_as_shown) {
  run_result *r;
  OK(gm("--as", FT_CENTRE, "finance", "bank", "create", "icbc", "--name",
        "ICBC Huzhou", NULL));
  r = gm("--as", FT_CENTRE, "finance", "product", "create", "icbc-kwd",
         "--bank", "icbc", "--name", "Dinar loan", "--amount", "1.500-2000.250",
         "--tenor", "12-60", "--rate", "1-2", "--fee", "0.8", "--classes", "3",
         "--currency", "KWD", NULL);
  OK(r);
  ck_assert_msg(strstr(r->out, "1.500-2000.250 KWD"), "%s", r->out);
  r = gm("--as", FT_CENTRE, "finance", "product", "create", "icbc-clf",
         "--bank", "icbc", "--name", "UF loan", "--amount", "2.5000-10.0000",
         "--tenor", "12-60", "--rate", "1-2", "--fee", "0.8", "--classes", "3",
         "--currency", "CLF", NULL);
  OK(r);
  ck_assert_msg(strstr(r->out, "2.5000-10.0000 CLF"), "%s", r->out);
  r = gm("--as", FT_CENTRE, "finance", "product", "create", "icbc-kwd2",
         "--bank", "icbc", "--name", "n", "--amount", "1.501-2", "--tenor",
         "1-2", "--rate", "3-4", "--fee", "1", "--classes", "3", "--currency",
         "KWD", NULL);
  REFUSED(r,
          "the smallest --amount 1.501 has 3 decimals; finance carries "
          "amounts to 0.01 KWD");
  r = gm("--as", FT_CENTRE, "finance", "product", "create", "icbc-kwd3",
         "--bank", "icbc", "--name", "n", "--amount", "1.5000-2", "--tenor",
         "1-2", "--rate", "3-4", "--fee", "1", "--classes", "3", "--currency",
         "KWD", NULL);
  REFUSED(r, "the smallest --amount 1.5000 has 4 decimals");
  /* An approval typed as the referral shows it: approve reads the
     referral's currency (before, 1000.500 was refused as 3 decimals). */
  OK(gm("--as", FT_CENTRE, "finance", "bank", "link", "icbc1", "icbc", NULL));
  OK(gm("--as", "icbc1", "finance", "bank", "join", "icbc", NULL));
  char code[19];
  ft_code("91330502MA2B3C4D5", code);
  OK(gm("--as", "acme", "finance", "enterprise", "register", "--code", code,
        "--name", "Acme", "--region", "330502", "--size", "small", "--contact",
        "Li Wei", NULL));
  OK(gm("--as", "acme", "finance", "refer", "--amount", "1000.500",
        "--currency", "KWD", "--tenor", "36", "--item", "3.2", "--use", "PV",
        "--description", "PV", "--consent-share", NULL));
  OK(gm("--as", "icbc1", "finance", "claim", "R00000001", "--product",
        "icbc-kwd", NULL));
  OK(gm("--as", "acme", "finance", "pick", "R00000001", "icbc", NULL));
  OK(gm("--as", "icbc1", "finance", "contact", "R00000001", NULL));
  r = gm("--as", "icbc1", "finance", "approve", "R00000001", "--amount",
         "1000.500", "--rate", "1.5", "--tenor", "36", NULL);
  OK(r);
  ck_assert_str_eq(ft_redis_field("R00000001", "aamt"), "100050");
  r = gm("--as", "icbc1", "finance", "fund", "R00000001", "--amount",
         "1000.505", NULL);
  REFUSED(r,
          "--amount 1000.505 has 3 decimals; finance carries amounts to "
          "0.01 KWD");
}
END_TEST

int main(void) {
  Suite *s = suite_create("finance cli");
  TCase *tc = tcase_create("cli");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, a_whole_session_in_yuan_percent_and_tonnes);
  tcase_add_test(tc, mistakes_are_refused_in_the_units_typed);
  tcase_add_test(tc, bank_list_shows_offers_and_inactive_staff);
  tcase_add_test(tc, yen_are_whole);
  tcase_add_test(tc, kwd_amounts_typed_as_shown);
  tcase_add_test(tc, a_product_with_too_many_regions_is_refused_not_cut);
  tcase_add_test(tc, show_says_back_in_the_pool_only_when_it_is);
  tcase_add_test(tc, the_calendar_notes_only_years_it_lacks);
  suite_add_tcase(s, tc);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
