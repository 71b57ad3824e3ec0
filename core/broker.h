/*
 * The broker: a ROUTER for requests, worker threads that decode envelopes and
 * call plugins, a PUB feed, the settlement writer and the timers.
 *
 * Threads and sockets:
 *   main     ROUTER (clients) <-> DEALER inproc://gm-workers
 *   publisher PULL inproc://gm-events -> PUB (feed), stamps Event.seq
 *   worker*N DEALER to gm-workers, PUSH to gm-events, own Redis + ledger reader
 *   timers   PUSH to gm-events, own Redis + ledger reader
 *   settler  own Redis + ledger writer
 *   zap      REP inproc://zeromq.zap.01 (CURVE mode only), own Redis
 */
#ifndef GM_CORE_BROKER_H
#define GM_CORE_BROKER_H

#include <stddef.h>

#include "config.h"

typedef struct gm__broker gm__broker;

/*
 * Reads the configuration, connects to Redis, opens the ledger and loads the
 * plugins.  A plugin that is refused is logged and skipped; the others load.
 * NULL and err when the broker cannot run at all.
 */
gm__broker *gm__broker_new(const gm__config *cfg, char *err, size_t errlen);
/* Binds, starts every thread and serves until gm__broker_stop. 0 or -1. */
int gm__broker_run(gm__broker *b, char *err, size_t errlen);
/* Asks run to return; async-signal-safe. */
void gm__broker_stop(gm__broker *b);
/* Stops threads, unloads plugins, frees; nulls *b. */
void gm__broker_destroy(gm__broker **b);
/* How many plugins loaded. */
size_t gm__broker_markets(const gm__broker *b);

#endif
