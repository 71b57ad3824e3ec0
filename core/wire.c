#include "wire.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "utf8.h"

/* Reads a varint; 0, or -1 when it runs past end or over 10 bytes. */
static int gm__wire_varint(const uint8_t **p, const uint8_t *end, uint64_t *v) {
  uint64_t x = 0;
  for (unsigned shift = 0; shift < 70; shift += 7) {
    if (*p >= end) return -1;
    uint8_t b = *(*p)++;
    x |= (uint64_t)(b & 0x7f) << shift;
    if (!(b & 0x80)) {
      *v = x;
      return 0;
    }
  }
  return -1;
}

uint64_t gm__wire_top_varint(const uint8_t *data, size_t len, unsigned number) {
  const uint8_t *p = data, *end = data + len;
  uint64_t found = 0, key, v;
  while (p < end && gm__wire_varint(&p, end, &key) == 0) {
    switch (key & 7) {
      case 0: /* varint */
        if (gm__wire_varint(&p, end, &v) != 0) return found;
        if (key >> 3 == number) found = v;
        break;
      case 1: /* 64-bit */
        if ((size_t)(end - p) < 8) return found;
        p += 8;
        break;
      case 2: /* length-delimited */
        if (gm__wire_varint(&p, end, &v) != 0 || v > (uint64_t)(end - p))
          return found;
        p += v;
        break;
      case 5: /* 32-bit */
        if ((size_t)(end - p) < 4) return found;
        p += 4;
        break;
      default: /* groups: not in our messages */
        return found;
    }
  }
  return found;
}

/* The dotted path of the field being read, for messages. */
typedef struct gm__wire_path {
  const char *names[GM__WIRE_MAX_DEPTH + 1];
  int depth;
} gm__wire_path;

static void gm__wire_why(const gm__wire_path *path, const char *field,
                         char *why, size_t whylen, const char *fmt,
                         size_t arg) {
  char name[256] = "";
  size_t o = 0;
  for (int i = 0; i < path->depth && o < sizeof name; i++)
    o += (size_t)snprintf(name + o, sizeof name - o, "%s.", path->names[i]);
  if (o < sizeof name) snprintf(name + o, sizeof name - o, "%s", field);
  char what[200];
  snprintf(what, sizeof what, fmt, arg);
  snprintf(why, whylen, "field '%s' %s", name, what);
}

/*
 * One message: every field is skipped but strings (checked) and messages
 * (walked).  A `field` out of range, a truncated value or a group makes the
 * bytes no message.
 */
static int gm__wire_walk(const ProtobufCMessageDescriptor *d, const uint8_t *p,
                         const uint8_t *end, gm__wire_path *path, char *why,
                         size_t whylen) {
  while (p < end) {
    uint64_t tag, n;
    if (gm__wire_varint(&p, end, &tag) || (tag >> 3) == 0 ||
        (tag >> 3) > 536870911u)
      goto malformed;
    switch (tag & 7) {
      case 0:
        if (gm__wire_varint(&p, end, &n)) goto malformed;
        break;
      case 1:
        if ((size_t)(end - p) < 8) goto malformed;
        p += 8;
        break;
      case 5:
        if ((size_t)(end - p) < 4) goto malformed;
        p += 4;
        break;
      case 2: {
        if (gm__wire_varint(&p, end, &n) || n > (uint64_t)(end - p))
          goto malformed;
        const ProtobufCFieldDescriptor *f =
            protobuf_c_message_descriptor_get_field(d, (unsigned)(tag >> 3));
        if (f && f->type == PROTOBUF_C_TYPE_STRING) {
          const void *nul = memchr(p, 0, (size_t)n);
          if (nul) {
            gm__wire_why(path, f->name, why, whylen,
                         "holds a NUL byte at byte %zu: text fields cannot "
                         "hold NUL; remove it",
                         (size_t)((const uint8_t *)nul - p) + 1);
            return -1;
          }
          size_t ok = gm__utf8_valid_prefix((const char *)p, (size_t)n);
          if (ok != n) {
            gm__wire_why(path, f->name, why, whylen,
                         "is not valid UTF-8 (at byte %zu); send text as "
                         "UTF-8",
                         ok + 1);
            return -1;
          }
        } else if (f && f->type == PROTOBUF_C_TYPE_MESSAGE) {
          if (path->depth >= GM__WIRE_MAX_DEPTH) {
            gm__wire_why(path, f->name, why, whylen,
                         "nests messages deeper than %zu levels",
                         (size_t)GM__WIRE_MAX_DEPTH);
            return -1;
          }
          path->names[path->depth++] = f->name;
          int rc = gm__wire_walk(f->descriptor, p, p + n, path, why, whylen);
          path->depth--;
          if (rc) return rc;
        }
        p += n;
        break;
      }
      default: /* groups (3, 4) are not proto3; 6, 7 do not exist */
        goto malformed;
    }
  }
  return 0;
malformed:
  snprintf(why, whylen, "the bytes are not a valid %s message", d->name);
  return -1;
}

int gm__wire_check(const ProtobufCMessageDescriptor *d, const uint8_t *data,
                   size_t len, char *why, size_t whylen) {
  gm__wire_path path = {.depth = 0};
  return gm__wire_walk(d, data ? data : (const uint8_t *)"",
                       data ? data + len : (const uint8_t *)"", &path, why,
                       whylen);
}

/* ---- repair (the rare path: a message that failed the check) ---- */

typedef struct gm__wire_buf {
  uint8_t *data;
  size_t len, cap;
} gm__wire_buf;

static void gm__wire_put(gm__wire_buf *b, const void *src, size_t n) {
  if (b->len + n > b->cap) {
    b->cap = (b->len + n) * 2 + 64;
    b->data = realloc(b->data, b->cap);
    if (!b->data) abort();
  }
  memcpy(b->data + b->len, src, n);
  b->len += n;
}

static void gm__wire_put_varint(gm__wire_buf *b, uint64_t v) {
  uint8_t tmp[10];
  size_t n = 0;
  do {
    tmp[n++] = (uint8_t)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
    v >>= 7;
  } while (v);
  gm__wire_put(b, tmp, n);
}

/* Copies one message to out, repairing strings; -1 when malformed. */
static int gm__wire_copy(const ProtobufCMessageDescriptor *d, const uint8_t *p,
                         const uint8_t *end, int depth, gm__wire_buf *out) {
  while (p < end) {
    const uint8_t *start = p;
    uint64_t tag, n;
    if (gm__wire_varint(&p, end, &tag) || (tag >> 3) == 0 ||
        (tag >> 3) > 536870911u)
      return -1;
    if ((tag & 7) != 2) {
      if ((tag & 7) == 0) {
        if (gm__wire_varint(&p, end, &n)) return -1;
      } else if ((tag & 7) == 1 || (tag & 7) == 5) {
        size_t w = (tag & 7) == 1 ? 8 : 4;
        if ((size_t)(end - p) < w) return -1;
        p += w;
      } else {
        return -1;
      }
      gm__wire_put(out, start, (size_t)(p - start));
      continue;
    }
    if (gm__wire_varint(&p, end, &n) || n > (uint64_t)(end - p)) return -1;
    const ProtobufCFieldDescriptor *f =
        protobuf_c_message_descriptor_get_field(d, (unsigned)(tag >> 3));
    if (f && f->type == PROTOBUF_C_TYPE_STRING &&
        !gm__utf8_valid((const char *)p, (size_t)n)) {
      char *fixed = malloc((size_t)n * 3 + 1);
      if (!fixed) abort();
      size_t m = gm__utf8_repair((const char *)p, (size_t)n, fixed);
      gm__wire_put_varint(out, tag);
      gm__wire_put_varint(out, m);
      gm__wire_put(out, fixed, m);
      free(fixed);
    } else if (f && f->type == PROTOBUF_C_TYPE_MESSAGE) {
      if (depth >= GM__WIRE_MAX_DEPTH) return -1;
      gm__wire_buf sub = {0};
      int rc = gm__wire_copy(f->descriptor, p, p + n, depth + 1, &sub);
      if (rc == 0) {
        gm__wire_put_varint(out, tag);
        gm__wire_put_varint(out, sub.len);
        if (sub.len) gm__wire_put(out, sub.data, sub.len);
      }
      free(sub.data);
      if (rc) return rc;
    } else {
      gm__wire_put(out, start, (size_t)(p + n - start));
    }
    p += n;
  }
  return 0;
}

const uint8_t *gm__wire_repair(gm__arena *a,
                               const ProtobufCMessageDescriptor *d,
                               const uint8_t *data, size_t len,
                               size_t *out_len) {
  char why[8];
  *out_len = len;
  if (len == 0 || gm__wire_check(d, data, len, why, sizeof why) == 0)
    return data;
  gm__wire_buf out = {0};
  if (gm__wire_copy(d, data, data + len, 0, &out)) {
    free(out.data);
    return NULL;
  }
  uint8_t *copy = gm__arena_alloc(a, out.len ? out.len : 1);
  if (out.len) memcpy(copy, out.data, out.len);
  free(out.data);
  *out_len = out.len;
  return copy;
}
