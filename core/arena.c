#include "arena.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ARENA_BLOCK 8192
/* Standard blocks a reset keeps for the next request (64 KiB): a steady
   stream of requests then allocates nothing from malloc, and one large
   request does not pin its memory forever. */
#define ARENA_KEEP 8

typedef struct block {
  struct block *next; /* older block */
  size_t size;        /* usable bytes in data */
  size_t used;        /* bytes handed out */
  _Alignas(16) unsigned char data[];
} block;

struct gm__arena {
  block *head;  /* newest block; the first block is the last in the list */
  block *spare; /* standard blocks kept by reset, at most ARENA_KEEP */
  int n_spare;
};

static block *block_new(size_t size) {
  block *b = malloc(sizeof(block) + size);
  if (!b) {
    fprintf(stderr, "greenmarket: out of memory allocating %zu bytes\n", size);
    abort();
  }
  b->next = NULL;
  b->size = size;
  b->used = 0;
  return b;
}

gm__arena *gm__arena_new(void) {
  gm__arena *a = calloc(1, sizeof *a);
  if (!a) abort();
  a->head = block_new(ARENA_BLOCK);
  return a;
}

void gm__arena_destroy(gm__arena **ap) {
  if (!ap || !*ap) return;
  for (int list = 0; list < 2; list++) {
    block *b = list ? (*ap)->spare : (*ap)->head;
    while (b) {
      block *next = b->next;
      free(b);
      b = next;
    }
  }
  free(*ap);
  *ap = NULL;
}

void gm__arena_reset(gm__arena *a) {
  block *b = a->head;
  while (b->next) {
    block *next = b->next;
    if (b->size == ARENA_BLOCK && a->n_spare < ARENA_KEEP) {
      b->next = a->spare;
      a->spare = b;
      a->n_spare++;
    } else {
      free(b);
    }
    b = next;
  }
  /* The first block stays, unless it is a large one that a big request
     put last: then a standard one takes its place. */
  if (b->size != ARENA_BLOCK) {
    free(b);
    b = a->spare ? a->spare : block_new(ARENA_BLOCK);
    if (a->spare) {
      a->spare = b->next;
      a->n_spare--;
    }
    b->next = NULL;
  }
  b->used = 0;
  a->head = b;
}

/* A standard block: a spare one when there is one. */
static block *arena_block(gm__arena *a) {
  block *b = a->spare;
  if (!b) return block_new(ARENA_BLOCK);
  a->spare = b->next;
  a->n_spare--;
  b->next = NULL;
  b->used = 0;
  return b;
}

void *gm__arena_alloc(gm__arena *a, size_t size) {
  size_t need = (size + 15) & ~(size_t)15;
  if (need < size) abort(); /* overflow */
  block *b = a->head;
  if (b->size - b->used < need) {
    /* Big allocations get a block of their own behind the head, so the
       head's free space is not wasted. */
    block *nb = need > ARENA_BLOCK / 2 ? block_new(need) : arena_block(a);
    if (need > ARENA_BLOCK / 2) {
      nb->next = b->next;
      b->next = nb;
      nb->used = need;
      memset(nb->data, 0, size);
      return nb->data;
    }
    nb->next = b;
    a->head = b = nb;
  }
  void *p = b->data + b->used;
  b->used += need;
  memset(p, 0, size);
  return p;
}

size_t gm__arena_held(const gm__arena *a) {
  size_t n = 0;
  for (const block *b = a->head; b; b = b->next) n += b->size;
  for (const block *b = a->spare; b; b = b->next) n += b->size;
  return n;
}

char *gm__arena_strndup(gm__arena *a, const char *s, size_t n) {
  char *p = gm__arena_alloc(a, n + 1);
  if (n) memcpy(p, s, n);
  p[n] = '\0';
  return p;
}

char *gm__arena_strdup(gm__arena *a, const char *s) {
  return gm__arena_strndup(a, s ? s : "", s ? strlen(s) : 0);
}

char *gm__arena_vsprintf(gm__arena *a, const char *fmt, va_list ap) {
  /* Formatted straight into the head block when it fits (one pass). */
  block *b = a->head;
  size_t room = b->size - b->used;
  va_list ap2;
  va_copy(ap2, ap);
  int n = vsnprintf((char *)b->data + b->used, room, fmt, ap2);
  va_end(ap2);
  if (n < 0) return gm__arena_strdup(a, "");
  if ((size_t)n < room) {
    char *p = (char *)b->data + b->used;
    b->used += ((size_t)n + 1 + 15) & ~(size_t)15;
    return p;
  }
  char *p = gm__arena_alloc(a, (size_t)n + 1);
  vsnprintf(p, (size_t)n + 1, fmt, ap);
  return p;
}

char *gm__arena_sprintf(gm__arena *a, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  char *p = gm__arena_vsprintf(a, fmt, ap);
  va_end(ap);
  return p;
}
