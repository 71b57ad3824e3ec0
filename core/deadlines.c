/*
 * Deadlines (see deadlines.h for the keys).
 *
 * Truth.  A deadline is a member "<kind>|<id>" of its tag's set
 * gm:{<market>:<tag>}:dl, scored by its due ms.  Scripts write it in the
 * same atomic step as the entity it belongs to (the host's gm.deadline,
 * written after the run only when it is not refused: core/redis.c).
 * A Redis that keeps its data keeps the deadlines across restarts of every
 * broker; nothing about them lives in a broker.
 *
 * Wake-up index.  gm:deadlines holds one member "<market>:<tag>" per tag with
 * a deadline, scored by a lower bound of the tag's next event: the earliest
 * of its deadlines no live claim holds (their dues) and of its live claims
 * (their expiries).  A lower bound costs only a wasted poll when it is low;
 * it must never be above the true next event, or that deadline would fire
 * late.  Who moves it:
 *   (a) a run that set deadlines: ZADD LT <its earliest due> after the
 *       script, so the score only goes down (core/redis.c);
 *   (b) the poller, after claiming on a tag: it read the score s, the claim
 *       script computed the tag's next event n.  n < s: ZADD LT n.  n > s
 *       (or none): the score is raised to n (removed) only if it is still s
 *       (compare-and-set, a script on the index key alone: a tag's keys and
 *       the index are in different Cluster slots), then the tag's next event
 *       is read again and ZADD LT into the index;
 *   (c) the done script after a firing: ZADD LT of the tag's next event.
 *       Dropping a claim can bring it forward: a deadline set again while
 *       it fired was hidden behind the claim, and a poller may have raised
 *       the score to the claim's expiry meanwhile.
 * Why nothing is lost.  Only (b)'s compare-and-set (P2) ever raises the
 * score.  A tag's next event comes forward only by a script run that sets a
 * deadline (followed by its (a)) or by a done script (followed by its (c));
 * a claim expiring is an event the index already counted.  Take any such
 * change X and its ZADD LT X': if X came before the poller's second read
 * (P3), P3 sees it and P's own ZADD LT (P4) brings the score down to it;
 * if X came after P3, X' comes after P2 and brings the score down to it
 * whatever P2 set.  If P2 failed (someone changed the score since P read
 * it), P raised nothing and needs no P3.  So once every writer, poller and
 * firing in flight has finished its steps the score is <= the tag's next
 * event.  A broker killed between X and X', or between P2 and P4, leaves
 * the score too high (or no member): reconciliation repairs that (below).
 *
 * Fires once.  The claim script (one atomic step in the tag's slot) claims
 * due deadlines not claimed by a live broker, recording broker, claim
 * expiry (now + claim_ms), due, attempt and a firing number in the tag's
 * claims hash.  So at any moment at most one broker holds a live claim on a
 * deadline, and no other broker fires it before that claim expires.  Each
 * firing is a call with the idempotency key "dl.<kind>.<id>.<due>.<n>" (n:
 * the tag's firing counter when it was first claimed).  If the broker dies
 * while the callback runs, the claim expires, another broker claims it with
 * the same due (attempt + 1, same n, same key) and every script step that
 * had run returns its stored reply: its effects happen once.  A claim that
 * expired while its broker was still running (a callback slower than
 * claim_ms) may fire twice at once; the same key makes their steps replay
 * each other's, so the effects still happen once.  The deadlines of one
 * claim fire one after the other, and one whose claim is half spent when
 * its turn comes is left to expire (gm__dl_tag), so callbacks queued behind
 * slow ones are not fired twice.
 * When the callback returns GM_OK, the done script removes the deadline if
 * it is still at the due that was claimed and was not set again meanwhile
 * (gm.deadline on a claimed deadline marks the claim "r"), and drops the
 * claim.  Set again, it stays and fires at its (new) time under a new firing
 * number: a callback that re-arms its own deadline for now fires again, it
 * does not replay.  A failed callback keeps its claim: it fires again, with
 * attempt + 1 and the same key, once the claim expires (one that set its
 * deadline again before failing fires afresh: attempt 1, a new number).
 * Every end of a firing moves the claims hash's '#t' to it by Redis's
 * clock, so it is never before a stored reply of the tag's firings (the
 * settler keeps the hash, and the firing counter the keys are made of,
 * until '#t' is older than those replies live): GM_OK (the done script),
 * a failure (the failed script), and a claim that expired on a deadline
 * since gone (cancelled or moved, its broker dead: the claim script drops
 * it).  A firing's claim is in the hash until one of those, and the
 * settler does not drop a hash that holds a claim.
 *
 * Over maxmemory.  The claim, done, failed and index compare-and-set
 * scripts are flagged allow-oom: each writes a claim of tens of bytes
 * that its firing's end removes, or changes what is there, so Redis over
 * maxmemory still fires deadlines; a callback whose steps write is then
 * refused by Redis (RESOURCE_EXHAUSTED), keeps its claim and fires again
 * when it expires, while one whose steps free memory (a market's archive,
 * GM_SCRIPT_ALLOW_OOM) runs and frees (plugins.md, Steps that free memory).
 *
 * Late deadlines and reconciliation.  The poller's first poll runs at
 * start-up, so what fell due while no broker ran fires then.  At start-up
 * and every reconcile_s one broker (the holder of the lease
 * gm:deadlines:reconcile, SET by a script that lets only its holder renew
 * it) walks gm:outboxes (every tag that ever ran a script has its outbox
 * registered there before its first run) in SSCAN batches between polls,
 * and lowers each tag's index score to the tag's next event.
 */
#include "deadlines.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zmq.h>

#include "call.h"
#include "clock.h"
#include "ledger.h"
#include "log.h"
#include "market.h"

/* Tags one poll takes from the index, and deadlines one claim takes per
   tag; more come in the next round, at once (the index still says due). */
#define GM__DL_TAGS 64
#define GM__DL_CLAIM "16"
/* Pages of due index members one poll reads past tags it skips (markets
   not loaded here); the next poll reads on from there. */
#define GM__DL_PAGES 4
/* Members of gm:outboxes per reconciliation step (SSCAN COUNT). */
#define GM__DL_RECONCILE_COUNT "256"
#define GM__DL_LEASE "gm:deadlines:reconcile"
/* Logs of the same kind of trouble at most this often. */
#define GM__DL_LOG_EVERY_US (60u * 1000000u)

/*
 * Shared by the claim and done scripts (KEYS: the tag's deadline set, its
 * claims): the tag's next event, the earliest of the live claims' expiries
 * and the deadlines no live claim holds, as a string ('' when none).
 */
#define GM__DL_NEXT_LUA                                                     \
  "local function next_event(now)\n"                                        \
  "  local flat = redis.call('HGETALL', KEYS[2])\n"                         \
  "  local live, nlive, nxt = {}, 0, nil\n"                                 \
  "  for i = 1, #flat, 2 do\n"                                              \
  "    local exp = tonumber(string.match(flat[i + 1], '^(%d+)|'))\n"        \
  "    if flat[i] ~= '#' and exp and exp > now then\n"                      \
  "      live[flat[i]] = true\n"                                            \
  "      nlive = nlive + 1\n"                                               \
  "      if not nxt or exp < nxt then nxt = exp end\n"                      \
  "    end\n"                                                               \
  "  end\n"                                                                 \
  "  local first = redis.call('ZRANGE', KEYS[1], 0, nlive, 'WITHSCORES')\n" \
  "  for i = 1, #first, 2 do\n"                                             \
  "    if not live[first[i]] then\n"                                        \
  "      local s = tonumber(first[i + 1])\n"                                \
  "      if not nxt or s < nxt then nxt = s end\n"                          \
  "      break\n"                                                           \
  "    end\n"                                                               \
  "  end\n"                                                                 \
  "  return nxt and string.format('%d', nxt) or ''\n"                       \
  "end\n"

/*
 * KEYS: the tag's deadline set, its claims.  ARGV: now ms, claim ms, at
 * most n to claim (0: none, just the next event), the broker, then the
 * kinds this broker fires for the tag's market (none given: any).  Claims
 * up to n due deadlines of those kinds that no live claim holds (a broker
 * of an older release leaves a kind it does not know to one that knows it,
 * at once, instead of holding it for a claim period), recording
 * "<expiry>|<due>| <attempt>|<firing>|<broker>"; a deadline claimed again at
 * the same due (its broker died, or its callback failed) keeps its firing
 * number and counts one more attempt, any other gets the tag's next firing
 * number ('#').  Drops expired claims whose deadline is gone (cancelled
 * or moved while it fired, or after a failed attempt): their firing has
 * ended (its broker died, or its callback ended: a slow one that is still
 * running moves '#t' again when it ends).  '#t' is when the tag last
 * claimed a deadline or one of its firings ended, in ms by Redis's clock:
 * every stored reply of the tag's firings was stored by then, and the
 * settler keeps the hash (its firing counter) until '#t' is older than
 * their lifetime (settle.c).  Returns {next event ms or '', {member, due,
 * attempt, firing}...}.
 */
static const char gm__dl_claim_lua[] =
    "#!lua flags=allow-oom\n" GM__DL_NEXT_LUA GM__LUA_REDIS_MS
    "local now, cms, max, me = tonumber(ARGV[1]), tonumber(ARGV[2]), "
    "tonumber(ARGV[3]), ARGV[4]\n"
    "local flat = redis.call('HGETALL', KEYS[2])\n"
    "local live, old, nlive, ended = {}, {}, 0, false\n"
    "for i = 1, #flat, 2 do\n"
    "  local m = flat[i]\n"
    "  if m ~= '#' and m ~= '#t' then\n"
    "    local exp, due, att, fire = string.match(flat[i + 1],\n"
    "      '^(%d+)|([^|]*)|(%d+)|(%d+)|')\n"
    "    exp = tonumber(exp) or 0\n"
    "    if exp > now then\n"
    "      live[m] = true\n"
    "      nlive = nlive + 1\n"
    "    elseif redis.call('ZSCORE', KEYS[1], m) then\n"
    "      old[m] = {due = due, att = tonumber(att) or 0, fire = fire}\n"
    "    else\n"
    "      redis.call('HDEL', KEYS[2], m)\n"
    "      ended = true\n"
    "    end\n"
    "  end\n"
    "end\n"
    "if ended and redis.call('HEXISTS', KEYS[2], '#') == 1 then\n"
    "  redis.call('HSET', KEYS[2], '#t', string.format('%d', redis_ms()))\n"
    "end\n"
    "local known\n"
    "if #ARGV > 4 then\n"
    "  known = {}\n"
    "  for i = 5, #ARGV do known[ARGV[i]] = true end\n"
    "end\n"
    "local got, off, page = {}, 0, max + nlive\n"
    "while max > 0 and #got < max do\n"
    "  local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now,\n"
    "    'WITHSCORES', 'LIMIT', off, page)\n"
    "  for i = 1, #due, 2 do\n"
    "    local m, s = due[i], due[i + 1]\n"
    "    if #got < max and not live[m] and\n"
    "       (not known or known[string.match(m, '^[^|]*')]) then\n"
    "      local o, att, fire = old[m], 1, nil\n"
    "      if o and o.due ~= 'r' and tonumber(o.due) == tonumber(s) then\n"
    "        att, fire = o.att + 1, o.fire\n"
    "      else\n"
    "        fire = string.format('%d', redis.call('HINCRBY', KEYS[2], '#', "
    "1))\n"
    "      end\n"
    "      redis.call('HSET', KEYS[2], '#t', string.format('%d', redis_ms()))\n"
    "      redis.call('HSET', KEYS[2], m, string.format('%d', now + cms) ..\n"
    "        '|' .. s .. '|' .. string.format('%d', att) .. '|' .. fire ..\n"
    "        '|' .. me)\n"
    "      got[#got + 1] = {m, s, att, fire}\n"
    "      live[m] = true\n"
    "    end\n"
    "  end\n"
    "  if #due < 2 * page then break end\n"
    "  off = off + page\n"
    "end\n"
    "local out = {next_event(now)}\n"
    "for _, g in ipairs(got) do out[#out + 1] = g end\n"
    "return out\n";

/*
 * KEYS: the tag's deadline set, its claims.  ARGV: member, the due claimed,
 * the broker, the firing number, now ms.  After a callback returned GM_OK:
 * removes the deadline unless it moved or was set again meanwhile; drops
 * this broker's claim.  Returns the tag's next event ('' none): dropping a
 * claim can bring it forward (a deadline set again while it fired was
 * hidden behind the claim), so the index must be lowered to it.  Moves the
 * claims hash's '#t' (see the claim script) to now by Redis's clock: the
 * callback stored its steps' replies after its claim, up to now, and the
 * settler keeps the hash until '#t' is older than their lifetime.
 */
static const char gm__dl_done_lua[] =
    "#!lua flags=allow-oom\n" GM__DL_NEXT_LUA GM__LUA_REDIS_MS
    "local c = redis.call('HGET', KEYS[2], ARGV[1])\n"
    "local rearmed, mine = false, false\n"
    "if c then\n"
    "  local due, fire, who = string.match(c, '^%d+|([^|]*)|%d+|(%d+)|(.*)$')\n"
    "  mine = who == ARGV[3] and fire == ARGV[4]\n"
    "  rearmed = mine and due == 'r'\n"
    "end\n"
    "if not rearmed then\n"
    "  local s = redis.call('ZSCORE', KEYS[1], ARGV[1])\n"
    "  if s and tonumber(s) == tonumber(ARGV[2]) then\n"
    "    redis.call('ZREM', KEYS[1], ARGV[1])\n"
    "  end\n"
    "end\n"
    "if mine then redis.call('HDEL', KEYS[2], ARGV[1]) end\n"
    "if redis.call('HEXISTS', KEYS[2], '#') == 1 then\n"
    "  redis.call('HSET', KEYS[2], '#t', string.format('%d', redis_ms()))\n"
    "end\n"
    "return next_event(tonumber(ARGV[5]))\n";

/*
 * KEYS: the tag's deadline set, its claims.  After a callback failed: it
 * keeps its claim (it fires again once the claim expired, unless its
 * deadline went meanwhile) and may have stored its steps' replies, so
 * '#t' moves to now by Redis's clock, as after GM_OK.  A hash the settler
 * dropped meanwhile (it cannot while a claim is in it) is not made again.
 */
static const char gm__dl_failed_lua[] =
    "#!lua flags=allow-oom\n" GM__LUA_REDIS_MS
    "if redis.call('HEXISTS', KEYS[2], '#') == 1 then\n"
    "  redis.call('HSET', KEYS[2], '#t', string.format('%d', redis_ms()))\n"
    "end\n"
    "return 1\n";

/* KEYS: the index.  ARGV: member, the score read, the new score ('':
   remove).  Changes it only if it is still the score read; 1 if changed. */
static const char gm__dl_cas_lua[] =
    "#!lua flags=allow-oom\n"
    "local s = redis.call('ZSCORE', KEYS[1], ARGV[1])\n"
    "if not s or tonumber(s) ~= tonumber(ARGV[2]) then return 0 end\n"
    "if ARGV[3] == '' then redis.call('ZREM', KEYS[1], ARGV[1])\n"
    "else redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1]) end\n"
    "return 1\n";

/* KEYS: the lease.  ARGV: the broker, seconds.  Takes or renews the lease
   unless another broker holds it; 1 if held now.  Flagged allow-oom, as
   the settle lease: one key of fixed size, so the reconciliation walk
   goes on over maxmemory (what it writes, gm__dl_lower's ZADD LT, is an
   allow-oom script too: an index member per tag whose deadline set
   already exists). */
static const char gm__dl_lease_lua[] =
    "#!lua flags=allow-oom\n"
    "local h = redis.call('GET', KEYS[1])\n"
    "if h and h ~= ARGV[1] then return 0 end\n"
    "redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])\n"
    "return 1\n";

enum {
  GM__DL_CLAIM_S,
  GM__DL_DONE_S,
  GM__DL_FAILED_S,
  GM__DL_CAS_S,
  GM__DL_LEASE_S,
  GM__DL_N
};
static const char *const gm__dl_sources[GM__DL_N] = {
    gm__dl_claim_lua, gm__dl_done_lua, gm__dl_failed_lua, gm__dl_cas_lua,
    gm__dl_lease_lua};

/* One registered kind. */
typedef struct gm__dl_kind {
  gm_market *market; /* whose */
  char *kind;        /* [a-z][a-z0-9_]* */
  gm_deadline_fn fn; /* the callback */
  void *arg;         /* its argument */
} gm__dl_kind;

struct gm__deadlines {
  gm__dl_kind *kinds;         /* written before start only */
  size_t n;                   /* how many */
  gm__deadlines_config cfg;   /* copied at start */
  char *broker;               /* owned copy of cfg.broker */
  pthread_t thread;           /* the poller, when started */
  int started;                /* thread is running */
  atomic_int stop;            /* asks the thread to end */
  gm__redis *redis;           /* the thread's connection */
  gm__ledger *reader;         /* the thread's read-only ledger */
  gm__events *pub;            /* the queue to the publisher (shared) */
  gm__arena *arena;           /* one firing's memory */
  char sha[GM__DL_N][41];     /* SHA1 of each host script once loaded */
  char *walk;                 /* reconciliation's SSCAN cursor, or NULL */
  long resume;                /* due index members the next poll skips */
  uint64_t unknown_logged_us; /* last "market not loaded here" log */
  uint64_t failing_logged_us; /* last "Redis failed" log */
  uint64_t full_logged_us;    /* last RESOURCE_EXHAUSTED firing logged */
  long full_unlogged;         /* such firings not logged since */
  _Atomic int64_t pending;    /* gm__deadlines_counts */
  _Atomic int64_t late;       /* gm__deadlines_counts */
  _Atomic int64_t counted_ms; /* gm__deadlines_counts */
};

int gm__deadline_kind_valid(const char *kind) {
  if (!kind || kind[0] < 'a' || kind[0] > 'z' || strlen(kind) > 32) return 0;
  for (const char *p = kind; *p; p++)
    if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_'))
      return 0;
  return 1;
}

gm__deadlines *gm__deadlines_new(void) {
  gm__deadlines *d = calloc(1, sizeof *d);
  if (!d) abort();
  return d;
}

static const gm__dl_kind *gm__dl_find(const gm__deadlines *d,
                                      const gm_market *m, const char *kind) {
  for (size_t i = 0; i < d->n; i++)
    if (d->kinds[i].market == m && (!kind || !strcmp(d->kinds[i].kind, kind)))
      return &d->kinds[i];
  return NULL;
}

gm_status gm__deadlines_register(gm__deadlines *d, gm_market *m,
                                 const char *kind, gm_deadline_fn fn, void *arg,
                                 char *err, size_t errlen) {
  if (d->started) {
    snprintf(err, errlen, "deadline_register is for init only");
    return GM_FAILED_PRECONDITION;
  }
  if (!gm__deadline_kind_valid(kind) || !fn) {
    snprintf(err, errlen,
             "deadline kind '%s' %s; a kind is [a-z][a-z0-9_]*, 1 to 32 "
             "characters, with a callback",
             kind ? kind : "(null)",
             fn ? "is not a valid name" : "has no callback");
    return GM_INVALID_ARGUMENT;
  }
  if (gm__dl_find(d, m, kind)) {
    snprintf(err, errlen,
             "deadline kind %s is registered twice; register each kind once",
             kind);
    return GM_ALREADY_EXISTS;
  }
  d->kinds = realloc(d->kinds, (d->n + 1) * sizeof *d->kinds);
  if (!d->kinds) abort();
  d->kinds[d->n] = (gm__dl_kind){m, strdup(kind), fn, arg};
  if (!d->kinds[d->n].kind) abort();
  d->n++;
  return GM_OK;
}

int gm__deadlines_known(const gm__deadlines *d, const gm_market *m,
                        const char *kind) {
  return d && gm__dl_find(d, m, kind) != NULL;
}

void gm__deadlines_remove(gm__deadlines *d, const gm_market *m) {
  if (!d) return;
  size_t k = 0;
  for (size_t i = 0; i < d->n; i++) {
    if (d->kinds[i].market == m)
      free(d->kinds[i].kind);
    else
      d->kinds[k++] = d->kinds[i];
  }
  d->n = k;
}

void gm__deadlines_counts(const gm__deadlines *d, gm__deadline_counts *out) {
  out->pending = d ? atomic_load(&d->pending) : 0;
  out->late = d ? atomic_load(&d->late) : 0;
  out->as_of_ms = d ? atomic_load(&d->counted_ms) : 0;
}

int gm__deadlines_gauge_pending(void *arg, double *value) {
  gm__deadline_counts n;
  gm__deadlines_counts(arg, &n);
  if (!n.as_of_ms) return -1;
  *value = (double)n.pending;
  return 0;
}

int gm__deadlines_gauge_late(void *arg, double *value) {
  gm__deadline_counts n;
  gm__deadlines_counts(arg, &n);
  if (!n.as_of_ms) return -1;
  *value = (double)n.late;
  return 0;
}

/* ---- Redis ---- */

/* Logs Redis trouble at most once a minute: a Redis that is down would
   otherwise log every poll. */
static void gm__dl_redis_failed(gm__deadlines *d, const char *what,
                                const redisReply *r) {
  /* Cut by a stop that Redis held up (redis.h, logged there): the thread
     ends, and a firing cut short keeps its claim and fires again after
     claim_ms, as after a crash. */
  if (!r && gm__redis_stopping(d->cfg.redis->stop)) return;
  uint64_t now = gm__clock_mono_us();
  if (d->failing_logged_us && now - d->failing_logged_us < GM__DL_LOG_EVERY_US)
    return;
  d->failing_logged_us = now;
  char buf[1024];
  gm__log(GM_LOG_ERROR, "deadlines",
          "%s failed: %s (Redis at %s); deadlines wait until it works again",
          what,
          r && r->type == REDIS_REPLY_ERROR
              ? r->str
              : gm__redis_error_text(d->redis, gm__redis_last_error(d->redis),
                                     buf, sizeof buf),
          gm__redis_where(d->redis));
}

/* Runs host script `s` by EVALSHA; after NOSCRIPT (a node that has not
   seen it: a restarted Redis, another master of a cluster) by EVAL of its
   source, which the node keeps for the next EVALSHA.  The reply (free it)
   or NULL, logged. */
static redisReply *gm__dl_eval(gm__deadlines *d, int s, int nkeys,
                               const char *const *keys, int nargs,
                               const char *const *args) {
  if (!d->sha[s][0]) {
    /* SHA1 of the source, as Redis names it: any node computes it. */
    redisReply *l =
        gm__redis_callf(d->redis, "SCRIPT LOAD %s", gm__dl_sources[s]);
    if (!l || l->type != REDIS_REPLY_STRING || l->len != 40) {
      gm__dl_redis_failed(d, "SCRIPT LOAD of a deadline script", l);
      if (l) freeReplyObject(l);
      return NULL;
    }
    memcpy(d->sha[s], l->str, 41);
    freeReplyObject(l);
  }
  size_t n = (size_t)(3 + nkeys + nargs);
  const char **argv = malloc(n * sizeof *argv);
  size_t *lens = malloc(n * sizeof *lens);
  if (!argv || !lens) abort();
  char nk[8];
  snprintf(nk, sizeof nk, "%d", nkeys);
  int argc = 0;
  argv[argc++] = "EVALSHA";
  argv[argc++] = d->sha[s];
  argv[argc++] = nk;
  for (int i = 0; i < nkeys; i++) argv[argc++] = keys[i];
  for (int i = 0; i < nargs; i++) argv[argc++] = args[i];
  for (int i = 0; i < argc; i++) lens[i] = strlen(argv[i]);
  redisReply *r = gm__redis_callv(d->redis, argc, argv, lens);
  if (r && r->type == REDIS_REPLY_ERROR && !strncmp(r->str, "NOSCRIPT", 8)) {
    freeReplyObject(r);
    argv[0] = "EVAL";
    argv[1] = gm__dl_sources[s];
    lens[0] = 4;
    lens[1] = strlen(gm__dl_sources[s]);
    r = gm__redis_callv(d->redis, argc, argv, lens);
  }
  if (!r || r->type == REDIS_REPLY_ERROR) {
    gm__dl_redis_failed(d, "a deadline script", r);
    if (r) freeReplyObject(r);
    r = NULL;
  }
  free(argv);
  free(lens);
  return r;
}

/* ZADD gm:deadlines LT due member (over maxmemory too). */
static void gm__dl_lower(gm__deadlines *d, const char *member,
                         const char *due) {
  redisReply *r =
      gm__redis_callf(d->redis, "EVAL %s 1 %s %s %s", GM__DEADLINE_LOWER_LUA,
                      GM__DEADLINE_INDEX, due, member);
  if (!r || r->type == REDIS_REPLY_ERROR)
    gm__dl_redis_failed(d, "ZADD " GM__DEADLINE_INDEX, r);
  if (r) freeReplyObject(r);
}

/* The tag's next event ("" none) by the claim script with nothing to
   claim, into buf; 0 or -1 (Redis failed). */
static int gm__dl_next(gm__deadlines *d, const char *const keys[2],
                       const char *now, char *buf, size_t len) {
  const char *args[] = {now, "0", "0", d->broker};
  redisReply *r = gm__dl_eval(d, GM__DL_CLAIM_S, 2, keys, 4, args);
  if (!r) return -1;
  int ok = r->type == REDIS_REPLY_ARRAY && r->elements >= 1 &&
           r->element[0]->type == REDIS_REPLY_STRING;
  if (ok) snprintf(buf, len, "%s", r->element[0]->str);
  freeReplyObject(r);
  return ok ? 0 : -1;
}

/*
 * After a claim on `member` (index score `read` when polled): the index
 * gets the tag's next event `next` ("" none) without losing a writer's
 * earlier deadline (the argument at the top of this file).
 */
static void gm__dl_index_update(gm__deadlines *d, const char *member,
                                const char *read, const char *next,
                                const char *const keys[2], const char *now) {
  double was = strtod(read, NULL);
  if (*next && strtod(next, NULL) <= was) {
    if (strtod(next, NULL) < was) gm__dl_lower(d, member, next);
    return;
  }
  const char *ikeys[] = {GM__DEADLINE_INDEX};
  const char *args[] = {member, read, next};
  redisReply *r = gm__dl_eval(d, GM__DL_CAS_S, 1, ikeys, 3, args);
  int raised = r && r->type == REDIS_REPLY_INTEGER && r->integer == 1;
  if (r) freeReplyObject(r);
  if (!raised) return;
  char again[32];
  if (gm__dl_next(d, keys, now, again, sizeof again) == 0 && again[0])
    gm__dl_lower(d, member, again);
}

/* ---- firing ---- */

/* One claimed deadline: its callback, then the done script on GM_OK. */
static void gm__dl_fire(gm__deadlines *d, gm_market *m, const char *tag,
                        const char *const keys[2], const redisReply *c) {
  if (c->type != REDIS_REPLY_ARRAY || c->elements != 4 ||
      c->element[0]->type != REDIS_REPLY_STRING ||
      c->element[1]->type != REDIS_REPLY_STRING ||
      c->element[3]->type != REDIS_REPLY_STRING)
    return;
  const char *member = c->element[0]->str;
  const char *due = c->element[1]->str;
  long long attempt =
      c->element[2]->type == REDIS_REPLY_INTEGER
          ? c->element[2]->integer
          : atoll(c->element[2]->str ? c->element[2]->str : "1");
  const char *fire = c->element[3]->str;
  const char *bar = strchr(member, '|');
  char *kind = gm__arena_strndup(d->arena, member,
                                 bar ? (size_t)(bar - member) : strlen(member));
  const char *id = bar ? bar + 1 : "";
  const gm__dl_kind *k = gm__dl_find(d, m, kind);
  if (!k) {
    /* Kept, never dropped: the claim expires and it is tried again, here or
       on a broker whose plugin registers the kind. */
    gm__log(GM_LOG_WARN, "deadlines",
            "deadline %s|%s of market %s (tag %s, due %s) has kind %s, which "
            "%s did not register with deadline_register on this broker; it "
            "stays and is tried again in %ld ms (attempt %lld)",
            kind, id, m->name, tag, due, kind, m->name, d->cfg.claim_ms,
            attempt);
    return;
  }
  gm_deadline dl = {.size = sizeof dl,
                    .kind = k->kind,
                    .tag = gm__arena_strdup(d->arena, tag),
                    .id = gm__arena_strdup(d->arena, id),
                    .due_ms = atoll(due),
                    .attempt = attempt > 0 ? (unsigned)attempt : 1};
  gm_call call = {.arena = d->arena,
                  .market = m,
                  .participant = "",
                  .roles = "",
                  .idem_key = gm__arena_sprintf(d->arena, "dl.%s.%s.%s.%s",
                                                kind, id, due, fire),
                  .redis = d->redis,
                  .reader = d->reader,
                  .remote = d->cfg.remote,
                  .pub = d->pub};
  gm_status st = k->fn(&call, &dl, k->arg);
  if (st != GM_OK) {
    /* Over maxmemory every due deadline whose callback writes is claimed
       (the claims run allow-oom), refused and fired again each claim_ms:
       one line a minute says so, with how many more. */
    uint64_t t = gm__clock_mono_us();
    if (st == GM_RESOURCE_EXHAUSTED && d->full_logged_us &&
        t - d->full_logged_us < GM__DL_LOG_EVERY_US) {
      d->full_unlogged++;
    } else {
      char more[160] = "";
      if (st == GM_RESOURCE_EXHAUSTED) {
        if (d->full_unlogged)
          snprintf(more, sizeof more,
                   " (and %ld more firing(s) failed so since the last such "
                   "line; logged once a minute)",
                   d->full_unlogged);
        d->full_logged_us = t;
        d->full_unlogged = 0;
      }
      gm__log(GM_LOG_WARN, m->name,
              "deadline %s|%s (tag %s, due %s, attempt %u) failed with %s: "
              "%s; it fires again in %ld ms%s",
              kind, id, tag, due, dl.attempt, gm__status_name(st),
              call.message ? call.message : "no message", d->cfg.claim_ms,
              more);
    }
    /* Its steps may have stored replies: '#t' says when they stopped. */
    redisReply *f = gm__dl_eval(d, GM__DL_FAILED_S, 2, keys, 0, NULL);
    if (f) freeReplyObject(f);
    return;
  }
  char now[24];
  snprintf(now, sizeof now, "%lld", (long long)gm__clock_now_ms());
  const char *args[] = {member, due, d->broker, fire, now};
  redisReply *r = gm__dl_eval(d, GM__DL_DONE_S, 2, keys, 5, args);
  if (r && r->type == REDIS_REPLY_STRING && r->len > 0)
    gm__dl_lower(d, gm__arena_sprintf(d->arena, "%s:%s", m->name, tag), r->str);
  if (r) freeReplyObject(r);
}

/*
 * One tag the index says is due: claims, updates the index, fires what was
 * claimed, one after the other.  A claim with less than half its time left
 * when its turn comes (the callbacks before it were slow) is left to run
 * out: another broker may take it over by then, and both would fire it.
 * It is claimed again (here or there) once it has.
 */
static int gm__dl_tag(gm__deadlines *d, gm_market *m, const char *member,
                      const char *score) {
  const char *tag = strchr(member, ':') + 1;
  /* Read for each tag: the callbacks of the tags before may have taken a
     while, and a claim's expiry counts from when it is made. */
  char now[24];
  snprintf(now, sizeof now, "%lld", (long long)gm__clock_now_ms());
  char *keys[2];
  keys[0] = gm__arena_sprintf(d->arena, "gm:{%s}:%s", member, GM__DEADLINE_SET);
  keys[1] =
      gm__arena_sprintf(d->arena, "gm:{%s}:%s", member, GM__DEADLINE_CLAIMS);
  char cms[24];
  snprintf(cms, sizeof cms, "%ld", d->cfg.claim_ms);
  const char **args = gm__arena_alloc(d->arena, (4 + d->n) * sizeof *args);
  int nargs = 0;
  args[nargs++] = now;
  args[nargs++] = cms;
  args[nargs++] = GM__DL_CLAIM;
  args[nargs++] = d->broker;
  for (size_t i = 0; i < d->n; i++)
    if (d->kinds[i].market == m) args[nargs++] = d->kinds[i].kind;
  redisReply *r =
      gm__dl_eval(d, GM__DL_CLAIM_S, 2, (const char *const *)keys, nargs, args);
  if (!r) return 1;
  if (r->type != REDIS_REPLY_ARRAY || r->elements < 1 ||
      r->element[0]->type != REDIS_REPLY_STRING) {
    freeReplyObject(r);
    return 1;
  }
  gm__dl_index_update(d, member, score, r->element[0]->str,
                      (const char *const *)keys, now);
  /* Nothing claimed, yet a deadline no live claim holds is due: only kinds
     this broker does not fire are left (another release's).  The poll
     passes the tag over, as a market not loaded here, so such tags cannot
     hold back the due tags behind them. */
  if (r->elements == 1 && r->element[0]->len > 0 &&
      atoll(r->element[0]->str) <= atoll(now)) {
    uint64_t t = gm__clock_mono_us();
    if (!d->unknown_logged_us ||
        t - d->unknown_logged_us >= GM__DL_LOG_EVERY_US) {
      d->unknown_logged_us = t;
      /* Often a typo in the kind gm.deadline names: say which kinds the
         market did register, and where to read the ones set. */
      char known[256] = "";
      size_t used = 0;
      for (int i = 4; i < nargs && used < sizeof known; i++) {
        int w = snprintf(known + used, sizeof known - used, "%s%s",
                         used ? ", " : "", args[i]);
        if (w > 0) used += (size_t)w;
      }
      gm__log(GM_LOG_WARN, "deadlines",
              "deadlines of %s are due with a kind %s did not register with "
              "deadline_register on this broker (it registers: %s); a broker "
              "that registers it fires them. If no release does, fix the "
              "kind gm.deadline names: ZRANGE %s 0 -1 lists them as kind|id",
              member, m->name, *known ? known : "none", keys[0]);
    }
    freeReplyObject(r);
    return 0;
  }
  long long last = atoll(now) + d->cfg.claim_ms / 2;
  for (size_t i = 1;
       i < r->elements && !atomic_load(&d->stop) && gm__clock_now_ms() < last;
       i++) {
    gm__dl_fire(d, m, tag, (const char *const *)keys, r->element[i]);
    /* The callback's memory; the keys are made again for the next one. */
    gm__arena_reset(d->arena);
    keys[0] =
        gm__arena_sprintf(d->arena, "gm:{%s}:%s", member, GM__DEADLINE_SET);
    keys[1] =
        gm__arena_sprintf(d->arena, "gm:{%s}:%s", member, GM__DEADLINE_CLAIMS);
  }
  freeReplyObject(r);
  return 1;
}

/*
 * One poll: the tags due by now, up to GM__DL_TAGS of them.  Tags of a
 * market not loaded here are passed over (a broker that loads it fires
 * them).  They come first when they have waited longest (that market's
 * brokers are down, or it was removed), so a poll that stops at its page
 * bound leaves the next one to read on from there, and the one after the
 * end starts again from the first: however many are passed over, every due
 * tag of this broker's markets is reached.  Returns how many tags it
 * worked on.
 */
static int gm__dl_poll(gm__deadlines *d) {
  char now[24];
  snprintf(now, sizeof now, "%lld", (long long)gm__clock_now_ms());
  long skipped = d->resume;
  int done = 0, end = 0;
  for (int page = 0; page < GM__DL_PAGES && done < GM__DL_TAGS; page++) {
    redisReply *r = gm__redis_callf(
        d->redis, "ZRANGEBYSCORE %s -inf %s WITHSCORES LIMIT %ld %d",
        GM__DEADLINE_INDEX, now, skipped, GM__DL_TAGS);
    if (!r || r->type != REDIS_REPLY_ARRAY) {
      gm__dl_redis_failed(d, "ZRANGEBYSCORE " GM__DEADLINE_INDEX, r);
      if (r) freeReplyObject(r);
      return done;
    }
    size_t n = r->elements / 2;
    for (size_t i = 0; i < n && !atomic_load(&d->stop); i++) {
      const char *member = r->element[2 * i]->str;
      const char *score = r->element[2 * i + 1]->str;
      const char *colon = member ? strchr(member, ':') : NULL;
      gm_market *m = NULL;
      if (colon && score) {
        char *market =
            gm__arena_strndup(d->arena, member, (size_t)(colon - member));
        m = d->cfg.find(d->cfg.find_arg, market);
        if (m && !gm__dl_find(d, m, NULL)) m = NULL;
      }
      if (!m) {
        uint64_t t = gm__clock_mono_us();
        if (!d->unknown_logged_us ||
            t - d->unknown_logged_us >= GM__DL_LOG_EVERY_US) {
          d->unknown_logged_us = t;
          gm__log(GM_LOG_WARN, "deadlines",
                  "deadlines of %s are due, but no market here registers a "
                  "deadline kind for it; a broker that loads that market "
                  "fires them",
                  member ? member : "(nil)");
        }
        skipped++;
      } else if (gm__dl_tag(d, m, member, score)) {
        done++;
      } else {
        skipped++;
      }
      gm__arena_reset(d->arena);
    }
    freeReplyObject(r);
    if (n < GM__DL_TAGS) {
      end = 1;
      break;
    }
  }
  d->resume = end ? 0 : skipped;
  return done;
}

/* ---- reconciliation and counts ---- */

/* Takes or renews the lease; a walk starts when held. */
static void gm__dl_reconcile_start(gm__deadlines *d) {
  if (d->walk) return; /* the last walk is still going */
  char ttl[24];
  snprintf(ttl, sizeof ttl, "%ld", d->cfg.reconcile_s);
  const char *keys[] = {GM__DL_LEASE};
  const char *args[] = {d->broker, ttl};
  redisReply *r = gm__dl_eval(d, GM__DL_LEASE_S, 1, keys, 2, args);
  if (r && r->type == REDIS_REPLY_INTEGER && r->integer == 1) {
    d->walk = strdup("0");
    if (!d->walk) abort();
  }
  if (r) freeReplyObject(r);
}

/* One SSCAN step of the walk over gm:outboxes: each tag's next event into
   the index. */
static void gm__dl_reconcile_step(gm__deadlines *d) {
  redisReply *r = gm__redis_callf(d->redis, "SSCAN gm:outboxes %s COUNT %s",
                                  d->walk, GM__DL_RECONCILE_COUNT);
  if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
      r->element[0]->type != REDIS_REPLY_STRING ||
      r->element[1]->type != REDIS_REPLY_ARRAY) {
    gm__dl_redis_failed(d, "SSCAN gm:outboxes", r);
    if (r) freeReplyObject(r);
    /* Given up until the next reconcile_s: going on at once would spin
       while Redis is down. */
    free(d->walk);
    d->walk = NULL;
    return;
  }
  char now[24];
  snprintf(now, sizeof now, "%lld", (long long)gm__clock_now_ms());
  const redisReply *members = r->element[1];
  for (size_t i = 0; i < members->elements; i++) {
    /* "gm:{<market>:<tag>}:outbox" */
    const char *s = members->element[i]->str;
    const char *open = s ? strchr(s, '{') : NULL;
    const char *close = open ? strrchr(open, '}') : NULL;
    if (!close || !memchr(open, ':', (size_t)(close - open))) continue;
    char *member =
        gm__arena_strndup(d->arena, open + 1, (size_t)(close - open - 1));
    const char *keys[] = {
        gm__arena_sprintf(d->arena, "gm:{%s}:%s", member, GM__DEADLINE_SET),
        gm__arena_sprintf(d->arena, "gm:{%s}:%s", member, GM__DEADLINE_CLAIMS)};
    char next[32];
    if (gm__dl_next(d, keys, now, next, sizeof next) == 0 && next[0])
      gm__dl_lower(d, member, next);
    gm__arena_reset(d->arena);
  }
  free(d->walk);
  d->walk = NULL;
  if (strcmp(r->element[0]->str, "0") != 0) {
    d->walk = strdup(r->element[0]->str);
    if (!d->walk) abort();
  }
  freeReplyObject(r);
}

static void gm__dl_count(gm__deadlines *d) {
  int64_t now = gm__clock_now_ms();
  redisReply *p = gm__redis_callf(d->redis, "ZCARD %s", GM__DEADLINE_INDEX);
  redisReply *l = gm__redis_callf(d->redis, "ZCOUNT %s -inf (%lld",
                                  GM__DEADLINE_INDEX, (long long)(now - 1000));
  if (p && p->type == REDIS_REPLY_INTEGER && l &&
      l->type == REDIS_REPLY_INTEGER) {
    atomic_store(&d->pending, p->integer);
    atomic_store(&d->late, l->integer);
    atomic_store(&d->counted_ms, now);
  }
  if (p) freeReplyObject(p);
  if (l) freeReplyObject(l);
}

/* ---- the thread ---- */

static void *gm__dl_run(void *arg) {
  gm__deadlines *d = arg;
  uint64_t now = gm__clock_mono_us();
  uint64_t poll_at = now, count_at = now, lease_at = now;
  while (!atomic_load(&d->stop)) {
    now = gm__clock_mono_us();
    if (now >= lease_at) {
      gm__dl_reconcile_start(d);
      lease_at = now + (uint64_t)d->cfg.reconcile_s * 1000000u;
    }
    if (now >= poll_at) {
      /* A full poll leaves more due: the next one runs at once. */
      int busy = gm__dl_poll(d) >= GM__DL_TAGS;
      poll_at = busy ? now : now + (uint64_t)d->cfg.poll_ms * 1000u;
    }
    if (d->walk && !atomic_load(&d->stop)) gm__dl_reconcile_step(d);
    if (now >= count_at) {
      gm__dl_count(d);
      count_at = now + 1000000u;
    }
    /* Short sleeps: a stop is noticed within 10 ms, and a walk goes on
       between polls. */
    uint64_t t = gm__clock_mono_us();
    if (!d->walk && poll_at > t) {
      uint64_t wait = poll_at - t;
      if (wait > 10000u) wait = 10000u;
      struct timespec ts = {0, (long)wait * 1000L};
      nanosleep(&ts, NULL);
    }
  }
  return NULL;
}

int gm__deadlines_start(gm__deadlines *d, const gm__deadlines_config *c,
                        char *err, size_t errlen) {
  if (d->n == 0) return 0;
  d->cfg = *c;
  d->broker = strdup(c->broker);
  if (!d->broker) abort();
  d->cfg.broker = d->broker;
  d->redis = gm__redis_connect(c->redis, err, errlen);
  if (!d->redis) return -1;
  d->reader = gm__ledger_open(c->ledger_path, 1, err, errlen);
  if (!d->reader) return -1;
  d->pub = c->events;
  d->arena = gm__arena_new();
  if (pthread_create(&d->thread, NULL, gm__dl_run, d) != 0) {
    snprintf(err, errlen, "cannot start the deadline thread");
    return -1;
  }
  pthread_setname_np(d->thread, "gmd-deadlines");
  d->started = 1;
  return 0;
}

void gm__deadlines_stop(gm__deadlines *d) {
  if (!d) return;
  if (d->started) {
    atomic_store(&d->stop, 1);
    pthread_join(d->thread, NULL);
    d->started = 0;
  }
  d->pub = NULL;
  gm__redis_destroy(&d->redis);
  gm__ledger_close(&d->reader);
  gm__arena_destroy(&d->arena);
}

void gm__deadlines_destroy(gm__deadlines **dp) {
  if (!dp || !*dp) return;
  gm__deadlines *d = *dp;
  gm__deadlines_stop(d);
  for (size_t i = 0; i < d->n; i++) free(d->kinds[i].kind);
  free(d->kinds);
  free(d->walk);
  free(d->broker);
  free(d);
  *dp = NULL;
}
