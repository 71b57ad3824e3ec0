/*
 * The end of the day: expiry of DAY/GTD orders and block offers, the
 * daily close (VWAP), and finishing orders a stopped broker left in flight;
 * run by the instrument's deadlines (and records.close), not by a timer.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "carbon.h"

/* One DayClose from a {'C', ...} record of the close script. */
static Gm__Carbon__DayClose *carbon__day_close(gm_call *call, const char *sym,
                                               const gm_value *r,
                                               int64_t expired) {
  Gm__Carbon__DayClose *d = host->alloc(call, sizeof *d);
  gm__carbon__day_close__init(d);
  d->symbol = (char *)sym;
  d->day = (char *)carbon__s(r, CARBON_CLOSE_day);
  d->close = carbon__i(r, CARBON_CLOSE_px);
  d->volume = carbon__i(r, CARBON_CLOSE_vol);
  d->from_trades = carbon__i(r, CARBON_CLOSE_from) != 0;
  d->already = carbon__i(r, CARBON_CLOSE_old) != 0;
  d->expired = expired;
  return d;
}

/*
 * Expires what is due and, with `close`, closes the days of instrument `sym`
 * whose close has passed, oldest first: before each day's close the orders
 * and offers due by that close are expired, and each day gets its own close
 * (sweep.lua).  At most CARBON_CLOSE_DAYS days per call (days missed while
 * no broker ran; the next call carries on).  Both steps are idempotent, so
 * this may run any number of times (the day deadline, admin).  Sets
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
      } else if (carbon__tag(v, 0) == 'X') { /* a FOK executing: later */
        close = 0;
      } else if (carbon__tag(v, 0) == 'W') { /* due expiries first */
        upto = carbon__s(&v->items[0], 2);
      } else {
        const gm_value *r = &v->items[0];
        int already = carbon__i(r, CARBON_CLOSE_old) != 0;
        if (!already || *ndc == 0)
          dc[(*ndc)++] = carbon__day_close(call, sym, r, already ? 0 : expired);
        if (!already) expired = 0;
        /* A later day is due too: close it next, unless this call did its
         * share. */
        close = !already && carbon__i(r, CARBON_CLOSE_more) != 0 &&
                *ndc < CARBON_CLOSE_DAYS;
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
        /* A call expires at most its batch: a larger count is damage. */
        int64_t n = carbon__i(&v->items[i], 1);
        expired += n < 0                      ? 0
                   : n > carbon__expire_batch ? carbon__expire_batch
                                              : n;
        more = carbon__i(&v->items[i], 2) != 0;
      }
    carbon__publish(call, sym, v, GM__CARBON__SIDE__SIDE_UNSPECIFIED);
    if (upto && !more) upto = NULL; /* that day's expiries are done */
    if (!upto && !close && !more) return GM_OK;
  }
  return GM_OK;
}

gm_status carbon__close(gm_call *call, const ProtobufCMessage *req,
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
 * The "day" deadline of instrument d->id (its tag): expires what is due and
 * closes the days whose close has passed, as records.close does.  The sweep
 * scripts set the deadline to the next event as they go, so work left past
 * this call's bound fires again at once; a retry after a crash replays the
 * steps that ran (the host's idempotency key for the firing).
 */
gm_status carbon__on_day(gm_call *call, const gm_deadline *d, void *arg) {
  Gm__Carbon__DayClose *dc[CARBON_CLOSE_DAYS];
  char yuan[32];
  size_t n = 0;
  (void)arg;
  gm_status st = carbon__sweep(call, d->tag, 1, dc, &n);
  if (st == GM_NOT_FOUND) {
    /* The instrument is gone: so is the reason for its deadline. */
    host->log(host->market(call), GM_LOG_WARN,
              "day deadline of %s: no such instrument; dropped", d->tag);
    return GM_OK;
  }
  if (st != GM_OK) return st;
  for (size_t i = 0; i < n; i++)
    if (!dc[i]->already)
      host->log(host->market(call), GM_LOG_INFO,
                "%s closed %s at %s yuan (%s, %lld orders and offers "
                "expired)",
                dc[i]->symbol, dc[i]->day,
                gm__carbon_format_price(dc[i]->close, yuan),
                dc[i]->from_trades ? "VWAP" : "previous close",
                (long long)dc[i]->expired);
  return GM_OK;
}

/*
 * The "inflight" deadline of order d->id: its broker stopped between two
 * steps of the call that placed it and no retry of that call finished it
 * within inflight_ms, so it is continued as the call would have done.  A
 * retry that finished it first cancelled the deadline; one racing with this
 * firing is answered from the order's final record (place.lua).
 */
gm_status carbon__on_inflight(gm_call *call, const gm_deadline *d, void *arg) {
  const char *cont[] = {"continue", d->id,
                        carbon__num(call, carbon__inflight_ms)};
  Gm__Carbon__PlaceReply *r;
  (void)arg;
  gm_status st = carbon__place_run(call, d->tag, 3, cont, &r);
  if (st == GM_NOT_FOUND) return GM_OK; /* ended, its record pruned */
  if (st != GM_OK) return st;
  host->log(host->market(call), GM_LOG_INFO,
            "order %s was left in flight (its broker stopped mid-call); "
            "finished it: state %d, %lld t filled%s%s",
            r->order->id, (int)r->order->state, (long long)r->order->filled,
            r->order->reason[0] ? ", " : "", r->order->reason);
  return GM_OK;
}
