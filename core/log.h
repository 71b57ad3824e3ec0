/* The one logger: "time level [who] message" lines on stderr. */
#ifndef GM_CORE_LOG_H
#define GM_CORE_LOG_H

#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>

#include "greenmarket/plugin.h"

/* Sets the lowest level printed: "debug", "info", "warn" or "error". */
int gm__log_set_level(const char *name);
void gm__log(gm_log_level level, const char *who, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void gm__vlog(gm_log_level level, const char *who, const char *fmt, va_list ap);

/*
 * A line that outside input can make repeat without bound (one per
 * undecodable frame): at most `burst` lines per window of `window_ms`; the
 * first line of the next window that prints says how many were suppressed.
 * One per call site, shared by every thread.
 */
typedef struct gm__log_limit {
  pthread_mutex_t lock;  /* guards the rest */
  unsigned burst;        /* lines per window */
  unsigned window_ms;    /* window length */
  uint64_t window_start; /* monotonic ms of the window */
  unsigned printed;      /* lines in this window */
  uint64_t suppressed;   /* lines dropped since the last printed one */
} gm__log_limit;
#define GM__LOG_LIMIT(burst, window_ms) \
  { PTHREAD_MUTEX_INITIALIZER, (burst), (window_ms), 0, 0, 0 }

void gm__log_limited(gm__log_limit *l, gm_log_level level, const char *who,
                     const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#endif
