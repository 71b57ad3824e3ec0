/*
 * The request path's decoding, fed any bytes: the envelope's text checks,
 * protobuf-c's unpack, each core method's body, and the repair of whatever
 * a reply might carry.  None of it may crash, leak or read out of bounds,
 * and everything it lets through must be strict UTF-8 without NUL.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "core_methods.h"
#include "greenmarket.pb-c.h"
#include "utf8.h"
#include "wire.h"

static void *fz_alloc(void *a, size_t n) {
  return gm__arena_alloc(a, n);
}
static void fz_free(void *a, void *p) {
  (void)a;
  (void)p;
}

/* Every string of an unpacked message is checked: what passed the wire
   check must hold valid text, however protobuf-c laid it out. */
static void strings_valid(const ProtobufCMessage *m) {
  const ProtobufCMessageDescriptor *d = m->descriptor;
  for (unsigned i = 0; i < d->n_fields; i++) {
    const ProtobufCFieldDescriptor *f = &d->fields[i];
    const char *base = (const char *)m + f->offset;
    if (f->label == PROTOBUF_C_LABEL_REPEATED) {
      size_t n = *(const size_t *)((const char *)m + f->quantifier_offset);
      void *const *items = *(void *const *)base;
      for (size_t k = 0; k < n; k++) {
        if (f->type == PROTOBUF_C_TYPE_STRING) {
          const char *s = items[k];
          if (!gm__utf8_valid(s, strlen(s))) abort();
        } else if (f->type == PROTOBUF_C_TYPE_MESSAGE) {
          strings_valid(items[k]);
        }
      }
    } else if (f->type == PROTOBUF_C_TYPE_STRING) {
      const char *s = *(const char *const *)base;
      if (s && !gm__utf8_valid(s, strlen(s))) abort();
    } else if (f->type == PROTOBUF_C_TYPE_MESSAGE) {
      const ProtobufCMessage *sub = *(const ProtobufCMessage *const *)base;
      if (sub) strings_valid(sub);
    }
  }
}

/* Checks then unpacks data as type d, as dispatch does. */
static ProtobufCMessage *decode(gm__arena *a,
                                const ProtobufCMessageDescriptor *d,
                                const uint8_t *data, size_t len) {
  char why[400];
  if (gm__wire_check(d, data, len, why, sizeof why) != 0) {
    if (!gm__utf8_valid(why, strlen(why))) abort(); /* goes in a reply */
    return NULL;
  }
  ProtobufCAllocator alloc = {fz_alloc, fz_free, a};
  ProtobufCMessage *m = protobuf_c_message_unpack(d, &alloc, len, data);
  if (m) strings_valid(m);
  return m;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len) {
  static gm__arena *a;
  if (!a) a = gm__arena_new();
  Gm__Request *req =
      (Gm__Request *)decode(a, &gm__request__descriptor, data, len);
  if (req) {
    for (size_t i = 0; i < GM__CORE_METHODS; i++)
      if (strcmp(gm__core_methods[i].name, req->method) == 0)
        decode(a, gm__core_methods[i].request, req->body.data, req->body.len);
  }
  /* The same bytes as a reply body of each core type: repaired so a strict
     client decodes it, or found not to be a message at all. */
  for (size_t i = 0; i < GM__CORE_METHODS; i++) {
    size_t out_len;
    const uint8_t *fixed =
        gm__wire_repair(a, gm__core_methods[i].reply, data, len, &out_len);
    char why[64];
    if (fixed &&
        gm__wire_check(gm__core_methods[i].reply, fixed, out_len, why,
                       sizeof why) != 0 &&
        !strstr(why, "NUL"))
      abort(); /* repaired text must pass; only a NUL may remain */
  }
  gm__arena_reset(a);
  return 0;
}
