/* The config reader: values, defaults, bad numbers, relative paths. */
#include <arpa/inet.h>
#include <check.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "config.h"
#include "run_gm.h"

static char dir[] = "/tmp/gm-config-XXXXXX";
static char path[256];

static void write_conf(const char *text) {
  strcpy(dir, "/tmp/gm-config-XXXXXX");
  ck_assert_ptr_nonnull(mkdtemp(dir));
  snprintf(path, sizeof path, "%s/gmd.conf", dir);
  FILE *f = fopen(path, "w");
  ck_assert_ptr_nonnull(f);
  fputs(text, f);
  fclose(f);
}

static void cleanup(void) {
  unlink(path);
  rmdir(dir);
}

START_TEST(reads_values_and_defaults) {
  write_conf(
      "[broker]\nworkers = 3\n[Ledger]\nsettle = off\npath = var/l.db\n");
  char err[256];
  gm__config *c = gm__config_load(path, err, sizeof err);
  ck_assert_ptr_nonnull(c);
  long n;
  ck_assert_int_eq(
      gm__config_int(c, "broker", "workers", 4, 1, 64, &n, err, sizeof err), 0);
  ck_assert_int_eq(n, 3);
  ck_assert_int_eq(
      gm__config_int(c, "broker", "absent", 7, 1, 64, &n, err, sizeof err), 0);
  ck_assert_int_eq(n, 7);
  int on;
  ck_assert_int_eq(
      gm__config_bool(c, "ledger", "settle", 1, &on, err, sizeof err), 0);
  ck_assert_int_eq(on, 0);
  char *p = gm__config_path(c, "ledger", "path", NULL);
  char want[300];
  snprintf(want, sizeof want, "%s/var/l.db", dir);
  ck_assert_str_eq(p, want);
  free(p);
  gm__config_set(c, "broker", "workers", "9");
  ck_assert_str_eq(gm__config_get(c, "broker", "workers", ""), "9");
  gm__config_destroy(&c);
  ck_assert_ptr_null(c);
  gm__config_destroy(&c); /* idempotent */
  cleanup();
}
END_TEST

START_TEST(rejects_bad_numbers_with_the_range) {
  write_conf("[broker]\nworkers = lots\nmax = 99999\n");
  char err[256];
  gm__config *c = gm__config_load(path, err, sizeof err);
  long n;
  ck_assert_int_eq(
      gm__config_int(c, "broker", "workers", 4, 1, 64, &n, err, sizeof err),
      -1);
  ck_assert_msg(strstr(err, "workers = lots") && strstr(err, "1 to 64"), "%s",
                err);
  ck_assert_int_eq(
      gm__config_int(c, "broker", "max", 4, 1, 64, &n, err, sizeof err), -1);
  int b;
  gm__config_set(c, "x", "flag", "maybe");
  ck_assert_int_eq(gm__config_bool(c, "x", "flag", 0, &b, err, sizeof err), -1);
  ck_assert_msg(strstr(err, "on or off") != NULL, "%s", err);
  gm__config_destroy(&c);
  cleanup();
}
END_TEST

START_TEST(reports_the_bad_line) {
  write_conf("[broker]\nworkers = 3\nthis line has no equals sign\n");
  char err[256] = "";
  gm__config *c = gm__config_load(path, err, sizeof err);
  ck_assert_ptr_null(c);
  ck_assert_msg(strstr(err, ":3:") != NULL, "%s", err);
  cleanup();
}
END_TEST

START_TEST(reports_a_missing_file) {
  char err[256] = "";
  ck_assert_ptr_null(gm__config_load("/nonexistent/gmd.conf", err, sizeof err));
  ck_assert_msg(strstr(err, "cannot open") != NULL, "%s", err);
  /* A folder given for the file (gmd -c var): inih would read it as empty. */
  ck_assert_ptr_null(gm__config_load("/tmp", err, sizeof err));
  ck_assert_msg(strstr(err, "/tmp: is a folder, not a config file") &&
                    strstr(err, "/tmp/gmd.conf"),
                "%s", err);
}
END_TEST

/* gm__config_check on `text`: its result; err holds the message. */
static int check_text(const char *text, char *err, size_t errlen) {
  write_conf(text);
  gm__config *c = gm__config_load(path, err, errlen);
  ck_assert_ptr_nonnull(c);
  *err = '\0';
  int rc = gm__config_check(c, err, errlen);
  gm__config_destroy(&c);
  cleanup();
  return rc;
}

START_TEST(a_misspelt_key_or_section_is_refused_with_the_spelling) {
  char err[1024];
  ck_assert_int_eq(
      check_text("[broker]\nendpiont = tcp://127.0.0.1:1\n", err, sizeof err),
      -1);
  ck_assert_msg(strstr(err, "[broker] endpiont: unknown key") &&
                    strstr(err, "did you mean endpoint?") &&
                    strstr(err, "max_message_bytes"),
                "%s", err);
  /* Keys are read case-sensitively: a capital is a different key. */
  ck_assert_int_eq(check_text("[redis]\nUnix = r.sock\n", err, sizeof err), -1);
  ck_assert_msg(strstr(err, "did you mean unix?"), "%s", err);
  ck_assert_int_eq(check_text("[brokers]\nworkers = 2\n", err, sizeof err), -1);
  ck_assert_msg(strstr(err, "[brokers] (key workers): unknown section") &&
                    strstr(err, "did you mean broker?") &&
                    strstr(err, "[market.NAME]"),
                "%s", err);
  /* Nothing near: no guess, still the list. */
  ck_assert_int_eq(check_text("[log]\nverbosity = 3\n", err, sizeof err), -1);
  ck_assert_msg(strstr(err, "unknown key;") && strstr(err, "has level"), "%s",
                err);
}
END_TEST

/* inih files a key above the first header under section "": it is named as
   such, not as an unknown section "[]". */
START_TEST(a_key_before_any_section_is_refused_as_such) {
  char err[1024];
  ck_assert_int_eq(
      check_text("workers = 2\n[broker]\nendpoint = a\n", err, sizeof err), -1);
  ck_assert_msg(strstr(err, "workers: a key before any [section] header") &&
                    strstr(err, "move it under the section") &&
                    !strstr(err, "[]"),
                "%s", err);
}
END_TEST

START_TEST(every_documented_key_and_market_sections_pass) {
  char err[1024];
  ck_assert_int_eq(
      check_text("[Broker]\nendpoint = a\nfeed = b\nprivate_feed = c\n"
                 "workers = 1\npipeline = 1\nfeed_queue = 100\n"
                 "max_message_bytes = 1\nname = n\n"
                 "[redis]\nunix = u\nhost = h\nport = 1\ncluster = \n"
                 "user = \npassword_file = \n"
                 "idempotency_ttl = 60\ncluster_wait_replicas = 0\n"
                 "[ledger]\npath = p\nsettle = on\nbatch = 1\n"
                 "scan_check = true\nlinger_ms = 0\n"
                 "[settle]\nsettle = auto\nlease_ms = 300\n"
                 "ledger_endpoint = e\nread_timeout_ms = 10\n"
                 "[security]\nmode = dev\nsecret_key_file = \nadmin_keys = \n"
                 "dev_on_network = off\n"
                 "[plugins]\nload = \n[log]\nlevel = info\n"
                 "[metrics]\nlisten = \n"
                 "[deadlines]\npoll_ms = 1\nclaim_ms = 100\nreconcile_s = 1\n"
                 "[testing]\nclock = real\nclock_start_ms = 0\n"
                 "[market.anything]\nwhatever_it_reads = 1\n",
                 err, sizeof err),
      0);
  ck_assert_str_eq(err, "");
}
END_TEST

START_TEST(admin_keys_must_be_z85_public_keys) {
  char err[1024];
  const char *k1 = "*c8ZDuD=O6Cf)(j1%l?B/pmxxo12L/uxub:X1!fG";
  const char *k2 = "O^k7+iKDMPi.-k%r7*fFx7pRNTI>sq/&Pt8Yj@o2";
  char text[512];
  snprintf(text, sizeof text,
           "[security]\nmode = curve\nadmin_keys = %s , %s\n", k1, k2);
  ck_assert_int_eq(check_text(text, err, sizeof err), 0);
  /* One character short (a paste that lost the last one). */
  snprintf(text, sizeof text, "[security]\nadmin_keys = %s,%.39s\n", k1, k2);
  ck_assert_int_eq(check_text(text, err, sizeof err), -1);
  ck_assert_msg(strstr(err, "admin_keys: key 2") &&
                    strstr(err, "40-character Z85") && strstr(err, "gm keygen"),
                "%s", err);
  /* 40 characters, one of them not in Z85 (a typo in a hand-copied key). */
  snprintf(text, sizeof text, "[security]\nadmin_keys = %.39s~\n", k1);
  ck_assert_int_eq(check_text(text, err, sizeof err), -1);
  ck_assert_msg(strstr(err, "key 1"), "%s", err);
  /* Empty entries between commas are no keys. */
  ck_assert_int_eq(check_text("[security]\nadmin_keys = ,\n", err, sizeof err),
                   0);
}
END_TEST

START_TEST(a_missing_plugin_dir_is_refused) {
  char err[1024];
  ck_assert_int_eq(
      check_text("[plugins]\ndir = no-such-folder\n", err, sizeof err), -1);
  ck_assert_msg(strstr(err, "[plugins] dir = no-such-folder: No such file") &&
                    strstr(err, "/no-such-folder") &&
                    strstr(err, "gm_<market>.so"),
                "%s", err);
  ck_assert_int_eq(check_text("[plugins]\ndir = gmd.conf\n", err, sizeof err),
                   -1);
  ck_assert_msg(strstr(err, "Not a directory"), "%s", err);
  ck_assert_int_eq(check_text("[plugins]\ndir = .\n", err, sizeof err), 0);
}
END_TEST

/* gmd itself: a misspelt key stops it at once, exit 1, before it touches
   Redis (none runs here) or creates any file beside the config. */
START_TEST(gmd_refuses_a_misspelt_key_before_starting_anything) {
  write_conf(
      "[broker]\nendpoint = tcp://127.0.0.1:1\n[ledger]\n"
      "path = ledger.sqlite\n[redis]\nunix = r.sock\n"
      "[security]\nmode = dev\n[metrics]\nlistne = 127.0.0.1:0\n");
  char out[2048] = "";
  int st = gm_test_gmd_check(path, out, sizeof out);
  ck_assert_msg(st == 1, "status %d: %s", st, out);
  ck_assert_msg(strstr(out, "ERROR [gmd]") &&
                    strstr(out,
                           "[metrics] listne: unknown key (did you mean "
                           "listen?)"),
                "%s", out);
  char ledger[300];
  snprintf(ledger, sizeof ledger, "%s/ledger.sqlite", dir);
  ck_assert_int_ne(access(ledger, F_OK), 0);
  cleanup();
}
END_TEST

/* A bad gmd -l is named as the option, not as [log] level, before the
   config is read. */
START_TEST(a_bad_log_level_option_is_named_as_the_option) {
  char out[4096] = "";
  int st = gm_test_shell(GM_BUILD_DIR "/core/gmd -l verbose -c /nonexistent",
                         out, sizeof out);
  ck_assert_msg(st == 2 &&
                    strstr(out,
                           "gmd: -l verbose: use debug, info, "
                           "warn or error") &&
                    !strstr(out, "[log] level") && strstr(out, "usage:"),
                "status %d: %s", st, out);
}
END_TEST

/* gmd --check on `text` (written as the config): its exit status and
   output. */
static int gmd_check(const char *text, char *out, size_t outlen) {
  write_conf(text);
  int rc = gm_test_gmd_check(path, out, outlen);
  cleanup();
  return rc;
}

/* Development mode admits anyone as anyone: an endpoint other machines can
   reach is refused unless the operator opts in, before Redis is touched. */
START_TEST(dev_mode_stays_on_this_machine) {
  char out[2048];
  ck_assert_int_eq(
      gmd_check("[broker]\nendpoint = tcp://0.0.0.0:17470\n[redis]\n"
                "unix = r.sock\n[security]\nmode = dev\n",
                out, sizeof out),
      1);
  ck_assert_msg(strstr(out,
                       "[broker] endpoint = tcp://0.0.0.0:17470 can be "
                       "reached from other machines") &&
                    strstr(out, "dev_on_network"),
                "%s", out);
  ck_assert_int_eq(
      gmd_check("[broker]\nendpoint = tcp://127.0.0.1:17470\nfeed = "
                "tcp://*:17471\n[redis]\nunix = r.sock\n[security]\nmode = "
                "dev\n",
                out, sizeof out),
      1);
  ck_assert_msg(strstr(out, "[broker] feed = tcp://*:17471"), "%s", out);
  /* Opted in: the check goes on (to the missing Redis here). */
  ck_assert_int_eq(
      gmd_check("[broker]\nendpoint = tcp://0.0.0.0:17470\n[redis]\n"
                "unix = r.sock\n[security]\nmode = dev\ndev_on_network = on\n",
                out, sizeof out),
      1);
  ck_assert_msg(!strstr(out, "other machines") && strstr(out, "Redis"), "%s",
                out);
  /* Loopback and ipc:// pass the rule. */
  ck_assert_int_eq(
      gmd_check("[broker]\nendpoint = ipc:///tmp/gm-x.sock\nfeed = "
                "tcp://localhost:17471\n[redis]\nunix = r.sock\n[security]\n"
                "mode = dev\n",
                out, sizeof out),
      1);
  ck_assert_msg(!strstr(out, "other machines"), "%s", out);
  /* The loopback interface by name, and IPv4-mapped loopback, are this
     machine's too (ZeroMQ binds them to 127.0.0.1). */
  ck_assert_int_eq(
      gmd_check("[broker]\nendpoint = tcp://lo:17470\nfeed = "
                "tcp://[::ffff:127.0.0.1]:17471\n[redis]\nunix = r.sock\n"
                "[security]\nmode = dev\n",
                out, sizeof out),
      1);
  ck_assert_msg(!strstr(out, "other machines") && strstr(out, "Redis"), "%s",
                out);
  /* Any other interface (eth0 here, when it exists) is not. */
  if (access("/sys/class/net/eth0", F_OK) == 0) {
    ck_assert_int_eq(
        gmd_check("[broker]\nendpoint = tcp://eth0:17470\n[redis]\n"
                  "unix = r.sock\n[security]\nmode = dev\n",
                  out, sizeof out),
        1);
    ck_assert_msg(strstr(out, "tcp://eth0:17470 can be reached"), "%s", out);
  }
}
END_TEST

/* [broker] public_feed_sub takes on or off; anything else is refused by
   gmd --check with the key, the value and what it takes. */
START_TEST(a_bad_public_feed_sub_is_refused) {
  char out[2048];
  ck_assert_int_eq(
      gmd_check("[broker]\npublic_feed_sub = maybe\n[redis]\nunix = r.sock\n"
                "[security]\nmode = dev\n",
                out, sizeof out),
      1);
  ck_assert_msg(
      strstr(out, "[broker] public_feed_sub = maybe: expected on or off"), "%s",
      out);
  /* off passes (the check goes on, to the missing Redis here). */
  ck_assert_int_eq(
      gmd_check("[broker]\npublic_feed_sub = off\n[redis]\nunix = r.sock\n"
                "[security]\nmode = dev\n",
                out, sizeof out),
      1);
  ck_assert_msg(!strstr(out, "public_feed_sub") && strstr(out, "Redis"), "%s",
                out);
}
END_TEST

/* A socket bound to a free port (TCP on 127.0.0.1, or a unix socket at
   `unix_path`) that does not listen: a connection to it is refused.  Its
   descriptor; the TCP port in *tcp_port. */
static int bound_not_listening(const char *unix_path, int *tcp_port) {
  if (unix_path) {
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    ck_assert_int_ge(fd, 0);
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    ck_assert_uint_lt(strlen(unix_path), sizeof a.sun_path);
    memcpy(a.sun_path, unix_path, strlen(unix_path) + 1);
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    return fd;
  }
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  ck_assert_int_ge(fd, 0);
  struct sockaddr_in a = {.sin_family = AF_INET};
  inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
  ck_assert_int_eq(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
  socklen_t len = sizeof a;
  ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&a, &len), 0);
  *tcp_port = ntohs(a.sin_port);
  return fd;
}

/*
 * gmd that cannot reach Redis at start says, in words, what failed at
 * which address and what to do: nothing listening on the port, no socket
 * file, a socket file nobody listens on.  Before, it printed the system's
 * bare words in brackets ("(Connection refused)", "(No such file or
 * directory)") and asked whether redis-server was running.
 */
START_TEST(gmd_names_what_failed_when_redis_cannot_be_reached) {
  char conf[512], out[4096], want[256];
  int port = 0, fd = bound_not_listening(NULL, &port);
  snprintf(conf, sizeof conf,
           "[redis]\nhost = 127.0.0.1\nport = %d\n[security]\nmode = dev\n",
           port);
  ck_assert_int_eq(gmd_check(conf, out, sizeof out), 1);
  close(fd);
  snprintf(want, sizeof want,
           "cannot start: Redis is not reachable at 127.0.0.1:%d: the "
           "connection was refused (nothing listens on port %d of 127.0.0.1)",
           port, port);
  ck_assert_msg(strstr(out, want) &&
                    strstr(out,
                           "set [redis] host and port to where it "
                           "listens") &&
                    !strstr(out, "(Connection refused)"),
                "want \"%s\" in: %s", want, out);

  ck_assert_int_eq(gmd_check("[redis]\nunix = r.sock\n[security]\nmode = "
                             "dev\n",
                             out, sizeof out),
                   1);
  ck_assert_msg(strstr(out, "r.sock: there is no such socket file") &&
                    strstr(out, "[redis] unix is the `unixsocket`") &&
                    !strstr(out, "(No such file or directory)"),
                "%s", out);

  write_conf("[redis]\nunix = r.sock\n[security]\nmode = dev\n");
  char sock[300];
  snprintf(sock, sizeof sock, "%s/r.sock", dir);
  fd = bound_not_listening(sock, NULL);
  int rc = gm_test_gmd_check(path, out, sizeof out);
  close(fd);
  unlink(sock);
  cleanup();
  ck_assert_int_eq(rc, 1);
  ck_assert_msg(strstr(out,
                       "r.sock: the connection was refused (the socket "
                       "file is there but no server listens on it") &&
                    !strstr(out, "(Connection refused)"),
                "%s", out);
}
END_TEST

/* The test helper joins the stderr of every part of a compound command
   (the promtool checks run "cd DIR && promtool ..."). */
START_TEST(test_shell_joins_every_part_s_stderr) {
  char out[256];
  ck_assert_int_eq(
      gm_test_shell("cd /nonexistent-gm-dir && true; echo two >&2; exit 3", out,
                    sizeof out),
      3);
  ck_assert_msg(strstr(out, "nonexistent-gm-dir") && strstr(out, "two\n"), "%s",
                out);
}
END_TEST

int main(void) {
  Suite *s = suite_create("config");
  TCase *tc = tcase_create("config");
  tcase_add_test(tc, reads_values_and_defaults);
  tcase_add_test(tc, test_shell_joins_every_part_s_stderr);
  tcase_add_test(tc, rejects_bad_numbers_with_the_range);
  tcase_add_test(tc, reports_the_bad_line);
  tcase_add_test(tc, reports_a_missing_file);
  tcase_add_test(tc, a_misspelt_key_or_section_is_refused_with_the_spelling);
  tcase_add_test(tc, a_key_before_any_section_is_refused_as_such);
  tcase_add_test(tc, every_documented_key_and_market_sections_pass);
  tcase_add_test(tc, admin_keys_must_be_z85_public_keys);
  tcase_add_test(tc, a_missing_plugin_dir_is_refused);
  tcase_add_test(tc, gmd_refuses_a_misspelt_key_before_starting_anything);
  tcase_add_test(tc, dev_mode_stays_on_this_machine);
  tcase_add_test(tc, a_bad_public_feed_sub_is_refused);
  tcase_add_test(tc, a_bad_log_level_option_is_named_as_the_option);
  tcase_add_test(tc, gmd_names_what_failed_when_redis_cannot_be_reached);
  suite_add_tcase(s, tc);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
