/*
 * The opening and the evaluation, driven by the tender's "open" deadline:
 * at the bid deadline (and at once when an upheld challenge orders a
 * re-evaluation) the bids are opened and evaluated in pages of
 * [market.procurement] page bids, each page one read step, its certificate
 * reads (one per shard it cites) and one store step, so the work per script
 * call is bounded and the whole grows linearly with the bids.  One firing
 * of the deadline opens at most PR_PAGES_PER_FIRING pages, then sets the
 * deadline again (for its own due time: it fires again at once, as a new
 * call), so the memory one call holds is bounded too; the tender records
 * how far the opening got (`prog`).  Then the committee's scores
 * (comprehensive scoring) and the totals, in pages too.
 *
 * Every step is a script run of the deadline's call, stored under its
 * idempotency key: a broker that dies halfway is replaced by another that
 * replays the steps done and runs the rest, so each bid is opened and
 * evaluated once.  The next step is decided only from the replies (the
 * opening time `evat` and the draw's `seed` come from the close step).
 */
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "procurement.h"

#define PR_CHECKS_MAX (64 + PR_MAX_ITEMS * 240)
#define PR_REASONS_MAX 2048
/* Pages one firing of the "open" deadline takes: the call's arena holds
   about 2 KB per bid of them until it ends. */
#define PR_PAGES_PER_FIRING 8

/* One bid of a page, opened and evaluated. */
typedef struct pr__row {
  const char *who;
  const char *text; /* the opened text (round 1), else "" */
  pr_eval e;
  char member[128];
  const char *hash;
  char *checks, *reasons;
} pr__row;

static gm_status pr__totals(gm_call *call, const char *id, const char *tag,
                            const char *round);

/*
 * The register entries of the bidders who[0..n) (read at the opening, each
 * shard once per PR_RECORDS_PER_RUN): their credit code, which the
 * certificates they cite must name, and their SME size.  A bidder not in
 * the register gets uscc "" and size -1.
 */
static gm_status pr__parties_read(gm_call *call, const char **who, size_t n,
                                  const char **uscc, int *size) {
  const char **args =
      host->alloc(call, (1 + PR_RECORDS_PER_RUN) * sizeof *args);
  size_t *at = host->alloc(call, (PR_RECORDS_PER_RUN + 1) * sizeof *at);
  args[0] = "orgmget";
  for (size_t i = 0; i < n; i++) {
    uscc[i] = "";
    size[i] = -1;
  }
  for (int s = 0; s < PR_CERT_SHARDS; s++) {
    size_t m = 1;
    for (size_t i = 0; i <= n; i++) {
      if (m > 1 && (i == n || m == 1 + PR_RECORDS_PER_RUN)) {
        const gm_value *v;
        gm_status st = pr__run(call, "catalogue",
                               host->sprintf(call, "org:%02d", s), m, args, &v);
        if (st != GM_OK) return st;
        for (size_t k = 1; k < m; k++) {
          const gm_value *r = pr__item(v, k - 1);
          if (r->type != GM_VALUE_ARRAY) continue;
          uscc[at[k]] = pr__s(r, 0);
          /* An SME class 0-3; a damaged one counts as not registered. */
          int64_t sz = pr__i(r, 1);
          size[at[k]] = sz >= 0 && sz <= 3 ? (int)sz : -1;
        }
        m = 1;
      }
      if (i == n || pr_cert_shard(who[i]) != s) continue;
      at[m] = i;
      args[m++] = who[i];
    }
  }
  return GM_OK;
}

/* Opens and evaluates bids [start, start + n) of round `round`. */
static gm_status pr__page_run(gm_call *call, const char *id, const char *tag,
                              const char *round, const char *seed, int64_t evat,
                              const pr_tender_rule *rule, int64_t start,
                              size_t *got) {
  const char *pargs[] = {"page", id, round, pr__num(call, start),
                         pr__num(call, pr__page)};
  const gm_value *v;
  gm_status st = pr__run(call, "open", tag, 5, pargs, &v);
  if (st != GM_OK) return st;
  size_t n = v->n;
  *got = n;
  if (n == 0) return GM_OK;
  int first = strcmp(round, "1") == 0;
  pr__row *rows = host->alloc(call, n * sizeof *rows);
  pr_bid *bids = host->alloc(call, n * sizeof *bids);
  const char **uscc = host->alloc(call, n * sizeof *uscc);
  int *size = host->alloc(call, n * sizeof *size),
      *ok = host->alloc(call, n * sizeof *ok);
  int64_t *lodged = host->alloc(call, n * sizeof *lodged);
  const char **certs =
      host->alloc(call, (n * PR_MAX_ITEMS + 1) * sizeof *certs);
  size_t ncerts = 0;

  for (size_t i = 0; i < n; i++) {
    const gm_value *r = pr__item(v, i);
    pr__row *row = &rows[i];
    char err[300];
    row->who = pr__s(r, 0);
    lodged[i] = pr__i(r, 3);
    /* The record: state|version|hash|kid|time|seq */
    const char *rec = pr__s(r, 1);
    char *copy = host->sprintf(call, "%s", rec), *f[6] = {0};
    size_t nf = 0;
    for (char *p = copy, *tok; nf < 6 && (tok = strsep(&p, "|"));)
      f[nf++] = tok;
    if (nf < 6)
      return host->fail(call, GM_INTERNAL,
                        "tender %s: the bid record of %s is malformed", id,
                        row->who);
    row->hash = f[2];
    const char *src = pr__s(r, 2);
    size_t len = strlen(src);
    const char *text = src;
    if (first) {
      text = pr__unseal(call, id, row->who, src, &len, err, sizeof err);
      if (!text) {
        /* Not the bidder's doing: the broker holds the wrong key file.
           Stop, and let the deadline fire again once it is fixed. */
        host->log(host->market(call), GM_LOG_ERROR,
                  "tender %s cannot be opened: %s; give this gmd the key "
                  "file the bids were sealed with (key id in the bid record: "
                  "%s)",
                  id, err, f[3]);
        return host->fail(call, GM_INTERNAL, "tender %s: %s", id, err);
      }
      row->text = text;
    } else {
      row->text = "";
    }
    char hash[65];
    pr__sha256_hex(text, len, hash);

    ok[i] = strcmp(hash, row->hash) == 0 &&
            pr_bid_parse(text, len, &bids[i], err, sizeof err) == 0 &&
            strcmp(bids[i].tender, id) == 0 &&
            strcmp(bids[i].supplier, row->who) == 0;
    if (!ok[i]) continue;
    for (size_t k = 0; k < bids[i].nlines; k++)
      if (bids[i].lines[k].cert[0]) certs[ncerts++] = bids[i].lines[k].cert;
  }

  pr__certs cs;
  if ((st = pr__certs_read(call, certs, ncerts, &cs)) != GM_OK) return st;
  /* The register entries: read at the opening (round 1) and kept with the
     tender, so a re-evaluation judges the entries at the deadline, not
     what a bidder registered since.  Bids opened before the entries were
     kept are read from the register. */
  const char **who = host->alloc(call, n * sizeof *who);
  size_t *at = host->alloc(call, n * sizeof *at), nread = 0;
  for (size_t i = 0; i < n; i++) {
    const char *kept = first ? "" : pr__s(pr__item(v, i), 4);
    const char *bar = strrchr(kept, '|');
    if (bar) {
      uscc[i] = host->sprintf(call, "%.*s", (int)(bar - kept), kept);
      size[i] = pr_int(bar + 1);
      continue;
    }
    at[nread] = i;
    who[nread++] = rows[i].who;
  }
  if (nread) {
    const char **u = host->alloc(call, nread * sizeof *u);
    int *z = host->alloc(call, nread * sizeof *z);
    if ((st = pr__parties_read(call, who, nread, u, z)) != GM_OK) return st;
    for (size_t k = 0; k < nread; k++) {
      uscc[at[k]] = u[k];
      size[at[k]] = z[k];
    }
  }

  /* n <= pr__page <= PR_RECORDS_PER_RUN: one record per bid. */
  const char **args = host->alloc(call, (4 + n) * sizeof *args);
  args[0] = "store";
  args[1] = id;
  args[2] = round;
  args[3] = pr__num(call, start);
  size_t a = 4;
  char *checks = malloc(PR_CHECKS_MAX), *reasons = malloc(PR_REASONS_MAX);
  if (!checks || !reasons) {
    free(checks);
    free(reasons);
    return host->fail(call, GM_RESOURCE_EXHAUSTED, "out of memory");
  }
  for (size_t i = 0; i < n; i++) {
    pr__row *row = &rows[i];
    char draw[17];
    if (ok[i]) {
      if (pr_evaluate(rule, &bids[i], uscc[i], size[i], lodged[i], evat,
                      pr__certs_find, &cs, &row->e, checks, PR_CHECKS_MAX,
                      reasons, PR_REASONS_MAX) != 0)
        host->log(host->market(call), GM_LOG_WARN,
                  "tender %s: the evaluation sheet of %s was cut at its size",
                  id, row->who);
    } else {
      memset(&row->e, 0, sizeof row->e);
      /* Its price is unknown (the text is not the sealed bid, or not a
         bid of this tender and bidder): bid_price 0 is no price, as for
         a bid beyond any amount, so the export gives no value. */
      row->e.no_price = 1;
      snprintf(checks, PR_CHECKS_MAX,
               "the opened bid does not match its published hash %s: "
               "disqualified",
               row->hash);
      snprintf(reasons, PR_REASONS_MAX,
               "the opened bid does not match its hash");
    }
    /* Only what was written goes into the call's arena. */
    row->checks = host->sprintf(call, "%s", checks);
    row->reasons = host->sprintf(call, "%s", reasons);
    pr__draw(seed, row->hash, draw);
    snprintf(row->member, sizeof row->member, "%016lld|%s|%s",
             (long long)row->e.bid_price, draw, row->who);
    const char *f[] = {row->who,
                       row->e.valid ? "1" : "0",
                       pr__num(call, row->e.bid_price),
                       pr__num(call, row->e.green),
                       pr__num(call, row->e.sme),
                       pr__num(call, row->e.evaluated),
                       row->member,
                       pr__num(call, row->e.sme_class),
                       row->hash,
                       row->reasons,
                       row->checks,
                       host->sprintf(call, "%s|%d", uscc[i], size[i]),
                       row->e.no_price ? "1" : "0",
                       row->text};
    args[a++] = pr__pack(call, 14, f);
  }
  free(checks);
  free(reasons);
  return pr__run(call, "open", tag, a, args, &v);
}

gm_status pr__on_open(gm_call *call, const gm_deadline *d, void *arg) {
  (void)arg;
  const char *id = d->id, *tag = d->tag;
  char seed[65];
  pr__random_hex(seed, 32);
  const char *cargs[] = {"close", id, seed};
  const gm_value *v;
  gm_status st = pr__run(call, "open", tag, 3, cargs, &v);
  if (st != GM_OK) return st;
  if (strcmp(pr__s(v, 0), "open") != 0) return GM_OK; /* moved or ended */
  const char *round = pr__s(v, 1);
  const char *rseed = pr__s(v, 2);
  int64_t evat = pr__i(v, 3);
  int64_t nb = pr__i(v, 4);
  Gm__Procurement__Tender *t = pr__def_decode(call, pr__s(v, 5));
  if (!t)
    return host->fail(call, GM_INTERNAL, "tender %s has no definition", id);
  pr_tender_rule rule;
  pr__tender_rule(call, t, &rule);

  /* From where the last firing got to; PR_PAGES_PER_FIRING pages at most,
     then the deadline is set again to carry on as a new call. */
  long pages = 0;
  for (int64_t start = pr__i(v, 10); start < nb;) {
    if (pages == PR_PAGES_PER_FIRING)
      return host->deadline_set(call, "open", tag, id, d->due_ms);
    size_t got;
    if ((st = pr__page_run(call, id, tag, round, rseed, evat, &rule, start,
                           &got)) != GM_OK)
      return st;
    if (got == 0) break;
    start += (int64_t)got;
    pages++;
#ifdef GM_FAILURE_INJECTION
    if (pages == pr__kill_after_page) raise(SIGKILL);
#endif
  }
  const char *fargs[] = {"finish", id, round};
  if ((st = pr__run(call, "open", tag, 3, fargs, &v)) != GM_OK) return st;
  Gm__Procurement__TenderEvent ev = GM__PROCUREMENT__TENDER_EVENT__INIT;
  ev.tender_id = (char *)id;
  ev.action =
      strcmp(pr__s(v, 0), "unsuccessful") == 0 ? "unsuccessful" : "evaluated";
  ev.state = (char *)pr__s(v, 0);
  ev.bids = (int32_t)nb;
  ev.title = t->title;
  ev.deadline_ms = t->deadline_ms;
  ev.note = host->sprintf(call, "round %s: %lld bids opened, %lld valid", round,
                          (long long)nb, (long long)pr__i(v, 1));
  pr__tell(call, GM_AUDIENCE_PUBLIC, NULL, "tender", &ev.base);
  host->log(host->market(call), GM_LOG_INFO, "tender %s %s", id, ev.note);
  if (strcmp(pr__s(v, 0), "scoring") == 0 && pr__i(v, 2) == 1)
    return pr__totals(call, id, tag, round);
  return GM_OK;
}

/* ---- comprehensive scoring ---- */

/* Price scores and totals of every valid bid of the round, in pages, then
   the ranking is final. */
static gm_status pr__totals(gm_call *call, const char *id, const char *tag,
                            const char *round) {
  gm_status st;
  const gm_value *v;
  /* Every page must be read at one score version: the first page's. */
  const char *version = NULL;
  for (int64_t start = 0;; start += pr__page) {
    const char *pargs[] = {"tpage", id, round, pr__num(call, start),
                           pr__num(call, pr__page)};
    if ((st = pr__run(call, "open", tag, 5, pargs, &v)) != GM_OK) return st;
#ifdef GM_FAILURE_INJECTION
    if (pr__kill_in_totals) raise(SIGKILL);
    static atomic_int paused;
    if (pr__pause_in_totals[0] && start == 0 &&
        atomic_exchange(&paused, 1) == 0) {
      FILE *f = fopen(pr__pause_in_totals, "w");
      if (f) fclose(f);
      for (int i = 0; i < 6000 && access(pr__pause_in_totals, F_OK) == 0; i++)
        usleep(10000);
    }
#endif
    const gm_value *head = pr__item(v, 0);
    if (!version) version = pr__s(head, 2);
    if (strcmp(version, pr__s(head, 2)) != 0) return GM_OK; /* stale */
    if (v->n <= 1) break;
    int64_t lowest = pr__i(head, 0);
    /* Basis points, checked at publishing and scoring: a damaged value
       is clamped to 0-10000, as each score below. */
    int32_t weight = (int32_t)pr_clamp(pr__i(head, 1), 0, 10000);
    size_t n = v->n - 1; /* at most pr__page: one record each */
    const char **args = host->alloc(call, (4 + n) * sizeof *args);
    size_t a = 0;
    args[a++] = "tstore";
    args[a++] = id;
    args[a++] = round;
    args[a++] = version;
    for (size_t i = 0; i < n; i++) {
      const gm_value *r = pr__item(v, i + 1);
      size_t ns = r->n > 3 ? r->n - 3 : 0;
      int32_t *scores = host->alloc(call, (ns + 1) * sizeof *scores);
      for (size_t k = 0; k < ns; k++)
        scores[k] = (int32_t)pr_clamp(pr__i(r, 3 + k), 0, 10000);
      int64_t price = pr_price_score(lowest, pr__i(r, 2), weight);
      int64_t tech = pr_mean_score(scores, ns);
      const char *f[] = {pr__s(r, 0), pr__num(call, price), pr__num(call, tech),
                         pr__num(call, price + tech), pr__s(r, 1)};
      args[a++] = pr__pack(call, 5, f);
    }
    if ((st = pr__run(call, "open", tag, a, args, &v)) != GM_OK) return st;
    /* A score changed since the page was read: the firing its change set
       computes the totals again. */
    if (!strcmp(pr__s(v, 0), "stale")) return GM_OK;
    if ((int64_t)n < pr__page) break;
  }
  const char *fargs[] = {"tfinish", id, round, version ? version : "0"};
  if ((st = pr__run(call, "open", tag, 4, fargs, &v)) != GM_OK) return st;
  if (!strcmp(pr__s(v, 0), "stale")) return GM_OK;
  Gm__Procurement__TenderEvent ev = GM__PROCUREMENT__TENDER_EVENT__INIT;
  ev.tender_id = (char *)id;
  ev.action = "ranked";
  ev.state = "evaluated";
  ev.note = host->sprintf(call,
                          "round %s: the committee's scores are in; "
                          "the bids are ranked",
                          round);
  pr__tell(call, GM_AUDIENCE_PUBLIC, NULL, "tender", &ev.base);
  return GM_OK;
}

gm_status pr__evaluation_score(gm_call *call, const ProtobufCMessage *req,
                               ProtobufCMessage **reply) {
  const Gm__Procurement__ScoreRequest *in = (const void *)req;
  const char *tag;
  gm_status st;
  if ((st = pr__tender_tag(call, in->tender_id, &tag)) != GM_OK) return st;
  if (in->n_scores == 0 || in->n_scores > PR_RECORDS_PER_RUN)
    return host->fail(call, GM_INVALID_ARGUMENT, "send 1-%d scores per call",
                      PR_RECORDS_PER_RUN);
  const char **args = host->alloc(call, (2 + in->n_scores) * sizeof *args);
  size_t a = 0;
  args[a++] = "score";
  args[a++] = in->tender_id;
  for (size_t i = 0; i < in->n_scores; i++) {
    const Gm__Procurement__Score *s = in->scores[i];
    if (!pr_valid_name(s->supplier, 1, 64, 0))
      return host->fail(call, GM_INVALID_ARGUMENT,
                        "score %zu: \"%.64s\" is not a supplier id", i + 1,
                        s->supplier);
    if (s->score_bp < 0 || s->score_bp > 10000)
      return host->fail(call, GM_INVALID_ARGUMENT,
                        "score %zu: %d is not 0..10000 (basis points of 100 "
                        "points)",
                        i + 1, s->score_bp);
    for (size_t j = 0; j < i; j++)
      if (strcmp(in->scores[j]->supplier, s->supplier) == 0)
        return host->fail(call, GM_INVALID_ARGUMENT,
                          "%s is scored twice in this call", s->supplier);
    const char *f[] = {s->supplier, pr__num(call, s->score_bp)};
    args[a++] = pr__pack(call, 2, f);
  }
  const gm_value *v;
  if ((st = pr__run(call, "open", tag, a, args, &v)) != GM_OK) return st;
  Gm__Procurement__ScoreReply *out = host->alloc(call, sizeof *out);
  gm__procurement__score_reply__init(out);
  out->stored = pr__i32(v, 0);
  out->missing = pr__i32(v, 1);
  /* Complete: the "rank" deadline the script set computes the totals. */
  out->complete = pr__i(v, 2) == 1;
  *reply = &out->base;
  return GM_OK;
}

gm_status pr__on_rank(gm_call *call, const gm_deadline *d, void *arg) {
  (void)arg;
  const char *args[] = {"rinfo", d->id};
  const gm_value *v;
  gm_status st = pr__run(call, "open", d->tag, 2, args, &v);
  if (st != GM_OK) return st;
  if (strcmp(pr__s(v, 0), "scoring") != 0 || pr__i(v, 2) != 1) return GM_OK;
  return pr__totals(call, d->id, d->tag, pr__s(v, 1));
}
