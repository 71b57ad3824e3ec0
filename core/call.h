/* One request (or timer tick) in flight: what a plugin's gm_call points to. */
#ifndef GM_CORE_CALL_H
#define GM_CORE_CALL_H

#include <stdint.h>

#include "arena.h"
#include "events.h"
#include "greenmarket/plugin.h"

struct gm__redis;
struct gm__ledger;
struct gm__broker;

struct gm_call {
  gm__arena *arena;        /* freed after the reply is sent */
  gm_market *market;       /* the plugin called; NULL for core methods */
  const char *participant; /* authenticated caller ("" for timers) */
  const char *roles;       /* comma-separated roles of the caller */
  const char *idem_key;    /* envelope idempotency key, "" if none */
  /* FNV-1a of the request's market, method and body (never 0), kept with
     its idempotency records so the key sent again with another request is
     refused instead of replaying the first one's reply; 0: no request
     (deadlines, timers), no check. */
  uint64_t request_fp;
  struct gm__redis *redis;   /* this thread's Redis connection */
  struct gm__ledger *reader; /* this thread's read-only ledger connection */
  struct gm__ledger_remote *remote; /* routes ledger reads (NULL: local) */
  gm__events *pub;                  /* the queue to the publisher (events.h) */
  struct gm__broker *broker; /* the broker serving the call (core methods) */
  unsigned script_runs;      /* scripts run so far: the idempotency step */
  unsigned in_query;         /* inside a ledger_query row callback */
  /* The records of this call's read-only steps (redis.c), and whether a
     step ran that may have written or stored a record of its own: a call
     refused with only read-only records has them unlinked
     (gm__scripts_forget_reads). */
  const char **ro_records;
  unsigned n_ro_records;
  unsigned wrote;
  gm_status status;    /* set by gm__call_fail */
  const char *message; /* set by gm__call_fail, in the arena */
};

/* Records status and message (in the call's arena); returns status. */
gm_status gm__call_fail(gm_call *call, gm_status status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
gm_status gm__call_vfail(gm_call *call, gm_status status, const char *fmt,
                         va_list ap);
/* s as a refusal may echo it: cut to at most max bytes at a character
   boundary with "..." after a cut, and control characters (and any byte
   that is not UTF-8) shown as '?', in the call's arena. */
const char *gm__call_quote(gm_call *call, const char *s, size_t max);
/* Non-zero when `role` is in the call's roles (or the caller is admin). */
int gm__call_has_role(const gm_call *call, const char *role);
/* Non-zero when comma list `roles` holds `role` or admin (NULL: none). */
int gm__roles_grant(const char *roles, const char *role);
/* The name of a status as the wire spells it ("INVALID_ARGUMENT"). */
const char *gm__status_name(gm_status status);
/* Parses a status name; returns -1 when it is none of the set. */
int gm__status_parse(const char *name, size_t len);

#endif
