#include "events.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <zmq.h>

struct gm__events {
  pthread_mutex_t lock; /* one sender at a time: a socket is not shared */
  void *push;
};

gm__events *gm__events_open(void *zctx, const char *endpoint, char *err,
                            size_t errlen) {
  gm__events *q = calloc(1, sizeof *q);
  if (!q) abort();
  pthread_mutex_init(&q->lock, NULL);
  q->push = zmq_socket(zctx, ZMQ_PUSH);
  /* Room for what the threads' own sockets held together before they
     shared this one (ZeroMQ's 1000 a side, per worker): a publisher held up
     a moment (a re-check waiting on Redis) does not stop every worker. */
  int hwm = 16000;
  if (q->push) zmq_setsockopt(q->push, ZMQ_SNDHWM, &hwm, sizeof hwm);
  if (!q->push || zmq_connect(q->push, endpoint) != 0) {
    snprintf(err, errlen, "cannot connect to the publisher at %s: %s", endpoint,
             zmq_strerror(zmq_errno()));
    gm__events_close(&q);
    return NULL;
  }
  return q;
}

int gm__events_send(gm__events *q, const void *topic, size_t tlen,
                    const void *body, size_t blen) {
  /* The lock also orders the socket's use across threads (ZeroMQ asks for
     a full memory barrier when a socket changes threads). */
  pthread_mutex_lock(&q->lock);
  int rc = zmq_send(q->push, topic, tlen, ZMQ_SNDMORE) < 0 ||
                   zmq_send(q->push, body, blen, 0) < 0
               ? -1
               : 0;
  pthread_mutex_unlock(&q->lock);
  return rc;
}

void gm__events_close(gm__events **qp) {
  gm__events *q = qp ? *qp : NULL;
  if (!q) return;
  if (q->push) {
    int linger = 0;
    zmq_setsockopt(q->push, ZMQ_LINGER, &linger, sizeof linger);
    zmq_close(q->push);
  }
  pthread_mutex_destroy(&q->lock);
  free(q);
  *qp = NULL;
}
