/*
 * gm_bench_carbon_hostile: what hostile input costs (issue 10), printed as
 * figures, never asserted (plugins/carbon/bench/run --hostile).
 *
 *   1. Refusals: --refusals requests that the broker or the market refuses
 *      (unknown symbols read and traded, a zero or out-of-band price, a
 *      zero quantity, no funds, an unknown order, garbage frames, a NUL in
 *      a key, invalid UTF-8), then Redis's key count and memory, the
 *      outbox list and gmd's resident memory next to what they were before.
 *   2. Soak: --orders valid resting orders alone, then the same orders with
 *      one request in --every hostile, on an instrument each: the valid
 *      orders' rate in both (a ratio in one run), and whether they ended in
 *      the same book.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zmq.h>

#include <greenmarket/client.h>

#include "bench.h"
#include "carbon.pb-c.h"
#include "greenmarket.pb-c.h"

#define HOSTILE_KINDS 10
#define HOSTILE_DEPTH 64

typedef struct hostile_opts {
  const char *endpoint, *redis_path;
  long gmd_pid;
  long refusals, orders, every;
} hostile_opts;

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static long rss_kb(long pid) {
  char path[64], line[256];
  snprintf(path, sizeof path, "/proc/%ld/status", pid);
  FILE *f = fopen(path, "r");
  long kb = -1;
  while (f && fgets(line, sizeof line, f))
    if (strncmp(line, "VmRSS:", 6) == 0) kb = atol(line + 6);
  if (f) fclose(f);
  return kb;
}

static gm_client *client(const char *endpoint, const char *who) {
  gm_client_options co;
  gm_client_options_init(&co);
  co.dev_participant = who;
  co.timeout_ms = 10000;
  gm_client *c = gm_client_new(endpoint, &co);
  if (!c) fprintf(stderr, "hostile-bench: %s\n", gm_client_last_error());
  return c;
}

static int call(gm_client *c, const char *method, const char *idem,
                const ProtobufCMessage *req) {
  gm_result res;
  gm_status st =
      gm_client_call(c, strcmp(method, "clock.set") ? "carbon" : "gm", method,
                     idem, req, NULL, &res);
  if (st != GM_OK)
    fprintf(stderr, "hostile-bench: %s: %s %s\n", method, gm_status_name(st),
            res.message ? res.message : "");
  gm_result_clear(&res);
  return st == GM_OK ? 0 : -1;
}

/* An instrument with a buyer and a seller funded in it. */
static int instrument(gm_client *admin, const char *sym) {
  Gm__Carbon__CreateInstrumentRequest cr =
      GM__CARBON__CREATE_INSTRUMENT_REQUEST__INIT;
  Gm__Carbon__Instrument in = GM__CARBON__INSTRUMENT__INIT;
  char idem[64];
  in.symbol = (char *)sym;
  in.reference_price = BENCH_REF_PRICE;
  in.name = "hostile bench";
  cr.instrument = &in;
  snprintf(idem, sizeof idem, "create-%s", sym);
  if (call(admin, "instrument.create", idem, &cr.base)) return -1;
  const char *who[] = {"hb-buyer", "hb-seller"};
  for (int i = 0; i < 2; i++) {
    Gm__Carbon__MoveRequest m = GM__CARBON__MOVE_REQUEST__INIT;
    m.participant = (char *)who[i];
    m.symbol = (char *)sym;
    m.asset =
        i ? GM__CARBON__ASSET__ASSET_ALLOWANCE : GM__CARBON__ASSET__ASSET_CASH;
    m.amount = i ? BENCH_ALLOWANCES_T : BENCH_CASH_FEN;
    m.reference = "hostile bench";
    snprintf(idem, sizeof idem, "fund-%s-%d", sym, i);
    if (call(admin, "account.deposit", idem, &m.base)) return -1;
  }
  return 0;
}

/* Packs one envelope by hand, so text may hold any byte. */
static size_t envelope(uint8_t *out, uint64_t id, const char *who,
                       const char *market, size_t mlen, const char *method,
                       const char *key, size_t klen, const uint8_t *body,
                       size_t blen) {
  size_t n = 0;
  out[n++] = 1 << 3;
  out[n++] = 1;
  out[n++] = 2 << 3;
  do {
    out[n++] = (uint8_t)((id & 0x7f) | (id > 0x7f ? 0x80 : 0));
    id >>= 7;
  } while (id);
  const struct {
    unsigned field;
    const void *p;
    size_t len;
  } f[] = {{3, market, mlen},
           {4, method, strlen(method)},
           {5, key, klen},
           {6, body, blen},
           {7, who, strlen(who)}};
  for (size_t i = 0; i < sizeof f / sizeof *f; i++) {
    if (!f[i].len) continue;
    out[n++] = (uint8_t)(f[i].field << 3 | 2);
    size_t l = f[i].len;
    do {
      out[n++] = (uint8_t)((l & 0x7f) | (l > 0x7f ? 0x80 : 0));
      l >>= 7;
    } while (l);
    memcpy(out + n, f[i].p, f[i].len);
    n += f[i].len;
  }
  return n;
}

/* Hostile request i (kind i % HOSTILE_KINDS) against `sym`, into out. */
static size_t hostile_request(long i, const char *sym, uint64_t id,
                              uint8_t *out) {
  uint8_t body[256];
  size_t blen = 0;
  char key[48], nosuch[32];
  snprintf(key, sizeof key, "hostile-%ld", i);
  snprintf(nosuch, sizeof nosuch, "NOSUCH-%ld", i);
  Gm__Carbon__PlaceRequest q = GM__CARBON__PLACE_REQUEST__INIT;
  q.symbol = (char *)sym;
  q.side = GM__CARBON__SIDE__SIDE_BUY;
  q.price = BENCH_REF_PRICE;
  q.quantity = 1;
  switch (i % HOSTILE_KINDS) {
    case 0: { /* a read of an unknown instrument */
      Gm__Carbon__DepthRequest d = GM__CARBON__DEPTH_REQUEST__INIT;
      d.symbol = nosuch;
      blen = gm__carbon__depth_request__pack(&d, body);
      return envelope(out, id, "hb-poor", "carbon", 6, "market.depth", "", 0,
                      body, blen);
    }
    case 1:
      q.symbol = nosuch;
      break;
    case 2:
      q.price = 0;
      break;
    case 3:
      q.quantity = 0;
      break;
    case 4:
      q.price = BENCH_REF_PRICE * 3; /* far outside the band */
      break;
    case 5:
      q.quantity = 1000; /* hb-poor has no money */
      break;
    case 6: {
      Gm__Carbon__OrderRequest o = GM__CARBON__ORDER_REQUEST__INIT;
      char oid[64];
      snprintf(oid, sizeof oid, "%s:0000deadbeef", sym);
      o.order_id = oid;
      blen = gm__carbon__order_request__pack(&o, body);
      return envelope(out, id, "hb-poor", "carbon", 6, "order.cancel", key,
                      strlen(key), body, blen);
    }
    case 7:
      memcpy(out, "\xff\xfe not a request", 17);
      return 17;
    case 8:
      key[1] = '\0'; /* k\0stile-...: two keys that were one */
      blen = gm__carbon__place_request__pack(&q, body);
      return envelope(out, id, "hb-poor", "carbon", 6, "order.place", key,
                      strlen(key + 2) + 2, body, blen);
    default:
      return envelope(out, id, "hb-poor", "carb\xc3\x28", 6, "order.place", key,
                      strlen(key), body, 0);
  }
  blen = gm__carbon__place_request__pack(&q, body);
  return envelope(out, id, "hb-poor", "carbon", 6, "order.place", key,
                  strlen(key), body, blen);
}

/* A valid resting order i (buys below, sells above: none crosses). */
static size_t valid_request(long i, const char *sym, uint64_t id, uint8_t *out,
                            const char **who) {
  Gm__Carbon__PlaceRequest q = GM__CARBON__PLACE_REQUEST__INIT;
  uint8_t body[256];
  char key[48];
  q.symbol = (char *)sym;
  q.side = i % 2 ? GM__CARBON__SIDE__SIDE_BUY : GM__CARBON__SIDE__SIDE_SELL;
  q.price = BENCH_REF_PRICE + (i % 2 ? -1 : 1) * (1 + i % BENCH_REST_LEVELS);
  q.quantity = 1 + i % 5;
  *who = i % 2 ? "hb-buyer" : "hb-seller";
  snprintf(key, sizeof key, "%s-valid-%ld", sym, i);
  size_t blen = gm__carbon__place_request__pack(&q, body);
  return envelope(out, id, *who, "carbon", 6, "order.place", key, strlen(key),
                  body, blen);
}

typedef struct tally {
  long ok, refused, dropped;
} tally;

typedef size_t (*make_fn)(long i, void *arg, uint64_t id, uint8_t *out);

/*
 * Sends n requests (make(i) builds request i's frame) over two DEALER
 * connections, each with HOSTILE_DEPTH in flight, and counts the answers.
 * Raw frames, not the client library, so hostile bytes reach gmd as built.
 */
static int pump(const hostile_opts *o, long n, make_fn make, void *arg,
                tally *t, double *seconds) {
  void *ctx = zmq_ctx_new(), *s[2];
  int linger = 0, timeout = 10000;
  for (int k = 0; k < 2; k++) {
    s[k] = zmq_socket(ctx, ZMQ_DEALER);
    zmq_setsockopt(s[k], ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt(s[k], ZMQ_RCVTIMEO, &timeout, sizeof timeout);
    if (zmq_connect(s[k], o->endpoint)) {
      fprintf(stderr, "hostile-bench: connect %s: %s\n", o->endpoint,
              zmq_strerror(zmq_errno()));
      return -1;
    }
  }
  long sent = 0, answered = 0, inflight[2] = {0, 0};
  double t0 = now_s();
  memset(t, 0, sizeof *t);
  while (answered < n) {
    for (int k = 0; k < 2; k++)
      while (sent < n && inflight[k] < HOSTILE_DEPTH) {
        uint8_t frame[1024];
        size_t len = make(sent, arg, (uint64_t)sent + 1, frame);
        zmq_send(s[k], frame, len, 0);
        inflight[k]++;
        sent++;
      }
    for (int k = 0; k < 2; k++) {
      if (!inflight[k]) continue;
      zmq_msg_t m;
      zmq_msg_init(&m);
      if (zmq_msg_recv(&m, s[k], 0) < 0) { /* 10 s of silence */
        zmq_msg_close(&m);
        t->dropped += inflight[k];
        answered += inflight[k];
        inflight[k] = 0;
        continue;
      }
      Gm__Reply *r =
          gm__reply__unpack(NULL, zmq_msg_size(&m), zmq_msg_data(&m));
      zmq_msg_close(&m);
      inflight[k]--;
      answered++;
      if (r && r->status == GM__STATUS__OK)
        t->ok++;
      else
        t->refused++;
      if (r) gm__reply__free_unpacked(r, NULL);
    }
  }
  *seconds = now_s() - t0;
  for (int k = 0; k < 2; k++) zmq_close(s[k]);
  zmq_ctx_term(ctx);
  return 0;
}

typedef struct soak {
  const char *sym;
  long every; /* 0: valid only */
} soak;

static size_t make_refusal(long i, void *arg, uint64_t id, uint8_t *out) {
  return hostile_request(i, arg, id, out);
}

/* Valid order i, or a hostile request in place of every every-th. */
static size_t make_soak(long i, void *arg, uint64_t id, uint8_t *out) {
  const soak *s = arg;
  const char *who;
  if (s->every && i % s->every == s->every - 1)
    return hostile_request(i, s->sym, id, out);
  long v = s->every ? i - i / s->every : i; /* the same valid stream */
  return valid_request(v, s->sym, id, out, &who);
}

typedef struct snapshot {
  long long keys, memory, dataset, lua, clients, outboxes;
  long rss_kb;
} snapshot;

static void snap(redisContext *rc, const hostile_opts *o, snapshot *s) {
  freeReplyObject(redisCommand(rc, "MEMORY PURGE"));
  redisReply *r = redisCommand(rc, "DBSIZE");
  s->keys = r && r->type == REDIS_REPLY_INTEGER ? r->integer : -1;
  if (r) freeReplyObject(r);
  r = redisCommand(rc, "SCARD gm:outboxes");
  s->outboxes = r && r->type == REDIS_REPLY_INTEGER ? r->integer : -1;
  if (r) freeReplyObject(r);
  s->memory = bench_info_field(rc, "memory", "used_memory");
  s->dataset = bench_info_field(rc, "memory", "used_memory_dataset");
  s->lua = bench_info_field(rc, "memory", "used_memory_vm_eval");
  s->clients = bench_info_field(rc, "memory", "mem_clients_normal");
  s->rss_kb = o->gmd_pid ? rss_kb(o->gmd_pid) : -1;
}

/* MEMORY USAGE of every key (a small keyspace: the bench's own). */
typedef struct key_mem {
  char name[128];
  long long bytes;
} key_mem;

static size_t key_usage(redisContext *rc, key_mem *out, size_t cap) {
  redisReply *k = redisCommand(rc, "KEYS *");
  size_t n = 0;
  for (size_t i = 0;
       k && k->type == REDIS_REPLY_ARRAY && i < k->elements && n < cap; i++) {
    redisReply *u = redisCommand(rc, "MEMORY USAGE %s", k->element[i]->str);
    snprintf(out[n].name, sizeof out[n].name, "%s", k->element[i]->str);
    out[n++].bytes = u && u->type == REDIS_REPLY_INTEGER ? u->integer : -1;
    if (u) freeReplyObject(u);
  }
  if (k) freeReplyObject(k);
  return n;
}

static long long key_total(const key_mem *k, size_t n) {
  long long t = 0;
  for (size_t i = 0; i < n; i++) t += k[i].bytes;
  return t;
}

/* Prints the keys whose memory changed between two usages. */
static void key_diff(const key_mem *a, size_t na, const key_mem *b, size_t nb) {
  for (size_t i = 0; i < nb; i++) {
    long long before = -1;
    for (size_t k = 0; k < na; k++)
      if (!strcmp(a[k].name, b[i].name)) before = a[k].bytes;
    if (before != b[i].bytes)
      printf("    %s: %lld -> %lld bytes\n", b[i].name, before, b[i].bytes);
  }
}

static double pct(long long a, long long b) {
  return a > 0 ? 100.0 * (double)(b - a) / (double)a : 0;
}

/* Resting orders and their quantity in `sym`: the book the orders made. */
static void book(redisContext *rc, const char *sym, long long *n,
                 long long *qty) {
  redisReply *r = redisCommand(rc, "HGET gm:{carbon:%s}:i seq", sym);
  *n = r && r->type == REDIS_REPLY_STRING ? atoll(r->str) : -1;
  if (r) freeReplyObject(r);
  *qty = 0;
  for (int side = 0; side < 2; side++) {
    r = redisCommand(rc, "HVALS gm:{carbon:%s}:lq:%s", sym, side ? "s" : "b");
    for (size_t i = 0; r && r->type == REDIS_REPLY_ARRAY && i < r->elements;
         i++)
      *qty += atoll(r->element[i]->str);
    if (r) freeReplyObject(r);
  }
}

int main(int argc, char **argv) {
  hostile_opts o = {.endpoint = "tcp://127.0.0.1:7470",
                    .refusals = 200000,
                    .orders = 50000,
                    .every = 10};
  static const struct option longs[] = {
      {"endpoint", required_argument, NULL, 'e'},
      {"redis", required_argument, NULL, 'r'},
      {"gmd-pid", required_argument, NULL, 'G'},
      {"refusals", required_argument, NULL, 'n'},
      {"orders", required_argument, NULL, 'o'},
      {"every", required_argument, NULL, 'v'},
      {NULL, 0, NULL, 0}};
  int ch;
  while ((ch = getopt_long(argc, argv, "", longs, NULL)) != -1) {
    switch (ch) {
      case 'e':
        o.endpoint = optarg;
        break;
      case 'r':
        o.redis_path = optarg;
        break;
      case 'G':
        o.gmd_pid = atol(optarg);
        break;
      case 'n':
        o.refusals = atol(optarg);
        break;
      case 'o':
        o.orders = atol(optarg);
        break;
      case 'v':
        o.every = atol(optarg);
        break;
      default:
        fprintf(stderr,
                "usage: gm_bench_carbon_hostile --endpoint E --redis SOCKET "
                "[--gmd-pid P] [--refusals N] [--orders N] [--every K]\n");
        return 2;
    }
  }
  if (!o.redis_path || o.refusals < 1 || o.orders < 1 || o.every < 2) {
    fprintf(stderr,
            "hostile-bench: --redis is required; --refusals and "
            "--orders >= 1, --every >= 2\n");
    return 2;
  }
  redisContext *rc = bench_redis_connect(o.redis_path);
  gm_client *admin = client(o.endpoint, "hb-admin");
  if (!rc || !admin) return 1;
  Gm__ClockSetRequest clk = GM__CLOCK_SET_REQUEST__INIT;
  clk.time_ms = BENCH_NOW_MS;
  if (call(admin, "clock.set", "hb-clock", &clk.base) ||
      instrument(admin, "HB-REFUSE") || instrument(admin, "HB-ALONE") ||
      instrument(admin, "HB-MIXED"))
    return 1;
  gm_client_destroy(&admin);

  /* 1. refusals */
  snapshot a, b;
  tally t;
  double secs;
  static key_mem ka[256], kb[256];
  size_t nka = key_usage(rc, ka, 256);
  snap(rc, &o, &a);
  if (pump(&o, o.refusals, make_refusal, "HB-REFUSE", &t, &secs)) return 1;
  snap(rc, &o, &b);
  size_t nkb = key_usage(rc, kb, 256);
  printf(
      "Refusals: %ld hostile requests (%d kinds) in %.1f s, %.0f/s: %ld "
      "refused, %ld accepted (want 0), %ld unanswered\n",
      o.refusals, HOSTILE_KINDS, secs, (double)o.refusals / secs, t.refused,
      t.ok, t.dropped);
  printf(
      "  Redis keys %lld -> %lld (%+.2f%%); data %lld -> %lld bytes "
      "(%+.2f%%); used memory %lld -> %lld bytes (%+.2f%%: Lua VM %lld -> "
      "%lld, clients %lld -> %lld); gm:outboxes %lld -> %lld; gmd RSS %ld "
      "-> %ld kB\n",
      a.keys, b.keys, pct(a.keys, b.keys), a.dataset, b.dataset,
      pct(a.dataset, b.dataset), a.memory, b.memory, pct(a.memory, b.memory),
      a.lua, b.lua, a.clients, b.clients, a.outboxes, b.outboxes, a.rss_kb,
      b.rss_kb);
  printf(
      "  memory of every key (MEMORY USAGE summed) %lld -> %lld bytes "
      "(%+.2f%%); keys that changed:\n",
      key_total(ka, nka), key_total(kb, nkb),
      pct(key_total(ka, nka), key_total(kb, nkb)));
  key_diff(ka, nka, kb, nkb);

  /* 2. soak */
  soak alone = {"HB-ALONE", 0}, mixed = {"HB-MIXED", o.every};
  long mixed_total = o.orders + o.orders / (o.every - 1);
  double s_alone, s_mixed;
  tally t_alone, t_mixed;
  snap(rc, &o, &a);
  if (pump(&o, o.orders, make_soak, &alone, &t_alone, &s_alone)) return 1;
  snap(rc, &o, &b);
  snapshot c;
  if (pump(&o, mixed_total, make_soak, &mixed, &t_mixed, &s_mixed)) return 1;
  snap(rc, &o, &c);
  long long n1, q1, n2, q2;
  book(rc, "HB-ALONE", &n1, &q1);
  book(rc, "HB-MIXED", &n2, &q2);
  double r1 = (double)t_alone.ok / s_alone, r2 = (double)t_mixed.ok / s_mixed;
  printf(
      "\nSoak: %ld valid resting orders alone, then with one request in "
      "%ld hostile (%ld requests):\n",
      o.orders, o.every, mixed_total);
  printf("  valid orders/s alone %.0f, with hostile %.0f: ratio %.2f\n", r1, r2,
         r1 > 0 ? r2 / r1 : 0);
  printf(
      "  accepted: alone %ld, with hostile %ld (of %ld valid each); books: "
      "%lld orders / %lld t and %lld orders / %lld t (%s)\n",
      t_alone.ok, t_mixed.ok, o.orders, n1, q1, n2, q2,
      n1 == n2 && q1 == q2 ? "the same" : "DIFFERENT");
  printf(
      "  Redis used memory %lld -> %lld -> %lld bytes; gmd RSS %ld -> %ld "
      "-> %ld kB\n",
      a.memory, b.memory, c.memory, a.rss_kb, b.rss_kb, c.rss_kb);
  redisFree(rc);
  return t.ok || n1 != n2 || q1 != q2 ? 1 : 0;
}
