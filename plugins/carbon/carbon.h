/*
 * The carbon plugin's own header: what its files share.  Not installed and
 * not seen by the host (the plugin's only exports are the two entry points
 * of GM_PLUGIN_DEFINE); everything here has hidden visibility.
 *
 *   carbon.c   the plugin: description, methods, configuration, init
 *   scripts.c  the scripts as registered: decl.c's line, lib.lua, a script
 *   decl.c     the constants and record layouts below, made into Lua (one
 *              declaration for both sides)
 *   reply.c    script replies -> protobuf messages and feed events
 *   cursor.c   paged walks with cursors (order.list, block.list)
 *   admin.c    instruments and accounts
 *   orders.c   place, replace, cancel, mass cancel, get, list
 *   block.c    block trades
 *   book.c     depth and day statistics
 *   day.c      expiry, the daily close, orders left in flight (deadlines)
 *   records.c  trades, statements and reconciliation from the ledger
 *   settle.c   the carbon_* ledger tables and the settle callback
 *   rules.c    sessions, dates and symbols (no Redis; shared with gm)
 */
#ifndef GM_CARBON_H
#define GM_CARBON_H

#include <stddef.h>
#include <stdint.h>

#include <greenmarket/participant.h>
#include <greenmarket/plugin.h>

#include "carbon.pb-c.h"
#include "price.h"
#include "rules.h"

/* Embedded by gm_add_plugin(... LUA ...). */
extern const char gm_lua_lib[], gm_lua_place[], gm_lua_amend[], gm_lua_block[],
    gm_lua_admin[], gm_lua_read[], gm_lua_sweep[], gm_lua_registry[];

/* The furthest a GTD order may expire: a year and a day. */
#define CARBON_MAX_GTD_MS (INT64_C(366) * 24 * 3600 * 1000)
#define CARBON_STATEMENT_MAX 100000 /* trades in one statement */
/* The instrument list's own tag (registry.lua). */
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
/* Days one sweep (a day deadline's firing or records.close) closes at
   most: days missed while no broker ran are closed over several sweeps. */
#define CARBON_CLOSE_DAYS 16
/* An ended order's final record stays in Redis (P.e:<slot>, lib.lua) this
   long at least, so order.get shows it whatever the settler's lag up to
   that, in slots of CARBON_ENDED_SLOT_MS, each key expiring as a whole
   (no walk prunes them) two slots later than the keep after its first
   write (lib.lua, ended_flush). */
#define CARBON_ENDED_KEEP_MS (INT64_C(10) * 60 * 1000)
#define CARBON_ENDED_SLOT_MS (INT64_C(60) * 1000)
/* How the reason of a refused FOK order begins (place.lua fok_short): a
   FOK order that ends so after several steps is a refusal too. */
#define CARBON_FOK_SHORT "FOK order cannot fill in full"
#define CARBON_DEFAULT_SESSIONS "570-690,780-900"
#define CARBON_DEFAULT_BLOCK_SESSIONS "780-900"

/*
 * The records the scripts return, declared once.  C reads field f of record
 * r with carbon__s(r, CARBON_<REC>_<f>) / carbon__i(...); the scripts fill
 * it as r[R_<REC>.<f>] (lib.lua, rec()), from Lua tables scripts.c makes of
 * these same lists at start.  Item 0 is the record's tag letter.
 */
/* One field per X(), laid out by hand: */
/* clang-format off */
#define CARBON_ORD_FIELDS(X) \
  X(ORD, id) X(ORD, who) X(ORD, side) X(ORD, typ) X(ORD, tif) X(ORD, px) \
  X(ORD, tot) X(ORD, left) X(ORD, filled) X(ORD, st) X(ORD, why) \
  X(ORD, exp) X(ORD, t) X(ORD, coid)
#define CARBON_FILL_FIELDS(X) \
  X(FILL, tid) X(FILL, px) X(FILL, q) X(FILL, amt) X(FILL, maker) X(FILL, t)
#define CARBON_ACCT_FIELDS(X) \
  X(ACCT, who) X(ACCT, c) X(ACCT, cf) X(ACCT, al) X(ACCT, af) X(ACCT, lk) \
  X(ACCT, stp)
#define CARBON_INST_FIELDS(X) \
  X(INST, sym) X(INST, kind) X(INST, cur) X(INST, tick) X(INST, lot) \
  X(INST, ref) X(INST, band) X(INST, bband) X(INST, bmin) X(INST, sess) \
  X(INST, bsess) X(INST, halt) X(INST, hol) X(INST, maxf) X(INST, name) \
  X(INST, hreason) X(INST, ct)
#define CARBON_OFFER_FIELDS(X) \
  X(OFFER, id) X(OFFER, of) X(OFFER, cp) X(OFFER, side) X(OFFER, px) \
  X(OFFER, q) X(OFFER, st) X(OFFER, tid) X(OFFER, t)
#define CARBON_LEVEL_FIELDS(X) X(LEVEL, side) X(LEVEL, px) X(LEVEL, q)
/* What an account holds in all, frozen and locked included (reconcile). */
#define CARBON_HELD_FIELDS(X) X(HELD, who) X(HELD, cash) X(HELD, alw)
#define CARBON_STATS_FIELDS(X) \
  X(STATS, day) X(STATS, last) X(STATS, open) X(STATS, high) X(STATS, low) \
  X(STATS, vol) X(STATS, turn) X(STATS, ntr) X(STATS, bvol) X(STATS, ref) \
  X(STATS, close)
#define CARBON_CLOSE_FIELDS(X) \
  X(CLOSE, day) X(CLOSE, px) X(CLOSE, vol) X(CLOSE, from) X(CLOSE, old) \
  X(CLOSE, more)
/* clang-format on */

#define CARBON__FIELD_INDEX(rec, f) CARBON_##rec##_##f,
enum { CARBON_ORD_TAG, CARBON_ORD_FIELDS(CARBON__FIELD_INDEX) CARBON_ORD_N };
enum { CARBON_FILL_TAG, CARBON_FILL_FIELDS(CARBON__FIELD_INDEX) CARBON_FILL_N };
enum { CARBON_ACCT_TAG, CARBON_ACCT_FIELDS(CARBON__FIELD_INDEX) CARBON_ACCT_N };
enum { CARBON_INST_TAG, CARBON_INST_FIELDS(CARBON__FIELD_INDEX) CARBON_INST_N };
enum {
  CARBON_OFFER_TAG,
  CARBON_OFFER_FIELDS(CARBON__FIELD_INDEX) CARBON_OFFER_N
};
enum {
  CARBON_LEVEL_TAG,
  CARBON_LEVEL_FIELDS(CARBON__FIELD_INDEX) CARBON_LEVEL_N
};
enum { CARBON_HELD_TAG, CARBON_HELD_FIELDS(CARBON__FIELD_INDEX) CARBON_HELD_N };
enum {
  CARBON_STATS_TAG,
  CARBON_STATS_FIELDS(CARBON__FIELD_INDEX) CARBON_STATS_N
};
enum {
  CARBON_CLOSE_TAG,
  CARBON_CLOSE_FIELDS(CARBON__FIELD_INDEX) CARBON_CLOSE_N
};

/*
 * The outbox entries a script emits for every order change and trade, as
 * one field "r" holding the values joined by '|' in this order, after the
 * layout's version: "1|<id>|<who>|...".  One field instead of a pair per
 * value: the XADD, the stream's memory and the host's gm.emit all cost per
 * field.  Only the last field may hold '|' (an order's reason).  The
 * settle callback (settle.c) also takes the named-field entries brokers
 * before this layout wrote, so a stream an upgrade finds still settles; a
 * newer version it does not know is refused (retried, then set aside in
 * gm_dead_letter, to be replayed on a broker that knows it), never guessed.
 * A script call appends its records as one entry (lib.lua, ev_flush: one
 * XADD per call): kind "order", a first field "r" of CARBON_EV_CALL, then a
 * field "order" or "trade" per record (the value as "r" above), in the
 * order they happened; a call of one record (an order resting untraded)
 * keeps that record's own entry below.  A settler of a build before it
 * reads that "r" as a
 * record of a version it does not know and refuses the entry (set aside,
 * replayable), rather than skip it as a kind it does not know.  Brokers
 * before it wrote an entry per record (kind "order" or "trade", field "r");
 * settle.c takes both, so a stream an upgrade finds still settles.
 */
#define CARBON_EV_VERSION "1"
#define CARBON_EV_CALL "2"
/* clang-format off */
#define CARBON_EV_ORDER_FIELDS(X) \
  X(id) X(who) X(side) X(px) X(qty) X(left) X(filled) X(st) X(tif) X(t) X(why)
#define CARBON_EV_TRADE_FIELDS(X) \
  X(id) X(buyer) X(seller) X(bo) X(so) X(px) X(qty) X(amt) X(maker) X(blk) \
  X(day) X(t)
/* clang-format on */

/* The host's services (set in init). */
extern const gm_host_api *host;
/* [market.carbon] settings, read in init. */
extern long carbon__max_fills;       /* default per instrument */
extern long carbon__expire_batch;    /* expiries per sweep call */
extern long carbon__mass_cancel_max; /* orders per mass_cancel call */
extern long carbon__reconcile_page;  /* accounts per reconcile run */
extern long carbon__max_steps;       /* place steps per order (per call) */
extern long carbon__inflight_ms;     /* in flight this long after its last
                                        step: its deadline finishes it */
/* Test builds only (GM_FAILURE_INJECTION): gmd kills itself after this
   step of a multi-step order; 0: off. */
extern long carbon__kill_after_step;
/* The most trades settled since a walk's first page that one page of
   records.trades reads (records.c): CARBON_LATE_WINDOW, or in test builds
   [market.carbon] test_late_window, so a test crosses it with a few
   trades. */
#define CARBON_LATE_WINDOW 50000
extern long carbon__late_window;

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

/* decl.c: the Lua declarations shared with C, one line, malloc'd. */
char *carbon__lua_declarations(void);

/* scripts.c: the scripts, as registered */
/* Registers every script: lib.lua and the generated declarations before
   each (from init); carbon__scripts_free at shutdown. */
gm_status carbon__scripts_register(gm_market *m);
/* The script that lists the instruments: "registry.read", the registry
   script registered read-only, when the host has script_register_flags;
   "registry" otherwise (written in init). */
extern const char *carbon__registry_list;
void carbon__scripts_free(void);

/* reply.c: script replies, messages, events */
const char *carbon__s(const gm_value *r, size_t i);
int64_t carbon__i(const gm_value *r, size_t i);
char carbon__tag(const gm_value *reply, size_t i);
gm_status carbon__run(gm_call *call, const char *script, const char *tag,
                      size_t nargs, const char *const *args,
                      const gm_value **v);
char *carbon__num(gm_call *call, int64_t v);
char *carbon__id(gm_call *call, const char *sym, const char *local);
const char *carbon__side_code(Gm__Carbon__Side s);
Gm__Carbon__Side carbon__side_of(const char *code);
gm_status carbon__split_id(gm_call *call, const char *id, const char **sym,
                           const char **local);
gm_status carbon__need_symbol(gm_call *call, const char *sym);
/* GM_OK when `id` keeps the core's participant id rule; else fails the call
   naming `what` ("participant", "counterparty"). */
gm_status carbon__need_participant(gm_call *call, const char *what,
                                   const char *id);
/* carbon__need_participant, or an id an earlier release let a deposit use
   (no space, control or '|'): withdraw and an admin's account.get take it,
   so what was deposited under it can still be read and taken out. */
gm_status carbon__need_holder(gm_call *call, const char *what, const char *id);
/* GM_OK when `text` passes gm__carbon_check_text and is at most `max`
   bytes; else fails the call naming `what` ("name", "reason"). */
gm_status carbon__need_text(gm_call *call, const char *what, const char *text,
                            size_t max);
Gm__Carbon__Order *carbon__order(gm_call *call, const char *sym,
                                 const gm_value *r);
Gm__Carbon__Fill *carbon__fill(gm_call *call, const char *sym,
                               const gm_value *r);
Gm__Carbon__Account *carbon__account(gm_call *call, const char *sym,
                                     const gm_value *r);
Gm__Carbon__Instrument *carbon__instrument(gm_call *call, const gm_value *r);
void carbon__publish(gm_call *call, const char *sym, const gm_value *reply,
                     Gm__Carbon__Side taker);

/* cursor.c: cursors and paged walks */
char *carbon__cursor_text(gm_call *call, const carbon__cursor *c);
int carbon__cursor_done(const char *pos, const char *carry);
gm_status carbon__cursor_parse(gm_call *call, const char *method,
                               const char *text, int with_side, char prefix,
                               carbon__cursor *c);
gm_status carbon__walk_page(gm_call *call, const carbon__walk *w,
                            const char *symbol, int32_t limit_in,
                            const char *cursor, void ***items, size_t *n,
                            char **next);

/* admin.c: instruments and accounts */
gm_status carbon__registry(gm_call *call, const gm_value **list);
gm_status carbon__instrument_create(gm_call *call, const ProtobufCMessage *req,
                                    ProtobufCMessage **reply);
gm_status carbon__instrument_get(gm_call *call, const ProtobufCMessage *req,
                                 ProtobufCMessage **reply);
gm_status carbon__instrument_list(gm_call *call, const ProtobufCMessage *req,
                                  ProtobufCMessage **reply);
gm_status carbon__halt(gm_call *call, const ProtobufCMessage *req,
                       ProtobufCMessage **reply);
gm_status carbon__resume(gm_call *call, const ProtobufCMessage *req,
                         ProtobufCMessage **reply);
gm_status carbon__deposit(gm_call *call, const ProtobufCMessage *req,
                          ProtobufCMessage **reply);
gm_status carbon__withdraw(gm_call *call, const ProtobufCMessage *req,
                           ProtobufCMessage **reply);
gm_status carbon__account_get(gm_call *call, const ProtobufCMessage *req,
                              ProtobufCMessage **reply);
gm_status carbon__account_configure(gm_call *call, const ProtobufCMessage *req,
                                    ProtobufCMessage **reply);

/* orders.c: orders */
gm_status carbon__side_role(gm_call *call, Gm__Carbon__Side side);
gm_status carbon__place_run(gm_call *call, const char *sym, size_t nargs,
                            const char *const *args,
                            Gm__Carbon__PlaceReply **reply);
gm_status carbon__place(gm_call *call, const ProtobufCMessage *req,
                        ProtobufCMessage **reply);
gm_status carbon__replace(gm_call *call, const ProtobufCMessage *req,
                          ProtobufCMessage **reply);
gm_status carbon__cancel(gm_call *call, const ProtobufCMessage *req,
                         ProtobufCMessage **reply);
gm_status carbon__mass_cancel(gm_call *call, const ProtobufCMessage *req,
                              ProtobufCMessage **reply);
gm_status carbon__order_get(gm_call *call, const ProtobufCMessage *req,
                            ProtobufCMessage **reply);
gm_status carbon__order_list(gm_call *call, const ProtobufCMessage *req,
                             ProtobufCMessage **reply);

/* block.c: block trades */
Gm__Carbon__BlockOffer *carbon__offer(gm_call *call, const char *sym,
                                      const gm_value *r);
gm_status carbon__block_offer(gm_call *call, const ProtobufCMessage *req,
                              ProtobufCMessage **reply);
gm_status carbon__block_accept(gm_call *call, const ProtobufCMessage *req,
                               ProtobufCMessage **reply);
gm_status carbon__block_withdraw(gm_call *call, const ProtobufCMessage *req,
                                 ProtobufCMessage **reply);
gm_status carbon__block_reject(gm_call *call, const ProtobufCMessage *req,
                               ProtobufCMessage **reply);
gm_status carbon__block_list(gm_call *call, const ProtobufCMessage *req,
                             ProtobufCMessage **reply);

/* book.c: market data */
gm_status carbon__depth(gm_call *call, const ProtobufCMessage *req,
                        ProtobufCMessage **reply);
gm_status carbon__stats(gm_call *call, const ProtobufCMessage *req,
                        ProtobufCMessage **reply);

/* day.c: end of day, and orders left in flight */
gm_status carbon__close(gm_call *call, const ProtobufCMessage *req,
                        ProtobufCMessage **reply);
/* Deadline callbacks: "day" (expiries and closes of the instrument d->id)
   and "inflight" (the order d->id, left in flight). */
gm_status carbon__on_day(gm_call *call, const gm_deadline *d, void *arg);
gm_status carbon__on_inflight(gm_call *call, const gm_deadline *d, void *arg);

/* records.c: records */
gm_status carbon__trades_list(gm_call *call, const ProtobufCMessage *req,
                              ProtobufCMessage **reply);
gm_status carbon__statement(gm_call *call, const ProtobufCMessage *req,
                            ProtobufCMessage **reply);
gm_status carbon__reconcile(gm_call *call, const ProtobufCMessage *req,
                            ProtobufCMessage **reply);

/* settle.c: settlement */
/* Applies the carbon_* migrations and registers the settle callback. */
gm_status carbon__settle_init(gm_market *m);

#endif /* GM_CARBON_H */
