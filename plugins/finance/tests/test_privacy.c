/*
 * Who learns who the enterprise is, on a CURVE broker where identities
 * come from keys: before a claim a bank's events and replies carry the
 * summary only; a claimant without the enterprise's consent sees the
 * project but not who; a bank not picked loses access; only the bank
 * picked sees who.  Every private event body a bank receives is searched
 * for the enterprise's name, credit code and contact, byte by byte.  A
 * bank whose products do not fit hears nothing of the referral.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zmq.h>

#include <greenmarket/client.h>

#include "harness.h"

#define NAME "Secret Solar Huzhou Ltd"
#define CONTACT "Ms Zhou 13911112222"

enum { ACME, ICBC, ABC, FAR, NWHO };
static const char *const who_id[NWHO] = {"acme", "icbc1", "abc1", "far1"};
static const char *const who_roles[NWHO] = {"enterprise", "bank", "bank",
                                            "bank"};
static char server_pub[41], server_sec[41], admin_pub[41], admin_sec[41];
static char pub[NWHO][41], sec[NWHO][41];
static gm_test_conn *conn[NWHO];
static gm_feed *feed[NWHO];
static char code[19];
/* Each feed follows its own audience only ("@p:<id> ", not ""), and icbc
   has a second staff member, icbc2, whom nobody follows: publish_wanted
   then says no to some of a referral's audiences (a "" subscription covers
   every topic, so it never does). */
static int narrow;

/* What one participant's feed delivered for one referral. */
typedef struct heard {
  int events;
  int leaked;     /* an event body held the name, code or contact */
  int max_access; /* the most any event showed */
  char transitions[256];
} heard;

static void reg_key(const char *id, const char *roles, const char *key) {
  Gm__Participant p = GM__PARTICIPANT__INIT;
  char *r[1] = {(char *)roles};
  p.id = (char *)id;
  p.public_key = (char *)key;
  p.roles = r;
  p.n_roles = 1;
  Gm__RegisterRequest reg = GM__REGISTER_REQUEST__INIT;
  reg.participant = &p;
  char idem[32];
  snprintf(idem, sizeof idem, "reg-%s", id);
  Gm__Reply *rep =
      gm_test_call(ft_conn, NULL, "gm", "register", idem, &reg.base);
  ck_assert_msg(rep && rep->status == GM__STATUS__OK, "register %s: %s", id,
                rep ? rep->message : "no reply");
  gm__reply__free_unpacked(rep, NULL);
}

static int contains(const uint8_t *b, size_t n, const char *s) {
  size_t k = strlen(s);
  for (size_t i = 0; i + k <= n; i++)
    if (!memcmp(b + i, s, k)) return 1;
  return 0;
}

/* The predicate a listen waits for: every event the step must bring. */
typedef int (*heard_all)(const heard h[NWHO]);

static int64_t mono_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Reads every feed, filing events about referral `id` per reader, until
   `done` holds (or for `ms` when done is NULL), then `tail_ms` more so an
   event that should not come has its chance to.  Private events leave
   through the publisher thread after the reply, so on a loaded machine
   they may come seconds later: waiting for what is expected, up to 20 s,
   keeps the test about what is delivered, not about how fast. */
static void listen_for(const char *id, heard out[NWHO], heard_all done, int ms,
                       int tail_ms) {
  int64_t start = mono_ms(), quiet_from = -1;
  int64_t cap = done ? 20000 : ms;
  for (;;) {
    int64_t now = mono_ms();
    if (quiet_from < 0 && (done ? done(out) : now - start >= cap))
      quiet_from = now;
    if (quiet_from >= 0 && now - quiet_from >= tail_ms) break;
    if (now - start >= cap + tail_ms) break;
    for (int w = 0; w < NWHO; w++) {
      char *topic = NULL;
      Gm__Event *ev = NULL;
      if (gm_feed_recv(feed[w], &topic, &ev, w == 0 ? 10 : 0) != GM_OK) {
        free(topic);
        continue;
      }
      Gm__Finance__ReferralEvent *re = gm__finance__referral_event__unpack(
          NULL, ev->body.len, ev->body.data);
      ck_assert_msg(re != NULL, "an undecodable %s event", topic);
      /* Private, to this participant only. */
      char want[64];
      snprintf(want, sizeof want, "@p:%s finance.referral", who_id[w]);
      ck_assert_str_eq(topic, want);
      if (!strcmp(re->referral->id, id)) {
        heard *h = &out[w];
        h->events++;
        if (contains(ev->body.data, ev->body.len, NAME) ||
            contains(ev->body.data, ev->body.len, code) ||
            contains(ev->body.data, ev->body.len, CONTACT))
          h->leaked++;
        if ((int)re->referral->access > h->max_access)
          h->max_access = (int)re->referral->access;
        strncat(h->transitions, re->transition,
                sizeof h->transitions - strlen(h->transitions) - 2);
        strcat(h->transitions, " ");
      }
      protobuf_c_message_free_unpacked(&re->base, NULL);
      free(topic);
      gm_feed_event_free(&ev);
    }
  }
}

/* Two claims heard: the enterprise hears each transition, each claimant
   its own claim (and the creation before it). */
static int heard_two_claims(const heard h[NWHO]) {
  return !strcmp(h[ACME].transitions, "created claim claim ") &&
         strstr(h[ICBC].transitions, "created claim") &&
         strstr(h[ABC].transitions, "created claim");
}

/* The pick heard by both claimants. */
static int heard_pick(const heard h[NWHO]) {
  return h[ICBC].events >= 1 && h[ABC].events >= 1;
}

/* The claim heard by the claimant and the creation by the other bank. */
static int heard_claim(const heard h[NWHO]) {
  return h[ICBC].leaked >= 1 && h[ABC].events >= 1;
}

static Gm__Finance__Referral *refer(const char *item, int identity) {
  Gm__Finance__ReferRequest r = GM__FINANCE__REFER_REQUEST__INIT;
  r.amount = 500000000;
  r.tenor_months = 36;
  r.class_code = item[0] == '1' ? "1" : "3";
  r.subitem = (char *)item;
  r.use_of_proceeds = "rooftop solar";
  r.description = "secret plan D-77";
  r.consent_share = 1;
  r.consent_identity = identity;
  return (Gm__Finance__Referral *)ft_call_on(conn[ACME], NULL,
                                             "referral.create", &r.base);
}

static void setup(void) {
  zmq_curve_keypair(server_pub, server_sec);
  zmq_curve_keypair(admin_pub, admin_sec);
  for (int w = 0; w < NWHO; w++) zmq_curve_keypair(pub[w], sec[w]);
  ft_redis = gm_test_redis_start();
  char *keyfile =
      gm_test_key_file(ft_redis, "server.key", server_pub, server_sec);
  char conf[2048];
  snprintf(conf, sizeof conf,
           "[testing]\nclock = manual\nclock_start_ms = %lld\n[plugins]\n"
           "load = finance\n[security]\nmode = curve\nsecret_key_file = %s\n"
           "admin_keys = %s\n",
           (long long)ft_at(FT_MONDAY, 10, 0), keyfile, admin_pub);
  free(keyfile);
  ft_gmd = gm_test_gmd_start_curve(ft_redis, GM_BUILD_PLUGIN_DIR, conf,
                                   server_pub, admin_pub, admin_sec);
  const char *ep = gm_test_gmd_endpoint(ft_gmd);
  ft_conn = gm_test_conn_new(ep, server_pub, admin_pub, admin_sec);
  ft_clock(ft_at(FT_MONDAY, 10, 0));
  for (int w = 0; w < NWHO; w++) {
    reg_key(who_id[w], who_roles[w], pub[w]);
    conn[w] = gm_test_conn_new(ep, server_pub, pub[w], sec[w]);
  }
  /* The admin does the centre's work (an admin holds every role). */
  ft_bank("icbc", NULL);
  ft_bank("abc", NULL);
  ft_bank("far", NULL);
  const char *banks[] = {NULL, "icbc", "abc", "far"};
  for (int w = ICBC; w <= FAR; w++) {
    Gm__Finance__LinkRequest l = GM__FINANCE__LINK_REQUEST__INIT;
    l.participant = (char *)who_id[w];
    l.bank = (char *)banks[w];
    ft_free(ft_ok(NULL, "bank.link", &l.base));
    /* The staff member accepts (bank join). */
    l.participant = "";
    ProtobufCMessage *m = ft_call_on(conn[w], NULL, "bank.link", &l.base);
    ck_assert_msg(m, "join %s: %s", who_id[w], ft_message);
    ft_free(m);
  }
  if (narrow) {
    char p2[41], s2[41];
    zmq_curve_keypair(p2, s2);
    reg_key("icbc2", "bank", p2);
    Gm__Finance__LinkRequest l = GM__FINANCE__LINK_REQUEST__INIT;
    l.participant = "icbc2";
    l.bank = "icbc";
    ft_free(ft_ok(NULL, "bank.link", &l.base));
    gm_test_conn *c2 = gm_test_conn_new(ep, server_pub, p2, s2);
    l.participant = "";
    ProtobufCMessage *m = ft_call_on(c2, NULL, "bank.link", &l.base);
    ck_assert_msg(m, "join icbc2: %s", ft_message);
    ft_free(m);
    gm_test_conn_destroy(&c2);
  }
  ft_product("icbc-p", "icbc", "3", "", 1, 100000000000, 1, 120, 80);
  ft_product("abc-p", "abc", "3", "", 1, 100000000000, 1, 120, 80);
  ft_product("far-p", "far", "1", "", 1, 100000000000, 1, 120, 80);
  Gm__Finance__Enterprise e = GM__FINANCE__ENTERPRISE__INIT;
  Gm__Finance__RegisterEnterpriseRequest re =
      GM__FINANCE__REGISTER_ENTERPRISE_REQUEST__INIT;
  e.credit_code = (char *)ft_code("91330502MA2B3C4D5", code);
  e.name = NAME;
  e.region = "330502";
  e.size = GM__FINANCE__SIZE_CLASS__SIZE_SMALL;
  e.contact = CONTACT;
  re.enterprise = &e;
  ProtobufCMessage *profile =
      ft_call_on(conn[ACME], NULL, "enterprise.register", &re.base);
  ck_assert_msg(profile != NULL, "%s", ft_message);
  ft_free(profile);

  gm_client_options o;
  for (int w = 0; w < NWHO; w++) {
    gm_client_options_init(&o);
    o.server_public_key = server_pub;
    o.public_key = pub[w];
    o.secret_key = sec[w];
    feed[w] = gm_feed_new(gm_test_gmd_feed(ft_gmd), &o);
    ck_assert_msg(feed[w] != NULL, "%s", gm_client_last_error());
    char own[80];
    snprintf(own, sizeof own, "@p:%s ", who_id[w]);
    ck_assert_int_eq(gm_feed_subscribe(feed[w], narrow ? own : ""), GM_OK);
  }
  /* The slow joiner: referrals (class 3 for icbc and abc, class 1 for
     far) until every feed has heard one. */
  int ok[NWHO] = {0};
  for (int round = 0; round < 50 && !(ok[0] && ok[1] && ok[2] && ok[3]);
       round++) {
    for (int k = 0; k < 2; k++) {
      Gm__Finance__Referral *r = refer(k ? "1.5" : "3.2", 0);
      ck_assert_msg(r != NULL, "%s", ft_message);
      ft_free(r);
    }
    for (int t = 0; t < 20; t++)
      for (int w = 0; w < NWHO; w++) {
        char *topic = NULL;
        Gm__Event *ev = NULL;
        if (gm_feed_recv(feed[w], &topic, &ev, 5) == GM_OK) ok[w] = 1;
        free(topic);
        gm_feed_event_free(&ev);
      }
  }
  ck_assert_msg(ok[0] && ok[1] && ok[2] && ok[3],
                "the feeds never heard the first referrals");
  heard drain[NWHO];
  listen_for("", drain, NULL, 300, 0);
}

static void narrow_setup(void) {
  narrow = 1;
  setup();
}

static void teardown(void) {
  for (int w = 0; w < NWHO; w++) {
    gm_feed_destroy(&feed[w]);
    gm_test_conn_destroy(&conn[w]);
  }
  ft_stop();
}

static Gm__Finance__Referral *as(int w, const char *method,
                                 const ProtobufCMessage *req) {
  Gm__Finance__Referral *r =
      (Gm__Finance__Referral *)ft_call_on(conn[w], NULL, method, req);
  ck_assert_msg(r != NULL, "%s by %s: %s", method, who_id[w], ft_message);
  return r;
}

START_TEST(identity_stays_hidden_until_the_pick_and_from_the_others) {
  heard h[NWHO];
  memset(h, 0, sizeof h);
  Gm__Finance__Referral *r = refer("3.2", 0);
  ck_assert_ptr_nonnull(r);
  char id[32];
  snprintf(id, sizeof id, "%s", r->id);
  ft_free(r);

  /* Replies first: a bank's view before its claim. */
  Gm__Finance__ReferralRequest g = GM__FINANCE__REFERRAL_REQUEST__INIT;
  g.id = id;
  r = as(ABC, "referral.get", &g.base);
  ck_assert_int_eq(r->access, GM__FINANCE__ACCESS__ACCESS_SUMMARY);
  ck_assert_ptr_null(r->enterprise);
  ck_assert_str_eq(r->description, "");
  ft_free(r);
  ck_assert_ptr_null(ft_call_on(conn[FAR], NULL, "referral.get", &g.base));
  ck_assert_int_eq(ft_status, GM__STATUS__PERMISSION_DENIED);

  Gm__Finance__ClaimRequest c = GM__FINANCE__CLAIM_REQUEST__INIT;
  c.id = id;
  r = as(ICBC, "referral.claim", &c.base);
  ck_assert_int_eq(r->access, GM__FINANCE__ACCESS__ACCESS_DETAILS);
  ck_assert_ptr_null(r->enterprise);
  ck_assert_str_eq(r->description, "secret plan D-77");
  ft_free(r);
  ft_free(as(ABC, "referral.claim", &c.base));
  listen_for(id, h, heard_two_claims, 0, 500);
  /* Up to here no bank heard who. */
  ck_assert_int_eq(h[ICBC].leaked, 0);
  ck_assert_int_eq(h[ABC].leaked, 0);
  ck_assert_int_eq(h[FAR].events, 0);
  ck_assert_int_eq(h[ICBC].max_access, GM__FINANCE__ACCESS__ACCESS_DETAILS);
  ck_assert_msg(strstr(h[ICBC].transitions, "created claim"), "%s",
                h[ICBC].transitions);
  ck_assert_msg(strstr(h[ABC].transitions, "created claim"), "%s",
                h[ABC].transitions);
  /* The enterprise hears every transition, with everything. */
  ck_assert_str_eq(h[ACME].transitions, "created claim claim ");
  ck_assert_int_eq(h[ACME].leaked, 3);

  heard after[NWHO];
  memset(after, 0, sizeof after);
  Gm__Finance__PickRequest p = GM__FINANCE__PICK_REQUEST__INIT;
  p.id = id;
  p.bank = "icbc";
  ft_free(as(ACME, "referral.pick", &p.base));
  listen_for(id, after, heard_pick, 0, 500);
  /* The bank picked learns who; the other loses access and learns
     nothing. */
  ck_assert_int_eq(after[ICBC].events, 1);
  ck_assert_int_eq(after[ICBC].leaked, 1);
  ck_assert_int_eq(after[ICBC].max_access, GM__FINANCE__ACCESS__ACCESS_FULL);
  ck_assert_int_eq(after[ABC].events, 1);
  ck_assert_int_eq(after[ABC].leaked, 0);
  ck_assert_int_eq(after[ABC].max_access, GM__FINANCE__ACCESS__ACCESS_NONE);
  ck_assert_int_eq(after[FAR].events, 0);
  ck_assert_ptr_null(ft_call_on(conn[ABC], NULL, "referral.get", &g.base));
  ck_assert_int_eq(ft_status, GM__STATUS__PERMISSION_DENIED);
  r = as(ICBC, "referral.get", &g.base);
  ck_assert_str_eq(r->enterprise->name, NAME);
  ck_assert_str_eq(r->enterprise->contact, CONTACT);
  ft_free(r);
}
END_TEST

START_TEST(consent_to_share_who_shows_it_to_claimants_only) {
  heard h[NWHO];
  memset(h, 0, sizeof h);
  Gm__Finance__Referral *r = refer("3.2", 1);
  ck_assert_ptr_nonnull(r);
  char id[32];
  snprintf(id, sizeof id, "%s", r->id);
  ft_free(r);
  Gm__Finance__ClaimRequest c = GM__FINANCE__CLAIM_REQUEST__INIT;
  c.id = id;
  r = as(ICBC, "referral.claim", &c.base);
  ck_assert_int_eq(r->access, GM__FINANCE__ACCESS__ACCESS_FULL);
  ck_assert_str_eq(r->enterprise->credit_code, code);
  ft_free(r);
  listen_for(id, h, heard_claim, 0, 500);
  /* The claimant heard who with its claim; the other bank (not a
     claimant) only the summary of the referral entering the pool. */
  ck_assert_int_eq(h[ICBC].leaked, 1);
  ck_assert_int_eq(h[ABC].events, 1);
  ck_assert_int_eq(h[ABC].leaked, 0);
  ck_assert_int_eq(h[ABC].max_access, GM__FINANCE__ACCESS__ACCESS_SUMMARY);
  ck_assert_int_eq(h[FAR].events, 0);
}
END_TEST

/* The first event of the referral heard by icbc's staff member. */
static int heard_icbc(const heard h[NWHO]) {
  return h[ICBC].events >= 1;
}

/*
 * A staff member who loses the bank role after joining hears none of its
 * bank's private events any more (the link stays until the centre
 * unlinks it; its calls are refused by role already).
 */
START_TEST(a_member_without_the_bank_role_hears_nothing) {
  Gm__Participant p = GM__PARTICIPANT__INIT;
  char *roles[1] = {"enterprise"};
  p.id = (char *)who_id[ABC];
  p.public_key = pub[ABC];
  p.roles = roles;
  p.n_roles = 1;
  Gm__RegisterRequest reg = GM__REGISTER_REQUEST__INIT;
  reg.participant = &p;
  Gm__Reply *rep =
      gm_test_call(ft_conn, NULL, "gm", "register", "reg-abc1-left", &reg.base);
  ck_assert_msg(rep && rep->status == GM__STATUS__OK, "%s",
                rep ? rep->message : "no reply");
  gm__reply__free_unpacked(rep, NULL);
  heard h[NWHO];
  memset(h, 0, sizeof h);
  Gm__Finance__Referral *r = refer("3.2", 0); /* icbc's and abc's class */
  ck_assert_msg(r != NULL, "%s", ft_message);
  char id[32];
  snprintf(id, sizeof id, "%s", r->id);
  ft_free(r);
  listen_for(id, h, heard_icbc, 0, 500);
  ck_assert_int_ge(h[ICBC].events, 1);
  ck_assert_int_eq(h[ABC].events, 0);
}
END_TEST

int main(void) {
  Suite *s = suite_create("finance privacy");
  TCase *tc = tcase_create("privacy");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, identity_stays_hidden_until_the_pick_and_from_the_others);
  tcase_add_test(tc, consent_to_share_who_shows_it_to_claimants_only);
  tcase_add_test(tc, a_member_without_the_bank_role_hears_nothing);
  suite_add_tcase(s, tc);
  TCase *nt = tcase_create("own audiences only");
  tcase_add_checked_fixture(nt, narrow_setup, teardown);
  tcase_set_timeout(nt, 120);
  tcase_add_test(nt, identity_stays_hidden_until_the_pick_and_from_the_others);
  tcase_add_test(nt, consent_to_share_who_shows_it_to_claimants_only);
  suite_add_tcase(s, nt);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
