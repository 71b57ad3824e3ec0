/* Enterprise profiles (enterprise.lua): registered once, copied into each
 * referral when it is submitted. */
#include <stdio.h>
#include <string.h>

#include <greenmarket/uscc.h>

#include "finance.h"

/* The profile's owner: the caller, or (the centre only) another. */
static gm_status finance__whose(gm_call *call, const char *asked,
                                const char **who) {
  const char *me = host->participant(call);
  *who = asked && *asked ? asked : me;
  if (!gm__finance_valid_participant(*who))
    return host->fail(call, GM_INVALID_ARGUMENT,
                      "participant \"%s\" is not 1-64 of letters, digits, "
                      ". _ -",
                      finance__q(call, *who, 70));
  if (strcmp(*who, me) != 0 && !finance__is_centre(call))
    return host->fail(call, GM_PERMISSION_DENIED,
                      "only %s itself or the centre may use the profile of "
                      "enterprise %s",
                      *who, *who);
  return GM_OK;
}

/*
 * The code's claim is another participant's: taken over when that
 * participant's profile does not hold the code (a profile write that
 * failed after its claim, or two registrations of one participant at
 * once, left it) and the claim was a minute old when it was read (dir.lua
 * uscc_take); else refused as the claim was, naming the holder to the
 * centre only.  Before the take, the holder's profile is fenced against
 * that claim (enterprise.lua uscc_fence): a registration of the holder's
 * still to write its profile under it (a retry, which replays its claim
 * step as it succeeded then) writes nothing.  *v: the take's reply.
 */
static gm_status finance__uscc_stale(gm_call *call, const char *code,
                                     const char *who, const char *centre,
                                     const gm_value **v) {
  const char *q[] = {"uscc_holder", code};
  const gm_value *h, *fence;
  gm_status st;
  if ((st = finance__dir(call, 2, q, &h)) != GM_OK) return st;
  const char *holder = finance__s(h, 0), *was = "";
  /* A minute old when read: a registration of the holder's is past its
     profile write by then, so the fence stops only a retry of one. */
  if (holder[0] && !strcmp(finance__s(h, 3), "1")) {
    const char *args[] = {"uscc_fence", code, finance__s(h, 1)};
    if ((st = finance__run(call, "enterprise",
                           host->sprintf(call, "e:%s", holder), 3, args,
                           &fence)) != GM_OK)
      return st;
    if (!strcmp(finance__s(fence, 0), "fenced")) was = holder;
  }
  /* The claim's time and the read's from uscc_holder: the fence above is
     after that read, so a claim a minute old then had its holder's
     profile write behind it (a replay on retry included). */
  const char *take[] = {
      "uscc_take", code, who, was, centre, finance__s(h, 1), finance__s(h, 2)};
  return finance__dir(call, 7, take, v);
}

gm_status finance__enterprise_register(gm_call *call,
                                       const ProtobufCMessage *req,
                                       ProtobufCMessage **reply) {
  const Gm__Finance__RegisterEnterpriseRequest *in =
      (const Gm__Finance__RegisterEnterpriseRequest *)req;
  const Gm__Finance__Enterprise *e = in->enterprise;
  const char *who;
  char why[256];
  gm_status st;
  if (!e) return host->fail(call, GM_INVALID_ARGUMENT, "give the enterprise");
  if ((st = finance__whose(call, e->participant, &who)) != GM_OK) return st;
  if (gm_uscc_check(e->credit_code, strlen(e->credit_code), why, sizeof why))
    return host->fail(call, GM_INVALID_ARGUMENT,
                      "credit code (unified social credit code): %s", why);
  if ((st = finance__need_text(call, "enterprise name", e->name, 1,
                               FINANCE_MAX_NAME, 0)) != GM_OK ||
      (st = finance__need_text(call, "contact", e->contact, 1, FINANCE_MAX_NAME,
                               0)) != GM_OK)
    return st;
  if (!gm__finance_valid_region(e->region))
    return host->fail(call, GM_INVALID_ARGUMENT,
                      "region \"%s\" %s; give the administrative division "
                      "code (GB/T 2260), e.g. 330502",
                      finance__q(call, e->region, 16),
                      gm__finance_region_why(e->region));
  if (e->size < GM__FINANCE__SIZE_CLASS__SIZE_LARGE ||
      e->size > GM__FINANCE__SIZE_CLASS__SIZE_MICRO)
    return host->fail(call, GM_INVALID_ARGUMENT,
                      "size must be large, medium, small or micro");
  char *tag = host->sprintf(call, "e:%s", who);
  /* One credit code, one profile (dir.lua P.uscc): claimed before the
     profile takes it, the old one freed after, so a broker stopped
     between the steps leaves a code held rather than two profiles with
     one code. */
  const char *code_args[] = {"code"};
  const gm_value *old;
  if ((st = finance__run(call, "enterprise", tag, 1, code_args, &old)) != GM_OK)
    return st;
  const char *was = old->type == GM_VALUE_STR ? old->str : "";
  const char *centre = finance__is_centre(call) ? "1" : "0";
  const char *claim[] = {"uscc_claim", e->credit_code, who, centre};
  const gm_value *v;
  if ((st = finance__dir(call, 4, claim, &v)) == GM_ALREADY_EXISTS &&
      (st = finance__uscc_stale(call, e->credit_code, who, centre, &v)) !=
          GM_OK)
    return st;
  if (st != GM_OK) return st;
  /* With the claim's ms: a claim taken over since (a retry that replayed
     the claim step) writes no profile (enterprise.lua P.lost). */
  const char *args[] = {"register",     who,
                        e->credit_code, e->name,
                        e->region,      finance__num(call, e->size),
                        e->contact,     finance__s(v, 2)};
  if ((st = finance__run(call, "enterprise", tag, 8, args, &v)) != GM_OK)
    return st;
  if (was[0] && strcmp(was, e->credit_code) != 0) {
    const char *release[] = {"uscc_free", was, who};
    const gm_value *w;
    if ((st = finance__dir(call, 3, release, &w)) != GM_OK) return st;
  }
  *reply = &finance__enterprise(call, v)->base;
  return GM_OK;
}

gm_status finance__enterprise_get(gm_call *call, const ProtobufCMessage *req,
                                  ProtobufCMessage **reply) {
  const Gm__Finance__EnterpriseRequest *in =
      (const Gm__Finance__EnterpriseRequest *)req;
  const char *who;
  gm_status st;
  if ((st = finance__whose(call, in->participant, &who)) != GM_OK) return st;
  const char *args[] = {"get"};
  const gm_value *v;
  if ((st = finance__run(call, "enterprise", host->sprintf(call, "e:%s", who),
                         1, args, &v)) != GM_OK)
    return st;
  *reply = &finance__enterprise(call, v)->base;
  return GM_OK;
}
