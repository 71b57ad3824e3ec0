/*
 * Ledger reads routed to the lease holder (see ledger_route.h).
 * Frames: client -> server [request id, 8 bytes][Query];
 * server -> client [request id][Rows].
 */
#include "ledger_route.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>
#include <zmq.h>

#include "auth.h"
#include "call.h"
#include "clock.h"
#include "fiber.h"
#include "ledger.pb-c.h"
#include "log.h"
#include "market.h"

#define ZAP_ENDPOINT "inproc://zeromq.zap.01"
#define ZAP_DOMAIN "gm-ledger"
/* A query larger than this is no query a market sends. */
#define MAX_QUERY_BYTES (1 << 20)
/* Rows one reply carries at most (text bytes, roughly). */
#define MAX_REPLY_BYTES (32 << 20)

/* ---- server ---- */

struct gm__ledger_server {
  gm__ledger_server_config cfg;
  char *endpoint;
  void *zctx;   /* its own: its ZAP handler must not see participants */
  void *router; /* the other brokers' DEALERs */
  void *zap;    /* REP on ZAP_ENDPOINT, with CURVE */
  char public_key[41];
  gm__ledger *reader;
  pthread_t thread;
  int started;
  atomic_int stop;
  int wake; /* eventfd: the stop wakes the thread's poll at once */
};

/* Admits only the holder of the broker's own key pair (another broker). */
static void zap_handle(gm__ledger_server *s) {
  zmq_msg_t parts[GM__ZAP_PARTS];
  int n = gm__zap_recv(s->zap, parts);
  if (n < 0) return;
  int ok = 0;
  if (n >= 7 && zmq_msg_size(&parts[5]) == 5 &&
      memcmp(zmq_msg_data(&parts[5]), "CURVE", 5) == 0 &&
      zmq_msg_size(&parts[6]) == 32) {
    char z85[41];
    zmq_z85_encode(z85, zmq_msg_data(&parts[6]), 32);
    ok = strcmp(z85, s->public_key) == 0;
  }
  const char *code = ok ? "200" : "400";
  const char *text = ok ? "OK" : "not a broker of this system";
  zmq_send(s->zap, "1.0", 3, ZMQ_SNDMORE);
  if (n > 1)
    zmq_send(s->zap, zmq_msg_data(&parts[1]), zmq_msg_size(&parts[1]),
             ZMQ_SNDMORE);
  else
    zmq_send(s->zap, "", 0, ZMQ_SNDMORE);
  zmq_send(s->zap, code, 3, ZMQ_SNDMORE);
  zmq_send(s->zap, text, strlen(text), ZMQ_SNDMORE);
  zmq_send(s->zap, "", 0, ZMQ_SNDMORE);
  zmq_send(s->zap, "", 0, 0);
  for (int i = 0; i < n; i++) zmq_msg_close(&parts[i]);
}

/* The rows of one query, built for the reply. */
typedef struct rows {
  gm__arena *a;
  Gm__Ledger__Row **v;
  size_t n, cap;
  size_t bytes;
  int full; /* past MAX_REPLY_BYTES: stopped */
} rows;

static Gm__Ledger__Value *value_of(gm__arena *a, const gm_param *p) {
  Gm__Ledger__Value *v = gm__arena_alloc(a, sizeof *v);
  gm__ledger__value__init(v);
  switch (p->type) {
    case GM_PARAM_INT:
      v->v_case = GM__LEDGER__VALUE__V_INTEGER;
      v->integer = p->i;
      break;
    case GM_PARAM_TEXT:
      v->v_case = GM__LEDGER__VALUE__V_TEXT;
      v->text.data = (uint8_t *)(p->s ? p->s : "");
      v->text.len = p->s ? strlen(p->s) : 0;
      break;
    default:
      v->v_case = GM__LEDGER__VALUE__V_NULL_VALUE;
      v->null_value = 1;
  }
  return v;
}

static int add_row(void *arg, size_t ncols, const gm_param *cols) {
  rows *r = arg;
  if (r->n == r->cap) {
    r->cap = r->cap ? r->cap * 2 : 64;
    r->v = realloc(r->v, r->cap * sizeof *r->v);
    if (!r->v) abort();
  }
  Gm__Ledger__Row *row = gm__arena_alloc(r->a, sizeof *row);
  gm__ledger__row__init(row);
  row->n_cols = ncols;
  row->cols = gm__arena_alloc(r->a, (ncols ? ncols : 1) * sizeof *row->cols);
  for (size_t i = 0; i < ncols; i++) {
    row->cols[i] = value_of(r->a, &cols[i]);
    r->bytes +=
        12 +
        (cols[i].type == GM_PARAM_TEXT && cols[i].s ? strlen(cols[i].s) : 0);
  }
  r->v[r->n++] = row;
  if (r->bytes > MAX_REPLY_BYTES) r->full = 1;
  return r->full;
}

/* Runs one Query; fills out (its memory in a). */
static void serve_query(gm__ledger_server *s, gm__arena *a, const void *data,
                        size_t len, Gm__Ledger__Rows *out, rows *rs) {
  Gm__Ledger__Query *q = gm__ledger__query__unpack(NULL, len, data);
  gm_call call = {.arena = a,
                  .participant = "",
                  .roles = "",
                  .idem_key = "",
                  .reader = s->reader};
  gm_status st;
  if (!q || q->version != 1) {
    st = gm__call_fail(&call, GM_INVALID_ARGUMENT,
                       "not a ledger query of version 1");
  } else if (!gm__lease_gate(s->cfg.lease)) {
    st = gm__call_fail(&call, GM_UNAVAILABLE,
                       "this broker does not hold the settle lease now; "
                       "retry in a moment");
  } else if (q->market[0] &&
             !(call.market = s->cfg.find(s->cfg.find_arg, q->market))) {
    st = gm__call_fail(&call, GM_NOT_FOUND,
                       "the ledger holder has no market %.64s loaded",
                       q->market);
  } else {
    gm_param *p =
        gm__arena_alloc(a, (q->n_params ? q->n_params : 1) * sizeof *p);
    for (size_t i = 0; i < q->n_params; i++) {
      const Gm__Ledger__Value *v = q->params[i];
      if (v->v_case == GM__LEDGER__VALUE__V_INTEGER)
        p[i] = GM_INT(v->integer);
      else if (v->v_case == GM__LEDGER__VALUE__V_TEXT)
        p[i] = GM_TEXT(
            gm__arena_strndup(a, (const char *)v->text.data, v->text.len));
      else
        p[i] = GM_NULL;
    }
    char *sql = gm__arena_strndup(a, (const char *)q->sql.data, q->sql.len);
    st = gm__ledger_query(&call, sql, p, q->n_params, add_row, rs);
    /* sqlite3_stmt_readonly passes BEGIN, and a core read has no market
       authorizer to refuse it: left open, it would answer every later
       routed read from this one snapshot. */
    sqlite3 *db = gm__ledger_db(s->reader);
    if (!sqlite3_get_autocommit(db)) {
      sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
      st = gm__call_fail(&call, GM_INVALID_ARGUMENT,
                         "a routed ledger read is one statement outside any "
                         "transaction");
    }
    if (st == GM_OK && rs->full)
      st = gm__call_fail(&call, GM_RESOURCE_EXHAUSTED,
                         "the ledger query's rows pass %d MB; ask for fewer",
                         MAX_REPLY_BYTES >> 20);
  }
  out->status = (uint32_t)st;
  out->message = (char *)(st == GM_OK ? "" : call.message ? call.message : "");
  if (st == GM_OK) {
    out->n_rows = rs->n;
    out->rows = rs->v;
  }
  if (q) gm__ledger__query__free_unpacked(q, NULL);
}

/* Answers one request waiting on the ROUTER, if any; 0 when none. */
static int serve_one(gm__ledger_server *s, gm__arena *a) {
  zmq_msg_t f[3];
  int n = 0, more = 1;
  while (more) {
    zmq_msg_t m;
    zmq_msg_init(&m);
    if (zmq_msg_recv(&m, s->router, n ? 0 : ZMQ_DONTWAIT) < 0) {
      zmq_msg_close(&m);
      for (int i = 0; i < n; i++) zmq_msg_close(&f[i]);
      return 0;
    }
    more = zmq_msg_more(&m);
    if (n < 3)
      f[n++] = m;
    else
      zmq_msg_close(&m), n = 4;
  }
  if (n != 3 || zmq_msg_size(&f[1]) != 8) { /* not ours: dropped */
    for (int i = 0; i < (n > 3 ? 3 : n); i++) zmq_msg_close(&f[i]);
    return 1;
  }
  Gm__Ledger__Rows out = GM__LEDGER__ROWS__INIT;
  rows rs = {.a = a};
  serve_query(s, a, zmq_msg_data(&f[2]), zmq_msg_size(&f[2]), &out, &rs);
  size_t len = gm__ledger__rows__get_packed_size(&out);
  uint8_t *buf = malloc(len ? len : 1);
  if (!buf) abort();
  gm__ledger__rows__pack(&out, buf);
  free(rs.v);
  zmq_msg_send(&f[0], s->router, ZMQ_SNDMORE);
  zmq_msg_send(&f[1], s->router, ZMQ_SNDMORE);
  zmq_send(s->router, buf, len, 0);
  free(buf);
  for (int i = 0; i < 3; i++) zmq_msg_close(&f[i]);
  gm__arena_reset(a);
  return 1;
}

static void *server_run(void *arg) {
  gm__ledger_server *s = arg;
  gm__arena *a = gm__arena_new();
  /* The stop's eventfd wakes the poll at once: a broker's stop waited out
     the 200 ms otherwise (every test's gmd stop paid it). */
  zmq_pollitem_t items[3] = {{s->router, 0, ZMQ_POLLIN, 0},
                             {NULL, s->wake, ZMQ_POLLIN, 0},
                             {s->zap, 0, ZMQ_POLLIN, 0}};
  while (!atomic_load(&s->stop)) {
    if (zmq_poll(items, s->zap ? 3 : 2, 200) < 0) {
      if (zmq_errno() == EINTR) continue;
      break;
    }
    if (s->zap && (items[2].revents & ZMQ_POLLIN)) zap_handle(s);
    if (items[0].revents & ZMQ_POLLIN)
      for (int i = 0; i < 256 && serve_one(s, a); i++) {
      }
  }
  gm__arena_destroy(&a);
  return NULL;
}

gm__ledger_server *gm__ledger_server_start(const gm__ledger_server_config *c,
                                           char *err, size_t errlen) {
  gm__ledger_server *s = calloc(1, sizeof *s);
  if (!s) abort();
  s->cfg = *c;
  s->endpoint = strdup(c->endpoint);
  if (!s->endpoint) abort();
  s->cfg.endpoint = s->endpoint;
  s->cfg.secret_key = NULL; /* not kept */
  s->wake = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (s->wake < 0) {
    snprintf(err, errlen, "the ledger endpoint: eventfd: %s", strerror(errno));
    goto fail;
  }
  s->reader = gm__ledger_open(c->ledger_path, 1, err, errlen);
  if (!s->reader) goto fail;
  /* Peers read this file only, whatever the market (core reads have no
     authorizer to refuse ATTACH). */
  sqlite3_limit(gm__ledger_db(s->reader), SQLITE_LIMIT_ATTACHED, 0);
  s->zctx = zmq_ctx_new();
  s->router = zmq_socket(s->zctx, ZMQ_ROUTER);
  int64_t max = MAX_QUERY_BYTES;
  zmq_setsockopt(s->router, ZMQ_MAXMSGSIZE, &max, sizeof max);
  if (c->secret_key) {
    if (zmq_curve_public(s->public_key, c->secret_key) != 0) {
      snprintf(err, errlen, "the ledger endpoint: not a CURVE secret key");
      goto fail;
    }
    s->zap = zmq_socket(s->zctx, ZMQ_REP);
    if (zmq_bind(s->zap, ZAP_ENDPOINT) != 0) {
      snprintf(err, errlen, "the ledger endpoint's ZAP handler: %s",
               zmq_strerror(zmq_errno()));
      goto fail;
    }
    int one = 1;
    zmq_setsockopt(s->router, ZMQ_CURVE_SERVER, &one, sizeof one);
    zmq_setsockopt(s->router, ZMQ_CURVE_SECRETKEY, c->secret_key, 40);
    zmq_setsockopt(s->router, ZMQ_ZAP_DOMAIN, ZAP_DOMAIN, strlen(ZAP_DOMAIN));
  }
  if (zmq_bind(s->router, s->endpoint) != 0) {
    snprintf(err, errlen,
             "cannot bind the ledger endpoint %s: %s (set [settle] "
             "ledger_endpoint)",
             s->endpoint, zmq_strerror(zmq_errno()));
    goto fail;
  }
  if (pthread_create(&s->thread, NULL, server_run, s) != 0) {
    snprintf(err, errlen, "cannot start the ledger endpoint's thread");
    goto fail;
  }
  pthread_setname_np(s->thread, "gmd-ledger-srv");
  s->started = 1;
  return s;
fail:
  gm__ledger_server_stop(&s);
  return NULL;
}

void gm__ledger_server_stop(gm__ledger_server **sp) {
  if (!sp || !*sp) return;
  gm__ledger_server *s = *sp;
  if (s->started) {
    atomic_store(&s->stop, 1);
    uint64_t one = 1;
    if (write(s->wake, &one, sizeof one) < 0) {
      /* the poll still ends within its 200 ms */
    }
    pthread_join(s->thread, NULL);
  }
  int linger = 0;
  void *socks[] = {s->router, s->zap};
  for (int i = 0; i < 2; i++)
    if (socks[i]) {
      zmq_setsockopt(socks[i], ZMQ_LINGER, &linger, sizeof linger);
      zmq_close(socks[i]);
    }
  if (s->zctx) zmq_ctx_term(s->zctx);
  if (s->wake >= 0) close(s->wake);
  gm__ledger_close(&s->reader);
  free(s->endpoint);
  free(s);
  *sp = NULL;
}

/* ---- client ---- */

/* A fiber waiting for its rows (on that fiber's stack). */
typedef struct waiter {
  uint64_t id;
  gm__fiber *fiber;
  uint64_t deadline_us;
  uint64_t seq;           /* the lease's holder number it was sent under */
  int moved;              /* given up because the holder changed */
  Gm__Ledger__Rows *rows; /* the reply; NULL: timed out or moved */
  struct waiter *next;
} waiter;

struct gm__ledger_link {
  gm__ledger_remote remote; /* first: call->remote points here */
  void *sock;
  gm__lease *lease;
  int timeout_ms;
  uint64_t seq;        /* the lease's holder number connected to */
  char connected[512]; /* what zmq_disconnect needs */
  uint64_t next_id;
  waiter *waiting;
};

/* Points the socket at the holder; -1 when reads stay local, 1 when they
   cannot be answered now. */
static int link_aim(gm__ledger_link *k) {
  char ep[512];
  int self;
  uint64_t seq = gm__lease_holder(k->lease, ep, sizeof ep, &self);
  if (self) return -1;
  /* Between holders, only a file that may become the book answers. */
  if (!ep[0]) return gm__lease_book_here(k->lease) ? -1 : 1;
  if (seq != k->seq || strcmp(ep, k->connected) != 0) {
    if (k->connected[0]) zmq_disconnect(k->sock, k->connected);
    k->connected[0] = '\0';
    if (zmq_connect(k->sock, ep) != 0) {
      gm__log(GM_LOG_WARN, "settle",
              "cannot connect to the ledger holder's endpoint %s: %s", ep,
              zmq_strerror(zmq_errno()));
      return 1;
    }
    snprintf(k->connected, sizeof k->connected, "%s", ep);
    k->seq = seq;
  }
  return 0;
}

static void unlink_waiter(gm__ledger_link *k, waiter *w) {
  for (waiter **p = &k->waiting; *p; p = &(*p)->next)
    if (*p == w) {
      *p = w->next;
      return;
    }
}

/* Takes one reply off the socket (DONTWAIT); 1 if one was read. */
static int link_read(gm__ledger_link *k, waiter **done) {
  zmq_msg_t id, body;
  zmq_msg_init(&id);
  zmq_msg_init(&body);
  *done = NULL;
  if (zmq_msg_recv(&id, k->sock, ZMQ_DONTWAIT) < 0) {
    zmq_msg_close(&id);
    zmq_msg_close(&body);
    return 0;
  }
  int ok = zmq_msg_more(&id) && zmq_msg_recv(&body, k->sock, 0) >= 0 &&
           zmq_msg_size(&id) == 8;
  while (zmq_msg_more(&body)) { /* trailing frames: not ours */
    zmq_msg_t x;
    zmq_msg_init(&x);
    zmq_msg_recv(&x, k->sock, 0);
    int more = zmq_msg_more(&x);
    zmq_msg_close(&x);
    if (!more) break;
  }
  if (ok) {
    uint64_t rid;
    memcpy(&rid, zmq_msg_data(&id), 8);
    for (waiter *w = k->waiting; w; w = w->next)
      if (w->id == rid) {
        w->rows = gm__ledger__rows__unpack(NULL, zmq_msg_size(&body),
                                           zmq_msg_data(&body));
        unlink_waiter(k, w);
        *done = w;
        break;
      }
  }
  zmq_msg_close(&id);
  zmq_msg_close(&body);
  return 1;
}

static gm_status link_unavailable(gm__ledger_link *k, gm_call *call) {
  if (!k->connected[0])
    return gm__call_fail(call, GM_UNAVAILABLE,
                         "no broker holds the ledger now: the settle lease "
                         "is being handed over (retry in a moment), or no "
                         "broker may take it (a broker whose ledger file is "
                         "not the book of record says so in its log)");
  return gm__call_fail(call, GM_UNAVAILABLE,
                       "the broker holding the ledger (%s) did not answer "
                       "within %d ms; retry in a moment",
                       k->connected[0] ? k->connected : "none", k->timeout_ms);
}

/* Hands the rows of reply r to fn as a local read would, then frees r. */
static int link_rows(gm_call *call, Gm__Ledger__Rows *r, gm_row_fn fn,
                     void *arg, gm_status *st) {
  if (r->status != GM_OK) {
    *st = gm__call_fail(call, (gm_status)r->status, "%s", r->message);
  } else {
    *st = GM_OK;
    for (size_t i = 0; i < r->n_rows; i++) {
      const Gm__Ledger__Row *row = r->rows[i];
      gm_param *cols = gm__arena_alloc(
          call->arena, (row->n_cols ? row->n_cols : 1) * sizeof *cols);
      for (size_t j = 0; j < row->n_cols; j++) {
        const Gm__Ledger__Value *v = row->cols[j];
        if (v->v_case == GM__LEDGER__VALUE__V_INTEGER)
          cols[j] = GM_INT(v->integer);
        else if (v->v_case == GM__LEDGER__VALUE__V_TEXT)
          cols[j] = GM_TEXT(gm__arena_strndup(
              call->arena, (const char *)v->text.data, v->text.len));
        else
          cols[j] = GM_NULL;
      }
      /* As for a local read: no script runs from a row callback. */
      call->in_query++;
      int stop = fn && fn(arg, row->n_cols, cols) != 0;
      call->in_query--;
      if (stop) break;
    }
  }
  gm__ledger__rows__free_unpacked(r, NULL);
  return 0;
}

/* Sends one packed query and waits for its reply (w->rows; NULL after the
   timeout, or with w->moved when the holder changed meanwhile); -1 when it
   could not be sent. */
static int link_ask(gm__ledger_link *k, waiter *w, const uint8_t *buf,
                    size_t len) {
  if (zmq_send(k->sock, &w->id, 8, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0 ||
      zmq_send(k->sock, buf, len, ZMQ_DONTWAIT) < 0)
    return -1;
  w->next = k->waiting;
  k->waiting = w;
  if (w->fiber) {
    gm__fiber_yield(); /* resumed by receive or expire */
    return 0;
  }
  /* The thread's own stack (no fiber to park): wait here. */
  waiter *done = NULL;
  while (!done) {
    int64_t left = (int64_t)(w->deadline_us - gm__clock_mono_us()) / 1000;
    zmq_pollitem_t it = {k->sock, 0, ZMQ_POLLIN, 0};
    if (left <= 0 || zmq_poll(&it, 1, (long)left) <= 0) break;
    while (link_read(k, &done) && done != w) done = NULL;
  }
  unlink_waiter(k, w);
  return 0;
}

static int link_query(gm__ledger_remote *self, gm_call *call, const char *sql,
                      const gm_param *params, size_t nparams, gm_row_fn fn,
                      void *arg, gm_status *st) {
  gm__ledger_link *k = (gm__ledger_link *)self;
  uint8_t *buf = NULL; /* packed on the first send: local reads skip it */
  size_t len = 0;
  waiter w;
  /* A read sent to a holder that is then replaced (it died, the lease
     moved) is sent again at once to the new one, or run here when that is
     this broker, instead of waiting out the timeout: a few times at most. */
  for (int attempt = 0;; attempt++) {
    int aim = link_aim(k);
    if (aim < 0) return -1;
    if (aim > 0) {
      /* Connected to a holder that is gone: forget it. */
      if (k->connected[0]) zmq_disconnect(k->sock, k->connected);
      k->connected[0] = '\0';
      return *st = link_unavailable(k, call), 0;
    }
    if (!buf) {
      Gm__Ledger__Query q = GM__LEDGER__QUERY__INIT;
      q.version = 1;
      q.market = (char *)(call->market ? call->market->name : "");
      q.sql.data = (uint8_t *)sql;
      q.sql.len = strlen(sql);
      q.n_params = nparams;
      q.params = gm__arena_alloc(call->arena,
                                 (nparams ? nparams : 1) * sizeof *q.params);
      for (size_t i = 0; i < nparams; i++)
        q.params[i] = value_of(call->arena, &params[i]);
      len = gm__ledger__query__get_packed_size(&q);
      /* The holder's endpoint would drop this link for it, and every read
         in flight on it would wait out the timeout. */
      if (len > MAX_QUERY_BYTES)
        return *st = gm__call_fail(call, GM_RESOURCE_EXHAUSTED,
                                   "this ledger read is %zu bytes with its "
                                   "parameters; a read sent to the broker "
                                   "holding the ledger may be %d MB at most",
                                   len, MAX_QUERY_BYTES >> 20),
               0;
      buf = gm__arena_alloc(call->arena, len ? len : 1);
      gm__ledger__query__pack(&q, buf);
    }
    w = (waiter){
        .id = ++k->next_id,
        .fiber = gm__fiber_current(),
        .seq = k->seq,
        .deadline_us = gm__clock_mono_us() + (uint64_t)k->timeout_ms * 1000u};
    if (link_ask(k, &w, buf, len) != 0)
      return *st = link_unavailable(k, call), 0;
    if (!w.moved || attempt == 3) break;
  }
  if (!w.rows) return *st = link_unavailable(k, call), 0;
  return link_rows(call, w.rows, fn, arg, st);
}

gm__ledger_link *gm__ledger_link_new(void *zctx, gm__lease *lease,
                                     const char *secret_key, int timeout_ms) {
  gm__ledger_link *k = calloc(1, sizeof *k);
  if (!k) abort();
  k->remote.query = link_query;
  k->lease = lease;
  k->timeout_ms = timeout_ms;
  k->sock = zmq_socket(zctx, ZMQ_DEALER);
  if (!k->sock) abort();
  int zero = 0;
  zmq_setsockopt(k->sock, ZMQ_LINGER, &zero, sizeof zero);
  if (secret_key) {
    char pub[41];
    zmq_curve_public(pub, secret_key);
    zmq_setsockopt(k->sock, ZMQ_CURVE_SERVERKEY, pub, 40);
    zmq_setsockopt(k->sock, ZMQ_CURVE_PUBLICKEY, pub, 40);
    zmq_setsockopt(k->sock, ZMQ_CURVE_SECRETKEY, secret_key, 40);
  }
  return k;
}

gm__ledger_remote *gm__ledger_link_remote(gm__ledger_link *k) {
  return k ? &k->remote : NULL;
}

void *gm__ledger_link_socket(gm__ledger_link *k) {
  return k && k->waiting ? k->sock : NULL;
}

void gm__ledger_link_receive(gm__ledger_link *k) {
  waiter *done;
  for (int i = 0; i < 1024 && link_read(k, &done); i++)
    if (done) gm__fiber_resume(done->fiber);
}

void gm__ledger_link_expire(gm__ledger_link *k, int all) {
  if (!k || !k->waiting) return;
  uint64_t now = gm__clock_mono_us();
  char ep[512];
  int self;
  uint64_t seq = gm__lease_holder(k->lease, ep, sizeof ep, &self);
  for (waiter *w = k->waiting, *next; w; w = next) {
    next = w->next;
    w->moved = !all && w->seq != seq;
    if (all || w->moved || now >= w->deadline_us) {
      unlink_waiter(k, w);
      gm__fiber_resume(w->fiber);
      next = k->waiting; /* the resumed fiber may have added waiters */
    }
  }
}

void gm__ledger_link_destroy(gm__ledger_link **kp) {
  if (!kp || !*kp) return;
  gm__ledger_link *k = *kp;
  if (k->sock) zmq_close(k->sock);
  free(k);
  *kp = NULL;
}
