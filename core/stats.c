#include "stats.h"

unsigned gm__stats_bucket(uint64_t us) {
  if (us < GM_LATENCY_SUB) return (unsigned)us;
  unsigned e = 63u - (unsigned)__builtin_clzll(us); /* us in [2^e, 2^e+1) */
  unsigned m = (unsigned)(us >> (e - 3)) - GM_LATENCY_SUB; /* 0..7 */
  unsigned b = GM_LATENCY_SUB + (e - 3) * GM_LATENCY_SUB + m;
  return b < GM_LATENCY_BUCKETS ? b : GM_LATENCY_BUCKETS - 1;
}

uint64_t gm__stats_bucket_bound(unsigned b) {
  if (b < GM_LATENCY_SUB) return b + 1;
  unsigned e = (b - GM_LATENCY_SUB) / GM_LATENCY_SUB + 3;
  unsigned m = (b - GM_LATENCY_SUB) % GM_LATENCY_SUB;
  return (uint64_t)(GM_LATENCY_SUB + m + 1) << (e - 3);
}

void gm__stats_add(gm__stats *s, gm_status status, uint64_t us) {
  atomic_fetch_add_explicit(&s->requests, 1, memory_order_relaxed);
  if (status != GM_OK)
    atomic_fetch_add_explicit(&s->errors, 1, memory_order_relaxed);
  unsigned slot = (unsigned)status < GM_STATUS_SLOTS ? (unsigned)status
                                                     : (unsigned)GM_INTERNAL;
  atomic_fetch_add_explicit(&s->status[slot], 1, memory_order_relaxed);
  atomic_fetch_add_explicit(&s->latency_sum_us, us, memory_order_relaxed);
  atomic_fetch_add_explicit(&s->latency[gm__stats_bucket(us)], 1,
                            memory_order_relaxed);
  uint64_t max = atomic_load_explicit(&s->latency_max_us, memory_order_relaxed);
  while (us > max &&
         !atomic_compare_exchange_weak(&s->latency_max_us, &max, us))
    ;
}

uint64_t gm__stats_percentile_us(const gm__stats *s, unsigned pct) {
  uint64_t total = 0, counts[GM_LATENCY_BUCKETS];
  for (unsigned i = 0; i < GM_LATENCY_BUCKETS; i++)
    total += counts[i] = atomic_load(&s->latency[i]);
  if (total == 0) return 0;
  uint64_t want = (total * pct + 99) / 100, seen = 0;
  for (unsigned i = 0; i < GM_LATENCY_BUCKETS; i++) {
    seen += counts[i];
    if (seen >= want) return gm__stats_bucket_bound(i);
  }
  return gm__stats_bucket_bound(GM_LATENCY_BUCKETS - 1);
}
