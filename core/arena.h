/* A bump allocator for one request: everything a call allocates is freed at
 * once. */
#ifndef GM_CORE_ARENA_H
#define GM_CORE_ARENA_H

#include <stdarg.h>
#include <stddef.h>

typedef struct gm__arena gm__arena;

gm__arena *gm__arena_new(void);
/* Frees every block; nulls *a; idempotent. */
void gm__arena_destroy(gm__arena **a);
/* Forgets every allocation; keeps the first block and up to 64 KiB of
   standard blocks for reuse, frees the rest. */
void gm__arena_reset(gm__arena *a);
/* Zeroed, 16-byte aligned memory; aborts only when the machine is out of
 * memory. */
void *gm__arena_alloc(gm__arena *a, size_t size);
char *gm__arena_strndup(gm__arena *a, const char *s, size_t n);
char *gm__arena_strdup(gm__arena *a, const char *s);
char *gm__arena_vsprintf(gm__arena *a, const char *fmt, va_list ap);
/* Bytes of blocks the arena holds, spares included. */
size_t gm__arena_held(const gm__arena *a);
char *gm__arena_sprintf(gm__arena *a, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#endif
