/*
 * End to end: orders through libgmclient -> gmd -> Redis -> settlement.
 *
 * Every account is a participant with its own connection (a gm_client, as
 * a real trader has).  A few load threads (--threads) each drive a share of
 * the connections: pipelined gm_client_send(), gm_client_poll() for the
 * connections with replies waiting, gm_client_recv() to take them.  (One
 * thread per connection, as before gm_client_poll existed, spent more CPU
 * on thread wake-ups than the bench's own work, on the two cores gmd and
 * Redis also use.)  A phase ends when the SQLite ledger holds a trade row
 * for every fill the replies reported.
 */
#include <errno.h>
#include <stdarg.h>
#include <inttypes.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>

#include "bench.h"
#include "carbon.pb-c.h"
#include "greenmarket.pb-c.h"

/* Requests one connection may have in flight: a slot per request id. */
#define BENCH_PEND_CAP 4096
/* No reply at all for this long: gmd is stuck or gone. */
#define BENCH_STALL_US (20 * 1000000u)
/* Paced: closer than this to the next send, poll instead of blocking
 * (gm_client_recv waits in whole milliseconds). */
#define BENCH_POLL_US 1000

typedef struct bench_pend {
  uint64_t id;   /* request id; 0: free */
  uint64_t t_us; /* when it was sent, or scheduled (paced) */
  int cancel;    /* order.cancel rather than order.place */
} bench_pend;

typedef struct bench_acct {
  gm_client *c;     /* this participant's connection */
  char name[16];    /* participant id */
  bench_pool pool;  /* own resting orders, for cancels */
  bench_rng rng;    /* this account's share of the mix */
  uint64_t seq;     /* idempotency keys: <name>-<seq> */
  int inflight;     /* requests without a reply */
  bench_pend *pend; /* BENCH_PEND_CAP slots, by request id */
} bench_acct;

struct bench_e2e {
  const bench_opts *o;
  gm_client *admin; /* setup calls and gm.stats */
  bench_acct *accts;
  int n;
};

/* One account's share of a phase. */
typedef struct bench_lane {
  bench_acct *a; /* its account and connection */
  long quota;    /* orders to send */
  long sent;
  double interval;   /* paced: us between its orders; 0: saturating */
  uint64_t start_us; /* paced: its schedule's origin */
} bench_lane;

/* One load thread in a phase: its lanes and what it saw. */
typedef struct bench_thread {
  bench_e2e *e;
  const char *symbol;
  bench_lane *lanes; /* the accounts this thread drives */
  gm_client **conns; /* their connections, for gm_client_poll */
  unsigned char *ready;
  int n_lanes;
  uint64_t first_us; /* first send */
  uint64_t last_us;  /* last reply */
  bench_result r;
  char error[512]; /* the first unexpected status, or why the thread quit */
  int failed;
} bench_thread;

void bench_account_name(int i, char out[16]) {
  snprintf(out, 16, "acct-%04d", i);
}

static gm_client *bench__client(const char *endpoint, const char *who) {
  gm_client_options co;
  gm_client_options_init(&co);
  co.dev_participant = who;
  co.timeout_ms = 10000;
  gm_client *c = gm_client_new(endpoint, &co);
  if (!c) fprintf(stderr, "carbon-bench: %s\n", gm_client_last_error());
  return c;
}

/* An admin call that must succeed; prints the broker's reason when not. */
static int bench__admin(bench_e2e *e, const char *market, const char *method,
                        const char *idem, const ProtobufCMessage *req) {
  gm_result res;
  gm_status st =
      gm_client_call(e->admin, market, method, idem, req, NULL, &res);
  if (st != GM_OK)
    fprintf(stderr, "carbon-bench: %s.%s failed: %s %s\n", market, method,
            gm_status_name(st), res.message ? res.message : "");
  gm_result_clear(&res);
  return st == GM_OK ? 0 : -1;
}

/* Funds every account in `symbol`: pipelined admin deposits. */
static int bench__fund(bench_e2e *e, const char *symbol) {
  long total = (long)e->n * 2, sent = 0, done = 0;
  while (done < total) {
    while (sent < total && sent - done < 64) {
      Gm__Carbon__MoveRequest m = GM__CARBON__MOVE_REQUEST__INIT;
      uint8_t body[256];
      char idem[64];
      int cash = sent % 2 == 0;
      m.participant = e->accts[sent / 2].name;
      m.symbol = (char *)symbol;
      m.asset = cash ? GM__CARBON__ASSET__ASSET_CASH
                     : GM__CARBON__ASSET__ASSET_ALLOWANCE;
      m.amount = cash ? BENCH_CASH_FEN : BENCH_ALLOWANCES_T;
      m.reference = "bench funding";
      size_t len = gm__carbon__move_request__pack(&m, body);
      snprintf(idem, sizeof idem, "fund-%s-%ld", symbol, sent);
      if (gm_client_send(e->admin, "carbon", "account.deposit", idem, body, len,
                         NULL) != GM_OK)
        break;
      sent++;
    }
    gm_result res;
    gm_status st = gm_client_recv(e->admin, 10000, NULL, &res);
    if (st != GM_OK) {
      fprintf(stderr, "carbon-bench: funding accounts in %s: %s %s\n", symbol,
              gm_status_name(st), res.message ? res.message : "");
      gm_result_clear(&res);
      return -1;
    }
    gm_result_clear(&res);
    done++;
  }
  return 0;
}

bench_e2e *bench_e2e_new(const bench_opts *o, const char *const *symbols,
                         size_t nsymbols) {
  bench_e2e *e = calloc(1, sizeof *e);
  if (!e) return NULL;
  e->o = o;
  e->admin = bench__client(o->endpoint, "bench-admin");
  e->accts = calloc((size_t)o->accounts, sizeof *e->accts);
  if (!e->admin || !e->accts) goto fail;
  for (int i = 0; i < o->accounts; i++) {
    bench_acct *a = &e->accts[i];
    bench_account_name(i, a->name);
    e->n++;
    a->c = bench__client(o->endpoint, a->name);
    a->pend = calloc(BENCH_PEND_CAP, sizeof *a->pend);
    if (!a->c || !a->pend || bench_pool_init(&a->pool)) goto fail;
    bench_rng_seed(&a->rng, o->seed * 1000003u + (uint64_t)i);
  }

  /* Sessions are Mon-Fri 09:30-11:30 and 13:00-15:00 Shanghai: a fixed
   * Wednesday morning makes the run independent of when it starts. */
  Gm__ClockSetRequest clk = GM__CLOCK_SET_REQUEST__INIT;
  clk.time_ms = BENCH_NOW_MS;
  if (bench__admin(e, "gm", "clock.set", "bench-clock", &clk.base)) {
    fprintf(stderr,
            "carbon-bench: the bench needs gmd started with [testing] clock "
            "= manual so that orders fall in a trading session; "
            "plugins/carbon/bench/run does that\n");
    goto fail;
  }
  for (size_t i = 0; i < nsymbols; i++) {
    Gm__Carbon__CreateInstrumentRequest cr =
        GM__CARBON__CREATE_INSTRUMENT_REQUEST__INIT;
    Gm__Carbon__Instrument in = GM__CARBON__INSTRUMENT__INIT;
    char idem[64];
    in.symbol = (char *)symbols[i];
    in.reference_price = BENCH_REF_PRICE;
    in.name = "carbon bench";
    cr.instrument = &in;
    snprintf(idem, sizeof idem, "create-%s", symbols[i]);
    if (bench__admin(e, "carbon", "instrument.create", idem, &cr.base) ||
        bench__fund(e, symbols[i]))
      goto fail;
  }
  return e;
fail:
  bench_e2e_destroy(&e);
  return NULL;
}

void bench_e2e_destroy(bench_e2e **ep) {
  bench_e2e *e = ep ? *ep : NULL;
  if (!e) return;
  for (int i = 0; i < e->n; i++) {
    gm_client_destroy(&e->accts[i].c);
    bench_pool_free(&e->accts[i].pool);
    free(e->accts[i].pend);
  }
  free(e->accts);
  gm_client_destroy(&e->admin);
  free(e);
  *ep = NULL;
}

__attribute__((format(printf, 2, 3))) static void bench__fail(bench_thread *t,
                                                              const char *fmt,
                                                              ...) {
  va_list ap;
  if (t->failed) return;
  va_start(ap, fmt);
  vsnprintf(t->error, sizeof t->error, fmt, ap);
  va_end(ap);
  t->failed = 1;
}

/* Sends account a's next order; 1 sent, 0 queue full (try later), -1. */
static int bench__send(bench_thread *t, bench_acct *a, uint64_t t_us) {
  bench_action act;
  uint8_t body[256];
  size_t len;
  char idem[48], oid[64];
  const char *method;

  bench_mix_next(&a->rng, &a->pool, BENCH_REST_LEVELS, &act);
  if (act.kind == BENCH_CANCEL) {
    Gm__Carbon__OrderRequest q = GM__CARBON__ORDER_REQUEST__INIT;
    snprintf(oid, sizeof oid, "%s:%s", t->symbol, act.cancel);
    q.order_id = oid;
    len = gm__carbon__order_request__pack(&q, body);
    method = "order.cancel";
  } else {
    Gm__Carbon__PlaceRequest q = GM__CARBON__PLACE_REQUEST__INIT;
    q.symbol = (char *)t->symbol;
    q.side = act.buy ? GM__CARBON__SIDE__SIDE_BUY : GM__CARBON__SIDE__SIDE_SELL;
    q.type = GM__CARBON__ORDER_TYPE__TYPE_LIMIT;
    q.tif = act.kind == BENCH_REST ? GM__CARBON__TIME_IN_FORCE__TIF_GTC
                                   : GM__CARBON__TIME_IN_FORCE__TIF_IOC;
    q.price = act.price;
    q.quantity = act.quantity;
    len = gm__carbon__place_request__pack(&q, body);
    method = "order.place";
  }
  snprintf(idem, sizeof idem, "%s-%" PRIu64, a->name, ++a->seq);
  uint64_t id = 0;
  gm_status st = gm_client_send(a->c, "carbon", method, idem, body, len, &id);
  if (st == GM_RESOURCE_EXHAUSTED) {
    if (act.kind == BENCH_CANCEL) bench_pool_add(&a->pool, &a->rng, act.cancel);
    return 0;
  }
  if (st != GM_OK) {
    bench__fail(t, "sending to %s failed: %s", t->e->o->endpoint,
                gm_status_name(st));
    return -1;
  }
  bench_pend *p = &a->pend[id % BENCH_PEND_CAP];
  if (p->id) {
    bench__fail(t,
                "more than %d requests in flight on one connection; lower "
                "--rate or raise --accounts",
                BENCH_PEND_CAP);
    return -1;
  }
  p->id = id;
  p->t_us = t_us ? t_us : bench_now_us();
  p->cancel = act.kind == BENCH_CANCEL;
  a->inflight++;
  if (!t->first_us) t->first_us = bench_now_us();
  return 1;
}

/* Takes the replies waiting on account a, waiting up to timeout_ms for the
 * first; returns how many, or -1. */
static int bench__drain(bench_thread *t, bench_acct *a, int timeout_ms) {
  int got = 0;
  while (a->inflight > 0) {
    gm_result res;
    gm_client_recv(a->c, got ? 0 : timeout_ms, NULL, &res);
    if (!res.answered) {
      gm_result_clear(&res);
      break;
    }
    uint64_t now = bench_now_us();
    bench_pend *p = &a->pend[res.request_id % BENCH_PEND_CAP];
    if (p->id != res.request_id || !p->id) {
      bench__fail(t, "a reply to request %" PRIu64 " that %s never sent",
                  res.request_id, a->name);
      gm_result_clear(&res);
      return -1;
    }
    bench_lat_add(&t->r.lat, now - p->t_us);
    if (res.status == GM_OK && !p->cancel) {
      Gm__Carbon__PlaceReply *pr =
          gm__carbon__place_reply__unpack(NULL, res.body_len, res.body);
      if (pr) {
        t->r.fills += (long)pr->n_fills;
        if (pr->order &&
            (pr->order->state == GM__CARBON__ORDER_STATE__STATE_OPEN ||
             pr->order->state == GM__CARBON__ORDER_STATE__STATE_PARTIAL)) {
          const char *local = strrchr(pr->order->id, ':');
          bench_pool_add(&a->pool, &a->rng, local ? local + 1 : "");
        }
        gm__carbon__place_reply__free_unpacked(pr, NULL);
      } else {
        t->r.errors++;
        bench__fail(t, "an order.place reply does not decode as PlaceReply");
      }
    } else if (res.status == GM_NOT_FOUND && p->cancel) {
      t->r.cancel_missed++; /* a crossing order filled it first */
    } else if (res.status != GM_OK) {
      if (!t->r.errors)
        snprintf(t->error, sizeof t->error, "%s %s: %s",
                 p->cancel ? "order.cancel" : "order.place",
                 gm_status_name(res.status), res.message ? res.message : "");
      t->r.errors++;
    }
    gm_result_clear(&res);
    p->id = 0;
    a->inflight--;
    t->r.orders++;
    t->last_us = now;
    got++;
  }
  return got;
}

static void bench__nap_us(uint64_t us) {
  struct timespec ts = {(time_t)(us / 1000000u), (long)(us % 1000000u) * 1000};
  nanosleep(&ts, NULL);
}

/*
 * Sends what each lane may send now: saturating, up to --depth in flight;
 * paced, every order whose time has come.  Returns the earliest time a paced
 * lane has its next order due (UINT64_MAX: none), or 0 after a failure.
 */
static uint64_t bench__send_due(bench_thread *t, uint64_t now) {
  int depth = t->e->o->depth;
  uint64_t next = UINT64_MAX;
  for (int i = 0; i < t->n_lanes && !t->failed; i++) {
    bench_lane *l = &t->lanes[i];
    while (l->sent < l->quota) {
      uint64_t due = 0;
      if (l->interval <= 0) {
        if (l->a->inflight >= depth) break;
      } else {
        due = l->start_us + (uint64_t)((double)l->sent * l->interval);
        if (due > now) {
          if (due < next) next = due;
          break;
        }
      }
      int s = bench__send(t, l->a, due);
      if (s < 0) return 0;
      if (s == 0) break; /* queue full: a reply frees it */
      l->sent++;
    }
  }
  return t->failed ? 0 : next;
}

static void *bench__thread_main(void *arg) {
  bench_thread *t = arg;
  uint64_t progress = bench_now_us(); /* last send or reply */

  /* Short naps before a paced send need a small timer slack (default 50). */
  prctl(PR_SET_TIMERSLACK, 5000UL, 0, 0, 0);
  for (;;) {
    uint64_t now = bench_now_us();
    uint64_t next = bench__send_due(t, now);
    if (t->failed) break;
    int inflight = 0, left = 0;
    for (int i = 0; i < t->n_lanes; i++) {
      inflight += t->lanes[i].a->inflight;
      left += t->lanes[i].sent < t->lanes[i].quota;
    }
    if (!inflight && !left) break;
    now = bench_now_us();
    /* Paced with a tick: wake for the tick that follows the next send's
       time, and send then all that has come due (each order's latency still
       counts from its own time).  A wake-up per order costs the load
       generator several times the CPU per order of a saturating run, on
       the cores gmd and Redis share with it. */
    uint64_t tick = (uint64_t)t->e->o->tick_us;
    if (tick && next != UINT64_MAX && next % tick) next += tick - next % tick;
    uint64_t wait = next == UINT64_MAX ? BENCH_STALL_US
                    : next > now       ? next - now
                                       : 0;
    if (!inflight) {
      bench__nap_us(wait);
      continue;
    }
    /* gm_client_poll waits in whole milliseconds: closer than that to the
       next send, take what is there and sleep until the send is due (a
       reply arriving meanwhile waits at most that long, under 1 ms). */
    int timeout_ms = wait >= BENCH_POLL_US ? (int)(wait / 1000) : 0;
    int n = gm_client_poll(t->conns, (size_t)t->n_lanes, timeout_ms, t->ready);
    if (n < 0) {
      bench__fail(t, "polling the connections failed: %s", strerror(errno));
      break;
    }
    if (n == 0) {
      if (bench_now_us() - progress >= BENCH_STALL_US) {
        bench__fail(t,
                    "no reply for %u s with %d in flight; is gmd alive? "
                    "(plugins/carbon/bench/run prints its log)",
                    BENCH_STALL_US / 1000000u, inflight);
        break;
      }
      if (timeout_ms == 0 && wait > 0) bench__nap_us(wait);
      continue;
    }
    for (int i = 0; i < t->n_lanes && !t->failed; i++)
      if (t->ready[i] && bench__drain(t, t->lanes[i].a, 0) < 0) break;
    progress = bench_now_us();
  }
  return NULL;
}

/* Waits until the ledger has `fills` trades of `symbol`; seconds, or -1. */
static double bench__wait_settled(const char *ledger, const char *symbol,
                                  long fills, long *seen) {
  sqlite3 *db = NULL;
  sqlite3_stmt *q = NULL;
  uint64_t t0 = bench_now_us();
  double waited = -1;
  *seen = -1;
  if (sqlite3_open_v2(ledger, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK ||
      sqlite3_prepare_v2(db,
                         "SELECT count(*) FROM carbon_trades WHERE symbol = ?1",
                         -1, &q, NULL) != SQLITE_OK) {
    fprintf(stderr,
            "carbon-bench: cannot read the ledger %s (%s); pass gmd's ledger "
            "file with --ledger\n",
            ledger, db ? sqlite3_errmsg(db) : "out of memory");
    goto done;
  }
  sqlite3_busy_timeout(db, 1000);
  sqlite3_bind_text(q, 1, symbol, -1, SQLITE_STATIC);
  while (bench_now_us() - t0 < 120u * 1000000u) {
    if (sqlite3_step(q) == SQLITE_ROW) *seen = sqlite3_column_int64(q, 0);
    sqlite3_reset(q);
    if (*seen >= fills) {
      waited = (double)(bench_now_us() - t0) / 1e6;
      break;
    }
    bench__nap_us(2000);
  }
done:
  sqlite3_finalize(q);
  sqlite3_close(db);
  return waited;
}

int bench_e2e_run(bench_e2e *e, const char *symbol, double rate,
                  bench_result *r) {
  const bench_opts *o = e->o;
  int na = e->n, rc = -1, started = 0;
  int nt = o->threads < na ? o->threads : na;
  bench_thread *t = calloc((size_t)nt, sizeof *t);
  bench_lane *lanes = calloc((size_t)na, sizeof *lanes);
  gm_client **conns = calloc((size_t)na, sizeof *conns);
  unsigned char *ready = calloc((size_t)na, 1);
  pthread_t *tid = calloc((size_t)nt, sizeof *tid);

  /* Paced at half the rate, half the orders: the same duration. */
  long orders = rate > 0 && o->orders > 1 ? o->orders / 2 : o->orders;
  memset(r, 0, sizeof *r);
  if (!t || !tid || !lanes || !conns || !ready) goto out;
  /* The paced schedule starts a moment after every thread exists. */
  uint64_t start = bench_now_us() + 20000;
  for (int i = 0; i < na; i++) {
    lanes[i].a = &e->accts[i];
    lanes[i].quota = orders / na + (i < orders % na);
    lanes[i].interval = rate > 0 ? 1e6 / (rate / na) : 0;
    /* Staggered so the accounts' schedules interleave evenly. */
    lanes[i].start_us = rate > 0 ? start + (uint64_t)(1e6 / rate * i) : start;
    conns[i] = e->accts[i].c;
    e->accts[i].pool.n = 0; /* a new instrument: an empty book */
  }
  for (int i = 0; i < nt; i++) {
    int lo = (int)((long)na * i / nt), hi = (int)((long)na * (i + 1) / nt);
    t[i].e = e;
    t[i].symbol = symbol;
    t[i].lanes = &lanes[lo];
    t[i].conns = &conns[lo];
    t[i].ready = &ready[lo];
    t[i].n_lanes = hi - lo;
    if (pthread_create(&tid[i], NULL, bench__thread_main, &t[i]) != 0) break;
    started++;
  }
  uint64_t first = UINT64_MAX, last = 0;
  for (int i = 0; i < started; i++) {
    pthread_join(tid[i], NULL);
    r->orders += t[i].r.orders;
    r->fills += t[i].r.fills;
    r->errors += t[i].r.errors;
    r->cancel_missed += t[i].r.cancel_missed;
    for (size_t k = 0; k < t[i].r.lat.n; k++)
      bench_lat_add(&r->lat, t[i].r.lat.us[k]);
    bench_lat_free(&t[i].r.lat);
    if (t[i].first_us && t[i].first_us < first) first = t[i].first_us;
    if (t[i].last_us > last) last = t[i].last_us;
    if (t[i].error[0])
      fprintf(stderr, "carbon-bench: %s (load thread %d): %s\n", symbol, i,
              t[i].error);
  }
  if (started < nt) {
    fprintf(stderr, "carbon-bench: cannot start %d load threads\n", nt);
    goto out;
  }
  for (int i = 0; i < nt; i++)
    if (t[i].failed) goto out;
  r->seconds = last > first ? (double)(last - first) / 1e6 : 0;
  bench_lat_sort(&r->lat);
  long seen;
  r->drain_s = bench__wait_settled(o->ledger_path, symbol, r->fills, &seen);
  if (r->drain_s < 0)
    fprintf(stderr,
            "carbon-bench: %s: the ledger has %ld trades, the replies "
            "reported %ld fills, after 120 s\n",
            symbol, seen, r->fills);
  rc = 0;
out:
  free(t);
  free(tid);
  free(lanes);
  free(conns);
  free(ready);
  return rc;
}

void bench_e2e_print_broker_stats(bench_e2e *e) {
  gm_result res;
  if (gm_client_call(e->admin, "gm", "stats", NULL, NULL,
                     &gm__stats_reply__descriptor, &res) != GM_OK) {
    printf("  gm stats: %s\n", res.message ? res.message : "no reply");
    gm_result_clear(&res);
    return;
  }
  const Gm__StatsReply *s = (const Gm__StatsReply *)res.reply;
  for (size_t i = 0; i < s->n_markets; i++)
    if (!strcmp(s->markets[i]->market, "carbon"))
      printf(
          "  gm stats (gmd's own time per carbon request, since start): "
          "p50 %" PRIu64 " us, p99 %" PRIu64 " us, max %" PRIu64
          " us over %" PRIu64 " requests; settled %" PRIu64 "\n",
          s->markets[i]->latency_p50_us, s->markets[i]->latency_p99_us,
          s->markets[i]->latency_max_us, s->markets[i]->requests, s->settled);
  gm_result_clear(&res);
}
