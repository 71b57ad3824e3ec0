/*
 * The directory (dir.lua): the Green Industry Guidance Catalogue and the
 * holiday calendar in force (the centre's, else the ones shipped in the
 * plugin), banks and the participants acting for them, and products.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <greenmarket/date.h>
#include <greenmarket/iso4217.h>
#include <greenmarket/participant.h>

#include "finance.h"

gm_status finance__dir(gm_call *call, size_t nargs, const char *const *args,
                       const gm_value **v) {
  return finance__run(call, "dir", FINANCE_DIR_TAG, nargs, args, v);
}

/* ---- the caller's bank ---- */

gm_status finance__caller_bank(gm_call *call, const char **bank,
                               const gm_value **members) {
  const char *me = host->participant(call);
  const char *args[] = {"caller", me};
  gm_status st = finance__dir(call, 2, args, members);
  if (st != GM_OK) return st;
  *bank = finance__s(*members, 0);
  if (!**bank)
    return host->fail(call, GM_PERMISSION_DENIED,
                      "participant %s acts for no bank; the centre links it "
                      "to its bank (gm finance bank link %s BANK) and it "
                      "accepts (gm finance bank join BANK)",
                      me, me);
  return GM_OK;
}

/* ---- the calendar in force ---- */

void finance__calendar_from(gm_call *call, const gm_value *v,
                            gm__finance_calendar *cal) {
  if (strcmp(finance__s(v, 0), "1") != 0) {
    *cal = finance__builtin_cal;
    return;
  }
  size_t n = v->n > 3 ? (v->n - 3) / 3 : 0;
  int64_t *hol = host->alloc(call, (n + 1) * sizeof *hol);
  int64_t *work = host->alloc(call, (n + 1) * sizeof *work);
  size_t nh = 0, nw = 0;
  /* ZRANGEBYSCORE gives them by day: the arrays come out sorted. */
  for (size_t i = 3; i + 2 < v->n; i += 3) {
    int64_t day = finance__i(v, i);
    if (finance__s(v, i + 1)[0] == 'w')
      work[nw++] = day;
    else
      hol[nh++] = day;
  }
  *cal = (gm__finance_calendar){hol, nh, work, nw};
}

gm_status finance__calendar_get(gm_call *call, int64_t from_day, int64_t to_day,
                                gm__finance_calendar *cal) {
  const char *args[] = {"calendar", finance__num(call, from_day),
                        finance__num(call, to_day)};
  const gm_value *v;
  gm_status st = finance__dir(call, 3, args, &v);
  if (st != GM_OK) return st;
  finance__calendar_from(call, v, cal);
  return GM_OK;
}

gm_status finance__pick_due(gm_call *call, const gm__finance_calendar *cal,
                            int64_t *due) {
  int64_t now = host->now_ms(host->market(call));
  if (gm__finance_working_due(cal, now, (int)finance__pick_days,
                              FINANCE_HORIZON_DAYS, due) == 0)
    return GM_OK;
  return host->fail(call, GM_FAILED_PRECONDITION,
                    "the calendar in force has fewer than %ld working days in "
                    "the next %d days, so no pick deadline can be set; the "
                    "centre loads a correct one (gm finance calendar load)",
                    finance__pick_days, FINANCE_HORIZON_DAYS);
}

/* ---- the catalogue ---- */

static int finance__entry_cmp(const void *a, const void *b) {
  return gm__finance_code_cmp((*(Gm__Finance__CatalogueEntry *const *)a)->code,
                              (*(Gm__Finance__CatalogueEntry *const *)b)->code);
}

/* Fields of the catalogue and calendar files hold no separator. */
static gm_status finance__plain(gm_call *call, const char *what,
                                const char *s) {
  if (strpbrk(s, ",\"\t\r\n"))
    return host->fail(call, GM_INVALID_ARGUMENT,
                      "%s has a comma, quote, tab or line break; use "
                      "full-width punctuation (，) in names",
                      what);
  return GM_OK;
}

typedef struct finance__load {
  gm_call *call;
  char *text; /* what dir.lua takes: "code\tparent\tname\tname_en\n"... */
  size_t used, cap;
} finance__load;

static int finance__load_entry(void *arg, const char *code, const char *parent,
                               const char *name, const char *name_en) {
  finance__load *l = arg;
  int n = snprintf(l->text + l->used, l->cap - l->used, "%s\t%s\t%s\t%s\n",
                   code, parent, name, name_en);
  if (n < 0 || (size_t)n >= l->cap - l->used) return 1;
  l->used += (size_t)n;
  return 0;
}

gm_status finance__catalogue_load(gm_call *call, const ProtobufCMessage *req,
                                  ProtobufCMessage **reply) {
  const Gm__Finance__LoadCatalogueRequest *in =
      (const Gm__Finance__LoadCatalogueRequest *)req;
  gm_status st;
  if (in->n_entries == 0)
    return host->fail(call, GM_INVALID_ARGUMENT,
                      "the catalogue has no entries; give its classes and "
                      "sub-items (gm finance catalogue load FILE)");
  if ((st = finance__need_text(call, "source", in->source, 0, 200, 0)) != GM_OK)
    return st;
  /* The same rules as the file shipped in the plugin: written as that file
     and read by its parser. */
  size_t cap = 64;
  for (size_t i = 0; i < in->n_entries; i++) {
    const Gm__Finance__CatalogueEntry *e = in->entries[i];
    const char *what[] = {"code", "parent", "name", "name_en"};
    const char *val[] = {e->code, e->parent, e->name, e->name_en};
    for (int k = 0; k < 4; k++) {
      char *label = host->sprintf(call, "entry %zu's %s", i + 1, what[k]);
      if ((st = finance__need_text(call, label, val[k], 0, FINANCE_MAX_NAME,
                                   0)) != GM_OK ||
          (st = finance__plain(call, label, val[k])) != GM_OK)
        return st;
      cap += strlen(val[k]) + 1;
    }
  }
  finance__load csv = {call, host->alloc(call, cap + 32), 0, cap + 32};
  finance__load_entry(&csv, "code", "parent", "name", "name_en");
  for (size_t i = 0; i < in->n_entries; i++) {
    const Gm__Finance__CatalogueEntry *e = in->entries[i];
    finance__load_entry(&csv, e->code, e->parent, e->name, e->name_en);
  }
  for (char *p = csv.text; (p = strchr(p, '\t'));) *p = ',';
  finance__load tabs = {call, host->alloc(call, cap), 0, cap};
  char err[256];
  if (gm__finance_catalogue_parse(csv.text, finance__load_entry, &tabs, err,
                                  sizeof err) < 0)
    return host->fail(call, GM_INVALID_ARGUMENT,
                      "the catalogue is refused: %s (line 1 is the header, "
                      "entry N is line N+1)",
                      err);
  const char *args[] = {"catalogue_load", in->source, tabs.text};
  const gm_value *v;
  if ((st = finance__dir(call, 3, args, &v)) != GM_OK) return st;
  return finance__catalogue_list(call, NULL, reply);
}

gm_status finance__catalogue_list(gm_call *call, const ProtobufCMessage *req,
                                  ProtobufCMessage **reply) {
  const char *args[] = {"catalogue"};
  const gm_value *v;
  gm_status st;
  (void)req;
  if ((st = finance__dir(call, 1, args, &v)) != GM_OK) return st;
  Gm__Finance__Catalogue *out = host->alloc(call, sizeof *out);
  gm__finance__catalogue__init(out);
  int loaded = strcmp(finance__s(v, 0), "1") == 0;
  size_t n = loaded ? (v->n > 3 ? v->n - 3 : 0) : finance__nbuiltin;
  out->entries = host->alloc(call, (n + 1) * sizeof *out->entries);
  for (size_t i = 0; i < n; i++) {
    Gm__Finance__CatalogueEntry *e = host->alloc(call, sizeof *e);
    gm__finance__catalogue_entry__init(e);
    if (loaded) {
      const gm_value *row = finance__a(v, i + 3);
      e->code = (char *)finance__s(row, 0);
      e->parent = (char *)finance__s(row, 1);
      e->name = (char *)finance__s(row, 2);
      e->name_en = (char *)finance__s(row, 3);
    } else {
      e->code = finance__builtin[i].code;
      e->parent = finance__builtin[i].parent;
      e->name = finance__builtin[i].name;
      e->name_en = finance__builtin[i].name_en;
    }
    out->entries[out->n_entries++] = e;
  }
  qsort(out->entries, out->n_entries, sizeof *out->entries, finance__entry_cmp);
  out->builtin = !loaded;
  out->source = loaded ? (char *)finance__s(v, 1)
                       : "catalogue.csv shipped in the finance plugin";
  out->loaded_ms = loaded ? finance__i(v, 2) : 0;
  *reply = &out->base;
  return GM_OK;
}

/* ---- loading and listing the calendar ---- */

static int finance__load_day(void *arg, int64_t day, char kind,
                             const char *note) {
  finance__load *l = arg;
  int n = snprintf(l->text + l->used, l->cap - l->used, "%lld\t%c\t%s\n",
                   (long long)day, kind, note);
  if (n < 0 || (size_t)n >= l->cap - l->used) return 1;
  l->used += (size_t)n;
  return 0;
}

gm_status finance__calendar_load(gm_call *call, const ProtobufCMessage *req,
                                 ProtobufCMessage **reply) {
  const Gm__Finance__LoadCalendarRequest *in =
      (const Gm__Finance__LoadCalendarRequest *)req;
  gm_status st;
  int64_t from = INT64_MAX, to = INT64_MIN, day;
  if (in->n_days == 0 || in->n_days > 4000)
    return host->fail(call, GM_INVALID_ARGUMENT,
                      "give 1 to 4000 days (holidays and worked weekend "
                      "days), not %zu",
                      in->n_days);
  if ((st = finance__need_text(call, "source", in->source, 0, 200, 0)) != GM_OK)
    return st;
  size_t cap = 64;
  for (size_t i = 0; i < in->n_days; i++) {
    const Gm__Finance__CalendarDay *d = in->days[i];
    char *label = host->sprintf(call, "day %zu's note", i + 1);
    if ((st = finance__need_text(call, label, d->note, 0, 100, 0)) != GM_OK ||
        (st = finance__plain(call, label, d->note)) != GM_OK)
      return st;
    if (gm__finance_parse_date(d->date, &day))
      return host->fail(call, GM_INVALID_ARGUMENT,
                        "day %zu: \"%s\" is not a date YYYY-MM-DD", i + 1,
                        finance__q(call, d->date, 16));
    if (d->working && d->statutory)
      return host->fail(call, GM_INVALID_ARGUMENT,
                        "day %zu (%s): a statutory day is a holiday, not a "
                        "worked day; set working or statutory, not both",
                        i + 1, d->date);
    if (day < from) from = day;
    if (day > to) to = day;
    cap += strlen(d->date) + strlen(d->note) + 16;
  }
  finance__load csv = {call, host->alloc(call, cap), 0, cap};
  csv.used += (size_t)snprintf(csv.text, cap, "date,kind,note\n");
  for (size_t i = 0; i < in->n_days; i++)
    csv.used += (size_t)snprintf(csv.text + csv.used, cap - csv.used,
                                 "%s,%s,%s\n", in->days[i]->date,
                                 in->days[i]->working     ? "workday"
                                 : in->days[i]->statutory ? "statutory"
                                                          : "holiday",
                                 in->days[i]->note);
  finance__load tabs = {call, host->alloc(call, cap), 0, cap};
  char err[256];
  if (gm__finance_calendar_parse(csv.text, finance__load_day, &tabs, err,
                                 sizeof err) < 0)
    return host->fail(call, GM_INVALID_ARGUMENT,
                      "the calendar is refused: %s (line 1 is the header, day "
                      "N is line N+1)",
                      err);
  const char *args[] = {"calendar_load", in->source, finance__num(call, from),
                        finance__num(call, to), tabs.text};
  const gm_value *v;
  if ((st = finance__dir(call, 5, args, &v)) != GM_OK) return st;
  char a[16], b[16];
  Gm__Finance__CalendarRequest list = GM__FINANCE__CALENDAR_REQUEST__INIT;
  list.from = (char *)gm__finance_format_date(from, a);
  /* The reply lists at most a listing's span: a longer file is stored
     whole, its days up to 3660 after the first shown (calendar list
     shows the rest). */
  if (to - from > FINANCE_REPORT_MAX_DAYS) to = from + FINANCE_REPORT_MAX_DAYS;
  list.to = (char *)gm__finance_format_date(to, b);
  return finance__calendar_list(call, &list.base, reply);
}

/* A note for each year of from..to whose working days the calendar in
   force counts without the State Council's arrangement: the shipped
   calendar's years with only the law's holidays or none, a loaded
   calendar's years with no day in the range (it may have the year's days
   elsewhere, hence "if"). */
static void finance__calendar_notes(gm_call *call, int64_t from, int64_t to,
                                    Gm__Finance__Calendar *out) {
  int first = gm_date_year(from), last = gm_date_year(to);
  out->notes = host->alloc(call, (size_t)(last - first + 1) * sizeof(char *));
  for (int y = first; y <= last; y++) {
    if (!out->builtin) {
      int any = 0, statutory = 0;
      char prefix[8];
      snprintf(prefix, sizeof prefix, "%04d-", y);
      for (size_t i = 0; i < out->n_days; i++)
        if (strncmp(out->days[i]->date, prefix, 5) == 0) {
          any = 1;
          statutory |= out->days[i]->statutory;
        }
      if (statutory)
        out->notes[out->n_notes++] = host->sprintf(
            call,
            "%d: the calendar in force has only the holidays the law fixes "
            "for %d (kind statutory), not the State Council's arrangement; "
            "load one that has it (gm finance calendar load FILE)",
            y, y);
      else if (!any)
        out->notes[out->n_notes++] = host->sprintf(
            call,
            "%d: the calendar in force has no day of %d in this range; if it "
            "lacks the State Council's arrangement for %d, load one that has "
            "it (gm finance calendar load FILE)",
            y, y, y);
      continue;
    }
    char k = finance__cal_year(y);
    if (k == 'a') continue;
    out->notes[out->n_notes++] =
        k == 's' ? host->sprintf(
                       call,
                       "%d: the shipped calendar in force has only the "
                       "holidays the law fixes (全国年节及纪念日放假办法 art. "
                       "2), not the State Council's arrangement for %d (days "
                       "off in lieu, bridge days, worked weekends); load a "
                       "calendar that has it (gm finance calendar load FILE; "
                       "it replaces the shipped one, so keep the shipped "
                       "days in the file)",
                       y, y)
                 : host->sprintf(
                       call,
                       "%d: the shipped calendar in force has no holidays "
                       "for %d, so its working days are Monday to Friday; "
                       "load a calendar with the State Council's "
                       "arrangement for %d (gm finance calendar load FILE; "
                       "it replaces the shipped one, so keep the shipped "
                       "days in the file)",
                       y, y, y);
  }
}

gm_status finance__calendar_list(gm_call *call, const ProtobufCMessage *req,
                                 ProtobufCMessage **reply) {
  const Gm__Finance__CalendarRequest *in =
      (const Gm__Finance__CalendarRequest *)req;
  int64_t from = gm__finance_day_of(host->now_ms(host->market(call))), to;
  if (in->from[0] && gm__finance_parse_date(in->from, &from))
    return host->fail(call, GM_INVALID_ARGUMENT, "from \"%s\" %s",
                      finance__q(call, in->from, 16),
                      gm__finance_date_why(in->from));
  to = from + 366;
  if (in->to[0] && gm__finance_parse_date(in->to, &to))
    return host->fail(call, GM_INVALID_ARGUMENT, "to \"%s\" %s",
                      finance__q(call, in->to, 16),
                      gm__finance_date_why(in->to));
  if (to < from)
    return host->fail(call, GM_INVALID_ARGUMENT, "to %s is before from %s",
                      in->to, in->from[0] ? in->from : "(today)");
  if (to - from > FINANCE_REPORT_MAX_DAYS)
    return host->fail(call, GM_INVALID_ARGUMENT,
                      "ask for at most %d days at a time",
                      FINANCE_REPORT_MAX_DAYS);
  /* The whole years of the range: whether the calendar in force has a
     year is a question of the year, not of the range's days (a December
     with no holiday is still a loaded year); the days outside the range
     are dropped after the notes. */
  int y1, y2, mo, dd;
  gm_date_civil(from, &y1, &mo, &dd);
  gm_date_civil(to, &y2, &mo, &dd);
  int64_t year_from = gm_date_from_civil(y1, 1, 1),
          year_to = gm_date_from_civil(y2, 12, 31);
  const char *args[] = {"calendar", finance__num(call, year_from),
                        finance__num(call, year_to)};
  const gm_value *v;
  gm_status st = finance__dir(call, 3, args, &v);
  if (st != GM_OK) return st;
  Gm__Finance__Calendar *out = host->alloc(call, sizeof *out);
  gm__finance__calendar__init(out);
  int loaded = strcmp(finance__s(v, 0), "1") == 0;
  size_t cap = loaded ? v->n / 3 + 1
                      : finance__builtin_cal.nholidays +
                            finance__builtin_cal.nworkdays + 1;
  out->days = host->alloc(call, cap * sizeof *out->days);
  char date[16];
  if (loaded) {
    for (size_t i = 3; i + 2 < v->n; i += 3) {
      Gm__Finance__CalendarDay *d = host->alloc(call, sizeof *d);
      gm__finance__calendar_day__init(d);
      d->date = host->sprintf(call, "%s",
                              gm__finance_format_date(finance__i(v, i), date));
      d->working = finance__s(v, i + 1)[0] == 'w';
      d->statutory = finance__s(v, i + 1)[0] == 's';
      d->note = (char *)finance__s(v, i + 2);
      out->days[out->n_days++] = d;
    }
  } else {
    /* The shipped days in range, in date order (no notes kept). */
    const gm__finance_calendar *c = &finance__builtin_cal;
    for (size_t h = 0, w = 0; h < c->nholidays || w < c->nworkdays;) {
      int work = h == c->nholidays ||
                 (w < c->nworkdays && c->workdays[w] < c->holidays[h]);
      int64_t day = work ? c->workdays[w++] : c->holidays[h++];
      if (day < from || day > to) continue;
      Gm__Finance__CalendarDay *d = host->alloc(call, sizeof *d);
      gm__finance__calendar_day__init(d);
      d->date = host->sprintf(call, "%s", gm__finance_format_date(day, date));
      d->working = work;
      d->statutory = !work && finance__cal_year(gm_date_year(day)) == 's';
      out->days[out->n_days++] = d;
    }
  }
  out->builtin = !loaded;
  out->source = loaded ? (char *)finance__s(v, 1)
                       : "calendar.csv shipped in the finance plugin";
  out->loaded_ms = loaded ? finance__i(v, 2) : 0;
  finance__calendar_notes(call, from, to, out);
  char lo[16], hi[16];
  gm__finance_format_date(from, lo);
  gm__finance_format_date(to, hi);
  size_t kept = 0;
  for (size_t i = 0; i < out->n_days; i++)
    if (strcmp(out->days[i]->date, lo) >= 0 &&
        strcmp(out->days[i]->date, hi) <= 0)
      out->days[kept++] = out->days[i];
  out->n_days = kept;
  *reply = &out->base;
  return GM_OK;
}

/* ---- banks ---- */

/* A Bank from {id, created, name, {member...}, {who, offered, expires, by,
   ...}}: its staff, pending offers and the staff who no longer hold the
   bank role for the centre only. */
static Gm__Finance__Bank *finance__bank(gm_call *call, const gm_value *b,
                                        int staff) {
  Gm__Finance__Bank *out = host->alloc(call, sizeof *out);
  gm__finance__bank__init(out);
  out->id = (char *)finance__s(b, 0);
  out->created_ms = finance__i(b, 1);
  out->name = (char *)finance__s(b, 2);
  const gm_value *m = finance__a(b, 3), *o = finance__a(b, 4);
  if (!staff) return out;
  out->members = host->alloc(call, (m->n + 1) * sizeof *out->members);
  out->inactive = host->alloc(call, (m->n + 1) * sizeof *out->inactive);
  for (size_t i = 0; i < m->n; i++) {
    const char *who = finance__s(m, i);
    out->members[out->n_members++] = (char *)who;
    /* 0: registered without the role (-1, the registry unreadable, is not
       said to be either). */
    if (GM_HOST_HAS(host, participant_has_role) &&
        host->participant_has_role(call, who, "bank") == 0)
      out->inactive[out->n_inactive++] = (char *)who;
  }
  out->no_active_staff = out->n_members == out->n_inactive;
  out->offers = host->alloc(call, (o->n / 4 + 1) * sizeof *out->offers);
  for (size_t i = 0; i + 3 < o->n; i += 4) {
    Gm__Finance__LinkOffer *x = host->alloc(call, sizeof *x);
    gm__finance__link_offer__init(x);
    x->participant = (char *)finance__s(o, i);
    x->offered_ms = finance__i(o, i + 1);
    x->expires_ms = finance__i(o, i + 2);
    x->by = (char *)finance__s(o, i + 3);
    out->offers[out->n_offers++] = x;
  }
  return out;
}

gm_status finance__bank_create(gm_call *call, const ProtobufCMessage *req,
                               ProtobufCMessage **reply) {
  const Gm__Finance__CreateBankRequest *in =
      (const Gm__Finance__CreateBankRequest *)req;
  const Gm__Finance__Bank *b = in->bank;
  gm_status st;
  if (!b || !gm__finance_valid_bank(b->id))
    return host->fail(call, GM_INVALID_ARGUMENT,
                      "bank id \"%s\" is not 1-32 of a-z 0-9 - (starting "
                      "with a letter or digit), e.g. icbc-huzhou",
                      finance__q(call, b ? b->id : "", 40));
  if ((st = finance__need_text(call, "bank name", b->name, 1, FINANCE_MAX_NAME,
                               0)) != GM_OK)
    return st;
  const char *args[] = {"bank", b->id, b->name};
  const gm_value *v;
  if ((st = finance__dir(call, 3, args, &v)) != GM_OK) return st;
  *reply = &finance__bank(call, finance__a(v, 0), 1)->base;
  return GM_OK;
}

gm_status finance__bank_staffed(gm_call *call, const char *bank, int *staffed) {
  const char *args[] = {"members", bank};
  const gm_value *v;
  gm_status st = finance__dir(call, 2, args, &v);
  if (st != GM_OK) return st;
  /* {{bank, member...}}: a bank with no row (unknown) has nobody either;
     the referral step says it did not claim. */
  const gm_value *row = finance__a(v, 0);
  *staffed = 0;
  for (size_t i = 1; i < row->n && !*staffed; i++)
    /* -1 (the registry unreadable) is not said to be inactive. */
    *staffed =
        !GM_HOST_HAS(host, participant_has_role) ||
        host->participant_has_role(call, finance__s(row, i), "bank") != 0;
  return GM_OK;
}

/* After an unlink: whether `b` (the bank left) still has a member holding
   the bank role; if not, the referrals it holds or has claimed, read from
   its queue a page at a time (each page one bounded script call), whose
   deadlines run on with nobody to act on them: the centre is told, so it
   links someone else before a contact deadline is missed against the bank
   (finance.md, Staff changes). */
#define FINANCE_UNSTAFFED_MAX 100
static gm_status finance__unstaffed(gm_call *call, Gm__Finance__Bank *b) {
  if (b->n_members > b->n_inactive) return GM_OK;
  const char *tag = host->sprintf(call, "b:%s", b->id);
  b->unstaffed =
      host->alloc(call, FINANCE_UNSTAFFED_MAX * sizeof *b->unstaffed);
  for (int64_t off = 0, total = 1; off < total; off += FINANCE_QUEUE_MAX) {
    const char *args[] = {"list", finance__num(call, off),
                          finance__num(call, FINANCE_QUEUE_MAX)};
    const gm_value *v;
    gm_status st = finance__run(call, "queue", tag, 3, args, &v);
    if (st != GM_OK) return st;
    total = finance__i(v, 0);
    if (v->n < 2) break;
    for (size_t i = 1; i < v->n; i++) {
      const gm_value *row = finance__a(v, i);
      const char *id = finance__s(row, 0), *entry = finance__s(row, 1);
      if (!*id || (strncmp(entry, "held|", 5) && strncmp(entry, "claimed|", 8)))
        continue;
      if (b->n_unstaffed < FINANCE_UNSTAFFED_MAX) {
        const char *rel;
        Gm__Finance__QueueEntry *e = host->alloc(call, sizeof *e);
        gm__finance__queue_entry__init(e);
        e->referral = finance__queue_view(call, id, entry, &rel);
        e->relation = (char *)rel;
        b->unstaffed[b->n_unstaffed++] = e;
      }
      b->unstaffed_total++;
    }
  }
  return GM_OK;
}

/* The centre links a participant to a bank (an offer, or "" to unlink);
   the participant accepts with its own call (participant "" or its id),
   holding the bank role: a plugin cannot read another participant's
   roles, so the acceptance is what proves them. */
gm_status finance__bank_link(gm_call *call, const ProtobufCMessage *req,
                             ProtobufCMessage **reply) {
  const Gm__Finance__LinkRequest *in = (const Gm__Finance__LinkRequest *)req;
  const char *who = in->participant;
  int centre = finance__is_centre(call);
  gm_status st;
  if (!centre) {
    const char *me = host->participant(call);
    if (!in->bank[0] || in->withdraw)
      return host->fail(call, GM_PERMISSION_DENIED,
                        "only the centre unlinks a bank's staff or withdraws "
                        "a link offer");
    if (who[0] && strcmp(who, me))
      return host->fail(call, GM_PERMISSION_DENIED,
                        "only the centre links %s to a bank; you accept your "
                        "own link with gm finance bank join BANK",
                        finance__q(call, who, 70));
    who = me;
  } else if (!who[0]) {
    return host->fail(call, GM_INVALID_ARGUMENT,
                      "name the participant to link (gm finance bank link "
                      "PARTICIPANT BANK); the staff member then accepts with "
                      "its own id (gm finance bank join BANK)");
  }
  if (!gm_participant_id_valid(who))
    return host->fail(call, GM_INVALID_ARGUMENT,
                      "participant \"%s\" must be " GM_PARTICIPANT_ID_RULE,
                      finance__q(call, who, 70));
  if (in->bank[0] && !in->withdraw && !gm__finance_valid_bank(in->bank))
    return host->fail(call, GM_INVALID_ARGUMENT,
                      "bank id \"%s\" is not a bank id (gm finance bank list "
                      "lists them); \"\" unlinks",
                      finance__q(call, in->bank, 40));
  const char *args[] = {"link", who, in->bank,
                        !centre        ? "accept"
                        : in->withdraw ? "withdraw"
                                       : "offer"};
  const gm_value *v;
  if ((st = finance__dir(call, 4, args, &v)) != GM_OK) return st;
  if (v->n == 0 || (centre && !in->bank[0] && !in->withdraw)) {
    /* Unlinked: an empty bank (what a client before `left` shows as
       unlinked) carrying the bank it left, if any. */
    Gm__Finance__Bank *out = host->alloc(call, sizeof *out);
    gm__finance__bank__init(out);
    if (v->n > 0) {
      out->left = finance__bank(call, finance__a(v, 0), 1);
      /* The unlink is written: a failed read of the queue, which serves
         only the warning, must not answer an error for it (a client would
         think nothing changed).  The reply says the list is unknown. */
      if (finance__unstaffed(call, out->left) != GM_OK) {
        Gm__Finance__Bank *l = out->left;
        l->n_unstaffed = 0;
        l->unstaffed_total = 0;
        l->unstaffed_unread = host->sprintf(
            call,
            "the unlink was made, but bank %s's queue could not be read "
            "afterwards (Redis did not answer it; the gmd log says why), so "
            "the referrals it holds or has claimed, whose deadlines run on "
            "with nobody to act on them, are not listed: list them with gm "
            "finance queue --bank %s",
            l->id, l->id);
        host->log(host->market(call), GM_LOG_WARN,
                  "bank.link: %s was unlinked from bank %s, which has no "
                  "active staff now; its queue could not be read for the "
                  "reply (the unlink stands)",
                  who, l->id);
      }
    }
    *reply = &out->base;
    return GM_OK;
  }
  /* The staff member who joined sees its bank's staff, not the offers. */
  Gm__Finance__Bank *out = finance__bank(call, finance__a(v, 0), 1);
  if (!centre) out->n_offers = out->n_inactive = 0;
  *reply = &out->base;
  return GM_OK;
}

/* The offer's deadline: removes it once expired (dir.lua). */
gm_status finance__on_offer(gm_call *call, const gm_deadline *d, void *arg) {
  const char *args[] = {"offer_expire", d->id};
  const gm_value *v;
  (void)arg;
  return finance__run(call, "dir", FINANCE_DIR_TAG, 2, args, &v);
}

/* Whether a 'banks' listing holds an offer an older release stored (the
   bank alone: dir.lua lists it with expires 0). */
static int finance__old_offers(const gm_value *v) {
  for (size_t i = 0; i < v->n; i++) {
    const gm_value *o = finance__a(finance__a(v, i), 4);
    for (size_t k = 2; k < o->n; k += 4)
      if (finance__i(o, k) == 0) return 1;
  }
  return 0;
}

gm_status finance__bank_list(gm_call *call, const ProtobufCMessage *req,
                             ProtobufCMessage **reply) {
  const char *args[] = {"banks"};
  const gm_value *v;
  gm_status st;
  (void)req;
  if ((st = finance__dir(call, 1, args, &v)) != GM_OK) return st;
  /* An offer an older release stored (the bank alone, expires 0 here) is
     pending: re-stamped now, so it expires link_offer_days from now by its
     deadline.  A refused write (Redis over maxmemory) leaves the listing
     read above, the offer shown pending without an expiry. */
  if (finance__old_offers(v)) {
    const char *again[] = {"offers_restamp"};
    const gm_value *w;
    if (finance__dir(call, 1, again, &w) == GM_OK) v = w;
  }
  Gm__Finance__BankList *out = host->alloc(call, sizeof *out);
  gm__finance__bank_list__init(out);
  out->banks = host->alloc(call, (v->n + 1) * sizeof *out->banks);
  /* Who works for which bank is the centre's business. */
  int staff = finance__is_centre(call);
  for (size_t i = 0; i < v->n; i++)
    out->banks[out->n_banks++] = finance__bank(call, finance__a(v, i), staff);
  *reply = &out->base;
  return GM_OK;
}

/* ---- products ---- */

static Gm__Finance__Product *finance__product_row(gm_call *call,
                                                  const gm_value *row) {
  Gm__Finance__Product *p = finance__product_unpack(
      call, finance__s(row, 0), finance__s(row, 1), finance__s(row, 2));
  if (!p) return NULL;
  p->retired = finance__s(row, 3)[0] != '\0';
  p->created_ms = finance__i(row, 4);
  return p;
}

static gm_status finance__product_reply(gm_call *call, const gm_value *v,
                                        ProtobufCMessage **reply) {
  Gm__Finance__Product *p = finance__product_row(call, finance__a(v, 0));
  if (!p)
    return host->fail(call, GM_INTERNAL,
                      "the product record has an unknown shape");
  *reply = &p->base;
  return GM_OK;
}

gm_status finance__product_create(gm_call *call, const ProtobufCMessage *req,
                                  ProtobufCMessage **reply) {
  const Gm__Finance__CreateProductRequest *in =
      (const Gm__Finance__CreateProductRequest *)req;
  Gm__Finance__Product p;
  gm_status st;
  if (!in->product)
    return host->fail(call, GM_INVALID_ARGUMENT, "give the product");
  p = *in->product;
  if (!gm__finance_valid_product(p.id))
    return host->fail(call, GM_INVALID_ARGUMENT,
                      "product id \"%s\" is not 1-48 of letters, digits, . "
                      "_ -",
                      finance__q(call, p.id, 50));
  if (!gm__finance_valid_bank(p.bank))
    return host->fail(call, GM_INVALID_ARGUMENT,
                      "bank \"%s\" is not a bank id (gm finance bank list "
                      "lists them)",
                      finance__q(call, p.bank, 40));
  if ((st = finance__need_text(call, "product name", p.name, 1,
                               FINANCE_MAX_NAME, 0)) != GM_OK)
    return st;
  if (!p.currency[0]) p.currency = "CNY";
  if (!gm_iso4217_money(p.currency))
    return host->fail(call, GM_INVALID_ARGUMENT,
                      "currency \"%s\" is not an ISO 4217 currency in use "
                      "(such as CNY or USD; not a metal, a unit of account, "
                      "XTS or XXX)",
                      finance__q(call, p.currency, 8));
  char y1[40], y2[40], y3[40], err[200];
  if (p.amount_min < 0 || p.amount_max < p.amount_min ||
      p.amount_max > GM_FINANCE_MAX_AMOUNT || p.amount_max == 0)
    return host->fail(
        call, GM_INVALID_ARGUMENT,
        "the amount range %s-%s %s must have 0 <= MIN <= MAX <= %s and MAX "
        "above 0",
        gm__finance_format_money(p.amount_min, p.currency, y1),
        gm__finance_format_money(p.amount_max, p.currency, y2), p.currency,
        gm__finance_format_money(GM_FINANCE_MAX_AMOUNT, p.currency, y3));
  if (gm__finance_money_check("the smallest amount", p.amount_min, p.currency,
                              err, sizeof err) ||
      gm__finance_money_check("the largest amount", p.amount_max, p.currency,
                              err, sizeof err))
    return host->fail(call, GM_INVALID_ARGUMENT, "%s", err);
  if (p.tenor_min_months < 1 || p.tenor_max_months < p.tenor_min_months ||
      p.tenor_max_months > GM_FINANCE_MAX_TENOR)
    return host->fail(call, GM_INVALID_ARGUMENT,
                      "the tenor range must be 1 <= min <= max <= %d months, "
                      "not %d-%d",
                      GM_FINANCE_MAX_TENOR, p.tenor_min_months,
                      p.tenor_max_months);
  char r1[16], r2[16], r3[16];
  if (p.rate_min_bp < 0 || p.rate_max_bp < p.rate_min_bp ||
      p.rate_max_bp > GM_FINANCE_MAX_BP)
    return host->fail(call, GM_INVALID_ARGUMENT,
                      "the rate range %s-%s %% must have 0 <= MIN <= MAX <= "
                      "%s %%",
                      gm__finance_format_pct(p.rate_min_bp, r1),
                      gm__finance_format_pct(p.rate_max_bp, r2),
                      gm__finance_format_pct(GM_FINANCE_MAX_BP, r3));
  if (p.fee_bp < 0 || p.fee_bp > GM_FINANCE_MAX_FEE_BP)
    return host->fail(call, GM_INVALID_ARGUMENT,
                      "the referral fee must be 0 to %s %% of the funded "
                      "amount (lenders pay about 0.5-1.5 %%), not %s %%; give "
                      "it in percent: 0.8 for 0.80 %%",
                      gm__finance_format_pct(GM_FINANCE_MAX_FEE_BP, r3),
                      gm__finance_format_pct(p.fee_bp, r1));
  if (p.n_classes < 1 || p.n_classes > 16)
    return host->fail(call, GM_INVALID_ARGUMENT,
                      "give 1 to 16 eligible catalogue classes (codes like 3 "
                      "or 3.2), not %zu",
                      p.n_classes);
  if (p.n_regions > 64)
    return host->fail(call, GM_INVALID_ARGUMENT,
                      "give at most 64 regions (none: every region)");
  char tops[40] = "", codes[16 * 12 + 1] = "", missing[16 * 14 + 1] = "";
  for (size_t i = 0; i < p.n_classes; i++) {
    const char *c = p.classes[i];
    if (!gm__finance_valid_code(c))
      return host->fail(call, GM_INVALID_ARGUMENT,
                        "class \"%s\" is not a catalogue code like 3 or "
                        "3.2",
                        finance__q(call, c, 16));
    char top[3] = {gm__finance_top(c), ',', '\0'};
    if (!strchr(tops, top[0])) strcat(tops, top);
    strcat(codes, c);
    strcat(codes, ",");
    if (!finance__builtin_find(c)) {
      if (missing[0]) strcat(missing, ", ");
      strcat(missing, c);
    }
  }
  for (size_t i = 0; i < p.n_regions; i++)
    if (strcmp(p.regions[i], "000000") &&
        !gm__finance_valid_region(p.regions[i]))
      return host->fail(call, GM_INVALID_ARGUMENT,
                        "region \"%s\" %s; give e.g. 330000 a province, "
                        "330500 a city, 000000 all",
                        finance__q(call, p.regions[i], 16),
                        gm__finance_region_why(p.regions[i]));
  const char *args[] = {
      "product", p.id, p.bank, finance__product_pack(call, &p),
      p.name,    tops, codes,  missing};
  const gm_value *v;
  if ((st = finance__dir(call, 8, args, &v)) != GM_OK) return st;
  return finance__product_reply(call, v, reply);
}

gm_status finance__product_retire(gm_call *call, const ProtobufCMessage *req,
                                  ProtobufCMessage **reply) {
  const Gm__Finance__ProductRequest *in =
      (const Gm__Finance__ProductRequest *)req;
  gm_status st;
  if (!gm__finance_valid_product(in->id))
    return host->fail(call, GM_INVALID_ARGUMENT,
                      "product id \"%s\" is not a product id (gm finance "
                      "products lists them)",
                      finance__q(call, in->id, 50));
  const char *args[] = {"retire", in->id};
  const gm_value *v;
  if ((st = finance__dir(call, 2, args, &v)) != GM_OK) return st;
  return finance__product_reply(call, v, reply);
}

gm_status finance__product_list(gm_call *call, const ProtobufCMessage *req,
                                ProtobufCMessage **reply) {
  const Gm__Finance__ProductsRequest *in =
      (const Gm__Finance__ProductsRequest *)req;
  gm_status st;
  if (in->bank[0] && !gm__finance_valid_bank(in->bank))
    return host->fail(call, GM_INVALID_ARGUMENT, "bank \"%s\" is not a bank id",
                      finance__q(call, in->bank, 40));
  const char *args[] = {"products", in->bank};
  const gm_value *v;
  if ((st = finance__dir(call, 2, args, &v)) != GM_OK) return st;
  Gm__Finance__ProductList *out = host->alloc(call, sizeof *out);
  gm__finance__product_list__init(out);
  out->products = host->alloc(call, (v->n + 1) * sizeof *out->products);
  for (size_t i = 0; i < v->n; i++) {
    Gm__Finance__Product *p = finance__product_row(call, finance__a(v, i));
    if (p) out->products[out->n_products++] = p;
  }
  *reply = &out->base;
  return GM_OK;
}
