#include "dispatch.h"

#include <string.h>

#include "broker.h"
#include "call.h"
#include "hash.h"
#include "identity.h"
#include "log.h"
#include "market.h"
#include "methods.h"
#include "redis.h"
#include "wire.h"

#define MAX_IDEM_KEY 128
/* Names a client sent, echoed in a refusal: at most this many bytes. */
#define ECHO_MAX 64

/* One line per bad frame could be made to flood the log. */
static gm__log_limit gm__bad_frame_log = GM__LOG_LIMIT(10, 10000);

static void *gm__dispatch_alloc(void *data, size_t size) {
  return gm__arena_alloc(data, size);
}
static void gm__dispatch_free(void *data, void *p) {
  (void)data;
  (void)p;
}

static const char *gm__list_markets(gm__broker *b, gm__arena *a) {
  char *s = "gm";
  for (size_t i = 0; i < gm__broker_markets(b); i++)
    s = gm__arena_sprintf(a, "%s, %s", s, gm__broker_market(b, i)->name);
  return s;
}

static const char *gm__list_methods(const gm_method *m, size_t n,
                                    gm__arena *a) {
  char *s = "";
  for (size_t i = 0; i < n; i++)
    s = gm__arena_sprintf(a, "%s%s%s", s, i ? ", " : "", m[i].name);
  return s;
}

/* 1-128 printable characters but ':', which separates the step number in
   the key's Redis record ("K" step 1 and "K:1" step 0 must not meet). */
static int gm__idem_key_valid(const char *k) {
  size_t n = strlen(k);
  if (n == 0 || n > MAX_IDEM_KEY) return 0;
  for (const char *p = k; *p; p++)
    if (*p < '!' || *p > '~' || *p == ':') return 0;
  return 1;
}

/* A frame refused before it is unpacked still answers with its request id,
   read from its bytes, so the client waiting for that id gets the reason
   (and does not send it again as if gmd had not answered). */
static uint64_t gm__refused_request_id(const void *payload, size_t size) {
  const ProtobufCFieldDescriptor *f =
      protobuf_c_message_descriptor_get_field_by_name(&gm__request__descriptor,
                                                      "request_id");
  return f ? gm__wire_top_varint(payload, size, f->id) : 0;
}

void gm__dispatch(gm__broker *b, gm__identity *id, gm_call *call,
                  const void *auth, size_t auth_len, const void *payload,
                  size_t size, Gm__Reply *out, gm__stats **stats,
                  gm__stats **method_stats) {
  gm__arena *a = call->arena;
  ProtobufCAllocator alloc = {gm__dispatch_alloc, gm__dispatch_free, a};
  *stats = gm__broker_core_stats(b);
  *method_stats = NULL;
  if ((long)size > gm__broker_max_message(b)) {
    gm__call_fail(call, GM_RESOURCE_EXHAUSTED,
                  "request of %zu bytes is larger than the broker's limit of "
                  "%ld bytes ([broker] max_message_bytes)",
                  size, gm__broker_max_message(b));
    gm__broker_count_bad_frame(b);
    out->request_id = gm__refused_request_id(payload, size);
    return;
  }
  char why[400];
  Gm__Request *req = NULL;
  if (gm__wire_check(&gm__request__descriptor, payload, size, why,
                     sizeof why) == 0)
    req = gm__request__unpack(&alloc, size, payload);
  else if (strstr(why, "field '")) { /* a text field: say which */
    gm__call_fail(call, GM_INVALID_ARGUMENT, "the request envelope's %s", why);
    gm__broker_count_bad_frame(b);
    gm__log_limited(&gm__bad_frame_log, GM_LOG_WARN, "broker",
                    "refused a request envelope of %zu bytes: %s", size, why);
    out->request_id = gm__refused_request_id(payload, size);
    return;
  }
  if (!req) {
    gm__call_fail(call, GM_INVALID_ARGUMENT,
                  "the frame (%zu bytes) is not a gm.Request protobuf: send "
                  "one packed gm.Request per frame (docs/protocol.md)",
                  size);
    gm__broker_count_bad_frame(b);
    gm__log_limited(&gm__bad_frame_log, GM_LOG_WARN, "broker",
                    "undecodable frame of %zu bytes", size);
    out->request_id = gm__refused_request_id(payload, size);
    return;
  }
  out->request_id = req->request_id;
  if (req->version != GM__PROTOCOL_VERSION) {
    gm__call_fail(call, GM_INVALID_ARGUMENT,
                  "protocol version %u is not supported: set Request.version "
                  "= %d",
                  req->version, GM__PROTOCOL_VERSION);
    return;
  }
  if (gm__identity_resolve(id, call, auth, auth_len, req->dev_participant))
    return;

  const gm_method *m = NULL;
  const gm_method *methods = gm__core_methods;
  size_t n_methods = GM__CORE_METHODS;
  gm_market *market = NULL;
  if (strcmp(req->market, "gm") != 0) {
    market = gm__broker_find_market(b, req->market);
    if (!market) {
      gm__call_fail(call, GM_NOT_FOUND,
                    "no market '%s' on this broker; markets: %s (gm markets "
                    "lists them; a plugin gmd refused at start is not "
                    "among them, and the gmd log says why)",
                    gm__call_quote(call, req->market, ECHO_MAX),
                    gm__list_markets(b, a));
      return;
    }
    methods = market->plugin->methods;
    n_methods = market->plugin->n_methods;
    *stats = &market->stats;
  }
  for (size_t i = 0; i < n_methods && !m; i++)
    if (strcmp(methods[i].name, req->method) == 0) m = &methods[i];
  if (!m) {
    gm__call_fail(call, GM_UNIMPLEMENTED,
                  "market '%s' has no method '%s'; its methods: %s",
                  req->market, gm__call_quote(call, req->method, ECHO_MAX),
                  gm__list_methods(methods, n_methods, a));
    return;
  }
  call->market = market;
  *method_stats = market
                      ? &market->method_stats[m - methods]
                      : &gm__broker_core_method_stats(b)[m - gm__core_methods];
  if (gm__identity_authorize(id, call, req->market, market != NULL, m)) return;
  if (m->flags & GM_METHOD_MUTATING) {
    if (!gm__idem_key_valid(req->idempotency_key)) {
      gm__call_fail(call, GM_INVALID_ARGUMENT,
                    "%s %s changes state and needs an idempotency_key of 1-%d "
                    "printable characters other than ':'; reuse the same key "
                    "when you retry",
                    req->market, req->method, MAX_IDEM_KEY);
      return;
    }
    call->idem_key = req->idempotency_key;
    uint64_t h =
        gm__hash_update(GM__HASH_INIT, req->market, strlen(req->market) + 1);
    h = gm__hash_update(h, req->method, strlen(req->method) + 1);
    h = gm__hash_update(h, req->body.data, req->body.len);
    call->request_fp = h ? h : 1;
  }
  if (gm__wire_check(m->request, req->body.data, req->body.len, why,
                     sizeof why) &&
      strstr(why, "field '")) {
    gm__call_fail(call, GM_INVALID_ARGUMENT, "the body of %s %s: %s",
                  req->market, req->method, why);
    return;
  }
  ProtobufCMessage *body = protobuf_c_message_unpack(
      m->request, &alloc, req->body.len, req->body.data);
  if (!body) {
    gm__call_fail(call, GM_INVALID_ARGUMENT,
                  "the body of %s %s is not a valid %s", req->market,
                  req->method, m->request->name);
    return;
  }
  ProtobufCMessage *reply = NULL;
  gm_status st = market ? m->handle(call, body, &reply)
                        : gm__core_call(call, m, body, &reply);
  if (st != GM_OK) {
    if (market) gm__scripts_forget_reads(call);
    if (call->status == GM_OK || call->status != st) {
      /* The handler returned a status without saying why. */
      gm__call_fail(call, st, "%s %s failed (%s)", req->market, req->method,
                    call->message ? call->message : "no reason given");
    }
    return;
  }
  if (!reply || reply->descriptor != m->reply) {
    gm__log(GM_LOG_ERROR, req->market,
            "method %s returned %s instead of a %s: plugin bug", req->method,
            reply ? reply->descriptor->name : "no reply", m->reply->name);
    gm__call_fail(call, GM_INTERNAL,
                  "%s %s returned a malformed reply; see the gmd log",
                  req->market, req->method);
    return;
  }
  size_t len = protobuf_c_message_get_packed_size(reply);
  uint8_t *packed = gm__arena_alloc(a, len ? len : 1);
  protobuf_c_message_pack(reply, packed);
  /* A plugin may put any bytes in a string field (an echoed request, a
     cut multi-byte character): strict clients reject the whole reply, so
     such text is repaired, never sent. */
  const uint8_t *wire = gm__wire_repair(a, m->reply, packed, len, &len);
  if (!wire) {
    gm__call_fail(call, GM_INTERNAL,
                  "%s %s returned a reply that does not pack; see the gmd log",
                  req->market, req->method);
    return;
  }
  if (wire != packed)
    gm__log(GM_LOG_WARN, req->market,
            "method %s put invalid UTF-8 in its reply; repaired (plugin bug)",
            req->method);
  call->status = GM_OK;
  out->body.len = len;
  out->body.data = (uint8_t *)wire;
}
