#include "cache.h"

#include <stdlib.h>
#include <string.h>

#include "hash.h"

typedef struct gm__cache_entry {
  char *key;         /* NULL when the slot is free */
  char *value;       /* len bytes and a NUL */
  size_t len;        /* value length */
  uint64_t until_us; /* valid before this, monotonic */
} gm__cache_entry;

struct gm__cache {
  gm__cache_entry *slots; /* direct-mapped by hash */
  size_t n;               /* slot count */
  uint64_t ttl_us;        /* lifetime of an entry */
};

gm__cache *gm__cache_new(size_t slots, uint64_t ttl_us) {
  gm__cache *c = calloc(1, sizeof *c);
  if (!c) abort();
  c->n = slots ? slots : 1;
  c->slots = calloc(c->n, sizeof *c->slots);
  if (!c->slots) abort();
  c->ttl_us = ttl_us;
  return c;
}

void gm__cache_destroy(gm__cache **cp) {
  if (!cp || !*cp) return;
  gm__cache *c = *cp;
  for (size_t i = 0; i < c->n; i++) {
    free(c->slots[i].key);
    free(c->slots[i].value);
  }
  free(c->slots);
  free(c);
  *cp = NULL;
}

const char *gm__cache_get(gm__cache *c, const char *key, uint64_t now_us,
                          size_t *len) {
  gm__cache_entry *e = &c->slots[gm__hash(key) % c->n];
  if (!e->key || e->until_us <= now_us || strcmp(e->key, key) != 0) return NULL;
  if (len) *len = e->len;
  return e->value;
}

void gm__cache_put(gm__cache *c, const char *key, const char *value, size_t len,
                   uint64_t now_us) {
  gm__cache_entry *e = &c->slots[gm__hash(key) % c->n];
  char *k = strdup(key), *v = malloc(len + 1);
  if (!k || !v) abort();
  memcpy(v, value, len);
  v[len] = '\0';
  free(e->key);
  free(e->value);
  *e = (gm__cache_entry){k, v, len, now_us + c->ttl_us};
}
