/*
 * The settlement writer (see settle.h).  Why it loses nothing and doubles
 * nothing under kill -9:
 *   - an entry leaves the outbox only by XACK (then XTRIM), sent after
 *     the SQLite COMMIT that recorded it, so a crash before COMMIT leaves
 *     it pending;
 *   - gm_settled(stream, id) is written in the same transaction as the
 *     market's rows, so an entry delivered again after a crash between
 *     COMMIT and XACK is recognised (INSERT OR IGNORE changes nothing) and
 *     its callback is not run twice;
 *   - this consumer re-reads its own pending entries at start and after a
 *     failed batch, and entries a dead consumer left pending are claimed
 *     with XAUTOCLAIM once idle longer than claim_idle_ms;
 *   - a consumer is removed from the group only by a script that checks, in
 *     the same atomic step, that it has nothing pending and has been idle
 *     longer than prune_idle_ms (a broker name no longer used), so no
 *     entry can be dropped with it.
 * Entries of one stream are settled in stream order, except that entries
 * claimed from a dead consumer arrive after newer ones already settled.
 */
#include "settle.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "arena.h"
#include "clock.h"
#include "counters.h"
#include "deadletter.h"
#include "ledger.h"
#include "log.h"

#define GM__GROUP GM__SETTLE_GROUP
/* Streams per XREADGROUP / pipeline. */
#define GM__CHUNK 128
/* A round reads at most this many batches while the outboxes are behind. */
#define GM__BEHIND_MAX 8
/* gm:outboxes is read again this often. */
#define GM__REFRESH_US 1000000u
/* Backoff after a failed batch or an unreachable Redis. */
#define GM__BACKOFF_MIN_MS 100
#define GM__BACKOFF_MAX_MS 5000
/* XAUTOCLAIM pages per stream per sweep, COUNT per page. */
#define GM__CLAIM_PAGES 8
#define GM__CLAIM_COUNT "256"
/* Streams the list lacks (a broker died between a script run and its
   SADD) are looked for by a SCAN of the keyspace, COUNT keys per round,
   at start and this often. */
#define GM__DISCOVER_EVERY_US (300u * 1000000u)
#define GM__DISCOVER_COUNT "1000"
/* Masters the discovery pass walks at most. */
#define GM__MAX_MASTERS 256
/* Entries held back for want of a replica are logged at most this often. */
#define GM__HELD_LOG_EVERY_US (30u * 1000000u)
/* Retired streams are looked for this often, this many per sweep (a
   pass over 50,000 idle streams takes about 8 minutes). */
#define GM__RETIRE_EVERY_US 2500000u
#define GM__RETIRE_COUNT 256
/* Dead consumers are looked for at most this often. */
#define GM__PRUNE_EVERY_US (600u * 1000000u)

/* Removes, from each stream's group, consumers other than ARGV[2] with no
   pending entry and idle longer than ARGV[3] ms; returns how many.  The
   shebang makes a cluster check the slots of every key it touches. */
static const char gm__prune_lua[] =
    "#!lua flags=allow-oom\n"
    "local removed = 0\n"
    "for _, stream in ipairs(KEYS) do\n"
    "  local cons = redis.pcall('XINFO', 'CONSUMERS', stream, ARGV[1])\n"
    "  if type(cons) == 'table' and not cons.err then\n"
    "    for _, c in ipairs(cons) do\n"
    "      local f = {}\n"
    "      for i = 1, #c, 2 do f[c[i]] = c[i + 1] end\n"
    "      if f.name ~= ARGV[2] and f.pending == 0 and\n"
    "         f.idle > tonumber(ARGV[3]) then\n"
    "        redis.call('XGROUP', 'DELCONSUMER', stream, ARGV[1], f.name)\n"
    "        removed = removed + 1\n"
    "      end\n"
    "    end\n"
    "  end\n"
    "end\n"
    "return removed\n";

/* For each four keys (a tag's outbox stream, its deadline set, the
   stream's GM__OUTBOX_RETIRED record, its deadline claims): 1 when the
   stream may be retired (a stream whose only group is ARGV[1], with
   nothing pending and nothing undelivered, whose last entry is older than
   ARGV[2] ms by Redis's clock, on a tag with no deadline), else 0; with
   ARGV[3] "retire" it also deletes each such stream, group and all,
   keeping its last id and count of entries ever added in the record
   (redis.h).  A missing stream answers 1 (there is nothing of it to keep)
   unless its tag has deadlines: the deadline reconciliation walks
   gm:outboxes.  The claims hash holds the tag's firing counter ('#'), and
   since session 15 the time of its last claim or firing's end ('#t',
   Redis's clock, deadlines.c): a counter started again could give a new
   firing the idempotency key of an old one, so the tag is kept while the
   hash holds a claim (a firing that has not ended, or whose end no broker
   has seen yet: the deadline claim script drops it then, moving '#t'),
   and then until '#t', the end of its last firing, is older than ARGV[4]
   ms (the stored replies' lifetime) plus ARGV[2]; then the hash goes with
   the stream.  A hash without '#t' (an older release's) is left, and the
   stream goes.  Flagged allow-oom, as the prune: it frees (a stream with
   its group for a record of tens of bytes), so it runs while Redis is
   over maxmemory. */
static const char gm__retire_lua[] =
    "#!lua flags=allow-oom\n" GM__LUA_REDIS_MS
    "local now = redis_ms()\n"
    "local cut = now - tonumber(ARGV[2])\n"
    "local out = {}\n"
    "for i = 1, #KEYS, 4 do\n"
    "  local s, c, ok = KEYS[i], KEYS[i + 3], 0\n"
    "  local ty = redis.call('TYPE', s).ok\n"
    "  local ct = tonumber(redis.call('HGET', c, '#t'))\n"
    "  local claims = redis.call('HLEN', c) - redis.call('HEXISTS', c, '#') -\n"
    "                 redis.call('HEXISTS', c, '#t')\n"
    "  if redis.call('EXISTS', KEYS[i + 1]) == 1 then ok = 0\n"
    "  elseif claims > 0 then ok = 0\n"
    "  elseif ct and ct > cut - tonumber(ARGV[4]) then ok = 0\n"
    "  elseif ty == 'none' then ok = 1\n"
    "  elseif ty == 'stream' then\n"
    "    local f, g = {}, {}\n"
    "    local info = redis.call('XINFO', 'STREAM', s)\n"
    "    for j = 1, #info, 2 do f[info[j]] = info[j + 1] end\n"
    "    local groups = redis.call('XINFO', 'GROUPS', s)\n"
    "    if #groups == 1 then\n"
    "      for j = 1, #groups[1], 2 do g[groups[1][j]] = groups[1][j + 1] end\n"
    "    end\n"
    "    local ms = tonumber(string.match(f['last-generated-id'] or '',\n"
    "                                     '^(%d+)%-'))\n"
    "    if g.name == ARGV[1] and g.pending == 0 and\n"
    "       g['last-delivered-id'] == f['last-generated-id'] and ms and\n"
    "       ms <= cut then\n"
    "      ok = 1\n"
    "      if ARGV[3] == 'retire' then\n"
    "        redis.call('SET', KEYS[i + 2], f['last-generated-id'] .. ' ' ..\n"
    "                   string.format('%d', f['entries-added']), 'EX',\n"
    "                   " GM__OUTBOX_RETIRED_TTL_S
    ")\n"
    "        redis.call('DEL', s)\n"
    "      end\n"
    "    end\n"
    "  end\n"
    "  if ok == 1 and ARGV[3] == 'retire' and ct then redis.call('DEL', c) "
    "end\n"
    "  out[#out + 1] = ok\n"
    "end\n"
    "return out\n";

/* XGROUP CREATE of our group ARGV[1] on KEYS[1] from id 0 (ARGV[2] "1":
   MKSTREAM), answered as XGROUP CREATE answers.  Flagged allow-oom: a
   broker that starts while Redis is over maxmemory finds BUSYGROUP on
   every stream it settled before, so it reads them and, settling, trims
   them (XGROUP CREATE itself is refused there); a new group is a few
   bytes on a stream that exists.  Run by EVALSHA once SCRIPT LOAD (which
   Redis runs over maxmemory) named it, by EVAL after NOSCRIPT (a node
   that has not seen it: a restarted Redis, another master): its text is
   not sent with each of the thousands of streams a start may find. */
static const char gm__create_lua[] =
    "#!lua flags=allow-oom\n"
    "if ARGV[2] == '1' then\n"
    "  return redis.pcall('XGROUP', 'CREATE', KEYS[1], ARGV[1], '0', "
    "'MKSTREAM')\n"
    "end\n"
    "return redis.pcall('XGROUP', 'CREATE', KEYS[1], ARGV[1], '0')\n";

/* Our group on the tag's outbox KEYS[1] from id 0, the stream made if
   missing: from what its retirement kept (KEYS[2]: redis.h) when there is
   that, else empty (a tag with deadlines only).  Answers as XGROUP CREATE
   does (BUSYGROUP: there).  gm__refresh runs it only for a stream XGROUP
   CREATE found missing: the script's text is sent with each call. */
static const char gm__group_lua[] =
    "#!lua\n" GM__OUTBOX_REMAKE_LUA
    "gm__outbox_remake(KEYS[1])\n"
    "return redis.pcall('XGROUP', 'CREATE', KEYS[1], ARGV[1], '0', "
    "'MKSTREAM')\n";

/* One entry read in this round. */
typedef struct gm__item {
  const char *market;    /* market part of the stream's tag ("" if none) */
  const char *replay_of; /* a dead letter put back: its old id, else NULL */
  int gone;              /* deleted from the stream while pending */
  int reread;            /* read from our pending list: that read wrote
                            nothing Redis replicates (see gm__replicated) */
  gm_outbox_entry entry; /* what the settle callback sees */
} gm__item;

struct gm__settler {
  gm__settle_config cfg; /* copy; its strings point at the fields below */
  char *unix_path;       /* owned cfg.redis.unix_path */
  char *host;            /* owned cfg.redis.host */
  char *ledger_path;     /* owned cfg.ledger_path */
  char *consumer;        /* owned cfg.consumer */
  gm__redis *redis;      /* the writer's own connection */
  gm__ledger *ledger;    /* the writer connection to SQLite */
  gm__arena *arena;      /* one round's entries; reset per round */
  gm__item *items;       /* this round's entries */
  size_t nitems, capitems;
  char **streams; /* sorted outbox streams with our group */
  size_t nstreams;
  uint64_t refreshed_us;   /* last read of gm:outboxes; 0: never */
  char discover_at[24];    /* SCAN cursor of the discovery pass; "" idle */
  char create_sha[41];     /* gm__create_lua's SHA1 once loaded, else "" */
  uint64_t discovered_us;  /* when the last pass started; 0: never */
  long long outboxes_card; /* SCARD gm:outboxes at that read */
  uint64_t claimed_us;     /* last XAUTOCLAIM sweep; 0: never */
  uint64_t claim_every_us; /* sweep period */
  uint64_t pruned_us;      /* last look for dead consumers; 0: never */
  uint64_t retired_us;     /* last sweep for streams to retire; 0: never */
  size_t retire_at;        /* the stream that sweep starts at */
  uint64_t prune_every_us; /* its period */
  /* Entries this round reads: the batch, up to GM__BEHIND_MAX times it
     while rounds come back full (see gm__round). */
  size_t want;
  size_t read_at;         /* the stream the next round reads first (fairness) */
  int pending;            /* our own PEL may hold entries: read "0" */
  uint64_t tenure;        /* the lease's, when gated; 0: not held */
  int takeover;           /* the next claim sweep takes every entry */
  int new_tenure;         /* the next COMMIT starts a new gm_book.gen */
  char book[80];          /* gm_book "<id> <gen>" of the ledger file */
  long long book_batches; /* gm_book.batches after the last COMMIT */
  int idle;               /* the last round read nothing: BLOCK */
  int blocked;            /* this round waited in BLOCK */
  int redis_down;         /* the outage is logged already */
  int regroup;            /* groups may be gone: create them all again */
  int cluster;            /* Redis Cluster: one stream per command */
  int broken;             /* a cluster node failed: reconnect, read the map */
  size_t discover_node;   /* the master the discovery pass scans */
  int cluster_known;      /* cluster was read on this connection */
  char **quiet;           /* markets logged as having no callback */
  size_t nquiet;
  pthread_t thread;                /* the writer thread, when started */
  int started;                     /* the thread runs */
  atomic_int stop;                 /* asks the thread to end after its batch */
  _Atomic uint64_t settled;        /* entries written (not duplicates) */
  _Atomic uint64_t batches;        /* committed transactions */
  _Atomic uint64_t batch_failures; /* rolled back */
  _Atomic uint64_t batch_entries;  /* entries read by committed batches */
  _Atomic uint64_t batch_size[GM__SETTLE_SIZE_BUCKETS]; /* by size */
  _Atomic int64_t oldest_ms; /* oldest entry of the batch in hand; 0: none */
  _Atomic uint64_t beat_us;  /* the thread's last sign of life (monotonic) */
  char *failing;             /* "stream id" whose callback failed last */
  int fail_count;            /* its failures in a row */
  /* A later entry failed in the batch that set `failing` aside, undoing
     its dead letter: the next batch ends right after setting it aside, so
     two such entries do not take turns failing for ever. */
  int end_at_aside;
  uint64_t held_logged_us; /* last log of entries no replica has; 0: never */
  int held;                /* the last round held entries back (see
                              gm__replicated): read new ones beside them */
  char fail_error[560];    /* the last one's reason */
};

static char *gm__dup(const char *s) {
  if (!s) return NULL;
  char *d = strdup(s);
  if (!d) abort();
  return d;
}

static void gm__sleep_ms(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
}

static int gm__cmp_str(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

static int gm__is_error(const redisReply *r, const char *prefix) {
  return r && r->type == REDIS_REPLY_ERROR &&
         strncmp(r->str, prefix, strlen(prefix)) == 0;
}

/* Notes a Redis failure on connection c (logged once per outage); on a
   cluster the next round reconnects, which reads the slot map again (a
   node may have failed over or a slot moved).  Returns -1. */
static int gm__redis_failed_on(gm__settler *s, redisContext *c,
                               const char *what) {
  gm__count(GM__COUNT_REDIS_ERRORS);
  if (gm__redis_is_cluster(s->redis)) s->broken = 1;
  char buf[1024], ebuf[128];
  if (gm__redis_stopping(s->cfg.redis.stop)) {
    /* Cut by a stop that Redis held up (redis.h): not an outage. */
    if (!s->redis_down)
      gm__log(GM_LOG_INFO, "settle",
              "%s cut short: gmd is stopping; outbox entries read and not "
              "acknowledged are settled by the next settler",
              what);
  } else if (!s->redis_down) {
    gm__log(GM_LOG_WARN, "settle",
            "Redis failed during %s (%s); settlement pauses and retries until "
            "redis-server is back",
            what,
            c->err ? gm__redis_error_text(
                         s->redis,
                         gm__redis_ctx_error(s->redis, c, ebuf, sizeof ebuf),
                         buf, sizeof buf)
                   : "error reply");
  }
  s->redis_down = 1;
  return -1;
}

static int gm__redis_failed(gm__settler *s, const char *what) {
  return gm__redis_failed_on(s, gm__redis_context(s->redis), what);
}

/* Logs that `what` (a side task: pruning, retiring) failed on connection c
   with reply r (NULL: the connection failed): WARN with Redis's error, or
   "no reply within N s" and the address for a stalled Redis (as
   gm__redis_failed_on says it), INFO for a cut by gmd's stop. */
static void gm__side_failed(gm__settler *s, redisContext *c,
                            const redisReply *r, const char *what) {
  if (!r && gm__redis_stopping(s->cfg.redis.stop)) {
    gm__log(GM_LOG_INFO, "settle", "%s cut short: gmd is stopping", what);
    return;
  }
  char buf[1024], ebuf[128], where[300];
  const char *why =
      r && r->type == REDIS_REPLY_ERROR ? r->str
      : r                               ? "unexpected reply"
                                        : gm__redis_error_text(
                                              s->redis, gm__redis_ctx_error(s->redis, c, ebuf, sizeof ebuf),
                                              buf, sizeof buf);
  gm__redis_ctx_where(c, where, sizeof where);
  gm__log(GM_LOG_WARN, "settle", "%s: %s (Redis at %s)", what, why, where);
}

/* The connection to the node serving `key` (a plain Redis: its one). */
static redisContext *gm__ctx(gm__settler *s, const char *key) {
  return gm__redis_context_for(s->redis, key, strlen(key));
}

/* The market in "gm:{<market>:<tag>}:outbox", in the arena. */
static const char *gm__stream_market(gm__arena *a, const char *stream) {
  if (strncmp(stream, "gm:{", 4) != 0) return "";
  const char *p = stream + 4, *end = strpbrk(p, ":}");
  if (!end || *end != ':') return "";
  return gm__arena_strndup(a, p, (size_t)(end - p));
}

/* ---- the list of streams ---- */

static void gm__streams_clear(gm__settler *s) {
  for (size_t i = 0; i < s->nstreams; i++) free(s->streams[i]);
  free(s->streams);
  s->streams = NULL;
  s->nstreams = 0;
}

static int gm__stream_known(const gm__settler *s, const char *key) {
  return s->nstreams && bsearch(&key, s->streams, s->nstreams,
                                sizeof *s->streams, gm__cmp_str) != NULL;
}

/* Whether `stream` is a tag's outbox, "gm:{<tag>}:outbox" (it may have a
   retirement record, deadlines and their claims). */
static int gm__tag_outbox(const char *stream) {
  static const char suffix[] = "}:outbox";
  size_t n = strlen(stream), sl = sizeof suffix - 1;
  return n >= 4 + sl && strncmp(stream, "gm:{", 4) == 0 &&
         strcmp(stream + n - sl, suffix) == 0;
}

/* The key "gm:{<tag>}:<name>" of a tag's outbox's tag (malloc'd). */
static char *gm__tag_key(const char *stream, const char *name) {
  size_t head = strlen(stream) - (sizeof "outbox" - 1), nl = strlen(name);
  char *k = malloc(head + nl + 1);
  if (!k) abort();
  memcpy(k, stream, head);
  memcpy(k + head, name, nl + 1);
  return k;
}

/* Lists the streams ARGV in gm:outboxes (KEYS[1]).  Flagged allow-oom:
   a stream listed is one the settler drains and trims, which frees Redis;
   the set grows by streams that exist already. */
static const char gm__list_lua[] =
    "#!lua flags=allow-oom\n"
    "return redis.call('SADD', KEYS[1], unpack(ARGV))\n";
#define GM__DISCOVER_CHUNK 512

/*
 * One step of the discovery pass: a SCAN over "gm:{*}:*" that adds to
 * gm:outboxes every tag holding an outbox stream or deadlines.  The host
 * registers a tag right after the run that first wrote it; only a broker
 * that died in between leaves one out, and this finds it.  0, or -1 when
 * Redis failed.
 */
static int gm__discover(gm__settler *s) {
  /* A node's SCAN walks its own keys only: every master in turn. */
  redisContext *masters[GM__MAX_MASTERS];
  size_t nm = gm__redis_masters(s->redis, masters, GM__MAX_MASTERS);
  if (nm > GM__MAX_MASTERS) nm = GM__MAX_MASTERS;
  if (s->discover_node >= nm) {
    s->discover_at[0] = '\0';
    return 0;
  }
  redisContext *c = masters[s->discover_node];
  redisReply *r = redisCommand(
      c, "SCAN %s MATCH gm:{*}:* COUNT " GM__DISCOVER_COUNT, s->discover_at);
  if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
      r->element[0]->type != REDIS_REPLY_STRING ||
      r->element[1]->type != REDIS_REPLY_ARRAY) {
    if (r) freeReplyObject(r);
    return gm__redis_failed_on(s, c, "SCAN for outbox streams");
  }
  const redisReply *keys = r->element[1];
  const char **argv = calloc(keys->elements + 2, sizeof *argv);
  char **owned = calloc(keys->elements + 1, sizeof *owned);
  if (!argv || !owned) abort();
  int argc = 2; /* the streams from argv[2] */
  for (size_t i = 0; i < keys->elements; i++) {
    const redisReply *k = keys->element[i];
    if (k->type != REDIS_REPLY_STRING) continue;
    const char *close = strstr(k->str, "}:");
    if (!close) continue;
    const char *suffix = close + 2;
    if (strcmp(suffix, "outbox") != 0 && strcmp(suffix, "dl") != 0) continue;
    size_t head = (size_t)(suffix - k->str);
    char *stream = malloc(head + sizeof "outbox");
    if (!stream) abort();
    memcpy(stream, k->str, head);
    memcpy(stream + head, "outbox", sizeof "outbox");
    owned[argc - 2] = stream;
    argv[argc++] = stream;
  }
  int rc = 0;
  long long added = 0;
  redisContext *set = gm__ctx(s, "gm:outboxes");
  /* By the allow-oom script, in chunks that Lua's unpack takes: a stream
     listed lets its entries settle and be trimmed, over maxmemory too. */
  for (int at = 2; at < argc && rc == 0; at += GM__DISCOVER_CHUNK) {
    int n = argc - at < GM__DISCOVER_CHUNK ? argc - at : GM__DISCOVER_CHUNK;
    const char *cv[4 + GM__DISCOVER_CHUNK] = {"EVAL", gm__list_lua, "1",
                                              "gm:outboxes"};
    memcpy(cv + 4, argv + at, (size_t)n * sizeof *cv);
    redisReply *a = redisCommandArgv(set, n + 4, cv, NULL);
    if (!a || a->type != REDIS_REPLY_INTEGER)
      rc = gm__redis_failed_on(s, set, "SADD gm:outboxes");
    else
      added += a->integer;
    if (a) freeReplyObject(a);
  }
  if (added > 0)
    gm__log(GM_LOG_WARN, "settle",
            "found %lld outbox stream(s) missing from gm:outboxes (a broker "
            "stopped right after writing them); added, so they settle",
            added);
  for (int i = 0; i < argc - 2; i++) free(owned[i]);
  free(owned);
  free(argv);
  if (rc == 0) {
    snprintf(s->discover_at, sizeof s->discover_at, "%s", r->element[0]->str);
    /* This node done: the next one from its start, or the pass ends. */
    if (strcmp(s->discover_at, "0") == 0 && ++s->discover_node >= nm)
      s->discover_at[0] = '\0';
  }
  freeReplyObject(r);
  return rc;
}

/* XGROUP CREATE's (or gm__group_lua's) reply `r` for `key`: the stream
   joins next[] unless it cannot be read. */
static void gm__group_made(const char *key, const redisReply *r, char **next,
                           size_t *nnext) {
  /* Redis full refuses gm__group_lua (it makes a stream: not allow-oom)
     at every reading of gm:outboxes, for each such stream: said once a
     minute, and not as a key to delete. */
  static gm__log_limit full = GM__LOG_LIMIT(1, 60000);
  if (r->type != REDIS_REPLY_ERROR || gm__is_error(r, "BUSYGROUP"))
    next[(*nnext)++] = gm__dup(key);
  else if (gm__is_error(r, "OOM"))
    gm__log_limited(&full, GM_LOG_WARN, "settle",
                    "cannot make outbox %s yet (a tag with deadlines only, "
                    "or a stream retired): Redis is over maxmemory (%s); it "
                    "is made, and read, once Redis has room",
                    key, r->str);
  else
    gm__log(GM_LOG_ERROR, "settle",
            "cannot read outbox %s (%s); delete the key if it is not a "
            "stream",
            key, r->str);
}

/*
 * Reads gm:outboxes and creates our group on every stream not seen yet
 * (from id 0, so entries added before the group existed are read too).
 */
static int gm__refresh(gm__settler *s) {
  redisContext *set = gm__ctx(s, "gm:outboxes");
  redisReply *m = redisCommand(set, "SMEMBERS gm:outboxes");
  if (!m || m->type != REDIS_REPLY_ARRAY) {
    if (m) freeReplyObject(m);
    return gm__redis_failed_on(s, set, "SMEMBERS gm:outboxes");
  }
  /* Each stream's node, read once: a reply is read where it was sent. */
  redisContext **ctx = calloc(m->elements + 1, sizeof *ctx);
  if (!ctx) abort();
  s->outboxes_card = (long long)m->elements;
  char **next = calloc(m->elements + 1, sizeof *next);
  size_t *missing = calloc(GM__CHUNK, sizeof *missing);
  size_t *noscript = calloc(GM__CHUNK, sizeof *noscript);
  if (!next || !missing || !noscript) abort();
  size_t nnext = 0;
  int rc = 0;
  if (!s->create_sha[0] && m->elements > 0) {
    /* Not loaded: EVAL with the text, as before (logged by the first
       command that fails the same way). */
    redisReply *l = redisCommand(set, "SCRIPT LOAD %s", gm__create_lua);
    if (l && l->type == REDIS_REPLY_STRING && l->len == 40)
      memcpy(s->create_sha, l->str, 41);
    if (l) freeReplyObject(l);
  }
  for (size_t i = 0; i < m->elements && rc == 0; i += GM__CHUNK) {
    size_t end = i + GM__CHUNK < m->elements ? i + GM__CHUNK : m->elements;
    size_t sent = 0;
    for (size_t k = i; k < end; k++) {
      const char *key = m->element[k]->str;
      if (m->element[k]->type != REDIS_REPLY_STRING) continue;
      if (gm__stream_known(s, key)) {
        next[nnext++] = gm__dup(key);
        continue;
      }
      ctx[k] = gm__ctx(s, key);
      /* A tag's outbox that is missing is made by gm__group_lua below (from
         what its retirement kept); the rest as before, in one pipeline. */
      int sha = s->create_sha[0] != '\0';
      redisAppendCommand(ctx[k], "%s %s 1 %s " GM__GROUP " %s",
                         sha ? "EVALSHA" : "EVAL",
                         sha ? s->create_sha : gm__create_lua, key,
                         gm__tag_outbox(key) ? "0" : "1");
      sent++;
    }
    size_t nmissing = 0, nnoscript = 0;
    for (size_t k = i; k < end && sent; k++) {
      const char *key = m->element[k]->str;
      if (m->element[k]->type != REDIS_REPLY_STRING || gm__stream_known(s, key))
        continue;
      sent--;
      redisReply *r = NULL;
      if (ctx[k]->err || redisGetReply(ctx[k], (void **)&r) != REDIS_OK || !r) {
        rc = gm__redis_failed_on(s, ctx[k], "XGROUP CREATE");
        continue; /* the other nodes' replies are read all the same */
      }
      if (r->type == REDIS_REPLY_ERROR && strstr(r->str, "key to exist"))
        missing[nmissing++] = k;
      else if (gm__is_error(r, "NOSCRIPT"))
        noscript[nnoscript++] = k;
      else
        gm__group_made(key, r, next, &nnext);
      freeReplyObject(r);
    }
    /* With the text, on a connection whose pipelined replies are all read;
       the node keeps the script for the next EVALSHA. */
    for (size_t j = 0; j < nnoscript && rc == 0; j++) {
      size_t k = noscript[j];
      const char *key = m->element[k]->str;
      redisReply *r =
          redisCommand(ctx[k], "EVAL %s 1 %s " GM__GROUP " %s", gm__create_lua,
                       key, gm__tag_outbox(key) ? "0" : "1");
      if (!r) {
        rc = gm__redis_failed_on(s, ctx[k], "XGROUP CREATE");
        break;
      }
      if (r->type == REDIS_REPLY_ERROR && strstr(r->str, "key to exist"))
        missing[nmissing++] = k;
      else
        gm__group_made(key, r, next, &nnext);
      freeReplyObject(r);
    }
    for (size_t j = 0; j < nmissing && rc == 0; j++) {
      size_t k = missing[j];
      const char *key = m->element[k]->str;
      char *rec = gm__tag_key(key, "outbox" GM__OUTBOX_RETIRED);
      redisReply *r = redisCommand(ctx[k], "EVAL %s 2 %s %s " GM__GROUP,
                                   gm__group_lua, key, rec);
      free(rec);
      if (!r) {
        rc = gm__redis_failed_on(s, ctx[k], "XGROUP CREATE");
        break;
      }
      gm__group_made(key, r, next, &nnext);
      freeReplyObject(r);
    }
  }
  freeReplyObject(m);
  free(ctx);
  free(missing);
  free(noscript);
  if (rc != 0) {
    for (size_t i = 0; i < nnext; i++) free(next[i]);
    free(next);
    return rc;
  }
  qsort(next, nnext, sizeof *next, gm__cmp_str);
  gm__streams_clear(s);
  s->streams = next;
  s->nstreams = nnext;
  s->refreshed_us = gm__clock_mono_us();
  return 0;
}

/* Claims entries idle longer than claim_idle_ms from any consumer. */
static int gm__claim(gm__settler *s) {
  redisContext **ctx = calloc(s->nstreams + 1, sizeof *ctx);
  if (!ctx) abort();
  for (size_t i = 0; i < s->nstreams; i++) ctx[i] = gm__ctx(s, s->streams[i]);
  char idle[32];
  snprintf(idle, sizeof idle, "%lld",
           s->takeover ? 0LL : (long long)s->cfg.claim_idle_ms);
  char(*cursor)[48] = calloc(s->nstreams + 1, sizeof *cursor);
  if (!cursor) abort();
  for (size_t i = 0; i < s->nstreams; i++) strcpy(cursor[i], "0-0");
  int rc = 0;
  long long claimed = 0;
  for (int page = 0; page < GM__CLAIM_PAGES && rc == 0; page++) {
    size_t sent = 0;
    for (size_t i = 0; i < s->nstreams; i++) {
      if (!cursor[i][0]) continue;
      const char *argv[] = {
          "XAUTOCLAIM", s->streams[i], GM__GROUP,       s->consumer, idle,
          cursor[i],    "COUNT",       GM__CLAIM_COUNT, "JUSTID"};
      redisAppendCommandArgv(ctx[i], 9, argv, NULL);
      sent++;
    }
    if (!sent) break;
    for (size_t i = 0; i < s->nstreams; i++) {
      if (!cursor[i][0]) continue;
      /* On a failure the other nodes' replies are still read: a reply
         left unread would answer the next command sent there. */
      redisReply *r = NULL;
      if (ctx[i]->err || redisGetReply(ctx[i], (void **)&r) != REDIS_OK || !r) {
        rc = gm__redis_failed_on(s, ctx[i], "XAUTOCLAIM");
        cursor[i][0] = '\0';
        continue;
      }
      cursor[i][0] = '\0';
      if (r->type == REDIS_REPLY_ARRAY && r->elements >= 2 &&
          r->element[0]->type == REDIS_REPLY_STRING &&
          r->element[1]->type == REDIS_REPLY_ARRAY) {
        claimed += (long long)r->element[1]->elements;
        if (strcmp(r->element[0]->str, "0-0") != 0)
          snprintf(cursor[i], sizeof cursor[i], "%s", r->element[0]->str);
      } else if (gm__is_error(r, "NOGROUP")) {
        s->regroup = 1; /* the stream went away: re-create the group */
      }
      freeReplyObject(r);
    }
  }
  free(cursor);
  free(ctx);
  if (rc == 0) s->takeover = 0;
  if (claimed > 0) {
    gm__log(GM_LOG_INFO, "settle",
            "claimed %lld outbox entries left pending by another consumer",
            claimed);
    s->pending = 1;
  }
  s->claimed_us = gm__clock_mono_us();
  return rc;
}

/* ---- reading ---- */

static gm__item *gm__item_add(gm__settler *s) {
  if (s->nitems == s->capitems) {
    s->capitems = s->capitems ? s->capitems * 2 : 256;
    s->items = realloc(s->items, s->capitems * sizeof *s->items);
    if (!s->items) abort();
  }
  gm__item *it = &s->items[s->nitems++];
  memset(it, 0, sizeof *it);
  return it;
}

/* Copies an XREADGROUP reply into items. */
/* A reply string, "" for anything else (the reply lives in the round's
   arena, so entries point into it). */
static const char *gm__str(const redisReply *r) {
  return r && r->str ? r->str : "";
}

static void gm__collect(gm__settler *s, const redisReply *r, int reread) {
  if (r->type != REDIS_REPLY_ARRAY) return;
  for (size_t i = 0; i < r->elements; i++) {
    const redisReply *sr = r->element[i];
    if (sr->type != REDIS_REPLY_ARRAY || sr->elements != 2 ||
        sr->element[0]->type != REDIS_REPLY_STRING ||
        sr->element[1]->type != REDIS_REPLY_ARRAY)
      continue;
    const char *stream = gm__str(sr->element[0]);
    const char *market = gm__stream_market(s->arena, stream);
    const redisReply *list = sr->element[1];
    for (size_t j = 0; j < list->elements; j++) {
      const redisReply *er = list->element[j];
      if (er->type != REDIS_REPLY_ARRAY || er->elements != 2 ||
          er->element[0]->type != REDIS_REPLY_STRING)
        continue;
      gm__item *it = gm__item_add(s);
      it->market = market;
      it->entry.stream = stream;
      it->entry.id = gm__str(er->element[0]);
      it->reread = reread;
      it->entry.kind = "";
      const redisReply *f = er->element[1];
      if (f->type != REDIS_REPLY_ARRAY) {
        it->gone = 1;
        continue;
      }
      size_t npairs = f->elements / 2, first = 0;
      if (npairs > 0 && strcmp(gm__str(f->element[0]), "kind") == 0) {
        it->entry.kind = gm__str(f->element[1]);
        first = 1;
        /* The host's marker on a replayed dead letter, not the market's. */
        if (npairs > 1 &&
            strcmp(gm__str(f->element[2]), GM__REPLAY_FIELD) == 0) {
          it->replay_of = gm__str(f->element[3]);
          first = 2;
        }
      }
      size_t n = npairs - first;
      const char **names = gm__arena_alloc(s->arena, (n + 1) * sizeof *names);
      const char **values = gm__arena_alloc(s->arena, (n + 1) * sizeof *values);
      for (size_t k = 0; k < n; k++) {
        names[k] = gm__str(f->element[2 * (first + k)]);
        values[k] = gm__str(f->element[2 * (first + k) + 1]);
      }
      it->entry.nfields = n;
      it->entry.names = names;
      it->entry.values = values;
    }
  }
}

/*
 * XREADGROUP over every stream from `id` ("0": our own pending entries;
 * ">": new ones), GM__CHUNK streams per pipelined round trip: one command
 * per chunk on a plain Redis, one per stream on a Redis Cluster, where a
 * command naming two streams (two hash tags) is refused with CROSSSLOT
 * (each goes to its slot's master).  COUNT is per stream, so each stream
 * is asked for its share of what the round still wants (s->want), and the
 * streams that filled their share are read again for the rest: a round
 * never holds more than s->want.  When there are more streams than
 * entries wanted, the next round starts after the last stream read, so
 * the streams behind the first ones are not starved.
 */
static int gm__read(gm__settler *s, const char *id, int block) {
  size_t per = s->cluster ? 1 : GM__CHUNK; /* streams per command */
  size_t ns = s->nstreams;
  if (ns == 0) return 0;
  /* BLOCK only when the round is one command: blocking on each in turn
     would delay the others' entries; the thread sleeps instead. */
  block = block && ns <= per;
  char ms[24];
  snprintf(ms, sizeof ms, "%d", s->cfg.block_ms);
  /* This pass's streams (indices into s->streams), the next pass's, and
     the id each stream reads after (a re-read of our pending entries
     continues after the last one delivered, not from "0" again). */
  size_t *cand = gm__arena_alloc(s->arena, ns * sizeof *cand);
  size_t *full = gm__arena_alloc(s->arena, ns * sizeof *full);
  const char **after = gm__arena_alloc(s->arena, ns * sizeof *after);
  /* Streams the first pass of a sweep did not reach are read in another
     sweep while the round wants more: a re-read of our pending entries
     that found none on the first streams must not end the pending state
     (the caller then reads new entries) while others hold some. */
  size_t covered = 0;
  int rc = 0;
  while (rc == 0 && covered < ns && s->nitems < s->want) {
    size_t start = s->read_at % ns, ncand = ns - covered;
    for (size_t k = 0; k < ncand; k++) {
      cand[k] = (start + k) % ns;
      after[cand[k]] = id;
    }
    int first = 1;
    while (rc == 0 && ncand > 0 && s->nitems < s->want) {
      size_t left = s->want - s->nitems;
      size_t share = left / ncand ? left / ncand : 1;
      size_t take = ncand < left ? ncand : left, nfull = 0;
      if (first) {
        s->read_at = (start + take) % ns;
        covered += take;
      }
      char *count = gm__arena_sprintf(s->arena, "%zu", share);
      for (size_t i = 0; i < take && rc == 0; i += GM__CHUNK) {
        size_t end = i + GM__CHUNK < take ? i + GM__CHUNK : take;
        size_t n = (end - i + per - 1) / per;
        const char ***argv = gm__arena_alloc(s->arena, n * sizeof *argv);
        int *argc = gm__arena_alloc(s->arena, n * sizeof *argc);
        redisReply **rep = gm__arena_alloc(s->arena, n * sizeof *rep);
        for (size_t c = 0; c < n; c++) {
          size_t from = i + c * per, to = from + per < end ? from + per : end;
          const char **v =
              gm__arena_alloc(s->arena, (10 + 2 * (to - from)) * sizeof *v);
          int k = 0;
          v[k++] = "XREADGROUP";
          v[k++] = "GROUP";
          v[k++] = GM__GROUP;
          v[k++] = s->consumer;
          v[k++] = "COUNT";
          v[k++] = count;
          if (block) {
            v[k++] = "BLOCK";
            v[k++] = ms;
            s->blocked = 1;
          }
          v[k++] = "STREAMS";
          for (size_t j = from; j < to; j++) v[k++] = s->streams[cand[j]];
          for (size_t j = from; j < to; j++) v[k++] = after[cand[j]];
          argv[c] = v;
          argc[c] = k;
        }
        /* The replies are built in the round's arena: the entries point into
           them instead of copying every field (and no malloc per field). */
        if (gm__redis_commands_in(s->redis, s->arena, n, argc,
                                  (const char *const *const *)argv, rep) != 0)
          rc = gm__redis_failed(s, "XREADGROUP");
        for (size_t c = 0; c < n; c++) {
          if (!rep[c]) continue;
          if (rep[c]->type == REDIS_REPLY_ERROR) {
            /* NOGROUP: a stream was deleted or Redis lost its data; make the
               groups again on the next round (MOVED: the map is read
               again). */
            gm__log(GM_LOG_WARN, "settle",
                    "XREADGROUP: %s; creating the groups again", rep[c]->str);
            s->regroup = 1;
            if (gm__redis_is_cluster(s->redis)) s->broken = 1;
            rc = -1;
            continue;
          }
          gm__collect(s, rep[c], strcmp(id, ">") != 0);
          if (rep[c]->type != REDIS_REPLY_ARRAY) continue;
          /* Replies name their streams in the command's order (those with
             nothing new left out): a stream that filled its share may hold
             more. */
          size_t j = i + c * per, to = j + per < end ? j + per : end;
          for (size_t e = 0; e < rep[c]->elements; e++) {
            const redisReply *sr = rep[c]->element[e];
            if (sr->type != REDIS_REPLY_ARRAY || sr->elements != 2 ||
                sr->element[1]->type != REDIS_REPLY_ARRAY)
              continue;
            const char *name = gm__str(sr->element[0]);
            while (j < to && strcmp(s->streams[cand[j]], name) != 0) j++;
            if (j == to) break;
            const redisReply *list = sr->element[1];
            if (list->elements >= share) {
              full[nfull++] = cand[j];
              const redisReply *last = list->element[list->elements - 1];
              if (strcmp(id, ">") != 0 && last->type == REDIS_REPLY_ARRAY &&
                  last->elements == 2)
                after[cand[j]] = gm__str(last->element[0]);
            }
            j++;
          }
        }
      }
      size_t *t = cand;
      cand = full;
      full = t;
      ncand = nfull;
      block = first = 0;
    }
  }
  /* Entries other commands of the round delivered are in our pending list
     now: read them again at once rather than after claim_idle_ms. */
  if (rc != 0) s->pending = 1;
  return rc;
}

/*
 * Whether Redis runs in cluster mode (configured, or INFO cluster: a node
 * given as a plain address), read again after each reconnect.  0, or -1
 * when Redis failed.
 */
static int gm__detect_cluster(gm__settler *s) {
  if (gm__redis_is_cluster(s->redis)) {
    s->cluster = s->cluster_known = 1;
    return 0;
  }
  redisReply *r = redisCommand(gm__redis_context(s->redis), "INFO cluster");
  if (!r || r->type != REDIS_REPLY_STRING) {
    if (r) freeReplyObject(r);
    return gm__redis_failed(s, "INFO cluster");
  }
  s->cluster = strstr(r->str, "cluster_enabled:1") != NULL;
  s->cluster_known = 1;
  freeReplyObject(r);
  return 0;
}

/* ---- writing ---- */

static void gm__log_quiet_market(gm__settler *s, const gm__item *it) {
  for (size_t i = 0; i < s->nquiet; i++)
    if (strcmp(s->quiet[i], it->market) == 0) return;
  s->quiet = realloc(s->quiet, (s->nquiet + 1) * sizeof *s->quiet);
  if (!s->quiet) abort();
  s->quiet[s->nquiet++] = gm__dup(it->market);
  gm__log(GM_LOG_WARN, "settle",
          "outbox entries of market '%s' (e.g. %s %s kind %s) are kept in "
          "gm_dead_letter: no loaded plugin settles them; load the plugin "
          "with a settle callback, then settle them from there",
          it->market, it->entry.stream, it->entry.id, it->entry.kind);
}

/* Runs one of the batch's fixed statements (BEGIN, COMMIT, gm_book) as the
   broker, through the ledger's cache of prepared statements: compiling
   them again for every batch (sqlite3_exec) cost more per batch than the
   statements themselves. */
static int gm__sql(gm__settler *s, const char *sql) {
  gm_ledger tx = {.ledger = s->ledger, .arena = s->arena, .market = "gm"};
  if (gm__ledger_exec(&tx, sql, NULL, 0) != GM_OK) { /* counted there */
    gm__log(GM_LOG_ERROR, "settle", "%s", tx.err);
    return -1;
  }
  return 0;
}

/*
 * Sets aside an entry whose callback kept failing: its fields and the last
 * error go to gm_dead_letter in this transaction (it is already in
 * gm_settled), so the rest of the outbox settles and nothing is dropped.
 */
static int gm__dead_letter(gm_ledger *tx, const gm__item *it, int64_t now,
                           const char *error, int failures) {
  const gm_outbox_entry *e = &it->entry;
  gm_param p[] = {GM_TEXT(e->stream), GM_TEXT(e->id), GM_TEXT(it->market),
                  GM_TEXT(e->kind),   GM_TEXT(error), GM_INT(failures),
                  GM_INT(now)};
  tx->market = "gm";
  tx->err[0] = '\0';
  if (gm__ledger_exec(tx,
                      "INSERT OR REPLACE INTO gm_dead_letter(stream, id, "
                      "market, kind, error, failures, set_aside_ms) "
                      "VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                      p, 7) != GM_OK)
    goto fail;
  for (size_t f = 0; f < e->nfields; f++) {
    gm_param q[] = {GM_TEXT(e->stream), GM_TEXT(e->id), GM_INT((int64_t)f),
                    GM_TEXT(e->names[f]), GM_TEXT(e->values[f])};
    if (gm__ledger_exec(tx,
                        "INSERT OR REPLACE INTO gm_dead_letter_field(stream, "
                        "id, n, name, value) VALUES(?1, ?2, ?3, ?4, ?5)",
                        q, 5) != GM_OK)
      goto fail;
  }
  return 0;
fail:
  gm__log(GM_LOG_ERROR, "settle", "dead letter for %s %s: %s", e->stream, e->id,
          tx->err);
  return -1;
}

/* One transaction for every item; the number written, or -1 (rolled back). */
/*
 * A replayed dead letter: its old row goes first, in the same transaction
 * as whatever becomes of the new entry (settled, or set aside again under
 * its new id; a rollback brings the row back).  The ledger, not the Redis
 * replay record, decides: when no row was there (a second replay after the
 * record was lost, or a forged marker), the entry is not settled again.
 * 1: go on with the entry; 0: skip it; -1: error.
 */
static int gm__forget_replayed(gm_ledger *tx, const gm__item *it) {
  if (!it->replay_of) return 1;
  gm_param p[] = {GM_TEXT(it->entry.stream), GM_TEXT(it->replay_of)};
  tx->market = "gm";
  tx->err[0] = '\0';
  if (gm__ledger_exec(tx,
                      "DELETE FROM gm_dead_letter_field WHERE stream = ?1 AND "
                      "id = ?2",
                      p, 2) != GM_OK ||
      gm__ledger_exec(tx,
                      "DELETE FROM gm_dead_letter WHERE stream = ?1 AND id = "
                      "?2",
                      p, 2) != GM_OK) {
    gm__log(GM_LOG_ERROR, "settle", "forgetting dead letter %s %s: %s",
            it->entry.stream, it->replay_of, tx->err);
    return -1;
  }
  if (sqlite3_changes(gm__ledger_db(tx->ledger)) == 1) return 1;
  gm__log(GM_LOG_WARN, "settle",
          "outbox entry %s %s replays dead letter %s, which is not in "
          "gm_dead_letter (replayed and settled already?): not settled again",
          it->entry.stream, it->entry.id, it->replay_of);
  return 0;
}

/* Whether it is the entry whose callback failed last ("<stream> <id>"):
   compared in place, as formatting the key for every entry of every batch
   showed in the settler's profile. */
static int gm__is_failing(const gm__settler *s, const gm__item *it) {
  if (!s->failing) return 0;
  size_t n = strlen(it->entry.stream);
  return strncmp(s->failing, it->entry.stream, n) == 0 &&
         s->failing[n] == ' ' && strcmp(s->failing + n + 1, it->entry.id) == 0;
}

/* gm_book's one row: "<id> <gen>" and its batch count. */
typedef struct gm__book_read {
  char book[80];
  long long batches;
  int found;
} gm__book_read;

static int gm__book_row(void *arg, size_t ncols, const gm_param *c) {
  gm__book_read *b = arg;
  if (ncols < 2 || c[0].type != GM_PARAM_TEXT || !c[0].s ||
      c[1].type != GM_PARAM_INT)
    return 1;
  snprintf(b->book, sizeof b->book, "%s", c[0].s);
  b->batches = c[1].i;
  b->found = 1;
  return 1;
}

/* Counts this batch in gm_book, in its transaction, and reads it back.  A
   new tenure's first batch also marks the file as written by this tenure:
   a file that went on without it (a holder cut off from Redis before it
   could record its last batch) no longer matches the mark, whatever its
   count.  What it went on from is kept (gm_book_from), so this file is
   still known as the book if the mark of this very batch never reaches
   Redis. */
static int gm__count_batch(gm__settler *s) {
  if (s->new_tenure &&
      gm__sql(s,
              "INSERT OR REPLACE INTO gm_book_from(one, gen, batches) "
              "SELECT 1, gen, batches FROM gm_book /* scan: one row */") != 0)
    return -1;
  if (gm__sql(s, s->new_tenure
                     ? "UPDATE gm_book SET batches = batches + 1, "
                       "gen = lower(hex(randomblob(8))) /* scan: one row */"
                     : "UPDATE gm_book SET batches = batches + 1 "
                       "/* scan: one row */") != 0)
    return -1;
  /* Read back through the prepared cache too (it was compiled for every
     batch: about 27 k instructions). */
  gm_ledger tx = {.ledger = s->ledger, .arena = s->arena, .market = "gm"};
  gm__book_read b = {.found = 0};
  if (gm__ledger_tx_query(&tx,
                          "SELECT id || ' ' || gen, batches FROM gm_book "
                          "/* scan: one row */",
                          NULL, 0, gm__book_row, &b) != GM_OK) {
    gm__log(GM_LOG_ERROR, "settle", "%s", tx.err);
    return -1;
  }
  if (!b.found) return -1;
  memcpy(s->book, b.book, sizeof s->book);
  s->book_batches = b.batches;
  return 0;
}

static int gm__write(gm__settler *s) {
  sqlite3 *db = gm__ledger_db(s->ledger);
  if (gm__sql(s, "BEGIN IMMEDIATE") != 0) return -1;
  gm_ledger tx = {.ledger = s->ledger, .arena = s->arena};
  int written = 0, aside = 0;
  int64_t now = gm__clock_now_ms();
  for (size_t i = 0; i < s->nitems; i++) {
    gm__item *it = &s->items[i];
    if (it->gone) {
      gm__log(GM_LOG_ERROR, "settle",
              "outbox entry %s %s was deleted before it was settled (someone "
              "ran XDEL or XTRIM on the stream); it cannot be settled",
              it->entry.stream, it->entry.id);
      continue;
    }
    gm_param p[] = {GM_TEXT(it->entry.stream), GM_TEXT(it->entry.id),
                    GM_TEXT(it->entry.kind), GM_INT(now)};
    tx.market = "gm";
    tx.err[0] = '\0';
    if (gm__ledger_exec(&tx,
                        "INSERT OR IGNORE INTO gm_settled(stream, id, kind, "
                        "settled_ms) VALUES(?1, ?2, ?3, ?4)",
                        p, 4) != GM_OK) {
      gm__log(GM_LOG_ERROR, "settle", "recording %s %s: %s", it->entry.stream,
              it->entry.id, tx.err);
      goto rollback;
    }
    if (sqlite3_changes(db) != 1) continue; /* settled before a crash */
    int go = gm__forget_replayed(&tx, it);
    if (go < 0) goto rollback;
    if (go == 0) continue;
    written++;
    gm_market *m = NULL;
    gm_settle_fn fn = s->cfg.lookup && *it->market
                          ? s->cfg.lookup(s->cfg.lookup_arg, it->market, &m)
                          : NULL;
    if (!fn) {
      /* Kept, not dropped: the plugin may be refused or not loaded here. */
      gm__log_quiet_market(s, it);
      if (gm__dead_letter(&tx, it, now, "no loaded plugin settles this market",
                          0) != 0)
        goto rollback;
      continue;
    }
    int poison =
        gm__is_failing(s, it) && s->fail_count >= s->cfg.dead_letter_after;
    if (poison) {
      if (gm__dead_letter(&tx, it, now, s->fail_error, s->fail_count) != 0)
        goto rollback;
      gm__log(GM_LOG_ERROR, it->market,
              "outbox entry %s %s kind %s failed to settle %d times (%s): set "
              "aside in gm_dead_letter so the rest settles; fix the plugin, "
              "then settle it from there (docs/operations.md)",
              it->entry.stream, it->entry.id, it->entry.kind, s->fail_count,
              s->fail_error);
      if (s->end_at_aside) { /* the rest is read again */
        s->nitems = i + 1;
        s->pending = 1;
        break;
      }
      aside = 1; /* failing is forgotten at COMMIT */
      continue;
    }
    tx.market = it->market;
    tx.err[0] = '\0';
    tx.refused = 0;
    tx.fault = 0;
    gm_status st = fn(m, &tx, &it->entry);
    /* A statement outside the market's tables was refused: the batch does
       not commit even when the callback went on as if nothing happened. */
    if (st == GM_OK && tx.refused) st = GM_PERMISSION_DENIED;
    if (st != GM_OK && tx.fault) {
      /* Disk full, I/O error, busy: the same for every entry; retried
         with backoff and never counted towards setting this one aside. */
      gm__log(GM_LOG_ERROR, it->market,
              "the ledger failed while settling %s %s (%s); the batch is "
              "rolled back and retried",
              it->entry.stream, it->entry.id, tx.err);
      goto rollback;
    }
    /* SQLite rolls the whole transaction back on some errors (full disk,
       I/O): a callback that ignored one must not let the batch go on. */
    if (st == GM_OK && sqlite3_get_autocommit(db)) {
      gm__log(GM_LOG_ERROR, it->market,
              "the ledger rolled the batch back during %s %s (%s); retrying",
              it->entry.stream, it->entry.id, sqlite3_errmsg(db));
      return -1;
    }
    if (st != GM_OK && aside) {
      s->end_at_aside = 1;
      gm__log(GM_LOG_ERROR, it->market,
              "settle callback failed on %s %s kind %s after %s was set "
              "aside in this batch; the batch is rolled back and the next "
              "one ends with setting that entry aside",
              it->entry.stream, it->entry.id, it->entry.kind, s->failing);
      goto rollback;
    }
    if (st != GM_OK) {
      if (gm__is_failing(s, it)) {
        s->fail_count++;
      } else {
        free(s->failing);
        size_t n = strlen(it->entry.stream) + strlen(it->entry.id) + 2;
        s->failing = malloc(n);
        if (!s->failing) abort();
        snprintf(s->failing, n, "%s %s", it->entry.stream, it->entry.id);
        s->fail_count = 1;
      }
      snprintf(s->fail_error, sizeof s->fail_error, "status %d: %s", (int)st,
               tx.err[0] ? tx.err : "no ledger error recorded");
      gm__log(GM_LOG_ERROR, it->market,
              "settle callback failed (%s) on %s %s kind %s, %d time(s) in a "
              "row; the batch of %zu entries is rolled back and retried later "
              "(after %d failures the entry is set aside in gm_dead_letter)",
              s->fail_error, it->entry.stream, it->entry.id, it->entry.kind,
              s->fail_count, s->nitems, s->cfg.dead_letter_after);
      goto rollback;
    }
  }
  /* Fencing: a holder that could not renew its lease in time must not
     commit what the next holder will settle from its own file. */
  if (s->cfg.gate && !s->cfg.gate(s->cfg.gate_arg)) {
    gm__log(GM_LOG_WARN, "settle",
            "the settle lease was not renewed in time: the batch of %zu "
            "entries is rolled back and left to the next holder",
            s->nitems);
    goto rollback;
  }
  if (s->cfg.committed && gm__count_batch(s) != 0) goto rollback;
  if (gm__sql(s, "COMMIT") != 0) goto rollback;
  s->new_tenure = 0;
  /* The entry that failed before was in this batch (pending entries are
     read again first) and has now settled or been set aside. */
  free(s->failing);
  s->failing = NULL;
  s->fail_count = 0;
  s->end_at_aside = 0;
  return written;
rollback:
  gm__sql(s, "ROLLBACK");
  return -1;
}

/* Parses a stream id "ms-seq"; 0 or -1. */
static int gm__id_parse(const char *id, uint64_t *ms, uint64_t *seq) {
  char *end = NULL;
  *ms = strtoull(id, &end, 10);
  if (!end || *end != '-') return -1;
  *seq = strtoull(end + 1, &end, 10);
  return *end ? -1 : 0;
}

static int gm__id_less(uint64_t ams, uint64_t aseq, uint64_t bms,
                       uint64_t bseq) {
  return ams < bms || (ams == bms && aseq < bseq);
}

/* The id right after `id` ("ms-seq"), or "" when it does not parse. */
static void gm__id_next(const char *id, char *out, size_t outlen) {
  uint64_t ms, seq;
  if (gm__id_parse(id, &ms, &seq) != 0) {
    out[0] = '\0';
    return;
  }
  if (seq == UINT64_MAX) {
    ms++;
    seq = 0;
  } else {
    seq++;
  }
  snprintf(out, outlen, "%llu-%llu", (unsigned long long)ms,
           (unsigned long long)seq);
}

/* Our group's last-delivered-id in an XINFO GROUPS reply, or NULL. */
static const char *gm__last_delivered(const redisReply *r) {
  if (r->type != REDIS_REPLY_ARRAY) return NULL;
  for (size_t g = 0; g < r->elements; g++) {
    const redisReply *f = r->element[g];
    const char *name = NULL, *last = NULL;
    if (f->type != REDIS_REPLY_ARRAY) continue;
    for (size_t k = 0; k + 1 < f->elements; k += 2) {
      if (f->element[k]->type != REDIS_REPLY_STRING ||
          f->element[k + 1]->type != REDIS_REPLY_STRING)
        continue;
      if (strcmp(f->element[k]->str, "name") == 0)
        name = f->element[k + 1]->str;
      else if (strcmp(f->element[k]->str, "last-delivered-id") == 0)
        last = f->element[k + 1]->str;
    }
    if (name && last && strcmp(name, GM__GROUP) == 0) return last;
  }
  return NULL;
}

/*
 * After COMMIT: XACK the batch, then trim each stream below the first entry
 * still needed.  Read in this order: the group's last-delivered-id L, then
 * its first pending id F.  Every entry below min(F, L+1) was delivered
 * before L was read and was not pending after, so it is acked, and nothing
 * can make it pending again; entries delivered meanwhile are above L.
 * XTRIM MINID drops whole listpack nodes: about 1% of the Redis time an
 * XDEL of every id costs (measured), and Redis runs the matching scripts
 * too.  A failure (or a crash) here only leaves entries that come back and
 * are recognised as settled, or that a later batch on the stream trims.
 */
static void gm__ack(gm__settler *s) {
  const char **argv = malloc((s->nitems + 3) * sizeof *argv);
  size_t *first = malloc((s->nitems + 1) * sizeof *first);
  char(*limit)[48] = malloc((s->nitems + 1) * sizeof *limit);
  redisContext **ctx = malloc((s->nitems + 1) * sizeof *ctx);
  if (!argv || !first || !limit || !ctx) abort();
  size_t nruns = 0;
  for (size_t i = 0; i < s->nitems;) {
    const char *stream = s->items[i].entry.stream;
    size_t j = i;
    int argc = 0;
    argv[argc++] = "XACK";
    argv[argc++] = stream;
    argv[argc++] = GM__GROUP;
    for (; j < s->nitems && strcmp(s->items[j].entry.stream, stream) == 0; j++)
      argv[argc++] = s->items[j].entry.id;
    redisContext *c = ctx[nruns] = gm__ctx(s, stream);
    first[nruns++] = i;
    redisAppendCommandArgv(c, argc, argv, NULL);
    redisAppendCommand(c, "XINFO GROUPS %s", stream);
    redisAppendCommand(c, "XPENDING %s " GM__GROUP, stream);
    i = j;
  }
  int failed = 0;
  for (size_t r = 0; r < nruns; r++) {
    redisReply *rep[3] = {NULL, NULL, NULL};
    limit[r][0] = '\0';
    int k = 0;
    for (; k < 3 && !ctx[r]->err; k++)
      if (redisGetReply(ctx[r], (void **)&rep[k]) != REDIS_OK || !rep[k]) break;
    if (k < 3) {
      for (int m = 0; m < k; m++) freeReplyObject(rep[m]);
      gm__redis_failed_on(s, ctx[r], "XACK");
      failed = 1;
      continue; /* that connection is broken; other nodes' replies follow */
    }
    const char *last = gm__last_delivered(rep[1]);
    if (rep[0]->type == REDIS_REPLY_ERROR) {
      failed = 1; /* keep reading: every reply must be taken off */
    } else if (last && rep[2]->type == REDIS_REPLY_ARRAY &&
               rep[2]->elements >= 2) {
      gm__id_next(last, limit[r], sizeof limit[r]);
      uint64_t pms, pseq, lms, lseq;
      if (rep[2]->element[1]->type == REDIS_REPLY_STRING && limit[r][0] &&
          gm__id_parse(rep[2]->element[1]->str, &pms, &pseq) == 0 &&
          gm__id_parse(limit[r], &lms, &lseq) == 0 &&
          gm__id_less(pms, pseq, lms, lseq))
        snprintf(limit[r], sizeof limit[r], "%s", rep[2]->element[1]->str);
    }
    for (int m = 0; m < 3; m++) freeReplyObject(rep[m]);
  }
  for (size_t r = 0; r < nruns; r++) {
    if (!limit[r][0] || ctx[r]->err) {
      limit[r][0] = '\0';
      continue;
    }
    redisAppendCommand(ctx[r], "XTRIM %s MINID %s",
                       s->items[first[r]].entry.stream, limit[r]);
  }
  for (size_t r = 0; r < nruns; r++) {
    if (!limit[r][0] || ctx[r]->err) continue;
    redisReply *t = NULL;
    if (redisGetReply(ctx[r], (void **)&t) != REDIS_OK || !t) {
      gm__redis_failed_on(s, ctx[r], "XTRIM");
      continue;
    }
    freeReplyObject(t);
  }
  free(argv);
  free(first);
  free(limit);
  free(ctx);
  /* Unacked entries are ours and pending: read them again next round. */
  if (failed) s->pending = 1;
}

/*
 * One round: refresh, claim, read (own pending first, else new), write,
 * ack.  Returns entries newly settled, or -1; *read says how many entries
 * were read.
 */
/*
 * Removes consumers of brokers that are gone (each broker name ever used
 * stays in the group otherwise).  Failures are logged and retried at the
 * next period: nothing depends on it.
 */
static void gm__prune(gm__settler *s) {
  char idle[24];
  snprintf(idle, sizeof idle, "%lld", (long long)s->cfg.prune_idle_ms);
  long long removed = 0;
  const char **argv = malloc((8 + GM__CHUNK) * sizeof *argv);
  if (!argv) abort();
  /* A script's keys must share a hash slot on a cluster: one stream each
     there (this runs every prune_every_us, so round trips do not matter). */
  size_t per = s->cluster ? 1 : GM__CHUNK;
  for (size_t i = 0; i < s->nstreams; i += per) {
    size_t end = i + per < s->nstreams ? i + per : s->nstreams;
    char nkeys[24];
    snprintf(nkeys, sizeof nkeys, "%zu", end - i);
    int argc = 0;
    argv[argc++] = "EVAL";
    argv[argc++] = gm__prune_lua;
    argv[argc++] = nkeys;
    for (size_t k = i; k < end; k++) argv[argc++] = s->streams[k];
    argv[argc++] = GM__GROUP;
    argv[argc++] = s->consumer;
    argv[argc++] = idle;
    redisContext *c = gm__ctx(s, s->streams[i]);
    redisReply *r = redisCommandArgv(c, argc, argv, NULL);
    if (!r || r->type != REDIS_REPLY_INTEGER) {
      gm__side_failed(s, c, r, "looking for dead consumers");
      if (r) freeReplyObject(r);
      break;
    }
    removed += r->integer;
    freeReplyObject(r);
  }
  free(argv);
  if (removed)
    gm__log(GM_LOG_INFO, "settle",
            "removed %lld consumer(s) of brokers idle over %lld ms with "
            "nothing pending",
            removed, (long long)s->cfg.prune_idle_ms);
  s->pruned_us = gm__clock_mono_us();
}

/* gm__retire_lua over streams[0..n) (each a tag's outbox) in `mode`
   ("check" or "retire"): ok[i] its answer.  0, or -1 when Redis failed
   (the chunks not answered are 0). */
static int gm__retire_eval(gm__settler *s, char **streams, size_t n,
                           const char *mode, char *ok) {
  size_t per = s->cluster ? 1 : GM__CHUNK;
  char idle[24], ttl[24];
  snprintf(idle, sizeof idle, "%lld", (long long)s->cfg.retire_idle_ms);
  snprintf(ttl, sizeof ttl, "%lld", (long long)gm__scripts_idem_ttl() * 1000);
  memset(ok, 0, n);
  const char **argv = malloc((7 + 4 * per) * sizeof *argv);
  char **dl = malloc(3 * per * sizeof *dl);
  if (!argv || !dl) abort();
  int rc = 0;
  for (size_t i = 0; i < n && rc == 0; i += per) {
    size_t end = i + per < n ? i + per : n;
    char nkeys[24];
    snprintf(nkeys, sizeof nkeys, "%zu", 4 * (end - i));
    int argc = 0;
    argv[argc++] = "EVAL";
    argv[argc++] = gm__retire_lua;
    argv[argc++] = nkeys;
    for (size_t k = i; k < end; k++) {
      /* gm__retire passes only tags' outboxes. */
      char **d = &dl[3 * (k - i)];
      d[0] = gm__tag_key(streams[k], GM__DEADLINE_SET);
      d[1] = gm__tag_key(streams[k], "outbox" GM__OUTBOX_RETIRED);
      d[2] = gm__tag_key(streams[k], GM__DEADLINE_CLAIMS);
      argv[argc++] = streams[k];
      argv[argc++] = d[0];
      argv[argc++] = d[1];
      argv[argc++] = d[2];
    }
    argv[argc++] = GM__GROUP;
    argv[argc++] = idle;
    argv[argc++] = mode;
    argv[argc++] = ttl;
    redisContext *c = gm__ctx(s, streams[i]);
    redisReply *r = redisCommandArgv(c, argc, argv, NULL);
    for (size_t k = 0; k < 3 * (end - i); k++) free(dl[k]);
    if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != end - i) {
      gm__side_failed(s, c, r, "looking for settled outbox streams to retire");
      if (!r && gm__redis_is_cluster(s->redis)) s->broken = 1;
      rc = -1;
    } else {
      for (size_t k = i; k < end; k++) {
        const redisReply *e = r->element[k - i];
        ok[k] = e->type == REDIS_REPLY_INTEGER && e->integer == 1;
      }
    }
    if (r) freeReplyObject(r);
  }
  free(dl);
  free(argv);
  return rc;
}

/* SADD or SREM of names[0..n) on gm:outboxes: the count changed, or -1. */
static long long gm__outboxes_change(gm__settler *s, const char *cmd,
                                     char **names, size_t n) {
  const char **argv = malloc((n + 2) * sizeof *argv);
  if (!argv) abort();
  argv[0] = cmd;
  argv[1] = "gm:outboxes";
  for (size_t k = 0; k < n; k++) argv[k + 2] = names[k];
  redisContext *set = gm__ctx(s, "gm:outboxes");
  redisReply *r = redisCommandArgv(set, (int)n + 2, argv, NULL);
  free(argv);
  long long changed = r && r->type == REDIS_REPLY_INTEGER ? r->integer : -1;
  if (changed < 0) {
    char what[64];
    snprintf(what, sizeof what, "%s gm:outboxes while retiring streams", cmd);
    gm__side_failed(s, set, r, what);
  }
  if (r) freeReplyObject(r);
  return changed;
}

/*
 * Retires outbox streams that have settled everything and been idle for
 * retire_idle_ms (a tender, a referral or an instrument no longer written):
 * each stream in gm:outboxes costs every round, claim sweep, metrics scrape
 * and deadline reconciliation a read, so without this their cost grew with
 * every tag ever written (docs/status.md).  A sweep looks at the next
 * GM__RETIRE_COUNT streams of the list.  For each it may retire: SREM from
 * gm:outboxes first, then the script checks again and deletes the stream
 * in one atomic step, and the streams it kept go back with SADD.  An entry
 * appended after the SREM is seen by that check (the stream is kept); one
 * appended after the delete makes the stream again, and the run that made
 * it registers it in gm:outboxes (gm.emit answers emitted 2: redis.c).  A
 * broker that stops between the SREM and the SADD leaves kept streams out
 * of the list until the discovery pass (at most GM__DISCOVER_EVERY_US).
 * Failures are logged and the sweep ends: nothing depends on it.
 */
static size_t gm__retire(gm__settler *s) {
  s->retired_us = gm__clock_mono_us();
  size_t ns = s->nstreams, nretired = 0;
  if (ns == 0) return 0;
  size_t take = ns < GM__RETIRE_COUNT ? ns : GM__RETIRE_COUNT, nc = 0;
  char **cand = malloc(take * sizeof *cand);
  char *ok = malloc(take);
  if (!cand || !ok) abort();
  for (size_t k = 0; k < take; k++) {
    char *st = s->streams[(s->retire_at + k) % ns];
    if (gm__tag_outbox(st)) cand[nc++] = st;
  }
  s->retire_at = (s->retire_at + take) % ns;
  gm__retire_eval(s, cand, nc, "check", ok);
  size_t nr = 0;
  for (size_t k = 0; k < nc; k++)
    if (ok[k]) cand[nr++] = cand[k];
  if (nr == 0 || gm__outboxes_change(s, "SREM", cand, nr) < 0) goto done;
  gm__retire_eval(s, cand, nr, "retire", ok);
  /* Those kept (or whose answer was lost) go back; a stream deleted after
     all is made again, empty, by the next refresh and retired later. */
  size_t nkept = 0;
  char **kept = malloc(nr * sizeof *kept);
  if (!kept) abort();
  for (size_t k = 0; k < nr; k++) {
    if (ok[k])
      cand[nretired++] = cand[k];
    else
      kept[nkept++] = cand[k];
  }
  if (nkept) gm__outboxes_change(s, "SADD", kept, nkept);
  free(kept);
  if (nretired == 0) goto done;
  /* Out of this settler's list at once: a read of a deleted stream would
     fail (NOGROUP).  The list is sorted: each retired name is found first,
     then freed, then the rest closes up. */
  char ***at = malloc(nretired * sizeof *at);
  if (!at) abort();
  for (size_t k = 0; k < nretired; k++)
    at[k] = bsearch(&cand[k], s->streams, s->nstreams, sizeof *s->streams,
                    gm__cmp_str);
  for (size_t k = 0; k < nretired; k++)
    if (at[k]) {
      free(*at[k]);
      *at[k] = NULL;
    }
  free(at);
  size_t w = 0;
  for (size_t i = 0; i < s->nstreams; i++)
    if (s->streams[i]) s->streams[w++] = s->streams[i];
  s->nstreams = w;
  s->outboxes_card -= (long long)nretired;
  if (s->nstreams) {
    s->read_at %= s->nstreams;
    s->retire_at %= s->nstreams;
  } else {
    s->read_at = s->retire_at = 0;
  }
  gm__log(GM_LOG_INFO, "settle",
          "retired %zu outbox stream(s) with everything settled and no entry "
          "for %lld s (%zu left); the next entry of a tag makes its stream "
          "again",
          nretired, (long long)(s->cfg.retire_idle_ms / 1000), s->nstreams);
done:
  free(ok);
  free(cand);
  return nretired;
}

/* The stream time of the oldest entry in hand (ids are "<ms>-<seq>", the
   ms Redis's clock when the entry was appended); 0 when none. */
static int64_t gm__oldest_ms(const gm__settler *s) {
  uint64_t oldest = 0;
  for (size_t i = 0; i < s->nitems; i++) {
    uint64_t ms, seq;
    if (gm__id_parse(s->items[i].entry.id, &ms, &seq) == 0 && ms > 0 &&
        (oldest == 0 || ms < oldest))
      oldest = ms;
  }
  return oldest > INT64_MAX ? INT64_MAX : (int64_t)oldest;
}

/*
 * With [redis] cluster_wait_replicas, gmd answers a mutating call only once
 * a replica has its write, and the settler commits an entry only once a
 * replica has it too: else a master that dies before replicating would
 * leave the ledger with a record the promoted replica never had.  One
 * `WAIT 1 <ms>` per node the batch was read on, sent to every node before
 * any reply is read (one replica round trip for the batch, not one per
 * node in turn), after every XREADGROUP of the round has been answered (a
 * WAIT blocks its connection: nothing is queued behind it).  Redis
 * documents that WAIT covers the client's previous writes: XREADGROUP ">"
 * and XAUTOCLAIM are replicated writes made after the entries they
 * deliver were appended, but a re-read of our pending list ("0") is not
 * replicated (measured: the replication offset does not move), and on a
 * connection opened since (a restart, a reconnect) the client may have
 * written nothing.  So a node whose entries were re-read first gets an
 * XCLAIM JUSTID of one of them to ourselves (min-idle 0: it is ours
 * already; JUSTID leaves the delivery count alone), a replicated write
 * after the entries.  (Redis 7.0.15 counts more than documented: every
 * write the master made up to the client's previous command of any kind,
 * a read too (docs/status.md open problem 6), so there the re-read alone
 * would do; the XCLAIM keeps the settler right under the documented
 * rule.)  Entries
 * of a node no replica acknowledged (or whose WAIT failed) are taken out
 * of the batch: they stay pending and are read again next round.  Returns
 * how many were held back.
 */
static size_t gm__replicated(gm__settler *s) {
  long ms = gm__scripts_wait_replicas();
  if (ms <= 0 || s->nitems == 0) return 0;
  size_t n = s->nitems;
  redisContext **ctx = malloc(n * sizeof *ctx);
  size_t *node_of = malloc(n * sizeof *node_of);
  long *claim = malloc(n * sizeof *claim); /* per node: item, or -1 */
  int *held = malloc(n * sizeof *held);
  if (!ctx || !node_of || !claim || !held) abort();
  size_t nnodes = 0;
  for (size_t i = 0; i < n; i++) {
    const gm__item *it = &s->items[i];
    size_t k = 0;
    if (i > 0 && strcmp(it->entry.stream, s->items[i - 1].entry.stream) == 0) {
      k = node_of[i - 1];
    } else {
      redisContext *c = gm__ctx(s, it->entry.stream);
      while (k < nnodes && ctx[k] != c) k++;
      if (k == nnodes) {
        ctx[nnodes] = c;
        claim[nnodes] = -1;
        held[nnodes++] = 0;
      }
    }
    node_of[i] = k;
    if (it->reread && !it->gone && claim[k] < 0) claim[k] = (long)i;
  }
  char wait_ms[24];
  snprintf(wait_ms, sizeof wait_ms, "%ld", ms);
  for (size_t k = 0; k < nnodes; k++) {
    if (claim[k] >= 0) {
      const gm__item *it = &s->items[claim[k]];
      const char *argv[] = {"XCLAIM", it->entry.stream, GM__GROUP, s->consumer,
                            "0",      it->entry.id,     "JUSTID"};
      redisAppendCommandArgv(ctx[k], 7, argv, NULL);
    }
    const char *argv[] = {"WAIT", "1", wait_ms};
    redisAppendCommandArgv(ctx[k], 3, argv, NULL);
  }
  size_t nheld = 0;
  const redisContext *first_held = NULL;
  long long first_acked = 0;
  for (size_t k = 0; k < nnodes; k++) {
    /* Every node's replies are read, whatever failed before: a reply left
       unread would answer the next command sent there. */
    redisReply *r[2] = {NULL, NULL};
    int want = claim[k] >= 0 ? 2 : 1, got = 0;
    while (got < want && !ctx[k]->err &&
           redisGetReply(ctx[k], (void **)&r[got]) == REDIS_OK && r[got])
      got++;
    long long acked = -1;
    if (got < want)
      gm__redis_failed_on(s, ctx[k], "WAIT");
    else if (r[want - 1]->type == REDIS_REPLY_INTEGER)
      acked = r[want - 1]->integer;
    for (int m = 0; m < got; m++) freeReplyObject(r[m]);
    if (acked < 1) {
      held[k] = 1;
      if (!first_held) {
        first_held = ctx[k];
        first_acked = acked;
      }
    }
  }
  size_t kept = 0;
  for (size_t i = 0; i < n; i++) {
    if (held[node_of[i]])
      nheld++;
    else
      s->items[kept++] = s->items[i];
  }
  s->nitems = kept;
  uint64_t now = gm__clock_mono_us();
  if (nheld && (!s->held_logged_us ||
                now - s->held_logged_us >= GM__HELD_LOG_EVERY_US)) {
    char where[300];
    gm__redis_ctx_where(first_held, where, sizeof where);
    gm__log(GM_LOG_WARN, "settle",
            "%zu outbox entries read on Redis at %s are not settled yet: %s "
            "(WAIT 1 %ld, [redis] cluster_wait_replicas); they stay pending "
            "and are settled once a replica has them: check that master's "
            "replicas (ROLE, INFO replication) and bring one back",
            nheld, where,
            first_acked == 0 ? "no replica acknowledged them in time"
                             : "waiting for a replica failed",
            ms);
    s->held_logged_us = now;
  }
  free(ctx);
  free(node_of);
  free(claim);
  free(held);
  return nheld;
}

static int gm__round(gm__settler *s, size_t *read) {
  *read = 0;
  s->blocked = 0;
  s->nitems = 0;
  gm__arena_reset(s->arena);
  if (s->cfg.gate) {
    uint64_t tenure = s->cfg.gate(s->cfg.gate_arg);
    if (!tenure) {
      s->tenure = 0;
      s->idle = 1;
      atomic_store(&s->oldest_ms, 0);
      return 0;
    }
    if (tenure != s->tenure) {
      s->tenure = tenure;
      s->takeover = 1;
      s->new_tenure = 1;
      s->claimed_us = 0;
      s->pending = 1;
    }
  }
  if (s->broken || gm__redis_context(s->redis)->err) {
    if (gm__redis_reconnect(s->redis) != GM_OK)
      return gm__redis_failed(s, "reconnect");
    /* Maybe a new server (restart, failover) without our groups. */
    s->regroup = 1;
    s->cluster_known = 0;
    s->broken = 0;
  }
  if (!s->cluster_known && gm__detect_cluster(s) != 0) return -1;
  if (s->regroup) {
    gm__streams_clear(s);
    s->refreshed_us = 0;
    s->regroup = 0;
  }
  uint64_t now = gm__clock_mono_us();
  if (s->refreshed_us && now - s->refreshed_us < GM__REFRESH_US) {
    /* A new stream (a new instrument, tender, ...) is read at once, not at
       the next periodic refresh: SCARD is O(1). */
    redisContext *set = gm__ctx(s, "gm:outboxes");
    redisReply *n = redisCommand(set, "SCARD gm:outboxes");
    if (!n) return gm__redis_failed_on(s, set, "SCARD gm:outboxes");
    if (n->type == REDIS_REPLY_INTEGER && n->integer != s->outboxes_card)
      s->refreshed_us = 0;
    freeReplyObject(n);
  }
  if (!s->refreshed_us || now - s->refreshed_us >= GM__REFRESH_US) {
    if (gm__refresh(s) != 0) return -1;
  }
  if (!s->discovered_us || now - s->discovered_us >= GM__DISCOVER_EVERY_US) {
    snprintf(s->discover_at, sizeof s->discover_at, "0");
    s->discover_node = 0;
    s->discovered_us = now;
  }
  if (s->discover_at[0] && gm__discover(s) != 0) return -1;
  if (!s->claimed_us || now - s->claimed_us >= s->claim_every_us) {
    if (gm__claim(s) != 0) return -1;
  }
  if (!s->pruned_us || now - s->pruned_us >= s->prune_every_us) gm__prune(s);
  if (s->cfg.retire_idle_ms > 0 &&
      (!s->retired_us || now - s->retired_us >= GM__RETIRE_EVERY_US))
    gm__retire(s);
  if (s->pending) {
    if (gm__read(s, "0", 0) != 0) return -1;
    if (s->nitems == 0) s->pending = 0;
  }
  /* Entries held back for want of a replica stay pending, so every round
     re-reads them: new entries are read in the same round too, else the
     other masters' streams would wait for that master's replica.  A "0"
     read that left room in the round read every stream's pending entries
     in full, so the new ones come after them in each stream's order. */
  if ((!s->pending || s->held) &&
      gm__read(s, ">", s->pending ? 0 : s->idle) != 0)
    return -1;
  if (s->redis_down) {
    gm__log(GM_LOG_INFO, "settle", "Redis is back; settlement resumes");
    s->redis_down = 0;
  }
  *read = s->nitems;
  s->idle = s->nitems == 0;
  /* A full round means the outboxes are behind: read (and commit) twice as
     many next time, up to GM__BEHIND_MAX batches.  Each round's few Redis
     commands wait in Redis behind the workers' pipelined scripts, so under
     load the number of rounds, not SQLite, bounded the settler: with the
     default batch of 512 it ended 0.6-1.5 s behind a saturating run of the
     order benchmark, with 4096 0.03-0.12 s (docs/status.md). */
  size_t most = (size_t)s->cfg.batch_size * GM__BEHIND_MAX;
  s->want = s->nitems >= s->want ? (s->want * 2 < most ? s->want * 2 : most)
                                 : (size_t)s->cfg.batch_size;
  atomic_store(&s->oldest_ms, gm__oldest_ms(s));
  s->held = gm__replicated(s) > 0;
  if (s->held) {
    s->pending = 1; /* the entries held back are read again */
    *read = s->nitems;
  }
  if (s->nitems == 0) return 0;
  int written = gm__write(s);
  if (written < 0) {
    atomic_fetch_add(&s->batch_failures, 1);
    s->pending = 1;
    return -1;
  }
  atomic_fetch_add(&s->settled, (uint64_t)written);
  atomic_fetch_add(&s->batches, 1);
  atomic_fetch_add(&s->batch_entries, (uint64_t)s->nitems);
  unsigned b = 0;
  while (b + 1 < GM__SETTLE_SIZE_BUCKETS &&
         s->nitems > gm__settle_size_bound(b))
    b++;
  atomic_fetch_add(&s->batch_size[b], 1);
  /* The book's mark in Redis first: once entries are acknowledged, only a
     file holding them may settle after this one. */
  if (s->cfg.committed &&
      s->cfg.committed(s->cfg.gate_arg, s->book, s->book_batches) != 0) {
    s->pending = 1;
    return written;
  }
  gm__ack(s);
  return written;
}

static void *gm__run(void *arg) {
  gm__settler *s = arg;
  long backoff = GM__BACKOFF_MIN_MS;
  while (!atomic_load(&s->stop)) {
    atomic_store(&s->beat_us, gm__clock_mono_us());
    size_t read;
    long wait = 0;
    if (gm__round(s, &read) < 0) {
      wait = backoff;
      backoff =
          backoff * 2 > GM__BACKOFF_MAX_MS ? GM__BACKOFF_MAX_MS : backoff * 2;
    } else {
      backoff = GM__BACKOFF_MIN_MS;
      if (read == 0 && !s->blocked)
        wait = s->cfg.block_ms;
      else if (read > 0 && read < (size_t)s->cfg.batch_size / 4)
        /* A trickle under load: let entries gather for a few ms, so each
           transaction and XACK/XTRIM round carries many instead of one. */
        wait = s->cfg.linger_ms;
    }
    /* Sleep in slices so stop is not delayed by a long backoff. */
    while (wait > 0 && !atomic_load(&s->stop)) {
      long slice = wait < 50 ? wait : 50;
      gm__sleep_ms(slice);
      wait -= slice;
      atomic_store(&s->beat_us, gm__clock_mono_us());
    }
  }
  return NULL;
}

gm__settler *gm__settler_start(const gm__settle_config *cfg, char *err,
                               size_t errlen) {
  gm__settler *s = calloc(1, sizeof *s);
  if (!s) abort();
  s->cfg = *cfg;
  s->unix_path = gm__dup(cfg->redis.unix_path);
  s->host = gm__dup(cfg->redis.host);
  s->ledger_path = gm__dup(cfg->ledger_path);
  if (cfg->consumer && *cfg->consumer) {
    s->consumer = gm__dup(cfg->consumer);
  } else {
    char host[256] = "gmd";
    gethostname(host, sizeof host - 1);
    char buf[300];
    snprintf(buf, sizeof buf, "%s:%ld", host, (long)getpid());
    s->consumer = gm__dup(buf);
  }
  s->cfg.redis.unix_path = s->unix_path;
  s->cfg.redis.host = s->host;
  s->cfg.ledger_path = s->ledger_path;
  s->cfg.consumer = s->consumer;
  if (s->cfg.batch_size <= 0) s->cfg.batch_size = 512;
  s->want = (size_t)s->cfg.batch_size;
  if (s->cfg.block_ms <= 0) s->cfg.block_ms = 100;
  if (s->cfg.linger_ms < 0) s->cfg.linger_ms = 0;
  if (s->cfg.dead_letter_after <= 0) s->cfg.dead_letter_after = 5;
  if (s->cfg.claim_idle_ms <= 0) s->cfg.claim_idle_ms = 30000;
  /* Sweep twice per idle period, at most every 5 s, at least every 10 ms. */
  int64_t every = s->cfg.claim_idle_ms / 2;
  every = every < 10 ? 10 : every > 5000 ? 5000 : every;
  s->claim_every_us = (uint64_t)every * 1000u;
  if (s->cfg.prune_idle_ms <= 0) s->cfg.prune_idle_ms = 3600000;
  s->prune_every_us = (uint64_t)s->cfg.prune_idle_ms * 1000u;
  if (s->prune_every_us > GM__PRUNE_EVERY_US)
    s->prune_every_us = GM__PRUNE_EVERY_US;
  s->pending = 1; /* a restarted consumer of the same name resumes its PEL */
  s->arena = gm__arena_new();
  if (!s->ledger_path) {
    snprintf(err, errlen, "the settlement writer needs [ledger] path");
    goto fail;
  }
  s->redis = gm__redis_connect(&s->cfg.redis, err, errlen);
  if (!s->redis) goto fail;
  s->ledger = gm__ledger_open(s->ledger_path, 0, err, errlen);
  if (!s->ledger) goto fail;
  if (!cfg->no_thread) {
    atomic_store(&s->beat_us, gm__clock_mono_us());
    if (pthread_create(&s->thread, NULL, gm__run, s) != 0) {
      snprintf(err, errlen, "cannot start the settlement thread: %s",
               strerror(errno));
      goto fail;
    }
    pthread_setname_np(s->thread, "gmd-settle");
    s->started = 1;
  }
  return s;
fail:
  gm__settler_stop(&s);
  return NULL;
}

void gm__settler_stop(gm__settler **sp) {
  if (!sp || !*sp) return;
  gm__settler *s = *sp;
  if (s->started) {
    atomic_store(&s->stop, 1);
    pthread_join(s->thread, NULL);
  }
  gm__redis_destroy(&s->redis);
  gm__ledger_close(&s->ledger);
  gm__arena_destroy(&s->arena);
  gm__streams_clear(s);
  for (size_t i = 0; i < s->nquiet; i++) free(s->quiet[i]);
  free(s->quiet);
  free(s->items);
  free(s->unix_path);
  free(s->host);
  free(s->ledger_path);
  free(s->consumer);
  free(s->failing);
  free(s);
  *sp = NULL;
}

uint64_t gm__settler_settled(const gm__settler *s) {
  return atomic_load(&((gm__settler *)s)->settled);
}

uint64_t gm__settle_size_bound(unsigned i) {
  return i + 1 < GM__SETTLE_SIZE_BUCKETS ? (uint64_t)1 << (2 * i) : UINT64_MAX;
}

void gm__settler_stats(const gm__settler *cs, gm__settle_stats *out) {
  gm__settler *s = (gm__settler *)cs; /* atomic loads only */
  out->settled = atomic_load(&s->settled);
  out->batches = atomic_load(&s->batches);
  out->batch_failures = atomic_load(&s->batch_failures);
  out->batch_entries = atomic_load(&s->batch_entries);
  for (unsigned i = 0; i < GM__SETTLE_SIZE_BUCKETS; i++)
    out->batch_size[i] = atomic_load(&s->batch_size[i]);
  out->oldest_ms = atomic_load(&s->oldest_ms);
  out->beat_us = atomic_load(&s->beat_us);
}

int gm__settler_drain_once(gm__settler *s) {
  if (s->started) return -1;
  size_t read;
  return gm__round(s, &read);
}

int gm__settler_retire_once(gm__settler *s) {
  if (s->started) return -1;
  return (int)gm__retire(s);
}
