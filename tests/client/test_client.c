/*
 * libgmclient against real ZeroMQ peers in the test: request/reply, id
 * matching, lazy-pirate retries, unreachable brokers, oversized replies,
 * pipelining, the feed, CURVE, keys.
 */
#include <check.h>
#include <errno.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <zmq.h>

#include "echo_server.h"
#include "greenmarket.pb-c.h"
#include "greenmarket/text.h"

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static gm_client *client(const char *endpoint, int timeout_ms, int retries) {
  gm_client_options o;
  gm_client_options_init(&o);
  o.timeout_ms = timeout_ms;
  o.retries = retries;
  o.dev_participant = "alice";
  gm_client *c = gm_client_new(endpoint, &o);
  ck_assert_msg(c != NULL, "%s", gm_client_last_error());
  return c;
}

/* gm.ping with `text`; returns the status, echo copied into result. */
static gm_status ping(gm_client *c, const char *text, gm_result *r) {
  Gm__PingRequest req = GM__PING_REQUEST__INIT;
  req.echo = (char *)text;
  return gm_client_call(c, "gm", "ping", NULL, &req.base,
                        &gm__ping_reply__descriptor, r);
}

/* The version is the release's, as the shared library's name carries it. */
START_TEST(version_is_the_release) {
  const char *v = gm_client_version();
  ck_assert_ptr_nonnull(v);
  ck_assert_str_eq(v, GM_TEST_VERSION);
  unsigned major, minor, patch;
  char rest;
  ck_assert_int_eq(sscanf(v, "%u.%u.%u%c", &major, &minor, &patch, &rest), 3);
}
END_TEST

START_TEST(request_reply) {
  gm_test_echo *e = gm_test_echo_start(NULL);
  gm_client *c = client(gm_test_echo_endpoint(e), 2000, 0);
  gm_result r;
  ck_assert_int_eq(ping(c, "hello", &r), GM_OK);
  ck_assert(r.answered);
  ck_assert_ptr_nonnull(r.reply);
  ck_assert_str_eq(((Gm__PingReply *)r.reply)->echo, "hello");
  gm_test_echo_req seen = gm_test_echo_get(e, 0);
  ck_assert_uint_eq(seen.version, 1);
  ck_assert_str_eq(seen.market, "gm");
  ck_assert_str_eq(seen.method, "ping");
  ck_assert_str_eq(seen.idempotency_key, "");
  ck_assert_str_eq(seen.dev_participant, "alice");
  ck_assert(seen.request_id == r.request_id);
  gm_result_clear(&r);
  ck_assert_ptr_null(r.reply);

  /* Raw bodies, and a second call gets a new id. */
  gm_client_call_raw(c, "sample", "order.place", "key-1", "\x0a\x01x", 3, NULL,
                     &r);
  ck_assert_int_eq(r.status, GM_OK);
  ck_assert_uint_eq(r.body_len, 3);
  ck_assert_int_eq(memcmp(r.body, "\x0a\x01x", 3), 0);
  seen = gm_test_echo_get(e, 1);
  ck_assert_str_eq(seen.idempotency_key, "key-1");
  ck_assert(seen.request_id == r.request_id);
  ck_assert(seen.request_id != gm_test_echo_get(e, 0).request_id);
  gm_result_clear(&r);
  gm_client_destroy(&c);
  ck_assert_ptr_null(c);
  gm_client_destroy(&c); /* idempotent */
  gm_test_echo_stop(&e);
}
END_TEST

START_TEST(broker_errors_come_through) {
  gm_test_echo_opts o = {0};
  o.status = GM_FAILED_PRECONDITION;
  o.message = "market closed; the next session opens 13:00";
  gm_test_echo *e = gm_test_echo_start(&o);
  gm_client *c = client(gm_test_echo_endpoint(e), 2000, 0);
  gm_result r;
  ck_assert_int_eq(ping(c, "x", &r), GM_FAILED_PRECONDITION);
  ck_assert(r.answered);
  ck_assert_str_eq(r.message, o.message);
  ck_assert_ptr_null(r.reply);
  ck_assert_str_eq(gm_status_name(r.status), "FAILED_PRECONDITION");
  gm_result_clear(&r);
  gm_client_destroy(&c);
  gm_test_echo_stop(&e);
}
END_TEST

START_TEST(replies_to_other_ids_are_ignored) {
  gm_test_echo_opts o = {0};
  o.wrong_id_first = 1;
  gm_test_echo *e = gm_test_echo_start(&o);
  gm_client *c = client(gm_test_echo_endpoint(e), 2000, 0);
  gm_result r;
  for (int i = 0; i < 3; i++) {
    ck_assert_int_eq(ping(c, "mine", &r), GM_OK);
    ck_assert_str_eq(((Gm__PingReply *)r.reply)->echo, "mine");
    ck_assert(r.request_id == gm_test_echo_get(e, (size_t)i).request_id);
    gm_result_clear(&r);
  }
  gm_client_destroy(&c);
  gm_test_echo_stop(&e);
}
END_TEST

START_TEST(timeout_resends_the_same_request) {
  gm_test_echo_opts o = {0};
  o.drop_first = 2;
  gm_test_echo *e = gm_test_echo_start(&o);
  gm_client *c = client(gm_test_echo_endpoint(e), 300, 2);
  gm_result r;
  Gm__ClockSetRequest req = GM__CLOCK_SET_REQUEST__INIT;
  req.time_ms = 1795483800000;
  int64_t t0 = now_ms();
  ck_assert_int_eq(gm_client_call(c, "gm", "clock.set", "idem-42", &req.base,
                                  &gm__clock_reply__descriptor, &r),
                   GM_OK);
  int64_t took = now_ms() - t0;
  ck_assert_msg(took >= 550 && took < 2000, "took %lld ms", (long long)took);
  ck_assert(((Gm__ClockReply *)r.reply)->time_ms == 1795483800000);
  ck_assert_uint_eq(gm_test_echo_count(e), 3);
  for (size_t i = 0; i < 3; i++) {
    gm_test_echo_req s = gm_test_echo_get(e, i);
    ck_assert(s.request_id == r.request_id);
    ck_assert_str_eq(s.idempotency_key, "idem-42");
    ck_assert_str_eq(s.method, "clock.set");
  }
  gm_result_clear(&r);
  /* The client still works after its socket was replaced. */
  ck_assert_int_eq(ping(c, "after", &r), GM_OK);
  gm_result_clear(&r);
  gm_client_destroy(&c);
  gm_test_echo_stop(&e);
}
END_TEST

START_TEST(unreachable_is_unavailable_in_time) {
  char dead[64];
  gm_test_dead_endpoint(dead);
  gm_client *c = client(dead, 200, 2);
  gm_result r;
  int64_t t0 = now_ms();
  ck_assert_int_eq(ping(c, "x", &r), GM_UNAVAILABLE);
  int64_t took = now_ms() - t0;
  /* timeout * (retries + 1), plus scheduling slack. */
  ck_assert_msg(took >= 590 && took <= 900, "took %lld ms", (long long)took);
  ck_assert(!r.answered);
  ck_assert_msg(strstr(r.message, dead), "%s", r.message);
  ck_assert_msg(strstr(r.message, "is gmd running?"), "%s", r.message);
  ck_assert_msg(strstr(r.message, "3 attempts of 200 ms"), "%s", r.message);
  gm_result_clear(&r);
  gm_client_destroy(&c);
}
END_TEST

START_TEST(oversized_reply_is_refused) {
  gm_test_echo_opts o = {0};
  o.reply_body_size = 64 * 1024;
  gm_test_echo *e = gm_test_echo_start(&o);
  gm_client_options opt;
  gm_client_options_init(&opt);
  opt.max_reply = 4096;
  opt.timeout_ms = 2000;
  gm_client *c = gm_client_new(gm_test_echo_endpoint(e), &opt);
  ck_assert_ptr_nonnull(c);
  gm_result r;
  ck_assert_int_eq(ping(c, "x", &r), GM_RESOURCE_EXHAUSTED);
  ck_assert_ptr_null(r.reply);
  ck_assert_ptr_null(r.body);
  ck_assert_msg(strstr(r.message, "limit of 4096 bytes"), "%s", r.message);
  gm_result_clear(&r);
  gm_client_destroy(&c);
  gm_test_echo_stop(&e);
}
END_TEST

START_TEST(undecodable_reply_body_is_internal) {
  gm_test_echo *e = gm_test_echo_start(NULL);
  gm_client *c = client(gm_test_echo_endpoint(e), 2000, 0);
  gm_result r;
  /* Echoed back, "\xff" is a truncated varint tag: no PingReply. */
  gm_client_call_raw(c, "gm", "ping", NULL, "\xff", 1,
                     &gm__ping_reply__descriptor, &r);
  ck_assert_int_eq(r.status, GM_INTERNAL);
  ck_assert_msg(strstr(r.message, "does not decode as gm.PingReply"), "%s",
                r.message);
  gm_result_clear(&r);
  gm_client_destroy(&c);
  gm_test_echo_stop(&e);
}
END_TEST

/*
 * A pipelined request's reply over max_reply is that request's, not the
 * call's: gm_client_call drops it as it drops the smaller ones (before, the
 * call returned RESOURCE_EXHAUSTED for it and left its own reply queued);
 * from gm_client_recv its request_id says which request it answers.
 */
START_TEST(an_oversized_pipelined_reply_is_not_the_calls) {
  gm_test_echo *e = gm_test_echo_start(NULL); /* echoes the body */
  gm_client_options opt;
  gm_client_options_init(&opt);
  opt.max_reply = 4096;
  opt.timeout_ms = 2000;
  opt.retries = 0;
  gm_client *c = gm_client_new(gm_test_echo_endpoint(e), &opt);
  ck_assert_ptr_nonnull(c);
  static char big[8192];
  uint64_t id;
  ck_assert_int_eq(gm_client_send(c, "gm", "ping", NULL, big, sizeof big, &id),
                   GM_OK);
  /* Its reply is queued before the call's. */
  struct timespec pause = {0, 5 * 1000 * 1000};
  for (int i = 0; i < 400 && gm_test_echo_count(e) < 1; i++)
    nanosleep(&pause, NULL);
  ck_assert_int_eq(gm_test_echo_count(e), 1);
  pause.tv_nsec = 50 * 1000 * 1000;
  nanosleep(&pause, NULL);
  gm_result r;
  ck_assert_int_eq(ping(c, "mine", &r), GM_OK);
  ck_assert(r.answered);
  gm_result_clear(&r);
  ck_assert_int_eq(gm_client_send(c, "gm", "ping", NULL, big, sizeof big, &id),
                   GM_OK);
  ck_assert_int_eq(gm_client_recv(c, 2000, NULL, &r), GM_RESOURCE_EXHAUSTED);
  ck_assert(r.request_id == id);
  ck_assert_msg(strstr(r.message, "limit of 4096 bytes"), "%s", r.message);
  gm_result_clear(&r);
  gm_client_destroy(&c);
  gm_test_echo_stop(&e);
}
END_TEST

START_TEST(pipelining) {
  enum { N = 500 };
  gm_test_echo *e = gm_test_echo_start(NULL);
  gm_client *c = client(gm_test_echo_endpoint(e), 2000, 0);
  static int got[N + 1];
  uint64_t first = 0;
  for (int i = 0; i < N; i++) {
    uint64_t id;
    ck_assert_int_eq(gm_client_send(c, "gm", "ping", NULL, NULL, 0, &id),
                     GM_OK);
    if (i == 0) first = id;
    ck_assert(id == first + (uint64_t)i);
  }
  for (int i = 0; i < N; i++) {
    gm_result r;
    ck_assert_int_eq(gm_client_recv(c, 2000, &gm__ping_reply__descriptor, &r),
                     GM_OK);
    ck_assert(r.request_id >= first && r.request_id < first + N);
    got[r.request_id - first]++;
    gm_result_clear(&r);
  }
  for (int i = 0; i < N; i++) ck_assert_int_eq(got[i], 1);
  gm_result r;
  ck_assert_int_eq(gm_client_recv(c, 50, NULL, &r), GM_UNAVAILABLE);
  ck_assert(!r.answered);
  gm_result_clear(&r);
  gm_client_destroy(&c);
  gm_test_echo_stop(&e);
}
END_TEST

/* One thread serves several connections: gm_client_poll says which have a
   reply waiting, gm_client_recv(c, 0, ...) takes it. */
START_TEST(poll_waits_on_many_clients) {
  enum { N = 70 }; /* more than the library's on-stack poll set */
  gm_test_echo *e = gm_test_echo_start(NULL);
  gm_client *c[N];
  unsigned char ready[N];
  for (int i = 0; i < N; i++) c[i] = client(gm_test_echo_endpoint(e), 2000, 0);
  /* Nothing sent: nothing ready, after the timeout. */
  int64_t t0 = now_ms();
  ck_assert_int_eq(gm_client_poll(c, N, 100, ready), 0);
  ck_assert_int_ge(now_ms() - t0, 90);
  for (int i = 0; i < N; i++) ck_assert_int_eq(ready[i], 0);
  /* Requests on every third client only: only those become ready. */
  int want = 0, got = 0;
  for (int i = 0; i < N; i += 3, want++)
    ck_assert_int_eq(gm_client_send(c[i], "gm", "ping", NULL, NULL, 0, NULL),
                     GM_OK);
  int64_t deadline = now_ms() + 5000;
  while (got < want && now_ms() < deadline) {
    int n = gm_client_poll(c, N, 1000, ready);
    ck_assert_int_ge(n, 0);
    for (int i = 0; i < N; i++) {
      if (!ready[i]) continue;
      ck_assert_int_eq(i % 3, 0);
      gm_result r;
      ck_assert_int_eq(gm_client_recv(c[i], 0, NULL, &r), GM_OK);
      ck_assert(r.answered);
      gm_result_clear(&r);
      got++;
    }
  }
  ck_assert_int_eq(got, want);
  /* NULL entries are skipped. */
  gm_client *some[3] = {NULL, c[0], NULL};
  ck_assert_int_eq(gm_client_poll(some, 3, 10, ready), 0);
  for (int i = 0; i < N; i++) gm_client_destroy(&c[i]);
  gm_test_echo_stop(&e);
}
END_TEST

/* A `type` socket of ctx bound to a free loopback port, no linger; its
   endpoint into ep. */
static void *bound(void *ctx, int type, char ep[64]) {
  void *s = zmq_socket(ctx, type);
  int linger = 0;
  zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof linger);
  ck_assert_int_eq(zmq_bind(s, "tcp://127.0.0.1:*"), 0);
  size_t len = 64;
  zmq_getsockopt(s, ZMQ_LAST_ENDPOINT, ep, &len);
  return s;
}

START_TEST(feed_delivers_subscribed_events) {
  char ep[64], pep[64];
  void *ctx = zmq_ctx_new(), *pub = bound(ctx, ZMQ_PUB, ep);
  /* A private feed that refuses public prefixes as a broker from before
     2026-12-05 does: the library moves them to the SUB. */
  void *router = bound(ctx, ZMQ_ROUTER, pep);
  gm_client_options o;
  gm_client_options_init(&o);
  o.private_feed = pep;
  gm_feed *f = gm_feed_new(ep, &o);
  ck_assert_msg(f != NULL, "%s", gm_client_last_error());
  ck_assert_int_eq(gm_feed_subscribe(f, "sample."), GM_OK);
  /* Longer than any topic: refused here, never sent (the broker drops a
     connection that sends one, and every subscription with it). */
  char longp[300];
  memset(longp, 'x', 256);
  longp[256] = 0;
  ck_assert_int_eq(gm_feed_subscribe(f, longp), GM_INVALID_ARGUMENT);
  ck_assert_msg(strstr(gm_client_last_error(), "prefix of 256 bytes") &&
                    strstr(gm_client_last_error(), "at most 255 bytes"),
                "%s", gm_client_last_error());
  longp[0] = '@';
  ck_assert_int_eq(gm_feed_subscribe(f, longp), GM_INVALID_ARGUMENT);
  longp[255] = 0;
  longp[0] = 'x';
  ck_assert_int_eq(gm_feed_subscribe(f, longp), GM_OK);
  ck_assert_int_eq(gm_feed_unsubscribe(f, longp), GM_OK);

  Gm__Event ev = GM__EVENT__INIT;
  ev.market = "sample";
  ev.event = "trade";
  ev.time_ms = 1795483800123;
  ev.type = "gm.sample.Trade";
  ev.body.data = (uint8_t *)"\x08\x01";
  ev.body.len = 2;
  uint8_t buf[256];
  size_t n = gm__event__pack(&ev, buf);
  char *topic = NULL;
  Gm__Event *got = NULL;
  /* A SUB joins late (slow joiner): publish until it hears. */
  for (int i = 0; i < 100 && !got; i++) {
    char rid[256], m[300];
    int rl;
    while ((rl = zmq_recv(router, rid, sizeof rid, ZMQ_DONTWAIT)) > 0) {
      int ml = zmq_recv(router, m, sizeof m, 0);
      if (ml >= 2 && m[0] == 1 && m[1] != '@') {
        static const char why[] = "participant x may see only private topics";
        zmq_send(router, rid, (size_t)rl, ZMQ_SNDMORE);
        zmq_send(router, "!", 1, ZMQ_SNDMORE);
        zmq_send(router, m + 1, (size_t)ml - 1, ZMQ_SNDMORE);
        zmq_send(router, why, sizeof why - 1, 0);
      }
    }
    zmq_send(pub, "other.thing", 11, ZMQ_SNDMORE);
    zmq_send(pub, buf, n, 0);
    ev.seq = (uint64_t)i;
    n = gm__event__pack(&ev, buf);
    zmq_send(pub, "sample.trade", 12, ZMQ_SNDMORE);
    zmq_send(pub, buf, n, 0);
    gm_status s = gm_feed_recv(f, &topic, &got, 50);
    ck_assert(s == GM_OK || s == GM_UNAVAILABLE);
  }
  ck_assert_ptr_nonnull(got);
  ck_assert_str_eq(topic, "sample.trade"); /* never other.thing */
  ck_assert_str_eq(got->type, "gm.sample.Trade");
  ck_assert(got->time_ms == 1795483800123);
  ck_assert_uint_eq(got->body.len, 2);
  free(topic);
  gm_feed_event_free(&got);
  ck_assert_ptr_null(got);

  /* A malformed message is reported and skipped, not fatal. */
  for (;;) { /* drain what the loop above queued */
    if (gm_feed_recv(f, &topic, &got, 100) == GM_UNAVAILABLE) break;
    free(topic);
    gm_feed_event_free(&got);
  }
  zmq_send(pub, "sample.junk", 11, ZMQ_SNDMORE);
  zmq_send(pub, "\xff\xff", 2, 0);
  ck_assert_int_eq(gm_feed_recv(f, &topic, &got, 2000), GM_INVALID_ARGUMENT);
  ck_assert_str_eq(topic, "sample.junk");
  ck_assert_ptr_null(got);
  free(topic);
  ck_assert_int_eq(gm_feed_recv(f, &topic, &got, 50), GM_UNAVAILABLE);
  gm_feed_destroy(&f);
  ck_assert_ptr_null(f);
  zmq_close(router);
  zmq_close(pub);
  zmq_ctx_term(ctx);
}
END_TEST

/*
 * A broker from before 2026-12-05 whose connection already holds its 256
 * private prefixes refuses a public one with its cap's reason, not with
 * "may see only private topics": that is an older broker too, and the
 * library moves the prefix to the SUB (it reported the refusal and the
 * prefix got nothing).  A newer broker's cap refusal stands.
 */
START_TEST(feed_at_an_older_brokers_cap_moves_public_prefixes_to_the_sub) {
  char ep[64], pep[64];
  void *ctx = zmq_ctx_new(), *pub = bound(ctx, ZMQ_PUB, ep);
  void *router = bound(ctx, ZMQ_ROUTER, pep);
  gm_client_options o;
  gm_client_options_init(&o);
  o.private_feed = pep;
  gm_feed *f = gm_feed_new(ep, &o);
  ck_assert_msg(f != NULL, "%s", gm_client_last_error());
  ck_assert_int_eq(gm_feed_subscribe(f, "sample."), GM_OK);
  Gm__Event ev = GM__EVENT__INIT;
  ev.market = "sample";
  ev.event = "trade";
  ev.type = "gm.sample.Trade";
  uint8_t buf[256];
  size_t n = gm__event__pack(&ev, buf);
  char *topic = NULL;
  Gm__Event *got = NULL;
  for (int i = 0; i < 100 && !got; i++) {
    char rid[256], m[300];
    int rl;
    while ((rl = zmq_recv(router, rid, sizeof rid, ZMQ_DONTWAIT)) > 0) {
      int ml = zmq_recv(router, m, sizeof m, 0);
      if (ml >= 2 && m[0] == 1 && m[1] != '@') {
        static const char why[] =
            "a connection holds at most 256 private prefixes; unsubscribe "
            "some or use a shorter prefix";
        zmq_send(router, rid, (size_t)rl, ZMQ_SNDMORE);
        zmq_send(router, "!", 1, ZMQ_SNDMORE);
        zmq_send(router, m + 1, (size_t)ml - 1, ZMQ_SNDMORE);
        zmq_send(router, why, sizeof why - 1, 0);
      }
    }
    zmq_send(pub, "sample.trade", 12, ZMQ_SNDMORE);
    zmq_send(pub, buf, n, 0);
    gm_status s = gm_feed_recv(f, &topic, &got, 50);
    ck_assert_msg(s == GM_OK || s == GM_UNAVAILABLE, "%d: %s", s,
                  gm_client_last_error());
  }
  ck_assert_ptr_nonnull(got);
  ck_assert_str_eq(topic, "sample.trade");
  free(topic);
  gm_feed_event_free(&got);
  gm_feed_destroy(&f);

  /* A newer broker's cap: reported, the prefix not moved. */
  f = gm_feed_new(ep, &o);
  ck_assert_msg(f != NULL, "%s", gm_client_last_error());
  ck_assert_int_eq(gm_feed_subscribe(f, "sample."), GM_OK);
  gm_status s = GM_UNAVAILABLE;
  for (int i = 0; i < 100 && s == GM_UNAVAILABLE; i++) {
    char rid[256], m[300];
    int rl;
    while ((rl = zmq_recv(router, rid, sizeof rid, ZMQ_DONTWAIT)) > 0) {
      int ml = zmq_recv(router, m, sizeof m, 0);
      if (ml >= 2 && m[0] == 1 && m[1] != '@') {
        static const char why[] =
            "a connection holds at most 256 prefixes (private and public); "
            "unsubscribe some or use a shorter prefix";
        zmq_send(router, rid, (size_t)rl, ZMQ_SNDMORE);
        zmq_send(router, "!", 1, ZMQ_SNDMORE);
        zmq_send(router, m + 1, (size_t)ml - 1, ZMQ_SNDMORE);
        zmq_send(router, why, sizeof why - 1, 0);
      }
    }
    s = gm_feed_recv(f, &topic, &got, 50);
  }
  ck_assert_int_eq(s, GM_PERMISSION_DENIED);
  ck_assert_str_eq(topic, "sample.");
  ck_assert_msg(strstr(gm_client_last_error(), "(private and public)"), "%s",
                gm_client_last_error());
  free(topic);
  gm_feed_destroy(&f);
  zmq_close(router);
  zmq_close(pub);
  zmq_ctx_term(ctx);
}
END_TEST

/* A private feed nobody answers (a port a firewall closes, a publisher
   with no private feed): it refuses nothing, so the library cannot tell
   an older broker; its handshake never succeeds, and after the feed's
   handshake bound the public prefixes go to the SUB. */
START_TEST(feed_whose_private_feed_never_answers_uses_the_sub) {
  char ep[64], pep[64];
  void *ctx = zmq_ctx_new(), *pub = bound(ctx, ZMQ_PUB, ep);
  /* A port nobody listens on: bound, then closed. */
  zmq_close(bound(ctx, ZMQ_ROUTER, pep));
  gm_client_options o;
  gm_client_options_init(&o);
  o.private_feed = pep;
  o.feed_handshake_ms = 1000; /* the bound; 5 s by default */
  gm_feed *f = gm_feed_new(ep, &o);
  ck_assert_msg(f != NULL, "%s", gm_client_last_error());
  ck_assert_int_eq(gm_feed_subscribe(f, "sample."), GM_OK);
  Gm__Event ev = GM__EVENT__INIT;
  ev.market = "sample";
  ev.event = "trade";
  uint8_t buf[256];
  size_t n = gm__event__pack(&ev, buf);
  char *topic = NULL;
  Gm__Event *got = NULL;
  /* Published every 50 ms for up to 15 s: the bound is 1 s. */
  for (int i = 0; i < 300 && !got; i++) {
    zmq_send(pub, "sample.trade", 12, ZMQ_SNDMORE);
    zmq_send(pub, buf, n, 0);
    gm_status s = gm_feed_recv(f, &topic, &got, 50);
    ck_assert_msg(s == GM_OK || s == GM_UNAVAILABLE, "%s: %s",
                  gm_status_name(s), gm_client_last_error());
    if (s != GM_OK) {
      free(topic);
      topic = NULL;
    }
  }
  ck_assert_msg(got != NULL, "no public event within 15 s");
  ck_assert_str_eq(topic, "sample.trade");
  free(topic);
  gm_feed_event_free(&got);
  gm_feed_destroy(&f);
  /* A private feed that answers the handshake keeps them, however quiet
     (development mode: no CURVE, the handshake succeeds all the same):
     past the bound nothing comes on the SUB. */
  char qep[64];
  void *quiet = bound(ctx, ZMQ_ROUTER, qep);
  o.private_feed = qep;
  f = gm_feed_new(ep, &o);
  ck_assert_msg(f != NULL, "%s", gm_client_last_error());
  ck_assert_int_eq(gm_feed_subscribe(f, "sample."), GM_OK);
  for (int i = 0; i < 50; i++) { /* 2.5 s */
    zmq_send(pub, "sample.trade", 12, ZMQ_SNDMORE);
    zmq_send(pub, buf, n, 0);
    ck_assert_int_eq(gm_feed_recv(f, &topic, &got, 50), GM_UNAVAILABLE);
    free(topic);
    topic = NULL;
  }
  gm_feed_destroy(&f);
  zmq_close(quiet);
  zmq_close(pub);
  zmq_ctx_term(ctx);
}
END_TEST

/*
 * A private feed that answers only after the handshake bound (the client
 * started before gmd, or during its restart): the public prefixes wait on
 * the SUB meanwhile, and go back to the private feed once its handshake
 * succeeds, so a broker whose feed is closed ([broker] public_feed_sub =
 * off, here: nobody at the feed's port) still sends them its events.
 */
START_TEST(feed_whose_private_feed_answers_late_gets_public_prefixes_back) {
  void *ctx = zmq_ctx_new();
  int linger = 0;
  /* Two ports nobody listens on: the feed's stays closed. */
  char ep[64], pep[64];
  for (int k = 0; k < 2; k++) {
    void *s = zmq_socket(ctx, ZMQ_ROUTER);
    zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof linger);
    ck_assert_int_eq(zmq_bind(s, "tcp://127.0.0.1:*"), 0);
    size_t len = sizeof ep;
    zmq_getsockopt(s, ZMQ_LAST_ENDPOINT, k ? pep : ep, &len);
    zmq_close(s);
  }
  gm_client_options o;
  gm_client_options_init(&o);
  o.private_feed = pep;
  o.feed_handshake_ms = 1000; /* the bound; 5 s by default */
  gm_feed *f = gm_feed_new(ep, &o);
  ck_assert_msg(f != NULL, "%s", gm_client_last_error());
  ck_assert_int_eq(gm_feed_subscribe(f, "sample."), GM_OK);
  char *topic = NULL;
  Gm__Event *got = NULL;
  for (int i = 0; i < 2; i++) { /* past the bound */
    ck_assert_int_eq(gm_feed_recv(f, &topic, &got, 1000), GM_UNAVAILABLE);
    free(topic);
    topic = NULL;
  }
  void *router = zmq_socket(ctx, ZMQ_ROUTER);
  zmq_setsockopt(router, ZMQ_LINGER, &linger, sizeof linger);
  ck_assert_int_eq(zmq_bind(router, pep), 0);
  /* Up to 12 s (two resends): what the router last heard of "sample.". */
  char rid[256];
  int rl = 0, held = 0;
  for (int i = 0; i < 120; i++) {
    char r[256], m[300];
    int l;
    while ((l = zmq_recv(router, r, sizeof r, ZMQ_DONTWAIT)) > 0) {
      int ml = zmq_recv(router, m, sizeof m, 0);
      if (ml == 8 && memcmp(m + 1, "sample.", 7) == 0) {
        held = m[0] == 1;
        memcpy(rid, r, (size_t)l);
        rl = l;
      }
    }
    ck_assert_int_eq(gm_feed_recv(f, &topic, &got, 100), GM_UNAVAILABLE);
    free(topic);
    topic = NULL;
  }
  ck_assert_msg(held, "\"sample.\" never went back to the private feed");
  Gm__Event ev = GM__EVENT__INIT;
  ev.market = "sample";
  ev.event = "trade";
  uint8_t buf[256];
  size_t n = gm__event__pack(&ev, buf);
  zmq_send(router, rid, (size_t)rl, ZMQ_SNDMORE);
  zmq_send(router, "sample.trade", 12, ZMQ_SNDMORE);
  zmq_send(router, buf, n, 0);
  ck_assert_int_eq(gm_feed_recv(f, &topic, &got, 2000), GM_OK);
  ck_assert_str_eq(topic, "sample.trade");
  free(topic);
  gm_feed_event_free(&got);
  gm_feed_destroy(&f);
  zmq_close(router);
  zmq_ctx_term(ctx);
}
END_TEST

/*
 * The private feed comes back (gmd restarted): the subscriptions, public
 * ones included, are sent again as soon as the new connection's handshake
 * succeeds, not at the next resend up to 5 s later (the SUB's come back at
 * once: public events would be lost for up to 5 s after each restart).
 */
START_TEST(feed_resends_its_subscriptions_when_the_private_feed_comes_back) {
  void *ctx = zmq_ctx_new();
  int linger = 0;
  /* The feed's port: nobody listens. */
  char ep[64], pep[64];
  void *s = zmq_socket(ctx, ZMQ_ROUTER);
  zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof linger);
  ck_assert_int_eq(zmq_bind(s, "tcp://127.0.0.1:*"), 0);
  size_t len = sizeof ep;
  zmq_getsockopt(s, ZMQ_LAST_ENDPOINT, ep, &len);
  zmq_close(s);
  void *router = zmq_socket(ctx, ZMQ_ROUTER);
  zmq_setsockopt(router, ZMQ_LINGER, &linger, sizeof linger);
  ck_assert_int_eq(zmq_bind(router, "tcp://127.0.0.1:*"), 0);
  len = sizeof pep;
  zmq_getsockopt(router, ZMQ_LAST_ENDPOINT, pep, &len);
  gm_client_options o;
  gm_client_options_init(&o);
  o.private_feed = pep;
  gm_feed *f = gm_feed_new(ep, &o);
  ck_assert_msg(f != NULL, "%s", gm_client_last_error());
  ck_assert_int_eq(gm_feed_subscribe(f, "sample."), GM_OK);
  char *topic = NULL;
  Gm__Event *got = NULL;
  char r[256], m[300];
  int heard = 0;
  for (int i = 0; i < 20 && !heard; i++) {
    ck_assert_int_eq(gm_feed_recv(f, &topic, &got, 50), GM_UNAVAILABLE);
    free(topic);
    topic = NULL;
    while (zmq_recv(router, r, sizeof r, ZMQ_DONTWAIT) > 0)
      heard |= zmq_recv(router, m, sizeof m, 0) == 8 && m[0] == 1;
  }
  ck_assert(heard);
  /* The broker goes and comes back at once (its port is free a moment
     after the close). */
  zmq_close(router);
  router = zmq_socket(ctx, ZMQ_ROUTER);
  zmq_setsockopt(router, ZMQ_LINGER, &linger, sizeof linger);
  int bound = -1;
  for (int i = 0; i < 100 && bound; i++)
    if ((bound = zmq_bind(router, pep))) usleep(10000);
  ck_assert_int_eq(bound, 0);
  heard = 0;
  for (int i = 0; i < 30 && !heard; i++) { /* 1.5 s */
    ck_assert_int_eq(gm_feed_recv(f, &topic, &got, 50), GM_UNAVAILABLE);
    free(topic);
    topic = NULL;
    while (zmq_recv(router, r, sizeof r, ZMQ_DONTWAIT) > 0)
      heard |= zmq_recv(router, m, sizeof m, 0) == 8 && m[0] == 1 &&
               memcmp(m + 1, "sample.", 7) == 0;
  }
  ck_assert_msg(heard, "\"sample.\" not sent again within 1.5 s");
  gm_feed_destroy(&f);
  zmq_close(router);
  zmq_ctx_term(ctx);
}
END_TEST

START_TEST(curve_with_keys_talks_without_is_refused) {
  char spub[41], ssec[41], cpub[41], csec[41];
  ck_assert_int_eq(gm_keypair(spub, ssec), GM_OK);
  ck_assert_int_eq(gm_keypair(cpub, csec), GM_OK);
  gm_test_echo_opts o = {0};
  o.secret_key = ssec;
  gm_test_echo *e = gm_test_echo_start(&o);

  gm_client_options opt;
  gm_client_options_init(&opt);
  opt.timeout_ms = 2000;
  opt.retries = -1;
  opt.server_public_key = spub;
  opt.public_key = cpub;
  opt.secret_key = csec;
  gm_client *c = gm_client_new(gm_test_echo_endpoint(e), &opt);
  ck_assert_msg(c != NULL, "%s", gm_client_last_error());
  gm_result r;
  ck_assert_int_eq(ping(c, "secret", &r), GM_OK);
  ck_assert_str_eq(((Gm__PingReply *)r.reply)->echo, "secret");
  gm_result_clear(&r);
  gm_client_destroy(&c);

  /* Plain TCP to a CURVE server: the handshake fails, nothing arrives. */
  c = client(gm_test_echo_endpoint(e), 300, -1);
  ck_assert_int_eq(ping(c, "plain", &r), GM_UNAVAILABLE);
  gm_result_clear(&r);
  gm_client_destroy(&c);

  /* The wrong server key: refused the same way. */
  opt.server_public_key = cpub;
  opt.timeout_ms = 300;
  c = gm_client_new(gm_test_echo_endpoint(e), &opt);
  ck_assert_int_eq(ping(c, "wrong", &r), GM_UNAVAILABLE);
  gm_result_clear(&r);
  gm_client_destroy(&c);
  ck_assert_uint_eq(gm_test_echo_count(e), 1);
  gm_test_echo_stop(&e);
}
END_TEST

START_TEST(bad_options_are_explained) {
  gm_client_options o;
  gm_client_options_init(&o);
  o.server_public_key = "too-short";
  ck_assert_ptr_null(gm_client_new("tcp://127.0.0.1:7470", &o));
  ck_assert_msg(strstr(gm_client_last_error(), "40-character Z85"), "%s",
                gm_client_last_error());
  char pub[41], sec[41];
  gm_keypair(pub, sec);
  o.server_public_key = pub;
  ck_assert_ptr_null(gm_client_new("tcp://127.0.0.1:7470", &o));
  ck_assert_msg(strstr(gm_client_last_error(), "gm keygen"), "%s",
                gm_client_last_error());
  ck_assert_ptr_null(gm_client_new("nonsense", NULL));
  ck_assert_msg(strstr(gm_client_last_error(), "tcp://127.0.0.1:7470"), "%s",
                gm_client_last_error());
  ck_assert_ptr_null(gm_client_new("", NULL));
  ck_assert_ptr_null(gm_feed_new("bogus://x", NULL));
  /* An options struct from an older, shorter header still works. */
  gm_test_echo *e = gm_test_echo_start(NULL);
  gm_client_options old;
  gm_client_options_init(&old);
  old.size = offsetof(gm_client_options, retries);
  old.timeout_ms = 2000;
  old.max_reply = 1; /* beyond old.size: must be ignored */
  gm_client *c = gm_client_new(gm_test_echo_endpoint(e), &old);
  ck_assert_ptr_nonnull(c);
  gm_result r;
  ck_assert_int_eq(ping(c, "old", &r), GM_OK);
  gm_result_clear(&r);
  gm_client_destroy(&c);
  /* A program built against the header before feed_handshake_ms calls the
     function gm_client_options_init on its 64-byte struct: the library
     fills that struct and writes nothing past it (it zeroed the 8 bytes
     after it), and the options work with the feed's default handshake. */
  struct {
    struct {
      size_t size;
      int timeout_ms, retries;
      const char *server_public_key, *public_key, *secret_key, *dev_participant;
      size_t max_reply;
      const char *private_feed;
    } o;
    unsigned char after[16];
  } prev;
  ck_assert_uint_eq(sizeof prev.o, offsetof(gm_client_options, private_feed) +
                                       sizeof(const char *));
  memset(&prev, 0xA5, sizeof prev);
  (gm_client_options_init)((gm_client_options *)&prev.o);
  ck_assert_uint_eq(prev.o.size, sizeof prev.o);
  ck_assert_ptr_null(prev.o.private_feed);
  for (size_t i = 0; i < sizeof prev.after; i++)
    ck_assert_msg(prev.after[i] == 0xA5,
                  "gm_client_options_init wrote byte %zu past a struct of %zu "
                  "bytes",
                  i, sizeof prev.o);
  prev.o.timeout_ms = 2000;
  c = gm_client_new(gm_test_echo_endpoint(e), (gm_client_options *)&prev.o);
  ck_assert_ptr_nonnull(c);
  ck_assert_int_eq(ping(c, "prev", &r), GM_OK);
  gm_result_clear(&r);
  gm_client_destroy(&c);
  gm_feed *f =
      gm_feed_new("tcp://127.0.0.1:30001", (gm_client_options *)&prev.o);
  ck_assert_msg(f != NULL, "%s", gm_client_last_error());
  gm_feed_destroy(&f);
  /* The header's macro gives the library the caller's size: all of it. */
  gm_client_options now;
  memset(&now, 0xA5, sizeof now);
  gm_client_options_init(&now);
  ck_assert_uint_eq(now.size, sizeof now);
  ck_assert_int_eq(now.feed_handshake_ms, 0);
  /* A feed's setting out of bounds fails a client too (client.md). */
  now.feed_handshake_ms = 50;
  ck_assert_ptr_null(gm_client_new(gm_test_echo_endpoint(e), &now));
  ck_assert_msg(strstr(gm_client_last_error(), "feed_handshake_ms is 50"), "%s",
                gm_client_last_error());
  gm_test_echo_stop(&e);
}
END_TEST

START_TEST(keys_are_random_and_well_formed) {
  char a[33], b[33];
  ck_assert_int_eq(gm_client_new_idempotency_key(a), GM_OK);
  ck_assert_int_eq(gm_client_new_idempotency_key(b), GM_OK);
  ck_assert_uint_eq(strlen(a), 32);
  for (int i = 0; i < 32; i++)
    ck_assert(isxdigit((unsigned char)a[i]) && !isupper((unsigned char)a[i]));
  ck_assert_str_ne(a, b);
  char pub[41], sec[41];
  ck_assert_int_eq(gm_keypair(pub, sec), GM_OK);
  ck_assert_uint_eq(strlen(pub), 40);
  ck_assert_uint_eq(strlen(sec), 40);
  uint8_t raw[32];
  ck_assert_ptr_nonnull(zmq_z85_decode(raw, pub));
  char derived[41];
  ck_assert_int_eq(zmq_curve_public(derived, sec), 0);
  ck_assert_str_eq(derived, pub);
}
END_TEST

/* Writes `text` to a fresh file in `dir`; returns its path (static). */
static const char *key_file(const char *dir, const char *name,
                            const char *text) {
  static char path[512];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  FILE *f = fopen(path, "w");
  ck_assert_ptr_nonnull(f);
  fputs(text, f);
  fclose(f);
  return path;
}

START_TEST(key_files_are_read_or_explained) {
  char dir[] = "/tmp/gm-keyfile-XXXXXX";
  ck_assert_ptr_nonnull(mkdtemp(dir));
  char pub[41], sec[41], text[1024], rp[41], rs[41];
  ck_assert_int_eq(gm_keypair(pub, sec), GM_OK);

  /* gm keygen's format, with its comment line. */
  snprintf(text, sizeof text,
           "# greenmarket CURVE key pair: keep this file private\n"
           "public = %s\nsecret = %s\n",
           pub, sec);
  const char *path = key_file(dir, "me.key", text);
  ck_assert_int_eq(gm_key_file_read(path, rp, rs), GM_OK);
  ck_assert_str_eq(rp, pub);
  ck_assert_str_eq(rs, sec);
  /* The public key alone (the broker's, from its operator). */
  ck_assert_int_eq(gm_key_file_read(path, rp, NULL), GM_OK);
  ck_assert_str_eq(rp, pub);

  /* ZeroMQ zcert's names and quotes. */
  snprintf(text, sizeof text,
           "curve\n    public-key = \"%s\"\n    secret-key = \"%s\"\n", pub,
           sec);
  path = key_file(dir, "zcert.key", text);
  ck_assert_int_eq(gm_key_file_read(path, rp, rs), GM_OK);
  ck_assert_str_eq(rs, sec);

  /* A public key file where a pair is needed. */
  snprintf(text, sizeof text, "public = %s\n", pub);
  path = key_file(dir, "server.pub", text);
  ck_assert_int_eq(gm_key_file_read(path, rp, NULL), GM_OK);
  ck_assert_int_eq(gm_key_file_read(path, rp, rs), GM_INVALID_ARGUMENT);
  ck_assert_str_eq(rp, "");
  ck_assert_str_eq(rs, "");
  ck_assert_msg(strstr(gm_client_last_error(), "no \"secret = ...\" line"),
                "%s", gm_client_last_error());

  /* Windows line ends and trailing blanks. */
  snprintf(text, sizeof text, "public = %s  \r\nsecret = %s\t\r\n", pub, sec);
  path = key_file(dir, "crlf.key", text);
  ck_assert_int_eq(gm_key_file_read(path, rp, rs), GM_OK);
  ck_assert_str_eq(rp, pub);
  ck_assert_str_eq(rs, sec);

  /* Lines of two different pairs: every handshake would fail without a
     word (it looked like a wrong server key). */
  char pub2[41], sec2[41];
  ck_assert_int_eq(gm_keypair(pub2, sec2), GM_OK);

  /* A long comment line (zcert metadata may be long) is one line: what
     its tail says past the reader's buffer is no key line. */
  snprintf(text, sizeof text, "public = %s\nsecret = %s\n# %0253dpublic = %s\n",
           pub, sec, 0, pub2);
  path = key_file(dir, "long.key", text);
  ck_assert_int_eq(gm_key_file_read(path, rp, rs), GM_OK);
  ck_assert_str_eq(rp, pub);
  ck_assert_str_eq(rs, sec);

  snprintf(text, sizeof text, "public = %s\nsecret = %s\n", pub2, sec);
  path = key_file(dir, "mixed.key", text);
  ck_assert_int_eq(gm_key_file_read(path, rp, rs), GM_INVALID_ARGUMENT);
  ck_assert_str_eq(rs, "");
  ck_assert_msg(strstr(gm_client_last_error(), "different key pairs"), "%s",
                gm_client_last_error());
  gm_client_options mo;
  gm_client_options_init(&mo);
  mo.server_public_key = pub;
  mo.public_key = pub2;
  mo.secret_key = sec;
  ck_assert_ptr_null(gm_client_new("tcp://127.0.0.1:1", &mo));
  ck_assert_msg(strstr(gm_client_last_error(), "different key pairs"), "%s",
                gm_client_last_error());
  ck_assert_ptr_null(gm_feed_new("tcp://127.0.0.1:1", &mo));

  /* A key cut short. */
  snprintf(text, sizeof text, "public = %.39s\nsecret = %s\n", pub, sec);
  path = key_file(dir, "short.key", text);
  ck_assert_int_eq(gm_key_file_read(path, rp, rs), GM_INVALID_ARGUMENT);
  ck_assert_msg(strstr(gm_client_last_error(),
                       "public key is not a "
                       "40-character Z85"),
                "%s", gm_client_last_error());

  /* Not a key file at all, and no file. */
  path = key_file(dir, "other.txt", "hello\n");
  ck_assert_int_eq(gm_key_file_read(path, rp, rs), GM_INVALID_ARGUMENT);
  ck_assert_msg(strstr(gm_client_last_error(), "gm keygen --out FILE"), "%s",
                gm_client_last_error());
  char missing[600];
  snprintf(missing, sizeof missing, "%s/absent.key", dir);
  ck_assert_int_eq(gm_key_file_read(missing, rp, rs), GM_NOT_FOUND);
  ck_assert_msg(strstr(gm_client_last_error(), "No such file"), "%s",
                gm_client_last_error());
  ck_assert_int_eq(gm_key_file_read(NULL, rp, rs), GM_INVALID_ARGUMENT);

  /* What it read makes a working CURVE client. */
  char spub[41], ssec[41];
  ck_assert_int_eq(gm_keypair(spub, ssec), GM_OK);
  gm_test_echo_opts eo = {.secret_key = ssec};
  gm_test_echo *e = gm_test_echo_start(&eo);
  snprintf(text, sizeof text, "public = %s\nsecret = %s\n", pub, sec);
  ck_assert_int_eq(gm_key_file_read(key_file(dir, "me.key", text), rp, rs),
                   GM_OK);
  gm_client_options o;
  gm_client_options_init(&o);
  o.timeout_ms = 2000;
  o.server_public_key = spub;
  o.public_key = rp;
  o.secret_key = rs;
  gm_client *c = gm_client_new(gm_test_echo_endpoint(e), &o);
  ck_assert_ptr_nonnull(c);
  gm_result r;
  ck_assert_int_eq(ping(c, "curve", &r), GM_OK);
  gm_result_clear(&r);
  gm_client_destroy(&c);
  gm_test_echo_stop(&e);

  const char *names[] = {"me.key",    "zcert.key", "server.pub", "short.key",
                         "other.txt", "crlf.key",  "mixed.key",  "long.key"};
  for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
    snprintf(missing, sizeof missing, "%s/%s", dir, names[i]);
    unlink(missing);
  }
  rmdir(dir);
}
END_TEST

START_TEST(refused_key_is_permission_denied_at_once) {
  char spub[41], ssec[41], apub[41], asec[41], epub[41], esec[41];
  ck_assert_int_eq(gm_keypair(spub, ssec), GM_OK);
  ck_assert_int_eq(gm_keypair(apub, asec), GM_OK);
  ck_assert_int_eq(gm_keypair(epub, esec), GM_OK);
  gm_test_echo_opts eo = {.secret_key = ssec, .zap_admit = apub, .feed = 1};
  gm_test_echo *e = gm_test_echo_start(&eo);

  gm_client_options o;
  gm_client_options_init(&o);
  o.timeout_ms = 3000;
  o.retries = 2;
  o.server_public_key = spub;
  o.public_key = epub; /* nobody admitted this one */
  o.secret_key = esec;
  gm_client *c = gm_client_new(gm_test_echo_endpoint(e), &o);
  ck_assert_ptr_nonnull(c);
  gm_result r;
  int64_t t0 = now_ms();
  ck_assert_int_eq(ping(c, "eve", &r), GM_PERMISSION_DENIED);
  /* Told at once, not after 3 x 3 s of silence, and told why. */
  ck_assert_int_lt(now_ms() - t0, 2000);
  ck_assert(!r.answered);
  ck_assert_msg(strstr(r.message, "refused this client's CURVE key") &&
                    strstr(r.message, epub) && strstr(r.message, "register"),
                "%s", r.message);
  gm_result_clear(&r);
  /* gm_client_recv says the same. */
  ck_assert_int_eq(gm_client_recv(c, 1000, NULL, &r), GM_PERMISSION_DENIED);
  gm_result_clear(&r);
  gm_client_destroy(&c);
  ck_assert_uint_eq(gm_test_echo_count(e), 0);

  /* gm_client_poll() wakes on a refusal as on a reply, and the client's
     gm_client_recv() tells it: a gateway polling many clients hears of a
     refused key at once, not after its own deadline. */
  c = gm_client_new(gm_test_echo_endpoint(e), &o);
  ck_assert_int_eq(gm_client_send(c, "gm", "ping", NULL, NULL, 0, NULL), GM_OK);
  unsigned char ready[1];
  t0 = now_ms();
  ck_assert_int_eq(gm_client_poll(&c, 1, 3000, ready), 1);
  ck_assert_int_lt(now_ms() - t0, 1500);
  ck_assert_int_eq(ready[0], 1);
  ck_assert_int_eq(gm_client_recv(c, 0, NULL, &r), GM_PERMISSION_DENIED);
  /* The request never left: its key was never admitted. */
  ck_assert_msg(!strstr(r.message, "may have been carried out"), "%s",
                r.message);
  gm_result_clear(&r);
  gm_client_destroy(&c);

  /* A key refused on a resend (revoked during the call): the first attempt
     reached the broker, so the outcome is unknown, and the message says
     so instead of "nothing sent". */
  gm_test_echo_opts ro = {.secret_key = ssec,
                          .zap_admit = epub,
                          .zap_admit_times = 1,
                          .drop_first = 1};
  gm_test_echo *re = gm_test_echo_start(&ro);
  gm_client_options ao = o;
  ao.timeout_ms = 500;
  c = gm_client_new(gm_test_echo_endpoint(re), &ao);
  ck_assert_int_eq(ping(c, "revoked", &r), GM_PERMISSION_DENIED);
  ck_assert_uint_eq(gm_test_echo_count(re), 1);
  ck_assert_msg(strstr(r.message, "earlier attempt of this call timed out") &&
                    strstr(r.message, "same idempotency key"),
                "%s", r.message);
  gm_result_clear(&r);
  gm_client_destroy(&c);
  gm_test_echo_stop(&re);

  /* Pipelined: a request sent on an admitted connection reaches the broker,
     which then restarts (no reply) and refuses the key when the socket
     reconnects.  The refusal says the request may have been carried out,
     once. */
  ro.rebind_after_drop = 1;
  re = gm_test_echo_start(&ro);
  c = gm_client_new(gm_test_echo_endpoint(re), &ao);
  ck_assert_int_eq(
      gm_client_send(c, "gm", "ping", "pipelined-1", NULL, 0, NULL), GM_OK);
  ck_assert_int_eq(gm_client_recv(c, 5000, NULL, &r), GM_PERMISSION_DENIED);
  ck_assert_uint_eq(gm_test_echo_count(re), 1);
  ck_assert_msg(strstr(r.message,
                       "1 request sent with gm_client_send() before "
                       "had no reply and may have been carried out") &&
                    strstr(r.message, "same idempotency key"),
                "%s", r.message);
  gm_result_clear(&r);
  ck_assert_int_eq(gm_client_recv(c, 0, NULL, &r), GM_PERMISSION_DENIED);
  ck_assert_msg(!strstr(r.message, "may have been carried out"), "%s",
                r.message);
  gm_result_clear(&r);
  gm_client_destroy(&c);
  gm_test_echo_stop(&re);

  /* The wrong server key: no ZAP status, but the handshakes the broker cuts
     short say what to check. */
  gm_client_options w = o;
  w.server_public_key = epub;
  w.timeout_ms = 500;
  w.retries = 1;
  c = gm_client_new(gm_test_echo_endpoint(e), &w);
  ck_assert_int_eq(ping(c, "wrong", &r), GM_UNAVAILABLE);
  ck_assert(!r.answered);
  ck_assert_msg(strstr(r.message, "server key that is not this broker's"), "%s",
                r.message);
  gm_result_clear(&r);
  /* Its handshake events (one a reconnect) refuse nothing: a poll waits its
     whole timeout through them. */
  t0 = now_ms();
  ck_assert_int_eq(gm_client_poll(&c, 1, 600, ready), 0);
  ck_assert_int_ge(now_ms() - t0, 580);
  ck_assert_int_eq(ready[0], 0);
  gm_client_destroy(&c);

  /* A feed with that key is told once, then waits quietly (the key may be
     registered later). */
  gm_feed *f = gm_feed_new(gm_test_echo_feed_endpoint(e), &o);
  ck_assert_ptr_nonnull(f);
  ck_assert_int_eq(gm_feed_subscribe(f, ""), GM_OK);
  char *topic;
  Gm__Event *ev;
  ck_assert_int_eq(gm_feed_recv(f, &topic, &ev, 2000), GM_PERMISSION_DENIED);
  ck_assert_str_eq(topic, "");
  ck_assert_ptr_null(ev);
  ck_assert_msg(
      strstr(gm_client_last_error(), "refused this feed's CURVE key") &&
          strstr(gm_client_last_error(), epub),
      "%s", gm_client_last_error());
  free(topic);
  ck_assert_int_eq(gm_feed_recv(f, &topic, &ev, 500), GM_UNAVAILABLE);
  free(topic);
  gm_feed_destroy(&f);

  /* The admitted key is served as before, and its feed is not refused. */
  o.public_key = apub;
  o.secret_key = asec;
  c = gm_client_new(gm_test_echo_endpoint(e), &o);
  ck_assert_int_eq(ping(c, "alice", &r), GM_OK);
  ck_assert(r.answered);
  gm_result_clear(&r);
  gm_client_destroy(&c);
  f = gm_feed_new(gm_test_echo_feed_endpoint(e), &o);
  ck_assert_int_eq(gm_feed_subscribe(f, ""), GM_OK);
  ck_assert_int_eq(gm_feed_recv(f, &topic, &ev, 500), GM_UNAVAILABLE);
  free(topic);
  gm_feed_destroy(&f);
  gm_test_echo_stop(&e);
}
END_TEST

static int valid_utf8(const char *s) {
  size_t len = strlen(s), n;
  for (size_t i = 0; i < len; i += n)
    if (gm_utf8_decode((const unsigned char *)s + i, len - i, &n) < 0) return 0;
  return 1;
}

/*
 * gm_client_last_error() holds 512 bytes: a longer reason (a long path of
 * non-ASCII folder names) is cut on a whole character and says so.  Before
 * the fix it was cut inside a character: invalid UTF-8.
 */
START_TEST(long_errors_are_cut_on_a_character) {
  for (int shift = 0; shift < 4; shift++) {
    char path[1024] = "/tmp/";
    size_t at = strlen(path);
    for (int i = 0; i < shift; i++) path[at++] = 'x';
    while (at + 3 < 700) { /* U+00E9 and U+4E2D, 2 and 3 bytes */
      memcpy(path + at, at % 2 ? "\xc3\xa9" : "\xe4\xb8\xad", at % 2 ? 2 : 3);
      at += at % 2 ? 2 : 3;
    }
    path[at] = '\0';
    char pub[41], sec[41];
    ck_assert_int_eq(gm_key_file_read(path, pub, sec), GM_NOT_FOUND);
    const char *e = gm_client_last_error();
    ck_assert_msg(valid_utf8(e), "shift %d: not UTF-8: %s", shift, e);
    ck_assert_uint_le(strlen(e), 511);
    ck_assert_msg(strlen(e) >= 500 && !strcmp(e + strlen(e) - 3, "..."), "%s",
                  e);
    ck_assert(!strncmp(e, "cannot read key file /tmp/", 26));
  }
}
END_TEST

/* NULL where the library writes or reads is refused, not a crash. */
START_TEST(null_outputs_are_refused) {
  char k[41];
  ck_assert_int_eq(gm_client_new_idempotency_key(NULL), GM_INVALID_ARGUMENT);
  ck_assert_int_eq(gm_keypair(NULL, k), GM_INVALID_ARGUMENT);
  ck_assert_str_eq(k, "");
  ck_assert_int_eq(gm_keypair(k, NULL), GM_INVALID_ARGUMENT);
  gm_client_options_init(NULL);
  ck_assert_ptr_null(gm_feed_topic_audience("carbon.trade", NULL, k, 41));
  unsigned char ready[1];
  errno = 0;
  ck_assert_int_eq(gm_client_poll(NULL, 1, 0, ready), -1);
  ck_assert_int_eq(errno, EINVAL);
  gm_client *none = NULL;
  ck_assert_int_eq(gm_client_poll(&none, 1, 0, NULL), -1);
  ck_assert_int_eq(gm_client_poll(NULL, 0, 0, NULL), 0);
}
END_TEST

START_TEST(unusable_calls_are_refused_before_sending) {
  gm_test_echo *e = gm_test_echo_start(NULL);
  gm_client *c = client(gm_test_echo_endpoint(e), 2000, 0);
  gm_result r;

  /* A NULL client (gm_client_new failed): an answer, not a crash. */
  ck_assert_int_eq(ping(NULL, "x", &r), GM_INVALID_ARGUMENT);
  ck_assert(!r.answered);
  ck_assert_msg(strstr(r.message, "gm_client_new() returned NULL"), "%s",
                r.message);
  gm_result_clear(&r);
  ck_assert_int_eq(
      gm_client_call_raw(NULL, "gm", "ping", NULL, NULL, 0, NULL, &r),
      GM_INVALID_ARGUMENT);
  gm_result_clear(&r);
  ck_assert_int_eq(gm_client_recv(NULL, 0, NULL, &r), GM_INVALID_ARGUMENT);
  gm_result_clear(&r);
  ck_assert_str_eq(gm_client_endpoint(NULL), "");

  /* No market, no method: refused here, nothing sent. */
  ck_assert_int_eq(gm_client_call(c, NULL, "ping", NULL, NULL, NULL, &r),
                   GM_INVALID_ARGUMENT);
  ck_assert_msg(strstr(r.message, "no market given"), "%s", r.message);
  gm_result_clear(&r);
  ck_assert_int_eq(gm_client_call_raw(c, "gm", "", NULL, NULL, 0, NULL, &r),
                   GM_INVALID_ARGUMENT);
  ck_assert_msg(strstr(r.message, "no method given for market \"gm\""), "%s",
                r.message);
  gm_result_clear(&r);
  uint64_t id;
  ck_assert_int_eq(gm_client_send(c, "", "ping", NULL, NULL, 0, &id),
                   GM_INVALID_ARGUMENT);
  ck_assert_int_eq(gm_client_send_msg(NULL, "gm", "ping", NULL, NULL, &id),
                   GM_INVALID_ARGUMENT);
  ck_assert_int_eq(gm_client_call(c, "gm", "ping", NULL, NULL, NULL, NULL),
                   GM_INVALID_ARGUMENT);

  /* The client still works, and the broker saw only this ping. */
  ck_assert_int_eq(ping(c, "after", &r), GM_OK);
  gm_result_clear(&r);
  ck_assert_uint_eq(gm_test_echo_count(e), 1);

  /* The same for a feed that could not be made. */
  char *topic = (char *)"unset";
  Gm__Event *ev = NULL;
  ck_assert_int_eq(gm_feed_subscribe(NULL, ""), GM_INVALID_ARGUMENT);
  ck_assert_msg(strstr(gm_client_last_error(), "gm_feed_new() returned NULL"),
                "%s", gm_client_last_error());
  ck_assert_int_eq(gm_feed_unsubscribe(NULL, ""), GM_INVALID_ARGUMENT);
  ck_assert_int_eq(gm_feed_recv(NULL, &topic, &ev, 0), GM_INVALID_ARGUMENT);
  ck_assert_ptr_null(topic);
  ck_assert_ptr_null(ev);

  gm_client_destroy(&c);
  gm_test_echo_stop(&e);
}
END_TEST

int main(void) {
  Suite *s = suite_create("client");
  TCase *tc = tcase_create("client");
  tcase_set_timeout(tc, 30);
  tcase_add_test(tc, version_is_the_release);
  tcase_add_test(tc, request_reply);
  tcase_add_test(tc, broker_errors_come_through);
  tcase_add_test(tc, replies_to_other_ids_are_ignored);
  tcase_add_test(tc, timeout_resends_the_same_request);
  tcase_add_test(tc, unreachable_is_unavailable_in_time);
  tcase_add_test(tc, oversized_reply_is_refused);
  tcase_add_test(tc, an_oversized_pipelined_reply_is_not_the_calls);
  tcase_add_test(tc, undecodable_reply_body_is_internal);
  tcase_add_test(tc, pipelining);
  tcase_add_test(tc, feed_delivers_subscribed_events);
  tcase_add_test(tc,
                 feed_at_an_older_brokers_cap_moves_public_prefixes_to_the_sub);
  tcase_add_test(tc, feed_whose_private_feed_never_answers_uses_the_sub);
  tcase_add_test(
      tc, feed_whose_private_feed_answers_late_gets_public_prefixes_back);
  tcase_add_test(
      tc, feed_resends_its_subscriptions_when_the_private_feed_comes_back);
  tcase_add_test(tc, curve_with_keys_talks_without_is_refused);
  tcase_add_test(tc, bad_options_are_explained);
  tcase_add_test(tc, keys_are_random_and_well_formed);
  tcase_add_test(tc, poll_waits_on_many_clients);
  tcase_add_test(tc, key_files_are_read_or_explained);
  tcase_add_test(tc, unusable_calls_are_refused_before_sending);
  tcase_add_test(tc, refused_key_is_permission_denied_at_once);
  tcase_add_test(tc, long_errors_are_cut_on_a_character);
  tcase_add_test(tc, null_outputs_are_refused);
  suite_add_tcase(s, tc);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
