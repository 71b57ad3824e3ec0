/*
 * gmd end to end: a real redis-server, a real gmd with the test market, and
 * requests over ZeroMQ.  Checks replies, what Redis holds and what SQLite
 * holds.
 */
#include <check.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include "gmd_fixture.h"
#include "run_gm.h"
#include "greenmarket.pb-c.h"
#include "redis_fixture.h"
#include "testmkt.pb-c.h"

static gm_test_redis *redis;
static gm_test_gmd *gmd;
static gm_test_conn *conn;

static void start(const char *extra) {
  redis = gm_test_redis_start();
  /* /metrics too: the feed tests wait for their subscriptions there. */
  char conf[1024];
  snprintf(conf, sizeof conf, "%s[metrics]\nlisten = 127.0.0.1:0\n",
           extra ? extra : "");
  gmd = gm_test_gmd_start(redis, TEST_PLUGIN_DIR, conf);
  conn = gm_test_conn_new(gm_test_gmd_endpoint(gmd), NULL, NULL, NULL);
}

static void setup(void) {
  start(
      "[plugins]\nload = testmkt\n[market.testmkt]\ngreeting = hello\n"
      "file = keys/market.key\n");
}

static void teardown(void) {
  gm_test_conn_destroy(&conn);
  gm_test_gmd_stop(&gmd);
  gm_test_redis_stop(&redis);
}

/* Expects `status` and `text` in the reply message; frees the reply. */
static void expect_error(Gm__Reply *r, Gm__Status status, const char *text) {
  ck_assert_ptr_nonnull(r);
  ck_assert_msg(r->status == status, "status %d (%s), want %d", r->status,
                r->message, status);
  ck_assert_msg(strstr(r->message, text) != NULL, "'%s' not in '%s'", text,
                r->message);
  gm__reply__free_unpacked(r, NULL);
}

static Gm__StatsReply *stats(void) {
  Gm__StatsRequest req = GM__STATS_REQUEST__INIT;
  Gm__Reply *r = gm_test_call(conn, NULL, "gm", "stats", NULL, &req.base);
  ck_assert_ptr_nonnull(r);
  ck_assert_int_eq(r->status, GM__STATUS__OK);
  Gm__StatsReply *s = gm__stats_reply__unpack(NULL, r->body.len, r->body.data);
  gm__reply__free_unpacked(r, NULL);
  ck_assert_ptr_nonnull(s);
  return s;
}

static int64_t bump_on(gm_test_conn *c, const char *as, const char *key,
                       const char *note) {
  Gm__Testmkt__BumpRequest req = GM__TESTMKT__BUMP_REQUEST__INIT;
  req.note = (char *)note;
  Gm__Reply *r = gm_test_call(c, as, "testmkt", "bump", key, &req.base);
  ck_assert_ptr_nonnull(r);
  ck_assert_msg(r->status == GM__STATUS__OK, "bump: %s", r->message);
  Gm__Testmkt__BumpReply *b =
      gm__testmkt__bump_reply__unpack(NULL, r->body.len, r->body.data);
  int64_t seq = b->seq;
  gm__testmkt__bump_reply__free_unpacked(b, NULL);
  gm__reply__free_unpacked(r, NULL);
  return seq;
}

static int64_t bump(const char *as, const char *key, const char *note) {
  return bump_on(conn, as, key, note);
}

/* The test market's counter in Redis (a string holding a number). */
static long long redis_counter(void) {
  redisContext *rc = gm_test_redis_connect(redis);
  redisReply *r = gm_test_redis_cmd(rc, "GET gm:{testmkt:all}:counter");
  long long n = r->type == REDIS_REPLY_STRING ? atoll(r->str) : -1;
  freeReplyObject(r);
  redisFree(rc);
  return n;
}

static long long ledger_count(const char *sql) {
  return gm_test_gmd_ledger_count(gmd, sql);
}

/* Waits (up to 15 s) until the ledger holds `want` bumps. */
static long long wait_settled(long long want) {
  long long n = -1;
  for (int i = 0; i < 1500; i++) {
    n = ledger_count("SELECT count(*) FROM testmkt_bumps");
    if (n == want) break;
    gm_test_sleep_ms(10);
  }
  return n;
}

START_TEST(ping_and_markets) {
  Gm__PingRequest ping = GM__PING_REQUEST__INIT;
  ping.echo = "hi";
  Gm__Reply *r = gm_test_call(conn, NULL, "gm", "ping", NULL, &ping.base);
  ck_assert_ptr_nonnull(r);
  ck_assert_int_eq(r->status, GM__STATUS__OK);
  Gm__PingReply *p = gm__ping_reply__unpack(NULL, r->body.len, r->body.data);
  ck_assert_str_eq(p->echo, "hi");
  ck_assert_int_eq(p->protocol_version, 1);
  gm__ping_reply__free_unpacked(p, NULL);
  gm__reply__free_unpacked(r, NULL);

  Gm__MarketsRequest mreq = GM__MARKETS_REQUEST__INIT;
  r = gm_test_call(conn, NULL, "gm", "markets", NULL, &mreq.base);
  ck_assert_int_eq(r->status, GM__STATUS__OK);
  Gm__MarketsReply *m =
      gm__markets_reply__unpack(NULL, r->body.len, r->body.data);
  ck_assert_uint_eq(m->n_markets, 2);
  ck_assert_str_eq(m->markets[0]->name, "gm");
  ck_assert_str_eq(m->markets[1]->name, "testmkt");
  ck_assert_str_eq(m->markets[1]->version, "1.0.0");
  int found = 0;
  for (size_t i = 0; i < m->markets[1]->n_methods; i++) {
    Gm__MethodInfo *mi = m->markets[1]->methods[i];
    if (strcmp(mi->name, "bump") == 0) {
      found = 1;
      ck_assert(mi->mutating);
      ck_assert_str_eq(mi->request_type, "gm.testmkt.BumpRequest");
      ck_assert_str_eq(mi->roles, "buyer,seller");
    }
  }
  ck_assert(found);
  /* The roles each market declares; the broker's own is admin. */
  ck_assert_uint_eq(m->markets[0]->n_roles, 1);
  ck_assert_str_eq(m->markets[0]->roles[0]->name, "admin");
  ck_assert_uint_eq(m->markets[1]->n_roles, 3);
  ck_assert_str_eq(m->markets[1]->roles[0]->name, "buyer");
  ck_assert_str_eq(m->markets[1]->roles[0]->summary, "bumps the test counter");
  ck_assert_str_eq(m->markets[1]->roles[2]->name, "observer");
  gm__markets_reply__free_unpacked(m, NULL);
  gm__reply__free_unpacked(r, NULL);
}
END_TEST

START_TEST(garbage_gets_clear_errors_and_the_broker_goes_on) {
  /* Not a protobuf at all. */
  const char junk[] = "\xff\xff\xff\xff garbage";
  const void *d1[] = {junk};
  size_t s1[] = {sizeof junk - 1};
  gm_test_conn_send_raw(conn, 1, d1, s1);
  expect_error(gm_test_conn_recv(conn, 5000), GM__STATUS__INVALID_ARGUMENT,
               "is not a gm.Request");
  /* An empty frame decodes as an empty Request: version 0. */
  const void *d2[] = {""};
  size_t s2[] = {0};
  gm_test_conn_send_raw(conn, 1, d2, s2);
  expect_error(gm_test_conn_recv(conn, 5000), GM__STATUS__INVALID_ARGUMENT,
               "Request.version = 1");
  /* Far too many frames: dropped without a reply. */
  const void *d3[20];
  size_t s3[20];
  for (int i = 0; i < 20; i++) d3[i] = "x", s3[i] = 1;
  gm_test_conn_send_raw(conn, 20, d3, s3);
  ck_assert_ptr_null(gm_test_conn_recv(conn, 300));
  /* Larger than max_message_bytes (1 MiB by default). */
  size_t big = (1u << 20) + 100;
  char *huge = calloc(1, big);
  const void *d4[] = {huge};
  size_t s4[] = {big};
  gm_test_conn_send_raw(conn, 1, d4, s4);
  free(huge);
  expect_error(gm_test_conn_recv(conn, 5000), GM__STATUS__RESOURCE_EXHAUSTED,
               "max_message_bytes");
  /* Refused before it is unpacked, a request still gets its reply under its
     own id (a client waits for that id: without it, it waited out its
     timeout and sent the request again, as if gmd were not there). */
  Gm__Request over = GM__REQUEST__INIT;
  over.version = 1;
  over.request_id = 4242;
  over.market = "gm";
  over.method = "ping";
  over.body.len = (1u << 20) + 100;
  over.body.data = calloc(1, over.body.len);
  size_t over_n = gm__request__get_packed_size(&over);
  uint8_t *over_buf = malloc(over_n);
  gm__request__pack(&over, over_buf);
  const void *d6[] = {over_buf};
  size_t s6[] = {over_n};
  gm_test_conn_send_raw(conn, 1, d6, s6);
  free(over_buf);
  free(over.body.data);
  Gm__Reply *r6 = gm_test_conn_recv(conn, 5000);
  ck_assert_ptr_nonnull(r6);
  ck_assert_uint_eq(r6->request_id, 4242);
  expect_error(r6, GM__STATUS__RESOURCE_EXHAUSTED, "max_message_bytes");
  Gm__Request bad = GM__REQUEST__INIT;
  bad.version = 1;
  bad.request_id = 4343;
  bad.market = "gm";
  bad.method = "ping";
  bad.dev_participant = "bad\xff";
  uint8_t bad_buf[64];
  size_t bad_n = gm__request__pack(&bad, bad_buf);
  const void *d7[] = {bad_buf};
  size_t s7[] = {bad_n};
  gm_test_conn_send_raw(conn, 1, d7, s7);
  Gm__Reply *r7 = gm_test_conn_recv(conn, 5000);
  ck_assert_ptr_nonnull(r7);
  ck_assert_uint_eq(r7->request_id, 4343);
  expect_error(r7, GM__STATUS__INVALID_ARGUMENT, "dev_participant");
  ck_assert(gm_test_gmd_log_has(gmd, "refused a request envelope"));
  /* A version the broker does not speak. */
  Gm__Request req = GM__REQUEST__INIT;
  req.version = 2;
  req.market = "gm";
  req.method = "ping";
  uint8_t buf[64];
  size_t n = gm__request__pack(&req, buf);
  const void *d5[] = {buf};
  size_t s5[] = {n};
  gm_test_conn_send_raw(conn, 1, d5, s5);
  expect_error(gm_test_conn_recv(conn, 5000), GM__STATUS__INVALID_ARGUMENT,
               "protocol version 2");

  Gm__StatsReply *s = stats();
  ck_assert_uint_ge(s->bad_frames, 3);
  gm__stats_reply__free_unpacked(s, NULL);
  ck_assert(gm_test_gmd_log_has(gmd, "undecodable frame"));
}
END_TEST

START_TEST(unknown_markets_methods_and_bodies) {
  Gm__PingRequest ping = GM__PING_REQUEST__INIT;
  expect_error(gm_test_call(conn, NULL, "nosuch", "ping", NULL, &ping.base),
               GM__STATUS__NOT_FOUND, "markets: gm, testmkt");
  expect_error(gm_test_call(conn, NULL, "testmkt", "nosuch", NULL, NULL),
               GM__STATUS__UNIMPLEMENTED, "its methods: echo, bump, count");
  /* A body that is not an EchoRequest: field 1 as a varint. */
  Gm__Request req = GM__REQUEST__INIT;
  req.version = 1;
  req.request_id = 77;
  req.market = "testmkt";
  req.method = "echo";
  uint8_t body[] = {0x0a, 0x05, 'a'}; /* length 5, only 1 byte follows */
  req.body.data = body;
  req.body.len = sizeof body;
  uint8_t buf[128];
  size_t n = gm__request__pack(&req, buf);
  const void *d[] = {buf};
  size_t s[] = {n};
  gm_test_conn_send_raw(conn, 1, d, s);
  Gm__Reply *r = gm_test_conn_recv(conn, 5000);
  ck_assert_uint_eq(r->request_id, 77);
  expect_error(r, GM__STATUS__INVALID_ARGUMENT,
               "not a valid gm.testmkt.EchoRequest");
  /* A mutating method without an idempotency key. */
  Gm__Testmkt__BumpRequest bump_req = GM__TESTMKT__BUMP_REQUEST__INIT;
  expect_error(
      gm_test_call(conn, "alice", "testmkt", "bump", NULL, &bump_req.base),
      GM__STATUS__INVALID_ARGUMENT, "needs an idempotency_key");
  /* Nothing reached Redis. */
  redisContext *rc = gm_test_redis_connect(redis);
  ck_assert_int_eq(gm_test_redis_int(rc, "EXISTS gm:{testmkt:all}:counter"), 0);
  redisFree(rc);
}
END_TEST

START_TEST(plugin_errors_identity_and_config_reach_the_caller) {
  Gm__Testmkt__EchoRequest e = GM__TESTMKT__ECHO_REQUEST__INIT;
  e.text = "fail";
  expect_error(gm_test_call(conn, "alice", "testmkt", "echo", NULL, &e.base),
               GM__STATUS__FAILED_PRECONDITION, "you asked me to fail");
  e.text = "hello there";
  Gm__Reply *r = gm_test_call(conn, "alice", "testmkt", "echo", NULL, &e.base);
  ck_assert_int_eq(r->status, GM__STATUS__OK);
  Gm__Testmkt__EchoReply *out =
      gm__testmkt__echo_reply__unpack(NULL, r->body.len, r->body.data);
  ck_assert_str_eq(out->text, "hello there");
  ck_assert_str_eq(out->participant, "alice");
  ck_assert_str_eq(out->config_value, "hello");
  /* A relative file setting is taken from the config file's folder. */
  char want[4096];
  const char *conf = gm_test_gmd_conf(gmd);
  snprintf(want, sizeof want, "%.*s/keys/market.key",
           (int)(strrchr(conf, '/') - conf), conf);
  ck_assert_str_eq(out->config_path, want);
  gm__testmkt__echo_reply__free_unpacked(out, NULL);
  gm__reply__free_unpacked(r, NULL);

  /* An absolute one is kept as it is; later keys win. */
  FILE *f = fopen(conf, "a");
  fputs("[market.testmkt]\nfile = /etc/greenmarket/market.key\n", f);
  fclose(f);
  gm_test_gmd_kill9(gmd);
  gm_test_gmd_restart(gmd);
  gm_test_conn_destroy(&conn);
  conn = gm_test_conn_new(gm_test_gmd_endpoint(gmd), NULL, NULL, NULL);
  r = gm_test_call(conn, "alice", "testmkt", "echo", NULL, &e.base);
  ck_assert_int_eq(r->status, GM__STATUS__OK);
  out = gm__testmkt__echo_reply__unpack(NULL, r->body.len, r->body.data);
  ck_assert_str_eq(out->config_path, "/etc/greenmarket/market.key");
  gm__testmkt__echo_reply__free_unpacked(out, NULL);
  gm__reply__free_unpacked(r, NULL);
}
END_TEST

START_TEST(roles_are_enforced) {
  /* In development mode an unregistered caller holds every role. */
  Gm__Participant p = GM__PARTICIPANT__INIT;
  p.id = "bob";
  char *roles[] = {"observer"};
  p.roles = roles;
  p.n_roles = 1;
  Gm__RegisterRequest reg = GM__REGISTER_REQUEST__INIT;
  reg.participant = &p;
  Gm__Reply *r =
      gm_test_call(conn, "root", "gm", "register", "reg-1", &reg.base);
  ck_assert_msg(r->status == GM__STATUS__OK, "%s", r->message);
  gm__reply__free_unpacked(r, NULL);

  Gm__Testmkt__BumpRequest b = GM__TESTMKT__BUMP_REQUEST__INIT;
  expect_error(gm_test_call(conn, "bob", "testmkt", "bump", "k1", &b.base),
               GM__STATUS__PERMISSION_DENIED, "needs role buyer,seller");
  expect_error(gm_test_call(conn, "bob", "gm", "register", "reg-2", &reg.base),
               GM__STATUS__PERMISSION_DENIED, "needs role admin");
  char *bad[] = {"wizard"};
  p.roles = bad;
  /* An unknown role is refused with the known ones, market and meaning. */
  Gm__Reply *refused =
      gm_test_call(conn, "root", "gm", "register", "reg-3", &reg.base);
  ck_assert_ptr_nonnull(refused);
  ck_assert_int_eq(refused->status, GM__STATUS__INVALID_ARGUMENT);
  ck_assert_msg(strstr(refused->message,
                       "roles 'wizard': 'wizard' is no role on this broker") &&
                    strstr(refused->message,
                           "\n  buyer (testmkt): bumps the test counter") &&
                    strstr(refused->message,
                           "\n  observer (testmkt): reads the test market") &&
                    strstr(refused->message, "\n  admin (gm): the broker's"),
                "%s", refused->message);
  gm__reply__free_unpacked(refused, NULL);
  ck_assert_int_eq(bump("alice", "k1", "ok"), 1);
}
END_TEST

START_TEST(idempotent_retries_change_nothing) {
  ck_assert_int_eq(bump("alice", "key-1", "first"), 1);
  ck_assert_int_eq(bump("alice", "key-1", "first"), 1);
  /* The same key for another request: refused, not the first one's reply
     (a client reusing a key would take it for its new request's). */
  Gm__Testmkt__BumpRequest other = GM__TESTMKT__BUMP_REQUEST__INIT;
  other.note = "different body, same key";
  expect_error(
      gm_test_call(conn, "alice", "testmkt", "bump", "key-1", &other.base),
      GM__STATUS__INVALID_ARGUMENT,
      "idempotency key 'key-1' was first used for a different "
      "request");
  ck_assert_int_eq(bump("alice", "key-1", "first"), 1); /* still replays */
  ck_assert_int_eq(bump("carol", "key-1", "another participant"), 2);
  ck_assert_int_eq(bump("alice", "key-2", "second"), 3);
  ck_assert_int_eq(redis_counter(), 3);
  ck_assert_int_eq(wait_settled(3), 3);
  ck_assert_int_eq(
      ledger_count("SELECT count(*) FROM testmkt_bumps WHERE who = 'carol'"),
      1);
}
END_TEST

/* SUBSCRIBE messages the public feed has taken in so far. */
static double subscribes(void) {
  double v = gm_test_gmd_metric(gmd, "greenmarket_feed_subscribes_total");
  ck_assert_msg(v >= 0, "no greenmarket_feed_subscribes_total; see %s",
                gm_test_gmd_log(gmd));
  return v;
}

/* Waits until the feed has taken in n more SUBSCRIBEs than `before`: from
   then on events sent reach them (the slow joiner, waited for). */
static void until_subscribed(double before, int n) {
  gm_test_gmd_wait_metric(gmd, "greenmarket_feed_subscribes_total", before + n,
                          1e18, 10000);
}

START_TEST(events_reach_the_feed) {
  void *ctx = zmq_ctx_new();
  void *sub = zmq_socket(ctx, ZMQ_SUB);
  zmq_setsockopt(sub, ZMQ_SUBSCRIBE, "testmkt.", 8);
  int timeout = 5000;
  zmq_setsockopt(sub, ZMQ_RCVTIMEO, &timeout, sizeof timeout);
  double before = subscribes();
  ck_assert_int_eq(zmq_connect(sub, gm_test_gmd_feed(gmd)), 0);
  until_subscribed(before, 1);
  bump("alice", "ev-1", "a");
  bump("alice", "ev-2", "b");
  for (uint64_t want = 1; want <= 2; want++) {
    char topic[64] = "";
    int n = zmq_recv(sub, topic, sizeof topic - 1, 0);
    ck_assert_int_gt(n, 0);
    topic[n] = 0;
    ck_assert_str_eq(topic, "testmkt.bumped");
    zmq_msg_t m;
    zmq_msg_init(&m);
    ck_assert_int_ge(zmq_msg_recv(&m, sub, 0), 0);
    Gm__Event *ev = gm__event__unpack(NULL, zmq_msg_size(&m), zmq_msg_data(&m));
    ck_assert_ptr_nonnull(ev);
    ck_assert_str_eq(ev->type, "gm.testmkt.BumpReply");
    ck_assert_uint_eq(ev->seq, want);
    Gm__Testmkt__BumpReply *b =
        gm__testmkt__bump_reply__unpack(NULL, ev->body.len, ev->body.data);
    ck_assert_int_eq(b->seq, (int64_t)want);
    gm__testmkt__bump_reply__free_unpacked(b, NULL);
    gm__event__free_unpacked(ev, NULL);
    zmq_msg_close(&m);
  }
  zmq_close(sub);
  zmq_ctx_term(ctx);
}
END_TEST

/*
 * An event no subscriber's prefix covers is never built or sent, so the
 * public count goes up only for events that were sent: three bumps while
 * the feed's only subscriber follows another market, then the first event
 * a subscriber of this market receives is number 1.
 */
START_TEST(events_nobody_subscribes_to_are_not_sent) {
  void *ctx = zmq_ctx_new();
  void *other = zmq_socket(ctx, ZMQ_SUB), *sub = zmq_socket(ctx, ZMQ_SUB);
  zmq_setsockopt(other, ZMQ_SUBSCRIBE, "othermkt.", 9);
  double before = subscribes();
  ck_assert_int_eq(zmq_connect(other, gm_test_gmd_feed(gmd)), 0);
  until_subscribed(before, 1);
  ck_assert_int_eq(bump("alice", "unseen-1", "a"), 1);
  ck_assert_int_eq(bump("alice", "unseen-2", "b"), 2);
  ck_assert_int_eq(bump("alice", "unseen-3", "c"), 3);
  zmq_setsockopt(sub, ZMQ_SUBSCRIBE, "testmkt.", 8);
  int timeout = 5000;
  zmq_setsockopt(sub, ZMQ_RCVTIMEO, &timeout, sizeof timeout);
  ck_assert_int_eq(zmq_connect(sub, gm_test_gmd_feed(gmd)), 0);
  until_subscribed(before, 2);
  ck_assert_int_eq(bump("alice", "seen-1", "d"), 4);
  char topic[64] = "";
  int n = zmq_recv(sub, topic, sizeof topic - 1, 0);
  ck_assert_int_gt(n, 0);
  topic[n] = 0;
  ck_assert_str_eq(topic, "testmkt.bumped");
  zmq_msg_t m;
  zmq_msg_init(&m);
  ck_assert_int_ge(zmq_msg_recv(&m, sub, 0), 0);
  Gm__Event *ev = gm__event__unpack(NULL, zmq_msg_size(&m), zmq_msg_data(&m));
  ck_assert_ptr_nonnull(ev);
  ck_assert_uint_eq(ev->seq, 1);
  Gm__Testmkt__BumpReply *b =
      gm__testmkt__bump_reply__unpack(NULL, ev->body.len, ev->body.data);
  ck_assert_int_eq(b->seq, 4);
  gm__testmkt__bump_reply__free_unpacked(b, NULL);
  gm__event__free_unpacked(ev, NULL);
  zmq_msg_close(&m);
  ck_assert_int_eq(redis_counter(), 4);
  zmq_close(other);
  zmq_close(sub);
  zmq_ctx_term(ctx);
}
END_TEST

/* Public event `event` of the test market, through its `tell`. */
static void tell_public(const char *event) {
  Gm__Testmkt__TellRequest t = GM__TESTMKT__TELL_REQUEST__INIT;
  t.audience = 0; /* public */
  t.who = "";
  t.event = (char *)event;
  t.note = "";
  Gm__Reply *r = gm_test_call(conn, NULL, "testmkt", "tell", NULL, &t.base);
  ck_assert_ptr_nonnull(r);
  ck_assert_msg(r->status == GM__STATUS__OK, "tell: %s", r->message);
  gm__reply__free_unpacked(r, NULL);
}

/* One message on s within 50 ms: its topic in `topic`, the event's seq;
   0 when none came. */
static uint64_t recv_event(void *s, char *topic, size_t cap) {
  zmq_pollitem_t it = {s, 0, ZMQ_POLLIN, 0};
  if (zmq_poll(&it, 1, 50) != 1) return 0;
  int n = zmq_recv(s, topic, cap - 1, 0);
  ck_assert_int_gt(n, 0);
  topic[n] = 0;
  zmq_msg_t m;
  zmq_msg_init(&m);
  ck_assert_int_ge(zmq_msg_recv(&m, s, 0), 0);
  Gm__Event *ev = gm__event__unpack(NULL, zmq_msg_size(&m), zmq_msg_data(&m));
  ck_assert_ptr_nonnull(ev);
  uint64_t seq = ev->seq;
  gm__event__free_unpacked(ev, NULL);
  zmq_msg_close(&m);
  return seq;
}

/*
 * A feed client that subscribes and unsubscribes one prefix over and over
 * does not make the broker build every event: the XPUB passes that
 * prefix's subscription again after each last unsubscribe, and counting
 * each as a new prefix reached the 65,536 past which every event is built.
 */
START_TEST(resubscribing_one_prefix_does_not_turn_every_event_on) {
  void *ctx = zmq_ctx_new();
  void *s = zmq_socket(ctx, ZMQ_SUB);
  /* No high-water mark: past it a SUB drops subscriptions it sends. */
  int unlimited = 0;
  zmq_setsockopt(s, ZMQ_SNDHWM, &unlimited, sizeof unlimited);
  ck_assert_int_eq(zmq_connect(s, gm_test_gmd_feed(gmd)), 0);
  for (int i = 0; i < 66000; i++) {
    ck_assert_int_eq(zmq_setsockopt(s, ZMQ_SUBSCRIBE, "othermkt.", 9), 0);
    ck_assert_int_eq(zmq_setsockopt(s, ZMQ_UNSUBSCRIBE, "othermkt.", 9), 0);
  }
  /* The broker has read all of them once it sends what s subscribes next
     (one connection's subscriptions arrive in order). */
  ck_assert_int_eq(zmq_setsockopt(s, ZMQ_SUBSCRIBE, "testmkt.sync", 12), 0);
  char topic[64];
  uint64_t last = 0;
  for (int i = 0; i < 200 && !last; i++) {
    tell_public("sync");
    last = recv_event(s, topic, sizeof topic);
  }
  ck_assert_uint_gt(last, 0);
  /* Nobody follows testmkt.bumped: these are neither built nor counted. */
  ck_assert_int_eq(bump("alice", "unseen-1", "a"), 1);
  ck_assert_int_eq(bump("alice", "unseen-2", "b"), 2);
  ck_assert_int_eq(bump("alice", "unseen-3", "c"), 3);
  ck_assert_int_eq(zmq_setsockopt(s, ZMQ_SUBSCRIBE, "testmkt.bumped", 14), 0);
  uint64_t bumped = 0;
  char key[32];
  for (int i = 0; i < 200 && !bumped; i++) {
    snprintf(key, sizeof key, "seen-%d", i);
    bump("alice", key, "d");
    uint64_t seq;
    while ((seq = recv_event(s, topic, sizeof topic)) != 0) {
      if (strcmp(topic, "testmkt.bumped") == 0) {
        bumped = seq;
        break;
      }
      last = seq; /* a late "sync" */
    }
  }
  /* Counted since the sync: only what the subscriber received. */
  ck_assert_uint_eq(bumped, last + 1);
  zmq_close(s);
  zmq_ctx_term(ctx);
}
END_TEST

/* A plain socket connection to the feed ("ipc://<path>" in the fixture). */
static int raw_connect(const char *endpoint) {
  ck_assert_int_eq(strncmp(endpoint, "ipc://", 6), 0);
  struct sockaddr_un a = {.sun_family = AF_UNIX};
  ck_assert_uint_lt(strlen(endpoint + 6), sizeof a.sun_path);
  strcpy(a.sun_path, endpoint + 6);
  int fd = socket(AF_UNIX, SOCK_STREAM, 0);
  ck_assert_int_ge(fd, 0);
  ck_assert_int_eq(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
  return fd;
}

/* Reads exactly n bytes (the broker's greeting and READY, discarded). */
static void raw_read(int fd, size_t n) {
  unsigned char b[256];
  while (n > 0) {
    ssize_t r = read(fd, b, n < sizeof b ? n : sizeof b);
    ck_assert_int_gt(r, 0);
    n -= (size_t)r;
  }
}

/*
 * A feed client's unsubscribe of a prefix it never held stops nobody's
 * events.  libzmq's SUB and XSUB never send one, but anyone may reach the
 * feed's port: a peer speaking ZMTP 3.0 itself can, and the XPUB passes it
 * on while another client holds that prefix.
 */
START_TEST(a_stray_unsubscribe_stops_nobody_s_events) {
  void *ctx = zmq_ctx_new();
  void *sub = zmq_socket(ctx, ZMQ_SUB);
  zmq_setsockopt(sub, ZMQ_SUBSCRIBE, "testmkt.", 8);
  int timeout = 5000;
  zmq_setsockopt(sub, ZMQ_RCVTIMEO, &timeout, sizeof timeout);
  double before = subscribes();
  ck_assert_int_eq(zmq_connect(sub, gm_test_gmd_feed(gmd)), 0);
  until_subscribed(before, 1);
  int fd = raw_connect(gm_test_gmd_feed(gmd));
  /* ZMTP 3.0 greeting, NULL mechanism, as client. */
  unsigned char greet[64] = {0xff, 0,    0, 0, 0,   0,   0,   0,
                             1,    0x7f, 3, 0, 'N', 'U', 'L', 'L'};
  ck_assert_int_eq(write(fd, greet, sizeof greet), (ssize_t)sizeof greet);
  raw_read(fd, 64);
  static const unsigned char ready[] = {
      0x04, 25,  5,   'R', 'E', 'A', 'D', 'Y', 11, 'S', 'o', 'c', 'k', 'e',
      't',  '-', 'T', 'y', 'p', 'e', 0,   0,   0,  3,   'S', 'U', 'B'};
  ck_assert_int_eq(write(fd, ready, sizeof ready), (ssize_t)sizeof ready);
  /* The broker's READY: a short command, [0x04][size][body]. */
  unsigned char head[2];
  ck_assert_int_eq(read(fd, head, 2), 2);
  ck_assert_int_eq(head[0], 0x04);
  raw_read(fd, head[1]);
  static const unsigned char unsub[] = {0x00, 9,   0,   't', 'e', 's',
                                        't',  'm', 'k', 't', '.'};
  ck_assert_int_eq(write(fd, unsub, sizeof unsub), (ssize_t)sizeof unsub);
  /* A subscription after it on the same connection: once the feed counts
     that one, it has taken in the unsubscribe before it. */
  static const unsigned char sub_z[] = {0x00, 4, 1, 'z', 'z', 'z'};
  ck_assert_int_eq(write(fd, sub_z, sizeof sub_z), (ssize_t)sizeof sub_z);
  until_subscribed(before, 2);
  ck_assert_int_eq(bump("alice", "after-stray", "a"), 1);
  char topic[64] = "";
  int n = zmq_recv(sub, topic, sizeof topic - 1, 0);
  ck_assert_int_gt(n, 0);
  topic[n] = 0;
  ck_assert_str_eq(topic, "testmkt.bumped");
  close(fd);
  zmq_close(sub);
  zmq_ctx_term(ctx);
}
END_TEST

/*
 * kill -9 while bumps stream in and settle: every acknowledged bump, and every
 * retried one, lands in SQLite exactly once, matching the Redis counter.
 */
START_TEST(kill9_during_settlement_loses_nothing_doubles_nothing) {
  enum { N = 600, WINDOW = 32 };
  char keys[N][16];
  int acked[N] = {0};
  for (int i = 0; i < N; i++) snprintf(keys[i], sizeof keys[i], "kill-%d", i);
  Gm__Testmkt__BumpRequest b = GM__TESTMKT__BUMP_REQUEST__INIT;
  b.note = "load";
  /* Pipelined: WINDOW requests in flight, kill -9 part way through. */
  int sent = 0, got = 0;
  while (got < N / 2) {
    while (sent < N && sent - got < WINDOW) {
      gm_test_send(conn, (uint64_t)sent + 1, "alice", "testmkt", "bump",
                   keys[sent], &b.base);
      sent++;
    }
    Gm__Reply *r = gm_test_conn_recv(conn, 5000);
    ck_assert_ptr_nonnull(r);
    ck_assert_msg(r->status == GM__STATUS__OK, "%s", r->message);
    acked[r->request_id - 1] = 1;
    got++;
    gm__reply__free_unpacked(r, NULL);
  }
  gm_test_gmd_kill9(gmd);
  gm_test_gmd_restart(gmd);
  gm_test_conn_destroy(&conn);
  conn = gm_test_conn_new(gm_test_gmd_endpoint(gmd), NULL, NULL, NULL);
  /* The client retries everything not acknowledged, with the same keys. */
  int retried = 0;
  for (int i = 0; i < N; i++)
    if (!acked[i]) {
      bump("alice", keys[i], "load");
      retried++;
    }
  ck_assert_int_gt(retried, 0);
  ck_assert_int_eq(redis_counter(), N);
  ck_assert_int_eq(wait_settled(N), N);
  ck_assert_int_eq(ledger_count("SELECT count(DISTINCT seq) FROM testmkt_bumps"
                                " WHERE seq BETWEEN 1 AND 600"),
                   N);
  ck_assert_int_eq(
      ledger_count("SELECT count(*) FROM gm_settled WHERE kind = 'bump'"), N);
}
END_TEST

/*
 * Redis restarted under a running gmd (here: without persistence, so every
 * script and key is gone): requests fail with UNAVAILABLE at worst, never
 * crash the broker, and work again once Redis is back; what is emitted after
 * the restart still settles.
 */
START_TEST(redis_restart_is_survived) {
  /* Every worker has used its connection and the scripts are loaded. */
  for (int i = 0; i < 4; i++) {
    Gm__WhoamiRequest w = GM__WHOAMI_REQUEST__INIT;
    Gm__Reply *r = gm_test_call(conn, "alice", "gm", "whoami", NULL, &w.base);
    ck_assert_int_eq(r->status, GM__STATUS__OK);
    gm__reply__free_unpacked(r, NULL);
  }
  gm_test_redis_restart(redis);
  /* Each worker finds out on its own; give every one a request. */
  for (int i = 0; i < 8; i++) {
    char key[16];
    snprintf(key, sizeof key, "after-%d", i);
    Gm__Testmkt__BumpRequest req = GM__TESTMKT__BUMP_REQUEST__INIT;
    req.note = "after";
    Gm__Reply *r =
        gm_test_call(conn, "alice", "testmkt", "bump", key, &req.base);
    ck_assert_ptr_nonnull(r);
    ck_assert_msg(r->status == GM__STATUS__OK, "bump after restart: %s",
                  r->message);
    gm__reply__free_unpacked(r, NULL);
    Gm__WhoamiRequest w = GM__WHOAMI_REQUEST__INIT;
    r = gm_test_call(conn, "alice", "gm", "whoami", NULL, &w.base);
    ck_assert_ptr_nonnull(r);
    ck_assert_msg(r->status == GM__STATUS__OK, "whoami: %s", r->message);
    gm__reply__free_unpacked(r, NULL);
  }
  ck_assert_int_eq(redis_counter(), 8);
  ck_assert_int_eq(wait_settled(8), 8);
}
END_TEST

/*
 * Many clients with many requests in flight, through workers that each run
 * up to [broker] pipeline requests at once on fibers: every request runs
 * once, in Redis and in the ledger, and a retry of every one (the same keys)
 * replays the first replies.  Run with a pipeline smaller than what is in
 * flight, and with a pipeline of one (no interleaving at all).
 */
static void burst(const char *extra, int nconn, int per_conn) {
  start(extra);
  enum { WINDOW = 48, MAXN = 1024 };
  int n = nconn * per_conn;
  ck_assert_int_le(n, MAXN);
  static int64_t seq_of[MAXN];
  gm_test_conn *c[8];
  ck_assert_int_le(nconn, 8);
  for (int k = 0; k < nconn; k++)
    c[k] = gm_test_conn_new(gm_test_gmd_endpoint(gmd), NULL, NULL, NULL);
  Gm__Testmkt__BumpRequest b = GM__TESTMKT__BUMP_REQUEST__INIT;
  b.note = "burst";
  for (int pass = 0; pass < 2; pass++) {
    int sent[8] = {0}, got[8] = {0}, done = 0;
    while (done < n) {
      for (int k = 0; k < nconn; k++) {
        while (sent[k] < per_conn && sent[k] - got[k] < WINDOW) {
          char key[32];
          snprintf(key, sizeof key, "burst-%d-%d", k, sent[k]);
          gm_test_send(c[k], (uint64_t)sent[k] + 1, "alice", "testmkt", "bump",
                       key, &b.base);
          sent[k]++;
        }
        while (got[k] < sent[k]) {
          Gm__Reply *r = gm_test_conn_recv(c[k], got[k] ? 0 : 5000);
          if (!r) break;
          ck_assert_msg(r->status == GM__STATUS__OK, "%s", r->message);
          Gm__Testmkt__BumpReply *br =
              gm__testmkt__bump_reply__unpack(NULL, r->body.len, r->body.data);
          ck_assert_ptr_nonnull(br);
          int i = k * per_conn + (int)(r->request_id - 1);
          if (pass == 0)
            seq_of[i] = br->seq;
          else
            ck_assert_int_eq(br->seq, seq_of[i]); /* replayed, not run */
          gm__testmkt__bump_reply__free_unpacked(br, NULL);
          gm__reply__free_unpacked(r, NULL);
          got[k]++;
          done++;
        }
      }
    }
  }
  for (int k = 0; k < nconn; k++) gm_test_conn_destroy(&c[k]);
  ck_assert_int_eq(redis_counter(), n);
  ck_assert_int_eq(wait_settled(n), n);
  char sql[128];
  snprintf(sql, sizeof sql,
           "SELECT count(DISTINCT seq) FROM testmkt_bumps WHERE seq BETWEEN 1 "
           "AND %d",
           n);
  ck_assert_int_eq(ledger_count(sql), n);
}

START_TEST(pipelined_workers_run_each_request_once) {
  burst("[broker]\nworkers = 2\npipeline = 8\n[plugins]\nload = testmkt\n", 4,
        150);
}
END_TEST

START_TEST(pipeline_of_one_runs_each_request_once) {
  burst("[broker]\nworkers = 1\npipeline = 1\n[plugins]\nload = testmkt\n", 2,
        100);
}
END_TEST

/*
 * Refused plugins leave no trace: a second copy of a loaded market is refused
 * before its init (so the loaded one keeps its scripts), and a plugin that
 * registered a timer before failing init takes the timer with it (else the
 * timer thread would call into the unloaded object).
 */
START_TEST(refused_plugins_leave_no_trace) {
  redis = gm_test_redis_start();
  char *dir = gm_test_redis_path(redis, "plugins");
  ck_assert_int_eq(mkdir(dir, 0755), 0);
  static const char *files[][2] = {
      {"gm_testmkt.so", "gm_testmkt.so"},
      {"gm_testmkt.so", "gm_testmkt_copy.so"},
      {"gm_broken_timer_then_fail.so", "gm_broken_timer.so"}};
  for (size_t i = 0; i < 3; i++) {
    char from[512], to[512];
    snprintf(from, sizeof from, "%s/%s", TEST_PLUGIN_DIR, files[i][0]);
    snprintf(to, sizeof to, "%s/%s", dir, files[i][1]);
    ck_assert_int_eq(symlink(from, to), 0);
  }
  gmd = gm_test_gmd_start(redis, dir, NULL);
  conn = gm_test_conn_new(gm_test_gmd_endpoint(gmd), NULL, NULL, NULL);
  gm_test_sleep_ms(
      300); /* the refused plugin's timer would have fired by now */
  ck_assert_int_eq(bump("alice", "dup-1", "still here"), 1);
  ck_assert(gm_test_gmd_log_has(gmd, "market testmkt is loaded already"));
  ck_assert(gm_test_gmd_log_has(gmd, "init failed with FAILED_PRECONDITION"));
  Gm__StatsReply *s = stats();
  ck_assert_uint_eq(s->n_markets, 2); /* gm and testmkt */
  gm__stats_reply__free_unpacked(s, NULL);
  free(dir);
}
END_TEST

/* `gmd --check -c <conf>` with [plugins] `load`: its exit status; what it
   printed (stdout and stderr) goes to out. */
static int check_load(const char *load, char *out, size_t outlen) {
  return gm_test_gmd_check_load(redis, TEST_PLUGIN_DIR, load, NULL, out,
                                outlen);
}

/*
 * gmd --check is where a plugin's author looks: a plugin it refuses (a
 * wrong ABI, a load name with no file) makes it fail, saying why, instead
 * of "valid; 0 market(s) loaded".  A running gmd still serves the others.
 */
START_TEST(check_fails_when_a_plugin_is_refused) {
  redis = gm_test_redis_start();
  char out[8192];
  ck_assert_int_eq(check_load("testmkt", out, sizeof out), 0);
  ck_assert_msg(strstr(out, "is valid; 1 market(s) loaded"), "%s", out);
  ck_assert_int_eq(check_load("testmkt,broken_abi", out, sizeof out), 1);
  ck_assert_msg(strstr(out,
                       "built for plugin ABI 999, this gmd speaks ABI "
                       "1: rebuild the plugin"),
                "%s", out);
  ck_assert_msg(strstr(out,
                       "1 plugin(s) refused (the lines above say why), "
                       "1 market(s) loaded; fix them, or take them out "
                       "of [plugins] load"),
                "%s", out);
  ck_assert_int_eq(check_load("testmk", out, sizeof out), 1);
  ck_assert_msg(strstr(out,
                       "gm_testmk.so: refused: no such file; [plugins] "
                       "load names a market by the X of gm_X.so in "
                       "[plugins] dir"),
                "%s", out);
  ck_assert_msg(strstr(out, "testmkt"), "the markets there: %s", out);
}
END_TEST

/*
 * A market's setting out of its range (gm_config_long, plugin.h) refuses
 * the market, saying what to write, instead of running on a default the
 * operator never wrote (the markets logged a warning and used it).
 */
START_TEST(a_market_setting_out_of_range_refuses_the_market) {
  redis = gm_test_redis_start();
  char out[8192];
  ck_assert_int_eq(
      gm_test_gmd_check_load(redis, TEST_PLUGIN_DIR, "testmkt",
                             "[market.testmkt]\ntest_kill_in_deadline = 0\n",
                             out, sizeof out),
      0);
  static const char *bad[] = {"2", "yes", "", "99999999999999999999"};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    char extra[128], want[160];
    snprintf(extra, sizeof extra,
             "[market.testmkt]\ntest_kill_in_deadline = %s\n", bad[i]);
    ck_assert_int_eq(gm_test_gmd_check_load(redis, TEST_PLUGIN_DIR, "testmkt",
                                            extra, out, sizeof out),
                     1);
    snprintf(want, sizeof want,
             "[market.testmkt] test_kill_in_deadline = %s is not a whole "
             "number in 0..1: write one in that range, or remove the line "
             "for the default (0)",
             bad[i]);
    ck_assert_msg(strstr(out, want) && strstr(out,
                                              "init failed with "
                                              "INVALID_ARGUMENT"),
                  "%s: %s", bad[i], out);
  }
}
END_TEST

/*
 * A key a market does not read, in its section (a misspelt setting), was
 * read by no one and its default used in silence: a market that lists
 * its settings (gm_plugin.settings) is refused, the nearest spelling and
 * the keys it reads named.
 */
START_TEST(a_market_key_no_market_reads_refuses_the_market) {
  redis = gm_test_redis_start();
  char out[8192];
  ck_assert_int_eq(gm_test_gmd_check_load(redis, TEST_PLUGIN_DIR, "testmkt",
                                          "[market.testmkt]\ngreeting = hi\n",
                                          out, sizeof out),
                   0);
  ck_assert_int_eq(gm_test_gmd_check_load(redis, TEST_PLUGIN_DIR, "testmkt",
                                          "[market.testmkt]\ngreting = hi\n",
                                          out, sizeof out),
                   1);
  ck_assert_msg(strstr(out,
                       "[market.testmkt] greting: unknown key (did you mean "
                       "greeting?); market testmkt reads greeting, file, "
                       "test_old_release, test_kill_in_deadline") &&
                    strstr(out, "gm_testmkt.so: refused"),
                "%s", out);
}
END_TEST

/* ---- CURVE: identity comes from the key, never from the request ---- */

static char server_pub[41], server_sec[41], admin_pub[41], admin_sec[41];

static void curve_setup(void) {
  ck_assert_int_eq(zmq_curve_keypair(server_pub, server_sec), 0);
  ck_assert_int_eq(zmq_curve_keypair(admin_pub, admin_sec), 0);
  redis = gm_test_redis_start();
  char *keyfile = gm_test_key_file(redis, "server.key", server_pub, server_sec);
  char extra[1024];
  snprintf(extra, sizeof extra,
           "[plugins]\nload = testmkt\n[security]\nmode = curve\n"
           "secret_key_file = %s\nadmin_keys = %s\n",
           keyfile, admin_pub);
  free(keyfile);
  gmd = gm_test_gmd_start_curve(redis, TEST_PLUGIN_DIR, extra, server_pub,
                                admin_pub, admin_sec);
  conn = gm_test_conn_new(gm_test_gmd_endpoint(gmd), server_pub, admin_pub,
                          admin_sec);
}

static Gm__WhoamiReply *whoami(gm_test_conn *c, const char *as) {
  Gm__WhoamiRequest req = GM__WHOAMI_REQUEST__INIT;
  Gm__Reply *r = gm_test_call(c, as, "gm", "whoami", NULL, &req.base);
  ck_assert_ptr_nonnull(r);
  ck_assert_msg(r->status == GM__STATUS__OK, "%s", r->message);
  Gm__WhoamiReply *w =
      gm__whoami_reply__unpack(NULL, r->body.len, r->body.data);
  gm__reply__free_unpacked(r, NULL);
  return w;
}

START_TEST(curve_admits_registered_keys_only) {
  char alice_pub[41], alice_sec[41], eve_pub[41], eve_sec[41];
  zmq_curve_keypair(alice_pub, alice_sec);
  zmq_curve_keypair(eve_pub, eve_sec);
  Gm__Participant p = GM__PARTICIPANT__INIT;
  p.id = "alice";
  p.public_key = alice_pub;
  char *roles[] = {"buyer"};
  p.roles = roles;
  p.n_roles = 1;
  Gm__RegisterRequest reg = GM__REGISTER_REQUEST__INIT;
  reg.participant = &p;
  Gm__Reply *r = gm_test_call(conn, NULL, "gm", "register", "r1", &reg.base);
  ck_assert_msg(r->status == GM__STATUS__OK, "%s", r->message);
  gm__reply__free_unpacked(r, NULL);

  gm_test_conn *alice = gm_test_conn_new(gm_test_gmd_endpoint(gmd), server_pub,
                                         alice_pub, alice_sec);
  /* dev_participant is ignored: the key says who this is. */
  Gm__WhoamiReply *w = whoami(alice, "admin");
  ck_assert_str_eq(w->participant->id, "alice");
  ck_assert_uint_eq(w->participant->n_roles, 1);
  ck_assert_str_eq(w->participant->roles[0], "buyer");
  ck_assert(!w->dev_mode);
  gm__whoami_reply__free_unpacked(w, NULL);
  p.id = "alice2";
  expect_error(gm_test_call(alice, "admin", "gm", "register", "r2", &reg.base),
               GM__STATUS__PERMISSION_DENIED, "needs role admin");
  /* Another participant cannot take alice's key. */
  expect_error(gm_test_call(conn, NULL, "gm", "register", "r3", &reg.base),
               GM__STATUS__ALREADY_EXISTS, "registered to participant alice");
  gm_test_conn_destroy(&alice);

  /* An unregistered key and a plain client get no answer at all: none in
     a second, where a registered key's ping answers in milliseconds (the
     log says why for the key; a plain client fails the CURVE handshake). */
  gm_test_conn *eve =
      gm_test_conn_new(gm_test_gmd_endpoint(gmd), server_pub, eve_pub, eve_sec);
  Gm__PingRequest ping = GM__PING_REQUEST__INIT;
  gm_test_send(eve, 1, NULL, "gm", "ping", NULL, &ping.base);
  ck_assert_ptr_null(gm_test_conn_recv(eve, 1000));
  gm_test_conn_destroy(&eve);
  gm_test_conn *plain =
      gm_test_conn_new(gm_test_gmd_endpoint(gmd), NULL, NULL, NULL);
  gm_test_send(plain, 1, NULL, "gm", "ping", NULL, &ping.base);
  ck_assert_ptr_null(gm_test_conn_recv(plain, 1000));
  gm_test_conn_destroy(&plain);
  ck_assert(gm_test_gmd_log_has(gmd, "refused unregistered client key"));
}
END_TEST

/*
 * Anyone who reaches the endpoint can make a key pair per connection: each
 * one's refusal was a log line, 1000 lines in 3 s from one client (and the
 * same on the feeds).  A few a window now, the next printed one counting
 * the rest; a registered key is still admitted in the middle of it.
 */
START_TEST(unregistered_keys_cannot_flood_the_log) {
  enum { N = 100 };
  static const char said[] = "refused unregistered client key";
  int before = gm_test_gmd_log_count(gmd, said);
  void *ctx = zmq_ctx_new();
  void *s[N];
  for (int i = 0; i < N; i++) {
    char pub[41], sec[41];
    ck_assert_int_eq(zmq_curve_keypair(pub, sec), 0);
    s[i] = zmq_socket(ctx, ZMQ_DEALER);
    int zero = 0;
    zmq_setsockopt(s[i], ZMQ_LINGER, &zero, sizeof zero);
    zmq_setsockopt(s[i], ZMQ_CURVE_SERVERKEY, server_pub, 40);
    zmq_setsockopt(s[i], ZMQ_CURVE_PUBLICKEY, pub, 40);
    zmq_setsockopt(s[i], ZMQ_CURVE_SECRETKEY, sec, 40);
    ck_assert_int_eq(zmq_connect(s[i], gm_test_gmd_endpoint(gmd)), 0);
  }
  /* Up to 5 s for their handshakes (each unlimited one logged in ms). */
  for (int i = 0; i < 50 && gm_test_gmd_log_count(gmd, said) - before < N; i++)
    zmq_poll(NULL, 0, 100);
  for (int i = 0; i < N; i++) zmq_close(s[i]);
  zmq_ctx_term(ctx);
  Gm__WhoamiReply *w = whoami(conn, NULL);
  gm__whoami_reply__free_unpacked(w, NULL);
  int lines = gm_test_gmd_log_count(gmd, said) - before;
  /* 10 a window, and the run may straddle two. */
  ck_assert_msg(lines >= 1 && lines <= 20,
                "%d log lines for %d refused keys (see %s)", lines, N,
                gm_test_gmd_log(gmd));
}
END_TEST

/* Registers (or re-registers) `id` with key `pub` and `role`, as admin. */
static void register_as_admin(const char *id, const char *pub, const char *role,
                              const char *idem) {
  Gm__Participant p = GM__PARTICIPANT__INIT;
  p.id = (char *)id;
  p.public_key = (char *)pub;
  char *roles[] = {(char *)role};
  p.roles = roles;
  p.n_roles = 1;
  Gm__RegisterRequest reg = GM__REGISTER_REQUEST__INIT;
  reg.participant = &p;
  Gm__Reply *r = gm_test_call(conn, NULL, "gm", "register", idem, &reg.base);
  ck_assert_ptr_nonnull(r);
  ck_assert_msg(r->status == GM__STATUS__OK, "%s", r->message);
  gm__reply__free_unpacked(r, NULL);
}

/* Calls testmkt bump (needs role buyer or seller) over c until its status
   is `want` with `text` in the message, for up to 3 s; fails the test if it
   never is. */
static void bump_until(gm_test_conn *c, Gm__Status want, const char *text) {
  Gm__Testmkt__BumpRequest b = GM__TESTMKT__BUMP_REQUEST__INIT;
  b.note = "until";
  static int n;
  Gm__Status st = (Gm__Status)-1;
  char last[256] = "";
  int ok = 0;
  for (int i = 0; i < 300 && !ok; i++) {
    char key[32];
    snprintf(key, sizeof key, "until-%d", n++);
    Gm__Reply *r = gm_test_call(c, NULL, "testmkt", "bump", key, &b.base);
    ck_assert_ptr_nonnull(r);
    st = r->status;
    snprintf(last, sizeof last, "%s", r->message);
    gm__reply__free_unpacked(r, NULL);
    /* Each worker caches for up to a second: until then a request may still
       see the old state. */
    ok = st == want && (!text || strstr(last, text));
    if (!ok) gm_test_sleep_ms(10);
  }
  ck_assert_msg(ok, "status %d (%s), want %d (%s) within 3 s", st, last, want,
                text ? text : "");
}

/*
 * A connection's key is checked on every request, not only at the
 * handshake: a role change applies without reconnecting, and replacing a
 * participant's key (revoking the old one) cuts off connections that still
 * use it, within a second.
 */
START_TEST(curve_revoked_key_loses_access_without_reconnect) {
  char pub[41], sec[41], pub2[41], sec2[41];
  zmq_curve_keypair(pub, sec);
  zmq_curve_keypair(pub2, sec2);
  register_as_admin("bob", pub, "observer", "b1");
  gm_test_conn *bob =
      gm_test_conn_new(gm_test_gmd_endpoint(gmd), server_pub, pub, sec);
  bump_until(bob, GM__STATUS__PERMISSION_DENIED, "needs role buyer,seller");
  /* Roles change: the open connection gets them. */
  register_as_admin("bob", pub, "buyer", "b2");
  bump_until(bob, GM__STATUS__OK, NULL);
  /* The key is replaced: the old connection is refused, a new one with the
     new key works. */
  register_as_admin("bob", pub2, "buyer", "b3");
  bump_until(bob, GM__STATUS__PERMISSION_DENIED, "no longer registered");
  gm_test_conn_destroy(&bob);
  gm_test_conn *bob2 =
      gm_test_conn_new(gm_test_gmd_endpoint(gmd), server_pub, pub2, sec2);
  bump_until(bob2, GM__STATUS__OK, NULL);
  gm_test_conn_destroy(&bob2);
}
END_TEST

/*
 * Redis restarts while many requests are queued in the workers' pipelines:
 * every request is answered (OK, or UNAVAILABLE when its retry found Redis
 * still down), the broker stays up, and requests after the restart work.
 */
START_TEST(redis_restart_under_pipelined_load) {
  enum { NCONN = 4, PER = 150, WINDOW = 48 };
  gm_test_conn *c[NCONN];
  for (int k = 0; k < NCONN; k++)
    c[k] = gm_test_conn_new(gm_test_gmd_endpoint(gmd), NULL, NULL, NULL);
  Gm__Testmkt__BumpRequest b = GM__TESTMKT__BUMP_REQUEST__INIT;
  b.note = "load";
  int sent[NCONN] = {0}, got[NCONN] = {0}, done = 0, restarted = 0;
  int ok = 0, unavailable = 0;
  while (done < NCONN * PER) {
    for (int k = 0; k < NCONN; k++) {
      while (sent[k] < PER && sent[k] - got[k] < WINDOW) {
        char key[32];
        snprintf(key, sizeof key, "rl-%d-%d", k, sent[k]);
        gm_test_send(c[k], (uint64_t)sent[k] + 1, "alice", "testmkt", "bump",
                     key, &b.base);
        sent[k]++;
      }
      while (got[k] < sent[k]) {
        Gm__Reply *r = gm_test_conn_recv(c[k], got[k] ? 0 : 20000);
        if (!r) break;
        ck_assert_msg(
            r->status == GM__STATUS__OK || r->status == GM__STATUS__UNAVAILABLE,
            "status %d: %s", r->status, r->message);
        ok += r->status == GM__STATUS__OK;
        unavailable += r->status == GM__STATUS__UNAVAILABLE;
        gm__reply__free_unpacked(r, NULL);
        got[k]++;
        done++;
      }
    }
    if (!restarted && done >= NCONN * PER / 4) {
      gm_test_redis_restart(redis);
      restarted = 1;
    }
  }
  ck_assert_int_eq(ok + unavailable, NCONN * PER);
  for (int k = 0; k < NCONN; k++) gm_test_conn_destroy(&c[k]);
  /* The broker is up and Redis works again through it. */
  int64_t seq = bump("alice", "rl-after", "after");
  ck_assert_int_ge(seq, 1);
  ck_assert_int_eq(kill(gm_test_gmd_pid(gmd), 0), 0);
}
END_TEST

/* ---- core methods are idempotent like market methods ---- */

/* Registers `id` with one role and name as root under `key`; the reply's
   participant (caller frees), or NULL with the reply's status in *status. */
static Gm__Participant *register_with(const char *key, const char *id,
                                      const char *role, const char *name,
                                      Gm__Status *status) {
  Gm__Participant p = GM__PARTICIPANT__INIT;
  p.id = (char *)id;
  char *roles[] = {(char *)role};
  p.roles = roles;
  p.n_roles = 1;
  p.name = (char *)name;
  Gm__RegisterRequest reg = GM__REGISTER_REQUEST__INIT;
  reg.participant = &p;
  Gm__Reply *r = gm_test_call(conn, "root", "gm", "register", key, &reg.base);
  ck_assert_ptr_nonnull(r);
  *status = r->status;
  Gm__Participant *out = NULL;
  if (r->status == GM__STATUS__OK) {
    Gm__RegisterReply *rr =
        gm__register_reply__unpack(NULL, r->body.len, r->body.data);
    ck_assert_ptr_nonnull(rr);
    out = rr->participant;
    rr->participant = NULL;
    gm__register_reply__free_unpacked(rr, NULL);
  }
  gm__reply__free_unpacked(r, NULL);
  return out;
}

/* The registry's name of participant id, as Redis holds it. */
static char *registered_name(const char *id) {
  redisContext *rc = gm_test_redis_connect(redis);
  redisReply *r =
      gm_test_redis_cmd(rc, "HGET gm:{participants}:id:%s name", id);
  char *name = strdup(r->type == REDIS_REPLY_STRING ? r->str : "");
  freeReplyObject(r);
  redisFree(rc);
  return name;
}

/* Keys of the core's idempotency records. */
static long long core_records(void) {
  redisContext *rc = gm_test_redis_connect(redis);
  redisReply *r = gm_test_redis_cmd(rc, "KEYS gm:{gm}:idem:*");
  long long n = (long long)r->elements;
  freeReplyObject(r);
  redisFree(rc);
  return n;
}

START_TEST(core_retry_with_the_same_key_returns_the_first_reply) {
  Gm__Status st;
  Gm__Participant *p = register_with("reg-1", "dora", "buyer", "first", &st);
  ck_assert_int_eq(st, GM__STATUS__OK);
  ck_assert_str_eq(p->roles[0], "buyer");
  gm__participant__free_unpacked(p, NULL);
  /* The same key, the same body: the first reply. */
  p = register_with("reg-1", "dora", "buyer", "first", &st);
  ck_assert_int_eq(st, GM__STATUS__OK);
  ck_assert_str_eq(p->roles[0], "buyer");
  ck_assert_str_eq(p->name, "first");
  gm__participant__free_unpacked(p, NULL);
  /* The same key, another body: refused, and nothing changes. */
  p = register_with("reg-1", "dora", "seller", "second", &st);
  ck_assert_int_eq(st, GM__STATUS__INVALID_ARGUMENT);
  ck_assert_ptr_null(p);
  char *name = registered_name("dora");
  ck_assert_str_eq(name, "first");
  free(name);
  /* A new key runs. */
  p = register_with("reg-2", "dora", "seller", "second", &st);
  ck_assert_int_eq(st, GM__STATUS__OK);
  ck_assert_str_eq(p->roles[0], "seller");
  gm__participant__free_unpacked(p, NULL);
  name = registered_name("dora");
  ck_assert_str_eq(name, "second");
  free(name);
  ck_assert_int_eq(core_records(), 2);
  /* The key is the caller's: another admin's reg-1 is its own request. */
  Gm__Participant q = GM__PARTICIPANT__INIT;
  q.id = "dora";
  char *roles[] = {"observer"};
  q.roles = roles;
  q.n_roles = 1;
  Gm__RegisterRequest reg = GM__REGISTER_REQUEST__INIT;
  reg.participant = &q;
  Gm__Reply *r =
      gm_test_call(conn, "ops", "gm", "register", "reg-1", &reg.base);
  ck_assert_int_eq(r->status, GM__STATUS__OK);
  gm__reply__free_unpacked(r, NULL);
  ck_assert_int_eq(core_records(), 3);
}
END_TEST

/* Refused requests leave no record (nothing grows with refusals), so the
   same key runs once the cause is fixed. */
START_TEST(core_refusals_leave_nothing_behind) {
  Gm__Status st;
  for (int i = 0; i < 20; i++) {
    char key[32];
    snprintf(key, sizeof key, "bad-%d", i);
    ck_assert_ptr_null(register_with(key, "erik", "wizard", "x", &st));
    ck_assert_int_eq(st, GM__STATUS__INVALID_ARGUMENT);
  }
  ck_assert_int_eq(core_records(), 0);
  Gm__Participant *p = register_with("bad-0", "erik", "buyer", "x", &st);
  ck_assert_int_eq(st, GM__STATUS__OK);
  gm__participant__free_unpacked(p, NULL);
  ck_assert_int_eq(core_records(), 1);
  /* A record is the reply and no more: small and bounded. */
  redisContext *rc = gm_test_redis_connect(redis);
  ck_assert_int_lt(
      gm_test_redis_int(rc, "STRLEN gm:{gm}:idem:root:register:bad-0"), 200);
  ck_assert_int_gt(
      gm_test_redis_int(rc, "TTL gm:{gm}:idem:root:register:bad-0"), 0);
  redisFree(rc);
}
END_TEST

/*
 * Concurrent retries of one request: exactly one runs; the others get its
 * reply, or UNAVAILABLE while it runs.  Another request with the key is
 * refused afterwards, and the registry holds what the first said.
 */
START_TEST(core_concurrent_retries_run_once) {
  enum { N = 16 };
  gm_test_conn *c[N];
  for (int k = 0; k < N; k++) {
    c[k] = gm_test_conn_new(gm_test_gmd_endpoint(gmd), NULL, NULL, NULL);
    Gm__Participant p = GM__PARTICIPANT__INIT;
    p.id = "fay";
    char *roles[] = {"buyer"};
    p.roles = roles;
    p.n_roles = 1;
    p.name = "racer"; /* retries of one request: the same body */
    Gm__RegisterRequest reg = GM__REGISTER_REQUEST__INIT;
    reg.participant = &p;
    gm_test_send(c[k], 1, "root", "gm", "register", "race", &reg.base);
  }
  char *winner = NULL;
  int ok = 0;
  for (int k = 0; k < N; k++) {
    Gm__Reply *r = gm_test_conn_recv(c[k], 5000);
    ck_assert_ptr_nonnull(r);
    ck_assert_msg(
        r->status == GM__STATUS__OK || (r->status == GM__STATUS__UNAVAILABLE &&
                                        strstr(r->message, "still running")),
        "status %d: %s", r->status, r->message);
    if (r->status == GM__STATUS__OK) {
      Gm__RegisterReply *rr =
          gm__register_reply__unpack(NULL, r->body.len, r->body.data);
      if (!winner) winner = strdup(rr->participant->name);
      ck_assert_str_eq(rr->participant->name, winner);
      gm__register_reply__free_unpacked(rr, NULL);
      ok++;
    }
    gm__reply__free_unpacked(r, NULL);
    gm_test_conn_destroy(&c[k]);
  }
  ck_assert_int_ge(ok, 1);
  ck_assert_str_eq(winner, "racer");
  /* Another request with the key is refused. */
  Gm__Status st;
  ck_assert_ptr_null(register_with("race", "fay", "buyer", "intruder", &st));
  ck_assert_int_eq(st, GM__STATUS__INVALID_ARGUMENT);
  char *name = registered_name("fay");
  ck_assert_str_eq(name, winner);
  free(name);
  free(winner);
}
END_TEST

/* clock.set keeps its first reply too: the clock does not move. */
START_TEST(core_clock_set_retry_changes_nothing) {
  start("[plugins]\nload = testmkt\n[testing]\nclock = manual\n");
  Gm__ClockSetRequest set = GM__CLOCK_SET_REQUEST__INIT;
  set.time_ms = 1700000000000;
  Gm__Reply *r =
      gm_test_call(conn, "root", "gm", "clock.set", "c-1", &set.base);
  ck_assert_msg(r->status == GM__STATUS__OK, "%s", r->message);
  gm__reply__free_unpacked(r, NULL);
  set.time_ms = 1800000000000; /* another request with the key: refused */
  expect_error(gm_test_call(conn, "root", "gm", "clock.set", "c-1", &set.base),
               GM__STATUS__INVALID_ARGUMENT, "first used for a different");
  set.time_ms = 1700000000000; /* the retry: its first reply */
  r = gm_test_call(conn, "root", "gm", "clock.set", "c-1", &set.base);
  ck_assert_int_eq(r->status, GM__STATUS__OK);
  Gm__ClockReply *cr = gm__clock_reply__unpack(NULL, r->body.len, r->body.data);
  ck_assert_int_eq(cr->time_ms, 1700000000000);
  gm__clock_reply__free_unpacked(cr, NULL);
  gm__reply__free_unpacked(r, NULL);
  /* The clock did not move: ping reads it. */
  Gm__PingRequest ping = GM__PING_REQUEST__INIT;
  r = gm_test_call(conn, NULL, "gm", "ping", NULL, &ping.base);
  Gm__PingReply *p = gm__ping_reply__unpack(NULL, r->body.len, r->body.data);
  ck_assert_int_eq(p->time_ms, 1700000000000);
  gm__ping_reply__free_unpacked(p, NULL);
  gm__reply__free_unpacked(r, NULL);
  set.time_ms = 1800000000000; /* a new key moves it */
  r = gm_test_call(conn, "root", "gm", "clock.set", "c-2", &set.base);
  cr = gm__clock_reply__unpack(NULL, r->body.len, r->body.data);
  ck_assert_int_eq(cr->time_ms, 1800000000000);
  gm__clock_reply__free_unpacked(cr, NULL);
  gm__reply__free_unpacked(r, NULL);
}
END_TEST

/* ---- dead letters ---- */

static Gm__DeadLettersReply *dead_letters_of(const char *market) {
  Gm__DeadLettersRequest req = GM__DEAD_LETTERS_REQUEST__INIT;
  req.market = (char *)market;
  Gm__Reply *r =
      gm_test_call(conn, "root", "gm", "deadletters.list", NULL, &req.base);
  ck_assert_ptr_nonnull(r);
  ck_assert_msg(r->status == GM__STATUS__OK, "%s", r->message);
  Gm__DeadLettersReply *d =
      gm__dead_letters_reply__unpack(NULL, r->body.len, r->body.data);
  gm__reply__free_unpacked(r, NULL);
  ck_assert_ptr_nonnull(d);
  return d;
}

static Gm__DeadLettersReply *dead_letters(void) {
  return dead_letters_of("");
}

/* Replays stream/id with `key`: the reply (caller frees). */
static Gm__Reply *replay(const char *stream, const char *id, const char *key) {
  Gm__ReplayRequest req = GM__REPLAY_REQUEST__INIT;
  req.stream = (char *)stream;
  req.id = (char *)id;
  Gm__Reply *r =
      gm_test_call(conn, "root", "gm", "deadletters.replay", key, &req.base);
  ck_assert_ptr_nonnull(r);
  return r;
}

static char *replayed_id(Gm__Reply *r) {
  ck_assert_msg(r->status == GM__STATUS__OK, "%s", r->message);
  Gm__ReplayReply *rr =
      gm__replay_reply__unpack(NULL, r->body.len, r->body.data);
  char *id = strdup(rr->id);
  gm__replay_reply__free_unpacked(rr, NULL);
  gm__reply__free_unpacked(r, NULL);
  return id;
}

/* Waits (up to 15 s) until `sql` counts `want`. */
static long long wait_count(const char *sql, long long want) {
  long long n = -1;
  for (int i = 0; i < 1500 && n != want; i++) {
    n = ledger_count(sql);
    if (n != want) gm_test_sleep_ms(10);
  }
  return n;
}

/*
 * An entry of a market no plugin settles is set aside; an admin lists it
 * with its fields and puts it back; a retry of that call gets the same new
 * entry, another call is refused; the entry, set aside again (still no
 * plugin), replaces its old row: one row per letter, never two.
 */
START_TEST(dead_letter_is_listed_and_replayed_once) {
  redisContext *rc = gm_test_redis_connect(redis);
  const char *stream = "gm:{ghost:x}:outbox";
  freeReplyObject(gm_test_redis_cmd(rc, "SADD gm:outboxes %s", stream));
  redisReply *x =
      gm_test_redis_cmd(rc, "XADD %s * kind thing a 1 b two", stream);
  char *old_id = strdup(x->str);
  freeReplyObject(x);
  ck_assert_int_eq(wait_count("SELECT count(*) FROM gm_dead_letter", 1), 1);

  Gm__DeadLettersReply *d = dead_letters();
  ck_assert_uint_eq(d->n_dead_letters, 1);
  Gm__DeadLetter *l = d->dead_letters[0];
  ck_assert_str_eq(l->stream, stream);
  ck_assert_str_eq(l->id, old_id);
  ck_assert_str_eq(l->market, "ghost");
  ck_assert_str_eq(l->kind, "thing");
  ck_assert_ptr_nonnull(strstr(l->error, "no loaded plugin"));
  ck_assert_uint_eq(l->n_fields, 2);
  ck_assert_str_eq(l->fields[1]->name, "b");
  ck_assert_str_eq(l->fields[1]->value, "two");
  ck_assert_str_eq(l->replayed_as, "");
  gm__dead_letters_reply__free_unpacked(d, NULL);
  d = dead_letters_of("testmkt"); /* another market's: none */
  ck_assert_uint_eq(d->n_dead_letters, 0);
  gm__dead_letters_reply__free_unpacked(d, NULL);
  d = dead_letters_of("ghost");
  ck_assert_uint_eq(d->n_dead_letters, 1);
  gm__dead_letters_reply__free_unpacked(d, NULL);

  /* Non-admins may not; bad input changes nothing. */
  Gm__Participant p = GM__PARTICIPANT__INIT;
  p.id = "carol";
  char *roles[] = {"buyer"};
  p.roles = roles;
  p.n_roles = 1;
  Gm__RegisterRequest reg = GM__REGISTER_REQUEST__INIT;
  reg.participant = &p;
  gm__reply__free_unpacked(
      gm_test_call(conn, "root", "gm", "register", "reg-c", &reg.base), NULL);
  Gm__ReplayRequest rq = GM__REPLAY_REQUEST__INIT;
  rq.stream = (char *)stream;
  rq.id = old_id;
  expect_error(
      gm_test_call(conn, "carol", "gm", "deadletters.replay", "c1", &rq.base),
      GM__STATUS__PERMISSION_DENIED, "needs role admin");
  expect_error(replay(stream, "0-1", "bad1"), GM__STATUS__NOT_FOUND,
               "no dead letter");
  expect_error(replay("", old_id, "bad2"), GM__STATUS__INVALID_ARGUMENT,
               "stream and id");
  /* A mistyped id is named as such, not "no dead letter". */
  expect_error(replay(stream, "1795483414822", "bad3"),
               GM__STATUS__INVALID_ARGUMENT,
               "'1795483414822' is not a stream entry id: give it as gm "
               "admin dead-letters prints it, <ms>-<seq>");
  expect_error(replay(stream, "17x-0", "bad4"), GM__STATUS__INVALID_ARGUMENT,
               "is not a stream entry id");

  /* Hold the settler off this stream's new entries?  Not needed: the
     replay record refuses a second replay until the letter leaves. */
  char *new_id = replayed_id(replay(stream, old_id, "rp-1"));
  ck_assert_str_ne(new_id, old_id);
  char *again = replayed_id(replay(stream, old_id, "rp-1"));
  ck_assert_str_eq(again, new_id); /* the same request retried */
  free(again);
  /* Set aside again under its new id; the old row is gone. */
  char sql[256];
  snprintf(sql, sizeof sql,
           "SELECT count(*) FROM gm_dead_letter WHERE id = '%s'", new_id);
  ck_assert_int_eq(wait_count(sql, 1), 1);
  ck_assert_int_eq(ledger_count("SELECT count(*) FROM gm_dead_letter"), 1);
  ck_assert_int_eq(ledger_count("SELECT count(*) FROM gm_dead_letter_field"),
                   2);
  /* The old letter is gone: replaying it is refused, its new one works. */
  expect_error(replay(stream, old_id, "rp-2"), GM__STATUS__NOT_FOUND,
               "was set aside under a new id");
  d = dead_letters();
  ck_assert_uint_eq(d->n_dead_letters, 1);
  ck_assert_str_eq(d->dead_letters[0]->id, new_id);
  ck_assert_str_eq(d->dead_letters[0]->fields[0]->value, "1");
  gm__dead_letters_reply__free_unpacked(d, NULL);
  free(new_id);
  free(old_id);
  redisFree(rc);
}
END_TEST

/* An entry of a stream the host did not make (no gm:{market:tag} tag) is
   kept as a dead letter but cannot be replayed: its replay record could not
   share its Redis Cluster slot. */
START_TEST(foreign_stream_letter_is_not_replayed) {
  redisContext *rc = gm_test_redis_connect(redis);
  freeReplyObject(gm_test_redis_cmd(rc, "SADD gm:outboxes weird-stream"));
  redisReply *x = gm_test_redis_cmd(rc, "XADD weird-stream * kind x a 1");
  char *id = strdup(x->str);
  freeReplyObject(x);
  ck_assert_int_eq(wait_count("SELECT count(*) FROM gm_dead_letter", 1), 1);
  expect_error(replay("weird-stream", id, "w-1"),
               GM__STATUS__FAILED_PRECONDITION, "not an outbox stream");
  /* Set aside, then trimmed; the refused replay appended nothing. */
  ck_assert_int_eq(gm_test_redis_int(rc, "XLEN weird-stream"), 0);
  free(id);
  redisFree(rc);
}
END_TEST

/* A letter whose settlement failed on the ledger settles once the
   operator fixes the cause and replays it. */
START_TEST(replayed_letter_settles_after_the_fix) {
  ck_assert_int_eq(bump("alice", "dl-1", "first"), 1);
  ck_assert_int_eq(wait_settled(1), 1);
  /* An entry that clashes with seq 1 (the plugin's plain INSERT fails). */
  redisContext *rc = gm_test_redis_connect(redis);
  const char *stream = "gm:{testmkt:all}:outbox";
  redisReply *x = gm_test_redis_cmd(
      rc, "XADD %s * kind bump seq 1 note clash who alice", stream);
  char *old_id = strdup(x->str);
  freeReplyObject(x);
  ck_assert_int_eq(wait_count("SELECT count(*) FROM gm_dead_letter", 1), 1);
  /* Later entries settled meanwhile: the letter did not block them. */
  ck_assert_int_eq(bump("alice", "dl-2", "second"), 2);
  ck_assert_int_eq(wait_settled(2), 2);
  /* The operator's fix: the row it clashed with goes. */
  sqlite3 *db;
  ck_assert_int_eq(sqlite3_open(gm_test_gmd_ledger(gmd), &db), SQLITE_OK);
  sqlite3_busy_timeout(db, 5000);
  ck_assert_int_eq(sqlite3_exec(db, "DELETE FROM testmkt_bumps WHERE seq = 1",
                                NULL, NULL, NULL),
                   SQLITE_OK);
  sqlite3_close(db);
  char *new_id = replayed_id(replay(stream, old_id, "fix-1"));
  ck_assert_int_eq(
      wait_count("SELECT count(*) FROM testmkt_bumps WHERE note = 'clash'", 1),
      1);
  ck_assert_int_eq(wait_count("SELECT count(*) FROM gm_dead_letter", 0), 0);
  ck_assert_int_eq(ledger_count("SELECT count(*) FROM gm_dead_letter_field"),
                   0);
  free(new_id);
  free(old_id);
  redisFree(rc);
}
END_TEST

/* The market's scripts are one Redis Functions library: two brokers of one
   build share it, and when Redis loses it (FUNCTION FLUSH, or a new Redis)
   the next call through either broker loads it again and is answered as
   before, retries replaying their first replies. */
START_TEST(function_flush_is_recovered_by_two_brokers) {
  char conf[1024];
  snprintf(conf, sizeof conf,
           "[plugins]\nload = testmkt\n[ledger]\npath = %s\n",
           gm_test_gmd_ledger(gmd));
  gm_test_gmd *g2 = gm_test_gmd_start_named(redis, "b2", TEST_PLUGIN_DIR, conf);
  gm_test_conn *c2 =
      gm_test_conn_new(gm_test_gmd_endpoint(g2), NULL, NULL, NULL);
  ck_assert_int_eq(bump_on(conn, "alice", "f1", "one"), 1);
  ck_assert_int_eq(bump_on(c2, "alice", "f2", "two"), 2);
  redisContext *rc = gm_test_redis_connect(redis);
  redisReply *l =
      gm_test_redis_cmd(rc, "FUNCTION LIST LIBRARYNAME gm_testmkt_*");
  ck_assert_int_eq(l->type, REDIS_REPLY_ARRAY);
  ck_assert_int_eq(l->elements, 1); /* one library for both brokers */
  freeReplyObject(l);
  for (int round = 0; round < 2; round++) {
    freeReplyObject(gm_test_redis_cmd(rc, "FUNCTION FLUSH"));
    /* Both brokers at once: one loads the library, the other finds it
       there (or loads the same text). */
    Gm__Testmkt__BumpRequest b = GM__TESTMKT__BUMP_REQUEST__INIT;
    b.note = "after";
    char k1[16], k2[16];
    snprintf(k1, sizeof k1, "a%d", round);
    snprintf(k2, sizeof k2, "b%d", round);
    gm_test_send(conn, 1, "alice", "testmkt", "bump", k1, &b.base);
    gm_test_send(c2, 1, "alice", "testmkt", "bump", k2, &b.base);
    int64_t seqs = 0;
    gm_test_conn *cs[] = {conn, c2};
    for (int k = 0; k < 2; k++) {
      Gm__Reply *r = gm_test_conn_recv(cs[k], 5000);
      ck_assert_ptr_nonnull(r);
      ck_assert_msg(r->status == GM__STATUS__OK, "broker %d: %s", k + 1,
                    r->message);
      Gm__Testmkt__BumpReply *br =
          gm__testmkt__bump_reply__unpack(NULL, r->body.len, r->body.data);
      seqs += br->seq;
      gm__testmkt__bump_reply__free_unpacked(br, NULL);
      gm__reply__free_unpacked(r, NULL);
    }
    ck_assert_int_eq(seqs, round == 0 ? 3 + 4 : 5 + 6);
  }
  /* Retries through the other broker replay; nothing ran twice. */
  ck_assert_int_eq(bump_on(c2, "alice", "f1", "one"), 1);
  ck_assert_int_eq(bump_on(conn, "alice", "f2", "two"), 2);
  ck_assert_int_eq(redis_counter(), 6);
  ck_assert_int_eq(wait_settled(6), 6);
  redisFree(rc);
  gm_test_conn_destroy(&c2);
  gm_test_gmd_stop(&g2);
}
END_TEST

int main(void) {
  Suite *s = suite_create("gmd");
  TCase *tc = tcase_create("dev mode");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, ping_and_markets);
  tcase_add_test(tc, garbage_gets_clear_errors_and_the_broker_goes_on);
  tcase_add_test(tc, unknown_markets_methods_and_bodies);
  tcase_add_test(tc, plugin_errors_identity_and_config_reach_the_caller);
  tcase_add_test(tc, roles_are_enforced);
  tcase_add_test(tc, idempotent_retries_change_nothing);
  tcase_add_test(tc, events_reach_the_feed);
  tcase_add_test(tc, events_nobody_subscribes_to_are_not_sent);
  tcase_add_test(tc, resubscribing_one_prefix_does_not_turn_every_event_on);
  tcase_add_test(tc, a_stray_unsubscribe_stops_nobody_s_events);
  tcase_add_test(tc, kill9_during_settlement_loses_nothing_doubles_nothing);
  tcase_add_test(tc, redis_restart_is_survived);
  tcase_add_test(tc, redis_restart_under_pipelined_load);
  tcase_add_test(tc, function_flush_is_recovered_by_two_brokers);
  tcase_add_test(tc, dead_letter_is_listed_and_replayed_once);
  tcase_add_test(tc, replayed_letter_settles_after_the_fix);
  tcase_add_test(tc, foreign_stream_letter_is_not_replayed);
  tcase_add_test(tc, core_retry_with_the_same_key_returns_the_first_reply);
  tcase_add_test(tc, core_refusals_leave_nothing_behind);
  tcase_add_test(tc, core_concurrent_retries_run_once);
  suite_add_tcase(s, tc);
  TCase *tc3 = tcase_create("loading");
  tcase_add_checked_fixture(tc3, NULL, teardown);
  tcase_set_timeout(tc3, 60);
  tcase_add_test(tc3, refused_plugins_leave_no_trace);
  tcase_add_test(tc3, check_fails_when_a_plugin_is_refused);
  tcase_add_test(tc3, a_market_setting_out_of_range_refuses_the_market);
  tcase_add_test(tc3, a_market_key_no_market_reads_refuses_the_market);
  tcase_add_test(tc3, pipelined_workers_run_each_request_once);
  tcase_add_test(tc3, pipeline_of_one_runs_each_request_once);
  tcase_add_test(tc3, core_clock_set_retry_changes_nothing);
  suite_add_tcase(s, tc3);
  TCase *tc2 = tcase_create("curve");
  tcase_add_checked_fixture(tc2, curve_setup, teardown);
  tcase_set_timeout(tc2, 120);
  tcase_add_test(tc2, curve_admits_registered_keys_only);
  tcase_add_test(tc2, unregistered_keys_cannot_flood_the_log);
  tcase_add_test(tc2, curve_revoked_key_loses_access_without_reconnect);
  suite_add_tcase(s, tc2);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
