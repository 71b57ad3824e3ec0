/*
 * kill -9 of a Redis master under referrals and claims, its replica
 * promoted (issue 12): on a private cluster of 3 masters with 2 replicas
 * each and gmd with [redis] cluster_wait_replicas = 1000, enterprise
 * threads create referrals (consent to share given) and bank threads
 * claim every referral they are told of, all under idempotency keys,
 * retrying UNAVAILABLE or no reply under the same key, while the master of
 * the referral numbers ({finance:dir}, reached by every create) is killed
 * and its most advanced replica takes over.  Every acknowledged referral
 * exists once (the numbers have no gap and no repeat), each has exactly the
 * 3 claims acknowledged (a fourth bank is refused, saying why) in Redis and
 * in the ledger; then the pick deadline passes (the manual clock) and
 * expires each referral once, every claim with it.  ctest label "cluster".
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cluster_failover.h"
#include "harness.h"

#define ENTERPRISES 2
#define BANKS 4
#define MAX_CLAIMS 3
#define MAX_REFERRALS 4096

static gm_test_cluster *cl;

static void setup(void) {
  cl = gm_test_cluster_start(3, 2, 1000);
  /* Before any call: with cluster_wait_replicas a write is answered only
     once a replica streams. */
  gm_test_cluster_wait_streaming(cl);
  ft_start_cluster(cl, "", "[redis]\ncluster_wait_replicas = 1000\n",
                   ft_at(FT_MONDAY, 10, 0));
}

static void teardown(void) {
  ft_stop();
  gm_test_cluster_stop(&cl);
}

/* The referrals acknowledged so far, in order, for the banks to claim. */
static struct {
  pthread_mutex_t mu;
  int n;
  char id[MAX_REFERRALS][16];
  int claims[MAX_REFERRALS]; /* acknowledged claims of each */
} made = {.mu = PTHREAD_MUTEX_INITIALIZER};

static atomic_int creating_stop, claiming_stop;

/* A client thread: an enterprise or a bank user. */
typedef struct client {
  pthread_t th;
  gm_test_conn *conn;
  char who[16];
  int calls;   /* actions answered (OK or refused as expected) */
  int acked;   /* of them, OK */
  int refused; /* of them, claims refused for having 3 claims already */
  int retried; /* actions that needed a retry */
  int bad;     /* anything else: the test fails */
  char claimed[MAX_REFERRALS];
} client;

/*
 * One action under its own idempotency key, retried under the same key and
 * body while gmd answers UNAVAILABLE or nothing.  The reply when OK; NULL
 * when refused as `refusal` says (counted in c->refused) or otherwise
 * (c->bad).
 */
static Gm__Finance__Referral *act(client *c, const char *method,
                                  const ProtobufCMessage *req,
                                  const char *refusal) {
  char idem[48];
  snprintf(idem, sizeof idem, "%s-%d", c->who, c->calls);
  for (int tries = 1; tries <= 1000; tries++) {
    Gm__Reply *r = gm_test_call(c->conn, c->who, "finance", method, idem, req);
    int st = r ? (int)r->status : GM__STATUS__UNAVAILABLE;
    if (st == GM__STATUS__UNAVAILABLE) {
      if (r) gm__reply__free_unpacked(r, NULL);
      ft_nap(20);
      continue;
    }
    c->retried += tries > 1;
    c->calls++;
    Gm__Finance__Referral *out = NULL;
    if (st == GM__STATUS__OK) {
      out = gm__finance__referral__unpack(NULL, r->body.len, r->body.data);
      c->acked++;
    } else if (refusal && st == GM__STATUS__FAILED_PRECONDITION &&
               strstr(r->message, refusal)) {
      c->refused++;
    } else {
      fprintf(stderr, "%s %s: status %d: %s\n", method, idem, st, r->message);
      c->bad = 1;
    }
    gm__reply__free_unpacked(r, NULL);
    return out;
  }
  fprintf(stderr, "%s %s: still UNAVAILABLE or no reply after 1000 tries\n",
          method, idem);
  c->bad = 1;
  return NULL;
}

static void *enterprise_run(void *arg) {
  client *c = arg;
  while (!atomic_load(&creating_stop) && !c->bad) {
    Gm__Finance__ReferRequest req = GM__FINANCE__REFER_REQUEST__INIT;
    req.amount = 500000000;
    req.tenor_months = 36;
    req.class_code = "3";
    req.subitem = "3.2";
    req.use_of_proceeds = "rooftop solar";
    req.description = "2 MW rooftop photovoltaic plant on our workshops";
    req.consent_share = 1;
    Gm__Finance__Referral *r = act(c, "referral.create", &req.base, NULL);
    if (!r) break;
    pthread_mutex_lock(&made.mu);
    if (made.n < MAX_REFERRALS)
      snprintf(made.id[made.n++], sizeof made.id[0], "%s", r->id);
    else
      c->bad = 1;
    pthread_mutex_unlock(&made.mu);
    gm__finance__referral__free_unpacked(r, NULL);
  }
  return NULL;
}

/* A bank claims every referral made, in turn, until told to stop once it
   has tried them all. */
static void *bank_run(void *arg) {
  client *c = arg;
  for (int k = 0; !c->bad;) {
    pthread_mutex_lock(&made.mu);
    int n = made.n;
    char id[16];
    if (k < n) snprintf(id, sizeof id, "%s", made.id[k]);
    pthread_mutex_unlock(&made.mu);
    if (k == n) {
      if (atomic_load(&claiming_stop)) break;
      ft_nap(2);
      continue;
    }
    Gm__Finance__ClaimRequest req = GM__FINANCE__CLAIM_REQUEST__INIT;
    req.id = id;
    Gm__Finance__Referral *r =
        act(c, "referral.claim", &req.base, "claims, the most allowed");
    if (r) {
      c->claimed[k] = 1;
      pthread_mutex_lock(&made.mu);
      made.claims[k]++;
      pthread_mutex_unlock(&made.mu);
      gm__finance__referral__free_unpacked(r, NULL);
    }
    k++;
  }
  return NULL;
}

static void start_clients(client *c, int n, const char *fmt,
                          void *(*run)(void *)) {
  for (int i = 0; i < n; i++) {
    snprintf(c[i].who, sizeof c[i].who, fmt, i);
    c[i].conn =
        gm_test_conn_new(gm_test_gmd_endpoint(ft_gmd), NULL, NULL, NULL);
    ck_assert_int_eq(pthread_create(&c[i].th, NULL, run, &c[i]), 0);
  }
}

/* Joins the threads; sums their counts into *total. */
static void join_clients(client *c, int n, client *total) {
  for (int i = 0; i < n; i++) {
    pthread_join(c[i].th, NULL);
    gm_test_conn_destroy(&c[i].conn);
    total->acked += c[i].acked;
    total->refused += c[i].refused;
    total->retried += c[i].retried;
    total->bad += c[i].bad;
  }
}

START_TEST(referrals_and_claims_survive_a_master_killed_under_load) {
  static client ent[ENTERPRISES], bank[BANKS];
  for (int i = 0; i < BANKS; i++) {
    char id[16], user[16], prod[16];
    snprintf(id, sizeof id, "bank%d", i);
    snprintf(user, sizeof user, "user%d", i);
    snprintf(prod, sizeof prod, "p%d", i);
    ft_bank(id, user);
    ft_product(prod, id, "3", "", 1, 100000000000, 1, 120, 50);
  }
  for (int i = 0; i < ENTERPRISES; i++) {
    char who[16];
    snprintf(who, sizeof who, "ent%d", i);
    ft_enterprise(who, "330502");
  }
  static const char seq[] = "gm:{finance:dir}:seq";
  int victim = gm_test_cluster_master_of(cl, seq);

  atomic_store(&creating_stop, 0);
  atomic_store(&claiming_stop, 0);
  start_clients(ent, ENTERPRISES, "ent%d", enterprise_run);
  start_clients(bank, BANKS, "user%d", bank_run);
  ft_nap(700);
  int promoted = gm_test_cluster_fail_over(cl, victim);
  /* The promoted master's writes are answered again once the other
     replica streams from it; then some more load. */
  gm_test_cluster_wait_streaming(cl);
  ft_nap(500);
  atomic_store(&creating_stop, 1);
  client ents = {0}, banks = {0};
  join_clients(ent, ENTERPRISES, &ents);
  atomic_store(&claiming_stop, 1);
  join_clients(bank, BANKS, &banks);
  int n = made.n;
  fprintf(stderr,
          "failover under referrals: %d referrals and %d claims "
          "acknowledged, %d claims refused (3 already), %d calls retried; "
          "node %d killed, %d promoted\n",
          n, banks.acked, banks.refused, ents.retried + banks.retried, victim,
          promoted);
  ck_assert_int_eq(ents.bad + banks.bad, 0);
  ck_assert_int_gt(ents.retried + banks.retried, 0); /* it landed under load */
  ck_assert_int_eq(ents.acked, n);
  ck_assert_int_eq(banks.acked + banks.refused, BANKS * n);

  /* Every acknowledged referral once: the numbers handed out are 1..n, no
     gap, no repeat, each in the ledger. */
  gm_test_cluster_reader *rd = gm_test_cluster_reader_new(cl);
  ck_assert_int_eq(gm_test_cluster_read_int(rd, "GET %s", seq), n);
  ck_assert_int_eq(ft_ledger_wait("SELECT count(*) FROM finance_referrals", n),
                   n);
  ck_assert_int_eq(ft_ledger_int("SELECT count(*) FROM finance_referrals"
                                 " WHERE id >= 'R00000001' AND id <= printf("
                                 "'R%08d', (SELECT count(*) FROM"
                                 " finance_referrals))"),
                   n);
  /* Each referral: the first 3 claims won, those acknowledged, in Redis
     and in the ledger, once each. */
  ck_assert_int_eq(
      ft_ledger_wait("SELECT count(*) FROM finance_claims", banks.acked),
      banks.acked);
  for (int k = 0; k < n; k++) {
    char key[48], sql[256];
    ck_assert_int_eq(made.claims[k], MAX_CLAIMS);
    snprintf(key, sizeof key, "gm:{finance:%s}:cl", made.id[k]);
    ck_assert_int_eq(gm_test_cluster_read_int(rd, "ZCARD %s", key), MAX_CLAIMS);
    for (int b = 0; b < BANKS; b++) {
      snprintf(sql, sizeof sql,
               "SELECT count(*) FROM finance_claims WHERE referral = '%s'"
               " AND bank = 'bank%d'",
               made.id[k], b);
      ck_assert_int_eq(ft_ledger_int(sql), bank[b].claimed[k]);
      redisReply *r = gm_test_cluster_read(rd, "ZSCORE %s bank%d", key, b);
      ck_assert_int_eq(r->type != REDIS_REPLY_NIL, bank[b].claimed[k]);
      freeReplyObject(r);
    }
  }

  /* The pick deadline (the end of the 5th working day: Monday 9 March)
     expires each referral once, with its claims. */
  ft_clock(ft_at("2026-03-10", 9, 0));
  ck_assert_int_eq(ft_ledger_wait("SELECT count(*) FROM finance_referrals"
                                  " WHERE state = 10",
                                  n),
                   n);
  ck_assert_int_eq(ft_ledger_wait("SELECT count(*) FROM finance_transitions"
                                  " WHERE transition = 'expire'",
                                  n),
                   n);
  ck_assert_int_eq(ft_ledger_int("SELECT count(DISTINCT referral) FROM"
                                 " finance_transitions WHERE transition ="
                                 " 'expire'"),
                   n);
  ck_assert_int_eq(ft_ledger_wait("SELECT count(*) FROM finance_claims"
                                  " WHERE outcome = 'expire'",
                                  banks.acked),
                   banks.acked);
  for (int k = 0; k < n; k++) {
    char key[48];
    snprintf(key, sizeof key, "gm:{finance:%s}:r", made.id[k]);
    redisReply *r = gm_test_cluster_read(rd, "HGET %s st", key);
    ck_assert_msg(r->type == REDIS_REPLY_STRING && atoi(r->str) == 10,
                  "%s is not expired in Redis", made.id[k]);
    freeReplyObject(r);
    /* Redis and the ledger agree on its last version. */
    r = gm_test_cluster_read(rd, "HGET %s v", key);
    char sql[160];
    snprintf(sql, sizeof sql,
             "SELECT max(version) FROM finance_transitions WHERE referral"
             " = '%s'",
             made.id[k]);
    ck_assert_int_eq(r->type, REDIS_REPLY_STRING);
    ck_assert_int_eq(ft_ledger_int(sql), atoll(r->str));
    freeReplyObject(r);
  }
  gm_test_cluster_reader_free(&rd);
}
END_TEST

int main(void) {
  Suite *su = suite_create("finance_failover");
  TCase *tc = tcase_create("failover");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, referrals_and_claims_survive_a_master_killed_under_load);
  suite_add_tcase(su, tc);
  SRunner *sr = srunner_create(su);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
