/*
 * Ledger service: the SQLite book of record.  One writer connection (the
 * settler's; migrations at init use one too) and a read-only connection per
 * worker thread.  Prepared statements are cached per connection by SQL text
 * because the settler runs the same few statements thousands of times.
 */
#include "ledger.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "call.h"
#include "counters.h"
#include "hash.h"
#include "log.h"

/* Cached statements per connection; plugins use a handful each. */
#define GM__STMT_CACHE 128

typedef struct gm__stmt {
  uint64_t hash;      /* of sql, to skip most strcmp */
  char *sql;          /* owned copy of the text */
  sqlite3_stmt *stmt; /* prepared, reset after every use */
} gm__stmt;

struct gm__ledger {
  sqlite3 *db;                    /* the connection */
  int readonly;                   /* opened SQLITE_OPEN_READONLY */
  gm__stmt cache[GM__STMT_CACHE]; /* prepared statements */
  size_t ncache;                  /* entries in use */
  size_t evict;                   /* next entry to replace when full */
};

static const char gm__core_schema[] =
    "CREATE TABLE IF NOT EXISTS gm_schema("
    " market TEXT PRIMARY KEY,"
    " version INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS gm_settled("
    " stream TEXT NOT NULL,"
    " id TEXT NOT NULL,"
    " kind TEXT NOT NULL,"
    " settled_ms INTEGER NOT NULL,"
    " PRIMARY KEY(stream, id)) WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS gm_dead_letter("
    " stream TEXT NOT NULL,"
    " id TEXT NOT NULL,"
    " market TEXT NOT NULL,"
    " kind TEXT NOT NULL,"
    " error TEXT NOT NULL,"
    " failures INTEGER NOT NULL,"
    " set_aside_ms INTEGER NOT NULL,"
    " PRIMARY KEY(stream, id)) WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS gm_dead_letter_field("
    " stream TEXT NOT NULL,"
    " id TEXT NOT NULL,"
    " n INTEGER NOT NULL,"
    " name TEXT NOT NULL,"
    " value TEXT NOT NULL,"
    " PRIMARY KEY(stream, id, n)) WITHOUT ROWID;";

/* Runs `sql` with sqlite3_exec; 0 or -1 with err. */
static int gm__exec(sqlite3 *db, const char *sql, char *err, size_t errlen) {
  char *msg = NULL;
  if (sqlite3_exec(db, sql, NULL, NULL, &msg) == SQLITE_OK) return 0;
  snprintf(err, errlen, "%s", msg ? msg : sqlite3_errmsg(db));
  sqlite3_free(msg);
  return -1;
}

gm__ledger *gm__ledger_open(const char *path, int readonly, char *err,
                            size_t errlen) {
  gm__ledger *l = calloc(1, sizeof *l);
  if (!l) abort();
  l->readonly = readonly;
  /* Each connection belongs to one thread (a worker, the settler, the
     timers, the broker during start-up): SQLite's own locking per call is
     not needed. */
  int flags = (readonly ? SQLITE_OPEN_READONLY
                        : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE) |
              SQLITE_OPEN_NOMUTEX;
  char why[512];
  if (sqlite3_open_v2(path, &l->db, flags, NULL) != SQLITE_OK) {
    snprintf(err, errlen, "cannot open the ledger %s%s: %s%s", path,
             readonly ? " read-only" : "",
             l->db ? sqlite3_errmsg(l->db) : "out of memory",
             readonly ? " (the settlement writer creates it; start it first)"
                      : "; check the folder exists and is writable");
    goto fail;
  }
  sqlite3_extended_result_codes(l->db, 1);
  /* Writers wait for each other (settler, migrations, a second gmd)
     instead of failing with SQLITE_BUSY at once. */
  sqlite3_busy_timeout(l->db, 5000);
  if (gm__exec(l->db, "PRAGMA foreign_keys=ON", why, sizeof why) != 0) {
    snprintf(err, errlen, "ledger %s: %s", path, why);
    goto fail;
  }
  if (!readonly) {
    /* WAL is a property of the file: readers see it without setting it. */
    sqlite3_stmt *st = NULL;
    int wal = 0;
    if (sqlite3_prepare_v2(l->db, "PRAGMA journal_mode=WAL", -1, &st, NULL) ==
            SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW) {
      const char *mode = (const char *)sqlite3_column_text(st, 0);
      wal = mode && strcmp(mode, "wal") == 0;
    }
    sqlite3_finalize(st);
    if (!wal) {
      snprintf(err, errlen,
               "ledger %s: cannot switch to WAL mode (%s); the file system "
               "must support shared memory (not NFS)",
               path, sqlite3_errmsg(l->db));
      goto fail;
    }
    if (gm__exec(l->db, "PRAGMA synchronous=NORMAL", why, sizeof why) != 0 ||
        gm__exec(l->db, gm__core_schema, why, sizeof why) != 0) {
      snprintf(err, errlen, "ledger %s: creating the core tables: %s", path,
               why);
      goto fail;
    }
  }
  return l;
fail:
  gm__ledger_close(&l);
  return NULL;
}

void gm__ledger_close(gm__ledger **lp) {
  if (!lp || !*lp) return;
  gm__ledger *l = *lp;
  for (size_t i = 0; i < l->ncache; i++) {
    sqlite3_finalize(l->cache[i].stmt);
    free(l->cache[i].sql);
  }
  sqlite3_close(l->db);
  free(l);
  *lp = NULL;
}

sqlite3 *gm__ledger_db(gm__ledger *l) {
  return l->db;
}

/*
 * The cached statement for `sql`, prepared on first use; NULL and err when
 * it does not compile.  When the cache is full the entries are replaced in
 * turn, which only costs a prepare for callers with many distinct texts.
 */
static sqlite3_stmt *gm__stmt_get(gm__ledger *l, const char *sql, char *err,
                                  size_t errlen) {
  uint64_t h = gm__hash(sql);
  for (size_t i = 0; i < l->ncache; i++)
    if (l->cache[i].hash == h && strcmp(l->cache[i].sql, sql) == 0) {
      /* In use further up the stack (a query run from a row callback):
         that one gets a statement of its own. */
      if (!sqlite3_stmt_busy(l->cache[i].stmt)) return l->cache[i].stmt;
      break;
    }
  sqlite3_stmt *st = NULL;
  const char *tail = NULL;
  if (sqlite3_prepare_v3(l->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &st,
                         &tail) != SQLITE_OK) {
    snprintf(err, errlen, "%s", sqlite3_errmsg(l->db));
    sqlite3_finalize(st);
    return NULL;
  }
  if (!st) {
    snprintf(err, errlen, "the SQL text holds no statement");
    return NULL;
  }
  while (tail && (*tail == ' ' || *tail == '\n' || *tail == '\t' ||
                  *tail == '\r' || *tail == ';'))
    tail++;
  if (tail && *tail) {
    /* Only the first would run: say so rather than skip the rest. */
    snprintf(err, errlen,
             "one statement per call; the text goes on with: %.40s", tail);
    sqlite3_finalize(st);
    return NULL;
  }
  gm__stmt *e;
  if (l->ncache < GM__STMT_CACHE) {
    e = &l->cache[l->ncache++];
  } else {
    e = &l->cache[l->evict];
    if (sqlite3_stmt_busy(e->stmt)) return st; /* private: finalized after */
    l->evict = (l->evict + 1) % GM__STMT_CACHE;
    sqlite3_finalize(e->stmt);
    free(e->sql);
  }
  e->hash = h;
  e->sql = strdup(sql);
  if (!e->sql) abort();
  e->stmt = st;
  return st;
}

/* Binds params; 0 or -1 with err (wrong count, bad value). */
static int gm__bind(sqlite3_stmt *st, const gm_param *params, size_t n,
                    char *err, size_t errlen) {
  int want = sqlite3_bind_parameter_count(st);
  if ((size_t)want != n) {
    snprintf(err, errlen, "the statement has %d parameters but %zu were given",
             want, n);
    return -1;
  }
  for (size_t i = 0; i < n; i++) {
    int rc, col = (int)i + 1;
    switch (params[i].type) {
      case GM_PARAM_INT:
        rc = sqlite3_bind_int64(st, col, params[i].i);
        break;
      case GM_PARAM_TEXT:
        rc = params[i].s
                 ? sqlite3_bind_text(st, col, params[i].s, -1, SQLITE_TRANSIENT)
                 : sqlite3_bind_null(st, col);
        break;
      case GM_PARAM_NULL:
        rc = sqlite3_bind_null(st, col);
        break;
      default:
        snprintf(err, errlen, "parameter %d has unknown type %d", col,
                 (int)params[i].type);
        return -1;
    }
    if (rc != SQLITE_OK) {
      snprintf(err, errlen, "binding parameter %d: %s", col,
               sqlite3_errstr(rc));
      return -1;
    }
  }
  return 0;
}

/* Done with a statement from gm__stmt_get: a cached one is reset for the
   next use (which also ends its read snapshot, so WAL checkpoints can run),
   a private one is finalized. */
static void gm__stmt_done(gm__ledger *l, sqlite3_stmt *st) {
  for (size_t i = 0; i < l->ncache; i++)
    if (l->cache[i].stmt == st) {
      sqlite3_reset(st);
      sqlite3_clear_bindings(st);
      return;
    }
  sqlite3_finalize(st);
}

gm_status gm__ledger_migrate(gm__ledger *l, const char *market,
                             const gm_migration *migrations, size_t n,
                             char *err, size_t errlen) {
  for (size_t i = 0; i < n; i++) {
    if (migrations[i].version <= 0 || !migrations[i].sql ||
        (i > 0 && migrations[i].version <= migrations[i - 1].version)) {
      snprintf(err, errlen,
               "ledger migrations of %s must have versions 1, 2, ... in "
               "increasing order, each with SQL (entry %zu has version %d)",
               market, i, migrations[i].version);
      return GM_INVALID_ARGUMENT;
    }
  }
  char why[512];
  sqlite3_stmt *get = gm__stmt_get(
      l, "SELECT version FROM gm_schema WHERE market = ?1", why, sizeof why);
  sqlite3_stmt *set = gm__stmt_get(
      l,
      "INSERT INTO gm_schema(market, version) VALUES(?1, ?2) "
      "ON CONFLICT(market) DO UPDATE SET version = excluded.version",
      why, sizeof why);
  if (!get || !set) {
    snprintf(err, errlen, "ledger migrations of %s: %s", market, why);
    return GM_INTERNAL;
  }
  sqlite3_bind_text(get, 1, market, -1, SQLITE_TRANSIENT);
  int64_t current = 0;
  int rc = sqlite3_step(get);
  if (rc == SQLITE_ROW) current = sqlite3_column_int64(get, 0);
  gm__stmt_done(l, get);
  if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
    snprintf(err, errlen, "ledger migrations of %s: reading gm_schema: %s",
             market, sqlite3_errmsg(l->db));
    return GM_INTERNAL;
  }
  if (n > 0 && current > migrations[n - 1].version)
    gm__log(GM_LOG_WARN, market,
            "the ledger is at schema version %lld but this plugin knows only "
            "up to %d: it is older than the ledger",
            (long long)current, migrations[n - 1].version);

  for (size_t i = 0; i < n; i++) {
    const gm_migration *m = &migrations[i];
    if (m->version <= current) continue;
    /* IMMEDIATE: take the write lock now so another gmd migrating the same
       file waits here instead of failing half-way. */
    if (gm__exec(l->db, "BEGIN IMMEDIATE", why, sizeof why) != 0) {
      snprintf(err, errlen, "ledger migration %s version %d: BEGIN: %s", market,
               m->version, why);
      return GM_INTERNAL;
    }
    /* Read the version again under the lock: another gmd may have applied
       this migration while this one waited for it. */
    sqlite3_bind_text(get, 1, market, -1, SQLITE_TRANSIENT);
    rc = sqlite3_step(get);
    if (rc == SQLITE_ROW) current = sqlite3_column_int64(get, 0);
    gm__stmt_done(l, get);
    if (m->version <= current) {
      gm__exec(l->db, "ROLLBACK", NULL, 0);
      continue;
    }
    if (gm__exec(l->db, m->sql, why, sizeof why) != 0) {
      gm__exec(l->db, "ROLLBACK", NULL, 0);
      snprintf(err, errlen,
               "ledger migration %s version %d failed: %s; fix that "
               "migration's SQL (versions up to %lld are applied)",
               market, m->version, why, (long long)current);
      return GM_INTERNAL;
    }
    sqlite3_bind_text(set, 1, market, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(set, 2, m->version);
    rc = sqlite3_step(set);
    gm__stmt_done(l, set);
    if (rc != SQLITE_DONE || gm__exec(l->db, "COMMIT", why, sizeof why) != 0) {
      if (rc != SQLITE_DONE)
        snprintf(why, sizeof why, "%s", sqlite3_errmsg(l->db));
      gm__exec(l->db, "ROLLBACK", NULL, 0);
      snprintf(err, errlen,
               "ledger migration %s version %d: recording it failed: %s",
               market, m->version, why);
      return GM_INTERNAL;
    }
    current = m->version;
    gm__log(GM_LOG_INFO, market, "ledger schema migrated to version %d",
            m->version);
  }
  return GM_OK;
}

gm_status gm__ledger_exec(gm_ledger *tx, const char *sql,
                          const gm_param *params, size_t nparams) {
  char why[200];
  sqlite3_stmt *st = gm__stmt_get(tx->ledger, sql, why, sizeof why);
  if (!st) {
    gm__count(GM__COUNT_LEDGER_ERRORS);
    snprintf(tx->err, sizeof tx->err, "%s in: %.40s", why, sql);
    return GM_INTERNAL;
  }
  if (gm__bind(st, params, nparams, why, sizeof why) != 0) {
    gm__count(GM__COUNT_LEDGER_ERRORS);
    gm__stmt_done(tx->ledger, st);
    snprintf(tx->err, sizeof tx->err, "%s in: %.40s", why, sql);
    return GM_INTERNAL;
  }
  int rc;
  /* Rows (INSERT ... RETURNING) are stepped over: exec only writes. */
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
  }
  if (rc != SQLITE_DONE) {
    gm__count(GM__COUNT_LEDGER_ERRORS);
    snprintf(tx->err, sizeof tx->err, "%s in: %.40s",
             sqlite3_errmsg(gm__ledger_db(tx->ledger)), sql);
  }
  gm__stmt_done(tx->ledger, st);
  return rc == SQLITE_DONE ? GM_OK : GM_INTERNAL;
}

gm_status gm__ledger_query(gm_call *call, const char *sql,
                           const gm_param *params, size_t nparams, gm_row_fn fn,
                           void *arg) {
  if (!call->reader)
    return gm__call_fail(call, GM_INTERNAL,
                         "this call has no ledger connection (host bug)");
  char why[300];
  sqlite3_stmt *st = gm__stmt_get(call->reader, sql, why, sizeof why);
  if (!st) {
    gm__count(GM__COUNT_LEDGER_ERRORS);
    return gm__call_fail(call, GM_INTERNAL, "ledger query does not compile: %s",
                         why);
  }
  if (!sqlite3_stmt_readonly(st))
    return gm__call_fail(call, GM_INVALID_ARGUMENT,
                         "ledger_query runs read-only statements; write from "
                         "a settle callback with ledger_exec");
  if (gm__bind(st, params, nparams, why, sizeof why) != 0) {
    gm__count(GM__COUNT_LEDGER_ERRORS);
    gm__stmt_done(call->reader, st);
    return gm__call_fail(call, GM_INTERNAL, "ledger query: %s", why);
  }
  int ncols = sqlite3_column_count(st), rc;
  gm_param *cols =
      gm__arena_alloc(call->arena, (size_t)(ncols ? ncols : 1) * sizeof *cols);
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    for (int i = 0; i < ncols; i++) {
      switch (sqlite3_column_type(st, i)) {
        case SQLITE_INTEGER:
          cols[i] = GM_INT(sqlite3_column_int64(st, i));
          break;
        case SQLITE_NULL:
          cols[i] = GM_NULL;
          break;
        default: {
          /* Text, blobs and reals arrive as text; amounts are integers. */
          const char *s = (const char *)sqlite3_column_text(st, i);
          int len = sqlite3_column_bytes(st, i);
          cols[i] = GM_TEXT(
              gm__arena_strndup(call->arena, s ? s : "", s ? (size_t)len : 0));
        }
      }
    }
    call->in_query++;
    int stop = fn && fn(arg, (size_t)ncols, cols) != 0;
    call->in_query--;
    if (stop) {
      rc = SQLITE_DONE;
      break;
    }
  }
  gm_status status = GM_OK;
  if (rc != SQLITE_DONE) {
    gm__count(GM__COUNT_LEDGER_ERRORS);
    status = gm__call_fail(call, GM_INTERNAL, "ledger query failed: %s",
                           sqlite3_errmsg(gm__ledger_db(call->reader)));
  }
  gm__stmt_done(call->reader, st);
  return status;
}
