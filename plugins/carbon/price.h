/*
 * Prices as people read them: int64 fen shown as yuan with two decimals, and
 * the limits that keep amounts exact in Lua.  Header-only so the plugin, its
 * friendly commands (cli.c) and its scripts (scripts.c hands the limits to
 * them) share one declaration.
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
/* The most an account may hold of cash (fen) or of allowances (t), frozen
 * and locked included, and the most one day may turn over: 4 x 10^15, so
 * sums of two amounts stay exact in Lua too. */
#define GM_CARBON_MAX_CASH INT64_C(4000000000000000)

/* Writes fen as yuan with two decimals ("85.50", "-0.05"). */
static inline const char *gm__carbon_format_price(int64_t fen, char out[32]) {
  const char *sign = fen < 0 ? "-" : "";
  uint64_t a = fen < 0 ? (uint64_t)0 - (uint64_t)fen : (uint64_t)fen;
  snprintf(out, 32, "%s%llu.%02llu", sign, (unsigned long long)(a / 100),
           (unsigned long long)(a % 100));
  return out;
}

#endif
