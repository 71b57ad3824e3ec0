/*
 * Small helpers the benchmarks in bench/ share: a monotonic clock in
 * seconds and the median of a set of figures (the benches print medians of
 * alternating rounds: a single round on a shared machine says little).
 */
#ifndef GM_BENCH_TIME_H
#define GM_BENCH_TIME_H

#include <stdlib.h>
#include <time.h>

static inline double now_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static inline int gm_bench_cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

/* Sorts v[0..n) in place; its middle element. */
static inline double median(double *v, int n) {
  qsort(v, (size_t)n, sizeof *v, gm_bench_cmp_double);
  return v[n / 2];
}

#endif
