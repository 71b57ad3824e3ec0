/*
 * greenmarket client library (libgmclient): talk to a gmd broker.
 * The integrator's guide is docs/client.md; the wire is docs/protocol.md.
 *
 * Build and link: `pkg-config --cflags --libs greenmarket`, or CMake's
 * find_package(greenmarket) and target greenmarket::client.  The market's
 * .proto files are installed in <prefix>/share/greenmarket/proto (pkg-config
 * variable protodir): generate their C code with protoc-c.
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
 * Threads: a gm_client or gm_feed is used by one thread at a time (ZeroMQ
 * sockets are not thread-safe): give each thread its own, or guard one with
 * a mutex.  Different clients and feeds may be used from different threads
 * at once; they share one ZeroMQ context, created with the first and ended
 * with the last.  gm_client_last_error() is per thread.  Create clients
 * after fork(), never before (a ZeroMQ context does not survive it).
 *
 * Blocking: gm_client_call() and gm_client_call_raw() block for at most
 * (1 + retries) x timeout_ms (plus a reconnect); with timeout_ms < 0 they
 * can block forever, even across a broker restart (the request was lost
 * with the old broker and is not sent again): use a timeout in services.
 * gm_client_send() never blocks.  gm_client_recv(), gm_client_poll() and
 * gm_feed_recv() wait at most their timeout_ms argument.  A signal does not
 * end the wait of gm_client_call() or gm_feed_recv() (they go on until their
 * deadline); gm_client_recv() and gm_client_poll() return on it as on a
 * timeout.
 *
 * Broker restarts: nothing to do.  ZeroMQ reconnects every socket on its own
 * (within about 100 ms of the broker being back), so the next call on the
 * same gm_client works; a call in flight when the broker died (kill -9
 * included) times out and is sent again on a new socket, and if the broker
 * is back before the last attempt, that attempt gets the true reply.
 * Feeds resubscribe on their own too, but events published while the feed
 * was away are lost: see gm_feed_recv().
 *
 * Memory: everything the library returns is owned by the caller and
 * released with the function named at each declaration (gm_result_clear(),
 * free(), gm_feed_event_free(), gm_client_destroy(), gm_feed_destroy()).
 * Every string and buffer the caller passes in is copied or used only during
 * the call; none is kept.
 *
 * Errors: each function's comment lists what it returns.  docs/client.md,
 * "Errors", says what to do about each status.  A gm_status outside the
 * list of gm_status_name() is a newer broker's: treat it as an error.
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
#define GM_CLIENT_DEFAULT_FEED_HANDSHAKE_MS 5000

/*
 * Connection options.  Starts with its size and only grows at the end, so a
 * program built against an older header keeps working.  Always start with
 * gm_client_options_init().  Zero means default; strings are copied by
 * gm_client_new() / gm_feed_new() (the struct and its strings may be freed
 * as soon as they return).  CURVE needs all three keys (server public, own
 * public and secret): gm_key_file_read() reads them from `gm keygen` files.
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
  /* How long a feed's CURVE handshake may take before the feed connects
     again (a broker that cannot read its key registry answers nothing);
     0: 5000; otherwise 100-600000 ms.  Used by feeds only, but a value
     out of bounds fails gm_client_new() as well as gm_feed_new(). */
  int feed_handshake_ms;
} gm_client_options;

/*
 * Fills `o` with zeros and the right size: every field at its default.
 * A macro: it passes the library the size of the struct the caller was
 * compiled with, so a library newer than the header never writes past the
 * caller's struct.  The function gm_client_options_init (called by programs
 * built against a header before this one, or through its address) fills
 * the struct as that header had it, up to private_feed: fields after it
 * keep their defaults.
 */
GM_CLIENT_EXPORT void gm_client_options_init_size(gm_client_options *o,
                                                  size_t size);
GM_CLIENT_EXPORT void gm_client_options_init(gm_client_options *o);
#define gm_client_options_init(o) gm_client_options_init_size((o), sizeof *(o))

/*
 * The outcome of one call.  Owns its memory: release with gm_result_clear().
 * The call functions overwrite `out` without freeing what it held: clear a
 * result before passing it to the next call, or it leaks.  `reply` is a
 * message of the reply_type given (cast it, e.g. (Gm__PingReply *)r.reply)
 * and belongs to the result: do not free it yourself, and copy what you
 * need from it before gm_result_clear().
 *
 * answered tells "the broker said no" from "nobody said anything":
 *   answered = 1: status and message are the broker's; a refusal changed
 *     nothing.
 *   answered = 0, GM_UNAVAILABLE: no reply after every attempt.  A mutating
 *     call may or may not have been carried out: send it again, with the
 *     SAME idempotency key and the same body, until it is answered; the
 *     broker then answers the first execution's reply (for [redis]
 *     idempotency_ttl, a day by default) and does nothing twice.
 *   answered = 0, another status: the library refused or could not read
 *     the call or its reply (message says which); nothing was sent, or the
 *     reply could not be used.  GM_PERMISSION_DENIED: the broker refused
 *     this client's CURVE key; nothing was sent on that attempt (after a
 *     resend, an earlier attempt may have been carried out: the message
 *     says so; send it again with the same key once the key is admitted).
 */
typedef struct gm_result {
  gm_status status;
  char *message;           /* why, for a person: "" on GM_OK; NULL only when
                              out of memory */
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

/* Why the last gm_client_new(), gm_feed_new(), gm_key_file_read(),
   gm_feed_subscribe() or refused gm_feed_recv() in this thread failed.
   Owned by the library: valid until the next such call in this thread.
   UTF-8 when the texts in it are (paths, endpoints); a reason longer than
   511 bytes is cut on a whole character and ends with "...". */
GM_CLIENT_EXPORT const char *gm_client_last_error(void);

/* The library's version as "MAJOR.MINOR.PATCH" (the release it was built
   from; libgmclient.so.MAJOR): a program may log it, or check it against
   the version it was written for.  Static; never NULL. */
GM_CLIENT_EXPORT const char *gm_client_version(void);

/* The endpoint the client was created for (the client owns it; "" for
   NULL). */
GM_CLIENT_EXPORT const char *gm_client_endpoint(const gm_client *c);

/*
 * Calls market.method with request message `req` (NULL: empty body) and
 * waits for the reply.  `market` is "gm" for the broker's own methods
 * (ping, whoami, markets, ...).  `idempotency_key` is required for mutating
 * methods (NULL for reads): make one per operation with
 * gm_client_new_idempotency_key(), store it with the operation, and reuse it
 * for every retry of that operation, never for another.  When `reply_type`
 * is not NULL and the status is GM_OK, the body is decoded into out->reply.
 * Returns out->status:
 *   the broker's status when it answered (out->answered = 1);
 *   GM_UNAVAILABLE when the broker did not answer after all retries (the
 *     outcome is unknown: see gm_result), or the socket failed;
 *   GM_INVALID_ARGUMENT, nothing sent, for a NULL client or an empty market
 *     or method;
 *   GM_RESOURCE_EXHAUSTED for a reply larger than max_reply (out->request_id
 *     names the request it answers);
 *   GM_INTERNAL for a reply that does not decode as a gm.Reply or as
 *     reply_type (a mismatched .proto), or when out of memory.
 *   GM_PERMISSION_DENIED with answered = 0, at once and nothing sent, when
 *     the broker refused this client's CURVE key (ZAP status 400: no
 *     participant has it, or it was replaced); the message names the key.
 *     When the refusal came on a resend (the key revoked during the call),
 *     the earlier attempt may have been carried out: the message says so.
 *     The next call asks the broker again on a new connection: once an
 *     admin registers the key, the same client is served.
 * Replies to other request ids (late replies to an earlier attempt,
 * pipelined replies) are dropped.  With CURVE, a wrong server key shows as
 * GM_UNAVAILABLE (the broker cannot read the handshake and drops it without
 * a word), with a message saying the handshakes were cut short rather than
 * unanswered.  `out` may not be NULL.
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
 * Pipelining: sends a request without waiting (never blocks) and stores its
 * id in *request_id.  Returns GM_OK, GM_RESOURCE_EXHAUSTED when the send
 * queue is full (receive some replies first), GM_INVALID_ARGUMENT for a
 * NULL client or an empty market or method, GM_UNAVAILABLE when the socket
 * failed.  No retry: a request whose reply does not come must be sent again
 * by the caller (with its idempotency key), and a broker restart loses the
 * requests it had not answered.
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
 * waiting at most timeout_ms (<0: forever).  No resend: GM_UNAVAILABLE
 * (answered = 0) when nothing arrived in time.  Otherwise as
 * gm_client_call(); clear `out` with gm_result_clear().  A
 * GM_PERMISSION_DENIED after the broker admitted this client's key once (it
 * was revoked, and the connection came back refused) says how many requests
 * sent with gm_client_send() before had no reply and may have been carried
 * out (told once): send them again with their idempotency keys once the key
 * is admitted.
 */
GM_CLIENT_EXPORT gm_status
gm_client_recv(gm_client *c, int timeout_ms,
               const ProtobufCMessageDescriptor *reply_type, gm_result *out);

/*
 * Waits up to timeout_ms (<0: forever) until at least one of n clients has
 * a reply to receive, so one thread can serve many connections (a gateway
 * for many participants).  Sets ready[i] to 1 for each such client (then
 * gm_client_recv(clients[i], 0, ...) takes it without waiting), 0 for the
 * others; NULL entries are skipped.  A client whose CURVE key the broker
 * refused is ready too: its gm_client_recv() returns GM_PERMISSION_DENIED.
 * Returns how many are ready, 0 on timeout, -1 on error (errno says why;
 * EINVAL when there is no client to wait on and no timeout, or when clients
 * or ready is NULL with n > 0).
 */
GM_CLIENT_EXPORT int gm_client_poll(gm_client *const *clients, size_t n,
                                    int timeout_ms, unsigned char *ready);

/* A fresh idempotency key: 32 lowercase hex characters from getrandom()
   and a NUL.  GM_OK, GM_INTERNAL when the kernel has no randomness, or
   GM_INVALID_ARGUMENT for a NULL out. */
GM_CLIENT_EXPORT gm_status gm_client_new_idempotency_key(char out[33]);

/* A new CURVE key pair, Z85 encoded (40 characters + NUL each).  GM_OK,
   GM_UNIMPLEMENTED when libzmq was built without CURVE, or
   GM_INVALID_ARGUMENT when either is NULL. */
GM_CLIENT_EXPORT gm_status gm_keypair(char public_key[41], char secret_key[41]);

/* The status's name as in proto/greenmarket.proto, e.g. "NOT_FOUND"
   ("UNKNOWN_STATUS" for a code this library does not know); static. */
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
/* Closes the feed and sets *f to NULL; safe on NULL. */
GM_CLIENT_EXPORT void gm_feed_destroy(gm_feed **f);
/*
 * Subscribes to topics starting with `prefix`.  "" or NULL: every public
 * event and every private event this participant may see (public only when
 * no private feed endpoint is known); "@": every private event this
 * participant may see; "@p:<id> ..." or "@r:<role> ...": part of them; any
 * other prefix: public events.  Public prefixes go to the private feed when
 * its endpoint is known (bounded there; needed when the broker runs with
 * [broker] public_feed_sub = off), and to the feed's SUB when it is not or
 * when the broker is from before 2026-12-05 and refuses them there (moved
 * at its refusal, not reported); while the private feed's handshake has
 * not succeeded within options.feed_handshake_ms they wait on the SUB, and
 * go back to the private feed when it does.  GM_FAILED_PRECONDITION for a
 * private prefix when no private feed endpoint is known (set
 * options.private_feed).
 * Any other subscription the broker refuses comes back from gm_feed_recv()
 * as GM_PERMISSION_DENIED.  GM_INVALID_ARGUMENT for a prefix longer than 255
 * bytes (no topic is longer): nothing is sent.
 */
GM_CLIENT_EXPORT gm_status gm_feed_subscribe(gm_feed *f, const char *prefix);
/*
 * Waits up to timeout_ms (<0: forever) for the next event.  GM_OK: *topic
 * (free()) and *ev (gm_feed_event_free()) are set; ev->market and ev->event
 * name the market and event for public and private topics alike, ev->type
 * the protobuf type of ev->body (decode it with that market's generated
 * code).  *topic is set (free() it) with some other statuses, NULL
 * otherwise: free() it whatever the status.
 * GM_UNAVAILABLE: nothing arrived in time (not an error: loop).
 * GM_INVALID_ARGUMENT: a malformed feed message arrived and was skipped (its
 * topic is still set when there was one), or f, topic or ev is NULL.
 * GM_PERMISSION_DENIED: the broker refused subscription *topic (a private
 * one, or a public one past the private feed's 256 prefixes or with a
 * revoked key; gm_client_last_error() says why); it is dropped, not sent
 * again.  With
 * *topic "" (once per feed): the broker refused this feed's CURVE key
 * itself, so no event comes until an admin registers the key (the feed
 * tries again after 1 s, then twice as long each time up to 32 s, and then
 * receives without further action).
 *
 * Subscriptions take effect a moment after gm_feed_subscribe() returns (the
 * broker learns of them over the network): events published in between,
 * and while the broker or the network was down, are not delivered.  The
 * private feed, which holds public subscriptions too since session 18,
 * forgets a connection it has not heard from for 20 s, and the feed renews
 * them only inside gm_feed_recv(): a caller that does not call it for that
 * long misses the events published until its next call.  The
 * feed is for live views; after a start, or a gap in ev->seq (counted per
 * audience and per ev->broker, from 1 again when that broker restarts),
 * read the state you need with the market's query methods.
 */
GM_CLIENT_EXPORT gm_status gm_feed_recv(gm_feed *f, char **topic,
                                        Gm__Event **ev, int timeout_ms);
/* Frees an event from gm_feed_recv() and sets *ev to NULL. */
GM_CLIENT_EXPORT void gm_feed_event_free(Gm__Event **ev);

/*
 * Reads a CURVE key file as `gm keygen --out FILE` writes it ("public = "
 * and "secret = " lines; ZeroMQ zcert's public-key / secret-key too) into
 * public_key and, when secret_key is not NULL, secret_key (40 Z85
 * characters + NUL each).  With secret_key NULL only the public key is
 * needed: that reads the broker's public key from a file its operator gave.
 * GM_OK; GM_NOT_FOUND when the file cannot be opened; GM_INVALID_ARGUMENT
 * when a key is missing or malformed, or the public line is not the secret
 * key's (two pairs mixed); gm_client_last_error() says which.  The file is
 * read unbuffered (no copy of the secret left in freed memory); its
 * permissions are not checked: keep it mode 0600.
 * On failure both outputs are "".  Wipe secret_key when done with it
 * (explicit_bzero): gm_client_new() keeps its own copy.
 */
GM_CLIENT_EXPORT gm_status gm_key_file_read(const char *path,
                                            char public_key[41],
                                            char secret_key[41]);

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
 * (inside it), or NULL for a malformed topic or a NULL audience (then
 * *audience is not set and who is "").
 */
GM_CLIENT_EXPORT const char *gm_feed_topic_audience(const char *topic,
                                                    gm_audience *audience,
                                                    char *who, size_t n);

#ifdef __cplusplus
}
#endif
#endif /* GREENMARKET_CLIENT_H */
