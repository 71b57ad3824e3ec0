/* Request counters and latency histograms (per market and per method, for
   gm stats and the metrics endpoint). */
#ifndef GM_CORE_STATS_H
#define GM_CORE_STATS_H

#include <stdatomic.h>
#include <stdint.h>

#include "greenmarket/plugin.h"

/*
 * Latency buckets, log-linear: 1 us wide below 8 us, then 8 per power of
 * two (each 1/8 of its octave, so a percentile is within 12.5% of the
 * truth), up to 2^36 us.
 */
#define GM_LATENCY_SUB 8
#define GM_LATENCY_BUCKETS (GM_LATENCY_SUB + 33 * GM_LATENCY_SUB + 1)
/* gm_status values are 0..14 (the wire's status codes). */
#define GM_STATUS_SLOTS 15

typedef struct gm__stats {
  _Atomic uint64_t requests;                    /* replies sent */
  _Atomic uint64_t errors;                      /* replies not OK */
  _Atomic uint64_t status[GM_STATUS_SLOTS];     /* replies by gm_status */
  _Atomic uint64_t latency[GM_LATENCY_BUCKETS]; /* histogram, us */
  _Atomic uint64_t latency_sum_us;              /* of every request */
  _Atomic uint64_t latency_max_us;              /* slowest request */
} gm__stats;

/* Counts one request; status is its reply status. */
void gm__stats_add(gm__stats *s, gm_status status, uint64_t us);
/* The smallest bucket bound below which `pct` percent of requests took. */
uint64_t gm__stats_percentile_us(const gm__stats *s, unsigned pct);
/* The bucket of a latency, and a bucket's upper bound (exclusive), in us. */
unsigned gm__stats_bucket(uint64_t us);
uint64_t gm__stats_bucket_bound(unsigned bucket);

#endif
