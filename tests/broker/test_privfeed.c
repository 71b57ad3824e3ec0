/*
 * The private feed's rule (what of a subscription a participant may keep),
 * its default endpoint, and its lease, without a broker: the ROUTER on
 * inproc with a DEALER subscriber in the same process.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "privfeed.h"

/* The kept prefixes for req, joined with '|' ("" when refused). */
static const char *kept(const char *who, const char *roles, const char *req) {
  static char out[512];
  char *got[64];
  size_t n = gm__privfeed_allowed(who, roles, req, strlen(req), got, 64);
  out[0] = 0;
  for (size_t i = 0; i < n; i++) {
    if (i) strcat(out, "|");
    strcat(out, got[i]);
    free(got[i]);
  }
  return out;
}

START_TEST(a_participant_keeps_only_its_own_and_its_roles_topics) {
  ck_assert_str_eq(kept("alice", "buyer", ""), "@p:alice |@r:buyer ");
  ck_assert_str_eq(kept("alice", "buyer", "@"), "@p:alice |@r:buyer ");
  ck_assert_str_eq(kept("alice", "buyer,seller", "@r:"),
                   "@r:buyer |@r:seller ");
  /* Without the space, "@p:alice" would also match alice2's topics. */
  ck_assert_str_eq(kept("alice", "buyer", "@p:alice"), "@p:alice ");
  ck_assert_str_eq(kept("alice", "buyer", "@p:ali"), "@p:alice ");
  ck_assert_str_eq(kept("alice", "buyer", "@p:alice carbon."),
                   "@p:alice carbon.");
  ck_assert_str_eq(kept("alice", "buyer", "@r:buyer carbon.order"),
                   "@r:buyer carbon.order");
  ck_assert_str_eq(kept("bob", "seller", "@p:alice"), "");
  ck_assert_str_eq(kept("bob", "seller", "@p:alice carbon."), "");
  ck_assert_str_eq(kept("alice2", "seller", "@p:alice "), "");
  ck_assert_str_eq(kept("bob", "seller", "@r:buyer"), "");
  ck_assert_str_eq(kept("bob", "seller", "carbon."), "");
  ck_assert_str_eq(kept("bob", "seller", "@x"), "");
  ck_assert_str_eq(kept("bob", "", "@"), "@p:bob ");
  /* An admin follows every role, never another participant. */
  ck_assert_str_eq(kept("admin", "admin", ""), "@p:admin |@r:");
  ck_assert_str_eq(kept("carol", "buyer,admin", "@r:bank x."), "@r:bank x.");
  ck_assert_str_eq(kept("carol", "buyer,admin", "@p:alice"), "");
  /* Development mode: as asked. */
  ck_assert_str_eq(kept(NULL, NULL, ""), "");
  ck_assert_str_eq(kept(NULL, NULL, "@p:alice "), "@p:alice ");
  char *one[1];
  ck_assert_uint_eq(gm__privfeed_allowed(NULL, NULL, "", 0, one, 1), 1);
  free(one[0]);
}
END_TEST

START_TEST(the_default_endpoint_follows_the_feed) {
  char out[128];
  ck_assert_int_eq(
      gm__privfeed_default_endpoint("tcp://127.0.0.1:7471", out, sizeof out),
      0);
  ck_assert_str_eq(out, "tcp://127.0.0.1:7472");
  ck_assert_int_eq(
      gm__privfeed_default_endpoint("ipc:///tmp/f.sock", out, sizeof out), 0);
  ck_assert_str_eq(out, "ipc:///tmp/f.sock.private");
  ck_assert_int_eq(
      gm__privfeed_default_endpoint("inproc://feed", out, sizeof out), -1);
  ck_assert_int_eq(
      gm__privfeed_default_endpoint("tcp://*:65535", out, sizeof out), -1);
}
END_TEST

/* Receives one message's topic from d within 1 s; "" when none came. */
static const char *next_topic(void *d) {
  static char t[256];
  int ms = 1000;
  zmq_setsockopt(d, ZMQ_RCVTIMEO, &ms, sizeof ms);
  int n = zmq_recv(d, t, sizeof t - 1, 0);
  t[n > 0 ? n : 0] = 0;
  int more = 0;
  size_t ml = sizeof more;
  char junk[512];
  for (;;) {
    zmq_getsockopt(d, ZMQ_RCVMORE, &more, &ml);
    if (n < 0 || !more) break;
    zmq_recv(d, junk, sizeof junk, 0);
  }
  return t;
}

START_TEST(a_silent_connection_is_forgotten_after_its_lease) {
  void *ctx = zmq_ctx_new();
  char err[256];
  gm__privfeed *pf =
      gm__privfeed_new(ctx, "inproc://pf", NULL, err, sizeof err);
  ck_assert_msg(pf != NULL, "%s", err);
  void *d = zmq_socket(ctx, ZMQ_DEALER);
  int zero = 0;
  zmq_setsockopt(d, ZMQ_LINGER, &zero, sizeof zero);
  ck_assert_int_eq(zmq_connect(d, "inproc://pf"), 0);
  zmq_send(d, "\1@p:alice ", 10, 0);
  for (int i = 0; i < 100 && gm__privfeed_read(pf, 16, 1000) == 0; i++)
    zmq_poll(NULL, 0, 10);
  gm__privfeed_deliver(pf, "@p:alice m.e", 12, "x", 1);
  gm__privfeed_deliver(pf, "@p:bob m.e", 10, "x", 1);
  gm__privfeed_deliver(pf, "@p:alice m.f", 12, "x", 1);
  ck_assert_str_eq(next_topic(d), "@p:alice m.e");
  ck_assert_str_eq(next_topic(d), "@p:alice m.f");
  /* Each audience counts apart. */
  ck_assert_uint_eq(gm__privfeed_next_seq(pf, "@p:alice m.e", 12), 1);
  ck_assert_uint_eq(gm__privfeed_next_seq(pf, "@p:bob m.e", 10), 1);
  ck_assert_uint_eq(gm__privfeed_next_seq(pf, "@p:alice n.e", 12), 2);
  gm__privfeed_expire(pf, 1000 + GM_PRIVFEED_LEASE_MS - 1);
  gm__privfeed_deliver(pf, "@p:alice m.g", 12, "x", 1);
  ck_assert_str_eq(next_topic(d), "@p:alice m.g");
  gm__privfeed_expire(pf, 1000 + GM_PRIVFEED_LEASE_MS + 1);
  gm__privfeed_deliver(pf, "@p:alice m.h", 12, "x", 1);
  ck_assert_str_eq(next_topic(d), "");
  zmq_close(d);
  gm__privfeed_destroy(&pf);
  ck_assert_ptr_null(pf);
  zmq_ctx_term(ctx);
}
END_TEST

int main(void) {
  Suite *s = suite_create("privfeed");
  TCase *tc = tcase_create("privfeed");
  tcase_add_test(tc, a_participant_keeps_only_its_own_and_its_roles_topics);
  tcase_add_test(tc, the_default_endpoint_follows_the_feed);
  tcase_add_test(tc, a_silent_connection_is_forgotten_after_its_lease);
  suite_add_tcase(s, tc);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
