/* The carbon test harness (harness.h). */
#include "harness.h"

#include <sqlite3.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

gm_test_redis *ct_redis;
gm_test_gmd *ct_gmd;
gm_test_conn *ct_conn;
int ct_status;
char ct_message[1024];

static unsigned long ct__idem_seq;
/* The test's connection holding the ledger's write lock (ct_ledger_hold). */
static sqlite3 *ct__held;

static const char *const ct__mutating[] = {
    "instrument.create", "instrument.halt",
    "instrument.resume", "account.deposit",
    "account.withdraw",  "account.configure",
    "order.place",       "order.cancel",
    "order.replace",     "order.mass_cancel",
    "block.offer",       "block.accept",
    "block.reject",      "block.withdraw",
    "records.close",     NULL};

/* gmd in `home`'s folder; `redis_conf` (a [redis] section or "") comes
   first in its config. */
static void ct__start_gmd(gm_test_redis *home, const char *redis_conf,
                          const char *extra_conf, int64_t now_ms) {
  char conf[4096];
  /* gmd starts at the test's time (a restart too: the config is kept), so
   * no deadline the test set is late at a start-up. */
  snprintf(conf, sizeof conf,
           "%s[testing]\nclock = manual\nclock_start_ms = %lld\n"
           "[plugins]\nload = carbon\n[deadlines]\npoll_ms = 20\n"
           "[market.carbon]\n%s\n",
           redis_conf, (long long)now_ms, extra_conf ? extra_conf : "");
  ct_gmd = gm_test_gmd_start(home, GM_BUILD_PLUGIN_DIR, conf);
  ct_conn = gm_test_conn_new(gm_test_gmd_endpoint(ct_gmd), NULL, NULL, NULL);
  ct_clock(now_ms);
}

static void ct__start(const char *extra_conf, int64_t now_ms, int aof) {
  ct_redis = gm_test_redis_start_aof(aof);
  ct__start_gmd(ct_redis, "", extra_conf, now_ms);
}

void ct_start_cluster(gm_test_cluster *cl, const char *extra_conf,
                      int64_t now_ms) {
  ct_redis = NULL; /* the cluster's: ct_stop leaves it */
  ct__start_gmd(gm_test_cluster_home(cl), gm_test_cluster_conf(cl), extra_conf,
                now_ms);
}

void ct_start(const char *extra_conf, int64_t now_ms) {
  ct__start(extra_conf, now_ms, 0);
}

void ct_start_aof(const char *extra_conf, int64_t now_ms) {
  ct__start(extra_conf, now_ms, 1);
}

void ct_stop(void) {
  if (ct__held) ct_ledger_release();
  gm_test_conn_destroy(&ct_conn);
  if (ct_gmd) gm_test_gmd_stop(&ct_gmd);
  gm_test_redis_stop(&ct_redis);
}

int64_t ct_at(const char *date, int hh, int mm) {
  int64_t day;
  ck_assert_msg(gm__carbon_parse_date(date, &day) == 0, "bad date %s", date);
  return gm__carbon_day_start_ms(day) + (hh * 60 + mm) * INT64_C(60000);
}

void ct_clock(int64_t ms) {
  Gm__ClockSetRequest req = GM__CLOCK_SET_REQUEST__INIT;
  char idem[32];
  req.time_ms = ms;
  snprintf(idem, sizeof idem, "clock-%lu", ++ct__idem_seq);
  Gm__Reply *r =
      gm_test_call(ct_conn, "root", "gm", "clock.set", idem, &req.base);
  ck_assert_msg(r && r->status == GM__STATUS__OK, "clock.set failed: %s",
                r ? r->message : "no reply");
  gm__reply__free_unpacked(r, NULL);
}

static const ProtobufCMessageDescriptor *ct__reply_type(const char *method) {
  static const struct {
    const char *name;
    const ProtobufCMessageDescriptor *d;
  } map[] = {
      {"instrument.create", &gm__carbon__instrument__descriptor},
      {"instrument.list", &gm__carbon__instrument_list__descriptor},
      {"instrument.get", &gm__carbon__instrument__descriptor},
      {"instrument.halt", &gm__carbon__instrument__descriptor},
      {"instrument.resume", &gm__carbon__instrument__descriptor},
      {"account.deposit", &gm__carbon__account__descriptor},
      {"account.withdraw", &gm__carbon__account__descriptor},
      {"account.get", &gm__carbon__account__descriptor},
      {"account.configure", &gm__carbon__account__descriptor},
      {"order.place", &gm__carbon__place_reply__descriptor},
      {"order.cancel", &gm__carbon__order__descriptor},
      {"order.replace", &gm__carbon__place_reply__descriptor},
      {"order.mass_cancel", &gm__carbon__mass_cancel_reply__descriptor},
      {"order.list", &gm__carbon__order_list__descriptor},
      {"order.get", &gm__carbon__order__descriptor},
      {"block.offer", &gm__carbon__block_offer__descriptor},
      {"block.accept", &gm__carbon__block_offer__descriptor},
      {"block.reject", &gm__carbon__block_offer__descriptor},
      {"block.withdraw", &gm__carbon__block_offer__descriptor},
      {"block.list", &gm__carbon__offer_list__descriptor},
      {"market.depth", &gm__carbon__depth__descriptor},
      {"market.stats", &gm__carbon__stats__descriptor},
      {"records.trades", &gm__carbon__trade_list__descriptor},
      {"records.statement", &gm__carbon__statement__descriptor},
      {"records.close", &gm__carbon__close_reply__descriptor},
      {"records.reconcile", &gm__carbon__reconcile_reply__descriptor},
  };
  for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
    if (!strcmp(map[i].name, method)) return map[i].d;
  ck_abort_msg("no reply type known for %s", method);
  return NULL;
}

ProtobufCMessage *ct_reply_body(const char *method, const Gm__Reply *r) {
  if (r->status != GM__STATUS__OK) return NULL;
  ProtobufCMessage *out = protobuf_c_message_unpack(
      ct__reply_type(method), NULL, r->body.len, r->body.data);
  ck_assert_msg(out != NULL, "carbon.%s reply does not decode", method);
  return out;
}

ProtobufCMessage *ct_call_idem(const char *as, const char *method,
                               const char *idem, const ProtobufCMessage *req) {
  char key[48];
  if (!idem) {
    for (int i = 0; ct__mutating[i]; i++)
      if (!strcmp(ct__mutating[i], method)) {
        snprintf(key, sizeof key, "k-%lu", ++ct__idem_seq);
        idem = key;
      }
  }
  Gm__Reply *r = gm_test_call(ct_conn, as, "carbon", method, idem, req);
  ck_assert_msg(r != NULL, "no reply to carbon.%s within 5 s", method);
  ct_status = r->status;
  snprintf(ct_message, sizeof ct_message, "%s", r->message ? r->message : "");
  ProtobufCMessage *out = ct_reply_body(method, r);
  gm__reply__free_unpacked(r, NULL);
  return out;
}

ProtobufCMessage *ct_call(const char *as, const char *method,
                          const ProtobufCMessage *req) {
  return ct_call_idem(as, method, NULL, req);
}

void ct_expect(const char *as, const char *method, const ProtobufCMessage *req,
               int status, const char *text) {
  ProtobufCMessage *m = ct_call(as, method, req);
  ck_assert_msg(m == NULL, "carbon.%s succeeded; expected status %d (%s)",
                method, status, text);
  ck_assert_msg(ct_status == status, "carbon.%s: status %d, expected %d: %s",
                method, ct_status, status, ct_message);
  ck_assert_msg(strstr(ct_message, text),
                "carbon.%s: message \"%s\" lacks \"%s\"", method, ct_message,
                text);
}

void ct_register(const char *who, const char *roles) {
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
  snprintf(key, sizeof key, "reg-%lu", ++ct__idem_seq);
  Gm__Reply *r =
      gm_test_call(ct_conn, "root", "gm", "register", key, &req.base);
  ck_assert_msg(r && r->status == GM__STATUS__OK, "register %s: %s", who,
                r ? r->message : "no reply");
  gm__reply__free_unpacked(r, NULL);
}

void ct_create(const char *sym, int64_t ref) {
  Gm__Carbon__Instrument in = GM__CARBON__INSTRUMENT__INIT;
  Gm__Carbon__CreateInstrumentRequest req =
      GM__CARBON__CREATE_INSTRUMENT_REQUEST__INIT;
  in.symbol = (char *)sym;
  in.reference_price = ref;
  req.instrument = &in;
  ProtobufCMessage *m = ct_call("root", "instrument.create", &req.base);
  ck_assert_msg(m, "instrument.create %s: %s", sym, ct_message);
  protobuf_c_message_free_unpacked(m, NULL);
}

void ct_deposit(const char *who, const char *sym, int64_t cash, int64_t alw) {
  Gm__Carbon__MoveRequest req = GM__CARBON__MOVE_REQUEST__INIT;
  req.participant = (char *)who;
  req.symbol = (char *)sym;
  req.reference = "test";
  for (int k = 0; k < 2; k++) {
    req.asset =
        k ? GM__CARBON__ASSET__ASSET_ALLOWANCE : GM__CARBON__ASSET__ASSET_CASH;
    req.amount = k ? alw : cash;
    if (req.amount == 0) continue;
    ProtobufCMessage *m = ct_call("root", "account.deposit", &req.base);
    ck_assert_msg(m, "deposit: %s", ct_message);
    protobuf_c_message_free_unpacked(m, NULL);
  }
}

Gm__Carbon__PlaceReply *ct_limit(const char *who, const char *sym,
                                 Gm__Carbon__Side side, int64_t price,
                                 int64_t qty, Gm__Carbon__TimeInForce tif) {
  Gm__Carbon__PlaceRequest req = GM__CARBON__PLACE_REQUEST__INIT;
  req.symbol = (char *)sym;
  req.side = side;
  req.price = price;
  req.quantity = qty;
  req.tif = tif;
  Gm__Carbon__PlaceReply *r =
      (Gm__Carbon__PlaceReply *)ct_call(who, "order.place", &req.base);
  ck_assert_msg(r, "order.place by %s: %s", who, ct_message);
  return r;
}

Gm__Carbon__OfferRequest ct_offer_request(const char *sym,
                                          Gm__Carbon__Side side,
                                          const char *counterparty,
                                          int64_t price, int64_t qty) {
  Gm__Carbon__OfferRequest o = GM__CARBON__OFFER_REQUEST__INIT;
  o.symbol = (char *)sym;
  o.side = side;
  o.counterparty = (char *)counterparty;
  o.price = price;
  o.quantity = qty;
  return o;
}

Gm__Carbon__Account *ct_account(const char *who, const char *sym) {
  Gm__Carbon__AccountRequest req = GM__CARBON__ACCOUNT_REQUEST__INIT;
  req.symbol = (char *)sym;
  Gm__Carbon__Account *a =
      (Gm__Carbon__Account *)ct_call(who, "account.get", &req.base);
  ck_assert_msg(a, "account.get %s: %s", who, ct_message);
  return a;
}

Gm__Carbon__Depth *ct_depth(const char *sym, int levels) {
  Gm__Carbon__DepthRequest req = GM__CARBON__DEPTH_REQUEST__INIT;
  req.symbol = (char *)sym;
  req.levels = levels;
  Gm__Carbon__Depth *d =
      (Gm__Carbon__Depth *)ct_call("root", "market.depth", &req.base);
  ck_assert_msg(d, "market.depth: %s", ct_message);
  return d;
}

int64_t ct_ledger_int(const char *sql) {
  sqlite3 *db;
  sqlite3_stmt *st;
  int64_t v = -1;
  ck_assert_int_eq(sqlite3_open_v2(gm_test_gmd_ledger(ct_gmd), &db,
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

int64_t ct_ledger_wait(const char *sql, int64_t want) {
  int64_t v = -1;
  for (int i = 0; i < 1000; i++) {
    v = ct_ledger_int(sql);
    if (v == want) return v;
    struct timespec ts = {0, 10 * 1000 * 1000};
    nanosleep(&ts, NULL);
  }
  return v;
}

Gm__Carbon__ReconcileReply *ct_reconcile_settled(const char *symbol) {
  Gm__Carbon__ReconcileRequest rr = GM__CARBON__RECONCILE_REQUEST__INIT;
  Gm__Carbon__ReconcileReply *rec = NULL;
  rr.symbol = (char *)symbol;
  for (int i = 0; i < 500; i++) {
    if (rec) ct_free(rec);
    rec = (Gm__Carbon__ReconcileReply *)ct_call("root", "records.reconcile",
                                                &rr.base);
    ck_assert_msg(rec, "%s", ct_message);
    if (rec->unsettled == 0) return rec;
    nanosleep(&(struct timespec){0, 20 * 1000 * 1000}, NULL);
  }
  ck_abort_msg("records.reconcile: %lld entries still unsettled after 10 s",
               (long long)rec->unsettled);
  return NULL;
}

void ct_ledger_hold(void) {
  ck_assert_ptr_null(ct__held);
  ck_assert_int_eq(sqlite3_open_v2(gm_test_gmd_ledger(ct_gmd), &ct__held,
                                   SQLITE_OPEN_READWRITE, NULL),
                   SQLITE_OK);
  /* The settler may be mid-batch: wait for its COMMIT. */
  sqlite3_busy_timeout(ct__held, 10000);
  char *msg = NULL;
  ck_assert_msg(
      sqlite3_exec(ct__held, "BEGIN IMMEDIATE", NULL, NULL, &msg) == SQLITE_OK,
      "holding the ledger: %s", msg ? msg : "?");
}

void ct_ledger_release(void) {
  ck_assert_ptr_nonnull(ct__held);
  ck_assert_int_eq(sqlite3_exec(ct__held, "ROLLBACK", NULL, NULL, NULL),
                   SQLITE_OK);
  sqlite3_close(ct__held);
  ct__held = NULL;
}
