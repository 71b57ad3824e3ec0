/*
 * The declarations C and the scripts share, as one line of Lua made from
 * their one source: the enums of carbon.proto (TIF, STATE, OFFER, STP), the
 * limits of price.h (MAXP, MAXQ, MAXCASH), how long ended orders are kept
 * (ENDED_KEEP, ENDED_SLOT), a refused FOK's reason (FOK_SHORT) and the record
 * layouts of carbon.h (R_ORD, R_FILL, ...).  The plugin puts it before lib.lua
 * (scripts.c); the benchmark's ceiling does the same.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "carbon.h"

typedef struct carbon__buf {
  char *s;
  size_t len, cap;
} carbon__buf;

static void carbon__put(carbon__buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void carbon__put(carbon__buf *b, const char *fmt, ...) {
  if (!b->s) { /* never offset a NULL buffer, even by 0 */
    b->cap = 1024;
    b->s = malloc(b->cap);
    if (!b->s) abort();
  }
  for (;;) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(b->s + b->len, b->cap - b->len, fmt, ap);
    va_end(ap);
    if (n < 0) abort();
    if ((size_t)n < b->cap - b->len) {
      b->len += (size_t)n;
      return;
    }
    b->cap = (b->cap + (size_t)n) * 2 + 256;
    b->s = realloc(b->s, b->cap);
    if (!b->s) abort();
  }
}

/* "local TIF = {GTC = 0, DAY = 1, ...}; " from an enum, its values'
   common prefix ("TIF_") dropped. */
static void carbon__enum(carbon__buf *b, const char *lua,
                         const ProtobufCEnumDescriptor *d, const char *prefix) {
  size_t np = strlen(prefix);
  carbon__put(b, "local %s = {", lua);
  for (unsigned i = 0; i < d->n_values; i++) {
    const char *name = d->values[i].name;
    if (strncmp(name, prefix, np) == 0) name += np;
    carbon__put(b, "%s%s = %d", i ? ", " : "", name, d->values[i].value);
  }
  carbon__put(b, "}; ");
}

#define CARBON__FIELD_NAME(rec, f) #f,

/* "local R_ORD = {id = 2, ...}; ": Lua's index of each field (C's + 1),
   and its maker "local function R_ORD_rec(tag, v) return {tag, v.id, ...}
   end; ", unrolled so a record costs one table, not a walk of the layout.
   With `packed`, also "local function R_ORD_str(tag, v) return tag ..
   '\0' .. v.id .. ... end; ": the record as one string, its fields
   separated by NUL bytes, which no field holds (they come from C strings
   and the scripts' own text); carbon__run (reply.c) splits it back into
   the same record.  One string costs the script, the host's msgpack copy
   for replays and the reply far less than an array of some 15 strings. */
static void carbon__layout(carbon__buf *b, const char *lua,
                           const char *const *names, size_t n, int packed) {
  carbon__put(b, "local %s = {", lua);
  for (size_t i = 0; i < n; i++)
    carbon__put(b, "%s%s = %zu", i ? ", " : "", names[i], i + 2);
  carbon__put(b, "}; local function %s_rec(tag, v) return {tag", lua);
  for (size_t i = 0; i < n; i++) carbon__put(b, ", v.%s", names[i]);
  carbon__put(b, "} end; ");
  if (!packed) return;
  carbon__put(b, "local function %s_str(tag, v) return tag", lua);
  for (size_t i = 0; i < n; i++) carbon__put(b, " .. '\\0' .. v.%s", names[i]);
  carbon__put(b, " end; ");
}

/* "local function EV_ORDER(id, who, ...) return '1|' .. id .. '|' .. who
   ... end; ": an outbox entry's packed record (carbon.h), one concatenation
   of strings, no table. */
static void carbon__event(carbon__buf *b, const char *lua,
                          const char *const *names, size_t n) {
  carbon__put(b, "local function %s(", lua);
  for (size_t i = 0; i < n; i++)
    carbon__put(b, "%s%s", i ? ", " : "", names[i]);
  carbon__put(b, ") return '%s'", CARBON_EV_VERSION);
  for (size_t i = 0; i < n; i++) carbon__put(b, " .. '|' .. %s", names[i]);
  carbon__put(b, " end; ");
}

#define CARBON__EV_NAME(f) #f,

char *carbon__lua_declarations(void) {
  static const char *const ord[] = {CARBON_ORD_FIELDS(CARBON__FIELD_NAME)};
  static const char *const fill[] = {CARBON_FILL_FIELDS(CARBON__FIELD_NAME)};
  static const char *const acct[] = {CARBON_ACCT_FIELDS(CARBON__FIELD_NAME)};
  static const char *const inst[] = {CARBON_INST_FIELDS(CARBON__FIELD_NAME)};
  static const char *const offer[] = {CARBON_OFFER_FIELDS(CARBON__FIELD_NAME)};
  static const char *const level[] = {CARBON_LEVEL_FIELDS(CARBON__FIELD_NAME)};
  static const char *const held[] = {CARBON_HELD_FIELDS(CARBON__FIELD_NAME)};
  static const char *const stats[] = {CARBON_STATS_FIELDS(CARBON__FIELD_NAME)};
  static const char *const close[] = {CARBON_CLOSE_FIELDS(CARBON__FIELD_NAME)};
  carbon__buf b = {0};
  carbon__put(&b,
              "--[[ made by scripts.c from carbon.proto, price.h and "
              "carbon.h ]] ");
  carbon__enum(&b, "TIF", &gm__carbon__time_in_force__descriptor, "TIF_");
  carbon__enum(&b, "STATE", &gm__carbon__order_state__descriptor, "STATE_");
  carbon__enum(&b, "OFFER", &gm__carbon__offer_state__descriptor, "OFFER_");
  carbon__enum(&b, "STP", &gm__carbon__stp_mode__descriptor, "STP_");
  /* lib.lua's ord_pack keeps a resting order's price and quantities in 4
     bytes each; a larger limit needs a new record version there. */
  _Static_assert(GM_CARBON_MAX_PRICE < INT64_C(4294967296) &&
                     GM_CARBON_MAX_QTY < INT64_C(4294967296),
                 "ord_pack (lib.lua) packs price and quantities in 4 bytes");
  carbon__put(&b, "local MAXP, MAXQ, MAXCASH = %lld, %lld, %lld; ",
              (long long)GM_CARBON_MAX_PRICE, (long long)GM_CARBON_MAX_QTY,
              (long long)GM_CARBON_MAX_CASH);
  carbon__put(&b, "local FOK_SHORT = '%s'; ", CARBON_FOK_SHORT);
  carbon__put(&b, "local ENDED_KEEP, ENDED_SLOT = %lld, %lld; ",
              (long long)CARBON_ENDED_KEEP_MS, (long long)CARBON_ENDED_SLOT_MS);
#define CARBON__LAYOUT(lua, names, packed) \
  carbon__layout(&b, lua, names, sizeof names / sizeof *names, packed)
  /* Packed makers for the records of every order's reply (lib.lua). */
  CARBON__LAYOUT("R_ORD", ord, 1);
  CARBON__LAYOUT("R_FILL", fill, 1);
  CARBON__LAYOUT("R_ACCT", acct, 0);
  CARBON__LAYOUT("R_INST", inst, 0);
  CARBON__LAYOUT("R_OFFER", offer, 0);
  CARBON__LAYOUT("R_LEVEL", level, 1);
  CARBON__LAYOUT("R_HELD", held, 0);
  CARBON__LAYOUT("R_STATS", stats, 0);
  CARBON__LAYOUT("R_CLOSE", close, 0);
#undef CARBON__LAYOUT
  static const char *const ev_order[] = {
      CARBON_EV_ORDER_FIELDS(CARBON__EV_NAME)};
  static const char *const ev_trade[] = {
      CARBON_EV_TRADE_FIELDS(CARBON__EV_NAME)};
  carbon__event(&b, "EV_ORDER", ev_order, sizeof ev_order / sizeof *ev_order);
  carbon__event(&b, "EV_TRADE", ev_trade, sizeof ev_trade / sizeof *ev_trade);
  carbon__put(&b, "local EV_CALL = '%s'; ", CARBON_EV_CALL);
  carbon__put(&b, "\n");
  return b.s;
}
