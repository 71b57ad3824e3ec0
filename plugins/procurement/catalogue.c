/*
 * The catalogue of certified green products (categories with their policy,
 * certificates of green labels in 16 shards), the working-day calendar, and
 * the register of parties (credit code, name, SME size).  A batch is
 * checked whole before its first write, then written one script call per
 * shard it touches, so a refused batch leaves nothing behind.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <greenmarket/date.h>
#include <greenmarket/uscc.h>

#include "procurement.h"

#define PR_CATEGORY_BATCH PR_RECORDS_PER_RUN /* one script run: all or none */
#define PR_CERT_BATCH 5000
#define PR_CERTS_PER_RUN 100

static int pr__str_cmp(const void *a, const void *b) {
  return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* A category from its record "name\tpolicy\tbp\tlabels\tmin\tupd". */
static Gm__Procurement__Category *pr__category(gm_call *call, const char *code,
                                               const char *rec) {
  Gm__Procurement__Category *c = host->alloc(call, sizeof *c);
  gm__procurement__category__init(c);
  char *copy = host->sprintf(call, "%s", rec), *f[6] = {0};
  size_t nf = 0;
  for (char *p = copy, *tok; nf < 6 && (tok = strsep(&p, "\t"));) f[nf++] = tok;
  c->code = (char *)code;
  if (nf < 6) return c;
  c->name = f[0];
  c->policy = (Gm__Procurement__Policy)pr_int(f[1]);
  c->deduction_bp = pr_int(f[2]);
  c->min_grade = pr_int(f[4]);
  c->updated_ms = strtoll(f[5], NULL, 10);
  size_t nl = 1;
  for (char *p = f[3]; *p; p++) nl += *p == ',';
  c->labels = host->alloc(call, nl * sizeof *c->labels);
  char *save = NULL;
  for (char *t = strtok_r(f[3], ",", &save); t; t = strtok_r(NULL, ",", &save))
    c->labels[c->n_labels++] = t;
  return c;
}

static char *pr__labels(gm_call *call, char *const *labels, size_t n) {
  size_t len = 1;
  for (size_t i = 0; i < n; i++) len += strlen(labels[i]) + 1;
  char *s = host->alloc(call, len), *p = s;
  for (size_t i = 0; i < n; i++)
    p += sprintf(p, "%s%s", i ? "," : "", labels[i]);
  return s;
}

gm_status pr__category_put(gm_call *call, const ProtobufCMessage *req,
                           ProtobufCMessage **reply) {
  const Gm__Procurement__CategoryBatch *in = (const void *)req;
  char err[300];
  if (in->n_categories == 0 || in->n_categories > PR_CATEGORY_BATCH)
    return host->fail(call, GM_INVALID_ARGUMENT,
                      "send 1-%d categories per call", PR_CATEGORY_BATCH);
  size_t nargs = 1 + in->n_categories;
  const char **args = host->alloc(call, nargs * sizeof *args);
  args[0] = "catput";
  for (size_t i = 0; i < in->n_categories; i++) {
    const Gm__Procurement__Category *c = in->categories[i];
    const char *labels = pr__labels(call, c->labels, c->n_labels);
    if (pr_check_category(c->code, c->name, (int)c->policy, c->deduction_bp,
                          labels, c->min_grade, err, sizeof err) != 0)
      return host->fail(call, GM_INVALID_ARGUMENT, "category %zu (%.32s): %s",
                        i + 1, c->code, err);
    for (size_t j = 0; j < i; j++)
      if (strcmp(in->categories[j]->code, c->code) == 0)
        return host->fail(call, GM_INVALID_ARGUMENT,
                          "category %s is in the batch twice", c->code);
    const char *f[] = {c->code,
                       c->name,
                       pr__num(call, c->policy),
                       pr__num(call, c->deduction_bp),
                       labels,
                       pr__num(call, c->min_grade)};
    args[1 + i] = pr__pack(call, 6, f);
  }
  const gm_value *v;
  gm_status st = pr__run(call, "catalogue", "cat", nargs, args, &v);
  if (st != GM_OK) return st;
  Gm__Procurement__ImportReply *out = host->alloc(call, sizeof *out);
  gm__procurement__import_reply__init(out);
  out->stored = pr__i32(v, 0);
  *reply = &out->base;
  return GM_OK;
}

gm_status pr__category_get(gm_call *call, const ProtobufCMessage *req,
                           ProtobufCMessage **reply) {
  const Gm__Procurement__CategoryRequest *in = (const void *)req;
  if (!pr_valid_name(in->code, 1, 32, 0))
    return host->fail(call, GM_INVALID_ARGUMENT,
                      "code \"%.32s\" is not a category code", in->code);
  const char *args[] = {"catget", in->code};
  const gm_value *v;
  gm_status st = pr__run(call, "catalogue", "cat", 2, args, &v);
  if (st != GM_OK) return st;
  if (!pr__s(v, 0)[0])
    return host->fail(call, GM_NOT_FOUND,
                      "no category %s in the catalogue; gm procurement "
                      "categories lists them",
                      in->code);
  *reply = &pr__category(call, in->code, pr__s(v, 0))->base;
  return GM_OK;
}

static int pr__category_cmp(const void *a, const void *b) {
  const Gm__Procurement__Category *x = *(Gm__Procurement__Category *const *)a;
  const Gm__Procurement__Category *y = *(Gm__Procurement__Category *const *)b;
  return strcmp(x->code, y->code);
}

gm_status pr__category_list(gm_call *call, const ProtobufCMessage *req,
                            ProtobufCMessage **reply) {
  (void)req;
  const char *args[] = {"catlist"};
  const gm_value *v;
  gm_status st = pr__run(call, "catalogue", "cat", 1, args, &v);
  if (st != GM_OK) return st;
  Gm__Procurement__CategoryList *out = host->alloc(call, sizeof *out);
  gm__procurement__category_list__init(out);
  out->categories = host->alloc(call, (v->n / 2 + 1) * sizeof *out->categories);
  for (size_t i = 0; i + 1 < v->n; i += 2)
    out->categories[out->n_categories++] =
        pr__category(call, pr__s(v, i), pr__s(v, i + 1));
  qsort(out->categories, out->n_categories, sizeof *out->categories,
        pr__category_cmp);
  *reply = &out->base;
  return GM_OK;
}

/* ---- certificates ---- */

/* A Certificate from a certget record: number holder hname product model
   cat label grade issuer from to st why stt (catalogue.lua). */
static Gm__Procurement__Certificate *pr__certificate(gm_call *call,
                                                     const gm_value *r) {
  Gm__Procurement__Certificate *c = host->alloc(call, sizeof *c);
  gm__procurement__certificate__init(c);
  c->number = (char *)pr__s(r, 0);
  c->holder = (char *)pr__s(r, 1);
  c->holder_name = (char *)pr__s(r, 2);
  c->product = (char *)pr__s(r, 3);
  c->model = (char *)pr__s(r, 4);
  c->category = (char *)pr__s(r, 5);
  c->label = (char *)pr__s(r, 6);
  c->grade = pr__i32(r, 7);
  c->issuer = (char *)pr__s(r, 8);
  c->valid_from_ms = pr__i(r, 9);
  c->valid_to_ms = pr__i(r, 10);
  c->status = (Gm__Procurement__CertStatus)pr__i32(r, 11);
  c->status_reason = (char *)pr__s(r, 12);
  c->status_ms = pr__i(r, 13);
  return c;
}

gm_status pr__certificate_put(gm_call *call, const ProtobufCMessage *req,
                              ProtobufCMessage **reply) {
  const Gm__Procurement__CertificateBatch *in = (const void *)req;
  char err[300];
  size_t n = in->n_certificates;
  gm_status st;
  if (n == 0 || n > PR_CERT_BATCH)
    return host->fail(call, GM_INVALID_ARGUMENT,
                      "send 1-%d certificates per call", PR_CERT_BATCH);
  /* Every certificate checked, and every category it names read, before
     the first write. */
  const char **codes = host->alloc(call, (n + 1) * sizeof *codes);
  size_t nc = 0;
  codes[nc++] = "catget";
  int *shard = host->alloc(call, n * sizeof *shard);
  for (size_t i = 0; i < n; i++) {
    const Gm__Procurement__Certificate *c = in->certificates[i];
    if (pr_check_certificate(c->number, c->holder, c->holder_name, c->product,
                             c->model, c->category, c->label, c->grade,
                             c->issuer, c->valid_from_ms, c->valid_to_ms, err,
                             sizeof err) != 0)
      return host->fail(call, GM_INVALID_ARGUMENT,
                        "certificate %zu (%.64s): %s", i + 1, c->number, err);
    if (c->status != GM__PROCUREMENT__CERT_STATUS__CERT_STATUS_UNSPECIFIED &&
        c->status != GM__PROCUREMENT__CERT_STATUS__CERT_VALID)
      return host->fail(call, GM_INVALID_ARGUMENT,
                        "certificate %s: an import adds valid certificates; "
                        "suspend or revoke with gm procurement suspend|revoke "
                        "(certificate.status)",
                        c->number);
    shard[i] = pr_cert_shard(c->number);
    int seen = 0;
    for (size_t k = 1; k < nc && !seen; k++)
      seen = !strcmp(codes[k], c->category);
    if (!seen) codes[nc++] = c->category;
  }
  /* Duplicates: sort the numbers (a copy) and compare neighbours. */
  const char **nums = host->alloc(call, n * sizeof *nums);
  for (size_t i = 0; i < n; i++) nums[i] = in->certificates[i]->number;
  qsort(nums, n, sizeof *nums, pr__str_cmp);
  for (size_t i = 1; i < n; i++)
    if (strcmp(nums[i - 1], nums[i]) == 0)
      return host->fail(call, GM_INVALID_ARGUMENT,
                        "certificate %s is in the batch twice", nums[i]);
  const gm_value *v;
  if ((st = pr__run(call, "catalogue", "cat", nc, codes, &v)) != GM_OK)
    return st;
  for (size_t k = 1; k < nc; k++)
    if (!pr__s(v, k - 1)[0])
      return host->fail(call, GM_FAILED_PRECONDITION,
                        "category %s is not in the catalogue; import the "
                        "categories first",
                        codes[k]);
  /* One run per shard and PR_CERTS_PER_RUN certificates (each written
     and emitted with its 14 fields: a few ms of Redis per run): each only
     writes, so once the checks above passed the batch goes in whole (a
     retry with the same key finishes one cut short). */
  const char **args = host->alloc(call, (1 + PR_CERTS_PER_RUN) * sizeof *args);
  args[0] = "certput";
  for (int s = 0; s < PR_CERT_SHARDS; s++) {
    const char *tag = host->sprintf(call, "crt:%02d", s);
    size_t a = 1;
    for (size_t i = 0; i <= n; i++) {
      if (a > 1 && (i == n || a == 1 + PR_CERTS_PER_RUN)) {
        if ((st = pr__run(call, "catalogue", tag, a, args, &v)) != GM_OK)
          return st;
        a = 1;
      }
      if (i == n || shard[i] != s) continue;
      const Gm__Procurement__Certificate *c = in->certificates[i];
      const char *f[] = {c->number,
                         c->holder,
                         c->holder_name,
                         c->product,
                         c->model,
                         c->category,
                         c->label,
                         pr__num(call, c->grade),
                         c->issuer,
                         pr__num(call, c->valid_from_ms),
                         pr__num(call, c->valid_to_ms)};
      args[a++] = pr__pack(call, 11, f);
    }
  }
  Gm__Procurement__ImportReply *out = host->alloc(call, sizeof *out);
  gm__procurement__import_reply__init(out);
  out->stored = (int32_t)n;
  *reply = &out->base;
  return GM_OK;
}

gm_status pr__certificate_get(gm_call *call, const ProtobufCMessage *req,
                              ProtobufCMessage **reply) {
  const Gm__Procurement__CertificateRequest *in = (const void *)req;
  if (!pr_valid_name(in->number, 1, 64, 1))
    return host->fail(call, GM_INVALID_ARGUMENT,
                      "\"%.64s\" is not a certificate number", in->number);
  const char *args[] = {"certget", in->number};
  const char *tag = host->sprintf(call, "crt:%02d", pr_cert_shard(in->number));
  const gm_value *v;
  gm_status st = pr__run(call, "catalogue", tag, 2, args, &v);
  if (st != GM_OK) return st;
  if (pr__item(v, 0)->type != GM_VALUE_ARRAY)
    return host->fail(call, GM_NOT_FOUND, "no certificate %s in the register",
                      in->number);
  *reply = &pr__certificate(call, pr__item(v, 0))->base;
  return GM_OK;
}

gm_status pr__certificate_status(gm_call *call, const ProtobufCMessage *req,
                                 ProtobufCMessage **reply) {
  const Gm__Procurement__CertificateStatusRequest *in = (const void *)req;
  gm_status st;
  if (!pr_valid_name(in->number, 1, 64, 1))
    return host->fail(call, GM_INVALID_ARGUMENT,
                      "\"%.64s\" is not a certificate number", in->number);
  if (in->status < GM__PROCUREMENT__CERT_STATUS__CERT_VALID ||
      in->status > GM__PROCUREMENT__CERT_STATUS__CERT_REVOKED)
    return host->fail(call, GM_INVALID_ARGUMENT,
                      "status must be CERT_SUSPENDED, CERT_REVOKED, or "
                      "CERT_VALID to reinstate a suspended certificate");
  if ((st = pr__text(call, "reason", in->reason, 500, 0)) != GM_OK) return st;
  if (in->status != GM__PROCUREMENT__CERT_STATUS__CERT_VALID && !in->reason[0])
    return host->fail(call, GM_INVALID_ARGUMENT,
                      "reason is empty; a suspension or revocation is "
                      "recorded with its reason");
  const char *args[] = {"certstatus", in->number, pr__num(call, in->status),
                        in->reason};
  const char *tag = host->sprintf(call, "crt:%02d", pr_cert_shard(in->number));
  const gm_value *v;
  if ((st = pr__run(call, "catalogue", tag, 4, args, &v)) != GM_OK) return st;
  Gm__Procurement__Certificate *c = pr__certificate(call, v);
  Gm__Procurement__CertificateEvent ev =
      GM__PROCUREMENT__CERTIFICATE_EVENT__INIT;
  ev.number = c->number;
  ev.status = c->status;
  ev.reason = c->status_reason;
  ev.holder = c->holder;
  pr__tell(call, GM_AUDIENCE_PUBLIC, NULL, "certificate", &ev.base);
  *reply = &c->base;
  return GM_OK;
}

/* Adds the states of a certget reply for numbers args[1..m). */
static void pr__certs_add(pr__certs *c, const char *const *args, size_t m,
                          const gm_value *v) {
  for (size_t k = 1; k < m; k++) {
    const gm_value *r = pr__item(v, k - 1);
    pr_cert_state *x = &c->states[c->n];
    c->numbers[c->n++] = args[k];
    memset(x, 0, sizeof *x);
    if (r->type != GM_VALUE_ARRAY) continue;
    x->found = 1;
    x->holder = pr__s(r, 1);
    x->category = pr__s(r, 5);
    x->label = pr__s(r, 6);
    x->grade = pr__i32(r, 7);
    x->from_ms = pr__i(r, 9);
    x->to_ms = pr__i(r, 10);
    x->status = pr__i32(r, 11);
    x->status_ms = pr__i(r, 13);
  }
}

gm_status pr__certs_read(gm_call *call, const char *const *numbers, size_t n,
                         pr__certs *c) {
  const char **all = host->alloc(call, (n + 1) * sizeof *all);
  const char **args =
      host->alloc(call, (1 + PR_RECORDS_PER_RUN) * sizeof *args);
  c->n = 0;
  c->cap = n;
  c->numbers = host->alloc(call, (n + 1) * sizeof *c->numbers);
  c->states = host->alloc(call, (n + 1) * sizeof *c->states);
  args[0] = "certget";
  for (int s = 0; s < PR_CERT_SHARDS; s++) {
    size_t total = 0;
    for (size_t i = 0; i < n; i++) {
      if (pr_cert_shard(numbers[i]) != s) continue;
      int seen = 0;
      for (size_t k = 0; k < total && !seen; k++)
        seen = !strcmp(all[k], numbers[i]);
      if (!seen) all[total++] = numbers[i];
    }
    /* At most PR_RECORDS_PER_RUN numbers per run. */
    for (size_t from = 0; from < total; from += PR_RECORDS_PER_RUN) {
      size_t m = 1;
      for (size_t k = from; k < total && m <= PR_RECORDS_PER_RUN; k++)
        args[m++] = all[k];
      const gm_value *v;
      gm_status st = pr__run(call, "catalogue",
                             host->sprintf(call, "crt:%02d", s), m, args, &v);
      if (st != GM_OK) return st;
      pr__certs_add(c, args, m, v);
    }
  }
  return GM_OK;
}

const pr_cert_state *pr__certs_find(void *arg, const char *number) {
  const pr__certs *c = arg;
  for (size_t i = 0; i < c->n; i++)
    if (strcmp(c->numbers[i], number) == 0) return &c->states[i];
  return NULL;
}

/* ---- the calendar ---- */

/* How far ahead the calendar is read for a count of working days: long
   enough for 7 of them across the Spring Festival and National Day weeks
   with their worked weekends. */
#define PR_CALENDAR_HORIZON 60

/* The shipped calendar (calendar.csv): the state's holidays and worked
   weekend days, sorted by day; read once at init. */
typedef struct pr__builtin_day {
  int64_t day;
  char kind; /* 'h' holiday, 'w' working */
} pr__builtin_day;
static pr__builtin_day *pr__builtin;
static size_t pr__nbuiltin;
/* The years the shipped file has days of, from the State Council's
   arrangement ('a') or only the holidays the law fixes ('s', kind
   statutory), by year - PR_CAL_YEAR0; 0: none. */
#define PR_CAL_YEAR0 2000
#define PR_CAL_YEARS 100
static char pr__year_kind[PR_CAL_YEARS];

/* The slot of year y, or NULL outside the years a file may hold. */
static char *pr__year_slot(int y) {
  return y >= PR_CAL_YEAR0 && y < PR_CAL_YEAR0 + PR_CAL_YEARS
             ? &pr__year_kind[y - PR_CAL_YEAR0]
             : NULL;
}

static int pr__builtin_cmp(const void *a, const void *b) {
  const pr__builtin_day *x = a, *y = b;
  return (x->day > y->day) - (x->day < y->day);
}

/* Lines "date,kind[,note]" after the header; '#' lines are comments (which
   libcsv does not know, hence this reader). */
gm_status pr__calendar_init(gm_market *m) {
  const char *p = gm_procurement_calendar_csv;
  size_t cap = 0, line = 0;
  int header = 0;
  while (*p) {
    const char *end = strchr(p, '\n');
    size_t len = end ? (size_t)(end - p) : strlen(p);
    char buf[256];
    line++;
    snprintf(buf, sizeof buf, "%.*s", (int)(len < 255 ? len : 255), p);
    p += len + (end ? 1 : 0);
    if (!buf[0] || buf[0] == '#') continue;
    if (!header) {
      header = !strncmp(buf, "date,kind", 9);
      if (header) continue;
    }
    char *kind = strchr(buf, ',');
    int64_t day;
    if (kind) *kind++ = '\0';
    char *note = kind ? strchr(kind, ',') : NULL;
    if (note) *note = '\0';
    char *yk = NULL;
    if (!header || !kind || pr_parse_date(buf, &day) != 0 ||
        (strcmp(kind, "holiday") && strcmp(kind, "working") &&
         strcmp(kind, "statutory")) ||
        !(yk = pr__year_slot(gm_date_year(day)))) {
      host->log(m, GM_LOG_ERROR,
                "calendar.csv line %zu is not date,kind[,note] with a date "
                "of %d-%d and kind holiday, working or statutory; rebuild "
                "the plugin with a correct file",
                line, PR_CAL_YEAR0, PR_CAL_YEAR0 + PR_CAL_YEARS - 1);
      return GM_INTERNAL;
    }
    /* One statutory day makes the year's arrangement unknown. */
    if (kind[0] == 's' || !*yk) *yk = kind[0] == 's' ? 's' : 'a';
    if (pr__nbuiltin == cap) {
      cap = cap ? 2 * cap : 64;
      pr__builtin_day *n = realloc(pr__builtin, cap * sizeof *n);
      if (!n) return GM_RESOURCE_EXHAUSTED;
      pr__builtin = n;
    }
    pr__builtin[pr__nbuiltin++] =
        (pr__builtin_day){day, kind[0] == 'w' ? 'w' : 'h'};
  }
  qsort(pr__builtin, pr__nbuiltin, sizeof *pr__builtin, pr__builtin_cmp);
  return GM_OK;
}

void pr__calendar_shutdown(void) {
  free(pr__builtin);
  pr__builtin = NULL;
  pr__nbuiltin = 0;
  memset(pr__year_kind, 0, sizeof pr__year_kind);
}

/* A day's kind: the certifier's exception ('h', 'w', or 'n': the weekday
   rule, even over a shipped one) first, then the shipped calendar's. */
static char pr__kind_of(const char *stored, int64_t day) {
  if (stored[0]) return stored[0];
  pr__builtin_day key = {day, 0};
  const pr__builtin_day *b = pr__nbuiltin
                                 ? bsearch(&key, pr__builtin, pr__nbuiltin,
                                           sizeof key, pr__builtin_cmp)
                                 : NULL;
  return b ? b->kind : 0;
}

typedef struct pr__calendar {
  int64_t from; /* the first day read */
  const gm_value *days;
} pr__calendar;

static char pr__day_kind(void *arg, int64_t day) {
  const pr__calendar *c = arg;
  if (day < c->from || day >= c->from + PR_CALENDAR_HORIZON) return 0;
  return pr__kind_of(pr__s(c->days, (size_t)(day - c->from)), day);
}

gm_status pr__working_days_end(gm_call *call, int64_t from, int n,
                               int64_t *end) {
  if (n <= 0) {
    *end = pr_day_start(from + 1) - 1;
    return GM_OK;
  }
  pr__calendar c = {from + 1, NULL};
  const char *args[] = {"calget", pr__num(call, c.from),
                        pr__num(call, PR_CALENDAR_HORIZON)};
  gm_status st = pr__run(call, "catalogue", "cal", 3, args, &c.days);
  if (st != GM_OK) return st;
  *end = pr_working_days_end(from, n, PR_CALENDAR_HORIZON, pr__day_kind, &c);
  if (*end < 0)
    return host->fail(call, GM_FAILED_PRECONDITION,
                      "the calendar has fewer than %d working days in the %d "
                      "days after %s; correct it with gm procurement calendar "
                      "DATE=KIND (calendar.put)",
                      n, PR_CALENDAR_HORIZON,
                      pr_date(from, host->alloc(call, 11)));
  return GM_OK;
}

gm_status pr__calendar_put(gm_call *call, const ProtobufCMessage *req,
                           ProtobufCMessage **reply) {
  const Gm__Procurement__CalendarRequest *in = (const void *)req;
  char d[11];
  if (in->n_days == 0 || in->n_days > PR_RECORDS_PER_RUN)
    return host->fail(call, GM_INVALID_ARGUMENT, "send 1-%d days per call",
                      PR_RECORDS_PER_RUN);
  const char **args = host->alloc(call, (1 + in->n_days) * sizeof *args);
  args[0] = "calput";
  for (size_t i = 0; i < in->n_days; i++) {
    const Gm__Procurement__CalendarDay *day = in->days[i];
    int64_t n;
    if (pr_parse_date(day->date, &n) != 0)
      return host->fail(call, GM_INVALID_ARGUMENT,
                        "day %zu: \"%.16s\" is not a date YYYY-MM-DD", i + 1,
                        day->date);
    int weekend = pr_weekday(n) == 0 || pr_weekday(n) == 6;
    const char *kind;
    if (!strcmp(day->kind, "holiday")) {
      if (weekend)
        return host->fail(call, GM_INVALID_ARGUMENT,
                          "%s is a weekend day, off anyway; list weekdays "
                          "off as holidays",
                          pr_date(n, d));
      kind = "h";
    } else if (!strcmp(day->kind, "working")) {
      if (!weekend)
        return host->fail(call, GM_INVALID_ARGUMENT,
                          "%s is a weekday, worked anyway; list weekend days "
                          "worked (调休) as working",
                          pr_date(n, d));
      kind = "w";
    } else if (!strcmp(day->kind, "normal")) {
      kind = "n";
    } else {
      return host->fail(call, GM_INVALID_ARGUMENT,
                        "%s: kind \"%.16s\" is not holiday, working or "
                        "normal",
                        day->date, day->kind);
    }
    const char *f[] = {pr__num(call, n), kind};
    args[1 + i] = pr__pack(call, 2, f);
  }
  const gm_value *v;
  gm_status st = pr__run(call, "catalogue", "cal", 1 + in->n_days, args, &v);
  if (st != GM_OK) return st;
  Gm__Procurement__Calendar *out = host->alloc(call, sizeof *out);
  gm__procurement__calendar__init(out);
  out->stored = pr__i32(v, 0);
  *reply = &out->base;
  return GM_OK;
}

/* A note for each year of the range whose holidays the shipped file holds
   only in part (the law's, not the year's arrangement) or not at all, unless
   the certifier entered a day of that year in the range: the days that
   year would then be counted on are not the state's. */
static void pr__calendar_notes(gm_call *call, int64_t from, int n,
                               const gm_value *stored,
                               Gm__Procurement__Calendar *out) {
  int first = gm_date_year(from), last = gm_date_year(from + n - 1);
  out->notes = host->alloc(call, (size_t)(last - first + 1) * sizeof(char *));
  for (int y = first; y <= last; y++) {
    const char *yk = pr__year_slot(y);
    if (yk && *yk == 'a') continue;
    int entered = 0;
    for (int i = 0; i < n && !entered; i++)
      entered = pr__s(stored, (size_t)i)[0] && gm_date_year(from + i) == y;
    if (entered) continue;
    out->notes[out->n_notes++] =
        yk && *yk == 's'
            ? host->sprintf(
                  call,
                  "%d: the shipped calendar has only the holidays the law "
                  "fixes (全国年节及纪念日放假办法 art. 2), not the State "
                  "Council's arrangement for %d (days off in lieu, bridge "
                  "days, worked weekends); enter it with gm procurement "
                  "import calendar FILE",
                  y, y)
            : host->sprintf(
                  call,
                  "%d: the shipped calendar has no holidays for %d and none "
                  "is entered in this range, so in this range its working "
                  "days are counted Monday to Friday; enter the State "
                  "Council's arrangement for %d with gm procurement import "
                  "calendar FILE",
                  y, y, y);
  }
}

gm_status pr__calendar_get(gm_call *call, const ProtobufCMessage *req,
                           ProtobufCMessage **reply) {
  const Gm__Procurement__CalendarRequest *in = (const void *)req;
  int64_t from;
  if (in->from[0]) {
    if (pr_parse_date(in->from, &from) != 0)
      return host->fail(call, GM_INVALID_ARGUMENT,
                        "from \"%.16s\" is not a date YYYY-MM-DD", in->from);
  } else {
    from = pr_day_of(host->now_ms(host->market(call)));
  }
  int n = in->days_ahead ? in->days_ahead : 31;
  if (n < 1 || n > 366)
    return host->fail(call, GM_INVALID_ARGUMENT, "days_ahead must be 1-366");
  const char *args[] = {"calget", pr__num(call, from), pr__num(call, n)};
  const gm_value *v;
  gm_status st = pr__run(call, "catalogue", "cal", 3, args, &v);
  if (st != GM_OK) return st;
  Gm__Procurement__Calendar *out = host->alloc(call, sizeof *out);
  gm__procurement__calendar__init(out);
  out->days = host->alloc(call, ((size_t)n + 1) * sizeof *out->days);
  for (int i = 0; i < n; i++) {
    char kind = pr__kind_of(pr__s(v, (size_t)i), from + i);
    if (kind != 'h' && kind != 'w') continue;
    Gm__Procurement__CalendarDay *d = host->alloc(call, sizeof *d);
    gm__procurement__calendar_day__init(d);
    d->date = host->alloc(call, 11);
    pr_date(from + i, d->date);
    d->kind = kind == 'h' ? "holiday" : "working";
    out->days[out->n_days++] = d;
  }
  pr__calendar_notes(call, from, n, v, out);
  *reply = &out->base;
  return GM_OK;
}

/* ---- parties ---- */

static Gm__Procurement__Party *pr__party(gm_call *call, const gm_value *v) {
  Gm__Procurement__Party *p = host->alloc(call, sizeof *p);
  gm__procurement__party__init(p);
  p->id = (char *)pr__s(v, 0);
  p->uscc = (char *)pr__s(v, 1);
  p->name = (char *)pr__s(v, 2);
  p->size = (Gm__Procurement__SmeClass)pr__i32(v, 3);
  p->updated_ms = pr__i(v, 4);
  return p;
}

gm_status pr__party_register(gm_call *call, const ProtobufCMessage *req,
                             ProtobufCMessage **reply) {
  const Gm__Procurement__Party *in = (const void *)req;
  const char *me = host->participant(call);
  char why[200];
  gm_status st;
  if (gm_uscc_check(in->uscc, strlen(in->uscc), why, sizeof why) != 0)
    return host->fail(call, GM_INVALID_ARGUMENT,
                      "unified social credit code: %s", why);
  if ((st = pr__text(call, "name", in->name, 200, 0)) != GM_OK) return st;
  if (!in->name[0])
    return host->fail(call, GM_INVALID_ARGUMENT,
                      "name is empty; give the registered name");
  if (in->size > GM__PROCUREMENT__SME_CLASS__SME_MICRO)
    return host->fail(call, GM_INVALID_ARGUMENT,
                      "size must be SME_NONE, SME_MEDIUM, SME_SMALL or "
                      "SME_MICRO");
  if (!pr_valid_name(me, 1, 64, 0))
    return host->fail(call, GM_INVALID_ARGUMENT,
                      "your participant id is not 1-64 letters, digits and . "
                      "_ -");
  /* A credit code is one party's (catalogue.lua orgclaim, on the shard of
     the code): the code is claimed first, then the entry written, then the
     code it had before freed.  A step that fails leaves at most the new
     code claimed for this participant; a retry finishes. */
  const char *gargs[] = {"orgget", me};
  const gm_value *v;
  if ((st = pr__run(call, "catalogue", pr__org_tag(call, me), 2, gargs, &v)) !=
      GM_OK)
    return st;
  const char *old = v->n ? pr__s(v, 1) : "";
  const char *cargs[] = {"orgclaim", in->uscc, me};
  if ((st = pr__run(call, "catalogue", pr__org_tag(call, in->uscc), 3, cargs,
                    &v)) != GM_OK)
    return st;
  const char *args[] = {"orgput", me, in->uscc, in->name,
                        pr__num(call, in->size)};
  if ((st = pr__run(call, "catalogue", pr__org_tag(call, me), 5, args, &v)) !=
      GM_OK)
    return st;
  Gm__Procurement__Party *out = pr__party(call, v);
  if (old[0] && strcmp(old, in->uscc) != 0) {
    const char *fargs[] = {"orgfree", old, me};
    if ((st = pr__run(call, "catalogue", pr__org_tag(call, old), 3, fargs,
                      &v)) != GM_OK)
      return st;
  }
  *reply = &out->base;
  return GM_OK;
}

/* ---- reclaiming a credit code ---- */

static Gm__Procurement__Reclaim *pr__reclaim(gm_call *call, const gm_value *v) {
  Gm__Procurement__Reclaim *r = host->alloc(call, sizeof *r);
  gm__procurement__reclaim__init(r);
  r->uscc = (char *)pr__s(v, 0);
  r->claimant = (char *)pr__s(v, 1);
  r->holder = (char *)pr__s(v, 2);
  r->evidence = (char *)pr__s(v, 3);
  r->status = (char *)pr__s(v, 4);
  r->reason = (char *)pr__s(v, 5);
  r->decided_by = (char *)pr__s(v, 6);
  r->lodged_ms = pr__i(v, 7);
  r->decided_ms = pr__i(v, 8);
  return r;
}

/* The centre and the holder hear of a request; both parties of a
   decision. */
static void pr__reclaim_tell(gm_call *call, Gm__Procurement__Reclaim *r,
                             int decided) {
  pr__tell(call, GM_AUDIENCE_PARTICIPANT, r->holder, "reclaim", &r->base);
  if (decided)
    pr__tell(call, GM_AUDIENCE_PARTICIPANT, r->claimant, "reclaim", &r->base);
  else
    pr__tell(call, GM_AUDIENCE_ROLE, "certifier", "reclaim", &r->base);
}

gm_status pr__party_reclaim(gm_call *call, const ProtobufCMessage *req,
                            ProtobufCMessage **reply) {
  const Gm__Procurement__ReclaimRequest *in = (const void *)req;
  const char *me = host->participant(call);
  char why[200];
  gm_status st;
  if (gm_uscc_check(in->uscc, strlen(in->uscc), why, sizeof why) != 0)
    return host->fail(call, GM_INVALID_ARGUMENT,
                      "unified social credit code: %s", why);
  if ((st = pr__text(call, "evidence", in->evidence, 2000, 0)) != GM_OK)
    return st;
  if (!in->evidence[0])
    return host->fail(call, GM_INVALID_ARGUMENT,
                      "evidence is empty; say what proves the code is yours "
                      "(your business licence, its number and date), for the "
                      "certification centre");
  const char *args[] = {"rqput", in->uscc, me, in->evidence};
  const gm_value *v;
  if ((st = pr__run(call, "catalogue", pr__org_tag(call, in->uscc), 4, args,
                    &v)) != GM_OK)
    return st;
  Gm__Procurement__Reclaim *r = pr__reclaim(call, v);
  if (v->n > 9) r->replaced_evidence = (char *)pr__s(v, 9);
  pr__reclaim_tell(call, r, 0);
  *reply = &r->base;
  return GM_OK;
}

gm_status pr__party_reclaim_decide(gm_call *call, const ProtobufCMessage *req,
                                   ProtobufCMessage **reply) {
  const Gm__Procurement__ReclaimDecision *in = (const void *)req;
  char why[200];
  gm_status st;
  if (gm_uscc_check(in->uscc, strlen(in->uscc), why, sizeof why) != 0)
    return host->fail(call, GM_INVALID_ARGUMENT,
                      "unified social credit code: %s", why);
  if ((st = pr__text(call, "reason", in->reason, 2000, 0)) != GM_OK) return st;
  if (!in->reason[0])
    return host->fail(call, GM_INVALID_ARGUMENT,
                      "reason is empty; say why, for both parties");
  /* The code passes first (its shard), then the holder's entry naming it
     goes (the holder's shard): a retry after a failure between them
     replays the first and runs the second. */
  const char *args[] = {"rqdecide", in->uscc, in->approve ? "1" : "0",
                        in->reason};
  const gm_value *v;
  if ((st = pr__run(call, "catalogue", pr__org_tag(call, in->uscc), 4, args,
                    &v)) != GM_OK)
    return st;
  Gm__Procurement__Reclaim *r = pr__reclaim(call, v);
  if (in->approve) {
    const char *dargs[] = {"orgdrop", r->holder, in->uscc};
    const gm_value *d;
    if ((st = pr__run(call, "catalogue", pr__org_tag(call, r->holder), 3, dargs,
                      &d)) != GM_OK)
      return st;
  }
  pr__reclaim_tell(call, r, 1);
  *reply = &r->base;
  return GM_OK;
}

gm_status pr__party_get(gm_call *call, const ProtobufCMessage *req,
                        ProtobufCMessage **reply) {
  const Gm__Procurement__PartyRequest *in = (const void *)req;
  const char *id = in->id[0] ? in->id : host->participant(call);
  if (!pr_valid_name(id, 1, 64, 0))
    return host->fail(call, GM_INVALID_ARGUMENT,
                      "\"%.64s\" is not a participant id", id);
  const char *args[] = {"orgget", id};
  const gm_value *v;
  gm_status st = pr__run(call, "catalogue", pr__org_tag(call, id), 2, args, &v);
  if (st != GM_OK) return st;
  if (v->n == 0)
    return host->fail(call, GM_NOT_FOUND,
                      "%s has not registered; gm procurement register --uscc "
                      "CODE --name NAME registers you",
                      id);
  *reply = &pr__party(call, v)->base;
  return GM_OK;
}
