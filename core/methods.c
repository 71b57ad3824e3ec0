/*
 * The broker's own methods (market "gm"): ping, markets, stats, whoami,
 * register, clock.set; dead letters are in deadletter.c.  The method table
 * (names, types, roles) is proto/core_methods.c, shared with gm; this file
 * holds the handlers, by the table's index.
 */
#include "methods.h"

#include <stdatomic.h>
#include <string.h>

#include "auth.h"
#include "broker.h"
#include "call.h"
#include "clock.h"
#include "deadletter.h"
#include "greenmarket.pb-c.h"
#include "idem.h"
#include "log.h"
#include "market.h"
#include "roles.h"

static gm_status gm__core_ping(gm_call *call, const ProtobufCMessage *req,
                               ProtobufCMessage **reply) {
  const Gm__PingRequest *in = (const Gm__PingRequest *)req;
  Gm__PingReply *out = gm__arena_alloc(call->arena, sizeof *out);
  gm__ping_reply__init(out);
  out->echo = in->echo;
  out->time_ms = gm__clock_now_ms();
  out->broker = (char *)gm__broker_name(call->broker);
  out->protocol_version = GM__PROTOCOL_VERSION;
  *reply = &out->base;
  return GM_OK;
}

static Gm__MethodInfo *gm__method_info(gm__arena *a, const gm_method *m) {
  Gm__MethodInfo *mi = gm__arena_alloc(a, sizeof *mi);
  gm__method_info__init(mi);
  mi->name = (char *)m->name;
  mi->request_type = (char *)m->request->name;
  mi->reply_type = (char *)m->reply->name;
  mi->mutating = (m->flags & GM_METHOD_MUTATING) != 0;
  mi->roles = (char *)(m->roles ? m->roles : "");
  mi->summary = (char *)(m->summary ? m->summary : "");
  return mi;
}

/* The roles a market declares, as gm markets lists them. */
static void gm__role_infos(gm__arena *a, Gm__MarketInfo *mi,
                           const gm_role *roles, size_t n) {
  mi->n_roles = n;
  mi->roles = gm__arena_alloc(a, (n ? n : 1) * sizeof *mi->roles);
  for (size_t i = 0; i < n; i++) {
    Gm__RoleInfo *ri = gm__arena_alloc(a, sizeof *ri);
    gm__role_info__init(ri);
    ri->name = (char *)roles[i].name;
    ri->summary = (char *)roles[i].summary;
    mi->roles[i] = ri;
  }
}

static gm_status gm__core_markets(gm_call *call, const ProtobufCMessage *req,
                                  ProtobufCMessage **reply) {
  (void)req;
  gm__broker *b = call->broker;
  size_t n_markets = gm__broker_markets(b);
  gm__arena *a = call->arena;
  Gm__MarketsReply *out = gm__arena_alloc(a, sizeof *out);
  gm__markets_reply__init(out);
  out->n_markets = n_markets + 1;
  out->markets = gm__arena_alloc(a, out->n_markets * sizeof *out->markets);
  for (size_t i = 0; i < out->n_markets; i++) {
    Gm__MarketInfo *mi = gm__arena_alloc(a, sizeof *mi);
    gm__market_info__init(mi);
    const gm_method *methods = gm__core_methods;
    size_t n = GM__CORE_METHODS;
    if (i == 0) {
      mi->name = "gm";
      mi->version = GM_VERSION;
      mi->description = "the broker's own methods";
      gm__role_infos(a, mi, &gm__role_admin, 1);
    } else {
      const gm_market *m = gm__broker_market(b, i - 1);
      const gm_plugin *p = m->plugin;
      gm__role_infos(a, mi, m->roles, m->n_roles);
      mi->name = (char *)p->name;
      mi->version = (char *)(p->version ? p->version : "");
      mi->description = (char *)(p->description ? p->description : "");
      methods = p->methods;
      n = p->n_methods;
    }
    mi->n_methods = n;
    mi->methods = gm__arena_alloc(a, n * sizeof *mi->methods);
    for (size_t j = 0; j < n; j++)
      mi->methods[j] = gm__method_info(a, &methods[j]);
    out->markets[i] = mi;
  }
  *reply = &out->base;
  return GM_OK;
}

static Gm__MarketStats *gm__market_stats(gm__arena *a, const char *name,
                                         const gm__stats *s) {
  Gm__MarketStats *ms = gm__arena_alloc(a, sizeof *ms);
  gm__market_stats__init(ms);
  ms->market = (char *)name;
  ms->requests = atomic_load(&s->requests);
  ms->errors = atomic_load(&s->errors);
  /* Percentiles are bucket upper bounds: never shown above the max seen. */
  ms->latency_max_us = atomic_load(&s->latency_max_us);
  uint64_t p50 = gm__stats_percentile_us(s, 50);
  uint64_t p99 = gm__stats_percentile_us(s, 99);
  ms->latency_p50_us = p50 < ms->latency_max_us ? p50 : ms->latency_max_us;
  ms->latency_p99_us = p99 < ms->latency_max_us ? p99 : ms->latency_max_us;
  return ms;
}

static gm_status gm__core_stats(gm_call *call, const ProtobufCMessage *req,
                                ProtobufCMessage **reply) {
  (void)req;
  gm__broker *b = call->broker;
  Gm__StatsReply *out = gm__arena_alloc(call->arena, sizeof *out);
  gm__stats_reply__init(out);
  size_t n_markets = gm__broker_markets(b);
  out->uptime_ms = gm__broker_uptime_ms(b);
  out->bad_frames = gm__broker_bad_frames(b);
  out->n_markets = n_markets + 1;
  out->markets =
      gm__arena_alloc(call->arena, out->n_markets * sizeof *out->markets);
  out->markets[0] =
      gm__market_stats(call->arena, "gm", gm__broker_core_stats(b));
  for (size_t i = 0; i < n_markets; i++) {
    gm_market *m = gm__broker_market(b, i);
    out->markets[i + 1] = gm__market_stats(call->arena, m->name, &m->stats);
  }
  for (size_t i = 0; i < out->n_markets; i++) {
    out->requests += out->markets[i]->requests;
    out->errors += out->markets[i]->errors;
  }
  out->settled = gm__broker_settled(b);
  out->broker = (char *)gm__broker_name(b);
  out->dev_mode = gm__broker_dev_mode(b) != 0;
  *reply = &out->base;
  return GM_OK;
}

static gm_status gm__core_whoami(gm_call *call, const ProtobufCMessage *req,
                                 ProtobufCMessage **reply) {
  (void)req;
  Gm__WhoamiReply *out = gm__arena_alloc(call->arena, sizeof *out);
  gm__whoami_reply__init(out);
  Gm__Participant *p = NULL;
  if (gm__participant_get(call, call->participant, &p) != GM_OK) {
    if (call->status != GM_NOT_FOUND) return call->status;
    /* Unregistered callers exist only in development mode. */
    call->status = GM_OK;
    call->message = NULL;
    p = gm__arena_alloc(call->arena, sizeof *p);
    gm__participant__init(p);
    p->id = (char *)call->participant;
    p->name = gm__broker_dev_mode(call->broker)
                  ? "(unregistered, development mode: every role)"
                  : "(bootstrap admin from [security] admin_keys)";
    if (!gm__broker_dev_mode(call->broker) && call->roles && *call->roles) {
      p->n_roles = 1;
      p->roles = gm__arena_alloc(call->arena, sizeof *p->roles);
      p->roles[0] = (char *)call->roles;
    }
  }
  out->participant = p;
  out->dev_mode = gm__broker_dev_mode(call->broker) != 0;
  *reply = &out->base;
  return GM_OK;
}

static gm_status gm__core_register(gm_call *call, const ProtobufCMessage *req,
                                   ProtobufCMessage **reply) {
  const Gm__RegisterRequest *in = (const Gm__RegisterRequest *)req;
  if (!in->participant)
    return gm__call_fail(
        call, GM_INVALID_ARGUMENT,
        "register needs a participant (id, roles, public_key)");
  if (!gm__broker_dev_mode(call->broker) &&
      (!in->participant->public_key || !*in->participant->public_key))
    return gm__call_fail(call, GM_INVALID_ARGUMENT,
                         "this broker requires CURVE keys: give the "
                         "participant's public_key (gm keygen makes one)");
  if (!gm__broker_dev_mode(call->broker) && in->participant->id &&
      strcmp(in->participant->id, GM__BOOTSTRAP_ADMIN_ID) == 0)
    return gm__call_fail(
        call, GM_INVALID_ARGUMENT,
        "participant id '" GM__BOOTSTRAP_ADMIN_ID
        "' is the identity of the bootstrap keys in [security] admin_keys: a "
        "participant registered under it would share their orders, private "
        "events and idempotency records; register it under another id (e.g. "
        "ops) and give it role admin if it is to administer");
  gm_status st = gm__participant_register(call, gm__broker_roles(call->broker),
                                          in->participant);
  if (st != GM_OK) return st;
  Gm__RegisterReply *out = gm__arena_alloc(call->arena, sizeof *out);
  gm__register_reply__init(out);
  Gm__Participant *p = NULL;
  st = gm__participant_get(call, in->participant->id, &p);
  if (st != GM_OK) return st;
  out->participant = p;
  gm__log(GM_LOG_INFO, "auth", "%s registered participant %s",
          call->participant, p->id);
  *reply = &out->base;
  return GM_OK;
}

static gm_status gm__core_clock_set(gm_call *call, const ProtobufCMessage *req,
                                    ProtobufCMessage **reply) {
  const Gm__ClockSetRequest *in = (const Gm__ClockSetRequest *)req;
  if (!gm__clock_is_manual())
    return gm__call_fail(call, GM_FAILED_PRECONDITION,
                         "the clock is real time; set [testing] clock = manual "
                         "in the config to set it");
  if (in->time_ms <= 0)
    return gm__call_fail(call, GM_INVALID_ARGUMENT,
                         "time_ms must be milliseconds since 1970, > 0");
  /* Kept in Redis first, so a restart resumes here (gm__broker_new) and
     a refusal changes nothing. */
  redisReply *r =
      gm__redis_callf(call->redis, "SET " GM__MANUAL_CLOCK_KEY "%s %lld",
                      gm__broker_name(call->broker), (long long)in->time_ms);
  if (!r || r->type == REDIS_REPLY_ERROR) {
    gm_status st = gm__redis_fail(call, r, "keeping the manual clock");
    if (r) freeReplyObject(r);
    return st;
  }
  freeReplyObject(r);
  gm__clock_set_manual(in->time_ms);
  Gm__ClockReply *out = gm__arena_alloc(call->arena, sizeof *out);
  gm__clock_reply__init(out);
  out->time_ms = gm__clock_now_ms();
  *reply = &out->base;
  return GM_OK;
}

/* Handlers of the core methods, by their index in gm__core_methods. */
static const gm_handler_fn gm__core_handlers[GM__CORE_METHODS] = {
    [GM__CORE_PING] = gm__core_ping,
    [GM__CORE_MARKETS] = gm__core_markets,
    [GM__CORE_STATS] = gm__core_stats,
    [GM__CORE_WHOAMI] = gm__core_whoami,
    [GM__CORE_REGISTER] = gm__core_register,
    [GM__CORE_CLOCK_SET] = gm__core_clock_set,
    [GM__CORE_DEAD_LETTERS] = gm__dead_letters_list,
    [GM__CORE_REPLAY] = gm__dead_letters_replay,
};

gm_status gm__core_call(gm_call *call, const gm_method *m,
                        const ProtobufCMessage *req, ProtobufCMessage **reply) {
  if (m < gm__core_methods || m >= gm__core_methods + GM__CORE_METHODS)
    return gm__call_fail(call, GM_INTERNAL, "%s is no core method (host bug)",
                         m->name);
  gm_handler_fn handle = gm__core_handlers[m - gm__core_methods];
  /* A retry with the same key gets the first reply, as from a market. */
  if (m->flags & GM_METHOD_MUTATING)
    return gm__idem_core_run(call, m, handle, req, reply);
  return handle(call, req, reply);
}
