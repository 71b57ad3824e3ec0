/*
 * A tender as an OCDS 1.1.5 release package: one release holding the
 * tender's current state from the ledger (planning budget, the tender with
 * its items and amendments, the bids once opened, the awards, the contracts
 * with their payments, the parties with their roles; several agencies are
 * all parties with the buyer role, and each contract names its own buyer).
 * plugins/procurement/procurement.md maps each field; the tests validate
 * every export against the schema (plugins/procurement/ocds/).
 *
 * Amounts are fen, and OCDS amounts are numbers in the currency's unit:
 * jansson has no exact decimal type, so each amount goes in as a marker
 * string "\u0001<fen>" and is replaced by its decimal text ("1234.56")
 * after the dump.  No amount passes through a double.  No text of a tender
 * holds a control character (every text field is checked on the way in),
 * so no marker can come from one.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "procurement.h"

#define PR_OCDS_BID_EXTENSION                                      \
  "https://raw.githubusercontent.com/open-contracting-extensions/" \
  "ocds_bid_extension/v1.1.5/extension.json"

static json_t *pr__amount(int64_t fen) {
  char buf[40];
  snprintf(buf, sizeof buf, "\x01%lld", (long long)fen);
  return json_string(buf);
}

static json_t *pr__value(int64_t fen, const char *currency) {
  json_t *v = json_object();
  json_object_set_new(v, "amount", pr__amount(fen));
  json_object_set_new(v, "currency", json_string(currency));
  return v;
}

static json_t *pr__date(int64_t ms) {
  char buf[32];
  return json_string(pr_rfc3339(ms, buf));
}

/* The dump with every amount marker ("\u0001<fen>", quotes included)
   replaced by its decimal text. */
static char *pr__amounts(gm_call *call, const char *dump) {
  static const char mark[] = "\"\\u0001";
  size_t n = strlen(dump);
  char *out = host->alloc(call, n + 1), *o = out;
  for (const char *p = dump; *p;) {
    if (strncmp(p, mark, sizeof mark - 1) == 0) {
      char *end;
      long long fen = strtoll(p + sizeof mark - 1, &end, 10);
      if (*end == '"') {
        char y[32];
        o += sprintf(o, "%s", pr_yuan(fen, y));
        p = end + 1;
        continue;
      }
    }
    *o++ = *p++;
  }
  *o = '\0';
  return out;
}

static const char *pr__t(const gm_param *c) {
  return c->type == GM_PARAM_TEXT && c->s ? c->s : "";
}

/* ---- parties ---- */

typedef struct pr__parties {
  gm_call *call;
  json_t *list; /* the release's parties */
  json_t *byid; /* id -> its party object */
} pr__parties;

static int pr__party_row(void *arg, size_t ncols, const gm_param *c) {
  json_t *p = arg;
  if (ncols < 2) return 1;
  json_object_set_new(p, "name", json_string(pr__t(&c[1])));
  json_t *id = json_object();
  json_object_set_new(id, "scheme", json_string("CN-USCC"));
  json_object_set_new(id, "id", json_string(pr__t(&c[0])));
  json_object_set_new(id, "legalName", json_string(pr__t(&c[1])));
  json_object_set_new(p, "identifier", id);
  return 1;
}

/* The party `id`, added with `role` (once each). */
static json_t *pr__party(pr__parties *ps, const char *id, const char *role) {
  json_t *p = json_object_get(ps->byid, id);
  if (!p) {
    p = json_object();
    json_object_set_new(p, "id", json_string(id));
    json_object_set_new(p, "name", json_string(id));
    json_object_set_new(p, "roles", json_array());
    host->ledger_query(
        ps->call, "SELECT uscc, name FROM procurement_parties WHERE id = ?1",
        (gm_param[]){GM_TEXT(id)}, 1, pr__party_row, p);
    json_array_append_new(ps->list, p);
    json_object_set(ps->byid, id, p);
  }
  json_t *roles = json_object_get(p, "roles");
  size_t i;
  json_t *r;
  json_array_foreach(roles, i,
                     r) if (strcmp(json_string_value(r), role) == 0) return p;
  json_array_append_new(roles, json_string(role));
  return p;
}

static json_t *pr__ref(pr__parties *ps, const char *id, const char *role) {
  json_t *p = pr__party(ps, id, role), *ref = json_object();
  json_object_set(ref, "id", json_object_get(p, "id"));
  json_object_set(ref, "name", json_object_get(p, "name"));
  return ref;
}

/* ---- the pieces ---- */

typedef struct pr__ctx {
  gm_call *call;
  const char *id;
  const char *currency;
  const Gm__Procurement__Tender *def;
  pr__parties parties;
  json_t *arr;
  int64_t latest; /* the latest date seen, for the release's date */
  int64_t now;
} pr__ctx;

static void pr__seen(pr__ctx *x, int64_t ms) {
  if (ms > x->latest) x->latest = ms;
}

static json_t *pr__item_json(const Gm__Procurement__Item *it) {
  json_t *o = json_object(), *cl = json_object(), *unit = json_object();
  json_object_set_new(o, "id", json_string(it->id));
  json_object_set_new(
      o, "description",
      json_string(it->description[0] ? it->description : it->category_name));
  json_object_set_new(cl, "scheme", json_string("GM-GREEN-CATALOGUE"));
  json_object_set_new(cl, "id", json_string(it->category));
  json_object_set_new(cl, "description", json_string(it->category_name));
  json_object_set_new(o, "classification", cl);
  json_object_set_new(o, "quantity", json_integer(it->quantity));
  json_object_set_new(unit, "name", json_string(it->unit));
  json_object_set_new(o, "unit", unit);
  return o;
}

static int pr__amendment_row(void *arg, size_t ncols, const gm_param *c) {
  pr__ctx *x = arg;
  if (ncols < 4) return 1;
  json_t *a = json_object();
  json_object_set_new(a, "id",
                      json_string(host->sprintf(x->call, "%s-v%lld", x->id,
                                                (long long)c[0].i)));
  json_object_set_new(a, "date", pr__date(c[3].i));
  json_object_set_new(a, "rationale", json_string(pr__t(&c[2])));
  json_object_set_new(
      a, "description",
      json_string(host->sprintf(x->call, "version %lld changes %s",
                                (long long)c[0].i, pr__t(&c[1]))));
  json_array_append_new(x->arr, a);
  pr__seen(x, c[3].i);
  return 0;
}

/* Bids after the opening: supplier state hash submitted valid bid_price */
static int pr__bid_row(void *arg, size_t ncols, const gm_param *c) {
  pr__ctx *x = arg;
  if (ncols < 7) return 1;
  const char *who = pr__t(&c[0]), *state = pr__t(&c[1]);
  json_t *b = json_object(), *ts = json_array();
  json_object_set_new(b, "id",
                      json_string(host->sprintf(x->call, "%s-%s", x->id, who)));
  json_object_set_new(b, "date", pr__date(c[3].i));
  const char *status = !strcmp(state, "withdrawn") ? "withdrawn"
                       : c[5].type != GM_PARAM_INT ? "pending"
                       : c[4].i                    ? "valid"
                                                   : "disqualified";
  json_object_set_new(b, "status", json_string(status));
  json_array_append_new(ts, pr__ref(&x->parties, who, "tenderer"));
  json_object_set_new(b, "tenderers", ts);
  /* A bid priced beyond any amount has no price to give: no value rather
     than a false 0 (ocds/README.md).  c[7] is the sheet's no_price flag,
     or for rows settled before it the old recognition by the reasons'
     text (PR_SQL_NO_PRICE). */
  if (c[5].type == GM_PARAM_INT && !(ncols > 7 && c[7].i))
    json_object_set_new(b, "value", pr__value(c[5].i, x->currency));
  json_object_set_new(b, "hash", json_string(pr__t(&c[2])));
  json_array_append_new(x->arr, b);
  pr__seen(x, c[3].i);
  return 0;
}

/* Awards: award supplier value status notice chu reason open_challenges
   last_answer updated */
static int pr__award_row(void *arg, size_t ncols, const gm_param *c) {
  pr__ctx *x = arg;
  if (ncols < 10) return 1;
  const char *st = pr__t(&c[3]);
  int active = strcmp(st, "cancelled") && x->now > c[5].i && !c[7].i;
  json_t *a = json_object(), *sup = json_array();
  json_object_set_new(a, "id",
                      json_string(host->sprintf(x->call, "%s-A%lld", x->id,
                                                (long long)c[0].i)));
  json_object_set_new(a, "title",
                      json_string(host->sprintf(x->call, "award %lld of %s",
                                                (long long)c[0].i, x->id)));
  /* pending: the challenge period (standstill) runs, or a challenge
     lodged in it is still open (nothing is signed); active: in force */
  json_object_set_new(a, "status",
                      json_string(!strcmp(st, "cancelled") ? "cancelled"
                                  : active                 ? "active"
                                                           : "pending"));
  if (pr__t(&c[6])[0])
    json_object_set_new(a, "description", json_string(pr__t(&c[6])));
  json_object_set_new(a, "date", pr__date(c[4].i));
  json_object_set_new(a, "value", pr__value(c[2].i, x->currency));
  json_array_append_new(
      sup, pr__ref(&x->parties, pr__t(&c[1]),
                   strcmp(st, "cancelled") ? "supplier" : "tenderer"));
  json_object_set_new(a, "suppliers", sup);
  json_array_append_new(x->arr, a);
  pr__seen(x, c[4].i);
  pr__seen(x, c[9].i);
  /* No event marks the moment an award turns active (the end of its
     challenge period, or the answer to the last challenge open after it):
     that moment is a change of what the release says, so the release's id
     and date follow it.  Otherwise an export before it and one after would
     carry the same release id with different contents. */
  if (active) pr__seen(x, c[8].i > c[5].i + 1 ? c[8].i : c[5].i + 1);
  return 0;
}

typedef struct pr__pay {
  pr__ctx *x;
  json_t *list;
  const char *agency, *supplier;
} pr__pay;

static int pr__payment_row(void *arg, size_t ncols, const gm_param *c) {
  pr__pay *p = arg;
  if (ncols < 3) return 1;
  json_t *t = json_object();
  json_object_set_new(t, "id", json_string(pr__t(&c[0])));
  json_object_set_new(t, "date", pr__date(c[2].i));
  json_object_set_new(t, "value", pr__value(c[1].i, p->x->currency));
  json_object_set_new(t, "payer", pr__ref(&p->x->parties, p->agency, "payer"));
  json_object_set_new(t, "payee",
                      pr__ref(&p->x->parties, p->supplier, "payee"));
  json_array_append_new(p->list, t);
  pr__seen(p->x, c[2].i);
  return 0;
}

/* Contracts: id award agency supplier value status items sa ss bond
   delivered accepted paid updated */
static int pr__contract_row(void *arg, size_t ncols, const gm_param *c) {
  pr__ctx *x = arg;
  if (ncols < 14) return 1;
  const char *cid = pr__t(&c[0]), *st = pr__t(&c[5]);
  json_t *k = json_object();
  json_object_set_new(k, "id", json_string(cid));
  json_object_set_new(k, "awardID",
                      json_string(host->sprintf(x->call, "%s-A%lld", x->id,
                                                (long long)c[1].i)));
  json_object_set_new(
      k, "title",
      json_string(host->sprintf(x->call, "contract of %s with %s for %s",
                                pr__t(&c[2]), pr__t(&c[3]), x->id)));
  json_object_set_new(k, "status", json_string(st));
  json_object_set_new(k, "value", pr__value(c[4].i, x->currency));
  /* Joint procurement: each contract is its own agency's. */
  json_object_set_new(k, "buyer", pr__ref(&x->parties, pr__t(&c[2]), "buyer"));
  if (c[7].i && c[8].i)
    json_object_set_new(k, "dateSigned",
                        pr__date(c[7].i > c[8].i ? c[7].i : c[8].i));
  json_t *items = json_array();
  char *list = host->sprintf(x->call, "%s", pr__t(&c[6])), *save = NULL;
  for (char *id = strtok_r(list, ",", &save); id;
       id = strtok_r(NULL, ",", &save))
    for (size_t i = 0; i < x->def->n_items; i++)
      if (!strcmp(x->def->items[i]->id, id))
        json_array_append_new(items, pr__item_json(x->def->items[i]));
  json_object_set_new(k, "items", items);
  json_t *impl = json_object();
  pr__pay p = {x, json_array(), pr__t(&c[2]), pr__t(&c[3])};
  host->ledger_query(x->call,
                     "SELECT event, amount, time_ms FROM procurement_payments"
                     " WHERE contract_id = ?1 ORDER BY time_ms, event",
                     (gm_param[]){GM_TEXT(cid)}, 1, pr__payment_row, &p);
  json_object_set_new(impl, "transactions", p.list);
  json_t *ms = json_array();
  static const char *const steps[][2] = {{"delivery", "delivered"},
                                         {"acceptance", "accepted"}};
  for (int s = 0; s < 2; s++) {
    json_t *m = json_object();
    int64_t when = c[10 + s].i;
    json_object_set_new(
        m, "id",
        json_string(host->sprintf(x->call, "%s-%s", cid, steps[s][0])));
    json_object_set_new(m, "title", json_string(steps[s][0]));
    json_object_set_new(m, "type", json_string("delivery"));
    json_object_set_new(m, "status", json_string(when ? "met" : "scheduled"));
    if (when) json_object_set_new(m, "dateMet", pr__date(when));
    json_array_append_new(ms, m);
  }
  json_object_set_new(impl, "milestones", ms);
  json_object_set_new(k, "implementation", impl);
  if (c[9].i) {
    json_object_set_new(k, "description",
                        json_string(host->sprintf(
                            x->call, "performance bond %s %s",
                            pr_yuan(c[9].i, (char[32]){0}), x->currency)));
  }
  json_array_append_new(x->arr, k);
  pr__seen(x, c[13].i);
  return 0;
}

typedef struct pr__head {
  int found;
  const char *lead, *state, *definition;
  int64_t version, published, updated, deadline;
} pr__head;

static int pr__head_row(void *arg, size_t ncols, const gm_param *c) {
  pr__head *h = arg;
  if (ncols < 7) return 1;
  h->found = 1;
  h->lead = pr__t(&c[0]);
  h->state = pr__t(&c[1]);
  h->version = c[2].i;
  h->definition = pr__t(&c[3]);
  h->published = c[4].i;
  h->updated = c[5].i;
  h->deadline = c[6].i;
  return 1;
}

/* ---- one release per change (releases.c wrote them) ---- */

typedef struct pr__rels {
  json_t *list;
  int64_t latest;
  int bad;
} pr__rels;

static int pr__release_row(void *arg, size_t ncols, const gm_param *c) {
  pr__rels *r = arg;
  if (ncols < 2) return 1;
  json_t *rel = json_loads(pr__t(&c[0]), 0, NULL);
  if (!rel) {
    r->bad = 1;
    return 1;
  }
  json_array_append_new(r->list, rel);
  if (c[1].i > r->latest) r->latest = c[1].i;
  return 0;
}

static gm_status pr__export_changes(gm_call *call, const char *id,
                                    Gm__Procurement__Export **out) {
  pr__rels r = {json_array(), 0, 0};
  gm_status st = host->ledger_query(
      call,
      "SELECT release, time_ms FROM procurement_releases WHERE tender_id = ?1"
      " ORDER BY rowid",
      (gm_param[]){GM_TEXT(id)}, 1, pr__release_row, &r);
  if (st != GM_OK || r.bad) {
    json_decref(r.list);
    return st != GM_OK ? st
                       : host->fail(call, GM_INTERNAL,
                                    "a release of tender %s in the ledger is "
                                    "not JSON",
                                    id);
  }
  char *ocid = host->sprintf(call, "%s-%s", pr__ocid_prefix, id);
  json_t *pkg = json_object(), *pub = json_object();
  json_object_set_new(
      pkg, "uri",
      json_string(host->sprintf(call, "urn:ocds:%s:changes:%lld", ocid,
                                (long long)r.latest)));
  json_object_set_new(pkg, "version", json_string("1.1"));
  json_object_set_new(pkg, "publishedDate", pr__date(r.latest));
  json_object_set_new(pub, "name", json_string("greenmarket procurement"));
  json_object_set_new(pkg, "publisher", pub);
  json_object_set_new(pkg, "releases", r.list);
  char *dump = json_dumps(pkg, JSON_INDENT(1) | JSON_PRESERVE_ORDER);
  json_decref(pkg);
  if (!dump) return host->fail(call, GM_INTERNAL, "the export did not dump");
  *out = host->alloc(call, sizeof **out);
  gm__procurement__export__init(*out);
  (*out)->ocid = ocid;
  (*out)->json = pr__amounts(call, dump);
  free(dump);
  return GM_OK;
}

const char *pr__ocds_status(const char *state) {
  if (!strcmp(state, "active")) return "active";
  if (!strcmp(state, "cancelled")) return "cancelled";
  if (!strcmp(state, "unsuccessful")) return "unsuccessful";
  return "complete"; /* the bid deadline passed */
}

gm_status pr__tender_export(gm_call *call, const ProtobufCMessage *req,
                            ProtobufCMessage **reply) {
  const Gm__Procurement__ExportRequest *in = (const void *)req;
  const char *tag;
  gm_status st;
  if ((st = pr__tender_tag(call, in->tender_id, &tag)) != GM_OK) return st;
  pr__head h = {0};
  if ((st = host->ledger_query(
           call,
           "SELECT lead, state, version, definition, published_ms,"
           " updated_ms, deadline_ms FROM procurement_tenders"
           " WHERE tender_id = ?1",
           (gm_param[]){GM_TEXT(in->tender_id)}, 1, pr__head_row, &h)) != GM_OK)
    return st;
  /* Never published (a draft, or a draft cancelled): no public record. */
  if (!h.found || !strcmp(h.state, "draft") || h.published <= 0)
    return host->fail(call, GM_NOT_FOUND,
                      "no published tender %s in the ledger (a tender is "
                      "exported once it is published and settled)",
                      in->tender_id);
  if (in->per_change) {
    Gm__Procurement__Export *out = NULL;
    if ((st = pr__export_changes(call, in->tender_id, &out)) != GM_OK)
      return st;
    *reply = &out->base;
    return GM_OK;
  }
  Gm__Procurement__Tender *t = pr__def_decode(call, h.definition);
  if (!t)
    return host->fail(call, GM_INTERNAL,
                      "tender %s: its definition in the "
                      "ledger does not decode",
                      in->tender_id);
  pr__ctx x = {.call = call,
               .id = in->tender_id,
               .currency = t->currency,
               .def = t,
               .latest = h.updated,
               .now = host->now_ms(host->market(call))};
  x.parties.call = call;
  x.parties.list = json_array();
  x.parties.byid = json_object();
  char *ocid = host->sprintf(call, "%s-%s", pr__ocid_prefix, in->tender_id);

  json_t *rel = json_object(), *tags = json_array();
  json_object_set_new(rel, "ocid", json_string(ocid));
  json_object_set_new(rel, "initiationType", json_string("tender"));
  json_object_set_new(rel, "language", json_string("zh"));
  json_object_set_new(rel, "buyer", pr__ref(&x.parties, h.lead, "buyer"));
  pr__party(&x.parties, h.lead, "procuringEntity");
  for (size_t i = 0; i < t->n_buyers; i++)
    pr__party(&x.parties, t->buyers[i], "buyer");

  json_t *planning = json_object(), *budget = json_object();
  json_object_set_new(budget, "description",
                      json_string("the buyers' budget for this tender"));
  json_object_set_new(budget, "amount", pr__value(t->budget, t->currency));
  json_object_set_new(planning, "budget", budget);
  json_object_set_new(rel, "planning", planning);

  json_t *tender = json_object(), *items = json_array(),
         *period = json_object();
  json_object_set_new(tender, "id", json_string(in->tender_id));
  json_object_set_new(tender, "title", json_string(t->title));
  if (t->description[0])
    json_object_set_new(tender, "description", json_string(t->description));
  json_object_set_new(tender, "status", json_string(pr__ocds_status(h.state)));
  json_object_set_new(tender, "procuringEntity",
                      pr__ref(&x.parties, h.lead, "procuringEntity"));
  for (size_t i = 0; i < t->n_items; i++)
    json_array_append_new(items, pr__item_json(t->items[i]));
  json_object_set_new(tender, "items", items);
  json_object_set_new(tender, "value", pr__value(t->budget, t->currency));
  int rfq = t->method == GM__PROCUREMENT__METHOD__METHOD_RFQ;
  json_object_set_new(tender, "procurementMethod",
                      json_string(rfq ? "selective" : "open"));
  json_object_set_new(tender, "procurementMethodDetails",
                      json_string(rfq ? "request for quotations (询价)"
                                      : "open tender (公开招标)"));
  static const char *const kinds[] = {"goods", "services", "works"};
  json_object_set_new(tender, "mainProcurementCategory",
                      json_string(kinds[t->kind <= 2 ? t->kind : 0]));
  int scoring = t->award_method == GM__PROCUREMENT__AWARD_METHOD__AWARD_SCORING;
  char pc[16];
  json_object_set_new(tender, "awardCriteria",
                      json_string(scoring ? "ratedCriteria" : "priceOnly"));
  json_object_set_new(
      tender, "awardCriteriaDetails",
      json_string(host->sprintf(
          call,
          "%s; evaluated price = bid price less the green deduction%s "
          "and the SME deduction%s; contracts at the bid price",
          scoring ? host->sprintf(call,
                                  "comprehensive scoring (MOF Order 87), "
                                  "price weight %s",
                                  pr_percent(t->price_weight_bp, pc))
                  : "lowest evaluated price (MOF Order 87)",
          t->green_preference ? " (priority categories)" : " (not applied)",
          t->sme_preference ? " (small and micro enterprises)"
                            : " (not applied)")));
  json_t *sm = json_array();
  json_array_append_new(sm, json_string("electronicSubmission"));
  json_object_set_new(tender, "submissionMethod", sm);
  json_object_set_new(tender, "datePublished", pr__date(h.published));
  json_object_set_new(period, "startDate", pr__date(h.published));
  json_object_set_new(period, "endDate", pr__date(h.deadline));
  json_object_set_new(tender, "tenderPeriod", period);
  x.arr = json_array();
  host->ledger_query(call,
                     "SELECT version, fields, note, time_ms FROM"
                     " procurement_amendments WHERE tender_id = ?1"
                     " ORDER BY version",
                     (gm_param[]){GM_TEXT(in->tender_id)}, 1, pr__amendment_row,
                     &x);
  if (json_array_size(x.arr))
    json_object_set_new(tender, "amendments", x.arr);
  else
    json_decref(x.arr);
  json_array_append_new(tags, json_string("tender"));
  if (!strcmp(h.state, "cancelled"))
    json_array_append_new(tags, json_string("tenderCancellation"));

  /* The bids, once opened (the latest round's sheet says valid or not). */
  int64_t opened = 0;
  pr__ledger_int(call,
                 "SELECT count(*) FROM procurement_rounds WHERE tender_id = ?1",
                 (gm_param[]){GM_TEXT(in->tender_id)}, 1, &opened);
  if (opened > 0) {
    x.arr = json_array();
    host->ledger_query(
        call,
        "SELECT b.supplier, b.state, b.hash, b.submitted_ms, s.valid,"
        " s.bid_price, b.opened_ms, " PR_SQL_NO_PRICE("s")
        " FROM procurement_bids b LEFT JOIN"
        " procurement_sheet s ON s.tender_id = b.tender_id AND s.supplier ="
        " b.supplier AND s.round = (SELECT max(round) FROM procurement_rounds"
        " WHERE tender_id = ?1) WHERE b.tender_id = ?1 ORDER BY b.supplier",
        (gm_param[]){GM_TEXT(in->tender_id)}, 1, pr__bid_row, &x);
    /* OCDS: tenderers are "all parties who submit a bid", and
       numberOfTenderers "the number of parties who submit a bid": a
       bidder that later withdrew submitted one, so it counts (its bid's
       status says withdrawn; ocds/README.md). */
    json_t *bids = json_object(), *tenderers = json_array();
    size_t i, n = 0;
    json_t *b;
    json_array_foreach(x.arr, i, b) {
      n++;
      json_array_append(tenderers,
                        json_array_get(json_object_get(b, "tenderers"), 0));
    }
    json_object_set_new(bids, "details", x.arr);
    json_object_set_new(rel, "bids", bids);
    json_object_set_new(tender, "numberOfTenderers",
                        json_integer((json_int_t)n));
    json_object_set_new(tender, "tenderers", tenderers);
  }
  json_object_set_new(rel, "tender", tender);

  x.arr = json_array();
  host->ledger_query(call,
                     "SELECT a.award, a.supplier, a.value, a.status,"
                     " a.notice_ms, a.challenge_until_ms, a.reason,"
                     " (SELECT count(*) FROM procurement_challenges c"
                     " WHERE c.tender_id = a.tender_id AND c.award = a.award"
                     " AND c.status = 'open'),"
                     " (SELECT coalesce(max(c.answered_ms), 0) FROM"
                     " procurement_challenges c WHERE c.tender_id ="
                     " a.tender_id AND c.award = a.award), a.updated_ms"
                     " FROM procurement_awards a"
                     " WHERE a.tender_id = ?1 ORDER BY a.award",
                     (gm_param[]){GM_TEXT(in->tender_id)}, 1, pr__award_row,
                     &x);
  if (json_array_size(x.arr)) {
    json_object_set_new(rel, "awards", x.arr);
    json_array_append_new(tags, json_string("award"));
  } else {
    json_decref(x.arr);
  }
  x.arr = json_array();
  host->ledger_query(
      call,
      "SELECT contract_id, award, agency, supplier, value, status, items,"
      " agency_signed_ms, supplier_signed_ms, bond, delivered_ms,"
      " accepted_ms, paid, updated_ms FROM procurement_contracts"
      " WHERE tender_id = ?1 ORDER BY contract_id",
      (gm_param[]){GM_TEXT(in->tender_id)}, 1, pr__contract_row, &x);
  if (json_array_size(x.arr)) {
    json_object_set_new(rel, "contracts", x.arr);
    json_array_append_new(tags, json_string("contract"));
  } else {
    json_decref(x.arr);
  }
  json_object_set_new(rel, "parties", x.parties.list);
  json_decref(x.parties.byid);
  json_object_set_new(
      rel, "id",
      json_string(host->sprintf(call, "%s-%lld", ocid, (long long)x.latest)));
  json_object_set_new(rel, "date", pr__date(x.latest));
  json_object_set_new(rel, "tag", tags);

  json_t *pkg = json_object(), *rels = json_array(), *pub = json_object();
  json_object_set_new(pkg, "uri",
                      json_string(host->sprintf(call, "urn:ocds:%s:%lld", ocid,
                                                (long long)x.latest)));
  json_object_set_new(pkg, "version", json_string("1.1"));
  if (opened > 0) {
    /* bids.details is the bid extension's, at the version matching the
       schema exported (1.1.5). */
    json_t *ext = json_array();
    json_array_append_new(ext, json_string(PR_OCDS_BID_EXTENSION));
    json_object_set_new(pkg, "extensions", ext);
  }
  json_object_set_new(pkg, "publishedDate", pr__date(x.latest));
  json_object_set_new(pub, "name", json_string("greenmarket procurement"));
  json_object_set_new(pkg, "publisher", pub);
  json_array_append_new(rels, rel);
  json_object_set_new(pkg, "releases", rels);
  char *dump = json_dumps(pkg, JSON_INDENT(1) | JSON_PRESERVE_ORDER);
  json_decref(pkg);
  if (!dump) return host->fail(call, GM_INTERNAL, "the export did not dump");
  Gm__Procurement__Export *out = host->alloc(call, sizeof *out);
  gm__procurement__export__init(out);
  out->ocid = ocid;
  out->json = pr__amounts(call, dump);
  free(dump);
  *reply = &out->base;
  return GM_OK;
}
