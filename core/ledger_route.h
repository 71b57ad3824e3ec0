/*
 * Ledger reads routed to the broker holding the settle lease (lease.h), so
 * every broker answers them from the one book of record.
 *
 * Server: on each broker that may hold the lease, a thread with a ROUTER on
 * [settle] ledger_endpoint and its own read-only ledger connection.  It
 * answers proto/ledger.proto Query with Rows while this broker holds the
 * lease (UNAVAILABLE otherwise): gm__ledger_query does the work, so only
 * read-only statements run (sqlite3_stmt_readonly) and each market reaches
 * only its own tables, as for a local read.  With CURVE on, it uses the
 * broker's server key pair, and its own ZAP handler (in a ZeroMQ context of
 * its own, apart from the participants' one) admits only clients that hold
 * that same key pair: the other brokers.
 *
 * Client: a DEALER per worker thread, connected to the holder's endpoint
 * as the lease names it.  A request's fiber sends its query and yields; the
 * worker polls the socket and resumes the fiber when its rows arrive, or
 * with UNAVAILABLE after the timeout.  On the holder itself, or when nobody
 * holds the lease, reads stay local.
 */
#ifndef GM_CORE_LEDGER_ROUTE_H
#define GM_CORE_LEDGER_ROUTE_H

#include <stddef.h>

#include "lease.h"
#include "ledger.h"

/* Finds a loaded market by name (NULL: none). */
typedef gm_market *(*gm__route_find_fn)(void *arg, const char *market);

typedef struct gm__ledger_server_config {
  const char *endpoint;    /* where to bind */
  const char *ledger_path; /* opened read-only */
  const char *secret_key;  /* Z85 CURVE secret key; NULL: plain */
  gm__lease *lease;        /* answers only while it holds this */
  gm__route_find_fn find;
  void *find_arg;
} gm__ledger_server_config;

typedef struct gm__ledger_server gm__ledger_server;

/* Binds and starts the thread; NULL and err on failure. */
gm__ledger_server *gm__ledger_server_start(const gm__ledger_server_config *c,
                                           char *err, size_t errlen);
/* Stops the thread, closes everything, nulls *s. */
void gm__ledger_server_stop(gm__ledger_server **s);

typedef struct gm__ledger_link gm__ledger_link;

/* A client for one thread, in context zctx; secret_key as the server's. */
gm__ledger_link *gm__ledger_link_new(void *zctx, gm__lease *lease,
                                     const char *secret_key, int timeout_ms);
/* What a gm_call's `remote` points at for this link. */
gm__ledger_remote *gm__ledger_link_remote(gm__ledger_link *k);
/* The socket to poll while fibers wait, else NULL. */
void *gm__ledger_link_socket(gm__ledger_link *k);
/* Reads the replies that have arrived and resumes their fibers. */
void gm__ledger_link_receive(gm__ledger_link *k);
/* Resumes with UNAVAILABLE the fibers that waited past the timeout (all of
   them when `all`: the worker is stopping). */
void gm__ledger_link_expire(gm__ledger_link *k, int all);
/* Closes the socket (before the context ends), nulls *k. */
void gm__ledger_link_destroy(gm__ledger_link **k);

#endif
