/*
 * Block trades: offers made to a named counterparty, accepted, rejected,
 * withdrawn or expired, and listed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "carbon.h"

Gm__Carbon__BlockOffer *carbon__offer(gm_call *call, const char *sym,
                                      const gm_value *r) {
  Gm__Carbon__BlockOffer *b = host->alloc(call, sizeof *b);
  gm__carbon__block_offer__init(b);
  b->id = carbon__id(call, sym, carbon__s(r, CARBON_OFFER_id));
  b->symbol = (char *)sym;
  b->offerer = (char *)carbon__s(r, CARBON_OFFER_of);
  b->counterparty = (char *)carbon__s(r, CARBON_OFFER_cp);
  b->side = carbon__side_of(carbon__s(r, CARBON_OFFER_side));
  b->price = carbon__i(r, CARBON_OFFER_px);
  b->quantity = carbon__i(r, CARBON_OFFER_q);
  b->state = (Gm__Carbon__OfferState)carbon__i(r, CARBON_OFFER_st);
  b->trade_id = carbon__s(r, CARBON_OFFER_tid)[0]
                    ? carbon__id(call, sym, carbon__s(r, CARBON_OFFER_tid))
                    : "";
  b->created_ms = carbon__i(r, CARBON_OFFER_t);
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

gm_status carbon__block_offer(gm_call *call, const ProtobufCMessage *req,
                              ProtobufCMessage **reply) {
  const Gm__Carbon__OfferRequest *in = (const Gm__Carbon__OfferRequest *)req;
  const gm_value *v;
  gm_status st;
  if ((st = carbon__need_symbol(call, in->symbol)) != GM_OK) return st;
  if ((st = carbon__side_role(call, in->side)) != GM_OK) return st;
  if ((st = carbon__need_participant(call, "counterparty", in->counterparty)) !=
      GM_OK)
    return st;
  if (!strcmp(in->counterparty, host->participant(call)))
    return host->fail(call, GM_INVALID_ARGUMENT,
                      "counterparty \"%s\" must be another participant's id",
                      in->counterparty);
  /* The counterparty takes the other side, so holds its role: an offer to
     an id nobody registered (with CURVE), or to one that may not trade
     that side, could never be accepted and would hold the offerer's cash
     or allowances until the block session ends.  (In development mode an
     unregistered id holds every role, as its calls do.)  A registry that
     cannot be read (-1) lets the offer go on: acceptance checks again. */
  if (GM_HOST_HAS(host, participant_has_role)) {
    const char *need =
        in->side == GM__CARBON__SIDE__SIDE_SELL ? "buyer" : "seller";
    if (host->participant_has_role(call, in->counterparty, need) == 0)
      return host->fail(call, GM_FAILED_PRECONDITION,
                        "counterparty \"%s\" cannot accept: no participant "
                        "of that id holds the %s role; check the id, or ask "
                        "an admin to register it with that role",
                        in->counterparty, need);
  }
  if (in->price <= 0 || in->price > GM_CARBON_MAX_PRICE) {
    char px[32], hi[32];
    return host->fail(call, GM_INVALID_ARGUMENT,
                      "price %s yuan must be 0.01..%s yuan",
                      gm__carbon_format_price(in->price, px),
                      gm__carbon_format_price(GM_CARBON_MAX_PRICE, hi));
  }
  if (in->quantity <= 0 || in->quantity > GM_CARBON_MAX_QTY)
    return host->fail(call, GM_INVALID_ARGUMENT,
                      "quantity %lld t must be 1..%lld t",
                      (long long)in->quantity, (long long)GM_CARBON_MAX_QTY);
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
  const char *args[] = {op, id, in->counterparty_only ? "1" : "0"};
  if ((st = carbon__run(call, "block", sym, 3, args, &v)) != GM_OK) return st;
  return carbon__offer_reply(call, sym, v, reply);
}

gm_status carbon__block_accept(gm_call *call, const ProtobufCMessage *req,
                               ProtobufCMessage **reply) {
  return carbon__block_decide(call, "accept", req, reply);
}

gm_status carbon__block_reject(gm_call *call, const ProtobufCMessage *req,
                               ProtobufCMessage **reply) {
  return carbon__block_decide(call, "reject", req, reply);
}

gm_status carbon__block_withdraw(gm_call *call, const ProtobufCMessage *req,
                                 ProtobufCMessage **reply) {
  return carbon__block_decide(call, "withdraw", req, reply);
}

static void *carbon__offer_item(gm_call *call, const char *sym,
                                const gm_value *r) {
  return carbon__offer(call, sym, r);
}

/* One page of the open offers to or from the caller, or of every open offer
 * for an admin (carbon__walk_page). */
gm_status carbon__block_list(gm_call *call, const ProtobufCMessage *req,
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
