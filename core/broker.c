#include "broker.h"

#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zmq.h>

#include "auth.h"
#include "call.h"
#include "clock.h"
#include "core_methods.h"
#include "deadletter.h"
#include "fiber.h"
#include "greenmarket.pb-c.h"
#include "host.h"
#include "ledger.h"
#include "loader.h"
#include "log.h"
#include "redis.h"
#include "settle.h"
#include "timers.h"

#define PROTOCOL_VERSION 1
#define WORKERS_ENDPOINT "inproc://gm-workers"
#define EVENTS_ENDPOINT "inproc://gm-events"
/* Routing frames a request may carry before its payload (ROUTER id, REQ
   delimiter, proxies in between). */
#define MAX_PREFIX_FRAMES 8
#define MAX_IDEM_KEY 128
/* No reply from Redis for this long while requests wait: reconnect. */
#define REDIS_STALL_US (30u * 1000000u)
/* Stack of each request's fiber. */
#define FIBER_STACK (256 * 1024)
/* Messages the main thread moves per socket per wake-up, at most. */
#define BURST 256

/* Development mode: roles a worker looked up lately (see dev_roles). */
#define ROLE_CACHE 64
#define ROLE_CACHE_US 1000000u

/* CURVE mode: who owns a key, as a worker read it lately (curve_recheck). */
typedef struct key_entry {
  char key[41];         /* Z85 public key; "" when the slot is free */
  char participant[65]; /* its owner then; "" when none */
  char roles[64];       /* the owner's roles, comma-separated */
  uint64_t until_us;    /* valid until, monotonic */
} key_entry;

typedef struct role_entry {
  char participant[65]; /* "" when the slot is free */
  char roles[64];       /* comma-separated */
  uint64_t until_us;    /* valid until, monotonic */
} role_entry;

/* One request in a worker: its frames, memory, fiber and reply. */
typedef struct task {
  struct worker *w;                   /* owner */
  gm__fiber *fiber;                   /* runs the request's handler */
  gm__arena *arena;                   /* the request's memory */
  zmq_msg_t f[MAX_PREFIX_FRAMES + 2]; /* [auth][routing ...][payload] */
  int n;                              /* frames in f */
  int done;                           /* replied; fiber finished */
  struct task *next_free;             /* free list */
} task;

typedef struct worker {
  struct gm__broker *b;         /* owner */
  role_entry roles[ROLE_CACHE]; /* dev-mode roles, direct-mapped by id */
  key_entry keys[ROLE_CACHE];   /* curve-mode key owners, by key */
  pthread_t thread;             /* this worker */
  int started;                  /* thread was created */
  void *sock;                   /* DEALER to the main thread */
  void *pub;                    /* PUSH to the publisher */
  gm__redis *redis;             /* own Redis connection */
  gm__ledger *reader;           /* own read-only ledger */
  task *tasks;                  /* pipeline of them */
  task *free_tasks;             /* not running */
  long active;                  /* running (pipeline - free) */
} worker;

struct gm__broker {
  const gm__config *cfg;       /* not owned */
  char name[128];              /* broker id in events and as settle consumer */
  char *endpoint;              /* client ROUTER endpoint */
  char *feed;                  /* PUB endpoint */
  long n_workers;              /* worker threads */
  long pipeline;               /* requests in flight per worker */
  long max_msg;                /* largest request accepted, bytes */
  int dev_mode;                /* no CURVE: callers say who they are */
  int settle_on;               /* this broker runs the settlement writer */
  long settle_batch;           /* entries per settle transaction */
  long settle_linger;          /* ms to gather entries after a small batch */
  char server_secret[41];      /* CURVE secret key (Z85) in curve mode */
  char *redis_unix;            /* [redis] unix, resolved */
  char *redis_host;            /* [redis] host */
  gm__redis_addr raddr;        /* the Redis address every thread uses */
  char *ledger_path;           /* [ledger] path, resolved */
  gm__host host;               /* what plugins see behind gm_host_api */
  gm_market **markets;         /* loaded plugins */
  size_t n_markets;            /* how many */
  void *zctx;                  /* zmq context */
  worker *workers;             /* n_workers of them */
  gm__timers *timers;          /* plugin timers */
  gm__settler *settler;        /* the outbox drain, when settle_on */
  gm__auth *auth;              /* ZAP handler, in curve mode */
  volatile sig_atomic_t stop;  /* set by gm__broker_stop */
  int64_t started_ms;          /* for uptime */
  gm__stats core_stats;        /* the "gm" market */
  _Atomic uint64_t bad_frames; /* frames that were no Request */
  uint64_t event_seq;          /* feed sequence (publisher thread only) */
  void *pull;                  /* PULL inproc://gm-events (publisher thread) */
  void *pub;                   /* PUB on the feed endpoint (publisher thread) */
  pthread_t publisher;         /* moves events from pull to pub */
  int publisher_started;       /* publisher was created */
};

/* ---- core methods (market "gm") ---- */

static gm_status core_ping(gm_call *call, const ProtobufCMessage *req,
                           ProtobufCMessage **reply) {
  const Gm__PingRequest *in = (const Gm__PingRequest *)req;
  Gm__PingReply *out = gm__arena_alloc(call->arena, sizeof *out);
  gm__ping_reply__init(out);
  out->echo = in->echo;
  out->time_ms = gm__clock_now_ms();
  out->broker = call->broker->name;
  out->protocol_version = PROTOCOL_VERSION;
  *reply = &out->base;
  return GM_OK;
}

static Gm__MethodInfo *method_info(gm__arena *a, const gm_method *m) {
  Gm__MethodInfo *mi = gm__arena_alloc(a, sizeof *mi);
  gm__method_info__init(mi);
  mi->name = (char *)m->name;
  mi->request_type = (char *)m->request->name;
  mi->reply_type = (char *)m->reply->name;
  mi->mutating = (m->flags & GM_METHOD_MUTATING) != 0;
  mi->roles = (char *)(m->roles ? m->roles : "");
  mi->summary = (char *)(m->summary ? m->summary : "");
  return mi;
}

static gm_status core_markets(gm_call *call, const ProtobufCMessage *req,
                              ProtobufCMessage **reply) {
  (void)req;
  gm__broker *b = call->broker;
  gm__arena *a = call->arena;
  Gm__MarketsReply *out = gm__arena_alloc(a, sizeof *out);
  gm__markets_reply__init(out);
  out->n_markets = b->n_markets + 1;
  out->markets = gm__arena_alloc(a, out->n_markets * sizeof *out->markets);
  for (size_t i = 0; i < out->n_markets; i++) {
    Gm__MarketInfo *mi = gm__arena_alloc(a, sizeof *mi);
    gm__market_info__init(mi);
    const gm_method *methods = gm__core_methods;
    size_t n = GM__CORE_METHODS;
    if (i == 0) {
      mi->name = "gm";
      mi->version = GM_VERSION;
      mi->description = "the broker's own methods";
    } else {
      const gm_plugin *p = b->markets[i - 1]->plugin;
      mi->name = (char *)p->name;
      mi->version = (char *)(p->version ? p->version : "");
      mi->description = (char *)(p->description ? p->description : "");
      methods = p->methods;
      n = p->n_methods;
    }
    mi->n_methods = n;
    mi->methods = gm__arena_alloc(a, n * sizeof *mi->methods);
    for (size_t j = 0; j < n; j++) mi->methods[j] = method_info(a, &methods[j]);
    out->markets[i] = mi;
  }
  *reply = &out->base;
  return GM_OK;
}

static Gm__MarketStats *market_stats(gm__arena *a, const char *name,
                                     const gm__stats *s) {
  Gm__MarketStats *ms = gm__arena_alloc(a, sizeof *ms);
  gm__market_stats__init(ms);
  ms->market = (char *)name;
  ms->requests = atomic_load(&s->requests);
  ms->errors = atomic_load(&s->errors);
  /* Percentiles are power-of-two bucket bounds: never above the max seen. */
  ms->latency_max_us = atomic_load(&s->latency_max_us);
  uint64_t p50 = gm__stats_percentile_us(s, 50);
  uint64_t p99 = gm__stats_percentile_us(s, 99);
  ms->latency_p50_us = p50 < ms->latency_max_us ? p50 : ms->latency_max_us;
  ms->latency_p99_us = p99 < ms->latency_max_us ? p99 : ms->latency_max_us;
  return ms;
}

static gm_status core_stats(gm_call *call, const ProtobufCMessage *req,
                            ProtobufCMessage **reply) {
  (void)req;
  gm__broker *b = call->broker;
  Gm__StatsReply *out = gm__arena_alloc(call->arena, sizeof *out);
  gm__stats_reply__init(out);
  out->uptime_ms = gm__clock_now_ms() - b->started_ms;
  out->bad_frames = atomic_load(&b->bad_frames);
  out->n_markets = b->n_markets + 1;
  out->markets =
      gm__arena_alloc(call->arena, out->n_markets * sizeof *out->markets);
  out->markets[0] = market_stats(call->arena, "gm", &b->core_stats);
  for (size_t i = 0; i < b->n_markets; i++)
    out->markets[i + 1] =
        market_stats(call->arena, b->markets[i]->name, &b->markets[i]->stats);
  for (size_t i = 0; i < out->n_markets; i++) {
    out->requests += out->markets[i]->requests;
    out->errors += out->markets[i]->errors;
  }
  out->settled = b->settler ? gm__settler_settled(b->settler) : 0;
  out->broker = b->name;
  out->dev_mode = b->dev_mode != 0;
  *reply = &out->base;
  return GM_OK;
}

static gm_status core_whoami(gm_call *call, const ProtobufCMessage *req,
                             ProtobufCMessage **reply) {
  (void)req;
  Gm__WhoamiReply *out = gm__arena_alloc(call->arena, sizeof *out);
  gm__whoami_reply__init(out);
  Gm__Participant *p = NULL;
  if (gm__participant_get(call, call->participant, &p) != GM_OK) {
    if (call->status != GM_NOT_FOUND) return call->status;
    /* Unregistered callers exist only in development mode. */
    call->status = GM_OK;
    call->message = NULL;
    p = gm__arena_alloc(call->arena, sizeof *p);
    gm__participant__init(p);
    p->id = (char *)call->participant;
    p->name = call->broker->dev_mode
                  ? "(unregistered, development mode: every role)"
                  : "(bootstrap admin from [security] admin_keys)";
    if (!call->broker->dev_mode && call->roles && *call->roles) {
      p->n_roles = 1;
      p->roles = gm__arena_alloc(call->arena, sizeof *p->roles);
      p->roles[0] = (char *)call->roles;
    }
  }
  out->participant = p;
  out->dev_mode = call->broker->dev_mode != 0;
  *reply = &out->base;
  return GM_OK;
}

static gm_status core_register(gm_call *call, const ProtobufCMessage *req,
                               ProtobufCMessage **reply) {
  const Gm__RegisterRequest *in = (const Gm__RegisterRequest *)req;
  if (!in->participant)
    return gm__call_fail(
        call, GM_INVALID_ARGUMENT,
        "register needs a participant (id, roles, public_key)");
  if (!call->broker->dev_mode &&
      (!in->participant->public_key || !*in->participant->public_key))
    return gm__call_fail(call, GM_INVALID_ARGUMENT,
                         "this broker requires CURVE keys: give the "
                         "participant's public_key (gm keygen makes one)");
  gm_status st = gm__participant_register(call, in->participant);
  if (st != GM_OK) return st;
  Gm__RegisterReply *out = gm__arena_alloc(call->arena, sizeof *out);
  gm__register_reply__init(out);
  Gm__Participant *p = NULL;
  st = gm__participant_get(call, in->participant->id, &p);
  if (st != GM_OK) return st;
  out->participant = p;
  gm__log(GM_LOG_INFO, "auth", "%s registered participant %s",
          call->participant, p->id);
  *reply = &out->base;
  return GM_OK;
}

static gm_status core_clock_set(gm_call *call, const ProtobufCMessage *req,
                                ProtobufCMessage **reply) {
  const Gm__ClockSetRequest *in = (const Gm__ClockSetRequest *)req;
  if (!gm__clock_is_manual())
    return gm__call_fail(call, GM_FAILED_PRECONDITION,
                         "the clock is real time; set [testing] clock = manual "
                         "in the config to set it");
  if (in->time_ms <= 0)
    return gm__call_fail(call, GM_INVALID_ARGUMENT,
                         "time_ms must be milliseconds since 1970, > 0");
  gm__clock_set_manual(in->time_ms);
  Gm__ClockReply *out = gm__arena_alloc(call->arena, sizeof *out);
  gm__clock_reply__init(out);
  out->time_ms = gm__clock_now_ms();
  *reply = &out->base;
  return GM_OK;
}

/* Handlers of the core methods, by their index in gm__core_methods. */
static const gm_handler_fn core_handlers[GM__CORE_METHODS] = {
    [GM__CORE_PING] = core_ping,
    [GM__CORE_MARKETS] = core_markets,
    [GM__CORE_STATS] = core_stats,
    [GM__CORE_WHOAMI] = core_whoami,
    [GM__CORE_REGISTER] = core_register,
    [GM__CORE_CLOCK_SET] = core_clock_set,
    [GM__CORE_DEAD_LETTERS] = gm__dead_letters_list,
    [GM__CORE_REPLAY] = gm__dead_letters_replay,
};

/* ---- request dispatch (worker threads) ---- */

static void *arena_alloc(void *data, size_t size) {
  return gm__arena_alloc(data, size);
}
static void arena_free(void *data, void *p) {
  (void)data;
  (void)p;
}

static gm_market *find_market(gm__broker *b, const char *name) {
  for (size_t i = 0; i < b->n_markets; i++)
    if (strcmp(b->markets[i]->name, name) == 0) return b->markets[i];
  return NULL;
}

static const char *list_markets(gm__broker *b, gm__arena *a) {
  char *s = "gm";
  for (size_t i = 0; i < b->n_markets; i++)
    s = gm__arena_sprintf(a, "%s, %s", s, b->markets[i]->name);
  return s;
}

static const char *list_methods(const gm_method *m, size_t n, gm__arena *a) {
  char *s = "";
  for (size_t i = 0; i < n; i++)
    s = gm__arena_sprintf(a, "%s%s%s", s, i ? ", " : "", m[i].name);
  return s;
}

/* 1-128 printable characters but ':', which separates the step number in
   the key's Redis record ("K" step 1 and "K:1" step 0 must not meet). */
static int idem_key_valid(const char *k) {
  size_t n = strlen(k);
  if (n == 0 || n > MAX_IDEM_KEY) return 0;
  for (const char *p = k; *p; p++)
    if (*p < '!' || *p > '~' || *p == ':') return 0;
  return 1;
}

/* Splits the broker's auth frame "participant\0roles\0key" (key empty for
   a bootstrap admin key); returns the key. */
static const char *read_auth(gm_call *call, zmq_msg_t *auth) {
  size_t n = zmq_msg_size(auth);
  const char *d = zmq_msg_data(auth);
  const char *nul = n ? memchr(d, '\0', n) : NULL;
  if (!nul) return "";
  call->participant = gm__arena_strndup(call->arena, d, (size_t)(nul - d));
  const char *r = nul + 1, *end = d + n;
  const char *nul2 = memchr(r, '\0', (size_t)(end - r));
  if (!nul2) nul2 = end;
  call->roles = gm__arena_strndup(call->arena, r, (size_t)(nul2 - r));
  return nul2 < end ? gm__arena_strndup(call->arena, nul2 + 1,
                                        (size_t)(end - nul2 - 1))
                    : "";
}

/*
 * CURVE mode: the key a connection authenticated with must still belong to
 * the participant on every request, and the roles are the registry's now,
 * not those of the handshake.  A re-registration with a new key (the old
 * one revoked) or a role change shows within a second: each worker keeps
 * what it read that long, so a stream of requests costs no Redis round trip
 * each.  Returns 0 when the call may go on (call->roles updated).
 */
static int curve_recheck(worker *w, gm_call *call, const char *key) {
  uint64_t h = 1469598103934665603ull;
  for (const char *c = key; *c; c++) h = (h ^ (uint8_t)*c) * 1099511628211ull;
  key_entry *e = &w->keys[h % ROLE_CACHE];
  uint64_t now = gm__clock_mono_us();
  const char *owner, *roles;
  if (e->until_us > now && strcmp(e->key, key) == 0) {
    owner = e->participant;
    roles = e->roles;
  } else {
    char *o = NULL, *r = NULL;
    if (gm__key_owner(call, key, &o, &r) != GM_OK) return -1;
    owner = o ? o : "";
    roles = r ? r : "";
    if (strlen(key) < sizeof e->key && strlen(owner) < sizeof e->participant &&
        strlen(roles) < sizeof e->roles) {
      snprintf(e->key, sizeof e->key, "%s", key);
      snprintf(e->participant, sizeof e->participant, "%s", owner);
      snprintf(e->roles, sizeof e->roles, "%s", roles);
      e->until_us = now + ROLE_CACHE_US;
    }
  }
  if (strcmp(owner, call->participant) != 0) {
    gm__call_fail(call, GM_PERMISSION_DENIED,
                  "the key this connection authenticated with is no longer "
                  "registered to participant %s (revoked or replaced); "
                  "reconnect with the participant's current key",
                  call->participant);
    return -1;
  }
  call->roles = gm__arena_strdup(call->arena, roles);
  return 0;
}

/* In development mode: the envelope names the caller; roles from the registry.
 */
static void dev_identity(gm_call *call, const Gm__Request *req) {
  const char *who = req->dev_participant && *req->dev_participant
                        ? req->dev_participant
                        : "dev";
  call->participant = who;
  call->roles = NULL; /* looked up only when a method needs them */
}

/*
 * Development mode: the caller's roles from the registry, or every role.
 * Each worker keeps what it read for a second, so a stream of requests does
 * not pay a Redis round trip each; a role change shows within a second.
 */
static void dev_roles(worker *w, gm_call *call) {
  const char *who = call->participant;
  uint64_t h = 1469598103934665603ull;
  for (const char *c = who; *c; c++) h = (h ^ (uint8_t)*c) * 1099511628211ull;
  role_entry *e = &w->roles[h % ROLE_CACHE];
  uint64_t now = gm__clock_mono_us();
  if (e->until_us > now && strcmp(e->participant, who) == 0) {
    call->roles = gm__arena_strdup(call->arena, e->roles);
    return;
  }
  Gm__Participant *p = NULL;
  gm_status st = gm__participant_get(call, who, &p);
  if (st == GM_OK) {
    char *roles = "";
    for (size_t i = 0; i < p->n_roles; i++)
      roles = gm__arena_sprintf(call->arena, "%s%s%s", roles, i ? "," : "",
                                p->roles[i]);
    call->roles = roles;
  } else {
    call->roles = GM_ALL_ROLES;
  }
  call->status = GM_OK;
  call->message = NULL;
  if ((st == GM_OK || st == GM_NOT_FOUND) &&
      strlen(who) < sizeof e->participant &&
      strlen(call->roles) < sizeof e->roles) {
    snprintf(e->participant, sizeof e->participant, "%s", who);
    snprintf(e->roles, sizeof e->roles, "%s", call->roles);
    e->until_us = now + ROLE_CACHE_US;
  }
}

/* Decodes, authorizes and runs one request; fills *reply_out. */
static void dispatch(worker *w, gm_call *call, zmq_msg_t *auth,
                     zmq_msg_t *payload, Gm__Reply *out, gm__stats **stats) {
  gm__broker *b = w->b;
  gm__arena *a = call->arena;
  ProtobufCAllocator alloc = {arena_alloc, arena_free, a};
  size_t size = zmq_msg_size(payload);
  *stats = &b->core_stats;
  if ((long)size > b->max_msg) {
    gm__call_fail(call, GM_RESOURCE_EXHAUSTED,
                  "request of %zu bytes is larger than the broker's limit of "
                  "%ld bytes ([broker] max_message_bytes)",
                  size, b->max_msg);
    atomic_fetch_add(&b->bad_frames, 1);
    return;
  }
  Gm__Request *req = gm__request__unpack(&alloc, size, zmq_msg_data(payload));
  if (!req) {
    gm__call_fail(call, GM_INVALID_ARGUMENT,
                  "the frame (%zu bytes) is not a gm.Request protobuf: send "
                  "one packed gm.Request per frame (docs/protocol.md)",
                  size);
    atomic_fetch_add(&b->bad_frames, 1);
    gm__log(GM_LOG_WARN, "broker", "undecodable frame of %zu bytes", size);
    return;
  }
  out->request_id = req->request_id;
  if (req->version != PROTOCOL_VERSION) {
    gm__call_fail(call, GM_INVALID_ARGUMENT,
                  "protocol version %u is not supported: set Request.version "
                  "= %d",
                  req->version, PROTOCOL_VERSION);
    return;
  }
  const char *key = "";
  if (b->dev_mode)
    dev_identity(call, req);
  else
    key = read_auth(call, auth);
  if (!call->participant || !*call->participant) {
    gm__call_fail(call, GM_PERMISSION_DENIED,
                  "no authenticated participant: connect with a registered "
                  "CURVE key");
    return;
  }
  if (*key && curve_recheck(w, call, key) != 0) return;

  const gm_method *m = NULL;
  const gm_method *methods = gm__core_methods;
  size_t n_methods = GM__CORE_METHODS;
  gm_market *market = NULL;
  if (strcmp(req->market, "gm") != 0) {
    market = find_market(b, req->market);
    if (!market) {
      gm__call_fail(call, GM_NOT_FOUND,
                    "no market '%s' on this broker; markets: %s (gm markets "
                    "lists them)",
                    req->market, list_markets(b, a));
      return;
    }
    methods = market->plugin->methods;
    n_methods = market->plugin->n_methods;
    *stats = &market->stats;
  }
  for (size_t i = 0; i < n_methods && !m; i++)
    if (strcmp(methods[i].name, req->method) == 0) m = &methods[i];
  if (!m) {
    gm__call_fail(call, GM_UNIMPLEMENTED,
                  "market '%s' has no method '%s'; its methods: %s",
                  req->market, req->method,
                  list_methods(methods, n_methods, a));
    return;
  }
  call->market = market;
  if (b->dev_mode && (market || (m->roles && *m->roles))) dev_roles(w, call);
  if (m->roles && *m->roles) {
    int ok = 0;
    const char *p = m->roles;
    while (*p && !ok) {
      const char *end = strchr(p, ',');
      size_t len = end ? (size_t)(end - p) : strlen(p);
      ok = gm__call_has_role(call, gm__arena_strndup(a, p, len));
      p = end ? end + 1 : p + len;
    }
    if (!ok) {
      gm__call_fail(call, GM_PERMISSION_DENIED,
                    "%s %s needs role %s; participant %s has roles '%s'",
                    req->market, req->method, m->roles, call->participant,
                    call->roles ? call->roles : "");
      return;
    }
  }
  if (m->flags & GM_METHOD_MUTATING) {
    if (!idem_key_valid(req->idempotency_key)) {
      gm__call_fail(call, GM_INVALID_ARGUMENT,
                    "%s %s changes state and needs an idempotency_key of 1-%d "
                    "printable characters other than ':'; reuse the same key "
                    "when you retry",
                    req->market, req->method, MAX_IDEM_KEY);
      return;
    }
    call->idem_key = req->idempotency_key;
  }
  ProtobufCMessage *body = protobuf_c_message_unpack(
      m->request, &alloc, req->body.len, req->body.data);
  if (!body) {
    gm__call_fail(call, GM_INVALID_ARGUMENT,
                  "the body of %s %s is not a valid %s", req->market,
                  req->method, m->request->name);
    return;
  }
  ProtobufCMessage *reply = NULL;
  gm_handler_fn handle =
      market ? m->handle : core_handlers[m - gm__core_methods];
  gm_status st = handle(call, body, &reply);
  if (st != GM_OK) {
    if (call->status == GM_OK || call->status != st) {
      /* The handler returned a status without saying why. */
      gm__call_fail(call, st, "%s %s failed (%s)", req->market, req->method,
                    call->message ? call->message : "no reason given");
    }
    return;
  }
  if (!reply || reply->descriptor != m->reply) {
    gm__log(GM_LOG_ERROR, req->market,
            "method %s returned %s instead of a %s: plugin bug", req->method,
            reply ? reply->descriptor->name : "no reply", m->reply->name);
    gm__call_fail(call, GM_INTERNAL,
                  "%s %s returned a malformed reply; see the gmd log",
                  req->market, req->method);
    return;
  }
  call->status = GM_OK;
  out->body.len = protobuf_c_message_get_packed_size(reply);
  out->body.data = gm__arena_alloc(a, out->body.len ? out->body.len : 1);
  protobuf_c_message_pack(reply, out->body.data);
}

/*
 * Receives one multipart message (flags apply to its first frame: with
 * ZMQ_DONTWAIT, *n = 0 when none is waiting); -1 when the context is
 * terminating.
 */
static int recv_frames(void *sock, zmq_msg_t *frames, int max, int *n,
                       int flags) {
  int more = 1, got = 0, total = 0;
  while (more) {
    zmq_msg_t m;
    zmq_msg_init(&m);
    if (zmq_msg_recv(&m, sock, total ? 0 : flags) < 0) {
      int e = zmq_errno();
      zmq_msg_close(&m);
      for (int i = 0; i < got; i++) zmq_msg_close(&frames[i]);
      if ((e == EINTR || e == EAGAIN) && got == 0) {
        *n = 0;
        return 0;
      }
      return -1;
    }
    more = zmq_msg_more(&m);
    total++;
    if (got < max)
      frames[got++] = m;
    else
      zmq_msg_close(&m);
  }
  *n = total > max ? -got : got;
  return 0;
}

/* A request's whole life, on its task's fiber: decode, run, reply. */
static void task_run(void *arg) {
  task *t = arg;
  worker *w = t->w;
  gm__broker *b = w->b;
  uint64_t t0 = gm__clock_mono_us();
  gm_call call = {.arena = t->arena,
                  .participant = "",
                  .roles = "",
                  .idem_key = "",
                  .redis = w->redis,
                  .reader = w->reader,
                  .pub = w->pub,
                  .broker = b};
  Gm__Reply out = GM__REPLY__INIT;
  out.version = PROTOCOL_VERSION;
  gm__stats *stats = NULL;
  dispatch(w, &call, &t->f[0], &t->f[t->n - 1], &out, &stats);
  out.status = (Gm__Status)call.status;
  if (call.status != GM_OK) {
    out.message = (char *)(call.message ? call.message : "");
    out.body.len = 0;
    out.body.data = NULL;
  }
  size_t len = gm__reply__get_packed_size(&out);
  uint8_t *buf = gm__arena_alloc(t->arena, len ? len : 1);
  gm__reply__pack(&out, buf);
  for (int i = 1; i < t->n - 1; i++)
    zmq_msg_send(&t->f[i], w->sock, ZMQ_SNDMORE);
  zmq_send(w->sock, buf, len, 0);
  zmq_msg_close(&t->f[0]);
  zmq_msg_close(&t->f[t->n - 1]);
  gm__stats_add(stats, call.status, gm__clock_mono_us() - t0);
  t->done = 1;
}

/* Back to the free list once its fiber has finished. */
static void task_release(worker *w, task *t) {
  gm__arena_reset(t->arena);
  t->done = 0;
  t->next_free = w->free_tasks;
  w->free_tasks = t;
  w->active--;
}

/*
 * A worker runs up to [broker] pipeline requests at once, each on a fiber of
 * its own.  A request that needs Redis appends its command to the worker's
 * connection and waits; the worker writes what was appended, and whenever
 * replies arrive it resumes their requests, oldest first.  So requests that
 * arrive while Redis works on earlier ones are decoded and queued behind
 * them (one write, and one read, carry many requests), and none waits for
 * more than its own replies.  Redis still runs each script atomically, in
 * the order the requests appended them.
 */
static void *worker_run(void *arg) {
  worker *w = arg;
  gm__broker *b = w->b;
  for (;;) {
    /* Requests only while a task is free; replies while any are due. */
    int fd = gm__redis_waiting(w->redis) ? gm__redis_fd(w->redis) : -1;
    zmq_pollitem_t items[2] = {
        {w->free_tasks ? w->sock : NULL, -1, ZMQ_POLLIN, 0},
        {NULL, fd, ZMQ_POLLIN, 0}};
    /* While replies are due, wake each second to notice a Redis that
       stopped answering (REDIS_STALL_US, as the blocking timeout was). */
    if (zmq_poll(items, 2, fd >= 0 ? 1000 : -1) < 0) {
      if (zmq_errno() == EINTR) continue;
      break; /* ETERM: the broker is stopping */
    }
    gm__redis_expire(w->redis, REDIS_STALL_US);
    int stopping = 0;
    if (items[0].revents & ZMQ_POLLIN) {
      /* At most a pipeline's worth per turn: requests that need no Redis
         free their task at once, and a steady stream of them must not keep
         replies that have arrived from being read. */
      for (long admitted = 0; w->free_tasks && admitted < b->pipeline;
           admitted++) {
        task *t = w->free_tasks;
        int n;
        if (recv_frames(w->sock, t->f, MAX_PREFIX_FRAMES + 2, &n,
                        ZMQ_DONTWAIT) < 0) {
          stopping = 1;
          break;
        }
        if (n == 0) break;
        if (n < 0) { /* more frames than any client sends: drop */
          for (int i = 0; i < -n; i++) zmq_msg_close(&t->f[i]);
          atomic_fetch_add(&b->bad_frames, 1);
          continue;
        }
        w->free_tasks = t->next_free;
        w->active++;
        t->n = n;
        if (gm__fiber_start(t->fiber, task_run, t)) task_release(w, t);
      }
    }
    if (items[1].revents & (ZMQ_POLLIN | ZMQ_POLLERR))
      gm__redis_receive(w->redis);
    gm__redis_send(w->redis);
    for (long i = 0; i < b->pipeline && w->active; i++)
      if (w->tasks[i].done) task_release(w, &w->tasks[i]);
    if (stopping) break;
  }
  /* The context is terminating: requests still waiting get their Redis
     replies first, so no fiber is left suspended on its stack. */
  while (gm__redis_waiting(w->redis)) gm__redis_flush(w->redis);
  int linger = 0;
  zmq_setsockopt(w->sock, ZMQ_LINGER, &linger, sizeof linger);
  zmq_setsockopt(w->pub, ZMQ_LINGER, &linger, sizeof linger);
  zmq_close(w->sock);
  zmq_close(w->pub);
  return NULL;
}

/* ---- construction ---- */

static int cmp_str(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The plugin files to load: [plugins] load names, or every gm_*.so in dir. */
static char **plugin_paths(const gm__config *cfg, const char *dir, size_t *n) {
  const char *load = gm__config_get(cfg, "plugins", "load", "");
  char **paths = NULL;
  *n = 0;
  if (*load) {
    char *copy = strdup(load), *save = NULL;
    for (char *tok = strtok_r(copy, ", ", &save); tok;
         tok = strtok_r(NULL, ", ", &save)) {
      paths = realloc(paths, (*n + 1) * sizeof *paths);
      if (asprintf(&paths[*n], "%s/gm_%s.so", dir, tok) < 0) abort();
      (*n)++;
    }
    free(copy);
    return paths;
  }
  DIR *d = opendir(dir);
  if (!d) return NULL;
  struct dirent *e;
  while ((e = readdir(d))) {
    size_t len = strlen(e->d_name);
    if (len > 6 && strncmp(e->d_name, "gm_", 3) == 0 &&
        strcmp(e->d_name + len - 3, ".so") == 0) {
      paths = realloc(paths, (*n + 1) * sizeof *paths);
      if (asprintf(&paths[*n], "%s/%s", dir, e->d_name) < 0) abort();
      (*n)++;
    }
  }
  closedir(d);
  if (*n) qsort(paths, *n, sizeof *paths, cmp_str);
  return paths;
}

/* Reads "secret = <z85>" from gm keygen's file into out (the one config
   reader: the key file is an INI file without sections). */
static int read_secret_key(const char *path, char out[41], char *err,
                           size_t errlen) {
  gm__config *keys = gm__config_load(path, err, errlen);
  if (!keys) return -1;
  const char *secret = gm__config_get(keys, "", "secret", NULL);
  int ok = secret && gm__curve_key_valid(secret);
  if (ok)
    memcpy(out, secret, 41);
  else
    snprintf(err, errlen,
             "%s has no line 'secret = <40-character Z85 key>' (make one with "
             "gm keygen --out %s)",
             path, path);
  gm__config_destroy(&keys);
  return ok ? 0 : -1;
}

static gm_settle_fn settle_lookup(void *arg, const char *market,
                                  gm_market **m) {
  gm__broker *b = arg;
  gm_market *found = find_market(b, market);
  if (m) *m = found;
  return found ? found->settle : NULL;
}

static int market_loaded(const gm__host *h, const char *name) {
  return find_market(h->owner, name) != NULL;
}

gm__broker *gm__broker_new(const gm__config *cfg, char *err, size_t errlen) {
  gm__broker *b = calloc(1, sizeof *b);
  if (!b) abort();
  b->cfg = cfg;
  b->started_ms = gm__clock_now_ms();
  char host[64] = "localhost";
  gethostname(host, sizeof host - 1);
  b->endpoint =
      strdup(gm__config_get(cfg, "broker", "endpoint", "tcp://127.0.0.1:7470"));
  /* The name is the settler's consumer name too: it must stay the same
     across restarts, so a broker killed mid-batch takes its own pending
     entries back at once instead of after the stale-claim delay.  Two
     brokers on one host cannot share an endpoint, so host + endpoint is
     unique. */
  snprintf(b->name, sizeof b->name, "%s",
           gm__config_get(cfg, "broker", "name", ""));
  if (!b->name[0])
    snprintf(b->name, sizeof b->name, "%s/%s", host, b->endpoint);
  b->feed =
      strdup(gm__config_get(cfg, "broker", "feed", "tcp://127.0.0.1:7471"));
  /* One worker per core by default: more threads than cores only add
     wake-ups (measured: ping at 16 in flight, 4 workers 0.41 of a plain
     ZeroMQ echo, 2 workers 0.51, on 2 cores). */
  long cores = sysconf(_SC_NPROCESSORS_ONLN);
  if (cores < 2) cores = 2;
  if (cores > 16) cores = 16;
  if (gm__config_int(cfg, "broker", "workers", cores, 1, 256, &b->n_workers,
                     err, errlen) ||
      gm__config_int(cfg, "broker", "pipeline", 64, 1, 1024, &b->pipeline, err,
                     errlen) ||
      gm__config_int(cfg, "broker", "max_message_bytes", 1 << 20, 256, 64 << 20,
                     &b->max_msg, err, errlen) ||
      gm__config_bool(cfg, "ledger", "settle", 1, &b->settle_on, err, errlen) ||
      gm__config_int(cfg, "ledger", "batch", 512, 1, 100000, &b->settle_batch,
                     err, errlen) ||
      gm__config_int(cfg, "ledger", "linger_ms", 5, 0, 1000, &b->settle_linger,
                     err, errlen))
    goto fail;
  const char *level = gm__config_get(cfg, "log", "level", "info");
  if (gm__log_set_level(level) != 0) {
    snprintf(err, errlen, "[log] level = %s: use debug, info, warn or error",
             level);
    goto fail;
  }
  const char *mode = gm__config_get(cfg, "security", "mode", "");
  if (strcmp(mode, "dev") == 0) {
    b->dev_mode = 1;
  } else if (strcmp(mode, "curve") == 0) {
    char *path = gm__config_path(cfg, "security", "secret_key_file", NULL);
    int rc = path ? read_secret_key(path, b->server_secret, err, errlen) : -1;
    if (!path)
      snprintf(err, errlen,
               "[security] mode = curve needs secret_key_file (gm keygen "
               "--out FILE makes one)");
    free(path);
    if (rc) goto fail;
  } else {
    snprintf(err, errlen,
             "[security] mode must be 'curve' (with secret_key_file) or 'dev' "
             "(no authentication: for development only)");
    goto fail;
  }
  const char *clock = gm__config_get(cfg, "testing", "clock", "real");
  if (strcmp(clock, "manual") == 0)
    gm__clock_set_manual(gm__clock_now_ms());
  else if (strcmp(clock, "real") != 0) {
    snprintf(err, errlen, "[testing] clock = %s: use real or manual", clock);
    goto fail;
  }

  b->redis_unix = gm__config_path(cfg, "redis", "unix", NULL);
  b->redis_host = strdup(gm__config_get(cfg, "redis", "host", "127.0.0.1"));
  long port;
  if (gm__config_int(cfg, "redis", "port", 6379, 1, 65535, &port, err, errlen))
    goto fail;
  b->raddr = (gm__redis_addr){b->redis_unix, b->redis_host, (int)port};
  b->ledger_path = gm__config_path(cfg, "ledger", "path", "ledger.sqlite");
  long ttl;
  if (gm__config_int(cfg, "redis", "idempotency_ttl", 86400, 60, 30 * 86400,
                     &ttl, err, errlen))
    goto fail;
  gm__scripts_set_idem_ttl(ttl);

  b->host.config = cfg;
  b->host.broker_name = b->name;
  b->host.market_loaded = market_loaded;
  b->host.owner = b;
  b->host.redis = gm__redis_connect(&b->raddr, err, errlen);
  if (!b->host.redis) goto fail;
  b->host.ledger = gm__ledger_open(b->ledger_path, 0, err, errlen);
  if (!b->host.ledger) goto fail;
  b->timers = b->host.timers = gm__timers_new();

  char *dir = gm__config_path(cfg, "plugins", "dir", NULL);
  if (!dir) dir = strdup(GM_DEFAULT_PLUGIN_DIR);
  size_t n = 0;
  char **paths = plugin_paths(cfg, dir, &n);
  if (n == 0) gm__log(GM_LOG_WARN, "loader", "no plugins found in %s", dir);
  for (size_t i = 0; i < n; i++) {
    char why[1024];
    gm_market *m = gm__plugin_load(paths[i], &b->host, why, sizeof why);
    if (m) {
      b->markets = realloc(b->markets, (b->n_markets + 1) * sizeof *b->markets);
      b->markets[b->n_markets++] = m;
    }
    free(paths[i]);
  }
  free(paths);
  free(dir);
  /* Migrations are done; the settler owns the writer connection from now. */
  gm__ledger_close(&b->host.ledger);
  return b;
fail:
  gm__broker_destroy(&b);
  return NULL;
}

size_t gm__broker_markets(const gm__broker *b) {
  return b->n_markets;
}

void gm__broker_stop(gm__broker *b) {
  b->stop = 1;
}

/* Forwards one message, if one is waiting, from `from` to `to`; 1 if so. */
static int forward(void *from, void *to) {
  int more = 1, first = 1;
  while (more) {
    zmq_msg_t m;
    zmq_msg_init(&m);
    if (zmq_msg_recv(&m, from, first ? ZMQ_DONTWAIT : 0) < 0) {
      zmq_msg_close(&m);
      return 0;
    }
    first = 0;
    more = zmq_msg_more(&m);
    zmq_msg_send(&m, to, more ? ZMQ_SNDMORE : 0);
    zmq_msg_close(&m);
  }
  return 1;
}

/*
 * Client -> worker, if a request is waiting: adds the auth frame in front of
 * the client's frames.  1 if a message was taken.
 */
static int forward_request(gm__broker *b, void *front, void *back) {
  zmq_msg_t f[MAX_PREFIX_FRAMES + 1];
  int n;
  if (recv_frames(front, f, MAX_PREFIX_FRAMES + 1, &n, ZMQ_DONTWAIT) < 0 ||
      n == 0)
    return 0;
  if (n < 0 || n < 2) { /* too many frames, or no payload after the id */
    for (int i = 0; i < (n < 0 ? -n : n); i++) zmq_msg_close(&f[i]);
    atomic_fetch_add(&b->bad_frames, 1);
    gm__log(GM_LOG_WARN, "broker", "dropped a message with %s frames",
            n < 0 ? "too many" : "no payload");
    return 1;
  }
  char auth[512];
  size_t alen = 0;
  if (!b->dev_mode) {
    const char *user = zmq_msg_gets(&f[n - 1], "User-Id");
    const char *roles = zmq_msg_gets(&f[n - 1], "X-Roles");
    const char *key = zmq_msg_gets(&f[n - 1], "X-Key");
    int w = snprintf(auth, sizeof auth, "%s%c%s%c%s", user ? user : "", '\0',
                     roles ? roles : "", '\0', key ? key : "");
    alen = w > 0 && (size_t)w < sizeof auth ? (size_t)w : 0;
  }
  zmq_send(back, auth, alen, ZMQ_SNDMORE);
  for (int i = 0; i < n; i++) {
    zmq_msg_send(&f[i], back, i + 1 < n ? ZMQ_SNDMORE : 0);
    zmq_msg_close(&f[i]);
  }
  return 1;
}

/* Worker/timer event -> feed, stamped with the broker's sequence number;
   1 if an event was waiting. */
static int forward_event(gm__broker *b, void *pull, void *pub) {
  zmq_msg_t f[2];
  int n;
  if (recv_frames(pull, f, 2, &n, ZMQ_DONTWAIT) < 0 || n == 0) return 0;
  if (n != 2) {
    for (int i = 0; i < (n < 0 ? -n : n); i++) zmq_msg_close(&f[i]);
    return 1;
  }
  /* Appending field 7 (varint) to a packed Event sets its seq. */
  uint8_t tail[11];
  size_t t = 0;
  uint64_t seq = ++b->event_seq;
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
  zmq_msg_send(&f[0], pub, ZMQ_SNDMORE);
  zmq_msg_send(&body, pub, 0);
  zmq_msg_close(&f[0]);
  zmq_msg_close(&f[1]);
  zmq_msg_close(&body);
  return 1;
}

/*
 * The publisher thread owns the feed: events from workers and timers reach
 * the PUB here, off the request path of the main thread.
 */
static void *publisher_run(void *arg) {
  gm__broker *b = arg;
  for (;;) {
    zmq_pollitem_t item = {b->pull, 0, ZMQ_POLLIN, 0};
    if (zmq_poll(&item, 1, -1) < 0) {
      if (zmq_errno() == EINTR) continue;
      break; /* ETERM: the broker is stopping */
    }
    for (int i = 0; i < BURST; i++)
      if (!forward_event(b, b->pull, b->pub)) break;
  }
  int linger = 0;
  zmq_setsockopt(b->pull, ZMQ_LINGER, &linger, sizeof linger);
  zmq_setsockopt(b->pub, ZMQ_LINGER, &linger, sizeof linger);
  zmq_close(b->pull);
  zmq_close(b->pub);
  b->pull = b->pub = NULL;
  return NULL;
}

static int worker_start(gm__broker *b, worker *w, char *err, size_t errlen) {
  w->b = b;
  w->redis = gm__redis_connect(&b->raddr, err, errlen);
  if (!w->redis) return -1;
  gm__redis_set_pipelined(w->redis, 1);
  w->tasks = calloc((size_t)b->pipeline, sizeof *w->tasks);
  if (!w->tasks) abort();
  for (long i = b->pipeline - 1; i >= 0; i--) {
    task *t = &w->tasks[i];
    t->w = w;
    t->arena = gm__arena_new();
    /* Handlers run SQLite queries and protobuf on this stack; pages are
       only backed once touched. */
    t->fiber = gm__fiber_new(FIBER_STACK);
    if (!t->fiber) {
      snprintf(err, errlen, "no memory for %ld request stacks", b->pipeline);
      return -1;
    }
    t->next_free = w->free_tasks;
    w->free_tasks = t;
  }
  w->reader = gm__ledger_open(b->ledger_path, 1, err, errlen);
  if (!w->reader) return -1;
  w->sock = zmq_socket(b->zctx, ZMQ_DEALER);
  w->pub = zmq_socket(b->zctx, ZMQ_PUSH);
  if (zmq_connect(w->sock, WORKERS_ENDPOINT) ||
      zmq_connect(w->pub, EVENTS_ENDPOINT)) {
    snprintf(err, errlen, "worker sockets: %s", zmq_strerror(zmq_errno()));
    return -1;
  }
  if (pthread_create(&w->thread, NULL, worker_run, w) != 0) {
    snprintf(err, errlen, "cannot start a worker thread");
    return -1;
  }
  char name[16];
  snprintf(name, sizeof name, "gmd-worker-%d", (int)((w - b->workers) % 1000));
  pthread_setname_np(w->thread, name);
  w->started = 1;
  return 0;
}

int gm__broker_run(gm__broker *b, char *err, size_t errlen) {
  int rc = -1;
  /* pull and pub pass to the publisher thread once it runs. */
  void *front = NULL, *back = NULL, *pull = NULL, *pub = NULL;
  b->zctx = zmq_ctx_new();
  if (!b->dev_mode) {
    b->auth = gm__auth_start(
        b->zctx, &b->raddr,
        gm__config_get(b->cfg, "security", "admin_keys", ""), err, errlen);
    if (!b->auth) goto done;
  }
  front = zmq_socket(b->zctx, ZMQ_ROUTER);
  back = zmq_socket(b->zctx, ZMQ_DEALER);
  pull = zmq_socket(b->zctx, ZMQ_PULL);
  pub = zmq_socket(b->zctx, ZMQ_PUB);
  /* A hard cap well above the reply limit: a bigger frame drops the peer,
     a merely large one gets a RESOURCE_EXHAUSTED reply. */
  int64_t hard = (int64_t)b->max_msg * 4 + 4096;
  zmq_setsockopt(front, ZMQ_MAXMSGSIZE, &hard, sizeof hard);
  if (!b->dev_mode) {
    int one = 1;
    zmq_setsockopt(front, ZMQ_CURVE_SERVER, &one, sizeof one);
    zmq_setsockopt(front, ZMQ_CURVE_SECRETKEY, b->server_secret, 40);
    zmq_setsockopt(front, ZMQ_ZAP_DOMAIN, "greenmarket", 11);
    zmq_setsockopt(pub, ZMQ_CURVE_SERVER, &one, sizeof one);
    zmq_setsockopt(pub, ZMQ_CURVE_SECRETKEY, b->server_secret, 40);
    zmq_setsockopt(pub, ZMQ_ZAP_DOMAIN, "greenmarket", 11);
  }
  if (zmq_bind(back, WORKERS_ENDPOINT) || zmq_bind(pull, EVENTS_ENDPOINT)) {
    snprintf(err, errlen, "inproc bind: %s", zmq_strerror(zmq_errno()));
    goto done;
  }
  if (zmq_bind(front, b->endpoint)) {
    snprintf(err, errlen,
             "cannot bind %s: %s (is another gmd running? set "
             "[broker] endpoint)",
             b->endpoint, zmq_strerror(zmq_errno()));
    goto done;
  }
  if (zmq_bind(pub, b->feed)) {
    snprintf(err, errlen, "cannot bind the feed %s: %s (set [broker] feed)",
             b->feed, zmq_strerror(zmq_errno()));
    goto done;
  }
  b->workers = calloc((size_t)b->n_workers, sizeof *b->workers);
  for (long i = 0; i < b->n_workers; i++)
    if (worker_start(b, &b->workers[i], err, errlen)) goto done;
  if (gm__timers_start(b->timers, &b->raddr, b->ledger_path, b->zctx,
                       EVENTS_ENDPOINT, err, errlen))
    goto done;
  b->pull = pull;
  b->pub = pub;
  if (pthread_create(&b->publisher, NULL, publisher_run, b) != 0) {
    snprintf(err, errlen, "cannot start the publisher thread");
    goto done;
  }
  pthread_setname_np(b->publisher, "gmd-publish");
  b->publisher_started = 1;
  pull = pub = NULL;
  if (b->settle_on) {
    gm__settle_config sc = {.redis = b->raddr,
                            .ledger_path = b->ledger_path,
                            .consumer = b->name,
                            .batch_size = (int)b->settle_batch,
                            .block_ms = 100,
                            .linger_ms = (int)b->settle_linger,
                            .claim_idle_ms = 30000,
                            .lookup = settle_lookup,
                            .lookup_arg = b};
    b->settler = gm__settler_start(&sc, err, errlen);
    if (!b->settler) goto done;
  }
  if (b->dev_mode)
    gm__log(GM_LOG_WARN, "broker",
            "DEVELOPMENT MODE: no CURVE keys, no authentication; any client "
            "may act as any participant. Never expose %s beyond this machine.",
            b->endpoint);
  gm__log(GM_LOG_INFO, "broker",
          "%s serving %zu market(s) on %s, feed %s, %ld workers, ledger %s",
          b->name, b->n_markets, b->endpoint, b->feed, b->n_workers,
          b->ledger_path);

  zmq_pollitem_t items[] = {{front, 0, ZMQ_POLLIN, 0},
                            {back, 0, ZMQ_POLLIN, 0}};
  while (!b->stop) {
    int n = zmq_poll(items, 2, 200);
    if (n < 0) {
      if (zmq_errno() == EINTR) continue;
      snprintf(err, errlen, "poll: %s", zmq_strerror(zmq_errno()));
      goto done;
    }
    /* Replies first: they free clients and workers.  Each socket is
       drained in bursts, so one wake-up moves many messages under load
       while no socket can starve the others. */
    for (int i = 0; i < BURST && (items[1].revents & ZMQ_POLLIN); i++)
      if (!forward(back, front)) break;
    for (int i = 0; i < BURST && (items[0].revents & ZMQ_POLLIN); i++)
      if (!forward_request(b, front, back)) break;
  }
  rc = 0;
  gm__log(GM_LOG_INFO, "broker", "stopping");
done:
  /* Timers and settler first: they finish what they hold. */
  gm__timers_destroy(&b->timers);
  b->host.timers = NULL;
  gm__settler_stop(&b->settler);
  int linger = 0;
  void *socks[] = {front, back, pull, pub};
  for (int i = 0; i < 4; i++)
    if (socks[i]) {
      zmq_setsockopt(socks[i], ZMQ_LINGER, &linger, sizeof linger);
      zmq_close(socks[i]);
    }
  zmq_ctx_shutdown(b->zctx);
  if (b->publisher_started) {
    pthread_join(b->publisher, NULL);
    b->publisher_started = 0;
  }
  for (long i = 0; b->workers && i < b->n_workers; i++) {
    worker *w = &b->workers[i];
    if (w->started)
      pthread_join(w->thread, NULL);
    else {
      if (w->sock) zmq_close(w->sock);
      if (w->pub) zmq_close(w->pub);
    }
    gm__redis_destroy(&w->redis);
    gm__ledger_close(&w->reader);
    for (long k = 0; w->tasks && k < b->pipeline; k++) {
      gm__arena_destroy(&w->tasks[k].arena);
      gm__fiber_destroy(&w->tasks[k].fiber);
    }
    free(w->tasks);
    w->tasks = NULL;
  }
  free(b->workers);
  b->workers = NULL;
  gm__auth_stop(&b->auth);
  zmq_ctx_term(b->zctx);
  b->zctx = NULL;
  return rc;
}

void gm__broker_destroy(gm__broker **bp) {
  if (!bp || !*bp) return;
  gm__broker *b = *bp;
  /* Plugins first: unloading removes their timers from the list. */
  for (size_t i = 0; i < b->n_markets; i++) gm__plugin_unload(&b->markets[i]);
  free(b->markets);
  gm__timers_destroy(&b->timers);
  b->host.timers = NULL;
  gm__redis_destroy(&b->host.redis);
  gm__ledger_close(&b->host.ledger);
  free(b->endpoint);
  free(b->feed);
  free(b->redis_unix);
  free(b->redis_host);
  free(b->ledger_path);
  free(b);
  *bp = NULL;
}
