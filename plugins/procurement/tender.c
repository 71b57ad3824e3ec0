/*
 * Tenders: drafts (and the joint buyers' demand), publishing with the
 * catalogue's rules fixed into each item, amendments before the deadline,
 * cancellation, reading, and the bid security register.
 *
 * C builds and checks a tender's definition (a gm.procurement.Tender) and
 * stores it packed in the tender's hash (`def`); tender.lua guards who may
 * change what and when, and keeps the few fields it needs to decide
 * (state, deadline, currency, items, ...) beside it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <greenmarket/text.h>

#include "procurement.h"

/* The shortest bidding periods (GP Law art. 35: 20 days for an open
   tender; MOF Order 74: 3 working days for a request for quotations,
   taken as 3 days), changeable with [market.procurement] min_open_days and
   min_rfq_days for tests and training. */
/*
 * The shortest bidding period from `from` (the publication), in ms: 20
 * days for an open tender (GP Law art. 35), 3 working days for a request
 * for quotations (MOF Order 74): the deadline comes after the end of the
 * 3rd working day after the day of the notice, on the calendar.  *what
 * names it for messages.
 */
static gm_status pr__min_period(gm_call *call, int method, int64_t from,
                                int64_t *min, const char **what) {
  long d = method == 1 ? pr__min_rfq_days : pr__min_open_days;
  if (method != 1) {
    *min = (int64_t)d * PR_DAY_MS;
    *what = host->sprintf(call, "%ld days", d);
    return GM_OK;
  }
  int64_t end;
  gm_status st = pr__working_days_end(call, pr_day_of(from), (int)d, &end);
  if (st != GM_OK) return st;
  *min = d ? end + 1 - from : 0;
  *what = host->sprintf(call, "%ld working days", d);
  return GM_OK;
}

Gm__Procurement__Tender *pr__def_decode(gm_call *call, const char *b64) {
  size_t n;
  uint8_t *bytes = b64 && *b64 ? pr__unb64(call, b64, &n) : NULL;
  if (!bytes) return NULL;
  return gm__procurement__tender__unpack(pr__allocator(call), n, bytes);
}

char *pr__def_encode(gm_call *call, const Gm__Procurement__Tender *t) {
  size_t n = gm__procurement__tender__get_packed_size(t);
  uint8_t *buf = host->alloc(call, n ? n : 1);
  gm__procurement__tender__pack(t, buf);
  return pr__b64(call, buf, n);
}

static int pr__in(char *const *list, size_t n, const char *s) {
  for (size_t i = 0; i < n; i++)
    if (strcmp(list[i], s) == 0) return 1;
  return 0;
}

/* Checks one item; `lead` and `buyers` say whose it may be, and `other`
   what is wrong with an item of someone else and how to fix it (it
   follows "item ID is for BUYER, "). */
static gm_status pr__check_item(gm_call *call, const Gm__Procurement__Item *it,
                                const char *lead, char *const *buyers,
                                size_t nbuyers, const char *other) {
  gm_status st;
  char shown[32 + 24];
  if (!pr_valid_name(it->id, 1, 32, 0))
    return host->fail(call, GM_INVALID_ARGUMENT,
                      "item id \"%s\" is not 1-32 letters, digits and . _ -",
                      gm_text_shown(it->id, 32, shown, sizeof shown));
  if (!pr_valid_name(it->category, 1, 32, 0))
    return host->fail(call, GM_INVALID_ARGUMENT,
                      "item %s: category \"%.32s\" is not a category code of "
                      "the catalogue (gm procurement categories)",
                      it->id, it->category);
  if (it->quantity < 1 || it->quantity > PR_MAX_QUANTITY)
    return host->fail(call, GM_INVALID_ARGUMENT,
                      "item %s: quantity %lld is not 1..%lld", it->id,
                      (long long)it->quantity, (long long)PR_MAX_QUANTITY);
  if ((st = pr__text(call, "item unit", it->unit, 16, 0)) != GM_OK) return st;
  if (!it->unit[0])
    return host->fail(call, GM_INVALID_ARGUMENT,
                      "item %s: unit is empty; say what a quantity counts "
                      "(m2, set, t)",
                      it->id);
  if ((st = pr__text(call, "item description", it->description, 500, 0)) !=
      GM_OK)
    return st;
  if (it->budget < 0 || it->budget > PR_MAX_AMOUNT)
    return host->fail(call, GM_INVALID_ARGUMENT,
                      "item %s: budget is not 0 (none) .. 10^13 yuan", it->id);
  if (it->buyer[0] && strcmp(it->buyer, lead) != 0 &&
      !pr__in(buyers, nbuyers, it->buyer))
    return host->fail(call, GM_INVALID_ARGUMENT, "item %s is for %s, %s",
                      it->id, it->buyer, other);
  return GM_OK;
}

/*
 * The items' budgets added up (the tender's budget is a cap they must fit
 * in: an item's budget is a part of it, and items with none take what is
 * left), and in *by the sum of each buyer's, "city 4000.00 yuan, district
 * 2000.00 yuan", buyers in the order their first item comes (an item that
 * names no buyer is `lead`'s).  A budget stored by an older or damaged
 * record counts as 0 .. 10^13 yuan, and the sums stop at INT64_MAX: they
 * cannot overflow whatever Redis holds.
 */
static int64_t pr__budget_add(int64_t sum, int64_t b) {
  b = b < 0 ? 0 : b > PR_MAX_AMOUNT ? PR_MAX_AMOUNT : b;
  return sum > INT64_MAX - b ? INT64_MAX : sum + b;
}

static int64_t pr__budget_sum(gm_call *call,
                              Gm__Procurement__Item *const *items, size_t n,
                              const char *lead, const char **by) {
  int64_t sum = 0;
  char *out = "";
  for (size_t i = 0; i < n; i++) {
    const char *who = items[i]->buyer[0] ? items[i]->buyer : lead;
    int seen = 0;
    for (size_t j = 0; j < i && !seen; j++)
      seen = !strcmp(items[j]->buyer[0] ? items[j]->buyer : lead, who);
    sum = pr__budget_add(sum, items[i]->budget);
    if (seen) continue;
    int64_t part = 0;
    for (size_t j = i; j < n; j++)
      if (!strcmp(items[j]->buyer[0] ? items[j]->buyer : lead, who))
        part = pr__budget_add(part, items[j]->budget);
    if (part == 0) continue;
    char y[32];
    out = host->sprintf(call, "%s%s%s %s yuan", out, out[0] ? ", " : "", who,
                        pr_yuan(part, y));
  }
  if (by) *by = out;
  return sum;
}

/* Checks a tender's fields as the lead agency `lead` gives them (items
   from the draft and any demand are checked one by one too); `sum`: the
   items' budgets must fit in the tender's together too (an amendment
   checks that only when it changes the budget or the items, so a tender
   published before the rule, its items over its budget, can still move
   its deadline or change its title). */
static gm_status pr__check_tender(gm_call *call, Gm__Procurement__Tender *t,
                                  const char *lead, int stored_currency,
                                  int sum_rule) {
  char y1[32], y2[32];
  gm_status st;
  if ((st = pr__text(call, "title", t->title, 200, 0)) != GM_OK ||
      (st = pr__text(call, "description", t->description, 4000, 1)) != GM_OK)
    return st;
  if (!t->title[0])
    return host->fail(call, GM_INVALID_ARGUMENT,
                      "title is empty; give the tender a title");
  /* A published tender's currency cannot change: it stays as checked when
     it was drafted (stored_currency), by the rule of that time. */
  char cur_err[256];
  if (!stored_currency &&
      pr_check_currency(t->currency, cur_err, sizeof cur_err) != 0)
    return host->fail(call, GM_INVALID_ARGUMENT, "%s", cur_err);
  if (t->budget < 1 || t->budget > PR_MAX_AMOUNT)
    return host->fail(call, GM_INVALID_ARGUMENT,
                      "budget must be 0.01 .. 10^13 yuan; it is the most "
                      "the buyers will pay");
  if (t->method > GM__PROCUREMENT__METHOD__METHOD_RFQ ||
      t->award_method > GM__PROCUREMENT__AWARD_METHOD__AWARD_SCORING ||
      t->kind > GM__PROCUREMENT__KIND__KIND_WORKS)
    return host->fail(call, GM_INVALID_ARGUMENT,
                      "method, award_method or kind is not one of the values "
                      "procurement.proto lists");
  if (t->n_buyers > PR_MAX_BUYERS)
    return host->fail(call, GM_INVALID_ARGUMENT,
                      "the tender names %zu joint buyers; a joint tender has "
                      "at most %d",
                      t->n_buyers, PR_MAX_BUYERS);
  for (size_t i = 0; i < t->n_buyers; i++) {
    if (!pr_valid_name(t->buyers[i], 1, 64, 0) ||
        strcmp(t->buyers[i], lead) == 0 || pr__in(t->buyers, i, t->buyers[i]))
      return host->fail(call, GM_INVALID_ARGUMENT,
                        "buyer \"%.64s\" is not a participant id, is you (the "
                        "lead agency), or is listed twice",
                        t->buyers[i]);
  }
  int scoring = t->award_method == GM__PROCUREMENT__AWARD_METHOD__AWARD_SCORING;
  if (scoring) {
    int32_t floor_bp =
        t->kind == GM__PROCUREMENT__KIND__KIND_GOODS ? 3000 : 1000;
    if (t->price_weight_bp < floor_bp || t->price_weight_bp > 10000)
      return host->fail(
          call, GM_INVALID_ARGUMENT,
          "price weight %d.%02d points: comprehensive scoring "
          "gives price at least %d points of 100 for %s (MOF "
          "Order 87 art. 55)",
          t->price_weight_bp / 100, t->price_weight_bp % 100, floor_bp / 100,
          t->kind == GM__PROCUREMENT__KIND__KIND_GOODS ? "goods"
                                                       : "services and works");
    if (t->n_evaluators < 1 || t->n_evaluators > PR_MAX_EVALUATORS)
      return host->fail(call, GM_INVALID_ARGUMENT,
                        "comprehensive scoring needs an evaluation committee "
                        "of 1-%d evaluators; the tender names %zu",
                        PR_MAX_EVALUATORS, t->n_evaluators);
    for (size_t i = 0; i < t->n_evaluators; i++)
      if (!pr_valid_name(t->evaluators[i], 1, 64, 0) ||
          pr__in(t->evaluators, i, t->evaluators[i]))
        return host->fail(call, GM_INVALID_ARGUMENT,
                          "evaluator \"%.64s\" is not a participant id or is "
                          "listed twice",
                          t->evaluators[i]);
  } else if (t->n_evaluators || t->price_weight_bp) {
    return host->fail(call, GM_INVALID_ARGUMENT,
                      "evaluators and price_weight_bp are for comprehensive "
                      "scoring; the lowest evaluated price needs neither");
  }
  if (t->bid_security < 0 ||
      t->bid_security > pr_share(t->budget, PR_BID_SECURITY_MAX_BP))
    return host->fail(call, GM_INVALID_ARGUMENT,
                      "bid security %s yuan is above 2%% of the budget (%s "
                      "yuan; GP Law Implementing Regulations art. 33)",
                      pr_yuan(t->bid_security, y1),
                      pr_yuan(pr_share(t->budget, PR_BID_SECURITY_MAX_BP), y2));
  if (t->bond_bp < 0 || t->bond_bp > PR_BOND_MAX_BP)
    return host->fail(
        call, GM_INVALID_ARGUMENT,
        "performance bond rate %d.%02d%% is above 10%% of the "
        "contract value (GP Law Implementing Regulations art. 48)",
        t->bond_bp / 100, t->bond_bp % 100);
  if (t->sme_bp != 0 && (t->sme_bp < 1000 || t->sme_bp > 2000))
    return host->fail(call, GM_INVALID_ARGUMENT,
                      "SME deduction %d.%02d%% is outside 10%%-20%% (MOF/MIIT "
                      "measures 2020, as raised in 2022); give 10%%-20%% "
                      "(none: 10%%), or turn the SME preference off "
                      "(gm procurement draft --no-sme)",
                      t->sme_bp / 100, t->sme_bp % 100);
  if (t->n_items > PR_MAX_ITEMS)
    return host->fail(call, GM_INVALID_ARGUMENT, "%zu items; at most %d",
                      t->n_items, PR_MAX_ITEMS);
  for (size_t i = 0; i < t->n_items; i++) {
    if ((st = pr__check_item(call, t->items[i], lead, t->buyers, t->n_buyers,
                             "who is not a buyer of this tender; add it to "
                             "buyers, or give the item to one of them")) !=
        GM_OK)
      return st;
    /* An item's budget is a part of the tender's: one above the whole
       could never bind (the bid price is held to the budget as well). */
    if (t->items[i]->budget > t->budget)
      return host->fail(call, GM_INVALID_ARGUMENT,
                        "item %s: its budget %s yuan is above the tender's "
                        "budget %s yuan; lower the item's budget or raise "
                        "the tender's",
                        t->items[i]->id, pr_yuan(t->items[i]->budget, y1),
                        pr_yuan(t->budget, y2));
    for (size_t j = 0; j < i; j++)
      if (strcmp(t->items[i]->id, t->items[j]->id) == 0)
        return host->fail(call, GM_INVALID_ARGUMENT,
                          "item %s appears twice; give each item its own id",
                          t->items[i]->id);
  }
  /* Together they fit in it too (joint buyers' items included). */
  const char *by;
  int64_t sum = pr__budget_sum(call, t->items, t->n_items, lead, &by);
  if (sum_rule && sum > t->budget)
    return host->fail(call, GM_INVALID_ARGUMENT,
                      "the items' budgets add up to %s yuan (%s), above the "
                      "tender's budget %s yuan; the items' budgets are parts "
                      "of the tender's and must fit in it: lower them or "
                      "raise the tender's budget",
                      pr_yuan(sum, y1), by, pr_yuan(t->budget, y2));
  return GM_OK;
}

/* Names a list as the scripts keep it: ",a,b," (sorted when asked). */
static int pr__cmp(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

static char *pr__list(gm_call *call, char *const *v, size_t n, int sort) {
  size_t len = 2;
  for (size_t i = 0; i < n; i++) len += strlen(v[i]) + 1;
  char **tmp = host->alloc(call, (n + 1) * sizeof *tmp);
  if (n) memcpy(tmp, v, n * sizeof *tmp); /* v is NULL when n is 0 */
  if (sort) qsort(tmp, n, sizeof *tmp, pr__cmp);
  char *out = host->alloc(call, len), *p = out;
  *p++ = ',';
  for (size_t i = 0; i < n; i++) {
    size_t k = strlen(tmp[i]);
    memcpy(p, tmp[i], k);
    p += k;
    *p++ = ',';
  }
  *p = '\0';
  return n ? out : ",";
}

static char *pr__item_ids(gm_call *call, const Gm__Procurement__Tender *t) {
  char **ids = host->alloc(call, (t->n_items + 1) * sizeof *ids);
  for (size_t i = 0; i < t->n_items; i++) ids[i] = t->items[i]->id;
  return pr__list(call, ids, t->n_items, 1);
}

/* ---- reading ---- */

static Gm__Procurement__TenderView *pr__view(gm_call *call, const gm_value *v) {
  const gm_value *f = pr__item(v, 0), *am = pr__item(v, 2);
  Gm__Procurement__TenderView *view = host->alloc(call, sizeof *view);
  gm__procurement__tender_view__init(view);
  Gm__Procurement__Tender *t = pr__def_decode(call, pr__s(f, 17));
  if (!t) {
    t = host->alloc(call, sizeof *t);
    gm__procurement__tender__init(t);
  }
  /* FIELDS in tender.lua, in order. */
  t->id = (char *)pr__s(f, 0);
  t->state = (char *)pr__s(f, 1);
  t->agency = (char *)pr__s(f, 2);
  t->version = pr__i32(f, 14);
  t->published_ms = pr__i(f, 15);
  if (pr__s(f, 7)[0]) t->deadline_ms = pr__i(f, 7);
  t->opened_ms = pr__i(f, 18);
  t->round = pr__i32(f, 19);
  t->seed = (char *)pr__s(f, 20);
  t->bids = pr__i32(f, 22);
  t->award_number = pr__i32(f, 24);
  t->reason = (char *)pr__s(f, 26);
  t->updated_ms = pr__i(f, 27);
  view->tender = t;
  size_t na = am->type == GM_VALUE_ARRAY ? am->n / 2 : 0;
  view->amendments = host->alloc(call, (na + 1) * sizeof *view->amendments);
  for (size_t i = 0; i < na; i++) {
    Gm__Procurement__Amendment *a = host->alloc(call, sizeof *a);
    gm__procurement__amendment__init(a);
    a->version = pr__i32(am, 2 * i);
    char *text = host->sprintf(call, "%s", pr__s(am, 2 * i + 1));
    char *nl1 = strchr(text, '\n'), *nl2 = nl1 ? strchr(nl1 + 1, '\n') : NULL;
    if (nl1 && nl2) {
      *nl1 = *nl2 = '\0';
      a->time_ms = strtoll(text, NULL, 10);
      a->note = nl2 + 1;
      /* fields: ",a,b," */
      size_t nf = 0;
      for (char *p = nl1 + 1; *p; p++) nf += *p == ',';
      a->fields = host->alloc(call, (nf + 1) * sizeof *a->fields);
      char *save = NULL;
      for (char *tok = strtok_r(nl1 + 1, ",", &save); tok;
           tok = strtok_r(NULL, ",", &save))
        a->fields[a->n_fields++] = tok;
    }
    size_t k = view->n_amendments++;
    view->amendments[k] = a;
    /* HGETALL order is arbitrary: keep versions ascending. */
    while (k > 0 && view->amendments[k - 1]->version > a->version) {
      view->amendments[k] = view->amendments[k - 1];
      view->amendments[--k] = a;
    }
  }
  /* A draft's joint demand, as publish will merge it (pr__fix_items). */
  const gm_value *dm = pr__item(v, 1);
  size_t ndm = dm->type == GM_VALUE_ARRAY ? dm->n / 2 : 0;
  if (ndm && strcmp(t->state, "draft") == 0) {
    size_t nd = 0;
    Gm__Procurement__Tender **d = host->alloc(call, ndm * sizeof *d);
    for (size_t i = 0; i < ndm; i++) {
      d[i] = pr__def_decode(call, pr__s(dm, 2 * i + 1));
      nd += d[i] ? d[i]->n_items : 0;
    }
    view->demand = host->alloc(call, (nd + 1) * sizeof *view->demand);
    for (size_t i = 0; i < ndm; i++)
      for (size_t j = 0; d[i] && j < d[i]->n_items; j++)
        if (pr__in(t->buyers, t->n_buyers, d[i]->items[j]->buyer))
          view->demand[view->n_demand++] = d[i]->items[j];
  }
  return view;
}

/* from_ledger: an archived tender answers from the ledger (tender.get);
   otherwise it is refused, saying where its record is. */
static gm_status pr__tender_load(gm_call *call, const char *id, int from_ledger,
                                 Gm__Procurement__TenderView **view) {
  const char *tag, *args[] = {"get", id};
  const gm_value *v;
  gm_status st = pr__tender_tag(call, id, &tag);
  if (st != GM_OK) return st;
  if ((st = pr__run(call, "tender", tag, 2, args, &v)) != GM_OK) return st;
  if (v->n <= 1) {
    /* {} none, {"archived"}: its keys are leaving Redis. */
    if (from_ledger) return pr__tender_from_ledger(call, id, view);
    if (pr__archived_fail(call, id, 1) != GM_NOT_FOUND)
      return GM_FAILED_PRECONDITION;
    return host->fail(call, GM_NOT_FOUND,
                      "no tender %s; gm procurement tenders lists the "
                      "published ones",
                      id);
  }
  *view = pr__view(call, v);
  return GM_OK;
}

gm_status pr__tender_read(gm_call *call, const char *id,
                          Gm__Procurement__TenderView **view) {
  return pr__tender_load(call, id, 0, view);
}

void pr__tender_rule(gm_call *call, const Gm__Procurement__Tender *t,
                     pr_tender_rule *rule) {
  pr_item_rule *items = host->alloc(call, (t->n_items + 1) * sizeof *items);
  for (size_t i = 0; i < t->n_items; i++) {
    const Gm__Procurement__Item *it = t->items[i];
    items[i].id = it->id;
    items[i].category = it->category;
    items[i].quantity = it->quantity;
    items[i].budget = it->budget;
    items[i].policy = (int)it->policy;
    items[i].deduction_bp = it->deduction_bp;
    items[i].labels = pr__list(call, it->labels, it->n_labels, 0);
    items[i].min_grade = it->min_grade;
  }
  rule->currency = t->currency;
  rule->budget = t->budget;
  rule->kind = (int)t->kind;
  rule->green = t->green_preference;
  rule->sme = t->sme_preference;
  rule->sme_bp = t->sme_bp ? t->sme_bp : PR_SME_DEFAULT_BP;
  rule->security = t->bid_security;
  rule->nitems = t->n_items;
  rule->items = items;
}

/* A tender never published (a draft, or a draft cancelled) is its
   agency's and its buyers' only. */
int pr__may_see(gm_call *call, const Gm__Procurement__Tender *t) {
  const char *me = host->participant(call);
  if ((strcmp(t->state, "draft") != 0 && t->published_ms > 0) ||
      host->has_role(call, "admin"))
    return 1;
  return strcmp(t->agency, me) == 0 || pr__in(t->buyers, t->n_buyers, me);
}

gm_status pr__tender_get(gm_call *call, const ProtobufCMessage *req,
                         ProtobufCMessage **reply) {
  const Gm__Procurement__TenderRequest *in = (const void *)req;
  Gm__Procurement__TenderView *view;
  gm_status st = pr__tender_load(call, in->tender_id, 1, &view);
  if (st != GM_OK) return st;
  if (!pr__may_see(call, view->tender))
    return host->fail(call, GM_NOT_FOUND,
                      "no tender %s; gm procurement tenders lists the "
                      "published ones",
                      in->tender_id);
  *reply = &view->base;
  return GM_OK;
}

static void pr__tender_event(gm_call *call, const Gm__Procurement__Tender *t,
                             const char *action, const char *note) {
  Gm__Procurement__TenderEvent ev = GM__PROCUREMENT__TENDER_EVENT__INIT;
  ev.tender_id = t->id;
  ev.action = (char *)action;
  ev.state = t->state;
  ev.version = t->version;
  ev.deadline_ms = t->deadline_ms;
  ev.title = t->title;
  ev.bids = t->bids;
  ev.note = (char *)(note ? note : "");
  /* A tender never published (a draft cancelled) is its agencies' only
     (pr__may_see): its id, title and reason go to them, not to everyone. */
  if (t->published_ms <= 0 || !strcmp(t->state, "draft")) {
    pr__tell(call, GM_AUDIENCE_PARTICIPANT, t->agency, "tender", &ev.base);
    for (size_t i = 0; i < t->n_buyers; i++)
      if (strcmp(t->buyers[i], t->agency) != 0)
        pr__tell(call, GM_AUDIENCE_PARTICIPANT, t->buyers[i], "tender",
                 &ev.base);
    return;
  }
  pr__tell(call, GM_AUDIENCE_PUBLIC, NULL, "tender", &ev.base);
}

/* ---- drafting ---- */

/*
 * The items of `t` with the joint demand `demand` (the get reply's dm) of
 * its listed buyers but `skip` (NULL: none), as publish would merge them,
 * into *out: for the budgets' sum only (no check of ids or counts).
 */
static size_t pr__with_demand(gm_call *call, const Gm__Procurement__Tender *t,
                              const gm_value *demand, const char *skip,
                              Gm__Procurement__Item ***out) {
  size_t ndm = demand->type == GM_VALUE_ARRAY ? demand->n / 2 : 0, n = 0;
  Gm__Procurement__Tender **dm = host->alloc(call, (ndm + 1) * sizeof *dm);
  size_t cap = t->n_items;
  for (size_t i = 0; i < ndm; i++) {
    dm[i] = skip && !strcmp(pr__s(demand, 2 * i), skip)
                ? NULL
                : pr__def_decode(call, pr__s(demand, 2 * i + 1));
    cap += dm[i] ? dm[i]->n_items : 0;
  }
  Gm__Procurement__Item **all = host->alloc(call, (cap + 1) * sizeof *all);
  for (size_t i = 0; i < t->n_items; i++) all[n++] = t->items[i];
  for (size_t i = 0; i < ndm; i++)
    for (size_t j = 0; dm[i] && j < dm[i]->n_items; j++)
      if (pr__in(t->buyers, t->n_buyers, dm[i]->items[j]->buyer))
        all[n++] = dm[i]->items[j];
  *out = all;
  return n;
}

gm_status pr__tender_draft(gm_call *call, const ProtobufCMessage *req,
                           ProtobufCMessage **reply) {
  const Gm__Procurement__DraftRequest *in = (const void *)req;
  const char *tag, *me = host->participant(call);
  gm_status st;
  if (!in->tender)
    return host->fail(call, GM_INVALID_ARGUMENT,
                      "tender is missing; send the draft in tender");
  /* The stored definition is the request's, with what only the broker
     sets cleared. */
  Gm__Procurement__Tender *t = in->tender;
  if ((st = pr__tender_tag(call, t->id, &tag)) != GM_OK) return st;
  if ((st = pr__id_free(call, t->id)) != GM_OK) return st;
  if (!t->currency[0]) t->currency = "CNY";
  if ((st = pr__check_tender(call, t, me, 0, 1)) != GM_OK) return st;
  /* A redraft keeps the joint buyers' demand: with it, the items' budgets
     must still fit in the budget.  The script refuses the redraft if the
     draft changed after this read (its revision, `rev`). */
  const char *gargs[] = {"get", t->id}, *rev = "";
  const gm_value *g;
  if ((st = pr__run(call, "tender", tag, 2, gargs, &g)) != GM_OK) return st;
  if (g->n == 3) {
    const gm_value *gf = pr__item(g, 0);
    rev = pr__s(gf, 16);
    Gm__Procurement__Item **all;
    if (!strcmp(pr__s(gf, 2), me) && !strcmp(pr__s(gf, 1), "draft")) {
      size_t n = pr__with_demand(call, t, pr__item(g, 1), NULL, &all);
      const char *by;
      int64_t sum = pr__budget_sum(call, all, n, me, &by);
      char y1[32], y2[32];
      if (sum > t->budget)
        return host->fail(call, GM_INVALID_ARGUMENT,
                          "with the joint buyers' demand the items' budgets "
                          "add up to %s yuan (%s), above the budget %s yuan; "
                          "the items' budgets must fit in the tender's: raise "
                          "the budget, lower your items' budgets, or ask the "
                          "joint buyers to send their demand again with "
                          "lower ones",
                          pr_yuan(sum, y1), by, pr_yuan(t->budget, y2));
    }
  }
  t->agency = (char *)me;
  t->state = "";
  t->version = 0;
  t->published_ms = t->opened_ms = t->updated_ms = 0;
  t->bids = t->round = t->award_number = 0;
  t->seed = t->reason = "";
  for (size_t i = 0; i < t->n_items; i++) {
    Gm__Procurement__Item *it = t->items[i];
    it->policy = 0;
    it->deduction_bp = it->min_grade = 0;
    it->n_labels = 0;
    it->category_name = "";
    if (!it->buyer[0]) it->buyer = (char *)me;
  }
  const char *args[] = {"draft",
                        t->id,
                        pr__def_encode(call, t),
                        pr__list(call, t->buyers, t->n_buyers, 0),
                        t->title,
                        rev};
  const gm_value *v;
  if ((st = pr__run(call, "tender", tag, 6, args, &v)) != GM_OK) return st;
  Gm__Procurement__TenderView *view;
  if ((st = pr__tender_read(call, t->id, &view)) != GM_OK) return st;
  *reply = &view->base;
  return GM_OK;
}

gm_status pr__tender_demand(gm_call *call, const ProtobufCMessage *req,
                            ProtobufCMessage **reply) {
  const Gm__Procurement__DemandRequest *in = (const void *)req;
  const char *tag, *me = host->participant(call);
  gm_status st;
  if ((st = pr__tender_tag(call, in->tender_id, &tag)) != GM_OK) return st;
  if (in->n_items == 0 || in->n_items > PR_MAX_ITEMS)
    return host->fail(call, GM_INVALID_ARGUMENT,
                      "send 1-%d items: what your agency needs", PR_MAX_ITEMS);
  /* The demand travels as a Tender holding only items, each the caller's. */
  Gm__Procurement__Tender d = GM__PROCUREMENT__TENDER__INIT;
  char *buyers[] = {(char *)me};
  d.items = in->items;
  d.n_items = in->n_items;
  for (size_t i = 0; i < in->n_items; i++) {
    if ((st = pr__check_item(call, in->items[i], me, buyers, 1,
                             "not you; your demand holds your own items "
                             "only: leave the item's buyer empty")) != GM_OK)
      return st;
    in->items[i]->buyer = (char *)me;
    in->items[i]->policy = 0;
    in->items[i]->deduction_bp = in->items[i]->min_grade = 0;
    in->items[i]->n_labels = 0;
    for (size_t j = 0; j < i; j++)
      if (strcmp(in->items[i]->id, in->items[j]->id) == 0)
        return host->fail(call, GM_INVALID_ARGUMENT, "item %s appears twice",
                          in->items[i]->id);
  }
  /* The items' budgets must fit in the tender's, with the lead's items
     and the other buyers' demand: checked for a joint buyer of a draft
     only (anyone else is refused by the script, and told nothing of the
     draft), and refused by the script if the draft changed after this
     read (its revision, `rev`). */
  const char *gargs[] = {"get", in->tender_id}, *rev = "none";
  const gm_value *g;
  if ((st = pr__run(call, "tender", tag, 2, gargs, &g)) != GM_OK) return st;
  if (g->n == 3) {
    const gm_value *gf = pr__item(g, 0);
    Gm__Procurement__Tender *t = pr__def_decode(call, pr__s(gf, 17));
    rev = pr__s(gf, 16);
    if (t && !strcmp(pr__s(gf, 1), "draft") &&
        pr__in(t->buyers, t->n_buyers, me)) {
      Gm__Procurement__Item **all;
      size_t n = pr__with_demand(call, t, pr__item(g, 1), me, &all);
      const char *by;
      int64_t others = pr__budget_sum(call, all, n, pr__s(gf, 2), &by);
      int64_t mine = pr__budget_sum(call, in->items, in->n_items, me, NULL);
      char y1[32], y2[32], y3[32], y4[32], y5[32];
      /* What is left for this buyer's items; none left, an item with no
         budget (0) still fits. */
      const char *fix =
          t->budget > others
              ? host->sprintf(call, "lower yours to %s yuan in all or less",
                              pr_yuan(t->budget - others, y5))
              : "the items already there take the whole budget: send yours "
                "with no budget (0)";
      if (pr__budget_add(others, mine) > t->budget)
        return host->fail(
            call, GM_INVALID_ARGUMENT,
            "your items' budgets add up to %s yuan; with the %s yuan of the "
            "items already in tender %s%s%s%s that is %s yuan, above its "
            "budget %s yuan: the items' budgets must fit in the tender's; %s, "
            "or ask %s, the lead agency, to raise the budget",
            pr_yuan(mine, y1), pr_yuan(others, y2), in->tender_id,
            by[0] ? " (" : "", by, by[0] ? ")" : "",
            pr_yuan(pr__budget_add(others, mine), y3), pr_yuan(t->budget, y4),
            fix, pr__s(gf, 2));
    }
  }
  const char *args[] = {"demand", in->tender_id, pr__def_encode(call, &d), rev};
  const gm_value *v;
  if ((st = pr__run(call, "tender", tag, 4, args, &v)) != GM_OK) return st;
  int replaced = strcmp(pr__s(v, 2), "1") == 0;
  Gm__Procurement__TenderView *view;
  if ((st = pr__tender_read(call, in->tender_id, &view)) != GM_OK) return st;
  view->demand_replaced = replaced;
  *reply = &view->base;
  return GM_OK;
}

static gm_status pr__fix_rules(gm_call *call, Gm__Procurement__Item **items,
                               size_t n);

/* Merges the joint buyers' demand `demand` (the get reply's dm) into the
   draft's items and fixes the catalogue's rules into each (publish). */
static gm_status pr__fix_items(gm_call *call, Gm__Procurement__Tender *t,
                               const gm_value *demand) {
  size_t extra = 0;
  Gm__Procurement__Tender **dm = NULL;
  size_t ndm = demand && demand->type == GM_VALUE_ARRAY ? demand->n / 2 : 0;
  if (ndm) {
    dm = host->alloc(call, ndm * sizeof *dm);
    for (size_t i = 0; i < ndm; i++) {
      dm[i] = pr__def_decode(call, pr__s(demand, 2 * i + 1));
      extra += dm[i] ? dm[i]->n_items : 0;
    }
  }
  if (t->n_items + extra > PR_MAX_ITEMS)
    return host->fail(call, GM_INVALID_ARGUMENT,
                      "the draft and the joint demand hold %zu items; at most "
                      "%d",
                      t->n_items + extra, PR_MAX_ITEMS);
  Gm__Procurement__Item **items =
      host->alloc(call, (t->n_items + extra + 1) * sizeof *items);
  size_t n = 0;
  for (size_t i = 0; i < t->n_items; i++) items[n++] = t->items[i];
  for (size_t i = 0; i < ndm; i++)
    for (size_t j = 0; dm[i] && j < dm[i]->n_items; j++) {
      Gm__Procurement__Item *it = dm[i]->items[j];
      if (!pr__in(t->buyers, t->n_buyers, it->buyer)) continue;
      for (size_t k = 0; k < n; k++)
        if (strcmp(items[k]->id, it->id) == 0)
          return host->fail(call, GM_INVALID_ARGUMENT,
                            "item %s is both in the draft and in %s's demand; "
                            "give each item its own id",
                            it->id, it->buyer);
      items[n++] = it;
    }
  t->items = items;
  t->n_items = n;
  if (n == 0)
    return host->fail(call, GM_INVALID_ARGUMENT,
                      "the tender has no items; a tender buys at least one");
  return pr__fix_rules(call, items, n);
}

/* Fixes the catalogue's rules, as they are now, into each of `items`. */
static gm_status pr__fix_rules(gm_call *call, Gm__Procurement__Item **items,
                               size_t n) {
  /* The categories, read once each. */
  const char **codes = host->alloc(call, (n + 2) * sizeof *codes);
  size_t nc = 0;
  codes[nc++] = "catget";
  for (size_t i = 0; i < n; i++) {
    int seen = 0;
    for (size_t k = 1; k < nc; k++)
      seen |= !strcmp(codes[k], items[i]->category);
    if (!seen) codes[nc++] = items[i]->category;
  }
  const gm_value *v;
  gm_status st = pr__run(call, "catalogue", "cat", nc, codes, &v);
  if (st != GM_OK) return st;
  for (size_t i = 0; i < n; i++) {
    Gm__Procurement__Item *it = items[i];
    const char *rec = NULL;
    for (size_t k = 1; k < nc; k++)
      if (!strcmp(codes[k], it->category)) rec = pr__s(v, k - 1);
    if (!rec || !*rec)
      return host->fail(call, GM_FAILED_PRECONDITION,
                        "item %s: category %s is not in the catalogue; see gm "
                        "procurement categories",
                        it->id, it->category);
    /* "name\tpolicy\tbp\tlabels\tmin\tupd" (catalogue.lua) */
    char *copy = host->sprintf(call, "%s", rec), *f[6] = {0}, *save = NULL;
    size_t nf = 0;
    for (char *p = copy, *tok; nf < 6 && (tok = strsep(&p, "\t"));)
      f[nf++] = tok;
    if (nf < 6)
      return host->fail(call, GM_INTERNAL, "category %s is malformed",
                        it->category);
    it->category_name = f[0];
    it->policy = (Gm__Procurement__Policy)pr_int(f[1]);
    it->deduction_bp = pr_int(f[2]);
    it->min_grade = pr_int(f[4]);
    size_t nl = 0;
    for (char *p = f[3]; *p; p++) nl += *p == ',';
    it->labels = host->alloc(call, (nl + 2) * sizeof *it->labels);
    it->n_labels = 0;
    for (char *tok = strtok_r(f[3], ",", &save); tok;
         tok = strtok_r(NULL, ",", &save))
      it->labels[it->n_labels++] = tok;
  }
  return GM_OK;
}

gm_status pr__tender_publish(gm_call *call, const ProtobufCMessage *req,
                             ProtobufCMessage **reply) {
  const Gm__Procurement__TenderRequest *in = (const void *)req;
  const char *tag, *args[] = {"get", in->tender_id};
  const gm_value *v;
  gm_status st;
  if ((st = pr__tender_tag(call, in->tender_id, &tag)) != GM_OK) return st;
  if ((st = pr__run(call, "tender", tag, 2, args, &v)) != GM_OK) return st;
  if (v->n == 0)
    return host->fail(call, GM_NOT_FOUND,
                      "no tender %s; draft it first with gm procurement draft "
                      "(tender.draft)",
                      in->tender_id);
  const gm_value *f = pr__item(v, 0);
  /* Another agency's draft is none, as tender.get answers (pr__may_see):
     no refusal says whose it is. */
  if (strcmp(pr__s(f, 2), host->participant(call)) != 0 &&
      (strcmp(pr__s(f, 1), "draft") == 0 || pr__i(f, 15) <= 0) &&
      !strstr(pr__s(f, 3),
              host->sprintf(call, ",%s,", host->participant(call))) &&
      !host->has_role(call, "admin"))
    return host->fail(call, GM_NOT_FOUND,
                      "no tender %s; draft it first with gm procurement draft "
                      "(tender.draft)",
                      in->tender_id);
  if (strcmp(pr__s(f, 2), host->participant(call)) != 0)
    return host->fail(call, GM_PERMISSION_DENIED,
                      "only %s, the agency that drafted tender %s, may "
                      "publish it",
                      pr__s(f, 2), in->tender_id);
  if (strcmp(pr__s(f, 1), "draft") != 0)
    return host->fail(call, GM_FAILED_PRECONDITION, "tender %s is %s already",
                      in->tender_id, pr__s(f, 1));
  Gm__Procurement__Tender *t = pr__def_decode(call, pr__s(f, 17));
  if (!t)
    return host->fail(call, GM_INTERNAL, "tender %s has no definition",
                      in->tender_id);
  if ((st = pr__fix_items(call, t, pr__item(v, 1))) != GM_OK) return st;
  if ((st = pr__check_tender(call, t, t->agency, 0, 1)) != GM_OK) return st;
  if (t->deadline_ms <= 0)
    return host->fail(call, GM_INVALID_ARGUMENT,
                      "tender %s has no bid deadline; redraft it with "
                      "deadline_ms",
                      in->tender_id);
  int64_t min, now = host->now_ms(host->market(call));
  const char *what;
  if ((st = pr__min_period(call, (int)t->method, now, &min, &what)) != GM_OK)
    return st;
  const char *pargs[] = {"publish",
                         in->tender_id,
                         pr__s(f, 16),
                         pr__def_encode(call, t),
                         pr__num(call, t->deadline_ms),
                         t->currency,
                         pr__num(call, t->budget),
                         pr__item_ids(call, t),
                         pr__num(call, t->bid_security),
                         pr__num(call, t->bond_bp),
                         pr__num(call, t->award_method),
                         pr__num(call, t->price_weight_bp),
                         pr__list(call, t->evaluators, t->n_evaluators, 0),
                         t->title,
                         pr__num(call, min),
                         what,
                         t->method == 1 ? pr__num(call, now + min) : ""};
  if ((st = pr__run(call, "tender", tag, 17, pargs, &v)) != GM_OK) return st;
  Gm__Procurement__TenderView *view;
  if ((st = pr__tender_read(call, in->tender_id, &view)) != GM_OK) return st;
  pr__tender_event(call, view->tender, "published", NULL);
  *reply = &view->base;
  return GM_OK;
}

/*
 * The items of an amendment: those given replace, buyer by buyer, the
 * items of each buyer they name (the lead agency's when an item names
 * none); a joint buyer the amendment names no item of keeps its items as
 * they are.  The items stay grouped by buyer, the lead's first.
 */
static gm_status pr__amend_items(gm_call *call, Gm__Procurement__Tender *t,
                                 const Gm__Procurement__Tender *c) {
  gm_status st;
  if (c->n_items == 0)
    return host->fail(call, GM_INVALID_ARGUMENT,
                      "items is named but no item is given; an amendment of "
                      "items gives every item of each buyer it changes (the "
                      "lead agency's without a buyer)");
  if (c->n_items > PR_MAX_ITEMS)
    return host->fail(call, GM_INVALID_ARGUMENT, "%zu items; at most %d",
                      c->n_items, PR_MAX_ITEMS);
  /* The buyers were published with the tender and an amendment cannot
     change them: the refusal names those an item may be for. */
  char *who = t->agency;
  for (size_t b = 0; b < t->n_buyers; b++)
    who = host->sprintf(call, "%s, %s", who, t->buyers[b]);
  const char *other = host->sprintf(
      call,
      "who is not a buyer of this tender; an amendment cannot add a buyer "
      "(the buyers were published with the tender): %s%s%sleave the item's "
      "buyer empty for %s's",
      t->n_buyers ? "give the item to one of " : "", t->n_buyers ? who : "",
      t->n_buyers ? ", or " : "", t->agency);
  for (size_t k = 0; k < c->n_items; k++) {
    if (!c->items[k]->buyer[0]) c->items[k]->buyer = t->agency;
    if ((st = pr__check_item(call, c->items[k], t->agency, t->buyers,
                             t->n_buyers, other)) != GM_OK)
      return st;
  }
  /* The owners in order: the lead, then each joint buyer. */
  size_t no = t->n_buyers + 1, n = 0, kept = 0;
  const char **owners = host->alloc(call, no * sizeof *owners);
  owners[0] = t->agency;
  for (size_t b = 0; b < t->n_buyers; b++) owners[b + 1] = t->buyers[b];
  int *named = host->alloc(call, no * sizeof *named);
  for (size_t o = 0; o < no; o++) {
    named[o] = 0;
    for (size_t k = 0; k < c->n_items; k++)
      named[o] |= !strcmp(c->items[k]->buyer, owners[o]);
  }
  for (size_t o = 0; o < no; o++)
    if (!named[o])
      for (size_t i = 0; i < t->n_items; i++)
        kept += !strcmp(t->items[i]->buyer[0] ? t->items[i]->buyer : t->agency,
                        owners[o]);
  if (c->n_items + kept > PR_MAX_ITEMS)
    return host->fail(call, GM_INVALID_ARGUMENT,
                      "the amended tender would hold %zu items (%zu given, "
                      "%zu kept: those of the buyers no given item names); "
                      "at most %d",
                      c->n_items + kept, c->n_items, kept, PR_MAX_ITEMS);
  Gm__Procurement__Item **all =
      host->alloc(call, (c->n_items + kept + 1) * sizeof *all);
  for (size_t o = 0; o < no; o++) {
    Gm__Procurement__Item *const *from = named[o] ? c->items : t->items;
    size_t nfrom = named[o] ? c->n_items : t->n_items;
    for (size_t i = 0; i < nfrom; i++)
      if (!strcmp(from[i]->buyer[0] ? from[i]->buyer : t->agency, owners[o]))
        all[n++] = from[i];
  }
  t->items = all;
  t->n_items = n;
  return GM_OK;
}

gm_status pr__tender_amend(gm_call *call, const ProtobufCMessage *req,
                           ProtobufCMessage **reply) {
  const Gm__Procurement__AmendRequest *in = (const void *)req;
  const char *tag;
  gm_status st;
  Gm__Procurement__TenderView *view;
  if ((st = pr__tender_read(call, in->tender_id, &view)) != GM_OK) return st;
  if (!pr__may_see(call, view->tender))
    return host->fail(call, GM_NOT_FOUND,
                      "no tender %s; gm procurement tenders lists the "
                      "published ones",
                      in->tender_id);
  Gm__Procurement__Tender *t = view->tender, *c = in->changes;
  if ((st = pr__text(call, "note", in->note, 2000, 1)) != GM_OK) return st;
  if (!in->note[0])
    return host->fail(call, GM_INVALID_ARGUMENT,
                      "note is empty; say what changed and why, for the "
                      "amendment notice");
  if (in->n_fields == 0 || !c)
    return host->fail(call, GM_INVALID_ARGUMENT,
                      "nothing to amend: name the fields (title, "
                      "description, budget, deadline_ms, bid_security, "
                      "bond_bp, items) and give them in changes");
  int items = 0, budget = 0;
  for (size_t i = 0; i < in->n_fields; i++) {
    const char *fl = in->fields[i];
    if (!strcmp(fl, "title"))
      t->title = c->title;
    else if (!strcmp(fl, "description"))
      t->description = c->description;
    else if (!strcmp(fl, "budget")) {
      t->budget = c->budget;
      budget = 1;
    } else if (!strcmp(fl, "deadline_ms"))
      t->deadline_ms = c->deadline_ms;
    else if (!strcmp(fl, "bid_security"))
      t->bid_security = c->bid_security;
    else if (!strcmp(fl, "bond_bp"))
      t->bond_bp = c->bond_bp;
    else if (!strcmp(fl, "items")) {
      items = 1;
      if ((st = pr__amend_items(call, t, c)) != GM_OK) return st;
    } else
      return host->fail(call, GM_INVALID_ARGUMENT,
                        "field %.40s cannot be amended; amend title, "
                        "description, budget, deadline_ms, bid_security, "
                        "bond_bp or items",
                        fl);
  }
  /* A change that may affect the preparation of bids must leave time
     before the bid deadline, or the deadline moves: 15 days for a tender
     (MOF Order 87 art. 27; to the next whole minute), 3 working days for a
     request for quotations (MOF Order 74 art. 10: Order 87 is for tenders
     only; the deadline then comes after the end of the 3rd working day
     after the amendment's day, as for its publication). */
  const char **fields = (const char **)in->fields;
  size_t nfields = in->n_fields;
  const char *note = in->note;
  int64_t now = host->now_ms(host->market(call));
  int rfq = t->method == GM__PROCUREMENT__METHOD__METHOD_RFQ;
  const char *rule = rfq ? "MOF Order 74 art. 10" : "MOF Order 87 art. 27";
  const char *period =
      rfq ? host->sprintf(call, "%d working days", PR_CLARIFY_RFQ_WORKING_DAYS)
          : host->sprintf(call, "%d days", PR_CLARIFY_DAYS);
  int64_t limit = now + PR_CLARIFY_DAYS * PR_DAY_MS;
  int64_t earliest = (limit / 60000 + 1) * 60000;
  if (in->affects_bids && rfq) {
    int64_t end;
    if ((st = pr__working_days_end(call, pr_day_of(now),
                                   PR_CLARIFY_RFQ_WORKING_DAYS, &end)) != GM_OK)
      return st;
    limit = earliest = end + 1;
  }
  if (in->affects_bids && t->deadline_ms < limit) {
    char d1[24], d2[24];
    if (in->keep_deadline)
      return host->fail(call, GM_FAILED_PRECONDITION,
                        "a change that may affect the preparation of bids "
                        "must leave %s before the bid deadline (%s); %s "
                        "leaves fewer: the earliest deadline allowed is %s "
                        "(Asia/Shanghai); amend it with that deadline or "
                        "later, or let it move there",
                        period, rule, pr_datetime(t->deadline_ms, d1),
                        pr_datetime(earliest, d2));
    t->deadline_ms = earliest;
    int listed = 0;
    for (size_t i = 0; i < nfields; i++)
      listed |= !strcmp(fields[i], "deadline_ms");
    if (!listed) {
      const char **f = host->alloc(call, (nfields + 1) * sizeof *f);
      memcpy(f, fields, nfields * sizeof *f);
      f[nfields++] = "deadline_ms";
      fields = f;
    }
    note = host->sprintf(call,
                         "%s [the bid deadline moves to %s so that %s "
                         "remain: %s]",
                         in->note, pr_datetime(earliest, d2), period, rule);
  }
  /* Only the items the amendment gives take the catalogue's rules as they
     are now; the others keep the rules they were published with, which
     bidders price against: an amendment changes only what its notice
     names, and a change of the catalogue is for tenders (and items)
     published after it. */
  if (items && (st = pr__fix_rules(call, c->items, c->n_items)) != GM_OK)
    return st;
  if ((st = pr__check_tender(call, t, t->agency, 1, budget || items)) != GM_OK)
    return st;
  if ((st = pr__tender_tag(call, t->id, &tag)) != GM_OK) return st;
  int64_t min;
  const char *what;
  if ((st = pr__min_period(call, (int)t->method, t->published_ms, &min,
                           &what)) != GM_OK)
    return st;
  int32_t ver = t->version;
  /* The stored definition carries no broker-set state. */
  const char *state = t->state, *seed = t->seed, *reason = t->reason;
  t->state = t->seed = t->reason = "";
  const char *def = pr__def_encode(call, t);
  t->state = (char *)state;
  t->seed = (char *)seed;
  t->reason = (char *)reason;
  const char *args[] = {"amend",
                        t->id,
                        pr__num(call, ver),
                        def,
                        pr__num(call, t->deadline_ms),
                        pr__num(call, t->budget),
                        pr__item_ids(call, t),
                        pr__num(call, t->bid_security),
                        pr__num(call, t->bond_bp),
                        t->title,
                        pr__list(call, (char **)fields, nfields, 0),
                        note,
                        pr__num(call, min),
                        what};
  const gm_value *v;
  if ((st = pr__run(call, "tender", tag, 14, args, &v)) != GM_OK) return st;
  if ((st = pr__tender_read(call, t->id, &view)) != GM_OK) return st;
  pr__tender_event(call, view->tender, "amended", note);
  *reply = &view->base;
  return GM_OK;
}

gm_status pr__tender_cancel(gm_call *call, const ProtobufCMessage *req,
                            ProtobufCMessage **reply) {
  const Gm__Procurement__TenderRequest *in = (const void *)req;
  const char *tag;
  gm_status st;
  if ((st = pr__tender_tag(call, in->tender_id, &tag)) != GM_OK) return st;
  if ((st = pr__text(call, "reason", in->reason, 500, 0)) != GM_OK) return st;
  if (!in->reason[0])
    return host->fail(call, GM_INVALID_ARGUMENT,
                      "reason is empty; a cancellation is published with its "
                      "reason");
  const char *args[] = {"cancel", in->tender_id, in->reason};
  const gm_value *v;
  if ((st = pr__run(call, "tender", tag, 3, args, &v)) != GM_OK) return st;
  Gm__Procurement__TenderView *view;
  if ((st = pr__tender_read(call, in->tender_id, &view)) != GM_OK) return st;
  pr__tender_event(call, view->tender, "cancelled", in->reason);
  *reply = &view->base;
  return GM_OK;
}

gm_status pr__tender_security(gm_call *call, const ProtobufCMessage *req,
                              ProtobufCMessage **reply) {
  const Gm__Procurement__SecurityRequest *in = (const void *)req;
  const char *tag;
  gm_status st;
  if ((st = pr__tender_tag(call, in->tender_id, &tag)) != GM_OK) return st;
  if (!pr_valid_name(in->supplier, 1, 64, 0))
    return host->fail(call, GM_INVALID_ARGUMENT,
                      "supplier \"%.64s\" is not a participant id",
                      in->supplier);
  if (in->amount < 0 || in->amount > PR_MAX_AMOUNT)
    return host->fail(call, GM_INVALID_ARGUMENT,
                      "amount must be 0 .. 10^13 yuan (0 records a refund)");
  if ((st = pr__text(call, "reference", in->reference, 200, 0)) != GM_OK)
    return st;
  /* Security comes from a supplier in the register (the opening
     disqualifies anyone else); whether it has bid yet stays sealed.  A
     refund (0) is recorded whatever the register says now: a supplier
     whose entry went (a credit code reclaimed by another party) still gets
     back what it lodged. */
  const char *oargs[] = {"orgget", in->supplier};
  const gm_value *org = NULL;
  if (in->amount > 0 &&
      (st = pr__run(call, "catalogue", pr__org_tag(call, in->supplier), 2,
                    oargs, &org)) != GM_OK)
    return st;
  if (org && org->n == 0)
    return host->fail(call, GM_FAILED_PRECONDITION,
                      "%s is not a registered supplier (no gm procurement "
                      "register); check the name, or ask the supplier to "
                      "register before its security is recorded",
                      in->supplier);
  const char *args[] = {"security", in->tender_id, in->supplier,
                        pr__num(call, in->amount), in->reference};
  const gm_value *v;
  if ((st = pr__run(call, "tender", tag, 5, args, &v)) != GM_OK) return st;
  Gm__Procurement__SecurityReply *out = host->alloc(call, sizeof *out);
  gm__procurement__security_reply__init(out);
  out->tender_id = in->tender_id;
  out->supplier = in->supplier;
  out->amount = pr__i(v, 0);
  out->required = pr__i(v, 1);
  out->currency = (char *)pr__s(v, 2);
  *reply = &out->base;
  return GM_OK;
}
