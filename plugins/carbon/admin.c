/*
 * Instruments and accounts: create, list, halt and resume instruments;
 * deposit, withdraw, read and configure accounts.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "carbon.h"

gm_status carbon__registry(gm_call *call, const gm_value **list) {
  const char *args[] = {"list"};
  return carbon__run(call, carbon__registry_list, CARBON_REGISTRY_TAG, 1, args,
                     list);
}

gm_status carbon__instrument_create(gm_call *call, const ProtobufCMessage *req,
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
  char shown[96];
  if (strcmp(kind, "CEA") && strcmp(kind, "CCER"))
    return host->fail(call, GM_INVALID_ARGUMENT,
                      "kind \"%s\" is unknown; use CEA or CCER",
                      gm__carbon_shown(kind, shown));
  /* Prices are yuan and fen in every rule, message and record. */
  const char *cur = d->currency[0] ? d->currency : "CNY";
  if (strcmp(cur, "CNY"))
    return host->fail(call, GM_INVALID_ARGUMENT,
                      "currency \"%s\": the carbon market trades in CNY only "
                      "(prices in yuan and fen); give CNY or leave it empty",
                      gm__carbon_shown(cur, shown));
  /* A halt has a reason and is its own admin act (instrument.halt). */
  if (d->halted || d->halt_reason[0])
    return host->fail(call, GM_INVALID_ARGUMENT,
                      "halted and halt_reason are not taken at create; create "
                      "the instrument, then halt it with instrument.halt "
                      "(gm carbon halt SYMBOL --reason TEXT)");
  int64_t tick = d->tick ? d->tick : 1, lot = d->lot ? d->lot : 1;
  int64_t bmin = d->block_threshold ? d->block_threshold : 100000;
  int32_t bandbp = d->band_bp ? d->band_bp : 1000;
  int32_t bbandbp = d->block_band_bp ? d->block_band_bp : 3000;
  int32_t maxf = d->max_fills ? d->max_fills : (int32_t)carbon__max_fills;
  char a[32], b[32], c[32];
  if (tick < 1 || tick > 10000 || lot < 1 || lot > 100000)
    return host->fail(call, GM_INVALID_ARGUMENT,
                      "the tick must be 0.01..100.00 yuan and the lot "
                      "1..100000 t (given: tick %s yuan, lot %lld t)",
                      gm__carbon_format_price(tick, a), (long long)lot);
  if (d->reference_price <= 0)
    return host->fail(
        call, GM_INVALID_ARGUMENT,
        "reference_price (the previous close, the centre of "
        "the first day's band) is required: give it in fen, "
        "8550 for 85.50 yuan (gm carbon create SYMBOL "
        "--reference 85.50)%s",
        d->reference_price ? "; a negative price is not one" : "");
  if (d->reference_price < tick || d->reference_price > GM_CARBON_MAX_PRICE ||
      d->reference_price % tick)
    return host->fail(call, GM_INVALID_ARGUMENT,
                      "the reference price (the previous close) %s yuan must "
                      "be a multiple of the tick of %s yuan, up to %s yuan",
                      gm__carbon_format_price(d->reference_price, a),
                      gm__carbon_format_price(tick, b),
                      gm__carbon_format_price(GM_CARBON_MAX_PRICE, c));
  if (bandbp < 1 || bandbp > 9999 || bbandbp < 1 || bbandbp > 9999)
    return host->fail(call, GM_INVALID_ARGUMENT,
                      "the price band and the block price band must be "
                      "0.01%%..99.99%% (1..9999 basis points)");
  if (bmin < lot || bmin > GM_CARBON_MAX_QTY || bmin % lot)
    return host->fail(call, GM_INVALID_ARGUMENT,
                      "the block threshold must be a multiple of the lot, up "
                      "to %lld t (given: %lld t, lot %lld t)",
                      (long long)GM_CARBON_MAX_QTY, (long long)bmin,
                      (long long)lot);
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
                        gm__carbon_shown(d->holidays[i], shown));
    if (snprintf(hol + used, sizeof hol - used, "%lld,", (long long)day) >=
        (int)(sizeof hol - used))
      return host->fail(call, GM_INVALID_ARGUMENT,
                        "too many holidays (at most about 100 per instrument)");
  }
  if ((st = carbon__need_text(call, "name", d->name, 128)) != GM_OK) return st;

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

gm_status carbon__instrument_get(gm_call *call, const ProtobufCMessage *req,
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

gm_status carbon__instrument_list(gm_call *call, const ProtobufCMessage *req,
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
  /* The reason is repeated in every rejection while the instrument is
     halted: it reaches every trader's terminal. */
  gm_status st = carbon__need_text(call, "reason", in->reason, 256);
  if (st == GM_OK) st = carbon__need_symbol(call, in->symbol);
  if (st == GM_OK) st = carbon__run(call, "admin", in->symbol, 2, args, &v);
  if (st != GM_OK) return st;
  *reply = &carbon__instrument(call, &v->items[0])->base;
  return GM_OK;
}

gm_status carbon__halt(gm_call *call, const ProtobufCMessage *req,
                       ProtobufCMessage **reply) {
  return carbon__instrument_halt(call, "halt", req, reply);
}

gm_status carbon__resume(gm_call *call, const ProtobufCMessage *req,
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
  if ((st = strcmp(op, "deposit")
                ? carbon__need_holder(call, "participant", in->participant)
                : carbon__need_participant(call, "participant",
                                           in->participant)) != GM_OK)
    return st;
  if (in->asset != GM__CARBON__ASSET__ASSET_CASH &&
      in->asset != GM__CARBON__ASSET__ASSET_ALLOWANCE)
    return host->fail(call, GM_INVALID_ARGUMENT,
                      "asset must be ASSET_CASH (fen) or ASSET_ALLOWANCE (t)");
  if (in->amount <= 0)
    return host->fail(call, GM_INVALID_ARGUMENT,
                      "amount must be positive (%s takes it out, deposit "
                      "puts it in)",
                      "withdraw");
  if ((st = carbon__need_text(call, "reference", in->reference, 256)) != GM_OK)
    return st;
  const char *args[] = {op, in->participant,
                        in->asset == GM__CARBON__ASSET__ASSET_CASH ? "c" : "a",
                        carbon__num(call, in->amount), in->reference};
  if ((st = carbon__run(call, "admin", in->symbol, 5, args, &v)) != GM_OK)
    return st;
  *reply = &carbon__account(call, in->symbol, &v->items[0])->base;
  return GM_OK;
}

gm_status carbon__deposit(gm_call *call, const ProtobufCMessage *req,
                          ProtobufCMessage **reply) {
  return carbon__move(call, "deposit", req, reply);
}

gm_status carbon__withdraw(gm_call *call, const ProtobufCMessage *req,
                           ProtobufCMessage **reply) {
  return carbon__move(call, "withdraw", req, reply);
}

gm_status carbon__account_get(gm_call *call, const ProtobufCMessage *req,
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
    if ((st = carbon__need_holder(call, "participant", in->participant)) !=
        GM_OK)
      return st;
    who = in->participant;
  }
  const char *args[] = {"acct", who};
  if ((st = carbon__run(call, "read", in->symbol, 2, args, &v)) != GM_OK)
    return st;
  *reply = &carbon__account(call, in->symbol, &v->items[0])->base;
  return GM_OK;
}

gm_status carbon__account_configure(gm_call *call, const ProtobufCMessage *req,
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
