/*
 * The carbon market: a continuous order book for allowances (CEA) and
 * offsets (CCER) with the national-market rules (docs/carbon.md).
 *
 * Live state is in Redis under one hash tag per instrument; every change is
 * made by one of the scripts below (each with lib.lua, scripts.c), which
 * also appends every fill and order-state change to the instrument's outbox.
 * carbon__settle writes those entries into the carbon_* ledger tables.
 * The plugin's C side validates requests, runs the scripts, turns their
 * replies into protobuf messages and publishes feed events, one file per
 * job (carbon.h lists them); this file holds the plugin's description, its
 * configuration and its lifecycle.
 */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "carbon.h"

/* Embedded by gm_add_plugin(... LUA ...). */
extern const char gm_lua_lib[], gm_lua_place[], gm_lua_amend[], gm_lua_block[],
    gm_lua_admin[], gm_lua_read[], gm_lua_sweep[], gm_lua_registry[];

/* Plugin globals (carbon.h): written in init() only, read by every worker
 * afterwards. */
const gm_host_api *host;
long carbon__max_fills = 64;
long carbon__expire_batch = 256;
long carbon__mass_cancel_max = 1000;
long carbon__reconcile_page = 1000;
long carbon__max_steps = 64;
long carbon__inflight_ms = 5000;
long carbon__kill_after_step;
long carbon__late_window = CARBON_LATE_WINDOW;

/* ---- plugin ------------------------------------------------------------ */

static gm_status carbon__init(gm_market *m, const gm_host_api *h) {
  gm_status st;

  host = h;
  /* Expiry and the close run on deadlines: a host without them (older than
     this SDK) would leave DAY orders resting for ever. */
  if (h->size <
          offsetof(gm_host_api, deadline_cancel) + sizeof h->deadline_cancel ||
      !h->deadline_register) {
    h->log(m, GM_LOG_ERROR,
           "this gmd has no deadlines (deadline_register); carbon needs a "
           "gmd built from the same SDK or later");
    return GM_UNIMPLEMENTED;
  }
  int bad = 0;
  bad |= gm_config_long(m, h, "carbon", "max_fills", 64, 1, 1000,
                        "resting orders", &carbon__max_fills) != GM_OK;
  bad |= gm_config_long(m, h, "carbon", "expire_batch", 256, 1, 10000, "orders",
                        &carbon__expire_batch) != GM_OK;
  bad |= gm_config_long(m, h, "carbon", "mass_cancel_max", 1000, 1, 100000,
                        "orders", &carbon__mass_cancel_max) != GM_OK;
  bad |= gm_config_long(m, h, "carbon", "reconcile_page", 1000, 1, 100000,
                        "accounts", &carbon__reconcile_page) != GM_OK;
  bad |=
      gm_config_long(m, h, "carbon", "max_steps", 64, 1, CARBON_MAX_STEPS_LIMIT,
                     "steps", &carbon__max_steps) != GM_OK;
  bad |= gm_config_long(m, h, "carbon", "inflight_ms", 5000, 100, 3600000,
                        "milliseconds", &carbon__inflight_ms) != GM_OK;
#ifdef GM_FAILURE_INJECTION
  bad |= gm_config_long(m, h, "carbon", "test_kill_after_step", 0, 0, 1000,
                        "steps", &carbon__kill_after_step) != GM_OK;
  if (carbon__kill_after_step)
    host->log(m, GM_LOG_WARN,
              "[market.carbon] test_kill_after_step = %ld: gmd kills itself "
              "after step %ld of any order that takes more steps (failure "
              "injection for tests); remove it from the config",
              carbon__kill_after_step, carbon__kill_after_step);
  bad |= gm_config_long(m, h, "carbon", "test_late_window", CARBON_LATE_WINDOW,
                        1, CARBON_LATE_WINDOW, "trades",
                        &carbon__late_window) != GM_OK;
  if (carbon__late_window != CARBON_LATE_WINDOW)
    host->log(m, GM_LOG_WARN,
              "[market.carbon] test_late_window = %ld: a records.trades page "
              "reads at most %ld trades settled since its walk began, not "
              "%d (for tests); remove it from the config",
              carbon__late_window, carbon__late_window, CARBON_LATE_WINDOW);
#else
  for (size_t i = 0; i < 2; i++) {
    static const char *const keys[] = {"test_kill_after_step",
                                       "test_late_window"};
    if (host->config(m, keys[i], NULL))
      host->log(m, GM_LOG_WARN,
                "[market.carbon] %s is ignored: this build has no failure "
                "injection (cmake -DGM_FAILURE_INJECTION=ON)",
                keys[i]);
  }
#endif
  if (host->config(m, "sweep_ms", NULL))
    host->log(m, GM_LOG_WARN,
              "[market.carbon] sweep_ms is ignored: expiry, closes and orders "
              "left in flight run on deadlines now ([deadlines] in "
              "docs/operations.md); remove it from the config");
  if (bad) return GM_INVALID_ARGUMENT;

  if ((st = carbon__scripts_register(m)) != GM_OK) return st;
  if ((st = carbon__settle_init(m)) != GM_OK) return st;
  if ((st = host->deadline_register(m, "day", carbon__on_day, NULL)) != GM_OK)
    return st;
  return host->deadline_register(m, "inflight", carbon__on_inflight, NULL);
}

static void carbon__shutdown(gm_market *m) {
  (void)m;
  carbon__scripts_free();
}

#define CARBON_MUT GM_METHOD_MUTATING
#define CARBON_TRADER "buyer,seller"

/* The roles the methods below name ("admin" is the broker's). */
static const gm_role carbon__roles[] = {
    {"buyer",
     "buys allowances and credits: places, replaces and cancels buy orders "
     "and takes the buying side of block trades"},
    {"seller",
     "sells allowances and credits: places, replaces and cancels sell orders "
     "and takes the selling side of block trades"},
};

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
     &gm__carbon__order__descriptor, carbon__cancel, CARBON_MUT, NULL,
     "cancel one of your open orders"},
    {"order.replace", &gm__carbon__replace_request__descriptor,
     &gm__carbon__place_reply__descriptor, carbon__replace, CARBON_MUT,
     CARBON_TRADER,
     "change price or quantity (a decrease keeps priority; else a new order)"},
    {"order.mass_cancel", &gm__carbon__mass_cancel_request__descriptor,
     &gm__carbon__mass_cancel_reply__descriptor, carbon__mass_cancel,
     CARBON_MUT, NULL, "cancel your open orders in one instrument"},
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
     NULL, "reject an offer made to you (your own: withdraws it)"},
    {"block.withdraw", &gm__carbon__offer_decision__descriptor,
     &gm__carbon__block_offer__descriptor, carbon__block_withdraw, CARBON_MUT,
     NULL, "withdraw an offer you made"},
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

/* The friendly `gm carbon ...` commands (cli.c). */
extern const struct gm_cli_extension gm__carbon_cli_extension;

/* Every [market.carbon] key this market reads (sweep_ms: ignored since the
   deadlines, warned about); gmd refuses any other. */
static const char *const carbon__settings[] = {"max_fills",
                                               "expire_batch",
                                               "mass_cancel_max",
                                               "reconcile_page",
                                               "max_steps",
                                               "inflight_ms",
                                               "test_kill_after_step",
                                               "sweep_ms",
                                               "test_late_window",
                                               NULL};

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
    .roles = carbon__roles,
    .n_roles = sizeof carbon__roles / sizeof carbon__roles[0],
    .cli = &gm__carbon_cli_extension,
    .settings = carbon__settings,
};

GM_PLUGIN_DEFINE(carbon__plugin)
