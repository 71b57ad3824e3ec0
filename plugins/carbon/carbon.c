/*
 * The carbon market: a continuous order book for allowances (CEA) and
 * offsets (CCER) with the national-market rules (docs/carbon.md).
 *
 * Live state is in Redis under one hash tag per instrument; every change is
 * made by one of the scripts below (lib.lua is prepended to each), which
 * also appends every fill and order-state change to the instrument's outbox.
 * carbon__settle writes those entries into the carbon_* ledger tables.
 * This file validates requests, runs the scripts, turns their replies into
 * protobuf messages and publishes feed events.
 */
#include <ctype.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <greenmarket/plugin.h>

#include "carbon.pb-c.h"
#include "price.h"
#include "rules.h"

/* Embedded by gm_add_plugin(... LUA ...). */
extern const char gm_lua_lib[], gm_lua_place[], gm_lua_amend[], gm_lua_block[],
    gm_lua_admin[], gm_lua_read[], gm_lua_sweep[], gm_lua_registry[];

/*
 * Plugin globals: written in init() only, read by every worker afterwards.
 */
static const gm_host_api *host;
#define CARBON_MAX_GTD_MS (INT64_C(366) * 24 * 3600 * 1000)
#define CARBON_STATEMENT_MAX 100000         /* trades in one statement */
static long carbon__max_fills = 64;         /* default per instrument */
static long carbon__expire_batch = 256;     /* expiries per sweep call */
static long carbon__mass_cancel_max = 1000; /* orders per mass_cancel call */
static long carbon__reconcile_page = 1000;  /* accounts per reconcile run */
static long carbon__max_steps = 64; /* place steps per order (per call) */
static long carbon__inflight_ms =
    5000; /* in flight this long: the sweep ends it */
static long carbon__kill_after_step; /* failure injection for tests; 0: off */
static char *carbon__sources[8];     /* lib + script, freed at shutdown */

#define CARBON_REGISTRY_TAG "_"
/* order.list page sizes: the default and the largest. */
#define CARBON_LIST_DEFAULT 100
#define CARBON_LIST_MAX 1000
/* A cursor's carried ids come from one SSCAN step beyond a page (a hash
   bucket or two): far below this, which only bounds what a request sends. */
#define CARBON_CURSOR_MAX 16384
/* Reconcile runs per instrument: far above any real count of accounts
   (reconcile_page each); a walk past it means the set never stops growing. */
#define CARBON_RECONCILE_RUNS 1000000
/* The largest max_steps: also the guard against a script that never ends. */
#define CARBON_MAX_STEPS_LIMIT 10000
/* Days one sweep (timer run or records.close) closes at most: days missed
   while no broker ran are closed over several sweeps. */
#define CARBON_CLOSE_DAYS 16
#define CARBON_DEFAULT_SESSIONS "570-690,780-900"
#define CARBON_DEFAULT_BLOCK_SESSIONS "780-900"

/* ---- script replies ---------------------------------------------------- */

static const char *carbon__s(const gm_value *r, size_t i) {
  if (!r || r->type != GM_VALUE_ARRAY || i >= r->n) return "";
  const gm_value *v = &r->items[i];
  return v->type == GM_VALUE_STR ? v->str : "";
}

static int64_t carbon__i(const gm_value *r, size_t i) {
  if (!r || r->type != GM_VALUE_ARRAY || i >= r->n) return 0;
  const gm_value *v = &r->items[i];
  if (v->type == GM_VALUE_INT) return v->integer;
  return v->type == GM_VALUE_STR ? strtoll(v->str, NULL, 10) : 0;
}

/* The record tag ('T', 'O', 'F', ...) of item i of a script reply. */
static char carbon__tag(const gm_value *reply, size_t i) {
  const gm_value *r = &reply->items[i];
  return r->type == GM_VALUE_ARRAY && r->n ? carbon__s(r, 0)[0] : 0;
}

static gm_status carbon__run(gm_call *call, const char *script, const char *tag,
                             size_t nargs, const char *const *args,
                             const gm_value **v) {
  static const char *const keys[] = {"i"};
  static const char *const list_key[] = {"list"};
  int registry = strcmp(tag, CARBON_REGISTRY_TAG) == 0;
  gm_status st = host->script_run(call, script, tag, 1,
                                  registry ? list_key : keys, nargs, args, v);
  if (st != GM_OK) return st;
  if ((*v)->type != GM_VALUE_ARRAY)
    return host->fail(call, GM_INTERNAL,
                      "carbon script %s returned no list; check the gmd log",
                      script);
  return GM_OK;
}

static char *carbon__num(gm_call *call, int64_t v) {
  return host->sprintf(call, "%lld", (long long)v);
}

static const char *carbon__side_code(Gm__Carbon__Side s) {
  return s == GM__CARBON__SIDE__SIDE_BUY ? "b" : "s";
}

static Gm__Carbon__Side carbon__side_of(const char *code) {
  return code[0] == 'b' ? GM__CARBON__SIDE__SIDE_BUY
                        : GM__CARBON__SIDE__SIDE_SELL;
}

/* "CEA-2025:00000000002a" -> symbol and script id, in the call's arena. */
static gm_status carbon__split_id(gm_call *call, const char *id,
                                  const char **sym, const char **local) {
  const char *colon = id ? strrchr(id, ':') : NULL;
  if (!colon || colon == id || !colon[1] || strlen(colon + 1) > 16)
    return host->fail(call, GM_INVALID_ARGUMENT,
                      "id \"%s\" is not <SYMBOL>:<id> as order.place and "
                      "block.offer return it",
                      id ? id : "");
  char *s = host->sprintf(call, "%.*s", (int)(colon - id), id);
  if (!gm__carbon_valid_symbol(s))
    return host->fail(call, GM_INVALID_ARGUMENT,
                      "id \"%s\" does not start with an instrument symbol", id);
  *sym = s;
  *local = colon + 1;
  return GM_OK;
}

static gm_status carbon__need_symbol(gm_call *call, const char *sym) {
  if (gm__carbon_valid_symbol(sym)) return GM_OK;
  return host->fail(call, GM_INVALID_ARGUMENT,
                    "symbol \"%s\" is not valid: 1-24 of A-Z 0-9 -, starting "
                    "with a letter (e.g. CEA-2025)",
                    sym ? sym : "");
}

/*
 * A walk over a participant's open orders, as order.list and
 * order.mass_cancel hand it out in next_cursor and take it back in cursor:
 * "<SYMBOL>[:<side>]:<position>[:<id>,<id>...]".  The position is "0" (the
 * walk starts), an SSCAN cursor, or "-" (the scan is over); the ids are
 * orders the last SSCAN step gave beyond the page, which the next call takes
 * first (lib.lua, page()).  The side (b, s or a for both) is in mass
 * cancel's cursors only.  Clients treat the text as opaque.
 */
typedef struct carbon__cursor {
  const char *sym;   /* the instrument the walk is in */
  char side;         /* mass cancel: 'b', 's' or 'a'; order.list: 0 */
  const char *pos;   /* "0", SSCAN cursor digits, or "-" */
  const char *carry; /* "" or ids separated by ',' */
} carbon__cursor;

static char *carbon__cursor_text(gm_call *call, const carbon__cursor *c) {
  char side[3] = {c->side, ':', 0};
  return host->sprintf(call, "%s:%s%s%s%s", c->sym, c->side ? side : "", c->pos,
                       c->carry[0] ? ":" : "", c->carry);
}

/* The walk is over: the scan ended and nothing is carried. */
static int carbon__cursor_done(const char *pos, const char *carry) {
  return strcmp(pos, "-") == 0 && carry[0] == '\0';
}

/* Ids as the scripts make them: `prefix` (none for orders, 'B' for block
 * offers) then 12 lowercase hex digits, separated by ','. */
static int carbon__valid_ids(const char *s, char prefix) {
  while (*s) {
    if (prefix && *s++ != prefix) return 0;
    size_t n = strspn(s, "0123456789abcdef");
    if (n != 12 || (s[n] != ',' && s[n] != '\0')) return 0;
    s += n + (s[n] == ',');
  }
  return 1;
}

/* Parses `text` (with a side field when with_side; carried ids start with
 * `prefix`) into *c. */
static gm_status carbon__cursor_parse(gm_call *call, const char *method,
                                      const char *text, int with_side,
                                      char prefix, carbon__cursor *c) {
  size_t len = strlen(text);
  char *f[4] = {NULL}, *copy = host->sprintf(call, "%s", text);
  size_t nf = 0, need = with_side ? 3 : 2;
  for (char *p = copy; p && nf < 4; nf++) {
    f[nf] = p;
    if ((p = strchr(p, ':'))) *p++ = '\0';
  }
  if (len > CARBON_CURSOR_MAX || nf < need || nf > need + 1 ||
      strchr(f[nf - 1], ':'))
    goto bad;
  c->sym = f[0];
  c->side = with_side ? f[1][0] : 0;
  c->pos = f[need - 1];
  c->carry = nf > need ? f[need] : "";
  if (!gm__carbon_valid_symbol(c->sym) ||
      (with_side && (strlen(f[1]) != 1 || !strchr("bsa", c->side))))
    goto bad;
  if (strcmp(c->pos, "-")) {
    size_t nd = strspn(c->pos, "0123456789");
    /* An SSCAN cursor is an unsigned 64-bit number: 20 digits at most. */
    if (nd == 0 || nd > 20 || c->pos[nd] ||
        (nd == 20 && strcmp(c->pos, "18446744073709551615") > 0))
      goto bad;
  }
  if (carbon__valid_ids(c->carry, prefix)) return GM_OK;
bad:
  return host->fail(call, GM_INVALID_ARGUMENT,
                    "cursor \"%.64s%s\" is not one %s returned; pass "
                    "next_cursor back unchanged, or leave cursor empty to "
                    "start from the beginning",
                    text, len > 64 ? "..." : "", method);
}

static Gm__Carbon__Order *carbon__order(gm_call *call, const char *sym,
                                        const gm_value *r) {
  Gm__Carbon__Order *o = host->alloc(call, sizeof *o);
  gm__carbon__order__init(o);
  o->id = host->sprintf(call, "%s:%s", sym, carbon__s(r, 1));
  o->symbol = (char *)sym;
  o->participant = (char *)carbon__s(r, 2);
  o->side = carbon__side_of(carbon__s(r, 3));
  o->type = carbon__s(r, 4)[0] == 'M' ? GM__CARBON__ORDER_TYPE__TYPE_MARKET
                                      : GM__CARBON__ORDER_TYPE__TYPE_LIMIT;
  o->tif = (Gm__Carbon__TimeInForce)carbon__i(r, 5);
  o->price = carbon__i(r, 6);
  o->quantity = carbon__i(r, 7);
  o->remaining = carbon__i(r, 8);
  o->filled = carbon__i(r, 9);
  o->state = (Gm__Carbon__OrderState)carbon__i(r, 10);
  o->reason = (char *)carbon__s(r, 11);
  o->expire_ms = carbon__i(r, 12);
  o->created_ms = carbon__i(r, 13);
  o->client_order_id = (char *)carbon__s(r, 14);
  return o;
}

static Gm__Carbon__Fill *carbon__fill(gm_call *call, const char *sym,
                                      const gm_value *r) {
  Gm__Carbon__Fill *f = host->alloc(call, sizeof *f);
  gm__carbon__fill__init(f);
  f->trade_id = host->sprintf(call, "%s:%s", sym, carbon__s(r, 1));
  f->price = carbon__i(r, 2);
  f->quantity = carbon__i(r, 3);
  f->amount = carbon__i(r, 4);
  f->maker_order_id = host->sprintf(call, "%s:%s", sym, carbon__s(r, 5));
  f->time_ms = carbon__i(r, 6);
  return f;
}

static Gm__Carbon__Account *carbon__account(gm_call *call, const char *sym,
                                            const gm_value *r) {
  Gm__Carbon__Account *a = host->alloc(call, sizeof *a);
  gm__carbon__account__init(a);
  a->participant = (char *)carbon__s(r, 1);
  a->symbol = (char *)sym;
  a->currency = "CNY";
  a->cash = carbon__i(r, 2);
  a->cash_frozen = carbon__i(r, 3);
  a->allowances = carbon__i(r, 4);
  a->allowances_frozen = carbon__i(r, 5);
  a->allowances_locked = carbon__i(r, 6);
  a->stp = (Gm__Carbon__StpMode)carbon__i(r, 7);
  return a;
}

static Gm__Carbon__Instrument *carbon__instrument(gm_call *call,
                                                  const gm_value *r) {
  Gm__Carbon__Instrument *in = host->alloc(call, sizeof *in);
  gm__carbon__instrument__init(in);
  char buf[256];
  in->symbol = (char *)carbon__s(r, 1);
  in->kind = (char *)carbon__s(r, 2);
  in->currency = (char *)carbon__s(r, 3);
  in->tick = carbon__i(r, 4);
  in->lot = carbon__i(r, 5);
  in->reference_price = carbon__i(r, 6);
  in->band_bp = (int32_t)carbon__i(r, 7);
  in->block_band_bp = (int32_t)carbon__i(r, 8);
  in->block_threshold = carbon__i(r, 9);
  gm__carbon_format_sessions(carbon__s(r, 10), buf, sizeof buf);
  in->sessions = host->sprintf(call, "%s", buf);
  gm__carbon_format_sessions(carbon__s(r, 11), buf, sizeof buf);
  in->block_sessions = host->sprintf(call, "%s", buf);
  in->halted = strcmp(carbon__s(r, 12), "1") == 0;
  /* ",20454,20455," -> ["2026-01-01", ...] */
  const char *hol = carbon__s(r, 13);
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
    char date[16];
    in->holidays[in->n_holidays++] =
        host->sprintf(call, "%s", gm__carbon_format_date(day, date));
    p = end;
  }
  in->max_fills = (int32_t)carbon__i(r, 14);
  in->name = (char *)carbon__s(r, 15);
  in->halt_reason = (char *)carbon__s(r, 16);
  in->created_ms = carbon__i(r, 17);
  return in;
}

static Gm__Carbon__BlockOffer *carbon__offer(gm_call *call, const char *sym,
                                             const gm_value *r);

/*
 * Publishes what a script changed: order and offer states, the anonymous
 * trade tape and the book levels.  Best effort: everything is already in
 * the outbox.
 */
static void carbon__publish(gm_call *call, const char *sym,
                            const gm_value *reply, Gm__Carbon__Side taker) {
  Gm__Carbon__BookEvent book = GM__CARBON__BOOK_EVENT__INIT;
  Gm__Carbon__Level **levels =
      host->alloc(call, (reply->n + 1) * sizeof *levels);
  size_t nb = 0, na = 0;

  for (size_t i = 0; i < reply->n; i++) {
    const gm_value *r = &reply->items[i];
    char tag = carbon__tag(reply, i);
    if (tag == 'T' || tag == 'O') {
      Gm__Carbon__OrderEvent ev = GM__CARBON__ORDER_EVENT__INIT;
      ev.order = carbon__order(call, sym, r);
      host->publish(call, "order", &ev.base);
    } else if (tag == 'F') {
      Gm__Carbon__TradeEvent ev = GM__CARBON__TRADE_EVENT__INIT;
      ev.symbol = (char *)sym;
      ev.trade_id = host->sprintf(call, "%s:%s", sym, carbon__s(r, 1));
      ev.price = carbon__i(r, 2);
      ev.quantity = carbon__i(r, 3);
      ev.maker_side = taker == GM__CARBON__SIDE__SIDE_BUY
                          ? GM__CARBON__SIDE__SIDE_SELL
                          : GM__CARBON__SIDE__SIDE_BUY;
      ev.block = carbon__s(r, 5)[0] == 'B';
      ev.time_ms = carbon__i(r, 6);
      host->publish(call, "trade", &ev.base);
    } else if (tag == 'B') {
      Gm__Carbon__OfferEvent ev = GM__CARBON__OFFER_EVENT__INIT;
      ev.offer = carbon__offer(call, sym, r);
      host->publish(call, "offer", &ev.base);
    } else if (tag == 'L') {
      Gm__Carbon__Level *l = host->alloc(call, sizeof *l);
      gm__carbon__level__init(l);
      l->price = carbon__i(r, 2);
      l->quantity = carbon__i(r, 3);
      /* Bids fill the array from the front, asks from the back. */
      if (carbon__s(r, 1)[0] == 'b')
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

/* ---- instruments ------------------------------------------------------- */

static gm_status carbon__registry(gm_call *call, const gm_value **list) {
  const char *args[] = {"list"};
  return carbon__run(call, "registry", CARBON_REGISTRY_TAG, 1, args, list);
}

static gm_status carbon__instrument_create(gm_call *call,
                                           const ProtobufCMessage *req,
                                           ProtobufCMessage **reply) {
  const Gm__Carbon__CreateInstrumentRequest *in =
      (const Gm__Carbon__CreateInstrumentRequest *)req;
  const Gm__Carbon__Instrument *d = in->instrument;
  char sess[128], bsess[128], err[256], hol[1024] = ",";
  const gm_value *v;
  gm_status st;

  if (!d)
    return host->fail(call, GM_INVALID_ARGUMENT,
                      "instrument is missing; give at least instrument.symbol "
                      "and instrument.reference_price");
  if ((st = carbon__need_symbol(call, d->symbol)) != GM_OK) return st;
  const char *kind = d->kind[0] ? d->kind : "CEA";
  if (strcmp(kind, "CEA") && strcmp(kind, "CCER"))
    return host->fail(call, GM_INVALID_ARGUMENT,
                      "kind \"%s\" is unknown; use CEA or CCER", kind);
  const char *cur = d->currency[0] ? d->currency : "CNY";
  if (strlen(cur) != 3 || !isupper((unsigned char)cur[0]) ||
      !isupper((unsigned char)cur[1]) || !isupper((unsigned char)cur[2]))
    return host->fail(call, GM_INVALID_ARGUMENT,
                      "currency \"%s\" is not an ISO 4217 code like CNY", cur);
  int64_t tick = d->tick ? d->tick : 1, lot = d->lot ? d->lot : 1;
  int64_t bmin = d->block_threshold ? d->block_threshold : 100000;
  int32_t bandbp = d->band_bp ? d->band_bp : 1000;
  int32_t bbandbp = d->block_band_bp ? d->block_band_bp : 3000;
  int32_t maxf = d->max_fills ? d->max_fills : (int32_t)carbon__max_fills;
  if (tick < 1 || tick > 10000 || lot < 1 || lot > 100000)
    return host->fail(call, GM_INVALID_ARGUMENT,
                      "tick must be 1..10000 fen and lot 1..100000 t");
  if (d->reference_price < tick || d->reference_price > GM_CARBON_MAX_PRICE ||
      d->reference_price % tick)
    return host->fail(call, GM_INVALID_ARGUMENT,
                      "reference_price must be a positive multiple of the "
                      "tick up to %lld fen (the previous close)",
                      (long long)GM_CARBON_MAX_PRICE);
  if (bandbp < 1 || bandbp > 9999 || bbandbp < 1 || bbandbp > 9999)
    return host->fail(call, GM_INVALID_ARGUMENT,
                      "band_bp and block_band_bp must be 1..9999 basis points");
  if (bmin < lot || bmin > GM_CARBON_MAX_QTY || bmin % lot)
    return host->fail(call, GM_INVALID_ARGUMENT,
                      "block_threshold must be a multiple of the lot up to "
                      "%lld t",
                      (long long)GM_CARBON_MAX_QTY);
  if (maxf < 1 || maxf > 1000)
    return host->fail(call, GM_INVALID_ARGUMENT,
                      "max_fills must be 1..1000 (it bounds one script call)");
  if (gm__carbon_parse_sessions(
          d->sessions[0] ? d->sessions : "09:30-11:30,13:00-15:00", sess,
          sizeof sess, err, sizeof err) ||
      gm__carbon_parse_sessions(
          d->block_sessions[0] ? d->block_sessions : "13:00-15:00", bsess,
          sizeof bsess, err, sizeof err))
    return host->fail(call, GM_INVALID_ARGUMENT, "%s", err);
  for (size_t i = 0; i < d->n_holidays; i++) {
    int64_t day;
    size_t used = strlen(hol);
    if (gm__carbon_parse_date(d->holidays[i], &day))
      return host->fail(call, GM_INVALID_ARGUMENT,
                        "holiday \"%s\" is not a date YYYY-MM-DD",
                        d->holidays[i]);
    if (snprintf(hol + used, sizeof hol - used, "%lld,", (long long)day) >=
        (int)(sizeof hol - used))
      return host->fail(call, GM_INVALID_ARGUMENT,
                        "too many holidays (at most about 100 per instrument)");
  }
  if (strlen(d->name) > 128)
    return host->fail(call, GM_INVALID_ARGUMENT, "name is over 128 bytes");

  const char *args[] = {"create",
                        kind,
                        cur,
                        carbon__num(call, tick),
                        carbon__num(call, lot),
                        carbon__num(call, d->reference_price),
                        carbon__num(call, bandbp),
                        carbon__num(call, bbandbp),
                        carbon__num(call, bmin),
                        sess,
                        bsess,
                        hol,
                        carbon__num(call, maxf),
                        d->name};
  if ((st = carbon__run(call, "admin", d->symbol, 14, args, &v)) != GM_OK)
    return st;
  Gm__Carbon__Instrument *out = carbon__instrument(call, &v->items[0]);
  /* Second step: list it.  Idempotent, so a retry after a failure here
   * repairs the registry. */
  const char *add[] = {"add", d->symbol};
  if ((st = carbon__run(call, "registry", CARBON_REGISTRY_TAG, 2, add, &v)) !=
      GM_OK)
    return st;
  *reply = &out->base;
  return GM_OK;
}

static gm_status carbon__instrument_get(gm_call *call,
                                        const ProtobufCMessage *req,
                                        ProtobufCMessage **reply) {
  const Gm__Carbon__InstrumentRequest *in =
      (const Gm__Carbon__InstrumentRequest *)req;
  const char *args[] = {"inst"};
  const gm_value *v;
  gm_status st = carbon__need_symbol(call, in->symbol);
  if (st == GM_OK) st = carbon__run(call, "read", in->symbol, 1, args, &v);
  if (st != GM_OK) return st;
  *reply = &carbon__instrument(call, &v->items[0])->base;
  return GM_OK;
}

static gm_status carbon__instrument_list(gm_call *call,
                                         const ProtobufCMessage *req,
                                         ProtobufCMessage **reply) {
  const gm_value *list, *v;
  const char *args[] = {"inst"};
  gm_status st;
  (void)req;
  if ((st = carbon__registry(call, &list)) != GM_OK) return st;
  Gm__Carbon__InstrumentList *out = host->alloc(call, sizeof *out);
  gm__carbon__instrument_list__init(out);
  out->instruments = host->alloc(call, (list->n + 1) * sizeof(void *));
  for (size_t i = 0; i < list->n; i++) {
    const char *sym = list->items[i].str;
    if (!sym || carbon__run(call, "read", sym, 1, args, &v) != GM_OK) continue;
    out->instruments[out->n_instruments++] =
        carbon__instrument(call, &v->items[0]);
  }
  *reply = &out->base;
  return GM_OK;
}

static gm_status carbon__instrument_halt(gm_call *call, const char *op,
                                         const ProtobufCMessage *req,
                                         ProtobufCMessage **reply) {
  const Gm__Carbon__InstrumentRequest *in =
      (const Gm__Carbon__InstrumentRequest *)req;
  const char *args[] = {op, in->reason[0] ? in->reason : "halted by admin"};
  const gm_value *v;
  if (strlen(in->reason) > 256)
    return host->fail(call, GM_INVALID_ARGUMENT,
                      "reason is over 256 bytes; it is repeated in every "
                      "rejection while the instrument is halted");
  gm_status st = carbon__need_symbol(call, in->symbol);
  if (st == GM_OK) st = carbon__run(call, "admin", in->symbol, 2, args, &v);
  if (st != GM_OK) return st;
  *reply = &carbon__instrument(call, &v->items[0])->base;
  return GM_OK;
}

static gm_status carbon__halt(gm_call *call, const ProtobufCMessage *req,
                              ProtobufCMessage **reply) {
  return carbon__instrument_halt(call, "halt", req, reply);
}

static gm_status carbon__resume(gm_call *call, const ProtobufCMessage *req,
                                ProtobufCMessage **reply) {
  return carbon__instrument_halt(call, "resume", req, reply);
}

/* ---- accounts ---------------------------------------------------------- */

static gm_status carbon__move(gm_call *call, const char *op,
                              const ProtobufCMessage *req,
                              ProtobufCMessage **reply) {
  const Gm__Carbon__MoveRequest *in = (const Gm__Carbon__MoveRequest *)req;
  const gm_value *v;
  gm_status st;
  if ((st = carbon__need_symbol(call, in->symbol)) != GM_OK) return st;
  if (!gm__carbon_valid_participant(in->participant))
    return host->fail(call, GM_INVALID_ARGUMENT,
                      "participant \"%s\" is not a valid id (1-64 characters, "
                      "no spaces or '|')",
                      in->participant);
  if (in->asset != GM__CARBON__ASSET__ASSET_CASH &&
      in->asset != GM__CARBON__ASSET__ASSET_ALLOWANCE)
    return host->fail(call, GM_INVALID_ARGUMENT,
                      "asset must be ASSET_CASH (fen) or ASSET_ALLOWANCE (t)");
  if (in->amount <= 0)
    return host->fail(call, GM_INVALID_ARGUMENT,
                      "amount must be positive (%s takes it out, deposit "
                      "puts it in)",
                      "withdraw");
  if (strlen(in->reference) > 256)
    return host->fail(call, GM_INVALID_ARGUMENT, "reference is over 256 bytes");
  const char *args[] = {op, in->participant,
                        in->asset == GM__CARBON__ASSET__ASSET_CASH ? "c" : "a",
                        carbon__num(call, in->amount), in->reference};
  if ((st = carbon__run(call, "admin", in->symbol, 5, args, &v)) != GM_OK)
    return st;
  *reply = &carbon__account(call, in->symbol, &v->items[0])->base;
  return GM_OK;
}

static gm_status carbon__deposit(gm_call *call, const ProtobufCMessage *req,
                                 ProtobufCMessage **reply) {
  return carbon__move(call, "deposit", req, reply);
}

static gm_status carbon__withdraw(gm_call *call, const ProtobufCMessage *req,
                                  ProtobufCMessage **reply) {
  return carbon__move(call, "withdraw", req, reply);
}

static gm_status carbon__account_get(gm_call *call, const ProtobufCMessage *req,
                                     ProtobufCMessage **reply) {
  const Gm__Carbon__AccountRequest *in =
      (const Gm__Carbon__AccountRequest *)req;
  const char *who = host->participant(call);
  const gm_value *v;
  gm_status st;
  if ((st = carbon__need_symbol(call, in->symbol)) != GM_OK) return st;
  if (in->participant[0] && strcmp(in->participant, who)) {
    if (!host->has_role(call, "admin"))
      return host->fail(call, GM_PERMISSION_DENIED,
                        "only an admin may read another participant's "
                        "account; leave participant empty for your own");
    who = in->participant;
  }
  const char *args[] = {"acct", who};
  if ((st = carbon__run(call, "read", in->symbol, 2, args, &v)) != GM_OK)
    return st;
  *reply = &carbon__account(call, in->symbol, &v->items[0])->base;
  return GM_OK;
}

static gm_status carbon__account_configure(gm_call *call,
                                           const ProtobufCMessage *req,
                                           ProtobufCMessage **reply) {
  const Gm__Carbon__ConfigureAccountRequest *in =
      (const Gm__Carbon__ConfigureAccountRequest *)req;
  const gm_value *v;
  gm_status st;
  if ((st = carbon__need_symbol(call, in->symbol)) != GM_OK) return st;
  if (in->stp > GM__CARBON__STP_MODE__STP_CANCEL_BOTH)
    return host->fail(call, GM_INVALID_ARGUMENT, "stp mode %d is unknown",
                      (int)in->stp);
  const char *args[] = {"configure", carbon__num(call, in->stp)};
  if ((st = carbon__run(call, "admin", in->symbol, 2, args, &v)) != GM_OK)
    return st;
  *reply = &carbon__account(call, in->symbol, &v->items[0])->base;
  return GM_OK;
}

/* ---- orders ------------------------------------------------------------ */

/* Buyers buy, sellers sell; a participant who does both holds both roles. */
static gm_status carbon__side_role(gm_call *call, Gm__Carbon__Side side) {
  if (side != GM__CARBON__SIDE__SIDE_BUY && side != GM__CARBON__SIDE__SIDE_SELL)
    return host->fail(call, GM_INVALID_ARGUMENT,
                      "side must be SIDE_BUY or SIDE_SELL");
  const char *role = side == GM__CARBON__SIDE__SIDE_BUY ? "buyer" : "seller";
  if (!host->has_role(call, role))
    return host->fail(call, GM_PERMISSION_DENIED,
                      "%s orders need the %s role; ask an admin to register "
                      "you with it",
                      side == GM__CARBON__SIDE__SIDE_BUY ? "buy" : "sell",
                      role);
  return GM_OK;
}

/*
 * Runs one order through the place script: the first step (`args`: new,
 * replace or continue), then a 'continue' step for as long as the reply says
 * the order is still in flight.  Each step is published as it ends; the
 * reply is the last step's order record with the fills of every step.  The
 * next step depends only on the previous reply, so a retried call replays
 * the steps that ran and runs the rest (plugin.h, script_register).
 */
static gm_status carbon__place_run(gm_call *call, const char *sym, size_t nargs,
                                   const char *const *args,
                                   Gm__Carbon__PlaceReply **reply) {
  Gm__Carbon__PlaceReply *out = host->alloc(call, sizeof *out);
  gm__carbon__place_reply__init(out);
  const char *cont[2] = {"continue", NULL};
  gm_status st;

  for (long step = 1;; step++) {
    const gm_value *v;
    const char *next = NULL;
    if (step > CARBON_MAX_STEPS_LIMIT + 1)
      return host->fail(call, GM_INTERNAL,
                        "order %s:%s is still matching after %d steps (the "
                        "place script should end it at max_steps); check the "
                        "gmd log",
                        sym, cont[1], CARBON_MAX_STEPS_LIMIT);
    if ((st = carbon__run(call, "place", sym, nargs, args, &v)) != GM_OK)
      return st;
    /* Failure injection: the broker dies between two steps of an order. */
    if (step == carbon__kill_after_step && *host->idempotency_key(call))
      raise(SIGKILL);
    Gm__Carbon__Fill **fills =
        host->alloc(call, (out->n_fills + v->n + 1) * sizeof *fills);
    if (out->n_fills) memcpy(fills, out->fills, out->n_fills * sizeof *fills);
    out->fills = fills;
    for (size_t i = 0; i < v->n; i++) {
      char tag = carbon__tag(v, i);
      if (tag == 'T')
        out->order = carbon__order(call, sym, &v->items[i]);
      else if (tag == 'F')
        out->fills[out->n_fills++] = carbon__fill(call, sym, &v->items[i]);
      else if (tag == 'D')
        out->duplicate = 1;
      else if (tag == 'M')
        next = carbon__s(&v->items[i], 1);
    }
    if (!out->order)
      return host->fail(call, GM_INTERNAL,
                        "the place script returned no order; check the gmd "
                        "log");
    if (!out->duplicate) carbon__publish(call, sym, v, out->order->side);
    if (!next || out->duplicate) break;
    cont[1] = next;
    args = cont;
    nargs = 2;
  }
  *reply = out;
  return GM_OK;
}

static gm_status carbon__place(gm_call *call, const ProtobufCMessage *req,
                               ProtobufCMessage **reply) {
  const Gm__Carbon__PlaceRequest *in = (const Gm__Carbon__PlaceRequest *)req;
  const int market = in->type == GM__CARBON__ORDER_TYPE__TYPE_MARKET;
  gm_status st;

  if ((st = carbon__need_symbol(call, in->symbol)) != GM_OK) return st;
  if ((st = carbon__side_role(call, in->side)) != GM_OK) return st;
  if (in->type > GM__CARBON__ORDER_TYPE__TYPE_MARKET ||
      in->tif > GM__CARBON__TIME_IN_FORCE__TIF_FOK ||
      in->stp > GM__CARBON__STP_MODE__STP_CANCEL_BOTH)
    return host->fail(call, GM_INVALID_ARGUMENT,
                      "type, tif or stp is out of range");
  if (in->quantity <= 0 || in->quantity > GM_CARBON_MAX_QTY)
    return host->fail(call, GM_INVALID_ARGUMENT,
                      "quantity %lld t must be 1..%lld t",
                      (long long)in->quantity, (long long)GM_CARBON_MAX_QTY);
  if (!market && (in->price <= 0 || in->price > GM_CARBON_MAX_PRICE))
    return host->fail(call, GM_INVALID_ARGUMENT,
                      "price %lld fen must be 1..%lld fen (a market order "
                      "needs no price)",
                      (long long)in->price, (long long)GM_CARBON_MAX_PRICE);
  if (in->post_only &&
      (market || in->tif == GM__CARBON__TIME_IN_FORCE__TIF_IOC ||
       in->tif == GM__CARBON__TIME_IN_FORCE__TIF_FOK))
    return host->fail(call, GM_INVALID_ARGUMENT,
                      "post_only applies to resting limit orders; drop it for "
                      "market, IOC and FOK orders");
  if (in->tif == GM__CARBON__TIME_IN_FORCE__TIF_GTD && in->expire_ms <= 0)
    return host->fail(call, GM_INVALID_ARGUMENT,
                      "a GTD order needs expire_ms (ms since the epoch)");
  /* Scripts count in doubles: an expiry past 2^53 would not round-trip. A
     year is as long as any order may wait. */
  if (in->expire_ms > host->now_ms(host->market(call)) + CARBON_MAX_GTD_MS)
    return host->fail(call, GM_INVALID_ARGUMENT,
                      "expire_ms is more than 366 days ahead; a GTD order "
                      "lives at most a year (use GTC for longer)");
  if (strlen(in->client_order_id) > 64)
    return host->fail(call, GM_INVALID_ARGUMENT,
                      "client_order_id is over 64 bytes");

  const char *args[] = {"new",
                        carbon__side_code(in->side),
                        market ? "M" : "L",
                        carbon__num(call, in->tif),
                        carbon__num(call, market ? 0 : in->price),
                        carbon__num(call, in->quantity),
                        carbon__num(call, in->expire_ms),
                        in->post_only ? "1" : "0",
                        carbon__num(call, in->stp),
                        in->client_order_id,
                        carbon__num(call, carbon__max_steps)};
  Gm__Carbon__PlaceReply *out;
  if ((st = carbon__place_run(call, in->symbol, 11, args, &out)) != GM_OK)
    return st;
  *reply = &out->base;
  return GM_OK;
}

static gm_status carbon__replace(gm_call *call, const ProtobufCMessage *req,
                                 ProtobufCMessage **reply) {
  const Gm__Carbon__ReplaceRequest *in =
      (const Gm__Carbon__ReplaceRequest *)req;
  const char *sym = NULL, *id = NULL;
  gm_status st;
  if ((st = carbon__split_id(call, in->order_id, &sym, &id)) != GM_OK)
    return st;
  if (in->price < 0 || in->price > GM_CARBON_MAX_PRICE || in->quantity < 0 ||
      in->quantity > GM_CARBON_MAX_QTY || (in->price == 0 && in->quantity == 0))
    return host->fail(call, GM_INVALID_ARGUMENT,
                      "give a new price (1..%lld fen) and/or a new total "
                      "quantity (1..%lld t)",
                      (long long)GM_CARBON_MAX_PRICE,
                      (long long)GM_CARBON_MAX_QTY);
  const char *args[] = {"replace", id, carbon__num(call, in->price),
                        carbon__num(call, in->quantity),
                        carbon__num(call, carbon__max_steps)};
  Gm__Carbon__PlaceReply *out;
  if ((st = carbon__place_run(call, sym, 5, args, &out)) != GM_OK) return st;
  *reply = &out->base;
  return GM_OK;
}

static gm_status carbon__cancel(gm_call *call, const ProtobufCMessage *req,
                                ProtobufCMessage **reply) {
  const Gm__Carbon__OrderRequest *in = (const Gm__Carbon__OrderRequest *)req;
  const char *sym = NULL, *id = NULL;
  const gm_value *v;
  gm_status st;
  if ((st = carbon__split_id(call, in->order_id, &sym, &id)) != GM_OK)
    return st;
  const char *args[] = {"cancel", id,
                        host->has_role(call, "admin") ? "1" : "0"};
  if ((st = carbon__run(call, "amend", sym, 3, args, &v)) != GM_OK) return st;
  for (size_t i = 0; i < v->n; i++)
    if (carbon__tag(v, i) == 'T') {
      Gm__Carbon__Order *o = carbon__order(call, sym, &v->items[i]);
      carbon__publish(call, sym, v, o->side);
      *reply = &o->base;
      return GM_OK;
    }
  return host->fail(call, GM_INTERNAL,
                    "the cancel script returned no order; check the gmd log");
}

/*
 * Cancels the caller's open orders of one instrument (one side or both),
 * looking at no more than mass_cancel_max of them per call and handing back
 * a cursor to go on with (see carbon__cursor).
 */
static gm_status carbon__mass_cancel(gm_call *call, const ProtobufCMessage *req,
                                     ProtobufCMessage **reply) {
  const Gm__Carbon__MassCancelRequest *in =
      (const Gm__Carbon__MassCancelRequest *)req;
  carbon__cursor cur = {in->symbol, 'a', "0", ""};
  const gm_value *v;
  gm_status st;
  if ((st = carbon__need_symbol(call, in->symbol)) != GM_OK) return st;
  if (in->side != GM__CARBON__SIDE__SIDE_UNSPECIFIED &&
      in->side != GM__CARBON__SIDE__SIDE_BUY &&
      in->side != GM__CARBON__SIDE__SIDE_SELL)
    return host->fail(call, GM_INVALID_ARGUMENT,
                      "side %d is unknown; use SIDE_BUY, SIDE_SELL, or leave "
                      "it unset for both",
                      (int)in->side);
  const char *side = in->side == GM__CARBON__SIDE__SIDE_BUY    ? "b"
                     : in->side == GM__CARBON__SIDE__SIDE_SELL ? "s"
                                                               : "";
  if (in->cursor[0]) {
    st =
        carbon__cursor_parse(call, "order.mass_cancel", in->cursor, 1, 0, &cur);
    if (st != GM_OK) return st;
    /* Another symbol's or side's walk would skip orders silently. */
    if (strcmp(cur.sym, in->symbol) || cur.side != (side[0] ? side[0] : 'a'))
      return host->fail(call, GM_INVALID_ARGUMENT,
                        "cursor is for another symbol or side than this "
                        "request's (%s, %s); pass next_cursor back with the "
                        "symbol and side it came with",
                        in->symbol, side[0] ? side : "both sides");
  }
  cur.side = side[0] ? side[0] : 'a';
  const char *args[] = {"mass", side,
                        carbon__num(call, carbon__mass_cancel_max), cur.pos,
                        cur.carry};
  if ((st = carbon__run(call, "amend", in->symbol, 5, args, &v)) != GM_OK)
    return st;
  Gm__Carbon__MassCancelReply *out = host->alloc(call, sizeof *out);
  int walked = 0;
  gm__carbon__mass_cancel_reply__init(out);
  out->cancelled = host->alloc(call, (v->n + 1) * sizeof(char *));
  for (size_t i = 0; i < v->n; i++) {
    char tag = carbon__tag(v, i);
    if (tag == 'O')
      out->cancelled[out->n_cancelled++] =
          host->sprintf(call, "%s:%s", in->symbol, carbon__s(&v->items[i], 1));
    else if (tag == 'N') {
      walked = 1;
      out->remaining = carbon__i(&v->items[i], 1);
      cur.pos = carbon__s(&v->items[i], 2);
      cur.carry = carbon__s(&v->items[i], 3);
      if (!carbon__cursor_done(cur.pos, cur.carry))
        out->next_cursor = carbon__cursor_text(call, &cur);
    }
  }
  carbon__publish(call, in->symbol, v, GM__CARBON__SIDE__SIDE_UNSPECIFIED);
  if (!walked)
    return host->fail(call, GM_INTERNAL,
                      "the mass cancel script returned no position; check "
                      "the gmd log");
  *reply = &out->base;
  return GM_OK;
}

static int carbon__order_row(void *arg, size_t ncols, const gm_param *c) {
  Gm__Carbon__Order *o = arg;
  if (ncols < 11) return 1;
  o->participant = (char *)c[0].s;
  o->side = carbon__side_of(c[1].s ? c[1].s : "b");
  o->price = c[2].i;
  o->quantity = c[3].i;
  o->remaining = c[4].i;
  o->filled = c[5].i;
  o->state = (Gm__Carbon__OrderState)c[6].i;
  o->reason = (char *)(c[7].s ? c[7].s : "");
  o->tif = (Gm__Carbon__TimeInForce)c[8].i;
  o->created_ms = c[9].i;
  o->expire_ms = c[10].i;
  return 1;
}

static gm_status carbon__order_get(gm_call *call, const ProtobufCMessage *req,
                                   ProtobufCMessage **reply) {
  const Gm__Carbon__OrderRequest *in = (const Gm__Carbon__OrderRequest *)req;
  const char *sym = NULL, *id = NULL;
  const gm_value *v;
  gm_status st;
  if ((st = carbon__split_id(call, in->order_id, &sym, &id)) != GM_OK)
    return st;
  const char *args[] = {"order", id};
  if ((st = carbon__run(call, "read", sym, 2, args, &v)) != GM_OK) return st;
  Gm__Carbon__Order *o = NULL;
  if (v->n > 0) {
    o = carbon__order(call, sym, &v->items[0]);
  } else {
    /* Not resting: its final state is in the ledger once settled. */
    o = host->alloc(call, sizeof *o);
    gm__carbon__order__init(o);
    o->id = (char *)in->order_id;
    o->symbol = (char *)sym;
    st = host->ledger_query(
        call,
        "SELECT participant, side, price, quantity, remaining, filled, state,"
        " reason, tif, created_ms, expire_ms FROM carbon_orders"
        " WHERE order_id = ?1",
        (gm_param[]){GM_TEXT(in->order_id)}, 1, carbon__order_row, o);
    if (st != GM_OK) return st;
    if (!o->participant[0]) /* no row: init left the empty string */
      return host->fail(call, GM_NOT_FOUND,
                        "no order %s (an order that ended a moment ago may "
                        "still be settling: retry in a second)",
                        in->order_id);
  }
  if (strcmp(o->participant, host->participant(call)) &&
      !host->has_role(call, "admin"))
    return host->fail(call, GM_NOT_FOUND, "no order %s of yours", in->order_id);
  *reply = &o->base;
  return GM_OK;
}

/*
 * A paged list of a participant's things, walked with a cursor: order.list
 * (open orders) and block.list (open offers).
 */
typedef struct carbon__walk {
  const char *method; /* "order.list": named in errors */
  const char *op;     /* the read script's op: "orders" or "offers" */
  const char *who;    /* whose; "" (offers only): every open one */
  char prefix;        /* what carried ids start with: 0 or 'B' */
  char tag;           /* the reply record of one item: 'O' or 'B' */
  /* Turns a record into the reply's item. */
  void *(*item)(gm_call *call, const char *sym, const gm_value *r);
} carbon__walk;

/*
 * One page of walk `w`: of one instrument, or of every instrument in symbol
 * order.  Each script run reads at most the items the page still needs
 * (lib.lua, page()), so a page costs the same however many there are.  A
 * run that ends its bounded scan before the page is full ends the page
 * early: the cursor says where to go on.  Sets items[0..*n) (room for
 * limit) and *next ("" on the last page).
 */
static gm_status carbon__walk_page(gm_call *call, const carbon__walk *w,
                                   const char *symbol, int32_t limit_in,
                                   const char *cursor, void ***items, size_t *n,
                                   char **next) {
  int32_t limit = limit_in ? limit_in : CARBON_LIST_DEFAULT;
  carbon__cursor cur = {NULL, 0, "0", ""};
  const gm_value *list = NULL, *v;
  gm_status st;
  size_t nsym = 1, k = 0;
  *n = 0;
  *next = "";
  if (limit < 1 || limit > CARBON_LIST_MAX)
    return host->fail(call, GM_INVALID_ARGUMENT,
                      "limit %d is out of range: a page holds 1..%d %s (0 "
                      "or unset: %d); follow next_cursor for more",
                      (int)limit_in, CARBON_LIST_MAX, w->op,
                      CARBON_LIST_DEFAULT);
  if (symbol[0] && (st = carbon__need_symbol(call, symbol)) != GM_OK) return st;
  if (cursor[0]) {
    st = carbon__cursor_parse(call, w->method, cursor, 0, w->prefix, &cur);
    if (st != GM_OK) return st;
    if (symbol[0] && strcmp(cur.sym, symbol))
      return host->fail(call, GM_INVALID_ARGUMENT,
                        "cursor is for %s, not %s; pass next_cursor back with "
                        "the symbol it came with",
                        cur.sym, symbol);
  }
  if (!symbol[0]) {
    if ((st = carbon__registry(call, &list)) != GM_OK) return st;
    nsym = list->n;
    /* The registry is sorted: resume at the cursor's instrument, or at the
     * first after it should it be gone. */
    while (cur.sym && k < nsym &&
           (!list->items[k].str || strcmp(list->items[k].str, cur.sym) < 0))
      k++;
    if (cur.sym && k < nsym && strcmp(list->items[k].str, cur.sym))
      cur.pos = "0", cur.carry = "";
  }
  *items = host->alloc(call, ((size_t)limit + 1) * sizeof **items);
  for (; k < nsym; k++, cur.pos = "0", cur.carry = "") {
    cur.sym = list ? list->items[k].str : symbol;
    if (!cur.sym) continue;
    size_t need = (size_t)limit - *n;
    if (need == 0) {
      *next = carbon__cursor_text(call, &cur);
      break;
    }
    const char *args[] = {w->op, w->who, carbon__num(call, (int64_t)need),
                          cur.pos, cur.carry};
    int walked = 0;
    if ((st = carbon__run(call, "read", cur.sym, 5, args, &v)) != GM_OK) {
      if (list) continue; /* an instrument listed but gone: skip it */
      return st;
    }
    for (size_t i = 0; i < v->n; i++) {
      char tag = carbon__tag(v, i);
      if (tag == w->tag && *n < (size_t)limit)
        (*items)[(*n)++] = w->item(call, cur.sym, &v->items[i]);
      else if (tag == 'C') {
        cur.pos = carbon__s(&v->items[i], 1);
        cur.carry = carbon__s(&v->items[i], 2);
        walked = 1;
      }
    }
    if (!walked)
      return host->fail(call, GM_INTERNAL,
                        "the read script returned no position for %s's %s; "
                        "check the gmd log",
                        cur.sym, w->op);
    if (!carbon__cursor_done(cur.pos, cur.carry)) {
      *next = carbon__cursor_text(call, &cur);
      break;
    }
  }
  return GM_OK;
}

static void *carbon__order_item(gm_call *call, const char *sym,
                                const gm_value *r) {
  return carbon__order(call, sym, r);
}

/* One page of the caller's open orders (carbon__walk_page). */
static gm_status carbon__order_list(gm_call *call, const ProtobufCMessage *req,
                                    ProtobufCMessage **reply) {
  const Gm__Carbon__ListOrdersRequest *in =
      (const Gm__Carbon__ListOrdersRequest *)req;
  const carbon__walk w = {.method = "order.list",
                          .op = "orders",
                          .who = host->participant(call),
                          .prefix = 0,
                          .tag = 'O',
                          .item = carbon__order_item};
  void **items;
  gm_status st;
  Gm__Carbon__OrderList *out = host->alloc(call, sizeof *out);
  gm__carbon__order_list__init(out);
  st = carbon__walk_page(call, &w, in->symbol, in->limit, in->cursor, &items,
                         &out->n_orders, &out->next_cursor);
  if (st != GM_OK) return st;
  out->orders = (Gm__Carbon__Order **)items;
  *reply = &out->base;
  return GM_OK;
}

/* ---- block trades ------------------------------------------------------ */

static Gm__Carbon__BlockOffer *carbon__offer(gm_call *call, const char *sym,
                                             const gm_value *r) {
  Gm__Carbon__BlockOffer *b = host->alloc(call, sizeof *b);
  gm__carbon__block_offer__init(b);
  b->id = host->sprintf(call, "%s:%s", sym, carbon__s(r, 1));
  b->symbol = (char *)sym;
  b->offerer = (char *)carbon__s(r, 2);
  b->counterparty = (char *)carbon__s(r, 3);
  b->side = carbon__side_of(carbon__s(r, 4));
  b->price = carbon__i(r, 5);
  b->quantity = carbon__i(r, 6);
  b->state = (Gm__Carbon__OfferState)carbon__i(r, 7);
  b->trade_id = carbon__s(r, 8)[0]
                    ? host->sprintf(call, "%s:%s", sym, carbon__s(r, 8))
                    : "";
  b->created_ms = carbon__i(r, 9);
  return b;
}

static gm_status carbon__offer_reply(gm_call *call, const char *sym,
                                     const gm_value *v,
                                     ProtobufCMessage **reply) {
  for (size_t i = 0; i < v->n; i++)
    if (carbon__tag(v, i) == 'B') {
      Gm__Carbon__BlockOffer *b = carbon__offer(call, sym, &v->items[i]);
      /* The offer's new state, and the trade an accept made (the offerer's
       * side is the maker's). */
      carbon__publish(call, sym, v,
                      b->side == GM__CARBON__SIDE__SIDE_BUY
                          ? GM__CARBON__SIDE__SIDE_SELL
                          : GM__CARBON__SIDE__SIDE_BUY);
      *reply = &b->base;
      return GM_OK;
    }
  return host->fail(call, GM_INTERNAL,
                    "the block script returned no offer; check the gmd log");
}

static gm_status carbon__block_offer(gm_call *call, const ProtobufCMessage *req,
                                     ProtobufCMessage **reply) {
  const Gm__Carbon__OfferRequest *in = (const Gm__Carbon__OfferRequest *)req;
  const gm_value *v;
  gm_status st;
  if ((st = carbon__need_symbol(call, in->symbol)) != GM_OK) return st;
  if ((st = carbon__side_role(call, in->side)) != GM_OK) return st;
  if (!gm__carbon_valid_participant(in->counterparty) ||
      !strcmp(in->counterparty, host->participant(call)))
    return host->fail(call, GM_INVALID_ARGUMENT,
                      "counterparty \"%s\" must be another participant's id",
                      in->counterparty);
  if (in->price <= 0 || in->price > GM_CARBON_MAX_PRICE || in->quantity <= 0 ||
      in->quantity > GM_CARBON_MAX_QTY)
    return host->fail(call, GM_INVALID_ARGUMENT,
                      "price must be 1..%lld fen and quantity 1..%lld t",
                      (long long)GM_CARBON_MAX_PRICE,
                      (long long)GM_CARBON_MAX_QTY);
  const char *args[] = {"offer", carbon__side_code(in->side), in->counterparty,
                        carbon__num(call, in->price),
                        carbon__num(call, in->quantity)};
  if ((st = carbon__run(call, "block", in->symbol, 5, args, &v)) != GM_OK)
    return st;
  return carbon__offer_reply(call, in->symbol, v, reply);
}

static gm_status carbon__block_decide(gm_call *call, const char *op,
                                      const ProtobufCMessage *req,
                                      ProtobufCMessage **reply) {
  const Gm__Carbon__OfferDecision *in = (const Gm__Carbon__OfferDecision *)req;
  const char *sym = NULL, *id = NULL;
  const gm_value *v;
  gm_status st;
  if ((st = carbon__split_id(call, in->offer_id, &sym, &id)) != GM_OK)
    return st;
  const char *args[] = {op, id};
  if ((st = carbon__run(call, "block", sym, 2, args, &v)) != GM_OK) return st;
  return carbon__offer_reply(call, sym, v, reply);
}

static gm_status carbon__block_accept(gm_call *call,
                                      const ProtobufCMessage *req,
                                      ProtobufCMessage **reply) {
  return carbon__block_decide(call, "accept", req, reply);
}

static gm_status carbon__block_reject(gm_call *call,
                                      const ProtobufCMessage *req,
                                      ProtobufCMessage **reply) {
  return carbon__block_decide(call, "reject", req, reply);
}

static void *carbon__offer_item(gm_call *call, const char *sym,
                                const gm_value *r) {
  return carbon__offer(call, sym, r);
}

/* One page of the open offers to or from the caller, or of every open offer
 * for an admin (carbon__walk_page). */
static gm_status carbon__block_list(gm_call *call, const ProtobufCMessage *req,
                                    ProtobufCMessage **reply) {
  const Gm__Carbon__ListOffersRequest *in =
      (const Gm__Carbon__ListOffersRequest *)req;
  const carbon__walk w = {
      .method = "block.list",
      .op = "offers",
      .who = host->has_role(call, "admin") ? "" : host->participant(call),
      .prefix = 'B',
      .tag = 'B',
      .item = carbon__offer_item};
  void **items;
  gm_status st;
  Gm__Carbon__OfferList *out = host->alloc(call, sizeof *out);
  gm__carbon__offer_list__init(out);
  st = carbon__walk_page(call, &w, in->symbol, in->limit, in->cursor, &items,
                         &out->n_offers, &out->next_cursor);
  if (st != GM_OK) return st;
  out->offers = (Gm__Carbon__BlockOffer **)items;
  *reply = &out->base;
  return GM_OK;
}

/* ---- market data ------------------------------------------------------- */

static gm_status carbon__depth(gm_call *call, const ProtobufCMessage *req,
                               ProtobufCMessage **reply) {
  const Gm__Carbon__DepthRequest *in = (const Gm__Carbon__DepthRequest *)req;
  int levels = in->levels ? in->levels : 5;
  const gm_value *v;
  gm_status st;
  if ((st = carbon__need_symbol(call, in->symbol)) != GM_OK) return st;
  if (levels < 1 || levels > 100)
    return host->fail(call, GM_INVALID_ARGUMENT, "levels must be 1..100");
  const char *args[] = {"depth", carbon__num(call, levels)};
  if ((st = carbon__run(call, "read", in->symbol, 2, args, &v)) != GM_OK)
    return st;
  Gm__Carbon__Depth *out = host->alloc(call, sizeof *out);
  gm__carbon__depth__init(out);
  out->symbol = in->symbol;
  out->bids = host->alloc(call, (v->n + 1) * sizeof(void *));
  out->asks = host->alloc(call, (v->n + 1) * sizeof(void *));
  for (size_t i = 0; i < v->n; i++) {
    const gm_value *r = &v->items[i];
    Gm__Carbon__Level *l = host->alloc(call, sizeof *l);
    gm__carbon__level__init(l);
    l->price = carbon__i(r, 2);
    l->quantity = carbon__i(r, 3);
    if (carbon__s(r, 1)[0] == 'b')
      out->bids[out->n_bids++] = l;
    else
      out->asks[out->n_asks++] = l;
  }
  *reply = &out->base;
  return GM_OK;
}

static gm_status carbon__stats(gm_call *call, const ProtobufCMessage *req,
                               ProtobufCMessage **reply) {
  const Gm__Carbon__StatsRequest *in = (const Gm__Carbon__StatsRequest *)req;
  const char *args[] = {"stats"};
  const gm_value *v;
  gm_status st;
  if ((st = carbon__need_symbol(call, in->symbol)) != GM_OK) return st;
  if ((st = carbon__run(call, "read", in->symbol, 1, args, &v)) != GM_OK)
    return st;
  const gm_value *r = &v->items[0];
  Gm__Carbon__Stats *out = host->alloc(call, sizeof *out);
  gm__carbon__stats__init(out);
  out->symbol = in->symbol;
  out->day = (char *)carbon__s(r, 1);
  out->last = carbon__i(r, 2);
  out->open = carbon__i(r, 3);
  out->high = carbon__i(r, 4);
  out->low = carbon__i(r, 5);
  out->volume = carbon__i(r, 6);
  out->turnover = carbon__i(r, 7);
  out->trades = carbon__i(r, 8);
  out->block_volume = carbon__i(r, 9);
  out->reference_price = carbon__i(r, 10);
  out->close = carbon__i(r, 11);
  /* Half up, as the close itself is computed. */
  if (out->volume > 0)
    out->vwap = (2 * out->turnover + out->volume) / (2 * out->volume);
  *reply = &out->base;
  return GM_OK;
}

/* ---- end of day -------------------------------------------------------- */

/* One DayClose from a {'C', ...} record of the close script. */
static Gm__Carbon__DayClose *carbon__day_close(gm_call *call, const char *sym,
                                               const gm_value *r,
                                               int64_t expired) {
  Gm__Carbon__DayClose *d = host->alloc(call, sizeof *d);
  gm__carbon__day_close__init(d);
  d->symbol = (char *)sym;
  d->day = (char *)carbon__s(r, 1);
  d->close = carbon__i(r, 2);
  d->volume = carbon__i(r, 3);
  d->from_trades = carbon__i(r, 4) != 0;
  d->already = carbon__i(r, 5) != 0;
  d->expired = expired;
  return d;
}

/*
 * Expires what is due and, with `close`, closes the days of instrument `sym`
 * whose close has passed, oldest first: before each day's close the orders
 * and offers due by that close are expired, and each day gets its own close
 * (sweep.lua).  At most CARBON_CLOSE_DAYS days per call (days missed while
 * no broker ran; the next call carries on).  Both steps are idempotent, so
 * this may run any number of times (timer, admin, several brokers).  Sets
 * dc[0..*ndc) (room for CARBON_CLOSE_DAYS): the days closed now, else the
 * latest day closed before (already), else none (no trading day closed yet).
 */
static gm_status carbon__sweep(gm_call *call, const char *sym, int close,
                               Gm__Carbon__DayClose **dc, size_t *ndc) {
  const char *close_args[] = {"close"};
  const gm_value *v;
  gm_status st;
  int64_t expired = 0;
  const char *upto = NULL; /* expire only up to this close's ms */
  *ndc = 0;
  /* Bounded: each round expires at most expire_batch or closes one day;
   * the next sweep carries on. */
  for (int round = 0; round < 64 + CARBON_CLOSE_DAYS; round++) {
    if (close && !upto) {
      if ((st = carbon__run(call, "sweep", sym, 1, close_args, &v)) != GM_OK)
        return st;
      if (v->n == 0) { /* no trading day has closed yet */
        close = 0;
      } else if (carbon__tag(v, 0) == 'W') { /* due expiries first */
        upto = carbon__s(&v->items[0], 2);
      } else {
        const gm_value *r = &v->items[0];
        int already = carbon__i(r, 5) != 0;
        if (!already || *ndc == 0)
          dc[(*ndc)++] = carbon__day_close(call, sym, r, already ? 0 : expired);
        if (!already) expired = 0;
        /* A later day is due too: close it next, unless this call did its
         * share. */
        close = !already && carbon__i(r, 6) != 0 && *ndc < CARBON_CLOSE_DAYS;
        if (close) continue;
      }
      if (close && !upto) continue;
    }
    const char *exp_args[] = {"expire", carbon__num(call, carbon__expire_batch),
                              upto};
    int more = 0;
    if ((st = carbon__run(call, "sweep", sym, upto ? 3 : 2, exp_args, &v)) !=
        GM_OK)
      return st;
    for (size_t i = 0; i < v->n; i++)
      if (carbon__tag(v, i) == 'N') {
        expired += carbon__i(&v->items[i], 1);
        more = carbon__i(&v->items[i], 2) != 0;
      }
    carbon__publish(call, sym, v, GM__CARBON__SIDE__SIDE_UNSPECIFIED);
    if (upto && !more) upto = NULL; /* that day's expiries are done */
    if (!upto && !close && !more) return GM_OK;
  }
  return GM_OK;
}

static gm_status carbon__close(gm_call *call, const ProtobufCMessage *req,
                               ProtobufCMessage **reply) {
  const Gm__Carbon__CloseRequest *in = (const Gm__Carbon__CloseRequest *)req;
  const gm_value *list = NULL;
  gm_status st;
  size_t nsym = 1;
  if (in->symbol[0]) {
    if ((st = carbon__need_symbol(call, in->symbol)) != GM_OK) return st;
  } else {
    if ((st = carbon__registry(call, &list)) != GM_OK) return st;
    nsym = list->n;
  }
  Gm__Carbon__CloseReply *out = host->alloc(call, sizeof *out);
  gm__carbon__close_reply__init(out);
  out->closes =
      host->alloc(call, (nsym * CARBON_CLOSE_DAYS + 1) * sizeof *out->closes);
  for (size_t k = 0; k < nsym; k++) {
    const char *sym = list ? list->items[k].str : in->symbol;
    size_t n;
    if (!sym) continue;
    if ((st = carbon__sweep(call, sym, 1, out->closes + out->n_closes, &n)) !=
        GM_OK)
      return st;
    out->n_closes += n;
  }
  *reply = &out->base;
  return GM_OK;
}

/*
 * Finishes the orders of `sym` left in flight by a broker that stopped
 * between two steps of their call, when no retry of that call resumed them
 * within inflight_ms: each is continued as the call would have done.
 */
static void carbon__recover(gm_call *call, const char *sym) {
  const char *args[] = {"stale", carbon__num(call, carbon__inflight_ms), "16"};
  const gm_value *v;
  if (carbon__run(call, "place", sym, 3, args, &v) != GM_OK) return;
  for (size_t i = 0; i < v->n; i++) {
    const char *cont[] = {"continue", carbon__s(&v->items[i], 1)};
    Gm__Carbon__PlaceReply *r;
    if (carbon__tag(v, i) != 'S') continue;
    if (carbon__place_run(call, sym, 2, cont, &r) == GM_OK)
      host->log(host->market(call), GM_LOG_INFO,
                "order %s was left in flight (its broker stopped mid-call); "
                "finished it: state %d, %lld t filled%s%s",
                r->order->id, (int)r->order->state, (long long)r->order->filled,
                r->order->reason[0] ? ", " : "", r->order->reason);
  }
}

/* The timer: in-flight orders, expiries and closes of every instrument, on
 * every broker. */
static void carbon__timer(gm_call *call, void *arg) {
  const gm_value *list;
  (void)arg;
  if (carbon__registry(call, &list) != GM_OK) return;
  for (size_t k = 0; k < list->n; k++) {
    Gm__Carbon__DayClose *dc[CARBON_CLOSE_DAYS];
    size_t n = 0;
    if (!list->items[k].str) continue;
    /* First, so an order that rests when finished is seen by the expiry. */
    carbon__recover(call, list->items[k].str);
    if (carbon__sweep(call, list->items[k].str, 1, dc, &n) != GM_OK) continue;
    for (size_t i = 0; i < n; i++)
      if (!dc[i]->already)
        host->log(host->market(call), GM_LOG_INFO,
                  "%s closed %s at %lld fen (%s, %lld orders and offers "
                  "expired)",
                  dc[i]->symbol, dc[i]->day, (long long)dc[i]->close,
                  dc[i]->from_trades ? "VWAP" : "previous close",
                  (long long)dc[i]->expired);
  }
}

/* ---- records (ledger) -------------------------------------------------- */

typedef struct carbon__trades {
  gm_call *call;
  Gm__Carbon__TradeList *list;
  size_t cap;
  const char *me;
  int admin;
} carbon__trades;

static int carbon__trade_row(void *arg, size_t ncols, const gm_param *c) {
  carbon__trades *t = arg;
  if (ncols < 12) return 1;
  if (t->list->n_trades == t->cap) {
    size_t ncap = t->cap * 2 + 16;
    Gm__Carbon__Trade **n = host->alloc(t->call, ncap * sizeof *n);
    if (t->cap) memcpy(n, t->list->trades, t->cap * sizeof *n);
    t->list->trades = n;
    t->cap = ncap;
  }
  Gm__Carbon__Trade *tr = host->alloc(t->call, sizeof *tr);
  gm__carbon__trade__init(tr);
  tr->trade_id = (char *)c[0].s;
  tr->symbol = (char *)c[1].s;
  tr->buyer = (char *)c[2].s;
  tr->seller = (char *)c[3].s;
  tr->buy_order_id = (char *)c[4].s;
  tr->sell_order_id = (char *)c[5].s;
  tr->price = c[6].i;
  tr->quantity = c[7].i;
  tr->amount = c[8].i;
  tr->maker_side = carbon__side_of(c[9].s ? c[9].s : "b");
  tr->time_ms = c[10].i;
  tr->block = c[11].i != 0;
  /* Listing trades are anonymous: only block trades (negotiated with a named
   * counterparty) and admins show who was on the other side. */
  if (!t->admin && !tr->block) {
    if (strcmp(tr->buyer, t->me)) tr->buyer = "";
    if (strcmp(tr->seller, t->me)) tr->seller = "";
  }
  t->list->trades[t->list->n_trades++] = tr;
  return 0;
}

static gm_status carbon__query_trades(gm_call *call, const char *sym,
                                      int64_t from_ms, int64_t to_ms,
                                      int64_t limit, carbon__trades *t) {
  t->call = call;
  t->me = host->participant(call);
  t->admin = host->has_role(call, "admin");
  t->list = host->alloc(call, sizeof *t->list);
  gm__carbon__trade_list__init(t->list);
  t->cap = 0;
  return host->ledger_query(
      call,
      "SELECT trade_id, symbol, buyer, seller, buy_order, sell_order, price,"
      " quantity, amount, maker_side, time_ms, block FROM carbon_trades"
      " WHERE (?1 = '' OR symbol = ?1) AND time_ms >= ?2 AND time_ms < ?3"
      " AND (?4 OR buyer = ?5 OR seller = ?5)"
      " ORDER BY time_ms, trade_id LIMIT ?6",
      (gm_param[]){GM_TEXT(sym), GM_INT(from_ms), GM_INT(to_ms),
                   GM_INT(t->admin), GM_TEXT(t->me), GM_INT(limit)},
      6, carbon__trade_row, t);
}

static gm_status carbon__trades_list(gm_call *call, const ProtobufCMessage *req,
                                     ProtobufCMessage **reply) {
  const Gm__Carbon__TradesRequest *in = (const Gm__Carbon__TradesRequest *)req;
  int64_t to = in->to_ms ? in->to_ms : host->now_ms(host->market(call)) + 1;
  int64_t limit = in->limit ? in->limit : 100;
  carbon__trades t;
  gm_status st;
  if (in->symbol[0] && (st = carbon__need_symbol(call, in->symbol)) != GM_OK)
    return st;
  if (limit < 1 || limit > 10000)
    return host->fail(call, GM_INVALID_ARGUMENT, "limit must be 1..10000");
  if ((st = carbon__query_trades(call, in->symbol, in->from_ms, to, limit,
                                 &t)) != GM_OK)
    return st;
  *reply = &t.list->base;
  return GM_OK;
}

static gm_status carbon__statement(gm_call *call, const ProtobufCMessage *req,
                                   ProtobufCMessage **reply) {
  const Gm__Carbon__StatementRequest *in =
      (const Gm__Carbon__StatementRequest *)req;
  int64_t from, to;
  carbon__trades t;
  gm_status st;
  if (in->symbol[0] && (st = carbon__need_symbol(call, in->symbol)) != GM_OK)
    return st;
  if (gm__carbon_parse_date(in->from, &from) ||
      gm__carbon_parse_date(in->to[0] ? in->to : in->from, &to) || to < from)
    return host->fail(call, GM_INVALID_ARGUMENT,
                      "from and to must be dates YYYY-MM-DD (Asia/Shanghai), "
                      "from <= to");
  if (to - from > 3660)
    return host->fail(call, GM_INVALID_ARGUMENT,
                      "a statement covers at most 10 years; split the range");
  if ((st =
           carbon__query_trades(call, in->symbol, gm__carbon_day_start_ms(from),
                                gm__carbon_day_start_ms(to + 1),
                                CARBON_STATEMENT_MAX + 1, &t)) != GM_OK)
    return st;
  /* A statement is for reconciling: never cut one short silently. */
  if (t.list->n_trades > CARBON_STATEMENT_MAX)
    return host->fail(call, GM_RESOURCE_EXHAUSTED,
                      "more than %d trades from %s to %s; ask for a shorter "
                      "range",
                      CARBON_STATEMENT_MAX, in->from,
                      in->to[0] ? in->to : in->from);
  /* One CSV line is under 256 bytes: ids and names are bounded. */
  size_t cap = 256 * (t.list->n_trades + 1), used = 0;
  char *csv = host->alloc(call, cap);
  const char *me = host->participant(call);
  used += (size_t)snprintf(csv, cap,
                           "trade_id,time,symbol,side,price,quantity,amount,"
                           "counterparty,order_id,kind\n");
  for (size_t i = 0; i < t.list->n_trades; i++) {
    const Gm__Carbon__Trade *tr = t.list->trades[i];
    int buy = strcmp(tr->buyer, me) == 0;
    int64_t local = tr->time_ms + GM_CARBON_TZ_MS;
    int64_t sod = ((local % GM_CARBON_DAY_MS) + GM_CARBON_DAY_MS) %
                  GM_CARBON_DAY_MS / 1000;
    char date[16], px[32], amt[32];
    gm__carbon_format_date(gm__carbon_day_of(tr->time_ms), date);
    used += (size_t)snprintf(
        csv + used, cap - used,
        "%s,%sT%02d:%02d:%02d+08:00,%s,%s,%s,%lld,%s,%s,%s,%s\n", tr->trade_id,
        date, (int)(sod / 3600), (int)(sod / 60 % 60), (int)(sod % 60),
        tr->symbol, buy ? "buy" : "sell",
        gm__carbon_format_price(tr->price, px), (long long)tr->quantity,
        gm__carbon_format_price(tr->amount, amt), buy ? tr->seller : tr->buyer,
        buy ? tr->buy_order_id : tr->sell_order_id,
        tr->block ? "block" : "listing");
    if (used >= cap) break;
  }
  Gm__Carbon__Statement *out = host->alloc(call, sizeof *out);
  gm__carbon__statement__init(out);
  out->csv = csv;
  out->rows = (int64_t)t.list->n_trades;
  *reply = &out->base;
  return GM_OK;
}

/* One account's totals: held in Redis, or settled in the ledger. */
typedef struct carbon__total {
  const char *who;
  int64_t cash, alw;
} carbon__total;

/* A growing array of totals in the call's arena. */
typedef struct carbon__totals {
  gm_call *call;
  carbon__total *t;
  size_t n, cap;
} carbon__totals;

static void carbon__totals_add(carbon__totals *s, const char *who, int64_t cash,
                               int64_t alw) {
  if (s->n == s->cap) {
    size_t ncap = s->cap * 2 + 64;
    carbon__total *t = host->alloc(s->call, ncap * sizeof *t);
    if (s->n) memcpy(t, s->t, s->n * sizeof *t);
    s->t = t, s->cap = ncap;
  }
  s->t[s->n++] = (carbon__total){who, cash, alw};
}

static int carbon__totals_cmp(const void *a, const void *b) {
  return strcmp(((const carbon__total *)a)->who,
                ((const carbon__total *)b)->who);
}

static int carbon__settled_row(void *arg, size_t ncols, const gm_param *c) {
  if (ncols < 3 || !c[0].s) return 0;
  carbon__totals_add(arg, c[0].s, c[1].i, c[2].i);
  return 0;
}

static void carbon__diff(gm_call *call, Gm__Carbon__ReconcileReply *out,
                         size_t *cap, const char *sym, const char *who,
                         Gm__Carbon__Asset asset, int64_t ledger,
                         int64_t live) {
  if (ledger == live) return;
  if (out->n_differences == *cap) {
    size_t ncap = *cap * 2 + 8;
    Gm__Carbon__Difference **n = host->alloc(call, ncap * sizeof *n);
    if (*cap) memcpy(n, out->differences, *cap * sizeof *n);
    out->differences = n;
    *cap = ncap;
  }
  Gm__Carbon__Difference *d = host->alloc(call, sizeof *d);
  gm__carbon__difference__init(d);
  d->symbol = (char *)sym;
  d->participant = (char *)who;
  d->asset = asset;
  d->ledger = ledger;
  d->live = live;
  out->differences[out->n_differences++] = d;
}

/* The outbox's length (when len is not NULL) and count of entries ever
 * added, from the {'N', ...} record of a read reply ('live' or 'outbox'). */
static void carbon__outbox_counts(const gm_value *v, int64_t *len,
                                  int64_t *added) {
  for (size_t i = 0; i < v->n; i++)
    if (carbon__tag(v, i) == 'N') {
      if (len) *len = carbon__i(&v->items[i], 1);
      *added = carbon__i(&v->items[i], 2);
    }
}

/*
 * Compares the ledger's totals per account of `sym` with Redis.  Redis is
 * read in runs of reconcile_page accounts, so no run blocks Redis for long
 * however many accounts there are.  The runs are no one snapshot, so the
 * outbox's count of entries ever added is taken with the first run and again
 * after the ledger query: entries appended in between count in unsettled
 * with those not settled at the start, and unsettled = 0 means Redis did not
 * change while it was read and the ledger had settled all of it.
 */
static gm_status carbon__reconcile_one(gm_call *call, const char *sym,
                                       Gm__Carbon__ReconcileReply *out,
                                       size_t *cap) {
  const char *pos = "0", *carry = "", *outbox_args[] = {"outbox"};
  const gm_value *v;
  carbon__totals live = {call, NULL, 0, 0}, led = {call, NULL, 0, 0};
  int64_t len0 = 0, added0 = 0, added1 = 0;
  gm_status st;
  /* Redis first: an entry settled between the reads then counts in
   * unsettled rather than hiding a difference. */
  for (long run = 0; !carbon__cursor_done(pos, carry); run++) {
    const char *args[] = {"live", carbon__num(call, carbon__reconcile_page),
                          pos, carry};
    int walked = 0;
    if (run == CARBON_RECONCILE_RUNS)
      return host->fail(call, GM_INTERNAL,
                        "%s's accounts did not fit in %d reads of %ld; check "
                        "the gmd log",
                        sym, CARBON_RECONCILE_RUNS, carbon__reconcile_page);
    if ((st = carbon__run(call, "read", sym, 4, args, &v)) != GM_OK) return st;
    for (size_t i = 0; i < v->n; i++) {
      const gm_value *r = &v->items[i];
      char tag = carbon__tag(v, i);
      if (tag == 'A')
        carbon__totals_add(&live, carbon__s(r, 1), carbon__i(r, 2),
                           carbon__i(r, 3));
      else if (tag == 'C')
        pos = carbon__s(r, 1), carry = carbon__s(r, 2), walked = 1;
    }
    if (!walked)
      return host->fail(call, GM_INTERNAL,
                        "the read script returned no position for %s's "
                        "accounts; check the gmd log",
                        sym);
    if (run == 0) carbon__outbox_counts(v, &len0, &added0);
  }
  st = host->ledger_query(
      call,
      "SELECT who, sum(c), sum(a) FROM ("
      " SELECT participant AS who, CASE asset WHEN 'c' THEN amount ELSE 0 END"
      " AS c, CASE asset WHEN 'a' THEN amount ELSE 0 END AS a"
      " FROM carbon_movements WHERE symbol = ?1"
      " UNION ALL SELECT buyer, -amount, quantity FROM carbon_trades"
      " WHERE symbol = ?1"
      " UNION ALL SELECT seller, amount, -quantity FROM carbon_trades"
      " WHERE symbol = ?1) GROUP BY who",
      (gm_param[]){GM_TEXT(sym)}, 1, carbon__settled_row, &led);
  if (st != GM_OK) return st;
  if ((st = carbon__run(call, "read", sym, 1, outbox_args, &v)) != GM_OK)
    return st;
  carbon__outbox_counts(v, NULL, &added1);
  out->unsettled += len0 + (added1 - added0);

  /* Both sorted by participant and merged.  A walk may meet an account
   * twice (SSCAN, when the set was resized between runs): once counts. */
  if (live.n) qsort(live.t, live.n, sizeof *live.t, carbon__totals_cmp);
  if (led.n) qsort(led.t, led.n, sizeof *led.t, carbon__totals_cmp);
  size_t i = 0, k = 0;
  while (i < live.n || k < led.n) {
    if (i > 0 && i < live.n && !strcmp(live.t[i].who, live.t[i - 1].who)) {
      i++;
      continue;
    }
    int c = i == live.n  ? 1
            : k == led.n ? -1
                         : strcmp(live.t[i].who, led.t[k].who);
    const char *who = c <= 0 ? live.t[i].who : led.t[k].who;
    int64_t lc = c <= 0 ? live.t[i].cash : 0, la = c <= 0 ? live.t[i].alw : 0;
    int64_t gc = c >= 0 ? led.t[k].cash : 0, ga = c >= 0 ? led.t[k].alw : 0;
    i += c <= 0;
    k += c >= 0;
    out->accounts++;
    carbon__diff(call, out, cap, sym, who, GM__CARBON__ASSET__ASSET_CASH, gc,
                 lc);
    carbon__diff(call, out, cap, sym, who, GM__CARBON__ASSET__ASSET_ALLOWANCE,
                 ga, la);
  }
  return GM_OK;
}

static gm_status carbon__reconcile(gm_call *call, const ProtobufCMessage *req,
                                   ProtobufCMessage **reply) {
  const Gm__Carbon__ReconcileRequest *in =
      (const Gm__Carbon__ReconcileRequest *)req;
  const gm_value *list = NULL;
  size_t cap = 0, nsym = 1;
  gm_status st;
  if (in->symbol[0]) {
    if ((st = carbon__need_symbol(call, in->symbol)) != GM_OK) return st;
  } else {
    if ((st = carbon__registry(call, &list)) != GM_OK) return st;
    nsym = list->n;
  }
  Gm__Carbon__ReconcileReply *out = host->alloc(call, sizeof *out);
  gm__carbon__reconcile_reply__init(out);
  for (size_t k = 0; k < nsym; k++) {
    const char *sym = list ? list->items[k].str : in->symbol;
    if (sym && (st = carbon__reconcile_one(call, sym, out, &cap)) != GM_OK)
      return st;
  }
  *reply = &out->base;
  return GM_OK;
}

/* ---- settlement -------------------------------------------------------- */

static const gm_migration carbon__migrations[] = {
    {1,
     "CREATE TABLE carbon_trades ("
     " trade_id TEXT PRIMARY KEY, symbol TEXT NOT NULL,"
     " buyer TEXT NOT NULL, seller TEXT NOT NULL,"
     " buy_order TEXT NOT NULL, sell_order TEXT NOT NULL,"
     " price INTEGER NOT NULL, quantity INTEGER NOT NULL,"
     " amount INTEGER NOT NULL, maker_side TEXT NOT NULL,"
     " block INTEGER NOT NULL, day INTEGER NOT NULL, time_ms INTEGER NOT NULL);"
     "CREATE INDEX carbon_trades_buyer ON carbon_trades (buyer, time_ms);"
     "CREATE INDEX carbon_trades_seller ON carbon_trades (seller, time_ms);"
     "CREATE INDEX carbon_trades_symbol ON carbon_trades (symbol, time_ms);"
     "CREATE TABLE carbon_movements ("
     " event TEXT PRIMARY KEY, symbol TEXT NOT NULL,"
     " participant TEXT NOT NULL, asset TEXT NOT NULL,"
     " amount INTEGER NOT NULL, reason TEXT NOT NULL,"
     " reference TEXT NOT NULL, time_ms INTEGER NOT NULL);"
     "CREATE INDEX carbon_movements_who ON carbon_movements (symbol,"
     " participant);"
     "CREATE TABLE carbon_orders ("
     " order_id TEXT PRIMARY KEY, symbol TEXT NOT NULL,"
     " participant TEXT NOT NULL, side TEXT NOT NULL,"
     " price INTEGER NOT NULL, quantity INTEGER NOT NULL,"
     " remaining INTEGER NOT NULL, filled INTEGER NOT NULL,"
     " state INTEGER NOT NULL, reason TEXT NOT NULL, tif INTEGER NOT NULL,"
     " created_ms INTEGER NOT NULL, expire_ms INTEGER NOT NULL,"
     " updated_ms INTEGER NOT NULL);"
     "CREATE TABLE carbon_closes ("
     " symbol TEXT NOT NULL, day TEXT NOT NULL, close INTEGER NOT NULL,"
     " volume INTEGER NOT NULL, turnover INTEGER NOT NULL,"
     " from_trades INTEGER NOT NULL, time_ms INTEGER NOT NULL,"
     " PRIMARY KEY (symbol, day));"
     "CREATE TABLE carbon_offers ("
     " offer_id TEXT PRIMARY KEY, symbol TEXT NOT NULL,"
     " offerer TEXT NOT NULL, counterparty TEXT NOT NULL, side TEXT NOT NULL,"
     " price INTEGER NOT NULL, quantity INTEGER NOT NULL,"
     " state INTEGER NOT NULL, trade_id TEXT NOT NULL,"
     " updated_ms INTEGER NOT NULL);"},
};

static int64_t carbon__f(const gm_outbox_entry *e, const char *name) {
  const char *v = gm_entry_field(e, name);
  return v ? strtoll(v, NULL, 10) : 0;
}

static const char *carbon__fs(const gm_outbox_entry *e, const char *name) {
  const char *v = gm_entry_field(e, name);
  return v ? v : "";
}

/* Runs on the settler thread inside its transaction, once per entry. */
static gm_status carbon__settle(gm_market *m, gm_ledger *tx,
                                const gm_outbox_entry *e) {
  /* The stream is "gm:{carbon:<SYM>}:outbox". */
  char sym[32], id[64], id2[64];
  static const char prefix[] = "gm:{carbon:";
  const char *s0 = e->stream + sizeof prefix - 1, *b = strchr(e->stream, '}');
  if (strncmp(e->stream, prefix, sizeof prefix - 1) != 0 || !b || b <= s0 ||
      (size_t)(b - s0) >= sizeof sym) {
    host->log(m, GM_LOG_ERROR, "outbox entry %s %s: unknown stream; skipped",
              e->stream, e->id);
    return GM_OK;
  }
  snprintf(sym, sizeof sym, "%.*s", (int)(b - s0), s0);
  int64_t t = carbon__f(e, "t");

  if (!strcmp(e->kind, "trade")) {
    char tid[64];
    snprintf(tid, sizeof tid, "%s:%s", sym, carbon__fs(e, "id"));
    snprintf(id, sizeof id, "%s:%s", sym, carbon__fs(e, "bo"));
    snprintf(id2, sizeof id2, "%s:%s", sym, carbon__fs(e, "so"));
    return host->ledger_exec(
        tx,
        "INSERT OR IGNORE INTO carbon_trades (trade_id, symbol, buyer, seller,"
        " buy_order, sell_order, price, quantity, amount, maker_side, block,"
        " day, time_ms) VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13)",
        (gm_param[]){
            GM_TEXT(tid), GM_TEXT(sym), GM_TEXT(carbon__fs(e, "buyer")),
            GM_TEXT(carbon__fs(e, "seller")), GM_TEXT(id), GM_TEXT(id2),
            GM_INT(carbon__f(e, "px")), GM_INT(carbon__f(e, "qty")),
            GM_INT(carbon__f(e, "amt")), GM_TEXT(carbon__fs(e, "maker")),
            GM_INT(carbon__f(e, "blk")), GM_INT(carbon__f(e, "day")),
            GM_INT(t)},
        13);
  }
  if (!strcmp(e->kind, "order")) {
    snprintf(id, sizeof id, "%s:%s", sym, carbon__fs(e, "id"));
    return host->ledger_exec(
        tx,
        "INSERT INTO carbon_orders (order_id, symbol, participant, side,"
        " price, quantity, remaining, filled, state, reason, tif, created_ms,"
        " expire_ms, updated_ms) VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,"
        "?12,0,?12) ON CONFLICT (order_id) DO UPDATE SET price = ?5,"
        " quantity = ?6, remaining = ?7, filled = ?8, state = ?9,"
        " reason = ?10, updated_ms = ?12",
        (gm_param[]){GM_TEXT(id), GM_TEXT(sym), GM_TEXT(carbon__fs(e, "who")),
                     GM_TEXT(carbon__fs(e, "side")), GM_INT(carbon__f(e, "px")),
                     GM_INT(carbon__f(e, "qty")), GM_INT(carbon__f(e, "left")),
                     GM_INT(carbon__f(e, "filled")), GM_INT(carbon__f(e, "st")),
                     GM_TEXT(carbon__fs(e, "why")), GM_INT(carbon__f(e, "tif")),
                     GM_INT(t)},
        12);
  }
  if (!strcmp(e->kind, "move")) {
    snprintf(id, sizeof id, "%s", e->id);
    char ev[160];
    snprintf(ev, sizeof ev, "%s/%s", e->stream, e->id);
    return host->ledger_exec(
        tx,
        "INSERT OR IGNORE INTO carbon_movements (event, symbol, participant,"
        " asset, amount, reason, reference, time_ms)"
        " VALUES (?1,?2,?3,?4,?5,?6,?7,?8)",
        (gm_param[]){GM_TEXT(ev), GM_TEXT(sym), GM_TEXT(carbon__fs(e, "who")),
                     GM_TEXT(carbon__fs(e, "asset")),
                     GM_INT(carbon__f(e, "amt")), GM_TEXT(carbon__fs(e, "why")),
                     GM_TEXT(carbon__fs(e, "ref")), GM_INT(t)},
        8);
  }
  if (!strcmp(e->kind, "close")) {
    char date[16];
    gm__carbon_format_date(carbon__f(e, "day"), date);
    return host->ledger_exec(
        tx,
        "INSERT OR REPLACE INTO carbon_closes (symbol, day, close, volume,"
        " turnover, from_trades, time_ms) VALUES (?1,?2,?3,?4,?5,?6,?7)",
        (gm_param[]){GM_TEXT(sym), GM_TEXT(date), GM_INT(carbon__f(e, "close")),
                     GM_INT(carbon__f(e, "vol")), GM_INT(carbon__f(e, "turn")),
                     GM_INT(carbon__f(e, "from")), GM_INT(t)},
        7);
  }
  if (!strcmp(e->kind, "offer")) {
    snprintf(id, sizeof id, "%s:%s", sym, carbon__fs(e, "id"));
    const char *trade = carbon__fs(e, "trade");
    snprintf(id2, sizeof id2, "%s%s%s", trade[0] ? sym : "",
             trade[0] ? ":" : "", trade);
    return host->ledger_exec(
        tx,
        "INSERT INTO carbon_offers (offer_id, symbol, offerer, counterparty,"
        " side, price, quantity, state, trade_id, updated_ms)"
        " VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10) ON CONFLICT (offer_id)"
        " DO UPDATE SET state = ?8, trade_id = ?9, updated_ms = ?10",
        (gm_param[]){
            GM_TEXT(id), GM_TEXT(sym), GM_TEXT(carbon__fs(e, "offerer")),
            GM_TEXT(carbon__fs(e, "cp")), GM_TEXT(carbon__fs(e, "side")),
            GM_INT(carbon__f(e, "px")), GM_INT(carbon__f(e, "qty")),
            GM_INT(carbon__f(e, "st")), GM_TEXT(id2), GM_INT(t)},
        10);
  }
  /* "instrument" entries are an audit trail in gm_settled only. */
  return GM_OK;
}

/* ---- plugin ------------------------------------------------------------ */

static long carbon__config_long(gm_market *m, const char *key, long def,
                                long min, long max) {
  const char *s = host->config(m, key, NULL);
  char *end;
  if (!s) return def;
  long v = strtol(s, &end, 10);
  if (*s == '\0' || *end != '\0' || v < min || v > max) {
    host->log(m, GM_LOG_WARN,
              "[market.carbon] %s = %s is not a number in %ld..%ld; using %ld",
              key, s, min, max, def);
    return def;
  }
  return v;
}

static gm_status carbon__init(gm_market *m, const gm_host_api *h) {
  static const struct {
    const char *name;
    const char *lua;
  } scripts[] = {{"place", gm_lua_place}, {"amend", gm_lua_amend},
                 {"block", gm_lua_block}, {"admin", gm_lua_admin},
                 {"read", gm_lua_read},   {"sweep", gm_lua_sweep}};
  gm_status st;

  host = h;
  carbon__max_fills = carbon__config_long(m, "max_fills", 64, 1, 1000);
  carbon__expire_batch = carbon__config_long(m, "expire_batch", 256, 1, 10000);
  carbon__mass_cancel_max =
      carbon__config_long(m, "mass_cancel_max", 1000, 1, 100000);
  carbon__reconcile_page =
      carbon__config_long(m, "reconcile_page", 1000, 1, 100000);
  carbon__max_steps =
      carbon__config_long(m, "max_steps", 64, 1, CARBON_MAX_STEPS_LIMIT);
  carbon__inflight_ms =
      carbon__config_long(m, "inflight_ms", 5000, 100, 3600000);
  carbon__kill_after_step =
      carbon__config_long(m, "test_kill_after_step", 0, 0, 1000);
  if (carbon__kill_after_step)
    host->log(m, GM_LOG_WARN,
              "[market.carbon] test_kill_after_step = %ld: gmd kills itself "
              "after step %ld of any order that takes more steps (failure "
              "injection for tests); remove it from the config",
              carbon__kill_after_step, carbon__kill_after_step);
  long sweep_ms = carbon__config_long(m, "sweep_ms", 1000, 10, 3600000);

  for (size_t i = 0; i < sizeof scripts / sizeof scripts[0]; i++) {
    size_t a = strlen(gm_lua_lib), b = strlen(scripts[i].lua);
    char *src = malloc(a + b + 2);
    if (!src) return GM_RESOURCE_EXHAUSTED;
    memcpy(src, gm_lua_lib, a);
    src[a] = '\n';
    memcpy(src + a + 1, scripts[i].lua, b + 1);
    carbon__sources[i] = src;
    if ((st = host->script_register(m, scripts[i].name, src)) != GM_OK)
      return st;
  }
  if ((st = host->script_register(m, "registry", gm_lua_registry)) != GM_OK)
    return st;
  st = host->ledger_migrate(
      m, carbon__migrations,
      sizeof carbon__migrations / sizeof carbon__migrations[0]);
  if (st != GM_OK) return st;
  if ((st = host->settle_register(m, carbon__settle)) != GM_OK) return st;
  st = host->timer_add(m, "sweep", sweep_ms, carbon__timer, NULL);
  if (st != GM_OK)
    host->log(m, GM_LOG_WARN,
              "no timer service: DAY/GTD expiry and the daily close run only "
              "through records.close");
  return GM_OK;
}

static void carbon__shutdown(gm_market *m) {
  (void)m;
  for (size_t i = 0; i < sizeof carbon__sources / sizeof carbon__sources[0];
       i++) {
    free(carbon__sources[i]);
    carbon__sources[i] = NULL;
  }
}

#define CARBON_MUT GM_METHOD_MUTATING
#define CARBON_TRADER "buyer,seller"

static const gm_method carbon__methods[] = {
    {"instrument.create", &gm__carbon__create_instrument_request__descriptor,
     &gm__carbon__instrument__descriptor, carbon__instrument_create, CARBON_MUT,
     "admin", "create an instrument (defaults: tick 1 fen, lot 1 t, +/-10%)"},
    {"instrument.list", &gm__carbon__list_instruments_request__descriptor,
     &gm__carbon__instrument_list__descriptor, carbon__instrument_list, 0, NULL,
     "every instrument with its rules"},
    {"instrument.get", &gm__carbon__instrument_request__descriptor,
     &gm__carbon__instrument__descriptor, carbon__instrument_get, 0, NULL,
     "one instrument's rules and state"},
    {"instrument.halt", &gm__carbon__instrument_request__descriptor,
     &gm__carbon__instrument__descriptor, carbon__halt, CARBON_MUT, "admin",
     "stop trading an instrument (cancels stay possible)"},
    {"instrument.resume", &gm__carbon__instrument_request__descriptor,
     &gm__carbon__instrument__descriptor, carbon__resume, CARBON_MUT, "admin",
     "resume trading a halted instrument"},
    {"account.deposit", &gm__carbon__move_request__descriptor,
     &gm__carbon__account__descriptor, carbon__deposit, CARBON_MUT, "admin",
     "credit cash (fen) or allowances (t) to a participant's account"},
    {"account.withdraw", &gm__carbon__move_request__descriptor,
     &gm__carbon__account__descriptor, carbon__withdraw, CARBON_MUT, "admin",
     "debit available cash or allowances from a participant's account"},
    {"account.get", &gm__carbon__account_request__descriptor,
     &gm__carbon__account__descriptor, carbon__account_get, 0, NULL,
     "your cash and holdings in one instrument"},
    {"account.configure", &gm__carbon__configure_account_request__descriptor,
     &gm__carbon__account__descriptor, carbon__account_configure, CARBON_MUT,
     CARBON_TRADER, "set your default self-trade prevention mode"},
    {"order.place", &gm__carbon__place_request__descriptor,
     &gm__carbon__place_reply__descriptor, carbon__place, CARBON_MUT,
     CARBON_TRADER, "place a limit or market order"},
    {"order.cancel", &gm__carbon__order_request__descriptor,
     &gm__carbon__order__descriptor, carbon__cancel, CARBON_MUT, CARBON_TRADER,
     "cancel one of your open orders"},
    {"order.replace", &gm__carbon__replace_request__descriptor,
     &gm__carbon__place_reply__descriptor, carbon__replace, CARBON_MUT,
     CARBON_TRADER,
     "change price or quantity (a decrease keeps priority; else a new order)"},
    {"order.mass_cancel", &gm__carbon__mass_cancel_request__descriptor,
     &gm__carbon__mass_cancel_reply__descriptor, carbon__mass_cancel,
     CARBON_MUT, CARBON_TRADER, "cancel your open orders in one instrument"},
    {"order.list", &gm__carbon__list_orders_request__descriptor,
     &gm__carbon__order_list__descriptor, carbon__order_list, 0, NULL,
     "your open orders"},
    {"order.get", &gm__carbon__order_request__descriptor,
     &gm__carbon__order__descriptor, carbon__order_get, 0, NULL,
     "one of your orders, open or settled"},
    {"block.offer", &gm__carbon__offer_request__descriptor,
     &gm__carbon__block_offer__descriptor, carbon__block_offer, CARBON_MUT,
     CARBON_TRADER, "offer a block agreement trade to a counterparty"},
    {"block.accept", &gm__carbon__offer_decision__descriptor,
     &gm__carbon__block_offer__descriptor, carbon__block_accept, CARBON_MUT,
     CARBON_TRADER, "accept a block offer made to you: it trades"},
    {"block.reject", &gm__carbon__offer_decision__descriptor,
     &gm__carbon__block_offer__descriptor, carbon__block_reject, CARBON_MUT,
     CARBON_TRADER, "reject an offer made to you, or withdraw your own"},
    {"block.list", &gm__carbon__list_offers_request__descriptor,
     &gm__carbon__offer_list__descriptor, carbon__block_list, 0, NULL,
     "open block offers to or from you (admin: all), paged"},
    {"market.depth", &gm__carbon__depth_request__descriptor,
     &gm__carbon__depth__descriptor, carbon__depth, 0, NULL,
     "the best price levels per side (default 5)"},
    {"market.stats", &gm__carbon__stats_request__descriptor,
     &gm__carbon__stats__descriptor, carbon__stats, 0, NULL,
     "last, open, high, low, volume, close, reference price"},
    {"records.trades", &gm__carbon__trades_request__descriptor,
     &gm__carbon__trade_list__descriptor, carbon__trades_list, 0, NULL,
     "your settled trades"},
    {"records.statement", &gm__carbon__statement_request__descriptor,
     &gm__carbon__statement__descriptor, carbon__statement, 0, NULL,
     "your settled trades between two dates as CSV"},
    /* Mutating: it expires orders and closes days.  It runs its scripts
     * several times in one call; each run is an idempotency step of its own,
     * and the next run depends only on the replies, so a retry replays. */
    {"records.close", &gm__carbon__close_request__descriptor,
     &gm__carbon__close_reply__descriptor, carbon__close, CARBON_MUT, "admin",
     "expire due orders and close the day when its close has passed"},
    {"records.reconcile", &gm__carbon__reconcile_request__descriptor,
     &gm__carbon__reconcile_reply__descriptor, carbon__reconcile, 0, "admin",
     "compare settled ledger totals with live Redis holdings"},
};

/* What the feed carries: "carbon.trade", "carbon.book", "carbon.order",
 * "carbon.offer". */
static const ProtobufCMessageDescriptor *const carbon__events[] = {
    &gm__carbon__trade_event__descriptor,
    &gm__carbon__book_event__descriptor,
    &gm__carbon__order_event__descriptor,
    &gm__carbon__offer_event__descriptor,
};

static const gm_plugin carbon__plugin = {
    .size = sizeof(gm_plugin),
    .name = "carbon",
    .version = "1.0.0",
    .description =
        "carbon allowances (CEA) and offsets (CCER): order book, "
        "block trades, settlement",
    .methods = carbon__methods,
    .n_methods = sizeof carbon__methods / sizeof carbon__methods[0],
    .init = carbon__init,
    .shutdown = carbon__shutdown,
    .events = carbon__events,
    .n_events = sizeof carbon__events / sizeof carbon__events[0],
};

GM_PLUGIN_DEFINE(carbon__plugin)
