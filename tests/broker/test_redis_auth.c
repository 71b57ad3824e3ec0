/*
 * A Redis that requires a password ([redis] user and password_file): gmd
 * authenticates every connection it opens (workers, settler, deadlines,
 * metrics), and says what is wrong, before starting anything, when it has
 * no password, the wrong one, or a user without a password.
 */
#include <check.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

#include "gmd_fixture.h"
#include "run_gm.h"
#include "testmkt.pb-c.h"

static gm_test_redis *redis;
static redisContext *rc;
/* On a three-master cluster (GM_TEST_REDIS_CLUSTER=3), one connection per
   node (rc is node 0's unix socket): the password is each node's own. */
static redisContext *node[8];
static int nodes;

/* Opens rc and, on a cluster, a connection to every node, before any
   password is set (they stay authenticated as the default user). */
static void connect_all(void) {
  rc = gm_test_redis_connect(redis);
  freeReplyObject(redisCommand(rc, "CLIENT SETNAME gm-test"));
  nodes = 0;
  const char *seeds = gm_test_redis_seeds(redis);
  for (const char *p = seeds; p && *p && nodes < 8;) {
    int port = atoi(strchr(p, ':') + 1);
    node[nodes] = redisConnect("127.0.0.1", port);
    ck_assert_msg(node[nodes] && !node[nodes]->err, "node at %d", port);
    freeReplyObject(redisCommand(node[nodes], "CLIENT SETNAME gm-test"));
    nodes++;
    p = strchr(p, ',');
    p = p ? p + 1 : NULL;
  }
}

/* Closes every client connection but the test's own (named gm-test), on
   every node: gmd's next commands go over new connections. */
static void kill_others(void) {
  for (int i = -1; i < nodes; i++) {
    redisContext *c = i < 0 ? rc : node[i];
    redisReply *l = redisCommand(c, "CLIENT LIST");
    ck_assert_msg(l && l->type == REDIS_REPLY_STRING, "CLIENT LIST: %s",
                  l ? l->str : c->errstr);
    for (char *line = l->str; line && *line;) {
      long long id = 0;
      int ours = strstr(line, " name=gm-test ") != NULL &&
                 strstr(line, " name=gm-test ") < strchr(line, '\n');
      if (sscanf(line, "id=%lld", &id) == 1 && !ours)
        freeReplyObject(redisCommand(c, "CLIENT KILL ID %lld", id));
      line = strchr(line, '\n');
      if (line) line++;
    }
    freeReplyObject(l);
  }
}

static void close_all(void) {
  redisFree(rc);
  for (int i = 0; i < nodes; i++) redisFree(node[i]);
  nodes = 0;
}

/* Runs a command (redisCommand's format) on node 0 and every other node. */
static void on_every_node(const char *fmt, const char *arg) {
  for (int i = -1; i < nodes; i++) {
    redisContext *c = i < 0 ? rc : node[i];
    redisReply *r = redisCommand(c, fmt, arg);
    ck_assert_msg(r && r->type != REDIS_REPLY_ERROR, "%s: %s", fmt,
                  r ? r->str : c->errstr);
    freeReplyObject(r);
  }
}

/* Every new connection must AUTH: as the default user with requirepass, or
   as the ACL user gmd. */
static void protect(void) {
  on_every_node("ACL SETUSER gmd on >%s ~* &* +@all", "gmd-pass-1");
  on_every_node("CONFIG SET requirepass %s", "default-pass-2");
}

static void setup(void) {
  redis = gm_test_redis_start();
  connect_all();
  protect();
}

/* Undoes what the cases set on every node (the ACL users gmd and lim, the
   default user's password), as far as the nodes still answer.  In the
   cluster3 copy (GM_TEST_REDIS_SHARE=1) the next case then takes the
   program's cluster instead of starting three masters of its own, about
   2 s: the fixture compares each node's CONFIG and ACL with what they were
   at the program's start (redis_fixture.c, shared_take), and starts a
   cluster of its own for a case whenever they differ. */
static void unprotect(void) {
  for (int i = -1; i < nodes; i++) {
    redisContext *c = i < 0 ? rc : node[i];
    if (!c) continue;
    redisReply *r = redisCommand(c, "ACL DELUSER gmd lim");
    if (r) freeReplyObject(r);
    r = redisCommand(c, "CONFIG SET requirepass %s", "");
    if (r) freeReplyObject(r);
  }
}

static void teardown(void) {
  unprotect();
  close_all();
  gm_test_redis_stop(&redis);
}

/* A file in the fixture's folder holding `text`, mode 600; malloc'd path. */
static char *secret_file(const char *name, const char *text) {
  char *p = gm_test_redis_path(redis, name);
  FILE *f = fopen(p, "w");
  ck_assert_ptr_nonnull(f);
  fputs(text, f);
  fclose(f);
  chmod(p, 0600);
  return p;
}

/* `gmd --check` on a config for this Redis plus `extra`: its exit status,
   and its output in out. */
static int check(const char *extra, char *out, size_t outlen) {
  char *conf = gm_test_redis_path(redis, "check.conf");
  char *ledger = gm_test_redis_path(redis, "check.sqlite");
  FILE *f = fopen(conf, "w");
  ck_assert_ptr_nonnull(f);
  fprintf(f,
          "[broker]\nendpoint = ipc://%s.sock\n[ledger]\npath = %s\n"
          "[security]\nmode = dev\n[plugins]\ndir = %s\nload = testmkt\n"
          "[redis]\nunix = %s\n%s",
          conf, ledger, TEST_PLUGIN_DIR, gm_test_redis_socket(redis), extra);
  fclose(f);
  int rc = gm_test_gmd_check(conf, out, outlen);
  free(conf);
  free(ledger);
  return rc;
}

START_TEST(no_password_is_named_as_the_problem) {
  char out[4096];
  ck_assert_int_eq(check("", out, sizeof out), 1);
  ck_assert_msg(strstr(out, "requires a password (NOAUTH)") &&
                    strstr(out, "[redis] password_file"),
                "%s", out);
  /* Not the old misleading "has no FCALL: older than 7.0". */
  ck_assert_msg(!strstr(out, "FCALL"), "%s", out);
}
END_TEST

START_TEST(a_wrong_password_or_user_is_refused_without_echoing_it) {
  char *wrong = secret_file("wrong.pass", "not-the-pass\n");
  char extra[512], out[4096];
  snprintf(extra, sizeof extra, "password_file = %s\n", wrong);
  ck_assert_int_eq(check(extra, out, sizeof out), 1);
  ck_assert_msg(strstr(out, "refused gmd's credentials") &&
                    strstr(out, "WRONGPASS") && !strstr(out, "not-the-pass"),
                "%s", out);
  snprintf(extra, sizeof extra, "user = nobody\npassword_file = %s\n", wrong);
  ck_assert_int_eq(check(extra, out, sizeof out), 1);
  ck_assert_msg(strstr(out, "WRONGPASS"), "%s", out);
  ck_assert_int_eq(check("user = gmd\n", out, sizeof out), 1);
  ck_assert_msg(strstr(out, "[redis] user = gmd needs the user's password"),
                "%s", out);
  char *empty = secret_file("empty.pass", "\n");
  snprintf(extra, sizeof extra, "password_file = %s\n", empty);
  ck_assert_int_eq(check(extra, out, sizeof out), 1);
  ck_assert_msg(strstr(out, "is empty"), "%s", out);
  snprintf(extra, sizeof extra, "password_file = %s.missing\n", empty);
  ck_assert_int_eq(check(extra, out, sizeof out), 1);
  ck_assert_msg(strstr(out, "cannot be read"), "%s", out);
  /* 512 bytes, the most, with no newline after them: read whole (Redis
     then refuses it), not taken for a longer line; 513 are refused. */
  char pw[514];
  memset(pw, 'x', 512);
  pw[512] = '\0';
  char *longest = secret_file("512.pass", pw);
  snprintf(extra, sizeof extra, "password_file = %s\n", longest);
  ck_assert_int_eq(check(extra, out, sizeof out), 1);
  ck_assert_msg(strstr(out, "WRONGPASS") && !strstr(out, "over 512"), "%s",
                out);
  strcat(pw, "x");
  char *over = secret_file("513.pass", pw);
  snprintf(extra, sizeof extra, "password_file = %s\n", over);
  ck_assert_int_eq(check(extra, out, sizeof out), 1);
  ck_assert_msg(strstr(out, "has a first line over 512 bytes"), "%s", out);
  free(longest);
  free(over);
  free(wrong);
  free(empty);
}
END_TEST

static long long bump(gm_test_conn *c, const char *key) {
  Gm__Testmkt__BumpRequest req = GM__TESTMKT__BUMP_REQUEST__INIT;
  req.note = (char *)key;
  Gm__Reply *r = gm_test_call(c, "alice", "testmkt", "bump", key, &req.base);
  ck_assert_msg(r && r->status == GM__STATUS__OK, "bump: %s",
                r ? r->message : "no reply");
  Gm__Testmkt__BumpReply *b =
      gm__testmkt__bump_reply__unpack(NULL, r->body.len, r->body.data);
  long long seq = b->seq;
  gm__testmkt__bump_reply__free_unpacked(b, NULL);
  gm__reply__free_unpacked(r, NULL);
  return seq;
}

static long long settled(gm_test_conn *c) {
  Gm__Testmkt__CountRequest req = GM__TESTMKT__COUNT_REQUEST__INIT;
  Gm__Reply *r = gm_test_call(c, "alice", "testmkt", "count", NULL, &req.base);
  ck_assert_ptr_nonnull(r);
  long long n = -1;
  if (r->status == GM__STATUS__OK) {
    Gm__Testmkt__CountReply *b =
        gm__testmkt__count_reply__unpack(NULL, r->body.len, r->body.data);
    n = b->settled;
    gm__testmkt__count_reply__free_unpacked(b, NULL);
  }
  gm__reply__free_unpacked(r, NULL);
  return n;
}

/* Scripts run, the settler settles and /healthz answers: every kind of
   connection authenticated. */
static void works_with(const char *user, const char *pass) {
  char *file = secret_file("gmd.pass", pass);
  char extra[1024];
  snprintf(extra, sizeof extra,
           "[plugins]\nload = testmkt\n[metrics]\nlisten = 127.0.0.1:0\n"
           "[redis]\n%s%s%spassword_file = %s\n",
           user ? "user = " : "", user ? user : "", user ? "\n" : "", file);
  gm_test_gmd *g = gm_test_gmd_start(redis, TEST_PLUGIN_DIR, extra);
  gm_test_conn *c = gm_test_conn_new(gm_test_gmd_endpoint(g), NULL, NULL, NULL);
  ck_assert_int_eq(bump(c, "k1"), 1);
  ck_assert_int_eq(bump(c, "k2"), 2);
  long long n = 0;
  for (int i = 0; i < 200 && n < 2; i++) {
    n = settled(c);
    if (n < 2) nanosleep(&(struct timespec){0, 20000000}, NULL);
  }
  ck_assert_int_eq(n, 2);
  ck_assert_int_eq((int)gm_test_gmd_metric(g, "greenmarket_redis_up"), 1);
  gm_test_conn_destroy(&c);
  gm_test_gmd_stop(&g);
  free(file);
}

START_TEST(an_acl_user_with_its_password_works) {
  works_with("gmd", "gmd-pass-1\n");
}
END_TEST

START_TEST(the_default_user_with_requirepass_works) {
  works_with(NULL, "default-pass-2");
}
END_TEST

/* GET /healthz on gmd's metrics port: the status, and the body in out. */
static int healthz(const gm_test_gmd *g, char *out, size_t outlen) {
  char cmd[256];
  snprintf(cmd, sizeof cmd,
           "curl -s -m 10 -w '\\n%%{http_code}' http://127.0.0.1:%d/healthz",
           gm_test_gmd_metrics_port(g));
  ck_assert_int_eq(gm_test_shell(cmd, out, outlen), 0);
  char *nl = strrchr(out, '\n');
  ck_assert_ptr_nonnull(nl);
  *nl = '\0';
  return atoi(nl + 1);
}

/* gmd as the ACL user gmd, its password gmd-pass-1 in a file (*file,
   malloc'd), metrics on. */
static gm_test_gmd *start_as_gmd(char **file) {
  *file = secret_file("gmd.pass", "gmd-pass-1\n");
  char extra[1024];
  snprintf(extra, sizeof extra,
           "[plugins]\nload = testmkt\n[metrics]\nlisten = 127.0.0.1:0\n"
           "[redis]\nuser = gmd\npassword_file = %s\n",
           *file);
  return gm_test_gmd_start(redis, TEST_PLUGIN_DIR, extra);
}

/* Redis restarted (its password set again, as a config file would) and
   every gmd connection closed: the workers reconnect with AUTH and calls
   work; then the password changes under gmd: /healthz says Redis refuses
   gmd's credentials, not that Redis is unreachable. */
START_TEST(reconnects_authenticate_and_a_refused_password_is_named) {
  char *file;
  gm_test_gmd *g = start_as_gmd(&file);
  gm_test_conn *c = gm_test_conn_new(gm_test_gmd_endpoint(g), NULL, NULL, NULL);
  ck_assert_int_eq(bump(c, "before"), 1);
  gm_test_redis_restart(redis);
  close_all();
  connect_all();
  /* gmd's reconnects AUTH as gmd: none succeeds before the user exists. */
  protect();
  for (int i = 0; i < 8; i++) {
    char key[16];
    snprintf(key, sizeof key, "after-%d", i);
    ck_assert_int_eq(bump(c, key), i + 1);
  }
  char out[4096];
  ck_assert_msg(healthz(g, out, sizeof out) == 200, "%s", out);
  on_every_node("ACL SETUSER gmd resetpass >%s", "other");
  on_every_node("CLIENT KILL USER %s", "gmd");
  /* A call says why it cannot be served: not "is redis-server running?". */
  Gm__Testmkt__BumpRequest req = GM__TESTMKT__BUMP_REQUEST__INIT;
  req.note = "refused";
  Gm__Reply *r =
      gm_test_call(c, "alice", "testmkt", "bump", "refused", &req.base);
  ck_assert_ptr_nonnull(r);
  /* Redis's words whole (on a cluster too, where the node's address comes
     first), not cut mid-word. */
  ck_assert_msg(r->status == GM__STATUS__UNAVAILABLE &&
                    strstr(r->message, "refused gmd's credentials") &&
                    strstr(r->message,
                           "WRONGPASS invalid username-password pair or user "
                           "is disabled") &&
                    !strstr(r->message, "gmd-pass-1"),
                "%d %s", r->status, r->message);
  gm__reply__free_unpacked(r, NULL);
  int status = healthz(g, out, sizeof out);
  ck_assert_msg(status == 503 && strstr(out, "refused gmd's credentials") &&
                    strstr(out, "or user is disabled") &&
                    !strstr(out, "not reachable") && !strstr(out, "gmd-pass-1"),
                "%d %s", status, out);
  gm_test_conn_destroy(&c);
  gm_test_gmd_stop(&g);
  free(file);
}
END_TEST

/* Waits up to timeout_ms for a line of gmd's log holding both a and b;
   that line (malloc'd), or NULL. */
static char *log_line(const gm_test_gmd *g, const char *a, const char *b,
                      int timeout_ms) {
  for (int waited = 0;; waited += 50) {
    FILE *f = fopen(gm_test_gmd_log(g), "r");
    char line[4096];
    while (f && fgets(line, sizeof line, f))
      if (strstr(line, a) && strstr(line, b)) {
        fclose(f);
        return strdup(line);
      }
    if (f) fclose(f);
    if (waited >= timeout_ms) return NULL;
    gm_test_sleep_ms(50);
  }
}

/* The password rotated as an operator would, with no gmd restart: a second
   password added to the ACL user, the file replaced (rename), the old
   password removed and gmd's connections closed: every kind of connection
   reconnects with the new one (calls, the settler, /healthz).  A password
   file gone is named as such (not "refused", not "not reachable"), and
   putting it back is enough. */
START_TEST(the_password_changes_without_a_restart) {
  char *file;
  gm_test_gmd *g = start_as_gmd(&file);
  gm_test_conn *c = gm_test_conn_new(gm_test_gmd_endpoint(g), NULL, NULL, NULL);
  ck_assert_int_eq(bump(c, "before"), 1);
  on_every_node("ACL SETUSER gmd >%s", "gmd-pass-3");
  char *next = secret_file("gmd.pass.new", "gmd-pass-3\n");
  ck_assert_int_eq(rename(next, file), 0);
  /* resetpass drops gmd-pass-1 (on a cluster node 0 is visited twice, and
     removing a password twice is an error). */
  on_every_node("ACL SETUSER gmd resetpass >%s", "gmd-pass-3");
  kill_others();
  for (int i = 0; i < 4; i++) {
    char key[16];
    snprintf(key, sizeof key, "after-%d", i);
    ck_assert_int_eq(bump(c, key), i + 2);
  }
  long long n = 0;
  for (int i = 0; i < 250 && n < 5; i++) {
    n = settled(c);
    if (n < 5) gm_test_sleep_ms(20);
  }
  ck_assert_int_eq(n, 5);
  char out[4096];
  ck_assert_msg(healthz(g, out, sizeof out) == 200, "%s", out);

  ck_assert_int_eq(unlink(file), 0);
  kill_others();
  Gm__Testmkt__BumpRequest req = GM__TESTMKT__BUMP_REQUEST__INIT;
  req.note = "no-file";
  Gm__Reply *r =
      gm_test_call(c, "alice", "testmkt", "bump", "no-file", &req.base);
  ck_assert_ptr_nonnull(r);
  ck_assert_msg(r->status == GM__STATUS__UNAVAILABLE &&
                    strstr(r->message, "password_file") &&
                    strstr(r->message, "cannot be read") &&
                    strstr(r->message, "no restart needed") &&
                    !strstr(r->message, "refused") &&
                    !strstr(r->message, "not reachable"),
                "%d %s", r->status, r->message);
  gm__reply__free_unpacked(r, NULL);
  int status = healthz(g, out, sizeof out);
  ck_assert_msg(status == 503 && strstr(out, "cannot be read") &&
                    strstr(out, file) && !strstr(out, "not reachable") &&
                    !strstr(out, "does not answer PING"),
                "%d %s", status, out);
  /* The next scrape finds the connections that scrape failed to reopen:
     the same message. */
  status = healthz(g, out, sizeof out);
  ck_assert_msg(status == 503 && strstr(out, "cannot be read") &&
                    strstr(out, file) && !strstr(out, "not reachable") &&
                    !strstr(out, "does not answer PING"),
                "second scrape: %d %s", status, out);
  /* The settle lease's renewal (each second) fails too: its log line names
     the file and what to do, as the call's reply does, not only
     "password_file: cannot be read". */
  char *line = log_line(g, "settle lease cannot be read or renewed",
                        "cannot be read", 3000);
  ck_assert_msg(line && strstr(line, file) && strstr(line, "no restart needed"),
                "%s", line ? line : "no such line in gmd's log");
  free(line);
  /* Back: the next call and the next scrape (which finds every master's
     connection closed and opens new ones) work again. */
  free(secret_file("gmd.pass", "gmd-pass-3\n"));
  ck_assert_int_eq(bump(c, "no-file"), 6);
  ck_assert_msg(healthz(g, out, sizeof out) == 200, "%s", out);
  gm_test_conn_destroy(&c);
  gm_test_gmd_stop(&g);
  free(next);
  free(file);
}
END_TEST

/* Redis starts wanting a password under a gmd that has none (requirepass
   set and Redis restarted): calls and /healthz say so, not an internal
   error or "is redis-server running?". */
START_TEST(a_password_redis_starts_wanting_is_named) {
  on_every_node("CONFIG SET requirepass %s", "");
  gm_test_gmd *g = gm_test_gmd_start(
      redis, TEST_PLUGIN_DIR,
      "[plugins]\nload = testmkt\n[metrics]\nlisten = 127.0.0.1:0\n");
  gm_test_conn *c = gm_test_conn_new(gm_test_gmd_endpoint(g), NULL, NULL, NULL);
  ck_assert_int_eq(bump(c, "open"), 1);
  on_every_node("CONFIG SET requirepass %s", "default-pass-2");
  kill_others();
  Gm__Testmkt__BumpRequest req = GM__TESTMKT__BUMP_REQUEST__INIT;
  req.note = "noauth";
  Gm__Reply *r =
      gm_test_call(c, "alice", "testmkt", "bump", "noauth", &req.base);
  ck_assert_ptr_nonnull(r);
  ck_assert_msg(r->status == GM__STATUS__UNAVAILABLE &&
                    strstr(r->message, "NOAUTH") &&
                    strstr(r->message, "password_file"),
                "%d %s", r->status, r->message);
  gm__reply__free_unpacked(r, NULL);
  char out[4096];
  int status = healthz(g, out, sizeof out);
  ck_assert_msg(
      status == 503 && strstr(out, "NOAUTH") && strstr(out, "password_file"),
      "%d %s", status, out);
  gm_test_conn_destroy(&c);
  gm_test_gmd_stop(&g);
}
END_TEST

/* An ACL user without a command a market's script sends (XADD, the
   outbox) gets a call refused with what the operator must grant, not a
   bare "failed inside Redis". */
START_TEST(an_acl_user_missing_a_command_is_named) {
  on_every_node("ACL SETUSER lim on >%s ~* &* +@all -xadd", "lim-pass-3");
  char *file = secret_file("lim.pass", "lim-pass-3");
  char extra[1024];
  snprintf(extra, sizeof extra,
           "[plugins]\nload = testmkt\n[redis]\nuser = lim\n"
           "password_file = %s\n",
           file);
  gm_test_gmd *g = gm_test_gmd_start(redis, TEST_PLUGIN_DIR, extra);
  gm_test_conn *c = gm_test_conn_new(gm_test_gmd_endpoint(g), NULL, NULL, NULL);
  Gm__Testmkt__BumpRequest req = GM__TESTMKT__BUMP_REQUEST__INIT;
  req.note = "n1";
  Gm__Reply *r = gm_test_call(c, "alice", "testmkt", "bump", "n1", &req.base);
  ck_assert_ptr_nonnull(r);
  ck_assert_int_eq(r->status, GM__STATUS__INTERNAL);
  ck_assert_msg(strstr(r->message, "to gmd's ACL user (NOPERM)") &&
                    strstr(r->message, "grant"),
                "%s", r->message);
  gm__reply__free_unpacked(r, NULL);
  ck_assert(gm_test_gmd_log_has(g, "can't run this command"));
  gm_test_conn_destroy(&c);
  gm_test_gmd_stop(&g);
  free(file);
}
END_TEST

/* Redis stopped (SIGSTOP) under a gmd with a password, at the first probe
   (the metrics thread's connection opened then: its AUTH times out): once
   it goes on (SIGCONT) the first /healthz passes again, not one scrape
   later (an orchestrator's probe must not count a resumed Redis as down).
   On a three-master cluster node 0 is stopped; test_cluster stops another
   master, the case that failed. */
START_TEST(the_first_healthz_after_a_stopped_redis_resumes_passes) {
  char *file;
  gm_test_gmd *g = start_as_gmd(&file);
  char out[4096];
  pid_t pid = gm_test_redis_pid(redis);
  ck_assert_int_gt(pid, 0);
  ck_assert_int_eq(kill(pid, SIGSTOP), 0);
  int status = healthz(g, out, sizeof out);
  kill(pid, SIGCONT);
  ck_assert_msg(status == 503, "/healthz on a stopped Redis: %d %s", status,
                out);
  status = healthz(g, out, sizeof out);
  ck_assert_msg(status == 200, "first /healthz after SIGCONT: %d %s", status,
                out);
  gm_test_gmd_stop(&g);
  free(file);
}
END_TEST

int main(void) {
  Suite *s = suite_create("redis auth");
  TCase *tc = tcase_create("auth");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, no_password_is_named_as_the_problem);
  tcase_add_test(tc, a_wrong_password_or_user_is_refused_without_echoing_it);
  tcase_add_test(tc, an_acl_user_with_its_password_works);
  tcase_add_test(tc, the_default_user_with_requirepass_works);
  tcase_add_test(tc, the_password_changes_without_a_restart);
  tcase_add_test(tc, a_password_redis_starts_wanting_is_named);
  tcase_add_test(tc, an_acl_user_missing_a_command_is_named);
  /* Last: they stop (asking for its pid) or restart Redis, so no later
     case of the cluster3 copy could take the program's cluster
     (unprotect). */
  tcase_add_test(tc, the_first_healthz_after_a_stopped_redis_resumes_passes);
  tcase_add_test(tc, reconnects_authenticate_and_a_refused_password_is_named);
  suite_add_tcase(s, tc);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
