/*
 * gm_bench_readonly: the same reading script registered plain and
 * read-only (GM_SCRIPT_READ_ONLY), on one private redis-server, alternating
 * rounds, medians printed as read-only / plain:
 *
 *   read    no idempotency key (a read method): FCALL against FCALL_RO;
 *   step    a step of a mutating call, a fresh key per call: the plain
 *           script stores its reply inside its run, the read-only one
 *           comes back with it and the host stores it by a second call.
 *
 * Each with a reply of about 100 bytes and of 33 KB (finance's screening
 * step).  Figures: wall time per call (sequential round trips) and Redis
 * CPU per call (INFO commandstats, every FCALL and FCALL_RO).  Prints
 * figures; never a test.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../bench_time.h"

#include "arena.h"
#include "call.h"
#include "redis.h"
#include "redis_fixture.h"

#define ROUNDS 7
#define CALLS 2000

static const char lua[] = "return {redis.call('GET', KEYS[1]), ARGV[1]}\n";

/* Redis CPU (us) spent in FCALL and FCALL_RO since the last reset. */
static double fcall_usec(redisContext *c) {
  redisReply *r = redisCommand(c, "INFO commandstats");
  double us = 0;
  for (const char *p = r->str; (p = strstr(p, "cmdstat_fcall")); p++) {
    const char *u = strstr(p, "usec=");
    if (u) us += atof(u + 5);
  }
  freeReplyObject(r);
  freeReplyObject(redisCommand(c, "CONFIG RESETSTAT"));
  return us;
}

static unsigned long seq;

/* One round: CALLS runs of `script`; wall and Redis us per call. */
static void round_of(gm__redis *conn, redisContext *raw, const char *script,
                     int step, double *wall, double *redis_us) {
  gm__arena *a = gm__arena_new();
  fcall_usec(raw);
  double t0 = now_s();
  for (int i = 0; i < CALLS; i++) {
    char idem[32];
    snprintf(idem, sizeof idem, "b%lu", ++seq);
    gm_call c = {.arena = a,
                 .participant = "bench",
                 .roles = "",
                 .idem_key = step ? idem : "",
                 .redis = conn};
    const char *keys[] = {"v"};
    const char *args[] = {"x"};
    const gm_value *v;
    if (gm__script_run(&c, "bench", script, "t", 1, keys, 1, args, &v) !=
        GM_OK) {
      fprintf(stderr, "bench.%s: %s\n", script, c.message);
      exit(1);
    }
    gm__arena_reset(a);
  }
  *wall = (now_s() - t0) * 1e6 / CALLS;
  *redis_us = fcall_usec(raw) / CALLS;
  gm__arena_destroy(&a);
  /* The stored records would grow Redis over the rounds: start clean. */
  freeReplyObject(redisCommand(
      raw, "EVAL %s 0",
      "for _, k in ipairs(redis.call('KEYS', 'gm:{bench:t}:idem:*')) do "
      "redis.call('UNLINK', k) end return 1"));
}

int main(void) {
  gm_test_redis *srv = gm_test_redis_start();
  char err[512];
  gm__redis_addr addr = {.unix_path = gm_test_redis_socket(srv)};
  gm__redis *conn = gm__redis_connect(&addr, err, sizeof err);
  if (!conn) {
    fprintf(stderr, "%s\n", err);
    return 1;
  }
  redisContext *raw = gm_test_redis_connect(srv);
  if (gm__scripts_add_flags(conn, "bench", "plain", NULL, lua, 0, err,
                            sizeof err) != GM_OK ||
      gm__scripts_add_flags(conn, "bench", "ro", NULL, lua, GM_SCRIPT_READ_ONLY,
                            err, sizeof err) != GM_OK) {
    fprintf(stderr, "%s\n", err);
    return 1;
  }
  printf(
      "gm_bench_readonly: %d rounds of %d sequential calls each, medians; "
      "redis-server on a unix socket\n\n",
      ROUNDS, CALLS);
  printf("%-6s %-7s %12s %12s %8s %14s %14s %8s\n", "reply", "call", "plain us",
         "ro us", "ro/plain", "plain redis us", "ro redis us", "ro/plain");
  static const size_t sizes[] = {100, 33000};
  for (size_t s = 0; s < 2; s++) {
    char *blob = malloc(sizes[s] + 1);
    memset(blob, 'r', sizes[s]);
    blob[sizes[s]] = '\0';
    freeReplyObject(redisCommand(raw, "SET gm:{bench:t}:v %s", blob));
    free(blob);
    for (int step = 0; step < 2; step++) {
      double pw[ROUNDS], pr[ROUNDS], rw[ROUNDS], rr[ROUNDS];
      for (int k = 0; k < ROUNDS; k++) {
        round_of(conn, raw, "plain", step, &pw[k], &pr[k]);
        round_of(conn, raw, "ro", step, &rw[k], &rr[k]);
      }
      double a = median(pw, ROUNDS), b = median(rw, ROUNDS);
      double c = median(pr, ROUNDS), d = median(rr, ROUNDS);
      printf("%-6s %-7s %12.1f %12.1f %8.2f %14.1f %14.1f %8.2f\n",
             sizes[s] < 1000 ? "100 B" : "33 KB", step ? "step" : "read", a, b,
             b / a, c, d, d / c);
    }
  }
  redisFree(raw);
  gm__redis_destroy(&conn);
  gm__scripts_remove("bench");
  gm_test_redis_stop(&srv);
  return 0;
}
