/*
 * Sealed bids: submit, replace and withdraw before the deadline, and read
 * one.  The bid is turned into its canonical text (rules.c), hashed
 * (SHA-256: the receipt's hash, published at the opening) and sealed under
 * the tender's key (seal.c) here, before anything reaches Redis: the script
 * stores the sealed text and the hash, and never sees a price.  A
 * submission is one script run on the tender's tag; the bidder's register
 * entry (credit code, SME size) is read at the opening.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "procurement.h"

/* A bid record "state|version|hash|kid|time|seq" (lib.lua). */
typedef struct pr__rec {
  char *st, *ver, *hash, *kid, *t, *seq;
} pr__rec;

static int pr__rec_parse(gm_call *call, const char *text, pr__rec *r) {
  char *copy = host->sprintf(call, "%s", text),
       **f[] = {&r->st, &r->ver, &r->hash, &r->kid, &r->t};
  for (size_t i = 0; i < sizeof f / sizeof f[0]; i++) {
    char *bar = strchr(copy, '|');
    if (!bar) return -1;
    *bar = '\0';
    *f[i] = copy;
    copy = bar + 1;
  }
  r->seq = copy;
  return 0;
}

static gm_status pr__bid_checks(gm_call *call,
                                const Gm__Procurement__BidRequest *in) {
  if (!pr__seal_ready())
    return host->fail(call, GM_FAILED_PRECONDITION,
                      "this broker has no bid key, so it cannot seal bids; "
                      "the operator sets [market.procurement] key_file");
  /* The tender's own currency, checked when it was drafted; the bid
     script refuses a bid in another. */
  if (!pr_currency_shaped(in->currency))
    return host->fail(call, GM_INVALID_ARGUMENT,
                      "currency \"%.8s\" is not a currency code: give the "
                      "tender's, three capital letters such as CNY",
                      in->currency);
  if (in->n_lines == 0 || in->n_lines > PR_MAX_ITEMS)
    return host->fail(call, GM_INVALID_ARGUMENT,
                      "a bid has one line per item of the tender (1-%d); this "
                      "one has %zu",
                      PR_MAX_ITEMS, in->n_lines);
  if (in->sme > GM__PROCUREMENT__SME_CLASS__SME_MICRO)
    return host->fail(call, GM_INVALID_ARGUMENT,
                      "sme must be SME_NONE, SME_MEDIUM, SME_SMALL or "
                      "SME_MICRO");
  for (size_t i = 0; i < in->n_lines; i++) {
    const Gm__Procurement__BidLine *l = in->lines[i];
    char y[32];
    if (!pr_valid_name(l->item, 1, 32, 0))
      return host->fail(call, GM_INVALID_ARGUMENT,
                        "line %zu: item \"%.32s\" is not an item id of the "
                        "tender",
                        i + 1, l->item);
    if (l->unit_price < 1 || l->unit_price > PR_MAX_AMOUNT)
      return host->fail(call, GM_INVALID_ARGUMENT,
                        "item %s: unit price must be 0.01 .. %s yuan", l->item,
                        pr_yuan(PR_MAX_AMOUNT, y));
    if (l->certificate[0] && !pr_valid_name(l->certificate, 1, 64, 1))
      return host->fail(call, GM_INVALID_ARGUMENT,
                        "item %s: \"%.64s\" is not a certificate number",
                        l->item, l->certificate);
    for (size_t j = 0; j < i; j++)
      if (strcmp(in->lines[j]->item, l->item) == 0)
        return host->fail(call, GM_INVALID_ARGUMENT,
                          "item %s has two lines; price each item once",
                          l->item);
  }
  return GM_OK;
}

static void pr__bid_event(gm_call *call, const char *tender,
                          const char *supplier, const char *action,
                          const char *hash, int32_t version) {
  Gm__Procurement__BidEvent ev = GM__PROCUREMENT__BID_EVENT__INIT;
  ev.tender_id = (char *)tender;
  ev.supplier = (char *)supplier;
  ev.action = (char *)action;
  ev.hash = (char *)hash;
  ev.version = version;
  /* Until the opening a bid is its bidder's business only. */
  pr__tell(call, GM_AUDIENCE_PARTICIPANT, supplier, "bid", &ev.base);
}

static gm_status pr__bid_send(gm_call *call, const ProtobufCMessage *req,
                              ProtobufCMessage **reply, const char *mode) {
  const Gm__Procurement__BidRequest *in = (const void *)req;
  const char *tag, *me = host->participant(call);
  gm_status st;
  if ((st = pr__tender_tag(call, in->tender_id, &tag)) != GM_OK) return st;
  if (!pr_valid_name(me, 1, 64, 0))
    return host->fail(call, GM_INVALID_ARGUMENT,
                      "your participant id is not 1-64 letters, digits and . "
                      "_ -");
  if ((st = pr__bid_checks(call, in)) != GM_OK) return st;

  pr_bid *b = host->alloc(call, sizeof *b);
  snprintf(b->tender, sizeof b->tender, "%s", in->tender_id);
  snprintf(b->supplier, sizeof b->supplier, "%s", me);
  pr__random_hex(b->salt, PR_SALT_HEX / 2);
  snprintf(b->currency, sizeof b->currency, "%s", in->currency);
  b->sme = (int)in->sme;
  b->nlines = in->n_lines;
  char **items = host->alloc(call, in->n_lines * sizeof *items);
  for (size_t i = 0; i < in->n_lines; i++) {
    snprintf(b->lines[i].item, sizeof b->lines[i].item, "%s",
             in->lines[i]->item);
    snprintf(b->lines[i].cert, sizeof b->lines[i].cert, "%s",
             in->lines[i]->certificate);
    b->lines[i].unit_price = in->lines[i]->unit_price;
    items[i] = in->lines[i]->item;
  }
  size_t cap = 512 + PR_MAX_ITEMS * 120, padded = pr_bid_text_max(b);
  char *text = host->alloc(call, cap), hash[65];
  long len = pr_bid_text(b, text, cap);
  if (len < 0 || padded >= cap || (size_t)len > padded)
    return host->fail(call, GM_INTERNAL, "bid text too long");
  pr__sha256_hex(text, (size_t)len, hash);
  /* Sealed padded with NULs to the longest text this bid could have, so
     its length tells nothing of the prices, certificates or SME class;
     pr__unseal drops them.  The hash is of the text alone. */
  memset(text + len, 0, padded - (size_t)len);
  char *sealed = pr__seal(call, in->tender_id, me, text, padded);
  memset(text, 0, padded); /* no plaintext kept past this call */

  /* The items the lines price, ",a,b," sorted, as tender.lua keeps them. */
  size_t ilen = 2;
  for (size_t i = 0; i < in->n_lines; i++) ilen += strlen(items[i]) + 1;
  for (size_t i = 1; i < in->n_lines; i++)
    for (size_t j = i; j > 0 && strcmp(items[j - 1], items[j]) > 0; j--) {
      char *x = items[j];
      items[j] = items[j - 1];
      items[j - 1] = x;
    }
  char *list = host->alloc(call, ilen), *p = list;
  *p++ = ',';
  for (size_t i = 0; i < in->n_lines; i++) p += sprintf(p, "%s,", items[i]);

  const char *args[] = {"submit", in->tender_id, mode,         hash,
                        sealed,   pr__key_id(),  in->currency, list};
  const gm_value *v;
  if ((st = pr__run(call, "bid", tag, 8, args, &v)) != GM_OK) return st;
  Gm__Procurement__BidReceipt *out = host->alloc(call, sizeof *out);
  gm__procurement__bid_receipt__init(out);
  out->tender_id = in->tender_id;
  out->supplier = (char *)me;
  out->state = "submitted";
  out->hash = (char *)pr__s(v, 1);
  out->version = pr__i32(v, 2);
  out->time_ms = pr__i(v, 3);
  pr__bid_event(call, in->tender_id, me, pr__s(v, 0), out->hash, out->version);
  *reply = &out->base;
  return GM_OK;
}

gm_status pr__bid_submit(gm_call *call, const ProtobufCMessage *req,
                         ProtobufCMessage **reply) {
  return pr__bid_send(call, req, reply, "new");
}

gm_status pr__bid_replace(gm_call *call, const ProtobufCMessage *req,
                          ProtobufCMessage **reply) {
  return pr__bid_send(call, req, reply, "replace");
}

gm_status pr__bid_withdraw(gm_call *call, const ProtobufCMessage *req,
                           ProtobufCMessage **reply) {
  const Gm__Procurement__TenderRequest *in = (const void *)req;
  const char *tag, *me = host->participant(call);
  gm_status st;
  if ((st = pr__tender_tag(call, in->tender_id, &tag)) != GM_OK) return st;
  const char *args[] = {"withdraw", in->tender_id};
  const gm_value *v;
  if ((st = pr__run(call, "bid", tag, 2, args, &v)) != GM_OK) return st;
  Gm__Procurement__BidReceipt *out = host->alloc(call, sizeof *out);
  gm__procurement__bid_receipt__init(out);
  out->tender_id = in->tender_id;
  out->supplier = (char *)me;
  out->state = "withdrawn";
  out->hash = (char *)pr__s(v, 1);
  out->version = pr__i32(v, 2);
  out->time_ms = pr__i(v, 3);
  pr__bid_event(call, in->tender_id, me, "withdrawn", out->hash, out->version);
  *reply = &out->base;
  return GM_OK;
}

/* Fills a Bid's lines from its text, with quantities and totals from the
   tender `t`. */
static gm_status pr__bid_fill(gm_call *call, Gm__Procurement__Bid *out,
                              const char *text, size_t len,
                              const Gm__Procurement__Tender *t) {
  pr_bid *b = host->alloc(call, sizeof *b);
  char err[200];
  if (pr_bid_parse(text, len, b, err, sizeof err) != 0)
    return host->fail(call, GM_INTERNAL, "the bid text of %s: %s",
                      out->supplier, err);
  out->text = host->sprintf(call, "%.*s", (int)len, text);
  out->currency = host->sprintf(call, "%s", b->currency);
  out->sme = (Gm__Procurement__SmeClass)b->sme;
  out->lines = host->alloc(call, (b->nlines + 1) * sizeof *out->lines);
  for (size_t i = 0; i < b->nlines; i++) {
    Gm__Procurement__BidLine *l = host->alloc(call, sizeof *l);
    gm__procurement__bid_line__init(l);
    l->item = host->sprintf(call, "%s", b->lines[i].item);
    l->certificate = host->sprintf(call, "%s", b->lines[i].cert);
    l->unit_price = b->lines[i].unit_price;
    for (size_t k = 0; t && k < t->n_items; k++)
      if (strcmp(t->items[k]->id, l->item) == 0 && t->items[k]->quantity > 0) {
        l->quantity = t->items[k]->quantity;
        if (l->unit_price <= PR_MAX_AMOUNT / l->quantity)
          l->total = l->unit_price * l->quantity;
      }
    if (out->total <= PR_MAX_AMOUNT - l->total) out->total += l->total;
    out->lines[out->n_lines++] = l;
  }
  return GM_OK;
}

/* Another supplier's bid before the opening: the same answer whether it
   bid or not (and whether the tender exists: no deadline, no time). */
static gm_status pr__sealed(gm_call *call, const char *tender,
                            int64_t deadline) {
  char d[20];
  if (deadline <= 0)
    return host->fail(call, GM_PERMISSION_DENIED,
                      "bids on tender %s are sealed until its opening; only "
                      "their bidder can read one before it",
                      tender);
  return host->fail(call, GM_PERMISSION_DENIED,
                    "bids on tender %s are sealed until the opening at %s "
                    "(Asia/Shanghai); only their bidder can read one before "
                    "it",
                    tender, pr_datetime(deadline, d));
}

gm_status pr__bid_get(gm_call *call, const ProtobufCMessage *req,
                      ProtobufCMessage **reply) {
  const Gm__Procurement__BidQuery *in = (const void *)req;
  const char *tag, *me = host->participant(call);
  const char *who = in->supplier[0] ? in->supplier : me;
  gm_status st;
  if ((st = pr__tender_tag(call, in->tender_id, &tag)) != GM_OK) return st;
  if (!pr_valid_name(who, 1, 64, 0))
    return host->fail(call, GM_INVALID_ARGUMENT,
                      "supplier \"%.64s\" is not a participant id", who);
  const char *args[] = {"get", in->tender_id, who};
  const gm_value *v;
  if ((st = pr__run(call, "bid", tag, 3, args, &v)) != GM_OK) return st;
  const gm_value *recv = pr__item(v, 5), *sealed = pr__item(v, 6),
                 *opened = pr__item(v, 7);
  /* Until the bids are opened (round 0: a draft, an active tender, or one
     cancelled before its deadline) even whether another supplier bid is
     its own business: one answer whatever it did. */
  if (strcmp(who, me) != 0 && pr__i(v, 8) == 0 &&
      !(opened->type == GM_VALUE_STR && opened->len))
    return pr__sealed(call, in->tender_id, pr__i(v, 1));
  pr__rec r;
  if (recv->type != GM_VALUE_STR || pr__rec_parse(call, recv->str, &r) != 0)
    return host->fail(call, GM_NOT_FOUND, "%s has no bid on tender %s", who,
                      in->tender_id);
  Gm__Procurement__Bid *out = host->alloc(call, sizeof *out);
  gm__procurement__bid__init(out);
  out->tender_id = in->tender_id;
  out->supplier = (char *)who;
  out->state = r.st;
  out->hash = r.hash;
  out->version = pr_int(r.ver);
  out->submitted_ms = strtoll(r.t, NULL, 10);
  Gm__Procurement__Tender *t = pr__def_decode(call, pr__s(v, 2));
  if (opened->type == GM_VALUE_STR && opened->len) {
    out->state = "opened";
    if ((st = pr__bid_fill(call, out, opened->str, opened->len, t)) != GM_OK)
      return st;
  } else if (sealed->type == GM_VALUE_STR && sealed->len) {
    /* Sealed: its bidder alone may read it, by having the broker open it
       for this reply; nothing opened is stored. */
    if (strcmp(who, me) != 0)
      return pr__sealed(call, in->tender_id, pr__i(v, 1));
    if (!pr__seal_ready())
      return host->fail(call, GM_FAILED_PRECONDITION,
                        "this broker has no bid key, so it cannot open your "
                        "bid for you");
    char err[300];
    size_t len;
    char *text = pr__unseal(call, in->tender_id, who, sealed->str, &len, err,
                            sizeof err);
    if (!text) return host->fail(call, GM_INTERNAL, "%s", err);
    if ((st = pr__bid_fill(call, out, text, len, t)) != GM_OK) return st;
  } else if (!strcmp(r.st, "submitted") && !strcmp(pr__s(v, 0), "cancelled")) {
    /* Cancelled before its opening: the sealed text was deleted with the
       cancellation (lib.lua ended), so no price is left to show; say so
       rather than "submitted" with no lines and a total of 0. */
    out->state = "unopened";
  }
  *reply = &out->base;
  return GM_OK;
}
