/*
 * Script runs and their replies: reading array replies, the referral
 * record referral.lua returns, and the views of it each reader may see
 * (who sees what is decided here, once: finance__access).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "finance.h"

#include <greenmarket/text.h>

static const gm_value finance__empty = {.type = GM_VALUE_ARRAY};

const char *finance__s(const gm_value *v, size_t i) {
  if (!v || v->type != GM_VALUE_ARRAY || i >= v->n) return "";
  const gm_value *x = &v->items[i];
  return x->type == GM_VALUE_STR ? x->str : "";
}

int64_t finance__i(const gm_value *v, size_t i) {
  if (!v || v->type != GM_VALUE_ARRAY || i >= v->n) return 0;
  const gm_value *x = &v->items[i];
  if (x->type == GM_VALUE_INT) return x->integer;
  return x->type == GM_VALUE_STR ? strtoll(x->str, NULL, 10) : 0;
}

const gm_value *finance__a(const gm_value *v, size_t i) {
  if (!v || v->type != GM_VALUE_ARRAY || i >= v->n ||
      v->items[i].type != GM_VALUE_ARRAY)
    return &finance__empty;
  return &v->items[i];
}

const char *finance__kv(const gm_value *flat, const char *name) {
  for (size_t i = 0; flat && i + 1 < flat->n; i += 2)
    if (!strcmp(finance__s(flat, i), name)) return finance__s(flat, i + 1);
  return "";
}

/* An int64 from a record as an int32 field, clamped (a damaged record's
   2^32 + 100 must not show as 100). */
int32_t finance__clamp32(int64_t v) {
  return v > INT32_MAX ? INT32_MAX : v < INT32_MIN ? INT32_MIN : (int32_t)v;
}

/*
 * The ops that only read, run by their script's read-only twin
 * "<script>.read": the same source registered with GM_SCRIPT_READ_ONLY
 * (init, when the host has script_register_flags), so Redis runs them by
 * FCALL_RO, they still answer when Redis is over maxmemory, and Redis
 * refuses any write they would try.
 */
static const struct {
  const char *script, *twin, *op;
} finance__reads[] = {
    {"dir", "dir.read", "screen"},
    {"dir", "dir.read", "caller"},
    {"dir", "dir.read", "members"},
    {"dir", "dir.read", "calendar"},
    {"dir", "dir.read", "banks"},
    {"dir", "dir.read", "products"},
    {"dir", "dir.read", "catalogue"},
    {"enterprise", "enterprise.read", "get"},
    {"referral", "referral.read", "get"},
    {"enterprise", "enterprise.read", "list"},
    {"enterprise", "enterprise.read", "first"},
    {"queue", "queue.read", "list"},
};
int finance__twins;

/*
 * The ops of the archive, which only free memory, run by their script's
 * twin "<script>.free": the same source registered GM_SCRIPT_ALLOW_OOM, so
 * Redis runs them over maxmemory, where every other write is refused.
 * The host stores no reply of theirs (a retried firing runs them again).
 * What each writes while it frees: arcinfo reads; archive sets one field
 * and hands the record to the ledger (an outbox entry about the size of
 * the keys drop then frees; the settler trims it once settled); drop
 * unlinks the referral's eight keys; later moves the archive deadline
 * being fired (a member already there); unlist takes it out of its
 * enterprise's list.
 * Not rearm (the sweep's): the referrals it finds ended before the
 * archive, and their outbox streams are retired by then, so the mark after
 * it would make a stream again with the whole record in it, which the
 * settler cannot take while Redis is full (its group on a new stream is a
 * write Redis refuses): memory added, none freed.  It waits for room.
 * finance.md, Archive over maxmemory.
 */
static const struct {
  const char *script, *twin, *op;
} finance__frees[] = {
    {"referral", "referral.free", "arcinfo"},
    {"referral", "referral.free", "archive"},
    {"referral", "referral.free", "drop"},
    {"referral", "referral.free", "later"},
    {"enterprise", "enterprise.free", "unlist"},
};
int finance__free_twins;

const char *finance__twin(const char *script, const char *op) {
  for (size_t i = 0; i < sizeof finance__reads / sizeof *finance__reads; i++)
    if (!strcmp(finance__reads[i].script, script) &&
        (!op || !strcmp(finance__reads[i].op, op)))
      return finance__reads[i].twin;
  return NULL;
}

const char *finance__free_twin(const char *script, const char *op) {
  for (size_t i = 0; i < sizeof finance__frees / sizeof *finance__frees; i++)
    if (!strcmp(finance__frees[i].script, script) &&
        (!op || !strcmp(finance__frees[i].op, op)))
      return finance__frees[i].twin;
  return NULL;
}

gm_status finance__run(gm_call *call, const char *script, const char *tag,
                       size_t nargs, const char *const *args,
                       const gm_value **v) {
  static const char *const keys[] = {"k"};
  const char *twin =
      finance__twins && nargs ? finance__twin(script, args[0]) : NULL;
  if (!twin && finance__free_twins && nargs)
    twin = finance__free_twin(script, args[0]);
  gm_status st = host->script_run(call, twin ? twin : script, tag, 1, keys,
                                  nargs, args, v);
  if (st != GM_OK) return st;
  if (!*v || ((*v)->type != GM_VALUE_ARRAY && (*v)->type != GM_VALUE_INT &&
              (*v)->type != GM_VALUE_STR))
    return host->fail(call, GM_INTERNAL,
                      "finance script %s returned nothing; check the gmd log",
                      script);
  return GM_OK;
}

char *finance__num(gm_call *call, int64_t v) {
  return host->sprintf(call, "%lld", (long long)v);
}

int finance__is_centre(gm_call *call) {
  return host->has_role(call, "centre");
}

/* ---- the referral record ---- */

gm_status finance__ref_parse(gm_call *call, const gm_value *v,
                             finance__ref *r) {
  memset(r, 0, sizeof *r);
  if (!v || v->type != GM_VALUE_ARRAY || v->n < 6)
    return host->fail(call, GM_INTERNAL,
                      "referral script reply has an unknown shape; check the "
                      "gmd log");
  r->r = finance__a(v, 0);
  r->eb = finance__a(v, 1);
  r->cl = finance__a(v, 2);
  r->cp = finance__a(v, 3);
  r->x = finance__a(v, 4);
  const gm_value *info = finance__a(v, 5);
  r->transition = finance__s(info, 0);
  r->from = finance__clamp32(finance__i(info, 1));
  r->id = finance__kv(r->r, "id");
  r->state = finance__i32(finance__kv(r->r, "st"));
  r->version = strtoll(finance__kv(r->r, "v"), NULL, 10);
  if (!*r->id)
    return host->fail(call, GM_INTERNAL,
                      "referral script returned a record without an id");
  return GM_OK;
}

const char *finance__f(const finance__ref *r, const char *name) {
  return finance__kv(r->r, name);
}

int64_t finance__fi(const finance__ref *r, const char *name) {
  return strtoll(finance__kv(r->r, name), NULL, 10);
}

int finance__eligible(const finance__ref *r, const char *bank) {
  return bank && *finance__kv(r->eb, bank);
}

static int finance__member(const gm_value *list, const char *s) {
  for (size_t i = 0; s && list && i < list->n; i++)
    if (!strcmp(finance__s(list, i), s)) return 1;
  return 0;
}

int finance__claimant(const finance__ref *r, const char *bank) {
  return finance__member(r->cl, bank);
}

int finance__excluded(const finance__ref *r, const char *bank) {
  return finance__member(r->x, bank);
}

gm_status finance__referral_run(gm_call *call, const char *id, size_t nargs,
                                const char *const *args, finance__ref *r) {
  const gm_value *v;
  gm_status st = finance__run(call, "referral", id, nargs, args, &v);
  /* No referral in Redis: an archived one answers from the ledger. */
  if (st == GM_NOT_FOUND && nargs && strcmp(args[0], "create") != 0)
    return finance__archived(call, id, nargs, args, r);
  if (st != GM_OK) return st;
  return finance__ref_parse(call, v, r);
}

/* ---- who sees what ---- */

Gm__Finance__Access finance__access(const finance__ref *r, const char *bank,
                                    int full) {
  if (full) return GM__FINANCE__ACCESS__ACCESS_FULL;
  if (!bank || !*bank) return GM__FINANCE__ACCESS__ACCESS_NONE;
  /* The bank holding it, or that held it when it ended; not one that
     missed its contact or decision deadline.  A firing clears the bank,
     but a withdrawal after the deadline passed, before it fired, records
     the miss (P.x) and leaves the bank named: the bank loses access as
     the firing would have taken it, whichever came first. */
  if (!strcmp(finance__f(r, "bank"), bank))
    return finance__excluded(r, bank) ? GM__FINANCE__ACCESS__ACCESS_NONE
                                      : GM__FINANCE__ACCESS__ACCESS_FULL;
  if (r->state != GM__FINANCE__STATE__STATE_OPEN &&
      r->state != GM__FINANCE__STATE__STATE_CLAIMED)
    return GM__FINANCE__ACCESS__ACCESS_NONE;
  if (finance__claimant(r, bank))
    return strcmp(finance__f(r, "ci"), "1") == 0
               ? GM__FINANCE__ACCESS__ACCESS_FULL
               : GM__FINANCE__ACCESS__ACCESS_DETAILS;
  if (finance__excluded(r, bank) || !finance__eligible(r, bank) ||
      (int64_t)r->cl->n >= finance__fi(r, "maxc"))
    return GM__FINANCE__ACCESS__ACCESS_NONE;
  return GM__FINANCE__ACCESS__ACCESS_SUMMARY;
}

/* Copies a list reply's strings into a repeated field. */
static char **finance__strings(gm_call *call, const gm_value *list, size_t *n) {
  char **out = host->alloc(call, (list->n + 1) * sizeof *out);
  *n = 0;
  for (size_t i = 0; i < list->n; i++)
    out[(*n)++] = (char *)finance__s(list, i);
  return out;
}

Gm__Finance__Referral *finance__view(gm_call *call, const finance__ref *r,
                                     Gm__Finance__Access a, const char *bank) {
  Gm__Finance__Referral *v = host->alloc(call, sizeof *v);
  gm__finance__referral__init(v);
  v->id = (char *)r->id;
  v->state = (Gm__Finance__State)r->state;
  v->access = a;
  v->version = r->version;
  if (a == GM__FINANCE__ACCESS__ACCESS_NONE) return v;

  /* The summary: class, amount band, tenor, city; nothing about who. */
  int64_t amount = finance__fi(r, "amt");
  char city[7];
  v->class_code = (char *)finance__f(r, "cls");
  v->subitem = (char *)finance__f(r, "sub");
  v->currency = (char *)finance__f(r, "cur");
  gm__finance_band(amount, &v->amount_band_min, &v->amount_band_max);
  v->tenor_months = finance__clamp32(finance__fi(r, "ten"));
  gm__finance_city(finance__f(r, "ereg"), city);
  v->region = host->sprintf(call, "%s", city);
  v->created_ms = finance__fi(r, "ct");
  v->claims = (int32_t)r->cl->n;
  v->max_claims = finance__clamp32(finance__fi(r, "maxc"));
  v->pick_due_ms = finance__fi(r, "pdue");
  v->round = finance__clamp32(finance__fi(r, "rnd"));
  v->updated_ms = finance__fi(r, "ut");
  v->archived_ms = r->archived;
  /* Every bank that sees a summary sees it because the enterprise
     consented to share it. */
  v->consent_share = !strcmp(finance__f(r, "cs"), "1");
  if (a == GM__FINANCE__ACCESS__ACCESS_SUMMARY) return v;

  /* The details of the project, still without who. */
  v->amount = amount;
  v->region = (char *)finance__f(r, "ereg");
  v->use_of_proceeds = (char *)finance__f(r, "use");
  v->description = (char *)finance__f(r, "desc");
  v->co2_avoided_kg = finance__fi(r, "co2");
  v->coal_saved_kg = finance__fi(r, "coal");
  v->consent_identity = !strcmp(finance__f(r, "ci"), "1");
  v->size = (Gm__Finance__SizeClass)finance__fi(r, "esize");
  {
    char *certs = host->sprintf(call, "%s", finance__f(r, "certs"));
    size_t n = 1;
    for (const char *p = certs; *p; p++) n += *p == '\n';
    v->certificates = host->alloc(call, n * sizeof *v->certificates);
    for (char *save = NULL, *t = strtok_r(certs, "\n", &save); t;
         t = strtok_r(NULL, "\n", &save))
      v->certificates[v->n_certificates++] = t;
  }
  if (bank && finance__claimant(r, bank)) {
    v->claimants = host->alloc(call, sizeof *v->claimants);
    v->claimants[0] = (char *)bank;
    v->n_claimants = 1;
  }
  if (a == GM__FINANCE__ACCESS__ACCESS_DETAILS) return v;

  /* Everything: who, and the workflow. */
  Gm__Finance__Enterprise *e = host->alloc(call, sizeof *e);
  gm__finance__enterprise__init(e);
  e->participant = (char *)finance__f(r, "ent");
  e->credit_code = (char *)finance__f(r, "uscc");
  e->name = (char *)finance__f(r, "ename");
  e->region = (char *)finance__f(r, "ereg");
  e->size = (Gm__Finance__SizeClass)finance__fi(r, "esize");
  e->contact = (char *)finance__f(r, "econ");
  /* Withdrawn, the referral's consents end with it (finance.md,
     "Withdrawing your consent"): the bank that held it keeps what it
     already had of its review but is no longer given the contact person
     (personal information, which PIPL art. 47 says to stop processing once
     consent is withdrawn); the enterprise's name and code are a company's.
     Declined, the purpose the contact was shared for (the bank's review
     towards a loan) cannot be achieved any more, the first case of the
     same article: the bank that declined keeps its record of the decline,
     not the contact person.  Funded, the bank has a customer and keeps it;
     expired, no bank holding it reads it at all (a missed deadline). */
  if (bank &&
      (r->state == GM__FINANCE__STATE__STATE_WITHDRAWN ||
       r->state == GM__FINANCE__STATE__STATE_DECLINED) &&
      *e->contact) {
    e->contact = "";
    v->contact_withheld = 1;
  }
  v->enterprise = e;
  v->created_by = (char *)finance__f(r, "by");
  if (!bank) {
    v->claimants = finance__strings(call, r->cl, &v->n_claimants);
    v->missed = finance__strings(call, r->x, &v->n_missed);
  }
  v->bank = (char *)finance__f(r, "bank");
  v->product = (char *)finance__f(r, "prod");
  v->fee_bp = finance__clamp32(finance__fi(r, "fee"));
  v->picked_ms = finance__fi(r, "pk");
  v->contact_due_ms = finance__fi(r, "cdue");
  v->contacted_ms = finance__fi(r, "cx");
  v->contact_note = (char *)finance__f(r, "cnote");
  v->decision_due_ms = finance__fi(r, "ddue");
  v->decision_left_ms = finance__fi(r, "dleft");
  v->question = (char *)finance__f(r, "q");
  v->answer = (char *)finance__f(r, "ans");
  v->approved_amount = finance__fi(r, "aamt");
  v->approved_rate_bp = finance__clamp32(finance__fi(r, "arate"));
  v->approved_tenor_months = finance__clamp32(finance__fi(r, "aten"));
  v->funded_amount = finance__fi(r, "famt");
  v->funded_date = (char *)finance__f(r, "fdate");
  if (r->state == GM__FINANCE__STATE__STATE_FUNDED)
    v->fee = gm__finance_fee(v->funded_amount, v->fee_bp);
  v->decline_reason = (Gm__Finance__DeclineReason)finance__fi(r, "drc");
  v->decline_text = (char *)finance__f(r, "dtx");
  v->withdraw_reason = (char *)finance__f(r, "wr");
  v->end_reason = (char *)finance__f(r, "er");
  return v;
}

/* ---- queue entries ---- */

/* What a bank's queue says of r: "open" (it may claim), "claimed"
   (waiting for the pick), "held" (it holds it, not ended); NULL: none. */
static const char *finance__relation(const finance__ref *r, const char *bank) {
  Gm__Finance__Access a = finance__access(r, bank, 0);
  if (a == GM__FINANCE__ACCESS__ACCESS_SUMMARY) return "open";
  if (r->state == GM__FINANCE__STATE__STATE_OPEN ||
      r->state == GM__FINANCE__STATE__STATE_CLAIMED)
    return a != GM__FINANCE__ACCESS__ACCESS_NONE ? "claimed" : NULL;
  if (r->state >= GM__FINANCE__STATE__STATE_PICKED &&
      r->state <= GM__FINANCE__STATE__STATE_APPROVED &&
      a == GM__FINANCE__ACCESS__ACCESS_FULL)
    return "held";
  return NULL;
}

char *finance__queue_entry(gm_call *call, const finance__ref *r,
                           const char *bank) {
  const char *rel = finance__relation(r, bank);
  int64_t lo, hi;
  char city[7];
  if (!rel) return "";
  gm__finance_band(finance__fi(r, "amt"), &lo, &hi);
  gm__finance_city(finance__f(r, "ereg"), city);
  return host->sprintf(
      call,
      "%s|%d|%s|%s|%s|%lld|%lld|%lld|%s|%lld|%zu|%lld|%lld|%lld|%lld|%lld", rel,
      r->state, finance__f(r, "cls"), finance__f(r, "sub"),
      finance__f(r, "cur"), (long long)lo, (long long)hi,
      (long long)finance__fi(r, "ten"), city, (long long)finance__fi(r, "ct"),
      r->cl->n, (long long)finance__fi(r, "maxc"),
      (long long)finance__fi(r, "pdue"), (long long)finance__fi(r, "rnd"),
      (long long)finance__fi(r, "cdue"), (long long)finance__fi(r, "ddue"));
}

Gm__Finance__Referral *finance__queue_view(gm_call *call, const char *id,
                                           const char *entry,
                                           const char **relation) {
  char *copy = host->sprintf(call, "%s", entry ? entry : "");
  char *f[16] = {0};
  size_t n = 0;
  for (char *p = copy; n < 16;) {
    f[n++] = p;
    char *bar = strchr(p, '|');
    if (!bar) break;
    *bar = '\0';
    p = bar + 1;
  }
  for (size_t i = n; i < 16; i++) f[i] = "";
  Gm__Finance__Referral *v = host->alloc(call, sizeof *v);
  gm__finance__referral__init(v);
  *relation = f[0];
  v->id = (char *)id;
  v->access = GM__FINANCE__ACCESS__ACCESS_SUMMARY;
  v->state = (Gm__Finance__State)finance__i32(f[1]);
  v->class_code = f[2];
  v->subitem = f[3];
  v->currency = f[4];
  v->amount_band_min = strtoll(f[5], NULL, 10);
  v->amount_band_max = strtoll(f[6], NULL, 10);
  v->tenor_months = finance__i32(f[7]);
  v->region = f[8];
  v->created_ms = strtoll(f[9], NULL, 10);
  v->claims = finance__i32(f[10]);
  v->max_claims = finance__i32(f[11]);
  v->pick_due_ms = strtoll(f[12], NULL, 10);
  v->round = finance__i32(f[13]);
  v->contact_due_ms = strtoll(f[14], NULL, 10);
  /* Entries written before the decision deadline have no 16th field. */
  v->decision_due_ms = strtoll(f[15], NULL, 10);
  return v;
}

Gm__Finance__Enterprise *finance__enterprise(gm_call *call,
                                             const gm_value *flat) {
  Gm__Finance__Enterprise *e = host->alloc(call, sizeof *e);
  gm__finance__enterprise__init(e);
  e->participant = (char *)finance__kv(flat, "who");
  e->credit_code = (char *)finance__kv(flat, "uscc");
  e->name = (char *)finance__kv(flat, "name");
  e->region = (char *)finance__kv(flat, "region");
  e->size = (Gm__Finance__SizeClass)finance__i32(finance__kv(flat, "size"));
  e->contact = (char *)finance__kv(flat, "contact");
  e->registered_ms = strtoll(finance__kv(flat, "rt"), NULL, 10);
  return e;
}

/* ---- products ---- */

static char *finance__join(gm_call *call, char **items, size_t n) {
  size_t len = 1;
  for (size_t i = 0; i < n; i++) len += strlen(items[i]) + 1;
  char *out = host->alloc(call, len), *p = out;
  for (size_t i = 0; i < n; i++)
    p += snprintf(p, len - (size_t)(p - out), "%s%s", i ? "," : "", items[i]);
  return out;
}

char *finance__product_pack(gm_call *call, const Gm__Finance__Product *p) {
  return host->sprintf(
      call, "%s|%s|%lld|%lld|%d|%d|%s|%s|%d|%d|%d", p->bank, p->currency,
      (long long)p->amount_min, (long long)p->amount_max, p->tenor_min_months,
      p->tenor_max_months, finance__join(call, p->classes, p->n_classes),
      finance__join(call, p->regions, p->n_regions), p->rate_min_bp,
      p->rate_max_bp, p->fee_bp);
}

/* "a,b" -> a repeated field (in the call's arena). */
static char **finance__split(gm_call *call, const char *s, size_t *n) {
  char *copy = host->sprintf(call, "%s", s);
  size_t cap = 1;
  for (const char *p = s; *p; p++) cap += *p == ',';
  char **out = host->alloc(call, cap * sizeof *out);
  *n = 0;
  for (char *save = NULL, *t = strtok_r(copy, ",", &save); t && *n < cap;
       t = strtok_r(NULL, ",", &save))
    out[(*n)++] = t;
  return out;
}

Gm__Finance__Product *finance__product_unpack(gm_call *call, const char *id,
                                              const char *rec,
                                              const char *name) {
  char *copy = host->sprintf(call, "%s", rec ? rec : "");
  char *f[11];
  size_t n = 0;
  for (char *p = copy; n < 11;) {
    f[n++] = p;
    char *bar = strchr(p, '|');
    if (!bar) break;
    *bar = '\0';
    p = bar + 1;
  }
  if (n != 11) return NULL;
  Gm__Finance__Product *p = host->alloc(call, sizeof *p);
  gm__finance__product__init(p);
  p->id = (char *)id;
  p->name = (char *)(name ? name : "");
  p->bank = f[0];
  p->currency = f[1];
  p->amount_min = strtoll(f[2], NULL, 10);
  p->amount_max = strtoll(f[3], NULL, 10);
  p->tenor_min_months = finance__i32(f[4]);
  p->tenor_max_months = finance__i32(f[5]);
  p->classes = finance__split(call, f[6], &p->n_classes);
  p->regions = finance__split(call, f[7], &p->n_regions);
  p->rate_min_bp = finance__i32(f[8]);
  p->rate_max_bp = finance__i32(f[9]);
  p->fee_bp = finance__i32(f[10]);
  return p;
}

/* ---- checks on what requests carry ---- */

gm_status finance__need_text(gm_call *call, const char *field, const char *s,
                             size_t min, size_t max, int lines) {
  size_t n = s ? strlen(s) : 0;
  char why[200];
  if (n < min)
    return host->fail(call, GM_INVALID_ARGUMENT, "%s is empty; %s", field,
                      min ? "it is required" : "");
  if (n > max)
    return host->fail(call, GM_INVALID_ARGUMENT,
                      "%s is %zu bytes; keep it to %zu", field, n, max);
  /* The markets' text rule (greenmarket/text.h): bidi marks and controls
     would let a text show other than it reads (one bank's or enterprise's
     name passing for another's). */
  if (gm_text_check(s, lines ? GM_TEXT_LINES : 0, why, sizeof why) != 0)
    return host->fail(call, GM_INVALID_ARGUMENT, "%s %s", field, why);
  return GM_OK;
}

int32_t finance__i32(const char *s) {
  return finance__clamp32(strtoll(s ? s : "", NULL, 10));
}

const char *finance__q(gm_call *call, const char *s, size_t max) {
  char *out = host->alloc(call, max + 4);
  return gm__finance_cut(s, max, out, max + 4);
}
