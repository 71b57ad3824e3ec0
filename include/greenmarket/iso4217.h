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

#ifdef __cplusplus
}
#endif

#endif
