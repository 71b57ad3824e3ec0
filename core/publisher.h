/*
 * The feed: workers and timers push events to an inproc PULL; the publisher
 * thread stamps each with its audience's sequence number and sends it, off
 * the request path of the main thread: public events on the (X)PUB socket
 * clients subscribe to, private ones (to one participant or one role) on the
 * private feed (privfeed.h), which also takes its subscribers' subscriptions.
 * It notes what both feeds' subscribers hold (interest.h), so an event
 * nobody would receive is not even built.
 */
#ifndef GM_CORE_PUBLISHER_H
#define GM_CORE_PUBLISHER_H

#include <stddef.h>
#include <stdint.h>

#include "redis.h"
#include "roles.h"

typedef struct gm__publisher gm__publisher;

/*
 * Binds the inproc PULL at `events`, the feed at `feed` and the private feed
 * at `private_feed` (CURVE servers with curve_secret when it is not NULL)
 * and starts the thread.  With CURVE the thread has its own connection to
 * the Redis at raddr, to re-check private subscribers' keys and roles (those
 * in force: `roles`) every second.  `queue`: events held on either feed
 * for one subscriber that reads slower than they come ([broker]
 * feed_queue).  public_sub 0 ([broker] public_feed_sub = off): the feed is
 * not bound, public events go to private feed connections only.  NULL with err
 * when a bind or the connection fails.
 */
gm__publisher *gm__publisher_start(void *zctx, const char *events,
                                   const char *feed, const char *private_feed,
                                   int queue, int public_sub,
                                   const char *curve_secret,
                                   const gm__redis_addr *raddr,
                                   const gm__roles *roles, char *err,
                                   size_t errlen);
/* What the feeds' subscribers hold, for publishing threads to skip events
   nobody would receive; lives as long as p. */
struct gm__interest;
const struct gm__interest *gm__publisher_interest(const gm__publisher *p);
/* Joins the thread (the context must be shutting down), frees, nulls *p. */
void gm__publisher_destroy(gm__publisher **p);
/* SUBSCRIBE messages the public feed has taken in (every connection's
   every prefix, again after a reconnect); any thread. */
uint64_t gm__publisher_subscribes(const gm__publisher *p);
/* Private feed subscriptions applied (gm__privfeed_subscribes); any
   thread. */
uint64_t gm__publisher_private_subscribes(const gm__publisher *p);
/* Times the publisher thread reopened its Redis connection (the one that
   re-checks private subscribers' keys and roles) after it failed or timed
   out, as of its last use; any thread.  has_redis: 0 in development mode,
   where there is no such connection. */
uint64_t gm__publisher_redis_reopens(const gm__publisher *p);
int gm__publisher_has_redis(const gm__publisher *p);
/* Private feed connections kept now (gm__privfeed_connections); any
   thread. */
size_t gm__publisher_private_connections(const gm__publisher *p);

#endif
