#include "idem.h"

#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "broker.h"
#include "call.h"
#include "clock.h"
#include "core_methods.h"
#include "log.h"
#include "redis.h"

/* Takes the lease unless the key has a record: nil when taken, else the
   record.  KEYS: record.  ARGV: lease value, lease ms. */
static const char gm__idem_claim_lua[] =
    "#!lua\n"
    "local v = redis.call('GET', KEYS[1])\n"
    "if v then return v end\n"
    "redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])\n"
    "return false\n";

/* Replaces our lease with the reply (ARGV[2] "R...") for ARGV[3] seconds,
   or deletes it (ARGV[2] ""); nothing when the lease is no longer ours.
   KEYS: record.  ARGV: lease value, record, ttl s. */
static const char gm__idem_finish_lua[] =
    "#!lua\n"
    "if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end\n"
    "if ARGV[2] == '' then redis.call('DEL', KEYS[1])\n"
    "else redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3]) end\n"
    "return 1\n";

/* Makes every lease value unique within this process. */
static _Atomic unsigned long long gm__idem_seq;

static void *gm__idem_alloc(void *data, size_t size) {
  return gm__arena_alloc(data, size);
}
static void gm__idem_free(void *data, void *p) {
  (void)data;
  (void)p;
}

static gm_status gm__idem_unreachable(gm_call *call) {
  const char *e = gm__redis_last_error(call->redis);
  if (gm__redis_auth_failed(e)) {
    char buf[1024];
    return gm__call_fail(call, GM_UNAVAILABLE,
                         "%s; retry with the same idempotency key",
                         gm__redis_error_text(call->redis, e, buf, sizeof buf));
  }
  return gm__call_fail(call, GM_UNAVAILABLE,
                       "Redis is not reachable at %s (%s); retry with the "
                       "same idempotency key",
                       gm__redis_where(call->redis),
                       gm__redis_last_error(call->redis));
}

/* Ends our lease: stores `record` (len bytes) or, when NULL, deletes it. */
static void gm__idem_finish(gm_call *call, const char *key, const char *lease,
                            const char *record, size_t len) {
  char ttl[24];
  snprintf(ttl, sizeof ttl, "%ld", gm__scripts_idem_ttl());
  const char *argv[] = {"EVAL", gm__idem_finish_lua,  "1", key,
                        lease,  record ? record : "", ttl};
  size_t lens[] = {4,
                   strlen(gm__idem_finish_lua),
                   1,
                   strlen(key),
                   strlen(lease),
                   record ? len : 0,
                   strlen(ttl)};
  redisReply *r = gm__redis_callv(call->redis, 7, argv, lens);
  if (!r || r->type != REDIS_REPLY_INTEGER || r->integer != 1) {
    char buf[1024];
    const char *why = "the lease ran out first";
    if (!r)
      why = gm__redis_error_text(call->redis, gm__redis_last_error(call->redis),
                                 buf, sizeof buf);
    else if (r->type == REDIS_REPLY_ERROR)
      why = r->str;
    gm__log(GM_LOG_WARN, "idem", "%s the record of %s failed (%s): %s",
            record ? "storing" : "removing", key, why,
            record ? "a retry runs the method again"
                   : "the lease runs out by itself");
  }
  if (r) freeReplyObject(r);
}

gm_status gm__idem_core_run(gm_call *call, const gm_method *m,
                            gm_handler_fn handle, const ProtobufCMessage *req,
                            ProtobufCMessage **reply) {
  char fp[GM__IDEM_FP_LEN + 1];
  const char *idem = call->idem_key ? call->idem_key : "";
  if (!*idem) return handle(call, req, reply); /* dispatch requires one */
  /* clock.set moves the clock of the broker that runs it (each keeps its
     own manual clock): its record is that broker's, or a retry reaching
     another broker was answered OK from the first one's record and left
     its own clock where it was. */
  int per_broker = m == &gm__core_methods[GM__CORE_CLOCK_SET];
  char *key =
      gm__arena_sprintf(call->arena, "gm:{gm}:idem:%s:%s%s%s:%s",
                        call->participant ? call->participant : "", m->name,
                        per_broker ? "@" : "",
                        per_broker ? gm__broker_name(call->broker) : "", idem);
  char *lease = gm__arena_sprintf(
      call->arena, "P%s/%lld/%llu", gm__broker_name(call->broker),
      (long long)gm__clock_now_ms(), atomic_fetch_add(&gm__idem_seq, 1));
  char ms[24];
  snprintf(ms, sizeof ms, "%d", GM__IDEM_LEASE_MS);
  const char *argv[] = {"EVAL", gm__idem_claim_lua, "1", key, lease, ms};
  redisReply *r = gm__redis_callv(call->redis, 6, argv, NULL);
  if (!r) return gm__idem_unreachable(call);
  if (r->type == REDIS_REPLY_ERROR) {
    gm_status st = gm__redis_fail(call, r, "recording the idempotency key");
    freeReplyObject(r);
    return st;
  }
  /* Our own lease comes back when the claim was sent again after a lost
     connection: it is ours all the same. */
  if (r->type == REDIS_REPLY_STRING && strcmp(r->str, lease) != 0) {
    gm_status st;
    /* "R" reply (a record of an older broker), or "F" fingerprint reply. */
    size_t skip = r->len > 0 && r->str[0] == 'R' ? 1
                  : r->len > GM__IDEM_FP_LEN && r->str[0] == 'F'
                      ? 1 + GM__IDEM_FP_LEN
                      : 0;
    if (skip > 1 && call->request_fp) gm__idem_fp_text(call->request_fp, fp);
    if (skip > 1 && call->request_fp &&
        memcmp(r->str + 1, fp, GM__IDEM_FP_LEN) != 0) {
      st = gm__idem_reused(call, "gm");
    } else if (skip) {
      ProtobufCAllocator alloc = {gm__idem_alloc, gm__idem_free, call->arena};
      *reply = protobuf_c_message_unpack(m->reply, &alloc, r->len - skip,
                                         (const uint8_t *)r->str + skip);
      st = *reply ? GM_OK
                  : gm__call_fail(call, GM_INTERNAL,
                                  "the stored reply of %s is not a %s; "
                                  "retry with a new idempotency key",
                                  m->name, m->reply->name);
    } else {
      st = gm__call_fail(call, GM_UNAVAILABLE,
                         "an earlier %s request with idempotency key '%s' is "
                         "still running (or its broker stopped less than %d "
                         "s ago); retry with the same key in a moment",
                         m->name, idem, GM__IDEM_LEASE_MS / 1000);
    }
    freeReplyObject(r);
    return st;
  }
  freeReplyObject(r);

  gm_status st = handle(call, req, reply);
  if (st != GM_OK || !*reply || (*reply)->descriptor != m->reply) {
    gm__idem_finish(call, key, lease, NULL, 0);
    return st;
  }
  size_t len = protobuf_c_message_get_packed_size(*reply);
  if (len > GM__IDEM_REPLY_MAX) {
    gm__log(GM_LOG_ERROR, "idem",
            "the reply of %s is %zu bytes, above the %d kept: not stored",
            m->name, len, GM__IDEM_REPLY_MAX);
    gm__idem_finish(call, key, lease, NULL, 0);
    return st;
  }
  size_t head = call->request_fp ? 1 + GM__IDEM_FP_LEN : 1;
  char *record = gm__arena_alloc(call->arena, len + head);
  record[0] = call->request_fp ? 'F' : 'R';
  if (head > 1) {
    gm__idem_fp_text(call->request_fp, fp);
    memcpy(record + 1, fp, GM__IDEM_FP_LEN);
  }
  protobuf_c_message_pack(*reply, (uint8_t *)record + head);
  gm__idem_finish(call, key, lease, record, len + head);
  return st;
}
