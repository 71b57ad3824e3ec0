/*
 * gm_bench_procurement: the procurement market's figures.
 *
 *   1. the baseline: core pings through the same gmd, the same connections
 *      and the same number in flight;
 *   2. sealed bids accepted per second, each supplier its own participant
 *      (a tender of --bids suppliers), next to the baseline;
 *   3. Redis memory per bid, the tender's bids settled;
 *   4. the opening and evaluation of a tender with --small bids and of the
 *      one with --bids bids: each from the deadline to the evaluated state,
 *      and the cost per bid of each (linear when the ratio is near 1);
 *   5. the catalogue import of --certs certificates from CSV with the
 *      built gm (every line checked first, then sent in batches), to the
 *      last one settled in SQLite.
 * Prints figures; never a test.  plugins/procurement/bench/run starts a
 * private redis-server and gmd (manual clock) and passes their endpoints.
 */
#include <getopt.h>
#include <hiredis/hiredis.h>
#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include <greenmarket/client.h>
#include <greenmarket/uscc.h>
#include "greenmarket.pb-c.h"

#include "procurement.pb-c.h"

/* Supplier i's credit code (one party per code): a well-formed code of
   its own, which its certificate C-i names as the holder. */
static char *uscc_of(long i, char out[19]) {
  snprintf(out, 19, "91440300%09ld", i % 1000000000);
  out[17] = gm_uscc_check_char(out);
  out[18] = '\0';
  return out;
}
/* Monday 2026-03-02 10:00 in Shanghai. */
#define T0 INT64_C(1772416800000)
#define DAY INT64_C(86400000)

static const char *endpoint, *redis_sock, *ledger, *gm_bin, *plugin_dir,
    *tmpdir;
static long nbids = 10000, nsmall = 1000, ncerts = 100000, conns = 8,
            depth = 16;

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *fmt, const char *arg) {
  fprintf(stderr, "procurement bench: ");
  fprintf(stderr, fmt, arg);
  fputc('\n', stderr);
  exit(1);
}

/* ---- requests over raw DEALER sockets, any participant per request ---- */

typedef struct req {
  const char *as, *market, *method, *idem;
  uint8_t body[4096];
  size_t len;
} req;

/* Fills r for request i of a phase. */
typedef void (*make_fn)(size_t i, req *r);

static void *zctx;

static void send_req(void *s, uint64_t id, const req *r) {
  Gm__Request q = GM__REQUEST__INIT;
  uint8_t frame[8192];
  q.version = 1;
  q.request_id = id;
  q.market = (char *)r->market;
  q.method = (char *)r->method;
  q.idempotency_key = (char *)(r->idem ? r->idem : "");
  q.dev_participant = (char *)r->as;
  q.body.data = (uint8_t *)r->body;
  q.body.len = r->len;
  size_t n = gm__request__pack(&q, frame);
  if (zmq_send(s, frame, n, 0) < 0) die("send failed: %s", zmq_strerror(errno));
}

/* Runs n requests over `conns` connections with `depth` in flight each;
   returns the seconds taken, and counts refusals in *bad. */
static double pipeline(size_t n, make_fn make, size_t *bad) {
  void *s[64];
  zmq_pollitem_t items[64];
  size_t next = 0, done = 0;
  int k = (int)conns;
  *bad = 0;
  for (int c = 0; c < k; c++) {
    s[c] = zmq_socket(zctx, ZMQ_DEALER);
    int hwm = 0;
    zmq_setsockopt(s[c], ZMQ_SNDHWM, &hwm, sizeof hwm);
    zmq_setsockopt(s[c], ZMQ_RCVHWM, &hwm, sizeof hwm);
    if (zmq_connect(s[c], endpoint) != 0) die("connect %s", endpoint);
    items[c] = (zmq_pollitem_t){s[c], 0, ZMQ_POLLIN, 0};
  }
  req *r = malloc(sizeof *r);
  double t0 = now_s();
  for (int c = 0; c < k; c++)
    for (long d = 0; d < depth && next < n; d++) {
      make(next, r);
      send_req(s[c], ++next, r);
    }
  while (done < n) {
    if (zmq_poll(items, k, 10000) <= 0) die("no reply in 10 s%s", "");
    for (int c = 0; c < k; c++) {
      if (!(items[c].revents & ZMQ_POLLIN)) continue;
      zmq_msg_t m;
      zmq_msg_init(&m);
      while (zmq_msg_recv(&m, s[c], ZMQ_DONTWAIT) >= 0) {
        Gm__Reply *rep =
            gm__reply__unpack(NULL, zmq_msg_size(&m), zmq_msg_data(&m));
        if (!rep || rep->status != GM__STATUS__OK) {
          if (*bad == 0 && rep)
            fprintf(stderr, "procurement bench: first refusal: %s\n",
                    rep->message);
          (*bad)++;
        }
        if (rep) gm__reply__free_unpacked(rep, NULL);
        done++;
        if (next < n) {
          make(next, r);
          send_req(s[c], ++next, r);
        }
      }
      zmq_msg_close(&m);
    }
  }
  double t = now_s() - t0;
  free(r);
  for (int c = 0; c < k; c++) zmq_close(s[c]);
  return t;
}

/* One call, waited for; returns the reply (free it) and exits on failure
   unless `may_fail`. */
static Gm__Reply *call1(const char *as, const char *market, const char *method,
                        const ProtobufCMessage *body, int may_fail) {
  static unsigned long seq;
  char idem[48];
  req r = {.as = as, .market = market, .method = method, .idem = idem};
  snprintf(idem, sizeof idem, "bench-%lu-%ld", ++seq, (long)getpid());
  r.len = body ? protobuf_c_message_pack(body, r.body) : 0;
  void *s = zmq_socket(zctx, ZMQ_DEALER);
  zmq_connect(s, endpoint);
  send_req(s, 1, &r);
  zmq_pollitem_t it = {s, 0, ZMQ_POLLIN, 0};
  if (zmq_poll(&it, 1, 30000) <= 0) die("no reply to %s", method);
  zmq_msg_t m;
  zmq_msg_init(&m);
  zmq_msg_recv(&m, s, 0);
  Gm__Reply *rep = gm__reply__unpack(NULL, zmq_msg_size(&m), zmq_msg_data(&m));
  zmq_msg_close(&m);
  zmq_close(s);
  if (!rep || (rep->status != GM__STATUS__OK && !may_fail)) {
    fprintf(stderr, "procurement bench: %s: %s\n", method,
            rep ? rep->message : "undecodable reply");
    exit(1);
  }
  return rep;
}

static void clock_set(int64_t ms) {
  Gm__ClockSetRequest q = GM__CLOCK_SET_REQUEST__INIT;
  q.time_ms = ms;
  gm__reply__free_unpacked(call1("root", "gm", "clock.set", &q.base, 0), NULL);
}

/* ---- phases ---- */

static void mk_ping(size_t i, req *r) {
  Gm__PingRequest q = GM__PING_REQUEST__INIT;
  (void)i;
  q.echo = "bench";
  r->as = "bench";
  r->market = "gm";
  r->method = "ping";
  r->idem = NULL;
  r->len = protobuf_c_message_pack(&q.base, r->body);
}

static void mk_party_get(size_t i, req *r) {
  static char who[32];
  Gm__Procurement__PartyRequest q = GM__PROCUREMENT__PARTY_REQUEST__INIT;
  snprintf(who, sizeof who, "s%06zu", i % 100);
  q.id = who;
  r->as = "bench";
  r->market = "procurement";
  r->method = "party.get";
  r->idem = NULL;
  r->len = protobuf_c_message_pack(&q.base, r->body);
}

static void mk_party(size_t i, req *r) {
  static char who[32], idem[48], code[19];
  Gm__Procurement__Party q = GM__PROCUREMENT__PARTY__INIT;
  snprintf(who, sizeof who, "s%06zu", i);
  snprintf(idem, sizeof idem, "party-%zu", i);
  q.uscc = uscc_of((long)i, code);
  q.name = who;
  q.size = (Gm__Procurement__SmeClass)(i % 4);
  r->as = who;
  r->market = "procurement";
  r->method = "party.register";
  r->idem = idem;
  r->len = protobuf_c_message_pack(&q.base, r->body);
}

static const char *bid_tender;

static void mk_bid(size_t i, req *r) {
  static char who[32], idem[64], cert[32];
  Gm__Procurement__BidRequest q = GM__PROCUREMENT__BID_REQUEST__INIT;
  Gm__Procurement__BidLine a = GM__PROCUREMENT__BID_LINE__INIT,
                           b = GM__PROCUREMENT__BID_LINE__INIT;
  Gm__Procurement__BidLine *lines[] = {&a, &b};
  snprintf(who, sizeof who, "s%06zu", i);
  snprintf(idem, sizeof idem, "bid-%s-%zu", bid_tender, i);
  snprintf(cert, sizeof cert, "C-%06zu", i);
  a.item = "D1";
  a.unit_price = 100000 + (int64_t)((i * 7919) % 50000);
  b.item = "I1";
  b.unit_price = 5000 + (int64_t)((i * 104729) % 3000);
  b.certificate = i % 2 ? cert : ""; /* half cite a certificate */
  q.tender_id = (char *)bid_tender;
  q.currency = "CNY";
  q.lines = lines;
  q.n_lines = 2;
  q.sme = (Gm__Procurement__SmeClass)(i % 4);
  r->as = who;
  r->market = "procurement";
  r->method = "bid.submit";
  r->idem = idem;
  r->len = protobuf_c_message_pack(&q.base, r->body);
}

static void publish(const char *id, int64_t deadline) {
  Gm__Procurement__Tender t = GM__PROCUREMENT__TENDER__INIT;
  Gm__Procurement__Item a = GM__PROCUREMENT__ITEM__INIT,
                        b = GM__PROCUREMENT__ITEM__INIT;
  Gm__Procurement__Item *items[] = {&a, &b};
  t.id = (char *)id;
  t.title = "bench";
  t.currency = "CNY";
  t.budget = INT64_C(100000000000);
  t.deadline_ms = deadline;
  t.green_preference = t.sme_preference = 1;
  a.id = "D1";
  a.category = "DESK";
  a.quantity = 10;
  a.unit = "set";
  b.id = "I1";
  b.category = "INSUL";
  b.quantity = 100;
  b.unit = "m2";
  t.items = items;
  t.n_items = 2;
  Gm__Procurement__DraftRequest d = GM__PROCUREMENT__DRAFT_REQUEST__INIT;
  d.tender = &t;
  gm__reply__free_unpacked(
      call1("city", "procurement", "tender.draft", &d.base, 0), NULL);
  Gm__Procurement__TenderRequest p = GM__PROCUREMENT__TENDER_REQUEST__INIT;
  p.tender_id = (char *)id;
  gm__reply__free_unpacked(
      call1("city", "procurement", "tender.publish", &p.base, 0), NULL);
}

static char *state_of(const char *id) {
  static char st[32];
  Gm__Procurement__TenderRequest p = GM__PROCUREMENT__TENDER_REQUEST__INIT;
  p.tender_id = (char *)id;
  Gm__Reply *rep = call1("city", "procurement", "tender.get", &p.base, 0);
  Gm__Procurement__TenderView *v =
      gm__procurement__tender_view__unpack(NULL, rep->body.len, rep->body.data);
  snprintf(st, sizeof st, "%s", v ? v->tender->state : "?");
  if (v) gm__procurement__tender_view__free_unpacked(v, NULL);
  gm__reply__free_unpacked(rep, NULL);
  return st;
}

static int64_t ledger_int(const char *sql) {
  sqlite3 *db;
  sqlite3_stmt *st;
  int64_t v = -1;
  if (sqlite3_open_v2(ledger, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK)
    die("cannot open %s", ledger);
  sqlite3_busy_timeout(db, 5000);
  if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK &&
      sqlite3_step(st) == SQLITE_ROW)
    v = sqlite3_column_int64(st, 0);
  sqlite3_finalize(st);
  sqlite3_close(db);
  return v;
}

static void wait_ledger(const char *sql, int64_t want) {
  for (int i = 0; i < 60000; i++) {
    if (ledger_int(sql) >= want) return;
    usleep(10000);
  }
  die("the ledger never reached %s", sql);
}

static long long used_memory(redisContext *rc) {
  redisReply *r = redisCommand(rc, "INFO memory");
  long long v = 0;
  const char *p = r && r->str ? strstr(r->str, "used_memory:") : NULL;
  if (p) v = atoll(p + 12);
  if (r) freeReplyObject(r);
  return v;
}

/* Seconds from the deadline to the evaluated state of tender `id`. */
static double open_time(const char *id, int64_t deadline) {
  double t0 = now_s();
  clock_set(deadline);
  for (;;) {
    const char *st = state_of(id);
    if (!strcmp(st, "evaluated") || !strcmp(st, "unsuccessful")) break;
    usleep(2000);
  }
  return now_s() - t0;
}

static void usage(void) {
  fprintf(stderr,
          "usage: gm_bench_procurement --endpoint E --redis SOCKET --ledger "
          "FILE --gm GM --plugin-dir DIR --tmp DIR\n"
          "  [--bids N (10000)] [--small N (1000)] [--certs N (100000)]\n"
          "  [--conns N (8)] [--depth N (16)]\n"
          "plugins/procurement/bench/run sets all of this up.\n");
  exit(2);
}

int main(int argc, char **argv) {
  static const struct option opts[] = {
      {"endpoint", 1, 0, 'e'}, {"redis", 1, 0, 'r'},      {"ledger", 1, 0, 'l'},
      {"gm", 1, 0, 'g'},       {"plugin-dir", 1, 0, 'p'}, {"tmp", 1, 0, 't'},
      {"bids", 1, 0, 'b'},     {"small", 1, 0, 's'},      {"certs", 1, 0, 'c'},
      {"conns", 1, 0, 'n'},    {"depth", 1, 0, 'd'},      {0, 0, 0, 0}};
  for (int c; (c = getopt_long(argc, argv, "", opts, NULL)) != -1;) {
    switch (c) {
      case 'e':
        endpoint = optarg;
        break;
      case 'r':
        redis_sock = optarg;
        break;
      case 'l':
        ledger = optarg;
        break;
      case 'g':
        gm_bin = optarg;
        break;
      case 'p':
        plugin_dir = optarg;
        break;
      case 't':
        tmpdir = optarg;
        break;
      case 'b':
        nbids = atol(optarg);
        break;
      case 's':
        nsmall = atol(optarg);
        break;
      case 'c':
        ncerts = atol(optarg);
        break;
      case 'n':
        conns = atol(optarg);
        break;
      case 'd':
        depth = atol(optarg);
        break;
      default:
        usage();
    }
  }
  if (!endpoint || !redis_sock || !ledger || !gm_bin || !plugin_dir ||
      !tmpdir || nbids < 1 || nsmall < 1 || conns < 1 || conns > 64 ||
      depth < 1)
    usage();
  zctx = zmq_ctx_new();
  redisContext *rc = redisConnectUnix(redis_sock);
  if (!rc || rc->err) die("cannot reach Redis at %s", redis_sock);
  clock_set(T0);

  /* The catalogue: two categories, a certificate per odd supplier. */
  Gm__Procurement__Category desk = GM__PROCUREMENT__CATEGORY__INIT,
                            insul = GM__PROCUREMENT__CATEGORY__INIT;
  Gm__Procurement__Category *cats[] = {&desk, &insul};
  char *labels[] = {"gb_insulation"};
  desk.code = "DESK";
  desk.name = "desks";
  insul.code = "INSUL";
  insul.name = "insulation";
  insul.policy = GM__PROCUREMENT__POLICY__POLICY_PRIORITY;
  insul.deduction_bp = 500;
  insul.labels = labels;
  insul.n_labels = 1;
  insul.min_grade = 1;
  Gm__Procurement__CategoryBatch cb = GM__PROCUREMENT__CATEGORY_BATCH__INIT;
  cb.categories = cats;
  cb.n_categories = 2;
  gm__reply__free_unpacked(
      call1("centre", "procurement", "category.put", &cb.base, 0), NULL);

  size_t bad;
  long n = nbids > nsmall ? nbids : nsmall;
  printf(
      "procurement bench: %ld bids and %ld, %ld certificates, %ld "
      "connections x %ld in flight\n\n",
      nbids, nsmall, ncerts, conns, depth);

  /* 1. the baseline */
  double tp = pipeline((size_t)n, mk_ping, &bad);
  double ping_rate = (double)n / tp;
  printf("baseline: core ping through gmd       %9.0f /s\n", ping_rate);

  /* Every bidder registered (pipelined too), certificates for half. */
  pipeline((size_t)n, mk_party, &bad);
  if (bad) die("registering suppliers failed%s", "");
  double tr = pipeline((size_t)n, mk_party_get, &bad);
  double read_rate = (double)n / tr;
  printf("baseline: party.get (one read script) %9.0f /s\n", read_rate);
  char *csv = malloc(strlen(tmpdir) + 32);
  sprintf(csv, "%s/bench-certs.csv", tmpdir);
  FILE *f = fopen(csv, "w");
  fprintf(f,
          "number,holder,holder_name,product,model,category,label,grade,"
          "issuer,valid_from,valid_to\n");
  long nc = ncerts > n ? ncerts : n;
  char code[19];
  for (long i = 0; i < nc; i++)
    fprintf(f,
            "C-%06ld,%s,Maker %ld,insulation board,M%ld,INSUL,"
            "gb_insulation,%ld,centre,2026-01-01,2029-12-31\n",
            i, uscc_of(i, code), i % 977, i % 89, 1 + i % 3);
  fclose(f);

  /* 5 first: the import (its certificates serve the bids). */
  char cmd[4096];
  snprintf(cmd, sizeof cmd,
           "GM_ENDPOINT=%s %s --plugin-dir %s --as centre procurement import "
           "certificates %s >/dev/null",
           endpoint, gm_bin, plugin_dir, csv);
  double t0 = now_s();
  if (system(cmd) != 0) die("the import failed: %s", cmd);
  double t_import = now_s() - t0;
  wait_ledger("SELECT count(*) FROM procurement_certificates", nc);
  double t_settled = now_s() - t0;

  /* 2. bids per second, 3. memory per bid */
  publish("B-BIG", T0 + 30 * DAY);
  publish("B-SMALL", T0 + 25 * DAY);
  bid_tender = "B-SMALL";
  pipeline((size_t)nsmall, mk_bid, &bad);
  if (bad) die("small tender: %s bids refused", "some");
  wait_ledger(
      "SELECT count(*) FROM procurement_bids WHERE tender_id = "
      "'B-SMALL'",
      nsmall);
  usleep(300000); /* outbox trimmed behind the settler */
  long long m0 = used_memory(rc);
  bid_tender = "B-BIG";
  double tb = pipeline((size_t)nbids, mk_bid, &bad);
  if (bad) die("big tender: %s bids refused", "some");
  double bid_rate = (double)nbids / tb;
  wait_ledger(
      "SELECT count(*) FROM procurement_bids WHERE tender_id = "
      "'B-BIG'",
      nbids);
  usleep(300000);
  long long m1 = used_memory(rc);
  /* The stored replies a retry of each bid would get back. */
  long long idem_bytes = 0;
  char cursor[32] = "0";
  do {
    redisReply *sc = redisCommand(rc, "SCAN %s MATCH %s COUNT 1000", cursor,
                                  "gm:{procurement:t:B-BIG}:idem:*");
    if (!sc || sc->type != REDIS_REPLY_ARRAY || sc->elements != 2) break;
    snprintf(cursor, sizeof cursor, "%s", sc->element[0]->str);
    for (size_t i = 0; i < sc->element[1]->elements; i++) {
      redisReply *mu =
          redisCommand(rc, "MEMORY USAGE %s", sc->element[1]->element[i]->str);
      if (mu && mu->type == REDIS_REPLY_INTEGER) idem_bytes += mu->integer;
      if (mu) freeReplyObject(mu);
    }
    freeReplyObject(sc);
  } while (strcmp(cursor, "0") != 0);
  printf(
      "sealed bids accepted (bid.submit)     %9.0f /s   %.2f of the "
      "ping, %.2f of the read\n",
      bid_rate, bid_rate / ping_rate, bid_rate / read_rate);
  printf(
      "Redis memory per bid                  %9.0f bytes (%.0f of them "
      "the stored replies that\n"
      "                                      answer retries, kept for "
      "[redis] idempotency_ttl)\n",
      (double)(m1 - m0) / (double)nbids, (double)idem_bytes / (double)nbids);

  /* 4. the openings */
  double ts = open_time("B-SMALL", T0 + 25 * DAY);
  double tbig = open_time("B-BIG", T0 + 30 * DAY);
  printf("open and evaluate %6ld bids          %9.3f s   %7.1f us per bid\n",
         nsmall, ts, ts * 1e6 / (double)nsmall);
  printf("open and evaluate %6ld bids          %9.3f s   %7.1f us per bid\n",
         nbids, tbig, tbig * 1e6 / (double)nbids);
  printf("cost per bid, %ld bids / %ld bids     %9.2f   (1.00: linear)\n",
         nbids, nsmall, (tbig / (double)nbids) / (ts / (double)nsmall));
  wait_ledger(
      "SELECT count(*) FROM procurement_sheet WHERE tender_id = "
      "'B-BIG'",
      nbids);

  printf(
      "catalogue import, %ld certificates   %9.2f s   (%.0f /s; settled "
      "in SQLite after %.2f s)\n",
      nc, t_import, (double)nc / t_import, t_settled);

  /* 6. an ended tender leaves Redis (run sets archive_after_days = 0: the
     archive is due at the cancellation, and waits for the ledger). */
  usleep(300000);
  long long m2 = used_memory(rc);
  Gm__Procurement__TenderRequest cq = GM__PROCUREMENT__TENDER_REQUEST__INIT;
  cq.tender_id = "B-BIG";
  cq.reason = "bench";
  t0 = now_s();
  gm__reply__free_unpacked(
      call1("city", "procurement", "tender.cancel", &cq.base, 0), NULL);
  for (int i = 0; i < 60000; i++) {
    redisReply *e = redisCommand(rc, "EXISTS gm:{procurement:t:B-BIG}:t");
    long long gone = e && e->type == REDIS_REPLY_INTEGER && e->integer == 0;
    if (e) freeReplyObject(e);
    if (gone) break;
    usleep(1000);
  }
  double t_archive = now_s() - t0;
  usleep(300000); /* UNLINK frees large values on a background thread */
  long long m3 = used_memory(rc);
  printf(
      "archive of the ended %ld-bid tender    %9.3f s   Redis memory freed "
      "%.0f bytes per bid\n",
      nbids, t_archive, (double)(m2 - m3) / (double)nbids);
  unlink(csv);
  free(csv);
  redisFree(rc);
  zmq_ctx_term(zctx);
  return 0;
}
