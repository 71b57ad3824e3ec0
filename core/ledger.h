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
 */
#ifndef GM_CORE_LEDGER_H
#define GM_CORE_LEDGER_H

#include <sqlite3.h>
#include <stddef.h>

#include "greenmarket/plugin.h"

typedef struct gm__ledger gm__ledger;

/* Opens (creating the file and core tables unless readonly).  A connection
   is used by one thread at a time (SQLITE_OPEN_NOMUTEX). */
gm__ledger *gm__ledger_open(const char *path, int readonly, char *err,
                            size_t errlen);
void gm__ledger_close(gm__ledger **l);
sqlite3 *gm__ledger_db(gm__ledger *l);

/* Applies `market`'s migrations above its recorded version, one
   transaction each. */
gm_status gm__ledger_migrate(gm__ledger *l, const char *market,
                             const gm_migration *migrations, size_t n,
                             char *err, size_t errlen);

/* The transaction handed to settle callbacks. */
struct gm_ledger {
  gm__ledger *ledger;
  const char *market;
  char err[256]; /* why the last statement failed */
};

/* gm_host_api.ledger_exec */
gm_status gm__ledger_exec(gm_ledger *tx, const char *sql,
                          const gm_param *params, size_t nparams);
/* gm_host_api.ledger_query, over call->reader; text copied to the arena */
gm_status gm__ledger_query(gm_call *call, const char *sql,
                           const gm_param *params, size_t nparams, gm_row_fn fn,
                           void *arg);

#endif
