/*
 * A small direct-mapped cache of short strings that expire: what a worker
 * read from the participant registry lately, so a stream of requests from
 * one caller costs no Redis round trip each.  One thread per cache.
 */
#ifndef GM_CORE_CACHE_H
#define GM_CORE_CACHE_H

#include <stddef.h>
#include <stdint.h>

typedef struct gm__cache gm__cache;

/* A cache of `slots` entries, each valid for ttl_us after it was put. */
gm__cache *gm__cache_new(size_t slots, uint64_t ttl_us);
/* Frees; nulls *c; idempotent. */
void gm__cache_destroy(gm__cache **c);
/* The value put for `key` less than ttl_us before `now_us`, else NULL;
 *len is its length (values may hold NULs). */
const char *gm__cache_get(gm__cache *c, const char *key, uint64_t now_us,
                          size_t *len);
/* Puts value[0..len) for key, replacing whatever shared its slot. */
void gm__cache_put(gm__cache *c, const char *key, const char *value, size_t len,
                   uint64_t now_us);

#endif
