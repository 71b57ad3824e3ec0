/*
 * OCDS releases per change, written at settlement: each published change of
 * a tender (publication, amendment, state change, award notice and its
 * changes, contract changes, payments) becomes one release in
 * procurement_releases, holding what changed and the tender's identity and
 * status then.  `tender.export --per-change` (ocds.c) returns them all in
 * order, so a reader can follow the tender change by change, or merge them
 * into a record; the plain export stays the one release of the current
 * state.  Amounts are stored as ocds.c's markers ("\u0001<fen>") and
 * written as decimals by the export.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "procurement.h"

static const char *pr__f(const gm_outbox_entry *e, const char *name) {
  const char *v = gm_entry_field(e, name);
  return v ? v : "";
}

static int64_t pr__n(const gm_outbox_entry *e, const char *name) {
  return strtoll(pr__f(e, name), NULL, 10);
}

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

/* The tender as the ledger holds it in this transaction. */
typedef struct pr__head {
  int found;
  char state[32], currency[8], title[256];
  int rfq, scoring;
} pr__head;

static int pr__head_row(void *arg, size_t ncols, const gm_param *c) {
  pr__head *h = arg;
  if (ncols < 3) return 1;
  h->found = 1;
  snprintf(h->state, sizeof h->state, "%s", c[0].s ? c[0].s : "");
  snprintf(h->currency, sizeof h->currency, "%s", c[1].s ? c[1].s : "");
  const char *b64 = c[2].s ? c[2].s : "";
  size_t n = strlen(b64), got = 0;
  uint8_t *buf = malloc(n / 4 * 3 + 3);
  if (buf && sodium_base642bin(buf, n / 4 * 3 + 3, b64, n, NULL, &got, NULL,
                               sodium_base64_VARIANT_ORIGINAL) == 0) {
    Gm__Procurement__Tender *t =
        gm__procurement__tender__unpack(NULL, got, buf);
    if (t) {
      snprintf(h->title, sizeof h->title, "%s", t->title);
      h->rfq = t->method == GM__PROCUREMENT__METHOD__METHOD_RFQ;
      h->scoring =
          t->award_method == GM__PROCUREMENT__AWARD_METHOD__AWARD_SCORING;
      gm__procurement__tender__free_unpacked(t, NULL);
    }
  }
  free(buf);
  return 1;
}

/* A contract as the ledger holds it: its award and status. */
typedef struct pr__kref {
  int64_t award;
  char status[32];
} pr__kref;

static int pr__kref_row(void *arg, size_t ncols, const gm_param *c) {
  pr__kref *k = arg;
  if (ncols < 2) return 1;
  k->award = c[0].i;
  snprintf(k->status, sizeof k->status, "%s", c[1].s ? c[1].s : "");
  return 1;
}

/* The release's tag for an entry, or NULL: no release (drafts are not
   public; an amendment's own entry carries it). */
static const char *pr__tag(const gm_outbox_entry *e) {
  const char *k = e->kind, *a = pr__f(e, "action");
  if (!strcmp(k, "tender")) {
    if (!strcmp(a, "drafted") || !strcmp(a, "amended")) return NULL;
    if (!strcmp(a, "published")) return "tender";
    if (!strcmp(a, "cancelled")) return "tenderCancellation";
    return "tenderUpdate";
  }
  if (!strcmp(k, "amendment")) return "tenderAmendment";
  if (!strcmp(k, "award")) {
    if (!strcmp(a, "notice")) return "award";
    if (!strcmp(a, "cancelled") || !strcmp(a, "passed"))
      return "awardCancellation";
    return "awardUpdate";
  }
  if (!strcmp(k, "contract")) {
    if (!strcmp(a, "pending")) return "contract";
    if (!strcmp(a, "terminated")) return "contractTermination";
    return "contractUpdate";
  }
  if (!strcmp(k, "payment")) return "implementation";
  return NULL;
}

gm_status pr__release_settle(gm_ledger *tx, const gm_outbox_entry *e) {
  const char *tag = pr__tag(e), *id = pr__f(e, "id");
  if (!tag || !id[0]) return GM_OK;
  pr__head h = {0};
  gm_status st = host->ledger_tx_query(
      tx,
      "SELECT state, currency, definition FROM procurement_tenders"
      " WHERE tender_id = ?1 AND published_ms > 0",
      (gm_param[]){GM_TEXT(id)}, 1, pr__head_row, &h);
  if (st != GM_OK || !h.found) return st; /* nothing published to follow */
  char ocid[128];
  snprintf(ocid, sizeof ocid, "%s-%s", pr__ocid_prefix, id);
  int64_t t = pr__n(e, "t");

  json_t *rel = json_object(), *tender = json_object();
  json_object_set_new(rel, "ocid", json_string(ocid));
  char rid[256];
  snprintf(rid, sizeof rid, "%s-%s", ocid, e->id);
  json_object_set_new(rel, "id", json_string(rid));
  json_object_set_new(rel, "date", pr__date(t));
  json_t *tags = json_array();
  json_array_append_new(tags, json_string(tag));
  json_object_set_new(rel, "tag", tags);
  json_object_set_new(rel, "initiationType", json_string("tender"));
  json_object_set_new(tender, "id", json_string(id));
  if (h.title[0]) json_object_set_new(tender, "title", json_string(h.title));
  const char *state = h.state;
  if (!strcmp(e->kind, "tender")) state = pr__f(e, "st");
  json_object_set_new(tender, "status", json_string(pr__ocds_status(state)));
  json_object_set_new(tender, "procurementMethod",
                      json_string(h.rfq ? "selective" : "open"));
  json_object_set_new(tender, "awardCriteria",
                      json_string(h.scoring ? "ratedCriteria" : "priceOnly"));
  if (!strcmp(tag, "tender") || !strcmp(e->kind, "tender")) {
    json_t *period = json_object();
    if (pr__n(e, "pub"))
      json_object_set_new(period, "startDate", pr__date(pr__n(e, "pub")));
    if (pr__n(e, "dl"))
      json_object_set_new(period, "endDate", pr__date(pr__n(e, "dl")));
    json_object_set_new(tender, "tenderPeriod", period);
  }
  if (!strcmp(e->kind, "amendment")) {
    json_t *am = json_array(), *a = json_object();
    char aid[128], what[512];
    snprintf(aid, sizeof aid, "%s-v%s", id, pr__f(e, "ver"));
    snprintf(what, sizeof what, "version %s changes %s", pr__f(e, "ver"),
             pr__f(e, "fields"));
    json_object_set_new(a, "id", json_string(aid));
    json_object_set_new(a, "date", pr__date(t));
    json_object_set_new(a, "rationale", json_string(pr__f(e, "note")));
    json_object_set_new(a, "description", json_string(what));
    json_array_append_new(am, a);
    json_object_set_new(tender, "amendments", am);
  }
  json_object_set_new(rel, "tender", tender);

  if (!strcmp(e->kind, "award")) {
    json_t *awards = json_array(), *a = json_object(), *sup = json_array(),
           *ref = json_object();
    char aid[128];
    snprintf(aid, sizeof aid, "%s-A%s", id, pr__f(e, "n"));
    json_object_set_new(a, "id", json_string(aid));
    json_object_set_new(a, "status", json_string(pr__f(e, "st")));
    json_object_set_new(a, "date", pr__date(pr__n(e, "notice")));
    json_object_set_new(a, "value", pr__value(pr__n(e, "value"), h.currency));
    json_object_set_new(ref, "id", json_string(pr__f(e, "supplier")));
    json_array_append_new(sup, ref);
    json_object_set_new(a, "suppliers", sup);
    if (pr__f(e, "why")[0])
      json_object_set_new(a, "description", json_string(pr__f(e, "why")));
    json_array_append_new(awards, a);
    json_object_set_new(rel, "awards", awards);
  } else if (!strcmp(e->kind, "contract") || !strcmp(e->kind, "payment")) {
    json_t *ks = json_array(), *k = json_object();
    const char *kid = pr__f(e, "k");
    /* A payment names its contract only: the award and the status it has
       (the contract's own change follows in the next release). */
    pr__kref kr = {pr__n(e, "aw"), ""};
    if (!strcmp(e->kind, "payment") &&
        (st = host->ledger_tx_query(tx,
                                    "SELECT award, status FROM"
                                    " procurement_contracts WHERE"
                                    " contract_id = ?1",
                                    (gm_param[]){GM_TEXT(kid)}, 1, pr__kref_row,
                                    &kr)) != GM_OK) {
      json_decref(ks);
      json_decref(k);
      json_decref(rel);
      return st;
    }
    char aid[128];
    snprintf(aid, sizeof aid, "%s-A%lld", id, (long long)kr.award);
    json_object_set_new(k, "id", json_string(kid));
    json_object_set_new(k, "awardID", json_string(aid));
    if (!strcmp(e->kind, "contract")) {
      json_object_set_new(k, "status", json_string(pr__f(e, "st")));
      json_object_set_new(
          k, "value",
          pr__value(pr__n(e, "value"),
                    pr__f(e, "cur")[0] ? pr__f(e, "cur") : h.currency));
      if (pr__f(e, "note")[0])
        json_object_set_new(k, "description", json_string(pr__f(e, "note")));
    } else {
      json_t *impl = json_object(), *txs = json_array(), *x = json_object();
      json_object_set_new(k, "status",
                          json_string(kr.status[0] ? kr.status : "active"));
      char xid[256];
      snprintf(xid, sizeof xid, "%s-%s", kid, e->id);
      json_object_set_new(x, "id", json_string(xid));
      json_object_set_new(x, "date", pr__date(t));
      json_object_set_new(x, "value",
                          pr__value(pr__n(e, "amount"), h.currency));
      json_array_append_new(txs, x);
      json_object_set_new(impl, "transactions", txs);
      json_object_set_new(k, "implementation", impl);
    }
    json_array_append_new(ks, k);
    json_object_set_new(rel, "contracts", ks);
  }

  char *dump = json_dumps(rel, JSON_PRESERVE_ORDER | JSON_COMPACT);
  json_decref(rel);
  if (!dump) return GM_INTERNAL;
  st = host->ledger_exec(tx,
                         "INSERT OR IGNORE INTO procurement_releases (event,"
                         " tender_id, time_ms, tag, release)"
                         " VALUES (?1,?2,?3,?4,?5)",
                         (gm_param[]){GM_TEXT(rid), GM_TEXT(id), GM_INT(t),
                                      GM_TEXT(tag), GM_TEXT(dump)},
                         5);
  free(dump);
  return st;
}
