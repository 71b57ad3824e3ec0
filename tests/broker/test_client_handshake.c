/*
 * libgmclient's CURVE handshake watch against a real gmd (CURVE mode) and a
 * real redis-server: a key the broker refuses is told at once, and nothing
 * else ever is.  A broker restart (kill -9 included), a Redis that is still
 * loading its data, a key registered after it was refused: none of these
 * may end a call with "your key is refused".  And the watch leaves no
 * socket behind.
 */
#include <check.h>
#include <dirent.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zmq.h>

#include "gmd_fixture.h"
#include "greenmarket.pb-c.h"
#include "greenmarket/client.h"
#include "redis_fixture.h"
#include "testmkt.pb-c.h"

static gm_test_redis *redis;
static gm_test_gmd *gmd;
static gm_test_conn *admin; /* the bootstrap admin */
static char server_pub[41], server_sec[41], admin_pub[41], admin_sec[41];

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void start(int aof) {
  ck_assert_int_eq(zmq_curve_keypair(server_pub, server_sec), 0);
  ck_assert_int_eq(zmq_curve_keypair(admin_pub, admin_sec), 0);
  redis = aof ? gm_test_redis_start_aof(1) : gm_test_redis_start();
  char *keyfile = gm_test_key_file(redis, "server.key", server_pub, server_sec);
  char extra[1024];
  snprintf(extra, sizeof extra,
           "[plugins]\nload = testmkt\n[security]\nmode = curve\n"
           "secret_key_file = %s\nadmin_keys = %s\n",
           keyfile, admin_pub);
  free(keyfile);
  gmd = gm_test_gmd_start_curve(redis, TEST_PLUGIN_DIR, extra, server_pub,
                                admin_pub, admin_sec);
  admin = gm_test_conn_new(gm_test_gmd_endpoint(gmd), server_pub, admin_pub,
                           admin_sec);
}

static void setup(void) {
  start(0);
}

static void teardown(void) {
  gm_test_conn_destroy(&admin);
  gm_test_gmd_stop(&gmd);
  gm_test_redis_stop(&redis);
}

static void register_key(const char *id, const char *pub) {
  Gm__Participant p = GM__PARTICIPANT__INIT;
  p.id = (char *)id;
  p.public_key = (char *)pub;
  char *roles[] = {"buyer"};
  p.roles = roles;
  p.n_roles = 1;
  Gm__RegisterRequest reg = GM__REGISTER_REQUEST__INIT;
  reg.participant = &p;
  char idem[64];
  snprintf(idem, sizeof idem, "reg-%s", id);
  Gm__Reply *r = gm_test_call(admin, NULL, "gm", "register", idem, &reg.base);
  ck_assert_ptr_nonnull(r);
  ck_assert_msg(r->status == GM__STATUS__OK, "%s", r->message);
  gm__reply__free_unpacked(r, NULL);
}

static gm_client *client_for(const char *pub, const char *sec,
                             const char *server, int timeout_ms, int retries) {
  gm_client_options o;
  gm_client_options_init(&o);
  o.timeout_ms = timeout_ms;
  o.retries = retries;
  o.server_public_key = server;
  o.public_key = pub;
  o.secret_key = sec;
  gm_client *c = gm_client_new(gm_test_gmd_endpoint(gmd), &o);
  ck_assert_msg(c != NULL, "%s", gm_client_last_error());
  return c;
}

/* gmd's log has text within 2 s. */
static int log_soon(const char *text) {
  for (int i = 0; i < 100; i++) {
    if (gm_test_gmd_log_has(gmd, text)) return 1;
    gm_test_sleep_ms(20);
  }
  return 0;
}

static gm_status ping(gm_client *c, gm_result *r) {
  Gm__PingRequest req = GM__PING_REQUEST__INIT;
  req.echo = "hi";
  return gm_client_call(c, "gm", "ping", NULL, &req.base,
                        &gm__ping_reply__descriptor, r);
}

/*
 * A refusal is about the key as the broker sees it now: once an admin
 * registers it, the same client is served (docs/client.md tells the user
 * to have it registered and try again).  Before the fix the refusal stuck
 * to the client's socket and every later call was refused at once, with no
 * handshake refused any more.
 */
START_TEST(a_refused_key_is_served_once_registered) {
  char pub[41], sec[41];
  ck_assert_int_eq(gm_keypair(pub, sec), GM_OK);
  gm_client *c = client_for(pub, sec, server_pub, 2000, 2);
  gm_result r;
  ck_assert_int_eq(ping(c, &r), GM_PERMISSION_DENIED);
  ck_assert(!r.answered);
  ck_assert_msg(strstr(r.message, pub), "%s", r.message);
  gm_result_clear(&r);
  ck_assert_int_eq(ping(c, &r), GM_PERMISSION_DENIED);
  gm_result_clear(&r);

  register_key("late", pub);
  int64_t t0 = now_ms();
  ck_assert_msg(ping(c, &r) == GM_OK, "%s: %s", gm_status_name(r.status),
                r.message);
  /* At once: the refused connection is replaced, not waited out. */
  ck_assert_int_lt(now_ms() - t0, 1500);
  ck_assert(r.answered);
  gm_result_clear(&r);
  gm_client_destroy(&c);
}
END_TEST

/*
 * A Redis restarted with its data answers LOADING for a while.  The broker
 * cannot read its participant registry then: that is "try later" (ZAP 300),
 * never "this key is not registered" (400).  Before the fix the ZAP handler
 * took any error reply for a missing key, and a registered participant's
 * call ended PERMISSION_DENIED "no participant is registered with it".
 */
START_TEST(a_loading_registry_is_not_a_refused_key) {
  start(1);
  char pub[41], sec[41];
  ck_assert_int_eq(gm_keypair(pub, sec), GM_OK);
  register_key("bob", pub);
  gm_client *c = client_for(pub, sec, server_pub, 300, 0);
  gm_result r;
  ck_assert_msg(ping(c, &r) == GM_OK, "%s", r.message);
  gm_result_clear(&r);

  gm_test_redis_restart_with_long_load(redis);
  int unavailable = 0, said_later = 0, done = 0;
  for (int i = 0; i < 100 && !done; i++) {
    /* A new client each time: a new connection, a new handshake. */
    gm_client *n = client_for(pub, sec, server_pub, 300, -1);
    gm_status s = ping(n, &r);
    ck_assert_msg(s == GM_OK || s == GM_UNAVAILABLE, "%s while Redis loads: %s",
                  gm_status_name(s), r.message);
    if (s == GM_OK) done = 1;
    if (s == GM_UNAVAILABLE) {
      unavailable++;
      said_later |= strstr(r.message, "participant registry") != NULL;
    }
    gm_result_clear(&r);
    gm_client_destroy(&n);
  }
  ck_assert_msg(unavailable > 0, "Redis loaded too fast: make the data larger");
  ck_assert_msg(said_later, "no UNAVAILABLE pointed at the broker's registry");
  ck_assert(gm_test_gmd_log_has(gmd, "could not check client key"));
  ck_assert(done);
  /* The first client's connection was made before: it still works. */
  ck_assert_msg(ping(c, &r) == GM_OK, "%s", r.message);
  gm_result_clear(&r);
  gm_client_destroy(&c);
}
END_TEST

/*
 * A key whose registry record is not a string (written by something other
 * than gmd) belongs to no participant, as the private feed's re-check reads
 * it: the handshake is refused (ZAP 400) at once and gmd's log names the
 * Redis key and how to repair it.  Before, the WRONGTYPE error was taken
 * for "registry down" (ZAP 300): every call waited out its timeout and
 * ended UNAVAILABLE, for ever, with a log saying "try later".
 */
START_TEST(a_key_record_of_the_wrong_type_is_refused_and_named) {
  char pub[41], sec[41];
  ck_assert_int_eq(gm_keypair(pub, sec), GM_OK);
  register_key("carol", pub);
  redisContext *rc = gm_test_redis_connect(redis);
  freeReplyObject(gm_test_redis_cmd(rc, "DEL gm:{participants}:key:%s", pub));
  freeReplyObject(
      gm_test_redis_cmd(rc, "HSET gm:{participants}:key:%s id carol", pub));
  redisFree(rc);
  gm_client *c = client_for(pub, sec, server_pub, 3000, 0);
  gm_result r;
  int64_t t0 = now_ms();
  gm_status s = ping(c, &r);
  ck_assert_msg(s == GM_PERMISSION_DENIED, "%s: %s", gm_status_name(s),
                r.message);
  ck_assert_int_lt(now_ms() - t0, 2000); /* told, not waited out */
  gm_result_clear(&r);
  gm_client_destroy(&c);
  char want[128];
  snprintf(want, sizeof want, "(Redis key gm:{participants}:key:%s) is not a",
           pub);
  ck_assert_msg(log_soon(want), "gmd's log lacks %s", want);
  ck_assert_msg(log_soon("register the key again"), "gmd's log lacks %s",
                "register the key again");
}
END_TEST

/*
 * gmd's Redis user may not read the registry (an ACL that leaves out GET):
 * no key is refused for it (ZAP 300, UNAVAILABLE), and since it lasts until
 * an operator acts, gmd's log says at ERROR level what the user must be
 * allowed, pointing at [redis] user; before, a WARN with Redis's words only.
 */
START_TEST(a_registry_gmd_may_not_read_is_named_in_the_log) {
  char pub[41], sec[41];
  ck_assert_int_eq(gm_keypair(pub, sec), GM_OK);
  register_key("dave", pub);
  redisContext *rc = gm_test_redis_connect(redis);
  freeReplyObject(gm_test_redis_cmd(rc, "ACL SETUSER default -get"));
  gm_client *c = client_for(pub, sec, server_pub, 500, 0);
  gm_result r;
  gm_status s = ping(c, &r);
  ck_assert_msg(s == GM_UNAVAILABLE, "%s: %s", gm_status_name(s), r.message);
  gm_result_clear(&r);
  gm_client_destroy(&c);
  ck_assert_msg(log_soon("Redis refused gmd's user the read"),
                "gmd's log lacks %s", "Redis refused gmd's user the read");
  ck_assert_msg(log_soon("[redis] user"), "gmd's log lacks %s", "[redis] user");
  freeReplyObject(gm_test_redis_cmd(rc, "ACL SETUSER default +get"));
  redisFree(rc);
  /* Allowed again: the same key is served. */
  c = client_for(pub, sec, server_pub, 3000, 2);
  s = ping(c, &r);
  ck_assert_msg(s == GM_OK, "%s: %s", gm_status_name(s), r.message);
  gm_result_clear(&r);
  gm_client_destroy(&c);
}
END_TEST

/* Calls gm.ping in a loop, on one kept client and on fresh ones, until
   told to stop; keeps the first outcome that is neither OK nor a plain
   UNAVAILABLE. */
typedef struct pinger {
  const char *pub, *sec;
  gm_client *kept;
  atomic_int stop;
  int calls, ok_after_stop;
  char bad[1024];
} pinger;

static void *ping_loop(void *arg) {
  pinger *p = arg;
  gm_client_options o;
  gm_client_options_init(&o);
  o.timeout_ms = 100;
  o.retries = -1;
  o.server_public_key = server_pub;
  o.public_key = p->pub;
  o.secret_key = p->sec;
  for (;;) {
    int stopping = atomic_load(&p->stop);
    /* Fresh clients too: each starts its handshake while gmd starts. */
    gm_client *n = gm_client_new(gm_test_gmd_endpoint(gmd), &o);
    gm_client *use = p->calls % 2 ? n : p->kept;
    gm_result r;
    gm_status s = ping(use, &r);
    if (!p->bad[0] && ((s != GM_OK && s != GM_UNAVAILABLE) ||
                       strstr(r.message ? r.message : "", "CURVE handshake")))
      snprintf(p->bad, sizeof p->bad, "%s: %s", gm_status_name(s), r.message);
    gm_result_clear(&r);
    gm_client_destroy(&n);
    p->calls++;
    if (stopping && s == GM_OK && ++p->ok_after_stop >= 2) break;
    if (stopping && p->calls > 10000) break;
  }
  return NULL;
}

/*
 * gmd killed with -9 under calls, and slow to come back: calls end
 * UNAVAILABLE or OK, on a kept client and on new ones that handshake while
 * gmd starts; never PERMISSION_DENIED, and no message blaming a key.
 */
START_TEST(a_broker_restart_is_never_a_refused_key) {
  char pub[41], sec[41];
  ck_assert_int_eq(gm_keypair(pub, sec), GM_OK);
  register_key("carol", pub);
  gm_client *c = client_for(pub, sec, server_pub, 400, 4);
  gm_result r;
  ck_assert_msg(ping(c, &r) == GM_OK, "%s", r.message);
  gm_result_clear(&r);

  for (int round = 0; round < 3; round++) {
    gm_test_conn_destroy(&admin);
    pinger p = {.pub = pub, .sec = sec, .kept = c};
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, ping_loop, &p), 0);
    gm_test_sleep_ms(100);
    gm_test_gmd_kill9(gmd);
    gm_test_sleep_ms(300 + 300 * round);
    gm_test_gmd_restart(gmd); /* waits for a ping */
    atomic_store(&p.stop, 1);
    pthread_join(t, NULL);
    ck_assert_msg(!p.bad[0], "round %d, across a restart: %s", round, p.bad);
    ck_assert_msg(p.ok_after_stop >= 2, "round %d: no call served after",
                  round);
    /* A call whose attempts span the restart gets the true reply. */
    ck_assert_msg(ping(c, &r) == GM_OK, "after the restart: %s", r.message);
    gm_result_clear(&r);
    admin = gm_test_conn_new(gm_test_gmd_endpoint(gmd), server_pub, admin_pub,
                             admin_sec);
  }
  gm_client_destroy(&c);
}
END_TEST

/*
 * gm_client_recv() waits its whole timeout when nothing comes: the
 * handshake events a wrong server key keeps raising (one per reconnect,
 * every ~100 ms) must not end the wait early.  Before the fix it returned
 * "no reply within 2000 ms" after the first event.
 */
START_TEST(recv_waits_its_whole_timeout_through_handshake_events) {
  char pub[41], sec[41];
  ck_assert_int_eq(gm_keypair(pub, sec), GM_OK);
  register_key("dave", pub);
  gm_client *c = client_for(pub, sec, pub /* not the broker's */, 500, 0);
  gm_result r;
  uint64_t id;
  ck_assert_int_eq(gm_client_send(c, "gm", "ping", NULL, NULL, 0, &id), GM_OK);
  int64_t t0 = now_ms();
  ck_assert_int_eq(gm_client_recv(c, 2000, NULL, &r), GM_UNAVAILABLE);
  int64_t took = now_ms() - t0;
  ck_assert_msg(took >= 1900, "gm_client_recv(2000 ms) returned after %lld ms",
                (long long)took);
  gm_result_clear(&r);
  gm_client_destroy(&c);
}
END_TEST

static void tell(gm_audience audience, const char *who, const char *note) {
  Gm__Testmkt__TellRequest t = GM__TESTMKT__TELL_REQUEST__INIT;
  t.audience = (int32_t)audience;
  t.who = (char *)(who ? who : "");
  t.event = "told";
  t.note = (char *)note;
  Gm__Reply *r = gm_test_call(admin, NULL, "testmkt", "tell", NULL, &t.base);
  ck_assert_ptr_nonnull(r);
  ck_assert_msg(r->status == GM__STATUS__OK, "tell: %s", r->message);
  gm__reply__free_unpacked(r, NULL);
}

/* A feed of the key pub/sec on gmd's feed, subscribed to everything. */
static gm_feed *feed_for(const char *pub, const char *sec) {
  gm_client_options o;
  gm_client_options_init(&o);
  o.server_public_key = server_pub;
  o.public_key = pub;
  o.secret_key = sec;
  /* Not the default 5 s: a feed told to try later connects again sooner
     (a CURVE handshake takes milliseconds, even under ASan). */
  o.feed_handshake_ms = 1000;
  gm_feed *f = gm_feed_new(gm_test_gmd_feed(gmd), &o);
  ck_assert_ptr_nonnull(f);
  ck_assert_int_eq(gm_feed_subscribe(f, ""), GM_OK);
  return f;
}

/*
 * A feed whose key the broker refused is told so once, and "keeps trying
 * and then receives without further action" (client.h) once an admin
 * registers the key: public and private events both.  Before the fix
 * ZeroMQ gave up on a connection refused by ZAP, and the feed stayed
 * silent for good.
 */
START_TEST(a_refused_feed_receives_once_registered) {
  char pub[41], sec[41];
  ck_assert_int_eq(gm_keypair(pub, sec), GM_OK);
  gm_feed *f = feed_for(pub, sec);
  char *topic;
  Gm__Event *ev;
  ck_assert_int_eq(gm_feed_recv(f, &topic, &ev, 3000), GM_PERMISSION_DENIED);
  ck_assert_str_eq(topic, "");
  free(topic);

  register_key("frank", pub);
  int got_public = 0, got_private = 0;
  int64_t until = now_ms() + 20000;
  while ((!got_public || !got_private) && now_ms() < until) {
    tell(GM_AUDIENCE_PUBLIC, NULL, "pub");
    tell(GM_AUDIENCE_PARTICIPANT, "frank", "priv");
    gm_status s = gm_feed_recv(f, &topic, &ev, 300);
    ck_assert_msg(s == GM_OK || s == GM_UNAVAILABLE, "%s: %s",
                  gm_status_name(s), gm_client_last_error());
    if (s == GM_OK) {
      got_public |= topic[0] != '@';
      got_private |= strncmp(topic, "@p:frank ", 9) == 0;
      gm_feed_event_free(&ev);
    }
    free(topic);
  }
  ck_assert_msg(got_public && got_private,
                "after the key was registered: public %d, private %d",
                got_public, got_private);
  gm_feed_destroy(&f);
}
END_TEST

/* Runs an ACL command on the test's Redis as the default user. */
static void acl(const char *cmd) {
  redisContext *rc = gm_test_redis_connect(redis);
  redisReply *r = gm_test_redis_cmd(rc, cmd);
  ck_assert_msg(r && r->type != REDIS_REPLY_ERROR, "%s: %s", cmd,
                r ? r->str : rc->errstr);
  freeReplyObject(r);
  redisFree(rc);
}

/*
 * A feed whose handshake the broker answers "try later" (ZAP 300: its
 * registry cannot be read, here because Redis refuses gmd's user GET)
 * gets nothing back from libzmq: it waited out libzmq's handshake timeout
 * (30 s) before it connected again, and lost the events of those seconds.
 * It now gives a handshake feed_handshake_ms (5 s by default, 1 s here)
 * and connects again, so it receives within seconds of the registry being
 * readable.
 */
START_TEST(a_feed_told_to_try_later_receives_soon_after) {
  char pub[41], sec[41];
  ck_assert_int_eq(gm_keypair(pub, sec), GM_OK);
  register_key("gina", pub);
  acl("ACL SETUSER default -get");
  gm_feed *f = feed_for(pub, sec);
  int told = 0;
  for (int i = 0; i < 500 && !told; i++) {
    told = gm_test_gmd_log_has(gmd, "could not check client key");
    if (!told) gm_test_sleep_ms(20);
  }
  ck_assert_msg(told, "the feed's handshake was not told to try later");
  acl("ACL SETUSER default +get");
  int64_t readable = now_ms();
  int got = 0;
  char *topic;
  Gm__Event *ev;
  while (!got && now_ms() < readable + 45000) {
    tell(GM_AUDIENCE_PUBLIC, NULL, "readable");
    gm_status s = gm_feed_recv(f, &topic, &ev, 300);
    ck_assert_msg(s == GM_OK || s == GM_UNAVAILABLE, "%s: %s",
                  gm_status_name(s), gm_client_last_error());
    if (s == GM_OK) {
      got = 1;
      gm_feed_event_free(&ev);
    }
    free(topic);
  }
  int64_t took = now_ms() - readable;
  ck_assert_msg(got, "no event within 45 s of the registry being readable");
  /* libzmq's own 30 s, against feed_handshake_ms and a reconnect. */
  ck_assert_msg(took < 15000,
                "the first event came %lld ms after the registry was readable",
                (long long)took);
  gm_feed_destroy(&f);
}
END_TEST

/* A handshake limit out of its bounds is refused, named. */
START_TEST(a_feed_handshake_limit_out_of_bounds_is_refused) {
  char pub[41], sec[41];
  ck_assert_int_eq(gm_keypair(pub, sec), GM_OK);
  int bad[] = {-1, 99, 600001};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    gm_client_options o;
    gm_client_options_init(&o);
    o.server_public_key = server_pub;
    o.public_key = pub;
    o.secret_key = sec;
    o.feed_handshake_ms = bad[i];
    gm_feed *f = gm_feed_new(gm_test_gmd_feed(gmd), &o);
    ck_assert_msg(!f, "feed_handshake_ms = %d was accepted", bad[i]);
    ck_assert_msg(strstr(gm_client_last_error(), "feed_handshake_ms"), "%s",
                  gm_client_last_error());
  }
}
END_TEST

static int open_fds(void) {
  DIR *d = opendir("/proc/self/fd");
  ck_assert_ptr_nonnull(d);
  int n = 0;
  while (readdir(d)) n++;
  closedir(d);
  return n;
}

/*
 * Every client and feed with CURVE has a handshake watch (a monitor socket
 * on an inproc endpoint): many of them, refused and admitted, in turn and
 * at once, leave no file descriptor behind and never collide.
 */
START_TEST(handshake_watches_leave_nothing_behind) {
  char pub[41], sec[41], bad_pub[41], bad_sec[41];
  ck_assert_int_eq(gm_keypair(pub, sec), GM_OK);
  ck_assert_int_eq(gm_keypair(bad_pub, bad_sec), GM_OK);
  register_key("erin", pub);
  /* Warm up: the shared context's own descriptors are the baseline. */
  gm_client *keep = client_for(pub, sec, server_pub, 2000, 0);
  gm_result r;
  ck_assert_msg(ping(keep, &r) == GM_OK, "%s", r.message);
  gm_result_clear(&r);
  int before = open_fds();
  for (int i = 0; i < 40; i++) {
    gm_client *a = client_for(pub, sec, server_pub, 2000, 1);
    gm_client *b = client_for(bad_pub, bad_sec, server_pub, 2000, 1);
    ck_assert_msg(ping(a, &r) == GM_OK, "%s", r.message);
    gm_result_clear(&r);
    ck_assert_int_eq(ping(b, &r), GM_PERMISSION_DENIED);
    gm_result_clear(&r);
    gm_client_options o;
    gm_client_options_init(&o);
    o.server_public_key = server_pub;
    o.public_key = bad_pub;
    o.secret_key = bad_sec;
    gm_feed *f = gm_feed_new(gm_test_gmd_feed(gmd), &o);
    ck_assert_ptr_nonnull(f);
    gm_client_destroy(&a);
    gm_client_destroy(&b);
    gm_feed_destroy(&f);
  }
  /* ZeroMQ reaps closed sockets in the background. */
  int after = open_fds();
  for (int i = 0; i < 100 && after > before; i++) {
    gm_test_sleep_ms(20);
    after = open_fds();
  }
  ck_assert_msg(after <= before, "%d descriptors before, %d after", before,
                after);
  gm_client_destroy(&keep);
}
END_TEST

int main(void) {
  Suite *s = suite_create("client_handshake");
  TCase *tc = tcase_create("gmd");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, a_refused_key_is_served_once_registered);
  tcase_add_test(tc, a_broker_restart_is_never_a_refused_key);
  tcase_add_test(tc, recv_waits_its_whole_timeout_through_handshake_events);
  tcase_add_test(tc, handshake_watches_leave_nothing_behind);
  tcase_add_test(tc, a_refused_feed_receives_once_registered);
  tcase_add_test(tc, a_key_record_of_the_wrong_type_is_refused_and_named);
  tcase_add_test(tc, a_registry_gmd_may_not_read_is_named_in_the_log);
  tcase_add_test(tc, a_feed_told_to_try_later_receives_soon_after);
  tcase_add_test(tc, a_feed_handshake_limit_out_of_bounds_is_refused);
  suite_add_tcase(s, tc);
  TCase *loading = tcase_create("loading");
  tcase_add_checked_fixture(loading, NULL, teardown);
  tcase_set_timeout(loading, 120);
  tcase_add_test(loading, a_loading_registry_is_not_a_refused_key);
  suite_add_tcase(s, loading);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
