/*
 * The metrics and health endpoint: the exported histogram buckets are exact
 * sums of the fine ones, [metrics] listen is checked, and a real gmd (with a
 * real redis-server) serves /metrics that move with requests and pass
 * promtool, and /healthz that fails when Redis is gone.  The starter alert
 * rules and the scrape config in deploy/prometheus pass promtool too.
 */
#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "gmd_fixture.h"
#include "run_gm.h"
#include "greenmarket.pb-c.h"
#include "loader.h"
#include "metrics.h"
#include "redis_fixture.h"
#include "utf8.h"
#include "testmkt.pb-c.h"

static gm_test_redis *redis;
static gm_test_gmd *gmd;
static gm_test_conn *conn;
static int port;

static long ms_since(const struct timespec *t0);

/* The port gmd logged ("serving /metrics and /healthz on ... (port N)"). */
static int logged_port(void) {
  int p = gm_test_gmd_metrics_port(gmd);
  ck_assert_msg(p > 0, "gmd logged no metrics port; see %s",
                gm_test_gmd_log(gmd));
  return p;
}

static void setup(void) {
  redis = gm_test_redis_start();
  gmd = gm_test_gmd_start(redis, TEST_PLUGIN_DIR,
                          "[plugins]\nload = testmkt\n"
                          "[metrics]\nlisten = 127.0.0.1:0\n"
                          "outbox_count_ms = 200\n");
  conn = gm_test_conn_new(gm_test_gmd_endpoint(gmd), NULL, NULL, NULL);
  port = logged_port();
}

static void teardown(void) {
  gm_test_conn_destroy(&conn);
  gm_test_gmd_stop(&gmd);
  gm_test_redis_stop(&redis);
}

/*
 * One HTTP/1.0 request to gmd's metrics port.  With HTTP/1.0 the server
 * closes the connection after the response, so the body is everything
 * after the blank line: no chunked encoding to undo.  Returns the body
 * (malloc'd) and the status in *status.
 */
static char *http(const char *method, const char *path, int *status) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  ck_assert_int_ge(fd, 0);
  struct timeval tv = {10, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
  inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
  ck_assert_msg(connect(fd, (struct sockaddr *)&a, sizeof a) == 0,
                "connect to the metrics port %d: %s", port, strerror(errno));
  char req[256];
  int n = snprintf(req, sizeof req, "%s %s HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n",
                   method, path);
  ck_assert_int_eq(write(fd, req, (size_t)n), n);
  size_t len = 0, cap = 65536;
  char *buf = malloc(cap);
  for (;;) {
    if (cap - len < 4096) buf = realloc(buf, cap *= 2);
    ssize_t got = read(fd, buf + len, cap - len - 1);
    ck_assert_msg(got >= 0, "reading the response: %s", strerror(errno));
    if (got == 0) break;
    len += (size_t)got;
  }
  close(fd);
  buf[len] = '\0';
  ck_assert_msg(sscanf(buf, "HTTP/1.%*d %d", status) == 1, "no status in '%s'",
                buf);
  char *body = strstr(buf, "\r\n\r\n");
  ck_assert_ptr_nonnull(body);
  char *out = strdup(body + 4);
  free(buf);
  return out;
}

/* Polls /healthz (up to 5 s) until it answers 200: its body, or NULL. */
static char *healthz_once_ok(void) {
  int status;
  for (int i = 0; i < 100; i++) {
    char *body = http("GET", "/healthz", &status);
    if (status == 200) return body;
    free(body);
    gm_test_sleep_ms(50);
  }
  return NULL;
}

static char *scrape(void) {
  int status;
  char *body = http("GET", "/metrics", &status);
  ck_assert_int_eq(status, 200);
  return body;
}

/* The value of the sample `series` (name{labels}, exactly as exposed);
   -1 when absent. */
static double value(const char *body, const char *series) {
  size_t n = strlen(series);
  for (const char *p = body; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : p)
    if (strncmp(p, series, n) == 0 && p[n] == ' ') return strtod(p + n, NULL);
  return -1;
}

static void need_promtool(void) {
  char out[256];
  ck_assert_msg(gm_test_shell("command -v promtool", out, sizeof out) == 0,
                "promtool is missing: run deploy/install-deps (Debian package "
                "prometheus ships it)");
}

static Gm__Reply *bump(const char *idem) {
  Gm__Testmkt__BumpRequest req = GM__TESTMKT__BUMP_REQUEST__INIT;
  req.note = "metrics";
  Gm__Reply *r =
      gm_test_call(conn, "alice", "testmkt", "bump", idem, &req.base);
  ck_assert_ptr_nonnull(r);
  return r;
}

START_TEST(histogram_buckets_are_exact_sums_of_fine_buckets) {
  for (unsigned e = GM__METRICS_LE_FIRST; e <= GM__METRICS_LE_LAST; e++) {
    int found = 0;
    for (unsigned i = 0; i < GM_LATENCY_BUCKETS && !found; i++)
      found = gm__stats_bucket_bound(i) == (uint64_t)1 << e;
    ck_assert_msg(found, "2^%u us is no fine bucket bound", e);
  }
  static const uint64_t us[] = {
      0,     1,       7,       8,       15,      16,       17,        31,
      32,    33,      100,     1000,    4095,    4096,     4097,      65535,
      65536, 8388607, 8388608, 8388609, 9000000, 1u << 30, 1ull << 40};
  size_t n = sizeof us / sizeof *us;
  gm__stats s;
  memset(&s, 0, sizeof s);
  uint64_t sum = 0;
  for (size_t i = 0; i < n; i++) {
    gm__stats_add(&s, GM_OK, us[i]);
    sum += us[i];
  }
  gm__metrics_text t = {0};
  gm__metrics_histogram(&t, "h", "market=\"x\"", &s);
  for (unsigned e = GM__METRICS_LE_FIRST; e <= GM__METRICS_LE_LAST; e++) {
    uint64_t le = (uint64_t)1 << e, want = 0;
    /* A request measured at le whole microseconds took longer than le. */
    for (size_t i = 0; i < n; i++) want += us[i] < le;
    char series[128];
    snprintf(series, sizeof series, "h_bucket{market=\"x\",le=\"%llu.%06llu\"}",
             (unsigned long long)(le / 1000000),
             (unsigned long long)(le % 1000000));
    ck_assert_msg(value(t.data, series) == (double)want, "%s: %g, want %llu",
                  series, value(t.data, series), (unsigned long long)want);
  }
  ck_assert(value(t.data, "h_bucket{market=\"x\",le=\"+Inf\"}") == (double)n);
  ck_assert(value(t.data, "h_count{market=\"x\"}") == (double)n);
  char want_sum[64];
  snprintf(want_sum, sizeof want_sum, "h_sum{market=\"x\"} %llu.%06llu\n",
           (unsigned long long)(sum / 1000000),
           (unsigned long long)(sum % 1000000));
  ck_assert_msg(strstr(t.data, want_sum), "no '%s' in:\n%s", want_sum, t.data);
  free(t.data);
}
END_TEST

START_TEST(listen_values_are_checked_at_start) {
  static const char *bad[] = {"nonsense", "127.0.0.1",      "127.0.0.1:99999",
                              ":7479",    "127.0.0.1:http", "[::1]"};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    gm__config *c = gm__config_new();
    gm__config_set(c, "metrics", "listen", bad[i]);
    char err[512] = "";
    gm__metrics *m = gm__metrics_new(c, err, sizeof err);
    ck_assert_msg(m == NULL, "'%s' was accepted", bad[i]);
    char want[128];
    snprintf(want, sizeof want, "[metrics] listen = %s: expected HOST:PORT",
             bad[i]);
    ck_assert_msg(strstr(err, want) && strstr(err, "127.0.0.1:7479"),
                  "'%s' not in '%s'", want, err);
    gm__config_destroy(&c);
  }
  static const char *good[] = {"", "127.0.0.1:7479", "[::1]:7479",
                               "localhost:0"};
  for (size_t i = 0; i < sizeof good / sizeof *good; i++) {
    gm__config *c = gm__config_new();
    gm__config_set(c, "metrics", "listen", good[i]);
    char err[512] = "";
    gm__metrics *m = gm__metrics_new(c, err, sizeof err);
    ck_assert_msg(m != NULL, "'%s' refused: %s", good[i], err);
    gm__metrics_destroy(&m);
    gm__config_destroy(&c);
  }

  /* gmd itself refuses to start on one, saying which key and why. */
  gm_test_redis *r = gm_test_redis_start();
  char *conf = gm_test_redis_path(r, "bad.conf");
  FILE *f = fopen(conf, "w");
  ck_assert_ptr_nonnull(f);
  fprintf(f,
          "[redis]\nunix = %s\n[ledger]\npath = ledger.sqlite\n"
          "[security]\nmode = dev\n[plugins]\ndir = %s\n"
          "[metrics]\nlisten = localhost\n",
          gm_test_redis_socket(r), TEST_PLUGIN_DIR);
  fclose(f);
  char cmd[2048], out[4096];
  snprintf(cmd, sizeof cmd, "%s/core/gmd --check -c %s", GM_BUILD_DIR, conf);
  ck_assert_int_eq(gm_test_shell(cmd, out, sizeof out), 1);
  ck_assert_msg(strstr(out,
                       "cannot start: [metrics] listen = localhost: "
                       "expected HOST:PORT"),
                "gmd said: %s", out);
  /* An address not on this machine (192.0.2.1, TEST-NET-1: nobody's) is
     named as such, by --check too (which binds no port of its own), not
     taken for a port in use. */
  f = fopen(conf, "w");
  ck_assert_ptr_nonnull(f);
  fprintf(f,
          "[redis]\nunix = %s\n[ledger]\npath = ledger.sqlite\n"
          "[security]\nmode = dev\n[plugins]\ndir = %s\n"
          "[metrics]\nlisten = 192.0.2.1:7479\n",
          gm_test_redis_socket(r), TEST_PLUGIN_DIR);
  fclose(f);
  ck_assert_int_eq(gm_test_shell(cmd, out, sizeof out), 1);
  ck_assert_msg(strstr(out,
                       "cannot start: [metrics] listen = 192.0.2.1:7479: "
                       "192.0.2.1 is not an address of this machine") &&
                    strstr(out, "127.0.0.1") && !strstr(out, "in use") &&
                    gm__utf8_valid(out, strlen(out)),
                "gmd said: %s", out);
  /* A link-local IPv6 address without its interface cannot be listened on
     (EINVAL): said so, with the form to give, by --check too; before,
     --check passed and gmd's start blamed a port in use. */
  f = fopen(conf, "w");
  ck_assert_ptr_nonnull(f);
  fprintf(f,
          "[redis]\nunix = %s\n[ledger]\npath = ledger.sqlite\n"
          "[security]\nmode = dev\n[plugins]\ndir = %s\n"
          "[metrics]\nlisten = [fe80::1]:7479\n",
          gm_test_redis_socket(r), TEST_PLUGIN_DIR);
  fclose(f);
  int probe = socket(AF_INET6, SOCK_STREAM, 0);
  if (probe >= 0) {
    close(probe);
    ck_assert_int_eq(gm_test_shell(cmd, out, sizeof out), 1);
    ck_assert_msg(strstr(out,
                         "cannot start: [metrics] listen = [fe80::1]:7479: "
                         "gmd cannot listen on fe80::1") &&
                      strstr(out, "[fe80::1%eth0]:7479") &&
                      !strstr(out, "in use") &&
                      gm__utf8_valid(out, strlen(out)),
                  "gmd said: %s", out);
  }
  free(conf);
  gm_test_redis_stop(&r);
}
END_TEST

/* gmd --check with [plugins] load = `load` (dir: `dir`, or the test
   plugins) and the config lines `extra` after it: its exit status, the
   output in out. */
static int check_config(gm_test_redis *r, const char *dir, const char *load,
                        const char *extra, char *out, size_t outlen) {
  return gm_test_gmd_check_load(r, dir ? dir : TEST_PLUGIN_DIR, load, extra,
                                out, outlen);
}

static int check_load(gm_test_redis *r, const char *dir, const char *load,
                      char *out, size_t outlen) {
  return check_config(r, dir, load, "", out, outlen);
}

/* gmd serves on without a plugin it refused, but --check, asked whether
   the config is right, says no when a market [plugins] load names did not
   load. */
START_TEST(check_fails_when_a_listed_market_does_not_load) {
  gm_test_redis *r = gm_test_redis_start();
  char out[8192];
  ck_assert_int_eq(check_load(r, NULL, "testmkt", out, sizeof out), 0);
  ck_assert_msg(strstr(out, "is valid; 1 market(s) loaded"), "%s", out);
  /* Names apart by spaces load as by commas (the loader splits on both):
     both loaded is valid. */
  ck_assert_int_eq(check_load(r, NULL, "alpha beta", out, sizeof out), 0);
  ck_assert_msg(strstr(out, "is valid; 2 market(s) loaded"), "%s", out);
  ck_assert_int_eq(check_load(r, NULL, "testmkt, nomarket", out, sizeof out),
                   1);
  ck_assert_msg(strstr(out, "gm_nomarket.so: refused") &&
                    strstr(out,
                           "[plugins] load names nomarket, which did "
                           "not load") &&
                    !strstr(out, "is valid"),
                "%s", out);
  gm_test_redis_stop(&r);
}
END_TEST

/* A [market.NAME] section is its plugin's, so gmd cannot check its keys;
   but one whose NAME is no loaded market and no plugin file in the dir (a
   typo) is read by nobody: gmd says so, and --check is not valid. */
START_TEST(check_fails_on_a_market_section_no_market_reads) {
  gm_test_redis *r = gm_test_redis_start();
  char out[8192];
  ck_assert_int_eq(
      check_config(r, NULL, "testmkt", "[market.testmkt]\ngreeting = hi\n", out,
                   sizeof out),
      0);
  ck_assert_msg(strstr(out, "is valid; 1 market(s) loaded"), "%s", out);
  /* A plugin in the dir that load leaves out keeps its section. */
  ck_assert_int_eq(
      check_config(r, NULL, "testmkt", "[Market.alpha]\nanything = 1\n", out,
                   sizeof out),
      0);
  ck_assert_msg(strstr(out, "is valid"), "%s", out);
  ck_assert_int_eq(
      check_config(r, NULL, "testmkt", "[market.testmk]\ngreeting = hi\n", out,
                   sizeof out),
      1);
  ck_assert_msg(strstr(out,
                       "WARN  [loader] [market.testmk]: no market "
                       "testmk is loaded") &&
                    strstr(out, "no gm_testmk.so") &&
                    strstr(out, "(did you mean [market.testmkt]?)") &&
                    strstr(out, "1 [market.NAME] section(s) name no market") &&
                    !strstr(out, "is valid"),
                "%s", out);
  gm_test_redis_stop(&r);
}
END_TEST

/* An install made with cmake --install --prefix P (not the configured
   CMAKE_INSTALL_PREFIX) has gmd in P/bin and its plugins in P/<libdir>/...:
   gmd without [plugins] dir finds them there, as gm does. */
START_TEST(an_installed_gmd_loads_the_plugins_beside_it) {
  gm_test_redis *r = gm_test_redis_start();
  char *prefix = gm_test_redis_path(r, "prefix");
  char cmd[4096], out[8192];
  snprintf(cmd, sizeof cmd,
           "mkdir -p '%s/bin' '%s/bin/%s' && cp '%s/core/gmd' '%s/bin/' && "
           "cp '%s/gm_testmkt.so' '%s/bin/%s/'",
           prefix, prefix, GM_RELATIVE_PLUGIN_DIR, GM_BUILD_DIR, prefix,
           TEST_PLUGIN_DIR, prefix, GM_RELATIVE_PLUGIN_DIR);
  ck_assert_int_eq(gm_test_shell(cmd, out, sizeof out), 0);
  snprintf(cmd, sizeof cmd, "%s/gmd.conf", prefix);
  FILE *f = fopen(cmd, "w");
  ck_assert_ptr_nonnull(f);
  fprintf(f,
          "[redis]\nunix = %s\n[ledger]\npath = ledger.sqlite\n"
          "[security]\nmode = dev\n[plugins]\nload = testmkt\n",
          gm_test_redis_socket(r));
  fclose(f);
  snprintf(cmd, sizeof cmd, "'%s/bin/gmd' --check -c '%s/gmd.conf'", prefix,
           prefix);
  int rc = gm_test_shell(cmd, out, sizeof out);
  ck_assert_msg(rc == 0 && strstr(out, "is valid; 1 market(s) loaded") &&
                    strstr(out, "/prefix/lib") &&
                    strstr(out, "/greenmarket/plugins/gm_testmkt.so"),
                "status %d: %s", rc, out);
  free(prefix);
  gm_test_redis_stop(&r);
}
END_TEST

START_TEST(metrics_move_with_requests_and_pass_promtool) {
  need_promtool();
  char *body = scrape();
  const char *bump_requests =
      "greenmarket_method_requests_total{market=\"testmkt\",method=\"bump\"}";
  const char *bump_count =
      "greenmarket_method_request_duration_seconds_count{market=\"testmkt\","
      "method=\"bump\"}";
  const char *bump_inf =
      "greenmarket_method_request_duration_seconds_bucket{market=\"testmkt\","
      "method=\"bump\",le=\"+Inf\"}";
  const char *market_requests =
      "greenmarket_market_requests_total{market=\"testmkt\"}";
  ck_assert(value(body, bump_requests) == 0);
  ck_assert(value(body, bump_count) == 0);
  ck_assert(value(body, market_requests) == 0);
  ck_assert(value(body, "greenmarket_redis_up") == 1);
  ck_assert(value(body, "greenmarket_ledger_up") == 1);
  ck_assert(value(body, "greenmarket_settle_running") == 1);
  free(body);

  for (int i = 0; i < 3; i++) {
    char key[32];
    snprintf(key, sizeof key, "metrics-%d", i);
    Gm__Reply *r = bump(key);
    ck_assert_msg(r->status == GM__STATUS__OK, "bump: %s", r->message);
    gm__reply__free_unpacked(r, NULL);
  }
  Gm__Reply *r = bump(NULL); /* no idempotency key: INVALID_ARGUMENT */
  ck_assert_int_eq(r->status, GM__STATUS__INVALID_ARGUMENT);
  gm__reply__free_unpacked(r, NULL);

  /* The reply is sent before the counters move: wait for them. */
  for (int i = 0; i < 500; i++) {
    body = scrape();
    if (value(body, bump_count) == 4 &&
        value(body, "greenmarket_settle_entries_total") >= 3)
      break;
    free(body);
    body = NULL;
    gm_test_sleep_ms(20);
  }
  ck_assert_msg(body, "the counters did not reach 4 requests, 3 settled");
  ck_assert(value(body, bump_requests) == 4);
  ck_assert(value(body, bump_inf) == 4);
  ck_assert(value(body, market_requests) == 4);
  ck_assert(value(body,
                  "greenmarket_method_request_errors_total{market=\"testmkt\","
                  "method=\"bump\",status=\"INVALID_ARGUMENT\"}") == 1);
  ck_assert(value(body,
                  "greenmarket_market_request_errors_total{market=\"testmkt\","
                  "status=\"INVALID_ARGUMENT\"}") == 1);
  ck_assert(value(body, "greenmarket_settle_batches_total") >= 1);
  ck_assert(value(body, "greenmarket_settle_batch_size_count") ==
            value(body, "greenmarket_settle_batches_total"));
  ck_assert(value(body, "greenmarket_settle_batch_size_sum") >= 3);
  ck_assert(value(body, "greenmarket_settle_batch_failures_total") == 0);
  ck_assert(value(body, "greenmarket_settle_lag_seconds") >= 0);
  ck_assert(value(body, "greenmarket_dead_letters") == 0);
  ck_assert(value(body, "greenmarket_uptime_seconds") > 0);
  ck_assert(value(body, "greenmarket_bad_frames_total") == 0);

  /* The outbox is counted at most every outbox_count_ms (200 here): the
     first scrape may have seen none. */
  for (int i = 0; i < 120; i++) {
    if (value(body, "greenmarket_outbox_streams") == 1 &&
        value(body, "greenmarket_outbox_entries") == 0)
      break;
    free(body);
    gm_test_sleep_ms(100);
    body = scrape();
  }
  ck_assert_msg(value(body, "greenmarket_outbox_streams") == 1 &&
                    value(body, "greenmarket_outbox_entries") == 0,
                "outbox: %g streams, %g entries; want 1 and 0 (settled)",
                value(body, "greenmarket_outbox_streams"),
                value(body, "greenmarket_outbox_entries"));
  char *file = gm_test_redis_path(redis, "metrics.txt");
  FILE *f = fopen(file, "w");
  ck_assert_ptr_nonnull(f);
  fputs(body, f);
  fclose(f);
  char cmd[1024], out[8192];
  snprintf(cmd, sizeof cmd, "promtool check metrics < %s", file);
  int rc = gm_test_shell(cmd, out, sizeof out);
  ck_assert_msg(rc == 0 && out[0] == '\0',
                "promtool check metrics (status %d) says:\n%s", rc, out);
  free(file);
  free(body);

  int status;
  body = http("GET", "/nope", &status);
  ck_assert_int_eq(status, 404);
  ck_assert_ptr_nonnull(strstr(body, "/metrics and /healthz"));
  free(body);
  body = http("POST", "/metrics", &status);
  ck_assert_int_eq(status, 405);
  free(body);
  body = http("HEAD", "/healthz", &status);
  ck_assert_int_eq(status, 200);
  free(body);
  /* A path (percent-decoded by the server) or a method that is no UTF-8
     is echoed repaired (U+FFFD), never as the bytes sent: the body is
     text/plain UTF-8, and strict clients refuse anything else. */
  body = http("GET", "/caf%C3%A9%FF%C3", &status);
  ck_assert_int_eq(status, 404);
  ck_assert_msg(gm__utf8_valid(body, strlen(body)) &&
                    strstr(body, "/caf\xC3\xA9\xEF\xBF\xBD"),
                "%s", body);
  free(body);
  body = http("G\xFF", "/metrics", &status);
  ck_assert_int_eq(status, 405);
  ck_assert_msg(gm__utf8_valid(body, strlen(body)), "%s", body);
  free(body);
}
END_TEST

START_TEST(healthz_fails_while_redis_is_gone) {
  int status;
  char *body = http("GET", "/healthz", &status);
  ck_assert_int_eq(status, 200);
  ck_assert_str_eq(body, "ok\n");
  free(body);
  body = scrape();
  double errors = value(body, "greenmarket_redis_errors_total");
  ck_assert(errors >= 0);
  free(body);

  pid_t pid = gm_test_redis_pid(redis);
  ck_assert_int_gt(pid, 0);
  gm_test_redis_kill(redis); /* SIGKILL that pid, reaped */
  body = http("GET", "/healthz", &status);
  ck_assert_int_eq(status, 503);
  ck_assert_msg(strstr(body, "Redis") && strstr(body, "PING"),
                "no reason in '%s'", body);
  free(body);
  /* The next check's new connection fails: said in words, with what to do
     (before, "(Connection refused)" or "(No such file or directory)"). */
  char want[256];
  snprintf(want, sizeof want, "Redis is not reachable at unix socket %s: ",
           gm_test_redis_socket(redis));
  body = http("GET", "/healthz", &status);
  ck_assert_msg(status == 503 && strstr(body, want) &&
                    strstr(body, "is redis-server running? Start it") &&
                    !strstr(body, "(Connection refused)") &&
                    !strstr(body, "(No such file or directory)"),
                "%d %s", status, body);
  free(body);
  body = scrape();
  ck_assert(value(body, "greenmarket_redis_up") == 0);
  ck_assert(value(body, "greenmarket_ledger_up") == 1);
  ck_assert(value(body, "greenmarket_redis_errors_total") > errors);
  free(body);

  /* Back once Redis is: the metrics thread reconnects by itself. */
  gm_test_redis_restart(redis);
  body = healthz_once_ok();
  ck_assert_msg(body, "/healthz stayed failing after Redis came back");
  ck_assert_str_eq(body, "ok\n");
  free(body);

  /* Redis restarted between two scrapes: the first one after it finds its
     connection closed, and opens a new one instead of reporting a Redis
     that answers as down. */
  gm_test_redis_kill(redis);
  gm_test_redis_restart(redis);
  body = http("GET", "/healthz", &status);
  ck_assert_msg(status == 200, "first /healthz after a restart: %d %s", status,
                body);
  free(body);
}
END_TEST

/* A broker whose ledger file is behind the book's mark (a restore that
   kept the mark) may not take the settle lease; alone on its Redis, nothing
   settles.  /healthz says so, with the fix, and settle_running is 0 (the
   GreenmarketUnhealthy alert), though the settler thread beats on; once
   the mark is deleted it takes the lease and is healthy again. */
START_TEST(healthz_fails_while_no_broker_may_settle) {
  int status;
  char *body = http("GET", "/healthz", &status);
  ck_assert_int_eq(status, 200);
  free(body);
  /* One settled batch writes the book's mark. */
  Gm__Reply *r = bump("book-1");
  ck_assert_msg(r->status == GM__STATUS__OK, "bump: %s", r->message);
  gm__reply__free_unpacked(r, NULL);
  redisContext *rc = gm_test_redis_connect(redis);
  redisReply *book = NULL;
  for (int i = 0; i < 200; i++) {
    book = gm_test_redis_cmd(rc, "GET gm:{settle}:book");
    if (book->type == REDIS_REPLY_STRING) break;
    freeReplyObject(book);
    book = NULL;
    gm_test_sleep_ms(20);
  }
  ck_assert_msg(book, "no book mark after a settled entry");
  gm_test_gmd_kill9(gmd);
  /* The same book, 1000 batches further than this file. */
  char mark[256];
  snprintf(mark, sizeof mark, "%.*s 1000",
           (int)(strrchr(book->str, ' ') - book->str), book->str);
  freeReplyObject(book);
  freeReplyObject(gm_test_redis_cmd(rc, "DEL gm:{settle}:lease"));
  freeReplyObject(gm_test_redis_cmd(rc, "SET gm:{settle}:book %s", mark));
  gm_test_gmd_restart(gmd);
  port = logged_port();
  body = NULL;
  for (int i = 0; i < 100 && !body; i++) {
    body = http("GET", "/healthz", &status);
    if (status != 503) {
      free(body);
      body = NULL;
      gm_test_sleep_ms(50);
    }
  }
  ck_assert_msg(body, "/healthz stayed ok while no broker may settle");
  ck_assert_msg(strstr(body,
                       "nothing settles: no broker holds the settle "
                       "lease, and this broker's ledger file is not "
                       "the book of record") &&
                    strstr(body, "delete the book's mark"),
                "%s", body);
  free(body);
  ck_assert_msg(gm_test_gmd_log_has(gmd, "is not the book of record"),
                "the log does not say why");
  body = scrape();
  ck_assert(value(body, "greenmarket_settle_running") == 0);
  ck_assert(value(body, "greenmarket_settle_lease_held") == 0);
  free(body);

  freeReplyObject(gm_test_redis_cmd(rc, "DEL gm:{settle}:book"));
  body = healthz_once_ok();
  ck_assert_msg(body, "/healthz stayed failing once the mark was deleted");
  ck_assert_str_eq(body, "ok\n");
  free(body);
  redisFree(rc);
}
END_TEST

/* /healthz once while Redis is stopped (SIGSTOP): it must fail in under
   3.5 s (one 2 s read timeout, not two, nor the 30 s default), saying so
   when `reason` is given; then it must pass again once Redis goes on. */
static void healthz_while_redis_is_stopped(const char *reason) {
  pid_t pid = gm_test_redis_pid(redis);
  ck_assert_int_gt(pid, 0);
  ck_assert_int_eq(kill(pid, SIGSTOP), 0);
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  int status;
  char *body = http("GET", "/healthz", &status);
  clock_gettime(CLOCK_MONOTONIC, &t1);
  kill(pid, SIGCONT);
  long ms =
      (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
  ck_assert_msg(status == 503, "/healthz on a stopped Redis: %d %s", status,
                body ? body : "");
  if (reason) ck_assert_msg(strstr(body, reason), "reason: '%s'", body);
  ck_assert_msg(ms < 3500, "/healthz took %ld ms on a stopped Redis", ms);
  free(body);
  body = healthz_once_ok();
  ck_assert_msg(body, "/healthz stayed failing after Redis went on");
  free(body);
}

/* A Redis that stalls (stopped, or busy with a slow command) fails /healthz
   after one read timeout: the retry on a new connection is for a connection
   Redis closed, not for one that timed out (that made every probe of a
   stalled Redis wait twice as long, past a probe's own timeout).  It says
   so in words, not as hiredis's "Resource temporarily unavailable". */
START_TEST(healthz_on_a_stalled_redis_waits_one_timeout) {
  int status;
  char *body = http("GET", "/healthz", &status);
  ck_assert_int_eq(status, 200);
  free(body);
  healthz_while_redis_is_stopped("does not answer PING (no reply within 2 s)");
}
END_TEST

/* The same on the first probe, which opens /healthz's connection: the
   connect's own PING (and AUTH) wait the probe's 2 s, not the 30 s of a
   worker's connection. */
START_TEST(first_healthz_on_a_stalled_redis_waits_one_timeout) {
  healthz_while_redis_is_stopped(NULL);
}
END_TEST

/* An HTTP/1.0 request sent on a new connection, not read: its socket. */
static int http_send(const char *method, const char *path) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  ck_assert_int_ge(fd, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
  inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
  ck_assert_msg(connect(fd, (struct sockaddr *)&a, sizeof a) == 0,
                "connect to the metrics port %d: %s", port, strerror(errno));
  char req[256];
  int n = snprintf(req, sizeof req, "%s %s HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n",
                   method, path);
  ck_assert_int_eq(write(fd, req, (size_t)n), n);
  return fd;
}

/* Redis's connected clients (INFO clients), asked on rc. */
static long redis_clients(redisContext *rc) {
  redisReply *r = gm_test_redis_cmd(rc, "INFO clients");
  ck_assert_int_eq(r->type, REDIS_REPLY_STRING);
  const char *at = strstr(r->str, "connected_clients:");
  ck_assert_ptr_nonnull(at);
  long n = strtol(at + strlen("connected_clients:"), NULL, 10);
  freeReplyObject(r);
  return n;
}

/*
 * 15 /healthz at once while Redis is stopped (SIGSTOP), and a /metrics
 * scrape among them (16 connections, as many as are served at once): the
 * probes share one check, so all are answered 503 after one Redis timeout
 * (2 s), not one after another (15 x 2 s, past any probe's timeout); the
 * scrape does not wait behind them (it is answered from the last check's
 * results within a fraction of a second); two probes more, 0.1 s later,
 * close the two that waited longest (at most 16 at once) and join the
 * same check; and the flood opens no new connection to Redis beyond the
 * checker's reopened one.
 */
START_TEST(concurrent_healthz_on_a_stopped_redis_share_one_check) {
  enum { N = 15, M = N + 1, ALL = M + 2 };
  int status;
  char *body = http("GET", "/healthz", &status);
  ck_assert_int_eq(status, 200);
  free(body);
  redisContext *rc = gm_test_redis_connect(redis);
  long before = redis_clients(rc);
  pid_t pid = gm_test_redis_pid(redis);
  ck_assert_int_gt(pid, 0);
  ck_assert_int_eq(kill(pid, SIGSTOP), 0);
  struct timespec t0;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  int fd[ALL];
  long at[ALL];
  char got[ALL][512];
  size_t len[ALL];
  for (int i = 0; i < N; i++) fd[i] = http_send("GET", "/healthz");
  fd[N] = http_send("GET", "/metrics");
  gm_test_sleep_ms(100);
  for (int i = M; i < ALL; i++) fd[i] = http_send("GET", "/healthz");
  int open = ALL;
  for (int i = 0; i < ALL; i++) {
    at[i] = -1;
    len[i] = 0;
  }
  while (open && ms_since(&t0) < 12000) {
    struct pollfd p[ALL];
    for (int i = 0; i < ALL; i++)
      p[i] = (struct pollfd){.fd = at[i] < 0 ? fd[i] : -1, .events = POLLIN};
    if (poll(p, ALL, 100) <= 0) continue;
    for (int i = 0; i < ALL; i++) {
      if (!p[i].revents) continue;
      char buf[4096];
      ssize_t n = read(fd[i], buf, sizeof buf);
      if (n > 0) {
        size_t keep = (size_t)n < sizeof got[i] - 1 - len[i]
                          ? (size_t)n
                          : sizeof got[i] - 1 - len[i];
        memcpy(got[i] + len[i], buf, keep);
        len[i] += keep;
        continue;
      }
      got[i][len[i]] = '\0';
      at[i] = ms_since(&t0);
      open--;
    }
  }
  kill(pid, SIGCONT);
  long slowest = 0;
  int dropped = 0;
  for (int i = 0; i < ALL; i++) {
    if (i == N) continue;
    ck_assert_msg(at[i] >= 0, "/healthz %d unanswered after 12 s", i);
    if (!len[i] && i < N) {
      dropped++; /* closed to make room for the last two */
      continue;
    }
    ck_assert_msg(strncmp(got[i], "HTTP/1.1 503", 12) == 0 ||
                      strncmp(got[i], "HTTP/1.0 503", 12) == 0,
                  "/healthz %d on a stopped Redis: %s", i, got[i]);
    ck_assert_msg(strstr(got[i], "does not answer PING"), "%s", got[i]);
    if (at[i] > slowest) slowest = at[i];
  }
  ck_assert_msg(dropped == ALL - 16, "%d probes closed unanswered, not %d",
                dropped, ALL - 16);
  ck_assert_msg(at[N] >= 0, "/metrics unanswered after 12 s");
  ck_assert_msg(strstr(got[N], " 200 ") != NULL, "/metrics: %s", got[N]);
  printf(
      "%d /healthz on a stopped Redis: the last answered after %ld ms; "
      "/metrics among them after %ld ms\n",
      ALL - 1 - dropped, slowest, at[N]);
  ck_assert_msg(slowest < 3500, "/healthz took %ld ms on a stopped Redis",
                slowest);
  ck_assert_msg(at[N] < 1500 && at[N] < slowest,
                "/metrics waited %ld ms behind /healthz (%ld ms)", at[N],
                slowest);
  for (int i = 0; i < ALL; i++) close(fd[i]);
  body = healthz_once_ok();
  ck_assert_msg(body, "/healthz stayed failing after Redis went on");
  free(body);
  /* The checker's connection, reopened after its timeout: no more. */
  long after = redis_clients(rc);
  printf("Redis clients before the flood %ld, after %ld\n", before, after);
  ck_assert_msg(after <= before + 1,
                "Redis clients %ld before the flood, %ld after", before, after);
  redisFree(rc);
}
END_TEST

static int gauge_pending(void *arg, double *value) {
  *value = *(double *)arg;
  return 0;
}

static int gauge_unknown(void *arg, double *value) {
  (void)arg;
  (void)value;
  return -1;
}

/* The way the deadline service shows its numbers: gauges registered on the
   endpoint, read at each scrape, left out while they have no value. */
START_TEST(registered_gauges_are_served) {
  gm_test_redis *r = gm_test_redis_start();
  gm__config *c = gm__config_new();
  gm__config_set(c, "metrics", "listen", "127.0.0.1:0");
  char err[512] = "";
  gm__metrics *m = gm__metrics_new(c, err, sizeof err);
  ck_assert_msg(m != NULL, "%s", err);
  double pending = 3;
  gm__metrics_gauge_add(m, "greenmarket_deadlines_pending",
                        "Deadlines set and not yet handled.", gauge_pending,
                        &pending);
  gm__metrics_gauge_add(m, "greenmarket_deadlines_late", "Deadlines past due.",
                        gauge_unknown, NULL);
  gm__metrics_gauge_add(NULL, "greenmarket_ignored", "no endpoint",
                        gauge_pending, &pending);
  _Atomic uint64_t bad_frames = 0;
  char *ledger = gm_test_redis_path(r, "ledger.sqlite");
  gm__metrics_view v = {.broker = "test",
                        .bad_frames = &bad_frames,
                        .redis = {.unix_path = gm_test_redis_socket(r)},
                        .ledger_path = ledger};
  ck_assert_msg(gm__metrics_start(m, &v, err, sizeof err) == 0, "%s", err);
  port = gm__metrics_port(m);
  ck_assert_int_gt(port, 0);
  char *body = scrape();
  ck_assert(value(body, "greenmarket_deadlines_pending") == 3);
  ck_assert_ptr_nonnull(
      strstr(body,
             "# HELP greenmarket_deadlines_pending Deadlines set and not yet "
             "handled.\n# TYPE greenmarket_deadlines_pending gauge\n"));
  ck_assert_ptr_null(strstr(body, "greenmarket_deadlines_late"));
  ck_assert(value(body, "greenmarket_redis_up") == 1);
  /* No ledger file here: it is reported, not fatal. */
  ck_assert(value(body, "greenmarket_ledger_up") == 0);
  free(body);
  pending = 5;
  body = scrape();
  ck_assert(value(body, "greenmarket_deadlines_pending") == 5);
  free(body);
  int status;
  body = http("GET", "/healthz", &status);
  ck_assert_int_eq(status, 503);
  ck_assert_msg(strstr(body, "ledger") && !strstr(body, "Redis"),
                "health says: %s", body);
  free(body);
  gm__metrics_destroy(&m);
  ck_assert_ptr_null(m);
  gm__metrics_destroy(&m);
  free(ledger);
  gm__config_destroy(&c);
  gm_test_redis_stop(&r);
}
END_TEST

/* The deadline gauges of a real gmd (its test market registers deadline
   kinds): tags with a deadline pending, and those late, here a tag of a
   market no broker loads whose deadline is a minute past due. */
START_TEST(deadline_gauges_count_tags) {
  Gm__Testmkt__DeadlineRequest req = GM__TESTMKT__DEADLINE_REQUEST__INIT;
  struct timespec now;
  clock_gettime(CLOCK_REALTIME, &now);
  long long ms = (long long)now.tv_sec * 1000 + now.tv_nsec / 1000000;
  req.op = "set";
  req.kind = "tick";
  req.tag = "g";
  req.id = "later";
  req.due_ms = ms + 3600000;
  Gm__Reply *r =
      gm_test_call(conn, "alice", "testmkt", "deadline", "dl-1", &req.base);
  ck_assert_msg(r && r->status == GM__STATUS__OK, "deadline: %s",
                r ? r->message : "no reply");
  gm__reply__free_unpacked(r, NULL);
  redisContext *rc = gm_test_redis_connect(redis);
  freeReplyObject(
      gm_test_redis_cmd(rc, "ZADD gm:deadlines %lld other:x", ms - 60000));
  redisFree(rc);
  double pending = -1, late = -1;
  for (int i = 0; i < 500 && !(pending == 2 && late == 1); i++) {
    char *body = scrape();
    pending = value(body, "greenmarket_deadlines_pending");
    late = value(body, "greenmarket_deadlines_late");
    free(body);
    if (!(pending == 2 && late == 1)) gm_test_sleep_ms(10);
  }
  ck_assert_msg(pending == 2 && late == 1, "pending %g, late %g", pending,
                late);
}
END_TEST

START_TEST(alert_rules_and_scrape_config_pass_promtool) {
  need_promtool();
  char out[8192];
  int rc = gm_test_shell("cd " GM_SOURCE_DIR
                         "/deploy/prometheus && promtool check rules "
                         "greenmarket-alerts.yml",
                         out, sizeof out);
  ck_assert_msg(rc == 0 && strstr(out, "SUCCESS") && !strstr(out, "WARN") &&
                    !strstr(out, "FAILED"),
                "promtool check rules (status %d):\n%s", rc, out);
  rc = gm_test_shell("cd " GM_SOURCE_DIR
                     "/deploy/prometheus && promtool test rules "
                     "greenmarket-alerts.test.yml",
                     out, sizeof out);
  ck_assert_msg(rc == 0 && strstr(out, "SUCCESS"),
                "promtool test rules (status %d):\n%s", rc, out);
  rc = gm_test_shell(
      "cd " GM_SOURCE_DIR
      "/deploy/prometheus && promtool check config prometheus.yml",
      out, sizeof out);
  ck_assert_msg(rc == 0 && !strstr(out, "WARN") && !strstr(out, "FAILED"),
                "promtool check config (status %d):\n%s", rc, out);
}
END_TEST

/*
 * Every setting an alert tells the operator to write ("[settle] settle =
 * auto") is one gmd --check accepts: GreenmarketNobodySettles said
 * "[ledger] settle = auto", which gmd refuses ("expected on or off").
 */
START_TEST(settings_the_alert_rules_name_are_accepted) {
  FILE *f =
      fopen(GM_SOURCE_DIR "/deploy/prometheus/greenmarket-alerts.yml", "r");
  ck_assert_ptr_nonnull(f);
  static char rules[65536];
  size_t len = fread(rules, 1, sizeof rules - 1, f);
  fclose(f);
  rules[len] = '\0';
  gm_test_redis *r = gm_test_redis_start();
  int n = 0;
  for (const char *p = strchr(rules, '['); p; p = strchr(p + 1, '[')) {
    char sec[32], key[64], val[64], extra[256], out[8192];
    if (sscanf(p, "[%31[a-z_]] %63[a-z_] = %63[a-z0-9_]", sec, key, val) != 3)
      continue;
    snprintf(extra, sizeof extra, "[%s]\n%s = %s\n", sec, key, val);
    int rc = check_config(r, NULL, "testmkt", extra, out, sizeof out);
    ck_assert_msg(rc == 0 && strstr(out, "is valid"),
                  "the alert rules say to write [%s] %s = %s; gmd --check "
                  "(status %d) says:\n%s",
                  sec, key, val, rc, out);
    n++;
  }
  ck_assert_int_ge(n, 2);
  gm_test_redis_stop(&r);
}
END_TEST

/* A [metrics] listen port another process holds: gmd's start fails, and the
   log names the configured address, not libmicrohttpd's "port 0". */
START_TEST(a_metrics_port_in_use_is_named_in_the_log) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  ck_assert_int_ge(fd, 0);
  struct sockaddr_in sa = {.sin_family = AF_INET,
                           .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
  ck_assert_int_eq(listen(fd, 1), 0);
  socklen_t sl = sizeof sa;
  ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&sa, &sl), 0);
  char listen_at[64];
  snprintf(listen_at, sizeof listen_at, "127.0.0.1:%d", ntohs(sa.sin_port));
  gm__config *c = gm__config_new();
  gm__config_set(c, "metrics", "listen", listen_at);
  char err[512] = "";
  gm__metrics *m = gm__metrics_new(c, err, sizeof err);
  ck_assert_msg(m != NULL, "%s", err);
  _Atomic uint64_t bad_frames = 0;
  gm__metrics_view v = {.broker = "test",
                        .bad_frames = &bad_frames,
                        .redis = {.unix_path = "/nonexistent.sock"},
                        .ledger_path = "/nonexistent.sqlite"};
  char logpath[] = "/tmp/gm-metrics-log-XXXXXX";
  int logfd = mkstemp(logpath);
  ck_assert_int_ge(logfd, 0);
  fflush(stderr);
  int saved = dup(2);
  dup2(logfd, 2);
  int rc = gm__metrics_start(m, &v, err, sizeof err);
  fflush(stderr);
  dup2(saved, 2);
  close(saved);
  ck_assert_int_eq(rc, -1);
  ck_assert_msg(strstr(err, listen_at) && strstr(err, "[metrics] listen"), "%s",
                err);
  char log[2048] = "";
  ssize_t n = pread(logfd, log, sizeof log - 1, 0);
  ck_assert_int_ge(n, 0);
  log[n] = '\0';
  close(logfd);
  unlink(logpath);
  char want[128];
  snprintf(want, sizeof want, "Failed to bind to %s", listen_at);
  ck_assert_msg(strstr(log, want) && !strstr(log, "port 0"), "log: %s", log);
  ck_assert_msg(strstr(err, "another program"), "%s", err);
  gm__metrics_destroy(&m);
  /* The port is gmd's own private feed's: said so, not "another gmd". */
  err[0] = '\0';
  m = gm__metrics_new(c, err, sizeof err);
  ck_assert_msg(m != NULL, "%s", err);
  char own[64];
  snprintf(own, sizeof own, "tcp://127.0.0.1:%d", ntohs(sa.sin_port));
  v.own[0][0] = "[broker] endpoint";
  v.own[0][1] = "tcp://127.0.0.1:1";
  v.own[1][0] = "[broker] private_feed";
  v.own[1][1] = own;
  saved = dup(2);
  int devnull = open("/dev/null", O_WRONLY);
  dup2(devnull, 2);
  rc = gm__metrics_start(m, &v, err, sizeof err);
  dup2(saved, 2);
  close(saved);
  close(devnull);
  ck_assert_int_eq(rc, -1);
  ck_assert_msg(strstr(err, "is gmd's own [broker] private_feed") &&
                    strstr(err, own) && !strstr(err, "another gmd"),
                "%s", err);
  gm__metrics_destroy(&m);
  /* An address not on this machine: said so, not "port in use" (the bind
     fails with EADDRNOTAVAIL; libmicrohttpd's line does not say which). */
  gm__config_set(c, "metrics", "listen", "192.0.2.1:7479");
  m = gm__metrics_new(c, err, sizeof err);
  ck_assert_msg(m != NULL, "%s", err);
  saved = dup(2);
  devnull = open("/dev/null", O_WRONLY);
  dup2(devnull, 2);
  rc = gm__metrics_start(m, &v, err, sizeof err);
  dup2(saved, 2);
  close(saved);
  close(devnull);
  ck_assert_int_eq(rc, -1);
  ck_assert_msg(strstr(err,
                       "[metrics] listen = 192.0.2.1:7479: 192.0.2.1 is "
                       "not an address of this machine") &&
                    strstr(err, "ip -brief address") &&
                    !strstr(err, "in use") && !strstr(err, "another program"),
                "%s", err);
  err[0] = '\0';
  ck_assert_int_eq(gm__metrics_check_address(m, err, sizeof err), -1);
  ck_assert_msg(strstr(err, "not an address of this machine"), "%s", err);
  gm__metrics_destroy(&m);
  /* One of this machine's passes the check. */
  gm__config_set(c, "metrics", "listen", listen_at);
  m = gm__metrics_new(c, err, sizeof err);
  ck_assert_msg(m != NULL, "%s", err);
  ck_assert_int_eq(gm__metrics_check_address(m, err, sizeof err), 0);
  gm__metrics_destroy(&m);
  gm__config_destroy(&c);
  close(fd);
}
END_TEST

/*
 * libmicrohttpd says why it refused a request (a path or headers too big
 * for its memory pool: 414, 431) through gmd's log: one line per refused
 * request from anyone who can reach the port, 1000 lines (268 KB) for 1000
 * requests.  At most a few a window now, the next printed line counting
 * the rest; the port still serves.
 */
START_TEST(refused_requests_cannot_flood_the_log) {
  enum { N = 200, LEN = 40000 };
  char *req = malloc(LEN + 64);
  ck_assert_ptr_nonnull(req);
  memcpy(req, "GET /", 5);
  memset(req + 5, 'a', LEN);
  int n = 5 + LEN;
  n += snprintf(req + n, 64, " HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n");
  for (int i = 0; i < N; i++) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    ck_assert_int_ge(fd, 0);
    struct timeval tv = {10, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    ck_assert_int_eq(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    /* The server may answer 414 and close before it has read it all. */
    ssize_t w = write(fd, req, (size_t)n);
    (void)w;
    char buf[4096];
    while (read(fd, buf, sizeof buf) > 0) {
    }
    close(fd);
  }
  free(req);
  int status;
  char *body = http("GET", "/metrics", &status);
  ck_assert_int_eq(status, 200);
  free(body);
  FILE *f = fopen(gm_test_gmd_log(gmd), "r");
  ck_assert_ptr_nonnull(f);
  char line[4096];
  int lines = 0;
  while (fgets(line, sizeof line, f))
    lines += strstr(line, "[metrics]") && strstr(line, "414") != NULL;
  fclose(f);
  ck_assert_msg(lines >= 1 && lines <= 10,
                "%d log lines for %d refused requests (see %s)", lines, N,
                gm_test_gmd_log(gmd));
}
END_TEST

/* Whether the server closed fd (end of file or reset); waits up to ms. */
static int closed_by_server(int fd, int ms) {
  struct pollfd p = {.fd = fd, .events = POLLIN};
  if (poll(&p, 1, ms) <= 0) return 0;
  char c;
  ssize_t n = recv(fd, &c, 1, MSG_DONTWAIT);
  return n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK);
}

static long ms_since(const struct timespec *t0) {
  struct timespec t1;
  clock_gettime(CLOCK_MONOTONIC, &t1);
  return (t1.tv_sec - t0->tv_sec) * 1000 + (t1.tv_nsec - t0->tv_nsec) / 1000000;
}

/* A metrics object serving on listen with the request deadline ms, its
   log (stderr) going to a temporary file: *saved is the stderr to put
   back, *logfd the file's descriptor. */
static gm__metrics *serve_logged(const char *listen, unsigned ms,
                                 gm__config **c, int *saved, int *logfd,
                                 char *logpath) {
  static _Atomic uint64_t bad_frames = 0;
  *c = gm__config_new();
  gm__config_set(*c, "metrics", "listen", listen);
  char err[512] = "";
  gm__metrics *m = gm__metrics_new(*c, err, sizeof err);
  ck_assert_msg(m != NULL, "%s", err);
  if (ms) gm__metrics_set_request_deadline_ms(m, ms);
  gm__metrics_view v = {.broker = "test",
                        .bad_frames = &bad_frames,
                        .redis = {.unix_path = "/nonexistent.sock"},
                        .ledger_path = "/nonexistent.sqlite"};
  *logfd = mkstemp(logpath);
  ck_assert_int_ge(*logfd, 0);
  fflush(stderr);
  *saved = dup(2);
  dup2(*logfd, 2);
  ck_assert_msg(gm__metrics_start(m, &v, err, sizeof err) == 0, "%s", err);
  port = gm__metrics_port(m);
  ck_assert_int_gt(port, 0);
  return m;
}

/* Stops m, puts stderr back: what was logged (malloc'd). */
static char *stop_logged(gm__metrics **m, gm__config **c, int saved, int logfd,
                         const char *logpath) {
  gm__metrics_destroy(m);
  gm__config_destroy(c);
  fflush(stderr);
  dup2(saved, 2);
  close(saved);
  char *log = calloc(1, 65536);
  ck_assert_ptr_nonnull(log);
  ssize_t n = pread(logfd, log, 65535, 0);
  ck_assert_int_ge(n, 0);
  close(logfd);
  unlink(logpath);
  return log;
}

/*
 * Slow clients cannot hold the port: 20 connections from one address each
 * trickling a request a byte at a time (libmicrohttpd's idle timeout starts
 * again at every byte).  Every connection beyond 16 closes the longest
 * waiting of the address holding the most, so /healthz and /metrics from
 * the same address are answered at once; and each slow one is closed once
 * its request has not come in within the deadline (10 s; 2.5 s here).  The
 * closings are logged, a few a window.  Before, the 17th connection on was
 * refused until a slow one gave up.
 */
START_TEST(slow_clients_cannot_hold_the_port) {
  enum { SLOW = 20, DEADLINE_MS = 2500 };
  gm__config *c;
  int saved, logfd;
  char logpath[] = "/tmp/gm-metrics-slow-XXXXXX";
  gm__metrics *m =
      serve_logged("127.0.0.1:0", DEADLINE_MS, &c, &saved, &logfd, logpath);

  int fd[SLOW];
  struct timespec t0;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  for (int i = 0; i < SLOW; i++) {
    fd[i] = socket(AF_INET, SOCK_STREAM, 0);
    ck_assert_int_ge(fd[i], 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    ck_assert_int_eq(connect(fd[i], (struct sockaddr *)&a, sizeof a), 0);
    ck_assert_int_eq(send(fd[i], "G", 1, MSG_NOSIGNAL), 1);
  }
  /* 16 served at most: the 4 that waited longest are closed to make room,
     once the server took all 20 in. */
  int gone = 0;
  for (int tries = 0; tries < 100 && gone < SLOW - 16; tries++) {
    gone = 0;
    for (int i = 0; i < SLOW; i++) gone += closed_by_server(fd[i], 0);
    if (gone < SLOW - 16) gm_test_sleep_ms(10);
  }
  ck_assert_int_eq(gone, SLOW - 16);
  /* The probe and a scrape, from the same address, are served now, well
     before any slow one's deadline. */
  int status;
  char *body = http("GET", "/healthz", &status);
  ck_assert_msg(status == 503 && strstr(body, "Redis"), "%d %s", status, body);
  free(body);
  body = http("GET", "/metrics", &status);
  ck_assert_msg(status == 200 && strstr(body, "greenmarket_redis_up 0"),
                "%d %s", status, body);
  free(body);
  long served_ms = ms_since(&t0);
  ck_assert_msg(served_ms < DEADLINE_MS,
                "/healthz and /metrics took until %ld ms", served_ms);
  /* The others trickle a byte every 100 ms: closed at their deadline all
     the same, not at libmicrohttpd's idle timeout (10 s after the last
     byte). */
  int open = SLOW;
  for (;;) {
    open = 0;
    for (int i = 0; i < SLOW; i++) {
      if (fd[i] < 0) continue;
      if (closed_by_server(fd[i], 0)) {
        close(fd[i]);
        fd[i] = -1;
        continue;
      }
      open++;
      ck_assert_int_eq(send(fd[i], "E", 1, MSG_NOSIGNAL), 1);
    }
    if (!open || ms_since(&t0) > DEADLINE_MS + 3000) break;
    gm_test_sleep_ms(100);
  }
  long closed_ms = ms_since(&t0);
  ck_assert_msg(open == 0, "%d slow connections still open after %ld ms", open,
                closed_ms);
  ck_assert_msg(closed_ms >= DEADLINE_MS - 100,
                "slow connections closed at %ld ms, before their deadline",
                closed_ms);
  /* Served again, and the closings logged, a few a window (20 closings,
     5 a window of 10 s). */
  body = http("GET", "/metrics", &status);
  ck_assert_int_eq(status, 200);
  free(body);
  char *log = stop_logged(&m, &c, saved, logfd, logpath);
  int lines = 0;
  for (const char *p = log;
       (p = strstr(p, "closed a connection from 127.0.0.1")); p++)
    lines++;
  ck_assert_msg(lines >= 2 && lines <= 5 && gm__utf8_valid(log, strlen(log)),
                "%d closing lines in the log: %s", lines, log);
  free(log);
}
END_TEST

static int connect_local(void) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  ck_assert_int_ge(fd, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
  inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
  ck_assert_int_eq(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
  return fd;
}

/* Sends a kept-alive HTTP/1.1 request on fd and reads its whole answer
   (Content-Length); its status. */
static int keep_alive_request(int fd, const char *path) {
  char req[256];
  int n = snprintf(req, sizeof req,
                   "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", path);
  ck_assert_int_eq(send(fd, req, (size_t)n, MSG_NOSIGNAL), n);
  char buf[8192];
  size_t len = 0;
  long want = -1;
  for (;;) {
    struct pollfd p = {.fd = fd, .events = POLLIN};
    ck_assert_msg(poll(&p, 1, 5000) == 1, "no answer to %s", path);
    ssize_t got = recv(fd, buf + len, sizeof buf - 1 - len, 0);
    ck_assert_msg(got > 0, "connection closed before the answer to %s", path);
    len += (size_t)got;
    buf[len] = '\0';
    char *end = strstr(buf, "\r\n\r\n");
    if (!end) continue;
    if (want < 0) {
      char *cl = strcasestr(buf, "Content-Length:");
      ck_assert_ptr_nonnull(cl);
      want = (end + 4 - buf) + strtol(cl + 15, NULL, 10);
    }
    if ((long)len >= want) break;
  }
  int status = 0;
  ck_assert_int_eq(sscanf(buf, "HTTP/1.1 %d", &status), 1);
  return status;
}

static int count(const char *log, const char *what) {
  int n = 0;
  for (const char *p = log; (p = strstr(p, what)); p++) n++;
  return n;
}

/*
 * A kept-alive client idle between its requests (Prometheus keeps its
 * connection between scrapes, every 15 s) is closed at the deadline as
 * libmicrohttpd's idle timeout would, without a line in the log; so is a
 * connection that never sent anything.  One that sends part of its next
 * request and stops is slow, and logged.  Before, the idle ones were
 * logged as too slow ("its request was not in"), a line per scrape.
 */
START_TEST(idle_kept_alive_connections_are_closed_quietly) {
  enum { DEADLINE_MS = 1000 };
  gm__config *c;
  int saved, logfd;
  char logpath[] = "/tmp/gm-metrics-idle-XXXXXX";
  gm__metrics *m =
      serve_logged("127.0.0.1:0", DEADLINE_MS, &c, &saved, &logfd, logpath);
  int idle = connect_local(), fresh = connect_local(), slow = connect_local();
  ck_assert_int_eq(keep_alive_request(idle, "/nothing-here"), 404);
  ck_assert_int_eq(keep_alive_request(slow, "/nothing-here"), 404);
  ck_assert_int_eq(keep_alive_request(idle, "/nothing-here"), 404);
  /* slow trickles its next request, a byte every 200 ms. */
  static const char next[] = "GET /metrics HTTP/1.1\r\n";
  struct timespec t0;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  int fds[3] = {idle, fresh, slow}, open = 3;
  long sent_ms = -200;
  size_t sent = 0;
  while (open && ms_since(&t0) < DEADLINE_MS + 3000) {
    open = 0;
    for (int i = 0; i < 3; i++) {
      if (fds[i] < 0) continue;
      if (closed_by_server(fds[i], 0)) {
        close(fds[i]);
        fds[i] = -1;
      } else {
        open++;
      }
    }
    if (fds[2] >= 0 && ms_since(&t0) - sent_ms >= 200 &&
        sent < sizeof next - 1) {
      ck_assert_int_eq(send(fds[2], next + sent++, 1, MSG_NOSIGNAL), 1);
      sent_ms = ms_since(&t0);
    }
    if (open) gm_test_sleep_ms(20);
  }
  ck_assert_msg(open == 0, "%d connections still open after %ld ms", open,
                ms_since(&t0));
  char *log = stop_logged(&m, &c, saved, logfd, logpath);
  ck_assert_msg(count(log, "closed a connection from 127.0.0.1") == 1 &&
                    count(log, "its request was not in") == 1,
                "the slow connection, and only it, should be logged: %s", log);
  free(log);
}
END_TEST

/*
 * [::]:PORT serves IPv4 clients too, as the messages say ("0.0.0.0 (or
 * [::]) for all of its addresses"); before, libmicrohttpd's socket was
 * IPv6 only and 127.0.0.1 was refused.
 */
START_TEST(ipv6_any_address_serves_ipv4_too) {
  int probe = socket(AF_INET6, SOCK_STREAM, 0);
  if (probe < 0) {
    fprintf(stderr, "no IPv6 on this machine: [::] not tested\n");
    return;
  }
  close(probe);
  gm__config *c;
  int saved, logfd;
  char logpath[] = "/tmp/gm-metrics-v6-XXXXXX";
  gm__metrics *m = serve_logged("[::]:0", 0, &c, &saved, &logfd, logpath);
  int status;
  char *body = http("GET", "/nothing-here", &status); /* over IPv4 */
  ck_assert_int_eq(status, 404);
  free(body);
  int fd = socket(AF_INET6, SOCK_STREAM, 0);
  struct sockaddr_in6 a = {.sin6_family = AF_INET6,
                           .sin6_port = htons(port),
                           .sin6_addr = IN6ADDR_LOOPBACK_INIT};
  int rc = connect(fd, (struct sockaddr *)&a, sizeof a);
  ck_assert_msg(rc == 0 || errno == EADDRNOTAVAIL || errno == ENETUNREACH,
                "[::1]: %s", strerror(errno));
  if (rc == 0) ck_assert_int_eq(keep_alive_request(fd, "/nothing-here"), 404);
  close(fd);
  free(stop_logged(&m, &c, saved, logfd, logpath));
}
END_TEST

/* The first call stops the Redis whose pid arg points to. */
static void stop_redis(void *arg) {
  pid_t *pid = arg;
  if (*pid > 0) kill(*pid, SIGSTOP);
  *pid = 0;
}

/*
 * A Redis (with a password) that stalls between a check's PING and its
 * outbox count: the count times out (2 s) and its connection is left to be
 * reopened at the start of the next check.  Before, the count reopened it
 * at once, and the new connection's AUTH waited out a second 2 s timeout
 * on the stopped Redis in the same check: the scrape took 4 s.  The failed
 * count is logged in words, naming Redis: "no reply within 2 s", not
 * hiredis's "Resource temporarily unavailable" (before, it was not logged
 * at all).  The next check counts again: the test waits for that count
 * (it slept 150 ms before, and failed once when a scrape beside an ASan
 * build was answered from the failed count's results).
 */
START_TEST(a_failed_outbox_count_does_not_reconnect_at_once) {
  gm_test_redis *r = gm_test_redis_start();
  pid_t pid = gm_test_redis_pid(r);
  ck_assert_int_gt(pid, 0);
  pid_t hook_pid = pid;
  /* With a password: a new connection's AUTH is the wait. */
  redisContext *rc = gm_test_redis_connect(r);
  freeReplyObject(gm_test_redis_cmd(rc, "CONFIG SET requirepass pw-1"));
  redisFree(rc);
  char *file = gm_test_redis_path(r, "redis.pass");
  FILE *f = fopen(file, "w");
  ck_assert_ptr_nonnull(f);
  fputs("pw-1\n", f);
  fclose(f);
  chmod(file, 0600);
  gm__redis_set_auth(NULL, file);
  static _Atomic uint64_t bad_frames = 0;
  gm__config *c = gm__config_new();
  gm__config_set(c, "metrics", "listen", "127.0.0.1:0");
  gm__config_set(c, "metrics", "outbox_count_ms", "100");
  char err[512] = "";
  gm__metrics *m = gm__metrics_new(c, err, sizeof err);
  ck_assert_msg(m != NULL, "%s", err);
  gm__metrics_set_count_hook(m, stop_redis, &hook_pid);
  gm__metrics_view v = {.broker = "test",
                        .bad_frames = &bad_frames,
                        .redis = {.unix_path = gm_test_redis_socket(r)},
                        .ledger_path = "/nonexistent.sqlite"};
  char logpath[] = "/tmp/gm-metrics-count-XXXXXX";
  int logfd = mkstemp(logpath);
  ck_assert_int_ge(logfd, 0);
  fflush(stderr);
  int saved = dup(2);
  dup2(logfd, 2);
  ck_assert_msg(gm__metrics_start(m, &v, err, sizeof err) == 0, "%s", err);
  port = gm__metrics_port(m);
  struct timespec t0;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  int status;
  char *body = http("GET", "/metrics", &status);
  long ms = ms_since(&t0);
  kill(pid, SIGCONT);
  ck_assert_int_eq(status, 200);
  /* The PING passed; the count failed: no outbox gauges this scrape. */
  ck_assert(value(body, "greenmarket_redis_up") == 1);
  ck_assert(value(body, "greenmarket_outbox_entries") == -1);
  free(body);
  printf("a scrape whose outbox count met a stopped Redis: %ld ms\n", ms);
  ck_assert_msg(ms < 3500,
                "the scrape took %ld ms: the count reconnected "
                "to the stopped Redis at once",
                ms);
  /* A later check opens a new connection (with the password), and counts
     (a scrape may be answered from the failed count's check meanwhile). */
  int counted = 0;
  for (int i = 0; i < 200 && !counted; i++) {
    body = http("GET", "/metrics", &status);
    ck_assert_int_eq(status, 200);
    counted = value(body, "greenmarket_redis_up") == 1 &&
              value(body, "greenmarket_outbox_entries") == 0;
    free(body);
    if (!counted) gm_test_sleep_ms(50);
  }
  ck_assert_msg(counted, "no outbox count within 10 s after Redis went on");
  gm__metrics_destroy(&m);
  gm__config_destroy(&c);
  fflush(stderr);
  dup2(saved, 2);
  close(saved);
  char log[65536];
  ssize_t n = pread(logfd, log, sizeof log - 1, 0);
  ck_assert_int_ge(n, 0);
  log[n] = '\0';
  close(logfd);
  unlink(logpath);
  char want[512];
  snprintf(want, sizeof want,
           "could not count the outbox streams: Redis at unix socket %s did "
           "not answer SMEMBERS gm:outboxes (no reply within 2 s)",
           gm_test_redis_socket(r));
  ck_assert_msg(
      strstr(log, want) && !strstr(log, "Resource temporarily unavailable"),
      "log: %s", log);
  /* The ledger (/nonexistent.sqlite) cannot be read: each count (two at
     least, the failed one and the recount) fails to count gm_dead_letter,
     said once a minute.  Before, not at all: the gauge went missing
     silently. */
  size_t dead = 0;
  for (const char *p = log;
       (p = strstr(p,
                   "could not count the dead letters (gm_dead_letter): "
                   "cannot open the ledger /nonexistent.sqlite"));
       p++)
    dead++;
  ck_assert_msg(
      dead == 1 && strstr(log, "greenmarket_dead_letters is left out"),
      "%zu lines about the dead-letter count; log: %s", dead, log);
  gm__redis_set_auth(NULL, NULL);
  free(file);
  gm_test_redis_stop(&r);
}
END_TEST

/*
 * When polling fails with an error that is a bug and would come again at
 * once (EBADF, EFAULT, EINVAL), the metrics thread stops serving, saying
 * so at ERROR; before, libmicrohttpd kept listening, so the port took
 * connections nobody ever answered and a probe waited out its own timeout.
 * Now the listening socket and every connection are closed: a new
 * connection is refused at once, one already open sees its end.
 */
START_TEST(a_failed_poll_closes_the_port) {
  static const int bugs[] = {EBADF, EFAULT, EINVAL};
  for (size_t k = 0; k < sizeof bugs / sizeof *bugs; k++) {
    gm__config *c;
    int saved, logfd;
    char logpath[] = "/tmp/gm-metrics-poll-XXXXXX";
    gm__metrics *m =
        serve_logged("127.0.0.1:0", 0, &c, &saved, &logfd, logpath);
    int status;
    char *body = http("GET", "/metrics", &status);
    ck_assert_int_eq(status, 200);
    free(body);
    /* Taken in: answered once, kept alive (it slept 100 ms before). */
    int held = connect_local();
    ck_assert_int_eq(keep_alive_request(held, "/nothing-here"), 404);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    gm__metrics_fail_poll(m, bugs[k]);
    int refused = 0;
    for (int i = 0; i < 100 && !refused; i++) {
      int fd = socket(AF_INET, SOCK_STREAM, 0);
      refused = connect(fd, (struct sockaddr *)&a, sizeof a) != 0 &&
                errno == ECONNREFUSED;
      close(fd);
      if (!refused) gm_test_sleep_ms(20);
    }
    ck_assert_msg(refused,
                  "the metrics port still accepts after poll failed "
                  "(%s)",
                  strerror(bugs[k]));
    ck_assert_msg(closed_by_server(held, 2000),
                  "a connection open when poll failed was left open");
    close(held);
    char *log = stop_logged(&m, &c, saved, logfd, logpath);
    char want[128];
    snprintf(want, sizeof want, "poll failed (%s), a bug in gmd",
             strerror(bugs[k]));
    ck_assert_msg(
        strstr(log, "ERROR") && strstr(log, want) && strstr(log, "closed"),
        "log: %s", log);
    free(log);
  }
}
END_TEST

/*
 * A poll error that may pass and is no bug of gmd's (one poll is not
 * documented to give, here EIO) is waited out as ENOMEM is: the port serves
 * on, and the log says what failed and when polling works again.  Before,
 * every error but ENOMEM, EAGAIN and EINTR closed the port until a restart.
 */
START_TEST(a_poll_error_that_may_pass_serves_on) {
  gm__config *c;
  int saved, logfd;
  char logpath[] = "/tmp/gm-metrics-eio-XXXXXX";
  gm__metrics *m = serve_logged("127.0.0.1:0", 0, &c, &saved, &logfd, logpath);
  int held = connect_local();
  ck_assert_int_eq(keep_alive_request(held, "/nothing-here"), 404);
  gm__metrics_fail_poll(m, EIO);
  gm_test_sleep_ms(20);
  ck_assert_int_eq(keep_alive_request(held, "/nothing-here"), 404);
  close(held);
  int status;
  char *body = http("GET", "/metrics", &status);
  ck_assert_int_eq(status, 200);
  free(body);
  char *log = stop_logged(&m, &c, saved, logfd, logpath);
  char want[160];
  snprintf(want, sizeof want,
           "polling for /metrics and /healthz requests failed (%s)",
           strerror(EIO));
  ck_assert_msg(strstr(log, want) && strstr(log, "not known to give") &&
                    strstr(log, "requests works again") &&
                    !strstr(log, "no longer serving"),
                "log: %s", log);
  free(log);
}
END_TEST

/* The descriptor of an epoll instance this process opened since `before`
   (a list of the ones it had, n of them), or -1. */
static int new_epoll_fd(const int *before, size_t n) {
  for (int fd = 3; fd < 1024; fd++) {
    char link[64], target[64];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t len = readlink(link, target, sizeof target - 1);
    if (len <= 0) continue;
    target[len] = '\0';
    if (strcmp(target, "anon_inode:[eventpoll]") != 0) continue;
    size_t i = 0;
    while (i < n && before[i] != fd) i++;
    if (i == n) return fd;
  }
  return -1;
}

/*
 * A descriptor closed under the metrics thread (a bug elsewhere in gmd
 * closing one it does not own): poll reports it per descriptor (POLLNVAL),
 * not as an error.  The thread says so at ERROR and closes the port, as for
 * poll's own bugs.  Before, a closed epoll descriptor made the thread spin
 * (poll returning at once, for ever) with the port accepting connections
 * nobody answered, and a closed stop pipe ended the thread silently, the
 * port left open.
 *
 * The stop then leaves the number alone: here another file is given it
 * meanwhile, and a kept-alive connection was open.  Before, the stop
 * (MHD_stop_daemon) aborted the process (libmicrohttpd's panic when taking
 * the connection out of "its" epoll descriptor failed), and without a
 * connection closed the other file.
 */
START_TEST(a_descriptor_closed_under_the_thread_closes_the_port) {
  int before[64];
  size_t n = 0;
  for (int fd = 3; fd < 1024 && n < 64; fd++) {
    char link[64], target[64];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t len = readlink(link, target, sizeof target - 1);
    if (len <= 0) continue;
    target[len] = '\0';
    if (!strcmp(target, "anon_inode:[eventpoll]")) before[n++] = fd;
  }
  gm__config *c;
  int saved, logfd;
  char logpath[] = "/tmp/gm-metrics-nval-XXXXXX";
  gm__metrics *m = serve_logged("127.0.0.1:0", 0, &c, &saved, &logfd, logpath);
  int status;
  char *body = http("GET", "/metrics", &status);
  ck_assert_int_eq(status, 200);
  free(body);
  int held = connect_local();
  ck_assert_int_eq(keep_alive_request(held, "/nothing-here"), 404);
  int epfd = new_epoll_fd(before, n);
  ck_assert_int_ge(epfd, 0);
  /* Opened first: no descriptor is opened between the close and the line
     in the log, so epfd's number is not reused under libmicrohttpd. */
  int placeholder = open("/dev/null", O_RDONLY | O_CLOEXEC);
  ck_assert_int_ge(placeholder, 0);
  close(epfd);
  int said = 0;
  char log[65536];
  for (int i = 0; i < 250 && !said; i++) {
    ssize_t got = pread(logfd, log, sizeof log - 1, 0);
    log[got > 0 ? got : 0] = '\0';
    said = strstr(log, "was closed under it") != NULL;
    if (!said) gm_test_sleep_ms(20);
  }
  /* Another file is given the number (as the next open anywhere in gmd
     would be). */
  ck_assert_int_eq(dup2(placeholder, epfd), epfd);
  close(placeholder);
  ck_assert_msg(said, "no line about the closed descriptor in 5 s: %s", log);
  ck_assert_msg(closed_by_server(held, 2000),
                "a connection open when the descriptor was closed was left "
                "open");
  close(held);
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
  inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
  int refused = connect(fd, (struct sockaddr *)&a, sizeof a) != 0 &&
                errno == ECONNREFUSED;
  close(fd);
  ck_assert_msg(refused, "the metrics port still accepts");
  char *all = stop_logged(&m, &c, saved, logfd, logpath);
  ck_assert_msg(strstr(all, "ERROR") &&
                    strstr(all, "libmicrohttpd's epoll descriptor") &&
                    strstr(all, "a bug in gmd"),
                "log: %s", all);
  free(all);
  /* The stop closed nothing at that number: the file given it is open. */
  char link[64], target[64];
  snprintf(link, sizeof link, "/proc/self/fd/%d", epfd);
  ssize_t len = readlink(link, target, sizeof target - 1);
  target[len > 0 ? len : 0] = '\0';
  ck_assert_msg(!strcmp(target, "/dev/null"),
                "the stop closed descriptor %d, which another file had been "
                "given (it is now '%s')",
                epfd, target);
  close(epfd);
}
END_TEST

/*
 * A poll that fails for want of memory (ENOMEM) passes: the thread logs it,
 * waits and serves on; a connection open meanwhile is answered, the port
 * still takes new ones, and the log says when polling works again.
 * Before, any failure but EINTR closed the port until gmd restarted.
 */
START_TEST(a_poll_short_of_memory_waits_and_serves_on) {
  gm__config *c;
  int saved, logfd;
  char logpath[] = "/tmp/gm-metrics-enomem-XXXXXX";
  gm__metrics *m = serve_logged("127.0.0.1:0", 0, &c, &saved, &logfd, logpath);
  int held = connect_local();
  ck_assert_int_eq(keep_alive_request(held, "/nothing-here"), 404);
  /* Three in a row: 50, 100 and 200 ms waited. */
  for (int i = 0; i < 3; i++) {
    gm__metrics_fail_poll(m, ENOMEM);
    gm_test_sleep_ms(20);
  }
  ck_assert_int_eq(keep_alive_request(held, "/nothing-here"), 404);
  close(held);
  int status;
  char *body = http("GET", "/metrics", &status);
  ck_assert_int_eq(status, 200);
  free(body);
  char *log = stop_logged(&m, &c, saved, logfd, logpath);
  ck_assert_msg(strstr(log,
                       "polling for /metrics and /healthz requests "
                       "failed (Cannot allocate memory)") &&
                    strstr(log, "requests works again") &&
                    !strstr(log, "no longer serving"),
                "log: %s", log);
  free(log);
}
END_TEST

/* A count hook's gate: the first count waits until the test opens it (a
   health check slow to finish), 10 s at most. */
typedef struct gate {
  _Atomic int first;  /* no count has passed yet */
  _Atomic int opened; /* the test is done with the slow check */
} gate;

static void slow_count(void *arg) {
  gate *g = arg;
  if (!atomic_exchange(&g->first, 0)) return;
  for (int i = 0; i < 2000 && !atomic_load(&g->opened); i++)
    gm_test_sleep_ms(5);
}

/* Reads an HTTP/1.0 answer on fd up to its end (the server closes): the
   body (malloc'd), the status in *status; fails the test when the
   connection ends without an answer. */
static char *read_answer(int fd, int *status) {
  struct timeval tv = {10, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  char buf[8192];
  size_t len = 0;
  for (;;) {
    ssize_t got = recv(fd, buf + len, sizeof buf - 1 - len, 0);
    ck_assert_msg(got >= 0, "reading the answer: %s", strerror(errno));
    if (got == 0) break;
    len += (size_t)got;
  }
  buf[len] = '\0';
  ck_assert_msg(sscanf(buf, "HTTP/1.%*d %d", status) == 1,
                "the connection was closed without an answer ('%s')", buf);
  char *body = strstr(buf, "\r\n\r\n");
  ck_assert_ptr_nonnull(body);
  return strdup(body + 4);
}

/*
 * A request whose health check runs past the deadline (10 s; 0.5 s here)
 * is answered 503 saying which step of the check has not answered (here
 * the outbox count, held by the hook until both answers came), /healthz
 * and a /metrics
 * scrape that has no earlier check to fall back on alike, and logged as
 * the check's slowness, not the client's.  Before, the connection was
 * closed without an answer: a load balancer saw a broken connection, not
 * "unhealthy".
 */
START_TEST(a_health_check_past_the_deadline_is_answered_503) {
  gm_test_redis *r = gm_test_redis_start();
  static _Atomic uint64_t bad_frames = 0;
  gm__config *c = gm__config_new();
  gm__config_set(c, "metrics", "listen", "127.0.0.1:0");
  char err[512] = "";
  gm__metrics *m = gm__metrics_new(c, err, sizeof err);
  ck_assert_msg(m != NULL, "%s", err);
  gm__metrics_set_request_deadline_ms(m, 500);
  gate g = {1, 0};
  gm__metrics_set_count_hook(m, slow_count, &g);
  gm__metrics_view v = {.broker = "test",
                        .bad_frames = &bad_frames,
                        .redis = {.unix_path = gm_test_redis_socket(r)},
                        .ledger_path = "/nonexistent.sqlite"};
  char logpath[] = "/tmp/gm-metrics-slowcheck-XXXXXX";
  int logfd = mkstemp(logpath);
  ck_assert_int_ge(logfd, 0);
  fflush(stderr);
  int saved = dup(2);
  dup2(logfd, 2);
  ck_assert_msg(gm__metrics_start(m, &v, err, sizeof err) == 0, "%s", err);
  port = gm__metrics_port(m);
  struct timespec t0;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  int scrape_fd = http_send("GET", "/metrics");
  int status;
  char *body = http("GET", "/healthz", &status);
  long ms = ms_since(&t0);
  ck_assert_msg(status == 503, "/healthz: %d %s", status, body);
  ck_assert_msg(strstr(body, "the health check did not answer within 0.5 s") &&
                    strstr(body, "to answer the outbox count") &&
                    strstr(body, gm_test_redis_socket(r)),
                "/healthz: %s", body);
  ck_assert(gm__utf8_valid(body, strlen(body)));
  printf("/healthz past the deadline, after %ld ms: %s", ms, body);
  /* At the deadline, not when the check ended (the gate opens after both
     answers, 10 s at most): a margin for a loaded machine. */
  ck_assert_msg(ms < 3500, "/healthz answered after %ld ms", ms);
  free(body);
  body = read_answer(scrape_fd, &status);
  close(scrape_fd);
  ck_assert_msg(status == 503 && strstr(body, "to answer the outbox count"),
                "/metrics: %d %s", status, body);
  free(body);
  atomic_store(&g.opened, 1);
  /* The check, once over, answers the next scrape as usual. */
  status = 0;
  for (int i = 0; i < 100 && status != 200; i++) {
    body = http("GET", "/metrics", &status);
    free(body);
    if (status != 200) gm_test_sleep_ms(50);
  }
  ck_assert_msg(status == 200, "/metrics: %d after the slow check", status);
  gm__metrics_destroy(&m);
  gm__config_destroy(&c);
  fflush(stderr);
  dup2(saved, 2);
  close(saved);
  char log[65536];
  ssize_t n = pread(logfd, log, sizeof log - 1, 0);
  ck_assert_int_ge(n, 0);
  log[n] = '\0';
  close(logfd);
  unlink(logpath);
  ck_assert_msg(strstr(log,
                       "answered 503 to a request from 127.0.0.1: it "
                       "waited") &&
                    strstr(log, "for a health check that had not finished") &&
                    strstr(log, "to answer the outbox count") &&
                    !strstr(log, "a client too slow"),
                "log: %s", log);
  gm_test_redis_stop(&r);
}
END_TEST

/*
 * What a 503 says the check waits for is valid UTF-8 cut at a character:
 * a ledger path of two-, three- and four-byte characters longer than the
 * room is cut before the character that does not fit whole, never inside
 * it and never replacing it; a byte that is not UTF-8 is replaced.
 */
START_TEST(the_503_text_is_cut_at_a_character) {
  static const char *const chars[] = {"\xc3\xa9", "\xe2\x82\xac",
                                      "\xf0\x9f\x8c\xb1"};
  static const char prefix[] = "the ledger /var/lib/";
  for (size_t k = 0; k < 3; k++) {
    char s[4096];
    size_t len = (size_t)snprintf(s, sizeof s, "%s", prefix);
    while (len < 2000)
      len += (size_t)snprintf(s + len, sizeof s - len, "%s", chars[k]);
    snprintf(s + len, sizeof s - len, " to count gm_dead_letter");
    size_t w = strlen(chars[k]);
    char out[640];
    memset(out, 'x', sizeof out);
    size_t n = gm__metrics_fit_text(out, sizeof out, s);
    /* As many whole characters as fit in 639 bytes after the prefix. */
    size_t want = strlen(prefix) + (639 - strlen(prefix)) / w * w;
    ck_assert_msg(n == want && strlen(out) == n,
                  "%zu-byte characters: %zu bytes kept, want %zu", w, n, want);
    ck_assert(gm__utf8_valid(out, n));
    ck_assert_msg(memcmp(out, s, n) == 0,
                  "%zu-byte characters: the text kept is not the start of "
                  "the path",
                  w);
  }
  char out[64];
  ck_assert_uint_eq(gm__metrics_fit_text(out, sizeof out,
                                         "a\xff"
                                         "b"),
                    5);
  ck_assert_str_eq(out,
                   "a\xef\xbf\xbd"
                   "b");
  /* The replacement counts toward the room: "a" and U+FFFD need 4 bytes. */
  ck_assert_uint_eq(gm__metrics_fit_text(out, 4,
                                         "a\xff"
                                         "b"),
                    1);
  ck_assert_str_eq(out, "a");
  ck_assert_uint_eq(gm__metrics_fit_text(out, 1, "abc"), 0);
  ck_assert_str_eq(out, "");
}
END_TEST

/* Opens n connections that each send a byte, waits until the server has
   closed `closes` of them to make room: the others' descriptors in fd. */
static void crowd(int *fd, int n, int closes) {
  for (int i = 0; i < n; i++) {
    fd[i] = socket(AF_INET, SOCK_STREAM, 0);
    ck_assert_int_ge(fd[i], 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    ck_assert_int_eq(connect(fd[i], (struct sockaddr *)&a, sizeof a), 0);
    ck_assert_int_eq(send(fd[i], "G", 1, MSG_NOSIGNAL), 1);
    /* One at a time: each beyond 16 closes one, and is logged or not. */
    gm_test_sleep_ms(10);
  }
  int gone = 0;
  for (int tries = 0; tries < 200 && gone < closes; tries++) {
    gone = 0;
    for (int i = 0; i < n; i++) gone += closed_by_server(fd[i], 0);
    if (gone < closes) gm_test_sleep_ms(10);
  }
  ck_assert_int_eq(gone, closes);
}

/*
 * The log limits are each server's: one server's window used up (more
 * connections closed to make room than it logs a window) leaves the next
 * server's lines alone.  Before they were the process's: a second server
 * in the same process (a test run with CK_FORK=no) logged nothing within
 * the first's 10 s window.
 */
START_TEST(log_limits_are_each_servers_own) {
  gm__config *c;
  int saved, logfd;
  char logpath[] = "/tmp/gm-metrics-lim1-XXXXXX";
  gm__metrics *m = serve_logged("127.0.0.1:0", 0, &c, &saved, &logfd, logpath);
  int fd[24];
  crowd(fd, 24, 8);
  for (int i = 0; i < 24; i++) close(fd[i]);
  char *log = stop_logged(&m, &c, saved, logfd, logpath);
  size_t lines = 0;
  for (const char *p = log; (p = strstr(p, "to serve a new one")); p++) lines++;
  ck_assert_msg(lines == 5, "first server: %zu closings logged: %s", lines,
                log);
  free(log);

  char logpath2[] = "/tmp/gm-metrics-lim2-XXXXXX";
  m = serve_logged("127.0.0.1:0", 0, &c, &saved, &logfd, logpath2);
  crowd(fd, 17, 1);
  for (int i = 0; i < 17; i++) close(fd[i]);
  log = stop_logged(&m, &c, saved, logfd, logpath2);
  ck_assert_msg(strstr(log, "to serve a new one"),
                "second server's closing not logged: %s", log);
  free(log);
}
END_TEST

/*
 * gmd's own [ledger] dead_letter_after and [metrics] outbox_count_ms take
 * effect (before, only the settler's and the metrics object's tests set
 * them, never through gmd's config): three entries whose settle callback
 * always fails are each set aside after 2 failures (the default is 5), and
 * greenmarket_dead_letters shows each one, 1, 2 and 3, within 10 s of the
 * first probe.  With outbox_count_ms ignored (its default 5000) the gauge
 * could not take three values in under 10 s: each count showing a new
 * value is at least 5 s after the one before, the first after the probe.
 */
START_TEST(dead_letter_after_and_outbox_count_ms_take_effect) {
  gm_test_redis *r = gm_test_redis_start();
  gm_test_gmd *g = gm_test_gmd_start(r, TEST_PLUGIN_DIR,
                                     "[plugins]\nload = testmkt\n"
                                     "[metrics]\nlisten = 127.0.0.1:0\n"
                                     "outbox_count_ms = 100\n"
                                     "[ledger]\ndead_letter_after = 2\n");
  gm_test_conn *cn =
      gm_test_conn_new(gm_test_gmd_endpoint(g), NULL, NULL, NULL);
  ck_assert_int_gt(gm_test_gmd_metrics_port(g), 0);
  gm_test_gmd_wait_metric(g, "greenmarket_dead_letters", 0, 0, 10000);
  struct timespec t0;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  for (int k = 1; k <= 3; k++) {
    char key[32];
    snprintf(key, sizeof key, "dead-%d", k);
    Gm__Testmkt__ProbeRequest req = GM__TESTMKT__PROBE_REQUEST__INIT;
    req.what = "settled"; /* refused: gm_settled is the broker's */
    Gm__Reply *rep =
        gm_test_call(cn, "alice", "testmkt", "probe", key, &req.base);
    ck_assert_ptr_nonnull(rep);
    ck_assert_msg(rep->status == GM__STATUS__OK, "probe: %s", rep->message);
    gm__reply__free_unpacked(rep, NULL);
    gm_test_gmd_wait_metric(g, "greenmarket_dead_letters", k, k, 20000);
  }
  long ms = ms_since(&t0);
  printf("greenmarket_dead_letters 1, 2, 3 in %ld ms (outbox_count_ms 100)\n",
         ms);
  long long two = gm_test_gmd_ledger_count(
      g,
      "SELECT count(*) FROM gm_dead_letter WHERE market = 'testmkt' AND "
      "kind = 'probe' AND failures = 2");
  long long all =
      gm_test_gmd_ledger_count(g, "SELECT count(*) FROM gm_dead_letter");
  ck_assert_msg(two == 3 && all == 3,
                "%lld entries set aside after 2 failures, %lld in all: "
                "[ledger] dead_letter_after = 2 was not applied (its default "
                "is 5)",
                two, all);
  ck_assert_msg(ms < 10000,
                "greenmarket_dead_letters took %ld ms to show 1, 2 and 3: "
                "[metrics] outbox_count_ms = 100 was not applied (its default "
                "5000 allows no less than 10 s)",
                ms);
  ck_assert(gm_test_gmd_log_has(g, "failed to settle 2 times"));
  gm_test_conn_destroy(&cn);
  gm_test_gmd_stop(&g);
  gm_test_redis_stop(&r);
}
END_TEST

int main(void) {
  Suite *s = suite_create("metrics");
  TCase *unit = tcase_create("unit");
  tcase_add_test(unit, histogram_buckets_are_exact_sums_of_fine_buckets);
  tcase_add_test(unit, listen_values_are_checked_at_start);
  tcase_add_test(unit, alert_rules_and_scrape_config_pass_promtool);
  tcase_add_test(unit, settings_the_alert_rules_name_are_accepted);
  tcase_add_test(unit, registered_gauges_are_served);
  tcase_add_test(unit, a_metrics_port_in_use_is_named_in_the_log);
  tcase_add_test(unit, slow_clients_cannot_hold_the_port);
  tcase_add_test(unit, idle_kept_alive_connections_are_closed_quietly);
  tcase_add_test(unit, ipv6_any_address_serves_ipv4_too);
  tcase_add_test(unit, a_failed_poll_closes_the_port);
  tcase_add_test(unit, a_poll_short_of_memory_waits_and_serves_on);
  tcase_add_test(unit, a_poll_error_that_may_pass_serves_on);
  tcase_add_test(unit, a_descriptor_closed_under_the_thread_closes_the_port);
  tcase_add_test(unit, a_health_check_past_the_deadline_is_answered_503);
  tcase_add_test(unit, the_503_text_is_cut_at_a_character);
  tcase_add_test(unit, log_limits_are_each_servers_own);
  tcase_add_test(unit, a_failed_outbox_count_does_not_reconnect_at_once);
  tcase_add_test(unit, dead_letter_after_and_outbox_count_ms_take_effect);
  tcase_add_test(unit, check_fails_when_a_listed_market_does_not_load);
  tcase_add_test(unit, check_fails_on_a_market_section_no_market_reads);
  tcase_add_test(unit, an_installed_gmd_loads_the_plugins_beside_it);
  tcase_set_timeout(unit, 60);
  suite_add_tcase(s, unit);
  TCase *tc = tcase_create("gmd");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, metrics_move_with_requests_and_pass_promtool);
  tcase_add_test(tc, healthz_fails_while_redis_is_gone);
  tcase_add_test(tc, healthz_fails_while_no_broker_may_settle);
  tcase_add_test(tc, healthz_on_a_stalled_redis_waits_one_timeout);
  tcase_add_test(tc, first_healthz_on_a_stalled_redis_waits_one_timeout);
  tcase_add_test(tc, concurrent_healthz_on_a_stopped_redis_share_one_check);
  tcase_add_test(tc, deadline_gauges_count_tags);
  tcase_add_test(tc, refused_requests_cannot_flood_the_log);
  suite_add_tcase(s, tc);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
