/*
 * Descriptor-driven protobuf codec: key=value / JSON <-> ProtobufCMessage.
 *
 * Input is first turned into a JSON tree (key=value words included), then
 * into a message built in a scratch arena from the descriptor's offsets.
 * That message is packed and unpacked once, so the caller receives a normal
 * protobuf-c message it frees with protobuf_c_message_free_unpacked() and
 * nobody has to track which pointer came from where.
 */
#include "codec.h"

#include <ctype.h>
#include <errno.h>
#include <float.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <greenmarket/table.h>

/* ---- scratch arena: everything the build allocates, freed at once ---- */

typedef struct gm__block {
  struct gm__block *next;
  max_align_t data[];
} gm__block;

typedef struct gm__arena {
  gm__block *head; /* most recent block first */
} gm__arena;

static void *gm__alloc(gm__arena *a, size_t n) {
  gm__block *b = calloc(1, sizeof *b + (n ? n : 1));
  if (!b) return NULL;
  b->next = a->head;
  a->head = b;
  return b->data;
}

static void gm__arena_free(gm__arena *a) {
  while (a->head) {
    gm__block *b = a->head;
    a->head = b->next;
    free(b);
  }
}

__attribute__((format(printf, 2, 3))) static int gm__err(char **err,
                                                         const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  free(*err);
  if (vasprintf(err, fmt, ap) < 0) *err = NULL;
  va_end(ap);
  return -1;
}

/* ---- base64 ---- */

static const char gm__b64[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

char *gm_codec_base64_encode(const uint8_t *data, size_t len) {
  char *out = malloc(4 * ((len + 2) / 3) + 1), *o = out;
  if (!out) return NULL;
  for (size_t i = 0; i < len; i += 3) {
    uint32_t v = (uint32_t)data[i] << 16;
    if (i + 1 < len) v |= (uint32_t)data[i + 1] << 8;
    if (i + 2 < len) v |= data[i + 2];
    *o++ = gm__b64[v >> 18];
    *o++ = gm__b64[(v >> 12) & 63];
    *o++ = i + 1 < len ? gm__b64[(v >> 6) & 63] : '=';
    *o++ = i + 2 < len ? gm__b64[v & 63] : '=';
  }
  *o = '\0';
  return out;
}

static int gm__b64_value(char c) {
  const char *p = c ? strchr(gm__b64, c) : NULL;
  return p ? (int)(p - gm__b64) : -1;
}

uint8_t *gm_codec_base64_decode(const char *text, size_t *len) {
  size_t n = strlen(text);
  if (n % 4) return NULL;
  uint8_t *out = malloc(n / 4 * 3 + 1);
  size_t o = 0;
  if (!out) return NULL;
  for (size_t i = 0; i < n; i += 4) {
    int v[4];
    for (int k = 0; k < 4; k++) {
      /* Padding only in the last two places of the last quantum. */
      if (text[i + k] == '=' && i + 4 == n && k >= 2 &&
          (k == 3 || text[i + 3] == '='))
        v[k] = -2;
      else
        v[k] = gm__b64_value(text[i + k]);
      if (v[k] == -1) goto bad;
    }
    uint32_t bits = ((uint32_t)v[0] << 18) | ((uint32_t)v[1] << 12) |
                    ((uint32_t)(v[2] < 0 ? 0 : v[2]) << 6) |
                    (uint32_t)(v[3] < 0 ? 0 : v[3]);
    out[o++] = (uint8_t)(bits >> 16);
    if (v[2] >= 0) out[o++] = (uint8_t)(bits >> 8);
    if (v[3] >= 0) out[o++] = (uint8_t)bits;
  }
  *len = o;
  return out;
bad:
  free(out);
  return NULL;
}

/* ---- names ---- */

static const char *gm__type_name(const ProtobufCFieldDescriptor *f) {
  switch (f->type) {
    case PROTOBUF_C_TYPE_INT32:
      return "int32";
    case PROTOBUF_C_TYPE_SINT32:
      return "sint32";
    case PROTOBUF_C_TYPE_SFIXED32:
      return "sfixed32";
    case PROTOBUF_C_TYPE_INT64:
      return "int64";
    case PROTOBUF_C_TYPE_SINT64:
      return "sint64";
    case PROTOBUF_C_TYPE_SFIXED64:
      return "sfixed64";
    case PROTOBUF_C_TYPE_UINT32:
      return "uint32";
    case PROTOBUF_C_TYPE_FIXED32:
      return "fixed32";
    case PROTOBUF_C_TYPE_UINT64:
      return "uint64";
    case PROTOBUF_C_TYPE_FIXED64:
      return "fixed64";
    case PROTOBUF_C_TYPE_FLOAT:
      return "float";
    case PROTOBUF_C_TYPE_DOUBLE:
      return "double";
    case PROTOBUF_C_TYPE_BOOL:
      return "bool";
    case PROTOBUF_C_TYPE_ENUM:
      return ((const ProtobufCEnumDescriptor *)f->descriptor)->name;
    case PROTOBUF_C_TYPE_STRING:
      return "string";
    case PROTOBUF_C_TYPE_BYTES:
      return "bytes (base64)";
    case PROTOBUF_C_TYPE_MESSAGE:
      return ((const ProtobufCMessageDescriptor *)f->descriptor)->name;
  }
  return "?";
}

/* "a, b, c": the field names of d, for "unknown field" errors. */
static char *gm__field_list(const ProtobufCMessageDescriptor *d) {
  size_t cap = 1;
  for (unsigned i = 0; i < d->n_fields; i++)
    cap += strlen(d->fields[i].name) + 2;
  char *s = malloc(cap);
  if (!s) return NULL;
  s[0] = '\0';
  for (unsigned i = 0; i < d->n_fields; i++) {
    if (i) strcat(s, ", ");
    strcat(s, d->fields[i].name);
  }
  return s;
}

static int gm__unknown_field(char **err, const ProtobufCMessageDescriptor *d,
                             const char *path, const char *name) {
  char *list = gm__field_list(d);
  gm__err(err, "unknown field '%s%s%s' in %s; valid fields: %s", path,
          *path ? "." : "", name, d->name,
          list && *list ? list : "(none: this message has no fields)");
  free(list);
  return -1;
}

/* "BUY|SELL": the value names of an enum. */
static char *gm__enum_list(const ProtobufCEnumDescriptor *e) {
  size_t cap = 1;
  for (unsigned i = 0; i < e->n_values; i++)
    cap += strlen(e->values[i].name) + 1;
  char *s = malloc(cap);
  if (!s) return NULL;
  s[0] = '\0';
  for (unsigned i = 0; i < e->n_values; i++) {
    if (i) strcat(s, "|");
    strcat(s, e->values[i].name);
  }
  return s;
}

/* ---- JSON -> message ---- */

static size_t gm__slot_size(const ProtobufCFieldDescriptor *f) {
  switch (f->type) {
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
      return 8;
    case PROTOBUF_C_TYPE_DOUBLE:
      return sizeof(double);
    case PROTOBUF_C_TYPE_FLOAT:
      return sizeof(float);
    case PROTOBUF_C_TYPE_BOOL:
      return sizeof(protobuf_c_boolean);
    case PROTOBUF_C_TYPE_ENUM:
      return sizeof(int);
    case PROTOBUF_C_TYPE_STRING:
      return sizeof(char *);
    case PROTOBUF_C_TYPE_BYTES:
      return sizeof(ProtobufCBinaryData);
    case PROTOBUF_C_TYPE_MESSAGE:
      return sizeof(ProtobufCMessage *);
    default:
      return 4;
  }
}

static int gm__is_signed(ProtobufCType t) {
  return t == PROTOBUF_C_TYPE_INT32 || t == PROTOBUF_C_TYPE_SINT32 ||
         t == PROTOBUF_C_TYPE_SFIXED32 || t == PROTOBUF_C_TYPE_INT64 ||
         t == PROTOBUF_C_TYPE_SINT64 || t == PROTOBUF_C_TYPE_SFIXED64;
}

/* The text of a number given as a JSON string; NULL for other JSON. */
static const char *gm__num_text(const json_t *v, char *buf, size_t n) {
  if (json_is_string(v)) return json_string_value(v);
  if (json_is_integer(v)) {
    snprintf(buf, n, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
    return buf;
  }
  return NULL;
}

/*
 * Reads an integer field value within [min, max] (signed fields) or
 * [0, umax] (unsigned ones) into *out as raw 64 bits.
 */
static int gm__integer(const ProtobufCFieldDescriptor *f, const json_t *v,
                       const char *path, uint64_t *out, char **err) {
  char buf[32];
  const char *s = gm__num_text(v, buf, sizeof buf);
  int sig = gm__is_signed(f->type);
  int wide = gm__slot_size(f) == 8;
  if (!s || !*s || isspace((unsigned char)*s))
    return gm__err(err, "field '%s' (%s) needs an integer, not %s", path,
                   gm__type_name(f), s ? "an empty value" : "this JSON value");
  char *end;
  errno = 0;
  if (sig) {
    long long x = strtoll(s, &end, 10);
    if (*end || end == s)
      return gm__err(err, "field '%s' (%s): \"%s\" is not an integer", path,
                     gm__type_name(f), s);
    if (errno == ERANGE || (!wide && (x < INT32_MIN || x > INT32_MAX)))
      return gm__err(err, "field '%s' (%s): %s is out of range [%lld, %lld]",
                     path, gm__type_name(f), s,
                     wide ? (long long)INT64_MIN : (long long)INT32_MIN,
                     wide ? (long long)INT64_MAX : (long long)INT32_MAX);
    *out = (uint64_t)x;
  } else {
    if (*s == '-' || *s == '+')
      return gm__err(err, "field '%s' (%s): \"%s\" must be a plain number %s",
                     path, gm__type_name(f), s,
                     *s == '-' ? "of zero or more" : "without a sign");
    unsigned long long x = strtoull(s, &end, 10);
    if (*end || end == s)
      return gm__err(err, "field '%s' (%s): \"%s\" is not an integer", path,
                     gm__type_name(f), s);
    if (errno == ERANGE || (!wide && x > UINT32_MAX))
      return gm__err(err, "field '%s' (%s): %s is out of range [0, %llu]", path,
                     gm__type_name(f), s,
                     wide ? (unsigned long long)UINT64_MAX
                          : (unsigned long long)UINT32_MAX);
    *out = x;
  }
  return 0;
}

static int gm__real(const ProtobufCFieldDescriptor *f, const json_t *v,
                    const char *path, double *out, char **err) {
  if (json_is_number(v)) {
    *out = json_number_value(v);
  } else if (json_is_string(v) && *json_string_value(v)) {
    const char *s = json_string_value(v);
    char *end;
    errno = 0;
    *out = strtod(s, &end);
    if (*end || isspace((unsigned char)*s))
      return gm__err(err, "field '%s' (%s): \"%s\" is not a number", path,
                     gm__type_name(f), s);
  } else {
    return gm__err(err, "field '%s' (%s) needs a number", path,
                   gm__type_name(f));
  }
  if (!isfinite(*out) ||
      (f->type == PROTOBUF_C_TYPE_FLOAT && fabs(*out) > FLT_MAX))
    return gm__err(err, "field '%s' (%s): the value is out of range", path,
                   gm__type_name(f));
  return 0;
}

static int gm__bool(const ProtobufCFieldDescriptor *f, const json_t *v,
                    const char *path, protobuf_c_boolean *out, char **err) {
  static const char *const yes[] = {"true", "1", "yes", "on"};
  static const char *const no[] = {"false", "0", "no", "off"};
  if (json_is_boolean(v)) {
    *out = json_is_true(v);
    return 0;
  }
  if (json_is_integer(v) &&
      (json_integer_value(v) == 0 || json_integer_value(v) == 1)) {
    *out = json_integer_value(v) == 1;
    return 0;
  }
  if (json_is_string(v)) {
    for (size_t i = 0; i < 4; i++) {
      if (!strcasecmp(json_string_value(v), yes[i])) return *out = 1, 0;
      if (!strcasecmp(json_string_value(v), no[i])) return *out = 0, 0;
    }
  }
  (void)f;
  return gm__err(err, "field '%s' (bool) needs true or false", path);
}

/*
 * An enum value by exact name, by name ignoring case, by the name without
 * its common prefix ("buy" for SIDE_BUY), or by number.
 */
static int gm__enum(const ProtobufCFieldDescriptor *f, const json_t *v,
                    const char *path, int *out, char **err) {
  const ProtobufCEnumDescriptor *e = f->descriptor;
  char buf[32];
  const char *s = gm__num_text(v, buf, sizeof buf);
  if (s && *s) {
    const ProtobufCEnumValue *ev =
        protobuf_c_enum_descriptor_get_value_by_name(e, s);
    const ProtobufCEnumValue *suffix = NULL;
    int nsuffix = 0;
    for (unsigned i = 0; !ev && i < e->n_values; i++) {
      const char *name = e->values[i].name;
      size_t ln = strlen(name), ls = strlen(s);
      if (!strcasecmp(name, s))
        ev = &e->values[i];
      else if (ln > ls && name[ln - ls - 1] == '_' &&
               !strcasecmp(name + ln - ls, s))
        suffix = &e->values[i], nsuffix++;
    }
    if (!ev && nsuffix == 1) ev = suffix;
    if (!ev) {
      char *end;
      errno = 0;
      long n = strtol(s, &end, 10);
      if (!*end && !errno && n >= INT32_MIN && n <= INT32_MAX)
        ev = protobuf_c_enum_descriptor_get_value(e, (int)n);
    }
    if (ev) {
      *out = ev->value;
      return 0;
    }
  }
  char *list = gm__enum_list(e);
  gm__err(err, "field '%s' (%s): \"%s\" is not one of %s", path, e->name,
          s ? s : "?", list ? list : "");
  free(list);
  return -1;
}

static int gm__fill(gm__arena *a, ProtobufCMessage *m, const json_t *obj,
                    const char *path, char **err);

/* Converts one value of field f into `slot`. */
static int gm__convert(gm__arena *a, const ProtobufCFieldDescriptor *f,
                       const json_t *v, const char *path, void *slot,
                       char **err) {
  uint64_t u;
  double d;
  switch (f->type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
      if (gm__integer(f, v, path, &u, err)) return -1;
      *(int32_t *)slot = (int32_t)(int64_t)u;
      return 0;
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
      if (gm__integer(f, v, path, &u, err)) return -1;
      *(uint32_t *)slot = (uint32_t)u;
      return 0;
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
      if (gm__integer(f, v, path, &u, err)) return -1;
      memcpy(slot, &u, 8);
      return 0;
    case PROTOBUF_C_TYPE_FLOAT:
      if (gm__real(f, v, path, &d, err)) return -1;
      *(float *)slot = (float)d;
      return 0;
    case PROTOBUF_C_TYPE_DOUBLE:
      if (gm__real(f, v, path, &d, err)) return -1;
      *(double *)slot = d;
      return 0;
    case PROTOBUF_C_TYPE_BOOL:
      return gm__bool(f, v, path, slot, err);
    case PROTOBUF_C_TYPE_ENUM:
      return gm__enum(f, v, path, slot, err);
    case PROTOBUF_C_TYPE_STRING: {
      if (!json_is_string(v))
        return gm__err(err, "field '%s' (string) needs a string", path);
      size_t n = json_string_length(v);
      char *s = gm__alloc(a, n + 1);
      if (!s) return gm__err(err, "out of memory");
      memcpy(s, json_string_value(v), n);
      *(char **)slot = s;
      return 0;
    }
    case PROTOBUF_C_TYPE_BYTES: {
      ProtobufCBinaryData *b = slot;
      size_t n = 0;
      uint8_t *raw = json_is_string(v)
                         ? gm_codec_base64_decode(json_string_value(v), &n)
                         : NULL;
      if (!raw)
        return gm__err(err,
                       "field '%s' (bytes) needs base64 text, e.g. aGk=", path);
      b->data = gm__alloc(a, n);
      if (b->data) memcpy(b->data, raw, n);
      b->len = n;
      free(raw);
      return b->data ? 0 : gm__err(err, "out of memory");
    }
    case PROTOBUF_C_TYPE_MESSAGE: {
      const ProtobufCMessageDescriptor *md = f->descriptor;
      ProtobufCMessage *sub = gm__alloc(a, md->sizeof_message);
      if (!sub) return gm__err(err, "out of memory");
      md->message_init(sub);
      *(ProtobufCMessage **)slot = sub;
      return gm__fill(a, sub, v, path, err);
    }
  }
  return gm__err(err, "field '%s' has a type this codec does not know", path);
}

static int gm__set_field(gm__arena *a, ProtobufCMessage *m,
                         const ProtobufCFieldDescriptor *f, const json_t *v,
                         const char *path, char **err) {
  char *base = (char *)m;
  if (f->label == PROTOBUF_C_LABEL_REPEATED) {
    size_t n = json_is_array(v) ? json_array_size(v) : 1, sz = gm__slot_size(f);
    char *arr = gm__alloc(a, n * sz);
    if (!arr) return gm__err(err, "out of memory");
    for (size_t i = 0; i < n; i++) {
      char ipath[512];
      snprintf(ipath, sizeof ipath, "%.480s[%zu]", path, i);
      const json_t *item = json_is_array(v) ? json_array_get(v, i) : v;
      if (gm__convert(a, f, item, ipath, arr + i * sz, err)) return -1;
    }
    *(size_t *)(base + f->quantifier_offset) = n;
    *(void **)(base + f->offset) = arr;
    return 0;
  }
  if (json_is_array(v))
    return gm__err(err, "field '%s' (%s) takes one value, not a list", path,
                   gm__type_name(f));
  if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
    uint32_t *which = (uint32_t *)(base + f->quantifier_offset);
    if (*which && *which != f->id) {
      const ProtobufCFieldDescriptor *other =
          protobuf_c_message_descriptor_get_field(m->descriptor, *which);
      return gm__err(err,
                     "fields '%s' and '%s' are alternatives (oneof): give "
                     "only one",
                     other ? other->name : "?", f->name);
    }
    *which = f->id;
  } else if (f->label == PROTOBUF_C_LABEL_OPTIONAL && f->quantifier_offset &&
             f->type != PROTOBUF_C_TYPE_STRING &&
             f->type != PROTOBUF_C_TYPE_MESSAGE) {
    *(protobuf_c_boolean *)(base + f->quantifier_offset) = 1;
  }
  return gm__convert(a, f, v, path, base + f->offset, err);
}

static int gm__fill(gm__arena *a, ProtobufCMessage *m, const json_t *obj,
                    const char *path, char **err) {
  const ProtobufCMessageDescriptor *d = m->descriptor;
  if (!json_is_object(obj))
    return gm__err(err, "%s%s%s (%s) needs a JSON object of fields",
                   *path ? "field '" : "the request", path, *path ? "'" : "",
                   d->name);
  const char *key;
  json_t *v;
  json_object_foreach((json_t *)obj, key, v) {
    const ProtobufCFieldDescriptor *f =
        protobuf_c_message_descriptor_get_field_by_name(d, key);
    if (!f) return gm__unknown_field(err, d, path, key);
    char fpath[512];
    snprintf(fpath, sizeof fpath, "%s%s%s", path, *path ? "." : "", key);
    if (json_is_null(v)) continue; /* null: leave the field unset */
    if (gm__set_field(a, m, f, v, fpath, err)) return -1;
  }
  /* protobuf-c packs an unset required string as "": check it here. */
  for (unsigned i = 0; i < d->n_fields; i++) {
    const ProtobufCFieldDescriptor *f = &d->fields[i];
    const json_t *v = json_object_get(obj, f->name);
    if (f->label == PROTOBUF_C_LABEL_REQUIRED && (!v || json_is_null(v)))
      return gm__err(err, "%s needs field '%s%s%s' (%s): it is required",
                     d->name, path, *path ? "." : "", f->name,
                     gm__type_name(f));
  }
  return 0;
}

ProtobufCMessage *gm_codec_from_value(const ProtobufCMessageDescriptor *d,
                                      const json_t *obj, char **err) {
  gm__arena a = {NULL};
  ProtobufCMessage *out = NULL, *m = gm__alloc(&a, d->sizeof_message);
  uint8_t *buf = NULL;
  *err = NULL;
  if (!m) {
    gm__err(err, "out of memory");
    goto done;
  }
  d->message_init(m);
  if (gm__fill(&a, m, obj, "", err)) goto done;
  size_t len = protobuf_c_message_get_packed_size(m);
  buf = malloc(len ? len : 1);
  if (!buf) {
    gm__err(err, "out of memory");
    goto done;
  }
  protobuf_c_message_pack(m, buf);
  out = protobuf_c_message_unpack(d, NULL, len, buf);
  if (!out) gm__err(err, "%s does not encode: a protobuf-c limit?", d->name);
done:
  free(buf);
  gm__arena_free(&a);
  return out;
}

ProtobufCMessage *gm_codec_from_json(const ProtobufCMessageDescriptor *d,
                                     const char *text, char **err) {
  json_error_t je;
  json_t *j = json_loads(text, JSON_REJECT_DUPLICATES, &je);
  *err = NULL;
  if (!j) {
    gm__err(err, "the JSON is not valid at line %d column %d: %s", je.line,
            je.column, je.text);
    return NULL;
  }
  ProtobufCMessage *m = gm_codec_from_value(d, j, err);
  json_decref(j);
  return m;
}

/* ---- key=value words -> JSON tree ---- */

/* Non-zero when obj already has a value at dotted `path` (not a list). */
static int gm__json_has(const json_t *obj, const char *path) {
  char seg[256];
  while (obj && json_is_object(obj)) {
    size_t n = strcspn(path, ".");
    if (n >= sizeof seg) return 0;
    memcpy(seg, path, n);
    seg[n] = '\0';
    const json_t *v = json_object_get(obj, seg);
    if (!v) return 0;
    if (!path[n]) return !json_is_array(v);
    path += n + 1;
    obj = json_is_array(v) ? json_array_get(v, json_array_size(v) - 1) : v;
  }
  return 0;
}

static int gm__args_put(json_t *root, const ProtobufCMessageDescriptor *d,
                        const char *key, const char *value, char **err) {
  json_t *obj = root;
  char seg[256], done[512] = "";
  const char *p = key;
  for (;;) {
    size_t n = strcspn(p, ".");
    if (n == 0 || n >= sizeof seg)
      return gm__err(err, "\"%s\" is not a field name: write field=value", key);
    memcpy(seg, p, n);
    seg[n] = '\0';
    const ProtobufCFieldDescriptor *f =
        protobuf_c_message_descriptor_get_field_by_name(d, seg);
    if (!f) return gm__unknown_field(err, d, done, seg);
    size_t dl = strlen(done);
    snprintf(done + dl, sizeof done - dl, "%s%s", dl ? "." : "", seg);
    json_t *cur = json_object_get(obj, seg);
    if (p[n] == '.') {
      const char *rest = p + n + 1;
      if (f->type != PROTOBUF_C_TYPE_MESSAGE)
        return gm__err(err,
                       "field '%s' is a %s, not a message: '%s' means "
                       "nothing",
                       done, gm__type_name(f), key);
      json_t *next;
      if (f->label == PROTOBUF_C_LABEL_REPEATED) {
        if (!cur) json_object_set_new(obj, seg, cur = json_array());
        if (!json_is_array(cur))
          return gm__err(err, "field '%s' is given twice", done);
        next = json_array_get(cur, json_array_size(cur) - 1);
        /* Naming a field the last element has already starts a new one. */
        if (!next || gm__json_has(next, rest))
          json_array_append_new(cur, next = json_object());
      } else {
        if (!cur) json_object_set_new(obj, seg, cur = json_object());
        if (!json_is_object(cur))
          return gm__err(err, "field '%s' is given twice", done);
        next = cur;
      }
      obj = next;
      d = f->descriptor;
      p = rest;
      continue;
    }
    json_t *v;
    if (*value == '{' || *value == '[') {
      json_error_t je;
      v = json_loads(value, 0, &je);
      if (!v)
        return gm__err(err, "field '%s': the value is not valid JSON: %s", done,
                       je.text);
    } else {
      v = json_string(value);
      if (!v)
        return gm__err(err, "field '%s': the value is not valid UTF-8", done);
    }
    if (f->label == PROTOBUF_C_LABEL_REPEATED) {
      if (!cur) json_object_set_new(obj, seg, cur = json_array());
      if (json_is_array(v))
        json_array_extend(cur, v);
      else
        json_array_append(cur, v);
      json_decref(v);
    } else if (cur) {
      json_decref(v);
      return gm__err(err, "field '%s' is given twice but takes one value",
                     done);
    } else {
      json_object_set_new(obj, seg, v);
    }
    return 0;
  }
}

ProtobufCMessage *gm_codec_from_args(const ProtobufCMessageDescriptor *d,
                                     int argc, char *const *argv, char **err) {
  json_t *root = json_object();
  ProtobufCMessage *m = NULL;
  *err = NULL;
  for (int i = 0; i < argc; i++) {
    const char *eq = strchr(argv[i], '=');
    if (!eq) {
      char *list = gm__field_list(d);
      gm__err(err, "\"%s\" is not field=value; fields of %s: %s", argv[i],
              d->name, list && *list ? list : "(none)");
      free(list);
      goto done;
    }
    char key[512];
    size_t kl = (size_t)(eq - argv[i]);
    if (kl >= sizeof key) {
      gm__err(err, "field name too long in \"%s\"", argv[i]);
      goto done;
    }
    memcpy(key, argv[i], kl);
    key[kl] = '\0';
    if (gm__args_put(root, d, key, eq + 1, err)) goto done;
  }
  m = gm_codec_from_value(d, root, err);
done:
  json_decref(root);
  return m;
}

/* ---- message -> JSON ---- */

static json_t *gm__value_json(const ProtobufCFieldDescriptor *f,
                              const void *slot) {
  switch (f->type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
      return json_integer(*(const int32_t *)slot);
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
      return json_integer(*(const uint32_t *)slot);
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
      return json_integer(*(const int64_t *)slot);
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64: {
      uint64_t u = *(const uint64_t *)slot;
      if (u <= INT64_MAX) return json_integer((json_int_t)u);
      char buf[24];
      snprintf(buf, sizeof buf, "%" PRIu64, u);
      return json_string(buf); /* JSON integers stop at INT64_MAX here */
    }
    case PROTOBUF_C_TYPE_FLOAT:
      return json_real(*(const float *)slot);
    case PROTOBUF_C_TYPE_DOUBLE:
      return json_real(*(const double *)slot);
    case PROTOBUF_C_TYPE_BOOL:
      return json_boolean(*(const protobuf_c_boolean *)slot);
    case PROTOBUF_C_TYPE_ENUM: {
      int n = *(const int *)slot;
      const ProtobufCEnumValue *ev =
          protobuf_c_enum_descriptor_get_value(f->descriptor, n);
      return ev ? json_string(ev->name) : json_integer(n);
    }
    case PROTOBUF_C_TYPE_STRING: {
      const char *s = *(char *const *)slot;
      json_t *j = json_string(s ? s : "");
      /* Not UTF-8 (the wire does not check): show it escaped, not lost. */
      return j ? j : json_stringn_nocheck(s, strlen(s));
    }
    case PROTOBUF_C_TYPE_BYTES: {
      const ProtobufCBinaryData *b = slot;
      char *t = gm_codec_base64_encode(b->data, b->len);
      json_t *j = json_string(t ? t : "");
      free(t);
      return j;
    }
    case PROTOBUF_C_TYPE_MESSAGE: {
      const ProtobufCMessage *sub = *(ProtobufCMessage *const *)slot;
      return sub ? gm_codec_to_json(sub) : json_null();
    }
  }
  return json_null();
}

json_t *gm_codec_to_json(const ProtobufCMessage *m) {
  const ProtobufCMessageDescriptor *d = m->descriptor;
  const char *base = (const char *)m;
  json_t *obj = json_object();
  for (unsigned i = 0; i < d->n_fields; i++) {
    const ProtobufCFieldDescriptor *f = &d->fields[i];
    const void *slot = base + f->offset;
    if (f->label == PROTOBUF_C_LABEL_REPEATED) {
      size_t n = *(const size_t *)(base + f->quantifier_offset);
      const char *arr = *(char *const *)slot;
      json_t *a = json_array();
      for (size_t k = 0; k < n; k++)
        json_array_append_new(a, gm__value_json(f, arr + k * gm__slot_size(f)));
      json_object_set_new(obj, f->name, a);
      continue;
    }
    if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
      if (*(const uint32_t *)(base + f->quantifier_offset) != f->id) continue;
    } else if (f->label == PROTOBUF_C_LABEL_OPTIONAL && f->quantifier_offset &&
               f->type != PROTOBUF_C_TYPE_STRING &&
               f->type != PROTOBUF_C_TYPE_MESSAGE) {
      if (!*(const protobuf_c_boolean *)(base + f->quantifier_offset)) continue;
    }
    if ((f->type == PROTOBUF_C_TYPE_MESSAGE ||
         f->type == PROTOBUF_C_TYPE_STRING) &&
        !*(void *const *)slot)
      continue;
    json_object_set_new(obj, f->name, gm__value_json(f, slot));
  }
  return obj;
}

/* ---- tables ---- */

/* The text of a scalar JSON value (malloc()ed). */
static char *gm__text(const json_t *v) {
  if (json_is_string(v)) return strdup(json_string_value(v));
  if (json_is_null(v)) return strdup("");
  return json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
}

static int gm__is_row_list(const json_t *v) {
  return json_is_array(v) && json_array_size(v) > 0 &&
         json_is_object(json_array_get(v, 0));
}

/*
 * Flattens obj into `flat` (dotted key -> text); lists of messages go to
 * `lists` (dotted key -> array) when given, else are shown as compact JSON.
 */
static void gm__flatten(const json_t *obj, const char *prefix, json_t *flat,
                        json_t *lists) {
  const char *key;
  json_t *v;
  json_object_foreach((json_t *)obj, key, v) {
    char name[512];
    snprintf(name, sizeof name, "%s%s%s", prefix, *prefix ? "." : "", key);
    if (json_is_object(v)) {
      gm__flatten(v, name, flat, lists);
    } else if (gm__is_row_list(v) && lists) {
      json_object_set(lists, name, v);
    } else if (json_is_array(v) && !gm__is_row_list(v)) {
      size_t cap = 1, i;
      json_t *item;
      json_array_foreach(v, i, item) {
        char *t = gm__text(item);
        cap += (t ? strlen(t) : 0) + 2;
        free(t);
      }
      char *joined = calloc(1, cap);
      json_array_foreach(v, i, item) {
        char *t = gm__text(item);
        if (joined && t) {
          if (i) strcat(joined, ", ");
          strcat(joined, t);
        }
        free(t);
      }
      json_object_set_new(flat, name, json_string(joined ? joined : ""));
      free(joined);
    } else {
      char *t = gm__text(v);
      json_object_set_new(flat, name, json_string(t ? t : ""));
      free(t);
    }
  }
}

/*
 * Prints rows under a header line.  Cells are shown on one line and padded
 * by display width (greenmarket/table.h); a cell of any column but the
 * last is cut at GM_TABLE_CELL_MAX columns, and a note says so.
 */
static void gm__print_rows(FILE *out, const char *name, const json_t *rows) {
  size_t n = json_array_size(rows), i;
  json_t *flats = json_array(), *cols = json_array(), *row;
  json_array_foreach(rows, i, row) {
    json_t *flat = json_object();
    gm__flatten(row, "", flat, NULL);
    const char *k;
    json_t *v;
    json_object_foreach(flat, k, v) {
      size_t c, found = 0;
      json_t *col;
      json_array_foreach(cols, c, col) found |=
          !strcmp(json_string_value(col), k);
      if (!found) json_array_append_new(cols, json_string(k));
    }
    json_array_append_new(flats, flat);
  }
  size_t nc = json_array_size(cols);
  const char **head = calloc(nc ? nc : 1, sizeof *head),
             **texts = calloc(nc ? nc : 1, sizeof *texts);
  fprintf(out, "%s (%zu):\n", name, n);
  if (!head || !texts) {
    fprintf(out, "(out of memory: the rows are not shown)\n");
  } else {
    for (size_t c = 0; c < nc; c++)
      head[c] = json_string_value(json_array_get(cols, c));
    gm_table t = {(int)nc, head, 0, NULL, 0, 0};
    for (size_t r = 0; r < n; r++) {
      for (size_t c = 0; c < nc; c++) {
        json_t *v = json_object_get(json_array_get(flats, r), head[c]);
        texts[c] = v ? json_string_value(v) : "";
      }
      gm_table_add(&t, texts);
    }
    gm_table_print(&t, out);
  }
  free(head);
  free(texts);
  json_decref(flats);
  json_decref(cols);
}

void gm_codec_print_table(FILE *out, const ProtobufCMessage *m) {
  json_t *j = gm_codec_to_json(m), *flat = json_object(),
         *lists = json_object(), *v;
  const char *k;
  gm__flatten(j, "", flat, lists);
  size_t w = 0, kw;
  json_object_foreach(flat, k, v) {
    char *t = gm_table_cell(k, 0, &kw, NULL);
    if (t && kw > w) w = kw;
    free(t);
  }
  /* "name  value" lines: the value is the last column (never cut) and, as
     every cell, shown on one line. */
  json_object_foreach(flat, k, v) {
    char *key = gm_table_cell(k, 0, &kw, NULL);
    char *val = gm_table_cell(json_string_value(v), 0, &(size_t){0}, NULL);
    gm_table_pad(out, key ? key : "?", key ? kw : 1, w, 0);
    fprintf(out, "  %s\n", val ? val : "(out of memory)");
    free(key);
    free(val);
  }
  json_object_foreach(lists, k, v) {
    if (json_object_size(flat)) fputc('\n', out);
    gm__print_rows(out, k, v);
  }
  if (!json_object_size(flat) && !json_object_size(lists)) fprintf(out, "ok\n");
  json_decref(j);
  json_decref(flat);
  json_decref(lists);
}

/* ---- help ---- */

static void gm__print_fields(FILE *out, const ProtobufCMessageDescriptor *d,
                             const char *prefix, int depth) {
  for (unsigned i = 0; i < d->n_fields; i++) {
    const ProtobufCFieldDescriptor *f = &d->fields[i];
    char name[256];
    snprintf(name, sizeof name, "%s%s", prefix, f->name);
    int rep = f->label == PROTOBUF_C_LABEL_REPEATED;
    if (f->type == PROTOBUF_C_TYPE_ENUM) {
      char *list = gm__enum_list(f->descriptor);
      fprintf(out, "  %-30s %s%s: %s\n", name, rep ? "repeated " : "",
              gm__type_name(f), list ? list : "");
      free(list);
    } else {
      fprintf(out, "  %-30s %s%s\n", name, rep ? "repeated " : "",
              gm__type_name(f));
    }
    /* Recursive types would never end: three levels are plenty to read. */
    if (f->type == PROTOBUF_C_TYPE_MESSAGE && depth < 3) {
      char sub[260];
      snprintf(sub, sizeof sub, "%s.", name);
      gm__print_fields(out, f->descriptor, sub, depth + 1);
    }
  }
}

void gm_codec_print_fields(FILE *out, const ProtobufCMessageDescriptor *d) {
  if (!d->n_fields) {
    fprintf(out, "  (no fields)\n");
    return;
  }
  gm__print_fields(out, d, "", 0);
}
