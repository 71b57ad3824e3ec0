/*
 * The private feed's rule (what of a subscription a participant may keep),
 * its default endpoint, and its lease, without a broker: the ROUTER on
 * inproc with a DEALER subscriber in the same process.
 */
#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
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
      gm__privfeed_new(ctx, "inproc://pf", NULL, 0, err, sizeof err);
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

/* Runs gm__privfeed_read (refusals) or gm__privfeed_expire (drops) with
   stderr sent to a file; what they logged. */
static const char *logged(gm__privfeed *pf, int expire, int64_t now_ms) {
  static char out[8192];
  char path[] = "/tmp/gm-test-privfeed-log-XXXXXX";
  int fd = mkstemp(path);
  ck_assert_int_ge(fd, 0);
  fflush(stderr);
  int saved = dup(2);
  dup2(fd, 2);
  if (expire)
    gm__privfeed_expire(pf, now_ms);
  else
    for (int i = 0; i < 100 && gm__privfeed_read(pf, 16, now_ms) == 0; i++)
      zmq_poll(NULL, 0, 10);
  fflush(stderr);
  dup2(saved, 2);
  close(saved);
  ssize_t n = pread(fd, out, sizeof out - 1, 0);
  out[n > 0 ? n : 0] = 0;
  close(fd);
  unlink(path);
  return out;
}

/*
 * A subscriber that stops reading holds `queue` events (plus its own
 * receive queue), misses the rest, and the drops are logged within 10 s
 * with no refusal to carry them; that line does not hold back the line of
 * a refusal that comes next (each kind is said at most once per 10 s).
 */
START_TEST(a_full_queue_drops_and_both_drops_and_refusals_are_logged) {
  void *ctx = zmq_ctx_new();
  char err[256];
  gm__privfeed *pf =
      gm__privfeed_new(ctx, "inproc://pfq", NULL, 100, err, sizeof err);
  ck_assert_msg(pf != NULL, "%s", err);
  void *d = zmq_socket(ctx, ZMQ_DEALER);
  int zero = 0, hwm = 100;
  zmq_setsockopt(d, ZMQ_LINGER, &zero, sizeof zero);
  zmq_setsockopt(d, ZMQ_RCVHWM, &hwm, sizeof hwm);
  ck_assert_int_eq(zmq_connect(d, "inproc://pfq"), 0);
  zmq_send(d, "\1@p:alice ", 10, 0);
  for (int i = 0; i < 100 && gm__privfeed_read(pf, 16, 1000) == 0; i++)
    zmq_poll(NULL, 0, 10);
  enum { SENT = 2000 };
  for (int i = 0; i < SENT; i++)
    gm__privfeed_deliver(pf, "@p:alice m.e", 12, "x", 1);
  int got = 0;
  while (next_topic(d)[0]) got++;
  /* inproc: the router's queue and the dealer's, 100 each. */
  ck_assert_msg(got >= 100 && got <= 300, "%d of %d events came", got, SENT);
  char want[128];
  snprintf(want, sizeof want, "private feed: %d events dropped", SENT - got);
  const char *log = logged(pf, 1, 11000);
  ck_assert_msg(strstr(log, want) != NULL, "want \"%s\" in: %s", want, log);
  ck_assert_msg(strstr(log, "raise feed_queue") != NULL, "%s", log);
  /* A refusal a second later is still said. */
  char big[1 + 300];
  big[0] = 1;
  memset(big + 1, 'a', 300);
  zmq_send(d, big, sizeof big, 0);
  log = logged(pf, 0, 12000);
  ck_assert_msg(strstr(log, "refused private subscription") != NULL,
                "a refusal after a drop line was not logged: \"%s\"", log);
  /* Nothing dropped since: no drop line. */
  log = logged(pf, 1, 30000);
  ck_assert_msg(strstr(log, "dropped since") == NULL, "%s", log);
  zmq_close(d);
  gm__privfeed_destroy(&pf);
  zmq_ctx_term(ctx);
}
END_TEST

/* Starts with: the rule a kept prefix applies to a topic. */
static int starts(const char *topic, const char *prefix) {
  return strncmp(topic, prefix, strlen(prefix)) == 0;
}

/* Whether kept prefix p delivers topic: a public topic (not starting with
   '@') to public prefixes only, "*" every public topic; "" and "@" are
   every private topic, never a public one. */
static int hits(const char *topic, const char *p) {
  int pt = topic[0] != '@', pp = p[0] && p[0] != '@';
  if (pt != pp) return 0;
  return (pp && !strcmp(p, "*")) || starts(topic, p);
}

/* The rule with public prefixes: kept as asked, whoever asks. */
static size_t rule(const char *who, const char *roles, const char *req,
                   char **out) {
  if (req[0] && req[0] != '@') {
    out[0] = strdup(req);
    return 1;
  }
  return gm__privfeed_allowed(who, roles, req, strlen(req), out, 64);
}

/* The topics d gets, joined by '|' in arrival order: `want` of them, each
   within want_ms, then any more, each within more_ms (0: those that
   already came). */
static const char *read_topics(void *d, int want, int want_ms, int more_ms) {
  static char out[4096];
  out[0] = 0;
  for (int got = 0;; got++) {
    int ms = got < want ? want_ms : more_ms;
    zmq_setsockopt(d, ZMQ_RCVTIMEO, &ms, sizeof ms);
    char t[256];
    int n = zmq_recv(d, t, sizeof t - 1, ms ? 0 : ZMQ_DONTWAIT);
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

/* `want` topics (each within 1 s), then any more that already came. */
static const char *take(void *d, int want) {
  return read_topics(d, want, 1000, 0);
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
      gm__privfeed_new(ctx, "inproc://pfi", NULL, 0, err, sizeof err);
  ck_assert_msg(pf != NULL, "%s", err);
  static const char *topics[] = {
      "@p:p0 m.e", "@p:p1 m.e",  "@p:p10 m.e", "@p:p1 n.e", "@r:r0 m.e",
      "@r:r1 m.f", "@r:r10 m.e", "@p:p59 m.e", "@r:r2 x.y", "m.e",
      "m.f",       "mx.e",       "n.e"};
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
    switch (i % 10) {
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
      case 5: /* two prefixes of one audience: each event once */
        snprintf(asked[i][nasked[i]++], 32, "@p:p1 ");
        snprintf(asked[i][nasked[i]++], 32, "@p:p1 m.");
        break;
      case 6: /* public: one market, and one of its events too */
        snprintf(asked[i][nasked[i]++], 32, "m.");
        snprintf(asked[i][nasked[i]++], 32, "m.e");
        break;
      case 7: /* public and wide ("m" is "m." and "mx."), private */
        snprintf(asked[i][nasked[i]++], 32, "m");
        snprintf(asked[i][nasked[i]++], 32, "@p:p%d ", i);
        snprintf(asked[i][nasked[i]++], 32, "@");
        break;
      case 8: /* every public topic */
        snprintf(asked[i][nasked[i]++], 32, "*");
        snprintf(asked[i][nasked[i]++], 32, "n.e");
        break;
      default:
        snprintf(asked[i][nasked[i]++], 32, "@p:p1 m.");
        snprintf(asked[i][nasked[i]++], 32, "mx.");
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
          match |= hits(topics[t], asked[i][k]);
        if (!match) continue;
        if (want[0]) strcat(want, "|");
        strcat(want, topics[t]);
      }
      int nwant = want[0] ? 1 : 0;
      for (const char *w = want; *w; w++) nwant += *w == '|';
      char got[4096];
      snprintf(got, sizeof got, "%s", take(d[i], nwant));
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

/* ---- CURVE: re-checks against a registry the test controls ---- */

enum { NP = 5, NC = 30 };
static char cpub[NP][41], csec[NP][41]; /* participant k's key pair */
static const char *reg_owner[NP];       /* who owns key k now (NULL: none) */
static char reg_roles[NP][32];          /* participant k's roles now */
static volatile int zap_stop;
static _Atomic int zap_admitted; /* handshakes the handler admitted */

/* A ZAP handler admitting participant k's key as "p<k>" with its roles. */
static void *zap_run(void *ctx) {
  void *rep = zmq_socket(ctx, ZMQ_REP);
  int zero = 0, ms = 50;
  zmq_setsockopt(rep, ZMQ_LINGER, &zero, sizeof zero);
  zmq_setsockopt(rep, ZMQ_RCVTIMEO, &ms, sizeof ms);
  ck_assert_int_eq(zmq_bind(rep, "inproc://zeromq.zap.01"), 0);
  while (!zap_stop) {
    char f[8][64];
    int len[8], n = 0, more = 1;
    if (zmq_recv(rep, f[0], sizeof f[0], 0) < 0) continue;
    len[n++] = 0;
    while (more) {
      size_t ml = sizeof more;
      zmq_getsockopt(rep, ZMQ_RCVMORE, &more, &ml);
      if (!more) break;
      int k = zmq_recv(rep, f[n < 7 ? n : 7], 64, 0);
      len[n < 7 ? n : 7] = k;
      if (n < 7) n++;
    }
    /* [version, request id, domain, address, identity, mechanism, key] */
    char z85[41] = "";
    if (n == 7 && len[6] == 32) zmq_z85_encode(z85, (uint8_t *)f[6], 32);
    int who = -1;
    for (int k = 0; k < NP; k++)
      if (!strcmp(z85, cpub[k])) who = k;
    char user[16] = "";
    uint8_t meta[256];
    size_t m = 0;
    if (who >= 0) {
      snprintf(user, sizeof user, "p%d", who);
      const char *names[2] = {"X-Roles", "X-Key"};
      const char *vals[2] = {reg_roles[who], cpub[who]};
      for (int i = 0; i < 2; i++) {
        size_t nl = strlen(names[i]), vl = strlen(vals[i]);
        meta[m++] = (uint8_t)nl;
        memcpy(meta + m, names[i], nl);
        m += nl;
        meta[m++] = 0, meta[m++] = 0, meta[m++] = 0, meta[m++] = (uint8_t)vl;
        memcpy(meta + m, vals[i], vl);
        m += vl;
      }
    }
    if (who >= 0) zap_admitted++;
    zmq_send(rep, "1.0", 3, ZMQ_SNDMORE);
    zmq_send(rep, f[1], (size_t)(len[1] > 0 ? len[1] : 0), ZMQ_SNDMORE);
    zmq_send(rep, who >= 0 ? "200" : "400", 3, ZMQ_SNDMORE);
    zmq_send(rep, "", 0, ZMQ_SNDMORE);
    zmq_send(rep, user, strlen(user), ZMQ_SNDMORE);
    zmq_send(rep, meta, m, 0);
  }
  zmq_close(rep);
  return NULL;
}

static int lookups;
static size_t lookup_keys; /* keys asked, over all look-ups */
static int fake_lookup(void *ctx, const char *const *keys, size_t n,
                       char **owners, char **roles) {
  (void)ctx;
  lookups++;
  lookup_keys += n;
  for (size_t i = 0; i < n; i++) {
    owners[i] = roles[i] = NULL;
    for (int k = 0; k < NP; k++)
      if (!strcmp(keys[i], cpub[k]) && reg_owner[k]) {
        owners[i] = (char *)reg_owner[k];
        roles[i] = reg_roles[k];
      }
  }
  return 0;
}

/* Whether connection c of participant `who` with requests req[0..n) should
   get `topic` under `roles` (the rule, applied as the feed must). */
static int model_wants(const char *who, const char *roles, char req[][32],
                       const int *live, int n, const char *topic) {
  for (int k = 0; k < n; k++) {
    if (!live[k]) continue;
    char *got[64];
    size_t m = rule(who, roles, req[k], got);
    int hit = 0;
    for (size_t j = 0; j < m; j++) {
      hit |= hits(topic, got[j]);
      free(got[j]);
    }
    if (hit) return 1;
  }
  return 0;
}

/* Reads d's private events until `want` came (1 s at most for each), then
   what else is there already: their topics joined by '|' (refusals are
   skipped). */
static const char *drain_events(void *d, int want) {
  static char out[4096];
  out[0] = 0;
  for (int got = 0;;) {
    char t[256];
    int n = zmq_recv(d, t, sizeof t - 1, ZMQ_DONTWAIT), k = 0;
    while (n < 0 && got < want && k++ < 20) {
      zmq_poll(NULL, 0, 50);
      n = zmq_recv(d, t, sizeof t - 1, ZMQ_DONTWAIT);
    }
    if (n < 0) n = zmq_recv(d, t, sizeof t - 1, ZMQ_DONTWAIT);
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
    if (!strcmp(t, "!")) continue; /* a refusal */
    got++;
    if (out[0]) strcat(out, "|");
    strcat(out, t);
  }
  return out;
}

/*
 * Keys revoked and restored, roles given and taken, between re-checks:
 * after each re-check every connection gets exactly what the rule gives its
 * live subscriptions under the registry's word (nothing once its key is
 * revoked), each event once, and the index stays consistent (ASan: no use
 * after free, nothing leaked at destroy).
 */
START_TEST(rechecks_keep_delivery_and_the_index_in_step) {
  void *ctx = zmq_ctx_new();
  char spub[41], ssec[41], ep[128], err[256];
  zmq_curve_keypair(spub, ssec);
  for (int k = 0; k < NP; k++) {
    zmq_curve_keypair(cpub[k], csec[k]);
    static char ids[NP][8];
    snprintf(ids[k], sizeof ids[k], "p%d", k);
    reg_owner[k] = ids[k];
    snprintf(reg_roles[k], sizeof reg_roles[k], "r%d", k % 3);
  }
  pthread_t zt;
  zap_stop = 0;
  ck_assert_int_eq(pthread_create(&zt, NULL, zap_run, ctx), 0);
  usleep(50000);
  snprintf(ep, sizeof ep, "ipc:///tmp/gm-test-privfeed-%d", (int)getpid());
  gm__privfeed *pf = gm__privfeed_new(ctx, ep, ssec, 0, err, sizeof err);
  ck_assert_msg(pf != NULL, "%s", err);
  gm__privfeed_set_lookup(pf, fake_lookup, NULL);
  static const char *asks[] = {
      "@",        "",       "@p:",    "@r:",      "@r:r0 ",
      "@r:r1 m.", "@r:r2 ", "@p:p0 ", "@p:p1 m.", "@p:p2 ",
      "@p:p3 n.", "@p:p4 ", "m.",     "*",        "n"};
  enum { NA = sizeof asks / sizeof *asks };
  static const char *topics[] = {"@p:p0 m.e", "@p:p1 m.e", "@p:p2 n.e",
                                 "@p:p3 n.f", "@p:p4 m.e", "@r:r0 m.e",
                                 "@r:r1 m.f", "@r:r2 x.y", "@r:r3 m.e",
                                 "m.e",       "n.f"};
  enum { T = sizeof topics / sizeof *topics };
  void *d[NC];
  char req[NC][3][32];
  int live[NC][3], nreq[NC], alive[NC];
  unsigned seed = 7;
  int sent = 0;
  for (int i = 0; i < NC; i++) {
    int who = i % NP;
    d[i] = zmq_socket(ctx, ZMQ_DEALER);
    int zero = 0;
    zmq_setsockopt(d[i], ZMQ_LINGER, &zero, sizeof zero);
    zmq_setsockopt(d[i], ZMQ_CURVE_SERVERKEY, spub, 40);
    zmq_setsockopt(d[i], ZMQ_CURVE_PUBLICKEY, cpub[who], 40);
    zmq_setsockopt(d[i], ZMQ_CURVE_SECRETKEY, csec[who], 40);
    ck_assert_int_eq(zmq_connect(d[i], ep), 0);
    alive[i] = 1;
    nreq[i] = 1 + i % 3;
    for (int k = 0; k < nreq[i]; k++) {
      snprintf(req[i][k], 32, "%s", asks[rand_r(&seed) % NA]);
      for (int j = 0; j < k; j++) /* each request once per connection */
        if (!strcmp(req[i][j], req[i][k]))
          snprintf(req[i][k], 32, "@p:p%d ", who);
      char m[40];
      m[0] = 1;
      size_t l = strlen(req[i][k]);
      memcpy(m + 1, req[i][k], l);
      zmq_send(d[i], m, l + 1, 0);
      sent++;
    }
  }
  /* Every request taken (each may have been refused by the rule: it is
     live in the model only when the rule kept something of it). */
  for (int got = 0, tries = 0; got < sent && tries < 1000; tries++) {
    int n = gm__privfeed_read(pf, 64, 1000);
    got += n;
    if (!n) zmq_poll(NULL, 0, 10);
  }
  for (int i = 0; i < NC; i++) {
    char who[8];
    snprintf(who, sizeof who, "p%d", i % NP);
    for (int k = 0; k < nreq[i]; k++) {
      char *got[64];
      size_t m = rule(who, reg_roles[i % NP], req[i][k], got);
      live[i][k] = m > 0;
      for (size_t j = 0; j < m; j++) free(got[j]);
    }
  }
  static const char *role_sets[] = {"", "r0", "r1,r2", "r3", "admin", "r0,r3"};
  for (int round = 0; round < 12; round++) {
    /* Deliver and compare. */
    for (int t = 0; t < T; t++)
      gm__privfeed_deliver(pf, topics[t], strlen(topics[t]), "x", 1);
    for (int i = 0; i < NC; i++) {
      char who[8], want[4096] = "";
      snprintf(who, sizeof who, "p%d", i % NP);
      for (int t = 0; alive[i] && t < T; t++) {
        if (!model_wants(who, reg_roles[i % NP], req[i], live[i], nreq[i],
                         topics[t]))
          continue;
        if (want[0]) strcat(want, "|");
        strcat(want, topics[t]);
      }
      int nwant = want[0] ? 1 : 0;
      for (const char *w = want; *w; w++) nwant += *w == '|';
      char got[4096];
      snprintf(got, sizeof got, "%s", drain_events(d[i], nwant));
      ck_assert_msg(!strcmp(got, want),
                    "round %d connection %d (p%d, roles \"%s\"): got \"%s\", "
                    "want \"%s\"",
                    round, i, i % NP, reg_roles[i % NP], got, want);
    }
    /* Change the registry: one participant's roles, and now and then a
       key revoked (its connections are dropped for good). */
    int k = rand_r(&seed) % NP;
    snprintf(reg_roles[k], sizeof reg_roles[k], "%s",
             role_sets[rand_r(&seed) % 6]);
    if (round % 4 == 3) reg_owner[rand_r(&seed) % NP] = NULL;
    int before = lookups;
    gm__privfeed_recheck(pf, 2000 + round);
    ck_assert_int_gt(lookups, before);
    /* The model: a revoked key's connections are gone; a request whose
       rule keeps nothing now is dropped for good. */
    for (int i = 0; i < NC; i++) {
      int who = i % NP;
      char id[8];
      snprintf(id, sizeof id, "p%d", who);
      if (!reg_owner[who]) {
        alive[i] = 0;
        continue;
      }
      for (int q = 0; q < nreq[i]; q++) {
        if (!live[i][q]) continue;
        char *got[64];
        size_t m = rule(id, reg_roles[who], req[i][q], got);
        live[i][q] = m > 0;
        for (size_t j = 0; j < m; j++) free(got[j]);
      }
      int any = 0;
      for (int q = 0; q < nreq[i]; q++) any |= live[i][q];
      if (!any) alive[i] = 0; /* forgotten with its last subscription */
    }
  }
  for (int i = 0; i < NC; i++) zmq_close(d[i]);
  gm__privfeed_destroy(&pf);
  zap_stop = 1;
  pthread_join(zt, NULL);
  zmq_ctx_term(ctx);
}
END_TEST

/*
 * After a restart every client reconnects at once: the new connections
 * whose first subscriptions are read in one burst are looked up in one
 * pipelined look-up, not one each (the publisher thread's events waited a
 * Redis round trip per new connection), and the answer is as fresh: a key
 * revoked before its connection's first subscription is refused at once.
 */
START_TEST(new_connections_read_together_are_looked_up_together) {
  enum { N = 30 };
  void *ctx = zmq_ctx_new();
  zmq_ctx_set(ctx, ZMQ_MAX_SOCKETS, N + 16);
  char spub[41], ssec[41], ep[128], err[256];
  zmq_curve_keypair(spub, ssec);
  for (int k = 0; k < NP; k++) {
    zmq_curve_keypair(cpub[k], csec[k]);
    static char ids[NP][8];
    snprintf(ids[k], sizeof ids[k], "p%d", k);
    reg_owner[k] = k == NP - 1 ? NULL : ids[k]; /* the last one's revoked */
    snprintf(reg_roles[k], sizeof reg_roles[k], "r%d", k % 3);
  }
  pthread_t zt;
  zap_stop = 0;
  zap_admitted = 0;
  ck_assert_int_eq(pthread_create(&zt, NULL, zap_run, ctx), 0);
  usleep(50000);
  snprintf(ep, sizeof ep, "ipc:///tmp/gm-test-privfeed-burst-%d",
           (int)getpid());
  gm__privfeed *pf = gm__privfeed_new(ctx, ep, ssec, 0, err, sizeof err);
  ck_assert_msg(pf != NULL, "%s", err);
  gm__privfeed_set_lookup(pf, fake_lookup, NULL);
  void *d[N];
  for (int i = 0; i < N; i++) {
    int who = i % NP;
    d[i] = zmq_socket(ctx, ZMQ_DEALER);
    int zero = 0;
    zmq_setsockopt(d[i], ZMQ_LINGER, &zero, sizeof zero);
    zmq_setsockopt(d[i], ZMQ_CURVE_SERVERKEY, spub, 40);
    zmq_setsockopt(d[i], ZMQ_CURVE_PUBLICKEY, cpub[who], 40);
    zmq_setsockopt(d[i], ZMQ_CURVE_SECRETKEY, csec[who], 40);
    ck_assert_int_eq(zmq_connect(d[i], ep), 0);
    char m[16];
    int l = snprintf(m, sizeof m, "%c@p:p%d ", 1, who);
    zmq_send(d[i], m, (size_t)l, 0);
  }
  /* Every handshake admitted and a subscription waiting, as after a
     restart, before the broker reads. */
  for (int i = 0; i < 500 && zap_admitted < N; i++) zmq_poll(NULL, 0, 10);
  ck_assert_int_eq(zap_admitted, N);
  zmq_pollitem_t it = {gm__privfeed_socket(pf), 0, ZMQ_POLLIN, 0};
  ck_assert_int_eq(zmq_poll(&it, 1, 5000), 1);
  lookups = 0;
  lookup_keys = 0;
  int reads = 0;
  for (int got = 0, tries = 0; got < N && tries < 500; tries++) {
    int r = gm__privfeed_read(pf, 256, 1000);
    got += r;
    reads += r > 0;
    if (!r) zmq_poll(NULL, 0, 10);
  }
  ck_assert_msg(lookups <= reads && lookups < N,
                "%d look-ups for %d new connections read in %d bursts", lookups,
                N, reads);
  /* One key per participant and burst at most: asked once, shared. */
  ck_assert_uint_le(lookup_keys, (size_t)(NP * reads));
  gm__privfeed_deliver(pf, "@p:p0 m.e", 9, "x", 1);
  gm__privfeed_deliver(pf, "@p:p4 m.e", 9, "x", 1);
  /* The revoked key's connections are refused, p0's served; then nobody
     else got anything (each was sent what it would get before those came). */
  for (int pass = 0; pass < 2; pass++)
    for (int i = 0; i < N; i++) {
      int who = i % NP, wants = who == 0 || who == NP - 1;
      if (wants != !pass) continue;
      char t[64];
      int n = zmq_recv(d[i], t, sizeof t - 1, ZMQ_DONTWAIT);
      for (int k = 0; wants && k < 100 && n < 0; k++) {
        zmq_poll(NULL, 0, 10);
        n = zmq_recv(d[i], t, sizeof t - 1, ZMQ_DONTWAIT);
      }
      if (!wants) {
        ck_assert_int_lt(n, 0);
        continue;
      }
      ck_assert_int_ge(n, 0);
      t[n] = 0;
      ck_assert_str_eq(t, who == NP - 1 ? "!" : "@p:p0 m.e");
      /* The message's other frames read too: libzmq does not free a
         message left part-read in a socket it closes (LeakSanitizer). */
      int more = 1;
      size_t ml = sizeof more;
      while (zmq_getsockopt(d[i], ZMQ_RCVMORE, &more, &ml) == 0 && more) {
        char sink[512];
        zmq_recv(d[i], sink, sizeof sink, 0);
      }
    }
  for (int i = 0; i < N; i++) zmq_close(d[i]);
  gm__privfeed_destroy(&pf);
  zap_stop = 1;
  pthread_join(zt, NULL);
  zmq_ctx_term(ctx);
  unlink(ep + strlen("ipc://"));
}
END_TEST

static void sub(void *d, int on, const char *prefix) {
  char m[64];
  m[0] = (char)on;
  size_t l = strlen(prefix);
  memcpy(m + 1, prefix, l);
  zmq_send(d, m, l + 1, 0);
}

/* Reads until n more subscription messages were handled (within 5 s). */
static void read_n(gm__privfeed *pf, int n) {
  for (int got = 0, tries = 0; got < n && tries < 500; tries++) {
    int r = gm__privfeed_read(pf, 256, 1000);
    got += r;
    if (!r) zmq_poll(NULL, 0, 10);
  }
}

/*
 * Among many connections sharing an audience, one that unsubscribes, one
 * that disconnects and one that drops its wide prefix change only what
 * they get; a connection both wide and in an audience gets each event
 * once.
 */
START_TEST(one_among_many_leaves_and_the_others_keep_their_events) {
  enum { N = 300, UNSUB = 5, GONE = 6, WIDE = 7 };
  void *ctx = zmq_ctx_new();
  zmq_ctx_set(ctx, ZMQ_MAX_SOCKETS, N + 16);
  char err[256];
  gm__privfeed *pf =
      gm__privfeed_new(ctx, "inproc://pfm", NULL, 0, err, sizeof err);
  ck_assert_msg(pf != NULL, "%s", err);
  void *d[N];
  int msgs = 0;
  for (int i = 0; i < N; i++) {
    d[i] = zmq_socket(ctx, ZMQ_DEALER);
    int zero = 0;
    zmq_setsockopt(d[i], ZMQ_LINGER, &zero, sizeof zero);
    ck_assert_int_eq(zmq_connect(d[i], "inproc://pfm"), 0);
    char own[32];
    snprintf(own, sizeof own, "@p:c%d ", i);
    sub(d[i], 1, "@r:all ");
    sub(d[i], 1, own);
    msgs += 2;
    if (i == WIDE) sub(d[i], 1, ""), msgs++;
  }
  read_n(pf, msgs);
  ck_assert_uint_eq(gm__privfeed_connections(pf), N);
  ck_assert_uint_eq(gm__privfeed_subscribes(pf), (uint64_t)msgs);
  static const char *topics[] = {"@r:all x", "@p:c5 y", "@p:c6 y", "@p:c7 y",
                                 "@p:c9 y"};
  enum { T = sizeof topics / sizeof *topics };
  for (int t = 0; t < T; t++)
    gm__privfeed_deliver(pf, topics[t], strlen(topics[t]), "x", 1);
  for (int i = 0; i < N; i++) {
    char want[256];
    if (i == WIDE)
      snprintf(want, sizeof want, "@r:all x|@p:c5 y|@p:c6 y|@p:c7 y|@p:c9 y");
    else if (i == 5 || i == 6 || i == 9)
      snprintf(want, sizeof want, "@r:all x|@p:c%d y", i);
    else
      snprintf(want, sizeof want, "@r:all x");
    int nwant = i == WIDE ? 5 : i == 5 || i == 6 || i == 9 ? 2 : 1;
    ck_assert_str_eq(take(d[i], nwant), want);
  }
  sub(d[UNSUB], 0, "@r:all ");
  sub(d[WIDE], 0, "");
  read_n(pf, 2);
  zmq_close(d[GONE]);
  d[GONE] = NULL;
  /* The gone one is found when delivery to it fails. */
  for (int i = 0; i < 200 && gm__privfeed_connections(pf) == N; i++) {
    gm__privfeed_deliver(pf, "@p:c6 y", 7, "x", 1);
    if (gm__privfeed_connections(pf) == N) zmq_poll(NULL, 0, 10);
  }
  ck_assert_uint_eq(gm__privfeed_connections(pf), N - 1);
  for (int t = 0; t < T; t++)
    gm__privfeed_deliver(pf, topics[t], strlen(topics[t]), "x", 1);
  for (int i = 0; i < N; i++) {
    if (i == GONE) continue;
    const char *want = i == UNSUB  ? "@p:c5 y"
                       : i == WIDE ? "@r:all x|@p:c7 y"
                       : i == 9    ? "@r:all x|@p:c9 y"
                                   : "@r:all x";
    int nwant = i == UNSUB ? 1 : i == WIDE || i == 9 ? 2 : 1;
    char got[256];
    snprintf(got, sizeof got, "%s", take(d[i], nwant));
    ck_assert_msg(strcmp(got, want) == 0,
                  "connection %d: got \"%s\", want \"%s\"", i, got, want);
  }
  for (int i = 0; i < N; i++)
    if (d[i]) zmq_close(d[i]);
  gm__privfeed_destroy(&pf);
  zmq_ctx_term(ctx);
}
END_TEST

/*
 * Public prefixes count in the same 256 as private ones: at 200 private and
 * 56 public the next of either kind is refused; one public dropped makes
 * room for one more, which gets its events.
 */
START_TEST(public_prefixes_count_in_the_cap) {
  void *ctx = zmq_ctx_new();
  char err[256];
  gm__privfeed *pf =
      gm__privfeed_new(ctx, "inproc://pfc", NULL, 0, err, sizeof err);
  ck_assert_msg(pf != NULL, "%s", err);
  void *d = zmq_socket(ctx, ZMQ_DEALER);
  int zero = 0;
  zmq_setsockopt(d, ZMQ_LINGER, &zero, sizeof zero);
  ck_assert_int_eq(zmq_connect(d, "inproc://pfc"), 0);
  char p[32];
  for (int k = 0; k < GM_PRIVFEED_MAX_SUBS; k++) {
    if (k < 200)
      snprintf(p, sizeof p, "@p:x%d ", k);
    else
      snprintf(p, sizeof p, "m%d.", k);
    sub(d, 1, p);
  }
  read_n(pf, GM_PRIVFEED_MAX_SUBS);
  ck_assert_uint_eq(gm__privfeed_subscribes(pf), GM_PRIVFEED_MAX_SUBS);
  sub(d, 1, "q.");
  read_n(pf, 1);
  ck_assert_str_eq(take(d, 1), "!");
  sub(d, 1, "@p:y ");
  read_n(pf, 1);
  ck_assert_str_eq(take(d, 1), "!");
  sub(d, 0, "m200.");
  sub(d, 1, "q.");
  read_n(pf, 2);
  static const char *topics[] = {"m200.e", "m201.e", "q.e", "@p:x7 e", "r.e"};
  for (size_t t = 0; t < sizeof topics / sizeof *topics; t++)
    gm__privfeed_deliver(pf, topics[t], strlen(topics[t]), "x", 1);
  ck_assert_str_eq(take(d, 3), "m201.e|q.e|@p:x7 e");
  zmq_close(d);
  gm__privfeed_destroy(&pf);
  zmq_ctx_term(ctx);
}
END_TEST

/*
 * One connection at its 256 prefixes: the next is refused; dropping most of
 * them and adding some back keeps exactly what is held (a resent prefix is
 * not counted again, a dropped one is no longer found).
 */
START_TEST(a_connection_drops_and_adds_back_many_of_its_prefixes) {
  void *ctx = zmq_ctx_new();
  char err[256];
  gm__privfeed *pf =
      gm__privfeed_new(ctx, "inproc://pfd", NULL, 0, err, sizeof err);
  ck_assert_msg(pf != NULL, "%s", err);
  void *d = zmq_socket(ctx, ZMQ_DEALER);
  int zero = 0;
  zmq_setsockopt(d, ZMQ_LINGER, &zero, sizeof zero);
  ck_assert_int_eq(zmq_connect(d, "inproc://pfd"), 0);
  char p[32];
  for (int k = 0; k < GM_PRIVFEED_MAX_SUBS; k++) {
    snprintf(p, sizeof p, "@p:x%d ", k);
    sub(d, 1, p);
  }
  read_n(pf, GM_PRIVFEED_MAX_SUBS);
  ck_assert_uint_eq(gm__privfeed_subscribes(pf), GM_PRIVFEED_MAX_SUBS);
  sub(d, 1, "@p:y ");
  read_n(pf, 1);
  ck_assert_str_eq(take(d, 1), "!"); /* the refusal's first frame */
  for (int k = 0; k < 200; k++) {
    snprintf(p, sizeof p, "@p:x%d ", k);
    sub(d, 0, p);
  }
  for (int k = 200; k < GM_PRIVFEED_MAX_SUBS; k++) {
    snprintf(p, sizeof p, "@p:x%d ", k);
    sub(d, 1, p); /* resent: nothing new */
  }
  for (int k = 0; k < 10; k++) {
    snprintf(p, sizeof p, "@p:x%d ", k);
    sub(d, 1, p);
  }
  read_n(pf, 200 + (GM_PRIVFEED_MAX_SUBS - 200) + 10);
  ck_assert_uint_eq(gm__privfeed_subscribes(pf), GM_PRIVFEED_MAX_SUBS + 10);
  static const char *topics[] = {"@p:x5 e",   "@p:x10 e",  "@p:x100 e",
                                 "@p:x199 e", "@p:x200 e", "@p:x255 e"};
  for (size_t t = 0; t < sizeof topics / sizeof *topics; t++)
    gm__privfeed_deliver(pf, topics[t], strlen(topics[t]), "x", 1);
  ck_assert_str_eq(take(d, 3), "@p:x5 e|@p:x200 e|@p:x255 e");
  /* 66 held: room for 190 more, then full again. */
  for (int k = 0; k < 190; k++) {
    snprintf(p, sizeof p, "@p:z%d ", k);
    sub(d, 1, p);
  }
  sub(d, 1, "@p:y ");
  read_n(pf, 191);
  ck_assert_uint_eq(gm__privfeed_subscribes(pf),
                    GM_PRIVFEED_MAX_SUBS + 10 + 190);
  ck_assert_str_eq(take(d, 1), "!");
  zmq_close(d);
  gm__privfeed_destroy(&pf);
  zmq_ctx_term(ctx);
}
END_TEST

/* ---- a model: random subscribes, resends, unsubscribes, disconnects ---- */

enum { RN = 12, RCAP = GM_PRIVFEED_MAX_SUBS };

/* What the feed should hold for connection i: its prefixes (a set), and
   when its lease runs out (0: nothing held). */
static char *rheld[RN][RCAP];
static int rnheld[RN];
static int64_t rlease[RN];

static int rfind(int i, const char *p) {
  for (int k = 0; k < rnheld[i]; k++)
    if (!strcmp(rheld[i][k], p)) return k;
  return -1;
}

static void rclear(int i) {
  for (int k = 0; k < rnheld[i]; k++) free(rheld[i][k]);
  rnheld[i] = 0;
  rlease[i] = 0;
}

/* Sends [on + p] from d and says what the feed does with it: 1 when it is
   refused for the cap. */
static int rsend(void *d, int i, int on, const char *p, int64_t now) {
  sub(d, on, p);
  int k = rfind(i, p);
  if (rnheld[i]) rlease[i] = now + GM_PRIVFEED_LEASE_MS;
  if (!on) {
    if (k >= 0) {
      free(rheld[i][k]);
      rheld[i][k] = rheld[i][--rnheld[i]];
      if (!rnheld[i]) rlease[i] = 0; /* forgotten with its last */
    }
    return 0;
  }
  if (k >= 0) return 0;
  if (rnheld[i] == RCAP) return 1;
  rheld[i][rnheld[i]++] = strdup(p);
  rlease[i] = now + GM_PRIVFEED_LEASE_MS;
  return 0;
}

static void rprefix(char *out, size_t cap, unsigned r) {
  static const char *wide[] = {
      "", "@", "@p:", "@p:a", "@r:", "@p:a1", "nos", "*", "m.", "m.e"};
  unsigned a = (r >> 4) % 4;
  switch (r % 8) {
    case 0:
      snprintf(out, cap, "%s", wide[(r >> 8) % 10]);
      break;
    case 1:
      snprintf(out, cap, "@p:a%u ", a);
      break;
    case 2:
      snprintf(out, cap, "@p:a%u x", a);
      break;
    case 3:
      snprintf(out, cap, "@p:a%u x.y", a);
      break;
    case 4:
      snprintf(out, cap, "@r:r%u ", a);
      break;
    case 5:
      snprintf(out, cap, "@r:r%u x", a);
      break;
    default:
      snprintf(out, cap, "@p:a%u n%u", a, (r >> 8) % 300);
      break;
  }
}

static void rtopic(char *out, size_t cap, unsigned r) {
  unsigned a = (r >> 4) % 5; /* a4 and r4: followed by no audience */
  switch (r % 7) {
    case 0:
      snprintf(out, cap, "@p:a%u x.y.z", a);
      break;
    case 1:
      snprintf(out, cap, "@p:a%u y", a);
      break;
    case 2:
    case 3:
      snprintf(out, cap, "@p:a%u n%u", a, (r >> 8) % 300);
      break;
    case 4:
      snprintf(out, cap, "@r:r%u x.q", a);
      break;
    case 5:
      snprintf(out, cap, "@r:r%u y", a);
      break;
    default:
      snprintf(out, cap, "%s",
               (r >> 8) % 4 == 0   ? "@p:a1"
               : (r >> 8) % 4 == 1 ? "nospace"
               : (r >> 8) % 4 == 2 ? "m.e"
                                   : "m.f");
      break;
  }
}

/* Reads d's messages up to the sentinel of step `step`: the refusals and
   the other topics, joined with '|'. */
static const char *rread(void *d, int step) {
  static char out[8192];
  out[0] = 0;
  int ms = 3000;
  zmq_setsockopt(d, ZMQ_RCVTIMEO, &ms, sizeof ms);
  char sent[32];
  snprintf(sent, sizeof sent, "s%d", step);
  for (;;) {
    char t[300], b[600];
    int n = zmq_recv(d, t, sizeof t - 1, 0);
    if (n < 0) {
      strcat(out, "|<timeout>");
      return out;
    }
    t[n < (int)sizeof t - 1 ? n : (int)sizeof t - 1] = 0;
    int more = 0, bn = 0;
    size_t ml = sizeof more;
    b[0] = 0;
    for (;;) {
      zmq_getsockopt(d, ZMQ_RCVMORE, &more, &ml);
      if (!more) break;
      bn = zmq_recv(d, b, sizeof b - 1, 0);
      b[bn > 0 && bn < (int)sizeof b ? bn : 0] = 0;
    }
    if (!strcmp(t, "@p:zz .")) {
      if (!strcmp(b, sent)) return out;
      strcat(out, out[0] ? "|" : "");
      strcat(out, "sentinel ");
      strcat(out, b);
      continue;
    }
    if (strlen(out) + strlen(t) + 2 < sizeof out) {
      strcat(out, out[0] ? "|" : "");
      strcat(out, t);
    }
  }
}

/* Reads until n more subscription messages were handled at now (within
   5 s). */
static void rread_n(gm__privfeed *pf, int n, int64_t now) {
  for (int got = 0, tries = 0; got < n && tries < 500; tries++) {
    int r = gm__privfeed_read(pf, 256, now);
    got += r;
    zmq_pollitem_t it = {gm__privfeed_socket(pf), 0, ZMQ_POLLIN, 0};
    if (!r) zmq_poll(&it, 1, 10);
  }
}

/*
 * Random subscribes, resends, unsubscribes (one and many at a time, up to
 * and past the 256 cap), leases running out and disconnects with the
 * routing id taken again: after each step an event reaches exactly the
 * connections one of whose prefixes starts it, once, and a refusal comes
 * exactly when the cap is passed.  Each connection also keeps "@p:zz ",
 * whose event after each step ends what it is read for.
 */
START_TEST(random_steps_keep_delivery_exact) {
  unsigned seed = 12345;
  const char *env = getenv("GM_TEST_SEED");
  if (env) seed = (unsigned)strtoul(env, NULL, 10);
  srand(seed);
  int steps = getenv("GM_TEST_STEPS") ? atoi(getenv("GM_TEST_STEPS")) : 1500;
  char ep[128];
  snprintf(ep, sizeof ep, "ipc:///tmp/gm-pfrand-%d.ipc", (int)getpid());
  void *ctx = zmq_ctx_new();
  char err[256];
  gm__privfeed *pf = gm__privfeed_new(ctx, ep, NULL, 0, err, sizeof err);
  ck_assert_msg(pf != NULL, "%s", err);
  void *d[RN];
  for (int i = 0; i < RN; i++) {
    d[i] = zmq_socket(ctx, ZMQ_DEALER);
    int zero = 0;
    char rid[8];
    snprintf(rid, sizeof rid, "c%d", i);
    zmq_setsockopt(d[i], ZMQ_LINGER, &zero, sizeof zero);
    zmq_setsockopt(d[i], ZMQ_ROUTING_ID, rid, strlen(rid));
    ck_assert_int_eq(zmq_connect(d[i], ep), 0);
    rnheld[i] = 0;
    rlease[i] = 0;
  }
  int64_t now = 1000;
  for (int step = 0; step < steps; step++) {
    now += rand() % 1500;
    int i = rand() % RN, msgs = 0, refused[RN] = {0};
    char p[64];
    int op = rand() % 100;
    if (op < 35) { /* one new prefix (or one it holds) */
      rprefix(p, sizeof p, (unsigned)rand());
      refused[i] += rsend(d[i], i, 1, p, now), msgs++;
    } else if (op < 50 && rnheld[i]) { /* a resend */
      snprintf(p, sizeof p, "%s", rheld[i][rand() % rnheld[i]]);
      refused[i] += rsend(d[i], i, 1, p, now), msgs++;
    } else if (op < 70 && rnheld[i]) { /* drop one it holds */
      snprintf(p, sizeof p, "%s", rheld[i][rand() % rnheld[i]]);
      if (strcmp(p, "@p:zz ")) rsend(d[i], i, 0, p, now), msgs++;
    } else if (op < 75) { /* drop one it may not hold */
      rprefix(p, sizeof p, (unsigned)rand());
      if (strcmp(p, "@p:zz ")) rsend(d[i], i, 0, p, now), msgs++;
    } else if (op < 81) { /* many at once: up to and past the cap */
      int base = rand() % 300;
      for (int k = 0; k < 60; k++) {
        snprintf(p, sizeof p, "@p:a%d n%d", k % 4, (base + k) % 300);
        refused[i] += rsend(d[i], i, 1, p, now), msgs++;
      }
    } else if (op < 87) { /* drop many at once */
      int base = rand() % 300;
      for (int k = 0; k < 60; k++) {
        snprintf(p, sizeof p, "@p:a%d n%d", k % 4, (base + k) % 300);
        rsend(d[i], i, 0, p, now), msgs++;
      }
    } else if (op < 90) { /* gone, and its routing id taken again */
      size_t before = gm__privfeed_connections(pf);
      zmq_close(d[i]);
      for (int t = 0; t < 300 && gm__privfeed_connections(pf) == before; t++) {
        zmq_pollitem_t it = {gm__privfeed_monitor_socket(pf), 0, ZMQ_POLLIN, 0};
        zmq_poll(&it, 1, 10);
        gm__privfeed_read_monitor(pf);
      }
      ck_assert_uint_eq(gm__privfeed_connections(pf), before - 1);
      rclear(i);
      /* The ROUTER lets the routing id go once it has seen the pipe end. */
      for (int t = 0; t < 3; t++) {
        gm__privfeed_read(pf, 16, now);
        zmq_poll(NULL, 0, 10);
      }
      d[i] = zmq_socket(ctx, ZMQ_DEALER);
      int zero = 0;
      char rid[8];
      snprintf(rid, sizeof rid, "c%d", i);
      zmq_setsockopt(d[i], ZMQ_LINGER, &zero, sizeof zero);
      zmq_setsockopt(d[i], ZMQ_ROUTING_ID, rid, strlen(rid));
      ck_assert_int_eq(zmq_connect(d[i], ep), 0);
    }
    rread_n(pf, msgs, now);
    gm__privfeed_expire(pf, now);
    for (int k = 0; k < RN; k++)
      if (rlease[k] && rlease[k] < now) rclear(k);
    msgs = 0;
    for (int k = 0; k < RN; k++)
      if (rfind(k, "@p:zz ") < 0) rsend(d[k], k, 1, "@p:zz ", now), msgs++;
    rread_n(pf, msgs, now);
    size_t held = 0;
    for (int k = 0; k < RN; k++) held += rnheld[k] > 0;
    ck_assert_msg(gm__privfeed_connections(pf) == held,
                  "seed %u step %d: the feed holds %zu connections, want %zu",
                  seed, step, gm__privfeed_connections(pf), held);
    char topic[64], body[32];
    rtopic(topic, sizeof topic, (unsigned)rand());
    snprintf(body, sizeof body, "s%d", step);
    gm__privfeed_deliver(pf, topic, strlen(topic), "e", 1);
    gm__privfeed_deliver(pf, "@p:zz .", 7, body, strlen(body));
    for (int k = 0; k < RN; k++) {
      char want[4096] = "";
      for (int r = 0; r < refused[k]; r++) strcat(want, r ? "|!" : "!");
      for (int q = 0; q < rnheld[k]; q++)
        if (hits(topic, rheld[k][q])) {
          strcat(want, want[0] ? "|" : "");
          strcat(want, topic);
          break;
        }
      const char *got = rread(d[k], step);
      ck_assert_msg(!strcmp(got, want),
                    "seed %u step %d connection %d (%d prefixes), topic "
                    "\"%s\": got \"%s\", want \"%s\"",
                    seed, step, k, rnheld[k], topic, got, want);
    }
  }
  for (int i = 0; i < RN; i++) {
    zmq_close(d[i]);
    rclear(i);
  }
  gm__privfeed_destroy(&pf);
  zmq_ctx_term(ctx);
  unlink(ep + strlen("ipc://"));
}
END_TEST

/* ---- a new connection on a gone one's routing id and fd ---- */

/* The client side of the test below, in a process of its own (so that its
   sockets take no fd in the broker's process, and the broker's accept of
   the second connection takes the fd the first one freed): on each command
   byte from `cmd` it connects ('A', 'B': prefix "a." or "b.") under routing
   id "same", closes ('C'), or reads events until "b.x" or 3 s and writes
   their topics, '|'-joined, to `out` ('R'). */
static void same_rid_client(const char *ep, int cmd, int out) {
  void *ctx = zmq_ctx_new(), *d = NULL;
  char c;
  while (read(cmd, &c, 1) == 1) {
    if (c == 'A' || c == 'B') {
      d = zmq_socket(ctx, ZMQ_DEALER);
      int zero = 0;
      zmq_setsockopt(d, ZMQ_LINGER, &zero, sizeof zero);
      zmq_setsockopt(d, ZMQ_ROUTING_ID, "same", 4);
      zmq_connect(d, ep);
      zmq_send(d, c == 'A' ? "\1a." : "\1b.", 3, 0);
    } else if (c == 'C') {
      zmq_close(d);
      d = NULL;
    } else if (c == 'R') {
      char got[256] = "";
      int ms = 3000;
      zmq_setsockopt(d, ZMQ_RCVTIMEO, &ms, sizeof ms);
      for (;;) {
        char t[64];
        int n = zmq_recv(d, t, sizeof t - 1, 0);
        if (n < 0) break;
        t[n] = 0;
        int more = 0;
        size_t ml = sizeof more;
        char junk[64];
        for (;;) {
          zmq_getsockopt(d, ZMQ_RCVMORE, &more, &ml);
          if (!more) break;
          zmq_recv(d, junk, sizeof junk, 0);
        }
        if (got[0]) strcat(got, "|");
        strncat(got, t, 64);
        if (!strcmp(t, "b.x")) break;
      }
      if (write(out, got, strlen(got) + 1) < 0) break;
    }
    if (write(out, "", 1) < 0) break; /* done */
  }
  if (d) zmq_close(d);
  zmq_ctx_term(ctx);
}

/* Sends command c to the client and waits until it is done. */
static void client_do(int cmd, int out, char c) {
  ck_assert_int_eq(write(cmd, &c, 1), 1);
  char b = 1;
  ck_assert_int_eq(read(out, &b, 1), 1);
  ck_assert_int_eq(b, 0);
}

/*
 * A client closes and a new one connects under the same routing id before
 * the broker has read the first one's disconnect, and the broker's accept
 * gives it the same fd: it starts with nothing of the old connection's and
 * keeps what it subscribed once that disconnect is read (it inherited the
 * old prefixes, then lost everything until its resend).
 */
START_TEST(a_new_connection_on_a_gone_ones_id_and_fd_starts_afresh) {
  char ep[128], err[256];
  snprintf(ep, sizeof ep, "ipc:///tmp/gm-test-privfeed-same-%d", (int)getpid());
  int cmd[2], out[2];
  ck_assert_int_eq(pipe(cmd), 0);
  ck_assert_int_eq(pipe(out), 0);
  pid_t child = fork();
  ck_assert_int_ge(child, 0);
  if (child == 0) {
    close(cmd[1]);
    close(out[0]);
    same_rid_client(ep, cmd[0], out[1]);
    _exit(0);
  }
  close(cmd[0]);
  close(out[1]);
  void *ctx = zmq_ctx_new();
  gm__privfeed *pf = gm__privfeed_new(ctx, ep, NULL, 0, err, sizeof err);
  ck_assert_msg(pf != NULL, "%s", err);
  client_do(cmd[1], out[0], 'A');
  read_n(pf, 1);
  client_do(cmd[1], out[0], 'C');
  /* Its disconnect is there to read, not read: the race, held open. */
  zmq_pollitem_t mon = {gm__privfeed_monitor_socket(pf), 0, ZMQ_POLLIN, 0};
  ck_assert_int_eq(zmq_poll(&mon, 1, 5000), 1);
  /* The ROUTER keeps the routing id until it has finished the old pipe
     (a round trip through libzmq's I/O thread after the disconnect), and
     it ignores a new connection that comes under it before then: wait
     until a send to it is unroutable (no message reaches anyone). */
  void *router = gm__privfeed_socket(pf);
  int on = 1, off = 0, gone = 0;
  zmq_setsockopt(router, ZMQ_ROUTER_MANDATORY, &on, sizeof on);
  for (int t = 0; t < 500 && !gone; t++) {
    /* Reads nothing (the client sent nothing since) and leaves the
       monitor unread, but lets the ROUTER read the old pipe's end. */
    ck_assert_int_eq(gm__privfeed_read(pf, 16, 1000), 0);
    if (zmq_send(router, "same", 4, ZMQ_SNDMORE | ZMQ_DONTWAIT) == 4)
      zmq_send(router, "", 0, ZMQ_DONTWAIT); /* to the closing pipe */
    else if (zmq_errno() == EHOSTUNREACH)
      gone = 1;
    if (!gone) zmq_poll(NULL, 0, 10);
  }
  zmq_setsockopt(router, ZMQ_ROUTER_MANDATORY, &off, sizeof off);
  ck_assert_msg(gone, "the ROUTER still routes to the closed connection");
  client_do(cmd[1], out[0], 'B');
  read_n(pf, 1);
  gm__privfeed_read_monitor(pf); /* whatever is left of it, read late */
  gm__privfeed_deliver(pf, "a.x", 3, "x", 1);
  gm__privfeed_deliver(pf, "b.x", 3, "x", 1);
  ck_assert_int_eq(write(cmd[1], "R", 1), 1);
  char got[256];
  size_t n = 0;
  while (n < sizeof got && read(out[0], got + n, 1) == 1 && got[n]) n++;
  got[n < sizeof got ? n : sizeof got - 1] = 0;
  char done;
  ck_assert_int_eq(read(out[0], &done, 1), 1);
  ck_assert_msg(!strcmp(got, "b.x"),
                "the new connection got \"%s\", want \"b.x\" only", got);
  close(cmd[1]);
  int status;
  waitpid(child, &status, 0);
  close(out[0]);
  gm__privfeed_destroy(&pf);
  zmq_ctx_term(ctx);
  unlink(ep + strlen("ipc://"));
}
END_TEST

/* A CURVE DEALER of participant k (its key pair), under routing id rid
   (NULL: the one the broker's socket assigns), connected to ep. */
static void *curve_dealer(void *ctx, const char *ep, const char *spub, int k,
                          const char *rid) {
  void *d = zmq_socket(ctx, ZMQ_DEALER);
  int zero = 0;
  zmq_setsockopt(d, ZMQ_LINGER, &zero, sizeof zero);
  zmq_setsockopt(d, ZMQ_CURVE_SERVERKEY, spub, 40);
  zmq_setsockopt(d, ZMQ_CURVE_PUBLICKEY, cpub[k], 40);
  zmq_setsockopt(d, ZMQ_CURVE_SECRETKEY, csec[k], 40);
  if (rid) zmq_setsockopt(d, ZMQ_ROUTING_ID, rid, strlen(rid));
  ck_assert_int_eq(zmq_connect(d, ep), 0);
  return d;
}

/* The first frame of d's next message within ms ("" when none came); the
   message's other frames are read too. */
static const char *first_frame(void *d, int ms) {
  static char t[256];
  int n = -1;
  for (int k = 0; k <= ms / 10 && n < 0; k++) {
    n = zmq_recv(d, t, sizeof t - 1, ZMQ_DONTWAIT);
    if (n < 0) zmq_poll(NULL, 0, 10);
  }
  t[n < 0 ? 0 : n] = 0;
  int more = 1;
  size_t ml = sizeof more;
  while (n >= 0 && zmq_getsockopt(d, ZMQ_RCVMORE, &more, &ml) == 0 && more) {
    char sink[512];
    zmq_recv(d, sink, sizeof sink, 0);
  }
  return t;
}

/*
 * Participant p0's client, under a routing id it chose, subscribes and
 * closes before the broker reads the subscription (its disconnect is read
 * in the same burst); then p1 connects under the same routing id and asks
 * for nothing.  p1 must not be sent p0's private events.  Before, the
 * subscription made a record after the disconnect that would have removed
 * it had been read, and events for p0 went to whoever held the routing id
 * next, until a delivery failed or 20 s passed.  Now a connection under a
 * routing id its client chose is refused on a CURVE feed, told why: only
 * the ROUTER's own ids, never given twice, name a connection.
 */
START_TEST(
    a_gone_connections_routing_id_taken_by_another_gets_none_of_its_events) {
  void *ctx = zmq_ctx_new();
  char spub[41], ssec[41], ep[128], err[256];
  zmq_curve_keypair(spub, ssec);
  for (int k = 0; k < NP; k++) {
    zmq_curve_keypair(cpub[k], csec[k]);
    static char ids[NP][8];
    snprintf(ids[k], sizeof ids[k], "p%d", k);
    reg_owner[k] = ids[k];
    snprintf(reg_roles[k], sizeof reg_roles[k], "r%d", k % 3);
  }
  pthread_t zt;
  zap_stop = 0;
  zap_admitted = 0;
  ck_assert_int_eq(pthread_create(&zt, NULL, zap_run, ctx), 0);
  usleep(50000);
  snprintf(ep, sizeof ep, "ipc:///tmp/gm-test-privfeed-take-%d", (int)getpid());
  gm__privfeed *pf = gm__privfeed_new(ctx, ep, ssec, 0, err, sizeof err);
  ck_assert_msg(pf != NULL, "%s", err);
  gm__privfeed_set_lookup(pf, fake_lookup, NULL);
  void *victim = curve_dealer(ctx, ep, spub, 0, "vict");
  sub(victim, 1, "@p:p0 ");
  zmq_pollitem_t it = {gm__privfeed_socket(pf), 0, ZMQ_POLLIN, 0};
  ck_assert_int_eq(zmq_poll(&it, 1, 5000), 1);
  gm__privfeed_read_monitor(pf); /* its accept */
  zmq_close(victim);
  /* Its disconnect is there to read, its subscription not read yet. */
  zmq_pollitem_t mon = {gm__privfeed_monitor_socket(pf), 0, ZMQ_POLLIN, 0};
  ck_assert_int_eq(zmq_poll(&mon, 1, 5000), 1);
  read_n(pf, 1);
  /* The old pipe's end (libzmq's termination handshake runs as the socket
     is used): a connection that came before would be ignored. */
  for (int i = 0; i < 20; i++) {
    gm__privfeed_read(pf, 256, 1000);
    zmq_poll(&it, 1, 10);
  }
  void *thief = curve_dealer(ctx, ep, spub, 1, "vict");
  for (int i = 0; i < 500 && zap_admitted < 2; i++) zmq_poll(NULL, 0, 10);
  ck_assert_int_eq(zap_admitted, 2);
  /* The router takes the new connection in under the routing id once the
     old one's pipe is gone (as the socket is used): until a message sent
     to that routing id reaches the thief. */
  void *router = gm__privfeed_socket(pf);
  int held = 0;
  for (int i = 0; i < 300 && !held; i++) {
    gm__privfeed_read(pf, 256, 1000);
    if (zmq_send(router, "vict", 4, ZMQ_SNDMORE | ZMQ_DONTWAIT) == 4) {
      zmq_send(router, "probe", 5, 0);
      held = !strcmp(first_frame(thief, 200), "probe");
    } else
      zmq_poll(NULL, 0, 10);
  }
  ck_assert_msg(held, "the thief never held the gone connection's routing id");
  gm__privfeed_deliver(pf, "@p:p0 m.e", 9, "secret", 6);
  const char *got = first_frame(thief, 300);
  ck_assert_msg(strcmp(got, "@p:p0 m.e") != 0,
                "participant p1, connected under p0's gone connection's "
                "routing id, was sent p0's private event");
  /* The thief does hold the routing id: what it asks is answered there,
     with a refusal that says what to change. */
  sub(thief, 1, "@p:p1 ");
  read_n(pf, 1);
  gm__privfeed_deliver(pf, "@p:p1 m.e", 9, "x", 1);
  char f[3][512] = {"", "", ""};
  int n = -1;
  for (int k = 0; k < 100 && n < 0; k++) {
    n = zmq_recv(thief, f[0], sizeof f[0] - 1, ZMQ_DONTWAIT);
    if (n < 0) zmq_poll(NULL, 0, 10);
  }
  ck_assert_int_eq(n, 1);
  for (int i = 1; i < 3; i++) {
    n = zmq_recv(thief, f[i], sizeof f[i] - 1, ZMQ_DONTWAIT);
    ck_assert_int_ge(n, 0);
    f[i][n] = 0;
  }
  ck_assert_msg(f[0][0] == '!' && !strcmp(f[1], "@p:p1 ") &&
                    strstr(f[2], "do not set ZMQ_ROUTING_ID"),
                "the connection under a chosen routing id got [%c, %s, %s]",
                f[0][0], f[1], f[2]);
  ck_assert_str_eq(first_frame(thief, 100), "");
  zmq_close(thief);
  gm__privfeed_destroy(&pf);
  zap_stop = 1;
  pthread_join(zt, NULL);
  zmq_ctx_term(ctx);
  unlink(ep + strlen("ipc://"));
}
END_TEST

/*
 * A connection that subscribes and closes before the broker reads its
 * subscription, its disconnect read in the same burst, leaves no record:
 * before, one was made after the disconnect that would have removed it,
 * and held its prefixes (and a place in the index) until a delivery to it
 * failed or its 20 s lease ran out.
 */
START_TEST(
    a_connection_that_sent_and_closed_within_one_burst_leaves_no_record) {
  char ep[128], err[256];
  snprintf(ep, sizeof ep, "ipc:///tmp/gm-test-privfeed-gone-%d", (int)getpid());
  void *ctx = zmq_ctx_new();
  gm__privfeed *pf = gm__privfeed_new(ctx, ep, NULL, 0, err, sizeof err);
  ck_assert_msg(pf != NULL, "%s", err);
  void *d = zmq_socket(ctx, ZMQ_DEALER);
  int zero = 0;
  zmq_setsockopt(d, ZMQ_LINGER, &zero, sizeof zero);
  ck_assert_int_eq(zmq_connect(d, ep), 0);
  sub(d, 1, "a.");
  zmq_pollitem_t it = {gm__privfeed_socket(pf), 0, ZMQ_POLLIN, 0};
  ck_assert_int_eq(zmq_poll(&it, 1, 5000), 1);
  gm__privfeed_read_monitor(pf); /* its accept */
  zmq_close(d);
  zmq_pollitem_t mon = {gm__privfeed_monitor_socket(pf), 0, ZMQ_POLLIN, 0};
  ck_assert_int_eq(zmq_poll(&mon, 1, 5000), 1);
  read_n(pf, 1);
  ck_assert_uint_eq(gm__privfeed_connections(pf), 0);
  /* A live connection's subscription is kept as before. */
  void *e = zmq_socket(ctx, ZMQ_DEALER);
  zmq_setsockopt(e, ZMQ_LINGER, &zero, sizeof zero);
  ck_assert_int_eq(zmq_connect(e, ep), 0);
  sub(e, 1, "a.");
  read_n(pf, 1);
  ck_assert_uint_eq(gm__privfeed_connections(pf), 1);
  gm__privfeed_deliver(pf, "a.x", 3, "x", 1);
  ck_assert_str_eq(first_frame(e, 1000), "a.x");
  zmq_close(e);
  gm__privfeed_destroy(&pf);
  zmq_ctx_term(ctx);
  unlink(ep + strlen("ipc://"));
}
END_TEST

/* ---- a storm of disconnects ---- */

/* One ROUTER connected n times to ep, each connection named with
   ZMQ_CONNECT_ROUTING_ID and subscribed to "m." (a DEALER would connect to
   ep once), 100 at a time (the listening socket's backlog); returns once
   the feed holds `want` connections in all. */
static void *storm_socket(void *ctx, gm__privfeed *pf, const char *ep, int n,
                          size_t want) {
  void *d = zmq_socket(ctx, ZMQ_ROUTER);
  int zero = 0;
  zmq_setsockopt(d, ZMQ_LINGER, &zero, sizeof zero);
  size_t before = gm__privfeed_connections(pf);
  for (int i = 0; i < n; i++) {
    char name[16];
    int len = snprintf(name, sizeof name, "c%d", i);
    zmq_setsockopt(d, ZMQ_CONNECT_ROUTING_ID, name, (size_t)len);
    ck_assert_int_eq(zmq_connect(d, ep), 0);
    ck_assert_int_eq(zmq_send(d, name, (size_t)len, ZMQ_SNDMORE), len);
    ck_assert_int_eq(zmq_send(d, "\1m.", 3, 0), 3);
    if ((i + 1) % 100 && i + 1 < n) continue;
    size_t now = before + (size_t)i + 1;
    for (int tries = 0; tries < 1000 && gm__privfeed_connections(pf) < now;
         tries++) {
      gm__privfeed_read_monitor(pf);
      if (!gm__privfeed_read(pf, 256, 1000)) zmq_poll(NULL, 0, 2);
    }
    ck_assert_uint_eq(gm__privfeed_connections(pf), now);
  }
  ck_assert_uint_eq(gm__privfeed_connections(pf), want);
  return d;
}

/* Closes d (its connections go) and reads the monitor until the feed
   holds `left` connections. */
static void storm_close(gm__privfeed *pf, void *d, size_t left) {
  zmq_close(d);
  for (int tries = 0; tries < 2000 && gm__privfeed_connections(pf) > left;
       tries++) {
    zmq_pollitem_t it = {gm__privfeed_monitor_socket(pf), 0, ZMQ_POLLIN, 0};
    zmq_poll(&it, 1, 5);
    gm__privfeed_read_monitor(pf);
  }
  ck_assert_uint_eq(gm__privfeed_connections(pf), left);
}

/*
 * A disconnect looks only at the connections on its fd (and the few that
 * share its hash bucket), not at every connection held: 300 disconnects
 * while 2,000 others stay look at about 300 records.  Before, each looked
 * at all of them, so a storm of N disconnects cost N x N (600,000 here),
 * and the publisher thread, which reads the monitor, held every event
 * meanwhile.  Counted, not timed (gm_bench_privfeed_disconnects has the
 * figures).
 */
START_TEST(a_disconnect_looks_only_at_its_own_connections) {
  enum { D = 300, HELD = 2000 };
  /* Two descriptors a connection (both ends in this process). */
  struct rlimit nofile;
  ck_assert_int_eq(getrlimit(RLIMIT_NOFILE, &nofile), 0);
  rlim_t need = 2 * (HELD + D) + 256;
  if (nofile.rlim_cur < need && nofile.rlim_max >= need) {
    nofile.rlim_cur = need;
    ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &nofile), 0);
  }
  ck_assert_msg(nofile.rlim_cur >= need,
                "this test opens %llu descriptors; the limit is %llu: raise "
                "it (ulimit -n)",
                (unsigned long long)need, (unsigned long long)nofile.rlim_cur);
  char ep[128], err[256];
  snprintf(ep, sizeof ep, "ipc:///tmp/gm-test-privfeed-storm-%d",
           (int)getpid());
  void *ctx = zmq_ctx_new();
  zmq_ctx_set(ctx, ZMQ_MAX_SOCKETS, 64);
  gm__privfeed *pf = gm__privfeed_new(ctx, ep, NULL, 0, err, sizeof err);
  ck_assert_msg(pf != NULL, "%s", err);
  void *held = storm_socket(ctx, pf, ep, HELD, HELD);
  void *d = storm_socket(ctx, pf, ep, D, HELD + D);
  uint64_t before = gm__privfeed_disconnect_looks(pf);
  storm_close(pf, d, HELD);
  uint64_t looked = gm__privfeed_disconnect_looks(pf) - before;
  /* The ones held are still there. */
  ck_assert_uint_eq(gm__privfeed_connections(pf), HELD);
  ck_assert_msg(looked <= 4 * D,
                "%d disconnects looked at %llu connections with %d held: "
                "each disconnect looks at every connection",
                D, (unsigned long long)looked, HELD);
  zmq_close(held);
  gm__privfeed_destroy(&pf);
  zmq_ctx_term(ctx);
  unlink(ep + strlen("ipc://"));
}
END_TEST

int main(void) {
  Suite *s = suite_create("privfeed");
  TCase *tc = tcase_create("privfeed");
  tcase_add_test(tc, a_participant_keeps_only_its_own_and_its_roles_topics);
  tcase_add_test(tc, the_default_endpoint_follows_the_feed);
  tcase_add_test(tc, a_silent_connection_is_forgotten_after_its_lease);
  tcase_add_test(tc, each_connection_gets_exactly_what_its_prefixes_start);
  tcase_add_test(tc, rechecks_keep_delivery_and_the_index_in_step);
  tcase_add_test(tc, new_connections_read_together_are_looked_up_together);
  tcase_add_test(tc, one_among_many_leaves_and_the_others_keep_their_events);
  tcase_add_test(tc, a_connection_drops_and_adds_back_many_of_its_prefixes);
  tcase_add_test(tc, public_prefixes_count_in_the_cap);
  tcase_add_test(tc, a_full_queue_drops_and_both_drops_and_refusals_are_logged);
  tcase_add_test(tc, random_steps_keep_delivery_exact);
  tcase_add_test(tc, a_new_connection_on_a_gone_ones_id_and_fd_starts_afresh);
  tcase_add_test(
      tc,
      a_gone_connections_routing_id_taken_by_another_gets_none_of_its_events);
  tcase_add_test(
      tc, a_connection_that_sent_and_closed_within_one_burst_leaves_no_record);
  tcase_add_test(tc, a_disconnect_looks_only_at_its_own_connections);
  suite_add_tcase(s, tc);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
