/*
 * Finance with Redis over maxmemory: the read-only scripts (run by FCALL_RO)
 * still answer, a write is refused with RESOURCE_EXHAUSTED saying Redis is
 * out of memory and what to do, and it leaves nothing behind.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "redis_fill.h"

#define AMOUNT INT64_C(500000000)

static void setup(void) {
  ft_start(NULL, ft_at(FT_MONDAY, 10, 0));
  ft_bank("boc", "boc1");
  ft_product("boc-green", "boc", "3", "", 1000000, 100000000000, 1, 120, 50);
  ft_enterprise("acme", "330502");
}

static void teardown(void) {
  ft_stop();
}

/* Keys of referral id's tag whose name contains `part`. */
static long long tag_keys(redisContext *c, const char *id, const char *part) {
  redisReply *r = gm_test_redis_cmd(c, "KEYS gm:{finance:%s}:*%s*", id, part);
  long long n = (long long)r->elements;
  freeReplyObject(r);
  return n;
}

START_TEST(reads_answer_and_writes_are_refused_over_maxmemory) {
  Gm__Finance__Referral *ref = ft_refer("acme", AMOUNT, 36, 1);
  char id[64];
  snprintf(id, sizeof id, "%s", ref->id);
  ft_free(ref);

  redisContext *c = gm_test_redis_connect(ft_redis);
  ck_assert_int_gt(gm_test_redis_fill(c), 0);
  char v[32], st[32];
  snprintf(v, sizeof v, "%s", ft_redis_field(id, "v"));
  snprintf(st, sizeof st, "%s", ft_redis_field(id, "st"));
  long long idem = tag_keys(c, id, "idem:");
  long long dbsize = gm_test_redis_keys_but_leases(c);

  /* Reads: the referral, the enterprise's profile, the bank's queue. */
  ref = ft_get("acme", id);
  ck_assert_str_eq(ref->id, id);
  ft_free(ref);
  Gm__Finance__EnterpriseRequest er = GM__FINANCE__ENTERPRISE_REQUEST__INIT;
  er.participant = "acme";
  ft_free(ft_ok("acme", "enterprise.get", &er.base));
  Gm__Finance__Queue *q = ft_queue("boc");
  ck_assert_uint_eq(q->n_entries, 1);
  ft_free(q);

  /* Writes: a claim (one step), a new referral (several). */
  Gm__Finance__ClaimRequest claim = GM__FINANCE__CLAIM_REQUEST__INIT;
  claim.id = id;
  ft_expect("boc1", "referral.claim", &claim.base,
            GM__STATUS__RESOURCE_EXHAUSTED, "out of memory");
  ck_assert_ptr_nonnull(strstr(ft_message, "raise maxmemory or free keys"));
  Gm__Finance__ReferRequest req = GM__FINANCE__REFER_REQUEST__INIT;
  req.amount = AMOUNT;
  req.tenor_months = 36;
  req.class_code = "3";
  req.subitem = "3.2";
  req.use_of_proceeds = "rooftop solar";
  req.description = "a second plant";
  req.consent_share = 1;
  ft_expect("acme", "referral.create", &req.base,
            GM__STATUS__RESOURCE_EXHAUSTED, "out of memory");

  /* Nothing partial: the referral as it was, no record stored. */
  ck_assert_str_eq(ft_redis_field(id, "v"), v);
  ck_assert_str_eq(ft_redis_field(id, "st"), st);
  ck_assert_int_eq(tag_keys(c, id, "idem:"), idem);
  ck_assert_int_le(gm_test_redis_keys_but_leases(c), dbsize);

  /* Room again: the claim goes through. */
  freeReplyObject(gm_test_redis_cmd(c, "CONFIG SET maxmemory 0"));
  ref = ft_claim("boc1", id);
  ft_free(ref);
  redisFree(c);
}
END_TEST

/* Open problem 9: referral.create refused by its screening (a read-only
   step) leaves no stored reply behind, and a retry with the same key
   screens again (it goes through once a product fits). */
START_TEST(a_refused_create_leaves_no_record) {
  Gm__Finance__ReferRequest req = GM__FINANCE__REFER_REQUEST__INIT;
  req.amount = AMOUNT;
  req.tenor_months = 240; /* no product lends that long */
  req.class_code = "3";
  req.subitem = "3.2";
  req.use_of_proceeds = "rooftop solar";
  req.description = "too long a loan";
  req.consent_share = 1;
  redisContext *c = gm_test_redis_connect(ft_redis);
  const char *mine = "KEYS gm:{finance:*}:idem:acme:*";
  redisReply *r = gm_test_redis_cmd(c, mine);
  long long before = (long long)r->elements; /* acme's registration */
  freeReplyObject(r);
  for (int i = 0; i < 3; i++)
    ft_expect("acme", "referral.create", &req.base,
              GM__STATUS__FAILED_PRECONDITION, "no bank product fits");
  /* The refusal is answered once the UNLINKs are done: nothing left the
     moment it arrives, so a retry on receiving it screens afresh. */
  r = gm_test_redis_cmd(c, mine);
  ck_assert_int_eq((long long)r->elements, before);
  freeReplyObject(r);

  /* The same key, refused, then retried once a product fits: the retry
     screens afresh (a kept screening record would refuse it again). */
  Gm__Reply *rep = gm_test_call(ft_conn, "acme", "finance", "referral.create",
                                "same-key", &req.base);
  ck_assert_ptr_nonnull(rep);
  ck_assert_int_eq(rep->status, GM__STATUS__FAILED_PRECONDITION);
  gm__reply__free_unpacked(rep, NULL);
  ft_product("boc-long", "boc", "3", "", 1000000, 100000000000, 1, 240, 50);
  rep = gm_test_call(ft_conn, "acme", "finance", "referral.create", "same-key",
                     &req.base);
  ck_assert_ptr_nonnull(rep);
  ck_assert_msg(rep->status == GM__STATUS__OK, "retry: %d %s", rep->status,
                rep->message);
  gm__reply__free_unpacked(rep, NULL);
  redisFree(c);
}
END_TEST

int main(void) {
  Suite *s = suite_create("finance_oom");
  TCase *tc = tcase_create("oom");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, reads_answer_and_writes_are_refused_over_maxmemory);
  tcase_add_test(tc, a_refused_create_leaves_no_record);
  suite_add_tcase(s, tc);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
