/*
 * gm_client: request/reply to gmd over a DEALER socket, with lazy-pirate
 * retries (close, reopen, resend the same frame) and pipelining.
 */
#include <errno.h>
#include <stdatomic.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zmq.h>

#include "greenmarket.pb-c.h"
#include "internal.h"

#define GM__PROTOCOL_VERSION 1u

struct gm_client {
  void *ctx;           /* the shared ZeroMQ context (acquired) */
  void *sock;          /* the DEALER; replaced after every timeout */
  char *endpoint;      /* where the broker is */
  gm_client_options o; /* defaults applied, strings owned */
  uint64_t next_id;    /* request ids count up from 1 */
  /* With CURVE: a PAIR receiving the DEALER's handshake events, so a key the
     broker refuses is told apart from a broker that does not answer. */
  void *mon;
  /* The ZAP status (400, 500) the broker ended a handshake of this socket
     with, or 0.  ZeroMQ does not reconnect such a socket: it is replaced
     before the next request is sent.  (A 300 sends no word: the handshake
     just waits, and the lazy-pirate retries reopen the socket.) */
  unsigned zap;
  unsigned dropped; /* handshakes cut short during the current call */
  /* Pipelined requests (gm_client_send) whose outcome a refused key hides:
     `sent` were sent on the current socket and not answered yet; the
     broker admitted this socket's key once (`admitted`), so they may have
     reached it before the key was refused on a reconnect; `unknown` were
     left so on sockets already closed.  A refusal tells them once. */
  uint64_t sent, unknown;
  int admitted;
};

/* Sets out to `status` with a formatted message; returns status. */
__attribute__((format(printf, 3, 4))) static gm_status gm__result_fail(
    gm_result *out, gm_status status, const char *fmt, ...) {
  va_list ap;
  char *msg = NULL;
  va_start(ap, fmt);
  if (vasprintf(&msg, fmt, ap) < 0) msg = NULL;
  va_end(ap);
  free(out->message);
  out->message = msg;
  out->status = status;
  return status;
}

void gm_result_clear(gm_result *r) {
  if (!r) return;
  free(r->message);
  free(r->body);
  if (r->reply) protobuf_c_message_free_unpacked(r->reply, NULL);
  memset(r, 0, sizeof *r);
}

static int gm__refused(gm_client *c);

/* Closes the DEALER and its monitor, counting the events still queued. */
static void gm__close(gm_client *c) {
  gm__refused(c);
  if (c->admitted) c->unknown += c->sent;
  c->sent = 0;
  c->admitted = 0;
  gm__client_monitor_close(c->sock, &c->mon);
  if (c->sock) zmq_close(c->sock);
  c->sock = NULL;
}

#ifdef ZMQ_EVENT_HANDSHAKE_FAILED_AUTH
void *gm__client_monitor(void *ctx, void *sock) {
  static atomic_uint seq;
  char name[96];
  snprintf(name, sizeof name, "inproc://gm-client-monitor-%p-%u", sock,
           atomic_fetch_add(&seq, 1));
  if (zmq_socket_monitor(sock, name,
                         ZMQ_EVENT_HANDSHAKE_FAILED_AUTH |
                             ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL |
                             ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL |
                             ZMQ_EVENT_HANDSHAKE_SUCCEEDED))
    return NULL;
  void *mon = zmq_socket(ctx, ZMQ_PAIR);
  int linger = 0;
  if (mon) zmq_setsockopt(mon, ZMQ_LINGER, &linger, sizeof linger);
  if (!mon || zmq_connect(mon, name)) {
    zmq_socket_monitor(sock, NULL, 0);
    if (mon) zmq_close(mon);
    return NULL;
  }
  return mon;
}
#else /* libzmq before 4.3 reports no ZAP status */
void *gm__client_monitor(void *ctx, void *sock) {
  (void)ctx;
  (void)sock;
  return NULL;
}
#endif

void gm__client_monitor_close(void *sock, void **mon) {
  if (!*mon) return;
  zmq_socket_monitor(sock, NULL, 0);
  zmq_close(*mon);
  *mon = NULL;
}

unsigned gm__client_refused(void *mon, unsigned *dropped, int *admitted) {
  unsigned status = 0;
  while (mon) {
    zmq_msg_t ev, addr;
    zmq_msg_init(&ev);
    zmq_msg_init(&addr);
    int got = zmq_msg_recv(&ev, mon, ZMQ_DONTWAIT) >= 0 && zmq_msg_more(&ev) &&
              zmq_msg_recv(&addr, mon, 0) >= 0;
    if (got && zmq_msg_size(&ev) >= 6) {
      const uint8_t *d = zmq_msg_data(&ev);
      uint16_t event;
      uint32_t value;
      memcpy(&event, d, sizeof event);
      memcpy(&value, d + 2, sizeof value);
      /* 400: the key is not admitted; 500: the broker failed checking it.
         (A 300, try later, comes as no event: the broker sends no ERROR
         for it.)  A 400 outweighs the others. */
#ifdef ZMQ_EVENT_HANDSHAKE_FAILED_AUTH
      if (event == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH) {
        if (status != 400) status = value;
      } else if (dropped && (event == ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL ||
                             event == ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL))
        ++*dropped;
      else if (admitted && event == ZMQ_EVENT_HANDSHAKE_SUCCEEDED)
        *admitted = 1;
#else
      (void)event;
      (void)value;
      (void)admitted;
#endif
    }
    zmq_msg_close(&ev);
    zmq_msg_close(&addr);
    if (!got) break;
  }
  return status;
}

/* Reads the monitor's pending events; 1 when the broker refused the key. */
static int gm__refused(gm_client *c) {
  unsigned r = gm__client_refused(c->mon, &c->dropped, &c->admitted);
  if (r && c->zap != 400) c->zap = r;
  return c->zap == 400;
}

/* Opens and connects a fresh DEALER; 0 or -1 with errno set. */
static int gm__open(gm_client *c) {
  int linger = 0;
  c->zap = 0;
  c->sock = zmq_socket(c->ctx, ZMQ_DEALER);
  if (!c->sock) return -1;
  /* A closed socket must not hold the process on unsent requests. */
  if (zmq_setsockopt(c->sock, ZMQ_LINGER, &linger, sizeof linger) ||
      gm__client_apply_curve(c->sock, &c->o)) {
    int e = errno;
    gm__close(c);
    errno = e;
    return -1;
  }
  if (c->o.server_public_key) c->mon = gm__client_monitor(c->ctx, c->sock);
  if (zmq_connect(c->sock, c->endpoint)) {
    int e = errno;
    gm__close(c);
    errno = e;
    return -1;
  }
  return 0;
}

/*
 * Before a request is sent: a socket whose handshake the broker ended with
 * a ZAP status (a refused key) is never reconnected by ZeroMQ (libzmq 4.3
 * ends the connection for good), so it is replaced: the broker decides
 * again (the key may have been registered since).  0, or -1 with errno set.
 */
static int gm__renew_if_refused(gm_client *c) {
  /* No socket: the last one could not be reopened; try again. */
  if (c->sock && (gm__refused(c), !c->zap)) return 0;
  gm__close(c);
  return gm__open(c);
}

static pthread_mutex_t gm__ctx_lock = PTHREAD_MUTEX_INITIALIZER;
static void *gm__ctx;          /* the shared context, while anyone holds it */
static unsigned gm__ctx_users; /* clients and feeds holding it */

void *gm__client_ctx_acquire(void) {
  pthread_mutex_lock(&gm__ctx_lock);
  if (!gm__ctx) gm__ctx = zmq_ctx_new();
  void *ctx = gm__ctx;
  if (ctx) gm__ctx_users++;
  pthread_mutex_unlock(&gm__ctx_lock);
  return ctx;
}

void gm__client_ctx_release(void) {
  pthread_mutex_lock(&gm__ctx_lock);
  if (gm__ctx_users && --gm__ctx_users == 0) {
    zmq_ctx_term(gm__ctx);
    gm__ctx = NULL;
  }
  pthread_mutex_unlock(&gm__ctx_lock);
}

gm_client *gm_client_new(const char *endpoint, const gm_client_options *opts) {
  gm_client *c = calloc(1, sizeof *c);
  if (!c) {
    gm__client_set_error("out of memory creating a client");
    return NULL;
  }
  if (!endpoint || !*endpoint) {
    gm__client_set_error(
        "no broker endpoint given: pass one like tcp://127.0.0.1:7470");
    goto fail;
  }
  if (gm__client_options_copy(&c->o, opts)) goto fail;
  c->endpoint = strdup(endpoint);
  c->ctx = gm__client_ctx_acquire();
  c->next_id = 1;
  if (!c->endpoint || !c->ctx) {
    gm__client_set_error("out of memory creating a client");
    goto fail;
  }
  if (gm__open(c)) {
    gm__client_set_error(
        "cannot connect to \"%s\": %s; an endpoint looks like "
        "tcp://127.0.0.1:7470",
        endpoint, zmq_strerror(errno));
    goto fail;
  }
  return c;
fail:
  gm_client_destroy(&c);
  return NULL;
}

void gm_client_destroy(gm_client **cp) {
  gm_client *c = cp ? *cp : NULL;
  if (!c) return;
  gm__close(c);
  if (c->ctx) gm__client_ctx_release();
  gm__client_options_free(&c->o);
  free(c->endpoint);
  free(c);
  *cp = NULL;
}

const char *gm_client_endpoint(const gm_client *c) {
  return c ? c->endpoint : "";
}

/*
 * Refuses a call the library cannot send: no client, no market or no method.
 * Returns 1 (out filled with GM_INVALID_ARGUMENT) or 0.
 */
static int gm__call_refused(const gm_client *c, const char *market,
                            const char *method, gm_result *out) {
  if (!c)
    gm__result_fail(out, GM_INVALID_ARGUMENT,
                    "no client: gm_client_new() returned NULL "
                    "(gm_client_last_error() says why)");
  else if (!market || !*market)
    gm__result_fail(out, GM_INVALID_ARGUMENT,
                    "no market given: name a loaded market (\"gm\" for the "
                    "broker's own methods, e.g. ping)");
  else if (!method || !*method)
    gm__result_fail(out, GM_INVALID_ARGUMENT,
                    "no method given for market \"%s\": name one, e.g. "
                    "ping (the gm.markets method lists them)",
                    market);
  else
    return 0;
  return 1;
}

/* Packs the envelope into a malloc()ed frame; NULL when out of memory. */
static uint8_t *gm__pack_request(gm_client *c, const char *market,
                                 const char *method, const char *idem,
                                 const void *body, size_t body_len, uint64_t id,
                                 size_t *len) {
  Gm__Request r = GM__REQUEST__INIT;
  r.version = GM__PROTOCOL_VERSION;
  r.request_id = id;
  r.market = (char *)market;
  r.method = (char *)method;
  r.idempotency_key = (char *)(idem ? idem : "");
  r.body.data = (uint8_t *)body;
  r.body.len = body ? body_len : 0;
  r.dev_participant =
      (char *)(c->o.dev_participant ? c->o.dev_participant : "");
  *len = gm__request__get_packed_size(&r);
  uint8_t *buf = malloc(*len ? *len : 1);
  if (buf) gm__request__pack(&r, buf);
  return buf;
}

/* Packs `msg` into a malloc()ed buffer (NULL msg: empty body). */
static int gm__pack_msg(const ProtobufCMessage *msg, uint8_t **out,
                        size_t *len) {
  *out = NULL;
  *len = 0;
  if (!msg) return 0;
  *len = protobuf_c_message_get_packed_size(msg);
  *out = malloc(*len ? *len : 1);
  if (!*out) return -1;
  protobuf_c_message_pack(msg, *out);
  return 0;
}

/*
 * Receives one reply frame within `timeout_ms` (<0: forever) into `frame`.
 * Returns 1 with a frame, 0 on timeout, -1 on a socket error, -2 when the
 * broker refused this client's CURVE key.  A broker answering like a REQ
 * peer may put an empty delimiter first: the last frame of the message is
 * the reply.
 */
static int gm__recv_frame(gm_client *c, int timeout_ms, zmq_msg_t *frame) {
  /* A reply already queued is taken without a poll (the common case when
     draining pipelined replies).  Handshake events wake the poll too: the
     wait goes on until the deadline. */
  int64_t deadline = timeout_ms < 0 ? 0 : gm__client_now_ms() + timeout_ms;
  for (;;) {
    if (zmq_msg_recv(frame, c->sock, ZMQ_DONTWAIT) < 0) {
      if (errno != EAGAIN) return errno == EINTR ? 0 : -1;
      if (gm__refused(c)) return -2;
      long wait = -1;
      if (timeout_ms >= 0) {
        wait = (long)(deadline - gm__client_now_ms());
        if (wait <= 0) return 0;
      }
      zmq_pollitem_t items[2] = {{c->sock, 0, ZMQ_POLLIN, 0},
                                 {c->mon, 0, ZMQ_POLLIN, 0}};
      int rc = zmq_poll(items, c->mon ? 2 : 1, wait);
      if (rc <= 0) return rc < 0 && errno != EINTR ? -1 : 0;
      continue;
    }
    if (!zmq_msg_more(frame)) return 1;
  }
}

/* Fills `out` for a key the broker refused; returns its status. */
static gm_status gm__refused_fail(gm_client *c, gm_result *out, int retried) {
  /* A refusal on a resend: the attempt before it timed out on a connection
     that was admitted, and may have reached the broker.  So may pipelined
     requests sent on an admitted connection and never answered (the key
     was refused when it reconnected): told once. */
  uint64_t unknown = c->unknown + (c->admitted ? c->sent : 0);
  char pipelined[256] = "";
  if (unknown)
    snprintf(pipelined, sizeof pipelined,
             "; %llu request%s sent with gm_client_send() before had no "
             "reply and may have been carried out: once the key is admitted, "
             "send %s again with the same idempotency key%s",
             (unsigned long long)unknown, unknown == 1 ? "" : "s",
             unknown == 1 ? "it" : "them", unknown == 1 ? "" : "s");
  c->unknown = 0;
  c->sent = 0;
  return gm__result_fail(
      out, GM_PERMISSION_DENIED,
      "the broker at %s refused this client's CURVE key %s (ZAP status %u): "
      "no participant is registered with it, or it was replaced by a new "
      "key; have an admin register it (gm admin register ID --roles ROLES "
      "--key %s) or use the participant's current key file%s%s",
      c->endpoint, c->o.public_key, c->zap, c->o.public_key,
      retried ? "; an earlier attempt of this call timed out and may have "
                "been carried out: once the key is admitted, send it again "
                "with the same idempotency key"
              : "",
      pipelined);
}

/* A varint at *p (below end); 0 when cut short or over 10 bytes. */
static int gm__varint(const uint8_t **p, const uint8_t *end, uint64_t *v) {
  *v = 0;
  for (unsigned shift = 0; *p < end && shift < 70; shift += 7) {
    uint8_t b = *(*p)++;
    *v |= (uint64_t)(b & 0x7f) << shift;
    if (!(b & 0x80)) return 1;
  }
  return 0;
}

/* The request id (gm.Reply field 2) of a reply frame, read without
   decoding the rest (a reply over max_reply is not decoded); 0 when it has
   none or is not protobuf (then the frame is taken as the call's). */
static uint64_t gm__reply_id(const uint8_t *p, size_t size) {
  const uint8_t *end = p + size;
  uint64_t key, v;
  while (p < end && gm__varint(&p, end, &key)) {
    switch (key & 7) {
      case 0:
        if (!gm__varint(&p, end, &v)) return 0;
        if (key >> 3 == 2) return v;
        break;
      case 1:
        if (end - p < 8) return 0;
        p += 8;
        break;
      case 2:
        if (!gm__varint(&p, end, &v) || v > (uint64_t)(end - p)) return 0;
        p += v;
        break;
      case 5:
        if (end - p < 4) return 0;
        p += 4;
        break;
      default:
        return 0;
    }
  }
  return 0;
}

/*
 * Decodes reply frame `frame` into `out` when it answers `want` (0: any).
 * Returns 1 when `out` is filled, 0 for a reply to another request.
 */
static int gm__take_reply(gm_client *c, zmq_msg_t *frame, uint64_t want,
                          const ProtobufCMessageDescriptor *reply_type,
                          gm_result *out) {
  size_t size = zmq_msg_size(frame);
  if (size > c->o.max_reply) {
    /* Whose reply it is, read from the frame: another request's (a
       pipelined one, during a call) is dropped as its smaller replies are,
       not taken for the call's own; from gm_client_recv() the caller learns
       which request it answers. */
    uint64_t id = gm__reply_id(zmq_msg_data(frame), size);
    if ((!want || (id && id != want)) && c->sent) c->sent--;
    if (want && id && id != want) return 0;
    if (id) out->request_id = id;
    gm__result_fail(out, GM_RESOURCE_EXHAUSTED,
                    "refused a reply of %zu bytes from %s: larger than the "
                    "client's limit of %zu bytes; ask for less (a smaller "
                    "page or depth) or raise max_reply",
                    size, c->endpoint, c->o.max_reply);
    return 1;
  }
  Gm__Reply *r = gm__reply__unpack(NULL, size, zmq_msg_data(frame));
  if (!r) {
    gm__result_fail(out, GM_INTERNAL,
                    "a %zu-byte frame from %s is not a gm.Reply: is that "
                    "endpoint a greenmarket broker (gmd)?",
                    size, c->endpoint);
    return 1;
  }
  /* A reply to a pipelined request (not the call's own): one fewer whose
     outcome is unknown, taken here or dropped by a call. */
  if ((!want || r->request_id != want) && c->sent) c->sent--;
  if (want && r->request_id != want) {
    gm__reply__free_unpacked(r, NULL);
    return 0;
  }
  out->request_id = r->request_id;
  out->status = (gm_status)r->status;
  out->answered = 1;
  free(out->message);
  out->message = strdup(r->message ? r->message : "");
  out->body_len = r->body.len;
  out->body = malloc(r->body.len ? r->body.len : 1);
  if (!out->message || !out->body) {
    gm__reply__free_unpacked(r, NULL);
    gm__result_fail(out, GM_INTERNAL, "out of memory reading a reply");
    return 1;
  }
  if (r->body.len) memcpy(out->body, r->body.data, r->body.len);
  gm__reply__free_unpacked(r, NULL);
  if (out->status == GM_OK && reply_type) {
    out->reply =
        protobuf_c_message_unpack(reply_type, NULL, out->body_len, out->body);
    if (!out->reply)
      gm__result_fail(out, GM_INTERNAL,
                      "the reply body (%zu bytes) does not decode as %s: the "
                      "broker's plugin and this program disagree on the "
                      "method's reply type; use matching versions",
                      out->body_len, reply_type->name);
  }
  return 1;
}

gm_status gm_client_call_raw(gm_client *c, const char *market,
                             const char *method, const char *idempotency_key,
                             const void *body, size_t body_len,
                             const ProtobufCMessageDescriptor *reply_type,
                             gm_result *out) {
  if (!out) return GM_INVALID_ARGUMENT;
  memset(out, 0, sizeof *out);
  if (gm__call_refused(c, market, method, out)) return out->status;
  uint64_t id = c->next_id++;
  c->dropped = 0;
  size_t len;
  uint8_t *frame = gm__pack_request(c, market, method, idempotency_key, body,
                                    body_len, id, &len);
  if (!frame) return gm__result_fail(out, GM_INTERNAL, "out of memory");
  out->request_id = id;

  int attempts = c->o.timeout_ms < 0 ? 1 : 1 + c->o.retries;
  for (int attempt = 0; attempt < attempts; attempt++) {
    int renew = 0;
    if (attempt > 0) {
      /*
       * Lazy pirate: the old socket may hold a half-sent request or a dead
       * connection; a new one (new identity) cannot receive stale replies.
       */
      gm__close(c);
      renew = gm__open(c);
    } else {
      renew = gm__renew_if_refused(c);
    }
    if (renew) {
      gm__result_fail(out, GM_UNAVAILABLE, "cannot reconnect to %s: %s",
                      c->endpoint, zmq_strerror(errno));
      goto done;
    }
    int snd_timeout = c->o.timeout_ms;
    zmq_setsockopt(c->sock, ZMQ_SNDTIMEO, &snd_timeout, sizeof snd_timeout);
    if (zmq_send(c->sock, frame, len, 0) < 0) {
      if (errno == EAGAIN) continue; /* queue full for a whole timeout */
      gm__result_fail(out, GM_UNAVAILABLE, "cannot send to %s: %s", c->endpoint,
                      zmq_strerror(errno));
      goto done;
    }
    int64_t deadline = gm__client_now_ms() + c->o.timeout_ms;
    for (;;) {
      int wait = -1;
      if (c->o.timeout_ms >= 0) {
        int64_t left = deadline - gm__client_now_ms();
        if (left <= 0) break;
        wait = (int)left;
      }
      zmq_msg_t msg;
      zmq_msg_init(&msg);
      int rc = gm__recv_frame(c, wait, &msg);
      if (rc == -2) {
        zmq_msg_close(&msg);
        gm__refused_fail(c, out, attempt > 0);
        goto done;
      }
      if (rc < 0) {
        zmq_msg_close(&msg);
        gm__result_fail(out, GM_UNAVAILABLE, "cannot receive from %s: %s",
                        c->endpoint, zmq_strerror(errno));
        goto done;
      }
      int taken = rc > 0 && gm__take_reply(c, &msg, id, reply_type, out);
      zmq_msg_close(&msg);
      if (taken) goto done;
    }
  }
  gm__refused(c); /* the last attempt's handshake events */
  if (c->dropped >= 2)
    /* Someone listens but ends every handshake: not a missing broker.  One
       cut alone is what a broker killed during a handshake looks like. */
    gm__result_fail(
        out, GM_UNAVAILABLE,
        "no reply from %s after %d attempt%s of %d ms: the broker there ended "
        "%u CURVE handshakes without a word, which is what a server key "
        "that is not this broker's looks like: copy the public line of the "
        "broker's key file again (or, for a development broker without "
        "CURVE, set no keys)",
        c->endpoint, attempts, attempts == 1 ? "" : "s", c->o.timeout_ms,
        c->dropped);
  else
    gm__result_fail(out, GM_UNAVAILABLE,
                    "no reply from %s after %d attempt%s of %d ms: is gmd "
                    "running? start it with deploy/start (in the greenmarket "
                    "folder; see the README), or give this client the "
                    "right broker's endpoint (gm: --endpoint or "
                    "GM_ENDPOINT)%s",
                    c->endpoint, attempts, attempts == 1 ? "" : "s",
                    c->o.timeout_ms,
                    c->o.server_public_key
                        ? "; with CURVE, also check the server key, that "
                          "an admin registered this client's public key, "
                          "and the broker's log (a broker that cannot read "
                          "its participant registry leaves handshakes "
                          "unanswered)"
                        : "");
done:
  free(frame);
  return out->status;
}

gm_status gm_client_call(gm_client *c, const char *market, const char *method,
                         const char *idempotency_key,
                         const ProtobufCMessage *req,
                         const ProtobufCMessageDescriptor *reply_type,
                         gm_result *out) {
  uint8_t *body;
  size_t len;
  if (!out) return GM_INVALID_ARGUMENT;
  memset(out, 0, sizeof *out);
  if (gm__call_refused(c, market, method, out)) return out->status;
  if (gm__pack_msg(req, &body, &len)) {
    memset(out, 0, sizeof *out);
    return gm__result_fail(out, GM_INTERNAL, "out of memory");
  }
  gm_status s = gm_client_call_raw(c, market, method, idempotency_key, body,
                                   len, reply_type, out);
  free(body);
  return s;
}

gm_status gm_client_send(gm_client *c, const char *market, const char *method,
                         const char *idempotency_key, const void *body,
                         size_t body_len, uint64_t *request_id) {
  if (!c || !market || !*market || !method || !*method)
    return GM_INVALID_ARGUMENT;
  /* Requests sent on a refused socket are never delivered: a new socket,
     whose refusal (if the key is still refused) gm_client_recv() tells. */
  if (gm__renew_if_refused(c)) return GM_UNAVAILABLE;
  uint64_t id = c->next_id;
  size_t len;
  uint8_t *frame = gm__pack_request(c, market, method, idempotency_key, body,
                                    body_len, id, &len);
  if (!frame) return GM_INTERNAL;
  int rc = zmq_send(c->sock, frame, len, ZMQ_DONTWAIT);
  free(frame);
  if (rc < 0) return errno == EAGAIN ? GM_RESOURCE_EXHAUSTED : GM_UNAVAILABLE;
  c->next_id++;
  c->sent++;
  if (request_id) *request_id = id;
  return GM_OK;
}

gm_status gm_client_send_msg(gm_client *c, const char *market,
                             const char *method, const char *idempotency_key,
                             const ProtobufCMessage *req,
                             uint64_t *request_id) {
  uint8_t *body;
  size_t len;
  if (!c || !market || !*market || !method || !*method)
    return GM_INVALID_ARGUMENT;
  if (gm__pack_msg(req, &body, &len)) return GM_INTERNAL;
  gm_status s =
      gm_client_send(c, market, method, idempotency_key, body, len, request_id);
  free(body);
  return s;
}

int gm_client_poll(gm_client *const *clients, size_t n, int timeout_ms,
                   unsigned char *ready) {
  if (n && (!clients || !ready)) {
    errno = EINVAL;
    return -1;
  }
  /* Two items a client: its DEALER, and its handshake watch (so a refused
     key wakes the wait like a reply: gm_client_recv() then tells it). */
  zmq_pollitem_t local[128];
  zmq_pollitem_t *items = 2 * n <= sizeof local / sizeof *local
                              ? local
                              : malloc(2 * n * sizeof *items);
  if (!items) {
    errno = ENOMEM;
    return -1;
  }
  size_t live = 0;
  for (size_t i = 0; i < n; i++) {
    /* A NULL client or watch is skipped: poll() ignores a negative fd. */
    const gm_client *c = clients[i];
    items[2 * i] = (zmq_pollitem_t){c ? c->sock : NULL, -1, ZMQ_POLLIN, 0};
    items[2 * i + 1] = (zmq_pollitem_t){c ? c->mon : NULL, -1, ZMQ_POLLIN, 0};
    live += c != NULL;
  }
  if (!live && timeout_ms < 0) { /* would wait forever */
    if (items != local) free(items);
    errno = EINVAL;
    return -1;
  }
  int64_t deadline = timeout_ms < 0 ? 0 : gm__client_now_ms() + timeout_ms;
  int rc;
  for (;;) {
    long wait = -1;
    if (timeout_ms >= 0) {
      wait = (long)(deadline - gm__client_now_ms());
      if (wait < 0) wait = 0;
    }
    rc = zmq_poll(items, (int)(2 * n), wait);
    /* A signal ends the wait early: without a timeout, wait again. */
    if (rc < 0 && errno == EINTR && timeout_ms < 0) continue;
    if (rc < 0 && errno == EINTR) rc = 0;
    if (rc <= 0) break;
    rc = 0;
    for (size_t i = 0; i < n; i++) {
      ready[i] =
          (items[2 * i].revents & ZMQ_POLLIN) ||
          ((items[2 * i + 1].revents & ZMQ_POLLIN) && gm__refused(clients[i]));
      rc += ready[i];
    }
    /* Only handshake events that refuse nothing: wait on. */
    if (rc > 0 || (timeout_ms >= 0 && gm__client_now_ms() >= deadline)) break;
  }
  if (rc <= 0)
    for (size_t i = 0; i < n; i++) ready[i] = 0;
  if (items != local) free(items);
  return rc;
}

gm_status gm_client_recv(gm_client *c, int timeout_ms,
                         const ProtobufCMessageDescriptor *reply_type,
                         gm_result *out) {
  if (!out) return GM_INVALID_ARGUMENT;
  memset(out, 0, sizeof *out);
  if (!c)
    return gm__result_fail(out, GM_INVALID_ARGUMENT,
                           "no client: gm_client_new() returned NULL "
                           "(gm_client_last_error() says why)");
  zmq_msg_t msg;
  zmq_msg_init(&msg);
  int rc = gm__recv_frame(c, timeout_ms, &msg);
  if (rc > 0)
    gm__take_reply(c, &msg, 0, reply_type, out);
  else if (rc == -2)
    gm__refused_fail(c, out, 0);
  else if (rc == 0)
    gm__result_fail(out, GM_UNAVAILABLE,
                    "no reply from %s within %d ms: is gmd running?",
                    c->endpoint, timeout_ms);
  else
    gm__result_fail(out, GM_UNAVAILABLE, "cannot receive from %s: %s",
                    c->endpoint, zmq_strerror(errno));
  zmq_msg_close(&msg);
  return out->status;
}
