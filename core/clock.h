/*
 * The host clock: real time, or a manual clock set by tests ([testing]
 * clock).  Real time is this host's clock plus an offset that
 * core/timesync.c keeps to Redis's clock ([clock] source = redis), so that
 * every broker sharing a Redis reads one time: deadlines fire, and
 * requests see "now", by the same clock whatever each host's clock says.
 */
#ifndef GM_CORE_CLOCK_H
#define GM_CORE_CLOCK_H

#include <stdint.h>

/* A real "now" going back by less than this holds instead (ms). */
#define GM__CLOCK_HOLD_MS 1000
/* Milliseconds since the epoch.  Real time never goes back by less than
   GM__CLOCK_HOLD_MS across calls (any thread): it holds until the clock
   catches up; a larger step back is followed. */
int64_t gm__clock_now_ms(void);
/* Switches to a manual clock that stays at `ms` until set again. */
void gm__clock_set_manual(int64_t ms);
int gm__clock_is_manual(void);
/* The real time in ms (this host's clock plus the offset to Redis's), as
   gm__clock_now_ms reads it when no manual clock is set; whatever the
   manual clock says. */
int64_t gm__clock_real_ms(void);
/* Monotonic microseconds, for latency measurement only. */
uint64_t gm__clock_mono_us(void);
/* This host's clock (with [testing] clock_skew_ms), microseconds since
   the epoch: what the offset is measured against. */
int64_t gm__clock_local_us(void);
/* The reference clock minus this host's, microseconds (0 until set). */
void gm__clock_set_offset_us(int64_t us);
int64_t gm__clock_offset_us(void);
/* [testing] clock_skew_ms: this host's clock read that far off, to test a
   host whose clock is wrong. */
void gm__clock_set_skew_ms(int64_t ms);

#endif
