/*
 * The feed: workers and timers push events to an inproc PULL; the publisher
 * thread stamps each with the broker's sequence number and sends it on the
 * PUB socket clients subscribe to, off the request path of the main thread.
 */
#ifndef GM_CORE_PUBLISHER_H
#define GM_CORE_PUBLISHER_H

#include <stddef.h>

typedef struct gm__publisher gm__publisher;

/*
 * Binds the inproc PULL at `events` and the feed at `feed` (a CURVE server
 * with curve_secret when it is not NULL) and starts the thread.  NULL with
 * err when a bind fails.
 */
gm__publisher *gm__publisher_start(void *zctx, const char *events,
                                   const char *feed, const char *curve_secret,
                                   char *err, size_t errlen);
/* Joins the thread (the context must be shutting down), frees, nulls *p. */
void gm__publisher_destroy(gm__publisher **p);

#endif
