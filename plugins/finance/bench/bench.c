/*
 * gm_bench_finance: the finance market's throughput through a real gmd and
 * redis-server:
 *
 *   1. the baseline: gm.ping, the same connections and depth;
 *   2. referral.screen: screening alone (the enterprise's profile, the
 *      class's products);
 *   3. referral.create: submitted and screened, each offered to every
 *      fitting bank (its queue, its staff's private events);
 *   4. referral.claim under contention: every bank claims each of the
 *      first referrals at once; the first 3 win, the rest are refused.
 *
 * 20 banks with 5 products each (100 products: one per bank in each of
 * classes 1-5, so 20 for class 3), 50 enterprises.  Each phase prints its
 * rate and its ratio to the ping rate measured in the same run.  Prints
 * figures; never a test.  plugins/finance/bench/run starts a private
 * redis-server and gmd (manual clock) and passes the endpoint and ledger.
 */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>
#include <zmq.h>

#include <greenmarket/uscc.h>

#include "finance.pb-c.h"
#include "greenmarket.pb-c.h"
#include "rules.h"

#define BANKS 20
#define ENTERPRISES 50

static long conns = 4, depth = 16, nref = 2000, nclaim = 200;

static double now_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void die(const char *what, const char *why) {
  fprintf(stderr, "finance bench: %s: %s\n", what, why);
  exit(1);
}

/* A DEALER connection to gmd; every request names its caller (the broker
   runs in development mode). */
typedef struct conn {
  void *ctx, *sock;
} conn;

static conn *conn_new(const char *endpoint) {
  conn *c = calloc(1, sizeof *c);
  int linger = 0;
  c->ctx = zmq_ctx_new();
  c->sock = zmq_socket(c->ctx, ZMQ_DEALER);
  zmq_setsockopt(c->sock, ZMQ_LINGER, &linger, sizeof linger);
  if (zmq_connect(c->sock, endpoint) != 0) die("connect", zmq_strerror(errno));
  return c;
}

static void conn_destroy(conn *c) {
  zmq_close(c->sock);
  zmq_ctx_term(c->ctx);
  free(c);
}

static void conn_send(conn *c, uint64_t id, const char *as, const char *market,
                      const char *method, const char *idem,
                      const ProtobufCMessage *body) {
  Gm__Request req = GM__REQUEST__INIT;
  uint8_t small[2048], *b = small, *frame;
  req.version = 1;
  req.request_id = id;
  req.market = (char *)market;
  req.method = (char *)method;
  req.idempotency_key = (char *)(idem ? idem : "");
  req.dev_participant = (char *)as;
  req.body.len = body ? protobuf_c_message_get_packed_size(body) : 0;
  if (req.body.len > sizeof small) b = malloc(req.body.len);
  if (body) protobuf_c_message_pack(body, b);
  req.body.data = b;
  size_t len = gm__request__get_packed_size(&req);
  frame = malloc(len);
  gm__request__pack(&req, frame);
  if (zmq_send(c->sock, frame, len, 0) < 0) die("send", zmq_strerror(errno));
  free(frame);
  if (b != small) free(b);
}

static Gm__Reply *conn_recv(conn *c, int timeout_ms) {
  zmq_msg_t m;
  zmq_setsockopt(c->sock, ZMQ_RCVTIMEO, &timeout_ms, sizeof timeout_ms);
  zmq_msg_init(&m);
  if (zmq_msg_recv(&m, c->sock, 0) < 0) {
    zmq_msg_close(&m);
    return NULL;
  }
  Gm__Reply *r = gm__reply__unpack(NULL, zmq_msg_size(&m), zmq_msg_data(&m));
  zmq_msg_close(&m);
  return r;
}

static unsigned long seq;
static long redis_pid, gmd_pid;

/* CPU seconds (user + system) a process used so far; 0 when unknown. */
static double cpu_s(long pid) {
  char path[64], buf[1024];
  unsigned long ut = 0, st = 0;
  if (pid <= 0) return 0;
  snprintf(path, sizeof path, "/proc/%ld/stat", pid);
  FILE *f = fopen(path, "r");
  if (!f) return 0;
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[n] = '\0';
  /* Fields 14 and 15, counted after the command name's ')'. */
  const char *p = strrchr(buf, ')');
  if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu",
                   &ut, &st) != 2)
    return 0;
  return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

/* One call that must succeed (setup). */
static void must(conn *c, const char *as, const char *market,
                 const char *method, const ProtobufCMessage *body) {
  char key[32];
  snprintf(key, sizeof key, "setup-%lu", ++seq);
  conn_send(c, seq, as, market, method, key, body);
  Gm__Reply *r = conn_recv(c, 10000);
  if (!r) die(method, "no reply within 10 s");
  if (r->status) die(method, r->message);
  gm__reply__free_unpacked(r, NULL);
}

/* ---- the load: per connection a thread keeping `depth` in flight ---- */

typedef struct job job;
/* Sends request i (of the whole phase) on c as request id i + 1. */
typedef void (*send_fn)(conn *c, long i);
struct job {
  conn *c;
  long from, to; /* this connection's share of the phase's requests */
  send_fn send;
  long ok, refused;
  char first_error[256];
};

static void *drive(void *arg) {
  job *j = arg;
  long next = j->from, open = 0;
  while (next < j->to && open < depth) j->send(j->c, next++), open++;
  while (open > 0) {
    Gm__Reply *r = conn_recv(j->c, 30000);
    if (!r) {
      fprintf(stderr, "finance bench: no reply within 30 s\n");
      exit(1);
    }
    if (r->status == 0)
      j->ok++;
    else {
      if (!j->refused)
        snprintf(j->first_error, sizeof j->first_error, "status %d: %s",
                 r->status, r->message);
      j->refused++;
    }
    gm__reply__free_unpacked(r, NULL);
    open--;
    if (next < j->to) j->send(j->c, next++), open++;
  }
  return NULL;
}

/* Redis's and gmd's CPU over the last phase. */
static double phase_redis_s, phase_gmd_s;

/* Runs n requests over the connections; returns seconds, sets ok/refused. */
static double phase(conn **cs, long n, send_fn send, long *ok, long *refused,
                    char *err, size_t errlen) {
  job jobs[64];
  pthread_t th[64];
  double r0 = cpu_s(redis_pid), g0 = cpu_s(gmd_pid), t0 = now_s();
  for (long k = 0; k < conns; k++) {
    jobs[k] = (job){cs[k], n * k / conns, n * (k + 1) / conns, send, 0, 0, ""};
    pthread_create(&th[k], NULL, drive, &jobs[k]);
  }
  *ok = *refused = 0;
  if (err) err[0] = '\0';
  for (long k = 0; k < conns; k++) {
    pthread_join(th[k], NULL);
    *ok += jobs[k].ok;
    *refused += jobs[k].refused;
    if (err && !err[0] && jobs[k].first_error[0])
      snprintf(err, errlen, "%s", jobs[k].first_error);
  }
  double t = now_s() - t0;
  phase_redis_s = cpu_s(redis_pid) - r0;
  phase_gmd_s = cpu_s(gmd_pid) - g0;
  return t;
}

/* ---- the requests ---- */

static void send_ping(conn *c, long i) {
  Gm__PingRequest p = GM__PING_REQUEST__INIT;
  p.echo = "x";
  conn_send(c, (uint64_t)i + 1, "bench", "gm", "ping", NULL, &p.base);
}

static void refer_body(Gm__Finance__ReferRequest *r, long i) {
  gm__finance__refer_request__init(r);
  r->amount = 100000000 + (i % 97) * 1000000; /* 1-2 million yuan */
  r->tenor_months = 12 + (int)(i % 48);
  r->class_code = "3";
  r->subitem = "3.2";
  r->use_of_proceeds = "rooftop solar";
  r->description = "a rooftop photovoltaic plant on the workshops";
  r->co2_avoided_kg = 1000000;
  r->coal_saved_kg = 400000;
  r->consent_share = 1;
}

static char ent_id[ENTERPRISES][16];

static void send_screen(conn *c, long i) {
  Gm__Finance__ReferRequest r;
  refer_body(&r, i);
  conn_send(c, (uint64_t)i + 1, ent_id[i % ENTERPRISES], "finance",
            "referral.screen", NULL, &r.base);
}

static void send_create(conn *c, long i) {
  Gm__Finance__ReferRequest r;
  char key[32];
  refer_body(&r, i);
  snprintf(key, sizeof key, "refer-%ld", i);
  conn_send(c, (uint64_t)i + 1, ent_id[i % ENTERPRISES], "finance",
            "referral.create", key, &r.base);
}

/* Claims are sent referral by referral, every bank's claim on one
   referral next to the others: with `depth` in flight on each connection
   they arrive together. */
static void send_claim(conn *c, long i) {
  Gm__Finance__ClaimRequest r = GM__FINANCE__CLAIM_REQUEST__INIT;
  char id[32], user[16], key[32];
  snprintf(id, sizeof id, "R%08ld", i / BANKS + 1);
  snprintf(user, sizeof user, "user%02ld", i % BANKS);
  snprintf(key, sizeof key, "claim-%ld", i);
  r.id = id;
  conn_send(c, (uint64_t)i + 1, user, "finance", "referral.claim", key,
            &r.base);
}

static void setup(conn *c) {
  Gm__Participant p = GM__PARTICIPANT__INIT;
  Gm__RegisterRequest reg = GM__REGISTER_REQUEST__INIT;
  char *roles[1];
  p.roles = roles;
  p.n_roles = 1;
  reg.participant = &p;
  p.id = "centre";
  roles[0] = "centre";
  must(c, "root", "gm", "register", &reg.base);
  for (int b = 0; b < BANKS; b++) {
    char bank[16], user[16], name[32];
    snprintf(bank, sizeof bank, "bank%02d", b);
    snprintf(user, sizeof user, "user%02d", b);
    snprintf(name, sizeof name, "Bank %d", b);
    p.id = user;
    roles[0] = "bank";
    must(c, "root", "gm", "register", &reg.base);
    Gm__Finance__Bank bk = GM__FINANCE__BANK__INIT;
    Gm__Finance__CreateBankRequest cb = GM__FINANCE__CREATE_BANK_REQUEST__INIT;
    bk.id = bank;
    bk.name = name;
    cb.bank = &bk;
    must(c, "centre", "finance", "bank.create", &cb.base);
    Gm__Finance__LinkRequest l = GM__FINANCE__LINK_REQUEST__INIT;
    l.participant = user;
    l.bank = bank;
    must(c, "centre", "finance", "bank.link", &l.base);
    l.participant = "";
    must(c, user, "finance", "bank.link", &l.base);
    for (int k = 1; k <= 5; k++) {
      Gm__Finance__Product pr = GM__FINANCE__PRODUCT__INIT;
      Gm__Finance__CreateProductRequest cp =
          GM__FINANCE__CREATE_PRODUCT_REQUEST__INIT;
      char id[24], cls[4], *cl[] = {cls}, *rg[] = {b % 2 ? "330000" : "000000"};
      snprintf(id, sizeof id, "b%02d-c%d", b, k);
      snprintf(cls, sizeof cls, "%d", k);
      pr.id = id;
      pr.bank = bank;
      pr.name = "green loan";
      pr.amount_min = 1000000;
      pr.amount_max = 100000000000;
      pr.tenor_min_months = 6;
      pr.tenor_max_months = 120;
      pr.classes = cl;
      pr.n_classes = 1;
      pr.regions = rg;
      pr.n_regions = 1;
      pr.rate_min_bp = 300;
      pr.rate_max_bp = 450;
      pr.fee_bp = 50 + b;
      cp.product = &pr;
      must(c, "centre", "finance", "product.create", &cp.base);
    }
  }
  for (int e = 0; e < ENTERPRISES; e++) {
    char first[18], code[19], name[32];
    snprintf(ent_id[e], sizeof ent_id[e], "ent%02d", e);
    p.id = ent_id[e];
    roles[0] = "enterprise";
    must(c, "root", "gm", "register", &reg.base);
    snprintf(first, sizeof first, "91330502MA%07d", e);
    memcpy(code, first, 17);
    code[17] = gm_uscc_check_char(first);
    code[18] = '\0';
    snprintf(name, sizeof name, "Enterprise %d", e);
    Gm__Finance__Enterprise en = GM__FINANCE__ENTERPRISE__INIT;
    Gm__Finance__RegisterEnterpriseRequest re =
        GM__FINANCE__REGISTER_ENTERPRISE_REQUEST__INIT;
    en.credit_code = code;
    en.name = name;
    en.region = "330502";
    en.size = GM__FINANCE__SIZE_CLASS__SIZE_SMALL;
    en.contact = "the finance office";
    re.enterprise = &en;
    must(c, ent_id[e], "finance", "enterprise.register", &re.base);
  }
}

/* The referrals settled so far (the ledger, read-only); -1 when it
   cannot be read yet. */
static long ledger_referrals(const char *ledger) {
  sqlite3 *db = NULL;
  sqlite3_stmt *st = NULL;
  long n = -1;
  if (sqlite3_open_v2(ledger, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK &&
      sqlite3_prepare_v2(db, "SELECT count(*) FROM finance_referrals", -1, &st,
                         NULL) == SQLITE_OK &&
      sqlite3_step(st) == SQLITE_ROW)
    n = (long)sqlite3_column_int64(st, 0);
  sqlite3_finalize(st);
  sqlite3_close(db);
  return n;
}

static void row(const char *what, long n, double s, double ping_rate) {
  printf("%-36s %8ld %7.2f %10.0f %7.3f %9.0f %9.0f\n", what, n, s,
         (double)n / s, ((double)n / s) / ping_rate,
         phase_redis_s * 1e6 / (double)n, phase_gmd_s * 1e6 / (double)n);
}

int main(int argc, char **argv) {
  static const struct option opts[] = {{"endpoint", required_argument, 0, 'e'},
                                       {"redis-pid", required_argument, 0, 'r'},
                                       {"gmd-pid", required_argument, 0, 'g'},
                                       {"ledger", required_argument, 0, 'l'},
                                       {"referrals", required_argument, 0, 'n'},
                                       {"claims-on", required_argument, 0, 'c'},
                                       {"conns", required_argument, 0, 'k'},
                                       {"depth", required_argument, 0, 'd'},
                                       {0, 0, 0, 0}};
  const char *endpoint = NULL, *ledger = NULL;
  for (int o; (o = getopt_long(argc, argv, "", opts, NULL)) != -1;) {
    long v = optarg ? strtol(optarg, NULL, 10) : 0;
    if (o == 'e')
      endpoint = optarg;
    else if (o == 'r')
      redis_pid = v;
    else if (o == 'g')
      gmd_pid = v;
    else if (o == 'l')
      ledger = optarg;
    else if (o == 'n' && v > 0)
      nref = v;
    else if (o == 'c' && v > 0)
      nclaim = v;
    else if (o == 'k' && v > 0 && v <= 64)
      conns = v;
    else if (o == 'd' && v > 0)
      depth = v;
    else {
      fprintf(
          stderr,
          "usage: gm_bench_finance [--referrals N (2000)] [--claims-on N "
          "(200 referrals)]\n"
          "       [--conns N (4)] [--depth N in flight each (16)]\n"
          "       --endpoint E --ledger FILE [--redis-pid P] [--gmd-pid P]\n"
          "       (plugins/finance/bench/run gives them)\n");
      return 2;
    }
  }
  if (!endpoint || !ledger) {
    fprintf(stderr,
            "gm_bench_finance: give --endpoint and --ledger (or use "
            "plugins/finance/bench/run)\n");
    return 2;
  }
  if (nclaim > nref) nclaim = nref;
  conn *cs[64];
  for (long k = 0; k < conns; k++) cs[k] = conn_new(endpoint);
  setup(cs[0]);

  long ok, refused;
  char err[256];
  printf(
      "finance bench: %d banks, %d products (5 each, %d for class 3, all "
      "fitting the need), %d enterprises;\n%ld connections x %ld in "
      "flight, one gmd and one redis-server on this machine\n\n",
      BANKS, BANKS * 5, BANKS, ENTERPRISES, conns, depth);
  printf("%-36s %8s %7s %10s %7s %9s %9s\n", "phase", "requests", "seconds",
         "per second", "/ ping", "redis us", "gmd us");
  /* Enough pings for a second or so: the baseline must not be noise. */
  long npings = nref * 50 < 100000 ? 100000 : nref * 50;
  double s = phase(cs, npings, send_ping, &ok, &refused, err, sizeof err);
  double ping_rate = (double)npings / s;
  row("gm.ping (the baseline)", npings, s, ping_rate);
  s = phase(cs, nref, send_screen, &ok, &refused, err, sizeof err);
  if (refused) die("referral.screen", err);
  row("referral.screen", nref, s, ping_rate);
  s = phase(cs, nref, send_create, &ok, &refused, err, sizeof err);
  if (refused) die("referral.create", err);
  double t_created = now_s();
  row("referral.create (to 20 banks each)", nref, s, ping_rate);
  long nc = nclaim * BANKS;
  s = phase(cs, nc, send_claim, &ok, &refused, err, sizeof err);
  row("referral.claim (20 on each at once)", nc, s, ping_rate);
  printf(
      "\n(redis us, gmd us: the CPU each process spent per request)\n"
      "claims: %ld won (%s3 on each of %ld referrals), %ld refused, the "
      "first with\n  %s\n",
      ok, ok == 3 * nclaim ? "exactly " : "NOT ", nclaim, refused,
      refused ? err : "-");
  long settled = -1;
  while (now_s() - t_created < 60 &&
         (settled = ledger_referrals(ledger)) < nref) {
    struct timespec ts = {0, 20 * 1000 * 1000};
    nanosleep(&ts, NULL);
  }
  printf(
      "ledger: %ld of %ld referrals settled %.2f s after the last was "
      "submitted (claims ran meanwhile)\n",
      settled, nref, now_s() - t_created);
  for (long k = 0; k < conns; k++) conn_destroy(cs[k]);
  return ok == 3 * nclaim ? 0 : 1;
}
