/*
 * The hello market: the worked example of docs/plugins.md.
 *
 *   hello.greet  (read)      "Hello, <name>!" and how many guestbook entries
 *                            of the caller are settled in the ledger.
 *   hello.sign   (mutating)  signs the guestbook: a Redis script counts the
 *                            entry and emits it to the outbox; the settle
 *                            callback writes it to the hello_guestbook table.
 *
 * `gm hello sign TEXT` is a friendly command of cli.c, shipped in this same
 * shared object.
 */
#include <stdlib.h>

#include <greenmarket/plugin.h>

#include "hello.pb-c.h"

/* Embedded from hello.lua by gm_add_plugin(... LUA hello.lua). */
extern const char gm_lua_hello[];

/*
 * Plugin globals: written only in init(), read by handlers on every worker
 * thread afterwards, so they need no lock.
 */
static const gm_host_api *host;
static const char *greeting;

/* Every guestbook entry lives under one hash tag: one counter, one outbox. */
#define HELLO_TAG "guestbook"

static const gm_migration hello__migrations[] = {
    {1,
     "CREATE TABLE hello_guestbook ("
     " stream TEXT NOT NULL, id TEXT NOT NULL,"
     " participant TEXT NOT NULL, message TEXT NOT NULL,"
     " number INTEGER NOT NULL, signed_ms INTEGER NOT NULL,"
     " PRIMARY KEY (stream, id))"},
    {2,
     "CREATE INDEX hello_guestbook_participant"
     " ON hello_guestbook (participant)"},
};

static int hello__count_row(void *arg, size_t ncols, const gm_param *cols) {
  if (ncols == 1 && cols[0].type == GM_PARAM_INT) *(int64_t *)arg = cols[0].i;
  return 0;
}

static gm_status hello__greet(gm_call *call, const ProtobufCMessage *req,
                              ProtobufCMessage **reply) {
  const Gm__Hello__GreetRequest *in = (const Gm__Hello__GreetRequest *)req;
  const char *who = host->participant(call);
  const char *name = in->name[0] ? in->name : who;
  int64_t signatures = 0;
  gm_status st;

  /* The ledger holds what is settled: an entry signed a moment ago may not
   * be counted yet (the settler runs a few milliseconds behind). */
  st = host->ledger_query(
      call, "SELECT count(*) FROM hello_guestbook WHERE participant = ?1",
      (gm_param[]){GM_TEXT(who)}, 1, hello__count_row, &signatures);
  if (st != GM_OK) return st;

  Gm__Hello__GreetReply *out = host->alloc(call, sizeof *out);
  gm__hello__greet_reply__init(out);
  out->greeting = host->sprintf(call, "%s, %s!", greeting, name);
  out->signatures = signatures;
  *reply = &out->base;
  return GM_OK;
}

static gm_status hello__sign(gm_call *call, const ProtobufCMessage *req,
                             ProtobufCMessage **reply) {
  const Gm__Hello__SignRequest *in = (const Gm__Hello__SignRequest *)req;
  const char *keys[] = {"count"};
  const char *args[] = {in->message};
  const gm_value *v;
  gm_status st;

  /* The script validates and rejects; a retry with the same idempotency key
   * gets the first reply back from the host and changes nothing. */
  st = host->script_run(call, "sign", HELLO_TAG, 1, keys, 1, args, &v);
  if (st != GM_OK) return st;
  if (v->type != GM_VALUE_INT)
    return host->fail(call, GM_INTERNAL,
                      "the sign script returned no number; check the gmd log");

  Gm__Hello__SignReply *out = host->alloc(call, sizeof *out);
  gm__hello__sign_reply__init(out);
  out->number = v->integer;

  /* The feed is best effort: the entry is already in the outbox. */
  Gm__Hello__Signed ev = GM__HELLO__SIGNED__INIT;
  ev.participant = (char *)host->participant(call);
  ev.message = in->message;
  ev.number = v->integer;
  host->publish(call, "signed", &ev.base);

  *reply = &out->base;
  return GM_OK;
}

/* Runs on the settler thread, inside its transaction, once per entry. */
static gm_status hello__settle(gm_market *m, gm_ledger *tx,
                               const gm_outbox_entry *e) {
  const char *participant = gm_entry_field(e, "participant");
  const char *message = gm_entry_field(e, "message");
  const char *number = gm_entry_field(e, "number");
  const char *time_ms = gm_entry_field(e, "time_ms");

  if (!participant || !message || !number || !time_ms) {
    /* Retrying cannot fix a malformed entry, and refusing it would stop the
     * whole outbox: record the fault and let the entry settle as nothing. */
    host->log(m, GM_LOG_ERROR, "outbox entry %s %s (%s) lacks a field; skipped",
              e->stream, e->id, e->kind);
    return GM_OK;
  }
  return host->ledger_exec(
      tx,
      "INSERT INTO hello_guestbook"
      " (stream, id, participant, message, number, signed_ms)"
      " VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
      (gm_param[]){GM_TEXT(e->stream), GM_TEXT(e->id), GM_TEXT(participant),
                   GM_TEXT(message), GM_INT(strtoll(number, NULL, 10)),
                   GM_INT(strtoll(time_ms, NULL, 10))},
      6);
}

static gm_status hello__init(gm_market *m, const gm_host_api *h) {
  gm_status st;

  host = h;
  greeting = host->config(m, "greeting", "Hello");
  st = host->script_register(m, "sign", gm_lua_hello);
  if (st != GM_OK) return st;
  st = host->ledger_migrate(
      m, hello__migrations,
      sizeof hello__migrations / sizeof hello__migrations[0]);
  if (st != GM_OK) return st;
  return host->settle_register(m, hello__settle);
}

static void hello__shutdown(gm_market *m) {
  host->log(m, GM_LOG_INFO, "hello market stopped");
}

/* The roles its methods name: anyone may greet; signing the guestbook
   needs "guest" (an admin holds every role). */
static const gm_role hello__roles[] = {
    {"guest", "signs the guestbook"},
};

static const gm_method hello__methods[] = {
    {"greet", &gm__hello__greet_request__descriptor,
     &gm__hello__greet_reply__descriptor, hello__greet, 0, NULL,
     "greet someone, with your settled guestbook entry count"},
    {"sign", &gm__hello__sign_request__descriptor,
     &gm__hello__sign_reply__descriptor, hello__sign, GM_METHOD_MUTATING,
     "guest", "sign the guestbook with a message"},
};

/* The events hello publishes, so `gm watch` and clients can decode their
   bodies (hello.signed carries a gm.hello.Signed). */
static const ProtobufCMessageDescriptor *const hello__events[] = {
    &gm__hello__signed__descriptor,
};

/* The friendly `gm hello ...` commands (cli.c). */
extern const struct gm_cli_extension hello__cli;

/* Designated initializers: when gm_plugin grows at its end, this still
   compiles (a positional list would warn about the new fields). */
static const gm_plugin hello__plugin = {
    .size = sizeof(gm_plugin),
    .name = "hello",
    .version = "1.0.0",
    .description =
        "the worked example of docs/plugins.md: a greeting and a guestbook",
    .methods = hello__methods,
    .n_methods = sizeof hello__methods / sizeof hello__methods[0],
    .init = hello__init,
    .shutdown = hello__shutdown,
    .events = hello__events,
    .n_events = sizeof hello__events / sizeof hello__events[0],
    .roles = hello__roles,
    .n_roles = sizeof hello__roles / sizeof hello__roles[0],
    .cli = &hello__cli,
};

GM_PLUGIN_DEFINE(hello__plugin)
