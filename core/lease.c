/*
 * The settle lease (see lease.h).  One script takes, renews and reads the
 * key in one atomic step (the key alone: one slot on a cluster), so a
 * broker that finds its own value (itself before a restart under the same
 * name) keeps it instead of waiting for it to expire.
 */
#include "lease.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "ledger.h"
#include "log.h"

/* KEYS: the lease, the book's mark.  ARGV: our value, lease ms, "1" to
   take it, "1" when we do not hold it yet (then our book is checked), our
   book "<id> <gen>", its batches, and the "<id> <gen>" and batches its
   tenure went on from ("" and 0: none).  Returns {1 if we hold it now, the
   value it holds ("" none)}, {2, the mark} when our file is not the book
   of record, or {3, ""} when the key we held is gone before its time
   (Redis lost it: a failover, a DEL), so that the next round takes it as
   new, with our book checked while our settler is stopped.
   A file is the book when the mark names its tenure with no more batches,
   or names the tenure it went on from with no more batches than it had
   then (its holder was killed after that tenure's first COMMIT, before the
   mark of it reached Redis); the mark then names this file as it is. */
static const char take_lua[] =
    "#!lua flags=allow-oom\n"
    "local v = redis.call('GET', KEYS[1])\n"
    "if ARGV[4] ~= '1' then\n"
    "  if v == ARGV[1] then\n"
    "    redis.call('PEXPIRE', KEYS[1], ARGV[2])\n"
    "    return {1, v}\n"
    "  end\n"
    "  if not v then return {3, ''} end\n"
    "end\n"
    "if (not v or v == ARGV[1]) and ARGV[3] == '1' then\n"
    "  local b = redis.call('GET', KEYS[2])\n"
    "  if b then\n"
    "    local id, n = string.match(b, '^(%S+ %S+) (%d+)$')\n"
    "    n = tonumber(n)\n"
    "    if not id or not ((id == ARGV[5] and tonumber(ARGV[6]) >= n) or\n"
    "                      (id == ARGV[7] and tonumber(ARGV[8]) >= n)) then\n"
    "      return {2, b}\n"
    "    end\n"
    "    redis.call('SET', KEYS[2], ARGV[5] .. ' ' .. ARGV[6])\n"
    "  end\n"
    "  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])\n"
    "  return {1, ARGV[1]}\n"
    "end\n"
    "return {0, v or ''}\n";

/* KEYS: the lease, the mark.  ARGV: our value, "<id> <batches>". */
static const char mark_lua[] =
    "#!lua flags=allow-oom\n"
    "if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end\n"
    "redis.call('SET', KEYS[2], ARGV[2])\n"
    "return 1\n";

/* Deletes the key only while it holds our value: 1; 0 when there is no
   key, 2 when it holds another broker's. */
static const char release_lua[] =
    "local v = redis.call('GET', KEYS[1])\n"
    "if not v then return 0 end\n"
    "if v == ARGV[1] then\n"
    "  return redis.call('DEL', KEYS[1])\n"
    "end\n"
    "return 2\n";

struct gm__lease {
  gm__redis_addr addr; /* Redis's, for a release after a stop's cut */
  gm__redis *redis;
  gm__redis *settler_redis; /* the committed hook's (settler thread) */
  gm__ledger *book;         /* read-only, for gm_book; NULL: never takes */
  atomic_int behind;        /* our file is not the book (logged once) */
  char *value;              /* "<name>\n<endpoint>" */
  char *name;               /* this broker's */
  int64_t lease_ms;
  int take;
  pthread_t thread;
  int started;
  atomic_int stop;
  int down; /* a Redis failure is logged already */
  /* Read by the settler and the workers. */
  _Atomic uint64_t valid_until_us; /* may settle before this; 0: not held */
  _Atomic uint64_t tenure;         /* count of takings */
  uint64_t held_until_us; /* the key surely lives until then (thread only) */
  pthread_mutex_t mu;     /* guards holder and holder_seq */
  char holder[512];       /* the value last seen, "" none */
  uint64_t holder_seq;    /* changes with holder */
};

static void sleep_ms(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
}

static void set_holder(gm__lease *l, const char *v) {
  pthread_mutex_lock(&l->mu);
  if (strcmp(l->holder, v) != 0) {
    snprintf(l->holder, sizeof l->holder, "%s", v);
    l->holder_seq++;
  }
  pthread_mutex_unlock(&l->mu);
}

/* The file's gm_book: "<id> <gen>" and batches ("" and 0 when
   unreadable), and what its tenure went on from (the same, from
   gm_book_from). */
static void read_book(gm__lease *l, char *id, size_t n, long long *batches,
                      char *from, long long *from_batches) {
  snprintf(id, n, "%s", "");
  snprintf(from, n, "%s", "");
  *batches = *from_batches = 0;
  if (!l->book) return;
  sqlite3 *db = gm__ledger_db(l->book);
  sqlite3_stmt *st = NULL;
  /* One read transaction: both rows as one COMMIT left them. */
  if (sqlite3_exec(db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK) return;
  if (sqlite3_prepare_v2(db, "SELECT id || ' ' || gen, batches FROM gm_book",
                         -1, &st, NULL) == SQLITE_OK &&
      sqlite3_step(st) == SQLITE_ROW) {
    snprintf(id, n, "%s", (const char *)sqlite3_column_text(st, 0));
    *batches = sqlite3_column_int64(st, 1);
  }
  sqlite3_finalize(st);
  st = NULL;
  if (sqlite3_prepare_v2(db,
                         "SELECT b.id || ' ' || f.gen, f.batches FROM gm_book "
                         "b, gm_book_from f",
                         -1, &st, NULL) == SQLITE_OK &&
      sqlite3_step(st) == SQLITE_ROW) {
    snprintf(from, n, "%s", (const char *)sqlite3_column_text(st, 0));
    *from_batches = sqlite3_column_int64(st, 1);
  }
  sqlite3_finalize(st);
  sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
}

/* One take-or-renew round; 0, or -1 when Redis did not answer. */
static int lease_round(gm__lease *l) {
  char ms[32], id[96] = "", n[32] = "0", from[96] = "", fn[32] = "0";
  snprintf(ms, sizeof ms, "%lld", (long long)l->lease_ms);
  int fresh = !l->held_until_us || gm__clock_mono_us() >= l->held_until_us;
  if (l->take && fresh) {
    long long batches, from_batches;
    read_book(l, id, sizeof id, &batches, from, &from_batches);
    snprintf(n, sizeof n, "%lld", batches);
    snprintf(fn, sizeof fn, "%lld", from_batches);
  }
  /* Measured before sending: Redis sets the expiry later than this. */
  uint64_t sent = gm__clock_mono_us();
  const char *argv[] = {"EVAL",
                        take_lua,
                        "2",
                        GM__LEASE_KEY,
                        GM__BOOK_KEY,
                        l->value,
                        ms,
                        l->take ? "1" : "0",
                        fresh ? "1" : "0",
                        id,
                        n,
                        from,
                        fn};
  redisReply *r = gm__redis_callv(l->redis, 13, argv, NULL);
  int ok = r && r->type == REDIS_REPLY_ARRAY && r->elements == 2 &&
           r->element[0]->type == REDIS_REPLY_INTEGER &&
           r->element[1]->type == REDIS_REPLY_STRING;
  if (!ok) {
    char buf[1024];
    if (!l->down)
      gm__log(
          GM_LOG_WARN, "settle",
          "the settle lease cannot be read or renewed (%s); %s",
          r && r->type == REDIS_REPLY_ERROR
              ? r->str
              : gm__redis_error_text(l->redis, gm__redis_last_error(l->redis),
                                     buf, sizeof buf),
          atomic_load(&l->valid_until_us)
              ? "this broker stops settling 2/3 of the lease after its "
                "last renewal"
              : "retrying");
    l->down = 1;
    if (r) freeReplyObject(r);
    return -1;
  }
  l->down = 0;
  if (r->element[0]->integer == 3) {
    gm__log(GM_LOG_WARN, "settle",
            "the settle lease vanished from Redis before its time (a "
            "failover, a DEL): this broker stops settling and takes it "
            "again, its book checked");
    set_holder(l, "");
    atomic_store(&l->valid_until_us, 0);
    l->held_until_us = 0;
    freeReplyObject(r);
    return 0;
  }
  if (r->element[0]->integer == 2) {
    if (!atomic_load(&l->behind))
      gm__log(GM_LOG_ERROR, "settle",
              "this broker's ledger file is not the book of record (it is "
              "\"%s %s\" in gm_book, the book is \"%s\"): another file, or "
              "a restore that lacks batches already acknowledged; it will "
              "not take the settle lease (docs/operations.md, Scaling out)",
              id, n, r->element[1]->str);
    atomic_store(&l->behind, 1);
    set_holder(l, ""); /* refused only when nobody else holds it */
    atomic_store(&l->valid_until_us, 0);
    l->held_until_us = 0;
    freeReplyObject(r);
    return 0;
  }
  atomic_store(&l->behind, 0);
  int held = r->element[0]->integer == 1;
  set_holder(l, r->element[1]->str);
  freeReplyObject(r);
  if (!held) {
    if (atomic_load(&l->valid_until_us))
      gm__log(GM_LOG_WARN, "settle",
              "lost the settle lease (it expired while Redis was out of "
              "reach); another broker settles now");
    atomic_store(&l->valid_until_us, 0);
    l->held_until_us = 0;
    return 0;
  }
  uint64_t lease_us = (uint64_t)l->lease_ms * 1000u;
  /* A new tenure unless the previous one surely never lapsed: then the
     settler claims every pending entry again, at once. */
  if (!l->held_until_us || gm__clock_mono_us() >= l->held_until_us) {
    atomic_fetch_add(&l->tenure, 1);
    gm__log(GM_LOG_INFO, "settle",
            "%s holds the settle lease (%lld ms): it settles and answers the "
            "other brokers' ledger reads",
            l->name, (long long)l->lease_ms);
  }
  l->held_until_us = sent + lease_us;
  atomic_store(&l->valid_until_us, sent + lease_us * 2 / 3);
  return 0;
}

static void *lease_run(void *arg) {
  gm__lease *l = arg;
  long period = (long)(l->lease_ms / 3);
  while (!atomic_load(&l->stop)) {
    uint64_t t0 = gm__clock_mono_us();
    lease_round(l);
    long left = period - (long)((gm__clock_mono_us() - t0) / 1000u);
    while (left > 0 && !atomic_load(&l->stop)) {
      long slice = left < 50 ? left : 50;
      sleep_ms(slice);
      left -= slice;
    }
  }
  return NULL;
}

/*
 * The release when the stop cut this broker's connections (redis.h: a Redis
 * that did not answer a PING 2 s into the stop): over a connection of its
 * own, outside the stop, while the key is surely still ours (Redis keeps it
 * until held_until_us at least, and nobody else can take it before), for at
 * most GM__RELEASE_AFTER_CUT_US or what is left of that.  A Redis that
 * answers again meanwhile (a stall that ended) frees the lease at once
 * rather than after up to lease_ms; one that does not lets it expire.  The
 * script deletes the key only while it holds our value, as always.
 */
#define GM__RELEASE_AFTER_CUT_US 1000000
#define GM__RELEASE_MIN_US 50000
static void release_after_cut(gm__lease *l, const char **argv) {
  uint64_t now = gm__clock_mono_us();
  if (gm__redis_stop_forced(l->addr.stop)) {
    gm__log(GM_LOG_INFO, "settle",
            "the settle lease was not released (the stop was forced by a "
            "second signal); another broker takes it when it expires, within "
            "lease_ms");
    return;
  }
  if (now + GM__RELEASE_MIN_US >= l->held_until_us) {
    gm__log(GM_LOG_INFO, "settle",
            "the settle lease was not released (Redis did not answer); it "
            "expires by itself now, so another broker takes it within "
            "lease_ms / 3");
    return;
  }
  uint64_t left = l->held_until_us - now;
  int64_t wait = left < GM__RELEASE_AFTER_CUT_US ? (int64_t)left
                                                 : GM__RELEASE_AFTER_CUT_US;
  /* Outside the stop's cut, but a second signal (gm__redis_stop_force)
     still ends it at once. */
  gm__redis_addr a = l->addr;
  a.stop = gm__redis_stop_child(l->addr.stop);
  a.connect_us = a.io_us = wait;
  char err[512];
  gm__redis *r = gm__redis_connect(&a, err, sizeof err);
  redisReply *rep = r ? gm__redis_callv(r, 5, argv, NULL) : NULL;
  if (rep && rep->type == REDIS_REPLY_INTEGER && rep->integer == 1)
    gm__log(GM_LOG_INFO, "settle",
            "released the settle lease (over a new connection: the stop had "
            "cut the others)");
  else if (rep && rep->type == REDIS_REPLY_INTEGER && rep->integer == 0)
    /* Before held_until_us only a DEL removes it: the release the cut
       caught in Redis's socket, run once Redis answered again. */
    gm__log(GM_LOG_INFO, "settle",
            "released the settle lease (Redis ran the release sent before the "
            "cut once it answered again)");
  else if (rep && rep->type == REDIS_REPLY_INTEGER)
    gm__log(GM_LOG_INFO, "settle",
            "the settle lease is another broker's already");
  else
    gm__log(GM_LOG_INFO, "settle",
            "the settle lease was not released (%s); another broker takes it "
            "when it expires, within %lld ms",
            rep && rep->type == REDIS_REPLY_ERROR ? rep->str
            : rep                                 ? "unexpected reply"
            : r                                   ? gm__redis_last_error(r)
                                                  : err,
            (long long)((l->held_until_us - now) / 1000u));
  if (rep) freeReplyObject(rep);
  gm__redis_destroy(&r);
  gm__redis_stop_destroy(&a.stop);
}

gm__lease *gm__lease_start(const gm__lease_config *cfg, char *err,
                           size_t errlen) {
  gm__lease *l = calloc(1, sizeof *l);
  if (!l) abort();
  pthread_mutex_init(&l->mu, NULL);
  l->lease_ms = cfg->lease_ms;
  l->take = cfg->take;
  l->addr = cfg->redis;
  if (asprintf(&l->value, "%s\n%s", cfg->name, cfg->endpoint) < 0) abort();
  l->name = strdup(cfg->name);
  if (!l->name) abort();
  l->redis = gm__redis_connect(&cfg->redis, err, errlen);
  if (!l->redis) goto fail;
  if (cfg->take) {
    l->settler_redis = gm__redis_connect(&cfg->redis, err, errlen);
    if (!l->settler_redis) goto fail;
    l->book = gm__ledger_open(cfg->ledger_path, 1, err, errlen);
    if (!l->book) goto fail;
  }
  /* Each command must end well within a renewal period. */
  int64_t io = cfg->lease_ms * 1000 / 6;
  gm__redis_set_timeouts(l->redis, io, io);
  if (lease_round(l) != 0) {
    snprintf(err, errlen, "the settle lease %s: Redis did not answer",
             GM__LEASE_KEY);
    goto fail;
  }
  if (pthread_create(&l->thread, NULL, lease_run, l) != 0) {
    snprintf(err, errlen, "cannot start the settle lease thread");
    goto fail;
  }
  pthread_setname_np(l->thread, "gmd-lease");
  l->started = 1;
  return l;
fail:
  gm__lease_stop(&l);
  return NULL;
}

void gm__lease_stop(gm__lease **lp) {
  if (!lp || !*lp) return;
  gm__lease *l = *lp;
  if (l->started) {
    atomic_store(&l->stop, 1);
    pthread_join(l->thread, NULL);
  }
  if (l->redis && atomic_load(&l->valid_until_us)) {
    atomic_store(&l->valid_until_us, 0);
    const char *argv[] = {"EVAL", release_lua, "1", GM__LEASE_KEY, l->value};
    redisReply *r = gm__redis_callv(l->redis, 5, argv, NULL);
    if (r && r->type == REDIS_REPLY_INTEGER && r->integer == 1)
      gm__log(GM_LOG_INFO, "settle", "released the settle lease");
    if (!r && gm__redis_stopping(l->addr.stop)) release_after_cut(l, argv);
    if (r) freeReplyObject(r);
  }
  gm__redis_destroy(&l->redis);
  gm__redis_destroy(&l->settler_redis);
  gm__ledger_close(&l->book);
  pthread_mutex_destroy(&l->mu);
  free(l->value);
  free(l->name);
  free(l);
  *lp = NULL;
}

int gm__lease_committed(void *arg, const char *book, long long batches) {
  gm__lease *l = arg;
  char mark[128];
  snprintf(mark, sizeof mark, "%s %lld", book, batches);
  const char *argv[] = {"EVAL",       mark_lua, "2", GM__LEASE_KEY,
                        GM__BOOK_KEY, l->value, mark};
  redisReply *r = gm__redis_callv(l->settler_redis, 7, argv, NULL);
  int ok = r && r->type == REDIS_REPLY_INTEGER && r->integer == 1;
  if (r) freeReplyObject(r);
  return ok ? 0 : -1;
}

uint64_t gm__lease_gate(void *arg) {
  gm__lease *l = arg;
  uint64_t until = atomic_load(&l->valid_until_us);
  if (!until || gm__clock_mono_us() >= until) return 0;
  return atomic_load(&l->tenure);
}

int gm__lease_book_here(gm__lease *l) {
  return l->take && !atomic_load(&l->behind);
}

int gm__lease_refused(gm__lease *l) {
  return l->take && atomic_load(&l->behind);
}

uint64_t gm__lease_holder(gm__lease *l, char *endpoint, size_t n, int *self) {
  pthread_mutex_lock(&l->mu);
  uint64_t seq = l->holder_seq;
  const char *nl = strchr(l->holder, '\n');
  snprintf(endpoint, n, "%s", nl ? nl + 1 : "");
  *self = l->holder[0] && strcmp(l->holder, l->value) == 0;
  pthread_mutex_unlock(&l->mu);
  return seq;
}
