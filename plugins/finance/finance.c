/*
 * The finance market: green-loan referrals.  An enterprise (or the centre
 * on its behalf) refers a financing need; it is screened against the Green
 * Industry Guidance Catalogue and the banks' products, offered to the
 * banks whose products fit, claimed by the first of them, given by the
 * enterprise to one, and moved by that bank to funding or a reasoned
 * decline, on deadlines (finance.md).
 *
 * Live state is in Redis: one hash tag per referral (every decision about
 * it is one atomic script step: the claim race is decided there), one per
 * bank queue, one per enterprise, and the directory.  Every transition is
 * an outbox entry settled into the finance_* tables.  finance.h lists the
 * files; this one holds the plugin's description, settings and lifecycle.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <greenmarket/date.h>
#include <greenmarket/iso4217.h>

#include "finance.h"

/* Plugin globals (finance.h): written in init only. */
const gm_host_api *host;
long finance__max_claims = 3;
long finance__pick_days = 5;
long finance__contact_days = 7;
long finance__decision_days = 30;
long finance__sync_ms = 5000;
long finance__offer_days = 7;
long finance__archive_days = 30;
long finance__archive_sweep_s = 600;
long finance__kill_before_index;
finance__entry *finance__builtin;
size_t finance__nbuiltin;
gm__finance_calendar finance__builtin_cal;
static size_t finance__cap;
static int64_t *finance__hol, *finance__work;
static size_t finance__nhol, finance__nwork;
static char *finance__sources[4]; /* constants + lib + script, per script */

const finance__entry *finance__builtin_find(const char *code) {
  for (size_t i = 0; code && i < finance__nbuiltin; i++)
    if (!strcmp(finance__builtin[i].code, code)) return &finance__builtin[i];
  return NULL;
}

static int finance__builtin_add(void *arg, const char *code, const char *parent,
                                const char *name, const char *name_en) {
  (void)arg;
  if (finance__nbuiltin == finance__cap) {
    size_t cap = finance__cap ? finance__cap * 2 : 64;
    finance__entry *n = realloc(finance__builtin, cap * sizeof *n);
    if (!n) return 1;
    finance__builtin = n;
    finance__cap = cap;
  }
  finance__entry *e = &finance__builtin[finance__nbuiltin++];
  snprintf(e->code, sizeof e->code, "%s", code);
  snprintf(e->parent, sizeof e->parent, "%s", parent);
  e->name = strdup(name);
  e->name_en = strdup(name_en);
  return !e->name || !e->name_en;
}

char finance__cal_years[FINANCE_CAL_YEARS];

char finance__cal_year(int year) {
  return year >= FINANCE_CAL_YEAR0 &&
                 year < FINANCE_CAL_YEAR0 + FINANCE_CAL_YEARS
             ? finance__cal_years[year - FINANCE_CAL_YEAR0]
             : 0;
}

static int finance__day_add(void *arg, int64_t day, char kind,
                            const char *note) {
  int working = kind == 'w';
  int64_t **a = working ? &finance__work : &finance__hol;
  size_t *n = working ? &finance__nwork : &finance__nhol;
  int y = gm_date_year(day);
  (void)arg;
  (void)note;
  if (y < FINANCE_CAL_YEAR0 || y >= FINANCE_CAL_YEAR0 + FINANCE_CAL_YEARS)
    return 1;
  /* One statutory day makes the year's arrangement unknown. */
  char *yk = &finance__cal_years[y - FINANCE_CAL_YEAR0];
  if (kind == 's' || !*yk) *yk = kind == 's' ? 's' : 'a';
  int64_t *g = realloc(*a, (*n + 1) * sizeof **a);
  if (!g) return 1;
  *a = g;
  (*a)[(*n)++] = day;
  return 0;
}

static int finance__cmp_day(const void *a, const void *b) {
  int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
  return x < y ? -1 : x > y;
}

/*
 * The constants the scripts share with C, generated from finance.proto
 * and the settings, so each is declared once (lib.lua reads them).
 */
static char *finance__constants(void) {
  char *buf = malloc(4096);
  size_t used = 0;
  if (!buf) return NULL;
  used += (size_t)snprintf(buf, 4096, "local ST = {");
  for (unsigned i = 0; i < gm__finance__state__descriptor.n_values; i++) {
    const ProtobufCEnumValue *v = &gm__finance__state__descriptor.values[i];
    if (v->value == 0) continue;
    char name[32];
    size_t n = 0;
    for (const char *c = v->name + 6; *c && n < sizeof name - 1; c++)
      name[n++] = (char)tolower((unsigned char)*c);
    name[n] = '\0';
    used += (size_t)snprintf(buf + used, 4096 - used, "%s%s = %d",
                             used > 12 ? ", " : "", name, v->value);
  }
  used += (size_t)snprintf(
      buf + used, 4096 - used,
      "}\nlocal SYNC_MS, TZ_MS, DAY_MS, MAX_PRODUCTS, OFFER_MS, ARCHIVE_MS = "
      "%ld, %lld, %lld, %d, %lld, %lld\n",
      finance__sync_ms, (long long)GM_FINANCE_TZ_MS,
      (long long)GM_FINANCE_DAY_MS, FINANCE_MAX_PRODUCTS,
      (long long)finance__offer_days * GM_FINANCE_DAY_MS,
      (long long)finance__archive_days * GM_FINANCE_DAY_MS);
  /* MINOR: the money codes whose minor unit is not 2 (iso4217.h). */
  used += (size_t)snprintf(buf + used, 4096 - used, "local MINOR = {");
  for (size_t i = 0; i < sizeof gm_iso4217_codes / sizeof *gm_iso4217_codes;
       i++) {
    int d = gm_iso4217_minor(gm_iso4217_codes[i]);
    if (d >= 0 && d != 2)
      used += (size_t)snprintf(buf + used, 4096 - used, "%s = %d, ",
                               gm_iso4217_codes[i], d);
  }
  used += (size_t)snprintf(buf + used, 4096 - used, "}\n");
  return buf;
}

static gm_status finance__init(gm_market *m, const gm_host_api *h) {
  static const struct {
    const char *name;
    const char *lua;
  } scripts[] = {{"dir", gm_lua_dir},
                 {"referral", gm_lua_referral},
                 {"queue", gm_lua_queue},
                 {"enterprise", gm_lua_enterprise}};
  char err[256];
  gm_status st;

  host = h;
  /* Deadlines and private events are the market: a host without them
     (older than this SDK) would never expire anything, or would have to
     publish referrals to everyone. */
  if (h->size <
          offsetof(gm_host_api, deadline_cancel) + sizeof h->deadline_cancel ||
      !h->deadline_register || !h->publish_to) {
    h->log(m, GM_LOG_ERROR,
           "this gmd has no deadlines or private events; finance needs a gmd "
           "built from the same SDK or later");
    return GM_UNIMPLEMENTED;
  }
  int bad = 0;
  bad |= gm_config_long(m, h, "finance", "max_claims", 3, 1, 20, "claims",
                        &finance__max_claims) != GM_OK;
  bad |= gm_config_long(m, h, "finance", "pick_working_days", 5, 1, 60,
                        "working days", &finance__pick_days) != GM_OK;
  bad |= gm_config_long(m, h, "finance", "contact_days", 7, 1, 90, "days",
                        &finance__contact_days) != GM_OK;
  /* No rule found gives one (finance.md): this project's choice, a month
     for a small business loan's review after the week to first contact. */
  bad |= gm_config_long(m, h, "finance", "decision_days", 30, 1, 365, "days",
                        &finance__decision_days) != GM_OK;
  bad |= gm_config_long(m, h, "finance", "sync_ms", 5000, 100, 3600000,
                        "milliseconds", &finance__sync_ms) != GM_OK;
  bad |= gm_config_long(m, h, "finance", "link_offer_days", 7, 1, 90, "days",
                        &finance__offer_days) != GM_OK;
  /* As procurement's: ended referrals stay live a month, the weeks in
     which the parties still look at them; their record stays in the
     ledger for good (archive.c). */
  bad |= gm_config_long(m, h, "finance", "archive_after_days", 30, 0, 3650,
                        "days", &finance__archive_days) != GM_OK;
  /* Ended referrals with no archive deadline (ended before the archive
     existed) are looked for this often (archive.c). */
  bad |= gm_config_long(m, h, "finance", "archive_sweep_s", 600, 1, 86400,
                        "seconds", &finance__archive_sweep_s) != GM_OK;
#ifdef GM_FAILURE_INJECTION
  bad |= gm_config_long(m, h, "finance", "test_kill_before_index", 0, 0, 1, "",
                        &finance__kill_before_index) != GM_OK;
  if (finance__kill_before_index)
    host->log(m, GM_LOG_WARN,
              "[market.finance] test_kill_before_index = 1: gmd kills itself "
              "after any request's referral step (failure injection for "
              "tests); remove it from the config");
#else
  if (host->config(m, "test_kill_before_index", NULL))
    host->log(m, GM_LOG_WARN,
              "[market.finance] test_kill_before_index is ignored: this build "
              "has no failure injection (cmake -DGM_FAILURE_INJECTION=ON)");
#endif
  if (bad) return GM_INVALID_ARGUMENT;

  if (gm__finance_catalogue_parse(gm_finance_catalogue_csv,
                                  finance__builtin_add, NULL, err,
                                  sizeof err) < 0 ||
      gm__finance_calendar_parse(gm_finance_calendar_csv, finance__day_add,
                                 NULL, err, sizeof err) < 0) {
    h->log(m, GM_LOG_ERROR, "the data shipped in the plugin is bad: %s", err);
    return GM_INTERNAL;
  }
  if (finance__nhol)
    qsort(finance__hol, finance__nhol, sizeof *finance__hol, finance__cmp_day);
  if (finance__nwork)
    qsort(finance__work, finance__nwork, sizeof *finance__work,
          finance__cmp_day);
  finance__builtin_cal = (gm__finance_calendar){finance__hol, finance__nhol,
                                                finance__work, finance__nwork};

  char *consts = finance__constants();
  if (!consts) return GM_RESOURCE_EXHAUSTED;
  for (size_t i = 0; i < sizeof scripts / sizeof scripts[0]; i++) {
    size_t a = strlen(consts), b = strlen(gm_lua_lib),
           c = strlen(scripts[i].lua);
    char *src = malloc(a + b + c + 2);
    if (!src) {
      free(consts);
      return GM_RESOURCE_EXHAUSTED;
    }
    memcpy(src, consts, a);
    memcpy(src + a, gm_lua_lib, b);
    src[a + b] = '\n';
    memcpy(src + a + b + 1, scripts[i].lua, c + 1);
    finance__sources[i] = src;
    const char *twin = finance__twin(scripts[i].name, NULL);
    if ((st = host->script_register(m, scripts[i].name, src)) == GM_OK &&
        twin && GM_HOST_HAS(host, script_register_flags)) {
      st = host->script_register_flags(m, twin, NULL, src, GM_SCRIPT_READ_ONLY);
      finance__twins = 1;
    }
    /* The archive's twin that runs over maxmemory: a host before session
       17 refuses the flag, and the archive then waits for room. */
    const char *free_twin = finance__free_twin(scripts[i].name, NULL);
    if (st == GM_OK && free_twin && GM_HOST_HAS(host, script_register_flags)) {
      if (host->script_register_flags(m, free_twin, NULL, src,
                                      GM_SCRIPT_ALLOW_OOM) == GM_OK)
        finance__free_twins = 1;
      else
        host->log(m, GM_LOG_WARN,
                  "this gmd cannot run scripts over maxmemory "
                  "(GM_SCRIPT_ALLOW_OOM): referrals are archived only while "
                  "Redis has room");
    }
    if (st != GM_OK) {
      free(consts);
      return st;
    }
  }
  free(consts);
  if ((st = finance__settle_init(m)) != GM_OK) return st;
  if ((st = host->deadline_register(m, "pick", finance__on_pick, NULL)) !=
          GM_OK ||
      (st = host->deadline_register(m, "contact", finance__on_contact, NULL)) !=
          GM_OK ||
      (st = host->deadline_register(m, "decision", finance__on_contact,
                                    NULL)) != GM_OK ||
      (st =
           host->timer_add(m, "decision-sweep", finance__archive_sweep_s * 1000,
                           finance__decision_sweep, NULL)) != GM_OK)
    return st;
  if ((st = host->deadline_register(m, "offer", finance__on_offer, NULL)) !=
          GM_OK ||
      (st = host->deadline_register(m, "archive", finance__on_archive, NULL)) !=
          GM_OK ||
      (st = host->timer_add(m, "archive-sweep", finance__archive_sweep_s * 1000,
                            finance__archive_sweep, NULL)) != GM_OK)
    return st;
  return host->deadline_register(m, "sync", finance__on_sync, NULL);
}

static void finance__shutdown(gm_market *m) {
  (void)m;
  for (size_t i = 0; i < sizeof finance__sources / sizeof finance__sources[0];
       i++) {
    free(finance__sources[i]);
    finance__sources[i] = NULL;
  }
  for (size_t i = 0; i < finance__nbuiltin; i++) {
    free(finance__builtin[i].name);
    free(finance__builtin[i].name_en);
  }
  free(finance__builtin);
  free(finance__hol);
  free(finance__work);
  finance__builtin = NULL;
  finance__hol = finance__work = NULL;
  finance__nbuiltin = finance__cap = finance__nhol = finance__nwork = 0;
}

#define FINANCE_MUT GM_METHOD_MUTATING

/* The roles the methods below name ("admin" is the broker's). */
static const gm_role finance__roles[] = {
    {"enterprise",
     "an enterprise with a green project: registers its profile, refers its "
     "financing needs, picks one of the banks that claimed, answers their "
     "questions, withdraws"},
    {"bank",
     "acts for one bank (linked by the centre): claims fitting referrals, "
     "records contact, reviews, approves, funds or declines the referral it "
     "holds; its queue and reports"},
    {"centre",
     "runs the green-finance platform: loads the catalogue and the calendar, "
     "creates banks and products, links bank staff, refers for enterprises, "
     "reads every report"},
};

static const gm_method finance__methods[] = {
    {"catalogue.load", &gm__finance__load_catalogue_request__descriptor,
     &gm__finance__catalogue__descriptor, finance__catalogue_load, FINANCE_MUT,
     "centre", "replace the Green Industry Guidance Catalogue in force"},
    {"catalogue.list", &gm__finance__catalogue_request__descriptor,
     &gm__finance__catalogue__descriptor, finance__catalogue_list, 0, NULL,
     "the catalogue in force: classes and sub-items with codes"},
    {"calendar.load", &gm__finance__load_calendar_request__descriptor,
     &gm__finance__calendar__descriptor, finance__calendar_load, FINANCE_MUT,
     "centre",
     "replace holidays and worked weekend days over a range of dates"},
    {"calendar.list", &gm__finance__calendar_request__descriptor,
     &gm__finance__calendar__descriptor, finance__calendar_list, 0, NULL,
     "holidays and worked weekend days in force"},
    {"bank.create", &gm__finance__create_bank_request__descriptor,
     &gm__finance__bank__descriptor, finance__bank_create, FINANCE_MUT,
     "centre", "create a bank"},
    {"bank.link", &gm__finance__link_request__descriptor,
     &gm__finance__bank__descriptor, finance__bank_link, FINANCE_MUT,
     "centre,bank",
     "the centre links a participant to the bank it acts for (or unlinks "
     "it); the participant, holding the bank role, accepts"},
    {"bank.list", &gm__finance__banks_request__descriptor,
     &gm__finance__bank_list__descriptor, finance__bank_list, 0, NULL,
     "the banks (their staff to the centre)"},
    {"product.create", &gm__finance__create_product_request__descriptor,
     &gm__finance__product__descriptor, finance__product_create, FINANCE_MUT,
     "centre", "create a bank's loan product"},
    {"product.retire", &gm__finance__product_request__descriptor,
     &gm__finance__product__descriptor, finance__product_retire, FINANCE_MUT,
     "centre", "retire a product: new referrals no longer fit it"},
    {"product.list", &gm__finance__products_request__descriptor,
     &gm__finance__product_list__descriptor, finance__product_list, 0, NULL,
     "the products, of one bank or all"},
    {"enterprise.register",
     &gm__finance__register_enterprise_request__descriptor,
     &gm__finance__enterprise__descriptor, finance__enterprise_register,
     FINANCE_MUT, "enterprise,centre",
     "register or update an enterprise's profile (credit code checked)"},
    {"enterprise.get", &gm__finance__enterprise_request__descriptor,
     &gm__finance__enterprise__descriptor, finance__enterprise_get, 0,
     "enterprise,centre", "an enterprise's profile"},
    {"referral.screen", &gm__finance__refer_request__descriptor,
     &gm__finance__screen_reply__descriptor, finance__referral_screen, 0,
     "enterprise,centre",
     "whether a financing need would be eligible, with every reason"},
    {"referral.create", &gm__finance__refer_request__descriptor,
     &gm__finance__referral__descriptor, finance__referral_create, FINANCE_MUT,
     "enterprise,centre",
     "refer a financing need: screened, then offered to the fitting banks"},
    {"referral.get", &gm__finance__referral_request__descriptor,
     &gm__finance__referral__descriptor, finance__referral_get, 0,
     "enterprise,bank,centre", "a referral, as much as you may see of it"},
    {"referral.list", &gm__finance__referrals_request__descriptor,
     &gm__finance__referral_list__descriptor, finance__referral_list, 0,
     "enterprise,centre", "an enterprise's referrals, newest last"},
    {"referral.claim", &gm__finance__claim_request__descriptor,
     &gm__finance__referral__descriptor, finance__claim, FINANCE_MUT, "bank",
     "claim a referral for your bank (the first few to claim get access)"},
    {"referral.pick", &gm__finance__pick_request__descriptor,
     &gm__finance__referral__descriptor, finance__pick, FINANCE_MUT,
     "enterprise", "pick one of the banks that claimed your referral"},
    {"referral.contact", &gm__finance__contact_request__descriptor,
     &gm__finance__referral__descriptor, finance__contact, FINANCE_MUT, "bank",
     "record that your bank contacted the enterprise: review starts"},
    {"referral.request_info", &gm__finance__text_request__descriptor,
     &gm__finance__referral__descriptor, finance__request_info, FINANCE_MUT,
     "bank", "ask the enterprise for information"},
    {"referral.answer", &gm__finance__text_request__descriptor,
     &gm__finance__referral__descriptor, finance__answer, FINANCE_MUT,
     "enterprise", "answer the bank's question: review resumes"},
    {"referral.approve", &gm__finance__approve_request__descriptor,
     &gm__finance__referral__descriptor, finance__approve, FINANCE_MUT, "bank",
     "approve: amount, annual rate (bp), tenor"},
    {"referral.fund", &gm__finance__fund_request__descriptor,
     &gm__finance__referral__descriptor, finance__fund, FINANCE_MUT, "bank",
     "record the loan paid out: the referral fee is settled"},
    {"referral.decline", &gm__finance__decline_request__descriptor,
     &gm__finance__referral__descriptor, finance__decline, FINANCE_MUT, "bank",
     "decline with a reason code and text shown to the enterprise"},
    {"referral.withdraw", &gm__finance__text_request__descriptor,
     &gm__finance__referral__descriptor, finance__withdraw, FINANCE_MUT,
     "enterprise", "withdraw your referral (any time before funding)"},
    {"bank.queue", &gm__finance__queue_request__descriptor,
     &gm__finance__queue__descriptor, finance__bank_queue, 0, "bank,centre",
     "a bank's queue: referrals it may claim, has claimed, holds"},
    {"bank.report", &gm__finance__bank_report_request__descriptor,
     &gm__finance__bank_report__descriptor, finance__bank_report, 0,
     "bank,centre",
     "a bank's claims, conversion, SLA breaches, time to decision"},
    {"report.period", &gm__finance__report_request__descriptor,
     &gm__finance__report__descriptor, finance__report, 0, "centre",
     "the green-finance report for a period, by class and by bank"},
    {"report.statement", &gm__finance__statement_request__descriptor,
     &gm__finance__statement__descriptor, finance__statement, 0, "bank,centre",
     "a bank's monthly statement of fees due, as CSV"},
};

/* What the feed carries: "finance.referral", private to its audiences. */
static const ProtobufCMessageDescriptor *const finance__events[] = {
    &gm__finance__referral_event__descriptor,
};

/* The friendly `gm finance ...` commands (cli.c). */
extern const struct gm_cli_extension gm__finance_cli_extension;

/* Every [market.finance] key this market reads; gmd refuses any other. */
static const char *const finance__settings[] = {"max_claims",
                                                "pick_working_days",
                                                "contact_days",
                                                "decision_days",
                                                "sync_ms",
                                                "link_offer_days",
                                                "archive_after_days",
                                                "archive_sweep_s",
                                                "test_kill_before_index",
                                                NULL};

static const gm_plugin finance__plugin = {
    .size = sizeof(gm_plugin),
    .name = "finance",
    .version = "1.0.0",
    .description =
        "green-loan referrals: screened, claimed by banks, picked, "
        "reviewed, funded or declined on deadlines",
    .methods = finance__methods,
    .n_methods = sizeof finance__methods / sizeof finance__methods[0],
    .init = finance__init,
    .shutdown = finance__shutdown,
    .events = finance__events,
    .n_events = sizeof finance__events / sizeof finance__events[0],
    .roles = finance__roles,
    .n_roles = sizeof finance__roles / sizeof finance__roles[0],
    .cli = &gm__finance_cli_extension,
    .settings = finance__settings,
};

GM_PLUGIN_DEFINE(finance__plugin)
