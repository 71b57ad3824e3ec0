/* The one logger: "time level [who] message" lines on stderr. */
#ifndef GM_CORE_LOG_H
#define GM_CORE_LOG_H

#include <stdarg.h>

#include "greenmarket/plugin.h"

/* Sets the lowest level printed: "debug", "info", "warn" or "error". */
int gm__log_set_level(const char *name);
void gm__log(gm_log_level level, const char *who, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void gm__vlog(gm_log_level level, const char *who, const char *fmt, va_list ap);

#endif
