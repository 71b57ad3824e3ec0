/* The one string hash of the core: 64-bit FNV-1a, for in-process tables. */
#ifndef GM_CORE_HASH_H
#define GM_CORE_HASH_H

#include <stdint.h>

static inline uint64_t gm__hash(const char *s) {
  uint64_t h = 1469598103934665603ull;
  for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
  return h;
}

#endif
