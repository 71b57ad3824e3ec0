/*
 * Redis service: connections, the process-wide registry of plugin scripts,
 * and the one way to run them (FCALL of a function of the market's Redis
 * Functions library, the library loaded again when Redis lost it, reconnect
 * on I/O error, reply converted into the call's arena).
 */
#include "redis.h"

#include <errno.h>
#include <arpa/inet.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "call.h"
#include "clock.h"
#include "cluster.h"
#include "counters.h"
#include "fiber.h"
#include "hash.h"
#include "log.h"

/* Bounds on one script call: a caller past them is a bug, not a user error. */
#define GM__MAX_KEYS 64
#define GM__MAX_ARGS 256
/* Host keys before the plugin's: outbox stream, idempotency record, the
   tag's deadline set and its claims. */
#define GM__HOST_KEYS 4
/* Host args before the plugin's: idem flag, now_ms, participant, idem ttl. */
#define GM__HOST_ARGS 4
/* A cache of registered outbox streams larger than this starts over. */
#define GM__OUTBOX_CACHE_MAX 65536
/* Room for a function's name: the library's, "_<n>_", the script's cut to 47.
 */
#define GM__FN_MAX 160
/* Room for a library's name: "gm_", the market cut to 47, "_", 16 hex. */
#define GM__LIB_MAX 80
/* Redirections one command follows: a slot moves once per resharding step,
   so more means nodes disagree (a map changing under the command). */
#define GM__CLUSTER_HOPS 5
/* Reading the slot map: each node's connect and read timeout, and the gaps
   between two reads forced by errors (doubling while no node answers). */
#define GM__CLUSTER_READ_US 250000
#define GM__CLUSTER_GAP_MIN_US 100000
#define GM__CLUSTER_GAP_MAX_US 2000000

struct gm__redis {
  redisContext
      *c; /* the connection; keeps its error after a failed reconnect */
  char *unix_path;      /* socket path, or NULL for TCP */
  char *host;           /* TCP host when unix_path is NULL */
  int port;             /* TCP port */
  char where[256];      /* "unix socket /x" or "host:port", for messages */
  char last_error[128]; /* why the last command failed, for messages */
  /* Pipelined: fibers append their commands to the connection's output
     buffer and wait in this list, in the order Redis will answer; the
     worker writes the buffer and resumes each with its reply. */
  int pipelined;
  struct gm__redis_wait *head, *tail; /* oldest first */
  size_t n_waiting;
  /* The waiter of a WAIT sent on this connection and not yet answered, or
     NULL: fibers that need one join it (gm__replica_wait). */
  struct gm__redis_wait *wait_open;
  uint64_t progress_us; /* last reply, or the first wait after none */
  /* Timeouts of this connection and of every one reopened after it
     (gm__redis_set_timeouts); 0: the defaults of gm__redis_open. */
  int64_t connect_us, io_us;
  unsigned gen; /* counts reopenings: a new socket may reuse the fd number */
  /* Cluster mode (c NULL): the slot map, and per node of it a connection
     of this kind opened at first use, each with its own pipeline. */
  gm__cluster *cluster;
  struct gm__redis **node; /* indexed like the map's nodes; NULL: not open */
  size_t nnode;            /* entries allocated */
  int epfd;                /* epoll over node sockets with waiters */
  int *ep_fd;              /* per node: fd registered in epfd, -1: none */
  unsigned *ep_gen;        /* per node: the gen that fd belongs to */
  int refresh_due;         /* a MOVED said the map is old */
  /* The node connection that gave the last reply gm__cluster_exec
     returned: read by the fiber that got it before it waits again (a WAIT
     for a replica goes where the write ran, not where the map, perhaps
     read again by another fiber meanwhile, points now). */
  struct gm__redis *answered;
  uint64_t refresh_next_us, refresh_gap_us; /* when the map may be read */
  gm__redis_stop *stop; /* lists this connection's contexts, or NULL */
};

/* A fiber waiting for its reply (on the fiber's own stack), or a command
   nobody waits for (fiber NULL, on the heap: gm__command_nowait). */
typedef struct gm__redis_wait {
  gm__fiber *fiber;
  gm__arena *arena;  /* its reply is read into this arena; NULL: hiredis's */
  redisReply *reply; /* NULL: failed, err says how */
  int err;           /* REDIS_ERR_IO, REDIS_ERR_PROTOCOL, ... when failed */
  const char *what;  /* no fiber: the command, for the log */
  struct gm__redis_wait *next;
  /* A WAIT's waiter: opens the connection's wait_open when queued; the
     fibers that joined it (linked by next: they are not in the list), each
     handed the replicas that acknowledged (-1: an error reply, or err). */
  int opens_wait;
  struct gm__redis_wait *joined;
  long long acked;
} gm__redis_wait;

/* One registered script.  Its function's name follows its market's
   library, which changes when a script of the market is added or removed:
   written under the registry's write lock, read under its read lock. */
typedef struct gm__script {
  char *market;           /* owning market */
  char *name;             /* script name within the market */
  char *source;           /* its chunk: lib and script (gm__chunk_head) */
  unsigned flags;         /* GM_SCRIPT_* */
  char fn[GM__FN_MAX];    /* its function in the market's library */
  char store[GM__FN_MAX]; /* the library's gm__store (read-only steps) */
} gm__script;

/*
 * A market's Redis Functions library: the host's code and each of the
 * market's scripts as a function, loaded by the first call that finds it
 * missing.  Its name holds a hash of everything it is made of, so brokers
 * of one build share it, and brokers of two builds (a rolling upgrade) each
 * run their own side by side instead of replacing each other's.
 */
typedef struct gm__library {
  char *market;           /* owning market */
  char *source;           /* the FUNCTION LOAD text */
  char name[GM__LIB_MAX]; /* gm_<market>_<16 hex digits of the hash> */
} gm__library;

/* Written only during plugin init and unload; read by every worker. */
static pthread_rwlock_t gm__scripts_lock = PTHREAD_RWLOCK_INITIALIZER;
static gm__script **gm__scripts; /* the registry */
static size_t gm__nscripts;      /* entries in use */
static size_t gm__capscripts;    /* entries allocated */
static gm__library **gm__libs;   /* one per market with scripts */
static size_t gm__nlibs;         /* entries in use (and allocated) */

static _Atomic long gm__idem_ttl = 86400;
/* [redis] cluster_wait_replicas: ms a mutating call waits for a replica to
   acknowledge its write before gmd answers (0: it does not wait). */
static _Atomic long gm__wait_replicas_ms = 0;

/*
 * Outbox streams this process has added to gm:outboxes: an open-addressing
 * set so the common case (already registered) costs one read lock and a
 * hash.  Cleared on any reconnect because a restarted Redis without
 * persistence has lost gm:outboxes too.
 */
static pthread_rwlock_t gm__outbox_lock = PTHREAD_RWLOCK_INITIALIZER;
static char **gm__outbox_slots; /* NULL or a stream key per slot */
static size_t gm__outbox_cap;   /* slots allocated, a power of two */
static size_t gm__outbox_n;     /* slots in use */

/*
 * The host's part of every market's Redis Functions library, loaded once
 * with it (FUNCTION LOAD) instead of once per call: gm, the reply wrapper
 * and the idempotency record around each script.  At load Redis runs only
 * this top level, which may not call anything but redis.register_function,
 * so everything here is a definition; per-call state lives in the locals
 * below, set at the start of each run (Redis runs one function at a time,
 * to its end or to an error that aborts it).
 *
 * A plugin's script is compiled once per library load, at its first call,
 * by loadstring with the script's name as chunk name, so Lua messages say
 * "<script>:<line>" with the script's own line numbers; the chunk runs once
 * then (gm__chunk_head) and gives the function each call runs with (gm,
 * KEYS, ARGV): gm is a fresh table per call (now, participant) whose methods
 * come from gm__api, so a script that writes into gm changes nothing the
 * next call sees; its metatable is protected (__metatable), so no script
 * reaches gm__api, which every later call of the library load shares.  KEYS and
 * ARGV are the plugin's part of the call's keys and args.
 *
 * gm.emit formats integral numbers with %d: Lua would turn 123456789012345
 * into "1.2345678901234e+14" (%.14g), which would corrupt money in minor
 * units.  Doubles are exact only below 2^53, so amounts must stay below it
 * (or be passed as strings).
 *
 * gm.deadline and gm.deadline_cancel only note what the run wants (gm__dlp:
 * member -> due ms, or false to remove); the end of gm__run writes it to the
 * tag's deadline set when the run ends without a rejection, so a refused run
 * leaves no deadline behind whatever order it called them in.
 * gm.deadline_get sees the run's own changes first.
 *
 * In gm__run, a mutating call (idem flag '1', followed by the request's
 * fingerprint: gm__idem_arg) returns the reply stored by its first run and
 * runs nothing, or "gm:reused" when that run was another request's;
 * otherwise the script runs and its reply is stored (after byte 193 and the
 * fingerprint) with a TTL, unless it is a refusal (gm.reject): a
 * refusal changes nothing, so a retry may run the script again, and storing
 * it would let refused requests fill Redis.  A Lua runtime error aborts the
 * call before the SET, so it is never stored either.
 *
 * A read-only script (GM_SCRIPT_READ_ONLY) is registered flagged
 * no-writes and runs through gm__run_ro by FCALL_RO: Redis refuses any
 * write command in it (and gm__run_ro refuses gm.deadline and
 * gm.deadline_cancel with the same words, which the host recognises as a
 * plugin bug).  It replays a stored record as gm__run does; in a mutating
 * call it cannot store its own, so it answers {error "gm:store", msgpack
 * text, reply} and the host calls the library's gm__store function (a
 * plain one) with the text: SET NX of the record, answering "gm:stored",
 * or the record a concurrent run of the same step kept first, as a replay.
 *
 * Deadlines: a run that was not refused writes what gm.deadline and
 * gm.deadline_cancel noted.  Setting one that a broker is firing right now
 * marks that broker's claim ("r" for its due, see core/deadlines.c), so the
 * firing does not remove it when it ends: it fires again at its time, even
 * when that is the time it is firing for.
 *
 * What the host must do after the run comes back in a wrapper:
 * {error "gm:host <earliest due set, or -1> <emitted 0|1|2>", reply}, sent
 * when the run set a deadline or appended to the outbox.  The host lowers
 * the wake-up index gm:deadlines to the due, and registers the tag's outbox
 * stream in gm:outboxes (the settler's list) once it holds entries or
 * deadlines, so reads and refusals register nothing.  gm.emit appends with
 * NOMKSTREAM first: when the stream is missing (a new tag, or one whose
 * settled, idle stream the settler retired: settle.c) it appends again
 * without it and the run answers emitted 2, which registers the stream
 * even when this process registered it before (its own list of registered
 * streams does not know of the retirement); before that it makes the
 * stream from what the retirement kept (gm__outbox_remake: redis.h), so its
 * ids go on after the retired ones.  A run that sets a deadline on a tag
 * whose stream was retired (missing, with its record) answers emitted 2 too
 * (the deadline reconciliation walks gm:outboxes).  It hands the plugin
 * `reply` only, and only `reply` is stored for replay.  A replay answers
 * the same way from what the tag holds (its earliest deadline, whether its
 * stream exists), so a retry also repairs what a broker that died right
 * after the first run left undone: a stream made again after its
 * retirement (entries deleted before: max-deleted-entry-id) that the
 * settler has no group on yet (maybe never registered: the broker that
 * made it died, and this one registered it before the retirement), or a
 * deadline on a retired tag, answers emitted 2.  A stream never retired
 * needs none of that: no process can have listed it without registering
 * it, so a replay that finds it unknown here registers it.  A plugin reply of
 * that shape (a first item that is an error starting with "gm:") is refused, so
 * no plugin reply can be taken for the host's.
 */
static const char gm__library_host[] =
    "local gm__outbox, gm__idem, gm__dl, gm__dlc, gm__dlp, gm__em, gm__new\n"
    "local gm__api = {}\n"
    "local gm__mt = {__index = gm__api, __metatable = false}\n"
    "local gm__src, gm__name, gm__fn = {}, {}, {}\n" GM__OUTBOX_REMAKE_LUA
    "gm__api.emit = function(kind, ...) "
    "local f, a = {'XADD', gm__outbox, 'NOMKSTREAM', '*', 'kind', "
    "tostring(kind)}, {...}; "
    "for i = 1, select('#', ...) do local v = a[i]; "
    "if i % 2 == 1 and type(v) == 'string' and v:sub(1, 3) == 'gm:' then "
    "error('gm.emit: field names starting with gm: are the host\\'s', 2) "
    "end; "
    "if type(v) == 'number' and v == math.floor(v) and v > -2^53 and "
    "v < 2^53 then v = string.format('%d', v) end; f[#f + 1] = v end; "
    "local id = redis.call(unpack(f)); "
    "if not id then gm__outbox_remake(gm__outbox); table.remove(f, 3); "
    "id = redis.call(unpack(f)); "
    "gm__new = true end; "
    "gm__em = true; return id end\n"
    "local gm__st = {INVALID_ARGUMENT = 1, NOT_FOUND = 1, ALREADY_EXISTS = 1, "
    "PERMISSION_DENIED = 1, RESOURCE_EXHAUSTED = 1, FAILED_PRECONDITION = 1, "
    "UNIMPLEMENTED = 1, INTERNAL = 1, UNAVAILABLE = 1}\n"
    /* A status outside the set would reach the caller as an unexplained
       INTERNAL with only Redis's text in the log: say which name is wrong
       and which are right, with the message to find the call by (a `return
       gm.reject(...)` is a tail call: Lua knows no line for it). */
    "gm__api.reject = function(status, msg) "
    "if type(status) ~= 'string' or not gm__st[status] then "
    "error('gm.reject(' .. tostring(status) .. ', \\'' .. tostring(msg) .. "
    "'\\'): ' .. tostring(status) .. ' is not a status name; use one of "
    "INVALID_ARGUMENT, NOT_FOUND, ALREADY_EXISTS, "
    "PERMISSION_DENIED, RESOURCE_EXHAUSTED, FAILED_PRECONDITION, "
    "UNIMPLEMENTED, INTERNAL, UNAVAILABLE', 2) end; "
    "return redis.error_reply(status .. ' ' .. tostring(msg or '')) end\n"
    "local function gm__dlm(kind, id) "
    "if type(kind) ~= 'string' or #kind > 32 or "
    "not kind:match('^[a-z][a-z0-9_]*$') then error('gm.deadline: kind ' .. "
    "tostring(kind) .. ' is not [a-z][a-z0-9_]*, at most 32 characters', 3) "
    "end; "
    "if type(id) == 'number' then id = string.format('%d', id) end; "
    "if type(id) ~= 'string' or id == '' then "
    "error('gm.deadline: the id must be a non-empty string', 3) end; "
    "return kind .. '|' .. id end\n"
    "gm__api.deadline = function(kind, id, due) local m = gm__dlm(kind, id); "
    "local d = tonumber(due); if not d or d ~= math.floor(d) or d < 0 or "
    "d >= 2^53 then error('gm.deadline: due ' .. tostring(due) .. "
    "' is not a whole number of ms in 0..2^53', 2) end; "
    "gm__dlp = gm__dlp or {}; gm__dlp[m] = d end\n"
    "gm__api.deadline_cancel = function(kind, id) local m = gm__dlm(kind, "
    "id); gm__dlp = gm__dlp or {}; gm__dlp[m] = false end\n"
    "gm__api.deadline_get = function(kind, id) local m = gm__dlm(kind, id); "
    "if gm__dlp and gm__dlp[m] ~= nil then return gm__dlp[m] end; "
    "local s = redis.call('ZSCORE', gm__dl, m); "
    "return s and tonumber(s) or false end\n"
    /* Without a deadline (most runs) the mark is one of three strings
       made once: no string.format and concatenation per run. */
    "local gm__hn = {[0] = 'gm:host -1 0', 'gm:host -1 1', 'gm:host -1 2'}\n"
    "local function gm__wrap(r, min, em) "
    "if (min or em) and (type(r) ~= 'table' or not r.err) then "
    "local e = em == 2 and 2 or em and 1 or 0; "
    "return {{err = min and 'gm:host ' .. string.format('%d', min) .. ' ' .. "
    "e or gm__hn[e]}, r} end "
    "return r end\n"
    "local function gm__begin(K) "
    "gm__outbox, gm__idem, gm__dl, gm__dlc = K[1], K[2], K[3], K[4]; "
    "gm__dlp, gm__em, gm__new = nil, false, false end\n"
    "local function gm__retired() "
    "return redis.call('EXISTS', gm__outbox) == 0 and "
    "redis.call('EXISTS', gm__outbox .. '" GM__OUTBOX_RETIRED
    "') == 1 end\n"
    "local function gm__replay(s, a) "
    "if s:byte(1) == 193 then "
    "if #a > 1 and s:sub(2, 13) ~= a:sub(2) then "
    "return {err = 'gm:reused'} end; s = s:sub(14) end; "
    "local z = redis.call('ZRANGE', gm__dl, 0, 0, 'WITHSCORES'); "
    "local em = redis.call('EXISTS', gm__outbox) == 1; "
    "if em then if #redis.call('XINFO', 'GROUPS', gm__outbox) == 0 then "
    "local x = redis.call('XINFO', 'STREAM', gm__outbox); "
    "for i = 1, #x - 1, 2 do if x[i] == 'max-deleted-entry-id' and "
    "x[i + 1] ~= '0-0' then em = 2 end end end "
    "elseif z[2] and gm__retired() then em = 2 end; "
    "return gm__wrap(cmsgpack.unpack(s), z[2] and tonumber(z[2]), em) end\n"
    "local function gm__pre(a) "
    "if #a > 1 then return '\\193' .. a:sub(2) end; return '' end\n"
    "local function gm__body(i, K, A) "
    "local f = gm__fn[i]\n"
    "if not f then local c, e = loadstring(gm__src[i], '@' .. gm__name[i]); "
    "if not c then error(e, 0) end; f = c(); gm__fn[i] = f end\n"
    "local r = f(setmetatable({now = tonumber(A[2]), participant = A[3]}, "
    "gm__mt), {unpack(K, 5)}, {unpack(A, 5)})\n"
    "if type(r) == 'table' and ((type(r[1]) == 'table' and "
    "type(r[1].err) == 'string' and r[1].err:sub(1, 3) == 'gm:') or "
    "(type(r.err) == 'string' and r.err:sub(1, 3) == 'gm:')) then "
    "error('a reply that is, or whose first item is, an error starting "
    "with gm: is the host\\'s; return another shape', 0) end\n"
    "return r end\n"
    "local function gm__run_ro(i, K, A) gm__begin(K)\n"
    "if A[1] ~= '0' then local s = redis.call('GET', gm__idem); "
    "if s then return gm__replay(s, A[1]) end end\n"
    "local r = gm__body(i, K, A)\n"
    "if gm__dlp then error('Write commands are not allowed from read-only "
    "scripts: gm.deadline and gm.deadline_cancel write.', 0) end\n"
    "if A[1] ~= '0' and not (type(r) == 'table' and r.err) then "
    "return {{err = 'gm:store'}, cmsgpack.pack(r), r} end\n"
    "return r end\n"
    "local function gm__store(K, A) gm__begin(K)\n"
    "local s = redis.call('SET', gm__idem, gm__pre(A[3]) .. A[1], 'NX', "
    "'GET', 'EX', A[2]); "
    "if s then return gm__replay(s, A[3]) end; return {err = 'gm:stored'} "
    "end\n"
    "local function gm__run(i, K, A) gm__begin(K)\n"
    "if A[1] ~= '0' then local s = redis.call('GET', gm__idem); "
    "if s then return gm__replay(s, A[1]) end end\n"
    "local r = gm__body(i, K, A)\n"
    "local refused = type(r) == 'table' and r.err\n"
    "local min\n"
    "if gm__dlp and not refused then "
    "for m, due in pairs(gm__dlp) do "
    "if due then redis.call('ZADD', gm__dl, due, m); "
    "local c = redis.call('HGET', gm__dlc, m); "
    "if c then redis.call('HSET', gm__dlc, m, "
    "(string.gsub(c, '^(%d+)|[^|]*|', '%1|r|', 1))) end; "
    "if not min or due < min then min = due end "
    "else redis.call('ZREM', gm__dl, m) end end end\n"
    "if min and not gm__em and gm__retired() then gm__new = true end\n"
    "if A[1] ~= '0' and not refused then redis.call('SET', gm__idem, "
    "gm__pre(A[1]) .. cmsgpack.pack(r), 'EX', A[4]) end\n"
    "return gm__wrap(r, min, gm__new and 2 or gm__em) end\n";

/*
 * A script's chunk: "local gm, KEYS, ARGV; " <lib> ["\n" unless it ends a
 * line] "return function(...) gm, KEYS, ARGV = ...; " <script> "\nend".
 * gm__run runs the chunk once per library load, which makes the lib's
 * functions and tables once, and then calls the function it returns on each
 * call, after setting gm, KEYS and ARGV, which the lib's functions see as
 * upvalues.  Without a lib, line N of the script is line N of the chunk;
 * with one, the lib's line count plus N.
 */
static const char gm__chunk_head[] = "local gm, KEYS, ARGV; ";
static const char gm__chunk_call[] =
    "return function(...) gm, KEYS, ARGV = ...; ";
static const char gm__chunk_end[] = "\nend";

/* Compiles a script as gm__run will (same text, same chunk name) without
   loading anything, so a syntax error refuses the plugin at registration
   with the script's own line number. */
static const char gm__script_check[] =
    "local f, e = loadstring(ARGV[1], ARGV[2]) "
    "if f then return 1 end return redis.error_reply(e)";

/* ---- connections ---- */

static struct timeval gm__tv(int64_t us) {
  return (struct timeval){(time_t)(us / 1000000), (suseconds_t)(us % 1000000)};
}

/* ---- stopping: cutting a stop's connections (redis.h) ---- */

/* A listed connection and the address its socket connects to (a TCP
   peer, or a unix socket's path): what the stop's probe asks, with no
   name to resolve again (a DNS lookup could hang where the probe must
   not). */
typedef struct gm__stop_conn {
  redisContext *c;
  struct sockaddr_storage sa;
  socklen_t salen; /* 0: not known, never probed */
} gm__stop_conn;

struct gm__redis_stop {
  pthread_mutex_t mu;     /* guards the lists, and every fd on them */
  gm__stop_conn *conn;    /* the open connections */
  size_t n, cap;          /* entries in use, allocated */
  gm__redis_stop **child; /* stops a forced stop cuts too */
  size_t nchild, capchild;
  gm__redis_stop *parent; /* the stop this one is a child of, or NULL */
  _Atomic int stopping;   /* cut: no more connections */
  _Atomic int forced;     /* gm__redis_stop_force: cut without a probe */
  /* The stop has passed its grace: a host name still resolving then is
     given up (a DNS lookup hanging in a network outage). */
  _Atomic int past_grace;
  pthread_cond_t cv;    /* the timer thread's wait (monotonic clock) */
  int armed, cancelled; /* the timer thread runs, is told to end */
  int64_t grace_us;     /* its wait */
  pthread_t timer;
};

/* A stop past its grace asks each Redis it holds connections to for a PING
   (this long to connect, as long to answer) before it cuts them, and asks
   again this often while the stop lasts. */
#define GM__STOP_PROBE_US 500000
#define GM__STOP_REPROBE_US 1000000

/* The text a context cut by its stop gets when its owner reopens it. */
static const char gm__stopping_text[] = "gmd is stopping";

gm__redis_stop *gm__redis_stop_new(void) {
  gm__redis_stop *s = calloc(1, sizeof *s);
  if (!s) abort();
  pthread_mutex_init(&s->mu, NULL);
  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_cond_init(&s->cv, &ca);
  pthread_condattr_destroy(&ca);
  return s;
}

gm__redis_stop *gm__redis_stop_child(gm__redis_stop *parent) {
  gm__redis_stop *s = gm__redis_stop_new();
  if (!parent) return s;
  pthread_mutex_lock(&parent->mu);
  if (parent->nchild == parent->capchild) {
    parent->capchild = parent->capchild ? parent->capchild * 2 : 4;
    parent->child =
        realloc(parent->child, parent->capchild * sizeof *parent->child);
    if (!parent->child) abort();
  }
  parent->child[parent->nchild++] = s;
  s->parent = parent;
  /* Born forced, as a force reaching it would leave it. */
  if (atomic_load(&parent->forced)) {
    atomic_store(&s->forced, 1);
    atomic_store(&s->stopping, 1);
  }
  pthread_mutex_unlock(&parent->mu);
  return s;
}

/* Lists c (connecting to sa, salen 0: not known) in s; cut at once when s
   has stopped meanwhile (its connect began before the stop). */
static void gm__stop_add(gm__redis_stop *s, redisContext *c,
                         const struct sockaddr *sa, socklen_t salen) {
  pthread_mutex_lock(&s->mu);
  if (s->n == s->cap) {
    s->cap = s->cap ? s->cap * 2 : 16;
    s->conn = realloc(s->conn, s->cap * sizeof *s->conn);
    if (!s->conn) abort();
  }
  gm__stop_conn *e = &s->conn[s->n++];
  memset(e, 0, sizeof *e);
  e->c = c;
  if (sa && salen <= sizeof e->sa) {
    memcpy(&e->sa, sa, salen);
    e->salen = salen;
  }
  if (atomic_load(&s->stopping) && c->fd >= 0) shutdown(c->fd, SHUT_RDWR);
  pthread_mutex_unlock(&s->mu);
}

/* Frees c, taken off s's list first (under the lock that a cut holds while
   it shuts the listed sockets down, so it never reaches a closed one). */
static void gm__ctx_free(gm__redis_stop *s, redisContext *c) {
  if (!c) return;
  if (s) {
    pthread_mutex_lock(&s->mu);
    for (size_t i = 0; i < s->n; i++)
      if (s->conn[i].c == c) {
        s->conn[i] = s->conn[--s->n];
        break;
      }
    pthread_mutex_unlock(&s->mu);
  }
  redisFree(c);
}

void gm__redis_stop_now(gm__redis_stop *s) {
  if (!s) return;
  pthread_mutex_lock(&s->mu);
  atomic_store(&s->stopping, 1);
  for (size_t i = 0; i < s->n; i++)
    if (s->conn[i].c->fd >= 0) shutdown(s->conn[i].c->fd, SHUT_RDWR);
  pthread_mutex_unlock(&s->mu);
}

void gm__redis_stop_force(gm__redis_stop *s) {
  if (!s) return;
  pthread_mutex_lock(&s->mu);
  atomic_store(&s->forced, 1);
  for (size_t i = 0; i < s->nchild; i++) {
    atomic_store(&s->child[i]->forced, 1);
    gm__redis_stop_now(s->child[i]);
  }
  pthread_mutex_unlock(&s->mu);
  gm__redis_stop_now(s);
}

int gm__redis_stopping(const gm__redis_stop *s) {
  return s && atomic_load(&((gm__redis_stop *)s)->stopping);
}

int gm__redis_stop_forced(const gm__redis_stop *s) {
  return s && atomic_load(&((gm__redis_stop *)s)->forced);
}

/* Where c points, for grouping a stop's connections by the Redis they go
   to: the address its socket connects to, named as gm__redis_ctx_where
   names it ("host:port" or "unix socket <path>"). */
typedef struct gm__stop_addr {
  char where[300];
  struct sockaddr_storage sa;
  socklen_t salen;
  int alive; /* answered the probe */
} gm__stop_addr;

static int gm__sa_same(const struct sockaddr_storage *a, socklen_t alen,
                       const struct sockaddr_storage *b, socklen_t blen) {
  return alen == blen && !memcmp(a, b, alen);
}

/*
 * Asks every Redis in a[0..n) for a PING at once, each on a socket of its
 * own connected to the address already in use (no name resolved): alive
 * when any byte comes back (an error too: LOADING, BUSY, NOAUTH are
 * answers) within GM__STOP_PROBE_US to connect and as much more to answer.
 * So N Redis servers that do not answer take one probe's time, not N.
 */
static void gm__stop_probe_all(gm__stop_addr *a, size_t n) {
  static const char ping[] = "*1\r\n$4\r\nPING\r\n";
  struct pollfd *p = calloc(n ? n : 1, sizeof *p);
  uint64_t *until = calloc(n ? n : 1, sizeof *until);
  if (!p || !until) abort();
  uint64_t t0 = gm__clock_mono_us();
  size_t pending = 0;
  for (size_t k = 0; k < n; k++) {
    a[k].alive = 0;
    p[k].fd = -1;
    int fd = socket(a[k].sa.ss_family,
                    SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) continue;
    p[k].fd = fd;
    until[k] = t0 + GM__STOP_PROBE_US;
    if (connect(fd, (const struct sockaddr *)&a[k].sa, a[k].salen) == 0) {
      /* Connected at once (a unix socket, or loopback): the PING goes now. */
      if (send(fd, ping, sizeof ping - 1, MSG_NOSIGNAL) !=
          (ssize_t)(sizeof ping - 1)) {
        close(fd);
        p[k].fd = -1;
        continue;
      }
      p[k].events = POLLIN;
    } else if (errno == EINPROGRESS) {
      p[k].events = POLLOUT;
    } else {
      /* Refused, or a unix socket's full backlog (EAGAIN): no answer. */
      close(fd);
      p[k].fd = -1;
      continue;
    }
    pending++;
  }
  while (pending) {
    uint64_t now = gm__clock_mono_us(), next = UINT64_MAX;
    for (size_t k = 0; k < n; k++) {
      if (p[k].fd < 0) continue;
      if (now >= until[k]) {
        /* No answer in time: taken for a Redis that cannot answer. */
        close(p[k].fd);
        p[k].fd = -1;
        pending--;
      } else if (until[k] < next) {
        next = until[k];
      }
    }
    if (!pending) break;
    int rc = poll(p, n, (int)((next - now + 999) / 1000));
    if (rc < 0 && errno != EINTR) break;
    for (size_t k = 0; rc > 0 && k < n; k++) {
      if (p[k].fd < 0 || !p[k].revents) continue;
      int done = 1;
      if (p[k].events == POLLOUT) {
        int soerr = 0;
        socklen_t len = sizeof soerr;
        if (getsockopt(p[k].fd, SOL_SOCKET, SO_ERROR, &soerr, &len) == 0 &&
            !soerr &&
            send(p[k].fd, ping, sizeof ping - 1, MSG_NOSIGNAL) ==
                (ssize_t)(sizeof ping - 1)) {
          /* Connected: as long again to answer. */
          p[k].events = POLLIN;
          until[k] = gm__clock_mono_us() + GM__STOP_PROBE_US;
          done = 0;
        }
      } else {
        char buf[64];
        a[k].alive = recv(p[k].fd, buf, sizeof buf, 0) > 0;
      }
      p[k].revents = 0;
      if (done) {
        close(p[k].fd);
        p[k].fd = -1;
        pending--;
      }
    }
  }
  for (size_t k = 0; k < n; k++)
    if (p[k].fd >= 0) close(p[k].fd);
  free(p);
  free(until);
}

/* Waits until `at` or until s is destroyed (s->mu held); 1 if destroyed. */
static int gm__stop_wait(gm__redis_stop *s, const struct timespec *at) {
  int rc = 0;
  while (!s->cancelled && rc != ETIMEDOUT)
    rc = pthread_cond_timedwait(&s->cv, &s->mu, at);
  return s->cancelled;
}

static struct timespec gm__mono_after(int64_t us) {
  struct timespec at;
  clock_gettime(CLOCK_MONOTONIC, &at);
  at.tv_sec += (time_t)(us / 1000000);
  at.tv_nsec += (long)(us % 1000000) * 1000L;
  if (at.tv_nsec >= 1000000000L) {
    at.tv_sec++;
    at.tv_nsec -= 1000000000L;
  }
  return at;
}

/*
 * The stop's timer: after the grace, and every GM__STOP_REPROBE_US after
 * it while the stop lasts, each Redis the stop's connections go to is
 * asked a PING on a connection of its own, all at once.  The connections
 * to one that does not answer are cut (their threads wait on a Redis that
 * cannot answer them); those to one that answers are left alone, so a stop
 * that is slow while Redis works (a long settle batch) finishes what it
 * holds.
 */
static void *gm__stop_timer(void *arg) {
  gm__redis_stop *s = arg;
  /* The stop began when it armed this timer: what the log says is how long
     it has lasted at each probe, the grace only at the first. */
  uint64_t began = gm__clock_mono_us();
  struct timespec at = gm__mono_after(s->grace_us);
  pthread_mutex_lock(&s->mu);
  int said_alive = 0;
  while (!gm__stop_wait(s, &at)) {
    atomic_store(&s->past_grace, 1);
    /* The Redis servers the listed connections go to, each once. */
    size_t na = 0;
    gm__stop_addr *addr = calloc(s->n ? s->n : 1, sizeof *addr);
    if (!addr) abort();
    for (size_t i = 0; i < s->n; i++) {
      const gm__stop_conn *e = &s->conn[i];
      if (e->c->fd < 0 || !e->salen) continue;
      size_t k = 0;
      while (k < na &&
             !gm__sa_same(&addr[k].sa, addr[k].salen, &e->sa, e->salen))
        k++;
      if (k < na) continue;
      gm__redis_ctx_where(e->c, addr[k].where, sizeof addr[k].where);
      addr[k].sa = e->sa;
      addr[k].salen = e->salen;
      na++;
    }
    pthread_mutex_unlock(&s->mu);
    gm__stop_probe_all(addr, na);
    pthread_mutex_lock(&s->mu);
    if (s->cancelled) {
      free(addr);
      break;
    }
    size_t cut = 0, dead = 0;
    char dead_where[300] = "", alive_where[300] = "";
    for (size_t k = 0; k < na; k++) {
      if (addr[k].alive) {
        if (!alive_where[0])
          snprintf(alive_where, sizeof alive_where, "%s", addr[k].where);
        continue;
      }
      if (!dead++) snprintf(dead_where, sizeof dead_where, "%s", addr[k].where);
      for (size_t i = 0; i < s->n; i++) {
        const gm__stop_conn *e = &s->conn[i];
        if (e->c->fd >= 0 &&
            gm__sa_same(&e->sa, e->salen, &addr[k].sa, addr[k].salen)) {
          shutdown(e->c->fd, SHUT_RDWR);
          cut++;
        }
      }
    }
    /* From the first cut on nothing reconnects (a reopen would wait on
       the same Redis) and connections opened later are cut too. */
    if (dead) atomic_store(&s->stopping, 1);
    free(addr);
    double lasted = (double)(gm__clock_mono_us() - began) / 1e6;
    if (dead == 1)
      gm__log(GM_LOG_WARN, "redis",
              "gmd has not stopped %.1f s after it was asked to and Redis at "
              "%s does not answer (no reply to PING within %.1f s): cutting "
              "its %zu connection(s) to it (a Redis that does not answer "
              "would hold each thread for its read timeout); outbox entries "
              "read but not acknowledged are settled by the next settler",
              lasted, dead_where, GM__STOP_PROBE_US / 1e6, cut);
    else if (dead)
      /* Probed at once: several stalled servers (cluster nodes) are cut in
         the same round, and said so in one line. */
      gm__log(GM_LOG_WARN, "redis",
              "gmd has not stopped %.1f s after it was asked to and %zu Redis "
              "servers do not answer (no reply to PING within %.1f s), Redis "
              "at %s among them: cutting their %zu connection(s) (a Redis "
              "that does not answer would hold each thread for its read "
              "timeout); outbox entries read but not acknowledged are "
              "settled by the next settler",
              lasted, dead, GM__STOP_PROBE_US / 1e6, dead_where, cut);
    else if (na && !said_alive) {
      gm__log(GM_LOG_INFO, "redis",
              "gmd has not stopped %.1f s after it was asked to; Redis at %s "
              "answers, so its threads finish what they hold (a Redis that "
              "stops answering is cut then)",
              lasted, alive_where);
      said_alive = 1;
    }
    at = gm__mono_after(GM__STOP_REPROBE_US);
  }
  pthread_mutex_unlock(&s->mu);
  return NULL;
}

void gm__redis_stop_after(gm__redis_stop *s, int64_t grace_us) {
  if (!s) return;
  pthread_mutex_lock(&s->mu);
  int go = !s->armed;
  if (go) {
    s->grace_us = grace_us > 0 ? grace_us : 0;
    s->armed = 1;
  }
  pthread_mutex_unlock(&s->mu);
  if (go && pthread_create(&s->timer, NULL, gm__stop_timer, s) != 0) {
    /* No thread: cut at once rather than risk a long stop. */
    pthread_mutex_lock(&s->mu);
    s->armed = 0;
    pthread_mutex_unlock(&s->mu);
    gm__redis_stop_now(s);
  }
}

void gm__redis_stop_destroy(gm__redis_stop **sp) {
  if (!sp || !*sp) return;
  gm__redis_stop *s = *sp;
  if (s->parent) {
    gm__redis_stop *p = s->parent;
    pthread_mutex_lock(&p->mu);
    for (size_t i = 0; i < p->nchild; i++)
      if (p->child[i] == s) {
        p->child[i] = p->child[--p->nchild];
        break;
      }
    pthread_mutex_unlock(&p->mu);
  }
  pthread_mutex_lock(&s->mu);
  s->cancelled = 1;
  int armed = s->armed;
  pthread_cond_signal(&s->cv);
  pthread_mutex_unlock(&s->mu);
  if (armed) pthread_join(s->timer, NULL);
  free(s->conn);
  free(s->child);
  pthread_cond_destroy(&s->cv);
  pthread_mutex_destroy(&s->mu);
  free(s);
  *sp = NULL;
}

/* A failed context that never connected, failed with `why`: what a
   stopping stop's connections, or a name that did not resolve, get
   instead of a new socket (callers need a context). */
static redisContext *gm__ctx_failed(const char *why) {
  redisContext *c = redisConnectFd(-1);
  if (!c) return NULL;
  c->err = REDIS_ERR_IO;
  snprintf(c->errstr, sizeof c->errstr, "%s", why);
  return c;
}

static redisContext *gm__ctx_stopped(void) {
  return gm__ctx_failed(gm__stopping_text);
}

const char *gm__redis_ctx_error(const gm__redis *r, const redisContext *c,
                                char *buf, size_t buflen) {
  if (!c || !c->err) {
    snprintf(buf, buflen, "%s", c ? "no error" : "connection lost");
    return buf;
  }
  int timeout = c->err == REDIS_ERR_IO && !strcmp(c->errstr, strerror(EAGAIN));
#ifdef REDIS_ERR_TIMEOUT
  timeout = timeout || c->err == REDIS_ERR_TIMEOUT;
#endif
  if (r && r->stop && gm__redis_stopping(r->stop) &&
      (c->err == REDIS_ERR_EOF || c->err == REDIS_ERR_IO))
    snprintf(buf, buflen, "%s", gm__stopping_text);
  else if (timeout)
    snprintf(buf, buflen, "no reply within %g s",
             (double)(r && r->io_us ? r->io_us : 30000000) / 1e6);
  else
    snprintf(buf, buflen, "%s", c->errstr[0] ? c->errstr : "connection lost");
  return buf;
}

/*
 * ---- replies built in an arena ----
 *
 * Every connection's reader builds its replies with gm__reply_fns: into the
 * arena its privdata names while a caller reading into an arena has set it
 * (the request's own: no malloc and free per element, and the strings are
 * used where they lie), else with hiredis's own functions (privdata NULL),
 * freed by freeReplyObject.  An object in an arena carries a mark in a field
 * its type leaves unused, so gm__reply_free, and hiredis when it drops a
 * half-read reply, can tell the two apart.  The privdata stays the same
 * for the whole of one reply: it is set before each read of a reply (a
 * pipelined connection's: its oldest waiter's) and cleared after.
 */
static char gm__arena_mark[] = "";       /* str of an array, int or nil */
static redisReply *gm__arena_mark_el[1]; /* element of a string */
static const redisReplyObjectFunctions *_Atomic gm__hiredis_fns;

static int gm__reply_in_arena(const redisReply *r) {
  switch (r->type) {
    case REDIS_REPLY_STRING:
    case REDIS_REPLY_STATUS:
    case REDIS_REPLY_ERROR:
      return r->element == gm__arena_mark_el;
    default:
      return r->str == gm__arena_mark;
  }
}

/* Frees a reply whichever way it was read (one in an arena goes with it). */
static void gm__reply_free(void *reply) {
  if (reply && !gm__reply_in_arena(reply)) freeReplyObject(reply);
}

static redisReply *gm__arena_reply(const redisReadTask *task, int type) {
  redisReply *r = gm__arena_alloc(task->privdata, sizeof *r);
  r->type = type;
  if (type == REDIS_REPLY_STRING || type == REDIS_REPLY_STATUS ||
      type == REDIS_REPLY_ERROR)
    r->element = gm__arena_mark_el;
  else
    r->str = gm__arena_mark;
  if (task->parent) {
    redisReply *parent = task->parent->obj;
    parent->element[task->idx] = r;
  }
  return r;
}

static void *gm__reply_string(const redisReadTask *task, char *str,
                              size_t len) {
  if (!task->privdata) return gm__hiredis_fns->createString(task, str, len);
  redisReply *r = gm__arena_reply(task, task->type);
  r->str = gm__arena_strndup(task->privdata, str, len);
  r->len = len;
  return r;
}

static void *gm__reply_array(const redisReadTask *task, int elements) {
  if (!task->privdata) return gm__hiredis_fns->createArray(task, elements);
  redisReply *r = gm__arena_reply(task, REDIS_REPLY_ARRAY);
  if (elements > 0)
    r->element =
        gm__arena_alloc(task->privdata, (size_t)elements * sizeof *r->element);
  r->elements = elements > 0 ? (size_t)elements : 0;
  return r;
}

static void *gm__reply_integer(const redisReadTask *task, long long value) {
  if (!task->privdata) return gm__hiredis_fns->createInteger(task, value);
  redisReply *r = gm__arena_reply(task, REDIS_REPLY_INTEGER);
  r->integer = value;
  return r;
}

static void *gm__reply_nil(const redisReadTask *task) {
  if (!task->privdata) return gm__hiredis_fns->createNil(task);
  return gm__arena_reply(task, REDIS_REPLY_NIL);
}

static redisReplyObjectFunctions gm__reply_fns = {
    gm__reply_string, gm__reply_array, gm__reply_integer, gm__reply_nil,
    gm__reply_free};

/* The reader's next replies go into `a` (NULL: hiredis's own objects). */
static void gm__reader_into(redisContext *c, gm__arena *a) {
  c->reader->privdata = a;
}

/*
 * After a read that failed: a half-read reply in an arena is left to its
 * arena, which its caller will reuse; the reader must not free it (nor read
 * it) when the context is freed later.  A context that failed is never read
 * again, so the reader's task stack pointing into the arena is not used.
 */
static void gm__reader_drop(redisContext *c) {
  redisReader *rd = c->reader;
  if (rd->reply && gm__reply_in_arena(rd->reply)) rd->reply = NULL;
  rd->privdata = NULL;
}

/* Written once before any connection (gm__redis_set_auth), then read. */
static char *gm__auth_user, *gm__auth_file;

void gm__redis_set_auth(const char *user, const char *password_file) {
  free(gm__auth_user);
  free(gm__auth_file);
  gm__auth_user = user && *user ? strdup(user) : NULL;
  gm__auth_file = password_file ? strdup(password_file) : NULL;
  if ((user && *user && !gm__auth_user) || (password_file && !gm__auth_file))
    abort();
}

int gm__redis_password_read(const char *path, char pass[513], char *why,
                            size_t whylen) {
  FILE *f = fopen(path, "r");
  if (!f) {
    snprintf(why, whylen, "cannot be read (%s)", strerror(errno));
    return -1;
  }
  /* Unbuffered: no copy of the password left in a freed stdio buffer. */
  setvbuf(f, NULL, _IONBF, 0);
  size_t n = fgets(pass, 513, f) ? strcspn(pass, "\r\n") : 0;
  /* A first line of exactly 512 bytes fills the buffer: whole when the
     file or the line ends right after it. */
  int next = n == 512 ? fgetc(f) : '\n';
  int whole = next == EOF || next == '\n' || next == '\r';
  /* A read that failed (a folder, which fopen opens: EISDIR; an I/O
     error) is not an empty file. */
  int bad = ferror(f) ? errno : 0;
  fclose(f);
  pass[n] = '\0';
  if (bad) {
    explicit_bzero(pass, 513);
    snprintf(why, whylen, "cannot be read (%s)", strerror(bad));
    return -1;
  }
  if (n == 0 || !whole) {
    explicit_bzero(pass, 513);
    snprintf(why, whylen, "%s",
             n ? "has a first line over 512 bytes" : "is empty");
    return -1;
  }
  return 0;
}

int gm__redis_auth(redisContext *c) {
  if (!gm__auth_file) return 0;
  char pass[513], why[96];
  if (gm__redis_password_read(gm__auth_file, pass, why, sizeof why) != 0) {
    /* The path is gm__auth_file's: the message adds it
       (gm__redis_auth_message), errstr being short. */
    c->err = REDIS_ERR_OTHER;
    snprintf(c->errstr, sizeof c->errstr, "password_file: %s", why);
    return -1;
  }
  redisReply *r = gm__auth_user
                      ? redisCommand(c, "AUTH %s %s", gm__auth_user, pass)
                      : redisCommand(c, "AUTH %s", pass);
  explicit_bzero(pass, sizeof pass);
  if (r && r->type != REDIS_REPLY_ERROR) {
    freeReplyObject(r);
    return 0;
  }
  if (r) {
    /* Redis's words (WRONGPASS ..., or "AUTH <password> called without
       any password configured"), which never echo the password. */
    c->err = REDIS_ERR_OTHER;
    snprintf(c->errstr, sizeof c->errstr, "AUTH refused: %.100s", r->str);
    freeReplyObject(r);
  }
  return -1;
}

int gm__redis_auth_failed(const char *e) {
  return strstr(e, "AUTH refused") || strstr(e, "password_file: ");
}

void gm__redis_auth_message(char *out, size_t outlen, const char *where,
                            const char *e) {
  const char *file = strstr(e, "password_file: ");
  if (file)
    snprintf(out, outlen,
             "gmd has no password for Redis at %s: [redis] password_file %s "
             "%s; write the password (1-512 bytes) on its first line, "
             "readable by gmd's user (gmd reads the file at each new "
             "connection: no restart needed)",
             where, gm__auth_file ? gm__auth_file : "",
             file + sizeof "password_file: " - 1);
  else
    snprintf(out, outlen,
             "Redis at %s refused gmd's credentials (%s); the operator must "
             "set [redis] user and the password in [redis] password_file to "
             "what Redis requires (gmd reads the file at each new "
             "connection; a changed user needs a restart)",
             where, e);
}

const char *gm__redis_error_text(const gm__redis *r, const char *e, char *buf,
                                 size_t buflen) {
  if (!e || !gm__redis_auth_failed(e)) return e;
  gm__redis_auth_message(buf, buflen, r->where, e);
  return buf;
}

/* How long a new connection's first commands (AUTH, gm__redis_connect's
   PING) wait for their reply: the read timeout, at most GM__REDIS_HELLO_US.
   A Redis that answers at all answers a PING within its
   busy-reply-threshold (5 s by default: BUSY during a long script). */
#define GM__REDIS_HELLO_US 10000000
/* How long a new connection's connect waits: 5 s unless set. */
static int64_t gm__connect_us(const gm__redis *r) {
  return r->connect_us ? r->connect_us : 5000000;
}
static int64_t gm__hello_us(const gm__redis *r) {
  int64_t io = r->io_us ? r->io_us : 30000000;
  return io < GM__REDIS_HELLO_US ? io : GM__REDIS_HELLO_US;
}

/* Whether hiredis's error text e is the system's for errno n (hiredis and
   gm__connect_tcp write strerror's text, not the number). */
static int gm__errstr_is(const char *e, int n) {
  return !strcmp(e, strerror(n));
}

void gm__redis_unreachable_message(const gm__redis *r, const char *e, char *err,
                                   size_t errlen) {
  /* gm__resolve's words for a name getaddrinfo refused. */
  static const char resolve_failed[] = "its name did not resolve: ";
  if (r->unix_path && gm__errstr_is(e, ENOENT))
    snprintf(err, errlen,
             "Redis is not reachable at %s: there is no such socket file; is "
             "redis-server running? Start it, and check that [redis] unix is "
             "the `unixsocket` of its redis.conf",
             r->where);
  else if (r->unix_path && gm__errstr_is(e, ECONNREFUSED))
    snprintf(err, errlen,
             "Redis is not reachable at %s: the connection was refused (the "
             "socket file is there but no server listens on it: redis-server "
             "stopped or crashed); is redis-server running? Start it, or set "
             "[redis] unix to the `unixsocket` of its redis.conf",
             r->where);
  else if (r->unix_path &&
           (gm__errstr_is(e, EACCES) || gm__errstr_is(e, EPERM)))
    snprintf(err, errlen,
             "Redis is not reachable at %s: gmd's user may not open the "
             "socket (permission denied); give gmd's user the socket's group "
             "and set `unixsocketperm 770` in redis.conf",
             r->where);
  else if (r->host && gm__errstr_is(e, ECONNREFUSED))
    snprintf(err, errlen,
             "Redis is not reachable at %s: the connection was refused "
             "(nothing listens on port %d of %s); is redis-server running? "
             "Start it, or set [redis] host and port to where it listens",
             r->where, r->port, r->host);
  else if (r->host && gm__errstr_is(e, ETIMEDOUT))
    snprintf(err, errlen,
             "Redis is not reachable at %s: the connection was not accepted "
             "within %g s (no answer at all: the host is down, a firewall "
             "drops the packets, or the address is wrong); check that "
             "redis-server runs there and that this machine may reach port "
             "%d (`redis-cli -h %s -p %d ping`)",
             r->where, (double)gm__connect_us(r) / 1e6, r->port, r->host,
             r->port);
  else if (r->host &&
           (gm__errstr_is(e, EHOSTUNREACH) || gm__errstr_is(e, ENETUNREACH)))
    snprintf(err, errlen,
             "Redis is not reachable at %s: this machine has no route to "
             "%s (%s); check [redis] host and this machine's network",
             r->where, r->host, e);
  else if (r->host && !strncmp(e, resolve_failed, sizeof resolve_failed - 1))
    snprintf(err, errlen,
             "Redis is not reachable at %s: the host name %s did not resolve "
             "(%s); check [redis] host for a typo, or this machine's DNS "
             "(`getent hosts %s`)",
             r->where, r->host, e + sizeof resolve_failed - 1, r->host);
  else if (r->host && !strncmp(e, "its name ", 9))
    /* gm__resolve's other words (a lookup past its time) say what to do. */
    snprintf(err, errlen, "Redis is not reachable at %s: %s", r->where, e);
  else
    snprintf(err, errlen,
             "Redis is not reachable at %s (%s); is redis-server running?",
             r->where, e);
}

/* err: why a new connection to r failed (c its context), with what the
   operator checks. */
static void gm__connect_error(const gm__redis *r, const redisContext *c,
                              char *err, size_t errlen) {
  int timeout =
      c && c->err == REDIS_ERR_IO && !strcmp(c->errstr, strerror(EAGAIN));
#ifdef REDIS_ERR_TIMEOUT
  timeout = timeout || (c && c->err == REDIS_ERR_TIMEOUT);
#endif
  if (c && gm__redis_auth_failed(c->errstr))
    gm__redis_auth_message(err, errlen, r->where, c->errstr);
  else if (gm__redis_stopping(r->stop) ||
           (c && !strcmp(c->errstr, gm__stopping_text)))
    snprintf(err, errlen, "%s", gm__stopping_text);
  else if (timeout && c->fd >= 0)
    snprintf(err, errlen,
             "Redis at %s accepted the connection but did not answer within "
             "%g s: check that redis-server is not stopped (kill -CONT its "
             "pid), swapping or stuck on its disk (`redis-cli ping` there, "
             "its log)",
             r->where, (double)gm__hello_us(r) / 1e6);
  else if (c)
    gm__redis_unreachable_message(r, c->errstr, err, errlen);
  else
    snprintf(err, errlen, "Redis is not reachable at %s (out of memory)",
             r->where);
}

/* Fails c (its socket stays open: it may be listed in a stop) with `why`. */
static void gm__ctx_fail(redisContext *c, const char *why) {
  c->err = REDIS_ERR_IO;
  snprintf(c->errstr, sizeof c->errstr, "%s", why);
}

/*
 * ---- resolving a Redis host name ----
 *
 * getaddrinfo has no timeout, and a DNS server that drops packets holds it
 * for the resolver's retries (resolv.conf: 5 s, twice per server, by
 * default), which neither a connect timeout nor a stop's cut would end.
 * So a name (not an address) is resolved on a thread of its own, which the
 * connecting thread waits for at most until its connect timeout and gives
 * up when its stop has cut or has lasted past its grace; a lookup given up
 * ends by itself later and frees what it holds (the job is the last of its
 * two holders to let go).
 */
typedef struct gm__resolve_job {
  pthread_mutex_t mu;
  pthread_cond_t cv; /* done (monotonic clock) */
  int refs;          /* the waiter and the lookup thread */
  int done, rc;      /* getaddrinfo finished, and its result */
  struct addrinfo *res;
  char port[16];
  char host[];
} gm__resolve_job;

static void gm__resolve_unref(gm__resolve_job *j) {
  pthread_mutex_lock(&j->mu);
  int last = --j->refs == 0;
  pthread_mutex_unlock(&j->mu);
  if (!last) return;
  if (j->res) freeaddrinfo(j->res);
  pthread_cond_destroy(&j->cv);
  pthread_mutex_destroy(&j->mu);
  free(j);
}

static void *gm__resolve_run(void *arg) {
  gm__resolve_job *j = arg;
  struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
  struct addrinfo *res = NULL;
  int rc = getaddrinfo(j->host, j->port, &hints, &res);
  pthread_mutex_lock(&j->mu);
  j->rc = rc;
  j->res = res;
  j->done = 1;
  pthread_cond_signal(&j->cv);
  pthread_mutex_unlock(&j->mu);
  gm__resolve_unref(j);
  return NULL;
}

/* A resolution still under way this long into a stop past its grace is
   given up: a name server that answers does so in far less. */
#define GM__STOP_RESOLVE_US GM__STOP_PROBE_US

/* A socket address to connect to. */
typedef struct gm__sockaddr {
  struct sockaddr_storage sa;
  socklen_t len;
} gm__sockaddr;

/* The most addresses of one name tried in turn. */
#define GM__RESOLVE_MAX 8

/*
 * host:port as socket addresses, into out[0..*n): 0; or -1 with why (for
 * a context's errstr, 127 bytes).  A name's IPv4 addresses come first, in
 * the resolver's order, then its IPv6 ones (hiredis prefers IPv4 too), at
 * most max.  An address given as such is used at once; a name is resolved
 * as above, until `until` (gm__clock_mono_us, timeout_us after the connect
 * began) at most.
 */
static int gm__resolve(const char *host, int port, uint64_t until,
                       int64_t timeout_us, gm__redis_stop *stop,
                       gm__sockaddr *out, size_t max, size_t *n, char *why,
                       size_t whylen) {
  *n = 0;
  memset(&out[0], 0, sizeof out[0]);
  struct sockaddr_in *v4 = (struct sockaddr_in *)&out[0].sa;
  struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&out[0].sa;
  if (inet_pton(AF_INET, host, &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons((uint16_t)port);
    out[0].len = sizeof *v4;
    *n = 1;
    return 0;
  }
  if (inet_pton(AF_INET6, host, &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons((uint16_t)port);
    out[0].len = sizeof *v6;
    *n = 1;
    return 0;
  }
  size_t hl = strlen(host);
  gm__resolve_job *j = calloc(1, sizeof *j + hl + 1);
  if (!j) abort();
  memcpy(j->host, host, hl + 1);
  snprintf(j->port, sizeof j->port, "%d", port);
  pthread_mutex_init(&j->mu, NULL);
  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_cond_init(&j->cv, &ca);
  pthread_condattr_destroy(&ca);
  j->refs = 2;
  pthread_attr_t ta;
  pthread_attr_init(&ta);
  pthread_attr_setdetachstate(&ta, PTHREAD_CREATE_DETACHED);
  pthread_t t;
  int started = pthread_create(&t, &ta, gm__resolve_run, j) == 0;
  pthread_attr_destroy(&ta);
  /* No thread: resolved here, unbounded (it lets go of its hold). */
  if (!started) gm__resolve_run(j);
  uint64_t began = gm__clock_mono_us();
  int rc = 0;
  pthread_mutex_lock(&j->mu);
  while (!j->done) {
    uint64_t now = gm__clock_mono_us();
    if (gm__redis_stopping(stop) || (stop && atomic_load(&stop->past_grace) &&
                                     now - began >= GM__STOP_RESOLVE_US)) {
      snprintf(why, whylen, "%s", gm__stopping_text);
      rc = -1;
      break;
    }
    if (now >= until) {
      snprintf(why, whylen,
               "its name did not resolve within %g s (DNS): check the name "
               "server, or give an IP address",
               (double)timeout_us / 1e6);
      rc = -1;
      break;
    }
    /* Woken when the lookup ends; a stop is seen within 50 ms. */
    uint64_t slice = until - now < 50000 ? until - now : 50000;
    struct timespec at;
    clock_gettime(CLOCK_MONOTONIC, &at);
    at.tv_nsec += (long)slice * 1000L;
    at.tv_sec += at.tv_nsec / 1000000000L;
    at.tv_nsec %= 1000000000L;
    pthread_cond_timedwait(&j->cv, &j->mu, &at);
  }
  if (rc == 0 && j->rc != 0) {
    snprintf(why, whylen, "its name did not resolve: %s", gai_strerror(j->rc));
    rc = -1;
  } else if (rc == 0) {
    static const int families[] = {AF_INET, AF_INET6};
    for (size_t f = 0; f < 2; f++)
      for (const struct addrinfo *ai = j->res; ai && *n < max; ai = ai->ai_next)
        if (ai->ai_family == families[f] &&
            ai->ai_addrlen <= sizeof out[*n].sa) {
          memset(&out[*n], 0, sizeof out[*n]);
          memcpy(&out[*n].sa, ai->ai_addr, ai->ai_addrlen);
          out[*n].len = ai->ai_addrlen;
          (*n)++;
        }
    if (!*n) {
      snprintf(why, whylen, "its name has no IPv4 or IPv6 address");
      rc = -1;
    }
  }
  pthread_mutex_unlock(&j->mu);
  gm__resolve_unref(j);
  return rc;
}

/*
 * One connect of a TCP socket to host:port at a, by `until`: a context,
 * failed (c->err, *soerr the errno: 0 when the stop cut it) or connected;
 * NULL only out of memory.  Connected by this thread so that a stop
 * reaches a connect under way: hiredis's blocking connect resolves the
 * name and then waits in a poll of its own for up to its timeout, neither
 * of which anything else can end, and a Redis whose network drops packets
 * keeps it there.  The socket is listed in the stop (when there is one)
 * with its address from its connect() on, so a cut shuts it down, which
 * disconnects a socket still connecting (SYN sent) and wakes the poll here
 * at once, and the stop's probe asks that address without resolving the
 * name again.  A context whose connect failed after that stays listed
 * until it is freed (gm__ctx_free), its socket open until then.
 */
static redisContext *gm__connect_one(const char *host, int port,
                                     gm__redis_stop *stop, uint64_t until,
                                     const gm__sockaddr *a, int *soerr_out) {
  *soerr_out = 0;
  int fd =
      socket(a->sa.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    *soerr_out = errno;
    return gm__ctx_failed(strerror(errno));
  }
  redisContext *c = redisConnectFd(fd);
  if (!c) {
    close(fd);
    return NULL;
  }
  /* Named as hiredis names a context it connected (gm__redis_ctx_where). */
  c->connection_type = REDIS_CONN_TCP;
  c->tcp.host = strdup(host);
  c->tcp.port = port;
  if (!c->tcp.host) abort();
  if (stop) gm__stop_add(stop, c, (const struct sockaddr *)&a->sa, a->len);
  int rc = connect(fd, (const struct sockaddr *)&a->sa, a->len);
  int soerr = 0;
  if (rc != 0 && errno != EINPROGRESS) {
    soerr = errno;
  } else if (rc != 0) {
    struct pollfd p = {.fd = fd, .events = POLLOUT};
    for (;;) {
      uint64_t now = gm__clock_mono_us();
      int ms = now >= until ? 0 : (int)((until - now + 999) / 1000);
      rc = poll(&p, 1, ms);
      if (rc >= 0 || errno != EINTR) break;
    }
    socklen_t len = sizeof soerr;
    if (rc < 0)
      soerr = errno;
    else if (rc == 0)
      soerr = ETIMEDOUT;
    else if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) != 0)
      soerr = errno;
  }
  if (gm__redis_stopping(stop))
    gm__ctx_fail(c, gm__stopping_text);
  else if (soerr)
    gm__ctx_fail(c, strerror(soerr));
  if (c->err) {
    if (!gm__redis_stopping(stop)) *soerr_out = soerr;
    return c;
  }
  /* Connected: blocking from here on, as hiredis's own connect leaves it
     (each read and write bounded by redisSetTimeout). */
  int fl = fcntl(fd, F_GETFL);
  if (fl < 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) < 0) {
    gm__ctx_fail(c, strerror(errno));
    return c;
  }
  c->flags |= REDIS_BLOCK | REDIS_CONNECTED;
  /* No Nagle delay on a request (hiredis's own connect sets it too). */
  int one = 1;
  if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) != 0)
    gm__ctx_fail(c, strerror(errno));
  return c;
}

/* A connect that failed so at one address may not at the name's next:
   refused (Redis bound to 127.0.0.1 only, the name's ::1 tried), or no
   route to it (an address family or network this host lacks). */
static int gm__try_next_address(int soerr) {
  return soerr == ECONNREFUSED || soerr == EHOSTUNREACH ||
         soerr == ENETUNREACH || soerr == EADDRNOTAVAIL ||
         soerr == EAFNOSUPPORT;
}

/*
 * A TCP connection to host:port: the name resolved first (gm__resolve,
 * bounded by the connect timeout, given up by a stop), then each of its
 * addresses in turn (gm__connect_one) while one refuses or has no route
 * and time is left; the last one's failure is the context's.
 */
static redisContext *gm__connect_tcp(const char *host, int port,
                                     gm__redis_stop *stop, int64_t timeout_us) {
  if (gm__redis_stopping(stop)) return gm__ctx_stopped();
  uint64_t until = gm__clock_mono_us() + (uint64_t)timeout_us;
  gm__sockaddr a[GM__RESOLVE_MAX];
  size_t n = 0;
  char why[128];
  if (gm__resolve(host, port, until, timeout_us, stop, a, GM__RESOLVE_MAX, &n,
                  why, sizeof why) != 0)
    return gm__ctx_failed(why);
  redisContext *c = NULL;
  for (size_t k = 0; k < n; k++) {
    int soerr = 0;
    c = gm__connect_one(host, port, stop, until, &a[k], &soerr);
    if (!c || !c->err || k + 1 == n || !gm__try_next_address(soerr) ||
        gm__redis_stopping(stop) || gm__clock_mono_us() >= until)
      return c;
    gm__ctx_free(stop, c);
    c = NULL;
  }
  return c;
}

redisContext *gm__redis_connect_node(const char *host, int port,
                                     int64_t timeout_us, gm__redis_stop *stop) {
  redisContext *c = gm__connect_tcp(host, port, stop, timeout_us);
  if (c && !c->err) redisSetTimeout(c, gm__tv(timeout_us));
  return c;
}

void gm__redis_close_node(gm__redis_stop *stop, redisContext *c) {
  gm__ctx_free(stop, c);
}

static redisContext *gm__redis_open(const gm__redis *r) {
  if (gm__redis_stopping(r->stop)) return gm__ctx_stopped();
  int64_t connect_us = gm__connect_us(r);
  redisContext *c;
  if (r->unix_path) {
    /* A unix socket connects at once or fails at once (a full backlog:
       EAGAIN): nothing to wait for. */
    c = redisConnectUnixWithTimeout(r->unix_path, gm__tv(connect_us));
    /* Listed before AUTH, its first command, which a stop may cut too.  A
       failed connect is not: hiredis may have closed its socket. */
    if (c && !c->err && r->stop) {
      struct sockaddr_un un = {.sun_family = AF_UNIX};
      size_t pl = strlen(r->unix_path);
      /* A path too long for an address is not probed (hiredis refused it
         already: never here). */
      int fits = pl < sizeof un.sun_path;
      if (fits) memcpy(un.sun_path, r->unix_path, pl + 1);
      gm__stop_add(r->stop, c, (const struct sockaddr *)&un,
                   fits ? (socklen_t)sizeof un : 0);
    }
  } else {
    c = gm__connect_tcp(r->host, r->port, r->stop, connect_us);
  }
  if (!c || c->err) return c;
  /* A stopped (not dead) Redis must not hang a worker forever; 30 s is far
     above any script Redis would let run (lua-time-limit is 5 s).  Set
     before AUTH, the first command: a stopped Redis's kernel still accepts
     the connection, and hiredis's connect timeout bounds only the connect. */
  struct timeval io = r->io_us ? gm__tv(r->io_us) : (struct timeval){30, 0};
  /* AUTH, a new connection's first command, waits GM__REDIS_HELLO_US at
     most: a Redis that accepts and does not answer is stopped. */
  redisSetTimeout(c, gm__tv(gm__hello_us(r)));
  if (gm__redis_auth(c) != 0) return c;
  redisSetTimeout(c, io);
  /* hiredis's own functions: the same for every context it makes. */
  if (!gm__hiredis_fns) gm__hiredis_fns = c->reader->fn;
  c->reader->fn = &gm__reply_fns;
  c->reader->privdata = NULL;
  if (!r->unix_path) redisEnableKeepAlive(c);
  return c;
}

static gm__redis *gm__cluster_connect(const gm__redis_addr *addr, char *err,
                                      size_t errlen);

/* addr's host and port, the defaults filled in. */
static const char *gm__addr_host(const gm__redis_addr *a) {
  return a->host && *a->host ? a->host : "127.0.0.1";
}
static int gm__addr_port(const gm__redis_addr *a) {
  return a->port > 0 ? a->port : 6379;
}

const char *gm__redis_addr_where(const gm__redis_addr *a, char *buf,
                                 size_t buflen) {
  if (a->cluster && *a->cluster)
    snprintf(buf, buflen, "cluster %s", a->cluster);
  else if (a->unix_path && *a->unix_path)
    snprintf(buf, buflen, "unix socket %s", a->unix_path);
  else
    snprintf(buf, buflen, "%s:%d", gm__addr_host(a), gm__addr_port(a));
  return buf;
}

gm__redis *gm__redis_connect(const gm__redis_addr *addr, char *err,
                             size_t errlen) {
  if (addr->cluster && *addr->cluster) {
    gm__redis *r = gm__cluster_connect(addr, err, errlen);
    if (r) r->stop = addr->stop;
    if (r && (addr->connect_us || addr->io_us))
      gm__redis_set_timeouts(r, addr->connect_us, addr->io_us);
    return r;
  }
  gm__redis *r = calloc(1, sizeof *r);
  if (!r) abort();
  r->epfd = -1;
  r->connect_us = addr->connect_us;
  r->io_us = addr->io_us;
  r->stop = addr->stop;
  gm__redis_addr_where(addr, r->where, sizeof r->where);
  if (addr->unix_path && *addr->unix_path) {
    r->unix_path = strdup(addr->unix_path);
  } else {
    r->host = strdup(gm__addr_host(addr));
    r->port = gm__addr_port(addr);
  }
  r->c = gm__redis_open(r);
  if (!r->c || r->c->err) {
    gm__connect_error(r, r->c, err, errlen);
    gm__redis_destroy(&r);
    return NULL;
  }
  /* A Redis that wants a password answers every later command NOAUTH:
     say so now rather than as a failure of whatever comes first.  A
     stopped one does not answer: said within GM__REDIS_HELLO_US. */
  redisSetTimeout(r->c, gm__tv(gm__hello_us(r)));
  redisReply *ping = redisCommand(r->c, "PING");
  if (!ping) {
    gm__connect_error(r, r->c, err, errlen);
    gm__redis_destroy(&r);
    return NULL;
  }
  redisSetTimeout(r->c, r->io_us ? gm__tv(r->io_us) : (struct timeval){30, 0});
  int noauth =
      ping->type == REDIS_REPLY_ERROR && !strncmp(ping->str, "NOAUTH", 6);
  freeReplyObject(ping);
  if (noauth) {
    snprintf(err, errlen,
             "Redis at %s requires a password (NOAUTH); put it in a file "
             "readable by gmd only and set [redis] password_file (and [redis] "
             "user for an ACL user): docs/operations.md",
             r->where);
    gm__redis_destroy(&r);
    return NULL;
  }
  return r;
}

void gm__redis_destroy(gm__redis **rp) {
  if (!rp || !*rp) return;
  gm__redis *r = *rp;
  gm__ctx_free(r->stop, r->c);
  for (size_t i = 0; i < r->nnode; i++) gm__redis_destroy(&r->node[i]);
  free(r->node);
  free(r->ep_fd);
  free(r->ep_gen);
  if (r->epfd >= 0) close(r->epfd);
  gm__cluster_destroy(&r->cluster);
  free(r->unix_path);
  free(r->host);
  free(r);
  *rp = NULL;
}

static void gm__outbox_cache_clear_locked(void);

/* ---- cluster: a connection per node, each command to its slot's ---- */

/*
 * Every command gmd sends on a cluster touches one slot (one hash tag per
 * script call, core/redis.h) or none.  A command goes to the master the map
 * names for its first key's slot; one without keys (TIME, INFO, COMMAND,
 * EVAL of the compile check) to any master, FUNCTION LOAD and SCRIPT LOAD
 * to every master (gm__library_load, gm__cluster_exec_masters).  A MOVED reply
 * corrects one slot and the command goes again where it says (the node that
 * answered MOVED ran nothing), and the whole map is read again at the next
 * command; ASK sends ASKING and the command to the node it names once, the map
 * unchanged (a slot being migrated).  A connection lost, CLUSTERDOWN or
 * TRYAGAIN have the map read again (at most every GM__CLUSTER_GAP_MIN_US,
 * backing off while no node answers) and the command fails as on a single
 * Redis: the callers' retry goes to whatever master the new map names.
 * Repeating is safe for the reason a single Redis's retry is
 * (gm__command_formatted): a mutating script keeps its reply under its
 * idempotency record and replays it.
 */

/* The connection to `node`, opened at first use with r's settings. */
static gm__redis *gm__node_conn(gm__redis *r, int node) {
  size_t n = gm__cluster_nodes(r->cluster);
  if (r->nnode < n) {
    r->node = realloc(r->node, n * sizeof *r->node);
    r->ep_fd = realloc(r->ep_fd, n * sizeof *r->ep_fd);
    r->ep_gen = realloc(r->ep_gen, n * sizeof *r->ep_gen);
    if (!r->node || !r->ep_fd || !r->ep_gen) abort();
    for (size_t i = r->nnode; i < n; i++) {
      r->node[i] = NULL;
      r->ep_fd[i] = -1;
      r->ep_gen[i] = 0;
    }
    r->nnode = n;
  }
  if (!r->node[node]) {
    gm__redis *c = calloc(1, sizeof *c);
    if (!c) abort();
    c->epfd = -1;
    c->host = strdup(gm__cluster_node_host(r->cluster, node));
    if (!c->host) abort();
    c->port = gm__cluster_node_port(r->cluster, node);
    snprintf(c->where, sizeof c->where, "%s:%d", c->host, c->port);
    c->connect_us = r->connect_us;
    c->io_us = r->io_us;
    c->pipelined = r->pipelined;
    c->stop = r->stop;
    /* A failed context is kept like a failed reconnect's: the next command
       reopens it. */
    c->c = gm__redis_open(c);
    if (!c->c) abort();
    r->node[node] = c;
  }
  return r->node[node];
}

/* Reads the slot map; unless `now`, not before the gap since the last read
   has passed (many failing commands read it once).  It blocks the thread
   (a worker: all its requests) for a round trip to the first node that
   answers, up to GM__CLUSTER_READ_US per node that does not: rare, and
   cheaper than requests sent where the slot no longer is. */
static int gm__cluster_reload(gm__redis *r, int now) {
  uint64_t t = gm__clock_mono_us();
  if (!now && t < r->refresh_next_us) return -1;
  if (gm__redis_stopping(r->stop)) {
    snprintf(r->last_error, sizeof r->last_error, "%s", gm__stopping_text);
    return -1;
  }
  char why[256];
  unsigned epoch = gm__cluster_epoch(r->cluster);
  int rc = gm__cluster_refresh(r->cluster, GM__CLUSTER_READ_US, r->stop, why,
                               sizeof why);
  if (rc == 0) {
    r->refresh_due = 0;
    /* A slot on another node may be a failover, which loses the writes
       its replica had not received, an SADD gm:outboxes among them: the
       outbox cache is cleared as after a restarted Redis, so the next
       runs register their streams again (a SADD each). */
    if (gm__cluster_epoch(r->cluster) != epoch) {
      pthread_rwlock_wrlock(&gm__outbox_lock);
      gm__outbox_cache_clear_locked();
      pthread_rwlock_unlock(&gm__outbox_lock);
    }
    r->refresh_gap_us = GM__CLUSTER_GAP_MIN_US;
  } else {
    gm__log(GM_LOG_WARN, "redis", "reading the cluster's slot map: %s", why);
    /* last_error holds 127 bytes: the node's error ("host:port: AUTH
       refused: WRONGPASS ...", some 95) whole, not cut mid-word. */
    snprintf(r->last_error, sizeof r->last_error,
             "no cluster node answered (%.99s)", why);
    r->refresh_gap_us =
        r->refresh_gap_us ? r->refresh_gap_us * 2 : GM__CLUSTER_GAP_MIN_US;
    if (r->refresh_gap_us > GM__CLUSTER_GAP_MAX_US)
      r->refresh_gap_us = GM__CLUSTER_GAP_MAX_US;
  }
  r->refresh_next_us = t + r->refresh_gap_us;
  return rc;
}

/* The node for `slot` (-1: any master), the map read first when a MOVED
   asked for it or when it names none; -1 when no node is known for it. */
static int gm__cluster_route(gm__redis *r, int slot) {
  if (r->refresh_due) gm__cluster_reload(r, 0);
  int node = slot >= 0 ? gm__cluster_slot_node(r->cluster, slot)
                       : gm__cluster_any_master(r->cluster);
  if (node < 0 && gm__cluster_reload(r, 0) == 0)
    node = slot >= 0 ? gm__cluster_slot_node(r->cluster, slot)
                     : gm__cluster_any_master(r->cluster);
  if (node < 0)
    snprintf(r->last_error, sizeof r->last_error,
             "no master of the cluster serves slot %d", slot);
  return node;
}

static gm__redis *gm__cluster_connect(const gm__redis_addr *addr, char *err,
                                      size_t errlen) {
  const char *seeds = addr->cluster;
  gm__redis_stop *stop = addr->stop;
  gm__redis *r = calloc(1, sizeof *r);
  if (!r) abort();
  r->epfd = -1;
  gm__redis_addr_where(addr, r->where, sizeof r->where);
  r->cluster = gm__cluster_new(seeds, err, errlen);
  if (!r->cluster) {
    gm__redis_destroy(&r);
    return NULL;
  }
  char why[256];
  if (gm__cluster_refresh(r->cluster, GM__CLUSTER_READ_US, stop, why,
                          sizeof why)) {
    if (strstr(why, "NOAUTH") || gm__redis_auth_failed(why))
      snprintf(
          err, errlen,
          "Redis Cluster at %s: %s; set [redis] password_file (and [redis] "
          "user for an ACL user) to what the nodes require: "
          "docs/operations.md",
          seeds, why);
    else
      snprintf(err, errlen,
               "Redis Cluster is not reachable at %s (%s); are the nodes "
               "running, and is the cluster created?",
               seeds, why);
    gm__redis_destroy(&r);
    return NULL;
  }
  r->epfd = epoll_create1(EPOLL_CLOEXEC);
  if (r->epfd < 0) abort();
  r->refresh_gap_us = GM__CLUSTER_GAP_MIN_US;
  return r;
}

int gm__redis_is_cluster(const gm__redis *r) {
  return r->cluster != NULL;
}

redisContext *gm__redis_context(gm__redis *r) {
  if (!r->cluster) return r->c;
  int node = gm__cluster_route(r, -1);
  /* The first node read a map once (connect), so one exists. */
  return gm__node_conn(r, node >= 0 ? node : 0)->c;
}

redisContext *gm__redis_context_for(gm__redis *r, const char *key, size_t len) {
  if (!r->cluster) return r->c;
  int node = gm__cluster_route(r, gm__cluster_keyslot(key, len));
  return gm__node_conn(r, node >= 0 ? node : 0)->c;
}

size_t gm__redis_masters(gm__redis *r, redisContext **out, size_t max) {
  if (!r->cluster) {
    if (max) out[0] = r->c;
    return 1;
  }
  if (r->refresh_due) gm__cluster_reload(r, 0);
  size_t n = 0;
  for (size_t i = 0; i < gm__cluster_nodes(r->cluster); i++)
    if (gm__cluster_node_master(r->cluster, (int)i)) {
      if (n < max) out[n] = gm__node_conn(r, (int)i)->c;
      n++;
    }
  return n;
}

void gm__redis_set_timeouts(gm__redis *r, int64_t connect_us, int64_t io_us) {
  r->connect_us = connect_us;
  r->io_us = io_us;
  if (r->c && io_us) redisSetTimeout(r->c, gm__tv(io_us));
  for (size_t i = 0; i < r->nnode; i++)
    if (r->node[i]) gm__redis_set_timeouts(r->node[i], connect_us, io_us);
}

static void gm__outbox_cache_clear_locked(void) {
  for (size_t i = 0; i < gm__outbox_cap; i++) {
    free(gm__outbox_slots[i]);
    gm__outbox_slots[i] = NULL;
  }
  gm__outbox_n = 0;
}

gm_status gm__redis_reconnect(gm__redis *r) {
  if (r->cluster) {
    /* Connections with waiters are the worker's to reopen (when it fails
       them); the others are reopened here, after the map says where. */
    if (gm__cluster_reload(r, 1) != 0) return GM_UNAVAILABLE;
    for (size_t i = 0; i < r->nnode; i++)
      if (r->node[i] && r->node[i]->c->err && !r->node[i]->n_waiting)
        gm__redis_reconnect(r->node[i]);
    return GM_OK;
  }
  redisContext *c = gm__redis_open(r);
  if (!c || c->err) {
    /* Keep the old, failed context: callers then get NULL replies, never a
       NULL context.  Its error becomes the new attempt's (a Redis that now
       refuses gmd's credentials says so, not the old connection's "Server
       closed the connection"), and callers report it from there. */
    if (c && r->c && r->c->err) {
      snprintf(r->c->errstr, sizeof r->c->errstr, "%s", c->errstr);
      snprintf(r->last_error, sizeof r->last_error, "%s", c->errstr);
    }
    gm__ctx_free(r->stop, c);
    return GM_UNAVAILABLE;
  }
  gm__ctx_free(r->stop, r->c);
  r->c = c;
  r->gen++;
  pthread_rwlock_wrlock(&gm__outbox_lock);
  gm__outbox_cache_clear_locked();
  pthread_rwlock_unlock(&gm__outbox_lock);
  return GM_OK;
}

uint64_t gm__redis_reopens(const gm__redis *r) {
  uint64_t n = r->gen;
  for (size_t i = 0; i < r->nnode; i++)
    if (r->node[i]) n += r->node[i]->gen;
  return n;
}

static void gm__redis_note_error(gm__redis *r, const redisContext *c) {
  char buf[128];
  snprintf(r->last_error, sizeof r->last_error, "%s",
           gm__redis_ctx_error(r, c, buf, sizeof buf));
}

/* Notes the failure and counts it (gm__redis_command_in's caller, the
   settler, counts its own: it sees every failure of its connection). */
static void gm__redis_failed(gm__redis *r, const redisContext *c) {
  gm__redis_note_error(r, c);
  gm__count(GM__COUNT_REDIS_ERRORS);
}

const char *gm__redis_last_error(const gm__redis *r) {
  return r->last_error[0] ? r->last_error : "no error";
}

void gm__redis_ctx_where(const redisContext *c, char *out, size_t outlen) {
  /* As r->where is written (gm__redis_connect); a context that never
     connected (gm__ctx_stopped) has neither. */
  if (c && c->connection_type == REDIS_CONN_TCP && c->tcp.host)
    snprintf(out, outlen, "%s:%d", c->tcp.host, c->tcp.port);
  else if (c && c->unix_sock.path)
    snprintf(out, outlen, "unix socket %s", c->unix_sock.path);
  else
    snprintf(out, outlen, "?");
}

const char *gm__redis_where(const gm__redis *r) {
  return r->where;
}

void gm__redis_set_pipelined(gm__redis *r, int on) {
  r->pipelined = on;
  for (size_t i = 0; i < r->nnode; i++)
    if (r->node[i]) r->node[i]->pipelined = on;
}

size_t gm__redis_waiting(const gm__redis *r) {
  size_t n = r->n_waiting;
  for (size_t i = 0; i < r->nnode; i++)
    if (r->node[i]) n += r->node[i]->n_waiting;
  return n;
}

size_t gm__redis_buffered(const gm__redis *r) {
  size_t n = r->c && r->c->obuf ? sdslen(r->c->obuf) : 0;
  for (size_t i = 0; i < r->nnode; i++)
    if (r->node[i]) n += gm__redis_buffered(r->node[i]);
  return n;
}

/*
 * The epoll set holds the sockets of node connections that had waiters:
 * one is added when its first command waits, and leaves only when it is
 * readable with nobody waiting (so a busy connection costs no epoll_ctl per
 * round).  A socket closed by a reopen left the set by itself (the kernel
 * drops closed descriptors), and its number may come back for another
 * socket: what is registered is known by connection generation, never by
 * number alone.
 */
int gm__redis_fd(gm__redis *r) {
  if (!r->cluster) return r->c ? r->c->fd : -1;
  for (size_t i = 0; i < r->nnode; i++) {
    gm__redis *n = r->node[i];
    if (!n) continue;
    if (r->ep_fd[i] >= 0 && r->ep_gen[i] != n->gen) r->ep_fd[i] = -1;
    if (r->ep_fd[i] >= 0 || !n->n_waiting || n->c->err) continue;
    struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)i};
    if (epoll_ctl(r->epfd, EPOLL_CTL_ADD, n->c->fd, &ev) == 0) {
      r->ep_fd[i] = n->c->fd;
      r->ep_gen[i] = n->gen;
    }
  }
  return r->epfd;
}

/* Appends the formatted command for the running fiber and waits in `wait`
   until the worker has read its reply. */
static redisReply *gm__redis_queue(gm__redis *r, const char *cmd, size_t len,
                                   gm__redis_wait *wait, int *err) {
  /* A broken connection takes no more commands (its buffer would grow for
     as long as Redis is down).  With nobody else waiting on it, it can be
     reopened here; otherwise the worker reopens it when it fails them. */
  if (r->c->err && (r->n_waiting || gm__redis_reconnect(r) != GM_OK)) {
    gm__redis_failed(r, r->c);
    *err = REDIS_ERR_IO;
    return NULL;
  }
  if (redisAppendFormattedCommand(r->c, cmd, len) != REDIS_OK) abort();
  if (r->tail)
    r->tail->next = wait;
  else
    r->head = wait;
  r->tail = wait;
  if (wait->opens_wait) r->wait_open = wait;
  if (r->n_waiting++ == 0) r->progress_us = gm__clock_mono_us();
  gm__fiber_yield();
  *err = wait->err;
  return wait->reply;
}

static redisReply *gm__redis_wait_reply(gm__redis *r, gm__arena *a,
                                        const char *cmd, size_t len, int *err) {
  gm__redis_wait wait = {.fiber = gm__fiber_current(), .arena = a};
  return gm__redis_queue(r, cmd, len, &wait, err);
}

/* Resumes the fibers that joined w's WAIT with its outcome (before w's own
   fiber, which frees the reply). */
static void gm__redis_resume_joined(gm__redis *r, gm__redis_wait *w,
                                    const redisReply *reply, int err) {
  if (r->wait_open == w) r->wait_open = NULL;
  gm__redis_wait *j = w->joined;
  w->joined = NULL;
  while (j) {
    gm__redis_wait *next = j->next;
    j->err = err;
    j->acked = !err && reply->type == REDIS_REPLY_INTEGER ? reply->integer : -1;
    gm__fiber_resume(j->fiber); /* may open the next WAIT */
    j = next;
  }
}

/* The oldest waiter, out of the list. */
static gm__redis_wait *gm__redis_pop(gm__redis *r) {
  gm__redis_wait *w = r->head;
  r->head = w->next;
  if (!r->head) r->tail = NULL;
  r->n_waiting--;
  w->next = NULL;
  return w;
}

/*
 * The connection broke (I/O error, a reply hiredis cannot read, or no reply
 * for too long: `why`, else the context's error): every waiter fails (the first
 * with `err`, the rest with an I/O error: each caller retries by its own
 * rules), after the connection is reopened, so a retry goes to the new one and
 * its commands form a new list.
 */
static void gm__redis_fail_all(gm__redis *r, int err, const char *why) {
  gm__count(GM__COUNT_REDIS_ERRORS);
  if (why)
    snprintf(r->last_error, sizeof r->last_error, "%s", why);
  else
    gm__redis_note_error(r, r->c);
  gm__redis_wait *w = r->head;
  r->head = r->tail = NULL;
  r->n_waiting = 0;
  r->wait_open = NULL;
  /* The waiters' arenas are theirs again once they resume. */
  gm__reader_drop(r->c);
  if (gm__redis_reconnect(r) != GM_OK && !r->c->err) {
    /* Kept (no new connection): replies of the failed commands may still
       come on it, and would answer later commands; it takes no more. */
    r->c->err = REDIS_ERR_IO;
    snprintf(r->c->errstr, sizeof r->c->errstr, "%s", r->last_error);
  }
  for (int first = 1; w; first = 0) {
    gm__redis_wait *next = w->next;
    w->next = NULL;
    w->err = first ? err : REDIS_ERR_IO;
    gm__redis_resume_joined(r, w, NULL, REDIS_ERR_IO);
    if (w->fiber) {
      gm__fiber_resume(w->fiber); /* may append to the new list */
    } else {
      gm__log(GM_LOG_WARN, "redis",
              "%s may not have run: the connection to %s failed (%s)", w->what,
              r->where, r->last_error);
      free(w);
    }
    w = next;
  }
}

/* Hands one reply to the oldest waiter and resumes it. */
static void gm__redis_deliver(gm__redis *r, void *reply) {
  r->progress_us = gm__clock_mono_us();
  gm__redis_wait *w = gm__redis_pop(r);
  if (!w->fiber) {
    redisReply *rep = reply;
    if (rep->type == REDIS_REPLY_ERROR)
      gm__log(GM_LOG_ERROR, "redis", "%s failed: %s", w->what, rep->str);
    freeReplyObject(reply);
    free(w);
    return;
  }
  w->reply = reply;
  gm__redis_resume_joined(r, w, reply, 0);
  gm__fiber_resume(w->fiber);
}

/* Writes the output buffer; on failure every waiter fails (0 / -1). */
static int gm__redis_write(gm__redis *r) {
  int done = 0, ok = !r->c->err;
  while (ok && !done) ok = redisBufferWrite(r->c, &done) == REDIS_OK;
  if (ok) return 0;
  gm__redis_fail_all(r, REDIS_ERR_IO, NULL);
  return -1;
}

void gm__redis_send(gm__redis *r) {
  for (size_t i = 0; i < r->nnode; i++)
    if (r->node[i]) gm__redis_send(r->node[i]);
  if (r->cluster) return;
  /* A failure resumes the waiters, whose retries queue on the reopened
     connection: write those too.  Each caller retries a bounded number of
     times, so this ends. */
  while (r->n_waiting && gm__redis_write(r) != 0) {
  }
}

void gm__redis_receive(gm__redis *r) {
  if (r->cluster) {
    gm__redis_fd(r); /* a waiter resumed earlier may have changed the set */
    struct epoll_event ev[16];
    int n = epoll_wait(r->epfd, ev, 16, 0);
    for (int k = 0; k < n; k++) {
      uint32_t i = ev[k].data.u32;
      gm__redis *node = i < r->nnode ? r->node[i] : NULL;
      if (!node) continue;
      if (node->n_waiting) {
        gm__redis_receive(node);
      } else if (r->ep_fd[i] >= 0 && r->ep_gen[i] == node->gen) {
        /* Readable with nobody waiting (the server closed it): out of the
           set, or the worker's poll would never sleep. */
        epoll_ctl(r->epfd, EPOLL_CTL_DEL, r->ep_fd[i], NULL);
        r->ep_fd[i] = -1;
      }
    }
    return;
  }
  if (!r->n_waiting) return;
  if (r->c->err || redisBufferRead(r->c) != REDIS_OK) {
    gm__redis_fail_all(r, r->c->err ? r->c->err : REDIS_ERR_IO, NULL);
    return;
  }
  /* Every complete reply now, so none is left in hiredis's buffer while
     the worker waits for the socket to become readable. */
  while (r->n_waiting) {
    void *reply = NULL;
    gm__reader_into(r->c, r->head->arena);
    if (redisGetReplyFromReader(r->c, &reply) != REDIS_OK) {
      gm__redis_fail_all(r, REDIS_ERR_PROTOCOL, NULL);
      return;
    }
    if (!reply) break; /* the rest of it comes later: still the head's */
    gm__redis_deliver(r, reply);
  }
  gm__reader_into(r->c, NULL);
}

void gm__redis_expire(gm__redis *r, uint64_t limit_us) {
  for (size_t i = 0; i < r->nnode; i++)
    if (r->node[i]) gm__redis_expire(r->node[i], limit_us);
  if (!r->n_waiting || gm__clock_mono_us() - r->progress_us < limit_us) return;
  gm__log(GM_LOG_ERROR, "redis",
          "no reply from Redis at %s for %llu ms with %zu commands waiting; "
          "reconnecting",
          r->where, (unsigned long long)(limit_us / 1000u), r->n_waiting);
  char why[64];
  snprintf(why, sizeof why, "no reply for %llu ms",
           (unsigned long long)(limit_us / 1000u));
  gm__redis_fail_all(r, REDIS_ERR_IO, why);
}

/*
 * One blocking round: writes what is queued and reads the replies of every
 * command queued before the call, resuming each waiter; commands queued by
 * fibers resumed meanwhile wait for the next round.
 */
void gm__redis_flush(gm__redis *r) {
  for (size_t i = 0; i < r->nnode; i++)
    if (r->node[i]) gm__redis_flush(r->node[i]);
  if (!r->n_waiting) return;
  gm__redis_wait *last = r->tail;
  if (gm__redis_write(r) != 0) return;
  for (;;) {
    void *reply = NULL;
    gm__reader_into(r->c, r->head->arena);
    int rc = redisGetReply(r->c, &reply);
    gm__reader_into(r->c, NULL);
    if (rc != REDIS_OK) {
      gm__redis_fail_all(
          r,
          r->c->err == REDIS_ERR_PROTOCOL ? REDIS_ERR_PROTOCOL : REDIS_ERR_IO,
          NULL);
      return;
    }
    int was_last = r->head == last;
    gm__redis_deliver(r, reply);
    if (was_last) return;
  }
}

/*
 * Runs one formatted command over r: queued with other fibers' commands when
 * r is pipelined and a fiber is running, else at once.  NULL on failure, with
 * *err the hiredis error (r->last_error says why).
 */
static redisReply *gm__exec_one(gm__redis *r, gm__arena *a, const char *cmd,
                                size_t len, int *err) {
  *err = 0;
  if (r->pipelined && gm__fiber_current())
    return gm__redis_wait_reply(r, a, cmd, len, err);
  if (r->c->err && gm__redis_reconnect(r) != GM_OK) {
    gm__redis_failed(r, r->c);
    *err = REDIS_ERR_IO;
    return NULL;
  }
  void *reply = NULL;
  gm__reader_into(r->c, a);
  if (redisAppendFormattedCommand(r->c, cmd, len) != REDIS_OK ||
      redisGetReply(r->c, &reply) != REDIS_OK) {
    gm__reader_drop(r->c);
    gm__redis_failed(r, r->c);
    *err = r->c->err ? r->c->err : REDIS_ERR_IO;
    gm__reply_free(reply);
    return NULL;
  }
  gm__reader_into(r->c, NULL);
  return reply;
}

static void gm__command_nowait(gm__redis *r, int argc, const char **argv,
                               const size_t *lens, const char *what);

/* The command on `n` as the first after ASKING: appended right behind it
   with nothing between (a fiber runs until it waits). */
static redisReply *gm__exec_asking(gm__redis *n, gm__arena *a, const char *cmd,
                                   size_t len, int *err) {
  const char *argv[] = {"ASKING"};
  size_t lens[] = {6};
  if (n->pipelined && gm__fiber_current()) {
    gm__command_nowait(n, 1, argv, lens, "ASKING");
    return gm__exec_one(n, a, cmd, len, err);
  }
  redisReply *ok = gm__exec_one(n, NULL, "*1\r\n$6\r\nASKING\r\n", 16, err);
  if (!ok) return NULL;
  freeReplyObject(ok);
  return gm__exec_one(n, a, cmd, len, err);
}

/* SCRIPT LOAD as redisFormatCommand writes it (the rest is the source). */
static const char gm__script_load[] = "*3\r\n$6\r\nSCRIPT\r\n$4\r\nLOAD\r\n";

/*
 * SCRIPT LOAD on every master: like a function library, a script lives per
 * node, and the EVALSHA that follows goes to the master of its keys, which
 * must have it (else NOSCRIPT again, whichever master one load reached).
 * The first reply that is not an error (the SHA1 of the text, the same on
 * every node), else the first error reply,
 * or NULL when no master answered.
 */
static redisReply *gm__cluster_exec_masters(gm__redis *r, const char *cmd,
                                            size_t len, int *err) {
  if (r->refresh_due) gm__cluster_reload(r, 0);
  redisReply *first = NULL;
  int first_err = REDIS_ERR_IO;
  snprintf(r->last_error, sizeof r->last_error, "the cluster has no master");
  for (size_t i = 0; i < gm__cluster_nodes(r->cluster); i++) {
    if (!gm__cluster_node_master(r->cluster, (int)i)) continue;
    gm__redis *n = gm__node_conn(r, (int)i);
    int e = 0;
    redisReply *reply = gm__exec_one(n, NULL, cmd, len, &e);
    if (!reply) {
      snprintf(r->last_error, sizeof r->last_error, "%.40s: %.85s", n->where,
               n->last_error);
      gm__log(GM_LOG_WARN, "redis", "SCRIPT LOAD on %s: %s", n->where,
              n->last_error);
      first_err = e;
    } else if (!first || (first->type == REDIS_REPLY_ERROR &&
                          reply->type != REDIS_REPLY_ERROR)) {
      if (first) freeReplyObject(first);
      first = reply;
    } else {
      freeReplyObject(reply);
    }
  }
  *err = first ? 0 : first_err;
  return first;
}

/* One command on a cluster: to its slot's master, following redirections
   (see "cluster" above). */
static redisReply *gm__cluster_exec(gm__redis *r, gm__arena *a, const char *cmd,
                                    size_t len, int *err) {
  int slot = gm__cluster_command_slot(cmd, len);
  if (slot < 0 && len > sizeof gm__script_load - 1 &&
      strncasecmp(cmd, gm__script_load, sizeof gm__script_load - 1) == 0)
    return gm__cluster_exec_masters(r, cmd, len, err);
  int node = gm__cluster_route(r, slot), asking = 0;
  for (int hop = 0;; hop++) {
    if (node < 0) {
      gm__count(GM__COUNT_REDIS_ERRORS);
      *err = REDIS_ERR_IO;
      return NULL;
    }
    gm__redis *n = gm__node_conn(r, node);
    redisReply *reply = asking ? gm__exec_asking(n, a, cmd, len, err)
                               : gm__exec_one(n, a, cmd, len, err);
    if (!reply) {
      snprintf(r->last_error, sizeof r->last_error, "%.40s: %.85s", n->where,
               n->last_error);
      /* The node may be gone for good (a failover): the caller's retry
         goes where the map read now says. */
      if (*err == REDIS_ERR_IO) gm__cluster_reload(r, 0);
      return NULL;
    }
    r->answered = n;
    if (reply->type != REDIS_REPLY_ERROR || hop >= GM__CLUSTER_HOPS)
      return reply;
    char host[256];
    int rslot, port;
    int kind = gm__cluster_redirect(reply->str, reply->len, &rslot, host,
                                    sizeof host, &port);
    if (!kind) {
      if (strncmp(reply->str, "CLUSTERDOWN", 11) == 0 ||
          strncmp(reply->str, "TRYAGAIN", 8) == 0)
        r->refresh_due = 1;
      return reply;
    }
    gm__reply_free(reply);
    node = gm__cluster_node(r->cluster, host, port);
    asking = kind == GM__CLUSTER_ASK;
    if (!asking) {
      gm__cluster_set_slot(r->cluster, rslot, node);
      r->refresh_due = 1; /* other slots moved with it, most likely */
    }
  }
}

/* One command; its reply read into `a` when not NULL (free it with
   gm__reply_free), else hiredis's own (freeReplyObject). */
static redisReply *gm__exec_in(gm__redis *r, gm__arena *a, const char *cmd,
                               size_t len, int *err) {
  return r->cluster ? gm__cluster_exec(r, a, cmd, len, err)
                    : gm__exec_one(r, a, cmd, len, err);
}

static redisReply *gm__exec(gm__redis *r, const char *cmd, size_t len,
                            int *err) {
  return gm__exec_in(r, NULL, cmd, len, err);
}

/*
 * Sends one command, once more after an I/O error (the connection is
 * reopened in between).  A command may then run twice; every script call is
 * safe to repeat: a mutating one returns its stored reply, a read changes
 * nothing, and timer scripts already run in every broker sharing the Redis,
 * so they are written to be repeatable.  NULL when Redis stays unreachable
 * or the reply broke the protocol (a reply nested deeper than hiredis reads:
 * sending it again would fail the same way).
 */
static redisReply *gm__command_formatted(gm__redis *r, const char *cmd,
                                         size_t len) {
  for (int attempt = 0; attempt < 2; attempt++) {
    int err;
    redisReply *reply = gm__exec(r, cmd, len, &err);
    if (reply || err == REDIS_ERR_PROTOCOL) return reply;
  }
  return NULL;
}

static redisReply *gm__command(gm__redis *r, int argc, const char **argv,
                               const size_t *lens) {
  char *cmd = NULL;
  long long len = redisFormatCommandArgv(&cmd, argc, argv, lens);
  if (len < 0) abort();
  redisReply *reply = gm__command_formatted(r, cmd, (size_t)len);
  redisFreeCommand(cmd);
  return reply;
}

/*
 * Sends one command whose reply nobody needs.  From a fiber on a pipelined
 * connection it is appended behind the other requests' commands and the
 * fiber goes on at once; the reply is dropped when it arrives (an error
 * reply is logged).  Otherwise it runs at once.  `what` names it in the log
 * (a string that outlives the reply: a literal).
 */
static void gm__command_nowait(gm__redis *r, int argc, const char **argv,
                               const size_t *lens, const char *what) {
  if (r->cluster) {
    /* A MOVED reply to it is logged and dropped: what is sent this way is
       repaired by reconciliation (the deadline index), and the next command
       reads the map again. */
    int node = gm__cluster_route(r, gm__cluster_argv_slot(argc, argv, lens));
    if (node < 0) {
      gm__log(GM_LOG_WARN, "redis", "%s was not sent: %s", what, r->last_error);
      return;
    }
    gm__command_nowait(gm__node_conn(r, node), argc, argv, lens, what);
    return;
  }
  if (!(r->pipelined && gm__fiber_current())) {
    redisReply *reply = gm__command(r, argc, argv, lens);
    /* Cut by gmd's stop (redis.h): not a failure of Redis. */
    if (!reply && gm__redis_stopping(r->stop))
      gm__log(GM_LOG_INFO, "redis",
              "%s not sent: gmd is stopping (reconciliation repairs it)", what);
    else if (!reply || reply->type == REDIS_REPLY_ERROR)
      gm__log(GM_LOG_ERROR, "redis", "%s failed: %s", what,
              reply ? reply->str : r->last_error);
    if (reply) freeReplyObject(reply);
    return;
  }
  if (r->c->err && (r->n_waiting || gm__redis_reconnect(r) != GM_OK)) {
    gm__redis_note_error(r, r->c);
    gm__log(GM_LOG_WARN, "redis", "%s was not sent: Redis at %s is down (%s)",
            what, r->where, r->last_error);
    return;
  }
  gm__redis_wait *w = calloc(1, sizeof *w);
  if (!w) abort();
  w->what = what;
  if (redisAppendCommandArgv(r->c, argc, argv, lens) != REDIS_OK) abort();
  if (r->tail)
    r->tail->next = w;
  else
    r->head = w;
  r->tail = w;
  if (r->n_waiting++ == 0) r->progress_us = gm__clock_mono_us();
}

redisReply *gm__redis_command_in(gm__redis *r, gm__arena *a, int argc,
                                 const char **argv, const size_t *lens) {
  if (r->cluster) {
    int node = gm__cluster_route(r, gm__cluster_argv_slot(argc, argv, lens));
    for (int hop = 0; node >= 0; hop++) {
      gm__redis *n = gm__node_conn(r, node);
      redisReply *reply = gm__redis_command_in(n, a, argc, argv, lens);
      char host[256];
      int slot, port;
      if (!reply) {
        snprintf(r->last_error, sizeof r->last_error, "%.40s: %.85s", n->where,
                 n->last_error);
        return NULL;
      }
      if (reply->type != REDIS_REPLY_ERROR || hop >= GM__CLUSTER_HOPS ||
          gm__cluster_redirect(reply->str, reply->len, &slot, host, sizeof host,
                               &port) != GM__CLUSTER_MOVED)
        return reply; /* in the arena: nothing to free */
      node = gm__cluster_node(r->cluster, host, port);
      gm__cluster_set_slot(r->cluster, slot, node);
      r->refresh_due = 1;
    }
    return NULL;
  }
  if (r->c->err) { /* the caller decides when to reconnect */
    gm__redis_note_error(r, r->c);
    return NULL;
  }
  gm__reader_into(r->c, a);
  redisReply *reply = redisCommandArgv(r->c, argc, argv, lens);
  /* redisCommandArgv has read the whole reply (or failed). */
  if (reply) {
    gm__reader_into(r->c, NULL);
  } else {
    gm__reader_drop(r->c);
    gm__redis_note_error(r, r->c);
  }
  return reply;
}

int gm__redis_commands_in(gm__redis *r, gm__arena *a, size_t n, const int *argc,
                          const char *const *const *argv, redisReply **out) {
  for (size_t i = 0; i < n; i++) out[i] = NULL;
  if (r->cluster) {
    /* One pipeline per master, each with the commands of its slots, in
       their order; a MOVED reply is left to the caller (reconnect reads
       the map again). */
    int *node = gm__arena_alloc(a, (n + 1) * sizeof *node);
    size_t *pick = gm__arena_alloc(a, (n + 1) * sizeof *pick);
    int *sub_argc = gm__arena_alloc(a, (n + 1) * sizeof *sub_argc);
    const char *const **sub_argv =
        gm__arena_alloc(a, (n + 1) * sizeof *sub_argv);
    redisReply **sub_out = gm__arena_alloc(a, (n + 1) * sizeof *sub_out);
    for (size_t i = 0; i < n; i++)
      node[i] =
          gm__cluster_route(r, gm__cluster_argv_slot(argc[i], argv[i], NULL));
    int rc = 0;
    for (size_t i = 0; i < n; i++) {
      if (node[i] == INT_MIN) continue; /* sent with an earlier node's */
      int at = node[i] >= 0 ? node[i] : 0;
      size_t k = 0;
      for (size_t j = i; j < n; j++)
        if (node[j] == node[i]) {
          pick[k] = j;
          sub_argc[k] = argc[j];
          sub_argv[k] = argv[j];
          k++;
        }
      int sub = node[i];
      for (size_t j = i; j < n; j++)
        if (node[j] == sub) node[j] = INT_MIN;
      gm__redis *nc = gm__node_conn(r, at);
      if (gm__redis_commands_in(nc, a, k, sub_argc,
                                (const char *const *const *)sub_argv,
                                sub_out) != 0) {
        snprintf(r->last_error, sizeof r->last_error, "%.40s: %.85s", nc->where,
                 nc->last_error);
        rc = -1;
      }
      for (size_t m = 0; m < k; m++) out[pick[m]] = sub_out[m];
    }
    return rc;
  }
  if (r->c->err) {
    gm__redis_note_error(r, r->c);
    return -1;
  }
  for (size_t i = 0; i < n; i++)
    if (redisAppendCommandArgv(r->c, argc[i], (const char **)argv[i], NULL) !=
        REDIS_OK) {
      gm__redis_note_error(r, r->c);
      return -1;
    }
  gm__reader_into(r->c, a);
  int rc = 0;
  for (size_t i = 0; i < n && rc == 0; i++) {
    void *reply = NULL;
    if (redisGetReply(r->c, &reply) != REDIS_OK || !reply) rc = -1;
    out[i] = reply;
  }
  if (rc == 0) {
    gm__reader_into(r->c, NULL);
  } else {
    gm__reader_drop(r->c);
    gm__redis_note_error(r, r->c);
  }
  return rc;
}

redisReply *gm__redis_callv(gm__redis *r, int argc, const char **argv,
                            const size_t *lens) {
  return gm__command(r, argc, argv, lens);
}

redisReply *gm__redis_callf(gm__redis *r, const char *fmt, ...) {
  char *cmd = NULL;
  va_list ap;
  va_start(ap, fmt);
  int len = redisvFormatCommand(&cmd, fmt, ap);
  va_end(ap);
  if (len < 0) abort();
  redisReply *reply = gm__command_formatted(r, cmd, (size_t)len);
  redisFreeCommand(cmd);
  return reply;
}

/* ---- script registry ---- */

static gm__script *gm__script_find_locked(const char *market,
                                          const char *name) {
  for (size_t i = 0; i < gm__nscripts; i++)
    if (strcmp(gm__scripts[i]->name, name) == 0 &&
        strcmp(gm__scripts[i]->market, market) == 0)
      return gm__scripts[i];
  return NULL;
}

static void gm__script_free(gm__script **sp) {
  if (!*sp) return;
  free((*sp)->market);
  free((*sp)->name);
  free((*sp)->source);
  free(*sp);
  *sp = NULL;
}

static size_t gm__library_find_locked(const char *market) {
  size_t i = 0;
  while (i < gm__nlibs && strcmp(gm__libs[i]->market, market) != 0) i++;
  return i;
}

static void gm__library_free(gm__library **lp) {
  if (!*lp) return;
  free((*lp)->market);
  free((*lp)->source);
  free(*lp);
  *lp = NULL;
}

/* Appends s[0..n) to the growing buffer *b (length *len, room *cap). */
static void gm__buf_put(char **b, size_t *len, size_t *cap, const char *s,
                        size_t n) {
  if (*len + n + 1 > *cap) {
    while (*len + n + 1 > *cap) *cap = *cap ? *cap * 2 : 4096;
    *b = realloc(*b, *cap);
    if (!*b) abort();
  }
  memcpy(*b + *len, s, n);
  *len += n;
  (*b)[*len] = '\0';
}

static void gm__buf_puts(char **b, size_t *len, size_t *cap, const char *s) {
  gm__buf_put(b, len, cap, s, strlen(s));
}

/* `s` with every character Redis refuses in a function name (it takes
   [A-Za-z0-9_]) as '_', cut to fit out[0..n). */
static void gm__fn_part(char *out, size_t n, const char *s) {
  size_t i = 0;
  for (; s[i] && i + 1 < n; i++) {
    unsigned char c = (unsigned char)s[i];
    out[i] = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                     (c >= '0' && c <= '9')
                 ? (char)c
                 : '_';
  }
  out[i] = '\0';
}

/* A Lua long string holding `s` as it is: the first level L whose closing
   bracket "]" "="*L "]" neither occurs in s nor is begun by s's end (s
   ending in "]" "="*L would close it early), opened by a newline, which
   Lua drops, so a newline s starts with is kept (Lua reads a carriage
   return in it as a newline: source and names never need one). */
static void gm__lua_long_string(char **b, size_t *len, size_t *cap,
                                const char *s) {
  size_t n = strlen(s), level = 1;
  char *close = NULL;
  for (;; level++) {
    close = realloc(close, level + 3);
    if (!close) abort();
    close[0] = ']';
    memset(close + 1, '=', level);
    close[level + 1] = ']';
    close[level + 2] = '\0';
    int ends_open = n >= level + 1 && s[n - level - 1] == ']' &&
                    strspn(s + n - level, "=") == level;
    if (!strstr(s, close) && !ends_open) break;
  }
  gm__buf_puts(b, len, cap, "[");
  for (size_t i = 0; i < level; i++) gm__buf_puts(b, len, cap, "=");
  gm__buf_puts(b, len, cap, "[\n");
  gm__buf_put(b, len, cap, s, n);
  gm__buf_puts(b, len, cap, close);
  free(close);
}

/*
 * The FUNCTION LOAD text of `market`'s library named `name` (the write lock
 * held): the host's code, then each of the market's scripts (its source,
 * its name and its function); with `set_fn`, each script's function name
 * is written into its registry entry.
 */
static char *gm__library_text_locked(const char *market, const char *name,
                                     int set_fn) {
  char *b = NULL, part[48];
  size_t len = 0, cap = 0, k = 0;
  gm__buf_puts(&b, &len, &cap, "#!lua name=");
  gm__buf_puts(&b, &len, &cap, name);
  gm__buf_puts(&b, &len, &cap, "\n");
  gm__buf_puts(&b, &len, &cap, gm__library_host);
  /* The host's store of a read-only step's reply (gm__script_run). */
  char store[GM__FN_MAX];
  snprintf(store, sizeof store, "%s_store", name);
  char line[GM__FN_MAX + 160];
  snprintf(line, sizeof line, "redis.register_function('%s', gm__store)\n",
           store);
  gm__buf_puts(&b, &len, &cap, line);
  for (size_t i = 0; i < gm__nscripts; i++) {
    gm__script *s = gm__scripts[i];
    if (strcmp(s->market, market) != 0) continue;
    k++;
    gm__fn_part(part, sizeof part, s->name);
    char fn[GM__FN_MAX];
    snprintf(fn, sizeof fn, "%s_%zu_%s", name, k, part);
    if (set_fn) {
      memcpy(s->fn, fn, sizeof fn);
      memcpy(s->store, store, sizeof store);
    }
    snprintf(line, sizeof line, "gm__src[%zu] = ", k);
    gm__buf_puts(&b, &len, &cap, line);
    gm__lua_long_string(&b, &len, &cap, s->source);
    snprintf(line, sizeof line, "\ngm__name[%zu] = ", k);
    gm__buf_puts(&b, &len, &cap, line);
    gm__lua_long_string(&b, &len, &cap, s->name);
    /* A read-only script's function is flagged no-writes: Redis runs it
       over maxmemory and refuses any write it tries (FCALL_RO). */
    if (s->flags & GM_SCRIPT_READ_ONLY)
      snprintf(line, sizeof line,
               "\nredis.register_function{function_name = '%s', "
               "callback = function(K, A) return gm__run_ro(%zu, K, A) end, "
               "flags = {'no-writes'}}\n",
               fn, k);
    else if (s->flags & GM_SCRIPT_ALLOW_OOM)
      /* A script that frees memory runs over maxmemory too. */
      snprintf(line, sizeof line,
               "\nredis.register_function{function_name = '%s', "
               "callback = function(K, A) return gm__run(%zu, K, A) end, "
               "flags = {'allow-oom'}}\n",
               fn, k);
    else
      snprintf(line, sizeof line,
               "\nredis.register_function('%s', function(K, A) "
               "return gm__run(%zu, K, A) end)\n",
               fn, k);
    gm__buf_puts(&b, &len, &cap, line);
  }
  return b;
}

/*
 * Builds `market`'s library from its scripts in the registry (the write
 * lock held) and names each script's function; replaces the old library.
 * A market without scripts has none.
 */
static void gm__library_build_locked(const char *market) {
  size_t li = gm__library_find_locked(market);
  if (li < gm__nlibs) {
    gm__library_free(&gm__libs[li]);
    gm__libs[li] = gm__libs[--gm__nlibs];
    if (gm__nlibs == 0) {
      free(gm__libs);
      gm__libs = NULL;
    }
  }
  size_t n = 0;
  for (size_t i = 0; i < gm__nscripts; i++)
    if (strcmp(gm__scripts[i]->market, market) == 0) n++;
  if (n == 0) return;

  gm__library *lib = calloc(1, sizeof *lib);
  if (!lib) abort();
  lib->market = strdup(market);
  if (!lib->market) abort();
  char part[48];
  gm__fn_part(part, sizeof part, market);
  /* The hash is of the whole text as it would be with a hash of zero (the
     names it gives come from the hash) and the market's full name: any
     change to what the library is made of, the host's glue around the
     scripts included, gives another name, so two builds whose libraries
     differ never share one. */
  snprintf(lib->name, sizeof lib->name, "gm_%s_%016llx", part, 0ull);
  char *text = gm__library_text_locked(market, lib->name, 0);
  uint64_t h = gm__hash_update(GM__HASH_INIT, market, strlen(market) + 1);
  h = gm__hash_update(h, text, strlen(text));
  free(text);
  snprintf(lib->name, sizeof lib->name, "gm_%s_%016llx", part,
           (unsigned long long)h);
  lib->source = gm__library_text_locked(market, lib->name, 1);
  gm__libs = realloc(gm__libs, (gm__nlibs + 1) * sizeof *gm__libs);
  if (!gm__libs) abort();
  gm__libs[gm__nlibs++] = lib;
}

/* Compiles `source` as the library will (gm__script_check): 0; -1 and err
   with Lua's message when it does not compile; -2 and err when Redis is
   not reachable. */
static int gm__script_compile(gm__redis *r, const char *name,
                              const char *source, char *err, size_t errlen) {
  char chunk[GM__FN_MAX];
  snprintf(chunk, sizeof chunk, "@%s", name);
  const char *argv[] = {"EVAL", gm__script_check, "0", source, chunk};
  size_t lens[] = {4, strlen(gm__script_check), 1, strlen(source),
                   strlen(chunk)};
  redisReply *reply = gm__command(r, 5, argv, lens);
  if (!reply) {
    snprintf(err, errlen,
             "Redis is not reachable at %s (%s); is redis-server running?",
             r->where, r->last_error);
    return -2;
  }
  int rc = -1;
  if (reply->type == REDIS_REPLY_INTEGER && reply->integer == 1)
    rc = 0;
  else if (reply->type == REDIS_REPLY_ERROR)
    snprintf(err, errlen, "%s", reply->str);
  else
    snprintf(err, errlen, "the compile check gave an unexpected reply type %d",
             reply->type);
  freeReplyObject(reply);
  return rc;
}

/* 0 when Redis runs functions (7.0 and later); -1 and err saying so when
   it does not, so an older Redis refuses the plugin at start instead of
   every call; -2 and err when Redis is not reachable. */
static int gm__functions_check(gm__redis *r, char *err, size_t errlen) {
  const char *argv[] = {"COMMAND", "INFO", "FCALL"};
  size_t lens[] = {7, 4, 5};
  redisReply *reply = gm__command(r, 3, argv, lens);
  if (!reply) {
    snprintf(err, errlen,
             "Redis is not reachable at %s (%s); is redis-server running?",
             r->where, r->last_error);
    return -2;
  }
  int rc = reply->type == REDIS_REPLY_ARRAY && reply->elements == 1 &&
                   reply->element[0]->type == REDIS_REPLY_ARRAY
               ? 0
               : -1;
  freeReplyObject(reply);
  if (rc)
    snprintf(err, errlen,
             "Redis at %s has no FCALL: it is older than 7.0, and gmd runs "
             "market scripts as Redis Functions; upgrade redis-server "
             "(Debian 12 ships 7.0)",
             r->where);
  return rc;
}

/* FUNCTION LOAD `source`: 1 when this call loaded the library, 0 when
   Redis had it already (another broker of the same build loaded it: the
   name holds the hash of the text); -1 and err with Redis's text
   otherwise. */
static int gm__library_load(gm__redis *r, const char *source, char *err,
                            size_t errlen) {
  if (r->cluster) {
    /* Functions live per node: every master gets the library (the one
       whose "Function not found" led here among them), so a master that
       is down fails only its own slots' calls, not the load. */
    int loaded = 0, ok = 0, tried = 0;
    if (r->refresh_due) gm__cluster_reload(r, 0);
    for (size_t i = 0; i < gm__cluster_nodes(r->cluster); i++) {
      if (!gm__cluster_node_master(r->cluster, (int)i)) continue;
      tried++;
      int rc = gm__library_load(gm__node_conn(r, (int)i), source, err, errlen);
      if (rc >= 0) ok++;
      if (rc == 1) loaded = 1;
      if (rc < 0)
        gm__log(GM_LOG_WARN, "redis", "FUNCTION LOAD on %s: %s",
                r->node[i]->where, err);
    }
    if (!tried) snprintf(err, errlen, "%s", r->last_error);
    return ok ? loaded : -1;
  }
  const char *argv[] = {"FUNCTION", "LOAD", source};
  size_t lens[] = {8, 4, strlen(source)};
  redisReply *reply = gm__command(r, 3, argv, lens);
  if (!reply) {
    snprintf(err, errlen,
             "Redis is not reachable at %s (%s); is redis-server running?",
             r->where, r->last_error);
    return -1;
  }
  int rc = 1;
  if (reply->type == REDIS_REPLY_ERROR) {
    rc = strncmp(reply->str, "ERR Library '", 13) == 0 &&
                 strstr(reply->str, "' already exists")
             ? 0
             : -1;
    if (rc) snprintf(err, errlen, "%s", reply->str);
  }
  freeReplyObject(reply);
  return rc;
}

gm_status gm__scripts_add(gm__redis *r, const char *market, const char *name,
                          const char *lib, const char *lua, char *err,
                          size_t errlen) {
  return gm__scripts_add_flags(r, market, name, lib, lua, 0, err, errlen);
}

gm_status gm__scripts_add_flags(gm__redis *r, const char *market,
                                const char *name, const char *lib,
                                const char *lua, unsigned flags, char *err,
                                size_t errlen) {
  if (!market || !*market || !name || !*name || !lua) {
    snprintf(err, errlen,
             "script_register needs a market, a non-empty name and source");
    return GM_INVALID_ARGUMENT;
  }
  const unsigned known = GM_SCRIPT_READ_ONLY | GM_SCRIPT_ALLOW_OOM;
  if (flags & ~known) {
    snprintf(err, errlen,
             "script %s.%s: unknown flags 0x%x; the host knows "
             "GM_SCRIPT_READ_ONLY (0x%x) and GM_SCRIPT_ALLOW_OOM (0x%x)",
             market, name, flags & ~known, GM_SCRIPT_READ_ONLY,
             GM_SCRIPT_ALLOW_OOM);
    return GM_INVALID_ARGUMENT;
  }
  /* Read-only implies running over maxmemory (Redis: no-writes). */
  if (flags & GM_SCRIPT_READ_ONLY) flags = GM_SCRIPT_READ_ONLY;
  gm__script *s = calloc(1, sizeof *s);
  if (!s) abort();
  s->flags = flags;
  s->market = strdup(market);
  s->name = strdup(name);
  if (!s->market || !s->name) abort();
  size_t len = 0, cap = 0;
  gm__buf_puts(&s->source, &len, &cap, gm__chunk_head);
  if (lib && *lib) {
    gm__buf_puts(&s->source, &len, &cap, lib);
    if (lib[strlen(lib) - 1] != '\n')
      gm__buf_puts(&s->source, &len, &cap, "\n");
  }
  gm__buf_puts(&s->source, &len, &cap, gm__chunk_call);
  gm__buf_puts(&s->source, &len, &cap, lua);
  gm__buf_puts(&s->source, &len, &cap, gm__chunk_end);

  char why[512];
  int rc = gm__functions_check(r, why, sizeof why);
  if (rc == -1) {
    snprintf(err, errlen, "script %s.%s: %s", market, name, why);
    gm__script_free(&s);
    return GM_FAILED_PRECONDITION;
  }
  if (rc == 0) rc = gm__script_compile(r, name, s->source, why, sizeof why);
  if (rc != 0) {
    if (rc == -2)
      snprintf(err, errlen, "script %s.%s: %s", market, name, why);
    else if (!lib || !*lib)
      snprintf(err, errlen,
               "script %s.%s refused by Redis: %s (line numbers are the "
               "script's own)",
               market, name, why);
    else {
      /* The chunk's lines: the lib's, then the script's (gm__chunk_head). */
      size_t lines = lib[strlen(lib) - 1] != '\n';
      for (const char *p = lib; *p; p++) lines += *p == '\n';
      snprintf(err, errlen,
               "script %s.%s refused by Redis: %s (lines 1-%zu are the "
               "lib's; the script's line N is line %zu + N)",
               market, name, why, lines, lines);
    }
    gm__script_free(&s);
    return rc == -2 ? GM_UNAVAILABLE : GM_INVALID_ARGUMENT;
  }

  gm_status st = GM_OK;
  pthread_rwlock_wrlock(&gm__scripts_lock);
  if (gm__script_find_locked(market, name)) {
    snprintf(err, errlen,
             "script %s.%s is registered twice; give each script its own name",
             market, name);
    st = GM_ALREADY_EXISTS;
  } else {
    if (gm__nscripts == gm__capscripts) {
      gm__capscripts = gm__capscripts ? gm__capscripts * 2 : 16;
      gm__scripts = realloc(gm__scripts, gm__capscripts * sizeof *gm__scripts);
      if (!gm__scripts) abort();
    }
    gm__scripts[gm__nscripts++] = s;
    s = NULL;
    gm__library_build_locked(market);
  }
  pthread_rwlock_unlock(&gm__scripts_lock);
  gm__script_free(&s);
  return st;
}

void gm__scripts_remove(const char *market) {
  pthread_rwlock_wrlock(&gm__scripts_lock);
  size_t kept = 0;
  for (size_t i = 0; i < gm__nscripts; i++) {
    if (strcmp(gm__scripts[i]->market, market) == 0)
      gm__script_free(&gm__scripts[i]);
    else
      gm__scripts[kept++] = gm__scripts[i];
  }
  gm__nscripts = kept;
  if (kept == 0) {
    free(gm__scripts);
    gm__scripts = NULL;
    gm__capscripts = 0;
  }
  gm__library_build_locked(market);
  pthread_rwlock_unlock(&gm__scripts_lock);
}

void gm__scripts_set_idem_ttl(long seconds) {
  if (seconds > 0) atomic_store(&gm__idem_ttl, seconds);
}

long gm__scripts_idem_ttl(void) {
  return atomic_load(&gm__idem_ttl);
}

void gm__scripts_set_wait_replicas(long ms) {
  atomic_store(&gm__wait_replicas_ms, ms > 0 ? ms : 0);
}

long gm__scripts_wait_replicas(void) {
  return atomic_load(&gm__wait_replicas_ms);
}

/* Loads `market`'s library after "Function not found" (a new, flushed or
   restarted Redis, a failover, or the first call of a new build); 0 or -1
   with err.  The source is copied out first: the registry lock is never
   held while the call's fiber waits for Redis. */
static int gm__library_reload(gm_call *call, const char *market, char *err,
                              size_t errlen) {
  char *source = NULL, name[GM__LIB_MAX];
  pthread_rwlock_rdlock(&gm__scripts_lock);
  size_t li = gm__library_find_locked(market);
  if (li < gm__nlibs) {
    source = gm__arena_strdup(call->arena, gm__libs[li]->source);
    memcpy(name, gm__libs[li]->name, sizeof name);
  }
  pthread_rwlock_unlock(&gm__scripts_lock);
  if (!source) {
    snprintf(err, errlen, "market %s has no scripts any more", market);
    return -1;
  }
  int rc = gm__library_load(call->redis, source, err, errlen);
  /* Once per Redis and build: the name an operator looks for before
     removing libraries no build runs (docs/operations.md). */
  if (rc == 1)
    gm__log(GM_LOG_INFO, market,
            "loaded the scripts' library %s into Redis at %s", name,
            call->redis->where);
  return rc < 0 ? -1 : 0;
}

/* ---- outbox registration ---- */

/* Slot of `key` or of the empty slot where it would go; cap > n. */
static size_t gm__outbox_slot(const char *key, uint64_t h) {
  size_t mask = gm__outbox_cap - 1, i = (size_t)h & mask;
  while (gm__outbox_slots[i] && strcmp(gm__outbox_slots[i], key) != 0)
    i = (i + 1) & mask;
  return i;
}

static int gm__outbox_known(const char *key) {
  uint64_t h = gm__hash(key);
  pthread_rwlock_rdlock(&gm__outbox_lock);
  int known = gm__outbox_cap && gm__outbox_slots[gm__outbox_slot(key, h)];
  pthread_rwlock_unlock(&gm__outbox_lock);
  return known;
}

static void gm__outbox_remember(const char *key) {
  uint64_t h = gm__hash(key);
  pthread_rwlock_wrlock(&gm__outbox_lock);
  if (gm__outbox_n >= GM__OUTBOX_CACHE_MAX) gm__outbox_cache_clear_locked();
  if ((gm__outbox_n + 1) * 2 > gm__outbox_cap) {
    char **old = gm__outbox_slots;
    size_t oldcap = gm__outbox_cap;
    gm__outbox_cap = oldcap ? oldcap * 2 : 64;
    gm__outbox_slots = calloc(gm__outbox_cap, sizeof *gm__outbox_slots);
    if (!gm__outbox_slots) abort();
    for (size_t i = 0; i < oldcap; i++)
      if (old[i])
        gm__outbox_slots[gm__outbox_slot(old[i], gm__hash(old[i]))] = old[i];
    free(old);
  }
  size_t i = gm__outbox_slot(key, h);
  if (!gm__outbox_slots[i]) {
    gm__outbox_slots[i] = strdup(key);
    if (!gm__outbox_slots[i]) abort();
    gm__outbox_n++;
  }
  pthread_rwlock_unlock(&gm__outbox_lock);
}

/*
 * Adds the stream to gm:outboxes, the settler's list, after a run that
 * appended to it or set a deadline on its tag (the deadline service walks
 * the same list).  A broker that dies between the run and this leaves a
 * stream the list lacks: the settler's discovery walk finds it (settle.c).
 * Any failure is retryable: the run was made, and a retry replays its
 * reply and registers again.
 */
static gm_status gm__outbox_register(gm_call *call, const char *stream,
                                     int made) {
  if (!made && gm__outbox_known(stream)) return GM_OK;
  const char *argv[] = {"SADD", "gm:outboxes", stream};
  size_t lens[] = {4, 11, strlen(stream)};
  redisReply *reply = gm__command(call->redis, 3, argv, lens);
  /* Over maxmemory Redis refuses any SADD, even of a member there already
     (the common case: a step that frees, run with GM_SCRIPT_ALLOW_OOM, on
     a tag this process has not registered since it started): a member
     there needs nothing. */
  if (reply && reply->type == REDIS_REPLY_ERROR && !made &&
      !strncmp(reply->str, "OOM ", 4)) {
    freeReplyObject(reply);
    argv[0] = "SISMEMBER";
    lens[0] = 9;
    reply = gm__command(call->redis, 3, argv, lens);
    if (reply && reply->type == REDIS_REPLY_INTEGER && reply->integer == 0) {
      freeReplyObject(reply);
      reply = gm__command(call->redis, 3,
                          (const char *[]){"SADD", argv[1], argv[2]},
                          (size_t[]){4, lens[1], lens[2]});
    }
  }
  if (!reply || reply->type != REDIS_REPLY_INTEGER) {
    /* Cut by gmd's stop (redis.h): said as what it is, not as a failure
       of Redis; the retry (or the settler's discovery) registers it. */
    if (!reply && gm__redis_stopping(call->redis->stop))
      gm__log(GM_LOG_INFO, "redis",
              "SADD gm:outboxes %s cut short: gmd is stopping (a retry of "
              "the request registers it)",
              stream);
    else
      gm__log(GM_LOG_ERROR, "redis", "SADD gm:outboxes %s failed: %s", stream,
              !reply                             ? call->redis->last_error
              : reply->type == REDIS_REPLY_ERROR ? reply->str
                                                 : "unexpected reply");
    if (reply) freeReplyObject(reply);
    if (made) {
      /* Registered before a retirement, perhaps: the retry's replay
         (emitted 1) must not take this process's list for the set's. */
      pthread_rwlock_wrlock(&gm__outbox_lock);
      gm__outbox_cache_clear_locked();
      pthread_rwlock_unlock(&gm__outbox_lock);
    }
    return gm__call_fail(call, GM_UNAVAILABLE,
                         "the request was carried out, but recording its "
                         "outbox for settlement failed (Redis at %s); retry "
                         "with the same idempotency key to get its reply",
                         call->redis->where);
  }
  freeReplyObject(reply);
  gm__outbox_remember(stream);
  return GM_OK;
}

/* ---- running ---- */

/*
 * Every script run builds five or more keys, a few numbers and the RESP
 * text of its FCALL: with sprintf for each (and redisFormatCommandArgv's own
 * sprintf per argument and its malloc) they were a fifth of a worker's time
 * in its profile, so they are copied here instead.
 */

/* Decimal digits of v at p (room for 20); their count. */
static size_t gm__dec(char *p, uint64_t v) {
  char tmp[20];
  size_t n = 0;
  do {
    tmp[n++] = (char)('0' + v % 10);
    v /= 10;
  } while (v);
  for (size_t i = 0; i < n; i++) p[i] = tmp[n - 1 - i];
  return n;
}

/* v in decimal, in the arena. */
static char *gm__arena_dec(gm__arena *a, int64_t v) {
  char *s = gm__arena_alloc(a, 22);
  size_t n = 0;
  if (v < 0) s[n++] = '-';
  gm__dec(s + n, v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v);
  return s;
}

/* "gm:{<market>:<tag>}:" followed by the n parts, in the arena. */
static char *gm__key_cat(gm__arena *a, const char *market, const char *tag,
                         size_t n, const char *const *parts) {
  size_t ml = strlen(market), tl = strlen(tag), len = ml + tl + 7;
  size_t pl[8];
  for (size_t i = 0; i < n; i++) len += pl[i] = strlen(parts[i]);
  char *k = gm__arena_alloc(a, len + 1), *p = k;
  memcpy(p, "gm:{", 4);
  p += 4;
  memcpy(p, market, ml);
  p += ml;
  *p++ = ':';
  memcpy(p, tag, tl);
  p += tl;
  *p++ = '}';
  *p++ = ':';
  for (size_t i = 0; i < n; i++) {
    memcpy(p, parts[i], pl[i]);
    p += pl[i];
  }
  return k;
}

/* The RESP text of a command (what redisFormatCommandArgv writes), in the
   arena; its length in *len. */
static char *gm__resp(gm__arena *a, int argc, const char *const *argv,
                      const size_t *lens, size_t *len) {
  size_t total = 23;
  for (int k = 0; k < argc; k++) total += lens[k] + 25;
  char *cmd = gm__arena_alloc(a, total), *p = cmd;
  *p++ = '*';
  p += gm__dec(p, (uint64_t)argc);
  *p++ = '\r';
  *p++ = '\n';
  for (int k = 0; k < argc; k++) {
    *p++ = '$';
    p += gm__dec(p, lens[k]);
    *p++ = '\r';
    *p++ = '\n';
    memcpy(p, argv[k], lens[k]);
    p += lens[k];
    *p++ = '\r';
    *p++ = '\n';
  }
  *len = (size_t)(p - cmd);
  return cmd;
}

char *gm__redis_key(gm_call *call, const char *market, const char *tag,
                    const char *key) {
  return gm__key_cat(call->arena, market, tag, 1, &key);
}

/* The reply as values in the arena: its strings used where they lie when
   it was read into that arena, else copied.  Nested error replies become
   strings. */
static void gm__value_from_reply(gm__arena *a, const redisReply *r,
                                 gm_value *v) {
  switch (r->type) {
    case REDIS_REPLY_INTEGER:
      v->type = GM_VALUE_INT;
      v->integer = r->integer;
      break;
    case REDIS_REPLY_STRING:
    case REDIS_REPLY_STATUS:
    case REDIS_REPLY_ERROR:
      v->type = GM_VALUE_STR;
      v->str =
          gm__reply_in_arena(r) ? r->str : gm__arena_strndup(a, r->str, r->len);
      v->len = r->len;
      break;
    case REDIS_REPLY_ARRAY: {
      v->type = GM_VALUE_ARRAY;
      v->n = r->elements;
      gm_value *items =
          gm__arena_alloc(a, (r->elements ? r->elements : 1) * sizeof *items);
      for (size_t i = 0; i < r->elements; i++)
        gm__value_from_reply(a, r->element[i], &items[i]);
      v->items = items;
      break;
    }
    default:
      v->type = GM_VALUE_NIL;
      break;
  }
}

int gm__redis_transient(const char *err, size_t len) {
  /* MOVED and ASK reach a caller only after GM__CLUSTER_HOPS redirections
     (a slot map changing under the command): retrying later is right. */
  static const char *const transient[] = {
      "LOADING",  "BUSY",       "MASTERDOWN", "TRYAGAIN", "CLUSTERDOWN",
      "READONLY", "NOREPLICAS", "MOVED",      "ASK"};
  size_t w = 0;
  while (w < len && err[w] != ' ') w++;
  for (size_t i = 0; i < sizeof transient / sizeof *transient; i++)
    if (w == strlen(transient[i]) && memcmp(err, transient[i], w) == 0)
      return 1;
  return 0;
}

gm_status gm__oom_fail(gm_call *call) {
  return gm__call_fail(
      call, GM_RESOURCE_EXHAUSTED,
      "Redis at %s is out of memory (its used memory is above maxmemory) "
      "and refused this write before running it; reads still answer. The "
      "operator must raise maxmemory or free keys (docs/operations.md); then "
      "retry with the same idempotency key",
      call->redis->where);
}

/* A command that got no reply: Redis is down, or up and refusing gmd's
   password (a reconnect's AUTH failed: not a question of redis-server
   running). */
static gm_status gm__unreachable_fail(gm_call *call) {
  const char *e = call->redis->last_error;
  if (gm__redis_auth_failed(e)) {
    char why[768];
    gm__redis_auth_message(why, sizeof why, call->redis->where, e);
    return gm__call_fail(call, GM_UNAVAILABLE, "%s", why);
  }
  return gm__call_fail(
      call, GM_UNAVAILABLE,
      "Redis is not reachable at %s (%s); is redis-server running?",
      call->redis->where, e);
}

gm_status gm__redis_fail(gm_call *call, const redisReply *r, const char *what) {
  if (!r) return gm__unreachable_fail(call);
  if (r->type == REDIS_REPLY_ERROR && r->len > 4 &&
      memcmp(r->str, "OOM ", 4) == 0) {
    gm__log(GM_LOG_WARN, "redis", "%s: %s", what, r->str);
    return gm__oom_fail(call);
  }
  if (r->type == REDIS_REPLY_ERROR &&
      ((r->len >= 6 && memcmp(r->str, "NOAUTH", 6) == 0) ||
       strstr(r->str, "Protocol error: unauthenticated"))) {
    /* A Redis restarted with requirepass under a gmd without a password:
       its configuration, not this call, is what fails.  (A long command
       from a client that has not authenticated gets "ERR Protocol error:
       unauthenticated multibulk length" rather than NOAUTH.) */
    gm__log(GM_LOG_ERROR, "redis", "%s: %s", what, r->str);
    return gm__call_fail(call, GM_UNAVAILABLE,
                         "Redis at %s requires a password and gmd sends none "
                         "(NOAUTH); the operator must put it in [redis] "
                         "password_file (docs/operations.md) and restart gmd",
                         call->redis->where);
  }
  if (r->type == REDIS_REPLY_ERROR &&
      (strstr(r->str, "NOPERM") ||
       strstr(r->str, "user executing the script can't run"))) {
    /* An ACL user without a command gmd sends: NOPERM, or from a script
       "ERR The user executing the script can't run this command or
       subcommand" (Redis 7.0). */
    gm__log(GM_LOG_ERROR, "redis", "%s: %s", what, r->str);
    return gm__call_fail(call, GM_INTERNAL,
                         "Redis refused %s to gmd's ACL user (NOPERM); the "
                         "operator must grant that user the commands "
                         "docs/operations.md lists under [redis] user (the "
                         "gmd log names the command)",
                         what);
  }
  if (r->type == REDIS_REPLY_ERROR && gm__redis_transient(r->str, r->len)) {
    gm__log(GM_LOG_WARN, "redis", "%s: %s", what, r->str);
    return gm__call_fail(call, GM_UNAVAILABLE,
                         "Redis cannot serve right now (%.*s); retry in a "
                         "moment with the same idempotency key",
                         (int)strcspn(r->str, " "), r->str);
  }
  gm__log(GM_LOG_ERROR, "redis", "%s: %s", what,
          r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply type");
  return gm__call_fail(call, GM_INTERNAL,
                       "%s failed inside Redis; the gmd log has the Redis "
                       "error",
                       what);
}

/* An error reply: "STATUS message" from gm.reject, anything else a failure. */
static gm_status gm__error_reply(gm_call *call, const char *market,
                                 const char *name, const redisReply *reply) {
  const char *sp = memchr(reply->str, ' ', reply->len);
  size_t slen = sp ? (size_t)(sp - reply->str) : reply->len;
  int status = gm__status_parse(reply->str, slen);
  if (status > 0) {
    const char *msg = sp ? sp + 1 : "";
    return gm__call_fail(call, (gm_status)status, "%s", msg);
  }
  const char *what =
      gm__arena_sprintf(call->arena, "script %s.%s", market, name);
  return gm__redis_fail(call, reply, what);
}

/*
 * The reply the plugin's body returned: a run that set a deadline or
 * appended to its outbox answers {error "gm:host <due> <emitted>", reply}
 * (see gm__library_host); *due is then the earliest due it set (-1: none) and
 * *emitted whether the tag's stream holds entries (2: this run made the
 * stream).  gm__run refuses
 * plugin replies of that shape, so only the host's wrapper is unwrapped.
 */
static const redisReply *gm__host_unwrap(const redisReply *r, long long *due,
                                         int *emitted) {
  static const redisReply nil = {.type = REDIS_REPLY_NIL};
  static const char mark[] = "gm:host ";
  const size_t n = sizeof mark - 1;
  if (r->type != REDIS_REPLY_ARRAY || r->elements < 1 || r->elements > 2)
    return r;
  const redisReply *m = r->element[0];
  if (m->type != REDIS_REPLY_ERROR || m->len <= n || memcmp(m->str, mark, n))
    return r;
  char *end;
  long long v = strtoll(m->str + n, &end, 10);
  if (*end != ' ' || end[1] < '0' || end[1] > '2' || end[2]) return r;
  *due = v;
  *emitted = end[1] - '0';
  return r->elements == 2 ? r->element[1] : &nil;
}

void gm__deadline_index_lower(gm_call *call, const char *market,
                              const char *tag, long long due, int oom) {
  const char *member = gm__arena_sprintf(call->arena, "%s:%s", market, tag);
  const char *score = gm__arena_sprintf(call->arena, "%lld", due);
  const char *eval[] = {
      "EVAL", GM__DEADLINE_LOWER_LUA, "1", GM__DEADLINE_INDEX, score, member};
  const char *zadd[] = {"ZADD", GM__DEADLINE_INDEX, "LT", score, member};
  const char **argv = oom ? eval : zadd;
  int argc = oom ? 6 : 5;
  size_t lens[6];
  for (int k = 0; k < argc; k++) lens[k] = strlen(argv[k]);
  gm__command_nowait(call->redis, argc, argv, lens, "ZADD " GM__DEADLINE_INDEX);
}

/*
 * Runs the formatted WAIT `cmd` on n for the running call: the replicas
 * that acknowledged, or -1 with why.  WAIT holds every later command of its
 * connection until it returns (Redis reads nothing more from a blocked
 * client), so in a pipeline a fiber joins a WAIT of another fiber that is
 * still unanswered on n instead of sending its own behind it: replies come
 * in order and this fiber's write has been answered, so that WAIT was sent
 * after the write and counts it.  Calls in flight share one replica round
 * trip, and with no replica one timeout, instead of one each in turn.
 */
static long long gm__replica_wait(gm__redis *n, const char *cmd, size_t len,
                                  char *why, size_t whylen) {
  int err = 0;
  redisReply *w;
  if (n->pipelined && gm__fiber_current()) {
    gm__redis_wait wait = {.fiber = gm__fiber_current()};
    if (n->wait_open) {
      wait.next = n->wait_open->joined;
      n->wait_open->joined = &wait;
      gm__fiber_yield();
      if (wait.acked < 0)
        snprintf(why, whylen, "%s",
                 wait.err ? n->last_error
                          : "the WAIT it joined failed (logged with it)");
      return wait.acked;
    }
    wait.opens_wait = 1;
    w = gm__redis_queue(n, cmd, len, &wait, &err);
  } else {
    w = gm__exec_one(n, NULL, cmd, len, &err);
  }
  long long acked = w && w->type == REDIS_REPLY_INTEGER ? w->integer : -1;
  snprintf(why, whylen, "%s",
           !w                             ? n->last_error
           : w->type == REDIS_REPLY_ERROR ? w->str
                                          : "no reply of WAIT's type");
  if (w) freeReplyObject(w);
  return acked;
}

/*
 * With [redis] cluster_wait_replicas, a mutating call is answered only once a
 * replica has its write: replication is asynchronous, so a master that dies
 * right after answering would otherwise take the write with it while the
 * client holds a success.  WAIT goes on the connection the FCALL went on
 * (its slot's master), after its reply: WAIT counts this connection's last
 * write, which is this FCALL's or a later one of another fiber on the same
 * pipeline, so it covers this write either way.  No replica in time: the
 * write stays on the master and the client retries under the same key,
 * which replays the stored reply (or runs again if a failover lost it).
 */
static gm_status gm__wait_on_replica(gm_call *call, const char *cmd,
                                     size_t cmdlen) {
  long ms = atomic_load(&gm__wait_replicas_ms);
  if (ms <= 0) return GM_OK;
  gm__redis *r = call->redis, *n = r;
  if (r->cluster) {
    /* The node that ran the write: this fiber has not waited since its
       reply came, so `answered` is still its own. */
    n = r->answered;
    if (!n) {
      int node = gm__cluster_route(r, gm__cluster_command_slot(cmd, cmdlen));
      if (node < 0)
        return gm__call_fail(call, GM_UNAVAILABLE,
                             "the write was made but its master is not known "
                             "any more (%s); retry with the same idempotency "
                             "key",
                             r->last_error);
      n = gm__node_conn(r, node);
    }
  }
  char wait[64];
  char msbuf[24];
  int mslen = snprintf(msbuf, sizeof msbuf, "%ld", ms);
  int len =
      snprintf(wait, sizeof wait,
               "*3\r\n$4\r\nWAIT\r\n$1\r\n1\r\n$%d\r\n%s\r\n", mslen, msbuf);
  char why[128];
  long long acked = gm__replica_wait(n, wait, (size_t)len, why, sizeof why);
  if (acked == 0) {
    gm__log(GM_LOG_WARN, "redis", "WAIT 1 %ld on %s: no replica acknowledged",
            ms, n->where);
    return gm__call_fail(call, GM_UNAVAILABLE,
                         "the write is not yet on a replica of Redis at %s "
                         "(none acknowledged it within %ld ms); retry with the "
                         "same idempotency key",
                         n->where, ms);
  }
  if (acked < 0) {
    gm__log(GM_LOG_WARN, "redis", "WAIT 1 %ld on %s: %s", ms, n->where, why);
    return gm__call_fail(call, GM_UNAVAILABLE,
                         "the write is not yet on a replica of Redis at %s "
                         "as far as gmd knows (waiting for one failed: %s); "
                         "retry with the same idempotency key",
                         n->where, why);
  }
  return GM_OK;
}

/*
 * Sends one script call (FCALL or FCALL_RO) and puts its reply in *out: one
 * retry after an I/O error (see gm__command for why repeating is safe), one
 * after loading the library Redis did not have.  *resent: the call was sent
 * again after an I/O error, so the first send may have run whatever the
 * reply says (an OOM refusal of the second says nothing of the first).
 * Anything else fails the call with its status and message.
 */
static gm_status gm__fcall(gm_call *call, const char *market, const char *name,
                           const char *cmd, size_t cmdlen, redisReply **out,
                           int *resent) {
  redisReply *r = NULL;
  int io_retry = 1, load_retry = 1, err = 0;
  *out = NULL;
  *resent = 0;
  for (;;) {
    r = gm__exec_in(call->redis, call->arena, cmd, cmdlen, &err);
    if (!r) {
      if (err == REDIS_ERR_PROTOCOL || !io_retry--) break;
      *resent = 1;
      continue;
    }
    if (r->type != REDIS_REPLY_ERROR ||
        strcmp(r->str, "ERR Function not found") != 0 || !load_retry--)
      break;
    gm__reply_free(r);
    r = NULL;
    char why[512];
    if (gm__library_reload(call, market, why, sizeof why) != 0) {
      gm__log(GM_LOG_ERROR, market, "loading the scripts' library for %s: %s",
              name, why);
      if (strncmp(why, "OOM ", 4) == 0)
        return gm__call_fail(
            call, GM_RESOURCE_EXHAUSTED,
            "Redis at %s is out of memory (its used memory is above "
            "maxmemory) and could not load the scripts of market %s "
            "(FUNCTION LOAD is a write), so script %s.%s did not run, a "
            "read-only one included. The operator must raise maxmemory or "
            "free keys (docs/operations.md); then retry (a change with the "
            "same idempotency key)",
            call->redis->where, market, market, name);
      return gm__call_fail(call, GM_UNAVAILABLE,
                           "script %s.%s could not be loaded into Redis at "
                           "%s; the gmd log says why",
                           market, name, call->redis->where);
    }
  }
  if (!r) {
    if (err == REDIS_ERR_PROTOCOL) {
      gm__log(GM_LOG_ERROR, market, "script %s reply unreadable: %s", name,
              call->redis->last_error);
      return gm__call_fail(call, GM_INTERNAL,
                           "script %s.%s returned a reply nested deeper than "
                           "7 levels (6 when the host wraps it: a run that "
                           "emits or sets a deadline, a read-only step of a "
                           "mutating call); flatten it",
                           market, name);
    }
    return gm__unreachable_fail(call);
  }
  *out = r;
  return GM_OK;
}

/* Notes the record a read-only step stores, for gm__scripts_forget_reads. */
static void gm__ro_record_note(gm_call *call, const char *rec) {
  unsigned n = call->n_ro_records;
  if ((n & (n - 1)) == 0) { /* 0, 1, 2, 4, ...: full, grow to 2n */
    const char **a = gm__arena_alloc(call->arena, (n ? 2 * n : 1) * sizeof *a);
    if (n) memcpy(a, call->ro_records, n * sizeof *a);
    call->ro_records = a;
  }
  call->ro_records[call->n_ro_records++] = rec;
}

/* Each UNLINK is waited for: the refusal is answered after it, so a retry
   sent on receiving it finds no record (one still queued would let the
   retry replay a read and then remove it under the retry's later steps). */
void gm__scripts_forget_reads(gm_call *call) {
  if (call->wrote || !call->redis) return;
  for (unsigned k = 0; k < call->n_ro_records; k++) {
    const char *argv[] = {"UNLINK", call->ro_records[k]};
    size_t lens[] = {6, strlen(call->ro_records[k])};
    redisReply *r = gm__command(call->redis, 2, argv, lens);
    if (!r || r->type == REDIS_REPLY_ERROR)
      gm__log(GM_LOG_WARN, "redis",
              "UNLINK of a refused request's read record %s failed (%s): it "
              "stays for [redis] idempotency_ttl",
              call->ro_records[k], r ? r->str : call->redis->last_error);
    if (r) freeReplyObject(r);
    if (!r) break; /* unreachable: the rest would wait as long */
  }
  call->n_ro_records = 0;
}

/* A script registered read-only tried to write (Redis refused the write
   command, or it called gm.deadline): a bug in the market, not the
   caller's fault; nothing was written. */
static gm_status gm__ro_write_fail(gm_call *call, const char *market,
                                   const char *name, const char *redis_err) {
  gm__log(GM_LOG_ERROR, market,
          "plugin bug: script %s is registered read-only "
          "(GM_SCRIPT_READ_ONLY) but tried to write, and Redis refused it: "
          "%s; remove the write or register the script without the flag",
          name, redis_err);
  return gm__call_fail(call, GM_INTERNAL,
                       "script %s.%s is registered read-only but tried to "
                       "write (a bug in the %s market; nothing was written); "
                       "the gmd log has the detail",
                       market, name, market);
}

/*
 * The idempotency argument of a script run: "0" without a key, else "1"
 * followed by the request's fingerprint (12 hex digits, the low 48 bits of
 * call->request_fp), or "1" alone when the call has none (a deadline's or
 * timer's run): a stored record begins with byte 193 (never the first byte
 * of msgpack) and the fingerprint of the request that stored it, and a
 * replay for another fingerprint is refused ("gm:reused").  Records of an
 * older broker (no such prefix) replay for any request.
 */
void gm__idem_fp_text(uint64_t fp, char out[GM__IDEM_FP_LEN + 1]) {
  for (int k = 0; k < GM__IDEM_FP_LEN; k++)
    out[k] = "0123456789abcdef"[(fp >> (4 * (GM__IDEM_FP_LEN - 1 - k))) & 15];
  out[GM__IDEM_FP_LEN] = '\0';
}

static const char *gm__idem_arg(gm_call *call) {
  if (!call->idem_key || !*call->idem_key) return "0";
  if (!call->request_fp) return "1";
  char *out = gm__arena_alloc(call->arena, GM__IDEM_FP_LEN + 2);
  out[0] = '1';
  gm__idem_fp_text(call->request_fp, out + 1);
  return out;
}

gm_status gm__idem_reused(gm_call *call, const char *market) {
  return gm__call_fail(
      call, GM_INVALID_ARGUMENT,
      "idempotency key '%s' was first used for a different request (another "
      "method of market %s, or another body); nothing was done: send a new "
      "request with a new key, or the first request's exact body with this "
      "key to get its first reply",
      gm__call_quote(call, call->idem_key, 64), market);
}

/*
 * Redis converts a Lua number reply to an integer by truncation (3.7 -> 3)
 * and stops an array at its first nil: scripts return integers, strings
 * (for anything exact beyond 2^53), and false for a nil hole.
 */
gm_status gm__script_run(gm_call *call, const char *market, const char *name,
                         const char *tag, size_t nkeys, const char *const *keys,
                         size_t nargs, const char *const *args,
                         const gm_value **reply) {
  *reply = NULL;
  if (nkeys > GM__MAX_KEYS || nargs > GM__MAX_ARGS)
    return gm__call_fail(call, GM_INVALID_ARGUMENT,
                         "script %s.%s called with %zu keys and %zu args; "
                         "the host allows at most %d keys and %d args",
                         market, name, nkeys, nargs, GM__MAX_KEYS,
                         GM__MAX_ARGS);
  if (!tag || !*tag || strpbrk(tag, "{}"))
    return gm__call_fail(call, GM_INVALID_ARGUMENT,
                         "script %s.%s needs a non-empty tag without '{' or "
                         "'}' (it is the Redis Cluster hash tag)",
                         market, name);
  /* A script waits for Redis while other requests of the worker run: from
     inside a row callback the ledger's read transaction would stay open
     all that time (stale reads for the others, no checkpoint). */
  if (call->in_query)
    return gm__call_fail(call, GM_INTERNAL,
                         "script %s.%s was run from inside a ledger_query row "
                         "callback; collect the rows first, then run the "
                         "script (docs/plugins.md)",
                         market, name);
  if (!call->redis)
    return gm__call_fail(call, GM_INTERNAL,
                         "this call has no Redis connection (host bug)");
  char fn[GM__FN_MAX], store[GM__FN_MAX];
  unsigned flags = 0;
  pthread_rwlock_rdlock(&gm__scripts_lock);
  gm__script *s = gm__script_find_locked(market, name);
  if (s) {
    memcpy(fn, s->fn, sizeof fn);
    memcpy(store, s->store, sizeof store);
    flags = s->flags;
  }
  pthread_rwlock_unlock(&gm__scripts_lock);
  if (!s)
    return gm__call_fail(call, GM_INTERNAL,
                         "script %s.%s is not registered; register it with "
                         "script_register in init",
                         market, name);

  const char *idem = call->idem_key ? call->idem_key : "";
  const char *participant = call->participant ? call->participant : "";
  char *outbox = gm__redis_key(call, market, tag, "outbox");
  /* The n-th script run of a call has a record of its own, so a call that
     runs several steps replays them one by one on retry and resumes at the
     first step that had not run. */
  unsigned step = call->script_runs++;
  const char *rec[] = {
      "idem:", participant, ":", name,
      ":",     idem,        ":", step ? gm__arena_dec(call->arena, step) : ""};
  char *idem_rec =
      !*idem ? gm__redis_key(call, market, tag, "idem:-")
             : gm__key_cat(call->arena, market, tag, step ? 8 : 6, rec);

  size_t nk = GM__HOST_KEYS + nkeys;
  int argc = (int)(3 + nk + GM__HOST_ARGS + nargs);
  const char **argv = gm__arena_alloc(call->arena, (size_t)argc * sizeof *argv);
  size_t *lens = gm__arena_alloc(call->arena, (size_t)argc * sizeof *lens);
  int i = 0;
  int ro = (flags & GM_SCRIPT_READ_ONLY) != 0;
  /* A step that is not read-only may write or store: the call's read-only
     records stay, unless it ends refused by its script or by Redis before
     it ran (below). */
  unsigned wrote = call->wrote;
  if (!ro) call->wrote = 1;
  argv[i++] = ro ? "FCALL_RO" : "FCALL";
  argv[i++] = fn;
  argv[i++] = gm__arena_dec(call->arena, (int64_t)nk);
  argv[i++] = outbox;
  argv[i++] = idem_rec;
  argv[i++] = gm__redis_key(call, market, tag, GM__DEADLINE_SET);
  argv[i++] = gm__redis_key(call, market, tag, GM__DEADLINE_CLAIMS);
  for (size_t k = 0; k < nkeys; k++)
    argv[i++] = gm__redis_key(call, market, tag, keys[k]);
  /* A step that frees (GM_SCRIPT_ALLOW_OOM) stores no reply: run again on
     a retry, it does what is left (what it deleted is gone), and a record
     would be the one thing it adds over maxmemory. */
  argv[i++] = flags & GM_SCRIPT_ALLOW_OOM ? "0" : gm__idem_arg(call);
  argv[i++] = gm__arena_dec(call->arena, gm__clock_now_ms());
  argv[i++] = participant;
  argv[i++] = gm__arena_dec(call->arena, atomic_load(&gm__idem_ttl));
  for (size_t k = 0; k < nargs; k++) argv[i++] = args[k] ? args[k] : "";
  for (int k = 0; k < argc; k++) lens[k] = strlen(argv[k]);

  size_t cmdlen;
  const char *cmd = gm__resp(call->arena, argc, argv, lens, &cmdlen);
  redisReply *r = NULL;
  int resent = 0;
  gm_status st = gm__fcall(call, market, name, cmd, cmdlen, &r, &resent);
  if (st != GM_OK) return st;

  /* A read-only step of a mutating call: FCALL_RO ran it and cannot store
     its reply, so it came back with its msgpack text, {gm:store, packed,
     reply}, and gm__store keeps it under the step's record unless a
     concurrent run of the same step stored first: that one's reply is then
     the step's, as if this call had replayed it (gm__store answers as a
     replay).  A broker dying in between stored nothing, and a read has no
     effect to lose. */
  gm_value *v = NULL;
  if (ro && r->type == REDIS_REPLY_ARRAY &&
      (r->elements == 2 || r->elements == 3) &&
      r->element[0]->type == REDIS_REPLY_ERROR &&
      strcmp(r->element[0]->str, "gm:store") == 0 &&
      r->element[1]->type == REDIS_REPLY_STRING) {
    v = gm__arena_alloc(call->arena, sizeof *v);
    if (r->elements == 3) gm__value_from_reply(call->arena, r->element[2], v);
    argv[0] = "FCALL";
    argv[1] = store;
    argv[2] = "4";
    argv[7] = r->element[1]->str;
    lens[7] = r->element[1]->len;
    argv[8] = gm__arena_dec(call->arena, atomic_load(&gm__idem_ttl));
    argv[9] = gm__idem_arg(call);
    gm__ro_record_note(call, idem_rec);
    for (int k = 0; k < 10; k++)
      if (k != 7) lens[k] = strlen(argv[k]);
    cmd = gm__resp(call->arena, 10, argv, lens, &cmdlen);
    gm__reply_free(r);
    r = NULL;
    st = gm__fcall(call, market, name, cmd, cmdlen, &r, &resent);
    if (st != GM_OK) return st;
    if (r->type == REDIS_REPLY_ERROR && strcmp(r->str, "gm:stored") == 0) {
      gm__reply_free(r);
      /* The record is this step's write (a retry replays it): answered
         once a replica has it, as a replay of it is. */
      if (gm__wait_on_replica(call, cmd, cmdlen) != GM_OK) return call->status;
      *reply = v;
      return GM_OK;
    }
    /* Anything else, answered to a single send, says this call stored
       nothing: the record there (a replay of a concurrent run's, or
       another request's) is not this call's to forget, and an OOM refusal
       stored none.  After a resend the first send may have stored it. */
    if (!resent && call->n_ro_records &&
        call->ro_records[call->n_ro_records - 1] == idem_rec)
      call->n_ro_records--;
  }

  long long due = -1;
  int emitted = 0;
  const redisReply *body = gm__host_unwrap(r, &due, &emitted);
  if (body->type == REDIS_REPLY_ERROR && strcmp(body->str, "gm:reused") == 0) {
    /* The key's record is another request's: nothing ran or changed, and
       a read step's note of it goes (above unless resent; a resend's first
       send would have stored this request's own). */
    call->wrote = wrote;
    if (call->n_ro_records &&
        call->ro_records[call->n_ro_records - 1] == idem_rec)
      call->n_ro_records--;
    gm__reply_free(r);
    return gm__idem_reused(call, market);
  }
  if (body->type == REDIS_REPLY_ERROR) {
    st = ro && strstr(body->str, "not allowed from read-only scripts")
             ? gm__ro_write_fail(call, market, name, body->str)
             : gm__error_reply(call, market, name, body);
    /* gm.reject (changes nothing, by the plugin's contract) or OOM (Redis
       ran nothing): this step stored nothing.  Not after a resend: the
       first send may have run and stored (a resend replays a stored
       record, but OOM refuses it before it can). */
    const char *sp = memchr(body->str, ' ', body->len);
    size_t w = sp ? (size_t)(sp - body->str) : body->len;
    int oom = w == 3 && memcmp(body->str, "OOM", 3) == 0;
    if (gm__status_parse(body->str, w) > 0 || (!resent && oom))
      call->wrote = wrote;
    else if (oom)
      st = gm__call_fail(
          call, GM_RESOURCE_EXHAUSTED,
          "Redis at %s is out of memory (its used memory is above "
          "maxmemory) and refused script %s.%s when it was sent again after "
          "its reply was lost: its first send may have run. The operator "
          "must raise maxmemory or free keys (docs/operations.md); then "
          "retry with the same idempotency key, which replays it if it ran",
          call->redis->where, market, name);
  } else {
    v = gm__arena_alloc(call->arena, sizeof *v);
    gm__value_from_reply(call->arena, body, v);
    *reply = v;
    st = GM_OK;
  }
  gm__reply_free(r);
  /* The WAIT is queued before anything else can yield: on the connection
     and behind the write it is for (a reopened connection's first WAIT
     counts nothing), and a WAIT it joins was sent after that write. */
  gm_status waited =
      st == GM_OK && *idem ? gm__wait_on_replica(call, cmd, cmdlen) : GM_OK;
  if (due >= 0)
    gm__deadline_index_lower(call, market, tag, due,
                             (flags & GM_SCRIPT_ALLOW_OOM) != 0);
  /* The settler and the deadline service find the tag through its stream
     in gm:outboxes: registered before the reply says the run succeeded,
     and also when the WAIT was refused, which leaves the write on the
     master to be settled whether or not the client retries. */
  if (st == GM_OK && (emitted || due >= 0) &&
      gm__outbox_register(call, outbox, emitted == 2) != GM_OK) {
    *reply = NULL;
    return call->status;
  }
  if (waited != GM_OK) {
    *reply = NULL;
    return waited;
  }
  return st;
}
