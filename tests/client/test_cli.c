/*
 * The gm program as a user runs it: help on every level, exit codes, the
 * generic call path and its idempotency keys, keygen, a market's friendly
 * commands through the gm_cli_api table (plugins/clitest.c), and what gm
 * says to a word it does not know, against the echo ROUTER of
 * echo_server.h.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <pty.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "echo_server.h"
#include "run_gm.h"

/* Runs gm with the NULL-terminated arguments. */
static run_result *run(const char *endpoint, ...) {
  char *args[64];
  int n = 0;
  va_list ap;
  va_start(ap, endpoint);
  for (char *a; (a = va_arg(ap, char *)) && n < 63;) args[n++] = a;
  va_end(ap);
  args[n] = NULL;
  return gm_test_run_gm(endpoint, args);
}

START_TEST(help_on_every_level) {
  run_result *r = run(NULL, "--help", NULL);
  ck_assert_int_eq(r->code, 0);
  ck_assert_msg(strstr(r->out, "commands:") && strstr(r->out, "--endpoint"),
                "%s", r->out);
  r = run(NULL, "gm", "--help", NULL);
  ck_assert_int_eq(r->code, 0);
  ck_assert_msg(strstr(r->out, "register") && strstr(r->out, "[mutating]"),
                "%s", r->out);
  r = run(NULL, "gm", "register", "--help", NULL);
  ck_assert_int_eq(r->code, 0);
  ck_assert_msg(
      strstr(r->out, "participant.roles") && strstr(r->out, "repeated string"),
      "%s", r->out);
  r = run(NULL, "admin", "register", "--help", NULL);
  ck_assert_int_eq(r->code, 0);
  ck_assert_msg(strstr(r->out, "--roles"), "%s", r->out);
  char dead[64];
  gm_test_dead_endpoint(dead);
  r = run(dead, "nosuchmarket", "--help", NULL);
  ck_assert_int_eq(r->code, 1);
  ck_assert_msg(strstr(r->err, "error: no command or market \"nosuchmarket\""),
                "%s", r->err);
  r = run(NULL, NULL);
  ck_assert_int_eq(r->code, 1); /* no command: usage on stderr */
  ck_assert_msg(strstr(r->err, "usage: gm"), "%s", r->err);
}
END_TEST

START_TEST(unreachable_exits_2_with_a_hint) {
  char dead[64];
  gm_test_dead_endpoint(dead);
  run_result *r = run(dead, "ping", "--timeout", "100", "--retries", "1", NULL);
  ck_assert_int_eq(r->code, 2);
  ck_assert_msg(strstr(r->err, "error: UNAVAILABLE: no reply from") &&
                    strstr(r->err, dead) && strstr(r->err, "is gmd running?") &&
                    strstr(r->err, "start it with deploy/start"),
                "%s", r->err);
}
END_TEST

START_TEST(broker_errors_exit_1) {
  gm_test_echo_opts o = {0};
  o.status = GM_PERMISSION_DENIED;
  o.message = "gm.register needs the admin role";
  gm_test_echo *e = gm_test_echo_start(&o);
  run_result *r = run(gm_test_echo_endpoint(e), "admin", "register", "bob",
                      "--roles", "buyer", NULL);
  ck_assert_int_eq(r->code, 1);
  ck_assert_str_eq(r->err,
                   "error: PERMISSION_DENIED: gm.register needs the admin "
                   "role\n");
  gm_test_echo_stop(&e);
}
END_TEST

START_TEST(generic_call_and_idempotency_keys) {
  gm_test_echo *e = gm_test_echo_start(NULL);
  const char *ep = gm_test_echo_endpoint(e);
  /* A read: no idempotency key; global options after the command. */
  run_result *r =
      run(ep, "gm", "ping", "echo=hi there", "--json", "--as", "carol", NULL);
  ck_assert_msg(r->code == 0, "%s", r->err);
  ck_assert_msg(strstr(r->out, "\"echo\": \"hi there\""), "%s", r->out);
  gm_test_echo_req s = gm_test_echo_get(e, 0);
  ck_assert_str_eq(s.idempotency_key, "");
  ck_assert_str_eq(s.dev_participant, "carol");

  /* A mutating call: a fresh key each time, printed with -v. */
  r = run(ep, "clock", "set", "2026-11-24T09:30:00+08:00", "-v", NULL);
  ck_assert_msg(r->code == 0, "%s", r->err);
  ck_assert_msg(strstr(r->out, "1795483800000"), "%s", r->out);
  s = gm_test_echo_get(e, 1);
  ck_assert_str_eq(s.method, "clock.set");
  ck_assert_uint_eq(strlen(s.idempotency_key), 32);
  ck_assert_msg(strstr(r->err, s.idempotency_key), "%s", r->err);
  /* Other zones, fractions and plain milliseconds give the same instant. */
  r = run(ep, "clock", "set", "2026-11-24T01:30:00.25Z", NULL);
  ck_assert_msg(strstr(r->out, "1795483800250"), "%s%s", r->out, r->err);
  r = run(ep, "clock", "set", "2026-11-23T20:30:00-05:00", NULL);
  ck_assert_msg(strstr(r->out, "1795483800000"), "%s%s", r->out, r->err);
  r = run(ep, "clock", "set", "1795483800001", NULL);
  ck_assert_msg(strstr(r->out, "1795483800001"), "%s%s", r->out, r->err);
  r = run(ep, "gm", "clock.set", "time_ms=5", NULL);
  ck_assert_str_ne(gm_test_echo_get(e, 5).idempotency_key, s.idempotency_key);

  /* A given key is sent as is, so a retry by hand is safe. */
  r = run(ep, "gm", "clock.set", "--data", "{\"time_ms\": 7}",
          "--idempotency-key", "retry-me", NULL);
  ck_assert_msg(r->code == 0, "%s", r->err);
  ck_assert_msg(strstr(r->out, "time_ms  7"), "%s", r->out);
  ck_assert_str_eq(gm_test_echo_get(e, 6).idempotency_key, "retry-me");

  /* Nested and repeated fields from the command line. */
  r = run(ep, "gm", "register", "participant.id=acme",
          "participant.roles=buyer", "participant.roles=seller", NULL);
  ck_assert_msg(r->code == 0, "%s", r->err);
  ck_assert_msg(
      strstr(r->out, "participant.roles") && strstr(r->out, "buyer, seller"),
      "%s", r->out);
  r = run(ep, "admin", "register", "acme", "--roles", "buyer,seller", "--name",
          "ACME Steel", "--json", NULL);
  ck_assert_msg(r->code == 0, "%s", r->err);
  ck_assert_msg(
      strstr(r->out, "\"ACME Steel\"") && strstr(r->out, "\"seller\""), "%s",
      r->out);
  ck_assert_uint_eq(gm_test_echo_count(e), 9);
  gm_test_echo_stop(&e);
}
END_TEST

START_TEST(bad_input_exits_1_before_sending) {
  gm_test_echo *e = gm_test_echo_start(NULL);
  const char *ep = gm_test_echo_endpoint(e);
  run_result *r = run(ep, "gm", "ping", "ech=hi", NULL);
  ck_assert_int_eq(r->code, 1);
  ck_assert_msg(
      strstr(r->err, "error: INVALID_ARGUMENT: unknown field 'ech'") &&
          strstr(r->err, "valid fields: echo"),
      "%s", r->err);
  r = run(ep, "gm", "clock.set", "time_ms=12x", NULL);
  ck_assert_int_eq(r->code, 1);
  ck_assert_msg(strstr(r->err, "\"12x\" is not an integer"), "%s", r->err);
  r = run(ep, "clock", "set", "2026-11-24 09:30", NULL);
  ck_assert_int_eq(r->code, 1);
  ck_assert_msg(strstr(r->err, "a zone is required"), "%s", r->err);
  r = run(ep, "gm", "nosuch", NULL);
  ck_assert_int_eq(r->code, 1);
  ck_assert_msg(strstr(r->err, "no command or method \"nosuch\"") &&
                    strstr(r->err, "clock.set"),
                "%s", r->err);
  r = run(ep, "ping", "--timeout", "soon", NULL);
  ck_assert_int_eq(r->code, 1);
  r = run(ep, "admin", "replay", "gm:{m:t}:outbox", NULL);
  ck_assert_int_eq(r->code, 1);
  ck_assert_msg(strstr(r->err, "give the dead letter's STREAM and ID"), "%s",
                r->err);
  r = run(ep, "admin", "dead-letters", "--limit", "0", NULL);
  ck_assert_int_eq(r->code, 1);
  ck_assert_msg(strstr(r->err, "--limit wants 1-1000"), "%s", r->err);
  r = run(ep, "admin", "dead-letters", "a", "b", NULL);
  ck_assert_int_eq(r->code, 1);
  /* gm watch: a count past a long, a prefix that is no UTF-8 (no topic
     can match it) and one over 255 bytes are refused before any feed. */
  r = run(ep, "watch", "--count", "99999999999999999999", NULL);
  ck_assert_int_eq(r->code, 1);
  ck_assert_msg(strstr(r->err,
                       "--count \"99999999999999999999\": give a "
                       "whole number of events from 1 to"),
                "%s", r->err);
  r = run(ep, "watch", "carbon.", "bad\xff", NULL);
  ck_assert_int_eq(r->code, 1);
  ck_assert_msg(strstr(r->err, "topic prefix 2 is not valid UTF-8 (at byte 4)"),
                "%s", r->err);
  char long_prefix[300];
  memset(long_prefix, 'a', sizeof long_prefix - 1);
  long_prefix[sizeof long_prefix - 1] = '\0';
  r = run(ep, "watch", long_prefix, NULL);
  ck_assert_int_eq(r->code, 1);
  ck_assert_msg(strstr(r->err, "255"), "%s", r->err);
  ck_assert_uint_eq(gm_test_echo_count(e), 0);
  gm_test_echo_stop(&e);
}
END_TEST

START_TEST(keygen_writes_a_private_file_once) {
  char dir[] = "/tmp/gm-cli-keys-XXXXXX";
  ck_assert_ptr_nonnull(mkdtemp(dir));
  char path[256];
  snprintf(path, sizeof path, "%s/me.key", dir);
  run_result *r = run(NULL, "keygen", "--out", path, NULL);
  ck_assert_msg(r->code == 0, "%s", r->err);
  struct stat st;
  ck_assert_int_eq(stat(path, &st), 0);
  ck_assert_int_eq(st.st_mode & 0777, 0600);
  char pub[64];
  ck_assert_int_eq(sscanf(r->out, "public = %40s", pub), 1);
  FILE *f = fopen(path, "r");
  char text[512];
  size_t n = fread(text, 1, sizeof text - 1, f);
  text[n] = '\0';
  fclose(f);
  ck_assert_msg(strstr(text, pub) && strstr(text, "secret = "), "%s", text);
  r = run(NULL, "keygen", "--out", path, NULL);
  ck_assert_int_eq(r->code, 1);
  ck_assert_msg(strstr(r->err, "never overwritten"), "%s", r->err);

  /* The file works as --key-file with a CURVE broker. */
  char spub[41], ssec[41];
  gm_keypair(spub, ssec);
  gm_test_echo_opts o = {0};
  o.secret_key = ssec;
  gm_test_echo *e = gm_test_echo_start(&o);
  r = run(gm_test_echo_endpoint(e), "ping", "curve", "--server-key", spub,
          "--key-file", path, NULL);
  ck_assert_msg(r->code == 0, "%s", r->err);
  ck_assert_msg(strstr(r->out, "curve"), "%s", r->out);
  r = run(gm_test_echo_endpoint(e), "ping", "--key-file", path, NULL);
  ck_assert_int_eq(r->code, 1);
  ck_assert_msg(strstr(r->err, "needs --server-key"), "%s", r->err);
  /* A server key file whose path happens to be 40 characters long is read
     as a file (it was taken for a key, and refused as a malformed one). */
  char spath[256];
  snprintf(spath, sizeof spath, "%s/%0*d.pub", dir, (int)(40 - strlen(dir) - 5),
           7);
  ck_assert_uint_eq(strlen(spath), 40);
  f = fopen(spath, "w");
  fprintf(f, "public = %s\n", spub);
  fclose(f);
  r = run(gm_test_echo_endpoint(e), "ping", "file40", "--server-key", spath,
          "--key-file", path, NULL);
  ck_assert_msg(r->code == 0, "%s", r->err);
  ck_assert_msg(strstr(r->out, "file40"), "%s", r->out);
  gm_test_echo_stop(&e);
  unlink(spath);
  unlink(path);
  rmdir(dir);
}
END_TEST

/* Runs gm with --plugin-dir CLITEST_PLUGIN_DIR and the arguments. */
static run_result *run_ext(const char *endpoint, ...) {
  char *args[64];
  int n = 0;
  args[n++] = "--plugin-dir";
  args[n++] = (char *)CLITEST_PLUGIN_DIR;
  va_list ap;
  va_start(ap, endpoint);
  for (char *a; (a = va_arg(ap, char *)) && n < 63;) args[n++] = a;
  va_end(ap);
  args[n] = NULL;
  return gm_test_run_gm(endpoint, args);
}

START_TEST(friendly_commands_use_gms_table) {
  gm_test_echo *e = gm_test_echo_start(NULL);
  const char *ep = gm_test_echo_endpoint(e);
  /* A read: one request (gm asks nothing else first), no key. */
  run_result *r = run_ext(ep, "clitest", "say", "hello", NULL);
  ck_assert_msg(r->code == 0, "%s", r->err);
  ck_assert_str_eq(r->out, "say said: hello\n");
  ck_assert_uint_eq(gm_test_echo_count(e), 1);
  gm_test_echo_req s = gm_test_echo_get(e, 0);
  ck_assert_str_eq(s.market, "clitest");
  ck_assert_str_eq(s.method, "say");
  ck_assert_str_eq(s.idempotency_key, "");
  /* A mutation: the plugin's flag, not the broker, says it needs a key;
   * still one request. */
  r = run_ext(ep, "clitest", "keep", "x", "-v", NULL);
  ck_assert_msg(r->code == 0, "%s", r->err);
  ck_assert_uint_eq(gm_test_echo_count(e), 2);
  s = gm_test_echo_get(e, 1);
  ck_assert_str_eq(s.method, "keep");
  ck_assert_uint_eq(strlen(s.idempotency_key), 32);
  ck_assert_msg(strstr(r->err, s.idempotency_key), "%s", r->err);
  /* A command of several mutations: one key per run, ".N" from the second
   * call on, so running it again with the key replays every step. */
  r = run_ext(ep, "clitest", "keep", "y", "z", "--idempotency-key", "again-1",
              NULL);
  ck_assert_msg(r->code == 0, "%s", r->err);
  ck_assert_str_eq(r->out, "keep said: y\nkeep said: z\n");
  ck_assert_str_eq(gm_test_echo_get(e, 2).idempotency_key, "again-1");
  ck_assert_str_eq(gm_test_echo_get(e, 3).idempotency_key, "again-1.2");
  r = run_ext(ep, "clitest", "keep", "y", "z", NULL);
  char second[200];
  snprintf(second, sizeof second, "%.160s.2",
           gm_test_echo_get(e, 4).idempotency_key);
  ck_assert_uint_eq(strlen(gm_test_echo_get(e, 4).idempotency_key), 32);
  ck_assert_str_eq(gm_test_echo_get(e, 5).idempotency_key, second);
  char long_key[130];
  memset(long_key, 'k', 127);
  long_key[127] = '\0';
  r = run_ext(ep, "clitest", "keep", "y", "z", "--idempotency-key", long_key,
              NULL);
  ck_assert_int_eq(r->code, 1);
  ck_assert_msg(strstr(r->err,
                       "--idempotency-key is 127 characters; gm takes "
                       "at most 120"),
                "%s", r->err);
  /* Refused before the first call, not halfway through the command. */
  ck_assert_uint_eq(gm_test_echo_count(e), 6);
  long_key[120] = '\0';
  r = run_ext(ep, "clitest", "keep", "y", "z", "--idempotency-key", long_key,
              NULL);
  ck_assert_msg(r->code == 0, "%s", r->err);
  ck_assert_uint_eq(strlen(gm_test_echo_get(e, 7).idempotency_key), 122);
  /* print() follows --json, given anywhere on the line. */
  r = run_ext(ep, "clitest", "say", "hi", "--json", NULL);
  ck_assert_msg(r->code == 0, "%s", r->err);
  ck_assert_msg(
      strstr(r->out, "\"text\": \"hi\"") && strstr(r->out, "\"n\": 2"), "%s",
      r->out);
  r = run_ext(ep, "--json", "-v", "clitest", "flags", NULL);
  ck_assert_str_eq(r->out, "json 1 verbose 1\n");
  r = run_ext(ep, "clitest", "flags", NULL);
  ck_assert_str_eq(r->out, "json 0 verbose 0\n");
  /* parse_time is gm's own parser. */
  r = run_ext(ep, "clitest", "when", "2026-11-24T01:30:00.25Z", NULL);
  ck_assert_str_eq(r->out, "1795483800250\n");
  r = run_ext(ep, "clitest", "when", "2026-11-24 09:30", NULL);
  ck_assert_int_eq(r->code, 1);
  ck_assert_str_eq(r->err,
                   "error: INVALID_ARGUMENT: \"2026-11-24 09:30\" is not a "
                   "time; write 2026-11-24T09:30:00+08:00\n");
  /* A day the month does not have, a 61st second or an offset no zone
     has is no time: not rolled over into the next month, minute or day. */
  static const char *const not_times[] = {
      "2026-02-30T10:00:00+08:00", "2026-04-31T10:00:00Z",
      "2027-02-29T00:00:00Z",      "2026-11-24T09:30:60Z",
      "2026-11-24T09:30:00+99:00", "2026-11-24T09:30:00+08:60",
      "2026-11-24T09:30:00-15:00"};
  for (size_t i = 0; i < sizeof not_times / sizeof *not_times; i++) {
    r = run_ext(ep, "clitest", "when", not_times[i], NULL);
    ck_assert_msg(r->code == 1, "%s was taken: %s", not_times[i], r->out);
  }
  r = run_ext(ep, "clitest", "when", "2028-02-29T14:00:00-14:00", NULL);
  ck_assert_str_eq(r->out, "1835496000000\n");
  r = run_ext(ep, "clitest", "when", "2026-11-24T09:30:00+14:00", NULL);
  ck_assert_str_eq(r->out, "1795462200000\n");
  /* error() is how gm reports every failure. */
  r = run_ext(ep, "clitest", "fail", "CEA", NULL);
  ck_assert_int_eq(r->code, 1);
  ck_assert_str_eq(r->err,
                   "error: INVALID_ARGUMENT: CEA is 3 tonnes too many\n");
  ck_assert_str_eq(r->out, "");
  /* Off a terminal no progress is drawn: only the command's output. */
  r = run_ext(ep, "clitest", "count", "3", NULL);
  ck_assert_msg(r->code == 0, "%s", r->err);
  ck_assert_str_eq(r->out, "counted 3\n");
  ck_assert_str_eq(r->err, "");
  /* A word the extension leaves alone takes the generic path. */
  size_t before = gm_test_echo_count(e);
  r = run_ext(ep, "clitest", "nosuch", NULL);
  ck_assert_int_eq(r->code, 1);
  ck_assert_msg(strstr(r->err, "no command or method \"nosuch\"\n") &&
                    strstr(r->err, "say keep"),
                "%s", r->err);
  ck_assert_uint_eq(gm_test_echo_count(e), before);
  /* A typo of a friendly command (read off the plugin's usage) or of a
     method gets the nearest. */
  r = run_ext(ep, "clitest", "sayy", NULL);
  ck_assert_int_eq(r->code, 1);
  ck_assert_msg(strstr(r->err, "did you mean \"say\"?"), "%s", r->err);
  r = run_ext(ep, "clitest", "kep", NULL);
  ck_assert_msg(strstr(r->err, "did you mean \"keep\"?"), "%s", r->err);
  ck_assert_uint_eq(gm_test_echo_count(e), before);
  /* Help: the friendly commands first, then the methods. */
  r = run_ext(ep, "clitest", "--help", NULL);
  ck_assert_int_eq(r->code, 0);
  const char *say = strstr(r->out, "gm clitest say TEXT");
  const char *method = strstr(r->out, "say a note back");
  ck_assert_msg(say && method && say < method, "%s", r->out);
  gm_test_echo_stop(&e);
}
END_TEST

START_TEST(quiet_calls_print_nothing) {
  gm_test_echo_opts o = {0};
  o.status = GM_PERMISSION_DENIED;
  o.message = "clitest.say needs the admin role";
  gm_test_echo *e = gm_test_echo_start(&o);
  run_result *r = run_ext(gm_test_echo_endpoint(e), "clitest", "quiet", NULL);
  ck_assert_int_eq(r->code, 1);
  ck_assert_str_eq(r->out,
                   "code 1 status 7 message [clitest.say needs the admin "
                   "role] reply (none)\n");
  ck_assert_str_eq(r->err, "");
  /* call() on the same refusal prints it the gm way. */
  r = run_ext(gm_test_echo_endpoint(e), "clitest", "say", "x", NULL);
  ck_assert_int_eq(r->code, 1);
  ck_assert_str_eq(r->err,
                   "error: PERMISSION_DENIED: clitest.say needs the admin "
                   "role\n");
  gm_test_echo_stop(&e);
  /* No broker: exit code 2, the reason in the message, still silent. */
  char dead[64];
  gm_test_dead_endpoint(dead);
  r = run_ext(dead, "--timeout", "100", "--retries", "1", "clitest", "quiet",
              NULL);
  ck_assert_int_eq(r->code, 2);
  ck_assert_msg(strstr(r->out, "code 2 status 14 message [no reply from"), "%s",
                r->out);
  ck_assert_str_eq(r->err, "");
  e = gm_test_echo_start(NULL);
  r = run_ext(gm_test_echo_endpoint(e), "clitest", "quiet", NULL);
  ck_assert_int_eq(r->code, 0);
  ck_assert_str_eq(r->out, "code 0 status 0 message [] reply quietly\n");
  gm_test_echo_stop(&e);
}
END_TEST

/* Runs gm on a pseudo-terminal (stdout and stderr both); returns what it
 * wrote, NUL-terminated in out, and its exit status. */
static int run_tty(const char *endpoint, char *out, size_t cap,
                   char *const *args) {
  char *argv[16];
  int argc = 0, master;
  argv[argc++] = GM_BUILD_DIR "/cli/gm";
  for (int i = 0; args[i] && argc < 15; i++) argv[argc++] = args[i];
  argv[argc] = NULL;
  pid_t pid = forkpty(&master, NULL, NULL, NULL);
  ck_assert_int_ge(pid, 0);
  if (pid == 0) {
    unsetenv("GM_AS");
    setenv("GM_ENDPOINT", endpoint, 1);
    execv(argv[0], argv);
    _exit(127);
  }
  size_t used = 0;
  for (;;) {
    ssize_t n = read(master, out + used, cap - 1 - used);
    if (n > 0) used += (size_t)n;
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0 || used == cap - 1) break; /* EIO: the child closed it */
  }
  out[used] = '\0';
  close(master);
  int status;
  waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

START_TEST(progress_is_drawn_on_a_terminal) {
  gm_test_echo *e = gm_test_echo_start(NULL);
  char out[8192];
  char *args[] = {
      "--plugin-dir", CLITEST_PLUGIN_DIR, "clitest", "count", "5", NULL};
  int code = run_tty(gm_test_echo_endpoint(e), out, sizeof out, args);
  ck_assert_msg(code == 0, "%s", out);
  /* Redrawn in place with \r, ended with its final state before the
   * command's own output. */
  const char *last = strstr(out, "\r\033[Kcounting  5/5  100%");
  const char *done = strstr(out, "counted 5");
  ck_assert_msg(last && done && last < done, "%s", out);
  ck_assert_uint_eq(gm_test_echo_count(e), 5);
  gm_test_echo_stop(&e);
}
END_TEST

START_TEST(an_unusable_extension_falls_back_to_methods) {
  gm_test_echo *e = gm_test_echo_start(NULL);
  run_result *r =
      run_ext(gm_test_echo_endpoint(e), "clibroken", "say", "text=hi", NULL);
  ck_assert_msg(r->code == 0, "%s", r->err);
  ck_assert_msg(strstr(r->err,
                       "warning: gm_clibroken.so's friendly commands are "
                       "unusable (extension size 0") &&
                    strstr(r->err, "rebuild the plugin"),
                "%s", r->err);
  ck_assert_msg(strstr(r->out, "text  hi"), "%s", r->out);
  gm_test_echo_stop(&e);
}
END_TEST

START_TEST(unknown_words_get_the_nearest_command) {
  char dead[64];
  gm_test_dead_endpoint(dead);
  /* The broker is down: the plugins found here are listed, after a second
   * at most (not the 3 x 5 s of the default timeout and retries). */
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  run_result *r = run_ext(dead, "pingg", NULL);
  clock_gettime(CLOCK_MONOTONIC, &t1);
  ck_assert_int_eq(r->code, 1);
  ck_assert_int_lt(t1.tv_sec - t0.tv_sec, 4);
  ck_assert_msg(
      strstr(r->err,
             "error: no command or market \"pingg\"; did you mean "
             "\"ping\"?\n") &&
          strstr(r->err, "the broker at ") && strstr(r->err, dead) &&
          strstr(r->err,
                 "did not answer; plugins found in " CLITEST_PLUGIN_DIR) &&
          strstr(r->err, "clibroken, clitest") &&
          strstr(r->err, "commands: gm --help"),
      "%s", r->err);
  r = run_ext(dead, "--timeout", "100", "clitset", "say", "x", NULL);
  ck_assert_int_eq(r->code, 1);
  ck_assert_msg(strstr(r->err, "did you mean \"clitest\"?"), "%s", r->err);
  r = run_ext(dead, "--timeout", "100", "mark", NULL);
  ck_assert_msg(strstr(r->err, "did you mean \"markets\"?"), "%s", r->err);
  r = run_ext(dead, "--timeout", "100", "zzzzzz", NULL);
  ck_assert_int_eq(r->code, 1);
  ck_assert_msg(strstr(r->err, "no command or market \"zzzzzz\"\n"), "%s",
                r->err);
  /* A broker that answers lists its markets (the echo broker has none). */
  gm_test_echo *e = gm_test_echo_start(NULL);
  r = run_ext(gm_test_echo_endpoint(e), "procurment", NULL);
  ck_assert_int_eq(r->code, 1);
  ck_assert_msg(strstr(r->err,
                       "no command or market \"procurment\"\n"
                       "loaded markets: none"),
                "%s", r->err);
  ck_assert_str_eq(gm_test_echo_get(e, 0).method, "markets");
  gm_test_echo_stop(&e);
}
END_TEST

int main(void) {
  Suite *s = suite_create("cli");
  TCase *tc = tcase_create("cli");
  tcase_set_timeout(tc, 30);
  tcase_add_test(tc, help_on_every_level);
  tcase_add_test(tc, unreachable_exits_2_with_a_hint);
  tcase_add_test(tc, broker_errors_exit_1);
  tcase_add_test(tc, generic_call_and_idempotency_keys);
  tcase_add_test(tc, bad_input_exits_1_before_sending);
  tcase_add_test(tc, keygen_writes_a_private_file_once);
  tcase_add_test(tc, friendly_commands_use_gms_table);
  tcase_add_test(tc, quiet_calls_print_nothing);
  tcase_add_test(tc, progress_is_drawn_on_a_terminal);
  tcase_add_test(tc, an_unusable_extension_falls_back_to_methods);
  tcase_add_test(tc, unknown_words_get_the_nearest_command);
  suite_add_tcase(s, tc);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
