/*
 * The gm program as a user runs it: help on every level, exit codes, the
 * generic call path and its idempotency keys, keygen, against the echo
 * ROUTER of echo_server.h.
 */
#include <check.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
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
  r = run(NULL, "nosuchmarket", "--help", NULL);
  ck_assert_msg(strstr(r->out, "no gm_nosuchmarket.so in"), "%s", r->out);
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
                    strstr(r->err, dead) && strstr(r->err, "is gmd running?"),
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
  ck_assert_msg(
      strstr(r->err, "no method \"nosuch\"") && strstr(r->err, "clock.set"),
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
  gm_test_echo_stop(&e);
  unlink(path);
  rmdir(dir);
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
  suite_add_tcase(s, tc);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
