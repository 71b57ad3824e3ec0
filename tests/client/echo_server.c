/* The echo ROUTER of echo_server.h. */
#include "echo_server.h"

#include <check.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <zmq.h>

#include "greenmarket.pb-c.h"

#define GM_TEST_ECHO_MAX 4096

struct gm_test_echo {
  void *ctx;            /* the server's own context */
  void *sock;           /* the ROUTER, used by the thread only */
  void *zap;            /* the ZAP handler's REP (zap_admit), or NULL */
  void *pub;            /* the PUB (opts.feed), or NULL */
  char feed[64];        /* where it listens */
  char endpoint[64];    /* where it listens */
  gm_test_echo_opts o;  /* behaviour */
  pthread_t thread;     /* runs gm__serve */
  atomic_int stop;      /* set to end the thread */
  pthread_mutex_t lock; /* guards seen/nseen */
  gm_test_echo_req seen[GM_TEST_ECHO_MAX];
  size_t nseen;
  int admitted; /* handshakes of zap_admit admitted so far */
};

static void gm__copy(char *dst, size_t cap, const char *src) {
  snprintf(dst, cap, "%s", src ? src : "");
}

static void gm__reply(gm_test_echo *e, zmq_msg_t *identity, uint64_t id,
                      const uint8_t *body, size_t len) {
  Gm__Reply r = GM__REPLY__INIT;
  r.version = 1;
  r.request_id = id;
  r.status = (Gm__Status)e->o.status;
  r.message = (char *)(e->o.message ? e->o.message : "");
  r.body.data = (uint8_t *)body;
  r.body.len = len;
  size_t n = gm__reply__get_packed_size(&r);
  uint8_t *buf = malloc(n ? n : 1);
  gm__reply__pack(&r, buf);
  zmq_send(e->sock, zmq_msg_data(identity), zmq_msg_size(identity),
           ZMQ_SNDMORE);
  zmq_send(e->sock, buf, n, 0);
  free(buf);
}

/* Answers one ZAP request: 200 for the admitted key, 400 for any other. */
static void gm__zap(gm_test_echo *e) {
  char frames[7][256];
  size_t len[7] = {0};
  int n = 0, more = 1;
  while (more && n < 7) {
    int got = zmq_recv(e->zap, frames[n], sizeof frames[n], 0);
    if (got < 0) return;
    len[n++] = (size_t)got < sizeof frames[n] ? (size_t)got : 0;
    size_t sz = sizeof more;
    zmq_getsockopt(e->zap, ZMQ_RCVMORE, &more, &sz);
  }
  /* version, request id, domain, address, identity, mechanism, key */
  uint8_t admit[32];
  zmq_z85_decode(admit, e->o.zap_admit);
  int ok = n == 7 && len[6] == 32 && !memcmp(frames[6], admit, 32);
  if (ok && e->o.zap_admit_times && e->admitted >= e->o.zap_admit_times) ok = 0;
  if (ok) e->admitted++;
  zmq_send(e->zap, "1.0", 3, ZMQ_SNDMORE);
  zmq_send(e->zap, frames[1], len[1], ZMQ_SNDMORE);
  zmq_send(e->zap, ok ? "200" : "400", 3, ZMQ_SNDMORE);
  zmq_send(e->zap, ok ? "OK" : "unregistered", ok ? 2 : 12, ZMQ_SNDMORE);
  zmq_send(e->zap, ok ? "alice" : "", ok ? 5 : 0, ZMQ_SNDMORE);
  zmq_send(e->zap, "", 0, 0);
}

/* A new ROUTER on the same endpoint: the port is free again once libzmq's
   I/O thread has closed the old listener, so the bind is tried for 2 s. */
static void gm__rebind(gm_test_echo *e) {
  int linger = 0, one = 1;
  zmq_close(e->sock);
  e->sock = zmq_socket(e->ctx, ZMQ_ROUTER);
  zmq_setsockopt(e->sock, ZMQ_LINGER, &linger, sizeof linger);
  if (e->o.secret_key) {
    zmq_setsockopt(e->sock, ZMQ_CURVE_SERVER, &one, sizeof one);
    zmq_setsockopt(e->sock, ZMQ_CURVE_SECRETKEY, e->o.secret_key, 40);
  }
  int rc = -1;
  for (int i = 0; i < 200 && rc != 0; i++) {
    rc = zmq_bind(e->sock, e->endpoint);
    if (rc != 0) {
      struct timespec ms10 = {0, 10 * 1000 * 1000};
      nanosleep(&ms10, NULL);
    }
  }
  if (rc != 0)
    fprintf(stderr, "echo server: cannot bind %s again\n", e->endpoint);
}

static void *gm__serve(void *arg) {
  gm_test_echo *e = arg;
  while (!atomic_load(&e->stop)) {
    zmq_pollitem_t items[2] = {{e->sock, 0, ZMQ_POLLIN, 0},
                               {e->zap, 0, ZMQ_POLLIN, 0}};
    if (zmq_poll(items, e->zap ? 2 : 1, 20) <= 0) continue;
    if (e->zap && (items[1].revents & ZMQ_POLLIN)) gm__zap(e);
    if (!(items[0].revents & ZMQ_POLLIN)) continue;
    zmq_msg_t identity, payload;
    zmq_msg_init(&identity);
    zmq_msg_init(&payload);
    zmq_msg_recv(&identity, e->sock, 0);
    /* The last frame is the request (a REQ client puts an empty one first). */
    while (zmq_msg_recv(&payload, e->sock, 0) >= 0 && zmq_msg_more(&payload)) {
    }
    Gm__Request *rq = gm__request__unpack(NULL, zmq_msg_size(&payload),
                                          zmq_msg_data(&payload));
    if (rq) {
      pthread_mutex_lock(&e->lock);
      if (e->nseen < GM_TEST_ECHO_MAX) {
        gm_test_echo_req *s = &e->seen[e->nseen++];
        s->request_id = rq->request_id;
        s->version = rq->version;
        gm__copy(s->market, sizeof s->market, rq->market);
        gm__copy(s->method, sizeof s->method, rq->method);
        gm__copy(s->idempotency_key, sizeof s->idempotency_key,
                 rq->idempotency_key);
        gm__copy(s->dev_participant, sizeof s->dev_participant,
                 rq->dev_participant);
        s->body_len = rq->body.len;
      }
      pthread_mutex_unlock(&e->lock);
      if (e->o.drop_first > 0) {
        e->o.drop_first--;
        if (e->o.rebind_after_drop) gm__rebind(e);
      } else {
        if (e->o.wrong_id_first)
          gm__reply(e, &identity, rq->request_id + 1000,
                    (const uint8_t *)"wrong", 5);
        if (e->o.reply_body_size) {
          uint8_t *big = calloc(1, e->o.reply_body_size);
          gm__reply(e, &identity, rq->request_id, big, e->o.reply_body_size);
          free(big);
        } else {
          gm__reply(e, &identity, rq->request_id, rq->body.data, rq->body.len);
        }
      }
      gm__request__free_unpacked(rq, NULL);
    }
    zmq_msg_close(&identity);
    zmq_msg_close(&payload);
  }
  return NULL;
}

gm_test_echo *gm_test_echo_start(const gm_test_echo_opts *o) {
  gm_test_echo *e = calloc(1, sizeof *e);
  ck_assert_ptr_nonnull(e);
  if (o) e->o = *o;
  pthread_mutex_init(&e->lock, NULL);
  e->ctx = zmq_ctx_new();
  e->sock = zmq_socket(e->ctx, ZMQ_ROUTER);
  int linger = 0, one = 1;
  zmq_setsockopt(e->sock, ZMQ_LINGER, &linger, sizeof linger);
  if (e->o.secret_key && e->o.zap_admit) {
    e->zap = zmq_socket(e->ctx, ZMQ_REP);
    zmq_setsockopt(e->zap, ZMQ_LINGER, &linger, sizeof linger);
    ck_assert_int_eq(zmq_bind(e->zap, "inproc://zeromq.zap.01"), 0);
  }
  if (e->o.secret_key) {
    ck_assert_int_eq(
        zmq_setsockopt(e->sock, ZMQ_CURVE_SERVER, &one, sizeof one), 0);
    ck_assert_int_eq(
        zmq_setsockopt(e->sock, ZMQ_CURVE_SECRETKEY, e->o.secret_key, 40), 0);
  }
  ck_assert_int_eq(zmq_bind(e->sock, "tcp://127.0.0.1:*"), 0);
  size_t len = sizeof e->endpoint;
  zmq_getsockopt(e->sock, ZMQ_LAST_ENDPOINT, e->endpoint, &len);
  if (e->o.feed) {
    e->pub = zmq_socket(e->ctx, ZMQ_PUB);
    zmq_setsockopt(e->pub, ZMQ_LINGER, &linger, sizeof linger);
    if (e->o.secret_key) {
      zmq_setsockopt(e->pub, ZMQ_CURVE_SERVER, &one, sizeof one);
      zmq_setsockopt(e->pub, ZMQ_CURVE_SECRETKEY, e->o.secret_key, 40);
    }
    ck_assert_int_eq(zmq_bind(e->pub, "tcp://127.0.0.1:*"), 0);
    len = sizeof e->feed;
    zmq_getsockopt(e->pub, ZMQ_LAST_ENDPOINT, e->feed, &len);
  }
  ck_assert_int_eq(pthread_create(&e->thread, NULL, gm__serve, e), 0);
  return e;
}

void gm_test_echo_stop(gm_test_echo **ep) {
  gm_test_echo *e = *ep;
  if (!e) return;
  atomic_store(&e->stop, 1);
  pthread_join(e->thread, NULL);
  zmq_close(e->sock);
  if (e->zap) zmq_close(e->zap);
  if (e->pub) zmq_close(e->pub);
  zmq_ctx_term(e->ctx);
  pthread_mutex_destroy(&e->lock);
  free(e);
  *ep = NULL;
}

const char *gm_test_echo_endpoint(const gm_test_echo *e) {
  return e->endpoint;
}

const char *gm_test_echo_feed_endpoint(const gm_test_echo *e) {
  return e->feed;
}

size_t gm_test_echo_count(gm_test_echo *e) {
  pthread_mutex_lock(&e->lock);
  size_t n = e->nseen;
  pthread_mutex_unlock(&e->lock);
  return n;
}

gm_test_echo_req gm_test_echo_get(gm_test_echo *e, size_t i) {
  pthread_mutex_lock(&e->lock);
  ck_assert_uint_lt(i, e->nseen);
  gm_test_echo_req r = e->seen[i];
  pthread_mutex_unlock(&e->lock);
  return r;
}

void gm_test_dead_endpoint(char out[64]) {
  void *ctx = zmq_ctx_new(), *s = zmq_socket(ctx, ZMQ_ROUTER);
  int linger = 0;
  size_t len = 64;
  zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof linger);
  ck_assert_int_eq(zmq_bind(s, "tcp://127.0.0.1:*"), 0);
  zmq_getsockopt(s, ZMQ_LAST_ENDPOINT, out, &len);
  zmq_close(s);
  zmq_ctx_term(ctx);
}
