/*
 * Carbon against a bare price-time match, on the same order stream, in the
 * same run: the baseline issue 11's targets are ratios to.
 *
 * bare.lua is the least work a Redis match can do (a zset per side, a hash
 * of resting orders, no balances, rules, idempotency or outbox).  Both
 * scripts are called the same way, from C over one connection (bare by
 * EVALSHA, carbon by FCALL of the functions gmd loaded),
 * pipelined --ceiling-depth deep; carbon's with the host's wrapper, KEYS and
 * ARGV and an idempotency key per call, as gmd calls it.  Each script has
 * its own instruments and draws the same orders from its own copy of the
 * seeded stream, so both books go through the same states (the fills
 * printed show it).  Each round runs every script in turn, forward in odd
 * rounds and backward in even ones, so all see the same machine, and the
 * ratios are the median of each round's own; a round continues the stream
 * where the script's previous round stopped.
 *
 * Flows:
 *   plain  GTC limit orders over 16 instruments, prices mid +/- 8 ticks,
 *          quantity 1-10 t; buyers and sellers are different accounts, so
 *          carbon's self-trade prevention never fires and both scripts make
 *          exactly the same trades;
 *   mix    mix.c's: resting GTC limits, crossing IOC limits (bare: its IOC
 *          flag, the remainder dropped), cancels by id (bare: its cancel);
 *          bare has no self-trade prevention, so an IOC meeting its own
 *          account's order trades there where carbon stops: the fills
 *          differ by that much;
 *   book   the plain flow over books already holding N resting orders,
 *          9-998 ticks away from the flow's prices so they stay resting, in
 *          the same rounds as the same flow over empty instruments: each
 *          script's growth is its cost over the book / over none, per round.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"

/* The plain flow's instruments, and how far from mid its prices go. */
#define CMP_SYMBOLS BENCH_CMP_SYMBOLS
#define CMP_SPREAD 8
/* Book orders: this many ticks from mid and more, up to CMP_FAR (inside the
 * +/-10% band of 1000 ticks). */
#define CMP_NEAR (CMP_SPREAD + 1)
#define CMP_FAR 998
#define CMP_MAX_ROUNDS 64
/* Scripts in one phase: bare, carbon, the floor's two, the ideal's two. */
#define CMP_MAX_SCRIPTS 6

typedef enum cmp_flow { CMP_PLAIN, CMP_MIX, CMP_BOOK_FILL } cmp_flow;

/* One script's side of a phase: its instruments and its copy of the
 * stream. */
typedef struct cmp_script {
  const char *label;  /* in the printed rows */
  int carbon;         /* 0: bare.lua, 1: carbon's place/amend, 2: floor.lua (its
                         floor), 3: floor.lua unpacking only (the floor's own),
                         4: ideal.lua's ideal_run (the ideal floor), 5: its
                         ideal_empty (one FCALL's fixed cost) */
  const char *sha[2]; /* bare: its sha twice; carbon: its functions */
  int nsym;
  bench_keys ck[CMP_SYMBOLS];  /* carbon's keys per instrument */
  char bk[CMP_SYMBOLS][3][96]; /* bare's: bids, asks, orders */
  bench_rng rng;               /* plain flow and book fill */
  bench_rng *arng;             /* mix: one stream per account */
  bench_pool *pools;           /* mix: resting ids per account */
  uint64_t *seq;               /* idempotency keys per account */
  bench_floor *floor;          /* 2, 3: the calls recorded (2's) */
  bench_ideal *ideal;          /* 0: recording (bare on CMP-I-*); 4, 5: the
                                  calls built (4's) */
  long next;                   /* 2-5: the next of them */
  long fills, errors, cancel_missed;
  char first_error[256];
} cmp_script;

static void cmp__symbol(char out[24], const char *phase, int i) {
  snprintf(out, 24, "CMP-%s-%02d", phase, i);
}

size_t bench_compare_symbols(const bench_opts *o, char (*out)[24], size_t cap) {
  size_t n = 0;
  char phase[16];
  for (int i = 0; i < CMP_SYMBOLS && n < cap; i++)
    cmp__symbol(out[n++], "E", i);
  if (n < cap) cmp__symbol(out[n++], "MIX", 0);
  for (int i = 0; o->floor && i < CMP_SYMBOLS && n < cap; i++)
    cmp__symbol(out[n++], "T", i); /* recorded for the floor (floor.c) */
  for (int b = 0; b < o->nbooks; b++)
    for (int e = 0; e < 2; e++) { /* the book's, and empty ones alongside */
      snprintf(phase, sizeof phase, "%c%d", e ? 'N' : 'B', b + 1);
      for (int i = 0; i < CMP_SYMBOLS && n < cap; i++)
        cmp__symbol(out[n++], phase, i);
    }
  return n;
}

static int cmp__init(cmp_script *s, const bench_opts *o, const char *label,
                     int carbon, const char *phase, int nsym,
                     const char *const sha[2], uint64_t stream) {
  memset(s, 0, sizeof *s);
  s->label = label;
  s->carbon = carbon;
  s->sha[0] = sha[0];
  s->sha[1] = sha[1];
  s->nsym = nsym;
  for (int i = 0; i < nsym; i++) {
    char sym[24];
    cmp__symbol(sym, phase, i);
    bench_keys_init(&s->ck[i], sym, "outbox-compare");
    snprintf(s->bk[i][0], sizeof s->bk[i][0], "bench:{bare:%s}:b", sym);
    snprintf(s->bk[i][1], sizeof s->bk[i][1], "bench:{bare:%s}:s", sym);
    snprintf(s->bk[i][2], sizeof s->bk[i][2], "bench:{bare:%s}:o", sym);
  }
  /* The same seeds for both scripts: the same orders. */
  bench_rng_seed(&s->rng, o->seed * 7919u + stream);
  s->arng = calloc((size_t)o->accounts, sizeof *s->arng);
  s->pools = calloc((size_t)o->accounts, sizeof *s->pools);
  s->seq = calloc((size_t)o->accounts, sizeof *s->seq);
  if (!s->arng || !s->pools || !s->seq) return -1;
  for (int i = 0; i < o->accounts; i++) {
    bench_rng_seed(&s->arng[i], o->seed * 1000003u + stream * 7u + (uint64_t)i);
    if (bench_pool_init(&s->pools[i])) return -1;
  }
  return 0;
}

static void cmp__free(cmp_script *s, const bench_opts *o) {
  for (int i = 0; s->pools && i < o->accounts; i++)
    bench_pool_free(&s->pools[i]);
  free(s->pools);
  free(s->arng);
  free(s->seq);
  if (s->carbon == 2) bench_floor_destroy(&s->floor);
  if (s->carbon == 4) bench_ideal_destroy(&s->ideal);
  s->floor = NULL;
  s->ideal = NULL;
  s->pools = NULL;
  s->arng = NULL;
  s->seq = NULL;
}

/* The next order of `flow`: its action, instrument and account. */
static void cmp__next(cmp_script *s, const bench_opts *o, cmp_flow flow, long i,
                      bench_action *a, int *sym, int *acct) {
  memset(a, 0, sizeof *a);
  if (flow == CMP_MIX) {
    *sym = 0;
    *acct = (int)(i % o->accounts);
    bench_mix_next(&s->arng[*acct], &s->pools[*acct], BENCH_REST_LEVELS, a);
    return;
  }
  int64_t off;
  a->kind = BENCH_REST;
  if (flow == CMP_PLAIN) {
    *sym = (int)bench_rng_below(&s->rng, (uint32_t)s->nsym);
    a->buy = bench_rng_below(&s->rng, 2) == 0;
    off = (int64_t)bench_rng_below(&s->rng, 2 * CMP_SPREAD + 1) - CMP_SPREAD;
    a->price = BENCH_REF_PRICE + off;
  } else { /* book fill: evenly over the instruments, away from the flow */
    *sym = (int)(i % s->nsym);
    a->buy = bench_rng_below(&s->rng, 2) == 0;
    off = CMP_NEAR + bench_rng_below(&s->rng, CMP_FAR - CMP_NEAR + 1);
    a->price = a->buy ? BENCH_REF_PRICE - off : BENCH_REF_PRICE + off;
  }
  a->quantity = 1 + bench_rng_below(&s->rng, 10);
  /* Buyers on even accounts, sellers on odd ones: no self-trade. */
  int pairs = o->accounts / 2 > 0 ? o->accounts / 2 : 1;
  *acct = 2 * (int)bench_rng_below(&s->rng, (uint32_t)pairs) + !a->buy;
  if (*acct >= o->accounts) *acct = 0;
}

/* The bare script's EVALSHA of `a` into c's buffers. */
static void cmp__bare_build(bench_call *c, const cmp_script *s, int sym,
                            int acct, const bench_action *a) {
  int i = 0;
  bench_account_name(acct, c->who);
  c->acct = acct;
  c->cancel = a->kind == BENCH_CANCEL;
  c->argv[i++] = "EVALSHA";
  c->argv[i++] = s->sha[0];
  c->argv[i++] = "3";
  c->argv[i++] = s->bk[sym][0];
  c->argv[i++] = s->bk[sym][1];
  c->argv[i++] = s->bk[sym][2];
  if (c->cancel) {
    snprintf(c->id, sizeof c->id, "%s", a->cancel);
    c->argv[i++] = "c";
    c->argv[i++] = c->id;
    c->argv[i++] = c->who;
  } else {
    snprintf(c->px, sizeof c->px, "%" PRId64, a->price);
    snprintf(c->qty, sizeof c->qty, "%" PRId64, a->quantity);
    c->argv[i++] = "p";
    c->argv[i++] = a->buy ? "b" : "s";
    c->argv[i++] = c->px;
    c->argv[i++] = c->qty;
    c->argv[i++] = c->who;
    c->argv[i++] = a->kind == BENCH_CROSS ? "1" : "0";
  }
  c->argc = i;
  for (int j = 0; j < i; j++) c->lens[j] = strlen(c->argv[j]);
}

static void cmp__error(cmp_script *s, const char *what) {
  if (!s->first_error[0])
    snprintf(s->first_error, sizeof s->first_error, "%s", what);
  s->errors++;
}

/* Takes one reply; `rests` is set when the order now rests (its id in
 * *id). */
static void cmp__reply(cmp_script *s, const bench_call *c,
                       const redisReply *rep, int *rests, const char **id) {
  const redisReply *body = s->carbon ? bench_reply_unwrap(rep) : rep;
  *rests = 0;
  if (s->carbon >= 2) { /* floor.lua, ideal.lua: the count of commands */
    if (rep->type != REDIS_REPLY_INTEGER)
      cmp__error(
          s, rep->type == REDIS_REPLY_ERROR ? rep->str : "a floor call failed");
    return;
  }
  if (body->type == REDIS_REPLY_ERROR) {
    if (c->cancel && strncmp(body->str, "NOT_FOUND", 9) == 0)
      s->cancel_missed++; /* a crossing order filled it first */
    else
      cmp__error(s, body->str);
    return;
  }
  if (c->cancel) return;
  if (s->carbon) {
    int state;
    long fills;
    if (bench_reply_order(rep, id, &state, &fills)) {
      cmp__error(s, "a place reply without its order record");
      return;
    }
    s->fills += fills;
    *rests = state == 1 || state == 2; /* OPEN, PARTIAL */
    return;
  }
  if (body->type != REDIS_REPLY_ARRAY || body->elements < 3 ||
      (body->elements - 3) % 3 != 0 ||
      body->element[0]->type != REDIS_REPLY_STRING ||
      body->element[1]->type != REDIS_REPLY_STRING) {
    cmp__error(s, "a bare reply that is not {id, state, left, fills...}");
    return;
  }
  s->fills += (long)(body->elements - 3) / 3;
  *id = body->element[0]->str;
  *rests = body->element[1]->str[0] == 'R';
}

/* `orders` orders of `flow` from where the script's stream stands,
 * pipelined; 0, or -1 when Redis failed. */
static int cmp__run(redisContext *rc, const bench_opts *o, cmp_script *s,
                    cmp_flow flow, long orders, bench_call *ring) {
  int depth = o->ceiling_depth;
  long sent = 0, done = 0;
  while (done < orders) {
    while (sent < orders && sent - done < depth) {
      bench_call *c = &ring[sent % depth];
      bench_action a;
      int sym, acct;
      cmp__next(s, o, flow, sent, &a, &sym, &acct);
      if (!s->carbon) {
        cmp__bare_build(c, s, sym, acct, &a);
      } else if (s->carbon >= 4) {
        bench_ideal_build(c, s->ideal, s->next++, s->carbon == 4);
      } else if (s->carbon >= 2) {
        bench_floor_build(c, s->floor, s->sha[0], s->next++, s->carbon == 2);
      } else {
        char idem[48], who[16];
        int cancel = a.kind == BENCH_CANCEL;
        bench_account_name(acct, who);
        snprintf(idem, sizeof idem, "%s-k%" PRIu64, who, ++s->seq[acct]);
        /* The book fill has no idempotency key: its records would be
         * counted as the book's memory. */
        bench_call_build(c, &s->ck[sym], s->sha[cancel],
                         cancel ? "amend" : "place", acct,
                         flow == CMP_BOOK_FILL ? NULL : idem, &a);
      }
      c->sym = sym;
      c->buy = a.buy;
      redisAppendCommandArgv(rc, c->argc, c->argv, c->lens);
      sent++;
    }
    redisReply *rep = NULL;
    if (redisGetReply(rc, (void **)&rep) != REDIS_OK || !rep) {
      fprintf(stderr, "carbon-bench: Redis connection failed: %s\n",
              rc->errstr);
      return -1;
    }
    bench_call *c = &ring[done % depth];
    const char *id = NULL;
    int rests;
    cmp__reply(s, c, rep, &rests, &id);
    if (!s->carbon && s->ideal &&
        bench_ideal_note(s->ideal, c, c->sym, c->buy, rep))
      cmp__error(s, "ideal: a bare reply not understood");
    if (flow == CMP_BOOK_FILL && !c->cancel && !rests)
      cmp__error(s, "a book order did not rest");
    if (flow == CMP_MIX && rests)
      bench_pool_add(&s->pools[c->acct], &s->arng[c->acct], id);
    freeReplyObject(rep);
    done++;
  }
  return 0;
}

/* Resting orders in the script's books (ZCARD of both sides). */
static long long cmp__resting(redisContext *rc, const cmp_script *s) {
  long long n = 0;
  for (int i = 0; i < s->nsym; i++)
    for (int side = 0; side < 2; side++) {
      redisReply *r;
      if (s->carbon)
        r = redisCommand(rc, "ZCARD gm:{%s}:bz:%s", s->ck[i].tag,
                         side ? "s" : "b");
      else
        r = redisCommand(rc, "ZCARD %s", s->bk[i][side]);
      if (r && r->type == REDIS_REPLY_INTEGER) n += r->integer;
      if (r) freeReplyObject(r);
    }
  return n;
}

/* Carbon's outbox entries: nobody drains them; dropped between rounds so
 * they do not count as the book's memory. */
static void cmp__drop_outbox(redisContext *rc, const cmp_script *s) {
  for (int i = 0; s->carbon && i < s->nsym; i++) {
    redisReply *r = redisCommand(rc, "DEL %s", s->ck[i].outbox);
    if (r) freeReplyObject(r);
  }
}

static int cmp__cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static double cmp__median(const double *v, int n) {
  double t[CMP_MAX_ROUNDS];
  if (n <= 0) return -1;
  memcpy(t, v, (size_t)n * sizeof *t);
  qsort(t, (size_t)n, sizeof *t, cmp__cmp_double);
  return n % 2 ? t[n / 2] : (t[n / 2 - 1] + t[n / 2]) / 2;
}

/* What the rounds measured: per script k and round r. */
typedef struct cmp_rounds {
  double cpu[CMP_MAX_SCRIPTS][CMP_MAX_ROUNDS];  /* Redis CPU us/order; or
                                                  EVALSHA us/call when
                                                  redis-server's pid is
                                                  unknown */
  double evl[CMP_MAX_SCRIPTS][CMP_MAX_ROUNDS];  /* EVALSHA us/call */
  double cmds[CMP_MAX_SCRIPTS][CMP_MAX_ROUNDS]; /* Redis commands per order */
  double med[CMP_MAX_SCRIPTS];                  /* median of cpu */
  int have_cpu;
} cmp_rounds;

/* Script b's cost over script a's, per round: their median and range. */
static double cmp__ratio(const cmp_rounds *m, int rounds, int a, int b,
                         double *lo, double *hi) {
  double q[CMP_MAX_ROUNDS];
  for (int r = 0; r < rounds; r++) {
    q[r] = m->cpu[a][r] > 0 ? m->cpu[b][r] / m->cpu[a][r] : 0;
    if (r == 0 || q[r] < *lo) *lo = q[r];
    if (r == 0 || q[r] > *hi) *hi = q[r];
  }
  return cmp__median(q, rounds);
}

/* Empties ideal.lua's loaded calls after a round of ideal_run. */
static void cmp__ideal_clear(redisContext *rc, cmp_script *s) {
  redisReply *r = redisCommand(rc, "FCALL ideal_clear 0");
  if (!r || r->type != REDIS_REPLY_INTEGER) cmp__error(s, "ideal_clear failed");
  if (r) freeReplyObject(r);
  /* Its outbox entries: nobody drains them (as carbon's). */
  for (int i = 0; i < CMP_SYMBOLS; i++) {
    r = redisCommand(rc, "DEL gm:{ideal:CMP-I-%02d}:x", i);
    if (r) freeReplyObject(r);
  }
}

/* With GM_BENCH_CALLGRIND_DUMPS set (run: GM_BENCH_CALLGRIND), tells the
 * callgrind under redis-server to zero its counts (label NULL) or to dump
 * them under `label`, so each script's round has a count of its own. */
static void cmp__callgrind(const bench_opts *o, const char *label) {
  char cmd[256];
  if (!getenv("GM_BENCH_CALLGRIND_DUMPS") || o->redis_pid <= 0) return;
  if (label)
    snprintf(cmd, sizeof cmd, "callgrind_control -d '%s' %ld >/dev/null 2>&1",
             label, o->redis_pid);
  else
    snprintf(cmd, sizeof cmd, "callgrind_control -z %ld >/dev/null 2>&1",
             o->redis_pid);
  if (system(cmd) != 0) fprintf(stderr, "carbon-bench: %s failed\n", cmd);
}

/* Rounds of `flow` over the ns scripts in s (2: bare, carbon; 4: the same
 * over an empty book, then over a full one), each round running every
 * script in turn, forward in odd rounds and backward in even ones so all
 * see the same machine; prints a line per round and script. */
static int cmp__rounds(redisContext *rc, const bench_opts *o, cmp_script *s,
                       int ns, cmp_flow flow, bench_call *ring, cmp_rounds *m) {
  memset(m, 0, sizeof *m);
  m->have_cpu = 1;
  printf("    %-16s %9s %9s %6s %8s %7s %9s\n", "", "Redis CPU", "us/call",
         "cmds", "orders/s", "fills", "book");
  printf("    %-16s %9s %9s %6s %8s %7s %9s\n", "", "per order", "per call",
         "/order", "", "", "at start");
  for (int r = 0; r < o->rounds; r++) {
    for (int turn = 0; turn < ns; turn++) {
      int k = r % 2 == 0 ? turn : ns - 1 - turn;
      cmp_script *sc = &s[k];
      long fills0 = sc->fills;
      long long book = cmp__resting(rc, sc);
      bench_probe p0, p1;
      bench_cost c;
      if (sc->carbon == 4 &&
          bench_ideal_load(sc->ideal, rc, sc->next, o->compare_orders))
        return -1;
      if (bench_probe_take(rc, o, &p0)) return -1;
      cmp__callgrind(o, NULL);
      if (cmp__run(rc, o, sc, flow, o->compare_orders, ring)) return -1;
      char label[64];
      snprintf(label, sizeof label, "%s-round%d", sc->label, r + 1);
      cmp__callgrind(o, label);
      if (bench_probe_take(rc, o, &p1)) return -1;
      cmp__drop_outbox(rc, sc);
      if (sc->carbon == 4) cmp__ideal_clear(rc, sc);
      bench_probe_cost(&p0, &p1, &c);
      double n = (double)o->compare_orders;
      if (c.cpu_redis_s < 0) m->have_cpu = 0;
      m->evl[k][r] =
          c.script_calls ? (double)c.script_usec / (double)c.script_calls : 0;
      m->cpu[k][r] = c.cpu_redis_s < 0 ? m->evl[k][r] : 1e6 * c.cpu_redis_s / n;
      /* As issue 11 counts them: the EVALSHA and what the script ran. */
      m->cmds[k][r] = (double)(c.data_calls + c.script_calls) / n;
      printf("    round %d %-8s %6.1f us %6.1f us %6.1f %8.0f %7ld %9lld\n",
             r + 1, sc->label, m->cpu[k][r], m->evl[k][r], m->cmds[k][r],
             c.wall_s > 0 ? n / c.wall_s : 0, sc->fills - fills0, book);
      fflush(stdout);
    }
  }
  int bad = 0;
  for (int k = 0; k < ns; k++) {
    m->med[k] = cmp__median(m->cpu[k], o->rounds);
    if (s[k].errors || s[k].cancel_missed)
      printf(
          "    %s: %ld unexpected errors%s%s; %ld cancels found their "
          "order filled\n",
          s[k].label, s[k].errors, s[k].errors ? ", first: " : "",
          s[k].first_error, s[k].cancel_missed);
    bad |= s[k].errors != 0;
  }
  for (int k = 0; k + 1 < ns && s[k].carbon < 2; k += 2) {
    double lo = 0, hi = 0, q = cmp__ratio(m, o->rounds, k, k + 1, &lo, &hi);
    printf(
        "    median %s: %s %.1f us, %s %.1f us (script call %.1f / %.1f us, "
        "%.1f / %.1f Redis commands/order with the script call)\n"
        "    %s / %s = %.2f (median of the rounds' ratios; per round "
        "%.2f-%.2f; target <= 1.5: %s)\n",
        m->have_cpu ? "Redis CPU per order"
                    : "script call time per order (no CPU: pass --redis-pid)",
        s[k].label, m->med[k], s[k + 1].label, m->med[k + 1],
        cmp__median(m->evl[k], o->rounds),
        cmp__median(m->evl[k + 1], o->rounds),
        cmp__median(m->cmds[k], o->rounds),
        cmp__median(m->cmds[k + 1], o->rounds), s[k + 1].label, s[k].label, q,
        lo, hi, q <= 1.5 ? "met" : "NOT met");
  }
  return bad ? -1 : 0;
}

/* The ideal floor (--ideal, ideal.c): bare on instruments of its own (I),
 * the same orders as the plain flow, all rounds' worth, each order's
 * ideal commands built from its reply; s[0] becomes ideal.lua's
 * ideal_run of them on the ideal layout's keys, s[1] its ideal_empty. */
static int cmp__ideal_record(redisContext *rc, const bench_opts *o,
                             cmp_script *s, const char *const bare_sha[2],
                             bench_call *ring) {
  static const char *const none[2] = {"", ""};
  redisReply *r = redisCommand(rc, "FUNCTION LOAD REPLACE %s", bench_lua_ideal);
  int ok = r && r->type == REDIS_REPLY_STRING;
  if (!ok)
    fprintf(stderr, "carbon-bench: FUNCTION LOAD of ideal.lua failed: %s\n",
            r && r->type == REDIS_REPLY_ERROR ? r->str : "no reply");
  if (r) freeReplyObject(r);
  if (!ok || cmp__init(s, o, "record", 0, "I", CMP_SYMBOLS, bare_sha, 1))
    return -1;
  /* Each instrument's hash a hash table from its creation, as carbon's
   * instrument and order hashes are (a value over hash-max-listpack-value):
   * a listpack would be searched field by field. */
  for (int i = 0; i < CMP_SYMBOLS; i++) {
    r = redisCommand(rc, "HSET gm:{ideal:CMP-I-%02d}:h pad %080d", i, 0);
    ok = r && r->type == REDIS_REPLY_INTEGER;
    if (r) freeReplyObject(r);
    if (!ok) return -1;
  }
  bench_ideal *d = bench_ideal_new();
  s->ideal = d;
  for (int i = 0; i < o->rounds; i++)
    if (cmp__run(rc, o, s, CMP_PLAIN, o->compare_orders, ring)) {
      bench_ideal_destroy(&d);
      return -1;
    }
  if (s->errors || bench_ideal_calls(d) != o->rounds * o->compare_orders) {
    fprintf(stderr, "carbon-bench: ideal: %ld calls built of %ld (%s)\n",
            bench_ideal_calls(d), o->rounds * o->compare_orders,
            s->first_error);
    bench_ideal_destroy(&d);
    return -1;
  }
  s->ideal = NULL;
  cmp__free(s, o);
  if (cmp__init(&s[0], o, "ideal", 4, "I", CMP_SYMBOLS, none, 1) ||
      cmp__init(&s[1], o, "fcall", 5, "I", CMP_SYMBOLS, none, 1)) {
    bench_ideal_destroy(&d);
    return -1;
  }
  s[0].ideal = d;
  s[1].ideal = d;
  return 0;
}

/* The ideal floor's line: s[k] ideal_run, s[k + 1] ideal_empty, against
 * bare (0) and carbon (1) in the same rounds. */
static void cmp__ideal_print(const cmp_rounds *m, const bench_opts *o,
                             const cmp_script *s, int k) {
  double lo = 0, hi = 0, elo = 0, ehi = 0, clo = 0, chi = 0;
  double q = cmp__ratio(m, o->rounds, 0, k, &lo, &hi);
  double e = cmp__ratio(m, o->rounds, 0, k + 1, &elo, &ehi);
  double c = cmp__ratio(m, o->rounds, k, 1, &clo, &chi);
  printf(
      "    ideal floor (the fewest commands an order needs, no logic: "
      "ideal.lua): %.1f us, %.2f commands/order inside the FCALL; ideal / "
      "bare = %.2f (per round %.2f-%.2f), carbon / ideal = %.2f "
      "(%.2f-%.2f); an empty FCALL of the same arguments %.1f us, %.2f of "
      "bare (%.2f-%.2f)\n",
      m->med[k], bench_ideal_commands(s[k].ideal), q, lo, hi, c, clo, chi,
      m->med[k + 1], e, elo, ehi);
}

/* Fills both scripts' books with `n` resting orders and prints Redis
 * memory per order of each. */
static int cmp__fill(redisContext *rc, const bench_opts *o, cmp_script s[2],
                     long n, bench_call *ring, double bytes[2]) {
  printf(
      "    book: %ld resting orders per script, %ld per instrument, %d-%d "
      "ticks from the flow's mid:",
      n, n / CMP_SYMBOLS, CMP_NEAR, CMP_FAR);
  for (int k = 0; k < 2; k++) {
    long long before = bench_info_field(rc, "memory", "used_memory");
    uint64_t t0 = bench_now_us();
    if (cmp__run(rc, o, &s[k], CMP_BOOK_FILL, n, ring)) return -1;
    double secs = (double)(bench_now_us() - t0) / 1e6;
    cmp__drop_outbox(rc, &s[k]);
    long long after = bench_info_field(rc, "memory", "used_memory");
    bytes[k] =
        before < 0 || after < 0 ? -1 : (double)(after - before) / (double)n;
    printf(" %s %.1f s, %.0f bytes/order;", s[k].label, secs, bytes[k]);
    if (s[k].errors) {
      printf("\n    %s: %ld orders did not rest, first: %s\n", s[k].label,
             s[k].errors, s[k].first_error);
      return -1;
    }
  }
  printf("\n");
  return 0;
}

/* The floor (--floor, floor.c): carbon's place on instruments of its own
 * (T), the same orders as carbon's plain flow, all rounds' worth, its
 * commands recorded; s[1] becomes the floor that replays them on a copy
 * of T's keys (F) in the rounds, s[0] the same calls only unpacked. */
static int cmp__floor_record(redisContext *rc, const bench_opts *o,
                             cmp_script *s, const char *place,
                             bench_call *ring) {
  static char sha[41];
  const char *place_sha[2] = {place, place}, *floor_sha[2] = {sha, sha};
  redisReply *r = redisCommand(rc, "SCRIPT LOAD %s", bench_lua_floor);
  int ok = r && r->type == REDIS_REPLY_STRING && r->len == 40;
  if (ok) memcpy(sha, r->str, 41);
  if (r) freeReplyObject(r);
  if (!ok || cmp__init(s, o, "trace", 1, "T", CMP_SYMBOLS, place_sha, 1))
    return -1;
  memset(&s[1], 0, sizeof s[1]);
  char from[24], to[24];
  cmp__symbol(from, "T", 0);
  cmp__symbol(to, "F", 0);
  from[strlen(from) - 2] = to[strlen(to) - 2] = '\0'; /* CMP-T-, CMP-F- */
  bench_floor *f = bench_floor_start(o, rc, from, to, place);
  if (!f) return -1;
  for (int i = 0; i < o->rounds; i++)
    if (cmp__run(rc, o, s, CMP_PLAIN, o->compare_orders, ring)) {
      bench_floor_destroy(&f);
      return -1;
    }
  if (bench_floor_stop(f, rc) ||
      bench_floor_calls(f) != o->rounds * o->compare_orders || s->errors) {
    fprintf(stderr,
            "carbon-bench: floor: %ld calls recorded of %ld (%ld errors)\n",
            bench_floor_calls(f), o->rounds * o->compare_orders, s->errors);
    bench_floor_destroy(&f);
    return -1;
  }
  cmp__free(s, o);
  if (cmp__init(&s[1], o, "floor", 2, "F", CMP_SYMBOLS, floor_sha, 1)) {
    bench_floor_destroy(&f);
    return -1;
  }
  s[1].floor = f;
  if (cmp__init(&s[0], o, "unpack", 3, "F", CMP_SYMBOLS, floor_sha, 1))
    return -1;
  s[0].floor = f;
  return 0;
}

/* The floor's line: each round's floor less its own unpacking (script 2
 * of m), against bare (0) and carbon (1) in the same round. */
static void cmp__floor_print(const cmp_rounds *m, const bench_opts *o) {
  cmp_rounds n = *m;
  for (int r = 0; r < o->rounds; r++) n.cpu[2][r] = m->cpu[3][r] - m->cpu[2][r];
  double lo = 0, hi = 0, flo = 0, fhi = 0;
  double q = cmp__ratio(&n, o->rounds, 0, 2, &lo, &hi);
  double c = cmp__ratio(&n, o->rounds, 2, 1, &flo, &fhi);
  printf(
      "    floor (carbon's commands alone, floor.lua): %.1f us less %.1f "
      "us of its own unpacking, %.1f commands/order; floor / bare = %.2f "
      "(per round %.2f-%.2f), carbon / floor = %.2f (%.2f-%.2f)\n",
      m->med[3], m->med[2], cmp__median(m->cmds[3], o->rounds), q, lo, hi, c,
      flo, fhi);
}

int bench_compare_run(const bench_opts *o, redisContext *rc,
                      bench_compare *res) {
  char place[BENCH_FN_MAX], amend[BENCH_FN_MAX], bare[41];
  bench_call *ring = calloc((size_t)o->ceiling_depth, sizeof *ring);
  cmp_script s[CMP_MAX_SCRIPTS];
  cmp_rounds m;
  int rc_ = -1;
  memset(s, 0, sizeof s);
  if (!ring || o->rounds > CMP_MAX_ROUNDS) goto out;
  if (bench_carbon_fn(rc, "place", bench_lua_place, place) ||
      bench_carbon_fn(rc, "amend", bench_lua_amend, amend))
    goto out;
  redisReply *r = redisCommand(rc, "SCRIPT LOAD %s", bench_lua_bare);
  if (!r || r->type != REDIS_REPLY_STRING || r->len != 40) {
    fprintf(stderr, "carbon-bench: SCRIPT LOAD of bare.lua failed: %s\n",
            r && r->type == REDIS_REPLY_ERROR ? r->str : "no reply");
    if (r) freeReplyObject(r);
    goto out;
  }
  memcpy(bare, r->str, 41);
  freeReplyObject(r);
  const char *bare_sha[2] = {bare, bare}, *carbon_sha[2] = {place, amend};

  printf(
      "\nCarbon against a bare price-time match (plugins/carbon/bench/"
      "bare.lua: no balances, rules, idempotency or outbox), the same "
      "seeded orders, EVALSHA (bare) / FCALL (carbon) from C, 1 connection, "
      "pipeline depth %d, %d "
      "rounds of %ld orders per script, the scripts in turn within each "
      "round; Redis CPU from /proc, script call time and commands from INFO "
      "commandstats:\n",
      o->ceiling_depth, o->rounds, o->compare_orders);

  printf(
      "  plain GTC limit flow, %d instruments, prices mid +/- %d ticks, "
      "1-10 t, empty at the first round:\n",
      CMP_SYMBOLS, CMP_SPREAD);
  int ki = o->floor ? 4 : 2; /* the ideal floor's scripts */
  if (cmp__init(&s[0], o, "bare", 0, "E", CMP_SYMBOLS, bare_sha, 1) ||
      cmp__init(&s[1], o, "carbon", 1, "E", CMP_SYMBOLS, carbon_sha, 1) ||
      (o->floor && cmp__floor_record(rc, o, &s[2], place, ring)) ||
      (o->ideal && cmp__ideal_record(rc, o, &s[ki], bare_sha, ring)) ||
      cmp__rounds(rc, o, s, ki + (o->ideal ? 2 : 0), CMP_PLAIN, ring, &m))
    goto out;
  double lo, hi;
  if (o->floor) cmp__floor_print(&m, o);
  if (o->ideal) cmp__ideal_print(&m, o, s, ki);
  res->plain[0] = m.med[0];
  res->plain[1] = m.med[1];
  res->plain_ratio = cmp__ratio(&m, o->rounds, 0, 1, &lo, &hi);
  for (int k = 0; k < CMP_MAX_SCRIPTS; k++) cmp__free(&s[k], o);

  if (o->plain_only) {
    rc_ = 0;
    goto out;
  }
  printf(
      "  the standard mix (60%% resting GTC, 25%% crossing IOC: bare drops "
      "the remainder; 15%% cancels by id), 1 instrument, %d accounts:\n",
      o->accounts);
  if (cmp__init(&s[0], o, "bare", 0, "MIX", 1, bare_sha, 2) ||
      cmp__init(&s[1], o, "carbon", 1, "MIX", 1, carbon_sha, 2) ||
      cmp__rounds(rc, o, s, 2, CMP_MIX, ring, &m))
    goto out;
  res->mix[0] = m.med[0];
  res->mix[1] = m.med[1];
  res->mix_ratio = cmp__ratio(&m, o->rounds, 0, 1, &lo, &hi);
  for (int k = 0; k < 2; k++) cmp__free(&s[k], o);

  for (int b = 0; b < o->nbooks; b++) {
    char book[16], empty[16];
    snprintf(book, sizeof book, "B%d", b + 1);
    snprintf(empty, sizeof empty, "N%d", b + 1);
    printf(
        "  plain flow over a book of %ld resting orders, in the same rounds "
        "as over empty instruments (the same orders as above):\n",
        o->books[b]);
    /* All four draw the plain flow's stream; the book's orders come from a
     * stream of their own. */
    if (cmp__init(&s[0], o, "bare", 0, empty, CMP_SYMBOLS, bare_sha, 1) ||
        cmp__init(&s[1], o, "carbon", 1, empty, CMP_SYMBOLS, carbon_sha, 1) ||
        cmp__init(&s[2], o, "bare+bk", 0, book, CMP_SYMBOLS, bare_sha, 1) ||
        cmp__init(&s[3], o, "carbon+bk", 1, book, CMP_SYMBOLS, carbon_sha, 1))
      goto out;
    bench_rng_seed(&s[2].rng, o->seed * 7919u + 10 + (uint64_t)b);
    bench_rng_seed(&s[3].rng, o->seed * 7919u + 10 + (uint64_t)b);
    if (cmp__fill(rc, o, &s[2], o->books[b], ring, res->book_bytes[b]))
      goto out;
    bench_rng_seed(&s[2].rng, o->seed * 7919u + 1);
    bench_rng_seed(&s[3].rng, o->seed * 7919u + 1);
    if (cmp__rounds(rc, o, s, 4, CMP_PLAIN, ring, &m)) goto out;
    res->book[b][0] = m.med[2];
    res->book[b][1] = m.med[3];
    res->book_ratio[b] = cmp__ratio(&m, o->rounds, 2, 3, &lo, &hi);
    printf("    growth with the book, per round (book / empty, same round):");
    for (int k = 0; k < 2; k++) {
      double glo = 0, ghi = 0;
      res->growth[b][k] = cmp__ratio(&m, o->rounds, k, k + 2, &glo, &ghi);
      printf(" %s %.2fx (%.2f-%.2f)%s", s[k].label, res->growth[b][k], glo, ghi,
             k ? "\n" : ",");
    }
    printf("    target: carbon grows no more than bare: %s\n",
           res->growth[b][1] <= res->growth[b][0] ? "met" : "NOT met");
    for (int k = 0; k < 4; k++) cmp__free(&s[k], o);
  }
  rc_ = 0;
out:
  for (int k = 0; k < CMP_MAX_SCRIPTS; k++) cmp__free(&s[k], o);
  free(ring);
  return rc_;
}
