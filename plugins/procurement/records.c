/*
 * What is read from the ledger (settled a few ms after the scripts that
 * emitted it): the list of tenders, the opened bids with their texts and
 * hashes, and the evaluation sheet with its ranking.  The ranking is the
 * tie-break rule itself, written once in SQL below and once as the member
 * order of the ranking sets (evaluate.c): evaluated price (or total score,
 * highest first), then the lower bid price, then the draw.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "procurement.h"

static int pr__one_int(void *arg, size_t ncols, const gm_param *cols) {
  if (ncols > 0 && cols[0].type == GM_PARAM_INT) *(int64_t *)arg = cols[0].i;
  return 1;
}

static int pr__one_text(void *arg, size_t ncols, const gm_param *cols) {
  if (ncols > 0 && cols[0].type == GM_PARAM_TEXT && cols[0].s)
    *(char **)arg = (char *)cols[0].s;
  return 1;
}

gm_status pr__ledger_int(gm_call *call, const char *sql, const gm_param *p,
                         size_t np, int64_t *out) {
  *out = -1;
  return host->ledger_query(call, sql, p, np, pr__one_int, out);
}

static const char *pr__t(const gm_param *c) {
  return c->type == GM_PARAM_TEXT && c->s ? c->s : "";
}

/* ---- tenders ---- */

typedef struct pr__acc {
  gm_call *call;
  void **items;
  size_t n, cap;
  const void *ctx;
} pr__acc;

static void pr__acc_add(pr__acc *a, void *item) {
  if (a->n == a->cap) {
    size_t cap = a->cap ? a->cap * 2 : 64;
    void **items = host->alloc(a->call, cap * sizeof *items);
    if (a->n) memcpy(items, a->items, a->n * sizeof *items);
    a->items = items;
    a->cap = cap;
  }
  a->items[a->n++] = item;
}

static int pr__tender_row(void *arg, size_t ncols, const gm_param *c) {
  pr__acc *a = arg;
  if (ncols < 7) return 1;
  Gm__Procurement__TenderSummary *s = host->alloc(a->call, sizeof *s);
  gm__procurement__tender_summary__init(s);
  s->id = (char *)pr__t(&c[0]);
  s->title = (char *)pr__t(&c[1]);
  s->state = (char *)pr__t(&c[2]);
  s->deadline_ms = c[3].i;
  s->budget = c[4].i;
  s->currency = (char *)pr__t(&c[5]);
  s->agency = (char *)pr__t(&c[6]);
  pr__acc_add(a, s);
  return 0;
}

static gm_status pr__page_args(gm_call *call, int32_t limit_in,
                               const char *cursor, int32_t def, int32_t max,
                               int64_t *limit, int64_t *offset) {
  char *end;
  *limit = limit_in ? limit_in : def;
  if (*limit < 1 || *limit > max)
    return host->fail(call, GM_INVALID_ARGUMENT, "limit must be 1-%d", max);
  *offset = cursor && *cursor ? strtoll(cursor, &end, 10) : 0;
  /* No list is 10^12 rows long; a larger cursor would overflow the next
     one's offset + limit. */
  if (*offset < 0 || *offset > INT64_C(1000000000000) ||
      (cursor && *cursor && *end))
    return host->fail(call, GM_INVALID_ARGUMENT,
                      "cursor \"%.20s\" is not one a list returned; start "
                      "again without it",
                      cursor);
  return GM_OK;
}

gm_status pr__tender_list(gm_call *call, const ProtobufCMessage *req,
                          ProtobufCMessage **reply) {
  const Gm__Procurement__TenderListRequest *in = (const void *)req;
  int64_t limit = 0, offset = 0;
  gm_status st =
      pr__page_args(call, in->limit, in->cursor, 50, 500, &limit, &offset);
  if (st != GM_OK) return st;
  pr__acc a = {.call = call};
  st = host->ledger_query(
      call,
      "SELECT tender_id, title, state, deadline_ms, budget, currency, lead"
      " FROM procurement_tenders WHERE state <> 'draft' AND published_ms > 0"
      " ORDER BY published_ms DESC, tender_id LIMIT ?1 OFFSET ?2",
      (gm_param[]){GM_INT(limit + 1), GM_INT(offset)}, 2, pr__tender_row, &a);
  if (st != GM_OK) return st;
  Gm__Procurement__TenderList *out = host->alloc(call, sizeof *out);
  gm__procurement__tender_list__init(out);
  out->n_tenders = a.n > (size_t)limit ? (size_t)limit : a.n;
  out->tenders = (Gm__Procurement__TenderSummary **)a.items;
  out->next_cursor = a.n > (size_t)limit ? pr__num(call, offset + limit) : "";
  *reply = &out->base;
  return GM_OK;
}

/* ---- opened bids ---- */

static int pr__bid_row(void *arg, size_t ncols, const gm_param *c) {
  pr__acc *a = arg;
  if (ncols < 7) return 1;
  Gm__Procurement__Bid *b = host->alloc(a->call, sizeof *b);
  gm__procurement__bid__init(b);
  b->tender_id = (char *)a->ctx;
  b->supplier = (char *)pr__t(&c[0]);
  b->state = (char *)pr__t(&c[1]);
  b->version = (int32_t)c[2].i;
  b->hash = (char *)pr__t(&c[3]);
  b->submitted_ms = c[4].i;
  b->text = (char *)pr__t(&c[5]);
  b->total = c[6].i;
  b->no_price = ncols > 7 && c[7].i;
  pr__acc_add(a, b);
  return 0;
}

gm_status pr__bid_list(gm_call *call, const ProtobufCMessage *req,
                       ProtobufCMessage **reply) {
  const Gm__Procurement__BidListRequest *in = (const void *)req;
  const char *tag;
  int64_t limit = 0, offset = 0, opened = 0;
  gm_status st;
  if ((st = pr__tender_tag(call, in->tender_id, &tag)) != GM_OK) return st;
  if ((st = pr__page_args(call, in->limit, in->cursor, 100, 1000, &limit,
                          &offset)) != GM_OK)
    return st;
  if ((st = pr__ledger_int(call,
                           "SELECT count(*) FROM procurement_rounds"
                           " WHERE tender_id = ?1",
                           (gm_param[]){GM_TEXT(in->tender_id)}, 1, &opened)) !=
      GM_OK)
    return st;
  if (opened <= 0) {
    /* Redis may hold an evaluation the settler has not written yet: say
       so, retryably, rather than call an opened tender sealed. */
    Gm__Procurement__TenderView *view;
    st = pr__tender_read(call, in->tender_id, &view);
    if (st == GM_OK && view->tender->round == 1 &&
        strcmp(view->tender->state, "opening") == 0)
      return host->fail(call, GM_UNAVAILABLE,
                        "tender %s is being opened and evaluated now; its "
                        "bids are listed once that is done: retry in a "
                        "moment",
                        in->tender_id);
    if (st == GM_OK && view->tender->round > 0)
      return host->fail(call, GM_UNAVAILABLE,
                        "tender %s was opened and evaluated (round %d) but "
                        "its opened bids are not in the ledger yet: "
                        "settlement is behind (see docs/operations.md); "
                        "retry in a moment",
                        in->tender_id, (int)view->tender->round);
    if (st != GM_OK && st != GM_FAILED_PRECONDITION) return st;
    if (st == GM_OK && !pr__may_see(call, view->tender))
      return host->fail(call, GM_NOT_FOUND,
                        "no tender %s; gm procurement tenders lists the "
                        "published ones",
                        in->tender_id);
    if (st == GM_OK && strcmp(view->tender->state, "cancelled") == 0)
      return host->fail(call, GM_FAILED_PRECONDITION,
                        "tender %s was cancelled before its opening (%s); "
                        "its bids were never opened and are not published",
                        in->tender_id, view->tender->reason);
    return host->fail(call, GM_FAILED_PRECONDITION,
                      "the bids on tender %s are sealed until its opening "
                      "(or it has not been evaluated yet); its hashes are "
                      "published then",
                      in->tender_id);
  }
  pr__acc a = {.call = call, .ctx = in->tender_id};
  st = host->ledger_query(
      call,
      "SELECT b.supplier, b.state, b.version, b.hash, b.submitted_ms,"
      " b.opened_text, coalesce(s.bid_price, 0), " PR_SQL_NO_PRICE("s")
      " FROM procurement_bids b"
      " LEFT JOIN procurement_sheet s ON s.tender_id = b.tender_id AND"
      " s.supplier = b.supplier AND s.round = (SELECT max(round) FROM"
      " procurement_rounds WHERE tender_id = ?1)"
      " WHERE b.tender_id = ?1 ORDER BY b.supplier LIMIT ?2 OFFSET ?3",
      (gm_param[]){GM_TEXT(in->tender_id), GM_INT(limit + 1), GM_INT(offset)},
      3, pr__bid_row, &a);
  if (st != GM_OK) return st;
  Gm__Procurement__BidList *out = host->alloc(call, sizeof *out);
  gm__procurement__bid_list__init(out);
  out->n_bids = a.n > (size_t)limit ? (size_t)limit : a.n;
  out->bids = (Gm__Procurement__Bid **)a.items;
  out->next_cursor = a.n > (size_t)limit ? pr__num(call, offset + limit) : "";
  *reply = &out->base;
  return GM_OK;
}

/* ---- the evaluation sheet ---- */

typedef struct pr__round {
  int found;
  int64_t method, evaluated_ms, lowest, ranked_ms, round;
  const char *seed;
} pr__round;

static int pr__round_row(void *arg, size_t ncols, const gm_param *c) {
  pr__round *r = arg;
  if (ncols < 6) return 1;
  r->found = 1;
  r->round = c[0].i;
  r->method = c[1].i;
  r->seed = pr__t(&c[2]);
  r->evaluated_ms = c[3].i;
  r->lowest = c[4].i;
  r->ranked_ms = c[5].i;
  return 1;
}

static int pr__sheet_row(void *arg, size_t ncols, const gm_param *c) {
  pr__acc *a = arg;
  if (ncols < 16) return 1;
  Gm__Procurement__SheetRow *r = host->alloc(a->call, sizeof *r);
  gm__procurement__sheet_row__init(r);
  r->supplier = (char *)pr__t(&c[0]);
  r->status = c[1].i ? "valid" : "disqualified";
  r->reasons = (char *)pr__t(&c[2]);
  r->bid_price = c[3].i;
  r->green_deduction = c[4].i;
  r->sme_deduction = c[5].i;
  r->evaluated_price = c[6].i;
  r->price_score = (int32_t)c[7].i;
  r->tech_score = (int32_t)c[8].i;
  r->total_score = (int32_t)c[9].i;
  r->draw = (char *)pr__t(&c[10]);
  r->checks = (char *)pr__t(&c[11]);
  r->hash = (char *)pr__t(&c[12]);
  r->sme = (char *)pr_sme_name((int)c[13].i);
  r->rank = (int32_t)c[14].i;
  r->no_price = c[15].i != 0;
  pr__acc_add(a, r);
  return 0;
}

/* Whether the ledger has caught up with the evaluation Redis holds.  The
   sheet is read from the ledger; between an evaluation (or a ranking) and
   its settlement the ledger lacks the round, has an older latest round, or
   has the round unranked.  Each is refused as UNAVAILABLE (retry) rather
   than answered with "no evaluation yet" or a stale sheet.  Redis's round
   R is evaluated unless the tender is opening it (a re-evaluation), and
   ranked unless the committee is still scoring it or the tender ended
   unranked; a tender cannot be cancelled while opening.  An archived tender has
   left Redis after settling: the ledger is then complete and answers alone. */
static gm_status pr__sheet_settled(gm_call *call, const char *id, int32_t want,
                                   const pr__round *r) {
  Gm__Procurement__TenderView *view;
  /* A failed read (archived, or Redis away) leaves its message in the
     call, unused: the dispatcher sends it only with a failing status. */
  if (pr__tender_read(call, id, &view) != GM_OK) return GM_OK;
  const Gm__Procurement__Tender *t = view->tender;
  int opening = strcmp(t->state, "opening") == 0;
  /* Evaluated rounds (in 64 bits: a damaged round may be INT32_MIN). */
  int64_t done = opening ? (int64_t)t->round - 1 : t->round;
  int64_t round = want ? want : done;
  if (round < 1 || round > done) return GM_OK; /* nothing to wait for */
  int behind = !r->found || r->round < round;
  /* Ranked in Redis, not yet in the ledger: a scoring round past
     "scoring", unless the tender ended without a ranking (unsuccessful: no
     valid bid; cancelled, maybe while scoring), which nothing would ever
     settle.  (A tender cancelled after its ranking may then show the sheet
     unranked until the ranking settles, a moment.) */
  if (!behind && r->method == 1 && r->ranked_ms == 0 && round == t->round &&
      strcmp(t->state, "scoring") != 0 && strcmp(t->state, "cancelled") != 0 &&
      strcmp(t->state, "unsuccessful") != 0)
    behind = 1;
  if (!behind) return GM_OK;
  return host->fail(call, GM_UNAVAILABLE,
                    "tender %s: evaluation round %d is done but its sheet is "
                    "not in the ledger yet: settlement is behind (see "
                    "docs/operations.md); retry in a moment",
                    id, (int)round);
}

/* The ranking order of each award method (the tie-break rule). */
#define PR_ORDER_LOWEST "evaluated, bid_price, draw, supplier"
#define PR_ORDER_SCORING "total_score DESC, bid_price, draw, supplier"

gm_status pr__evaluation_sheet(gm_call *call, const ProtobufCMessage *req,
                               ProtobufCMessage **reply) {
  const Gm__Procurement__SheetRequest *in = (const void *)req;
  const char *tag;
  int64_t limit = in->limit ? in->limit : 100, rows;
  gm_status st;
  if ((st = pr__tender_tag(call, in->tender_id, &tag)) != GM_OK) return st;
  if (limit < 1 || limit > 1000 || in->offset < 0 || in->round < 0)
    return host->fail(call, GM_INVALID_ARGUMENT,
                      "limit must be 1-1000, offset and round 0 or more");
  pr__round r = {0};
  st = host->ledger_query(
      call,
      "SELECT round, method, seed, evaluated_ms, lowest, ranked_ms"
      " FROM procurement_rounds WHERE tender_id = ?1 AND (?2 = 0 OR round ="
      " ?2) ORDER BY round DESC LIMIT 1",
      (gm_param[]){GM_TEXT(in->tender_id), GM_INT(in->round)}, 2, pr__round_row,
      &r);
  if (st != GM_OK) return st;
  if ((st = pr__sheet_settled(call, in->tender_id, in->round, &r)) != GM_OK)
    return st;
  if (!r.found && in->round) {
    int64_t last = 0;
    if ((st = pr__ledger_int(call,
                             "SELECT coalesce(max(round), 0) FROM"
                             " procurement_rounds WHERE tender_id = ?1",
                             (gm_param[]){GM_TEXT(in->tender_id)}, 1, &last)) !=
        GM_OK)
      return st;
    if (last > 0)
      return host->fail(call, GM_NOT_FOUND,
                        "tender %s has no evaluation round %d: its rounds "
                        "are %s; ask for one of them",
                        in->tender_id, in->round,
                        last == 1
                            ? "1 only"
                            : host->sprintf(call, "1-%lld", (long long)last));
  }
  if (!r.found)
    return host->fail(
        call, GM_FAILED_PRECONDITION,
        "tender %s has no evaluation%s yet: its bids are "
        "evaluated at the opening, after the bid deadline",
        in->tender_id,
        in->round ? host->sprintf(call, " round %d", in->round) : "");
  int scoring = r.method == 1, ranked = r.ranked_ms > 0;
  const char *order = scoring && ranked ? PR_ORDER_SCORING : PR_ORDER_LOWEST;
  Gm__Procurement__Sheet *out = host->alloc(call, sizeof *out);
  gm__procurement__sheet__init(out);
  out->tender_id = in->tender_id;
  out->round = (int32_t)r.round;
  out->method = scoring ? "comprehensive scoring" : "lowest evaluated price";
  out->seed = (char *)r.seed;
  out->evaluated_ms = r.evaluated_ms;
  out->lowest_price = r.lowest;
  out->tie_rule =
      scoring
          ? "ranked by total score, highest first (price score = lowest "
            "valid evaluated price / this bid's evaluated price x the price "
            "weight, plus the committee's mean score); equal totals by the "
            "lower bid price, then by the draw: BLAKE2b-64 keyed with the "
            "seed over the bid's hash, lower first"
          : "ranked by evaluated price, lowest first; equal ones by the lower "
            "bid price, then by the draw: BLAKE2b-64 keyed with the seed "
            "over the bid's hash, lower first";
  if (scoring && !ranked)
    out->tie_rule = host->sprintf(call,
                                  "%s (not ranked yet: the committee "
                                  "is scoring)",
                                  out->tie_rule);
  if ((st =
           pr__ledger_int(call,
                          "SELECT count(*) FROM procurement_sheet WHERE"
                          " tender_id = ?1 AND round = ?2",
                          (gm_param[]){GM_TEXT(in->tender_id), GM_INT(r.round)},
                          2, &rows)) != GM_OK)
    return st;
  out->total_rows = (int32_t)rows;
  char *sql = host->sprintf(
      call,
      "SELECT supplier, valid, reasons, bid_price, green, sme, evaluated,"
      " price_score, tech_score, total_score, draw, checks, hash, sme_class,"
      " CASE WHEN valid = 1 AND ?3 THEN ROW_NUMBER() OVER (PARTITION BY"
      " valid ORDER BY %s) ELSE 0 END, %s FROM procurement_sheet"
      " WHERE tender_id = ?1 AND round = ?2 ORDER BY valid DESC, %s"
      " LIMIT ?4 OFFSET ?5",
      order, PR_SQL_NO_PRICE("procurement_sheet"), order);
  pr__acc a = {.call = call};
  st = host->ledger_query(call, sql,
                          (gm_param[]){GM_TEXT(in->tender_id), GM_INT(r.round),
                                       GM_INT(!scoring || ranked),
                                       GM_INT(limit), GM_INT(in->offset)},
                          5, pr__sheet_row, &a);
  if (st != GM_OK) return st;
  out->rows = (Gm__Procurement__SheetRow **)a.items;
  out->n_rows = a.n;
  out->currency = "";
  st = host->ledger_query(call,
                          "SELECT currency FROM procurement_tenders WHERE"
                          " tender_id = ?1",
                          (gm_param[]){GM_TEXT(in->tender_id)}, 1, pr__one_text,
                          &out->currency);
  if (st != GM_OK) return st;
  *reply = &out->base;
  return GM_OK;
}

/* ---- challenges ---- */

static int pr__challenge_row(void *arg, size_t ncols, const gm_param *c) {
  pr__acc *a = arg;
  if (ncols < 12) return 1;
  Gm__Procurement__Challenge *ch = host->alloc(a->call, sizeof *ch);
  gm__procurement__challenge__init(ch);
  ch->tender_id = (char *)a->ctx;
  ch->id = (char *)pr__t(&c[0]);
  ch->award = (int32_t)c[1].i;
  ch->challenger = (char *)pr__t(&c[2]);
  ch->text = (char *)pr__t(&c[3]);
  ch->status = (char *)pr__t(&c[4]);
  ch->remedy = (Gm__Procurement__Remedy)c[5].i;
  ch->answer = (char *)pr__t(&c[6]);
  ch->lodged_ms = c[7].i;
  ch->answered_ms = c[8].i;
  /* The answer period and the complaint period after it (GP Law arts. 53
     and 55), recorded at the lodging; 0 for challenges settled before
     ledger migration 3 recorded them. */
  ch->answer_due_ms = c[9].i;
  ch->overdue_ms = c[10].i;
  ch->complaint_until_ms = c[11].i;
  ch->overdue = pr_answer_overdue(ch->answer_due_ms, ch->answered_ms,
                                  host->now_ms(host->market(a->call)));
  pr__acc_add(a, ch);
  return 0;
}

static int pr__lead_row(void *arg, size_t ncols, const gm_param *c) {
  if (ncols > 0) snprintf(arg, 80, "%s", pr__t(&c[0]));
  return 1;
}

/* From the ledger (so an archived tender's too): the lead agency reads
   every challenge, anyone else the ones it lodged. */
gm_status pr__challenge_list(gm_call *call, const ProtobufCMessage *req,
                             ProtobufCMessage **reply) {
  const Gm__Procurement__ChallengeListRequest *in = (const void *)req;
  const char *tag, *me = host->participant(call);
  int64_t limit = 0, offset = 0;
  gm_status st;
  if ((st = pr__tender_tag(call, in->tender_id, &tag)) != GM_OK) return st;
  if ((st = pr__page_args(call, in->limit, in->cursor, 100, 1000, &limit,
                          &offset)) != GM_OK)
    return st;
  char lead[80] = "";
  st = host->ledger_query(
      call,
      "SELECT lead FROM procurement_tenders WHERE tender_id = ?1"
      " AND (published_ms > 0 OR lead = ?2)",
      (gm_param[]){GM_TEXT(in->tender_id), GM_TEXT(me)}, 2, pr__lead_row, lead);
  if (st != GM_OK) return st;
  if (!lead[0]) {
    /* Live but not settled yet (a few ms after publish), or none. */
    Gm__Procurement__TenderView *view;
    if ((st = pr__tender_read(call, in->tender_id, &view)) != GM_OK) return st;
    if (!pr__may_see(call, view->tender))
      return host->fail(call, GM_NOT_FOUND,
                        "no tender %s; gm procurement tenders lists the "
                        "published ones",
                        in->tender_id);
    if (view->tender->published_ms <= 0)
      return host->fail(call, GM_FAILED_PRECONDITION,
                        "tender %s was never published, so it has no "
                        "challenges",
                        in->tender_id);
    return host->fail(call, GM_UNAVAILABLE,
                      "tender %s is not in the ledger yet: settlement is "
                      "behind (see docs/operations.md); retry in a moment",
                      in->tender_id);
  }
  int all = strcmp(lead, me) == 0;
  pr__acc a = {.call = call, .ctx = in->tender_id};
  st = host->ledger_query(
      call,
      "SELECT challenge_id, award, challenger, text, status, remedy, answer,"
      " lodged_ms, answered_ms, answer_due_ms, overdue_ms,"
      " complaint_until_ms FROM procurement_challenges"
      " WHERE tender_id = ?1 AND (?2 OR challenger = ?3)"
      " ORDER BY lodged_ms, challenge_id LIMIT ?4 OFFSET ?5",
      (gm_param[]){GM_TEXT(in->tender_id), GM_INT(all), GM_TEXT(me),
                   GM_INT(limit + 1), GM_INT(offset)},
      5, pr__challenge_row, &a);
  if (st != GM_OK) return st;
  Gm__Procurement__ChallengeList *out = host->alloc(call, sizeof *out);
  gm__procurement__challenge_list__init(out);
  out->n_challenges = a.n > (size_t)limit ? (size_t)limit : a.n;
  out->challenges = (Gm__Procurement__Challenge **)a.items;
  out->next_cursor = a.n > (size_t)limit ? pr__num(call, offset + limit) : "";
  *reply = &out->base;
  return GM_OK;
}
