/*
 * Ended tenders leave Redis.  A tender that reached a state it never
 * leaves (complete, unsuccessful, cancelled) sets its "archive" deadline
 * archive_after_days later (lib.lua `ended`; its sealed bids, never to be
 * opened, go at once).  When it fires, and once the ledger holds that final
 * state, every key of the tender is removed in bounded steps (tender.lua
 * `archive`), and the ledger marks it archived.  From then on tender.get
 * answers from the ledger, the bid list, the evaluation sheet and the OCDS
 * export read the ledger as always, and what only Redis held (a bid before
 * the opening, an award's live record) answers that the tender is archived
 * and where its record is.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "procurement.h"

/* Keys one archive step may remove, and steps per firing: a firing stays
   short beside its claim (the steps store no reply: GM_SCRIPT_ALLOW_OOM);
   past it the deadline is set again to carry on as a new call. */
#define PR_ARCHIVE_BUDGET 500
#define PR_ARCHIVE_STEPS 8
/* How long to wait for the settler when the ledger is behind Redis. */
#define PR_ARCHIVE_RETRY_MS 60000

/* Fires the archive again at `due`: tender.lua `later`, which runs over
   maxmemory (the deadline being fired is there: moving it adds nothing),
   where the host's deadline_set is refused. */
static gm_status pr__later(gm_call *call, const char *tag, const char *id,
                           int64_t due) {
  const gm_value *v;
  const char *args[] = {"later", id, pr__num(call, due)};
  return pr__run(call, "tender", tag, 3, args, &v);
}

typedef struct pr__ledger_state {
  int found;
  const char *state, *lead;
  int64_t updated, archived, published;
} pr__ledger_state;

static int pr__state_row(void *arg, size_t ncols, const gm_param *c) {
  pr__ledger_state *s = arg;
  if (ncols < 5) return 1;
  s->found = 1;
  s->state = c[0].type == GM_PARAM_TEXT && c[0].s ? c[0].s : "";
  s->updated = c[1].i;
  s->archived = c[2].i;
  s->lead = c[3].type == GM_PARAM_TEXT && c[3].s ? c[3].s : "";
  s->published = c[4].i;
  return 1;
}

static gm_status pr__ledger_state_read(gm_call *call, const char *id,
                                       pr__ledger_state *s) {
  memset(s, 0, sizeof *s);
  return host->ledger_query(
      call,
      "SELECT state, updated_ms, archived_ms, lead, published_ms FROM"
      " procurement_tenders WHERE tender_id = ?1",
      (gm_param[]){GM_TEXT(id)}, 1, pr__state_row, s);
}

/* A tender never published is its lead agency's only (pr__may_see; the
   ledger does not keep its joint buyers apart): to anyone else an archived
   one is none, and its id only taken.  A deadline's call (no participant)
   sees it. */
static int pr__ledger_hidden(gm_call *call, const pr__ledger_state *l) {
  const char *me = host->participant(call);
  return l->found && l->published <= 0 && me && me[0] &&
         strcmp(me, l->lead) != 0 && !host->has_role(call, "admin");
}

gm_status pr__on_archive(gm_call *call, const gm_deadline *d, void *arg) {
  (void)arg;
  const char *id = d->id, *tag = d->tag;
  const char *iargs[] = {"arcinfo", id};
  const gm_value *v;
  gm_status st = pr__run(call, "tender", tag, 2, iargs, &v);
  if (st != GM_OK) return st;
  if (v->n == 0) return GM_OK; /* archived already */
  const char *state = pr__s(v, 0), *upd = pr__s(v, 1);
  if (!pr__s(v, 2)[0]) {
    /* The ledger must hold the final state before Redis forgets it: the
       tender's events settle in order, so its last change settled means
       everything before it did. */
    pr__ledger_state l;
    if ((st = pr__ledger_state_read(call, id, &l)) != GM_OK) return st;
    if (!l.found || strcmp(l.state, state) != 0 ||
        l.updated != strtoll(upd, NULL, 10)) {
      host->log(host->market(call), GM_LOG_INFO,
                "tender %s: the ledger does not hold its final state (%s) "
                "yet; archiving it in %d s",
                id, state, PR_ARCHIVE_RETRY_MS / 1000);
      return pr__later(call, tag, id,
                       host->now_ms(host->market(call)) + PR_ARCHIVE_RETRY_MS);
    }
  }
  const char *budget = pr__num(call, PR_ARCHIVE_BUDGET);
  for (int step = 0;; step++) {
    if (step == PR_ARCHIVE_STEPS) return pr__later(call, tag, id, d->due_ms);
    const char *args[] = {"archive", id, state, upd, budget};
    if ((st = pr__run(call, "tender", tag, 5, args, &v)) != GM_OK) return st;
    const char *r = pr__s(v, 0);
    if (!strcmp(r, "done")) break;
    if (!strcmp(r, "changed")) {
      /* Not final after all (a bug elsewhere): keep everything. */
      host->log(host->market(call), GM_LOG_WARN,
                "tender %s is %s, not the %s it ended in; not archived", id,
                pr__s(v, 1), state);
      return GM_OK;
    }
  }
  host->log(host->market(call), GM_LOG_INFO,
            "tender %s (%s) archived: its keys left Redis, its record is in "
            "the ledger",
            id, state);
  return GM_OK;
}

static int pr__ended(const char *state) {
  return !strcmp(state, "complete") || !strcmp(state, "unsuccessful") ||
         !strcmp(state, "cancelled");
}

/* gone: Redis said it has no live tender `id` (its keys left, or are
   leaving): the ledger's final state is then enough, an archive being
   under way until the settler reaches its entry (it began only once the
   ledger held that state).  Otherwise only the ledger's archived_ms says
   so: a live ended tender's own "not found" (no such bid) stays. */
gm_status pr__archived_fail(gm_call *call, const char *id, int gone) {
  pr__ledger_state l;
  if (pr__ledger_state_read(call, id, &l) != GM_OK || !l.found ||
      (l.archived <= 0 && !(gone && pr__ended(l.state))) ||
      pr__ledger_hidden(call, &l))
    return GM_NOT_FOUND;
  char when[32];
  return host->fail(
      call, GM_FAILED_PRECONDITION,
      "tender %s ended %s and %s%s%s: its live record left the broker; its "
      "record is in the ledger: gm procurement export %s (OCDS), sheet "
      "and open (its bids)",
      id, l.state, l.archived > 0 ? "was archived on " : "is being archived",
      l.archived > 0 ? pr_datetime(l.archived, when) : "",
      l.archived > 0 ? " (Asia/Shanghai)" : "", id);
}

gm_status pr__id_free(gm_call *call, const char *id) {
  pr__ledger_state l;
  gm_status st = pr__ledger_state_read(call, id, &l);
  if (st != GM_OK) return st;
  if (!l.found || !pr__ended(l.state)) return GM_OK;
  if (pr__ledger_hidden(call, &l))
    return host->fail(call, GM_ALREADY_EXISTS,
                      "tender id %s is taken; choose another id", id);
  char when[32];
  return host->fail(
      call, GM_FAILED_PRECONDITION,
      "tender id %s is of a tender that ended (%s)%s%s; its record stays in "
      "the ledger under that id (gm procurement export %s): choose another "
      "id",
      id, l.state, l.archived > 0 ? " and was archived on " : "",
      l.archived > 0 ? pr_datetime(l.archived, when) : "", id);
}

/* ---- tender.get of an archived tender, from the ledger ---- */

typedef struct pr__arch_row {
  gm_call *call;
  Gm__Procurement__Tender *t;
  Gm__Procurement__TenderView *view;
  size_t cap;
} pr__arch_row;

static int pr__arch_tender_row(void *arg, size_t ncols, const gm_param *c) {
  pr__arch_row *x = arg;
  if (ncols < 13) return 1;
  const char *def = c[3].type == GM_PARAM_TEXT && c[3].s ? c[3].s : "";
  Gm__Procurement__Tender *t = pr__def_decode(x->call, def);
  if (!t) {
    t = host->alloc(x->call, sizeof *t);
    gm__procurement__tender__init(t);
  }
  t->id = (char *)c[0].s;
  t->agency = (char *)c[1].s;
  t->state = (char *)c[2].s;
  t->version = (int32_t)c[4].i;
  t->published_ms = c[5].i;
  t->deadline_ms = c[6].i;
  t->round = (int32_t)c[7].i;
  t->award_number = (int32_t)c[8].i;
  t->bids = (int32_t)c[9].i;
  t->reason = (char *)(c[10].s ? c[10].s : "");
  t->updated_ms = c[11].i;
  x->view->archived_ms = c[12].i;
  x->t = t;
  return 1;
}

static int pr__arch_amendment_row(void *arg, size_t ncols, const gm_param *c) {
  pr__arch_row *x = arg;
  if (ncols < 4) return 1;
  Gm__Procurement__TenderView *view = x->view;
  if (view->n_amendments == x->cap) {
    size_t cap = x->cap ? 2 * x->cap : 8;
    Gm__Procurement__Amendment **a = host->alloc(x->call, cap * sizeof *a);
    if (view->n_amendments)
      memcpy(a, view->amendments, view->n_amendments * sizeof *a);
    view->amendments = a;
    x->cap = cap;
  }
  Gm__Procurement__Amendment *a = host->alloc(x->call, sizeof *a);
  gm__procurement__amendment__init(a);
  a->version = (int32_t)c[0].i;
  a->note = (char *)(c[2].s ? c[2].s : "");
  a->time_ms = c[3].i;
  /* fields: ",a,b," */
  char *f = host->sprintf(x->call, "%s", c[1].s ? c[1].s : "");
  size_t nf = 0;
  for (char *p = f; *p; p++) nf += *p == ',';
  a->fields = host->alloc(x->call, (nf + 1) * sizeof *a->fields);
  char *save = NULL;
  for (char *tok = strtok_r(f, ",", &save); tok;
       tok = strtok_r(NULL, ",", &save))
    a->fields[a->n_fields++] = tok;
  view->amendments[view->n_amendments++] = a;
  return 0;
}

gm_status pr__tender_from_ledger(gm_call *call, const char *id,
                                 Gm__Procurement__TenderView **view) {
  pr__arch_row x = {.call = call};
  x.view = host->alloc(call, sizeof *x.view);
  gm__procurement__tender_view__init(x.view);
  gm_status st = host->ledger_query(
      call,
      "SELECT tender_id, lead, state, definition, version, published_ms,"
      " deadline_ms, round, award, bids, reason, updated_ms, archived_ms"
      " FROM procurement_tenders WHERE tender_id = ?1 AND (archived_ms > 0"
      " OR state IN ('complete', 'unsuccessful', 'cancelled'))",
      (gm_param[]){GM_TEXT(id)}, 1, pr__arch_tender_row, &x);
  if (st != GM_OK) return st;
  if (!x.t)
    return host->fail(call, GM_NOT_FOUND,
                      "no tender %s; gm procurement tenders lists the "
                      "published ones",
                      id);
  st = host->ledger_query(call,
                          "SELECT version, fields, note, time_ms FROM"
                          " procurement_amendments WHERE tender_id = ?1"
                          " ORDER BY version",
                          (gm_param[]){GM_TEXT(id)}, 1, pr__arch_amendment_row,
                          &x);
  if (st != GM_OK) return st;
  x.view->tender = x.t;
  *view = x.view;
  return GM_OK;
}

/*
 * The sweep (a timer, every [market.procurement] archive_sweep_s on each
 * broker): tenders that ended before the archive existed never set its
 * deadline.  The ledger lists the ended tenders not archived whose last
 * change is more than archive_after_days plus a day old (a deadline set
 * at the end would have fired by then), a hundred a round from where the
 * last round stopped; tender.lua `rearm` gives each still in Redis with
 * no archive deadline one, due now.  It runs by tender.free, over
 * maxmemory too: the deadline it adds leads to freeing the tender.  Redis
 * out of reach stops the round (the next starts again from that row); any
 * other failure is the row's own: logged and passed, so that one tender
 * cannot hold back the rest, and tried again next pass.
 */
#define PR_SWEEP_ROWS 100

typedef struct pr__sweep_rows {
  const char *id[PR_SWEEP_ROWS];
  int64_t upd[PR_SWEEP_ROWS];
  size_t n;
} pr__sweep_rows;

static int pr__sweep_row(void *arg, size_t ncols, const gm_param *c) {
  pr__sweep_rows *s = arg;
  if (ncols < 2 || c[0].type != GM_PARAM_TEXT || s->n >= PR_SWEEP_ROWS)
    return 1;
  s->id[s->n] = c[0].s;
  s->upd[s->n++] = c[1].i;
  return 0;
}

void pr__archive_sweep(gm_call *call, void *arg) {
  /* Where the last round stopped; a timer's rounds do not overlap. */
  static int64_t after_ms = -1;
  static char after_id[128] = "";
  pr__sweep_rows rows = {.n = 0};
  (void)arg;
  int64_t cut = host->now_ms(host->market(call)) - pr__archive_ms - 86400000;
  if (host->ledger_query(
          call,
          "SELECT tender_id, updated_ms FROM procurement_tenders WHERE"
          " archived_ms = 0 AND state IN ('complete', 'unsuccessful',"
          " 'cancelled') AND updated_ms < ?1 AND (updated_ms > ?2 OR"
          " (updated_ms = ?2 AND tender_id > ?3)) ORDER BY updated_ms,"
          " tender_id LIMIT ?4",
          (gm_param[]){GM_INT(cut), GM_INT(after_ms), GM_TEXT(after_id),
                       GM_INT(PR_SWEEP_ROWS)},
          4, pr__sweep_row, &rows) != GM_OK)
    return;
  int set = 0;
  for (size_t i = 0; i < rows.n; i++) {
    const gm_value *v;
    const char *id = rows.id[i];
    const char *rearm[] = {"rearm", id};
    gm_status st =
        pr__run(call, "tender", host->sprintf(call, "t:%s", id), 2, rearm, &v);
    if (st == GM_UNAVAILABLE || st == GM_RESOURCE_EXHAUSTED)
      return; /* Redis down or full: again from this row next round */
    if (st != GM_OK)
      /* This tender's own trouble: the next pass tries it again, and the
         rows after it are not held back meanwhile. */
      host->log(host->market(call), GM_LOG_WARN,
                "archive sweep: tender %s was not given an archive deadline "
                "(status %d; the script's error is logged above); the sweep "
                "goes on and tries it again next pass",
                id, (int)st);
    else if (!strcmp(pr__s(v, 0), "set"))
      set++;
    after_ms = rows.upd[i];
    snprintf(after_id, sizeof after_id, "%s", id);
  }
  if (rows.n < PR_SWEEP_ROWS) { /* the end: from the start next time */
    after_ms = -1;
    after_id[0] = '\0';
  }
  if (set)
    host->log(host->market(call), GM_LOG_INFO,
              "archive sweep: %d ended tender(s) had no archive deadline "
              "(ended before this release archived them); archiving them now",
              set);
}
