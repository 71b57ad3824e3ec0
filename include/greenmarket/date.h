/*
 * greenmarket: calendar dates at a fixed offset from UTC, for markets whose
 * rules count days (trading days, working-day deadlines, statement months).
 * Header-only, so any market plugin can include it without linking
 * anything; no market owns it.
 *
 * A day is a count of days since 1970-01-01 in the local calendar
 * (proleptic Gregorian), and a time is ms since the epoch, as the host
 * gives them.  China has one offset all year (UTC+8, no daylight saving
 * since 1991), so a fixed offset is exact for it: GM_DATE_CHINA_MS.
 *
 * Every function is total over its integer arguments: a time or a day from
 * a corrupted record (the fuzzers feed INT64_MAX and INT64_MIN) is clamped
 * to the days 0000-01-01 .. 9999-12-31, the dates a four-digit year can
 * write, instead of overflowing; an offset to under a day either way; the
 * year, month and day of gm_date_from_civil to -1 .. 10000, 1 .. 12 and
 * 1 .. 31.  Parsing accepts 1970-01-01 .. 9999-12-31 only: the host's
 * times start in 1970.
 *
 * The day arithmetic is H. Hinnant's days_from_civil and civil_from_days
 * ("chrono-Compatible Low-Level Date Algorithms"), written here from the
 * description.
 */
#ifndef GREENMARKET_DATE_H
#define GREENMARKET_DATE_H

#include <stdint.h>
#include <string.h>

#ifdef __cplusplus
extern "C" {
#endif

#define GM_DATE_DAY_MS INT64_C(86400000)
/* Asia/Shanghai: UTC+8 all year. */
#define GM_DATE_CHINA_MS INT64_C(28800000)
/* 0000-01-01 and 9999-12-31 as days since 1970-01-01. */
#define GM_DATE_MIN_DAY INT64_C(-719528)
#define GM_DATE_MAX_DAY INT64_C(2932896)
/* 1970-01-01: the first day gm_date_parse accepts. */
#define GM_DATE_MIN_PARSE_DAY INT64_C(0)

/* An offset from UTC clamped to under a day either way. */
static inline int64_t gm__date_offset(int64_t offset_ms) {
  return offset_ms >= GM_DATE_DAY_MS    ? GM_DATE_DAY_MS - 1
         : offset_ms <= -GM_DATE_DAY_MS ? 1 - GM_DATE_DAY_MS
                                        : offset_ms;
}

/* The day of y-m-d (no check that it is a real date, so 2026-02-30 is 2
   March: see gm_date_valid); y, m and d clamped as the top says. */
static inline int64_t gm_date_from_civil(int64_t y, int m, int d) {
  y = y < -1 ? -1 : y > 10000 ? 10000 : y;
  m = m < 1 ? 1 : m > 12 ? 12 : m;
  d = d < 1 ? 1 : d > 31 ? 31 : d;
  y -= m <= 2;
  int64_t era = (y >= 0 ? y : y - 399) / 400;
  int64_t yoe = y - era * 400;
  int64_t doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
  int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

/* day clamped to 0000-01-01 .. 9999-12-31. */
static inline int64_t gm_date_clamp(int64_t day) {
  return day < GM_DATE_MIN_DAY   ? GM_DATE_MIN_DAY
         : day > GM_DATE_MAX_DAY ? GM_DATE_MAX_DAY
                                 : day;
}

/* y-m-d of a day, the day first clamped to 0000-01-01 .. 9999-12-31. */
static inline void gm_date_civil(int64_t day, int *y, int *m, int *d) {
  int64_t z = gm_date_clamp(day) + 719468;
  int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  int64_t doe = z - era * 146097;
  int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  int64_t mp = (5 * doy + 2) / 153;
  *d = (int)(doy - (153 * mp + 2) / 5 + 1);
  *m = (int)(mp < 10 ? mp + 3 : mp - 9);
  *y = (int)(yoe + era * 400 + (*m <= 2));
}

/* The year of a day (clamped as gm_date_civil clamps). */
static inline int gm_date_year(int64_t day) {
  int y, m, d;
  gm_date_civil(day, &y, &m, &d);
  return y;
}

/* 1 when y-m-d is a real date of the years 0 .. 9999. */
static inline int gm_date_valid(int y, int m, int d) {
  static const int mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  if (y < 0 || y > 9999 || m < 1 || m > 12 || d < 1) return 0;
  int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
  return d <= mdays[m - 1] + (m == 2 && leap);
}

/* The local day holding ms, at offset_ms from UTC, clamped to 0000-01-01
   .. 9999-12-31. */
static inline int64_t gm_date_day_of(int64_t ms, int64_t offset_ms) {
  /* Clamped before adding the offset, far enough out that the result is
     still the first or the last day. */
  const int64_t lo = (GM_DATE_MIN_DAY - 1) * GM_DATE_DAY_MS;
  const int64_t hi = (GM_DATE_MAX_DAY + 2) * GM_DATE_DAY_MS;
  if (ms < lo) ms = lo;
  if (ms > hi) ms = hi;
  int64_t t = ms + gm__date_offset(offset_ms);
  int64_t q = t / GM_DATE_DAY_MS;
  if (t % GM_DATE_DAY_MS < 0) q--; /* floor, not truncation */
  return gm_date_clamp(q);
}

/* The ms at which local day `day` starts.  day may be one past
   9999-12-31, so that gm_date_day_start(day + 1) - 1 is the last ms of any
   day; beyond that it is clamped. */
static inline int64_t gm_date_day_start(int64_t day, int64_t offset_ms) {
  if (day < GM_DATE_MIN_DAY) day = GM_DATE_MIN_DAY;
  if (day > GM_DATE_MAX_DAY + 1) day = GM_DATE_MAX_DAY + 1;
  return day * GM_DATE_DAY_MS - gm__date_offset(offset_ms);
}

/* The local day of ms and the ms since that day's midnight (0 .. one day
   - 1).  A time outside 0000-01-01 .. 9999-12-31 local is first clamped
   to the first or the last ms of that range. */
static inline void gm_date_split(int64_t ms, int64_t offset_ms, int64_t *day,
                                 int64_t *ms_of_day) {
  int64_t first = gm_date_day_start(GM_DATE_MIN_DAY, offset_ms);
  int64_t last = gm_date_day_start(GM_DATE_MAX_DAY + 1, offset_ms) - 1;
  if (ms < first) ms = first;
  if (ms > last) ms = last;
  *day = gm_date_day_of(ms, offset_ms);
  *ms_of_day = ms - gm_date_day_start(*day, offset_ms);
}

/* 0 Sunday .. 6 Saturday. */
static inline int gm_date_weekday(int64_t day) {
  int64_t w = (day % 7 + 11) % 7; /* 1970-01-01 was a Thursday */
  return (int)w;
}

/* "YYYY-MM-DD" -> day: exactly ten characters, a real date of 1970 ..
   9999.  0, or -1 (and *day unchanged). */
static inline int gm_date_parse(const char *s, int64_t *day) {
  if (!s || strlen(s) != 10 || s[4] != '-' || s[7] != '-') return -1;
  int v[3] = {0, 0, 0};
  for (int i = 0, f = 0; i < 10; i++) {
    if (i == 4 || i == 7) {
      f++;
      continue;
    }
    if (s[i] < '0' || s[i] > '9') return -1;
    v[f] = v[f] * 10 + (s[i] - '0');
  }
  if (v[0] < 1970 || !gm_date_valid(v[0], v[1], v[2])) return -1;
  *day = gm_date_from_civil(v[0], v[1], v[2]);
  return 0;
}

/* day -> "YYYY-MM-DD" into out (11 bytes); 0, or -1 with out empty when
   the day is outside 0000-01-01 .. 9999-12-31. */
static inline int gm_date_format(int64_t day, char out[11]) {
  if (day < GM_DATE_MIN_DAY || day > GM_DATE_MAX_DAY) {
    out[0] = '\0';
    return -1;
  }
  int y, m, d;
  gm_date_civil(day, &y, &m, &d);
  const int n[] = {y / 1000, y / 100 % 10, y / 10 % 10, y % 10, -1,
                   m / 10,   m % 10,       -1,          d / 10, d % 10};
  for (int i = 0; i < 10; i++) out[i] = n[i] < 0 ? '-' : (char)('0' + n[i]);
  out[10] = '\0';
  return 0;
}

/* ms -> local "YYYY-MM-DD HH:MM:SS" into out (20 bytes), clamped as
   gm_date_split clamps; cut it at 16 for "YYYY-MM-DD HH:MM". */
static inline char *gm_date_format_time(int64_t ms, int64_t offset_ms,
                                        char out[20]) {
  int64_t day, in;
  gm_date_split(ms, offset_ms, &day, &in);
  gm_date_format(day, out);
  int64_t s = in / 1000;
  const int n[] = {(int)(s / 36000),   (int)(s / 3600 % 10), -1,
                   (int)(s / 600 % 6), (int)(s / 60 % 10),   -1,
                   (int)(s % 60 / 10), (int)(s % 10)};
  out[10] = ' ';
  for (int i = 0; i < 8; i++) out[11 + i] = n[i] < 0 ? ':' : (char)('0' + n[i]);
  out[19] = '\0';
  return out;
}

#ifdef __cplusplus
}
#endif

#endif
