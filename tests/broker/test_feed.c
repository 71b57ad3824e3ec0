/*
 * Private events end to end: a real redis-server, a real gmd (CURVE, with
 * registered participants) and the client library's gm_feed.  The test
 * market's `tell` publishes its request to any audience.  A subscriber must
 * receive its own participant's and its roles' private events, and never
 * another participant's, whatever it subscribes to.
 */
#include <check.h>
#include <pthread.h>
#include <stdatomic.h>
#include <signal.h>
#include <stdio.h>
#include <stdint.h>
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
static gm_test_conn *admin; /* the bootstrap admin (CURVE) or a dev conn */
static char server_pub[41], server_sec[41], admin_pub[41], admin_sec[41];
static char alice_pub[41], alice_sec[41], bob_pub[41], bob_sec[41];

static void register_key(const char *id, const char *pub, const char *role) {
  Gm__Participant p = GM__PARTICIPANT__INIT;
  p.id = (char *)id;
  p.public_key = (char *)pub;
  char *roles[] = {(char *)role};
  p.roles = roles;
  p.n_roles = 1;
  Gm__RegisterRequest reg = GM__REGISTER_REQUEST__INIT;
  reg.participant = &p;
  /* Each registration its own idempotency key: a change is a new request. */
  static int nreg;
  char idem[64];
  snprintf(idem, sizeof idem, "reg-%s-%d", id, ++nreg);
  Gm__Reply *r = gm_test_call(admin, NULL, "gm", "register", idem, &reg.base);
  ck_assert_ptr_nonnull(r);
  ck_assert_msg(r->status == GM__STATUS__OK, "%s", r->message);
  gm__reply__free_unpacked(r, NULL);
}

/* More of the config for the next curve_setup. */
static const char *curve_extra = "";

static void curve_setup(void) {
  ck_assert_int_eq(zmq_curve_keypair(server_pub, server_sec), 0);
  ck_assert_int_eq(zmq_curve_keypair(admin_pub, admin_sec), 0);
  zmq_curve_keypair(alice_pub, alice_sec);
  zmq_curve_keypair(bob_pub, bob_sec);
  redis = gm_test_redis_start();
  char *keyfile = gm_test_key_file(redis, "server.key", server_pub, server_sec);
  char extra[1024];
  snprintf(extra, sizeof extra,
           "[plugins]\nload = testmkt\n[security]\nmode = curve\n"
           "secret_key_file = %s\nadmin_keys = %s\n"
           "[metrics]\nlisten = 127.0.0.1:0\n%s",
           keyfile, admin_pub, curve_extra);
  free(keyfile);
  gmd = gm_test_gmd_start_curve(redis, TEST_PLUGIN_DIR, extra, server_pub,
                                admin_pub, admin_sec);
  admin = gm_test_conn_new(gm_test_gmd_endpoint(gmd), server_pub, admin_pub,
                           admin_sec);
  register_key("alice", alice_pub, "buyer");
  register_key("bob", bob_pub, "seller");
}

/* [broker] public_feed_sub = off: the XPUB is not bound. */
static void closed_setup(void) {
  curve_extra = "[broker]\npublic_feed_sub = off\n";
  curve_setup();
  curve_extra = "";
}

static void dev_setup(void) {
  redis = gm_test_redis_start();
  gmd =
      gm_test_gmd_start(redis, TEST_PLUGIN_DIR, "[plugins]\nload = testmkt\n");
  admin = gm_test_conn_new(gm_test_gmd_endpoint(gmd), NULL, NULL, NULL);
}

static void teardown(void) {
  gm_test_conn_destroy(&admin);
  gm_test_gmd_stop(&gmd);
  gm_test_redis_stop(&redis);
}

/* A feed with CURVE key pair (pub, sec); NULLs: development mode. */
static gm_feed *feed_as(const char *pub, const char *sec) {
  gm_client_options o;
  gm_client_options_init(&o);
  if (pub) {
    o.server_public_key = server_pub;
    o.public_key = pub;
    o.secret_key = sec;
  }
  gm_feed *f = gm_feed_new(gm_test_gmd_feed(gmd), &o);
  ck_assert_msg(f != NULL, "%s", gm_client_last_error());
  return f;
}

/* testmkt tell: publishes a TellRequest with `note` as event `event`. */
static gm_status tell(gm_audience audience, const char *who, const char *event,
                      const char *note, char *why, size_t whylen) {
  Gm__Testmkt__TellRequest t = GM__TESTMKT__TELL_REQUEST__INIT;
  t.audience = (int32_t)audience;
  t.who = (char *)(who ? who : "");
  t.event = (char *)event;
  t.note = (char *)note;
  Gm__Reply *r = gm_test_call(admin, NULL, "testmkt", "tell", NULL, &t.base);
  ck_assert_ptr_nonnull(r);
  gm_status st = (gm_status)r->status;
  if (why) snprintf(why, whylen, "%s", r->message);
  gm__reply__free_unpacked(r, NULL);
  return st;
}

static void say(gm_audience audience, const char *who, const char *note) {
  char why[512];
  ck_assert_msg(tell(audience, who, "told", note, why, sizeof why) == GM_OK,
                "tell: %s", why);
}

/* What one feed received: topic and note of each event, refusals. */
typedef struct evlog {
  char topic[256][128];
  char note[256][32];
  size_t n;
  char refused[16][64];
  size_t nrefused;
} evlog;

/* Waits up to ms for one event and records it; 1 when something came. */
static int take(gm_feed *f, evlog *lg, int ms) {
  char *topic = NULL;
  Gm__Event *ev = NULL;
  gm_status st = gm_feed_recv(f, &topic, &ev, ms);
  int got = st != GM_UNAVAILABLE;
  if (st == GM_PERMISSION_DENIED) {
    ck_assert_msg(strstr(gm_client_last_error(), "may see only") != NULL,
                  "refusal without its reason: %s", gm_client_last_error());
    ck_assert_uint_lt(lg->nrefused, 16);
    snprintf(lg->refused[lg->nrefused++], 64, "%s", topic);
  } else if (st == GM_OK && lg->n < 256) {
    ck_assert_str_eq(ev->type, "gm.testmkt.TellRequest");
    Gm__Testmkt__TellRequest *t =
        gm__testmkt__tell_request__unpack(NULL, ev->body.len, ev->body.data);
    ck_assert_ptr_nonnull(t);
    /* The event names its market and event for private topics too. */
    ck_assert_str_eq(ev->market, "testmkt");
    ck_assert_str_eq(ev->event, t->event);
    /* The topic says whom it was for, and the same market and event. */
    gm_audience aud;
    char who[65], want[128];
    const char *me = gm_feed_topic_audience(topic, &aud, who, sizeof who);
    snprintf(want, sizeof want, "testmkt.%s", t->event);
    ck_assert_ptr_nonnull(me);
    ck_assert_str_eq(me, want);
    ck_assert_int_eq(aud, topic[0] != '@'   ? GM_AUDIENCE_PUBLIC
                          : topic[1] == 'p' ? GM_AUDIENCE_PARTICIPANT
                                            : GM_AUDIENCE_ROLE);
    if (aud != GM_AUDIENCE_PUBLIC)
      ck_assert_int_eq(strncmp(topic + 3, who, strlen(who)), 0);
    snprintf(lg->topic[lg->n], 128, "%s", topic);
    snprintf(lg->note[lg->n], 32, "%s", t->note);
    lg->n++;
    gm__testmkt__tell_request__free_unpacked(t, NULL);
  }
  free(topic);
  gm_feed_event_free(&ev);
  return got;
}

static int has(const evlog *lg, const char *topic, const char *note) {
  for (size_t i = 0; i < lg->n; i++)
    if ((!topic || strcmp(lg->topic[i], topic) == 0) &&
        strcmp(lg->note[i], note) == 0)
      return 1;
  return 0;
}

static int refused(const evlog *lg, const char *prefix) {
  for (size_t i = 0; i < lg->nrefused; i++)
    if (strcmp(lg->refused[i], prefix) == 0) return 1;
  return 0;
}

/* Says `note` to the audience until feed f has it (subscriptions travel
   asynchronously: the slow joiner), for up to 10 s. */
static void until_heard(gm_feed *f, evlog *lg, gm_audience audience,
                        const char *who, const char *note) {
  for (int i = 0; i < 100; i++) {
    say(audience, who, note);
    for (int k = 0; k < 10; k++) {
      take(f, lg, 10);
      if (has(lg, NULL, note)) return;
    }
  }
  ck_abort_msg("feed never heard \"%s\"", note);
}

/* Reads f until it has `note` (published once already), up to 5 s. */
static void read_until(gm_feed *f, evlog *lg, const char *note) {
  for (int i = 0; i < 500 && !has(lg, NULL, note); i++) take(f, lg, 10);
  ck_assert_msg(has(lg, NULL, note), "\"%s\" never came", note);
}

START_TEST(topics_and_endpoints_parse) {
  gm_audience aud;
  char who[65], ep[128];
  ck_assert_str_eq(
      gm_feed_topic_audience("@r:bank finance.referral", &aud, who, sizeof who),
      "finance.referral");
  ck_assert_int_eq(aud, GM_AUDIENCE_ROLE);
  ck_assert_str_eq(who, "bank");
  ck_assert_ptr_null(gm_feed_topic_audience("@p:alice", &aud, who, sizeof who));
  ck_assert_ptr_null(gm_feed_topic_audience("@q:x y.z", &aud, who, sizeof who));
  ck_assert_int_eq(
      gm_feed_private_endpoint("tcp://10.0.0.1:7471", ep, sizeof ep), GM_OK);
  ck_assert_str_eq(ep, "tcp://10.0.0.1:7472");
  ck_assert_int_eq(gm_feed_private_endpoint("inproc://x", ep, sizeof ep),
                   GM_INVALID_ARGUMENT);
}
END_TEST

START_TEST(bob_never_sees_alice_private_events) {
  static const char *bob_asks[] = {"",
                                   "@",
                                   "@p:alice",
                                   "@p:ali",
                                   "@r:buyer",
                                   "carbon.",
                                   "testmkt.",
                                   "@p:alice carbon.",
                                   "@p:alice testmkt.",
                                   "@r:",
                                   "@p:",
                                   "@x",
                                   "@p:bob testmkt."};
  gm_feed *fa_all = feed_as(alice_pub, alice_sec);
  gm_feed *fa_at = feed_as(alice_pub, alice_sec);
  gm_feed *fb = feed_as(bob_pub, bob_sec);
  gm_feed *fadm = feed_as(admin_pub, admin_sec);
  ck_assert_int_eq(gm_feed_subscribe(fa_all, ""), GM_OK);
  ck_assert_int_eq(gm_feed_subscribe(fa_at, "@"), GM_OK);
  for (size_t i = 0; i < sizeof bob_asks / sizeof *bob_asks; i++)
    ck_assert_int_eq(gm_feed_subscribe(fb, bob_asks[i]), GM_OK);
  /* An admin may follow any role, never another participant. */
  ck_assert_int_eq(gm_feed_subscribe(fadm, "@r:buyer"), GM_OK);
  ck_assert_int_eq(gm_feed_subscribe(fadm, "@p:alice"), GM_OK);
  /* A plain SUB on the public feed, asking for everything. */
  void *ctx = zmq_ctx_new(), *sub = zmq_socket(ctx, ZMQ_SUB);
  zmq_setsockopt(sub, ZMQ_CURVE_SERVERKEY, server_pub, 40);
  zmq_setsockopt(sub, ZMQ_CURVE_PUBLICKEY, bob_pub, 40);
  zmq_setsockopt(sub, ZMQ_CURVE_SECRETKEY, bob_sec, 40);
  zmq_setsockopt(sub, ZMQ_SUBSCRIBE, "", 0);
  zmq_setsockopt(sub, ZMQ_SUBSCRIBE, "@", 1);
  ck_assert_int_eq(zmq_connect(sub, gm_test_gmd_feed(gmd)), 0);

  evlog *a = calloc(1, sizeof *a), *at = calloc(1, sizeof *at),
        *b = calloc(1, sizeof *b), *adm = calloc(1, sizeof *adm);
  until_heard(fa_all, a, GM_AUDIENCE_PUBLIC, NULL, "sync-pub-a");
  until_heard(fa_all, a, GM_AUDIENCE_PARTICIPANT, "alice", "sync-a");
  until_heard(fa_at, at, GM_AUDIENCE_PARTICIPANT, "alice", "sync-at");
  until_heard(fb, b, GM_AUDIENCE_PUBLIC, NULL, "sync-pub-b");
  until_heard(fb, b, GM_AUDIENCE_PARTICIPANT, "bob", "sync-b");
  until_heard(fadm, adm, GM_AUDIENCE_ROLE, "buyer", "sync-adm");
  for (int i = 0; i < 100; i++) {
    say(GM_AUDIENCE_PUBLIC, NULL, "sync-sub");
    char t[64] = "";
    int n = zmq_recv(sub, t, sizeof t - 1, ZMQ_DONTWAIT);
    if (n > 0) break;
    gm_test_sleep_ms(50);
  }

  say(GM_AUDIENCE_PARTICIPANT, "alice", "secret");
  say(GM_AUDIENCE_ROLE, "buyer", "buyers");
  say(GM_AUDIENCE_ROLE, "seller", "sellers");
  say(GM_AUDIENCE_PUBLIC, NULL, "news");
  say(GM_AUDIENCE_PARTICIPANT, "alice", "end-a");
  say(GM_AUDIENCE_PARTICIPANT, "bob", "end-b");
  say(GM_AUDIENCE_ROLE, "buyer", "end-adm");
  say(GM_AUDIENCE_PUBLIC, NULL, "end-pub");
  /* Each connection receives in publishing order: once its last marker is
     in, everything it would ever get of the above is in. */
  read_until(fa_all, a, "end-a");
  read_until(fa_all, a, "end-pub");
  read_until(fa_at, at, "end-a");
  read_until(fb, b, "end-b");
  read_until(fb, b, "end-pub");
  read_until(fadm, adm, "end-adm");

  ck_assert(has(a, "@p:alice testmkt.told", "secret"));
  ck_assert(has(a, "@r:buyer testmkt.told", "buyers"));
  ck_assert(has(a, "testmkt.told", "news"));
  ck_assert(!has(a, NULL, "sellers"));
  ck_assert(has(at, "@p:alice testmkt.told", "secret"));
  ck_assert(has(at, "@r:buyer testmkt.told", "buyers"));
  ck_assert(!has(at, NULL, "news"));
  ck_assert(!has(at, NULL, "sellers"));
  ck_assert(has(b, "@r:seller testmkt.told", "sellers"));
  ck_assert(has(b, "testmkt.told", "news"));
  ck_assert(!has(b, NULL, "secret"));
  ck_assert(!has(b, NULL, "buyers"));
  for (size_t i = 0; i < b->n; i++)
    ck_assert_msg(strncmp(b->topic[i], "@p:alice", 8) != 0 &&
                      strncmp(b->topic[i], "@r:buyer", 8) != 0,
                  "bob got %s", b->topic[i]);
  ck_assert(has(adm, "@r:buyer testmkt.told", "buyers"));
  ck_assert(!has(adm, NULL, "secret"));
  /* What was refused, the broker said so (and the rest was kept). */
  ck_assert(refused(b, "@p:alice"));
  ck_assert(refused(b, "@p:ali"));
  ck_assert(refused(b, "@r:buyer"));
  ck_assert(refused(b, "@p:alice carbon."));
  ck_assert(refused(b, "@p:alice testmkt."));
  ck_assert(refused(b, "@x"));
  ck_assert(!refused(b, "@p:bob testmkt."));
  ck_assert(!refused(b, "@"));
  ck_assert(refused(adm, "@p:alice"));
  ck_assert(gm_test_gmd_log_has(gmd, "refused private subscription"));

  /* The public feed carries no private event at all. */
  for (;;) {
    char t[128] = "";
    int n = zmq_recv(sub, t, sizeof t - 1, ZMQ_DONTWAIT);
    if (n < 0) break;
    ck_assert_msg(t[0] != '@', "the public feed carried %s", t);
    while (1) {
      int more = 0;
      size_t ml = sizeof more;
      zmq_getsockopt(sub, ZMQ_RCVMORE, &more, &ml);
      if (!more) break;
      zmq_recv(sub, t, sizeof t - 1, 0);
    }
  }
  zmq_close(sub);
  zmq_ctx_term(ctx);
  free(a);
  free(at);
  free(b);
  free(adm);
  gm_feed_destroy(&fa_all);
  gm_feed_destroy(&fa_at);
  gm_feed_destroy(&fb);
  gm_feed_destroy(&fadm);
}
END_TEST

/*
 * "" and "@" both cover alice's private events: unsubscribing one keeps
 * what the other asked for, unsubscribing both stops them.
 */
START_TEST(unsubscribe_stops_exactly_what_it_subscribed) {
  gm_feed *f = feed_as(alice_pub, alice_sec);
  evlog *lg = calloc(1, sizeof *lg);
  ck_assert_int_eq(gm_feed_subscribe(f, ""), GM_OK);
  ck_assert_int_eq(gm_feed_subscribe(f, "@"), GM_OK);
  ck_assert_int_eq(gm_feed_subscribe(f, "@p:alice testmkt.bar"), GM_OK);
  ck_assert_int_eq(gm_feed_subscribe(f, "testmkt.bar"), GM_OK);
  until_heard(f, lg, GM_AUDIENCE_PARTICIPANT, "alice", "s1");
  until_heard(f, lg, GM_AUDIENCE_PUBLIC, NULL, "s2");

  /* Without "@": "" still brings private and public events. */
  ck_assert_int_eq(gm_feed_unsubscribe(f, "@"), GM_OK);
  memset(lg, 0, sizeof *lg);
  ck_assert(tell(GM_AUDIENCE_PARTICIPANT, "alice", "told", "p1", NULL, 0) ==
            GM_OK);
  ck_assert(tell(GM_AUDIENCE_PUBLIC, NULL, "told", "q1", NULL, 0) == GM_OK);
  read_until(f, lg, "p1");
  read_until(f, lg, "q1");

  /* Without "": nothing but the "bar" events.  A "bar" event published
     after the unsubscription arrives only once the broker (private feed)
     and the PUB (public feed) have applied it: a barrier on each. */
  ck_assert_int_eq(gm_feed_unsubscribe(f, ""), GM_OK);
  memset(lg, 0, sizeof *lg);
  for (int i = 0; i < 100; i++) {
    char why[256];
    ck_assert(tell(GM_AUDIENCE_PARTICIPANT, "alice", "bar", "bp", why,
                   sizeof why) == GM_OK);
    ck_assert(tell(GM_AUDIENCE_PUBLIC, NULL, "bar", "bq", why, sizeof why) ==
              GM_OK);
    for (int k = 0; k < 10; k++) take(f, lg, 10);
    if (has(lg, NULL, "bp") && has(lg, NULL, "bq")) break;
  }
  memset(lg, 0, sizeof *lg);
  ck_assert(tell(GM_AUDIENCE_PARTICIPANT, "alice", "told", "p2", NULL, 0) ==
            GM_OK);
  ck_assert(tell(GM_AUDIENCE_ROLE, "buyer", "told", "r2", NULL, 0) == GM_OK);
  ck_assert(tell(GM_AUDIENCE_PUBLIC, NULL, "told", "q2", NULL, 0) == GM_OK);
  ck_assert(tell(GM_AUDIENCE_PARTICIPANT, "alice", "bar", "p-end", NULL, 0) ==
            GM_OK);
  ck_assert(tell(GM_AUDIENCE_PUBLIC, NULL, "bar", "q-end", NULL, 0) == GM_OK);
  read_until(f, lg, "p-end");
  read_until(f, lg, "q-end");
  ck_assert(!has(lg, NULL, "p2"));
  ck_assert(!has(lg, NULL, "r2"));
  ck_assert(!has(lg, NULL, "q2"));
  free(lg);
  gm_feed_destroy(&f);
}
END_TEST

/*
 * A private event's sequence number counts that audience's events only, so
 * bob's gaps say nothing of alice's events.
 */
START_TEST(sequence_numbers_count_each_audience_apart) {
  gm_feed *f = feed_as(bob_pub, bob_sec);
  evlog *lg = calloc(1, sizeof *lg);
  ck_assert_int_eq(gm_feed_subscribe(f, "@p:bob "), GM_OK);
  until_heard(f, lg, GM_AUDIENCE_PARTICIPANT, "bob", "s");
  say(GM_AUDIENCE_PARTICIPANT, "alice", "x1");
  say(GM_AUDIENCE_PARTICIPANT, "alice", "x2");
  uint64_t last = 0;
  say(GM_AUDIENCE_PARTICIPANT, "bob", "y1");
  say(GM_AUDIENCE_PARTICIPANT, "bob", "y2");
  for (int seen = 0, i = 0; seen < 2 && i < 500; i++) {
    char *topic = NULL;
    Gm__Event *ev = NULL;
    if (gm_feed_recv(f, &topic, &ev, 10) == GM_OK) {
      Gm__Testmkt__TellRequest *t =
          gm__testmkt__tell_request__unpack(NULL, ev->body.len, ev->body.data);
      if (t->note[0] == 'y') {
        if (seen) ck_assert_uint_eq(ev->seq, last + 1);
        last = ev->seq;
        seen++;
      }
      gm__testmkt__tell_request__free_unpacked(t, NULL);
    }
    free(topic);
    gm_feed_event_free(&ev);
  }
  ck_assert_uint_gt(last, 0);
  free(lg);
  gm_feed_destroy(&f);
}
END_TEST

/* What publish_wanted answers for event `event` to the audience (testmkt
   tell, publishing nothing). */
static int wanted(gm_audience audience, const char *who, const char *event) {
  Gm__Testmkt__TellRequest t = GM__TESTMKT__TELL_REQUEST__INIT;
  t.audience = (int32_t)audience;
  t.who = (char *)(who ? who : "");
  t.event = (char *)event;
  t.ask_only = 1;
  Gm__Reply *r = gm_test_call(admin, NULL, "testmkt", "tell", NULL, &t.base);
  ck_assert_ptr_nonnull(r);
  ck_assert_msg(r->status == GM__STATUS__OK, "tell: %s", r->message);
  Gm__Testmkt__TellReply *out =
      gm__testmkt__tell_reply__unpack(NULL, r->body.len, r->body.data);
  ck_assert_ptr_nonnull(out);
  int w = out->wanted;
  gm__testmkt__tell_reply__free_unpacked(out, NULL);
  gm__reply__free_unpacked(r, NULL);
  return w;
}

/* Asks until publish_wanted says yes (a subscription travels to the broker
   asynchronously), for up to 10 s. */
static void until_wanted(gm_audience audience, const char *who,
                         const char *event) {
  for (int i = 0; i < 1000; i++) {
    if (wanted(audience, who, event)) return;
    gm_test_sleep_ms(10);
  }
  ck_abort_msg("publish_wanted never said yes to %d %s %s", (int)audience,
               who ? who : "-", event);
}

/*
 * publish_wanted says no while nobody follows an event's audience, yes from
 * the moment the broker has a subscription covering it (public prefix,
 * participant, role) and for that audience only; yes when unsure (a bad
 * argument), and yes still after the unsubscription (an audience once
 * followed keeps its events built and counted until the broker restarts).
 * An event published once it said yes reaches the subscriber.
 */
START_TEST(publish_wanted_follows_subscriptions) {
  ck_assert(!wanted(GM_AUDIENCE_PUBLIC, NULL, "w"));
  ck_assert(!wanted(GM_AUDIENCE_PARTICIPANT, "alice", "w"));
  ck_assert(!wanted(GM_AUDIENCE_ROLE, "buyer", "w"));
  ck_assert(wanted(GM_AUDIENCE_PARTICIPANT, "al ice", "w"));
  ck_assert(wanted(GM_AUDIENCE_ROLE, "Buyer", "w"));
  ck_assert(wanted(GM_AUDIENCE_PUBLIC, NULL, "two words"));
  ck_assert(wanted((gm_audience)7, "x", "w"));

  gm_feed *f = feed_as(alice_pub, alice_sec);
  evlog *lg = calloc(1, sizeof *lg);
  char why[256];
  /* A public prefix: the events it covers, public only. */
  ck_assert_int_eq(gm_feed_subscribe(f, "testmkt.w"), GM_OK);
  until_wanted(GM_AUDIENCE_PUBLIC, NULL, "w");
  ck_assert(wanted(GM_AUDIENCE_PUBLIC, NULL, "wide"));
  ck_assert(!wanted(GM_AUDIENCE_PUBLIC, NULL, "told"));
  ck_assert(!wanted(GM_AUDIENCE_PARTICIPANT, "alice", "w"));
  ck_assert(tell(GM_AUDIENCE_PUBLIC, NULL, "w", "pw", why, sizeof why) ==
            GM_OK);
  read_until(f, lg, "pw");

  /* A participant's audience: its events, not another's nor a role's. */
  ck_assert_int_eq(gm_feed_subscribe(f, "@p:alice "), GM_OK);
  until_wanted(GM_AUDIENCE_PARTICIPANT, "alice", "w");
  ck_assert(wanted(GM_AUDIENCE_PARTICIPANT, "alice", "told"));
  ck_assert(!wanted(GM_AUDIENCE_PARTICIPANT, "bob", "w"));
  ck_assert(!wanted(GM_AUDIENCE_ROLE, "buyer", "w"));
  ck_assert(tell(GM_AUDIENCE_PARTICIPANT, "alice", "w", "aw", why,
                 sizeof why) == GM_OK);
  read_until(f, lg, "aw");

  /* A role's audience, for a holder of the role. */
  ck_assert_int_eq(gm_feed_subscribe(f, "@r:buyer "), GM_OK);
  until_wanted(GM_AUDIENCE_ROLE, "buyer", "w");
  ck_assert(!wanted(GM_AUDIENCE_ROLE, "seller", "w"));
  ck_assert(tell(GM_AUDIENCE_ROLE, "buyer", "w", "rw", why, sizeof why) ==
            GM_OK);
  read_until(f, lg, "rw");

  /* Unsubscribed and gone: still yes (conservative, and so no gap). */
  ck_assert_int_eq(gm_feed_unsubscribe(f, "@p:alice "), GM_OK);
  ck_assert_int_eq(gm_feed_unsubscribe(f, "testmkt.w"), GM_OK);
  /* A barrier: the SUB socket's messages reach the publisher in order, so
     once its later subscription is seen its unsubscription has been read. */
  ck_assert_int_eq(gm_feed_subscribe(f, "testmkt.zz"), GM_OK);
  until_wanted(GM_AUDIENCE_PUBLIC, NULL, "zz");
  ck_assert(wanted(GM_AUDIENCE_PUBLIC, NULL, "w"));
  gm_feed_destroy(&f);
  ck_assert(wanted(GM_AUDIENCE_PUBLIC, NULL, "w"));
  ck_assert(wanted(GM_AUDIENCE_PARTICIPANT, "alice", "w"));
  ck_assert(wanted(GM_AUDIENCE_ROLE, "buyer", "w"));
  ck_assert(!wanted(GM_AUDIENCE_PARTICIPANT, "bob", "w"));
  free(lg);
}
END_TEST

/*
 * An audience nobody follows gets no event built or counted: alice's
 * events said while only bob listens are not sent, so the first one her
 * new subscription receives is number 1 of her count.
 */
START_TEST(events_for_an_audience_nobody_follows_are_not_counted) {
  gm_feed *fb = feed_as(bob_pub, bob_sec);
  evlog *lg = calloc(1, sizeof *lg);
  ck_assert_int_eq(gm_feed_subscribe(fb, "@p:bob "), GM_OK);
  until_heard(fb, lg, GM_AUDIENCE_PARTICIPANT, "bob", "s");
  say(GM_AUDIENCE_PARTICIPANT, "alice", "unheard-1");
  say(GM_AUDIENCE_PARTICIPANT, "alice", "unheard-2");
  say(GM_AUDIENCE_PARTICIPANT, "alice", "unheard-3");
  gm_feed *fa = feed_as(alice_pub, alice_sec);
  ck_assert_int_eq(gm_feed_subscribe(fa, "@p:alice "), GM_OK);
  uint64_t first = 0;
  for (int i = 0; i < 100 && !first; i++) {
    say(GM_AUDIENCE_PARTICIPANT, "alice", "heard");
    for (int k = 0; k < 10 && !first; k++) {
      char *topic = NULL;
      Gm__Event *ev = NULL;
      if (gm_feed_recv(fa, &topic, &ev, 10) == GM_OK) {
        Gm__Testmkt__TellRequest *t = gm__testmkt__tell_request__unpack(
            NULL, ev->body.len, ev->body.data);
        ck_assert_ptr_nonnull(t);
        ck_assert_str_eq(t->note, "heard");
        ck_assert_str_eq(topic, "@p:alice testmkt.told");
        first = ev->seq;
        gm__testmkt__tell_request__free_unpacked(t, NULL);
      }
      free(topic);
      gm_feed_event_free(&ev);
    }
  }
  ck_assert_uint_eq(first, 1);
  free(lg);
  gm_feed_destroy(&fa);
  gm_feed_destroy(&fb);
}
END_TEST

/* Says `note` to the audience until feed f has it; that event's sequence
   number. */
static uint64_t seq_when_heard(gm_feed *f, gm_audience audience,
                               const char *who, const char *note) {
  for (int i = 0; i < 100; i++) {
    say(audience, who, note);
    for (int k = 0; k < 10; k++) {
      char *topic = NULL;
      Gm__Event *ev = NULL;
      uint64_t seq = 0;
      if (gm_feed_recv(f, &topic, &ev, 10) == GM_OK) {
        Gm__Testmkt__TellRequest *t = gm__testmkt__tell_request__unpack(
            NULL, ev->body.len, ev->body.data);
        ck_assert_ptr_nonnull(t);
        if (strcmp(t->note, note) == 0) seq = ev->seq;
        gm__testmkt__tell_request__free_unpacked(t, NULL);
      }
      free(topic);
      gm_feed_event_free(&ev);
      if (seq) return seq;
    }
  }
  ck_abort_msg("the feed never heard \"%s\"", note);
  return 0;
}

/*
 * A subscriber that comes back (a new connection after a network blip, or
 * a lease run out) sees the gap in its audience's count: the events said
 * while it was away were counted, as a gap is the only way it can know it
 * missed them.
 */
START_TEST(a_returning_subscriber_sees_the_gap_of_what_it_missed) {
  gm_feed *fa = feed_as(alice_pub, alice_sec);
  ck_assert_int_eq(gm_feed_subscribe(fa, "@p:alice "), GM_OK);
  uint64_t before =
      seq_when_heard(fa, GM_AUDIENCE_PARTICIPANT, "alice", "before");
  gm_feed_destroy(&fa);
  /* The broker forgets the gone connection. */
  gm_test_gmd_wait_metric(gmd, "greenmarket_feed_private_connections", 0, 0,
                          10000);
  say(GM_AUDIENCE_PARTICIPANT, "alice", "missed-1");
  say(GM_AUDIENCE_PARTICIPANT, "alice", "missed-2");
  say(GM_AUDIENCE_PARTICIPANT, "alice", "missed-3");
  fa = feed_as(alice_pub, alice_sec);
  ck_assert_int_eq(gm_feed_subscribe(fa, "@p:alice "), GM_OK);
  uint64_t after =
      seq_when_heard(fa, GM_AUDIENCE_PARTICIPANT, "alice", "after");
  ck_assert_uint_ge(after, before + 4);
  gm_feed_destroy(&fa);
}
END_TEST

static int64_t mono_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

typedef struct teller {
  gm_audience audience;
  const char *who;
  int n;           /* events to say to alice */
  int fails;       /* calls that did not come back OK */
  atomic_int done; /* all said */
} teller;

/* Says "n-<i>" to its audience n times over a connection of its own. */
static void *tell_n(void *arg) {
  teller *t = arg;
  gm_test_conn *c = gm_test_conn_new(gm_test_gmd_endpoint(gmd), server_pub,
                                     admin_pub, admin_sec);
  for (int i = 0; i < t->n; i++) {
    char note[32];
    snprintf(note, sizeof note, "n-%d", i);
    Gm__Testmkt__TellRequest req = GM__TESTMKT__TELL_REQUEST__INIT;
    req.audience = (int32_t)t->audience;
    req.who = (char *)t->who;
    req.event = "told";
    req.note = note;
    Gm__Reply *r = gm_test_call(c, NULL, "testmkt", "tell", NULL, &req.base);
    if (!r || r->status != GM__STATUS__OK) t->fails++;
    if (r) gm__reply__free_unpacked(r, NULL);
  }
  gm_test_conn_destroy(&c);
  atomic_store(&t->done, 1);
  return NULL;
}

/*
 * A subscriber that adds and drops other prefixes of an audience it follows
 * never stops following it: every event said to role bank while the
 * admin's connection keeps "@r:bank " reaches it, whatever else it
 * subscribes meanwhile.  The connection follows 200 other roles first, so
 * that re-indexing it takes a while (a moment in which the audience looked
 * unfollowed to the workers lost events here).  "end" is said on another
 * connection once every tell is answered, so it must come last: the
 * events of all workers reach the publisher through one queue (with a
 * socket per worker, "end" overtook tells still waiting in a busy
 * worker's pipe, and the test missed them with no gap in the count).
 */
START_TEST(changing_other_prefixes_loses_no_event_of_a_kept_one) {
  gm_feed *fa = feed_as(admin_pub, admin_sec);
  for (int i = 0; i < 200; i++) {
    char role[32];
    snprintf(role, sizeof role, "@r:r%d ", i);
    ck_assert_int_eq(gm_feed_subscribe(fa, role), GM_OK);
  }
  ck_assert_int_eq(gm_feed_subscribe(fa, "@r:bank "), GM_OK);
  uint64_t first = seq_when_heard(fa, GM_AUDIENCE_ROLE, "bank", "start");
  enum { N = 2000 };
  teller t = {.audience = GM_AUDIENCE_ROLE, .who = "bank", .n = N};
  pthread_t th;
  ck_assert_int_eq(pthread_create(&th, NULL, tell_n, &t), 0);
  static unsigned char got[N];
  memset(got, 0, sizeof got);
  uint64_t last = first;
  int ended = 0, gaps = 0, joined = 0, heard = 0;
  int64_t give_up = 0; /* once "end" is said: 20 s to hear it */
  for (int round = 0; !ended && (!give_up || mono_ms() < give_up); round++) {
    if (round % 2 == 0)
      ck_assert_int_eq(gm_feed_subscribe(fa, "@r:bank testmkt.x"), GM_OK);
    else
      ck_assert_int_eq(gm_feed_unsubscribe(fa, "@r:bank testmkt.x"), GM_OK);
    /* All that came.  The broker holds up to [broker] feed_queue (10000)
       events for a connection that reads slower than they come, more than
       this test says: none may be dropped for a full queue. */
    for (int k = 0; !ended && k < 256; k++) {
      char *topic = NULL;
      Gm__Event *ev = NULL;
      if (gm_feed_recv(fa, &topic, &ev, k ? 0 : 1) != GM_OK) break;
      Gm__Testmkt__TellRequest *e =
          gm__testmkt__tell_request__unpack(NULL, ev->body.len, ev->body.data);
      ck_assert_ptr_nonnull(e);
      int i = -1;
      if (sscanf(e->note, "n-%d", &i) == 1 && i >= 0 && i < N) got[i] = 1;
      heard++;
      if (ev->seq != last + 1) gaps++;
      last = ev->seq;
      ended = strcmp(e->note, "end") == 0;
      gm__testmkt__tell_request__free_unpacked(e, NULL);
      free(topic);
      gm_feed_event_free(&ev);
    }
    if (!joined && atomic_load(&t.done)) {
      pthread_join(th, NULL);
      joined = 1;
      say(GM_AUDIENCE_ROLE, "bank", "end");
      give_up = mono_ms() + 20000;
    }
  }
  if (!joined) pthread_join(th, NULL);
  ck_assert_msg(ended,
                "the feed never heard \"end\" (20 s after it was said; %d "
                "events heard of %d, %d gaps in their count)",
                heard, N + 1, gaps);
  ck_assert_int_eq(t.fails, 0);
  int missing = 0;
  for (int i = 0; i < N; i++) missing += !got[i];
  ck_assert_msg(missing == 0,
                "%d of %d events to role bank never reached it (%d gaps in "
                "its count, which a full queue would leave)",
                missing, N, gaps);
  ck_assert_int_eq(gaps, 0);
  gm_feed_destroy(&fa);
}
END_TEST

/* A market that names nobody, or somebody malformed, is told so. */
START_TEST(publish_to_checks_its_audience) {
  char why[512];
  ck_assert(tell(GM_AUDIENCE_PARTICIPANT, "", "told", "n", why, sizeof why) ==
            GM_INVALID_ARGUMENT);
  ck_assert_msg(strstr(why, "needs its id") != NULL, "%s", why);
  ck_assert(tell(GM_AUDIENCE_PARTICIPANT, "al ice", "told", "n", why,
                 sizeof why) == GM_INVALID_ARGUMENT);
  ck_assert(tell(GM_AUDIENCE_ROLE, "Buyer", "told", "n", why, sizeof why) ==
            GM_INVALID_ARGUMENT);
  ck_assert_msg(strstr(why, "[a-z][a-z0-9_]*") != NULL, "%s", why);
  ck_assert(tell((gm_audience)7, "x", "told", "n", why, sizeof why) ==
            GM_INVALID_ARGUMENT);
  ck_assert(tell(GM_AUDIENCE_PUBLIC, NULL, "two words", "n", why, sizeof why) ==
            GM_INVALID_ARGUMENT);
  ck_assert_msg(strstr(why, "without spaces") != NULL, "%s", why);
}
END_TEST

/*
 * Development mode knows nobody: a private subscription is kept as asked,
 * so one participant's events are watched with "@p:<id> ".
 */
/* A raw DEALER on the private feed as pub/sec, with routing id `rid` (NULL:
   the one the feed assigns; a CURVE feed refuses any other but one that
   looks like its own, a 0 byte and 4 more). */
static void *raw_private(void *ctx, const char *pub, const char *sec,
                         const char *rid, size_t ridlen) {
  char ep[600];
  ck_assert_int_eq(
      gm_feed_private_endpoint(gm_test_gmd_feed(gmd), ep, sizeof ep), GM_OK);
  void *s = zmq_socket(ctx, ZMQ_DEALER);
  int linger = 0, timeout = 300;
  zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof linger);
  zmq_setsockopt(s, ZMQ_RCVTIMEO, &timeout, sizeof timeout);
  if (rid) zmq_setsockopt(s, ZMQ_ROUTING_ID, rid, ridlen);
  zmq_setsockopt(s, ZMQ_CURVE_SERVERKEY, server_pub, 40);
  zmq_setsockopt(s, ZMQ_CURVE_PUBLICKEY, pub, 40);
  zmq_setsockopt(s, ZMQ_CURVE_SECRETKEY, sec, 40);
  ck_assert_int_eq(zmq_connect(s, ep), 0);
  return s;
}

/* 1 when a message whose topic starts with `prefix` arrives within ms. */
static int raw_heard(void *s, const char *prefix, int ms) {
  for (int waited = 0; waited < ms; waited += 300) {
    char buf[512];
    int n = zmq_recv(s, buf, sizeof buf - 1, 0);
    if (n < 0) continue;
    buf[n < (int)sizeof buf - 1 ? n : (int)sizeof buf - 1] = '\0';
    int more;
    size_t ml = sizeof more;
    zmq_getsockopt(s, ZMQ_RCVMORE, &more, &ml);
    while (more) { /* the rest of the message */
      char skip[4096];
      zmq_recv(s, skip, sizeof skip, 0);
      zmq_getsockopt(s, ZMQ_RCVMORE, &more, &ml);
    }
    if (strncmp(buf, prefix, strlen(prefix)) == 0) return 1;
  }
  return 0;
}

/*
 * A client may choose its routing id: a new connection that presents the
 * id of one that just went away (its entry lingers for the lease) must not
 * inherit the old participant's subscriptions.
 */
START_TEST(a_reused_routing_id_inherits_nothing) {
  void *ctx = zmq_ctx_new();
  static const char rid[] = "\0\1\2\3\4";
  void *a = raw_private(ctx, alice_pub, alice_sec, rid, 5);
  zmq_send(a, "\1@", 2, 0);
  int heard = 0; /* the subscription takes effect a moment later */
  for (int i = 0; i < 20 && !heard; i++) {
    say(GM_AUDIENCE_PARTICIPANT, "alice", "first");
    heard = raw_heard(a, "@p:alice ", 300);
  }
  ck_assert(heard);
  zmq_close(a);
  gm_test_sleep_ms(300);
  void *b = raw_private(ctx, bob_pub, bob_sec, rid, 5);
  /* Connected under alice's id, before bob says anything. */
  gm_test_sleep_ms(300);
  for (int i = 0; i < 3; i++) say(GM_AUDIENCE_PARTICIPANT, "alice", "gap");
  ck_assert_msg(!raw_heard(b, "@p:alice", 1500),
                "a connection under a gone one's routing id got its events");
  zmq_send(b, "\1@p:bob ", 8, 0);
  heard = 0;
  for (int i = 0; i < 20 && !heard; i++) {
    say(GM_AUDIENCE_PARTICIPANT, "bob", "bobs");
    heard = raw_heard(b, "@p:bob ", 300);
  }
  ck_assert(heard);
  say(GM_AUDIENCE_PARTICIPANT, "alice", "third");
  ck_assert_msg(!raw_heard(b, "@p:alice", 1500),
                "bob's connection got alice's private event");
  zmq_close(b);
  zmq_ctx_term(ctx);
}
END_TEST

/*
 * Reads s for up to ms; 1 when a refusal ["!", prefix, why] came whose
 * reason has `why_has` (its text in why, when not NULL).  Without
 * private_seen it returns at that refusal; with it, it reads the whole
 * time and sets *private_seen when any private event came.
 */
static int raw_watch(void *s, const char *why_has, char *why, size_t whylen,
                     int *private_seen, int ms) {
  int refused = 0;
  for (int waited = 0; waited < ms; waited += 300) {
    char first[512];
    int n = zmq_recv(s, first, sizeof first - 1, 0);
    if (n < 0) continue;
    if (n > 0 && first[0] == '@' && private_seen) *private_seen = 1;
    int more;
    size_t ml = sizeof more;
    zmq_getsockopt(s, ZMQ_RCVMORE, &more, &ml);
    char last[512] = "";
    while (more) {
      int k = zmq_recv(s, last, sizeof last - 1, 0);
      last[k < 0                      ? 0
           : k < (int)sizeof last - 1 ? k
                                      : (int)sizeof last - 1] = '\0';
      zmq_getsockopt(s, ZMQ_RCVMORE, &more, &ml);
    }
    if (n == 1 && first[0] == '!' && strstr(last, why_has)) {
      if (why && !refused) snprintf(why, whylen, "%s", last);
      refused = 1;
      if (!private_seen) return 1;
    }
  }
  return refused;
}

static int raw_refused(void *s, const char *why_has, char *why, size_t whylen,
                       int ms) {
  return raw_watch(s, why_has, why, whylen, NULL, ms);
}

/*
 * With CURVE a connection under a routing id its client chose is refused on
 * the private feed, and told what to change: such an id can be presented
 * by another participant's client once the connection closes, and what was
 * still addressed there went to it.
 */
START_TEST(a_chosen_routing_id_is_refused_on_the_private_feed) {
  void *ctx = zmq_ctx_new();
  void *a = raw_private(ctx, alice_pub, alice_sec, "alice-1", 7);
  zmq_send(a, "\1@p:alice ", 10, 0);
  char why[512] = "";
  int told = raw_refused(a, "do not set ZMQ_ROUTING_ID", why, sizeof why, 3000);
  say(GM_AUDIENCE_PARTICIPANT, "alice", "after");
  int heard = raw_heard(a, "@p:alice ", 900);
  zmq_close(a);
  zmq_ctx_term(ctx);
  ck_assert_msg(told, "no refusal naming ZMQ_ROUTING_ID (last: \"%s\")", why);
  ck_assert_msg(!heard, "a refused connection got a private event");
}
END_TEST

/* GET commands Redis has run so far (INFO commandstats, by redis-cli). */
static long long redis_gets(void) {
  char cmd[600];
  snprintf(cmd, sizeof cmd, "redis-cli -s '%s' INFO commandstats",
           gm_test_redis_socket(redis));
  FILE *p = popen(cmd, "r");
  ck_assert_ptr_nonnull(p);
  char line[512];
  long long calls = 0;
  while (fgets(line, sizeof line, p))
    if (strncmp(line, "cmdstat_get:calls=", 18) == 0) calls = atoll(line + 18);
  pclose(p);
  return calls;
}

/*
 * A participant whose key is revoked or replaced loses its private events
 * on the connections it opened with the old key, within about a second (as
 * requests do), without having to reconnect; the connection is told why,
 * and subscribing again on it is refused.
 */
START_TEST(a_replaced_key_stops_private_events_on_open_connections) {
  void *ctx = zmq_ctx_new();
  void *a = raw_private(ctx, alice_pub, alice_sec, NULL, 0);
  zmq_send(a, "\1@", 2, 0);
  int heard = 0;
  for (int i = 0; i < 20 && !heard; i++) {
    say(GM_AUDIENCE_PARTICIPANT, "alice", "before");
    heard = raw_heard(a, "@p:alice ", 300);
  }
  ck_assert(heard);
  /* Admitted with the old key, subscribing only after it is replaced. */
  void *late = raw_private(ctx, alice_pub, alice_sec, NULL, 0);
  zmq_send(late, "", 0, 0); /* not a subscription: completes the handshake */
  gm_test_sleep_ms(300);
  char new_pub[41], new_sec[41];
  zmq_curve_keypair(new_pub, new_sec);
  register_key("alice", new_pub, "buyer");
  /* Refused at once, not at the next re-check: nothing said meanwhile
     reaches it. */
  zmq_send(late, "\1@", 2, 0);
  gm_test_sleep_ms(200);
  for (int i = 0; i < 3; i++) say(GM_AUDIENCE_PARTICIPANT, "alice", "late");
  int private_seen = 0;
  ck_assert(
      raw_watch(late, "no longer registered", NULL, 0, &private_seen, 1500));
  ck_assert_msg(!private_seen,
                "a connection subscribing after its key was replaced got "
                "private events");
  zmq_close(late);
  /* The old connection is told, within a few seconds at most. */
  char why[512] = "";
  int told = 0;
  for (int i = 0; i < 10 && !told; i++) {
    say(GM_AUDIENCE_PARTICIPANT, "alice", "during");
    told = raw_refused(a, "no longer registered", why, sizeof why, 600);
  }
  ck_assert_msg(told, "the old key's connection was never told");
  ck_assert_msg(strstr(why, "alice") && strstr(why, "reconnect"), "%s", why);
  /* From then on nothing private reaches it. */
  for (int i = 0; i < 3; i++) {
    say(GM_AUDIENCE_PARTICIPANT, "alice", "after");
    say(GM_AUDIENCE_ROLE, "buyer", "after-role");
  }
  ck_assert_msg(!raw_heard(a, "@", 1500),
                "a revoked key's connection still gets private events");
  /* Asking again on the same connection is refused with the reason. */
  zmq_send(a, "\1@p:alice ", 10, 0);
  ck_assert(raw_refused(a, "no longer registered", NULL, 0, 3000));
  say(GM_AUDIENCE_PARTICIPANT, "alice", "again");
  ck_assert(!raw_heard(a, "@", 1500));
  /* Asking again and again costs Redis nothing: the refusal is
     remembered, not looked up each time. */
  long long gets = redis_gets();
  for (int i = 0; i < 20; i++) zmq_send(a, "\1@p:alice ", 10, 0);
  for (int i = 0; i < 20; i++)
    ck_assert(raw_refused(a, "no longer registered", NULL, 0, 3000));
  ck_assert_msg(redis_gets() - gets < 3,
                "20 refused subscriptions made %lld GETs of the registry",
                redis_gets() - gets);
  /* The new key works on a new connection. */
  void *n = raw_private(ctx, new_pub, new_sec, NULL, 0);
  zmq_send(n, "\1@", 2, 0);
  heard = 0;
  for (int i = 0; i < 20 && !heard; i++) {
    say(GM_AUDIENCE_PARTICIPANT, "alice", "new");
    heard = raw_heard(n, "@p:alice ", 300);
  }
  ck_assert(heard);
  ck_assert(gm_test_gmd_log_has(gmd, "no longer registered"));
  zmq_close(a);
  zmq_close(n);
  zmq_ctx_term(ctx);
}
END_TEST

/*
 * A role change reaches open private feed connections: a subscription to
 * "@" follows the roles the participant holds now.
 */
START_TEST(a_role_change_reaches_open_private_subscriptions) {
  void *ctx = zmq_ctx_new();
  void *b = raw_private(ctx, bob_pub, bob_sec, NULL, 0);
  zmq_send(b, "\1@", 2, 0);
  int heard = 0;
  for (int i = 0; i < 20 && !heard; i++) {
    say(GM_AUDIENCE_ROLE, "seller", "sellers");
    heard = raw_heard(b, "@r:seller ", 300);
  }
  ck_assert(heard);
  register_key("bob", bob_pub, "buyer");
  heard = 0;
  for (int i = 0; i < 10 && !heard; i++) {
    say(GM_AUDIENCE_ROLE, "buyer", "buyers");
    heard = raw_heard(b, "@r:buyer ", 600);
  }
  ck_assert_msg(heard, "bob, now a buyer, never got the buyers' events");
  for (int i = 0; i < 3; i++) say(GM_AUDIENCE_ROLE, "seller", "sellers-after");
  ck_assert_msg(!raw_heard(b, "@r:seller", 1500),
                "bob, no longer a seller, still gets the sellers' events");
  zmq_close(b);
  zmq_ctx_term(ctx);
}
END_TEST

/*
 * The publisher re-checks keys on its own Redis connection with a short
 * timeout, so a stalled Redis holds the private feed back a moment at most;
 * that must stay so after the connection was once lost and reopened (a
 * timeout reopens it, and greenmarket_feed_redis_reconnects_total counts
 * it).  While Redis is stopped, a refusal that needs no Redis still comes
 * at once.
 */
START_TEST(
    a_stalled_redis_holds_the_private_feed_back_briefly_after_a_reconnect) {
  void *ctx = zmq_ctx_new();
  void *a = raw_private(ctx, alice_pub, alice_sec, NULL, 0);
  zmq_send(a, "\1@p:alice ", 10, 0);
  int heard = 0;
  for (int i = 0; i < 20 && !heard; i++) {
    say(GM_AUDIENCE_PARTICIPANT, "alice", "before");
    heard = raw_heard(a, "@p:alice ", 300);
  }
  ck_assert(heard);
  pid_t pid = gm_test_redis_pid(redis);
  const char *reopens = "greenmarket_feed_redis_reconnects_total";
  double before = gm_test_gmd_metric(gmd, reopens);
  ck_assert_msg(before >= 0, "no %s in gmd's /metrics", reopens);
  /* A first stall: a re-check times out (the publisher says so in its
     log), and once Redis answers again a re-check reopens its connection
     (the count moves). */
  kill(pid, SIGSTOP);
  const char *gave_up = "private feed: cannot re-check subscribers' keys";
  for (int i = 0; i < 500 && !gm_test_gmd_log_has(gmd, gave_up); i++)
    gm_test_sleep_ms(10);
  kill(pid, SIGCONT);
  ck_assert_msg(gm_test_gmd_log_has(gmd, gave_up),
                "no re-check gave up within 5 s of stalling Redis; see %s",
                gm_test_gmd_log(gmd));
  /* In words: not hiredis's "Resource temporarily unavailable". */
  FILE *f = fopen(gm_test_gmd_log(gmd), "r");
  ck_assert_ptr_nonnull(f);
  char line[4096], warn[4096] = "";
  while (!warn[0] && fgets(line, sizeof line, f))
    if (strstr(line, gave_up)) snprintf(warn, sizeof warn, "%s", line);
  fclose(f);
  ck_assert_msg(strstr(warn, "(no reply within"),
                "the re-check's WARN does not say Redis stopped answering: %s",
                warn);
  gm_test_gmd_wait_metric(gmd, reopens, before + 1, 1e12, 5000);
  /* A second stall: the re-checks must still give up quickly. */
  kill(pid, SIGSTOP);
  gm_test_sleep_ms(1500);
  static const char bad[] = "\1@p:alice \0x"; /* a NUL: refused, no Redis */
  zmq_send(a, bad, sizeof bad - 1, 0);
  int told = raw_refused(a, "without NUL", NULL, 0, 2000);
  kill(pid, SIGCONT);
  ck_assert_msg(told,
                "the private feed answered nothing for 2 s while Redis was "
                "stalled: the publisher thread waits on Redis");
  zmq_close(a);
  zmq_ctx_term(ctx);
}
END_TEST

/*
 * New connections' first subscriptions look their key up, but while Redis
 * is stalled that must not cost each of them a timeout: many subscribing
 * at once would hold the publisher back for all their timeouts together.
 */
START_TEST(many_first_subscriptions_during_a_stall_hold_the_feed_back_briefly) {
  enum { K = 12 };
  void *ctx = zmq_ctx_new();
  void *a = raw_private(ctx, alice_pub, alice_sec, NULL, 0);
  zmq_send(a, "\1@p:alice ", 10, 0);
  int heard = 0;
  for (int i = 0; i < 20 && !heard; i++) {
    say(GM_AUDIENCE_PARTICIPANT, "alice", "before");
    heard = raw_heard(a, "@p:alice ", 300);
  }
  ck_assert(heard);
  /* Admitted (the handshake needs Redis) before the stall. */
  void *n[K];
  for (int i = 0; i < K; i++) {
    n[i] = raw_private(ctx, alice_pub, alice_sec, NULL, 0);
    zmq_send(n[i], "", 0, 0); /* not a subscription: completes the handshake */
  }
  gm_test_sleep_ms(500);
  pid_t pid = gm_test_redis_pid(redis);
  kill(pid, SIGSTOP);
  gm_test_sleep_ms(1200);
  for (int i = 0; i < K; i++) zmq_send(n[i], "\1@p:alice ", 10, 0);
  static const char bad[] = "\1@p:alice \0x"; /* a NUL: refused, no Redis */
  zmq_send(a, bad, sizeof bad - 1, 0);
  int told = raw_refused(a, "without NUL", NULL, 0, 1500);
  kill(pid, SIGCONT);
  ck_assert_msg(told,
                "the private feed answered nothing for 1.5 s while %d new "
                "connections subscribed during a Redis stall",
                K);
  for (int i = 0; i < K; i++) zmq_close(n[i]);
  zmq_close(a);
  zmq_ctx_term(ctx);
}
END_TEST

START_TEST(development_mode_keeps_subscriptions_as_asked) {
  gm_feed *f = feed_as(NULL, NULL);
  evlog *lg = calloc(1, sizeof *lg);
  ck_assert_int_eq(gm_feed_subscribe(f, "@p:alice "), GM_OK);
  until_heard(f, lg, GM_AUDIENCE_PARTICIPANT, "alice", "a1");
  say(GM_AUDIENCE_PARTICIPANT, "alice2", "not-alice");
  say(GM_AUDIENCE_PARTICIPANT, "bob", "bob");
  say(GM_AUDIENCE_PARTICIPANT, "alice", "a-end");
  read_until(f, lg, "a-end");
  ck_assert(!has(lg, NULL, "bob"));
  ck_assert(!has(lg, NULL, "not-alice"));
  gm_feed *all = feed_as(NULL, NULL);
  evlog *la = calloc(1, sizeof *la);
  ck_assert_int_eq(gm_feed_subscribe(all, ""), GM_OK);
  until_heard(all, la, GM_AUDIENCE_PARTICIPANT, "bob", "b1");
  until_heard(all, la, GM_AUDIENCE_PUBLIC, NULL, "pub");
  free(lg);
  free(la);
  gm_feed_destroy(&f);
  gm_feed_destroy(&all);
}
END_TEST

/*
 * Development mode (no CURVE): a private prefix that ends before its
 * audience ("@p:al") makes every private event wanted, and public events
 * stay unwanted until a public prefix covers them; what publish_wanted said
 * yes to reaches the subscriber.
 */
START_TEST(publish_wanted_in_development_mode) {
  ck_assert(!wanted(GM_AUDIENCE_PUBLIC, NULL, "w"));
  ck_assert(!wanted(GM_AUDIENCE_PARTICIPANT, "alice", "w"));
  gm_feed *f = feed_as(NULL, NULL);
  evlog *lg = calloc(1, sizeof *lg);
  char why[256];
  ck_assert_int_eq(gm_feed_subscribe(f, "@p:al"), GM_OK);
  until_wanted(GM_AUDIENCE_PARTICIPANT, "alice", "w");
  ck_assert(wanted(GM_AUDIENCE_PARTICIPANT, "alice2", "w"));
  ck_assert(!wanted(GM_AUDIENCE_PUBLIC, NULL, "w"));
  ck_assert(tell(GM_AUDIENCE_PARTICIPANT, "alice", "w", "dw", why,
                 sizeof why) == GM_OK);
  read_until(f, lg, "dw");
  gm_feed *all = feed_as(NULL, NULL);
  evlog *la = calloc(1, sizeof *la);
  ck_assert_int_eq(gm_feed_subscribe(all, ""), GM_OK);
  until_wanted(GM_AUDIENCE_PUBLIC, NULL, "w");
  ck_assert(tell(GM_AUDIENCE_PUBLIC, NULL, "w", "dp", why, sizeof why) ==
            GM_OK);
  read_until(all, la, "dp");
  free(lg);
  free(la);
  gm_feed_destroy(&f);
  gm_feed_destroy(&all);
}
END_TEST

/* gmd's resident memory in KiB (VmRSS), 0 when unreadable. */
static long rss_kib(pid_t pid) {
  char path[64], line[256];
  snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
  FILE *f = fopen(path, "r");
  long kib = 0;
  while (f && fgets(line, sizeof line, f))
    if (strncmp(line, "VmRSS:", 6) == 0) kib = atol(line + 6);
  if (f) fclose(f);
  return kib;
}

/*
 * A feed client's subscriptions are kept by libzmq, one trie node per byte,
 * before gmd sees them: 40 prefixes of 64 KB (2.5 MB sent) made gmd keep
 * about 80 MB for as long as the client stayed.  A prefix longer than any
 * topic matches nothing: a client that sends one in a frame of more than
 * 1 KB is dropped, and gmd keeps nothing of it, while other clients'
 * subscriptions work (the curve cases: their handshakes pass the cap).
 */
START_TEST(a_feed_client_cannot_make_gmd_keep_huge_prefixes) {
  pid_t pid = gm_test_gmd_pid(gmd);
  long before = rss_kib(pid);
  ck_assert_int_gt(before, 0);
  void *ctx = zmq_ctx_new();
  void *s = zmq_socket(ctx, ZMQ_SUB);
  int zero = 0;
  zmq_setsockopt(s, ZMQ_LINGER, &zero, sizeof zero);
  ck_assert_int_eq(zmq_connect(s, gm_test_gmd_feed(gmd)), 0);
  enum { N = 40, LEN = 64 * 1024 };
  char *p = malloc(LEN);
  ck_assert_ptr_nonnull(p);
  for (int i = 0; i < N; i++) {
    memset(p, 'a' + i % 26, LEN);
    snprintf(p, 16, "huge%d.", i); /* each distinct from its first bytes */
    ck_assert_int_eq(zmq_setsockopt(s, ZMQ_SUBSCRIBE, p, LEN), 0);
  }
  free(p);
  /* Up to 5 s for them to arrive (they would have grown it within 1). */
  long grown = 0;
  for (int i = 0; i < 50 && grown < 32 * 1024; i++) {
    zmq_poll(NULL, 0, 100);
    grown = rss_kib(pid) - before;
  }
  ck_assert_msg(grown < 32 * 1024,
                "gmd grew by %ld KiB for %d subscriptions of %d bytes", grown,
                N, LEN);
  zmq_close(s);
  zmq_ctx_term(ctx);
  /* The feed still serves a client that subscribes what a topic can be. */
  gm_feed *f = feed_as(NULL, NULL);
  evlog *lg = calloc(1, sizeof *lg);
  ck_assert_int_eq(gm_feed_subscribe(f, ""), GM_OK);
  until_heard(f, lg, GM_AUDIENCE_PUBLIC, NULL, "after-huge");
  free(lg);
  gm_feed_destroy(&f);
}
END_TEST

/* How many events of f's log carry `note`. */
static int count(const evlog *lg, const char *note) {
  int n = 0;
  for (size_t i = 0; i < lg->n; i++) n += strcmp(lg->note[i], note) == 0;
  return n;
}

/*
 * With the XPUB closed the client library takes public events on the
 * private feed: each public event its prefixes match, once each even when
 * two of them match it (and "" with its private events too), with the
 * public seq (one more each).
 */
START_TEST(public_events_come_on_the_private_feed_once_each) {
  gm_feed *fa = feed_as(alice_pub, alice_sec);
  gm_feed *fb = feed_as(bob_pub, bob_sec);
  ck_assert_int_eq(gm_feed_subscribe(fa, "testmkt."), GM_OK);
  ck_assert_int_eq(gm_feed_subscribe(fa, "testmkt.told"), GM_OK);
  ck_assert_int_eq(gm_feed_subscribe(fb, ""), GM_OK);
  evlog *a = calloc(1, sizeof *a), *b = calloc(1, sizeof *b);
  until_heard(fa, a, GM_AUDIENCE_PUBLIC, NULL, "sync-a");
  until_heard(fb, b, GM_AUDIENCE_PUBLIC, NULL, "sync-b");
  until_heard(fb, b, GM_AUDIENCE_PARTICIPANT, "bob", "sync-bob");
  a->n = b->n = 0;
  for (int i = 0; i < 5; i++) {
    char note[8];
    snprintf(note, sizeof note, "n%d", i);
    say(GM_AUDIENCE_PUBLIC, NULL, note);
  }
  say(GM_AUDIENCE_PARTICIPANT, "alice", "for-alice");
  say(GM_AUDIENCE_PUBLIC, NULL, "end");
  read_until(fa, a, "end");
  read_until(fb, b, "end");
  while (take(fa, a, 200)) {
  }
  while (take(fb, b, 200)) {
  }
  for (int i = 0; i < 5; i++) {
    char note[8];
    snprintf(note, sizeof note, "n%d", i);
    ck_assert_msg(count(a, note) == 1, "alice got %s %d times", note,
                  count(a, note));
    ck_assert_msg(count(b, note) == 1, "bob got %s %d times", note,
                  count(b, note));
  }
  ck_assert_int_eq(count(a, "for-alice"), 0); /* public prefixes only */
  ck_assert_int_eq(count(b, "for-alice"), 0);
  ck_assert_int_eq(count(a, "end"), 1);
  ck_assert_int_eq(count(b, "end"), 1);
  gm_feed_destroy(&fa);
  gm_feed_destroy(&fb);
  free(a);
  free(b);
}
END_TEST

/* A replaced key's connection holding public prefixes is told and gets no
   public event after that. */
START_TEST(a_revoked_key_stops_public_events_too) {
  void *ctx = zmq_ctx_new();
  void *r = raw_private(ctx, alice_pub, alice_sec, NULL, 0);
  zmq_send(r, "\1testmkt.", 9, 0);
  zmq_send(r, "\1*", 2, 0);
  int heard = 0;
  for (int i = 0; i < 20 && !heard; i++) {
    say(GM_AUDIENCE_PUBLIC, NULL, "before");
    heard = raw_heard(r, "testmkt.", 300);
  }
  ck_assert(heard);
  char new_pub[41], new_sec[41];
  zmq_curve_keypair(new_pub, new_sec);
  register_key("alice", new_pub, "buyer");
  int told = 0;
  for (int i = 0; i < 10 && !told; i++) {
    say(GM_AUDIENCE_PUBLIC, NULL, "during");
    told = raw_refused(r, "no longer registered", NULL, 0, 600);
  }
  ck_assert_msg(told, "the old key's connection was never told");
  /* Both prefixes' refusals, then nothing public. */
  raw_refused(r, "no longer registered", NULL, 0, 600);
  for (int i = 0; i < 3; i++) say(GM_AUDIENCE_PUBLIC, NULL, "after");
  ck_assert_msg(!raw_heard(r, "testmkt.", 1500),
                "a revoked key's connection still gets public events");
  zmq_close(r);
  zmq_ctx_term(ctx);
}
END_TEST

/*
 * Against an older broker (simulated here by its two sockets: an XPUB and
 * a ROUTER that refuses every prefix not starting with "@" with that
 * broker's words), the client library moves its public prefixes to the SUB
 * and gets their events there, once each, and reports no refusal.
 */
START_TEST(an_older_broker_s_refusal_moves_public_prefixes_to_the_sub) {
  char dir[] = "/tmp/gm-oldbroker-XXXXXX", feed[128], priv[160];
  ck_assert_ptr_nonnull(mkdtemp(dir));
  snprintf(feed, sizeof feed, "ipc://%s/feed", dir);
  snprintf(priv, sizeof priv, "ipc://%s/feed.private", dir);
  void *ctx = zmq_ctx_new();
  void *xpub = zmq_socket(ctx, ZMQ_XPUB), *router = zmq_socket(ctx, ZMQ_ROUTER);
  int zero = 0;
  zmq_setsockopt(xpub, ZMQ_LINGER, &zero, sizeof zero);
  zmq_setsockopt(router, ZMQ_LINGER, &zero, sizeof zero);
  ck_assert_int_eq(zmq_bind(xpub, feed), 0);
  ck_assert_int_eq(zmq_bind(router, priv), 0);
  gm_client_options o;
  gm_client_options_init(&o);
  gm_feed *f = gm_feed_new(feed, &o);
  ck_assert_ptr_nonnull(f);
  ck_assert_int_eq(gm_feed_subscribe(f, "testmkt."), GM_OK);
  ck_assert_int_eq(gm_feed_subscribe(f, "@p:x "), GM_OK);
  Gm__Event ev = GM__EVENT__INIT;
  ev.market = "testmkt";
  ev.event = "told";
  uint8_t buf[256];
  int got = 0, refused_private = 0, subscribed = 0;
  for (int i = 0; i < 200 && got < 3; i++) {
    /* The old broker: refuses public prefixes, keeps the others. */
    char rid[256], m[300];
    int rl;
    while ((rl = zmq_recv(router, rid, sizeof rid, ZMQ_DONTWAIT)) > 0) {
      int ml = zmq_recv(router, m, sizeof m, 0);
      if (ml >= 2 && m[0] == 1 && m[1] != '@') {
        static const char why[] =
            "participant x may see only private topics starting with "
            "\"@p:x \"; public topics are on the feed";
        zmq_send(router, rid, (size_t)rl, ZMQ_SNDMORE);
        zmq_send(router, "!", 1, ZMQ_SNDMORE);
        zmq_send(router, m + 1, (size_t)ml - 1, ZMQ_SNDMORE);
        zmq_send(router, why, sizeof why - 1, 0);
      }
    }
    char sub[300];
    int sl;
    while ((sl = zmq_recv(xpub, sub, sizeof sub, ZMQ_DONTWAIT)) > 0)
      if (sub[0] == 1 && sl == 9 && !memcmp(sub + 1, "testmkt.", 8))
        subscribed = 1;
    if (subscribed) { /* one event each round until three came */
      ev.seq = (uint64_t)i;
      size_t n = gm__event__pack(&ev, buf);
      zmq_send(xpub, "testmkt.told", 12, ZMQ_SNDMORE);
      zmq_send(xpub, buf, n, 0);
    }
    char *topic = NULL;
    Gm__Event *e = NULL;
    gm_status st = gm_feed_recv(f, &topic, &e, 20);
    if (st == GM_OK) {
      ck_assert_str_eq(topic, "testmkt.told");
      got++;
    }
    refused_private += st == GM_PERMISSION_DENIED;
    free(topic);
    gm_feed_event_free(&e);
  }
  ck_assert_msg(subscribed, "the library never subscribed the SUB");
  ck_assert_int_eq(got, 3);
  ck_assert_int_eq(refused_private, 0);
  gm_feed_destroy(&f);
  zmq_close(xpub);
  zmq_close(router);
  zmq_ctx_term(ctx);
  char cmd[200];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  ck_assert_int_eq(system(cmd), 0);
}
END_TEST

int main(void) {
  Suite *s = suite_create("feed");
  TCase *tc = tcase_create("curve");
  tcase_add_checked_fixture(tc, curve_setup, teardown);
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, bob_never_sees_alice_private_events);
  tcase_add_test(tc, unsubscribe_stops_exactly_what_it_subscribed);
  tcase_add_test(tc, sequence_numbers_count_each_audience_apart);
  tcase_add_test(tc, events_for_an_audience_nobody_follows_are_not_counted);
  tcase_add_test(tc, publish_wanted_follows_subscriptions);
  tcase_add_test(tc, a_returning_subscriber_sees_the_gap_of_what_it_missed);
  tcase_add_test(tc, changing_other_prefixes_loses_no_event_of_a_kept_one);
  tcase_add_test(tc, publish_to_checks_its_audience);
  tcase_add_test(tc, topics_and_endpoints_parse);
  tcase_add_test(tc, a_reused_routing_id_inherits_nothing);
  tcase_add_test(tc, a_chosen_routing_id_is_refused_on_the_private_feed);
  tcase_add_test(tc, a_replaced_key_stops_private_events_on_open_connections);
  tcase_add_test(tc, a_role_change_reaches_open_private_subscriptions);
  tcase_add_test(
      tc,
      a_stalled_redis_holds_the_private_feed_back_briefly_after_a_reconnect);
  tcase_add_test(
      tc, many_first_subscriptions_during_a_stall_hold_the_feed_back_briefly);
  suite_add_tcase(s, tc);
  TCase *dev = tcase_create("dev");
  tcase_add_checked_fixture(dev, dev_setup, teardown);
  tcase_set_timeout(dev, 60);
  tcase_add_test(dev, development_mode_keeps_subscriptions_as_asked);
  tcase_add_test(dev, publish_wanted_in_development_mode);
  tcase_add_test(dev, a_feed_client_cannot_make_gmd_keep_huge_prefixes);
  suite_add_tcase(s, dev);
  TCase *closed = tcase_create("closed");
  tcase_add_checked_fixture(closed, closed_setup, teardown);
  tcase_set_timeout(closed, 60);
  tcase_add_test(closed, public_events_come_on_the_private_feed_once_each);
  tcase_add_test(closed, a_revoked_key_stops_public_events_too);
  suite_add_tcase(s, closed);
  TCase *old = tcase_create("old");
  tcase_set_timeout(old, 30);
  tcase_add_test(old,
                 an_older_broker_s_refusal_moves_public_prefixes_to_the_sub);
  suite_add_tcase(s, old);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
