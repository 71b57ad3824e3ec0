/* The procurement market's rules without Redis (rules.h). */
#include "rules.h"

#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <greenmarket/date.h>
#include <greenmarket/iso4217.h>
#include <greenmarket/text.h>
#include <greenmarket/uscc.h>

/* ---- names and text ---- */

int pr_valid_name(const char *s, size_t min, size_t max, int slash) {
  size_t n = s ? strlen(s) : 0;
  if (n < min || n > max) return 0;
  if (n && (s[0] == '.' || s[0] == '-')) return 0;
  for (size_t i = 0; i < n; i++) {
    char c = s[i];
    int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
             (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-' ||
             (slash && c == '/');
    if (!ok) return 0;
  }
  return 1;
}

int pr_valid_text(const char *what, const char *s, size_t max, int newlines,
                  char *err, size_t errlen) {
  size_t n = s ? strlen(s) : 0;
  char why[200];
  if (n > max) {
    snprintf(err, errlen, "%s is %zu bytes; keep it to %zu", what, n, max);
    return -1;
  }
  if (gm_text_check(s, newlines ? GM_TEXT_LINES : 0, why, sizeof why) != 0) {
    snprintf(err, errlen, "%s %s", what, why);
    return -1;
  }
  return 0;
}

/* Active ISO 4217 codes missing from the currency enum of the OCDS 1.1
   release schema shipped in ocds/ (test_rules checks this list against
   it): a tender in one of them could not be exported as valid OCDS. */
static const char *const pr__not_in_ocds[] = {"SLE", "VED", "XCG", "ZWG"};

int pr_check_currency(const char *s, char *err, size_t errlen) {
  if (!gm_iso4217_money(s)) {
    snprintf(err, errlen,
             "currency \"%.8s\" is not an ISO 4217 currency in use (not a "
             "metal, a unit of account, XTS or XXX); use one "
             "such as CNY, USD or EUR",
             s ? s : "");
    return -1;
  }
  for (size_t i = 0; i < sizeof pr__not_in_ocds / sizeof *pr__not_in_ocds; i++)
    if (strcmp(s, pr__not_in_ocds[i]) == 0) {
      snprintf(err, errlen,
               "currency %s is an active ISO 4217 code but not in the OCDS "
               "1.1 currency codelist the tender's export follows; price the "
               "tender in another currency",
               s);
      return -1;
    }
  /* Amounts are int64 hundredths of the unit, typed and shown with two
     decimals and exported as such: a currency with other minor units
     (JPY 0, KWD 3) would take half a yen or lose fils. */
  int minor = gm_iso4217_minor(s);
  if (minor != 2) {
    snprintf(err, errlen,
             "currency %s has %d decimal places (ISO 4217), and this market "
             "keeps every amount in hundredths of the currency unit (fen, "
             "cents); price the tender in a currency with 2, such as CNY, "
             "USD or EUR",
             s, minor);
    return -1;
  }
  return 0;
}

int pr_currency_shaped(const char *s) {
  if (!s || strlen(s) != 3) return 0;
  for (int i = 0; i < 3; i++)
    if (s[i] < 'A' || s[i] > 'Z') return 0;
  return 1;
}

/* ---- money ---- */

char *pr_yuan(int64_t fen, char *buf) {
  uint64_t a = fen < 0 ? (uint64_t)0 - (uint64_t)fen : (uint64_t)fen;
  snprintf(buf, 32, "%s%llu.%02llu", fen < 0 ? "-" : "",
           (unsigned long long)(a / 100), (unsigned long long)(a % 100));
  return buf;
}

int pr_parse_yuan(const char *what, const char *text, int64_t max, int64_t *fen,
                  char *err, size_t errlen) {
  int64_t whole = 0, frac = 0;
  int nwhole = 0, nfrac = 0, dot = 0, big = 0;
  char mx[32];
  if (!text || !*text) {
    snprintf(err, errlen, "%s is empty; write yuan like 1200.50", what);
    return -1;
  }
  for (const char *p = text; *p; p++) {
    if (*p == '.' && !dot) {
      dot = 1;
    } else if (*p >= '0' && *p <= '9') {
      if (dot) {
        if (++nfrac <= 2) frac = frac * 10 + (*p - '0');
      } else {
        nwhole++;
        if (!big) whole = whole * 10 + (*p - '0');
        if (whole > max / 100) big = 1;
      }
    } else {
      nwhole = 0;
      break;
    }
  }
  if (nwhole == 0 || (dot && nfrac == 0)) {
    snprintf(err, errlen,
             "%s \"%.40s\" is not an amount of yuan; write digits with at "
             "most two decimals, like 1200.50",
             what, text);
    return -1;
  }
  if (nfrac > 2) {
    snprintf(err, errlen,
             "%s %.40s has more than two decimals; amounts are in yuan to the "
             "fen (0.01)",
             what, text);
    return -1;
  }
  if (nfrac == 1) frac *= 10;
  if (big || whole * 100 + frac > max) {
    snprintf(err, errlen, "%s %.40s is above the largest accepted, %s yuan",
             what, text, pr_yuan(max, mx));
    return -1;
  }
  *fen = whole * 100 + frac;
  return 0;
}

int pr_parse_percent(const char *what, const char *text, int max_bp, int *bp,
                     char *err, size_t errlen) {
  char mx[16];
  size_t n = text ? strlen(text) : 0;
  long v = 0;
  if (n > 2 && strcmp(text + n - 2, "bp") == 0) {
    size_t i = 0;
    for (; i < n - 2 && text[i] >= '0' && text[i] <= '9' && v <= max_bp; i++)
      v = v * 10 + (text[i] - '0');
    if (i == n - 2 && v <= max_bp) {
      *bp = (int)v;
      return 0;
    }
  } else if (n > 1 && text[n - 1] == '%') {
    int dot = 0, nfrac = 0, ok = 1, digits = 0;
    for (size_t i = 0; i < n - 1 && ok; i++) {
      char c = text[i];
      if (c == '.' && !dot) {
        dot = 1;
      } else if (c >= '0' && c <= '9' && nfrac < 2 && v <= 10000) {
        v = v * 10 + (c - '0');
        digits++;
        if (dot) nfrac++;
      } else {
        ok = 0;
      }
    }
    if (ok && digits && !(dot && nfrac == 0)) {
      for (; nfrac < 2; nfrac++) v *= 10;
      if (v <= max_bp) {
        *bp = (int)v;
        return 0;
      }
      snprintf(err, errlen, "%s %.20s is above the largest accepted, %s", what,
               text, pr_percent(max_bp, mx));
      return -1;
    }
  }
  snprintf(err, errlen,
           "%s \"%.20s\" is not a percentage; write it like 10%% or 2.5%% "
           "(at most %s)",
           what, text ? text : "", pr_percent(max_bp, mx));
  return -1;
}

char *pr_percent(int bp, char *buf) {
  snprintf(buf, 16, "%d.%02d%%", bp / 100, bp % 100);
  return buf;
}

int pr_int(const char *s) {
  return (int)pr_clamp(strtoll(s ? s : "", NULL, 10), INT_MIN, INT_MAX);
}

int64_t pr_share(int64_t amount, int64_t bp) {
  return (int64_t)((__int128)amount * bp / 10000);
}

/* ---- dates ---- */

/* Dates: include/greenmarket/date.h, total over any int64 (a time from a
   corrupted record is clamped to 0000-01-01 .. 9999-12-31 local instead of
   overflowing: the fuzzer found INT64_MAX twice). */
int64_t pr_day_of(int64_t ms) {
  return gm_date_day_of(ms, PR_TZ_MS);
}

int64_t pr_day_start(int64_t day) {
  return gm_date_day_start(day, PR_TZ_MS);
}

int pr_parse_date(const char *s, int64_t *day) {
  return gm_date_parse(s, day);
}

char *pr_date(int64_t day, char *buf) {
  gm_date_format(gm_date_clamp(day), buf);
  return buf;
}

char *pr_datetime(int64_t ms, char *buf) {
  char tmp[20];
  gm_date_format_time(ms, PR_TZ_MS, tmp);
  memcpy(buf, tmp, 16); /* "YYYY-MM-DD HH:MM" */
  buf[16] = '\0';
  return buf;
}

char *pr_rfc3339(int64_t ms, char *buf) {
  /* RFC 3339 has 4-digit years: ms is clamped to 1970-01-01 .. 9999-12-31
     local. */
  if (ms < 0) ms = 0;
  if (ms > PR_RFC3339_MAX_MS) ms = PR_RFC3339_MAX_MS;
  char tmp[20];
  gm_date_format_time(ms, PR_TZ_MS, tmp);
  memcpy(buf, tmp, 10);
  buf[10] = 'T';
  memcpy(buf + 11, tmp + 11, 8);
  memcpy(buf + 19, "+08:00", 7);
  return buf;
}

int pr_weekday(int64_t day) {
  return gm_date_weekday(day);
}

int pr_is_working(int64_t day, pr_day_kind_fn kind, void *arg) {
  char k = kind ? kind(arg, day) : 0;
  if (k == 'h') return 0;
  if (k == 'w') return 1;
  int w = pr_weekday(day);
  return w != 0 && w != 6;
}

int64_t pr_working_days_end(int64_t from, int n, int horizon,
                            pr_day_kind_fn kind, void *arg) {
  int count = 0;
  from = gm_date_clamp(from);
  if (horizon < 0) horizon = 0;
  for (int64_t d = from + 1; d <= from + horizon; d++)
    if (pr_is_working(d, kind, arg) && ++count == n)
      return pr_day_start(d + 1) - 1;
  return -1;
}

int64_t pr_days_end(int64_t from, int n) {
  return pr_day_start(gm_date_clamp(from) + n + 1) - 1;
}

/* ---- the catalogue ---- */

const char *const pr_labels[] = {
    /* the national lists (Caiku [2019] 9) and low-carbon certification */
    "energy_saving", "environmental", "low_carbon",
    /* the city's green building materials */
    "gb_structural", "gb_insulation", "gb_doors_windows", "gb_decoration",
    "gb_steel",
    /* and equipment */
    "gb_pump", "gb_cooling_tower", "gb_boiler", "gb_chiller",
    "gb_absorption_chiller", "gb_air_handler", "gb_fan", "gb_transformer",
    NULL};

int pr_label_known(const char *label) {
  for (int i = 0; pr_labels[i]; i++)
    if (label && strcmp(label, pr_labels[i]) == 0) return 1;
  return 0;
}

int pr_label_graded(const char *label) {
  return pr_label_known(label) && strncmp(label, "gb_", 3) == 0;
}

int pr_cert_shard(const char *number) {
  uint32_t h = 2166136261u; /* FNV-1a */
  for (const unsigned char *p = (const unsigned char *)number; *p; p++)
    h = (h ^ *p) * 16777619u;
  return (int)(h % PR_CERT_SHARDS);
}

int pr_check_certificate(const char *number, const char *holder,
                         const char *holder_name, const char *product,
                         const char *model, const char *category,
                         const char *label, int grade, const char *issuer,
                         int64_t from_ms, int64_t to_ms, char *err,
                         size_t errlen) {
  char why[200];
  if (!pr_valid_name(number, 1, 64, 1)) {
    snprintf(err, errlen,
             "certificate number \"%.64s\" is not 1-64 letters, digits and . "
             "_ - /",
             number ? number : "");
    return -1;
  }
  if (gm_uscc_check(holder, holder ? strlen(holder) : 0, why, sizeof why)) {
    snprintf(err, errlen, "holder (unified social credit code): %s", why);
    return -1;
  }
  if (pr_valid_text("holder name", holder_name, 200, 0, err, errlen) ||
      pr_valid_text("product", product, 200, 0, err, errlen) ||
      pr_valid_text("model", model, 100, 0, err, errlen) ||
      pr_valid_text("issuer", issuer, 200, 0, err, errlen))
    return -1;
  if (!product || !*product) {
    snprintf(err, errlen, "product is empty; name the certified product");
    return -1;
  }
  if (!issuer || !*issuer) {
    snprintf(err, errlen, "issuer is empty; name the certification body");
    return -1;
  }
  if (!pr_valid_name(category, 1, 32, 0)) {
    snprintf(err, errlen,
             "category \"%.32s\" is not a category code (1-32 letters, "
             "digits, . _ -)",
             category ? category : "");
    return -1;
  }
  if (!pr_label_known(label)) {
    snprintf(err, errlen,
             "label \"%.40s\" is not a label type; use energy_saving, "
             "environmental, low_carbon or a gb_* green building label "
             "(procurement.md)",
             label ? label : "");
    return -1;
  }
  if (pr_label_graded(label) ? (grade < 1 || grade > 3) : grade != 0) {
    snprintf(err, errlen,
             pr_label_graded(label)
                 ? "grade %d: a %s label is graded 1-3 stars"
                 : "grade %d: a %s label has no grade; leave it 0 or empty",
             grade, label);
    return -1;
  }
  if (from_ms <= 0 || to_ms < from_ms) {
    snprintf(err, errlen,
             "valid to is before valid from; a certificate is valid from one "
             "date to a later one");
    return -1;
  }
  return 0;
}

int pr_check_category(const char *code, const char *name, int policy,
                      int deduction_bp, const char *labels, int min_grade,
                      char *err, size_t errlen) {
  if (!pr_valid_name(code, 1, 32, 0)) {
    char shown[32 + 24];
    snprintf(err, errlen, "code \"%s\" is not 1-32 letters, digits and . _ -",
             gm_text_shown(code, 32, shown, sizeof shown));
    return -1;
  }
  if (pr_valid_text("name", name, 200, 0, err, errlen)) return -1;
  if (!name || !*name) {
    snprintf(err, errlen, "name is empty; give the category's name");
    return -1;
  }
  if (policy < 0 || policy > 2) {
    snprintf(err, errlen, "policy must be none, priority or mandatory");
    return -1;
  }
  if (policy == 1 ? (deduction_bp < 1 || deduction_bp > PR_GREEN_MAX_BP)
                  : deduction_bp != 0) {
    snprintf(err, errlen,
             policy == 1 ? "deduction must be 0.01%%-20%% for a priority "
                           "category (typical: 1%%-5%%)"
                         : "deduction applies to priority categories only; "
                           "leave it empty");
    return -1;
  }
  if (min_grade < 0 || min_grade > 3) {
    snprintf(err, errlen, "minimum grade must be 0 (any) or 1-3 stars");
    return -1;
  }
  /* labels: a comma list of known label types, at least one. */
  char buf[1024];
  snprintf(buf, sizeof buf, "%s", labels ? labels : "");
  int n = 0, graded = 0;
  char *save = NULL;
  for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
    graded |= pr_label_graded(t);
    if (!pr_label_known(t)) {
      snprintf(err, errlen,
               "label \"%.40s\" is not a label type; use energy_saving, "
               "environmental, low_carbon or a gb_* green building label",
               t);
      return -1;
    }
    n++;
  }
  if (n == 0 && policy != 0) {
    snprintf(err, errlen,
             "labels is empty; a priority or mandatory category names the "
             "label types it accepts");
    return -1;
  }
  if (min_grade > 0 && !graded) {
    snprintf(err, errlen,
             "minimum grade %d: none of the labels %s carries a grade (only "
             "gb_* green building labels are graded in stars), so no "
             "certificate could meet it; leave it 0 or accept a gb_* label",
             min_grade, n ? labels : "(none)");
    return -1;
  }
  return 0;
}

/* ---- the sealed bid ---- */

const char *pr_sme_name(int sme) {
  static const char *const names[] = {"none", "medium", "small", "micro"};
  return sme >= 0 && sme <= 3 ? names[sme] : "none";
}

static int pr__line_cmp(const void *a, const void *b) {
  const pr_line *x = *(const pr_line *const *)a,
                *y = *(const pr_line *const *)b;
  return strcmp(x->item, y->item);
}

#define PR_BID_MAGIC "greenmarket-procurement-bid/1\n"

long pr_bid_text(const pr_bid *b, char *out, size_t outlen) {
  const pr_line *sorted[PR_MAX_ITEMS];
  size_t n = b->nlines > PR_MAX_ITEMS ? PR_MAX_ITEMS : b->nlines, at = 0;
  for (size_t i = 0; i < n; i++) sorted[i] = &b->lines[i];
  qsort(sorted, n, sizeof *sorted, pr__line_cmp);
  int w = snprintf(out, outlen,
                   PR_BID_MAGIC
                   "tender=%s\nsupplier=%s\nsalt=%s\ncurrency=%s\n"
                   "sme=%s\n",
                   b->tender, b->supplier, b->salt, b->currency,
                   pr_sme_name(b->sme));
  if (w < 0 || (size_t)w >= outlen) return -1;
  at = (size_t)w;
  for (size_t i = 0; i < n; i++) {
    w = snprintf(out + at, outlen - at, "line=%s,%lld,%s\n", sorted[i]->item,
                 (long long)sorted[i]->unit_price, sorted[i]->cert);
    if (w < 0 || (size_t)w >= outlen - at) return -1;
    at += (size_t)w;
  }
  return (long)at;
}

size_t pr_bid_text_max(const pr_bid *b) {
  size_t n = strlen(PR_BID_MAGIC
                    "tender=\nsupplier=\nsalt=\ncurrency=\n"
                    "sme=medium\n") +
             strlen(b->tender) + strlen(b->supplier) + PR_SALT_HEX +
             strlen(b->currency);
  for (size_t i = 0; i < b->nlines && i < PR_MAX_ITEMS; i++)
    /* PR_MAX_AMOUNT has 16 digits; a certificate number at most 64 */
    n += strlen("line=,,\n") + strlen(b->lines[i].item) + 16 + 64;
  return n;
}

/* Takes "<key>=<value>\n" at *p (value into out, at most cap - 1 bytes). */
static int pr__field(const char **p, const char *end, const char *key,
                     char *out, size_t cap) {
  size_t k = strlen(key);
  if ((size_t)(end - *p) < k + 1 || memcmp(*p, key, k) || (*p)[k] != '=')
    return -1;
  const char *v = *p + k + 1, *nl = memchr(v, '\n', (size_t)(end - v));
  if (!nl || (size_t)(nl - v) >= cap) return -1;
  memcpy(out, v, (size_t)(nl - v));
  out[nl - v] = '\0';
  *p = nl + 1;
  return 0;
}

int pr_bid_parse(const char *text, size_t len, pr_bid *b, char *err,
                 size_t errlen) {
  const char *p = text, *end = text + len;
  char sme[16], line[160];
  memset(b, 0, sizeof *b);
  if (len < sizeof PR_BID_MAGIC - 1 ||
      memcmp(p, PR_BID_MAGIC, sizeof PR_BID_MAGIC - 1)) {
    snprintf(err, errlen, "not a sealed bid text (no %.29s header)",
             PR_BID_MAGIC);
    return -1;
  }
  p += sizeof PR_BID_MAGIC - 1;
  if (pr__field(&p, end, "tender", b->tender, sizeof b->tender) ||
      pr__field(&p, end, "supplier", b->supplier, sizeof b->supplier) ||
      pr__field(&p, end, "salt", b->salt, sizeof b->salt) ||
      pr__field(&p, end, "currency", b->currency, sizeof b->currency) ||
      pr__field(&p, end, "sme", sme, sizeof sme)) {
    snprintf(err, errlen,
             "the header is not tender=, supplier=, salt=, currency=, sme= "
             "in that order");
    return -1;
  }
  b->sme = -1;
  for (int i = 0; i < 4; i++)
    if (strcmp(sme, pr_sme_name(i)) == 0) b->sme = i;
  if (b->sme < 0 || strlen(b->salt) != PR_SALT_HEX ||
      strspn(b->salt, "0123456789abcdef") != PR_SALT_HEX) {
    snprintf(err, errlen, "sme or salt is malformed");
    return -1;
  }
  while (p < end) {
    if (b->nlines == PR_MAX_ITEMS) {
      snprintf(err, errlen, "more than %d lines", PR_MAX_ITEMS);
      return -1;
    }
    pr_line *l = &b->lines[b->nlines];
    char *c1, *c2, *num_end;
    if (pr__field(&p, end, "line", line, sizeof line) ||
        !(c1 = strchr(line, ',')) || !(c2 = strchr(c1 + 1, ','))) {
      snprintf(err, errlen, "line %zu is not line=<item>,<fen>,<certificate>",
               b->nlines + 1);
      return -1;
    }
    *c1 = *c2 = '\0';
    long long price = strtoll(c1 + 1, &num_end, 10);
    if ((size_t)(c1 - line) >= sizeof l->item ||
        strlen(c2 + 1) >= sizeof l->cert || *num_end || c1[1] < '1' ||
        c1[1] > '9' || price < 1 || price > PR_MAX_AMOUNT) {
      snprintf(err, errlen,
               "line %zu has a malformed item, price or "
               "certificate",
               b->nlines + 1);
      return -1;
    }
    memcpy(l->item, line, (size_t)(c1 - line) + 1);
    memcpy(l->cert, c2 + 1, strlen(c2 + 1) + 1);
    l->unit_price = price;
    if (!pr_valid_name(l->item, 1, 32, 0) ||
        (l->cert[0] && !pr_valid_name(l->cert, 1, 64, 1)) ||
        (b->nlines && strcmp(b->lines[b->nlines - 1].item, l->item) >= 0)) {
      snprintf(err, errlen,
               "line %zu: item or certificate malformed, or items not in "
               "ascending order",
               b->nlines + 1);
      return -1;
    }
    b->nlines++;
  }
  if (!pr_valid_name(b->tender, 3, 48, 0) ||
      !pr_valid_name(b->supplier, 1, 64, 0) ||
      !pr_currency_shaped(b->currency)) {
    snprintf(err, errlen, "tender, supplier or currency is malformed");
    return -1;
  }
  return 0;
}

/* ---- evaluation ---- */

/* Appends to a bounded buffer; notes an overflow in *full. */
typedef struct pr__buf {
  char *s;
  size_t cap, len;
  int full;
} pr__buf;

static void pr__add(pr__buf *b, const char *sep, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void pr__add(pr__buf *b, const char *sep, const char *fmt, ...) {
  if (b->full) return;
  if (b->len && sep) {
    int w = snprintf(b->s + b->len, b->cap - b->len, "%s", sep);
    if (w < 0 || (size_t)w >= b->cap - b->len) {
      b->full = 1;
      return;
    }
    b->len += (size_t)w;
  }
  va_list ap;
  va_start(ap, fmt);
  int w = vsnprintf(b->s + b->len, b->cap - b->len, fmt, ap);
  va_end(ap);
  if (w < 0 || (size_t)w >= b->cap - b->len) {
    b->full = 1;
    b->s[b->len] = '\0';
    return;
  }
  b->len += (size_t)w;
}

static int pr__in_list(const char *list, const char *name) {
  size_t n = strlen(name);
  for (const char *p = list; p && *p;) {
    const char *c = strchr(p, ',');
    size_t k = c ? (size_t)(c - p) : strlen(p);
    if (k == n && memcmp(p, name, n) == 0) return 1;
    if (!c) break;
    p = c + 1;
  }
  return 0;
}

static const pr_line *pr__find_line(const pr_bid *b, const char *item) {
  size_t lo = 0, hi = b->nlines;
  while (lo < hi) { /* lines are sorted (pr_bid_parse checks it) */
    size_t mid = (lo + hi) / 2;
    int c = strcmp(b->lines[mid].item, item);
    if (c == 0) return &b->lines[mid];
    if (c < 0)
      lo = mid + 1;
    else
      hi = mid;
  }
  return NULL;
}

/* Why certificate `c` earns nothing for `item` of bidder `uscc` at `at`, or
   NULL when it is valid for it. */
static const char *pr__cert_problem(const pr_cert_state *c,
                                    const pr_item_rule *item, const char *uscc,
                                    int64_t at, char *buf, size_t len) {
  char d[20];
  if (!c || !c->found) return "not in the register";
  if (c->status == 3) {
    snprintf(buf, len, "revoked on %s", pr_datetime(c->status_ms, d));
    return buf;
  }
  if (c->status == 2) {
    snprintf(buf, len, "suspended on %s", pr_datetime(c->status_ms, d));
    return buf;
  }
  if (c->status != 1) return "not valid";
  if (strcmp(c->holder, uscc) != 0) return "held by another supplier";
  if (strcmp(c->category, item->category) != 0) {
    snprintf(buf, len, "for category %s, not %s", c->category, item->category);
    return buf;
  }
  if (!pr__in_list(item->labels, c->label)) {
    snprintf(buf, len, "label %s is not one the category accepts (%s)",
             c->label, item->labels);
    return buf;
  }
  if (pr_label_graded(c->label) && c->grade < item->min_grade) {
    snprintf(buf, len, "%d star(s), below the %d the category asks", c->grade,
             item->min_grade);
    return buf;
  }
  if (at < c->from_ms) {
    snprintf(buf, len, "not valid before %s", pr_datetime(c->from_ms, d));
    return buf;
  }
  if (at > c->to_ms) {
    snprintf(buf, len, "expired on %s", pr_datetime(c->to_ms, d));
    return buf;
  }
  return NULL;
}

int pr_evaluate(const pr_tender_rule *t, const pr_bid *b, const char *uscc,
                int registered_sme, int64_t lodged, int64_t at, pr_cert_fn cert,
                void *arg, pr_eval *out, char *checks, size_t checks_len,
                char *reasons, size_t reasons_len) {
  pr__buf ck = {checks, checks_len, 0, 0}, rs = {reasons, reasons_len, 0, 0};
  char y1[32], y2[32], y3[32], y4[32], pc[16], why[160];
  int overflow = 0;
  memset(out, 0, sizeof *out);
  checks[0] = reasons[0] = '\0';

  if (!uscc || !uscc[0]) {
    pr__add(&ck, "\n",
            "the bidder is not in the party register (gm procurement "
            "register): disqualified");
    pr__add(&rs, "; ", "not in the party register");
    uscc = "";
  }
  if (strcmp(b->currency, t->currency) != 0) {
    pr__add(&ck, "\n", "currency %s: the tender is in %s: disqualified",
            b->currency, t->currency);
    pr__add(&rs, "; ", "bid in %s, the tender is in %s", b->currency,
            t->currency);
  } else {
    pr__add(&ck, "\n", "currency %s: ok", b->currency);
  }
  /* Amounts in the tender's money: yuan, or the currency's code. */
  const char *u = strcmp(t->currency, "CNY") == 0 ? "yuan" : t->currency;
  for (size_t i = 0; i < b->nlines; i++) {
    size_t k = 0;
    while (k < t->nitems && strcmp(t->items[k].id, b->lines[i].item)) k++;
    if (k == t->nitems) {
      pr__add(&ck, "\n", "item %s: not in the tender: disqualified",
              b->lines[i].item);
      pr__add(&rs, "; ", "item %s is not in the tender", b->lines[i].item);
    }
  }
  for (size_t k = 0; k < t->nitems; k++) {
    const pr_item_rule *it = &t->items[k];
    const pr_line *l = pr__find_line(b, it->id);
    if (!l) {
      pr__add(&ck, "\n", "item %s: no price: disqualified", it->id);
      pr__add(&rs, "; ", "missing item %s", it->id);
      continue;
    }
    int64_t total = 0;
    if (it->quantity < 1 || it->quantity > PR_MAX_QUANTITY) {
      /* Checked at publishing: only a damaged record gets here. */
      overflow = 1;
      pr__add(&ck, "\n",
              "item %s: the tender's quantity %lld is not 1-%lld: "
              "disqualified",
              it->id, (long long)it->quantity, (long long)PR_MAX_QUANTITY);
      pr__add(&rs, "; ", "item %s has no valid quantity", it->id);
      continue;
    }
    if (l->unit_price > PR_MAX_AMOUNT / it->quantity) {
      overflow = 1;
      pr__add(&ck, "\n",
              "item %s: %lld x %s %s is beyond any amount: "
              "disqualified",
              it->id, (long long)it->quantity, pr_yuan(l->unit_price, y1), u);
      pr__add(&rs, "; ", "item %s is priced beyond any amount", it->id);
      continue;
    }
    total = l->unit_price * it->quantity;
    if (!overflow && out->bid_price > PR_MAX_AMOUNT - total) {
      overflow = 1;
      pr__add(&ck, "\n", "item %s: the bid price passes %s %s: disqualified",
              it->id, pr_yuan(PR_MAX_AMOUNT, y1), u);
      pr__add(&rs, "; ", "the bid price is beyond any amount");
    }
    if (!overflow) out->bid_price += total;
    pr__add(&ck, "\n", "item %s: %lld x %s = %s %s", it->id,
            (long long)it->quantity, pr_yuan(l->unit_price, y1),
            pr_yuan(total, y2), u);
    if (it->budget > 0 && total > it->budget) {
      pr__add(&ck, "\n", "item %s: over its budget %s %s: disqualified", it->id,
              pr_yuan(it->budget, y1), u);
      pr__add(&rs, "; ", "item %s over its budget", it->id);
    }
    const char *problem = "none cited";
    if (l->cert[0]) {
      const pr_cert_state *c = cert ? cert(arg, l->cert) : NULL;
      problem = pr__cert_problem(c, it, uscc, at, why, sizeof why);
    }
    if (it->policy == 2) {
      if (problem) {
        pr__add(&ck, "\n",
                "item %s: mandatory green purchase (%s); certificate %s%s%s: "
                "disqualified",
                it->id, it->category, l->cert[0] ? l->cert : "-",
                l->cert[0] ? " " : ": ", problem);
        pr__add(&rs, "; ", "item %s is mandatory and has no valid certificate",
                it->id);
      } else {
        pr__add(&ck, "\n",
                "item %s: mandatory green purchase (%s); certificate %s "
                "valid: ok",
                it->id, it->category, l->cert);
        out->green_items++;
      }
    } else if (it->policy == 1) {
      /* A deduction is at most 20% of the item's price (a damaged
         record's bp is clamped to what the rules allow): the sum stays
         within the bid price. */
      int bp = (int)pr_clamp(it->deduction_bp, 0, PR_GREEN_MAX_BP);
      if (problem) {
        pr__add(&ck, "\n",
                "item %s: priority (%s, %s); certificate %s%s%s: no "
                "deduction",
                it->id, it->category, pr_percent(bp, pc),
                l->cert[0] ? l->cert : "-", l->cert[0] ? " " : ": ", problem);
      } else if (!t->green) {
        pr__add(&ck, "\n",
                "item %s: priority (%s); certificate %s valid; the tender "
                "applies no green preference: no deduction",
                it->id, it->category, l->cert);
        out->green_items++;
      } else {
        int64_t g = pr_share(total, bp);
        out->green += g;
        out->green_items++;
        pr__add(&ck, "\n",
                "item %s: priority (%s); certificate %s valid: green "
                "deduction %s of %s = %s %s",
                it->id, it->category, l->cert, pr_percent(bp, pc),
                pr_yuan(total, y1), pr_yuan(g, y2), u);
      }
    } else if (l->cert[0]) {
      pr__add(&ck, "\n",
              "item %s: category %s has no green policy; "
              "certificate %s not needed",
              it->id, it->category, l->cert);
    }
  }
  if (overflow) {
    out->bid_price = out->green = 0;
    out->no_price = 1;
  } else if (t->budget > 0 && out->bid_price > t->budget) {
    pr__add(&ck, "\n",
            "bid price %s %s over the budget %s %s: "
            "disqualified",
            pr_yuan(out->bid_price, y1), u, pr_yuan(t->budget, y2), u);
    pr__add(&rs, "; ", "over the budget");
  } else {
    pr__add(&ck, "\n", "bid price %s %s within the budget %s %s",
            pr_yuan(out->bid_price, y1), u, pr_yuan(t->budget, y2), u);
  }
  if (lodged < t->security) {
    pr__add(&ck, "\n", "bid security: %s of %s %s lodged: disqualified",
            pr_yuan(lodged, y1), pr_yuan(t->security, y2), u);
    pr__add(&rs, "; ", "bid security not lodged");
  } else if (t->security > 0) {
    pr__add(&ck, "\n", "bid security: %s of %s %s lodged: ok",
            pr_yuan(lodged, y1), pr_yuan(t->security, y2), u);
  }
  int declared = b->sme;
  if (!t->sme) {
    pr__add(&ck, "\n", "SME: the tender applies no SME preference");
  } else if (t->kind == 2) {
    pr__add(&ck, "\n", "SME: no deduction for works (goods and services only)");
  } else if (declared < 2) {
    pr__add(&ck, "\n", "SME: declared %s: no deduction (small and micro only)",
            pr_sme_name(declared));
  } else if (registered_sme != declared) {
    pr__add(&ck, "\n", "SME: declared %s but registered %s: no deduction",
            pr_sme_name(declared), pr_sme_name(registered_sme));
  } else if (!overflow) {
    int bp = t->sme_bp ? t->sme_bp : PR_SME_DEFAULT_BP;
    bp = (int)pr_clamp(bp, 0, 10000); /* damaged */
    out->sme = pr_share(out->bid_price, bp);
    out->sme_class = declared;
    pr__add(&ck, "\n", "SME: %s enterprise: deduction %s of %s = %s %s",
            pr_sme_name(declared), pr_percent(bp, pc),
            pr_yuan(out->bid_price, y1), pr_yuan(out->sme, y2), u);
  }
  out->evaluated = out->bid_price - out->green - out->sme;
  pr__add(&ck, "\n", "evaluated price %s - %s - %s = %s %s",
          pr_yuan(out->bid_price, y1), pr_yuan(out->green, y2),
          pr_yuan(out->sme, y3), pr_yuan(out->evaluated, y4), u);
  out->valid = rs.len == 0 && !rs.full;
  return ck.full || rs.full ? -1 : 0;
}

int32_t pr_price_score(int64_t lowest, int64_t evaluated, int32_t weight_bp) {
  if (evaluated <= 0 || lowest <= 0 || weight_bp <= 0) return 0;
  /* lowest <= evaluated for every valid bid: at most weight_bp. */
  __int128 s = (__int128)lowest * weight_bp / evaluated;
  return s > weight_bp ? weight_bp : (int32_t)s;
}

int32_t pr_mean_score(const int32_t *scores, size_t n) {
  int64_t sum = 0;
  if (n == 0) return 0;
  for (size_t i = 0; i < n; i++) sum += scores[i];
  return (int32_t)((sum * 2 + (int64_t)n) / (2 * (int64_t)n));
}
