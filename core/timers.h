/*
 * Plugin timers: one thread calls each registered callback every interval,
 * serially, with a gm_call that has the thread's own Redis connection.
 */
#ifndef GM_CORE_TIMERS_H
#define GM_CORE_TIMERS_H

#include "events.h"
#include "greenmarket/plugin.h"
#include "redis.h"

struct gm__ledger;

typedef struct gm__timers gm__timers;

gm__timers *gm__timers_new(void);
/* Registers before start; GM_INVALID_ARGUMENT for a non-positive interval. */
gm_status gm__timers_add(gm__timers *t, gm_market *m, const char *name,
                         int64_t interval_ms, gm_timer_fn fn, void *arg);
/* Forgets every timer of market m (a plugin refused or unloaded); before
   start, or after destroy's join, only. */
void gm__timers_remove(gm__timers *t, const gm_market *m);
/*
 * Starts the thread: it connects to Redis at `addr`, opens the ledger
 * read-only at ledger_path, and hands events to `events` (shared, not
 * owned).
 */
struct gm__ledger_remote;

/* Where timers' ledger reads go (ledger.h; NULL, the default: the local
   file); before gm__timers_start; used by the timer thread only. */
void gm__timers_set_remote(gm__timers *t, struct gm__ledger_remote *remote);
int gm__timers_start(gm__timers *t, const gm__redis_addr *addr,
                     const char *ledger_path, gm__events *events, char *err,
                     size_t errlen);
/* Stops the thread (after the callback in hand), frees, nulls *t. */
void gm__timers_destroy(gm__timers **t);

#endif
