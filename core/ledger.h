/*
 * Ledger service: the SQLite book of record (WAL, synchronous=NORMAL).
 * One writer connection (the settler's) and one read-only connection per
 * worker thread.  Core tables:
 *   gm_schema(market TEXT PRIMARY KEY, version INTEGER)
 *   gm_settled(stream TEXT, id TEXT, kind TEXT, settled_ms INTEGER,
 *              PRIMARY KEY(stream, id))        -- event-id idempotency
 *   gm_dead_letter(stream, id, market, kind, error, failures, set_aside_ms)
 *   gm_dead_letter_field(stream, id, n, name, value)
 *                          -- entries whose settle callback kept failing
 * A market's statements (migrations, settle callbacks, queries) reach only
 * its own "<market>_*" tables: ledger.c says how.
 */
#ifndef GM_CORE_LEDGER_H
#define GM_CORE_LEDGER_H

#include <sqlite3.h>
#include <stddef.h>

#include "arena.h"
#include "greenmarket/plugin.h"

typedef struct gm__ledger gm__ledger;

/* Opens (creating the file and core tables unless readonly).  A connection
   is used by one thread at a time (SQLITE_OPEN_NOMUTEX). */
gm__ledger *gm__ledger_open(const char *path, int readonly, char *err,
                            size_t errlen);
void gm__ledger_close(gm__ledger **l);
sqlite3 *gm__ledger_db(gm__ledger *l);

/* [ledger] scan_check, for tests and plugin authors: from now on every
   connection explains each statement at its first prepare and refuses one
   whose plan reads a whole table (ledger.c, gm__scan_of). */
void gm__ledger_set_scan_check(int on);

/* How long a migration waits in all for the ledger's write lock that
   another writer holds (another gmd migrating the same file) before it
   fails: 10 minutes (tests shorten it). */
extern int gm__ledger_migrate_wait_ms;
/* Applies `market`'s migrations above its recorded version, one
   transaction each, under its boundaries (ledger.c): GM_PERMISSION_DENIED
   with err naming the rule when one steps outside them; a storage failure
   or a write lock held past gm__ledger_migrate_wait_ms (GM_UNAVAILABLE)
   says so and what to do. */
gm_status gm__ledger_migrate(gm__ledger *l, const char *market,
                             const gm_migration *migrations, size_t n,
                             char *err, size_t errlen);

/* The transaction handed to settle callbacks. */
struct gm_ledger {
  gm__ledger *ledger;
  const char *market; /* whose rules its statements follow; "gm": none */
  gm__arena *arena;   /* ledger_tx_query's rows (the settler's round) */
  int refused;        /* statements the boundaries refused (ledger.c) */
  char err[512];      /* why the last statement failed */
  int fault;          /* the last statement failed in SQLite itself (disk
                         full, I/O error, busy, out of memory), not by its
                         own fault */
};

/* gm_host_api.ledger_exec: tx->market's boundaries ("gm": the settler's
   own rows); a refusal is GM_PERMISSION_DENIED with tx->err naming the
   rule, and counts in tx->refused. */
gm_status gm__ledger_exec(gm_ledger *tx, const char *sql,
                          const gm_param *params, size_t nparams);
/*
 * Somewhere else to run a call's ledger reads (ledger_route.c: the broker
 * holding the settle lease).  query returns 0 with *st when it answered,
 * -1 when the read is to run here.
 */
typedef struct gm__ledger_remote {
  int (*query)(struct gm__ledger_remote *self, gm_call *call, const char *sql,
               const gm_param *params, size_t nparams, gm_row_fn fn, void *arg,
               gm_status *st);
} gm__ledger_remote;

/* gm_host_api.ledger_query: through call->remote when it takes the read,
   else over call->reader; under call->market's boundaries (none for core
   methods); text copied to the call's arena */
gm_status gm__ledger_query(gm_call *call, const char *sql,
                           const gm_param *params, size_t nparams, gm_row_fn fn,
                           void *arg);
/* gm_host_api.ledger_tx_query: reads inside the settle transaction (its own
   writes included), under the same boundaries as ledger_exec; text copied
   to tx->arena. */
gm_status gm__ledger_tx_query(gm_ledger *tx, const char *sql,
                              const gm_param *params, size_t nparams,
                              gm_row_fn fn, void *arg);

#endif
