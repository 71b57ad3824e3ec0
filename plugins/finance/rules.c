/* The finance rules that need no Redis (rules.h). */
#include "rules.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <greenmarket/date.h>
#include <greenmarket/iso4217.h>

int64_t gm__finance_fee(int64_t amount, int32_t bp) {
  if (amount < 0 || amount > GM_FINANCE_MAX_AMOUNT || bp < 0 ||
      bp > GM_FINANCE_MAX_BP)
    return -1;
  return (amount * bp + 5000) / 10000;
}

int32_t gm__finance_ratio_bp(int64_t part, int64_t whole) {
  if (whole <= 0 || part <= 0) return 0;
  if (part >= whole) return 10000;
  if (part <= INT64_MAX / 10000) return (int32_t)(part * 10000 / whole);
  /* Counts this large come only from a damaged ledger: whole > part >
     9.2e14, so whole / 10000 is positive; part < whole stays below 100%. */
  int64_t r = part / (whole / 10000);
  return (int32_t)(r > 9999 ? 9999 : r);
}

void gm__finance_band(int64_t amount, int64_t *min, int64_t *max) {
  /* Bounds in yuan: 1, 5, 10, 50 and 100 million. */
  static const int64_t edge[] = {INT64_C(100000000), INT64_C(500000000),
                                 INT64_C(1000000000), INT64_C(5000000000),
                                 INT64_C(10000000000)};
  int64_t lo = 0;
  for (size_t i = 0; i < sizeof edge / sizeof edge[0]; i++) {
    if (amount < edge[i]) {
      *min = lo;
      *max = edge[i];
      return;
    }
    lo = edge[i];
  }
  *min = lo;
  *max = 0;
}

/* ---- dates ---- */

static int gm__finance_digits(const char *s, int n) {
  for (int i = 0; i < n; i++)
    if (s[i] < '0' || s[i] > '9') return 0;
  return 1;
}

/* Dates: include/greenmarket/date.h, total over any int64 (a time from a
   corrupted record is clamped to 0000-01-01 .. 9999-12-31 instead of
   overflowing). */
int64_t gm__finance_day_of(int64_t ms) {
  return gm_date_day_of(ms, GM_FINANCE_TZ_MS);
}

int64_t gm__finance_day_start_ms(int64_t day) {
  return gm_date_day_start(day, GM_FINANCE_TZ_MS);
}

int gm__finance_parse_date(const char *s, int64_t *day) {
  return gm_date_parse(s, day);
}

const char *gm__finance_format_date(int64_t day, char out[16]) {
  /* 1970-01-01 .. 9999-12-31: a day before 1970 is no day this market
     writes. */
  if (day < GM_DATE_MIN_PARSE_DAY || gm_date_format(day, out) != 0)
    snprintf(out, 16, "-");
  return out;
}

int gm__finance_parse_month(const char *s, int64_t *first, int64_t *next) {
  char d[11];
  if (!s || strlen(s) != 7) return -1;
  memcpy(d, s, 7);
  memcpy(d + 7, "-01", 4);
  if (gm_date_parse(d, first) != 0) return -1;
  int y = atoi(s), m = atoi(s + 5);
  if (m == 12 && y >= 9999) return -1;
  *next = gm_date_from_civil(m == 12 ? y + 1 : y, m == 12 ? 1 : m + 1, 1);
  return 0;
}

/* The fields of "YYYY-MM-DD" (n = 10) or "YYYY-MM" (n = 7); -1 when s
   has another shape. */
static int finance__ymd(const char *s, size_t n, int *y, int *m, int *d) {
  if (!s || strlen(s) != n || s[4] != '-' || (n == 10 && s[7] != '-'))
    return -1;
  for (size_t i = 0; i < n; i++)
    if (i != 4 && i != 7 && (s[i] < '0' || s[i] > '9')) return -1;
  *y = atoi(s);
  *m = atoi(s + 5);
  *d = n == 10 ? atoi(s + 8) : 1;
  return 0;
}

const char *gm__finance_date_why(const char *s) {
  int y, m, d;
  if (finance__ymd(s, 10, &y, &m, &d))
    return "is not a date YYYY-MM-DD, e.g. 2026-03-02";
  if (m < 1 || m > 12) return "does not exist: a month is 01 to 12";
  if (!gm_date_valid(y, m, d)) return "does not exist: that month is shorter";
  if (y < 1970) return "is before 1970-01-01, the first date accepted";
  return "is not a date YYYY-MM-DD";
}

const char *gm__finance_month_why(const char *s) {
  int y, m, d;
  if (finance__ymd(s, 7, &y, &m, &d)) return "is not a month YYYY-MM";
  if (m < 1 || m > 12) return "does not exist: a month is 01 to 12";
  return "is outside the months accepted, 1970-01 to 9999-11";
}

int gm__finance_weekday(int64_t day) {
  return gm_date_weekday(day);
}

static int gm__finance_in(const int64_t *a, size_t n, int64_t v) {
  size_t lo = 0, hi = n;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (a[mid] == v) return 1;
    if (a[mid] < v)
      lo = mid + 1;
    else
      hi = mid;
  }
  return 0;
}

int gm__finance_working(const gm__finance_calendar *cal, int64_t day) {
  if (cal && gm__finance_in(cal->workdays, cal->nworkdays, day)) return 1;
  int w = gm__finance_weekday(day);
  if (w == 0 || w == 6) return 0;
  return !(cal && gm__finance_in(cal->holidays, cal->nholidays, day));
}

int gm__finance_working_due(const gm__finance_calendar *cal, int64_t from_ms,
                            int n, int horizon, int64_t *due) {
  int64_t day = gm__finance_day_of(from_ms);
  int left = n;
  if (n < 1) return -1;
  for (int i = 1; i <= horizon; i++)
    if (gm__finance_working(cal, day + i) && --left == 0) {
      *due = gm__finance_day_start_ms(day + i + 1);
      return 0;
    }
  return -1;
}

/* ---- codes and ids ---- */

int gm__finance_valid_region(const char *s) {
  static const int prov[] = {11, 12, 13, 14, 15, 21, 22, 23, 31, 32, 33, 34,
                             35, 36, 37, 41, 42, 43, 44, 45, 46, 50, 51, 52,
                             53, 54, 61, 62, 63, 64, 65, 71, 81, 82};
  if (!s || strlen(s) != 6 || !gm__finance_digits(s, 6)) return 0;
  int p = (s[0] - '0') * 10 + (s[1] - '0');
  for (size_t i = 0; i < sizeof prov / sizeof prov[0]; i++)
    if (prov[i] == p) return 1;
  return 0;
}

const char *gm__finance_region_why(const char *s) {
  if (!s || strlen(s) != 6 || !gm__finance_digits(s, 6))
    return "is not a division code of six digits";
  return "is six digits, but its first two are no province of GB/T 2260 "
         "(11-15, 21-23, 31-37, 41-46, 50-54, 61-65, 71, 81, 82)";
}

int gm__finance_region_covers(const char *product, const char *region) {
  if (!strcmp(product, "000000")) return 1;
  if (!strcmp(product + 2, "0000")) return !strncmp(product, region, 2);
  if (!strcmp(product + 4, "00")) return !strncmp(product, region, 4);
  return !strcmp(product, region);
}

void gm__finance_city(const char *region, char out[7]) {
  snprintf(out, 7, "%.4s00", region);
}

int gm__finance_valid_code(const char *s) {
  int parts = 1;
  if (!s || s[0] < '1' || s[0] > '9' || (s[1] && s[1] != '.')) return 0;
  for (const char *p = s + 1; *p;) {
    if (*p != '.' || ++parts > 3) return 0;
    p++;
    int n = 0;
    while (*p >= '0' && *p <= '9') p++, n++;
    if (n < 1 || n > 2 || p[-n] == '0') return 0;
  }
  return 1;
}

int gm__finance_code_cmp(const char *a, const char *b) {
  for (;;) {
    char *ea, *eb;
    long x = strtol(a, &ea, 10), y = strtol(b, &eb, 10);
    /* No number where one belongs: not a code (a corrupted entry). */
    if (ea == a || eb == b) return strcmp(a, b);
    if (x != y) return x < y ? -1 : 1;
    a = ea;
    b = eb;
    if (*a != '.' || *b != '.') return (*a == '.') - (*b == '.');
    a++;
    b++;
  }
}

char gm__finance_top(const char *code) {
  return code && *code ? code[0] : 0;
}

int gm__finance_class_covers(const char *product_class, const char *subitem) {
  size_t n = strlen(product_class);
  return !strncmp(product_class, subitem, n) &&
         (subitem[n] == '\0' || subitem[n] == '.');
}

static int gm__finance_charset(const char *s, size_t max, const char *extra,
                               int upper) {
  size_t n = s ? strlen(s) : 0;
  if (n < 1 || n > max) return 0;
  for (size_t i = 0; i < n; i++) {
    char c = s[i];
    if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
        (upper && c >= 'A' && c <= 'Z') || (c && strchr(extra, c)))
      continue;
    return 0;
  }
  return 1;
}

int gm__finance_valid_bank(const char *s) {
  return gm__finance_charset(s, 32, "-", 0) && s[0] != '-';
}

int gm__finance_valid_product(const char *s) {
  return gm__finance_charset(s, 48, "._-", 1);
}

int gm__finance_valid_referral(const char *s) {
  size_t n = s ? strlen(s) : 0;
  /* As 'take' writes it (R%08d): 8 digits, more only without a leading
     zero, so one referral has one id. */
  return n >= 9 && n <= 16 && s[0] == 'R' &&
         gm__finance_digits(s + 1, (int)n - 1) && (n == 9 || s[1] != '0');
}

int gm__finance_valid_participant(const char *s) {
  return gm__finance_charset(s, 64, "._-", 1);
}

/* ---- files ---- */

/* Splits the line [p, end) at commas into at most n fields (NUL-terminated
 * copies in buf); returns the number of fields, or -1 on a quote. */
static int gm__finance_fields(const char *p, const char *end, char *buf,
                              size_t buflen, char **f, int n) {
  size_t len = (size_t)(end - p);
  int k = 0;
  if (len >= buflen) len = buflen - 1;
  memcpy(buf, p, len);
  buf[len] = '\0';
  if (len && buf[len - 1] == '\r') buf[--len] = '\0';
  if (strchr(buf, '"')) return -1;
  for (char *s = buf; k < n;) {
    f[k++] = s;
    char *c = strchr(s, ',');
    if (!c) break;
    *c = '\0';
    s = c + 1;
  }
  return k;
}

/* Walks the lines of text: skips blank and '#' lines and the header (its
 * first field must be `head`); calls line() with the 1-based number. */
static long gm__finance_lines(const char *text, const char *head, int nf,
                              int (*line)(void *ctx, long no, char **f, int n,
                                          char *err, size_t errlen),
                              void *ctx, char *err, size_t errlen) {
  char buf[1024], *f[8];
  long no = 0, count = 0;
  int header = 0;
  for (const char *p = text ? text : ""; *p;) {
    const char *end = strchr(p, '\n');
    if (!end) end = p + strlen(p);
    no++;
    if ((size_t)(end - p) >= sizeof buf) {
      snprintf(err, errlen, "line %ld is longer than %zu bytes", no,
               sizeof buf - 1);
      return -1;
    }
    int n = gm__finance_fields(p, end, buf, sizeof buf, f, 8);
    p = *end ? end + 1 : end;
    if (n < 0) {
      snprintf(err, errlen,
               "line %ld has a double quote; fields are plain text without "
               "commas or quotes",
               no);
      return -1;
    }
    if (buf[0] == '\0' || buf[0] == '#') continue;
    if (!header) {
      if (strcmp(f[0], head) != 0) {
        snprintf(err, errlen,
                 "line %ld: the first line must be the header starting "
                 "\"%s,\"",
                 no, head);
        return -1;
      }
      header = 1;
      continue;
    }
    if (n != nf) {
      snprintf(err, errlen,
               "line %ld has %d fields, not %d (a comma inside a field? "
               "fields hold no commas)",
               no, n, nf);
      return -1;
    }
    int rc = line(ctx, no, f, n, err, errlen);
    if (rc < 0) return -1;
    if (rc > 0) break;
    count++;
  }
  if (!header) {
    snprintf(err, errlen, "the file is empty: no header line \"%s,...\"", head);
    return -1;
  }
  return count;
}

typedef struct gm__finance_cat_ctx {
  gm__finance_entry_fn add;
  void *arg;
  char codes[4096][12]; /* codes seen, to find parents and duplicates */
  size_t n;
} gm__finance_cat_ctx;

static int gm__finance_seen(const gm__finance_cat_ctx *c, const char *code) {
  for (size_t i = 0; i < c->n; i++)
    if (!strcmp(c->codes[i], code)) return 1;
  return 0;
}

static int gm__finance_cat_line(void *ctx, long no, char **f, int n, char *err,
                                size_t errlen) {
  gm__finance_cat_ctx *c = ctx;
  (void)n;
  if (!gm__finance_valid_code(f[0])) {
    char cut[32];
    snprintf(err, errlen,
             "line %ld: code \"%s\" is not a catalogue code like 3, 3.2 or "
             "3.2.1",
             no, gm__finance_cut(f[0], 16, cut, sizeof cut));
    return -1;
  }
  const char *dot = strrchr(f[0], '.');
  size_t plen = dot ? (size_t)(dot - f[0]) : 0;
  if (strlen(f[1]) != plen || strncmp(f[1], f[0], plen) != 0) {
    char cut[32];
    snprintf(err, errlen,
             "line %ld: the parent of %s must be \"%.*s\", not \"%s\"", no,
             f[0], (int)plen, f[0], gm__finance_cut(f[1], 16, cut, sizeof cut));
    return -1;
  }
  if (plen && !gm__finance_seen(c, f[1])) {
    snprintf(err, errlen, "line %ld: parent %s of %s is not listed before it",
             no, f[1], f[0]);
    return -1;
  }
  if (gm__finance_seen(c, f[0])) {
    snprintf(err, errlen, "line %ld: code %s is listed twice", no, f[0]);
    return -1;
  }
  if (!f[2][0] || strlen(f[2]) > 200 || strlen(f[3]) > 200) {
    snprintf(err, errlen,
             "line %ld: %s needs a name of 1-200 bytes (name_en at most 200)",
             no, f[0]);
    return -1;
  }
  if (c->n == sizeof c->codes / sizeof c->codes[0]) {
    snprintf(err, errlen, "line %ld: more than %zu entries", no,
             sizeof c->codes / sizeof c->codes[0]);
    return -1;
  }
  snprintf(c->codes[c->n++], sizeof c->codes[0], "%s", f[0]);
  return c->add(c->arg, f[0], f[1], f[2], f[3]) ? 1 : 0;
}

long gm__finance_catalogue_parse(const char *text, gm__finance_entry_fn add,
                                 void *arg, char *err, size_t errlen) {
  gm__finance_cat_ctx *c = calloc(1, sizeof *c);
  if (!c) {
    snprintf(err, errlen, "out of memory");
    return -1;
  }
  c->add = add;
  c->arg = arg;
  long n =
      gm__finance_lines(text, "code", 4, gm__finance_cat_line, c, err, errlen);
  free(c);
  return n;
}

typedef struct gm__finance_cal_ctx {
  gm__finance_day_fn add;
  void *arg;
} gm__finance_cal_ctx;

static int gm__finance_cal_line(void *ctx, long no, char **f, int n, char *err,
                                size_t errlen) {
  gm__finance_cal_ctx *c = ctx;
  int64_t day;
  (void)n;
  if (gm__finance_parse_date(f[0], &day)) {
    char cut[32];
    snprintf(err, errlen, "line %ld: \"%s\" is not a date YYYY-MM-DD", no,
             gm__finance_cut(f[0], 16, cut, sizeof cut));
    return -1;
  }
  int working = !strcmp(f[1], "workday");
  char kind = working ? 'w' : !strcmp(f[1], "statutory") ? 's' : 'h';
  if (kind == 'h' && strcmp(f[1], "holiday")) {
    char cut[32];
    snprintf(err, errlen,
             "line %ld: kind \"%s\" is not holiday, workday or statutory", no,
             gm__finance_cut(f[1], 16, cut, sizeof cut));
    return -1;
  }
  int w = gm__finance_weekday(day);
  if (working != (w == 0 || w == 6)) {
    snprintf(err, errlen,
             "line %ld: %s is a %s, so marking it a %s changes nothing; list "
             "weekday holidays and worked weekend days only",
             no, f[0], working ? "weekday" : "weekend day", f[1]);
    return -1;
  }
  if (strlen(f[2]) > 100) {
    snprintf(err, errlen, "line %ld: the note is longer than 100 bytes", no);
    return -1;
  }
  return c->add(c->arg, day, kind, f[2]) ? 1 : 0;
}

long gm__finance_calendar_parse(const char *text, gm__finance_day_fn add,
                                void *arg, char *err, size_t errlen) {
  gm__finance_cal_ctx c = {add, arg};
  return gm__finance_lines(text, "date", 3, gm__finance_cal_line, &c, err,
                           errlen);
}

const char *gm__finance_cut(const char *s, size_t max, char *out,
                            size_t outlen) {
  size_t n = s ? strlen(s) : 0, keep = n;
  if (keep > max) {
    keep = max;
    /* Back off continuation bytes (10xxxxxx) to the character's start. */
    while (keep > 0 && ((unsigned char)s[keep] & 0xc0) == 0x80) keep--;
  }
  snprintf(out, outlen, "%.*s%s", (int)keep, s ? s : "", keep < n ? "..." : "");
  return out;
}

/* ---- amounts ---- */

const char *gm__finance_format_money(int64_t amount, const char *currency,
                                     char out[40]) {
  int d = gm_iso4217_minor(currency);
  int64_t unit = d == 0 ? 100 : d == 1 ? 10 : 1;
  const char *sign = amount < 0 ? "-" : "";
  uint64_t a = amount < 0 ? (uint64_t)0 - (uint64_t)amount : (uint64_t)amount;
  if (d < 0) d = 2; /* a code refused now, in an older record */
  if (d < 2 && a % (uint64_t)unit == 0) {
    if (d == 0)
      snprintf(out, 40, "%s%llu", sign, (unsigned long long)(a / 100));
    else
      snprintf(out, 40, "%s%llu.%llu", sign, (unsigned long long)(a / 100),
               (unsigned long long)(a % 100 / 10));
  } else {
    snprintf(out, 40, "%s%llu.%02llu%.*s", sign, (unsigned long long)(a / 100),
             (unsigned long long)(a % 100), d > 2 ? d - 2 : 0, "00");
  }
  return out;
}

int gm__finance_money_check(const char *what, int64_t amount,
                            const char *currency, char *err, size_t errlen) {
  int d = gm_iso4217_minor(currency);
  if (d < 0 || d >= 2 || amount % (d == 0 ? 100 : 10) == 0) return 0;
  char m[40];
  snprintf(err, errlen,
           "%s %s %s has more decimals than %s has (%d, ISO 4217); give %s "
           "in %s",
           what, gm__finance_format_money(amount, currency, m), currency,
           currency, d, d == 0 ? "a whole amount" : "at most 1 decimal",
           currency);
  return -1;
}

const char *gm__finance_format_pct(int64_t bp, char out[16]) {
  /* Basis points of a rate or fee: at most 100.00 (checked on the way in). */
  int b = (int)(bp % 1000000);
  snprintf(out, 16, "%d.%02d", b / 100, (b < 0 ? -b : b) % 100);
  return out;
}

const char *gm__finance_format_tonnes(int64_t kg, char out[32]) {
  snprintf(out, 32, "%lld.%03lld", (long long)(kg / 1000),
           (long long)(kg % 1000));
  return out;
}

/* `text` as typed, for a refusal: short printable ASCII only (a refusal
   never echoes bytes that could be invalid UTF-8 or a terminal control). */
static const char *gm__finance_typed(const char *text) {
  size_t n = strlen(text);
  if (n > 40) return "";
  for (size_t i = 0; i < n; i++)
    if (text[i] < 0x20 || text[i] > 0x7e) return "";
  return text;
}

int gm__finance_parse_decimal(const char *what, const char *unit,
                              const char *text, int decimals, int64_t max,
                              int64_t *out, char *err, size_t errlen) {
  int64_t whole = 0, frac = 0, scale = 1;
  int nwhole = 0, nfrac = 0, dot = 0, big = 0;
  for (int i = 0; i < decimals; i++) scale *= 10;
  if (!text || !*text) {
    snprintf(err, errlen, "%s is empty; give a number of %s", what, unit);
    return -1;
  }
  const char *typed = gm__finance_typed(text), *sep = *typed ? " " : "";
  if (text[0] == '-') {
    snprintf(err, errlen, "%s%s%s is negative; give a positive number of %s",
             what, sep, typed, unit);
    return -1;
  }
  for (const char *p = text; *p; p++) {
    if (*p == '.' && !dot) {
      dot = 1;
    } else if (*p >= '0' && *p <= '9') {
      if (dot) {
        if (++nfrac <= decimals) frac = frac * 10 + (*p - '0');
      } else {
        nwhole++;
        /* Stop accumulating past the limit: no overflow. */
        if (!big) whole = whole * 10 + (*p - '0');
        if (whole > max / scale) big = 1;
      }
    } else {
      nwhole = -1;
      break;
    }
  }
  if (decimals == 0 && nwhole > 0 && dot) {
    snprintf(err, errlen, "%s must be a whole number of %s, not %s", what, unit,
             text);
    return -1;
  }
  if (nwhole <= 0 || (dot && nfrac == 0)) {
    if (decimals == 0)
      snprintf(err, errlen,
               "%s%s%s is not a number of %s; write a whole number in "
               "digits",
               what, sep, typed, unit);
    else
      snprintf(err, errlen,
               "%s%s%s is not a number of %s; write digits with at most %d "
               "decimals after a point",
               what, sep, typed, unit, decimals);
    return -1;
  }
  if (nfrac > decimals) {
    snprintf(err, errlen,
             "%s%s%s has more than %d decimals; give %s to %d decimals", what,
             sep, typed, decimals, unit, decimals);
    return -1;
  }
  for (int i = nfrac; i < decimals; i++) frac *= 10;
  if (big || frac > max - whole * scale) {
    char m[48];
    snprintf(m, sizeof m, "%lld", (long long)(max / scale));
    snprintf(err, errlen, "%s%s%s is above the largest accepted, %s %s", what,
             sep, typed, m, unit);
    return -1;
  }
  *out = whole * scale + frac;
  return 0;
}
