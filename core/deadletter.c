#include "deadletter.h"

#include <hiredis/hiredis.h>
#include <stdio.h>
#include <string.h>

#include "call.h"
#include "greenmarket.pb-c.h"
#include "ledger.h"
#include "redis.h"

#define LIST_DEFAULT 100
#define LIST_MAX 1000
/* How long the record of a replay is kept (its entry settles long before). */
#define REPLAY_RECORD_S "2592000"

/*
 * Puts a dead letter back: refuses a second replay of the same letter
 * (unless it is the same request retried: the same idempotency key gets the
 * same entry back), else appends kind, the replay marker and the fields to
 * the stream and records the new id.
 *   KEYS: stream, replay record.  ARGV: idempotency key, kind, old id,
 *   then name, value pairs.
 */
static const char replay_lua[] =
    "#!lua\n" GM__OUTBOX_REMAKE_LUA
    "local as = redis.call('HGET', KEYS[2], 'as')\n"
    "if as then\n"
    "  if redis.call('HGET', KEYS[2], 'key') == ARGV[1] then return as end\n"
    "  return redis.error_reply('ALREADY_EXISTS dead letter ' .. ARGV[3] ..\n"
    "    ' was put back already, as entry ' .. as .. '; it leaves the list '\n"
    "    .. 'once that entry settles')\n"
    "end\n"
    "gm__outbox_remake(KEYS[1])\n"
    "local f = {'XADD', KEYS[1], '*', 'kind', ARGV[2], '" GM__REPLAY_FIELD
    "', ARGV[3]}\n"
    "for i = 4, #ARGV do f[#f + 1] = ARGV[i] end\n"
    "local id = redis.call(unpack(f))\n"
    "redis.call('HSET', KEYS[2], 'as', id, 'key', ARGV[1])\n"
    "redis.call('EXPIRE', KEYS[2], " REPLAY_RECORD_S
    ")\n"
    "return id\n";

/* The replay record of entry `id` of outbox `stream` ("gm:{m:t}:outbox"),
   in the stream's hash slot: "gm:{m:t}:dead-letter:<id>"; NULL for a
   stream of another shape (not an outbox the host made). */
static char *replay_key(gm_call *call, const char *stream, const char *id) {
  const char *close = strchr(stream, '}');
  if (strncmp(stream, "gm:{", 4) != 0 || !close || close == stream + 4)
    return NULL;
  return gm__arena_sprintf(call->arena, "%.*s:dead-letter:%s",
                           (int)(close - stream + 1), stream, id);
}

static gm_status unreachable(gm_call *call) {
  const char *e = gm__redis_last_error(call->redis);
  if (gm__redis_auth_failed(e)) {
    char buf[1024];
    return gm__call_fail(call, GM_UNAVAILABLE, "%s",
                         gm__redis_error_text(call->redis, e, buf, sizeof buf));
  }
  return gm__call_fail(call, GM_UNAVAILABLE,
                       "Redis is not reachable at %s (%s); is redis-server "
                       "running?",
                       gm__redis_where(call->redis),
                       gm__redis_last_error(call->redis));
}

/* A growing array of pointers in the call's arena (rows of a query). */
typedef struct rows {
  gm_call *call;
  void **v;
  size_t n, cap;
} rows;

static void rows_push(rows *r, void *item) {
  if (r->n == r->cap) {
    size_t cap = r->cap ? r->cap * 2 : 16;
    void **v = gm__arena_alloc(r->call->arena, cap * sizeof *v);
    if (r->n) memcpy(v, r->v, r->n * sizeof *v);
    r->v = v;
    r->cap = cap;
  }
  r->v[r->n++] = item;
}

static int letter_row(void *arg, size_t ncols, const gm_param *c) {
  rows *l = arg;
  if (ncols != 7) return 1;
  Gm__DeadLetter *d = gm__arena_alloc(l->call->arena, sizeof *d);
  gm__dead_letter__init(d);
  d->stream = (char *)c[0].s;
  d->id = (char *)c[1].s;
  d->market = (char *)c[2].s;
  d->kind = (char *)c[3].s;
  d->error = (char *)c[4].s;
  d->failures = c[5].i;
  d->set_aside_ms = c[6].i;
  rows_push(l, d);
  return 0;
}

static int field_row(void *arg, size_t ncols, const gm_param *c) {
  rows *f = arg;
  if (ncols != 2) return 1;
  Gm__DeadLetterField *x = gm__arena_alloc(f->call->arena, sizeof *x);
  gm__dead_letter_field__init(x);
  x->name = (char *)(c[0].type == GM_PARAM_TEXT ? c[0].s : "");
  x->value = (char *)(c[1].type == GM_PARAM_TEXT ? c[1].s : "");
  rows_push(f, x);
  return 0;
}

static gm_status load_fields(gm_call *call, Gm__DeadLetter *d) {
  rows f = {.call = call};
  gm_param p[] = {GM_TEXT(d->stream), GM_TEXT(d->id)};
  gm_status st = gm__ledger_query(call,
                                  "SELECT name, value FROM "
                                  "gm_dead_letter_field WHERE stream = ?1 AND "
                                  "id = ?2 ORDER BY n",
                                  p, 2, field_row, &f);
  d->fields = (Gm__DeadLetterField **)f.v;
  d->n_fields = f.n;
  return st;
}

static const char select_letters[] =
    "SELECT stream, id, market, kind, error, failures, set_aside_ms FROM "
    "gm_dead_letter WHERE (?1 = '' OR market = ?1) ORDER BY set_aside_ms, "
    "stream, id LIMIT ?2 /* scan: an operator's to-do list, kept short */";

gm_status gm__dead_letters_list(gm_call *call, const ProtobufCMessage *req,
                                ProtobufCMessage **reply) {
  const Gm__DeadLettersRequest *in = (const Gm__DeadLettersRequest *)req;
  if (in->limit < 0 || in->limit > LIST_MAX)
    return gm__call_fail(call, GM_INVALID_ARGUMENT,
                         "limit %d is out of range: give 1-%d (0: %d)",
                         in->limit, LIST_MAX, LIST_DEFAULT);
  rows l = {.call = call};
  gm_param p[] = {GM_TEXT(in->market ? in->market : ""),
                  GM_INT(in->limit ? in->limit : LIST_DEFAULT)};
  gm_status st = gm__ledger_query(call, select_letters, p, 2, letter_row, &l);
  Gm__DeadLetter **v = (Gm__DeadLetter **)l.v;
  for (size_t i = 0; st == GM_OK && i < l.n; i++) {
    st = load_fields(call, v[i]);
    if (st != GM_OK) break;
    const char *key = replay_key(call, v[i]->stream, v[i]->id);
    v[i]->replayed_as = "";
    if (!key) continue;
    redisReply *r = gm__redis_callf(call->redis, "HGET %s as", key);
    if (!r) return unreachable(call);
    v[i]->replayed_as = gm__arena_strdup(
        call->arena, r->type == REDIS_REPLY_STRING ? r->str : "");
    freeReplyObject(r);
  }
  if (st != GM_OK) return st;
  Gm__DeadLettersReply *out = gm__arena_alloc(call->arena, sizeof *out);
  gm__dead_letters_reply__init(out);
  out->dead_letters = v;
  out->n_dead_letters = l.n;
  *reply = &out->base;
  return GM_OK;
}

gm_status gm__dead_letters_replay(gm_call *call, const ProtobufCMessage *req,
                                  ProtobufCMessage **reply) {
  const Gm__ReplayRequest *in = (const Gm__ReplayRequest *)req;
  if (!in->stream || !*in->stream || !in->id || !*in->id)
    return gm__call_fail(call, GM_INVALID_ARGUMENT,
                         "give the dead letter's stream and id (gm admin "
                         "dead-letters lists them)");
  /* A stream entry id is <ms>-<seq>: anything else is a mistyped paste,
     which "no dead letter" would leave the operator guessing at. */
  size_t ms = strspn(in->id, "0123456789");
  if (ms == 0 || ms > 20 || in->id[ms] != '-' || !in->id[ms + 1] ||
      strspn(in->id + ms + 1, "0123456789") != strlen(in->id + ms + 1) ||
      strlen(in->id + ms + 1) > 20)
    return gm__call_fail(call, GM_INVALID_ARGUMENT,
                         "'%s' is not a stream entry id: give it as gm admin "
                         "dead-letters prints it, <ms>-<seq> (for example "
                         "1795483414822-0)",
                         in->id);
  rows l = {.call = call};
  gm_param p[] = {GM_TEXT(in->stream), GM_TEXT(in->id)};
  gm_status st = gm__ledger_query(
      call,
      "SELECT stream, id, market, kind, error, failures, set_aside_ms FROM "
      "gm_dead_letter WHERE stream = ?1 AND id = ?2",
      p, 2, letter_row, &l);
  if (st != GM_OK) return st;
  if (l.n == 0)
    return gm__call_fail(call, GM_NOT_FOUND,
                         "no dead letter %s %s: it was never set aside, or "
                         "a replay of it has settled, or failed again and "
                         "was set aside under a new id; gm admin "
                         "dead-letters lists the letters as they are now",
                         in->stream, in->id);
  Gm__DeadLetter *d = l.v[0];
  const char *record = replay_key(call, d->stream, d->id);
  if (!record)
    return gm__call_fail(call, GM_FAILED_PRECONDITION,
                         "%s is not an outbox stream of the form "
                         "gm:{market:tag}:outbox; it cannot be replayed",
                         d->stream);
  if ((st = load_fields(call, d)) != GM_OK) return st;

  /* The stream is registered first, as for any script that appends to an
     outbox: after a Redis that lost its data, the settler must see it. */
  redisReply *r =
      gm__redis_callf(call->redis, "SADD gm:outboxes %s", d->stream);
  if (!r) return unreachable(call);
  freeReplyObject(r);

  int argc = 0;
  const char **argv =
      gm__arena_alloc(call->arena, (8 + 2 * d->n_fields) * sizeof *argv);
  argv[argc++] = "EVAL";
  argv[argc++] = replay_lua;
  argv[argc++] = "2";
  argv[argc++] = d->stream;
  argv[argc++] = record;
  argv[argc++] = call->idem_key ? call->idem_key : "";
  argv[argc++] = d->kind;
  argv[argc++] = d->id;
  for (size_t i = 0; i < d->n_fields; i++) {
    argv[argc++] = d->fields[i]->name;
    argv[argc++] = d->fields[i]->value;
  }
  r = gm__redis_callv(call->redis, argc, argv, NULL);
  if (!r) return unreachable(call);
  if (r->type == REDIS_REPLY_ERROR) {
    const char *sp = strchr(r->str, ' ');
    int code = sp ? gm__status_parse(r->str, (size_t)(sp - r->str)) : -1;
    st = code > 0 ? gm__call_fail(call, (gm_status)code, "%s", sp + 1)
                  : gm__redis_fail(call, r, "putting the dead letter back");
    freeReplyObject(r);
    return st;
  }
  Gm__ReplayReply *out = gm__arena_alloc(call->arena, sizeof *out);
  gm__replay_reply__init(out);
  out->stream = d->stream;
  out->id = gm__arena_strdup(call->arena,
                             r->type == REDIS_REPLY_STRING ? r->str : "");
  freeReplyObject(r);
  *reply = &out->base;
  return GM_OK;
}
