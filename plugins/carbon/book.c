/*
 * Market data: depth (best levels) and the day's statistics.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "carbon.h"

gm_status carbon__depth(gm_call *call, const ProtobufCMessage *req,
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
    l->price = carbon__i(r, CARBON_LEVEL_px);
    l->quantity = carbon__i(r, CARBON_LEVEL_q);
    if (carbon__s(r, CARBON_LEVEL_side)[0] == 'b')
      out->bids[out->n_bids++] = l;
    else
      out->asks[out->n_asks++] = l;
  }
  *reply = &out->base;
  return GM_OK;
}

gm_status carbon__stats(gm_call *call, const ProtobufCMessage *req,
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
  out->day = (char *)carbon__s(r, CARBON_STATS_day);
  out->last = carbon__i(r, CARBON_STATS_last);
  out->open = carbon__i(r, CARBON_STATS_open);
  out->high = carbon__i(r, CARBON_STATS_high);
  out->low = carbon__i(r, CARBON_STATS_low);
  out->volume = carbon__i(r, CARBON_STATS_vol);
  out->turnover = carbon__i(r, CARBON_STATS_turn);
  out->trades = carbon__i(r, CARBON_STATS_ntr);
  out->block_volume = carbon__i(r, CARBON_STATS_bvol);
  out->reference_price = carbon__i(r, CARBON_STATS_ref);
  out->close = carbon__i(r, CARBON_STATS_close);
  /* Half up, as the close itself is computed; in 128 bits, so that a
     damaged total cannot overflow (a real one is far below). */
  if (out->volume > 0 && out->turnover >= 0)
    out->vwap = (int64_t)(((__int128)2 * out->turnover + out->volume) /
                          ((__int128)2 * out->volume));
  *reply = &out->base;
  return GM_OK;
}
