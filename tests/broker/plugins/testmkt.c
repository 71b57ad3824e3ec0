/*
 * The test market: a real plugin built against the public SDK only, used by
 * the broker's tests.  echo reads, bump runs a script that counts in Redis and
 * emits an outbox entry, count reads the settled rows back from the ledger,
 * tell publishes to any audience (saying what publish_wanted answered).
 * probe and peek try the ledger's boundaries: probe emits an entry whose
 * settlement does what the request names (write the broker's gm_settled or
 * another market's table, read inside its own transaction); peek reads
 * what the request names through ledger_query.
 * deadline sets, moves and cancels deadlines; their callbacks count each
 * firing in Redis and emit an outbox entry (tests/broker/test_deadlines.c);
 * "slow" and "slowfail" wait 100 ms before their step.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "greenmarket/plugin.h"
#include "testmkt.pb-c.h"

static const gm_host_api *host;

static const char bump_lua[] =
    "local seq = redis.call('INCR', KEYS[1])\n"
    "gm.emit('bump', 'seq', seq, 'note', ARGV[1], 'who', gm.participant)\n"
    "return seq\n";

static const char probe_lua[] =
    "gm.emit('probe', 'what', ARGV[1])\n"
    "return 1\n";

/* deadline: ARGV op, kind, id, due.  Writes the entity, then sets or
   cancels the deadline (or refuses, before or after gm.deadline, or with a
   status outside the set: reject_bad); answers
   what gm.deadline_get sees (0: none). */
static const char dl_lua[] =
    "local op, kind, id, due = ARGV[1], ARGV[2], ARGV[3], ARGV[4]\n"
    "if op == 'get' then return gm.deadline_get(kind, id) or 0 end\n"
    "redis.call('SET', KEYS[1], op .. ':' .. id)\n"
    "if op == 'set' then gm.deadline(kind, id, tonumber(due))\n"
    "elseif op == 'cancel' then gm.deadline_cancel(kind, id)\n"
    "elseif op == 'reject_after' then gm.deadline(kind, id, tonumber(due))\n"
    "  return gm.reject('FAILED_PRECONDITION', 'refused after gm.deadline')\n"
    "elseif op == 'reject_before' then\n"
    "  local e = gm.reject('FAILED_PRECONDITION', 'refused before "
    "gm.deadline')\n"
    "  gm.deadline(kind, id, tonumber(due))\n"
    "  return e\n"
    "elseif op == 'reject_bad' then\n"
    "  return gm.reject('EXISTS', 'not a status name')\n"
    "end\n"
    "return gm.deadline_get(kind, id) or 0\n";

/* A deadline's first step: counts the firing of id, emits it. */
static const char fired_lua[] =
    "local n = redis.call('HINCRBY', KEYS[1], ARGV[1], 1)\n"
    "gm.emit('fired', 'id', ARGV[1], 'due', ARGV[2], 'n', n)\n"
    "return n\n";

/* Its second step: counts it too, with the attempt that ran it. */
static const char after_lua[] =
    "redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])\n"
    "return redis.call('HINCRBY', KEYS[1], ARGV[1], 1)\n";

/* "count" deadlines record what their ledger read saw. */
static const char counted_lua[] =
    "redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])\n"
    "return 1\n";

static const gm_migration migrations[] = {
    {1,
     "CREATE TABLE testmkt_bumps(seq INTEGER PRIMARY KEY, note TEXT NOT "
     "NULL, who TEXT NOT NULL)"},
    {2,
     "CREATE TABLE testmkt_probes(id TEXT PRIMARY KEY);"
     "CREATE TABLE testmkt_seen(id TEXT PRIMARY KEY, n INTEGER NOT NULL)"},
    {3,
     "CREATE TABLE testmkt_fired(id TEXT NOT NULL, n INTEGER NOT NULL, "
     "due INTEGER NOT NULL, PRIMARY KEY (id, n))"},
};

#ifdef GM_FAILURE_INJECTION
/* Test builds only: gmd kills itself between a deadline's two steps. */
static int kill_in_deadline;
#endif

static int count_row(void *arg, size_t ncols, const gm_param *cols) {
  if (ncols == 1) *(int64_t *)arg = cols[0].i;
  return 0;
}

/* What a probe entry's settlement tries (ProbeRequest.what). */
static gm_status settle_probe(gm_ledger *tx, const gm_outbox_entry *e) {
  const char *what = gm_entry_field(e, "what");
  if (!what) return GM_INVALID_ARGUMENT;
  gm_param fake[] = {GM_TEXT("gm:{x:y}:outbox"), GM_TEXT(e->id)};
  if (strcmp(what, "settled") == 0)
    return host->ledger_exec(tx,
                             "INSERT INTO gm_settled(stream, id, kind, "
                             "settled_ms) VALUES (?1, ?2, 'forged', 0)",
                             fake, 2);
  if (strcmp(what, "swallow") == 0) {
    /* Ignores the refusal: the host must not commit the batch anyway. */
    host->ledger_exec(tx,
                      "INSERT INTO gm_settled(stream, id, kind, settled_ms) "
                      "VALUES (?1, ?2, 'forged', 0)",
                      fake, 2);
    return GM_OK;
  }
  if (strcmp(what, "other") == 0)
    return host->ledger_exec(tx, "INSERT INTO othermkt_rows(x) VALUES (1)",
                             NULL, 0);
  if (strcmp(what, "txread") == 0) {
    /* Its own write, read back in the same transaction: n must be 1. */
    gm_param id[] = {GM_TEXT(e->id)};
    gm_status st = host->ledger_exec(
        tx, "INSERT INTO testmkt_probes(id) VALUES (?1)", id, 1);
    int64_t n = -1;
    if (st == GM_OK)
      st = host->ledger_tx_query(
          tx, "SELECT count(*) FROM testmkt_probes WHERE id = ?1", id, 1,
          count_row, &n);
    gm_param seen[] = {GM_TEXT(e->id), GM_INT(n)};
    if (st == GM_OK)
      st = host->ledger_exec(
          tx, "INSERT INTO testmkt_seen(id, n) VALUES (?1, ?2)", seen, 2);
    return st;
  }
  if (strcmp(what, "txread_settled") == 0) {
    int64_t n = -1;
    return host->ledger_tx_query(
        tx, "SELECT count(*) FROM gm_settled /* scan: a test's few rows */",
        NULL, 0, count_row, &n);
  }
  return GM_OK;
}

static gm_status settle(gm_market *m, gm_ledger *tx, const gm_outbox_entry *e) {
  (void)m;
  if (strcmp(e->kind, "probe") == 0) return settle_probe(tx, e);
  if (strcmp(e->kind, "fired") == 0) {
    const char *id = gm_entry_field(e, "id");
    const char *n = gm_entry_field(e, "n");
    const char *due = gm_entry_field(e, "due");
    if (!id || !n || !due) return GM_INVALID_ARGUMENT;
    /* A plain INSERT: a firing settled twice would fail the batch. */
    gm_param p[] = {GM_TEXT(id), GM_TEXT(n), GM_TEXT(due)};
    return host->ledger_exec(
        tx, "INSERT INTO testmkt_fired(id, n, due) VALUES (?, ?, ?)", p, 3);
  }
  if (strcmp(e->kind, "bump") != 0) return GM_OK;
  const char *seq = gm_entry_field(e, "seq");
  const char *note = gm_entry_field(e, "note");
  const char *who = gm_entry_field(e, "who");
  if (!seq || !note || !who) return GM_INVALID_ARGUMENT;
  /* A plain INSERT: a doubled entry would fail the batch, loudly. */
  gm_param p[] = {GM_TEXT(seq), GM_TEXT(note), GM_TEXT(who)};
  return host->ledger_exec(
      tx, "INSERT INTO testmkt_bumps(seq, note, who) VALUES (?, ?, ?)", p, 3);
}

static gm_status echo(gm_call *call, const ProtobufCMessage *req,
                      ProtobufCMessage **reply) {
  const Gm__Testmkt__EchoRequest *in = (const void *)req;
  if (strcmp(in->text, "fail") == 0)
    return host->fail(call, GM_FAILED_PRECONDITION,
                      "you asked me to fail; send another text");
  Gm__Testmkt__EchoReply *out = host->alloc(call, sizeof *out);
  gm__testmkt__echo_reply__init(out);
  out->text = host->sprintf(call, "%s", in->text);
  out->participant = (char *)host->participant(call);
  out->config_value = (char *)host->config(host->market(call), "greeting", "");
  char path[4096];
  if (host->config_path(host->market(call), "file", NULL, path, sizeof path) ==
      0)
    out->config_path = host->sprintf(call, "%s", path);
  *reply = &out->base;
  return GM_OK;
}

static gm_status bump(gm_call *call, const ProtobufCMessage *req,
                      ProtobufCMessage **reply) {
  const Gm__Testmkt__BumpRequest *in = (const void *)req;
  const char *keys[] = {"counter"};
  const char *args[] = {in->note};
  const gm_value *v;
  gm_status st = host->script_run(call, "bump", "all", 1, keys, 1, args, &v);
  if (st != GM_OK) return st;
  if (v->type != GM_VALUE_INT)
    return host->fail(call, GM_INTERNAL, "bump script returned no number");
  Gm__Testmkt__BumpReply *out = host->alloc(call, sizeof *out);
  gm__testmkt__bump_reply__init(out);
  out->seq = v->integer;
  host->publish(call, "bumped", &out->base);
  *reply = &out->base;
  return GM_OK;
}

static gm_status tell(gm_call *call, const ProtobufCMessage *req,
                      ProtobufCMessage **reply) {
  const Gm__Testmkt__TellRequest *in = (const void *)req;
  if (!GM_HOST_HAS(host, publish_wanted))
    return host->fail(call, GM_INTERNAL, "the host has no publish_wanted");
  int wanted =
      host->publish_wanted(call, (gm_audience)in->audience, in->who, in->event);
  if (!in->ask_only) {
    gm_status st = host->publish_to(call, (gm_audience)in->audience, in->who,
                                    in->event, req);
    if (st != GM_OK) return st;
  }
  Gm__Testmkt__TellReply *out = host->alloc(call, sizeof *out);
  gm__testmkt__tell_reply__init(out);
  out->wanted = wanted != 0;
  *reply = &out->base;
  return GM_OK;
}

static gm_status count(gm_call *call, const ProtobufCMessage *req,
                       ProtobufCMessage **reply) {
  (void)req;
  int64_t n = 0;
  gm_status st = host->ledger_query(
      call, "SELECT count(*) FROM testmkt_bumps /* scan: a test's few rows */",
      NULL, 0, count_row, &n);
  if (st != GM_OK) return st;
  Gm__Testmkt__CountReply *out = host->alloc(call, sizeof *out);
  gm__testmkt__count_reply__init(out);
  out->settled = n;
  *reply = &out->base;
  return GM_OK;
}

static gm_status probe(gm_call *call, const ProtobufCMessage *req,
                       ProtobufCMessage **reply) {
  const Gm__Testmkt__ProbeRequest *in = (const void *)req;
  const char *args[] = {in->what};
  const gm_value *v;
  gm_status st = host->script_run(call, "probe", "all", 0, NULL, 1, args, &v);
  if (st != GM_OK) return st;
  Gm__Testmkt__ProbeReply *out = host->alloc(call, sizeof *out);
  gm__testmkt__probe_reply__init(out);
  out->n = 1;
  *reply = &out->base;
  return GM_OK;
}

/* A ledger read of the broker's table, another market's, or its own; "big"
   reads a 2 MB parameter back. */
static gm_status peek(gm_call *call, const ProtobufCMessage *req,
                      ProtobufCMessage **reply) {
  const Gm__Testmkt__ProbeRequest *in = (const void *)req;
  const char *sql =
      strcmp(in->what, "settled") == 0
          ? "SELECT count(*) FROM gm_settled /* scan: a test's few rows */"
      : strcmp(in->what, "other") == 0
          ? "SELECT count(*) FROM othermkt_rows /* scan: a test's few rows */"
          : "SELECT count(*) FROM testmkt_bumps /* scan: a test's few rows */";
  int64_t n = -1;
  gm_status st;
  if (strcmp(in->what, "big") == 0) {
    /* A read of 2 MB: past what the ledger endpoint takes from a peer. */
    size_t len = 2u << 20;
    char *big = host->alloc(call, len + 1);
    memset(big, 'x', len);
    big[len] = '\0';
    gm_param p[] = {GM_TEXT(big)};
    st = host->ledger_query(call, "SELECT length(?1)", p, 1, count_row, &n);
  } else {
    st = host->ledger_query(call, sql, NULL, 0, count_row, &n);
  }
  if (st != GM_OK) return st;
  Gm__Testmkt__ProbeReply *out = host->alloc(call, sizeof *out);
  gm__testmkt__probe_reply__init(out);
  out->n = n;
  *reply = &out->base;
  return GM_OK;
}

static void late_tick(gm_call *call, void *arg) {
  (void)call;
  (void)arg;
}

/* deadline (mutating) and deadline.get (op "get" only): testmkt.proto. */
static gm_status deadline_op(gm_call *call,
                             const Gm__Testmkt__DeadlineRequest *in,
                             ProtobufCMessage **reply) {
  const char *due = host->sprintf(call, "%lld", (long long)in->due_ms);
  const char *keys[] = {"entity"};
  const gm_value *v;
  gm_status st = GM_OK;
  if (!strcmp(in->op, "host_set"))
    st = host->deadline_set(call, in->kind, in->tag, in->id, in->due_ms);
  else if (!strcmp(in->op, "host_cancel"))
    st = host->deadline_cancel(call, in->kind, in->tag, in->id);
  else if (!strcmp(in->op, "late_register")) {
    /* A plugin bug: registrations after init are refused, and logged. */
    gm_market *m = host->market(call);
    st = host->script_register(m, "late", "return 1");
    if (host->timer_add(m, "late", 1000, late_tick, NULL) == GM_OK ||
        host->deadline_register(m, "late", NULL, NULL) == GM_OK ||
        host->settle_register(m, NULL) == GM_OK)
      st = GM_INTERNAL;
    if (st != GM_OK)
      return host->fail(call, st, "registering after init: %s",
                        st == GM_FAILED_PRECONDITION ? "refused" : "taken");
  }
  if (st != GM_OK) return st;
  const char *op = !strncmp(in->op, "host_", 5) ? "get" : in->op;
  const char *args[] = {op, in->kind, in->id, due};
  st = host->script_run(call, "dl", in->tag, 1, keys, 4, args, &v);
  if (st != GM_OK) return st;
  Gm__Testmkt__DeadlineReply *out = host->alloc(call, sizeof *out);
  gm__testmkt__deadline_reply__init(out);
  out->due_ms = v->type == GM_VALUE_INT ? v->integer : 0;
  *reply = &out->base;
  return GM_OK;
}

static gm_status deadline(gm_call *call, const ProtobufCMessage *req,
                          ProtobufCMessage **reply) {
  return deadline_op(call, (const void *)req, reply);
}

static gm_status deadline_get(gm_call *call, const ProtobufCMessage *req,
                              ProtobufCMessage **reply) {
  Gm__Testmkt__DeadlineRequest in = *(const Gm__Testmkt__DeadlineRequest *)req;
  in.op = "get";
  return deadline_op(call, &in, reply);
}

/* The firing's first step on the deadline's tag: its count. */
static gm_status fired(gm_call *call, const gm_deadline *d, long long *n) {
  const char *keys[] = {"fired"};
  const char *args[] = {d->id,
                        host->sprintf(call, "%lld", (long long)d->due_ms)};
  const gm_value *v;
  gm_status st = host->script_run(call, "fired", d->tag, 1, keys, 2, args, &v);
  if (st != GM_OK) return st;
  *n = v->type == GM_VALUE_INT ? v->integer : -1;
  return GM_OK;
}

/* "tick": two steps, with the test-only kill between them. */
static gm_status on_tick(gm_call *call, const gm_deadline *d, void *arg) {
  (void)arg;
  long long n;
  gm_status st = fired(call, d, &n);
  if (st != GM_OK) return st;
#ifdef GM_FAILURE_INJECTION
  if (kill_in_deadline) raise(SIGKILL);
#endif
  const char *keys[] = {"after", "attempts"};
  const char *args[] = {d->id, host->sprintf(call, "%u", d->attempt)};
  const gm_value *v;
  return host->script_run(call, "after", d->tag, 2, keys, 2, args, &v);
}

/* "count": reads the settled bumps from the ledger (as a deadline callback
   that checks the book before acting would) and records the count. */
static gm_status on_count(gm_call *call, const gm_deadline *d, void *arg) {
  (void)arg;
  int64_t n = -1;
  gm_status st = host->ledger_query(
      call, "SELECT count(*) FROM testmkt_bumps /* scan: a test's few rows */",
      NULL, 0, count_row, &n);
  if (st != GM_OK) return st;
  const char *keys[] = {"counted"};
  const char *args[] = {d->id, host->sprintf(call, "%lld", (long long)n)};
  const gm_value *v;
  return host->script_run(call, "counted", d->tag, 1, keys, 2, args, &v);
}

/* "rearm": sets itself again for the time it fires at, until it fired
   three times. */
static gm_status on_rearm(gm_call *call, const gm_deadline *d, void *arg) {
  (void)arg;
  long long n;
  gm_status st = fired(call, d, &n);
  if (st == GM_OK && n < 3)
    st = host->deadline_set(call, d->kind, d->tag, d->id, d->due_ms);
  return st;
}

/* "flaky": its first attempt fails after its step ran. */
static gm_status on_flaky(gm_call *call, const gm_deadline *d, void *arg) {
  (void)arg;
  long long n;
  gm_status st = fired(call, d, &n);
  if (st == GM_OK && d->attempt < 2)
    return host->fail(call, GM_UNAVAILABLE, "attempt %u fails on purpose",
                      d->attempt);
  return st;
}

/* How long "slow" and "slowfail" wait before their step: long enough that
   the step's stored reply is always later than the claim by Redis's
   clock, whatever the machine. */
#define SLOW_MS 100

static void slow_wait(void) {
  struct timespec ts = {0, SLOW_MS * 1000000L};
  while (nanosleep(&ts, &ts) != 0) {
  }
}

/* "slow": waits, then its step: the firing stores its reply well after
   its claim, and ends just after that. */
static gm_status on_slow(gm_call *call, const gm_deadline *d, void *arg) {
  (void)arg;
  long long n;
  slow_wait();
  return fired(call, d, &n);
}

/* "slowfail": waits, runs its step, then its first attempt fails. */
static gm_status on_slowfail(gm_call *call, const gm_deadline *d, void *arg) {
  (void)arg;
  long long n;
  slow_wait();
  gm_status st = fired(call, d, &n);
  if (st == GM_OK && d->attempt < 2)
    return host->fail(call, GM_UNAVAILABLE,
                      "slow attempt %u fails on purpose after its step",
                      d->attempt);
  return st;
}

static gm_status init(gm_market *m, const gm_host_api *api) {
  host = api;
  gm_status st = host->script_register(m, "bump", bump_lua);
  if (st == GM_OK) st = host->script_register(m, "probe", probe_lua);
  if (st == GM_OK) st = host->script_register(m, "dl", dl_lua);
  if (st == GM_OK) st = host->script_register(m, "fired", fired_lua);
  if (st == GM_OK) st = host->script_register(m, "after", after_lua);
  if (st == GM_OK) st = host->script_register(m, "counted", counted_lua);
  if (st == GM_OK)
    st = host->ledger_migrate(m, migrations,
                              sizeof migrations / sizeof migrations[0]);
  if (st == GM_OK) st = host->settle_register(m, settle);
  /* test_old_release = 1: a broker of a release before "tick" existed. */
  if (st == GM_OK && strcmp(host->config(m, "test_old_release", "0"), "1"))
    st = host->deadline_register(m, "tick", on_tick, NULL);
  if (st == GM_OK) st = host->deadline_register(m, "rearm", on_rearm, NULL);
  if (st == GM_OK) st = host->deadline_register(m, "flaky", on_flaky, NULL);
  if (st == GM_OK) st = host->deadline_register(m, "count", on_count, NULL);
  if (st == GM_OK) st = host->deadline_register(m, "slow", on_slow, NULL);
  if (st == GM_OK)
    st = host->deadline_register(m, "slowfail", on_slowfail, NULL);
  /* Checked in every build (test_gmd's a_market_setting_out_of_range_...
     runs without failure injection too); acted on only with it. */
  long kill_setting = 0;
  if (st == GM_OK && gm_config_long(m, host, "testmkt", "test_kill_in_deadline",
                                    0, 0, 1, "", &kill_setting) != GM_OK)
    st = GM_INVALID_ARGUMENT;
#ifdef GM_FAILURE_INJECTION
  kill_in_deadline = (int)kill_setting;
#endif
  return st;
}

static void shutdown_plugin(gm_market *m) {
  (void)m;
}

static const gm_method methods[] = {
    {"echo", &gm__testmkt__echo_request__descriptor,
     &gm__testmkt__echo_reply__descriptor, echo, 0, NULL, "echo a text"},
    {"bump", &gm__testmkt__bump_request__descriptor,
     &gm__testmkt__bump_reply__descriptor, bump, GM_METHOD_MUTATING,
     "buyer,seller", "count one, settle one row"},
    {"count", &gm__testmkt__count_request__descriptor,
     &gm__testmkt__count_reply__descriptor, count, 0, NULL,
     "rows settled so far"},
    {"tell", &gm__testmkt__tell_request__descriptor,
     &gm__testmkt__tell_reply__descriptor, tell, 0, NULL,
     "publish the request to an audience (private events)"},
    {"probe", &gm__testmkt__probe_request__descriptor,
     &gm__testmkt__probe_reply__descriptor, probe, GM_METHOD_MUTATING, NULL,
     "emit an entry whose settlement tries the ledger's boundaries"},
    {"peek", &gm__testmkt__probe_request__descriptor,
     &gm__testmkt__probe_reply__descriptor, peek, 0, NULL,
     "read the broker's, another market's or its own table"},
    {"deadline", &gm__testmkt__deadline_request__descriptor,
     &gm__testmkt__deadline_reply__descriptor, deadline, GM_METHOD_MUTATING,
     NULL, "set, move or cancel a deadline"},
    {"deadline.get", &gm__testmkt__deadline_request__descriptor,
     &gm__testmkt__deadline_reply__descriptor, deadline_get, 0, NULL,
     "a deadline's due ms, or 0"},
};

static const gm_role roles[] = {
    {"buyer", "bumps the test counter"},
    {"seller", "bumps the test counter too"},
    {"observer", "reads the test market; may not bump"},
};

/* Every [market.testmkt] key this market reads. */
static const char *const settings[] = {"greeting", "file", "test_old_release",
                                       "test_kill_in_deadline", NULL};

static const gm_plugin plugin = {
    .size = sizeof(gm_plugin),
    .name = "testmkt",
    .version = "1.0.0",
    .description = "the broker's test market",
    .methods = methods,
    .n_methods = sizeof methods / sizeof *methods,
    .init = init,
    .shutdown = shutdown_plugin,
    .roles = roles,
    .n_roles = sizeof roles / sizeof roles[0],
    .settings = settings,
};

GM_PLUGIN_DEFINE(plugin)
