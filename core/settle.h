/*
 * The settlement writer: drains every outbox stream listed in gm:outboxes
 * into the ledger.  One thread with its own Redis connection and the ledger's
 * writer connection.  Per batch: XREADGROUP (group "gm-settle") up to
 * batch_size entries (twice as many after each full batch, up to 8x, while
 * the outboxes are behind), BEGIN, for each entry INSERT OR IGNORE into
 * gm_settled and, when new, call the market's settle callback, COMMIT, then
 * XACK and XTRIM MINID below the group's first entry still needed. Entries
 * pending longer than claim_idle_ms (a dead consumer's) are claimed with
 * XAUTOCLAIM.  kill -9 at any point loses nothing and doubles nothing. An entry
 * whose settle callback fails dead_letter_after times in a row is set aside,
 * fields and error, in gm_dead_letter (and counted settled), so one bad entry
 * cannot stop settlement; nothing is dropped.
 */
#ifndef GM_CORE_SETTLE_H
#define GM_CORE_SETTLE_H

#include <stdint.h>

#include "greenmarket/plugin.h"
#include "redis.h"

/* Finds the market and its settle callback by market name; NULL fn: none. */
typedef gm_settle_fn (*gm__settle_lookup_fn)(void *arg, const char *market,
                                             gm_market **m);

typedef struct gm__settle_config {
  gm__redis_addr redis;
  const char *ledger_path;
  const char *consumer;  /* unique per broker, same across its restarts */
  int batch_size;        /* entries per transaction, default 512; up to 8x that
                            while the outboxes are behind */
  int block_ms;          /* XREADGROUP BLOCK when idle, default 100 */
  int linger_ms;         /* wait after a small batch to gather more; 0: none */
  int64_t claim_idle_ms; /* claim entries pending longer, default 30000 */
  int64_t prune_idle_ms; /* remove other consumers with nothing pending
                            that were idle longer, default 3600000 */
  /* A stream with every entry settled, no deadline on its tag and no new
     entry for this long is deleted and leaves gm:outboxes (the next entry
     makes it again); 0: never.  gmd: [ledger] outbox_retire_s. */
  int64_t retire_idle_ms;
  gm__settle_lookup_fn lookup;
  void *lookup_arg;
  int dead_letter_after; /* failures of one entry in a row before it is set
                            aside in gm_dead_letter; default 5 (gmd:
                            [ledger] dead_letter_after) */
  int no_thread; /* tests: no thread; drive with gm__settler_drain_once */
  /* The settle lease (lease.h; NULL: always settles): 0 while this broker
     may not settle, checked before each round and before each COMMIT;
     else its tenure, and a new tenure claims every pending entry at once
     (the lease proves their consumer gone) instead of after claim_idle_ms. */
  uint64_t (*gate)(void *arg);
  void *gate_arg;
  /* With a gate: called (with gate_arg) after each COMMIT and before its
     XACK with the file's gm_book ("<id> <gen>", batches committed); non-zero
     leaves the
     entries pending (read again, recognised, acknowledged later). */
  int (*committed)(void *arg, const char *book, long long batches);
} gm__settle_config;

typedef struct gm__settler gm__settler;

/* Starts the writer thread; NULL and err on failure. */
gm__settler *gm__settler_start(const gm__settle_config *cfg, char *err,
                               size_t errlen);
/* Finishes the batch in hand, stops the thread, nulls *s; idempotent. */
void gm__settler_stop(gm__settler **s);
/* Entries written to the ledger by this settler (not counting duplicates). */
uint64_t gm__settler_settled(const gm__settler *s);
/* Batch sizes are counted in buckets of at most 1, 4, 16, ... 4^8 entries,
   and one for larger batches. */
#define GM__SETTLE_SIZE_BUCKETS 10
/* The upper bound (inclusive) of size bucket i; UINT64_MAX for the last. */
uint64_t gm__settle_size_bound(unsigned i);

/* What the settler has done, for the metrics endpoint (any thread). */
typedef struct gm__settle_stats {
  uint64_t settled;        /* entries written (as gm__settler_settled) */
  uint64_t batches;        /* transactions committed */
  uint64_t batch_failures; /* transactions rolled back (a callback or SQLite
                              failed); the entries are read again */
  uint64_t batch_entries;  /* entries read by the committed batches */
  uint64_t batch_size[GM__SETTLE_SIZE_BUCKETS]; /* committed batches by size */
  int64_t oldest_ms; /* stream time (ms since 1970) of the oldest entry in
                        the batch in hand; 0 when the last read found none */
  uint64_t beat_us;  /* monotonic time the thread last showed it runs */
} gm__settle_stats;

void gm__settler_stats(const gm__settler *s, gm__settle_stats *out);

/* Runs one batch synchronously (no_thread only): entries settled, or -1. */
int gm__settler_drain_once(gm__settler *s);

/* Runs one sweep for streams to retire now (no_thread only; the thread
   sweeps every few seconds when retire_idle_ms is set): streams retired
   (a Redis failure is logged and retires fewer), or -1 when the settler
   runs its own thread. */
int gm__settler_retire_once(gm__settler *s);

#endif
