#include "publisher.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "auth.h"
#include "clock.h"
#include "frames.h"
#include "interest.h"
#include "log.h"
#include "privfeed.h"

/* Events moved per wake-up, at most. */
#define BURST 256
/* The longest public prefix kept, in bytes: the longest topic. */
#define GM__FEED_PREFIX_MAX 255
/* The longest frame a feed client may send (ZMQ_MAXMSGSIZE, below). */
#define GM__FEED_FRAME_MAX 1024

struct gm__publisher {
  void *pull;         /* PULL from workers and timers */
  void *pub;          /* XPUB: the feed (public events) */
  int pub_open;       /* [broker] public_feed_sub: the XPUB is bound */
  gm__privfeed *priv; /* ROUTER: the private feed (privfeed.h) */
  uint64_t seq;       /* the public events' sequence number */
  /* The prefixes subscribed on both feeds, for publishers to skip events
     nobody would receive (interest.h). */
  gm__interest *interest;
  size_t public_prefixes;      /* distinct prefixes noted from the XPUB */
  _Atomic uint64_t subscribes; /* SUBSCRIBE messages the XPUB passed */
  /* CURVE: the registry, to re-check private subscribers' keys and roles
     (this thread's own connection; NULL in development mode). */
  gm__redis *redis;
  gm__arena *arena;       /* one re-check's strings */
  const gm__roles *roles; /* the roles in force (the broker's) */
  int64_t redis_log_ms;   /* when its failure was last logged */
  /* A lookup failed since the last re-check: until the next one, new
     connections' lookups do not wait on Redis again (one timeout a second,
     not one per new connection). */
  int redis_down;
  /* Times that connection was reopened (gm__redis_reopens), copied by this
     thread after each use for the metrics thread to read. */
  _Atomic uint64_t redis_reopens;
  pthread_t thread; /* moves events from pull to pub */
  int started;      /* thread was created */
};

/* Worker/timer event -> feed, stamped with its audience's sequence number:
   public topics ("<market>.<event>") on the PUB, private ones ("@p:..." or
   "@r:...", built only by gm__publish) on the private feed; 1 if an event
   was waiting. */
static int gm__publisher_forward(gm__publisher *p) {
  zmq_msg_t f[2];
  int n;
  if (gm__recv_frames(p->pull, f, 2, &n, ZMQ_DONTWAIT) < 0 || n == 0) return 0;
  if (n != 2) {
    for (int i = 0; i < (n < 0 ? -n : n); i++) zmq_msg_close(&f[i]);
    return 1;
  }
  /* Appending field 7 (varint) to a packed Event sets its seq. */
  uint8_t tail[11];
  size_t t = 0;
  const char *topic = zmq_msg_data(&f[0]);
  size_t tlen = zmq_msg_size(&f[0]);
  int private = tlen > 0 && topic[0] == '@';
  uint64_t seq =
      private ? gm__privfeed_next_seq(p->priv, topic, tlen) : ++p->seq;
  tail[t++] = (7 << 3) | 0;
  do {
    tail[t++] = (uint8_t)((seq & 0x7f) | (seq > 0x7f ? 0x80 : 0));
    seq >>= 7;
  } while (seq);
  size_t len = zmq_msg_size(&f[1]);
  zmq_msg_t body;
  zmq_msg_init_size(&body, len + t);
  memcpy(zmq_msg_data(&body), zmq_msg_data(&f[1]), len);
  memcpy((uint8_t *)zmq_msg_data(&body) + len, tail, t);
  if (private) {
    gm__privfeed_deliver(p->priv, topic, tlen, zmq_msg_data(&body),
                         zmq_msg_size(&body));
  } else {
    /* The same two frames and seq to the private feed's connections that
       hold a public prefix (docs/protocol.md, "Public topics on the
       private feed"), then to the feed's SUB sockets. */
    gm__privfeed_deliver(p->priv, topic, tlen, zmq_msg_data(&body),
                         zmq_msg_size(&body));
    if (p->pub_open) {
      zmq_msg_send(&f[0], p->pub, ZMQ_SNDMORE);
      zmq_msg_send(&body, p->pub, 0);
    }
  }
  zmq_msg_close(&f[0]);
  zmq_msg_close(&f[1]);
  zmq_msg_close(&body);
  return 1;
}

/* Public prefixes noted at most: past this many the feed counts as
   subscribed to everything (no prefix is ever forgotten, below). */
#define PUBLIC_PREFIXES_MAX 65536

/*
 * The public feed's subscriptions: the XPUB passes each (byte 1, prefix;
 * ZMQ_XPUB_VERBOSE), a prefix once noted is noted again at no cost.  It also
 * passes unsubscriptions (byte 0), but those cannot be trusted: libzmq passes a
 * peer's unsubscribe of a prefix that peer never held while another peer holds
 * it, so forgetting the prefix then would let any feed client stop everyone's
 * events.  A prefix once subscribed therefore keeps its events built until the
 * broker restarts, as every event was before; the private feed, which knows
 * each connection's prefixes, forgets exactly.
 */
static void gm__publisher_subscriptions(gm__publisher *p) {
  for (int i = 0; i < BURST; i++) {
    zmq_msg_t m;
    zmq_msg_init(&m);
    if (zmq_msg_recv(&m, p->pub, ZMQ_DONTWAIT) < 0) {
      zmq_msg_close(&m);
      return;
    }
    const uint8_t *d = zmq_msg_data(&m);
    size_t n = zmq_msg_size(&m);
    /* A prefix longer than any topic (gm__publish builds them in 256
       bytes) matches nothing: not worth keeping.  Each is counted once:
       the XPUB passes a prefix again after its last unsubscribe, and
       counting that too would let one client reach the limit by
       subscribing one prefix over and over. */
    if (n >= 1 && n <= 1 + GM__FEED_PREFIX_MAX && d[0] == 1 &&
        p->public_prefixes < PUBLIC_PREFIXES_MAX &&
        gm__interest_note(p->interest, d + 1, n - 1) &&
        ++p->public_prefixes == PUBLIC_PREFIXES_MAX)
      gm__interest_note(p->interest, "", 0);
    /* Counted once noted: a worker that builds an event after the count
       moved finds the prefix wanted. */
    if (n >= 1 && d[0] == 1)
      atomic_fetch_add_explicit(&p->subscribes, 1, memory_order_release);
    zmq_msg_close(&m);
  }
}

static int gm__publisher_lookup(void *ctx, const char *const *keys, size_t n,
                                char **owners, char **roles) {
  gm__publisher *p = ctx;
  if (p->redis_down) return -1;
  int rc =
      gm__auth_owners(p->redis, p->arena, p->roles, keys, n, owners, roles);
  atomic_store_explicit(&p->redis_reopens, gm__redis_reopens(p->redis),
                        memory_order_release);
  if (rc == 0) return 0;
  p->redis_down = 1;
  int64_t now = gm__clock_mono_us() / 1000;
  if (now - p->redis_log_ms >= 60000) {
    const redisContext *c = gm__redis_context(p->redis);
    char buf[1024], ebuf[128];
    gm__log(GM_LOG_WARN, "feed",
            "private feed: cannot re-check subscribers' keys and roles at %s "
            "(%s); they keep what they had until Redis answers",
            gm__redis_where(p->redis),
            c->err ? gm__redis_error_text(
                         p->redis,
                         gm__redis_ctx_error(p->redis, c, ebuf, sizeof ebuf),
                         buf, sizeof buf)
                   : "it answered an error: loading its data?");
    p->redis_log_ms = now;
  }
  return -1;
}

/* Keys revoked or replaced and roles changed reach open private
   subscriptions as they reach requests: within a second. */
static void gm__publisher_recheck(gm__publisher *p, int64_t now) {
  if (!p->redis) return;
  p->redis_down = 0; /* each re-check tries Redis again */
  gm__privfeed_recheck(p->priv, now);
  gm__arena_reset(p->arena);
}

static void *gm__publisher_run(void *arg) {
  gm__publisher *p = arg;
  int64_t next_expiry = 0;
  for (;;) {
    zmq_pollitem_t items[] = {
        {p->pull, 0, ZMQ_POLLIN, 0},
        {gm__privfeed_socket(p->priv), 0, ZMQ_POLLIN, 0},
        {gm__privfeed_monitor_socket(p->priv), 0, ZMQ_POLLIN, 0},
        {p->pub, 0, ZMQ_POLLIN, 0}};
    /* Wakes every second to forget private subscribers gone silent. */
    if (zmq_poll(items, 4, 1000) < 0) {
      if (zmq_errno() == EINTR) continue;
      break; /* ETERM: the broker is stopping */
    }
    int64_t now = gm__clock_mono_us() / 1000;
    /* Disconnects first: a peer that reconnects under a gone one's routing
       id must find nothing of it. */
    if (items[2].revents & ZMQ_POLLIN) gm__privfeed_read_monitor(p->priv);
    if (items[3].revents & ZMQ_POLLIN) gm__publisher_subscriptions(p);
    if (items[1].revents & ZMQ_POLLIN) {
      gm__privfeed_read(p->priv, BURST, now);
      if (p->arena) gm__arena_reset(p->arena); /* new connections' lookups */
    }
    for (int i = 0; i < BURST; i++)
      if (!gm__publisher_forward(p)) break;
    if (now >= next_expiry) {
      gm__privfeed_expire(p->priv, now);
      gm__publisher_recheck(p, now);
      next_expiry = now + GM_PRIVFEED_RECHECK_MS;
    }
  }
  int linger = 0;
  zmq_setsockopt(p->pull, ZMQ_LINGER, &linger, sizeof linger);
  zmq_setsockopt(p->pub, ZMQ_LINGER, &linger, sizeof linger);
  zmq_close(p->pull);
  zmq_close(p->pub);
  gm__privfeed_destroy(&p->priv);
  p->pull = p->pub = NULL;
  return NULL;
}

gm__publisher *gm__publisher_start(void *zctx, const char *events,
                                   const char *feed, const char *private_feed,
                                   int queue, int public_sub,
                                   const char *curve_secret,
                                   const gm__redis_addr *raddr,
                                   const gm__roles *roles, char *err,
                                   size_t errlen) {
  gm__publisher *p = calloc(1, sizeof *p);
  if (!p) abort();
  if (curve_secret) {
    /* A Redis that hangs holds events back at most this long a second,
       from the first connection on and on one reopened after one failed (a
       timeout is one). */
    gm__redis_addr addr = *raddr;
    addr.connect_us = addr.io_us = 250000;
    p->redis = gm__redis_connect(&addr, err, errlen);
    if (!p->redis) goto fail;
    p->arena = gm__arena_new();
    p->roles = roles;
  }
  p->interest = gm__interest_new();
  p->pull = zmq_socket(zctx, ZMQ_PULL);
  p->pub = zmq_socket(zctx, ZMQ_XPUB);
  if (queue > 0) zmq_setsockopt(p->pub, ZMQ_SNDHWM, &queue, sizeof queue);
  /* Every SUBSCRIBE passes, not only a prefix's first: each is counted
     (greenmarket_feed_subscribes_total), so a client or test can tell its
     own has reached the feed; the XPUB applies it before passing it, so an
     event sent after that reaches it. */
  int verbose = 1;
  zmq_setsockopt(p->pub, ZMQ_XPUB_VERBOSE, &verbose, sizeof verbose);
  /* What a feed client sends is its subscriptions (byte 1 or 0, then the
     prefix), and libzmq keeps each subscribed prefix in a trie of one node
     per byte before gmd sees it: without a cap one 100 KB prefix cost gmd
     3 MB, and 100 of them 323 MB, for as long as the client stayed.  No
     topic is longer than 255 bytes (gm__publish builds them in 256), so a
     longer prefix matches nothing (the client library refuses one).  The
     cap is on the frames the client sends, its handshake's included: a
     CURVE INITIATE (about 300 bytes with its metadata) and each encrypted
     subscription (33 bytes more than the prefix) must pass, so it is 1 KB:
     a client that sends more in one frame is dropped, and no prefix costs
     gmd more than about 32 KB. */
  int64_t maxsub = GM__FEED_FRAME_MAX;
  zmq_setsockopt(p->pub, ZMQ_MAXMSGSIZE, &maxsub, sizeof maxsub);
  if (curve_secret) {
    int one = 1;
    zmq_setsockopt(p->pub, ZMQ_CURVE_SERVER, &one, sizeof one);
    zmq_setsockopt(p->pub, ZMQ_CURVE_SECRETKEY, curve_secret, 40);
    zmq_setsockopt(p->pub, ZMQ_ZAP_DOMAIN, "greenmarket", 11);
  }
  if (zmq_bind(p->pull, events)) {
    snprintf(err, errlen, "inproc bind: %s", zmq_strerror(zmq_errno()));
    goto fail;
  }
  p->pub_open = public_sub;
  if (public_sub && zmq_bind(p->pub, feed)) {
    snprintf(err, errlen, "cannot bind the feed %s: %s (set [broker] feed)",
             feed, zmq_strerror(zmq_errno()));
    goto fail;
  }
  p->priv =
      gm__privfeed_new(zctx, private_feed, curve_secret, queue, err, errlen);
  if (!p->priv) goto fail;
  gm__privfeed_set_interest(p->priv, p->interest);
  if (p->redis) gm__privfeed_set_lookup(p->priv, gm__publisher_lookup, p);
  if (pthread_create(&p->thread, NULL, gm__publisher_run, p) != 0) {
    snprintf(err, errlen, "cannot start the publisher thread");
    goto fail;
  }
  pthread_setname_np(p->thread, "gmd-publish");
  p->started = 1;
  return p;
fail:
  gm__publisher_destroy(&p);
  return NULL;
}

void gm__publisher_destroy(gm__publisher **pp) {
  if (!pp || !*pp) return;
  gm__publisher *p = *pp;
  if (p->started) pthread_join(p->thread, NULL);
  int linger = 0;
  void *socks[] = {p->pull, p->pub};
  for (int i = 0; i < 2; i++)
    if (socks[i]) {
      zmq_setsockopt(socks[i], ZMQ_LINGER, &linger, sizeof linger);
      zmq_close(socks[i]);
    }
  gm__privfeed_destroy(&p->priv);
  gm__redis_destroy(&p->redis);
  if (p->arena) gm__arena_destroy(&p->arena);
  gm__interest_destroy(&p->interest);
  free(p);
  *pp = NULL;
}

const gm__interest *gm__publisher_interest(const gm__publisher *p) {
  return p->interest;
}

uint64_t gm__publisher_subscribes(const gm__publisher *p) {
  return atomic_load_explicit(&((gm__publisher *)p)->subscribes,
                              memory_order_acquire);
}

uint64_t gm__publisher_private_subscribes(const gm__publisher *p) {
  return gm__privfeed_subscribes(p->priv);
}

uint64_t gm__publisher_redis_reopens(const gm__publisher *p) {
  return atomic_load_explicit(&((gm__publisher *)p)->redis_reopens,
                              memory_order_acquire);
}

int gm__publisher_has_redis(const gm__publisher *p) {
  return p->redis != NULL;
}

size_t gm__publisher_private_connections(const gm__publisher *p) {
  return gm__privfeed_connections(p->priv);
}
