/*
 * The ideal floor (compare.c, --ideal): the fewest Redis commands a plain
 * limit order needs with every guarantee carbon keeps (idempotency check
 * and record, the instrument's rules, the account's balance check and
 * freeze, price-time matching with self-trade prevention, the order's
 * record, the levels, the outbox entry), in the most favourable layout
 * conceivable, run with no logic at all (ideal.lua): what no Lua, however
 * cut, can go under, and what a rewrite of the layout could at best reach.
 *
 * The layout, per instrument (one hash tag {ideal:<SYM>}):
 *   h   one hash holding everything addressed by name: the rules' version
 *       "rv" (the rules themselves cached by the caller), the id counter "n",
 *       each side's best price "bb"/"ba", each account "a:<who>" (balance,
 *       frozen, position, packed), each order "o:<id>" (packed, kept after
 *       it ends for order.get), each level's quantity "l:<side>:<px>", and
 *       each idempotency record "k:<key>" (a compact reply), the day's
 *       statistics "st" (last price, volume, trades, turnover); what expires
 *       (ended orders, idempotency records) is left to a sweep off the
 *       order path and not counted;
 *   b, s  a sorted set per side, score the price (bids negated), members
 *       the fixed-width ids (equal prices keep arrival order), as bare's;
 *   w   the owners' index: a sorted set of "<who>|<id>" for every resting
 *       order, all scores 0, so one owner's orders are a lexicographic
 *       range (mass cancel, an owner's open orders, without a scan): one
 *       command adds a resting order, one removes every filled maker;
 *   x   the outbox stream, one entry per order.
 * An order's commands:
 *   HMGET h rv n <opposite best> a:<who> k:<key> l:<side>:<px>   always:
 *         rules version, id, whether it crosses, balance, idempotency
 *         check, its level;
 *   ZRANGE <opposite> 0 <k> WITHSCORES   when it crosses: the k makers it
 *         trades with and the next one (the new best price);
 *   HMGET h o:<maker> a:<maker's who> ... l:<opp>:<px> ...   when it
 *         crosses: the makers' records (self-trade check, remaining) and
 *         accounts, the levels they rest on;
 *   ZREM <opposite> <filled makers...>, ZREM w <who|id...>   when a
 *         maker is filled;
 *   ZADD <side> <score> <id>, ZADD w 0 <who|id>   when it rests;
 *   HSET h ...   always, every field written at once: the id counter, the
 *         account, the idempotency record, the order's record, its level
 *         and best price when it rests, each maker's account and record,
 *         the levels and best price it took from;
 *   XADD x * e <the order and its fills, packed>   always.
 * Which orders cross, with whom and for how much is taken from the bare
 * match's replies to the same orders (recorded on instruments of its own
 * before the rounds: the same seeded stream), so the ideal keys go through
 * the same book states as bare's and carbon's.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"

/* The plain flow's prices: mid +/- this many ticks (compare.c's
 * CMP_SPREAD). */
#define IDEAL_SPREAD 8
#define IDEAL_LEVELS (2 * IDEAL_SPREAD + 1)
#define IDEAL_MAX_ACCTS 256

typedef struct ideal_order {
  int acct;
  int64_t px, rem, qty;
} ideal_order;

typedef struct ideal_sym {
  char h[64], z[2][64], x[64]; /* z[0] bids, z[1] asks */
  char w[64];                  /* the owners' index */
  ideal_order *o;              /* by bare's id number */
  long on, ocap;
  int64_t lvl[2][IDEAL_LEVELS]; /* resting quantity per side and price */
  int64_t vol, trades;          /* the day's statistics */
} ideal_sym;

typedef struct ideal_acct {
  int64_t cash, frozen, pos;
} ideal_acct;

struct bench_ideal {
  ideal_sym sym[BENCH_CMP_SYMBOLS];
  ideal_acct acct[BENCH_CMP_SYMBOLS][IDEAL_MAX_ACCTS];
  uint64_t seq[IDEAL_MAX_ACCTS];
  /* Call i's ideal_load arguments: arg[off[i] .. off[i + 1]), each a
   * NUL-terminated string at blob + arg[j]. */
  char *blob;
  size_t len, cap;
  size_t *arg;
  size_t narg, argcap;
  size_t *off;
  int *csym; /* call i's instrument */
  long n, ncap;
  long cmds; /* commands over all calls */
  /* The call being built: where its count of commands is. */
  size_t cur_cmd;   /* arg index of the current command's count */
  size_t cur_nargs; /* its arguments so far */
};

static void ideal__put(bench_ideal *d, const char *s) {
  size_t n = strlen(s) + 1;
  if (d->len + n > d->cap) {
    size_t c = d->cap ? d->cap : 1 << 20;
    while (c < d->len + n) c *= 2;
    d->blob = realloc(d->blob, c);
    if (!d->blob) abort();
    d->cap = c;
  }
  if (d->narg == d->argcap) {
    d->argcap = d->argcap ? 2 * d->argcap : 1 << 16;
    d->arg = realloc(d->arg, d->argcap * sizeof *d->arg);
    if (!d->arg) abort();
  }
  d->arg[d->narg++] = d->len;
  memcpy(d->blob + d->len, s, n);
  d->len += n;
}

/* Starts a command: its count (filled by ideal__end), then its name. */
static void ideal__cmd(bench_ideal *d, const char *name) {
  d->cur_cmd = d->narg;
  ideal__put(d, "000");
  d->cur_nargs = 0;
  ideal__put(d, name);
  d->cur_nargs++;
  d->cmds++;
}

static void ideal__arg(bench_ideal *d, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void ideal__arg(bench_ideal *d, const char *fmt, ...) {
  char buf[256];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  ideal__put(d, buf);
  d->cur_nargs++;
}

/* The current command's argument count, in place of its "000". */
static void ideal__end(bench_ideal *d) {
  snprintf(d->blob + d->arg[d->cur_cmd], 4, "%03zu", d->cur_nargs);
}

bench_ideal *bench_ideal_new(void) {
  bench_ideal *d = calloc(1, sizeof *d);
  if (!d) abort();
  for (int s = 0; s < BENCH_CMP_SYMBOLS; s++) {
    ideal_sym *y = &d->sym[s];
    snprintf(y->h, sizeof y->h, "gm:{ideal:CMP-I-%02d}:h", s);
    snprintf(y->z[0], sizeof y->z[0], "gm:{ideal:CMP-I-%02d}:b", s);
    snprintf(y->z[1], sizeof y->z[1], "gm:{ideal:CMP-I-%02d}:s", s);
    snprintf(y->x, sizeof y->x, "gm:{ideal:CMP-I-%02d}:x", s);
    snprintf(y->w, sizeof y->w, "gm:{ideal:CMP-I-%02d}:w", s);
    for (int a = 0; a < IDEAL_MAX_ACCTS; a++)
      d->acct[s][a] = (ideal_acct){BENCH_CASH_FEN, 0, BENCH_ALLOWANCES_T};
  }
  return d;
}

static void ideal__acct(bench_ideal *d, int s, int a, char out[80]) {
  const ideal_acct *x = &d->acct[s][a];
  snprintf(out, 80, "%" PRId64 "|%" PRId64 "|%" PRId64, x->cash, x->frozen,
           x->pos);
}

static int ideal__lv(int64_t px) {
  int64_t i = px - BENCH_REF_PRICE + IDEAL_SPREAD;
  return i >= 0 && i < IDEAL_LEVELS ? (int)i : -1;
}

/* The best price of a side; 0 when empty. */
static int64_t ideal__best(const ideal_sym *y, int side) {
  for (int k = 0; k < IDEAL_LEVELS; k++) {
    int i = side == 0 ? IDEAL_LEVELS - 1 - k : k;
    if (y->lvl[side][i] > 0) return BENCH_REF_PRICE - IDEAL_SPREAD + i;
  }
  return 0;
}

int bench_ideal_note(bench_ideal *d, const bench_call *c, int sym, int buy,
                     const redisReply *rep) {
  if (sym < 0 || sym >= BENCH_CMP_SYMBOLS || c->acct < 0 ||
      c->acct >= IDEAL_MAX_ACCTS || rep->type != REDIS_REPLY_ARRAY ||
      rep->elements < 3 || (rep->elements - 3) % 3 != 0 ||
      rep->element[0]->type != REDIS_REPLY_STRING ||
      rep->element[1]->type != REDIS_REPLY_STRING)
    return -1;
  ideal_sym *y = &d->sym[sym];
  int side = !buy, opp = buy;
  int64_t px = strtoll(c->px, NULL, 10), qty = strtoll(c->qty, NULL, 10);
  const char *id = rep->element[0]->str;
  long idn = strtol(id, NULL, 16);
  char st = rep->element[1]->str[0];
  size_t nf = (rep->elements - 3) / 3;
  int lv = ideal__lv(px);
  if (lv < 0 || idn <= 0) return -1;
  char idem[48], acct[80];
  snprintf(idem, sizeof idem, "%s-k%" PRIu64, c->who, ++d->seq[c->acct]);

  if (d->n + 1 >= d->ncap) {
    d->ncap = d->ncap ? 2 * d->ncap : 1 << 14;
    d->off = realloc(d->off, (size_t)d->ncap * sizeof *d->off);
    d->csym = realloc(d->csym, (size_t)d->ncap * sizeof *d->csym);
    if (!d->off || !d->csym) abort();
  }
  if (d->n == 0) d->off[0] = 0;
  {
    char n[32];
    snprintf(n, sizeof n, "%ld", d->n);
    ideal__put(d, n); /* ideal_load's index */
  }

  /* HMGET: rules version, id, opposite best, account, idempotency, level */
  ideal__cmd(d, "HMGET");
  ideal__arg(d, "%s", y->h);
  ideal__arg(d, "rv");
  ideal__arg(d, "n");
  ideal__arg(d, "%s", buy ? "ba" : "bb");
  ideal__arg(d, "a:%s", c->who);
  ideal__arg(d, "k:%s", idem);
  ideal__arg(d, "l:%c:%" PRId64, buy ? 'b' : 's', px);
  ideal__end(d);

  /* The fills, applied to the mirror of the book. */
  int64_t got = 0, cost = 0;
  int filled_any = 0;
  if (nf > 0) {
    ideal__cmd(d, "ZRANGE");
    ideal__arg(d, "%s", y->z[opp]);
    ideal__arg(d, "0");
    ideal__arg(d, "%zu", nf);
    ideal__arg(d, "WITHSCORES");
    ideal__end(d);
    ideal__cmd(d, "HMGET");
    ideal__arg(d, "%s", y->h);
    for (size_t f = 0; f < nf; f++) {
      const char *mid = rep->element[3 + 3 * f]->str;
      long mn = strtol(mid, NULL, 16);
      if (mn <= 0 || mn >= y->on) return -1;
      ideal__arg(d, "o:%s", mid);
      ideal__arg(d, "a:acct-%04d", y->o[mn].acct);
      ideal__arg(d, "l:%c:%" PRId64, opp ? 's' : 'b', y->o[mn].px);
    }
    ideal__end(d);
    for (size_t f = 0; f < nf; f++) {
      long mn = strtol(rep->element[3 + 3 * f]->str, NULL, 16);
      if (y->o[mn].rem == rep->element[5 + 3 * f]->integer) filled_any = 1;
    }
    if (filled_any) {
      ideal__cmd(d, "ZREM");
      ideal__arg(d, "%s", y->z[opp]);
      for (size_t f = 0; f < nf; f++) {
        long mn = strtol(rep->element[3 + 3 * f]->str, NULL, 16);
        if (y->o[mn].rem == rep->element[5 + 3 * f]->integer)
          ideal__arg(d, "%s", rep->element[3 + 3 * f]->str);
      }
      ideal__end(d);
      ideal__cmd(d, "ZREM");
      ideal__arg(d, "%s", y->w);
      for (size_t f = 0; f < nf; f++) {
        long mn = strtol(rep->element[3 + 3 * f]->str, NULL, 16);
        if (y->o[mn].rem == rep->element[5 + 3 * f]->integer)
          ideal__arg(d, "acct-%04d|%s", y->o[mn].acct,
                     rep->element[3 + 3 * f]->str);
      }
      ideal__end(d);
    }
  }
  /* The order's own record, kept by bare's id. */
  if (idn >= y->ocap) {
    long cap = y->ocap ? y->ocap : 4096;
    while (cap <= idn) cap *= 2;
    y->o = realloc(y->o, (size_t)cap * sizeof *y->o);
    if (!y->o) abort();
    memset(y->o + y->ocap, 0, (size_t)(cap - y->ocap) * sizeof *y->o);
    y->ocap = cap;
  }
  if (idn >= y->on) y->on = idn + 1;
  y->o[idn] = (ideal_order){c->acct, px, 0, qty};
  if (st == 'R') {
    int64_t rem = rep->element[2]->type == REDIS_REPLY_INTEGER
                      ? rep->element[2]->integer
                      : strtoll(rep->element[2]->str, NULL, 10);
    y->o[idn].rem = rem;
    y->lvl[side][lv] += rem;
    ideal__cmd(d, "ZADD");
    ideal__arg(d, "%s", y->z[side]);
    ideal__arg(d, "%" PRId64, buy ? -px : px);
    ideal__arg(d, "%s", id);
    ideal__end(d);
    ideal__cmd(d, "ZADD");
    ideal__arg(d, "%s", y->w);
    ideal__arg(d, "0");
    ideal__arg(d, "%s|%s", c->who, id);
    ideal__end(d);
  }

  /* HSET: everything the order changed in the hash, at once. */
  ideal__cmd(d, "HSET");
  ideal__arg(d, "%s", y->h);
  ideal__arg(d, "n");
  ideal__arg(d, "%ld", idn);
  for (size_t f = 0; f < nf; f++) {
    const char *mid = rep->element[3 + 3 * f]->str;
    long mn = strtol(mid, NULL, 16);
    ideal_order *m = &y->o[mn];
    int64_t q = rep->element[5 + 3 * f]->integer;
    int64_t mpx = m->px;
    got += q;
    cost += q * mpx;
    m->rem -= q;
    int ml = ideal__lv(mpx);
    if (ml < 0) return -1;
    y->lvl[opp][ml] -= q;
    ideal_acct *ma = &d->acct[sym][m->acct];
    if (buy) { /* the maker sold: frozen allowances go, cash comes */
      ma->pos -= q;
      ma->cash += q * mpx;
    } else {
      ma->frozen -= q * mpx;
      ma->cash -= q * mpx;
      ma->pos += q;
    }
    ideal__acct(d, sym, m->acct, acct);
    ideal__arg(d, "a:acct-%04d", m->acct);
    ideal__arg(d, "%s", acct);
    ideal__arg(d, "o:%s", mid);
    ideal__arg(d, "acct-%04d|%c|%" PRId64 "|%" PRId64 "|%" PRId64, m->acct,
               opp ? 's' : 'b', mpx, m->qty, m->qty - m->rem);
    ideal__arg(d, "l:%c:%" PRId64, opp ? 's' : 'b', mpx);
    ideal__arg(d, "%" PRId64, y->lvl[opp][ml]);
  }
  if (nf > 0) { /* the new best price, the day's statistics */
    ideal__arg(d, "%s", buy ? "ba" : "bb");
    ideal__arg(d, "%" PRId64, ideal__best(y, opp));
    y->vol += got;
    y->trades += (int64_t)nf;
    ideal__arg(d, "st");
    ideal__arg(d, "%" PRId64 "|%" PRId64 "|%" PRId64 "|%" PRId64,
               y->o[strtol(rep->element[3 + 3 * (nf - 1)]->str, NULL, 16)].px,
               y->vol, y->trades, y->vol * BENCH_REF_PRICE);
  }
  ideal_acct *ta = &d->acct[sym][c->acct];
  if (buy) {
    ta->cash -= cost;
    ta->pos += got;
    ta->frozen += y->o[idn].rem * px;
  } else {
    ta->cash += cost;
    ta->pos -= qty;
  }
  ideal__acct(d, sym, c->acct, acct);
  ideal__arg(d, "a:%s", c->who);
  ideal__arg(d, "%s", acct);
  ideal__arg(d, "k:%s", idem);
  ideal__arg(d, "%s|%c|%" PRId64 "|%" PRId64 "|%" PRId64, id, st, y->o[idn].rem,
             got, cost);
  ideal__arg(d, "o:%s", id);
  ideal__arg(d, "%s|%c|%" PRId64 "|%" PRId64 "|%" PRId64, c->who,
             buy ? 'b' : 's', px, qty, got);
  if (st == 'R') {
    ideal__arg(d, "l:%c:%" PRId64, buy ? 'b' : 's', px);
    ideal__arg(d, "%" PRId64, y->lvl[side][lv]);
    ideal__arg(d, "%s", buy ? "bb" : "ba");
    ideal__arg(d, "%" PRId64, ideal__best(y, side));
  }
  ideal__end(d);

  /* XADD: one outbox entry, the order and its fills packed. */
  char ev[1024];
  int n = snprintf(ev, sizeof ev,
                   "o|%s|%s|%c|%" PRId64 "|%" PRId64 "|%c|%" PRId64 "|%s", id,
                   c->who, buy ? 'b' : 's', px, qty, st, y->o[idn].rem, idem);
  for (size_t f = 0; f < nf && n > 0 && (size_t)n < sizeof ev - 64; f++) {
    long mn = strtol(rep->element[3 + 3 * f]->str, NULL, 16);
    n += snprintf(ev + n, sizeof ev - (size_t)n,
                  "|f|%s|acct-%04d|%" PRId64 "|%lld",
                  rep->element[3 + 3 * f]->str, y->o[mn].acct, y->o[mn].px,
                  rep->element[5 + 3 * f]->integer);
  }
  ideal__cmd(d, "XADD");
  ideal__arg(d, "%s", y->x);
  ideal__arg(d, "*");
  ideal__arg(d, "e");
  ideal__arg(d, "%s", ev);
  ideal__end(d);

  d->csym[d->n] = sym;
  d->off[++d->n] = d->narg;
  return 0;
}

long bench_ideal_calls(const bench_ideal *d) {
  return d->n;
}

double bench_ideal_commands(const bench_ideal *d) {
  return d->n ? (double)d->cmds / (double)d->n : 0;
}

/* FCALL ideal_load of calls first .. first + n - 1, pipelined. */
int bench_ideal_load(bench_ideal *d, redisContext *rc, long first, long n) {
  const char **argv = NULL;
  size_t *lens = NULL, cap = 0;
  long sent = 0, done = 0;
  int rc_ = 0;
  if (first + n > d->n) return -1;
  while (done < n) {
    while (sent < n && sent - done < 256) {
      long i = first + sent;
      size_t a0 = d->off[i], na = d->off[i + 1] - a0;
      if (na + 3 > cap) {
        cap = na + 3;
        argv = realloc(argv, cap * sizeof *argv);
        lens = realloc(lens, cap * sizeof *lens);
        if (!argv || !lens) abort();
      }
      argv[0] = "FCALL";
      argv[1] = "ideal_load";
      argv[2] = "0";
      for (size_t j = 0; j < na; j++) argv[3 + j] = d->blob + d->arg[a0 + j];
      for (size_t j = 0; j < na + 3; j++) lens[j] = strlen(argv[j]);
      redisAppendCommandArgv(rc, (int)(na + 3), argv, lens);
      sent++;
    }
    redisReply *r = NULL;
    if (redisGetReply(rc, (void **)&r) != REDIS_OK || !r) {
      rc_ = -1;
      break;
    }
    if (r->type != REDIS_REPLY_INTEGER && !rc_) {
      fprintf(stderr, "carbon-bench: ideal_load: %s\n",
              r->type == REDIS_REPLY_ERROR ? r->str : "not an integer");
      rc_ = -1;
    }
    freeReplyObject(r);
    done++;
  }
  free(argv);
  free(lens);
  redisReply *r = rc_ ? NULL : redisCommand(rc, "FCALL ideal_gc 0");
  if (!rc_ && (!r || r->type != REDIS_REPLY_INTEGER)) rc_ = -1;
  if (r) freeReplyObject(r);
  return rc_;
}

void bench_ideal_build(bench_call *c, const bench_ideal *d, long i, int run) {
  int k = 0;
  const ideal_sym *y = &d->sym[i < d->n ? d->csym[i] : 0];
  static const char *const order[7] = {
      "b", "10003", "7", "acct-0001", "1772589600000", "7", "0"};
  c->argv[k++] = "FCALL";
  c->argv[k++] = run ? "ideal_run" : "ideal_empty";
  c->argv[k++] = "4";
  c->argv[k++] = y->h;
  c->argv[k++] = y->z[0];
  c->argv[k++] = y->z[1];
  c->argv[k++] = y->x;
  /* An order call's arguments: side, price, quantity, who, now, rules
   * version, IOC; the idempotency key; then (ideal_run) the index. */
  for (int j = 0; j < 7; j++) c->argv[k++] = order[j];
  snprintf(c->idem, sizeof c->idem, "acct-0001-k%ld", i + 1);
  c->argv[k++] = c->idem;
  snprintf(c->id, sizeof c->id, "%ld", i);
  c->argv[k++] = c->id;
  c->argc = k;
  for (int j = 0; j < k; j++) c->lens[j] = strlen(c->argv[j]);
  c->cancel = 0;
}

void bench_ideal_destroy(bench_ideal **dp) {
  bench_ideal *d = *dp;
  if (!d) return;
  for (int s = 0; s < BENCH_CMP_SYMBOLS; s++) free(d->sym[s].o);
  free(d->blob);
  free(d->arg);
  free(d->off);
  free(d->csym);
  free(d);
  *dp = NULL;
}
