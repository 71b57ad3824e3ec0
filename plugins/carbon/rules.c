/* The carbon rules that need no Redis (rules.h). */
#include "rules.h"

#include <greenmarket/date.h>
#include <greenmarket/text.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int carbon__hhmm(const char **p, int *minutes) {
  const char *s = *p;
  if (s[0] < '0' || s[0] > '9' || s[1] < '0' || s[1] > '9' || s[2] != ':' ||
      s[3] < '0' || s[3] > '9' || s[4] < '0' || s[4] > '9')
    return -1;
  int h = (s[0] - '0') * 10 + (s[1] - '0');
  int m = (s[3] - '0') * 10 + (s[4] - '0');
  if (h > 24 || m > 59 || (h == 24 && m != 0)) return -1;
  *minutes = h * 60 + m;
  *p = s + 5;
  return 0;
}

int gm__carbon_parse_sessions(const char *in, char *out, size_t outlen,
                              char *err, size_t errlen) {
  const char *p = in;
  char shown[96];
  size_t used = 0;
  int prev_end = -1, n = 0;

  if (!in || !*in) {
    snprintf(err, errlen,
             "no session given; write e.g. 09:30-11:30,13:00-15:00");
    return -1;
  }
  while (*p) {
    int a, b;
    if (carbon__hhmm(&p, &a) || *p++ != '-' || carbon__hhmm(&p, &b)) {
      snprintf(err, errlen,
               "session list \"%s\" is not HH:MM-HH:MM[,HH:MM-HH:MM...]",
               gm__carbon_shown(in, shown));
      return -1;
    }
    if (b <= a || a < prev_end) {
      snprintf(err, errlen,
               "sessions in \"%s\" must each end after they start and come "
               "in order without overlapping",
               gm__carbon_shown(in, shown));
      return -1;
    }
    if (*p == ',')
      p++;
    else if (*p) {
      snprintf(err, errlen,
               "unexpected character at byte %d of session list \"%s\"; "
               "separate sessions with ','",
               (int)(p - in + 1), gm__carbon_shown(in, shown));
      return -1;
    }
    int w = snprintf(out + used, outlen - used, "%s%d-%d", n ? "," : "", a, b);
    if (w < 0 || (size_t)w >= outlen - used) {
      snprintf(err, errlen, "too many sessions in \"%s\"",
               gm__carbon_shown(in, shown));
      return -1;
    }
    used += (size_t)w;
    prev_end = b;
    n++;
  }
  return 0;
}

void gm__carbon_format_sessions(const char *spec, char *out, size_t outlen) {
  const char *p = spec;
  size_t used = 0;
  int a, b, k;
  out[0] = '\0';
  while (p && sscanf(p, "%d-%d%n", &a, &b, &k) == 2) {
    int w = snprintf(out + used, outlen - used, "%s%02d:%02d-%02d:%02d",
                     used ? "," : "", a / 60, a % 60, b / 60, b % 60);
    if (w < 0 || (size_t)w >= outlen - used) return;
    used += (size_t)w;
    p += k;
    if (*p != ',') break;
    p++;
  }
}

/* Dates: include/greenmarket/date.h, clamped to 0000-01-01 .. 9999-12-31
   rather than overflowing on a time from a corrupted record (found by
   tests/fuzz/fuzz_market). */
int64_t gm__carbon_day_of(int64_t ms) {
  return gm_date_day_of(ms, GM_CARBON_TZ_MS);
}

int64_t gm__carbon_day_start_ms(int64_t day) {
  return gm_date_day_start(day, GM_CARBON_TZ_MS);
}

/* By hand rather than snprintf: a request formats a dozen numbers, and
   printf's machinery cost gmd about 700 instructions a number. */
size_t gm__carbon_format_int(int64_t v, char out[24]) {
  char tmp[24], *p = tmp + sizeof tmp;
  uint64_t u = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;
  do *--p = (char)('0' + u % 10);
  while (u /= 10);
  if (v < 0) *--p = '-';
  size_t n = (size_t)(tmp + sizeof tmp - p);
  memcpy(out, p, n);
  out[n] = '\0';
  return n;
}

int64_t gm__carbon_parse_int(const char *s) {
  const char *p = s;
  while (*p == ' ' || (*p >= '\t' && *p <= '\r')) p++;
  int neg = *p == '-';
  if (*p == '-' || *p == '+') p++;
  uint64_t u = 0;
  int n = 0;
  for (; *p >= '0' && *p <= '9'; p++, n++) {
    /* Past 18 digits an int64 may overflow: strtoll's clamping. */
    if (n == 18) return strtoll(s, NULL, 10);
    u = u * 10 + (uint64_t)(*p - '0');
  }
  return neg ? -(int64_t)u : (int64_t)u;
}

const char *gm__carbon_format_date(int64_t day, char out[16]) {
  if (gm_date_format(day, out) != 0) snprintf(out, 16, "%s", "(no date)");
  return out;
}

int gm__carbon_parse_date(const char *s, int64_t *day) {
  return gm_date_parse(s, day);
}

int gm__carbon_valid_symbol(const char *s) {
  size_t n = s ? strlen(s) : 0;
  if (n == 0 || n > 24 || s[0] < 'A' || s[0] > 'Z') return 0;
  for (size_t i = 0; i < n; i++)
    if (!((s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= '0' && s[i] <= '9') ||
          s[i] == '-'))
      return 0;
  return 1;
}

int gm__carbon_check_text(const char *s, char *why, size_t whylen) {
  return gm_text_check(s, 0, why, whylen);
}

const char *gm__carbon_shown(const char *s, char out[96]) {
  return gm_text_shown(s, 40, out, 96);
}

int gm__carbon_bad_offset(const char *text) {
  size_t n = strlen(text);
  if (n < 7 || strchr(text, 'T') == NULL) return 0;
  const char *z = text + n - 6;
  if ((z[0] != '+' && z[0] != '-') || z[3] != ':') return 0;
  for (int i = 1; i < 6; i++)
    if (i != 3 && (z[i] < '0' || z[i] > '9')) return 0;
  int h = (z[1] - '0') * 10 + (z[2] - '0'),
      m = (z[4] - '0') * 10 + (z[5] - '0');
  return m >= 60 || h * 60 + m > 14 * 60;
}
