/*
 * A private redis-server for one test: its own temp folder and unix socket,
 * no persistence (or an fsync-always AOF), stopped by pid.  Usable from any
 * test in tests/ and from plugins' tests (link gm_test_support).
 *
 *   gm_test_redis *r = gm_test_redis_start();     // aborts the test on failure
 *   redisContext *c = gm_test_redis_connect(r);    // a plain hiredis client
 *   ...
 *   gm_test_redis_stop(&r);                        // SIGTERM, waitpid, rm -r
 * dir
 *
 * The server gets PR_SET_PDEATHSIG, so it dies with the thread that started
 * it even when the test crashes: start it from the test's main thread (a
 * Check fixture or the test body both are).  Set GM_REDIS_SERVER to use
 * another redis-server binary.  Starting a server sets SIGPIPE to SIG_IGN in
 * the test process, as gmd does, so writes to a restarted server fail with
 * EPIPE instead of killing the test.  Failures abort the running Check
 * test (message on stderr too); on success no Check function is called, so
 * a benchmark may use the fixture as well.
 *
 * With GM_TEST_REDIS_CLUSTER=1 in the environment the server runs in
 * cluster mode (nodes.conf in its folder, a free loopback bus port) and owns
 * all 16384 slots: it never answers MOVED, so plain hiredis works, yet it
 * refuses every command and every Redis Function whose keys span two slots
 * (CROSSSLOT; for keys a function reaches without declaring them too).
 * Start returns once it says cluster_state:ok.  The ctest label cluster1
 * runs the core's integration tests so (gm_add_check_test ... CLUSTER1).
 *
 * With GM_TEST_REDIS_CLUSTER=3 the fixture is a cluster of three masters,
 * each owning a third of the slots: node 0 is the server above (its unix
 * socket, plus a loopback TCP port), nodes 1 and 2 run in the sub-folders
 * node-1 and node-2 of its folder; all listen on 127.0.0.1 and announce
 * it.  Start returns once every node says cluster_state:ok and names the
 * same owner for every slot.  gmd's fixture then routes by slot
 * (`[redis] cluster =` gm_test_redis_seeds), and on gm_test_redis_connect's
 * connections gm_test_redis_cmd and gm_test_redis_int follow MOVED and ASK
 * to the node named, and run KEYS, DBSIZE, FLUSHALL, FLUSHDB and INFO on
 * every master with the answers merged.  A TCP connection to one node sees
 * that node only: a MOVED or ASK there fails the test.  The connections
 * MOVED leads to are the process's, shared: call these from one thread at
 * a time.  Stop, kill, restart and
 * restart_loading act on every node (restart keeps the nodes' ports and slots,
 * and without AOF loses the data, as one server does).  The ctest label
 * cluster3 runs the markets' integration tests so (gm_add_check_test ...
 * CLUSTER3).
 *
 * With GM_TEST_REDIS_SHARE=1 as well (the ctest cluster copies), the program
 * starts its cluster once, before main, and each case's gm_test_redis_start
 * takes it over, flushed (data, functions, scripts, clients, statistics),
 * instead of paying a cluster's 2 s start; the case's files still go to a
 * folder of its own.  A case that kills, restarts or reconfigures it (CONFIG,
 * ACL, ... through gm_test_redis_cmd), asks for its pid, or fails before
 * stopping its fixture leaves it to no later case: those start their own.
 * Its CONFIG values, ACL rules and slots are also compared at each take with
 * what they were at the start, so a change sent with plain redisCommand
 * gives later cases a server of their own until it is undone.  The rules are
 * at shared_take in redis_fixture.c.
 */
#ifndef GM_TEST_REDIS_FIXTURE_H
#define GM_TEST_REDIS_FIXTURE_H

#include <hiredis/hiredis.h>
#include <sys/types.h>

typedef struct gm_test_redis gm_test_redis;

/* Starts a server and waits (up to 10 s) until it answers PING. */
gm_test_redis *gm_test_redis_start(void);
/* The same with the append-only file on (aof non-zero) and fsync after
   every write: a kill -9 loses nothing the server acknowledged. */
gm_test_redis *gm_test_redis_start_aof(int aof);
/* Stops the server (SIGTERM, waitpid), removes the temp folder, nulls *r. */
void gm_test_redis_stop(gm_test_redis **r);
/* Stops the server and starts a new one on the same socket (data is lost). */
void gm_test_redis_restart(gm_test_redis *r);
/* kill -9, then starts the server again on its folder (an AOF server
   reloads its data) and returns as soon as it accepts connections, while
   it may still answer LOADING. */
void gm_test_redis_restart_loading(gm_test_redis *r);
/* An AOF server (gm_test_redis_start_aof) filled with enough data
   (1,000,000 keys, rewritten into its AOF) that loading it takes a second
   or so, then restarted: it answers LOADING meanwhile. */
void gm_test_redis_restart_with_long_load(gm_test_redis *r);
/* SIGKILLs the server and reaps it; the folder stays (restart or stop). */
void gm_test_redis_kill(gm_test_redis *r);

/* Sleeps ms milliseconds (again after a signal): for waits between polls;
   a test that waits for a state polls for it rather than sleeping once. */
void gm_test_sleep_ms(long ms);

/* The server's unix socket path. */
const char *gm_test_redis_socket(const gm_test_redis *r);
/* The temp folder (socket, log); tests may put their own files here. */
const char *gm_test_redis_dir(const gm_test_redis *r);
/* Non-zero when r is the program's shared cluster (GM_TEST_REDIS_SHARE). */
int gm_test_redis_shared(const gm_test_redis *r);
/* The server's pid (node 0's), or -1 after kill.  On the shared cluster
   the caller may signal it, so no later case takes that cluster. */
pid_t gm_test_redis_pid(const gm_test_redis *r);
/* "127.0.0.1:<port>,..." of every node of a multi-master cluster
   (GM_TEST_REDIS_CLUSTER=3), for gmd's `[redis] cluster`; NULL otherwise. */
const char *gm_test_redis_seeds(const gm_test_redis *r);
/* A malloc'd "<dir>/<name>" path inside the temp folder. */
char *gm_test_redis_path(const gm_test_redis *r, const char *name);
/* Writes a CURVE key file as `gm keygen --out` does ("public = ...",
   "secret = ..."; mode 600) as <dir>/<name>; its malloc'd path. */
char *gm_test_key_file(const gm_test_redis *r, const char *name,
                       const char *pub, const char *sec);

/* A new hiredis connection to the server; aborts the test on failure. */
redisContext *gm_test_redis_connect(const gm_test_redis *r);
/*
 * Runs a command (printf-style, as redisCommand) on c and aborts the test
 * when there is no reply or an error reply.  Free the reply with
 * freeReplyObject.  On a multi-master cluster, over gm_test_redis_connect's
 * socket, a keyed command follows MOVED and ASK, and a whole-keyspace one
 * runs on every master (above); over TCP it runs on that node only.
 */
redisReply *gm_test_redis_cmd(redisContext *c, const char *fmt, ...);
/* Runs a command that must answer an integer, or a string holding one (GET
   of a counter), and returns it. */
long long gm_test_redis_int(redisContext *c, const char *fmt, ...);

/* Makes `replica` a replica of `master` (REPLICAOF; the master, on a unix
   socket only, first gets a free loopback TCP port) and waits (up to 30 s)
   until it streams: a write on the master that WAIT 1 sees acknowledged.
   Returns the master's port.  Not in cluster mode (GM_TEST_REDIS_CLUSTER). */
int gm_test_redis_replicate(gm_test_redis *master, gm_test_redis *replica);

/* Fills ports[16384] with the port of each slot's master as the node c is
   connected to sees it (0: no owner); -1 when c is not a cluster node. */
int gm_test_redis_slot_ports(redisContext *c, int *ports);

#endif
