/*
 * Every transition of a referral and every refusal, through the real
 * broker: the reply, what Redis holds (the referral, the bank queues) and
 * what the ledger holds (referrals, transitions, claims, loans).
 *
 * The world: banks icbc, abc, boc, ccb whose products fit a 5,000,000
 * yuan, 36-month class 3.2 need in Huzhou (330502), bank nofit whose
 * product does not, enterprises acme and other in Huzhou.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

#define AMOUNT INT64_C(500000000) /* 5,000,000.00 yuan */

static void setup(void) {
  ft_start(NULL, ft_at(FT_MONDAY, 10, 0));
  ft_bank("icbc", "icbc1");
  ft_bank("abc", "abc1");
  ft_bank("boc", "boc1");
  ft_bank("ccb", "ccb1");
  ft_bank("nofit", "nofit1");
  ft_register("drifter", "bank"); /* a bank role, linked to no bank */
  ft_product("icbc-solar", "icbc", "3", "330000", 10000000, 10000000000, 12, 60,
             80);
  ft_product("abc-green", "abc", "3.2", "330500", 50000000, 10000000000, 6, 120,
             100);
  ft_product("boc-green", "boc", "3", "", 1000000, 100000000000, 1, 120, 50);
  ft_product("ccb-green", "ccb", "3.2,1.5", "", 1000000, 100000000000, 1, 120,
             60);
  ft_product("nofit-p", "nofit", "1", "", 1, 100000000000, 1, 120, 100);
  ft_enterprise("acme", "330502");
  ft_enterprise("other", "330502");
}

static void teardown(void) {
  ft_stop();
}

static Gm__Finance__ReferRequest refer_req(void) {
  Gm__Finance__ReferRequest r = GM__FINANCE__REFER_REQUEST__INIT;
  r.amount = AMOUNT;
  r.tenor_months = 36;
  r.class_code = "3";
  r.subitem = "3.2";
  r.use_of_proceeds = "rooftop solar";
  r.description = "2 MW rooftop photovoltaic plant";
  r.consent_share = 1;
  return r;
}

static long long redis_int(const char *fmt, const char *arg) {
  redisContext *c = gm_test_redis_connect(ft_redis);
  long long v = gm_test_redis_int(c, fmt, arg);
  redisFree(c);
  return v;
}

/* The integer a command answers (a member's score: -1 when it has none). */
static long long redis_int2(const char *fmt, const char *a, const char *b) {
  redisContext *c = gm_test_redis_connect(ft_redis);
  redisReply *r = gm_test_redis_cmd(c, fmt, a, b);
  long long v = r->type == REDIS_REPLY_INTEGER  ? r->integer
                : r->type == REDIS_REPLY_STRING ? strtoll(r->str, NULL, 10)
                                                : -1;
  freeReplyObject(r);
  redisFree(c);
  return v;
}

START_TEST(directory_refusals_say_what_to_fix) {
  Gm__Finance__Bank b = GM__FINANCE__BANK__INIT;
  Gm__Finance__CreateBankRequest cb = GM__FINANCE__CREATE_BANK_REQUEST__INIT;
  cb.bank = &b;
  b.id = "ICBC";
  b.name = "x";
  ft_expect(FT_CENTRE, "bank.create", &cb.base, GM__STATUS__INVALID_ARGUMENT,
            "not 1-32 of a-z 0-9 -");
  b.id = "icbc";
  b.name = "Another name";
  ft_expect(FT_CENTRE, "bank.create", &cb.base, GM__STATUS__ALREADY_EXISTS,
            "exists with another name");
  b.id = "spaces";
  b.name = "   ";
  ft_expect(FT_CENTRE, "bank.create", &cb.base, GM__STATUS__INVALID_ARGUMENT,
            "bank name is only spaces");
  b.name =
      "ICBC \xe2\x80\xae"
      "uohzuH";
  ft_expect(FT_CENTRE, "bank.create", &cb.base, GM__STATUS__INVALID_ARGUMENT,
            "bank name contains the bidi control character U+202E");
  b.name = "ICBC\xc2\x85Huzhou";
  ft_expect(FT_CENTRE, "bank.create", &cb.base, GM__STATUS__INVALID_ARGUMENT,
            "bank name contains the control character U+0085 at byte 5");
  b.id = "icbc";
  b.name = "Bank icbc"; /* the same again: fine */
  ft_free((Gm__Finance__Bank *)ft_ok(FT_CENTRE, "bank.create", &cb.base));
  ft_expect("acme", "bank.create", &cb.base, GM__STATUS__PERMISSION_DENIED,
            "needs role centre");

  Gm__Finance__LinkRequest link = GM__FINANCE__LINK_REQUEST__INIT;
  link.participant = "drifter";
  link.bank = "nosuch";
  ft_expect(FT_CENTRE, "bank.link", &link.base, GM__STATUS__NOT_FOUND,
            "no bank nosuch; the centre creates it first");
  link.participant = "bad id";
  link.bank = "icbc";
  ft_expect(FT_CENTRE, "bank.link", &link.base, GM__STATUS__INVALID_ARGUMENT,
            "must be 1-64 characters of ASCII letters");
  Gm__Finance__Product p = GM__FINANCE__PRODUCT__INIT;
  Gm__Finance__CreateProductRequest cp =
      GM__FINANCE__CREATE_PRODUCT_REQUEST__INIT;
  char *cls[] = {"3.9"};
  cp.product = &p;
  p.id = "p1";
  p.bank = "icbc";
  p.name = "x";
  p.amount_min = 1;
  p.amount_max = 100;
  p.tenor_min_months = 1;
  p.tenor_max_months = 12;
  p.classes = cls;
  p.n_classes = 1;
  ft_expect(FT_CENTRE, "product.create", &cp.base, GM__STATUS__INVALID_ARGUMENT,
            "classes 3.9 are not in");
  cls[0] = "3.2";
  p.amount_min = 200;
  ft_expect(FT_CENTRE, "product.create", &cp.base, GM__STATUS__INVALID_ARGUMENT,
            "the amount range 2.00-1.00 CNY must have 0 <= MIN <= MAX");
  p.amount_min = 1;
  p.tenor_max_months = 601;
  ft_expect(FT_CENTRE, "product.create", &cp.base, GM__STATUS__INVALID_ARGUMENT,
            "tenor range");
  p.tenor_max_months = 12;
  p.fee_bp = 8000; /* --fee 80, meant as 0.80 % */
  ft_expect(FT_CENTRE, "product.create", &cp.base, GM__STATUS__INVALID_ARGUMENT,
            "the referral fee must be 0 to 5.00 % of the funded amount "
            "(lenders pay about 0.5-1.5 %), not 80.00 %; give it in percent: "
            "0.8 for 0.80 %");
  p.fee_bp = 501;
  ft_expect(FT_CENTRE, "product.create", &cp.base, GM__STATUS__INVALID_ARGUMENT,
            "not 5.01 %");
  p.fee_bp = 10;
  p.bank = "nosuch";
  ft_expect(FT_CENTRE, "product.create", &cp.base, GM__STATUS__NOT_FOUND,
            "no bank nosuch");
  p.bank = "icbc";
  p.id = "icbc-solar"; /* exists with other terms */
  ft_expect(FT_CENTRE, "product.create", &cp.base, GM__STATUS__ALREADY_EXISTS,
            "exists with other terms");

  Gm__Finance__Enterprise e = GM__FINANCE__ENTERPRISE__INIT;
  Gm__Finance__RegisterEnterpriseRequest re =
      GM__FINANCE__REGISTER_ENTERPRISE_REQUEST__INIT;
  char code[19];
  re.enterprise = &e;
  ft_code("91330502MA2B3C4D5", code);
  code[17] = code[17] == '0' ? '1' : '0'; /* a wrong check character */
  e.credit_code = code;
  e.name = "Acme";
  e.region = "330502";
  e.size = GM__FINANCE__SIZE_CLASS__SIZE_SMALL;
  e.contact = "x";
  ft_expect("acme", "enterprise.register", &re.base,
            GM__STATUS__INVALID_ARGUMENT, "call for check character");
  ft_code("91330502MA2B3C4D5", code);
  e.region = "990502";
  ft_expect("acme", "enterprise.register", &re.base,
            GM__STATUS__INVALID_ARGUMENT,
            "is six digits, but its first two are no province of GB/T 2260");
  e.region = "330502";
  e.size = 0;
  ft_expect("acme", "enterprise.register", &re.base,
            GM__STATUS__INVALID_ARGUMENT, "large, medium, small or micro");
  e.size = GM__FINANCE__SIZE_CLASS__SIZE_SMALL;
  e.participant = "other";
  ft_expect("acme", "enterprise.register", &re.base,
            GM__STATUS__PERMISSION_DENIED, "only other itself or the centre");
  /* Nothing a refusal touched changed the directory's products. */
  Gm__Finance__ProductsRequest pl = GM__FINANCE__PRODUCTS_REQUEST__INIT;
  Gm__Finance__ProductList *list =
      (Gm__Finance__ProductList *)ft_ok(FT_CENTRE, "product.list", &pl.base);
  ck_assert_int_eq(list->n_products, 5);
  ft_free(list);
}
END_TEST

/* One credit code, one enterprise profile: a participant cannot register
   another's unified social credit code and be shown to banks as that
   enterprise.  An enterprise is not told who holds the code (who uses the
   platform is nobody else's business); the centre is. */
static const char *redis_str(const char *fmt, const char *arg, char *out,
                             size_t n) {
  redisContext *c = gm_test_redis_connect(ft_redis);
  redisReply *r = gm_test_redis_cmd(c, fmt, arg);
  snprintf(out, n, "%s", r->type == REDIS_REPLY_STRING ? r->str : "(none)");
  freeReplyObject(r);
  redisFree(c);
  return out;
}

/* A registration request of `name`'s profile (region 330502, small,
   contact Li Wei) into e and re; the caller sets the credit code. */
static void profile_request(Gm__Finance__Enterprise *e,
                            Gm__Finance__RegisterEnterpriseRequest *re,
                            const char *name) {
  gm__finance__enterprise__init(e);
  gm__finance__register_enterprise_request__init(re);
  re->enterprise = e;
  e->name = (char *)name;
  e->region = "330502";
  e->size = GM__FINANCE__SIZE_CLASS__SIZE_SMALL;
  e->contact = "Li Wei";
}

START_TEST(a_credit_code_is_one_enterprise_profile) {
  Gm__Finance__Enterprise e;
  Gm__Finance__RegisterEnterpriseRequest re;
  Gm__Finance__EnterpriseRequest get = GM__FINANCE__ENTERPRISE_REQUEST__INIT;
  char code[19], code2[19], held[64];
  ft_code("91330502MA2B3C4D5", code);
  ft_code("91330502MA2B3C4D6", code2);
  profile_request(&e, &re, "Acme Solar");
  e.credit_code = code;
  ft_free(ft_ok("acme", "enterprise.register", &re.base));
  /* Another enterprise with acme's code and name: refused, acme unnamed. */
  ft_expect("other", "enterprise.register", &re.base,
            GM__STATUS__ALREADY_EXISTS,
            "is in the profile of another participant: an enterprise has "
            "one profile");
  Gm__Finance__Enterprise *p =
      (Gm__Finance__Enterprise *)ft_ok("other", "enterprise.get", &get.base);
  ck_assert_str_ne(p->credit_code, code);
  ck_assert_str_eq(p->name, "other Green Energy Co");
  ft_free(p);
  ft_expect("other", "enterprise.register", &re.base,
            GM__STATUS__ALREADY_EXISTS, "another participant");
  /* The centre, registering for other, is told whose it is. */
  e.participant = "other";
  ft_expect(FT_CENTRE, "enterprise.register", &re.base,
            GM__STATUS__ALREADY_EXISTS,
            "is in the profile of participant acme: an enterprise has one "
            "profile");
  ck_assert_str_eq(
      redis_str("HGET gm:{finance:dir}:uscc %s", code, held, sizeof held),
      "acme");
  /* acme registering again under the same code keeps it; under another
     code frees the first, which other may then take. */
  e.participant = "";
  ft_free(ft_ok("acme", "enterprise.register", &re.base));
  e.credit_code = code2;
  ft_free(ft_ok("acme", "enterprise.register", &re.base));
  ck_assert_str_eq(
      redis_str("HGET gm:{finance:dir}:uscc %s", code, held, sizeof held),
      "(none)");
  e.credit_code = code;
  e.name = "Other Wind";
  ft_free(ft_ok("other", "enterprise.register", &re.base));
  ck_assert_str_eq(
      redis_str("HGET gm:{finance:dir}:uscc %s", code, held, sizeof held),
      "other");
  ft_expect("acme", "enterprise.register", &re.base, GM__STATUS__ALREADY_EXISTS,
            "another participant");
}
END_TEST

/* A claim of a code whose holder's profile does not hold it (a profile
   write that failed after the claim; one participant registering two
   codes at once, the second write winning) no longer keeps the code from
   its enterprise forever: once the claim is a minute old, a registration
   under the code takes it over.  A claim the holder's profile holds is
   never taken. */
START_TEST(a_stale_credit_code_claim_is_taken_over) {
  Gm__Finance__Enterprise e;
  Gm__Finance__RegisterEnterpriseRequest re;
  char code[19], other[19], held[64];
  ft_code("91330502MA2B3C4D5", code);
  ft_code("91330502MA2B3C4D6", other);
  ft_enterprise("owner", "330502");
  ft_enterprise("third", "330502");
  profile_request(&e, &re, "Acme Solar");
  /* acme's profile holds `other`; the index still says acme claimed
     `code` (a second registration of acme's that lost to the first), a
     claim made just now. */
  e.credit_code = other;
  ft_free(ft_ok("acme", "enterprise.register", &re.base));
  int64_t now = ft_at(FT_MONDAY, 10, 0);
  redisContext *c = gm_test_redis_connect(ft_redis);
  freeReplyObject(
      gm_test_redis_cmd(c, "HSET gm:{finance:dir}:uscc %s acme", code));
  freeReplyObject(gm_test_redis_cmd(c, "HSET gm:{finance:dir}:uscc_t %s %lld",
                                    code, (long long)now));
  /* Within the minute: refused as any held code is, the holder unnamed. */
  e.credit_code = code;
  e.name = "Real Owner Co";
  ft_expect("owner", "enterprise.register", &re.base,
            GM__STATUS__ALREADY_EXISTS, "another participant");
  /* A minute on, the code goes to its enterprise. */
  ft_clock(now + 60000);
  ft_free(ft_ok("owner", "enterprise.register", &re.base));
  ck_assert_str_eq(
      redis_str("HGET gm:{finance:dir}:uscc %s", code, held, sizeof held),
      "owner");
  /* A claim from before the time was kept (no uscc_t), of a participant
     with no profile at all (its write failed): taken at once. */
  char lost[19];
  ft_code("91330502MA2B3C4D7", lost);
  freeReplyObject(
      gm_test_redis_cmd(c, "HSET gm:{finance:dir}:uscc %s ghost", lost));
  e.credit_code = lost;
  e.name = "Third Co";
  ft_free(ft_ok("third", "enterprise.register", &re.base));
  ck_assert_str_eq(
      redis_str("HGET gm:{finance:dir}:uscc %s", lost, held, sizeof held),
      "third");
  /* A claim its holder's profile holds stays, however old. */
  ft_clock(now + 3600000);
  e.credit_code = other;
  ft_expect("third", "enterprise.register", &re.base,
            GM__STATUS__ALREADY_EXISTS, "another participant");
  ck_assert_str_eq(
      redis_str("HGET gm:{finance:dir}:uscc %s", other, held, sizeof held),
      "acme");
  redisFree(c);
}
END_TEST

/* A retry of a refused registration (its reply lost) with the same
   idempotency key replays the steps that read the holder's profile, which
   were read within the claim's minute: they do not show a profile write
   that landed since (the holder's own registration, claimed before it),
   so the retry does not take the code on their word a minute on.  A new
   request reads afresh and takes a claim that is stale indeed. */
START_TEST(a_retried_registration_takes_no_claim_on_a_stale_read) {
  Gm__Finance__Enterprise e;
  Gm__Finance__RegisterEnterpriseRequest re;
  char code[19], other[19], held[64];
  ft_code("91330502MA2B3C4E1", code);
  ft_code("91330502MA2B3C4E2", other);
  ft_enterprise("slowco", "330502");
  ft_enterprise("rival", "330502");
  profile_request(&e, &re, "Slow Co");
  e.credit_code = other;
  ft_free(ft_ok("slowco", "enterprise.register", &re.base));
  /* slowco's registration under `code` has claimed it just now; its
     profile write is still to come. */
  int64_t now = ft_at(FT_MONDAY, 11, 0);
  ft_clock(now);
  redisContext *c = gm_test_redis_connect(ft_redis);
  freeReplyObject(
      gm_test_redis_cmd(c, "HSET gm:{finance:dir}:uscc %s slowco", code));
  freeReplyObject(gm_test_redis_cmd(c, "HSET gm:{finance:dir}:uscc_t %s %lld",
                                    code, (long long)now));
  e.credit_code = code;
  e.name = "Rival Co";
  ft_clock(now + 10000);
  Gm__Reply *r = gm_test_call(ft_conn, "rival", "finance",
                              "enterprise.register", "retried-uscc", &re.base);
  ck_assert_ptr_nonnull(r);
  ck_assert_int_eq(r->status, GM__STATUS__ALREADY_EXISTS);
  gm__reply__free_unpacked(r, NULL);
  /* slowco's profile write lands, well within the minute. */
  freeReplyObject(
      gm_test_redis_cmd(c, "HSET gm:{finance:e:slowco}:p uscc %s", code));
  /* The same request again, a minute on: still refused. */
  ft_clock(now + 61000);
  r = gm_test_call(ft_conn, "rival", "finance", "enterprise.register",
                   "retried-uscc", &re.base);
  ck_assert_ptr_nonnull(r);
  ck_assert_msg(r->status == GM__STATUS__ALREADY_EXISTS,
                "the retry took the code slowco's profile holds: status %d",
                r->status);
  gm__reply__free_unpacked(r, NULL);
  ck_assert_str_eq(
      redis_str("HGET gm:{finance:dir}:uscc %s", code, held, sizeof held),
      "slowco");
  /* A claim stale indeed goes to a new request. */
  freeReplyObject(
      gm_test_redis_cmd(c, "HSET gm:{finance:e:slowco}:p uscc %s", other));
  ft_free(ft_ok("rival", "enterprise.register", &re.base));
  ck_assert_str_eq(
      redis_str("HGET gm:{finance:dir}:uscc %s", code, held, sizeof held),
      "rival");
  redisFree(c);
}
END_TEST

/* A registration whose profile write failed after its claim (so its
   claim is stale and taken over a minute on) is retried with its
   idempotency key: the retry replays the claim step as it succeeded then
   and writes the profile, though the code is another's by now.  One code
   would be in two profiles; the retry must be refused instead.  (The
   failed write: a record of another request under the profile step's
   idempotency record, which refuses that step with nothing written.) */
START_TEST(a_retry_after_its_claim_was_taken_writes_no_second_profile) {
  Gm__Finance__Enterprise e;
  Gm__Finance__RegisterEnterpriseRequest re;
  char code[19], held[64];
  ft_code("91330502MA2B3C4F1", code);
  ft_enterprise("crashco", "330502");
  ft_enterprise("realco", "330502");
  profile_request(&e, &re, "Crash Co");
  e.credit_code = code;
  int64_t now = ft_at(FT_MONDAY, 12, 0);
  ft_clock(now);
  redisContext *c = gm_test_redis_connect(ft_redis);
  freeReplyObject(gm_test_redis_cmd(
      c, "SET gm:{finance:e:crashco}:idem:crashco:enterprise:crash-key:2 %b",
      "\xc1zzzzzzzzzzzz\x90", (size_t)14));
  Gm__Reply *r = gm_test_call(ft_conn, "crashco", "finance",
                              "enterprise.register", "crash-key", &re.base);
  ck_assert_ptr_nonnull(r);
  ck_assert_int_ne(r->status, GM__STATUS__OK);
  gm__reply__free_unpacked(r, NULL);
  ck_assert_str_eq(
      redis_str("HGET gm:{finance:dir}:uscc %s", code, held, sizeof held),
      "crashco");
  /* A minute on, the code goes to the enterprise that registers it. */
  ft_clock(now + 61000);
  e.name = "Real Co";
  ft_free(ft_ok("realco", "enterprise.register", &re.base));
  ck_assert_str_eq(
      redis_str("HGET gm:{finance:dir}:uscc %s", code, held, sizeof held),
      "realco");
  /* crashco's call retried with its key, the failing step's cause gone. */
  freeReplyObject(gm_test_redis_cmd(
      c, "DEL gm:{finance:e:crashco}:idem:crashco:enterprise:crash-key:2"));
  e.name = "Crash Co";
  r = gm_test_call(ft_conn, "crashco", "finance", "enterprise.register",
                   "crash-key", &re.base);
  ck_assert_ptr_nonnull(r);
  gm__reply__free_unpacked(r, NULL);
  ck_assert_msg(strcmp(redis_str("HGET gm:{finance:e:crashco}:p %s", "uscc",
                                 held, sizeof held),
                       code) != 0,
                "crashco's profile holds %s, which realco's holds and claimed",
                code);
  redisFree(c);
}
END_TEST

/* Only a participant holding the bank role acts for a bank: the centre's
   link is an offer that the participant accepts with its own call (the
   host checks its roles); it never moves a member of another bank. */
START_TEST(only_a_bank_role_holder_is_linked_and_never_moved) {
  Gm__Finance__LinkRequest link = GM__FINANCE__LINK_REQUEST__INIT;
  link.participant = "acme"; /* an enterprise, not a bank */
  link.bank = "icbc";
  Gm__Finance__Bank *b =
      (Gm__Finance__Bank *)ft_ok(FT_CENTRE, "bank.link", &link.base);
  ck_assert_int_eq(b->n_members, 1); /* icbc1 only: acme has not accepted */
  ft_free(b);
  link.participant = "";
  ft_expect("acme", "bank.link", &link.base, GM__STATUS__PERMISSION_DENIED,
            "needs role");
  ck_assert_int_eq(redis_int("HEXISTS gm:{finance:dir}:member %s", "acme"), 0);
  /* An id never registered cannot accept either: it stays an offer. */
  link.participant = "ghost";
  ft_free(ft_ok(FT_CENTRE, "bank.link", &link.base));
  ck_assert_int_eq(redis_int("HEXISTS gm:{finance:dir}:member %s", "ghost"), 0);
  /* A bank role holder accepts only its own offer. */
  link.participant = "";
  link.bank = "abc";
  ft_expect("drifter", "bank.link", &link.base, GM__STATUS__FAILED_PRECONDITION,
            "the centre has no pending offer to link you (drifter) to bank "
            "abc; ask it to link you: gm finance bank link drifter abc");
  link.participant = "drifter";
  ft_free(ft_ok(FT_CENTRE, "bank.link", &link.base));
  link.participant = "";
  b = (Gm__Finance__Bank *)ft_ok("drifter", "bank.link", &link.base);
  ck_assert_int_eq(b->n_members, 2);
  ft_free(b);
  /* A member of another bank is not moved silently. */
  link.participant = "icbc1";
  link.bank = "abc";
  ft_expect(FT_CENTRE, "bank.link", &link.base, GM__STATUS__FAILED_PRECONDITION,
            "icbc1 acts for bank icbc; unlink it first (gm finance bank "
            "unlink icbc1)");
  link.bank = "";
  ft_expect("drifter", "bank.link", &link.base, GM__STATUS__PERMISSION_DENIED,
            "only the centre unlinks");
  ft_free(ft_ok(FT_CENTRE, "bank.link", &link.base));
  link.bank = "abc";
  ft_free(ft_ok(FT_CENTRE, "bank.link", &link.base));
  link.participant = "";
  ft_free(ft_ok("icbc1", "bank.link", &link.base));
  ck_assert_int_eq(redis_int("SISMEMBER gm:{finance:dir}:bm:icbc %s", "icbc1"),
                   0);
  ck_assert_int_eq(redis_int("SISMEMBER gm:{finance:dir}:bm:abc %s", "icbc1"),
                   1);
}
END_TEST

START_TEST(screening_gives_every_reason_and_a_refusal_leaves_nothing) {
  Gm__Finance__ReferRequest r = refer_req();
  r.subitem = "3.9";    /* not in the catalogue */
  r.consent_share = 0;  /* no consent */
  r.tenor_months = 240; /* no product lends that long */
  Gm__Finance__ScreenReply *s =
      (Gm__Finance__ScreenReply *)ft_ok("acme", "referral.screen", &r.base);
  ck_assert(!s->eligible);
  ck_assert_int_eq(s->n_reasons, 3);
  ck_assert_msg(strstr(s->reasons[0], "item 3.9 is not in the Green Industry"),
                "%s", s->reasons[0]);
  ck_assert_msg(strstr(s->reasons[1], "consent_share"), "%s", s->reasons[1]);
  ck_assert_msg(strstr(s->reasons[2], "of the 4 products for class 3") &&
                    strstr(s->reasons[2], "do not lend over 240 months") &&
                    strstr(s->reasons[2], "do not cover item 3.9"),
                "%s", s->reasons[2]);
  ft_free(s);
  ft_expect("acme", "referral.create", &r.base, GM__STATUS__FAILED_PRECONDITION,
            "not eligible: item 3.9 is not in the Green Industry Guidance "
            "Catalogue in force");
  ck_assert_msg(strstr(ft_message, "consent_share") &&
                    strstr(ft_message, "no bank product fits"),
                "%s", ft_message);
  /* Region: abc lends in its city only; a Hangzhou need fits three. */
  r = refer_req();
  r.amount = 2000000; /* 20,000 yuan: only boc and ccb lend so little */
  s = (Gm__Finance__ScreenReply *)ft_ok("acme", "referral.screen", &r.base);
  ck_assert(s->eligible);
  ck_assert_int_eq(s->banks, 2);
  ft_free(s);
  /* The refusals took no referral number and wrote no referral. */
  redisContext *c = gm_test_redis_connect(ft_redis);
  redisReply *seq = gm_test_redis_cmd(c, "GET gm:{finance:dir}:seq");
  ck_assert_int_eq(seq->type, REDIS_REPLY_NIL);
  freeReplyObject(seq);
  redisReply *keys = gm_test_redis_cmd(c, "KEYS gm:{finance:R*");
  ck_assert_int_eq(keys->elements, 0);
  freeReplyObject(keys);
  redisFree(c);
  /* A malformed request is INVALID_ARGUMENT, not a screening reason. */
  r = refer_req();
  r.subitem = "4.1";
  ft_expect("acme", "referral.create", &r.base, GM__STATUS__INVALID_ARGUMENT,
            "not a catalogue code under class 3");
  r = refer_req();
  r.amount = GM_FINANCE_MAX_AMOUNT + 1;
  ft_expect("acme", "referral.create", &r.base, GM__STATUS__INVALID_ARGUMENT,
            "amount must be above 0 and at most 1000000000000.00 CNY, not "
            "1000000000000.01");
  r = refer_req();
  r.enterprise = "other";
  ft_expect("acme", "referral.create", &r.base, GM__STATUS__PERMISSION_DENIED,
            "only the centre refers on another enterprise's behalf");
  r = refer_req();
  ft_register("ghost", "enterprise");
  ft_expect("ghost", "referral.create", &r.base, GM__STATUS__NOT_FOUND,
            "has no profile; register it first");
}
END_TEST

START_TEST(a_referral_goes_to_the_fitting_banks_queues) {
  Gm__Finance__Referral *r = ft_refer("acme", AMOUNT, 36, 0);
  char id[32];
  snprintf(id, sizeof id, "%s", r->id);
  ck_assert_str_eq(id, "R00000001");
  ck_assert_int_eq(r->state, GM__FINANCE__STATE__STATE_OPEN);
  ck_assert_int_eq(r->access, GM__FINANCE__ACCESS__ACCESS_FULL);
  ck_assert_str_eq(r->enterprise->participant, "acme");
  /* Monday 10:00 + 5 working days: the end of next Monday. */
  ck_assert_int_eq(r->pick_due_ms, ft_at("2026-03-10", 0, 0));
  ft_free(r);
  ck_assert_str_eq(ft_relation("icbc", id), "open");
  ck_assert_str_eq(ft_relation("abc", id), "open");
  ck_assert_str_eq(ft_relation("boc", id), "open");
  ck_assert_str_eq(ft_relation("ccb", id), "open");
  ck_assert_ptr_null(ft_relation("nofit", id));
  /* Redis: the record, the eligible banks, the deadlines. */
  ck_assert_str_eq(ft_redis_field(id, "ent"), "acme");
  ck_assert_str_eq(ft_redis_field(id, "st"), "1");
  ck_assert_int_eq(redis_int("HLEN gm:{finance:%s}:eb", id), 4);
  ck_assert_int_eq(redis_int("ZCARD gm:{finance:%s}:dl", id), 1); /* pick */
  ck_assert_int_eq(redis_int("ZCARD gm:{finance:e:%s}:r", "acme"), 1);
  /* The ledger. */
  ck_assert_int_eq(ft_ledger_wait("SELECT count(*) FROM finance_referrals"
                                  " WHERE id = 'R00000001' AND state = 1"
                                  " AND eligible_banks = 4 AND amount ="
                                  " 500000000",
                                  1),
                   1);
  ck_assert_int_eq(ft_ledger_int("SELECT count(*) FROM finance_transitions"
                                 " WHERE transition = 'created'"),
                   1);
  /* A retry with the same key is the same referral. */
  Gm__Finance__ReferRequest req = refer_req();
  Gm__Reply *a = gm_test_call(ft_conn, "other", "finance", "referral.create",
                              "same-key", &req.base);
  Gm__Reply *b = gm_test_call(ft_conn, "other", "finance", "referral.create",
                              "same-key", &req.base);
  ck_assert_int_eq(a->status, 0);
  ck_assert_int_eq(b->status, 0);
  Gm__Finance__Referral *ra =
      gm__finance__referral__unpack(NULL, a->body.len, a->body.data);
  Gm__Finance__Referral *rb =
      gm__finance__referral__unpack(NULL, b->body.len, b->body.data);
  ck_assert_str_eq(ra->id, "R00000002");
  ck_assert_str_eq(rb->id, "R00000002");
  ft_free(ra);
  ft_free(rb);
  gm__reply__free_unpacked(a, NULL);
  gm__reply__free_unpacked(b, NULL);
  ck_assert_int_eq(redis_int("GET gm:{finance:%s}:seq", "dir"), 2);
}
END_TEST

START_TEST(claim_pick_contact_ask_answer_approve_fund) {
  Gm__Finance__Referral *r = ft_refer("acme", AMOUNT, 36, 0);
  char id[32];
  snprintf(id, sizeof id, "%s", r->id);
  ft_free(r);
  r = ft_claim("icbc1", id);
  ck_assert_int_eq(r->state, GM__FINANCE__STATE__STATE_CLAIMED);
  ck_assert_int_eq(r->access, GM__FINANCE__ACCESS__ACCESS_DETAILS);
  ck_assert_ptr_null(r->enterprise); /* no consent to share who */
  ck_assert_int_eq(r->amount, AMOUNT);
  ft_free(r);
  ft_free(ft_claim("abc1", id));
  ck_assert_str_eq(ft_relation("icbc", id), "claimed");
  ck_assert_str_eq(ft_relation("boc", id), "open"); /* 2 of 3: still open */

  r = ft_pick("acme", id, "icbc");
  ck_assert_int_eq(r->state, GM__FINANCE__STATE__STATE_PICKED);
  ck_assert_str_eq(r->bank, "icbc");
  ck_assert_str_eq(r->product, "icbc-solar");
  ck_assert_int_eq(r->fee_bp, 80);
  ck_assert_int_eq(r->contact_due_ms,
                   ft_at(FT_MONDAY, 10, 0) + 7 * GM_FINANCE_DAY_MS);
  ft_free(r);
  ck_assert_str_eq(ft_relation("icbc", id), "held");
  ck_assert_ptr_null(ft_relation("abc", id)); /* lost access */
  ck_assert_ptr_null(ft_relation("boc", id));
  r = ft_get("icbc1", id);
  ck_assert_int_eq(r->access, GM__FINANCE__ACCESS__ACCESS_FULL);
  ck_assert_str_eq(r->enterprise->participant, "acme"); /* picked: who */
  ft_free(r);

  r = ft_contact("icbc1", id);
  ck_assert_int_eq(r->state, GM__FINANCE__STATE__STATE_UNDER_REVIEW);
  ft_free(r);
  Gm__Finance__TextRequest q = GM__FINANCE__TEXT_REQUEST__INIT;
  q.id = id;
  q.text = "please send the grid connection approval";
  r = (Gm__Finance__Referral *)ft_ok("icbc1", "referral.request_info", &q.base);
  ck_assert_int_eq(r->state, GM__FINANCE__STATE__STATE_INFO_REQUESTED);
  ft_free(r);
  q.text = "attached as document 17";
  r = (Gm__Finance__Referral *)ft_ok("acme", "referral.answer", &q.base);
  ck_assert_int_eq(r->state, GM__FINANCE__STATE__STATE_UNDER_REVIEW);
  ck_assert_str_eq(r->answer, "attached as document 17");
  ft_free(r);
  ft_clock(ft_at("2026-03-04", 15, 0));
  /* A bank approves no more than was asked, at a rate its product
     advertises. */
  Gm__Finance__ApproveRequest ap = GM__FINANCE__APPROVE_REQUEST__INIT;
  ap.id = id;
  ap.amount = AMOUNT + 1;
  ap.rate_bp = 345;
  ap.tenor_months = 36;
  ft_expect("icbc1", "referral.approve", &ap.base, GM__STATUS__INVALID_ARGUMENT,
            "the approved amount 5000000.01 CNY is more than the enterprise "
            "asked for, 5000000.00 CNY");
  ap.amount = AMOUNT;
  ap.rate_bp = 451;
  ft_expect("icbc1", "referral.approve", &ap.base, GM__STATUS__INVALID_ARGUMENT,
            "the rate 4.51% is outside 3.00%-4.50%, the range product "
            "icbc-solar");
  /* And over a tenor within its 12-60 months (360 was approved). */
  ap.rate_bp = 345;
  ap.tenor_months = 360;
  ft_expect("icbc1", "referral.approve", &ap.base, GM__STATUS__INVALID_ARGUMENT,
            "the tenor 360 months is outside 12-60 months, the range product "
            "icbc-solar (claimed for R");
  r = ft_approve("icbc1", id, 450000000, 345, 36);
  ck_assert_int_eq(r->state, GM__FINANCE__STATE__STATE_APPROVED);
  ft_free(r);
  r = ft_fund("icbc1", id, 450000000, "2026-03-04");
  ck_assert_int_eq(r->state, GM__FINANCE__STATE__STATE_FUNDED);
  ck_assert_int_eq(r->fee, 3600000); /* 0.8% of 4,500,000.00 yuan */
  ft_free(r);
  ck_assert_ptr_null(ft_relation("icbc", id)); /* nothing left to do */

  /* The ledger: 8 transitions, the claims' outcomes, the loan. */
  ck_assert_int_eq(ft_ledger_wait("SELECT count(*) FROM finance_loans", 1), 1);
  ck_assert_int_eq(ft_ledger_wait("SELECT count(*) FROM finance_transitions"
                                  " WHERE referral = 'R00000001'",
                                  9),
                   9);
  ck_assert_int_eq(ft_ledger_int("SELECT fee FROM finance_loans"), 3600000);
  ck_assert_int_eq(ft_ledger_int("SELECT amount FROM finance_loans"),
                   450000000);
  ck_assert_int_eq(ft_ledger_int("SELECT rate_bp FROM finance_loans"), 345);
  ck_assert_int_eq(ft_ledger_int("SELECT co2_kg FROM finance_loans"), 1500000);
  ck_assert_int_eq(ft_ledger_int("SELECT count(*) FROM finance_claims WHERE"
                                 " bank = 'icbc' AND outcome = 'picked'"),
                   1);
  ck_assert_int_eq(ft_ledger_int("SELECT count(*) FROM finance_claims WHERE"
                                 " bank = 'abc' AND outcome = 'lost'"),
                   1);
  ck_assert_int_eq(ft_ledger_int("SELECT state FROM finance_referrals"),
                   GM__FINANCE__STATE__STATE_FUNDED);
  ck_assert_int_eq(ft_ledger_int("SELECT decided_ms - picked_ms FROM"
                                 " finance_referrals"),
                   ft_at("2026-03-04", 15, 0) - ft_at(FT_MONDAY, 10, 0));
}
END_TEST

START_TEST(claims_are_refused_with_the_reason) {
  Gm__Finance__Referral *r = ft_refer("acme", AMOUNT, 36, 0);
  char id[32];
  snprintf(id, sizeof id, "%s", r->id);
  ft_free(r);
  Gm__Finance__ClaimRequest c = GM__FINANCE__CLAIM_REQUEST__INIT;
  c.id = id;
  ft_expect("nofit1", "referral.claim", &c.base, GM__STATUS__PERMISSION_DENIED,
            "your bank nofit has no product that fits");
  ft_expect("drifter", "referral.claim", &c.base, GM__STATUS__PERMISSION_DENIED,
            "acts for no bank; the centre links it");
  ft_expect("acme", "referral.claim", &c.base, GM__STATUS__PERMISSION_DENIED,
            "needs role bank");
  c.product = "abc-green";
  ft_expect("icbc1", "referral.claim", &c.base, GM__STATUS__INVALID_ARGUMENT,
            "product abc-green does not fit R00000001; your bank's products "
            "that fit: icbc-solar");
  c.product = "";
  ft_free(ft_claim("icbc1", id));
  ft_expect("icbc1", "referral.claim", &c.base, GM__STATUS__ALREADY_EXISTS,
            "already claimed");
  ft_free(ft_claim("abc1", id));
  ft_free(ft_claim("ccb1", id));
  ft_expect("boc1", "referral.claim", &c.base, GM__STATUS__FAILED_PRECONDITION,
            "already has 3 claims, the most allowed");
  /* Full: the others' queues lost it; the claimants keep it. */
  ck_assert_ptr_null(ft_relation("boc", id));
  ck_assert_str_eq(ft_relation("ccb", id), "claimed");
  ft_free(ft_pick("acme", id, "ccb"));
  /* A bank that does not hold it is not told its state (picked here,
     funded below): only that it can no longer claim it. */
  ft_expect("boc1", "referral.claim", &c.base, GM__STATUS__FAILED_PRECONDITION,
            "referral R00000001 is no longer open to claims (the enterprise "
            "picked a bank for it, or it ended); your bank boc, which does "
            "not hold it, cannot read it");
  ck_assert_msg(!strstr(ft_message, "picked:"), "%s", ft_message);
  c.id = "R99999999";
  ft_expect("boc1", "referral.claim", &c.base, GM__STATUS__NOT_FOUND,
            "no referral R99999999");
  c.id = "bogus";
  ft_expect("boc1", "referral.claim", &c.base, GM__STATUS__INVALID_ARGUMENT,
            "not a referral id");
  /* An escape sequence in the id comes back as '?' (gmd shows every
     control character of a message so, whichever market wrote it). */
  c.id =
      "R9999999\x1b"
      "9";
  ft_expect("boc1", "referral.claim", &c.base, GM__STATUS__INVALID_ARGUMENT,
            "\"R9999999?9\" is not a referral id");
  c.id =
      "R9999999\xc2\x9b"
      "9";
  ft_expect("boc1", "referral.claim", &c.base, GM__STATUS__INVALID_ARGUMENT,
            "\"R9999999?9\" is not a referral id");
  /* The refusals changed nothing: 3 claims and a pick. */
  ck_assert_str_eq(ft_redis_field(id, "v"), "5");
  ck_assert_int_eq(ft_ledger_wait("SELECT count(*) FROM finance_claims", 3), 3);
  /* Funded: a claimant not picked and a bank that never claimed learn
     nothing of the loan; the bank that funded it is told its state. */
  c.id = id;
  ft_free(ft_contact("ccb1", id));
  ft_free(ft_approve("ccb1", id, AMOUNT, 345, 36));
  ft_free(ft_fund("ccb1", id, AMOUNT, NULL));
  const char *who[] = {"icbc1", "boc1"};
  for (int i = 0; i < 2; i++) {
    ft_expect(who[i], "referral.claim", &c.base,
              GM__STATUS__FAILED_PRECONDITION,
              "is no longer open to claims (the enterprise picked a bank for "
              "it, or it ended)");
    ck_assert_msg(!strstr(ft_message, "funded"), "%s", ft_message);
  }
  ft_expect("ccb1", "referral.claim", &c.base, GM__STATUS__FAILED_PRECONDITION,
            "referral R00000001 is funded: a bank can claim it only while it "
            "is open or claimed");
  ck_assert_str_eq(ft_redis_field(id, "v"), "8");
}
END_TEST

START_TEST(only_the_enterprise_picks_and_only_a_claimant) {
  Gm__Finance__Referral *r = ft_refer("acme", AMOUNT, 36, 0);
  char id[32];
  snprintf(id, sizeof id, "%s", r->id);
  ft_free(r);
  Gm__Finance__PickRequest p = GM__FINANCE__PICK_REQUEST__INIT;
  p.id = id;
  p.bank = "icbc";
  ft_expect("acme", "referral.pick", &p.base, GM__STATUS__FAILED_PRECONDITION,
            "is open: a bank can be picked only while it is claimed");
  ft_free(ft_claim("icbc1", id));
  ft_expect("other", "referral.pick", &p.base, GM__STATUS__PERMISSION_DENIED,
            "only the enterprise that referred R00000001 may pick a bank "
            "for it");
  ft_expect(FT_CENTRE, "referral.pick", &p.base, GM__STATUS__PERMISSION_DENIED,
            "needs role enterprise");
  ft_expect("icbc1", "referral.pick", &p.base, GM__STATUS__PERMISSION_DENIED,
            "needs role enterprise");
  p.bank = "abc";
  ft_expect("acme", "referral.pick", &p.base, GM__STATUS__INVALID_ARGUMENT,
            "bank abc has not claimed R00000001; pick one of its claimants: "
            "icbc");
  ck_assert_str_eq(ft_redis_field(id, "v"), "2");
}
END_TEST

/* Another enterprise refused a pick, an answer or a withdrawal learns
   nothing about whose referral it is: referral ids are sequential, so a
   message naming the enterprise would let any enterprise map them all. */
START_TEST(a_refusal_does_not_say_whose_referral_it_is) {
  Gm__Finance__Referral *r = ft_refer("acme", AMOUNT, 36, 0);
  char id[32];
  snprintf(id, sizeof id, "%s", r->id);
  ft_free(r);
  ft_free(ft_claim("icbc1", id));
  Gm__Finance__PickRequest p = GM__FINANCE__PICK_REQUEST__INIT;
  p.id = id;
  p.bank = "icbc";
  ft_expect("other", "referral.pick", &p.base, GM__STATUS__PERMISSION_DENIED,
            "only the enterprise that referred R00000001 may pick a bank");
  ck_assert_msg(!strstr(ft_message, "acme"), "%s", ft_message);
  Gm__Finance__TextRequest t = GM__FINANCE__TEXT_REQUEST__INIT;
  t.id = id;
  t.text = "an answer";
  ft_expect("other", "referral.answer", &t.base, GM__STATUS__PERMISSION_DENIED,
            "only the enterprise that referred");
  ck_assert_msg(!strstr(ft_message, "acme"), "%s", ft_message);
  ft_expect("other", "referral.withdraw", &t.base,
            GM__STATUS__PERMISSION_DENIED, "only the enterprise that referred");
  ck_assert_msg(!strstr(ft_message, "acme"), "%s", ft_message);
  ck_assert_str_eq(ft_redis_field(id, "v"), "2");
}
END_TEST

/* A bank without access learns nothing of where the referral went from a
   refusal: not the claimant that lost the pick, not a bank whose products
   do not fit. */
START_TEST(a_refusal_does_not_tell_a_bank_without_access_the_state) {
  Gm__Finance__Referral *r = ft_refer("acme", AMOUNT, 36, 0);
  char id[32];
  snprintf(id, sizeof id, "%s", r->id);
  ft_free(r);
  ft_free(ft_claim("icbc1", id));
  ft_free(ft_claim("abc1", id));
  ft_free(ft_pick("acme", id, "icbc"));
  ft_free(ft_contact("icbc1", id));
  ft_free(ft_approve("icbc1", id, AMOUNT, 345, 36));
  ft_free(ft_fund("icbc1", id, AMOUNT, NULL));
  Gm__Finance__ContactRequest ct = GM__FINANCE__CONTACT_REQUEST__INIT;
  ct.id = id;
  ft_expect("abc1", "referral.contact", &ct.base, GM__STATUS__PERMISSION_DENIED,
            "your bank abc does not hold it");
  ck_assert_msg(!strstr(ft_message, "funded"), "%s", ft_message);
  Gm__Finance__ApproveRequest ap = GM__FINANCE__APPROVE_REQUEST__INIT;
  ap.id = id;
  ap.amount = AMOUNT;
  ap.rate_bp = 345;
  ap.tenor_months = 36;
  ft_expect("abc1", "referral.approve", &ap.base, GM__STATUS__PERMISSION_DENIED,
            "your bank abc does not hold it");
  ck_assert_msg(!strstr(ft_message, "funded"), "%s", ft_message);
  Gm__Finance__FundRequest f = GM__FINANCE__FUND_REQUEST__INIT;
  f.id = id;
  f.amount = AMOUNT;
  ft_expect("abc1", "referral.fund", &f.base, GM__STATUS__PERMISSION_DENIED,
            "your bank abc does not hold it");
  ck_assert_msg(!strstr(ft_message, "funded"), "%s", ft_message);
  Gm__Finance__DeclineRequest d = GM__FINANCE__DECLINE_REQUEST__INIT;
  d.id = id;
  d.reason = GM__FINANCE__DECLINE_REASON__DECLINE_OTHER;
  d.text = "x";
  ft_expect("abc1", "referral.decline", &d.base, GM__STATUS__PERMISSION_DENIED,
            "your bank abc does not hold it");
  ck_assert_msg(!strstr(ft_message, "funded"), "%s", ft_message);
  Gm__Finance__TextRequest t = GM__FINANCE__TEXT_REQUEST__INIT;
  t.id = id;
  t.text = "a question";
  ft_expect("abc1", "referral.request_info", &t.base,
            GM__STATUS__PERMISSION_DENIED, "your bank abc does not hold it");
  ck_assert_msg(!strstr(ft_message, "funded"), "%s", ft_message);
  Gm__Finance__ClaimRequest c = GM__FINANCE__CLAIM_REQUEST__INIT;
  c.id = id;
  ft_expect("nofit1", "referral.claim", &c.base, GM__STATUS__PERMISSION_DENIED,
            "your bank nofit has no product that fits");
  ck_assert_msg(!strstr(ft_message, "funded"), "%s", ft_message);
}
END_TEST

START_TEST(only_the_holding_bank_moves_it_in_order) {
  Gm__Finance__Referral *r = ft_refer("acme", AMOUNT, 36, 1);
  char id[32];
  snprintf(id, sizeof id, "%s", r->id);
  ft_free(r);
  ft_free(ft_claim("icbc1", id));
  ft_free(ft_claim("abc1", id));
  ft_free(ft_pick("acme", id, "icbc"));

  Gm__Finance__ContactRequest ct = GM__FINANCE__CONTACT_REQUEST__INIT;
  ct.id = id;
  ft_expect("abc1", "referral.contact", &ct.base, GM__STATUS__PERMISSION_DENIED,
            "only the bank the enterprise picked for R00000001 may record "
            "contact; your bank abc does not hold it");
  Gm__Finance__ApproveRequest ap = GM__FINANCE__APPROVE_REQUEST__INIT;
  ap.id = id;
  ap.amount = AMOUNT;
  ap.rate_bp = 345;
  ap.tenor_months = 36;
  ft_expect("icbc1", "referral.approve", &ap.base,
            GM__STATUS__FAILED_PRECONDITION,
            "is picked: the bank can approve it only while it is under "
            "review or approved; the picked bank records its first contact "
            "first (gm finance contact R00000001 NOTE)");
  Gm__Finance__TextRequest tx = GM__FINANCE__TEXT_REQUEST__INIT;
  tx.id = id;
  tx.text = "an answer to nothing";
  ft_expect("acme", "referral.answer", &tx.base,
            GM__STATUS__FAILED_PRECONDITION,
            "the enterprise can answer only while it is info requested");
  ft_free(ft_contact("icbc1", id));
  /* API users read the field they set and its unit. */
  ap.rate_bp = 10001;
  ft_expect("icbc1", "referral.approve", &ap.base, GM__STATUS__INVALID_ARGUMENT,
            "the annual rate (rate_bp, in basis points: 345 for 3.45%) must "
            "be 0 to 10000, not 10001");
  ap.rate_bp = 345;
  ap.amount = -100;
  ft_expect("icbc1", "referral.approve", &ap.base, GM__STATUS__INVALID_ARGUMENT,
            "the approved amount (amount, in hundredths of the referral's "
            "currency: fen for CNY, 450000000 for 4500000.00 yuan) must be 1 "
            "to 100000000000000, not -100");
  ap.amount = AMOUNT;
  ap.tenor_months = 0;
  ft_expect("icbc1", "referral.approve", &ap.base, GM__STATUS__INVALID_ARGUMENT,
            "the tenor (tenor_months) must be 1 to 600 months, not 0");
  ap.tenor_months = 36;
  ft_free(ft_approve("icbc1", id, AMOUNT, 345, 36));

  Gm__Finance__FundRequest f = GM__FINANCE__FUND_REQUEST__INIT;
  f.id = id;
  f.amount = AMOUNT + 1;
  ft_expect("icbc1", "referral.fund", &f.base, GM__STATUS__INVALID_ARGUMENT,
            "the funded amount 5000000.01 CNY is more than the approved "
            "5000000.00 CNY");
  f.amount = AMOUNT;
  f.date = "2026-03-03";
  ft_expect("icbc1", "referral.fund", &f.base, GM__STATUS__INVALID_ARGUMENT,
            "is after today (2026-03-02)");
  f.date = "2026-03-01";
  ft_expect("icbc1", "referral.fund", &f.base, GM__STATUS__INVALID_ARGUMENT,
            "the value date 2026-03-01 is before the approval (2026-03-02); "
            "give the day the loan was paid out, on or after it");
  f.amount = 0;
  f.date = "";
  ft_expect("icbc1", "referral.fund", &f.base, GM__STATUS__INVALID_ARGUMENT,
            "the funded amount (amount, in hundredths of the referral's "
            "currency: fen for CNY");
  f.amount = AMOUNT;
  f.date = "2026-03-01";
  ft_expect("abc1", "referral.fund", &f.base, GM__STATUS__PERMISSION_DENIED,
            "your bank abc does not hold it");

  Gm__Finance__DeclineRequest d = GM__FINANCE__DECLINE_REQUEST__INIT;
  d.id = id;
  d.text = "collateral valuation too low";
  ft_expect("icbc1", "referral.decline", &d.base, GM__STATUS__INVALID_ARGUMENT,
            "give a reason from the list");
  d.reason = GM__FINANCE__DECLINE_REASON__DECLINE_COLLATERAL;
  r = (Gm__Finance__Referral *)ft_ok("icbc1", "referral.decline", &d.base);
  ck_assert_int_eq(r->state, GM__FINANCE__STATE__STATE_DECLINED);
  ck_assert_int_eq(r->decline_reason,
                   GM__FINANCE__DECLINE_REASON__DECLINE_COLLATERAL);
  /* Declined, the purpose the contact person was shared for has ended:
     the bank keeps its record of the decline, who included, not the
     contact (PIPL art. 47), in its reply and in what it reads after. */
  ck_assert_str_eq(r->enterprise->contact, "");
  ck_assert(r->contact_withheld);
  ft_free(r);
  r = ft_get("icbc1", id);
  ck_assert_int_eq(r->access, GM__FINANCE__ACCESS__ACCESS_FULL);
  ck_assert_str_eq(r->enterprise->name, "acme Green Energy Co");
  ck_assert_str_eq(r->enterprise->contact, "");
  ck_assert(r->contact_withheld);
  ft_free(r);
  /* The enterprise sees the reason, and it and the centre the contact. */
  r = ft_get("acme", id);
  ck_assert_str_eq(r->decline_text, "collateral valuation too low");
  ck_assert_str_eq(r->enterprise->contact, "Li Wei +86 572 000 0000");
  ck_assert(!r->contact_withheld);
  ft_free(r);
  r = ft_get(FT_CENTRE, id);
  ck_assert_str_eq(r->enterprise->contact, "Li Wei +86 572 000 0000");
  ft_free(r);
  ft_expect("icbc1", "referral.fund", &f.base, GM__STATUS__FAILED_PRECONDITION,
            "is declined");
  ck_assert_int_eq(
      ft_ledger_wait("SELECT count(*) FROM finance_transitions WHERE"
                     " transition = 'decline' AND code = '2' AND detail ="
                     " 'collateral valuation too low'",
                     1),
      1);
  ck_assert_int_eq(ft_ledger_int("SELECT count(*) FROM finance_loans"), 0);
}
END_TEST

START_TEST(the_enterprise_withdraws_any_time_before_funding) {
  Gm__Finance__TextRequest w = GM__FINANCE__TEXT_REQUEST__INIT;
  char a[32], b[32], c[32];
  Gm__Finance__Referral *r = ft_refer("acme", AMOUNT, 36, 0);
  snprintf(a, sizeof a, "%s", r->id);
  ft_free(r);
  r = ft_refer("acme", AMOUNT, 36, 0);
  snprintf(b, sizeof b, "%s", r->id);
  ft_free(r);
  r = ft_refer("acme", AMOUNT, 36, 0);
  snprintf(c, sizeof c, "%s", r->id);
  ft_free(r);
  /* Open: every bank's queue loses it. */
  w.id = a;
  w.text = "found another lender";
  ft_expect("other", "referral.withdraw", &w.base,
            GM__STATUS__PERMISSION_DENIED, "only the enterprise that referred");
  r = (Gm__Finance__Referral *)ft_ok("acme", "referral.withdraw", &w.base);
  ck_assert_int_eq(r->state, GM__FINANCE__STATE__STATE_WITHDRAWN);
  ft_free(r);
  ck_assert_ptr_null(ft_relation("icbc", a));
  ck_assert_ptr_null(ft_relation("boc", a));
  /* Under review: the holding bank's queue loses it. */
  ft_free(ft_claim("icbc1", b));
  ft_free(ft_pick("acme", b, "icbc"));
  ft_free(ft_contact("icbc1", b));
  w.id = b;
  ft_free(ft_ok("acme", "referral.withdraw", &w.base));
  ck_assert_ptr_null(ft_relation("icbc", b));
  /* Funded: too late. */
  ft_free(ft_claim("icbc1", c));
  ft_free(ft_pick("acme", c, "icbc"));
  ft_free(ft_contact("icbc1", c));
  ft_free(ft_approve("icbc1", c, AMOUNT, 345, 36));
  ft_free(ft_fund("icbc1", c, AMOUNT, NULL));
  w.id = c;
  ft_expect("acme", "referral.withdraw", &w.base,
            GM__STATUS__FAILED_PRECONDITION,
            "is funded: the enterprise can withdraw it only while it is open "
            "or claimed or picked or under review or info requested or "
            "approved");
  /* The pick and contact deadlines went with the withdrawals; the archive
     one (archive_after_days later) is all that is left. */
  char m[64];
  snprintf(m, sizeof m, "archive|%s", a);
  ck_assert_int_eq(redis_int("ZCARD gm:{finance:%s}:dl", a), 1);
  ck_assert_int_ge(redis_int2("ZSCORE gm:{finance:%s}:dl %s", a, m), 0);
  snprintf(m, sizeof m, "archive|%s", b);
  ck_assert_int_eq(redis_int("ZCARD gm:{finance:%s}:dl", b), 1);
  ck_assert_int_ge(redis_int2("ZSCORE gm:{finance:%s}:dl %s", b, m), 0);
  ck_assert_int_eq(ft_ledger_wait("SELECT count(*) FROM finance_referrals"
                                  " WHERE state = 9",
                                  2),
                   2);
}
END_TEST

/* A bank's staff change: the centre unlinks a member, and the bank's
   referrals stay the bank's (another member acts on them). Unlinking the
   last member holding the bank role tells the centre which referrals now
   have nobody to act on them while their deadlines run; the deadline runs
   on, and its miss is the bank's. */
START_TEST(unlinking_the_last_staff_member_names_the_bank_s_referrals) {
  Gm__Finance__LinkRequest link = GM__FINANCE__LINK_REQUEST__INIT;
  Gm__Finance__ContactRequest ct = GM__FINANCE__CONTACT_REQUEST__INIT;
  char id[32];
  const char *more[] = {"abc2", "abc3"};
  for (size_t i = 0; i < 2; i++) {
    ft_register(more[i], "bank");
    link.participant = (char *)more[i];
    link.bank = "abc";
    ft_free(ft_ok(FT_CENTRE, "bank.link", &link.base));
    link.participant = "";
    ft_free(ft_ok(more[i], "bank.link", &link.base));
  }
  ft_copy_id(id, ft_refer("acme", AMOUNT, 36, 0));
  ft_free(ft_claim("abc1", id));
  Gm__Finance__Referral *r = ft_pick("acme", id, "abc");
  int64_t due = r->contact_due_ms;
  ft_free(r);
  /* abc1, who claimed it, leaves: abc2 is still there. */
  link.participant = "abc1";
  link.bank = "";
  Gm__Finance__Bank *b =
      (Gm__Finance__Bank *)ft_ok(FT_CENTRE, "bank.link", &link.base);
  ck_assert_str_eq(b->id, ""); /* unlinked, as a client before `left` reads */
  ck_assert_ptr_nonnull(b->left);
  ck_assert_str_eq(b->left->id, "abc");
  ck_assert_int_eq(b->left->n_members, 2);
  ck_assert_str_eq(b->left->members[0], "abc2");
  ck_assert_int_eq(b->left->n_unstaffed, 0);
  ck_assert_int_eq(b->left->unstaffed_total, 0);
  ft_free(b);
  ct.id = id;
  ft_expect("abc1", "referral.contact", &ct.base, GM__STATUS__PERMISSION_DENIED,
            "participant abc1 acts for no bank");
  r = ft_get("abc2", id);
  ck_assert_int_eq(r->access, GM__FINANCE__ACCESS__ACCESS_FULL);
  ft_free(r);
  /* abc3 is registered again without the bank role, and abc2 leaves:
     nobody can act for abc, and the centre is told what it holds and when
     its deadline falls. */
  ft_register("abc3", "enterprise");
  link.participant = "abc2";
  b = (Gm__Finance__Bank *)ft_ok(FT_CENTRE, "bank.link", &link.base);
  ck_assert_ptr_nonnull(b->left);
  ck_assert_str_eq(b->left->id, "abc");
  ck_assert_int_eq(b->left->n_members, 1);
  ck_assert_int_eq(b->left->n_inactive, 1);
  ck_assert_str_eq(b->left->inactive[0], "abc3");
  ck_assert_int_eq(b->left->unstaffed_total, 1);
  ck_assert_int_eq(b->left->n_unstaffed, 1);
  ck_assert_str_eq(b->left->unstaffed[0]->relation, "held");
  ck_assert_str_eq(b->left->unstaffed[0]->referral->id, id);
  ck_assert_int_eq(b->left->unstaffed[0]->referral->contact_due_ms, due);
  ft_free(b);
  /* Unlinking one who acts for no bank names none. */
  b = (Gm__Finance__Bank *)ft_ok(FT_CENTRE, "bank.link", &link.base);
  ck_assert_ptr_null(b->left);
  ft_free(b);
  /* The deadline runs on: the miss is abc's, the referral back in the
     pool. */
  ft_clock(due + 1000);
  ck_assert_int_eq(ft_wait_state(id, GM__FINANCE__STATE__STATE_OPEN),
                   GM__FINANCE__STATE__STATE_OPEN);
  ck_assert_int_eq(ft_ledger_wait("SELECT count(*) FROM finance_breaches"
                                  " WHERE bank = 'abc'",
                                  1),
                   1);
}
END_TEST

/* The unlink of a bank's last staff member is written before the bank's
   queue is read for the warning: a read that fails then (a cluster
   failover; here the queue's key made the wrong type, so Redis refuses the
   read) answers the unlink's success, with the list said to be unknown,
   not an error for a change that was made. */
START_TEST(an_unlink_whose_queue_read_fails_still_answers_it_was_made) {
  Gm__Finance__LinkRequest link = GM__FINANCE__LINK_REQUEST__INIT;
  Gm__Finance__ContactRequest ct = GM__FINANCE__CONTACT_REQUEST__INIT;
  char id[32];
  ft_copy_id(id, ft_refer("acme", AMOUNT, 36, 0));
  ft_free(ft_claim("abc1", id));
  ft_free(ft_pick("acme", id, "abc"));
  redisContext *c = gm_test_redis_connect(ft_redis);
  freeReplyObject(gm_test_redis_cmd(c,
                                    "RENAME gm:{finance:b:abc}:q "
                                    "gm:{finance:b:abc}:q.kept"));
  freeReplyObject(gm_test_redis_cmd(c, "SET gm:{finance:b:abc}:q broken"));
  link.participant = "abc1";
  link.bank = "";
  Gm__Finance__Bank *b =
      (Gm__Finance__Bank *)ft_call(FT_CENTRE, "bank.link", &link.base);
  ck_assert_msg(b, "the unlink answered an error: %s", ft_message);
  ck_assert_ptr_nonnull(b->left);
  ck_assert_str_eq(b->left->id, "abc");
  ck_assert_int_eq(b->left->n_members, 0);
  ck_assert_int_eq(b->left->n_unstaffed, 0);
  ck_assert_msg(
      strstr(b->left->unstaffed_unread, "the unlink was made") &&
          strstr(b->left->unstaffed_unread, "gm finance queue --bank abc"),
      "%s", b->left->unstaffed_unread);
  ft_free(b);
  /* It was made: abc1 acts for no bank. */
  ct.id = id;
  ft_expect("abc1", "referral.contact", &ct.base, GM__STATUS__PERMISSION_DENIED,
            "participant abc1 acts for no bank");
  /* The queue back, the listing the warning names answers. */
  freeReplyObject(gm_test_redis_cmd(c, "DEL gm:{finance:b:abc}:q"));
  freeReplyObject(gm_test_redis_cmd(c,
                                    "RENAME gm:{finance:b:abc}:q.kept "
                                    "gm:{finance:b:abc}:q"));
  redisFree(c);
  ck_assert_str_eq(ft_relation("abc", id), "held");
}
END_TEST

/* The enterprise's consent ends with its withdrawal for the banks that
   only claimed: before the pick every claimant loses access, told why
   without being told the state; the bank it picked keeps reading what it
   was given for its review (archived too: test_archive), but no longer its
   contact person, personal information given under the consent withdrawn;
   the enterprise and the centre still read it. */
START_TEST(a_withdrawal_ends_the_claimants_access_not_the_picked_bank_s) {
  Gm__Finance__TextRequest w = GM__FINANCE__TEXT_REQUEST__INIT;
  Gm__Finance__ReferralRequest g = GM__FINANCE__REFERRAL_REQUEST__INIT;
  char a[32], b[32];
  ft_copy_id(a, ft_refer("acme", AMOUNT, 36, 1));
  ft_copy_id(b, ft_refer("acme", AMOUNT, 36, 1));
  ft_free(ft_claim("boc1", a));
  ft_free(ft_claim("icbc1", a));
  w.id = a;
  w.text = "we withdraw our consent";
  ft_free(ft_ok("acme", "referral.withdraw", &w.base));
  g.id = a;
  ft_expect("boc1", "referral.get", &g.base, GM__STATUS__PERMISSION_DENIED,
            "its claimants until the pick (none once it is withdrawn or "
            "expires unpicked)");
  ft_expect("icbc1", "referral.get", &g.base, GM__STATUS__PERMISSION_DENIED,
            "your bank icbc has no access");
  /* Picked and under review, then withdrawn: the bank picked still reads
     it, who included, but not the contact; the other claimant nothing. */
  ft_free(ft_claim("boc1", b));
  ft_free(ft_claim("icbc1", b));
  ft_free(ft_pick("acme", b, "icbc"));
  Gm__Finance__Referral *r = ft_contact("icbc1", b);
  ck_assert_str_eq(r->enterprise->contact, "Li Wei +86 572 000 0000");
  ck_assert(!r->contact_withheld);
  ft_free(r);
  w.id = b;
  ft_free(ft_ok("acme", "referral.withdraw", &w.base));
  r = ft_get("icbc1", b);
  ck_assert_int_eq(r->state, GM__FINANCE__STATE__STATE_WITHDRAWN);
  ck_assert_int_eq(r->access, GM__FINANCE__ACCESS__ACCESS_FULL);
  ck_assert_str_eq(r->enterprise->name, "acme Green Energy Co");
  ck_assert_str_eq(r->enterprise->contact, "");
  ck_assert(r->contact_withheld);
  ck_assert_int_gt(r->contacted_ms, 0);
  ft_free(r);
  const char *readers[] = {"acme", FT_CENTRE};
  for (int i = 0; i < 2; i++) {
    r = ft_get(readers[i], b);
    ck_assert_str_eq(r->enterprise->contact, "Li Wei +86 572 000 0000");
    ck_assert(!r->contact_withheld);
    ft_free(r);
  }
  g.id = b;
  ft_expect("boc1", "referral.get", &g.base, GM__STATUS__PERMISSION_DENIED,
            "your bank boc has no access");
}
END_TEST

START_TEST(views_show_each_reader_what_it_may_see) {
  Gm__Finance__Referral *r = ft_refer("acme", AMOUNT, 36, 1);
  char id[32];
  snprintf(id, sizeof id, "%s", r->id);
  ft_free(r);
  /* Before a claim: the summary, nothing that says who. */
  r = ft_get("boc1", id);
  ck_assert_int_eq(r->access, GM__FINANCE__ACCESS__ACCESS_SUMMARY);
  ck_assert_int_eq(r->amount, 0);
  ck_assert_int_eq(r->amount_band_min, 500000000);
  ck_assert_int_eq(r->amount_band_max, 1000000000);
  ck_assert_str_eq(r->region, "330500");
  ck_assert_str_eq(r->description, "");
  ck_assert_ptr_null(r->enterprise);
  /* It reached the bank because the enterprise consented to share it. */
  ck_assert(r->consent_share);
  ft_free(r);
  Gm__Finance__ReferralRequest g = GM__FINANCE__REFERRAL_REQUEST__INIT;
  g.id = id;
  ft_expect("nofit1", "referral.get", &g.base, GM__STATUS__PERMISSION_DENIED,
            "your bank nofit has no access");
  ft_expect("other", "referral.get", &g.base, GM__STATUS__PERMISSION_DENIED,
            "only the enterprise that referred");
  /* Claimed with consent to share who: the claimant sees who. */
  r = ft_claim("boc1", id);
  ck_assert_int_eq(r->access, GM__FINANCE__ACCESS__ACCESS_FULL);
  ck_assert_str_eq(r->enterprise->name, "acme Green Energy Co");
  ck_assert_int_eq(r->n_claimants, 1); /* itself only */
  ft_free(r);
  ft_free(ft_claim("icbc1", id));
  r = ft_get("acme", id);
  ck_assert_int_eq(r->n_claimants, 2);
  ft_free(r);
  ft_free(ft_pick("acme", id, "icbc"));
  ft_expect("boc1", "referral.get", &g.base, GM__STATUS__PERMISSION_DENIED,
            "then only the bank picked");
  r = ft_get(FT_CENTRE, id);
  ck_assert_int_eq(r->access, GM__FINANCE__ACCESS__ACCESS_FULL);
  ft_free(r);
  /* The enterprise's list. */
  Gm__Finance__ReferralsRequest l = GM__FINANCE__REFERRALS_REQUEST__INIT;
  Gm__Finance__ReferralList *list =
      (Gm__Finance__ReferralList *)ft_ok("acme", "referral.list", &l.base);
  ck_assert_int_eq(list->total, 1);
  ck_assert_str_eq(list->referrals[0]->id, id);
  ft_free(list);
  l.enterprise = "acme";
  ft_expect("other", "referral.list", &l.base, GM__STATUS__PERMISSION_DENIED,
            "only the centre lists another enterprise's referrals");
}
END_TEST

static Gm__Finance__Bank *find_bank(Gm__Finance__BankList *l, const char *id) {
  for (size_t i = 0; i < l->n_banks; i++)
    if (!strcmp(l->banks[i]->id, id)) return l->banks[i];
  ck_abort_msg("no bank %s in the list", id);
  return NULL;
}

/* The due ms of the offer deadline of `who`, 0 when there is none. */
static long long offer_deadline(const char *who) {
  redisContext *c = gm_test_redis_connect(ft_redis);
  redisReply *r =
      gm_test_redis_cmd(c, "ZSCORE gm:{finance:dir}:dl offer|%s", who);
  long long v = r->type == REDIS_REPLY_STRING ? strtoll(r->str, NULL, 10) : 0;
  freeReplyObject(r);
  redisFree(c);
  return v;
}

/* A link offer is listed (who, when, by whom, until when), expires after
   link_offer_days (7) and is then removed by its deadline, can be
   withdrawn, and an expired one cannot be joined. */
START_TEST(link_offers_are_listed_expire_and_can_be_withdrawn) {
  int64_t t0 = ft_at(FT_MONDAY, 10, 0), week = INT64_C(7) * 86400000;
  Gm__Finance__LinkRequest link = GM__FINANCE__LINK_REQUEST__INIT;
  Gm__Finance__BanksRequest br = GM__FINANCE__BANKS_REQUEST__INIT;
  link.participant = "drifter";
  link.bank = "abc";
  Gm__Finance__Bank *b =
      (Gm__Finance__Bank *)ft_ok(FT_CENTRE, "bank.link", &link.base);
  ck_assert_int_eq(b->n_offers, 1);
  ft_free(b);
  Gm__Finance__BankList *l =
      (Gm__Finance__BankList *)ft_ok(FT_CENTRE, "bank.list", &br.base);
  b = find_bank(l, "abc");
  ck_assert_int_eq(b->n_members, 1);
  ck_assert_int_eq(b->n_offers, 1);
  ck_assert_str_eq(b->offers[0]->participant, "drifter");
  ck_assert_str_eq(b->offers[0]->by, FT_CENTRE);
  ck_assert_int_eq(b->offers[0]->offered_ms, t0);
  ck_assert_int_eq(b->offers[0]->expires_ms, t0 + week);
  ck_assert_int_eq(find_bank(l, "icbc")->n_offers, 0);
  ft_free(l);
  ck_assert_int_eq(offer_deadline("drifter"), t0 + week);
  /* Who works for a bank, and who is offered, is the centre's business. */
  l = (Gm__Finance__BankList *)ft_ok("abc1", "bank.list", &br.base);
  ck_assert_int_eq(find_bank(l, "abc")->n_offers, 0);
  ck_assert_int_eq(find_bank(l, "abc")->n_members, 0);
  ft_free(l);

  /* Withdrawn: nothing left of it in Redis, and it cannot be joined. */
  Gm__Finance__LinkRequest wd = GM__FINANCE__LINK_REQUEST__INIT;
  wd.participant = "drifter";
  wd.withdraw = 1;
  ft_expect("drifter", "bank.link", &wd.base, GM__STATUS__PERMISSION_DENIED,
            "only the centre unlinks a bank's staff or withdraws a link offer");
  ft_free(ft_ok(FT_CENTRE, "bank.link", &wd.base));
  ck_assert_int_eq(redis_int("HEXISTS gm:{finance:dir}:inv %s", "drifter"), 0);
  ck_assert_int_eq(offer_deadline("drifter"), 0);
  ft_expect(FT_CENTRE, "bank.link", &wd.base, GM__STATUS__NOT_FOUND,
            "there is no pending offer to drifter");
  Gm__Finance__LinkRequest join = GM__FINANCE__LINK_REQUEST__INIT;
  join.bank = "abc";
  ft_expect("drifter", "bank.link", &join.base, GM__STATUS__FAILED_PRECONDITION,
            "the centre has no pending offer to link you (drifter)");

  /* Expired before its deadline fired (deadlines may fire late): the
     join says so and how to get a new one; the next link call removes
     it. */
  ft_free(ft_ok(FT_CENTRE, "bank.link", &link.base));
  ck_assert_int_eq(redis_int("ZREM gm:{finance:dir}:dl %s", "offer|drifter"),
                   1);
  ft_clock(t0 + week);
  ft_expect("drifter", "bank.link", &join.base, GM__STATUS__FAILED_PRECONDITION,
            "the centre's offer to link you (drifter) to bank abc expired at "
            "2026-03-09 10:00 Asia/Shanghai (an offer lasts 7 days); ask the "
            "centre for a new one: gm finance bank link drifter abc");
  l = (Gm__Finance__BankList *)ft_ok(FT_CENTRE, "bank.list", &br.base);
  ck_assert_int_eq(find_bank(l, "abc")->n_offers, 0);
  ft_free(l);
  link.participant = "ghost";
  ft_free(ft_ok(FT_CENTRE, "bank.link", &link.base));
  ck_assert_int_eq(redis_int("HEXISTS gm:{finance:dir}:inv %s", "drifter"), 0);

  /* The deadline removes an expired offer without anyone calling. */
  ft_clock(t0 + 2 * week + 1);
  for (int i = 0; i < 100 && redis_int("HLEN gm:{finance:dir}:inv", "") > 0;
       i++)
    ft_nap(50);
  ck_assert_int_eq(redis_int("HEXISTS gm:{finance:dir}:inv %s", "ghost"), 0);
  ck_assert_int_eq(offer_deadline("ghost"), 0);
  /* A new offer runs from now, and is joined. */
  link.participant = "drifter";
  ft_free(ft_ok(FT_CENTRE, "bank.link", &link.base));
  b = (Gm__Finance__Bank *)ft_ok("drifter", "bank.link", &join.base);
  ck_assert_int_eq(b->n_members, 2);
  ck_assert_int_eq(b->n_offers, 0);
  ft_free(b);
  ck_assert_int_eq(redis_int("HLEN gm:{finance:dir}:inv", ""), 0);
  ck_assert_int_eq(offer_deadline("drifter"), 0);
}
END_TEST

/* Sets participant who's offer in Redis to `v`, as another broker would
   have stored it. */
static void offer_store(const char *who, const char *v) {
  redisContext *c = gm_test_redis_connect(ft_redis);
  freeReplyObject(
      gm_test_redis_cmd(c, "HSET gm:{finance:dir}:inv %s %s", who, v));
  redisFree(c);
}

/* Participant who's offer as stored in Redis ("" when none; static). */
static const char *offer_stored(const char *who) {
  static char buf[256];
  redisContext *c = gm_test_redis_connect(ft_redis);
  redisReply *r = gm_test_redis_cmd(c, "HGET gm:{finance:dir}:inv %s", who);
  snprintf(buf, sizeof buf, "%s", r->type == REDIS_REPLY_STRING ? r->str : "");
  freeReplyObject(r);
  redisFree(c);
  return buf;
}

/* Polls (10 s) until who's offer deadline is no longer at `was`; returns
   the last. */
static long long offer_deadline_moved(const char *who, long long was) {
  long long v = was;
  for (int i = 0; i < 200 && (v = offer_deadline(who)) == was; i++) ft_nap(50);
  return v;
}

/* Polls (10 s) until who has no offer in Redis; returns 1 when gone. */
static int offer_gone(const char *who) {
  for (int i = 0; i < 200; i++) {
    if (redis_int("HEXISTS gm:{finance:dir}:inv %s", who) == 0) return 1;
    ft_nap(50);
  }
  return 0;
}

/* The offer of `who` to `bank` in a centre's listing, or NULL (copied into
 *o). */
static int listed_offer(const char *bank, const char *who,
                        Gm__Finance__LinkOffer *o) {
  Gm__Finance__BanksRequest br = GM__FINANCE__BANKS_REQUEST__INIT;
  Gm__Finance__BankList *l =
      (Gm__Finance__BankList *)ft_ok(FT_CENTRE, "bank.list", &br.base);
  Gm__Finance__Bank *b = find_bank(l, bank);
  int found = 0;
  for (size_t i = 0; i < b->n_offers; i++)
    if (!strcmp(b->offers[i]->participant, who)) {
      o->offered_ms = b->offers[i]->offered_ms;
      o->expires_ms = b->offers[i]->expires_ms;
      o->by = b->offers[i]->by[0] ? FT_CENTRE : ""; /* only "" or centre */
      found = 1;
    }
  ft_free(l);
  return found;
}

/* An offer deadline that fires while the clock is before the offer's
   stored expiry (here the offer as a broker one hour ahead of this one
   stored it) sets itself again at the expiry instead of being dropped, and
   the offer expires then. */
START_TEST(an_offer_deadline_fired_early_fires_again_at_the_expiry) {
  int64_t t0 = ft_at(FT_MONDAY, 10, 0), week = INT64_C(7) * 86400000,
          hour = INT64_C(3600000);
  Gm__Finance__LinkRequest link = GM__FINANCE__LINK_REQUEST__INIT;
  link.participant = "drifter";
  link.bank = "abc";
  ft_free(ft_ok(FT_CENTRE, "bank.link", &link.base));
  ck_assert_int_eq(offer_deadline("drifter"), t0 + week);
  char v[128];
  snprintf(v, sizeof v, "abc|%lld|%lld|%s", (long long)(t0 + hour),
           (long long)(t0 + week + hour), FT_CENTRE);
  offer_store("drifter", v);
  /* The deadline fires at t0 + week, an hour before the stored expiry. */
  ft_clock(t0 + week);
  ck_assert_int_eq(offer_deadline_moved("drifter", t0 + week),
                   t0 + week + hour);
  ck_assert_str_eq(offer_stored("drifter"), v);
  Gm__Finance__LinkOffer o = GM__FINANCE__LINK_OFFER__INIT;
  ck_assert(listed_offer("abc", "drifter", &o));
  ck_assert_int_eq(o.expires_ms, t0 + week + hour);
  /* Past the expiry it fires again and removes the offer. */
  ft_clock(t0 + week + hour);
  ck_assert(offer_gone("drifter"));
  ck_assert_int_eq(offer_deadline_moved("drifter", t0 + week + hour), 0);
  ck_assert(!listed_offer("abc", "drifter", &o));
  Gm__Finance__LinkRequest join = GM__FINANCE__LINK_REQUEST__INIT;
  join.bank = "abc";
  ft_expect("drifter", "bank.link", &join.base, GM__STATUS__FAILED_PRECONDITION,
            "the centre has no pending offer to link you (drifter)");
}
END_TEST

/* Rolling upgrade: an offer an older release stored (the bank alone, git
   29b2a81^: HSET inv <who> <bank>, no deadline) is pending on this one: a
   link call or a listing re-stamps it (expiry link_offer_days from then,
   its deadline set), it can be joined, and it expires like any other. An
   old broker's offer over a new one (its deadline left behind) is
   re-stamped when that deadline fires. */
START_TEST(an_offer_an_older_release_stored_is_pending_and_re_stamped) {
  int64_t t0 = ft_at(FT_MONDAY, 10, 0), week = INT64_C(7) * 86400000,
          hour = INT64_C(3600000);
  char want[128];
  offer_store("drifter", "abc");
  offer_store("ghost", "abc");
  /* Joined: pending, not expired. The link call re-stamps the others. */
  ft_clock(t0 + hour);
  Gm__Finance__LinkRequest join = GM__FINANCE__LINK_REQUEST__INIT;
  join.bank = "abc";
  Gm__Finance__Bank *b =
      (Gm__Finance__Bank *)ft_ok("drifter", "bank.link", &join.base);
  ck_assert_int_eq(b->n_members, 2);
  ft_free(b);
  ck_assert_int_eq(redis_int("HEXISTS gm:{finance:dir}:inv %s", "drifter"), 0);
  ck_assert_int_eq(offer_deadline("drifter"), 0);
  snprintf(want, sizeof want, "abc|0|%lld|", (long long)(t0 + hour + week));
  ck_assert_str_eq(offer_stored("ghost"), want);
  ck_assert_int_eq(offer_deadline("ghost"), t0 + hour + week);

  /* Listed: pending (offered when and by whom not kept), re-stamped by the
     listing; a second listing changes nothing. */
  offer_store("stray", "abc");
  ft_clock(t0 + 2 * hour);
  Gm__Finance__LinkOffer o = GM__FINANCE__LINK_OFFER__INIT;
  ck_assert(listed_offer("abc", "stray", &o));
  ck_assert_int_eq(o.offered_ms, 0);
  ck_assert_str_eq(o.by, "");
  ck_assert_int_eq(o.expires_ms, t0 + 2 * hour + week);
  snprintf(want, sizeof want, "abc|0|%lld|", (long long)(t0 + 2 * hour + week));
  ck_assert_str_eq(offer_stored("stray"), want);
  ck_assert_int_eq(offer_deadline("stray"), t0 + 2 * hour + week);
  ft_clock(t0 + 3 * hour);
  ck_assert(listed_offer("abc", "stray", &o));
  ck_assert_int_eq(o.expires_ms, t0 + 2 * hour + week);
  ck_assert(listed_offer("abc", "ghost", &o));
  ck_assert_int_eq(o.expires_ms, t0 + hour + week);

  /* An old broker offers again over this one's offer: the bank alone, and
     the deadline this one set stays. */
  Gm__Finance__LinkRequest link = GM__FINANCE__LINK_REQUEST__INIT;
  link.participant = "wanderer";
  link.bank = "abc";
  ft_free(ft_ok(FT_CENTRE, "bank.link", &link.base));
  ck_assert_int_eq(offer_deadline("wanderer"), t0 + 3 * hour + week);
  offer_store("wanderer", "abc");

  /* They expire by their deadlines. */
  ft_clock(t0 + hour + week);
  ck_assert(offer_gone("ghost"));
  ck_assert_str_eq(offer_stored("stray"), want);
  ft_clock(t0 + 2 * hour + week);
  ck_assert(offer_gone("stray"));
  ck_assert_int_eq(offer_deadline("stray"), 0);
  /* wanderer's deadline re-stamps the old broker's offer: a week from
     then. */
  ft_clock(t0 + 3 * hour + week);
  ck_assert_int_eq(offer_deadline_moved("wanderer", t0 + 3 * hour + week),
                   t0 + 3 * hour + 2 * week);
  snprintf(want, sizeof want, "abc|0|%lld|",
           (long long)(t0 + 3 * hour + 2 * week));
  ck_assert_str_eq(offer_stored("wanderer"), want);
  ft_clock(t0 + 3 * hour + 2 * week);
  ck_assert(offer_gone("wanderer"));
  ck_assert_int_eq(offer_deadline_moved("wanderer", t0 + 3 * hour + 2 * week),
                   0);
}
END_TEST

/* A member registered again without the bank role stays a member (the
   centre unlinks it) and is listed as inactive. */
START_TEST(a_member_without_the_bank_role_is_listed_inactive) {
  Gm__Finance__BanksRequest br = GM__FINANCE__BANKS_REQUEST__INIT;
  ft_register("abc1", "enterprise");
  Gm__Finance__BankList *l =
      (Gm__Finance__BankList *)ft_ok(FT_CENTRE, "bank.list", &br.base);
  Gm__Finance__Bank *b = find_bank(l, "abc");
  ck_assert_int_eq(b->n_members, 1);
  ck_assert_str_eq(b->members[0], "abc1");
  ck_assert_int_eq(b->n_inactive, 1);
  ck_assert_str_eq(b->inactive[0], "abc1");
  ck_assert_int_eq(find_bank(l, "icbc")->n_inactive, 0);
  ft_free(l);
  ck_assert_int_eq(redis_int("SISMEMBER gm:{finance:dir}:bm:abc %s", "abc1"),
                   1);
  ft_register("abc1", "bank");
  l = (Gm__Finance__BankList *)ft_ok(FT_CENTRE, "bank.list", &br.base);
  ck_assert_int_eq(find_bank(l, "abc")->n_inactive, 0);
  ft_free(l);
}
END_TEST

/* An approval stored before approve checked its rules (more than asked,
   a rate outside the product's range) is not funded: the bank approves
   again within them, then funds. */
START_TEST(an_approval_that_breaks_the_rules_is_not_funded) {
  Gm__Finance__Referral *r = ft_refer("acme", AMOUNT, 36, 0);
  char id[16];
  snprintf(id, sizeof id, "%s", r->id);
  ft_free(r);
  ft_free(ft_claim("icbc1", id));
  ft_free(ft_pick("acme", id, "icbc"));
  ft_free(ft_contact("icbc1", id));
  ft_free(ft_approve("icbc1", id, AMOUNT, 345, 36));
  /* An approval of yesterday's rules: more than asked. */
  char key[64], v[32];
  snprintf(key, sizeof key, "gm:{finance:%s}:r", id);
  snprintf(v, sizeof v, "%lld", (long long)AMOUNT + 100);
  redisContext *c = gm_test_redis_connect(ft_redis);
  freeReplyObject(gm_test_redis_cmd(c, "HSET %s aamt %s", key, v));
  Gm__Finance__FundRequest f = GM__FINANCE__FUND_REQUEST__INIT;
  f.id = id;
  f.amount = AMOUNT;
  ft_expect("icbc1", "referral.fund", &f.base, GM__STATUS__FAILED_PRECONDITION,
            "breaks the rules an approval follows: its amount 5000001.00 CNY "
            "is more than the enterprise asked for, 5000000.00 CNY; approve "
            "it again within them");
  ck_assert_str_eq(ft_redis_field(id, "st"), "6");
  /* A rate outside icbc-solar's 3.00-4.50%. */
  freeReplyObject(gm_test_redis_cmd(c, "HSET %s aamt %s", key, "500000000"));
  freeReplyObject(gm_test_redis_cmd(c, "HSET %s arate %s", key, "600"));
  redisFree(c);
  ft_expect("icbc1", "referral.fund", &f.base, GM__STATUS__FAILED_PRECONDITION,
            "its rate 6.00% is outside 3.00%-4.50%, the range product "
            "icbc-solar");
  /* A tenor outside icbc-solar's months (approve refuses one since
     session 19; an approval stored before that is not funded). */
  c = gm_test_redis_connect(ft_redis);
  freeReplyObject(gm_test_redis_cmd(c, "HSET %s arate %s", key, "345"));
  freeReplyObject(gm_test_redis_cmd(c, "HSET %s aten %s", key, "360"));
  redisFree(c);
  ft_expect("icbc1", "referral.fund", &f.base, GM__STATUS__FAILED_PRECONDITION,
            "its tenor 360 months is outside 12-60 months, the range product "
            "icbc-solar");
  ck_assert_str_eq(ft_redis_field(id, "st"), "6");
  /* A valid approval is not changed; a broken one is approved again. */
  r = ft_approve("icbc1", id, AMOUNT, 400, 36);
  ck_assert_int_eq(r->approved_rate_bp, 400);
  ft_free(r);
  Gm__Finance__ApproveRequest ap = GM__FINANCE__APPROVE_REQUEST__INIT;
  ap.id = id;
  ap.amount = AMOUNT;
  ap.rate_bp = 350;
  ap.tenor_months = 36;
  ft_expect("icbc1", "referral.approve", &ap.base,
            GM__STATUS__FAILED_PRECONDITION,
            "is approved (5000000.00 CNY at 4.00% for 36 months): an approval "
            "is not changed");
  r = ft_fund("icbc1", id, AMOUNT, NULL);
  ck_assert_int_eq(r->state, GM__FINANCE__STATE__STATE_FUNDED);
  ft_free(r);
  ck_assert_int_eq(ft_ledger_wait("SELECT count(*) FROM finance_transitions "
                                  "WHERE transition = 'approve'",
                                  2),
                   2);
}
END_TEST

/* Amounts in a currency's ISO 4217 decimals: a yen has no fraction. */
START_TEST(amounts_have_the_currency_decimals) {
  Gm__Finance__Product p = GM__FINANCE__PRODUCT__INIT;
  Gm__Finance__CreateProductRequest pr =
      GM__FINANCE__CREATE_PRODUCT_REQUEST__INIT;
  char *cls[] = {"3"};
  p.id = "boc-yen";
  p.bank = "boc";
  p.name = "yen green loan";
  p.currency = "JPY";
  p.amount_min = 150; /* 1.50 yen */
  p.amount_max = 100000000000;
  p.tenor_min_months = 1;
  p.tenor_max_months = 120;
  p.rate_min_bp = 100;
  p.rate_max_bp = 300;
  p.fee_bp = 50;
  p.classes = cls;
  p.n_classes = 1;
  pr.product = &p;
  ft_expect(FT_CENTRE, "product.create", &pr.base, GM__STATUS__INVALID_ARGUMENT,
            "the smallest amount 1.50 JPY has more decimals than JPY has (0, "
            "ISO 4217); give a whole amount in JPY");
  p.amount_min = 100;
  ft_free(ft_ok(FT_CENTRE, "product.create", &pr.base));
  Gm__Finance__ReferRequest r = refer_req();
  r.currency = "JPY";
  r.amount = 450000050;
  ft_expect("acme", "referral.create", &r.base, GM__STATUS__INVALID_ARGUMENT,
            "the amount 4500000.50 JPY has more decimals than JPY has (0, ISO "
            "4217); give a whole amount in JPY");
  ck_assert_int_eq(redis_int("EXISTS gm:{finance:dir}:seq%s", ""), 0);
  r.amount = 450000000;
  Gm__Finance__Referral *ref =
      (Gm__Finance__Referral *)ft_ok("acme", "referral.create", &r.base);
  char id[16];
  snprintf(id, sizeof id, "%s", ref->id);
  ft_free(ref);
  ft_free(ft_claim("boc1", id));
  ft_free(ft_pick("acme", id, "boc"));
  ft_free(ft_contact("boc1", id));
  Gm__Finance__ApproveRequest ap = GM__FINANCE__APPROVE_REQUEST__INIT;
  ap.id = id;
  ap.amount = 400000001;
  ap.rate_bp = 200;
  ap.tenor_months = 36;
  ft_expect("boc1", "referral.approve", &ap.base, GM__STATUS__INVALID_ARGUMENT,
            "the approved amount 4000000.01 JPY has more decimals than JPY "
            "has (0, ISO 4217); give a whole amount in JPY");
  ap.amount = 450000100;
  ft_expect("boc1", "referral.approve", &ap.base, GM__STATUS__INVALID_ARGUMENT,
            "the approved amount 4500001 JPY is more than the enterprise asked "
            "for, 4500000 JPY");
  ft_free(ft_approve("boc1", id, 400000000, 200, 36));
  Gm__Finance__FundRequest f = GM__FINANCE__FUND_REQUEST__INIT;
  f.id = id;
  f.amount = 300000010;
  ft_expect("boc1", "referral.fund", &f.base, GM__STATUS__INVALID_ARGUMENT,
            "the funded amount 3000000.10 JPY has more decimals than JPY has");
  f.amount = 400000100;
  ft_expect("boc1", "referral.fund", &f.base, GM__STATUS__INVALID_ARGUMENT,
            "the funded amount 4000001 JPY is more than the approved 4000000 "
            "JPY");
  ft_free(ft_fund("boc1", id, 400000000, NULL));
}
END_TEST

/* [market.finance] link_offer_days sets how long an offer lasts. */
START_TEST(link_offer_days_is_a_setting) {
  int64_t t0 = ft_at(FT_MONDAY, 10, 0), days2 = INT64_C(2) * 86400000;
  ft_start("link_offer_days = 2", t0);
  ft_bank("abc", "abc1");
  ft_register("drifter", "bank");
  Gm__Finance__LinkRequest link = GM__FINANCE__LINK_REQUEST__INIT;
  link.participant = "drifter";
  link.bank = "abc";
  Gm__Finance__Bank *b =
      (Gm__Finance__Bank *)ft_ok(FT_CENTRE, "bank.link", &link.base);
  ck_assert_int_eq(b->n_offers, 1);
  ck_assert_int_eq(b->offers[0]->expires_ms, t0 + days2);
  ft_free(b);
  ck_assert_int_eq(offer_deadline("drifter"), t0 + days2);
  ck_assert_int_eq(redis_int("ZREM gm:{finance:dir}:dl %s", "offer|drifter"),
                   1);
  ft_clock(t0 + days2);
  Gm__Finance__LinkRequest join = GM__FINANCE__LINK_REQUEST__INIT;
  join.bank = "abc";
  ft_expect("drifter", "bank.link", &join.base, GM__STATUS__FAILED_PRECONDITION,
            "expired at 2026-03-04 10:00 Asia/Shanghai (an offer lasts 2 "
            "days)");
  ft_stop();
}
END_TEST

int main(void) {
  Suite *s = suite_create("finance flow");
  TCase *tc = tcase_create("flow");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, directory_refusals_say_what_to_fix);
  tcase_add_test(tc, a_credit_code_is_one_enterprise_profile);
  tcase_add_test(tc, a_stale_credit_code_claim_is_taken_over);
  tcase_add_test(tc, a_retried_registration_takes_no_claim_on_a_stale_read);
  tcase_add_test(tc,
                 a_retry_after_its_claim_was_taken_writes_no_second_profile);
  tcase_add_test(tc, only_a_bank_role_holder_is_linked_and_never_moved);
  tcase_add_test(tc, link_offers_are_listed_expire_and_can_be_withdrawn);
  tcase_add_test(tc, an_offer_deadline_fired_early_fires_again_at_the_expiry);
  tcase_add_test(tc,
                 an_offer_an_older_release_stored_is_pending_and_re_stamped);
  tcase_add_test(tc, a_member_without_the_bank_role_is_listed_inactive);
  tcase_add_test(tc,
                 unlinking_the_last_staff_member_names_the_bank_s_referrals);
  tcase_add_test(tc,
                 an_unlink_whose_queue_read_fails_still_answers_it_was_made);
  tcase_add_test(tc, an_approval_that_breaks_the_rules_is_not_funded);
  tcase_add_test(tc, amounts_have_the_currency_decimals);
  tcase_add_test(tc, screening_gives_every_reason_and_a_refusal_leaves_nothing);
  tcase_add_test(tc, a_referral_goes_to_the_fitting_banks_queues);
  tcase_add_test(tc, claim_pick_contact_ask_answer_approve_fund);
  tcase_add_test(tc, claims_are_refused_with_the_reason);
  tcase_add_test(tc, only_the_enterprise_picks_and_only_a_claimant);
  tcase_add_test(tc, a_refusal_does_not_say_whose_referral_it_is);
  tcase_add_test(tc, a_refusal_does_not_tell_a_bank_without_access_the_state);
  tcase_add_test(tc, only_the_holding_bank_moves_it_in_order);
  tcase_add_test(tc, the_enterprise_withdraws_any_time_before_funding);
  tcase_add_test(tc, views_show_each_reader_what_it_may_see);
  tcase_add_test(tc,
                 a_withdrawal_ends_the_claimants_access_not_the_picked_bank_s);
  suite_add_tcase(s, tc);
  TCase *set = tcase_create("settings");
  tcase_set_timeout(set, 60);
  tcase_add_test(set, link_offer_days_is_a_setting);
  suite_add_tcase(s, set);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
