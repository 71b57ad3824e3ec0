/*
 * gm_bench_settle_wait: what [redis] cluster_wait_replicas costs the
 * settler, which with it on sends `WAIT 1 <ms>` on each node a batch was
 * read on before committing the batch (core/settle.c, gm__replicated).
 *
 * A single Redis with one replica (tests/support), the settler driven
 * without its thread (gm__settler_drain_once) into a private ledger, the
 * option off (0) and on (1000 ms) in turn, alternating which goes first:
 *   - backlog: BACKLOG entries over STREAMS outbox streams appended at
 *     once, then drained in batches of BATCH (entries a second);
 *   - trickle: TRICKLE times one entry appended and settled before the
 *     next (microseconds an entry: a batch of one, the latency a lightly
 *     loaded settler adds).
 * Medians of ROUNDS rounds and of the per-round ratios on/off.  Prints
 * figures; it is never a test.  On a 2-core machine shared with the
 * servers, absolute figures mean little: read the ratios.
 *   gm_bench_settle_wait [rounds, default 5]
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../bench_time.h"

#include "ledger.h"
#include "redis.h"
#include "redis_fixture.h"
#include "settle.h"

#define MAX_ROUNDS 21
#define STREAMS 16
#define BACKLOG 65536
#define BATCH 512
#define TRICKLE 300
#define WAIT_MS 1000

static gm_test_redis *master;
static redisContext *raw;
static char *ledger_path;
static long next_qty;

static gm_status settle_row(gm_market *m, gm_ledger *tx,
                            const gm_outbox_entry *e) {
  (void)m;
  gm_param p[] = {GM_TEXT(e->stream), GM_TEXT(e->id),
                  GM_TEXT(gm_entry_field(e, "qty"))};
  return gm__ledger_exec(
      tx, "INSERT INTO bench_rows(stream, id, qty) VALUES(?1, ?2, ?3)", p, 3);
}

static gm_settle_fn lookup(void *arg, const char *market, gm_market **m) {
  (void)arg;
  *m = NULL;
  return strcmp(market, "bench") == 0 ? settle_row : NULL;
}

/* Appends n entries, spread over the streams, in one pipeline. */
static void add_entries(int n) {
  for (int i = 0; i < n; i++, next_qty++)
    redisAppendCommand(raw, "XADD gm:{bench:s%02d}:outbox * kind row qty %ld",
                       (int)(next_qty % STREAMS), next_qty);
  for (int i = 0; i < n; i++) {
    redisReply *r = NULL;
    if (redisGetReply(raw, (void **)&r) != REDIS_OK || !r ||
        r->type != REDIS_REPLY_STRING) {
      fprintf(stderr, "XADD failed\n");
      exit(1);
    }
    freeReplyObject(r);
  }
}

/* Drains until `want` entries were settled; exits if it stalls. */
static void drain(gm__settler *s, long want) {
  long got = 0;
  for (int idle = 0; got < want;) {
    int n = gm__settler_drain_once(s);
    if (n < 0 || (n == 0 && ++idle > 1000)) {
      fprintf(stderr, "the settler settled %ld of %ld\n", got, want);
      exit(1);
    }
    if (n > 0) got += n;
  }
}

/* Entries a second draining a backlog. */
static double backlog_rate(gm__settler *s) {
  add_entries(BACKLOG);
  double t0 = now_s();
  drain(s, BACKLOG);
  return BACKLOG / (now_s() - t0);
}

/* Microseconds from appending one entry to its COMMIT, one at a time. */
static double trickle_us(gm__settler *s) {
  double t0 = now_s();
  for (int i = 0; i < TRICKLE; i++) {
    add_entries(1);
    drain(s, 1);
  }
  return (now_s() - t0) * 1e6 / TRICKLE;
}

int main(int argc, char **argv) {
  int rounds = argc > 1 ? atoi(argv[1]) : 5;
  if (rounds < 1 || rounds > MAX_ROUNDS) {
    fprintf(stderr, "rounds: 1..%d\n", MAX_ROUNDS);
    return 2;
  }
  master = gm_test_redis_start();
  gm_test_redis *replica = gm_test_redis_start();
  gm_test_redis_replicate(master, replica);
  raw = gm_test_redis_connect(master);
  for (int i = 0; i < STREAMS; i++)
    freeReplyObject(
        gm_test_redis_cmd(raw, "SADD gm:outboxes gm:{bench:s%02d}:outbox", i));
  ledger_path = gm_test_redis_path(master, "ledger.sqlite");
  char err[512];
  gm__ledger *l = gm__ledger_open(ledger_path, 0, err, sizeof err);
  const gm_migration mig[] = {
      {1, "CREATE TABLE bench_rows(stream TEXT, id TEXT, qty INTEGER)"}};
  if (!l || gm__ledger_migrate(l, "bench", mig, 1, err, sizeof err) != GM_OK) {
    fprintf(stderr, "ledger: %s\n", err);
    return 1;
  }
  gm__ledger_close(&l);
  gm__settle_config cfg = {.redis = {.unix_path = gm_test_redis_socket(master)},
                           .ledger_path = ledger_path,
                           .consumer = "bench",
                           .batch_size = BATCH,
                           .block_ms = 10,
                           .claim_idle_ms = 600000,
                           .prune_idle_ms = 1200000,
                           .lookup = lookup,
                           .no_thread = 1};
  gm__settler *s = gm__settler_start(&cfg, err, sizeof err);
  if (!s) {
    fprintf(stderr, "settler: %s\n", err);
    return 1;
  }
  gm__settler_drain_once(s); /* the groups made, nothing to settle */
  double rate[2][MAX_ROUNDS], lat[2][MAX_ROUNDS], rr[MAX_ROUNDS],
      lr[MAX_ROUNDS];
  for (int r = 0; r < rounds; r++) {
    for (int k = 0; k < 2; k++) {
      int on = (r + k) % 2; /* alternate which goes first */
      gm__scripts_set_wait_replicas(on ? WAIT_MS : 0);
      rate[on][r] = backlog_rate(s);
      lat[on][r] = trickle_us(s);
    }
    rr[r] = rate[1][r] / rate[0][r];
    lr[r] = lat[1][r] / lat[0][r];
    printf(
        "round %d: backlog %.0f/s off, %.0f/s on (%.2fx); one entry "
        "%.0f us off, %.0f us on (%.2fx)\n",
        r + 1, rate[0][r], rate[1][r], rr[r], lat[0][r], lat[1][r], lr[r]);
  }
  printf(
      "medians of %d rounds (single Redis, one replica, batch %d, %d "
      "streams): backlog %.0f/s off, %.0f/s on, ratio on/off %.2f; one "
      "entry at a time %.0f us off, %.0f us on, ratio %.2f\n",
      rounds, BATCH, STREAMS, median(rate[0], rounds), median(rate[1], rounds),
      median(rr, rounds), median(lat[0], rounds), median(lat[1], rounds),
      median(lr, rounds));
  gm__settler_stop(&s);
  redisFree(raw);
  free(ledger_path);
  gm_test_redis_stop(&replica);
  gm_test_redis_stop(&master);
  return 0;
}
