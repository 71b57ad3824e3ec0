/*
 * Script replies: reading their records, turning them into the protobuf
 * messages of replies and events, and publishing what a script changed.
 */
#include <ctype.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "carbon.h"

const char *carbon__s(const gm_value *r, size_t i) {
  if (!r || r->type != GM_VALUE_ARRAY || i >= r->n) return "";
  const gm_value *v = &r->items[i];
  return v->type == GM_VALUE_STR ? v->str : "";
}

int64_t carbon__i(const gm_value *r, size_t i) {
  if (!r || r->type != GM_VALUE_ARRAY || i >= r->n) return 0;
  const gm_value *v = &r->items[i];
  if (v->type == GM_VALUE_INT) return v->integer;
  return v->type == GM_VALUE_STR ? gm__carbon_parse_int(v->str) : 0;
}

/* The record tag ('T', 'O', 'F', ...) of item i of a script reply. */
char carbon__tag(const gm_value *reply, size_t i) {
  const gm_value *r = &reply->items[i];
  return r->type == GM_VALUE_ARRAY && r->n ? carbon__s(r, 0)[0] : 0;
}

/* Whether v holds a record packed as one string (lib.lua's R_<REC>_str:
 * fields separated by NUL bytes, which no field holds). */
static int carbon__packed(const gm_value *v) {
  if (v->type == GM_VALUE_STR) return memchr(v->str, '\0', v->len) != NULL;
  if (v->type != GM_VALUE_ARRAY) return 0;
  for (size_t i = 0; i < v->n; i++)
    if (carbon__packed(&v->items[i])) return 1;
  return 0;
}

/* in as *out with every packed record made the array of strings it packs,
 * at any depth; the fields point into the record's copy in the call's
 * arena, each ending at its NUL. */
static void carbon__unpack(gm_call *call, const gm_value *in, gm_value *out) {
  *out = *in;
  if (in->type == GM_VALUE_STR) {
    size_t n = 1;
    for (size_t i = 0; i < in->len; i++) n += in->str[i] == '\0';
    if (n == 1) return;
    gm_value *f = host->alloc(call, n * sizeof *f);
    const char *p = in->str;
    for (size_t i = 0; i < n; i++) {
      size_t len = strlen(p);
      f[i] = (gm_value){.type = GM_VALUE_STR, .str = p, .len = len};
      p += len + 1;
    }
    *out = (gm_value){.type = GM_VALUE_ARRAY, .n = n, .items = f};
    return;
  }
  if (in->type != GM_VALUE_ARRAY || !carbon__packed(in)) return;
  gm_value *items = host->alloc(call, (in->n ? in->n : 1) * sizeof *items);
  for (size_t i = 0; i < in->n; i++)
    carbon__unpack(call, &in->items[i], &items[i]);
  out->items = items;
}

gm_status carbon__run(gm_call *call, const char *script, const char *tag,
                      size_t nargs, const char *const *args,
                      const gm_value **v) {
  static const char *const list_key[] = {"list"};
  const char *keys[] = {"i", NULL};
  int registry = strcmp(tag, CARBON_REGISTRY_TAG) == 0;
  size_t nkeys = 1;
  /* The records' slot (lib.lua, ESLOT), when it is not the host clock's:
     under a manual clock, the real time's.  Each slot's hash expires a
     fixed real time after it is made (PEXPIRE, Redis's clock), so its slot
     must move on as real time passes: under a paused manual clock every
     record went into the one hash, made long ago, and one written just
     before it expired was gone within seconds (order.get answered
     UNAVAILABLE until the settler caught up).  Real time, not this
     broker's own count of how long its clock stood still: every broker
     sharing the Redis, a restarted one too, and one whose manual clock was
     moved since, names the same slots, so order.get looks where the record
     went. */
  int64_t real = !registry && GM_HOST_HAS(host, real_ms)
                     ? host->real_ms(host->market(call))
                     : 0;
  if (real > 0) {
    keys[nkeys++] =
        host->sprintf(call, "e:%lld", (long long)(real / CARBON_ENDED_SLOT_MS));
  }
  gm_status st = host->script_run(call, script, tag, registry ? 1 : nkeys,
                                  registry ? list_key : keys, nargs, args, v);
  if (st != GM_OK) return st;
  if ((*v)->type != GM_VALUE_ARRAY)
    return host->fail(call, GM_INTERNAL,
                      "carbon script %s returned no list; check the gmd log",
                      script);
  if (carbon__packed(*v)) {
    gm_value *u = host->alloc(call, sizeof *u);
    carbon__unpack(call, *v, u);
    *v = u;
  }
  return GM_OK;
}

/* Decimal text of v in the call's arena. */
char *carbon__num(gm_call *call, int64_t v) {
  char buf[24];
  size_t n = gm__carbon_format_int(v, buf);
  char *s = host->alloc(call, n + 1);
  memcpy(s, buf, n + 1);
  return s;
}

/* "<sym>:<local>", the public form of an order, trade or offer id, in the
   call's arena. */
char *carbon__id(gm_call *call, const char *sym, const char *local) {
  size_t a = strlen(sym), b = strlen(local);
  char *s = host->alloc(call, a + b + 2);
  memcpy(s, sym, a);
  s[a] = ':';
  memcpy(s + a + 1, local, b + 1);
  return s;
}

const char *carbon__side_code(Gm__Carbon__Side s) {
  return s == GM__CARBON__SIDE__SIDE_BUY ? "b" : "s";
}

Gm__Carbon__Side carbon__side_of(const char *code) {
  return code[0] == 'b' ? GM__CARBON__SIDE__SIDE_BUY
                        : GM__CARBON__SIDE__SIDE_SELL;
}

/* "CEA-2025:00000000002a" -> symbol and script id, in the call's arena. */
gm_status carbon__split_id(gm_call *call, const char *id, const char **sym,
                           const char **local) {
  const char *colon = id ? strrchr(id, ':') : NULL;
  char shown[96];
  if (!colon || colon == id || !colon[1] || strlen(colon + 1) > 16)
    return host->fail(call, GM_INVALID_ARGUMENT,
                      "id \"%s\" is not <SYMBOL>:<id> as order.place and "
                      "block.offer return it",
                      gm__carbon_shown(id, shown));
  char *s = host->sprintf(call, "%.*s", (int)(colon - id), id);
  if (!gm__carbon_valid_symbol(s))
    return host->fail(call, GM_INVALID_ARGUMENT,
                      "id \"%s\" does not start with an instrument symbol",
                      gm__carbon_shown(id, shown));
  for (const char *p = colon + 1; *p; p++)
    if (!isalnum((unsigned char)*p)) /* ids are hex digits, or B and them */
      return host->fail(call, GM_INVALID_ARGUMENT,
                        "id \"%s\" is not <SYMBOL>:<id> as order.place and "
                        "block.offer return it",
                        gm__carbon_shown(id, shown));
  *sym = s;
  *local = colon + 1;
  return GM_OK;
}

gm_status carbon__need_symbol(gm_call *call, const char *sym) {
  if (gm__carbon_valid_symbol(sym)) return GM_OK;
  char shown[96];
  return host->fail(call, GM_INVALID_ARGUMENT,
                    "symbol \"%s\" is not valid: 1-24 of A-Z 0-9 -, starting "
                    "with a letter (e.g. CEA-2025)",
                    gm__carbon_shown(sym, shown));
}

gm_status carbon__need_participant(gm_call *call, const char *what,
                                   const char *id) {
  char shown[96];
  if (gm_participant_id_valid(id)) return GM_OK;
  return host->fail(call, GM_INVALID_ARGUMENT,
                    "%s \"%s\" is not a valid participant id: %s", what,
                    gm__carbon_shown(id, shown), GM_PARTICIPANT_ID_RULE);
}

/* The ids an earlier release let deposits use: 1-64 bytes, none a space,
   a control or '|' (x#y{z}, a@b; and, where char is unsigned, as on
   aarch64, bytes from 0x80 too), which no participant can be registered
   as. */
static int carbon__id_of_old(const char *s) {
  size_t n = strlen(s);
  if (n == 0 || n > 64) return 0;
  for (const unsigned char *p = (const unsigned char *)s; *p; p++)
    if (*p == '|' || *p <= ' ' || *p == 127) return 0;
  return 1;
}

gm_status carbon__need_holder(gm_call *call, const char *what, const char *id) {
  if (carbon__id_of_old(id)) return GM_OK;
  return carbon__need_participant(call, what, id);
}

gm_status carbon__need_text(gm_call *call, const char *what, const char *text,
                            size_t max) {
  char why[128];
  size_t n = strlen(text);
  if (n > max)
    return host->fail(call, GM_INVALID_ARGUMENT,
                      "%s is %zu bytes, over the %zu allowed; shorten it", what,
                      n, max);
  if (gm__carbon_check_text(text, why, sizeof why))
    return host->fail(call, GM_INVALID_ARGUMENT, "%s %s", what, why);
  return GM_OK;
}

Gm__Carbon__Order *carbon__order(gm_call *call, const char *sym,
                                 const gm_value *r) {
  Gm__Carbon__Order *o = host->alloc(call, sizeof *o);
  gm__carbon__order__init(o);
  o->id = carbon__id(call, sym, carbon__s(r, CARBON_ORD_id));
  o->symbol = (char *)sym;
  o->participant = (char *)carbon__s(r, CARBON_ORD_who);
  o->side = carbon__side_of(carbon__s(r, CARBON_ORD_side));
  o->type = carbon__s(r, CARBON_ORD_typ)[0] == 'M'
                ? GM__CARBON__ORDER_TYPE__TYPE_MARKET
                : GM__CARBON__ORDER_TYPE__TYPE_LIMIT;
  o->tif = (Gm__Carbon__TimeInForce)carbon__i(r, CARBON_ORD_tif);
  o->price = carbon__i(r, CARBON_ORD_px);
  o->quantity = carbon__i(r, CARBON_ORD_tot);
  o->remaining = carbon__i(r, CARBON_ORD_left);
  o->filled = carbon__i(r, CARBON_ORD_filled);
  o->state = (Gm__Carbon__OrderState)carbon__i(r, CARBON_ORD_st);
  o->reason = (char *)carbon__s(r, CARBON_ORD_why);
  o->expire_ms = carbon__i(r, CARBON_ORD_exp);
  o->created_ms = carbon__i(r, CARBON_ORD_t);
  o->client_order_id = (char *)carbon__s(r, CARBON_ORD_coid);
  return o;
}

Gm__Carbon__Fill *carbon__fill(gm_call *call, const char *sym,
                               const gm_value *r) {
  Gm__Carbon__Fill *f = host->alloc(call, sizeof *f);
  gm__carbon__fill__init(f);
  f->trade_id = carbon__id(call, sym, carbon__s(r, CARBON_FILL_tid));
  f->price = carbon__i(r, CARBON_FILL_px);
  f->quantity = carbon__i(r, CARBON_FILL_q);
  f->amount = carbon__i(r, CARBON_FILL_amt);
  f->maker_order_id = carbon__id(call, sym, carbon__s(r, CARBON_FILL_maker));
  f->time_ms = carbon__i(r, CARBON_FILL_t);
  return f;
}

Gm__Carbon__Account *carbon__account(gm_call *call, const char *sym,
                                     const gm_value *r) {
  Gm__Carbon__Account *a = host->alloc(call, sizeof *a);
  gm__carbon__account__init(a);
  a->participant = (char *)carbon__s(r, CARBON_ACCT_who);
  a->symbol = (char *)sym;
  a->currency = "CNY";
  a->cash = carbon__i(r, CARBON_ACCT_c);
  a->cash_frozen = carbon__i(r, CARBON_ACCT_cf);
  a->allowances = carbon__i(r, CARBON_ACCT_al);
  a->allowances_frozen = carbon__i(r, CARBON_ACCT_af);
  a->allowances_locked = carbon__i(r, CARBON_ACCT_lk);
  a->stp = (Gm__Carbon__StpMode)carbon__i(r, CARBON_ACCT_stp);
  return a;
}

/* A record's int32 field, clamped (a damaged value must not wrap). */
static int32_t carbon__i32(const gm_value *r, size_t i) {
  int64_t v = carbon__i(r, i);
  return v > INT32_MAX ? INT32_MAX : v < INT32_MIN ? INT32_MIN : (int32_t)v;
}

Gm__Carbon__Instrument *carbon__instrument(gm_call *call, const gm_value *r) {
  Gm__Carbon__Instrument *in = host->alloc(call, sizeof *in);
  gm__carbon__instrument__init(in);
  char buf[256];
  in->symbol = (char *)carbon__s(r, CARBON_INST_sym);
  in->kind = (char *)carbon__s(r, CARBON_INST_kind);
  in->currency = (char *)carbon__s(r, CARBON_INST_cur);
  in->tick = carbon__i(r, CARBON_INST_tick);
  in->lot = carbon__i(r, CARBON_INST_lot);
  in->reference_price = carbon__i(r, CARBON_INST_ref);
  in->band_bp = carbon__i32(r, CARBON_INST_band);
  in->block_band_bp = carbon__i32(r, CARBON_INST_bband);
  in->block_threshold = carbon__i(r, CARBON_INST_bmin);
  gm__carbon_format_sessions(carbon__s(r, CARBON_INST_sess), buf, sizeof buf);
  in->sessions = host->sprintf(call, "%s", buf);
  gm__carbon_format_sessions(carbon__s(r, CARBON_INST_bsess), buf, sizeof buf);
  in->block_sessions = host->sprintf(call, "%s", buf);
  in->halted = strcmp(carbon__s(r, CARBON_INST_halt), "1") == 0;
  /* ",20454,20455," -> ["2026-01-01", ...] */
  const char *hol = carbon__s(r, CARBON_INST_hol);
  size_t n = 0;
  for (const char *p = hol; *p; p++) n += *p == ',';
  in->holidays = host->alloc(call, (n + 1) * sizeof *in->holidays);
  for (const char *p = hol; *p;) {
    char *end;
    if (*p == ',') {
      p++;
      continue;
    }
    long long day = strtoll(p, &end, 10);
    /* The script writes day numbers; anything else in the hash is skipped
       rather than trusted (found by tests/fuzz/fuzz_market). */
    if (end == p || (*end && *end != ',') || in->n_holidays > n) {
      p = strchr(p, ',');
      if (!p) break;
      continue;
    }
    char date[16];
    in->holidays[in->n_holidays++] =
        host->sprintf(call, "%s", gm__carbon_format_date(day, date));
    p = end;
  }
  in->max_fills = carbon__i32(r, CARBON_INST_maxf);
  in->name = (char *)carbon__s(r, CARBON_INST_name);
  in->halt_reason = (char *)carbon__s(r, CARBON_INST_hreason);
  in->created_ms = carbon__i(r, CARBON_INST_ct);
  return in;
}

/*
 * Non-zero when an event for `who` (a participant; NULL: everyone) may
 * reach a subscriber, so that one nobody would receive is not even built.
 * A host older than publish_wanted is asked nothing: build it.
 */
static int carbon__wanted(gm_call *call, const char *who, const char *event) {
  if (!GM_HOST_HAS(host, publish_wanted)) return 1;
  return host->publish_wanted(
      call, who ? GM_AUDIENCE_PARTICIPANT : GM_AUDIENCE_PUBLIC, who, event);
}

/*
 * Publishes `msg` to participant `who` only.  A host older than publish_to
 * gets nothing: a private event must never fall back to everyone.
 */
static void carbon__publish_private(gm_call *call, const char *who,
                                    const char *event,
                                    const ProtobufCMessage *msg) {
  if (host->size <
          offsetof(gm_host_api, publish_to) + sizeof host->publish_to ||
      !host->publish_to || !who || !*who)
    return;
  host->publish_to(call, GM_AUDIENCE_PARTICIPANT, who, event, msg);
}

/*
 * Publishes what a script changed.  An order's state goes to its owner
 * only, an offer's to its offerer and its counterparty only: they name
 * participants and show intentions competitors must not see.  The trade
 * tape and the book levels go to everyone and carry no participant and no
 * order id.  Best effort: everything is already in the outbox.  An event
 * no subscriber would receive is not built (host->publish_wanted): in a
 * run with no subscriber that was 43 M of 255 M of the workers'
 * instructions (callgrind, 4,000 orders).
 */
void carbon__publish(gm_call *call, const char *sym, const gm_value *reply,
                     Gm__Carbon__Side taker) {
  Gm__Carbon__BookEvent book = GM__CARBON__BOOK_EVENT__INIT;
  Gm__Carbon__Level **levels = NULL;
  size_t nb = 0, na = 0;
  /* The public events' answers, asked once per call: -1 not yet. */
  int trades = -1, books = -1;

  for (size_t i = 0; i < reply->n; i++) {
    const gm_value *r = &reply->items[i];
    char tag = carbon__tag(reply, i);
    if (tag == 'T' || tag == 'O') {
      if (!carbon__wanted(call, carbon__s(r, CARBON_ORD_who), "order"))
        continue;
      Gm__Carbon__OrderEvent ev = GM__CARBON__ORDER_EVENT__INIT;
      ev.order = carbon__order(call, sym, r);
      carbon__publish_private(call, ev.order->participant, "order", &ev.base);
    } else if (tag == 'F') {
      if (trades < 0) trades = carbon__wanted(call, NULL, "trade");
      if (!trades) continue;
      Gm__Carbon__TradeEvent ev = GM__CARBON__TRADE_EVENT__INIT;
      ev.symbol = (char *)sym;
      ev.trade_id = carbon__id(call, sym, carbon__s(r, CARBON_FILL_tid));
      ev.price = carbon__i(r, CARBON_FILL_px);
      ev.quantity = carbon__i(r, CARBON_FILL_q);
      ev.maker_side = taker == GM__CARBON__SIDE__SIDE_BUY
                          ? GM__CARBON__SIDE__SIDE_SELL
                          : GM__CARBON__SIDE__SIDE_BUY;
      ev.block = carbon__s(r, CARBON_FILL_maker)[0] == 'B';
      ev.time_ms = carbon__i(r, CARBON_FILL_t);
      host->publish(call, "trade", &ev.base);
    } else if (tag == 'B') {
      const char *of = carbon__s(r, CARBON_OFFER_of);
      const char *cp = carbon__s(r, CARBON_OFFER_cp);
      int to_of = carbon__wanted(call, of, "offer");
      int to_cp = strcmp(cp, of) != 0 && carbon__wanted(call, cp, "offer");
      if (!to_of && !to_cp) continue;
      Gm__Carbon__OfferEvent ev = GM__CARBON__OFFER_EVENT__INIT;
      ev.offer = carbon__offer(call, sym, r);
      if (to_of)
        carbon__publish_private(call, ev.offer->offerer, "offer", &ev.base);
      if (to_cp)
        carbon__publish_private(call, ev.offer->counterparty, "offer",
                                &ev.base);
    } else if (tag == 'L') {
      if (books < 0) books = carbon__wanted(call, NULL, "book");
      if (!books) continue;
      if (!levels) levels = host->alloc(call, (reply->n + 1) * sizeof *levels);
      Gm__Carbon__Level *l = host->alloc(call, sizeof *l);
      gm__carbon__level__init(l);
      l->price = carbon__i(r, CARBON_LEVEL_px);
      l->quantity = carbon__i(r, CARBON_LEVEL_q);
      /* Bids fill the array from the front, asks from the back. */
      if (carbon__s(r, CARBON_LEVEL_side)[0] == 'b')
        levels[nb++] = l;
      else
        levels[reply->n - na++] = l;
    }
  }
  if (nb + na == 0) return;
  book.symbol = (char *)sym;
  book.n_bids = nb;
  book.bids = levels;
  book.n_asks = na;
  book.asks = levels + reply->n + 1 - na;
  host->publish(call, "book", &book.base);
}
