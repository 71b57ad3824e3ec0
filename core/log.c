#include "log.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

static gm_log_level min_level = GM_LOG_INFO;

int gm__log_set_level(const char *name) {
  static const char *names[] = {"debug", "info", "warn", "error"};
  for (int i = 0; i < 4; i++)
    if (strcmp(name, names[i]) == 0) {
      min_level = (gm_log_level)i;
      return 0;
    }
  return -1;
}

void gm__vlog(gm_log_level level, const char *who, const char *fmt,
              va_list ap) {
  static const char *tags[] = {"DEBUG", "INFO", "WARN", "ERROR"};
  if (level < min_level) return;
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  struct tm tm;
  gmtime_r(&ts.tv_sec, &tm);
  char line[2048];
  int n = snprintf(
      line, sizeof line, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %-5s [%s] ",
      tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
      tm.tm_sec, ts.tv_nsec / 1000000, tags[level & 3], who ? who : "gmd");
  if (n < 0 || (size_t)n >= sizeof line) n = 0;
  vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
  /* One fputs per line keeps lines from several threads whole. */
  fprintf(stderr, "%s\n", line);
}

void gm__log(gm_log_level level, const char *who, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  gm__vlog(level, who, fmt, ap);
  va_end(ap);
}

void gm__log_limited(gm__log_limit *l, gm_log_level level, const char *who,
                     const char *fmt, ...) {
  if (level < min_level) return;
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  uint64_t now = (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
  uint64_t dropped = 0;
  int print;
  pthread_mutex_lock(&l->lock);
  if (now - l->window_start >= l->window_ms) {
    l->window_start = now;
    l->printed = 0;
  }
  print = l->printed < l->burst;
  if (print) {
    l->printed++;
    dropped = l->suppressed;
    l->suppressed = 0;
  } else {
    l->suppressed++;
  }
  pthread_mutex_unlock(&l->lock);
  if (!print) return;
  char line[1536];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(line, sizeof line, fmt, ap);
  va_end(ap);
  if (dropped)
    gm__log(level, who, "%s (and %llu more like it, not logged)", line,
            (unsigned long long)dropped);
  else
    gm__log(level, who, "%s", line);
}
