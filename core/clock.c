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

/* The latest real time gm__clock_now_ms handed out, in ms. */
static _Atomic int64_t last_ms;

int64_t gm__clock_now_ms(void) {
  int64_t m = atomic_load(&manual_ms);
  if (m != INT64_MIN) return m;
  int64_t t = (gm__clock_local_us() +
               atomic_load_explicit(&offset_us, memory_order_relaxed)) /
              1000;
  /* Never back by less than GM__CLOCK_HOLD_MS, in any thread: the offset
     moves by a millisecond or more when a reading with a shorter round
     trip (or a drifting host) says so, and an event, a deadline's firing
     or a script step must not read a time before one already read.  The
     time then holds until the clock catches up.  A larger step back (a
     Redis whose clock is behind the old one's) is followed. */
  int64_t last = atomic_load(&last_ms);
  for (;;) {
    if (t <= last && t >= last - GM__CLOCK_HOLD_MS) return last;
    if (atomic_compare_exchange_weak(&last_ms, &last, t)) return t;
  }
}

void gm__clock_set_manual(int64_t ms) {
  atomic_store(&manual_ms, ms);
}

int64_t gm__clock_real_ms(void) {
  return (gm__clock_local_us() +
          atomic_load_explicit(&offset_us, memory_order_relaxed)) /
         1000;
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
