/*
 * gm_feed: a SUB socket on the broker's event feed.  Each feed message is
 * two frames: the topic "<market>.<event>" and a packed gm.Event.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <zmq.h>

#include "greenmarket.pb-c.h"
#include "internal.h"

struct gm_feed {
  void *ctx;           /* the shared ZeroMQ context (acquired) */
  void *sock;          /* the SUB socket */
  gm_client_options o; /* keys and max_reply; strings owned */
};

gm_feed *gm_feed_new(const char *endpoint, const gm_client_options *opts) {
  int linger = 0;
  gm_feed *f = calloc(1, sizeof *f);
  if (!f) {
    gm__client_set_error("out of memory creating a feed");
    return NULL;
  }
  if (!endpoint || !*endpoint) {
    gm__client_set_error(
        "no feed endpoint given: pass one like tcp://127.0.0.1:7471");
    goto fail;
  }
  if (gm__client_options_copy(&f->o, opts)) goto fail;
  f->ctx = gm__client_ctx_acquire();
  if (f->ctx) f->sock = zmq_socket(f->ctx, ZMQ_SUB);
  if (!f->sock) {
    gm__client_set_error("cannot create a SUB socket: %s", zmq_strerror(errno));
    goto fail;
  }
  zmq_setsockopt(f->sock, ZMQ_LINGER, &linger, sizeof linger);
  if (gm__client_apply_curve(f->sock, &f->o) ||
      zmq_connect(f->sock, endpoint)) {
    gm__client_set_error(
        "cannot connect to feed \"%s\": %s; an endpoint looks like "
        "tcp://127.0.0.1:7471",
        endpoint, zmq_strerror(errno));
    goto fail;
  }
  return f;
fail:
  gm_feed_destroy(&f);
  return NULL;
}

void gm_feed_destroy(gm_feed **fp) {
  gm_feed *f = fp ? *fp : NULL;
  if (!f) return;
  if (f->sock) zmq_close(f->sock);
  if (f->ctx) gm__client_ctx_release();
  gm__client_options_free(&f->o);
  free(f);
  *fp = NULL;
}

gm_status gm_feed_subscribe(gm_feed *f, const char *prefix) {
  if (!prefix) prefix = "";
  if (zmq_setsockopt(f->sock, ZMQ_SUBSCRIBE, prefix, strlen(prefix)))
    return GM_INTERNAL;
  return GM_OK;
}

/* Drops the rest of a multi-frame message that does not fit the format. */
static void gm__drain(void *sock, zmq_msg_t *msg) {
  while (zmq_msg_more(msg))
    if (zmq_msg_recv(msg, sock, ZMQ_DONTWAIT) < 0) break;
}

gm_status gm_feed_recv(gm_feed *f, char **topic, Gm__Event **ev,
                       int timeout_ms) {
  *topic = NULL;
  *ev = NULL;
  zmq_pollitem_t item = {f->sock, 0, ZMQ_POLLIN, 0};
  if (zmq_poll(&item, 1, timeout_ms) <= 0) return GM_UNAVAILABLE;

  gm_status status = GM_INVALID_ARGUMENT;
  zmq_msg_t msg;
  zmq_msg_init(&msg);
  if (zmq_msg_recv(&msg, f->sock, ZMQ_DONTWAIT) < 0) {
    zmq_msg_close(&msg);
    return GM_UNAVAILABLE;
  }
  *topic = strndup(zmq_msg_data(&msg), zmq_msg_size(&msg));
  if (!*topic) {
    status = GM_INTERNAL;
    goto done;
  }
  if (!zmq_msg_more(&msg)) goto done; /* a topic without an event */
  if (zmq_msg_recv(&msg, f->sock, ZMQ_DONTWAIT) < 0) goto done;
  if (zmq_msg_more(&msg) || zmq_msg_size(&msg) > f->o.max_reply) goto done;
  *ev = gm__event__unpack(NULL, zmq_msg_size(&msg), zmq_msg_data(&msg));
  if (*ev) status = GM_OK;
done:
  gm__drain(f->sock, &msg);
  zmq_msg_close(&msg);
  return status;
}

void gm_feed_event_free(Gm__Event **ev) {
  if (!ev || !*ev) return;
  gm__event__free_unpacked(*ev, NULL);
  *ev = NULL;
}
