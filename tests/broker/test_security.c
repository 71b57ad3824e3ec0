/*
 * Who may act and read as whom, with CURVE on: a real redis-server and gmd,
 * attacked by a client holding an ordinary participant's key.
 *   - [security] admin_keys admits whole keys only: an entry an operator
 *     edited to disable it (or a typo) admits nobody, and gmd refuses to
 *     start on it, naming it;
 *   - a client's own ZMTP metadata (X-Roles, X-Key) claims nothing, on the
 *     request endpoint or the private feed;
 *   - no participant may be registered under the bootstrap admins' id.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include "auth.h"
#include "gmd_fixture.h"
#include "run_gm.h"
#include "greenmarket.pb-c.h"
#include "greenmarket/client.h"
#include "redis_fixture.h"
#include "testmkt.pb-c.h"

/* libzmq's ZMQ_METADATA (a draft option in 4.3's header, built in). */
#ifndef ZMQ_METADATA
#define ZMQ_METADATA 95
#endif

static gm_test_redis *redis;
static gm_test_gmd *gmd;
static gm_test_conn *admin;
static char server_pub[41], server_sec[41], admin_pub[41], admin_sec[41];
static char admin2_pub[41], admin2_sec[41];

static void curve_setup(void) {
  ck_assert_int_eq(zmq_curve_keypair(server_pub, server_sec), 0);
  ck_assert_int_eq(zmq_curve_keypair(admin_pub, admin_sec), 0);
  ck_assert_int_eq(zmq_curve_keypair(admin2_pub, admin2_sec), 0);
  redis = gm_test_redis_start();
  char *keyfile = gm_test_key_file(redis, "server.key", server_pub, server_sec);
  /* Two keys, with the spaces an operator may put around the comma. */
  char extra[1024];
  snprintf(extra, sizeof extra,
           "[plugins]\nload = testmkt\n[security]\nmode = curve\n"
           "secret_key_file = %s\nadmin_keys = %s , %s\n",
           keyfile, admin_pub, admin2_pub);
  free(keyfile);
  gmd = gm_test_gmd_start_curve(redis, TEST_PLUGIN_DIR, extra, server_pub,
                                admin_pub, admin_sec);
  admin = gm_test_conn_new(gm_test_gmd_endpoint(gmd), server_pub, admin_pub,
                           admin_sec);
}

static void teardown(void) {
  gm_test_conn_destroy(&admin);
  gm_test_gmd_stop(&gmd);
  gm_test_redis_stop(&redis);
}

static Gm__Reply *register_id(gm_test_conn *c, const char *id, const char *pub,
                              const char *role, const char *idem) {
  Gm__Participant p = GM__PARTICIPANT__INIT;
  p.id = (char *)id;
  p.public_key = (char *)pub;
  char *roles[] = {(char *)role};
  p.roles = roles;
  p.n_roles = 1;
  Gm__RegisterRequest reg = GM__REGISTER_REQUEST__INIT;
  reg.participant = &p;
  Gm__Reply *r = gm_test_call(c, NULL, "gm", "register", idem, &reg.base);
  ck_assert_ptr_nonnull(r);
  return r;
}

static void expect(Gm__Reply *r, Gm__Status status, const char *text) {
  ck_assert_ptr_nonnull(r);
  ck_assert_msg(r->status == status, "status %d (%s), want %d", r->status,
                r->message, status);
  if (text)
    ck_assert_msg(strstr(r->message, text), "'%s' not in '%s'", text,
                  r->message);
  gm__reply__free_unpacked(r, NULL);
}

/* gmd --check on a CURVE config with `admin_keys`; its exit status. */
static int check_admin_keys(const char *admin_keys, char *out, size_t outlen) {
  char *keyfile = gm_test_key_file(redis, "check.key", server_pub, server_sec);
  char *conf = gm_test_redis_path(redis, "check.conf");
  FILE *f = fopen(conf, "w");
  ck_assert_ptr_nonnull(f);
  fprintf(f,
          "[redis]\nunix = %s\n[ledger]\npath = check.sqlite\n"
          "[security]\nmode = curve\nsecret_key_file = %s\nadmin_keys = %s\n"
          "[plugins]\ndir = %s\nload = testmkt\n",
          gm_test_redis_socket(redis), keyfile, admin_keys, TEST_PLUGIN_DIR);
  fclose(f);
  int rc = gm_test_gmd_check(conf, out, outlen);
  free(conf);
  free(keyfile);
  return rc;
}

/*
 * An admin key is admitted only as a whole entry.  The handler used to
 * look the client's key up as a substring of the list, so an entry the
 * operator disabled by editing it ("old-<key>", "<key>#") still admitted
 * that key as admin.  Now gmd refuses such a list at start, naming the
 * entry, and the keys of a good list are admitted (spaces allowed).
 */
START_TEST(admin_keys_admit_whole_keys_only) {
  char list[3][160];
  snprintf(list[0], sizeof list[0], "old-%s", admin_pub);
  snprintf(list[1], sizeof list[1], "%s#", admin_pub);
  snprintf(list[2], sizeof list[2], "%s,%.39s", admin_pub, admin2_pub);
  for (int i = 0; i < 3; i++) {
    char err[512] = "";
    ck_assert_msg(gm__admin_keys_check(list[i], err, sizeof err) != 0,
                  "'%s' accepted", list[i]);
    ck_assert_msg(strstr(err, "is not a 40-character Z85 public key"), "%s",
                  err);
    char out[4096];
    ck_assert_int_eq(check_admin_keys(list[i], out, sizeof out), 1);
    ck_assert_msg(strstr(out, "[security] admin_keys: key ") &&
                      strstr(out, "is not a 40-character Z85 public key"),
                  "gmd said: %s", out);
  }
  char ok[200], err[512] = "";
  snprintf(ok, sizeof ok, " %s,%s, ", admin_pub, admin2_pub);
  ck_assert_msg(gm__admin_keys_check(ok, err, sizeof err) == 0, "%s", err);
  ck_assert_int_eq(gm__admin_keys_check("", err, sizeof err), 0);

  /* Both keys of the running broker's list are admins; their whoami says
     so. */
  gm_test_conn *second = gm_test_conn_new(gm_test_gmd_endpoint(gmd), server_pub,
                                          admin2_pub, admin2_sec);
  Gm__WhoamiRequest req = GM__WHOAMI_REQUEST__INIT;
  Gm__Reply *r = gm_test_call(second, NULL, "gm", "whoami", NULL, &req.base);
  ck_assert_ptr_nonnull(r);
  ck_assert_msg(r->status == GM__STATUS__OK, "%s", r->message);
  Gm__WhoamiReply *w =
      gm__whoami_reply__unpack(NULL, r->body.len, r->body.data);
  ck_assert_str_eq(w->participant->id, "admin");
  ck_assert_uint_eq(w->participant->n_roles, 1);
  ck_assert_str_eq(w->participant->roles[0], "admin");
  gm__whoami_reply__free_unpacked(w, NULL);
  gm__reply__free_unpacked(r, NULL);
  gm_test_conn_destroy(&second);
}
END_TEST

/* A DEALER with key pair (pub, sec) that also sends its own ZMTP metadata
   X-Roles: admin and an X-Key that is no key (libzmq refuses an empty
   value, which a bootstrap admin's connection carries), connected to
   endpoint. */
static void *spoofing_dealer(void *ctx, const char *endpoint, const char *pub,
                             const char *sec) {
  void *s = zmq_socket(ctx, ZMQ_DEALER);
  int linger = 0, timeout = 3000;
  zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof linger);
  zmq_setsockopt(s, ZMQ_RCVTIMEO, &timeout, sizeof timeout);
  ck_assert_int_eq(zmq_setsockopt(s, ZMQ_METADATA, "X-Roles:admin", 13), 0);
  ck_assert_int_eq(zmq_setsockopt(s, ZMQ_METADATA, "X-Key:-", 7), 0);
  zmq_setsockopt(s, ZMQ_CURVE_SERVERKEY, server_pub, 40);
  zmq_setsockopt(s, ZMQ_CURVE_PUBLICKEY, pub, 40);
  zmq_setsockopt(s, ZMQ_CURVE_SECRETKEY, sec, 40);
  ck_assert_int_eq(zmq_connect(s, endpoint), 0);
  return s;
}

/* One request over a raw DEALER; its reply (NULL on timeout). */
static Gm__Reply *raw_call(void *s, const char *market, const char *method,
                           const char *idem, const ProtobufCMessage *body) {
  static uint64_t next_id = 1;
  Gm__Request req = GM__REQUEST__INIT;
  req.version = 1;
  req.request_id = next_id++;
  req.market = (char *)market;
  req.method = (char *)method;
  req.idempotency_key = (char *)(idem ? idem : "");
  req.dev_participant = "admin"; /* ignored with CURVE, as it must be */
  uint8_t b[1024], buf[2048];
  req.body.len = protobuf_c_message_pack(body, b);
  req.body.data = b;
  size_t len = gm__request__pack(&req, buf);
  ck_assert_int_ge(zmq_send(s, buf, len, 0), 0);
  int n = zmq_recv(s, buf, sizeof buf, 0);
  if (n < 0) return NULL;
  return gm__reply__unpack(NULL, (size_t)n, buf);
}

/* Reads s for up to ms; 1 when a refusal ["!", prefix, ...] of `prefix`
   came, and *got_event set when any event came instead. */
/* Waits up to *ms_left for a message on s (the socket's own receive
   timeout is 3 s, for whole calls); 1 when one is there, *ms_left less the
   time waited. */
static int readable(void *s, int *ms_left) {
  if (*ms_left <= 0) return 0;
  zmq_pollitem_t item = {s, 0, ZMQ_POLLIN, 0};
  struct timespec a, b;
  clock_gettime(CLOCK_MONOTONIC, &a);
  int n = zmq_poll(&item, 1, *ms_left);
  clock_gettime(CLOCK_MONOTONIC, &b);
  *ms_left -=
      (int)((b.tv_sec - a.tv_sec) * 1000 + (b.tv_nsec - a.tv_nsec) / 1000000);
  return n > 0;
}

static int raw_refused(void *s, const char *prefix, int *got_event, int ms) {
  while (readable(s, &ms)) {
    char f[3][512];
    int n[3] = {0, 0, 0}, k = 0, more = 1;
    if ((n[0] = zmq_recv(s, f[0], sizeof f[0] - 1, 0)) < 0) continue;
    size_t ml = sizeof more;
    zmq_getsockopt(s, ZMQ_RCVMORE, &more, &ml);
    while (more) {
      char skip[4096];
      int got = zmq_recv(s, k < 2 ? f[k + 1] : skip,
                         k < 2 ? sizeof f[0] - 1 : sizeof skip, 0);
      if (k < 2) n[++k] = got;
      zmq_getsockopt(s, ZMQ_RCVMORE, &more, &ml);
    }
    if (n[0] == 1 && f[0][0] == '!' && n[1] == (int)strlen(prefix) &&
        memcmp(f[1], prefix, (size_t)n[1]) == 0)
      return 1;
    if (n[0] >= 1 && f[0][0] == '@') *got_event = 1;
  }
  return 0;
}

/* testmkt tell, as the bootstrap admin: publishes `note` as event "told"
   to one audience. */
static void tell(gm_audience audience, const char *who, const char *note) {
  Gm__Testmkt__TellRequest t = GM__TESTMKT__TELL_REQUEST__INIT;
  t.audience = (int32_t)audience;
  t.who = (char *)who;
  t.event = "told";
  t.note = (char *)note;
  expect(gm_test_call(admin, NULL, "testmkt", "tell", NULL, &t.base),
         GM__STATUS__OK, NULL);
}

/* 1 when a message whose first frame starts with `prefix` arrives within
   ms (others are read and skipped). */
static int raw_heard(void *s, const char *prefix, int ms) {
  while (readable(s, &ms)) {
    char buf[512];
    int n = zmq_recv(s, buf, sizeof buf - 1, 0);
    if (n < 0) continue;
    buf[n < (int)sizeof buf - 1 ? n : (int)sizeof buf - 1] = '\0';
    int more;
    size_t ml = sizeof more;
    zmq_getsockopt(s, ZMQ_RCVMORE, &more, &ml);
    while (more) {
      char skip[4096];
      zmq_recv(s, skip, sizeof skip, 0);
      zmq_getsockopt(s, ZMQ_RCVMORE, &more, &ml);
    }
    if (strncmp(buf, prefix, strlen(prefix)) == 0) return 1;
  }
  return 0;
}

/*
 * The ZAP handler's properties (User-Id, X-Roles, X-Key) decide who a
 * connection is; a client that sends its own X-Roles: admin and X-Key
 * gets neither the role nor a pass on the key's re-check, on requests or
 * on the private feed.
 */
START_TEST(client_metadata_claims_no_role_and_no_identity) {
  char m_pub[41], m_sec[41];
  zmq_curve_keypair(m_pub, m_sec);
  expect(register_id(admin, "mallory", m_pub, "buyer", "reg-m"), GM__STATUS__OK,
         NULL);
  void *ctx = zmq_ctx_new();
  void *s = spoofing_dealer(ctx, gm_test_gmd_endpoint(gmd), m_pub, m_sec);

  Gm__WhoamiRequest who = GM__WHOAMI_REQUEST__INIT;
  Gm__Reply *r = raw_call(s, "gm", "whoami", NULL, &who.base);
  ck_assert_ptr_nonnull(r);
  ck_assert_msg(r->status == GM__STATUS__OK, "%s", r->message);
  Gm__WhoamiReply *w =
      gm__whoami_reply__unpack(NULL, r->body.len, r->body.data);
  ck_assert_str_eq(w->participant->id, "mallory");
  ck_assert_uint_eq(w->participant->n_roles, 1);
  ck_assert_str_eq(w->participant->roles[0], "buyer");
  gm__whoami_reply__free_unpacked(w, NULL);
  gm__reply__free_unpacked(r, NULL);

  Gm__Participant p = GM__PARTICIPANT__INIT;
  p.id = "mallory";
  p.public_key = m_pub;
  char *roles[] = {"admin"};
  p.roles = roles;
  p.n_roles = 1;
  Gm__RegisterRequest reg = GM__REGISTER_REQUEST__INIT;
  reg.participant = &p;
  expect(raw_call(s, "gm", "register", "escalate", &reg.base),
         GM__STATUS__PERMISSION_DENIED, "needs role admin");

  /* Her key is replaced: the spoofed X-Key must not spare her connection
     the re-check. */
  char m2_pub[41], m2_sec[41];
  zmq_curve_keypair(m2_pub, m2_sec);
  expect(register_id(admin, "mallory", m2_pub, "buyer", "reg-m2"),
         GM__STATUS__OK, NULL);
  int cut = 0;
  for (int i = 0; i < 40 && !cut; i++) {
    r = raw_call(s, "gm", "whoami", NULL, &who.base);
    ck_assert_ptr_nonnull(r);
    cut = r->status == GM__STATUS__PERMISSION_DENIED &&
          strstr(r->message, "no longer registered");
    gm__reply__free_unpacked(r, NULL);
    if (!cut) zmq_poll(NULL, 0, 100);
  }
  ck_assert_msg(cut, "a revoked key with a spoofed X-Key kept working");
  zmq_close(s);

  /* The private feed: the spoofed roles open no role's topics, and the
     admin's own topics stay the admin's. */
  char ep[600];
  ck_assert_int_eq(
      gm_feed_private_endpoint(gm_test_gmd_feed(gmd), ep, sizeof ep), GM_OK);
  void *pf = spoofing_dealer(ctx, ep, m2_pub, m2_sec);
  static const char *const asked[] = {"@r:admin ", "@p:admin "};
  for (size_t i = 0; i < sizeof asked / sizeof *asked; i++) {
    char msg[64];
    msg[0] = 1;
    size_t n = strlen(asked[i]);
    memcpy(msg + 1, asked[i], n);
    ck_assert_int_ge(zmq_send(pf, msg, n + 1, 0), 0);
    int got_event = 0;
    ck_assert_msg(raw_refused(pf, asked[i], &got_event, 3000),
                  "private subscription '%s' with spoofed X-Roles: admin was "
                  "not refused",
                  asked[i]);
    ck_assert(!got_event);
  }
  /* "@r:" is kept as her own roles' prefix ("@r:buyer "), never an
     admin's "@r:": of events to buyer, seller and admin she gets the
     buyer's only. */
  ck_assert_int_ge(zmq_send(pf, "\1@r:", 4, 0), 0);
  int heard = 0;
  for (int i = 0; i < 20 && !heard; i++) {
    tell(GM_AUDIENCE_ROLE, "seller", "for-sellers");
    tell(GM_AUDIENCE_ROLE, "admin", "for-admins");
    tell(GM_AUDIENCE_ROLE, "buyer", "for-buyers");
    heard = raw_heard(pf, "@r:buyer ", 300);
  }
  ck_assert_msg(heard, "her own role's event never came");
  tell(GM_AUDIENCE_ROLE, "seller", "for-sellers");
  tell(GM_AUDIENCE_ROLE, "admin", "for-admins");
  ck_assert_msg(
      !raw_heard(pf, "@r:seller ", 1000) && !raw_heard(pf, "@r:admin ", 1000),
      "spoofed X-Roles: admin got another role's private event");
  zmq_close(pf);
  zmq_ctx_term(ctx);
}
END_TEST

/* Whether gmd refused `pub` at the handshake as registered to 'admin'
   (its log says so within 3 s). */
static int refused_as_admin(const char *pub) {
  char want[160];
  snprintf(want, sizeof want,
           "refused client key %s: it is registered as participant 'admin'",
           pub);
  for (int i = 0; i < 150; i++) {
    if (gm_test_gmd_log_has(gmd, want)) return 1;
    zmq_poll(NULL, 0, 20);
  }
  return 0;
}

/*
 * A connection under a routing id its client chose is not answered with
 * CURVE: by the time a reply goes, another client may present that id
 * (the first one closed) and would be sent it.  Its request is refused,
 * saying why, and nothing of the call runs.
 */
START_TEST(a_request_under_a_chosen_routing_id_is_refused) {
  char m_pub[41], m_sec[41];
  zmq_curve_keypair(m_pub, m_sec);
  expect(register_id(admin, "rid-chooser", m_pub, "buyer", "reg-rid"),
         GM__STATUS__OK, NULL);
  void *ctx = zmq_ctx_new();
  void *s = zmq_socket(ctx, ZMQ_DEALER);
  int linger = 0, timeout = 3000;
  zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof linger);
  zmq_setsockopt(s, ZMQ_RCVTIMEO, &timeout, sizeof timeout);
  ck_assert_int_eq(zmq_setsockopt(s, ZMQ_ROUTING_ID, "mine", 4), 0);
  zmq_setsockopt(s, ZMQ_CURVE_SERVERKEY, server_pub, 40);
  zmq_setsockopt(s, ZMQ_CURVE_PUBLICKEY, m_pub, 40);
  zmq_setsockopt(s, ZMQ_CURVE_SECRETKEY, m_sec, 40);
  ck_assert_int_eq(zmq_connect(s, gm_test_gmd_endpoint(gmd)), 0);
  Gm__WhoamiRequest who = GM__WHOAMI_REQUEST__INIT;
  expect(raw_call(s, "gm", "whoami", NULL, &who.base),
         GM__STATUS__INVALID_ARGUMENT, "do not set ZMQ_ROUTING_ID");
  zmq_close(s);
  zmq_ctx_term(ctx);
  /* The same key on a socket whose routing id the broker assigns. */
  gm_test_conn *c =
      gm_test_conn_new(gm_test_gmd_endpoint(gmd), server_pub, m_pub, m_sec);
  Gm__Reply *r = gm_test_call(c, NULL, "gm", "whoami", NULL, &who.base);
  expect(r, GM__STATUS__OK, NULL);
  gm_test_conn_destroy(&c);
}
END_TEST

/*
 * A key registered as participant "admin" before register refused that id
 * (written into the registry here as that release stored it) is refused
 * at the handshake, on the request socket and both feeds, and the log says
 * how to fix it: a new key pair registered under another id works.
 */
START_TEST(an_admin_id_registered_before_the_refusal_is_refused) {
  char pub[41], sec[41];
  zmq_curve_keypair(pub, sec);
  /* Two more such keys, for the public and the private feed. */
  char fpub[2][41], fsec[2][41];
  zmq_curve_keypair(fpub[0], fsec[0]);
  zmq_curve_keypair(fpub[1], fsec[1]);
  redisContext *rc = gm_test_redis_connect(redis);
  freeReplyObject(
      gm_test_redis_cmd(rc, "SET gm:{participants}:key:%s admin", pub));
  for (int i = 0; i < 2; i++)
    freeReplyObject(
        gm_test_redis_cmd(rc, "SET gm:{participants}:key:%s admin", fpub[i]));
  freeReplyObject(gm_test_redis_cmd(
      rc, "HSET gm:{participants}:id:admin id admin roles buyer public_key %s",
      pub));
  redisFree(rc);
  /* The feeds' handshakes pass the same check (one ZAP handler for every
     CURVE socket of gmd's context): the public feed's SUB and the private
     feed's DEALER are refused too, not served as the bootstrap admin. */
  void *ctx = zmq_ctx_new();
  char ep[600];
  ck_assert_int_eq(
      gm_feed_private_endpoint(gm_test_gmd_feed(gmd), ep, sizeof ep), GM_OK);
  void *sub = zmq_socket(ctx, ZMQ_SUB);
  int linger = 0;
  zmq_setsockopt(sub, ZMQ_LINGER, &linger, sizeof linger);
  zmq_setsockopt(sub, ZMQ_CURVE_SERVERKEY, server_pub, 40);
  zmq_setsockopt(sub, ZMQ_CURVE_PUBLICKEY, fpub[0], 40);
  zmq_setsockopt(sub, ZMQ_CURVE_SECRETKEY, fsec[0], 40);
  zmq_setsockopt(sub, ZMQ_SUBSCRIBE, "", 0);
  ck_assert_int_eq(zmq_connect(sub, gm_test_gmd_feed(gmd)), 0);
  void *pf = spoofing_dealer(ctx, ep, fpub[1], fsec[1]);
  ck_assert_int_ge(zmq_send(pf, "\1@p:admin ", 11, 0), 0);
  ck_assert_msg(refused_as_admin(fpub[0]),
                "the public feed admitted a key registered as 'admin'");
  ck_assert_msg(refused_as_admin(fpub[1]),
                "the private feed admitted a key registered as 'admin'");
  char buf[256];
  ck_assert_int_lt(zmq_recv(pf, buf, sizeof buf, ZMQ_DONTWAIT), 0);
  zmq_close(sub);
  zmq_close(pf);
  zmq_ctx_term(ctx);
  gm_test_conn *c =
      gm_test_conn_new(gm_test_gmd_endpoint(gmd), server_pub, pub, sec);
  Gm__PingRequest ping = GM__PING_REQUEST__INIT;
  /* No answer in a second (an admitted key's comes in milliseconds). */
  gm_test_send(c, 1, NULL, "gm", "ping", NULL, &ping.base);
  ck_assert_ptr_null(gm_test_conn_recv(c, 1000));
  gm_test_conn_destroy(&c);
  ck_assert_msg(gm_test_gmd_log_has(gmd, "registered as participant 'admin'"),
                "gmd's log does not say why the key was refused");
  char pub2[41], sec2[41];
  zmq_curve_keypair(pub2, sec2);
  expect(register_id(admin, "ops", pub2, "buyer", "reg-ops"), GM__STATUS__OK,
         NULL);
  c = gm_test_conn_new(gm_test_gmd_endpoint(gmd), server_pub, pub2, sec2);
  Gm__Reply *r = gm_test_call(c, NULL, "gm", "ping", NULL, &ping.base);
  ck_assert_ptr_nonnull(r);
  ck_assert_int_eq(r->status, GM__STATUS__OK);
  gm__reply__free_unpacked(r, NULL);
  gm_test_conn_destroy(&c);
}
END_TEST

/* A server key file others can read is named at start (whoever reads it
   can pose as the broker), as a readable password_file is. */
START_TEST(a_readable_server_key_file_is_named) {
  char out[8192];
  char *keyfile = gm_test_redis_path(redis, "check.key");
  ck_assert_int_eq(check_admin_keys(admin_pub, out, sizeof out), 0);
  chmod(keyfile, 0644);
  ck_assert_int_eq(check_admin_keys(admin_pub, out, sizeof out), 0);
  ck_assert_msg(strstr(out, "secret_key_file") &&
                    strstr(out, "can be read by other users (mode 644,") &&
                    strstr(out, "chmod 600"),
                "no warning for a key file of mode 644: %s", out);
  chmod(keyfile, 0600);
  ck_assert_int_eq(check_admin_keys(admin_pub, out, sizeof out), 0);
  ck_assert_msg(!strstr(out, "can be read by other users"), "%s", out);
  /* 640 with gmd's own group is how operations.md shares it under systemd
     (root's file, group greenmarket): no warning, whose chmod 600 would
     lock gmd out. */
  ck_assert_int_eq(chown(keyfile, (uid_t)-1, getegid()), 0);
  chmod(keyfile, 0640);
  ck_assert_int_eq(check_admin_keys(admin_pub, out, sizeof out), 0);
  ck_assert_msg(!strstr(out, "can be read by other users"), "%s", out);
  /* The same mode with another group (root may give it one): named. */
  if (chown(keyfile, (uid_t)-1, getegid() + 1) == 0) {
    ck_assert_int_eq(check_admin_keys(admin_pub, out, sizeof out), 0);
    ck_assert_msg(strstr(out, "can be read by other users (mode 640") &&
                      strstr(out, "640 with gmd's own group"),
                  "no warning for a key file of another group: %s", out);
  }
  chmod(keyfile, 0600);
  free(keyfile);
}
END_TEST

/*
 * Every bootstrap key acts as participant "admin": a participant registered
 * under that id would share the bootstrap admins' orders, private events
 * ("@p:admin ") and idempotency records.  CURVE brokers refuse the id.
 */
START_TEST(the_bootstrap_admin_id_cannot_be_registered) {
  char pub[41], sec[41];
  zmq_curve_keypair(pub, sec);
  expect(register_id(admin, "admin", pub, "buyer", "reg-a"),
         GM__STATUS__INVALID_ARGUMENT, "register it under another id");
  /* Nothing was stored: the key admits nobody. */
  gm_test_conn *c =
      gm_test_conn_new(gm_test_gmd_endpoint(gmd), server_pub, pub, sec);
  Gm__PingRequest ping = GM__PING_REQUEST__INIT;
  /* No answer in a second (an admitted key's comes in milliseconds). */
  gm_test_send(c, 1, NULL, "gm", "ping", NULL, &ping.base);
  ck_assert_ptr_null(gm_test_conn_recv(c, 1000));
  gm_test_conn_destroy(&c);
  /* Another id with the same key and role works. */
  expect(register_id(admin, "ops", pub, "admin", "reg-o"), GM__STATUS__OK,
         NULL);
}
END_TEST

int main(void) {
  Suite *s = suite_create("security");
  TCase *tc = tcase_create("curve");
  tcase_add_checked_fixture(tc, curve_setup, teardown);
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, admin_keys_admit_whole_keys_only);
  tcase_add_test(tc, client_metadata_claims_no_role_and_no_identity);
  tcase_add_test(tc, the_bootstrap_admin_id_cannot_be_registered);
  tcase_add_test(tc, a_readable_server_key_file_is_named);
  tcase_add_test(tc, an_admin_id_registered_before_the_refusal_is_refused);
  tcase_add_test(tc, a_request_under_a_chosen_routing_id_is_refused);
  suite_add_tcase(s, tc);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
