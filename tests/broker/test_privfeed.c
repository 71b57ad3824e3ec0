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

/* Starts with: the rule a kept prefix applies to a topic. */
static int starts(const char *topic, const char *prefix) {
  return strncmp(topic, prefix, strlen(prefix)) == 0;
}

/* Reads what d has now (nothing more within 50 ms); the topics joined by
   '|' in arrival order. */
static const char *drain(void *d) {
  static char out[4096];
  out[0] = 0;
  int ms = 50;
  zmq_setsockopt(d, ZMQ_RCVTIMEO, &ms, sizeof ms);
  for (;;) {
    char t[256];
    int n = zmq_recv(d, t, sizeof t - 1, 0);
    if (n < 0) break;
    t[n] = 0;
    int more = 0;
    size_t ml = sizeof more;
    char junk[512];
    for (;;) {
      zmq_getsockopt(d, ZMQ_RCVMORE, &more, &ml);
      if (!more) break;
      zmq_recv(d, junk, sizeof junk, 0);
    }
    if (out[0]) strcat(out, "|");
    strcat(out, t);
  }
  return out;
}

/*
 * Delivery picks the connections by the event's audience, not by walking
 * them all: each of many connections, subscribed to its own audience, to
 * part of it, to several, or to wide prefixes ("", "@", "@p:"), gets
 * exactly the events one of its prefixes starts, once each, in order; and
 * keeps doing so as subscriptions come and go.
 */
START_TEST(each_connection_gets_exactly_what_its_prefixes_start) {
  enum { N = 60 };
  void *ctx = zmq_ctx_new();
  char err[256];
  gm__privfeed *pf =
      gm__privfeed_new(ctx, "inproc://pfi", NULL, err, sizeof err);
  ck_assert_msg(pf != NULL, "%s", err);
  static const char *topics[] = {"@p:p0 m.e",  "@p:p1 m.e",  "@p:p10 m.e",
                                 "@p:p1 n.e",  "@r:r0 m.e",  "@r:r1 m.f",
                                 "@r:r10 m.e", "@p:p59 m.e", "@r:r2 x.y"};
  enum { T = sizeof topics / sizeof *topics };
  void *d[N];
  /* What connection i asked for: up to 3 prefixes. */
  char asked[N][3][32];
  int nasked[N];
  for (int i = 0; i < N; i++) {
    d[i] = zmq_socket(ctx, ZMQ_DEALER);
    int zero = 0;
    zmq_setsockopt(d[i], ZMQ_LINGER, &zero, sizeof zero);
    ck_assert_int_eq(zmq_connect(d[i], "inproc://pfi"), 0);
    nasked[i] = 0;
    switch (i % 6) {
      case 0:
        snprintf(asked[i][nasked[i]++], 32, "@p:p%d ", i);
        break;
      case 1:
        snprintf(asked[i][nasked[i]++], 32, "@p:p%d m.", i);
        break;
      case 2:
        snprintf(asked[i][nasked[i]++], 32, "@r:r%d ", i % 3);
        snprintf(asked[i][nasked[i]++], 32, "@p:p%d ", i);
        break;
      case 3:
        snprintf(asked[i][nasked[i]++], 32, "@r:r1 m.f");
        break;
      case 4:
        snprintf(asked[i][nasked[i]++], 32, i == 4 ? "" : "@p:");
        break;
      default: /* two prefixes of one audience: each event once */
        snprintf(asked[i][nasked[i]++], 32, "@p:p1 ");
        snprintf(asked[i][nasked[i]++], 32, "@p:p1 m.");
        break;
    }
    for (int k = 0; k < nasked[i]; k++) {
      char m[40];
      m[0] = 1;
      size_t l = strlen(asked[i][k]);
      memcpy(m + 1, asked[i][k], l);
      zmq_send(d[i], m, l + 1, 0);
    }
  }
  int want_msgs = 0;
  for (int i = 0; i < N; i++) want_msgs += nasked[i];
  for (int got = 0, tries = 0; got < want_msgs && tries < 500; tries++) {
    int n = gm__privfeed_read(pf, 64, 1000);
    got += n;
    if (!n) zmq_poll(NULL, 0, 10);
  }
  for (int round = 0; round < 2; round++) {
    for (int t = 0; t < T; t++)
      gm__privfeed_deliver(pf, topics[t], strlen(topics[t]), "x", 1);
    for (int i = 0; i < N; i++) {
      char want[4096] = "";
      for (int t = 0; t < T; t++) {
        int match = 0;
        for (int k = 0; k < nasked[i]; k++)
          match |= starts(topics[t], asked[i][k]);
        if (!match) continue;
        if (want[0]) strcat(want, "|");
        strcat(want, topics[t]);
      }
      char got[4096];
      snprintf(got, sizeof got, "%s", drain(d[i]));
      ck_assert_msg(strcmp(got, want) == 0,
                    "round %d connection %d: got \"%s\", want \"%s\"", round, i,
                    got, want);
    }
    /* Then every connection drops its first prefix. */
    for (int i = 0; i < N; i++) {
      char m[40];
      m[0] = 0;
      size_t l = strlen(asked[i][0]);
      memcpy(m + 1, asked[i][0], l);
      zmq_send(d[i], m, l + 1, 0);
      for (int k = 1; k < nasked[i]; k++) strcpy(asked[i][k - 1], asked[i][k]);
      nasked[i]--;
    }
    for (int got = 0, tries = 0; got < N && tries < 500; tries++) {
      int n = gm__privfeed_read(pf, 64, 1000);
      got += n;
      if (!n) zmq_poll(NULL, 0, 10);
    }
  }
  for (int i = 0; i < N; i++) zmq_close(d[i]);
  gm__privfeed_destroy(&pf);
  zmq_ctx_term(ctx);
}
END_TEST

int main(void) {
  Suite *s = suite_create("privfeed");
  TCase *tc = tcase_create("privfeed");
  tcase_add_test(tc, a_participant_keeps_only_its_own_and_its_roles_topics);
  tcase_add_test(tc, the_default_endpoint_follows_the_feed);
  tcase_add_test(tc, a_silent_connection_is_forgotten_after_its_lease);
  tcase_add_test(tc, each_connection_gets_exactly_what_its_prefixes_start);
  suite_add_tcase(s, tc);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
