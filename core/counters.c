#include "counters.h"

#include <stdatomic.h>

static _Atomic uint64_t gm__counts[GM__COUNTERS];

void gm__count(gm__counter c) {
  atomic_fetch_add_explicit(&gm__counts[c], 1, memory_order_relaxed);
}

uint64_t gm__count_get(gm__counter c) {
  return atomic_load_explicit(&gm__counts[c], memory_order_relaxed);
}
