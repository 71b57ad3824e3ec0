/* The one string hash of the core: 64-bit FNV-1a, for in-process tables. */
#ifndef GM_CORE_HASH_H
#define GM_CORE_HASH_H

#include <stdint.h>

#include <stddef.h>

#define GM__HASH_INIT 1469598103934665603ull

static inline uint64_t gm__hash(const char *s) {
  uint64_t h = GM__HASH_INIT;
  for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
  return h;
}

/* The hash of several pieces as one: h from GM__HASH_INIT or a previous
   call, then p[0..n). */
static inline uint64_t gm__hash_update(uint64_t h, const void *p, size_t n) {
  const unsigned char *s = p;
  for (size_t i = 0; i < n; i++) h = (h ^ s[i]) * 1099511628211ull;
  return h;
}

#endif
