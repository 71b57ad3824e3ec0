/*
 * `gm carbon`: the price and quantity parsing of the carbon plugin's
 * friendly commands (cli.c, compiled into this test so its private
 * functions are called directly, with gm's own gm_cli_api table), the
 * refusals a user sees from the real gm before anything is sent, and
 * sessions against a private gmd + redis-server run through the built gm,
 * which finds the commands in the built gm_carbon.so.
 */
#include <check.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <greenmarket/text.h>

#include "../cli.c"
#include "commands.h"
#include "gmd_fixture.h"
#include "redis_fixture.h"
#include "run_gm.h"

/* ---- parsing and formatting ---- */

static int64_t yuan_ok(const char *text, int64_t max) {
  int64_t fen = -1;
  char err[256] = "";
  ck_assert_msg(
      gm__carbon_parse_yuan("price", text, max, &fen, err, sizeof err) == 0,
      "refused \"%s\": %s", text, err);
  return fen;
}

/* The refusal message of `text`, which must contain `want`. */
static void yuan_bad(const char *text, int64_t max, const char *want) {
  int64_t fen = 12345;
  char err[256] = "";
  ck_assert_msg(
      gm__carbon_parse_yuan("price", text, max, &fen, err, sizeof err) == -1,
      "accepted \"%s\" as %lld fen", text, (long long)fen);
  ck_assert_msg(fen == 12345, "\"%s\" wrote the output on failure", text);
  ck_assert_msg(strstr(err, want), "\"%s\": message \"%s\" lacks \"%s\"",
                text ? text : "(null)", err, want);
  char why[128];
  ck_assert_msg(gm_text_check(err, 0, why, sizeof why) == 0,
                "message \"%s\" %s", err, why);
}

/* 100 characters of Chinese (300 bytes): a message echoing them whole
   would be cut by its 256-byte buffer inside one. */
static const char *chinese(char out[301]) {
  out[0] = '\0';
  for (int i = 0; i < 100; i++) strcat(out, "\xe5\x85\x83"); /* 元 */
  return out;
}

START_TEST(prices_in_yuan_become_fen) {
  ck_assert_int_eq(yuan_ok("0.01", GM_CARBON_MAX_PRICE), 1);
  ck_assert_int_eq(yuan_ok("85", GM_CARBON_MAX_PRICE), 8500);
  ck_assert_int_eq(yuan_ok("85.5", GM_CARBON_MAX_PRICE), 8550);
  ck_assert_int_eq(yuan_ok("85.50", GM_CARBON_MAX_PRICE), 8550);
  ck_assert_int_eq(yuan_ok("85.05", GM_CARBON_MAX_PRICE), 8505);
  ck_assert_int_eq(yuan_ok("0.1", GM_CARBON_MAX_PRICE), 10);
  ck_assert_int_eq(yuan_ok("007.70", GM_CARBON_MAX_PRICE), 770);
  ck_assert_int_eq(yuan_ok("1000000", GM_CARBON_MAX_PRICE),
                   GM_CARBON_MAX_PRICE);
  /* Cash amounts go to the balance cap, far above the price cap. */
  ck_assert_int_eq(yuan_ok("40000000000000", GM_CARBON_MAX_CASH),
                   GM_CARBON_MAX_CASH);
  /* The int64 edge itself, exactly. */
  ck_assert_int_eq(yuan_ok("92233720368547758.07", INT64_MAX), INT64_MAX);
  ck_assert_int_eq(yuan_ok("92233720368547758", INT64_MAX),
                   INT64_C(9223372036854775800));
}
END_TEST

START_TEST(bad_prices_are_refused_with_the_reason) {
  yuan_bad("85.505", GM_CARBON_MAX_PRICE, "0.01 yuan tick");
  yuan_bad("85.500", GM_CARBON_MAX_PRICE, "at most two decimals");
  yuan_bad("0.001", GM_CARBON_MAX_PRICE, "0.01 yuan tick");
  yuan_bad("-1", GM_CARBON_MAX_PRICE, "negative");
  yuan_bad("-0.01", GM_CARBON_MAX_PRICE, "negative");
  yuan_bad("abc", GM_CARBON_MAX_PRICE, "not an amount of yuan");
  yuan_bad("85,50", GM_CARBON_MAX_PRICE, "not an amount of yuan");
  yuan_bad("8 5", GM_CARBON_MAX_PRICE, "not an amount of yuan");
  yuan_bad("1e3", GM_CARBON_MAX_PRICE, "not an amount of yuan");
  yuan_bad("+5", GM_CARBON_MAX_PRICE, "not an amount of yuan");
  yuan_bad("85.", GM_CARBON_MAX_PRICE, "not an amount of yuan");
  yuan_bad(".5", GM_CARBON_MAX_PRICE, "not an amount of yuan");
  yuan_bad("1.2.3", GM_CARBON_MAX_PRICE, "not an amount of yuan");
  yuan_bad("", GM_CARBON_MAX_PRICE, "empty");
  yuan_bad(NULL, GM_CARBON_MAX_PRICE, "empty");
  yuan_bad("0", GM_CARBON_MAX_PRICE, "at least 0.01");
  yuan_bad("0.00", GM_CARBON_MAX_PRICE, "at least 0.01");
  yuan_bad("1000000.01", GM_CARBON_MAX_PRICE, "above the largest accepted");
  yuan_bad("1000000.01", GM_CARBON_MAX_PRICE, "1000000.00 yuan");
  yuan_bad("99999999999999999999999999", GM_CARBON_MAX_PRICE,
           "above the largest accepted");
  /* Past int64: refused, never wrapped around. */
  yuan_bad("92233720368547758.08", INT64_MAX, "above the largest accepted");
  yuan_bad("92233720368547759", INT64_MAX, "above the largest accepted");
  yuan_bad("184467440737095516.16", INT64_MAX, "above the largest accepted");
  /* Echoed cut between characters, saying how long it was. */
  char big[301];
  yuan_bad(chinese(big), GM_CARBON_MAX_PRICE,
           "\xe5\x85\x83... (300 bytes)\" is not an amount of yuan");
}
END_TEST

START_TEST(fen_print_as_yuan) {
  char buf[32];
  ck_assert_str_eq(gm__carbon_format_price(8550, buf), "85.50");
  ck_assert_str_eq(gm__carbon_format_price(8500, buf), "85.00");
  ck_assert_str_eq(gm__carbon_format_price(1, buf), "0.01");
  ck_assert_str_eq(gm__carbon_format_price(0, buf), "0.00");
  ck_assert_str_eq(gm__carbon_format_price(-5, buf), "-0.05");
  ck_assert_str_eq(gm__carbon_format_price(INT64_MAX, buf),
                   "92233720368547758.07");
  ck_assert_str_eq(gm__carbon_format_price(INT64_MIN, buf),
                   "-92233720368547758.08");
  /* Formatting what was parsed gives the canonical text back. */
  ck_assert_str_eq(
      gm__carbon_format_price(yuan_ok("85.5", GM_CARBON_MAX_PRICE), buf),
      "85.50");
  /* No price (no trade yet) shows as "-", not as a price of zero. */
  ck_assert_str_eq(gm__carbon_px(0, buf), "-");
}
END_TEST

START_TEST(quantities_are_whole_tonnes) {
  int64_t t = -1;
  char err[256];
  ck_assert_int_eq(
      gm__carbon_parse_tonnes("quantity", "1", 10, &t, err, sizeof err), 0);
  ck_assert_int_eq(t, 1);
  ck_assert_int_eq(
      gm__carbon_parse_tonnes("quantity", "10000000", GM_CARBON_MAX_QTY, &t,
                              err, sizeof err),
      0);
  ck_assert_int_eq(t, GM_CARBON_MAX_QTY);
  static const struct {
    const char *text, *want;
  } bad[] = {{"0", "must be 1..10000000 t"},
             {"10000001", "must be 1..10000000 t"},
             {"99999999999999999999999", "must be 1..10000000 t"},
             {"-5", "negative"},
             {"1.5", "not a whole number"},
             {"100t", "not a whole number"},
             {"", "not a whole number"},
             {"x", "not a whole number"}};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    err[0] = '\0';
    ck_assert_msg(
        gm__carbon_parse_tonnes("quantity", bad[i].text, GM_CARBON_MAX_QTY, &t,
                                err, sizeof err) == -1,
        "accepted \"%s\"", bad[i].text);
    ck_assert_msg(strstr(err, bad[i].want), "\"%s\": \"%s\" lacks \"%s\"",
                  bad[i].text, err, bad[i].want);
  }
  char big[301], why[128];
  ck_assert_int_eq(
      gm__carbon_parse_tonnes("quantity", chinese(big), GM_CARBON_MAX_QTY, &t,
                              err, sizeof err),
      -1);
  ck_assert_msg(gm_text_check(err, 0, why, sizeof why) == 0, "\"%s\" %s", err,
                why);
  ck_assert_msg(strstr(err,
                       "\xe5\x85\x83... (300 bytes)\" is not a whole "
                       "number of tonnes"),
                "%s", err);
}
END_TEST

START_TEST(dates_are_shanghai_days) {
  int64_t ms;
  /* 2026-11-24 00:00 in Shanghai is 2026-11-23 16:00 UTC. */
  ck_assert_int_eq(
      gm__carbon_parse_when(gm_cli_services(), "2026-11-24", 0, &ms), 0);
  ck_assert_int_eq(ms, INT64_C(1795449600000));
  /* --to DATE includes the day: it ends where the next one starts. */
  ck_assert_int_eq(
      gm__carbon_parse_when(gm_cli_services(), "2026-11-24", 1, &ms), 0);
  ck_assert_int_eq(ms, INT64_C(1795536000000));
  ck_assert_int_eq(
      gm__carbon_parse_when(gm_cli_services(), "2024-02-29", 0, &ms), 0);
  ck_assert_int_eq(ms, INT64_C(1709136000000));
  ck_assert_int_eq(gm__carbon_parse_when(gm_cli_services(),
                                         "2026-11-24T09:30:00+08:00", 0, &ms),
                   0);
  ck_assert_int_eq(ms, INT64_C(1795449600000) + 570 * 60000);
  ck_assert_int_eq(
      gm__carbon_parse_when(gm_cli_services(), "2026-13-01", 0, &ms), -1);
  ck_assert_int_eq(
      gm__carbon_parse_when(gm_cli_services(), "yesterday", 0, &ms), -1);
  char buf[32];
  ck_assert_str_eq(gm__carbon_time(INT64_C(1795449600000) + 570 * 60000, buf),
                   "2026-11-24 09:30:00");
}
END_TEST

/* ---- the gm binary ---- */

/* Runs the built gm against `endpoint` with the NULL-terminated words. */
static run_result *gm(const char *endpoint, ...) {
  char *args[64];
  int n = 0;
  args[n++] = "--plugin-dir";
  args[n++] = (char *)GM_BUILD_PLUGIN_DIR;
  va_list ap;
  va_start(ap, endpoint);
  for (char *a; (a = va_arg(ap, char *)) && n < 63;) args[n++] = a;
  va_end(ap);
  args[n] = NULL;
  return gm_test_run_gm(endpoint, args);
}

#define GM_OK(r)                                                        \
  ck_assert_msg((r)->code == 0, "gm exited %d\nstdout: %s\nstderr: %s", \
                (r)->code, (r)->out, (r)->err)

START_TEST(refusals_come_before_the_broker) {
  /* A dead endpoint: had gm sent anything it would exit 2, not 1. */
  char dead[64];
  snprintf(dead, sizeof dead, "tcp://127.0.0.1:1");
  static const struct {
    const char *args[10], *want;
  } cases[] = {
      {{"buy", "CEA-2025", "1", "@", "85.505"}, "0.01 yuan tick"},
      {{"buy", "CEA-2025", "1", "@", "abc"}, "not an amount of yuan"},
      {{"sell", "CEA-2025", "1", "@", "2000000"}, "above the largest"},
      {{"buy", "CEA-2025", "1.5", "@", "85"}, "not a whole number"},
      {{"buy", "CEA-2025", "0", "@", "85"}, "must be 1..10000000 t"},
      {{"buy", "CEA-2025", "1", "@", "-1"}, "-1 is negative"},
      {{"buy", "CEA-2025", "1", "@", "-85"}, "price -85 is negative"},
      {{"buy", "CEA-2025", "-1", "@", "85"},
       "quantity -1 is negative; give whole tonnes like 100"},
      {{"sell", "CEA-2025", "-1@85"}, "quantity -1@85 is negative; give whole"},
      {{"block", "offer", "CEA-2025", "sell", "-100000", "@", "86", "--to",
        "bob"},
       "quantity -100000 is negative; give whole tonnes"},
      {{"buy", "CEA-2025", "-1", "--market"}, "-1 is negative: prices and"},
      {{"buy", "CEA-2025", "1", "@", "85", "--gtd",
        "2026-12-04T16:40:00+25:00"},
       "offsets -14:00..+14:00"},
      {{"buy", "CEA-2025", "1", "@", "85", "--gtd",
        "2026-12-04T16:40:00+05:99"},
       "offsets -14:00..+14:00"},
      {{"buy", "CEA-2025", "1", "@", "85", "--gtd", "2026-12-04T16:40:00"},
       "a date 2026-11-24 (the order expires at the end of that day"},
      {{"cancel", "--all", "--buy", "--sell"}, "--buy or --sell, not both"},
      {{"cancel", "CEA-2025:000000000001", "--sell"},
       "choose a side for --all"},
      {{"trades", "--from", "2026-12-05", "--to", "2026-12-01"},
       "--from 2026-12-05 is not before --to 2026-12-01"},
      {{"trades", "--from", "2026-12-04T10:00:00+99:00"}, "dates YYYY-MM-DD"},
      {{"buy", "CEA-2025", "1", "--market", "--post-only"}, "choose one"},
      /* ms 0 is 1970: said in the option's terms, not as a missing
         expire_ms (session 22's walk). */
      {{"buy", "CEA-2025", "1", "@", "85", "--gtd", "0"},
       "--gtd 0 is not in the future (it is 1970-01-01T08:00:00+08:00 or "
       "earlier); give the time the order expires"},
      {{"buy", "CEA-2025", "1", "@", "85", "--gtd", "1969-12-31T00:00:00Z"},
       "--gtd 1969-12-31T00:00:00Z is not in the future"},
      {{"buy", "CEA-2025", "1", "@", "85", "--ioc", "--post-only"},
       "--post-only never trades on arrival; an --ioc order only trades on "
       "arrival: choose one"},
      {{"sell", "CEA-2025", "1", "@", "85", "--post-only", "--fok"},
       "an --fok order only trades"},
      {{"sell", "CEA-2025", "100"}, "needs SYMBOL QTY @ PRICE"},
      {{"replace", "CEA-2025:000000000001"}, "--price and/or --qty"},
      {{"book"}, "needs a SYMBOL"},
      {{"statement", "CEA-2025"}, "--from DATE"},
      {{"trades", "--from", "last week"}, "dates YYYY-MM-DD"},
      {{"deposit", "alice", "CEA-2025", "--cash", "1.001"}, "0.01 yuan tick"},
      {{"deposit", "alice", "CEA-2025"}, "one of --cash YUAN or"},
      {{"block", "offer", "CEA-2025", "hold", "100000", "@", "86", "--to",
        "bob"},
       "buy or sell (your side of the trade), not \"hold\""},
      {{"block", "offer", "CEA-2025", "sell", "100000", "@", "86"},
       "--to PARTICIPANT"},
      {{"block", "offer", "CEA-2025", "sell", "100000@86.001", "--to", "bob"},
       "0.01 yuan tick"},
      {{"block", "offer", "CEA-2025", "sell", "0", "@", "86", "--to", "bob"},
       "must be 1..10000000 t"},
      {{"block", "list", "CEA-2025", "CCER-2025"},
       "unexpected argument \"CCER-2025\""},
      {{"block", "show"}, "use list, offer, accept, reject or withdraw"},
      {{"block"}, "needs list, offer, accept, reject or withdraw"},
      {{"block", "accept"}, "block accept needs an OFFER_ID"},
      {{"block", "withdraw", "X:B1", "X:B2"}, "unexpected argument \"X:B2\""},
      {{"close", "CEA-2025", "CCER-2025"}, "unexpected argument"},
      {{"reconcile", "--wait", "0"}, "number of seconds, 1..3600"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    const char *const *a = cases[i].args;
    run_result *r =
        gm(dead, "--timeout", "200", "--retries", "1", "carbon", a[0], a[1],
           a[2], a[3], a[4], a[5], a[6], a[7], a[8], a[9], NULL);
    ck_assert_msg(r->code == 1, "case %zu (%s %s): exit %d, stderr %s", i, a[0],
                  a[1] ? a[1] : "", r->code, r->err);
    ck_assert_msg(strstr(r->err, cases[i].want),
                  "case %zu: stderr \"%s\" lacks \"%s\"", i, r->err,
                  cases[i].want);
    ck_assert_msg(!strstr(r->err, "UNAVAILABLE"), "case %zu sent: %s", i,
                  r->err);
  }
  /* A valid order does go to the (dead) broker: exit 2. */
  run_result *r = gm(dead, "--timeout", "200", "--retries", "1", "carbon",
                     "buy", "CEA-2025", "1", "@", "85", "--ioc", NULL);
  ck_assert_msg(r->code == 2, "exit %d: %s", r->code, r->err);
  /* A typo of a friendly command gets it suggested. */
  r = gm(dead, "carbon", "buyy", NULL);
  ck_assert_int_eq(r->code, 1);
  ck_assert_msg(strstr(r->err, "did you mean \"buy\"?"), "%s", r->err);
  /* A text option's value may start with '-' and a digit: not a number. */
  r = gm(dead, "--timeout", "200", "--retries", "1", "carbon", "buy",
         "CEA-2025", "1", "@", "85", "--client-id", "-1", NULL);
  ck_assert_msg(r->code == 2, "exit %d: %s", r->code, r->err);
  r = gm(dead, "--timeout", "200", "--retries", "1", "carbon", "halt",
         "CEA-2025", "--reason", "-10%-band-breach", NULL);
  ck_assert_msg(r->code == 2, "exit %d: %s", r->code, r->err);
  r = gm(dead, "--timeout", "200", "--retries", "1", "carbon", "halt",
         "CEA-2025", "--reas", "-10%-band-breach", NULL); /* abbreviated */
  ck_assert_msg(r->code == 2, "exit %d: %s", r->code, r->err);
  /* Help lists the friendly commands, then the plugin's methods. */
  r = gm(dead, "carbon", "--help", NULL);
  GM_OK(r);
  const char *buy = strstr(r->out, "gm carbon buy SYMBOL QTY @ PRICE");
  const char *method = strstr(r->out, "order.place");
  ck_assert_msg(buy && method && buy < method, "%s", r->out);
  r = gm(dead, "carbon", "statement", "--help", NULL);
  GM_OK(r);
  ck_assert_msg(strstr(r->out, "--out FILE.csv"), "%s", r->out);
  /* The new commands are listed, and reconcile's exit status is told. */
  r = gm(dead, "carbon", "--help", NULL);
  GM_OK(r);
  ck_assert_msg(strstr(r->out,
                       "gm carbon block offer SYMBOL buy|sell QTY @ "
                       "PRICE --to PARTICIPANT") &&
                    strstr(r->out, "gm carbon block withdraw OFFER_ID") &&
                    strstr(r->out, "gm carbon block list [SYMBOL]") &&
                    strstr(r->out, "gm carbon close [SYMBOL]") &&
                    strstr(r->out, "gm carbon reconcile [SYMBOL]"),
                "%s", r->out);
  r = gm(dead, "carbon", "reconcile", "--help", NULL);
  GM_OK(r);
  ck_assert_msg(strstr(r->out, "status 0: no difference, 1: differences"), "%s",
                r->out);
  r = gm(dead, "carbon", "block", "accept", "--help", NULL);
  GM_OK(r);
  ck_assert_msg(strstr(r->out, "usage: gm carbon block offer"), "%s", r->out);
}
END_TEST

/* Runs gm until its stdout contains `want` (settlement lags by a batch). */
static run_result *gm_until(const char *want, const char *endpoint,
                            const char *who) {
  run_result *r = NULL;
  for (int i = 0; i < 100; i++) {
    r = gm(endpoint, "--as", who, "carbon", "trades", "CEA-2025", NULL);
    if (r->code == 0 && strstr(r->out, want)) break;
    usleep(50000);
  }
  return r;
}

START_TEST(a_session_against_gmd) {
  gm_test_redis *redis = gm_test_redis_start();
  gm_test_gmd *g = gm_test_gmd_start(
      redis, GM_BUILD_PLUGIN_DIR,
      "[testing]\nclock = manual\n[plugins]\nload = carbon\n");
  const char *ep = gm_test_gmd_endpoint(g);
  char outfile[600];
  snprintf(outfile, sizeof outfile, "%s/statement.csv",
           gm_test_redis_dir(redis));

  /* A Tuesday morning in Shanghai, inside the listing session. */
  run_result *r =
      gm(ep, "--as", "root", "clock", "set", "2026-11-24T10:00:00+08:00", NULL);
  GM_OK(r);
  r = gm(ep, "--as", "root", "admin", "register", "alice", "--roles", "buyer",
         NULL);
  GM_OK(r);
  r = gm(ep, "--as", "root", "admin", "register", "bob", "--roles", "seller",
         NULL);
  GM_OK(r);
  r = gm(ep, "--as", "root", "carbon", "create", "CEA-2025", "--reference",
         "85.5", "--name", "CEA 2025", NULL);
  GM_OK(r);
  ck_assert_msg(
      strstr(r->out, "85.50 CNY") && strstr(r->out, "09:30-11:30,13:00-15:00"),
      "%s", r->out);
  /* A typo: gm names the market the broker has loaded. */
  r = gm(ep, "carbn", "book", "CEA-2025", NULL);
  ck_assert_int_eq(r->code, 1);
  ck_assert_msg(strstr(r->err,
                       "error: no command or market \"carbn\"; did you mean "
                       "\"carbon\"?\nloaded markets: carbon (gm markets "
                       "lists them)"),
                "%s", r->err);
  /* A second instrument where nobody has an account: holdings skip it. */
  r = gm(ep, "--as", "root", "carbon", "create", "CCER-2025", "--reference",
         "62", "--kind", "CCER", NULL);
  GM_OK(r);
  r = gm(ep, "--as", "root", "carbon", "deposit", "alice", "CEA-2025", "--cash",
         "10000.5", "--reference", "bank 1", NULL);
  GM_OK(r);
  ck_assert_msg(strstr(r->out, "10000.50"), "%s", r->out);
  r = gm(ep, "--as", "root", "carbon", "deposit", "bob", "CEA-2025",
         "--allowances", "500", NULL);
  GM_OK(r);

  r = gm(ep, "--as", "bob", "carbon", "sell", "CEA-2025", "100", "@", "85.50",
         NULL);
  GM_OK(r);
  ck_assert_msg(strstr(r->out, "sell 100 t @ 85.50 GTC") &&
                    strstr(r->out, "open: 0 t filled, 100 t open"),
                "%s", r->out);
  r = gm(ep, "--as", "bob", "carbon", "sell", "CEA-2025", "30@86.1", NULL);
  GM_OK(r);
  r = gm(ep, "--as", "alice", "carbon", "buy", "CEA-2025", "60", "@85.5", NULL);
  GM_OK(r);
  ck_assert_msg(strstr(r->out, "filled: 60 t filled, 0 t open") &&
                    strstr(r->out, "5130.00") &&
                    strstr(r->out, "2026-11-24 10:00:00"),
                "%s", r->out);
  r = gm(ep, "--as", "alice", "carbon", "buy", "CEA-2025", "10", "@", "84",
         "--day", NULL);
  GM_OK(r);
  ck_assert_msg(strstr(r->out, "expires    2026-11-24 15:00:00"), "%s", r->out);

  /* The book, aligned: best bid 84.00 x 10 against 85.50 x 40, 86.10 x 30. */
  r = gm(ep, "carbon", "book", "CEA-2025", NULL);
  GM_OK(r);
  ck_assert_str_eq(r->out,
                   "CEA-2025\n"
                   "BID QTY    BID  |    ASK  ASK QTY\n"
                   "     10  84.00  |  85.50       40\n"
                   "                |  86.10       30\n");
  r = gm(ep, "carbon", "book", "CEA-2025", "--depth", "1", "--json", NULL);
  GM_OK(r);
  ck_assert_msg(strstr(r->out, "\"price\": 8550") && !strstr(r->out, "8610"),
                "%s", r->out);

  /* The trade is settled into the ledger, then listed in yuan. */
  r = gm_until("5130.00", ep, "alice");
  GM_OK(r);
  ck_assert_msg(strstr(r->out,
                       "TIME                 SYMBOL    PRICE  QTY   "
                       "AMOUNT  BUYER  SELLER  TRADE") &&
                    strstr(r->out,
                           "2026-11-24 10:00:00  CEA-2025  85.50   "
                           "60  5130.00  alice  -       "
                           "CEA-2025:T"),
                "%s", r->out);
  ck_assert_msg(!strstr(r->out, "more follow"), "%s", r->out);
  /* The last page of a range that reaches now says how to see the trades
     that settle later: nothing more has settled since. */
  static const char later[] = "is shown by the same command with --after ";
  const char *at_later = strstr(r->out, later);
  ck_assert_msg(at_later, "%s", r->out);
  char resume[256];
  snprintf(resume, sizeof resume, "%s", at_later + strlen(later));
  resume[strcspn(resume, "\n")] = '\0';
  r = gm(ep, "--as", "alice", "carbon", "trades", "CEA-2025", "--after", resume,
         NULL);
  GM_OK(r);
  ck_assert_msg(strstr(r->out, "no settled trades (") && strstr(r->out, later),
                "%s", r->out);
  /* A page exactly as long as --limit with nothing after it says no more
     (the market looks one trade ahead; paging through follows next_cursor:
     test_market.c, trades_page_exactly_once). */
  r = gm(ep, "--as", "alice", "carbon", "trades", "--limit", "1", NULL);
  GM_OK(r);
  ck_assert_msg(strstr(r->out, "5130.00") && !strstr(r->out, "more follow"),
                "%s", r->out);
  /* A cursor that is not one the market handed out: refused, saying how to
     go on. */
  r = gm(ep, "--as", "alice", "carbon", "trades", "--after", "12.CEA-2025:T1.x",
         NULL);
  ck_assert_int_eq(r->code, 1);
  ck_assert_msg(strstr(r->err,
                       "error: INVALID_ARGUMENT: --after \"12.CEA-2025:T1.x\" "
                       "is not a cursor this command printed for the same "
                       "SYMBOL, --from and --to (as the same user); copy the "
                       "--after CURSOR of the last line printed, unchanged, "
                       "into the same command, or leave --after out to start "
                       "again from the first page") &&
                    !strstr(r->err, "from_ms"),
                "%s", r->err);
  /* A real cursor with another --from: the same, in the options' terms. */
  r = gm(ep, "--as", "alice", "carbon", "trades", "CEA-2025", "--from",
         "2026-11-01", "--after", resume, NULL);
  ck_assert_int_eq(r->code, 1);
  ck_assert_msg(strstr(r->err,
                       "is not a cursor this command printed for the "
                       "same SYMBOL, --from and --to") &&
                    !strstr(r->err, "to_ms"),
                "%s", r->err);
  r = gm(ep, "--as", "alice", "carbon", "trades", "--from", "2026-11-25", NULL);
  GM_OK(r);
  ck_assert_msg(strstr(r->out, "no settled trades ("), "%s", r->out);
  /* A range that ended still gets the cursor of the trades of it that
     settle later (settlement runs behind the fills): a user reconciling a
     past range page by page has it too. */
  static const char ended[] =
      "one of the range that settles later "
      "(settlement can run behind the fills) is shown "
      "by the same command with --after ";
  r = gm(ep, "--as", "alice", "carbon", "trades", "--from", "2020-01-01",
         "--to", "2020-01-02", NULL);
  GM_OK(r);
  ck_assert_msg(!strncmp(r->out, "no settled trades in that range\n", 32) &&
                    strstr(r->out, ended),
                "%s", r->out);
  char past[256];
  snprintf(past, sizeof past, "%s", strstr(r->out, ended) + strlen(ended));
  past[strcspn(past, "\n")] = '\0';
  r = gm(ep, "--as", "alice", "carbon", "trades", "--from", "2020-01-01",
         "--to", "2020-01-02", "--after", past, NULL);
  GM_OK(r);
  ck_assert_msg(strstr(r->out, "no settled trades in that range\n") &&
                    strstr(r->out, ended),
                "%s", r->out);
  /* The trade of 2026-11-24, in a range that ended (this machine's clock
     is past it): listed, then the cursor for late ones. */
  r = gm(ep, "--as", "alice", "carbon", "trades", "--from", "2026-11-24",
         "--to", "2026-11-24", NULL);
  GM_OK(r);
  ck_assert_msg(strstr(r->out, "5130.00") && strstr(r->out, ended), "%s",
                r->out);
  /* Statement dates: the rule that failed. */
  r = gm(ep, "--as", "alice", "carbon", "statement", "CEA-2025", "--from",
         "1900-01-01", "--to", "1910-01-01", NULL);
  ck_assert_int_eq(r->code, 1);
  ck_assert_msg(strstr(r->err, "from 1900-01-01 is before 1970-01-01"), "%s",
                r->err);
  r = gm(ep, "--as", "alice", "carbon", "statement", "CEA-2025", "--from",
         "2026-02-30", NULL);
  ck_assert_int_eq(r->code, 1);
  ck_assert_msg(strstr(r->err,
                       "from 2026-02-30 does not exist (month 02 of "
                       "2026 has no day 30)"),
                "%s", r->err);
  r = gm(ep, "--as", "alice", "carbon", "statement", "CEA-2025", "--from",
         "2026-12-05", "--to", "2026-12-01", NULL);
  ck_assert_int_eq(r->code, 1);
  ck_assert_msg(strstr(r->err, "from 2026-12-05 is after to 2026-12-01"), "%s",
                r->err);

  /* Holdings: 60 t bought today are locked; the bid freezes 840.00. */
  r = gm(ep, "--as", "alice", "carbon", "holdings", NULL);
  GM_OK(r);
  ck_assert_msg(strstr(r->out,
                       "alice        CEA-2025  4030.50       840.00 "
                       "          0       0      60"),
                "%s", r->out);
  ck_assert_msg(!strstr(r->out, "CCER-2025") && !r->err[0], "%s%s", r->out,
                r->err);
  r = gm(ep, "--as", "alice", "carbon", "holdings", "CCER-2025", NULL);
  ck_assert_int_eq(r->code, 1);
  ck_assert_msg(strstr(r->err, "NOT_FOUND"), "%s", r->err);
  r = gm(ep, "--as", "alice", "carbon", "stats", "CEA-2025", NULL);
  GM_OK(r);
  ck_assert_msg(strstr(r->out, "last         85.50\n") &&
                    strstr(r->out, "volume       60 t\n") &&
                    strstr(r->out, "close        -\n"),
                "%s", r->out);

  r = gm(ep, "--as", "alice", "carbon", "statement", "CEA-2025", "--from",
         "2026-11-24", "--out", outfile, NULL);
  GM_OK(r);
  ck_assert_msg(strstr(r->out, "wrote 1 trade to"), "%s", r->out);
  FILE *f = fopen(outfile, "r");
  char csv[1024] = "";
  ck_assert_ptr_nonnull(f);
  size_t n = fread(csv, 1, sizeof csv - 1, f);
  csv[n] = '\0';
  fclose(f);
  ck_assert_msg(strstr(csv,
                       ",2026-11-24T10:00:00+08:00,CEA-2025,buy,85.50,60,"
                       "5130.00,,"),
                "%s", csv);

  /* Orders, replace, cancel all. */
  r = gm(ep, "--as", "bob", "carbon", "orders", NULL);
  GM_OK(r);
  ck_assert_msg(strstr(r->out, "sell  85.50  100      60    40  GTC"), "%s",
                r->out);
  r = gm(ep, "--as", "bob", "carbon", "replace", "CEA-2025:000000000002",
         "--qty", "20", NULL);
  GM_OK(r);
  ck_assert_msg(strstr(r->out, "CEA-2025:000000000002") &&
                    strstr(r->out, "sell 20 t @ 86.10"),
                "%s", r->out);
  r = gm(ep, "--as", "bob", "carbon", "cancel", "--all", NULL);
  GM_OK(r);
  ck_assert_msg(strstr(r->out, "2 orders cancelled"), "%s", r->out);
  r = gm(ep, "--as", "bob", "carbon", "orders", "CEA-2025", NULL);
  GM_OK(r);
  ck_assert_str_eq(r->out, "no open orders\n");

  /* --gtd: a date alone expires at the end of that day; a past time is
     refused naming --gtd, the time given and now. */
  r = gm(ep, "--as", "alice", "carbon", "buy", "CEA-2025", "1", "@", "84",
         "--gtd", "2026-11-25", NULL);
  GM_OK(r);
  ck_assert_msg(strstr(r->out, "expires    2026-11-26 00:00:00"), "%s", r->out);
  r = gm(ep, "--as", "alice", "carbon", "buy", "CEA-2025", "1", "@", "84",
         "--gtd", "2026-11-24T01:00:00Z", NULL);
  ck_assert_int_eq(r->code, 1);
  ck_assert_msg(strstr(r->err,
                       "--gtd 2026-11-24T01:00:00Z "
                       "(2026-11-24T09:00:00+08:00) is not in the "
                       "future: it is now 2026-11-24T10:00:00+08:00"),
                "%s", r->err);
  /* The market's own refusal reaches the user with exit 1. */
  r = gm(ep, "--as", "alice", "carbon", "buy", "CEA-2025", "1", "@", "99",
         NULL);
  ck_assert_int_eq(r->code, 1);
  ck_assert_msg(strstr(r->err, "band 76.95-94.05"), "%s", r->err);
  /* Words that are not friendly commands take the generic path. */
  r = gm(ep, "carbon", "market.stats", "symbol=CEA-2025", NULL);
  GM_OK(r);
  ck_assert_msg(strstr(r->out, "volume") && strstr(r->out, "60"), "%s", r->out);

  gm_test_gmd_stop(&g);
  gm_test_redis_stop(&redis);
}
END_TEST

/* Runs gm as `who` and asserts it was refused with `want` on stderr. */
static void gm_refused(const char *ep, const char *want, const char *who, ...) {
  char *args[32];
  int n = 0;
  args[n++] = "--plugin-dir";
  args[n++] = (char *)GM_BUILD_PLUGIN_DIR;
  args[n++] = "--as";
  args[n++] = (char *)who;
  va_list ap;
  va_start(ap, who);
  for (char *a; (a = va_arg(ap, char *)) && n < 31;) args[n++] = a;
  va_end(ap);
  args[n] = NULL;
  run_result *r = gm_test_run_gm(ep, args);
  ck_assert_msg(r->code == 1, "%s %s: exit %d\nstdout: %s\nstderr: %s", args[4],
                args[5], r->code, r->out, r->err);
  ck_assert_msg(strstr(r->err, want), "stderr \"%s\" lacks \"%s\"", r->err,
                want);
  ck_assert_msg(!r->out[0], "a refusal printed \"%s\"", r->out);
}

START_TEST(block_trades_close_and_reconcile) {
  gm_test_redis *redis = gm_test_redis_start();
  /* Deadlines are polled once an hour (the first poll, at start-up, finds
   * none), so `gm carbon close` is the one that closes the day and reports
   * it, not the instrument's close deadline. */
  gm_test_gmd *g =
      gm_test_gmd_start(redis, GM_BUILD_PLUGIN_DIR,
                        "[testing]\nclock = manual\n[plugins]\nload = carbon\n"
                        "[deadlines]\npoll_ms = 3600000\n");
  const char *ep = gm_test_gmd_endpoint(g);

  /* A Tuesday afternoon in Shanghai: the block session is open. */
  run_result *r =
      gm(ep, "--as", "root", "clock", "set", "2026-11-24T13:30:00+08:00", NULL);
  GM_OK(r);
  r = gm(ep, "--as", "root", "admin", "register", "alice", "--roles", "buyer",
         NULL);
  GM_OK(r);
  r = gm(ep, "--as", "root", "admin", "register", "bob", "--roles", "seller",
         NULL);
  GM_OK(r);
  /* An empty session list is refused, not taken as the defaults. */
  gm_refused(ep, "--sessions is empty: give at least one HH:MM-HH:MM range",
             "root", "carbon", "create", "CEA-2025", "--reference", "85.50",
             "--sessions", "", NULL);
  r = gm(ep, "--as", "root", "carbon", "create", "CEA-2025", "--reference",
         "85.50", NULL);
  GM_OK(r);
  r = gm(ep, "--as", "root", "carbon", "deposit", "alice", "CEA-2025", "--cash",
         "20000000", NULL);
  GM_OK(r);
  r = gm(ep, "--as", "root", "carbon", "deposit", "bob", "CEA-2025",
         "--allowances", "200100", NULL);
  GM_OK(r);

  /* Bob offers 100000 t to Alice: an aligned row, his tonnes frozen. */
  r = gm(ep, "--as", "bob", "carbon", "block", "offer", "CEA-2025", "sell",
         "100000", "@", "86", "--to", "alice", NULL);
  GM_OK(r);
  ck_assert_str_eq(
      r->out,
      "OFFER                   FROM  SIDE  TO        QTY  PRICE      AMOUNT  "
      "STATE  TRADE\n"
      "CEA-2025:B000000000001  bob   sell  alice  100000  86.00  8600000.00  "
      "open   -\n"
      "bob's 100000 t stay frozen until alice accepts or rejects the offer, "
      "bob withdraws it, or today's block session ends\n");
  r = gm(ep, "--as", "bob", "carbon", "holdings", "CEA-2025", NULL);
  GM_OK(r);
  ck_assert_msg(strstr(r->out, "0.00      100100  100000       0\n"), "%s",
                r->out);
  /* Alice finds the offer to her without being told its id; a third
   * participant sees nothing, an admin sees it too. */
  static const char offers[] =
      "OFFER                   FROM  SIDE  TO        QTY  PRICE      AMOUNT  "
      "MADE\n"
      "CEA-2025:B000000000001  bob   sell  alice  100000  86.00  8600000.00  "
      "2026-11-24 13:30:00\n";
  r = gm(ep, "--as", "alice", "carbon", "block", "list", NULL);
  GM_OK(r);
  ck_assert_str_eq(r->out, offers);
  r = gm(ep, "--as", "root", "carbon", "block", "list", "CEA-2025", NULL);
  GM_OK(r);
  ck_assert_str_eq(r->out, offers);
  r = gm(ep, "--as", "root", "admin", "register", "carol", "--roles", "buyer",
         NULL);
  GM_OK(r);
  r = gm(ep, "--as", "carol", "carbon", "block", "list", NULL);
  GM_OK(r);
  ck_assert_str_eq(r->out, "no open block offers\n");
  r = gm(ep, "--as", "alice", "--json", "carbon", "block", "list", NULL);
  GM_OK(r);
  ck_assert_msg(strstr(r->out, "\"offerer\": \"bob\"") &&
                    strstr(r->out, "\"state\": \"OFFER_OPEN\""),
                "%s", r->out);

  /* Refusals come from the market, with its reason, and change nothing. */
  gm_refused(ep, "NOT_FOUND: no open block offer CEA-2025:B0000000000ff",
             "alice", "carbon", "block", "accept", "CEA-2025:B0000000000ff",
             NULL);
  gm_refused(ep, "PERMISSION_DENIED: only alice may accept", "bob", "carbon",
             "block", "accept", "CEA-2025:B000000000001", NULL);
  gm_refused(ep,
             "INVALID_ARGUMENT: a block offer needs at least 100000 t in "
             "lots of 1 t; 99999 t given",
             "bob", "carbon", "block", "offer", "CEA-2025", "sell", "99999",
             "@", "86", "--to", "alice", NULL);
  gm_refused(ep, "outside the block band 59.85-111.15", "bob", "carbon",
             "block", "offer", "CEA-2025", "sell", "100000", "@", "120", "--to",
             "alice", NULL);

  /* Alice accepts: one block trade, listed for both sides by name. */
  r = gm(ep, "--as", "alice", "carbon", "block", "accept",
         "CEA-2025:B000000000001", NULL);
  GM_OK(r);
  ck_assert_msg(
      strstr(r->out, "8600000.00  accepted  CEA-2025:T000000000001\n") &&
          strstr(r->out, "accepted by alice: one block trade at 86.00"),
      "%s", r->out);
  static const char block_row[] =
      "2026-11-24 13:30:00  CEA-2025  86.00  100000  8600000.00  alice  bob  "
      "   CEA-2025:T000000000001 (block)\n";
  r = gm_until("(block)", ep, "alice");
  GM_OK(r);
  ck_assert_msg(strstr(r->out, block_row), "%s", r->out);
  r = gm_until("(block)", ep, "bob");
  GM_OK(r);
  ck_assert_msg(strstr(r->out, block_row), "%s", r->out);

  /* Alice bids for 100000 t; Bob rejects: her cash is released. */
  r = gm(ep, "--as", "alice", "carbon", "block", "offer", "CEA-2025", "buy",
         "100000@85", "--to", "bob", NULL);
  GM_OK(r);
  ck_assert_msg(strstr(r->out, "alice's 8500000.00 yuan stay frozen"), "%s",
                r->out);
  r = gm(ep, "--as", "alice", "carbon", "holdings", "CEA-2025", NULL);
  GM_OK(r);
  ck_assert_msg(strstr(r->out, "2900000.00   8500000.00"), "%s", r->out);
  r = gm(ep, "--as", "bob", "carbon", "block", "reject",
         "CEA-2025:B000000000002", NULL);
  GM_OK(r);
  ck_assert_msg(strstr(r->out, "rejected  -\n") &&
                    strstr(r->out,
                           "rejected by bob: alice's 8500000.00 yuan are "
                           "released\n"),
                "%s", r->out);
  r = gm(ep, "--as", "alice", "carbon", "holdings", "CEA-2025", NULL);
  GM_OK(r);
  ck_assert_msg(strstr(r->out,
                       "alice        CEA-2025  11400000.00         0.00  "
                       "         0       0  100000\n"),
                "%s", r->out);

  /* Bob offers again and withdraws: his tonnes are released. */
  r = gm(ep, "--as", "bob", "carbon", "block", "offer", "CEA-2025", "sell",
         "100000", "@87", "--to", "alice", NULL);
  GM_OK(r);
  /* Alice, its counterparty, cannot withdraw it: she is told to reject. */
  gm_refused(ep,
             "FAILED_PRECONDITION: only bob, who made block offer "
             "CEA-2025:B000000000003, may withdraw it; to turn down an offer "
             "made to you, reject it",
             "alice", "carbon", "block", "withdraw", "CEA-2025:B000000000003",
             NULL);
  /* Nor may Bob, its offerer, reject it: he is told to withdraw (his
   * reject withdrew it). The offer stays open. */
  gm_refused(ep,
             "FAILED_PRECONDITION: block offer CEA-2025:B000000000003 is your "
             "own offer to alice; only alice may reject it: to take it back, "
             "withdraw it",
             "bob", "carbon", "block", "reject", "CEA-2025:B000000000003",
             NULL);
  r = gm(ep, "--as", "bob", "carbon", "block", "withdraw",
         "CEA-2025:B000000000003", NULL);
  GM_OK(r);
  ck_assert_msg(strstr(r->out, "withdrawn  -\n") &&
                    strstr(r->out,
                           "withdrawn by bob: bob's 100000 t are "
                           "released\n"),
                "%s", r->out);
  r = gm(ep, "--as", "bob", "carbon", "holdings", "CEA-2025", NULL);
  GM_OK(r);
  ck_assert_msg(strstr(r->out,
                       "8600000.00         0.00      100100       0 "
                       "      0\n"),
                "%s", r->out);
  gm_refused(ep, "NOT_FOUND: no open block offer CEA-2025:B000000000003", "bob",
             "carbon", "block", "withdraw", "CEA-2025:B000000000003", NULL);
  r = gm(ep, "--as", "bob", "carbon", "block", "list", NULL);
  GM_OK(r);
  ck_assert_str_eq(r->out, "no open block offers\n");

  /* Listing trades at 85.50 x 10 and 86.10 x 30 (VWAP 85.95); a DAY bid
   * and an open block bid are left for the close to expire. */
  r = gm(ep, "--as", "bob", "carbon", "sell", "CEA-2025", "10@85.50", NULL);
  GM_OK(r);
  r = gm(ep, "--as", "alice", "carbon", "buy", "CEA-2025", "10@85.50", NULL);
  GM_OK(r);
  r = gm(ep, "--as", "bob", "carbon", "sell", "CEA-2025", "30@86.10", NULL);
  GM_OK(r);
  r = gm(ep, "--as", "alice", "carbon", "buy", "CEA-2025", "30@86.10", NULL);
  GM_OK(r);
  r = gm(ep, "--as", "alice", "carbon", "buy", "CEA-2025", "5@85", "--day",
         NULL);
  GM_OK(r);
  r = gm(ep, "--as", "alice", "carbon", "block", "offer", "CEA-2025", "buy",
         "100000@84", "--to", "bob", NULL);
  GM_OK(r);

  /* Before the day ends there is nothing to close. */
  r = gm(ep, "--as", "root", "carbon", "close", NULL);
  GM_OK(r);
  ck_assert_str_eq(r->out,
                   "no trading day has closed yet: a day closes when its "
                   "last listing session ends\n");

  /* A clean market reconciles: exit 0. */
  r = gm(ep, "--as", "root", "carbon", "reconcile", "--wait", "10", NULL);
  GM_OK(r);
  ck_assert_msg(strstr(r->out, "accounts compared  2\n") &&
                    strstr(r->out,
                           "no differences: the ledger and the live "
                           "holdings agree\n"),
                "%s", r->out);

  /* 15:30: the close takes the listing trades only (not the block). */
  r = gm(ep, "--as", "root", "clock", "set", "2026-11-24T15:30:00+08:00", NULL);
  GM_OK(r);
  r = gm(ep, "--as", "root", "carbon", "close", NULL);
  GM_OK(r);
  ck_assert_str_eq(r->out,
                   "SYMBOL    DAY         CLOSE  VOLUME  BASIS                "
                   "   EXPIRED  STATUS\n"
                   "CEA-2025  2026-11-24  85.95      40  VWAP of listing "
                   "trades        2  closed now\n");
  r = gm(ep, "--as", "root", "carbon", "close", "CEA-2025", NULL);
  GM_OK(r);
  /* Closed before: reported as closed, volume and basis included. */
  ck_assert_str_eq(r->out,
                   "SYMBOL    DAY         CLOSE  VOLUME  BASIS                "
                   "   EXPIRED  STATUS\n"
                   "CEA-2025  2026-11-24  85.95      40  VWAP of listing "
                   "trades        0  closed before\n");
  r = gm(ep, "--as", "root", "--json", "carbon", "close", "CEA-2025", NULL);
  GM_OK(r);
  ck_assert_msg(
      strstr(r->out, "\"close\": 8595") && strstr(r->out, "\"already\": true"),
      "%s", r->out);
  gm_refused(ep, "PERMISSION_DENIED", "alice", "carbon", "close", NULL);
  /* The expired DAY bid and block bid released Alice's cash. */
  r = gm(ep, "--as", "alice", "carbon", "holdings", "CEA-2025", NULL);
  GM_OK(r);
  ck_assert_msg(strstr(r->out,
                       "alice        CEA-2025  11396562.00         0.00  "
                       "         0       0  100040\n"),
                "%s", r->out);

  /* Live holdings changed behind the ledger's back: reconcile says where,
   * in yuan and tonnes, and exits 1. */
  redisContext *rc = gm_test_redis_connect(redis);
  freeReplyObject(
      gm_test_redis_cmd(rc, "HINCRBY gm:{carbon:CEA-2025}:a:alice c 100"));
  freeReplyObject(
      gm_test_redis_cmd(rc, "HINCRBY gm:{carbon:CEA-2025}:a:bob al -3"));
  redisFree(rc);
  r = gm(ep, "--as", "root", "carbon", "reconcile", "CEA-2025", NULL);
  ck_assert_msg(r->code == 1, "exit %d: %s%s", r->code, r->out, r->err);
  ck_assert_msg(
      strstr(r->out,
             "SYMBOL    PARTICIPANT  ASSET                LEDGER         LIVE  "
             "LIVE - LEDGER\n") &&
          strstr(r->out,
                 "CEA-2025  alice        cash (yuan)     11396562.00  "
                 "11396563.00          +1.00\n") &&
          strstr(r->out,
                 "CEA-2025  bob          allowances (t)       100060  "
                 "     100057             -3\n") &&
          strstr(r->out, "\n2 differences\n") && !r->err[0],
      "%s%s", r->out, r->err);
  r = gm(ep, "--as", "root", "--json", "carbon", "reconcile", NULL);
  ck_assert_msg(r->code == 1, "exit %d: %s%s", r->code, r->out, r->err);
  ck_assert_msg(strstr(r->out, "\"live\": 1139656300") &&
                    strstr(r->out, "\"ledger\": 1139656200"),
                "%s", r->out);
  gm_refused(ep, "PERMISSION_DENIED: carbon records.reconcile needs role admin",
             "alice", "carbon", "reconcile", NULL);

  gm_test_gmd_stop(&g);
  gm_test_redis_stop(&redis);
}
END_TEST

/* Counts the lines of `text`. */
static int lines(const char *text) {
  int n = 0;
  for (; *text; text++) n += *text == '\n';
  return n;
}

/* Requests the broker has served for the carbon market (gm stats). */
static long carbon_requests(const char *ep) {
  run_result *r = gm(ep, "--json", "stats", NULL);
  GM_OK(r);
  const char *m = strstr(r->out, "\"market\": \"carbon\"");
  ck_assert_msg(m, "no carbon market in gm stats: %.300s", r->out);
  const char *q = strstr(m, "\"requests\": ");
  ck_assert_msg(q, "no request count in gm stats: %.300s", r->out);
  return atol(q + strlen("\"requests\": "));
}

/*
 * gm carbon trades past one page: three trades in one millisecond (the
 * manual clock stands still), two a page; gm prints the --after cursor that
 * gets the rest, and each trade shows on exactly one page.
 */
START_TEST(trades_go_past_one_page_with_after) {
  gm_test_redis *redis = gm_test_redis_start();
  gm_test_gmd *g = gm_test_gmd_start(
      redis, GM_BUILD_PLUGIN_DIR,
      "[testing]\nclock = manual\n[plugins]\nload = carbon\n");
  const char *ep = gm_test_gmd_endpoint(g);
  run_result *r =
      gm(ep, "--as", "root", "clock", "set", "2026-11-24T10:00:00+08:00", NULL);
  GM_OK(r);
  r = gm(ep, "--as", "root", "carbon", "create", "CEA-2025", "--reference",
         "85.50", NULL);
  GM_OK(r);
  r = gm(ep, "--as", "root", "carbon", "deposit", "alice", "CEA-2025", "--cash",
         "10000", NULL);
  GM_OK(r);
  r = gm(ep, "--as", "root", "carbon", "deposit", "bob", "CEA-2025",
         "--allowances", "3", NULL);
  GM_OK(r);
  for (int i = 0; i < 3; i++) {
    r = gm(ep, "--as", "bob", "carbon", "sell", "CEA-2025", "1@85.5", NULL);
    GM_OK(r);
  }
  r = gm(ep, "--as", "alice", "carbon", "buy", "CEA-2025", "3@85.5", NULL);
  GM_OK(r);
  r = gm_until("CEA-2025:T000000000003", ep, "alice");
  GM_OK(r);

  static const char more[] =
      "2 trade(s) shown, the oldest first, and more follow: for the next "
      "page run the same command with --after ";
  r = gm(ep, "--as", "alice", "carbon", "trades", "CEA-2025", "--limit", "2",
         NULL);
  GM_OK(r);
  const char *at = strstr(r->out, more);
  ck_assert_msg(at && strstr(r->out, "CEA-2025:T000000000001") &&
                    strstr(r->out, "CEA-2025:T000000000002") &&
                    !strstr(r->out, "CEA-2025:T000000000003"),
                "%s", r->out);
  char cursor[256];
  snprintf(cursor, sizeof cursor, "%s", at + strlen(more));
  cursor[strcspn(cursor, "\n")] = '\0';
  ck_assert_msg(cursor[0], "%s", r->out);
  r = gm(ep, "--as", "alice", "carbon", "trades", "CEA-2025", "--limit", "2",
         "--after", cursor, NULL);
  GM_OK(r);
  ck_assert_msg(strstr(r->out, "CEA-2025:T000000000003") &&
                    !strstr(r->out, "CEA-2025:T000000000002") &&
                    !strstr(r->out, "more follow"),
                "%s", r->out);
  /* The cursor with another range is refused, saying how to go on. */
  r = gm(ep, "--as", "alice", "carbon", "trades", "CEA-2025", "--from",
         "2026-11-24", "--after", cursor, NULL);
  ck_assert_int_eq(r->code, 1);
  ck_assert_msg(strstr(r->err,
                       "is not a cursor this command printed for the same "
                       "SYMBOL, --from and --to") &&
                    strstr(r->err, "start again from the first page"),
                "%s", r->err);

  gm_test_gmd_stop(&g);
  gm_test_redis_stop(&redis);
}
END_TEST

START_TEST(orders_and_cancel_all_go_past_one_page) {
  gm_test_redis *redis = gm_test_redis_start();
  /* Mass cancel looks at 40 orders per call: 150 need several calls. */
  gm_test_gmd *g =
      gm_test_gmd_start(redis, GM_BUILD_PLUGIN_DIR,
                        "[testing]\nclock = manual\n[plugins]\nload = carbon\n"
                        "[market.carbon]\nmass_cancel_max = 40\n");
  const char *ep = gm_test_gmd_endpoint(g);
  run_result *r =
      gm(ep, "--as", "root", "clock", "set", "2026-11-24T10:00:00+08:00", NULL);
  GM_OK(r);
  r = gm(ep, "--as", "root", "carbon", "create", "CEA-2025", "--reference",
         "85.50", NULL);
  GM_OK(r);
  r = gm(ep, "--as", "root", "carbon", "deposit", "carol", "CEA-2025",
         "--allowances", "1000", NULL);
  GM_OK(r);
  r = gm(ep, "--as", "root", "carbon", "deposit", "carol", "CEA-2025", "--cash",
         "10000", NULL);
  GM_OK(r);

  /* 150 asks and 10 bids, placed in this process (a gm process per order
   * would take most of the test's time). */
  gm_test_conn *conn = gm_test_conn_new(ep, NULL, NULL, NULL);
  for (int i = 0; i < 160; i++) {
    Gm__Carbon__PlaceRequest req = GM__CARBON__PLACE_REQUEST__INIT;
    char idem[32];
    req.symbol = "CEA-2025";
    req.side =
        i < 150 ? GM__CARBON__SIDE__SIDE_SELL : GM__CARBON__SIDE__SIDE_BUY;
    req.price = i < 150 ? 8600 + i % 50 : 8000 + i % 10;
    req.quantity = 1;
    snprintf(idem, sizeof idem, "place-%d", i);
    Gm__Reply *rep =
        gm_test_call(conn, "carol", "carbon", "order.place", idem, &req.base);
    ck_assert_msg(rep && rep->status == GM__STATUS__OK, "order %d: %s", i,
                  rep ? rep->message : "no reply");
    Gm__Carbon__PlaceReply *placed =
        gm__carbon__place_reply__unpack(NULL, rep->body.len, rep->body.data);
    ck_assert_ptr_nonnull(placed);
    ck_assert_int_eq(placed->order->state, GM__CARBON__ORDER_STATE__STATE_OPEN);
    gm__carbon__place_reply__free_unpacked(placed, NULL);
    gm__reply__free_unpacked(rep, NULL);
  }
  gm_test_conn_destroy(&conn);

  /* Every open order is listed, in one table: a header and 160 rows. */
  r = gm(ep, "--as", "carol", "carbon", "orders", "CEA-2025", NULL);
  GM_OK(r);
  ck_assert_int_eq(lines(r->out), 161);
  ck_assert_msg(strstr(r->out, "CEA-2025:0000000000a0  buy   80.09"), "%s",
                r->out);
  r = gm(ep, "--as", "carol", "carbon", "orders", NULL);
  GM_OK(r);
  ck_assert_int_eq(lines(r->out), 161);
  /* gm asks for pages of 1000: the 160 come in one order.list call (the
   * broker's count of carbon requests), not in pages of the default 100. */
  long before = carbon_requests(ep);
  r = gm(ep, "--as", "carol", "carbon", "orders", "CEA-2025", NULL);
  GM_OK(r);
  ck_assert_int_eq(lines(r->out), 161);
  ck_assert_int_eq(carbon_requests(ep) - before, 1);

  /* One side, then the rest, each over several calls. */
  r = gm(ep, "--as", "carol", "carbon", "cancel", "--all", "CEA-2025", "--sell",
         NULL);
  GM_OK(r);
  ck_assert_msg(strstr(r->out, "\n150 orders cancelled\n"), "%s", r->out);
  r = gm(ep, "--as", "carol", "carbon", "orders", NULL);
  GM_OK(r);
  ck_assert_int_eq(lines(r->out), 11);
  ck_assert_msg(!strstr(r->out, "sell"), "%s", r->out);
  r = gm(ep, "--as", "carol", "carbon", "cancel", "--all", NULL);
  GM_OK(r);
  ck_assert_msg(strstr(r->out, "\n10 orders cancelled\n"), "%s", r->out);
  r = gm(ep, "--as", "carol", "carbon", "orders", NULL);
  GM_OK(r);
  ck_assert_str_eq(r->out, "no open orders\n");
  r = gm(ep, "--as", "carol", "carbon", "holdings", "CEA-2025", NULL);
  GM_OK(r);
  ck_assert_msg(strstr(r->out, "10000.00         0.00        1000       0"),
                "%s", r->out);

  gm_test_gmd_stop(&g);
  gm_test_redis_stop(&redis);
}
END_TEST

/*
 * gm watch in development mode with --as: the public events and the
 * participant's own private events, never another participant's (the
 * broker keeps dev-mode subscriptions as asked, so gm asks for no more).
 */
START_TEST(watch_as_shows_only_your_own_private_events) {
  gm_test_redis *redis = gm_test_redis_start();
  gm_test_gmd *g =
      gm_test_gmd_start(redis, GM_BUILD_PLUGIN_DIR,
                        "[testing]\nclock = manual\n[plugins]\nload = carbon\n"
                        "[metrics]\nlisten = 127.0.0.1:0\n");
  const char *ep = gm_test_gmd_endpoint(g);
  const char *feed = gm_test_gmd_feed(g);
  GM_OK(gm(ep, "--as", "root", "clock", "set", "2026-11-24T10:00:00+08:00",
           NULL));
  GM_OK(gm(ep, "--as", "ops", "carbon", "create", "CEA-W", "--reference",
           "85.00", NULL));
  GM_OK(gm(ep, "--as", "ops", "carbon", "deposit", "alice", "CEA-W", "--cash",
           "10000", NULL));
  GM_OK(gm(ep, "--as", "ops", "carbon", "deposit", "bob", "CEA-W",
           "--allowances", "100", NULL));
  /* Orders come once the watch is subscribed (the broker's /metrics count
     its subscriptions: in development mode gm watch --as subscribes the 26
     public prefixes "a" to "z" and alice's private audience, all on the
     private feed since protocol 18): alice's, then bob's. */
  double subs = gm_test_gmd_metric(g, "greenmarket_feed_subscribes_total");
  double priv =
      gm_test_gmd_metric(g, "greenmarket_feed_private_subscribes_total");
  ck_assert(subs >= 0 && priv >= 0);
  pid_t child = fork();
  ck_assert_int_ge(child, 0);
  if (child == 0) {
    int ready = 0;
    for (int i = 0; i < 1000 && !ready; i++) {
      ready =
          gm_test_gmd_metric(g, "greenmarket_feed_subscribes_total") >= subs &&
          gm_test_gmd_metric(g, "greenmarket_feed_private_subscribes_total") >=
              priv + 27;
      if (!ready) nanosleep(&(struct timespec){0, 10000000L}, NULL);
    }
    if (!ready) _exit(3); /* the watch never subscribed */
    run_result *r = gm(ep, "--as", "alice", "carbon", "buy", "CEA-W", "10", "@",
                       "84.00", NULL);
    r = r->code ? r
                : gm(ep, "--as", "bob", "carbon", "sell", "CEA-W", "10", "@",
                     "86.00", NULL);
    _exit(r->code ? 1 : 0);
  }
  /* alice's order event and two book events: bob's order event falls
     between the books, so it would be among the three if it came. */
  run_result *r =
      gm(ep, "--as", "alice", "--feed", feed, "watch", "--count", "3", NULL);
  int status;
  waitpid(child, &status, 0);
  ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
                "the orders' child exited %d (3: the watch's subscriptions "
                "never reached the feed; 1: an order was refused)",
                WIFEXITED(status) ? WEXITSTATUS(status) : -1);
  GM_OK(r);
  ck_assert_msg(strstr(r->out, "@p:alice carbon.order"), "%s", r->out);
  ck_assert_msg(!strstr(r->out, "@p:bob"), "%s", r->out);
  ck_assert_msg(strstr(r->out, "carbon.book"), "%s", r->out);
  gm_test_gmd_stop(&g);
  gm_test_redis_stop(&redis);
}
END_TEST

/* The instruments table: a Chinese name keeps the columns after it in
   line, and a halt reason stored before the text rule (control characters
   written straight into Redis here) shows escaped on its one line. */
START_TEST(instrument_rows_stay_in_line) {
  gm_test_redis *redis = gm_test_redis_start();
  gm_test_gmd *g = gm_test_gmd_start(
      redis, GM_BUILD_PLUGIN_DIR,
      "[testing]\nclock = manual\n[plugins]\nload = carbon\n");
  const char *ep = gm_test_gmd_endpoint(g);
  run_result *r = gm(ep, "--as", "root", "carbon", "create", "CEA-2025",
                     "--reference", "85.5", "--name", "全国碳排放权配额", NULL);
  GM_OK(r);
  r = gm(ep, "--as", "root", "carbon", "create", "CCER-2025", "--reference",
         "62", "--kind", "CCER", "--name", "CCER 2025", NULL);
  GM_OK(r);
  r = gm(ep, "--as", "root", "carbon", "halt", "CCER-2025", "--reason", "audit",
         NULL);
  GM_OK(r);
  redisContext *rc = gm_test_redis_connect(redis);
  freeReplyObject(gm_test_redis_cmd(
      rc, "HSET gm:{carbon:CCER-2025}:i hreason %s", "old\x1b[2J\nreason"));
  redisFree(rc);
  r = gm(ep, "carbon", "instruments", NULL);
  GM_OK(r);
  /* Three lines (header and two rows), each NAME starting in the same
     display column: the Chinese name is 8 characters, 16 columns. */
  int lines = 0;
  for (const char *p = r->out; *p; p++) lines += *p == '\n';
  ck_assert_msg(lines == 3, "%s", r->out);
  ck_assert_msg(strstr(r->out, "halted: old\\x1B[2J\\nreason"), "%s", r->out);
  ck_assert_msg(!strchr(r->out, '\x1b'), "%s", r->out);
  gm_test_gmd_stop(&g);
  gm_test_redis_stop(&redis);
}
END_TEST

int main(void) {
  Suite *s = suite_create("carbon_cli");
  TCase *tc = tcase_create("parse");
  tcase_add_test(tc, prices_in_yuan_become_fen);
  tcase_add_test(tc, bad_prices_are_refused_with_the_reason);
  tcase_add_test(tc, fen_print_as_yuan);
  tcase_add_test(tc, quantities_are_whole_tonnes);
  tcase_add_test(tc, dates_are_shanghai_days);
  suite_add_tcase(s, tc);
  tc = tcase_create("gm");
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, refusals_come_before_the_broker);
  tcase_add_test(tc, a_session_against_gmd);
  tcase_add_test(tc, instrument_rows_stay_in_line);
  tcase_add_test(tc, block_trades_close_and_reconcile);
  tcase_add_test(tc, orders_and_cancel_all_go_past_one_page);
  tcase_add_test(tc, trades_go_past_one_page_with_after);
  tcase_add_test(tc, watch_as_shows_only_your_own_private_events);
  suite_add_tcase(s, tc);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
