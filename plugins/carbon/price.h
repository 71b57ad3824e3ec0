/*
 * Prices as people type and read them: yuan with at most two decimals,
 * stored as int64 fen.  Header-only so the plugin and `gm carbon` (cli/)
 * share the one implementation.
 */
#ifndef GM_CARBON_PRICE_H
#define GM_CARBON_PRICE_H

#include <stdint.h>
#include <stdio.h>

/* The largest price accepted anywhere: 1,000,000.00 yuan per tonne.  With
 * at most 10,000,000 t per order, price * quantity stays below 2^53, the
 * range where the Lua scripts' doubles count exactly. */
#define GM_CARBON_MAX_PRICE INT64_C(100000000)
#define GM_CARBON_MAX_QTY INT64_C(10000000)

/* Parses "85", "85.5" or "85.50" into fen; -1 when malformed or too big. */
static inline int gm__carbon_parse_price(const char *s, int64_t *fen) {
  int64_t v = 0;
  int digits = 0, decimals = -1;
  if (!s || !*s) return -1;
  for (; *s; s++) {
    if (*s == '.') {
      if (decimals >= 0) return -1;
      decimals = 0;
      continue;
    }
    if (*s < '0' || *s > '9') return -1;
    if (decimals >= 0 && ++decimals > 2) return -1;
    v = v * 10 + (*s - '0');
    if (v > GM_CARBON_MAX_PRICE * 100) return -1;
    digits++;
  }
  if (digits == 0) return -1;
  if (decimals <= 0)
    v *= 100;
  else if (decimals == 1)
    v *= 10;
  if (v > GM_CARBON_MAX_PRICE) return -1;
  *fen = v;
  return 0;
}

/* Writes fen as yuan with two decimals ("85.50", "-0.05"). */
static inline const char *gm__carbon_format_price(int64_t fen, char out[32]) {
  const char *sign = fen < 0 ? "-" : "";
  uint64_t a = fen < 0 ? (uint64_t)0 - (uint64_t)fen : (uint64_t)fen;
  snprintf(out, 32, "%s%llu.%02llu", sign, (unsigned long long)(a / 100),
           (unsigned long long)(a % 100));
  return out;
}

#endif
