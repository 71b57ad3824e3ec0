/*
 * Orders: place (in steps past the per-step fill bound), replace, cancel,
 * mass cancel, get and list.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "carbon.h"

/* Buyers buy, sellers sell; a participant who does both holds both roles. */
gm_status carbon__side_role(gm_call *call, Gm__Carbon__Side side) {
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
gm_status carbon__place_run(gm_call *call, const char *sym, size_t nargs,
                            const char *const *args,
                            Gm__Carbon__PlaceReply **reply) {
  Gm__Carbon__PlaceReply *out = host->alloc(call, sizeof *out);
  gm__carbon__place_reply__init(out);
  const char *cont[3] = {"continue", NULL,
                         carbon__num(call, carbon__inflight_ms)};
  gm_status st;

  for (long step = 1;; step++) {
    const gm_value *v;
    const char *next = NULL;
    int unchanged = 0;
    /* max_steps bounds matching; a FOK order past max_fills may take as
       many steps again to execute or give back what it holds. */
    if (step > 3 * CARBON_MAX_STEPS_LIMIT + 3)
      return host->fail(call, GM_INTERNAL,
                        "order %s:%s is still matching after %d steps (the "
                        "place script should end it at max_steps); check the "
                        "gmd log",
                        sym, cont[1], 3 * CARBON_MAX_STEPS_LIMIT + 3);
    if ((st = carbon__run(call, "place", sym, nargs, args, &v)) != GM_OK)
      return st;
#ifdef GM_FAILURE_INJECTION
    /* Test builds only: the broker dies between two steps of an order. */
    if (step == carbon__kill_after_step && *host->idempotency_key(call))
      raise(SIGKILL);
#endif
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
      else if (tag == 'U')
        unchanged = 1;
      else if (tag == 'M')
        next = carbon__s(&v->items[i], 1);
    }
    if (!out->order)
      return host->fail(call, GM_INTERNAL,
                        "the place script returned no order; check the gmd "
                        "log");
    /* A replay, or a replace that changed nothing, tells the owner's
       feed nothing new. */
    if (!out->duplicate && !unchanged)
      carbon__publish(call, sym, v, out->order->side);
    if (!next || out->duplicate) break;
    cont[1] = next;
    args = cont;
    nargs = 3;
  }
  *reply = out;
  return GM_OK;
}

gm_status carbon__place(gm_call *call, const ProtobufCMessage *req,
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
  if (!market && (in->price <= 0 || in->price > GM_CARBON_MAX_PRICE)) {
    char px[32], hi[32];
    return host->fail(call, GM_INVALID_ARGUMENT,
                      "price %s yuan must be 0.01..%s yuan (a market order "
                      "needs no price)",
                      gm__carbon_format_price(in->price, px),
                      gm__carbon_format_price(GM_CARBON_MAX_PRICE, hi));
  }
  /* A field the order would not use is refused, not dropped: a price on
     a market order read as a cap, or an expiry on a GTC order, would let
     the order trade or live otherwise than its sender meant. */
  if (market && in->price) {
    char px[32];
    return host->fail(call, GM_INVALID_ARGUMENT,
                      "a market order takes no price (%s yuan given): it "
                      "trades at the best prices within today's band; send "
                      "price 0, or a limit order (TYPE_LIMIT) to cap the "
                      "price",
                      gm__carbon_format_price(in->price, px));
  }
  if (market && (in->tif == GM__CARBON__TIME_IN_FORCE__TIF_DAY ||
                 in->tif == GM__CARBON__TIME_IN_FORCE__TIF_GTD))
    return host->fail(
        call, GM_INVALID_ARGUMENT,
        "a market order never rests, so %s does not apply: "
        "leave tif unset (or TIF_IOC), or TIF_FOK to fill in "
        "full or not at all",
        in->tif == GM__CARBON__TIME_IN_FORCE__TIF_DAY ? "TIF_DAY" : "TIF_GTD");
  if (in->expire_ms && in->tif != GM__CARBON__TIME_IN_FORCE__TIF_GTD)
    return host->fail(call, GM_INVALID_ARGUMENT,
                      "expire_ms is only for GTD orders: set tif=TIF_GTD to "
                      "expire at that time, or leave expire_ms unset (a DAY "
                      "order expires at the day's close by itself)");
  if (in->post_only &&
      (market || in->tif == GM__CARBON__TIME_IN_FORCE__TIF_IOC ||
       in->tif == GM__CARBON__TIME_IN_FORCE__TIF_FOK))
    return host->fail(call, GM_INVALID_ARGUMENT,
                      "post_only (gm: --post-only) applies to resting limit "
                      "orders; drop it for market, IOC and FOK orders");
  if (in->tif == GM__CARBON__TIME_IN_FORCE__TIF_GTD && in->expire_ms <= 0)
    return host->fail(call, GM_INVALID_ARGUMENT,
                      "a GTD order (tif TIF_GTD) needs its expiry: set "
                      "expire_ms to the time it expires, in ms since "
                      "1970-01-01 UTC (gm: --gtd DATE), or choose another "
                      "tif (TIF_DAY expires at the day's close)");
  /* A past expiry is the place script's to refuse, after its duplicate
     lookup: a retry of an order placed before its expiry passed must get
     its first reply (or duplicate = true), not a refusal. */
  int64_t now = host->now_ms(host->market(call));
  /* Scripts count in doubles: an expiry past 2^53 would not round-trip. A
     year is as long as any order may wait. */
  if (in->expire_ms > now + CARBON_MAX_GTD_MS)
    return host->fail(call, GM_INVALID_ARGUMENT,
                      "expire_ms is more than 366 days ahead; a GTD order "
                      "lives at most a year (use GTC for longer)");
  if ((st = carbon__need_text(call, "client_order_id", in->client_order_id,
                              64)) != GM_OK)
    return st;

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
                        carbon__num(call, carbon__max_steps),
                        carbon__num(call, carbon__inflight_ms)};
  Gm__Carbon__PlaceReply *out;
  if ((st = carbon__place_run(call, in->symbol, 12, args, &out)) != GM_OK)
    return st;
  /* A FOK order past max_fills is found short only after steps that held
     resting orders (and gave them back): it ended with nothing done, which
     is a refusal, as when the first step finds it short.  Decided from the
     replies only, so a retry answers the same. */
  if (out->order->tif == GM__CARBON__TIME_IN_FORCE__TIF_FOK &&
      out->order->state == GM__CARBON__ORDER_STATE__STATE_CANCELLED &&
      out->order->filled == 0 &&
      !strncmp(out->order->reason, CARBON_FOK_SHORT, strlen(CARBON_FOK_SHORT)))
    return host->fail(call, GM_FAILED_PRECONDITION, "%s", out->order->reason);
  *reply = &out->base;
  return GM_OK;
}

gm_status carbon__replace(gm_call *call, const ProtobufCMessage *req,
                          ProtobufCMessage **reply) {
  const Gm__Carbon__ReplaceRequest *in =
      (const Gm__Carbon__ReplaceRequest *)req;
  const char *sym = NULL, *id = NULL;
  gm_status st;
  if ((st = carbon__split_id(call, in->order_id, &sym, &id)) != GM_OK)
    return st;
  if (in->price < 0 || in->price > GM_CARBON_MAX_PRICE || in->quantity < 0 ||
      in->quantity > GM_CARBON_MAX_QTY ||
      (in->price == 0 && in->quantity == 0)) {
    char px[32], hi[32];
    return host->fail(call, GM_INVALID_ARGUMENT,
                      "give a new price (0.01..%s yuan) and/or a new total "
                      "quantity (1..%lld t), 0 to keep it; given price %s "
                      "yuan, quantity %lld t",
                      gm__carbon_format_price(GM_CARBON_MAX_PRICE, hi),
                      (long long)GM_CARBON_MAX_QTY,
                      gm__carbon_format_price(in->price, px),
                      (long long)in->quantity);
  }
  const char *args[] = {"replace",
                        id,
                        carbon__num(call, in->price),
                        carbon__num(call, in->quantity),
                        carbon__num(call, carbon__max_steps),
                        carbon__num(call, carbon__inflight_ms)};
  Gm__Carbon__PlaceReply *out;
  if ((st = carbon__place_run(call, sym, 6, args, &out)) != GM_OK) return st;
  *reply = &out->base;
  return GM_OK;
}

gm_status carbon__cancel(gm_call *call, const ProtobufCMessage *req,
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
gm_status carbon__mass_cancel(gm_call *call, const ProtobufCMessage *req,
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
                        in->symbol,
                        side[0] == 'b'   ? "SIDE_BUY"
                        : side[0] == 's' ? "SIDE_SELL"
                                         : "both sides");
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
          carbon__id(call, in->symbol, carbon__s(&v->items[i], 1));
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

gm_status carbon__order_get(gm_call *call, const ProtobufCMessage *req,
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
  /* 'U': an id the instrument issued that Redis no longer has. */
  int issued = v->n > 0 && carbon__tag(v, 0) == 'U';
  int from_ledger = v->n == 0 || issued;
  if (!from_ledger) {
    /* Resting, in flight, or ended within CARBON_ENDED_KEEP_MS. */
    o = carbon__order(call, sym, &v->items[0]);
  } else {
    /* Ended longer ago: its final state is in the ledger once settled. */
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
    if (!o->participant[0] && issued) /* no row: not settled yet */
      return host->fail(call, GM_UNAVAILABLE,
                        "order %s ended over %lld minutes ago and settlement "
                        "has not recorded it yet (the settler is behind: see "
                        "docs/operations.md); retry later",
                        in->order_id,
                        (long long)(CARBON_ENDED_KEEP_MS / 60000));
  }
  /* An id that names no order and another's order get one answer, word
     for word, so a caller cannot tell which (an existence oracle). */
  int admin = host->has_role(call, "admin");
  if (!o->participant[0] && admin) /* an admin may see any: no oracle */
    return host->fail(call, GM_NOT_FOUND,
                      "no order %s: %s never issued that number (check the "
                      "id: gm carbon orders lists open ones)",
                      in->order_id, sym);
  if (!o->participant[0] ||
      (strcmp(o->participant, host->participant(call)) && !admin))
    return host->fail(call, GM_NOT_FOUND, "no order %s of yours", in->order_id);
  /* Redis no longer has it, so it ended over CARBON_ENDED_KEEP_MS ago:
     a row that still says open is one the settler has not caught up
     with.  Say so rather than show a state that is over. */
  if (from_ledger && (o->state == GM__CARBON__ORDER_STATE__STATE_OPEN ||
                      o->state == GM__CARBON__ORDER_STATE__STATE_PARTIAL))
    return host->fail(call, GM_UNAVAILABLE,
                      "order %s ended over %lld minutes ago and settlement "
                      "has not recorded its final state yet (the settler is "
                      "behind: see docs/operations.md); retry later",
                      in->order_id, (long long)(CARBON_ENDED_KEEP_MS / 60000));
  *reply = &o->base;
  return GM_OK;
}

static void *carbon__order_item(gm_call *call, const char *sym,
                                const gm_value *r) {
  return carbon__order(call, sym, r);
}

/* One page of the caller's open orders (carbon__walk_page). */
gm_status carbon__order_list(gm_call *call, const ProtobufCMessage *req,
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
