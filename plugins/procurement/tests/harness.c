/* The procurement test harness (harness.h). */
#include "harness.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <greenmarket/uscc.h>

gm_test_redis *pt_redis;
gm_test_gmd *pt_gmd;
gm_test_conn *pt_conn;
int pt_status;
char pt_message[2048];
int64_t pt_now;

static unsigned long pt__seq;

static const struct {
  const char *method;
  const ProtobufCMessageDescriptor *reply;
  int mutating;
} pt__methods[] = {
    {"category.put", &gm__procurement__import_reply__descriptor, 1},
    {"category.get", &gm__procurement__category__descriptor, 0},
    {"category.list", &gm__procurement__category_list__descriptor, 0},
    {"certificate.put", &gm__procurement__import_reply__descriptor, 1},
    {"certificate.get", &gm__procurement__certificate__descriptor, 0},
    {"certificate.status", &gm__procurement__certificate__descriptor, 1},
    {"calendar.put", &gm__procurement__calendar__descriptor, 1},
    {"calendar.get", &gm__procurement__calendar__descriptor, 0},
    {"party.register", &gm__procurement__party__descriptor, 1},
    {"party.get", &gm__procurement__party__descriptor, 0},
    {"party.reclaim", &gm__procurement__reclaim__descriptor, 1},
    {"party.reclaim_decide", &gm__procurement__reclaim__descriptor, 1},
    {"tender.draft", &gm__procurement__tender_view__descriptor, 1},
    {"tender.demand", &gm__procurement__tender_view__descriptor, 1},
    {"tender.publish", &gm__procurement__tender_view__descriptor, 1},
    {"tender.amend", &gm__procurement__tender_view__descriptor, 1},
    {"tender.cancel", &gm__procurement__tender_view__descriptor, 1},
    {"tender.get", &gm__procurement__tender_view__descriptor, 0},
    {"tender.list", &gm__procurement__tender_list__descriptor, 0},
    {"tender.security", &gm__procurement__security_reply__descriptor, 1},
    {"bid.submit", &gm__procurement__bid_receipt__descriptor, 1},
    {"bid.replace", &gm__procurement__bid_receipt__descriptor, 1},
    {"bid.withdraw", &gm__procurement__bid_receipt__descriptor, 1},
    {"bid.get", &gm__procurement__bid__descriptor, 0},
    {"bid.list", &gm__procurement__bid_list__descriptor, 0},
    {"evaluation.score", &gm__procurement__score_reply__descriptor, 1},
    {"evaluation.sheet", &gm__procurement__sheet__descriptor, 0},
    {"tender.award", &gm__procurement__award__descriptor, 1},
    {"award.get", &gm__procurement__award__descriptor, 0},
    {"challenge.lodge", &gm__procurement__challenge__descriptor, 1},
    {"challenge.answer", &gm__procurement__challenge__descriptor, 1},
    {"challenge.list", &gm__procurement__challenge_list__descriptor, 0},
    {"contract.sign", &gm__procurement__contract__descriptor, 1},
    {"contract.deliver", &gm__procurement__contract__descriptor, 1},
    {"contract.accept", &gm__procurement__contract__descriptor, 1},
    {"contract.pay", &gm__procurement__contract__descriptor, 1},
    {"contract.get", &gm__procurement__contract__descriptor, 0},
    {"tender.export", &gm__procurement__export__descriptor, 0},
};

/* gmd on `home`'s Redis (or the cluster whose home it is: redis_conf
   names its nodes), the clock at now_ms. */
static void pt__start_gmd(gm_test_redis *home, const char *redis_conf,
                          const char *extra_conf, int64_t now_ms) {
  char conf[4096];
  /* gmd starts at the test's time, so no deadline is late at a start. */
  snprintf(conf, sizeof conf,
           "%s[testing]\nclock = manual\nclock_start_ms = %lld\n"
           "[plugins]\nload = procurement\n[deadlines]\npoll_ms = 20\n"
           "[market.procurement]\n%s\n",
           redis_conf, (long long)now_ms, extra_conf ? extra_conf : "");
  pt_gmd = gm_test_gmd_start(home, GM_BUILD_PLUGIN_DIR, conf);
  pt_conn = gm_test_conn_new(gm_test_gmd_endpoint(pt_gmd), NULL, NULL, NULL);
  pt_clock(now_ms);
}

void pt_start(const char *extra_conf, int64_t now_ms) {
  pt_redis = gm_test_redis_start();
  pt__start_gmd(pt_redis, "", extra_conf, now_ms);
}

void pt_start_cluster(gm_test_cluster *cl, const char *extra_conf,
                      int64_t now_ms) {
  pt_redis = NULL; /* the cluster's: pt_stop leaves it */
  pt__start_gmd(gm_test_cluster_home(cl), gm_test_cluster_conf(cl), extra_conf,
                now_ms);
}

void pt_stop(void) {
  gm_test_conn_destroy(&pt_conn);
  if (pt_gmd) gm_test_gmd_stop(&pt_gmd);
  gm_test_redis_stop(&pt_redis);
}

int64_t pt_at(const char *date, int hh, int mm) {
  int64_t day;
  ck_assert_msg(pr_parse_date(date, &day) == 0, "bad date %s", date);
  return pr_day_start(day) + (hh * 60 + mm) * INT64_C(60000);
}

void pt_clock(int64_t ms) {
  Gm__ClockSetRequest req = GM__CLOCK_SET_REQUEST__INIT;
  char idem[32];
  req.time_ms = ms;
  snprintf(idem, sizeof idem, "clock-%lu", ++pt__seq);
  Gm__Reply *r =
      gm_test_call(pt_conn, "root", "gm", "clock.set", idem, &req.base);
  ck_assert_msg(r && r->status == GM__STATUS__OK, "clock.set failed: %s",
                r ? r->message : "no reply");
  gm__reply__free_unpacked(r, NULL);
  pt_now = ms;
}

ProtobufCMessage *pt_call_idem(const char *as, const char *method,
                               const char *idem, const ProtobufCMessage *req) {
  char key[48];
  size_t k = 0, n = sizeof pt__methods / sizeof pt__methods[0];
  while (k < n && strcmp(pt__methods[k].method, method)) k++;
  ck_assert_msg(k < n, "no reply type known for %s", method);
  if (!idem && pt__methods[k].mutating) {
    snprintf(key, sizeof key, "k-%lu", ++pt__seq);
    idem = key;
  }
  Gm__Reply *r = gm_test_call(pt_conn, as, "procurement", method, idem, req);
  ck_assert_msg(r != NULL, "no reply to procurement.%s within 5 s", method);
  pt_status = r->status;
  snprintf(pt_message, sizeof pt_message, "%s", r->message ? r->message : "");
  ProtobufCMessage *out = NULL;
  if (r->status == GM__STATUS__OK) {
    out = protobuf_c_message_unpack(pt__methods[k].reply, NULL, r->body.len,
                                    r->body.data);
    ck_assert_msg(out != NULL, "procurement.%s reply does not decode", method);
  }
  gm__reply__free_unpacked(r, NULL);
  return out;
}

ProtobufCMessage *pt_call(const char *as, const char *method,
                          const ProtobufCMessage *req) {
  return pt_call_idem(as, method, NULL, req);
}

void pt_calendar_put(size_t n, const char *const *days) {
  Gm__Procurement__CalendarDay d[16], *pd[16];
  char text[16][32];
  ck_assert_uint_le(n, 16);
  for (size_t i = 0; i < n; i++) {
    snprintf(text[i], sizeof text[i], "%s", days[i]);
    char *eq = strchr(text[i], '=');
    ck_assert_ptr_nonnull(eq);
    *eq = '\0';
    gm__procurement__calendar_day__init(&d[i]);
    d[i].date = text[i];
    d[i].kind = eq + 1;
    pd[i] = &d[i];
  }
  Gm__Procurement__CalendarRequest cr = GM__PROCUREMENT__CALENDAR_REQUEST__INIT;
  cr.days = pd;
  cr.n_days = n;
  ProtobufCMessage *m = pt_call("centre", "calendar.put", &cr.base);
  ck_assert_msg(m, "%s", pt_message);
  protobuf_c_message_free_unpacked(m, NULL);
}

ProtobufCMessage *pt_call_settled(const char *as, const char *method,
                                  const ProtobufCMessage *req) {
  ProtobufCMessage *m = NULL;
  for (int i = 0; i < 1000; i++) {
    if ((m = pt_call(as, method, req)) || pt_status != GM__STATUS__UNAVAILABLE)
      break;
    nanosleep(&(struct timespec){0, 10 * 1000 * 1000}, NULL);
  }
  return m;
}

void pt_expect(const char *as, const char *method, const ProtobufCMessage *req,
               int status, const char *text) {
  ProtobufCMessage *m = pt_call(as, method, req);
  ck_assert_msg(m == NULL, "procurement.%s succeeded; expected status %d (%s)",
                method, status, text);
  ck_assert_msg(pt_status == status,
                "procurement.%s: status %d, expected %d: %s", method, pt_status,
                status, pt_message);
  ck_assert_msg(strstr(pt_message, text),
                "procurement.%s: message \"%s\" lacks \"%s\"", method,
                pt_message, text);
}

void pt_register(const char *who, const char *roles) {
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
  snprintf(key, sizeof key, "reg-%lu", ++pt__seq);
  Gm__Reply *r =
      gm_test_call(pt_conn, "root", "gm", "register", key, &req.base);
  ck_assert_msg(r && r->status == GM__STATUS__OK, "register %s: %s", who,
                r ? r->message : "no reply");
  gm__reply__free_unpacked(r, NULL);
}

char *pt_uscc(int i, char out[19]) {
  snprintf(out, 19, "91440300%09d", i);
  out[17] = gm_uscc_check_char(out);
  out[18] = '\0';
  return out;
}

void pt_party(const char *who, const char *uscc, Gm__Procurement__SmeClass s) {
  Gm__Procurement__Party p = GM__PROCUREMENT__PARTY__INIT;
  char name[80];
  snprintf(name, sizeof name, "%s Co., Ltd.", who);
  p.uscc = (char *)uscc;
  p.name = name;
  p.size = s;
  Gm__Procurement__Party *r =
      (Gm__Procurement__Party *)pt_call(who, "party.register", &p.base);
  ck_assert_msg(r, "party.register %s: %s", who, pt_message);
  pt_free(r);
}

void pt_category(const char *code, Gm__Procurement__Policy policy, int bp,
                 const char *labels, int min_grade) {
  Gm__Procurement__Category c = GM__PROCUREMENT__CATEGORY__INIT;
  Gm__Procurement__Category *pc = &c;
  Gm__Procurement__CategoryBatch b = GM__PROCUREMENT__CATEGORY_BATCH__INIT;
  char buf[256], *list[16], *save = NULL;
  size_t n = 0;
  snprintf(buf, sizeof buf, "%s", labels ? labels : "");
  for (char *t = strtok_r(buf, ",", &save); t && n < 16;
       t = strtok_r(NULL, ",", &save))
    list[n++] = t;
  c.code = (char *)code;
  c.name = (char *)code;
  c.policy = policy;
  c.deduction_bp = bp;
  c.labels = list;
  c.n_labels = n;
  c.min_grade = min_grade;
  b.categories = &pc;
  b.n_categories = 1;
  ProtobufCMessage *r = pt_call("centre", "category.put", &b.base);
  ck_assert_msg(r, "category.put %s: %s", code, pt_message);
  protobuf_c_message_free_unpacked(r, NULL);
}

void pt_cert(const char *number, const char *holder, const char *category,
             const char *label, int grade, int64_t from, int64_t to) {
  Gm__Procurement__Certificate c = GM__PROCUREMENT__CERTIFICATE__INIT;
  Gm__Procurement__Certificate *pc = &c;
  Gm__Procurement__CertificateBatch b =
      GM__PROCUREMENT__CERTIFICATE_BATCH__INIT;
  c.number = (char *)number;
  c.holder = (char *)holder;
  c.holder_name = "holder";
  c.product = "panel";
  c.model = "M1";
  c.category = (char *)category;
  c.label = (char *)label;
  c.grade = grade;
  c.issuer = "the centre";
  c.valid_from_ms = from;
  c.valid_to_ms = to;
  b.certificates = &pc;
  b.n_certificates = 1;
  ProtobufCMessage *r = pt_call("centre", "certificate.put", &b.base);
  ck_assert_msg(r, "certificate.put %s: %s", number, pt_message);
  protobuf_c_message_free_unpacked(r, NULL);
}

void pt_cert_status(const char *number, Gm__Procurement__CertStatus st,
                    const char *reason) {
  Gm__Procurement__CertificateStatusRequest q =
      GM__PROCUREMENT__CERTIFICATE_STATUS_REQUEST__INIT;
  q.number = (char *)number;
  q.status = st;
  q.reason = (char *)reason;
  ProtobufCMessage *r = pt_call("centre", "certificate.status", &q.base);
  ck_assert_msg(r, "certificate.status %s: %s", number, pt_message);
  protobuf_c_message_free_unpacked(r, NULL);
}

void pt_tender_init(pt_tender *d, const char *id, int64_t budget,
                    int64_t deadline) {
  memset(d, 0, sizeof *d);
  gm__procurement__tender__init(&d->t);
  d->t.id = (char *)id;
  d->t.title = "green fit-out materials";
  d->t.currency = "CNY";
  d->t.budget = budget;
  d->t.deadline_ms = deadline;
  d->t.green_preference = 1;
  d->t.sme_preference = 1;
  d->t.items = d->pitems;
  d->t.buyers = d->buyers;
  d->t.evaluators = d->evaluators;
}

void pt_item(pt_tender *d, const char *id, const char *category, int64_t qty,
             int64_t budget, const char *buyer) {
  size_t k = d->t.n_items++;
  Gm__Procurement__Item *it = &d->items[k];
  gm__procurement__item__init(it);
  it->id = (char *)id;
  it->category = (char *)category;
  it->quantity = qty;
  it->unit = "set";
  it->budget = budget;
  it->buyer = (char *)(buyer ? buyer : "");
  d->pitems[k] = it;
}

void pt_draft(const char *agency, pt_tender *d) {
  Gm__Procurement__DraftRequest dr = GM__PROCUREMENT__DRAFT_REQUEST__INIT;
  dr.tender = &d->t;
  ProtobufCMessage *v = pt_call(agency, "tender.draft", &dr.base);
  ck_assert_msg(v, "tender.draft %s: %s", d->t.id, pt_message);
  protobuf_c_message_free_unpacked(v, NULL);
}

void pt_publish_draft(const char *agency, const char *id) {
  Gm__Procurement__TenderRequest pr = GM__PROCUREMENT__TENDER_REQUEST__INIT;
  pr.tender_id = (char *)id;
  ProtobufCMessage *v = pt_call(agency, "tender.publish", &pr.base);
  ck_assert_msg(v, "tender.publish %s: %s", id, pt_message);
  protobuf_c_message_free_unpacked(v, NULL);
}

void pt_publish(const char *agency, pt_tender *d) {
  pt_draft(agency, d);
  pt_publish_draft(agency, d->t.id);
}

Gm__Procurement__Item *pt_new_item(Gm__Procurement__Item *it, const char *id,
                                   const char *category, int64_t qty,
                                   int64_t budget, const char *buyer) {
  gm__procurement__item__init(it);
  it->id = (char *)id;
  it->category = (char *)(category ? category : "DESK");
  it->quantity = qty;
  it->unit = "set";
  it->budget = budget;
  if (buyer) it->buyer = (char *)buyer;
  return it;
}

Gm__Procurement__DemandRequest pt_demand_request(const char *tender,
                                                 Gm__Procurement__Item **items,
                                                 size_t n) {
  Gm__Procurement__DemandRequest q = GM__PROCUREMENT__DEMAND_REQUEST__INIT;
  q.tender_id = (char *)tender;
  q.items = items;
  q.n_items = n;
  return q;
}

void pt_demand(const char *buyer, const char *tender,
               Gm__Procurement__Item **items, size_t n) {
  Gm__Procurement__DemandRequest q = pt_demand_request(tender, items, n);
  ProtobufCMessage *v = pt_call(buyer, "tender.demand", &q.base);
  ck_assert_msg(v, "tender.demand %s by %s: %s", tender, buyer, pt_message);
  protobuf_c_message_free_unpacked(v, NULL);
}

void pt_amend_init(pt_amend *a, const char *id, const char *fields,
                   const char *note) {
  memset(a, 0, sizeof *a);
  gm__procurement__amend_request__init(&a->q);
  gm__procurement__tender__init(&a->ch);
  a->q.tender_id = (char *)id;
  a->q.note = (char *)note;
  a->q.changes = &a->ch;
  a->q.fields = a->fields;
  snprintf(a->buf, sizeof a->buf, "%s", fields);
  char *save = NULL;
  for (char *f = strtok_r(a->buf, ",", &save); f && a->q.n_fields < 8;
       f = strtok_r(NULL, ",", &save))
    a->fields[a->q.n_fields++] = f;
}

char *pt_hashes(const char *tender, const char *keys) {
  redisContext *c = gm_test_redis_connect(pt_redis);
  size_t cap = 1 << 16, len = 0;
  char *out = malloc(cap), names[256], *save = NULL;
  ck_assert_ptr_nonnull(out);
  out[0] = '\0';
  snprintf(names, sizeof names, "%s", keys);
  for (char *k = strtok_r(names, " ", &save); k;
       k = strtok_r(NULL, " ", &save)) {
    redisReply *r =
        gm_test_redis_cmd(c, "HGETALL gm:{procurement:t:%s}:%s", tender, k);
    ck_assert_int_eq(r->type, REDIS_REPLY_ARRAY);
    for (size_t i = 0; i < r->elements; i++) {
      size_t n = r->element[i]->len;
      ck_assert(len + n + 3 < cap);
      memcpy(out + len, r->element[i]->str, n);
      len += n;
      out[len++] = '\n';
    }
    out[len++] = '|';
    out[len] = '\0';
    freeReplyObject(r);
  }
  redisFree(c);
  return out;
}

void pt_unchanged(const char *tender, const char *keys, char *before) {
  char *after = pt_hashes(tender, keys);
  ck_assert_str_eq(after, before);
  free(after);
  free(before);
}

void pt_refused(const char *tender, const char *as, const char *method,
                const ProtobufCMessage *req, int status, const char *text) {
  char *before = pt_hashes(tender, "t dm am");
  pt_expect(as, method, req, status, text);
  pt_unchanged(tender, "t dm am", before);
}

redisReply *pt_script(const char *who, const char *script, const char *tender,
                      size_t nargs, const char *const *args) {
  redisContext *c = gm_test_redis_connect(pt_redis);
  /* The library's function for the script: "<library>_<n>_<script>". */
  char fn[128] = "", want[64];
  snprintf(want, sizeof want, "_%s", script);
  redisReply *l = redisCommand(c, "FUNCTION LIST");
  ck_assert_msg(l && l->type == REDIS_REPLY_ARRAY, "FUNCTION LIST: %s",
                l ? l->str : c->errstr);
  for (size_t i = 0; i < l->elements && !fn[0]; i++) {
    const redisReply *lib = l->element[i];
    for (size_t j = 0; j + 1 < lib->elements; j += 2) {
      if (strcmp(lib->element[j]->str, "functions") != 0) continue;
      const redisReply *fs = lib->element[j + 1];
      for (size_t f = 0; f < fs->elements && !fn[0]; f++)
        for (size_t k = 0; k + 1 < fs->element[f]->elements; k += 2) {
          const redisReply *name = fs->element[f]->element[k + 1];
          size_t n = name->len, w = strlen(want);
          if (!strcmp(fs->element[f]->element[k]->str, "name") && n > w &&
              !strcmp(name->str + n - w, want) && name->str[n - w - 1] >= '0' &&
              name->str[n - w - 1] <= '9')
            snprintf(fn, sizeof fn, "%s", name->str);
        }
    }
  }
  freeReplyObject(l);
  ck_assert_msg(fn[0], "no Redis function for procurement script %s", script);
  /* gm__script_run's layout: the host's 4 keys and the script's one, the
     host's 4 arguments (no idempotency record: "0"), the script's. */
  const char *argv[32];
  size_t lens[32], argc = 0;
  char p[5][160], now[24];
  const char *parts[] = {"outbox", "idem:-", "dl", "dl:claims", "k"};
  ck_assert(nargs <= 32 - 15);
  argv[argc++] = "FCALL";
  argv[argc++] = fn;
  argv[argc++] = "5";
  for (size_t k = 0; k < 5; k++) {
    snprintf(p[k], sizeof p[k], "gm:{procurement:t:%s}:%s", tender, parts[k]);
    argv[argc++] = p[k];
  }
  snprintf(now, sizeof now, "%lld", (long long)pt_now);
  argv[argc++] = "0";
  argv[argc++] = now;
  argv[argc++] = who;
  argv[argc++] = "86400";
  for (size_t k = 0; k < nargs; k++) argv[argc++] = args[k];
  for (size_t k = 0; k < argc; k++) lens[k] = strlen(argv[k]);
  redisReply *r = redisCommandArgv(c, (int)argc, argv, lens);
  ck_assert_msg(r, "FCALL %s: %s", fn, c->errstr);
  redisFree(c);
  /* On a cluster, the tender's slot may be another master's. */
  if (r->type == REDIS_REPLY_ERROR && !strncmp(r->str, "MOVED ", 6)) {
    char host[64];
    int port;
    ck_assert_int_eq(
        sscanf(strrchr(r->str, ' ') + 1, "%63[^:]:%d", host, &port), 2);
    freeReplyObject(r);
    c = redisConnect(host, port);
    ck_assert_msg(c && !c->err, "connect %s:%d", host, port);
    r = redisCommandArgv(c, (int)argc, argv, lens);
    ck_assert_msg(r, "FCALL %s: %s", fn, c->errstr);
    redisFree(c);
  }
  return r;
}

Gm__Procurement__BidReceipt *pt_bid(const char *who, const char *tender,
                                    Gm__Procurement__SmeClass sme,
                                    const char *const *lines, size_t n) {
  Gm__Procurement__BidRequest q = GM__PROCUREMENT__BID_REQUEST__INIT;
  Gm__Procurement__BidLine l[16], *pl[16];
  char buf[16][128];
  ck_assert(n <= 16);
  for (size_t i = 0; i < n; i++) {
    gm__procurement__bid_line__init(&l[i]);
    snprintf(buf[i], sizeof buf[i], "%s", lines[i]);
    char *eq = strchr(buf[i], '='), *at = strchr(buf[i], '@');
    ck_assert_ptr_nonnull(eq);
    *eq = '\0';
    if (at) *at = '\0';
    l[i].item = buf[i];
    l[i].unit_price = atoll(eq + 1);
    l[i].certificate = at ? at + 1 : "";
    pl[i] = &l[i];
  }
  q.tender_id = (char *)tender;
  q.currency = "CNY";
  q.lines = pl;
  q.n_lines = n;
  q.sme = sme;
  return (Gm__Procurement__BidReceipt *)pt_call(who, "bid.submit", &q.base);
}

Gm__Procurement__TenderView *pt_tender_get(const char *tender) {
  Gm__Procurement__TenderRequest q = GM__PROCUREMENT__TENDER_REQUEST__INIT;
  q.tender_id = (char *)tender;
  Gm__Procurement__TenderView *v =
      (Gm__Procurement__TenderView *)pt_call("root", "tender.get", &q.base);
  ck_assert_msg(v, "tender.get %s: %s", tender, pt_message);
  return v;
}

char *pt_wait_state(const char *tender, const char *state) {
  static char last[32];
  for (int i = 0; i < 1000; i++) {
    Gm__Procurement__TenderView *v = pt_tender_get(tender);
    snprintf(last, sizeof last, "%s", v->tender->state);
    pt_free(v);
    if (strcmp(last, state) == 0) break;
    nanosleep(&(struct timespec){0, 10 * 1000 * 1000}, NULL);
  }
  return last;
}

Gm__Procurement__Sheet *pt_sheet(const char *tender) {
  Gm__Procurement__SheetRequest q = GM__PROCUREMENT__SHEET_REQUEST__INIT;
  q.tender_id = (char *)tender;
  q.limit = 1000;
  for (int i = 0; i < 500; i++) {
    Gm__Procurement__Sheet *s =
        (Gm__Procurement__Sheet *)pt_call("root", "evaluation.sheet", &q.base);
    /* Settled a few ms after the evaluation: wait for every row. */
    if (s && (int)s->n_rows == s->total_rows && s->total_rows > 0) return s;
    if (s) pt_free(s);
    nanosleep(&(struct timespec){0, 20 * 1000 * 1000}, NULL);
  }
  ck_abort_msg("no evaluation sheet of %s: %s", tender, pt_message);
  return NULL;
}

const Gm__Procurement__SheetRow *pt_row(const Gm__Procurement__Sheet *s,
                                        const char *who) {
  for (size_t i = 0; i < s->n_rows; i++)
    if (strcmp(s->rows[i]->supplier, who) == 0) return s->rows[i];
  return NULL;
}

Gm__Procurement__Award *pt_award(const char *agency, const char *tender) {
  Gm__Procurement__AwardRequest q = GM__PROCUREMENT__AWARD_REQUEST__INIT;
  q.tender_id = (char *)tender;
  Gm__Procurement__Award *a =
      (Gm__Procurement__Award *)pt_call(agency, "tender.award", &q.base);
  ck_assert_msg(a, "tender.award %s: %s", tender, pt_message);
  return a;
}

static sqlite3 *pt__ledger(void) {
  sqlite3 *db;
  ck_assert_int_eq(sqlite3_open_v2(gm_test_gmd_ledger(pt_gmd), &db,
                                   SQLITE_OPEN_READONLY, NULL),
                   SQLITE_OK);
  sqlite3_busy_timeout(db, 5000);
  return db;
}

int64_t pt_ledger_int(const char *sql) {
  sqlite3 *db = pt__ledger();
  sqlite3_stmt *st;
  int64_t v = -1;
  ck_assert_msg(sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK,
                "%s: %s", sql, sqlite3_errmsg(db));
  if (sqlite3_step(st) == SQLITE_ROW) v = sqlite3_column_int64(st, 0);
  sqlite3_finalize(st);
  sqlite3_close(db);
  return v;
}

int64_t pt_ledger_wait(const char *sql, int64_t want) {
  int64_t v = -1;
  for (int i = 0; i < 1000; i++) {
    v = pt_ledger_int(sql);
    if (v == want) return v;
    nanosleep(&(struct timespec){0, 10 * 1000 * 1000}, NULL);
  }
  return v;
}

void pt_ledger_text(const char *sql, char *out, size_t outlen) {
  sqlite3 *db = pt__ledger();
  sqlite3_stmt *st;
  out[0] = '\0';
  ck_assert_msg(sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK,
                "%s: %s", sql, sqlite3_errmsg(db));
  if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0))
    snprintf(out, outlen, "%s", (const char *)sqlite3_column_text(st, 0));
  sqlite3_finalize(st);
  sqlite3_close(db);
}

gm_feed *pt_feed(const char *as, const char *topic) {
  gm_client_options o;
  gm_client_options_init(&o);
  o.dev_participant = as;
  gm_feed *f = gm_feed_new(gm_test_gmd_feed(pt_gmd), &o);
  ck_assert_msg(f != NULL, "%s", gm_client_last_error());
  ck_assert_int_eq(gm_feed_subscribe(f, topic), GM_OK);
  return f;
}

static int pt__holds(const Gm__Event *ev, const char *text) {
  size_t n = strlen(text);
  for (size_t i = 0; ev && i + n <= ev->body.len; i++)
    if (!memcmp(ev->body.data + i, text, n)) return 1;
  return 0;
}

static int64_t pt__mono_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int pt_feed_until(gm_feed *f, int ms, const char *text, const char *unwanted) {
  int64_t end = pt__mono_ms() + ms;
  for (;;) {
    int64_t left = end - pt__mono_ms();
    if (left <= 0) return 0;
    char *topic = NULL;
    Gm__Event *ev = NULL;
    if (gm_feed_recv(f, &topic, &ev, (int)left) != GM_OK) {
      free(topic);
      return 0;
    }
    int r = unwanted && pt__holds(ev, unwanted) ? -1 : pt__holds(ev, text);
    free(topic);
    gm_feed_event_free(&ev);
    if (r) return r;
  }
}

void pt_feed_warm(gm_feed *f, const char *category) {
  static int seq;
  for (int k = 0; k < 50; k++) {
    pt_tender w;
    char id[32];
    snprintf(id, sizeof id, "T-WARM-%d", ++seq);
    pt_tender_init(&w, id, 10000000, pt_now + 40 * PT_DAY);
    pt_item(&w, "W1", category, 10, 0, NULL);
    pt_publish("city", &w);
    if (pt_feed_until(f, 200, id, NULL) == 1) return;
  }
  ck_abort_msg("the feed never heard a published tender");
}
