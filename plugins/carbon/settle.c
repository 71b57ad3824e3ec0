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
    /* A trade's place in the ledger's settle order, `seq`, kept as the
       table's INTEGER PRIMARY KEY: records.trades' cursor holds it (a page
       never misses a trade that settles after it, records.c), and VACUUM
       (or VACUUM INTO, a move to another host) keeps such a key where it
       may renumber a plain rowid.  Each new trade takes the largest seq + 1:
       trades are never deleted, and one writer at a time commits, so seq
       grows in commit order.  The rows keep their rowid order, the order
       they settled in. */
    {2,
     "CREATE TABLE carbon_trades_seq ("
     " seq INTEGER PRIMARY KEY, trade_id TEXT NOT NULL UNIQUE,"
     " symbol TEXT NOT NULL,"
     " buyer TEXT NOT NULL, seller TEXT NOT NULL,"
     " buy_order TEXT NOT NULL, sell_order TEXT NOT NULL,"
     " price INTEGER NOT NULL, quantity INTEGER NOT NULL,"
     " amount INTEGER NOT NULL, maker_side TEXT NOT NULL,"
     " block INTEGER NOT NULL, day INTEGER NOT NULL, time_ms INTEGER NOT NULL);"
     "INSERT INTO carbon_trades_seq SELECT rowid, trade_id, symbol, buyer,"
     " seller, buy_order, sell_order, price, quantity, amount, maker_side,"
     " block, day, time_ms FROM carbon_trades ORDER BY rowid;"
     "DROP TABLE carbon_trades;"
     "ALTER TABLE carbon_trades_seq RENAME TO carbon_trades;"
     "CREATE INDEX carbon_trades_buyer ON carbon_trades (buyer, time_ms);"
     "CREATE INDEX carbon_trades_seller ON carbon_trades (seller, time_ms);"
     "CREATE INDEX carbon_trades_symbol ON carbon_trades (symbol, time_ms);"},
};

#define CARBON__EV_NAME(f) #f,
static const char *const carbon__ev_order[] = {
    CARBON_EV_ORDER_FIELDS(CARBON__EV_NAME)};
static const char *const carbon__ev_trade[] = {
    CARBON_EV_TRADE_FIELDS(CARBON__EV_NAME)};
#define CARBON__EV_MAX 16
/* Each field's place in its packed layout (CARBON__O_px, CARBON__T_qty):
   an unpacked record has every field there, so it is found at once; an
   entry of named fields (the layout before) is searched by name. */
#define CARBON__EV_O(f) CARBON__O_##f,
#define CARBON__EV_T(f) CARBON__T_##f,
enum { CARBON_EV_ORDER_FIELDS(CARBON__EV_O) CARBON__O_N };
enum { CARBON_EV_TRADE_FIELDS(CARBON__EV_T) CARBON__T_N };

static const char *carbon__field(const gm_outbox_entry *e, size_t at,
                                 const char *name) {
  if (at < e->nfields && strcmp(e->names[at], name) == 0) return e->values[at];
  return gm_entry_field(e, name);
}

/* A field by its place in the order layout (O) or the trade layout (T),
   as text ("" when absent) or as a number (0 when absent). */
#define O_S(f) carbon__text(carbon__field(e, CARBON__O_##f, #f))
#define O_I(f) carbon__int(carbon__field(e, CARBON__O_##f, #f))
#define T_S(f) carbon__text(carbon__field(e, CARBON__T_##f, #f))
#define T_I(f) carbon__int(carbon__field(e, CARBON__T_##f, #f))
/* Any other kind's field, by name. */
#define F_S(f) carbon__text(gm_entry_field(e, #f))
#define F_I(f) carbon__int(gm_entry_field(e, #f))

static const char *carbon__text(const char *v) {
  return v ? v : "";
}
static int64_t carbon__int(const char *v) {
  return v ? gm__carbon_parse_int(v) : 0;
}

/* "<a><sep><b>" into out (cap bytes), cut short as snprintf would. */
static const char *carbon__join(char *out, size_t cap, const char *a,
                                const char *sep, const char *b) {
  size_t n = 0;
  for (const char *part[] = {a, sep, b}, **p = part; p < part + 3; p++)
    for (const char *c = *p; *c && n + 1 < cap; c++) out[n++] = *c;
  out[n] = '\0';
  return out;
}

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
  memcpy(sym, s0, (size_t)(b - s0));
  sym[b - s0] = '\0';

  if (!strcmp(e->kind, "trade")) {
    char tid[64];
    carbon__join(tid, sizeof tid, sym, ":", T_S(id));
    carbon__join(id, sizeof id, sym, ":", T_S(bo));
    carbon__join(id2, sizeof id2, sym, ":", T_S(so));
    return host->ledger_exec(
        tx,
        "INSERT OR IGNORE INTO carbon_trades (trade_id, symbol, buyer, seller,"
        " buy_order, sell_order, price, quantity, amount, maker_side, block,"
        " day, time_ms) VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13)",
        (gm_param[]){GM_TEXT(tid), GM_TEXT(sym), GM_TEXT(T_S(buyer)),
                     GM_TEXT(T_S(seller)), GM_TEXT(id), GM_TEXT(id2),
                     GM_INT(T_I(px)), GM_INT(T_I(qty)), GM_INT(T_I(amt)),
                     GM_TEXT(T_S(maker)), GM_INT(T_I(blk)), GM_INT(T_I(day)),
                     GM_INT(T_I(t))},
        13);
  }
  if (!strcmp(e->kind, "order")) {
    carbon__join(id, sizeof id, sym, ":", O_S(id));
    return host->ledger_exec(
        tx,
        "INSERT INTO carbon_orders (order_id, symbol, participant, side,"
        " price, quantity, remaining, filled, state, reason, tif, created_ms,"
        " expire_ms, updated_ms) VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,"
        "?12,0,?12) ON CONFLICT (order_id) DO UPDATE SET price = ?5,"
        " quantity = ?6, remaining = ?7, filled = ?8, state = ?9,"
        " reason = ?10, updated_ms = ?12",
        (gm_param[]){GM_TEXT(id), GM_TEXT(sym), GM_TEXT(O_S(who)),
                     GM_TEXT(O_S(side)), GM_INT(O_I(px)), GM_INT(O_I(qty)),
                     GM_INT(O_I(left)), GM_INT(O_I(filled)), GM_INT(O_I(st)),
                     GM_TEXT(O_S(why)), GM_INT(O_I(tif)), GM_INT(O_I(t))},
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
        (gm_param[]){GM_TEXT(ev), GM_TEXT(sym), GM_TEXT(F_S(who)),
                     GM_TEXT(F_S(asset)), GM_INT(F_I(amt)), GM_TEXT(F_S(why)),
                     GM_TEXT(F_S(ref)), GM_INT(F_I(t))},
        8);
  }
  if (!strcmp(e->kind, "close")) {
    char date[16];
    gm__carbon_format_date(F_I(day), date);
    return host->ledger_exec(
        tx,
        "INSERT OR REPLACE INTO carbon_closes (symbol, day, close, volume,"
        " turnover, from_trades, time_ms) VALUES (?1,?2,?3,?4,?5,?6,?7)",
        (gm_param[]){GM_TEXT(sym), GM_TEXT(date), GM_INT(F_I(close)),
                     GM_INT(F_I(vol)), GM_INT(F_I(turn)), GM_INT(F_I(from)),
                     GM_INT(F_I(t))},
        7);
  }
  if (!strcmp(e->kind, "offer")) {
    carbon__join(id, sizeof id, sym, ":", F_S(id));
    const char *trade = F_S(trade);
    snprintf(id2, sizeof id2, "%s%s%s", trade[0] ? sym : "",
             trade[0] ? ":" : "", trade);
    return host->ledger_exec(
        tx,
        "INSERT INTO carbon_offers (offer_id, symbol, offerer, counterparty,"
        " side, price, quantity, state, trade_id, updated_ms)"
        " VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10) ON CONFLICT (offer_id)"
        " DO UPDATE SET state = ?8, trade_id = ?9, updated_ms = ?10",
        (gm_param[]){GM_TEXT(id), GM_TEXT(sym), GM_TEXT(F_S(offerer)),
                     GM_TEXT(F_S(cp)), GM_TEXT(F_S(side)), GM_INT(F_I(px)),
                     GM_INT(F_I(qty)), GM_INT(F_I(st)), GM_TEXT(id2),
                     GM_INT(F_I(t))},
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
