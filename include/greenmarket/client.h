/*
 * greenmarket client library (libgmclient): talk to a gmd broker.
 *
 * A gm_client sends one request frame (a packed gm.Request) on a ZeroMQ
 * DEALER socket and waits for the one reply frame (a packed gm.Reply with
 * the same request id).  Calls are synchronous and "lazy pirate" reliable:
 * when no reply comes within the timeout, the socket is closed and reopened
 * and the SAME request (same request id, same idempotency key) is sent
 * again, up to `retries` times, so a retried mutating call is applied at
 * most once by the broker.  For throughput, gm_client_send() and
 * gm_client_recv() pipeline requests without that reliability.
 *
 * A gm_feed subscribes to the broker's PUB event feed.
 *
 * The envelope and the core ("gm") messages are in the generated header
 * <greenmarket/greenmarket.pb-c.h>, whose code libgmclient carries.
 *
 * A gm_client or gm_feed is used by one thread at a time (ZeroMQ sockets are
 * not thread-safe); use one per thread.
 */
#ifndef GREENMARKET_CLIENT_H
#define GREENMARKET_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#include <protobuf-c/protobuf-c.h>

#include "plugin.h" /* gm_status: the one status type on both sides */

#ifdef __cplusplus
extern "C" {
#endif

#define GM_CLIENT_EXPORT __attribute__((visibility("default")))

typedef struct gm_client gm_client;
typedef struct gm_feed gm_feed;
typedef struct Gm__Event Gm__Event; /* greenmarket.pb-c.h */

/* Defaults applied to options left zero. */
#define GM_CLIENT_DEFAULT_TIMEOUT_MS 5000
#define GM_CLIENT_DEFAULT_RETRIES 2
#define GM_CLIENT_DEFAULT_MAX_REPLY (16u * 1024u * 1024u)

/*
 * Connection options.  Starts with its size and only grows at the end, so a
 * program built against an older header keeps working.  Zero means default;
 * strings are copied by gm_client_new() / gm_feed_new().
 */
typedef struct gm_client_options {
  size_t size;    /* sizeof(gm_client_options) */
  int timeout_ms; /* per attempt; 0: 5000; <0: wait forever (no retry) */
  int retries;    /* resends after a timeout; 0: 2; <0: none */
  /* CURVE: the broker's public key (Z85, 40 chars); NULL: plain TCP. */
  const char *server_public_key;
  const char *public_key; /* this client's CURVE key pair (Z85) */
  const char *secret_key;
  /* Development mode only (the broker has no keys): who we say we are. */
  const char *dev_participant;
  size_t max_reply; /* largest reply frame accepted; 0: 16 MiB */
  /* The broker's private feed ([broker] private_feed); NULL: made from the
     feed endpoint by gm_feed_private_endpoint(). */
  const char *private_feed;
} gm_client_options;

/* Fills `o` with zeros and the right size: every field at its default. */
GM_CLIENT_EXPORT void gm_client_options_init(gm_client_options *o);

/*
 * The outcome of one call.  Owns its memory: release with gm_result_clear().
 */
typedef struct gm_result {
  gm_status status;
  char *message;           /* the broker's (or the library's) explanation */
  uint64_t request_id;     /* which request this replies to */
  ProtobufCMessage *reply; /* decoded body when a reply type was given */
  uint8_t *body;           /* the raw reply body (always set on GM_OK) */
  size_t body_len;
  /* Non-zero when the broker sent this reply; 0 when the library made the
   * status itself (no reply in time, refused or undecodable frame). */
  int answered;
} gm_result;

/* Frees what `r` holds and zeroes it; safe on a zeroed or cleared result. */
GM_CLIENT_EXPORT void gm_result_clear(gm_result *r);

/*
 * Creates a client for `endpoint` (e.g. "tcp://127.0.0.1:7470"); `opts` may
 * be NULL.  Returns NULL when the endpoint or a key is malformed: then
 * gm_client_last_error() says why.  Connecting itself is lazy: an absent
 * broker shows up as GM_UNAVAILABLE from the first call.
 */
GM_CLIENT_EXPORT gm_client *gm_client_new(const char *endpoint,
                                          const gm_client_options *opts);
/* Closes the client and sets *c to NULL; safe on NULL. */
GM_CLIENT_EXPORT void gm_client_destroy(gm_client **c);

/* Why the last gm_client_new() / gm_feed_new() in this thread failed. */
GM_CLIENT_EXPORT const char *gm_client_last_error(void);

/* The endpoint the client was created for. */
GM_CLIENT_EXPORT const char *gm_client_endpoint(const gm_client *c);

/*
 * Calls market.method with request message `req` (NULL: empty body) and
 * waits for the reply.  `idempotency_key` is required for mutating methods
 * (NULL for reads).  When `reply_type` is not NULL and the status is GM_OK,
 * the body is decoded into out->reply.  Returns out->status: GM_UNAVAILABLE
 * when the broker did not answer after all retries, GM_RESOURCE_EXHAUSTED
 * for a reply larger than max_reply, GM_INTERNAL for a reply that does not
 * decode; otherwise the broker's status.  Replies to other request ids
 * (late replies to an earlier attempt, pipelined replies) are dropped.
 */
GM_CLIENT_EXPORT gm_status
gm_client_call(gm_client *c, const char *market, const char *method,
               const char *idempotency_key, const ProtobufCMessage *req,
               const ProtobufCMessageDescriptor *reply_type, gm_result *out);

/* As gm_client_call() with an already packed request body. */
GM_CLIENT_EXPORT gm_status gm_client_call_raw(
    gm_client *c, const char *market, const char *method,
    const char *idempotency_key, const void *body, size_t body_len,
    const ProtobufCMessageDescriptor *reply_type, gm_result *out);

/*
 * Pipelining: sends a request without waiting and stores its id in
 * *request_id.  Returns GM_OK, or GM_RESOURCE_EXHAUSTED when the send queue
 * is full (receive some replies first).
 */
GM_CLIENT_EXPORT gm_status gm_client_send(gm_client *c, const char *market,
                                          const char *method,
                                          const char *idempotency_key,
                                          const void *body, size_t body_len,
                                          uint64_t *request_id);
/* As gm_client_send() with a message to pack (NULL: empty body). */
GM_CLIENT_EXPORT gm_status gm_client_send_msg(gm_client *c, const char *market,
                                              const char *method,
                                              const char *idempotency_key,
                                              const ProtobufCMessage *req,
                                              uint64_t *request_id);
/*
 * Receives the next reply, whichever request it answers (out->request_id),
 * waiting at most timeout_ms (<0: forever).  No resend: GM_UNAVAILABLE when
 * nothing arrived in time.
 */
GM_CLIENT_EXPORT gm_status
gm_client_recv(gm_client *c, int timeout_ms,
               const ProtobufCMessageDescriptor *reply_type, gm_result *out);

/*
 * Waits up to timeout_ms (<0: forever) until at least one of n clients has
 * a reply to receive, so one thread can serve many connections (a gateway
 * for many participants).  Sets ready[i] to 1 for each such client (then
 * gm_client_recv(clients[i], 0, ...) takes it without waiting), 0 for the
 * others; NULL entries are skipped.  Returns how many are ready, 0 on
 * timeout, -1 on error (errno says why; EINVAL when there is no client to
 * wait on and no timeout).
 */
GM_CLIENT_EXPORT int gm_client_poll(gm_client *const *clients, size_t n,
                                    int timeout_ms, unsigned char *ready);

/* A fresh idempotency key: 32 lowercase hex characters from getrandom(). */
GM_CLIENT_EXPORT gm_status gm_client_new_idempotency_key(char out[33]);

/* A new CURVE key pair, Z85 encoded (40 characters + NUL each). */
GM_CLIENT_EXPORT gm_status gm_keypair(char public_key[41], char secret_key[41]);

/* The status's name as in proto/greenmarket.proto, e.g. "NOT_FOUND". */
GM_CLIENT_EXPORT const char *gm_status_name(gm_status s);

/*
 * The event feed.  `opts` supplies the CURVE keys and the private feed's
 * endpoint (timeouts are unused); returns NULL on a malformed endpoint or
 * key (see gm_client_last_error()).
 *
 * Topics (docs/protocol.md, The feed): public events are
 * "<market>.<event>" (e.g. "carbon.trade"), sent to everyone on the feed
 * endpoint; private ones are "@p:<participant> <market>.<event>" (to one
 * participant) and "@r:<role> <market>.<event>" (to the holders of a role),
 * sent on the private feed only to the subscribers they are for.  With
 * CURVE the broker keeps of each private subscription only what this
 * client's participant may see; in development mode it keeps it as asked.
 */
GM_CLIENT_EXPORT gm_feed *gm_feed_new(const char *endpoint,
                                      const gm_client_options *opts);
GM_CLIENT_EXPORT void gm_feed_destroy(gm_feed **f);
/*
 * Subscribes to topics starting with `prefix`.  "" or NULL: every public
 * event and every private event this participant may see (public only when
 * no private feed endpoint is known); "@": every private event this
 * participant may see; "@p:<id> ..." or "@r:<role> ...": part of them; any
 * other prefix: public events.  GM_FAILED_PRECONDITION for a private prefix
 * when no private feed endpoint is known (set options.private_feed).  A
 * private subscription the broker refuses comes back from gm_feed_recv() as
 * GM_PERMISSION_DENIED.
 */
GM_CLIENT_EXPORT gm_status gm_feed_subscribe(gm_feed *f, const char *prefix);
/*
 * Waits up to timeout_ms (<0: forever) for the next event.  GM_OK: *topic
 * (free()) and *ev (gm_feed_event_free()) are set; ev->market and ev->event
 * name the market and event for public and private topics alike.
 * GM_UNAVAILABLE: nothing arrived in time.  GM_INVALID_ARGUMENT: a malformed
 * feed message arrived and was skipped (its topic is still set when there
 * was one).  GM_PERMISSION_DENIED: the broker refused private subscription
 * *topic (gm_client_last_error() says why); it is dropped, not sent again.
 */
GM_CLIENT_EXPORT gm_status gm_feed_recv(gm_feed *f, char **topic,
                                        Gm__Event **ev, int timeout_ms);
/* Frees an event from gm_feed_recv() and sets *ev to NULL. */
GM_CLIENT_EXPORT void gm_feed_event_free(Gm__Event **ev);

/* -- appended: private events -- */

/* Undoes one gm_feed_subscribe() of the same prefix, exactly. */
GM_CLIENT_EXPORT gm_status gm_feed_unsubscribe(gm_feed *f, const char *prefix);
/*
 * The private feed's endpoint for a broker whose feed is `feed` and whose
 * [broker] private_feed is not set: a tcp feed's port + 1
 * ("tcp://127.0.0.1:7471" -> "tcp://127.0.0.1:7472"), an ipc feed's path +
 * ".private".  GM_OK, or GM_INVALID_ARGUMENT for another transport (set
 * options.private_feed) or when `out` is too small.
 */
GM_CLIENT_EXPORT gm_status gm_feed_private_endpoint(const char *feed, char *out,
                                                    size_t n);
/*
 * Who a topic is for: GM_AUDIENCE_PUBLIC, or GM_AUDIENCE_PARTICIPANT /
 * GM_AUDIENCE_ROLE with the participant id or role copied to who[0..n)
 * (n >= 65 always fits).  Returns the "<market>.<event>" part of `topic`
 * (inside it), or NULL for a malformed topic.
 */
GM_CLIENT_EXPORT const char *gm_feed_topic_audience(const char *topic,
                                                    gm_audience *audience,
                                                    char *who, size_t n);

#ifdef __cplusplus
}
#endif
#endif /* GREENMARKET_CLIENT_H */
