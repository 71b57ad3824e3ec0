/*
 * A worker thread: takes requests from the main thread, runs up to
 * `pipeline` of them at once, each on a fiber of its own (dispatch.c does
 * the request's work), pipelines their Redis commands on the worker's one
 * connection, and sends each reply back.
 */
#ifndef GM_CORE_WORKER_H
#define GM_CORE_WORKER_H

#include <stddef.h>

#include "events.h"
#include "redis.h"

struct gm__broker;

/* Frames a client may send before its payload (a REQ delimiter, proxies'
   routing ids), not counting the identity frame the ROUTER adds: a message
   with more is dropped (docs/protocol.md). */
#define GM__MAX_PREFIX_FRAMES 8

typedef struct gm__worker gm__worker;

typedef struct gm__worker_config {
  struct gm__broker *broker;   /* whose requests */
  void *zctx;                  /* the broker's ZeroMQ context */
  const char *requests;        /* inproc endpoint of the main thread */
  gm__events *events;          /* the queue to the publisher (shared) */
  const gm__redis_addr *redis; /* where Redis is */
  const char *ledger_path;     /* the ledger, opened read-only */
  long pipeline;               /* requests in flight at most */
  int dev_mode;                /* callers name themselves */
  int index;                   /* for the thread's name */
} gm__worker_config;

/* Starts one worker; NULL with err on failure (nothing left behind). */
gm__worker *gm__worker_start(const gm__worker_config *c, char *err,
                             size_t errlen);
/* Joins the thread (the context must be shutting down: it ends on ETERM
   after answering what it holds), frees, nulls *w. */
void gm__worker_destroy(gm__worker **w);

#endif
