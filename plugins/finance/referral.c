/*
 * Referrals in: screening (the catalogue, the consent, the products that
 * fit), submitting, reading and listing.  Screening's rules are here and
 * in rules.c; dir.lua only hands over the data.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <greenmarket/iso4217.h>

#include "finance.h"

/* What screening found. */
typedef struct finance__screening {
  char **reasons; /* every reason it is not eligible */
  size_t nreasons;
  char *eligible;     /* dir.lua 'create' form: "bank=p/fee,p/fee;bank=..." */
  const char **banks; /* the banks with a product that fits */
  size_t nbanks, nproducts;
  const gm_value *members; /* staff of the class's banks: {{bank, m...}} */
  gm__finance_calendar cal;
  const gm_value *profile; /* the enterprise's, flat */
} finance__screening;

/* Checks what the request carries (INVALID_ARGUMENT: the request is
 * malformed, as opposed to a need that is not eligible). */
static gm_status finance__check_refer(gm_call *call,
                                      const Gm__Finance__ReferRequest *in,
                                      const char **ent, const char **cur) {
  const char *me = host->participant(call);
  gm_status st;
  *ent = in->enterprise[0] ? in->enterprise : me;
  if (!gm__finance_valid_participant(*ent))
    return host->fail(call, GM_INVALID_ARGUMENT,
                      "enterprise \"%s\" is not a participant id",
                      finance__q(call, in->enterprise, 70));
  if (!in->enterprise[0] && finance__is_centre(call) &&
      !host->has_role(call, "enterprise"))
    return host->fail(call, GM_INVALID_ARGUMENT,
                      "the centre refers on an enterprise's behalf: name it "
                      "(gm finance refer ... --for PARTICIPANT; enterprise "
                      "in the API)");
  if (strcmp(*ent, me) != 0 && !finance__is_centre(call))
    return host->fail(call, GM_PERMISSION_DENIED,
                      "only the centre refers on another enterprise's behalf; "
                      "leave enterprise empty to refer your own need");
  char y1[40], y2[40];
  *cur = in->currency[0] ? in->currency : "CNY";
  if (!gm_iso4217_money(*cur))
    return host->fail(call, GM_INVALID_ARGUMENT,
                      "currency \"%s\" is not an ISO 4217 currency in use "
                      "(such as CNY or USD; not a metal, a unit of account, "
                      "XTS or XXX)",
                      finance__q(call, in->currency, 8));
  if (in->amount < 1 || in->amount > GM_FINANCE_MAX_AMOUNT)
    return host->fail(call, GM_INVALID_ARGUMENT,
                      "amount must be above 0 and at most %s %s, not %s",
                      gm__finance_format_money(GM_FINANCE_MAX_AMOUNT, *cur, y1),
                      *cur, gm__finance_format_money(in->amount, *cur, y2));
  char err[200];
  if (gm__finance_money_check("the amount", in->amount, *cur, err, sizeof err))
    return host->fail(call, GM_INVALID_ARGUMENT, "%s", err);
  if (in->tenor_months < 1 || in->tenor_months > GM_FINANCE_MAX_TENOR)
    return host->fail(call, GM_INVALID_ARGUMENT,
                      "tenor must be 1..%d months, not %d",
                      GM_FINANCE_MAX_TENOR, in->tenor_months);
  if (!gm__finance_valid_code(in->class_code) || strchr(in->class_code, '.'))
    return host->fail(call, GM_INVALID_ARGUMENT,
                      "class \"%s\" is not a top class of the catalogue "
                      "(1 to 6: energy saving and environmental protection, "
                      "cleaner production, clean energy, ecological "
                      "environment, green infrastructure upgrade, green "
                      "services)",
                      finance__q(call, in->class_code, 16));
  if (!gm__finance_valid_code(in->subitem) || !strchr(in->subitem, '.') ||
      gm__finance_top(in->subitem) != in->class_code[0])
    return host->fail(call, GM_INVALID_ARGUMENT,
                      "sub-item \"%s\" is not a catalogue code under class "
                      "%s (like %s.1); gm finance catalogue lists them",
                      finance__q(call, in->subitem, 16), in->class_code,
                      in->class_code);
  if ((st = finance__need_text(call, "use of proceeds", in->use_of_proceeds, 1,
                               500, 1)) != GM_OK ||
      (st = finance__need_text(call, "description", in->description, 1,
                               FINANCE_MAX_TEXT, 1)) != GM_OK)
    return st;
  if (in->co2_avoided_kg < 0 || in->co2_avoided_kg > GM_FINANCE_MAX_BENEFIT ||
      in->coal_saved_kg < 0 || in->coal_saved_kg > GM_FINANCE_MAX_BENEFIT)
    return host->fail(call, GM_INVALID_ARGUMENT,
                      "expected benefits are 0..%lld kg a year each (CO2e "
                      "avoided, standard coal saved)",
                      (long long)GM_FINANCE_MAX_BENEFIT);
  if (in->n_certificates > FINANCE_MAX_CERTS)
    return host->fail(call, GM_INVALID_ARGUMENT,
                      "give at most %d certificates, not %zu",
                      FINANCE_MAX_CERTS, in->n_certificates);
  for (size_t i = 0; i < in->n_certificates; i++)
    if ((st = finance__need_text(call,
                                 host->sprintf(call, "certificate %zu", i + 1),
                                 in->certificates[i], 1, 64, 0)) != GM_OK)
      return st;
  return GM_OK;
}

/* A failed criterion: "<n> do not <what>". */
static void finance__count(gm_call *call, char **out, size_t n,
                           const char *what) {
  if (!n) return;
  *out = host->sprintf(call, "%s%s%zu %s %s", *out, **out ? ", " : "", n,
                       n == 1 ? "does not" : "do not", what);
}

/*
 * Screens a need: the enterprise's profile, then the directory's data for
 * the class (one read step each); fills s.  Steps: enterprise 'get', dir
 * 'screen'.
 */
static gm_status finance__screen(gm_call *call,
                                 const Gm__Finance__ReferRequest *in,
                                 const char *ent, const char *cur,
                                 finance__screening *s) {
  const gm_value *v;
  gm_status st;
  memset(s, 0, sizeof *s);
  const char *get[] = {"get"};
  if ((st = finance__run(call, "enterprise", host->sprintf(call, "e:%s", ent),
                         1, get, &s->profile)) != GM_OK)
    return st;
  const char *region = finance__kv(s->profile, "region");
  int64_t today = gm__finance_day_of(host->now_ms(host->market(call)));
  const char *args[] = {"screen", in->class_code, in->subitem,
                        finance__num(call, today),
                        finance__num(call, today + FINANCE_HORIZON_DAYS)};
  if ((st = finance__dir(call, 5, args, &v)) != GM_OK) return st;
  const gm_value *cat = finance__a(v, 0), *prods = finance__a(v, 1);
  s->members = finance__a(v, 2);
  finance__calendar_from(call, finance__a(v, 3), &s->cal);
  s->reasons = host->alloc(call, 4 * sizeof *s->reasons);

  int listed = strcmp(finance__s(cat, 0), "1") == 0
                   ? finance__s(cat, 1)[0] != '\0'
                   : finance__builtin_find(in->subitem) != NULL;
  if (!listed)
    s->reasons[s->nreasons++] = host->sprintf(
        call,
        "item %s is not in the Green Industry Guidance Catalogue in force; "
        "gm finance catalogue lists the items of class %s",
        in->subitem, in->class_code);
  if (!in->consent_share)
    s->reasons[s->nreasons++] = host->sprintf(
        call,
        "the enterprise has not consented to share this need with banks "
        "(consent_share); without it no bank may see it");

  /* The products of the class: which fit, and why the others do not. */
  size_t n = 0, item = 0, money = 0, amount = 0, tenor = 0, place = 0;
  size_t cap = prods->n / 3 + 1, len = 1;
  const char **fit_bank = host->alloc(call, cap * sizeof *fit_bank);
  const Gm__Finance__Product **fit = host->alloc(call, cap * sizeof *fit);
  size_t nfit = 0;
  for (size_t i = 0; i + 2 < prods->n; i += 3) {
    if (strcmp(finance__s(prods, i + 2), "1") == 0) continue; /* retired */
    Gm__Finance__Product *p = finance__product_unpack(
        call, finance__s(prods, i), finance__s(prods, i + 1), "");
    if (!p) continue;
    n++;
    int ok = 1, covers = 0;
    for (size_t k = 0; k < p->n_classes; k++)
      covers |= gm__finance_class_covers(p->classes[k], in->subitem);
    if (!covers) item++, ok = 0;
    if (strcmp(p->currency, cur)) money++, ok = 0;
    if (in->amount < p->amount_min || in->amount > p->amount_max)
      amount++, ok = 0;
    if (in->tenor_months < p->tenor_min_months ||
        in->tenor_months > p->tenor_max_months)
      tenor++, ok = 0;
    int there = p->n_regions == 0;
    for (size_t k = 0; k < p->n_regions; k++)
      there |= gm__finance_region_covers(p->regions[k], region);
    if (!there) place++, ok = 0;
    if (!ok) continue;
    fit_bank[nfit] = p->bank;
    fit[nfit++] = p;
    len += strlen(p->bank) + strlen(p->id) + 16;
  }
  if (nfit == 0) {
    char yuan[40];
    char *why = host->sprintf(call, "%s", "");
    finance__count(call, &why, item,
                   host->sprintf(call, "cover item %s", in->subitem));
    finance__count(call, &why, money, host->sprintf(call, "lend in %s", cur));
    finance__count(
        call, &why, amount,
        host->sprintf(call, "lend %s %s",
                      gm__finance_format_money(in->amount, cur, yuan), cur));
    finance__count(
        call, &why, tenor,
        host->sprintf(call, "lend over %d months", in->tenor_months));
    finance__count(call, &why, place,
                   host->sprintf(call, "cover region %s", region));
    s->reasons[s->nreasons++] =
        n == 0
            ? host->sprintf(call, "no bank offers a product for class %s yet",
                            in->class_code)
            : host->sprintf(call,
                            "no bank product fits: of the %zu products "
                            "for class %s, %s (a product may miss on "
                            "several)",
                            n, in->class_code, why);
  }

  /* "bank=p/fee,p/fee;bank=..." in the order the banks first appear. */
  s->eligible = host->alloc(call, len + 1);
  s->banks = host->alloc(call, (nfit + 1) * sizeof *s->banks);
  char *w = s->eligible;
  for (size_t i = 0; i < nfit; i++) {
    size_t b = 0;
    while (b < s->nbanks && strcmp(s->banks[b], fit_bank[i])) b++;
    if (b < s->nbanks) continue;
    s->banks[s->nbanks++] = fit_bank[i];
    w += sprintf(w, "%s%s=", w == s->eligible ? "" : ";", fit_bank[i]);
    int first = 1;
    for (size_t j = i; j < nfit; j++)
      if (!strcmp(fit_bank[j], fit_bank[i])) {
        w +=
            sprintf(w, "%s%s/%d", first ? "" : ",", fit[j]->id, fit[j]->fee_bp);
        first = 0;
      }
  }
  s->nproducts = nfit;
  return GM_OK;
}

gm_status finance__referral_screen(gm_call *call, const ProtobufCMessage *req,
                                   ProtobufCMessage **reply) {
  const Gm__Finance__ReferRequest *in = (const Gm__Finance__ReferRequest *)req;
  const char *ent, *cur;
  finance__screening s;
  gm_status st;
  if ((st = finance__check_refer(call, in, &ent, &cur)) != GM_OK ||
      (st = finance__screen(call, in, ent, cur, &s)) != GM_OK)
    return st;
  Gm__Finance__ScreenReply *out = host->alloc(call, sizeof *out);
  gm__finance__screen_reply__init(out);
  out->eligible = s.nreasons == 0;
  out->reasons = s.reasons;
  out->n_reasons = s.nreasons;
  out->banks = (int32_t)s.nbanks;
  out->products = (int32_t)s.nproducts;
  *reply = &out->base;
  return GM_OK;
}

gm_status finance__referral_create(gm_call *call, const ProtobufCMessage *req,
                                   ProtobufCMessage **reply) {
  const Gm__Finance__ReferRequest *in = (const Gm__Finance__ReferRequest *)req;
  const char *ent, *cur;
  finance__screening s;
  const gm_value *v;
  gm_status st;
  int64_t pdue;
  if ((st = finance__check_refer(call, in, &ent, &cur)) != GM_OK ||
      (st = finance__screen(call, in, ent, cur, &s)) != GM_OK)
    return st;
  if (s.nreasons) {
    char *all = host->sprintf(call, "%s", s.reasons[0]);
    for (size_t i = 1; i < s.nreasons; i++)
      all = host->sprintf(call, "%s; %s", all, s.reasons[i]);
    return host->fail(call, GM_FAILED_PRECONDITION, "not eligible: %s", all);
  }
  if ((st = finance__pick_due(call, &s.cal, &pdue)) != GM_OK) return st;
  const char *take[] = {"take"};
  if ((st = finance__dir(call, 1, take, &v)) != GM_OK) return st;
  const char *id = v->type == GM_VALUE_STR ? v->str : "";
  if (!gm__finance_valid_referral(id))
    return host->fail(call, GM_INTERNAL, "the referral counter gave no id");

  size_t certs_len = 1;
  for (size_t i = 0; i < in->n_certificates; i++)
    certs_len += strlen(in->certificates[i]) + 1;
  char *certs = host->alloc(call, certs_len), *c = certs;
  for (size_t i = 0; i < in->n_certificates; i++)
    c += sprintf(c, "%s%s", i ? "\n" : "", in->certificates[i]);
  const gm_value *p = s.profile;
  const char *args[] = {"create",
                        finance__num(call, pdue),
                        s.eligible,
                        "ent",
                        ent,
                        "by",
                        host->participant(call),
                        "uscc",
                        finance__kv(p, "uscc"),
                        "ename",
                        finance__kv(p, "name"),
                        "ereg",
                        finance__kv(p, "region"),
                        "esize",
                        finance__kv(p, "size"),
                        "econ",
                        finance__kv(p, "contact"),
                        "cls",
                        in->class_code,
                        "sub",
                        in->subitem,
                        "cur",
                        cur,
                        "amt",
                        finance__num(call, in->amount),
                        "ten",
                        finance__num(call, in->tenor_months),
                        "use",
                        in->use_of_proceeds,
                        "desc",
                        in->description,
                        "co2",
                        finance__num(call, in->co2_avoided_kg),
                        "coal",
                        finance__num(call, in->coal_saved_kg),
                        "certs",
                        certs,
                        "cs",
                        "1",
                        "ci",
                        in->consent_identity ? "1" : "0",
                        "maxc",
                        finance__num(call, finance__max_claims)};
  finance__ref r;
  if ((st = finance__referral_run(call, id, sizeof args / sizeof args[0], args,
                                  &r)) != GM_OK)
    return st;
  if ((st = finance__after(call, &r, s.banks, s.nbanks, s.members)) != GM_OK)
    return st;
  *reply =
      &finance__view(call, &r, GM__FINANCE__ACCESS__ACCESS_FULL, NULL)->base;
  return GM_OK;
}

gm_status finance__referral_get(gm_call *call, const ProtobufCMessage *req,
                                ProtobufCMessage **reply) {
  const Gm__Finance__ReferralRequest *in =
      (const Gm__Finance__ReferralRequest *)req;
  finance__ref r;
  gm_status st;
  if (!gm__finance_valid_referral(in->id))
    return host->fail(call, GM_INVALID_ARGUMENT,
                      "\"%s\" is not a referral id (R and 8 digits, as "
                      "referral.create returns it)",
                      finance__q(call, in->id, 20));
  const char *args[] = {"get"};
  if ((st = finance__referral_run(call, in->id, 1, args, &r)) != GM_OK)
    return st;
  const char *me = host->participant(call);
  if (!strcmp(me, finance__f(&r, "ent")) || finance__is_centre(call)) {
    *reply =
        &finance__view(call, &r, GM__FINANCE__ACCESS__ACCESS_FULL, NULL)->base;
    return GM_OK;
  }
  if (host->has_role(call, "bank")) {
    const char *bank;
    const gm_value *members;
    if ((st = finance__caller_bank(call, &bank, &members)) != GM_OK) return st;
    Gm__Finance__Access a = finance__access(&r, bank, 0);
    if (a != GM__FINANCE__ACCESS__ACCESS_NONE) {
      *reply = &finance__view(call, &r, a, bank)->base;
      return GM_OK;
    }
    return host->fail(call, GM_PERMISSION_DENIED,
                      "your bank %s has no access to %s: banks whose products "
                      "fit see it while it is open, its claimants until the "
                      "pick (none once it is withdrawn or expires unpicked), "
                      "and then only the bank picked (none once it missed "
                      "its contact or decision deadline)",
                      bank, in->id);
  }
  return host->fail(call, GM_PERMISSION_DENIED,
                    "only the enterprise that referred %s, the centre and "
                    "banks with access may read it",
                    in->id);
}

/* The ledger's archived referrals of one enterprise, by creation. */
typedef struct finance__arch_rows {
  const char **id;
  int64_t *ms;
  size_t n, cap;
} finance__arch_rows;

static int finance__arch_row(void *arg, size_t ncols, const gm_param *c) {
  finance__arch_rows *a = arg;
  if (ncols < 2 || a->n >= a->cap || c[0].type != GM_PARAM_TEXT) return 0;
  a->id[a->n] = c[0].s;
  a->ms[a->n++] = c[1].i;
  return 0;
}

static int finance__count_row(void *arg, size_t ncols, const gm_param *c) {
  if (ncols > 0) *(int64_t *)arg = c[0].i;
  return 1;
}

gm_status finance__referral_list(gm_call *call, const ProtobufCMessage *req,
                                 ProtobufCMessage **reply) {
  const Gm__Finance__ReferralsRequest *in =
      (const Gm__Finance__ReferralsRequest *)req;
  const char *me = host->participant(call);
  const char *who = in->enterprise[0] ? in->enterprise : me;
  int32_t limit = in->limit ? in->limit : FINANCE_LIST_DEFAULT;
  gm_status st;
  if (!gm__finance_valid_participant(who))
    return host->fail(call, GM_INVALID_ARGUMENT,
                      "enterprise \"%s\" is not a participant id",
                      finance__q(call, who, 70));
  if (strcmp(who, me) && !finance__is_centre(call))
    return host->fail(call, GM_PERMISSION_DENIED,
                      "only the centre lists another enterprise's referrals");
  if (limit < 1 || limit > FINANCE_LIST_MAX || in->offset < 0 ||
      in->offset > FINANCE_LIST_OFFSET_MAX)
    return host->fail(call, GM_INVALID_ARGUMENT,
                      "limit must be 1..%d and offset 0..%d (got limit %d, "
                      "offset %d)",
                      FINANCE_LIST_MAX, FINANCE_LIST_OFFSET_MAX, (int)limit,
                      (int)in->offset);
  /* The enterprise's list in Redis holds its referrals until their
     archive (archive.c), the ledger those archived since: both by
     creation (ms, then id), merged, each once (one is in both between the
     ledger taking its record and its unlisting, a second at most). */
  int64_t want = (int64_t)in->offset + limit;
  const char *args[] = {"first", finance__num(call, want)};
  const gm_value *v;
  if ((st = finance__run(call, "enterprise", host->sprintf(call, "e:%s", who),
                         2, args, &v)) != GM_OK)
    return st;
  finance__arch_rows a = {.cap = (size_t)want};
  a.id = host->alloc(call, (a.cap + 1) * sizeof *a.id);
  a.ms = host->alloc(call, (a.cap + 1) * sizeof *a.ms);
  int64_t archived = 0;
  if ((st = host->ledger_query(
           call,
           "SELECT id, created_ms FROM finance_referrals WHERE enterprise = ?1"
           " AND archived_ms > 0 ORDER BY created_ms, id LIMIT ?2",
           (gm_param[]){GM_TEXT(who), GM_INT(want)}, 2, finance__arch_row,
           &a)) != GM_OK ||
      (st = host->ledger_query(
           call,
           "SELECT count(*) FROM finance_referrals WHERE enterprise = ?1"
           " AND archived_ms > 0",
           (gm_param[]){GM_TEXT(who)}, 1, finance__count_row, &archived)) !=
          GM_OK)
    return st;
  Gm__Finance__ReferralList *out = host->alloc(call, sizeof *out);
  gm__finance__referral_list__init(out);
  out->referrals =
      host->alloc(call, ((size_t)limit + 1) * sizeof *out->referrals);
  size_t nr = (v->n - 1) / 2, ri = 0, li = 0;
  int64_t pos = 0, both = 0;
  const char *get[] = {"get"};
  while (pos < want && (ri < nr || li < a.n)) {
    const char *id;
    if (ri < nr && li < a.n) {
      const char *rid = finance__s(v, 1 + 2 * ri);
      int64_t rms = strtoll(finance__s(v, 2 + 2 * ri), NULL, 10);
      int c = rms < a.ms[li] ? -1 : rms > a.ms[li] ? 1 : strcmp(rid, a.id[li]);
      if (c == 0) { /* in both: once */
        li++;
        both++;
        continue;
      }
      id = c < 0 ? (ri++, rid) : a.id[li++];
    } else {
      id = ri < nr ? finance__s(v, 1 + 2 * ri++) : a.id[li++];
    }
    if (pos++ < in->offset || !gm__finance_valid_referral(id)) continue;
    finance__ref r;
    if ((st = finance__referral_run(call, id, 1, get, &r)) != GM_OK) return st;
    out->referrals[out->n_referrals++] =
        finance__view(call, &r, GM__FINANCE__ACCESS__ACCESS_FULL, NULL);
  }
  out->total = finance__i(v, 0) + archived - both;
  *reply = &out->base;
  return GM_OK;
}
