/*
 * The private feed: events a market published to one participant or to the
 * holders of one role (gm_host_api.publish_to), and only to them.
 *
 * Public events go out on the PUB feed, where ZeroMQ matches each
 * subscriber's prefixes and the broker never learns who subscribed.  Private
 * events never touch it.  They go out on a ROUTER of their own: a client (a
 * DEALER, with CURVE the same key as its requests) sends its subscriptions
 * there, each message arrives with the connection's routing id and the
 * participant and roles the ZAP handler admitted it with, and the broker
 * keeps, per connection, only the part of each subscription that
 * participant may see.  An event is sent to each connection one of whose
 * kept prefixes starts its topic.
 *
 * Why not an XPUB in manual mode on the one feed: libzmq 4.3.4 (Debian 12)
 * hands ZMQ_SUBSCRIBE to the pipe of the last subscription read, which may
 * have been freed already (a subscriber gone before its subscription was
 * read: use after free, fixed in 4.3.5), and any peer that sends a message
 * that is no subscription shifts that pairing by one, so one subscriber's
 * private prefixes would be applied to another's pipe (all versions).
 * docs/protocol.md (The feed) has the wire rules.
 */
#ifndef GM_CORE_PRIVFEED_H
#define GM_CORE_PRIVFEED_H

#include <stddef.h>
#include <stdint.h>

typedef struct gm__privfeed gm__privfeed;

/* A connection that sent nothing for this long is forgotten; clients send
   their subscriptions again every GM_PRIVFEED_RESEND_MS. */
#define GM_PRIVFEED_LEASE_MS 20000
#define GM_PRIVFEED_RESEND_MS 5000
/* How often keys and roles are re-checked against the registry. */
#define GM_PRIVFEED_RECHECK_MS 1000
/* Prefixes one connection may hold, and the longest one: a topic is at most
   "@p:" + 64 + " " + 32 + "." + 64 characters. */
#define GM_PRIVFEED_MAX_SUBS 256
#define GM_PRIVFEED_MAX_PREFIX 255

/*
 * Binds a ROUTER at `endpoint`; a CURVE server with ZAP when curve_secret is
 * not NULL, else development mode (nobody is known; every subscription is
 * kept as asked).  `queue`: events held for one subscriber that reads
 * slower than they come, past which its events are dropped (0: ZeroMQ's
 * default, 1000).  NULL with err when the bind fails.
 */
gm__privfeed *gm__privfeed_new(void *zctx, const char *endpoint,
                               const char *curve_secret, int queue, char *err,
                               size_t errlen);
/* Closes the socket, frees, nulls *pf; idempotent. */
void gm__privfeed_destroy(gm__privfeed **pf);
/* Connections kept (holding a subscription, or refused and remembered
   until they disconnect or their lease runs out): any thread. */
size_t gm__privfeed_connections(const gm__privfeed *pf);
/* Connections the monitor's disconnects have looked at, ever (a
   disconnect looks at those sharing its fd's bucket, not at every one:
   test_privfeed counts them). */
uint64_t gm__privfeed_disconnect_looks(const gm__privfeed *pf);
/* Subscriptions applied since start (indexed, their audiences noted, so
   events said afterwards reach them): any thread. */
uint64_t gm__privfeed_subscribes(const gm__privfeed *pf);
/* The ROUTER, for zmq_poll. */
void *gm__privfeed_socket(gm__privfeed *pf);
/* Reads and applies up to `burst` subscription messages; returns how many. */
int gm__privfeed_read(gm__privfeed *pf, int burst, int64_t now_ms);
/* The socket that becomes readable when a subscriber disconnects, and what
   to call then: that connection's subscriptions are forgotten at once. */
void *gm__privfeed_monitor_socket(gm__privfeed *pf);
void gm__privfeed_read_monitor(gm__privfeed *pf);
/* Forgets connections whose lease ran out. */
void gm__privfeed_expire(gm__privfeed *pf, int64_t now_ms);
/*
 * Who owns each CURVE key now and with which roles in force: fills
 * owners[i] (NULL: nobody) and roles[i] for keys[0..n); -1 when that cannot
 * be known now (Redis down).
 */
typedef int (*gm__privfeed_lookup)(void *ctx, const char *const *keys, size_t n,
                                   char **owners, char **roles);
/* Where the audiences it serves are noted (before any subscription). */
struct gm__interest;
void gm__privfeed_set_interest(gm__privfeed *pf, struct gm__interest *interest);
/* The registry the feed asks (CURVE); without one, what the handshake
   admitted stands. */
void gm__privfeed_set_lookup(gm__privfeed *pf, gm__privfeed_lookup lookup,
                             void *ctx);
/*
 * Re-checks every CURVE connection's key and roles (the publisher calls it
 * every GM_PRIVFEED_RECHECK_MS, as requests re-check theirs; a new
 * connection's are checked at its first subscription): a connection whose
 * key is no longer its participant's loses every subscription and is told
 * why (a refusal per prefix), and what it asks after is refused; one whose
 * roles changed keeps what its new roles let it see.
 */
void gm__privfeed_recheck(gm__privfeed *pf, int64_t now_ms);
/*
 * The next sequence number of the audience of private topic
 * "@p:<id> ..." or "@r:<role> ...": each participant's and each role's
 * events are counted apart, so a gap tells a subscriber what it missed and
 * nothing about events it may not see.
 */
uint64_t gm__privfeed_next_seq(gm__privfeed *pf, const char *topic, size_t len);
/* Sends [topic, body] to every connection one of whose prefixes matches. */
void gm__privfeed_deliver(gm__privfeed *pf, const void *topic, size_t tlen,
                          const void *body, size_t blen);

/*
 * The private feed's endpoint when [broker] private_feed is not set: a tcp
 * feed's port + 1, an ipc feed's path + ".private"; 0, or -1 for any other
 * transport.  The same rule as gm_feed_private_endpoint() in the client
 * library (client/feed.c), both written in docs/protocol.md.
 */
int gm__privfeed_default_endpoint(const char *feed, char *out, size_t n);

/*
 * The rule, apart for its tests: the prefixes a subscriber may hold for
 * requested prefix req[0..len).  `participant` and `roles` (comma list) are
 * what the ZAP handler admitted; participant NULL: development mode (req as
 * asked).  Fills out[] (each malloc'd, NUL-terminated) and returns how many,
 * 0 when nothing of req is the subscriber's (refused), at most `max`.
 */
size_t gm__privfeed_allowed(const char *participant, const char *roles,
                            const char *req, size_t len, char **out,
                            size_t max);

#endif
