/*
 * The transitions after submission: a bank claims, the enterprise picks,
 * the bank holding it contacts, asks, approves, funds or declines, the
 * enterprise answers or withdraws; and the three deadlines: nobody picked
 * in time (the referral expires), the bank picked made no contact in time,
 * or made contact but neither funded nor declined in time (the miss is
 * recorded and the referral returns to the pool).  Each is
 * one referral.lua step, decided atomically on the referral's tag;
 * finance__after (index.c) does what follows.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "finance.h"

static gm_status finance__need_id(gm_call *call, const char *id) {
  if (gm__finance_valid_referral(id)) return GM_OK;
  return host->fail(call, GM_INVALID_ARGUMENT,
                    "\"%s\" is not a referral id (R and 8 digits, as "
                    "referral.create returns it)",
                    finance__q(call, id, 20));
}

/* The banks of r a transition concerns (for the queues and the events). */
static const char **finance__concerned(gm_call *call, const finance__ref *r,
                                       const char *bank, size_t *n) {
  int st = r->state;
  /* A change every eligible bank sees: the pool filled up, the referral
     was given to one bank, or it left the pool. */
  int all = !strcmp(r->transition, "pick") ||
            (!strcmp(r->transition, "claim") &&
             (int64_t)r->cl->n >= finance__fi(r, "maxc")) ||
            ((st == GM__FINANCE__STATE__STATE_WITHDRAWN ||
              st == GM__FINANCE__STATE__STATE_EXPIRED) &&
             (r->from == GM__FINANCE__STATE__STATE_OPEN ||
              r->from == GM__FINANCE__STATE__STATE_CLAIMED));
  if (all) return finance__all_banks(call, r, n);
  const char **one = host->alloc(call, sizeof *one);
  *one = bank && *bank ? bank : finance__f(r, "bank");
  *n = **one ? 1 : 0;
  return one;
}

/*
 * A bank's transition on referral `id`: the caller's bank (a dir.lua
 * step), the referral step (op, bank, more...), what follows; the reply is
 * the bank's view.
 */
static gm_status finance__by_bank(gm_call *call, const char *id, const char *op,
                                  size_t nmore, const char *const *more,
                                  ProtobufCMessage **reply) {
  const char *bank;
  const gm_value *mine;
  finance__ref r;
  gm_status st;
  if ((st = finance__need_id(call, id)) != GM_OK ||
      (st = finance__caller_bank(call, &bank, &mine)) != GM_OK)
    return st;
  const char *args[8] = {op, bank};
  for (size_t i = 0; i < nmore && i < 6; i++) args[2 + i] = more[i];
  if ((st = finance__referral_run(call, id, 2 + nmore, args, &r)) != GM_OK)
    return st;
  size_t n;
  const char **banks = finance__concerned(call, &r, bank, &n);
  /* The caller's own staff came with its bank: enough unless every
     eligible bank hears of it. */
  gm_value one = {.type = GM_VALUE_ARRAY, .n = 1, .items = mine};
  if ((st = finance__after(call, &r, banks, n,
                           n == 1 && !strcmp(banks[0], bank) ? &one : NULL)) !=
      GM_OK)
    return st;
  *reply = &finance__view(call, &r, finance__access(&r, bank, 0), bank)->base;
  return GM_OK;
}

/* The enterprise's transition: the referral step, what follows; the
   reply is its full view. */
static gm_status finance__by_enterprise(gm_call *call, const char *id,
                                        size_t nargs, const char *const *args,
                                        ProtobufCMessage **reply) {
  finance__ref r;
  gm_status st;
  if ((st = finance__need_id(call, id)) != GM_OK ||
      (st = finance__referral_run(call, id, nargs, args, &r)) != GM_OK)
    return st;
  size_t n;
  const char **banks = finance__concerned(call, &r, NULL, &n);
  if ((st = finance__after(call, &r, banks, n, NULL)) != GM_OK) return st;
  *reply =
      &finance__view(call, &r, GM__FINANCE__ACCESS__ACCESS_FULL, NULL)->base;
  return GM_OK;
}

gm_status finance__claim(gm_call *call, const ProtobufCMessage *req,
                         ProtobufCMessage **reply) {
  const Gm__Finance__ClaimRequest *in = (const Gm__Finance__ClaimRequest *)req;
  if (in->product[0] && !gm__finance_valid_product(in->product))
    return host->fail(call, GM_INVALID_ARGUMENT,
                      "product \"%s\" is not a product id; leave it empty "
                      "for your bank's first product that fits",
                      finance__q(call, in->product, 50));
  const char *more[] = {in->product};
  return finance__by_bank(call, in->id, "claim", 1, more, reply);
}

gm_status finance__pick(gm_call *call, const ProtobufCMessage *req,
                        ProtobufCMessage **reply) {
  const Gm__Finance__PickRequest *in = (const Gm__Finance__PickRequest *)req;
  if (!gm__finance_valid_bank(in->bank))
    return host->fail(call, GM_INVALID_ARGUMENT,
                      "bank \"%s\" is not a bank id; pick one of the "
                      "claimants gm finance show %s lists",
                      finance__q(call, in->bank, 40),
                      gm__finance_valid_referral(in->id) ? in->id : "ID");
  int64_t due = host->now_ms(host->market(call)) +
                finance__contact_days * GM_FINANCE_DAY_MS;
  int staffed;
  gm_status st;
  if ((st = finance__need_id(call, in->id)) != GM_OK ||
      (st = finance__bank_staffed(call, in->bank, &staffed)) != GM_OK)
    return st;
  const char *args[] = {"pick", in->bank, finance__num(call, due),
                        staffed ? "" : "unstaffed"};
  return finance__by_enterprise(call, in->id, 4, args, reply);
}

gm_status finance__contact(gm_call *call, const ProtobufCMessage *req,
                           ProtobufCMessage **reply) {
  const Gm__Finance__ContactRequest *in =
      (const Gm__Finance__ContactRequest *)req;
  gm_status st = finance__need_text(call, "note", in->note, 0, 1000, 1);
  if (st != GM_OK) return st;
  int64_t due = host->now_ms(host->market(call)) +
                finance__decision_days * GM_FINANCE_DAY_MS;
  const char *more[] = {in->note, finance__num(call, due)};
  return finance__by_bank(call, in->id, "contact", 2, more, reply);
}

gm_status finance__request_info(gm_call *call, const ProtobufCMessage *req,
                                ProtobufCMessage **reply) {
  const Gm__Finance__TextRequest *in = (const Gm__Finance__TextRequest *)req;
  gm_status st =
      finance__need_text(call, "question", in->text, 1, FINANCE_MAX_TEXT, 1);
  if (st != GM_OK) return st;
  const char *more[] = {in->text};
  return finance__by_bank(call, in->id, "ask", 1, more, reply);
}

gm_status finance__answer(gm_call *call, const ProtobufCMessage *req,
                          ProtobufCMessage **reply) {
  const Gm__Finance__TextRequest *in = (const Gm__Finance__TextRequest *)req;
  gm_status st =
      finance__need_text(call, "answer", in->text, 1, FINANCE_MAX_TEXT, 1);
  if (st != GM_OK) return st;
  const char *args[] = {"answer", in->text};
  return finance__by_enterprise(call, in->id, 2, args, reply);
}

/* The advertised rate ranges of the caller's bank's products,
   "id=min-max;...": approve checks the rate against the product the
   referral was claimed with, and fund checks an approval made before that
   check again; with `tenors` (not NULL) their tenor ranges too, in months,
   which both check the same way. */
static gm_status finance__rate_ranges(gm_call *call, const char **out,
                                      const char **tenors) {
  const char *bank;
  const gm_value *mine, *prods;
  gm_status st;
  if ((st = finance__caller_bank(call, &bank, &mine)) != GM_OK) return st;
  const char *pargs[] = {"products", bank};
  if ((st = finance__dir(call, 2, pargs, &prods)) != GM_OK) return st;
  char *ranges = host->sprintf(call, "%s", ""), *months = ranges;
  for (size_t i = 0; i < prods->n; i++) {
    const gm_value *row = finance__a(prods, i);
    Gm__Finance__Product *p = finance__product_unpack(
        call, finance__s(row, 0), finance__s(row, 1), finance__s(row, 2));
    if (!p) continue;
    ranges = host->sprintf(call, "%s%s=%d-%d;", ranges, p->id, p->rate_min_bp,
                           p->rate_max_bp);
    if (tenors)
      months = host->sprintf(call, "%s%s=%d-%d;", months, p->id,
                             p->tenor_min_months, p->tenor_max_months);
  }
  *out = ranges;
  if (tenors) *tenors = months;
  return GM_OK;
}

gm_status finance__approve(gm_call *call, const ProtobufCMessage *req,
                           ProtobufCMessage **reply) {
  const Gm__Finance__ApproveRequest *in =
      (const Gm__Finance__ApproveRequest *)req;
  if (in->amount < 1 || in->amount > GM_FINANCE_MAX_AMOUNT)
    return host->fail(call, GM_INVALID_ARGUMENT,
                      "the approved amount (amount, in hundredths of the "
                      "referral's currency: fen for CNY, 450000000 for "
                      "4500000.00 yuan) must be 1 to %lld, not %lld",
                      (long long)GM_FINANCE_MAX_AMOUNT, (long long)in->amount);
  if (in->rate_bp < 0 || in->rate_bp > GM_FINANCE_MAX_BP)
    return host->fail(call, GM_INVALID_ARGUMENT,
                      "the annual rate (rate_bp, in basis points: 345 for "
                      "3.45%%) must be 0 to %d, not %d",
                      GM_FINANCE_MAX_BP, in->rate_bp);
  if (in->tenor_months < 1 || in->tenor_months > GM_FINANCE_MAX_TENOR)
    return host->fail(call, GM_INVALID_ARGUMENT,
                      "the tenor (tenor_months) must be 1 to %d months, not "
                      "%d",
                      GM_FINANCE_MAX_TENOR, in->tenor_months);
  const char *ranges, *tenors;
  gm_status st;
  if ((st = finance__need_id(call, in->id)) != GM_OK ||
      (st = finance__rate_ranges(call, &ranges, &tenors)) != GM_OK)
    return st;
  const char *more[] = {finance__num(call, in->amount),
                        finance__num(call, in->rate_bp),
                        finance__num(call, in->tenor_months), ranges, tenors};
  return finance__by_bank(call, in->id, "approve", 5, more, reply);
}

gm_status finance__fund(gm_call *call, const ProtobufCMessage *req,
                        ProtobufCMessage **reply) {
  const Gm__Finance__FundRequest *in = (const Gm__Finance__FundRequest *)req;
  int64_t today = gm__finance_day_of(host->now_ms(host->market(call))), day;
  char date[16];
  if (in->amount < 1 || in->amount > GM_FINANCE_MAX_AMOUNT)
    return host->fail(call, GM_INVALID_ARGUMENT,
                      "the funded amount (amount, in hundredths of the "
                      "referral's currency: fen for CNY, 450000000 for "
                      "4500000.00 yuan) must be 1 to %lld, not %lld",
                      (long long)GM_FINANCE_MAX_AMOUNT, (long long)in->amount);
  if (!in->date[0])
    day = today;
  else if (gm__finance_parse_date(in->date, &day))
    return host->fail(call, GM_INVALID_ARGUMENT,
                      "the value date \"%s\" %s; give YYYY-MM-DD "
                      "(Asia/Shanghai) or leave it empty for today",
                      finance__q(call, in->date, 16),
                      gm__finance_date_why(in->date));
  if (day > today)
    return host->fail(call, GM_INVALID_ARGUMENT,
                      "the value date %s is after today (%s); record the loan "
                      "once it is paid out",
                      in->date, gm__finance_format_date(today, date));
  const char *ranges, *tenors;
  gm_status st;
  if ((st = finance__need_id(call, in->id)) != GM_OK ||
      (st = finance__rate_ranges(call, &ranges, &tenors)) != GM_OK)
    return st;
  const char *more[] = {
      finance__num(call, in->amount),
      host->sprintf(call, "%s", gm__finance_format_date(day, date)),
      finance__num(call, day), ranges, tenors};
  return finance__by_bank(call, in->id, "fund", 5, more, reply);
}

gm_status finance__decline(gm_call *call, const ProtobufCMessage *req,
                           ProtobufCMessage **reply) {
  const Gm__Finance__DeclineRequest *in =
      (const Gm__Finance__DeclineRequest *)req;
  if (in->reason <= GM__FINANCE__DECLINE_REASON__DECLINE_UNSPECIFIED ||
      in->reason > GM__FINANCE__DECLINE_REASON__DECLINE_OTHER)
    return host->fail(call, GM_INVALID_ARGUMENT,
                      "give a reason from the list: credit, collateral, "
                      "project, documents, policy, unreachable, other");
  gm_status st = finance__need_text(call, "the decline's text", in->text, 1,
                                    FINANCE_MAX_TEXT, 1);
  if (st != GM_OK) return st;
  const char *more[] = {finance__num(call, in->reason), in->text};
  return finance__by_bank(call, in->id, "decline", 2, more, reply);
}

gm_status finance__withdraw(gm_call *call, const ProtobufCMessage *req,
                            ProtobufCMessage **reply) {
  const Gm__Finance__TextRequest *in = (const Gm__Finance__TextRequest *)req;
  gm_status st = finance__need_text(call, "reason", in->text, 0, 1000, 1);
  if (st != GM_OK) return st;
  const char *args[] = {"withdraw", in->text};
  return finance__by_enterprise(call, in->id, 2, args, reply);
}

/* ---- deadlines ---- */

/* A deadline's referral step and what follows; a referral gone or
   refused means nothing is due (logged), so the deadline is done.  Redis
   unreachable, a failure, or Redis out of memory (RESOURCE_EXHAUSTED: the
   step did not run) leave it to fire again. */
static gm_status finance__deadline_step(gm_call *call, const gm_deadline *d,
                                        size_t nargs, const char *const *args) {
  finance__ref r;
  gm_status st = finance__referral_run(call, d->tag, nargs, args, &r);
  if (st == GM_UNAVAILABLE || st == GM_INTERNAL || st == GM_RESOURCE_EXHAUSTED)
    return st;
  if (st != GM_OK) {
    host->log(host->market(call), GM_LOG_WARN,
              "%s deadline of referral %s: refused (%d); dropped", d->kind,
              d->tag, (int)st);
    return GM_OK;
  }
  if (!strcmp(r.transition, "none")) return GM_OK;
  size_t n;
  const char **banks = finance__all_banks(call, &r, &n);
  if ((st = finance__after(call, &r, banks, n, NULL)) != GM_OK) return st;
  host->log(host->market(call), GM_LOG_INFO, "referral %s: %s (%s)", d->tag,
            r.transition, finance__f(&r, "er"));
  return GM_OK;
}

gm_status finance__on_pick(gm_call *call, const gm_deadline *d, void *arg) {
  const char *args[] = {"expire"};
  (void)arg;
  return finance__deadline_step(call, d, 1, args);
}

gm_status finance__on_contact(gm_call *call, const gm_deadline *d, void *arg) {
  gm__finance_calendar cal;
  int64_t today = gm__finance_day_of(host->now_ms(host->market(call))), due;
  gm_status st;
  (void)arg;
  if ((st = finance__calendar_get(call, today, today + FINANCE_HORIZON_DAYS,
                                  &cal)) != GM_OK ||
      (st = finance__pick_due(call, &cal, &due)) != GM_OK)
    return st;
  const char *args[] = {"miss", finance__num(call, due), d->kind};
  return finance__deadline_step(call, d, 3, args);
}

/*
 * The decision sweep (a timer, every [market.finance] archive_sweep_s on
 * each broker): referrals under review without a decision deadline (their
 * contact was made before this release, or by an older broker during a
 * rolling upgrade; the ledger's finance_referrals_undecided index holds
 * them) get one, decision_days from when the sweep finds them: their bank
 * was never told of one, so none of the time before counts against it.
 * 100 a round, going on from where the last round stopped.
 */
#define FINANCE_DSWEEP_ROWS 100
typedef struct finance__dsweep_rows {
  char id[FINANCE_DSWEEP_ROWS][16];
  size_t n;
} finance__dsweep_rows;

static int finance__dsweep_row(void *arg, size_t ncols, const gm_param *c) {
  finance__dsweep_rows *s = arg;
  if (ncols < 1 || c[0].type != GM_PARAM_TEXT || s->n >= FINANCE_DSWEEP_ROWS)
    return 0;
  snprintf(s->id[s->n++], sizeof s->id[0], "%s", c[0].s);
  return 0;
}

/*
 * Referrals the ledger has under review that Redis no longer holds (Redis
 * lost its data): the sweep finds them again every pass, so each is
 * warned about once per gmd (the timer's rounds do not overlap), the
 * first FINANCE_DSWEEP_GONE_MAX by name, then once that there are more.
 */
#define FINANCE_DSWEEP_GONE_MAX 1024
static char finance__gone[FINANCE_DSWEEP_GONE_MAX][16];
static size_t finance__ngone;
static int finance__gone_full;

/* Warns that referral `id` is gone from Redis, the first time only (past
   the table: once for all the rest), with what the operator should do. */
static void finance__gone_warn(gm_call *call, const char *id) {
  for (size_t i = 0; i < finance__ngone; i++)
    if (!strcmp(finance__gone[i], id)) return;
  if (finance__ngone < FINANCE_DSWEEP_GONE_MAX) {
    snprintf(finance__gone[finance__ngone++], sizeof finance__gone[0], "%s",
             id);
    host->log(host->market(call), GM_LOG_WARN,
              "decision sweep: referral %s is under review in the ledger but "
              "Redis has no record of it: Redis lost its data (restarted "
              "without persistence, or restored from an older backup), so no "
              "broker can act on it and it has no decision deadline. Restore "
              "Redis and the ledger from one backup (docs/operations.md, "
              "Restore); the ledger keeps its record meanwhile. Said once per "
              "referral until gmd restarts",
              id);
    return;
  }
  if (finance__gone_full) return;
  finance__gone_full = 1;
  host->log(host->market(call), GM_LOG_WARN,
            "decision sweep: more than %d referrals the ledger has under "
            "review are missing from Redis (the latest: %s); further ones are "
            "not named. Redis lost its data: see the warnings before this one",
            FINANCE_DSWEEP_GONE_MAX, id);
}

void finance__decision_sweep(gm_call *call, void *arg) {
  /* Where the last round stopped; a timer's rounds do not overlap. */
  static char after[16] = "";
  finance__dsweep_rows rows = {.n = 0};
  (void)arg;
  if (host->ledger_query(
          call,
          "SELECT id FROM finance_referrals WHERE state IN"
          " (4, 5, 6) AND decision_due_ms IS NULL AND id > ?1"
          " ORDER BY id LIMIT ?2",
          (gm_param[]){GM_TEXT(after), GM_INT(FINANCE_DSWEEP_ROWS)}, 2,
          finance__dsweep_row, &rows) != GM_OK)
    return;
  int set = 0;
  const char *left =
      finance__num(call, finance__decision_days * GM_FINANCE_DAY_MS);
  for (size_t i = 0; i < rows.n; i++) {
    const gm_value *v;
    const char *args[] = {"dstamp", left};
    if (!gm__finance_valid_referral(rows.id[i])) continue;
    gm_status st = finance__run(call, "referral", rows.id[i], 2, args, &v);
    if (st == GM_UNAVAILABLE || st == GM_RESOURCE_EXHAUSTED)
      return; /* Redis down or full: again from this row next round */
    if (st == GM_NOT_FOUND) {
      finance__gone_warn(call, rows.id[i]);
    } else if (st != GM_OK) {
      host->log(host->market(call), GM_LOG_WARN,
                "decision sweep: referral %s was not given a decision "
                "deadline (status %d; the script's error is logged above); "
                "the sweep goes on and tries it again next pass",
                rows.id[i], (int)st);
    } else if (!strcmp(finance__s(v, 0), "set"))
      set++;
    snprintf(after, sizeof after, "%s", rows.id[i]);
  }
  if (rows.n < FINANCE_DSWEEP_ROWS) after[0] = '\0'; /* from the start */
  if (set)
    host->log(host->market(call), GM_LOG_INFO,
              "decision sweep: %d referral(s) under review had no decision "
              "deadline (contact made before this release); each has %ld "
              "days from now",
              set, finance__decision_days);
}
