/*
 * Settlement: the carbon_* ledger tables (migrations) and the callback
 * that writes each outbox entry into them.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "carbon.h"

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

#define CARBON__EV_NAME(f) #f,
static const char *const carbon__ev_order[] = {
    CARBON_EV_ORDER_FIELDS(CARBON__EV_NAME)};
static const char *const carbon__ev_trade[] = {
    CARBON_EV_TRADE_FIELDS(CARBON__EV_NAME)};
#define CARBON__EV_MAX 16

/* An entry with its packed record (field "r", carbon.h) as named fields,
   so one reader takes both layouts.  `buf` holds the values.  Returns
   0 (done, or nothing to unpack: an entry of named fields is *out as it
   is), -1 when the record is not of a layout this build knows, -2 when it
   is but does not fit it (fields missing, or longer than buf). */
typedef struct carbon__unpacked {
  gm_outbox_entry e;
  const char *names[CARBON__EV_MAX], *values[CARBON__EV_MAX];
  char buf[1024];
} carbon__unpacked;

static int carbon__unpack(const gm_outbox_entry *e, carbon__unpacked *u,
                          const gm_outbox_entry **out) {
  const char *r = gm_entry_field(e, "r");
  const char *const *names;
  size_t n;
  *out = e;
  if (!r) return 0;
  if (!strcmp(e->kind, "order")) {
    names = carbon__ev_order;
    n = sizeof carbon__ev_order / sizeof *carbon__ev_order;
  } else if (!strcmp(e->kind, "trade")) {
    names = carbon__ev_trade;
    n = sizeof carbon__ev_trade / sizeof *carbon__ev_trade;
  } else {
    return 0;
  }
  size_t vl = sizeof CARBON_EV_VERSION - 1, len = strlen(r);
  if (strncmp(r, CARBON_EV_VERSION, vl) != 0 || r[vl] != '|') return -1;
  if (len >= sizeof u->buf) return -2;
  memcpy(u->buf, r + vl + 1, len - vl);
  char *p = u->buf;
  for (size_t i = 0; i < n; i++) {
    u->names[i] = names[i];
    u->values[i] = p;
    if (i + 1 == n) break; /* the last field takes the rest, '|' and all */
    p = strchr(p, '|');
    if (!p) return -2;
    *p++ = '\0';
  }
  u->e = *e;
  u->e.nfields = n;
  u->e.names = u->names;
  u->e.values = u->values;
  *out = &u->e;
  return 0;
}

/* One record: an entry of its own (any layout), or one field of a call's
   entry as an entry of that kind with the field as its "r". */
static gm_status carbon__settle_one(gm_market *m, gm_ledger *tx,
                                    const gm_outbox_entry *packed) {
  carbon__unpacked u;
  const gm_outbox_entry *e;
  int up = carbon__unpack(packed, &u, &e);
  if (up == -1) {
    host->log(m, GM_LOG_ERROR,
              "outbox entry %s %s: a %s record of a layout this build does "
              "not know (it writes version " CARBON_EV_VERSION
              "); once set aside, replay it from gm_dead_letter on a broker "
              "that knows it (docs/operations.md)",
              packed->stream, packed->id, packed->kind);
    return GM_FAILED_PRECONDITION;
  }
  if (up != 0) {
    host->log(m, GM_LOG_ERROR,
              "outbox entry %s %s: a %s record of version " CARBON_EV_VERSION
              " with fields missing or over %zu bytes: not settled (it is "
              "set aside in gm_dead_letter after the retries)",
              packed->stream, packed->id, packed->kind, sizeof u.buf - 1);
    return GM_FAILED_PRECONDITION;
  }
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

/* Runs on the settler thread inside its transaction, once per entry.  A
   call's entry (carbon.h: kind "order", "r" CARBON_EV_CALL first) settles
   its records in their order, all or none: a record that fails fails the
   entry. */
static gm_status carbon__settle(gm_market *m, gm_ledger *tx,
                                const gm_outbox_entry *e) {
  if (strcmp(e->kind, "order") != 0 || e->nfields == 0 ||
      strcmp(e->names[0], "r") != 0 || strcmp(e->values[0], CARBON_EV_CALL))
    return carbon__settle_one(m, tx, e);
  const char *r_name[] = {"r"};
  for (size_t i = 1; i < e->nfields; i++) {
    if (strcmp(e->names[i], "order") != 0 &&
        strcmp(e->names[i], "trade") != 0) {
      host->log(m, GM_LOG_ERROR,
                "outbox entry %s %s: a call's entry with a field '%s' this "
                "build does not know (it knows order and trade); once set "
                "aside, replay it from gm_dead_letter on a broker that knows "
                "it (docs/operations.md)",
                e->stream, e->id, e->names[i]);
      return GM_FAILED_PRECONDITION;
    }
    gm_outbox_entry one = *e;
    one.kind = e->names[i];
    one.nfields = 1;
    one.names = r_name;
    one.values = &e->values[i];
    gm_status st = carbon__settle_one(m, tx, &one);
    if (st != GM_OK) return st;
  }
  return GM_OK;
}

gm_status carbon__settle_init(gm_market *m) {
  gm_status st = host->ledger_migrate(
      m, carbon__migrations,
      sizeof carbon__migrations / sizeof carbon__migrations[0]);
  if (st != GM_OK) return st;
  return host->settle_register(m, carbon__settle);
}
