/*
 * gm_bench_carbon: the carbon market's throughput, latency and memory.
 *
 *   1. end to end through libgmclient -> gmd -> Redis -> SQLite settlement,
 *      saturating (every connection keeps --depth in flight);
 *   2. the ceiling: the same scripts by pipelined FCALL from C, same mix;
 *      end-to-end / ceiling;
 *   3. end to end paced at half the saturating rate, open loop, latency
 *      from each order's scheduled send time (no coordinated omission);
 *   4. carbon against a bare price-time match on the same orders (compare.c):
 *      plain limit flow, the mix, and over books of --book resting orders;
 *   5. Redis memory per resting order over --memory-orders orders, and per
 *      idempotency record;
 *   6. issue 11's targets next to this run's figures;
 *   7. a projection of orders/s against Redis Cluster masters from this
 *      run's Redis and gmd CPU per order (projection.c).
 * Each phase trades in instruments of its own, so each starts with an
 * empty book.  Prints figures; never a test.  plugins/carbon/bench/run starts a
 * private redis-server and gmd and passes their endpoints and pids.
 */
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"

static void bench__usage(FILE *f) {
  fprintf(f,
          "usage: gm_bench_carbon --endpoint E --redis SOCKET --ledger FILE "
          "[options]\n"
          "  --endpoint E        gmd's endpoint (tcp://127.0.0.1:7470)\n"
          "  --redis SOCKET      the unix socket of gmd's redis-server\n"
          "  --ledger FILE       gmd's SQLite ledger (read-only here)\n"
          "  --gmd-pid P, --redis-pid P   for the CPU figures\n"
          "  --orders N          orders of the saturating run and the ceiling; "
          "the paced\n"
          "                      run places half as many (100000)\n"
          "  --accounts N        participants, each with its own connection "
          "(32)\n"
          "  --threads N         load threads sharing those connections (2)\n"
          "  --depth N           in flight per connection, saturating (8)\n"
          "  --ceiling-depth N   FCALL pipeline depth (128)\n"
          "  --rate R            paced run in orders/s (half the saturating "
          "rate)\n"
          "  --tick-us N         paced run: a load thread wakes to send at "
          "most once every\n"
          "                      N us, sending what is due (at most N us "
          "late, counted in\n"
          "                      the latency); 0: a wake-up per order (1000)\n"
          "  --memory-orders N   resting orders for the memory figure "
          "(1000000; 0 skips)\n"
          "  --compare-orders N  orders per round of carbon against the bare "
          "match (40000)\n"
          "  --rounds N          rounds per script of that comparison, "
          "alternating (3; 0 skips it)\n"
          "  --book N[,N...]     also compare over books of N resting orders "
          "(100000;\n"
          "                      0 skips; e.g. 100000,1000000; at most %d "
          "sizes)\n"
          "  --compare-only      only the comparison: no end to end, ceiling "
          "or memory\n"
          "  --floor             the plain flow also runs carbon's own Redis "
          "commands\n"
          "                      without its logic (floor.lua, recorded by "
          "MONITOR first)\n"
          "  --plain-only        the comparison's plain flow only (e.g. for "
          "callgrind)\n"
          "  --ideal             the plain flow also runs the fewest Redis "
          "commands an\n"
          "                      order needs, without logic (ideal.lua, "
          "ideal.c), and an\n"
          "                      empty FCALL of an order's arguments\n"
          "  --seed S            the order mix's seed (1)\n"
          "gmd must run with [testing] clock = manual (orders are placed at a "
          "fixed\nWednesday 10:00 Shanghai); plugins/carbon/bench/run sets "
          "all of this up.\n",
          BENCH_MAX_BOOKS);
}

static long bench__num(const char *opt, const char *s, long min, long max) {
  char *end;
  long v = strtol(s, &end, 10);
  if (*s == '\0' || *end != '\0' || v < min || v > max) {
    fprintf(stderr, "carbon-bench: --%s wants a whole number in %ld..%ld\n",
            opt, min, max);
    exit(2);
  }
  return v;
}

/* --book 100000,1000000: increasing sizes, at most BENCH_MAX_BOOKS. */
static void bench__books(bench_opts *o, const char *s) {
  o->nbooks = 0;
  if (strcmp(s, "0") == 0) return;
  for (const char *p = s;;) {
    char *end;
    long v = strtol(p, &end, 10);
    if (end == p || v < 16 || v > 100000000 || o->nbooks == BENCH_MAX_BOOKS ||
        (o->nbooks && v <= o->books[o->nbooks - 1]) ||
        (*end != ',' && *end != '\0')) {
      fprintf(stderr,
              "carbon-bench: --book wants 0 or up to %d increasing sizes in "
              "16..100000000, comma-separated (--book 100000,1000000)\n",
              BENCH_MAX_BOOKS);
      exit(2);
    }
    o->books[o->nbooks++] = v;
    if (*end == '\0') break;
    p = end + 1;
  }
}

static const char *bench__met(int met) {
  return met ? "met" : "NOT met";
}

/* paced: 0 saturating, 1 at half the saturating rate, 2 at --rate. */
static void bench__print_e2e(const char *title, const bench_result *r,
                             const char *lat_from, int paced) {
  double rate = r->seconds > 0 ? (double)r->orders / r->seconds : 0;
  double p99_ms = (double)bench_lat_quantile(&r->lat, 0.99) / 1000.0;
  printf("%s\n", title);
  printf("  %.0f orders/s (%ld orders in %.2f s, first send to last reply)",
         rate, r->orders, r->seconds);
  if (!paced)
    printf("; target >= 25,000 saturating: %s", bench__met(rate >= 25000));
  printf("\n");
  printf(
      "  latency from %s: p50 %llu us, p99 %llu us, p999 %llu us, max "
      "%llu us",
      lat_from, (unsigned long long)bench_lat_quantile(&r->lat, 0.50),
      (unsigned long long)bench_lat_quantile(&r->lat, 0.99),
      (unsigned long long)bench_lat_quantile(&r->lat, 0.999),
      (unsigned long long)bench_lat_quantile(&r->lat, 1.0));
  if (paced == 1)
    printf("; target p99 < 10 ms at half the saturating rate: %s",
           bench__met(p99_ms < 10));
  printf("\n");
  printf(
      "  %ld fills; %ld cancels found their order already filled; %ld "
      "unexpected errors\n",
      r->fills, r->cancel_missed, r->errors);
  if (r->drain_s >= 0) {
    printf(
        "  settlement: the ledger had all %ld trades %.3f s after the last "
        "reply; through settlement %.0f orders/s",
        r->fills, r->drain_s, (double)r->orders / (r->seconds + r->drain_s));
    if (!paced)
      printf("; target <= 0.100 s behind, saturating: %s",
             bench__met(r->drain_s <= 0.1));
    printf("\n");
  } else {
    printf("  settlement: NOT drained within 120 s of the last reply\n");
  }
}

/* gmd's (redis 0) or Redis's (redis 1) CPU per order over a phase, us;
   -1 when its pid is unknown. */
static double bench__cpu_us(const bench_probe *a, const bench_probe *b,
                            long orders, int redis) {
  bench_cost c;
  bench_probe_cost(a, b, &c);
  double s = redis ? c.cpu_redis_s : c.cpu_gmd_s;
  return s < 0 || orders <= 0 ? -1 : 1e6 * s / (double)orders;
}

/* One row of the targets table; v < 0: not measured in this run. */
static void bench__target(const char *what, double v, const char *unit,
                          const char *target, int met) {
  if (v < 0 || isnan(v))
    printf("  %-56s %14s  %-18s not measured\n", what, "-", target);
  else
    printf("  %-56s %10.2f %-3s  %-18s %s\n", what, v, unit, target,
           bench__met(met));
}

int main(int argc, char **argv) {
  bench_opts o = {.endpoint = "tcp://127.0.0.1:7470",
                  .orders = 100000,
                  .accounts = 32,
                  .threads = 2,
                  .depth = 8,
                  .ceiling_depth = 128,
                  .tick_us = 1000,
                  .memory_orders = 1000000,
                  .seed = 1,
                  .compare_orders = 40000,
                  .rounds = 3,
                  .books = {100000},
                  .nbooks = 1};
  static const struct option longs[] = {
      {"endpoint", required_argument, NULL, 'e'},
      {"redis", required_argument, NULL, 'r'},
      {"ledger", required_argument, NULL, 'l'},
      {"gmd-pid", required_argument, NULL, 'G'},
      {"redis-pid", required_argument, NULL, 'R'},
      {"orders", required_argument, NULL, 'n'},
      {"accounts", required_argument, NULL, 'a'},
      {"threads", required_argument, NULL, 't'},
      {"depth", required_argument, NULL, 'd'},
      {"ceiling-depth", required_argument, NULL, 'c'},
      {"rate", required_argument, NULL, 'p'},
      {"tick-us", required_argument, NULL, 'T'},
      {"memory-orders", required_argument, NULL, 'm'},
      {"seed", required_argument, NULL, 's'},
      {"compare-orders", required_argument, NULL, 'C'},
      {"rounds", required_argument, NULL, 'N'},
      {"book", required_argument, NULL, 'B'},
      {"compare-only", no_argument, NULL, 'O'},
      {"floor", no_argument, NULL, 'F'},
      {"plain-only", no_argument, NULL, 'P'},
      {"ideal", no_argument, NULL, 'I'},
      {"help", no_argument, NULL, 'h'},
      {NULL, 0, NULL, 0}};
  int c, rc = 1;
  while ((c = getopt_long(argc, argv, "h", longs, NULL)) != -1) {
    switch (c) {
      case 'e':
        o.endpoint = optarg;
        break;
      case 'r':
        o.redis_path = optarg;
        break;
      case 'l':
        o.ledger_path = optarg;
        break;
      case 'G':
        o.gmd_pid = bench__num("gmd-pid", optarg, 1, 1L << 30);
        break;
      case 'R':
        o.redis_pid = bench__num("redis-pid", optarg, 1, 1L << 30);
        break;
      case 'n':
        o.orders = bench__num("orders", optarg, 1, 100000000);
        break;
      case 'a':
        o.accounts = (int)bench__num("accounts", optarg, 1, 4096);
        break;
      case 't':
        o.threads = (int)bench__num("threads", optarg, 1, 4096);
        break;
      case 'd':
        o.depth = (int)bench__num("depth", optarg, 1, 1024);
        break;
      case 'c':
        o.ceiling_depth = (int)bench__num("ceiling-depth", optarg, 1, 100000);
        break;
      case 'p':
        o.rate = (double)bench__num("rate", optarg, 1, 10000000);
        break;
      case 'T':
        o.tick_us = bench__num("tick-us", optarg, 0, 1000000);
        break;
      case 'm':
        o.memory_orders = bench__num("memory-orders", optarg, 0, 100000000);
        break;
      case 's':
        o.seed = (uint64_t)bench__num("seed", optarg, 0, 1L << 62);
        break;
      case 'C':
        o.compare_orders = bench__num("compare-orders", optarg, 1, 100000000);
        break;
      case 'N':
        o.rounds = (int)bench__num("rounds", optarg, 0, 64);
        break;
      case 'B':
        bench__books(&o, optarg);
        break;
      case 'O':
        o.compare_only = 1;
        break;
      case 'F':
        o.floor = 1;
        break;
      case 'P':
        o.plain_only = 1;
        break;
      case 'I':
        o.ideal = 1;
        break;
      case 'h':
        bench__usage(stdout);
        return 0;
      default:
        bench__usage(stderr);
        return 2;
    }
  }
  if (optind < argc) {
    fprintf(stderr, "carbon-bench: unexpected argument %s\n", argv[optind]);
    bench__usage(stderr);
    return 2;
  }
  if (!o.redis_path || !o.ledger_path) {
    bench__usage(stderr);
    return 2;
  }
  if (o.compare_only && o.rounds == 0) {
    fprintf(stderr,
            "carbon-bench: --compare-only with --rounds 0 leaves nothing to "
            "run\n");
    return 2;
  }

  /* The end-to-end phases' instruments, then the comparison's. */
  enum { BENCH_NSYM = 4 + (2 + 2 * BENCH_MAX_BOOKS) * BENCH_CMP_SYMBOLS + 1 };
  static const char *const base[] = {"BENCH-SAT", "BENCH-CEIL", "BENCH-HALF",
                                     "BENCH-MEM"};
  static char names[BENCH_NSYM][24];
  const char *symbols[BENCH_NSYM];
  size_t nsym = 0;
  if (!o.compare_only)
    for (size_t i = 0; i < 4; i++)
      if (i < 3 || o.memory_orders) symbols[nsym++] = base[i];
  if (o.rounds) {
    size_t n = bench_compare_symbols(&o, names, BENCH_NSYM - nsym);
    for (size_t i = 0; i < n; i++) symbols[nsym++] = names[i];
  }

  redisContext *redis = bench_redis_connect(o.redis_path);
  bench_e2e *e = NULL;
  bench_result sat = {0}, ceil = {0}, half = {0};
  bench_compare cmp;
  bench_probe p0, p1;
  double gmd_us = -1, redis_us = -1, through = -1, ratio = -1, mem = -1,
         idem = -1;
  double sat_rate = 0;
  char mem_from[64] = "no phase";
  if (!redis) return 1;
  cmp.plain_ratio = cmp.mix_ratio = -1;
  for (int k = 0; k < 2; k++) {
    cmp.plain[k] = cmp.mix[k] = -1;
    for (int b = 0; b < BENCH_MAX_BOOKS; b++)
      cmp.book[b][k] = cmp.book_bytes[b][k] = cmp.growth[b][k] =
          cmp.book_ratio[b] = -1;
  }
  printf(
      "gm_bench_carbon: gmd %s, %d accounts (a connection each) on %d load "
      "threads, mix 60%% resting / 25%% crossing IOC / 15%% cancels, seed "
      "%llu\n",
      o.endpoint, o.accounts, o.threads < o.accounts ? o.threads : o.accounts,
      (unsigned long long)o.seed);
  fflush(stdout);
  e = bench_e2e_new(&o, symbols, nsym);
  if (!e) goto out;
  if (o.compare_only) goto compare;

  /* 1. saturating */
  bench_probe_take(redis, &o, &p0);
  if (bench_e2e_run(e, base[0], 0, &sat)) goto out;
  bench_probe_take(redis, &o, &p1);
  char title[256];
  snprintf(title, sizeof title,
           "\nEnd to end, saturating (%d in flight per connection, %d in "
           "all), %s:",
           o.depth, o.depth * o.accounts, base[0]);
  bench__print_e2e(title, &sat, "send", 0);
  bench_probe_print(&p0, &p1, sat.orders);
  gmd_us = bench__cpu_us(&p0, &p1, sat.orders, 0);
  redis_us = bench__cpu_us(&p0, &p1, sat.orders, 1);
  if (gmd_us >= 0)
    printf("  gmd CPU per order %.1f us (target <= 25 saturating: %s)\n",
           gmd_us, bench__met(gmd_us <= 25));
  bench_e2e_print_broker_stats(e);
  fflush(stdout);

  /* 2. the ceiling */
  bench_probe_take(redis, &o, &p0);
  if (bench_ceiling_run(&o, redis, base[1], &ceil)) goto out;
  bench_probe_take(redis, &o, &p1);
  sat_rate = sat.seconds > 0 ? (double)sat.orders / sat.seconds : 0;
  double ceil_rate = ceil.seconds > 0 ? (double)ceil.orders / ceil.seconds : 0;
  printf(
      "\nCeiling: the same place/amend scripts by FCALL, 1 connection, "
      "pipeline depth %d, same mix, %s:\n",
      o.ceiling_depth, base[1]);
  printf(
      "  %.0f orders/s (%ld orders in %.2f s); %ld fills; %ld cancels "
      "found their order filled; %ld unexpected errors\n",
      ceil_rate, ceil.orders, ceil.seconds, ceil.fills, ceil.cancel_missed,
      ceil.errors);
  bench_probe_print(&p0, &p1, ceil.orders);
  ratio = ceil_rate > 0 ? sat_rate / ceil_rate : 0;
  through = ceil_rate > 0 && sat.drain_s >= 0
                ? (double)sat.orders / (sat.seconds + sat.drain_s) / ceil_rate
                : 0;
  printf(
      "\nend-to-end / ceiling = %.2f at reply, %.2f through settlement "
      "(target >= 0.6: %s)\n",
      ratio, through, bench__met(ratio >= 0.6 && through >= 0.6));
  fflush(stdout);

  /* 3. paced at half */
  double rate = o.rate > 0 ? o.rate : sat_rate / 2;
  if (rate < 1) rate = 1;
  bench_probe_take(redis, &o, &p0);
  if (bench_e2e_run(e, base[2], rate, &half)) goto out;
  bench_probe_take(redis, &o, &p1);
  snprintf(title, sizeof title,
           "\nEnd to end, paced open loop at %.0f orders/s (%s; sends in "
           "ticks of %ld us, --tick-us), %s:",
           rate, o.rate > 0 ? "--rate" : "half the saturating rate", o.tick_us,
           base[2]);
  /* The p99 target is for half the saturating rate, not a --rate. */
  bench__print_e2e(title, &half, "the scheduled send time", o.rate > 0 ? 2 : 1);
  bench_probe_print(&p0, &p1, half.orders);
  fflush(stdout);

compare:
  /* 4. against the bare match */
  if (o.rounds && bench_compare_run(&o, redis, &cmp)) goto out;
  fflush(stdout);

  /* 5. memory */
  if (!o.compare_only) {
    printf("\nMemory:\n");
    idem = bench_idem_size(redis, base[0]);
    if (o.memory_orders && bench_memory_run(&o, redis, base[3], &mem)) goto out;
    if (mem >= 0)
      snprintf(mem_from, sizeof mem_from, "%ld orders, 1 instrument",
               o.memory_orders);
  }
  /* Without the end-to-end phases, the comparison's carbon calls carry the
   * idempotency records. */
  if (o.compare_only) {
    printf("\nMemory:\n");
    idem = bench_idem_size(redis, names[0]);
  }
  /* Else the comparison's largest book, if it is big enough: small sorted
   * sets and hashes are listpacks, cheaper per entry than a real book. */
  for (int b = o.nbooks - 1; mem < 0 && b >= 0; b--)
    if (cmp.book_bytes[b][1] >= 0 && o.books[b] >= 100000) {
      mem = cmp.book_bytes[b][1];
      snprintf(mem_from, sizeof mem_from, "%ld orders, %d instruments",
               o.books[b], BENCH_CMP_SYMBOLS);
    }

  /* 6. the targets */
  printf("\nIssue 11 targets, this run:\n");
  bench__target("carbon / bare Redis CPU per order, plain flow",
                cmp.plain_ratio, "x", "<= 1.5", cmp.plain_ratio <= 1.5);
  bench__target("carbon / bare Redis CPU per order, standard mix",
                cmp.mix_ratio, "x", "<= 1.5", cmp.mix_ratio <= 1.5);
  for (int b = 0; b < o.nbooks; b++) {
    char what[96], want[32];
    snprintf(what, sizeof what, "carbon / bare, plain flow over %ld resting",
             o.books[b]);
    bench__target(what, cmp.book_ratio[b], "x", "<= 1.5",
                  cmp.book_ratio[b] <= 1.5);
    snprintf(what, sizeof what, "carbon's growth empty -> %ld resting",
             o.books[b]);
    snprintf(want, sizeof want, "<= bare's %.2fx", cmp.growth[b][0]);
    bench__target(what, cmp.growth[b][0] < 0 ? -1 : cmp.growth[b][1], "x", want,
                  cmp.growth[b][1] <= cmp.growth[b][0]);
  }
  bench__target("end to end, saturating", o.compare_only ? -1 : sat_rate, "/s",
                ">= 25,000", sat_rate >= 25000);
  bench__target("gmd CPU per order, saturating", gmd_us, "us", "<= 25",
                gmd_us <= 25);
  bench__target("p99 at half the saturating rate",
                o.compare_only || o.rate > 0
                    ? -1
                    : (double)bench_lat_quantile(&half.lat, 0.99) / 1000.0,
                "ms", "< 10", bench_lat_quantile(&half.lat, 0.99) < 10000);
  bench__target("settlement behind the last reply, saturating",
                o.compare_only || sat.drain_s < 0 ? -1 : sat.drain_s * 1000,
                "ms", "<= 100", sat.drain_s >= 0 && sat.drain_s <= 0.1);
  char what[160]; /* the label and mem_from, whole */
  snprintf(what, sizeof what, "Redis memory per resting order (%s)", mem_from);
  bench__target(what, mem, "B", "<= 250", mem <= 250);
  bench__target("idempotency record per mutating request", idem, "B", "<= 100",
                idem <= 100);
  bench__target("end-to-end / ceiling through settlement (issue 1)",
                o.compare_only ? -1 : through, "x", ">= 0.6",
                ratio >= 0.6 && through >= 0.6);

  /* 7. orders/s against Redis Cluster masters */
  if (!o.compare_only)
    bench_projection_print(redis_us, gmd_us,
                           "the saturating end-to-end run (scripts, "
                           "idempotency records, the settler's reads)",
                           symbols, nsym);
  else
    bench_projection_print(cmp.plain[1], -1,
                           "the comparison's carbon plain flow (scripts "
                           "only: no settler, gmd not measured)",
                           symbols, nsym);
  rc = sat.errors || ceil.errors || half.errors ? 1 : 0;
out:
  bench_lat_free(&sat.lat);
  bench_lat_free(&half.lat);
  bench_e2e_destroy(&e);
  redisFree(redis);
  return rc;
}
