/*
 * The claim race: 50 banks whose products all fit claim one referral at
 * once, each from its own thread over its own ZeroMQ connection, on a
 * manual clock that stands still (so all 50 claims carry the same
 * millisecond).  Exactly the configured number win (3, and 5 with
 * max_claims = 5); every other claim is refused with the reason, and Redis
 * and the ledger hold exactly the winners.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

#define BANKS 50

typedef struct claimer {
  gm_test_conn *conn;
  char user[16];
  const char *id;
  pthread_barrier_t *start;
  int status;
  char message[512];
} claimer;

static void *claim_thread(void *arg) {
  claimer *c = arg;
  Gm__Finance__ClaimRequest req = GM__FINANCE__CLAIM_REQUEST__INIT;
  char key[32];
  req.id = (char *)c->id;
  snprintf(key, sizeof key, "race-%s", c->user);
  pthread_barrier_wait(c->start);
  Gm__Reply *r = gm_test_call(c->conn, c->user, "finance", "referral.claim",
                              key, &req.base);
  c->status = r ? (int)r->status : -1;
  snprintf(c->message, sizeof c->message, "%s",
           r && r->message ? r->message : "");
  if (r) gm__reply__free_unpacked(r, NULL);
  return NULL;
}

static void race(int max_claims) {
  char conf[64];
  snprintf(conf, sizeof conf, "max_claims = %d", max_claims);
  ft_start(conf, ft_at(FT_MONDAY, 10, 0));
  for (int i = 0; i < BANKS; i++) {
    char bank[16], user[16], prod[16];
    snprintf(bank, sizeof bank, "bank%02d", i);
    snprintf(user, sizeof user, "user%02d", i);
    snprintf(prod, sizeof prod, "p%02d", i);
    ft_bank(bank, user);
    ft_product(prod, bank, "3", "", 1, 100000000000, 1, 120, 50);
  }
  ft_enterprise("acme", "330502");
  Gm__Finance__Referral *r = ft_refer("acme", 500000000, 36, 0);
  char id[32];
  snprintf(id, sizeof id, "%s", r->id);
  ft_free(r);

  static claimer cs[BANKS];
  pthread_t th[BANKS];
  pthread_barrier_t start;
  pthread_barrier_init(&start, NULL, BANKS);
  for (int i = 0; i < BANKS; i++) {
    memset(&cs[i], 0, sizeof cs[i]);
    cs[i].conn =
        gm_test_conn_new(gm_test_gmd_endpoint(ft_gmd), NULL, NULL, NULL);
    snprintf(cs[i].user, sizeof cs[i].user, "user%02d", i);
    cs[i].id = id;
    cs[i].start = &start;
  }
  for (int i = 0; i < BANKS; i++)
    ck_assert_int_eq(pthread_create(&th[i], NULL, claim_thread, &cs[i]), 0);
  for (int i = 0; i < BANKS; i++) pthread_join(th[i], NULL);
  pthread_barrier_destroy(&start);

  int won = 0, refused = 0;
  char winners[BANKS][16];
  for (int i = 0; i < BANKS; i++) {
    gm_test_conn_destroy(&cs[i].conn);
    if (cs[i].status == GM__STATUS__OK) {
      snprintf(winners[won++], 16, "bank%02d", i);
    } else {
      ck_assert_msg(cs[i].status == GM__STATUS__FAILED_PRECONDITION,
                    "claim of %s: status %d: %s", cs[i].user, cs[i].status,
                    cs[i].message);
      char want[64];
      snprintf(want, sizeof want, "already has %d claims, the most allowed",
               max_claims);
      ck_assert_msg(strstr(cs[i].message, want), "%s", cs[i].message);
      refused++;
    }
  }
  ck_assert_int_eq(won, max_claims);
  ck_assert_int_eq(refused, BANKS - max_claims);

  /* Redis: exactly the winners claimed it, one version per claim. */
  redisContext *c = gm_test_redis_connect(ft_redis);
  redisReply *cl = gm_test_redis_cmd(c, "ZRANGE gm:{finance:%s}:cl 0 -1", id);
  ck_assert_int_eq(cl->elements, (size_t)max_claims);
  for (size_t i = 0; i < cl->elements; i++) {
    int found = 0;
    for (int k = 0; k < won; k++)
      found |= !strcmp(cl->element[i]->str, winners[k]);
    ck_assert_msg(found, "%s claimed in Redis but was refused",
                  cl->element[i]->str);
  }
  freeReplyObject(cl);
  /* Every winner's steps ran: nothing left for the sync deadline. */
  ck_assert_int_eq(gm_test_redis_int(c, "SCARD gm:{finance:%s}:us", id), 0);
  ck_assert_int_eq(gm_test_redis_int(c, "ZCARD gm:{finance:%s}:dl", id), 1);
  redisFree(c);
  char v[16];
  snprintf(v, sizeof v, "%d", 1 + max_claims);
  ck_assert_str_eq(ft_redis_field(id, "v"), v);
  /* The ledger: the winners' claims, once each. */
  ck_assert_int_eq(
      ft_ledger_wait("SELECT count(*) FROM finance_claims", max_claims),
      max_claims);
  ck_assert_int_eq(ft_ledger_int("SELECT count(DISTINCT bank) FROM"
                                 " finance_claims"),
                   max_claims);
  /* The queues: the winners have it as claimed, nobody else has it. */
  int claimed = 0, open = 0;
  for (int i = 0; i < BANKS; i++) {
    char bank[16];
    snprintf(bank, sizeof bank, "bank%02d", i);
    const char *rel = ft_relation(bank, id);
    if (rel && !strcmp(rel, "claimed")) claimed++;
    if (rel && !strcmp(rel, "open")) open++;
  }
  ck_assert_int_eq(claimed, max_claims);
  ck_assert_int_eq(open, 0);
  ft_stop();
}

START_TEST(exactly_3_of_50_concurrent_claims_win) {
  race(3);
}
END_TEST

START_TEST(exactly_5_of_50_when_configured) {
  race(5);
}
END_TEST

int main(void) {
  Suite *s = suite_create("finance race");
  TCase *tc = tcase_create("race");
  tcase_set_timeout(tc, 300);
  tcase_add_test(tc, exactly_3_of_50_concurrent_claims_win);
  tcase_add_test(tc, exactly_5_of_50_when_configured);
  suite_add_tcase(s, tc);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
