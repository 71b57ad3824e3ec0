/*
 * greenmarket: the active currency codes of ISO 4217, for markets that take
 * a currency from a request: a code of three capital letters that is not
 * one of these (XYZ, or a withdrawn one such as DEM or HRK) is refused,
 * rather than stored and exported where other systems reject it.
 *
 * The list is Debian's iso-codes 4.15.0 (/usr/share/iso-codes/json/
 * iso_4217.json) brought up to the ISO 4217 amendments since: HRK withdrawn
 * (Croatia adopted the euro, 2023), ZWL replaced by ZWG (2024) and ANG by
 * XCG (2025).  It is copied here so a plugin needs nothing at run time;
 * when ISO adds or withdraws a code, edit the list (sorted, as bsearch
 * needs).  Header-only: a plugin links nothing.
 */
#ifndef GREENMARKET_ISO4217_H
#define GREENMARKET_ISO4217_H

#include <stdlib.h>
#include <string.h>

#ifdef __cplusplus
extern "C" {
#endif

static const char gm_iso4217_codes[][4] = {
    "AED", "AFN", "ALL", "AMD", "AOA", "ARS", "AUD", "AWG", "AZN", "BAM", "BBD",
    "BDT", "BGN", "BHD", "BIF", "BMD", "BND", "BOB", "BOV", "BRL", "BSD", "BTN",
    "BWP", "BYN", "BZD", "CAD", "CDF", "CHE", "CHF", "CHW", "CLF", "CLP", "CNY",
    "COP", "COU", "CRC", "CUC", "CUP", "CVE", "CZK", "DJF", "DKK", "DOP", "DZD",
    "EGP", "ERN", "ETB", "EUR", "FJD", "FKP", "GBP", "GEL", "GHS", "GIP", "GMD",
    "GNF", "GTQ", "GYD", "HKD", "HNL", "HTG", "HUF", "IDR", "ILS", "INR", "IQD",
    "IRR", "ISK", "JMD", "JOD", "JPY", "KES", "KGS", "KHR", "KMF", "KPW", "KRW",
    "KWD", "KYD", "KZT", "LAK", "LBP", "LKR", "LRD", "LSL", "LYD", "MAD", "MDL",
    "MGA", "MKD", "MMK", "MNT", "MOP", "MRU", "MUR", "MVR", "MWK", "MXN", "MXV",
    "MYR", "MZN", "NAD", "NGN", "NIO", "NOK", "NPR", "NZD", "OMR", "PAB", "PEN",
    "PGK", "PHP", "PKR", "PLN", "PYG", "QAR", "RON", "RSD", "RUB", "RWF", "SAR",
    "SBD", "SCR", "SDG", "SEK", "SGD", "SHP", "SLE", "SLL", "SOS", "SRD", "SSP",
    "STN", "SVC", "SYP", "SZL", "THB", "TJS", "TMT", "TND", "TOP", "TRY", "TTD",
    "TWD", "TZS", "UAH", "UGX", "USD", "USN", "UYI", "UYU", "UYW", "UZS", "VED",
    "VES", "VND", "VUV", "WST", "XAF", "XAG", "XAU", "XBA", "XBB", "XBC", "XBD",
    "XCD", "XCG", "XDR", "XOF", "XPD", "XPF", "XPT", "XSU", "XTS", "XUA", "XXX",
    "YER", "ZAR", "ZMW", "ZWG",
};

static inline int gm__iso4217_cmp(const void *a, const void *b) {
  return memcmp(a, b, 3);
}

/* Non-zero when `code` (NUL-terminated) is an active ISO 4217 code. */
static inline int gm_iso4217_active(const char *code) {
  if (!code || strlen(code) != 3) return 0;
  return bsearch(code, gm_iso4217_codes,
                 sizeof gm_iso4217_codes / sizeof *gm_iso4217_codes,
                 sizeof *gm_iso4217_codes, gm__iso4217_cmp) != NULL;
}

/*
 * Non-zero when `code` is an active code of money a price or a loan can be
 * in: not a precious metal (XAU, XAG, XPT, XPD), a bond-market unit (XBA,
 * XBB, XBC, XBD), a unit of account (XDR, XSU, XUA), the testing code
 * (XTS) or "no currency" (XXX).  The franc and dollar zones' XAF, XOF, XPF,
 * XCD and XCG are money.
 */
static inline int gm_iso4217_money(const char *code) {
  static const char units[][4] = {"XAG", "XAU", "XBA", "XBB", "XBC",
                                  "XBD", "XDR", "XPD", "XPT", "XSU",
                                  "XTS", "XUA", "XXX"};
  if (!gm_iso4217_active(code)) return 0;
  for (size_t i = 0; i < sizeof units / sizeof *units; i++)
    if (!memcmp(code, units[i], 4)) return 0;
  return 1;
}

/*
 * The minor unit of an active money code (gm_iso4217_money): how many
 * decimals its amounts have, 0 to 4 (JPY 0, CNY 2, KWD 3, CLF 4), or -1
 * for any other code (metals, units of account, XTS and XXX have none:
 * "N.A." in the list).
 *
 * Source: ISO 4217 list one, column "Minor unit" (the list the
 * maintenance agency, SIX, publishes; current to the 2025 amendments
 * above: ZWG and XCG 2).  Debian's iso-codes does not carry minor units.
 * The one other table on a Debian machine, ICU's (CLDR "digits", e.g.
 * ucurr_getDefaultFractionDigits in libicu 72), is a display convention
 * and differs from ISO on purpose: CLDR gives 0 for AFN, ALL, IQD, IRR,
 * KPW, LAK, LBP, MGA, MMK, RSD, SLL, SOS, SYP and YER, where ISO gives 2
 * (IQD: 3).  Here ISO's.  Every code not listed below has 2.
 */
static inline int gm_iso4217_minor(const char *code) {
  static const struct {
    char code[4];
    int minor;
  } odd[] = {
      {"BHD", 3}, {"BIF", 0}, {"CLF", 4}, {"CLP", 0}, {"DJF", 0}, {"GNF", 0},
      {"IQD", 3}, {"ISK", 0}, {"JOD", 3}, {"JPY", 0}, {"KMF", 0}, {"KRW", 0},
      {"KWD", 3}, {"LYD", 3}, {"OMR", 3}, {"PYG", 0}, {"RWF", 0}, {"TND", 3},
      {"UGX", 0}, {"UYI", 0}, {"UYW", 4}, {"VND", 0}, {"VUV", 0}, {"XAF", 0},
      {"XOF", 0}, {"XPF", 0},
  };
  if (!gm_iso4217_money(code)) return -1;
  for (size_t i = 0; i < sizeof odd / sizeof *odd; i++)
    if (!memcmp(code, odd[i].code, 4)) return odd[i].minor;
  return 2;
}

#ifdef __cplusplus
}
#endif

#endif
