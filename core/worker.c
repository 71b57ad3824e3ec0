#include "worker.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "broker.h"
#include "call.h"
#include "clock.h"
#include "dispatch.h"
#include "fiber.h"
#include "frames.h"
#include "greenmarket.pb-c.h"
#include "identity.h"
#include "ledger.h"
#include "ledger_route.h"
#include "stats.h"
#include "utf8.h"

/* No reply from Redis for this long while requests wait: reconnect. */
#define REDIS_STALL_US (30u * 1000000u)
/* A WAIT of [redis] cluster_wait_replicas is such a silence: it must end
   well before the limit (redis.h). */
_Static_assert(GM__WAIT_REPLICAS_MAX_MS * 1000LL + 5000000LL <= REDIS_STALL_US,
               "cluster_wait_replicas must stay below the stall limit");
/* Stack of each request's fiber. */
#define FIBER_STACK (256 * 1024)

/* One request in a worker: its frames, memory, fiber and reply. */
typedef struct task {
  gm__worker *w;                          /* owner */
  gm__fiber *fiber;                       /* runs the request's handler */
  gm__arena *arena;                       /* the request's memory */
  zmq_msg_t f[GM__MAX_PREFIX_FRAMES + 3]; /* [auth][id][prefix...][payload] */
  int n;                                  /* frames in f */
  int done;                               /* replied; fiber finished */
  struct task *next_free;                 /* free list */
} task;

struct gm__worker {
  gm__broker *b;          /* owner */
  gm__identity *identity; /* who is calling (with its caches) */
  pthread_t thread;       /* this worker */
  int started;            /* thread was created */
  void *sock;             /* DEALER to the main thread */
  gm__events *pub;        /* the queue to the publisher (shared) */
  gm__redis *redis;       /* own Redis connection */
  gm__ledger *reader;     /* own read-only ledger */
  gm__ledger_link *link;  /* ledger reads sent to the lease holder */
  long pipeline;          /* tasks */
  task *tasks;            /* pipeline of them */
  task *free_tasks;       /* not running */
  long active;            /* running (pipeline - free) */
};

/* A request's whole life, on its task's fiber: decode, run, reply. */
/* `msg` (valid UTF-8) with each control character but newline and tab
   (C0, DEL, and C1: U+0080-U+009F, which some terminals take as 8-bit
   controls) replaced by '?': msg itself when it has none. */
static const char *gm__worker_shown(gm__arena *a, const char *msg) {
  const unsigned char *p = (const unsigned char *)msg;
  size_t i = 0;
  for (; p[i]; i++)
    if ((p[i] < 0x20 && p[i] != '\n' && p[i] != '\t') || p[i] == 0x7f ||
        (p[i] == 0xc2 && p[i + 1] >= 0x80 && p[i + 1] <= 0x9f))
      break;
  if (!p[i]) return msg;
  size_t n = strlen(msg);
  char *out = gm__arena_alloc(a, n + 1), *o = out;
  for (i = 0; i < n; i++) {
    if ((p[i] < 0x20 && p[i] != '\n' && p[i] != '\t') || p[i] == 0x7f) {
      *o++ = '?';
    } else if (p[i] == 0xc2 && p[i + 1] >= 0x80 && p[i + 1] <= 0x9f) {
      *o++ = '?';
      i++;
    } else {
      *o++ = (char)p[i];
    }
  }
  *o = '\0';
  return out;
}

static void task_run(void *arg) {
  task *t = arg;
  gm__worker *w = t->w;
  uint64_t t0 = gm__clock_mono_us();
  gm_call call = {.arena = t->arena,
                  .participant = "",
                  .roles = "",
                  .idem_key = "",
                  .redis = w->redis,
                  .reader = w->reader,
                  .remote = gm__ledger_link_remote(w->link),
                  .pub = w->pub,
                  .broker = w->b};
  Gm__Reply out = GM__REPLY__INIT;
  out.version = GM__PROTOCOL_VERSION;
  gm__stats *stats = NULL, *method_stats = NULL;
  zmq_msg_t *auth = &t->f[0], *payload = &t->f[t->n - 1];
  gm__dispatch(w->b, w->identity, &call, zmq_msg_data(auth), zmq_msg_size(auth),
               zmq_msg_data(payload), zmq_msg_size(payload), &out, &stats,
               &method_stats);
  out.status = (Gm__Status)call.status;
  if (call.status != GM_OK) {
    out.message = (char *)(call.message ? call.message : "");
    out.body.len = 0;
    out.body.data = NULL;
    /* Messages quote what callers and scripts said: never let a bad byte
       (or a character cut in half) make the reply undecodable. */
    size_t n = strlen(out.message);
    if (!gm__utf8_valid(out.message, n)) {
      char *fixed = gm__arena_alloc(t->arena, n * 3 + 1);
      fixed[gm__utf8_repair(out.message, n, fixed)] = '\0';
      out.message = fixed;
    }
    /* Nor a control character a caller typed (an escape sequence in an id
       a market echoes would drive the terminal that prints the message):
       each shown as '?', whichever market or script wrote the message. */
    out.message = (char *)gm__worker_shown(t->arena, out.message);
  }
  size_t len = gm__reply__get_packed_size(&out);
  uint8_t *buf = gm__arena_alloc(t->arena, len ? len : 1);
  gm__reply__pack(&out, buf);
  for (int i = 1; i < t->n - 1; i++)
    zmq_msg_send(&t->f[i], w->sock, ZMQ_SNDMORE);
  zmq_send(w->sock, buf, len, 0);
  zmq_msg_close(&t->f[0]);
  zmq_msg_close(&t->f[t->n - 1]);
  uint64_t us = gm__clock_mono_us() - t0;
  gm__stats_add(stats, call.status, us);
  if (method_stats) gm__stats_add(method_stats, call.status, us);
  t->done = 1;
}

/* Back to the free list once its fiber has finished. */
static void task_release(gm__worker *w, task *t) {
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
  gm__worker *w = arg;
  for (;;) {
    /* Requests only while a task is free; replies while any are due. */
    int fd = gm__redis_waiting(w->redis) ? gm__redis_fd(w->redis) : -1;
    void *ledger = gm__ledger_link_socket(w->link);
    zmq_pollitem_t items[3] = {
        {w->free_tasks ? w->sock : NULL, -1, ZMQ_POLLIN, 0},
        {NULL, fd, ZMQ_POLLIN, 0},
        {ledger, -1, ZMQ_POLLIN, 0}};
    /* While replies are due, wake each second to notice a Redis that
       stopped answering (REDIS_STALL_US, as the blocking timeout was);
       while ledger reads wait, more often, for their timeout. */
    if (zmq_poll(items, 3, ledger ? 50 : fd >= 0 ? 1000 : -1) < 0) {
      if (zmq_errno() == EINTR) continue;
      break; /* ETERM: the broker is stopping */
    }
    gm__redis_expire(w->redis, REDIS_STALL_US);
    int stopping = 0;
    if (items[0].revents & ZMQ_POLLIN) {
      /* At most a pipeline's worth per turn: requests that need no Redis
         free their task at once, and a steady stream of them must not keep
         replies that have arrived from being read. */
      for (long admitted = 0; w->free_tasks && admitted < w->pipeline;
           admitted++) {
        task *t = w->free_tasks;
        int n;
        if (gm__recv_frames(w->sock, t->f, GM__MAX_PREFIX_FRAMES + 3, &n,
                            ZMQ_DONTWAIT) < 0) {
          stopping = 1;
          break;
        }
        if (n == 0) break;
        if (n < 0) { /* more frames than any client sends: drop */
          for (int i = 0; i < -n; i++) zmq_msg_close(&t->f[i]);
          gm__broker_count_bad_frame(w->b);
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
    if (items[2].revents & ZMQ_POLLIN) gm__ledger_link_receive(w->link);
    gm__ledger_link_expire(w->link, 0);
    gm__redis_send(w->redis);
    for (long i = 0; i < w->pipeline && w->active; i++)
      if (w->tasks[i].done) task_release(w, &w->tasks[i]);
    if (stopping) break;
  }
  /* The context is terminating: requests still waiting get their Redis
     replies (or UNAVAILABLE for ledger reads) first, so no fiber is left
     suspended on its stack. */
  gm__ledger_link_expire(w->link, 1);
  while (gm__redis_waiting(w->redis)) gm__redis_flush(w->redis);
  int linger = 0;
  zmq_setsockopt(w->sock, ZMQ_LINGER, &linger, sizeof linger);
  zmq_close(w->sock);
  w->sock = NULL;
  gm__ledger_link_destroy(&w->link);
  return NULL;
}

gm__worker *gm__worker_start(const gm__worker_config *c, char *err,
                             size_t errlen) {
  gm__worker *w = calloc(1, sizeof *w);
  if (!w) abort();
  w->b = c->broker;
  w->pipeline = c->pipeline;
  w->identity = gm__identity_new(c->dev_mode);
  w->redis = gm__redis_connect(c->redis, err, errlen);
  if (!w->redis) goto fail;
  gm__redis_set_pipelined(w->redis, 1);
  w->tasks = calloc((size_t)c->pipeline, sizeof *w->tasks);
  if (!w->tasks) abort();
  for (long i = c->pipeline - 1; i >= 0; i--) {
    task *t = &w->tasks[i];
    t->w = w;
    t->arena = gm__arena_new();
    /* Handlers run SQLite queries and protobuf on this stack; pages are
       only backed once touched. */
    t->fiber = gm__fiber_new(FIBER_STACK);
    if (!t->fiber) {
      snprintf(err, errlen, "no memory for %ld request stacks", c->pipeline);
      goto fail;
    }
    t->next_free = w->free_tasks;
    w->free_tasks = t;
  }
  w->reader = gm__ledger_open(c->ledger_path, 1, err, errlen);
  if (!w->reader) goto fail;
  w->link = gm__broker_ledger_link(w->b, c->zctx);
  w->sock = zmq_socket(c->zctx, ZMQ_DEALER);
  w->pub = c->events;
  if (zmq_connect(w->sock, c->requests)) {
    snprintf(err, errlen, "worker sockets: %s", zmq_strerror(zmq_errno()));
    goto fail;
  }
  if (pthread_create(&w->thread, NULL, worker_run, w) != 0) {
    snprintf(err, errlen, "cannot start a worker thread");
    goto fail;
  }
  char name[16];
  snprintf(name, sizeof name, "gmd-worker-%d", c->index % 1000);
  pthread_setname_np(w->thread, name);
  w->started = 1;
  return w;
fail:
  gm__worker_destroy(&w);
  return NULL;
}

void gm__worker_destroy(gm__worker **wp) {
  if (!wp || !*wp) return;
  gm__worker *w = *wp;
  if (w->started) pthread_join(w->thread, NULL);
  int linger = 0;
  if (w->sock) {
    zmq_setsockopt(w->sock, ZMQ_LINGER, &linger, sizeof linger);
    zmq_close(w->sock);
  }
  gm__ledger_link_destroy(&w->link);
  gm__redis_destroy(&w->redis);
  gm__ledger_close(&w->reader);
  for (long k = 0; w->tasks && k < w->pipeline; k++) {
    gm__arena_destroy(&w->tasks[k].arena);
    gm__fiber_destroy(&w->tasks[k].fiber);
  }
  free(w->tasks);
  gm__identity_destroy(&w->identity);
  free(w);
  *wp = NULL;
}
