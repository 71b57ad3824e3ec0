/*
 * gm_bench_carbon: the carbon market's throughput, latency and memory.
 *
 *   1. end to end through libgmclient -> gmd -> Redis -> SQLite settlement,
 *      saturating (every connection keeps --depth in flight);
 *   2. the ceiling: the same scripts by pipelined EVALSHA from C, same mix;
 *      end-to-end / ceiling;
 *   3. end to end paced at half the saturating rate, open loop, latency
 *      from each order's scheduled send time (no coordinated omission);
 *   4. Redis memory per resting order over --memory-orders orders.
 * Each phase trades in an instrument of its own, so each starts with an
 * empty book.  Prints figures; never a test.  plugins/carbon/bench/run starts a
 * private redis-server and gmd and passes their endpoints and pids.
 */
#include <getopt.h>
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
          "  --ceiling-depth N   EVALSHA pipeline depth (128)\n"
          "  --rate R            paced run in orders/s (half the saturating "
          "rate)\n"
          "  --memory-orders N   resting orders for the memory figure "
          "(1000000; 0 skips)\n"
          "  --seed S            the order mix's seed (1)\n"
          "gmd must run with [testing] clock = manual (orders are placed at a "
          "fixed\nWednesday 10:00 Shanghai); plugins/carbon/bench/run sets "
          "all of this up.\n");
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

static void bench__print_e2e(const char *title, const bench_result *r,
                             const char *lat_from) {
  double rate = r->seconds > 0 ? (double)r->orders / r->seconds : 0;
  printf("%s\n", title);
  printf("  %.0f orders/s (%ld orders in %.2f s, first send to last reply)\n",
         rate, r->orders, r->seconds);
  printf(
      "  latency from %s: p50 %llu us, p99 %llu us, p999 %llu us, max "
      "%llu us\n",
      lat_from, (unsigned long long)bench_lat_quantile(&r->lat, 0.50),
      (unsigned long long)bench_lat_quantile(&r->lat, 0.99),
      (unsigned long long)bench_lat_quantile(&r->lat, 0.999),
      (unsigned long long)bench_lat_quantile(&r->lat, 1.0));
  printf(
      "  %ld fills; %ld cancels found their order already filled; %ld "
      "unexpected errors\n",
      r->fills, r->cancel_missed, r->errors);
  if (r->drain_s >= 0)
    printf(
        "  settlement: the ledger had all %ld trades %.3f s after the last "
        "reply; through settlement %.0f orders/s\n",
        r->fills, r->drain_s, (double)r->orders / (r->seconds + r->drain_s));
  else
    printf("  settlement: NOT drained within 120 s of the last reply\n");
}

int main(int argc, char **argv) {
  bench_opts o = {.endpoint = "tcp://127.0.0.1:7470",
                  .orders = 100000,
                  .accounts = 32,
                  .threads = 2,
                  .depth = 8,
                  .ceiling_depth = 128,
                  .memory_orders = 1000000,
                  .seed = 1};
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
      {"memory-orders", required_argument, NULL, 'm'},
      {"seed", required_argument, NULL, 's'},
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
      case 'm':
        o.memory_orders = bench__num("memory-orders", optarg, 0, 100000000);
        break;
      case 's':
        o.seed = (uint64_t)bench__num("seed", optarg, 0, 1L << 62);
        break;
      case 'h':
        bench__usage(stdout);
        return 0;
      default:
        bench__usage(stderr);
        return 2;
    }
  }
  if (!o.redis_path || !o.ledger_path) {
    bench__usage(stderr);
    return 2;
  }

  static const char *const symbols[] = {"BENCH-SAT", "BENCH-CEIL", "BENCH-HALF",
                                        "BENCH-MEM"};
  redisContext *redis = bench_redis_connect(o.redis_path);
  bench_e2e *e = NULL;
  bench_result sat = {0}, ceil = {0}, half = {0};
  bench_probe p0, p1;
  if (!redis) return 1;
  printf(
      "gm_bench_carbon: gmd %s, %d accounts (a connection each) on %d load "
      "threads, mix 60%% resting / 25%% crossing IOC / 15%% cancels, seed "
      "%llu\n",
      o.endpoint, o.accounts, o.threads < o.accounts ? o.threads : o.accounts,
      (unsigned long long)o.seed);
  fflush(stdout);
  e = bench_e2e_new(&o, symbols, o.memory_orders ? 4 : 3);
  if (!e) goto out;

  /* 1. saturating */
  bench_probe_take(redis, &o, &p0);
  if (bench_e2e_run(e, symbols[0], 0, &sat)) goto out;
  bench_probe_take(redis, &o, &p1);
  char title[256];
  snprintf(title, sizeof title,
           "\nEnd to end, saturating (%d in flight per connection, %d in "
           "all), %s:",
           o.depth, o.depth * o.accounts, symbols[0]);
  bench__print_e2e(title, &sat, "send");
  bench_probe_print(&p0, &p1, sat.orders);
  bench_e2e_print_broker_stats(e);
  fflush(stdout);

  /* 2. the ceiling */
  bench_probe_take(redis, &o, &p0);
  if (bench_ceiling_run(&o, redis, symbols[1], &ceil)) goto out;
  bench_probe_take(redis, &o, &p1);
  double sat_rate = sat.seconds > 0 ? (double)sat.orders / sat.seconds : 0;
  double ceil_rate = ceil.seconds > 0 ? (double)ceil.orders / ceil.seconds : 0;
  printf(
      "\nCeiling: the same place/amend scripts by EVALSHA, 1 connection, "
      "pipeline depth %d, same mix, %s:\n",
      o.ceiling_depth, symbols[1]);
  printf(
      "  %.0f orders/s (%ld orders in %.2f s); %ld fills; %ld cancels "
      "found their order filled; %ld unexpected errors\n",
      ceil_rate, ceil.orders, ceil.seconds, ceil.fills, ceil.cancel_missed,
      ceil.errors);
  bench_probe_print(&p0, &p1, ceil.orders);
  double ratio = ceil_rate > 0 ? sat_rate / ceil_rate : 0;
  double through =
      ceil_rate > 0 && sat.drain_s >= 0
          ? (double)sat.orders / (sat.seconds + sat.drain_s) / ceil_rate
          : 0;
  printf(
      "\nend-to-end / ceiling = %.2f at reply, %.2f through settlement "
      "(target >= 0.6: %s)\n",
      ratio, through, ratio >= 0.6 && through >= 0.6 ? "met" : "NOT met");
  fflush(stdout);

  /* 3. paced at half */
  double rate = o.rate > 0 ? o.rate : sat_rate / 2;
  if (rate < 1) rate = 1;
  bench_probe_take(redis, &o, &p0);
  if (bench_e2e_run(e, symbols[2], rate, &half)) goto out;
  bench_probe_take(redis, &o, &p1);
  snprintf(title, sizeof title,
           "\nEnd to end, paced open loop at %.0f orders/s (%s), %s:", rate,
           o.rate > 0 ? "--rate" : "half the saturating rate", symbols[2]);
  bench__print_e2e(title, &half, "the scheduled send time");
  bench_probe_print(&p0, &p1, half.orders);
  fflush(stdout);

  /* 4. memory */
  if (o.memory_orders && bench_memory_run(&o, redis, symbols[3], symbols[0]))
    goto out;
  rc = sat.errors || ceil.errors || half.errors ? 1 : 0;
out:
  bench_lat_free(&sat.lat);
  bench_lat_free(&half.lat);
  bench_e2e_destroy(&e);
  redisFree(redis);
  return rc;
}
