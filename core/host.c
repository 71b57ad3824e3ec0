/* gm_host_api: each entry is a thin bridge to the service that does the work.
 */
#include "host.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "auth.h"
#include "broker.h"
#include "call.h"
#include "clock.h"
#include "deadlines.h"
#include "events.h"
#include "greenmarket.pb-c.h"
#include "interest.h"
#include "ledger.h"
#include "market.h"
#include "log.h"
#include "redis.h"
#include "roles.h"
#include "timers.h"

static void host_log(gm_market *m, gm_log_level level, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  gm__vlog(level, m ? m->name : "plugin", fmt, ap);
  va_end(ap);
}

static const char *host_config(gm_market *m, const char *key, const char *def) {
  char section[64];
  snprintf(section, sizeof section, "market.%s", m->name);
  return gm__config_get(m->host->config, section, key, def);
}

static int host_config_path(gm_market *m, const char *key, const char *def,
                            char *out, size_t outlen) {
  char section[64];
  if (outlen == 0) return -1;
  out[0] = '\0';
  snprintf(section, sizeof section, "market.%s", m->name);
  char *p = gm__config_path(m->host->config, section, key, def);
  if (!p) return -1;
  size_t n = strlen(p);
  int rc = n < outlen ? 0 : -1;
  if (rc == 0) memcpy(out, p, n + 1);
  free(p);
  return rc;
}

static int64_t host_now_ms(gm_market *m) {
  (void)m;
  return gm__clock_now_ms();
}

static int64_t host_real_ms(gm_market *m) {
  (void)m;
  return gm__clock_is_manual() ? gm__clock_real_ms() : 0;
}

static void *host_alloc(gm_call *call, size_t size) {
  return gm__arena_alloc(call->arena, size);
}

static char *host_sprintf(gm_call *call, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  char *s = gm__arena_vsprintf(call->arena, fmt, ap);
  va_end(ap);
  return s;
}

static gm_status host_fail(gm_call *call, gm_status status, const char *fmt,
                           ...) {
  va_list ap;
  va_start(ap, fmt);
  gm__call_vfail(call, status, fmt, ap);
  va_end(ap);
  return status;
}

static const char *host_participant(gm_call *call) {
  return call->participant;
}

static int host_has_role(gm_call *call, const char *role) {
  return gm__call_has_role(call, role);
}

static const char *host_idempotency_key(gm_call *call) {
  return call->idem_key ? call->idem_key : "";
}

static gm_market *host_market(gm_call *call) {
  return call->market;
}

/*
 * Registrations are for init only: after it, handlers, timers and the
 * settler read what they registered on other threads.  A call later is a
 * plugin bug: said in the log, refused, nothing changed.
 */
static gm_status host_init_only(gm_market *m, const char *what,
                                const char *name) {
  if (!m || !m->ready) return GM_OK;
  gm__log(GM_LOG_ERROR, m->name,
          "%s%s%s refused: it is for init only (handlers, timers and the "
          "settler already run); register everything in init "
          "(docs/plugins.md, Threading rules)",
          what, name ? " " : "", name ? name : "");
  return GM_FAILED_PRECONDITION;
}

static gm_status host_script_register_flags(gm_market *m, const char *name,
                                            const char *lib, const char *lua,
                                            unsigned flags) {
  char err[512];
  gm_status late = host_init_only(m, "script_register", name);
  if (late != GM_OK) return late;
  if (name && !strncmp(name, "gm:", 3)) {
    gm__log(GM_LOG_ERROR, m->name,
            "script %s refused: names starting with gm: are the host's; "
            "rename it",
            name);
    return GM_INVALID_ARGUMENT;
  }
  if (!m->host->redis) {
    gm__log(GM_LOG_ERROR, m->name, "script %s: no Redis connection during init",
            name);
    return GM_UNAVAILABLE;
  }
  gm_status st = gm__scripts_add_flags(m->host->redis, m->name, name, lib, lua,
                                       flags, err, sizeof err);
  if (st != GM_OK)
    gm__log(GM_LOG_ERROR, m->name, "script %s refused: %s", name, err);
  return st;
}

static gm_status host_script_register_lib(gm_market *m, const char *name,
                                          const char *lib, const char *lua) {
  return host_script_register_flags(m, name, lib, lua, 0);
}

static gm_status host_script_register(gm_market *m, const char *name,
                                      const char *lua) {
  return host_script_register_lib(m, name, NULL, lua);
}

static gm_status host_script_run(gm_call *call, const char *name,
                                 const char *tag, size_t nkeys,
                                 const char *const *keys, size_t nargs,
                                 const char *const *args,
                                 const gm_value **reply) {
  if (!call->market)
    return gm__call_fail(call, GM_INTERNAL, "script_run outside a market call");
  return gm__script_run(call, call->market->name, name, tag, nkeys, keys, nargs,
                        args, reply);
}

static gm_status host_ledger_migrate(gm_market *m,
                                     const gm_migration *migrations, size_t n) {
  char err[512];
  gm_status late = host_init_only(m, "ledger_migrate", NULL);
  if (late != GM_OK) return late;
  if (!m->host->ledger) return GM_UNAVAILABLE;
  gm_status st = gm__ledger_migrate(m->host->ledger, m->name, migrations, n,
                                    err, sizeof err);
  if (st != GM_OK) gm__log(GM_LOG_ERROR, m->name, "migration: %s", err);
  return st;
}

static gm_status host_settle_register(gm_market *m, gm_settle_fn fn) {
  gm_status late = host_init_only(m, "settle_register", NULL);
  if (late != GM_OK) return late;
  if (!fn) return GM_INVALID_ARGUMENT;
  m->settle = fn;
  return GM_OK;
}

static gm_status host_publish(gm_call *call, const char *event,
                              const ProtobufCMessage *msg) {
  if (!call->market)
    return gm__call_fail(call, GM_INTERNAL, "publish outside a market call");
  return gm__publish(call, call->market->name, GM_AUDIENCE_PUBLIC, NULL, event,
                     msg);
}

static gm_status host_publish_to(gm_call *call, gm_audience audience,
                                 const char *who, const char *event,
                                 const ProtobufCMessage *msg) {
  if (!call->market)
    return gm__call_fail(call, GM_INTERNAL, "publish_to outside a market call");
  return gm__publish(call, call->market->name, audience, who, event, msg);
}

static int host_publish_wanted(gm_call *call, gm_audience audience,
                               const char *who, const char *event) {
  return gm__publish_wanted(call,
                            call && call->market ? call->market->name : NULL,
                            audience, who, event);
}

static int host_participant_has_role(gm_call *call, const char *id,
                                     const char *role) {
  if (!call || !call->redis || !id || !role) return -1;
  /* A request's call has its broker; a timer's or a deadline's, its
     market's host does. */
  const gm__broker *b = call->broker;
  if (!b && call->market && call->market->host) b = call->market->host->owner;
  Gm__Participant *p = NULL;
  gm_status st = gm__participant_get(call, id, &p);
  /* Neither answer is the call's failure: it goes on. */
  const char *why = call->message;
  call->status = GM_OK;
  call->message = NULL;
  if (st == GM_NOT_FOUND) return b && gm__broker_dev_mode(b);
  if (st != GM_OK) {
    gm__log(GM_LOG_WARN, call->market ? call->market->name : "host",
            "participant_has_role(%s, %s): %s", id, role, why ? why : "");
    return -1;
  }
  char *held = gm__participant_roles(call->arena, p);
  /* As the participant's own call: the roles a loaded market declares. */
  if (b) held = gm__roles_in_force(gm__broker_roles(b), call->arena, held);
  return gm__roles_grant(held, role);
}

static gm_status host_timer_add(gm_market *m, const char *name,
                                int64_t interval_ms, gm_timer_fn fn,
                                void *arg) {
  gm_status late = host_init_only(m, "timer_add", name);
  if (late != GM_OK) return late;
  if (!m->host->timers) return GM_UNAVAILABLE;
  return gm__timers_add(m->host->timers, m, name, interval_ms, fn, arg);
}

/* ---- deadlines (core/deadlines.c) ---- */

/* The host's script behind deadline_set and deadline_cancel, registered for
   each market that registers a deadline kind: one step of the call, with
   the host's gm.deadline, so it is idempotent like the plugin's own. */
#define HOST_DEADLINE_SCRIPT "gm:deadline"
static const char host_deadline_lua[] =
    "if ARGV[1] == 'set' then gm.deadline(ARGV[2], ARGV[3], ARGV[4])\n"
    "else gm.deadline_cancel(ARGV[2], ARGV[3]) end\n"
    "return 1\n";

static gm_status host_deadline_register(gm_market *m, const char *kind,
                                        gm_deadline_fn fn, void *arg) {
  char err[512];
  gm_status late = host_init_only(m, "deadline_register", kind);
  if (late != GM_OK) return late;
  if (!m->host->deadlines || !m->host->redis) {
    gm__log(GM_LOG_ERROR, m->name,
            "deadline kind %s: deadline_register is for init only",
            kind ? kind : "(null)");
    return GM_FAILED_PRECONDITION;
  }
  int first = !gm__deadlines_known(m->host->deadlines, m, NULL);
  gm_status st = gm__deadlines_register(m->host->deadlines, m, kind, fn, arg,
                                        err, sizeof err);
  if (st == GM_OK && first)
    st = gm__scripts_add(m->host->redis, m->name, HOST_DEADLINE_SCRIPT, NULL,
                         host_deadline_lua, err, sizeof err);
  if (st != GM_OK)
    gm__log(GM_LOG_ERROR, m->name, "deadline kind %s refused: %s",
            kind ? kind : "(null)", err);
  return st;
}

/* Checks a deadline_set/deadline_cancel call; GM_OK or the failure. */
static gm_status host_deadline_check(gm_call *call, const char *what,
                                     const char *kind, const char *id) {
  if (!call->market)
    return gm__call_fail(call, GM_INTERNAL, "%s outside a market call", what);
  if (!gm__deadlines_known(call->market->host->deadlines, call->market, kind))
    return gm__call_fail(call, GM_INVALID_ARGUMENT,
                         "%s: deadline kind %s is not registered by market "
                         "%s; register it with deadline_register in init",
                         what, kind ? kind : "(null)", call->market->name);
  if (!id || !*id)
    return gm__call_fail(call, GM_INVALID_ARGUMENT,
                         "%s: the deadline id is empty; pass the entity's id",
                         what);
  return GM_OK;
}

static gm_status host_deadline_set(gm_call *call, const char *kind,
                                   const char *tag, const char *id,
                                   int64_t due_ms) {
  gm_status st = host_deadline_check(call, "deadline_set", kind, id);
  if (st != GM_OK) return st;
  /* Sorted-set scores are doubles: exact below 2^53 only. */
  if (due_ms < 0 || due_ms >= (INT64_C(1) << 53))
    return gm__call_fail(call, GM_INVALID_ARGUMENT,
                         "deadline_set: due_ms %lld is not in 0..2^53 ms "
                         "since the epoch",
                         (long long)due_ms);
  char due[24];
  snprintf(due, sizeof due, "%lld", (long long)due_ms);
  const char *args[] = {"set", kind, id, due};
  const gm_value *v;
  return gm__script_run(call, call->market->name, HOST_DEADLINE_SCRIPT, tag, 0,
                        NULL, 4, args, &v);
}

static gm_status host_deadline_cancel(gm_call *call, const char *kind,
                                      const char *tag, const char *id) {
  gm_status st = host_deadline_check(call, "deadline_cancel", kind, id);
  if (st != GM_OK) return st;
  const char *args[] = {"cancel", kind, id};
  const gm_value *v;
  return gm__script_run(call, call->market->name, HOST_DEADLINE_SCRIPT, tag, 0,
                        NULL, 3, args, &v);
}

const gm_host_api gm__host_api = {
    .size = sizeof(gm_host_api),
    .abi_version = GM_PLUGIN_ABI_VERSION,
    .log = host_log,
    .config = host_config,
    .now_ms = host_now_ms,
    .alloc = host_alloc,
    .sprintf = host_sprintf,
    .fail = host_fail,
    .participant = host_participant,
    .has_role = host_has_role,
    .idempotency_key = host_idempotency_key,
    .market = host_market,
    .script_register = host_script_register,
    .script_run = host_script_run,
    .ledger_migrate = host_ledger_migrate,
    .settle_register = host_settle_register,
    .ledger_exec = gm__ledger_exec,
    .ledger_query = gm__ledger_query,
    .ledger_tx_query = gm__ledger_tx_query,
    .publish = host_publish,
    .timer_add = host_timer_add,
    .publish_to = host_publish_to,
    .deadline_register = host_deadline_register,
    .deadline_set = host_deadline_set,
    .deadline_cancel = host_deadline_cancel,
    .config_path = host_config_path,
    .script_register_lib = host_script_register_lib,
    .script_register_flags = host_script_register_flags,
    .publish_wanted = host_publish_wanted,
    .participant_has_role = host_participant_has_role,
    .real_ms = host_real_ms,
};

/* Event names: 1-64 printable ASCII characters, no space (topics are split
   at the first space). */
static int gm__event_name_ok(const char *s) {
  size_t n = s ? strlen(s) : 0;
  for (size_t i = 0; i < n; i++)
    if (s[i] <= ' ' || s[i] > '~') return 0;
  return n >= 1 && n <= 64;
}

/* Participant ids as gm admin register takes them. */
static int gm__participant_ok(const char *s) {
  size_t n = s ? strlen(s) : 0;
  for (size_t i = 0; i < n; i++)
    if (!isalnum((unsigned char)s[i]) && !strchr("-_.", s[i])) return 0;
  return n >= 1 && n <= 64;
}

/* Role names: [a-z][a-z0-9_]*, at most 32 characters (gm_role). */
static int gm__role_ok(const char *s) {
  size_t n = s ? strlen(s) : 0;
  for (size_t i = 0; i < n; i++)
    if (!(s[i] >= 'a' && s[i] <= 'z') &&
        (i == 0 || !((s[i] >= '0' && s[i] <= '9') || s[i] == '_')))
      return 0;
  return n >= 1 && n <= 32;
}

/* Appends s[0..n) at *at if it fits below end. */
static int gm__put(char **at, const char *end, const char *s, size_t n) {
  if ((size_t)(end - *at) < n) return -1;
  memcpy(*at, s, n);
  *at += n;
  return 0;
}

/* Why gm__topic refused (gm__publish words each). */
enum {
  GM__TOPIC_EVENT = -1,
  GM__TOPIC_WHO = -2,
  GM__TOPIC_AUDIENCE = -3,
  GM__TOPIC_LONG = -4
};

/*
 * The topic the feeds route on (docs/protocol.md, The feed), into
 * topic[GM__TOPIC_MAX]: "<market>.<event>" public, "@p:<participant>
 * <market>.<event>" or "@r:<role> <market>.<event>" private.  Its length, or
 * a GM__TOPIC_* when an argument is bad.  A participant id or role with a
 * space would let its topic pass for another's.
 */
#define GM__TOPIC_MAX 256
static int gm__topic(char *topic, const char *market, gm_audience audience,
                     const char *who, const char *event) {
  if (!gm__event_name_ok(event)) return GM__TOPIC_EVENT;
  char *at = topic;
  const char *end = topic + GM__TOPIC_MAX - 1; /* room for a NUL */
  if (audience == GM_AUDIENCE_PARTICIPANT || audience == GM_AUDIENCE_ROLE) {
    if (audience == GM_AUDIENCE_PARTICIPANT ? !gm__participant_ok(who)
                                            : !gm__role_ok(who))
      return GM__TOPIC_WHO;
    if (gm__put(&at, end,
                audience == GM_AUDIENCE_PARTICIPANT ? "@p:" : "@r:", 3) < 0 ||
        gm__put(&at, end, who, strlen(who)) < 0 ||
        gm__put(&at, end, " ", 1) < 0)
      return GM__TOPIC_LONG;
  } else if (audience != GM_AUDIENCE_PUBLIC) {
    return GM__TOPIC_AUDIENCE;
  }
  if (gm__put(&at, end, market, strlen(market)) < 0 ||
      gm__put(&at, end, ".", 1) < 0 ||
      gm__put(&at, end, event, strlen(event)) < 0)
    return GM__TOPIC_LONG;
  *at = '\0';
  return (int)(at - topic);
}

int gm__publish_wanted(gm_call *call, const char *market, gm_audience audience,
                       const char *who, const char *event) {
  /* Unsure is yes: no feed here (publish then does nothing anyway), or a
     bad argument (publish then refuses it with its reason). */
  if (!call || !call->pub || !call->market || !market) return 1;
  char topic[GM__TOPIC_MAX];
  int tn = gm__topic(topic, market, audience, who, event);
  if (tn < 0) return 1;
  return gm__interest_wanted(call->market->host->interest, topic, (size_t)tn);
}

gm_status gm__publish(gm_call *call, const char *market, gm_audience audience,
                      const char *who, const char *event,
                      const ProtobufCMessage *msg) {
  char topic[GM__TOPIC_MAX];
  int tn = gm__topic(topic, market, audience, who, event);
  if (tn == GM__TOPIC_EVENT)
    return gm__call_fail(call, GM_INVALID_ARGUMENT,
                         "event name \"%s\" must be 1-64 printable ASCII "
                         "characters without spaces, e.g. \"order\"",
                         event ? event : "");
  if (tn == GM__TOPIC_WHO && audience == GM_AUDIENCE_PARTICIPANT)
    return gm__call_fail(call, GM_INVALID_ARGUMENT,
                         "publish_to a participant needs its id (1-64 "
                         "letters, digits, '-', '_' or '.'), not \"%s\"",
                         who ? who : "");
  if (tn == GM__TOPIC_WHO)
    return gm__call_fail(call, GM_INVALID_ARGUMENT,
                         "publish_to a role needs its name ([a-z][a-z0-9_]*, "
                         "at most 32 characters), not \"%s\"",
                         who ? who : "");
  if (tn == GM__TOPIC_AUDIENCE)
    return gm__call_fail(call, GM_INVALID_ARGUMENT,
                         "audience %d is none of GM_AUDIENCE_PUBLIC, "
                         "GM_AUDIENCE_PARTICIPANT, GM_AUDIENCE_ROLE",
                         (int)audience);
  if (tn < 0)
    return gm__call_fail(call, GM_INVALID_ARGUMENT, "event topic too long");
  if (!call->pub) return GM_OK; /* no feed in this context (tests) */
  /* Most events have no subscriber under load (a market's order events go
     to their owner only): packing, the hand-off and the publisher's
     wake-up are the larger part of their cost. */
  if (call->market &&
      !gm__interest_wanted(call->market->host->interest, topic, (size_t)tn))
    return GM_OK;
  size_t blen = protobuf_c_message_get_packed_size(msg);
  uint8_t *body = gm__arena_alloc(call->arena, blen ? blen : 1);
  protobuf_c_message_pack(msg, body);
  Gm__Event ev = GM__EVENT__INIT;
  ev.market = (char *)market;
  ev.event = (char *)event;
  ev.time_ms = gm__clock_now_ms();
  ev.type = (char *)msg->descriptor->name;
  ev.body.data = body;
  ev.body.len = blen;
  ev.broker = (char *)(call->market ? call->market->host->broker_name : "");
  size_t elen = gm__event__get_packed_size(&ev);
  uint8_t *packed = gm__arena_alloc(call->arena, elen ? elen : 1);
  gm__event__pack(&ev, packed);
  /* The publisher thread appends the sequence number (field 7). */
  if (gm__events_send(call->pub, topic, (size_t)tn, packed, elen) < 0) {
    gm__log(GM_LOG_WARN, market, "event %s dropped: %s", topic,
            zmq_strerror(zmq_errno()));
    return GM_UNAVAILABLE;
  }
  return GM_OK;
}
