/*
 * Ledger service: the SQLite book of record.  One writer connection (the
 * settler's; migrations at init use one too) and a read-only connection per
 * worker thread.  Prepared statements are cached per connection by SQL text
 * and owner because the settler runs the same few statements thousands of
 * times.
 *
 * Boundaries: each market reads and writes only its own tables.  Every
 * connection has an authorizer that applies the rules of the market whose
 * statement is being prepared or run (l->owner; NULL while the broker runs
 * its own, which may do anything):
 *   - tables, views, indexes and triggers are named "<market>_..." (SQLite
 *     compares names without case); gm_* belong to the broker, sqlite_* to
 *     SQLite, which reads and writes its schema tables (and sqlite_sequence
 *     during schema changes) as it needs;
 *   - the schema changes only in the market's migrations; a migration may
 *     not rename a table out of its prefix, reference another's table
 *     with a foreign key or change another's AUTOINCREMENT counter in
 *     sqlite_sequence (checked after it ran);
 *   - ATTACH, DETACH, transactions, savepoints, ANALYZE and pragmas other
 *     than reading its own tables' layout are refused.
 * SQLite authorizes at prepare time, and prepares again at step time after
 * a schema change: so the owner is set around both, and a cached statement
 * prepared for one owner is never handed to another.
 */
#include "ledger.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "call.h"
#include "counters.h"
#include "hash.h"
#include "log.h"
#include "market.h"
#include "utf8.h"

/* Cached statements per connection; plugins use a handful each. */
#define GM__STMT_CACHE 128

typedef struct gm__stmt {
  uint64_t hash;      /* of owner and sql, to skip most strcmp */
  char *owner;        /* whose rules it was prepared under; NULL: broker */
  char *sql;          /* owned copy of the text */
  const char *src;    /* the caller's pointer it was prepared from */
  sqlite3_stmt *stmt; /* prepared, reset after every use */
} gm__stmt;

struct gm__ledger {
  sqlite3 *db;                    /* the connection */
  int readonly;                   /* opened SQLITE_OPEN_READONLY */
  gm__stmt cache[GM__STMT_CACHE]; /* prepared statements */
  size_t ncache;                  /* entries in use */
  size_t evict;                   /* next entry to replace when full */
  const char *owner;              /* market whose rules apply; NULL: none */
  int ddl;                        /* it runs a migration: schema changes */
  char denied[200];               /* the authorizer's first refusal */
  int scans;                      /* gm__stmt_get refused a full scan */
};

/* [ledger] scan_check: every statement is explained at its first prepare,
   and one whose plan reads a whole table is refused (gm__scan_of). */
static _Atomic int gm__scan_check;

void gm__ledger_set_scan_check(int on) {
  atomic_store(&gm__scan_check, on);
}

/* Whose rules apply while a statement is prepared and run. */
typedef struct gm__scope {
  const char *owner; /* market name; NULL: the broker */
  int ddl;           /* schema changes allowed (a migration) */
  int scans;         /* the outer statement's scan refusal */
} gm__scope;

/* Applies `owner`'s rules (NULL: the broker's) until gm__leave; returns the
   scope to restore, so scopes nest (a query from a row callback). */
static gm__scope gm__enter(gm__ledger *l, const char *owner, int ddl) {
  gm__scope saved = {l->owner, l->ddl, l->scans};
  l->owner = owner;
  l->ddl = ddl;
  l->denied[0] = '\0';
  l->scans = 0;
  return saved;
}

static void gm__leave(gm__ledger *l, gm__scope saved) {
  l->owner = saved.owner;
  l->ddl = saved.ddl;
  l->scans = saved.scans;
}

/* ---- the authorizer ---- */

static int gm__prefixed(const char *name, const char *prefix) {
  return sqlite3_strnicmp(name, prefix, (int)strlen(prefix)) == 0;
}

/* Non-zero when `name` is one of market's: "<market>_" and more. */
static int gm__own(const char *market, const char *name) {
  size_t n = strlen(market);
  return name && sqlite3_strnicmp(name, market, (int)n) == 0 &&
         name[n] == '_' && name[n + 1] != '\0';
}

/* An index SQLite makes for a UNIQUE or PRIMARY KEY constraint of one of
   market's tables: "sqlite_autoindex_<table>_<n>". */
static int gm__own_index(const char *market, const char *name) {
  static const char auto_prefix[] = "sqlite_autoindex_";
  return gm__own(market, name) ||
         (name && gm__prefixed(name, auto_prefix) &&
          gm__own(market, name + sizeof auto_prefix - 1));
}

/* SQLite's schema tables: it reads and writes them itself while preparing
   (and refuses a statement's own writes to them). */
static int gm__schema_table(const char *name) {
  return name && (sqlite3_stricmp(name, "sqlite_master") == 0 ||
                  sqlite3_stricmp(name, "sqlite_schema") == 0 ||
                  sqlite3_stricmp(name, "sqlite_temp_master") == 0 ||
                  sqlite3_stricmp(name, "sqlite_temp_schema") == 0);
}

/* Why `name` is not the market's, as the end of a refusal. */
static void gm__not_own(char *out, size_t len, const char *market,
                        const char *name) {
  if (name && gm__prefixed(name, "gm_"))
    snprintf(out, len,
             "%s may use only tables named %s_*: '%s' belongs to the broker",
             market, market, name);
  else if (name && gm__prefixed(name, "sqlite_"))
    snprintf(out, len,
             "%s may use only tables named %s_*: '%s' is SQLite's own", market,
             market, name ? name : "");
  else
    snprintf(out, len,
             "%s may use only tables named %s_*: '%s' is not one of them",
             market, market, name ? name : "");
}

/* A table-valued function that reads nothing but its arguments, or a
   pragma's (the PRAGMA check that follows decides). */
static int gm__harmless_function_table(const char *name) {
  return name && (sqlite3_stricmp(name, "json_each") == 0 ||
                  sqlite3_stricmp(name, "json_tree") == 0 ||
                  gm__prefixed(name, "pragma_"));
}

/* Pragmas a market may run: the layout of its own tables, and whether the
   file changed (FTS5 asks). */
static int gm__pragma_allowed(const char *market, const char *pragma,
                              const char *arg) {
  static const char *const layout[] = {"table_info",  "table_xinfo",
                                       "index_list",  "index_info",
                                       "index_xinfo", "foreign_key_list"};
  if (sqlite3_stricmp(pragma, "data_version") == 0) return arg == NULL;
  for (size_t i = 0; i < sizeof layout / sizeof *layout; i++)
    if (sqlite3_stricmp(pragma, layout[i]) == 0)
      return gm__own_index(market, arg);
  return 0;
}

/*
 * Why `market` may not do `action` on a1/a2 (sqlite3_set_authorizer's
 * arguments), written to out; 0 when it may.
 */
static int gm__refusal(const char *market, int ddl, int action, const char *a1,
                       const char *a2, char *out, size_t len) {
  const char *table = NULL;  /* a table the action must own */
  const char *object = NULL; /* an index, view or trigger name it must own */
  int schema = 0;            /* a schema change: migrations only */
  switch (action) {
    case SQLITE_SELECT:
    case SQLITE_FUNCTION:
    case SQLITE_RECURSIVE:
      return 0;
    case SQLITE_READ:
    case SQLITE_INSERT:
    case SQLITE_UPDATE:
    case SQLITE_DELETE:
      /* SQLite reads its schema tables to prepare anything, writes them in
         a schema change (refusing a statement's own writes), and reads and
         writes sqlite_sequence, every market's AUTOINCREMENT counters,
         when such a table is dropped or renamed. */
      if (gm__schema_table(a1) ||
          (action == SQLITE_READ && gm__harmless_function_table(a1)) ||
          (ddl && a1 && sqlite3_stricmp(a1, "sqlite_sequence") == 0))
        return 0;
      table = a1;
      break;
    case SQLITE_CREATE_TABLE:
    case SQLITE_CREATE_TEMP_TABLE:
      /* The first AUTOINCREMENT table makes SQLite create it. */
      if (ddl && a1 && sqlite3_stricmp(a1, "sqlite_sequence") == 0) return 0;
      /* fall through */
    case SQLITE_DROP_TABLE:
    case SQLITE_DROP_TEMP_TABLE:
    case SQLITE_CREATE_VTABLE:
    case SQLITE_DROP_VTABLE:
      schema = 1;
      table = a1;
      break;
    case SQLITE_CREATE_VIEW:
    case SQLITE_CREATE_TEMP_VIEW:
    case SQLITE_DROP_VIEW:
    case SQLITE_DROP_TEMP_VIEW:
      schema = 1;
      object = a1;
      break;
    case SQLITE_CREATE_INDEX:
    case SQLITE_CREATE_TEMP_INDEX:
    case SQLITE_DROP_INDEX:
    case SQLITE_DROP_TEMP_INDEX:
    case SQLITE_CREATE_TRIGGER:
    case SQLITE_CREATE_TEMP_TRIGGER:
    case SQLITE_DROP_TRIGGER:
    case SQLITE_DROP_TEMP_TRIGGER:
      schema = 1;
      object = a1;
      table = a2;
      break;
    case SQLITE_ALTER_TABLE:
      schema = 1;
      table = a2;
      break;
    case SQLITE_REINDEX: /* CREATE INDEX asks for it too */
      schema = 1;
      object = a1;
      break;
    case SQLITE_PRAGMA:
      if (gm__pragma_allowed(market, a1, a2)) return 0;
      snprintf(out, len,
               "%s may not run PRAGMA %s%s%s: pragmas other than reading its "
               "own tables' layout act on the whole ledger, which the broker "
               "owns",
               market, a1 ? a1 : "", a2 ? " = " : "", a2 ? a2 : "");
      return 1;
    case SQLITE_TRANSACTION:
    case SQLITE_SAVEPOINT:
      snprintf(out, len,
               "%s may not %s a transaction or savepoint: the broker runs "
               "each migration and each settle batch in a transaction of "
               "its own",
               market, a1 ? a1 : "open");
      return 1;
    case SQLITE_ATTACH:
    case SQLITE_DETACH:
      snprintf(out, len,
               "%s may not attach or detach a database ('%s'): the ledger is "
               "the one file the broker owns",
               market, a1 ? a1 : "");
      return 1;
    case SQLITE_ANALYZE:
      snprintf(out, len,
               "%s may not run ANALYZE: its statistics cover every market's "
               "tables; the operator runs it",
               market);
      return 1;
    default:
      snprintf(out, len, "%s may not do SQLite action %d", market, action);
      return 1;
  }
  if (schema && !ddl) {
    snprintf(out, len,
             "%s may change the schema ('%s') only in its migrations: add "
             "one (gm_host_api.ledger_migrate)",
             market,
             object  ? object
             : table ? table
                     : "");
    return 1;
  }
  if (table && !gm__own(market, table)) {
    gm__not_own(out, len, market, table);
    return 1;
  }
  if (object && !gm__own_index(market, object)) {
    gm__not_own(out, len, market, object);
    return 1;
  }
  return 0;
}

static int gm__authorize(void *arg, int action, const char *a1, const char *a2,
                         const char *db, const char *via) {
  (void)db;
  (void)via;
  gm__ledger *l = arg;
  if (!l->owner) return SQLITE_OK;
  char why[sizeof l->denied];
  if (!gm__refusal(l->owner, l->ddl, action, a1, a2, why, sizeof why))
    return SQLITE_OK;
  /* The first refusal says most: what the statement itself named.  But
     ANALYZE first asks to create SQLite's statistics table: say ANALYZE. */
  if (!l->denied[0] || action == SQLITE_ANALYZE)
    snprintf(l->denied, sizeof l->denied, "%s", why);
  return SQLITE_DENY;
}

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
    " PRIMARY KEY(stream, id, n)) WITHOUT ROWID;"
    /* Which book this file is (id), which tenure of the settle lease last
       wrote it (gen, new at each taking) and how many batches it has
       committed: a broker whose file is another, forked or behind may not
       take the settle lease (lease.c). */
    "CREATE TABLE IF NOT EXISTS gm_book("
    " one INTEGER PRIMARY KEY CHECK(one = 1),"
    " id TEXT NOT NULL,"
    " gen TEXT NOT NULL,"
    " batches INTEGER NOT NULL);"
    "INSERT OR IGNORE INTO gm_book(one, id, gen, batches)"
    " VALUES(1, lower(hex(randomblob(16))), '0', 0);"
    /* The tenure mark and count the current tenure went on from, written
       with its first batch: a holder killed before that batch's mark
       reached Redis still finds its file accepted (lease.c). */
    "CREATE TABLE IF NOT EXISTS gm_book_from("
    " one INTEGER PRIMARY KEY CHECK(one = 1),"
    " gen TEXT NOT NULL,"
    " batches INTEGER NOT NULL);";

/* Non-zero when the call that just failed on l was refused by the
   authorizer (l->denied says why). */
static int gm__refused(gm__ledger *l) {
  return l->denied[0] &&
         (sqlite3_extended_errcode(l->db) & 0xff) == SQLITE_AUTH;
}

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
  /* Defence in depth (found by the security review): no statement may
     corrupt the file through writable_schema or shadow tables, and SQL
     functions named in the schema (views, triggers, defaults) run only if
     they are harmless. */
  sqlite3_db_config(l->db, SQLITE_DBCONFIG_DEFENSIVE, 1, (int *)NULL);
  sqlite3_db_config(l->db, SQLITE_DBCONFIG_TRUSTED_SCHEMA, 0, (int *)NULL);
  sqlite3_set_authorizer(l->db, gm__authorize, l);
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
    free(l->cache[i].owner);
  }
  sqlite3_close(l->db);
  free(l);
  *lp = NULL;
}

sqlite3 *gm__ledger_db(gm__ledger *l) {
  return l->db;
}

static int gm__same_owner(const char *a, const char *b) {
  return a == b || (a && b && strcmp(a, b) == 0);
}

/* A plan line's name after `word` ("MATERIALIZE s", "CO-ROUTINE y"):
   its length, 0 when the line is not one. */
static size_t gm__plan_name(const char *d, const char *word) {
  size_t w = strlen(word);
  if (strncmp(d, word, w) != 0 || d[w] != ' ') return 0;
  return strcspn(d + w + 1, " ");
}

/* 1 when sql holds the comment that says why it scans: outside quotes, so
   that a string literal holding that text exempts nothing. */
static int gm__scan_said(const char *sql) {
  for (const char *p = sql; *p; p++) {
    const char *end = NULL;
    if (*p == '\'' || *p == '"' || *p == '`') { /* '' escapes reopen */
      end = strchr(p + 1, *p);
    } else if (*p == '[') {
      end = strchr(p + 1, ']');
    } else if (!strncmp(p, "/* scan: ", 9)) {
      return 1;
    } else if (p[0] == '/' && p[1] == '*') {
      end = strstr(p + 2, "*/");
      if (end) end++;
    } else if (p[0] == '-' && p[1] == '-') {
      end = strchr(p + 2, '\n');
    } else {
      continue;
    }
    /* Unterminated: a quote SQLite refuses; a comment runs to the end of
       the text, and nothing follows it. */
    if (!end) return 0;
    p = end;
  }
  return 0;
}

/*
 * With [ledger] scan_check on: 1 with why when st's plan reads every row
 * of a table or index ("SCAN t", "SCAN t USING [COVERING] INDEX i"), the
 * read that made a market's trade listing take 72 ms at 300k trades while a
 * test with ten rows passed.  Not a table's: a scan of a constant row, of
 * a table-valued function, or of what the statement built itself (a
 * materialized CTE or view, a subquery's co-routine: the plan names those
 * on a MATERIALIZE or CO-ROUTINE line, and their own reads are checked
 * like any other).  A statement that means to scan says why in its text
 * with an SQL comment opening exactly "slash star scan: ".  Explaining
 * runs under the statement's own owner: the authorizer sees the same
 * reads.
 */
static int gm__scan_of(gm__ledger *l, const char *sql, char *why,
                       size_t whylen) {
  if (!atomic_load(&gm__scan_check) || l->ddl || gm__scan_said(sql)) return 0;
  size_t n = strlen(sql);
  char *text = malloc(n + 20);
  if (!text) abort();
  memcpy(text, "EXPLAIN QUERY PLAN ", 19);
  memcpy(text + 19, sql, n + 1);
  sqlite3_stmt *st = NULL;
  int found = 0;
  /* The plan's lines, copied: names of built results are collected over
     all of them before any SCAN is judged. */
  char **lines = NULL;
  size_t nlines = 0, cap = 0;
  if (sqlite3_prepare_v2(l->db, text, -1, &st, NULL) == SQLITE_OK && st) {
    while (sqlite3_step(st) == SQLITE_ROW) {
      const char *d = (const char *)sqlite3_column_text(st, 3);
      if (!d) continue;
      if (nlines == cap) {
        cap = cap ? 2 * cap : 16;
        lines = realloc(lines, cap * sizeof *lines);
        if (!lines) abort();
      }
      if (!(lines[nlines++] = strdup(d))) abort();
    }
  }
  for (size_t i = 0; i < nlines && !found; i++) {
    const char *d = lines[i];
    if (strncmp(d, "SCAN ", 5) != 0) continue;
    const char *what = d + 5;
    size_t wn = strcspn(what, " ");
    int built = strncmp(what, "CONSTANT ROW", 12) == 0 ||
                strncmp(what, "(subquery", 9) == 0 ||
                strstr(what, "VIRTUAL TABLE") != NULL;
    for (size_t k = 0; k < nlines && !built; k++) {
      size_t m = gm__plan_name(lines[k], "MATERIALIZE");
      const char *name = lines[k] + strlen("MATERIALIZE") + 1;
      if (!m) {
        m = gm__plan_name(lines[k], "CO-ROUTINE");
        name = lines[k] + strlen("CO-ROUTINE") + 1;
      }
      built = m && m == wn && strncmp(name, what, wn) == 0;
    }
    if (built) continue;
    snprintf(why, whylen,
             "its plan reads every row (%.120s), so it slows as the table "
             "grows; give it an index it can search, or say why the scan is "
             "bounded with a comment /* scan: ... */ in the SQL (refused by "
             "[ledger] scan_check); in: %.*s",
             d, (int)gm__utf8_cut(sql, n, 60), sql);
    found = 1;
  }
  for (size_t i = 0; i < nlines; i++) free(lines[i]);
  free(lines);
  sqlite3_finalize(st);
  free(text);
  return found;
}

/*
 * The cached statement for `sql` as l->owner runs it, prepared on first
 * use; NULL and err when it does not compile (or the authorizer refused:
 * then l->denied says why).  The owner is part of the key: SQLite
 * authorizes at prepare time, so a statement the broker prepared must never
 * reach a market, nor one market's another.  When the cache is full the
 * entries are replaced in turn, which only costs a prepare for callers with
 * many distinct texts.
 */
static sqlite3_stmt *gm__stmt_get(gm__ledger *l, const char *sql, char *err,
                                  size_t errlen) {
  const char *owner = l->owner;
  /* Callers mostly pass the same string literal each time: found by its
     address (the text still compared) before hashing it, which showed as
     a tenth of the settler's per-entry instructions. */
  for (size_t i = 0; i < l->ncache; i++)
    if (l->cache[i].src == sql && gm__same_owner(l->cache[i].owner, owner) &&
        strcmp(l->cache[i].sql, sql) == 0 &&
        !sqlite3_stmt_busy(l->cache[i].stmt))
      return l->cache[i].stmt;
  uint64_t h = gm__hash(sql) ^ (owner ? gm__hash(owner) * 31u : 0);
  for (size_t i = 0; i < l->ncache; i++)
    if (l->cache[i].hash == h && gm__same_owner(l->cache[i].owner, owner) &&
        strcmp(l->cache[i].sql, sql) == 0) {
      /* In use further up the stack (a query run from a row callback):
         that one gets a statement of its own. */
      if (!sqlite3_stmt_busy(l->cache[i].stmt)) return l->cache[i].stmt;
      break;
    }
  sqlite3_stmt *st = NULL;
  const char *tail = NULL;
  if (sqlite3_prepare_v3(l->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &st,
                         &tail) != SQLITE_OK) {
    snprintf(err, errlen, "%s",
             l->denied[0] ? l->denied : sqlite3_errmsg(l->db));
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
  if (gm__scan_of(l, sql, err, errlen)) {
    l->scans = 1;
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
    free(e->owner);
  }
  e->hash = h;
  e->src = sql;
  e->sql = strdup(sql);
  e->owner = owner ? strdup(owner) : NULL;
  if (!e->sql || (owner && !e->owner)) abort();
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
                 ? sqlite3_bind_text(st, col, params[i].s, -1, SQLITE_STATIC)
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

/* Column 0 of the rows of `sql` whose column 1, a name, is not `market`'s,
   in the query's order (malloc'd); NULL with err when they cannot be
   read. */
static char **gm__foreign_rows(gm__ledger *l, const char *market,
                               const char *sql, size_t *n, char *err,
                               size_t errlen) {
  sqlite3_stmt *st = NULL;
  char **names = NULL;
  size_t cap = 0;
  *n = 0;
  if (sqlite3_prepare_v2(l->db, sql, -1, &st, NULL) != SQLITE_OK) {
    snprintf(err, errlen, "reading the schema: %s", sqlite3_errmsg(l->db));
    return NULL;
  }
  int rc;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    const char *name = (const char *)sqlite3_column_text(st, 0);
    const char *owner = (const char *)sqlite3_column_text(st, 1);
    if (!name || gm__own_index(market, owner)) continue;
    if (*n == cap) {
      cap = cap ? cap * 2 : 32;
      names = realloc(names, cap * sizeof *names);
      if (!names) abort();
    }
    names[*n] = strdup(name);
    if (!names[(*n)++]) abort();
  }
  sqlite3_finalize(st);
  if (rc != SQLITE_DONE) {
    snprintf(err, errlen, "reading the schema: %s", sqlite3_errmsg(l->db));
    for (size_t i = 0; i < *n; i++) free(names[i]);
    free(names);
    *n = 0;
    return NULL;
  }
  if (!names) {
    names = malloc(sizeof *names);
    if (!names) abort();
  }
  return names;
}

/* Names in the schema that are not `market`'s, sorted. */
static char **gm__foreign_names(gm__ledger *l, const char *market, size_t *n,
                                char *err, size_t errlen) {
  return gm__foreign_rows(l, market,
                          "SELECT name, name FROM sqlite_schema ORDER BY name",
                          n, err, errlen);
}

/*
 * The rows of sqlite_sequence (the AUTOINCREMENT counters of every
 * market's tables, in one table) that are not `market`'s, as
 * "<table>|<seq>", sorted.  SQLite writes that table itself when a market
 * drops or renames one of its own, so the authorizer lets a migration
 * reach it; what it did there is checked after (gm__migration_check).
 */
static char **gm__foreign_sequences(gm__ledger *l, const char *market,
                                    size_t *n, char *err, size_t errlen) {
  if (sqlite3_table_column_metadata(l->db, "main", "sqlite_sequence", NULL,
                                    NULL, NULL, NULL, NULL,
                                    NULL) != SQLITE_OK) {
    *n = 0;
    char **none = malloc(sizeof *none);
    if (!none) abort();
    return none;
  }
  return gm__foreign_rows(l, market,
                          "SELECT name || '|' || seq, name FROM "
                          "sqlite_sequence ORDER BY 1",
                          n, err, errlen);
}

static void gm__free_names(char **names, size_t n) {
  for (size_t i = 0; i < n; i++) free(names[i]);
  free(names);
}

static int gm__cmp_name(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

/*
 * What the authorizer cannot see, checked after a market's migration ran
 * (in its transaction): no name outside the market's prefix appeared (ALTER
 * TABLE ... RENAME TO gives none to check), the other markets' rows of
 * sqlite_sequence are as they were (seq_before), no table of the market's
 * references another's with a foreign key (the broker's deletes would then
 * fail, or reach into the market), and its views read only its tables.
 * 0, or -1 with why.
 */
static int gm__migration_check(gm__ledger *l, const char *market, char **before,
                               size_t nbefore, char **seq_before,
                               size_t nseq_before, char *why, size_t len) {
  size_t nafter = 0;
  char **after = gm__foreign_names(l, market, &nafter, why, len);
  if (!after) return -1;
  int rc = 0;
  for (size_t i = 0; i < nafter && rc == 0; i++) {
    if (sqlite3_stricmp(after[i], "sqlite_sequence") == 0) continue;
    if (!bsearch(&after[i], before, nbefore, sizeof *before, gm__cmp_name)) {
      gm__not_own(why, len, market, after[i]);
      rc = -1;
    }
  }
  gm__free_names(after, nafter);
  if (rc) return rc;
  /* Another's counters exactly as they were: none changed, none gone. */
  after = gm__foreign_sequences(l, market, &nafter, why, len);
  if (!after) return -1;
  for (size_t i = 0; i < nseq_before && rc == 0; i++)
    if (i >= nafter || strcmp(seq_before[i], after[i]) != 0) {
      snprintf(why, len,
               "%s may not change another market's AUTOINCREMENT counter "
               "('%.*s') in sqlite_sequence",
               market, (int)strcspn(seq_before[i], "|"), seq_before[i]);
      rc = -1;
    }
  if (rc == 0 && nafter > nseq_before) {
    snprintf(why, len,
             "%s may not change another market's AUTOINCREMENT counter "
             "('%.*s') in sqlite_sequence",
             market, (int)strcspn(after[nseq_before], "|"), after[nseq_before]);
    rc = -1;
  }
  gm__free_names(after, nafter);
  if (rc) return rc;
  sqlite3_stmt *st = NULL;
  if (sqlite3_prepare_v2(l->db,
                         "SELECT m.name, f.\"table\" FROM sqlite_schema AS m "
                         "JOIN pragma_foreign_key_list(m.name) AS f "
                         "WHERE m.type = 'table'",
                         -1, &st, NULL) != SQLITE_OK) {
    snprintf(why, len, "reading foreign keys: %s", sqlite3_errmsg(l->db));
    return -1;
  }
  int step;
  while (rc == 0 && (step = sqlite3_step(st)) == SQLITE_ROW) {
    const char *child = (const char *)sqlite3_column_text(st, 0);
    const char *parent = (const char *)sqlite3_column_text(st, 1);
    if (gm__own(market, child) && !gm__own(market, parent)) {
      char rule[200];
      gm__not_own(rule, sizeof rule, market, parent);
      snprintf(why, len, "%s (table %s references it with a foreign key)", rule,
               child);
      rc = -1;
    }
  }
  if (rc == 0 && step != SQLITE_DONE) {
    snprintf(why, len, "reading foreign keys: %s", sqlite3_errmsg(l->db));
    rc = -1;
  }
  sqlite3_finalize(st);
  if (rc) return rc;
  /* A view's query is authorized only when something reads the view:
     prepare a read of each of the market's views under its rules now, so a
     view over another's table is refused here rather than at its first
     query. */
  if (sqlite3_prepare_v2(l->db,
                         "SELECT name FROM sqlite_schema WHERE type = 'view'",
                         -1, &st, NULL) != SQLITE_OK) {
    snprintf(why, len, "reading views: %s", sqlite3_errmsg(l->db));
    return -1;
  }
  while (rc == 0 && sqlite3_step(st) == SQLITE_ROW) {
    const char *view = (const char *)sqlite3_column_text(st, 0);
    if (!gm__own(market, view)) continue;
    char *sql = sqlite3_mprintf("SELECT * FROM \"%w\"", view);
    if (!sql) abort();
    sqlite3_stmt *read = NULL;
    gm__scope saved = gm__enter(l, market, 0);
    if (sqlite3_prepare_v2(l->db, sql, -1, &read, NULL) != SQLITE_OK &&
        gm__refused(l)) {
      snprintf(why, len, "%s (view %s reads it)", l->denied, view);
      rc = -1;
    }
    gm__leave(l, saved);
    sqlite3_finalize(read);
    sqlite3_free(sql);
  }
  sqlite3_finalize(st);
  return rc;
}

/* Whether a migration's statement failed for the ledger's storage (the
   disk full, an I/O error, no memory), not for its SQL: the connection's
   last error, read before anything else runs on it. */
static int gm__migration_storage(sqlite3 *db) {
  switch (sqlite3_extended_errcode(db) & 0xff) {
    case SQLITE_FULL:
    case SQLITE_IOERR:
    case SQLITE_NOMEM:
    case SQLITE_CANTOPEN:
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
    case SQLITE_PROTOCOL:
      return 1;
    default:
      return 0;
  }
}

/* Whether BEGIN IMMEDIATE failed for another writer's lock. */
static int gm__migration_busy(sqlite3 *db) {
  int e = sqlite3_extended_errcode(db) & 0xff;
  return e == SQLITE_BUSY || e == SQLITE_LOCKED;
}

/* The monotonic clock, in microseconds. */
static uint64_t gm__migration_now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

int gm__ledger_migrate_wait_ms = 600000;

/* What to do when a migration's storage failed. */
static const char gm__migration_storage_fix[] =
    "free disk space where the ledger is (a migration that rebuilds a table "
    "writes a copy of it, and the -wal file grows by as much, until it "
    "commits: about twice the table's size) or fix the storage";

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
  gm__scope outer = gm__enter(l, NULL, 0);
  sqlite3_stmt *get = gm__stmt_get(
      l, "SELECT version FROM gm_schema WHERE market = ?1", why, sizeof why);
  sqlite3_stmt *set = gm__stmt_get(
      l,
      "INSERT INTO gm_schema(market, version) VALUES(?1, ?2) "
      "ON CONFLICT(market) DO UPDATE SET version = excluded.version",
      why, sizeof why);
  gm__leave(l, outer);
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
       file waits here instead of failing half-way.  Each try waits out the
       busy timeout (5 s); another gmd's migration of a large ledger holds
       the lock for minutes (a table of 2,000,000 rows rebuilt: 34 s on
       a loaded 2-core machine), so a gmd started meanwhile tries again, up
       to gm__ledger_migrate_wait_ms, rather than refuse the plugin and
       serve on without its market. */
    uint64_t waited_since = 0, warned = 0;
    while (gm__exec(l->db, "BEGIN IMMEDIATE", why, sizeof why) != 0) {
      int busy = gm__migration_busy(l->db);
      uint64_t now = gm__migration_now_us();
      if (!waited_since) waited_since = now;
      if (busy &&
          now - waited_since < (uint64_t)gm__ledger_migrate_wait_ms * 1000u) {
        if (!warned || now - warned >= 30u * 1000000u) {
          gm__log(GM_LOG_WARN, market,
                  "ledger migration to version %d waits for the ledger's "
                  "write lock: another writer has held it for over 5 s "
                  "(another gmd migrating it, which takes minutes on a large "
                  "ledger, or a process holding a write transaction); "
                  "waiting up to %d s in all",
                  m->version, gm__ledger_migrate_wait_ms / 1000);
          warned = now;
        }
        continue;
      }
      snprintf(err, errlen, "ledger migration %s version %d: BEGIN: %s%s",
               market, m->version, why,
               busy ? ": another writer held the ledger's write lock "
                      "throughout (another gmd migrating it, which takes "
                      "minutes on a large ledger, or a process holding a "
                      "write transaction); nothing was applied: start this "
                      "gmd again once it is done"
                    : "");
      return busy ? GM_UNAVAILABLE : GM_INTERNAL;
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
    size_t nbefore = 0, nseq = 0;
    char **before = gm__foreign_names(l, market, &nbefore, why, sizeof why);
    char **seq = before
                     ? gm__foreign_sequences(l, market, &nseq, why, sizeof why)
                     : NULL;
    int failed = !before || !seq;
    int refused = 0, storage = 0;
    if (!failed) {
      gm__scope saved = gm__enter(l, market, 1);
      failed = gm__exec(l->db, m->sql, why, sizeof why) != 0;
      storage = failed && gm__migration_storage(l->db);
      if (failed && gm__refused(l)) {
        snprintf(why, sizeof why, "%s", l->denied);
        refused = 1;
      }
      gm__leave(l, saved);
    }
    if (!failed && gm__migration_check(l, market, before, nbefore, seq, nseq,
                                       why, sizeof why) != 0)
      failed = refused = 1;
    gm__free_names(before, nbefore);
    gm__free_names(seq, nseq);
    if (failed) {
      gm__exec(l->db, "ROLLBACK", NULL, 0);
      if (storage && !refused) {
        snprintf(err, errlen,
                 "ledger migration %s version %d failed: %s: the ledger's "
                 "storage failed, not the migration's SQL; nothing of version "
                 "%d was applied (versions up to %lld are): %s, and start gmd "
                 "again",
                 market, m->version, why, m->version, (long long)current,
                 gm__migration_storage_fix);
        return GM_UNAVAILABLE;
      }
      snprintf(err, errlen,
               "ledger migration %s version %d %s: %s; fix that migration's "
               "SQL (versions up to %lld are applied)",
               market, m->version, refused ? "refused" : "failed", why,
               (long long)current);
      return refused ? GM_PERMISSION_DENIED : GM_INTERNAL;
    }
    sqlite3_bind_text(set, 1, market, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(set, 2, m->version);
    rc = sqlite3_step(set);
    gm__stmt_done(l, set);
    if (rc != SQLITE_DONE || gm__exec(l->db, "COMMIT", why, sizeof why) != 0) {
      if (rc != SQLITE_DONE)
        snprintf(why, sizeof why, "%s", sqlite3_errmsg(l->db));
      storage = gm__migration_storage(l->db);
      gm__exec(l->db, "ROLLBACK", NULL, 0);
      snprintf(err, errlen,
               "ledger migration %s version %d: recording it failed: %s%s%s",
               market, m->version, why,
               storage ? "; nothing of it was applied: " : "",
               storage ? gm__migration_storage_fix : "");
      return storage ? GM_UNAVAILABLE : GM_INTERNAL;
    }
    current = m->version;
    gm__log(GM_LOG_INFO, market, "ledger schema migrated to version %d",
            m->version);
  }
  return GM_OK;
}

/* The market whose rules a settle transaction's statements follow; NULL
   while the settler writes its own rows ("gm"). */
static const char *gm__tx_owner(const gm_ledger *tx) {
  return tx->market && *tx->market && strcmp(tx->market, "gm") != 0 ? tx->market
                                                                    : NULL;
}

/* Records why a settle transaction's statement failed in tx->err (a
   refusal counted in tx->refused); returns the status. */
static gm_status gm__tx_failed(gm_ledger *tx, const char *why,
                               const char *sql) {
  gm__ledger *l = tx->ledger;
  gm__count(GM__COUNT_LEDGER_ERRORS);
  if (l->scans) { /* counted like a boundary: the callback cannot ignore it */
    snprintf(tx->err, sizeof tx->err, "%s", why);
    tx->refused++;
    return GM_PERMISSION_DENIED;
  }
  if (gm__refused(l)) {
    snprintf(tx->err, sizeof tx->err, "%s; in: %.60s", l->denied, sql);
    tx->refused++;
    return GM_PERMISSION_DENIED;
  }
  snprintf(tx->err, sizeof tx->err, "%s in: %.40s", why, sql);
  return GM_INTERNAL;
}

gm_status gm__ledger_exec(gm_ledger *tx, const char *sql,
                          const gm_param *params, size_t nparams) {
  gm__ledger *l = tx->ledger;
  gm__scope saved = gm__enter(l, gm__tx_owner(tx), 0);
  char why[512];
  gm_status status = GM_OK;
  sqlite3_stmt *st = gm__stmt_get(l, sql, why, sizeof why);
  if (!st) {
    status = gm__tx_failed(tx, why, sql);
    goto done;
  }
  if (gm__bind(st, params, nparams, why, sizeof why) != 0) {
    gm__stmt_done(l, st);
    status = gm__tx_failed(tx, why, sql);
    goto done;
  }
  int rc;
  /* Rows (INSERT ... RETURNING) are stepped over: exec only writes. */
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
  }
  if (rc != SQLITE_DONE) {
    status = gm__tx_failed(tx, sqlite3_errmsg(l->db), sql);
    /* The storage failed, not the statement: retry the batch, never blame
       the entry for it. */
    switch (rc & 0xff) {
      case SQLITE_FULL:
      case SQLITE_IOERR:
      case SQLITE_BUSY:
      case SQLITE_LOCKED:
      case SQLITE_NOMEM:
      case SQLITE_CANTOPEN:
      case SQLITE_PROTOCOL:
        tx->fault = 1;
        break;
      default:
        break;
    }
  }
  gm__stmt_done(l, st);
done:
  gm__leave(l, saved);
  return status;
}

/*
 * Steps st and hands each row to fn, its columns copied into arena a (text,
 * blobs and reals as text: amounts are integers); fn returning non-zero
 * stops early.  *depth counts the row callbacks running (or NULL).  The
 * last sqlite3_step result: SQLITE_DONE when every row was read or fn
 * stopped.
 */
static int gm__rows(gm__ledger *l, sqlite3_stmt *st, gm__arena *a, gm_row_fn fn,
                    void *arg, unsigned *depth) {
  int ncols = sqlite3_column_count(st), rc;
  gm_param *cols =
      gm__arena_alloc(a, (size_t)(ncols ? ncols : 1) * sizeof *cols);
  for (;;) {
    /* A query run from the row callback may have left its own refusal. */
    l->denied[0] = '\0';
    if ((rc = sqlite3_step(st)) != SQLITE_ROW) return rc;
    for (int i = 0; i < ncols; i++) {
      switch (sqlite3_column_type(st, i)) {
        case SQLITE_INTEGER:
          cols[i] = GM_INT(sqlite3_column_int64(st, i));
          break;
        case SQLITE_NULL:
          cols[i] = GM_NULL;
          break;
        default: {
          const char *s = (const char *)sqlite3_column_text(st, i);
          int len = sqlite3_column_bytes(st, i);
          cols[i] =
              GM_TEXT(gm__arena_strndup(a, s ? s : "", s ? (size_t)len : 0));
        }
      }
    }
    if (depth) (*depth)++;
    int stop = fn && fn(arg, (size_t)ncols, cols) != 0;
    if (depth) (*depth)--;
    if (stop) return SQLITE_DONE;
  }
}

gm_status gm__ledger_query(gm_call *call, const char *sql,
                           const gm_param *params, size_t nparams, gm_row_fn fn,
                           void *arg) {
  gm_status routed;
  if (call->remote && call->remote->query(call->remote, call, sql, params,
                                          nparams, fn, arg, &routed) == 0)
    return routed;
  if (!call->reader)
    return gm__call_fail(call, GM_INTERNAL,
                         "this call has no ledger connection (host bug)");
  gm__ledger *l = call->reader;
  const char *market = call->market ? call->market->name : NULL;
  gm__scope saved = gm__enter(l, market, 0);
  char why[512];
  gm_status status = GM_OK;
  int refused = 0;
  sqlite3_stmt *st = gm__stmt_get(l, sql, why, sizeof why);
  if (!st) {
    gm__count(GM__COUNT_LEDGER_ERRORS);
    refused = gm__refused(l);
    if (l->scans) {
      gm__log(GM_LOG_ERROR, market ? market : "gm", "ledger_query refused: %s",
              why);
      status =
          gm__call_fail(call, GM_INTERNAL, "ledger query refused: %s", why);
    } else if (!refused) {
      status = gm__call_fail(call, GM_INTERNAL,
                             "ledger query does not compile: %s", why);
    }
  } else if (!sqlite3_stmt_readonly(st)) {
    status = gm__call_fail(call, GM_INVALID_ARGUMENT,
                           "ledger_query runs read-only statements; write "
                           "from a settle callback with ledger_exec");
  } else if (gm__bind(st, params, nparams, why, sizeof why) != 0) {
    gm__count(GM__COUNT_LEDGER_ERRORS);
    status = gm__call_fail(call, GM_INTERNAL, "ledger query: %s", why);
  } else {
    int rc = gm__rows(l, st, call->arena, fn, arg, &call->in_query);
    if (rc != SQLITE_DONE) gm__count(GM__COUNT_LEDGER_ERRORS);
    refused = rc != SQLITE_DONE && gm__refused(l);
    if (rc != SQLITE_DONE && !refused)
      status = gm__call_fail(call, GM_INTERNAL, "ledger query failed: %s",
                             sqlite3_errmsg(l->db));
  }
  if (st) gm__stmt_done(l, st);
  if (refused) {
    /* A plugin bug, not the caller's: the log says which query. */
    gm__log(GM_LOG_ERROR, market ? market : "gm",
            "ledger_query refused: %s; in: %.80s", l->denied, sql);
    status = gm__call_fail(call, GM_PERMISSION_DENIED,
                           "ledger query refused: %s", l->denied);
  }
  gm__leave(l, saved);
  return status;
}

gm_status gm__ledger_tx_query(gm_ledger *tx, const char *sql,
                              const gm_param *params, size_t nparams,
                              gm_row_fn fn, void *arg) {
  gm__ledger *l = tx->ledger;
  if (!tx->arena) {
    snprintf(tx->err, sizeof tx->err,
             "this transaction has no memory for rows (host bug)");
    return GM_INTERNAL;
  }
  gm__scope saved = gm__enter(l, gm__tx_owner(tx), 0);
  char why[512];
  gm_status status = GM_OK;
  sqlite3_stmt *st = gm__stmt_get(l, sql, why, sizeof why);
  if (!st) {
    status = gm__tx_failed(tx, why, sql);
  } else if (!sqlite3_stmt_readonly(st)) {
    snprintf(tx->err, sizeof tx->err,
             "ledger_tx_query runs read-only statements; write with "
             "ledger_exec; in: %.40s",
             sql);
    status = GM_INVALID_ARGUMENT;
  } else if (gm__bind(st, params, nparams, why, sizeof why) != 0) {
    status = gm__tx_failed(tx, why, sql);
  } else {
    int rc = gm__rows(l, st, tx->arena, fn, arg, NULL);
    if (rc != SQLITE_DONE)
      status = gm__tx_failed(tx, sqlite3_errmsg(l->db), sql);
  }
  if (st) gm__stmt_done(l, st);
  if (status == GM_PERMISSION_DENIED)
    gm__log(GM_LOG_ERROR, gm__tx_owner(tx) ? gm__tx_owner(tx) : "gm",
            "ledger_tx_query refused: %s", tx->err);
  gm__leave(l, saved);
  return status;
}
