/*
 * A market's request handling, fed any request to any of its methods, down
 * to the script arguments: the body decoded as dispatch decodes it, the
 * handler run with Redis replies and ledger rows made from the input.  A
 * handler must never crash, must say why when it refuses, and must reply
 * with its declared type in text a strict client decodes.  Its deadline
 * callbacks are fired the same way, with an id from the input.
 * Input: method byte, caller byte, 2-byte body length, body, then the tape.
 * Caller byte with bits 3-7 all set (0xf8: few of the seeds written
 * before deadlines were fired have it): the method byte picks a
 * registered deadline kind instead (its top two bits: attempt - 1), and
 * the body (NULs as 'x', at most 63 bytes) is both the deadline's tag and
 * its id (markets read one or the other).
 */
#include <stdlib.h>
#include <string.h>

#include "fake_host.h"
#include "utf8.h"
#include "wire.h"

static void *fz_alloc(void *a, size_t n) {
  return gm__arena_alloc(a, n);
}
static void fz_free(void *a, void *p) {
  (void)a;
  (void)p;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len) {
  static gm__arena *arena;
  gm_market *m = fuzz_market(0);
  if (!arena) arena = gm__arena_new();
  if (len < 4 || !m->plugin->n_methods) return 0;
  size_t blen = (size_t)data[2] | (size_t)data[3] << 8;
  if (blen > len - 4) blen = len - 4;
  const uint8_t *body = data + 4;
  if ((data[1] & 0xf8) == 0xf8 && m->n_deadlines) {
    char id[64];
    size_t n = blen < sizeof id - 1 ? blen : sizeof id - 1;
    for (size_t i = 0; i < n; i++) id[i] = body[i] ? (char)body[i] : 'x';
    id[n] = '\0';
    const size_t k = data[0] % m->n_deadlines;
    gm_deadline d = {.size = sizeof d,
                     .kind = m->deadlines[k].kind,
                     .tag = id,
                     .id = id,
                     .due_ms = INT64_C(1796176700000), /* before now */
                     .attempt = 1u + (data[0] >> 6)};
    gm_call call = {.arena = arena,
                    .market = m,
                    .roles = 1,
                    .idem = "k1",
                    .tape = body + blen,
                    .tape_len = len - 4 - blen};
    /* Whatever it answers (a failure only fires it again later): what is
       checked is that it neither crashes nor meets undefined behaviour. */
    (void)m->deadlines[k].fn(&call, &d, m->deadlines[k].arg);
    gm__arena_reset(arena);
    return 0;
  }
  const gm_method *meth = &m->plugin->methods[data[0] % m->plugin->n_methods];
  char why[400];
  if (gm__wire_check(meth->request, body, blen, why, sizeof why) == 0) {
    ProtobufCAllocator alloc = {fz_alloc, fz_free, arena};
    ProtobufCMessage *req =
        protobuf_c_message_unpack(meth->request, &alloc, blen, body);
    if (req) {
      gm_call call = {.arena = arena,
                      .market = m,
                      .roles = data[1] & 1,
                      .admin = (data[1] & 2) != 0,
                      .idem = (data[1] & 4) ? "k1" : "",
                      .tape = body + blen,
                      .tape_len = len - 4 - blen};
      ProtobufCMessage *reply = NULL;
      gm_status st = meth->handle(&call, req, &reply);
      if (st != GM_OK) {
        /* A refusal says why, in text a client decodes (or the host
           repairs: the worker does for messages). */
        if (!call.message && st != call.status) abort();
      } else {
        if (!reply || reply->descriptor != meth->reply) abort();
        size_t n = protobuf_c_message_get_packed_size(reply), out;
        uint8_t *b = gm__arena_alloc(arena, n ? n : 1);
        protobuf_c_message_pack(reply, b);
        if (!gm__wire_repair(arena, meth->reply, b, n, &out)) abort();
      }
    }
  }
  gm__arena_reset(arena);
  return 0;
}
