/*
 * Records from the ledger: settled trades, statements as CSV, and
 * reconciliation of ledger totals against live holdings.
 */
#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <greenmarket/date.h>

#include "carbon.h"

typedef struct carbon__trades {
  gm_call *call;
  Gm__Carbon__TradeList *list;
  int64_t *seq; /* each listed trade's place in the settle order */
  size_t cap;
  const char *me;
  int admin;
} carbon__trades;

static void carbon__trades_init(gm_call *call, carbon__trades *t) {
  t->call = call;
  t->me = host->participant(call);
  t->admin = host->has_role(call, "admin");
  t->list = host->alloc(call, sizeof *t->list);
  gm__carbon__trade_list__init(t->list);
  t->seq = NULL;
  t->cap = 0;
}

static int carbon__trade_row(void *arg, size_t ncols, const gm_param *c) {
  carbon__trades *t = arg;
  if (ncols < 13) return 1;
  if (t->list->n_trades == t->cap) {
    size_t ncap = t->cap * 2 + 16;
    Gm__Carbon__Trade **n = host->alloc(t->call, ncap * sizeof *n);
    int64_t *s = host->alloc(t->call, ncap * sizeof *s);
    if (t->cap) {
      memcpy(n, t->list->trades, t->cap * sizeof *n);
      memcpy(s, t->seq, t->cap * sizeof *s);
    }
    t->list->trades = n;
    t->seq = s;
    t->cap = ncap;
  }
  Gm__Carbon__Trade *tr = host->alloc(t->call, sizeof *tr);
  gm__carbon__trade__init(tr);
  tr->trade_id = (char *)c[0].s;
  tr->symbol = (char *)c[1].s;
  tr->buyer = (char *)c[2].s;
  tr->seller = (char *)c[3].s;
  tr->buy_order_id = (char *)c[4].s;
  tr->sell_order_id = (char *)c[5].s;
  tr->price = c[6].i;
  tr->quantity = c[7].i;
  tr->amount = c[8].i;
  tr->maker_side = carbon__side_of(c[9].s ? c[9].s : "b");
  tr->time_ms = c[10].i;
  tr->block = c[11].i != 0;
  /* Listing trades are anonymous: only block trades (negotiated with a named
   * counterparty) and admins show who was on the other side. */
  if (!t->admin && !tr->block) {
    if (strcmp(tr->buyer, t->me)) tr->buyer = "";
    if (strcmp(tr->seller, t->me)) tr->seller = "";
  }
  t->seq[t->list->n_trades] = c[12].i;
  t->list->trades[t->list->n_trades++] = tr;
  return 0;
}

/* The trades of the caller (an admin: everyone's) in [from_ms, to_ms) of
   `sym` ("" every instrument), appended to t's list.  By time (late 0):
   those settled at or before seq `upto` (the ledger's settle order), ordered
   by (time_ms, trade_id), the first `limit` after (after_ms, after_id)
   (after_id "": from the start).  Late (late 1): those settled after seq
   `seq` and at or before `upto`, in the order they settled, the first
   `limit`. */

static gm_status carbon__query_trades(gm_call *call, const char *sym,
                                      int64_t from_ms, int64_t to_ms,
                                      int64_t after_ms, const char *after_id,
                                      int late, int64_t seq, int64_t upto,
                                      int64_t limit, carbon__trades *t) {
  /* One statement per case, each served by an index: an optional filter
     written as "(?1 = '' OR symbol = ?1)" or "(?4 OR buyer = ?5 ...)" keeps
     SQLite from using any, and every call scanned the whole table (300,000
     trades: 72 ms a call against 0.8 ms; docs/carbon.md, Records).  A
     participant's trades by the buyer and seller indexes (the symbol only
     filters them: "+" keeps the symbol index out), an instrument's by the
     symbol index.  An admin's listing of every instrument has no index by
     time alone (one would cost the settler on every trade): it walks the
     symbols the symbol index holds (s, one step per symbol, each a search
     for the next), takes each one's first ?5 trades in the range by that
     index, and sorts those: the first ?5 of all are among them (300,000
     trades: 41.8 ms a call scanning against 2.4 ms).  (Each binds all nine
     parameters: SQLite counts up to the highest number used, and an
     unused one is bound harmlessly.)  A page after a cursor starts at
     the cursor's time (?2) and skips the trades of that millisecond up to
     its trade id (?6, ?7): trades are ordered by (time_ms, trade_id), both
     fixed once settled, and trade ids are unique, so no trade of a range
     is listed on two pages or on none, however many share a millisecond.
     Without a cursor ?6 is below every time and the filter passes all.
     "+seq <= ?9" keeps the walk to the trades settled when its first page
     was read ("+": a filter, not a search of the table by its key).  The
     late statements search the table by its key, seq in (?8, ?9]: they
     read the trades settled since, of every participant, until the page
     is full or ?9, at most carbon__late_window seqs on ("+" keeps the time
     and name indexes out). */
#define CARBON__TRADES_SELECT                                             \
  "SELECT trade_id, symbol, buyer, seller, buy_order, sell_order, price," \
  " quantity, amount, maker_side, time_ms, block, seq FROM carbon_trades"
#define CARBON__TRADES_ORDER " ORDER BY time_ms, trade_id LIMIT ?5"
#define CARBON__TRADES_AFTER \
  " AND (time_ms > ?6 OR trade_id > ?7) AND +seq <= ?9"
#define CARBON__TRADES_LATE                          \
  CARBON__TRADES_SELECT                              \
  " WHERE seq > ?8 AND seq <= ?9 AND +time_ms >= ?2" \
  " AND +time_ms < ?3"
#define CARBON__TRADES_LATE_ORDER " ORDER BY seq LIMIT ?5"
  static const char own[] = CARBON__TRADES_SELECT
      " WHERE time_ms >= ?2 AND time_ms < ?3 AND (buyer = ?4 OR seller = ?4)"
      " AND (?1 = '' OR +symbol = ?1)" CARBON__TRADES_AFTER
          CARBON__TRADES_ORDER;
  static const char one[] = CARBON__TRADES_SELECT
      " WHERE symbol = ?1 AND time_ms >= ?2 AND time_ms < "
      "?3" CARBON__TRADES_AFTER CARBON__TRADES_ORDER;
  static const char all[] =
      "WITH RECURSIVE s(symbol) AS (SELECT min(symbol) FROM carbon_trades"
      " UNION ALL SELECT (SELECT min(symbol) FROM carbon_trades"
      " WHERE symbol > s.symbol) FROM s WHERE s.symbol IS NOT "
      "NULL) " CARBON__TRADES_SELECT
      " WHERE rowid IN (SELECT t.rowid FROM s, carbon_trades t"
      " WHERE t.rowid IN (SELECT rowid FROM carbon_trades"
      " WHERE symbol = s.symbol AND time_ms >= ?2 AND time_ms < "
      "?3" CARBON__TRADES_AFTER
      " ORDER BY time_ms, trade_id LIMIT ?5))" CARBON__TRADES_ORDER;
  static const char own_late[] = CARBON__TRADES_LATE
      " AND (+buyer = ?4 OR +seller = ?4) AND (?1 = '' OR +symbol = "
      "?1)" CARBON__TRADES_LATE_ORDER;
  static const char one_late[] =
      CARBON__TRADES_LATE " AND +symbol = ?1" CARBON__TRADES_LATE_ORDER;
  static const char all_late[] = CARBON__TRADES_LATE CARBON__TRADES_LATE_ORDER;
  const char *sql = !t->admin ? (late ? own_late : own)
                    : sym[0]  ? (late ? one_late : one)
                              : (late ? all_late : all);
  return host->ledger_query(
      call, sql,
      (gm_param[]){GM_TEXT(sym),
                   GM_INT(!late && after_ms > from_ms ? after_ms : from_ms),
                   GM_INT(to_ms), GM_TEXT(t->me), GM_INT(limit),
                   GM_INT(after_ms), GM_TEXT(after_id), GM_INT(seq),
                   GM_INT(upto)},
      9, carbon__trade_row, t);
}

static int carbon__int_row(void *arg, size_t ncols, const gm_param *c) {
  if (ncols < 1) return 1;
  *(int64_t *)arg = c[0].i;
  return 0;
}

/* The last seq the ledger has settled (0: none). */
static gm_status carbon__last_seq(gm_call *call, int64_t *seq) {
  return host->ledger_query(call,
                            "SELECT coalesce(max(seq), 0) FROM carbon_trades",
                            NULL, 0, carbon__int_row, seq);
}

/*
 * records.trades' cursor: "t<S>.<to>.<time_ms>.<trade id>.<seal>" while
 * the walk by time goes on (S: the last seq settled when the first page was
 * read; the last trade listed), "s<L>.<to>.<seal>" once it lists the trades
 * that settled after S, in settle order (L: the last seq listed, or S).
 * <to> is the range's end: to_ms, or the first page's "now" when to_ms is
 * 0, so later pages list the same range.  The seal, 16 hex digits, is
 * FNV-1a (64 bits) of the caller, the request's symbol, from_ms and to_ms
 * as given and the text before it.  Not a secret (the caller could list
 * those trades anyway): it tells a cursor of another query, another caller
 * or one edited by hand from one this query handed out.  Clients treat the
 * cursor as opaque.
 */
typedef struct carbon__tpos {
  int late;        /* 0: by time; 1: the trades settled after seq */
  int64_t seq;     /* S, or L */
  int64_t to_ms;   /* the range's end, exclusive */
  int64_t at_ms;   /* by time: the last trade's time (INT64_MIN: none) */
  const char *tid; /* and its id ("": none) */
} carbon__tpos;

static uint64_t carbon__fnv(uint64_t h, const char *p, size_t n) {
  for (size_t i = 0; i < n; i++)
    h = (h ^ (unsigned char)p[i]) * 0x100000001b3ULL;
  return h;
}

/* The seal of `body` (n bytes, the cursor before its seal) for this caller
   and request. */
static uint64_t carbon__trades_seal(const char *me,
                                    const Gm__Carbon__TradesRequest *in,
                                    const char *body, size_t n) {
  char nums[64];
  uint64_t h = 0xcbf29ce484222325ULL;
  int k = snprintf(nums, sizeof nums, "%lld %lld", (long long)in->from_ms,
                   (long long)in->to_ms);
  h = carbon__fnv(h, me, strlen(me) + 1);
  h = carbon__fnv(h, in->symbol, strlen(in->symbol) + 1);
  h = carbon__fnv(h, nums, (size_t)k + 1);
  return carbon__fnv(h, body, n);
}

/* The seal releases before the settle-order cursor gave
   "<time_ms>.<trade id>", to tell such a cursor apart from a mistake. */
static uint64_t carbon__trades_old_seal(const char *me,
                                        const Gm__Carbon__TradesRequest *in,
                                        int64_t at_ms, const char *tid) {
  char nums[96];
  const char *parts[] = {me, in->symbol, nums, tid};
  uint64_t h = 0xcbf29ce484222325ULL;
  snprintf(nums, sizeof nums, "%lld %lld %lld", (long long)in->from_ms,
           (long long)in->to_ms, (long long)at_ms);
  for (size_t i = 0; i < sizeof parts / sizeof *parts; i++)
    h = carbon__fnv(h, parts[i], strlen(parts[i]) + 1);
  return h;
}

/* A trade id as the ledger holds it: "<SYMBOL>:T" and 12 hex digits. */
static int carbon__valid_trade_id(const char *s) {
  const char *colon = strchr(s, ':');
  char sym[32];
  if (!colon || (size_t)(colon - s) >= sizeof sym) return 0;
  memcpy(sym, s, (size_t)(colon - s));
  sym[colon - s] = '\0';
  return gm__carbon_valid_symbol(sym) && colon[1] == 'T' &&
         strspn(colon + 2, "0123456789abcdef") == 12 && colon[14] == '\0';
}

/* A decimal (optionally negative, at most 18 digits) at *p followed by
   '.'; moves *p past the '.'.  0, or -1 when there is none. */
static int carbon__take_int(const char **p, int64_t *v) {
  const char *s = *p + (**p == '-');
  size_t nd = strspn(s, "0123456789");
  if (nd == 0 || nd > 18 || s[nd] != '.') return -1;
  *v = strtoll(*p, NULL, 10);
  *p = s + nd + 1;
  return 0;
}

/* Writes the cursor of `pos` for this request. */
static char *carbon__tpos_text(gm_call *call,
                               const Gm__Carbon__TradesRequest *in,
                               const carbon__tpos *pos) {
  char *body = pos->late
                   ? host->sprintf(call, "s%lld.%lld", (long long)pos->seq,
                                   (long long)pos->to_ms)
                   : host->sprintf(call, "t%lld.%lld.%lld.%s",
                                   (long long)pos->seq, (long long)pos->to_ms,
                                   (long long)pos->at_ms, pos->tid);
  uint64_t seal =
      carbon__trades_seal(host->participant(call), in, body, strlen(body));
  return host->sprintf(call, "%s.%016llx", body, (unsigned long long)seal);
}

/* Reads in->cursor into *pos, or fails the call saying how to go on. */
static gm_status carbon__trades_cursor(gm_call *call,
                                       const Gm__Carbon__TradesRequest *in,
                                       carbon__tpos *pos) {
  const char *text = in->cursor, *me = host->participant(call);
  const char *dot = strrchr(text, '.'), *p = text + 1;
  char shown[96];
  if (!dot || strlen(dot + 1) != 16 ||
      strspn(dot + 1, "0123456789abcdef") != 16)
    goto bad;
  uint64_t seal = strtoull(dot + 1, NULL, 16);
  if (isdigit((unsigned char)text[0])) {
    /* "<time_ms>.<trade id>.<seal>", as releases before this one wrote. */
    const char *dot1 = strchr(text, '.');
    int64_t at_ms;
    if (dot1 == dot) goto bad;
    char *id = host->sprintf(call, "%.*s", (int)(dot - dot1 - 1), dot1 + 1);
    if (carbon__take_int(&text, &at_ms) == 0 && carbon__valid_trade_id(id) &&
        seal == carbon__trades_old_seal(me, in, at_ms, id))
      return host->fail(
          call, GM_INVALID_ARGUMENT,
          "cursor \"%s\" is one an earlier release of the broker returned: "
          "its pages could miss a trade that settled after them, so it is "
          "not followed; start again from the first page without a cursor "
          "(the trades of the range are listed again, each once)",
          gm__carbon_shown(in->cursor, shown));
    goto bad;
  }
  if ((text[0] != 't' && text[0] != 's') ||
      seal != carbon__trades_seal(me, in, text, (size_t)(dot - text)))
    goto bad;
  pos->late = text[0] == 's';
  pos->at_ms = INT64_MIN;
  pos->tid = "";
  if (carbon__take_int(&p, &pos->seq) || pos->seq < 0 ||
      carbon__take_int(&p, &pos->to_ms))
    goto bad;
  if (!pos->late) {
    const char *d;
    char *id;
    if (carbon__take_int(&p, &pos->at_ms) || !(d = strchr(p, '.')) ||
        !carbon__valid_trade_id(
            id = host->sprintf(call, "%.*s", (int)(d - p), p)))
      goto bad;
    pos->tid = id;
    p = d + 1;
  }
  if (p != dot + 1) goto bad;
  return GM_OK;
bad:
  return host->fail(
      call, GM_INVALID_ARGUMENT,
      "cursor \"%s\" is not one records.trades returned for this query "
      "(the same symbol, from_ms and to_ms, as the same participant); pass "
      "next_cursor back unchanged with the query it came from, or start "
      "again from the first page without a cursor",
      gm__carbon_shown(in->cursor, shown));
}

/*
 * A page of the caller's trades in the range.  The first page notes S, the
 * last seq the ledger had settled, and the walk lists first the trades of
 * the range settled by then, ordered by time, then those that settled
 * after S, in the order they settled: a trade that settles late, dated
 * before a page already read (the settler drains each instrument's outbox
 * on its own), is listed then, once, and none is listed twice.  The last
 * page (next_cursor "") sets resume_cursor: followed later, it lists the
 * trades of the range that settled since.
 */
gm_status carbon__trades_list(gm_call *call, const ProtobufCMessage *req,
                              ProtobufCMessage **reply) {
  const Gm__Carbon__TradesRequest *in = (const Gm__Carbon__TradesRequest *)req;
  int64_t limit = in->limit ? in->limit : 100;
  carbon__tpos pos = {0, 0, 0, INT64_MIN, ""};
  carbon__trades t;
  gm_status st;
  if (in->symbol[0] && (st = carbon__need_symbol(call, in->symbol)) != GM_OK)
    return st;
  if (limit < 1 || limit > 10000)
    return host->fail(call, GM_INVALID_ARGUMENT,
                      "limit %d is out of range: a page holds 1..10000 "
                      "trades (0 or unset: 100); follow next_cursor for more",
                      (int)in->limit);
  if (in->cursor[0]) {
    if ((st = carbon__trades_cursor(call, in, &pos)) != GM_OK) return st;
  } else {
    pos.to_ms = in->to_ms ? in->to_ms : host->now_ms(host->market(call)) + 1;
    if ((st = carbon__last_seq(call, &pos.seq)) != GM_OK) return st;
  }
  carbon__trades_init(call, &t);
  /* One more than the page: a next page is there only if it is found. */
  if (!pos.late) {
    if ((st = carbon__query_trades(call, in->symbol, in->from_ms, pos.to_ms,
                                   pos.at_ms, pos.tid, 0, pos.seq, pos.seq,
                                   limit + 1, &t)) != GM_OK)
      return st;
    if ((int64_t)t.list->n_trades > limit) {
      const Gm__Carbon__Trade *last = t.list->trades[limit - 1];
      t.list->n_trades = (size_t)limit;
      pos.at_ms = last->time_ms;
      pos.tid = last->trade_id;
      t.list->next_cursor = carbon__tpos_text(call, in, &pos);
      *reply = &t.list->base;
      return GM_OK;
    }
    pos.late = 1;
  }
  /* The trades settled since: at most carbon__late_window seqs of them
     (CARBON_LATE_WINDOW, about 16 ms at 50,000 on this project's test
     machine: docs/carbon.md) read per page, whoever's they are (the statement
     searches the table's key and filters), so a cursor kept long costs each
     page a bounded read, not every trade of the market settled since.  Up to
     the last seq settled now (M), read first: a trade settled after that read
     has a larger seq (trades are never deleted, so max(seq) + 1 is the next),
     so every trade up to the bound is in what the statement sees. */
  int64_t last = 0;
  if ((st = carbon__last_seq(call, &last)) != GM_OK) return st;
  int64_t upto = pos.seq < last - carbon__late_window
                     ? pos.seq + carbon__late_window
                     : last;
  size_t by_time = t.list->n_trades;
  int64_t room = limit - (int64_t)by_time;
  if ((st = carbon__query_trades(call, in->symbol, in->from_ms, pos.to_ms,
                                 INT64_MIN, "", 1, pos.seq, upto, room + 1,
                                 &t)) != GM_OK)
    return st;
  int more = (int64_t)t.list->n_trades > limit;
  if (more) {
    t.list->n_trades = (size_t)limit;
    pos.seq = t.seq[t.list->n_trades - 1];
  } else {
    /* Every trade of the range settled up to `upto` is listed: the next
       read starts after it, however few of them were the caller's. */
    pos.seq = upto > pos.seq ? upto : pos.seq;
  }
  char *at = carbon__tpos_text(call, in, &pos);
  if (more || upto < last)
    t.list->next_cursor = at;
  else
    t.list->resume_cursor = at;
  *reply = &t.list->base;
  return GM_OK;
}

/* Parses a statement's date, failing the call with the rule it breaks. */
static gm_status carbon__need_date(gm_call *call, const char *what,
                                   const char *text, int64_t *day) {
  char shown[96];
  int y, m, d, n = 0;
  if (!gm__carbon_parse_date(text, day)) return GM_OK;
  gm__carbon_shown(text, shown);
  int shape = strlen(text) == 10 && text[4] == '-' && text[7] == '-';
  for (int i = 0; shape && i < 10; i++)
    shape = i == 4 || i == 7 || isdigit((unsigned char)text[i]);
  if (!shape || sscanf(text, "%4d-%2d-%2d%n", &y, &m, &d, &n) != 3 || text[n] ||
      n != 10)
    return host->fail(call, GM_INVALID_ARGUMENT,
                      "%s \"%s\" is not a date; write YYYY-MM-DD "
                      "(Asia/Shanghai), e.g. 2026-11-24",
                      what, shown);
  if (y < 1970)
    return host->fail(call, GM_INVALID_ARGUMENT,
                      "%s %s is before 1970-01-01; dates run from 1970-01-01 "
                      "to 9999-12-31",
                      what, shown);
  if (m < 1 || m > 12)
    return host->fail(call, GM_INVALID_ARGUMENT,
                      "%s %s does not exist (there is no month %02d)", what,
                      shown, m);
  return host->fail(call, GM_INVALID_ARGUMENT,
                    "%s %s does not exist (month %02d of %04d has no day "
                    "%02d)",
                    what, shown, m, y, d);
}

gm_status carbon__statement(gm_call *call, const ProtobufCMessage *req,
                            ProtobufCMessage **reply) {
  const Gm__Carbon__StatementRequest *in =
      (const Gm__Carbon__StatementRequest *)req;
  int64_t from, to;
  carbon__trades t;
  gm_status st;
  if (in->symbol[0] && (st = carbon__need_symbol(call, in->symbol)) != GM_OK)
    return st;
  const char *tos = in->to[0] ? in->to : in->from;
  if ((st = carbon__need_date(call, "from", in->from, &from)) != GM_OK ||
      (st = carbon__need_date(call, "to", tos, &to)) != GM_OK)
    return st;
  if (to < from)
    return host->fail(call, GM_INVALID_ARGUMENT,
                      "from %s is after to %s; give from <= to", in->from, tos);
  if (to - from > 3660)
    return host->fail(call, GM_INVALID_ARGUMENT,
                      "a statement covers at most 10 years; split the range");
  carbon__trades_init(call, &t);
  if ((st = carbon__query_trades(
           call, in->symbol, gm__carbon_day_start_ms(from),
           gm__carbon_day_start_ms(to + 1), INT64_MIN, "", 0, INT64_MAX,
           INT64_MAX, CARBON_STATEMENT_MAX + 1, &t)) != GM_OK)
    return st;
  /* A statement is for reconciling: never cut one short silently. */
  if (t.list->n_trades > CARBON_STATEMENT_MAX)
    return host->fail(call, GM_RESOURCE_EXHAUSTED,
                      "more than %d trades from %s to %s; ask for a shorter "
                      "range",
                      CARBON_STATEMENT_MAX, in->from,
                      in->to[0] ? in->to : in->from);
  /* One CSV line is under 256 bytes: ids and names are bounded. */
  size_t cap = 256 * (t.list->n_trades + 1), used = 0;
  char *csv = host->alloc(call, cap);
  const char *me = host->participant(call);
  used += (size_t)snprintf(csv, cap,
                           "trade_id,time,symbol,side,price,quantity,amount,"
                           "counterparty,order_id,kind\n");
  for (size_t i = 0; i < t.list->n_trades; i++) {
    const Gm__Carbon__Trade *tr = t.list->trades[i];
    int buy = strcmp(tr->buyer, me) == 0;
    int64_t day, in;
    gm_date_split(tr->time_ms, GM_CARBON_TZ_MS, &day, &in);
    int64_t sod = in / 1000;
    char date[16], px[32], amt[32];
    gm__carbon_format_date(day, date);
    used += (size_t)snprintf(
        csv + used, cap - used,
        "%s,%sT%02d:%02d:%02d+08:00,%s,%s,%s,%lld,%s,%s,%s,%s\n", tr->trade_id,
        date, (int)(sod / 3600), (int)(sod / 60 % 60), (int)(sod % 60),
        tr->symbol, buy ? "buy" : "sell",
        gm__carbon_format_price(tr->price, px), (long long)tr->quantity,
        gm__carbon_format_price(tr->amount, amt), buy ? tr->seller : tr->buyer,
        buy ? tr->buy_order_id : tr->sell_order_id,
        tr->block ? "block" : "listing");
    if (used >= cap) break;
  }
  Gm__Carbon__Statement *out = host->alloc(call, sizeof *out);
  gm__carbon__statement__init(out);
  out->csv = csv;
  out->rows = (int64_t)t.list->n_trades;
  *reply = &out->base;
  return GM_OK;
}

/* One account's totals: held in Redis, or settled in the ledger. */
typedef struct carbon__total {
  const char *who;
  int64_t cash, alw;
} carbon__total;

/* A growing array of totals in the call's arena. */
typedef struct carbon__totals {
  gm_call *call;
  carbon__total *t;
  size_t n, cap;
} carbon__totals;

static void carbon__totals_add(carbon__totals *s, const char *who, int64_t cash,
                               int64_t alw) {
  if (s->n == s->cap) {
    size_t ncap = s->cap * 2 + 64;
    carbon__total *t = host->alloc(s->call, ncap * sizeof *t);
    if (s->n) memcpy(t, s->t, s->n * sizeof *t);
    s->t = t, s->cap = ncap;
  }
  s->t[s->n++] = (carbon__total){who, cash, alw};
}

static int carbon__totals_cmp(const void *a, const void *b) {
  return strcmp(((const carbon__total *)a)->who,
                ((const carbon__total *)b)->who);
}

static int carbon__settled_row(void *arg, size_t ncols, const gm_param *c) {
  if (ncols < 3 || !c[0].s) return 0;
  carbon__totals_add(arg, c[0].s, c[1].i, c[2].i);
  return 0;
}

static void carbon__diff(gm_call *call, Gm__Carbon__ReconcileReply *out,
                         size_t *cap, const char *sym, const char *who,
                         Gm__Carbon__Asset asset, int64_t ledger,
                         int64_t live) {
  if (ledger == live) return;
  if (out->n_differences == *cap) {
    size_t ncap = *cap * 2 + 8;
    Gm__Carbon__Difference **n = host->alloc(call, ncap * sizeof *n);
    if (*cap) memcpy(n, out->differences, *cap * sizeof *n);
    out->differences = n;
    *cap = ncap;
  }
  Gm__Carbon__Difference *d = host->alloc(call, sizeof *d);
  gm__carbon__difference__init(d);
  d->symbol = (char *)sym;
  d->participant = (char *)who;
  d->asset = asset;
  d->ledger = ledger;
  d->live = live;
  out->differences[out->n_differences++] = d;
}

/* The outbox's length (when len is not NULL) and count of entries ever
 * added, from the {'N', ...} record of a read reply ('live' or 'outbox'). */
static void carbon__outbox_counts(const gm_value *v, int64_t *len,
                                  int64_t *added) {
  for (size_t i = 0; i < v->n; i++)
    if (carbon__tag(v, i) == 'N') {
      if (len) *len = carbon__i(&v->items[i], 1);
      *added = carbon__i(&v->items[i], 2);
    }
}

/*
 * Compares the ledger's totals per account of `sym` with Redis.  Redis is
 * read in runs of reconcile_page accounts, so no run blocks Redis for long
 * however many accounts there are.  The runs are no one snapshot, so the
 * outbox's count of entries ever added is taken with the first run and again
 * after the ledger query: entries appended in between count in unsettled
 * with those not settled at the start, and unsettled = 0 means Redis did not
 * change while it was read and the ledger had settled all of it.  The
 * host retires an outbox stream that has settled everything and stayed idle
 * (docs/operations.md); read.lua then counts what the retirement kept, and
 * the next entry makes the stream again going on from that count.  Only a
 * stream made again without it (the record expired after 30 days, or a
 * broker of an older release made it) counts from 0: a count that went
 * down says that happened between the reads, and *again asks the caller to
 * read once more (out is unchanged then).
 */
static gm_status carbon__reconcile_one(gm_call *call, const char *sym,
                                       Gm__Carbon__ReconcileReply *out,
                                       size_t *cap, int *again) {
  const char *pos = "0", *carry = "", *outbox_args[] = {"outbox"};
  const gm_value *v;
  carbon__totals live = {call, NULL, 0, 0}, led = {call, NULL, 0, 0};
  int64_t len0 = 0, added0 = 0, added1 = 0;
  gm_status st;
  /* Redis first: an entry settled between the reads then counts in
   * unsettled rather than hiding a difference. */
  for (long run = 0; !carbon__cursor_done(pos, carry); run++) {
    const char *args[] = {"live", carbon__num(call, carbon__reconcile_page),
                          pos, carry};
    int walked = 0;
    if (run == CARBON_RECONCILE_RUNS)
      return host->fail(call, GM_INTERNAL,
                        "%s's accounts did not fit in %d reads of %ld; check "
                        "the gmd log",
                        sym, CARBON_RECONCILE_RUNS, carbon__reconcile_page);
    if ((st = carbon__run(call, "read", sym, 4, args, &v)) != GM_OK) return st;
    for (size_t i = 0; i < v->n; i++) {
      const gm_value *r = &v->items[i];
      char tag = carbon__tag(v, i);
      if (tag == 'H')
        carbon__totals_add(&live, carbon__s(r, CARBON_HELD_who),
                           carbon__i(r, CARBON_HELD_cash),
                           carbon__i(r, CARBON_HELD_alw));
      else if (tag == 'C')
        pos = carbon__s(r, 1), carry = carbon__s(r, 2), walked = 1;
    }
    if (!walked)
      return host->fail(call, GM_INTERNAL,
                        "the read script returned no position for %s's "
                        "accounts; check the gmd log",
                        sym);
    if (run == 0) carbon__outbox_counts(v, &len0, &added0);
  }
  st = host->ledger_query(
      call,
      "SELECT who, sum(c), sum(a) FROM ("
      " SELECT participant AS who, CASE asset WHEN 'c' THEN amount ELSE 0 END"
      " AS c, CASE asset WHEN 'a' THEN amount ELSE 0 END AS a"
      " FROM carbon_movements WHERE symbol = ?1"
      " UNION ALL SELECT buyer, -amount, quantity FROM carbon_trades"
      " WHERE symbol = ?1"
      " UNION ALL SELECT seller, amount, -quantity FROM carbon_trades"
      " WHERE symbol = ?1) GROUP BY who",
      (gm_param[]){GM_TEXT(sym)}, 1, carbon__settled_row, &led);
  if (st != GM_OK) return st;
  if ((st = carbon__run(call, "read", sym, 1, outbox_args, &v)) != GM_OK)
    return st;
  carbon__outbox_counts(v, NULL, &added1);
  if (added1 < added0) {
    *again = 1;
    return GM_OK;
  }
  int64_t moved;
  if (__builtin_sub_overflow(added1, added0, &moved) ||
      __builtin_add_overflow(moved, len0, &moved) ||
      __builtin_add_overflow(out->unsettled, moved, &out->unsettled))
    return host->fail(call, GM_INTERNAL,
                      "%s: the outbox's counts are not numbers a stream "
                      "has (length %lld, added %lld then %lld)",
                      sym, (long long)len0, (long long)added0,
                      (long long)added1);

  /* Both sorted by participant and merged.  A walk may meet an account
   * twice (SSCAN, when the set was resized between runs): once counts. */
  if (live.n) qsort(live.t, live.n, sizeof *live.t, carbon__totals_cmp);
  if (led.n) qsort(led.t, led.n, sizeof *led.t, carbon__totals_cmp);
  size_t i = 0, k = 0;
  while (i < live.n || k < led.n) {
    if (i > 0 && i < live.n && !strcmp(live.t[i].who, live.t[i - 1].who)) {
      i++;
      continue;
    }
    int c = i == live.n  ? 1
            : k == led.n ? -1
                         : strcmp(live.t[i].who, led.t[k].who);
    const char *who = c <= 0 ? live.t[i].who : led.t[k].who;
    int64_t lc = c <= 0 ? live.t[i].cash : 0, la = c <= 0 ? live.t[i].alw : 0;
    int64_t gc = c >= 0 ? led.t[k].cash : 0, ga = c >= 0 ? led.t[k].alw : 0;
    i += c <= 0;
    k += c >= 0;
    out->accounts++;
    carbon__diff(call, out, cap, sym, who, GM__CARBON__ASSET__ASSET_CASH, gc,
                 lc);
    carbon__diff(call, out, cap, sym, who, GM__CARBON__ASSET__ASSET_ALLOWANCE,
                 ga, la);
  }
  return GM_OK;
}

gm_status carbon__reconcile(gm_call *call, const ProtobufCMessage *req,
                            ProtobufCMessage **reply) {
  const Gm__Carbon__ReconcileRequest *in =
      (const Gm__Carbon__ReconcileRequest *)req;
  const gm_value *list = NULL;
  size_t cap = 0, nsym = 1;
  gm_status st;
  if (in->symbol[0]) {
    if ((st = carbon__need_symbol(call, in->symbol)) != GM_OK) return st;
  } else {
    if ((st = carbon__registry(call, &list)) != GM_OK) return st;
    nsym = list->n;
  }
  Gm__Carbon__ReconcileReply *out = host->alloc(call, sizeof *out);
  gm__carbon__reconcile_reply__init(out);
  for (size_t k = 0; k < nsym; k++) {
    const char *sym = list ? list->items[k].str : in->symbol;
    for (int tries = 0; sym; tries++) {
      int again = 0;
      if ((st = carbon__reconcile_one(call, sym, out, &cap, &again)) != GM_OK)
        return st;
      if (!again) break;
      if (tries == 2)
        return host->fail(call, GM_UNAVAILABLE,
                          "%s's outbox was made again three times while it "
                          "was read; retry",
                          sym);
    }
  }
  *reply = &out->base;
  return GM_OK;
}
