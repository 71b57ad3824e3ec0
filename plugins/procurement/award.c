/*
 * Awards, challenges and contracts.  The agency awards a tender to its
 * first-ranked bid (GP Law Implementing Regulations art. 43): the award
 * notice goes out with its challenge period (7 working days, GP Law art.
 * 52, counted on the calendar) and its signing period (30 days, GP Law art.
 * 46), and one
 * contract per buying agency for that agency's items at the bid's prices.
 * While a challenge is open nothing is signed and the signing period stands
 * still; a challenge upheld re-evaluates the bids or cancels the tender.
 * When the signing period ends with a contract unsigned, the "sign"
 * deadline passes the award to the next-ranked bid (or the tender is
 * unsuccessful when none is left).  Contracts close with delivery,
 * acceptance and full payment.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "procurement.h"

/* The challenge and signing periods of a notice on local day `today`. */
static gm_status pr__periods(gm_call *call, int64_t today, int64_t *chu,
                             int64_t *sgu) {
  gm_status st =
      pr__working_days_end(call, today, PR_CHALLENGE_WORKING_DAYS, chu);
  if (st != GM_OK) return st;
  *sgu = pr_days_end(today, PR_SIGN_DAYS);
  return GM_OK;
}

/* The contracts of an award to the bid `text` of tender `t`: one per
   agency, in the order of the tender's items. */
typedef struct pr__deal {
  const char *agency;
  int64_t value;
  char *items;
} pr__deal;

static gm_status pr__deals(gm_call *call, const Gm__Procurement__Tender *t,
                           const char *text, pr__deal **out, size_t *n) {
  pr_bid *b = host->alloc(call, sizeof *b);
  char err[200];
  if (pr_bid_parse(text, strlen(text), b, err, sizeof err) != 0)
    return host->fail(call, GM_INTERNAL, "the winning bid of %s: %s", t->id,
                      err);
  pr__deal *d = host->alloc(call, (t->n_items + 1) * sizeof *d);
  *n = 0;
  for (size_t i = 0; i < t->n_items; i++) {
    const Gm__Procurement__Item *it = t->items[i];
    const char *agency = it->buyer[0] ? it->buyer : t->agency;
    int64_t price = 0;
    for (size_t k = 0; k < b->nlines; k++)
      if (strcmp(b->lines[k].item, it->id) == 0) price = b->lines[k].unit_price;
    size_t j = 0;
    while (j < *n && strcmp(d[j].agency, agency)) j++;
    if (j == *n) {
      d[j].agency = agency;
      d[j].value = 0;
      d[j].items = "";
      (*n)++;
    }
    /* The evaluation kept price x quantity and their sum within
       PR_MAX_AMOUNT for a valid bid; anything else is not one. */
    if (it->quantity < 1 || price > PR_MAX_AMOUNT / it->quantity ||
        d[j].value > PR_MAX_AMOUNT - price * it->quantity)
      return host->fail(call, GM_INTERNAL,
                        "the winning bid of %s prices item %s beyond any "
                        "amount",
                        t->id, it->id);
    d[j].value += price * it->quantity;
    d[j].items = host->sprintf(call, "%s%s%s", d[j].items,
                               d[j].items[0] ? "," : "", it->id);
  }
  *out = d;
  return GM_OK;
}

static Gm__Procurement__Award *pr__award_of(gm_call *call, const char *id,
                                            const gm_value *v,
                                            const char *currency) {
  /* aget: {award: n sup value st notice chu sgu ks why, contracts...} */
  const gm_value *a = pr__item(v, 0);
  Gm__Procurement__Award *out = host->alloc(call, sizeof *out);
  gm__procurement__award__init(out);
  out->tender_id = (char *)id;
  out->number = pr__i32(a, 0);
  out->supplier = (char *)pr__s(a, 1);
  out->value = pr__i(a, 2);
  out->status = (char *)pr__s(a, 3);
  out->notice_ms = pr__i(a, 4);
  out->challenge_until_ms = pr__i(a, 5);
  out->sign_until_ms = pr__i(a, 6);
  out->reason = (char *)pr__s(a, 8);
  out->currency = (char *)currency;
  out->contracts = host->alloc(call, v->n * sizeof *out->contracts);
  for (size_t i = 1; i < v->n; i++)
    out->contracts[out->n_contracts++] = (char *)pr__s(pr__item(v, i), 0);
  return out;
}

static gm_status pr__award_read(gm_call *call, const char *id, const char *tag,
                                int64_t n, const char *currency,
                                Gm__Procurement__Award **out) {
  const char *args[] = {"aget", id, pr__num(call, n)};
  const gm_value *v;
  gm_status st = pr__run(call, "award", tag, 3, args, &v);
  if (st != GM_OK) return st;
  if (v->n == 0)
    return host->fail(call, GM_NOT_FOUND, "tender %s has no award %lld", id,
                      (long long)n);
  *out = pr__award_of(call, id, v, currency);
  return GM_OK;
}

static void pr__award_event(gm_call *call, Gm__Procurement__Award *a,
                            const char *action) {
  Gm__Procurement__AwardEvent ev = GM__PROCUREMENT__AWARD_EVENT__INIT;
  ev.award = a;
  ev.action = (char *)action;
  /* Award notices are public (Implementing Regulations art. 43). */
  pr__tell(call, GM_AUDIENCE_PUBLIC, NULL, "award", &ev.base);
}

/*
 * Makes award `index` + 1 (mode "new": the first, by the agency; "pass":
 * the next, by the sign deadline) from a `cand` reply, with its contracts
 * and periods.  Sets *number to the award made, 0 when the reply was stale.
 */
static gm_status pr__award_make(gm_call *call, const char *id, const char *tag,
                                const char *mode, const gm_value *cand,
                                int64_t *number) {
  gm_status st;
  Gm__Procurement__Tender *t = pr__def_decode(call, pr__s(cand, 4));
  if (!t)
    return host->fail(call, GM_INTERNAL, "tender %s has no definition", id);
  const char *who = pr__s(cand, 2);
  /* A share of the contract, at most 10% (checked at publishing: a
     damaged record's bp is clamped to what the rules allow). */
  int32_t bond_bp = (int32_t)pr_clamp(pr__i(cand, 5), 0, PR_BOND_MAX_BP);
  pr__deal *deals = NULL;
  size_t nd = 0;
  if ((st = pr__deals(call, t, pr__s(cand, 3), &deals, &nd)) != GM_OK)
    return st;
  int64_t chu = 0, sgu = 0, value = 0;
  if ((st = pr__periods(call, pr_day_of(host->now_ms(host->market(call))), &chu,
                        &sgu)) != GM_OK)
    return st;
  /* The rank index of the bid, and the number of the award it makes
     (awards are numbered across re-evaluation rounds). */
  int64_t index = pr__i(cand, 9), made = pr__i(cand, 10);
  const char **args = host->alloc(call, (9 + nd * 5) * sizeof *args);
  size_t a = 0;
  for (size_t i = 0; i < nd; i++) value += deals[i].value; /* <= 10^15 */
  args[a++] = "award";
  args[a++] = id;
  args[a++] = mode;
  args[a++] = pr__num(call, index);
  args[a++] = who;
  args[a++] = pr__num(call, value);
  args[a++] = pr__num(call, chu);
  args[a++] = pr__num(call, sgu);
  args[a++] = pr__num(call, (int64_t)nd);
  for (size_t i = 0; i < nd; i++) {
    args[a++] = host->sprintf(call, "%s-A%lld-%zu", id, (long long)made, i + 1);
    args[a++] = deals[i].agency;
    args[a++] = pr__num(call, deals[i].value);
    args[a++] = pr__num(call, pr_share(deals[i].value, bond_bp));
    args[a++] = deals[i].items;
  }
  const gm_value *v;
  if ((st = pr__run(call, "award", tag, a, args, &v)) != GM_OK) return st;
  *number = strcmp(pr__s(v, 0), "awarded") == 0 ? pr__i(v, 1) : 0;
  return GM_OK;
}

gm_status pr__tender_award(gm_call *call, const ProtobufCMessage *req,
                           ProtobufCMessage **reply) {
  const Gm__Procurement__AwardRequest *in = (const void *)req;
  const char *tag;
  gm_status st;
  if ((st = pr__tender_tag(call, in->tender_id, &tag)) != GM_OK) return st;
  const char *args[] = {"cand", in->tender_id, "0"};
  const gm_value *cand;
  if ((st = pr__run(call, "award", tag, 3, args, &cand)) != GM_OK) return st;
  const char *state = pr__s(cand, 0), *lead = pr__s(cand, 7);
  if (strcmp(state, "gone") == 0) {
    if (pr__archived_fail(call, in->tender_id, 1) != GM_NOT_FOUND)
      return GM_FAILED_PRECONDITION;
    return host->fail(call, GM_NOT_FOUND,
                      "no tender %s; gm procurement tenders lists them",
                      in->tender_id);
  }
  if (strcmp(lead, host->participant(call)) != 0)
    return host->fail(call, GM_PERMISSION_DENIED,
                      "only %s, the agency that runs tender %s, may award it",
                      lead, in->tender_id);
  if (strcmp(state, "evaluated") != 0 ||
      pr__item(cand, 2)->type != GM_VALUE_STR) {
    /* What comes next, by the state: the bid deadline to wait for, a
       committee still scoring, or nothing (it ended). */
    if (!strcmp(state, "draft"))
      return host->fail(call, GM_FAILED_PRECONDITION,
                        "tender %s is a draft: publish it, and award it "
                        "after its bid deadline",
                        in->tender_id);
    const Gm__Procurement__Tender *t = pr__def_decode(call, pr__s(cand, 4));
    char d[20];
    const char *why =
        !strcmp(state, "scoring")
            ? "; the committee has not scored every valid bid yet"
        : !strcmp(state, "awarded") || !strcmp(state, "contracted") ? " already"
        : !strcmp(state, "active") && t
            ? host->sprintf(call,
                            "; its bids are opened and evaluated at its bid "
                            "deadline, %s (Asia/Shanghai): award it after that",
                            pr_datetime(t->deadline_ms, d))
        : !strcmp(state, "opening")
            ? "; its bids are being opened and evaluated now: award it in a "
              "moment"
        : !strcmp(state, "cancelled") || !strcmp(state, "unsuccessful") ||
                !strcmp(state, "complete")
            ? "; it has ended: there is nothing to award"
            : "; an award follows the evaluation of the opened bids";
    return host->fail(call, GM_FAILED_PRECONDITION, "tender %s is %s%s",
                      in->tender_id, state, why);
  }
  int64_t n;
  if ((st = pr__award_make(call, in->tender_id, tag, "new", cand, &n)) != GM_OK)
    return st;
  Gm__Procurement__Award *a;
  if ((st = pr__award_read(call, in->tender_id, tag, n, pr__s(cand, 6), &a)) !=
      GM_OK)
    return st;
  pr__award_event(call, a, "notice");
  *reply = &a->base;
  return GM_OK;
}

gm_status pr__on_sign(gm_call *call, const gm_deadline *d, void *arg) {
  (void)arg;
  const char *id = d->id, *tag = d->tag;
  const char *args[] = {"cand", id, "next"};
  const gm_value *cand, *v;
  gm_status st = pr__run(call, "award", tag, 3, args, &cand);
  if (st != GM_OK) return st;
  /* Signed, challenged (its answer sets the deadline again), moved later,
     or ended meanwhile: nothing is due. */
  if (strcmp(pr__s(cand, 0), "awarded") != 0 || pr__i(cand, 8) != 1)
    return GM_OK;
  const char *current = pr__s(cand, 1);
  Gm__Procurement__Award *old = NULL;
  if (pr__item(cand, 2)->type != GM_VALUE_STR) {
    const char *nargs[] = {"none", id, current};
    if ((st = pr__run(call, "award", tag, 3, nargs, &v)) != GM_OK) return st;
    host->log(host->market(call), GM_LOG_INFO,
              "tender %s: award %s was not signed within %d days and no "
              "bidder is left; the tender is unsuccessful",
              id, current, PR_SIGN_DAYS);
    if (pr__award_read(call, id, tag, atoll(current), "", &old) == GM_OK)
      pr__award_event(call, old, "cancelled");
    Gm__Procurement__TenderEvent ev = GM__PROCUREMENT__TENDER_EVENT__INIT;
    ev.tender_id = (char *)id;
    ev.action = "unsuccessful";
    ev.state = "unsuccessful";
    ev.note = "no bidder left to sign the contract";
    pr__tell(call, GM_AUDIENCE_PUBLIC, NULL, "tender", &ev.base);
    return GM_OK;
  }
  int64_t n;
  if ((st = pr__award_make(call, id, tag, "pass", cand, &n)) != GM_OK)
    return st;
  if (n == 0) return GM_OK;
  if (pr__award_read(call, id, tag, atoll(current), pr__s(cand, 6), &old) ==
      GM_OK)
    pr__award_event(call, old, "cancelled");
  Gm__Procurement__Award *a;
  if ((st = pr__award_read(call, id, tag, n, pr__s(cand, 6), &a)) != GM_OK)
    return st;
  host->log(host->market(call), GM_LOG_INFO,
            "tender %s: award %s was not signed within %d days; passed to %s "
            "(award %lld)",
            id, current, PR_SIGN_DAYS, a->supplier, (long long)n);
  pr__award_event(call, a, "notice");
  return GM_OK;
}

gm_status pr__award_get(gm_call *call, const ProtobufCMessage *req,
                        ProtobufCMessage **reply) {
  const Gm__Procurement__AwardRequest *in = (const void *)req;
  Gm__Procurement__TenderView *view;
  gm_status st = pr__tender_read(call, in->tender_id, &view);
  if (st != GM_OK) return st;
  const Gm__Procurement__Tender *t = view->tender;
  if (!pr__may_see(call, t))
    return host->fail(call, GM_NOT_FOUND,
                      "no tender %s; gm procurement tenders lists the "
                      "published ones",
                      in->tender_id);
  if (t->award_number == 0)
    return host->fail(call, GM_NOT_FOUND,
                      "tender %s has no award in force "
                      "(it is %s)",
                      t->id, t->state);
  Gm__Procurement__Award *a;
  if ((st = pr__award_read(call, t->id, host->sprintf(call, "t:%s", t->id),
                           t->award_number, t->currency, &a)) != GM_OK)
    return st;
  *reply = &a->base;
  return GM_OK;
}

/* ---- challenges ---- */

static Gm__Procurement__Challenge *pr__challenge(gm_call *call, const char *id,
                                                 const gm_value *r) {
  /* CHF: id aw who text st remedy answer lodged answered due over cpu */
  Gm__Procurement__Challenge *c = host->alloc(call, sizeof *c);
  gm__procurement__challenge__init(c);
  c->id = (char *)pr__s(r, 0);
  c->tender_id = (char *)id;
  c->award = pr__i32(r, 1);
  c->challenger = (char *)pr__s(r, 2);
  c->text = (char *)pr__s(r, 3);
  c->status = (char *)pr__s(r, 4);
  c->remedy = (Gm__Procurement__Remedy)pr__i32(r, 5);
  c->answer = (char *)pr__s(r, 6);
  c->lodged_ms = pr__i(r, 7);
  c->answered_ms = pr__i(r, 8);
  c->answer_due_ms = pr__i(r, 9);
  c->overdue_ms = pr__i(r, 10);
  c->complaint_until_ms = pr__i(r, 11);
  c->overdue = pr_answer_overdue(c->answer_due_ms, c->answered_ms,
                                 host->now_ms(host->market(call)));
  return c;
}

gm_status pr__challenge_lodge(gm_call *call, const ProtobufCMessage *req,
                              ProtobufCMessage **reply) {
  const Gm__Procurement__ChallengeRequest *in = (const void *)req;
  const char *tag;
  gm_status st;
  if ((st = pr__tender_tag(call, in->tender_id, &tag)) != GM_OK) return st;
  /* Named as the supplier typed them (gm procurement challenge ID
     GROUNDS...), not as the field "text". */
  size_t len = in->text ? strlen(in->text) : 0;
  if (len > 4000)
    return host->fail(call, GM_INVALID_ARGUMENT,
                      "the challenge's grounds are %zu bytes; keep them to "
                      "4000",
                      len);
  if (len == 0)
    return host->fail(call, GM_INVALID_ARGUMENT,
                      "the challenge's grounds are empty; a challenge states "
                      "its grounds in writing (GP Law art. 52)");
  if ((st = pr__text(call, "the challenge's grounds", in->text, 4000, 1)) !=
      GM_OK)
    return st;
  /* The agency has 7 working days to answer (GP Law art. 53); then the
     challenger has 15 more to complain to the finance department (art.
     55). */
  int64_t due, cpu;
  int64_t today = pr_day_of(host->now_ms(host->market(call)));
  if ((st = pr__working_days_end(call, today, PR_ANSWER_WORKING_DAYS, &due)) !=
          GM_OK ||
      (st = pr__working_days_end(call, pr_day_of(due),
                                 PR_COMPLAINT_WORKING_DAYS, &cpu)) != GM_OK)
    return st;
  const char *args[] = {"challenge", in->tender_id, in->text,
                        pr__num(call, due), pr__num(call, cpu)};
  const gm_value *v;
  if ((st = pr__run(call, "award", tag, 5, args, &v)) != GM_OK) return st;
  Gm__Procurement__Challenge *c = pr__challenge(call, in->tender_id, v);
  Gm__Procurement__ChallengeEvent ev = GM__PROCUREMENT__CHALLENGE_EVENT__INIT;
  ev.challenge = c;
  ev.action = "lodged";
  /* Between the challenger and the agency until it is answered. */
  pr__tell(call, GM_AUDIENCE_PARTICIPANT, c->challenger, "challenge", &ev.base);
  pr__tell(call, GM_AUDIENCE_PARTICIPANT, pr__s(v, 12), "challenge", &ev.base);
  *reply = &c->base;
  return GM_OK;
}

/* Splits "<tender>-<letter><digits>[-<digits>]" ids: the tender id and the
   number after the letter. */
static int pr__split(gm_call *call, const char *id, char letter,
                     const char **tender, const char **rest) {
  const char *p = id ? strrchr(id, '-') : NULL;
  while (p && p > id) {
    if (p[1] == letter && p[2] >= '0' && p[2] <= '9') {
      *tender = host->sprintf(call, "%.*s", (int)(p - id), id);
      *rest = p + 2;
      return pr_valid_name(*tender, 3, 48, 0) ? 0 : -1;
    }
    do p--;
    while (p > id && *p != '-');
  }
  return -1;
}

gm_status pr__challenge_answer(gm_call *call, const ProtobufCMessage *req,
                               ProtobufCMessage **reply) {
  const Gm__Procurement__AnswerRequest *in = (const void *)req;
  const char *tender, *num;
  gm_status st;
  if (pr__split(call, in->challenge_id, 'Q', &tender, &num) != 0 ||
      strspn(num, "0123456789") != strlen(num))
    return host->fail(call, GM_INVALID_ARGUMENT,
                      "\"%.80s\" is not a challenge id (<tender>-Q<n>)",
                      in->challenge_id);
  if ((st = pr__text(call, "answer", in->answer, 4000, 1)) != GM_OK) return st;
  if (!in->answer[0])
    return host->fail(call, GM_INVALID_ARGUMENT,
                      "answer is empty; reply to the challenge in writing");
  if (in->upheld && in->remedy != GM__PROCUREMENT__REMEDY__REMEDY_REEVALUATE &&
      in->remedy != GM__PROCUREMENT__REMEDY__REMEDY_CANCEL)
    return host->fail(call, GM_INVALID_ARGUMENT,
                      "an upheld challenge names its remedy: "
                      "REMEDY_REEVALUATE or REMEDY_CANCEL");
  if (!in->upheld && in->remedy != GM__PROCUREMENT__REMEDY__REMEDY_NONE)
    return host->fail(call, GM_INVALID_ARGUMENT,
                      "a dismissed challenge has no remedy");
  const char *args[] = {
      "answer",  tender, num, in->upheld ? "1" : "0", pr__num(call, in->remedy),
      in->answer};
  const gm_value *v;
  if ((st = pr__run(call, "award", host->sprintf(call, "t:%s", tender), 6, args,
                    &v)) != GM_OK)
    return st;
  Gm__Procurement__Challenge *c = pr__challenge(call, tender, v);
  Gm__Procurement__ChallengeEvent ev = GM__PROCUREMENT__CHALLENGE_EVENT__INIT;
  ev.challenge = c;
  ev.action = "answered";
  /* To the challenger, the agency and every supplier whose bid was opened
     (GP Law art. 53: "the challenger and the other suppliers concerned"),
     not the public feed: a challenge's grounds and its answer are between
     those parties, as challenge.list shows them.  A reply stored by an
     older broker has only the challenge: its challenger is told. */
  pr__tell(call, GM_AUDIENCE_PARTICIPANT, c->challenger, "challenge", &ev.base);
  for (size_t i = 12; i < v->n; i++) {
    const char *who = pr__s(v, i);
    if (*who && strcmp(who, c->challenger))
      pr__tell(call, GM_AUDIENCE_PARTICIPANT, who, "challenge", &ev.base);
  }
  *reply = &c->base;
  return GM_OK;
}

/* The "answer" deadline of challenge <tender>-Q<n>: its 7 working days
   passed.  Marked overdue once; the challenger and the agency are told. */
gm_status pr__on_answer(gm_call *call, const gm_deadline *d, void *arg) {
  (void)arg;
  const char *tender, *num;
  if (pr__split(call, d->id, 'Q', &tender, &num) != 0) {
    host->log(host->market(call), GM_LOG_WARN,
              "answer deadline %s is not of a challenge; dropped", d->id);
    return GM_OK;
  }
  const char *args[] = {"overdue", tender, num};
  const gm_value *v;
  gm_status st = pr__run(call, "award", d->tag, 3, args, &v);
  if (st != GM_OK) return st;
  if (v->n < 13) return GM_OK; /* answered, closed or moved meanwhile */
  Gm__Procurement__Challenge *c = pr__challenge(call, tender, v);
  Gm__Procurement__ChallengeEvent ev = GM__PROCUREMENT__CHALLENGE_EVENT__INIT;
  ev.challenge = c;
  ev.action = "overdue";
  pr__tell(call, GM_AUDIENCE_PARTICIPANT, c->challenger, "challenge", &ev.base);
  pr__tell(call, GM_AUDIENCE_PARTICIPANT, pr__s(v, 12), "challenge", &ev.base);
  char d1[24];
  host->log(host->market(call), GM_LOG_INFO,
            "challenge %s: %s did not answer within %d working days; %s may "
            "complain to the finance department until %s",
            c->id, pr__s(v, 12), PR_ANSWER_WORKING_DAYS, c->challenger,
            pr_datetime(c->complaint_until_ms, d1));
  return GM_OK;
}

/* ---- contracts ---- */

static Gm__Procurement__Contract *pr__contract(gm_call *call,
                                               const char *tender,
                                               const gm_value *r) {
  /* KF: id aw agency sup value st items sa ss bond bref dv ac paid note */
  Gm__Procurement__Contract *k = host->alloc(call, sizeof *k);
  gm__procurement__contract__init(k);
  k->id = (char *)pr__s(r, 0);
  k->tender_id = (char *)tender;
  k->award = pr__i32(r, 1);
  k->agency = (char *)pr__s(r, 2);
  k->supplier = (char *)pr__s(r, 3);
  k->value = pr__i(r, 4);
  k->status = (char *)pr__s(r, 5);
  char *items = host->sprintf(call, "%s", pr__s(r, 6)), *save = NULL;
  size_t ni = 1;
  for (char *p = items; *p; p++) ni += *p == ',';
  k->items = host->alloc(call, ni * sizeof *k->items);
  for (char *t = strtok_r(items, ",", &save); t; t = strtok_r(NULL, ",", &save))
    k->items[k->n_items++] = t;
  k->agency_signed_ms = pr__i(r, 7);
  k->supplier_signed_ms = pr__i(r, 8);
  k->bond = pr__i(r, 9);
  k->bond_reference = (char *)pr__s(r, 10);
  k->delivered_ms = pr__i(r, 11);
  k->accepted_ms = pr__i(r, 12);
  k->paid = pr__i(r, 13);
  k->note = (char *)pr__s(r, 14);
  k->currency = (char *)pr__s(r, 15);
  return k;
}

static gm_status pr__contract_op(gm_call *call, const ProtobufCMessage *req,
                                 ProtobufCMessage **reply, const char *op) {
  const Gm__Procurement__ContractRequest *in = (const void *)req;
  const char *tender, *rest, *args[6];
  size_t n = 0;
  gm_status st;
  if (pr__split(call, in->contract_id, 'A', &tender, &rest) != 0)
    return host->fail(call, GM_INVALID_ARGUMENT,
                      "\"%.80s\" is not a contract id (<tender>-A<award>-<n>)",
                      in->contract_id);
  args[n++] = op;
  args[n++] = tender;
  args[n++] = in->contract_id;
  /* `reference` is a different thing to each step: name it as gm's
     option for that step does. */
  const char *what = !strcmp(op, "sign") ? "the bond reference (--bond-ref)"
                     : !strcmp(op, "deliver") ? "the delivery note (--note)"
                     : in->rejected ? "the reason for refusing it (--reject)"
                                    : "the acceptance note";
  if (!strcmp(op, "sign") || !strcmp(op, "deliver")) {
    if ((st = pr__text(call, what, in->reference, 500, 0)) != GM_OK) return st;
    args[n++] = in->reference;
  } else if (!strcmp(op, "accept")) {
    if ((st = pr__text(call, what, in->reference, 500, 0)) != GM_OK) return st;
    if (in->rejected && !in->reference[0])
      return host->fail(call, GM_INVALID_ARGUMENT,
                        "say why the delivery is refused: gm procurement "
                        "accept %s --reject REASON (reference)",
                        in->contract_id);
    args[n++] = in->rejected ? "1" : "0";
    args[n++] = in->reference;
  } else if (!strcmp(op, "pay")) {
    char max[32];
    if (in->amount < 1 || in->amount > PR_MAX_AMOUNT)
      return host->fail(call, GM_INVALID_ARGUMENT,
                        "a payment is 0.01 to %s in the contract's currency "
                        "(yuan for CNY): gm procurement pay %s AMOUNT",
                        pr_yuan(PR_MAX_AMOUNT, max), in->contract_id);
    args[n++] = pr__num(call, in->amount);
  }
  const gm_value *v;
  if ((st = pr__run(call, "award", host->sprintf(call, "t:%s", tender), n, args,
                    &v)) != GM_OK)
    return st;
  Gm__Procurement__Contract *k = pr__contract(call, tender, v);
  if (strcmp(op, "kget") != 0) {
    Gm__Procurement__ContractEvent ev = GM__PROCUREMENT__CONTRACT_EVENT__INIT;
    ev.contract = k;
    ev.action = (char *)op;
    /* Contracts are published (Implementing Regulations art. 50). */
    pr__tell(call, GM_AUDIENCE_PUBLIC, NULL, "contract", &ev.base);
  }
  *reply = &k->base;
  return GM_OK;
}

gm_status pr__contract_sign(gm_call *call, const ProtobufCMessage *req,
                            ProtobufCMessage **reply) {
  return pr__contract_op(call, req, reply, "sign");
}

gm_status pr__contract_deliver(gm_call *call, const ProtobufCMessage *req,
                               ProtobufCMessage **reply) {
  return pr__contract_op(call, req, reply, "deliver");
}

gm_status pr__contract_accept(gm_call *call, const ProtobufCMessage *req,
                              ProtobufCMessage **reply) {
  return pr__contract_op(call, req, reply, "accept");
}

gm_status pr__contract_pay(gm_call *call, const ProtobufCMessage *req,
                           ProtobufCMessage **reply) {
  return pr__contract_op(call, req, reply, "pay");
}

gm_status pr__contract_get(gm_call *call, const ProtobufCMessage *req,
                           ProtobufCMessage **reply) {
  return pr__contract_op(call, req, reply, "kget");
}
