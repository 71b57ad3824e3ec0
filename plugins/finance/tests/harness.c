/* The finance test harness (harness.h). */
#include "harness.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <greenmarket/uscc.h>

gm_test_redis *ft_redis;
gm_test_gmd *ft_gmd;
gm_test_conn *ft_conn;
int ft_status;
char ft_message[2048];

static unsigned long ft__seq;

static const struct {
  const char *name;
  const ProtobufCMessageDescriptor *reply;
  int mutating;
} ft__methods[] = {
    {"catalogue.load", &gm__finance__catalogue__descriptor, 1},
    {"catalogue.list", &gm__finance__catalogue__descriptor, 0},
    {"calendar.load", &gm__finance__calendar__descriptor, 1},
    {"calendar.list", &gm__finance__calendar__descriptor, 0},
    {"bank.create", &gm__finance__bank__descriptor, 1},
    {"bank.link", &gm__finance__bank__descriptor, 1},
    {"bank.list", &gm__finance__bank_list__descriptor, 0},
    {"product.create", &gm__finance__product__descriptor, 1},
    {"product.retire", &gm__finance__product__descriptor, 1},
    {"product.list", &gm__finance__product_list__descriptor, 0},
    {"enterprise.register", &gm__finance__enterprise__descriptor, 1},
    {"enterprise.get", &gm__finance__enterprise__descriptor, 0},
    {"referral.screen", &gm__finance__screen_reply__descriptor, 0},
    {"referral.create", &gm__finance__referral__descriptor, 1},
    {"referral.get", &gm__finance__referral__descriptor, 0},
    {"referral.list", &gm__finance__referral_list__descriptor, 0},
    {"referral.claim", &gm__finance__referral__descriptor, 1},
    {"referral.pick", &gm__finance__referral__descriptor, 1},
    {"referral.contact", &gm__finance__referral__descriptor, 1},
    {"referral.request_info", &gm__finance__referral__descriptor, 1},
    {"referral.answer", &gm__finance__referral__descriptor, 1},
    {"referral.approve", &gm__finance__referral__descriptor, 1},
    {"referral.fund", &gm__finance__referral__descriptor, 1},
    {"referral.decline", &gm__finance__referral__descriptor, 1},
    {"referral.withdraw", &gm__finance__referral__descriptor, 1},
    {"bank.queue", &gm__finance__queue__descriptor, 0},
    {"bank.report", &gm__finance__bank_report__descriptor, 0},
    {"report.period", &gm__finance__report__descriptor, 0},
    {"report.statement", &gm__finance__statement__descriptor, 0},
};

static int ft__method(const char *method) {
  for (size_t i = 0; i < sizeof ft__methods / sizeof ft__methods[0]; i++)
    if (!strcmp(ft__methods[i].name, method)) return (int)i;
  ck_abort_msg("no reply type known for %s", method);
  return -1;
}

/* gmd on `home`'s Redis (or the cluster whose home it is: redis_conf
   names its nodes) at now_ms, the centre registered. */
static void ft__start_gmd(gm_test_redis *home, const char *redis_conf,
                          const char *market_conf, const char *more_conf,
                          int64_t now_ms) {
  char conf[4096];
  /* gmd starts at the test's time (a restart too: the config is kept), so
   * no deadline is late at a start-up unless the test moves the clock. */
  snprintf(conf, sizeof conf,
           "%s[testing]\nclock = manual\nclock_start_ms = %lld\n"
           "[plugins]\nload = finance\n[deadlines]\npoll_ms = 20\n"
           "[market.finance]\n%s\n%s\n",
           redis_conf, (long long)now_ms, market_conf ? market_conf : "",
           more_conf ? more_conf : "");
  ft_gmd = gm_test_gmd_start(home, GM_BUILD_PLUGIN_DIR, conf);
  ft_conn = gm_test_conn_new(gm_test_gmd_endpoint(ft_gmd), NULL, NULL, NULL);
  ft_clock(now_ms);
  ft_register(FT_CENTRE, "centre");
}

void ft_start_conf(const char *market_conf, const char *more_conf,
                   int64_t now_ms) {
  ft_redis = gm_test_redis_start();
  ft__start_gmd(ft_redis, "", market_conf, more_conf, now_ms);
}

void ft_start_cluster(gm_test_cluster *cl, const char *market_conf,
                      const char *more_conf, int64_t now_ms) {
  ft_redis = NULL; /* the cluster's: ft_stop leaves it */
  ft__start_gmd(gm_test_cluster_home(cl), gm_test_cluster_conf(cl), market_conf,
                more_conf, now_ms);
}

void ft_start(const char *market_conf, int64_t now_ms) {
  ft_start_conf(market_conf, NULL, now_ms);
}

void ft_stop(void) {
  gm_test_conn_destroy(&ft_conn);
  if (ft_gmd) gm_test_gmd_stop(&ft_gmd);
  gm_test_redis_stop(&ft_redis);
}

int64_t ft_at(const char *date, int hh, int mm) {
  int64_t day;
  ck_assert_msg(gm__finance_parse_date(date, &day) == 0, "bad date %s", date);
  return gm__finance_day_start_ms(day) + (hh * 60 + mm) * INT64_C(60000);
}

void ft_clock(int64_t ms) {
  Gm__ClockSetRequest req = GM__CLOCK_SET_REQUEST__INIT;
  char idem[32];
  req.time_ms = ms;
  snprintf(idem, sizeof idem, "clock-%lu", ++ft__seq);
  Gm__Reply *r =
      gm_test_call(ft_conn, "root", "gm", "clock.set", idem, &req.base);
  ck_assert_msg(r && r->status == GM__STATUS__OK, "clock.set failed: %s",
                r ? r->message : "no reply");
  gm__reply__free_unpacked(r, NULL);
}

ProtobufCMessage *ft_call_on(gm_test_conn *c, const char *as,
                             const char *method, const ProtobufCMessage *req) {
  int m = ft__method(method);
  char key[48];
  snprintf(key, sizeof key, "k-%lu", ++ft__seq);
  Gm__Reply *r = gm_test_call(c, as, "finance", method,
                              ft__methods[m].mutating ? key : NULL, req);
  ck_assert_msg(r != NULL, "no reply to finance.%s within 5 s", method);
  ft_status = r->status;
  snprintf(ft_message, sizeof ft_message, "%s", r->message ? r->message : "");
  ProtobufCMessage *out = NULL;
  if (r->status == GM__STATUS__OK) {
    out = protobuf_c_message_unpack(ft__methods[m].reply, NULL, r->body.len,
                                    r->body.data);
    ck_assert_msg(out != NULL, "finance.%s reply does not decode", method);
  }
  gm__reply__free_unpacked(r, NULL);
  return out;
}

ProtobufCMessage *ft_call(const char *as, const char *method,
                          const ProtobufCMessage *req) {
  return ft_call_on(ft_conn, as, method, req);
}

ProtobufCMessage *ft_ok(const char *as, const char *method,
                        const ProtobufCMessage *req) {
  ProtobufCMessage *m = ft_call(as, method, req);
  ck_assert_msg(m != NULL, "finance.%s as %s: status %d: %s", method, as,
                ft_status, ft_message);
  return m;
}

void ft_expect(const char *as, const char *method, const ProtobufCMessage *req,
               int status, const char *text) {
  ProtobufCMessage *m = ft_call(as, method, req);
  ck_assert_msg(m == NULL,
                "finance.%s as %s succeeded; expected status %d (%s)", method,
                as, status, text);
  ck_assert_msg(ft_status == status, "finance.%s: status %d, expected %d: %s",
                method, ft_status, status, ft_message);
  ck_assert_msg(strstr(ft_message, text),
                "finance.%s: message \"%s\" lacks \"%s\"", method, ft_message,
                text);
}

void ft_register(const char *who, const char *roles) {
  Gm__Participant p = GM__PARTICIPANT__INIT;
  Gm__RegisterRequest req = GM__REGISTER_REQUEST__INIT;
  char buf[256], *list[8], *save = NULL, key[48];
  size_t n = 0;
  snprintf(buf, sizeof buf, "%s", roles);
  for (char *t = strtok_r(buf, ",", &save); t && n < 8;
       t = strtok_r(NULL, ",", &save))
    list[n++] = t;
  p.id = (char *)who;
  p.roles = list;
  p.n_roles = n;
  req.participant = &p;
  snprintf(key, sizeof key, "reg-%lu", ++ft__seq);
  Gm__Reply *r =
      gm_test_call(ft_conn, "root", "gm", "register", key, &req.base);
  ck_assert_msg(r && r->status == GM__STATUS__OK, "register %s: %s", who,
                r ? r->message : "no reply");
  gm__reply__free_unpacked(r, NULL);
}

void ft_bank(const char *id, const char *user) {
  Gm__Finance__Bank b = GM__FINANCE__BANK__INIT;
  Gm__Finance__CreateBankRequest req = GM__FINANCE__CREATE_BANK_REQUEST__INIT;
  char name[64];
  snprintf(name, sizeof name, "Bank %s", id);
  b.id = (char *)id;
  b.name = name;
  req.bank = &b;
  ft_free((Gm__Finance__Bank *)ft_ok(FT_CENTRE, "bank.create", &req.base));
  if (!user) return;
  ft_register(user, "bank");
  Gm__Finance__LinkRequest link = GM__FINANCE__LINK_REQUEST__INIT;
  link.participant = (char *)user;
  link.bank = (char *)id;
  ft_free((Gm__Finance__Bank *)ft_ok(FT_CENTRE, "bank.link", &link.base));
  /* The staff member accepts (bank join). */
  link.participant = "";
  ft_free((Gm__Finance__Bank *)ft_ok(user, "bank.link", &link.base));
}

void ft_product(const char *id, const char *bank, const char *classes,
                const char *regions, int64_t amin, int64_t amax, int tmin,
                int tmax, int fee_bp) {
  Gm__Finance__Product p = GM__FINANCE__PRODUCT__INIT;
  Gm__Finance__CreateProductRequest req =
      GM__FINANCE__CREATE_PRODUCT_REQUEST__INIT;
  char cbuf[128], rbuf[256], *cls[16], *reg[16], *save = NULL;
  snprintf(cbuf, sizeof cbuf, "%s", classes);
  snprintf(rbuf, sizeof rbuf, "%s", regions);
  p.id = (char *)id;
  p.bank = (char *)bank;
  p.name = "green loan";
  p.amount_min = amin;
  p.amount_max = amax;
  p.tenor_min_months = tmin;
  p.tenor_max_months = tmax;
  p.rate_min_bp = 300;
  p.rate_max_bp = 450;
  p.fee_bp = fee_bp;
  for (char *t = strtok_r(cbuf, ",", &save); t; t = strtok_r(NULL, ",", &save))
    cls[p.n_classes++] = t;
  save = NULL;
  for (char *t = strtok_r(rbuf, ",", &save); t; t = strtok_r(NULL, ",", &save))
    reg[p.n_regions++] = t;
  p.classes = cls;
  p.regions = reg;
  req.product = &p;
  ft_free(
      (Gm__Finance__Product *)ft_ok(FT_CENTRE, "product.create", &req.base));
}

const char *ft_code(const char *first17, char out[19]) {
  memcpy(out, first17, 17);
  out[17] = gm_uscc_check_char(first17);
  out[18] = '\0';
  return out;
}

void ft_enterprise(const char *who, const char *region) {
  Gm__Finance__Enterprise e = GM__FINANCE__ENTERPRISE__INIT;
  Gm__Finance__RegisterEnterpriseRequest req =
      GM__FINANCE__REGISTER_ENTERPRISE_REQUEST__INIT;
  char first[18], code[19], name[64];
  ft_register(who, "enterprise");
  snprintf(first, sizeof first, "91%s%09lu", region, ft__seq++ % 1000000000);
  snprintf(name, sizeof name, "%s Green Energy Co", who);
  e.credit_code = (char *)ft_code(first, code);
  e.name = name;
  e.region = (char *)region;
  e.size = GM__FINANCE__SIZE_CLASS__SIZE_SMALL;
  e.contact = "Li Wei +86 572 000 0000";
  req.enterprise = &e;
  ft_free(
      (Gm__Finance__Enterprise *)ft_ok(who, "enterprise.register", &req.base));
}

Gm__Finance__Referral *ft_refer(const char *who, int64_t amount, int tenor,
                                int consent_identity) {
  Gm__Finance__ReferRequest req = GM__FINANCE__REFER_REQUEST__INIT;
  req.amount = amount;
  req.tenor_months = tenor;
  req.class_code = "3";
  req.subitem = "3.2";
  req.use_of_proceeds = "rooftop solar";
  req.description = "2 MW rooftop photovoltaic plant on our workshops";
  req.co2_avoided_kg = 1500000;
  req.coal_saved_kg = 600000;
  req.consent_share = 1;
  req.consent_identity = consent_identity;
  return (Gm__Finance__Referral *)ft_ok(who, "referral.create", &req.base);
}

Gm__Finance__Referral *ft_claim(const char *user, const char *id) {
  Gm__Finance__ClaimRequest req = GM__FINANCE__CLAIM_REQUEST__INIT;
  req.id = (char *)id;
  return (Gm__Finance__Referral *)ft_ok(user, "referral.claim", &req.base);
}

Gm__Finance__Referral *ft_pick(const char *ent, const char *id,
                               const char *bank) {
  Gm__Finance__PickRequest req = GM__FINANCE__PICK_REQUEST__INIT;
  req.id = (char *)id;
  req.bank = (char *)bank;
  return (Gm__Finance__Referral *)ft_ok(ent, "referral.pick", &req.base);
}

Gm__Finance__Referral *ft_contact(const char *user, const char *id) {
  Gm__Finance__ContactRequest req = GM__FINANCE__CONTACT_REQUEST__INIT;
  req.id = (char *)id;
  req.note = "called the CFO";
  return (Gm__Finance__Referral *)ft_ok(user, "referral.contact", &req.base);
}

Gm__Finance__Referral *ft_approve(const char *user, const char *id,
                                  int64_t amount, int rate_bp, int tenor) {
  Gm__Finance__ApproveRequest req = GM__FINANCE__APPROVE_REQUEST__INIT;
  req.id = (char *)id;
  req.amount = amount;
  req.rate_bp = rate_bp;
  req.tenor_months = tenor;
  return (Gm__Finance__Referral *)ft_ok(user, "referral.approve", &req.base);
}

Gm__Finance__Referral *ft_fund(const char *user, const char *id, int64_t amount,
                               const char *date) {
  Gm__Finance__FundRequest req = GM__FINANCE__FUND_REQUEST__INIT;
  req.id = (char *)id;
  req.amount = amount;
  req.date = (char *)(date ? date : "");
  return (Gm__Finance__Referral *)ft_ok(user, "referral.fund", &req.base);
}

Gm__Finance__Referral *ft_get(const char *as, const char *id) {
  Gm__Finance__ReferralRequest req = GM__FINANCE__REFERRAL_REQUEST__INIT;
  req.id = (char *)id;
  return (Gm__Finance__Referral *)ft_ok(as, "referral.get", &req.base);
}

Gm__Finance__Queue *ft_queue(const char *bank) {
  Gm__Finance__QueueRequest req = GM__FINANCE__QUEUE_REQUEST__INIT;
  req.bank = (char *)bank;
  req.limit = 1000;
  return (Gm__Finance__Queue *)ft_ok(FT_CENTRE, "bank.queue", &req.base);
}

const char *ft_relation(const char *bank, const char *id) {
  static char rel[16];
  Gm__Finance__Queue *q = ft_queue(bank);
  const char *out = NULL;
  for (size_t i = 0; i < q->n_entries; i++)
    if (!strcmp(q->entries[i]->referral->id, id)) {
      snprintf(rel, sizeof rel, "%s", q->entries[i]->relation);
      out = rel;
    }
  ft_free(q);
  return out;
}

int64_t ft_ledger_int(const char *sql) {
  sqlite3 *db;
  sqlite3_stmt *st;
  int64_t v = -1;
  ck_assert_int_eq(sqlite3_open_v2(gm_test_gmd_ledger(ft_gmd), &db,
                                   SQLITE_OPEN_READONLY, NULL),
                   SQLITE_OK);
  sqlite3_busy_timeout(db, 5000);
  ck_assert_msg(sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK,
                "%s: %s", sql, sqlite3_errmsg(db));
  if (sqlite3_step(st) == SQLITE_ROW) v = sqlite3_column_int64(st, 0);
  sqlite3_finalize(st);
  sqlite3_close(db);
  return v;
}

void ft_ledger_exec(const char *sql) {
  sqlite3 *db;
  ck_assert_int_eq(sqlite3_open(gm_test_gmd_ledger(ft_gmd), &db), SQLITE_OK);
  sqlite3_busy_timeout(db, 5000);
  ck_assert_msg(sqlite3_exec(db, sql, NULL, NULL, NULL) == SQLITE_OK, "%s: %s",
                sql, sqlite3_errmsg(db));
  sqlite3_close(db);
}

void ft_nap(int ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000 * 1000};
  nanosleep(&ts, NULL);
}

static void ft__nap(void) {
  ft_nap(10);
}

int64_t ft_ledger_wait(const char *sql, int64_t want) {
  int64_t v = -1;
  for (int i = 0; i < 1000; i++) {
    if ((v = ft_ledger_int(sql)) == want) return v;
    ft__nap();
  }
  return v;
}

const char *ft_redis_field(const char *id, const char *field) {
  static char buf[4096];
  redisContext *c = gm_test_redis_connect(ft_redis);
  redisReply *r = gm_test_redis_cmd(c, "HGET gm:{finance:%s}:r %s", id, field);
  snprintf(buf, sizeof buf, "%s", r->type == REDIS_REPLY_STRING ? r->str : "");
  freeReplyObject(r);
  redisFree(c);
  return buf;
}

int ft_wait_state(const char *id, int state) {
  int st = -1;
  for (int i = 0; i < 1000; i++) {
    if ((st = atoi(ft_redis_field(id, "st"))) == state) return st;
    ft__nap();
  }
  return st;
}

int ft_wait_relation(const char *bank, const char *id, const char *want) {
  for (int i = 0; i < 1000; i++) {
    const char *rel = ft_relation(bank, id);
    if (want ? rel && !strcmp(rel, want) : rel == NULL) return 1;
    ft__nap();
  }
  return 0;
}

void ft_copy_id(char id[32], Gm__Finance__Referral *r) {
  snprintf(id, 32, "%s", r->id);
  ft_free(r);
}
