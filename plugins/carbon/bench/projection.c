/*
 * The projection of carbon orders/s against the number of Redis Cluster
 * masters (issue 12's benchmark; docs/carbon.md, Projection over Redis
 * Cluster masters), from this run's measured CPU per order:
 *
 *   one master    = 1e6 / (Redis CPU us per order) orders/s (one core busy)
 *   N masters     = one master x S / (instruments on the busiest master):
 *                   every instrument takes the same flow, so the busiest
 *                   master saturates first; its instruments come from their
 *                   tags' CRC16 slots over N masters holding even slot
 *                   ranges, as `redis-cli --cluster create` deals them
 *   by hand       = the same with the instruments' slots placed so that
 *                   no master holds more than ceil(S / N) of them
 *   gmd cores     = that rate (not by hand) x (gmd CPU us per order) / 1e6
 *
 * It prints figures; it asserts nothing and measures nothing new.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "bench.h"
#include "cluster.h" /* core's gm__cluster_keyslot */

/* Masters the table shows. */
static const int proj_masters[] = {1, 2, 3, 4, 6, 8, 12, 16};
#define PROJ_NM (int)(sizeof proj_masters / sizeof proj_masters[0])
#define PROJ_MAX_MASTERS 16

/* The master of `slot` among `masters` holding even ranges, dealt as
   redis-cli --cluster create does (clusterManagerCommandCreate: float
   slots per node, each range ending at lround(cursor + per - 1)). */
static int proj_master_of(int slot, int masters) {
  float per = (float)GM__CLUSTER_SLOTS / (float)masters, cursor = 0.0f;
  for (int m = 0; m < masters - 1; m++) {
    long last = lroundf(cursor + per - 1);
    if (slot <= last) return m;
    cursor += per;
  }
  return masters - 1;
}

/* How many of the instruments the busiest of `masters` holds. */
static int proj_busiest(const char *const *symbols, size_t n, int masters) {
  int count[PROJ_MAX_MASTERS] = {0}, most = 0; /* masters <= 16 */
  for (size_t i = 0; i < n; i++) {
    char key[96];
    int len = snprintf(key, sizeof key, "gm:{carbon:%s}:i", symbols[i]);
    int m = proj_master_of(gm__cluster_keyslot(key, (size_t)len), masters);
    if (++count[m] > most) most = count[m];
  }
  return most;
}

/* One block of the table: a set of instruments over every column. */
static void proj_rows(const char *label, const char *const *symbols, size_t n,
                      double one_master, double gmd_us) {
  printf("  %-26s busiest/mean", label);
  for (int k = 0; k < PROJ_NM; k++) {
    int most = proj_busiest(symbols, n, proj_masters[k]);
    printf(" %8.2f", (double)most * proj_masters[k] / (double)n);
  }
  printf("\n  %-26s orders/s    ", "");
  for (int k = 0; k < PROJ_NM; k++) {
    int most = proj_busiest(symbols, n, proj_masters[k]);
    printf(" %8.0f", one_master * (double)n / most);
  }
  printf("\n  %-26s by hand     ", "");
  for (int k = 0; k < PROJ_NM; k++) {
    size_t most = (n + (size_t)proj_masters[k] - 1) / (size_t)proj_masters[k];
    printf(" %8.0f", one_master * (double)n / (double)most);
  }
  printf("\n");
  if (gmd_us < 0) return;
  printf("  %-26s gmd cores   ", "");
  for (int k = 0; k < PROJ_NM; k++) {
    int most = proj_busiest(symbols, n, proj_masters[k]);
    printf(" %8.1f", one_master * (double)n / most * gmd_us / 1e6);
  }
  printf("\n");
}

void bench_projection_print(double redis_us, double gmd_us, const char *from,
                            const char *const *symbols, size_t nsym) {
  if (redis_us <= 0) {
    printf(
        "\nProjection over Redis Cluster masters: no Redis CPU per order "
        "measured (pass --redis-pid)\n");
    return;
  }
  double one = 1e6 / redis_us;
  printf(
      "\nProjection over Redis Cluster masters (docs/carbon.md): from %s, "
      "Redis %.1f us CPU per order -> one master (one core fully busy) "
      "%.0f orders/s",
      from, redis_us, one);
  if (gmd_us >= 0)
    printf("; gmd %.1f us per order -> %.0f orders/s per gmd core", gmd_us,
           1e6 / gmd_us);
  printf(
      ".\n  Every instrument equally busy; instruments on masters by their "
      "tag's CRC16 slot, even slot ranges; the busiest master saturates "
      "first;\n  by hand: slots moved so that each master holds at most "
      "ceil(S / N) instruments.  One instrument is one slot: alone it never "
      "passes %.0f "
      "orders/s, whatever the masters.\n",
      one);
  printf("  %-26s masters     ", "instruments");
  for (int k = 0; k < PROJ_NM; k++) printf(" %8d", proj_masters[k]);
  printf("\n");
  char label[64];
  snprintf(label, sizeof label, "this run's %zu", nsym);
  proj_rows(label, symbols, nsym, one, gmd_us);
  static const size_t sizes[] = {16, 64, 256};
  static char names[256][16];
  const char *ptr[256];
  for (size_t i = 0; i < 256; i++) {
    snprintf(names[i], sizeof names[i], "CEA-%04zu", i + 1);
    ptr[i] = names[i];
  }
  for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
    snprintf(label, sizeof label, "%zu (CEA-0001..CEA-%04zu)", sizes[s],
             sizes[s]);
    proj_rows(label, ptr, sizes[s], one, gmd_us);
  }
}
