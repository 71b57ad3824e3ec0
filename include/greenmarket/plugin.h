/*
 * greenmarket plugin SDK: the one header a market plugin includes.
 *
 * A plugin is a shared object that exports two functions, made by
 * GM_PLUGIN_DEFINE():
 *
 *   gm_plugin_magic()  the ABI stamp, checked exactly before anything else;
 *   gm_plugin_entry()  the plugin description: name, methods, callbacks.
 *
 * The host never links against the plugin and the plugin links no host
 * symbol: everything the plugin may ask of the host comes through the
 * gm_host_api table handed to init().  Structs that cross the boundary start
 * with their size and only ever grow at their end, so a plugin built against
 * an older SDK keeps loading into a newer host with the same ABI version.
 *
 * See docs/plugins.md for the worked example and the threading rules.
 *
 * Header-only helpers any market may include beside this one (they need no
 * host and link nothing):
 *
 *   greenmarket/uscc.h  the unified social credit code check (GB 32100-2015)
 */
#ifndef GREENMARKET_PLUGIN_H
#define GREENMARKET_PLUGIN_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <protobuf-c/protobuf-c.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Bumped on any change that is not an append at the end of a struct. */
#define GM_PLUGIN_ABI_VERSION 1u
/* "GMPL": guards against loading a shared object that is no plugin at all. */
#define GM_PLUGIN_MAGIC 0x474d504cu

/* The reply status set, numbered as gRPC numbers them
 * (proto/greenmarket.proto). */
typedef enum gm_status {
  GM_OK = 0,
  GM_INVALID_ARGUMENT = 3,
  GM_NOT_FOUND = 5,
  GM_ALREADY_EXISTS = 6,
  GM_PERMISSION_DENIED = 7,
  GM_RESOURCE_EXHAUSTED = 8,
  GM_FAILED_PRECONDITION = 9,
  GM_UNIMPLEMENTED = 12,
  GM_INTERNAL = 13,
  GM_UNAVAILABLE = 14
} gm_status;

typedef enum gm_log_level {
  GM_LOG_DEBUG = 0,
  GM_LOG_INFO = 1,
  GM_LOG_WARN = 2,
  GM_LOG_ERROR = 3
} gm_log_level;

/* Opaque host objects. */
typedef struct gm_market gm_market; /* one loaded plugin, as the host sees it */
typedef struct gm_call gm_call;     /* one request (or timer tick) in flight */
typedef struct gm_ledger gm_ledger; /* an open SQLite settlement transaction */
struct gm_cli_extension;            /* friendly commands (greenmarket/cli.h) */

/* A Redis script reply, converted from the wire; lives in the call's arena. */
typedef enum gm_value_type {
  GM_VALUE_NIL = 0,
  GM_VALUE_INT = 1,
  GM_VALUE_STR = 2, /* bulk or status string */
  GM_VALUE_ARRAY = 3
} gm_value_type;

typedef struct gm_value {
  gm_value_type type;
  long long integer;            /* GM_VALUE_INT */
  const char *str;              /* GM_VALUE_STR: NUL-terminated copy */
  size_t len;                   /* GM_VALUE_STR: length without the NUL */
  size_t n;                     /* GM_VALUE_ARRAY: number of items */
  const struct gm_value *items; /* GM_VALUE_ARRAY: the items */
} gm_value;

/* A bound SQL parameter or a column read back from the ledger. */
typedef enum gm_param_type {
  GM_PARAM_NULL = 0,
  GM_PARAM_INT = 1,
  GM_PARAM_TEXT = 2
} gm_param_type;

typedef struct gm_param {
  gm_param_type type;
  int64_t i;
  const char *s; /* GM_PARAM_TEXT, NUL-terminated */
} gm_param;

#define GM_INT(v) ((gm_param){GM_PARAM_INT, (int64_t)(v), NULL})
#define GM_TEXT(v) ((gm_param){GM_PARAM_TEXT, 0, (v)})
#define GM_NULL ((gm_param){GM_PARAM_NULL, 0, NULL})

/* One row of a ledger query; return non-zero to stop early. */
typedef int (*gm_row_fn)(void *arg, size_t ncols, const gm_param *cols);

/* One ledger migration: applied once, in version order, in one transaction. */
typedef struct gm_migration {
  int version; /* 1, 2, 3 ... per market */
  const char *sql;
} gm_migration;

/*
 * A role a market uses in its methods' `roles` (gm_plugin.roles).  The
 * broker accepts the union of every loaded market's roles plus its own
 * "admin"; `gm admin register` refuses any other.  Declared in arrays: no
 * size field, never grows.
 */
typedef struct gm_role {
  const char *name;    /* [a-z][a-z0-9_]*, at most 32 characters */
  const char *summary; /* one line: who holds it, what it lets them do */
} gm_role;

/* Who may receive a published event (gm_host_api.publish_to). */
typedef enum gm_audience {
  GM_AUDIENCE_PUBLIC = 0,      /* every subscriber (as publish) */
  GM_AUDIENCE_PARTICIPANT = 1, /* one participant id */
  GM_AUDIENCE_ROLE = 2         /* every holder of one role */
} gm_audience;

/*
 * A deadline that fell due, handed to the market's deadline callback.  The
 * call the callback gets runs like a request (scripts, outbox, publish,
 * ledger reads) with the host as its participant (""), and an idempotency
 * key of its own ("dl.<kind>.<id>.<due_ms>.<n>", n numbering the firings of
 * the tag's deadlines): if the broker firing it dies before it finishes,
 * another broker fires it again (attempt + 1) under the same key and every
 * script step that had run returns its stored reply, so its effects happen
 * once.  A deadline the callback sets again, even for the time it fires at,
 * fires again as a new firing (a new n), not as a replay.
 */
typedef struct gm_deadline {
  size_t size;      /* sizeof(gm_deadline) as the host was built */
  const char *kind; /* as registered with deadline_register */
  const char *tag;  /* the entity's hash tag, as given to script_run */
  const char *id;   /* the entity within the tag */
  int64_t due_ms;   /* when it was due (host clock) */
  unsigned attempt; /* 1, or more when fired again after a failure */
} gm_deadline;

/*
 * One outbox entry handed to a plugin's settle callback.  The fields are the
 * name/value pairs the plugin's script passed to gm.emit(kind, ...).
 */
typedef struct gm_outbox_entry {
  const char *stream;  /* the outbox stream key */
  const char *id;      /* the stream entry id: with stream, the event id */
  const char *kind;    /* first argument of gm.emit */
  size_t nfields;      /* number of name/value pairs after kind */
  const char **names;  /* field names */
  const char **values; /* field values, NUL-terminated */
} gm_outbox_entry;

/* The value of field `name` in an outbox entry, or NULL. */
static inline const char *gm_entry_field(const gm_outbox_entry *e,
                                         const char *name) {
  for (size_t i = 0; i < e->nfields; i++) {
    const char *a = e->names[i], *b = name;
    while (*a && *a == *b) {
      a++;
      b++;
    }
    if (*a == *b) return e->values[i];
  }
  return NULL;
}

/* Method flags.  MUTATING: needs an idempotency key; may change state. */
#define GM_METHOD_MUTATING 0x1u

/*
 * A method handler.  `req` is the decoded request (of method->request type,
 * already validated by protobuf-c); on GM_OK the handler sets *reply to a
 * message of method->reply type allocated with host->alloc (or a static one).
 * On failure it returns host->fail(call, status, "what was wrong; how to fix").
 */
typedef gm_status (*gm_handler_fn)(gm_call *call, const ProtobufCMessage *req,
                                   ProtobufCMessage **reply);

/*
 * One method.  Plugins declare these in arrays and the struct has no size
 * field, so it never grows: per-method data added later comes as a parallel
 * array appended to gm_plugin (read only when gm_plugin.size covers it).
 */
typedef struct gm_method {
  const char *name;                          /* e.g. "order.place" */
  const ProtobufCMessageDescriptor *request; /* request body type */
  const ProtobufCMessageDescriptor *reply;   /* reply body type */
  gm_handler_fn handle;                      /* mandatory */
  unsigned flags;                            /* GM_METHOD_* */
  const char *roles;   /* "buyer,seller": caller needs one; NULL: any */
  const char *summary; /* one line for `gm <market> --help` */
} gm_method;

/* A periodic timer callback; the call has a Redis connection of its own. */
typedef void (*gm_timer_fn)(gm_call *call, void *arg);

/*
 * A settle callback: write the ledger rows for one outbox entry inside the
 * writer's transaction.  The host has already made the entry idempotent on
 * its event id; return non-GM_OK to roll the whole batch back and retry.
 */
typedef gm_status (*gm_settle_fn)(gm_market *m, gm_ledger *tx,
                                  const gm_outbox_entry *entry);

/*
 * A deadline callback.  GM_OK: done, the deadline is removed (unless it was
 * moved or set again meanwhile, by the callback or anyone: then it fires
 * again at its time).  Anything else: logged with the message, and fired
 * again once the claim expired ([deadlines] claim_ms, attempt + 1), so it
 * must be safe to repeat.  Callbacks run one at a time on the broker's
 * deadline thread, concurrently with handlers (docs/plugins.md).
 */
typedef gm_status (*gm_deadline_fn)(gm_call *call, const gm_deadline *d,
                                    void *arg);

/*
 * The host services.  Every function is safe to call from any thread the
 * host calls the plugin on.  Functions taking a gm_call work only during that
 * call; functions taking a gm_market work from init() until shutdown().
 * Those marked "from init only" (script_register*, ledger_migrate,
 * settle_register, timer_add, deadline_register) return
 * GM_FAILED_PRECONDITION after init returned, and log why.
 */
typedef struct gm_host_api {
  size_t size;          /* sizeof(gm_host_api) as the host was built */
  unsigned abi_version; /* GM_PLUGIN_ABI_VERSION of the host */

  /* -- log, config, clock -- */
  void (*log)(gm_market *m, gm_log_level level, const char *fmt, ...)
      __attribute__((format(printf, 3, 4)));
  /* Value of `key` in the [market.<name>] config section, or `def`. */
  const char *(*config)(gm_market *m, const char *key, const char *def);
  /* Milliseconds since the epoch; injectable for tests ([testing] clock). */
  int64_t (*now_ms)(gm_market *m);

  /* -- the call in flight -- */
  /* Zeroed memory freed after the reply is sent; never NULL. */
  void *(*alloc)(gm_call *call, size_t size);
  char *(*sprintf)(gm_call *call, const char *fmt, ...)
      __attribute__((format(printf, 2, 3)));
  /* Records the error message for the reply and returns `status`. */
  gm_status (*fail)(gm_call *call, gm_status status, const char *fmt, ...)
      __attribute__((format(printf, 3, 4)));
  /* The authenticated participant id (never chosen by the request). */
  const char *(*participant)(gm_call *call);
  /* Non-zero when the caller holds `role` (admin holds every role). */
  int (*has_role)(gm_call *call, const char *role);
  /* The envelope's idempotency key ("" for reads). */
  const char *(*idempotency_key)(gm_call *call);
  gm_market *(*market)(gm_call *call);

  /* -- Redis: live state, changed only by registered scripts -- */
  /*
   * Registers a Lua script under `name` (from init only).  The host wraps it
   * so that, inside the script:
   *   KEYS / ARGV      are the plugin's own keys and arguments;
   *   gm.now           the host clock in ms (never use Redis TIME);
   *   gm.participant   the caller;
   *   gm.emit(kind, f1, v1, ...)  appends to this tag's outbox stream in the
   *                    same atomic step (settled later by the settle callback);
   *   gm.reject(status, msg)      returns an error reply "STATUS msg";
   * and a mutating call's reply is stored under its idempotency key, so a
   * retry returns the first reply and changes nothing.  Each script run of
   * one call is a step with its own stored reply: a call may run scripts
   * several times (for example to continue past a per-run bound), and a
   * retry replays the steps that ran and runs the ones that did not, as long
   * as the plugin decides its next step only from the replies it got.
   */
  gm_status (*script_register)(gm_market *m, const char *name, const char *lua);
  /*
   * Runs script `name` with keys "gm:{<market>:<tag>}:<key>", so every key
   * shares one Redis Cluster hash tag.  A "STATUS message" error reply becomes
   * that status with the message recorded by fail().  *reply lives in the call.
   */
  gm_status (*script_run)(gm_call *call, const char *name, const char *tag,
                          size_t nkeys, const char *const *keys, size_t nargs,
                          const char *const *args, const gm_value **reply);

  /* -- ledger (SQLite): the book of record -- */
  /* Applies the market's migrations not yet applied (from init only). */
  gm_status (*ledger_migrate)(gm_market *m, const gm_migration *migrations,
                              size_t n);
  /* Registers the callback that settles this market's outbox entries (from
     init only). */
  gm_status (*settle_register)(gm_market *m, gm_settle_fn fn);
  /* Runs one statement inside a settle transaction. */
  gm_status (*ledger_exec)(gm_ledger *tx, const char *sql,
                           const gm_param *params, size_t nparams);
  /* Reads settled records (read-only connection; strings live in the call). */
  gm_status (*ledger_query)(gm_call *call, const char *sql,
                            const gm_param *params, size_t nparams,
                            gm_row_fn fn, void *arg);

  /* -- events and timers -- */
  /* Publishes `msg` on the feed with topic "<market>.<event>". */
  gm_status (*publish)(gm_call *call, const char *event,
                       const ProtobufCMessage *msg);
  /* Calls fn every interval_ms on the host's timer thread (from init only). */
  gm_status (*timer_add)(gm_market *m, const char *name, int64_t interval_ms,
                         gm_timer_fn fn, void *arg);

  /* -- appended: private events, deadlines, ledger reads in a settle -- */
  /*
   * Publishes `msg` as "<market>.<event>" to an audience: everyone
   * (GM_AUDIENCE_PUBLIC, `who` unused), one participant (`who` = its id) or
   * the holders of one role (`who` = the role).  With CURVE on, a private
   * event reaches only subscribers authenticated as that participant or
   * holding that role, whatever they subscribe to (docs/protocol.md, Feed).
   */
  gm_status (*publish_to)(gm_call *call, gm_audience audience, const char *who,
                          const char *event, const ProtobufCMessage *msg);
  /*
   * Registers the callback for deadlines of `kind` ([a-z][a-z0-9_]*, at most
   * 32 characters; from init only).  Deadlines are set, moved and cancelled
   * by scripts in the same atomic step as the entity they belong to:
   *   gm.deadline(kind, id, due_ms)  sets or moves one (same hash tag as
   *                                  the script's keys);
   *   gm.deadline_cancel(kind, id)   removes it;
   *   gm.deadline_get(kind, id)      its due ms, or false;
   * (written when the run ends, and only if it was not refused: a run that
   * returns gm.reject leaves its deadline changes out, whatever order it
   * called them in), or by the two calls below, which run one host script
   * on the tag as a step of the call.  Each deadline is kept in Redis,
   * survives restarts of every broker, fires once across all brokers
   * sharing the Redis (claimed; claimed again if the broker holding it
   * dies), and late ones fire at start-up.  Script names starting with
   * "gm:" are the host's.
   */
  gm_status (*deadline_register)(gm_market *m, const char *kind,
                                 gm_deadline_fn fn, void *arg);
  gm_status (*deadline_set)(gm_call *call, const char *kind, const char *tag,
                            const char *id, int64_t due_ms);
  gm_status (*deadline_cancel)(gm_call *call, const char *kind, const char *tag,
                               const char *id);
  /* Reads the ledger inside a settle transaction (sees its own writes). */
  gm_status (*ledger_tx_query)(gm_ledger *tx, const char *sql,
                               const gm_param *params, size_t nparams,
                               gm_row_fn fn, void *arg);

  /* -- appended: file settings -- */
  /*
   * The value of `key` in [market.<name>] (or `def` when it is not set) as a
   * file path: a relative one is taken relative to the folder of gmd's
   * config file, as gmd's own paths are ([ledger] path, [security]
   * secret_key_file).  Writes it NUL-terminated into out[outlen] and
   * returns 0; returns -1 with out set to "" when neither the key nor `def`
   * gives a path, or when it does not fit.  Check that `size` covers it: a
   * host built before it has no such field.
   */
  int (*config_path)(gm_market *m, const char *key, const char *def, char *out,
                     size_t outlen);

  /* -- appended: Lua code made once, not on every call -- */
  /*
   * Registers script `name` like script_register, after `lib`: Lua code
   * whose top level runs once each time Redis loads the market's scripts
   * (a Redis Functions library), not on every call, so the functions and
   * tables it makes cost nothing per call.  The script sees the lib's
   * locals; the lib's functions see the call's KEYS, ARGV and gm.  At the
   * lib's top level they are nil, and it must not call Redis (it runs
   * inside the first call of the script after a load, and what it read
   * would be kept): anything that belongs to one call (a key
   * derived from KEYS, gm.now, a cache of what this call loaded) must be
   * set per call, by a lib function the script calls first, because what
   * the lib's top level made is kept from call to call.  A script may use
   * at most 57 of the lib's locals (Lua 5.1 allows a function 60 upvalues,
   * and gm, KEYS and ARGV are three; registration refuses more).  Lua
   * messages count the lib's lines, then the script's.
   * Check that `size` covers it: a host built before it has no such field.
   */
  gm_status (*script_register_lib)(gm_market *m, const char *name,
                                   const char *lib, const char *lua);

  /* -- appended: read-only scripts -- */
  /*
   * Registers script `name` like script_register_lib (`lib` may be NULL),
   * with GM_SCRIPT_* flags.  GM_SCRIPT_READ_ONLY: the script never writes
   * (no redis.call of a write command, no gm.emit, no gm.deadline or
   * gm.deadline_cancel).  Redis loads it flagged no-writes and the host
   * runs it with FCALL_RO, so it still runs when Redis is over maxmemory,
   * and Redis refuses any write it tries: the call fails GM_INTERNAL and
   * the gmd log names the script as a plugin bug.  In a mutating call its
   * reply is still kept under the call's idempotency key (the host stores
   * it after the run), so a retry replays it like any other step; when the
   * request ends refused and no step of it other than read-only ones
   * stored a record, the host unlinks theirs (a refusal leaves nothing).
   * GM_SCRIPT_ALLOW_OOM: the script frees memory (it deletes what a step
   * that ended made, and writes at most a few small fields or an outbox
   * entry smaller than what it frees).  Redis loads it flagged allow-oom:
   * it runs when Redis is over maxmemory, where every other write is
   * refused, and nothing in Redis stops it from writing then, so a
   * script that could grow Redis must not be flagged (see plugins.md,
   * "Steps that free memory").  Its reply is not stored for replay (the
   * record would be what it adds over maxmemory): a retry of the call runs
   * it again, so run twice it must do what once does (a step that frees
   * does: what it deleted is gone; what it marks it finds marked).  The
   * deadline claims behind a firing run
   * over maxmemory too, so a deadline whose callback runs only such
   * scripts frees memory when Redis is full.  Both flags together: read
   * only.  A host before session 17 refuses GM_SCRIPT_ALLOW_OOM as an
   * unknown flag (the call returns GM_INVALID_ARGUMENT).
   * Check that `size` covers it: a host built before it has no such field.
   */
  gm_status (*script_register_flags)(gm_market *m, const char *name,
                                     const char *lib, const char *lua,
                                     unsigned flags);

  /* -- appended: events nobody receives, not built -- */
  /*
   * Zero when an event "<market>.<event>" for this audience (as publish_to
   * takes it: GM_AUDIENCE_PUBLIC with `who` unused, or one participant or
   * role) would reach no subscriber now, so the market may skip building
   * and packing it: publish would drop it unsent and uncounted anyway (its
   * feed's seq does not move, docs/protocol.md, Sequence numbers).  Non-zero
   * when it may reach one, and whenever the host is unsure: a bad argument
   * (publish then refuses it with the reason), no feed.  A feed prefix or
   * private audience counts as wanted from the moment the broker receives
   * its first subscription until the broker restarts.  A subscription
   * still on its way to the broker is not seen: the event skipped then is
   * one publish itself would have skipped at that moment, and to the
   * subscriber it is one published before it subscribed (no subscription
   * is acknowledged, and a skipped event takes no seq, so no gap shows).
   * No lock: one relaxed atomic load per prefix of the topic, any thread.
   * Check that `size` covers it (GM_HOST_HAS): a host built before it has
   * no such field; build the event then.
   */
  int (*publish_wanted)(gm_call *call, gm_audience audience, const char *who,
                        const char *event);

  /* -- appended: another participant's roles -- */
  /*
   * 1 when participant `id` holds `role` now (its registered roles in
   * force, admin holding every one), as a call of its own would be
   * authorized; in development mode an unregistered id holds every role,
   * as its calls do.  0 when it does not (or, with CURVE, is not
   * registered), -1 when the registry could not be read (logged; the call
   * goes on).  For a market that acts on a participant other than
   * the caller: a staff member linked to a bank, who must still be one
   * when the bank's private events go out.  One Redis read; from a request,
   * a timer or a deadline callback.  Check that `size` covers it
   * (GM_HOST_HAS).
   */
  int (*participant_has_role)(gm_call *call, const char *id, const char *role);

  /* -- appended: the real clock under a manual one -- */
  /*
   * Under a manual [testing] clock, the real time in ms (this host's clock
   * kept to Redis's, as now_ms reads it when no manual clock is set); 0
   * when now_ms is the real clock.  For what Redis times on its own clock,
   * which a manual clock does not move (a key's PEXPIRE), and which every
   * broker sharing the Redis reads alike, whatever their manual clocks say
   * and across restarts.  Check that `size` covers it (GM_HOST_HAS).
   */
  int64_t (*real_ms)(gm_market *m);
} gm_host_api;

/*
 * A whole-number setting of the market's config section for its init:
 * *out is the value of `key` in [market.<market>], or `def` when the line
 * is absent.  A value that is not a whole number in min..max is logged at
 * ERROR (the setting, what was written, the range in `unit`, e.g. "days",
 * "" for a flag or a count of nothing in particular, and the default) and
 * answers GM_INVALID_ARGUMENT, *out left as it was: the init then fails, so gmd
 * (and `gmd --check`) refuses the market rather than run it on a value the
 * operator did not write.  Check every setting before failing, so one start
 * names them all.
 */
static inline gm_status gm_config_long(gm_market *m, const gm_host_api *h,
                                       const char *market, const char *key,
                                       long def, long min, long max,
                                       const char *unit, long *out) {
  /* Declarations first: a plugin may build with
     -Wdeclaration-after-statement. */
  const char *s = h->config(m, key, NULL);
  char *end;
  long v;
  if (!s) {
    *out = def;
    return GM_OK;
  }
  v = strtol(s, &end, 10);
  if (*s == '\0' || *end != '\0' || v < min || v > max) {
    h->log(m, GM_LOG_ERROR,
           "[market.%s] %s = %s is not a whole number%s%s in %ld..%ld: "
           "write one in that range, or remove the line for the default "
           "(%ld%s%s); the market is not loaded until then",
           market, key, s, unit && *unit ? " of " : "", unit ? unit : "", min,
           max, def, unit && *unit ? " " : "", unit ? unit : "");
    return GM_INVALID_ARGUMENT;
  }
  *out = v;
  return GM_OK;
}

/* Script flags (gm_host_api.script_register_flags). */
#define GM_SCRIPT_READ_ONLY 0x1u
#define GM_SCRIPT_ALLOW_OOM 0x2u

/* Non-zero when the host table `h` has the member `fn` (and it is set):
   for the members appended after the first release. */
#define GM_HOST_HAS(h, fn) \
  ((h)->size >= offsetof(gm_host_api, fn) + sizeof((h)->fn) && (h)->fn)

/* What gm_plugin_magic() returns: compared field by field at load. */
typedef struct gm_plugin_magic_t {
  size_t size;                 /* sizeof(gm_plugin_magic_t) */
  uint32_t magic;              /* GM_PLUGIN_MAGIC */
  uint32_t abi_version;        /* GM_PLUGIN_ABI_VERSION */
  uint32_t protobuf_c_version; /* PROTOBUF_C_VERSION_NUMBER built against */
} gm_plugin_magic_t;

typedef struct gm_plugin {
  size_t size;             /* sizeof(gm_plugin) as the plugin was built */
  const char *name;        /* market name: [a-z][a-z0-9]*, at most 32
                              characters, not "gm" or "sqlite" */
  const char *version;     /* the plugin's own version, e.g. "1.0.0" */
  const char *description; /* one line */
  const gm_method *methods;
  size_t n_methods;
  /* Mandatory: set up scripts, migrations, timers; non-GM_OK refuses load. */
  gm_status (*init)(gm_market *m, const gm_host_api *host);
  /* Mandatory: release what init took; called once, after the last call. */
  void (*shutdown)(gm_market *m);
  /* Optional (read only when size covers it): the message types this market
     publishes on the feed, so clients can decode every event body. */
  const ProtobufCMessageDescriptor *const *events;
  size_t n_events;
  /* Optional: the roles this market's methods name (see gm_role). */
  const gm_role *roles;
  size_t n_roles;
  /* Optional: friendly `gm <market> ...` commands, run inside `gm`
     (include/greenmarket/cli.h). */
  const struct gm_cli_extension *cli;
  /* Optional (read only when size covers it): every key of [market.<name>]
     this market reads, NULL-ended.  Given, gmd refuses the market when its
     section holds another key (a misspelt setting would be read by no one,
     its default used in silence), naming the nearest spelling. */
  const char *const *settings;
} gm_plugin;

#define GM_PLUGIN_EXPORT __attribute__((visibility("default")))

/* Defines the two exported entry points for plugin description `desc`. */
#define GM_PLUGIN_DEFINE(desc)                                             \
  GM_PLUGIN_EXPORT const gm_plugin_magic_t *gm_plugin_magic(void) {        \
    static const gm_plugin_magic_t m = {                                   \
        sizeof(gm_plugin_magic_t), GM_PLUGIN_MAGIC, GM_PLUGIN_ABI_VERSION, \
        PROTOBUF_C_VERSION_NUMBER};                                        \
    return &m;                                                             \
  }                                                                        \
  GM_PLUGIN_EXPORT const gm_plugin *gm_plugin_entry(void) {                \
    return &(desc);                                                        \
  }

#ifdef __cplusplus
}
#endif
#endif /* GREENMARKET_PLUGIN_H */
