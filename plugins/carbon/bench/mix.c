/* The order mix both paths draw from, and latency figures (bench.h). */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench.h"

uint64_t bench_now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

void bench_rng_seed(bench_rng *r, uint64_t seed) {
  /* splitmix64 of the seed: nearby seeds give unrelated streams. */
  uint64_t z = seed + 0x9e3779b97f4a7c15ull;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  r->s = (z ^ (z >> 31)) | 1;
}

uint64_t bench_rng_next(bench_rng *r) {
  r->s ^= r->s >> 12;
  r->s ^= r->s << 25;
  r->s ^= r->s >> 27;
  return r->s * 0x2545f4914f6cdd1dull;
}

uint32_t bench_rng_below(bench_rng *r, uint32_t n) {
  return (uint32_t)((bench_rng_next(r) >> 32) * n >> 32);
}

int bench_pool_init(bench_pool *p) {
  p->ids = calloc(BENCH_POOL_CAP, sizeof *p->ids);
  p->n = 0;
  return p->ids ? 0 : -1;
}

void bench_pool_free(bench_pool *p) {
  free(p->ids);
  p->ids = NULL;
  p->n = 0;
}

void bench_pool_add(bench_pool *p, bench_rng *r, const char *id) {
  size_t i =
      p->n < BENCH_POOL_CAP ? p->n++ : bench_rng_below(r, BENCH_POOL_CAP);
  strncpy(p->ids[i], id, sizeof p->ids[i] - 1);
  p->ids[i][sizeof p->ids[i] - 1] = '\0';
}

void bench_mix_next(bench_rng *r, bench_pool *pool, int levels,
                    bench_action *a) {
  uint32_t roll = bench_rng_below(r, 100);
  memset(a, 0, sizeof *a);
  a->buy = bench_rng_below(r, 2) == 0;
  a->quantity = 1 + bench_rng_below(r, 10);
  if (roll >= 85 && pool->n > 0) {
    /* Taken out now, so a second cancel never chases the same order. */
    size_t i = bench_rng_below(r, (uint32_t)pool->n);
    a->kind = BENCH_CANCEL;
    memcpy(a->cancel, pool->ids[i], sizeof a->cancel);
    memcpy(pool->ids[i], pool->ids[--pool->n], sizeof pool->ids[i]);
  } else if (roll >= 60 && roll < 85) {
    a->kind = BENCH_CROSS;
    a->price = a->buy ? BENCH_REF_PRICE + BENCH_CROSS_OFFSET
                      : BENCH_REF_PRICE - BENCH_CROSS_OFFSET;
  } else {
    /* Buys strictly below the reference, sells strictly above: resting
     * orders never meet each other, only the crossing ones. */
    int64_t off = 1 + bench_rng_below(r, (uint32_t)levels);
    a->kind = BENCH_REST;
    a->price = a->buy ? BENCH_REF_PRICE - off : BENCH_REF_PRICE + off;
  }
}

int bench_lat_add(bench_lat *l, uint64_t us) {
  if (l->n == l->cap) {
    size_t cap = l->cap ? l->cap * 2 : 65536;
    uint32_t *n = realloc(l->us, cap * sizeof *n);
    if (!n) return -1;
    l->us = n;
    l->cap = cap;
  }
  l->us[l->n++] = us > UINT32_MAX ? UINT32_MAX : (uint32_t)us;
  return 0;
}

static int bench__cmp_u32(const void *a, const void *b) {
  uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
  return x < y ? -1 : x > y;
}

void bench_lat_sort(bench_lat *l) {
  if (l->n) qsort(l->us, l->n, sizeof *l->us, bench__cmp_u32);
}

uint64_t bench_lat_quantile(const bench_lat *l, double q) {
  if (!l->n) return 0;
  size_t i = (size_t)(q * (double)l->n);
  return l->us[i < l->n ? i : l->n - 1];
}

void bench_lat_free(bench_lat *l) {
  free(l->us);
  memset(l, 0, sizeof *l);
}
