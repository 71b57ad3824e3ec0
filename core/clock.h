/* The host clock: real time, or a manual clock set by tests ([testing] clock).
 */
#ifndef GM_CORE_CLOCK_H
#define GM_CORE_CLOCK_H

#include <stdint.h>

/* Milliseconds since the epoch. */
int64_t gm__clock_now_ms(void);
/* Switches to a manual clock that stays at `ms` until set again. */
void gm__clock_set_manual(int64_t ms);
int gm__clock_is_manual(void);
/* Monotonic microseconds, for latency measurement only. */
uint64_t gm__clock_mono_us(void);

#endif
