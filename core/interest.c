#include "interest.h"

#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "hash.h"

/* Bits of the map: few prefixes are held at once (a handful per market and
   one audience per private subscriber), so collisions stay rare. */
#define BITS 8192u

/* One prefix held, with how many hold it. */
typedef struct held {
  struct held *next; /* same bucket */
  uint64_t hash;
  size_t len;
  unsigned long count;
  unsigned char bytes[];
} held;

struct gm__interest {
  /* Read by every thread that publishes, written by the publisher only:
     relaxed is enough, as a subscription is asynchronous anyway (an event
     published while it travels may or may not reach it, as with ZeroMQ's
     own PUB). */
  _Atomic uint64_t bits[BITS / 64];
  uint32_t holders[BITS]; /* distinct prefixes per bit: the publisher's */
  /* The prefixes themselves, so that removing one never held (an XPUB
     passes a peer's unsubscribe of a prefix nobody had) cannot clear a bit
     another prefix needs. */
  held **buckets;
  size_t nbuckets, n;
};

gm__interest *gm__interest_new(void) {
  gm__interest *i = calloc(1, sizeof *i);
  if (!i) abort();
  return i;
}

void gm__interest_destroy(gm__interest **ip) {
  if (!ip || !*ip) return;
  gm__interest *i = *ip;
  for (size_t b = 0; b < i->nbuckets; b++)
    for (held *h = i->buckets[b], *next; h; h = next) {
      next = h->next;
      free(h);
    }
  free(i->buckets);
  free(i);
  *ip = NULL;
}

static held **gm__interest_slot(gm__interest *i, uint64_t hash, const void *p,
                                size_t n) {
  held **h = &i->buckets[hash & (i->nbuckets - 1)];
  while (*h && ((*h)->hash != hash || (*h)->len != n ||
                memcmp((*h)->bytes, p, n) != 0))
    h = &(*h)->next;
  return h;
}

static void gm__interest_grow(gm__interest *i) {
  size_t old = i->nbuckets;
  held **b = i->buckets;
  i->nbuckets = old ? old * 2 : 64;
  i->buckets = calloc(i->nbuckets, sizeof *i->buckets);
  if (!i->buckets) abort();
  for (size_t k = 0; k < old; k++)
    for (held *h = b[k], *next; h; h = next) {
      next = h->next;
      held **to = &i->buckets[h->hash & (i->nbuckets - 1)];
      h->next = *to;
      *to = h;
    }
  free(b);
}

void gm__interest_add(gm__interest *i, const void *p, size_t n) {
  if (i->n >= i->nbuckets) gm__interest_grow(i);
  uint64_t hash = gm__hash_update(GM__HASH_INIT, p, n);
  held **slot = gm__interest_slot(i, hash, p, n);
  if (*slot) {
    (*slot)->count++;
    return;
  }
  held *h = malloc(sizeof *h + n);
  if (!h) abort();
  *h = (held){.hash = hash, .len = n, .count = 1};
  memcpy(h->bytes, p, n);
  *slot = h;
  i->n++;
  uint32_t b = (uint32_t)(hash % BITS);
  if (i->holders[b]++ == 0)
    atomic_fetch_or_explicit(&i->bits[b / 64], UINT64_C(1) << (b % 64),
                             memory_order_relaxed);
}

int gm__interest_note(gm__interest *i, const void *p, size_t n) {
  if (i->nbuckets &&
      *gm__interest_slot(i, gm__hash_update(GM__HASH_INIT, p, n), p, n))
    return 0;
  gm__interest_add(i, p, n);
  return 1;
}

void gm__interest_del(gm__interest *i, const void *p, size_t n) {
  if (!i->nbuckets) return;
  uint64_t hash = gm__hash_update(GM__HASH_INIT, p, n);
  held **slot = gm__interest_slot(i, hash, p, n);
  held *h = *slot;
  if (!h || --h->count) return; /* never held, or held still */
  *slot = h->next;
  free(h);
  i->n--;
  uint32_t b = (uint32_t)(hash % BITS);
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
