/*
 * Reports from the ledger (the finance_* tables, settle.c): a bank's
 * claims, conversion, contact and decision deadlines missed and time to
 * decision; the centre's report for a period by catalogue class and by bank; a
 * bank's monthly statement of fees due, as CSV.  Amounts are summed in SQLite's
 * 64-bit integers; nothing here uses floating point.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "finance.h"

gm_status finance__report_bank(gm_call *call, const char *asked,
                               const char **bank) {
  const gm_value *members;
  gm_status st;
  if (asked && *asked) {
    if (!gm__finance_valid_bank(asked))
      return host->fail(call, GM_INVALID_ARGUMENT,
                        "bank \"%s\" is not a bank id (gm finance bank list "
                        "lists them)",
                        finance__q(call, asked, 40));
    if (finance__is_centre(call)) {
      *bank = asked;
      return GM_OK;
    }
  }
  if (!host->has_role(call, "bank"))
    return host->fail(call, GM_INVALID_ARGUMENT,
                      "name the bank: the centre reads any bank's");
  if ((st = finance__caller_bank(call, bank, &members)) != GM_OK) return st;
  if (asked && *asked && strcmp(asked, *bank))
    return host->fail(call, GM_PERMISSION_DENIED,
                      "your bank is %s; only the centre reads another bank's",
                      *bank);
  return GM_OK;
}

/* A report's period: whole days from..to inclusive (default the last 30),
   checked and bounded. */
static gm_status finance__period(gm_call *call, const char *from,
                                 const char *to, int64_t *from_day,
                                 int64_t *to_day) {
  int64_t today = gm__finance_day_of(host->now_ms(host->market(call)));
  *to_day = today;
  if (to && *to && gm__finance_parse_date(to, to_day))
    return host->fail(call, GM_INVALID_ARGUMENT,
                      "to \"%s\" %s (a date of Asia/Shanghai)",
                      finance__q(call, to, 16), gm__finance_date_why(to));
  *from_day = *to_day - 29;
  if (from && *from && gm__finance_parse_date(from, from_day))
    return host->fail(call, GM_INVALID_ARGUMENT,
                      "from \"%s\" %s (a date of Asia/Shanghai)",
                      finance__q(call, from, 16), gm__finance_date_why(from));
  if (*from_day > *to_day) {
    char f[16], t[16];
    /* Either may be the default (to today, from 29 days before to). */
    return host->fail(call, GM_INVALID_ARGUMENT,
                      "the period starts %s, after it ends %s; give a from "
                      "on or before the to (--from %s --to %s covers it)",
                      gm__finance_format_date(*from_day, f),
                      gm__finance_format_date(*to_day, t), t, f);
  }
  if (*to_day - *from_day > FINANCE_REPORT_MAX_DAYS)
    return host->fail(call, GM_INVALID_ARGUMENT,
                      "a report covers at most %d days; split the period",
                      FINANCE_REPORT_MAX_DAYS);
  return GM_OK;
}

/* One row's integers (up to 8 columns). */
typedef struct finance__ints {
  int64_t v[8];
  int found;
} finance__ints;

static int finance__ints_row(void *arg, size_t ncols, const gm_param *c) {
  finance__ints *r = arg;
  for (size_t i = 0; i < ncols && i < 8; i++)
    r->v[i] = c[i].type == GM_PARAM_INT ? c[i].i : 0;
  r->found = 1;
  return 1;
}

/* Rows kept as text and integers, for lists. */
typedef struct finance__rows {
  gm_call *call;
  size_t n, cap, ncols;
  gm_param *cells; /* n * ncols; text copied into the call's arena */
} finance__rows;

static int finance__rows_row(void *arg, size_t ncols, const gm_param *c) {
  finance__rows *t = arg;
  if (t->n == t->cap) {
    size_t cap = t->cap * 2 + 16;
    gm_param *n = host->alloc(t->call, cap * t->ncols * sizeof *n);
    if (t->n) memcpy(n, t->cells, t->n * t->ncols * sizeof *n);
    t->cells = n;
    t->cap = cap;
  }
  gm_param *row = t->cells + t->n * t->ncols;
  for (size_t i = 0; i < t->ncols; i++) {
    row[i] = i < ncols ? c[i] : GM_NULL;
    if (row[i].type == GM_PARAM_TEXT)
      row[i].s = host->sprintf(t->call, "%s", row[i].s ? row[i].s : "");
  }
  t->n++;
  return t->n > FINANCE_STATEMENT_MAX;
}

static const char *finance__text(const gm_param *p) {
  return p->type == GM_PARAM_TEXT && p->s ? p->s : "";
}

static int64_t finance__int(const gm_param *p) {
  return p->type == GM_PARAM_INT ? p->i : 0;
}

/* The totals of `currency` among (*v)[0..*n), added (zero) when missing,
   kept in currency order. */
static Gm__Finance__CurrencyTotal *finance__cur(gm_call *call,
                                                Gm__Finance__CurrencyTotal ***v,
                                                size_t *n,
                                                const char *currency) {
  size_t i = 0;
  while (i < *n && strcmp((*v)[i]->currency, currency) < 0) i++;
  if (i < *n && !strcmp((*v)[i]->currency, currency)) return (*v)[i];
  Gm__Finance__CurrencyTotal **g = host->alloc(call, (*n + 1) * sizeof *g);
  if (i) memcpy(g, *v, i * sizeof *g);
  if (*n > i) memcpy(g + i + 1, *v + i, (*n - i) * sizeof *g);
  Gm__Finance__CurrencyTotal *t = host->alloc(call, sizeof *t);
  gm__finance__currency_total__init(t);
  t->currency = host->sprintf(call, "%s", currency);
  g[i] = t;
  *v = g;
  (*n)++;
  return t;
}

/* A report's single-currency fields from its totals: the sums when there
   is one currency, else 0 and "" (amounts of two currencies are never
   added). */
static void finance__single(Gm__Finance__CurrencyTotal *const *v, size_t n,
                            char **currency, int64_t *amount, int64_t *fees) {
  *currency = n == 1 ? v[0]->currency : "";
  *amount = n == 1 ? v[0]->funded_amount : 0;
  *fees = n == 1 ? v[0]->fees : 0;
}

/* a + b, saturated: each row's sum is SQLite's (which refuses an
   overflow), but the rows of a damaged ledger could overflow together. */
static int64_t finance__sum(int64_t a, int64_t b) {
  int64_t r;
  if (!__builtin_add_overflow(a, b, &r)) return r;
  return b > 0 ? INT64_MAX : INT64_MIN;
}

/* Adds loan rows (from column c: currency, loans, amount, fees) into the
   totals per currency (*v)[0..*n). */
static void finance__money(gm_call *call, Gm__Finance__CurrencyTotal ***v,
                           size_t *n, const finance__rows *rows, size_t c) {
  for (size_t i = 0; i < rows->n; i++) {
    const gm_param *r = rows->cells + i * rows->ncols + c;
    Gm__Finance__CurrencyTotal *t =
        finance__cur(call, v, n, finance__text(&r[0]));
    t->loans = finance__sum(t->loans, finance__int(&r[1]));
    t->funded_amount = finance__sum(t->funded_amount, finance__int(&r[2]));
    t->fees = finance__sum(t->fees, finance__int(&r[3]));
  }
}

gm_status finance__bank_report(gm_call *call, const ProtobufCMessage *req,
                               ProtobufCMessage **reply) {
  const Gm__Finance__BankReportRequest *in =
      (const Gm__Finance__BankReportRequest *)req;
  int64_t fd, td;
  const char *bank;
  char a[16], b[16];
  gm_status st;
  if ((st = finance__period(call, in->from, in->to, &fd, &td)) != GM_OK ||
      (st = finance__report_bank(call, in->bank, &bank)) != GM_OK)
    return st;
  gm_param p[] = {GM_TEXT(bank), GM_INT(gm__finance_day_start_ms(fd)),
                  GM_INT(gm__finance_day_start_ms(td + 1)),
                  GM_TEXT(gm__finance_format_date(fd, a)),
                  GM_TEXT(gm__finance_format_date(td, b))};
  Gm__Finance__BankReport *out = host->alloc(call, sizeof *out);
  gm__finance__bank_report__init(out);
  out->bank = (char *)bank;
  out->from = host->sprintf(call, "%s", a);
  out->to = host->sprintf(call, "%s", b);

  finance__ints claims = {{0}, 0}, funded = {{0}, 0}, dec = {{0}, 0};
  finance__rows money = {call, 0, 0, 4, NULL};
  if ((st = host->ledger_query(
           call,
           "SELECT count(DISTINCT referral),"
           /* Picked is an event: a pick that later missed its contact
              deadline ('missed') was a pick all the same. */
           " count(DISTINCT CASE WHEN outcome IN ('picked', 'missed')"
           " THEN referral END)"
           " FROM finance_claims WHERE bank = ?1 AND claimed_ms >= ?2"
           " AND claimed_ms < ?3",
           p, 3, finance__ints_row, &claims)) != GM_OK ||
      (st = host->ledger_query(
           call,
           "SELECT count(DISTINCT l.referral) FROM finance_loans l"
           " JOIN finance_claims c ON c.referral = l.referral"
           " AND c.bank = l.bank WHERE c.bank = ?1 AND c.claimed_ms >= ?2"
           " AND c.claimed_ms < ?3",
           p, 3, finance__ints_row, &funded)) != GM_OK ||
      (st = host->ledger_query(
           call,
           "SELECT count(*), coalesce(sum(decided_ms - picked_ms), 0),"
           " coalesce(max(decided_ms - picked_ms), 0) FROM finance_referrals"
           " WHERE bank = ?1 AND decided_ms >= ?2 AND decided_ms < ?3"
           " AND picked_ms > 0",
           p, 3, finance__ints_row, &dec)) != GM_OK ||
      (st = host->ledger_query(
           call,
           "SELECT currency, count(*), sum(amount), sum(fee)"
           " FROM finance_loans WHERE bank = ?1 AND funded_date >= ?4"
           " AND funded_date <= ?5 GROUP BY currency",
           p, 5, finance__rows_row, &money)) != GM_OK)
    return st;
  out->claims = claims.v[0];
  out->picked = claims.v[1];
  out->funded = funded.v[0];
  out->conversion_bp = gm__finance_ratio_bp(out->funded, out->claims);
  out->decisions = dec.v[0];
  out->decision_mean_ms = dec.v[0] > 0 ? dec.v[1] / dec.v[0] : 0;
  out->decision_max_ms = dec.v[2];
  finance__money(call, &out->by_currency, &out->n_by_currency, &money, 0);
  finance__single(out->by_currency, out->n_by_currency, &out->currency,
                  &out->funded_amount, &out->fees);

  finance__rows br = {call, 0, 0, 6, NULL};
  if ((st = host->ledger_query(
           call,
           "SELECT referral, round, picked_ms, due_ms, recorded_ms, kind"
           " FROM finance_breaches WHERE bank = ?1 AND recorded_ms >= ?2"
           " AND recorded_ms < ?3 ORDER BY recorded_ms, referral LIMIT 1000",
           p, 3, finance__rows_row, &br)) != GM_OK)
    return st;
  finance__ints nbr = {{0}, 0};
  if ((st = host->ledger_query(
           call,
           "SELECT coalesce(sum(kind = 'contact'), 0),"
           " coalesce(sum(kind = 'decision'), 0) FROM finance_breaches"
           " WHERE bank = ?1 AND recorded_ms >= ?2 AND recorded_ms < ?3",
           p, 3, finance__ints_row, &nbr)) != GM_OK)
    return st;
  out->breaches = nbr.v[0];
  out->decision_breaches = nbr.v[1];
  out->breach_list = host->alloc(call, (br.n + 1) * sizeof *out->breach_list);
  for (size_t i = 0; i < br.n; i++) {
    const gm_param *row = br.cells + i * br.ncols;
    Gm__Finance__Breach *x = host->alloc(call, sizeof *x);
    gm__finance__breach__init(x);
    x->referral = (char *)finance__text(&row[0]);
    x->round = finance__clamp32(finance__int(&row[1]));
    x->picked_ms = finance__int(&row[2]);
    x->due_ms = finance__int(&row[3]);
    x->recorded_ms = finance__int(&row[4]);
    x->kind = (char *)finance__text(&row[5]);
    out->breach_list[out->n_breach_list++] = x;
  }
  *reply = &out->base;
  return GM_OK;
}

/* The line for `key` in `currency` among lines[0..n), added (all zero)
   when missing. */
static Gm__Finance__ReportLine *finance__line(gm_call *call,
                                              Gm__Finance__ReportLine ***lines,
                                              size_t *n, size_t *cap,
                                              const char *key,
                                              const char *currency) {
  for (size_t i = 0; i < *n; i++)
    if (!strcmp((*lines)[i]->key, key) &&
        !strcmp((*lines)[i]->currency, currency))
      return (*lines)[i];
  if (*n == *cap) {
    size_t c = *cap * 2 + 8;
    Gm__Finance__ReportLine **g = host->alloc(call, c * sizeof *g);
    if (*n) memcpy(g, *lines, *n * sizeof *g);
    *lines = g;
    *cap = c;
  }
  Gm__Finance__ReportLine *l = host->alloc(call, sizeof *l);
  gm__finance__report_line__init(l);
  l->key = host->sprintf(call, "%s", key);
  l->currency = host->sprintf(call, "%s", currency);
  (*lines)[(*n)++] = l;
  return l;
}

/* Lines per key and currency from counts (key, currency, referrals) and
   loans (key, currency, loans, amount, fees). */
static void finance__lines(gm_call *call, Gm__Finance__ReportLine ***lines,
                           size_t *n, const finance__rows *counts,
                           const finance__rows *loans) {
  size_t cap = 0;
  for (size_t i = 0; i < counts->n; i++) {
    const gm_param *r = counts->cells + i * counts->ncols;
    finance__line(call, lines, n, &cap, finance__text(&r[0]),
                  finance__text(&r[1]))
        ->referrals = finance__int(&r[2]);
  }
  for (size_t i = 0; i < loans->n; i++) {
    const gm_param *r = loans->cells + i * loans->ncols;
    Gm__Finance__ReportLine *l = finance__line(
        call, lines, n, &cap, finance__text(&r[0]), finance__text(&r[1]));
    l->funded = finance__int(&r[2]);
    l->funded_amount = finance__int(&r[3]);
    l->fees = finance__int(&r[4]);
  }
}

/* The bank lines' missed deadlines from rows (bank, currency, contact,
   decision): a bank that only missed in the period gets a line too. */
static void finance__misses(gm_call *call, Gm__Finance__ReportLine ***lines,
                            size_t *n, const finance__rows *misses) {
  size_t cap = *n; /* full: finance__line grows a copy */
  for (size_t i = 0; i < misses->n; i++) {
    const gm_param *r = misses->cells + i * misses->ncols;
    Gm__Finance__ReportLine *l = finance__line(
        call, lines, n, &cap, finance__text(&r[0]), finance__text(&r[1]));
    l->contact_misses = finance__int(&r[2]);
    l->decision_misses = finance__int(&r[3]);
  }
}

/* A CSV field as RFC 4180 writes it: quoted, quotes doubled, when it
   holds a comma, a quote or a line break (a bank's name is free text). */
static const char *finance__csv(gm_call *call, const char *s) {
  if (!strpbrk(s, ",\"\r\n")) return s;
  char *out = host->alloc(call, 2 * strlen(s) + 3), *w = out;
  *w++ = '"';
  for (; *s; s++) {
    if (*s == '"') *w++ = '"';
    *w++ = *s;
  }
  *w++ = '"';
  return out;
}

static int finance__line_cmp(const void *a, const void *b) {
  const Gm__Finance__ReportLine *x = *(Gm__Finance__ReportLine *const *)a,
                                *y = *(Gm__Finance__ReportLine *const *)b;
  int c = strcmp(x->key, y->key);
  return c ? c : strcmp(x->currency, y->currency);
}

gm_status finance__report(gm_call *call, const ProtobufCMessage *req,
                          ProtobufCMessage **reply) {
  const Gm__Finance__ReportRequest *in =
      (const Gm__Finance__ReportRequest *)req;
  int64_t fd, td;
  char a[16], b[16], y1[40], y2[40];
  gm_status st;
  if ((st = finance__period(call, in->from, in->to, &fd, &td)) != GM_OK)
    return st;
  gm_param p[] = {GM_INT(gm__finance_day_start_ms(fd)),
                  GM_INT(gm__finance_day_start_ms(td + 1)),
                  GM_TEXT(gm__finance_format_date(fd, a)),
                  GM_TEXT(gm__finance_format_date(td, b))};
  Gm__Finance__Report *out = host->alloc(call, sizeof *out);
  gm__finance__report__init(out);
  out->from = host->sprintf(call, "%s", a);
  out->to = host->sprintf(call, "%s", b);

  finance__rows sub = {call, 0, 0, 3, NULL}, cls = {call, 0, 0, 5, NULL},
                claims = {call, 0, 0, 3, NULL}, banks = {call, 0, 0, 5, NULL},
                names = {call, 0, 0, 2, NULL}, misses = {call, 0, 0, 4, NULL};
  finance__ints tot = {{0}, 0}, nref = {{0}, 0};
  if ((st = host->ledger_query(call,
                               "SELECT class, currency, count(*)"
                               " FROM finance_referrals"
                               " WHERE created_ms >= ?1 AND created_ms < ?2"
                               " GROUP BY class, currency",
                               p, 2, finance__rows_row, &sub)) != GM_OK ||
      (st = host->ledger_query(call,
                               "SELECT count(*) FROM finance_referrals"
                               " WHERE created_ms >= ?1 AND created_ms < ?2",
                               p, 2, finance__ints_row, &nref)) != GM_OK ||
      (st = host->ledger_query(
           call,
           "SELECT class, currency, count(*), sum(amount), sum(fee)"
           " FROM finance_loans WHERE funded_date >= ?3 AND funded_date <= ?4"
           " GROUP BY class, currency",
           p, 4, finance__rows_row, &cls)) != GM_OK ||
      (st = host->ledger_query(
           call,
           "SELECT c.bank, r.currency, count(DISTINCT c.referral)"
           " FROM finance_claims c JOIN finance_referrals r"
           " ON r.id = c.referral WHERE c.claimed_ms >= ?1"
           " AND c.claimed_ms < ?2 GROUP BY c.bank, r.currency",
           p, 2, finance__rows_row, &claims)) != GM_OK ||
      (st = host->ledger_query(
           call,
           "SELECT bank, currency, count(*), sum(amount), sum(fee)"
           " FROM finance_loans WHERE funded_date >= ?3 AND funded_date <= ?4"
           " GROUP BY bank, currency",
           p, 4, finance__rows_row, &banks)) != GM_OK ||
      (st = host->ledger_query(
           call,
           "SELECT count(*), coalesce(sum(co2_kg), 0), coalesce(sum(coal_kg), "
           "0)"
           " FROM finance_loans WHERE funded_date >= ?3 AND funded_date <= ?4",
           p, 4, finance__ints_row, &tot)) != GM_OK ||
      (st = host->ledger_query(
           call,
           "SELECT b.bank, r.currency, coalesce(sum(b.kind = 'contact'), 0),"
           " coalesce(sum(b.kind = 'decision'), 0) FROM finance_breaches b"
           " JOIN finance_referrals r ON r.id = b.referral"
           " WHERE b.recorded_ms >= ?1 AND b.recorded_ms < ?2"
           " GROUP BY b.bank, r.currency",
           p, 2, finance__rows_row, &misses)) != GM_OK ||
      (st = host->ledger_query(call,
                               "SELECT id, name FROM finance_banks /* scan: "
                               "one row per member bank */",
                               NULL, 0, finance__rows_row, &names)) != GM_OK)
    return st;
  out->referrals = nref.v[0];
  out->funded = tot.v[0];
  out->co2_avoided_kg = tot.v[1];
  out->coal_saved_kg = tot.v[2];
  /* Every loan has one class: the totals per currency are its class
     lines' sums. */
  finance__money(call, &out->by_currency, &out->n_by_currency, &cls, 1);
  finance__single(out->by_currency, out->n_by_currency, &out->currency,
                  &out->funded_amount, &out->fees);
  finance__lines(call, &out->by_class, &out->n_by_class, &sub, &cls);
  finance__lines(call, &out->by_bank, &out->n_by_bank, &claims, &banks);
  finance__misses(call, &out->by_bank, &out->n_by_bank, &misses);
  if (out->n_by_class)
    qsort(out->by_class, out->n_by_class, sizeof *out->by_class,
          finance__line_cmp);
  if (out->n_by_bank)
    qsort(out->by_bank, out->n_by_bank, sizeof *out->by_bank,
          finance__line_cmp);
  for (size_t i = 0; i < out->n_by_class; i++) {
    const finance__entry *e = finance__builtin_find(out->by_class[i]->key);
    out->by_class[i]->name = e ? e->name : "";
  }
  for (size_t i = 0; i < out->n_by_bank; i++) {
    out->by_bank[i]->name = "";
    for (size_t k = 0; k < names.n; k++)
      if (!strcmp(finance__text(&names.cells[k * 2]), out->by_bank[i]->key))
        out->by_bank[i]->name = (char *)finance__text(&names.cells[k * 2 + 1]);
  }

  /* The same as CSV: one line per class and currency, per bank and
     currency, and the totals of each currency (one per currency of a loan
     or of a class line).  A line is its key and name (quoted, at most twice
     its length plus 2), a currency code and at most 8 numbers of 20
     digits; a total line is under 128 bytes. */
  size_t cap = 512 + 128 * (out->n_by_currency + out->n_by_class), used = 0;
  for (int k = 0; k < 2; k++) {
    Gm__Finance__ReportLine **l = k ? out->by_bank : out->by_class;
    size_t n = k ? out->n_by_bank : out->n_by_class;
    for (size_t i = 0; i < n; i++)
      cap += strlen(l[i]->key) + 2 * strlen(l[i]->name) + 230;
  }
  char *csv = host->alloc(call, cap);
  used += (size_t)snprintf(csv, cap,
                           "section,key,name,currency,referrals,funded,"
                           "funded_amount,fees,contact_misses,"
                           "decision_misses\n");
  for (int k = 0; k < 2; k++) {
    Gm__Finance__ReportLine **l = k ? out->by_bank : out->by_class;
    size_t n = k ? out->n_by_bank : out->n_by_class;
    for (size_t i = 0; i < n && used < cap; i++)
      used += (size_t)snprintf(
          csv + used, cap - used, "%s,%s,%s,%s,%lld,%lld,%s,%s,%s,%s\n",
          k ? "bank" : "class", l[i]->key, finance__csv(call, l[i]->name),
          finance__q(call, l[i]->currency, 3), (long long)l[i]->referrals,
          (long long)l[i]->funded,
          gm__finance_format_money(l[i]->funded_amount, l[i]->currency, y1),
          gm__finance_format_money(l[i]->fees, l[i]->currency, y2),
          k ? finance__num(call, l[i]->contact_misses) : "",
          k ? finance__num(call, l[i]->decision_misses) : "");
  }
  /* A total per currency: the referrals submitted in it (the class lines
     count each once) and its loans.  Every currency a referral of the
     period is in has one, with no loans when none was funded in it. */
  Gm__Finance__CurrencyTotal **totals = out->by_currency;
  size_t ntotals = out->n_by_currency;
  for (size_t i = 0; i < out->n_by_class; i++)
    finance__cur(call, &totals, &ntotals, out->by_class[i]->currency);
  for (size_t c = 0; c < ntotals && used < cap; c++) {
    const Gm__Finance__CurrencyTotal *t = totals[c];
    int64_t referrals = 0;
    for (size_t i = 0; i < out->n_by_class; i++)
      if (!strcmp(out->by_class[i]->currency, t->currency))
        referrals += out->by_class[i]->referrals;
    used += (size_t)snprintf(
        csv + used, cap - used, "total,,,%s,%lld,%lld,%s,%s,,\n",
        finance__q(call, t->currency, 3), (long long)referrals,
        (long long)t->loans,
        gm__finance_format_money(t->funded_amount, t->currency, y1),
        gm__finance_format_money(t->fees, t->currency, y2));
  }
  if (used < cap && ntotals == 0)
    used += (size_t)snprintf(csv + used, cap - used,
                             "total,,,,%lld,0,0.00,0.00,,\n",
                             (long long)out->referrals);
  if (used < cap)
    used += (size_t)snprintf(csv + used, cap - used,
                             "benefit,co2_avoided_kg,,,%lld,,,,,\n"
                             "benefit,coal_saved_kg,,,%lld,,,,,\n",
                             (long long)out->co2_avoided_kg,
                             (long long)out->coal_saved_kg);
  out->csv = csv;
  *reply = &out->base;
  return GM_OK;
}

gm_status finance__statement(gm_call *call, const ProtobufCMessage *req,
                             ProtobufCMessage **reply) {
  const Gm__Finance__StatementRequest *in =
      (const Gm__Finance__StatementRequest *)req;
  int64_t first, next;
  char a[16], b[16], y1[40], y2[40], pct[16];
  const char *bank;
  gm_status st;
  if (gm__finance_parse_month(in->month, &first, &next))
    return host->fail(call, GM_INVALID_ARGUMENT,
                      "month \"%s\" %s; give YYYY-MM, e.g. 2026-03",
                      finance__q(call, in->month, 16),
                      gm__finance_month_why(in->month));
  if ((st = finance__report_bank(call, in->bank, &bank)) != GM_OK) return st;
  finance__rows t = {call, 0, 0, 10, NULL};
  if ((st = host->ledger_query(
           call,
           "SELECT referral, funded_date, class, subitem, currency, amount,"
           " rate_bp, tenor, fee_bp, fee FROM finance_loans WHERE bank = ?1"
           " AND funded_date >= ?2 AND funded_date < ?3"
           " ORDER BY funded_date, referral LIMIT ?4",
           (gm_param[]){GM_TEXT(bank),
                        GM_TEXT(gm__finance_format_date(first, a)),
                        GM_TEXT(gm__finance_format_date(next, b)),
                        GM_INT(FINANCE_STATEMENT_MAX + 1)},
           4, finance__rows_row, &t)) != GM_OK)
    return st;
  /* A statement is for reconciling: never cut one short silently. */
  if (t.n > FINANCE_STATEMENT_MAX)
    return host->fail(call, GM_RESOURCE_EXHAUSTED,
                      "more than %d loans in %s; ask the operator for an "
                      "export from the ledger",
                      FINANCE_STATEMENT_MAX, in->month);
  Gm__Finance__Statement *out = host->alloc(call, sizeof *out);
  gm__finance__statement__init(out);
  out->bank = (char *)bank;
  out->month = (char *)in->month;
  /* One line is under 240 bytes: its texts are cut to their widths (a
     valid id or code is within them) and the numbers have 20 digits. */
  size_t cap = 240 * (t.n + 4) + 128 * t.n, used = 0;
  char *csv = host->alloc(call, cap);
  used += (size_t)snprintf(csv, cap,
                           "referral,funded_date,class,subitem,currency,"
                           "amount,rate_pct,tenor_months,fee_bp,fee\n");
  for (size_t i = 0; i < t.n && used < cap; i++) {
    const gm_param *r = t.cells + i * t.ncols;
    int64_t amount = finance__int(&r[5]), fee = finance__int(&r[9]);
    const char *cur = finance__text(&r[4]);
    Gm__Finance__CurrencyTotal *ct =
        finance__cur(call, &out->by_currency, &out->n_by_currency, cur);
    /* SQLite sums the same and refuses to overflow; so does this. */
    if (__builtin_add_overflow(ct->funded_amount, amount, &ct->funded_amount) ||
        __builtin_add_overflow(ct->fees, fee, &ct->fees))
      return host->fail(call, GM_INTERNAL,
                        "the loans of %s in %s add up beyond 64 bits; the "
                        "ledger is damaged",
                        bank, in->month);
    ct->loans++;
    used += (size_t)snprintf(
        csv + used, cap - used, "%s,%s,%s,%s,%s,%s,%s,%lld,%lld,%s\n",
        finance__q(call, finance__text(&r[0]), 20),
        finance__q(call, finance__text(&r[1]), 10),
        finance__q(call, finance__text(&r[2]), 12),
        finance__q(call, finance__text(&r[3]), 12), finance__q(call, cur, 3),
        gm__finance_format_money(amount, cur, y1),
        gm__finance_format_pct(finance__int(&r[6]), pct),
        (long long)finance__int(&r[7]), (long long)finance__int(&r[8]),
        gm__finance_format_money(fee, cur, y2));
  }
  /* A total line per currency (amounts in its units, like its rows). */
  if (out->n_by_currency == 0 && used < cap)
    used +=
        (size_t)snprintf(csv + used, cap - used, "total,,,,,0.00,,,,0.00\n");
  for (size_t c = 0; c < out->n_by_currency && used < cap; c++)
    used += (size_t)snprintf(
        csv + used, cap - used, "total,,,,%s,%s,,,,%s\n",
        finance__q(call, out->by_currency[c]->currency, 3),
        gm__finance_format_money(out->by_currency[c]->funded_amount,
                                 out->by_currency[c]->currency, y1),
        gm__finance_format_money(out->by_currency[c]->fees,
                                 out->by_currency[c]->currency, y2));
  finance__single(out->by_currency, out->n_by_currency, &out->currency,
                  &out->funded_amount, &out->fees);
  out->csv = csv;
  out->rows = (int64_t)t.n;
  *reply = &out->base;
  return GM_OK;
}
