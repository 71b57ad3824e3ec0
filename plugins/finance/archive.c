/*
 * Ended referrals leave Redis, as procurement's ended tenders do.  A
 * referral that ended (funded, declined, withdrawn, expired: it never
 * changes again) sets its "archive" deadline archive_after_days later
 * (referral.lua `move`).  When it fires: the bank queues are brought up to
 * date if a stopped broker left them behind (an ended referral has no
 * entry in any), and once the ledger holds the state and version it ended
 * in, referral.lua `archive` marks it and hands its whole record to the
 * ledger (the "archived" entry: finance_referrals.archived_ms and
 * .record); once the ledger holds that record, `drop` removes every key of
 * the referral.  The ledger behind, the deadline is set a minute later.
 * From then on referral.get, referral.list and the sync deadline read the
 * record from the ledger (the same views, the same access rules), and
 * every change is refused: naming the archive to a party of it, as before
 * it ended to anyone else (finance__party).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "finance.h"

/* How long to wait for the settler when the ledger is behind Redis; and
   right after the mark, when the settler usually takes the record within
   milliseconds: the keys (and the record's outbox entry, once settled)
   go a second later, so while Redis is over maxmemory a mark's entry is
   not held a minute beside the keys it is about to free. */
#define FINANCE_ARCHIVE_RETRY_MS 60000
#define FINANCE_ARCHIVE_DROP_MS 1000

typedef struct finance__ledger {
  int found;
  int64_t state, version, archived;
  const char *record;
} finance__ledger;

static int finance__ledger_row(void *arg, size_t ncols, const gm_param *c) {
  finance__ledger *l = arg;
  if (ncols < 4) return 1;
  l->found = 1;
  l->state = c[0].i;
  l->version = c[1].i;
  l->archived = c[2].type == GM_PARAM_INT ? c[2].i : 0;
  l->record = c[3].type == GM_PARAM_TEXT && c[3].s ? c[3].s : "";
  return 1;
}

static gm_status finance__ledger_read(gm_call *call, const char *id,
                                      finance__ledger *l) {
  memset(l, 0, sizeof *l);
  l->record = "";
  return host->ledger_query(call,
                            "SELECT state, version, archived_ms, record FROM"
                            " finance_referrals WHERE id = ?1",
                            (gm_param[]){GM_TEXT(id)}, 1, finance__ledger_row,
                            l);
}

/* Fires the archive again `ms` later: referral.lua `later`, which runs
   over maxmemory (the deadline being fired is there: moving it adds
   nothing), where the host's deadline_set is refused. */
static gm_status finance__retry(gm_call *call, const gm_deadline *d, int ms) {
  const gm_value *v;
  const char *later[] = {
      "later", finance__num(call, host->now_ms(host->market(call)) + ms)};
  return finance__run(call, "referral", d->tag, 2, later, &v);
}

gm_status finance__on_archive(gm_call *call, const gm_deadline *d, void *arg) {
  const char *id = d->tag, *info[] = {"arcinfo"};
  const gm_value *v;
  finance__ledger l;
  int marked = 0; /* marked by this firing */
  (void)arg;
  gm_status st = finance__run(call, "referral", id, 1, info, &v);
  if (st != GM_OK) return st;
  if (v->n == 0) return GM_OK; /* its keys are gone: archived already */
  const char *state = finance__s(v, 0), *ver = finance__s(v, 1);
  const char *ent = v->n > 4 ? finance__s(v, 4) : "";
  int64_t stn = strtoll(state, NULL, 10), vn = strtoll(ver, NULL, 10);
  if (!finance__s(v, 2)[0]) {
    /* Index steps a stopped broker left: run them from the record first,
       so no bank queue keeps an entry of a referral about to go. */
    if (finance__i(v, 3) > 0 && (st = finance__on_sync(call, d, NULL)) != GM_OK)
      return st;
    /* The ledger must hold the final state before Redis forgets it: the
       referral's entries settle in order, so its last one settled means
       every one before it did. */
    if ((st = finance__ledger_read(call, id, &l)) != GM_OK) return st;
    if (!l.found || l.state != stn || l.version != vn) {
      host->log(host->market(call), GM_LOG_INFO,
                "referral %s: the ledger does not hold its final state (%s, "
                "version %s) yet; archiving it in %d s",
                id, state, ver, FINANCE_ARCHIVE_RETRY_MS / 1000);
      return finance__retry(call, d, FINANCE_ARCHIVE_RETRY_MS);
    }
    const char *mark[] = {"archive", state, ver};
    if ((st = finance__run(call, "referral", id, 3, mark, &v)) != GM_OK)
      return st;
    marked = 1;
    if (strcmp(finance__s(v, 0), "marked") != 0) {
      /* Not ended after all (a bug elsewhere): keep everything. */
      host->log(host->market(call), GM_LOG_WARN,
                "referral %s is in state %s, not the %s it ended in; not "
                "archived",
                id, finance__s(v, 1), state);
      return GM_OK;
    }
  }
  /* Its keys go once the ledger holds the record they hold. */
  if ((st = finance__ledger_read(call, id, &l)) != GM_OK) return st;
  if (l.archived <= 0 || !*l.record || l.version != vn) {
    int ms = marked ? FINANCE_ARCHIVE_DROP_MS : FINANCE_ARCHIVE_RETRY_MS;
    host->log(host->market(call), GM_LOG_INFO,
              "referral %s: the ledger does not hold its archived record "
              "yet; removing its keys in %d s",
              id, ms / 1000);
    return finance__retry(call, d, ms);
  }
  /* Out of its enterprise's list (another tag, so another step: a
     Redis Cluster keeps the two in different slots), before its keys go:
     from now on referral.list finds it in the ledger.  Killed between the
     two, the next firing does both again (each does nothing twice). */
  if (*ent) {
    const char *unlist[] = {"unlist", id};
    const gm_value *u;
    if ((st = finance__run(call, "enterprise", host->sprintf(call, "e:%s", ent),
                           2, unlist, &u)) != GM_OK)
      return st;
  }
  const char *drop[] = {"drop", ver};
  if ((st = finance__run(call, "referral", id, 2, drop, &v)) != GM_OK)
    return st;
  if (strcmp(finance__s(v, 0), "done") != 0) {
    host->log(host->market(call), GM_LOG_WARN,
              "referral %s changed while being archived (state %s); its keys "
              "stay",
              id, finance__s(v, 1));
    return GM_OK;
  }
  host->log(host->market(call), GM_LOG_INFO,
            "referral %s archived: its keys left Redis, its record is in the "
            "ledger",
            id);
  return GM_OK;
}

/* One list of a record referral.lua packed: "<count>;" then
   "<bytes>:<item>" per item.  Returns where it ends, or NULL. */
static const char *finance__unpack(gm_call *call, const char *p,
                                   const char *stop, gm_value *out) {
  char *end;
  if (p >= stop || *p < '0' || *p > '9') return NULL;
  unsigned long long n = strtoull(p, &end, 10);
  if (end >= stop || *end != ';' || n > (unsigned long long)(stop - end))
    return NULL;
  p = end + 1;
  gm_value *items = host->alloc(call, ((size_t)n + 1) * sizeof *items);
  for (size_t i = 0; i < n; i++) {
    if (p >= stop || *p < '0' || *p > '9') return NULL;
    unsigned long long len = strtoull(p, &end, 10);
    if (end >= stop || *end != ':' ||
        len > (unsigned long long)(stop - end - 1))
      return NULL;
    char *s = host->alloc(call, (size_t)len + 1);
    memcpy(s, end + 1, (size_t)len);
    s[len] = '\0';
    items[i] = (gm_value){.type = GM_VALUE_STR, .str = s, .len = (size_t)len};
    p = end + 1 + len;
  }
  *out = (gm_value){.type = GM_VALUE_ARRAY, .n = (size_t)n, .items = items};
  return p;
}

/* ms as "YYYY-MM-DD hh:mm" in Asia/Shanghai. */
static const char *finance__when(gm_call *call, int64_t ms) {
  char date[16];
  int64_t day = gm__finance_day_of(ms);
  int64_t mins = (ms - gm__finance_day_start_ms(day)) / 60000;
  return host->sprintf(call, "%s %02d:%02d", gm__finance_format_date(day, date),
                       (int)(mins / 60), (int)(mins % 60));
}

/* The ops a party makes, and what its refusal as a non-party says they
   do: referral.lua's need_enterprise and need_holder words. */
static const struct {
  const char *op, *what;
  int bank; /* 1: a bank's op (args[1] its bank); 0: the enterprise's */
} finance__changes[] = {
    {"pick", "pick a bank for", 0},
    {"answer", "answer the bank about", 0},
    {"withdraw", "withdraw", 0},
    {"contact", "record contact", 1},
    {"ask", "ask the enterprise about it", 1},
    {"approve", "approve it", 1},
    {"fund", "fund it", 1},
    {"decline", "decline it", 1},
};

/*
 * A change of archived referral r by who is no party of it is refused as
 * referral.lua refuses it, before the state: only a party learns that it
 * ended.  GM_OK: a party (or a deadline's op), the archive is named.
 */
static gm_status finance__party(gm_call *call, const finance__ref *r,
                                size_t nargs, const char *const *args) {
  const char *op = args[0], *bank = nargs > 1 ? args[1] : "";
  if (!strcmp(op, "claim")) {
    if (finance__eligible(r, bank)) return GM_OK;
    return host->fail(call, GM_PERMISSION_DENIED,
                      "your bank %s has no product that fits referral %s; "
                      "only banks with a fitting product (as screened when "
                      "it was submitted) may claim it",
                      bank, r->id);
  }
  for (size_t i = 0; i < sizeof finance__changes / sizeof *finance__changes;
       i++) {
    if (strcmp(op, finance__changes[i].op) != 0) continue;
    if (!finance__changes[i].bank) {
      if (!strcmp(host->participant(call), finance__f(r, "ent"))) return GM_OK;
      return host->fail(call, GM_PERMISSION_DENIED,
                        "only the enterprise that referred %s may %s it", r->id,
                        finance__changes[i].what);
    }
    if (*bank && !strcmp(bank, finance__f(r, "bank"))) return GM_OK;
    return host->fail(call, GM_PERMISSION_DENIED,
                      "only the bank the enterprise picked for %s may %s; "
                      "your bank %s does not hold it",
                      r->id, finance__changes[i].what, bank);
  }
  return GM_OK;
}

gm_status finance__archived(gm_call *call, const char *id, size_t nargs,
                            const char *const *args, finance__ref *r) {
  finance__ledger l;
  gm_status st = finance__ledger_read(call, id, &l);
  if (st != GM_OK) return st;
  /* Not archived: the script's own "no referral" stands. */
  if (!l.found || l.archived <= 0 || !*l.record) return GM_NOT_FOUND;
  gm_value *lists = host->alloc(call, 6 * sizeof *lists);
  const char *p = l.record, *stop = p + strlen(p);
  for (size_t i = 0; i < 5 && p; i++)
    p = finance__unpack(call, p, stop, &lists[i]);
  if (!p || p != stop) {
    host->log(host->market(call), GM_LOG_ERROR,
              "referral %s: its archived record in the ledger is damaged "
              "(finance_referrals.record)",
              id);
    return host->fail(call, GM_INTERNAL,
                      "the archived record of referral %s is damaged; the "
                      "operator should check the gmd log",
                      id);
  }
  gm_value *info = host->alloc(call, 2 * sizeof *info);
  info[0] = (gm_value){.type = GM_VALUE_STR, .str = "get", .len = 3};
  info[1] = (gm_value){.type = GM_VALUE_INT, .integer = l.state};
  lists[5] = (gm_value){.type = GM_VALUE_ARRAY, .n = 2, .items = info};
  gm_value all = {.type = GM_VALUE_ARRAY, .n = 6, .items = lists};
  if ((st = finance__ref_parse(call, &all, r)) != GM_OK) return st;
  r->archived = l.archived;
  if (!strcmp(args[0], "get")) return GM_OK;
  if ((st = finance__party(call, r, nargs, args)) != GM_OK) return st;
  /* Not its state: a party learns that it ended, as referral.lua's
     refusal while it is being archived; one that cannot read it (a bank
     it was offered to, not holding it) is not sent to gm finance show. */
  if (!strcmp(args[0], "claim") && nargs > 1 &&
      finance__access(r, args[1], 0) == GM__FINANCE__ACCESS__ACCESS_NONE)
    return host->fail(call, GM_FAILED_PRECONDITION,
                      "referral %s ended and was archived on %s "
                      "(Asia/Shanghai): it can no longer change; your bank "
                      "%s, which does not hold it, cannot read it",
                      id, finance__when(call, l.archived), args[1]);
  return host->fail(
      call, GM_FAILED_PRECONDITION,
      "referral %s ended and was archived on %s (Asia/Shanghai): its live "
      "record left the broker and it can no longer change; its parties "
      "still read its final record (gm finance show %s)",
      id, finance__when(call, l.archived), id);
}

/*
 * The sweep (a timer, every [market.finance] archive_sweep_s on each
 * broker): referrals that ended before the archive existed (session 15)
 * never set its deadline.  The ledger lists the ended referrals not
 * archived more than archive_after_days plus a day after their end (a
 * deadline set at the end would have fired by then), a hundred a round
 * from where the last round stopped; referral.lua `rearm` gives each that
 * is still in Redis with no archive deadline one, due now.  Others (their
 * deadline set, or a ledger behind) are left as they are.  `rearm` is a
 * plain step, refused while Redis is over maxmemory (the round stops and
 * the next tries again from that row; so does Redis out of reach; any
 * other failure is the row's own: logged and passed, so that one
 * referral cannot hold back the rest, and tried again next pass): the outbox
 * streams of such old referrals are retired by then, so the mark would make one
 * again with the whole record in it, which the settler cannot take while Redis
 * is full (reply.c).
 */
#define FINANCE_SWEEP_ROWS 100

typedef struct finance__sweep_rows {
  const char *id[FINANCE_SWEEP_ROWS];
  int64_t ended[FINANCE_SWEEP_ROWS];
  size_t n;
} finance__sweep_rows;

static int finance__sweep_row(void *arg, size_t ncols, const gm_param *c) {
  finance__sweep_rows *s = arg;
  if (ncols < 2 || c[0].type != GM_PARAM_TEXT || s->n >= FINANCE_SWEEP_ROWS)
    return 1;
  s->id[s->n] = c[0].s;
  s->ended[s->n++] = c[1].i;
  return 0;
}

void finance__archive_sweep(gm_call *call, void *arg) {
  /* Where the last round stopped; a timer's rounds do not overlap. */
  static int64_t after_ms = -1;
  static char after_id[32] = "";
  finance__sweep_rows rows = {.n = 0};
  (void)arg;
  int64_t cut = host->now_ms(host->market(call)) -
                finance__archive_days * GM_FINANCE_DAY_MS - GM_FINANCE_DAY_MS;
  if (host->ledger_query(
          call,
          "SELECT id, ended_ms FROM finance_referrals WHERE archived_ms IS NULL"
          " AND ended_ms IS NOT NULL AND ended_ms < ?1 AND (ended_ms > ?2 OR"
          " (ended_ms = ?2 AND id > ?3)) ORDER BY ended_ms, id LIMIT ?4",
          (gm_param[]){GM_INT(cut), GM_INT(after_ms), GM_TEXT(after_id),
                       GM_INT(FINANCE_SWEEP_ROWS)},
          4, finance__sweep_row, &rows) != GM_OK)
    return;
  int set = 0;
  for (size_t i = 0; i < rows.n; i++) {
    const gm_value *v;
    const char *rearm[] = {"rearm"};
    if (!gm__finance_valid_referral(rows.id[i])) continue;
    gm_status st = finance__run(call, "referral", rows.id[i], 1, rearm, &v);
    if (st == GM_UNAVAILABLE || st == GM_RESOURCE_EXHAUSTED)
      return; /* Redis down or full: again from this row next round */
    if (st != GM_OK)
      /* This referral's own trouble: the next pass tries it again, and
         the rows after it are not held back meanwhile. */
      host->log(host->market(call), GM_LOG_WARN,
                "archive sweep: referral %s was not given an archive "
                "deadline (status %d; the script's error is logged above); "
                "the sweep goes on and tries it again next pass",
                rows.id[i], (int)st);
    else if (!strcmp(finance__s(v, 0), "set"))
      set++;
    after_ms = rows.ended[i];
    snprintf(after_id, sizeof after_id, "%s", rows.id[i]);
  }
  if (rows.n < FINANCE_SWEEP_ROWS) { /* the end: from the start next time */
    after_ms = -1;
    after_id[0] = '\0';
  }
  if (set)
    host->log(host->market(call), GM_LOG_INFO,
              "archive sweep: %d ended referral(s) had no archive deadline "
              "(ended before this release archived them); archiving them now",
              set);
}
