/*
 * Process-wide failure counters: the code that sees a failure bumps one, and
 * the metrics endpoint (core/metrics.c) reads them.  Lock-free, callable
 * from any thread.
 */
#ifndef GM_CORE_COUNTERS_H
#define GM_CORE_COUNTERS_H

#include <stdint.h>

typedef enum gm__counter {
  /* A Redis command that did not reach Redis or whose reply could not be
     read: refused connections, I/O errors, timeouts, broken replies. */
  GM__COUNT_REDIS_ERRORS,
  /* A ledger statement SQLite refused or failed (constraint, busy, I/O,
     full disk, SQL that does not compile). */
  GM__COUNT_LEDGER_ERRORS,
  GM__COUNTERS
} gm__counter;

void gm__count(gm__counter c);
uint64_t gm__count_get(gm__counter c);

#endif
