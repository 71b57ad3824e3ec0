#include "interest.h"

#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>

#include "hash.h"

/* Bits of the map: few prefixes are held at once (a handful per market and
   one audience per private subscriber), so collisions stay rare. */
#define BITS 8192u

struct gm__interest {
  /* Read by every thread that publishes, written by the publisher only:
     relaxed is enough, as a subscription is asynchronous anyway (an event
     published while it travels may or may not reach it, as with ZeroMQ's
     own PUB). */
  _Atomic uint64_t bits[BITS / 64];
  uint32_t holders[BITS]; /* prefixes noted per bit: the publisher's */
};

gm__interest *gm__interest_new(void) {
  gm__interest *i = calloc(1, sizeof *i);
  if (!i) abort();
  return i;
}

void gm__interest_destroy(gm__interest **i) {
  if (!i) return;
  free(*i);
  *i = NULL;
}

static uint32_t gm__interest_bit(const void *p, size_t n) {
  return (uint32_t)(gm__hash_update(GM__HASH_INIT, p, n) % BITS);
}

void gm__interest_add(gm__interest *i, const void *p, size_t n) {
  uint32_t b = gm__interest_bit(p, n);
  if (i->holders[b]++ == 0)
    atomic_fetch_or_explicit(&i->bits[b / 64], UINT64_C(1) << (b % 64),
                             memory_order_relaxed);
}

void gm__interest_del(gm__interest *i, const void *p, size_t n) {
  uint32_t b = gm__interest_bit(p, n);
  if (i->holders[b] == 0) return; /* never noted: nothing to take back */
  if (--i->holders[b] == 0)
    atomic_fetch_and_explicit(&i->bits[b / 64], ~(UINT64_C(1) << (b % 64)),
                              memory_order_relaxed);
}

int gm__interest_wanted(const gm__interest *i, const char *topic, size_t n) {
  if (!i) return 1;
  /* The hash of each prefix of the topic, "" first, in one pass. */
  uint64_t h = GM__HASH_INIT;
  for (size_t k = 0;; k++) {
    uint32_t b = (uint32_t)(h % BITS);
    if (atomic_load_explicit(&i->bits[b / 64], memory_order_relaxed) &
        (UINT64_C(1) << (b % 64)))
      return 1;
    if (k == n) return 0;
    h = gm__hash_update(h, topic + k, 1);
  }
}
