/*
 * Which feed topics have a subscriber: the publisher thread notes every
 * prefix a subscriber holds (public SUB prefixes and private audiences, kept
 * once seen) and any thread asks whether a topic is covered
 * before it builds an event, so an event nobody receives costs no packing,
 * no inproc hand-off and no publisher wake-up.  Prefixes are kept as bits of
 * a hashed bitmap: a collision can only make an unwanted topic look wanted
 * (the feed then drops it as before), never the reverse.
 */
#ifndef GM_CORE_INTEREST_H
#define GM_CORE_INTEREST_H

#include <stddef.h>

typedef struct gm__interest gm__interest;

gm__interest *gm__interest_new(void);
void gm__interest_destroy(gm__interest **i);
/* One more (or one fewer) holder of prefix p[0..n): the publisher thread
   only.  A del of a prefix not held changes nothing. */
void gm__interest_add(gm__interest *i, const void *p, size_t n);
void gm__interest_del(gm__interest *i, const void *p, size_t n);
/* Holds prefix p[0..n) from now on unless it is held already; 1 when it
   was not. */
int gm__interest_note(gm__interest *i, const void *p, size_t n);
/* Non-zero when some noted prefix may be a prefix of topic[0..n); any
   thread, without a lock.  A NULL i wants everything. */
int gm__interest_wanted(const gm__interest *i, const char *topic, size_t n);

#endif
