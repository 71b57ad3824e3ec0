/*
 * The broker: a ROUTER for requests, worker threads that decode envelopes and
 * call plugins, a PUB feed, the settlement writer and the timers.
 *
 * Threads and sockets:
 *   main     ROUTER (clients) <-> DEALER inproc://gm-workers (this file)
 *   publisher PULL inproc://gm-events -> PUB (feed), stamps Event.seq
 *            (publisher.c)
 *   worker*N DEALER to gm-workers, PUSH to gm-events, own Redis + ledger
 *            reader (worker.c; each request: dispatch.c, identity.c)
 *   timers   PUSH to gm-events, own Redis + ledger reader (timers.c)
 *   deadlines PUSH to gm-events, own Redis + ledger reader (deadlines.c)
 *   settler  own Redis + ledger writer (settle.c)
 *   zap      REP inproc://zeromq.zap.01 (CURVE mode only), own Redis (auth.c)
 *   metrics  HTTP on [metrics] listen (when set), own Redis + ledger reader
 *            (metrics.c)
 */
#ifndef GM_CORE_BROKER_H
#define GM_CORE_BROKER_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "greenmarket/plugin.h"
#include "stats.h"

/* The wire protocol's version (Request.version, Reply.version). */
#define GM__PROTOCOL_VERSION 1

typedef struct gm__broker gm__broker;
typedef struct gm__redis_stop gm__redis_stop;

/*
 * Reads the configuration, connects to Redis, opens the ledger and loads the
 * plugins.  A plugin that is refused is logged and skipped; the others load.
 * NULL and err when the broker cannot run at all.  Every Redis connection
 * of the broker is one of `stop` (redis.h), the caller's, which it destroys
 * after the broker (NULL: the broker makes and destroys its own): cutting
 * it (gm__redis_stop_now) ends what the start waits for from Redis.
 */
gm__broker *gm__broker_new(const gm__config *cfg, gm__redis_stop *stop,
                           char *err, size_t errlen);
/* Binds, starts every thread and serves until gm__broker_stop. 0 or -1. */
int gm__broker_run(gm__broker *b, char *err, size_t errlen);
/* Asks run to return; async-signal-safe. */
void gm__broker_stop(gm__broker *b);
/* The same from a thread (not a signal handler): and while run has not
   reached its loop yet (a start), cuts the broker's Redis connections at
   once (gm__redis_stop_now), so a start held by a Redis that does not
   answer ends now. */
void gm__broker_interrupt(gm__broker *b);
/* Non-zero once run has reached its loop (it served). */
int gm__broker_served(gm__broker *b);
/*
 * Blocks SIGINT and SIGTERM in the calling thread (gmd's first line: every
 * thread made after inherits it, and one thread takes them with sigwait)
 * and fills *set with them.  A child that a plugin forks gets them
 * unblocked again (a pthread_atfork handler): a program it runs (fork and
 * exec) must stop on SIGTERM.  posix_spawn runs no fork handlers: its
 * caller sets the child's mask (POSIX_SPAWN_SETSIGMASK; docs/plugins.md).
 */
void gm__broker_block_signals(sigset_t *set);
/* Stops threads, unloads plugins, frees; nulls *b. */
void gm__broker_destroy(gm__broker **b);
/* How many plugins loaded, and the i-th (NULL past the end). */
size_t gm__broker_markets(const gm__broker *b);
gm_market *gm__broker_market(const gm__broker *b, size_t i);
/* How many plugin files were refused at start (logged with the reason). */
size_t gm__broker_refused(const gm__broker *b);
/* How many [market.NAME] sections name no loaded market and no plugin file
 * in [plugins] dir (each logged at start): keys no market reads. */
size_t gm__broker_unread_sections(const gm__broker *b);
/* The loaded market named `name`, or NULL. */
gm_market *gm__broker_find_market(const gm__broker *b, const char *name);

struct gm__roles;
/* The roles it knows: admin and the loaded markets' (roles.h). */
const struct gm__roles *gm__broker_roles(const gm__broker *b);

/* What the broker's parts read and count while it runs. */
const char *gm__broker_name(const gm__broker *b);
int gm__broker_dev_mode(const gm__broker *b);
long gm__broker_max_message(const gm__broker *b);
/* Milliseconds since the broker started, by the monotonic clock: neither
   a manual clock nor the offset to Redis's moves it. */
int64_t gm__broker_uptime_ms(const gm__broker *b);
/* The counters of the core methods (market "gm"), and of each of them
   (gm__core_methods[i]). */
gm__stats *gm__broker_core_stats(gm__broker *b);
gm__stats *gm__broker_core_method_stats(gm__broker *b);
/* Frames that were no request (undecodable, too many, too large). */
void gm__broker_count_bad_frame(gm__broker *b);
uint64_t gm__broker_bad_frames(const gm__broker *b);
/* Entries this broker's settler has settled (0 when it settles none). */
uint64_t gm__broker_settled(const gm__broker *b);
/* A client for ledger reads routed to the settle lease's holder, for the
   thread that owns zctx's socket it opens (ledger_route.h); NULL before the
   broker runs. */
struct gm__ledger_link *gm__broker_ledger_link(gm__broker *b, void *zctx);
/* The metrics endpoint, where a service registers its own gauges
   (gm__metrics_gauge_add; it accepts the endpoint when it is off too). */
struct gm__metrics *gm__broker_metrics(gm__broker *b);

#endif
