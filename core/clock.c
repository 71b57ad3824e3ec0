#include "clock.h"

#include <stdatomic.h>
#include <time.h>

/* INT64_MIN: real time; else the manual clock's value. */
static _Atomic int64_t manual_ms = INT64_MIN;
/* The reference clock (Redis's) minus this host's, in microseconds. */
static _Atomic int64_t offset_us;
/* [testing] clock_skew_ms, in microseconds. */
static _Atomic int64_t skew_us;

int64_t gm__clock_local_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000 +
         atomic_load_explicit(&skew_us, memory_order_relaxed);
}

int64_t gm__clock_now_ms(void) {
  int64_t m = atomic_load(&manual_ms);
  if (m != INT64_MIN) return m;
  return (gm__clock_local_us() +
          atomic_load_explicit(&offset_us, memory_order_relaxed)) /
         1000;
}

void gm__clock_set_manual(int64_t ms) {
  atomic_store(&manual_ms, ms);
}

int gm__clock_is_manual(void) {
  return atomic_load(&manual_ms) != INT64_MIN;
}

uint64_t gm__clock_mono_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

void gm__clock_set_offset_us(int64_t us) {
  atomic_store(&offset_us, us);
}

int64_t gm__clock_offset_us(void) {
  return atomic_load(&offset_us);
}

void gm__clock_set_skew_ms(int64_t ms) {
  atomic_store(&skew_us, ms * 1000);
}
