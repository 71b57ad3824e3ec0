#include "redis_fixture.h"

#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* GM_TEST_REDIS_CLUSTER=3: node 0 is the fixture's server, two more
   masters run in sub-folders of its folder. */
#define GM_TEST_REDIS_NODES 3
#define GM_TEST_REDIS_SLOTS 16384

/* One redis-server of the fixture. */
struct gm_test_redis_node {
  char dir[80];  /* its --dir: the fixture's folder, or <folder>/node-<i> */
  char log[112]; /* dir/redis.log */
  pid_t pid;     /* the server, or -1 */
  int port;      /* its loopback TCP port; 0 (none) for a one-node fixture */
  int cport;     /* its cluster bus port (loopback), when cluster */
};

struct gm_test_redis {
  char dir[64];    /* mkdtemp folder: redis.sock, redis.log, test files */
  char socket[96]; /* dir/redis.sock, node 0's */
  int aof;         /* appendonly yes, appendfsync always */
  int cluster;     /* GM_TEST_REDIS_CLUSTER: 0 (plain), 1 or 3 nodes */
  int n;           /* nodes: 1, or 3 when cluster is 3 */
  int formed;      /* the nodes own their slots and met (nodes.conf) */
  int shared;      /* the nodes are the program's shared cluster (below) */
  char home[64];   /* the shared cluster's folder (nodes, busy, dirty) */
  struct gm_test_redis_node node[GM_TEST_REDIS_NODES];
  char seeds[GM_TEST_REDIS_NODES * 24]; /* "127.0.0.1:<port>,...", or "" */
};

/* Set while the program's shared cluster starts (before main, outside any
   Check test): a failure there gives up sharing instead of failing. */
static jmp_buf *fail_jump;

/*
 * Fails the running Check test.  The message goes to stderr first, so a
 * program that is not a Check test (a benchmark) still says why; passing
 * paths call no Check function, so such programs can use the fixture.
 */
__attribute__((noreturn, format(printf, 1, 2))) static void fixture_fail(
    const char *fmt, ...) {
  char msg[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  fprintf(stderr, "redis fixture: %s\n", msg);
  if (fail_jump) longjmp(*fail_jump, 1);
  ck_abort_msg("%s", msg);
  abort();
}

void gm_test_sleep_ms(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
}

/* The last lines of a node's log, to say why it did not start. */
static void log_tail(const struct gm_test_redis_node *nd, char *out,
                     size_t outlen) {
  out[0] = '\0';
  FILE *f = fopen(nd->log, "r");
  if (!f) return;
  char buf[4096];
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[n] = '\0';
  const char *p = n > 600 ? buf + n - 600 : buf;
  size_t len = strlen(p);
  if (len >= outlen) len = outlen - 1;
  memcpy(out, p, len);
  out[len] = '\0';
}

/*
 * A free loopback TCP port, for a node or its cluster bus: redis-server
 * with --port 0 would otherwise put the bus on 10000, which tests running
 * side by side share.  Another process may take it before the server binds
 * it; the server then exits at start and await_node tries another (only
 * before the nodes have met: a restart keeps the ports in nodes.conf).
 */
static int free_port(void) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) fixture_fail("socket: %s", strerror(errno));
  struct sockaddr_in a = {.sin_family = AF_INET,
                          .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t len = sizeof a;
  if (bind(fd, (struct sockaddr *)&a, sizeof a) != 0 ||
      getsockname(fd, (struct sockaddr *)&a, &len) != 0) {
    int e = errno;
    close(fd);
    fixture_fail("bind to a free port: %s", strerror(e));
  }
  close(fd);
  return ntohs(a.sin_port);
}

/* A connection to node i (node 0 by its unix socket), or NULL. */
static redisContext *node_connect(const gm_test_redis *r, int i,
                                  struct timeval tv) {
  redisContext *c =
      i == 0 ? redisConnectUnixWithTimeout(r->socket, tv)
             : redisConnectWithTimeout("127.0.0.1", r->node[i].port, tv);
  if (c && c->err) {
    redisFree(c);
    c = NULL;
  }
  if (c) redisSetTimeout(c, tv);
  return c;
}

static int info_says(redisContext *c, const char *line) {
  redisReply *reply = redisCommand(c, "CLUSTER INFO");
  int yes = reply && reply->type == REDIS_REPLY_STRING &&
            strstr(reply->str, line) != NULL;
  if (reply) freeReplyObject(reply);
  return yes;
}

/* Runs a command the fixture needs on node i, failing the test on an
   error. */
__attribute__((format(printf, 3, 4))) static void node_do(gm_test_redis *r,
                                                          int i,
                                                          const char *fmt,
                                                          ...) {
  struct timeval tv = {5, 0};
  redisContext *c = node_connect(r, i, tv);
  if (!c) fixture_fail("node %d of the test redis is not reachable", i);
  va_list ap;
  va_start(ap, fmt);
  redisReply *reply = redisvCommand(c, fmt, ap);
  va_end(ap);
  if (!reply || reply->type == REDIS_REPLY_ERROR)
    fixture_fail("'%s' on node %d of the test redis: %s", fmt, i,
                 reply ? reply->str : c->errstr);
  freeReplyObject(reply);
  redisFree(c);
}

int gm_test_redis_slot_ports(redisContext *c, int *ports) {
  for (int s = 0; s < GM_TEST_REDIS_SLOTS; s++) ports[s] = 0;
  redisReply *r = redisCommand(c, "CLUSTER SLOTS");
  int ok = r && r->type == REDIS_REPLY_ARRAY;
  for (size_t i = 0; ok && i < r->elements; i++) {
    redisReply *e = r->element[i];
    ok = e->type == REDIS_REPLY_ARRAY && e->elements >= 3 &&
         e->element[2]->type == REDIS_REPLY_ARRAY &&
         e->element[2]->elements >= 2;
    for (long long s = e->element[0]->integer;
         ok && s <= e->element[1]->integer && s < GM_TEST_REDIS_SLOTS; s++)
      ports[s] = (int)e->element[2]->element[1]->integer;
  }
  if (r) freeReplyObject(r);
  return ok ? 0 : -1;
}

/*
 * Gives each node its share of the slots (all of them for one node) and a
 * config epoch of its own (as redis-cli --cluster create does, without its
 * waits), and has every pair of nodes meet: far quicker than redis-cli.
 * The nodes keep both in nodes.conf, so a restarted cluster has them.  Had only
 * node 0 met the others, a node that does not know yet of a third master counts
 * itself in a minority and waits up to 5 s more before it says ok.
 */
static void form_cluster(gm_test_redis *r) {
  for (int i = 0; i < r->n; i++) {
    int lo = GM_TEST_REDIS_SLOTS * i / r->n,
        hi = GM_TEST_REDIS_SLOTS * (i + 1) / r->n - 1;
    node_do(r, i, "CLUSTER ADDSLOTSRANGE %d %d", lo, hi);
    node_do(r, i, "CLUSTER SET-CONFIG-EPOCH %d", i + 1);
  }
  for (int i = 0; i < r->n; i++)
    for (int j = i + 1; j < r->n; j++)
      node_do(r, i, "CLUSTER MEET 127.0.0.1 %d %d", r->node[j].port,
              r->node[j].cport);
  r->formed = 1;
}

/*
 * Non-zero when every node says cluster_state:ok and names the same owner
 * for every slot.  A node turns writable about 2 s after it starts, and
 * the others learn its slots by gossip.
 */
static int cluster_ready(gm_test_redis *r) {
  static int first[GM_TEST_REDIS_SLOTS], other[GM_TEST_REDIS_SLOTS];
  struct timeval tv = {1, 0};
  int ok = 1;
  for (int i = 0; i < r->n && ok; i++) {
    redisContext *c = node_connect(r, i, tv);
    if (!c) return 0;
    ok = info_says(c, "cluster_state:ok") &&
         (r->n == 1 || (gm_test_redis_slot_ports(c, i ? other : first) == 0 &&
                        (i == 0 || memcmp(first, other, sizeof first) == 0)));
    redisFree(c);
  }
  for (int s = 0; ok && r->n > 1 && s < GM_TEST_REDIS_SLOTS; s++)
    ok = first[s] != 0;
  return ok;
}

/* Forks node i's redis-server. */
static void launch_node(gm_test_redis *r, int i) {
  struct gm_test_redis_node *nd = &r->node[i];
  const char *bin = getenv("GM_REDIS_SERVER");
  if (!bin || !*bin) bin = "redis-server";
  if (i == 0) unlink(r->socket);
  pid_t parent = getpid();
  pid_t pid = fork();
  if (pid < 0) fixture_fail("fork for redis-server: %s", strerror(errno));
  if (pid == 0) {
    /* Dies with the test even when the test crashes before stop.  The
       shared cluster's nodes (home: no AOF to close) get SIGKILL, which
       also ends a node a case left stopped (SIGSTOP) when ctest's timeout
       kills the program: SIGTERM waits for a SIGCONT that never comes. */
    prctl(PR_SET_PDEATHSIG, r->home[0] ? SIGKILL : SIGTERM);
    if (getppid() != parent) _exit(127);
    int fd = open(nd->log, O_WRONLY | O_CREAT | O_APPEND, 0600);
    if (fd >= 0) {
      dup2(fd, 1);
      dup2(fd, 2);
      close(fd);
    }
    char nodes[112], port[16], cport[16];
    snprintf(nodes, sizeof nodes, "%s/nodes.conf", nd->dir);
    snprintf(port, sizeof port, "%d", nd->port);
    snprintf(cport, sizeof cport, "%d", nd->cport);
    /* Node 0 keeps its unix socket (tests and gmd's fixture use it); a
       multi-node cluster's nodes also listen on loopback TCP, the address
       they announce in MOVED. */
    execlp(bin, bin, "--port", port, "--bind", "127.0.0.1", "--unixsocket",
           i == 0 ? r->socket : "", "--unixsocketperm", "700", "--save", "",
           "--appendonly", r->aof ? "yes" : "no", "--appendfsync", "always",
           "--daemonize", "no", "--dir", nd->dir, "--cluster-enabled",
           r->cluster ? "yes" : "no", "--cluster-config-file", nodes,
           "--cluster-port", cport, "--cluster-announce-ip", "127.0.0.1",
           (char *)NULL);
    fprintf(stderr, "cannot run %s: %s\n", bin, strerror(errno));
    _exit(127);
  }
  nd->pid = pid;
}

/* Picks node i's ports: a TCP port in a multi-node cluster, a bus port in
   any cluster.  They are fixed once several nodes have met (nodes.conf);
   a lone node may take another bus port at each start. */
static void pick_ports(gm_test_redis *r, int i) {
  struct gm_test_redis_node *nd = &r->node[i];
  if (r->formed && r->n > 1) return;
  nd->port = r->n > 1 ? free_port() : 0;
  do {
    nd->cport = r->cluster ? free_port() : 0;
  } while (nd->cport && nd->cport == nd->port);
}

/* Non-zero when the server c is connected to is the process pid (INFO
   answers while a server is LOADING). */
static int served_by(redisContext *c, pid_t pid) {
  redisReply *reply = redisCommand(c, "INFO server");
  const char *p = reply && reply->type == REDIS_REPLY_STRING
                      ? strstr(reply->str, "process_id:")
                      : NULL;
  int ours = p && atol(p + strlen("process_id:")) == (long)pid;
  if (reply) freeReplyObject(reply);
  return ours;
}

/* Waits (up to 10 s) until node i answers PING with PONG, or only accepts
   connections (it may still be LOADING its data) without wait_ready.
   Relaunches it on other ports while the cluster is not formed and one of
   them was taken. */
static void await_node(gm_test_redis *r, int i, int wait_ready) {
  struct gm_test_redis_node *nd = &r->node[i];
  int tries = 0;
  for (int waited = 0; waited < 10000; waited += 20) {
    int status;
    if (waitpid(nd->pid, &status, WNOHANG) == nd->pid) {
      nd->pid = -1;
      char tail[700];
      log_tail(nd, tail, sizeof tail);
      if (r->cluster && !(r->formed && r->n > 1) && ++tries < 5 &&
          strstr(tail, "in use")) {
        pick_ports(r, i);
        launch_node(r, i);
        waited = 0;
        continue;
      }
      fixture_fail(
          "redis-server (node %d) exited at start (is it installed? "
          "apt-get install redis-server); its log: %s",
          i, tail);
    }
    struct timeval tv = {1, 0};
    redisContext *c = node_connect(r, i, tv);
    if (c) {
      redisReply *reply = redisCommand(c, "PING");
      int ok = reply && reply->type == REDIS_REPLY_STATUS &&
               strcmp(reply->str, "PONG") == 0;
      if (!wait_ready && reply && reply->type == REDIS_REPLY_ERROR &&
          strncmp(reply->str, "LOADING", 7) == 0)
        ok = 1;
      if (reply) freeReplyObject(reply);
      /* On TCP, a server of another test may hold the port our node is
         about to fail to bind ("in use" above): it must be ours. */
      if (ok && i > 0) ok = served_by(c, nd->pid);
      redisFree(c);
      if (ok) return;
    }
    gm_test_sleep_ms(20);
  }
  char tail[700];
  log_tail(nd, tail, sizeof tail);
  kill(nd->pid, SIGKILL);
  waitpid(nd->pid, NULL, 0);
  nd->pid = -1;
  fixture_fail(
      "redis-server (node %d) did not answer PING within 10 s; its log: %s", i,
      tail);
}

/*
 * Starts every node; with wait_ready, waits until they answer PING and, in
 * cluster mode, until the cluster is formed and ready (up to 30 s), else
 * only until they accept connections.
 */
static void spawn_server(gm_test_redis *r, int wait_ready) {
  for (int i = 0; i < r->n; i++) {
    pick_ports(r, i);
    launch_node(r, i);
  }
  for (int i = 0; i < r->n; i++) await_node(r, i, wait_ready);
  if (!r->cluster || !wait_ready) return;
  if (!r->formed) form_cluster(r);
  for (int waited = 0; waited < 30000; waited += 20) {
    if (cluster_ready(r)) return;
    gm_test_sleep_ms(20);
  }
  fixture_fail(
      "the test redis cluster (%d nodes) did not reach cluster_state:ok "
      "with one slot map on every node within 30 s; logs in %s",
      r->n, r->dir);
}

static void spawn(gm_test_redis *r) {
  spawn_server(r, 1);
}

static int remove_entry(const char *path, const struct stat *sb, int flag,
                        struct FTW *ftw) {
  (void)sb;
  (void)flag;
  (void)ftw;
  remove(path);
  return 0;
}

/*
 * A Check test that fails exits at once (_exit in the forked child): no
 * teardown runs, so its server dies by PDEATHSIG but its folder stays.
 * Each folder names its owner in "owner"; folders whose owner is gone and
 * that are older than 10 minutes are removed by the next start.
 */
static void sweep_stale(void) {
  DIR *d = opendir("/tmp");
  if (!d) return;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    if (strncmp(e->d_name, "gm-redis-", 9) != 0) continue;
    char dir[300], owner[320];
    snprintf(dir, sizeof dir, "/tmp/%s", e->d_name);
    snprintf(owner, sizeof owner, "%s/owner", dir);
    struct stat st;
    if (stat(owner, &st) != 0 || st.st_uid != getuid() ||
        time(NULL) - st.st_mtime < 600)
      continue;
    FILE *f = fopen(owner, "r");
    long pid = 0;
    if (f) {
      if (fscanf(f, "%ld", &pid) != 1) pid = 0;
      fclose(f);
    }
    if (pid > 0 && (kill((pid_t)pid, 0) == 0 || errno != ESRCH)) continue;
    if (pid > 0) nftw(dir, remove_entry, 8, FTW_DEPTH | FTW_PHYS);
  }
  closedir(d);
}

static void peers_drop(void);
static void stop_server(gm_test_redis *r);
static gm_test_redis *fixture_new(int aof);
static int command_arg_is(const char *cmd, int n, const char *const *names);

/* GM_TEST_REDIS_CLUSTER: 0 (unset: a plain server), 1 or 3. */
static int cluster_mode(void) {
  const char *cluster = getenv("GM_TEST_REDIS_CLUSTER");
  if (!cluster || !*cluster) return 0;
  if (strcmp(cluster, "1") == 0 || strcmp(cluster, "3") == 0)
    return cluster[0] - '0';
  fixture_fail(
      "GM_TEST_REDIS_CLUSTER=%s: set it to 1 (a one-node Redis "
      "Cluster) or 3 (three masters), or unset it for a plain Redis",
      cluster);
}

/* r->seeds: "127.0.0.1:<port>,..." of a multi-master cluster's nodes. */
static void set_seeds(gm_test_redis *r) {
  size_t len = 0;
  for (int i = 0; r->n > 1 && i < r->n; i++)
    len += (size_t)snprintf(r->seeds + len, sizeof r->seeds - len,
                            "%s127.0.0.1:%d", i ? "," : "", r->node[i].port);
}

/* dir/owner holds this process's pid (sweep_stale). */
static void write_owner(const char *dir) {
  char owner[96];
  snprintf(owner, sizeof owner, "%s/owner", dir);
  FILE *f = fopen(owner, "w");
  if (f) {
    fprintf(f, "%ld\n", (long)getpid());
    fclose(f);
  }
}

/*
 * The program's shared cluster.  In cluster mode each start of Redis costs
 * about 2 s (a master waits before it turns writable), and Check runs each
 * test case in a process of its own that starts its own Redis: most of a
 * cluster copy's time went in these waits.  With GM_TEST_REDIS_SHARE=1 (the
 * ctest cluster1 and cluster3 copies, cmake/GreenmarketTesting.cmake) the
 * program starts one cluster before main, and gm_test_redis_start in a case
 * takes it over rather than start one, when
 *   - no earlier case holds it: a case that did not stop its fixture (it
 *     failed, or its process was killed) leaves it taken ("busy");
 *   - no earlier case changed a node in a way a flush does not undo
 *     ("dirty"): killed or restarted it, asked for its pid (to signal it), or
 *     sent it CONFIG, ACL, DEBUG, CLUSTER (other than reads), REPLICAOF,
 *     FAILOVER, SHUTDOWN or MODULE through gm_test_redis_cmd;
 *   - each node is still the process the program started and answers
 *     without a password;
 *   - each node has the CONFIG values, ACL users and rules, and (in cluster
 *     mode) the flags and slots, no slot MIGRATING or IMPORTING, that it had
 *     when the program started it (node_signature: commands sent with
 *     redisCommand, around gm_test_redis_cmd, change those unseen): this is
 *     checked at each take, so a case that restores them leaves the cluster
 *     to later cases again.
 * It then flushes every node's data, functions and scripts, closes every
 * other client's connection, resets the statistics and removes what an
 * earlier case saved in the nodes' folders (a restart loads nothing of it),
 * so the case sees a fresh server.  The case gets a folder of its own
 * (gm_test_redis_dir, gm_test_redis_path), so no file of an earlier case
 * carries over either.
 * In any doubt the case starts its own cluster, as without sharing.  A case
 * that kills or restarts the shared cluster first replaces it with its own
 * processes on the same ports and folders (shared_leave).
 */
static gm_test_redis *shared;   /* the program's, inherited by each case */
static pid_t shared_owner;      /* the process that started it */
static gm_test_redis *taken;    /* this process's fixture on it, or NULL */
static gm_test_redis *starting; /* shared_start's, while it starts */

/* The shared cluster's file `name` (busy, dirty) into path[96]. */
static const char *shared_file(const gm_test_redis *r, const char *name,
                               char *path) {
  snprintf(path, 96, "%s/%s", r->home, name);
  return path;
}

/* Creates the shared cluster's file `name`; O_EXCL. */
static int shared_mark(const gm_test_redis *r, const char *name) {
  char path[96];
  int fd = open(shared_file(r, name, path), O_WRONLY | O_CREAT | O_EXCL, 0600);
  if (fd < 0) return -1;
  dprintf(fd, "%ld\n", (long)getpid());
  close(fd);
  return 0;
}

static int shared_marked(const gm_test_redis *r, const char *name) {
  char path[96];
  return access(shared_file(r, name, path), F_OK) == 0;
}

/* A reply that is not an error (NULL: the connection failed). */
static int node_ok(redisContext *c, const char *cmd) {
  redisReply *reply = redisCommand(c, cmd);
  int ok = reply && reply->type != REDIS_REPLY_ERROR;
  if (reply) freeReplyObject(reply);
  return ok;
}

/* Adds a reply's strings (every element of an array) to an FNV-1a hash. */
static void hash_reply(const redisReply *reply, unsigned long long *h) {
  if (reply->type == REDIS_REPLY_ARRAY) {
    for (size_t k = 0; k < reply->elements; k++)
      hash_reply(reply->element[k], h);
    return;
  }
  if (reply->type != REDIS_REPLY_STRING && reply->type != REDIS_REPLY_STATUS)
    return;
  for (size_t k = 0; k <= reply->len; k++) {
    *h ^= k < reply->len ? (unsigned char)reply->str[k] : 0xffu;
    *h *= 1099511628211ULL;
  }
}

/*
 * What a flush does not undo on the node c is connected to, as one hash:
 * every CONFIG value (notify-keyspace-events, maxmemory-policy, timeouts:
 * a CONFIG SET sent with redisCommand is not seen by shared_watch), every
 * ACL user and its rules, and, in cluster mode, the flags and slots of
 * the node's own line of CLUSTER NODES (a slot moved, or left MIGRATING or
 * IMPORTING, a failover).  0 when a reply is not what it should be.
 */
static unsigned long long node_signature(redisContext *c, int cluster) {
  static const char *const cmds[] = {"CONFIG GET *", "ACL LIST",
                                     "CLUSTER NODES", NULL};
  unsigned long long h = 14695981039346656037ULL;
  for (const char *const *cmd = cmds; *cmd; cmd++) {
    if (!cluster && strcmp(*cmd, "CLUSTER NODES") == 0) break;
    redisReply *reply = redisCommand(c, *cmd);
    if (!reply || reply->type == REDIS_REPLY_ERROR) {
      if (reply) freeReplyObject(reply);
      return 0;
    }
    if (reply->type == REDIS_REPLY_STRING) { /* CLUSTER NODES */
      const char *me = strstr(reply->str, "myself");
      const char *end = me ? strchr(me, '\n') : NULL;
      if (!me || !end) {
        freeReplyObject(reply);
        return 0;
      }
      /* Its flags and slots: fields 1 and 6 on from "myself,..." (not
         the ping and pong times, the epoch or the link state). */
      int field = 0;
      for (const char *p = me; p < end; field++) {
        size_t len = strcspn(p, " \n");
        redisReply word = {
            .type = REDIS_REPLY_STRING, .str = (char *)p, .len = len};
        if (field == 0 || field >= 6) hash_reply(&word, &h);
        p += len;
        if (p < end) p++;
      }
    } else {
      hash_reply(reply, &h);
    }
    freeReplyObject(reply);
  }
  return h ? h : 1;
}

/* Each node's node_signature when the shared cluster was ready. */
static unsigned long long shared_sig[GM_TEST_REDIS_NODES];

/* Removes what an earlier case may have saved into node i's folder (SAVE,
   BGSAVE, BGREWRITEAOF): a case that restarts the cluster must load only
   its own. */
static void shared_unsave(gm_test_redis *r, int i) {
  char path[160];
  snprintf(path, sizeof path, "%s/dump.rdb", r->node[i].dir);
  unlink(path);
  snprintf(path, sizeof path, "%s/appendonlydir", r->node[i].dir);
  nftw(path, remove_entry, 8, FTW_DEPTH | FTW_PHYS);
}

/*
 * Takes node i: 1 it is as the program started it and is now flushed; 0 it
 * is another process, does not answer or refused a flush (no later case may
 * take it: "dirty"); -1 it was reconfigured around gm_test_redis_cmd
 * (node_signature differs), which a later take finds again, or finds undone.
 */
static int shared_node_take(gm_test_redis *r, int i) {
  static const char *const reset[] = {"FLUSHALL SYNC",
                                      "FUNCTION FLUSH SYNC",
                                      "SCRIPT FLUSH SYNC",
                                      "CLIENT KILL TYPE normal SKIPME yes",
                                      "CLIENT KILL TYPE pubsub SKIPME yes",
                                      "CONFIG RESETSTAT",
                                      "SLOWLOG RESET",
                                      NULL};
  struct timeval tv = {2, 0};
  redisContext *c = node_connect(r, i, tv);
  if (!c) return 0;
  int state = !served_by(c, r->node[i].pid)                    ? 0
              : node_signature(c, r->cluster) != shared_sig[i] ? -1
                                                               : 1;
  for (const char *const *cmd = reset; state == 1 && *cmd; cmd++)
    if (!node_ok(c, *cmd)) state = 0;
  redisFree(c);
  if (state == 1) shared_unsave(r, i);
  return state;
}

static void shared_unmark(const gm_test_redis *r, const char *name) {
  char path[96];
  unlink(shared_file(r, name, path));
}

/* The shared cluster for this case, or NULL when it cannot be had. */
static gm_test_redis *shared_take(void) {
  if (!shared || cluster_mode() != shared->cluster) return NULL;
  if (shared_mark(shared, "busy") != 0) return NULL;
  if (shared_marked(shared, "dirty")) return NULL;
  gm_test_redis *r = malloc(sizeof *r);
  if (!r) abort();
  *r = *shared;
  r->shared = 1;
  int ok = 1;
  for (int i = 0; i < r->n && ok > 0; i++) ok = shared_node_take(r, i);
  if (ok < 0) { /* reconfigured: not taken now, checked again next time */
    shared_unmark(r, "busy");
    free(r);
    return NULL;
  }
  for (int waited = 0; ok && !cluster_ready(r); waited += 20) {
    ok = waited < 5000;
    gm_test_sleep_ms(20);
  }
  if (!ok) {
    shared_mark(r, "dirty");
    free(r);
    return NULL;
  }
  snprintf(r->dir, sizeof r->dir, "/tmp/gm-redis-XXXXXX");
  if (!mkdtemp(r->dir)) fixture_fail("mkdtemp %s: %s", r->dir, strerror(errno));
  write_owner(r->dir);
  taken = r;
  return r;
}

/* Whether /proc says pid is gone or a zombie (its sockets are closed). */
static int process_gone(pid_t pid) {
  char path[64], stat[256];
  snprintf(path, sizeof path, "/proc/%ld/stat", (long)pid);
  FILE *f = fopen(path, "r");
  if (!f) return 1;
  size_t n = fread(stat, 1, sizeof stat - 1, f);
  fclose(f);
  stat[n] = '\0';
  const char *paren = strrchr(stat, ')');
  return paren && paren[1] == ' ' && paren[2] == 'Z';
}

/*
 * Before a case kills or restarts the shared cluster: no later case may take
 * it, and its processes (the program's, not this case's: they cannot be
 * waited for here) are killed.  The fixture then starts this case's own, on
 * the same ports and folders, as a restart does.
 */
static void shared_leave(gm_test_redis *r) {
  if (!r->shared) return;
  shared_mark(r, "dirty");
  peers_drop();
  for (int i = 0; i < r->n; i++) kill(r->node[i].pid, SIGKILL);
  for (int i = 0; i < r->n; i++) {
    for (int waited = 0; waited < 5000 && !process_gone(r->node[i].pid);
         waited += 10)
      gm_test_sleep_ms(10);
    r->node[i].pid = -1;
  }
  r->shared = 0;
  if (taken == r) taken = NULL;
}

/* A command sent through gm_test_redis_cmd that changes the node beyond
   what shared_take's flush undoes. */
static void shared_watch(const char *cmd) {
  static const char *const changes[] = {
      "CONFIG",  "ACL",      "DEBUG",  "SHUTDOWN", "REPLICAOF",
      "SLAVEOF", "FAILOVER", "MODULE", "CLIENT",   NULL};
  static const char *const cluster[] = {"CLUSTER", NULL};
  static const char *const cluster_reads[] = {
      "KEYSLOT", "SLOTS",           "SHARDS",        "INFO", "NODES",
      "MYID",    "COUNTKEYSINSLOT", "GETKEYSINSLOT", NULL};
  if (!taken || shared_marked(taken, "dirty")) return;
  if (command_arg_is(cmd, 0, changes) ||
      (command_arg_is(cmd, 0, cluster) &&
       !command_arg_is(cmd, 1, cluster_reads)))
    shared_mark(taken, "dirty");
}

/* Starts the shared cluster (GM_TEST_REDIS_SHARE=1 in cluster mode), before
   main: a failure only means each case starts its own. */
__attribute__((constructor)) static void shared_start(void) {
  const char *share = getenv("GM_TEST_REDIS_SHARE");
  if (!share || strcmp(share, "1") != 0) return;
  unsetenv("GM_TEST_REDIS_SHARE"); /* programs this one runs start their own */
  jmp_buf jump;
  fail_jump = &jump;
  if (setjmp(jump) == 0) {
    if (cluster_mode() != 0) {
      starting = fixture_new(0);
      snprintf(starting->home, sizeof starting->home, "%s", starting->dir);
      spawn(starting);
      set_seeds(starting);
      for (int i = 0; i < starting->n; i++) {
        struct timeval tv = {2, 0};
        redisContext *c = node_connect(starting, i, tv);
        shared_sig[i] = c ? node_signature(c, starting->cluster) : 0;
        if (c) redisFree(c);
        if (!shared_sig[i])
          fixture_fail(
              "node %d of the shared cluster: no CONFIG, ACL or "
              "CLUSTER NODES to compare later takers with",
              i);
      }
      shared = starting;
      shared_owner = getpid();
    }
  } else if (starting) {
    fprintf(stderr,
            "redis fixture: no shared cluster; each case starts its "
            "own\n");
    gm_test_redis_kill(starting);
    nftw(starting->dir, remove_entry, 8, FTW_DEPTH | FTW_PHYS);
    free(starting);
  }
  starting = NULL;
  fail_jump = NULL;
}

__attribute__((destructor)) static void shared_stop(void) {
  if (!shared || getpid() != shared_owner) return;
  stop_server(shared);
  nftw(shared->home, remove_entry, 8, FTW_DEPTH | FTW_PHYS);
  free(shared);
  shared = NULL;
}

gm_test_redis *gm_test_redis_start(void) {
  return gm_test_redis_start_aof(0);
}

/*
 * Connections to the nodes MOVED and ASK name, and to every master for the
 * commands that look at the whole keyspace, by "host:port"; closed when a
 * fixture stops, kills or restarts its servers.
 */
#define GM_TEST_REDIS_PEERS 8
static struct {
  char addr[48];   /* "host:port" */
  redisContext *c; /* connected over TCP */
} peers[GM_TEST_REDIS_PEERS];

static void peers_drop(void) {
  for (int i = 0; i < GM_TEST_REDIS_PEERS; i++) {
    if (peers[i].c) redisFree(peers[i].c);
    peers[i].c = NULL;
    peers[i].addr[0] = '\0';
  }
}

/* The cached connection to addr ("host:port"), made on first use. */
static redisContext *peer(const char *addr) {
  int free_slot = -1;
  for (int i = 0; i < GM_TEST_REDIS_PEERS; i++) {
    if (peers[i].c && strcmp(peers[i].addr, addr) == 0) {
      if (!peers[i].c->err) return peers[i].c;
      redisFree(peers[i].c); /* broken: connect again */
      peers[i].c = NULL;
    }
    if (!peers[i].c && free_slot < 0) free_slot = i;
  }
  if (free_slot < 0)
    fixture_fail("more than %d redis nodes", GM_TEST_REDIS_PEERS);
  char host[48];
  const char *colon = strrchr(addr, ':');
  if (!colon || (size_t)(colon - addr) >= sizeof host)
    fixture_fail("redis named a node '%s', not host:port", addr);
  memcpy(host, addr, (size_t)(colon - addr));
  host[colon - addr] = '\0';
  struct timeval tv = {5, 0};
  redisContext *c = redisConnectWithTimeout(host, atoi(colon + 1), tv);
  if (!c || c->err)
    fixture_fail("connecting to redis node %s: %s", addr,
                 c ? c->errstr : "out of memory");
  redisSetTimeout(c, tv);
  snprintf(peers[free_slot].addr, sizeof peers[free_slot].addr, "%s", addr);
  peers[free_slot].c = c;
  return c;
}

/* A fixture's struct and folder, its servers not started yet. */
static gm_test_redis *fixture_new(int aof) {
  signal(SIGPIPE, SIG_IGN);
  int mode = cluster_mode();
  gm_test_redis *r = calloc(1, sizeof *r);
  if (!r) abort();
  snprintf(r->dir, sizeof r->dir, "/tmp/gm-redis-XXXXXX");
  if (!mkdtemp(r->dir)) fixture_fail("mkdtemp %s: %s", r->dir, strerror(errno));
  snprintf(r->socket, sizeof r->socket, "%s/redis.sock", r->dir);
  r->aof = aof;
  r->cluster = mode;
  r->n = mode == 3 ? GM_TEST_REDIS_NODES : 1;
  for (int i = 0; i < r->n; i++) {
    struct gm_test_redis_node *nd = &r->node[i];
    nd->pid = -1;
    char dir[sizeof nd->dir];
    if (i == 0)
      snprintf(dir, sizeof dir, "%s", r->dir);
    else
      snprintf(dir, sizeof dir, "%s/node-%d", r->dir, i);
    if (i > 0 && mkdir(dir, 0700) != 0)
      fixture_fail("mkdir %s: %s", dir, strerror(errno));
    memcpy(nd->dir, dir, sizeof dir);
    snprintf(nd->log, sizeof nd->log, "%s/redis.log", dir);
  }
  write_owner(r->dir);
  return r;
}

gm_test_redis *gm_test_redis_start_aof(int aof) {
  /* A write to a connection the server closed (restart, kill) must fail
     with EPIPE, as in gmd, instead of killing the test. */
  signal(SIGPIPE, SIG_IGN);
  sweep_stale();
  gm_test_redis *r = aof ? NULL : shared_take();
  if (r) return r;
  r = fixture_new(aof);
  spawn(r);
  set_seeds(r);
  return r;
}

void gm_test_redis_kill(gm_test_redis *r) {
  shared_leave(r);
  peers_drop();
  for (int i = 0; i < r->n; i++)
    if (r->node[i].pid > 0) kill(r->node[i].pid, SIGKILL);
  for (int i = 0; i < r->n; i++) {
    if (r->node[i].pid <= 0) continue;
    waitpid(r->node[i].pid, NULL, 0);
    r->node[i].pid = -1;
  }
}

static void stop_server(gm_test_redis *r) {
  peers_drop();
  for (int i = 0; i < r->n; i++)
    if (r->node[i].pid > 0) kill(r->node[i].pid, SIGTERM);
  /* A clean shutdown is quick without persistence; do not hang a test. */
  for (int waited = 0; waited < 5000; waited += 10) {
    int running = 0;
    for (int i = 0; i < r->n; i++) {
      if (r->node[i].pid > 0 &&
          waitpid(r->node[i].pid, NULL, WNOHANG) == r->node[i].pid)
        r->node[i].pid = -1;
      running += r->node[i].pid > 0;
    }
    if (!running) return;
    gm_test_sleep_ms(10);
  }
  gm_test_redis_kill(r);
}

void gm_test_redis_stop(gm_test_redis **rp) {
  if (!rp || !*rp) return;
  gm_test_redis *r = *rp;
  if (r->shared) {
    /* The nodes stay for the next case (shared_take). */
    peers_drop();
    shared_unmark(r, "busy");
    if (taken == r) taken = NULL;
  } else {
    stop_server(r);
  }
  nftw(r->dir, remove_entry, 8, FTW_DEPTH | FTW_PHYS);
  free(r);
  *rp = NULL;
}

void gm_test_redis_restart(gm_test_redis *r) {
  shared_leave(r);
  stop_server(r);
  spawn(r);
}

void gm_test_redis_restart_loading(gm_test_redis *r) {
  gm_test_redis_kill(r);
  spawn_server(r, 0);
}

void gm_test_redis_restart_with_long_load(gm_test_redis *r) {
  redisContext *rc = gm_test_redis_connect(r);
  freeReplyObject(gm_test_redis_cmd(
      rc, "EVAL %s 0",
      "for i = 1, 1000000 do redis.call('SET', 'filler:' .. i, 'x') end"));
  freeReplyObject(gm_test_redis_cmd(rc, "BGREWRITEAOF"));
  for (int i = 0; i < 200; i++) {
    redisReply *info = gm_test_redis_cmd(rc, "INFO persistence");
    int busy = strstr(info->str, "aof_rewrite_in_progress:1") != NULL ||
               strstr(info->str, "aof_rewrite_scheduled:1") != NULL;
    freeReplyObject(info);
    if (!busy) break;
    gm_test_sleep_ms(50);
  }
  redisFree(rc);
  gm_test_redis_restart_loading(r);
}

const char *gm_test_redis_socket(const gm_test_redis *r) {
  return r->socket;
}

const char *gm_test_redis_dir(const gm_test_redis *r) {
  return r->dir;
}

int gm_test_redis_shared(const gm_test_redis *r) {
  return r->shared;
}

pid_t gm_test_redis_pid(const gm_test_redis *r) {
  /* The caller may signal it: no later case takes it. */
  if (r->shared) shared_mark(r, "dirty");
  return r->node[0].pid;
}

const char *gm_test_redis_seeds(const gm_test_redis *r) {
  return r->n > 1 ? r->seeds : NULL;
}

char *gm_test_redis_path(const gm_test_redis *r, const char *name) {
  size_t n = strlen(r->dir) + strlen(name) + 2;
  char *p = malloc(n);
  if (!p) abort();
  snprintf(p, n, "%s/%s", r->dir, name);
  return p;
}

char *gm_test_key_file(const gm_test_redis *r, const char *name,
                       const char *pub, const char *sec) {
  char *path = gm_test_redis_path(r, name);
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
  if (fd < 0 || dprintf(fd, "public = %s\nsecret = %s\n", pub, sec) < 0)
    fixture_fail("writing the key file %s: %s", path, strerror(errno));
  close(fd);
  return path;
}

redisContext *gm_test_redis_connect(const gm_test_redis *r) {
  struct timeval tv = {5, 0};
  redisContext *c = redisConnectUnixWithTimeout(r->socket, tv);
  if (!c || c->err)
    fixture_fail("connecting to the test redis at %s: %s", r->socket,
                 c ? c->errstr : "out of memory");
  return c;
}

/* Sends a formatted command on c and reads its reply (NULL: c failed). */
static redisReply *send_formatted(redisContext *c, const char *cmd,
                                  size_t len) {
  void *reply = NULL;
  if (redisAppendFormattedCommand(c, cmd, len) != REDIS_OK ||
      redisGetReply(c, &reply) != REDIS_OK)
    return NULL;
  return reply;
}

/*
 * Runs a formatted command on c, following MOVED and ASK (ASKING first) to
 * the node they name when c is a unix socket connection
 * (gm_test_redis_connect's, node 0's): a test's keyed command reaches the
 * master of its slot.  A TCP connection is a test's look at one node
 * (gm_test_cluster_connect's): its MOVED is answered as the error it is,
 * so a check of what that node holds cannot read another master.
 */
static redisReply *run_routed(redisContext *c, const char *fmt, const char *cmd,
                              size_t len) {
  int follow = c->connection_type == REDIS_CONN_UNIX;
  redisReply *reply = send_formatted(c, cmd, len);
  for (int hops = 0;
       follow && reply && reply->type == REDIS_REPLY_ERROR && hops < 5;
       hops++) {
    int ask = strncmp(reply->str, "ASK ", 4) == 0;
    if (!ask && strncmp(reply->str, "MOVED ", 6) != 0) break;
    const char *addr = strrchr(reply->str, ' ') + 1;
    c = peer(addr);
    freeReplyObject(reply);
    if (ask) {
      redisReply *ok = send_formatted(c, "*1\r\n$6\r\nASKING\r\n", 16);
      if (ok) freeReplyObject(ok);
    }
    reply = send_formatted(c, cmd, len);
  }
  if (!reply) fixture_fail("redis command '%s': %s", fmt, c->errstr);
  return reply;
}

/* The command's argument n (0: its name) is one of names, which end with
   NULL. */
static int command_arg_is(const char *cmd, int n, const char *const *names) {
  const char *p = cmd;
  for (int k = 0; k <= n; k++) {
    if (!(p = strstr(p, "\r\n$")) || !(p = strstr(p + 3, "\r\n"))) return 0;
    p += 2;
  }
  size_t len = strcspn(p, "\r");
  for (; *names; names++)
    if (strlen(*names) == len && strncasecmp(p, *names, len) == 0) return 1;
  return 0;
}

static int command_is(const char *cmd, const char *const *names) {
  return command_arg_is(cmd, 0, names);
}

/* The integer a field of INFO holds, when all of [p, end) is one. */
static int info_number(const char *p, const char *end, long long *v) {
  char *stop;
  *v = strtoll(p, &stop, 10);
  return p < end && stop == end;
}

/*
 * Two masters' values of one INFO line ("keys=3,expires=0,avg_ttl=0" or
 * "12") as one: a field that is an integer on both sides is summed, any
 * other keeps a's value.  Returns a malloc'd "name:value".
 */
static char *info_sum(const char *a, const char *b) {
  size_t cap = strlen(a) + strlen(b) + 64, len = 0;
  char *out = malloc(cap);
  if (!out) abort();
  const char *va = strchr(a, ':') + 1, *vb = strchr(b, ':') + 1;
  len = (size_t)(va - a);
  memcpy(out, a, len);
  while (*va) {
    const char *fa = va + strcspn(va, ","), *eq = memchr(va, '=', fa - va);
    size_t klen = eq ? (size_t)(eq - va) + 1 : 0;
    long long x, y;
    const char *fb = vb; /* the same key in b */
    while (*fb && strncmp(fb, va, klen) != 0) {
      fb += strcspn(fb, ",");
      if (*fb) fb++;
    }
    if (*fb && info_number(va + klen, fa, &x) &&
        info_number(fb + klen, fb + strcspn(fb, ","), &y))
      len += (size_t)snprintf(out + len, cap - len, "%.*s%lld,", (int)klen, va,
                              x + y);
    else
      len +=
          (size_t)snprintf(out + len, cap - len, "%.*s,", (int)(fa - va), va);
    va = *fa ? fa + 1 : fa;
  }
  if (out[len - 1] == ',') len--; /* the last comma (none: empty value) */
  out[len] = '\0';
  return out;
}

/* Non-zero for an INFO section header ("# Keyspace") whose numbers are
   counts that add up over the masters. */
static int info_counts(const char *header) {
  static const char *const sections[] = {
      "Keyspace", "Commandstats", "Errorstats", "Stats",
      "Clients",  "Memory",       NULL};
  for (const char *const *s = sections; *s; s++)
    if (strcmp(header + 2, *s) == 0) return 1;
  return 0;
}

/*
 * What the masters answered to INFO as one text: in the sections of counts
 * (info_counts: INFO commandstats' calls, INFO keyspace's keys, used_memory)
 * numbers summed line by line; a line only some masters have (a command
 * only one ran) kept, each section header once.  A field of the node
 * itself (process_id, tcp_port, loading, cluster_enabled, arch_bits) is
 * kept when every master says the same and fails the test when they
 * differ: a sum or one node's value would be a wrong answer.
 */
static redisReply *info_merge(redisReply **all, size_t n) {
  char **lines = NULL;
  size_t nlines = 0;
  for (size_t k = 0; k < n; k++) {
    int counts = 0;
    for (char *p = all[k]->str; *p;) {
      size_t len = strcspn(p, "\r\n");
      char *line = strndup(p, len);
      if (!line) abort();
      p += len + strspn(p + len, "\r\n");
      if (strncmp(line, "# ", 2) == 0) counts = info_counts(line);
      const char *colon = strchr(line, ':');
      size_t i = 0;
      for (; i < nlines; i++)
        if (colon ? strncmp(lines[i], line, colon - line + 1) == 0
                  : strcmp(lines[i], line) == 0)
          break;
      if (i < nlines && colon && !counts && strcmp(lines[i], line) != 0) {
        fixture_fail(
            "INFO over the %zu masters: '%.80s' and '%.80s' differ and are "
            "not counts to add; read that field on each node over TCP (a TCP "
            "connection sees one node)",
            n, lines[i], line);
      }
      if (i < nlines && colon && counts) {
        char *sum = info_sum(lines[i], line);
        free(lines[i]);
        free(line);
        lines[i] = sum;
      } else if (i < nlines) {
        free(line);
      } else {
        lines = realloc(lines, (nlines + 1) * sizeof *lines);
        if (!lines) abort();
        lines[nlines++] = line;
      }
    }
  }
  size_t total = 1;
  for (size_t i = 0; i < nlines; i++) total += strlen(lines[i]) + 2;
  redisReply *out = all[0];
  free(out->str);
  out->str = malloc(total);
  if (!out->str) abort();
  out->len = 0;
  for (size_t i = 0; i < nlines; i++) {
    out->len += sprintf(out->str + out->len, "%s\r\n", lines[i]);
    free(lines[i]);
  }
  free(lines);
  for (size_t k = 1; k < n; k++) freeReplyObject(all[k]);
  return out;
}

/*
 * Commands without a key that tests send to look at the whole keyspace run
 * on every master of a multi-master cluster (its CLUSTER SLOTS as c's node
 * sees it), and the answers become one: KEYS' arrays joined, DBSIZE's
 * counts summed, INFO merged (info_merge), FLUSHALL's OK once.  Only for a
 * unix socket connection (gm_test_redis_connect's, node 0's): one over TCP
 * is a test's look at one node (gm_test_cluster_connect).  Returns NULL
 * when c is not such a connection to a cluster of several masters.
 */
static redisReply *run_on_masters(redisContext *c, const char *fmt,
                                  const char *cmd, size_t len) {
  static const char *const keyspace[] = {"KEYS",    "DBSIZE", "FLUSHALL",
                                         "FLUSHDB", "INFO",   NULL};
  static int ports[GM_TEST_REDIS_SLOTS];
  if (c->connection_type != REDIS_CONN_UNIX || !command_is(cmd, keyspace) ||
      gm_test_redis_slot_ports(c, ports) != 0)
    return NULL;
  int masters[GM_TEST_REDIS_PEERS], n = 0;
  for (int s = 0; s < GM_TEST_REDIS_SLOTS; s++) {
    int seen = ports[s] == 0;
    for (int k = 0; k < n && !seen; k++) seen = masters[k] == ports[s];
    if (!seen && n == GM_TEST_REDIS_PEERS)
      fixture_fail("more than %d redis masters", GM_TEST_REDIS_PEERS);
    if (!seen) masters[n++] = ports[s];
  }
  if (n < 2) return NULL;
  redisReply *all[GM_TEST_REDIS_PEERS];
  for (int k = 0; k < n; k++) {
    char addr[32];
    snprintf(addr, sizeof addr, "127.0.0.1:%d", masters[k]);
    redisContext *m = peer(addr);
    all[k] = send_formatted(m, cmd, len);
    if (!all[k])
      fixture_fail("redis command '%s' on %s: %s", fmt, addr, m->errstr);
    if (all[k]->type == REDIS_REPLY_ERROR || all[k]->type != all[0]->type) {
      for (int j = 0; j < k; j++) freeReplyObject(all[j]);
      return all[k];
    }
  }
  redisReply *out = all[0];
  if (out->type == REDIS_REPLY_STRING) return info_merge(all, (size_t)n);
  for (int k = 1; k < n; k++) {
    if (out->type == REDIS_REPLY_INTEGER) out->integer += all[k]->integer;
    if (out->type == REDIS_REPLY_ARRAY && all[k]->elements) {
      size_t total = out->elements + all[k]->elements;
      out->element = realloc(out->element, total * sizeof *out->element);
      if (!out->element) abort();
      memcpy(out->element + out->elements, all[k]->element,
             all[k]->elements * sizeof *out->element);
      out->elements = total;
      all[k]->elements = 0; /* the elements belong to out now */
    }
    freeReplyObject(all[k]);
  }
  return out;
}

static redisReply *vcmd(redisContext *c, const char *fmt, va_list ap) {
  char *cmd;
  int len = redisvFormatCommand(&cmd, fmt, ap);
  if (len < 0) fixture_fail("redis command '%s': cannot format it", fmt);
  shared_watch(cmd);
  redisReply *reply = run_on_masters(c, fmt, cmd, (size_t)len);
  if (!reply) reply = run_routed(c, fmt, cmd, (size_t)len);
  free(cmd);
  if (reply->type == REDIS_REPLY_ERROR) {
    char msg[512];
    int moved = strncmp(reply->str, "MOVED ", 6) == 0 ||
                strncmp(reply->str, "ASK ", 4) == 0;
    snprintf(msg, sizeof msg, "redis command '%s' failed: %s%s", fmt,
             reply->str,
             moved && c->connection_type != REDIS_CONN_UNIX
                 ? " (this TCP connection reads its own node only: connect "
                   "to the slot's master, or use gm_test_redis_connect's "
                   "socket, which follows MOVED and ASK)"
                 : "");
    freeReplyObject(reply);
    fixture_fail("%s", msg);
  }
  return reply;
}

redisReply *gm_test_redis_cmd(redisContext *c, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  redisReply *reply = vcmd(c, fmt, ap);
  va_end(ap);
  return reply;
}

long long gm_test_redis_int(redisContext *c, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  redisReply *reply = vcmd(c, fmt, ap);
  va_end(ap);
  long long v = 0;
  char *end = NULL;
  if (reply->type == REDIS_REPLY_INTEGER) {
    v = reply->integer;
  } else if (reply->type == REDIS_REPLY_STRING) {
    v = strtoll(reply->str, &end, 10);
  }
  int ok = reply->type == REDIS_REPLY_INTEGER ||
           (reply->type == REDIS_REPLY_STRING && reply->len > 0 && !*end);
  if (!ok)
    fixture_fail("redis command '%s' answered type %d, not an integer", fmt,
                 reply->type);
  freeReplyObject(reply);
  return v;
}

int gm_test_redis_replicate(gm_test_redis *master, gm_test_redis *replica) {
  redisContext *m = gm_test_redis_connect(master);
  /* Replication runs over TCP only: the master gets a loopback port the
     first time (Redis 7 listens on it at once). */
  redisReply *got = gm_test_redis_cmd(m, "CONFIG GET port");
  int port = got->type == REDIS_REPLY_ARRAY && got->elements == 2
                 ? atoi(got->element[1]->str)
                 : 0;
  freeReplyObject(got);
  if (port == 0) {
    port = free_port();
    freeReplyObject(gm_test_redis_cmd(m, "CONFIG SET port %d", port));
    /* A full sync at once, not after the default 5 s of waiting for more
       replicas to share it. */
    freeReplyObject(
        gm_test_redis_cmd(m, "CONFIG SET repl-diskless-sync-delay 0"));
  }
  redisContext *s = gm_test_redis_connect(replica);
  freeReplyObject(gm_test_redis_cmd(s, "REPLICAOF 127.0.0.1 %d", port));
  redisFree(s);
  /* Listed online is not streaming yet (Redis 7.0 streams after the
     replica's first ACK): a write that WAIT sees acknowledged is. */
  freeReplyObject(gm_test_redis_cmd(m, "SET gm:test:replicate %d", port));
  long long acked = 0;
  for (int i = 0; i < 300 && acked < 1; i++)
    acked = gm_test_redis_int(m, "WAIT 1 100");
  redisFree(m);
  if (acked < 1)
    fixture_fail(
        "the replica at %s does not stream from the master on "
        "port %d after 30 s (see its redis.log)",
        replica->socket, port);
  return port;
}
