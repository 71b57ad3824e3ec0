/*
 * Redis service: connections, the registry of plugin scripts, and running
 * them by FCALL: each market's scripts are the functions of one Redis
 * Functions library (gm_<market>_<hash>), loaded again by the first call
 * that finds it missing.
 *
 * Key layout (every key one script call touches shares one hash tag):
 *   gm:{<market>:<tag>}:<key>      a plugin key
 *   gm:{<market>:<tag>}:outbox     that tag's outbox stream
 *   gm:{<market>:<tag>}:idem:<participant>:<script>:<idempotency key>
 *   gm:{<market>:<tag>}:dl         zset "<kind>|<id>" -> due ms (deadlines)
 *   gm:{<market>:<tag>}:dl:claims  hash: deadlines being fired (deadlines.c)
 *   gm:outboxes                    set of every outbox stream (the settler's)
 *   gm:deadlines                   zset "<market>:<tag>" -> a lower bound of
 *                                  that tag's next deadline (the wake-up
 *                                  index the deadline pollers read)
 *   gm:{participants}:id:<id>      hash: public_key, roles, name (auth.c)
 *   gm:{participants}:key:<z85>    string: the participant id of a key
 */
#ifndef GM_CORE_REDIS_H
#define GM_CORE_REDIS_H

#include <hiredis/hiredis.h>
#include <stddef.h>
#include <stdint.h>

#include "arena.h"
#include "greenmarket/plugin.h"

typedef struct gm__redis_stop gm__redis_stop;

typedef struct gm__redis_addr {
  const char *unix_path; /* used when non-NULL and non-empty */
  const char *host;      /* else host:port */
  int port;
  /* Non-empty: Redis Cluster seed nodes "host:port,host:port" (unix_path,
     host and port unused); each command goes to the master serving its
     first key's slot (core/cluster.h). */
  const char *cluster;
  /* Non-zero: the connect timeout and the read/write timeout, in us, from
     the first connection on, its PING and AUTH included (as
     gm__redis_set_timeouts later); 0: 5 s to connect, 30 s per read. */
  int64_t connect_us, io_us;
  /* Non-NULL: every connection opened from this address (and reopened
     after it) is one of this stop's, which can cut them all at once
     (gm__redis_stop_now): a broker's threads share one. */
  gm__redis_stop *stop;
} gm__redis_addr;

/*
 * Stopping while Redis does not answer.  A thread blocked on a reply from a
 * stalled Redis (stopped, a stuck fork, a network that drops its packets)
 * waits out its read timeout (30 s by default), and a broker's stop joins
 * several such threads one after the other.  Each connection of a stop is
 * listed in it while it is open; gm__redis_stop_now shuts every listed
 * socket down (shutdown(2), never close: the descriptor stays its owner's
 * until the owner frees the connection, which takes it off the list under
 * the same lock first, so no other file can be given its number meanwhile).
 * The owner's blocked read then returns at once ("Server closed the
 * connection") and hiredis's context is merely failed, as after a Redis
 * restart.  From then on the stop's connections do not reconnect: a reopen
 * fails at once with "gmd is stopping", so retries end at once too.
 */
gm__redis_stop *gm__redis_stop_new(void);
/* Cuts every connection of s now and refuses new ones; idempotent. */
void gm__redis_stop_now(gm__redis_stop *s);
/* After grace_us, on a thread of its own, unless s is destroyed before:
   each Redis the stop's connections go to is asked a PING on a connection
   of its own to the address in use (no name resolved again; 0.5 s to
   connect, 0.5 s to answer; all at once), again every second while the
   stop lasts; the connections to one that does not answer are cut
   (logged, WARN) and from then on nothing of s reconnects.  So a stop whose
   threads end in time never cuts anything, one that is slow while Redis
   answers (a long settle batch) finishes its work, and one held by a
   stalled Redis is cut about grace_us + 0.5 s in, however many Redis
   servers stalled.  From the first probe on, a host name still resolving
   for a reconnect 0.5 s on is given up.  Once per stop; later calls do
   nothing. */
void gm__redis_stop_after(gm__redis_stop *s, int64_t grace_us);
/* Non-zero once s has cut connections (gm__redis_stop_now, or a Redis that
   did not answer the probe). */
int gm__redis_stopping(const gm__redis_stop *s);
/* Cuts every connection of s and of its children now, without a probe,
   and refuses new ones (a second SIGTERM or SIGINT: the operator will not
   wait); idempotent. */
void gm__redis_stop_force(gm__redis_stop *s);
/* Non-zero once gm__redis_stop_force was called on s (or on its parent). */
int gm__redis_stop_forced(const gm__redis_stop *s);
/* A new stop, not cut by parent's probe or gm__redis_stop_now but by its
   gm__redis_stop_force (born cut when parent was forced already): for a
   connection made after parent's cut (the settle lease's release) that the
   operator may still cut.  Destroy it before parent. */
gm__redis_stop *gm__redis_stop_child(gm__redis_stop *parent);
/* Frees s (ending its timer thread first): after every connection of it
   is destroyed. */
void gm__redis_stop_destroy(gm__redis_stop **s);
/* A blocking hiredis connection to host:port, timeout_us to resolve the
   name and connect, then per read and write; listed in stop (NULL: none)
   as gm__redis_connect's are, so a stop cuts it and its name lookup.
   Never NULL but out of memory; failed: c->err.  Free it with
   gm__redis_close_node (the cluster's slot-map reads). */
redisContext *gm__redis_connect_node(const char *host, int port,
                                     int64_t timeout_us, gm__redis_stop *stop);
void gm__redis_close_node(gm__redis_stop *stop, redisContext *c);

typedef struct gm__redis gm__redis;

/*
 * The credentials every connection to Redis sends first (AUTH), for a Redis
 * with requirepass or ACL users: user NULL or "" for the default user,
 * password_file NULL for none.  Set once at start, before any connection.
 * The password itself is not kept: each new connection reads the file
 * again, so a password changed in Redis and in the file is used from the
 * next connection on, without a restart.
 */
void gm__redis_set_auth(const char *user, const char *password_file);
/* The password on the first line of `path` (1-512 bytes) into pass: 0, or
   -1 with why saying what is wrong with the file after its name ("is
   empty", "cannot be read (...)"; never its content).  The caller wipes
   pass (explicit_bzero) after use. */
int gm__redis_password_read(const char *path, char pass[513], char *why,
                            size_t whylen);
/* AUTH on a new context c when credentials are set: 0, or -1 with c->err
   set and c->errstr saying Redis refused them ("AUTH refused: ...") or that
   the password file could not be read ("password_file: ..."), never the
   password. */
int gm__redis_auth(redisContext *c);
/* Non-zero when a connection's error (c->errstr, gm__redis_last_error) is
   about gmd's credentials rather than Redis being down. */
int gm__redis_auth_failed(const char *e);
/* The message for such an error of a connection to `where`: "Redis at ...
   refused gmd's credentials (...)" or "gmd has no password for Redis at
   ...: [redis] password_file <path> cannot be read (...)", then what the
   operator does. */
void gm__redis_auth_message(char *out, size_t outlen, const char *where,
                            const char *e);
/* e, an error of r (gm__redis_last_error, a context's errstr), for a log
   line or a reply: gm__redis_auth_message in buf (naming the password file
   and what to do) when e is about gmd's credentials, else e itself. */
const char *gm__redis_error_text(const gm__redis *r, const char *e, char *buf,
                                 size_t buflen);

/* Connects (with a 5 s timeout); on failure NULL and err says why. */
gm__redis *gm__redis_connect(const gm__redis_addr *addr, char *err,
                             size_t errlen);
/* Closes; nulls *r; idempotent. */
void gm__redis_destroy(gm__redis **r);
/* The hiredis context, for plain commands (core participants, settler).  On
   a cluster: that of a master, right for commands without keys only. */
redisContext *gm__redis_context(gm__redis *r);
/* The context of the node serving `key` (on a single Redis: the one
   context), for plain commands on that key and others of its slot.  It
   may answer MOVED while this connection's map is old: after such a reply
   call gm__redis_reconnect, which reads the map again, and ask again. */
redisContext *gm__redis_context_for(gm__redis *r, const char *key, size_t len);
/* The contexts of every master (of a single Redis: its one context), at
   most max of them into out, for commands each node answers for its own
   keys only (SCAN, DBSIZE, INFO); how many there are. */
size_t gm__redis_masters(gm__redis *r, redisContext **out, size_t max);
/* Non-zero when r talks to a Redis Cluster. */
int gm__redis_is_cluster(const gm__redis *r);
/*
 * Timeouts (microseconds; 0: the default) of connecting and of each read or
 * write, for r's connection now and every one gm__redis_reconnect opens
 * after it: a thread that must not wait long on Redis keeps them short
 * across reconnects (by default 5 s and 30 s).
 */
void gm__redis_set_timeouts(gm__redis *r, int64_t connect_us, int64_t io_us);
/* Reconnects after an I/O error (with r's timeouts); on a cluster reads the
   slot map again and reopens every broken node connection.  GM_OK or
   GM_UNAVAILABLE. */
gm_status gm__redis_reconnect(gm__redis *r);
/* How many times r's connection (on a cluster, each of its node
   connections) was reopened after it failed or timed out; for the thread
   that uses r (not atomic). */
uint64_t gm__redis_reopens(const gm__redis *r);
/* Why a command on c (one of r's contexts) failed, for messages: its
   hiredis error, but "no reply within N s" for a read that timed out
   (hiredis says "Resource temporarily unavailable") and "gmd is stopping"
   for one cut by r's stop.  Into buf; returns buf. */
const char *gm__redis_ctx_error(const gm__redis *r, const redisContext *c,
                                char *buf, size_t buflen);
/* out: why a connection to r could not be made (e: hiredis's text for it,
   or gm__redis_ctx_error's), in words an operator acts on: what failed at
   which address (a refused port, a missing socket file, an unknown host
   name...) and what to check.  An error not known here (or on a cluster)
   keeps e's words: "Redis is not reachable at X (e); is redis-server
   running?". */
void gm__redis_unreachable_message(const gm__redis *r, const char *e, char *out,
                                   size_t outlen);
/* Why the last command over r failed, and where r points, for messages. */
const char *gm__redis_last_error(const gm__redis *r);
const char *gm__redis_where(const gm__redis *r);
/* Where addr points, for messages, before any connection: "cluster
   <seeds>", "unix socket <path>" or "host:port" (the defaults filled in),
   as gm__redis_where says once connected.  Into buf; returns buf. */
const char *gm__redis_addr_where(const gm__redis_addr *addr, char *buf,
                                 size_t buflen);
/* Where one context points ("host:port" or "unix socket <path>", as
   gm__redis_where says), for messages about one node of a cluster; "?"
   for NULL. */
void gm__redis_ctx_where(const redisContext *c, char *out, size_t outlen);

/*
 * One command (hiredis format string) over r, sent again once after an I/O
 * error on a reopened connection; NULL when Redis stays unreachable
 * (gm__redis_last_error says why).  Pipelined like script runs when called
 * from a request's fiber.
 */
redisReply *gm__redis_callf(gm__redis *r, const char *fmt, ...);
/*
 * One command, at once (not pipelined, no retry, no reconnect), whose reply
 * is built in arena `a` instead of with malloc: never freeReplyObject it, it
 * lives until the arena's reset.  For large replies read often (the settler's
 * batches). NULL on failure (gm__redis_last_error says why).
 */
redisReply *gm__redis_command_in(gm__redis *r, gm__arena *a, int argc,
                                 const char **argv, const size_t *lens);
/*
 * n commands (argv[i]: argc[i] words) pipelined over r's connection, their
 * replies built in arena `a` as gm__redis_command_in's: one round trip for
 * commands that each touch one hash slot (on a cluster, one per master
 * serving them; MOVED is not followed: reconnect and send again).  0, or
 * -1 when a connection failed (the replies it did not bring are NULL).
 */
int gm__redis_commands_in(gm__redis *r, gm__arena *a, size_t n, const int *argc,
                          const char *const *const *argv, redisReply **out);
/* The same with an argument vector (lens NULL: strlen of each). */
redisReply *gm__redis_callv(gm__redis *r, int argc, const char **argv,
                            const size_t *lens);

/*
 * Pipelining (a broker worker's connection).  When on, a command issued from
 * a fiber (core/fiber.h) is appended to the connection's output buffer and
 * the fiber waits; the worker writes the buffer (gm__redis_send) and, when
 * the socket is readable, reads what replies have arrived and resumes each
 * waiting fiber with its own, oldest first (gm__redis_receive).  Commands
 * from the thread's own stack still run at once.  Off by default.
 */
void gm__redis_set_pipelined(gm__redis *r, int on);
/* Fibers waiting for a reply. */
size_t gm__redis_waiting(const gm__redis *r);
/* Bytes of commands appended and not yet written (tests). */
size_t gm__redis_buffered(const gm__redis *r);
/* The socket to poll for replies (it changes after a reconnect); on a
   cluster an epoll descriptor over every node connection with waiters, so
   one poll covers the per-node pipelines. */
int gm__redis_fd(gm__redis *r);
/* Writes every queued command (blocking until the kernel took them). */
void gm__redis_send(gm__redis *r);
/* Reads what the socket has (one read; call when it is readable) and
   resumes the fibers whose replies are complete. */
void gm__redis_receive(gm__redis *r);
/* Fails every waiter (and reopens the connection) when Redis has sent no
   reply for limit_us while some are waiting: a stopped, not dead, Redis. */
void gm__redis_expire(gm__redis *r, uint64_t limit_us);
/* A blocking round: writes the queue, waits for the replies of everything
   queued before the call and resumes those fibers (tests, shutdown). */
void gm__redis_flush(gm__redis *r);

/*
 * Registers script `name` of `market` (single-threaded, during plugin init)
 * as a function of the market's library, around which the host's code gives
 * what include/greenmarket/plugin.h describes; `lib` (NULL: none) is code
 * before the script whose top level runs once per load of the library
 * (script_register_lib).  Compiles it in Redis over `r` so syntax errors
 * refuse the plugin.  The library is loaded by the first call that finds it
 * missing in Redis.
 */
gm_status gm__scripts_add(gm__redis *r, const char *market, const char *name,
                          const char *lib, const char *lua, char *err,
                          size_t errlen);
/* The same with GM_SCRIPT_* flags (script_register_flags): a
   GM_SCRIPT_READ_ONLY script is a no-writes function run by FCALL_RO. */
gm_status gm__scripts_add_flags(gm__redis *r, const char *market,
                                const char *name, const char *lib,
                                const char *lua, unsigned flags, char *err,
                                size_t errlen);
/*
 * For a request that ended refused: when every step of it that may have
 * stored a record was read-only (each other step was refused by its script
 * or by Redis before it ran), unlinks the read-only steps' records, so
 * refusals leave nothing in Redis; a retry reads afresh, as a first try
 * would.  Waits for each UNLINK, so the refusal is answered after them.
 */
void gm__scripts_forget_reads(gm_call *call);
/* Forgets every script of `market` (plugin unload). */
void gm__scripts_remove(const char *market);
/* How long an idempotent reply is kept (default 86400 s). */
void gm__scripts_set_idem_ttl(long seconds);
long gm__scripts_idem_ttl(void);
/* [redis] cluster_wait_replicas in ms (0: mutating calls do not wait). */
void gm__scripts_set_wait_replicas(long ms);
/* Its value now (the settler waits for a replica too, see settle.c). */
long gm__scripts_wait_replicas(void);
/* Its largest value: a WAIT is a silence of its connection, and gmd takes
   30 s without a reply for a Redis that stopped answering (the worker's
   stall limit, the blocking read timeout) and tears the connection down,
   failing every command queued behind the WAIT. */
#define GM__WAIT_REPLICAS_MAX_MS 25000

/* The request fingerprint as every idempotency record keeps it: its low 48
   bits as 12 hex digits (the scripts' records and the core methods'). */
#define GM__IDEM_FP_LEN 12
void gm__idem_fp_text(uint64_t fp, char out[GM__IDEM_FP_LEN + 1]);
/* Fails the call: its idempotency key's record is another request's
   (call->request_fp differs); says so, in words for the client. */
gm_status gm__idem_reused(gm_call *call, const char *market);

/*
 * Runs `market`'s script `name` for `call` (see gm_host_api.script_run).
 * Uses call->redis, call->arena, call->participant, call->idem_key (when the
 * method is mutating), and the host clock.  Registers the tag's outbox stream
 * in gm:outboxes before the first run per stream.  Reconnects and retries
 * once on I/O error; loads the market's library and retries once when Redis
 * does not have the function.
 */
gm_status gm__script_run(gm_call *call, const char *market, const char *name,
                         const char *tag, size_t nkeys, const char *const *keys,
                         size_t nargs, const char *const *args,
                         const gm_value **reply);

/* The tag's deadline keys (after "gm:{<market>:<tag>}:") and the index. */
/* A Lua function, redis_ms(), giving Redis's clock in ms (TIME), for the
   host's scripts that compare with stream ids or keep a time Redis reads
   back (deadlines.c's claims, settle.c's retirement). */
#define GM__LUA_REDIS_MS                                     \
  "local function redis_ms() local t = redis.call('TIME'); " \
  "return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) end\n"

/* The settler's consumer group on every outbox stream. */
#define GM__SETTLE_GROUP "gm-settle"
#define GM__DEADLINE_SET "dl"
#define GM__DEADLINE_CLAIMS "dl:claims"

/*
 * What the settler keeps of an outbox stream it retired (settle.c), in the
 * stream's hash slot: "<stream>:retired" holds "<last-generated-id>
 * <entries-added>".  Whatever makes the stream again (gm.emit, a dead
 * letter's replay, the settler's group for a tag with deadlines) first runs
 * GM__OUTBOX_REMAKE_LUA's gm__outbox_remake(stream), which makes it empty
 * with that last id and count: its ids go on after the retired stream's
 * whatever Redis's clock says (gm_settled would take an entry with a
 * retired entry's id for settled already), and its count of entries ever
 * added goes on (a plugin may read it: docs/plugins.md).  The discovery pass
 * looks for keys ending in "}:outbox" or "}:dl" only, so it skips these.  The
 * record expires after GM__OUTBOX_RETIRED_TTL_S (30 days, the longest
 * outbox_retire_s), so an ended tag leaves no key behind for ever: a stream
 * made again after that counts from 0 and takes ids from Redis's clock,
 * which would then have to be set back by more than 30 days to meet a
 * retired id.
 */
#define GM__OUTBOX_RETIRED ":retired"
#define GM__OUTBOX_RETIRED_TTL_S "2592000"
#define GM__OUTBOX_REMAKE_LUA                                                \
  "local function gm__outbox_remake(s) "                                     \
  "local t = s .. '" GM__OUTBOX_RETIRED                                      \
  "'; "                                                                      \
  "local v = redis.call('GET', t); "                                         \
  "if not v or redis.call('EXISTS', s) == 1 then return end; "               \
  "local id, n = string.match(v, '^(%d+%-%d+) (%d+)$'); "                    \
  "if id then "                                                              \
  "redis.call('XADD', s, 'MAXLEN', '0', '*', 'gm:remade', '1'); "            \
  "redis.call('XSETID', s, id, 'ENTRIESADDED', n, 'MAXDELETEDID', id) end; " \
  "redis.call('DEL', t) end\n"
#define GM__DEADLINE_INDEX "gm:deadlines"
/* + a broker's name: where `gm clock set` left that broker's manual clock
   ([testing] clock = manual), so a restart resumes there. */
#define GM__MANUAL_CLOCK_KEY "gm:{gm}:clock:"
/* ZADD LT of KEYS[1] (the index), ARGV: due, member: by a script flagged
   allow-oom, since Redis refuses any ZADD over maxmemory, while a deadline
   written then (by a step that frees, GM_SCRIPT_ALLOW_OOM, or a firing's
   claim) still needs its wake-up: one member per tag with deadlines. */
#define GM__DEADLINE_LOWER_LUA \
  "#!lua flags=allow-oom\n"    \
  "return redis.call('ZADD', KEYS[1], 'LT', ARGV[1], ARGV[2])\n"

/*
 * ZADD gm:deadlines LT <due> <market>:<tag>: lowers (or adds) the tag's
 * wake-up time.  After a script run that set a deadline (gm__script_run does
 * it).  On a request's fiber it is pipelined and nobody waits for its reply;
 * a failure is logged and the index is repaired by reconciliation.  With
 * `oom` (after a GM_SCRIPT_ALLOW_OOM step) by GM__DEADLINE_LOWER_LUA, which
 * Redis runs over maxmemory; else by a plain ZADD, cheaper on the hot path
 * (a plain step ran, so Redis had room a moment ago).
 */
void gm__deadline_index_lower(gm_call *call, const char *market,
                              const char *tag, long long due, int oom);

/*
 * Non-zero when an error reply's first word says Redis cannot serve right
 * now but will (LOADING, BUSY, MASTERDOWN, TRYAGAIN, CLUSTERDOWN, READONLY,
 * NOREPLICAS, and MOVED or ASK left after the redirections a cluster
 * command follows): the caller answers UNAVAILABLE, which clients retry.
 */
int gm__redis_transient(const char *err, size_t len);
/*
 * Fails `call` for a command about `what` whose reply is r: NULL (Redis
 * unreachable) and a transient error give UNAVAILABLE, OOM (Redis over
 * maxmemory) RESOURCE_EXHAUSTED (gm__oom_fail), any other error INTERNAL
 * (logged with Redis's text).  Returns the status.
 */
gm_status gm__redis_fail(gm_call *call, const redisReply *r, const char *what);
/* Fails the call RESOURCE_EXHAUSTED: Redis is over maxmemory and refused a
   write ("OOM ..."), with what the operator does about it. */
gm_status gm__oom_fail(gm_call *call);

/* The full key "gm:{<market>:<tag>}:<key>" in the call's arena. */
char *gm__redis_key(gm_call *call, const char *market, const char *tag,
                    const char *key);

#endif
