#include "redis_fixture.h"

#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
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

struct gm_test_redis {
  char dir[64];    /* mkdtemp folder: redis.sock, redis.log, test files */
  char socket[96]; /* dir/redis.sock */
  char log[96];    /* dir/redis.log */
  pid_t pid;       /* the server, or -1 */
  int aof;         /* appendonly yes, appendfsync always */
  int cluster;     /* GM_TEST_REDIS_CLUSTER=1: one node owning every slot */
  int cport;       /* its cluster bus port (loopback), when cluster */
};

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
  ck_abort_msg("%s", msg);
  abort();
}

static void sleep_ms(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
}

/* The last lines of the server log, to say why it did not start. */
static void log_tail(const gm_test_redis *r, char *out, size_t outlen) {
  out[0] = '\0';
  FILE *f = fopen(r->log, "r");
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
 * A free loopback TCP port for the cluster bus: redis-server with --port 0
 * would otherwise listen on 10000, which tests running side by side share.
 * Another process may take it before the server binds it; the server then
 * exits at start and spawn_server tries another.
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

static int info_says(redisContext *c, const char *line) {
  redisReply *reply = redisCommand(c, "CLUSTER INFO");
  int yes = reply && reply->type == REDIS_REPLY_STRING &&
            strstr(reply->str, line) != NULL;
  if (reply) freeReplyObject(reply);
  return yes;
}

/*
 * A cluster node is ready when it owns every slot and says
 * cluster_state:ok, which a node that owns them all does about 2 s after it
 * starts.  Its slots live in nodes.conf, so a restarted node has them
 * already; a new one is given them here.
 */
static int cluster_ready(gm_test_redis *r, redisContext *c) {
  (void)r;
  if (info_says(c, "cluster_slots_assigned:0\r")) {
    redisReply *reply = redisCommand(c, "CLUSTER ADDSLOTSRANGE 0 16383");
    if (!reply || reply->type == REDIS_REPLY_ERROR)
      fixture_fail("CLUSTER ADDSLOTSRANGE 0 16383: %s",
                   reply ? reply->str : c->errstr);
    freeReplyObject(reply);
  }
  return info_says(c, "cluster_state:ok");
}

/* Starts the server; with wait_ready, waits until PING answers PONG, else
   only until it accepts connections (it may still be LOADING its data). */
static void spawn_server(gm_test_redis *r, int wait_ready) {
  const char *bin = getenv("GM_REDIS_SERVER");
  if (!bin || !*bin) bin = "redis-server";
  int tries = 0;
again:
  if (r->cluster) r->cport = free_port();
  unlink(r->socket);
  pid_t parent = getpid();
  pid_t pid = fork();
  if (pid < 0) fixture_fail("fork for redis-server: %s", strerror(errno));
  if (pid == 0) {
    /* Dies with the test even when the test crashes before stop. */
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (getppid() != parent) _exit(127);
    int fd = open(r->log, O_WRONLY | O_CREAT | O_APPEND, 0600);
    if (fd >= 0) {
      dup2(fd, 1);
      dup2(fd, 2);
      close(fd);
    }
    char nodes[96], cport[16];
    snprintf(nodes, sizeof nodes, "%s/nodes.conf", r->dir);
    snprintf(cport, sizeof cport, "%d", r->cport);
    execlp(bin, bin, "--port", "0", "--unixsocket", r->socket,
           "--unixsocketperm", "700", "--save", "", "--appendonly",
           r->aof ? "yes" : "no", "--appendfsync", "always", "--daemonize",
           "no", "--dir", r->dir, "--cluster-enabled",
           r->cluster ? "yes" : "no", "--cluster-config-file", nodes,
           "--cluster-port", cport, (char *)NULL);
    fprintf(stderr, "cannot run %s: %s\n", bin, strerror(errno));
    _exit(127);
  }
  r->pid = pid;

  /* Up to 10 s for PING to answer PONG. */
  for (int waited = 0; waited < 10000; waited += 20) {
    int status;
    if (waitpid(pid, &status, WNOHANG) == pid) {
      r->pid = -1;
      char tail[700];
      log_tail(r, tail, sizeof tail);
      if (r->cluster && ++tries < 5 && strstr(tail, "in use")) goto again;
      fixture_fail(
          "redis-server exited at start (is it installed? "
          "apt-get install redis-server); its log: %s",
          tail);
    }
    struct timeval tv = {1, 0};
    redisContext *c = redisConnectUnixWithTimeout(r->socket, tv);
    if (c && !c->err) {
      redisReply *reply = redisCommand(c, "PING");
      int ok = reply && reply->type == REDIS_REPLY_STATUS &&
               strcmp(reply->str, "PONG") == 0;
      if (!wait_ready && reply && reply->type == REDIS_REPLY_ERROR &&
          strncmp(reply->str, "LOADING", 7) == 0)
        ok = 1;
      if (reply) freeReplyObject(reply);
      if (ok && r->cluster && wait_ready) ok = cluster_ready(r, c);
      redisFree(c);
      if (ok) return;
    } else if (c) {
      redisFree(c);
    }
    sleep_ms(20);
  }
  char tail[700];
  log_tail(r, tail, sizeof tail);
  kill(pid, SIGKILL);
  waitpid(pid, NULL, 0);
  r->pid = -1;
  fixture_fail("redis-server did not answer PING within 10 s; its log: %s",
               tail);
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

gm_test_redis *gm_test_redis_start(void) {
  return gm_test_redis_start_aof(0);
}

gm_test_redis *gm_test_redis_start_aof(int aof) {
  /* A write to a connection the server closed (restart, kill) must fail
     with EPIPE, as in gmd, instead of killing the test. */
  signal(SIGPIPE, SIG_IGN);
  sweep_stale();
  gm_test_redis *r = calloc(1, sizeof *r);
  if (!r) abort();
  snprintf(r->dir, sizeof r->dir, "/tmp/gm-redis-XXXXXX");
  if (!mkdtemp(r->dir)) fixture_fail("mkdtemp %s: %s", r->dir, strerror(errno));
  snprintf(r->socket, sizeof r->socket, "%s/redis.sock", r->dir);
  snprintf(r->log, sizeof r->log, "%s/redis.log", r->dir);
  r->pid = -1;
  r->aof = aof;
  const char *cluster = getenv("GM_TEST_REDIS_CLUSTER");
  r->cluster = cluster && strcmp(cluster, "1") == 0;
  char owner[96];
  snprintf(owner, sizeof owner, "%s/owner", r->dir);
  FILE *f = fopen(owner, "w");
  if (f) {
    fprintf(f, "%ld\n", (long)getpid());
    fclose(f);
  }
  spawn(r);
  return r;
}

void gm_test_redis_kill(gm_test_redis *r) {
  if (r->pid <= 0) return;
  kill(r->pid, SIGKILL);
  waitpid(r->pid, NULL, 0);
  r->pid = -1;
}

static void stop_server(gm_test_redis *r) {
  if (r->pid <= 0) return;
  kill(r->pid, SIGTERM);
  /* A clean shutdown is quick without persistence; do not hang a test. */
  for (int waited = 0; waited < 5000; waited += 10) {
    if (waitpid(r->pid, NULL, WNOHANG) == r->pid) {
      r->pid = -1;
      return;
    }
    sleep_ms(10);
  }
  gm_test_redis_kill(r);
}

void gm_test_redis_stop(gm_test_redis **rp) {
  if (!rp || !*rp) return;
  gm_test_redis *r = *rp;
  stop_server(r);
  nftw(r->dir, remove_entry, 8, FTW_DEPTH | FTW_PHYS);
  free(r);
  *rp = NULL;
}

void gm_test_redis_restart(gm_test_redis *r) {
  stop_server(r);
  spawn(r);
}

void gm_test_redis_restart_loading(gm_test_redis *r) {
  gm_test_redis_kill(r);
  spawn_server(r, 0);
}

const char *gm_test_redis_socket(const gm_test_redis *r) {
  return r->socket;
}

const char *gm_test_redis_dir(const gm_test_redis *r) {
  return r->dir;
}

pid_t gm_test_redis_pid(const gm_test_redis *r) {
  return r->pid;
}

char *gm_test_redis_path(const gm_test_redis *r, const char *name) {
  size_t n = strlen(r->dir) + strlen(name) + 2;
  char *p = malloc(n);
  if (!p) abort();
  snprintf(p, n, "%s/%s", r->dir, name);
  return p;
}

redisContext *gm_test_redis_connect(const gm_test_redis *r) {
  struct timeval tv = {5, 0};
  redisContext *c = redisConnectUnixWithTimeout(r->socket, tv);
  if (!c || c->err)
    fixture_fail("connecting to the test redis at %s: %s", r->socket,
                 c ? c->errstr : "out of memory");
  return c;
}

static redisReply *vcmd(redisContext *c, const char *fmt, va_list ap) {
  redisReply *reply = redisvCommand(c, fmt, ap);
  if (!reply) fixture_fail("redis command '%s': %s", fmt, c->errstr);
  if (reply->type == REDIS_REPLY_ERROR) {
    char msg[512];
    snprintf(msg, sizeof msg, "redis command '%s' failed: %s", fmt, reply->str);
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
