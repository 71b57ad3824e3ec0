#include "gmd_fixture.h"

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sqlite3.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include "run_gm.h"

struct gm_test_gmd {
  char conf[512];     /* the config file */
  char log[512];      /* gmd's stdout+stderr */
  char endpoint[600]; /* ipc:// request endpoint */
  char feed[600];     /* ipc:// feed endpoint */
  char ledger[512];   /* the SQLite file */
  pid_t pid;          /* gmd, or -1 */
  char keys[3][41];   /* CURVE server public, client public, client secret */
};

struct gm_test_conn {
  void *ctx;        /* own zmq context */
  void *sock;       /* DEALER */
  uint64_t next_id; /* request ids */
};

static gm_test_conn *conn_open(const char *endpoint, const char *server_key,
                               const char *public_key, const char *secret_key,
                               int reconnect_ms);

static void spawn(gm_test_gmd *g) {
  pid_t pid = fork();
  ck_assert_int_ge(pid, 0);
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    int fd = open(g->log, O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd >= 0) {
      dup2(fd, 1);
      dup2(fd, 2);
    }
    execl(GM_BUILD_DIR "/core/gmd", "gmd", "-c", g->conf, (char *)NULL);
    _exit(127);
  }
  g->pid = pid;
  /* The first connect is refused until gmd binds its socket; libzmq then
     tries again after ZMQ_RECONNECT_IVL (100 ms by default: about 150 ms
     a start waited after gmd was up). */
  gm_test_conn *c =
      g->keys[0][0]
          ? conn_open(g->endpoint, g->keys[0], g->keys[1], g->keys[2], 10)
          : conn_open(g->endpoint, NULL, NULL, NULL, 10);
  for (int i = 0; i < 100; i++) {
    int status;
    if (waitpid(pid, &status, WNOHANG) == pid) {
      g->pid = -1;
      ck_abort_msg("gmd exited at start; see %s", g->log);
    }
    Gm__PingRequest ping = GM__PING_REQUEST__INIT;
    zmq_setsockopt(c->sock, ZMQ_RCVTIMEO, &(int){100}, sizeof(int));
    Gm__Reply *r = gm_test_call(c, NULL, "gm", "ping", NULL, &ping.base);
    if (r) {
      gm__reply__free_unpacked(r, NULL);
      gm_test_conn_destroy(&c);
      return;
    }
  }
  gm_test_conn_destroy(&c);
  ck_abort_msg("gmd did not answer ping within 10 s; see %s", g->log);
}

gm_test_gmd *gm_test_gmd_start(gm_test_redis *r, const char *plugin_dir,
                               const char *extra_conf) {
  return gm_test_gmd_start_curve(r, plugin_dir, extra_conf, NULL, NULL, NULL);
}

/* Writes the config into `dir` and starts gmd. */
static gm_test_gmd *start_in(gm_test_redis *r, const char *dir,
                             const char *plugin_dir, const char *extra_conf,
                             const char *server_key, const char *public_key,
                             const char *secret_key) {
  gm_test_gmd *g = calloc(1, sizeof *g);
  if (server_key) {
    snprintf(g->keys[0], 41, "%s", server_key);
    snprintf(g->keys[1], 41, "%s", public_key);
    snprintf(g->keys[2], 41, "%s", secret_key);
  }
  snprintf(g->conf, sizeof g->conf, "%s/gmd.conf", dir);
  snprintf(g->log, sizeof g->log, "%s/gmd.log", dir);
  snprintf(g->endpoint, sizeof g->endpoint, "ipc://%s/gmd.sock", dir);
  snprintf(g->feed, sizeof g->feed, "ipc://%s/feed.sock", dir);
  snprintf(g->ledger, sizeof g->ledger, "%s/ledger.sqlite", dir);
  FILE *f = fopen(g->conf, "w");
  ck_assert_ptr_nonnull(f);
  /* A multi-master Redis fixture is reached through gmd's slot routing. */
  const char *seeds = gm_test_redis_seeds(r);
  fprintf(f,
          "[broker]\nendpoint = %s\nfeed = %s\nworkers = 2\n"
          "[redis]\nunix = %s\n%s%s%s"
          "[ledger]\npath = %s\nscan_check = true\n"
          "[security]\nmode = dev\n"
          "[plugins]\ndir = %s\n"
          "[log]\nlevel = info\n%s\n",
          g->endpoint, g->feed, gm_test_redis_socket(r),
          seeds ? "cluster = " : "", seeds ? seeds : "", seeds ? "\n" : "",
          g->ledger, plugin_dir, extra_conf ? extra_conf : "");
  fclose(f);
  spawn(g);
  return g;
}

gm_test_gmd *gm_test_gmd_start_curve(gm_test_redis *r, const char *plugin_dir,
                                     const char *extra_conf,
                                     const char *server_key,
                                     const char *public_key,
                                     const char *secret_key) {
  return start_in(r, gm_test_redis_dir(r), plugin_dir, extra_conf, server_key,
                  public_key, secret_key);
}

gm_test_gmd *gm_test_gmd_start_named_curve(gm_test_redis *r, const char *name,
                                           const char *plugin_dir,
                                           const char *extra_conf,
                                           const char *server_key,
                                           const char *public_key,
                                           const char *secret_key) {
  char dir[512];
  snprintf(dir, sizeof dir, "%s/%s", gm_test_redis_dir(r), name);
  ck_assert_msg(mkdir(dir, 0700) == 0 || errno == EEXIST, "mkdir %s: %s", dir,
                strerror(errno));
  return start_in(r, dir, plugin_dir, extra_conf, server_key, public_key,
                  secret_key);
}

gm_test_gmd *gm_test_gmd_start_named(gm_test_redis *r, const char *name,
                                     const char *plugin_dir,
                                     const char *extra_conf) {
  return gm_test_gmd_start_named_curve(r, name, plugin_dir, extra_conf, NULL,
                                       NULL, NULL);
}

void gm_test_gmd_restart(gm_test_gmd *g) {
  ck_assert_int_eq(g->pid, -1);
  spawn(g);
}

int gm_test_gmd_wait_exit(gm_test_gmd *g, int timeout_ms) {
  if (g->pid <= 0) return -1;
  for (int waited = 0;; waited += 10) {
    int status;
    if (waitpid(g->pid, &status, WNOHANG) == g->pid) {
      g->pid = -1;
      return status;
    }
    if (waited >= timeout_ms) return -1;
    nanosleep(&(struct timespec){0, 10000000}, NULL);
  }
}

const char *gm_test_gmd_conf(const gm_test_gmd *g) {
  return g->conf;
}

void gm_test_gmd_kill9(gm_test_gmd *g) {
  if (g->pid <= 0) return;
  kill(g->pid, SIGKILL);
  waitpid(g->pid, NULL, 0);
  g->pid = -1;
}

void gm_test_gmd_stop(gm_test_gmd **gp) {
  if (!gp || !*gp) return;
  gm_test_gmd *g = *gp;
  if (g->pid > 0) {
    kill(g->pid, SIGTERM);
    int status = 0;
    /* A clean stop takes well under 10 s; past that it is a hang. */
    for (int i = 0; i < 1000; i++) {
      if (waitpid(g->pid, &status, WNOHANG) == g->pid) break;
      if (i == 999) {
        kill(g->pid, SIGKILL);
        waitpid(g->pid, &status, 0);
        ck_abort_msg("gmd did not stop within 10 s of SIGTERM; see %s", g->log);
      }
      nanosleep(&(struct timespec){0, 10000000}, NULL);
    }
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
                  "gmd did not exit cleanly (status %d); see %s", status,
                  g->log);
  }
  free(g);
  *gp = NULL;
}

const char *gm_test_gmd_endpoint(const gm_test_gmd *g) {
  return g->endpoint;
}
const char *gm_test_gmd_feed(const gm_test_gmd *g) {
  return g->feed;
}
const char *gm_test_gmd_ledger(const gm_test_gmd *g) {
  return g->ledger;
}

long long gm_test_gmd_ledger_count(const gm_test_gmd *g, const char *sql) {
  sqlite3 *db;
  ck_assert_int_eq(
      sqlite3_open_v2(gm_test_gmd_ledger(g), &db, SQLITE_OPEN_READONLY, NULL),
      SQLITE_OK);
  sqlite3_busy_timeout(db, 5000);
  sqlite3_stmt *st;
  long long n = -1;
  if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK) {
    if (sqlite3_step(st) == SQLITE_ROW) n = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
  }
  sqlite3_close(db);
  return n;
}
const char *gm_test_gmd_log(const gm_test_gmd *g) {
  return g->log;
}
pid_t gm_test_gmd_pid(const gm_test_gmd *g) {
  return g->pid;
}

int gm_test_gmd_log_count(const gm_test_gmd *g, const char *text) {
  FILE *f = fopen(g->log, "r");
  if (!f) return 0;
  char line[4096];
  int n = 0;
  while (fgets(line, sizeof line, f)) n += strstr(line, text) != NULL;
  fclose(f);
  return n;
}

int gm_test_gmd_log_has(const gm_test_gmd *g, const char *text) {
  return gm_test_gmd_log_count(g, text) > 0;
}

int gm_test_gmd_metrics_port(const gm_test_gmd *g) {
  FILE *f = fopen(g->log, "r");
  if (!f) return 0;
  char line[4096];
  int port = 0;
  while (fgets(line, sizeof line, f)) {
    const char *s = strstr(line, "serving /metrics and /healthz on");
    const char *q = s ? strstr(s, "(port ") : NULL;
    if (q) port = atoi(q + 6); /* the last start's */
  }
  fclose(f);
  return port;
}

double gm_test_gmd_metric(const gm_test_gmd *g, const char *series) {
  int port = gm_test_gmd_metrics_port(g);
  if (port <= 0) return -1;
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return -1;
  struct timeval tv = {5, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  struct sockaddr_in a = {.sin_family = AF_INET,
                          .sin_port = htons((uint16_t)port)};
  inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
  static const char req[] = "GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
  size_t len = 0, cap = 1 << 16;
  char *buf = malloc(cap);
  ck_assert_ptr_nonnull(buf);
  if (connect(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
      write(fd, req, sizeof req - 1) == (ssize_t)(sizeof req - 1)) {
    ssize_t got;
    while ((got = read(fd, buf + len, cap - len - 1)) > 0) {
      len += (size_t)got;
      if (cap - len < 4096) {
        buf = realloc(buf, cap *= 2);
        ck_assert_ptr_nonnull(buf);
      }
    }
  }
  close(fd);
  buf[len] = '\0';
  /* "\n<series> <value>": a whole line's series, not a longer name's. */
  double v = -1;
  size_t n = strlen(series);
  for (const char *l = strchr(buf, '\n'); l; l = strchr(l + 1, '\n'))
    if (strncmp(l + 1, series, n) == 0 && l[1 + n] == ' ') {
      v = strtod(l + 2 + n, NULL);
      break;
    }
  free(buf);
  return v;
}

double gm_test_gmd_wait_metric(const gm_test_gmd *g, const char *series,
                               double lo, double hi, int timeout_ms) {
  double v = -1;
  struct timespec t0, t;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  for (;;) {
    v = gm_test_gmd_metric(g, series);
    clock_gettime(CLOCK_MONOTONIC, &t);
    long waited = (t.tv_sec - t0.tv_sec) * 1000L +
                  (t.tv_nsec - t0.tv_nsec) / 1000000L; /* scrapes too */
    if ((v >= lo && v <= hi) || waited >= timeout_ms) break;
    nanosleep(&(struct timespec){0, 10000000L}, NULL);
  }
  ck_assert_msg(v >= lo && v <= hi,
                "%s stayed at %g for %d ms (waited for %g..%g)", series, v,
                timeout_ms, lo, hi);
  return v;
}

/* gm_test_conn_new; reconnect_ms > 0: ZMQ_RECONNECT_IVL (libzmq's
   default, 100 ms, otherwise). */
static gm_test_conn *conn_open(const char *endpoint, const char *server_key,
                               const char *public_key, const char *secret_key,
                               int reconnect_ms) {
  gm_test_conn *c = calloc(1, sizeof *c);
  c->ctx = zmq_ctx_new();
  c->sock = zmq_socket(c->ctx, ZMQ_DEALER);
  int linger = 0, timeout = 5000;
  zmq_setsockopt(c->sock, ZMQ_LINGER, &linger, sizeof linger);
  zmq_setsockopt(c->sock, ZMQ_RCVTIMEO, &timeout, sizeof timeout);
  if (reconnect_ms > 0)
    zmq_setsockopt(c->sock, ZMQ_RECONNECT_IVL, &reconnect_ms,
                   sizeof reconnect_ms);
  if (server_key) {
    zmq_setsockopt(c->sock, ZMQ_CURVE_SERVERKEY, server_key, 40);
    zmq_setsockopt(c->sock, ZMQ_CURVE_PUBLICKEY, public_key, 40);
    zmq_setsockopt(c->sock, ZMQ_CURVE_SECRETKEY, secret_key, 40);
  }
  ck_assert_int_eq(zmq_connect(c->sock, endpoint), 0);
  c->next_id = 1;
  return c;
}

gm_test_conn *gm_test_conn_new(const char *endpoint, const char *server_key,
                               const char *public_key, const char *secret_key) {
  return conn_open(endpoint, server_key, public_key, secret_key, 0);
}

void gm_test_conn_destroy(gm_test_conn **cp) {
  if (!cp || !*cp) return;
  zmq_close((*cp)->sock);
  zmq_ctx_term((*cp)->ctx);
  free(*cp);
  *cp = NULL;
}

void gm_test_conn_send_raw(gm_test_conn *c, int n, const void *const *data,
                           const size_t *sizes) {
  for (int i = 0; i < n; i++)
    ck_assert_int_ge(
        zmq_send(c->sock, data[i], sizes[i], i + 1 < n ? ZMQ_SNDMORE : 0), 0);
}

Gm__Reply *gm_test_conn_recv(gm_test_conn *c, int timeout_ms) {
  zmq_setsockopt(c->sock, ZMQ_RCVTIMEO, &timeout_ms, sizeof timeout_ms);
  zmq_msg_t m;
  zmq_msg_init(&m);
  if (zmq_msg_recv(&m, c->sock, 0) < 0) {
    zmq_msg_close(&m);
    return NULL;
  }
  Gm__Reply *r = gm__reply__unpack(NULL, zmq_msg_size(&m), zmq_msg_data(&m));
  zmq_msg_close(&m);
  return r;
}

void gm_test_send(gm_test_conn *c, uint64_t request_id, const char *as,
                  const char *market, const char *method, const char *idem,
                  const ProtobufCMessage *body) {
  Gm__Request req = GM__REQUEST__INIT;
  req.version = 1;
  req.request_id = request_id;
  req.market = (char *)market;
  req.method = (char *)method;
  req.idempotency_key = (char *)(idem ? idem : "");
  req.dev_participant = (char *)(as ? as : "");
  uint8_t *b = NULL;
  if (body) {
    req.body.len = protobuf_c_message_get_packed_size(body);
    b = malloc(req.body.len + 1);
    protobuf_c_message_pack(body, b);
    req.body.data = b;
  }
  size_t len = gm__request__get_packed_size(&req);
  uint8_t *buf = malloc(len + 1);
  gm__request__pack(&req, buf);
  ck_assert_int_ge(zmq_send(c->sock, buf, len, 0), 0);
  free(buf);
  free(b);
}

Gm__Reply *gm_test_call(gm_test_conn *c, const char *as, const char *market,
                        const char *method, const char *idem,
                        const ProtobufCMessage *body) {
  uint64_t id = c->next_id++;
  gm_test_send(c, id, as, market, method, idem, body);
  int timeout = 0;
  size_t sz = sizeof timeout;
  zmq_getsockopt(c->sock, ZMQ_RCVTIMEO, &timeout, &sz);
  for (;;) {
    Gm__Reply *r = gm_test_conn_recv(c, timeout);
    if (!r || r->request_id == id) return r;
    gm__reply__free_unpacked(r, NULL); /* a late reply to an earlier try */
  }
}

int gm_test_gmd_check_load(gm_test_redis *r, const char *dir, const char *load,
                           const char *extra, char *out, size_t outlen) {
  char *conf = gm_test_redis_path(r, "check.conf");
  FILE *f = fopen(conf, "w");
  ck_assert_ptr_nonnull(f);
  fprintf(f,
          "[redis]\nunix = %s\n[ledger]\npath = check.sqlite\n"
          "[security]\nmode = dev\n[metrics]\nlisten =\n"
          "[plugins]\ndir = %s\nload = %s\n%s",
          gm_test_redis_socket(r), dir, load, extra ? extra : "");
  fclose(f);
  int rc = gm_test_gmd_check(conf, out, outlen);
  free(conf);
  return rc;
}
