/*
 * Deadlines: one-shot plugin callbacks at a time kept in Redis
 * (gm_host_api.deadline_register, deadline_set, deadline_cancel and the
 * scripts' gm.deadline*).
 *
 * Keys (see core/redis.h):
 *   gm:{<market>:<tag>}:dl         zset "<kind>|<id>" -> due ms: the truth,
 *                                  written by scripts with the entity
 *   gm:{<market>:<tag>}:dl:claims  hash "<kind>|<id>" -> the claim of the
 *                                  broker firing it, "#" -> firing counter
 *   gm:deadlines                   zset "<market>:<tag>" -> a lower bound of
 *                                  the tag's next due or claim expiry
 *   gm:deadlines:reconcile         the reconciliation lease (a broker name)
 *
 * Each broker that registered a deadline kind runs one thread that polls the
 * index every [deadlines] poll_ms, claims due deadlines tag by tag, fires
 * them one at a time, and now and then rebuilds the index from gm:outboxes.
 * Why each deadline fires once, and how the index stays a lower bound, is
 * written at the top of deadlines.c.
 */
#ifndef GM_CORE_DEADLINES_H
#define GM_CORE_DEADLINES_H

#include <stddef.h>
#include <stdint.h>

#include "events.h"
#include "greenmarket/plugin.h"
#include "redis.h"

typedef struct gm__deadlines gm__deadlines;

typedef struct gm__deadlines_config {
  const gm__redis_addr *redis; /* the Redis every thread uses */
  const char *ledger_path;     /* opened read-only for the callbacks */
  gm__events *events;          /* the queue to the publisher (shared) */
  const char *broker;          /* the broker's name: owner of its claims */
  long poll_ms;                /* [deadlines] poll_ms */
  long claim_ms;               /* [deadlines] claim_ms */
  long reconcile_s;            /* [deadlines] reconcile_s */
  /* The loaded market of that name, or NULL (not loaded on this broker). */
  gm_market *(*find)(void *arg, const char *market);
  void *find_arg;
  /* Where the callbacks' ledger reads go (ledger.h; NULL: the local file);
     used by the deadline thread only, owned by the caller. */
  struct gm__ledger_remote *remote;
} gm__deadlines_config;

/* What the metrics show: tags, not deadlines (the index has one member per
   tag; counting deadlines would read every tag). */
typedef struct gm__deadline_counts {
  int64_t pending;  /* tags with a deadline not done (ZCARD gm:deadlines) */
  int64_t late;     /* of those, tags whose next deadline was due more than
                       1 s ago and is not claimed by a live broker */
  int64_t as_of_ms; /* when counted (host clock); 0: not yet */
} gm__deadline_counts;

gm__deadlines *gm__deadlines_new(void);
/* Non-zero when kind is [a-z][a-z0-9_]*, 1 to 32 characters. */
int gm__deadline_kind_valid(const char *kind);
/*
 * Registers market m's callback for `kind` (plugin init only, before
 * start).  GM_INVALID_ARGUMENT for a bad kind or a NULL fn, GM_ALREADY_EXISTS
 * for a kind m registered before; err says why.
 */
gm_status gm__deadlines_register(gm__deadlines *d, gm_market *m,
                                 const char *kind, gm_deadline_fn fn, void *arg,
                                 char *err, size_t errlen);
/* Non-zero when m registered `kind` (kind NULL: any kind). */
int gm__deadlines_known(const gm__deadlines *d, const gm_market *m,
                        const char *kind);
/* Forgets every kind of market m (a plugin refused or unloaded); before
   start, or after destroy's join, only. */
void gm__deadlines_remove(gm__deadlines *d, const gm_market *m);
/*
 * Starts the poller thread when any kind is registered (none: nothing to
 * fire here, and 0 with no thread).  0, or -1 and err.
 */
int gm__deadlines_start(gm__deadlines *d, const gm__deadlines_config *c,
                        char *err, size_t errlen);
/* Stops the thread (after the callback in hand) and closes its
   connections; the registry stays for deadline_set checks still running
   in workers.  Idempotent. */
void gm__deadlines_stop(gm__deadlines *d);
/* Stops, frees, nulls *d (after the plugins are unloaded). */
void gm__deadlines_destroy(gm__deadlines **d);
/*
 * The pending and late counts, as the poller last read them (once a second;
 * two Redis commands, O(log n) in the tags): cheap to call from any thread.
 * All zero on a broker that fires no deadlines (no kind registered).
 */
void gm__deadlines_counts(const gm__deadlines *d, gm__deadline_counts *out);
/*
 * The two counts as metrics gauges (gm__metrics_gauge_fn; arg: the
 * gm__deadlines): greenmarket_deadlines_pending and _late.  -1 (no sample)
 * until the poller has counted once, so a broker that fires no deadlines
 * shows none rather than a zero that says nothing.
 */
int gm__deadlines_gauge_pending(void *arg, double *value);
int gm__deadlines_gauge_late(void *arg, double *value);

#endif
