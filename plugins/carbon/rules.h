/*
 * The carbon rules that need no Redis: session specs, dates in
 * Asia/Shanghai, names.  The scripts apply the rules that need live state
 * (bands, funds, matching); this file validates what an admin or trader
 * types before it reaches them.
 */
#ifndef GM_CARBON_RULES_H
#define GM_CARBON_RULES_H

#include <stddef.h>
#include <stdint.h>

/* Asia/Shanghai is UTC+8 all year (no daylight saving since 1991). */
#define GM_CARBON_TZ_MS INT64_C(28800000)
#define GM_CARBON_DAY_MS INT64_C(86400000)

/*
 * Parses "09:30-11:30,13:00-15:00" (local time, sorted, not overlapping)
 * into the scripts' form "570-690,780-900" (minutes of the day).  Returns 0,
 * or -1 with err saying what is wrong.
 */
int gm__carbon_parse_sessions(const char *in, char *out, size_t outlen,
                              char *err, size_t errlen);
/* The reverse: "570-690" -> "09:30-11:30". */
void gm__carbon_format_sessions(const char *spec, char *out, size_t outlen);

/* The trading day (days since 1970-01-01 in Asia/Shanghai) of `ms`.  The
   date functions take any int64: days and times are clamped to 0000-01-01
   .. 9999-12-31 (include/greenmarket/date.h). */
int64_t gm__carbon_day_of(int64_t ms);
/* Parses "YYYY-MM-DD" into a day number; -1 when it is no valid date. */
int gm__carbon_parse_date(const char *s, int64_t *day);
/* Writes a day number as "YYYY-MM-DD". */
const char *gm__carbon_format_date(int64_t day, char out[16]);
/* Writes v in decimal ("-42"); returns its length (at most 20). */
size_t gm__carbon_format_int(int64_t v, char out[24]);
/* The decimal integer s starts with, as strtoll(s, NULL, 10) reads it
   (spaces, a sign, digits; 0 when there is none), without the locale and
   base handling strtoll pays for on every call: the settler reads some ten
   numbers per record. */
int64_t gm__carbon_parse_int(const char *s);
/* The first ms of `day` in Asia/Shanghai. */
int64_t gm__carbon_day_start_ms(int64_t day);

/* A symbol: 1-24 of [A-Z0-9-], starting with a letter ("CEA-2025"). */
int gm__carbon_valid_symbol(const char *s);

/*
 * Text carbon stores and shows to others (an instrument's name, a halt
 * reason, a deposit reference, a client order id) keeps the markets' text
 * rule on one line (include/greenmarket/text.h).  Returns 0, or -1 with
 * `why` saying what is wrong ("contains the control character U+001B at
 * byte 2; ...").
 */
int gm__carbon_check_text(const char *s, char *why, size_t whylen);
/*
 * `s` as a message may show it: at most 40 bytes (cut on a UTF-8 boundary
 * to 32, with "... (N bytes)" after), control characters and invalid bytes
 * as '?' (gm_text_shown).  Returns out.
 */
const char *gm__carbon_shown(const char *s, char out[96]);
/*
 * Non-zero when a time gm would read has a zone offset outside -14:00 ..
 * +14:00 or with minutes of 60 or more ("+25:00", "+05:99"): gm's own
 * parser takes any two digits.  Times with Z, no zone or ms pass.
 */
int gm__carbon_bad_offset(const char *text);

#endif
