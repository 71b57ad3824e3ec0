/*
 * gm_feed: the broker's event feed.  Public events come on a SUB socket at
 * the feed endpoint; private events on a DEALER at the private feed, opened
 * at the first private subscription.  Public subscriptions go to that
 * DEALER too (a broker since 2026-12-05 takes them there, bounded and
 * leased like private ones), and to the SUB only when the broker refuses
 * them there as an older one does.  Each event is two frames: the topic
 * and a packed gm.Event.  The private feed keeps a connection's
 * subscriptions only while it hears from it, so they are sent again every
 * GM__RESEND_MS (which also restores them after a broker restart).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <zmq.h>

#include "greenmarket.pb-c.h"
#include "internal.h"

/* How often private subscriptions are sent again; the broker forgets a
   connection it has not heard from for 20 s (core/privfeed.h). */
#define GM__RESEND_MS 5000
/* How soon a feed whose handshake the broker ended with a ZAP status (a
   refused key) connects again, as ZeroMQ does not reconnect such a socket:
   after 1 s, then twice as long each time up to 32 s (every try is a line
   in the broker's log). */
#define GM__ZAP_RETRY_MS 1000
#define GM__ZAP_RETRY_MAX_MS 32000
/* The longest prefix worth subscribing: the longest topic, in bytes. */
#define GM__FEED_PREFIX_MAX 255

/* Both feed sockets: no linger, and a bound on how long a handshake may
   take before the feed connects again (o->feed_handshake_ms, by default
   5 s).  A broker that cannot read its participant registry (Redis loading
   or refusing it) answers "try later" (ZAP 300), and libzmq then sends the
   client nothing: with libzmq's default (30 s) the feed stayed silent that
   long after the registry was back, losing those events.  A CURVE
   handshake takes milliseconds. */
static void gm__feed_sockopts(void *sock, const gm_client_options *o) {
  int linger = 0, handshake = o->feed_handshake_ms;
  zmq_setsockopt(sock, ZMQ_LINGER, &linger, sizeof linger);
  zmq_setsockopt(sock, ZMQ_HANDSHAKE_IVL, &handshake, sizeof handshake);
}

typedef struct gm__fsub {
  char *prefix;  /* the prefix as sent ("*": every public topic) */
  unsigned refs; /* gm_feed_subscribe() calls not undone */
  int on_sub;    /* a public prefix held on the SUB until the private
                    feed's handshake succeeds (sub_until_up) */
} gm__fsub;

struct gm_feed {
  void *ctx;            /* the shared ZeroMQ context (acquired) */
  void *sock;           /* the SUB socket: public events */
  void *priv;           /* the DEALER on the private feed, or NULL */
  char *priv_endpoint;  /* where it connects; NULL: unknown */
  gm__fsub *subs;       /* subscriptions on the private feed */
  size_t nsubs, cap;    /* used, allocated */
  int64_t resend_ms;    /* when to send them again (monotonic) */
  int turn;             /* which socket is read first, in turn */
  gm_client_options o;  /* keys and max_reply; strings owned */
  void *mon;            /* the SUB's CURVE handshake watch, or NULL */
  int refused_told;     /* a refused key was reported by gm_feed_recv() */
  char *endpoint;       /* the public feed's */
  int64_t reconnect_ms; /* when to connect again after a ZAP status; 0 */
  int64_t retry_ms;     /* the wait before that, doubling */
  int old_broker;       /* public prefixes use the SUB (see below) */
  void *pmon;           /* the DEALER's handshake watch, or NULL */
  int priv_up;          /* the DEALER completed a handshake */
  int64_t pub_by_ms;    /* public prefixes sent on a DEALER not yet up:
                           moved to the SUB if it is not up by then; 0 */
  int sub_until_up;     /* they were: they wait there (on_sub) and go back
                           to the DEALER when its handshake succeeds */
};

gm_status gm_feed_private_endpoint(const char *feed, char *out, size_t n) {
  /* The same rule as gmd's default (core/privfeed.c), in docs/protocol.md. */
  if (!feed || !out || n == 0) return GM_INVALID_ARGUMENT;
  int w;
  if (strncmp(feed, "ipc://", 6) == 0) {
    w = snprintf(out, n, "%s.private", feed);
  } else {
    const char *colon = strrchr(feed, ':');
    char *end;
    long port = colon ? strtol(colon + 1, &end, 10) : 0;
    if (strncmp(feed, "tcp://", 6) != 0 || !colon || colon < feed + 6 || *end ||
        port < 1 || port >= 65535)
      return GM_INVALID_ARGUMENT;
    w = snprintf(out, n, "%.*s:%ld", (int)(colon - feed), feed, port + 1);
  }
  return w > 0 && (size_t)w < n ? GM_OK : GM_INVALID_ARGUMENT;
}

const char *gm_feed_topic_audience(const char *topic, gm_audience *audience,
                                   char *who, size_t n) {
  if (who && n) who[0] = '\0';
  if (!topic || !*topic || !audience) return NULL;
  if (topic[0] != '@') {
    *audience = GM_AUDIENCE_PUBLIC;
    return topic;
  }
  if ((topic[1] != 'p' && topic[1] != 'r') || topic[2] != ':') return NULL;
  const char *sp = strchr(topic + 3, ' ');
  if (!sp || sp == topic + 3 || !sp[1]) return NULL;
  size_t len = (size_t)(sp - topic - 3);
  if (who && n) {
    if (len >= n) return NULL;
    memcpy(who, topic + 3, len);
    who[len] = '\0';
  }
  *audience = topic[1] == 'p' ? GM_AUDIENCE_PARTICIPANT : GM_AUDIENCE_ROLE;
  return sp + 1;
}

gm_feed *gm_feed_new(const char *endpoint, const gm_client_options *opts) {
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
  f->endpoint = strdup(endpoint);
  if (!f->endpoint) {
    gm__client_set_error("out of memory creating a feed");
    goto fail;
  }
  if (f->o.private_feed) {
    f->priv_endpoint = strdup(f->o.private_feed);
  } else {
    char pf[1024];
    if (gm_feed_private_endpoint(endpoint, pf, sizeof pf) == GM_OK)
      f->priv_endpoint = strdup(pf);
  }
  f->ctx = gm__client_ctx_acquire();
  if (f->ctx) f->sock = zmq_socket(f->ctx, ZMQ_SUB);
  if (!f->sock) {
    gm__client_set_error("cannot create a SUB socket: %s", zmq_strerror(errno));
    goto fail;
  }
  gm__feed_sockopts(f->sock, &f->o);
  int curve = gm__client_apply_curve(f->sock, &f->o);
  /* The private feed uses the same key: one refusal tells for both. */
  if (!curve && f->o.server_public_key)
    f->mon = gm__client_monitor(f->ctx, f->sock);
  if (curve || zmq_connect(f->sock, endpoint)) {
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
  gm__client_monitor_close(f->sock, &f->mon);
  gm__client_monitor_close(f->priv, &f->pmon);
  if (f->sock) zmq_close(f->sock);
  if (f->priv) zmq_close(f->priv);
  if (f->ctx) gm__client_ctx_release();
  for (size_t i = 0; i < f->nsubs; i++) free(f->subs[i].prefix);
  free(f->subs);
  free(f->priv_endpoint);
  free(f->endpoint);
  gm__client_options_free(&f->o);
  free(f);
  *fp = NULL;
}

/* Sends one private (un)subscription: 1 or 0, then the prefix. */
static void gm__feed_send_sub(gm_feed *f, int on, const char *prefix) {
  size_t n = strlen(prefix);
  char *m = malloc(n + 1);
  if (!m) return;
  m[0] = (char)on;
  memcpy(m + 1, prefix, n);
  /* A full queue (broker away) drops it; the next resend carries it. */
  zmq_send(f->priv, m, n + 1, ZMQ_DONTWAIT);
  free(m);
}

/* Opens the private feed's DEALER; GM_OK or GM_FAILED_PRECONDITION. */
static gm_status gm__feed_open_private(gm_feed *f) {
  if (f->priv) return GM_OK;
  if (!f->priv_endpoint) {
    gm__client_set_error(
        "no private feed endpoint: the feed is neither tcp:// nor ipc://, so "
        "set gm_client_options.private_feed to the broker's [broker] "
        "private_feed");
    return GM_FAILED_PRECONDITION;
  }
  f->priv = zmq_socket(f->ctx, ZMQ_DEALER);
  if (!f->priv) return GM_INTERNAL;
  gm__feed_sockopts(f->priv, &f->o);
  f->pmon = gm__client_monitor(f->ctx, f->priv);
  if (gm__client_apply_curve(f->priv, &f->o) ||
      zmq_connect(f->priv, f->priv_endpoint)) {
    gm__client_set_error("cannot connect to the private feed \"%s\": %s",
                         f->priv_endpoint, zmq_strerror(errno));
    gm__client_monitor_close(f->priv, &f->pmon);
    zmq_close(f->priv);
    f->priv = NULL;
    return GM_FAILED_PRECONDITION;
  }
  f->resend_ms = gm__client_now_ms() + GM__RESEND_MS;
  return GM_OK;
}

static gm__fsub *gm__feed_find(gm_feed *f, const char *prefix) {
  for (size_t i = 0; i < f->nsubs; i++)
    if (strcmp(f->subs[i].prefix, prefix) == 0) return &f->subs[i];
  return NULL;
}

/* A public prefix as sent on the private feed (not "", not "@..."). */
static int gm__feed_public(const char *prefix) {
  return prefix[0] && prefix[0] != '@';
}

/* (Un)subscribes a public prefix as sent on the private feed on the SUB
   ("*" as ""). */
static void gm__feed_sub_sock(gm_feed *f, int on, const char *wire) {
  const char *p = strcmp(wire, "*") == 0 ? "" : wire;
  zmq_setsockopt(f->sock, on ? ZMQ_SUBSCRIBE : ZMQ_UNSUBSCRIBE, p, strlen(p));
}

static gm_status gm__feed_private_sub(gm_feed *f, const char *prefix) {
  gm_status st = gm__feed_open_private(f);
  if (st != GM_OK) return st;
  gm__fsub *s = gm__feed_find(f, prefix);
  if (s) {
    s->refs++;
    if (s->on_sub) gm__feed_sub_sock(f, 1, prefix);
    return GM_OK;
  }
  if (f->nsubs == f->cap) {
    size_t cap = f->cap ? 2 * f->cap : 4;
    gm__fsub *n = realloc(f->subs, cap * sizeof *n);
    if (!n) return GM_INTERNAL;
    f->subs = n;
    f->cap = cap;
  }
  char *copy = strdup(prefix);
  if (!copy) return GM_INTERNAL;
  int on_sub = f->sub_until_up && gm__feed_public(prefix);
  f->subs[f->nsubs++] = (gm__fsub){copy, 1, on_sub};
  if (on_sub)
    gm__feed_sub_sock(f, 1, prefix);
  else
    gm__feed_send_sub(f, 1, prefix);
  return GM_OK;
}

/* Forgets one reference (or all: refused); unsubscribes at the last one. */
static void gm__feed_private_unsub(gm_feed *f, const char *prefix, int all,
                                   int tell) {
  gm__fsub *s = gm__feed_find(f, prefix);
  if (!s) return;
  /* Held on the SUB for now: once per reference undone. */
  for (unsigned k = all ? s->refs : 1; s->on_sub && k > 0; k--)
    gm__feed_sub_sock(f, 0, prefix);
  if (!all && --s->refs > 0) return;
  if (tell && !s->on_sub) gm__feed_send_sub(f, 0, prefix);
  free(s->prefix);
  *s = f->subs[--f->nsubs];
}

gm_status gm_feed_subscribe(gm_feed *f, const char *prefix) {
  if (!f) {
    gm__client_set_error(
        "no feed: gm_feed_new() returned NULL (gm_client_last_error() said "
        "why)");
    return GM_INVALID_ARGUMENT;
  }
  if (!prefix) prefix = "";
  /* No topic is longer: such a prefix would match nothing, and the broker
     drops a feed connection that sends one (with every subscription on it). */
  size_t plen = strlen(prefix);
  if (plen > GM__FEED_PREFIX_MAX) {
    gm__client_set_error(
        "cannot subscribe to a prefix of %zu bytes: topics are at most %d "
        "bytes, so it would match nothing; subscribe a prefix of at most %d "
        "bytes",
        plen, GM__FEED_PREFIX_MAX, GM__FEED_PREFIX_MAX);
    return GM_INVALID_ARGUMENT;
  }
  if (prefix[0] == '@') return gm__feed_private_sub(f, prefix);
  /* "" is everything this participant may see: every public topic ("*" on
     the private feed) and its private events, when the broker's private
     feed can be found. */
  if (f->priv_endpoint && !f->old_broker) {
    gm_status st = gm__feed_private_sub(f, prefix[0] ? prefix : "*");
    if (st == GM_OK && !prefix[0]) st = gm__feed_private_sub(f, "");
    /* A private feed nobody answers (a port closed by a firewall, a
       publisher with no private feed) would refuse nothing and send
       nothing: if its handshake has not succeeded within the handshake
       bound, public prefixes go to the SUB. */
    if (st == GM_OK && !f->priv_up && !f->pub_by_ms && !f->sub_until_up)
      f->pub_by_ms = gm__client_now_ms() + f->o.feed_handshake_ms;
    return st;
  }
  if (zmq_setsockopt(f->sock, ZMQ_SUBSCRIBE, prefix, strlen(prefix))) {
    gm__client_set_error("cannot subscribe to \"%s\": %s", prefix,
                         zmq_strerror(errno));
    return GM_INTERNAL;
  }
  if (!prefix[0] && f->priv_endpoint) return gm__feed_private_sub(f, "");
  return GM_OK;
}

gm_status gm_feed_unsubscribe(gm_feed *f, const char *prefix) {
  if (!f) return GM_INVALID_ARGUMENT;
  if (!prefix) prefix = "";
  if (prefix[0] != '@') {
    /* Held on the private feed, or on the SUB (an older broker). */
    const char *wire = prefix[0] ? prefix : "*";
    if (gm__feed_find(f, wire))
      gm__feed_private_unsub(f, wire, 0, 1);
    else if (zmq_setsockopt(f->sock, ZMQ_UNSUBSCRIBE, prefix, strlen(prefix)))
      return GM_INTERNAL;
  }
  if (prefix[0] == '@' || !prefix[0]) gm__feed_private_unsub(f, prefix, 0, 1);
  return GM_OK;
}

/*
 * Every public prefix held on the private feed goes to the SUB, as often
 * as it was subscribed ("*" as ""), and every later one too.  for_good 0
 * (the DEALER's handshake has not succeeded in time): they are kept in the
 * list, marked on_sub, and go back when it succeeds
 * (gm__feed_publics_to_private); 1 (an older broker refused one): the SUB
 * keeps them.
 */
static void gm__feed_publics_to_sub(gm_feed *f, int for_good) {
  if (for_good) f->old_broker = 1;
  f->sub_until_up = !for_good;
  f->pub_by_ms = 0;
  for (size_t i = f->nsubs; i-- > 0;) {
    gm__fsub *o = &f->subs[i];
    if (!gm__feed_public(o->prefix)) continue;
    if (!o->on_sub) {
      for (unsigned k = 0; k < o->refs; k++) gm__feed_sub_sock(f, 1, o->prefix);
      gm__feed_send_sub(f, 0, o->prefix);
      o->on_sub = 1;
    }
    if (!for_good) continue;
    char *moved = o->prefix;
    o->prefix = NULL;
    *o = f->subs[--f->nsubs];
    free(moved);
  }
}

/* The DEALER's handshake succeeded after the public prefixes went to the
   SUB to wait: they come back, off the SUB first, so no event comes on
   both (one published while they move may be missed, as at any
   subscription). */
static void gm__feed_publics_to_private(gm_feed *f) {
  f->sub_until_up = 0;
  for (size_t i = 0; i < f->nsubs; i++) {
    gm__fsub *o = &f->subs[i];
    if (!o->on_sub) continue;
    for (unsigned k = 0; k < o->refs; k++) gm__feed_sub_sock(f, 0, o->prefix);
    o->on_sub = 0;
    gm__feed_send_sub(f, 1, o->prefix);
  }
}

/*
 * A broker from before 2026-12-05 refuses a public prefix on the private
 * feed ("... may see only private topics ..."), or, when the connection
 * holds its 256 private prefixes already, with its cap's reason, which
 * says "256 private prefixes" (a newer broker's says "256 prefixes
 * (private and public)"): that prefix, and every public one from now on,
 * goes to the SUB instead.  1 when `prefix` was such a refusal.  Any other
 * refusal (a newer broker's cap, a revoked key) stands: the SUB would not
 * be bounded.
 */
static int gm__feed_fall_back(gm_feed *f, const char *prefix, const char *why,
                              size_t wn) {
  static const char old[] = "may see only private topics";
  static const char old_cap[] = "256 private prefixes";
  if (!prefix[0] || prefix[0] == '@' ||
      (!memmem(why, wn, old, sizeof old - 1) &&
       !memmem(why, wn, old_cap, sizeof old_cap - 1)))
    return 0;
  gm__feed_publics_to_sub(f, 1);
  return 1;
}

/* Drops the rest of a multi-frame message that does not fit the format. */
static void gm__drain(void *sock, zmq_msg_t *msg) {
  while (zmq_msg_more(msg))
    if (zmq_msg_recv(msg, sock, ZMQ_DONTWAIT) < 0) break;
}

/* Reads one message from `sock`: [topic, event], or from the private feed
   ["!", prefix, why] for a refused subscription. */
static gm_status gm__feed_read(gm_feed *f, void *sock, char **topic,
                               Gm__Event **ev) {
  gm_status status = GM_INVALID_ARGUMENT;
  zmq_msg_t msg;
  zmq_msg_init(&msg);
  if (zmq_msg_recv(&msg, sock, ZMQ_DONTWAIT) < 0) {
    zmq_msg_close(&msg);
    return GM_UNAVAILABLE;
  }
  if (sock == f->priv && zmq_msg_size(&msg) == 1 &&
      *(char *)zmq_msg_data(&msg) == '!' && zmq_msg_more(&msg) &&
      zmq_msg_recv(&msg, sock, ZMQ_DONTWAIT) >= 0) {
    *topic = strndup(zmq_msg_data(&msg), zmq_msg_size(&msg));
    int why = *topic && zmq_msg_more(&msg) &&
              zmq_msg_recv(&msg, sock, ZMQ_DONTWAIT) >= 0;
    if (why &&
        gm__feed_fall_back(f, *topic, zmq_msg_data(&msg), zmq_msg_size(&msg))) {
      free(*topic);
      *topic = NULL;
      status = GM_UNAVAILABLE; /* nothing for the caller: read on */
    } else if (why) {
      gm__client_set_error(
          "the broker refused subscription \"%s\": "
          "%.*s",
          *topic, (int)zmq_msg_size(&msg), (char *)zmq_msg_data(&msg));
      /* Refused for good: sending it again would only be refused again. */
      gm__feed_private_unsub(f, *topic, 1, 0);
      status = GM_PERMISSION_DENIED;
    }
    goto done;
  }
  *topic = strndup(zmq_msg_data(&msg), zmq_msg_size(&msg));
  if (!*topic) {
    status = GM_INTERNAL;
    goto done;
  }
  if (!zmq_msg_more(&msg)) goto done; /* a topic without an event */
  if (zmq_msg_recv(&msg, sock, ZMQ_DONTWAIT) < 0) goto done;
  if (zmq_msg_more(&msg) || zmq_msg_size(&msg) > f->o.max_reply) goto done;
  *ev = gm__event__unpack(NULL, zmq_msg_size(&msg), zmq_msg_data(&msg));
  if (*ev) status = GM_OK;
done:
  gm__drain(sock, &msg);
  zmq_msg_close(&msg);
  return status;
}

/* Connects both sockets again after the broker ended their handshakes
   (the same key: one refusal is both's); subscriptions are kept by the SUB
   and sent again at once to the private feed. */
static void gm__feed_reconnect(gm_feed *f, int64_t now) {
  zmq_disconnect(f->sock, f->endpoint);
  zmq_connect(f->sock, f->endpoint);
  if (f->priv) {
    zmq_disconnect(f->priv, f->priv_endpoint);
    zmq_connect(f->priv, f->priv_endpoint);
    f->resend_ms = now;
  }
}

gm_status gm_feed_recv(gm_feed *f, char **topic, Gm__Event **ev,
                       int timeout_ms) {
  if (!topic || !ev) return GM_INVALID_ARGUMENT;
  *topic = NULL;
  *ev = NULL;
  if (!f) {
    gm__client_set_error(
        "no feed: gm_feed_new() returned NULL (gm_client_last_error() said "
        "why)");
    return GM_INVALID_ARGUMENT;
  }
  int64_t now = gm__client_now_ms();
  int64_t deadline = timeout_ms < 0 ? INT64_MAX : now + timeout_ms;
  for (;;) {
    unsigned zap = gm__client_refused(f->mon, NULL, NULL);
    if (zap) {
      f->retry_ms = !f->retry_ms ? GM__ZAP_RETRY_MS
                    : f->retry_ms < GM__ZAP_RETRY_MAX_MS / 2
                        ? f->retry_ms * 2
                        : GM__ZAP_RETRY_MAX_MS;
      f->reconnect_ms = now + f->retry_ms;
    }
    if (f->reconnect_ms && now >= f->reconnect_ms) {
      f->reconnect_ms = 0;
      gm__feed_reconnect(f, now);
    }
    if (f->pmon) {
      int up = 0;
      gm__client_refused(f->pmon, NULL, &up);
      if (up) {
        f->priv_up = 1;
        f->pub_by_ms = 0;
        if (f->sub_until_up) gm__feed_publics_to_private(f);
        /* A new connection (gmd restarted, or the network came back) holds
           nothing: everything is sent again now, as a SUB does, not at
           the next resend. */
        f->resend_ms = now;
      }
    }
    if (f->pub_by_ms && !f->priv_up && now >= f->pub_by_ms)
      gm__feed_publics_to_sub(f, 0);
    if (f->priv && now >= f->resend_ms) {
      for (size_t i = 0; i < f->nsubs; i++)
        if (!f->subs[i].on_sub) gm__feed_send_sub(f, 1, f->subs[i].prefix);
      f->resend_ms = now + GM__RESEND_MS;
    }
    int64_t wait = deadline - now;
    if (f->priv && f->resend_ms - now < wait) wait = f->resend_ms - now;
    if (f->reconnect_ms && f->reconnect_ms - now < wait)
      wait = f->reconnect_ms - now;
    if (f->pub_by_ms && f->pub_by_ms - now < wait) wait = f->pub_by_ms - now;
    if (wait > 1000000) wait = 1000000; /* forever, in steps */
    if (wait < 0) wait = 0;
    if (zap == 400 && !f->refused_told) {
      /* Once: the feed keeps trying, and events come if the key is
         registered later. */
      f->refused_told = 1;
      gm__client_set_error(
          "the broker refused this feed's CURVE key %s (ZAP status 400): no "
          "participant is registered with it, or it was replaced by a new "
          "key; no event comes until an admin registers it (gm admin "
          "register ID --roles ROLES --key %s)",
          f->o.public_key, f->o.public_key);
      *topic = strdup("");
      return *topic ? GM_PERMISSION_DENIED : GM_INTERNAL;
    }
    /* A NULL socket is skipped: poll() ignores a negative fd. */
    zmq_pollitem_t items[4] = {{f->sock, 0, ZMQ_POLLIN, 0},
                               {f->priv, f->priv ? 0 : -1, ZMQ_POLLIN, 0},
                               {f->mon, f->mon ? 0 : -1, ZMQ_POLLIN, 0},
                               {f->pmon, f->pmon ? 0 : -1, ZMQ_POLLIN, 0}};
    int n = zmq_poll(items, 4, (long)wait);
    if (n < 0 && zmq_errno() != EINTR) return GM_UNAVAILABLE;
    if (n > 0) {
      /* In turn, so a busy public feed cannot starve private events. */
      int first = f->priv ? f->turn++ & 1 : 0;
      for (int k = 0; k < 2; k++) {
        int i = (first + k) & 1;
        if (i == 1 && !f->priv) continue;
        if (!(items[i].revents & ZMQ_POLLIN)) continue;
        gm_status st = gm__feed_read(f, items[i].socket, topic, ev);
        if (st != GM_UNAVAILABLE) return st;
      }
    }
    now = gm__client_now_ms();
    if (now >= deadline) return GM_UNAVAILABLE;
  }
}

void gm_feed_event_free(Gm__Event **ev) {
  if (!ev || !*ev) return;
  gm__event__free_unpacked(*ev, NULL);
  *ev = NULL;
}
