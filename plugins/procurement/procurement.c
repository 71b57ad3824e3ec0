/*
 * The procurement market: green public procurement from a catalogue of
 * certified green products to signed contracts, with sealed bids and an
 * OCDS export (procurement.md).
 *
 * Live state is in Redis: the catalogue under the tags cat, crt:NN and
 * cal, the parties under org:NN, and each tender under its own tag t:<id>
 * (lib.lua lists the keys).  Every change is made by one of the scripts
 * (lib.lua is prepended to each) and appended to its tag's outbox in the
 * same step; settle.c writes the procurement_* ledger tables from it.  This
 * file holds the plugin's description, its configuration, its lifecycle
 * and the small helpers the other files share (procurement.h lists them).
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <greenmarket/text.h>

#include "procurement.h"

/* Plugin globals (procurement.h): written in init() only. */
const gm_host_api *host;
long pr__page = 200;
long pr__min_open_days = 20;
long pr__min_rfq_days = 3;
char pr__ocid_prefix[32] = "ocds-gmkt00";
long pr__kill_after_page;
long pr__kill_in_totals;
char pr__pause_in_totals[4096];
int64_t pr__archive_ms = INT64_C(30) * 86400000;
static char *pr__sources[6]; /* lib + script, freed at shutdown */

/* ---- script replies ---- */

const char *pr__s(const gm_value *r, size_t i) {
  if (!r || r->type != GM_VALUE_ARRAY || i >= r->n) return "";
  const gm_value *v = &r->items[i];
  return v->type == GM_VALUE_STR ? v->str : "";
}

int64_t pr__i(const gm_value *r, size_t i) {
  if (!r || r->type != GM_VALUE_ARRAY || i >= r->n) return 0;
  const gm_value *v = &r->items[i];
  if (v->type == GM_VALUE_INT) return v->integer;
  return v->type == GM_VALUE_STR ? strtoll(v->str, NULL, 10) : 0;
}

int32_t pr__i32(const gm_value *r, size_t i) {
  return (int32_t)pr_clamp(pr__i(r, i), INT32_MIN, INT32_MAX);
}

const gm_value *pr__item(const gm_value *r, size_t i) {
  static const gm_value nil = {GM_VALUE_NIL, 0, NULL, 0, 0, NULL};
  if (!r || r->type != GM_VALUE_ARRAY || i >= r->n) return &nil;
  return &r->items[i];
}

/*
 * The ops that only read, run by their script's read-only twin
 * "<script>.read": the same source registered with GM_SCRIPT_READ_ONLY
 * (init, when the host has script_register_flags), so Redis runs them by
 * FCALL_RO, they still answer when Redis is over maxmemory, and Redis
 * refuses any write they would try.
 */
static const struct {
  const char *script, *twin, *op;
} pr__reads[] = {
    {"award", "award.read", "cand"},
    {"award", "award.read", "aget"},
    {"award", "award.read", "cget"},
    {"award", "award.read", "kget"},
    {"bid", "bid.read", "get"},
    {"catalogue", "catalogue.read", "catget"},
    {"catalogue", "catalogue.read", "catlist"},
    {"catalogue", "catalogue.read", "certget"},
    {"catalogue", "catalogue.read", "calget"},
    {"catalogue", "catalogue.read", "orgget"},
    {"catalogue", "catalogue.read", "orgmget"},
    {"open", "open.read", "page"},
    {"open", "open.read", "rinfo"},
    {"open", "open.read", "tpage"},
    {"tender", "tender.read", "get"},
};
int pr__twins;

/*
 * The ops of the archive, which only free memory, run by the twin
 * "<script>.free": the same source registered GM_SCRIPT_ALLOW_OOM, so
 * Redis runs them over maxmemory, where every other write is refused; the
 * host stores no reply of theirs.  What each writes while it frees:
 * arcinfo reads; archive marks the tender (a field, and its progress in
 * three) and hands a small "archived" entry to the ledger the first time,
 * then unlinks up to PR_ARCHIVE_BUDGET keys; later moves the archive
 * deadline being fired (a member already there).  procurement.md,
 * Archive.
 */
static const struct {
  const char *script, *twin, *op;
} pr__frees[] = {
    {"tender", "tender.free", "arcinfo"},
    {"tender", "tender.free", "archive"},
    {"tender", "tender.free", "later"},
    {"tender", "tender.free", "rearm"},
};
int pr__free_twins;

const char *pr__twin(const char *script, const char *op) {
  for (size_t i = 0; i < sizeof pr__reads / sizeof *pr__reads; i++)
    if (!strcmp(pr__reads[i].script, script) &&
        (!op || !strcmp(pr__reads[i].op, op)))
      return pr__reads[i].twin;
  return NULL;
}

const char *pr__free_twin(const char *script, const char *op) {
  for (size_t i = 0; i < sizeof pr__frees / sizeof *pr__frees; i++)
    if (!strcmp(pr__frees[i].script, script) &&
        (!op || !strcmp(pr__frees[i].op, op)))
      return pr__frees[i].twin;
  return NULL;
}

gm_status pr__run(gm_call *call, const char *script, const char *tag,
                  size_t nargs, const char *const *args, const gm_value **v) {
  static const char *const keys[] = {"k"};
  const char *twin = pr__twins && nargs ? pr__twin(script, args[0]) : NULL;
  if (!twin && pr__free_twins && nargs) twin = pr__free_twin(script, args[0]);
  gm_status st = host->script_run(call, twin ? twin : script, tag, 1, keys,
                                  nargs, args, v);
  /* Whatever a script did not find on an archived tender, say where the
     tender's record went rather than that there is none. */
  if (st == GM_NOT_FOUND && !strncmp(tag, "t:", 2) &&
      pr__archived_fail(call, tag + 2, 0) != GM_NOT_FOUND)
    return GM_FAILED_PRECONDITION;
  if (st != GM_OK) return st;
  if (!*v || (*v)->type != GM_VALUE_ARRAY)
    return host->fail(call, GM_INTERNAL,
                      "procurement script %s returned no list; check the gmd "
                      "log",
                      script);
  return GM_OK;
}

char *pr__num(gm_call *call, int64_t v) {
  return host->sprintf(call, "%lld", (long long)v);
}

char *pr__pack(gm_call *call, size_t n, const char *const *fields) {
  size_t len = 1;
  for (size_t i = 0; i < n; i++) len += strlen(fields[i]) + 1;
  char *out = host->alloc(call, len), *p = out;
  for (size_t i = 0; i < n; i++) {
    size_t k = strlen(fields[i]);
    if (i) *p++ = '\t';
    memcpy(p, fields[i], k);
    p += k;
  }
  *p = '\0';
  return out;
}

gm_status pr__tender_tag(gm_call *call, const char *id, const char **tag) {
  char shown[48 + 24];
  if (!pr_valid_name(id, 3, 48, 0))
    return host->fail(call, GM_INVALID_ARGUMENT,
                      "tender id \"%s\" is not 3-48 letters, digits and . "
                      "_ - (for example ZFCG-2026-0001)",
                      gm_text_shown(id, 48, shown, sizeof shown));
  *tag = host->sprintf(call, "t:%s", id);
  return GM_OK;
}

gm_status pr__text(gm_call *call, const char *what, const char *s, size_t max,
                   int newlines) {
  char err[256];
  if (pr_valid_text(what, s, max, newlines, err, sizeof err) == 0) return GM_OK;
  return host->fail(call, GM_INVALID_ARGUMENT, "%s", err);
}

static void *pr__arena_alloc(void *data, size_t size) {
  return host->alloc((gm_call *)data, size ? size : 1);
}

static void pr__arena_free(void *data, void *p) {
  (void)data;
  (void)p;
}

ProtobufCAllocator *pr__allocator(gm_call *call) {
  ProtobufCAllocator *a = host->alloc(call, sizeof *a);
  a->alloc = pr__arena_alloc;
  a->free = pr__arena_free;
  a->allocator_data = call;
  return a;
}

const char *pr__org_tag(gm_call *call, const char *id) {
  return host->sprintf(call, "org:%02d", pr_cert_shard(id));
}

void pr__tell(gm_call *call, gm_audience a, const char *who, const char *event,
              const ProtobufCMessage *msg) {
  if (a == GM_AUDIENCE_PUBLIC) {
    host->publish(call, event, msg);
    return;
  }
  /* A host older than private events would publish to everyone; and an
     event for nobody in particular goes to nobody, never to all. */
  if (host->size <
          offsetof(gm_host_api, publish_to) + sizeof host->publish_to ||
      !host->publish_to || !who || !*who)
    return;
  host->publish_to(call, a, who, event, msg);
}

/* ---- plugin ---- */

static gm_status pr__init(gm_market *m, const gm_host_api *h) {
  static const struct {
    const char *name;
    const char *lua;
  } scripts[] = {{"catalogue", gm_lua_catalogue},
                 {"tender", gm_lua_tender},
                 {"bid", gm_lua_bid},
                 {"open", gm_lua_open},
                 {"award", gm_lua_award}};
  gm_status st;

  host = h;
  /* Bids open and awards pass on by deadlines. */
  if (h->size <
          offsetof(gm_host_api, deadline_cancel) + sizeof h->deadline_cancel ||
      !h->deadline_register) {
    h->log(m, GM_LOG_ERROR,
           "this gmd has no deadlines (deadline_register); procurement needs "
           "a gmd built from the same SDK or later");
    return GM_UNIMPLEMENTED;
  }
  int bad = 0;
  bad |= gm_config_long(m, h, "procurement", "page", 200, 10,
                        PR_RECORDS_PER_RUN, "bids", &pr__page) != GM_OK;
  const char *prefix = host->config(m, "ocid_prefix", NULL);
  if (prefix) {
    if (strncmp(prefix, "ocds-", 5) != 0 || strlen(prefix) != 11 ||
        !pr_valid_name(prefix, 11, 11, 0)) {
      host->log(m, GM_LOG_ERROR,
                "[market.procurement] ocid_prefix = %s is not an OCDS prefix: "
                "write ocds- and the 6 letters or digits the Open "
                "Contracting Partnership registered for you, or remove the "
                "line for %s; the market is not loaded until then",
                prefix, pr__ocid_prefix);
      bad = 1;
    } else {
      snprintf(pr__ocid_prefix, sizeof pr__ocid_prefix, "%s", prefix);
    }
  }
#ifdef GM_FAILURE_INJECTION
  bad |= gm_config_long(m, h, "procurement", "test_kill_after_page", 0, 0,
                        1000000, "pages", &pr__kill_after_page) != GM_OK;
  if (pr__kill_after_page)
    host->log(m, GM_LOG_WARN,
              "[market.procurement] test_kill_after_page = %ld: gmd kills "
              "itself after storing that page of an opening (failure "
              "injection for tests); remove it from the config",
              pr__kill_after_page);
  bad |= gm_config_long(m, h, "procurement", "test_kill_in_totals", 0, 0, 1, "",
                        &pr__kill_in_totals) != GM_OK;
  if (pr__kill_in_totals)
    host->log(m, GM_LOG_WARN,
              "[market.procurement] test_kill_in_totals = 1: gmd kills "
              "itself after reading the first page of a scoring's totals "
              "(failure injection for tests); remove it from the config");
  if (host->config(m, "test_pause_in_totals", NULL)) {
    if (host->config_path(m, "test_pause_in_totals", NULL, pr__pause_in_totals,
                          sizeof pr__pause_in_totals) != 0)
      pr__pause_in_totals[0] = '\0';
    host->log(m, GM_LOG_WARN,
              "[market.procurement] test_pause_in_totals = %s: the first "
              "scoring totals wait while that file exists (failure "
              "injection for tests); remove it from the config",
              pr__pause_in_totals);
  }
#else
  if (host->config(m, "test_kill_after_page", NULL) ||
      host->config(m, "test_kill_in_totals", NULL) ||
      host->config(m, "test_pause_in_totals", NULL))
    host->log(
        m, GM_LOG_WARN,
        "[market.procurement] test_kill_after_page, test_kill_in_totals and "
        "test_pause_in_totals are ignored: this "
        "build has no failure injection (cmake -DGM_FAILURE_INJECTION=ON)");
#endif
  /* 30 days: past the 15 working days (about three weeks) a supplier has
     to complain to the finance department after a challenge's answer (GP
     Law art. 55), the weeks in which the parties still look at an ended
     tender; its record stays in the ledger for good. */
  long archive_days = 30;
  bad |= gm_config_long(m, h, "procurement", "archive_after_days", 30, 0, 3650,
                        "days", &archive_days) != GM_OK;
  /* The shortest bidding periods (tender.c pr__min_period): 20 days for an
     open tender (GP Law art. 35), 3 working days for a request for
     quotations (MOF Order 74); shorter for training and tests. */
  bad |= gm_config_long(m, h, "procurement", "min_open_days", 20, 0, 365,
                        "days", &pr__min_open_days) != GM_OK;
  bad |= gm_config_long(m, h, "procurement", "min_rfq_days", 3, 0, 365,
                        "working days", &pr__min_rfq_days) != GM_OK;
  /* Ended tenders without an archive deadline (ended before the archive
     existed) are looked for this often (archive.c). */
  long sweep_s = 600;
  bad |= gm_config_long(m, h, "procurement", "archive_sweep_s", 600, 1, 86400,
                        "seconds", &sweep_s) != GM_OK;
  if (bad) return GM_INVALID_ARGUMENT;
  pr__archive_ms = (int64_t)archive_days * 86400000;
  if ((st = pr__seal_init(m)) != GM_OK) return st;
  if ((st = pr__calendar_init(m)) != GM_OK) return st;

  /* The lib's scripts read the archive delay as a constant of their own. */
  char head[64];
  int hn = snprintf(head, sizeof head, "local ARCHIVE_MS = %lld\n",
                    (long long)pr__archive_ms);
  for (size_t i = 0; i < sizeof scripts / sizeof scripts[0]; i++) {
    size_t a = strlen(gm_lua_lib), b = strlen(scripts[i].lua);
    char *src = malloc((size_t)hn + a + b + 2);
    if (!src) return GM_RESOURCE_EXHAUSTED;
    memcpy(src, head, (size_t)hn);
    memcpy(src + hn, gm_lua_lib, a);
    src[hn + a] = '\n';
    memcpy(src + hn + a + 1, scripts[i].lua, b + 1);
    pr__sources[i] = src;
    const char *twin = pr__twin(scripts[i].name, NULL);
    if ((st = host->script_register(m, scripts[i].name, src)) == GM_OK &&
        twin && GM_HOST_HAS(host, script_register_flags)) {
      st = host->script_register_flags(m, twin, NULL, src, GM_SCRIPT_READ_ONLY);
      pr__twins = 1;
    }
    /* The archive's twin that runs over maxmemory: a host before session
       17 refuses the flag, and the archive then waits for room. */
    const char *free_twin = pr__free_twin(scripts[i].name, NULL);
    if (st == GM_OK && free_twin && GM_HOST_HAS(host, script_register_flags)) {
      if (host->script_register_flags(m, free_twin, NULL, src,
                                      GM_SCRIPT_ALLOW_OOM) == GM_OK)
        pr__free_twins = 1;
      else
        host->log(m, GM_LOG_WARN,
                  "this gmd cannot run scripts over maxmemory "
                  "(GM_SCRIPT_ALLOW_OOM): tenders are archived only while "
                  "Redis has room");
    }
    if (st != GM_OK) return st;
  }
  if ((st = pr__settle_init(m)) != GM_OK) return st;
  if ((st = host->deadline_register(m, "open", pr__on_open, NULL)) != GM_OK)
    return st;
  if ((st = host->deadline_register(m, "sign", pr__on_sign, NULL)) != GM_OK)
    return st;
  if ((st = host->deadline_register(m, "rank", pr__on_rank, NULL)) != GM_OK)
    return st;
  if ((st = host->deadline_register(m, "answer", pr__on_answer, NULL)) != GM_OK)
    return st;
  if ((st = host->deadline_register(m, "archive", pr__on_archive, NULL)) !=
      GM_OK)
    return st;
  return host->timer_add(m, "archive-sweep", (int64_t)sweep_s * 1000,
                         pr__archive_sweep, NULL);
}

static void pr__shutdown(gm_market *m) {
  (void)m;
  for (size_t i = 0; i < sizeof pr__sources / sizeof pr__sources[0]; i++) {
    free(pr__sources[i]);
    pr__sources[i] = NULL;
  }
  pr__seal_shutdown();
  pr__calendar_shutdown();
}

#define PR_MUT GM_METHOD_MUTATING
#define PR_METHOD(name, req, rep, fn, flags, roles, summary)             \
  {                                                                      \
    name, &gm__procurement__##req##__descriptor,                         \
        &gm__procurement__##rep##__descriptor, fn, flags, roles, summary \
  }

/* The roles the methods below name ("admin" is the broker's). */
static const gm_role pr__roles[] = {
    {"agency",
     "a procuring entity: drafts, publishes and amends tenders, records bid "
     "security, awards, answers challenges, signs and settles contracts"},
    {"supplier",
     "registers its credit code and size, submits, replaces and withdraws "
     "sealed bids, challenges awards, signs and delivers contracts"},
    {"certifier",
     "the centre that keeps the catalogue: categories and their green "
     "policy, certificates of green labels, the working-day calendar"},
    {"evaluator",
     "a member of a tender's evaluation committee: scores the non-price "
     "criteria of opened bids (comprehensive scoring)"},
};

static const gm_method pr__methods[] = {
    PR_METHOD("category.put", category_batch, import_reply, pr__category_put,
              PR_MUT, "certifier",
              "add or update categories of the catalogue and their policy"),
    PR_METHOD("category.get", category_request, category, pr__category_get, 0,
              NULL, "one category of the catalogue"),
    PR_METHOD("category.list", category_list_request, category_list,
              pr__category_list, 0, NULL, "every category of the catalogue"),
    PR_METHOD("certificate.put", certificate_batch, import_reply,
              pr__certificate_put, PR_MUT, "certifier",
              "add or update certificates (a batch is all or nothing)"),
    PR_METHOD("certificate.get", certificate_request, certificate,
              pr__certificate_get, 0, NULL, "one certificate and its status"),
    PR_METHOD("certificate.status", certificate_status_request, certificate,
              pr__certificate_status, PR_MUT, "certifier",
              "suspend, revoke or reinstate a certificate, with the reason"),
    PR_METHOD("calendar.put", calendar_request, calendar, pr__calendar_put,
              PR_MUT, "certifier",
              "set holidays and worked weekend days of the calendar"),
    PR_METHOD("calendar.get", calendar_request, calendar, pr__calendar_get, 0,
              NULL, "the calendar's exceptions over a range of days"),
    PR_METHOD("party.register", party, party, pr__party_register, PR_MUT,
              "agency,supplier",
              "register your unified social credit code, name and SME size"),
    PR_METHOD("party.get", party_request, party, pr__party_get, 0, NULL,
              "a party's register entry"),
    PR_METHOD("tender.draft", draft_request, tender_view, pr__tender_draft,
              PR_MUT, "agency", "create or rewrite a draft tender"),
    PR_METHOD("tender.demand", demand_request, tender_view, pr__tender_demand,
              PR_MUT, "agency",
              "a joint buyer puts its items into a draft tender"),
    PR_METHOD("tender.publish", tender_request, tender_view, pr__tender_publish,
              PR_MUT, "agency",
              "publish a draft: suppliers may bid until the deadline"),
    PR_METHOD("tender.amend", amend_request, tender_view, pr__tender_amend,
              PR_MUT, "agency",
              "amend a published tender before its deadline (versioned)"),
    PR_METHOD("tender.cancel", tender_request, tender_view, pr__tender_cancel,
              PR_MUT, "agency", "cancel a tender before its award"),
    PR_METHOD("tender.get", tender_request, tender_view, pr__tender_get, 0,
              NULL, "a tender with its amendments"),
    PR_METHOD("tender.list", tender_list_request, tender_list, pr__tender_list,
              0, NULL, "published tenders, newest first"),
    PR_METHOD("tender.security", security_request, security_reply,
              pr__tender_security, PR_MUT, "agency",
              "record the bid security a supplier lodged"),
    PR_METHOD("bid.submit", bid_request, bid_receipt, pr__bid_submit, PR_MUT,
              "supplier", "submit a sealed bid before the deadline"),
    PR_METHOD("bid.replace", bid_request, bid_receipt, pr__bid_replace, PR_MUT,
              "supplier", "replace your sealed bid before the deadline"),
    PR_METHOD("bid.withdraw", tender_request, bid_receipt, pr__bid_withdraw,
              PR_MUT, "supplier", "withdraw your bid before the deadline"),
    PR_METHOD("bid.get", bid_query, bid, pr__bid_get, 0, NULL,
              "your bid (sealed to others until the opening), or an opened "
              "one"),
    PR_METHOD("bid.list", bid_list_request, bid_list, pr__bid_list, 0, NULL,
              "the opened bids of a tender with their hashes"),
    PR_METHOD("evaluation.score", score_request, score_reply,
              pr__evaluation_score, PR_MUT, "evaluator",
              "score the non-price criteria of valid bids"),
    PR_METHOD("evaluation.sheet", sheet_request, sheet, pr__evaluation_sheet, 0,
              NULL, "the evaluation sheet: every check, deduction, score"),
    PR_METHOD("tender.award", award_request, award, pr__tender_award, PR_MUT,
              "agency", "award the tender to the first-ranked bid"),
    PR_METHOD("award.get", award_request, award, pr__award_get, 0, NULL,
              "the award in force and its contracts"),
    PR_METHOD("challenge.lodge", challenge_request, challenge,
              pr__challenge_lodge, PR_MUT, "supplier",
              "challenge an award within 7 working days of its notice"),
    PR_METHOD("challenge.answer", answer_request, challenge,
              pr__challenge_answer, PR_MUT, "agency",
              "dismiss a challenge, or uphold it: re-evaluate or cancel"),
    PR_METHOD("contract.sign", contract_request, contract, pr__contract_sign,
              PR_MUT, "agency,supplier",
              "sign a contract (both parties; within 30 days)"),
    PR_METHOD("contract.deliver", contract_request, contract,
              pr__contract_deliver, PR_MUT, "supplier",
              "record the delivery of a contract"),
    PR_METHOD("contract.accept", contract_request, contract,
              pr__contract_accept, PR_MUT, "agency",
              "accept (or refuse) what was delivered"),
    PR_METHOD("contract.pay", contract_request, contract, pr__contract_pay,
              PR_MUT, "agency", "record a payment on a contract"),
    PR_METHOD("contract.get", contract_request, contract, pr__contract_get, 0,
              NULL, "one contract"),
    PR_METHOD("tender.export", export_request, export, pr__tender_export, 0,
              NULL, "the tender as an OCDS 1.1.5 release package (JSON)"),
    /* Appended last: the fuzz seeds name methods by their index. */
    PR_METHOD("party.reclaim", reclaim_request, reclaim, pr__party_reclaim,
              PR_MUT, "agency,supplier",
              "ask for your credit code back from the participant that "
              "registered it, with your evidence"),
    PR_METHOD("party.reclaim_decide", reclaim_decision, reclaim,
              pr__party_reclaim_decide, PR_MUT, "certifier",
              "approve (the code passes to the claimant) or reject a "
              "request for a credit code"),
    PR_METHOD("challenge.list", challenge_list_request, challenge_list,
              pr__challenge_list, 0, NULL,
              "the challenges lodged against a tender's awards (the agency: "
              "all; a supplier: its own)"),
};

/* What the feed carries: "procurement.tender", ".bid", ".award",
   ".challenge", ".contract", ".certificate", ".reclaim". */
static const ProtobufCMessageDescriptor *const pr__events[] = {
    &gm__procurement__tender_event__descriptor,
    &gm__procurement__bid_event__descriptor,
    &gm__procurement__award_event__descriptor,
    &gm__procurement__challenge_event__descriptor,
    &gm__procurement__contract_event__descriptor,
    &gm__procurement__certificate_event__descriptor,
    &gm__procurement__reclaim__descriptor,
};

/* The friendly `gm procurement ...` commands (cli.c). */
extern const struct gm_cli_extension gm__procurement_cli_extension;

/* Every [market.procurement] key this market reads; gmd refuses any
   other. */
static const char *const pr__settings[] = {"page",
                                           "ocid_prefix",
                                           "key_file",
                                           "archive_after_days",
                                           "archive_sweep_s",
                                           "min_open_days",
                                           "min_rfq_days",
                                           "test_kill_after_page",
                                           "test_kill_in_totals",
                                           "test_pause_in_totals",
                                           NULL};

static const gm_plugin pr__plugin = {
    .size = sizeof(gm_plugin),
    .name = "procurement",
    .version = "1.0.0",
    .description =
        "green public procurement: certified green catalogue, "
        "sealed bids, evaluation with green and SME preferences, "
        "awards, contracts, OCDS",
    .methods = pr__methods,
    .n_methods = sizeof pr__methods / sizeof pr__methods[0],
    .init = pr__init,
    .shutdown = pr__shutdown,
    .events = pr__events,
    .n_events = sizeof pr__events / sizeof pr__events[0],
    .roles = pr__roles,
    .n_roles = sizeof pr__roles / sizeof pr__roles[0],
    .cli = &gm__procurement_cli_extension,
    .settings = pr__settings,
};

GM_PLUGIN_DEFINE(pr__plugin)
