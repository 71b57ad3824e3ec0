/*
 * What follows a referral step: the referral's own record (referral.lua)
 * is the truth; the bank queues (queue.lua) and the enterprise's list
 * (enterprise.lua) are indexes on other tags, so they are written by
 * further steps of the same call, each carrying the referral's version
 * (a late step of an older call changes nothing).  A step that changed
 * the referral also set its sync deadline (SYNC_MS later); the last step
 * here cancels it.  If the broker stops before, the deadline fires and
 * finance__on_sync writes every index from the record.  Then the private
 * events: the enterprise sees all of it, each bank its own view.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "finance.h"

/* Banks one dir.lua 'members' step asks for (the host takes 256 args). */
#define FINANCE_MEMBERS_STEP 200

const char **finance__all_banks(gm_call *call, const finance__ref *r,
                                size_t *n) {
  const char **out = host->alloc(call, (r->eb->n / 2 + 1) * sizeof *out);
  *n = 0;
  for (size_t i = 0; i + 1 < r->eb->n; i += 2)
    out[(*n)++] = finance__s(r->eb, i);
  return out;
}

static gm_status finance__queue_write(gm_call *call, const finance__ref *r,
                                      const char *bank) {
  const char *entry = finance__queue_entry(call, r, bank);
  const char *args[] = {*entry ? "put" : "del", r->id,
                        finance__num(call, r->version), finance__f(r, "ct"),
                        entry};
  const gm_value *v;
  if (!gm__finance_valid_bank(bank)) return GM_OK;
  return finance__run(call, "queue", host->sprintf(call, "b:%s", bank),
                      *entry ? 5 : 3, args, &v);
}

/* The indexes of r: banks' queues and the enterprise's list; `all`: every
   index of r, so every version up to r's is done. */
static gm_status finance__indexes(gm_call *call, const finance__ref *r,
                                  const char *const *banks, size_t n,
                                  int listed, int all) {
  gm_status st;
  const gm_value *v;
  for (size_t i = 0; i < n; i++)
    if ((st = finance__queue_write(call, r, banks[i])) != GM_OK) return st;
  if (!listed) {
    const char *ent = finance__f(r, "ent");
    const char *args[] = {"add", r->id, finance__f(r, "ct")};
    if (gm__finance_valid_participant(ent) &&
        (st = finance__run(call, "enterprise", host->sprintf(call, "e:%s", ent),
                           3, args, &v)) != GM_OK)
      return st;
  }
  const char *done[] = {"synced", finance__num(call, r->version),
                        all ? "all" : ""};
  return finance__run(call, "referral", r->id, 3, done, &v);
}

/* The staff of `bank` in a dir.lua 'members' reply ({{bank, m...}...}). */
static const gm_value *finance__staff(const gm_value *members,
                                      const char *bank) {
  for (size_t i = 0; members && i < members->n; i++) {
    const gm_value *b = finance__a(members, i);
    if (!strcmp(finance__s(b, 0), bank)) return b;
  }
  return NULL;
}

/* Non-zero when participant `who` may receive a referral event now: one
   nobody would receive is not built (a host older than publish_wanted is
   asked nothing). */
static int finance__wanted(gm_call *call, const char *who) {
  return !GM_HOST_HAS(host, publish_wanted) ||
         host->publish_wanted(call, GM_AUDIENCE_PARTICIPANT, who, "referral");
}

/* A staff member still holds the bank role: one who lost it since it
   joined (or was linked before joins were checked) gets no more of the
   bank's private events.  Unsure (the registry unreadable): not sent. */
static int finance__still_bank(gm_call *call, const char *who) {
  return !GM_HOST_HAS(host, participant_has_role) ||
         host->participant_has_role(call, who, "bank") == 1;
}

static void finance__publish(gm_call *call, const finance__ref *r,
                             const char *const *banks, size_t n,
                             const gm_value *members) {
  Gm__Finance__ReferralEvent ev = GM__FINANCE__REFERRAL_EVENT__INIT;
  const char *ent = finance__f(r, "ent");
  ev.transition = (char *)r->transition;
  ev.time_ms = finance__fi(r, "ut");
  if (gm__finance_valid_participant(ent) && finance__wanted(call, ent)) {
    ev.referral =
        finance__view(call, r, GM__FINANCE__ACCESS__ACCESS_FULL, NULL);
    host->publish_to(call, GM_AUDIENCE_PARTICIPANT, ent, "referral", &ev.base);
  }
  for (size_t i = 0; i < n; i++) {
    const gm_value *staff = finance__staff(members, banks[i]);
    if (!staff || staff->n < 2) continue;
    /* The bank's view is built only when one of its staff may receive it. */
    size_t k = 1;
    for (; k < staff->n; k++) {
      const char *who = finance__s(staff, k);
      if (gm__finance_valid_participant(who) && strcmp(who, ent) != 0 &&
          finance__wanted(call, who) && finance__still_bank(call, who))
        break;
    }
    if (k == staff->n) continue;
    ev.referral =
        finance__view(call, r, finance__access(r, banks[i], 0), banks[i]);
    for (; k < staff->n; k++) {
      const char *who = finance__s(staff, k);
      if (gm__finance_valid_participant(who) && strcmp(who, ent) != 0 &&
          finance__wanted(call, who) && finance__still_bank(call, who))
        host->publish_to(call, GM_AUDIENCE_PARTICIPANT, who, "referral",
                         &ev.base);
    }
  }
}

gm_status finance__after(gm_call *call, const finance__ref *r,
                         const char *const *banks, size_t n,
                         const gm_value *members) {
#ifdef GM_FAILURE_INJECTION
  /* Test builds only: the broker dies between the referral's step and
     the indexes' (a deadline's firing has no idempotency key). */
  if (finance__kill_before_index && *host->idempotency_key(call))
    raise(SIGKILL);
#endif
  gm_status st = finance__indexes(call, r, banks, n,
                                  strcmp(r->transition, "created") != 0, 0);
  if (st != GM_OK) return st;
  if (!members && n) {
    /* Their staff, a dir.lua step per FINANCE_MEMBERS_STEP banks. */
    gm_value *all = host->alloc(call, sizeof *all);
    gm_value *items = host->alloc(call, n * sizeof *items);
    all->type = GM_VALUE_ARRAY;
    all->items = items;
    for (size_t at = 0; at < n; at += FINANCE_MEMBERS_STEP) {
      size_t k = n - at < FINANCE_MEMBERS_STEP ? n - at : FINANCE_MEMBERS_STEP;
      const char **args = host->alloc(call, (k + 1) * sizeof *args);
      const gm_value *v;
      args[0] = "members";
      for (size_t i = 0; i < k; i++) args[1 + i] = banks[at + i];
      if ((st = finance__dir(call, k + 1, args, &v)) != GM_OK) return st;
      for (size_t i = 0; i < v->n && all->n < n; i++)
        items[all->n++] = *finance__a(v, i);
    }
    members = all;
  }
  finance__publish(call, r, banks, n, members);
  return GM_OK;
}

gm_status finance__on_sync(gm_call *call, const gm_deadline *d, void *arg) {
  const char *args[] = {"get"};
  finance__ref r;
  (void)arg;
  gm_status st = finance__referral_run(call, d->tag, 1, args, &r);
  if (st == GM_NOT_FOUND) return GM_OK;
  if (st != GM_OK) return st;
  /* Archived: its indexes were brought up to date before (archive.c). */
  if (r.archived) return GM_OK;
  size_t n;
  const char **banks = finance__all_banks(call, &r, &n);
  return finance__indexes(call, &r, banks, n, 0, 1);
}

gm_status finance__bank_queue(gm_call *call, const ProtobufCMessage *req,
                              ProtobufCMessage **reply) {
  const Gm__Finance__QueueRequest *in = (const Gm__Finance__QueueRequest *)req;
  int32_t limit = in->limit ? in->limit : FINANCE_QUEUE_DEFAULT;
  const char *bank;
  gm_status st;
  if (limit < 1 || limit > FINANCE_QUEUE_MAX || in->offset < 0)
    return host->fail(call, GM_INVALID_ARGUMENT,
                      "limit must be 1..%d and offset at least 0",
                      FINANCE_QUEUE_MAX);
  if ((st = finance__report_bank(call, in->bank, &bank)) != GM_OK) return st;
  const char *args[] = {"list", finance__num(call, in->offset),
                        finance__num(call, limit)};
  const gm_value *v;
  if ((st = finance__run(call, "queue", host->sprintf(call, "b:%s", bank), 3,
                         args, &v)) != GM_OK)
    return st;
  Gm__Finance__Queue *out = host->alloc(call, sizeof *out);
  gm__finance__queue__init(out);
  out->bank = (char *)bank;
  out->total = finance__i(v, 0);
  out->entries = host->alloc(call, (v->n + 1) * sizeof *out->entries);
  for (size_t i = 1; i < v->n; i++) {
    const gm_value *row = finance__a(v, i);
    const char *id = finance__s(row, 0), *rel;
    if (!*id) continue;
    Gm__Finance__QueueEntry *e = host->alloc(call, sizeof *e);
    gm__finance__queue_entry__init(e);
    e->referral = finance__queue_view(call, id, finance__s(row, 1), &rel);
    e->relation = (char *)rel;
    out->entries[out->n_entries++] = e;
  }
  *reply = &out->base;
  return GM_OK;
}
