/*
 * One clock for every broker sharing a Redis ([clock] source = redis, the
 * default): a thread reads Redis's TIME once a second and sets the offset
 * of gm__clock_now_ms (core/clock.h) to Redis's clock minus this host's,
 * taken from the sample of the last GM__TIMESYNC_WINDOW with the shortest
 * round trip (its error is at most half that round trip).  Brokers whose
 * hosts' clocks disagree then fire deadlines, stamp events and decide what
 * is late by the same time, within a few milliseconds of each other.
 *
 * On a Redis Cluster the clock is that of the master serving the
 * deadlines' index (gm:deadlines), one node for every broker.  While Redis
 * is out of reach the last offset stays.  A manual clock ([testing] clock
 * = manual) is left alone.  An offset over GM__TIMESYNC_WARN_MS is logged
 * at WARN (every 10 minutes while it lasts): the hosts' clocks should be
 * kept by NTP all the same, since Redis stamps its own expiries by its own
 * clock and operators read logs by theirs.
 */
#ifndef GM_CORE_TIMESYNC_H
#define GM_CORE_TIMESYNC_H

#include <stddef.h>
#include <stdint.h>

#include "redis.h"

/* Samples kept; the one with the shortest round trip sets the offset. */
#define GM__TIMESYNC_WINDOW 8
/* A sample whose round trip is longer says too little: dropped (the
   default; [testing] clock_max_rtt_us).  None used since start, or a
   window's worth in a row: a WARN. */
#define GM__TIMESYNC_MAX_RTT_US 100000
/* An offset larger than this is worth an operator's look. */
#define GM__TIMESYNC_WARN_MS 1000

typedef struct gm__timesync gm__timesync;

/* How often a WARN (a large offset, Redis out of reach) is repeated while
   it lasts, by default ([testing] clock_log_every_ms). */
#define GM__TIMESYNC_LOG_EVERY_MS 600000
/*
 * Connects to Redis at `addr`, reads its clock (a few samples, at once, so
 * the offset is right before anything reads the time) and starts the
 * thread.  NULL (err says why) when it cannot connect or start.
 */
gm__timesync *gm__timesync_start(const gm__redis_addr *addr,
                                 uint64_t log_every_us, int64_t max_rtt_us,
                                 char *err, size_t errlen);
/* Stops the thread and closes its connection; nulls *t; idempotent. */
void gm__timesync_stop(gm__timesync **t);
/* Metrics gauge: the offset in seconds (Redis's clock minus this host's). */
int gm__timesync_gauge_offset(void *arg, double *value);

#endif
