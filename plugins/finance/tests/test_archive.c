/*
 * Ended referrals leave Redis: archive_after_days (here 2) after a
 * referral ended, once the ledger holds its final state, its record goes
 * to the ledger and every key of its hash tag goes (what Redis holds for
 * the tag is scanned before and after).  Reads then answer from the ledger
 * exactly as before (referral.get for each reader, referral.list), no bank
 * queue keeps it, and every change is refused naming the archive.  A
 * ledger behind Redis holds the archive back; gmd killed in the middle of
 * one finishes it once after its restart.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "harness.h"
#include "redis_fill.h"

#define T0 ft_at(FT_MONDAY, 10, 0)
#define DUE (T0 + 2 * GM_FINANCE_DAY_MS + 1000)
/* The archive waits a minute for the settler (archive.c). */
#define RETRY 61000

static void setup(void) {
  ft_start("archive_after_days = 2", T0);
  ft_bank("icbc", "icbc1");
  ft_bank("abc", "abc1");
  ft_product("icbc-p", "icbc", "3", "", 1, 100000000000, 1, 120, 80);
  ft_product("abc-p", "abc", "3", "", 1, 100000000000, 1, 120, 80);
  ft_enterprise("acme", "330502");
}

static void teardown(void) {
  ft_stop();
}

/* The referral's own keys: every key of its hash tag (SCAN) but what the
   host keeps for any tag (its outbox stream and what its retirement
   keeps, its deadlines and their claims, stored replies), which expires
   or the settler retires.  *bytes: their MEMORY USAGE. */
/* MEMORY USAGE of the host's keys of the tags tag_keys_bytes scanned but
   stored replies: outbox streams, deadlines. */
static long long host_bytes;

static long long tag_keys_bytes(const char *id, long long *bytes) {
  redisContext *c = gm_test_redis_connect(ft_redis);
  char cursor[32] = "0";
  long long n = 0;
  if (bytes) *bytes = 0;
  do {
    redisReply *r = gm_test_redis_cmd(
        c, "SCAN %s MATCH gm:{finance:%s}:* COUNT 1000", cursor, id);
    ck_assert_int_eq(r->type, REDIS_REPLY_ARRAY);
    snprintf(cursor, sizeof cursor, "%s", r->element[0]->str);
    redisReply *keys = r->element[1];
    for (size_t i = 0; i < keys->elements; i++) {
      const char *k = strchr(keys->element[i]->str, '}') + 2;
      if (!strncmp(k, "outbox", 6) || !strncmp(k, "dl", 2) ||
          !strncmp(k, "idem:", 5)) {
        if (bytes) {
          long long m = gm_test_redis_int(c, "MEMORY USAGE %s SAMPLES 0",
                                          keys->element[i]->str);
          if (strncmp(k, "idem:", 5) != 0) host_bytes += m;
        }
        continue;
      }
      n++;
      if (bytes)
        *bytes += gm_test_redis_int(c, "MEMORY USAGE %s SAMPLES 0",
                                    keys->element[i]->str);
    }
    freeReplyObject(r);
  } while (strcmp(cursor, "0") != 0);
  redisFree(c);
  return n;
}

static long long tag_keys(const char *id) {
  return tag_keys_bytes(id, NULL);
}

/* Waits (10 s) until the referral's keys are gone from Redis. */
static long long wait_gone(const char *id) {
  long long n = -1;
  for (int i = 0; i < 200 && (n = tag_keys(id)) != 0; i++) ft_nap(50);
  return n;
}

/* Waits (10 s) until the referral is marked for its archive. */
static const char *wait_marked(const char *id) {
  static char arch[32];
  arch[0] = '\0';
  for (int i = 0; i < 200 && !arch[0]; i++) {
    snprintf(arch, sizeof arch, "%s", ft_redis_field(id, "arch"));
    if (!arch[0]) ft_nap(50);
  }
  if (!arch[0]) { /* what gmd said about it */
    FILE *f = fopen(gm_test_gmd_log(ft_gmd), "r");
    char line[1024];
    while (f && fgets(line, sizeof line, f))
      if (strstr(line, id) || strstr(line, "archive") ||
          strstr(line, "deadline"))
        fprintf(stderr, "gmd: %s", line);
    if (f) fclose(f);
  }
  return arch;
}

/* Waits (10 s) until the referral's archive began: marked, or already
   gone (the settler took the record before the firing read the ledger
   again, so one firing did both steps). */
static int wait_archiving(const char *id) {
  for (int i = 0; i < 200; i++) {
    if (ft_redis_field(id, "arch")[0] || tag_keys(id) == 0) return 1;
    ft_nap(50);
  }
  return 0;
}

/* Holds the ledger's write lock (as a busy settler or another writer
   would): the settler cannot commit until ledger_unlock. */
static sqlite3 *ledger_lock(void) {
  sqlite3 *db;
  ck_assert_int_eq(sqlite3_open(gm_test_gmd_ledger(ft_gmd), &db), SQLITE_OK);
  sqlite3_busy_timeout(db, 5000);
  ck_assert_int_eq(sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL),
                   SQLITE_OK);
  return db;
}

static void ledger_unlock(sqlite3 *db) {
  ck_assert_int_eq(sqlite3_exec(db, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
  sqlite3_close(db);
}

static void withdraw(const char *id) {
  Gm__Finance__TextRequest t = GM__FINANCE__TEXT_REQUEST__INIT;
  t.id = (char *)id;
  t.text = "no longer needed";
  ft_free(ft_ok("acme", "referral.withdraw", &t.base));
}

/* A reply as bytes, to compare what a read answers before and after. */
typedef struct packed {
  size_t len;
  uint8_t buf[65536];
} packed;

static void pack_free(packed *p, ProtobufCMessage *m) {
  ck_assert_ptr_nonnull(m);
  p->len = protobuf_c_message_get_packed_size(m);
  ck_assert_uint_le(p->len, sizeof p->buf);
  protobuf_c_message_pack(m, p->buf);
  ft_free(m);
}

static void same(const packed *a, ProtobufCMessage *m, const char *what) {
  packed *b = malloc(sizeof *b);
  pack_free(b, m);
  ck_assert_msg(a->len == b->len && !memcmp(a->buf, b->buf, a->len),
                "%s answers otherwise after the archive", what);
  free(b);
}

/* A read after the archive says when it was (archived_ms); with that
   cleared it must be the read from before. */
static ProtobufCMessage *archived(ProtobufCMessage *m, int64_t when) {
  ck_assert_ptr_nonnull(m);
  if (m->descriptor == &gm__finance__referral__descriptor) {
    Gm__Finance__Referral *r = (Gm__Finance__Referral *)m;
    ck_assert_int_eq(r->archived_ms, when);
    r->archived_ms = 0;
  } else {
    Gm__Finance__ReferralList *l = (Gm__Finance__ReferralList *)m;
    for (size_t i = 0; i < l->n_referrals; i++) {
      ck_assert_int_eq(l->referrals[i]->archived_ms, when);
      l->referrals[i]->archived_ms = 0;
    }
  }
  return m;
}

static ProtobufCMessage *get(const char *as, const char *id) {
  Gm__Finance__ReferralRequest q = GM__FINANCE__REFERRAL_REQUEST__INIT;
  q.id = (char *)id;
  return ft_ok(as, "referral.get", &q.base);
}

static ProtobufCMessage *list(const char *as) {
  Gm__Finance__ReferralsRequest q = GM__FINANCE__REFERRALS_REQUEST__INIT;
  q.enterprise = (char *)"acme";
  return ft_ok(as, "referral.list", &q.base);
}

static int64_t ledger_of(const char *what, const char *id) {
  char sql[256];
  snprintf(sql, sizeof sql, "SELECT %s FROM finance_referrals WHERE id = '%s'",
           what, id);
  return ft_ledger_int(sql);
}

/* The refusals a change of an archived referral gets, changing nothing. */
static void changes_refused(const char *funded, const char *withdrawn) {
  int64_t moves = ft_ledger_int("SELECT count(*) FROM finance_transitions");
  Gm__Finance__TextRequest t = GM__FINANCE__TEXT_REQUEST__INIT;
  t.id = (char *)funded;
  t.text = "changed our mind";
  ft_expect("acme", "referral.withdraw", &t.base,
            GM__STATUS__FAILED_PRECONDITION, "was archived on 2026-03-04");
  ck_assert_msg(strstr(ft_message, "can no longer change") &&
                    strstr(ft_message, "gm finance show"),
                "%s", ft_message);
  Gm__Finance__DeclineRequest d = GM__FINANCE__DECLINE_REQUEST__INIT;
  d.id = (char *)funded;
  d.reason = GM__FINANCE__DECLINE_REASON__DECLINE_CREDIT;
  d.text = "rating below our floor";
  ft_expect("icbc1", "referral.decline", &d.base,
            GM__STATUS__FAILED_PRECONDITION, "archived");
  Gm__Finance__ClaimRequest c = GM__FINANCE__CLAIM_REQUEST__INIT;
  c.id = (char *)withdrawn;
  ft_expect("abc1", "referral.claim", &c.base, GM__STATUS__FAILED_PRECONDITION,
            "archived");
  ft_nap(200);
  ck_assert_int_eq(tag_keys(funded), 0);
  ck_assert_int_eq(tag_keys(withdrawn), 0);
  ck_assert_int_eq(ft_ledger_int("SELECT count(*) FROM finance_transitions"),
                   moves);
  ck_assert_int_eq(ledger_of("state", funded),
                   GM__FINANCE__STATE__STATE_FUNDED);
  ck_assert_int_eq(ledger_of("state", withdrawn),
                   GM__FINANCE__STATE__STATE_WITHDRAWN);
}

START_TEST(an_ended_referral_leaves_redis_and_reads_from_the_ledger) {
  char a[32], b[32];
  ft_copy_id(a, ft_refer("acme", 500000000, 36, 1));
  ft_free(ft_claim("icbc1", a));
  ft_free(ft_claim("abc1", a));
  ft_free(ft_pick("acme", a, "icbc"));
  ft_free(ft_contact("icbc1", a));
  ft_free(ft_approve("icbc1", a, 500000000, 345, 36));
  ft_free(ft_fund("icbc1", a, 500000000, NULL));
  /* b: withdrawn under review: the bank picked keeps its read, but not
     the contact (test_flow), from the ledger too. */
  ft_copy_id(b, ft_refer("acme", 300000000, 24, 0));
  ft_free(ft_claim("icbc1", b));
  ft_free(ft_pick("acme", b, "icbc"));
  ft_free(ft_contact("icbc1", b));
  withdraw(b);
  ck_assert_int_eq(ft_ledger_wait("SELECT count(*) FROM finance_referrals"
                                  " WHERE state >= 7",
                                  2),
                   2);
  /* What each reader is answered before. */
  packed *ent = malloc(sizeof *ent), *held = malloc(sizeof *held),
         *centre = malloc(sizeof *centre), *entb = malloc(sizeof *entb),
         *heldb = malloc(sizeof *heldb), *all = malloc(sizeof *all);
  pack_free(ent, get("acme", a));
  pack_free(held, get("icbc1", a));
  pack_free(centre, get(FT_CENTRE, a));
  pack_free(entb, get("acme", b));
  pack_free(heldb, get("icbc1", b));
  pack_free(all, list(FT_CENTRE));
  Gm__Finance__ReferralRequest q = GM__FINANCE__REFERRAL_REQUEST__INIT;
  q.id = a;
  ft_expect("abc1", "referral.get", &q.base, GM__STATUS__PERMISSION_DENIED,
            "has no access");
  long long funded_bytes;
  ck_assert_int_gt(tag_keys_bytes(a, &funded_bytes), 3);
  fprintf(stderr, "a funded referral's own keys: %lld bytes\n", funded_bytes);
  ck_assert_int_gt(tag_keys(b), 1);

  /* A day later: still live. */
  ft_clock(T0 + GM_FINANCE_DAY_MS);
  ft_nap(300);
  ck_assert_str_eq(ft_redis_field(a, "arch"), "");
  /* Two days after they ended: marked, the record handed to the ledger;
     the keys go once the ledger holds it: at the same firing if the
     settler was quick, else at the next, a minute later. */
  ft_clock(DUE);
  ck_assert(wait_archiving(a));
  ck_assert(wait_archiving(b));
  ck_assert_int_eq(ft_ledger_wait("SELECT count(*) FROM finance_referrals"
                                  " WHERE archived_ms > 0 AND record != ''",
                                  2),
                   2);
  ft_clock(DUE + RETRY);
  ck_assert_int_eq(wait_gone(a), 0);
  ck_assert_int_eq(wait_gone(b), 0);
  ck_assert_int_eq(ledger_of("archived_ms", a), DUE);

  /* The same answers, from the ledger. */
  same(ent, archived(get("acme", a), DUE), "referral.get (the enterprise)");
  same(held, archived(get("icbc1", a), DUE),
       "referral.get (the bank that funded it)");
  same(centre, archived(get(FT_CENTRE, a), DUE), "referral.get (the centre)");
  same(entb, archived(get("acme", b), DUE), "referral.get (withdrawn)");
  same(heldb, archived(get("icbc1", b), DUE),
       "referral.get (withdrawn, the bank picked)");
  Gm__Finance__Referral *w = (Gm__Finance__Referral *)get("icbc1", b);
  ck_assert(w->contact_withheld);
  ck_assert_str_eq(w->enterprise->contact, "");
  ck_assert_str_eq(w->enterprise->name, "acme Green Energy Co");
  ft_free(w);
  w = (Gm__Finance__Referral *)get("acme", b);
  ck_assert(!w->contact_withheld);
  ck_assert_str_ne(w->enterprise->contact, "");
  ft_free(w);
  same(all, archived(list(FT_CENTRE), DUE), "referral.list");
  ft_expect("abc1", "referral.get", &q.base, GM__STATUS__PERMISSION_DENIED,
            "has no access");
  Gm__Finance__Referral *r = (Gm__Finance__Referral *)get("acme", a);
  ck_assert_int_eq(r->state, GM__FINANCE__STATE__STATE_FUNDED);
  ck_assert_int_eq(r->funded_amount, 500000000);
  ck_assert_str_eq(r->bank, "icbc");
  ft_free(r);
  free(ent);
  free(held);
  free(centre);
  free(entb);
  free(heldb);
  free(all);
  /* No queue points at them. */
  ck_assert_ptr_null(ft_relation("icbc", a));
  ck_assert_ptr_null(ft_relation("abc", a));
  ck_assert_ptr_null(ft_relation("icbc", b));
  ck_assert_ptr_null(ft_relation("abc", b));
  changes_refused(a, b);
}
END_TEST

/* referral.list of acme as the centre, `limit` from `offset`: the ids
   in order, comma-separated, into out; returns the total. */
static int64_t list_page(int offset, int limit, char *out, size_t len) {
  Gm__Finance__ReferralsRequest q = GM__FINANCE__REFERRALS_REQUEST__INIT;
  q.enterprise = (char *)"acme";
  q.offset = offset;
  q.limit = limit;
  Gm__Finance__ReferralList *l =
      (Gm__Finance__ReferralList *)ft_ok(FT_CENTRE, "referral.list", &q.base);
  out[0] = '\0';
  for (size_t i = 0; i < l->n_referrals; i++)
    snprintf(out + strlen(out), len - strlen(out), "%s%s", i ? "," : "",
             l->referrals[i]->id);
  int64_t total = l->total;
  ft_free(l);
  return total;
}

/*
 * An archived referral leaves its enterprise's list in Redis
 * (e:<participant>:r); referral.list then merges the live ones from Redis
 * with the archived ones from the ledger, by creation, each once, pages
 * and total as before the archive.
 */
START_TEST(an_archived_referral_leaves_its_enterprises_list) {
  char a[32], b[32], c[32], all[128], page[128];
  ft_copy_id(a, ft_refer("acme", 300000000, 24, 0));
  ft_clock(T0 + 60000);
  ft_copy_id(b, ft_refer("acme", 300000000, 24, 0));
  ft_clock(T0 + 120000);
  ft_copy_id(c, ft_refer("acme", 300000000, 24, 0));
  withdraw(a);
  withdraw(c);
  ck_assert_int_eq(ft_ledger_wait("SELECT count(*) FROM finance_referrals"
                                  " WHERE state >= 7",
                                  2),
                   2);
  /* Listed in Redis once its index step ran (sync). */
  redisContext *rc = gm_test_redis_connect(ft_redis);
  for (int i = 0;
       i < 200 && gm_test_redis_int(rc, "ZCARD gm:{finance:e:acme}:r") < 3; i++)
    ft_nap(50);
  ck_assert_int_eq(gm_test_redis_int(rc, "ZCARD gm:{finance:e:acme}:r"), 3);
  snprintf(all, sizeof all, "%s,%s,%s", a, b, c);
  ck_assert_int_eq(list_page(0, 50, page, sizeof page), 3);
  ck_assert_str_eq(page, all);

  ft_clock(DUE + 120000);
  ck_assert(wait_archiving(a));
  ck_assert(wait_archiving(c));
  ck_assert_int_eq(ft_ledger_wait("SELECT count(*) FROM finance_referrals"
                                  " WHERE archived_ms > 0 AND record != ''",
                                  2),
                   2);
  ft_clock(DUE + 120000 + RETRY);
  ck_assert_int_eq(wait_gone(a), 0);
  ck_assert_int_eq(wait_gone(c), 0);
  /* Only the live one is left in Redis's list. */
  for (int i = 0;
       i < 200 && gm_test_redis_int(rc, "ZCARD gm:{finance:e:acme}:r") > 1; i++)
    ft_nap(50);
  ck_assert_int_eq(gm_test_redis_int(rc, "ZCARD gm:{finance:e:acme}:r"), 1);
  redisReply *r = gm_test_redis_cmd(rc, "ZRANGE gm:{finance:e:acme}:r 0 -1");
  ck_assert_str_eq(r->element[0]->str, b);
  freeReplyObject(r);
  redisFree(rc);
  /* The same list, the same pages. */
  ck_assert_int_eq(list_page(0, 50, page, sizeof page), 3);
  ck_assert_str_eq(page, all);
  ck_assert_int_eq(list_page(0, 1, page, sizeof page), 3);
  ck_assert_str_eq(page, a);
  ck_assert_int_eq(list_page(1, 1, page, sizeof page), 3);
  ck_assert_str_eq(page, b);
  ck_assert_int_eq(list_page(2, 5, page, sizeof page), 3);
  ck_assert_str_eq(page, c);
  ck_assert_int_eq(list_page(3, 5, page, sizeof page), 3);
  ck_assert_str_eq(page, "");
  /* A page too deep to merge is refused, saying the bounds. */
  Gm__Finance__ReferralsRequest q = GM__FINANCE__REFERRALS_REQUEST__INIT;
  q.enterprise = (char *)"acme";
  q.offset = 100001;
  ft_expect(FT_CENTRE, "referral.list", &q.base, GM__STATUS__INVALID_ARGUMENT,
            "offset 0..100000");
}
END_TEST

/*
 * Redis over maxmemory: the archive still runs (its steps and the
 * deadline claims behind it are allowed over maxmemory: they free) and
 * the referral's keys go; Redis holds less; a write is still refused with
 * the clear error; the archived referral reads from the ledger.
 */
/* Every key of the referral's hash tag, the host's included (its outbox
   stream, deadlines and their claims, stored replies): how many, and
   their MEMORY USAGE in *bytes. */
static long long tag_all_bytes(redisContext *c, const char *id,
                               long long *idem) {
  char cursor[32] = "0";
  long long bytes = 0;
  *idem = 0;
  do {
    redisReply *r = gm_test_redis_cmd(
        c, "SCAN %s MATCH gm:{finance:%s}:* COUNT 1000", cursor, id);
    snprintf(cursor, sizeof cursor, "%s", r->element[0]->str);
    for (size_t i = 0; i < r->element[1]->elements; i++) {
      const char *k = r->element[1]->element[i]->str;
      if (strstr(k, "}:idem:")) ++*idem;
      long long m = gm_test_redis_int(c, "MEMORY USAGE %s SAMPLES 0", k);
      if (getenv("FT_DEBUG")) fprintf(stderr, "  %s %lld\n", k, m);
      bytes += m;
    }
    freeReplyObject(r);
  } while (strcmp(cursor, "0") != 0);
  return bytes;
}

START_TEST(the_archive_frees_redis_over_maxmemory) {
  char b[32];
  ft_copy_id(b, ft_refer("acme", 300000000, 24, 0));
  withdraw(b);
  ck_assert_int_eq(ft_ledger_wait("SELECT count(*) FROM finance_referrals"
                                  " WHERE state >= 7",
                                  1),
                   1);
  ck_assert_int_gt(tag_keys(b), 1);
  redisContext *c = gm_test_redis_connect(ft_redis);
  ck_assert_int_gt(gm_test_redis_fill(c), 0);
  long long idem, idem_after;
  long long held = tag_all_bytes(c, b, &idem);

  gm_test_redis_clock_while_full(c, ft_clock, DUE);
  ck_assert(wait_archiving(b));
  ck_assert_int_eq(ft_ledger_wait("SELECT count(*) FROM finance_referrals"
                                  " WHERE archived_ms > 0 AND record != ''",
                                  1),
                   1);
  /* The keys go a second after the mark, the ledger holding the record
     (at once if the settler was quicker than the firing). */
  gm_test_redis_clock_while_full(c, ft_clock, DUE + 2000);
  if (wait_gone(b) != 0) {
    FILE *f = fopen(gm_test_gmd_log(ft_gmd), "r");
    char line[1024];
    while (f && fgets(line, sizeof line, f))
      if (strstr(line, b) || strstr(line, "deadline") || strstr(line, "OOM"))
        fprintf(stderr, "gmd: %s", line);
    if (f) fclose(f);
  }
  ck_assert_int_eq(wait_gone(b), 0);
  /* The archive's steps stored no reply; what the tag holds is printed
     (its outbox stream may have taken a new node of up to 4 KB for the
     record's entry: it goes when the settler retires the stream). */
  long long left = tag_all_bytes(c, b, &idem_after);
  fprintf(stderr,
          "archive over maxmemory: the referral's tag held %lld bytes, then "
          "%lld\n",
          held, left);
  ck_assert_int_eq(idem_after, idem);

  /* Still full: a write is refused as before, saying what to do. */
  Gm__Finance__ReferRequest req = GM__FINANCE__REFER_REQUEST__INIT;
  req.amount = 300000000;
  req.tenor_months = 24;
  req.class_code = "3";
  req.subitem = "3.2";
  req.use_of_proceeds = "rooftop solar";
  req.description = "a second plant";
  req.consent_share = 1;
  ft_expect("acme", "referral.create", &req.base,
            GM__STATUS__RESOURCE_EXHAUSTED, "out of memory");
  ck_assert_ptr_nonnull(strstr(ft_message, "raise maxmemory or free keys"));
  /* The archived referral answers from the ledger. */
  Gm__Finance__Referral *r = (Gm__Finance__Referral *)get("acme", b);
  ck_assert_int_eq(r->state, GM__FINANCE__STATE__STATE_WITHDRAWN);
  ck_assert_int_eq(r->archived_ms, DUE);
  ft_free(r);
  freeReplyObject(gm_test_redis_cmd(c, "CONFIG SET maxmemory 0"));
  redisFree(c);
}
END_TEST

/*
 * The settler held back (the ledger locked by a writer, as a busy or
 * restarting settler leaves it): the ledger still says the referral is
 * open when its archive falls due, so nothing goes; once the ledger holds
 * the withdrawal, the next tries archive it.
 */
START_TEST(a_referral_the_ledger_has_not_caught_up_with_stays) {
  char b[32];
  ft_copy_id(b, ft_refer("acme", 300000000, 24, 0));
  char sql[128];
  snprintf(sql, sizeof sql,
           "SELECT count(*) FROM finance_referrals WHERE id = '%s'", b);
  ck_assert_int_eq(ft_ledger_wait(sql, 1), 1);
  sqlite3 *db = ledger_lock();
  withdraw(b);
  ft_clock(DUE);
  ft_nap(1000);
  int arch_empty = !ft_redis_field(b, "arch")[0];
  char st[16];
  snprintf(st, sizeof st, "%s", ft_redis_field(b, "st"));
  long long keys = tag_keys(b);
  int logged = gm_test_gmd_log_has(ft_gmd, "does not hold its final state");
  ledger_unlock(db);
  ck_assert_msg(arch_empty, "archived before the ledger held its end");
  ck_assert_str_eq(st, "9");
  ck_assert_int_gt(keys, 1);
  ck_assert(logged);
  ck_assert_int_eq(ledger_of("archived_ms IS NULL", b), 1);

  ck_assert_int_eq(ft_ledger_wait("SELECT count(*) FROM finance_referrals"
                                  " WHERE state = 9",
                                  1),
                   1);
  ft_clock(DUE + RETRY);
  ck_assert(wait_archiving(b));
  snprintf(sql, sizeof sql,
           "SELECT count(*) FROM finance_referrals WHERE id = '%s' AND"
           " archived_ms > 0",
           b);
  ck_assert_int_eq(ft_ledger_wait(sql, 1), 1);
  ft_clock(DUE + 2 * RETRY);
  ck_assert_int_eq(wait_gone(b), 0);
  Gm__Finance__Referral *r = (Gm__Finance__Referral *)get("acme", b);
  ck_assert_int_eq(r->state, GM__FINANCE__STATE__STATE_WITHDRAWN);
  ck_assert_str_eq(r->withdraw_reason, "no longer needed");
  ft_free(r);
}
END_TEST

/*
 * gmd killed (-9) between the two steps of an archive: the referral is
 * marked and its record emitted, but the ledger (held locked) has not
 * taken it, so its keys are still there.  Restarted, the archive finishes
 * once: the record is not emitted again (the ledger's archived_ms is the
 * mark's), and every key goes.
 */
START_TEST(a_kill_mid_archive_finishes_it_once) {
  char b[32];
  ft_copy_id(b, ft_refer("acme", 300000000, 24, 0));
  withdraw(b);
  ck_assert_int_eq(ft_ledger_wait("SELECT count(*) FROM finance_referrals"
                                  " WHERE state = 9",
                                  1),
                   1);
  sqlite3 *db = ledger_lock();
  ft_clock(DUE);
  char arch[32];
  snprintf(arch, sizeof arch, "%s", wait_marked(b));
  ft_nap(300);
  long long keys = tag_keys(b);
  /* Marked: changes are refused already, without its state. */
  Gm__Finance__ClaimRequest c = GM__FINANCE__CLAIM_REQUEST__INIT;
  c.id = b;
  ProtobufCMessage *claimed = ft_call("abc1", "referral.claim", &c.base);
  int refused = !claimed && ft_status == GM__STATUS__FAILED_PRECONDITION &&
                strstr(ft_message, "ended and is being archived") &&
                !strstr(ft_message, "withdrawn");
  char said[2048];
  snprintf(said, sizeof said, "%s", ft_message);
  if (claimed) ft_free(claimed);
  gm_test_conn_destroy(&ft_conn);
  gm_test_gmd_kill9(ft_gmd);
  ledger_unlock(db);
  ck_assert_str_ne(arch, "");
  ck_assert_int_gt(keys, 1);
  ck_assert_msg(refused, "a claim while being archived: %s", said);

  gm_test_gmd_restart(ft_gmd);
  ft_conn = gm_test_conn_new(gm_test_gmd_endpoint(ft_gmd), NULL, NULL, NULL);
  /* The firing after the restart can come before the new gmd's settler
     holds the lease (the killed one's runs out first) and wrote the
     record: the keys then go at the firing after, a minute later
     (archive.c, FINANCE_ARCHIVE_RETRY_MS). */
  ft_clock(DUE + RETRY);
  long long left = wait_gone(b);
  if (left != 0) {
    ft_clock(DUE + 2 * RETRY);
    left = wait_gone(b);
  }
  ck_assert_int_eq(left, 0);
  ck_assert_int_eq(ledger_of("archived_ms", b), strtoll(arch, NULL, 10));
  ck_assert_int_eq(ft_ledger_int("SELECT count(*) FROM finance_referrals WHERE"
                                 " archived_ms > 0"),
                   1);
  /* The record read back is whole: the withdrawal and its reason. */
  Gm__Finance__Referral *r = (Gm__Finance__Referral *)get("acme", b);
  ck_assert_int_eq(r->state, GM__FINANCE__STATE__STATE_WITHDRAWN);
  ck_assert_str_eq(r->withdraw_reason, "no longer needed");
  ck_assert_int_eq(r->amount, 300000000);
  ft_free(r);
  ft_clock(DUE + 3 * RETRY);
  ft_nap(300);
  ck_assert_int_eq(ledger_of("archived_ms", b), strtoll(arch, NULL, 10));
}
END_TEST

/* What a participant who is no party of referral `id` is answered when it
   tries to change it: refused as before the referral ended, and nothing
   said of its end nor of its archive.  `when`: for the message. */
static void non_parties_refused(const char *id, const char *when) {
  Gm__Finance__TextRequest t = GM__FINANCE__TEXT_REQUEST__INIT;
  t.id = (char *)id;
  t.text = "not ours";
  Gm__Finance__ClaimRequest c = GM__FINANCE__CLAIM_REQUEST__INIT;
  c.id = (char *)id;
  Gm__Finance__DeclineRequest d = GM__FINANCE__DECLINE_REQUEST__INIT;
  d.id = (char *)id;
  d.reason = GM__FINANCE__DECLINE_REASON__DECLINE_CREDIT;
  d.text = "not ours";
  struct {
    const char *as, *method, *text;
    const ProtobufCMessage *req;
  } calls[] = {
      {"zeta", "referral.withdraw", "only the enterprise that referred",
       &t.base},
      {"ccb1", "referral.claim", "has no product that fits", &c.base},
      {"ccb1", "referral.decline", "does not hold it", &d.base},
  };
  for (size_t i = 0; i < sizeof calls / sizeof *calls; i++) {
    ft_expect(calls[i].as, calls[i].method, calls[i].req,
              GM__STATUS__PERMISSION_DENIED, calls[i].text);
    ck_assert_msg(!strstr(ft_message, "archiv") &&
                      !strstr(ft_message, "ended") &&
                      !strstr(ft_message, "withdrawn"),
                  "%s, %s %s: a non-party learns of its end: %s", when,
                  calls[i].as, calls[i].method, ft_message);
  }
}

/*
 * Who is no party of a referral learns nothing of its end from a refused
 * change, before, while and after it is archived: another enterprise
 * withdrawing it, a bank with no fitting product claiming or declining it
 * are refused as ever.  Its enterprise is told of the archive.
 */
START_TEST(a_non_party_learns_nothing_of_the_archive) {
  char b[32];
  ft_bank("ccb", "ccb1"); /* no product: it was never offered b */
  ft_enterprise("zeta", "330502");
  ft_copy_id(b, ft_refer("acme", 300000000, 24, 0));
  withdraw(b);
  ck_assert_int_eq(ft_ledger_wait("SELECT count(*) FROM finance_referrals"
                                  " WHERE state = 9",
                                  1),
                   1);
  non_parties_refused(b, "ended");
  /* Marked, its record not yet in the ledger (held locked). */
  sqlite3 *db = ledger_lock();
  ft_clock(DUE);
  int marked = wait_marked(b)[0] != '\0';
  if (marked) non_parties_refused(b, "being archived");
  /* abc was offered it (a party of a claim): told of the archive, not sent
     to gm finance show, which refuses it. */
  Gm__Finance__ClaimRequest c = GM__FINANCE__CLAIM_REQUEST__INIT;
  c.id = b;
  ft_expect("abc1", "referral.claim", &c.base, GM__STATUS__FAILED_PRECONDITION,
            "is being archived: its record moves to the ledger and it can no "
            "longer change; your bank abc, which does not hold it, cannot "
            "read it");
  ledger_unlock(db);
  ck_assert(marked);
  Gm__Finance__TextRequest t = GM__FINANCE__TEXT_REQUEST__INIT;
  t.id = b;
  t.text = "again";
  ck_assert_int_eq(ft_ledger_wait("SELECT count(*) FROM finance_referrals"
                                  " WHERE archived_ms > 0",
                                  1),
                   1);
  ft_clock(DUE + RETRY);
  ck_assert_int_eq(wait_gone(b), 0);
  non_parties_refused(b, "archived");
  ft_expect("acme", "referral.withdraw", &t.base,
            GM__STATUS__FAILED_PRECONDITION, "was archived on");
  ck_assert_msg(strstr(ft_message, "(gm finance show "), "%s", ft_message);
  ft_expect("abc1", "referral.claim", &c.base, GM__STATUS__FAILED_PRECONDITION,
            "(Asia/Shanghai): it can no longer change; your bank abc, which "
            "does not hold it, cannot read it");
  ck_assert_msg(!strstr(ft_message, "gm finance show"), "%s", ft_message);
}
END_TEST

/* referral.withdraw of `id` under idempotency key `key`: its status and
   reply bytes. */
static int withdraw_keyed(const char *id, const char *key, packed *out) {
  Gm__Finance__TextRequest t = GM__FINANCE__TEXT_REQUEST__INIT;
  t.id = (char *)id;
  t.text = "no longer needed";
  Gm__Reply *r = gm_test_call(ft_conn, "acme", "finance", "referral.withdraw",
                              key, &t.base);
  ck_assert_ptr_nonnull(r);
  int status = r->status;
  out->len = r->body.len;
  ck_assert_uint_le(out->len, sizeof out->buf);
  if (out->len) memcpy(out->buf, r->body.data, out->len);
  gm__reply__free_unpacked(r, NULL);
  return status;
}

/*
 * A client that never saw the reply to its withdrawal retries it under
 * the same idempotency key after the referral was archived (its stored
 * replies still live): it gets the answer the withdrawal had, and nothing
 * comes back to Redis.
 */
START_TEST(a_retry_after_the_archive_answers_as_the_first_time) {
  char b[32];
  ft_copy_id(b, ft_refer("acme", 300000000, 24, 0));
  packed *first = malloc(sizeof *first), *again = malloc(sizeof *again);
  ck_assert_int_eq(withdraw_keyed(b, "wd-1", first), GM__STATUS__OK);
  ck_assert_int_eq(ft_ledger_wait("SELECT count(*) FROM finance_referrals"
                                  " WHERE state = 9",
                                  1),
                   1);
  ft_clock(DUE);
  ck_assert(wait_archiving(b));
  ck_assert_int_eq(ft_ledger_wait("SELECT count(*) FROM finance_referrals"
                                  " WHERE archived_ms > 0",
                                  1),
                   1);
  ft_clock(DUE + RETRY);
  ck_assert_int_eq(wait_gone(b), 0);
  int64_t moves = ft_ledger_int("SELECT count(*) FROM finance_transitions");
  ck_assert_int_eq(withdraw_keyed(b, "wd-1", again), GM__STATUS__OK);
  ck_assert_msg(
      first->len == again->len && !memcmp(first->buf, again->buf, first->len),
      "the retry answers otherwise after the archive");
  ft_nap(300);
  ck_assert_int_eq(tag_keys(b), 0);
  ck_assert_int_eq(ft_ledger_int("SELECT count(*) FROM finance_transitions"),
                   moves);
  /* A new key: refused, naming the archive. */
  ck_assert_int_eq(withdraw_keyed(b, "wd-2", again),
                   GM__STATUS__FAILED_PRECONDITION);
  ck_assert_int_eq(tag_keys(b), 0);
  free(first);
  free(again);
}
END_TEST

/* Redis's used_memory once the stored replies are gone: every call's reply
   is kept [redis] idempotency_ttl (a day) for its retries whatever the
   archive does, so they are dropped here as their expiry would (no call
   is retried in this test). */
static long long used_memory(void) {
  redisContext *c = gm_test_redis_connect(ft_redis);
  char cursor[32] = "0";
  do {
    redisReply *r =
        gm_test_redis_cmd(c, "SCAN %s MATCH gm:*:idem:* COUNT 1000", cursor);
    snprintf(cursor, sizeof cursor, "%s", r->element[0]->str);
    for (size_t i = 0; i < r->element[1]->elements; i++)
      freeReplyObject(
          gm_test_redis_cmd(c, "UNLINK %s", r->element[1]->element[i]->str));
    freeReplyObject(r);
  } while (strcmp(cursor, "0") != 0);
  ft_nap(300);
  redisReply *r = gm_test_redis_cmd(c, "INFO memory");
  const char *p = strstr(r->str, "used_memory:");
  long long n = p ? strtoll(p + 12, NULL, 10) : -1;
  freeReplyObject(r);
  redisFree(c);
  return n;
}

/*
 * What archiving frees: N (FT_ARCHIVE_N, default 100) referrals withdrawn
 * from the pool; their keys' MEMORY USAGE and Redis's used_memory before
 * and after their archives (printed: finance.md's figure is
 * FT_ARCHIVE_N=1000).
 */
START_TEST(archived_referrals_free_their_memory) {
  const char *env = getenv("FT_ARCHIVE_N");
  int n = env && atoi(env) > 0 ? atoi(env) : 100;
  char(*ids)[32] = calloc((size_t)n, sizeof *ids);
  for (int i = 0; i < n; i++) {
    ft_copy_id(ids[i], ft_refer("acme", 300000000, 24, 0));
    withdraw(ids[i]);
  }
  char sql[128];
  snprintf(sql, sizeof sql,
           "SELECT count(*) FROM finance_referrals WHERE state = 9");
  ck_assert_int_eq(ft_ledger_wait(sql, n), n);
  ft_nap(1500); /* the settler's XTRIM */
  long long keys = 0, bytes = 0, before = used_memory();
  host_bytes = 0;
  for (int i = 0; i < n; i++) {
    long long b;
    keys += tag_keys_bytes(ids[i], &b);
    bytes += b;
  }
  long long host_before = host_bytes;
  ft_clock(DUE);
  snprintf(sql, sizeof sql,
           "SELECT count(*) FROM finance_referrals WHERE archived_ms > 0");
  for (int i = 0; i < 6 && ft_ledger_int(sql) < n; i++) ft_ledger_wait(sql, n);
  ck_assert_int_eq(ft_ledger_int(sql), n);
  ft_clock(DUE + RETRY);
  for (int i = 0; i < n; i++) ck_assert_int_eq(wait_gone(ids[i]), 0);
  ft_nap(1500);
  long long after = used_memory(), left = 0;
  host_bytes = 0;
  for (int i = 0; i < n; i++) {
    long long b;
    left += tag_keys_bytes(ids[i], &b);
  }
  fprintf(stderr,
          "archive of %d ended referrals: their own keys %lld, %lld bytes "
          "(MEMORY USAGE), %lld a referral; after: %lld keys; used_memory "
          "(stored replies dropped) %lld -> %lld, %lld bytes a referral "
          "freed; the host's keys of the tags (outbox streams, deadlines) "
          "%lld -> %lld bytes\n",
          n, keys, bytes, bytes / n, left, before, after, (before - after) / n,
          host_before, host_bytes);
  /* Below a thousand or so, the dictionaries Redis sized for the
     firings' stored replies weigh more than what left (measured). */
  if (n >= 1000) ck_assert_int_lt(after, before);
  ck_assert_int_eq(left, 0);
  ck_assert_int_gt(bytes, 0);
  free(ids);
}
END_TEST

/* The sweep looks every second. */
static void setup_sweep(void) {
  ft_start("archive_after_days = 2\narchive_sweep_s = 1", T0);
  ft_bank("icbc", "icbc1");
  ft_product("icbc-p", "icbc", "3", "", 1, 100000000000, 1, 120, 80);
  ft_enterprise("acme", "330502");
}

/* A referral withdrawn and settled, its archive deadline then removed by
   hand: one that ended before the archive existed.  Its id into b; a
   connection to Redis, for the caller to free. */
static redisContext *ended_without_deadline(char b[32]) {
  ft_copy_id(b, ft_refer("acme", 300000000, 24, 0));
  withdraw(b);
  ck_assert_int_eq(ft_ledger_wait("SELECT count(*) FROM finance_referrals"
                                  " WHERE ended_ms > 0",
                                  1),
                   1);
  redisContext *c = gm_test_redis_connect(ft_redis);
  ck_assert_int_eq(
      gm_test_redis_int(c, "ZREM gm:{finance:%s}:dl archive|%s", b, b), 1);
  return c;
}

/*
 * A referral that ended before the archive existed (session 15) has no
 * archive deadline: here one withdrawn, its deadline then removed by
 * hand.  The sweep finds it in the ledger (ended more than
 * archive_after_days plus a day ago, not archived), gives it one, and it
 * is archived like any other; one that still has its deadline is left to
 * it.
 */
START_TEST(a_referral_ended_without_an_archive_deadline_is_swept) {
  char b[32], later[32];
  redisContext *c = ended_without_deadline(b);
  /* Ended later: its own deadline, four days on. */
  ft_clock(T0 + 2 * GM_FINANCE_DAY_MS);
  ft_copy_id(later, ft_refer("acme", 300000000, 24, 0));
  withdraw(later);
  ck_assert_int_eq(ft_ledger_wait("SELECT count(*) FROM finance_referrals"
                                  " WHERE ended_ms > 0",
                                  2),
                   2);
  /* Two days on: nothing of b would fire, nor is it swept yet (the sweep
     waits a day past archive_after_days for a deadline set at the end). */
  ft_clock(DUE);
  ft_nap(1500);
  ck_assert_str_eq(ft_redis_field(b, "arch"), "");
  /* Three days after it ended: swept, and archived. */
  ft_clock(T0 + 3 * GM_FINANCE_DAY_MS + 2000);
  ck_assert(wait_archiving(b));
  ck_assert_int_eq(ft_ledger_wait("SELECT count(*) FROM finance_referrals"
                                  " WHERE archived_ms > 0 AND record != ''",
                                  1),
                   1);
  ft_clock(T0 + 3 * GM_FINANCE_DAY_MS + 2000 + RETRY);
  ck_assert_int_eq(wait_gone(b), 0);
  /* The later one kept its own deadline, two days after its end. */
  ck_assert_str_eq(ft_redis_field(later, "arch"), "");
  ck_assert_int_eq(gm_test_redis_int(c, "ZSCORE gm:{finance:%s}:dl archive|%s",
                                     later, later),
                   T0 + 4 * GM_FINANCE_DAY_MS);
  redisFree(c);
}
END_TEST

/*
 * A referral whose `rearm` fails by itself (its record is not a hash
 * here, as a damaged or hand-edited key would leave it) does not hold
 * back the ones that ended after it: the sweep logs it and goes on.
 * Before, the sweep stopped at it every round and started again from it.
 */
START_TEST(a_row_the_sweep_cannot_rearm_holds_back_no_other) {
  char bad[32], b[32];
  redisContext *c = ended_without_deadline(bad);
  ft_clock(T0 + 1000);
  ft_copy_id(b, ft_refer("acme", 300000000, 24, 0));
  withdraw(b);
  ck_assert_int_eq(ft_ledger_wait("SELECT count(*) FROM finance_referrals"
                                  " WHERE ended_ms > 0",
                                  2),
                   2);
  ck_assert_int_eq(
      gm_test_redis_int(c, "ZREM gm:{finance:%s}:dl archive|%s", b, b), 1);
  freeReplyObject(gm_test_redis_cmd(c, "DEL gm:{finance:%s}:r", bad));
  freeReplyObject(gm_test_redis_cmd(c, "SET gm:{finance:%s}:r damaged", bad));
  ft_clock(T0 + 3 * GM_FINANCE_DAY_MS + 2000);
  ck_assert(wait_archiving(b));
  ck_assert_int_eq(ft_ledger_wait("SELECT count(*) FROM finance_referrals"
                                  " WHERE archived_ms > 0",
                                  1),
                   1);
  /* The damaged one is left as it was, for the operator. */
  redisReply *r = gm_test_redis_cmd(c, "GET gm:{finance:%s}:r", bad);
  ck_assert_str_eq(r->str, "damaged");
  freeReplyObject(r);
  redisFree(c);
}
END_TEST

/*
 * Over maxmemory the sweep gives no archive deadline.  The referral it
 * finds ended long ago, and the settler retired its idle outbox stream
 * (here [ledger] outbox_retire_s = 1): archiving it while Redis is full
 * would make the stream again with the whole record in it, which the
 * settler cannot take then (its group on a new stream is a write Redis
 * refuses), so memory would be added and none freed.  Once Redis has room
 * it is swept and archived.
 */
static void setup_sweep_retired(void) {
  ft_start_conf("archive_after_days = 2\narchive_sweep_s = 1",
                "[ledger]\noutbox_retire_s = 1", T0);
  ft_bank("icbc", "icbc1");
  ft_product("icbc-p", "icbc", "3", "", 1, 100000000000, 1, 120, 80);
  ft_enterprise("acme", "330502");
}

static int key_exists(redisContext *c, const char *key) {
  return (int)gm_test_redis_int(c, "EXISTS %s", key);
}

START_TEST(the_sweep_waits_for_room_over_maxmemory) {
  char b[32], stream[64];
  redisContext *c = ended_without_deadline(b);
  /* Settled and idle: the settler retires its stream. */
  snprintf(stream, sizeof stream, "gm:{finance:%s}:outbox", b);
  for (int i = 0; i < 400 && key_exists(c, stream); i++) ft_nap(50);
  ck_assert_int_eq(key_exists(c, stream), 0);

  ck_assert_int_gt(gm_test_redis_fill(c), 0);
  gm_test_redis_clock_while_full(c, ft_clock,
                                 T0 + 3 * GM_FINANCE_DAY_MS + 2000);
  ft_nap(3000); /* three rounds of the sweep */
  /* Nothing armed, marked or made again. */
  redisReply *r =
      gm_test_redis_cmd(c, "ZSCORE gm:{finance:%s}:dl archive|%s", b, b);
  ck_assert_int_eq(r->type, REDIS_REPLY_NIL);
  freeReplyObject(r);
  ck_assert_str_eq(ft_redis_field(b, "arch"), "");
  ck_assert_int_eq(key_exists(c, stream), 0);

  /* Room again: swept and archived. */
  freeReplyObject(gm_test_redis_cmd(c, "CONFIG SET maxmemory 0"));
  ck_assert(wait_archiving(b));
  ck_assert_int_eq(ft_ledger_wait("SELECT count(*) FROM finance_referrals"
                                  " WHERE archived_ms > 0 AND record != ''",
                                  1),
                   1);
  ft_clock(T0 + 3 * GM_FINANCE_DAY_MS + 2000 + RETRY);
  ck_assert_int_eq(wait_gone(b), 0);
  redisFree(c);
}
END_TEST

int main(void) {
  Suite *s = suite_create("finance_archive");
  TCase *tc = tcase_create("archive");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_set_timeout(tc, 300);
  tcase_add_test(tc, an_ended_referral_leaves_redis_and_reads_from_the_ledger);
  tcase_add_test(tc, a_referral_the_ledger_has_not_caught_up_with_stays);
  tcase_add_test(tc, a_kill_mid_archive_finishes_it_once);
  tcase_add_test(tc, a_non_party_learns_nothing_of_the_archive);
  tcase_add_test(tc, a_retry_after_the_archive_answers_as_the_first_time);
  tcase_add_test(tc, the_archive_frees_redis_over_maxmemory);
  tcase_add_test(tc, an_archived_referral_leaves_its_enterprises_list);
  tcase_add_test(tc, archived_referrals_free_their_memory);
  suite_add_tcase(s, tc);
  TCase *sw = tcase_create("sweep");
  tcase_add_checked_fixture(sw, setup_sweep, teardown);
  tcase_set_timeout(sw, 120);
  tcase_add_test(sw, a_referral_ended_without_an_archive_deadline_is_swept);
  tcase_add_test(sw, a_row_the_sweep_cannot_rearm_holds_back_no_other);
  suite_add_tcase(s, sw);
  TCase *sf = tcase_create("sweep_full");
  tcase_add_checked_fixture(sf, setup_sweep_retired, teardown);
  tcase_set_timeout(sf, 120);
  tcase_add_test(sf, the_sweep_waits_for_room_over_maxmemory);
  suite_add_tcase(s, sf);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? 1 : 0;
}
