#include "cluster_fixture.h"

#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define GM_TEST_CLUSTER_MAX 12
#define GM_TEST_SLOTS 16384

struct gm_test_cluster {
  gm_test_redis *home;              /* its folder holds the nodes' */
  int n;                            /* nodes */
  int port[GM_TEST_CLUSTER_MAX];    /* each node's port (bus: +10000) */
  pid_t pid[GM_TEST_CLUSTER_MAX];   /* each node, -1 once killed */
  char id[GM_TEST_CLUSTER_MAX][48]; /* CLUSTER MYID, "" until asked */
  char seeds[GM_TEST_CLUSTER_MAX * 16];
  char conf[GM_TEST_CLUSTER_MAX * 16 + 32];
};

__attribute__((noreturn, format(printf, 1, 2))) static void cluster_fail(
    const char *fmt, ...) {
  char msg[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  fprintf(stderr, "cluster fixture: %s\n", msg);
  ck_abort_msg("%s", msg);
  abort();
}

/* Non-zero when redis-server could bind 127.0.0.1:port now. */
static int port_free(int port) {
  int s = socket(AF_INET, SOCK_STREAM, 0);
  if (s < 0) return 0;
  struct sockaddr_in a = {.sin_family = AF_INET,
                          .sin_port = htons((uint16_t)port)};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  /* As redis-server binds: the port of a closed server (its connections
     linger in TIME_WAIT) is free to it, one that listens is not, and so is
     not the local port of a client socket, even in TIME_WAIT. */
  int one = 1;
  setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  int ok = bind(s, (struct sockaddr *)&a, sizeof a) == 0;
  close(s);
  return ok;
}

/* The lowest local port connect() gives a client socket
   (/proc/sys/net/ipv4/ip_local_port_range). */
static int ephemeral_low(void) {
  int lo = 32768, hi = 0;
  FILE *f = fopen("/proc/sys/net/ipv4/ip_local_port_range", "r");
  if (f) {
    if (fscanf(f, "%d %d", &lo, &hi) != 2) lo = 32768;
    fclose(f);
  }
  return lo;
}

/*
 * n consecutive ports whose bus ports (+10000) are free too, starting at a
 * place that depends on the pid so parallel tests rarely collide.  Below
 * the ephemeral range when it leaves room (from 20000, bus ports included):
 * there the client sockets of every test (thousands in TIME_WAIT after a
 * busy test) take no port, and no connection takes one between this search
 * and the server's bind.
 */
static int find_ports(int n) {
  int first = 20000, last = ephemeral_low() - 10000 - n;
  if (last - first < 40 * n) last = 65000 - 10000 - n;
  int bases = (last - first) / n + 1;
  int base = first + (int)(getpid() % bases) * n;
  for (int tries = 0; tries < bases && tries < 400; tries++, base += n) {
    if (base > last) base = first;
    int ok = 1;
    for (int i = 0; i < n && ok; i++)
      ok = port_free(base + i) && port_free(base + i + 10000);
    if (ok) return base;
  }
  cluster_fail(
      "no %d free loopback ports (and bus ports, +10000) between %d and %d; "
      "stray redis-server processes of earlier tests may hold them",
      n, first, last + n - 1 + 10000);
}

static pid_t spawn(const char *dir, char *const argv[]) {
  pid_t parent = getpid();
  pid_t pid = fork();
  if (pid < 0) cluster_fail("fork: %s", strerror(errno));
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (getppid() != parent) _exit(127);
    char log[512];
    snprintf(log, sizeof log, "%s/redis.log", dir);
    int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0600);
    if (fd >= 0) {
      dup2(fd, 1);
      dup2(fd, 2);
      close(fd);
    }
    execvp(argv[0], argv);
    fprintf(stderr, "cannot run %s: %s\n", argv[0], strerror(errno));
    _exit(127);
  }
  return pid;
}

redisContext *gm_test_cluster_connect(const gm_test_cluster *c, int node) {
  struct timeval tv = {2, 0};
  redisContext *rc = redisConnectWithTimeout("127.0.0.1", c->port[node], tv);
  if (!rc || rc->err)
    cluster_fail("node %d (port %d) is not reachable: %s", node, c->port[node],
                 rc ? rc->errstr : "out of memory");
  redisSetTimeout(rc, tv);
  return rc;
}

/* Non-zero when the node answers PING (without aborting). */
static int node_up(const gm_test_cluster *c, int node) {
  struct timeval tv = {1, 0};
  redisContext *rc = redisConnectWithTimeout("127.0.0.1", c->port[node], tv);
  int up = 0;
  if (rc && !rc->err) {
    redisReply *r = redisCommand(rc, "PING");
    up = r && r->type == REDIS_REPLY_STATUS;
    if (r) freeReplyObject(r);
  }
  if (rc) redisFree(rc);
  return up;
}

gm_test_cluster *gm_test_cluster_start(int masters, int replicas,
                                       int node_timeout_ms) {
  gm_test_cluster *c = calloc(1, sizeof *c);
  if (!c) abort();
  c->n = masters * (1 + replicas);
  if (masters < 3 || c->n > GM_TEST_CLUSTER_MAX)
    cluster_fail(
        "a cluster of %d masters and %d replicas each: redis-cli "
        "needs at least 3 masters, and this fixture takes %d nodes",
        masters, replicas, GM_TEST_CLUSTER_MAX);
  c->home = gm_test_redis_start();
  int base = find_ports(c->n);
  char timeout[16];
  snprintf(timeout, sizeof timeout, "%d", node_timeout_ms);
  for (int i = 0; i < c->n; i++) {
    c->port[i] = base + i;
    char name[32], port[16];
    snprintf(name, sizeof name, "node-%d", c->port[i]);
    char *dir = gm_test_redis_path(c->home, name);
    if (mkdir(dir, 0700) != 0)
      cluster_fail("mkdir %s: %s", dir, strerror(errno));
    snprintf(port, sizeof port, "%d", c->port[i]);
    char *argv[] = {"redis-server",
                    "--port",
                    port,
                    "--bind",
                    "127.0.0.1",
                    "--cluster-enabled",
                    "yes",
                    "--cluster-config-file",
                    "nodes.conf",
                    "--cluster-node-timeout",
                    timeout,
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                    "--daemonize",
                    "no",
                    "--dir",
                    dir,
                    NULL};
    c->pid[i] = spawn(dir, argv);
    free(dir);
  }
  for (int i = 0; i < c->n; i++) {
    int waited = 0;
    while (!node_up(c, i) && (waited += 20) < 10000) gm_test_sleep_ms(20);
    if (waited >= 10000)
      cluster_fail(
          "node on port %d did not answer PING within 10 s (is "
          "redis-server installed?)",
          c->port[i]);
  }
  size_t len = 0;
  for (int i = 0; i < c->n; i++)
    len += (size_t)snprintf(c->seeds + len, sizeof c->seeds - len,
                            "%s127.0.0.1:%d", i ? "," : "", c->port[i]);
  snprintf(c->conf, sizeof c->conf, "[redis]\ncluster = %s\n", c->seeds);

  char *argv[GM_TEST_CLUSTER_MAX + 8];
  char addr[GM_TEST_CLUSTER_MAX][24], reps[8];
  int k = 0;
  argv[k++] = "redis-cli";
  argv[k++] = "--cluster";
  argv[k++] = "create";
  for (int i = 0; i < c->n; i++) {
    snprintf(addr[i], sizeof addr[i], "127.0.0.1:%d", c->port[i]);
    argv[k++] = addr[i];
  }
  snprintf(reps, sizeof reps, "%d", replicas);
  argv[k++] = "--cluster-replicas";
  argv[k++] = reps;
  argv[k++] = "--cluster-yes";
  argv[k] = NULL;
  int status;
  pid_t cli = spawn(gm_test_redis_dir(c->home), argv);
  if (waitpid(cli, &status, 0) != cli || !WIFEXITED(status) ||
      WEXITSTATUS(status) != 0)
    cluster_fail("redis-cli --cluster create failed; see %s/redis.log",
                 gm_test_redis_dir(c->home));
  gm_test_cluster_wait_ok(c);
  return c;
}

void gm_test_cluster_stop(gm_test_cluster **cp) {
  if (!cp || !*cp) return;
  gm_test_cluster *c = *cp;
  for (int i = 0; i < c->n; i++)
    if (c->pid[i] > 0) kill(c->pid[i], SIGTERM);
  for (int i = 0; i < c->n; i++)
    if (c->pid[i] > 0) waitpid(c->pid[i], NULL, 0);
  gm_test_redis_stop(&c->home);
  free(c);
  *cp = NULL;
}

gm_test_redis *gm_test_cluster_home(const gm_test_cluster *c) {
  return c->home;
}

const char *gm_test_cluster_seeds(const gm_test_cluster *c) {
  return c->seeds;
}

const char *gm_test_cluster_conf(const gm_test_cluster *c) {
  return c->conf;
}

int gm_test_cluster_size(const gm_test_cluster *c) {
  return c->n;
}

int gm_test_cluster_port(const gm_test_cluster *c, int node) {
  return c->port[node];
}

pid_t gm_test_cluster_pid(const gm_test_cluster *c, int node) {
  return c->pid[node];
}

const char *gm_test_cluster_id(gm_test_cluster *c, int node) {
  if (!c->id[node][0]) {
    redisContext *rc = gm_test_cluster_connect(c, node);
    redisReply *r = gm_test_redis_cmd(rc, "CLUSTER MYID");
    snprintf(c->id[node], sizeof c->id[node], "%s", r->str);
    freeReplyObject(r);
    redisFree(rc);
  }
  return c->id[node];
}

/* Every slot's owner (node index, -1) as `node` sees it; 0, or -1 when the
   node does not answer. */
static int slot_owners(const gm_test_cluster *c, int node, int *owner) {
  static int ports[GM_TEST_SLOTS];
  for (int s = 0; s < GM_TEST_SLOTS; s++) owner[s] = -1;
  struct timeval tv = {1, 0};
  redisContext *rc = redisConnectWithTimeout("127.0.0.1", c->port[node], tv);
  if (!rc || rc->err) {
    if (rc) redisFree(rc);
    return -1;
  }
  redisSetTimeout(rc, tv);
  int ok = gm_test_redis_slot_ports(rc, ports) == 0;
  redisFree(rc);
  for (int s = 0; ok && s < GM_TEST_SLOTS; s++)
    for (int k = 0; k < c->n; k++)
      if (ports[s] && c->port[k] == ports[s]) owner[s] = k;
  return ok ? 0 : -1;
}

int gm_test_cluster_owner(const gm_test_cluster *c, int slot) {
  static int owner[GM_TEST_SLOTS];
  for (int i = 0; i < c->n; i++)
    if (c->pid[i] > 0 && slot_owners(c, i, owner) == 0) return owner[slot];
  return -1;
}

void gm_test_cluster_kill(gm_test_cluster *c, int node) {
  if (c->pid[node] <= 0) return;
  kill(c->pid[node], SIGKILL);
  waitpid(c->pid[node], NULL, 0);
  c->pid[node] = -1;
}

static int state_ok(const gm_test_cluster *c, int node) {
  struct timeval tv = {1, 0};
  redisContext *rc = redisConnectWithTimeout("127.0.0.1", c->port[node], tv);
  int ok = 0;
  if (rc && !rc->err) {
    redisReply *r = redisCommand(rc, "CLUSTER INFO");
    ok = r && r->type == REDIS_REPLY_STRING &&
         strstr(r->str, "cluster_state:ok") != NULL;
    if (r) freeReplyObject(r);
  }
  if (rc) redisFree(rc);
  return ok;
}

void gm_test_cluster_wait_ok(const gm_test_cluster *c) {
  static int first[GM_TEST_SLOTS], other[GM_TEST_SLOTS];
  for (int waited = 0; waited < 30000; waited += 50) {
    int ok = 1, have = 0;
    for (int i = 0; i < c->n && ok; i++) {
      if (c->pid[i] <= 0) continue;
      ok = state_ok(c, i) && slot_owners(c, i, have ? other : first) == 0 &&
           (!have || memcmp(first, other, sizeof first) == 0);
      have = 1;
    }
    for (int s = 0; ok && s < GM_TEST_SLOTS; s++) ok = first[s] >= 0;
    if (ok) return;
    gm_test_sleep_ms(50);
  }
  cluster_fail(
      "the cluster did not reach cluster_state:ok with one slot map "
      "on every node within 30 s");
}

pid_t gm_test_cluster_reshard(gm_test_cluster *c, int from, int to, int slots) {
  char addr[32], n[16], fid[48], tid[48];
  snprintf(addr, sizeof addr, "127.0.0.1:%d", c->port[from]);
  snprintf(n, sizeof n, "%d", slots);
  snprintf(fid, sizeof fid, "%s", gm_test_cluster_id(c, from));
  snprintf(tid, sizeof tid, "%s", gm_test_cluster_id(c, to));
  char *argv[] = {"redis-cli",       "--cluster", "reshard",       addr,
                  "--cluster-from",  fid,         "--cluster-to",  tid,
                  "--cluster-slots", n,           "--cluster-yes", NULL};
  return spawn(gm_test_redis_dir(c->home), argv);
}

int gm_test_cluster_reshard_done(pid_t pid) {
  int status;
  pid_t w = waitpid(pid, &status, WNOHANG);
  if (w == 0) return -1;
  if (w != pid) cluster_fail("waitpid %ld: %s", (long)pid, strerror(errno));
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}
